// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/export/otlp_grpc.c: the 5-byte message prefix, the
 * grpc-status / grpc-message / grpc-status-details-bin lines as libcurl hands
 * them to the header callback (headers and trailers alike), RetryInfo inside
 * a google.rpc.Status, base64 as gRPC writes -bin values, and which codes
 * OTLP retries. The transport itself is tested against a real grpcio server
 * in tests/integration/test_otlp_grpc.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/export/otlp_internal.h"
#include "otlp.pb-c.h"

static void test_prefix(void **state)
{
	uint8_t p[OTLP_GRPC_PREFIX];
	const uint8_t *msg;
	uint8_t buf[OTLP_GRPC_PREFIX + 3];
	size_t len;
	bool z;

	(void)state;
	otlp_grpc_prefix(p, true, 0x01020304u);
	assert_memory_equal(p, "\x01\x01\x02\x03\x04", 5);
	otlp_grpc_prefix(p, false, 3);
	assert_memory_equal(p, "\x00\x00\x00\x00\x03", 5);

	memcpy(buf, p, 5);
	memcpy(buf + 5, "abc", 3);
	assert_int_equal(otlp_grpc_unframe(buf, sizeof(buf), &msg, &len, &z), 0);
	assert_int_equal(len, 3);
	assert_ptr_equal(msg, buf + 5);
	assert_false(z);
	buf[0] = 1;
	assert_int_equal(otlp_grpc_unframe(buf, sizeof(buf), &msg, &len, &z), 0);
	assert_true(z);
	/* Truncated (a response longer than what we keep), a bad flag, too short. */
	assert_int_equal(otlp_grpc_unframe(buf, sizeof(buf) - 1, &msg, &len, &z), -EBADMSG);
	buf[0] = 2;
	assert_int_equal(otlp_grpc_unframe(buf, sizeof(buf), &msg, &len, &z), -EBADMSG);
	assert_int_equal(otlp_grpc_unframe(buf, 4, &msg, &len, &z), -EBADMSG);
	/* An empty message (an empty Export*ServiceResponse) is fine. */
	otlp_grpc_prefix(buf, false, 0);
	assert_int_equal(otlp_grpc_unframe(buf, 5, &msg, &len, &z), 0);
	assert_int_equal(len, 0);
}

static void test_retryable(void **state)
{
	(void)state;
	assert_true(otlp_grpc_retryable(OTLP_GRPC_UNAVAILABLE, -1));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_CANCELLED, -1));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_DEADLINE_EXCEEDED, -1));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_ABORTED, -1));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_OUT_OF_RANGE, -1));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_DATA_LOSS, -1));
	assert_false(otlp_grpc_retryable(OTLP_GRPC_RESOURCE_EXHAUSTED, -1));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_RESOURCE_EXHAUSTED, 0));
	assert_true(otlp_grpc_retryable(OTLP_GRPC_RESOURCE_EXHAUSTED, 2000));
	assert_false(otlp_grpc_retryable(OTLP_GRPC_INVALID_ARGUMENT, 1000));
	assert_false(otlp_grpc_retryable(OTLP_GRPC_UNKNOWN, -1));
	assert_false(otlp_grpc_retryable(OTLP_GRPC_UNIMPLEMENTED, -1));
	assert_false(otlp_grpc_retryable(OTLP_GRPC_INTERNAL, -1));
	assert_false(otlp_grpc_retryable(16, -1)); /* UNAUTHENTICATED */
	assert_false(otlp_grpc_retryable(7, -1));  /* PERMISSION_DENIED */
	assert_string_equal(otlp_grpc_code_name(14), "UNAVAILABLE");
	assert_string_equal(otlp_grpc_code_name(16), "UNAUTHENTICATED");
	assert_string_equal(otlp_grpc_code_name(17), "?");
	assert_string_equal(otlp_grpc_code_name(-1), "?");
}

static void test_base64(void **state)
{
	uint8_t out[16];

	(void)state;
	assert_int_equal(otlp_base64_decode("aGVsbG8", 7, out, sizeof(out)), 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(otlp_base64_decode("aGVsbG8=", 8, out, sizeof(out)), 5);
	assert_int_equal(otlp_base64_decode("", 0, out, sizeof(out)), 0);
	assert_int_equal(otlp_base64_decode("+/-_", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
	assert_int_equal(otlp_base64_decode("a", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(otlp_base64_decode("a b=", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(otlp_base64_decode("aGVsbG8", 7, out, 4), -E2BIG);
}

/* An encoded google.rpc.Status; a RetryInfo detail of @secs.@nanos when @secs >= 0. */
static size_t status_pb(uint8_t *out, int code, int64_t secs, int32_t nanos, const char *type_url)
{
	Meshtrace__Otlp__RpcStatus st = MESHTRACE__OTLP__RPC_STATUS__INIT;
	Meshtrace__Otlp__ProtobufAny other = MESHTRACE__OTLP__PROTOBUF_ANY__INIT;
	Meshtrace__Otlp__ProtobufAny any = MESHTRACE__OTLP__PROTOBUF_ANY__INIT;
	Meshtrace__Otlp__RpcRetryInfo ri = MESHTRACE__OTLP__RPC_RETRY_INFO__INIT;
	Meshtrace__Otlp__ProtobufDuration d = MESHTRACE__OTLP__PROTOBUF_DURATION__INIT;
	Meshtrace__Otlp__ProtobufAny *details[2] = {&other, &any};
	static uint8_t ri_buf[64];

	st.code = code;
	st.message = (char *)"slow down";
	/* A detail of another type first: skipped. */
	other.type_url = (char *)"type.googleapis.com/google.rpc.DebugInfo";
	other.value.data = (uint8_t *)"\x0a\x01x";
	other.value.len = 3;
	if (secs >= 0) {
		d.seconds = secs;
		d.nanos = nanos;
		ri.retry_delay = &d;
		any.type_url = (char *)type_url;
		any.value.len = meshtrace__otlp__rpc_retry_info__pack(&ri, ri_buf);
		any.value.data = ri_buf;
		st.n_details = 2;
	} else {
		st.n_details = 1;
	}
	st.details = details;
	return meshtrace__otlp__rpc_status__pack(&st, out);
}

static void test_retry_info(void **state)
{
	uint8_t pb[256];
	size_t n;

	(void)state;
	n = status_pb(pb, 8, 2, 500000000, "type.googleapis.com/google.rpc.RetryInfo");
	assert_int_equal(otlp_grpc_retry_delay_ms(pb, n), 2500);
	n = status_pb(pb, 8, 0, 0, "type.googleapis.com/google.rpc.RetryInfo");
	assert_int_equal(otlp_grpc_retry_delay_ms(pb, n), 0);
	n = status_pb(pb, 8, 1000000, 0, "type.googleapis.com/google.rpc.RetryInfo");
	assert_int_equal(otlp_grpc_retry_delay_ms(pb, n), OTLP_RETRY_AFTER_MAX_MS);
	n = status_pb(pb, 8, 2, 0, "type.googleapis.com/google.rpc.QuotaFailure");
	assert_int_equal(otlp_grpc_retry_delay_ms(pb, n), -1);
	n = status_pb(pb, 8, -1, 0, NULL);
	assert_int_equal(otlp_grpc_retry_delay_ms(pb, n), -1);
	assert_int_equal(otlp_grpc_retry_delay_ms((const uint8_t *)"\xff\xff", 2), -1);
}

static bool line(struct otlp_grpc_status *st, const char *s)
{
	return otlp_grpc_header(st, s, strlen(s));
}

static void b64(const uint8_t *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (len - i == 1) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o++] = a[v >> 10];
		out[o++] = a[(v >> 4) & 63];
		out[o++] = a[(v & 15) << 2];
	}
	out[o] = '\0'; /* unpadded, as gRPC sends it */
}

static void test_header_lines(void **state)
{
	struct otlp_grpc_status st;
	char text[512], encoded[400];
	uint8_t pb[256];
	size_t n;

	(void)state;
	otlp_grpc_status_reset(&st);
	assert_int_equal(st.code, -1);
	assert_int_equal(st.retry_delay_ms, -1);
	/* Not ours: left to the HTTP header code. */
	assert_false(line(&st, "content-type: application/grpc\r\n"));
	assert_false(line(&st, "grpc-accept-encoding: identity, gzip\r\n"));
	assert_false(line(&st, "grpc-statusx: 3\r\n"));
	assert_false(line(&st, "\r\n"));
	assert_int_equal(st.code, -1);

	assert_true(line(&st, "grpc-status: 0\r\n"));
	assert_int_equal(st.code, 0);
	assert_true(line(&st, "Grpc-Status:14\r\n"));
	assert_int_equal(st.code, 14);
	assert_true(line(&st, "grpc-status: 1x\r\n"));
	assert_int_equal(st.code, OTLP_GRPC_UNKNOWN);
	assert_true(line(&st, "grpc-status: \r\n"));
	assert_int_equal(st.code, OTLP_GRPC_UNKNOWN);

	/* Percent-decoded, one printable line; a bad escape stays as it is. */
	assert_true(line(&st, "grpc-message: bad%20request%0Aline 2 %zz 100%\r\n"));
	assert_string_equal(st.message, "bad request line 2 %zz 100%");
	memset(text, 'm', sizeof(text));
	memcpy(text, "grpc-message: ", 14);
	text[sizeof(text) - 1] = '\0';
	assert_true(line(&st, text));
	assert_int_equal(strlen(st.message), sizeof(st.message) - 1);

	n = status_pb(pb, 8, 3, 0, "type.googleapis.com/google.rpc.RetryInfo");
	b64(pb, n, encoded);
	snprintf(text, sizeof(text), "grpc-status-details-bin: %s\r\n", encoded);
	assert_true(line(&st, text));
	assert_int_equal(st.retry_delay_ms, 3000);
	/* Details that are not base64: no RetryInfo, not an error. */
	otlp_grpc_status_reset(&st);
	assert_true(line(&st, "grpc-status-details-bin: !!!\r\n"));
	assert_int_equal(st.retry_delay_ms, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix),	     cmocka_unit_test(test_retryable),
		cmocka_unit_test(test_base64),	     cmocka_unit_test(test_retry_info),
		cmocka_unit_test(test_header_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
