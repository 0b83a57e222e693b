// SPDX-License-Identifier: Apache-2.0
/*
 * The span builder on synthetic exchanges, no root needed: an exchange and
 * its connection become one span with the kind of the connection's role,
 * fresh ids (or the trace and parent of an incoming traceparent, with its
 * tracestate), the status the HTTP and protocol rules give, the
 * semantic-convention attributes (path without its query unless the user
 * opted in, server address from Host or the socket), times moved onto the
 * unix clock, and the resource of the process from a fake /proc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/trace/spans.h"

#define PID_KNOWN 4242 /* has a fake /proc entry: service "checkout" */
#define PID_GONE  4343 /* has none: the kernel's thread name stands in */
#define OFFSET_NS 1000000000000ll

static const char tp_trace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char tp_parent[] = "00f067aa0ba902b7";

static char proc_root[64];

struct sink {
	unsigned n;
	struct mt_span last;
};

struct fixture {
	struct identity *id;
	struct span_builder *b;
	struct sink sink;
};

static void on_span(void *ctx, const struct mt_span *s)
{
	struct sink *k = ctx;

	k->n++;
	k->last = *s;
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* <tmp>/4242/{exe -> /opt/shop/checkout-bin, environ, comm}. */
static int make_proc(void **state)
{
	static const char env[] = "PATH=/bin\0OTEL_SERVICE_NAME=checkout\0";
	char dir[128], path[160];

	(void)state;
	snprintf(proc_root, sizeof(proc_root), "/tmp/mt-test-spans.XXXXXX");
	if (!mkdtemp(proc_root))
		return -1;
	snprintf(dir, sizeof(dir), "%s/%u", proc_root, PID_KNOWN);
	if (mkdir(dir, 0700))
		return -1;
	snprintf(path, sizeof(path), "%s/exe", dir);
	if (symlink("/opt/shop/checkout-bin", path))
		return -1;
	snprintf(path, sizeof(path), "%s/environ", dir);
	write_file(path, env, sizeof(env) - 1);
	snprintf(path, sizeof(path), "%s/comm", dir);
	write_file(path, "checkout-bin\n", 13);
	return 0;
}

static int remove_proc(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", proc_root);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup_opts(void **state, bool record_query)
{
	struct span_opts opts = {.record_query = record_query};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->id = identity__new(proc_root);
	f->b = span_builder__new(&opts, f->id, on_span, &f->sink);
	if (!f->id || !f->b)
		return -1;
	span_builder_set_clock(f->b, OFFSET_NS);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, false);
}

static int setup_record_query(void **state)
{
	return setup_opts(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	span_builder__free(f->b);
	identity__free(f->id);
	free(f);
	return 0;
}

/* 10.0.0.1:@lport <-> 10.0.0.2:@rport, v4-mapped. */
static struct conn_info conn(uint8_t role, uint32_t pid, uint16_t lport, uint16_t rport)
{
	struct conn_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.sock = 0xffff888000001000ull + pid;
	ci.pid = pid;
	ci.tid = pid;
	ci.fd = 7;
	ci.role = role;
	memcpy(ci.comm, "kthread-name", 13);
	ci.tuple.family = 2;
	ci.tuple.lport = lport;
	ci.tuple.rport = rport;
	for (int i = 0; i < 2; i++) {
		uint8_t *a = i ? ci.tuple.raddr : ci.tuple.laddr;

		a[10] = a[11] = 0xff;
		a[12] = 10;
		a[15] = (uint8_t)(i + 1);
	}
	return ci;
}

static struct mt_exchange done(const char *method, const char *target, uint16_t status)
{
	struct mt_exchange x;

	memset(&x, 0, sizeof(x));
	x.protocol = MT_PROTO_HTTP1;
	x.stage = MT_STAGE_DONE;
	x.version_minor = 1;
	x.status = status;
	x.req_seq = 1000;
	x.req_start_ns = 5000;
	x.req_end_ns = 6000;
	x.resp_start_ns = 7000;
	x.resp_end_ns = 9000;
	x.req_body_bytes = 12;
	x.resp_body_bytes = 34;
	snprintf(x.method, sizeof(x.method), "%s", method);
	snprintf(x.target, sizeof(x.target), "%s", target);
	return x;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Builds one span of @x on @ci and returns it; fails unless exactly one was made. */
static const struct mt_span *one(struct fixture *f, const struct conn_info *ci,
				 const struct mt_exchange *x)
{
	unsigned before = f->sink.n;

	span_builder_on_exchange(f->b, ci, x);
	assert_int_equal(f->sink.n, before + 1);
	return &f->sink.last;
}

static void test_server_span_attributes(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/cart/items?user=alice&token=s3cret", 200);
	const struct mt_span *s;
	struct span_stats st;

	snprintf(x.host, sizeof(x.host), "shop.example:8443");
	s = one(f, &ci, &x);
	assert_int_equal(s->kind, MT_SPAN_SERVER);
	assert_int_equal(s->status, MT_STATUS_UNSET);
	assert_int_equal(s->protocol, MT_PROTO_HTTP1);
	assert_int_equal(s->http_minor, 1);
	assert_int_equal(s->http_status, 200);
	assert_false(all_zero(s->trace_id, 16));
	assert_false(all_zero(s->span_id, 8));
	assert_true(all_zero(s->parent_span_id, 8)); /* nobody called it from this node: a root */
	assert_string_equal(s->name, "GET");
	assert_string_equal(s->method, "GET");
	assert_string_equal(s->path, "/cart/items");
	assert_string_equal(s->query, ""); /* not recorded unless opted in: may hold secrets */
	assert_null(strstr(s->path, "s3cret"));
	assert_string_equal(s->scheme, "http");
	assert_string_equal(s->server_address, "shop.example");
	assert_int_equal(s->server_port, 8443);
	assert_string_equal(s->client_address, "10.0.0.2");
	assert_int_equal(s->client_port, 51000);
	assert_string_equal(s->peer_address, "10.0.0.2");
	assert_int_equal(s->peer_port, 51000);
	assert_int_equal(s->sock, ci.sock);
	assert_memory_equal(&s->tuple, &ci.tuple, sizeof(ci.tuple));
	assert_int_equal(s->req_body_bytes, 12);
	assert_int_equal(s->resp_body_bytes, 34);
	/* Kernel (monotonic) times plus the clock offset; the end is the response's last byte. */
	assert_int_equal(s->start_unix_ns, OFFSET_NS + 5000);
	assert_int_equal(s->end_unix_ns, OFFSET_NS + 9000);
	/* The resource: OTEL_SERVICE_NAME from the process's environment, the executable's name. */
	assert_int_equal(s->resource.pid, PID_KNOWN);
	assert_string_equal(s->resource.service_name, "checkout");
	assert_string_equal(s->resource.exe_name, "checkout-bin");

	span_builder_stats(f->b, &st);
	assert_int_equal(st.spans, 1);
	assert_int_equal(st.server, 1);
	assert_int_equal(st.client, 0);
	assert_int_equal(st.joined_traceparent, 0);
}

static void test_client_span_defaults_from_socket(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_CLIENT, PID_GONE, 51000, 6379);
	struct mt_exchange x = done("BREW", "http://proxy.example:3128/pot?sugar=2#frag", 200);
	const struct mt_span *s;
	struct span_stats st;

	x.resp_end_ns = 0; /* no response seen: the span ends with the request */
	s = one(f, &ci, &x);
	assert_int_equal(s->kind, MT_SPAN_CLIENT);
	assert_string_equal(s->name, "HTTP"); /* not a known method: "HTTP", method kept as is */
	assert_string_equal(s->method, "BREW");
	assert_string_equal(s->path, "/pot"); /* absolute form: scheme and authority go */
	assert_string_equal(s->query, "");
	/* No Host header: the peer is the server. */
	assert_string_equal(s->server_address, "10.0.0.2");
	assert_int_equal(s->server_port, 6379);
	assert_string_equal(s->client_address, "");
	assert_int_equal(s->end_unix_ns, OFFSET_NS + 6000);
	/* A process /proc no longer has: the kernel's thread name. */
	assert_int_equal(s->resource.pid, PID_GONE);
	assert_string_equal(s->resource.service_name, "kthread-name");
	assert_string_equal(s->resource.exe_name, "kthread-name");

	span_builder_stats(f->b, &st);
	assert_int_equal(st.client, 1);
	assert_int_equal(st.server, 0);
}

static void test_server_address_from_socket_when_no_host(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("POST", "", 201);
	const struct mt_span *s = one(f, &ci, &x);

	assert_string_equal(s->server_address, "10.0.0.1");
	assert_int_equal(s->server_port, 8080);
	assert_string_equal(s->path, "/"); /* an empty target is the root */
}

static void test_query_kept_when_opted_in(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/search?q=shoes&page=2#top", 200);
	const struct mt_span *s = one(f, &ci, &x);

	assert_string_equal(s->path, "/search");
	assert_string_equal(s->query, "q=shoes&page=2");
}

struct status_case {
	uint8_t role;
	uint16_t http;
	uint32_t flags;
	uint8_t want;
};

static void test_status_mapping(void **state)
{
	static const struct status_case cases[] = {
		{CONN_ROLE_SERVER, 200, 0, MT_STATUS_UNSET},
		{CONN_ROLE_SERVER, 404, 0, MT_STATUS_UNSET}, /* the client's mistake, not ours */
		{CONN_ROLE_SERVER, 499, 0, MT_STATUS_UNSET},
		{CONN_ROLE_SERVER, 500, 0, MT_STATUS_ERROR},
		{CONN_ROLE_SERVER, 503, 0, MT_STATUS_ERROR},
		{CONN_ROLE_CLIENT, 200, 0, MT_STATUS_UNSET},
		{CONN_ROLE_CLIENT, 399, 0, MT_STATUS_UNSET},
		{CONN_ROLE_CLIENT, 400, 0, MT_STATUS_ERROR},
		{CONN_ROLE_CLIENT, 404, 0, MT_STATUS_ERROR},
		{CONN_ROLE_CLIENT, 500, 0, MT_STATUS_ERROR},
		{CONN_ROLE_SERVER, 0, MT_X_NO_RESPONSE, MT_STATUS_ERROR},
		{CONN_ROLE_CLIENT, 0, MT_X_NO_RESPONSE, MT_STATUS_ERROR},
		{CONN_ROLE_SERVER, 0, MT_X_ERROR, MT_STATUS_ERROR},
		{CONN_ROLE_CLIENT, 0, MT_X_ERROR, MT_STATUS_ERROR},
		{CONN_ROLE_SERVER, 0, MT_X_CLIENT_ERROR, MT_STATUS_UNSET},
		{CONN_ROLE_CLIENT, 0, MT_X_CLIENT_ERROR, MT_STATUS_ERROR},
		{CONN_ROLE_SERVER, 200, MT_X_REQ_TRUNCATED | MT_X_END_GUESSED, MT_STATUS_UNSET},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct status_case *c = &cases[i];
		struct conn_info ci = conn(c->role, PID_KNOWN, 8080, 51000);
		struct mt_exchange x = done("GET", "/", c->http);
		const struct mt_span *s;

		x.protocol = c->http ? MT_PROTO_HTTP1 : MT_PROTO_REDIS;
		x.flags = c->flags;
		x.req_seq = (uint32_t)(100 + i);
		s = one(f, &ci, &x);
		if (s->status != c->want)
			fail_msg("case %zu (role %u, status %u, flags 0x%x): status %u, want %u", i,
				 c->role, c->http, c->flags, s->status, c->want);
		assert_int_equal(s->flags, c->flags);
	}
}

static void test_span_name_by_protocol(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_CLIENT, PID_KNOWN, 51000, 5432);
	struct mt_exchange x = done("", "", 0);
	const struct mt_span *s;

	x.protocol = MT_PROTO_POSTGRES;
	snprintf(x.operation, sizeof(x.operation), "SELECT");
	snprintf(x.db_namespace, sizeof(x.db_namespace), "shop");
	snprintf(x.query_text, sizeof(x.query_text), "SELECT * FROM t WHERE id = ?");
	snprintf(x.status_text, sizeof(x.status_text), "42P01");
	s = one(f, &ci, &x);
	assert_string_equal(s->name, "SELECT");
	assert_string_equal(s->operation, "SELECT");
	assert_string_equal(s->db_namespace, "shop");
	assert_string_equal(s->query_text, "SELECT * FROM t WHERE id = ?");
	assert_string_equal(s->status_text, "42P01");

	x.operation[0] = '\0';
	x.req_seq++;
	s = one(f, &ci, &x);
	assert_string_equal(s->name, l7_protocol_name(MT_PROTO_POSTGRES));

	x.protocol = MT_PROTO_GRPC;
	snprintf(x.operation, sizeof(x.operation), "shop.Cart/Add");
	snprintf(x.status_text, sizeof(x.status_text), "12"); /* UNIMPLEMENTED */
	x.req_seq++;
	s = one(f, &ci, &x);
	assert_string_equal(s->name, "grpc");
	snprintf(x.status_text, sizeof(x.status_text), "0");
	x.req_seq++;
	s = one(f, &ci, &x);
	assert_string_equal(s->name, "shop.Cart/Add");
}

static void test_incoming_traceparent_is_adopted(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/", 200);
	const struct mt_span *s;
	struct span_stats st;
	char got[33];

	snprintf(x.traceparent, sizeof(x.traceparent), "00-%s-%s-01", tp_trace, tp_parent);
	snprintf(x.tracestate, sizeof(x.tracestate), "vendor=abc");
	s = one(f, &ci, &x);
	hex(s->trace_id, 16, got);
	assert_string_equal(got, tp_trace);
	hex(s->parent_span_id, 8, got);
	assert_string_equal(got, tp_parent);
	hex(s->span_id, 8, got);
	assert_string_not_equal(got, tp_parent); /* its own span, a child of the caller's */
	assert_false(all_zero(s->span_id, 8));
	assert_string_equal(s->tracestate, "vendor=abc");
	span_builder_stats(f->b, &st);
	assert_int_equal(st.joined_traceparent, 1);

	/* Without a traceparent, a tracestate alone is not carried. */
	x.traceparent[0] = '\0';
	x.req_seq++;
	s = one(f, &ci, &x);
	assert_string_equal(s->tracestate, "");
	hex(s->trace_id, 16, got);
	assert_string_not_equal(got, tp_trace);
}

static void test_instrumented_client_is_not_reported(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_CLIENT, PID_KNOWN, 51000, 8080);
	struct mt_exchange x = done("GET", "/", 200);
	struct span_stats st;

	/* The client put its own context on the wire: its SDK reports this span. */
	snprintf(x.traceparent, sizeof(x.traceparent), "00-%s-%s-01", tp_trace, tp_parent);
	x.stage = MT_STAGE_REQUEST;
	span_builder_on_exchange(f->b, &ci, &x);
	x.stage = MT_STAGE_DONE;
	span_builder_on_exchange(f->b, &ci, &x);
	/* Handed on to be counted (graph, metrics), marked so that it is never exported. */
	assert_int_equal(f->sink.n, 1);
	assert_true(f->sink.last.sdk_reported);
	span_builder_stats(f->b, &st);
	assert_int_equal(st.spans, 0);
	assert_int_equal(st.sdk_reported, 1);
	assert_int_equal(st.link.skipped_instrumented, 1);
}

static void test_request_stage_makes_no_span(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/", 0);
	const struct mt_span *s;
	uint8_t first[8];

	x.stage = MT_STAGE_REQUEST;
	span_builder_on_exchange(f->b, &ci, &x);
	assert_int_equal(f->sink.n, 0);
	x = done("GET", "/", 200);
	s = one(f, &ci, &x);
	memcpy(first, s->span_id, 8);
	x.req_seq++;
	s = one(f, &ci, &x);
	assert_memory_not_equal(first, s->span_id, 8); /* each exchange its own span */
}

static void test_unknown_role_and_aborted_make_no_span(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_UNKNOWN, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/", 200);
	struct span_stats st;

	span_builder_on_exchange(f->b, &ci, &x);
	x.stage = MT_STAGE_REQUEST;
	span_builder_on_exchange(f->b, &ci, &x); /* counted once, at the end of the exchange */
	ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	x = done("GET", "/", 200);
	x.flags = MT_X_ABORTED; /* the parser lost its state: bookkeeping only */
	span_builder_on_exchange(f->b, &ci, &x);
	assert_int_equal(f->sink.n, 0);
	span_builder_stats(f->b, &st);
	assert_int_equal(st.role_unknown, 1);
	assert_int_equal(st.spans, 0);
}

static void test_end_before_start_is_clamped(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/", 200);
	const struct mt_span *s;

	x.resp_end_ns = 0;
	x.req_end_ns = 4000; /* before the start: clocks of two CPUs */
	s = one(f, &ci, &x);
	assert_int_equal(s->start_unix_ns, OFFSET_NS + 5000);
	assert_int_equal(s->end_unix_ns, OFFSET_NS + 5000);
}

static void test_ipv6_peer(void **state)
{
	struct fixture *f = *state;
	struct conn_info ci = conn(CONN_ROLE_SERVER, PID_KNOWN, 8080, 51000);
	struct mt_exchange x = done("GET", "/", 200);
	const struct mt_span *s;

	memset(ci.tuple.raddr, 0, 16);
	ci.tuple.raddr[0] = 0x20;
	ci.tuple.raddr[1] = 0x01;
	ci.tuple.raddr[2] = 0x0d;
	ci.tuple.raddr[3] = 0xb8;
	ci.tuple.raddr[15] = 7;
	snprintf(x.host, sizeof(x.host), "[2001:db8::1]:9000");
	s = one(f, &ci, &x);
	assert_string_equal(s->peer_address, "2001:db8::7");
	assert_string_equal(s->client_address, "2001:db8::7");
	assert_string_equal(s->server_address, "2001:db8::1");
	assert_int_equal(s->server_port, 9000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_span_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_span_defaults_from_socket, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_server_address_from_socket_when_no_host, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_query_kept_when_opted_in, setup_record_query,
						teardown),
		cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_span_name_by_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incoming_traceparent_is_adopted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_instrumented_client_is_not_reported, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_request_stage_makes_no_span, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_role_and_aborted_make_no_span, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_end_before_start_is_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_peer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, make_proc, remove_proc);
}
