// SPDX-License-Identifier: Apache-2.0
/*
 * The sampler: every value of OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG,
 * the values refused with one line, the ratio's determinism and accuracy on
 * random trace ids, and parent-based decisions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/trace/sampler.h"

static const uint8_t zero_id[16];

static int parse(struct mt_sampler *s, const char *name, const char *arg, char *err, size_t n)
{
	err[0] = '\0';
	return mt_sampler_parse(s, name, arg, err, n);
}

/* xorshift64*: the same ids on every run. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ull;
}

static void random_id(uint64_t *x, uint8_t id[16])
{
	uint64_t a = rnd(x), b = rnd(x);

	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
}

static void test_defaults(void **state)
{
	struct mt_sampler s;
	char err[256];

	(void)state;
	assert_int_equal(parse(&s, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.root, MT_SAMPLE_ALWAYS_ON);
	assert_false(s.parent_based);
	assert_string_equal(mt_sampler_name(&s), "always_on");
	assert_true(mt_sampler_sample(&s, zero_id, MT_PARENT_NONE));
	/* An empty value is unset. */
	assert_int_equal(parse(&s, "", "", err, sizeof(err)), 0);
	assert_string_equal(mt_sampler_name(&s), "always_on");
	assert_int_equal(parse(&s, "  ", NULL, err, sizeof(err)), 0);
	assert_string_equal(mt_sampler_name(&s), "always_on");
	/* The ARG without a ratio sampler is ignored, even when it is not a number. */
	assert_int_equal(parse(&s, NULL, "x", err, sizeof(err)), 0);
	assert_int_equal(parse(&s, "always_off", "x", err, sizeof(err)), 0);
	assert_int_equal(parse(&s, "parentbased_always_on", "2", err, sizeof(err)), 0);
}

static void test_every_name(void **state)
{
	static const struct {
		const char *name;
		uint8_t root;
		bool pb;
	} cases[] = {
		{"always_on", MT_SAMPLE_ALWAYS_ON, false},
		{"always_off", MT_SAMPLE_ALWAYS_OFF, false},
		{"traceidratio", MT_SAMPLE_RATIO, false},
		{"parentbased_always_on", MT_SAMPLE_ALWAYS_ON, true},
		{"parentbased_always_off", MT_SAMPLE_ALWAYS_OFF, true},
		{"parentbased_traceidratio", MT_SAMPLE_RATIO, true},
		{"ALWAYS_OFF", MT_SAMPLE_ALWAYS_OFF, false},
		{" traceidratio\n", MT_SAMPLE_RATIO, false},
	};
	struct mt_sampler s;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&s, cases[i].name, NULL, err, sizeof(err)), 0);
		assert_int_equal(s.root, cases[i].root);
		assert_int_equal(s.parent_based, cases[i].pb);
		if (i < 6)
			assert_string_equal(mt_sampler_name(&s), cases[i].name);
		if (s.root == MT_SAMPLE_RATIO) /* ARG unset: 1.0 */
			assert_true(s.ratio == 1.0 && s.threshold == 0);
	}
	assert_int_equal(parse(&s, "always_off", NULL, err, sizeof(err)), 0);
	assert_false(mt_sampler_sample(&s, zero_id, MT_PARENT_NONE));
}

static void test_bad_names(void **state)
{
	static const char *bad[] = {
		"jaeger_remote",   "parentbased_jaeger_remote", "xray", "on", "always",
		"traceidratio0.5", "always_on,always_off"};
	struct mt_sampler s;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&s, bad[i], "0.5", err, sizeof(err)), -1);
		assert_non_null(strstr(err, "OTEL_TRACES_SAMPLER='"));
		assert_non_null(strstr(err, bad[i]));
		assert_non_null(strstr(err, MT_SAMPLER_ACCEPTED));
		assert_null(strchr(err, '\n'));
	}
}

static void test_args(void **state)
{
	static const char *good[] = {"0", "1", "0.1", "0.25", " 0.5 ", "1.0", "1e-1", ".5", "0."};
	static const double val[] = {0, 1, 0.1, 0.25, 0.5, 1.0, 0.1, 0.5, 0};
	static const char *bad[] = {"-0.1", "1.1",   "2",   "abc", "0.5x",   "nan",
				    "inf",  "0x0.8", "1e3", "- 1", "0.5 0.5"};
	struct mt_sampler s;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(parse(&s, "traceidratio", good[i], err, sizeof(err)), 0);
		assert_true(s.ratio == val[i]);
		assert_int_equal(parse(&s, "parentbased_traceidratio", good[i], err, sizeof(err)),
				 0);
		assert_true(s.ratio == val[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&s, "traceidratio", bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "OTEL_TRACES_SAMPLER_ARG='"));
		assert_non_null(strstr(err, bad[i]));
		assert_non_null(strstr(err, "from 0 to 1"));
		assert_int_equal(parse(&s, "parentbased_traceidratio", bad[i], err, sizeof(err)),
				 -1);
	}
	/* Empty is unset: 1.0. */
	assert_int_equal(parse(&s, "traceidratio", "", err, sizeof(err)), 0);
	assert_true(s.ratio == 1.0);
}

/* The spec's rule on chosen ids: R = the 56 low bits, kept when R >= (1 - ratio) * 2^56. */
static void test_threshold(void **state)
{
	struct mt_sampler s;
	uint8_t id[16] = {0};
	char err[256];

	(void)state;
	assert_int_equal(parse(&s, "traceidratio", "0.5", err, sizeof(err)), 0);
	assert_true(s.threshold == 1ull << 55);
	id[9] = 0x80; /* R = 2^55: kept */
	assert_true(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	id[9] = 0x7f; /* R = 2^55 - 1 + ... */
	memset(id + 10, 0xff, 6);
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	/* The first 9 bytes are not randomness. */
	memset(id, 0xff, 9);
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	/* 0: nothing, not even the largest R; 1: everything, even R = 0. */
	assert_int_equal(parse(&s, "traceidratio", "0", err, sizeof(err)), 0);
	memset(id, 0xff, 16);
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	assert_int_equal(parse(&s, "traceidratio", "1", err, sizeof(err)), 0);
	assert_true(mt_sampler_sample(&s, zero_id, MT_PARENT_NONE));
}

static void test_ratio_accuracy_and_determinism(void **state)
{
	static const double ratios[] = {0.001, 0.1, 0.25, 0.5, 0.9};
	const int n = 100000;

	(void)state;
	for (size_t r = 0; r < sizeof(ratios) / sizeof(ratios[0]); r++) {
		struct mt_sampler s, lower;
		char arg[32], err[256];
		uint64_t x = 0x9e3779b97f4a7c15ull;
		int kept = 0;
		double expect, sd;

		snprintf(arg, sizeof(arg), "%g", ratios[r]);
		assert_int_equal(parse(&s, "traceidratio", arg, err, sizeof(err)), 0);
		assert_int_equal(parse(&lower, "traceidratio", "0.0005", err, sizeof(err)), 0);
		for (int i = 0; i < n; i++) {
			uint8_t id[16];
			bool d;

			random_id(&x, id);
			d = mt_sampler_sample(&s, id, MT_PARENT_NONE);
			/* The same id, the same answer; kept at a lower ratio: kept here. */
			assert_int_equal(d, mt_sampler_sample(&s, id, MT_PARENT_NONE));
			if (mt_sampler_sample(&lower, id, MT_PARENT_NONE))
				assert_true(d);
			kept += d;
		}
		expect = ratios[r] * n;
		sd = sqrt(n * ratios[r] * (1 - ratios[r]));
		assert_true(kept > expect - 5 * sd && kept < expect + 5 * sd);
	}
}

static void test_parent_based(void **state)
{
	struct mt_sampler s;
	uint8_t id[16];
	char err[256];

	(void)state;
	memset(id, 0xff, sizeof(id)); /* kept by any ratio > 0 */
	assert_int_equal(parse(&s, "parentbased_always_on", NULL, err, sizeof(err)), 0);
	assert_true(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	assert_true(mt_sampler_sample(&s, id, MT_PARENT_REMOTE_SAMPLED));
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_REMOTE_NOT_SAMPLED));
	assert_int_equal(parse(&s, "parentbased_always_off", NULL, err, sizeof(err)), 0);
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	assert_true(mt_sampler_sample(&s, id, MT_PARENT_REMOTE_SAMPLED));
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_REMOTE_NOT_SAMPLED));
	assert_int_equal(parse(&s, "parentbased_traceidratio", "0.5", err, sizeof(err)), 0);
	assert_true(mt_sampler_sample(&s, id, MT_PARENT_NONE));
	assert_false(mt_sampler_sample(&s, zero_id, MT_PARENT_NONE));
	assert_true(mt_sampler_sample(&s, zero_id, MT_PARENT_REMOTE_SAMPLED));
	assert_false(mt_sampler_sample(&s, id, MT_PARENT_REMOTE_NOT_SAMPLED));
	/* Not parent-based: the parent does not matter. */
	assert_int_equal(parse(&s, "always_on", NULL, err, sizeof(err)), 0);
	assert_true(mt_sampler_sample(&s, id, MT_PARENT_REMOTE_NOT_SAMPLED));
	assert_int_equal(parse(&s, "traceidratio", "0.5", err, sizeof(err)), 0);
	assert_false(mt_sampler_sample(&s, zero_id, MT_PARENT_REMOTE_SAMPLED));
}

static void test_from_env(void **state)
{
	struct mt_sampler s;
	char err[256];

	(void)state;
	setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "0.1", 1);
	assert_int_equal(mt_sampler_from_env(&s, err, sizeof(err)), 0);
	assert_true(s.root == MT_SAMPLE_RATIO && s.ratio == 0.1);
	setenv("OTEL_TRACES_SAMPLER", "xray", 1);
	assert_int_equal(mt_sampler_from_env(&s, err, sizeof(err)), -1);
	unsetenv("OTEL_TRACES_SAMPLER");
	unsetenv("OTEL_TRACES_SAMPLER_ARG");
	assert_int_equal(mt_sampler_from_env(&s, err, sizeof(err)), 0);
	assert_int_equal(s.root, MT_SAMPLE_ALWAYS_ON);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_name),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_ratio_accuracy_and_determinism),
		cmocka_unit_test(test_parent_based),
		cmocka_unit_test(test_from_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
