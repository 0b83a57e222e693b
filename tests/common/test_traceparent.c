// SPDX-License-Identifier: Apache-2.0
/* The W3C traceparent header: what is valid, what decodes, and formatting back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/common/traceparent.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool valid(const char *s)
{
	return mt_traceparent_valid(s, strlen(s));
}

static void test_valid(void **state)
{
	(void)state;
	assert_int_equal(strlen(TP), MT_TRACEPARENT_LEN);
	assert_true(valid(TP));
	assert_true(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
	/* A later version may carry more fields after a dash; version 00 may not. */
	assert_true(valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
	assert_false(valid(TP "-extra"));
	assert_false(valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
	/* Only the first @n bytes count: a header value is not NUL-terminated. */
	assert_true(mt_traceparent_valid(TP "garbage", MT_TRACEPARENT_LEN));
	assert_false(mt_traceparent_valid(TP, MT_TRACEPARENT_LEN - 1));
	assert_false(mt_traceparent_valid(NULL, 0));
}

static void test_invalid(void **state)
{
	(void)state;
	assert_false(valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	assert_false(valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
	assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
	assert_false(valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
	assert_false(valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"));
	assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"));
	assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"));
	assert_false(valid("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	assert_false(valid(""));
}

static void test_decode(void **state)
{
	static const uint8_t trace[MT_TRACE_ID_LEN] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3,
						       0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
						       0x0e, 0x0e, 0x47, 0x36};
	static const uint8_t parent[MT_SPAN_ID_LEN] = {0x00, 0xf0, 0x67, 0xaa,
						       0x0b, 0xa9, 0x02, 0xb7};
	uint8_t t[MT_TRACE_ID_LEN], p[MT_SPAN_ID_LEN], flags = 0;

	(void)state;
	assert_true(mt_traceparent_decode(TP, t, p, &flags));
	assert_memory_equal(t, trace, sizeof(trace));
	assert_memory_equal(p, parent, sizeof(parent));
	assert_int_equal(flags, 1);
	assert_true(mt_traceparent_decode(TP, t, p, NULL));
	/* Only the exact length and shape decode. */
	assert_false(mt_traceparent_decode(TP "-", t, p, NULL));
	assert_false(mt_traceparent_decode("00-4bf92f3577b34da6", t, p, NULL));
	assert_false(mt_traceparent_decode(
		"00-4bf92f3577b34da6a3ce929d0e0e473X-00f067aa0ba902b7-01", t, p, NULL));
	assert_false(mt_traceparent_decode(
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz", t, p, &flags));
	assert_false(mt_traceparent_decode(NULL, t, p, NULL));
}

static void test_format_round_trip(void **state)
{
	uint8_t t[MT_TRACE_ID_LEN], p[MT_SPAN_ID_LEN], flags, t2[MT_TRACE_ID_LEN],
		p2[MT_SPAN_ID_LEN], flags2;
	char out[MT_TRACEPARENT_LEN + 1];

	(void)state;
	assert_true(mt_traceparent_decode(TP, t, p, &flags));
	memset(out, 'x', sizeof(out));
	mt_traceparent_format(out, t, p, flags);
	assert_string_equal(out, TP);
	for (unsigned i = 0; i < sizeof(t); i++)
		t[i] = (uint8_t)(0xf0 + i);
	memset(p, 0xab, sizeof(p));
	mt_traceparent_format(out, t, p, 0x00);
	assert_string_equal(out, "00-f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff-abababababababab-00");
	assert_true(valid(out));
	assert_true(mt_traceparent_decode(out, t2, p2, &flags2));
	assert_memory_equal(t2, t, sizeof(t));
	assert_memory_equal(p2, p, sizeof(p));
	assert_int_equal(flags2, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_format_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
