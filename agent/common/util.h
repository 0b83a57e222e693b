/* SPDX-License-Identifier: Apache-2.0 */
/* Small string helpers shared by every stage. */
#ifndef MESHTRACE_UTIL_H
#define MESHTRACE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Copies @src into @dst of @size bytes, truncating, always NUL-terminated
 * when @size > 0. Returns strlen(src), so truncation is ret >= size.
 */
static inline size_t mt_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size) {
		size_t n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

/* The value of hex digit @ch (either case), -1 when it is none. */
static inline int mt_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}
/* No entry: the end of an index-linked list (a free list, a hash chain, an LRU). */
#define NIL UINT32_MAX

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* MESHTRACE_UTIL_H */
