// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/common/log.c: a value echoed in a message cannot end the
 * line or drive a terminal (control characters escaped), and a huge one is cut
 * with its length said, so the rest of the message is still read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/common/log.h"

static void test_escape_controls(void **state)
{
	char out[256];

	(void)state;
	mt_log_escape(out, sizeof(out), "a\nmeshtrace: ready");
	assert_string_equal(out, "a\\nmeshtrace: ready");
	mt_log_escape(out, sizeof(out), "\r\t\x1b[31mred\x7f\x01");
	assert_string_equal(out, "\\r\\t\\e[31mred\\x7f\\x01");
	/* C1 CSI (U+009B) escaped; other UTF-8 left as is. */
	mt_log_escape(out, sizeof(out),
		      "\xc2\x9b"
		      "2J caf\xc3\xa9");
	assert_string_equal(out, "\\u009b2J caf\xc3\xa9");
	/* An escape that does not fit is left out whole. */
	mt_log_escape(out, 4, "ab\n");
	assert_string_equal(out, "ab");
}

static void test_value_cut(void **state)
{
	static char huge[65537];
	char out[MT_LOG_VALUE_MAX + 32];

	(void)state;
	assert_string_equal(mt_log_value(out, "9464"), "9464");
	memset(huge, 'x', sizeof(huge) - 1);
	mt_log_value(out, huge);
	assert_true(strlen(out) < sizeof(out));
	assert_non_null(strstr(out, "...(65536 bytes)"));
	assert_int_equal(strspn(out, "x"), MT_LOG_VALUE_MAX);
	/* Escapes count toward the cut: never more than MT_LOG_VALUE_MAX of them. */
	memset(huge, '\n', sizeof(huge) - 1);
	mt_log_value(out, huge);
	assert_null(strchr(out, '\n'));
	assert_non_null(strstr(out, "...(65536 bytes)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_value_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
