// SPDX-License-Identifier: Apache-2.0
/*
 * Tests for agent/export/otlp*.c: configuration from the environment, the
 * encoding (decoded with the OFFICIAL OTLP schema by protoc, as an independent
 * check, and compared byte for byte with a protobuf-c encoder kept here as the
 * reference), and the transport against a small HTTP server in a thread on
 * 127.0.0.1, driven through the exporter's epoll fd as the agent's loop does.
 *
 * The official .proto files live beside the repository:
 * $MESHTRACE_SHARED/otlp-proto, MESHTRACE_SHARED defaulting to ../shared
 * (make test runs from the repository root).
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "agent/common/version.h"
#include "agent/export/otlp.h"
#include "agent/export/otlp_internal.h"
#include "agent/export/span_attrs.h"
#include "agent/common/utf8.h"
#include "otlp.pb-c.h"

/* ------------------------------------------------------------------ helpers */

static const char *const otel_vars[] = {
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_METRICS_HEADERS",
	"OTEL_EXPORTER_OTLP_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
	"OTEL_EXPORTER_OTLP_INSECURE",
	"OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_EXPORTER_OTLP_METRICS_INSECURE",
	"OTEL_EXPORTER_OTLP_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_KEY",
	"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
	"OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
	"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_SERVICE_NAME",
	"OTEL_BSP_SCHEDULE_DELAY",
	"OTEL_BSP_EXPORT_TIMEOUT",
	"OTEL_BSP_MAX_QUEUE_SIZE",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
	"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
};

static void clear_env(void)
{
	size_t i;

	for (i = 0; i < sizeof(otel_vars) / sizeof(otel_vars[0]); i++)
		unsetenv(otel_vars[i]);
}

static int setup_env(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void make_span(struct mt_span *s, unsigned i, uint32_t pid, const char *svc, const char *exe,
		      uint8_t kind)
{
	unsigned k;

	memset(s, 0, sizeof(*s));
	for (k = 0; k < 16; k++)
		s->trace_id[k] = (uint8_t)(0x10 * k + i);
	/* Bytes protoc prints escaped: newline, quote, backslash, high bytes. */
	s->trace_id[1] = '\n';
	s->trace_id[2] = '"';
	s->trace_id[3] = '\\';
	s->trace_id[4] = 0xff;
	for (k = 0; k < 8; k++)
		s->span_id[k] = (uint8_t)(i * 8 + k + 1);
	s->span_id[0] = (uint8_t)i; /* which span it is, for the tests that look */
	s->span_id[7] = 0x5a;	    /* never all zero */
	if (i % 2)
		for (k = 0; k < 8; k++)
			s->parent_span_id[k] = (uint8_t)(0xc0 + k);
	s->kind = kind;
	s->status = MT_STATUS_UNSET;
	s->protocol = MT_PROTO_HTTP1;
	s->http_minor = 1;
	s->http_status = 200;
	s->server_port = 8080;
	s->client_port = (uint16_t)(50000 + i);
	s->peer_port = kind == MT_SPAN_SERVER ? s->client_port : 8080;
	s->start_unix_ns = 1700000000000000000ull + i * 1000000ull;
	s->end_unix_ns = s->start_unix_ns + 1500000;
	s->resp_body_bytes = 612;
	s->resource.pid = pid;
	snprintf(s->resource.service_name, sizeof(s->resource.service_name), "%s", svc);
	snprintf(s->resource.exe_name, sizeof(s->resource.exe_name), "%s", exe);
	snprintf(s->name, sizeof(s->name), "GET");
	snprintf(s->method, sizeof(s->method), "GET");
	snprintf(s->path, sizeof(s->path), "/api/users/%u", i);
	snprintf(s->scheme, sizeof(s->scheme), "http");
	snprintf(s->server_address, sizeof(s->server_address), "shop.local");
	snprintf(s->client_address, sizeof(s->client_address), "10.0.0.7");
	snprintf(s->peer_address, sizeof(s->peer_address), "10.0.0.7");
}

static void test_config(struct otlp_config *cfg, const char *traces_url, const char *metrics_url)
{
	otlp_config_defaults(cfg);
	snprintf(cfg->traces_url, sizeof(cfg->traces_url), "%s", traces_url);
	snprintf(cfg->metrics_url, sizeof(cfg->metrics_url), "%s", metrics_url);
	snprintf(cfg->host_name, sizeof(cfg->host_name), "node-1");
	cfg->schedule_delay_ms = 20;
	cfg->queue_max_spans = 2048; /* the tests' queues fill quickly */
	cfg->retry_base_ms = 100;
	cfg->retry_max_ms = 400;
	cfg->traces.timeout_ms = 2000;
	cfg->metrics.timeout_ms = 2000;
}

/* Gunzips (or copies) a request body. */
static uint8_t *inflate_body(const uint8_t *in, size_t len, size_t *outlen)
{
	size_t cap = len * 20 + 1024;
	uint8_t *out = malloc(cap);
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_non_null(out);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = cap - z.avail_out;
	inflateEnd(&z);
	return out;
}

static const Meshtrace__Otlp__AnyValue *find_attr(Meshtrace__Otlp__KeyValue **kv, size_t n,
						  const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key))
			return kv[i]->value;
	return NULL;
}

static const char *attr_str(Meshtrace__Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Meshtrace__Otlp__AnyValue *v = find_attr(kv, n, key);

	if (!v || v->value_case != MESHTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE)
		return NULL;
	return v->string_value;
}

static int64_t attr_int(Meshtrace__Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Meshtrace__Otlp__AnyValue *v = find_attr(kv, n, key);

	if (!v || v->value_case != MESHTRACE__OTLP__ANY_VALUE__VALUE_INT_VALUE)
		return -1;
	return v->int_value;
}

/* ---------------------------------------------------------- protoc decoding */

static const char *shared_dir(void)
{
	const char *d = getenv("MESHTRACE_SHARED");

	return d && d[0] ? d : "../shared";
}

/*
 * Skips the test when the official schema is not there. Called first by every test that
 * decodes with protoc: skip() leaves the test by longjmp, so whatever it had allocated
 * would leak (LeakSanitizer fails the SAN=1 run).
 */
static bool schema_present(void)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path),
		 "%s/otlp-proto/opentelemetry/proto/collector/trace/v1/"
		 "trace_service.proto",
		 shared_dir());
	if (stat(path, &st) == 0)
		return true;
	print_message("official schema not found at %s (set MESHTRACE_SHARED)\n", path);
	return false;
}

static void need_schema(void)
{
	if (!schema_present())
		skip();
}

/*
 * Decodes @len bytes as @type of the official schema @proto with protoc.
 * Returns the text (malloc'd), or NULL and skips the test when the schema
 * is not there (call need_schema() first: see there).
 */
static char *protoc_decode(const uint8_t *pb, size_t len, const char *type, const char *proto)
{
	char path[] = "/tmp/test_otlp_XXXXXX", cmd[1024], dir[512];
	struct stat st;
	size_t cap = 1 << 20, n = 0, r;
	char *text;
	FILE *f;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s/otlp-proto", shared_dir());
	snprintf(cmd, sizeof(cmd), "%s/%s", dir, proto);
	if (stat(cmd, &st)) {
		print_message("official schema not found at %s (set MESHTRACE_SHARED)\n", cmd);
		skip();
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pb, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "protoc --decode=%s -I '%s' %s < %s 2>&1", type, dir, proto,
		 path);
	f = popen(cmd, "r");
	assert_non_null(f);
	text = malloc(cap);
	assert_non_null(text);
	while ((r = fread(text + n, 1, cap - 1 - n, f)) > 0) {
		n += r;
		if (n == cap - 1) {
			cap *= 2;
			text = realloc(text, cap);
			assert_non_null(text);
		}
	}
	text[n] = '\0';
	rc = pclose(f);
	unlink(path);
	if (rc != 0)
		print_message("protoc failed (%d):\n%s\n", rc, text);
	assert_int_equal(rc, 0);
	assert_null(strstr(text, "invalid UTF-8"));
	return text;
}

static char *decode_traces(const uint8_t *pb, size_t len)
{
	return protoc_decode(pb, len,
			     "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
			     "opentelemetry/proto/collector/trace/v1/trace_service.proto");
}

/* Collapses runs of blanks and newlines to one space, so matches ignore indentation. */
static void squash(char *s)
{
	char *o = s;
	bool blank = false;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\n') {
			blank = true;
			continue;
		}
		if (blank && o != s)
			*o++ = ' ';
		blank = false;
		*o++ = *s;
	}
	*o = '\0';
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* protoc prints bytes C-escaped: back to bytes, then to hex. */
static size_t unescape_bytes(const char *s, const char *end, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (s < end && n < cap) {
		if (*s != '\\') {
			out[n++] = (uint8_t)*s++;
			continue;
		}
		s++;
		if (*s >= '0' && *s <= '7') {
			unsigned v = 0, k;

			for (k = 0; k < 3 && *s >= '0' && *s <= '7'; k++)
				v = v * 8 + (unsigned)(*s++ - '0');
			out[n++] = (uint8_t)v;
			continue;
		}
		switch (*s) {
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		default:
			out[n++] = (uint8_t)*s; /* \" \' \\ */
		}
		s++;
	}
	return n;
}

/* The hex of every "<field>: "..."" in @text, in order. */
static int ids_hex(const char *text, const char *field, char hex[][33], int max)
{
	char needle[64];
	int n = 0;

	snprintf(needle, sizeof(needle), " %s: \"", field); /* " span_id", not "parent_span_id" */
	while (n < max && (text = strstr(text, needle))) {
		const char *start = text + strlen(needle), *end = start;
		uint8_t bytes[32];
		size_t len, k;

		while (*end && *end != '"')
			end += *end == '\\' ? 2 : 1;
		len = unescape_bytes(start, end, bytes, sizeof(bytes));
		for (k = 0; k < len && k < 16; k++)
			snprintf(hex[n] + 2 * k, 3, "%02x", bytes[k]);
		hex[n][2 * (len < 16 ? len : 16)] = '\0';
		n++;
		text = end;
	}
	return n;
}

static void hex_of(char *dst, const uint8_t *id, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		snprintf(dst + 2 * k, 3, "%02x", id[k]);
}

/* --------------------------------------------------------------- HTTP server */

#define SRV_SCRIPT_MAX 8
#define SRV_REQS_MAX   64
#define SRV_CONNS_MAX  8

struct srv_reply {
	int status;
	char headers[256]; /* extra lines, each ending in \r\n */
	uint8_t body[256];
	size_t body_len;
};

struct srv_req {
	char path[128];
	char head[2048];
	uint8_t *body;
	size_t body_len;
	uint64_t at_ms;
};

struct srv_conn {
	int fd;
	uint8_t *buf;
	size_t len;
	size_t cap;
};

struct srv {
	int lfd;
	uint16_t port;
	pthread_t thread;
	bool running;
	bool stop;
	pthread_mutex_t mu;
	struct srv_reply script[SRV_SCRIPT_MAX];
	int n_script;
	int next;
	struct srv_reply fallback; /* once the script is used up */
	struct srv_req reqs[SRV_REQS_MAX];
	int n_reqs;
	struct srv_conn conns[SRV_CONNS_MAX];
};

/* A socket bound to an ephemeral port of 127.0.0.1, not yet listening: connections are refused. */
static struct srv *srv_new(void)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int one = 1, i;

	assert_non_null(s);
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	s->fallback.status = 200;
	snprintf(s->fallback.headers, sizeof(s->fallback.headers),
		 "Content-Type: application/x-protobuf\r\n");
	for (i = 0; i < SRV_CONNS_MAX; i++)
		s->conns[i].fd = -1;
	return s;
}

static void srv_script(struct srv *s, int status, const char *headers, const uint8_t *body,
		       size_t body_len)
{
	struct srv_reply *r = &s->script[s->n_script++];

	assert_true(s->n_script <= SRV_SCRIPT_MAX && body_len <= sizeof(r->body));
	r->status = status;
	snprintf(r->headers, sizeof(r->headers), "%s", headers ? headers : "");
	if (body_len)
		memcpy(r->body, body, body_len);
	r->body_len = body_len;
}

static void srv_url(const struct srv *s, char *dst, size_t cap, const char *path)
{
	snprintf(dst, cap, "http://127.0.0.1:%u%s", s->port, path);
}

/* Answers one complete request at the start of @c's buffer; false when there is none yet. */
static bool srv_answer(struct srv *s, struct srv_conn *c)
{
	const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	size_t head_len, body_len = 0;
	struct srv_reply *r;
	struct srv_req *q;
	char out[1024];
	const char *cl;
	int n;

	if (!end)
		return false;
	head_len = (size_t)(end - (char *)c->buf) + 4;
	c->buf[head_len - 1] = '\0';
	cl = strcasestr((char *)c->buf, "\r\ncontent-length:");
	if (cl)
		body_len = strtoul(cl + 17, NULL, 10);
	c->buf[head_len - 1] = '\n';
	if (c->len < head_len + body_len)
		return false;

	pthread_mutex_lock(&s->mu);
	r = s->next < s->n_script ? &s->script[s->next++] : &s->fallback;
	if (s->n_reqs < SRV_REQS_MAX) {
		q = &s->reqs[s->n_reqs++];
		sscanf((char *)c->buf, "POST %127s", q->path);
		snprintf(q->head, sizeof(q->head), "%.*s", (int)head_len, (char *)c->buf);
		q->body = malloc(body_len ? body_len : 1);
		memcpy(q->body, c->buf + head_len, body_len);
		q->body_len = body_len;
		q->at_ms = now_ms();
	}
	n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n", r->status,
		     r->headers, r->body_len);
	memcpy(out + n, r->body, r->body_len);
	n += (int)r->body_len;
	pthread_mutex_unlock(&s->mu);

	assert_int_equal(write(c->fd, out, (size_t)n), n);
	memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
	c->len -= head_len + body_len;
	return true;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	for (;;) {
		struct pollfd pfd[SRV_CONNS_MAX + 1];
		int i, n = 0;
		bool stop;

		pthread_mutex_lock(&s->mu);
		stop = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		pfd[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		for (i = 0; i < SRV_CONNS_MAX; i++)
			pfd[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, 20) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

			for (i = 0; fd >= 0 && i < SRV_CONNS_MAX; i++) {
				if (s->conns[i].fd < 0) {
					s->conns[i].fd = fd;
					s->conns[i].len = 0;
					fd = -1;
				}
			}
			if (fd >= 0)
				close(fd);
		}
		for (i = 0; i < SRV_CONNS_MAX; i++) {
			struct srv_conn *c = &s->conns[i];
			ssize_t r;

			if (c->fd < 0 || !(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (c->cap - c->len < 65536) {
				c->cap = c->cap * 2 + 65536;
				c->buf = realloc(c->buf, c->cap);
			}
			r = read(c->fd, c->buf + c->len, c->cap - c->len);
			if (r <= 0) {
				close(c->fd);
				c->fd = -1;
				continue;
			}
			c->len += (size_t)r;
			while (srv_answer(s, c))
				;
		}
	}
	return NULL;
}

static void srv_start(struct srv *s)
{
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
	s->running = true;
}

static int srv_count(struct srv *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n_reqs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void srv_free(struct srv *s)
{
	int i;

	if (s->running) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	for (i = 0; i < SRV_CONNS_MAX; i++) {
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
		free(s->conns[i].buf);
	}
	for (i = 0; i < s->n_reqs; i++)
		free(s->reqs[i].body);
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* The spans of a recorded (gzip'd) trace request, unpacked with our schema. */
static Meshtrace__Otlp__ExportTraceServiceRequest *srv_trace_req(struct srv *s, int i)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	size_t len;
	uint8_t *pb = inflate_body(s->reqs[i].body, s->reqs[i].body_len, &len);

	req = meshtrace__otlp__export_trace_service_request__unpack(NULL, len, pb);
	free(pb);
	assert_non_null(req);
	return req;
}

static size_t req_span_count(const Meshtrace__Otlp__ExportTraceServiceRequest *req)
{
	size_t n = 0, r;

	for (r = 0; r < req->n_resource_spans; r++)
		n += req->resource_spans[r]->scope_spans[0]->n_spans;
	return n;
}

/* ------------------------------------------------------------ the event loop */

struct loop {
	int epfd;
	unsigned polls;
};

static void loop_init(struct loop *l, struct otlp_exporter *x)
{
	struct epoll_event ev = {.events = EPOLLIN};

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(l->epfd >= 0);
	ev.data.fd = otlp_exporter_fd(x);
	assert_int_equal(epoll_ctl(l->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev), 0);
	l->polls = 0;
}

typedef bool (*until_fn)(struct otlp_exporter *x, void *ctx);

/* Runs the loop as the agent does until @until holds or @max_ms pass; returns whether it held. */
static bool loop_run(struct loop *l, struct otlp_exporter *x, until_fn until, void *ctx, int max_ms)
{
	uint64_t end = now_ms() + (uint64_t)max_ms;

	for (;;) {
		struct epoll_event ev;
		uint64_t now;
		int t;

		if (until && until(x, ctx))
			return true;
		now = now_ms();
		if (now >= end)
			return false;
		t = otlp_exporter_timeout_ms(x);
		if (t < 0 || (uint64_t)t > end - now)
			t = (int)(end - now);
		if (until && t > 50)
			t = 50; /* the server thread may change what @until looks at */
		epoll_wait(l->epfd, &ev, 1, t);
		otlp_exporter_poll(x);
		l->polls++;
	}
}

static bool exported_at_least(struct otlp_exporter *x, void *ctx)
{
	struct otlp_stats st;

	otlp_exporter_stats(x, &st);
	return st.spans_exported >= *(uint64_t *)ctx;
}

static bool queue_empty(struct otlp_exporter *x, void *ctx)
{
	struct otlp_stats st;

	(void)ctx;
	otlp_exporter_stats(x, &st);
	return st.queue_spans == 0;
}

static bool failed_at_least(struct otlp_exporter *x, void *ctx)
{
	struct otlp_stats st;

	otlp_exporter_stats(x, &st);
	return st.batches_failed >= *(uint64_t *)ctx;
}

static bool sent_at_least(struct otlp_exporter *x, void *ctx)
{
	struct otlp_stats st;

	otlp_exporter_stats(x, &st);
	return st.batches_sent >= *(uint64_t *)ctx;
}

/* ------------------------------------------------------------ config tests */

static void expect_einval(const char *var, const char *value, const char *in_msg)
{
	struct otlp_config cfg;
	char err[512];

	clear_env();
	setenv(var, value, 1);
	if (strcmp(var, "OTEL_EXPORTER_OTLP_ENDPOINT") &&
	    strcmp(var, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
		setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	err[0] = '\0';
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	if (!strstr(err, var) || (in_msg && !strstr(err, in_msg)))
		fail_msg("%s=%s: message \"%s\" lacks \"%s\"", var, value, err,
			 in_msg ? in_msg : var);
	assert_null(strchr(err, '\n'));
	clear_env();
}

static void test_config_defaults(void **state)
{
	struct otlp_config cfg;
	char err[256], host[256] = "";

	(void)state;
	gethostname(host, sizeof(host));
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.traces_url, "");
	assert_string_equal(cfg.metrics_url, "");
	assert_true(cfg.traces.gzip && cfg.metrics.gzip);
	assert_int_equal(cfg.traces.timeout_ms, 10000);
	assert_int_equal(cfg.metrics.timeout_ms, 10000);
	assert_int_equal(cfg.schedule_delay_ms, 5000);
	assert_int_equal(cfg.export_timeout_ms, 30000);
	assert_int_equal(cfg.batch_max, OTLP_DEFAULT_BATCH_MAX);
	assert_int_equal(cfg.queue_max_spans, OTLP_DEFAULT_QUEUE_MAX);
	assert_int_equal(cfg.traces.n_headers, 0);
	assert_int_equal(cfg.n_resource_attrs, 0);
	assert_int_equal(cfg.n_known_methods, 0);
	assert_string_equal(cfg.host_name, host);
	assert_string_equal(err, "");
}

static void test_config_empty_is_unset(void **state)
{
	struct otlp_config cfg, def;
	char err[256];
	size_t i;

	(void)state;
	assert_int_equal(otlp_config_from_env(&def, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(otel_vars) / sizeof(otel_vars[0]); i++)
		setenv(otel_vars[i], "", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_memory_equal(&cfg, &def, sizeof(cfg));
	clear_env();
}

static void test_config_endpoint_rules(void **state)
{
	static const struct {
		const char *base, *traces, *metrics;
	} cases[] = {
		{"http://c:4318", "http://c:4318/v1/traces", "http://c:4318/v1/metrics"},
		{"http://c:4318/", "http://c:4318/v1/traces", "http://c:4318/v1/metrics"},
		{"https://c.example/otlp", "https://c.example/otlp/v1/traces",
		 "https://c.example/otlp/v1/metrics"},
		{"https://c.example/otlp/", "https://c.example/otlp/v1/traces",
		 "https://c.example/otlp/v1/metrics"},
		{"http://[::1]:4318", "http://[::1]:4318/v1/traces",
		 "http://[::1]:4318/v1/metrics"},
		{"  http://c:4318  ", NULL, NULL}, /* blanks: not a URL */
		{"HTTP://C:4318", "HTTP://C:4318/v1/traces", "HTTP://C:4318/v1/metrics"},
	};
	struct otlp_config cfg;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		clear_env();
		setenv("OTEL_EXPORTER_OTLP_ENDPOINT", cases[i].base, 1);
		if (!cases[i].traces) {
			assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
			continue;
		}
		assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
		assert_string_equal(cfg.traces_url, cases[i].traces);
		assert_string_equal(cfg.metrics_url, cases[i].metrics);
	}

	/* Signal-specific URLs are used as they are, and win. */
	clear_env();
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9999/custom/path", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.traces_url, "http://t:9999/custom/path");
	assert_string_equal(cfg.metrics_url, "http://base:4318/v1/metrics");

	clear_env();
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4318", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.traces_url, "");
	assert_string_equal(cfg.metrics_url, "http://m:4318");
	clear_env();
}

static void test_config_bad_urls(void **state)
{
	(void)state;
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "http://");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4318", "not an http");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "no host");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://:4318/", "no host");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:99999", "port");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:43a8", "port");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:", "port");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/?x=1", "query");
	expect_einval("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1/", "IPv6");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://c:4317", "\"grpc://c:4317\"");
	expect_einval("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c 1/", "spaces");
}

static void test_config_headers(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS",
	       " api-key = s%20e%3Dc%2Cret ,X-Tenant=acme,, Authorization=Basic%20dTpw", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=traces-team,X-Extra=%E2%9C%93", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);

	/*
	 * traces: the signal's list replaces the general one whole (not merged),
	 * as the spec's "overridable by a signal specific option" and the Java,
	 * Python and Go SDKs read it.
	 */
	assert_int_equal(cfg.traces.n_headers, 2);
	assert_string_equal(cfg.traces.headers[0].name, "x-tenant");
	assert_string_equal(cfg.traces.headers[0].value, "traces-team");
	assert_string_equal(cfg.traces.headers[1].name, "X-Extra");
	assert_string_equal(cfg.traces.headers[1].value, "\xe2\x9c\x93");
	/* metrics: the general ones (percent-decoded, blanks trimmed, empty items skipped). */
	assert_int_equal(cfg.metrics.n_headers, 3);
	assert_string_equal(cfg.metrics.headers[0].name, "api-key");
	assert_string_equal(cfg.metrics.headers[0].value, "s e=c,ret");
	assert_string_equal(cfg.metrics.headers[1].name, "X-Tenant");
	assert_string_equal(cfg.metrics.headers[1].value, "acme");
	assert_string_equal(cfg.metrics.headers[2].name, "Authorization");
	assert_string_equal(cfg.metrics.headers[2].value, "Basic dTpw");

	setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "api-key=other", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.metrics.n_headers, 1);
	assert_string_equal(cfg.metrics.headers[0].value, "other");
	assert_int_equal(cfg.traces.n_headers, 2);

	/* An empty signal variable is unset: the general list applies. */
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.n_headers, 3);
	assert_string_equal(cfg.traces.headers[0].value, "s e=c,ret");
	/* Within one list a later item replaces an earlier one of the same name. */
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1,A=2", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.n_headers, 1);
	assert_string_equal(cfg.traces.headers[0].value, "2");
	/* The general list is read for a signal without its own only. */
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS");
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "t=1", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "bad", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_HEADERS"));
	setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "m=1", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.traces.headers[0].name, "t");
	assert_string_equal(cfg.metrics.headers[0].name, "m");
	clear_env();
}

/*
 * The agent's own service.name (its graph and health metrics): OTEL_SERVICE_NAME
 * over service.name in OTEL_RESOURCE_ATTRIBUTES; neither names observed processes.
 */
static void test_config_service_name(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	clear_env();
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.service_name, "");
	setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=a", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.service_name, "from-attrs");
	setenv("OTEL_SERVICE_NAME", "meshtrace-node-7", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.service_name, "meshtrace-node-7");
	setenv("OTEL_SERVICE_NAME", "", 1); /* empty: unset */
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.service_name, "from-attrs");
	clear_env();
	expect_einval("OTEL_SERVICE_NAME", "bad\xff", "UTF-8");
	clear_env();
}

static void test_config_bad_headers(void **state)
{
	struct otlp_config cfg;
	char err[512], many[2048] = "";
	int i;

	(void)state;
	expect_einval("OTEL_EXPORTER_OTLP_HEADERS", "api-key", "key=value");
	expect_einval("OTEL_EXPORTER_OTLP_HEADERS", "api-key=%zz", "escape");
	expect_einval("OTEL_EXPORTER_OTLP_HEADERS", "api-key=%4", "escape");
	expect_einval("OTEL_EXPORTER_OTLP_HEADERS", "=v", "empty key");
	expect_einval("OTEL_EXPORTER_OTLP_HEADERS", "bad name=v", "header name");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x=a%0D%0AHost: evil", "control");
	expect_einval("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "Content-Encoding=br", "COMPRESSION");
	for (i = 0; i <= OTLP_HEADERS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "h%d=v,", i);
	expect_einval("OTEL_EXPORTER_OTLP_HEADERS", many, "more than");

	/* Values are secrets: never echoed. */
	clear_env();
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20TOPSECRET%0A", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "TOPSECRET"));
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "TOPSECRET", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "TOPSECRET"));
	clear_env();
}

static void test_config_compression(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_false(cfg.traces.gzip);
	assert_false(cfg.metrics.gzip);
	setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "GZIP", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_true(cfg.traces.gzip);
	assert_false(cfg.metrics.gzip);
	setenv("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_true(cfg.metrics.gzip);
	clear_env();
	expect_einval("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "gzip");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd", "none");
}

static void test_config_timeout(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", " 700 ", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.timeout_ms, 2500);
	assert_int_equal(cfg.metrics.timeout_ms, 700);

	/* The exact wording users see. */
	clear_env();
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "abc", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "OTEL_EXPORTER_OTLP_TIMEOUT=\"abc\": not a number of "
				 "milliseconds; unset it or give e.g. 10000");

	expect_einval("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", "not a number");
	expect_einval("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "not a number");
	expect_einval("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "out of range");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "99999999999999999999", "not a number");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "3600001", "out of range");
}

static void test_config_protocol(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.protocol, OTLP_HTTP_PROTOBUF);
	assert_int_equal(cfg.metrics.protocol, OTLP_HTTP_PROTOBUF);
	clear_env();
	expect_einval("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "not export OTLP as JSON");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "grpc");
	expect_einval("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "thrift", "unknown protocol");
	expect_einval("OTEL_EXPORTER_OTLP_PROTOCOL", "GRPC", "unknown protocol");

	/* gRPC: the endpoint as is, the method's path added; no /v1/<signal>. */
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317/", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.protocol, OTLP_GRPC);
	assert_int_equal(cfg.metrics.protocol, OTLP_GRPC);
	assert_string_equal(
		cfg.traces_url,
		"http://c:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	assert_string_equal(
		cfg.metrics_url,
		"http://c:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");

	/* Signal-specific over generic, for the protocol and for the endpoint. */
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://g:4317", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.protocol, OTLP_GRPC);
	assert_int_equal(cfg.metrics.protocol, OTLP_HTTP_PROTOBUF);
	assert_string_equal(
		cfg.traces_url,
		"https://g:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	assert_string_equal(cfg.metrics_url, "http://c:4318/v1/metrics");
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf", 1);
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.traces.protocol, OTLP_GRPC);
	assert_int_equal(cfg.metrics.protocol, OTLP_HTTP_PROTOBUF);
	assert_string_equal(cfg.metrics_url, "http://c:4317/v1/metrics");
	clear_env();

	/* host:port without a scheme: https, or http when INSECURE; 4317 by default. */
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.traces_url,
			    "https://collector:4317/"
			    "opentelemetry.proto.collector.trace.v1.TraceService/Export");
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "[::1]:9000", 1);
	setenv("OTEL_EXPORTER_OTLP_INSECURE", "true", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "false", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(
		cfg.traces_url,
		"http://[::1]:9000/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	assert_string_equal(cfg.metrics_url,
			    "https://[::1]:9000/"
			    "opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
	/* A scheme wins over INSECURE. */
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_true(!strncmp(cfg.traces_url, "https://c:4317/", 15));
	clear_env();
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317/v1/traces", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_ENDPOINT=\"http://c:4317/v1/traces\""));
	assert_non_null(strstr(err, "has no path"));
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "yes", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(
		strstr(err, "OTEL_EXPORTER_OTLP_TRACES_INSECURE=\"yes\": give true or false"));
	clear_env();
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_config_tls(void **state)
{
	char dir[] = "/tmp/mt-test-tls-XXXXXX", ca[64], crt[64], key[64], txt[64];
	struct otlp_config cfg;
	char err[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(crt, sizeof(crt), "%s/crt.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(txt, sizeof(txt), "%s/not.pem", dir);
	/* The agent only checks that these are readable PEM files; curl parses them. */
	write_file(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	write_file(crt, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	write_file(key, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
	write_file(txt, "hello\n");

	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca, 1);
	setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", crt, 1);
	setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", key, 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", crt, 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.traces.ca_file, ca);
	assert_string_equal(cfg.metrics.ca_file, crt); /* signal-specific wins */
	assert_string_equal(cfg.traces.client_cert, crt);
	assert_string_equal(cfg.traces.client_key, key);
	assert_string_equal(cfg.metrics.client_key, key);
	clear_env();

	expect_einval("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "cannot read");
	expect_einval("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", txt, "not a PEM file");
	expect_einval("OTEL_EXPORTER_OTLP_CLIENT_KEY", key,
		      "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE");
	expect_einval("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", crt, "needs its key");
	unlink(ca);
	unlink(crt);
	unlink(key);
	unlink(txt);
	rmdir(dir);
}

static void test_config_resource_attrs(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_RESOURCE_ATTRIBUTES",
	       "deployment.environment=prod, team = a%2Cb ,host.name=node-7,"
	       "service.name=fallback,k8s.cluster.name=%E6%9D%B1,team=c",
	       1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.host_name, "node-7");
	assert_int_equal(cfg.n_resource_attrs, 4);
	assert_string_equal(cfg.resource_attrs[0].key, "deployment.environment");
	assert_string_equal(cfg.resource_attrs[0].value, "prod");
	assert_string_equal(cfg.resource_attrs[1].key, "team");
	assert_string_equal(cfg.resource_attrs[1].value, "c"); /* the last one wins */
	assert_string_equal(cfg.resource_attrs[2].key, "service.name");
	assert_string_equal(cfg.resource_attrs[3].value, "\xe6\x9d\xb1");
	clear_env();

	expect_einval("OTEL_RESOURCE_ATTRIBUTES", "=x", "empty key");
	expect_einval("OTEL_RESOURCE_ATTRIBUTES", "k", "key=value");
	expect_einval("OTEL_RESOURCE_ATTRIBUTES", "k=%ff", "UTF-8");
	expect_einval("OTEL_RESOURCE_ATTRIBUTES", "k=%00", "escape");
}

static void test_config_bsp(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_BSP_SCHEDULE_DELAY", "0", 1);
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "1500", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4096", 1);
	setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.schedule_delay_ms, 0);
	assert_int_equal(cfg.export_timeout_ms, 1500);
	assert_int_equal(cfg.queue_max_spans, 4096);
	assert_int_equal(cfg.batch_max, 256);
	clear_env();

	expect_einval("OTEL_BSP_SCHEDULE_DELAY", "soon", "milliseconds");
	expect_einval("OTEL_BSP_EXPORT_TIMEOUT", "-1", "milliseconds");
	expect_einval("OTEL_BSP_MAX_QUEUE_SIZE", "0", "out of range");
	expect_einval("OTEL_BSP_MAX_QUEUE_SIZE", "1e6", "not a number");
	expect_einval("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100000", "out of range");
	/* A batch larger than the queue. */
	{
		struct otlp_config qcfg;
		char qerr[512] = "";

		clear_env();
		setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
		setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2048", 1);
		setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4000", 1);
		assert_int_equal(otlp_config_from_env(&qcfg, qerr, sizeof(qerr)), -EINVAL);
		assert_non_null(strstr(qerr, "OTEL_BSP_MAX_QUEUE_SIZE"));
		clear_env();
	}
}

static void test_config_known_methods(void **state)
{
	struct otlp_config cfg;
	char err[512];

	(void)state;
	setenv("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET, PURGE,,POST", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_known_methods, 3);
	assert_string_equal(cfg.known_methods[1], "PURGE");
	clear_env();
	expect_einval("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,BAD METHOD", "not an HTTP");
	expect_einval("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", ",", "no method");
}

/* ------------------------------------------- the protobuf-c reference encoder */

/*
 * The span encoder as it was before agent/export/otlp_encode.c wrote the wire
 * format itself: a protobuf-c message tree, packed. Kept here, test-only, as
 * the reference the new encoder's output is compared with (golden tests
 * below). It allocates per call; speed is not its business.
 */

#define REF_OWN_ATTRS  3
#define REF_COMMON_MAX (4 + OTLP_RESOURCE_ATTRS_MAX)

struct ref_enc {
	const struct otlp_config *cfg;
	Meshtrace__Otlp__KeyValue common_kv[REF_COMMON_MAX];
	Meshtrace__Otlp__AnyValue common_av[REF_COMMON_MAX];
	size_t n_common;
	char *arena;
	size_t arena_len;
	size_t arena_cap;
};

static char *ref_unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* @s itself when valid UTF-8 and not to be copied, else a (repaired) copy in the arena. */
static char *ref_wire_str(struct ref_enc *e, const char *s, bool copy)
{
	size_t len = strlen(s);
	char *dst;

	if (!copy && utf8_valid(s, len))
		return ref_unconst(s);
	assert_true(e->arena_cap - e->arena_len >= 3 * len + 1);
	dst = e->arena + e->arena_len;
	e->arena_len += utf8_sanitize(dst, 3 * len + 1, s, len) + 1;
	return dst;
}

static void ref_set_str(Meshtrace__Otlp__KeyValue *kv, Meshtrace__Otlp__AnyValue *av,
			const char *key, char *val)
{
	meshtrace__otlp__key_value__init(kv);
	meshtrace__otlp__any_value__init(av);
	kv->key = ref_unconst(key);
	kv->value = av;
	av->value_case = MESHTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = val;
}

static void ref_set_int(Meshtrace__Otlp__KeyValue *kv, Meshtrace__Otlp__AnyValue *av,
			const char *key, int64_t val)
{
	meshtrace__otlp__key_value__init(kv);
	meshtrace__otlp__any_value__init(av);
	kv->key = ref_unconst(key);
	kv->value = av;
	av->value_case = MESHTRACE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
	av->int_value = val;
}

static bool ref_is_agent_key(const char *key)
{
	return !strcmp(key, "service.name") || !strcmp(key, "process.pid") ||
	       !strcmp(key, "process.executable.name") || !strcmp(key, "host.name") ||
	       !strncmp(key, "telemetry.sdk.", strlen("telemetry.sdk."));
}

static void ref_build_common(struct ref_enc *e)
{
	const struct otlp_config *cfg = e->cfg;
	size_t n = 0, i;

	if (cfg->host_name[0]) {
		ref_set_str(&e->common_kv[n], &e->common_av[n], "host.name",
			    ref_unconst(cfg->host_name));
		n++;
	}
	ref_set_str(&e->common_kv[n], &e->common_av[n], "telemetry.sdk.name", "meshtrace");
	n++;
	ref_set_str(&e->common_kv[n], &e->common_av[n], "telemetry.sdk.language", "c");
	n++;
	ref_set_str(&e->common_kv[n], &e->common_av[n], "telemetry.sdk.version", MESHTRACE_VERSION);
	n++;
	for (i = 0; i < cfg->n_resource_attrs && i < OTLP_RESOURCE_ATTRS_MAX; i++) {
		const struct otlp_kv *a = &cfg->resource_attrs[i];

		if (ref_is_agent_key(a->key))
			continue;
		ref_set_str(&e->common_kv[n], &e->common_av[n], a->key, ref_unconst(a->value));
		n++;
	}
	e->n_common = n;
}

/* Encodes like the old otlp_encode_spans(); *@out is malloc()ed. */
static void ref_encode(const struct mt_span *spans, size_t n, const struct otlp_config *cfg,
		       uint8_t **out, size_t *outlen)
{
	Meshtrace__Otlp__ExportTraceServiceRequest req =
		MESHTRACE__OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Meshtrace__Otlp__InstrumentationScope scope = MESHTRACE__OTLP__INSTRUMENTATION_SCOPE__INIT;
	size_t cap = n ? n : 1, i, r, n_res = 0, per_res = REF_OWN_ATTRS + REF_COMMON_MAX;
	Meshtrace__Otlp__ResourceSpans *rs = calloc(cap, sizeof(*rs));
	Meshtrace__Otlp__ResourceSpans **rs_ptrs = calloc(cap, sizeof(*rs_ptrs));
	Meshtrace__Otlp__ScopeSpans *ss = calloc(cap, sizeof(*ss));
	Meshtrace__Otlp__ScopeSpans **ss_ptrs = calloc(cap, sizeof(*ss_ptrs));
	Meshtrace__Otlp__Resource *res = calloc(cap, sizeof(*res));
	Meshtrace__Otlp__KeyValue *res_kv = calloc(cap * REF_OWN_ATTRS, sizeof(*res_kv));
	Meshtrace__Otlp__AnyValue *res_av = calloc(cap * REF_OWN_ATTRS, sizeof(*res_av));
	Meshtrace__Otlp__KeyValue **res_kv_ptrs = calloc(cap * per_res, sizeof(*res_kv_ptrs));
	Meshtrace__Otlp__Span *sp = calloc(cap, sizeof(*sp));
	Meshtrace__Otlp__Span **sp_ptrs = calloc(cap, sizeof(*sp_ptrs));
	Meshtrace__Otlp__Status *status = calloc(cap, sizeof(*status));
	Meshtrace__Otlp__KeyValue *kv = calloc(cap * SPAN_ATTRS_MAX, sizeof(*kv));
	Meshtrace__Otlp__AnyValue *av = calloc(cap * SPAN_ATTRS_MAX, sizeof(*av));
	Meshtrace__Otlp__KeyValue **kv_ptrs = calloc(cap * SPAN_ATTRS_MAX, sizeof(*kv_ptrs));
	uint32_t *res_pid = calloc(cap, sizeof(*res_pid));
	uint32_t *span_res = calloc(cap, sizeof(*span_res));
	size_t *res_count = calloc(cap, sizeof(*res_count));
	size_t *res_next = calloc(cap, sizeof(*res_next));
	struct ref_enc e = {.cfg = cfg};
	static const uint8_t zero[8];
	size_t slot, off;

	assert_true(rs && rs_ptrs && ss && ss_ptrs && res && res_kv && res_av && res_kv_ptrs &&
		    sp && sp_ptrs && status && kv && av && kv_ptrs && res_pid && span_res &&
		    res_count && res_next);
	e.arena_cap = cap * 3 * (sizeof(struct mt_span) + sizeof(struct span_attrs) + 64);
	e.arena = malloc(e.arena_cap);
	assert_non_null(e.arena);
	ref_build_common(&e);
	scope.name = "meshtrace";
	scope.version = MESHTRACE_VERSION;

	/* Processes in order of first appearance, spans in batch order within each. */
	for (i = 0; i < n; i++) {
		for (r = 0; r < n_res && res_pid[r] != spans[i].resource.pid; r++)
			;
		if (r == n_res)
			res_pid[n_res++] = spans[i].resource.pid;
		res_count[r]++;
		span_res[i] = (uint32_t)r;
	}
	for (r = 0, off = 0; r < n_res; r++) {
		const struct mt_resource *p = NULL;
		Meshtrace__Otlp__KeyValue **ptrs = &res_kv_ptrs[r * per_res];
		char exe[MT_EXE_MAX], svc[MT_SERVICE_MAX + sizeof("unknown_service:")];
		size_t k = 0, j;

		for (i = 0; i < n && !p; i++)
			if (span_res[i] == r)
				p = &spans[i].resource;
		/* What snprintf() into exe[] keeps of an unterminated exe_name: 31 bytes. */
		snprintf(exe, sizeof(exe), "%.*s", (int)sizeof(exe) - 1, p->exe_name);
		if (p->service_name[0])
			snprintf(svc, sizeof(svc), "%.*s", (int)sizeof(p->service_name),
				 p->service_name);
		else if (exe[0])
			snprintf(svc, sizeof(svc), "unknown_service:%s", exe);
		else
			snprintf(svc, sizeof(svc), "unknown_service");
		ref_set_str(&res_kv[r * REF_OWN_ATTRS], &res_av[r * REF_OWN_ATTRS], "service.name",
			    ref_wire_str(&e, svc, true));
		ptrs[k++] = &res_kv[r * REF_OWN_ATTRS];
		ref_set_int(&res_kv[r * REF_OWN_ATTRS + 1], &res_av[r * REF_OWN_ATTRS + 1],
			    "process.pid", p->pid);
		ptrs[k++] = &res_kv[r * REF_OWN_ATTRS + 1];
		if (exe[0]) {
			ref_set_str(&res_kv[r * REF_OWN_ATTRS + 2], &res_av[r * REF_OWN_ATTRS + 2],
				    "process.executable.name", ref_wire_str(&e, exe, true));
			ptrs[k++] = &res_kv[r * REF_OWN_ATTRS + 2];
		}
		for (j = 0; j < e.n_common; j++)
			ptrs[k++] = &e.common_kv[j];
		meshtrace__otlp__resource_spans__init(&rs[r]);
		meshtrace__otlp__scope_spans__init(&ss[r]);
		meshtrace__otlp__resource__init(&res[r]);
		res[r].n_attributes = k;
		res[r].attributes = ptrs;
		ss[r].scope = &scope;
		ss[r].n_spans = res_count[r];
		ss[r].spans = &sp_ptrs[off];
		ss_ptrs[r] = &ss[r];
		rs[r].resource = &res[r];
		rs[r].n_scope_spans = 1;
		rs[r].scope_spans = &ss_ptrs[r];
		rs_ptrs[r] = &rs[r];
		res_next[r] = off;
		off += res_count[r];
	}
	for (i = 0; i < n; i++) {
		const struct mt_span *s = &spans[i];
		Meshtrace__Otlp__Span *o;
		struct span_attrs attrs;
		unsigned a;

		slot = res_next[span_res[i]]++;
		o = &sp[slot];
		sp_ptrs[slot] = o;
		meshtrace__otlp__span__init(o);
		o->trace_id.len = sizeof(s->trace_id);
		o->trace_id.data = (uint8_t *)(uintptr_t)s->trace_id;
		o->span_id.len = sizeof(s->span_id);
		o->span_id.data = (uint8_t *)(uintptr_t)s->span_id;
		if (memcmp(s->parent_span_id, zero, sizeof(zero))) {
			o->parent_span_id.len = sizeof(s->parent_span_id);
			o->parent_span_id.data = (uint8_t *)(uintptr_t)s->parent_span_id;
		}
		o->trace_state = ref_wire_str(&e, s->tracestate, false);
		o->name = ref_wire_str(&e, s->name, false);
		o->kind = (Meshtrace__Otlp__Span__SpanKind)s->kind;
		o->start_time_unix_nano = s->start_unix_ns;
		o->end_time_unix_nano = s->end_unix_ns;
		if (s->status != MT_STATUS_UNSET) {
			meshtrace__otlp__status__init(&status[slot]);
			status[slot].code = (Meshtrace__Otlp__Status__StatusCode)s->status;
			o->status = &status[slot];
		}
		span_attrs_build(&attrs, s, cfg->known_methods, cfg->n_known_methods);
		for (a = 0; a < attrs.n; a++) {
			const struct span_attr *at = &attrs.attr[a];
			size_t k = slot * SPAN_ATTRS_MAX + a;

			if (at->type == SPAN_ATTR_INT)
				ref_set_int(&kv[k], &av[k], at->key, at->num);
			else
				ref_set_str(&kv[k], &av[k], at->key,
					    ref_wire_str(&e, at->str, at->local));
			kv_ptrs[k] = &kv[k];
		}
		o->n_attributes = attrs.n;
		o->attributes = &kv_ptrs[slot * SPAN_ATTRS_MAX];
	}
	req.n_resource_spans = n_res;
	req.resource_spans = rs_ptrs;
	*outlen = protobuf_c_message_get_packed_size(&req.base);
	*out = malloc(*outlen ? *outlen : 1);
	assert_non_null(*out);
	assert_int_equal(protobuf_c_message_pack(&req.base, *out), *outlen);

	free(rs);
	free(rs_ptrs);
	free(ss);
	free(ss_ptrs);
	free(res);
	free(res_kv);
	free(res_av);
	free(res_kv_ptrs);
	free(sp);
	free(sp_ptrs);
	free(status);
	free(kv);
	free(av);
	free(kv_ptrs);
	free(res_pid);
	free(span_res);
	free(res_count);
	free(res_next);
	free(e.arena);
}

/* ---------------------------------------------------------- encoding tests */

/* 3 server spans of nginx (pid 100), 2 client spans of curl (pid 200), interleaved. */
static void two_processes(struct mt_span s[5])
{
	make_span(&s[0], 0, 100, "nginx", "nginx", MT_SPAN_SERVER);
	make_span(&s[1], 1, 200, "shop-client", "curl", MT_SPAN_CLIENT);
	make_span(&s[2], 2, 100, "nginx", "nginx", MT_SPAN_SERVER);
	make_span(&s[3], 3, 200, "shop-client", "curl", MT_SPAN_CLIENT);
	make_span(&s[4], 4, 100, "nginx", "nginx", MT_SPAN_SERVER);
	snprintf(s[2].query, sizeof(s[2].query), "page=2&sort=name");
	s[2].http_status = 503;
	s[2].status = MT_STATUS_ERROR;
	s[2].req_body_bytes = 17;
	snprintf(s[2].tracestate, sizeof(s[2].tracestate), "vendor=abc,other=1");
	snprintf(s[3].query, sizeof(s[3].query), "x=1");
	snprintf(s[3].server_address, sizeof(s[3].server_address), "api.internal");
	s[3].http_minor = 0;
	snprintf(s[4].method, sizeof(s[4].method), "PURGE");
	snprintf(s[4].name, sizeof(s[4].name), "HTTP");
}

static void test_encode_official_decode(void **state)
{
	struct mt_span s[5];
	struct otlp_config cfg;
	char want[33], got[16][33], *text;
	uint8_t *pb;
	size_t len;
	int n, i;

	(void)state;
	need_schema();
	test_config(&cfg, "http://c/v1/traces", "");
	cfg.n_resource_attrs = 1;
	snprintf(cfg.resource_attrs[0].key, OTLP_ATTR_KEY_MAX, "deployment.environment");
	snprintf(cfg.resource_attrs[0].value, OTLP_ATTR_VALUE_MAX, "prod");
	two_processes(s);
	assert_int_equal(otlp_encode_spans(s, 5, &cfg, &pb, &len), 0);
	text = decode_traces(pb, len);

	/* Ids: every span's, in hex, in process order (nginx 0, 2, 4, then curl 1, 3). */
	n = ids_hex(text, "trace_id", got, 16);
	assert_int_equal(n, 5);
	for (i = 0; i < 5; i++) {
		static const int order[5] = {0, 2, 4, 1, 3};

		hex_of(want, s[order[i]].trace_id, 16);
		assert_string_equal(got[i], want);
	}
	n = ids_hex(text, "span_id", got, 16);
	assert_int_equal(n, 5);
	hex_of(want, s[1].span_id, 8);
	assert_string_equal(got[3], want);
	n = ids_hex(text, "parent_span_id", got, 16);
	assert_int_equal(n, 2); /* spans 1 and 3; roots have none */
	hex_of(want, s[1].parent_span_id, 8);
	assert_string_equal(got[0], want);

	squash(text);
	assert_int_equal(count_of(text, "resource_spans {"), 2);
	assert_int_equal(count_of(text, "scope_spans {"), 2);
	assert_int_equal(count_of(text, " spans {"), 5);
	assert_non_null(strstr(text, "key: \"service.name\" value { string_value: \"nginx\" }"));
	assert_non_null(
		strstr(text, "key: \"service.name\" value { string_value: \"shop-client\" }"));
	assert_non_null(strstr(text, "key: \"process.pid\" value { int_value: 100 }"));
	assert_non_null(
		strstr(text, "key: \"process.executable.name\" value { string_value: \"curl\" }"));
	assert_int_equal(count_of(text, "key: \"host.name\" value { string_value: \"node-1\" }"),
			 2);
	assert_int_equal(
		count_of(text, "key: \"telemetry.sdk.name\" value { string_value: \"meshtrace\" }"),
		2);
	assert_int_equal(
		count_of(text, "key: \"deployment.environment\" value { string_value: \"prod\" }"),
		2);
	assert_non_null(
		strstr(text, "scope { name: \"meshtrace\" version: \"" MESHTRACE_VERSION "\" }"));
	assert_non_null(strstr(text, "kind: SPAN_KIND_SERVER"));
	assert_non_null(strstr(text, "kind: SPAN_KIND_CLIENT"));
	assert_non_null(strstr(text, "start_time_unix_nano: 1700000000002000000"));
	assert_non_null(strstr(text, "end_time_unix_nano: 1700000000003500000"));
	assert_non_null(strstr(text, "trace_state: \"vendor=abc,other=1\""));
	assert_int_equal(count_of(text, "status { code: STATUS_CODE_ERROR }"), 1);
	assert_non_null(
		strstr(text, "key: \"http.request.method\" value { string_value: \"GET\" }"));
	assert_non_null(strstr(text, "key: \"url.path\" value { string_value: \"/api/users/2\" }"));
	assert_non_null(
		strstr(text, "key: \"url.query\" value { string_value: \"page=2&sort=name\" }"));
	assert_non_null(
		strstr(text, "key: \"http.response.status_code\" value { int_value: 503 }"));
	assert_non_null(strstr(text, "key: \"error.type\" value { string_value: \"503\" }"));
	assert_non_null(strstr(text, "key: \"server.port\" value { int_value: 8080 }"));
	assert_non_null(
		strstr(text, "key: \"client.address\" value { string_value: \"10.0.0.7\" }"));
	assert_non_null(strstr(text, "key: \"network.peer.port\" value { int_value: 50000 }"));
	assert_non_null(
		strstr(text, "key: \"network.protocol.version\" value { string_value: \"1.0\" }"));
	assert_non_null(strstr(text, "key: \"http.request.body.size\" value { int_value: 17 }"));
	assert_non_null(strstr(text, "key: \"http.response.body.size\" value { int_value: 612 }"));
	assert_non_null(strstr(text, "key: \"url.full\" value { string_value: "
				     "\"http://api.internal:8080/api/users/3?x=1\" }"));
	assert_non_null(
		strstr(text, "key: \"http.request.method\" value { string_value: \"_OTHER\" }"));
	assert_non_null(strstr(
		text, "key: \"http.request.method_original\" value { string_value: \"PURGE\" }"));
	assert_int_equal(count_of(text, "url.query"), 1);
	free(text);
	free(pb);
}

static void test_encode_semconv(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	Meshtrace__Otlp__Resource *res;
	Meshtrace__Otlp__Span *sp;
	struct otlp_config cfg;
	struct mt_span s[5];
	uint8_t *pb;
	size_t len;

	(void)state;
	test_config(&cfg, "http://c/v1/traces", "");
	cfg.n_resource_attrs = 2;
	snprintf(cfg.resource_attrs[0].key, OTLP_ATTR_KEY_MAX, "service.name");
	snprintf(cfg.resource_attrs[0].value, OTLP_ATTR_VALUE_MAX, "from-env");
	snprintf(cfg.resource_attrs[1].key, OTLP_ATTR_KEY_MAX, "process.pid");
	snprintf(cfg.resource_attrs[1].value, OTLP_ATTR_VALUE_MAX, "1");
	two_processes(s);
	s[1].resource.service_name[0] = '\0'; /* curl has no name: env's service.name */
	s[3].resource.service_name[0] = '\0';
	snprintf(s[1].method, sizeof(s[1].method), "get"); /* case matters */
	assert_int_equal(otlp_encode_spans(s, 5, &cfg, &pb, &len), 0);
	req = meshtrace__otlp__export_trace_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	assert_int_equal(req->n_resource_spans, 2);

	res = req->resource_spans[0]->resource;
	assert_string_equal(attr_str(res->attributes, res->n_attributes, "service.name"), "nginx");
	assert_int_equal(attr_int(res->attributes, res->n_attributes, "process.pid"), 100);
	assert_string_equal(attr_str(res->attributes, res->n_attributes, "telemetry.sdk.language"),
			    "c");
	assert_string_equal(attr_str(res->attributes, res->n_attributes, "telemetry.sdk.version"),
			    MESHTRACE_VERSION);
	assert_int_equal(res->n_attributes, 7); /* the env's service.name and process.pid lose */
	res = req->resource_spans[1]->resource;
	/* The agent's own service.name (from its environment) never names a process. */
	assert_string_equal(attr_str(res->attributes, res->n_attributes, "service.name"),
			    "unknown_service:curl");
	assert_int_equal(attr_int(res->attributes, res->n_attributes, "process.pid"), 200);

	/* Server span: url.path, url.scheme, client.address; no url.full. */
	sp = req->resource_spans[0]->scope_spans[0]->spans[0];
	assert_string_equal(sp->name, "GET");
	assert_int_equal(sp->kind, MESHTRACE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
	assert_int_equal(sp->parent_span_id.len, 0);
	assert_null(sp->status);
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "url.path"), "/api/users/0");
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "url.scheme"), "http");
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "server.address"),
			    "shop.local");
	/* network.protocol.name is only required when not "http". */
	assert_null(find_attr(sp->attributes, sp->n_attributes, "network.protocol.name"));
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "network.protocol.version"),
			    "1.1");
	assert_int_equal(attr_int(sp->attributes, sp->n_attributes, "http.response.status_code"),
			 200);
	assert_null(find_attr(sp->attributes, sp->n_attributes, "url.full"));
	assert_null(find_attr(sp->attributes, sp->n_attributes, "url.query"));
	assert_null(find_attr(sp->attributes, sp->n_attributes, "error.type"));
	assert_null(find_attr(sp->attributes, sp->n_attributes, "http.request.body.size"));
	assert_null(find_attr(sp->attributes, sp->n_attributes, "http.request.method_original"));

	/* Client span: url.full, no url.path nor client.address; "get" is not "GET". */
	sp = req->resource_spans[1]->scope_spans[0]->spans[0];
	assert_int_equal(sp->kind, MESHTRACE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
	assert_int_equal(sp->parent_span_id.len, 8);
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "url.full"),
			    "http://shop.local:8080/api/users/1");
	assert_null(find_attr(sp->attributes, sp->n_attributes, "url.path"));
	assert_null(find_attr(sp->attributes, sp->n_attributes, "client.address"));
	/* url.scheme is opt-in on client spans: url.full carries it. */
	assert_null(find_attr(sp->attributes, sp->n_attributes, "url.scheme"));
	assert_null(find_attr(sp->attributes, sp->n_attributes, "network.protocol.name"));
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "http.request.method"),
			    "_OTHER");
	assert_string_equal(
		attr_str(sp->attributes, sp->n_attributes, "http.request.method_original"), "get");
	assert_int_equal(attr_int(sp->attributes, sp->n_attributes, "network.peer.port"), 8080);
	meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	free(pb);

	/* A client span to the default port of its scheme, by address only; no response. */
	make_span(&s[0], 9, 300, "svc", "exe", MT_SPAN_CLIENT);
	s[0].server_address[0] = '\0';
	snprintf(s[0].peer_address, sizeof(s[0].peer_address), "fd00::1");
	s[0].server_port = 80;
	s[0].http_status = 0;
	s[0].status = MT_STATUS_ERROR;
	assert_int_equal(otlp_encode_spans(s, 1, &cfg, &pb, &len), 0);
	req = meshtrace__otlp__export_trace_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	sp = req->resource_spans[0]->scope_spans[0]->spans[0];
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "url.full"),
			    "http://[fd00::1]/api/users/9");
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "error.type"), "_OTHER");
	assert_int_equal(attr_int(sp->attributes, sp->n_attributes, "server.port"), 80);
	assert_null(find_attr(sp->attributes, sp->n_attributes, "http.response.status_code"));
	assert_int_equal(sp->status->code, MESHTRACE__OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
	meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	free(pb);
}

static void test_encode_known_methods(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	Meshtrace__Otlp__Span *sp;
	struct otlp_config cfg;
	struct mt_span s[2];
	uint8_t *pb;
	size_t len;

	(void)state;
	test_config(&cfg, "http://c/v1/traces", "");
	cfg.n_known_methods = 2;
	snprintf(cfg.known_methods[0], MT_METHOD_MAX, "GET");
	snprintf(cfg.known_methods[1], MT_METHOD_MAX, "PURGE");
	make_span(&s[0], 0, 1, "a", "a", MT_SPAN_SERVER);
	make_span(&s[1], 1, 1, "a", "a", MT_SPAN_SERVER);
	snprintf(s[0].method, sizeof(s[0].method), "PURGE");
	snprintf(s[1].method, sizeof(s[1].method), "POST");
	assert_int_equal(otlp_encode_spans(s, 2, &cfg, &pb, &len), 0);
	req = meshtrace__otlp__export_trace_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	sp = req->resource_spans[0]->scope_spans[0]->spans[0];
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "http.request.method"),
			    "PURGE");
	sp = req->resource_spans[0]->scope_spans[0]->spans[1];
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "http.request.method"),
			    "_OTHER");
	assert_string_equal(
		attr_str(sp->attributes, sp->n_attributes, "http.request.method_original"), "POST");
	meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	free(pb);
}

static void test_encode_invalid_utf8(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	Meshtrace__Otlp__Resource *res;
	Meshtrace__Otlp__Span *sp;
	struct otlp_config cfg;
	struct mt_span s[2];
	char *text;
	uint8_t *pb;
	size_t len, i;

	(void)state;
	need_schema();
	test_config(&cfg, "http://c/v1/traces", "");
	make_span(&s[0], 0, 1, "svc\xff", "ex\xc3", MT_SPAN_SERVER);
	make_span(&s[1], 1, 1, "svc", "exe", MT_SPAN_CLIENT);
	snprintf(s[0].path, sizeof(s[0].path), "/caf\xc3\xa9/\xff\xfe/\xe2\x82"); /* cut mid-char */
	snprintf(s[0].tracestate, sizeof(s[0].tracestate), "k=\xed\xa0\x80");	  /* a surrogate */
	snprintf(s[1].server_address, sizeof(s[1].server_address),
		 "h\xc0\xaf.local"); /* overlong */
	/* Unterminated arrays are cut, not overrun. */
	memset(s[1].resource.exe_name, 'x', sizeof(s[1].resource.exe_name));
	assert_int_equal(otlp_encode_spans(s, 2, &cfg, &pb, &len), 0);
	text = decode_traces(pb, len); /* protoc refuses strings that are not UTF-8 */
	free(text);

	req = meshtrace__otlp__export_trace_service_request__unpack(NULL, len, pb);
	assert_non_null(req);
	res = req->resource_spans[0]->resource;
	assert_string_equal(attr_str(res->attributes, res->n_attributes, "service.name"),
			    "svc" UTF8_REPLACEMENT);
	assert_string_equal(attr_str(res->attributes, res->n_attributes, "process.executable.name"),
			    "ex" UTF8_REPLACEMENT);
	sp = req->resource_spans[0]->scope_spans[0]->spans[0];
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "url.path"),
			    "/caf\xc3\xa9/" UTF8_REPLACEMENT UTF8_REPLACEMENT "/" UTF8_REPLACEMENT);
	assert_string_equal(sp->trace_state,
			    "k=" UTF8_REPLACEMENT UTF8_REPLACEMENT UTF8_REPLACEMENT);
	sp = req->resource_spans[0]->scope_spans[0]->spans[1];
	assert_string_equal(attr_str(sp->attributes, sp->n_attributes, "server.address"),
			    "h" UTF8_REPLACEMENT UTF8_REPLACEMENT ".local");
	for (i = 0; i < sp->n_attributes; i++)
		if (sp->attributes[i]->value->value_case ==
		    MESHTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE)
			assert_true(utf8_valid(sp->attributes[i]->value->string_value,
					       strlen(sp->attributes[i]->value->string_value)));
	meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	free(pb);
}

static void test_encode_edges(void **state)
{
	struct otlp_config cfg;
	struct mt_span s;
	uint8_t *pb = NULL;
	size_t len = 99;

	(void)state;
	test_config(&cfg, "http://c/v1/traces", "");
	assert_int_equal(otlp_encode_spans(NULL, 0, &cfg, &pb, &len), 0);
	assert_int_equal(len, 0); /* an empty request */
	free(pb);
	assert_int_equal(otlp_encode_spans(NULL, 1, &cfg, &pb, &len), -EINVAL);
	make_span(&s, 0, 1, "a", "a", MT_SPAN_SERVER);
	assert_int_equal(otlp_encode_spans(&s, 1, NULL, &pb, &len), -EINVAL);
	/* A config string that is not UTF-8 is refused. */
	cfg.host_name[0] = (char)0xff;
	assert_int_equal(otlp_encode_spans(&s, 1, &cfg, &pb, &len), -EINVAL);
}

/* ------------------------------------------------ golden: new vs reference */

static uint64_t golden_rng_state;

static uint32_t golden_rng(void)
{
	golden_rng_state ^= golden_rng_state << 13;
	golden_rng_state ^= golden_rng_state >> 7;
	golden_rng_state ^= golden_rng_state << 17;
	return (uint32_t)(golden_rng_state >> 16);
}

/* Strings that test an encoder: empty, ASCII, multi-byte, ill-formed UTF-8. */
static const char *const golden_strs[] = {
	"",
	"GET",
	"/api/v1/products/42",
	"caf\xc3\xa9",				/* é */
	"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", /* 日本語 */
	"emoji \xf0\x9f\x98\x80!",		/* U+1F600 */
	"bad \xff byte",			/* never valid */
	"cut \xe2\x82",				/* truncated sequence */
	"\xed\xa0\x80 surrogate",		/* U+D800 */
	"over\xc0\xaflong",			/* overlong '/' */
	"beyond \xf4\x90\x80\x80",		/* above U+10FFFF */
	"\x80\x80 lone continuations",
	"fd00::1",
	"10.0.0.7",
	"https",
	"vendor=abc,other=1",
	"13",	 /* a gRPC status number */
	"99",	 /* an unknown one */
	"42P01", /* an SQLSTATE */
};

/* Fills the array @dst (@cap bytes) with a string: one of golden_strs, or as long as it can be. */
static void golden_str(char *dst, size_t cap)
{
	static const char *const fill[] = {"x", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
					   "a\xff"};
	uint32_t pick = golden_rng() % 24;
	size_t n = 0;

	if (pick < sizeof(golden_strs) / sizeof(golden_strs[0])) {
		snprintf(dst, cap, "%s", golden_strs[pick]);
		return;
	}
	/* Maximum length (cap - 1), multi-byte fills cut mid-character at the end. */
	pick = golden_rng() % (sizeof(fill) / sizeof(fill[0]));
	while (n < cap - 1) {
		size_t k = strlen(fill[pick]);

		if (k > cap - 1 - n)
			k = cap - 1 - n;
		memcpy(dst + n, fill[pick], k);
		n += k;
	}
	dst[n] = '\0';
}

/* The resource of process @pid: empty, ordinary, invalid, or full unterminated arrays. */
static void golden_resource(struct mt_resource *r, uint32_t pid)
{
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	switch (pid % 5) {
	case 0:
		break; /* no names: unknown_service */
	case 1:
		snprintf(r->service_name, sizeof(r->service_name), "svc-%u", pid);
		snprintf(r->exe_name, sizeof(r->exe_name), "exe-%u", pid);
		break;
	case 2:
		snprintf(r->exe_name, sizeof(r->exe_name), "only-exe\xc3");
		break;
	case 3:
		memset(r->service_name, 'S', sizeof(r->service_name)); /* no NUL */
		memset(r->exe_name, 'E', sizeof(r->exe_name));
		break;
	default:
		snprintf(r->service_name, sizeof(r->service_name), "sv\xe2\x82\xac-\xff");
		break;
	}
}

/* @n spans over @n_pids processes, everything varied that the encoder looks at. */
static void golden_batch(struct mt_span *s, size_t n, uint32_t n_pids, uint64_t seed)
{
	static const uint8_t protocols[] = {
		MT_PROTO_HTTP1,	    MT_PROTO_HTTP1,   MT_PROTO_HTTP1,	 MT_PROTO_HTTP2,
		MT_PROTO_GRPC,	    MT_PROTO_REDIS,   MT_PROTO_POSTGRES, MT_PROTO_MYSQL,
		MT_PROTO_MEMCACHED, MT_PROTO_UNKNOWN,
	};
	static const uint16_t statuses[] = {0, 200, 204, 404, 503, 65535};
	static const uint16_t ports[] = {0, 80, 443, 8080, 65535};
	static const uint64_t sizes[] = {0, 1, 127, 128, 16384, UINT64_MAX};
	size_t i, k;

	golden_rng_state = seed;
	for (i = 0; i < n; i++) {
		struct mt_span *p = &s[i];

		memset(p, 0, sizeof(*p));
		for (k = 0; k < sizeof(p->trace_id); k++)
			p->trace_id[k] = (uint8_t)golden_rng();
		for (k = 0; k < sizeof(p->span_id); k++)
			p->span_id[k] = (uint8_t)golden_rng();
		if (golden_rng() % 2) /* else a root: no parent_span_id */
			for (k = 0; k < sizeof(p->parent_span_id); k++)
				p->parent_span_id[k] = (uint8_t)golden_rng();
		p->kind = (uint8_t)(golden_rng() % 6);
		if (p->kind < 2 && golden_rng() % 2)
			p->kind = MT_SPAN_SERVER;
		p->status = (uint8_t)(golden_rng() % 3);
		p->protocol = protocols[golden_rng() % sizeof(protocols)];
		p->http_minor = (uint8_t)golden_rng();
		p->http_status = statuses[golden_rng() % 6];
		p->server_port = ports[golden_rng() % 5];
		p->client_port = ports[golden_rng() % 5];
		p->peer_port = ports[golden_rng() % 5];
		if (golden_rng() % 8) {
			p->start_unix_ns = 1700000000000000000ull + golden_rng();
			p->end_unix_ns = p->start_unix_ns + golden_rng() % 5000000;
		}
		p->req_body_bytes = sizes[golden_rng() % 6];
		p->resp_body_bytes = sizes[golden_rng() % 6];
		golden_resource(&p->resource, 1000 + golden_rng() % n_pids);
		golden_str(p->name, sizeof(p->name));
		if (golden_rng() % 3)
			snprintf(p->method, sizeof(p->method), "%s",
				 golden_rng() % 2 ? "GET" : "POST");
		else
			golden_str(p->method, sizeof(p->method));
		golden_str(p->path, sizeof(p->path));
		if (golden_rng() % 2)
			golden_str(p->query, sizeof(p->query));
		golden_str(p->scheme, sizeof(p->scheme));
		golden_str(p->server_address, sizeof(p->server_address));
		golden_str(p->client_address, sizeof(p->client_address));
		golden_str(p->peer_address, sizeof(p->peer_address));
		if (golden_rng() % 2)
			golden_str(p->tracestate, sizeof(p->tracestate));
		golden_str(p->operation, sizeof(p->operation));
		golden_str(p->db_namespace, sizeof(p->db_namespace));
		golden_str(p->query_text, sizeof(p->query_text));
		golden_str(p->status_text, sizeof(p->status_text));
	}
}

/* A configuration at its limits: 32 resource attributes, long and multi-byte values. */
static void golden_config_max(struct otlp_config *cfg)
{
	unsigned i;

	test_config(cfg, "http://c/v1/traces", "");
	memset(cfg->host_name, 'h', sizeof(cfg->host_name) - 1);
	cfg->host_name[sizeof(cfg->host_name) - 1] = '\0';
	cfg->n_resource_attrs = OTLP_RESOURCE_ATTRS_MAX;
	for (i = 0; i < OTLP_RESOURCE_ATTRS_MAX; i++) {
		struct otlp_kv *a = &cfg->resource_attrs[i];

		char prefix[16];
		int m = snprintf(prefix, sizeof(prefix), "attr.%u.", i);

		/* Keys as long as they can be, distinct by their prefix. */
		memset(a->key, 'k', sizeof(a->key) - 1);
		a->key[sizeof(a->key) - 1] = '\0';
		memcpy(a->key, prefix, (size_t)m);
		snprintf(a->value, sizeof(a->value), "v%u-\xe2\x82\xac", i);
	}
	/* A value as long as it can be, in 3-byte characters: 85 of them. */
	for (i = 0; i + 3 < sizeof(cfg->resource_attrs[1].value); i += 3)
		memcpy(cfg->resource_attrs[1].value + i, "\xe2\x82\xac", 3);
	cfg->resource_attrs[1].value[i] = '\0';
	/* proto3 leaves an empty key out; an empty string value is still sent. */
	cfg->resource_attrs[2].key[0] = '\0';
	cfg->resource_attrs[3].value[0] = '\0';
	/* service.name for processes with none, cut to 80 bytes mid-character (then repaired). */
	snprintf(cfg->resource_attrs[4].key, sizeof(cfg->resource_attrs[4].key), "service.name");
	for (i = 0; i + 3 < sizeof(cfg->resource_attrs[4].value); i += 3)
		memcpy(cfg->resource_attrs[4].value + i, "\xe2\x82\xac", 3);
	cfg->resource_attrs[4].value[i] = '\0';
	cfg->n_known_methods = 2;
	snprintf(cfg->known_methods[0], MT_METHOD_MAX, "GET");
	snprintf(cfg->known_methods[1], MT_METHOD_MAX, "PURGE");
}

/* Asserts that @pb is @ref byte for byte, naming the first difference. */
static void assert_same_bytes(const uint8_t *pb, size_t len, const uint8_t *ref, size_t ref_len,
			      const char *what)
{
	size_t i;

	for (i = 0; i < len && i < ref_len && pb[i] == ref[i]; i++)
		;
	if (len != ref_len || i < len)
		fail_msg("%s: %zu bytes, reference %zu; first difference at byte %zu", what, len,
			 ref_len, i);
}

/*
 * Encodes @n spans with otlp_encode_spans() and with the reference, and
 * compares the bytes; with @decode, also protoc's decoding of both with the
 * official schema (which also proves every string valid UTF-8).
 */
static void golden_check(const struct mt_span *s, size_t n, const struct otlp_config *cfg,
			 bool decode, const char *what)
{
	uint8_t *pb, *ref;
	size_t len, ref_len;
	char *text, *ref_text;

	assert_int_equal(otlp_encode_spans(s, n, cfg, &pb, &len), 0);
	ref_encode(s, n, cfg, &ref, &ref_len);
	assert_same_bytes(pb, len, ref, ref_len, what);
	if (decode) {
		text = decode_traces(pb, len);
		ref_text = decode_traces(ref, ref_len);
		assert_string_equal(text, ref_text);
		free(text);
		free(ref_text);
	}
	free(pb);
	free(ref);
}

static void test_encode_golden(void **state)
{
	enum { N = 512 };
	struct mt_span *s = calloc(N, sizeof(*s));
	struct otlp_config cfg, cfg_max;
	uint64_t seed;

	(void)state;
	assert_non_null(s);
	test_config(&cfg, "http://c/v1/traces", "");
	golden_config_max(&cfg_max);

	golden_check(s, 0, &cfg, false, "no spans");
	golden_batch(s, 1, 1, 1);
	golden_check(s, 1, &cfg, false, "1 span");
	/* Many seeds, small batches: every mix of fields, cheap to compare. */
	for (seed = 1; seed <= 200; seed++) {
		golden_batch(s, 1 + seed % 7, 1 + seed % 4, seed);
		golden_check(s, 1 + seed % 7, seed % 2 ? &cfg : &cfg_max, false, "small batch");
	}
	golden_batch(s, N, 8, 42);
	golden_check(s, N, &cfg, false, "512 spans, 8 processes");
	golden_batch(s, N, 300, 43);
	golden_check(s, N, &cfg_max, false, "512 spans, ~300 processes, config at its limits");
	golden_batch(s, N, 1, 44);
	golden_check(s, N, &cfg, false, "512 spans, 1 process");
	/* Every span its own process. */
	golden_batch(s, N, 1u << 30, 45);
	golden_check(s, N, &cfg_max, false, "512 spans, 512 processes");

	/* The same, decoded by protoc (slower: a few batches only). */
	if (!schema_present()) {
		free(s);
		skip();
	}
	golden_batch(s, 1, 1, 1);
	golden_check(s, 1, &cfg, true, "1 span, decoded");
	golden_batch(s, 5, 3, 7);
	golden_check(s, 5, &cfg_max, true, "5 spans, decoded");
	golden_batch(s, N, 300, 43);
	golden_check(s, N, &cfg_max, true, "512 spans, decoded");
	free(s);
}

/*
 * The exporter's way: one encoder for batch after batch. Sizes swing so the
 * length slots reserved from the last batch's average are too short, then too
 * long, and the output buffer grows mid-batch.
 */
static void test_encode_golden_reused(void **state)
{
	enum { N = 512 };
	static const struct {
		size_t n;
		uint32_t pids;
		bool tiny; /* spans with almost nothing in them */
	} batches[] = {
		{N, 1, true},  {N, 1, false}, {N, 2, false},   {3, 1, true},
		{N, 1, true},  {1, 1, false}, {N, 300, false}, {N, 4, true},
		{N, 1, false}, {0, 1, false}, {200, 2, false},
	};
	struct mt_span *s = calloc(N, sizeof(*s));
	struct otlp_encoder *enc;
	struct otlp_config cfg;
	const uint8_t *pb;
	uint8_t *ref;
	size_t len, ref_len, b, i;

	(void)state;
	assert_non_null(s);
	golden_config_max(&cfg);
	enc = otlp_encoder__new(&cfg, N);
	assert_non_null(enc);
	for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		golden_batch(s, batches[b].n, batches[b].pids, 100 + b);
		for (i = 0; batches[b].tiny && i < batches[b].n; i++) {
			struct mt_span *p = &s[i];

			p->protocol = MT_PROTO_REDIS;
			p->name[0] = p->operation[0] = p->db_namespace[0] = p->query_text[0] = '\0';
			p->status_text[0] = p->server_address[0] = p->client_address[0] = '\0';
			p->peer_address[0] = p->tracestate[0] = '\0';
			p->status = MT_STATUS_UNSET;
		}
		assert_int_equal(otlp_encoder_encode(enc, s, batches[b].n, &pb, &len), 0);
		ref_encode(s, batches[b].n, &cfg, &ref, &ref_len);
		assert_same_bytes(pb, len, ref, ref_len, "reused encoder");
		free(ref);
	}
	assert_int_equal(otlp_encoder_encode(enc, s, N + 1, &pb, &len), -E2BIG);
	otlp_encoder__free(enc);
	free(s);
}

/*
 * The encoder's UTF-8 helpers: utf8_valid() skips ASCII 8 bytes at a time, and
 * utf8_repaired_len() must say what utf8_sanitize() writes, wherever the
 * ill-formed byte sits relative to those 8-byte steps.
 */
static void test_utf8_word_steps(void **state)
{
	static const char *const bad[] = {"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\x80"};
	static const char *const good[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	char s[64], out[3 * sizeof(s) + 1];
	size_t k, b, len;

	(void)state;
	for (k = 0; k < 40; k++) {
		memset(s, 'a', k);
		for (b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			len = k + (size_t)snprintf(s + k, sizeof(s) - k, "%s tail", bad[b]);
			assert_false(utf8_valid(s, len));
			assert_int_equal(utf8_repaired_len(s, len),
					 utf8_sanitize(out, sizeof(out), s, len));
			assert_true(utf8_valid(out, strlen(out)));
		}
		for (b = 0; b < sizeof(good) / sizeof(good[0]); b++) {
			len = k + (size_t)snprintf(s + k, sizeof(s) - k, "%s tail", good[b]);
			assert_true(utf8_valid(s, len));
			assert_int_equal(utf8_repaired_len(s, len), len);
		}
		assert_true(utf8_valid(s, k)); /* ASCII only */
	}
}

/*
 * Bytes per span on the wire and encoding speed, for the record (no timing is
 * asserted): 512 typical server spans, as the exporter batches them.
 */
static void test_measure_size_and_speed(void **state)
{
	enum { N = 512, ROUNDS = 200 };
	static const int levels[2] = {1, 6};
	struct otlp_config cfg;
	struct mt_span *s = calloc(N, sizeof(*s));
	struct otlp_encoder *enc;
	struct otlp_exporter *x;
	size_t len, glen[2] = {0, 0};
	uint64_t t0, t_enc, t_add, tz[2] = {0, 0};
	const uint8_t *pb;
	unsigned i, r, l;
	uint8_t *gz;

	(void)state;
	assert_non_null(s);
	test_config(&cfg, "http://127.0.0.1:1/v1/traces", "");
	srand(1);
	for (i = 0; i < N; i++) {
		/* 8 nginx workers, random ids, varied paths, clients and timing. */
		make_span(&s[i], i, 1000 + i % 8, "nginx", "nginx", MT_SPAN_SERVER);
		for (r = 0; r < 16; r++)
			s[i].trace_id[r] = (uint8_t)rand();
		for (r = 0; r < 8; r++)
			s[i].span_id[r] = (uint8_t)rand();
		memset(s[i].parent_span_id, 0, 8);
		s[i].start_unix_ns += (uint64_t)rand() % 1000000;
		s[i].end_unix_ns = s[i].start_unix_ns + 20000 + (uint64_t)rand() % 900000;
		snprintf(s[i].path, sizeof(s[i].path), "/api/v1/products/%d", rand() % 5000);
		snprintf(s[i].client_address, sizeof(s[i].client_address), "10.0.%d.%d", rand() % 4,
			 rand() % 250);
		snprintf(s[i].peer_address, sizeof(s[i].peer_address), "%s", s[i].client_address);
		s[i].peer_port = (uint16_t)(32768 + rand() % 28000);
		s[i].resp_body_bytes = 200 + (uint64_t)(rand() % 4000);
	}

	/* The encoder as the exporter uses it: made once, reused for every batch. */
	enc = otlp_encoder__new(&cfg, N);
	assert_non_null(enc);
	t0 = now_ms();
	for (r = 0; r < ROUNDS; r++)
		assert_int_equal(otlp_encoder_encode(enc, s, N, &pb, &len), 0);
	t_enc = now_ms() - t0;

	gz = malloc(compressBound(len) + 64);
	assert_non_null(gz);
	for (l = 0; l < 2; l++) {
		z_stream z;

		memset(&z, 0, sizeof(z));
		assert_int_equal(deflateInit2(&z, levels[l], Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY),
				 Z_OK);
		t0 = now_ms();
		for (r = 0; r < ROUNDS; r++) {
			deflateReset(&z);
			z.next_in = (Bytef *)(uintptr_t)pb;
			z.avail_in = (uInt)len;
			z.next_out = gz;
			z.avail_out = (uInt)(compressBound(len) + 64);
			assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
			glen[l] = z.total_out;
		}
		tz[l] = now_ms() - t0;
		deflateEnd(&z);
	}
	free(gz);

	/* All of add_span: copy, encode, gzip, queue (the collector is down: oldest dropped). */
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	t0 = now_ms();
	for (r = 0; r < ROUNDS; r++)
		for (i = 0; i < N; i++)
			otlp_exporter_add_span(x, &s[i]);
	t_add = now_ms() - t0;
	otlp_exporter__free(x);

	print_message("otlp: batch of %d typical server spans: %.1f B/span protobuf, "
		      "%.1f B/span gzip-1, %.1f B/span gzip-6 (level used: see otlp.c)\n",
		      N, (double)len / N, (double)glen[0] / N, (double)glen[1] / N);
	print_message("otlp: spans/s: encode %.0f, gzip-1 %.0f, gzip-6 %.0f, add_span end to end "
		      "%.0f\n",
		      N * ROUNDS * 1000.0 / (double)(t_enc ? t_enc : 1),
		      N * ROUNDS * 1000.0 / (double)(tz[0] ? tz[0] : 1),
		      N * ROUNDS * 1000.0 / (double)(tz[1] ? tz[1] : 1),
		      N * ROUNDS * 1000.0 / (double)(t_add ? t_add : 1));
	assert_true(glen[1] < len / 3);
	otlp_encoder__free(enc);
	free(s);
}

/* --------------------------------------------------------- transport tests */

static struct otlp_exporter *exporter_for(struct srv *srv, struct otlp_config *cfg)
{
	char url[128];
	struct otlp_exporter *x;

	srv_url(srv, url, sizeof(url), "/v1/traces");
	test_config(cfg, url, "");
	x = otlp_exporter__new(cfg);
	assert_non_null(x);
	return x;
}

static void add_spans(struct otlp_exporter *x, unsigned from, unsigned n)
{
	struct mt_span s;
	unsigned i;

	for (i = from; i < from + n; i++) {
		make_span(&s, i, 100 + i % 2, "svc", "exe", MT_SPAN_SERVER);
		otlp_exporter_add_span(x, &s);
	}
}

static void test_retry_after_then_ok(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t three = 3;
	struct loop l;
	char url[128];
	int i;

	(void)state;
	srv_script(srv, 503, "Retry-After: 1\r\n", NULL, 0);
	srv_start(srv);
	srv_url(srv, url, sizeof(url), "/v1/traces");
	test_config(&cfg, url, "");
	cfg.traces.n_headers = 1;
	snprintf(cfg.traces.headers[0].name, OTLP_HEADER_NAME_MAX, "x-api-key");
	snprintf(cfg.traces.headers[0].value, OTLP_HEADER_VALUE_MAX, "s3cr3t value");
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	loop_init(&l, x);

	add_spans(x, 0, 3);
	assert_true(loop_run(&l, x, exported_at_least, &three, 10000));
	otlp_exporter_stats(x, &st);
	assert_int_equal(srv_count(srv), 2);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.batches_sent, 1);
	assert_int_equal(st.spans_received, 3);
	assert_int_equal(st.spans_exported, 3);
	assert_int_equal(st.queue_spans, 0);
	assert_int_equal(st.last_http_status, 200);
	assert_int_equal(st.bytes_sent, srv->reqs[0].body_len + srv->reqs[1].body_len);
	/* Retry-After: 1 was honoured (a lower bound only: machines are slow sometimes). */
	assert_true(srv->reqs[1].at_ms - srv->reqs[0].at_ms >= 950);
	for (i = 0; i < 2; i++) {
		const char *h = srv->reqs[i].head;

		assert_string_equal(srv->reqs[i].path, "/v1/traces");
		assert_non_null(strcasestr(h, "\r\ncontent-type: application/x-protobuf\r\n"));
		assert_non_null(strcasestr(h, "\r\ncontent-encoding: gzip\r\n"));
		assert_non_null(strcasestr(h, "\r\nx-api-key: s3cr3t value\r\n"));
		assert_non_null(strcasestr(h, "\r\nuser-agent: meshtrace/"));
		assert_null(strcasestr(h, "expect:"));
	}
	assert_int_equal(srv->reqs[0].body_len, srv->reqs[1].body_len);
	assert_memory_equal(srv->reqs[0].body, srv->reqs[1].body, srv->reqs[0].body_len);
	req = srv_trace_req(srv, 1);
	assert_int_equal(req_span_count(req), 3);
	assert_int_equal(req->n_resource_spans, 2);
	meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);

	/* Idle on a kept-alive connection: the loop must sleep, not spin. */
	l.polls = 0;
	loop_run(&l, x, NULL, NULL, 500);
	assert_true(l.polls < 10);
	otlp_exporter_stats(x, &st);
	assert_int_equal(srv_count(srv), 2);

	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_429_retry_after_date(void **state)
{
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	char date[96], hdr[128];
	uint64_t two = 2;
	time_t when = time(NULL) + 2;
	struct tm tm;
	struct loop l;

	(void)state;
	/* RFC 9110 IMF-fixdate, two seconds ahead: to the second, so at least ~1 s away. */
	gmtime_r(&when, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(hdr, sizeof(hdr), "Retry-After: %s\r\n", date);
	srv_script(srv, 429, hdr, NULL, 0);
	srv_script(srv, 502, NULL, NULL, 0); /* no Retry-After: backoff (100..400 ms here) */
	srv_start(srv);
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);
	add_spans(x, 0, 2);
	assert_true(loop_run(&l, x, exported_at_least, &two, 10000));
	otlp_exporter_stats(x, &st);
	assert_int_equal(srv_count(srv), 3);
	assert_int_equal(st.retries, 2);
	assert_true(srv->reqs[1].at_ms - srv->reqs[0].at_ms >= 950);
	assert_true(srv->reqs[2].at_ms - srv->reqs[1].at_ms >= 90);
	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_http_500_not_retried(void **state)
{
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t one = 1;
	struct loop l;

	(void)state;
	srv_script(srv, 500, "Content-Type: text/plain\r\n", (const uint8_t *)"boom\n\x01", 6);
	srv_start(srv);
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);
	add_spans(x, 0, 3);
	assert_true(loop_run(&l, x, failed_at_least, &one, 5000));
	loop_run(&l, x, NULL, NULL, 600);
	otlp_exporter_stats(x, &st);
	assert_int_equal(srv_count(srv), 1);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.spans_dropped_rejected, 3);
	assert_non_null(strstr(st.last_error, "HTTP 500"));
	assert_non_null(strstr(st.last_error, "boom"));
	assert_null(strchr(st.last_error, '\n'));
	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_http_400_not_retried(void **state)
{
	Meshtrace__Otlp__RpcStatus status = MESHTRACE__OTLP__RPC_STATUS__INIT;
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t one = 1;
	uint8_t body[128];
	struct loop l;
	size_t n;

	(void)state;
	status.code = 3;
	status.message = "bad request: missing resource";
	n = meshtrace__otlp__rpc_status__pack(&status, body);
	srv_script(srv, 400, "Content-Type: application/x-protobuf\r\n", body, n);
	srv_start(srv);
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);

	add_spans(x, 0, 2);
	assert_true(loop_run(&l, x, failed_at_least, &one, 5000));
	loop_run(&l, x, NULL, NULL, 700); /* longer than any retry delay of this config */
	otlp_exporter_stats(x, &st);
	assert_int_equal(srv_count(srv), 1);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.batches_failed, 1);
	assert_int_equal(st.batches_sent, 0);
	assert_int_equal(st.spans_dropped_rejected, 2);
	assert_int_equal(st.spans_exported, 0);
	assert_int_equal(st.queue_spans, 0);
	assert_int_equal(st.last_http_status, 400);
	assert_non_null(strstr(st.last_error, "missing resource"));

	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_partial_success(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceResponse resp =
		MESHTRACE__OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Meshtrace__Otlp__ExportTracePartialSuccess ps =
		MESHTRACE__OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t one = 1;
	uint8_t body[128];
	struct loop l;
	size_t n;

	(void)state;
	ps.rejected_spans = 2;
	ps.error_message = "2 spans too old";
	resp.partial_success = &ps;
	n = meshtrace__otlp__export_trace_service_response__pack(&resp, body);
	srv_script(srv, 200, "Content-Type: application/x-protobuf\r\n", body, n);
	srv_start(srv);
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);

	add_spans(x, 0, 5);
	assert_true(loop_run(&l, x, sent_at_least, &one, 5000));
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.spans_exported, 3);
	assert_int_equal(st.spans_dropped_rejected, 2);
	assert_int_equal(st.batches_failed, 0);
	assert_non_null(strstr(st.last_error, "too old"));

	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_collector_down_then_up(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	struct srv *srv = srv_new(); /* bound, not listening: refused */
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t five = 5;
	size_t total = 0;
	struct loop l;
	int i;

	(void)state;
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);
	add_spans(x, 0, 5);
	loop_run(&l, x, NULL, NULL, 1000);
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.spans_exported, 0);
	assert_true(st.retries >= 2);
	assert_int_equal(st.queue_spans, 5);
	assert_int_equal(st.last_http_status, 0);
	assert_true(st.last_error[0] != '\0');

	srv_start(srv);
	assert_true(loop_run(&l, x, exported_at_least, &five, 5000));
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.queue_spans, 0);
	for (i = 0; i < srv_count(srv); i++) {
		req = srv_trace_req(srv, i);
		total += req_span_count(req);
		meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	}
	assert_int_equal(total, 5);

	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_queue_overflow_drops_oldest(void **state)
{
	Meshtrace__Otlp__ExportTraceServiceRequest *req;
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	unsigned seen[64] = {0}, i, r, k;
	struct loop l;
	char url[128];

	(void)state;
	srv_url(srv, url, sizeof(url), "/v1/traces");
	test_config(&cfg, url, "");
	cfg.batch_max = 4;
	cfg.queue_max_spans = 8;
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	loop_init(&l, x);

	/* No loop turn: batch 0..3 goes on the wire, then only the newest fit. */
	add_spans(x, 0, 40);
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.spans_received, 40);
	assert_int_equal(st.spans_dropped_queue_full, 32);
	assert_int_equal(st.queue_spans, 8);

	srv_start(srv);
	assert_true(loop_run(&l, x, queue_empty, NULL, 5000));
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.spans_exported, 8);
	for (i = 0; i < (unsigned)srv_count(srv); i++) {
		req = srv_trace_req(srv, (int)i);
		for (r = 0; r < req->n_resource_spans; r++) {
			Meshtrace__Otlp__ScopeSpans *ss = req->resource_spans[r]->scope_spans[0];

			for (k = 0; k < ss->n_spans; k++)
				seen[ss->spans[k]->span_id.data[0]]++;
		}
		meshtrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	}
	for (i = 0; i < 40; i++)
		assert_int_equal(seen[i], i < 4 || i >= 36 ? 1 : 0);

	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_queue_bounded_while_down(void **state)
{
	struct srv *srv = srv_new(); /* never listens */
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	size_t before = 0, after;
	unsigned i;
	struct loop l;

	(void)state;
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);
	for (i = 0; i < 200000; i++) {
		if (i == 20000)
			before = mallinfo2().uordblks;
		add_spans(x, i, 1);
		if (i % 1000 == 0)
			loop_run(&l, x, NULL, NULL, 0);
		otlp_exporter_stats(x, &st);
		assert_true(st.queue_spans <= cfg.queue_max_spans + cfg.batch_max);
	}
	after = mallinfo2().uordblks;
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.spans_received, 200000);
	assert_int_equal(st.spans_received, st.spans_exported + st.spans_dropped_queue_full +
						    st.spans_dropped_rejected + st.queue_spans);
	assert_true(st.spans_dropped_queue_full > 190000);
	/* Nothing grows once the queue is full (0 under ASan, which keeps its own books). */
	if (before)
		assert_true(after < before + (256u << 10));

	assert_int_equal(otlp_exporter_flush(x, 200), -ETIMEDOUT);
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.queue_spans, 0);
	assert_true(st.spans_dropped_shutdown > 0);
	assert_int_equal(st.spans_received, st.spans_exported + st.spans_dropped_queue_full +
						    st.spans_dropped_shutdown);
	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static bool expired_at_least(struct otlp_exporter *x, void *ctx)
{
	struct otlp_stats st;

	otlp_exporter_stats(x, &st);
	return st.batches_expired >= *(uint64_t *)ctx;
}

/* A collector that is down: retried with backoff until OTEL_BSP_EXPORT_TIMEOUT, then dropped. */
static void test_retries_bounded(void **state)
{
	struct srv *srv = srv_new(); /* never listens: connections refused */
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t one = 1;
	char url[128];
	struct loop l;

	(void)state;
	srv_url(srv, url, sizeof(url), "/v1/traces");
	test_config(&cfg, url, "");
	cfg.export_timeout_ms = 1000;
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	loop_init(&l, x);
	add_spans(x, 0, 3);
	assert_true(loop_run(&l, x, expired_at_least, &one, 10000));
	otlp_exporter_stats(x, &st);
	assert_true(st.retries >= 2);
	assert_int_equal(st.batches_expired, 1);
	assert_int_equal(st.spans_dropped_expired, 3);
	assert_int_equal(st.spans_exported, 0);
	assert_int_equal(st.queue_spans, 0);
	assert_int_equal(st.spans_received, st.spans_dropped_expired);
	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

/* 200 with a body that is not an ExportTraceServiceResponse: accepted, not resent, counted. */
static void test_garbage_200_counted(void **state)
{
	static const uint8_t garbage[] = "\x0f\xff\xfe not protobuf";
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t three = 3;
	struct loop l;

	(void)state;
	srv_script(srv, 200, "Content-Type: application/x-protobuf\r\n", garbage,
		   sizeof(garbage) - 1);
	srv_start(srv);
	x = exporter_for(srv, &cfg);
	loop_init(&l, x);
	add_spans(x, 0, 3);
	assert_true(loop_run(&l, x, exported_at_least, &three, 5000));
	loop_run(&l, x, NULL, NULL, 300);
	otlp_exporter_stats(x, &st);
	assert_int_equal(srv_count(srv), 1);
	assert_int_equal(st.responses_malformed, 1);
	assert_int_equal(st.spans_exported, 3);
	assert_int_equal(st.spans_dropped_rejected, 0);
	assert_int_equal(st.retries, 0);
	close(l.epfd);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_flush(void **state)
{
	struct srv *srv = srv_new();
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;

	char url[128];

	(void)state;
	srv_start(srv);
	srv_url(srv, url, sizeof(url), "/v1/traces");
	test_config(&cfg, url, "");
	cfg.schedule_delay_ms = 60000;
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	add_spans(x, 0, 7);
	assert_int_equal(otlp_exporter_flush(x, 5000), 0);
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.spans_exported, 7);
	assert_int_equal(st.queue_spans, 0);
	assert_int_equal(otlp_exporter_flush(x, 100), 0); /* nothing left: at once */
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_metrics(void **state)
{
	Meshtrace__Otlp__ExportMetricsServiceRequest req =
		MESHTRACE__OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	Meshtrace__Otlp__ResourceMetrics rm = MESHTRACE__OTLP__RESOURCE_METRICS__INIT;
	Meshtrace__Otlp__ScopeMetrics sm = MESHTRACE__OTLP__SCOPE_METRICS__INIT;
	Meshtrace__Otlp__Metric m = MESHTRACE__OTLP__METRIC__INIT;
	Meshtrace__Otlp__Histogram h = MESHTRACE__OTLP__HISTOGRAM__INIT;
	Meshtrace__Otlp__HistogramDataPoint dp = MESHTRACE__OTLP__HISTOGRAM_DATA_POINT__INIT;
	Meshtrace__Otlp__ResourceMetrics *rmp = &rm;
	Meshtrace__Otlp__ScopeMetrics *smp = &sm;
	Meshtrace__Otlp__Metric *mp = &m;
	Meshtrace__Otlp__HistogramDataPoint *dpp = &dp;
	uint64_t buckets[3] = {0, 0, 0};
	double bounds[2] = {0.005, 0.01};
	struct srv *srv;
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint8_t pb[512], *got;
	char url[128], *text;
	size_t len, glen;
	struct mt_span s;
	struct loop l;

	(void)state;
	need_schema();
	srv = srv_new();
	dp.count = 0;
	dp.sum_present_case = MESHTRACE__OTLP__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
	dp.sum = 0; /* present and zero: must survive the wire */
	dp.n_bucket_counts = 3;
	dp.bucket_counts = buckets;
	dp.n_explicit_bounds = 2;
	dp.explicit_bounds = bounds;
	dp.time_unix_nano = 1700000000000000000ull;
	h.n_data_points = 1;
	h.data_points = &dpp;
	h.aggregation_temporality =
		MESHTRACE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
	m.name = "http.server.request.duration";
	m.unit = "s";
	m.data_case = MESHTRACE__OTLP__METRIC__DATA_HISTOGRAM;
	m.histogram = &h;
	sm.n_metrics = 1;
	sm.metrics = &mp;
	rm.n_scope_metrics = 1;
	rm.scope_metrics = &smp;
	req.n_resource_metrics = 1;
	req.resource_metrics = &rmp;
	len = meshtrace__otlp__export_metrics_service_request__pack(&req, pb);

	text = protoc_decode(pb, len,
			     "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
			     "opentelemetry/proto/collector/metrics/v1/metrics_service.proto");
	squash(text);
	assert_non_null(strstr(text, "name: \"http.server.request.duration\""));
	assert_non_null(strstr(text, "sum: 0"));
	assert_non_null(
		strstr(text, "aggregation_temporality: AGGREGATION_TEMPORALITY_CUMULATIVE"));
	free(text);

	srv_start(srv);
	srv_url(srv, url, sizeof(url), "/v1/metrics");
	test_config(&cfg, "", url);
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	loop_init(&l, x);
	make_span(&s, 0, 1, "a", "a", MT_SPAN_SERVER);
	otlp_exporter_add_span(x, &s); /* traces off: ignored */
	assert_int_equal(otlp_exporter_send_metrics(x, pb, len), 0);
	assert_int_equal(otlp_exporter_flush(x, 3000), 0);
	otlp_exporter_stats(x, &st);
	assert_int_equal(st.metrics_requests_sent, 1);
	assert_int_equal(st.spans_received, 0);
	assert_int_equal(srv_count(srv), 1);
	assert_string_equal(srv->reqs[0].path, "/v1/metrics");
	got = inflate_body(srv->reqs[0].body, srv->reqs[0].body_len, &glen);
	assert_int_equal(glen, len);
	assert_memory_equal(got, pb, len);
	free(got);

	/* Traces-only exporter: no metrics. */
	close(l.epfd);
	otlp_exporter__free(x);
	test_config(&cfg, url, "");
	x = otlp_exporter__new(&cfg);
	assert_non_null(x);
	assert_int_equal(otlp_exporter_send_metrics(x, pb, len), -ENOTCONN);
	otlp_exporter__free(x);
	srv_free(srv);
}

static void test_new_and_free(void **state)
{
	struct otlp_config cfg;

	(void)state;
	otlp_exporter__free(NULL);
	test_config(&cfg, "", "");
	errno = 0;
	assert_null(otlp_exporter__new(&cfg));
	assert_int_equal(errno, EINVAL);
	test_config(&cfg, "http://127.0.0.1:1/v1/traces", "");
	cfg.batch_max = 100;
	cfg.queue_max_spans = 10;
	assert_null(otlp_exporter__new(&cfg));
	assert_int_equal(errno, EINVAL);
	assert_null(otlp_exporter__new(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_config_defaults, setup_env),
		cmocka_unit_test_setup(test_config_empty_is_unset, setup_env),
		cmocka_unit_test_setup(test_config_endpoint_rules, setup_env),
		cmocka_unit_test_setup(test_config_bad_urls, setup_env),
		cmocka_unit_test_setup(test_config_headers, setup_env),
		cmocka_unit_test_setup(test_config_bad_headers, setup_env),
		cmocka_unit_test_setup(test_config_compression, setup_env),
		cmocka_unit_test_setup(test_config_timeout, setup_env),
		cmocka_unit_test_setup(test_config_protocol, setup_env),
		cmocka_unit_test_setup(test_config_tls, setup_env),
		cmocka_unit_test_setup(test_config_resource_attrs, setup_env),
		cmocka_unit_test_setup(test_config_service_name, setup_env),
		cmocka_unit_test_setup(test_config_bsp, setup_env),
		cmocka_unit_test_setup(test_config_known_methods, setup_env),
		cmocka_unit_test(test_encode_official_decode),
		cmocka_unit_test(test_encode_semconv),
		cmocka_unit_test(test_encode_known_methods),
		cmocka_unit_test(test_encode_invalid_utf8),
		cmocka_unit_test(test_encode_edges),
		cmocka_unit_test(test_encode_golden),
		cmocka_unit_test(test_encode_golden_reused),
		cmocka_unit_test(test_utf8_word_steps),
		cmocka_unit_test(test_measure_size_and_speed),
		cmocka_unit_test(test_retry_after_then_ok),
		cmocka_unit_test(test_429_retry_after_date),
		cmocka_unit_test(test_http_400_not_retried),
		cmocka_unit_test(test_http_500_not_retried),
		cmocka_unit_test(test_partial_success),
		cmocka_unit_test(test_collector_down_then_up),
		cmocka_unit_test(test_queue_overflow_drops_oldest),
		cmocka_unit_test(test_queue_bounded_while_down),
		cmocka_unit_test(test_retries_bounded),
		cmocka_unit_test(test_garbage_200_counted),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_new_and_free),
	};

	/* The collector is on 127.0.0.1: a proxy from the environment must not intercept it. */
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
