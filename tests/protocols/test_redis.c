// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/protocols/redis.c on bytes recorded (tcpdump on lo) from
 * redis-cli 7.0 and a raw-socket client against redis-server 7.0.15, RESP2
 * and RESP3; split at every position, with uncaptured gaps, garbage, and
 * pipelines deeper than the parser keeps. Every chunk is copied to a heap
 * buffer of exactly its captured size, so the sanitizer build catches any
 * read past the captured bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/redis.h"

#define REC_MAX	  512
#define L7H_STATE struct redis_conn
#define L7H_INIT  redis_init
#define L7H_FEED  redis_feed
#define L7H_CLOSE redis_close
#include "tests/protocols/l7_harness.h"

static void assert_x(const struct mt_exchange *x, const char *op, uint32_t flags,
		     const char *status)
{
	assert_int_equal(x->protocol, MT_PROTO_REDIS);
	assert_string_equal(x->operation, op);
	assert_int_equal(x->flags, flags);
	assert_string_equal(x->status_text, status);
	assert_string_equal(x->query_text, "");
}

/* redis-cli 7.0.15, one connection per command (recorded). */
static const char *const CLI[][2] = {
	{"*3\r\n$3\r\nSET\r\n$6\r\nuser:1\r\n$5\r\nalice\r\n", "+OK\r\n"},
	{"*2\r\n$3\r\nGET\r\n$6\r\nuser:1\r\n", "$5\r\nalice\r\n"},
	{"*2\r\n$4\r\nINCR\r\n$6\r\nuser:1\r\n",
	 "-ERR value is not an integer or out of range\r\n"},
	{"*2\r\n$3\r\nGET\r\n$5\r\nnokey\r\n", "$-1\r\n"},
	{"*5\r\n$5\r\nLPUSH\r\n$4\r\nlist\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", ":3\r\n"},
	{"*4\r\n$6\r\nLRANGE\r\n$4\r\nlist\r\n$1\r\n0\r\n$2\r\n-1\r\n",
	 "*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n"},
	{"*6\r\n$4\r\nHSET\r\n$1\r\nh\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n",
	 ":2\r\n"},
	{"*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n",
	 "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"},
	/* RESP3 (redis-cli -3) */
	{"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
	 "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:"
	 "3\r\n"
	 "$2\r\nid\r\n:13\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
	 "$7\r\nmodules\r\n*0\r\n"},
	{"*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n",
	 "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"},
	{"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\n",
	 "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"},
};
static const char *const CLI_OPS[] = {"SET",  "GET",	 "INCR",  "GET",     "LPUSH", "LRANGE",
				      "HSET", "HGETALL", "HELLO", "HGETALL", "CONFIG"};
#define N_CLI (sizeof(CLI) / sizeof(CLI[0]))

/* req_seq is the TCP sequence number of each request's first byte: both ends agree on it. */
static void test_request_seq_is_the_stream_position(void **state)
{
	static const char two[] = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, two, 1);
	feed_str(h, S2C, "+PONG\r\n$-1\r\n", 2);
	assert_int_equal(h->n, 2);
	assert_int_equal(h->x[0].req_seq, 1000);
	assert_int_equal(h->x[1].req_seq, 1000 + 14); /* "*1\r\n$4\r\nPING\r\n" */
	test_free(h);
}

static void test_detect(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CLI; i++)
		assert_true(redis_detect((const uint8_t *)CLI[i][0], strlen(CLI[i][0])));
	assert_true(redis_detect((const uint8_t *)"PING\r\n", 6));
	assert_true(redis_detect((const uint8_t *)"SELECT 2\r\n", 10));
	assert_true(redis_detect((const uint8_t *)"*1\r\n$8\r\nJSON.GET\r\n", 18));
	/* replies, other protocols, and commands cut before their name ends */
	assert_false(redis_detect((const uint8_t *)"+OK\r\n", 5));
	assert_false(redis_detect((const uint8_t *)"*3\r\n$3\r\nSE", 10));
	assert_false(redis_detect((const uint8_t *)"*3\r\n:3\r\n", 8));
	assert_false(redis_detect((const uint8_t *)"*0\r\n", 4));
	assert_false(redis_detect((const uint8_t *)"*1\r\n$3\r\n1AB\r\n", 13));
	assert_false(redis_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
	assert_false(redis_detect((const uint8_t *)"get user:1\r\n", 12));
	assert_false(redis_detect((const uint8_t *)"PINGPONG\r\n", 10));
	assert_false(redis_detect((const uint8_t *)"\0\0\0\x08\x04\xd2\x16/", 8));
	assert_false(redis_detect(NULL, 0));
}

static void test_cli_session(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (size_t i = 0; i < N_CLI; i++) {
		feed_str(h, C2S, CLI[i][0], 100 * i + 1);
		assert_int_equal(h->n, (int)i);
		feed_str(h, S2C, CLI[i][1], 100 * i + 2);
		assert_int_equal(h->n, (int)i + 1);
		assert_x(&h->x[i], CLI_OPS[i], i == 2 ? MT_X_ERROR : 0, i == 2 ? "ERR" : "");
		assert_int_equal(h->x[i].req_start_ns, 100 * i + 1);
		assert_int_equal(h->x[i].resp_end_ns, 100 * i + 2);
		assert_string_equal(h->x[i].db_namespace, "");
	}
	assert_int_equal(h->st.requests, N_CLI);
	assert_int_equal(h->st.responses, N_CLI);
	assert_int_equal(h->st.exchanges, N_CLI);
	assert_int_equal(h->st.garbage_bytes + h->st.resyncs + h->st.orphan_responses, 0);
	assert_seqs(h);
	close_conn(h, 9999);
	assert_int_equal(h->n, N_CLI);
	test_free(h);
}

/* The same session split at every byte, both directions, one split point per run. */
static void test_every_split(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (size_t i = 0; i < N_CLI; i++) {
		size_t rn = strlen(CLI[i][0]), sn = strlen(CLI[i][1]);

		for (size_t k = 0; k <= rn || k <= sn; k++) {
			size_t a = k < rn ? k : rn, b = k < sn ? k : sn;

			memset(h, 0, sizeof(*h));
			redis_init(&h->c);
			feed(h, C2S, CLI[i][0], a, 1);
			feed(h, C2S, CLI[i][0] + a, rn - a, 2);
			feed(h, S2C, CLI[i][1], b, 3);
			assert_int_equal(h->n, b == sn ? 1 : 0);
			feed(h, S2C, CLI[i][1] + b, sn - b, 4);
			assert_int_equal(h->n, 1);
			assert_x(&h->x[0], CLI_OPS[i], i == 2 ? MT_X_ERROR : 0,
				 i == 2 ? "ERR" : "");
			assert_int_equal(h->x[0].req_start_ns, a ? 1 : 2);
			assert_int_equal(h->x[0].resp_start_ns, b ? 3 : 4);
			assert_int_equal(h->x[0].resp_end_ns, b == sn ? 3 : 4);
			assert_int_equal(h->st.garbage_bytes + h->st.resyncs, 0);
		}
	}
	/* one byte per chunk, a whole RESP3 session */
	memset(h, 0, sizeof(*h));
	redis_init(&h->c);
	for (size_t i = 0; i < N_CLI; i++) {
		for (const char *p = CLI[i][0]; *p; p++)
			feed(h, C2S, p, 1, 10);
		for (const char *p = CLI[i][1]; *p; p++)
			feed(h, S2C, p, 1, 20);
	}
	assert_int_equal(h->n, N_CLI);
	test_free(h);
}

/* A value longer than the capture: skipped by its length, never mistaken for commands. */
static void test_big_values_in_gaps(void **state)
{
	struct harness *h = harness_new();
	char req[2100], resp[2100];
	int rn, sn;

	(void)state;
	rn = snprintf(req, sizeof(req), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$2000\r\n");
	memset(req + rn, '*', 2000); /* '*' and "\r\n" inside: must not look like RESP */
	memcpy(req + rn + 10, "\r\n*1\r\n$4\r\nPING\r\n", 16);
	memcpy(req + rn + 2000, "\r\n", 2);
	rn += 2002;
	feed_gap(h, C2S, req, 512, (size_t)rn, 1);
	feed_str(h, S2C, "+OK\r\n", 2);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "SET", 0, "");

	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 3);
	sn = snprintf(resp, sizeof(resp), "$2000\r\n");
	memcpy(resp + sn, req + 31, 2000);
	memcpy(resp + sn + 2000, "\r\n", 2);
	sn += 2002;
	feed_gap(h, S2C, resp, 512, (size_t)sn, 4);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[1], "GET", 0, "");
	assert_int_equal(h->x[1].resp_end_ns, 4);

	/* the same value, the reply in three syscalls, all but the first 16 bytes uncaptured */
	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 5);
	feed_gap(h, S2C, resp, 16, 700, 6);
	feed_gap(h, S2C, resp + 700, 0, 700, 7);
	assert_int_equal(h->n, 2);
	feed_gap(h, S2C, resp + 1400, 0, (size_t)sn - 1400, 8);
	assert_int_equal(h->n, 3);
	assert_int_equal(h->x[2].resp_start_ns, 6);
	assert_int_equal(h->x[2].resp_end_ns, 8);
	assert_int_equal(h->st.resyncs + h->st.garbage_bytes, 0);
	test_free(h);
}

/* redis-cli subscribe/psubscribe (RESP2), pushes interleaved with another client's publish. */
static void test_pubsub_resp2(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, "*2\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n", 1);
	feed_str(h, S2C, "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", 2);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "SUBSCRIBE", 0, "");
	feed_str(h, S2C, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n", 3);
	feed_str(h, S2C, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$7\r\nworld 2\r\n", 4);
	assert_int_equal(h->n, 1);
	/* PING in subscribed mode: its reply is an array, still a reply */
	feed_str(h, C2S, "*1\r\n$4\r\nPING\r\n", 5);
	feed_str(h, S2C,
		 "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\nx\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
		 6);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[1], "PING", 0, "");
	assert_int_equal(h->x[1].resp_start_ns, 6);
	/* psubscribe to two patterns: one exchange, the second confirmation is not an orphan */
	feed_str(h, C2S, "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n$2\r\nm*\r\n", 7);
	feed_str(h, S2C, "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n", 8);
	feed_str(h, S2C, "*3\r\n$10\r\npsubscribe\r\n$2\r\nm*\r\n:3\r\n", 9);
	feed_str(h, S2C, "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\npm\r\n", 10);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[2], "PSUBSCRIBE", 0, "");
	assert_int_equal(h->x[2].resp_end_ns, 8);
	/* unsubscribe from everything: the count reaches 0, the connection is normal again */
	feed_str(h, C2S, "*1\r\n$12\r\npunsubscribe\r\n", 11);
	feed_str(h, S2C, "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:2\r\n", 12);
	feed_str(h, S2C, "*3\r\n$12\r\npunsubscribe\r\n$2\r\nm*\r\n:1\r\n", 12);
	feed_str(h, C2S, "*1\r\n$11\r\nunsubscribe\r\n", 13);
	feed_str(h, S2C, "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n", 14);
	assert_int_equal(h->n, 5);
	assert_x(&h->x[3], "PUNSUBSCRIBE", 0, "");
	assert_x(&h->x[4], "UNSUBSCRIBE", 0, "");
	/* an ordinary reply that looks like a message is a reply once unsubscribed */
	feed_str(h, C2S, "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n", 15);
	feed_str(h, S2C, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n", 16);
	assert_int_equal(h->n, 6);
	assert_x(&h->x[5], "LRANGE", 0, "");
	assert_int_equal(h->st.orphan_responses, 0);
	assert_int_equal(h->st.responses, 6);
	test_free(h);
}

/* Recorded: HELLO 3, SUBSCRIBE ch1 ch2, PING among pushes, UNSUBSCRIBE, GET (raw client). */
static void test_pubsub_resp3(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, CLI[8][0], 1);
	feed_str(h, S2C, CLI[8][1], 2);
	feed_str(h, C2S, "*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nch1\r\n$3\r\nch2\r\n", 3);
	feed_str(h, S2C,
		 ">3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$"
		 "3\r\nch2\r\n:2\r\n",
		 4);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[1], "SUBSCRIBE", 0, "");
	feed_str(h, S2C, ">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nhi\r\n", 5);
	feed_str(h, C2S, "*1\r\n$4\r\nPING\r\n", 6);
	feed_str(h, S2C, "+PONG\r\n", 7);
	feed_str(h, S2C,
		 ">3\r\n$7\r\nmessage\r\n$3\r\nch2\r\n$50\r\n"
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
		 8);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[2], "PING", 0, "");
	assert_int_equal(h->x[2].resp_end_ns, 7);
	feed_str(h, C2S, "*1\r\n$11\r\nUNSUBSCRIBE\r\n", 9);
	feed_str(h, S2C,
		 ">3\r\n$11\r\nunsubscribe\r\n$3\r\nch2\r\n:1\r\n>3\r\n$11\r\nunsubscribe\r\n$"
		 "3\r\nch1\r\n"
		 ":0\r\n",
		 10);
	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$6\r\nuser:1\r\n", 11);
	/* a client-tracking invalidation push before the reply */
	feed_str(h, S2C, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:1\r\n$5\r\nalice\r\n", 12);
	assert_int_equal(h->n, 5);
	assert_x(&h->x[3], "UNSUBSCRIBE", 0, "");
	assert_x(&h->x[4], "GET", 0, "");
	assert_int_equal(h->st.orphan_responses, 0);
	test_free(h);
}

/* 100 commands in one write, the replies in one write, an error among them. */
static void test_pipeline(void **state)
{
	struct harness *h = harness_new();
	static char req[8192], resp[4096];
	size_t rn = 0, sn = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		if (i == 42) {
			rn += (size_t)snprintf(req + rn, sizeof(req) - rn,
					       "*3\r\n$5\r\nLPUSH\r\n$3\r\nk%02d\r\n$1\r\nz\r\n",
					       i);
			sn += (size_t)snprintf(resp + sn, sizeof(resp) - sn,
					       "-WRONGTYPE Operation against a key holding the "
					       "wrong kind of value\r\n");
		} else if (i % 2) {
			rn += (size_t)snprintf(req + rn, sizeof(req) - rn,
					       "*2\r\n$3\r\nGET\r\n$3\r\nk%02d\r\n", i);
			sn += (size_t)snprintf(resp + sn, sizeof(resp) - sn, "$1\r\n%d\r\n",
					       i % 10);
		} else {
			rn += (size_t)snprintf(req + rn, sizeof(req) - rn,
					       "*3\r\n$3\r\nSET\r\n$3\r\nk%02d\r\n$1\r\n%d\r\n", i,
					       i % 10);
			sn += (size_t)snprintf(resp + sn, sizeof(resp) - sn, "+OK\r\n");
		}
	}
	feed(h, C2S, req, rn, 1);
	assert_int_equal(h->c.count, 100);
	feed(h, S2C, resp, sn, 2);
	assert_int_equal(h->n, 100);
	for (int i = 0; i < 100; i++) {
		if (i == 42)
			assert_x(&h->x[i], "LPUSH", MT_X_ERROR, "WRONGTYPE");
		else
			assert_x(&h->x[i], i % 2 ? "GET" : "SET", 0, "");
	}
	assert_seqs(h);
	assert_int_equal(h->announced, 100);
	/* the same, at the default capture of 512 bytes per call: the commands after the
	 * captured bytes are unknown, their replies counted as orphans, nothing mispaired */
	memset(h, 0, sizeof(*h));
	redis_init(&h->c);
	feed_gap(h, C2S, req, 512, rn, 1);
	feed_gap(h, S2C, resp, 512, sn, 2);
	assert_true(h->n >= 15);
	for (int i = 0; i < h->n - 1; i++)
		assert_string_equal(h->x[i].operation, i % 2 ? "GET" : "SET");
	assert_true(h->st.orphan_responses > 0);
	test_free(h);
}

/* More commands in flight than the parser keeps: the rest are dropped and counted. */
static void test_pipeline_overflow(void **state)
{
	struct harness *h = harness_new();
	const char *cmd = "*1\r\n$4\r\nPING\r\n";

	(void)state;
	for (int i = 0; i < REDIS_PIPELINE_MAX + 50; i++)
		feed_str(h, C2S, cmd, 1);
	assert_int_equal(h->st.pipeline_drops, 50);
	for (int i = 0; i < REDIS_PIPELINE_MAX + 50; i++)
		feed_str(h, S2C, "+PONG\r\n", 2);
	assert_int_equal(h->n, REDIS_PIPELINE_MAX);
	assert_int_equal(h->st.orphan_responses, 0);
	/* back in step: the next command pairs with the next reply */
	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 3);
	feed_str(h, S2C, "$-1\r\n", 4);
	assert_int_equal(h->n, REDIS_PIPELINE_MAX + 1);
	assert_x(&h->x[REDIS_PIPELINE_MAX], "GET", 0, "");
	test_free(h);
}

/* An array reply longer than the capture: its framing is lost in the gap and found again. */
static void test_lost_aggregate(void **state)
{
	struct harness *h = harness_new();
	static char resp[8192];
	size_t sn;

	(void)state;
	sn = (size_t)snprintf(resp, sizeof(resp), "*500\r\n");
	for (int i = 0; i < 500; i++)
		sn += (size_t)snprintf(resp + sn, sizeof(resp) - sn, "$4\r\nv%03d\r\n", i);
	feed_str(h, C2S, "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n", 1);
	feed_gap(h, S2C, resp, 512, 4096, 2);
	feed_gap(h, S2C, resp + 4096, 512, sn - 4096, 3); /* continuation: looks like RESP */
	assert_int_equal(h->n, 0);
	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 4);
	feed_str(h, S2C, "$1\r\nv\r\n", 5);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[0], "LRANGE", MT_X_END_GUESSED, "");
	assert_int_equal(h->x[0].resp_end_ns, 3);
	assert_x(&h->x[1], "GET", 0, "");
	assert_int_equal(h->x[1].resp_start_ns, 5);
	assert_int_equal(h->st.resyncs, 1);
	/* a long multi-argument command: the command ends with its chunk */
	feed_gap(h, C2S, resp, 0, 0, 6); /* empty chunks change nothing */
	{
		static char mset[4096];
		size_t mn = (size_t)snprintf(mset, sizeof(mset), "*201\r\n$4\r\nMSET\r\n");

		for (int i = 0; i < 100; i++)
			mn += (size_t)snprintf(mset + mn, sizeof(mset) - mn,
					       "$4\r\nk%03d\r\n$4\r\nv%03d\r\n", i, i);
		feed_gap(h, C2S, mset, 512, mn, 7);
		feed_str(h, S2C, "+OK\r\n", 8);
		assert_int_equal(h->n, 3);
		assert_x(&h->x[2], "MSET", MT_X_REQ_TRUNCATED, "");
		feed_str(h, C2S, "*1\r\n$4\r\nPING\r\n", 9);
		feed_str(h, S2C, "+PONG\r\n", 10);
		assert_int_equal(h->n, 4);
		assert_x(&h->x[3], "PING", 0, "");
	}
	test_free(h);
}

static void test_inline_and_select(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, "PING\r\nEXISTS k1 k2\r\n\r\n", 1);
	feed_str(h, S2C, "+PONG\r\n:2\r\n", 2);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[0], "PING", 0, "");
	assert_x(&h->x[1], "EXISTS", 0, "");
	feed_str(h, C2S, "*2\r\n$6\r\nselect\r\n$1\r\n3\r\n", 3);
	feed_str(h, S2C, "+OK\r\n", 4);
	assert_x(&h->x[2], "SELECT", 0, "");
	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 5);
	feed_str(h, S2C, "$-1\r\n", 6);
	assert_string_equal(h->x[3].db_namespace, "3");
	feed_str(h, C2S, "SELECT 99\r\n", 7);
	feed_str(h, S2C, "-ERR DB index is out of range\r\n", 8);
	assert_x(&h->x[4], "SELECT", MT_X_ERROR, "ERR");
	assert_string_equal(h->x[4].db_namespace, "3");
	test_free(h);
}

/* RESP3 types from the spec: attribute, double, big number, verbatim, bool, null, set, blob error. */
static void test_resp3_types(void **state)
{
	static const char *const replies[] = {
		"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:"
		"2039123\r\n:9543892\r\n",
		",3.5\r\n",
		"(3492890328409238509324850943850943825024385\r\n",
		"=15\r\ntxt:Some string\r\n",
		"#t\r\n",
		"_\r\n",
		"~2\r\n+a\r\n*2\r\n|1\r\n+ttl\r\n:3\r\n:1\r\n_\r\n",
		"!21\r\nSYNTAX invalid syntax\r\n",
		"*-1\r\n",
	};
	struct harness *h = harness_new();

	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		feed_str(h, C2S, "*1\r\n$4\r\nTEST\r\n", 1);
		for (const char *p = replies[i]; *p; p++)
			feed(h, S2C, p, 1, 2);
		assert_int_equal(h->n, (int)i + 1);
		if (i == 7)
			assert_x(&h->x[i], "TEST", MT_X_ERROR, "SYNTAX");
		else
			assert_x(&h->x[i], "TEST", 0, "");
	}
	assert_int_equal(h->st.resyncs + h->st.garbage_bytes + h->st.orphan_responses, 0);
	test_free(h);
}

static void test_garbage_and_close(void **state)
{
	struct harness *h = harness_new();
	uint8_t junk[600];

	(void)state;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + 3);
	junk[0] = 0x01;
	feed_str(h, C2S, "*1\r\n$4\r\nPING\r\n", 1);
	feed(h, S2C, junk, sizeof(junk), 2); /* not RESP */
	assert_int_equal(h->n, 0);
	assert_true(h->st.garbage_bytes > 0);
	feed(h, S2C, "+PONG\r\n", 7, 3); /* no command sent since: still skipped */
	feed(h, C2S, junk, sizeof(junk), 4);
	feed_str(h, C2S, "*1\r\n$4\r\nPING\r\n", 5);
	feed_str(h, S2C, "+PONG\r\n", 6);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[0], "PING", MT_X_END_GUESSED, "");
	assert_x(&h->x[1], "PING", 0, "");
	feed_str(h, C2S, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n", 7);
	close_conn(h, 8);
	assert_int_equal(h->n, 4);
	assert_x(&h->x[2], "GET", MT_X_NO_RESPONSE, "");
	assert_x(&h->x[3], "PING", MT_X_NO_RESPONSE, "");
	assert_int_equal(h->c.count, 0);
	test_free(h);
}

/* Random bytes, random splits, random gaps: bounded, no crash, state stays consistent. */
static void test_fuzz(void **state)
{
	struct harness *h = harness_new();
	uint64_t rng = 0x9E3779B97F4A7C15ull;
	char src[4096];
	size_t sn = 0;

	(void)state;
	for (size_t i = 0; i < N_CLI; i++)
		sn += (size_t)snprintf(src + sn, sizeof(src) - sn, "%s%s", CLI[i][0], CLI[i][1]);
	for (int round = 0; round < 3000; round++) {
		size_t off, n, cap;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		off = rng % sn;
		n = 1 + (rng >> 16) % 80;
		if (off + n > sn)
			n = sn - off;
		cap = (rng >> 24) % 4 ? n : (rng >> 32) % (n + 1);
		if ((rng >> 40) % 16 == 0) {
			char tmp[80];

			memcpy(tmp, src + off, n);
			tmp[(rng >> 44) % n] ^= (char)(rng >> 52);
			feed_gap(h, (rng >> 8) & 1, tmp, cap, n + (rng >> 56) % 3000, round);
		} else {
			feed_gap(h, (rng >> 8) & 1, src + off, cap, n, round);
		}
		if (h->n > REC_MAX - 150)
			h->n = 0;
		assert_true(h->c.count <= REDIS_PIPELINE_MAX);
	}
	close_conn(h, 1);
	assert_int_equal(h->c.count, 0);
	test_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_request_seq_is_the_stream_position),
		cmocka_unit_test(test_cli_session),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_big_values_in_gaps),
		cmocka_unit_test(test_pubsub_resp2),
		cmocka_unit_test(test_pubsub_resp3),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_pipeline_overflow),
		cmocka_unit_test(test_lost_aggregate),
		cmocka_unit_test(test_inline_and_select),
		cmocka_unit_test(test_resp3_types),
		cmocka_unit_test(test_garbage_and_close),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
