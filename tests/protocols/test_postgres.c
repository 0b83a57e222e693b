// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/protocols/postgres.c on bytes recorded (tcpdump on lo) from
 * psql 15 and pgbench 15 (--protocol=extended and =prepared, with a pipeline)
 * against PostgreSQL 15.18: SSLRequest refused then startup, simple and
 * extended queries, errors; split at every position, with uncaptured gaps,
 * garbage and pipelines deeper than the parser keeps. Each chunk is copied
 * to a heap buffer of exactly its captured size, so the sanitizer build
 * catches any read past the captured bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/postgres.h"

#define REC_MAX	  128
#define L7H_STATE struct pg_conn
#define L7H_INIT  pg_init
#define L7H_FEED  pg_feed
#define L7H_CLOSE pg_close
#include "tests/protocols/l7_harness.h"

/* Recorded. psql -c "INSERT ...": SSLRequest, 'N', StartupMessage, trust auth, one Query. */
static const struct msg PSQL_INSERT[] = {
	M(C2S, "\x00\x00\x00\x08\x04\xd2\x16/"),
	M(S2C, "N"),
	M(C2S, "\x00\x00\x00;\x00\x03\x00\x00user\x00postgres\x00"
	       "database\x00shop\x00"
	       "application"
	       "_name\x00psql\x00\x00"),
	M(S2C,
	  "R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1a"
	  "application_name\x00psql\x00S"
	  "\x00\x00\x00\x19"
	  "client_encoding\x00UTF8\x00S\x00\x00\x00\x17"
	  "DateStyle\x00ISO, MD"
	  "Y\x00S\x00\x00\x00&default_transaction_read_only\x00off\x00S\x00\x00\x00\x17in_hot_s"
	  "tandby\x00off\x00S\x00\x00\x00\x19integer_datetimes\x00on\x00S\x00\x00\x00\x1bInterv"
	  "alStyle\x00postgres\x00S\x00\x00\x00\x14is_superuser\x00on\x00S\x00\x00\x00\x19serve"
	  "r_encoding\x00UTF8\x00S\x00\x00\x00"
	  "2server_version\x00"
	  "15.18 (Debian 15.18-0+deb1"
	  "2u1)\x00S\x00\x00\x00#session_authorization\x00postgres\x00S\x00\x00\x00#standard_co"
	  "nforming_strings\x00on\x00S\x00\x00\x00\x15TimeZone\x00"
	  "Etc/UTC\x00K\x00\x00\x00"
	  "\x0c\x00\x00@\x1b\xa2\xf3\xb4\xa8Z\x00\x00\x00\x05I"),
	M(C2S, "Q\x00\x00\x00"
	       "EINSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear''s', 2e3)\x00"),
	M(S2C, "C\x00\x00\x00\x0fINSERT 0 2\x00Z\x00\x00\x00\x05I"),
	M(C2S, "X\x00\x00\x00\x04"),
};
/* psql -c "SELECT * FROM nosuchtable" */
static const struct msg PSQL_ERROR[] = {
	M(C2S, "\x00\x00\x00\x08\x04\xd2\x16/"),
	M(S2C, "N"),
	M(C2S, "\x00\x00\x00;\x00\x03\x00\x00user\x00postgres\x00"
	       "database\x00shop\x00"
	       "application"
	       "_name\x00psql\x00\x00"),
	M(S2C,
	  "R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1a"
	  "application_name\x00psql\x00S"
	  "\x00\x00\x00\x19"
	  "client_encoding\x00UTF8\x00S\x00\x00\x00\x17"
	  "DateStyle\x00ISO, MD"
	  "Y\x00S\x00\x00\x00&default_transaction_read_only\x00off\x00S\x00\x00\x00\x17in_hot_s"
	  "tandby\x00off\x00S\x00\x00\x00\x19integer_datetimes\x00on\x00S\x00\x00\x00\x1bInterv"
	  "alStyle\x00postgres\x00S\x00\x00\x00\x14is_superuser\x00on\x00S\x00\x00\x00\x19serve"
	  "r_encoding\x00UTF8\x00S\x00\x00\x00"
	  "2server_version\x00"
	  "15.18 (Debian 15.18-0+deb1"
	  "2u1)\x00S\x00\x00\x00#session_authorization\x00postgres\x00S\x00\x00\x00#standard_co"
	  "nforming_strings\x00on\x00S\x00\x00\x00\x15TimeZone\x00"
	  "Etc/UTC\x00K\x00\x00\x00"
	  "\x0c\x00\x00@&,9\x0b\xaaZ\x00\x00\x00\x05I"),
	M(C2S, "Q\x00\x00\x00\x1eSELECT * FROM nosuchtable\x00"),
	M(S2C, "E\x00\x00\x00nSERROR\x00VERROR\x00"
	       "C42P01\x00Mrelation \"nosuchtable\" does not exi"
	       "st\x00P15\x00"
	       "Fparse_relation.c\x00L1392\x00RparserOpenTable\x00\x00Z\x00\x00\x00"
	       "\x05I"),
	M(C2S, "X\x00\x00\x00\x04"),
};
/*
 * pgbench -f: SELECT, UPDATE, then \\startpipeline SELECT 1; SELECT ...; SELECT 1/0; SELECT 2;
 * \\endpipeline with --protocol=extended (unnamed statements, P B D E S). pgbench gave up at
 * the error: its Terminate went out before the backend's ReadyForQuery.
 */
static const struct msg PGBENCH_EXTENDED[] = {
	M(C2S, "\x00\x00\x00\x08\x04\xd2\x16/"),
	M(S2C, "N"),
	M(C2S, "\x00\x00\x00>\x00\x03\x00\x00user\x00postgres\x00"
	       "database\x00shop\x00"
	       "application"
	       "_name\x00pgbench\x00\x00"),
	M(S2C,
	  "R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1d"
	  "application_name\x00pgbench\x00S"
	  "\x00\x00\x00\x19"
	  "client_encoding\x00UTF8\x00S\x00\x00\x00\x17"
	  "DateStyle\x00ISO, MD"
	  "Y\x00S\x00\x00\x00&default_transaction_read_only\x00off\x00S\x00\x00\x00\x17in_hot_s"
	  "tandby\x00off\x00S\x00\x00\x00\x19integer_datetimes\x00on\x00S\x00\x00\x00\x1bInterv"
	  "alStyle\x00postgres\x00S\x00\x00\x00\x14is_superuser\x00on\x00S\x00\x00\x00\x19serve"
	  "r_encoding\x00UTF8\x00S\x00\x00\x00"
	  "2server_version\x00"
	  "15.18 (Debian 15.18-0+deb1"
	  "2u1)\x00S\x00\x00\x00#session_authorization\x00postgres\x00S\x00\x00\x00#standard_co"
	  "nforming_strings\x00on\x00S\x00\x00\x00\x15TimeZone\x00"
	  "Etc/UTC\x00K\x00\x00\x00"
	  "\x0c\x00\x00@>\xe5\x8b\xb8$Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00-\x00SELECT name FROM items WHERE id = $1;\x00\x00\x00"
	       "B\x00\x00\x00"
	       "\x13\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01"
	       "1\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P"
	       "\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04"
	       "2\x00\x00\x00\x04T\x00\x00\x00\x1d\x00\x01name\x00\x00\x00@\x05"
	       "\x00\x02\x00\x00\x00\x19\xff\xff\xff\xff\xff\xff\x00\x00"
	       "D\x00\x00\x00\x0f\x00\x01"
	       "\x00\x00\x00\x05"
	       "appleC\x00\x00\x00\rSELECT 1\x00Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00"
	       "9\x00UPDATE items SET price = price + 1 WHERE id = $1;\x00\x00\x00"
	       "B"
	       "\x00\x00\x00\x13\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01"
	       "1\x00\x01\x00\x00"
	       "D\x00"
	       "\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04"
	       "2\x00\x00\x00\x04n\x00\x00\x00\x04"
	       "C\x00\x00\x00\rUPDATE 1\x00Z"
	       "\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00\x11\x00SELECT 1;\x00\x00\x00"
	       "B\x00\x00\x00\x0e\x00\x00\x00\x00\x00"
	       "\x00\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00P"
	       "\x00\x00\x00-\x00SELECT name FROM items WHERE id = $1;\x00\x00\x00"
	       "B\x00\x00\x00"
	       "\x13\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01"
	       "1\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P"
	       "\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00P\x00\x00\x00\x13\x00SELECT 1/0;\x00\x00"
	       "\x00"
	       "B\x00\x00\x00\x0e\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P"
	       "\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00P\x00\x00\x00\x11\x00SELECT 2;\x00\x00"
	       "\x00"
	       "B\x00\x00\x00\x0e\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P"
	       "\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04"
	       "2\x00\x00\x00\x04T\x00\x00\x00!\x00\x01?column?\x00\x00\x00\x00"
	       "\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"
	       "D\x00\x00\x00\x0b\x00"
	       "\x01\x00\x00\x00\x01"
	       "1C\x00\x00\x00\rSELECT 1\x00"
	       "1\x00\x00\x00\x04"
	       "2\x00\x00\x00"
	       "\x04T\x00\x00\x00\x1d\x00\x01name\x00\x00\x00@\x05\x00\x02\x00\x00\x00\x19\xff\xff"
	       "\xff\xff\xff\xff\x00\x00"
	       "D\x00\x00\x00\x0f\x00\x01\x00\x00\x00\x05"
	       "appleC\x00\x00"
	       "\x00\rSELECT 1\x00"
	       "1\x00\x00\x00\x04"
	       "E\x00\x00\x00"
	       "ASERROR\x00VERROR\x00"
	       "C22012"
	       "\x00Mdivision by zero\x00"
	       "Fint.c\x00L869\x00Rint4div\x00\x00"),
	M(C2S, "X\x00\x00\x00\x04"),
	M(S2C, "Z\x00\x00\x00\x05I"),
};
/* The same with --protocol=prepared: each statement parsed (P_0 ... P_5) in a Sync of its own. */
static const struct msg PGBENCH_PREPARED[] = {
	M(C2S, "\x00\x00\x00\x08\x04\xd2\x16/"),
	M(S2C, "N"),
	M(C2S, "\x00\x00\x00>\x00\x03\x00\x00user\x00postgres\x00"
	       "database\x00shop\x00"
	       "application"
	       "_name\x00pgbench\x00\x00"),
	M(S2C,
	  "R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1d"
	  "application_name\x00pgbench\x00S"
	  "\x00\x00\x00\x19"
	  "client_encoding\x00UTF8\x00S\x00\x00\x00\x17"
	  "DateStyle\x00ISO, MD"
	  "Y\x00S\x00\x00\x00&default_transaction_read_only\x00off\x00S\x00\x00\x00\x17in_hot_s"
	  "tandby\x00off\x00S\x00\x00\x00\x19integer_datetimes\x00on\x00S\x00\x00\x00\x1bInterv"
	  "alStyle\x00postgres\x00S\x00\x00\x00\x14is_superuser\x00on\x00S\x00\x00\x00\x19serve"
	  "r_encoding\x00UTF8\x00S\x00\x00\x00"
	  "2server_version\x00"
	  "15.18 (Debian 15.18-0+deb1"
	  "2u1)\x00S\x00\x00\x00#session_authorization\x00postgres\x00S\x00\x00\x00#standard_co"
	  "nforming_strings\x00on\x00S\x00\x00\x00\x15TimeZone\x00"
	  "Etc/UTC\x00K\x00\x00\x00"
	  "\x0c\x00\x00@I\xb7\x87\xf2\x96Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00"
	       "0P_0\x00SELECT name FROM items WHERE id = $1;\x00\x00\x00S\x00\x00"
	       "\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04Z\x00\x00\x00\x05I"),
	M(C2S, "B\x00\x00\x00\x16\x00P_0\x00\x00\x00\x00\x01\x00\x00\x00\x01"
	       "1\x00\x01\x00\x00"
	       "D"
	       "\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "2\x00\x00\x00\x04T\x00\x00\x00\x1d\x00\x01name\x00\x00\x00@\x05\x00\x02\x00\x00\x00"
	       "\x19\xff\xff\xff\xff\xff\xff\x00\x00"
	       "D\x00\x00\x00\x0f\x00\x01\x00\x00\x00\x05"
	       "app"
	       "leC\x00\x00\x00\rSELECT 1\x00Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00<P_1\x00UPDATE items SET price = price + 1 WHERE id = $1;\x00\x00\x00S"
	       "\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04Z\x00\x00\x00\x05I"),
	M(C2S, "B\x00\x00\x00\x16\x00P_1\x00\x00\x00\x00\x01\x00\x00\x00\x01"
	       "1\x00\x01\x00\x00"
	       "D"
	       "\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "2\x00\x00\x00\x04n\x00\x00\x00\x04"
	       "C\x00\x00\x00\rUPDATE 1\x00Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00\x14P_2\x00SELECT 1;\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00"
	       "0P_3\x00SELECT name FROM items WHERE id = $1;\x00\x00\x00S\x00\x00"
	       "\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00\x16P_4\x00SELECT 1/0;\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04Z\x00\x00\x00\x05I"),
	M(C2S, "P\x00\x00\x00\x14P_5\x00SELECT 2;\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "1\x00\x00\x00\x04Z\x00\x00\x00\x05I"),
	M(C2S, "B\x00\x00\x00\x11\x00P_2\x00\x00\x00\x00\x00\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00"
	       "B\x00\x00\x00\x16\x00P_3\x00\x00\x00\x00\x01"
	       "\x00\x00\x00\x01"
	       "1\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00"
	       "\x00\x00\x00\x00"
	       "B\x00\x00\x00\x11\x00P_4\x00\x00\x00\x00\x00\x00\x01\x00\x00"
	       "D"
	       "\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09\x00\x00\x00\x00\x00"
	       "B\x00\x00\x00\x11\x00P"
	       "_5\x00\x00\x00\x00\x00\x00\x01\x00\x00"
	       "D\x00\x00\x00\x06P\x00"
	       "E\x00\x00\x00\x09"
	       "\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
	M(S2C, "2\x00\x00\x00\x04T\x00\x00\x00!\x00\x01?column?\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	       "\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"
	       "D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x01"
	       "1C\x00\x00\x00\rSELECT 1\x00"
	       "2\x00\x00\x00\x04T\x00\x00\x00\x1d\x00\x01name\x00\x00"
	       "\x00@\x05\x00\x02\x00\x00\x00\x19\xff\xff\xff\xff\xff\xff\x00\x00"
	       "D\x00\x00\x00\x0f"
	       "\x00\x01\x00\x00\x00\x05"
	       "appleC\x00\x00\x00\rSELECT 1\x00"
	       "E\x00\x00\x00"
	       "ASERROR"
	       "\x00VERROR\x00"
	       "C22012\x00Mdivision by zero\x00"
	       "Fint.c\x00L869\x00Rint4div\x00\x00"),
	M(C2S, "X\x00\x00\x00\x04"),
	M(S2C, "Z\x00\x00\x00\x05I"),
};

static void assert_x(const struct mt_exchange *x, const char *op, const char *query, uint32_t flags,
		     const char *status)
{
	assert_int_equal(x->protocol, MT_PROTO_POSTGRES);
	assert_string_equal(x->operation, op);
	assert_string_equal(x->query_text, query);
	assert_int_equal(x->flags, flags);
	assert_string_equal(x->status_text, status);
}

static void test_detect(void **state)
{
	(void)state;
	assert_true(pg_detect((const uint8_t *)PSQL_INSERT[0].data, PSQL_INSERT[0].len));
	assert_true(pg_detect((const uint8_t *)PSQL_INSERT[2].data, PSQL_INSERT[2].len));
	assert_true(pg_detect((const uint8_t *)PSQL_INSERT[2].data, 8));
	assert_true(pg_detect((const uint8_t *)PSQL_INSERT[4].data, PSQL_INSERT[4].len)); /* Q */
	assert_true(pg_detect((const uint8_t *)PGBENCH_EXTENDED[4].data, 64));		  /* P */
	assert_true(pg_detect((const uint8_t *)PGBENCH_PREPARED[4].data, 20)); /* P named */
	assert_true(pg_detect((const uint8_t *)"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\1\0\0\0\2", 16));
	assert_false(pg_detect((const uint8_t *)"\0\0\0\x09\x04\xd2\x16\x2f", 8));
	assert_false(pg_detect((const uint8_t *)"\0\0\0\x30\0\2\0\0user", 12)); /* protocol 2 */
	assert_false(pg_detect((const uint8_t *)"Q\0\0\0\x04", 5));
	assert_false(pg_detect((const uint8_t *)"Q\0\0\0\x10\x01\x02\x03", 8));
	assert_false(pg_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
	assert_false(pg_detect((const uint8_t *)"*1\r\n$4\r\nPING\r\n", 14));
	assert_false(pg_detect((const uint8_t *)"d\0\0\0\n5.5.5-10.11", 16)); /* MySQL greeting */
	assert_false(pg_detect(NULL, 0));
}

static void test_psql(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	PLAY(h, PSQL_INSERT, 0);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "INSERT", "INSERT INTO items VALUES (?, ?, ?), (?, ?, ?)", 0, "");
	assert_string_equal(h->x[0].db_namespace, "shop");
	assert_int_equal(h->x[0].req_start_ns, 5);
	assert_int_equal(h->x[0].resp_start_ns, 6);
	assert_int_equal(h->x[0].resp_end_ns, 6);
	close_conn(h, 100);
	assert_int_equal(h->n, 1);

	harness_reset(h);
	PLAY(h, PSQL_ERROR, 0);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "SELECT", "SELECT * FROM nosuchtable", MT_X_ERROR, "42P01");
	assert_int_equal(h->st.requests, 1);
	assert_int_equal(h->st.responses, 1);
	assert_int_equal(h->st.garbage_bytes + h->st.resyncs + h->st.orphan_responses, 0);
	assert_seqs(h);
	test_free(h);
}

static const char *const SEL = "SELECT name FROM items WHERE id = $1;";
static const char *const UPD = "UPDATE items SET price = price + ? WHERE id = $1;";

static void check_extended(const struct harness *h)
{
	assert_int_equal(h->n, 6);
	assert_x(&h->x[0], "SELECT", SEL, 0, "");
	assert_x(&h->x[1], "UPDATE", UPD, 0, "");
	assert_x(&h->x[2], "SELECT", "SELECT ?;", 0, "");
	assert_x(&h->x[3], "SELECT", SEL, 0, "");
	assert_x(&h->x[4], "SELECT", "SELECT ?/?;", MT_X_ERROR, "22012");
	assert_x(&h->x[5], "SELECT", "SELECT ?;", MT_X_ERROR, ""); /* skipped after the error */
	for (int i = 0; i < 6; i++)
		assert_string_equal(h->x[i].db_namespace, "shop");
}

static void test_pgbench_extended(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	PLAY(h, PGBENCH_EXTENDED, 0);
	check_extended(h);
	assert_int_equal(h->x[0].req_start_ns, 5);
	assert_int_equal(h->x[0].resp_end_ns, 6);
	assert_int_equal(h->x[2].req_start_ns, 9); /* the pipeline: one write, four Executes */
	assert_int_equal(h->x[5].req_start_ns, 9);
	assert_int_equal(h->x[5].resp_end_ns, 12); /* skipped: ends at ReadyForQuery */
	assert_int_equal(h->st.requests, 6);
	assert_int_equal(h->st.garbage_bytes + h->st.resyncs + h->st.orphan_responses, 0);
	assert_seqs(h);
	assert_int_equal(h->c.e_count, 0);
	assert_int_equal(h->c.slots_used, 0);
	test_free(h);
}

static void test_pgbench_prepared(void **state)
{
	static const char *const prepared[] = {SEL, UPD,	   "SELECT ?;",
					       SEL, "SELECT ?/?;", "SELECT ?;"};
	struct harness *h = harness_new();

	(void)state;
	PLAY(h, PGBENCH_PREPARED, 0);
	assert_int_equal(h->n, 12);
	assert_x(&h->x[0], "PREPARE", SEL, 0, "");
	assert_x(&h->x[1], "SELECT", SEL, 0, "");
	assert_x(&h->x[2], "PREPARE", UPD, 0, "");
	assert_x(&h->x[3], "UPDATE", UPD, 0, "");
	for (int i = 0; i < 4; i++)
		assert_x(&h->x[4 + i], "PREPARE", prepared[2 + i], 0, "");
	assert_x(&h->x[8], "SELECT", "SELECT ?;", 0, "");
	assert_x(&h->x[9], "SELECT", SEL, 0, "");
	assert_x(&h->x[10], "SELECT", "SELECT ?/?;", MT_X_ERROR, "22012");
	assert_x(&h->x[11], "SELECT", "SELECT ?;", MT_X_ERROR, "");
	assert_int_equal(h->st.garbage_bytes + h->st.resyncs + h->st.orphan_responses, 0);
	assert_seqs(h);
	test_free(h);
}

/* Every message cut at every position; then one byte per chunk. */
static void test_every_split(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	for (size_t k = 1; k < 420; k++) {
		harness_reset(h);
		PLAY(h, PGBENCH_EXTENDED, k);
		check_extended(h);
		harness_reset(h);
		PLAY(h, PSQL_ERROR, k);
		assert_int_equal(h->n, 1);
		assert_x(&h->x[0], "SELECT", "SELECT * FROM nosuchtable", MT_X_ERROR, "42P01");
		assert_int_equal(h->st.garbage_bytes + h->st.resyncs, 0);
	}
	harness_reset(h);
	for (size_t i = 0; i < sizeof(PGBENCH_PREPARED) / sizeof(PGBENCH_PREPARED[0]); i++)
		for (size_t j = 0; j < PGBENCH_PREPARED[i].len; j++)
			feed(h, PGBENCH_PREPARED[i].c2s, PGBENCH_PREPARED[i].data + j, 1, i + 1);
	assert_int_equal(h->n, 12);
	test_free(h);
}

/* Recorded: the response to "SELECT 1", ReadyForQuery appended. */
static const char SELECT_1[] =
	"T\x00\x00\x00!\x00\x01?column?\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	"\x17\x00\x04\xff\xff\xff\xff\x00\x00"
	"D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x01"
	"1C\x00\x00\x00\rSELECT 1\x00Z\x00\x00\x00\x05I";

/* A simple query with a row far longer than the capture, and a query text longer than it. */
static void test_gaps(void **state)
{
	struct harness *h = harness_new();
	static uint8_t resp[4000], q[3000];
	size_t n = 0, qn;

	(void)state;
	PLAY(h, PSQL_INSERT, 0);
	/* Q: "SELECT repeat('x', 3000)": T, D (3000 bytes), C, Z in one write */
	memcpy(resp, "T\0\0\0\x1f\0\x01repeat\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0",
	       32);
	n = 32;
	memcpy(resp + n, "D\0\0\x0b\xc2\0\x01\0\0\x0b\xb8", 11);
	n += 11;
	memset(resp + n, 'x', 3000);
	n += 3000;
	memcpy(resp + n, "C\0\0\0\rSELECT 1\0Z\0\0\0\x05I", 20);
	n += 20;
	feed(h, C2S, "Q\0\0\0\x1dSELECT repeat('x', 3000)\0", 30, 10);
	feed_gap(h, S2C, resp, 512, n, 11);
	assert_int_equal(h->n, 1);
	assert_int_equal(h->st.resyncs, 0);
	/* C and Z were in the gap: the framing is lost; the next query finds it again */
	feed(h, C2S, "Q\0\0\0\x0dSELECT 1\0", 14, 12);
	feed(h, S2C, SELECT_1, sizeof(SELECT_1) - 1, 13);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[1], "SELECT", "SELECT repeat(?, ?)", MT_X_END_GUESSED, "");
	assert_int_equal(h->x[1].resp_end_ns, 11);
	assert_x(&h->x[2], "SELECT", "SELECT ?", 0, "");
	assert_int_equal(h->x[2].resp_start_ns, 13);
	assert_int_equal(h->st.resyncs, 1);

	/* a query text longer than the capture: kept in part, framed whole */
	qn = (size_t)snprintf((char *)q, sizeof(q), "Q....SELECT * FROM t WHERE name IN ('");
	memset(q + qn, 'a', 2500);
	qn += 2500;
	qn += (size_t)snprintf((char *)q + qn, sizeof(q) - qn, "')");
	q[qn++] = 0;
	q[1] = 0;
	q[2] = 0;
	q[3] = (uint8_t)((qn - 1) >> 8);
	q[4] = (uint8_t)(qn - 1);
	feed_gap(h, C2S, q, 512, qn, 14);
	feed(h, S2C, "C\0\0\0\rSELECT 0\0Z\0\0\0\x05I", 20, 15);
	assert_int_equal(h->n, 4);
	assert_x(&h->x[3], "SELECT", "SELECT * FROM t WHERE name IN (?", 0, "");
	close_conn(h, 16);
	assert_int_equal(h->n, 4);
	test_free(h);
}

/* SSLRequest accepted: the rest is TLS, never parsed. */
static void test_ssl_accepted(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed(h, C2S, PSQL_INSERT[0].data, PSQL_INSERT[0].len, 1);
	feed(h, S2C, "S", 1, 2);
	feed(h, C2S, "\x16\x03\x01\x02\x00\x01\0\x01\xfc\x03\x03", 11, 3);
	feed(h, S2C, "\x16\x03\x03\0\x7a\x02\0\0\x76", 9, 4);
	feed(h, C2S, PSQL_INSERT[4].data, PSQL_INSERT[4].len, 5);
	close_conn(h, 6);
	assert_int_equal(h->n, 0);
	assert_int_equal(h->st.garbage_bytes, 0);
	test_free(h);
}

/* A connection first seen after its startup: picked up at a Query. */
static void test_midlife(void **state)
{
	struct harness *h = harness_new();

	(void)state;
	feed(h, C2S, PSQL_ERROR[4].data, PSQL_ERROR[4].len, 1);
	feed(h, S2C, PSQL_ERROR[5].data, PSQL_ERROR[5].len, 2);
	assert_int_equal(h->n, 1);
	assert_x(&h->x[0], "SELECT", "SELECT * FROM nosuchtable", MT_X_ERROR, "42P01");
	assert_string_equal(h->x[0].db_namespace, "");
	test_free(h);
}

/* More Executes in one Sync group than there are slots: the rest are dropped and counted. */
static void test_pipeline_overflow(void **state)
{
	struct harness *h = harness_new();
	static const char bind_exec[] = "B\0\0\0\x0c\0\0\0\0\0\0\0\0E\0\0\0\x09\0\0\0\0\0";
	static const char done[] = "2\0\0\0\x04"
				   "C\0\0\0\rSELECT 1\0";

	(void)state;
	PLAY(h, PSQL_INSERT, 0);
	feed(h, C2S, "P\0\0\0\x0e\0SELECT 1\0\0\0", 15, 10);
	for (int i = 0; i < PG_PIPELINE_MAX + 4; i++)
		feed(h, C2S, bind_exec, sizeof(bind_exec) - 1, 11);
	feed(h, C2S, "S\0\0\0\x04", 5, 12);
	assert_int_equal(h->st.pipeline_drops, 4);
	feed(h, S2C, "1\0\0\0\x04", 5, 13);
	for (int i = 0; i < PG_PIPELINE_MAX + 4; i++)
		feed(h, S2C, done, sizeof(done) - 1, 14);
	feed(h, S2C, "Z\0\0\0\x05I", 6, 15);
	assert_int_equal(h->n, 1 + PG_PIPELINE_MAX);
	for (int i = 1; i <= PG_PIPELINE_MAX; i++)
		assert_x(&h->x[i], "SELECT", "SELECT ?", 0, "");
	assert_int_equal(h->st.orphan_responses, 0);
	assert_int_equal(h->c.slots_used, 0);
	test_free(h);
}

static void test_garbage_and_close(void **state)
{
	struct harness *h = harness_new();
	uint8_t junk[400];

	(void)state;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 29 + 7);
	PLAY(h, PSQL_INSERT, 0);
	feed(h, C2S, junk, sizeof(junk), 10);
	assert_true(h->st.garbage_bytes > 0);
	feed(h, C2S, PSQL_ERROR[4].data, PSQL_ERROR[4].len, 11); /* resync at a Query */
	feed(h, S2C, junk, sizeof(junk), 12);
	feed(h, C2S, PSQL_INSERT[4].data, PSQL_INSERT[4].len, 13);
	feed(h, S2C, PSQL_INSERT[5].data, PSQL_INSERT[5].len, 14);
	assert_int_equal(h->n, 3);
	assert_x(&h->x[1], "SELECT", "SELECT * FROM nosuchtable", MT_X_END_GUESSED, "");
	assert_x(&h->x[2], "INSERT", "INSERT INTO items VALUES (?, ?, ?), (?, ?, ?)", 0, "");
	assert_int_equal(h->st.resyncs, 2);
	feed(h, C2S, PSQL_ERROR[4].data, PSQL_ERROR[4].len, 15);
	close_conn(h, 16);
	assert_int_equal(h->n, 4);
	assert_x(&h->x[3], "SELECT", "SELECT * FROM nosuchtable", MT_X_NO_RESPONSE, "");
	test_free(h);
}

static void test_fuzz(void **state)
{
	struct harness *h = harness_new();
	uint64_t rng = 0x2545F4914F6CDD1Dull;
	const struct msg *m = PGBENCH_PREPARED;
	size_t nm = sizeof(PGBENCH_PREPARED) / sizeof(PGBENCH_PREPARED[0]);

	(void)state;
	for (int round = 0; round < 4000; round++) {
		const struct msg *x;
		size_t off, n, cap;
		char tmp[160];

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		x = &m[rng % nm];
		off = (rng >> 8) % x->len;
		n = 1 + (rng >> 16) % 150;
		if (off + n > x->len)
			n = x->len - off;
		if ((rng >> 30) % 3 == 0)
			off = 0; /* message starts are where the interesting cases are */
		if (off + n > x->len)
			n = x->len - off;
		cap = (rng >> 24) % 4 ? n : (rng >> 32) % (n + 1);
		memcpy(tmp, x->data + off, n);
		if ((rng >> 40) % 8 == 0)
			tmp[(rng >> 44) % n] ^= (char)(rng >> 52);
		feed_gap(h, (rng >> 36) % 5 ? x->c2s : !x->c2s, tmp, cap,
			 n + ((rng >> 56) % 4 ? 0 : (rng >> 20) % 5000), round);
		if (h->n > REC_MAX - 40)
			h->n = 0;
		assert_true(h->c.e_count <= PG_EXPECT_MAX);
	}
	close_conn(h, 1);
	assert_int_equal(h->c.e_count, 0);
	test_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_psql),
		cmocka_unit_test(test_pgbench_extended),
		cmocka_unit_test(test_pgbench_prepared),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_ssl_accepted),
		cmocka_unit_test(test_midlife),
		cmocka_unit_test(test_pipeline_overflow),
		cmocka_unit_test(test_garbage_and_close),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
