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
#include "agent/export/k8s_attrs.h"
#include "agent/export/span_attrs.h"
#include "agent/common/json.h"

/*
 * The longest line: every string byte may become 6 ("\u00XX", or "\ufffd"
 * for one bad byte), plus url.full built from them, plus keys and numbers.
 */
#define JSONL_LINE_MAX \
	(6 * (sizeof(struct mt_span) + sizeof(((struct span_attrs *)0)->url_full)) + 2048)

struct jsonl_exporter {
	const struct k8s *k8s;
	int fd;
	bool own_fd;
	unsigned lines; /* in buf */
	struct jsonl_stats stats;
	struct mt_buf buf; /* JSONL_BUF_BYTES, allocated up front: no allocation per span */
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
	mt_buf_init(&x->buf, JSONL_BUF_BYTES);
	if (mt_buf_reserve(&x->buf, JSONL_BUF_BYTES - 1) != 0) {
		free(x);
		errno = ENOMEM;
		return NULL;
	}
	if (!strcmp(path, "-")) {
		x->fd = STDOUT_FILENO;
		return x;
	}
	x->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (x->fd < 0) {
		err = errno;
		mt_buf_free(&x->buf);
		free(x);
		errno = err;
		return NULL;
	}
	x->own_fd = true;
	return x;
}

void jsonl_exporter_set_k8s(struct jsonl_exporter *x, const struct k8s *k8s)
{
	x->k8s = k8s;
}

int jsonl_exporter_flush(struct jsonl_exporter *x)
{
	size_t off = 0;
	int err = 0;

	while (off < x->buf.len) {
		ssize_t n = write(x->fd, x->buf.data + off, x->buf.len - off);

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
	mt_buf_reset(&x->buf);
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
	mt_buf_free(&x->buf);
	free(x);
}

void jsonl_exporter_stats(const struct jsonl_exporter *x, struct jsonl_stats *out)
{
	*out = x->stats;
}

static void put_hex(struct mt_json *j, const char *key, const uint8_t *id, size_t n)
{
	char hex[33];

	span_attrs_hex(hex, id, n);
	mt_json_key_str(j, key, hex);
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
	struct k8s_attr k8s[K8S_ATTRS_MAX];
	struct mt_span s;
	struct mt_json j;
	unsigned i, n;

	if (x->buf.max - x->buf.len < JSONL_LINE_MAX)
		jsonl_exporter_flush(x);
	span_attrs_copy_span(&s, span);
	span_attrs_build(&attrs, &s, NULL, 0);
	k8s_span_peer_attrs(x->k8s, &s, &attrs);

	mt_json_init(&j, &x->buf);
	mt_json_obj_open(&j);
	put_hex(&j, "trace_id", s.trace_id, sizeof(s.trace_id));
	put_hex(&j, "span_id", s.span_id, sizeof(s.span_id));
	if (memcmp(s.parent_span_id, zero, sizeof(zero)))
		put_hex(&j, "parent_span_id", s.parent_span_id, sizeof(s.parent_span_id));
	else
		mt_json_key_str(&j, "parent_span_id", "");
	mt_json_key_str(&j, "name", s.name);
	mt_json_key_str(&j, "kind", kind_name(s.kind));
	mt_json_key_u64(&j, "start_unix_nano", s.start_unix_ns);
	mt_json_key_u64(&j, "end_unix_nano", s.end_unix_ns);
	mt_json_key_str(&j, "status", status_name(s.status));
	mt_json_key(&j, "resource");
	mt_json_obj_open(&j);
	mt_json_key_str(&j, "service.name", s.resource.service_name);
	mt_json_key_u64(&j, "process.pid", s.resource.pid);
	mt_json_key_str(&j, "process.executable.name", s.resource.exe_name);
	n = k8s_resource_attrs(x->k8s, &s.resource, k8s);
	for (i = 0; i < n; i++)
		mt_json_key_str(&j, k8s[i].key, k8s[i].value);
	mt_json_obj_close(&j);
	mt_json_key(&j, "attributes");
	mt_json_obj_open(&j);
	for (i = 0; i < attrs.n; i++) {
		const struct span_attr *a = &attrs.attr[i];

		mt_json_key(&j, a->key);
		if (a->type == SPAN_ATTR_INT)
			mt_json_i64(&j, a->num);
		else
			mt_json_str(&j, a->str);
	}
	mt_json_obj_close(&j);
	mt_json_obj_close(&j);
	mt_buf_append(&x->buf, "\n", 1);
	x->lines++;
}
