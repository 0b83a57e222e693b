// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for httpd_parse_request() in agent/serve/httpd.c: the request line and
 * the Accept header (what /metrics picks its format by); and the listener's
 * bounds: clients past HTTPD_CLIENTS_MAX closed at once, a request head that
 * trickles in closed HTTPD_HEAD_MS after accept however steady it is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/common/clock.h"
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

static int connect_to(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Runs the listener until @want connections were taken or refused. */
static void poll_until(struct httpd *h, uint64_t want)
{
	struct httpd_stats st;
	struct pollfd p = {.fd = httpd_fd(h), .events = POLLIN};

	for (int i = 0; i < 200; i++) {
		httpd_stats(h, &st);
		if (st.accepted + st.rejected_full >= want)
			return;
		poll(&p, 1, 10);
		httpd_poll(h);
	}
	fail_msg("the listener took %llu of %llu connections",
		 (unsigned long long)(st.accepted + st.rejected_full), (unsigned long long)want);
}

static void test_clients_bounded(void **state)
{
	char err[256];
	struct httpd *h = httpd__new("127.0.0.1:0", err, sizeof(err));
	struct httpd_stats st;
	int fds[HTTPD_CLIENTS_MAX + 3];
	char c;

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < HTTPD_CLIENTS_MAX + 3; i++) {
		fds[i] = connect_to(httpd_port(h));
		poll_until(h, (uint64_t)i + 1); /* else the backlog fills and connect() waits */
	}
	httpd_stats(h, &st);
	assert_int_equal(st.accepted, HTTPD_CLIENTS_MAX);
	assert_int_equal(st.clients, HTTPD_CLIENTS_MAX);
	assert_int_equal(st.rejected_full, 3);
	/* The excess was closed: its reader sees the end. */
	assert_int_equal(read(fds[HTTPD_CLIENTS_MAX], &c, 1), 0);
	for (int i = 0; i < HTTPD_CLIENTS_MAX + 3; i++)
		close(fds[i]);
	httpd__free(h);
}

static void test_head_deadline(void **state)
{
	char err[256];
	struct httpd *h = httpd__new("127.0.0.1:0", err, sizeof(err));
	struct httpd_stats st;
	uint64_t t0 = mt_now_mono_ms();
	int fd;

	(void)state;
	assert_non_null(h);
	fd = connect_to(httpd_port(h));
	poll_until(h, 1);
	/* A byte now and then is progress, not a request: the head's deadline stands. */
	assert_int_equal(write(fd, "GET /metr", 9), 9);
	usleep(20000);
	httpd_poll(h);
	httpd_expire(h, t0 + HTTPD_HEAD_MS / 2);
	httpd_stats(h, &st);
	assert_int_equal(st.timed_out, 0);
	assert_int_equal(st.clients, 1);
	httpd_expire(h, mt_now_mono_ms() + HTTPD_HEAD_MS + 1);
	httpd_stats(h, &st);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.clients, 0);
	assert_int_equal(st.requests, 0);
	close(fd);
	httpd__free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_request_line), cmocka_unit_test(test_parse_accept),
		cmocka_unit_test(test_parse_accept_long),  cmocka_unit_test(test_clients_bounded),
		cmocka_unit_test(test_head_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
