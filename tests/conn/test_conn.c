// SPDX-License-Identifier: Apache-2.0
/*
 * The connection table on synthetic capture events, no root needed: the
 * protocol is detected from a message start and the role inferred from which
 * side sent it (or taken from connect/accept), wrong-side and unknown bytes
 * leave a connection at TCP level after CONN_DETECT_TRIES (muted when its role
 * is known), a full table evicts the least recently active record and an idle
 * one expires, parser state stays within CONN_PARSER_MEMORY_MAX and is given
 * back by quiet connections between messages, lost events restart the parser
 * (pending requests aborted), and an end of connection flushes what the
 * parser holds. TLS: a connection opening with a TLS record is reported once
 * and muted, its ciphertext never parsed, its library plaintext parsed, and it
 * is counted as uncovered when it closes without any. The parsers are the
 * real ones (HTTP/1 here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/conn/conn.h"

#define MS	  1000000ull
#define S	  1000000000ull
#define SOCKS_MAX 16384 /* sockets a test may use: 0..SOCKS_MAX-1 */

static const char get_req[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
static const char ok_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

struct seen {
	unsigned done;	  /* MT_STAGE_DONE exchanges */
	unsigned aborted; /* ... with MT_X_ABORTED */
	unsigned no_resp; /* ... with MT_X_NO_RESPONSE */
	struct conn_info ci;
	struct mt_exchange x;
	unsigned mutes;
	uint64_t muted_sock;
	struct mt_tuple muted_tuple;
	unsigned connects;
	unsigned skips; /* skip hints given */
	uint64_t skip_sock;
	struct mt_skip skip; /* the last one */
	unsigned tls_reports;
	uint32_t tls_pid;
};

struct fixture {
	struct conn_table *t;
	struct seen seen;
	uint32_t seq[SOCKS_MAX][2]; /* per socket and direction: the next TCP sequence number */
};

static void on_exchange(void *ctx, const struct conn_info *ci, const struct mt_exchange *x)
{
	struct seen *s = ctx;

	if (x->stage != MT_STAGE_DONE)
		return;
	s->done++;
	if (x->flags & MT_X_ABORTED)
		s->aborted++;
	if (x->flags & MT_X_NO_RESPONSE)
		s->no_resp++;
	s->ci = *ci;
	s->x = *x;
}

static void on_mute(void *ctx, uint64_t sock, const struct mt_tuple *tuple)
{
	struct seen *s = ctx;

	s->mutes++;
	s->muted_sock = sock;
	s->muted_tuple = *tuple;
}

static void on_io(void *ctx, uint32_t tid, uint32_t pid, uint64_t sock, bool connect)
{
	struct seen *s = ctx;

	(void)tid;
	(void)pid;
	(void)sock;
	if (connect)
		s->connects++;
}

static int on_skip(void *ctx, uint64_t sock, const struct mt_skip *hint)
{
	struct seen *s = ctx;

	s->skips++;
	s->skip_sock = sock;
	s->skip = *hint;
	return 0;
}

static void on_tls(void *ctx, uint32_t pid, uint64_t sock)
{
	struct seen *s = ctx;

	(void)sock;
	s->tls_reports++;
	s->tls_pid = pid;
}

static struct fixture *fixture_new(uint32_t max_conns, uint64_t idle_ns)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->t = conn_table__new(max_conns, idle_ns, on_exchange, &f->seen);
	assert_non_null(f->t);
	conn_table_set_mute_fn(f->t, on_mute);
	conn_table_set_io_fn(f->t, on_io);
	conn_table_set_skip_fn(f->t, on_skip);
	conn_table_set_tls_fn(f->t, on_tls);
	return f;
}

static void fixture_free(struct fixture *f)
{
	conn_table__free(f->t);
	free(f);
}

static struct conn_stats stats(const struct fixture *f)
{
	struct conn_stats st;

	conn_table_stats(f->t, &st);
	return st;
}

/* Cache-line aligned, as struct sock addresses are. */
static uint64_t sock_of(unsigned n)
{
	return 0xffff888100000000ull + (uint64_t)n * 0x940;
}

/* @len bytes of @payload moved on socket @n in direction @dir at @ts. */
/* @payload, all captured, on socket @n's local port @lport (0: reported after its close). */
static void data_on_port(struct fixture *f, unsigned n, uint8_t dir, uint64_t ts,
			 const void *payload, size_t len, uint8_t flags, uint16_t lport)
{
	struct mt_data_event *ev = calloc(1, sizeof(*ev) + len);

	assert_non_null(ev);
	assert_true(n < SOCKS_MAX);
	ev->head.kind = MT_EV_DATA;
	ev->head.ts_ns = ts;
	ev->head.sock = sock_of(n);
	ev->pid = 100 + n;
	ev->tid = 200 + n;
	ev->fd = 5;
	ev->bytes = (uint32_t)len;
	ev->captured = (uint16_t)len;
	ev->dir = dir;
	ev->flags = flags;
	ev->seq = f->seq[n][dir];
	f->seq[n][dir] += (uint32_t)len;
	memcpy(ev->comm, "worker", 7);
	ev->tuple.family = 2;
	ev->tuple.lport = lport;
	ev->tuple.rport = (uint16_t)(40000 + n);
	memcpy(ev->data, payload, len);
	conn_table_on_data(f->t, ev);
	free(ev);
}

static void data_bytes(struct fixture *f, unsigned n, uint8_t dir, uint64_t ts, const void *payload,
		       size_t len, uint8_t flags)
{
	data_on_port(f, n, dir, ts, payload, len, flags, 8080);
}

/* A call that moved @bytes, of which @payload (possibly "") was captured. */
static void data_n(struct fixture *f, unsigned n, uint8_t dir, uint64_t ts, const char *payload,
		   uint32_t bytes)
{
	size_t cap = strlen(payload);
	struct mt_data_event *ev = calloc(1, sizeof(*ev) + cap);

	assert_non_null(ev);
	ev->head.kind = MT_EV_DATA;
	ev->head.ts_ns = ts;
	ev->head.sock = sock_of(n);
	ev->bytes = bytes;
	ev->captured = (uint16_t)cap;
	ev->dir = dir;
	ev->seq = f->seq[n][dir];
	f->seq[n][dir] += bytes;
	memcpy(ev->data, payload, cap);
	conn_table_on_data(f->t, ev);
	free(ev);
}

/* What the kernel does for calls inside a skip hint: the bytes pass, no event. */
static void kernel_skips(struct fixture *f, unsigned n, uint8_t dir, uint32_t bytes)
{
	uint32_t off = f->seq[n][dir] - f->seen.skip.start[dir];

	assert_true(off + bytes < f->seen.skip.end[dir] - f->seen.skip.start[dir]);
	f->seq[n][dir] += bytes;
}

static void data(struct fixture *f, unsigned n, uint8_t dir, uint64_t ts, const char *payload,
		 uint8_t flags)
{
	data_bytes(f, n, dir, ts, payload, strlen(payload), flags);
}

static void conn_ev(struct fixture *f, unsigned n, uint8_t op, uint64_t ts)
{
	struct mt_conn_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.head.kind = MT_EV_CONN;
	ev.head.ts_ns = ts;
	ev.head.sock = sock_of(n);
	ev.pid = 100 + n;
	ev.tid = op == MT_CONN_CONNECT ? 200 + n : 0;
	ev.op = op;
	memcpy(ev.comm, "worker", 7);
	ev.tuple.family = 2;
	ev.tuple.lport = (uint16_t)(40000 + n);
	ev.tuple.rport = 8080;
	conn_table_on_conn(f->t, &ev);
}

/* A whole exchange as the server of socket @n sees it. */
static void served(struct fixture *f, unsigned n, uint64_t ts)
{
	data(f, n, MT_DIR_INGRESS, ts, get_req, 0);
	data(f, n, MT_DIR_EGRESS, ts + 1000, ok_resp, 0);
}

static size_t http1_state_size(void)
{
	const struct l7_parser *p = l7_parser_for(MT_PROTO_HTTP1);

	assert_non_null(p);
	return p->state_size;
}

static void test_role_from_first_message(void **state)
{
	struct fixture *f = fixture_new(16, 0);

	(void)state;
	/* First seen mid-life: the side that sent a request start is the client. */
	data(f, 1, MT_DIR_EGRESS, 1 * MS, get_req, 0);
	data(f, 1, MT_DIR_INGRESS, 2 * MS, ok_resp, 0);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_CLIENT);
	assert_int_equal(f->seen.ci.sock, sock_of(1));
	assert_int_equal(f->seen.ci.pid, 101);
	assert_int_equal(f->seen.ci.tid, 201);
	assert_int_equal(f->seen.ci.fd, 5);
	assert_string_equal(f->seen.ci.comm, "worker");
	assert_int_equal(f->seen.x.protocol, MT_PROTO_HTTP1);
	assert_int_equal(f->seen.x.status, 200);
	assert_string_equal(f->seen.x.target, "/a");

	/* The side that received it is the server. */
	served(f, 2, 3 * MS);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_SERVER);
	assert_int_equal(f->seen.ci.sock, sock_of(2));

	/* A response start first (a server's bytes, received): this side is the client. */
	data(f, 3, MT_DIR_INGRESS, 4 * MS, ok_resp, 0);
	data(f, 3, MT_DIR_EGRESS, 5 * MS, get_req, 0);
	data(f, 3, MT_DIR_INGRESS, 6 * MS, ok_resp, 0);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_CLIENT);
	assert_int_equal(f->seen.ci.sock, sock_of(3));

	assert_int_equal(stats(f).opened, 3);
	assert_int_equal(stats(f).active, 3);
	assert_int_equal(stats(f).l7[MT_PROTO_HTTP1].exchanges, 3);
	assert_int_equal(stats(f).parser_bytes, 3 * http1_state_size());
	fixture_free(f);
}

static void test_role_from_connect_and_accept(void **state)
{
	struct fixture *f = fixture_new(16, 0);

	(void)state;
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	served(f, 1, 2 * MS);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_SERVER);
	assert_int_equal(f->seen.connects, 0);

	conn_ev(f, 2, MT_CONN_CONNECT, 3 * MS);
	assert_int_equal(f->seen.connects, 1);
	conn_ev(f, 2, MT_CONN_ESTABLISHED, 4 * MS);
	data(f, 2, MT_DIR_EGRESS, 5 * MS, get_req, 0);
	data(f, 2, MT_DIR_INGRESS, 6 * MS, ok_resp, 0);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_CLIENT);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(stats(f).opened, 2);

	/* A known role and a request from the wrong side: not a message start for us. */
	conn_ev(f, 3, MT_CONN_ACCEPTED, 7 * MS);
	data(f, 3, MT_DIR_EGRESS, 8 * MS, get_req, 0);
	data(f, 3, MT_DIR_INGRESS, 9 * MS, ok_resp, 0);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(stats(f).parser_bytes, 2 * http1_state_size());
	fixture_free(f);
}

static void test_unknown_bytes_give_up_and_mute(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;

	(void)state;
	/* Role known, no protocol: after CONN_DETECT_TRIES chunks, muted in the kernel. */
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	for (unsigned i = 0; i < CONN_DETECT_TRIES - 1; i++)
		data(f, 1, MT_DIR_INGRESS, 2 * MS + i, "\x01\x02 not a protocol", 0);
	assert_int_equal(stats(f).not_parsed, 0);
	assert_int_equal(f->seen.mutes, 0);
	data(f, 1, MT_DIR_INGRESS, 3 * MS, "\x01\x02 not a protocol", 0);
	st = stats(f);
	assert_int_equal(st.not_parsed, 1);
	assert_int_equal(st.muted, 1);
	assert_int_equal(f->seen.mutes, 1);
	assert_int_equal(f->seen.muted_sock, sock_of(1));
	/* Muted with the tuple of the data it saw: the kernel matches the socket's own. */
	assert_int_equal(f->seen.muted_tuple.lport, 8080);
	assert_int_equal(f->seen.muted_tuple.rport, 40001);
	/* Given up: even a request start is not parsed any more. */
	served(f, 1, 4 * MS);
	assert_int_equal(f->seen.done, 0);
	assert_int_equal(stats(f).parser_bytes, 0);

	/* Role unknown: given up too, but not muted (its role may still matter); bytes counted. */
	for (unsigned i = 0; i < CONN_DETECT_TRIES; i++)
		data(f, 2, MT_DIR_EGRESS, 5 * MS + i, "0123456789", 0);
	st = stats(f);
	assert_int_equal(st.not_parsed, 2);
	assert_int_equal(st.muted, 1);
	assert_int_equal(st.role_unknown_bytes, 10 * CONN_DETECT_TRIES);
	fixture_free(f);
}

static void test_full_table_evicts_least_recent(void **state)
{
	struct fixture *f = fixture_new(4, 0);
	struct conn_stats st;

	(void)state;
	for (unsigned n = 1; n <= 4; n++)
		served(f, n, n * MS);
	/* Socket 1 becomes the most recent; socket 2 is now the least recent. */
	data(f, 1, MT_DIR_INGRESS, 10 * MS, get_req, 0);
	served(f, 5, 11 * MS);
	st = stats(f);
	assert_int_equal(st.evicted_full, 1);
	assert_int_equal(st.active, 4);
	assert_int_equal(st.opened, 5);
	/* The eviction ended socket 1's neighbour, not socket 1: its pending request is intact. */
	data(f, 1, MT_DIR_EGRESS, 12 * MS, ok_resp, 0);
	assert_int_equal(f->seen.ci.sock, sock_of(1));
	assert_int_equal(f->seen.x.status, 200);
	assert_int_equal(stats(f).opened, 5);
	/* Socket 2 was the one evicted: it comes back as a new record, evicting socket 3. */
	served(f, 2, 13 * MS);
	st = stats(f);
	assert_int_equal(st.opened, 6);
	assert_int_equal(st.evicted_full, 2);
	served(f, 4, 14 * MS);
	assert_int_equal(stats(f).opened, 6); /* 4 was still there */
	served(f, 3, 15 * MS);
	assert_int_equal(stats(f).opened, 7); /* 3 was not */
	assert_int_equal(stats(f).parser_bytes, 4 * http1_state_size());
	fixture_free(f);
}

static void test_eviction_flushes_pending_request(void **state)
{
	struct fixture *f = fixture_new(2, 0);

	(void)state;
	data(f, 1, MT_DIR_INGRESS, 1 * MS, get_req, 0); /* no response yet */
	served(f, 2, 2 * MS);
	assert_int_equal(f->seen.done, 1);
	served(f, 3, 3 * MS); /* evicts socket 1 */
	assert_int_equal(stats(f).evicted_full, 1);
	/* Socket 1's request came out, without a response, before socket 3's exchange. */
	assert_int_equal(f->seen.done, 3);
	assert_int_equal(f->seen.no_resp, 1);
	fixture_free(f);
}

static void test_idle_records_expire(void **state)
{
	struct fixture *f = fixture_new(16, 1 * S);
	struct conn_stats st;

	(void)state;
	served(f, 1, 1 * MS); /* last active 1 ms + 1 us */
	served(f, 2, 2 * MS);
	served(f, 3, 900 * MS);
	conn_table_expire(f->t, 1 * S + 2 * MS); /* only socket 1 is idle for longer than 1 s */
	st = stats(f);
	assert_int_equal(st.evicted_idle, 1);
	assert_int_equal(st.active, 2);
	conn_table_expire(f->t, 1 * S + 500 * MS);
	st = stats(f);
	assert_int_equal(st.evicted_idle, 2);
	assert_int_equal(st.active, 1);
	/* Socket 3 stays while it is used. */
	served(f, 3, 1800 * MS);
	conn_table_expire(f->t, 2 * S + 500 * MS);
	assert_int_equal(stats(f).active, 1);
	conn_table_expire(f->t, 3 * S);
	assert_int_equal(stats(f).active, 0);
	assert_int_equal(stats(f).evicted_idle, 3);
	assert_int_equal(stats(f).parser_bytes, 0);
	fixture_free(f);
}

static void test_quiet_connection_releases_parser_state(void **state)
{
	struct fixture *f = fixture_new(16, 600 * S);
	size_t sz = http1_state_size();
	struct conn_stats st;

	(void)state;
	served(f, 1, 1 * MS);				/* between messages */
	data(f, 2, MT_DIR_INGRESS, 1 * MS, get_req, 0); /* mid-exchange */
	assert_int_equal(stats(f).parser_bytes, 2 * sz);
	conn_table_expire(f->t, 1 * MS + CONN_PARSER_IDLE_NS / 2);
	assert_int_equal(stats(f).parser_released, 0);
	conn_table_expire(f->t, 2 * MS + CONN_PARSER_IDLE_NS);
	st = stats(f);
	assert_int_equal(st.parser_released, 1);
	assert_int_equal(st.parser_bytes, sz); /* the busy one keeps its state */
	assert_int_equal(st.active, 2);	       /* both records stay */
	/* The released one detects again at its next message. */
	served(f, 1, 3 * S);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(f->seen.ci.sock, sock_of(1));
	assert_int_equal(stats(f).parser_bytes, 2 * sz);
	/* And the busy one still pairs its response. */
	data(f, 2, MT_DIR_EGRESS, 3 * S, ok_resp, 0);
	assert_int_equal(f->seen.done, 3);
	assert_int_equal(f->seen.ci.sock, sock_of(2));
	assert_int_equal(f->seen.no_resp, 0);
	fixture_free(f);
}

static void test_parser_memory_budget(void **state)
{
	size_t sz = http1_state_size();
	uint32_t fit = (uint32_t)(CONN_PARSER_MEMORY_MAX / sz);
	struct fixture *f = fixture_new(fit + 8, 0);
	struct conn_stats st;

	(void)state;
	/* All busy (a request each, at the same instant): none can be reclaimed. */
	for (uint32_t n = 0; n < fit; n++)
		data(f, n, MT_DIR_INGRESS, 1 * MS, get_req, 0);
	st = stats(f);
	assert_int_equal(st.parser_budget_full, 0);
	assert_int_equal(st.parser_bytes, (uint64_t)fit * sz);
	assert_true(st.parser_bytes <= CONN_PARSER_MEMORY_MAX);
	assert_int_equal(st.parser_released, 0);

	/* One more does not fit: left at TCP level, counted. */
	data(f, fit, MT_DIR_INGRESS, 1 * MS, get_req, 0);
	data(f, fit, MT_DIR_EGRESS, 1 * MS, ok_resp, 0);
	st = stats(f);
	assert_int_equal(st.parser_budget_full, 1);
	assert_int_equal(st.parser_bytes, (uint64_t)fit * sz);
	assert_int_equal(f->seen.done, 0);

	/* A close gives its state back: the next connection is parsed. */
	conn_ev(f, 0, MT_CONN_CLOSED, 2 * MS);
	assert_int_equal(f->seen.done, 1); /* socket 0's pending request, flushed */
	served(f, fit + 1, 3 * MS);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(f->seen.ci.sock, sock_of(fit + 1));
	assert_int_equal(stats(f).parser_budget_full, 1);
	fixture_free(f);
}

static void test_soft_limit_reclaims_quiet_connections(void **state)
{
	size_t sz = http1_state_size();
	uint32_t over = (uint32_t)(CONN_PARSER_SOFT_MAX / sz) + 1;
	struct fixture *f = fixture_new(over + 64, 600 * S);
	struct conn_stats st;

	(void)state;
	/* A burst of keep-alive connections, each between messages after one exchange. */
	for (uint32_t n = 0; n < over; n++)
		served(f, n, 1 * MS);
	st = stats(f);
	assert_true(st.parser_bytes > CONN_PARSER_SOFT_MAX);
	assert_int_equal(st.parser_released, 0);
	/* A new connection once they are quiet: it takes state from them, not from the budget. */
	served(f, over, 1 * MS + 2 * CONN_PARSER_QUIET_NS);
	st = stats(f);
	assert_true(st.parser_released > 0);
	assert_true(st.parser_released <= CONN_RECLAIM_SCAN);
	assert_true(st.parser_bytes <= CONN_PARSER_SOFT_MAX);
	assert_int_equal(f->seen.ci.sock, sock_of(over));
	assert_int_equal(f->seen.done, over + 1);
	fixture_free(f);
}

static void test_busy_connections_are_not_reclaimed(void **state)
{
	size_t sz = http1_state_size();
	uint32_t over = (uint32_t)(CONN_PARSER_SOFT_MAX / sz) + 1;
	struct fixture *f = fixture_new(over + 64, 600 * S);

	(void)state;
	/* Requests without responses: mid-exchange, however quiet. */
	for (uint32_t n = 0; n < over; n++)
		data(f, n, MT_DIR_INGRESS, 1 * MS, get_req, 0);
	served(f, over, 1 * S);
	assert_int_equal(stats(f).parser_released, 0);
	assert_int_equal(stats(f).parser_bytes, (uint64_t)(over + 1) * sz);
	assert_int_equal(f->seen.done, 1);
	fixture_free(f);
}

static void test_lost_events_restart_parser(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;

	(void)state;
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	data(f, 1, MT_DIR_INGRESS, 2 * MS, get_req, 0);
	/* The kernel lost events of this socket before this chunk: what is pending is aborted. */
	data(f, 1, MT_DIR_INGRESS, 3 * MS, get_req, MT_DATA_F_LOST_BEFORE);
	st = stats(f);
	assert_int_equal(st.lost_restarts, 1);
	assert_int_equal(st.l7[MT_PROTO_HTTP1].state_lost, 1);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.aborted, 1);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_SERVER); /* the role survives */
	/* Detection ran again on that chunk, a message start: its response pairs with it. */
	data(f, 1, MT_DIR_EGRESS, 4 * MS, ok_resp, 0);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(f->seen.aborted, 1);
	assert_int_equal(f->seen.x.status, 200);
	assert_int_equal(stats(f).parser_bytes, http1_state_size());

	/* Lost events before detection: counted, nothing to abort, detection goes on. */
	data(f, 2, MT_DIR_INGRESS, 5 * MS, get_req, MT_DATA_F_LOST_BEFORE);
	data(f, 2, MT_DIR_EGRESS, 6 * MS, ok_resp, 0);
	assert_int_equal(stats(f).lost_restarts, 2);
	assert_int_equal(stats(f).l7[MT_PROTO_HTTP1].state_lost, 1);
	assert_int_equal(f->seen.done, 3);
	assert_int_equal(f->seen.aborted, 1);
	assert_int_equal(f->seen.ci.sock, sock_of(2));
	fixture_free(f);
}

static void test_skip_hints(void **state)
{
	static const char big_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
	static const char small_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n";
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;
	uint32_t body_start;

	(void)state;
	f->seq[1][MT_DIR_EGRESS] = 0xfffff000u; /* the range wraps around 2^32 */
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	data(f, 1, MT_DIR_INGRESS, 2 * MS, get_req, 0);
	data(f, 1, MT_DIR_EGRESS, 3 * MS, big_head, 0);
	body_start = f->seq[1][MT_DIR_EGRESS];
	/* The whole body is ahead: one hint, egress only. */
	assert_int_equal(f->seen.skips, 1);
	assert_int_equal(f->seen.skip_sock, sock_of(1));
	assert_int_equal(f->seen.skip.start[MT_DIR_EGRESS], body_start);
	assert_int_equal(f->seen.skip.end[MT_DIR_EGRESS], body_start + 100000);
	assert_int_equal(f->seen.skip.start[MT_DIR_INGRESS], f->seen.skip.end[MT_DIR_INGRESS]);
	/* An event made before the kernel had the hint: inside it, no new hint. */
	data_n(f, 1, MT_DIR_EGRESS, 4 * MS, "xxxx", 16384);
	assert_int_equal(f->seen.skips, 1);
	kernel_skips(f, 1, MT_DIR_EGRESS, 65536);
	kernel_skips(f, 1, MT_DIR_EGRESS, 10000);
	assert_int_equal(f->seen.done, 0);
	/* The call that reaches the end makes an event: it ends the response, at its time. */
	data_n(f, 1, MT_DIR_EGRESS, 9 * MS, "", 100000 - 16384 - 65536 - 10000);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.x.status, 200);
	assert_int_equal(f->seen.x.resp_body_bytes, 100000);
	assert_int_equal(f->seen.x.resp_end_ns, 9 * MS);
	st = stats(f);
	assert_int_equal(st.skipped_bytes, 65536 + 10000);
	assert_int_equal(st.skip_hints, 1);
	assert_int_equal(st.skip_mismatch, 0);

	/* The stream position is exact: the next exchange parses. A small body: no hint. */
	data(f, 1, MT_DIR_INGRESS, 10 * MS, get_req, 0);
	data_n(f, 1, MT_DIR_EGRESS, 11 * MS, small_head, sizeof(small_head) - 1 + 4000);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(f->seen.skips, 1);

	/* A seq that jumps past the hint is not the kernel's doing: counted, no gap fed. */
	data(f, 1, MT_DIR_INGRESS, 12 * MS, get_req, 0);
	data(f, 1, MT_DIR_EGRESS, 13 * MS, big_head, 0);
	assert_int_equal(f->seen.skips, 2);
	f->seq[1][MT_DIR_EGRESS] += 200000;
	data_n(f, 1, MT_DIR_EGRESS, 14 * MS, "", 1000);
	assert_int_equal(stats(f).skip_mismatch, 1);
	assert_int_equal(stats(f).skipped_bytes, 65536 + 10000);

	/* Events lost: the parser starts over, and the kernel's hint is taken back with it. */
	data(f, 1, MT_DIR_INGRESS, 15 * MS, get_req, 0);
	data(f, 1, MT_DIR_EGRESS, 16 * MS, big_head, 0);
	assert_int_equal(f->seen.skips, 3);
	data(f, 1, MT_DIR_INGRESS, 17 * MS, get_req, MT_DATA_F_LOST_BEFORE);
	assert_int_equal(f->seen.skips, 4);
	for (int d = 0; d < 2; d++)
		assert_int_equal(f->seen.skip.end[d], f->seen.skip.start[d]);
	assert_int_equal(stats(f).l7[MT_PROTO_HTTP1].responses_unseen, 0);
	fixture_free(f);
}

static void test_close_flushes_and_frees(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;

	(void)state;
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	data(f, 1, MT_DIR_INGRESS, 2 * MS, get_req, 0);
	assert_int_equal(f->seen.done, 0);
	conn_ev(f, 1, MT_CONN_CLOSED, 3 * MS);
	st = stats(f);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.no_resp, 1);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_SERVER);
	assert_int_equal(st.closed, 1);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.parser_bytes, 0);
	/* A close for a socket never seen changes nothing. */
	conn_ev(f, 9, MT_CONN_CLOSED, 4 * MS);
	assert_int_equal(stats(f).closed, 1);

	/* A failed connect ends its record. */
	conn_ev(f, 2, MT_CONN_CONNECT, 5 * MS);
	assert_int_equal(stats(f).active, 1);
	conn_ev(f, 2, MT_CONN_FAILED, 6 * MS);
	st = stats(f);
	assert_int_equal(st.connect_failed, 1);
	assert_int_equal(st.active, 0);
	fixture_free(f);
}

static void test_new_life_of_a_socket_ends_the_old(void **state)
{
	struct fixture *f = fixture_new(16, 0);

	(void)state;
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	data(f, 1, MT_DIR_INGRESS, 2 * MS, get_req, 0);
	/* The same struct sock reused for an outgoing connection. */
	conn_ev(f, 1, MT_CONN_CONNECT, 3 * MS);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.no_resp, 1);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_SERVER);
	assert_int_equal(stats(f).active, 1);
	assert_int_equal(stats(f).opened, 2);
	data(f, 1, MT_DIR_EGRESS, 4 * MS, get_req, 0);
	data(f, 1, MT_DIR_INGRESS, 5 * MS, ok_resp, 0);
	assert_int_equal(f->seen.done, 2);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_CLIENT);
	fixture_free(f);
}

static void test_free_drops_pending(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct seen *seen = &f->seen;

	(void)state;
	/* At exit nothing downstream is waiting: pending requests go with the table (ASan: no leak). */
	data(f, 1, MT_DIR_INGRESS, 1 * MS, get_req, 0);
	data(f, 2, MT_DIR_EGRESS, 1 * MS, get_req, 0);
	conn_table__free(f->t);
	f->t = NULL;
	assert_int_equal(seen->done, 0);
	free(f);
	conn_table__free(NULL);
}

static void test_many_sockets_one_table(void **state)
{
	struct fixture *f = fixture_new(1024, 0);

	(void)state;
	/* Enough sockets to share hash buckets: each exchange stays on its own socket. */
	for (unsigned n = 0; n < 1000; n++)
		data(f, n, MT_DIR_INGRESS, 1 * MS + n, get_req, 0);
	for (unsigned n = 1000; n-- > 0;) {
		data(f, n, MT_DIR_EGRESS, 2 * MS + n, ok_resp, 0);
		assert_int_equal(f->seen.ci.sock, sock_of(n));
		assert_int_equal(f->seen.ci.pid, 100 + n);
	}
	assert_int_equal(f->seen.done, 1000);
	assert_int_equal(f->seen.no_resp, 0);
	for (unsigned n = 0; n < 1000; n += 2)
		conn_ev(f, n, MT_CONN_CLOSED, 3 * MS);
	assert_int_equal(stats(f).active, 500);
	for (unsigned n = 1; n < 1000; n += 2)
		served(f, n, 4 * MS);
	assert_int_equal(stats(f).opened, 1000);
	assert_int_equal(f->seen.done, 1500);
	fixture_free(f);
}

/* A TLS 1.2 record header and the start of its ClientHello, and an application data record. */
static const uint8_t client_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03};
static const uint8_t app_record[] = {0x17, 0x03, 0x03, 0x00, 0x20, 0x8a, 0x00, 0x51, 0x07, 0xee};

static void test_tls_plaintext_parsed_ciphertext_not(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;

	(void)state;
	conn_ev(f, 1, MT_CONN_ACCEPTED, 1 * MS);
	data_bytes(f, 1, MT_DIR_INGRESS, 2 * MS, client_hello, sizeof(client_hello), 0);
	assert_int_equal(f->seen.tls_reports, 1);
	assert_int_equal(f->seen.tls_pid, 101);
	assert_int_equal(f->seen.mutes, 1); /* ciphertext is worth nothing to copy */
	/* Ciphertext inside the library's calls (count-only) and after: never parsed. */
	data_bytes(f, 1, MT_DIR_INGRESS, 3 * MS, app_record, sizeof(app_record),
		   MT_DATA_F_TLS_WIRE);
	data(f, 1, MT_DIR_INGRESS, 4 * MS, get_req, MT_DATA_F_TLS);
	data(f, 1, MT_DIR_EGRESS, 5 * MS, ok_resp, MT_DATA_F_TLS);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.ci.tls, 1);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_SERVER);
	assert_int_equal(f->seen.x.status, 200);
	/* A record outside any probed call (an alert, a ticket) after plaintext: not parsed. */
	data_bytes(f, 1, MT_DIR_EGRESS, 6 * MS, app_record, sizeof(app_record), 0);
	data(f, 1, MT_DIR_INGRESS, 7 * MS, get_req, MT_DATA_F_TLS);
	data(f, 1, MT_DIR_EGRESS, 8 * MS, ok_resp, MT_DATA_F_TLS);
	assert_int_equal(f->seen.done, 2);
	conn_ev(f, 1, MT_CONN_CLOSED, 9 * MS);
	st = stats(f);
	assert_int_equal(st.tls_handshakes, 1);
	assert_int_equal(st.tls_plaintext, 1);
	assert_int_equal(st.tls_uncovered, 0);
	assert_int_equal(st.l7[MT_PROTO_HTTP1].garbage_bytes, 0);
	fixture_free(f);
}

static void test_tls_uncovered_counted(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;

	(void)state;
	/* A connection seen mid-life: the role comes from the ClientHello's direction. */
	data_bytes(f, 2, MT_DIR_EGRESS, 1 * MS, client_hello, sizeof(client_hello), 0);
	for (unsigned i = 0; i < 2 * CONN_DETECT_TRIES; i++)
		data_bytes(f, 2, i % 2 ? MT_DIR_INGRESS : MT_DIR_EGRESS, (2 + i) * MS, app_record,
			   sizeof(app_record), 0);
	conn_ev(f, 2, MT_CONN_CLOSED, 100 * MS);
	st = stats(f);
	assert_int_equal(f->seen.done, 0);
	assert_int_equal(f->seen.tls_reports, 1); /* once per connection */
	assert_int_equal(f->seen.mutes, 1);
	assert_int_equal(st.tls_uncovered, 1);
	assert_int_equal(st.not_parsed, 0); /* not a failed detection: TLS */
	assert_int_equal(st.parser_bytes, 0);
	fixture_free(f);
}

/*
 * A library call's ciphertext after the TCP close event (redis-server's close_notify, sent
 * inside SSL_read once the client has gone) lands on a record of its own: the connection was
 * covered by the hook, not uncovered. Ciphertext only ever seen raw still counts.
 */
/* A TLS alert record sent on socket @n after its close: the tuple has no local port any more. */
static void data_closed(struct fixture *f, unsigned n, uint64_t ts)
{
	static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x13, 0x2f, 0x61, 0x07};

	data_on_port(f, n, MT_DIR_EGRESS, ts, alert, sizeof(alert), 0, 0);
}

static void test_tls_wire_after_close_not_uncovered(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	struct conn_stats st;

	(void)state;
	conn_ev(f, 3, MT_CONN_ACCEPTED, 1 * MS);
	data_bytes(f, 3, MT_DIR_INGRESS, 2 * MS, client_hello, sizeof(client_hello), 0);
	data(f, 3, MT_DIR_INGRESS, 3 * MS, get_req, MT_DATA_F_TLS);
	data(f, 3, MT_DIR_EGRESS, 4 * MS, ok_resp, MT_DATA_F_TLS);
	conn_ev(f, 3, MT_CONN_CLOSED, 5 * MS);
	data_bytes(f, 3, MT_DIR_EGRESS, 6 * MS, app_record, sizeof(app_record), MT_DATA_F_TLS_WIRE);
	conn_ev(f, 3, MT_CONN_CONNECT, 7 * MS); /* the socket's next life ends that record */
	conn_ev(f, 3, MT_CONN_CLOSED, 8 * MS);
	st = stats(f);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(st.tls_plaintext, 1);
	assert_int_equal(st.tls_uncovered, 0);
	/* Raw ciphertext (SSL_shutdown's alert) on the closed socket: no local port, no record. */
	data_closed(f, 3, 9 * MS);
	assert_int_equal(stats(f).active, 0);
	assert_int_equal(stats(f).tls_uncovered, 0);
	fixture_free(f);
}

static void test_tls_after_plaintext_preamble(void **state)
{
	struct fixture *f = fixture_new(16, 0);
	unsigned done;

	(void)state;
	/* A plaintext start (STARTTLS-like: PostgreSQL's SSLRequest) got a parser... */
	conn_ev(f, 3, MT_CONN_CONNECT, 1 * MS);
	data(f, 3, MT_DIR_EGRESS, 2 * MS, get_req, 0);
	/* ...then the library's plaintext begins: the stream starts over from it. */
	data(f, 3, MT_DIR_EGRESS, 3 * MS, get_req, MT_DATA_F_TLS);
	data(f, 3, MT_DIR_INGRESS, 4 * MS, ok_resp, MT_DATA_F_TLS);
	assert_int_equal(f->seen.done, 1);
	assert_int_equal(f->seen.ci.tls, 1);
	assert_int_equal(f->seen.ci.role, CONN_ROLE_CLIENT);
	assert_int_equal(stats(f).parser_bytes, http1_state_size());
	assert_int_equal(stats(f).tls_plaintext, 1);
	assert_int_equal(f->seen.skips, 0);
	fixture_free(f);

	/*
	 * A preamble that left a skip hint in the kernel (a long body before the upgrade): the
	 * hint is taken back when the library's plaintext begins, not left to skip its calls.
	 */
	f = fixture_new(16, 0);
	conn_ev(f, 4, MT_CONN_CONNECT, 1 * MS);
	data(f, 4, MT_DIR_EGRESS, 2 * MS, get_req, 0);
	data(f, 4, MT_DIR_INGRESS, 3 * MS, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 0);
	assert_int_equal(f->seen.skips, 1);
	assert_true(f->seen.skip.end[MT_DIR_INGRESS] != f->seen.skip.start[MT_DIR_INGRESS]);
	data(f, 4, MT_DIR_EGRESS, 4 * MS, get_req, MT_DATA_F_TLS);
	assert_int_equal(f->seen.skips, 2);
	assert_int_equal(f->seen.skip_sock, sock_of(4));
	for (int d = 0; d < 2; d++)
		assert_int_equal(f->seen.skip.end[d], f->seen.skip.start[d]);
	done = f->seen.done;
	data(f, 4, MT_DIR_INGRESS, 5 * MS, ok_resp, MT_DATA_F_TLS);
	assert_int_equal(f->seen.done, done + 1);
	assert_int_equal(f->seen.x.status, 200);
	assert_int_equal(f->seen.skips, 2);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_from_first_message),
		cmocka_unit_test(test_role_from_connect_and_accept),
		cmocka_unit_test(test_unknown_bytes_give_up_and_mute),
		cmocka_unit_test(test_full_table_evicts_least_recent),
		cmocka_unit_test(test_eviction_flushes_pending_request),
		cmocka_unit_test(test_idle_records_expire),
		cmocka_unit_test(test_quiet_connection_releases_parser_state),
		cmocka_unit_test(test_parser_memory_budget),
		cmocka_unit_test(test_soft_limit_reclaims_quiet_connections),
		cmocka_unit_test(test_busy_connections_are_not_reclaimed),
		cmocka_unit_test(test_lost_events_restart_parser),
		cmocka_unit_test(test_skip_hints),
		cmocka_unit_test(test_close_flushes_and_frees),
		cmocka_unit_test(test_new_life_of_a_socket_ends_the_old),
		cmocka_unit_test(test_free_drops_pending),
		cmocka_unit_test(test_many_sockets_one_table),
		cmocka_unit_test(test_tls_plaintext_parsed_ciphertext_not),
		cmocka_unit_test(test_tls_uncovered_counted),
		cmocka_unit_test(test_tls_wire_after_close_not_uncovered),
		cmocka_unit_test(test_tls_after_plaintext_preamble),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
