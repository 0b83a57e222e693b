// SPDX-License-Identifier: Apache-2.0
/*
 * The parser kit (agent/protocols/kit.h): the per-call context, the
 * length-framed body reader across captured and uncaptured bytes, the
 * lost-framing helpers, the exchange helpers, and a registry entry made by
 * L7_PARSER() calling the parser's typed functions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/kit.h"

struct rec {
	int done;
	int announced;
	struct mt_exchange last;
};

static void on_x(void *ctx, const struct mt_exchange *x)
{
	struct rec *r = ctx;

	if (x->stage == MT_STAGE_REQUEST)
		r->announced++;
	else
		r->done++;
	r->last = *x;
}

static void test_small_helpers(void **state)
{
	char field[4];

	(void)state;
	assert_int_equal(l7_min_size(3, 7), 3);
	assert_int_equal(l7_min_size(7, 3), 3);
	assert_true(l7_sat_add(UINT64_MAX - 1, 5) == UINT64_MAX);
	assert_int_equal(l7_sat_add(2, 3), 5);
	l7_copy_field(field, sizeof(field), "abcdef", 6);
	assert_string_equal(field, "abc");
	l7_copy_field(field, sizeof(field), "x", 1);
	assert_string_equal(field, "x");
	assert_int_equal(l7_client_if(true), L7_FROM_CLIENT);
	assert_int_equal(l7_client_if(false), L7_NO);
}

static void test_feed_begin_and_close(void **state)
{
	static const uint8_t bytes[] = "hello";
	struct mt_chunk ch = {.data = bytes, .captured = 9, .len = 5, .seq = 100, .ts_ns = 42};
	struct l7_stats st = {0};
	struct l7_feed f;
	struct rec r = {0};

	(void)state;
	assert_true(l7_feed_begin(&f, true, &ch, on_x, &r, &st));
	assert_int_equal(f.cap, 5); /* never more than moved */
	assert_int_equal(f.len, 5);
	assert_int_equal(f.seq, 100);
	assert_int_equal(f.ts, 42);
	assert_true(f.is_req);
	assert_ptr_equal(f.stats, &st);
	/* No stats given: counts go to the scratch, never through NULL. */
	assert_true(l7_feed_begin(&f, false, &ch, NULL, NULL, NULL));
	assert_ptr_equal(f.stats, &f.scratch);
	l7_garbage(&f, 3);
	assert_int_equal(f.scratch.garbage_bytes, 3);
	/* Nothing to parse: no chunk, no bytes. */
	assert_false(l7_feed_begin(&f, true, NULL, NULL, NULL, &st));
	ch.len = 0;
	assert_false(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	/* Uncaptured: no data at all. */
	ch = (struct mt_chunk){.data = NULL, .captured = 9, .len = 9};
	assert_true(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	assert_int_equal(f.cap, 0);
	l7_feed_close(&f, 77, on_x, &r, NULL);
	assert_int_equal(f.len, 0);
	assert_int_equal(f.ts, 77);
	assert_false(f.is_req);
	assert_ptr_equal(f.stats, &f.scratch);
	assert_int_equal(f.scratch.garbage_bytes, 0);
}

/* A body of 10 bytes over three chunks: 4 captured, 3 moved but not captured, 3 captured. */
static void test_body_take_across_a_gap(void **state)
{
	static const uint8_t a[] = "abcd";
	struct l7_stats st = {0};
	struct mt_chunk ch = {.data = a, .captured = 4, .len = 4};
	struct l7_feed f;
	uint8_t keep[16];
	uint16_t kept = 0;
	uint32_t left = 10;
	size_t pos = 0;

	(void)state;
	assert_true(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	assert_false(l7_body_take(&f, &pos, &left, keep, &kept, sizeof(keep)));
	assert_int_equal(pos, 4);
	assert_int_equal(left, 6);
	assert_int_equal(kept, 4);
	ch = (struct mt_chunk){.data = NULL, .captured = 0, .len = 3};
	pos = 0;
	assert_true(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	/* The gap: consumed by count, and the keeping stops short of the limit. */
	assert_true(l7_body_take(&f, &pos, &left, keep, &kept, sizeof(keep)));
	assert_int_equal(pos, 3);
	assert_int_equal(left, 3);
	assert_int_equal(kept, 4);
	/* A chunk holding the body's end and the next message: only the body is taken. */
	ch = (struct mt_chunk){.data = (const uint8_t *)"hijNEXT", .captured = 7, .len = 7};
	pos = 0;
	assert_true(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	assert_false(l7_body_take(&f, &pos, &left, keep, &kept, 6));
	assert_int_equal(pos, 3);
	assert_int_equal(left, 0);
	assert_int_equal(kept, 6); /* up to the limit */
	assert_memory_equal(keep, "abcdhi", 6);
}

static void test_body_take_limit_zero_keeps_nothing(void **state)
{
	struct mt_chunk ch = {.data = (const uint8_t *)"xyz", .captured = 2, .len = 3};
	struct l7_feed f;
	uint8_t keep[4] = {0};
	uint16_t kept = 0;
	uint32_t left = 100;
	size_t pos = 1;

	(void)state;
	assert_true(l7_feed_begin(&f, false, &ch, NULL, NULL, NULL));
	assert_false(l7_body_take(&f, &pos, &left, keep, &kept, 0));
	assert_int_equal(pos, 3);
	assert_int_equal(left, 98);
	assert_int_equal(kept, 0);
	assert_int_equal(keep[0], 0);
}

/* A toy ring of requests awaiting responses, answered through an l7_answer_fn. */
struct answers {
	int awaited, guessed, unanswered;
	uint64_t last_end;
};

static void answer_toy(void *p, uint64_t resp_end_ns, uint32_t flags)
{
	struct answers *a = p;

	a->awaited--;
	if (flags == MT_X_END_GUESSED)
		a->guessed++;
	else if (flags == MT_X_NO_RESPONSE)
		a->unanswered++;
	a->last_end = resp_end_ns;
}

static void test_lost_framing(void **state)
{
	struct mt_chunk ch = {
		.data = (const uint8_t *)"junk!", .captured = 5, .len = 5, .ts_ns = 9};
	struct l7_stats st = {0};
	struct l7_lost l = {0};
	struct answers a = {.awaited = 2};
	struct l7_feed f;

	(void)state;
	/* Responses lost inside a message, 2 requests awaited: nothing is garbage. */
	assert_true(l7_feed_begin(&f, false, &ch, NULL, NULL, &st));
	l7_lost_at(&l, &f, SIZE_MAX, true, (size_t)a.awaited, 7);
	assert_int_equal(st.garbage_bytes, 0);
	/* Requests lost outside one, 2 bytes into the chunk: the rest is garbage. */
	assert_true(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	l7_lost_at(&l, &f, 2, false, (size_t)a.awaited, 0);
	assert_int_equal(st.garbage_bytes, 3);
	/* Requests resume at any chunk that starts a message, else it is garbage. */
	assert_false(l7_lost_resync(&l, &f, false, (size_t)a.awaited, answer_toy, &a));
	assert_int_equal(st.garbage_bytes, 8);
	assert_true(l7_lost_resync(&l, &f, true, (size_t)a.awaited, answer_toy, &a));
	assert_int_equal(st.resyncs, 1);
	a.awaited++; /* a request sent after the loss */
	/* Responses only once a request was sent after the loss... */
	assert_true(l7_feed_begin(&f, false, &ch, NULL, NULL, &st));
	assert_false(l7_lost_resync(&l, &f, true, 2, answer_toy, &a));
	/* ... skipped ones still awaited stretch the lost ones' end, never garbage ... */
	assert_int_equal(st.garbage_bytes, 8);
	assert_int_equal(st.resyncs, 1);
	/* ... and then the requests owed were answered in the lost bytes. */
	assert_true(l7_lost_resync(&l, &f, true, (size_t)a.awaited, answer_toy, &a));
	assert_int_equal(st.resyncs, 2);
	assert_int_equal(a.guessed, 2);
	assert_int_equal(a.awaited, 1);
	assert_int_equal(a.last_end, 9);
	/* Lost outside a message with nothing awaited: skipped chunks are garbage. */
	l7_lost_at(&l, &f, SIZE_MAX, false, 0, 0);
	assert_false(l7_lost_resync(&l, &f, false, 0, answer_toy, &a));
	assert_int_equal(st.garbage_bytes, 13);
	/* At close: one count for the connection; every awaited request answered. */
	l7_lost_close(&l, &f, false, false, 0, answer_toy, &a);
	assert_int_equal(st.state_lost, 0);
	l7_lost_at(&l, &f, SIZE_MAX, true, 1, 11);
	a.awaited = 2;
	l7_lost_close(&l, &f, false, true, (size_t)a.awaited, answer_toy, &a);
	assert_int_equal(st.state_lost, 1);
	assert_int_equal(a.guessed, 3);
	assert_int_equal(a.unanswered, 1);
	assert_int_equal(a.awaited, 0);
	assert_int_equal(a.last_end, 0);
	l7_lost_close(&l, &f, true, false, 0, answer_toy, &a);
	assert_int_equal(st.state_lost, 2);
}

static void test_exchanges(void **state)
{
	struct mt_chunk ch = {.data = (const uint8_t *)"x", .captured = 1, .len = 1};
	struct l7_stats st = {0};
	struct mt_exchange x;
	struct l7_feed f;
	struct rec r = {0};
	uint32_t counter = 0;

	(void)state;
	assert_true(l7_feed_begin(&f, true, &ch, on_x, &r, &st));
	l7_announce(&f, MT_PROTO_REDIS, 7, 1, 2, "GETRANGE", 3);
	assert_int_equal(r.announced, 1);
	assert_int_equal(r.last.stage, MT_STAGE_REQUEST);
	assert_string_equal(r.last.operation, "GET");
	assert_int_equal(r.last.req_seq, 7);
	assert_int_equal(st.exchanges, 0); /* an announcement is not an exchange */
	l7_exchange_init(&x, MT_PROTO_MYSQL, 8, MT_X_ERROR, 3, 4);
	l7_emit_done(&f, &x);
	assert_int_equal(r.done, 1);
	assert_int_equal(st.exchanges, 1);
	assert_int_equal(r.last.protocol, MT_PROTO_MYSQL);
	assert_int_equal(r.last.flags, MT_X_ERROR);
	assert_int_equal(r.last.req_end_ns, 4);
	/* No emit: still counted, nothing called. */
	assert_true(l7_feed_begin(&f, true, &ch, NULL, NULL, &st));
	l7_emit_done(&f, &x);
	l7_announce(&f, MT_PROTO_REDIS, 7, 1, 2, "GET", 3);
	assert_int_equal(st.exchanges, 2);
	/* Sequence numbers: the wire's when known, else a count that is never 0. */
	assert_int_equal(l7_request_seq(1000, 5, &counter), 1005);
	assert_int_equal(l7_request_seq(0, 5, &counter), 1);
	counter = UINT32_MAX;
	assert_int_equal(l7_request_seq(0, 5, &counter), 1);
}

/* A toy parser written against its own state type, registered through L7_PARSER(). */
struct toy_conn {
	int inits, feeds, closes;
	uint64_t last_ts;
};

static int toy_init(struct toy_conn *c)
{
	c->inits++;
	return -1; /* ignored by the registry entry */
}

static void toy_feed(struct toy_conn *c, bool c2s, const struct mt_chunk *ch, mt_exchange_fn emit,
		     void *ctx, struct l7_stats *stats)
{
	(void)c2s, (void)emit, (void)ctx;
	c->feeds++;
	c->last_ts = ch->ts_ns;
	stats->requests++;
}

static void toy_close(struct toy_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		      struct l7_stats *stats)
{
	(void)emit, (void)ctx, (void)stats;
	c->closes++;
	c->last_ts = ts_ns;
}

static enum l7_verdict toy_detect(const uint8_t *buf, size_t n)
{
	return l7_client_if(n > 0 && buf[0] == 'T');
}

L7_PARSER(toy_parser, struct toy_conn, toy, .protocol = MT_PROTO_UNKNOWN, .name = "toy",
	  .detect = toy_detect);

static void test_registry_entry(void **state)
{
	struct toy_conn c = {0};
	struct l7_stats st = {0};
	struct mt_chunk ch = {.data = (const uint8_t *)"T", .captured = 1, .len = 1, .ts_ns = 5};

	(void)state;
	assert_int_equal(toy_parser.state_size, sizeof(struct toy_conn));
	assert_string_equal(toy_parser.name, "toy");
	assert_null(toy_parser.release);
	assert_null(toy_parser.idle);
	assert_int_equal(toy_parser.detect((const uint8_t *)"T", 1), L7_FROM_CLIENT);
	assert_int_equal(toy_parser.detect((const uint8_t *)"x", 1), L7_NO);
	toy_parser.init(&c);
	toy_parser.feed(&c, true, &ch, NULL, NULL, &st);
	toy_parser.close(&c, 6, NULL, NULL, &st);
	assert_int_equal(c.inits, 1);
	assert_int_equal(c.feeds, 1);
	assert_int_equal(c.closes, 1);
	assert_int_equal(c.last_ts, 6);
	assert_int_equal(st.requests, 1);
}

/* Every registered parser: one registry line each, found by protocol and name. */
static void test_registry(void **state)
{
	size_t n = 0;

	(void)state;
	for (; l7_parsers[n]; n++) {
		assert_ptr_equal(l7_parser_for(l7_parsers[n]->protocol), l7_parsers[n]);
		assert_non_null(l7_parsers[n]->detect);
		assert_non_null(l7_parsers[n]->init);
		assert_non_null(l7_parsers[n]->feed);
		assert_non_null(l7_parsers[n]->close);
		assert_true(l7_parsers[n]->state_size > 0);
	}
	assert_int_equal(n, 7);
	assert_string_equal(l7_protocol_name(MT_PROTO_POSTGRES), "postgresql");
	assert_null(l7_parser_for(MT_PROTO_GRPC)); /* carried by the HTTP/2 parser */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_helpers),
		cmocka_unit_test(test_feed_begin_and_close),
		cmocka_unit_test(test_body_take_across_a_gap),
		cmocka_unit_test(test_body_take_limit_zero_keeps_nothing),
		cmocka_unit_test(test_lost_framing),
		cmocka_unit_test(test_exchanges),
		cmocka_unit_test(test_registry_entry),
		cmocka_unit_test(test_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
