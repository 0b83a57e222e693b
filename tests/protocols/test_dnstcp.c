// SPDX-License-Identifier: Apache-2.0
/* DNS over TCP: framing by length at any split, pairing by id out of order, garbage, close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/dnstcp.h"

struct rec {
	int requests;
	int done;
	struct mt_exchange x[16];
};

static void on_x(void *ctx, const struct mt_exchange *x)
{
	struct rec *r = ctx;

	if (x->stage == MT_STAGE_REQUEST) {
		r->requests++;
		return;
	}
	assert_true(r->done < 16);
	r->x[r->done++] = *x;
}

/* A query for @name (type @qtype) with @id, behind its two-byte length. */
static size_t query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype)
{
	size_t n = 2;
	const char *p = name;

	out[n++] = (uint8_t)(id >> 8);
	out[n++] = (uint8_t)id;
	out[n++] = 0x01; /* RD */
	out[n++] = 0x00;
	memcpy(out + n, "\0\1\0\0\0\0\0\0", 8);
	n += 8;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = (uint8_t)qtype;
	out[n++] = 0;
	out[n++] = 1;
	out[0] = (uint8_t)((n - 2) >> 8);
	out[1] = (uint8_t)(n - 2);
	return n;
}

/* The response to a query built by query(): one A record 10.0.0.@last, or none with @rcode. */
static size_t response(uint8_t *out, const uint8_t *q, size_t qn, uint8_t rcode, uint8_t last)
{
	size_t n = qn;

	memcpy(out, q, qn);
	out[4] = 0x81;
	out[5] = (uint8_t)(0x80 | rcode);
	if (rcode == 0) {
		static const uint8_t a[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0};

		out[9] = 1; /* ANCOUNT */
		memcpy(out + n, a, sizeof(a));
		n += sizeof(a);
		out[n++] = last;
	}
	out[0] = (uint8_t)((n - 2) >> 8);
	out[1] = (uint8_t)(n - 2);
	return n;
}

static void feed_split(struct dnstcp_conn *c, bool c2s, const uint8_t *b, size_t n, size_t split,
		       struct rec *r, struct l7_stats *st)
{
	for (size_t off = 0; off < n; off += split) {
		size_t k = n - off < split ? n - off : split;
		uint8_t *copy = malloc(k);
		struct mt_chunk ch = {.data = copy,
				      .captured = (uint32_t)k,
				      .len = (uint32_t)k,
				      .seq = (uint32_t)off,
				      .ts_ns = 100 + off};

		memcpy(copy, b + off, k);
		dnstcp_feed(c, c2s, &ch, on_x, r, st);
		free(copy);
	}
}

static void test_detect(void **state)
{
	uint8_t q[128];
	size_t n = query(q, 7, "api.example.com", 1);

	(void)state;
	assert_true(dnstcp_detect(q, n));
	assert_false(dnstcp_detect((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18));
	assert_false(dnstcp_detect(q, 10));
	q[4] |= 0x80; /* a response is not how a client starts */
	assert_false(dnstcp_detect(q, n));
}

static void test_two_queries_out_of_order_every_split(void **state)
{
	uint8_t q1[128], q2[128], r1[160], r2[160], both[256], resp[320];
	size_t n1 = query(q1, 0x1111, "a.example.com", 1), n2 = query(q2, 0x2222, "b.example", 28);
	size_t m1 = response(r1, q1, n1, 0, 5), m2 = response(r2, q2, n2, 3, 0);

	(void)state;
	memcpy(both, q1, n1);
	memcpy(both + n1, q2, n2);
	memcpy(resp, r2, m2); /* answered out of order */
	memcpy(resp + m2, r1, m1);
	for (size_t split = 1; split <= n1 + n2; split++) {
		struct dnstcp_conn c;
		struct l7_stats st = {0};
		struct rec r = {0};

		dnstcp_init(&c);
		feed_split(&c, true, both, n1 + n2, split, &r, &st);
		assert_int_equal(r.requests, 2);
		feed_split(&c, false, resp, m1 + m2, split, &r, &st);
		assert_int_equal(r.done, 2);
		assert_string_equal(r.x[0].query_text, "b.example");
		assert_string_equal(r.x[0].operation, "DNS AAAA");
		assert_int_equal(r.x[0].dns_rcode, 3);
		assert_false(r.x[0].flags & MT_X_ERROR); /* NXDOMAIN is an answer */
		assert_true(r.x[0].flags & MT_X_TCP);
		assert_int_equal(r.x[0].req_seq, n1); /* its first byte on the stream */
		assert_string_equal(r.x[1].query_text, "a.example.com");
		assert_int_equal(r.x[1].dns_answers, 1);
		assert_string_equal(r.x[1].status_text, "NOERROR");
		assert_int_equal(st.exchanges, 2);
	}
}

static void test_servfail_garbage_and_close(void **state)
{
	uint8_t q[128], r[160], junk[64];
	size_t n = query(q, 9, "x.test", 1), m = response(r, q, n, 2, 0);
	struct dnstcp_conn c;
	struct l7_stats st = {0};
	struct rec rec = {0};

	(void)state;
	dnstcp_init(&c);
	feed_split(&c, true, q, n, n, &rec, &st);
	feed_split(&c, false, r, m, m, &rec, &st);
	assert_int_equal(rec.done, 1);
	assert_true(rec.x[0].flags & MT_X_ERROR);
	/* A framed message that is not DNS: counted, the stream stays in step. */
	memset(junk, 0xee, sizeof(junk));
	junk[0] = 0;
	junk[1] = sizeof(junk) - 2;
	feed_split(&c, true, junk, sizeof(junk), 7, &rec, &st);
	assert_true(st.garbage_bytes > 0);
	feed_split(&c, true, q, n, 3, &rec, &st);
	dnstcp_close(&c, 999, on_x, &rec, &st);
	assert_int_equal(rec.done, 2);
	assert_true(rec.x[1].flags & MT_X_NO_RESPONSE);
}

static void test_large_answer_skipped_by_length(void **state)
{
	uint8_t q[128], big[2000];
	size_t n = query(q, 5, "big.test", 16), m;
	struct dnstcp_conn c;
	struct l7_stats st = {0};
	struct rec rec = {0};
	struct mt_chunk ch;

	(void)state;
	m = response(big, q, n, 0, 1);
	/* Pad the answer section to 1900 bytes; only 100 are captured. */
	memset(big + m, 0, 1900 - m);
	big[0] = (uint8_t)((1900 - 2) >> 8);
	big[1] = (uint8_t)(1900 - 2);
	dnstcp_init(&c);
	feed_split(&c, true, q, n, n, &rec, &st);
	ch = (struct mt_chunk){.data = big, .captured = 100, .len = 1900, .ts_ns = 5};
	dnstcp_feed(&c, false, &ch, on_x, &rec, &st);
	assert_int_equal(rec.done, 1);
	assert_string_equal(rec.x[0].query_text, "big.test");
}

/* A server that reads the length and the message with separate calls. */
static void test_server_reading_length_apart(void **state)
{
	uint8_t q[128], r[160];
	size_t n = query(q, 0x4242, "split.test", 1), m = response(r, q, n, 0, 9);
	struct dnstcp_conn c;
	struct l7_stats st = {0};
	struct rec rec = {0};
	struct mt_chunk ch;

	(void)state;
	assert_true(dnstcp_detect(q + 2, n - 2));
	dnstcp_init(&c);
	/* Detection saw only the message: the parser starts there. */
	ch = (struct mt_chunk){
		.data = q + 2, .captured = (uint32_t)(n - 2), .len = (uint32_t)(n - 2), .ts_ns = 1};
	dnstcp_feed(&c, true, &ch, on_x, &rec, &st);
	assert_int_equal(rec.requests, 1);
	feed_split(&c, false, r, m, m, &rec, &st);
	/* The next query arrives as a length, then a message. */
	feed_split(&c, true, q, n, 2, &rec, &st);
	feed_split(&c, false, r, m, m, &rec, &st);
	assert_int_equal(rec.done, 2);
	assert_string_equal(rec.x[1].query_text, "split.test");
}

/*
 * A query whose name was not captured in full (fewer bytes copied than moved) names nothing:
 * not the previous query's name with its first label overwritten ("abc.example.com").
 */
static void test_cut_name_after_a_whole_one(void **state)
{
	uint8_t q1[128], q2[128];
	size_t n1 = query(q1, 1, "www.example.com", 1), n2 = query(q2, 2, "abc.example.org", 1);
	struct dnstcp_conn c;
	struct l7_stats st = {0};
	struct rec rec = {0};
	struct mt_chunk ch;

	(void)state;
	dnstcp_init(&c);
	feed_split(&c, true, q1, n1, n1, &rec, &st);
	/* The length, the header and "\3abc" captured; the rest moved uncopied. */
	ch = (struct mt_chunk){.data = q2, .captured = 2 + 12 + 4, .len = (uint32_t)n2, .ts_ns = 7};
	dnstcp_feed(&c, true, &ch, on_x, &rec, &st);
	assert_int_equal(rec.requests, 2);
	dnstcp_close(&c, 9, on_x, &rec, &st);
	assert_int_equal(rec.done, 2);
	assert_string_equal(rec.x[0].query_text, "www.example.com");
	assert_string_equal(rec.x[1].query_text, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_two_queries_out_of_order_every_split),
		cmocka_unit_test(test_servfail_garbage_and_close),
		cmocka_unit_test(test_large_answer_skipped_by_length),
		cmocka_unit_test(test_server_reading_length_apart),
		cmocka_unit_test(test_cut_name_after_a_whole_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
