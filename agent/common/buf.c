// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/common/buf.h"

void mt_buf_init(struct mt_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void mt_buf_free(struct mt_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void mt_buf_reset(struct mt_buf *b)
{
	b->len = 0;
	b->overflow = false;
}

/* Makes room for @n more bytes plus a NUL. */
static int reserve(struct mt_buf *b, size_t n)
{
	size_t need = b->len + n + 1;
	size_t cap;
	char *p;

	if (need <= b->cap)
		return 0;
	if (need > b->max) {
		b->overflow = true;
		return -ENOMEM;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	p = realloc(b->data, cap);
	if (!p) {
		b->overflow = true;
		return -ENOMEM;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int mt_buf_append(struct mt_buf *b, const void *p, size_t n)
{
	if (reserve(b, n))
		return -ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int mt_buf_puts(struct mt_buf *b, const char *s)
{
	return mt_buf_append(b, s, strlen(s));
}

int mt_buf_printf(struct mt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n))
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* Length of the valid UTF-8 sequence at @s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

int mt_buf_json_str(struct mt_buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	int rc = mt_buf_append(b, "\"", 1);

	while (*s && !rc) {
		size_t n = utf8_seq(s);

		if (n == 0) {
			rc = mt_buf_puts(b, "\\ufffd");
			s++;
		} else if (*s == '"' || *s == '\\') {
			char esc[2] = {'\\', (char)*s};

			rc = mt_buf_append(b, esc, 2);
			s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			rc = mt_buf_printf(b, "\\u%04x", *s);
			s++;
		} else {
			rc = mt_buf_append(b, s, n);
			s += n;
		}
	}
	return rc ? rc : mt_buf_append(b, "\"", 1);
}
