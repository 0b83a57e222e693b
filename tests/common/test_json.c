// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/common/json.c: commas and nesting, every kind of value,
 * string escaping (control bytes, quotes, ill-formed UTF-8 by maximal
 * subpart, DEL left as is), and the buffer limit reported once at the end.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/common/json.h"

static void test_nesting_and_commas(void **state)
{
	struct mt_buf b;
	struct mt_json j;

	(void)state;
	mt_buf_init(&b, 4096);
	mt_json_init(&j, &b);
	mt_json_obj_open(&j);
	mt_json_key_str(&j, "a", "x");
	mt_json_key_u64(&j, "b", 18446744073709551615ull);
	mt_json_key(&j, "c");
	mt_json_arr_open(&j);
	mt_json_i64(&j, -5);
	mt_json_bool(&j, true);
	mt_json_null(&j);
	mt_json_obj_open(&j);
	mt_json_obj_close(&j);
	mt_json_arr_open(&j);
	mt_json_arr_close(&j);
	mt_json_f64(&j, 1.23456, 3);
	mt_json_f64(&j, NAN, 3);
	mt_json_arr_close(&j);
	mt_json_key(&j, "d");
	mt_json_obj_open(&j);
	mt_json_key_u64(&j, "e", 0);
	mt_json_key(&j, "f");
	mt_json_bool(&j, false);
	mt_json_obj_close(&j);
	mt_json_obj_close(&j);
	assert_int_equal(mt_json_err(&j), 0);
	assert_string_equal(b.data,
			    "{\"a\":\"x\",\"b\":18446744073709551615,"
			    "\"c\":[-5,true,null,{},[],1.235,null],\"d\":{\"e\":0,\"f\":false}}");
	mt_buf_free(&b);
}

static void test_top_level_values(void **state)
{
	struct mt_buf b;
	struct mt_json j;

	(void)state;
	mt_buf_init(&b, 64);
	mt_json_init(&j, &b);
	mt_json_arr_open(&j);
	mt_json_arr_close(&j);
	assert_string_equal(b.data, "[]");
	mt_buf_free(&b);
}

static void test_escaping(void **state)
{
	static const char in[] = "q\"b\\s\t\n\x01\x1f\x7f|caf\xc3\xa9|\xf0\x9f\x98\x80|"
				 "\xff\xfe|\xe2\x82|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80h";
	struct mt_buf b;

	(void)state;
	mt_buf_init(&b, 4096);
	assert_int_equal(mt_json_escape(&b, in, sizeof(in) - 1), 0);
	assert_string_equal(b.data, "\"q\\\"b\\\\s\\u0009\\u000a\\u0001\\u001f\x7f|caf\xc3\xa9|"
				    "\xf0\x9f\x98\x80|\\ufffd\\ufffd|\\ufffd|\\ufffd\\ufffd|"
				    "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffdh\"");
	mt_buf_free(&b);
}

static void test_nul_inside_and_keys_escaped(void **state)
{
	struct mt_buf b;
	struct mt_json j;

	(void)state;
	mt_buf_init(&b, 256);
	mt_json_init(&j, &b);
	mt_json_obj_open(&j);
	mt_json_key(&j, "k\"");
	mt_json_strn(&j, "a\0b", 3);
	mt_json_obj_close(&j);
	assert_string_equal(b.data, "{\"k\\\"\":\"a\\u0000b\"}");
	mt_buf_free(&b);
}

static void test_limit_reported_once(void **state)
{
	struct mt_buf b;
	struct mt_json j;

	(void)state;
	mt_buf_init(&b, 16);
	mt_json_init(&j, &b);
	mt_json_arr_open(&j);
	for (int i = 0; i < 20; i++)
		mt_json_str(&j, "too long");
	mt_json_arr_close(&j);
	assert_int_equal(mt_json_err(&j), -ENOMEM);
	assert_true(b.len < 16);
	mt_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting_and_commas),
		cmocka_unit_test(test_top_level_values),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_nul_inside_and_keys_escaped),
		cmocka_unit_test(test_limit_reported_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
