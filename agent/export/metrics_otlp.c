// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics to an OTLP ExportMetricsServiceRequest (cumulative temporality),
 * written straight in the protobuf wire format with the primitives the span
 * encoder uses (agent/export/pb.h). Messages and field numbers:
 * https://opentelemetry.io/docs/specs/otlp/ and agent/export/proto/otlp.proto.
 *
 * One ResourceMetrics for the agent (graph and health metrics) and one per
 * service (http.*), each with one ScopeMetrics and one Metric per family.
 * Runs once per export interval, not per span: simplicity before speed. A
 * message keeps one byte for its length when opened; when it is closed and
 * the length needs more, its body moves up.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/common/version.h"
#include "agent/export/metrics_internal.h"
#include "agent/export/pb.h"

/* AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE */
#define TEMPORALITY_CUMULATIVE 2

enum {
	TAG_REQUEST_RESOURCE_METRICS = PB_TAG(1, PB_LEN), /* ExportMetricsServiceRequest */
	TAG_RM_RESOURCE = PB_TAG(1, PB_LEN),		  /* ResourceMetrics.resource */
	TAG_RM_SCOPE_METRICS = PB_TAG(2, PB_LEN),	  /* ResourceMetrics.scope_metrics */
	TAG_SM_SCOPE = PB_TAG(1, PB_LEN),		  /* ScopeMetrics.scope */
	TAG_SM_METRICS = PB_TAG(2, PB_LEN),		  /* ScopeMetrics.metrics */
	TAG_METRIC_NAME = PB_TAG(1, PB_LEN),
	TAG_METRIC_DESCRIPTION = PB_TAG(2, PB_LEN),
	TAG_METRIC_UNIT = PB_TAG(3, PB_LEN),
	TAG_METRIC_GAUGE = PB_TAG(5, PB_LEN),
	TAG_METRIC_SUM = PB_TAG(7, PB_LEN),
	TAG_METRIC_HISTOGRAM = PB_TAG(9, PB_LEN),
	TAG_DATA_POINTS = PB_TAG(1, PB_LEN),	     /* Gauge, Sum, Histogram .data_points */
	TAG_TEMPORALITY = PB_TAG(2, PB_VARINT),	     /* Sum, Histogram .aggregation_temporality */
	TAG_SUM_IS_MONOTONIC = PB_TAG(3, PB_VARINT), /* Sum.is_monotonic */
	TAG_DP_START = PB_TAG(2, PB_FIXED64),	     /* *DataPoint.start_time_unix_nano */
	TAG_DP_TIME = PB_TAG(3, PB_FIXED64),	     /* *DataPoint.time_unix_nano */
	TAG_NDP_AS_DOUBLE = PB_TAG(4, PB_FIXED64),
	TAG_NDP_AS_INT = PB_TAG(6, PB_FIXED64), /* sfixed64 */
	TAG_NDP_ATTRIBUTES = PB_TAG(7, PB_LEN),
	TAG_HDP_COUNT = PB_TAG(4, PB_FIXED64),
	TAG_HDP_SUM = PB_TAG(5, PB_FIXED64),
	TAG_HDP_BUCKET_COUNTS = PB_TAG(6, PB_LEN),   /* packed fixed64 */
	TAG_HDP_EXPLICIT_BOUNDS = PB_TAG(7, PB_LEN), /* packed double */
	TAG_HDP_EXEMPLARS = PB_TAG(8, PB_LEN),
	TAG_HDP_ATTRIBUTES = PB_TAG(9, PB_LEN),
	TAG_EX_TIME = PB_TAG(2, PB_FIXED64), /* Exemplar.time_unix_nano */
	TAG_EX_AS_DOUBLE = PB_TAG(3, PB_FIXED64),
	TAG_EX_SPAN_ID = PB_TAG(4, PB_LEN),
	TAG_EX_TRACE_ID = PB_TAG(5, PB_LEN),
};

/* The request being written; after a failed allocation every write is a no-op. */
struct out {
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool oom;
};

/* Room for @n more bytes (and PB_SLACK). Returns false, and remembers it, when there is none. */
static bool reserve(struct out *o, size_t n)
{
	size_t want = o->len + n + PB_SLACK, cap;
	uint8_t *buf;

	if (o->oom)
		return false;
	if (want <= o->cap)
		return true;
	cap = o->cap * 2 > want ? o->cap * 2 : want;
	buf = realloc(o->buf, cap);
	if (!buf) {
		o->oom = true;
		return false;
	}
	o->buf = buf;
	o->cap = cap;
	return true;
}

/* Opens the message field @tag. Returns where its body starts, for close_msg(). */
static size_t open_msg(struct out *o, uint8_t tag)
{
	if (!reserve(o, 2))
		return 0;
	o->buf[o->len++] = tag;
	o->len++; /* the length, one byte until close_msg() knows better */
	return o->len;
}

/* Writes the length of the message whose body starts at @body. */
static void close_msg(struct out *o, size_t body)
{
	size_t len, extra;

	if (o->oom)
		return;
	len = o->len - body;
	extra = pb_varint_size(len) - 1;
	if (extra) {
		if (!reserve(o, extra))
			return;
		memmove(o->buf + body + extra, o->buf + body, len);
		o->len += extra;
	}
	pb_put_varint(o->buf + body - 1, len);
}

static void put_varint_field(struct out *o, uint8_t tag, uint64_t v)
{
	if (!reserve(o, 1 + 10))
		return;
	o->buf[o->len] = tag;
	o->len = (size_t)(pb_put_varint(o->buf + o->len + 1, v) - o->buf);
}

static void put_fixed64_field(struct out *o, uint8_t tag, uint64_t v)
{
	if (!reserve(o, 1 + 8))
		return;
	o->buf[o->len] = tag;
	o->len = (size_t)(pb_put_fixed64(o->buf + o->len + 1, v) - o->buf);
}

/* A proto3 fixed64 field: left out when 0. */
static void put_opt_fixed64_field(struct out *o, uint8_t tag, uint64_t v)
{
	if (v)
		put_fixed64_field(o, tag, v);
}

static uint64_t double_bits(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits;
}

/* A proto3 string field: left out when "". */
static void put_str_field(struct out *o, uint8_t tag, const char *s)
{
	struct pb_str w;

	pb_str_set(&w, s, strlen(s));
	if (!reserve(o, pb_str_field_size(w.wire_len)))
		return;
	o->len = (size_t)(pb_put_opt_str(o->buf + o->len, tag, &w) - o->buf);
}

/* Field @tag holding KeyValue{@key, string @str}, or int @num when @str is NULL. */
static void put_kv(struct out *o, uint8_t tag, const char *key, const char *str, int64_t num)
{
	struct pb_attr a;

	pb_str_set(&a.key, key, strlen(key));
	a.is_str = str != NULL;
	a.num = num;
	if (str)
		pb_str_set(&a.val, str, strlen(str));
	pb_attr_measure(&a);
	if (!reserve(o, pb_len_field_size(a.kv_len)))
		return;
	o->len = (size_t)(pb_put_attr(o->buf + o->len, tag, &a) - o->buf);
}

static void put_point_attrs(struct out *o, uint8_t tag, const struct point *p)
{
	for (unsigned i = 0; i < p->nattrs; i++)
		put_kv(o, tag, p->attrs[i].key, p->attrs[i].str, p->attrs[i].num);
}

/* The Resource of service @service (in namespace @ns, "" or NULL: none), or the agent's when NULL. */
static void put_resource(struct out *o, const struct metrics *m, const char *service,
			 const char *ns)
{
	size_t body = open_msg(o, TAG_RM_RESOURCE);

	put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, "service.name",
	       service ? service : metrics_agent_service_name(m), 0);
	if (service && ns && ns[0])
		put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, "service.namespace", ns, 0);
	if (m->cfg.host_name[0])
		put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, "host.name", m->cfg.host_name, 0);
	put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, "telemetry.sdk.name", "meshtrace", 0);
	put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, "telemetry.sdk.language", "c", 0);
	put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, "telemetry.sdk.version", MESHTRACE_VERSION, 0);
	for (unsigned i = 0; i < m->cfg.n_resource_attrs; i++) {
		const struct otlp_kv *kv = &m->cfg.resource_attrs[i];

		if (!metrics_agent_resource_key(kv->key))
			put_kv(o, PB_TAG_RESOURCE_ATTRIBUTES, kv->key, kv->value, 0);
	}
	close_msg(o, body);
}

static void put_scope(struct out *o)
{
	size_t body = open_msg(o, TAG_SM_SCOPE);

	put_str_field(o, PB_TAG_SCOPE_NAME, METRICS_SCOPE_NAME);
	put_str_field(o, PB_TAG_SCOPE_VERSION, MESHTRACE_VERSION);
	close_msg(o, body);
}

/* A NumberDataPoint: an integer value as as_int, any other as as_double. */
static void put_number_point(struct out *o, const struct family *f, const struct point *p,
			     uint64_t start, uint64_t now)
{
	size_t body = open_msg(o, TAG_DATA_POINTS);

	if (f->type == T_SUM)
		put_opt_fixed64_field(o, TAG_DP_START, start);
	put_opt_fixed64_field(o, TAG_DP_TIME, now);
	if (p->value == floor(p->value) && fabs(p->value) < 9e18)
		put_fixed64_field(o, TAG_NDP_AS_INT, (uint64_t)(int64_t)p->value);
	else
		put_fixed64_field(o, TAG_NDP_AS_DOUBLE, double_bits(p->value));
	put_point_attrs(o, TAG_NDP_ATTRIBUTES, p);
	close_msg(o, body);
}

/* One Exemplar (the latest span of one bucket), if the bucket has one. */
static void put_exemplar(struct out *o, const struct graph_exemplar *ex)
{
	size_t body;

	if (!ex->unix_ns)
		return;
	body = open_msg(o, TAG_HDP_EXEMPLARS);
	put_fixed64_field(o, TAG_EX_TIME, ex->unix_ns);
	put_fixed64_field(o, TAG_EX_AS_DOUBLE, double_bits(ex->value));
	if (reserve(o, 2 * (2 + sizeof(ex->trace_id)))) {
		uint8_t *w = o->buf + o->len;

		w = pb_put_bytes(w, TAG_EX_SPAN_ID, ex->span_id, sizeof(ex->span_id));
		w = pb_put_bytes(w, TAG_EX_TRACE_ID, ex->trace_id, sizeof(ex->trace_id));
		o->len = (size_t)(w - o->buf);
	}
	close_msg(o, body);
}

static void put_histogram_point(struct out *o, const struct family *f, const struct point *p,
				uint64_t start, uint64_t now)
{
	size_t body = open_msg(o, TAG_DATA_POINTS);
	unsigned i;

	put_opt_fixed64_field(o, TAG_DP_START, start);
	put_opt_fixed64_field(o, TAG_DP_TIME, now);
	put_opt_fixed64_field(o, TAG_HDP_COUNT, p->count);
	put_fixed64_field(o, TAG_HDP_SUM, double_bits(p->sum)); /* optional: sent even when 0 */
	/* Packed repeated fields: one length, then the values. */
	if (reserve(o, 2 * (1 + 10) + 8 * (2 * (size_t)f->nbounds + 1))) {
		uint8_t *w = o->buf + o->len;

		*w++ = TAG_HDP_BUCKET_COUNTS;
		w = pb_put_varint(w, 8 * ((uint64_t)f->nbounds + 1));
		for (i = 0; i <= f->nbounds; i++)
			w = pb_put_fixed64(w, p->buckets[i]);
		if (f->nbounds) {
			*w++ = TAG_HDP_EXPLICIT_BOUNDS;
			w = pb_put_varint(w, 8 * (uint64_t)f->nbounds);
			for (i = 0; i < f->nbounds; i++)
				w = pb_put_fixed64(w, double_bits(f->bounds[i]));
		}
		o->len = (size_t)(w - o->buf);
	}
	put_point_attrs(o, TAG_HDP_ATTRIBUTES, p);
	for (i = 0; p->exemplars && i <= f->nbounds; i++)
		put_exemplar(o, &p->exemplars[i]);
	close_msg(o, body);
}

/* One Metric for the points [@from, @to) of one family and resource. */
static void put_metric(struct out *o, const struct point *pts, size_t from, size_t to,
		       uint64_t start, uint64_t now)
{
	const struct family *f = &metrics_families[pts[from].family];
	size_t body = open_msg(o, TAG_SM_METRICS), data;

	put_str_field(o, TAG_METRIC_NAME, f->name);
	put_str_field(o, TAG_METRIC_DESCRIPTION, f->help);
	put_str_field(o, TAG_METRIC_UNIT, f->unit);
	data = open_msg(o, f->type == T_HIST  ? TAG_METRIC_HISTOGRAM
			   : f->type == T_SUM ? TAG_METRIC_SUM
					      : TAG_METRIC_GAUGE);
	for (size_t i = from; i < to; i++) {
		if (f->type == T_HIST)
			put_histogram_point(o, f, &pts[i], start, now);
		else
			put_number_point(o, f, &pts[i], start, now);
	}
	if (f->type != T_GAUGE)
		put_varint_field(o, TAG_TEMPORALITY, TEMPORALITY_CUMULATIVE);
	if (f->type == T_SUM)
		put_varint_field(o, TAG_SUM_IS_MONOTONIC, 1);
	close_msg(o, data);
	close_msg(o, body);
}

static const char *ns_of(const struct point *p)
{
	return p->resource_ns ? p->resource_ns : "";
}

static bool same_resource(const struct point *a, const struct point *b)
{
	if (!a->resource || !b->resource)
		return a->resource == b->resource;
	return !strcmp(a->resource, b->resource) && !strcmp(ns_of(a), ns_of(b));
}

/* The agent's resource first, then the services' by name; by family within each. */
static int cmp_resource(const void *a, const void *b)
{
	const struct point *x = a, *y = b;
	int c;

	if (!x->resource != !y->resource)
		return x->resource ? 1 : -1;
	if (x->resource && (c = strcmp(x->resource, y->resource)) != 0)
		return c;
	if (x->resource && (c = strcmp(ns_of(x), ns_of(y))) != 0)
		return c;
	return metrics_cmp_family(a, b);
}

int metrics_encode_otlp(struct metrics *m, const struct graph *g, const struct metrics_health *h,
			uint64_t now_unix_ns, uint8_t **out, size_t *outlen)
{
	struct out o = {0};
	struct series_list l;
	int err = metrics_list_build(&l, m, g, h);

	*out = NULL;
	*outlen = 0;
	if (err)
		goto out_free;
	if (l.n) /* qsort(NULL, 0, ...) is undefined */
		qsort(l.pts, l.n, sizeof(*l.pts), cmp_resource);
	reserve(&o, 0); /* an empty request is a buffer too */
	for (size_t i = 0; i < l.n;) {
		size_t rm = open_msg(&o, TAG_REQUEST_RESOURCE_METRICS), sm, j = i;

		put_resource(&o, m, l.pts[i].resource, l.pts[i].resource_ns);
		sm = open_msg(&o, TAG_RM_SCOPE_METRICS);
		put_scope(&o);
		while (j < l.n && same_resource(&l.pts[j], &l.pts[i])) {
			size_t k = j;

			while (k < l.n && same_resource(&l.pts[k], &l.pts[i]) &&
			       l.pts[k].family == l.pts[j].family)
				k++;
			put_metric(&o, l.pts, j, k, m->start_unix_ns, now_unix_ns);
			j = k;
		}
		close_msg(&o, sm);
		close_msg(&o, rm);
		i = j;
	}
	if (o.oom) {
		err = -ENOMEM;
		free(o.buf);
		goto out_free;
	}
	*out = o.buf;
	*outlen = o.len;
	m->stats.otlp_exports++;
out_free:
	if (err)
		m->stats.encode_failures++;
	metrics_list_free(&l);
	return err;
}
