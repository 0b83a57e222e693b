// SPDX-License-Identifier: Apache-2.0
/* Tests for agent/protocols/sql_sanitize.c: literals out, structure kept, bounded output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/sql_sanitize.h"

static void check(enum sql_dialect d, const char *in, const char *want)
{
	char out[256];
	size_t n = sql_sanitize(in, strlen(in), d, out, sizeof(out));

	if (strcmp(out, want) != 0)
		fail_msg("sanitise(%s)\n  got  [%s]\n  want [%s]", in, out, want);
	assert_int_equal(n, strlen(out));
}

static void check_op(enum sql_dialect d, const char *in, const char *want)
{
	char op[32];

	sql_operation(in, strlen(in), d, op, sizeof(op));
	if (strcmp(op, want) != 0)
		fail_msg("operation(%s): got [%s], want [%s]", in, op, want);
}

static void test_postgres(void **state)
{
	(void)state;
	check(SQL_POSTGRES, "SELECT id, name FROM items WHERE name = 'apple' AND price > 1.0",
	      "SELECT id, name FROM items WHERE name = ? AND price > ?");
	check(SQL_POSTGRES, "INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear''s', 2e3)",
	      "INSERT INTO items VALUES (?, ?, ?), (?, ?, ?)");
	check(SQL_POSTGRES, "SELECT name FROM items WHERE id = $1;",
	      "SELECT name FROM items WHERE id = $1;");
	check(SQL_POSTGRES, "select \"Col1\", t2.c3 from \"My Table\" t2 where x=-5.5e-3",
	      "select \"Col1\", t2.c3 from \"My Table\" t2 where x=-?");
	check(SQL_POSTGRES, "SELECT E'it\\'s', e'\\\\', B'1010', X'ff', N'n' FROM t",
	      "SELECT ?, ?, ?, ?, ? FROM t");
	check(SQL_POSTGRES, "SELECT $$a 'b' c$$, $fn$ x $$ y $fn$ , 'a\\' FROM t",
	      "SELECT ?, ? , ? FROM t");
	check(SQL_POSTGRES, "SELECT 1 -- the secret 42\n  ,  /* a /* nested */ 7 */ 2",
	      "SELECT ? , ?");
	check(SQL_POSTGRES, "  UPDATE\n\tt  SET a = .5 ,b=0x1F WHERE c IN (1,2,3)  ",
	      "UPDATE t SET a = ? ,b=? WHERE c IN (?,?,?)");
	check(SQL_POSTGRES, "SELECT a1, b_2, $1, x::int4 FROM t WHERE d = interval '1 day'",
	      "SELECT a1, b_2, $1, x::int4 FROM t WHERE d = interval ?");
	check(SQL_POSTGRES, "SELECT 'unterminated secret", "SELECT ?");
	check(SQL_POSTGRES, "SELECT 1 /* open comment", "SELECT ?");
	check(SQL_POSTGRES, "SELECT 'ünï' AS ünï", "SELECT ? AS ünï");
	check(SQL_POSTGRES, "", "");
}

static void test_mysql(void **state)
{
	(void)state;
	check(SQL_MYSQL, "INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear''s', 2.00)",
	      "INSERT INTO items VALUES (?, ?, ?), (?, ?, ?)");
	check(SQL_MYSQL, "SELECT `id`, \"str\\\"ing\" FROM `my tbl` WHERE a='x\\'y' # tail 9",
	      "SELECT `id`, ? FROM `my tbl` WHERE a=?");
	check(SQL_MYSQL, "SELECT _utf8mb4'abc', x'4142', 0xFF, b'01' FROM t WHERE id = ?",
	      "SELECT ?, ?, ?, ? FROM t WHERE id = ?");
	check(SQL_MYSQL, "SELECT 1--2, 3 -- c\n", "SELECT ?--?, ?");
	check(SQL_MYSQL, "SELECT price$ FROM t$x", "SELECT price$ FROM t$x");
	check(SQL_MYSQL, "/*!40101 SET NAMES utf8 */ SELECT 1", "SELECT ?");
}

static void test_operation(void **state)
{
	(void)state;
	check_op(SQL_POSTGRES, "select 1", "SELECT");
	check_op(SQL_POSTGRES, "  \n( SELECT 1) UNION (SELECT 2)", "SELECT");
	check_op(SQL_POSTGRES, "/* app=x */ -- c\n insert into t values (1)", "INSERT");
	check_op(SQL_POSTGRES, "WITH x AS (SELECT 1) SELECT * FROM x", "WITH");
	check_op(SQL_POSTGRES, "E'abc'", "");
	check_op(SQL_POSTGRES, "123", "");
	check_op(SQL_POSTGRES, "", "");
	check_op(SQL_MYSQL, "# c\nshow tables", "SHOW");
	check_op(SQL_MYSQL, "CREATE_A_VERY_LONG_OPERATION_NAME_THAT_DOES_NOT_FIT_AT_ALL x",
		 "CREATE_A_VERY_LONG_OPERATION_NA");
}

static void test_bounds(void **state)
{
	char big[2048], out[64], tiny[1];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = "SELECT 'x', 12, aé\t/* c */ "[i % 27];
	big[sizeof(big) - 1] = '\0';
	n = sql_sanitize(big, strlen(big), SQL_POSTGRES, out, sizeof(out));
	assert_true(n <= sizeof(out) - 1);
	assert_int_equal(strlen(out), n);
	/* cut on a character boundary: never half of "é" */
	for (size_t cap = 1; cap < 40; cap++) {
		char o[40];
		size_t m = sql_sanitize("SELECT éé é", 14, SQL_POSTGRES, o, cap);

		assert_true(m < cap);
		if (m > 0)
			assert_true(((unsigned char)o[m - 1] & 0xc0) != 0xc0);
	}
	assert_int_equal(sql_sanitize("SELECT 1", 8, SQL_POSTGRES, tiny, 1), 0);
	assert_string_equal(tiny, "");
	assert_int_equal(sql_sanitize("SELECT 1", 8, SQL_POSTGRES, NULL, 0), 0);
}

/* Every prefix of every input, including ones cut mid-literal: bounded, NUL-terminated, no '. */
static void test_prefixes(void **state)
{
	static const char *const in[] = {
		"SELECT 'a''b', E'c\\'d', $t$ e $t$, \"q\"\"r\", 1.5e+3 FROM t -- x\n/* y */",
		"SELECT `a`, \"b\\\"c\", 'd\\'e', x'00' FROM t # z",
	};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		for (size_t n = 0; n <= strlen(in[k]); n++) {
			char *copy = malloc(n ? n : 1), out[128];

			assert_non_null(copy);
			memcpy(copy, in[k], n);
			sql_sanitize(copy, n, k ? SQL_MYSQL : SQL_POSTGRES, out, sizeof(out));
			assert_null(strchr(out, '\''));
			free(copy);
		}
	}
}

/*
 * A NUL outside a literal (MySQL's query-attribute prefix read as text) is not copied: the
 * returned length is the string's, and the text does not end at it.
 */
static void test_bare_nul(void **state)
{
	static const char in[] = "\0\0SELECT\0 1 FROM t\0";
	char out[64];
	size_t n;

	(void)state;
	for (int d = SQL_POSTGRES; d <= SQL_MYSQL; d++) {
		n = sql_sanitize(in, sizeof(in) - 1, (enum sql_dialect)d, out, sizeof(out));
		assert_int_equal(strlen(out), n);
		assert_string_equal(out, "SELECT ? FROM t");
	}
	/* Inside a quoted identifier (found by tests/fuzz/fuzz_sql.c). */
	n = sql_sanitize("SELECT `a\0b` FROM t", 19, SQL_MYSQL, out, sizeof(out));
	assert_int_equal(strlen(out), n);
	assert_string_equal(out, "SELECT ? FROM t");
	n = sql_sanitize("SELECT \"a\0b\", \"c\" FROM t", 24, SQL_POSTGRES, out, sizeof(out));
	assert_int_equal(strlen(out), n);
	assert_string_equal(out, "SELECT ?, \"c\" FROM t");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgres),  cmocka_unit_test(test_mysql),
		cmocka_unit_test(test_operation), cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_prefixes),  cmocka_unit_test(test_bare_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
