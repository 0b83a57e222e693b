// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/export/metrics*.c: the OTLP metrics request written by our
 * own encoder (metrics_otlp.c), decoded with the protobuf-c code generated
 * from agent/export/proto/otlp.proto, every field checked: resources,
 * scopes, metrics, sums, gauges, histograms, data points and attributes.
 * The graph's series are checked in tests/graph/test_graph.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/common/version.h"
#include "agent/export/metrics.h"
#include "otlp.pb-c.h"
#include "tests/export/http_span.h"

#define MS  1000000ull
#define NOW 1700000000123456789ull

typedef Meshtrace__Otlp__KeyValue KeyValue;
typedef Meshtrace__Otlp__Metric Metric;
typedef Meshtrace__Otlp__NumberDataPoint NumberDataPoint;
typedef Meshtrace__Otlp__HistogramDataPoint HistogramDataPoint;

#define CUMULATIVE MESHTRACE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

static void check_str_kv(const KeyValue *kv, const char *key, const char *val)
{
	assert_non_null(kv);
	assert_string_equal(kv->key, key);
	assert_non_null(kv->value);
	assert_int_equal(kv->value->value_case, MESHTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE);
	assert_string_equal(kv->value->string_value, val);
}

static void check_int_kv(const KeyValue *kv, const char *key, int64_t val)
{
	assert_non_null(kv);
	assert_string_equal(kv->key, key);
	assert_non_null(kv->value);
	assert_int_equal(kv->value->value_case, MESHTRACE__OTLP__ANY_VALUE__VALUE_INT_VALUE);
	assert_int_equal(kv->value->int_value, val);
}

/* One resource and its scope: the attributes every resource carries, then the env's. */
static const Meshtrace__Otlp__ScopeMetrics *
check_resource(const Meshtrace__Otlp__ResourceMetrics *rm, const char *service)
{
	const Meshtrace__Otlp__Resource *r = rm->resource;
	const Meshtrace__Otlp__ScopeMetrics *sm;

	assert_non_null(r);
	assert_string_equal(rm->schema_url, "");
	assert_int_equal(r->dropped_attributes_count, 0);
	assert_int_equal(r->n_attributes, 7);
	check_str_kv(r->attributes[0], "service.name", service);
	check_str_kv(r->attributes[1], "host.name", "node-1");
	check_str_kv(r->attributes[2], "telemetry.sdk.name", "meshtrace");
	check_str_kv(r->attributes[3], "telemetry.sdk.language", "c");
	check_str_kv(r->attributes[4], "telemetry.sdk.version", MESHTRACE_VERSION);
	/* From OTEL_RESOURCE_ATTRIBUTES, but for the keys the agent sets itself. */
	check_str_kv(r->attributes[5], "deployment.environment", "prod");
	check_str_kv(r->attributes[6], "process.pid", "42");

	assert_int_equal(rm->n_scope_metrics, 1);
	sm = rm->scope_metrics[0];
	assert_string_equal(sm->schema_url, "");
	assert_non_null(sm->scope);
	assert_string_equal(sm->scope->name, METRICS_SCOPE_NAME);
	assert_string_equal(sm->scope->version, MESHTRACE_VERSION);
	assert_int_equal(sm->scope->n_attributes, 0);
	assert_int_equal(sm->scope->dropped_attributes_count, 0);
	return sm;
}

static void check_metric(const Metric *mt, const char *name, const char *unit, int data_case)
{
	assert_string_equal(mt->name, name);
	assert_string_equal(mt->unit, unit);
	assert_true(mt->description[0] != '\0');
	assert_int_equal(mt->n_metadata, 0);
	assert_int_equal(mt->data_case, data_case);
}

/* A Sum (cumulative, monotonic) with one point; @start 0: not checked. */
static const NumberDataPoint *check_sum(const Metric *mt, const char *name, const char *unit,
					uint64_t start)
{
	const NumberDataPoint *dp;

	check_metric(mt, name, unit, MESHTRACE__OTLP__METRIC__DATA_SUM);
	assert_int_equal(mt->sum->aggregation_temporality, CUMULATIVE);
	assert_true(mt->sum->is_monotonic);
	assert_int_equal(mt->sum->n_data_points, 1);
	dp = mt->sum->data_points[0];
	if (start)
		assert_int_equal(dp->start_time_unix_nano, start);
	assert_int_equal(dp->time_unix_nano, NOW);
	assert_int_equal(dp->flags, 0);
	return dp;
}

static const NumberDataPoint *check_gauge(const Metric *mt, const char *name, const char *unit)
{
	const NumberDataPoint *dp;

	check_metric(mt, name, unit, MESHTRACE__OTLP__METRIC__DATA_GAUGE);
	assert_int_equal(mt->gauge->n_data_points, 1);
	dp = mt->gauge->data_points[0];
	assert_int_equal(dp->start_time_unix_nano, 0); /* a gauge has none */
	assert_int_equal(dp->time_unix_nano, NOW);
	return dp;
}

/* An http.*.request.duration point of @n spans of @dur_ns each. */
static void check_http_point(const HistogramDataPoint *dp, uint64_t start, unsigned n,
			     uint64_t dur_ns)
{
	double dur = (double)dur_ns / 1e9, sum = 0;
	unsigned b = 0;

	while (b < METRICS_HTTP_BOUNDS && metrics_http_bounds[b] < dur)
		b++;
	for (unsigned i = 0; i < n; i++)
		sum += dur;
	assert_int_equal(dp->start_time_unix_nano, start);
	assert_int_equal(dp->time_unix_nano, NOW);
	assert_int_equal(dp->count, n);
	assert_int_equal(dp->sum_present_case,
			 MESHTRACE__OTLP__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
	assert_true(dp->sum == sum);
	assert_int_equal(dp->n_explicit_bounds, METRICS_HTTP_BOUNDS);
	for (unsigned i = 0; i < METRICS_HTTP_BOUNDS; i++)
		assert_true(dp->explicit_bounds[i] == metrics_http_bounds[i]);
	assert_int_equal(dp->n_bucket_counts, METRICS_HTTP_BOUNDS + 1);
	for (unsigned i = 0; i <= METRICS_HTTP_BOUNDS; i++)
		assert_int_equal(dp->bucket_counts[i], i == b ? n : 0);
	assert_int_equal(dp->min_present_case,
			 MESHTRACE__OTLP__HISTOGRAM_DATA_POINT__MIN_PRESENT__NOT_SET);
	assert_int_equal(dp->max_present_case,
			 MESHTRACE__OTLP__HISTOGRAM_DATA_POINT__MAX_PRESENT__NOT_SET);
	assert_int_equal(dp->flags, 0);
}

/* A service's resource, holding one http.* histogram of @n points. */
static const Meshtrace__Otlp__Histogram *
check_http_resource(const Meshtrace__Otlp__ResourceMetrics *rm, const char *service,
		    const char *name, size_t n)
{
	const Meshtrace__Otlp__ScopeMetrics *sm = check_resource(rm, service);
	const Metric *mt;

	assert_int_equal(sm->n_metrics, 1);
	mt = sm->metrics[0];
	check_metric(mt, name, "s", MESHTRACE__OTLP__METRIC__DATA_HISTOGRAM);
	assert_int_equal(mt->histogram->aggregation_temporality, CUMULATIVE);
	assert_int_equal(mt->histogram->n_data_points, n);
	return mt->histogram;
}

static void test_metrics_otlp_every_field(void **state)
{
	Meshtrace__Otlp__ExportMetricsServiceRequest *req;
	const Meshtrace__Otlp__ScopeMetrics *sm;
	const Meshtrace__Otlp__Histogram *hg;
	const HistogramDataPoint *hp;
	const NumberDataPoint *dp;
	struct otlp_config cfg;
	struct metrics_health h;
	struct metrics *m;
	struct mt_span s;
	uint64_t start;
	uint8_t *pb;
	size_t len;

	(void)state;
	otlp_config_defaults(&cfg);
	snprintf(cfg.host_name, sizeof(cfg.host_name), "node-1");
	cfg.n_resource_attrs = 4;
	snprintf(cfg.resource_attrs[0].key, OTLP_ATTR_KEY_MAX, "deployment.environment");
	snprintf(cfg.resource_attrs[0].value, OTLP_ATTR_VALUE_MAX, "prod");
	snprintf(cfg.resource_attrs[1].key, OTLP_ATTR_KEY_MAX, "service.name");
	snprintf(cfg.resource_attrs[1].value, OTLP_ATTR_VALUE_MAX, "not-sent");
	snprintf(cfg.resource_attrs[2].key, OTLP_ATTR_KEY_MAX, "telemetry.sdk.name");
	snprintf(cfg.resource_attrs[2].value, OTLP_ATTR_VALUE_MAX, "not-sent");
	snprintf(cfg.resource_attrs[3].key, OTLP_ATTR_KEY_MAX, "process.pid");
	snprintf(cfg.resource_attrs[3].value, OTLP_ATTR_VALUE_MAX, "42");
	m = metrics__new(&cfg);
	assert_non_null(m);

	s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, "shop", "GET", 200, 3 * MS);
	metrics_on_span(m, &s);
	metrics_on_span(m, &s);
	s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, "shop", "BREW", 503, 300 * MS);
	metrics_on_span(m, &s);
	s = http_span(MT_SPAN_CLIENT, MT_PROTO_HTTP2, "curl", "POST", 404, 20 * MS);
	metrics_on_span(m, &s);
	/* Not UTF-8: repaired on the wire (U+FFFD). */
	s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, "bad\xff", "GET", 0, 12 * 1000 * MS);
	metrics_on_span(m, &s);

	metrics_health_reset(&h);
	metrics_health_add(&h, MH_PROCESS_CPU, "cpu.mode", "user", 1.25);
	metrics_health_add(&h, MH_KERNEL_DROPS, "reason", "ringbuf_full", 7);
	metrics_health_add(&h, MH_EVENTS, NULL, NULL, 0);
	metrics_health_add(&h, MH_QUEUE_DEPTH, "queue", "otlp_spans", 3);
	metrics_health_add(&h, MH_SPAN_UPDATE_NS, NULL, NULL, 812.5);
	metrics_health_add(&h, MH_KERNEL_CAPTURED, NULL, NULL, 1e19); /* too large for as_int */

	assert_int_equal(metrics_encode_otlp(m, NULL, &h, NOW, &pb, &len), 0);
	req = meshtrace__otlp__export_metrics_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	/* The agent's resource first, then one per service, by name. */
	assert_int_equal(req->n_resource_metrics, 4);

	/* The agent: health, by family (enum metrics_health_family order). */
	sm = check_resource(req->resource_metrics[0], METRICS_SCOPE_NAME);
	assert_int_equal(sm->n_metrics, 6);
	dp = check_sum(sm->metrics[0], "meshtrace.kernel.drops", "{event}", 0);
	start = dp->start_time_unix_nano;
	assert_true(start > 0);
	assert_int_equal(dp->value_case, MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT);
	assert_int_equal(dp->as_int, 7);
	assert_int_equal(dp->n_attributes, 1);
	check_str_kv(dp->attributes[0], "reason", "ringbuf_full");
	dp = check_sum(sm->metrics[1], "meshtrace.kernel.captured", "By", start);
	assert_int_equal(dp->value_case, MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
	assert_true(dp->as_double == 1e19);
	assert_int_equal(dp->n_attributes, 0);
	dp = check_sum(sm->metrics[2], "meshtrace.events", "{event}", start);
	assert_int_equal(dp->value_case, MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT);
	assert_int_equal(dp->as_int, 0); /* zero, and there */
	assert_int_equal(dp->n_attributes, 0);
	dp = check_gauge(sm->metrics[3], "meshtrace.queue.depth", "{item}");
	assert_int_equal(dp->value_case, MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT);
	assert_int_equal(dp->as_int, 3);
	assert_int_equal(dp->n_attributes, 1);
	check_str_kv(dp->attributes[0], "queue", "otlp_spans");
	dp = check_gauge(sm->metrics[4], "meshtrace.graph.span.cost", "ns");
	assert_int_equal(dp->value_case, MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
	assert_true(dp->as_double == 812.5);
	dp = check_sum(sm->metrics[5], "process.cpu.time", "s", start);
	assert_int_equal(dp->value_case, MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
	assert_true(dp->as_double == 1.25);
	check_str_kv(dp->attributes[0], "cpu.mode", "user");

	/* "bad\xff": one server series, no status. */
	hg = check_http_resource(req->resource_metrics[1], "bad\xef\xbf\xbd",
				 "http.server.request.duration", 1);
	hp = hg->data_points[0];
	check_http_point(hp, start, 1, 12 * 1000 * MS); /* past the last bound: +Inf bucket */
	assert_int_equal(hp->n_attributes, 3);
	check_str_kv(hp->attributes[0], "http.request.method", "GET");
	check_str_kv(hp->attributes[1], "url.scheme", "http");
	check_str_kv(hp->attributes[2], "network.protocol.version", "1.1");

	/* curl: one client series over HTTP/2. */
	hg = check_http_resource(req->resource_metrics[2], "curl", "http.client.request.duration",
				 1);
	hp = hg->data_points[0];
	check_http_point(hp, start, 1, 20 * MS);
	assert_int_equal(hp->n_attributes, 6);
	check_str_kv(hp->attributes[0], "http.request.method", "POST");
	check_int_kv(hp->attributes[1], "http.response.status_code", 404);
	check_str_kv(hp->attributes[2], "error.type", "404");
	check_str_kv(hp->attributes[3], "server.address", "shop.test");
	check_int_kv(hp->attributes[4], "server.port", 8080);
	check_str_kv(hp->attributes[5], "network.protocol.version", "2");

	/* shop: two server series, in the order they were first seen. */
	hg = check_http_resource(req->resource_metrics[3], "shop", "http.server.request.duration",
				 2);
	hp = hg->data_points[0];
	check_http_point(hp, start, 2, 3 * MS);
	assert_int_equal(hp->n_attributes, 4);
	check_str_kv(hp->attributes[0], "http.request.method", "GET");
	check_int_kv(hp->attributes[1], "http.response.status_code", 200);
	check_str_kv(hp->attributes[2], "url.scheme", "http");
	check_str_kv(hp->attributes[3], "network.protocol.version", "1.1");
	hp = hg->data_points[1];
	check_http_point(hp, start, 1, 300 * MS);
	assert_int_equal(hp->n_attributes, 5);
	check_str_kv(hp->attributes[0], "http.request.method", "_OTHER");
	check_int_kv(hp->attributes[1], "http.response.status_code", 503);
	check_str_kv(hp->attributes[2], "error.type", "503");
	check_str_kv(hp->attributes[3], "url.scheme", "http");
	check_str_kv(hp->attributes[4], "network.protocol.version", "1.1");

	meshtrace__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	free(pb);
	metrics__free(m);
}

/* Nothing to say: an empty request, still a buffer to free. */
static void test_metrics_otlp_empty(void **state)
{
	Meshtrace__Otlp__ExportMetricsServiceRequest *req;
	struct metrics *m = metrics__new(NULL);
	struct metrics_stats st;
	uint8_t *pb;
	size_t len;

	(void)state;
	assert_non_null(m);
	assert_int_equal(metrics_encode_otlp(m, NULL, NULL, NOW, &pb, &len), 0);
	assert_non_null(pb);
	assert_int_equal(len, 0);
	req = meshtrace__otlp__export_metrics_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	assert_int_equal(req->n_resource_metrics, 0);
	meshtrace__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	free(pb);
	metrics_stats(m, &st);
	assert_int_equal(st.otlp_exports, 1);
	assert_int_equal(st.encode_failures, 0);
	metrics__free(m);
}

/* A span of trace @t (every byte of the id @t) and span @sp, ending at @end_ns. */
static struct mt_span traced(const char *svc, uint64_t dur_ns, uint8_t t, uint8_t sp,
			     uint64_t end_ns)
{
	struct mt_span s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, svc, "GET", 200, dur_ns);

	memset(s.trace_id, t, sizeof(s.trace_id));
	memset(s.span_id, sp, sizeof(s.span_id));
	s.start_unix_ns = end_ns - dur_ns;
	s.end_unix_ns = end_ns;
	return s;
}

static void check_exemplar(const Meshtrace__Otlp__Exemplar *ex, uint8_t t, uint8_t sp,
			   uint64_t end_ns, double value)
{
	uint8_t tid[16], sid[8];

	memset(tid, t, sizeof(tid));
	memset(sid, sp, sizeof(sid));
	assert_int_equal(ex->time_unix_nano, end_ns);
	assert_int_equal(ex->value_case, MESHTRACE__OTLP__EXEMPLAR__VALUE_AS_DOUBLE);
	assert_true(fabs(ex->as_double - value) < 1e-12);
	assert_int_equal(ex->trace_id.len, 16);
	assert_memory_equal(ex->trace_id.data, tid, 16);
	assert_int_equal(ex->span_id.len, 8);
	assert_memory_equal(ex->span_id.data, sid, 8);
	assert_int_equal(ex->n_filtered_attributes, 0);
}

/*
 * Exemplars: one per bucket, the latest span that was allowed to be one; a
 * span not allowed (its trace not exported) leaves the bucket's exemplar alone.
 */
static void test_metrics_otlp_exemplars(void **state)
{
	Meshtrace__Otlp__ExportMetricsServiceRequest *req;
	const Meshtrace__Otlp__Histogram *hg;
	const HistogramDataPoint *hp;
	struct otlp_config cfg;
	struct metrics *m;
	struct mt_span s;
	uint8_t *pb;
	size_t len;

	(void)state;
	otlp_config_defaults(&cfg);
	snprintf(cfg.host_name, sizeof(cfg.host_name), "node-1");
	cfg.n_resource_attrs = 2;
	snprintf(cfg.resource_attrs[0].key, OTLP_ATTR_KEY_MAX, "deployment.environment");
	snprintf(cfg.resource_attrs[0].value, OTLP_ATTR_VALUE_MAX, "prod");
	snprintf(cfg.resource_attrs[1].key, OTLP_ATTR_KEY_MAX, "process.pid");
	snprintf(cfg.resource_attrs[1].value, OTLP_ATTR_VALUE_MAX, "42");
	m = metrics__new(&cfg);
	assert_non_null(m);

	/* 3 ms (bucket le=0.005): trace 1, then trace 2 replaces it; 3 is not exported. */
	s = traced("shop", 3 * MS, 1, 11, NOW - 300 * MS);
	metrics_on_span_exemplar(m, &s, true);
	s = traced("shop", 4 * MS, 2, 12, NOW - 200 * MS);
	metrics_on_span_exemplar(m, &s, true);
	s = traced("shop", 4 * MS, 3, 13, NOW - 100 * MS);
	metrics_on_span_exemplar(m, &s, false);
	/* 60 ms (le=0.075): trace 4. */
	s = traced("shop", 60 * MS, 4, 14, NOW - 50 * MS);
	metrics_on_span_exemplar(m, &s, true);
	/* Not counted as an exemplar at all: metrics_on_span(). */
	s = traced("shop", 900 * MS, 5, 15, NOW - 10 * MS);
	metrics_on_span(m, &s);

	assert_int_equal(metrics_encode_otlp(m, NULL, NULL, NOW, &pb, &len), 0);
	req = meshtrace__otlp__export_metrics_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	assert_int_equal(req->n_resource_metrics, 1);
	hg = check_http_resource(req->resource_metrics[0], "shop", "http.server.request.duration",
				 1);
	hp = hg->data_points[0];
	assert_int_equal(hp->count, 5);
	/* Exemplars in bucket order: le=0.005, then le=0.075. */
	assert_int_equal(hp->n_exemplars, 2);
	check_exemplar(hp->exemplars[0], 2, 12, NOW - 200 * MS, 0.004);
	check_exemplar(hp->exemplars[1], 4, 14, NOW - 50 * MS, 0.060);
	meshtrace__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	free(pb);
	metrics__free(m);
}

static const char *find_line(const char *text, const char *prefix)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, prefix, strlen(prefix)))
			return l;
	return NULL;
}

/*
 * OpenMetrics: the same series, exemplars after the buckets that have one,
 * counter families without _total, target_info an info metric, # EOF last.
 * The Prometheus text of the same table carries no exemplar.
 */
static void test_metrics_openmetrics(void **state)
{
	struct otlp_config cfg;
	struct metrics_health h;
	struct metrics *m;
	struct mt_span s;
	struct mt_buf b;
	const char *l;

	(void)state;
	otlp_config_defaults(&cfg);
	snprintf(cfg.service_name, sizeof(cfg.service_name), "meshtrace-node-7");
	m = metrics__new(&cfg);
	assert_non_null(m);
	s = traced("shop", 3 * MS, 0xab, 0xcd, 1700000000123456789ull);
	metrics_on_span_exemplar(m, &s, true);
	s = traced("shop", 60 * MS, 0x01, 0x02, 1700000001000000000ull);
	metrics_on_span_exemplar(m, &s, false);
	metrics_health_reset(&h);
	metrics_health_add(&h, MH_KERNEL_DROPS, "reason", "ringbuf_full", 7);

	mt_buf_init(&b, 1 << 20);
	assert_int_equal(metrics_write_openmetrics(m, NULL, &h, &b), 0);
	mt_buf_append(&b, "", 1);
	assert_non_null(strstr(b.data, "# TYPE target info\n"));
	/* The agent's own resource: OTEL_SERVICE_NAME (here set in the config). */
	assert_non_null(strstr(b.data, "target_info{service_name=\"meshtrace-node-7\","));
	assert_non_null(strstr(b.data, "# TYPE meshtrace_kernel_drops counter\n"));
	assert_non_null(strstr(b.data, "\nmeshtrace_kernel_drops_total{reason=\"ringbuf_full\","));
	assert_non_null(strstr(b.data, "# TYPE http_server_request_duration_seconds histogram\n"));
	l = find_line(b.data, "http_server_request_duration_seconds_bucket{");
	assert_non_null(l);
	assert_true(
		!strncmp(strstr(l, "le=\""),
			 "le=\"0.005\"} 1 # {trace_id=\""
			 "abababababababababababababababab\",span_id="
			 "\"cdcdcdcdcdcdcdcd\"} 0.003 1700000000.123\n",
			 strlen("le=\"0.005\"} 1 # {trace_id=\"abababababababababababababab"
				"abab\",span_id=\"cdcdcdcdcdcdcdcd\"} 0.003 1700000000.123\n")));
	/* The 60 ms span was no exemplar: its bucket line ends at the count. */
	assert_non_null(strstr(b.data, "le=\"0.075\"} 2\n"));
	assert_int_equal(strlen(b.data) >= 6, 1);
	assert_string_equal(b.data + strlen(b.data) - 6, "# EOF\n");
	mt_buf_free(&b);

	mt_buf_init(&b, 1 << 20);
	assert_int_equal(metrics_write_prometheus(m, NULL, &h, &b), 0);
	mt_buf_append(&b, "", 1);
	assert_null(strstr(b.data, "trace_id"));
	assert_null(strstr(b.data, "# EOF"));
	assert_non_null(strstr(b.data, "# TYPE meshtrace_kernel_drops_total counter\n"));
	assert_non_null(strstr(b.data, "# TYPE target_info gauge\n"));
	mt_buf_free(&b);
	metrics__free(m);
}

/* service.namespace: checkout in shop and in staging are two RED series, each labelled. */
static void test_metrics_service_namespace(void **state)
{
	struct otlp_config cfg;
	struct metrics *m;
	struct mt_span s;
	struct mt_buf b;
	const char *l;

	(void)state;
	otlp_config_defaults(&cfg);
	m = metrics__new(&cfg);
	assert_non_null(m);
	s = traced("checkout", 3 * MS, 0xab, 0xcd, NOW);
	snprintf(s.resource.service_namespace, sizeof(s.resource.service_namespace), "shop");
	metrics_on_span(m, &s);
	snprintf(s.resource.service_namespace, sizeof(s.resource.service_namespace), "staging");
	metrics_on_span(m, &s);
	mt_buf_init(&b, 1 << 20);
	assert_int_equal(metrics_write_prometheus(m, NULL, NULL, &b), 0);
	mt_buf_append(&b, "", 1);
	l = strstr(b.data, "http_server_request_duration_seconds_count{");
	assert_non_null(l);
	assert_non_null(strstr(b.data, "service_name=\"checkout\",service_namespace=\"shop\","));
	assert_non_null(strstr(b.data, "service_name=\"checkout\",service_namespace=\"staging\","));
	mt_buf_free(&b);
	metrics__free(m);
}

static void test_metrics_accepts_openmetrics(void **state)
{
	(void)state;
	/* What Prometheus 2.42 sends. */
	assert_true(metrics_accepts_openmetrics(
		"application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
	/* Prometheus 3's, with escaping and a q on each. */
	assert_true(metrics_accepts_openmetrics(
		"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
		"application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
		"escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"));
	assert_true(metrics_accepts_openmetrics("Application/OpenMetrics-Text"));
	/* curl, browsers, the old text format, nothing. */
	assert_false(metrics_accepts_openmetrics("*/*"));
	assert_false(metrics_accepts_openmetrics("text/html,application/xhtml+xml,*/*;q=0.8"));
	assert_false(metrics_accepts_openmetrics("text/plain;version=0.0.4"));
	assert_false(metrics_accepts_openmetrics(""));
	assert_false(metrics_accepts_openmetrics(NULL));
	/* Preferences by q. */
	assert_false(metrics_accepts_openmetrics(
		"text/plain;version=0.0.4;q=0.9, application/openmetrics-text; q=0.5"));
	assert_true(metrics_accepts_openmetrics(
		"text/plain;q=0.5, application/openmetrics-text ; version=1.0.0 ; q=0.6"));
	assert_false(metrics_accepts_openmetrics("application/openmetrics-text;q=0"));
	assert_false(metrics_accepts_openmetrics("application/openmetrics-text;q=abc"));
}

static void test_metrics_exemplar_filter_env(void **state)
{
	uint8_t f = 99;
	char err[256];

	(void)state;
	unsetenv("OTEL_METRICS_EXEMPLAR_FILTER");
	assert_int_equal(metrics_exemplar_filter_from_env(&f, err, sizeof(err)), 0);
	assert_int_equal(f, METRICS_EXEMPLARS_TRACE_BASED);
	setenv("OTEL_METRICS_EXEMPLAR_FILTER", "", 1);
	assert_int_equal(metrics_exemplar_filter_from_env(&f, err, sizeof(err)), 0);
	assert_int_equal(f, METRICS_EXEMPLARS_TRACE_BASED);
	setenv("OTEL_METRICS_EXEMPLAR_FILTER", " Always_On ", 1);
	assert_int_equal(metrics_exemplar_filter_from_env(&f, err, sizeof(err)), 0);
	assert_int_equal(f, METRICS_EXEMPLARS_ALWAYS_ON);
	assert_string_equal(metrics_exemplar_filter_name(f), "always_on");
	setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off", 1);
	assert_int_equal(metrics_exemplar_filter_from_env(&f, err, sizeof(err)), 0);
	assert_int_equal(f, METRICS_EXEMPLARS_ALWAYS_OFF);
	setenv("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based", 1);
	assert_int_equal(metrics_exemplar_filter_from_env(&f, err, sizeof(err)), 0);
	assert_int_equal(f, METRICS_EXEMPLARS_TRACE_BASED);
	setenv("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes", 1);
	assert_int_equal(metrics_exemplar_filter_from_env(&f, err, sizeof(err)), -1);
	assert_string_equal(err, "OTEL_METRICS_EXEMPLAR_FILTER=\"sometimes\": unknown filter; "
				 "unset it or give trace_based (the default), always_on or "
				 "always_off");
	unsetenv("OTEL_METRICS_EXEMPLAR_FILTER");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_otlp_every_field),
		cmocka_unit_test(test_metrics_otlp_empty),
		cmocka_unit_test(test_metrics_otlp_exemplars),
		cmocka_unit_test(test_metrics_openmetrics),
		cmocka_unit_test(test_metrics_service_namespace),
		cmocka_unit_test(test_metrics_accepts_openmetrics),
		cmocka_unit_test(test_metrics_exemplar_filter_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
