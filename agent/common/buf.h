/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a hard size limit: appends past the limit fail
 * and leave the buffer marked as overflowed, so a caller can check once at
 * the end instead of after every append.
 */
#ifndef MESHTRACE_BUF_H
#define MESHTRACE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct mt_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* never grows past this */
	bool overflow;
};

void mt_buf_init(struct mt_buf *b, size_t max);
/* Releases the memory; the buffer may be reused after mt_buf_init. */
void mt_buf_free(struct mt_buf *b);
/* Empties the buffer, keeping its memory. */
void mt_buf_reset(struct mt_buf *b);

/*
 * Makes room for @n more bytes (and a NUL) now, so that appends up to that
 * allocate nothing. Returns 0, or -ENOMEM (and sets overflow) past the limit.
 */
int mt_buf_reserve(struct mt_buf *b, size_t n);
/* Appends @n bytes. Returns 0, or -ENOMEM (and sets overflow) past the limit. */
int mt_buf_append(struct mt_buf *b, const void *p, size_t n);
int mt_buf_puts(struct mt_buf *b, const char *s);
int mt_buf_printf(struct mt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* MESHTRACE_BUF_H */
