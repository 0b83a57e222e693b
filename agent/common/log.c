// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/common/log.h"

enum mt_log_level mt_log_level = MT_LOG_INFO;

/* The escape of byte @c ("" when it needs none) and how many input bytes it covers. */
static size_t escape_one(const unsigned char *p, char esc[8])
{
	esc[0] = '\0';
	switch (p[0]) {
	case '\n':
		memcpy(esc, "\\n", 3);
		return 1;
	case '\r':
		memcpy(esc, "\\r", 3);
		return 1;
	case '\t':
		memcpy(esc, "\\t", 3);
		return 1;
	case 0x1b:
		memcpy(esc, "\\e", 3);
		return 1;
	default:
		break;
	}
	if (p[0] < 0x20 || p[0] == 0x7f) {
		snprintf(esc, 8, "\\x%02x", p[0]);
		return 1;
	}
	/* C1 controls in UTF-8 (0xC2 0x80..0x9F): CSI (U+009B) works like ESC [ on many terminals. */
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
		snprintf(esc, 8, "\\u%04x", p[1]);
		return 2;
	}
	return 1;
}

/* mt_log_escape(), saying in *@consumed how much of @in was written. */
static size_t escape(char *out, size_t outlen, const char *in, size_t *consumed)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	*consumed = 0;
	if (!outlen)
		return 0;
	while (*p) {
		char esc[8];
		size_t used = escape_one(p, esc);
		size_t n = esc[0] ? strlen(esc) : 1;

		if (o + n >= outlen)
			break;
		if (esc[0])
			memcpy(out + o, esc, n);
		else
			out[o] = (char)*p;
		o += n;
		p += used;
	}
	out[o] = '\0';
	*consumed = (size_t)(p - (const unsigned char *)in);
	return o;
}

size_t mt_log_escape(char *out, size_t outlen, const char *in)
{
	size_t consumed;

	return escape(out, outlen, in, &consumed);
}

const char *mt_log_value(char out[MT_LOG_VALUE_MAX + 32], const char *v)
{
	size_t len = strlen(v), consumed;
	size_t n = escape(out, MT_LOG_VALUE_MAX + 1, v, &consumed);

	/* Cut: say how long the value was, so "..." is not read as part of it. */
	if (consumed < len)
		snprintf(out + n, 32, "...(%zu bytes)", len);
	return out;
}

void mt_log(enum mt_log_level level, const char *fmt, ...)
{
	char line[MT_LOG_LINE_MAX];
	char safe[MT_LOG_LINE_MAX];
	va_list ap;
	int n;

	if (level > mt_log_level)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	mt_log_escape(safe, sizeof(safe), line);
	fprintf(stderr, "meshtrace: %s\n", safe);
}

int mt_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}
