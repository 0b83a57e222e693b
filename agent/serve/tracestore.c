// SPDX-License-Identifier: Apache-2.0
/*
 * Recent and slowest traces for the agent's page (contract in tracestore.h).
 *
 * Traces live in a fixed array, found by a chained hash on the trace id and
 * ordered by last activity in a doubly linked list (head: most recent). Spans
 * live in a fixed pool, each trace holding a singly linked list of its own.
 * Up to TRACESTORE_SLOWEST_MAX traces are pinned as the slowest: eviction
 * skips them until a slower trace takes their place or they grow older than
 * TRACESTORE_SLOW_KEEP_S.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/common/json.h"
#include "agent/serve/tracestore.h"
#include "agent/common/hashtab.h"
#include "agent/common/util.h"
#include "agent/export/span_attrs.h"

#define NS_PER_MS    UINT64_C(1000000)
#define SLOW_KEEP_NS ((uint64_t)TRACESTORE_SLOW_KEEP_S * UINT64_C(1000000000))

struct ts_span {
	struct mt_span span;
	uint32_t next; /* next span of the same trace, or of the free list */
};

struct ts_trace {
	uint8_t trace_id[16];
	bool used;
	bool error;
	bool slow; /* pinned in t->slow[] */
	uint32_t nspans;
	uint32_t spans;		   /* first span */
	uint64_t start_ns, end_ns; /* earliest start, latest end over its spans */
};

struct tracestore {
	struct ts_trace traces[TRACESTORE_TRACES_MAX];
	struct hashtab by_id; /* traces by id; its free list holds the free trace slots */
	struct lrulist lru;   /* most recently active first */
	uint32_t free_spans;
	uint32_t slow[TRACESTORE_SLOWEST_MAX];
	unsigned nslow;
	struct tracestore_stats stats;
	struct ts_span spans[TRACESTORE_SPANS_MAX];
};

static uint32_t hash_id(const uint8_t id[16])
{
	uint64_t h;

	/* Trace ids are random (W3C) or made by our own generator: mixing 8 bytes is plenty. */
	memcpy(&h, id + 8, sizeof(h));
	return hashtab_hash64(h);
}

struct tracestore *tracestore__new(void)
{
	struct tracestore *t = calloc(1, sizeof(*t));
	uint32_t i;

	if (!t)
		return NULL;
	if (hashtab_init(&t->by_id, TRACESTORE_TRACES_MAX, 0) ||
	    lrulist_init(&t->lru, TRACESTORE_TRACES_MAX)) {
		tracestore__free(t);
		return NULL;
	}
	for (i = 0; i < TRACESTORE_SPANS_MAX; i++)
		t->spans[i].next = i + 1 < TRACESTORE_SPANS_MAX ? i + 1 : NIL;
	t->free_spans = 0;
	return t;
}

void tracestore__free(struct tracestore *t)
{
	if (!t)
		return;
	hashtab_fini(&t->by_id);
	lrulist_fini(&t->lru);
	free(t);
}

void tracestore_stats(const struct tracestore *t, struct tracestore_stats *out)
{
	*out = t->stats;
}

static uint32_t find(const struct tracestore *t, const uint8_t id[16])
{
	uint32_t i;

	for (i = hashtab_first(&t->by_id, hash_id(id)); i != NIL; i = hashtab_next(&t->by_id, i))
		if (!memcmp(t->traces[i].trace_id, id, 16))
			return i;
	return NIL;
}

static void unpin(struct tracestore *t, unsigned k)
{
	t->traces[t->slow[k]].slow = false;
	t->slow[k] = t->slow[--t->nslow];
}

/* Forgets trace @i: its spans go back to the pool, its slot to the free list. */
static void evict(struct tracestore *t, uint32_t i)
{
	struct ts_trace *tr = &t->traces[i];
	uint32_t s = tr->spans;

	if (tr->slow) {
		for (unsigned k = 0; k < t->nslow; k++) {
			if (t->slow[k] == i) {
				unpin(t, k);
				break;
			}
		}
	}
	while (s != NIL) {
		uint32_t next = t->spans[s].next;

		t->spans[s].next = t->free_spans;
		t->free_spans = s;
		s = next;
	}
	t->stats.spans -= tr->nspans;
	hashtab_unlink(&t->by_id, hash_id(tr->trace_id), i);
	lrulist_unlink(&t->lru, i);
	memset(tr, 0, sizeof(*tr));
	hashtab_slot_free(&t->by_id, i);
	t->stats.traces--;
	t->stats.traces_evicted++;
}

/* Evicts the least recently active trace that is neither pinned nor @keep. */
static bool evict_one(struct tracestore *t, uint32_t keep)
{
	uint32_t i;

	for (i = t->lru.tail; i != NIL; i = lrulist_prev(&t->lru, i)) {
		if (i != keep && !t->traces[i].slow) {
			evict(t, i);
			return true;
		}
	}
	return false;
}

static uint64_t duration_ns(const struct ts_trace *tr)
{
	return tr->end_ns > tr->start_ns ? tr->end_ns - tr->start_ns : 0;
}

/* Keeps t->slow[] the slowest recent traces after trace @i changed. */
static void update_slowest(struct tracestore *t, uint32_t i, uint64_t now_ns)
{
	struct ts_trace *tr = &t->traces[i];
	unsigned k, fastest = 0;

	for (k = 0; k < t->nslow;) {
		if (t->traces[t->slow[k]].end_ns + SLOW_KEEP_NS < now_ns)
			unpin(t, k);
		else
			k++;
	}
	if (tr->slow)
		return;
	if (t->nslow < TRACESTORE_SLOWEST_MAX) {
		t->slow[t->nslow++] = i;
		tr->slow = true;
		return;
	}
	for (k = 1; k < t->nslow; k++)
		if (duration_ns(&t->traces[t->slow[k]]) < duration_ns(&t->traces[t->slow[fastest]]))
			fastest = k;
	if (duration_ns(tr) > duration_ns(&t->traces[t->slow[fastest]])) {
		unpin(t, fastest);
		t->slow[t->nslow++] = i;
		tr->slow = true;
	}
}

static uint32_t new_trace(struct tracestore *t, const uint8_t id[16])
{
	uint32_t i = hashtab_slot_alloc(&t->by_id);
	struct ts_trace *tr;

	if (i == NIL) {
		if (!evict_one(t, NIL))
			return NIL;
		i = hashtab_slot_alloc(&t->by_id);
	}
	tr = &t->traces[i];
	memset(tr, 0, sizeof(*tr));
	memcpy(tr->trace_id, id, 16);
	tr->used = true;
	tr->spans = NIL;
	hashtab_link(&t->by_id, hash_id(id), i);
	lrulist_push_head(&t->lru, i);
	t->stats.traces++;
	t->stats.traces_added++;
	return i;
}

void tracestore_add(struct tracestore *t, const struct mt_span *s)
{
	struct ts_trace *tr;
	uint32_t i, si;

	t->stats.spans_added++;
	i = find(t, s->trace_id);
	if (i == NIL) {
		i = new_trace(t, s->trace_id);
		if (i == NIL) {
			t->stats.spans_dropped_trace++;
			return;
		}
	} else {
		lrulist_touch(&t->lru, i);
	}
	tr = &t->traces[i];
	if (tr->nspans >= TRACESTORE_TRACE_SPANS_MAX) {
		t->stats.spans_dropped_trace++;
		return;
	}
	if (t->free_spans == NIL && !evict_one(t, i)) {
		t->stats.spans_dropped_trace++;
		return;
	}
	si = t->free_spans;
	t->free_spans = t->spans[si].next;
	span_attrs_copy_span(&t->spans[si].span, s);
	t->spans[si].next = tr->spans;
	tr->spans = si;
	if (!tr->nspans || s->start_unix_ns < tr->start_ns)
		tr->start_ns = s->start_unix_ns;
	if (s->end_unix_ns > tr->end_ns)
		tr->end_ns = s->end_unix_ns;
	if (s->status == MT_STATUS_ERROR)
		tr->error = true;
	tr->nspans++;
	t->stats.spans++;
	update_slowest(t, i, s->end_unix_ns);
}

/* ---- JSON */

static bool is_root_zero(const uint8_t id[8])
{
	static const uint8_t zero[8];

	return !memcmp(id, zero, sizeof(zero));
}

/* The span a person would call the trace's root: no parent, or a parent the store lacks. */
static const struct mt_span *trace_root(const struct tracestore *t, const struct ts_trace *tr)
{
	const struct mt_span *best = NULL;

	for (uint32_t a = tr->spans; a != NIL; a = t->spans[a].next) {
		const struct mt_span *s = &t->spans[a].span;
		bool orphan = !is_root_zero(s->parent_span_id);

		for (uint32_t b = tr->spans; b != NIL && orphan; b = t->spans[b].next)
			if (!memcmp(t->spans[b].span.span_id, s->parent_span_id, 8))
				orphan = false;
		if (!is_root_zero(s->parent_span_id) && !orphan)
			continue;
		/* Earliest start; among equals a SERVER span (the callee saw it first). */
		if (!best || s->start_unix_ns < best->start_unix_ns ||
		    (s->start_unix_ns == best->start_unix_ns && s->kind == MT_SPAN_SERVER))
			best = s;
	}
	return best;
}

/* "GET /api/ok" for HTTP, else the span's name. */
static void put_display_name(struct mt_json *j, const char *key, const struct mt_span *s)
{
	char name[MT_OPERATION_MAX + MT_TARGET_MAX + 2];

	if (s->protocol == MT_PROTO_HTTP1 && s->path[0])
		snprintf(name, sizeof(name), "%s %s", s->method[0] ? s->method : s->name, s->path);
	else
		snprintf(name, sizeof(name), "%s", s->name);
	mt_json_key_str(j, key, name);
}

static void put_id(struct mt_json *j, const char *key, const uint8_t *id, size_t n)
{
	char hex[33];

	span_attrs_hex(hex, id, n);
	mt_json_key_str(j, key, hex);
}

struct order_ctx {
	const struct tracestore *t;
	enum tracestore_sort sort;
};

static int cmp_traces(const void *pa, const void *pb, void *arg)
{
	const struct order_ctx *o = arg;
	const struct ts_trace *a = &o->t->traces[*(const uint32_t *)pa];
	const struct ts_trace *b = &o->t->traces[*(const uint32_t *)pb];
	uint64_t ka, kb;

	if (o->sort == TRACESTORE_SLOWEST) {
		ka = duration_ns(a);
		kb = duration_ns(b);
	} else {
		ka = a->start_ns;
		kb = b->start_ns;
	}
	return ka < kb ? 1 : ka > kb ? -1 : 0;
}

int tracestore_list_json(const struct tracestore *t, enum tracestore_sort sort, unsigned limit,
			 uint64_t now_unix_ns, struct mt_buf *out)
{
	struct order_ctx o = {t, sort};
	uint32_t idx[TRACESTORE_TRACES_MAX];
	unsigned n = 0, i;
	struct mt_json j;

	for (uint32_t k = t->lru.head; k != NIL; k = lrulist_next(&t->lru, k)) {
		if (sort == TRACESTORE_SLOWEST && t->traces[k].end_ns + SLOW_KEEP_NS < now_unix_ns)
			continue;
		idx[n++] = k;
	}
	qsort_r(idx, n, sizeof(idx[0]), cmp_traces, &o);
	if (n > limit)
		n = limit;
	mt_json_init(&j, out);
	mt_json_arr_open(&j);
	for (i = 0; i < n; i++) {
		const struct ts_trace *tr = &t->traces[idx[i]];
		const struct mt_span *root = trace_root(t, tr);

		mt_json_obj_open(&j);
		put_id(&j, "trace_id", tr->trace_id, 16);
		if (root)
			put_display_name(&j, "root_name", root);
		else
			mt_json_key_str(&j, "root_name", "");
		mt_json_key_str(&j, "root_service", root ? root->resource.service_name : "");
		mt_json_key_u64(&j, "start_unix_ms", tr->start_ns / NS_PER_MS);
		mt_json_key(&j, "duration_ms");
		mt_json_f64(&j, (double)duration_ns(tr) / 1e6, 3);
		mt_json_key_u64(&j, "spans", tr->nspans);
		mt_json_key(&j, "error");
		mt_json_bool(&j, tr->error);
		mt_json_obj_close(&j);
	}
	mt_json_arr_close(&j);
	return mt_json_err(&j);
}

static const char *kind_name(uint8_t kind)
{
	return kind == MT_SPAN_SERVER ? "SERVER" : kind == MT_SPAN_CLIENT ? "CLIENT" : "INTERNAL";
}

static const char *status_name(uint8_t status)
{
	return status == MT_STATUS_ERROR ? "ERROR" : status == MT_STATUS_OK ? "OK" : "UNSET";
}

static void put_attr_int(struct mt_json *j, const char *key, int64_t val)
{
	mt_json_key(j, key);
	mt_json_i64(j, val);
}

/*
 * The attributes the exporters send. HTTP: the semantic-convention list of
 * span_attrs.c. Other protocols: the operation, namespace and peer only (a
 * database statement may hold values; the page has no need for it).
 */
static void put_attributes(struct mt_json *j, const struct mt_span *s)
{
	mt_json_obj_open(j);

	if (s->protocol == MT_PROTO_HTTP1 || s->protocol == MT_PROTO_UNKNOWN ||
	    s->protocol == MT_PROTO_DNS) {
		struct span_attrs attrs;

		span_attrs_build(&attrs, s, NULL, 0);
		for (unsigned i = 0; i < attrs.n; i++) {
			const struct span_attr *a = &attrs.attr[i];

			if (a->type == SPAN_ATTR_INT)
				put_attr_int(j, a->key, a->num);
			else
				mt_json_key_str(j, a->key, a->str);
		}
		mt_json_obj_close(j);
		return;
	}
	mt_json_key_str(j, "network.protocol.name", l7_protocol_name(s->protocol));
	if (s->operation[0])
		mt_json_key_str(j, "db.operation.name", s->operation);
	if (s->db_namespace[0])
		mt_json_key_str(j, "db.namespace", s->db_namespace);
	if (s->status_text[0])
		mt_json_key_str(j, "db.response.status_code", s->status_text);
	if (s->server_address[0])
		mt_json_key_str(j, "server.address", s->server_address);
	if (s->server_port)
		put_attr_int(j, "server.port", s->server_port);
	if (s->peer_address[0])
		mt_json_key_str(j, "network.peer.address", s->peer_address);
	if (s->peer_port)
		put_attr_int(j, "network.peer.port", s->peer_port);
	mt_json_obj_close(j);
}

static int cmp_span_start(const void *pa, const void *pb)
{
	const struct mt_span *a = *(const struct mt_span *const *)pa;
	const struct mt_span *b = *(const struct mt_span *const *)pb;

	if (a->start_unix_ns != b->start_unix_ns)
		return a->start_unix_ns < b->start_unix_ns ? -1 : 1;
	/* The caller's CLIENT span starts before the callee's SERVER span it causes. */
	return (a->kind == MT_SPAN_SERVER) - (b->kind == MT_SPAN_SERVER);
}

int tracestore_trace_json(const struct tracestore *t, const char *trace_id_hex, struct mt_buf *out)
{
	const struct mt_span *spans[TRACESTORE_TRACE_SPANS_MAX];
	const struct ts_trace *tr;
	uint8_t id[16];
	unsigned n = 0;
	struct mt_json j;
	uint32_t i;

	if (strlen(trace_id_hex) != 32)
		return -EINVAL;
	for (int k = 0; k < 16; k++) {
		int hi = mt_hex_digit(trace_id_hex[2 * k]),
		    lo = mt_hex_digit(trace_id_hex[2 * k + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		id[k] = (uint8_t)(hi << 4 | lo);
	}
	i = find(t, id);
	if (i == NIL)
		return -ENOENT;
	tr = &t->traces[i];
	for (uint32_t s = tr->spans; s != NIL && n < ARRAY_SIZE(spans); s = t->spans[s].next)
		spans[n++] = &t->spans[s].span;
	qsort(spans, n, sizeof(spans[0]), cmp_span_start);

	mt_json_init(&j, out);
	mt_json_obj_open(&j);
	put_id(&j, "trace_id", tr->trace_id, 16);
	mt_json_key(&j, "spans");
	mt_json_arr_open(&j);
	for (unsigned k = 0; k < n; k++) {
		const struct mt_span *s = spans[k];

		mt_json_obj_open(&j);
		put_id(&j, "span_id", s->span_id, 8);
		if (is_root_zero(s->parent_span_id))
			mt_json_key_str(&j, "parent_span_id", "");
		else
			put_id(&j, "parent_span_id", s->parent_span_id, 8);
		put_display_name(&j, "name", s);
		mt_json_key_str(&j, "kind", kind_name(s->kind));
		mt_json_key_str(&j, "service", s->resource.service_name);
		mt_json_key_u64(&j, "pid", s->resource.pid);
		mt_json_key_u64(&j, "start_unix_ns", s->start_unix_ns);
		mt_json_key_u64(&j, "end_unix_ns", s->end_unix_ns);
		mt_json_key_str(&j, "status", status_name(s->status));
		mt_json_key(&j, "attributes");
		put_attributes(&j, s);
		mt_json_obj_close(&j);
	}
	mt_json_arr_close(&j);
	mt_json_obj_close(&j);
	return mt_json_err(&j);
}

/* ---- HTTP */

/* The value of @key in a query string ("a=1&b=2"), copied into @val; false if absent. */
static bool query_param(const char *query, const char *key, char *val, size_t len)
{
	size_t klen = strlen(key);
	const char *p = query;

	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			size_t vlen = n - klen - 1;

			if (vlen >= len)
				vlen = len - 1;
			memcpy(val, p + klen + 1, vlen);
			val[vlen] = '\0';
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

static int bad_request(struct httpd_response *resp, const char *msg)
{
	resp->status = 400;
	resp->content_type = "application/json";
	mt_buf_reset(&resp->body);
	return mt_buf_printf(&resp->body, "{\"error\":\"%s\"}\n", msg);
}

int tracestore_serve_list(void *ctx, const char *path, const char *query,
			  struct httpd_response *resp)
{
	enum tracestore_sort sort = TRACESTORE_RECENT;
	unsigned long limit = TRACESTORE_LIST_DEFAULT;
	struct timespec now;
	char val[16];
	int rc;

	(void)path;
	if (query_param(query, "sort", val, sizeof(val))) {
		if (!strcmp(val, "slowest"))
			sort = TRACESTORE_SLOWEST;
		else if (strcmp(val, "recent"))
			return bad_request(resp, "sort: use recent or slowest");
	}
	if (query_param(query, "limit", val, sizeof(val))) {
		char *end;

		errno = 0;
		limit = strtoul(val, &end, 10);
		if (errno || end == val || *end || val[0] == '-' || !limit ||
		    limit > TRACESTORE_TRACES_MAX)
			return bad_request(resp, "limit: give a number from 1 to 512");
	}
	clock_gettime(CLOCK_REALTIME, &now);
	resp->content_type = "application/json";
	rc = tracestore_list_json(
		ctx, sort, (unsigned)limit,
		(uint64_t)now.tv_sec * UINT64_C(1000000000) + (uint64_t)now.tv_nsec, &resp->body);
	return rc ? rc : mt_buf_puts(&resp->body, "\n");
}

int tracestore_serve_trace(void *ctx, const char *path, const char *query,
			   struct httpd_response *resp)
{
	const char *id = strrchr(path, '/');
	int rc;

	(void)query;
	id = id ? id + 1 : path;
	resp->content_type = "application/json";
	rc = tracestore_trace_json(ctx, id, &resp->body);
	if (rc == -EINVAL)
		return bad_request(resp, "give a trace id of 32 hex digits");
	if (rc == -ENOENT) {
		resp->status = 404;
		mt_buf_reset(&resp->body);
		return mt_buf_puts(&resp->body, "{\"error\":\"trace not held: it may have been "
						"forgotten to make room for newer ones\"}\n");
	}
	return rc ? rc : mt_buf_puts(&resp->body, "\n");
}
