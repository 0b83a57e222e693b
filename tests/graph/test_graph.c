// SPDX-License-Identifier: Apache-2.0
/*
 * The graph stage and the metrics encoders, on synthetic events and spans:
 * counting once per call, naming, TCP-level edges, bounds, the JSON shape,
 * Prometheus names and the OTLP encoding (decoded back with protobuf-c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "otlp.pb-c.h"
#include "agent/common/version.h"
#include "agent/graph/graph.h"
#include "agent/identity/k8s.h"
#include "agent/identity/k8s_pods.h"
#include "agent/export/metrics.h"
#include "tests/export/http_span.h"

#define MS 1000000ull

static char proc_root[] = "/tmp/mt-graph-proc-XXXXXX";

static void make_proc(unsigned pid, const char *exe, const char *env, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%u", proc_root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%u/exe", proc_root, pid);
	if (symlink(exe, path) != 0)
		return;
	snprintf(path, sizeof(path), "%s/%u/environ", proc_root, pid);
	f = fopen(path, "w");
	fwrite(env, 1, n, f);
	fclose(f);
}

static int setup_proc(void **state)
{
	(void)state;
	if (!mkdtemp(proc_root))
		return -1;
	make_proc(100, "/usr/bin/curl", "A=1\0", 4);
	make_proc(200, "/usr/sbin/nginx", "A=1\0", 4);
	make_proc(300, "/usr/bin/python3.11", "OTEL_SERVICE_NAME=backend\0", 26);
	make_proc(400, "/usr/bin/redis-server", "A=1\0", 4);
	return 0;
}

struct fixture {
	struct identity *id;
	struct peers *peers;
	struct graph *g;
	uint64_t now;
	uint16_t next_port;
	uint64_t next_sock;
	bool exemplar; /* the spans become exemplars (graph_on_span_exemplar) */
	uint8_t trace; /* every byte of the spans' trace ids; span ids: trace + kind */
	uint8_t proto; /* 0: HTTP/1 */
	/* The spans' translated call (DNAT) as the linker pairs it; nat_paired 0: direct. */
	struct mt_span nat;
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->id = identity__new(proc_root);
	f->peers = peers__new();
	f->g = graph__new(f->id, f->peers);
	assert_non_null(f->g);
	graph_set_clock(f->g, 0);
	f->now = 1000 * MS;
	f->next_port = 40000;
	f->next_sock = 0x10000;
	return f;
}

static void fixture_free(struct fixture *f)
{
	graph__free(f->g);
	peers__free(f->peers);
	identity__free(f->id);
	free(f);
}

static void addr(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	out[12] = a, out[13] = b, out[14] = c, out[15] = d;
}

static struct mt_tuple tuple(const uint8_t l[16], uint16_t lp, const uint8_t r[16], uint16_t rp)
{
	struct mt_tuple t;

	memset(&t, 0, sizeof(t));
	memcpy(t.laddr, l, 16);
	memcpy(t.raddr, r, 16);
	t.lport = lp;
	t.rport = rp;
	t.family = 2;
	return t;
}

static void conn_ev(struct fixture *f, uint64_t sock, uint8_t op, uint32_t pid, const char *comm,
		    struct mt_tuple t, uint64_t dur)
{
	struct mt_conn_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.head.kind = MT_EV_CONN;
	ev.head.ts_ns = f->now;
	ev.head.sock = sock;
	ev.pid = pid;
	ev.op = op;
	ev.duration_ns = dur;
	snprintf(ev.comm, sizeof(ev.comm), "%s", comm);
	ev.tuple = t;
	graph_on_conn(f->g, &ev);
}

static void data_ev(struct fixture *f, uint64_t sock, uint32_t pid, const char *comm,
		    struct mt_tuple t, uint8_t dir, uint32_t bytes)
{
	struct mt_data_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.head.kind = MT_EV_DATA;
	ev.head.ts_ns = f->now;
	ev.head.sock = sock;
	ev.pid = pid;
	ev.bytes = bytes;
	ev.dir = dir;
	snprintf(ev.comm, sizeof(ev.comm), "%s", comm);
	ev.tuple = t;
	graph_on_data(f->g, &ev);
}

static void span(struct fixture *f, uint64_t sock, uint8_t kind, uint32_t pid, const char *svc,
		 const char *exe, struct mt_tuple t, uint16_t status, uint64_t dur)
{
	struct mt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = kind;
	s.protocol = f->proto ? f->proto : MT_PROTO_HTTP1;
	s.http_minor = 1;
	memset(s.trace_id, f->trace, sizeof(s.trace_id));
	memset(s.span_id, f->trace + kind, sizeof(s.span_id));
	s.http_status = status;
	if (status >= 500 || (kind == MT_SPAN_CLIENT && status >= 400) || !status)
		s.status = MT_STATUS_ERROR;
	s.start_unix_ns = f->now - dur;
	s.end_unix_ns = f->now;
	s.resource.pid = pid;
	snprintf(s.resource.service_name, sizeof(s.resource.service_name), "%s", svc);
	snprintf(s.resource.exe_name, sizeof(s.resource.exe_name), "%s", exe);
	snprintf(s.method, sizeof(s.method), "GET");
	snprintf(s.scheme, sizeof(s.scheme), "http");
	snprintf(s.server_address, sizeof(s.server_address), "127.0.0.1");
	s.server_port = kind == MT_SPAN_CLIENT ? t.rport : t.lport;
	s.sock = sock;
	s.tuple = t;
	if (f->nat.nat_paired) {
		s.nat_paired = 1;
		memcpy(s.vip_addr, f->nat.vip_addr, 16);
		s.vip_port = f->nat.vip_port;
		memcpy(s.nat_server_addr, f->nat.nat_server_addr, 16);
		s.nat_server_port = f->nat.nat_server_port;
	}
	if (kind == MT_SPAN_SERVER)
		s.nat_client_port = f->nat.nat_client_port;
	if (f->exemplar || f->trace)
		graph_on_span_exemplar(f->g, &s, f->exemplar);
	else
		graph_on_span(f->g, &s);
}

/*
 * One HTTP call over loopback with both ends on this node, as the capture
 * and span stages report it: connect, accept, bytes, the server span, the
 * client span, close.
 */
static void local_call(struct fixture *f, uint32_t cpid, const char *cexe, const char *csvc,
		       uint32_t spid, const char *sexe, const char *ssvc, uint16_t sport,
		       uint16_t status)
{
	uint8_t lo[16];
	uint16_t cport = f->next_port++;
	uint64_t cs = f->next_sock, ss = f->next_sock + 64;
	struct mt_tuple ct, st;

	f->next_sock += 128;
	addr(lo, 127, 0, 0, 1);
	ct = tuple(lo, 0, lo, sport);
	conn_ev(f, cs, MT_CONN_CONNECT, cpid, cexe, ct, 0);
	ct.lport = cport;
	conn_ev(f, cs, MT_CONN_ESTABLISHED, 0, "", ct, 40000);
	st = tuple(lo, sport, lo, cport);
	conn_ev(f, ss, MT_CONN_ACCEPTED, 0, "", st, 0);
	data_ev(f, cs, cpid, cexe, ct, MT_DIR_EGRESS, 100);
	data_ev(f, ss, spid, sexe, st, MT_DIR_INGRESS, 100);
	f->now += 1 * MS;
	data_ev(f, ss, spid, sexe, st, MT_DIR_EGRESS, 500);
	span(f, ss, MT_SPAN_SERVER, spid, ssvc, sexe, st, status, 1 * MS);
	data_ev(f, cs, cpid, cexe, ct, MT_DIR_INGRESS, 500);
	f->now += 1 * MS;
	span(f, cs, MT_SPAN_CLIENT, cpid, csvc, cexe, ct, status, 3 * MS);
	conn_ev(f, cs, MT_CONN_CLOSED, 0, "", ct, 0);
	conn_ev(f, ss, MT_CONN_CLOSED, 0, "", st, 0);
}

/* The spans' translated call: @vip:80 that DNAT took to @srv:8080, as the linker pairs it. */
static void fixture_vip(struct fixture *f, const uint8_t vip[16], const uint8_t srv[16])
{
	f->nat.nat_paired = 1;
	memcpy(f->nat.vip_addr, vip, 16);
	f->nat.vip_port = 80;
	memcpy(f->nat.nat_server_addr, srv, 16);
	f->nat.nat_server_port = 8080;
}

/*
 * A new connection of curl (pid 100) at @cli dialling @dst:@dport, accepted by nginx (pid
 * 200) at @srv:8080 from @seen_port (0: the client's own; else conntrack remapped it), and
 * its 100-byte request at both ends: the client's socket and tuple in *@cs, *@ct, the
 * server's in *@ss, *@st.
 */
static void open_call(struct fixture *f, const uint8_t cli[16], const uint8_t dst[16],
		      uint16_t dport, const uint8_t srv[16], uint16_t seen_port, uint64_t *cs,
		      struct mt_tuple *ct, uint64_t *ss, struct mt_tuple *st)
{
	uint16_t cport = f->next_port++;

	*cs = f->next_sock;
	*ss = f->next_sock + 64;
	f->next_sock += 128;
	*ct = tuple(cli, 0, dst, dport);
	*st = tuple(srv, 8080, cli, seen_port ? seen_port : cport);
	conn_ev(f, *cs, MT_CONN_CONNECT, 100, "curl", *ct, 0);
	ct->lport = cport;
	conn_ev(f, *cs, MT_CONN_ESTABLISHED, 0, "", *ct, 40000);
	conn_ev(f, *ss, MT_CONN_ACCEPTED, 0, "", *st, 0);
	data_ev(f, *cs, 100, "curl", *ct, MT_DIR_EGRESS, 100);
	data_ev(f, *ss, 200, "nginx", *st, MT_DIR_INGRESS, 100);
}

static const struct graph_edge *find_edge(const struct graph *g, const char *client,
					  const char *server, uint8_t proto)
{
	for (uint32_t i = 0; i < graph_edge_count(g); i++) {
		const struct graph_edge *e = graph_edge_at(g, i);

		if (!strcmp(graph_node_at(g, e->client)->name, client) &&
		    !strcmp(graph_node_at(g, e->server)->name, server) && e->protocol == proto)
			return e;
	}
	return NULL;
}

static void test_local_calls_count_once(void **state)
{
	struct fixture *f = fixture_new();
	const struct graph_edge *e;

	(void)state;
	for (int i = 0; i < 5; i++)
		local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 200);
	local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 404);
	local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 500);
	e = find_edge(f->g, "curl", "nginx", MT_PROTO_HTTP1);
	assert_non_null(e);
	assert_int_equal(graph_edge_count(f->g), 1);
	assert_int_equal(e->requests, 7);
	/* 404 fails at the client (the connector's rule), 500 at both: each counted once. */
	assert_int_equal(e->failed, 2);
	assert_int_equal(e->client_latency.count, 7);
	assert_int_equal(e->server_latency.count, 7);
	assert_int_equal(e->connects, 7);
	assert_int_equal(e->connect_latency.count, 7);
	assert_int_equal(e->bytes_sent, 700);
	assert_int_equal(e->bytes_received, 3500);
	assert_int_equal(e->connection_type, GRAPH_CT_NONE);
	/* Latencies: 1 ms on the server, 3 ms on the client. */
	assert_int_equal(e->server_latency.buckets[0], 7); /* <= 2 ms */
	assert_int_equal(e->client_latency.buckets[1], 7); /* <= 4 ms */
	fixture_free(f);
}

/*
 * curl dials a VIP that DNAT takes to nginx on this node; the linker paired
 * the two spans and told both the VIP and the real server. One edge, curl ->
 * nginx, each call counted once, the VIP kept; no node for the VIP. Either
 * span may come first.
 */
static void test_vip_call_names_the_server(void **state)
{
	struct fixture *f = fixture_new();
	uint8_t cli[16], srv[16], vip[16];
	const struct graph_edge *e;

	(void)state;
	addr(cli, 10, 200, 0, 1);
	addr(srv, 10, 200, 0, 2);
	addr(vip, 10, 96, 0, 10);
	fixture_vip(f, vip, srv);
	for (int i = 0; i < 6; i++) {
		uint64_t cs, ss;
		struct mt_tuple ct, st;

		open_call(f, cli, vip, 80, srv, 0, &cs, &ct, &ss, &st);
		f->now += 1 * MS;
		data_ev(f, ss, 200, "nginx", st, MT_DIR_EGRESS, 500);
		data_ev(f, cs, 100, "curl", ct, MT_DIR_INGRESS, 500);
		f->now += 1 * MS;
		if (i % 2) {
			span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
			span(f, ss, MT_SPAN_SERVER, 200, "nginx", "nginx", st, 200, 1 * MS);
		} else {
			span(f, ss, MT_SPAN_SERVER, 200, "nginx", "nginx", st, 200, 1 * MS);
			span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
		}
		conn_ev(f, cs, MT_CONN_CLOSED, 0, "", ct, 0);
		conn_ev(f, ss, MT_CONN_CLOSED, 0, "", st, 0);
	}
	assert_int_equal(graph_edge_count(f->g), 1);
	e = find_edge(f->g, "curl", "nginx", MT_PROTO_HTTP1);
	assert_non_null(e);
	assert_int_equal(e->requests, 6);
	assert_int_equal(e->client_latency.count, 6);
	assert_int_equal(e->server_latency.count, 6);
	assert_int_equal(e->connects, 6);
	assert_int_equal(e->bytes_sent, 600);
	assert_string_equal(e->vip, "10.96.0.10:80");
	for (uint32_t n = 0; n < graph_node_count(f->g); n++)
		assert_int_not_equal(graph_node_at(f->g, n)->kind, GRAPH_NODE_EXTERNAL);
	fixture_free(f);
}

/*
 * conntrack gave a direct call another source port (the client's own was still held in its
 * table by an earlier translated call, test_vip.py): the server sees its client at a port
 * the client's socket does not have. The linker pairs them by sequence and tells the server
 * span the client's own port: one edge curl -> nginx, each call and connect counted once,
 * no "user" node, whether the client closed before the server's span came or not.
 */
static void test_port_remapped_call_names_the_client(void **state)
{
	struct fixture *f = fixture_new();
	uint8_t cli[16], srv[16];
	const struct graph_edge *e;

	(void)state;
	addr(cli, 10, 200, 0, 1);
	addr(srv, 10, 200, 0, 2);
	for (uint16_t i = 0; i < 4; i++) {
		uint64_t cs, ss;
		struct mt_tuple ct, st;

		open_call(f, cli, srv, 8080, srv, (uint16_t)(30000 + i), &cs, &ct, &ss, &st);
		f->now += 1 * MS;
		data_ev(f, ss, 200, "nginx", st, MT_DIR_EGRESS, 500);
		data_ev(f, cs, 100, "curl", ct, MT_DIR_INGRESS, 500);
		f->now += 1 * MS;
		f->nat.nat_client_port = ct.lport; /* what the linker tells the server span */
		if (i % 2) {
			span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
			conn_ev(f, cs, MT_CONN_CLOSED, 0, "", ct, 0);
			span(f, ss, MT_SPAN_SERVER, 200, "nginx", "nginx", st, 200, 1 * MS);
		} else {
			span(f, ss, MT_SPAN_SERVER, 200, "nginx", "nginx", st, 200, 1 * MS);
			span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
			conn_ev(f, cs, MT_CONN_CLOSED, 0, "", ct, 0);
		}
		conn_ev(f, ss, MT_CONN_CLOSED, 0, "", st, 0);
	}
	assert_int_equal(graph_edge_count(f->g), 1);
	e = find_edge(f->g, "curl", "nginx", MT_PROTO_HTTP1);
	assert_non_null(e);
	assert_int_equal(e->requests, 4);
	assert_int_equal(e->client_latency.count, 4);
	assert_int_equal(e->server_latency.count, 4);
	assert_int_equal(e->connects, 4);
	assert_int_equal(e->bytes_sent, 400);
	assert_int_equal(e->bytes_received, 2000);
	for (uint32_t n = 0; n < graph_node_count(f->g); n++)
		assert_int_not_equal(graph_node_at(f->g, n)->kind, GRAPH_NODE_USER);
	fixture_free(f);
}

/*
 * The server's span can reach the graph after its client closed: the server's
 * send event is written at its syscall's exit, and over a veth the client may
 * read the answer and close before that. Kept a moment after its close, the
 * client's socket still names the server span's client: every call counted
 * once, on the one edge, VIP or direct, whatever the order of the client's
 * span. The closed sockets are freed a moment later.
 */
static void test_late_span_after_peer_close(void **state)
{
	uint8_t cli[16], srv[16], vip[16];
	struct graph_stats gst;

	(void)state;
	addr(cli, 10, 200, 0, 1);
	addr(srv, 10, 200, 0, 2);
	addr(vip, 10, 96, 0, 10);
	for (int nat = 0; nat < 2; nat++) {
		struct fixture *f = fixture_new();
		const struct graph_edge *e;

		if (nat)
			fixture_vip(f, vip, srv);
		for (int i = 0; i < 6; i++) {
			uint64_t cs, ss;
			struct mt_tuple ct, st;

			open_call(f, cli, nat ? vip : srv, nat ? 80 : 8080, srv, 0, &cs, &ct, &ss,
				  &st);
			f->now += 1 * MS;
			data_ev(f, cs, 100, "curl", ct, MT_DIR_INGRESS, 500);
			if (i % 3 == 0) /* the client's span first, then its close */
				span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
			conn_ev(f, cs, MT_CONN_CLOSED, 0, "", ct, 0);
			/* Only now the server's send, and its span (with the client's, paired). */
			data_ev(f, ss, 200, "nginx", st, MT_DIR_EGRESS, 500);
			if (i % 3 == 1)
				span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
			span(f, ss, MT_SPAN_SERVER, 200, "nginx", "nginx", st, 200, 1 * MS);
			if (i % 3 == 2)
				span(f, cs, MT_SPAN_CLIENT, 100, "curl", "curl", ct, 200, 3 * MS);
			conn_ev(f, ss, MT_CONN_CLOSED, 0, "", st, 0);
			f->now += 1 * MS;
		}
		e = find_edge(f->g, "curl", "nginx", MT_PROTO_HTTP1);
		assert_non_null(e);
		assert_int_equal(graph_edge_count(f->g), 1);
		assert_int_equal(e->requests, 6);
		assert_int_equal(e->client_latency.count, 6);
		assert_int_equal(e->server_latency.count, 6);
		assert_int_equal(e->connects, 6);
		assert_int_equal(e->bytes_sent, 600);
		assert_int_equal(e->bytes_received, 3000);
		/* A socket address the kernel reuses at once starts a new life. */
		{
			struct mt_tuple ct = tuple(cli, 50000, srv, 8080);

			conn_ev(f, f->next_sock - 128, MT_CONN_CONNECT, 101, "wget", ct, 0);
			conn_ev(f, f->next_sock - 128, MT_CONN_ESTABLISHED, 0, "", ct, 40000);
			data_ev(f, f->next_sock - 128, 101, "wget", ct, MT_DIR_EGRESS, 7);
			conn_ev(f, f->next_sock - 128, MT_CONN_CLOSED, 0, "", ct, 0);
			assert_non_null(find_edge(f->g, "wget", "nginx", MT_PROTO_UNKNOWN));
		}
		/* Bytes to a far end nothing here names wait for a span until the moment ends. */
		{
			uint8_t far[16];
			struct mt_tuple ct;

			addr(far, 192, 0, 2, 7);
			ct = tuple(cli, 50001, far, 5432);
			conn_ev(f, 0x7000, MT_CONN_CONNECT, 101, "wget", ct, 0);
			conn_ev(f, 0x7000, MT_CONN_ESTABLISHED, 0, "", ct, 40000);
			data_ev(f, 0x7000, 101, "wget", ct, MT_DIR_EGRESS, 9);
			conn_ev(f, 0x7000, MT_CONN_CLOSED, 0, "", ct, 0);
			assert_null(find_edge(f->g, "wget", "192.0.2.7:5432", MT_PROTO_UNKNOWN));
		}
		graph_stats(f->g, &gst);
		assert_int_equal(gst.sockets, 0);
		assert_int_equal(gst.sockets_closed, 6 * 2 + 2);
		/* The 6 server spans came after their client closed. */
		assert_int_equal(gst.late_peer_spans, 6);
		/* Closed sockets are let go a moment later: every slot free again. */
		graph_tick(f->g, f->now + GRAPH_LINGER_NS + 1);
		e = find_edge(f->g, "wget", "192.0.2.7:5432", MT_PROTO_UNKNOWN);
		assert_non_null(e);
		assert_int_equal(e->bytes_sent, 9);
		assert_int_equal(e->connects, 1);
		for (uint32_t k = 0; k < GRAPH_SOCKS_MAX; k++) {
			struct mt_tuple t = tuple(cli, 1, srv, 8080);

			conn_ev(f, 0x40000000ull + k * 64, MT_CONN_CONNECT, 100, "curl", t, 0);
		}
		graph_stats(f->g, &gst);
		assert_int_equal(gst.sockets, GRAPH_SOCKS_MAX);
		assert_int_equal(gst.sockets_full, 0);
		assert_int_equal(gst.sockets_closed, 0);
		assert_int_equal(gst.linger_cut, 0);
		/* A full table takes a closed socket's slot before it counts a drop. */
		conn_ev(f, 0x40000000ull, MT_CONN_CLOSED, 0, "", tuple(cli, 1, srv, 8080), 0);
		graph_stats(f->g, &gst);
		assert_int_equal(gst.sockets_closed, 1);
		conn_ev(f, 0x3f000000ull, MT_CONN_CONNECT, 100, "curl", tuple(cli, 2, srv, 8080),
			0);
		graph_stats(f->g, &gst);
		assert_int_equal(gst.sockets, GRAPH_SOCKS_MAX);
		assert_int_equal(gst.sockets_closed, 0);
		assert_int_equal(gst.linger_cut, 1);
		assert_int_equal(gst.sockets_full, 0);
		fixture_free(f);
	}
}

static void test_tcp_edge_and_names(void **state)
{
	struct fixture *f = fixture_new();
	uint8_t lo[16];
	struct mt_tuple ct, st;
	const struct graph_edge *e;

	(void)state;
	addr(lo, 127, 0, 0, 1);
	/* backend -> redis: no parser, bytes only; closed. */
	ct = tuple(lo, 0, lo, 6379);
	conn_ev(f, 0x900, MT_CONN_CONNECT, 300, "python3", ct, 0);
	ct.lport = 45000;
	conn_ev(f, 0x900, MT_CONN_ESTABLISHED, 0, "", ct, 30000);
	st = tuple(lo, 6379, lo, 45000);
	conn_ev(f, 0x940, MT_CONN_ACCEPTED, 0, "", st, 0);
	data_ev(f, 0x900, 300, "python3", ct, MT_DIR_EGRESS, 14);
	data_ev(f, 0x940, 400, "redis-server", st, MT_DIR_INGRESS, 14);
	data_ev(f, 0x940, 400, "redis-server", st, MT_DIR_EGRESS, 5);
	data_ev(f, 0x900, 300, "python3", ct, MT_DIR_INGRESS, 5);
	/* Not decided before its close or the deadline. */
	assert_int_equal(graph_edge_count(f->g), 0);
	conn_ev(f, 0x900, MT_CONN_CLOSED, 0, "", ct, 0);
	conn_ev(f, 0x940, MT_CONN_CLOSED, 0, "", st, 0);
	e = find_edge(f->g, "backend", "redis-server", MT_PROTO_UNKNOWN);
	assert_non_null(e);
	assert_int_equal(e->requests, 0);
	assert_int_equal(e->connects, 1);
	assert_int_equal(e->bytes_sent, 14);
	assert_int_equal(e->bytes_received, 5);

	/* A kept-open connection is decided by the clock. */
	ct.lport = 45001;
	st.rport = 45001;
	conn_ev(f, 0xa00, MT_CONN_CONNECT, 300, "python3", ct, 0);
	conn_ev(f, 0xa00, MT_CONN_ESTABLISHED, 0, "", ct, 30000);
	conn_ev(f, 0xa40, MT_CONN_ACCEPTED, 0, "", st, 0);
	data_ev(f, 0xa00, 300, "python3", ct, MT_DIR_EGRESS, 10);
	data_ev(f, 0xa40, 400, "redis-server", st, MT_DIR_INGRESS, 10);
	graph_tick(f->g, f->now + GRAPH_DECIDE_NS + 1);
	assert_int_equal(e->connects, 2);
	assert_int_equal(e->bytes_sent, 24);
	f->now += GRAPH_DECIDE_NS + 2;
	data_ev(f, 0xa00, 300, "python3", ct, MT_DIR_EGRESS, 10); /* straight to the edge now */
	assert_int_equal(e->bytes_sent, 34);
	conn_ev(f, 0xa00, MT_CONN_RETRANSMIT, 0, "", ct, 0);
	assert_int_equal(e->retransmits, 1);

	/* A refused connect to a port nobody listens on: named by address. */
	ct = tuple(lo, 0, lo, 9);
	conn_ev(f, 0xb00, MT_CONN_CONNECT, 100, "curl", ct, 0);
	conn_ev(f, 0xb00, MT_CONN_FAILED, 0, "", ct, 1000);
	e = find_edge(f->g, "curl", "127.0.0.1:9", MT_PROTO_UNKNOWN);
	assert_non_null(e);
	assert_int_equal(e->connect_failures, 1);
	assert_int_equal(e->connects, 0);
	assert_int_equal(e->connection_type, GRAPH_CT_VIRTUAL_NODE);
	fixture_free(f);
}

/* A TLS connection whose plaintext no probe saw: a TCP edge marked "tls". */
static void test_uncovered_tls_edge(void **state)
{
	static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
	struct fixture *f = fixture_new();
	struct {
		struct mt_data_event ev;
		uint8_t data[sizeof(hello)];
	} d;
	struct mt_tuple ct, st;
	const struct graph_edge *e;
	uint8_t lo[16];

	(void)state;
	addr(lo, 127, 0, 0, 1);
	ct = tuple(lo, 45100, lo, 6380);
	st = tuple(lo, 6380, lo, 45100);
	conn_ev(f, 0xc00, MT_CONN_CONNECT, 300, "python3", ct, 0);
	conn_ev(f, 0xc00, MT_CONN_ESTABLISHED, 0, "", ct, 30000);
	conn_ev(f, 0xc40, MT_CONN_ACCEPTED, 0, "", st, 0);
	memset(&d, 0, sizeof(d));
	d.ev.head.kind = MT_EV_DATA;
	d.ev.head.ts_ns = f->now;
	d.ev.head.sock = 0xc00;
	d.ev.pid = 300;
	d.ev.bytes = d.ev.captured = sizeof(hello);
	d.ev.dir = MT_DIR_EGRESS;
	snprintf(d.ev.comm, sizeof(d.ev.comm), "python3");
	d.ev.tuple = ct;
	memcpy(d.data, hello, sizeof(hello));
	graph_on_data(f->g, &d.ev);
	data_ev(f, 0xc40, 400, "redis-server", st, MT_DIR_INGRESS, sizeof(hello));
	conn_ev(f, 0xc00, MT_CONN_CLOSED, 0, "", ct, 0);
	conn_ev(f, 0xc40, MT_CONN_CLOSED, 0, "", st, 0);
	e = find_edge(f->g, "backend", "redis-server", MT_PROTO_UNKNOWN);
	assert_non_null(e);
	assert_int_equal(e->connection_type, GRAPH_CT_TLS);
	assert_string_equal(graph_conn_type_name(e->connection_type), "tls");
	assert_int_equal(e->bytes_sent, sizeof(hello));
	fixture_free(f);
}

static void test_outside_peers(void **state)
{
	struct fixture *f = fixture_new();
	uint8_t lo[16], far[16], user[16];
	struct mt_tuple t;
	const struct graph_edge *e;

	(void)state;
	addr(lo, 192, 168, 50, 2);
	addr(far, 93, 184, 216, 34);
	addr(user, 203, 0, 113, 9);
	/* A client on this node calls a server outside, whose name a DNS answer gave. */
	peers_learn_name(f->peers, far, "api.example.com", 300, f->now);
	t = tuple(lo, 50000, far, 443);
	conn_ev(f, 0xc00, MT_CONN_CONNECT, 100, "curl", tuple(lo, 0, far, 443), 0);
	conn_ev(f, 0xc00, MT_CONN_ESTABLISHED, 0, "", t, 2 * MS);
	data_ev(f, 0xc00, 100, "curl", t, MT_DIR_EGRESS, 80);
	span(f, 0xc00, MT_SPAN_CLIENT, 100, "curl", "curl", t, 503, 20 * MS);
	e = find_edge(f->g, "curl", "api.example.com", MT_PROTO_HTTP1);
	assert_non_null(e);
	assert_int_equal(e->requests, 1); /* counted from the client: no server span will come */
	assert_int_equal(e->failed, 1);
	assert_int_equal(e->server_latency.count, 0);
	assert_int_equal(e->client_latency.count, 1);
	assert_int_equal(e->connects, 1);
	assert_int_equal(e->bytes_sent, 80);
	assert_int_equal(e->connection_type, GRAPH_CT_VIRTUAL_NODE);

	/* A caller from outside with no name is "user"; its failures count at the server. */
	t = tuple(lo, 8080, user, 51000);
	conn_ev(f, 0xd00, MT_CONN_ACCEPTED, 0, "", t, 0);
	data_ev(f, 0xd00, 200, "nginx", t, MT_DIR_INGRESS, 70);
	span(f, 0xd00, MT_SPAN_SERVER, 200, "nginx", "nginx", t, 500, 5 * MS);
	span(f, 0xd00, MT_SPAN_SERVER, 200, "nginx", "nginx", t, 200, 5 * MS);
	e = find_edge(f->g, "user", "nginx", MT_PROTO_HTTP1);
	assert_non_null(e);
	assert_int_equal(e->requests, 2);
	assert_int_equal(e->failed, 1);
	assert_int_equal(e->client_latency.count, 0);
	assert_int_equal(e->server_latency.count, 2);
	conn_ev(f, 0xd00, MT_CONN_CLOSED, 0, "", t, 0);
	assert_int_equal(e->connects, 1); /* counted at the server: the client is not here */
	assert_int_equal(e->bytes_sent, 70);
	/* A named caller from outside keeps its DNS name. */
	peers_learn_name(f->peers, user, "partner.example.net", 300, f->now);
	t.rport = 51001;
	span(f, 0xe00, MT_SPAN_SERVER, 200, "nginx", "nginx", t, 200, 5 * MS);
	assert_non_null(find_edge(f->g, "partner.example.net", "nginx", MT_PROTO_HTTP1));
	fixture_free(f);
}

/* A pod of this node at the far end, its process not seen: named by the pod, before DNS. */
static void test_pod_ip_peer(void **state)
{
	struct fixture *f = fixture_new();
	struct k8s *k = k8s__new("/nonexistent/cri.sock"); /* never polled: no call is made */
	struct k8s_kv labels[] = {{"pod-template-hash", "6f8d9c7b5"}};
	struct k8s_pod_in in = {.namespace_name = "pay",
				.pod_name = "ledger-6f8d9c7b5-k2j4m",
				.pod_uid = "u",
				.labels = labels,
				.n_labels = 1,
				.container_name = ""};
	const char *ip[] = {"10.213.0.5"}, *sid;
	struct k8s_pods *pods;
	uint8_t host[16], pod[16];
	const struct graph_edge *e;
	const struct graph_node *n;
	uint16_t h, gen;
	struct mt_tuple t;

	(void)state;
	assert_non_null(k);
	identity_set_k8s(f->id, k);
	pods = k8s_pods_of(k);
	k8s_pods_list_begin(pods);
	k8s_pods_list_item(pods, "sb1", &in);
	k8s_pods_list_end(pods, f->now);
	h = k8s_pods_next_status(pods, f->now, &gen, &sid);
	k8s_pods_status_done(pods, h, gen, true, ip, 1, f->now);
	addr(host, 10, 213, 0, 1);
	addr(pod, 10, 213, 0, 5);
	peers_learn_name(f->peers, pod, "ledger.pay.svc.cluster.local", 300, f->now);
	t = tuple(host, 50100, pod, 8080);
	span(f, 0xf00, MT_SPAN_CLIENT, 100, "curl", "curl", t, 200, 2 * MS);
	e = find_edge(f->g, "curl", "ledger", MT_PROTO_HTTP1);
	assert_non_null(e);
	n = graph_node_at(f->g, e->server);
	assert_string_equal(n->namespace_name, "pay");
	assert_string_equal(n->workload, "deployment/ledger");
	assert_int_equal(e->requests, 1); /* counted from the client: the server was not seen */
	assert_null(find_edge(f->g, "curl", "ledger.pay.svc.cluster.local", MT_PROTO_HTTP1));
	fixture_free(f);
	k8s__free(k);
}

static void test_bounded(void **state)
{
	struct fixture *f = fixture_new();
	struct graph_stats st;
	uint8_t lo[16], far[16];

	(void)state;
	addr(lo, 10, 0, 0, 1);
	for (uint32_t i = 0; i < 3000; i++) {
		struct mt_tuple t;

		addr(far, 172, 16, (uint8_t)(i >> 8), (uint8_t)i);
		t = tuple(lo, 30000, far, 80);
		conn_ev(f, 0x100000 + i * 64, MT_CONN_CONNECT, 100, "curl", t, 0);
		conn_ev(f, 0x100000 + i * 64, MT_CONN_FAILED, 0, "", t, 0);
	}
	graph_stats(f->g, &st);
	assert_true(st.nodes <= GRAPH_NODES_MAX && st.edges <= GRAPH_EDGES_MAX);
	assert_true(st.nodes_full > 0);
	assert_int_equal(st.edges + st.nodes_full + st.edges_full, 3000);
	assert_int_equal(st.sockets, 0);
	fixture_free(f);
}

static void test_json_shape(void **state)
{
	struct fixture *f = fixture_new();
	struct mt_buf b;

	(void)state;
	for (int i = 0; i < 3; i++)
		local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, i ? 200 : 502);
	mt_buf_init(&b, 1 << 20);
	assert_int_equal(graph_write_json(f->g, &b, f->now), 0);
	mt_buf_append(&b, "", 1);
	assert_non_null(strstr(b.data, "{\"generated_unix_ms\":"));
	assert_non_null(strstr(b.data, ",\"window_s\":"));
	assert_non_null(strstr(b.data, "{\"id\":\"nginx\",\"name\":\"nginx\",\"kind\":\"service\","
				       "\"requests\":3,\"failed\":1}"));
	assert_non_null(strstr(b.data,
			       "{\"client\":\"curl\",\"server\":\"nginx\",\"protocol\":"
			       "\"http\",\"connection_type\":\"\",\"requests\":3,\"failed\":1,"
			       "\"rate_per_s\":"));
	assert_non_null(strstr(b.data, "\"bytes_sent\":300,\"bytes_received\":1500,\"connects\":3,"
				       "\"connect_failures\":0,\"connect_p50_ms\":"));
	assert_non_null(strstr(b.data, "\"services\":[{\"name\":"));
	assert_non_null(strstr(b.data, "{\"name\":\"curl\",\"pids\":[100],\"requests\":0,"));
	assert_non_null(strstr(b.data, "{\"name\":\"nginx\",\"pids\":[200],\"requests\":3,"
				       "\"failed\":1,\"rate_per_s\":"));
	graph_on_exit(f->g, 200);
	mt_buf_reset(&b);
	graph_write_json(f->g, &b, f->now);
	mt_buf_append(&b, "", 1);
	assert_non_null(strstr(b.data, "{\"name\":\"nginx\",\"pids\":[],"));
	mt_buf_free(&b);
	fixture_free(f);
}

static void test_quantiles(void **state)
{
	static const double bounds[3] = {1, 2, 4};
	uint32_t b[4] = {0, 10, 0, 0};

	(void)state;
	assert_float_equal(graph_quantile(bounds, 3, b, 0.5), 1.5, 1e-9);
	b[3] = 10;
	assert_float_equal(graph_quantile(bounds, 3, b, 0.99), 4, 1e-9); /* above the last bound */
	memset(b, 0, sizeof(b));
	assert_float_equal(graph_quantile(bounds, 3, b, 0.5), 0, 1e-9);
}

static void test_prometheus_names(void **state)
{
	char n[256];

	(void)state;
	metrics_prometheus_name("http.server.request.duration", "s", false, n, sizeof(n));
	assert_string_equal(n, "http_server_request_duration_seconds");
	metrics_prometheus_name("traces_service_graph_request_total", "", true, n, sizeof(n));
	assert_string_equal(n, "traces_service_graph_request_total");
	metrics_prometheus_name("traces_service_graph_request_server", "s", false, n, sizeof(n));
	assert_string_equal(n, "traces_service_graph_request_server_seconds");
	metrics_prometheus_name("meshtrace.kernel.captured", "By", true, n, sizeof(n));
	assert_string_equal(n, "meshtrace_kernel_captured_bytes_total");
	metrics_prometheus_name("meshtrace.spans", "{span}", true, n, sizeof(n));
	assert_string_equal(n, "meshtrace_spans_total");
	metrics_prometheus_name("a..b-c/d", "m/s", false, n, sizeof(n));
	assert_string_equal(n, "a_b_c_d_m_per_s");
	metrics_prometheus_name("duration_seconds", "s", false, n, sizeof(n));
	assert_string_equal(n, "duration_seconds");
}

static void test_metrics_both_encodings(void **state)
{
	struct fixture *f = fixture_new();
	struct metrics *m = metrics__new(NULL);
	struct metrics_health h;
	Meshtrace__Otlp__ExportMetricsServiceRequest *req;
	struct mt_span s;
	struct mt_buf b;
	uint8_t *pb;
	size_t len;
	bool saw_total = false, saw_http = false, saw_health = false;

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 4; i++)
		local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, i ? 200 : 500);
	s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, "nginx", "GET", 200, 3 * MS);
	metrics_on_span(m, &s);
	metrics_on_span(m, &s);
	s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, "nginx", "BREW", 500, 30 * MS);
	metrics_on_span(m, &s);
	s = http_span(MT_SPAN_CLIENT, MT_PROTO_HTTP1, "curl", "GET", 404, 3 * MS);
	metrics_on_span(m, &s);
	metrics_health_reset(&h);
	metrics_health_add(&h, MH_KERNEL_DROPS, "reason", "ringbuf_full", 7);
	metrics_health_add(&h, MH_QUEUE_DEPTH, "queue", "otlp_spans", 3);

	mt_buf_init(&b, 1 << 22);
	assert_int_equal(metrics_write_prometheus(m, f->g, &h, &b), 0);
	mt_buf_append(&b, "", 1);
	assert_non_null(strstr(b.data, "# TYPE traces_service_graph_request_total counter\n"));
	assert_non_null(strstr(b.data,
			       "traces_service_graph_request_total{client=\"curl\",server="
			       "\"nginx\",connection_type=\"\",otel_scope_name=\"meshtrace\""));
	assert_non_null(strstr(b.data, "# TYPE traces_service_graph_request_server_seconds "
				       "histogram\n"));
	assert_non_null(strstr(b.data, "traces_service_graph_request_server_seconds_bucket{client="
				       "\"curl\",server=\"nginx\",connection_type=\"\","));
	assert_non_null(strstr(b.data, "le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(b.data,
			       "http_server_request_duration_seconds_count{http_request_"
			       "method=\"GET\",http_response_status_code=\"200\",url_scheme="
			       "\"http\",network_protocol_version=\"1.1\",service_name="
			       "\"nginx\","));
	assert_non_null(strstr(b.data, "http_request_method=\"_OTHER\",http_response_status_code="
				       "\"500\",error_type=\"500\""));
	assert_non_null(strstr(b.data,
			       "http_client_request_duration_seconds_bucket{http_request_"
			       "method=\"GET\",http_response_status_code=\"404\",error_type="
			       "\"404\",server_address=\"shop.test\",server_port=\"8080\""));
	assert_non_null(strstr(b.data, "meshtrace_kernel_drops_total{reason=\"ringbuf_full\","));
	assert_non_null(strstr(b.data, "# TYPE meshtrace_queue_depth gauge\n"));
	assert_non_null(strstr(b.data, "target_info{service_name=\"meshtrace\""));
	/* One TYPE line per family. */
	{
		const char *first = strstr(b.data, "# TYPE http_server_request_duration_seconds ");

		assert_non_null(first);
		assert_null(strstr(first + 1, "# TYPE http_server_request_duration_seconds "));
	}
	mt_buf_free(&b);

	assert_int_equal(metrics_encode_otlp(m, f->g, &h, 5000000000ull, &pb, &len), 0);
	req = meshtrace__otlp__export_metrics_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	/* The agent's resource, then one per service (curl, nginx). */
	assert_int_equal(req->n_resource_metrics, 3);
	for (size_t r = 0; r < req->n_resource_metrics; r++) {
		Meshtrace__Otlp__ScopeMetrics *sm = req->resource_metrics[r]->scope_metrics[0];

		assert_string_equal(sm->scope->name, "meshtrace");
		for (size_t k = 0; k < sm->n_metrics; k++) {
			Meshtrace__Otlp__Metric *mt = sm->metrics[k];

			if (!strcmp(mt->name, "traces_service_graph_request_total")) {
				assert_int_equal(mt->data_case, MESHTRACE__OTLP__METRIC__DATA_SUM);
				assert_int_equal(
					mt->sum->aggregation_temporality,
					MESHTRACE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
				assert_true(mt->sum->is_monotonic);
				assert_int_equal(mt->sum->data_points[0]->as_int, 4);
				saw_total = true;
			}
			if (!strcmp(mt->name, "http.server.request.duration")) {
				Meshtrace__Otlp__HistogramDataPoint *dp =
					mt->histogram->data_points[0];

				assert_string_equal(mt->unit, "s");
				assert_int_equal(dp->count, 2);
				assert_int_equal(dp->n_explicit_bounds, METRICS_HTTP_BOUNDS);
				assert_int_equal(dp->n_bucket_counts, METRICS_HTTP_BOUNDS + 1);
				assert_int_equal(dp->bucket_counts[0], 2); /* 3 ms <= 5 ms */
				saw_http = true;
			}
			if (!strcmp(mt->name, "meshtrace.kernel.drops"))
				saw_health = mt->sum->data_points[0]->as_int == 7;
		}
	}
	assert_true(saw_total && saw_http && saw_health);
	meshtrace__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	free(pb);
	metrics__free(m);
	fixture_free(f);
}

static void test_metric_series_bounded(void **state)
{
	struct metrics *m = metrics__new(NULL);
	struct metrics_stats st;

	(void)state;
	for (int i = 0; i < METRICS_SERIES_MAX + 500; i++) {
		char svc[32];
		struct mt_span s;

		snprintf(svc, sizeof(svc), "svc-%d", i);
		s = http_span(MT_SPAN_SERVER, MT_PROTO_HTTP1, svc, "GET", 200, MS);
		metrics_on_span(m, &s);
	}
	metrics_stats(m, &st);
	assert_int_equal(st.series, METRICS_SERIES_MAX);
	assert_int_equal(st.series_full, 500);
	metrics__free(m);
}

/* The cost figure: one server span on a kept-alive connection through the graph stage. */
static void test_span_cost(void **state)
{
	struct fixture *f = fixture_new();
	uint8_t lo[16];
	struct mt_tuple ct, st;
	struct timespec t0, t1;
	const int n = 200000;
	double ns;

	(void)state;
	addr(lo, 127, 0, 0, 1);
	ct = tuple(lo, 41000, lo, 8080);
	st = tuple(lo, 8080, lo, 41000);
	conn_ev(f, 0x5000, MT_CONN_CONNECT, 100, "curl", ct, 0);
	conn_ev(f, 0x5000, MT_CONN_ESTABLISHED, 0, "", ct, 1000);
	conn_ev(f, 0x5040, MT_CONN_ACCEPTED, 0, "", st, 0);
	data_ev(f, 0x5040, 200, "nginx", st, MT_DIR_INGRESS, 100);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		f->now += 1000;
		span(f, 0x5040, MT_SPAN_SERVER, 200, "nginx", "nginx", st, 200, 500000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
	{
		struct graph_stats gs;

		graph_stats(f->g, &gs);
		print_message("graph_on_span: %.0f ns per span with the test's span building, "
			      "%.0f ns in the graph stage (sampled)\n",
			      ns, (double)gs.update_ns_sum / (double)gs.update_ns_count);
	}
	assert_int_equal(find_edge(f->g, "curl", "nginx", MT_PROTO_HTTP1)->requests, (uint64_t)n);
	fixture_free(f);
}

/*
 * Exemplars of the service-graph histograms: per bucket the latest span the
 * caller let be one; edges of one client/server pair over two protocols are
 * one series, whose exemplar is the later of the two. OpenMetrics shows them,
 * the OTLP request carries them.
 */
static void test_metrics_graph_exemplars(void **state)
{
	struct fixture *f = fixture_new();
	struct metrics *m = metrics__new(NULL);
	Meshtrace__Otlp__ExportMetricsServiceRequest *req;
	struct mt_buf b;
	const char *l;
	uint8_t *pb;
	size_t len, found = 0;

	(void)state;
	assert_non_null(m);
	f->exemplar = true;
	f->trace = 0x10;
	local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 200);
	f->trace = 0x20;
	local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 200);
	f->exemplar = false; /* counted, but its trace is not exported */
	f->trace = 0x30;
	local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 200);
	/* The same pair over HTTP/2: another edge, the same series; later, so it wins. */
	f->exemplar = true;
	f->trace = 0x40;
	f->proto = MT_PROTO_HTTP2;
	local_call(f, 100, "curl", "curl", 200, "nginx", "nginx", 8080, 200);

	mt_buf_init(&b, 1 << 22);
	assert_int_equal(metrics_write_openmetrics(m, f->g, NULL, &b), 0);
	mt_buf_append(&b, "", 1);
	/* Server side: 1 ms, bucket le=0.002; client side: 3 ms, le=0.004 (span ids: trace + kind). */
	l = strstr(b.data, "traces_service_graph_request_server_seconds_bucket{client=\"curl\","
			   "server=\"nginx\",connection_type=\"\",otel_scope_name=\"meshtrace\","
			   "otel_scope_version=\"" MESHTRACE_VERSION "\",le=\"0.002\"} 4 # "
			   "{trace_id=\"40404040404040404040404040404040\",span_id=\""
			   "4242424242424242\"} 0.001 ");
	assert_non_null(l);
	l = strstr(b.data, "traces_service_graph_request_client_seconds_bucket{client=\"curl\","
			   "server=\"nginx\",connection_type=\"\",otel_scope_name=\"meshtrace\","
			   "otel_scope_version=\"" MESHTRACE_VERSION "\",le=\"0.004\"} 4 # "
			   "{trace_id=\"40404040404040404040404040404040\",span_id=\""
			   "4343434343434343\"} 0.003 ");
	assert_non_null(l);
	/* No other bucket has one; connect latency never does. */
	for (l = b.data; (l = strstr(l, "trace_id=")) != NULL; l++)
		found++;
	assert_int_equal(found, 2);
	mt_buf_free(&b);

	assert_int_equal(metrics_encode_otlp(m, f->g, NULL, 5000000000ull, &pb, &len), 0);
	req = meshtrace__otlp__export_metrics_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	found = 0;
	for (size_t r = 0; r < req->n_resource_metrics; r++) {
		Meshtrace__Otlp__ScopeMetrics *sm = req->resource_metrics[r]->scope_metrics[0];

		for (size_t k = 0; k < sm->n_metrics; k++) {
			Meshtrace__Otlp__Metric *mt = sm->metrics[k];
			Meshtrace__Otlp__HistogramDataPoint *dp;

			if (strcmp(mt->name, "traces_service_graph_request_server") != 0)
				continue;
			dp = mt->histogram->data_points[0];
			assert_int_equal(dp->n_exemplars, 1);
			assert_int_equal(dp->exemplars[0]->trace_id.len, 16);
			assert_int_equal(dp->exemplars[0]->trace_id.data[15], 0x40);
			assert_int_equal(dp->exemplars[0]->span_id.data[0], 0x42);
			assert_true(dp->exemplars[0]->as_double == 0.001);
			assert_int_equal(dp->exemplars[0]->time_unix_nano, f->now - 1 * MS);
			found++;
		}
	}
	assert_int_equal(found, 1);
	meshtrace__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	free(pb);
	metrics__free(m);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_calls_count_once),
		cmocka_unit_test(test_vip_call_names_the_server),
		cmocka_unit_test(test_port_remapped_call_names_the_client),
		cmocka_unit_test(test_late_span_after_peer_close),
		cmocka_unit_test(test_tcp_edge_and_names),
		cmocka_unit_test(test_uncovered_tls_edge),
		cmocka_unit_test(test_outside_peers),
		cmocka_unit_test(test_pod_ip_peer),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_json_shape),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_prometheus_names),
		cmocka_unit_test(test_metrics_both_encodings),
		cmocka_unit_test(test_metrics_graph_exemplars),
		cmocka_unit_test(test_metric_series_bounded),
		cmocka_unit_test(test_span_cost),
	};

	return cmocka_run_group_tests(tests, setup_proc, NULL);
}
