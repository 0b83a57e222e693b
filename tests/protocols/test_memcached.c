// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/protocols/memcached.c on bytes recorded (tcpdump on lo) from
 * a raw-socket client against memcached 1.6.18: classic and meta commands,
 * noreply, errors; split at every position, with uncaptured gaps, garbage and
 * pipelines. Each chunk is copied to a heap buffer of exactly its captured
 * size, so the sanitizer build catches any read past the captured bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/memcached.h"

#define REC_MAX	  256
#define L7H_STATE struct memcached_conn
#define L7H_INIT  memcached_init
#define L7H_FEED  memcached_feed
#define L7H_CLOSE memcached_close
#include "tests/protocols/l7_harness.h"

static void assert_x(const struct mt_exchange *x, const char *op, uint32_t flags,
		     const char *status)
{
	assert_int_equal(x->protocol, MT_PROTO_MEMCACHED);
	assert_string_equal(x->operation, op);
	assert_int_equal(x->flags, flags);
	assert_string_equal(x->status_text, status);
	assert_string_equal(x->db_namespace, "");
	assert_string_equal(x->query_text, "");
}

/* Recorded: one connection, command and response, in order. */
static const struct {
	const char *req, *resp, *op, *status;
} SESSION[] = {
	{"set user:1 0 0 5\r\nalice\r\n", "STORED\r\n", "set", ""},
	{"get user:1\r\n", "VALUE user:1 0 5\r\nalice\r\nEND\r\n", "get", ""},
	{"add user:1 0 0 3\r\nbob\r\n", "NOT_STORED\r\n", "add", ""},
	{"set user:2 5 60 3\r\nbob\r\n", "STORED\r\n", "set", ""},
	{"get user:1 user:2 nokey\r\n",
	 "VALUE user:1 0 5\r\nalice\r\nVALUE user:2 5 3\r\nbob\r\nEND\r\n", "get", ""},
	{"gets user:1\r\n", "VALUE user:1 0 5 1\r\nalice\r\nEND\r\n", "gets", ""},
	{"cas user:1 0 0 6 999\r\nalice2\r\n", "EXISTS\r\n", "cas", ""},
	{"delete user:2\r\n", "DELETED\r\n", "delete", ""},
	{"delete user:2\r\n", "NOT_FOUND\r\n", "delete", ""},
	{"set n 0 0 1\r\n5\r\n", "STORED\r\n", "set", ""},
	{"incr n 10\r\n", "15\r\n", "incr", ""},
	{"decr n 100\r\n", "0\r\n", "decr", ""},
	{"incr user:1 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
	 "incr", "CLIENT_ERROR"},
	{"touch n 100\r\n", "TOUCHED\r\n", "touch", ""},
	{"bogus\r\n", "ERROR\r\n", "unknown", "ERROR"},
	{"append n 0 0 2\r\n00\r\n", "STORED\r\n", "append", ""},
	{"mg user:1 v f t\r\n", "VA 5 f0 t-1\r\nalice\r\n", "mg", ""},
	{"ms m1 2 T60\r\nhi\r\n", "HD\r\n", "ms", ""},
	{"mn\r\n", "MN\r\n", "mn", ""},
	{"version\r\n", "VERSION 1.6.18\r\n", "version", ""},
	{"get user:1 VALUE\r\n", "END\r\n", "get", ""},
};
#define N_SESSION (sizeof(SESSION) / sizeof(SESSION[0]))

static void test_detect(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_SESSION; i++) {
		if (strcmp(SESSION[i].op, "unknown") != 0)
			assert_true(memcached_detect((const uint8_t *)SESSION[i].req,
						     strlen(SESSION[i].req)));
	}
	assert_true(memcached_detect((const uint8_t *)"get k", 5));
	assert_true(memcached_detect((const uint8_t *)"set k 0 -1 3\r\nabc\r\n", 19));
	assert_false(memcached_detect((const uint8_t *)"set k x 0 3\r\nabc\r\n", 18));
	assert_false(memcached_detect((const uint8_t *)"set k 0 0\r\n", 11));
	assert_false(memcached_detect((const uint8_t *)"get \r\n", 6));
	assert_false(memcached_detect((const uint8_t *)"quit\r\n", 6));
	assert_false(memcached_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
	assert_false(memcached_detect((const uint8_t *)"getx k\r\n", 8));
	assert_false(memcached_detect((const uint8_t *)"*2\r\n$3\r\nGET\r\n", 13));
	assert_false(memcached_detect((const uint8_t *)"STORED\r\n", 8));
	assert_false(memcached_detect(NULL, 0));
}

static void test_session(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (size_t i = 0; i < N_SESSION; i++) {
		feed_str(h, C2S, SESSION[i].req, 10 * i + 1);
		feed_str(h, S2C, SESSION[i].resp, 10 * i + 2);
		assert_int_equal(h->n, (int)i + 1);
		assert_x(&h->x[i], SESSION[i].op, SESSION[i].status[0] ? MT_X_ERROR : 0,
			 SESSION[i].status);
		assert_int_equal(h->x[i].req_start_ns, 10 * i + 1);
		assert_int_equal(h->x[i].resp_start_ns, 10 * i + 2);
	}
	assert_int_equal(h->st.requests, N_SESSION);
	assert_int_equal(h->st.responses, N_SESSION);
	assert_int_equal(h->st.garbage_bytes + h->st.resyncs + h->st.orphan_responses, 0);
	assert_seqs(h);
	test_free(h);
}

static void test_every_split(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (size_t i = 0; i < N_SESSION; i++) {
		size_t rn = strlen(SESSION[i].req), sn = strlen(SESSION[i].resp);

		for (size_t k = 0; k <= rn || k <= sn; k++) {
			size_t a = k < rn ? k : rn, b = k < sn ? k : sn;

			harness_reset(h);
			feed(h, C2S, SESSION[i].req, a, 1);
			feed(h, C2S, SESSION[i].req + a, rn - a, 2);
			feed(h, S2C, SESSION[i].resp, b, 3);
			assert_int_equal(h->n, b == sn ? 1 : 0);
			feed(h, S2C, SESSION[i].resp + b, sn - b, 4);
			assert_int_equal(h->n, 1);
			assert_x(&h->x[0], SESSION[i].op, SESSION[i].status[0] ? MT_X_ERROR : 0,
				 SESSION[i].status);
			assert_int_equal(h->x[0].resp_start_ns, b ? 3 : 4);
			assert_int_equal(h->st.garbage_bytes + h->st.resyncs, 0);
		}
	}
	/* everything in one write each way (a pipeline), then one byte per call */
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		harness_reset(h);
		for (size_t i = 0; i < N_SESSION; i++) {
			if (bytewise)
				for (const char *p = SESSION[i].req; *p; p++)
					feed(h, C2S, p, 1, 1);
			else
				feed_str(h, C2S, SESSION[i].req, 1);
		}
		for (size_t i = 0; i < N_SESSION; i++) {
			if (bytewise)
				for (const char *p = SESSION[i].resp; *p; p++)
					feed(h, S2C, p, 1, 2);
			else
				feed_str(h, S2C, SESSION[i].resp, 2);
		}
		assert_int_equal(h->n, N_SESSION);
		for (size_t i = 0; i < N_SESSION; i++)
			assert_string_equal(h->x[i].operation, SESSION[i].op);
	}
	test_free(h);
}

/* noreply and quit: no response comes, the exchange is emitted with the request. */
static void test_noreply(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, "set q 0 0 1 noreply\r\nx\r\nget q\r\n", 1);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "set", 0, "");
	assert_int_equal(h->x[0].resp_end_ns, 0);
	feed_str(h, S2C, "VALUE q 0 1\r\nx\r\nEND\r\n", 2);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[1], "get", 0, "");
	feed_str(h, C2S, "delete q noreply\r\nflush_all noreply\r\nquit\r\n", 3);
	assert_int_equal(h->n, 5);
	assert_x(&h->x[2], "delete", 0, "");
	assert_x(&h->x[3], "flush_all", 0, "");
	assert_x(&h->x[4], "quit", 0, "");
	close_conn(h, 4);
	assert_int_equal(h->n, 5);
	assert_int_equal(h->st.orphan_responses, 0);
	test_free(h);
}

/* A bad data chunk: memcached answers CLIENT_ERROR, then ERROR for what follows (recorded). */
static void test_bad_chunk(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, "set bad 0 0 2\r\nabcd\r\n", 1);
	feed_str(h, S2C, "CLIENT_ERROR bad data chunk\r\nERROR\r\n", 2);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[0], "set", MT_X_ERROR, "CLIENT_ERROR");
	assert_x(&h->x[1], "unknown", MT_X_ERROR, "ERROR");
	feed_str(h, C2S, "get a\r\n", 3);
	feed_str(h, S2C, "END\r\n", 4);
	assert_x(&h->x[2], "get", 0, "");
	assert_int_equal(h->st.orphan_responses, 0);
	test_free(h);
}

/* Values longer than the capture (recorded: 3000-byte value, 512 bytes captured). */
static void test_big_values(void **state)
{
	struct harness *h = harness_new();
	static char req[3100], resp[3100], multi[8000];
	size_t rn, sn, mn;

	(void)state;
	rn = (size_t)snprintf(req, sizeof(req), "set big 0 0 3000\r\n");
	memset(req + rn, 'y', 3000);
	memcpy(req + rn + 10, "\r\nget x\r\n", 9); /* inside the value: not a command */
	memcpy(req + rn + 3000, "\r\n", 2);
	rn += 3002;
	feed_gap(h, C2S, req, 512, rn, 1);
	feed_str(h, S2C, "STORED\r\n", 2);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "set", 0, "");

	feed_str(h, C2S, "get big\r\n", 3);
	sn = (size_t)snprintf(resp, sizeof(resp), "VALUE big 0 3000\r\n");
	memset(resp + sn, 'y', 3000);
	memcpy(resp + sn + 3000, "\r\nEND\r\n", 7);
	sn += 3007;
	feed_gap(h, S2C, resp, 512, sn, 4);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[1], "get", MT_X_END_GUESSED, ""); /* END was in the gap */
	assert_int_equal(h->x[1].resp_end_ns, 4);

	/* two big values: the second VALUE line is in the gap; found again at the next command */
	feed_str(h, C2S, "get big big\r\n", 5);
	mn = (size_t)snprintf(multi, sizeof(multi), "VALUE big 0 3000\r\n");
	memset(multi + mn, 'y', 3000);
	mn += 3000;
	mn += (size_t)snprintf(multi + mn, sizeof(multi) - mn, "\r\nVALUE big 0 3000\r\n");
	memset(multi + mn, 'y', 3000);
	mn += 3000;
	mn += (size_t)snprintf(multi + mn, sizeof(multi) - mn, "\r\nEND\r\n");
	feed_gap(h, S2C, multi, 512, 4000, 6);
	feed_gap(h, S2C, multi + 4000, 512, mn - 4000, 7); /* starts with 'y': a continuation */
	assert_int_equal(h->n, 2);
	feed_str(h, C2S, "delete big\r\n", 8);
	feed_str(h, S2C, "DELETED\r\n", 9);
	assert_int_equal(h->n, 4);
	assert_x(&h->x[2], "get", MT_X_END_GUESSED, "");
	assert_int_equal(h->x[2].resp_end_ns, 7);
	assert_x(&h->x[3], "delete", 0, "");
	assert_int_equal(h->st.resyncs, 1);
	test_free(h);
}

/* Quiet meta commands get no response on success; the mn that follows says so. */
static void test_meta_quiet(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed_str(h, C2S, "ms a 1 q\r\n1\r\nmd b q\r\nmn\r\n", 1);
	feed_str(h, S2C, "MN\r\n", 2);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[0], "ms", 0, "");
	assert_int_equal(h->x[0].resp_end_ns, 0);
	assert_x(&h->x[1], "md", 0, "");
	assert_x(&h->x[2], "mn", 0, "");
	assert_int_equal(h->x[2].resp_end_ns, 2);
	/* a quiet command that fails does answer */
	feed_str(h, C2S, "md c q\r\nmn\r\n", 3);
	feed_str(h, S2C, "NF\r\nMN\r\n", 4);
	assert_int_equal(h->n, 5);
	assert_x(&h->x[3], "md", 0, "");
	assert_int_equal(h->x[3].resp_end_ns, 4);
	assert_x(&h->x[4], "mn", 0, "");
	test_free(h);
}

static void test_pipeline_overflow(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (int i = 0; i < MEMCACHED_PIPELINE_MAX + 10; i++)
		feed_str(h, C2S, "get k\r\n", 1);
	assert_int_equal(h->st.pipeline_drops, 10);
	for (int i = 0; i < MEMCACHED_PIPELINE_MAX + 10; i++)
		feed_str(h, S2C, "END\r\n", 2);
	assert_int_equal(h->n, MEMCACHED_PIPELINE_MAX);
	feed_str(h, C2S, "incr n 1\r\n", 3);
	feed_str(h, S2C, "NOT_FOUND\r\n", 4);
	assert_x(&h->x[MEMCACHED_PIPELINE_MAX], "incr", 0, "");
	assert_int_equal(h->st.orphan_responses, 0);
	test_free(h);
}

static void test_garbage_and_close(void **state)
{
	struct harness *h = harness_new();
	uint8_t junk[300];

	(void)state;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 13 + 1);
	junk[0] = 0x80; /* the binary protocol's magic: not the text protocol */
	feed(h, C2S, junk, sizeof(junk), 1);
	assert_int_equal(h->st.garbage_bytes, sizeof(junk));
	feed_str(h, C2S, "get a\r\n", 2);
	feed(h, S2C, junk, sizeof(junk), 3);
	feed_str(h, C2S, "get b\r\n", 4);
	feed_str(h, S2C, "END\r\n", 5);
	assert_int_equal(h->n, 2);
	assert_x(&h->x[0], "get", MT_X_END_GUESSED, "");
	assert_x(&h->x[1], "get", 0, "");
	feed_str(h, C2S, "get c\r\nset d 0 0 1\r\n", 6);
	close_conn(h, 7);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[2], "get", MT_X_NO_RESPONSE, "");
	test_free(h);
}

static void test_fuzz(void **state)
{
	struct harness *h = harness_new();
	uint64_t rng = 0xD1B54A32D192ED03ull;
	static char src[4096];
	size_t sn = 0;

	(void)state;
	for (size_t i = 0; i < N_SESSION; i++)
		sn += (size_t)snprintf(src + sn, sizeof(src) - sn, "%s%s", SESSION[i].req,
				       SESSION[i].resp);
	for (int round = 0; round < 3000; round++) {
		size_t off, n, cap;
		char tmp[80];

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		off = rng % sn;
		n = 1 + (rng >> 16) % 79;
		if (off + n > sn)
			n = sn - off;
		cap = (rng >> 24) % 4 ? n : (rng >> 32) % (n + 1);
		memcpy(tmp, src + off, n);
		if ((rng >> 40) % 8 == 0)
			tmp[(rng >> 44) % n] ^= (char)(rng >> 52);
		feed_gap(h, (rng >> 8) & 1, tmp, cap,
			 n + ((rng >> 56) % 4 ? 0 : (rng >> 20) % 4000), round);
		if (h->n > REC_MAX - 80)
			h->n = 0;
		assert_true(h->c.count <= MEMCACHED_PIPELINE_MAX);
	}
	close_conn(h, 1);
	assert_int_equal(h->c.count, 0);
	test_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_noreply),
		cmocka_unit_test(test_bad_chunk),
		cmocka_unit_test(test_big_values),
		cmocka_unit_test(test_meta_quiet),
		cmocka_unit_test(test_pipeline_overflow),
		cmocka_unit_test(test_garbage_and_close),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
