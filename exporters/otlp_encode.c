// SPDX-License-Identifier: Apache-2.0
/*
 * Spans to an OTLP ExportTraceServiceRequest (protobuf), with protobuf-c.
 * Spec: https://opentelemetry.io/docs/specs/otlp/ and exporters/proto/otlp.proto.
 *
 * The message tree is built in arrays sized once for the largest batch, and
 * its strings point into the spans themselves: encoding a batch allocates
 * nothing in the steady state. Strings that are not valid UTF-8 (protobuf
 * requires it, and a collector rejects the whole request otherwise) are
 * repaired into a per-batch arena.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otlp.pb-c.h"
#include "otlp_internal.h"
#include "span_attrs.h"
#include "utf8.h"

/* Resource attributes set per process: service.name, process.pid, process.executable.name. */
#define RES_OWN_ATTRS 3
/* host.name + telemetry.sdk.{name,language,version} + OTEL_RESOURCE_ATTRIBUTES */
#define RES_COMMON_MAX (4 + OTLP_RESOURCE_ATTRS_MAX)
/* Arena bytes one span may need, worst case: every string repaired (3 bytes per input byte). */
#define ARENA_PER_SPAN \
	(3 * (sizeof(struct mt_span) + sizeof(((struct span_attrs *)0)->url_full) + 64))

struct otlp_encoder {
	size_t cap; /* spans per batch */
	struct otlp_config cfg;
	const char *env_service_name; /* service.name from OTEL_RESOURCE_ATTRIBUTES, or NULL */

	Meshtrace__Otlp__InstrumentationScope scope;
	Meshtrace__Otlp__KeyValue common_kv[RES_COMMON_MAX];
	Meshtrace__Otlp__AnyValue common_av[RES_COMMON_MAX];
	size_t n_common;

	/* per process (at most cap) */
	Meshtrace__Otlp__ResourceSpans *rs;
	Meshtrace__Otlp__ResourceSpans **rs_ptrs;
	Meshtrace__Otlp__ScopeSpans *ss;
	Meshtrace__Otlp__ScopeSpans **ss_ptrs;
	Meshtrace__Otlp__Resource *res;
	Meshtrace__Otlp__KeyValue *res_kv; /* RES_OWN_ATTRS per process */
	Meshtrace__Otlp__AnyValue *res_av;
	Meshtrace__Otlp__KeyValue **res_kv_ptrs; /* RES_OWN_ATTRS + n_common per process */
	uint32_t *res_first;			 /* index of the process's first span */
	uint32_t *res_count;
	uint32_t *res_next; /* next free slot in span_ptrs while placing */

	/* pid -> process index, open addressing */
	uint32_t *pid_key;
	int32_t *pid_val;
	size_t pid_mask;

	/* per span */
	uint32_t *span_res;
	Meshtrace__Otlp__Span *span;
	Meshtrace__Otlp__Span **span_ptrs;
	Meshtrace__Otlp__Status *status;
	Meshtrace__Otlp__KeyValue *kv; /* SPAN_ATTRS_MAX per span */
	Meshtrace__Otlp__AnyValue *av;
	Meshtrace__Otlp__KeyValue **kv_ptrs;

	char *arena;
	size_t arena_len;
	size_t arena_cap;

	uint8_t *out;
	size_t out_cap;
};

uint64_t otlp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* protobuf-c wants char * for strings it only reads. */
static char *unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

/*
 * A string protobuf can carry: @s itself when it is valid UTF-8 and may be
 * referenced until packing, else a repaired copy in the arena.
 */
static char *wire_str(struct otlp_encoder *enc, const char *s, bool copy)
{
	size_t len = strlen(s);
	char *dst;

	if (!copy && utf8_valid(s, len))
		return unconst(s);
	/* Cannot run out: the arena holds ARENA_PER_SPAN per span. */
	if (enc->arena_cap - enc->arena_len < 3 * len + 1)
		return unconst("");
	dst = enc->arena + enc->arena_len;
	enc->arena_len += utf8_sanitize(dst, 3 * len + 1, s, len) + 1;
	return dst;
}

static const Meshtrace__Otlp__KeyValue kv_init = MESHTRACE__OTLP__KEY_VALUE__INIT;
static const Meshtrace__Otlp__AnyValue av_init = MESHTRACE__OTLP__ANY_VALUE__INIT;

/* Fills @kv and @av (fresh or reused) with one string attribute. */
static void set_str(Meshtrace__Otlp__KeyValue *kv, Meshtrace__Otlp__AnyValue *av, const char *key,
		    char *val)
{
	kv->key = unconst(key);
	kv->value = av;
	av->value_case = MESHTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = val;
}

static void set_int(Meshtrace__Otlp__KeyValue *kv, Meshtrace__Otlp__AnyValue *av, const char *key,
		    int64_t val)
{
	kv->key = unconst(key);
	kv->value = av;
	av->value_case = MESHTRACE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
	av->int_value = val;
}

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

static int build_common(struct otlp_encoder *enc)
{
	const struct otlp_config *cfg = &enc->cfg;
	size_t n = 0, i;

	for (i = 0; i < RES_COMMON_MAX; i++) {
		enc->common_kv[i] = kv_init;
		enc->common_av[i] = av_init;
	}
	if (!cfg_str_ok(cfg->host_name, sizeof(cfg->host_name)))
		return -EINVAL;
	if (cfg->host_name[0]) {
		set_str(&enc->common_kv[n], &enc->common_av[n], "host.name",
			unconst(cfg->host_name));
		n++;
	}
	set_str(&enc->common_kv[n], &enc->common_av[n], "telemetry.sdk.name", "meshtrace");
	n++;
	set_str(&enc->common_kv[n], &enc->common_av[n], "telemetry.sdk.language", "c");
	n++;
	set_str(&enc->common_kv[n], &enc->common_av[n], "telemetry.sdk.version", MESHTRACE_VERSION);
	n++;
	for (i = 0; i < cfg->n_resource_attrs && i < OTLP_RESOURCE_ATTRS_MAX; i++) {
		const struct otlp_kv *a = &cfg->resource_attrs[i];

		if (!cfg_str_ok(a->key, sizeof(a->key)) || !cfg_str_ok(a->value, sizeof(a->value)))
			return -EINVAL;
		if (!strcmp(a->key, "service.name"))
			enc->env_service_name = a->value;
		if (is_agent_key(a->key))
			continue;
		set_str(&enc->common_kv[n], &enc->common_av[n], a->key, unconst(a->value));
		n++;
	}
	enc->n_common = n;
	return 0;
}

void otlp_encoder__free(struct otlp_encoder *enc)
{
	if (!enc)
		return;
	free(enc->rs);
	free(enc->rs_ptrs);
	free(enc->ss);
	free(enc->ss_ptrs);
	free(enc->res);
	free(enc->res_kv);
	free(enc->res_av);
	free(enc->res_kv_ptrs);
	free(enc->res_first);
	free(enc->res_count);
	free(enc->res_next);
	free(enc->pid_key);
	free(enc->pid_val);
	free(enc->span_res);
	free(enc->span);
	free(enc->span_ptrs);
	free(enc->status);
	free(enc->kv);
	free(enc->av);
	free(enc->kv_ptrs);
	free(enc->arena);
	free(enc->out);
	free(enc);
}

static void init_messages(struct otlp_encoder *enc)
{
	static const Meshtrace__Otlp__ResourceSpans rs_init = MESHTRACE__OTLP__RESOURCE_SPANS__INIT;
	static const Meshtrace__Otlp__ScopeSpans ss_init = MESHTRACE__OTLP__SCOPE_SPANS__INIT;
	static const Meshtrace__Otlp__Resource res_init = MESHTRACE__OTLP__RESOURCE__INIT;
	static const Meshtrace__Otlp__Span span_init = MESHTRACE__OTLP__SPAN__INIT;
	static const Meshtrace__Otlp__Status status_init = MESHTRACE__OTLP__STATUS__INIT;
	static const Meshtrace__Otlp__InstrumentationScope scope_init =
		MESHTRACE__OTLP__INSTRUMENTATION_SCOPE__INIT;
	size_t i;

	enc->scope = scope_init;
	enc->scope.name = "meshtrace";
	enc->scope.version = MESHTRACE_VERSION;
	for (i = 0; i < enc->cap; i++) {
		enc->rs[i] = rs_init;
		enc->ss[i] = ss_init;
		enc->res[i] = res_init;
		enc->span[i] = span_init;
		enc->status[i] = status_init;
		enc->rs_ptrs[i] = &enc->rs[i];
		enc->ss_ptrs[i] = &enc->ss[i];
		enc->rs[i].resource = &enc->res[i];
		enc->rs[i].n_scope_spans = 1;
		enc->rs[i].scope_spans = &enc->ss_ptrs[i];
		enc->ss[i].scope = &enc->scope;
	}
	for (i = 0; i < enc->cap * RES_OWN_ATTRS; i++) {
		enc->res_kv[i] = kv_init;
		enc->res_av[i] = av_init;
	}
	for (i = 0; i < enc->cap * SPAN_ATTRS_MAX; i++) {
		enc->kv[i] = kv_init;
		enc->av[i] = av_init;
		enc->kv_ptrs[i] = &enc->kv[i];
	}
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
	if (!enc) {
		errno = ENOMEM;
		return NULL;
	}
	enc->cap = cap;
	enc->cfg = *cfg;
	err = build_common(enc);
	if (err)
		goto out_free;

	while (pid_slots < 2 * cap)
		pid_slots <<= 1;
	enc->pid_mask = pid_slots - 1;

	err = -ENOMEM;
	enc->rs = calloc(cap, sizeof(*enc->rs));
	enc->rs_ptrs = calloc(cap, sizeof(*enc->rs_ptrs));
	enc->ss = calloc(cap, sizeof(*enc->ss));
	enc->ss_ptrs = calloc(cap, sizeof(*enc->ss_ptrs));
	enc->res = calloc(cap, sizeof(*enc->res));
	enc->res_kv = calloc(cap * RES_OWN_ATTRS, sizeof(*enc->res_kv));
	enc->res_av = calloc(cap * RES_OWN_ATTRS, sizeof(*enc->res_av));
	enc->res_kv_ptrs = calloc(cap * (RES_OWN_ATTRS + enc->n_common), sizeof(*enc->res_kv_ptrs));
	enc->res_first = calloc(cap, sizeof(*enc->res_first));
	enc->res_count = calloc(cap, sizeof(*enc->res_count));
	enc->res_next = calloc(cap, sizeof(*enc->res_next));
	enc->pid_key = calloc(pid_slots, sizeof(*enc->pid_key));
	enc->pid_val = calloc(pid_slots, sizeof(*enc->pid_val));
	enc->span_res = calloc(cap, sizeof(*enc->span_res));
	enc->span = calloc(cap, sizeof(*enc->span));
	enc->span_ptrs = calloc(cap, sizeof(*enc->span_ptrs));
	enc->status = calloc(cap, sizeof(*enc->status));
	enc->kv = calloc(cap * SPAN_ATTRS_MAX, sizeof(*enc->kv));
	enc->av = calloc(cap * SPAN_ATTRS_MAX, sizeof(*enc->av));
	enc->kv_ptrs = calloc(cap * SPAN_ATTRS_MAX, sizeof(*enc->kv_ptrs));
	/* Large and touched only by invalid UTF-8: pages stay unmapped until used. */
	enc->arena_cap = cap * ARENA_PER_SPAN;
	enc->arena = malloc(enc->arena_cap);
	if (!enc->rs || !enc->rs_ptrs || !enc->ss || !enc->ss_ptrs || !enc->res || !enc->res_kv ||
	    !enc->res_av || !enc->res_kv_ptrs || !enc->res_first || !enc->res_count ||
	    !enc->res_next || !enc->pid_key || !enc->pid_val || !enc->span_res || !enc->span ||
	    !enc->span_ptrs || !enc->status || !enc->kv || !enc->av || !enc->kv_ptrs || !enc->arena)
		goto out_free;
	init_messages(enc);
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

static void build_resource(struct otlp_encoder *enc, uint32_t r, const struct mt_resource *p,
			   uint32_t first_slot)
{
	Meshtrace__Otlp__KeyValue *kv = &enc->res_kv[r * RES_OWN_ATTRS];
	Meshtrace__Otlp__AnyValue *av = &enc->res_av[r * RES_OWN_ATTRS];
	Meshtrace__Otlp__KeyValue **ptrs = &enc->res_kv_ptrs[r * (RES_OWN_ATTRS + enc->n_common)];
	char exe[MT_EXE_MAX], svc[MT_SERVICE_MAX + sizeof("unknown_service:")];
	size_t n = 0, i;

	/* The fields are arrays: copy so an unterminated one cannot run over. */
	snprintf(exe, sizeof(exe), "%.*s", (int)sizeof(p->exe_name), p->exe_name);
	if (p->service_name[0])
		snprintf(svc, sizeof(svc), "%.*s", (int)sizeof(p->service_name), p->service_name);
	else if (enc->env_service_name)
		snprintf(svc, sizeof(svc), "%s", enc->env_service_name);
	else if (exe[0])
		snprintf(svc, sizeof(svc), "unknown_service:%s", exe);
	else
		snprintf(svc, sizeof(svc), "unknown_service");

	set_str(&kv[n], &av[n], "service.name", wire_str(enc, svc, true));
	ptrs[n] = &kv[n];
	n++;
	set_int(&kv[n], &av[n], "process.pid", p->pid);
	ptrs[n] = &kv[n];
	n++;
	if (exe[0]) {
		set_str(&kv[n], &av[n], "process.executable.name", wire_str(enc, exe, true));
		ptrs[n] = &kv[n];
		n++;
	}
	for (i = 0; i < enc->n_common; i++)
		ptrs[n++] = &enc->common_kv[i];

	enc->res[r].n_attributes = n;
	enc->res[r].attributes = ptrs;
	enc->ss[r].n_spans = enc->res_count[r];
	enc->ss[r].spans = &enc->span_ptrs[first_slot];
}

static void build_span(struct otlp_encoder *enc, size_t slot, const struct mt_span *s)
{
	Meshtrace__Otlp__Span *sp = &enc->span[slot];
	Meshtrace__Otlp__KeyValue *kv = &enc->kv[slot * SPAN_ATTRS_MAX];
	Meshtrace__Otlp__AnyValue *av = &enc->av[slot * SPAN_ATTRS_MAX];
	static const uint8_t zero[8];
	struct span_attrs attrs;
	unsigned i;

	sp->trace_id.len = sizeof(s->trace_id);
	sp->trace_id.data = (uint8_t *)(uintptr_t)s->trace_id;
	sp->span_id.len = sizeof(s->span_id);
	sp->span_id.data = (uint8_t *)(uintptr_t)s->span_id;
	if (memcmp(s->parent_span_id, zero, sizeof(zero))) {
		sp->parent_span_id.len = sizeof(s->parent_span_id);
		sp->parent_span_id.data = (uint8_t *)(uintptr_t)s->parent_span_id;
	} else {
		sp->parent_span_id.len = 0;
		sp->parent_span_id.data = NULL;
	}
	sp->trace_state = wire_str(enc, s->tracestate, false);
	sp->name = wire_str(enc, s->name, false);
	sp->kind = (Meshtrace__Otlp__Span__SpanKind)s->kind;
	sp->start_time_unix_nano = s->start_unix_ns;
	sp->end_time_unix_nano = s->end_unix_ns;
	if (s->status != MT_STATUS_UNSET) {
		enc->status[slot].code = (Meshtrace__Otlp__Status__StatusCode)s->status;
		sp->status = &enc->status[slot];
	} else {
		sp->status = NULL;
	}

	span_attrs_build(&attrs, s, enc->cfg.known_methods, enc->cfg.n_known_methods);
	for (i = 0; i < attrs.n; i++) {
		const struct span_attr *a = &attrs.attr[i];

		if (a->type == SPAN_ATTR_INT)
			set_int(&kv[i], &av[i], a->key, a->num);
		else
			set_str(&kv[i], &av[i], a->key, wire_str(enc, a->str, a->local));
	}
	sp->n_attributes = attrs.n;
	sp->attributes = &enc->kv_ptrs[slot * SPAN_ATTRS_MAX];
}

int otlp_encoder_encode(struct otlp_encoder *enc, const struct mt_span *spans, size_t n,
			const uint8_t **out, size_t *outlen)
{
	Meshtrace__Otlp__ExportTraceServiceRequest req =
		MESHTRACE__OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	uint32_t n_res = 0, r, off;
	size_t i, len;

	if (n > enc->cap)
		return -E2BIG;
	enc->arena_len = 0;
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
		build_resource(enc, r, &spans[enc->res_first[r]].resource, off);
		off += enc->res_count[r];
	}
	for (i = 0; i < n; i++) {
		uint32_t slot = enc->res_next[enc->span_res[i]]++;

		build_span(enc, slot, &spans[i]);
		enc->span_ptrs[slot] = &enc->span[slot];
	}
	req.n_resource_spans = n_res;
	req.resource_spans = enc->rs_ptrs;

	len = protobuf_c_message_get_packed_size(&req.base);
	if (len > enc->out_cap || !enc->out) {
		size_t cap = len + len / 4 + 64;
		uint8_t *buf = realloc(enc->out, cap);

		if (!buf)
			return -ENOMEM;
		enc->out = buf;
		enc->out_cap = cap;
	}
	*outlen = protobuf_c_message_pack(&req.base, enc->out);
	*out = enc->out;
	return 0;
}

int otlp_encode_spans(const struct mt_span *spans, size_t n, const struct otlp_config *cfg,
		      uint8_t **out, size_t *outlen)
{
	struct otlp_encoder *enc;
	const uint8_t *pb;
	size_t len;
	int err;

	if ((!spans && n) || !cfg || !out || !outlen)
		return -EINVAL;
	enc = otlp_encoder__new(cfg, n);
	if (!enc)
		return -errno;
	err = otlp_encoder_encode(enc, spans, n, &pb, &len);
	if (err)
		goto out_free_enc;
	*out = malloc(len ? len : 1);
	if (!*out) {
		err = -ENOMEM;
		goto out_free_enc;
	}
	memcpy(*out, pb, len);
	*outlen = len;
out_free_enc:
	otlp_encoder__free(enc);
	return err;
}
