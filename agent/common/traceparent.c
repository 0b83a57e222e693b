// SPDX-License-Identifier: Apache-2.0
/* The W3C traceparent header: validate, decode, format; the tracestate list (traceparent.h). */
#include <string.h>

#include "agent/common/traceparent.h"

/* Offsets of the dashes, and of the fields after them. */
#define DASH_VERSION 2
#define DASH_TRACE   35
#define DASH_PARENT  52
#define TRACE_AT     (DASH_VERSION + 1)
#define PARENT_AT    (DASH_TRACE + 1)
#define FLAGS_AT     (DASH_PARENT + 1)

static bool is_dash_at(size_t i)
{
	return i == DASH_VERSION || i == DASH_TRACE || i == DASH_PARENT;
}

/* A lower-case hex digit's value, -1 for anything else (upper case included). */
static int lower_hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

bool mt_traceparent_valid(const char *v, size_t n)
{
	bool trace_zero = true, parent_zero = true;

	if (!v || n < MT_TRACEPARENT_LEN)
		return false;
	for (size_t i = 0; i < MT_TRACEPARENT_LEN; i++) {
		if (is_dash_at(i)) {
			if (v[i] != '-')
				return false;
			continue;
		}
		if (lower_hex_val(v[i]) < 0)
			return false;
		if (i >= TRACE_AT && i < DASH_TRACE && v[i] != '0')
			trace_zero = false;
		if (i >= PARENT_AT && i < DASH_PARENT && v[i] != '0')
			parent_zero = false;
	}
	if (v[0] == 'f' && v[1] == 'f')
		return false;
	/* Version 00 has exactly these fields; later versions may append "-...". */
	if (n > MT_TRACEPARENT_LEN &&
	    ((v[0] == '0' && v[1] == '0') || v[MT_TRACEPARENT_LEN] != '-'))
		return false;
	return !trace_zero && !parent_zero;
}

static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = lower_hex_val(s[2 * i]), lo = lower_hex_val(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool mt_traceparent_decode(const char *tp, uint8_t trace_id[MT_TRACE_ID_LEN],
			   uint8_t parent_id[MT_SPAN_ID_LEN], uint8_t *flags)
{
	if (!tp || strlen(tp) != MT_TRACEPARENT_LEN || tp[DASH_VERSION] != '-' ||
	    tp[DASH_TRACE] != '-' || tp[DASH_PARENT] != '-')
		return false;
	if (!hex_decode(tp + TRACE_AT, trace_id, MT_TRACE_ID_LEN) ||
	    !hex_decode(tp + PARENT_AT, parent_id, MT_SPAN_ID_LEN))
		return false;
	return !flags || hex_decode(tp + FLAGS_AT, flags, 1);
}

static char *hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 0xf];
	}
	return out;
}

void mt_traceparent_format(char out[MT_TRACEPARENT_LEN + 1],
			   const uint8_t trace_id[MT_TRACE_ID_LEN],
			   const uint8_t span_id[MT_SPAN_ID_LEN], uint8_t flags)
{
	char *p = out;

	*p++ = '0';
	*p++ = '0';
	*p++ = '-';
	p = hex_encode(p, trace_id, MT_TRACE_ID_LEN);
	*p++ = '-';
	p = hex_encode(p, span_id, MT_SPAN_ID_LEN);
	*p++ = '-';
	p = hex_encode(p, &flags, 1);
	*p = '\0';
}

bool mt_tracestate_append(char *ts, size_t cap, const char *v, size_t n, char sep)
{
	size_t cur = strnlen(ts, cap);

	if (cur + (cur && n ? 1 : 0) + n > cap - 1) {
		ts[0] = '\0';
		return false;
	}
	if (n == 0)
		return true;
	if (cur)
		ts[cur++] = sep;
	memcpy(ts + cur, v, n);
	ts[cur + n] = '\0';
	return true;
}
