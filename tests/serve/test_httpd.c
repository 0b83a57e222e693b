// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for httpd_parse_request() in agent/serve/httpd.c: the request line and
 * the Accept header (what /metrics picks its format by).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/serve/httpd.h"

static void test_parse_request_line(void **state)
{
	struct httpd_request req;

	(void)state;
	assert_int_equal(httpd_parse_request("GET /metrics?x=1 HTTP/1.1\r\n\r\n", &req), 0);
	assert_string_equal(req.method, "GET");
	assert_string_equal(req.target, "/metrics");
	assert_string_equal(req.query, "x=1");
	assert_string_equal(req.accept, "");
	assert_int_equal(httpd_parse_request("GET metrics HTTP/1.1\r\n\r\n", &req), -EINVAL);
}

static void test_parse_accept(void **state)
{
	static const char prom[] =
		"application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
	struct httpd_request req;
	char head[1024];

	(void)state;
	snprintf(head, sizeof(head),
		 "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: Prometheus/2.42.0\r\n"
		 "Accept: %s\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
		 prom);
	assert_int_equal(httpd_parse_request(head, &req), 0);
	assert_string_equal(req.accept, prom);
	/* Any case, no blank after the colon, bare LF line ends. */
	assert_int_equal(httpd_parse_request("GET / HTTP/1.0\naccept:text/plain\n\n", &req), 0);
	assert_string_equal(req.accept, "text/plain");
	/* Accept-Encoding is another header; a body after the head is not read. */
	assert_int_equal(httpd_parse_request("GET / HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
					     "Accept: nope\r\n",
					     &req),
			 0);
	assert_string_equal(req.accept, "");
}

static void test_parse_accept_long(void **state)
{
	struct httpd_request req;
	char head[2048];
	size_t n;

	(void)state;
	n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nAccept: ");
	memset(head + n, 'a', 1000);
	memcpy(head + n + 1000, "\r\n\r\n", 5);
	assert_int_equal(httpd_parse_request(head, &req), 0);
	assert_int_equal(strlen(req.accept), sizeof(req.accept) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_request_line),
		cmocka_unit_test(test_parse_accept),
		cmocka_unit_test(test_parse_accept_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
