// SPDX-License-Identifier: Apache-2.0
/* DNS client spans: query/response pairing, timeouts, id reuse, table bounds, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/trace/dnsspans.h"
#include "agent/protocols/dns.h"
#include "agent/export/span_attrs.h"

#define MS 1000000ull
#define S  1000000000ull

#define SEEN_MAX 4096

struct seen {
	unsigned n;
	struct conn_info ci[SEEN_MAX];
	struct mt_exchange x[SEEN_MAX];
};

static void on_exchange(void *ctx, const struct conn_info *ci, const struct mt_exchange *x)
{
	struct seen *s = ctx;

	assert_true(s->n < SEEN_MAX);
	s->ci[s->n] = *ci;
	s->x[s->n] = *x;
	s->n++;
}

/* One MT_EV_DNS event with its payload, as the ring buffer holds it. */
struct event {
	struct mt_data_event ev;
	uint8_t data[512];
};

static void v4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	out[12] = a, out[13] = b, out[14] = c, out[15] = d;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * A DNS message: @response false is a query; true a response with @rcode and
 * @answers A records (a name pointer to the question). Returns its length.
 */
static size_t build_msg(uint8_t *p, uint16_t id, bool response, const char *name, uint16_t qtype,
			uint8_t rcode, unsigned answers)
{
	size_t n = 12;
	const char *label = name;

	memset(p, 0, 12);
	put16(p, id);
	put16(p + 2, response ? (uint16_t)(0x8180 | rcode) : 0x0100);
	put16(p + 4, 1);
	put16(p + 6, (uint16_t)answers);
	while (*label) {
		size_t len = strcspn(label, ".");

		p[n++] = (uint8_t)len;
		memcpy(p + n, label, len);
		n += len;
		label += len;
		if (*label == '.')
			label++;
	}
	p[n++] = 0;
	put16(p + n, qtype);
	put16(p + n + 2, 1);
	n += 4;
	for (unsigned i = 0; i < answers; i++) {
		put16(p + n, 0xC00C);
		put16(p + n + 2, DNS_TYPE_A);
		put16(p + n + 4, 1);
		memset(p + n + 6, 0, 4);
		p[n + 9] = 60;
		put16(p + n + 10, 4);
		p[n + 12] = 10, p[n + 13] = 0, p[n + 14] = 0, p[n + 15] = (uint8_t)(i + 1);
		n += 16;
	}
	return n;
}

/* An event on client socket @sock (127.0.0.1:40000 -> 127.0.0.53:53). */
static const struct mt_data_event *event(struct event *e, uint64_t sock, uint8_t dir,
					 uint64_t ts_ns, size_t len)
{
	e->ev.head.kind = MT_EV_DNS;
	e->ev.head.ts_ns = ts_ns;
	e->ev.head.sock = sock;
	e->ev.pid = 1234;
	e->ev.tid = 1235;
	e->ev.fd = 7;
	e->ev.bytes = (uint32_t)len;
	e->ev.captured = (uint16_t)len;
	e->ev.dir = dir;
	snprintf(e->ev.comm, sizeof(e->ev.comm), "curl");
	v4(e->ev.tuple.laddr, 127, 0, 0, 1);
	v4(e->ev.tuple.raddr, 127, 0, 0, 53);
	e->ev.tuple.lport = 40000;
	e->ev.tuple.rport = 53;
	e->ev.tuple.family = 2;
	return &e->ev;
}

static void query(struct dnsspans *d, uint64_t sock, uint16_t id, const char *name, uint16_t qtype,
		  uint64_t ts)
{
	struct event e;
	size_t n = build_msg(e.data, id, false, name, qtype, 0, 0);

	dnsspans_on_event(d, event(&e, sock, MT_DIR_EGRESS, ts, n));
}

static void answer(struct dnsspans *d, uint64_t sock, uint16_t id, const char *name, uint16_t qtype,
		   uint8_t rcode, unsigned answers, uint64_t ts)
{
	struct event e;
	size_t n = build_msg(e.data, id, true, name, qtype, rcode, answers);

	dnsspans_on_event(d, event(&e, sock, MT_DIR_INGRESS, ts, n));
}

static void test_pairing(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct dnsspans *d = dnsspans__new(on_exchange, s);
	struct dnsspans_stats st;
	const struct mt_exchange *x;

	(void)state;
	assert_non_null(d);
	/* A and AAAA in flight together on one socket, answered out of order. */
	query(d, 0x100, 0x1111, "shop.example.test", DNS_TYPE_A, 1 * S);
	query(d, 0x100, 0x2222, "shop.example.test", DNS_TYPE_AAAA, 1 * S + 1 * MS);
	answer(d, 0x100, 0x2222, "shop.example.test", DNS_TYPE_AAAA, DNS_RCODE_NOERROR, 0,
	       1 * S + 3 * MS);
	answer(d, 0x100, 0x1111, "shop.example.test", DNS_TYPE_A, DNS_RCODE_NOERROR, 2,
	       1 * S + 4 * MS);
	query(d, 0x100, 0x3333, "nope.example.test", DNS_TYPE_A, 2 * S);
	answer(d, 0x100, 0x3333, "nope.example.test", DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0,
	       2 * S + 1 * MS);
	query(d, 0x100, 0x4444, "broken.example.test", DNS_TYPE_A, 3 * S);
	answer(d, 0x100, 0x4444, "broken.example.test", DNS_TYPE_A, DNS_RCODE_SERVFAIL, 0,
	       3 * S + 1 * MS);

	assert_int_equal(s->n, 8);
	/* Each request stage comes before its done stage, with the same distinct req_seq. */
	assert_int_equal(s->x[0].stage, MT_STAGE_REQUEST);
	assert_int_equal(s->x[1].stage, MT_STAGE_REQUEST);
	assert_int_not_equal(s->x[0].req_seq, s->x[1].req_seq);
	x = &s->x[2]; /* AAAA */
	assert_int_equal(x->stage, MT_STAGE_DONE);
	assert_int_equal(x->req_seq, s->x[1].req_seq);
	assert_int_equal(x->protocol, MT_PROTO_DNS);
	assert_string_equal(x->query_text, "shop.example.test");
	assert_string_equal(x->operation, "DNS AAAA");
	assert_int_equal(x->dns_qtype, DNS_TYPE_AAAA);
	assert_string_equal(x->status_text, "NOERROR");
	assert_int_equal(x->dns_answers, 0);
	assert_int_equal(x->req_start_ns, 1 * S + 1 * MS);
	assert_int_equal(x->resp_end_ns, 1 * S + 3 * MS);
	assert_int_equal(x->flags, 0);
	x = &s->x[3]; /* A */
	assert_int_equal(x->req_seq, s->x[0].req_seq);
	assert_string_equal(x->operation, "DNS A");
	assert_int_equal(x->dns_answers, 2);
	assert_int_equal(x->req_start_ns, 1 * S);
	/* The connection: a client socket of the querying thread. */
	assert_int_equal(s->ci[3].role, CONN_ROLE_CLIENT);
	assert_int_equal(s->ci[3].sock, 0x100);
	assert_int_equal(s->ci[3].pid, 1234);
	assert_int_equal(s->ci[3].tid, 1235);
	assert_string_equal(s->ci[3].comm, "curl");
	assert_int_equal(s->ci[3].tuple.rport, 53);
	/* NXDOMAIN is an answer; SERVFAIL a failure. */
	assert_string_equal(s->x[5].status_text, "NXDOMAIN");
	assert_int_equal(s->x[5].dns_rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(s->x[5].flags & MT_X_ERROR, 0);
	assert_string_equal(s->x[7].status_text, "SERVFAIL");
	assert_int_equal(s->x[7].flags & MT_X_ERROR, MT_X_ERROR);

	dnsspans_stats(d, &st);
	assert_int_equal(st.queries, 4);
	assert_int_equal(st.responses, 4);
	assert_int_equal(st.spans, 4);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.orphan_responses, 0);
	dnsspans__free(d);
	dnsspans__free(NULL);
	free(s);
}

static void test_unanswered(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct dnsspans *d = dnsspans__new(on_exchange, s);
	struct dnsspans_stats st;

	(void)state;
	query(d, 0x200, 7, "slow.example.test", DNS_TYPE_A, 10 * S);
	/* A retransmission of the same query: one lookup, timed from its first try. */
	query(d, 0x200, 7, "slow.example.test", DNS_TYPE_A, 12 * S);
	assert_int_equal(s->n, 1);
	dnsspans_expire(d, 10 * S + DNSSPANS_TIMEOUT_NS); /* not yet: exactly at the limit */
	assert_int_equal(s->n, 1);
	dnsspans_expire(d, 16 * S);
	assert_int_equal(s->n, 2);
	assert_int_equal(s->x[1].stage, MT_STAGE_DONE);
	assert_int_equal(s->x[1].req_seq, s->x[0].req_seq);
	assert_int_equal(s->x[1].flags, MT_X_NO_RESPONSE);
	assert_string_equal(s->x[1].status_text, "");
	assert_int_equal(s->x[1].req_start_ns, 10 * S);
	/* The late answer pairs with nothing. */
	answer(d, 0x200, 7, "slow.example.test", DNS_TYPE_A, 0, 1, 17 * S);
	assert_int_equal(s->n, 2);
	dnsspans_stats(d, &st);
	assert_int_equal(st.unanswered, 1);
	assert_int_equal(st.retransmits, 1);
	assert_int_equal(st.orphan_responses, 1);
	assert_int_equal(st.spans, 0);
	assert_int_equal(st.pending, 0);
	dnsspans__free(d);
	free(s);
}

static void test_id_reuse(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct dnsspans *d = dnsspans__new(on_exchange, s);
	struct dnsspans_stats st;

	(void)state;
	/* The same id, answered, then used again: two distinct lookups. */
	query(d, 0x300, 42, "a.example.test", DNS_TYPE_A, 1 * S);
	answer(d, 0x300, 42, "a.example.test", DNS_TYPE_A, 0, 1, 1 * S + MS);
	query(d, 0x300, 42, "a.example.test", DNS_TYPE_A, 2 * S);
	answer(d, 0x300, 42, "a.example.test", DNS_TYPE_A, 0, 1, 2 * S + MS);
	assert_int_equal(s->n, 4);
	assert_int_not_equal(s->x[0].req_seq, s->x[2].req_seq);
	assert_int_equal(s->x[3].req_seq, s->x[2].req_seq);
	/* The same id on another socket is another lookup. */
	query(d, 0x301, 42, "a.example.test", DNS_TYPE_A, 3 * S);
	answer(d, 0x300, 42, "a.example.test", DNS_TYPE_A, 0, 1, 3 * S + MS);
	assert_int_equal(s->n, 5); /* the answer on 0x300 is an orphan */
	/* A pending id reused for another question: the first ends unanswered. */
	query(d, 0x301, 42, "b.example.test", DNS_TYPE_AAAA, 4 * S);
	assert_int_equal(s->n, 7);
	assert_int_equal(s->x[5].stage, MT_STAGE_DONE);
	assert_string_equal(s->x[5].query_text, "a.example.test");
	assert_int_equal(s->x[5].flags, MT_X_NO_RESPONSE);
	assert_int_equal(s->x[6].stage, MT_STAGE_REQUEST);
	/* An answer to another question under the id does not complete it. */
	answer(d, 0x301, 42, "a.example.test", DNS_TYPE_A, 0, 1, 4 * S + MS);
	answer(d, 0x301, 42, "b.example.test", DNS_TYPE_AAAA, 0, 0, 4 * S + 2 * MS);
	assert_int_equal(s->n, 8);
	assert_string_equal(s->x[7].query_text, "b.example.test");
	dnsspans_stats(d, &st);
	assert_int_equal(st.id_reused, 1);
	assert_int_equal(st.orphan_responses, 2);
	assert_int_equal(st.spans, 3);
	assert_int_equal(st.pending, 0);
	dnsspans__free(d);
	free(s);
}

static void test_table_full(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct dnsspans *d = dnsspans__new(on_exchange, s);
	struct dnsspans_stats st;
	unsigned aborted = 0, i;

	(void)state;
	for (i = 0; i < DNSSPANS_PENDING_MAX + 200; i++)
		query(d, 0x1000 + i, (uint16_t)i, "x.example.test", DNS_TYPE_A, S + i);
	dnsspans_stats(d, &st);
	assert_true(st.evicted >= 200);
	assert_true(st.pending <= DNSSPANS_PENDING_MAX);
	assert_int_equal(st.pending + st.evicted, DNSSPANS_PENDING_MAX + 200);
	/* Every evicted lookup is ended for the linker, with no span. */
	for (i = 0; i < s->n; i++)
		if (s->x[i].stage == MT_STAGE_DONE) {
			assert_true(s->x[i].flags & MT_X_ABORTED);
			aborted++;
		}
	assert_int_equal(aborted, st.evicted);
	/* The newest lookup is still there and completes. */
	i = DNSSPANS_PENDING_MAX + 199;
	answer(d, 0x1000 + i, (uint16_t)i, "x.example.test", DNS_TYPE_A, 0, 1, 2 * S);
	dnsspans_stats(d, &st);
	assert_int_equal(st.spans, 1);
	/* The rest time out. */
	dnsspans_expire(d, 10 * S);
	dnsspans_stats(d, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.unanswered + st.evicted + 1, DNSSPANS_PENDING_MAX + 200);
	dnsspans__free(d);
	free(s);
}

static void test_garbage(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct dnsspans *d = dnsspans__new(on_exchange, s);
	struct dnsspans_stats st;
	struct event e;
	size_t n;

	(void)state;
	/* Not DNS at all, a short header, a truncated question. */
	memcpy(e.data, "GET / HTTP/1.1\r\n\r\n", 18);
	dnsspans_on_event(d, event(&e, 0x400, MT_DIR_EGRESS, S, 18));
	dnsspans_on_event(d, event(&e, 0x400, MT_DIR_INGRESS, S, 5));
	n = build_msg(e.data, 9, false, "cut.example.test", DNS_TYPE_A, 0, 0);
	dnsspans_on_event(d, event(&e, 0x400, MT_DIR_EGRESS, S, n - 6));
	/* A response the client sent, a query it received: not a client's lookup. */
	n = build_msg(e.data, 9, true, "a.example.test", DNS_TYPE_A, 0, 0);
	dnsspans_on_event(d, event(&e, 0x400, MT_DIR_EGRESS, S, n));
	n = build_msg(e.data, 9, false, "a.example.test", DNS_TYPE_A, 0, 0);
	dnsspans_on_event(d, event(&e, 0x400, MT_DIR_INGRESS, S, n));
	/* A resolver's own socket (local port 53). */
	event(&e, 0x401, MT_DIR_INGRESS, S, n);
	e.ev.tuple.lport = 53;
	e.ev.tuple.rport = 40000;
	dnsspans_on_event(d, &e.ev);
	/* recvmmsg: no bytes. */
	dnsspans_on_event(d, event(&e, 0x402, MT_DIR_INGRESS, S, 0));
	assert_int_equal(s->n, 0);
	dnsspans_stats(d, &st);
	assert_int_equal(st.malformed, 5);
	assert_int_equal(st.server_side, 1);
	assert_int_equal(st.no_payload, 1);
	assert_int_equal(st.pending, 0);
	dnsspans__free(d);
	free(s);
}

static void test_sendmmsg(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct dnsspans *d = dnsspans__new(on_exchange, s);
	struct dnsspans_stats st;
	struct event e;

	(void)state;
	/* glibc's A + AAAA in one sendmmsg: the kernel sends no bytes. */
	dnsspans_on_event(d, event(&e, 0x500, MT_DIR_EGRESS, 5 * S, 0));
	answer(d, 0x500, 0xabc, "both.example.test", DNS_TYPE_A, 0, 1, 5 * S + 2 * MS);
	answer(d, 0x500, 0xabd, "both.example.test", DNS_TYPE_AAAA, 0, 0, 5 * S + 3 * MS);
	assert_int_equal(s->n, 4);
	assert_int_equal(s->x[0].stage, MT_STAGE_REQUEST);
	assert_int_equal(s->x[1].stage, MT_STAGE_DONE);
	assert_int_equal(s->x[1].req_start_ns, 5 * S);
	assert_int_equal(s->x[1].resp_end_ns, 5 * S + 2 * MS);
	assert_string_equal(s->x[1].operation, "DNS A");
	assert_string_equal(s->x[3].operation, "DNS AAAA");
	assert_int_not_equal(s->x[1].req_seq, s->x[3].req_seq);
	/* The socket's send is forgotten after the timeout, silently. */
	dnsspans_expire(d, 20 * S);
	dnsspans_stats(d, &st);
	assert_int_equal(st.paired_by_socket, 2);
	assert_int_equal(st.spans, 2);
	assert_int_equal(st.unanswered, 0);
	assert_int_equal(st.pending, 0);
	dnsspans__free(d);
	free(s);
}

static const struct span_attr *attr(const struct span_attrs *a, const char *key)
{
	for (unsigned i = 0; i < a->n; i++)
		if (!strcmp(a->attr[i].key, key))
			return &a->attr[i];
	return NULL;
}

static void test_attributes(void **state)
{
	struct mt_span sp;
	struct span_attrs a;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	sp.kind = MT_SPAN_CLIENT;
	sp.protocol = MT_PROTO_DNS;
	snprintf(sp.query_text, sizeof(sp.query_text), "shop.example.test");
	snprintf(sp.status_text, sizeof(sp.status_text), "NOERROR");
	snprintf(sp.server_address, sizeof(sp.server_address), "127.0.0.53");
	sp.server_port = 53;
	sp.dns_qtype = DNS_TYPE_AAAA;
	sp.dns_answers = 3;
	span_attrs_build(&a, &sp, NULL, 0);
	assert_string_equal(attr(&a, "dns.question.name")->str, "shop.example.test");
	assert_string_equal(attr(&a, "dns.question.type")->str, "AAAA");
	assert_string_equal(attr(&a, "dns.response_code")->str, "NOERROR");
	assert_int_equal(attr(&a, "dns.answer_count")->num, 3);
	assert_string_equal(attr(&a, "server.address")->str, "127.0.0.53");
	assert_int_equal(attr(&a, "server.port")->num, 53);
	assert_string_equal(attr(&a, "network.transport")->str, "udp");
	assert_null(attr(&a, "error.type"));
	assert_null(attr(&a, "http.request.method"));

	sp.status = MT_STATUS_ERROR;
	sp.dns_rcode = DNS_RCODE_SERVFAIL;
	snprintf(sp.status_text, sizeof(sp.status_text), "SERVFAIL");
	span_attrs_build(&a, &sp, NULL, 0);
	assert_string_equal(attr(&a, "error.type")->str, "try_again");
	sp.status_text[0] = '\0'; /* no response */
	span_attrs_build(&a, &sp, NULL, 0);
	assert_string_equal(attr(&a, "error.type")->str, "timeout");
	assert_null(attr(&a, "dns.response_code"));
	assert_null(attr(&a, "dns.answer_count"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairing),	   cmocka_unit_test(test_unanswered),
		cmocka_unit_test(test_id_reuse),   cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_garbage),	   cmocka_unit_test(test_sendmmsg),
		cmocka_unit_test(test_attributes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
