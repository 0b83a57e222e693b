// SPDX-License-Identifier: Apache-2.0
/*
 * JSON lines exporter. JSON: RFC 8259 (strings must be UTF-8; control
 * characters must be escaped). The line format is in jsonl.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/export/jsonl.h"
#include "agent/export/span_attrs.h"
#include "agent/common/utf8.h"

/*
 * The longest line: every string byte may become 6 ("\u00XX", or "\ufffd"
 * for one bad byte), plus url.full built from them, plus keys and numbers.
 */
#define JSONL_LINE_MAX \
	(6 * (sizeof(struct mt_span) + sizeof(((struct span_attrs *)0)->url_full)) + 2048)

struct jsonl_exporter {
	int fd;
	bool own_fd;
	size_t len;
	unsigned lines; /* in buf */
	struct jsonl_stats stats;
	char buf[JSONL_BUF_BYTES];
};

_Static_assert(JSONL_LINE_MAX < JSONL_BUF_BYTES, "a line must fit the buffer");

struct jsonl_exporter *jsonl_exporter__new(const char *path)
{
	struct jsonl_exporter *x;
	int err;

	if (!path || !path[0]) {
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL; /* calloc() set errno to ENOMEM */
	if (!strcmp(path, "-")) {
		x->fd = STDOUT_FILENO;
		return x;
	}
	x->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (x->fd < 0) {
		err = errno;
		free(x);
		errno = err;
		return NULL;
	}
	x->own_fd = true;
	return x;
}

int jsonl_exporter_flush(struct jsonl_exporter *x)
{
	size_t off = 0;
	int err = 0;

	while (off < x->len) {
		ssize_t n = write(x->fd, x->buf + off, x->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	if (err) {
		/* Lines cut by a short write count as dropped: the file may hold part of one. */
		x->stats.spans_dropped += x->lines;
		x->stats.last_errno = -err;
	} else {
		x->stats.spans_written += x->lines;
	}
	x->len = 0;
	x->lines = 0;
	return err;
}

void jsonl_exporter__free(struct jsonl_exporter *x)
{
	if (!x)
		return;
	jsonl_exporter_flush(x);
	if (x->own_fd)
		close(x->fd);
	free(x);
}

void jsonl_exporter_stats(const struct jsonl_exporter *x, struct jsonl_stats *out)
{
	*out = x->stats;
}

/* Appends to the buffer; the caller made sure a whole line fits. */
static void put(struct jsonl_exporter *x, const char *s, size_t n)
{
	if (n > sizeof(x->buf) - x->len)
		n = sizeof(x->buf) - x->len;
	memcpy(x->buf + x->len, s, n);
	x->len += n;
}

static void put_lit(struct jsonl_exporter *x, const char *s)
{
	put(x, s, strlen(s));
}

static void put_u64(struct jsonl_exporter *x, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	put(x, num, (size_t)n);
}

static void put_i64(struct jsonl_exporter *x, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	put(x, num, (size_t)n);
}

/* A JSON string: quoted, escaped, U+FFFD for what is not UTF-8. */
static void put_str(struct jsonl_exporter *x, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, len, bad;

	put(x, "\"", 1);
	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		put(x, s + i - run, run);
		run = 0;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};

			put(x, esc, 2);
			i++;
		} else if (c < 0x20) {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};

			put(x, esc, 6);
			i++;
		} else {
			len = utf8_seq_len(p + i, n - i, &bad);
			if (len) {
				put(x, s + i, len);
				i += len;
			} else {
				put_lit(x, "\\ufffd");
				i += bad;
			}
		}
	}
	put(x, s + i - run, run);
	put(x, "\"", 1);
}

static void put_cstr(struct jsonl_exporter *x, const char *s)
{
	put_str(x, s, strlen(s));
}

static void put_hex(struct jsonl_exporter *x, const uint8_t *id, size_t n)
{
	char hex[33];

	span_attrs_hex(hex, id, n);
	put(x, "\"", 1);
	put(x, hex, 2 * n);
	put(x, "\"", 1);
}

static const char *kind_name(uint8_t kind)
{
	switch (kind) {
	case MT_SPAN_SERVER:
		return "SERVER";
	case MT_SPAN_CLIENT:
		return "CLIENT";
	default:
		return "UNSPECIFIED";
	}
}

static const char *status_name(uint8_t status)
{
	switch (status) {
	case MT_STATUS_OK:
		return "OK";
	case MT_STATUS_ERROR:
		return "ERROR";
	default:
		return "UNSET";
	}
}

void jsonl_exporter_add_span(struct jsonl_exporter *x, const struct mt_span *span)
{
	static const uint8_t zero[8];
	struct span_attrs attrs;
	struct mt_span s;
	unsigned i;

	if (sizeof(x->buf) - x->len < JSONL_LINE_MAX)
		jsonl_exporter_flush(x);
	span_attrs_copy_span(&s, span);
	span_attrs_build(&attrs, &s, NULL, 0);

	put_lit(x, "{\"trace_id\":");
	put_hex(x, s.trace_id, sizeof(s.trace_id));
	put_lit(x, ",\"span_id\":");
	put_hex(x, s.span_id, sizeof(s.span_id));
	put_lit(x, ",\"parent_span_id\":");
	if (memcmp(s.parent_span_id, zero, sizeof(zero)))
		put_hex(x, s.parent_span_id, sizeof(s.parent_span_id));
	else
		put_lit(x, "\"\"");
	put_lit(x, ",\"name\":");
	put_cstr(x, s.name);
	put_lit(x, ",\"kind\":\"");
	put_lit(x, kind_name(s.kind));
	put_lit(x, "\",\"start_unix_nano\":");
	put_u64(x, s.start_unix_ns);
	put_lit(x, ",\"end_unix_nano\":");
	put_u64(x, s.end_unix_ns);
	put_lit(x, ",\"status\":\"");
	put_lit(x, status_name(s.status));
	put_lit(x, "\",\"resource\":{\"service.name\":");
	put_cstr(x, s.resource.service_name);
	put_lit(x, ",\"process.pid\":");
	put_u64(x, s.resource.pid);
	put_lit(x, ",\"process.executable.name\":");
	put_cstr(x, s.resource.exe_name);
	put_lit(x, "},\"attributes\":{");
	for (i = 0; i < attrs.n; i++) {
		const struct span_attr *a = &attrs.attr[i];

		if (i)
			put(x, ",", 1);
		put_cstr(x, a->key);
		put(x, ":", 1);
		if (a->type == SPAN_ATTR_INT)
			put_i64(x, a->num);
		else
			put_cstr(x, a->str);
	}
	put_lit(x, "}}\n");
	x->lines++;
}
