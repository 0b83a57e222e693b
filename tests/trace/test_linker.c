// SPDX-License-Identifier: Apache-2.0
/*
 * The linker on synthetic requests: a call between two processes of this
 * node joins by flow and TCP sequence number in either completion order,
 * a thread's client call joins the server request it is handling, a call to
 * a process serving nothing is a root, and nothing is held once both sides
 * are done (only a client whose server is not on the node waits for expiry).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent/trace/linker.h"

#define MS 1000000ull

static const uint64_t seed[4] = {1, 2, 3, 4};

/* 127.0.0.1:@lport <-> 127.0.0.1:@rport, v4-mapped. */
static struct conn_info conn(uint64_t sock, uint32_t pid, uint32_t tid, uint8_t role,
			     uint16_t lport, uint16_t rport)
{
	struct conn_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.sock = sock;
	ci.pid = pid;
	ci.tid = tid;
	ci.role = role;
	ci.tuple.family = 2;
	ci.tuple.lport = lport;
	ci.tuple.rport = rport;
	for (int i = 0; i < 2; i++) {
		uint8_t *a = i ? ci.tuple.raddr : ci.tuple.laddr;

		a[10] = a[11] = 0xff;
		a[12] = 127;
		a[15] = 1;
	}
	return ci;
}

static struct mt_exchange exchange(uint32_t seq, uint64_t start, uint8_t stage)
{
	struct mt_exchange x;

	memset(&x, 0, sizeof(x));
	x.protocol = MT_PROTO_HTTP1;
	x.stage = stage;
	x.req_seq = seq;
	x.req_start_ns = start;
	x.req_end_ns = start + 1;
	if (stage == MT_STAGE_DONE)
		x.resp_end_ns = start + 2 * MS;
	return x;
}

static uint64_t held(struct linker *l)
{
	struct link_stats st;

	linker_stats(l, &st);
	return st.requests;
}

/*
 * One request of client @c answered by server @s at sequence number @seq: both
 * sides' requests (the client's first when @client_first; the server's read
 * may reach the ring before the client's send), then both done (the server's
 * first when @server_first). Their ids in @cli and @srv.
 */
static void pair_one(struct linker *l, const struct conn_info *c, const struct conn_info *s,
		     uint32_t seq, uint64_t start, bool client_first, bool server_first,
		     struct link_ids *cli, struct link_ids *srv)
{
	struct mt_exchange x = exchange(seq, start, MT_STAGE_REQUEST);

	linker_on_request(l, client_first ? c : s, &x);
	linker_on_request(l, client_first ? s : c, &x);
	x = exchange(seq, start, MT_STAGE_DONE);
	if (server_first) {
		linker_on_done(l, s, &x, srv);
		linker_on_done(l, c, &x, cli);
	} else {
		linker_on_done(l, c, &x, cli);
		linker_on_done(l, s, &x, srv);
	}
}

/* One call from a client process to a server process on this node; @server_first: done order. */
static void one_call(struct linker *l, uint32_t seq, uint64_t t, bool server_first,
		     struct link_ids *cli, struct link_ids *srv)
{
	struct conn_info c = conn(0x1000, 10, 10, CONN_ROLE_CLIENT, 40000, 8080);
	struct conn_info s = conn(0x2000, 20, 20, CONN_ROLE_SERVER, 8080, 40000);

	pair_one(l, &c, &s, seq, t, true, server_first, cli, srv);
}

static void test_peer_call_either_order(void **state)
{
	struct linker *l = linker__new(seed);
	struct link_ids cli, srv;
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	for (uint32_t i = 0; i < 2 * LINK_REQS_MAX; i++) {
		one_call(l, 1000 + 100 * i, (uint64_t)i * MS, i % 2, &cli, &srv);
		assert_true(cli.emit && srv.emit);
		assert_memory_equal(srv.trace_id, cli.trace_id, 16);
		assert_memory_equal(srv.parent_span_id, cli.span_id, 8);
		/* Both sides done: nothing is held for this call any more. */
		assert_int_equal(held(l), 0);
	}
	linker_stats(l, &st);
	assert_int_equal(st.linked_peer, 2 * LINK_REQS_MAX);
	assert_int_equal(st.unlinked[LINK_TABLE_FULL], 0);
	linker__free(l);
}

static void test_remote_server_client_waits_for_expiry(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info c = conn(0x1000, 10, 10, CONN_ROLE_CLIENT, 40000, 443);
	struct mt_exchange x = exchange(7, 5 * MS, MT_STAGE_REQUEST);
	struct link_ids ids;

	(void)state;
	c.tuple.raddr[12] = 10; /* 10.0.0.1: no server of this node will ask for it */
	linker_on_request(l, &c, &x);
	x = exchange(7, 5 * MS, MT_STAGE_DONE);
	linker_on_done(l, &c, &x, &ids);
	assert_true(ids.emit);
	assert_int_equal(held(l), 1); /* a server on the node could still read it */
	linker_expire(l, 6 * MS);
	assert_int_equal(held(l), 1);
	linker_expire(l, 500 * MS);
	assert_int_equal(held(l), 0);
	linker__free(l);
}

static void test_in_process_child_and_root(void **state)
{
	struct linker *l = linker__new(seed);
	/* Process 20 serves on 0x2000 and calls out on 0x3000 from the same thread. */
	struct conn_info in = conn(0x2000, 20, 21, CONN_ROLE_SERVER, 8080, 40000);
	struct conn_info out = conn(0x3000, 20, 21, CONN_ROLE_CLIENT, 41000, 6379);
	/* Process 30 serves nothing and calls out. */
	struct conn_info lone = conn(0x4000, 30, 30, CONN_ROLE_CLIENT, 42000, 6379);
	struct mt_exchange x = exchange(100, 1 * MS, MT_STAGE_REQUEST);
	struct link_ids srv, child, root;
	struct link_stats st;

	(void)state;
	linker_on_io(l, 21, in.sock);
	linker_on_request(l, &in, &x);
	x = exchange(500, 2 * MS, MT_STAGE_REQUEST);
	linker_on_io(l, 21, out.sock);
	linker_on_request(l, &out, &x);
	x = exchange(500, 2 * MS, MT_STAGE_DONE);
	linker_on_done(l, &out, &x, &child);
	x = exchange(100, 1 * MS, MT_STAGE_DONE);
	linker_on_done(l, &in, &x, &srv);
	assert_memory_equal(child.trace_id, srv.trace_id, 16);
	assert_memory_equal(child.parent_span_id, srv.span_id, 8);

	x = exchange(900, 3 * MS, MT_STAGE_REQUEST);
	linker_on_io(l, 30, lone.sock);
	linker_on_request(l, &lone, &x);
	x = exchange(900, 3 * MS, MT_STAGE_DONE);
	linker_on_done(l, &lone, &x, &root);
	assert_memory_not_equal(root.trace_id, srv.trace_id, 16);
	assert_memory_equal(root.parent_span_id, (uint8_t[8]){0}, 8);

	linker_stats(l, &st);
	assert_int_equal(st.linked_in_process, 1);
	assert_int_equal(st.unlinked[LINK_NO_SERVER_CONTEXT], 1);
	assert_int_equal(st.unlinked[LINK_AMBIGUOUS_PROCESS], 0);
	linker__free(l);
}

/*
 * On loopback the receiver can read a request, and make its own call, before
 * the sender's send() returns and its event is seen: the receiver's context
 * is taken when first needed (its call completing), by when it has been.
 */
static void test_sender_seen_after_receiver_called_out(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info a_cli = conn(0x1000, 10, 10, CONN_ROLE_CLIENT, 40000, 8080);
	struct conn_info b_srv = conn(0x2000, 20, 21, CONN_ROLE_SERVER, 8080, 40000);
	struct conn_info b_cli = conn(0x3000, 20, 21, CONN_ROLE_CLIENT, 41000, 9090);
	struct mt_exchange req = exchange(100, 1 * MS, MT_STAGE_REQUEST);
	struct mt_exchange up = exchange(700, 2 * MS, MT_STAGE_REQUEST);
	struct link_ids a, b, child;
	struct link_stats st;

	(void)state;
	linker_on_io(l, 21, b_srv.sock);
	linker_on_request(l, &b_srv, &req); /* B read it */
	linker_on_io(l, 21, b_cli.sock);
	linker_on_request(l, &b_cli, &up);  /* B called out */
	linker_on_request(l, &a_cli, &req); /* only now A's send() returned */
	up = exchange(700, 2 * MS, MT_STAGE_DONE);
	linker_on_done(l, &b_cli, &up, &child);
	req = exchange(100, 1 * MS, MT_STAGE_DONE);
	linker_on_done(l, &b_srv, &req, &b);
	linker_on_done(l, &a_cli, &req, &a);

	assert_memory_equal(b.trace_id, a.trace_id, 16);
	assert_memory_equal(b.parent_span_id, a.span_id, 8);
	assert_memory_equal(child.trace_id, a.trace_id, 16);
	assert_memory_equal(child.parent_span_id, b.span_id, 8);
	linker_stats(l, &st);
	assert_int_equal(st.linked_peer, 1);
	assert_int_equal(st.linked_in_process, 1);
	assert_int_equal(st.unlinked[LINK_PEER_NOT_SEEN] + st.unlinked[LINK_EXTERNAL_CALLER], 0);
	assert_int_equal(held(l), 1); /* B's call, whose server is not seen, waits for expiry */
	linker__free(l);
}

/* A server request that completes before the call it made: kept until that call has its context. */
static void test_server_done_before_its_call(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info in = conn(0x2000, 20, 21, CONN_ROLE_SERVER, 8080, 40000);
	struct conn_info out = conn(0x3000, 20, 21, CONN_ROLE_CLIENT, 41000, 9090);
	struct mt_exchange req = exchange(100, 1 * MS, MT_STAGE_REQUEST);
	struct mt_exchange up = exchange(700, 2 * MS, MT_STAGE_REQUEST);
	struct link_ids srv, child;

	(void)state;
	linker_on_io(l, 21, in.sock);
	linker_on_request(l, &in, &req);
	linker_on_io(l, 21, out.sock);
	linker_on_request(l, &out, &up);
	req = exchange(100, 1 * MS, MT_STAGE_DONE);
	linker_on_done(l, &in, &req, &srv); /* answered before its own call came back */
	assert_int_equal(held(l), 2);
	up = exchange(700, 2 * MS, MT_STAGE_DONE);
	linker_on_done(l, &out, &up, &child);
	assert_memory_equal(child.trace_id, srv.trace_id, 16);
	assert_memory_equal(child.parent_span_id, srv.span_id, 8);
	assert_int_equal(held(l), 1); /* the call waits, as any client of a server not seen */
	linker__free(l);
}

/*
 * A thread with more server requests in flight than its list holds: once the
 * listed ones are answered, one left known only as a count is ambiguous, not
 * "no server context".
 */
static void test_overflowed_thread_is_ambiguous(void **state)
{
	struct linker *l = linker__new(seed);
	struct mt_exchange x;
	struct link_ids ids;
	struct link_stats st;
	unsigned n = LINK_THREAD_INFLIGHT + 1;

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		struct conn_info in = conn(0x2000 + i, 20, 21, CONN_ROLE_SERVER, 8080, 40000 + i);

		x = exchange(100, 1 * MS, MT_STAGE_REQUEST);
		linker_on_request(l, &in, &x);
	}
	for (unsigned i = 0; i < n - 1; i++) { /* the listed ones answered */
		struct conn_info in = conn(0x2000 + i, 20, 21, CONN_ROLE_SERVER, 8080, 40000 + i);

		x = exchange(100, 1 * MS, MT_STAGE_DONE);
		linker_on_done(l, &in, &x, &ids);
	}
	{
		struct conn_info out = conn(0x9000, 20, 21, CONN_ROLE_CLIENT, 41000, 9090);

		x = exchange(5, 2 * MS, MT_STAGE_REQUEST);
		linker_on_request(l, &out, &x);
	}
	linker_stats(l, &st);
	assert_int_equal(st.unlinked[LINK_AMBIGUOUS_THREAD], 1);
	assert_int_equal(st.unlinked[LINK_NO_SERVER_CONTEXT], 0);
	linker__free(l);
}

/*
 * A trace adopted from a W3C traceparent carries that parent's trace-flags to
 * the server's span, to its in-process call, and to the server on this node
 * that call reaches: parent-based sampling follows them alike for all three.
 */
static void test_traceparent_flags_travel(void **state)
{
	static const char *tp[2] = {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
				    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};

	(void)state;
	for (int f = 0; f < 2; f++) {
		struct linker *l = linker__new(seed);
		struct conn_info in = conn(0x2000, 20, 21, CONN_ROLE_SERVER, 8080, 40000);
		struct conn_info out = conn(0x3000, 20, 21, CONN_ROLE_CLIENT, 41000, 9090);
		struct conn_info peer = conn(0x5000, 40, 40, CONN_ROLE_SERVER, 9090, 41000);
		struct conn_info lone = conn(0x4000, 30, 30, CONN_ROLE_CLIENT, 42000, 6379);
		struct mt_exchange x = exchange(100, 1 * MS, MT_STAGE_REQUEST);
		struct link_ids srv, child, far, root;

		in.tuple.raddr[12] = 10; /* the caller is off the node */
		memcpy(x.traceparent, tp[f], strlen(tp[f]) + 1);
		linker_on_io(l, 21, in.sock);
		linker_on_request(l, &in, &x);
		x = exchange(500, 2 * MS, MT_STAGE_REQUEST);
		linker_on_io(l, 21, out.sock);
		linker_on_request(l, &out, &x);
		linker_on_request(l, &peer, &x);
		x = exchange(500, 2 * MS, MT_STAGE_DONE);
		linker_on_done(l, &peer, &x, &far);
		linker_on_done(l, &out, &x, &child);
		x = exchange(100, 1 * MS, MT_STAGE_DONE);
		memcpy(x.traceparent, tp[f], strlen(tp[f]) + 1);
		linker_on_done(l, &in, &x, &srv);

		assert_memory_equal(srv.trace_id, "\x0a\xf7\x65\x19", 4);
		assert_memory_equal(child.trace_id, srv.trace_id, 16);
		assert_memory_equal(far.trace_id, srv.trace_id, 16);
		assert_memory_equal(far.parent_span_id, child.span_id, 8);
		assert_true(srv.remote && child.remote && far.remote);
		assert_int_equal(srv.trace_flags, f);
		assert_int_equal(child.trace_flags, f);
		assert_int_equal(far.trace_flags, f);
		/* Only the server span that adopted the traceparent ends the local trace. */
		assert_true(srv.local_root);
		assert_false(child.local_root || far.local_root);

		/* A trace begun on this node has no remote parent. */
		x = exchange(900, 3 * MS, MT_STAGE_REQUEST);
		linker_on_io(l, 30, lone.sock);
		linker_on_request(l, &lone, &x);
		x = exchange(900, 3 * MS, MT_STAGE_DONE);
		linker_on_done(l, &lone, &x, &root);
		assert_false(root.remote);
		assert_int_equal(root.trace_flags, 0);
		assert_true(root.local_root);
		linker__free(l);
	}
}

/*
 * The thread table reports its fill and evictions: each new thread either takes an empty slot
 * or replaces the least recently used one in its window, counted; a known one changes neither.
 */
static void test_thread_table_fill_and_evictions(void **state)
{
	struct linker *l = linker__new(seed);
	const uint32_t n = LINK_THREADS_MAX + LINK_THREADS_MAX / 2;
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	linker_on_io(l, 1, 0x1000);
	linker_on_io(l, 1, 0x1001);
	linker_stats(l, &st);
	assert_int_equal(st.threads, 1);
	assert_int_equal(st.owners_evicted, 0);
	for (uint32_t tid = 2; tid <= n; tid++)
		linker_on_io(l, tid, 0x1000 + tid);
	linker_stats(l, &st);
	assert_true(st.threads <= LINK_THREADS_MAX);
	assert_true(st.owners_evicted > 0);
	assert_int_equal(st.threads + st.owners_evicted, n);
	assert_int_equal(st.processes, 0);
	assert_int_equal(st.ties, 0);
	linker__free(l);
}

/*
 * Short-lived processes (a client per request, as in the soak) leave no entries behind: a
 * process's entry and its main thread's go at its exit, and a later process whose id lands
 * in the same window finds its own, not a gone one's. Another thread of the process stays
 * (the exit event names the process only) until the LRU takes it.
 */
static void test_process_exit_frees_its_entries(void **state)
{
	struct linker *l = linker__new(seed);
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	for (uint32_t pid = 100; pid < 100 + 3 * LINK_THREADS_MAX; pid++) {
		struct conn_info s = conn(0x9000 + pid, pid, pid, CONN_ROLE_SERVER, 80, 40000);
		struct mt_exchange x = exchange(pid * 16, pid, MT_STAGE_REQUEST);
		struct link_ids ids;

		linker_on_io(l, pid, s.sock);
		linker_on_request(l, &s, &x);
		x = exchange(pid * 16, pid, MT_STAGE_DONE);
		linker_on_done(l, &s, &x, &ids);
		linker_forget_process(l, pid);
	}
	linker_stats(l, &st);
	assert_int_equal(st.threads, 0);
	assert_int_equal(st.processes, 0);
	assert_int_equal(st.owners_evicted, 0);
	assert_int_equal(st.requests, 0);

	/* Two threads of process 7: the main thread's entry goes at exit, the other stays. */
	linker_on_io(l, 7, 0x7000);
	linker_on_io(l, 8, 0x7001);
	linker_forget_process(l, 7);
	linker_forget_process(l, 7); /* a second exit event: nothing left to free */
	linker_stats(l, &st);
	assert_int_equal(st.threads, 1);
	/* The entry left is still found: no duplicate made for thread 8. */
	linker_on_io(l, 8, 0x7002);
	linker_stats(l, &st);
	assert_int_equal(st.threads, 1);
	linker__free(l);
}

/*
 * An SDK-instrumented server (process 20) called by nginx (process 10) on
 * this node: its call out carries a traceparent it did not receive, so its
 * SDK reports both its sides; the agent reports neither, learns the process,
 * and hangs its calls without traceparent under the nearest reported span.
 */
static void sdk_request(struct linker *l, uint32_t seq, const char *in_tp, const char *out_tp,
			struct link_ids *ngx, struct link_ids *srv, struct link_ids *call)
{
	struct conn_info nc = conn(0x1000, 10, 10, CONN_ROLE_CLIENT, 40000, 8080);
	struct conn_info in = conn(0x2000, 20, 20, CONN_ROLE_SERVER, 8080, 40000);
	struct conn_info out = conn(0x3000, 20, 20, CONN_ROLE_CLIENT, 41000, 6379);
	struct mt_exchange x = exchange(seq, seq * MS, MT_STAGE_REQUEST);
	struct mt_exchange y = exchange(seq + 5000, seq * MS + 1, MT_STAGE_REQUEST);

	/* nginx forwards what it received; here it received nothing: only the server sees it. */
	linker_on_request(l, &nc, &x);
	memcpy(x.traceparent, in_tp, strlen(in_tp) + 1);
	memcpy(y.traceparent, out_tp, strlen(out_tp) + 1);
	linker_on_io(l, 20, in.sock);
	linker_on_request(l, &in, &x);
	linker_on_io(l, 20, out.sock);
	linker_on_request(l, &out, &y);
	y.stage = MT_STAGE_DONE;
	y.resp_end_ns = y.req_start_ns + MS;
	linker_on_done(l, &out, &y, call);
	x.stage = MT_STAGE_DONE;
	x.resp_end_ns = x.req_start_ns + 2 * MS;
	linker_on_done(l, &in, &x, srv);
	x.traceparent[0] = '\0';
	linker_on_done(l, &nc, &x, ngx);
}

static void test_instrumented_server_is_learned(void **state)
{
	static const char tp_in[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	static const char tp_sdk[] = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
	static const char tp_other[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct linker *l = linker__new(seed);
	struct link_ids ngx, srv, call;
	struct link_stats st;

	(void)state;
	/* The same trace, another parent: an SDK span in between. Learned on the first request. */
	sdk_request(l, 100, tp_in, tp_sdk, &ngx, &srv, &call);
	assert_true(ngx.emit);
	assert_false(srv.emit);
	assert_false(call.emit);
	linker_stats(l, &st);
	assert_int_equal(st.learned_continued, 1);
	assert_int_equal(st.skipped_instrumented_server, 1);
	assert_int_equal(st.instrumented_procs, 1);

	/* Known now: a request without traceparent and a call without one. */
	sdk_request(l, 200, "", "", &ngx, &srv, &call);
	assert_false(srv.emit);
	assert_true(call.emit);
	/* The call hangs under nginx's client span, the nearest one anybody reports. */
	assert_memory_equal(call.trace_id, ngx.trace_id, 16);
	assert_memory_equal(call.parent_span_id, ngx.span_id, 8);
	linker_stats(l, &st);
	assert_int_equal(st.skipped_instrumented_server, 2);

	/* Gone (exit or exec): reported again. */
	linker_forget_process(l, 20);
	sdk_request(l, 300, "", "", &ngx, &srv, &call);
	assert_true(srv.emit && call.emit);
	assert_memory_equal(srv.parent_span_id, ngx.span_id, 8);
	assert_memory_equal(call.parent_span_id, srv.span_id, 8);

	/* Another trace than the one that came in tells nothing. */
	sdk_request(l, 400, tp_in, tp_other, &ngx, &srv, &call);
	assert_true(srv.emit);
	assert_false(call.emit);
	/* A header forwarded unchanged is not the process's own. */
	sdk_request(l, 500, tp_in, tp_in, &ngx, &srv, &call);
	assert_true(srv.emit && call.emit);
	linker_stats(l, &st);
	assert_int_equal(st.instrumented_procs, 0);
	assert_int_equal(st.skipped_instrumented_server, 2);

	/* A trace begun where none came in: learned too. */
	sdk_request(l, 600, "", tp_sdk, &ngx, &srv, &call);
	assert_false(srv.emit || call.emit);
	linker_stats(l, &st);
	assert_int_equal(st.learned_new_trace, 1);
	assert_int_equal(st.instrumented_procs, 1);
	/* Only the calls to 6379, which a server of this node could still read, are held. */
	assert_int_equal(held(l), 6);
	linker_expire(l, 2000 * MS);
	assert_int_equal(held(l), 0);
	linker__free(l);
}

/* A kernel context (--propagate), as the ring buffer hands it over. */
static void xctx(struct linker *l, uint64_t sock, uint32_t seq, uint8_t dir, uint8_t flags,
		 uint8_t trace_byte, uint8_t span_byte)
{
	struct mt_xctx_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.head.kind = MT_EV_XCTX;
	ev.head.sock = sock;
	ev.seq = seq;
	ev.dir = dir;
	ev.flags = flags;
	memset(ev.trace_id, trace_byte, 16);
	memset(ev.span_id, span_byte, 8);
	linker_on_xctx(l, &ev);
}

/*
 * --propagate: a server request whose first segment carried an option takes
 * its trace and parent; the call it makes takes the span id the kernel put in
 * that call's own option, and the server request's trace. A call whose option
 * named another trace than its in-process parent's is counted.
 */
static void test_option_context_adopted(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info in = conn(0x2000, 20, 21, CONN_ROLE_SERVER, 8080, 40000);
	struct conn_info out = conn(0x3000, 20, 21, CONN_ROLE_CLIENT, 41000, 8081);
	struct mt_exchange x = exchange(100, 1 * MS, MT_STAGE_REQUEST);
	uint8_t t[16], sp[8], k[8];
	struct link_ids srv, cli;
	struct link_stats st;

	(void)state;
	memset(t, 0xaa, 16);
	memset(sp, 0xbb, 8);
	memset(k, 0xcc, 8);
	xctx(l, in.sock, 100, MT_DIR_INGRESS, MT_XCTX_F_REMOTE, 0xaa, 0xbb);
	linker_on_io(l, 21, in.sock);
	linker_on_request(l, &in, &x);
	xctx(l, out.sock, 500, MT_DIR_EGRESS, MT_XCTX_F_THREAD, 0xaa, 0xcc);
	x = exchange(500, 2 * MS, MT_STAGE_REQUEST);
	linker_on_io(l, 21, out.sock);
	linker_on_request(l, &out, &x);
	x = exchange(500, 2 * MS, MT_STAGE_DONE);
	linker_on_done(l, &out, &x, &cli);
	x = exchange(100, 1 * MS, MT_STAGE_DONE);
	linker_on_done(l, &in, &x, &srv);
	assert_memory_equal(srv.trace_id, t, 16);
	assert_memory_equal(srv.parent_span_id, sp, 8);
	/* The option has no trace-flags: sampled on its id, as the sending node did. */
	assert_false(srv.remote);
	assert_true(srv.local_root);
	assert_false(cli.local_root);
	assert_memory_equal(cli.trace_id, t, 16);
	assert_memory_equal(cli.span_id, k, 8);
	assert_memory_equal(cli.parent_span_id, srv.span_id, 8);

	/*
	 * The next request on the same thread, after the answer (the kernel bounds
	 * the option's burst there); its call's option carried a stale trace.
	 */
	xctx(l, in.sock, 150, MT_DIR_INGRESS, MT_XCTX_F_BOUND, 0, 0);
	x = exchange(200, 3 * MS, MT_STAGE_REQUEST);
	linker_on_io(l, 21, in.sock);
	linker_on_request(l, &in, &x);
	xctx(l, out.sock, 600, MT_DIR_EGRESS, MT_XCTX_F_THREAD, 0xaa, 0xdd);
	x = exchange(600, 4 * MS, MT_STAGE_REQUEST);
	linker_on_io(l, 21, out.sock);
	linker_on_request(l, &out, &x);
	x = exchange(600, 4 * MS, MT_STAGE_DONE);
	linker_on_done(l, &out, &x, &cli);
	x = exchange(200, 3 * MS, MT_STAGE_DONE);
	linker_on_done(l, &in, &x, &srv);
	assert_memory_equal(cli.trace_id, srv.trace_id, 16);

	linker_stats(l, &st);
	assert_int_equal(st.linked_option, 1);
	assert_int_equal(st.option_mismatch, 1);
	linker__free(l);
}

/* @a.b.c.d:@lport <-> @ra:@rport, v4-mapped (addresses as uint32 a << 24 | ...). */
static struct conn_info conn4(uint64_t sock, uint32_t pid, uint8_t role, uint32_t laddr,
			      uint16_t lport, uint32_t raddr, uint16_t rport)
{
	struct conn_info ci = conn(sock, pid, pid, role, lport, rport);

	for (int i = 0; i < 4; i++) {
		ci.tuple.laddr[12 + i] = (uint8_t)(laddr >> (24 - 8 * i));
		ci.tuple.raddr[12 + i] = (uint8_t)(raddr >> (24 - 8 * i));
	}
	return ci;
}

#define CLIENT_IP 0x0AC80001u /* 10.200.0.1 */
#define SERVER_IP 0x0AC80002u /* 10.200.0.2 */
#define VIP	  0x0A60000Au /* 10.96.0.10 */

/*
 * A client dials VIP:80, translated (DNAT) to SERVER_IP:8080 on this node: the
 * server sees the client's own address and port. Paired in either completion
 * order, both sides told the VIP and the real server, nothing held after.
 */
static void test_dnat_call_paired(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info c = conn4(0x1000, 10, CONN_ROLE_CLIENT, CLIENT_IP, 40000, VIP, 80);
	struct conn_info s = conn4(0x2000, 20, CONN_ROLE_SERVER, SERVER_IP, 8080, CLIENT_IP, 40000);
	struct link_ids cli, srv;
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	for (uint32_t i = 0; i < 8; i++) {
		pair_one(l, &c, &s, 5000 + 100 * i, i * MS, i % 4 < 2, i % 2, &cli, &srv);
		assert_memory_equal(srv.trace_id, cli.trace_id, 16);
		assert_memory_equal(srv.parent_span_id, cli.span_id, 8);
		for (int k = 0; k < 2; k++) {
			const struct link_nat *n = k ? &srv.nat : &cli.nat;

			assert_true(n->paired);
			assert_memory_equal(n->vip, c.tuple.raddr, 16);
			assert_int_equal(n->vip_port, 80);
			assert_memory_equal(n->server, s.tuple.laddr, 16);
			assert_int_equal(n->server_port, 8080);
		}
		assert_int_equal(held(l), 0);
	}
	linker_stats(l, &st);
	assert_int_equal(st.linked_dnat, 8);
	assert_int_equal(st.linked_peer, 8);
	assert_int_equal(st.dnat_ambiguous, 0);
	/* A direct call is not taken for a translated one. */
	one_call(l, 9000, 100 * MS, false, &cli, &srv);
	assert_false(cli.nat.paired || srv.nat.paired);
	assert_memory_equal(srv.parent_span_id, cli.span_id, 8);
	linker_stats(l, &st);
	assert_int_equal(st.linked_dnat, 8);
	linker__free(l);
}

/*
 * TLS: the server's first request was decrypted inside the handshake (Go reads
 * it with the Finished record), so its plaintext came with no sequence number
 * (0): paired with the one client request of its flow not yet taken. With two
 * in flight on the flow (pipelined), not guessed. A plaintext request at seq 0
 * is not taken for one.
 */
static void test_tls_unsequenced_read_paired_by_flow(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info c = conn(0x1000, 10, 10, CONN_ROLE_CLIENT, 40000, 8443);
	struct conn_info s = conn(0x2000, 20, 20, CONN_ROLE_SERVER, 8443, 40000);
	struct mt_exchange cx = exchange(777000, 0, MT_STAGE_REQUEST);
	struct mt_exchange sx = exchange(0, 0, MT_STAGE_REQUEST);
	struct link_ids cli, srv;
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	c.tls = s.tls = 1;
	linker_on_request(l, &c, &cx);
	linker_on_request(l, &s, &sx);
	sx = exchange(0, 0, MT_STAGE_DONE);
	linker_on_done(l, &s, &sx, &srv);
	cx = exchange(777000, 0, MT_STAGE_DONE);
	linker_on_done(l, &c, &cx, &cli);
	assert_memory_equal(srv.trace_id, cli.trace_id, 16);
	assert_memory_equal(srv.parent_span_id, cli.span_id, 8);
	linker_stats(l, &st);
	assert_int_equal(st.linked_tls_unsequenced, 1);
	assert_int_equal(st.linked_peer, 1);
	assert_int_equal(held(l), 0);

	/* Two client requests in flight on the flow: which one is unknown. */
	c.sock = 0x3000;
	s.sock = 0x4000;
	c.tuple.lport = s.tuple.rport = 40001;
	cx = exchange(888000, MS, MT_STAGE_REQUEST);
	linker_on_request(l, &c, &cx);
	cx = exchange(888100, MS, MT_STAGE_REQUEST);
	linker_on_request(l, &c, &cx);
	sx = exchange(0, MS, MT_STAGE_REQUEST);
	linker_on_request(l, &s, &sx);
	sx = exchange(0, MS, MT_STAGE_DONE);
	linker_on_done(l, &s, &sx, &srv);
	linker_stats(l, &st);
	assert_int_equal(st.linked_tls_unsequenced, 1);
	assert_int_equal(st.linked_peer, 1);

	/* Plaintext at seq 0 is a position like any other: no pairing by flow. */
	c.sock = 0x5000;
	s.sock = 0x6000;
	c.tls = s.tls = 0;
	c.tuple.lport = s.tuple.rport = 40002;
	cx = exchange(999000, 2 * MS, MT_STAGE_REQUEST);
	linker_on_request(l, &c, &cx);
	sx = exchange(0, 2 * MS, MT_STAGE_REQUEST);
	linker_on_request(l, &s, &sx);
	sx = exchange(0, 2 * MS, MT_STAGE_DONE);
	linker_on_done(l, &s, &sx, &srv);
	linker_stats(l, &st);
	assert_int_equal(st.linked_tls_unsequenced, 1);
	assert_int_equal(st.linked_peer, 1);
	linker__free(l);
}

/*
 * Two calls from one client address and port at one sequence number toward
 * two VIPs (connect() reuses a port toward other destinations): the server
 * cannot tell which was its own; counted, not paired. And a server whose
 * caller was translated at the source too (SNAT) sees another address: no
 * pairing, counted.
 */
static void test_dnat_ambiguous_and_snat(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info c1 = conn4(0x1000, 10, CONN_ROLE_CLIENT, CLIENT_IP, 40000, VIP, 80);
	struct conn_info c2 = conn4(0x1001, 11, CONN_ROLE_CLIENT, CLIENT_IP, 40000, VIP, 81);
	struct conn_info s = conn4(0x2000, 20, CONN_ROLE_SERVER, SERVER_IP, 8080, CLIENT_IP, 40000);
	struct conn_info sn =
		conn4(0x2001, 20, CONN_ROLE_SERVER, SERVER_IP, 8080, 0x0AC800FEu, 61000);
	struct mt_exchange x = exchange(7000, 0, MT_STAGE_REQUEST);
	struct link_ids a, b, srv;
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	linker_on_request(l, &c1, &x);
	linker_on_request(l, &c2, &x);
	linker_on_request(l, &s, &x);
	x = exchange(7000, 0, MT_STAGE_DONE);
	linker_on_done(l, &s, &x, &srv);
	assert_false(srv.nat.paired);
	linker_stats(l, &st);
	assert_int_equal(st.dnat_ambiguous, 1);
	assert_int_equal(st.linked_dnat, 0);
	linker_on_done(l, &c1, &x, &a);
	linker_on_done(l, &c2, &x, &b);
	assert_false(a.nat.paired || b.nat.paired);

	x = exchange(8000, MS, MT_STAGE_REQUEST);
	linker_on_request(l, &c1, &x);
	linker_on_request(l, &sn, &x);
	x = exchange(8000, MS, MT_STAGE_DONE);
	linker_on_done(l, &sn, &x, &srv);
	linker_on_done(l, &c1, &x, &a);
	assert_false(srv.nat.paired || a.nat.paired);
	assert_memory_not_equal(srv.trace_id, a.trace_id, 16);
	linker_stats(l, &st);
	assert_int_equal(st.dnat_snat_unpaired, 1);
	assert_int_equal(st.linked_dnat, 0);
	linker__free(l);
}

/*
 * conntrack gives a call another source port when its own is still taken in
 * its table by an earlier translated call (port 40000 dialled the VIP, then
 * the server directly): the server sees 39445, the client's socket keeps
 * 40000. The sequence number pairs them, directly (no VIP told) or through the
 * VIP, in either completion order; a request of the server at another position
 * is not taken for it.
 */
static void test_port_remapped_call_paired(void **state)
{
	struct linker *l = linker__new(seed);
	struct conn_info direct =
		conn4(0x1000, 10, CONN_ROLE_CLIENT, CLIENT_IP, 40000, SERVER_IP, 8080);
	struct conn_info vip = conn4(0x1001, 10, CONN_ROLE_CLIENT, CLIENT_IP, 40002, VIP, 80);
	struct conn_info s = conn4(0x2000, 20, CONN_ROLE_SERVER, SERVER_IP, 8080, CLIENT_IP, 39445);
	struct mt_exchange x;
	struct link_ids cli, srv;
	struct link_stats st;

	(void)state;
	assert_non_null(l);
	for (uint32_t i = 0; i < 4; i++) {
		pair_one(l, i < 2 ? &direct : &vip, &s, 9000 + 100 * i, i * MS, true, i % 2, &cli,
			 &srv);
		assert_memory_equal(srv.trace_id, cli.trace_id, 16);
		assert_memory_equal(srv.parent_span_id, cli.span_id, 8);
		assert_int_equal(srv.nat.paired, i >= 2);
		assert_int_equal(cli.nat.paired, i >= 2);
		if (i >= 2)
			assert_int_equal(cli.nat.server_port, 8080);
		/* The server span learns the client's own port; the client's is its own. */
		assert_int_equal(srv.nat.client_port, i < 2 ? 40000 : 40002);
		assert_int_equal(cli.nat.client_port, 0);
		assert_int_equal(held(l), 0);
	}
	linker_stats(l, &st);
	assert_int_equal(st.linked_port_remapped, 4);
	assert_int_equal(st.linked_dnat, 2);
	assert_int_equal(st.linked_peer, 4);

	/* Another position: unpaired, the client kept for a server that may still come. */
	x = exchange(20000, 10 * MS, MT_STAGE_REQUEST);
	linker_on_request(l, &direct, &x);
	x = exchange(20100, 10 * MS, MT_STAGE_REQUEST);
	linker_on_request(l, &s, &x);
	x = exchange(20100, 10 * MS, MT_STAGE_DONE);
	linker_on_done(l, &s, &x, &srv);
	x = exchange(20000, 10 * MS, MT_STAGE_DONE);
	linker_on_done(l, &direct, &x, &cli);
	assert_memory_not_equal(srv.trace_id, cli.trace_id, 16);
	linker_stats(l, &st);
	assert_int_equal(st.linked_port_remapped, 4);
	linker__free(l);
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/*
 * What the translated-call lookup costs, printed (never asserted: this VM's
 * speed drifts): ns per call, both sides' request and done, for a direct
 * call on this node, a call through a VIP, and a client whose server is on
 * another node (its done looks for a translated server and finds none).
 */
static void test_dnat_cost(void **state)
{
	enum { CALLS = 100000, ROUNDS = 5 };
	struct linker *l = linker__new(seed);
	struct conn_info c = conn4(0x1000, 10, CONN_ROLE_CLIENT, CLIENT_IP, 40000, VIP, 80);
	struct conn_info s = conn4(0x2000, 20, CONN_ROLE_SERVER, SERVER_IP, 8080, CLIENT_IP, 40000);
	struct conn_info d = conn4(0x1001, 10, CONN_ROLE_CLIENT, CLIENT_IP, 40001, SERVER_IP, 8080);
	struct conn_info ds =
		conn4(0x2001, 20, CONN_ROLE_SERVER, SERVER_IP, 8080, CLIENT_IP, 40001);
	double best[3] = {1e18, 1e18, 1e18};
	struct link_ids a, b;
	struct link_stats st;
	uint32_t seq = 0;

	(void)state;
	assert_non_null(l);
	/* The best of alternated rounds: other work on the machine only adds. */
	for (int round = 0; round < ROUNDS; round++) {
		for (int kind = 0; kind < 3; kind++) {
			const struct conn_info *cli = kind == 0 ? &d : &c,
					       *srv = kind == 0 ? &ds : &s;
			double t0 = now_ns(), ns;

			for (uint32_t i = 0; i < CALLS; i++) {
				struct mt_exchange x = exchange(seq += 1000, i, MT_STAGE_REQUEST);

				linker_on_request(l, cli, &x);
				if (kind < 2)
					linker_on_request(l, srv, &x);
				x.stage = MT_STAGE_DONE;
				if (kind < 2)
					linker_on_done(l, srv, &x, &b);
				linker_on_done(l, cli, &x, &a);
				if (kind == 2 && i % 1024 == 0)
					linker_expire(l, (uint64_t)i + 200 * MS);
			}
			linker_expire(l, UINT64_MAX / 2);
			ns = (now_ns() - t0) / CALLS;
			if (ns < best[kind])
				best[kind] = ns;
		}
	}
	linker_stats(l, &st);
	printf("linker: %.0f ns per direct call on this node, %.0f ns through a VIP (DNAT), "
	       "%.0f ns per client call to another node (best of %d rounds)\n",
	       best[0], best[1], best[2], ROUNDS);
	assert_int_equal(st.linked_dnat, (uint64_t)CALLS * ROUNDS);
	linker__free(l);
}

/* One request on @ci at @seq, begun and done: its ids into @out. */
static void one_request(struct linker *l, const struct conn_info *ci, uint32_t seq,
			struct link_ids *out)
{
	struct mt_exchange x = exchange(seq, 1 * MS, MT_STAGE_REQUEST);

	linker_on_io(l, ci->tid, ci->sock);
	linker_on_request(l, ci, &x);
	x = exchange(seq, 1 * MS, MT_STAGE_DONE);
	linker_on_done(l, ci, &x, out);
}

/*
 * --propagate, pipelining: a burst of three requests carries one option; both
 * ends derive the later requests' ids from it and their offsets, so each
 * server span has its own client span as parent. A shared-trace burst stops
 * deriving at the receiver's bound (what had arrived when it answered).
 */
static void test_pipelined_burst_derived(void **state)
{
	struct linker *lc = linker__new(seed), *ls = linker__new(seed);
	struct conn_info c = conn(0x4000, 30, 31, CONN_ROLE_CLIENT, 42000, 8080);
	struct conn_info sv = conn(0x5000, 40, 41, CONN_ROLE_SERVER, 8080, 42000);
	struct conn_info sh = conn(0x6000, 40, 41, CONN_ROLE_SERVER, 8080, 42001);
	static const uint32_t seqs[3] = {1000, 1040, 1081};
	struct link_ids cli[3], srv[3], ids;
	uint8_t t[16], sp[8];
	struct link_stats st;

	(void)state;
	xctx(lc, c.sock, 1000, MT_DIR_EGRESS, MT_XCTX_F_ROOTS, 0x11, 0x22);
	for (int i = 0; i < 3; i++)
		one_request(lc, &c, seqs[i], &cli[i]);
	xctx(ls, sv.sock, 1000, MT_DIR_INGRESS, MT_XCTX_F_REMOTE | MT_XCTX_F_ROOTS, 0x11, 0x22);
	for (int i = 0; i < 3; i++)
		one_request(ls, &sv, seqs[i], &srv[i]);
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(srv[i].trace_id, cli[i].trace_id, 16);
		assert_memory_equal(srv[i].parent_span_id, cli[i].span_id, 8);
	}
	memset(t, 0x11, 16);
	memset(sp, 0x22, 8);
	mt_xopt_derive(t, sp, 40, 1);
	assert_memory_equal(cli[1].trace_id, t, 16);
	assert_memory_equal(cli[1].span_id, sp, 8);
	assert_memory_not_equal(cli[1].trace_id, cli[2].trace_id, 16);
	assert_int_equal(sp[0] & MT_XOPT_ROOTS, 0);

	/* Shared trace: 2020 arrived before the answer (bound 2040), 2040 after. */
	xctx(ls, sh.sock, 2000, MT_DIR_INGRESS, MT_XCTX_F_REMOTE, 0x33, 0x44);
	one_request(ls, &sh, 2000, &ids);
	xctx(ls, sh.sock, 2040, MT_DIR_INGRESS, MT_XCTX_F_BOUND, 0, 0);
	one_request(ls, &sh, 2020, &ids);
	memset(t, 0x33, 16);
	assert_memory_equal(ids.trace_id, t, 16);
	memset(sp, 0x44, 8);
	mt_xopt_derive(t, sp, 20, 0);
	assert_memory_equal(ids.parent_span_id, sp, 8);
	one_request(ls, &sh, 2040, &ids);
	assert_memory_not_equal(ids.trace_id, t, 16);

	linker_stats(ls, &st);
	assert_int_equal(st.option_derived, 3);
	assert_int_equal(st.option_past_bound, 1);
	linker_stats(lc, &st);
	assert_int_equal(st.option_derived, 2);
	linker__free(lc);
	linker__free(ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_call_either_order),
		cmocka_unit_test(test_remote_server_client_waits_for_expiry),
		cmocka_unit_test(test_in_process_child_and_root),
		cmocka_unit_test(test_sender_seen_after_receiver_called_out),
		cmocka_unit_test(test_server_done_before_its_call),
		cmocka_unit_test(test_overflowed_thread_is_ambiguous),
		cmocka_unit_test(test_traceparent_flags_travel),
		cmocka_unit_test(test_thread_table_fill_and_evictions),
		cmocka_unit_test(test_process_exit_frees_its_entries),
		cmocka_unit_test(test_instrumented_server_is_learned),
		cmocka_unit_test(test_option_context_adopted),
		cmocka_unit_test(test_dnat_call_paired),
		cmocka_unit_test(test_dnat_ambiguous_and_snat),
		cmocka_unit_test(test_port_remapped_call_paired),
		cmocka_unit_test(test_tls_unsequenced_read_paired_by_flow),
		cmocka_unit_test(test_dnat_cost),
		cmocka_unit_test(test_pipelined_burst_derived),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
