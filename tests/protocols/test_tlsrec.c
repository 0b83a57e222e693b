// SPDX-License-Identifier: Apache-2.0
/* TLS record headers: what opens a TLS connection, and what only looks close to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/protocols/tlsrec.h"

static void test_hellos(void **state)
{
	/* TLS 1.3 ClientHellos still say 0x0301 in the record, 0x0303 in the ServerHello's. */
	static const uint8_t ch[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
	static const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76};

	(void)state;
	assert_int_equal(tlsrec_classify(ch, sizeof(ch)), TLSREC_CLIENT_HELLO);
	assert_int_equal(tlsrec_classify(sh, sizeof(sh)), TLSREC_SERVER_HELLO);
	/* The header alone: a record, the handshake type unknown. */
	assert_int_equal(tlsrec_classify(ch, 5), TLSREC_RECORD);
}

static void test_other_records(void **state)
{
	static const uint8_t app[] = {0x17, 0x03, 0x03, 0x40, 0x11, 0xaa};
	static const uint8_t ccs[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};
	static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};

	(void)state;
	assert_int_equal(tlsrec_classify(app, sizeof(app)), TLSREC_RECORD);
	assert_int_equal(tlsrec_classify(ccs, sizeof(ccs)), TLSREC_RECORD);
	assert_int_equal(tlsrec_classify(alert, sizeof(alert)), TLSREC_RECORD);
}

static void test_not_tls(void **state)
{
	static const char get[] = "GET / HTTP/1.1\r\n";
	static const uint8_t too_short[] = {0x16, 0x03, 0x01, 0x02};
	static const uint8_t bad_version[] = {0x16, 0x02, 0x00, 0x00, 0x10, 0x01};
	static const uint8_t future_version[] = {0x16, 0x03, 0x05, 0x00, 0x10, 0x01};
	static const uint8_t empty_record[] = {0x17, 0x03, 0x03, 0x00, 0x00};
	static const uint8_t too_long[] = {0x17, 0x03, 0x03, 0x48, 0x01, 0x00};
	static const uint8_t bad_type[] = {0x18, 0x03, 0x03, 0x00, 0x10, 0x00};
	/* A PostgreSQL SSLRequest is plaintext: the TLS records come after the server's 'S'. */
	static const uint8_t sslrequest[] = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f};

	(void)state;
	assert_int_equal(tlsrec_classify((const uint8_t *)get, strlen(get)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(too_short, sizeof(too_short)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(bad_version, sizeof(bad_version)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(future_version, sizeof(future_version)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(empty_record, sizeof(empty_record)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(too_long, sizeof(too_long)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(bad_type, sizeof(bad_type)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(sslrequest, sizeof(sslrequest)), TLSREC_NO);
	assert_int_equal(tlsrec_classify(NULL, 0), TLSREC_NO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hellos),
		cmocka_unit_test(test_other_records),
		cmocka_unit_test(test_not_tls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
