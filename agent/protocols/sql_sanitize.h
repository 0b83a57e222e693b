/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQL text as the database parsers put it in spans: literals replaced by ?,
 * comments dropped, runs of white space made one space; and the statement's
 * first keyword, the operation (db.operation.name).
 * https://opentelemetry.io/docs/specs/semconv/database/database-spans/
 * (db.query.text: "SHOULD be sanitized", literals replaced by placeholders).
 *
 * Pure, no allocation: one pass over the bytes with a class table.
 */
#ifndef MESHTRACE_SQL_SANITIZE_H
#define MESHTRACE_SQL_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>

/* The lexical rules that differ between servers. */
enum sql_dialect {
	/* 'x' with '' escapes, E'x' with backslash escapes, $tag$x$tag$, "ident", $1 params */
	SQL_POSTGRES = 0,
	/* 'x' and "x" with backslash escapes, `ident`, # comments, ? params */
	SQL_MYSQL = 1,
};

/*
 * Writes the sanitised form of the @n bytes of SQL at @sql into @out (@cap
 * bytes, always NUL-terminated when @cap > 0) and returns its length. String,
 * numeric, hex and bit literals become "?", quoted identifiers and
 * placeholders ($1, ?) stay. A literal or comment still open when the bytes
 * end (the text was cut at the capture limit) becomes "?" / is dropped. The
 * output stops, on a UTF-8 character boundary, when @out is full.
 */
size_t sql_sanitize(const char *sql, size_t n, enum sql_dialect dialect, char *out, size_t cap);

/*
 * Writes the first keyword of the @n bytes of SQL at @sql, upper-cased, into
 * @op (@cap bytes, NUL-terminated; "" when the text starts with no keyword).
 * Leading white space, comments and "(" are skipped. Returns its length.
 */
size_t sql_operation(const char *sql, size_t n, enum sql_dialect dialect, char *op, size_t cap);

#endif /* MESHTRACE_SQL_SANITIZE_H */
