/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small JSON writer (RFC 8259) over a struct mt_buf: objects, arrays, keys,
 * strings, numbers, with the commas put in for the caller. Strings are
 * escaped the one way every JSON the agent writes uses: '"' and '\' with a
 * backslash, bytes below 0x20 as \u00XX, each ill-formed UTF-8 part (its
 * maximal subpart, common/utf8.h) as \ufffd, everything else as is.
 *
 * Appends never fail one by one: past the buffer's limit the buffer is
 * marked overflowed, and mt_json_err() says so once at the end.
 */
#ifndef MESHTRACE_JSON_H
#define MESHTRACE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/common/buf.h"

#define MT_JSON_DEPTH_MAX 32

struct mt_json {
	struct mt_buf *b;
	unsigned depth;
	uint64_t nonempty; /* bit d: the container at depth d has a member already */
	bool after_key;	   /* the next value is a member's, its comma already written */
};

/* Starts writing into @b (appending to what it holds). */
void mt_json_init(struct mt_json *j, struct mt_buf *b);

void mt_json_obj_open(struct mt_json *j);
void mt_json_obj_close(struct mt_json *j);
void mt_json_arr_open(struct mt_json *j);
void mt_json_arr_close(struct mt_json *j);

/* A member's key (escaped like a string); the value comes next. */
void mt_json_key(struct mt_json *j, const char *key);

void mt_json_str(struct mt_json *j, const char *s);
/* The @n bytes at @s as a string (NUL bytes included, as \u0000). */
void mt_json_strn(struct mt_json *j, const char *s, size_t n);
void mt_json_u64(struct mt_json *j, uint64_t v);
void mt_json_i64(struct mt_json *j, int64_t v);
/* @v with @decimals digits after the point (printf "%.*f"); not finite: null. */
void mt_json_f64(struct mt_json *j, double v, int decimals);
void mt_json_bool(struct mt_json *j, bool v);
void mt_json_null(struct mt_json *j);

static inline void mt_json_key_str(struct mt_json *j, const char *key, const char *s)
{
	mt_json_key(j, key);
	mt_json_str(j, s);
}

static inline void mt_json_key_u64(struct mt_json *j, const char *key, uint64_t v)
{
	mt_json_key(j, key);
	mt_json_u64(j, v);
}

/* 0, or -ENOMEM when anything written did not fit the buffer. */
int mt_json_err(const struct mt_json *j);

/*
 * Appends the @n bytes at @s to @b as a quoted JSON string, escaped as
 * above. For writers that build the rest of the text themselves.
 * Returns 0 or -ENOMEM.
 */
int mt_json_escape(struct mt_buf *b, const char *s, size_t n);

#endif /* MESHTRACE_JSON_H */
