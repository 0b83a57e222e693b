// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/serve/tracestore.c (grouping, root choice, bounds, eviction,
 * the slowest traces surviving newer traffic, the JSON answers, checked by
 * Python's json module) and agent/serve/assets.c (the embedded page).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/serve/assets.h"
#include "agent/serve/tracestore.h"

#define MS     1000000ull
#define T0     1700000000000000000ull
#define SECOND 1000000000ull

static void make_span(struct mt_span *s, unsigned trace, unsigned span, unsigned parent,
		      uint64_t start, uint64_t dur, const char *service)
{
	memset(s, 0, sizeof(*s));
	s->trace_id[0] = 0xab;
	s->trace_id[12] = (uint8_t)(trace >> 24);
	s->trace_id[13] = (uint8_t)(trace >> 16);
	s->trace_id[14] = (uint8_t)(trace >> 8);
	s->trace_id[15] = (uint8_t)trace;
	s->span_id[6] = (uint8_t)(span >> 8);
	s->span_id[7] = (uint8_t)span;
	if (parent) {
		s->parent_span_id[6] = (uint8_t)(parent >> 8);
		s->parent_span_id[7] = (uint8_t)parent;
	}
	s->kind = MT_SPAN_SERVER;
	s->protocol = MT_PROTO_HTTP1;
	s->http_minor = 1;
	s->http_status = 200;
	s->server_port = 8080;
	s->start_unix_ns = start;
	s->end_unix_ns = start + dur;
	s->resource.pid = 42;
	snprintf(s->resource.service_name, sizeof(s->resource.service_name), "%s", service);
	snprintf(s->name, sizeof(s->name), "GET");
	snprintf(s->method, sizeof(s->method), "GET");
	snprintf(s->path, sizeof(s->path), "/api/ok");
	snprintf(s->peer_address, sizeof(s->peer_address), "127.0.0.1");
}

static void trace_hex(char *out, unsigned trace)
{
	snprintf(out, 33, "ab000000000000000000000000%06x", trace);
}

/* Runs @script with @json on stdin; fails the test unless it exits 0. */
static void python_check(const char *script, const struct mt_buf *json)
{
	char path[] = "/tmp/test_tracestore_XXXXXX", cmd[4096], out[4096];
	FILE *f, *p;
	size_t n;
	int fd, rc;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(json->data, 1, json->len, f), json->len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 -c '%s' < %s 2>&1", script, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	rc = pclose(p);
	unlink(path);
	if (rc)
		fail_msg("python3 failed (%d): %s\ninput: %.*s", rc, out, (int)json->len,
			 json->data);
}

static void test_groups_spans_by_trace(void **state)
{
	struct tracestore *t = tracestore__new();
	struct tracestore_stats st;
	struct mt_buf b;
	struct mt_span s;
	char id[33];

	(void)state;
	assert_non_null(t);
	/* Children finish first: the root arrives last. */
	make_span(&s, 1, 3, 2, T0 + 2 * MS, 5 * MS, "backend");
	tracestore_add(t, &s);
	make_span(&s, 1, 2, 1, T0 + 1 * MS, 7 * MS, "nginx");
	s.kind = MT_SPAN_CLIENT;
	tracestore_add(t, &s);
	make_span(&s, 1, 1, 0, T0, 10 * MS, "nginx");
	snprintf(s.path, sizeof(s.path), "/api/chain");
	tracestore_add(t, &s);
	make_span(&s, 2, 9, 0, T0 + 20 * MS, 1 * MS, "redis");
	s.status = MT_STATUS_ERROR;
	s.http_status = 500;
	tracestore_add(t, &s);

	tracestore_stats(t, &st);
	assert_int_equal(st.traces, 2);
	assert_int_equal(st.spans, 4);
	assert_int_equal(st.spans_added, 4);

	mt_buf_init(&b, 1 << 20);
	assert_int_equal(tracestore_list_json(t, TRACESTORE_RECENT, 10, T0, &b), 0);
	python_check("import json,sys\n"
		     "l = json.load(sys.stdin)\n"
		     "assert [x[\"trace_id\"][-2:] for x in l] == [\"02\", \"01\"], l\n"
		     "a = l[1]\n"
		     "assert a[\"root_name\"] == \"GET /api/chain\", a\n"
		     "assert a[\"root_service\"] == \"nginx\", a\n"
		     "assert a[\"spans\"] == 3 and a[\"error\"] is False, a\n"
		     "assert a[\"duration_ms\"] == 10.0, a\n"
		     "assert a[\"start_unix_ms\"] == 1700000000000, a\n"
		     "assert l[0][\"error\"] is True and l[0][\"root_service\"] == \"redis\"\n",
		     &b);

	mt_buf_reset(&b);
	trace_hex(id, 1);
	assert_int_equal(tracestore_trace_json(t, id, &b), 0);
	python_check("import json,sys\n"
		     "o = json.load(sys.stdin)\n"
		     "assert o[\"trace_id\"] == \"ab000000000000000000000000000001\", o\n"
		     "s = o[\"spans\"]\n"
		     "assert [x[\"span_id\"][-2:] for x in s] == [\"01\", \"02\", \"03\"], s\n"
		     "assert s[0][\"parent_span_id\"] == \"\" and s[1][\"parent_span_id\"][-2:] == "
		     "\"01\"\n"
		     "assert s[1][\"kind\"] == \"CLIENT\" and s[0][\"kind\"] == \"SERVER\"\n"
		     "assert s[2][\"service\"] == \"backend\" and s[2][\"pid\"] == 42\n"
		     "assert s[0][\"end_unix_ns\"] - s[0][\"start_unix_ns\"] == 10000000\n"
		     "a = s[0][\"attributes\"]\n"
		     "assert a[\"http.request.method\"] == \"GET\" and a[\"url.path\"] == "
		     "\"/api/chain\", a\n"
		     "assert a[\"http.response.status_code\"] == 200, a\n"
		     "assert s[1][\"attributes\"][\"url.full\"].startswith(\"http://\")\n",
		     &b);

	mt_buf_reset(&b);
	trace_hex(id, 77);
	assert_int_equal(tracestore_trace_json(t, id, &b), -ENOENT);
	assert_int_equal(tracestore_trace_json(t, "xyz", &b), -EINVAL);
	assert_int_equal(tracestore_trace_json(t, "zz000000000000000000000000000001", &b), -EINVAL);
	mt_buf_free(&b);
	tracestore__free(t);
}

static void test_bounds_and_slowest(void **state)
{
	struct tracestore *t = tracestore__new();
	struct tracestore_stats st;
	struct mt_buf b;
	struct mt_span s;
	char id[33];
	unsigned i;

	(void)state;
	assert_non_null(t);
	/* One slow trace early, then far more fast ones than the store holds. */
	make_span(&s, 5, 1, 0, T0, 900 * MS, "slow");
	tracestore_add(t, &s);
	for (i = 100; i < 100 + 4 * TRACESTORE_TRACES_MAX; i++) {
		make_span(&s, i, 1, 0, T0 + i * MS, 1 * MS, "fast");
		tracestore_add(t, &s);
	}
	tracestore_stats(t, &st);
	assert_int_equal(st.traces, TRACESTORE_TRACES_MAX);
	assert_true(st.traces_evicted >= 3 * TRACESTORE_TRACES_MAX);

	mt_buf_init(&b, 1 << 20);
	trace_hex(id, 5);
	assert_int_equal(tracestore_trace_json(t, id, &b), 0); /* pinned: still there */
	mt_buf_reset(&b);
	trace_hex(id, 130); /* 100..114 fill the slowest list (all equal): 130 is plain old */
	assert_int_equal(tracestore_trace_json(t, id, &b), -ENOENT);

	mt_buf_reset(&b);
	assert_int_equal(tracestore_list_json(t, TRACESTORE_SLOWEST, 3, T0 + SECOND, &b), 0);
	python_check(
		"import json,sys\n"
		"l = json.load(sys.stdin)\n"
		"assert len(l) == 3, l\n"
		"assert l[0][\"root_service\"] == \"slow\" and l[0][\"duration_ms\"] == 900.0\n",
		&b);
	/* Past the keep window the slow trace is no longer listed as slowest. */
	mt_buf_reset(&b);
	assert_int_equal(tracestore_list_json(t, TRACESTORE_SLOWEST, 3,
					      T0 + (TRACESTORE_SLOW_KEEP_S + 10) * SECOND, &b),
			 0);
	assert_string_equal(b.data, "[]");

	/* Spans past the per-trace limit are counted, not kept. */
	for (i = 0; i < TRACESTORE_TRACE_SPANS_MAX + 5; i++) {
		make_span(&s, 9999, i + 1, 0, T0 + 10 * SECOND, 1 * MS, "fanout");
		tracestore_add(t, &s);
	}
	tracestore_stats(t, &st);
	assert_int_equal(st.spans_dropped_trace, 5);
	assert_true(st.spans <= TRACESTORE_SPANS_MAX);

	/* Many spans per trace: the span pool, not the trace table, is what runs out. */
	for (i = 0; i < 200; i++) {
		for (unsigned k = 0; k < 30; k++) {
			make_span(&s, 20000 + i, k + 1, 0, T0 + 20 * SECOND + i * MS, MS, "wide");
			tracestore_add(t, &s);
		}
	}
	tracestore_stats(t, &st);
	assert_true(st.spans <= TRACESTORE_SPANS_MAX);
	mt_buf_reset(&b);
	trace_hex(id, 20199);
	assert_int_equal(tracestore_trace_json(t, id, &b), 0);
	python_check("import json,sys\n"
		     "assert len(json.load(sys.stdin)[\"spans\"]) == 30\n",
		     &b);
	mt_buf_free(&b);
	tracestore__free(t);
	tracestore__free(NULL);
}

static void test_json_escaping(void **state)
{
	struct tracestore *t = tracestore__new();
	struct mt_buf b;
	struct mt_span s;

	(void)state;
	make_span(&s, 3, 1, 0, T0, MS, "svc\"\\\n\x01\xff");
	snprintf(s.path, sizeof(s.path), "/a\"b\\c\t");
	tracestore_add(t, &s);
	mt_buf_init(&b, 1 << 20);
	assert_int_equal(tracestore_list_json(t, TRACESTORE_RECENT, 10, T0, &b), 0);
	python_check("import json,sys\n"
		     "l = json.load(sys.stdin)\n"
		     "assert l[0][\"root_service\"] == \"svc\\\"\\\\\\n\\x01\\ufffd\", l\n"
		     "assert l[0][\"root_name\"] == \"GET /a\\\"b\\\\c\\t\", l\n",
		     &b);
	mt_buf_free(&b);
	tracestore__free(t);
}

static void test_http_handlers(void **state)
{
	struct tracestore *t = tracestore__new();
	struct httpd_response r;
	struct mt_span s;

	(void)state;
	make_span(&s, 4, 1, 0, T0, MS, "nginx");
	tracestore_add(t, &s);

	memset(&r, 0, sizeof(r));
	r.status = 200;
	mt_buf_init(&r.body, 1 << 20);
	assert_int_equal(tracestore_serve_list(t, "/api/traces", "sort=recent&limit=5", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"root_service\":\"nginx\""));

	mt_buf_reset(&r.body);
	assert_int_equal(tracestore_serve_list(t, "/api/traces", "sort=sideways", &r), 0);
	assert_int_equal(r.status, 400);
	r.status = 200;
	mt_buf_reset(&r.body);
	assert_int_equal(tracestore_serve_list(t, "/api/traces", "limit=0", &r), 0);
	assert_int_equal(r.status, 400);
	r.status = 200;
	mt_buf_reset(&r.body);
	assert_int_equal(tracestore_serve_list(t, "/api/traces", "limit=-3", &r), 0);
	assert_int_equal(r.status, 400);

	r.status = 200;
	mt_buf_reset(&r.body);
	assert_int_equal(
		tracestore_serve_trace(t, "/api/traces/ab000000000000000000000000000004", "", &r),
		0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"spans\":[{"));
	mt_buf_reset(&r.body);
	assert_int_equal(
		tracestore_serve_trace(t, "/api/traces/ab000000000000000000000000000005", "", &r),
		0);
	assert_int_equal(r.status, 404);
	r.status = 200;
	mt_buf_reset(&r.body);
	assert_int_equal(tracestore_serve_trace(t, "/api/traces/nope", "", &r), 0);
	assert_int_equal(r.status, 400);
	mt_buf_free(&r.body);
	tracestore__free(t);
}

static void test_assets(void **state)
{
	const struct asset *index = assets_find("index.html");
	struct httpd_response r;

	(void)state;
	assert_non_null(index);
	assert_true(index->len > 0);
	assert_true(assets_total_bytes() >= index->len);
	assert_null(assets_find("../Makefile"));
	assert_string_equal(assets_content_type("index.html"), "text/html; charset=utf-8");
	assert_string_equal(assets_content_type("app.js"), "text/javascript; charset=utf-8");
	assert_string_equal(assets_content_type("app.css"), "text/css; charset=utf-8");
	assert_string_equal(assets_content_type("x"), "application/octet-stream");

	memset(&r, 0, sizeof(r));
	r.status = 200;
	mt_buf_init(&r.body, 1 << 22);
	assert_int_equal(assets_serve(NULL, "/", "", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/html; charset=utf-8");
	assert_int_equal(r.body.len, index->len);
	assert_memory_equal(r.body.data, index->data, index->len);

	mt_buf_reset(&r.body);
	assert_int_equal(assets_serve(NULL, "/ui/index.html", "", &r), 0);
	assert_int_equal(r.body.len, index->len);

	mt_buf_reset(&r.body);
	assert_int_equal(assets_serve(NULL, "/ui/../agent/main.c", "", &r), 0);
	assert_int_equal(r.status, 404);
	mt_buf_free(&r.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups_spans_by_trace),
		cmocka_unit_test(test_bounds_and_slowest),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_http_handlers),
		cmocka_unit_test(test_assets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
