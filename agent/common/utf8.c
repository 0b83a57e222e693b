// SPDX-License-Identifier: Apache-2.0
/*
 * UTF-8 validation and repair. Unicode 15, section 3.9, Table 3-7; ill-formed
 * input is replaced per "U+FFFD Substitution of Maximal Subparts" (same
 * section), the practice of the WHATWG encoding standard.
 */
#include <stdint.h>
#include <string.h>

#include "agent/common/utf8.h"

size_t utf8_seq_len(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else {
		*bad = 1; /* continuation byte, C0, C1, F5..FF */
		return 0;
	}
	for (i = 1; i < len; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, bad;
	uint64_t w;

	while (i < n) {
		/* ASCII fast path, 8 bytes at a time: most of what we see is ASCII. */
		if (n - i >= sizeof(w)) {
			memcpy(&w, p + i, sizeof(w));
			if (!(w & 0x8080808080808080ull)) {
				i += sizeof(w);
				continue;
			}
		}
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t len = utf8_seq_len(p + i, n - i, &bad);

		if (!len)
			return false;
		i += len;
	}
	return true;
}

size_t utf8_sanitize(char *dst, size_t cap, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, out = 0, bad;

	if (!cap)
		return 0;
	while (i < n) {
		size_t len = utf8_seq_len(p + i, n - i, &bad);
		const char *from = s + i;
		size_t take = len;

		if (!len) {
			from = UTF8_REPLACEMENT;
			take = sizeof(UTF8_REPLACEMENT) - 1;
			len = bad;
		}
		if (out + take >= cap)
			break;
		memcpy(dst + out, from, take);
		out += take;
		i += len;
	}
	dst[out] = '\0';
	return out;
}

size_t utf8_repaired_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, out = 0, bad;

	while (i < n) {
		size_t len = utf8_seq_len(p + i, n - i, &bad);

		if (len) {
			out += len;
			i += len;
		} else {
			out += sizeof(UTF8_REPLACEMENT) - 1;
			i += bad;
		}
	}
	return out;
}
