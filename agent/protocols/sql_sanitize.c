// SPDX-License-Identifier: Apache-2.0
/*
 * SQL sanitiser shared by the PostgreSQL and MySQL parsers.
 * Lexical rules: https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 *                https://mariadb.com/kb/en/string-literals/ (and comment-syntax, identifier-names)
 *
 * One pass, one class-table lookup per byte; every token is either copied
 * (keywords, identifiers, operators, placeholders) or replaced (literals).
 * Nothing is allocated and @out bounds everything written.
 */
#include <string.h>

#include "agent/protocols/sql_sanitize.h"

enum {
	K_OTHER = 0,
	K_SPACE,
	K_ALPHA, /* letters, '_', bytes >= 0x80: start of a keyword or identifier */
	K_DIGIT,
};

static const unsigned char kind[256] = {
	[' '] = K_SPACE,	 ['\t'] = K_SPACE,	    ['\n'] = K_SPACE,
	['\r'] = K_SPACE,	 ['\f'] = K_SPACE,	    ['\v'] = K_SPACE,
	['0' ... '9'] = K_DIGIT, ['A' ... 'Z'] = K_ALPHA,   ['a' ... 'z'] = K_ALPHA,
	['_'] = K_ALPHA,	 [0x80 ... 0xff] = K_ALPHA,
};

struct out {
	char *p;
	size_t cap; /* room for bytes, the NUL excluded */
	size_t n;
	bool full;
	bool space; /* white space seen since the last byte written */
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (o->space && o->n > 0) {
		if (o->n >= o->cap) {
			o->full = true;
			return;
		}
		o->p[o->n++] = ' ';
	}
	o->space = false;
	if (n > o->cap - o->n) {
		n = o->cap - o->n;
		o->full = true;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

/*
 * A quoted identifier, as written. One holding a NUL is no identifier a
 * server accepts (nor text: copied, the NUL would end the string): "?".
 */
static void put_quoted_ident(struct out *o, const char *s, size_t n)
{
	if (memchr(s, '\0', n))
		put(o, "?", 1);
	else
		put(o, s, n);
}

static bool is_ident(unsigned char c)
{
	return kind[c] == K_ALPHA || kind[c] == K_DIGIT || c == '$';
}

/* End of the quoted run that starts at @i (the opening quote @q); doubled quotes stay inside. */
static size_t skip_quoted(const char *s, size_t n, size_t i, char q, bool backslash)
{
	for (i++; i < n; i++) {
		if (backslash && s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == q) {
			if (i + 1 < n && s[i + 1] == q) {
				i++;
				continue;
			}
			return i + 1;
		}
	}
	return n;
}

/* End of the comment at @i ("--", "#" or a block comment, nested in PostgreSQL), or @i if none. */
static size_t skip_comment(const char *s, size_t n, size_t i, enum sql_dialect d)
{
	if (s[i] == '#' && d == SQL_MYSQL) {
		const char *nl = memchr(s + i, '\n', n - i);

		return nl ? (size_t)(nl - s) + 1 : n;
	}
	if (s[i] == '-' && i + 1 < n && s[i + 1] == '-') {
		const char *nl;

		/* MySQL wants white space after "--": "1--2" is arithmetic there. */
		if (d == SQL_MYSQL && i + 2 < n && kind[(unsigned char)s[i + 2]] != K_SPACE)
			return i;
		nl = memchr(s + i, '\n', n - i);
		return nl ? (size_t)(nl - s) + 1 : n;
	}
	if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
		unsigned depth = 1;

		for (i += 2; i < n; i++) {
			if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
				i++;
				if (--depth == 0)
					return i + 1;
			} else if (d == SQL_POSTGRES && s[i] == '/' && i + 1 < n &&
				   s[i + 1] == '*') {
				i++;
				depth++;
			}
		}
		return n;
	}
	return i;
}

/* A PostgreSQL dollar-quoted string at @i ("$$" or "$tag$"): its end, or @i if it is not one. */
static size_t skip_dollar_quoted(const char *s, size_t n, size_t i)
{
	size_t j = i + 1, tag;
	const char *close;

	while (j < n &&
	       (kind[(unsigned char)s[j]] == K_ALPHA || kind[(unsigned char)s[j]] == K_DIGIT))
		j++;
	if (j >= n || s[j] != '$' || (j > i + 1 && kind[(unsigned char)s[i + 1]] == K_DIGIT))
		return i;
	tag = j + 1 - i;
	close = memmem(s + j + 1, n - j - 1, s + i, tag);
	return close ? (size_t)(close - s) + tag : n;
}

/* A numeric literal at @i: digits, '.', letters (exponent, hex, suffix), a sign after e/E. */
static size_t skip_number(const char *s, size_t n, size_t i)
{
	bool hex = s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X');

	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (kind[c] == K_DIGIT || c == '.' || c == '_' || (c < 0x80 && kind[c] == K_ALPHA))
			continue;
		if ((c == '+' || c == '-') && !hex && (s[i - 1] == 'e' || s[i - 1] == 'E'))
			continue;
		break;
	}
	return i;
}

/* Does the identifier @s[0..@len) prefix a string literal (E'..', X'..', _utf8mb4'..')? */
static bool literal_prefix(const char *s, size_t len)
{
	if (len == 1)
		return strchr("EeBbXxNn", s[0]) != NULL;
	return s[0] == '_';
}

/* Drops the tail of a UTF-8 sequence that the output limit cut in two. */
static void trim_utf8(struct out *o)
{
	size_t i = o->n, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)o->p[i - 1] & 0xc0) == 0x80 && o->n - i < 3)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)o->p[i - 1];
	if (c < 0xc0)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (o->n - (i - 1) < need)
		o->n = i - 1;
}

size_t sql_sanitize(const char *sql, size_t n, enum sql_dialect d, char *out, size_t cap)
{
	struct out o = {out, cap ? cap - 1 : 0, 0, false, false};
	size_t i = 0;

	if (!cap)
		return 0;
	while (i < n && !o.full) {
		unsigned char c = (unsigned char)sql[i];
		size_t j;

		switch (kind[c]) {
		case K_SPACE:
			o.space = true;
			i++;
			continue;
		case K_ALPHA:
			j = i + 1;
			while (j < n && is_ident((unsigned char)sql[j]))
				j++;
			if (j < n && sql[j] == '\'' && literal_prefix(sql + i, j - i)) {
				bool bs = d == SQL_MYSQL || sql[i] == 'E' || sql[i] == 'e';

				put(&o, "?", 1);
				i = skip_quoted(sql, n, j, '\'', bs);
			} else {
				put(&o, sql + i, j - i);
				i = j;
			}
			continue;
		case K_DIGIT:
			put(&o, "?", 1);
			i = skip_number(sql, n, i);
			continue;
		default:
			break;
		}
		switch (c) {
		case '\'':
			put(&o, "?", 1);
			i = skip_quoted(sql, n, i, '\'', d == SQL_MYSQL);
			break;
		case '"':
			j = skip_quoted(sql, n, i, '"', d == SQL_MYSQL);
			if (d == SQL_MYSQL)
				put(&o, "?", 1);
			else
				put_quoted_ident(&o, sql + i, j - i);
			i = j;
			break;
		case '`':
			j = d == SQL_MYSQL ? skip_quoted(sql, n, i, '`', false) : i + 1;
			put_quoted_ident(&o, sql + i, j - i);
			i = j;
			break;
		case '.':
			if (i + 1 < n && kind[(unsigned char)sql[i + 1]] == K_DIGIT) {
				put(&o, "?", 1);
				i = skip_number(sql, n, i);
			} else {
				put(&o, ".", 1);
				i++;
			}
			break;
		case '$':
			if (d == SQL_POSTGRES && i + 1 < n &&
			    kind[(unsigned char)sql[i + 1]] == K_DIGIT) {
				j = i + 1;
				while (j < n && kind[(unsigned char)sql[j]] == K_DIGIT)
					j++;
				put(&o, sql + i, j - i); /* $1: a parameter, not a value */
				i = j;
			} else if (d == SQL_POSTGRES && (j = skip_dollar_quoted(sql, n, i)) != i) {
				put(&o, "?", 1);
				i = j;
			} else {
				put(&o, "$", 1);
				i++;
			}
			break;
		case '\0':
			/* Not SQL text (a binary prefix read as text): copied, it would end the string. */
			o.space = true;
			i++;
			break;
		case '-':
		case '/':
		case '#':
			j = skip_comment(sql, n, i, d);
			if (j != i) {
				o.space = true;
				i = j;
				break;
			}
			put(&o, sql + i, 1);
			i++;
			break;
		default:
			put(&o, sql + i, 1);
			i++;
			break;
		}
	}
	if (o.full)
		trim_utf8(&o);
	out[o.n] = '\0';
	return o.n;
}

size_t sql_operation(const char *sql, size_t n, enum sql_dialect d, char *op, size_t cap)
{
	size_t i = 0, j, len = 0;

	if (!cap)
		return 0;
	while (i < n) {
		unsigned char c = (unsigned char)sql[i];

		if (kind[c] == K_SPACE || c == '(') {
			i++;
			continue;
		}
		j = skip_comment(sql, n, i, d);
		if (j == i)
			break;
		i = j;
	}
	if (i < n && kind[(unsigned char)sql[i]] == K_ALPHA && (unsigned char)sql[i] < 0x80) {
		j = i;
		while (j < n && j - i < cap - 1 && (unsigned char)sql[j] < 0x80 &&
		       (kind[(unsigned char)sql[j]] == K_ALPHA ||
			kind[(unsigned char)sql[j]] == K_DIGIT))
			j++;
		if (j < n && sql[j] == '\'' && literal_prefix(sql + i, j - i))
			j = i; /* a literal, not a keyword */
		for (len = 0; len < j - i; len++) {
			char ch = sql[i + len];

			op[len] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
		}
	}
	op[len] = '\0';
	return len;
}
