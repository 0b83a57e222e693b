// SPDX-License-Identifier: Apache-2.0
/*
 * Tail keep: unsampled spans held until their local trace ends, then kept
 * whole when one of them erred or was slow, let go otherwise; spans that come
 * after the decision follow it; full tables and old traces are decided early,
 * counted; nothing is lost or handed on twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/trace/tailkeep.h"

#define MS 1000000ull

struct kept {
	unsigned n;
	uint8_t trace[64]; /* the first trace id byte of each span kept */
	uint8_t span[64];  /* the first span id byte */
};

static void on_keep(void *ctx, const struct mt_span *s)
{
	struct kept *k = ctx;

	if (k->n < sizeof(k->trace)) {
		k->trace[k->n] = s->trace_id[0];
		k->span[k->n] = s->span_id[0];
	}
	k->n++;
}

/* A span of trace @t, id @id, ending at @end_ms after lasting @dur_ms. */
static struct mt_span span(uint8_t t, uint8_t id, uint64_t end_ms, uint64_t dur_ms, bool error,
			   bool root)
{
	struct mt_span s;

	memset(&s, 0, sizeof(s));
	memset(s.trace_id, t, 16);
	s.span_id[0] = id;
	s.end_unix_ns = 1000000 * MS + end_ms * MS;
	s.start_unix_ns = s.end_unix_ns - dur_ms * MS;
	s.status = error ? MT_STATUS_ERROR : MT_STATUS_UNSET;
	s.local_root = root;
	return s;
}

static void add(struct tailkeep *t, uint8_t tr, uint8_t id, uint64_t end_ms, uint64_t dur_ms,
		bool error, bool root)
{
	struct mt_span s = span(tr, id, end_ms, dur_ms, error, root);

	tailkeep_add(t, &s);
}

static void test_enabled(void **state)
{
	struct tailkeep_config c = {0};

	(void)state;
	assert_false(tailkeep_enabled(&c));
	c.keep_errors = true;
	assert_true(tailkeep_enabled(&c));
	c.keep_errors = false;
	c.slow_ns = 1;
	assert_true(tailkeep_enabled(&c));
}

/* An error anywhere in the local trace keeps all of it, in arrival order, when its root ends. */
static void test_error_trace_kept_whole(void **state)
{
	struct tailkeep_config c = {.keep_errors = true};
	struct kept k = {0};
	struct tailkeep *t = tailkeep__new(&c, on_keep, &k);
	struct tailkeep_stats st;

	(void)state;
	assert_non_null(t);
	add(t, 1, 10, 1, 1, false, false);
	add(t, 1, 11, 2, 1, true, false); /* the backend failed */
	add(t, 2, 20, 2, 1, false, false);
	assert_int_equal(k.n, 0);	  /* held */
	add(t, 1, 12, 3, 3, false, true); /* the root: trace 1 ends */
	assert_int_equal(k.n, 3);
	assert_memory_equal(k.span, "\x0a\x0b\x0c", 3);
	add(t, 2, 21, 3, 2, false, true); /* trace 2 ends fine: let go */
	assert_int_equal(k.n, 3);
	tailkeep_stats(t, &st);
	assert_int_equal(st.spans_kept, 3);
	assert_int_equal(st.spans_dropped, 2);
	assert_int_equal(st.traces_kept, 1);
	assert_int_equal(st.traces_dropped, 1);
	assert_int_equal(st.spans_held, 0);
	assert_int_equal(st.traces_held, 0);
	/* Late spans follow the decision; a late error turns a dropped trace to kept. */
	add(t, 1, 13, 4, 1, false, false);
	add(t, 2, 22, 4, 1, false, false);
	assert_int_equal(k.n, 4);
	add(t, 2, 23, 5, 1, true, false);
	add(t, 2, 24, 5, 1, false, false);
	assert_int_equal(k.n, 6);
	tailkeep_stats(t, &st);
	assert_int_equal(st.spans_kept, 6);
	assert_int_equal(st.spans_dropped, 3);
	assert_int_equal(st.traces_kept, 2);
	tailkeep__free(t);
}

/* Slow: a span longer than the threshold, not equal to it. Errors alone do not count then. */
static void test_slow_threshold(void **state)
{
	struct tailkeep_config c = {.slow_ns = 100 * MS};
	struct kept k = {0};
	struct tailkeep *t = tailkeep__new(&c, on_keep, &k);

	(void)state;
	add(t, 1, 10, 200, 100, false, true); /* exactly 100 ms: not slower */
	add(t, 2, 20, 200, 101, false, false);
	add(t, 2, 21, 201, 1, false, true);
	add(t, 3, 30, 201, 1, true, true); /* an error, but only slowness keeps */
	assert_int_equal(k.n, 2);
	assert_memory_equal(k.trace, "\x02\x02", 2);
	tailkeep__free(t);
}

/* Full tables decide the oldest trace early (counted); nothing is lost or kept twice. */
static void test_bounds(void **state)
{
	struct tailkeep_config c = {.keep_errors = true, .max_spans = 4, .max_traces = 3};
	struct kept k = {0};
	struct tailkeep *t = tailkeep__new(&c, on_keep, &k);
	struct tailkeep_stats st;

	(void)state;
	/* Span pool: trace 1 holds 3 spans with an error, trace 2 needs room. */
	add(t, 1, 10, 1, 1, true, false);
	add(t, 1, 11, 1, 1, false, false);
	add(t, 1, 12, 1, 1, false, false);
	add(t, 2, 20, 1, 1, false, false);
	add(t, 2, 21, 1, 1, false, false); /* full: trace 1 decided, kept */
	assert_int_equal(k.n, 3);
	tailkeep_stats(t, &st);
	assert_int_equal(st.traces_evicted, 1);
	assert_int_equal(st.spans_held, 2);
	add(t, 1, 13, 2, 1, false, true); /* its root, late: kept as decided */
	assert_int_equal(k.n, 4);
	/* Trace table, 3 slots: 3 takes the free one, 4 trace 1's (decided), 5 evicts 2. */
	add(t, 3, 30, 2, 1, false, false);
	add(t, 4, 40, 2, 1, true, false);
	tailkeep_stats(t, &st);
	assert_int_equal(st.traces_evicted, 1);
	add(t, 5, 50, 2, 1, false, false);
	tailkeep_stats(t, &st);
	assert_int_equal(st.traces_evicted, 2);
	assert_int_equal(st.traces_dropped, 1); /* trace 2, no error */
	tailkeep_flush(t);
	tailkeep_stats(t, &st);
	assert_int_equal(k.n, 5); /* + trace 4's error span */
	assert_int_equal(st.spans_kept + st.spans_dropped, 9);
	assert_int_equal(st.spans_held, 0);
	assert_int_equal(st.traces_held, 0);
	tailkeep__free(t);
}

/* A trace whose root never comes is decided after the hold time, by the spans' clock. */
static void test_expiry(void **state)
{
	struct tailkeep_config c = {.keep_errors = true, .hold_ns = 1000 * MS};
	struct kept k = {0};
	struct tailkeep *t = tailkeep__new(&c, on_keep, &k);
	struct tailkeep_stats st;

	(void)state;
	add(t, 1, 0, 10, 1, true, false);
	add(t, 2, 0, 500, 1, false, false);
	add(t, 3, 0, 1015, 1, false, false); /* trace 1 is past its hold time */
	assert_int_equal(k.n, 1);
	add(t, 3, 1, 1600, 1, false, false); /* trace 2 too, not 3 */
	tailkeep_stats(t, &st);
	assert_int_equal(st.traces_expired, 2);
	assert_int_equal(st.traces_held, 1);
	tailkeep__free(t);
	tailkeep__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enabled),
		cmocka_unit_test(test_error_trace_kept_whole),
		cmocka_unit_test(test_slow_threshold),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
