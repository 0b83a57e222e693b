// SPDX-License-Identifier: Apache-2.0
/*
 * Spans to an OTLP ExportTraceServiceRequest, written straight in the protobuf
 * wire format. Wire format: https://protobuf.dev/programming-guides/encoding/
 * Messages and field numbers: https://opentelemetry.io/docs/specs/otlp/ and
 * agent/export/proto/otlp.proto (those of opentelemetry-proto).
 *
 * No protobuf-c here (only the response decoding keeps it): building its
 * message tree, sizing it and packing it, strlen() on every string each
 * time, cost more than writing the bytes. The wire primitives are in pb.h,
 * shared with the metrics encoder (metrics_otlp.c). Each span's size is
 * computed from lengths measured once, then the span is written in one pass
 * into a buffer reused from batch to batch: nothing is allocated in the
 * steady state. The bytes are those protobuf-c writes for the same messages
 * (fields in number order, minimal varints, proto3 defaults left out), which
 * tests/export/test_otlp.c checks against a protobuf-c encoder kept there.
 *
 * Strings that are not valid UTF-8 (protobuf requires it, and a collector
 * rejects the whole request otherwise) are repaired as they are written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/common/version.h"
#include "agent/export/k8s_attrs.h"
#include "agent/export/otlp_internal.h"
#include "agent/export/pb.h"
#include "agent/export/span_attrs.h"

/* Resource attributes set per process: service.name, process.pid, process.executable.name. */
#define RES_OWN_ATTRS (3 + K8S_ATTRS_MAX)
/* Bytes per span assumed before the first batch says better. */
#define SPAN_BYTES_GUESS 512

/* Tags: field number << 3 | wire type (0 varint, 1 64-bit, 2 length-delimited). */
enum {
	TAG_REQUEST_RESOURCE_SPANS = 1 << 3 | 2, /* ExportTraceServiceRequest.resource_spans */
	TAG_RS_RESOURCE = 1 << 3 | 2,		 /* ResourceSpans.resource */
	TAG_RS_SCOPE_SPANS = 2 << 3 | 2,	 /* ResourceSpans.scope_spans */
	TAG_SS_SCOPE = 1 << 3 | 2,		 /* ScopeSpans.scope */
	TAG_SS_SPANS = 2 << 3 | 2,		 /* ScopeSpans.spans */
	TAG_SPAN_TRACE_ID = 1 << 3 | 2,
	TAG_SPAN_SPAN_ID = 2 << 3 | 2,
	TAG_SPAN_TRACE_STATE = 3 << 3 | 2,
	TAG_SPAN_PARENT_SPAN_ID = 4 << 3 | 2,
	TAG_SPAN_NAME = 5 << 3 | 2,
	TAG_SPAN_KIND = 6 << 3 | 0,
	TAG_SPAN_START = 7 << 3 | 1, /* start_time_unix_nano, fixed64 */
	TAG_SPAN_END = 8 << 3 | 1,   /* end_time_unix_nano, fixed64 */
	TAG_SPAN_ATTRIBUTES = 9 << 3 | 2,
	TAG_SPAN_STATUS = 15 << 3 | 2,
	TAG_STATUS_CODE = 3 << 3 | 0,
};

struct otlp_encoder {
	size_t cap; /* spans per batch */
	struct otlp_config cfg;

	/* Written once: the KeyValues every Resource ends with, and ScopeSpans.scope. */
	uint8_t *common;
	size_t common_len;
	uint8_t *scope;
	size_t scope_len;

	/* pid -> process index, open addressing */
	uint32_t *pid_key;
	int32_t *pid_val;
	size_t pid_mask;

	/* per process (at most cap), in order of first appearance */
	uint32_t *res_first; /* index of the process's first span */
	uint32_t *res_count;
	uint32_t *res_next; /* next free slot in order[] while placing */
	/* per span */
	uint32_t *span_res;
	uint32_t *order; /* span indexes, grouped by process, in batch order within each */

	size_t span_bytes;	 /* average encoded span of the last batch: sizes length slots */
	struct span_attrs attrs; /* scratch for one span */
	struct pb_attr wattr[SPAN_ATTRS_MAX];

	uint8_t *out;
	size_t out_cap;
	size_t out_len;
};

/* ---- the output buffer ---- */

/* Makes room for @need more bytes (and PB_SLACK). Returns 0 or -ENOMEM. */
static int out_reserve(struct otlp_encoder *enc, size_t need)
{
	size_t want = enc->out_len + need + PB_SLACK, cap;
	uint8_t *buf;

	if (want <= enc->out_cap && enc->out)
		return 0;
	cap = enc->out_cap * 2 > want ? enc->out_cap * 2 : want;
	buf = realloc(enc->out, cap);
	if (!buf)
		return -ENOMEM;
	enc->out = buf;
	enc->out_cap = cap;
	return 0;
}

/* ---- set up once ---- */

static bool is_agent_key(const char *key)
{
	return !strcmp(key, "service.name") || !strcmp(key, "process.pid") ||
	       !strcmp(key, "process.executable.name") || !strcmp(key, "host.name") ||
	       !strncmp(key, "telemetry.sdk.", strlen("telemetry.sdk."));
}

static bool cfg_str_ok(const char *s, size_t cap)
{
	size_t len = strnlen(s, cap);

	return len < cap && utf8_valid(s, len);
}

/* The resource attributes every process shares, in the order they are sent. */
struct common_attr {
	const char *key;
	const char *value;
};

/*
 * Writes Resource.attributes fields for the resource attributes every
 * process shares into @dst (NULL: measures only). Returns their size.
 */
static size_t put_common(uint8_t *dst, const struct common_attr *ca, size_t n)
{
	size_t i, size = 0;

	for (i = 0; i < n; i++) {
		struct pb_attr wa;
		uint8_t *p;

		pb_str_set(&wa.key, ca[i].key, strlen(ca[i].key));
		pb_str_set(&wa.val, ca[i].value, strlen(ca[i].value));
		wa.is_str = true;
		pb_attr_measure(&wa);
		if (dst) {
			p = pb_put_attr(dst + size, PB_TAG_RESOURCE_ATTRIBUTES, &wa);
			size = (size_t)(p - dst);
		} else {
			size += pb_len_field_size(wa.kv_len);
		}
	}
	return size;
}

static int build_common(struct otlp_encoder *enc)
{
	struct common_attr ca[4 + OTLP_RESOURCE_ATTRS_MAX];
	const struct otlp_config *cfg = &enc->cfg;
	struct pb_str name, version;
	size_t n = 0, i;
	uint8_t *p;

	if (!cfg_str_ok(cfg->host_name, sizeof(cfg->host_name)))
		return -EINVAL;
	if (cfg->host_name[0])
		ca[n++] = (struct common_attr){"host.name", cfg->host_name};
	ca[n++] = (struct common_attr){"telemetry.sdk.name", "meshtrace"};
	ca[n++] = (struct common_attr){"telemetry.sdk.language", "c"};
	ca[n++] = (struct common_attr){"telemetry.sdk.version", MESHTRACE_VERSION};
	for (i = 0; i < cfg->n_resource_attrs && i < OTLP_RESOURCE_ATTRS_MAX; i++) {
		const struct otlp_kv *a = &cfg->resource_attrs[i];

		if (!cfg_str_ok(a->key, sizeof(a->key)) || !cfg_str_ok(a->value, sizeof(a->value)))
			return -EINVAL;
		/* service.name from the agent's environment is the agent's, never a process's. */
		if (is_agent_key(a->key))
			continue;
		ca[n++] = (struct common_attr){a->key, a->value};
	}
	enc->common_len = put_common(NULL, ca, n);
	enc->common = malloc(enc->common_len + PB_SLACK);
	if (!enc->common)
		return -ENOMEM;
	put_common(enc->common, ca, n);

	/* ScopeSpans.scope: InstrumentationScope{name, version} */
	pb_str_set(&name, "meshtrace", strlen("meshtrace"));
	pb_str_set(&version, MESHTRACE_VERSION, strlen(MESHTRACE_VERSION));
	i = pb_str_field_size(name.wire_len) + pb_str_field_size(version.wire_len);
	enc->scope_len = pb_len_field_size(i);
	enc->scope = malloc(enc->scope_len + PB_SLACK);
	if (!enc->scope)
		return -ENOMEM;
	p = enc->scope;
	*p++ = TAG_SS_SCOPE;
	p = pb_put_varint(p, i);
	p = pb_put_opt_str(p, PB_TAG_SCOPE_NAME, &name);
	pb_put_opt_str(p, PB_TAG_SCOPE_VERSION, &version);
	return 0;
}

void otlp_encoder__free(struct otlp_encoder *enc)
{
	if (!enc)
		return;
	free(enc->common);
	free(enc->scope);
	free(enc->pid_key);
	free(enc->pid_val);
	free(enc->res_first);
	free(enc->res_count);
	free(enc->res_next);
	free(enc->span_res);
	free(enc->order);
	free(enc->out);
	free(enc);
}

struct otlp_encoder *otlp_encoder__new(const struct otlp_config *cfg, size_t max_spans)
{
	struct otlp_encoder *enc;
	size_t cap = max_spans ? max_spans : 1;
	size_t pid_slots = 2;
	int err;

	if (max_spans > OTLP_QUEUE_LIMIT) {
		errno = EINVAL;
		return NULL;
	}
	enc = calloc(1, sizeof(*enc));
	if (!enc)
		return NULL; /* calloc() set errno to ENOMEM */
	enc->cap = cap;
	enc->cfg = *cfg;
	enc->span_bytes = SPAN_BYTES_GUESS;
	err = build_common(enc);
	if (err)
		goto out_free;

	while (pid_slots < 2 * cap)
		pid_slots <<= 1;
	enc->pid_mask = pid_slots - 1;

	err = -ENOMEM;
	enc->pid_key = calloc(pid_slots, sizeof(*enc->pid_key));
	enc->pid_val = calloc(pid_slots, sizeof(*enc->pid_val));
	enc->res_first = calloc(cap, sizeof(*enc->res_first));
	enc->res_count = calloc(cap, sizeof(*enc->res_count));
	enc->res_next = calloc(cap, sizeof(*enc->res_next));
	enc->span_res = calloc(cap, sizeof(*enc->span_res));
	enc->order = calloc(cap, sizeof(*enc->order));
	if (!enc->pid_key || !enc->pid_val || !enc->res_first || !enc->res_count ||
	    !enc->res_next || !enc->span_res || !enc->order)
		goto out_free;
	return enc;

out_free:
	otlp_encoder__free(enc);
	errno = -err;
	return NULL;
}

void otlp_encoder_swap_buf(struct otlp_encoder *enc, uint8_t **buf, size_t *cap)
{
	uint8_t *b = enc->out;
	size_t c = enc->out_cap;

	enc->out = *buf;
	enc->out_cap = *cap;
	*buf = b;
	*cap = c;
}

/* ---- per batch ---- */

/* Process index of @pid, a new one when first seen. */
static uint32_t res_index(struct otlp_encoder *enc, uint32_t pid, uint32_t *n_res)
{
	size_t h = ((size_t)pid * 2654435761u) & enc->pid_mask;

	while (enc->pid_val[h] >= 0) {
		if (enc->pid_key[h] == pid)
			return (uint32_t)enc->pid_val[h];
		h = (h + 1) & enc->pid_mask;
	}
	enc->pid_key[h] = pid;
	enc->pid_val[h] = (int32_t)*n_res;
	enc->res_count[*n_res] = 0;
	return (*n_res)++;
}

static const uint8_t zero_id[8];

/*
 * Measures span @s: its attributes into enc->attrs and enc->wattr, its
 * strings into @trace_state and @name. Returns the Span message's size.
 */
static size_t span_measure(struct otlp_encoder *enc, const struct mt_span *s,
			   struct pb_str *trace_state, struct pb_str *name)
{
	/* trace_id and span_id: tag, 1-byte length, bytes */
	size_t size = 2 + sizeof(s->trace_id) + 2 + sizeof(s->span_id);
	unsigned i;

	pb_str_set(trace_state, s->tracestate, strnlen(s->tracestate, sizeof(s->tracestate)));
	pb_str_set(name, s->name, strnlen(s->name, sizeof(s->name)));
	size += pb_str_field_size(trace_state->wire_len);
	if (memcmp(s->parent_span_id, zero_id, sizeof(zero_id)))
		size += 2 + sizeof(s->parent_span_id);
	size += pb_str_field_size(name->wire_len);
	if (s->kind)
		size += 1 + pb_varint_size(s->kind);
	if (s->start_unix_ns)
		size += 1 + 8;
	if (s->end_unix_ns)
		size += 1 + 8;
	if (s->status != MT_STATUS_UNSET)
		size += pb_len_field_size(1 + pb_varint_size(s->status));

	span_attrs_build(&enc->attrs, s, enc->cfg.known_methods, enc->cfg.n_known_methods);
	k8s_span_peer_attrs(enc->cfg.k8s, s, &enc->attrs);
	for (i = 0; i < enc->attrs.n; i++) {
		const struct span_attr *a = &enc->attrs.attr[i];
		struct pb_attr *wa = &enc->wattr[i];

		/* Keys are the semantic conventions' names: ASCII. */
		wa->key.s = a->key;
		wa->key.len = a->key_len;
		wa->key.wire_len = wa->key.len;
		wa->key.repair = false;
		wa->is_str = a->type != SPAN_ATTR_INT;
		wa->num = a->num;
		if (wa->is_str)
			pb_str_set(&wa->val, a->str, strlen(a->str));
		pb_attr_measure(wa);
		size += pb_len_field_size(wa->kv_len);
	}
	return size;
}

/* Writes the ScopeSpans.spans field of span @s, measured by span_measure() as @size bytes. */
static uint8_t *put_span(struct otlp_encoder *enc, uint8_t *p, const struct mt_span *s, size_t size,
			 const struct pb_str *trace_state, const struct pb_str *name)
{
	unsigned i;

	*p++ = TAG_SS_SPANS;
	p = pb_put_varint(p, size);
	p = pb_put_bytes(p, TAG_SPAN_TRACE_ID, s->trace_id, sizeof(s->trace_id));
	p = pb_put_bytes(p, TAG_SPAN_SPAN_ID, s->span_id, sizeof(s->span_id));
	p = pb_put_opt_str(p, TAG_SPAN_TRACE_STATE, trace_state);
	if (memcmp(s->parent_span_id, zero_id, sizeof(zero_id)))
		p = pb_put_bytes(p, TAG_SPAN_PARENT_SPAN_ID, s->parent_span_id,
				 sizeof(s->parent_span_id));
	p = pb_put_opt_str(p, TAG_SPAN_NAME, name);
	if (s->kind) {
		*p++ = TAG_SPAN_KIND;
		p = pb_put_varint(p, s->kind);
	}
	if (s->start_unix_ns) {
		*p++ = TAG_SPAN_START;
		p = pb_put_fixed64(p, s->start_unix_ns);
	}
	if (s->end_unix_ns) {
		*p++ = TAG_SPAN_END;
		p = pb_put_fixed64(p, s->end_unix_ns);
	}
	for (i = 0; i < enc->attrs.n; i++)
		p = pb_put_attr(p, TAG_SPAN_ATTRIBUTES, &enc->wattr[i]);
	if (s->status != MT_STATUS_UNSET) {
		*p++ = TAG_SPAN_STATUS;
		p = pb_put_varint(p, 1 + pb_varint_size(s->status));
		*p++ = TAG_STATUS_CODE;
		p = pb_put_varint(p, s->status);
	}
	return p;
}

/* The attributes a process sets itself, measured. */
struct res_own {
	char exe[MT_EXE_MAX];
	char svc[MT_SERVICE_MAX + sizeof("unknown_service:")];
	struct pb_attr attr[RES_OWN_ATTRS];
	unsigned n;
	size_t resource_len; /* the Resource message's body */
};

/* Adds a string attribute (@str), or an int one (@str NULL, @num). */
static void res_own_add(struct res_own *o, const char *key, const char *str, int64_t num)
{
	struct pb_attr *wa = &o->attr[o->n];

	pb_str_set(&wa->key, key, strlen(key));
	wa->is_str = str != NULL;
	wa->num = num;
	if (str)
		pb_str_set(&wa->val, str, strlen(str));
	pb_attr_measure(wa);
	o->resource_len += pb_len_field_size(wa->kv_len);
	o->n++;
}

static void res_own_build(struct otlp_encoder *enc, struct res_own *o, const struct mt_resource *p)
{
	struct k8s_attr k8s[K8S_ATTRS_MAX];
	unsigned i, n;

	o->n = 0;
	o->resource_len = enc->common_len;
	/* The fields are arrays: copy so an unterminated one cannot run over. */
	snprintf(o->exe, sizeof(o->exe), "%.*s", (int)sizeof(p->exe_name), p->exe_name);
	if (p->service_name[0])
		snprintf(o->svc, sizeof(o->svc), "%.*s", (int)sizeof(p->service_name),
			 p->service_name);
	else if (o->exe[0])
		snprintf(o->svc, sizeof(o->svc), "unknown_service:%s", o->exe);
	else
		snprintf(o->svc, sizeof(o->svc), "unknown_service");
	res_own_add(o, "service.name", o->svc, 0);
	res_own_add(o, "process.pid", NULL, p->pid);
	if (o->exe[0])
		res_own_add(o, "process.executable.name", o->exe, 0);
	/* Once per process and batch, like the rest of the resource: not per span. */
	n = k8s_resource_attrs(enc->cfg.k8s, p, k8s);
	for (i = 0; i < n; i++)
		res_own_add(o, k8s[i].key, k8s[i].value, 0);
}

/* Bytes before the first span: ResourceSpans field, Resource, ScopeSpans field, scope. */
static size_t res_head_size(const struct otlp_encoder *enc, const struct res_own *o,
			    size_t spans_len)
{
	size_t rs_len = pb_len_field_size(o->resource_len) +
			pb_len_field_size(enc->scope_len + spans_len); /* ResourceSpans body */

	return pb_len_field_size(rs_len) - spans_len;
}

/* The ResourceSpans field up to its first span, for @spans_len bytes of spans. */
static uint8_t *put_resource_head(struct otlp_encoder *enc, uint8_t *p, const struct res_own *o,
				  size_t spans_len)
{
	size_t ss_len = enc->scope_len + spans_len;
	size_t rs_len = pb_len_field_size(o->resource_len) + pb_len_field_size(ss_len);
	unsigned i;

	*p++ = TAG_REQUEST_RESOURCE_SPANS;
	p = pb_put_varint(p, rs_len);
	*p++ = TAG_RS_RESOURCE;
	p = pb_put_varint(p, o->resource_len);
	for (i = 0; i < o->n; i++)
		p = pb_put_attr(p, PB_TAG_RESOURCE_ATTRIBUTES, &o->attr[i]);
	memcpy(p, enc->common, enc->common_len);
	p += enc->common_len;
	*p++ = TAG_RS_SCOPE_SPANS;
	p = pb_put_varint(p, ss_len);
	memcpy(p, enc->scope, enc->scope_len);
	return p + enc->scope_len;
}

/*
 * Appends one ResourceSpans: process @r's resource, then its spans. The spans
 * go first, after room for the head sized from the spans expected; the head
 * is written last, when the lengths it holds are known, and the spans move
 * only when that guess was wrong.
 */
static int put_resource(struct otlp_encoder *enc, const struct mt_span *spans, uint32_t r,
			uint32_t first_slot)
{
	struct res_own own;
	size_t start = enc->out_len, head, spans_at, spans_len, i;
	uint32_t count = enc->res_count[r];
	int err;

	res_own_build(enc, &own, &spans[enc->res_first[r]].resource);
	head = res_head_size(enc, &own, enc->span_bytes * count);
	err = out_reserve(enc, head);
	if (err)
		return err;
	spans_at = start + head;
	enc->out_len = spans_at;

	for (i = 0; i < count; i++) {
		const struct mt_span *s = &spans[enc->order[first_slot + i]];
		struct pb_str trace_state, name;
		size_t size = span_measure(enc, s, &trace_state, &name);
		uint8_t *end;

		err = out_reserve(enc, pb_len_field_size(size));
		if (err)
			return err;
		end = put_span(enc, enc->out + enc->out_len, s, size, &trace_state, &name);
		enc->out_len = (size_t)(end - enc->out);
	}

	spans_len = enc->out_len - spans_at;
	i = res_head_size(enc, &own, spans_len);
	if (i != head) {
		if (i > head) {
			err = out_reserve(enc, i - head);
			if (err)
				return err;
		}
		memmove(enc->out + start + i, enc->out + spans_at, spans_len);
		enc->out_len = start + i + spans_len;
	}
	put_resource_head(enc, enc->out + start, &own, spans_len);
	return 0;
}

int otlp_encoder_encode(struct otlp_encoder *enc, const struct mt_span *spans, size_t n,
			const uint8_t **out, size_t *outlen)
{
	uint32_t n_res = 0, r, off;
	size_t i;
	int err;

	if (n > enc->cap)
		return -E2BIG;
	enc->out_len = 0;
	err = out_reserve(enc, n * enc->span_bytes);
	if (err)
		return err;
	memset(enc->pid_val, 0xff, (enc->pid_mask + 1) * sizeof(*enc->pid_val));

	/* Group by process, keeping the spans' order within each. */
	for (i = 0; i < n; i++) {
		r = res_index(enc, spans[i].resource.pid, &n_res);
		if (!enc->res_count[r])
			enc->res_first[r] = (uint32_t)i;
		enc->res_count[r]++;
		enc->span_res[i] = r;
	}
	for (r = 0, off = 0; r < n_res; r++) {
		enc->res_next[r] = off;
		off += enc->res_count[r];
	}
	for (i = 0; i < n; i++)
		enc->order[enc->res_next[enc->span_res[i]]++] = (uint32_t)i;

	for (r = 0, off = 0; r < n_res; r++) {
		err = put_resource(enc, spans, r, off);
		if (err)
			return err;
		off += enc->res_count[r];
	}
	if (n)
		enc->span_bytes = enc->out_len / n;
	*out = enc->out;
	*outlen = enc->out_len;
	return 0;
}

int otlp_encode_spans(const struct mt_span *spans, size_t n, const struct otlp_config *cfg,
		      uint8_t **out, size_t *outlen)
{
	struct otlp_encoder *enc;
	const uint8_t *pb;
	uint8_t *buf = NULL;
	size_t len, cap = 0;
	int err;

	if ((!spans && n) || !cfg || !out || !outlen)
		return -EINVAL;
	enc = otlp_encoder__new(cfg, n);
	if (!enc)
		return -errno;
	err = otlp_encoder_encode(enc, spans, n, &pb, &len);
	if (err)
		goto out_free_enc;
	/* The encoder's buffer is the caller's now: no copy. */
	otlp_encoder_swap_buf(enc, &buf, &cap);
	*out = buf;
	*outlen = len;
out_free_enc:
	otlp_encoder__free(enc);
	return err;
}
