// SPDX-License-Identifier: Apache-2.0
/* gRPC framing of the CRI client: length prefixes, partial and malformed bodies, statuses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/identity/grpc.h"

static void test_prefix_round_trip(void **state)
{
	uint8_t buf[GRPC_PREFIX_LEN + 3];
	const uint8_t *msg;
	size_t len;

	(void)state;
	grpc_frame_prefix(buf, 3);
	assert_memory_equal(buf, "\0\0\0\0\3", 5);
	memcpy(buf + 5, "abc", 3);
	assert_int_equal(grpc_unframe(buf, sizeof(buf), &msg, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(msg, "abc", 3);
	grpc_frame_prefix(buf, 0x01020304);
	assert_memory_equal(buf, "\0\1\2\3\4", 5);
}

static void test_unframe_rejects(void **state)
{
	static const uint8_t partial[] = {0, 0, 0, 0, 4, 'a', 'b'};
	static const uint8_t compressed[] = {1, 0, 0, 0, 1, 'a'};
	static const uint8_t trailing[] = {0, 0, 0, 0, 1, 'a', 'b'};
	static const uint8_t empty[] = {0, 0, 0, 0, 0};
	const uint8_t *msg;
	size_t len;

	(void)state;
	assert_int_equal(grpc_unframe(partial, 3, &msg, &len), -EAGAIN);
	assert_int_equal(grpc_unframe(partial, sizeof(partial), &msg, &len), -EAGAIN);
	assert_int_equal(grpc_unframe(compressed, sizeof(compressed), &msg, &len), -EPROTO);
	assert_int_equal(grpc_unframe(trailing, sizeof(trailing), &msg, &len), -EPROTO);
	/* An empty message is a valid answer (all fields default). */
	assert_int_equal(grpc_unframe(empty, sizeof(empty), &msg, &len), 0);
	assert_int_equal(len, 0);
}

static void test_status(void **state)
{
	(void)state;
	assert_int_equal(grpc_status_parse("0", 1), 0);
	assert_int_equal(grpc_status_parse("14", 2), 14);
	assert_int_equal(grpc_status_parse("16", 2), 16);
	assert_int_equal(grpc_status_parse("17", 2), -1);
	assert_int_equal(grpc_status_parse("", 0), -1);
	assert_int_equal(grpc_status_parse("1x", 2), -1);
	assert_int_equal(grpc_status_parse("100", 3), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_round_trip),
		cmocka_unit_test(test_unframe_rejects),
		cmocka_unit_test(test_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
