// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/protocols/mysql.c on bytes recorded (tcpdump on lo) from
 * MariaDB Connector/C 3.3 (tests/integration/peer_mysql.c and the mariadb
 * client) against MariaDB 10.11: handshake, text queries, prepared
 * statements (binary protocol, metadata caching), errors, several result
 * sets; split at every position, with uncaptured gaps, garbage, and the
 * CLIENT_DEPRECATE_EOF framing. Each chunk is copied to a heap buffer of
 * exactly its captured size, so the sanitizer build catches any read past
 * the captured bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/mysql.h"

#define REC_MAX	  128
#define L7H_STATE struct mysql_conn
#define L7H_INIT  mysql_init
#define L7H_FEED  mysql_feed
#define L7H_CLOSE mysql_close
#include "tests/protocols/l7_harness.h"

/*
 * Recorded: peer_mysql (libmariadb 3.3.20) with database "shop": CREATE, INSERT,
 * SELECT, an error, PREPARE + 2 EXECUTE, PREPARE + EXECUTE, STMT_CLOSE sent with the
 * next COM_QUERY (a 3000-byte value), a multi-statement query, QUIT.
 */
static const struct msg LIBMARIADB[] = {
	M(S2C,
	  "d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x04\x00\x00\x00"
	  "fO:tX?p6\x00"
	  "\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00ZF-M{E%)<1$]"
	  "\x00mysql_native_password\x00"),
	M(C2S,
	  "\xc0\x00\x00\x01\x8c\xa2\xbf\x00\x00\x00\x10\x00-\x00\x00\x00\x00\x00\x00\x00\x00"
	  "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00mt\x00\x14G\xb4\x06l\x96"
	  "\x19G\x8e"
	  "c\xbe\xf0\xf1\x84\x14\xfa\nivS\x00shop\x00mysql_native_password\x00l\x03_"
	  "os\x05Linux\x0c_client_name\nlibmariadb\x04_pid\x05"
	  "17121\x0f_client_version\x06"
	  "3"
	  ".3.20\x09_platform\x06x86_64\x0c_server_host\x09"
	  "127.0.0.1"),
	M(S2C, "\x10\x00\x00\x02\x00\x00\x00\x02@\x00\x00\x00\x07\x01\x05\x04shop"),
	M(C2S, "]\x00\x00\x00\x03"
	       "CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, name VARCHA"
	       "R(64), price DECIMAL(10,2))"),
	M(S2C, "\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00"),
	M(C2S,
	  "B\x00\x00\x00\x03INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear''s', 2.00)"),
	M(S2C, ".\x00\x00\x01\x00\x02\x00\x02\x00\x00\x00&Records: 2  Duplicates: 0  Warnings: 0"),
	M(C2S, ":\x00\x00\x00\x03SELECT id, name FROM items WHERE name = 'apple' OR id > 0"),
	M(S2C, "\x02\x00\x00\x01\x02\x01)\x00\x00\x02\x03"
	       "def\x04shop\x05items\x05items\x02id\x02id"
	       "\x00\x0c?\x00\x0b\x00\x00\x00\x03\x03P\x00\x00\x00-\x00\x00\x03\x03"
	       "def\x04shop\x05"
	       "items\x05items\x04name\x04name\x00\x0c-\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00"
	       "\x05\x00\x00\x04\xfe\x00\x00\"\x00\x08\x00\x00\x05\x01"
	       "1\x05"
	       "apple\x09\x00\x00\x06"
	       "\x01"
	       "2\x06pear's\x05\x00\x00\x07\xfe\x00\x00\"\x00"),
	M(C2S, "\x1a\x00\x00\x00\x03SELECT * FROM nosuchtable"),
	M(S2C, "/\x00\x00\x01\xffz\x04#42S02Table 'shop.nosuchtable' doesn't exist"),
	M(C2S, "+\x00\x00\x00\x16SELECT name, price FROM items WHERE id = ?"),
	M(S2C,
	  "\x0c\x00\x00\x01\x00\x01\x00\x00\x00\x02\x00\x01\x00\x00\x00\x00\x18\x00\x00\x02\x03"
	  "def\x00\x00\x00\x01?\x00\x00\x0c?\x00\x00\x00\x00\x00\x06\x80\x00\x00\x00\x00\x05"
	  "\x00\x00\x03\xfe\x00\x00\x02\x00-\x00\x00\x04\x03"
	  "def\x04shop\x05items\x05items\x04"
	  "name\x04name\x00\x0c-\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00/\x00\x00\x05\x03"
	  "def\x04shop\x05items\x05items\x05price\x05price\x00\x0c?\x00\x0c\x00\x00\x00\xf6\x00"
	  "\x00\x02\x00\x00\x05\x00\x00\x06\xfe\x00\x00\x02\x00"),
	M(C2S,
	  "\x16\x00\x00\x00\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00\x01\x00\x00"
	  "\x00\x00\x00\x00\x00"),
	M(S2C, "\x02\x00\x00\x01\x02\x00\x05\x00\x00\x02\xfe\x00\x00\x02\x00\r\x00\x00\x03\x00\x00"
	       "\x05"
	       "apple\x04"
	       "1.50\x05\x00\x00\x04\xfe\x00\x00\x02\x00"),
	M(C2S,
	  "\x16\x00\x00\x00\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00\x02\x00\x00"
	  "\x00\x00\x00\x00\x00"),
	M(S2C,
	  "\x02\x00\x00\x01\x02\x00\x05\x00\x00\x02\xfe\x00\x00\x02\x00\x0e\x00\x00\x03\x00\x00"
	  "\x06pear's\x04"
	  "2.00\x05\x00\x00\x04\xfe\x00\x00\x02\x00"),
	M(C2S, "0\x00\x00\x00\x16UPDATE items SET price = price + 1 WHERE id = ?"),
	M(S2C,
	  "\x0c\x00\x00\x01\x00\x02\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x18\x00\x00\x02\x03"
	  "def\x00\x00\x00\x01?\x00\x00\x0c?\x00\x00\x00\x00\x00\x06\x80\x00\x00\x00\x00\x05"
	  "\x00\x00\x03\xfe\x00\x00\x02\x00"),
	M(C2S,
	  "\x16\x00\x00\x00\x17\x02\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00\x01\x00\x00"
	  "\x00\x00\x00\x00\x00"),
	M(S2C,
	  "0\x00\x00\x01\x00\x01\x00\x02\x00\x00\x00(Rows matched: 1  Changed: 1  Warnings: 0"),
	M(C2S, "\x05\x00\x00\x00\x19\x01\x00\x00\x00\x19\x00\x00\x00\x03SELECT REPEAT('x', 3000)"),
	M(S2C,
	  "\x02\x00\x00\x01\x01\x01(\x00\x00\x02\x03"
	  "def\x00\x00\x00\x11REPEAT('x', 3000)\x00"
	  "\x00\x0c-\x00\xe0.\x00\x00\xfd\x00\x00'\x00\x00\x05\x00\x00\x03\xfe\x00\x00\x02\x00"
	  "\xbb\x0b\x00\x04\xfc\xb8\x0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxx\x05\x00\x00\x05\xfe\x00\x00\x02\x00"),
	M(C2S, "\x13\x00\x00\x00\x03SELECT 1; SELECT 2"),
	M(S2C, "\x02\x00\x00\x01\x01\x01\x18\x00\x00\x02\x03"
	       "def\x00\x00\x00\x01"
	       "1\x00\x00\x0c?"
	       "\x00\x01\x00\x00\x00\x03\x81\x00\x00\x00\x00\x05\x00\x00\x03\xfe\x00\x00\n\x00\x02"
	       "\x00\x00\x04\x01"
	       "1\x05\x00\x00\x05\xfe\x00\x00\n\x00\x02\x00\x00\x06\x01\x01\x18"
	       "\x00\x00\x07\x03"
	       "def\x00\x00\x00\x01"
	       "2\x00\x00\x0c?\x00\x01\x00\x00\x00\x03\x81"
	       "\x00\x00\x00\x00\x05\x00\x00\x08\xfe\x00\x00\x02\x00\x02\x00\x00\x09\x01"
	       "2\x05\x00"
	       "\x00\n\xfe\x00\x00\x02\x00"),
	M(C2S, "\x01\x00\x00\x00\x01"),
};
/* mariadb -e "SELECT COUNT(*) FROM items" shop: the same handshake, one query, QUIT. */
static const struct msg MARIADB_CLI[] = {
	M(S2C,
	  "d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x05\x00\x00\x00hXa^4(i[\x00\xfe"
	  "\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00k+/Lng;0{@k{\x00"
	  "mysql_native_password\x00"),
	M(C2S, "\xd3\x00\x00\x01\x8c\xa2\xbf\x00\x00\x00\x10\x00!\x00\x00\x00\x00\x00\x00\x00\x00"
	       "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00mt\x00\x14\x94\x11\x84="
	       "\x96W\x9bL\x86\xb7\xcf\xc9r\xaa\xf5(X\x8e\x03)shop\x00mysql_native_password\x00\x7f"
	       "\x03_os\x05Linux\x0c_client_name\nlibmariadb\x04_pid\x05"
	       "17123\x0f_client_version"
	       "\x06"
	       "3.3.20\x09_platform\x06x86_64\x0cprogram_name\x05mysql\x0c_server_host\x09"
	       "12"
	       "7.0.0.1"),
	M(S2C, "\x10\x00\x00\x02\x00\x00\x00\x02@\x00\x00\x00\x07\x01\x05\x04shop"),
	M(C2S, "\x1b\x00\x00\x00\x03SELECT COUNT(*) FROM items"),
	M(S2C, "\x02\x00\x00\x01\x01\x01\x1f\x00\x00\x02\x03"
	       "def\x00\x00\x00\x08"
	       "COUNT(*)\x00\x00"
	       "\x0c?\x00\x15\x00\x00\x00\x08\x81\x00\x00\x00\x00\x05\x00\x00\x03\xfe\x00\x00\"\x00"
	       "\x02\x00\x00\x04\x01"
	       "2\x05\x00\x00\x05\xfe\x00\x00\"\x00"),
	M(C2S, "\x01\x00\x00\x00\x01"),
};

static void assert_x(const struct mt_exchange *x, const char *op, const char *query, uint32_t flags,
		     const char *status)
{
	assert_int_equal(x->protocol, MT_PROTO_MYSQL);
	assert_string_equal(x->operation, op);
	assert_string_equal(x->query_text, query);
	assert_int_equal(x->flags, flags);
	assert_string_equal(x->status_text, status);
}

static const char *const SEL_STMT = "SELECT name, price FROM items WHERE id = ?";
static const char *const UPD_STMT = "UPDATE items SET price = price + ? WHERE id = ?";

static void check_libmariadb(const struct harness *h)
{
	assert_int_equal(h->n, 11);
	assert_x(&h->x[0], "CREATE",
		 "CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, name VARCHAR(?), price "
		 "DECIMAL(?,?))",
		 0, "");
	assert_x(&h->x[1], "INSERT", "INSERT INTO items VALUES (?, ?, ?), (?, ?, ?)", 0, "");
	assert_x(&h->x[2], "SELECT", "SELECT id, name FROM items WHERE name = ? OR id > ?", 0, "");
	assert_x(&h->x[3], "SELECT", "SELECT * FROM nosuchtable", MT_X_ERROR, "1146");
	assert_x(&h->x[4], "PREPARE", SEL_STMT, 0, "");
	assert_x(&h->x[5], "SELECT", SEL_STMT, 0, "");
	assert_x(&h->x[6], "SELECT", SEL_STMT, 0, "");
	assert_x(&h->x[7], "PREPARE", UPD_STMT, 0, "");
	assert_x(&h->x[8], "UPDATE", UPD_STMT, 0, "");
	assert_x(&h->x[9], "SELECT", "SELECT REPEAT(?, ?)", 0, "");
	assert_x(&h->x[10], "SELECT", "SELECT ?; SELECT ?", 0, "");
	for (int i = 0; i < h->n; i++)
		assert_string_equal(h->x[i].db_namespace, "shop");
}

static void test_detect(void **state)
{
	(void)state;
	assert_int_equal(mysql_detect((const uint8_t *)LIBMARIADB[0].data, LIBMARIADB[0].len),
			 L7_FROM_SERVER);
	assert_int_equal(mysql_detect((const uint8_t *)LIBMARIADB[0].data, 40), L7_FROM_SERVER);
	assert_int_equal(mysql_detect((const uint8_t *)LIBMARIADB[3].data, LIBMARIADB[3].len),
			 L7_FROM_CLIENT);
	assert_int_equal(mysql_detect((const uint8_t *)LIBMARIADB[1].data, LIBMARIADB[1].len),
			 L7_NO); /* handshake response: seen after the greeting anyway */
	assert_int_equal(mysql_detect((const uint8_t *)LIBMARIADB[2].data, LIBMARIADB[2].len),
			 L7_NO);
	assert_int_equal(mysql_detect((const uint8_t *)"\x05\0\0\0\x03\x01\x02\x03\x04", 9), L7_NO);
	assert_int_equal(mysql_detect((const uint8_t *)"\0\0\0\x08\x04\xd2\x16/", 8), L7_NO);
	assert_int_equal(mysql_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16), L7_NO);
	assert_int_equal(mysql_detect((const uint8_t *)"*1\r\n$4\r\nPING\r\n", 14), L7_NO);
	assert_int_equal(mysql_detect(NULL, 0), L7_NO);
}

static void test_libmariadb(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	PLAY(h, LIBMARIADB, 0);
	check_libmariadb(h);
	assert_int_equal(h->c.deprecate_eof, 1);
	assert_true(h->c.cache_metadata);
	assert_int_equal(h->x[0].req_start_ns, 4);
	assert_int_equal(h->x[0].resp_end_ns, 5);
	assert_int_equal(h->st.requests, 13); /* + STMT_CLOSE and QUIT: no exchange */
	assert_int_equal(h->st.garbage_bytes + h->st.resyncs + h->st.orphan_responses, 0);
	assert_seqs(h);
	close_conn(h, 99);
	assert_int_equal(h->n, 11);

	harness_reset(h);
	PLAY(h, MARIADB_CLI, 0);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "SELECT", "SELECT COUNT(*) FROM items", 0, "");
	assert_string_equal(h->x[0].db_namespace, "shop");
	test_free(h);
}

static void test_every_split(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (size_t k = 1; k < 220; k++) {
		harness_reset(h);
		PLAY(h, LIBMARIADB, k);
		check_libmariadb(h);
		assert_int_equal(h->st.garbage_bytes + h->st.resyncs, 0);
	}
	harness_reset(h);
	for (size_t i = 0; i < sizeof(LIBMARIADB) / sizeof(LIBMARIADB[0]); i++)
		for (size_t j = 0; j < LIBMARIADB[i].len; j++)
			feed(h, LIBMARIADB[i].c2s, LIBMARIADB[i].data + j, 1, i + 1);
	check_libmariadb(h);
	test_free(h);
}

/* The 3000-byte row with 512 bytes captured: the last EOF is in the gap. */
static void test_gaps(void **state)
{
	struct harness *h = harness_new();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(LIBMARIADB) / sizeof(LIBMARIADB[0]); i++) {
		const struct msg *m = &LIBMARIADB[i];

		feed_gap(h, m->c2s, m->data, m->len < 512 ? m->len : 512, m->len, i + 1);
	}
	assert_int_equal(h->n, 11);
	assert_x(&h->x[9], "SELECT", "SELECT REPEAT(?, ?)", MT_X_END_GUESSED, "");
	assert_x(&h->x[10], "SELECT", "SELECT ?; SELECT ?", 0, "");
	assert_int_equal(h->st.resyncs, 1);
	/* a query text longer than the capture: kept in part, framed whole */
	{
		static char q[3000];
		size_t n = (size_t)snprintf(q + 4, sizeof(q) - 4, "\x03INSERT INTO t VALUES ('");

		memset(q + 4 + n, 'v', 2500);
		n += 2500;
		n += (size_t)snprintf(q + 4 + n, sizeof(q) - 4 - n, "')");
		q[0] = (char)(n & 0xff);
		q[1] = (char)(n >> 8);
		q[2] = 0;
		q[3] = 0;
		feed_gap(h, C2S, q, 512, n + 4, 50);
		feed(h, S2C, "\x07\0\0\x01\0\x01\0\x02\0\0\0", 11, 51);
		assert_int_equal(h->n, 12);
		assert_x(&h->x[11], "INSERT", "INSERT INTO t VALUES (?", 0, "");
	}
	test_free(h);
}

/*
 * CLIENT_DEPRECATE_EOF: the recorded handshake with the client asking for it; rows
 * end with an OK packet whose header is 0xfe, no EOF after the column definitions.
 */
static void test_deprecate_eof(void **state)
{
	static const char coldef[] = "\x18\0\0\x02\x03"
				     "def\0\0\0\x01"
				     "1\0\0\x0c?\0\x01\0\0\0\x03\x81\0\0\0\0";
	static const char rows[] = "\x02\0\0\x03\x01"
				   "1"
				   "\x02\0\0\x04\x01"
				   "2"
				   "\x07\0\0\x05\xfe\0\0\x02\0\0\0";
	static const char none[] = "\x07\0\0\x03\xfe\0\0\x02\0\0\0";
	struct harness *h = harness_new();
	char hs[256];

	(void)state;
	memcpy(hs, LIBMARIADB[1].data, LIBMARIADB[1].len);
	hs[4 + 3] |= 0x01; /* CLIENT_DEPRECATE_EOF */
	hs[4 + 28] = 0;	   /* no metadata caching */
	feed(h, S2C, LIBMARIADB[0].data, LIBMARIADB[0].len, 1);
	feed(h, C2S, hs, LIBMARIADB[1].len, 2);
	feed(h, S2C, LIBMARIADB[2].data, LIBMARIADB[2].len, 3);
	assert_int_equal(h->c.deprecate_eof, 2);
	for (int round = 0; round < 2; round++) {
		feed(h, C2S, "\x09\0\0\0\x03SELECT 1", 13, 4);
		feed(h, S2C, "\x01\0\0\x01\x01", 5, 5);
		feed(h, S2C, coldef, sizeof(coldef) - 1, 5);
		if (round == 0)
			feed(h, S2C, rows, sizeof(rows) - 1, 6);
		else
			feed(h, S2C, none, sizeof(none) - 1, 6);
		assert_int_equal(h->n, round + 1);
		assert_x(&h->x[round], "SELECT", "SELECT ?", 0, "");
		assert_int_equal(h->x[round].resp_end_ns, 6);
	}
	/* the same responses on a connection whose handshake was not seen */
	harness_reset(h);
	for (int round = 0; round < 2; round++) {
		feed(h, C2S, "\x09\0\0\0\x03SELECT 1", 13, 4);
		feed(h, S2C, "\x01\0\0\x01\x01", 5, 5);
		feed(h, S2C, coldef, sizeof(coldef) - 1, 5);
		if (round == 0)
			feed(h, S2C, rows, sizeof(rows) - 1, 6);
		else
			feed(h, S2C, none, sizeof(none) - 1, 6);
		assert_int_equal(h->n, round + 1);
		assert_x(&h->x[round], "SELECT", "SELECT ?", 0, "");
	}
	/* and the EOF style there too (recorded: mariadb client) */
	feed(h, C2S, MARIADB_CLI[3].data, MARIADB_CLI[3].len, 7);
	feed(h, S2C, MARIADB_CLI[4].data, MARIADB_CLI[4].len, 8);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[2], "SELECT", "SELECT COUNT(*) FROM items", 0, "");
	assert_int_equal(h->st.orphan_responses, 0);
	test_free(h);
}

static void test_namespace_and_errors(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	PLAY(h, MARIADB_CLI, 0);
	feed(h, C2S, "\x0c\0\0\0\x03USE `other`", 16, 10);
	feed(h, S2C, "\x07\0\0\x01\0\0\0\x02\0\0\0", 11, 11);
	feed(h, C2S,
	     "\x06\0\0\0\x02"
	     "third",
	     10, 12);
	feed(h, S2C, "\x07\0\0\x01\0\0\0\x02\0\0\0", 11, 13);
	feed(h, C2S,
	     "\x06\0\0\0\x02"
	     "nodb!",
	     10, 14);
	feed(h, S2C, "\x21\0\0\x01\xff\x19\x04#42000Unknown database 'nodb!'", 37, 15);
	feed(h, C2S, "\x0e\0\0\0\x16SELEC nothing", 18, 16);
	feed(h, S2C, "\x20\0\0\x01\xff\x28\x04#42000You have an error in ...", 36, 17);
	feed(h, C2S, "\x01\0\0\0\x0e", 5, 18);
	feed(h, S2C, "\x07\0\0\x01\0\0\0\x02\0\0\0", 11, 19);
	assert_int_equal(h->n, 6);
	assert_x(&h->x[1], "USE", "USE `other`", 0, "");
	assert_string_equal(h->x[1].db_namespace, "other");
	assert_x(&h->x[2], "INIT_DB", "", 0, "");
	assert_string_equal(h->x[2].db_namespace, "third");
	assert_x(&h->x[3], "INIT_DB", "", MT_X_ERROR, "1049");
	assert_string_equal(h->x[3].db_namespace, "third");
	assert_x(&h->x[4], "PREPARE", "SELEC nothing", MT_X_ERROR, "1064");
	assert_x(&h->x[5], "PING", "", 0, "");
	test_free(h);
}

/* A client that asks for TLS: nothing after it is parsed. */
static void test_tls(void **state)
{
	struct harness *h = harness_new();
	char ssl[36];

	(void)state;
	memcpy(ssl, LIBMARIADB[1].data, 36);
	ssl[0] = 32;
	ssl[4 + 1] |= 0x08; /* CLIENT_SSL */
	feed(h, S2C, LIBMARIADB[0].data, LIBMARIADB[0].len, 1);
	feed(h, C2S, ssl, 36, 2);
	feed(h, C2S, "\x16\x03\x01\x02\x00\x01\0\x01\xfc\x03\x03", 11, 3);
	feed(h, C2S, LIBMARIADB[3].data, LIBMARIADB[3].len, 4);
	feed(h, S2C, LIBMARIADB[4].data, LIBMARIADB[4].len, 5);
	close_conn(h, 6);
	assert_int_equal(h->n, 0);
	assert_int_equal(h->st.garbage_bytes, 0);
	test_free(h);
}

/* MySQL 8 query attributes ("\0\1" before the text), and the compressed protocol. */
static void test_query_attributes_and_compress(void **state)
{
	struct harness *h = harness_new();
	char hs[256];

	(void)state;
	assert_int_equal(mysql_detect((const uint8_t *)"\x0b\0\0\0\x03\0\x01SELECT 1", 15),
			 L7_FROM_CLIENT);
	feed(h, C2S, "\x0b\0\0\0\x03\0\x01SELECT 1", 15, 1);
	feed(h, S2C, "\x07\0\0\x01\0\0\0\x02\0\0\0", 11, 2);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "SELECT", "SELECT ?", 0, "");

	harness_reset(h);
	memcpy(hs, LIBMARIADB[1].data, LIBMARIADB[1].len);
	hs[4] |= 0x20; /* CLIENT_COMPRESS */
	feed(h, S2C, LIBMARIADB[0].data, LIBMARIADB[0].len, 1);
	feed(h, C2S, hs, LIBMARIADB[1].len, 2);
	feed(h, S2C, LIBMARIADB[2].data, LIBMARIADB[2].len, 3);
	feed(h, C2S, "\x10\0\0\0\0\0\0\x78\x9c\x63\x60\x60\x60\x66\x00\x00\x00\x00\x00", 20, 4);
	feed(h, S2C, "\x0b\0\0\0\0\0\0\x78\x9c\x63\x67\x00\x00\x00", 15, 5);
	close_conn(h, 6);
	assert_int_equal(h->n, 0);
	assert_int_equal(h->st.garbage_bytes + h->st.state_lost, 0);
	test_free(h);
}

static void test_garbage_and_close(void **state)
{
	struct harness *h = harness_new();
	uint8_t junk[300];

	(void)state;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 31 + 11);
	PLAY(h, MARIADB_CLI, 0);
	feed(h, C2S, LIBMARIADB[3].data, LIBMARIADB[3].len, 10);
	feed(h, S2C, junk, sizeof(junk), 11);
	feed(h, C2S, MARIADB_CLI[3].data, MARIADB_CLI[3].len, 12);
	feed(h, S2C, MARIADB_CLI[4].data, MARIADB_CLI[4].len, 13);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[1], "CREATE",
		 "CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, name VARCHAR(?), price "
		 "DECIMAL(?,?))",
		 MT_X_END_GUESSED, "");
	assert_int_equal(h->x[1].resp_end_ns, 11);
	assert_x(&h->x[2], "SELECT", "SELECT COUNT(*) FROM items", 0, "");
	feed(h, C2S, junk, sizeof(junk), 14);
	assert_true(h->st.garbage_bytes > 0);
	feed(h, C2S, MARIADB_CLI[3].data, MARIADB_CLI[3].len, 15);
	close_conn(h, 16);
	assert_int_equal(h->n, 4);
	assert_x(&h->x[3], "SELECT", "SELECT COUNT(*) FROM items", MT_X_NO_RESPONSE, "");
	test_free(h);
}

static void test_fuzz(void **state)
{
	struct harness *h = harness_new();
	uint64_t rng = 0x9E3779B97F4A7C15ull;
	const struct msg *m = LIBMARIADB;
	size_t nm = sizeof(LIBMARIADB) / sizeof(LIBMARIADB[0]);

	(void)state;
	for (int round = 0; round < 4000; round++) {
		const struct msg *x;
		size_t off, n, cap;
		char tmp[200];

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		x = &m[rng % nm];
		off = (rng >> 30) % 3 == 0 ? 0 : (rng >> 8) % x->len;
		n = 1 + (rng >> 16) % 190;
		if (off + n > x->len)
			n = x->len - off;
		cap = (rng >> 24) % 4 ? n : (rng >> 32) % (n + 1);
		memcpy(tmp, x->data + off, n);
		if ((rng >> 40) % 8 == 0)
			tmp[(rng >> 44) % n] ^= (char)(rng >> 52);
		feed_gap(h, (rng >> 36) % 5 ? x->c2s : !x->c2s, tmp, cap,
			 n + ((rng >> 56) % 4 ? 0 : (rng >> 20) % 5000), round);
		if (h->n > REC_MAX - 20)
			h->n = 0;
		assert_true(h->c.count <= MYSQL_PIPELINE_MAX);
	}
	close_conn(h, 1);
	assert_int_equal(h->c.count, 0);
	test_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_libmariadb),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_deprecate_eof),
		cmocka_unit_test(test_namespace_and_errors),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_query_attributes_and_compress),
		cmocka_unit_test(test_garbage_and_close),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
