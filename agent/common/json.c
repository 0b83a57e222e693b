// SPDX-License-Identifier: Apache-2.0
/* JSON writer: RFC 8259; strings must be UTF-8, control characters escaped. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agent/common/json.h"
#include "agent/common/utf8.h"

int mt_json_escape(struct mt_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, len, bad;
	int rc = mt_buf_append(b, "\"", 1);

	while (i < n && !rc) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		rc = mt_buf_append(b, s + i - run, run);
		run = 0;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};

			rc |= mt_buf_append(b, esc, 2);
			i++;
		} else if (c < 0x20) {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};

			rc |= mt_buf_append(b, esc, 6);
			i++;
		} else {
			len = utf8_seq_len(p + i, n - i, &bad);
			if (len) {
				rc |= mt_buf_append(b, s + i, len);
				i += len;
			} else {
				rc |= mt_buf_append(b, "\\ufffd", 6);
				i += bad;
			}
		}
	}
	if (!rc)
		rc = mt_buf_append(b, s + i - run, run);
	return rc ? -ENOMEM : mt_buf_append(b, "\"", 1);
}

void mt_json_init(struct mt_json *j, struct mt_buf *b)
{
	memset(j, 0, sizeof(*j));
	j->b = b;
}

/* The comma before a value, unless it is a member's (its key wrote it) or the first. */
static void before_value(struct mt_json *j)
{
	uint64_t bit = 1ull << (j->depth % 64);

	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth && (j->nonempty & bit))
		mt_buf_append(j->b, ",", 1);
	j->nonempty |= bit;
}

static void container_open(struct mt_json *j, char c)
{
	before_value(j);
	mt_buf_append(j->b, &c, 1);
	if (j->depth + 1 >= MT_JSON_DEPTH_MAX) {
		j->b->overflow = true; /* deeper than any JSON the agent writes: a bug */
		return;
	}
	j->depth++;
	j->nonempty &= ~(1ull << j->depth);
}

static void container_close(struct mt_json *j, char c)
{
	mt_buf_append(j->b, &c, 1);
	if (j->depth)
		j->depth--;
}

void mt_json_obj_open(struct mt_json *j)
{
	container_open(j, '{');
}

void mt_json_obj_close(struct mt_json *j)
{
	container_close(j, '}');
}

void mt_json_arr_open(struct mt_json *j)
{
	container_open(j, '[');
}

void mt_json_arr_close(struct mt_json *j)
{
	container_close(j, ']');
}

void mt_json_key(struct mt_json *j, const char *key)
{
	before_value(j);
	mt_json_escape(j->b, key, strlen(key));
	mt_buf_append(j->b, ":", 1);
	j->after_key = true;
}

void mt_json_strn(struct mt_json *j, const char *s, size_t n)
{
	before_value(j);
	mt_json_escape(j->b, s, n);
}

void mt_json_str(struct mt_json *j, const char *s)
{
	mt_json_strn(j, s, strlen(s));
}

/* Numbers are formatted on the stack: one snprintf, no measuring pass (JSON lines are per span). */
void mt_json_u64(struct mt_json *j, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	before_value(j);
	mt_buf_append(j->b, num, (size_t)n);
}

void mt_json_i64(struct mt_json *j, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	before_value(j);
	mt_buf_append(j->b, num, (size_t)n);
}

void mt_json_f64(struct mt_json *j, double v, int decimals)
{
	before_value(j);
	if (isfinite(v))
		mt_buf_printf(j->b, "%.*f", decimals, v);
	else
		mt_buf_puts(j->b, "null");
}

void mt_json_bool(struct mt_json *j, bool v)
{
	before_value(j);
	mt_buf_puts(j->b, v ? "true" : "false");
}

void mt_json_null(struct mt_json *j)
{
	before_value(j);
	mt_buf_puts(j->b, "null");
}

int mt_json_err(const struct mt_json *j)
{
	return j->b->overflow ? -ENOMEM : 0;
}
