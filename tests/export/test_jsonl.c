// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/export/jsonl.c: the exact line format, JSON escaping of
 * every string (checked by Python's json module as an independent parser),
 * buffering, appending, and write errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/export/jsonl.h"

static void make_span(struct mt_span *s, unsigned i)
{
	unsigned k;

	memset(s, 0, sizeof(*s));
	for (k = 0; k < 16; k++)
		s->trace_id[k] = (uint8_t)(0x11 * k + i);
	for (k = 0; k < 8; k++)
		s->span_id[k] = (uint8_t)(0xa0 + k + i);
	s->kind = MT_SPAN_SERVER;
	s->protocol = MT_PROTO_HTTP1;
	s->http_minor = 1;
	s->http_status = 200;
	s->server_port = 8080;
	s->peer_port = 51000;
	s->start_unix_ns = 1700000000000000123ull;
	s->end_unix_ns = 1700000000001000456ull;
	s->resp_body_bytes = 612;
	s->resource.pid = 123;
	snprintf(s->resource.service_name, sizeof(s->resource.service_name), "nginx");
	snprintf(s->resource.exe_name, sizeof(s->resource.exe_name), "nginx");
	snprintf(s->name, sizeof(s->name), "GET");
	snprintf(s->method, sizeof(s->method), "GET");
	snprintf(s->path, sizeof(s->path), "/index.html");
	snprintf(s->scheme, sizeof(s->scheme), "http");
	snprintf(s->server_address, sizeof(s->server_address), "localhost");
	snprintf(s->client_address, sizeof(s->client_address), "127.0.0.1");
	snprintf(s->peer_address, sizeof(s->peer_address), "127.0.0.1");
}

static char *tmp_path(void)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_jsonl_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path); /* the exporter creates it */
	return path;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 1 << 24, n;
	char *buf = malloc(cap);

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Runs @script with the lines of @path on stdin; returns what it printed. */
static char *python(const char *script, const char *path)
{
	char cmd[4096], *out = malloc(1 << 16);
	size_t n;
	FILE *p;
	int rc;

	assert_non_null(out);
	snprintf(cmd, sizeof(cmd), "python3 -c '%s' < %s 2>&1", script, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, (1 << 16) - 1, p);
	out[n] = '\0';
	rc = pclose(p);
	if (rc)
		fail_msg("python3 failed (%d): %s", rc, out);
	return out;
}

/* Every line parses as JSON with the documented keys; prints the line count. */
static const char check_lines[] =
	"import json, sys\n"
	"n = 0\n"
	"for line in sys.stdin:\n"
	"    assert line.endswith(\"\\n\")\n"
	"    o = json.loads(line)\n"
	"    assert list(o) == [\"trace_id\", \"span_id\", \"parent_span_id\", \"name\", "
	"\"kind\",\n"
	"        \"start_unix_nano\", \"end_unix_nano\", \"status\", \"resource\", "
	"\"attributes\"], list(o)\n"
	"    assert len(o[\"trace_id\"]) == 32 and len(o[\"span_id\"]) == 16\n"
	"    assert len(o[\"parent_span_id\"]) in (0, 16)\n"
	"    assert isinstance(o[\"resource\"][\"process.pid\"], int)\n"
	"    n += 1\n"
	"print(n)\n";

static void test_line_format(void **state)
{
	static const char want[] =
		"{\"trace_id\":\"00112233445566778899aabbccddeeff\",\"span_id\":"
		"\"a0a1a2a3a4a5a6a7\","
		"\"parent_span_id\":\"\",\"name\":\"GET\",\"kind\":\"SERVER\","
		"\"start_unix_nano\":1700000000000000123,\"end_unix_nano\":1700000000001000456,"
		"\"status\":\"UNSET\",\"resource\":{\"service.name\":\"nginx\",\"process.pid\":123,"
		"\"process.executable.name\":\"nginx\"},\"attributes\":{"
		"\"http.request.method\":\"GET\",\"url.path\":\"/"
		"index.html\",\"url.scheme\":\"http\","
		"\"http.response.status_code\":200,\"server.address\":\"localhost\","
		"\"server.port\":8080,\"client.address\":\"127.0.0.1\","
		"\"network.peer.address\":\"127.0.0.1\",\"network.peer.port\":51000,"
		"\"network.protocol.version\":\"1.1\","
		"\"http.response.body.size\":612}}\n"
		"{\"trace_id\":\"0112233445566778899aabbccddeef00\",\"span_id\":"
		"\"a1a2a3a4a5a6a7a8\","
		"\"parent_span_id\":\"0102030405060708\",\"name\":\"POST\",\"kind\":\"CLIENT\","
		"\"start_unix_nano\":1700000000000000123,\"end_unix_nano\":1700000000001000456,"
		"\"status\":\"ERROR\",\"resource\":{\"service.name\":\"nginx\",\"process.pid\":123,"
		"\"process.executable.name\":\"nginx\"},\"attributes\":{"
		"\"http.request.method\":\"POST\",\"url.full\":\"http://localhost:8080/"
		"index.html\","
		"\"http.response.status_code\":503,\"error.type\":\"503\","
		"\"server.address\":\"localhost\",\"server.port\":8080,"
		"\"network.peer.address\":\"127.0.0.1\",\"network.peer.port\":51000,"
		"\"network.protocol.version\":\"1.1\","
		"\"http.request.body.size\":42,\"http.response.body.size\":612}}\n";
	struct jsonl_exporter *x;
	struct jsonl_stats st;
	struct mt_span s;
	char *path = tmp_path(), *text, *out;
	struct stat sb;
	unsigned k;

	(void)state;
	x = jsonl_exporter__new(path);
	assert_non_null(x);
	make_span(&s, 0);
	jsonl_exporter_add_span(x, &s);
	make_span(&s, 1);
	for (k = 0; k < 8; k++)
		s.parent_span_id[k] = (uint8_t)(k + 1);
	s.kind = MT_SPAN_CLIENT;
	s.status = MT_STATUS_ERROR;
	s.http_status = 503;
	s.req_body_bytes = 42;
	snprintf(s.method, sizeof(s.method), "POST");
	snprintf(s.name, sizeof(s.name), "POST");
	jsonl_exporter_add_span(x, &s);

	/* Buffered until flushed. */
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	assert_int_equal(sb.st_mode & 0777, 0644 & ~umask(022));
	assert_int_equal(jsonl_exporter_flush(x), 0);
	text = slurp(path);
	assert_string_equal(text, want);
	out = python(check_lines, path);
	assert_string_equal(out, "2\n");
	jsonl_exporter_stats(x, &st);
	assert_int_equal(st.spans_written, 2);
	assert_int_equal(st.spans_dropped, 0);
	jsonl_exporter__free(x);
	free(out);
	free(text);
	unlink(path);
}

static void test_escaping(void **state)
{
	/* Python prints each decoded string with only ASCII, so the check is exact. */
	static const char show[] =
		"import json, sys\n"
		"for line in sys.stdin:\n"
		"    o = json.loads(line)\n"
		"    a = o[\"attributes\"]\n"
		"    print(json.dumps([o[\"name\"], o[\"resource\"][\"service.name\"],\n"
		"        o[\"resource\"][\"process.executable.name\"], a[\"url.path\"],\n"
		"        a[\"url.query\"], a[\"server.address\"], a[\"http.request.method\"],\n"
		"        a[\"http.request.method_original\"]]))\n";
	struct jsonl_exporter *x;
	struct mt_span s;
	char *path = tmp_path(), *out, *text;

	(void)state;
	x = jsonl_exporter__new(path);
	assert_non_null(x);
	make_span(&s, 0);
	snprintf(s.name, sizeof(s.name), "a\"b\\c");
	snprintf(s.resource.service_name, sizeof(s.resource.service_name),
		 "tab\there\nnl\x01\x1f\x7f");
	snprintf(s.resource.exe_name, sizeof(s.resource.exe_name), "bad\xff\xfe|\xe2\x82");
	snprintf(s.path, sizeof(s.path), "/caf\xc3\xa9/\xf0\x9f\x98\x80/\xc0\xaf/\xed\xa0\x80/");
	snprintf(s.query, sizeof(s.query), "q=\"</script>\"&x=\\u0041");
	snprintf(s.server_address, sizeof(s.server_address), "\xf4\x90\x80\x80h");
	snprintf(s.method, sizeof(s.method), "G\x02T");
	/* An unterminated array stops at its end. */
	memset(s.resource.exe_name, 'e', sizeof(s.resource.exe_name));
	jsonl_exporter_add_span(x, &s);
	snprintf(s.resource.exe_name, sizeof(s.resource.exe_name), "bad\xff\xfe|\xe2\x82");
	jsonl_exporter_add_span(x, &s);
	assert_int_equal(jsonl_exporter_flush(x), 0);
	jsonl_exporter__free(x);

	text = slurp(path);
	assert_non_null(strstr(text, "\"name\":\"a\\\"b\\\\c\""));
	assert_non_null(
		strstr(text, "\"service.name\":\"tab\\u0009here\\u000anl\\u0001\\u001f\x7f\""));
	assert_non_null(strstr(text, "\"url.path\":\"/caf\xc3\xa9/\xf0\x9f\x98\x80/"));

	out = python(show, path);
	assert_string_equal(
		out, "[\"a\\\"b\\\\c\", \"tab\\there\\nnl\\u0001\\u001f\\u007f\", "
		     "\"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\", "
		     "\"/caf\\u00e9/\\ud83d\\ude00/\\ufffd\\ufffd/\\ufffd\\ufffd\\ufffd/\", "
		     "\"q=\\\"</script>\\\"&x=\\\\u0041\", \"\\ufffd\\ufffd\\ufffd\\ufffdh\", "
		     "\"_OTHER\", \"G\\u0002T\"]\n"
		     "[\"a\\\"b\\\\c\", \"tab\\there\\nnl\\u0001\\u001f\\u007f\", "
		     "\"bad\\ufffd\\ufffd|\\ufffd\", "
		     "\"/caf\\u00e9/\\ud83d\\ude00/\\ufffd\\ufffd/\\ufffd\\ufffd\\ufffd/\", "
		     "\"q=\\\"</script>\\\"&x=\\\\u0041\", \"\\ufffd\\ufffd\\ufffd\\ufffdh\", "
		     "\"_OTHER\", \"G\\u0002T\"]\n");
	free(out);
	free(text);
	unlink(path);
}

static void test_buffering_and_append(void **state)
{
	struct jsonl_exporter *x;
	struct jsonl_stats st;
	struct mt_span s;
	char *path = tmp_path(), *out;
	unsigned i;

	(void)state;
	x = jsonl_exporter__new(path);
	assert_non_null(x);
	make_span(&s, 0);
	/* Worst case lines: every byte escaped to 6. */
	memset(s.path, 0x01, sizeof(s.path) - 1);
	memset(s.query, 0xff, sizeof(s.query) - 1);
	memset(s.tracestate, '"', sizeof(s.tracestate) - 1);
	s.kind = MT_SPAN_CLIENT;
	for (i = 0; i < 500; i++)
		jsonl_exporter_add_span(x, &s); /* writes out by itself as the buffer fills */
	jsonl_exporter_stats(x, &st);
	assert_true(st.spans_written > 0 && st.spans_written < 500);
	jsonl_exporter__free(x); /* flushes */

	x = jsonl_exporter__new(path); /* appends */
	assert_non_null(x);
	make_span(&s, 1);
	jsonl_exporter_add_span(x, &s);
	jsonl_exporter__free(x);
	out = python(check_lines, path);
	assert_string_equal(out, "501\n");
	free(out);
	unlink(path);
}

static void test_errors(void **state)
{
	struct jsonl_exporter *x;
	struct jsonl_stats st;
	struct mt_span s;

	(void)state;
	jsonl_exporter__free(NULL);
	errno = 0;
	assert_null(jsonl_exporter__new("/nonexistent-dir/spans.jsonl"));
	assert_int_equal(errno, ENOENT);
	assert_null(jsonl_exporter__new(""));
	assert_int_equal(errno, EINVAL);

	x = jsonl_exporter__new("-");
	assert_non_null(x);
	jsonl_exporter__free(x); /* nothing buffered: nothing written; stdout stays open */
	assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);

	x = jsonl_exporter__new("/dev/full");
	assert_non_null(x);
	make_span(&s, 0);
	jsonl_exporter_add_span(x, &s);
	jsonl_exporter_add_span(x, &s);
	assert_int_equal(jsonl_exporter_flush(x), -ENOSPC);
	jsonl_exporter_stats(x, &st);
	assert_int_equal(st.spans_dropped, 2);
	assert_int_equal(st.spans_written, 0);
	assert_int_equal(st.last_errno, ENOSPC);
	assert_int_equal(jsonl_exporter_flush(x), 0); /* nothing left */
	jsonl_exporter__free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_buffering_and_append),
		cmocka_unit_test(test_errors),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
