// SPDX-License-Identifier: Apache-2.0
/*
 * bench/sink: the benchmark's OTLP/HTTP receiver on 127.0.0.1.
 *
 * Answers every POST with 200 and an empty body (a valid, empty
 * ExportTraceServiceResponse). While the benchmark runs it only copies the
 * bodies into memory, so it costs the measured machine as little as a
 * receiver can; on SIGTERM it gunzips and decodes what it kept and writes one
 * JSON object: requests, wire bytes, and spans by (service.name, process.pid,
 * kind), from a protobuf walk over each ExportTraceServiceRequest. The
 * per-process counts let bench/report.py compare the spans of nginx and of
 * the load generator with what those processes really did, whatever else
 * runs on the node.
 *
 * Usage: sink -P PORT_FILE -o OUT_JSON [-m MAX_MIB]
 *   PORT_FILE  where the chosen port (127.0.0.1:0) is written once listening
 *   MAX_MIB    bodies kept for decoding (default 2048); beyond, counted only
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "benchutil.h"

#define SINK_CONNS_MAX	  256
#define SINK_HDR_MAX	  8192
#define SINK_SERVICES_MAX 256
#define SINK_BODIES_MAX	  (1u << 20)

struct body_ref {
	size_t off;
	size_t len;
	bool gzip;
	bool traces;
};

struct sink_conn {
	int fd;
	char hdr[SINK_HDR_MAX];
	size_t hlen;
	bool in_body;
	size_t body_left;
	struct body_ref body; /* off/len into the arena; len 0 when not kept */
	bool keep;
};

struct service_count {
	char name[64];
	uint64_t pid;
	unsigned kind;
	uint64_t spans;
};

struct sink {
	int lfd;
	int epfd;
	int sigfd;
	uint8_t *arena;
	size_t arena_cap;
	size_t arena_len;
	struct body_ref *bodies;
	size_t nbodies;
	struct sink_conn *conns[SINK_CONNS_MAX];
	/* counters */
	uint64_t requests;
	uint64_t trace_requests;
	uint64_t wire_bytes;
	uint64_t not_kept;
	uint64_t bad_requests;
	uint64_t decode_errors;
	uint64_t spans;
	uint64_t raw_bytes;
	struct service_count services[SINK_SERVICES_MAX];
	unsigned nservices;
	uint64_t services_overflow;
};

static const char OK_RESPONSE[] = "HTTP/1.1 200 OK\r\n"
				  "Content-Type: application/x-protobuf\r\n"
				  "Content-Length: 0\r\n\r\n";
static const char BAD_RESPONSE[] = "HTTP/1.1 400 Bad Request\r\n"
				   "Content-Length: 0\r\nConnection: close\r\n\r\n";

static void conn_close(struct sink *s, struct sink_conn *c)
{
	for (int i = 0; i < SINK_CONNS_MAX; i++)
		if (s->conns[i] == c)
			s->conns[i] = NULL;
	close(c->fd);
	free(c);
}

/* Sends @len bytes of @msg; a loopback socket with an empty send buffer takes them at once. */
static int send_all(int fd, const char *msg, size_t len)
{
	while (len) {
		ssize_t n = send(fd, msg, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		msg += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Value of header @name in the header block @h (NUL-terminated), or NULL. */
static const char *header_value(const char *h, const char *name)
{
	size_t nl = strlen(name);
	const char *p = strstr(h, "\r\n");

	while (p && p[2] != '\r' && p[2]) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/* Starts the body of the request whose headers end at @hend in c->hdr. 0, or -EINVAL. */
static int begin_body(struct sink *s, struct sink_conn *c, size_t hend)
{
	const char *cl, *ce, *te, *ex;
	uint64_t len = 0;
	char *end;

	c->hdr[hend - 2] = '\0'; /* keep one "\r\n" so the last header ends like the others */
	if (strncmp(c->hdr, "POST ", 5) != 0)
		return -EINVAL;
	te = header_value(c->hdr, "Transfer-Encoding");
	cl = header_value(c->hdr, "Content-Length");
	if (te || !cl)
		return -EINVAL; /* the agent's libcurl sends a length; chunked is not needed here */
	errno = 0;
	len = strtoull(cl, &end, 10);
	if (errno || end == cl)
		return -EINVAL;
	ce = header_value(c->hdr, "Content-Encoding");
	ex = header_value(c->hdr, "Expect");
	c->body.gzip = ce && strncasecmp(ce, "gzip", 4) == 0;
	c->body.traces = strncmp(c->hdr + 5, "/v1/traces ", 11) == 0;
	c->body.len = 0;
	c->body.off = s->arena_len;
	c->keep = c->body.traces && s->arena_len + len <= s->arena_cap &&
		  s->nbodies < SINK_BODIES_MAX;
	if (c->keep)
		s->arena_len += len;
	c->body_left = len;
	c->in_body = true;
	s->requests++;
	s->trace_requests += c->body.traces;
	s->wire_bytes += len;
	if (ex && strncasecmp(ex, "100-continue", 12) == 0 &&
	    send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
		return -EIO;
	return 0;
}

static int end_body(struct sink *s, struct sink_conn *c)
{
	c->in_body = false;
	if (c->keep) {
		c->body.len = s->arena_len - c->body.off;
		s->bodies[s->nbodies++] = c->body;
	} else if (c->body.traces) {
		s->not_kept++;
	}
	return send_all(c->fd, OK_RESPONSE, sizeof(OK_RESPONSE) - 1);
}

/* Takes @n body bytes at @p (copied into the arena when the body is kept). */
static void take_body(struct sink_conn *c, uint8_t *arena, const uint8_t *p, size_t n)
{
	if (c->keep)
		memcpy(arena + c->body.off + c->body.len, p, n);
	c->body.len += n;
	c->body_left -= n;
}

/* Reads what @c has; returns 0 to keep the connection, <0 to close it. */
static int conn_read(struct sink *s, struct sink_conn *c)
{
	uint8_t discard[65536];

	for (;;) {
		ssize_t n;

		if (c->in_body) {
			size_t want = c->body_left;
			uint8_t *dst;

			if (c->keep) {
				dst = s->arena + c->body.off + c->body.len;
			} else {
				dst = discard;
				if (want > sizeof(discard))
					want = sizeof(discard);
			}
			n = want ? recv(c->fd, dst, want, 0) : 0;
			if (want && n == 0)
				return -EPIPE;
			if (want && n < 0)
				goto out_recv;
			c->body.len += (size_t)n;
			c->body_left -= (size_t)n;
			if (c->body_left == 0 && end_body(s, c) != 0)
				return -EIO;
			continue;
		}
		n = recv(c->fd, c->hdr + c->hlen, SINK_HDR_MAX - 1 - c->hlen, 0);
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			goto out_recv;
		c->hlen += (size_t)n;
		c->hdr[c->hlen] = '\0';
		/* Every complete request in the buffer (the agent does not pipeline, but be exact). */
		for (;;) {
			char *e = strstr(c->hdr, "\r\n\r\n");
			size_t hend, rest, take;

			if (!e) {
				if (c->hlen >= SINK_HDR_MAX - 1)
					goto out_bad;
				break;
			}
			hend = (size_t)(e - c->hdr) + 4;
			if (begin_body(s, c, hend) != 0)
				goto out_bad;
			rest = c->hlen - hend;
			take = rest < c->body_left ? rest : c->body_left;
			take_body(c, s->arena, (uint8_t *)c->hdr + hend, take);
			memmove(c->hdr, c->hdr + hend + take, rest - take);
			c->hlen = rest - take;
			c->hdr[c->hlen] = '\0';
			if (c->body_left)
				break;
			if (end_body(s, c) != 0)
				return -EIO;
		}
	}
out_recv:
	return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -EIO;
out_bad:
	s->bad_requests++;
	(void)send_all(c->fd, BAD_RESPONSE, sizeof(BAD_RESPONSE) - 1);
	return -EINVAL;
}

static void accept_all(struct sink *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};
		struct sink_conn *c;
		int slot = -1, one = 1;

		if (fd < 0)
			return;
		for (int i = 0; i < SINK_CONNS_MAX && slot < 0; i++)
			if (!s->conns[i])
				slot = i;
		c = slot >= 0 ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		s->conns[slot] = c;
		ev.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
			conn_close(s, c);
	}
}

static void count_span(struct sink *s, const char *service, uint64_t pid, unsigned kind)
{
	unsigned i;

	s->spans++;
	for (i = 0; i < s->nservices; i++)
		if (s->services[i].kind == kind && s->services[i].pid == pid &&
		    strcmp(s->services[i].name, service) == 0)
			break;
	if (i == s->nservices) {
		if (s->nservices == SINK_SERVICES_MAX) {
			s->services_overflow++;
			return;
		}
		snprintf(s->services[i].name, sizeof(s->services[i].name), "%s", service);
		s->services[i].kind = kind;
		s->services[i].pid = pid;
		s->nservices++;
	}
	s->services[i].spans++;
}

/* Gunzips @b into *@buf (grown as needed). Returns the length, or -1. */
static ssize_t gunzip(const uint8_t *in, size_t len, uint8_t **buf, size_t *cap)
{
	z_stream z = {0};
	ssize_t out = -1;
	int rc;

	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	for (;;) {
		if (z.total_out == *cap) {
			size_t ncap = *cap ? *cap * 2 : 1 << 20;
			uint8_t *nb = realloc(*buf, ncap);

			if (!nb)
				goto out_end;
			*buf = nb;
			*cap = ncap;
		}
		z.next_out = *buf + z.total_out;
		z.avail_out = (uInt)(*cap - z.total_out);
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			out = (ssize_t)z.total_out;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			break;
		if (rc == Z_BUF_ERROR && z.avail_out)
			break; /* truncated input */
	}
out_end:
	inflateEnd(&z);
	return out;
}

/* Protobuf wire format, just enough to count spans. A varint at *@p; *@ok = false if cut short. */
static uint64_t pb_varint(const uint8_t **p, const uint8_t *end, bool *ok)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	*ok = false;
	return 0;
}

/* Next field of [*@p, @end): its number, 0 when done, -1 when malformed. */
static int pb_next(const uint8_t **p, const uint8_t *end, unsigned *wt, const uint8_t **val,
		   uint64_t *vlen)
{
	bool ok = true;
	uint64_t tag, n;

	if (*p >= end)
		return 0;
	tag = pb_varint(p, end, &ok);
	*wt = (unsigned)(tag & 7);
	*val = *p;
	switch (*wt) {
	case 0:
		*vlen = pb_varint(p, end, &ok);
		break;
	case 1:
		*p += 8;
		break;
	case 2:
		n = pb_varint(p, end, &ok);
		*val = *p;
		*vlen = n;
		if (ok && n > (uint64_t)(end - *p))
			ok = false;
		else
			*p += n;
		break;
	case 5:
		*p += 4;
		break;
	default:
		ok = false;
	}
	if (!ok || *p > end || (tag >> 3) == 0 || (tag >> 3) > INT32_MAX)
		return -1;
	return (int)(tag >> 3);
}

/*
 * service.name (copied into @out, "" when absent) and process.pid (*@pid, 0
 * when absent) of a Resource message. 0 or -1.
 */
static int pb_resource(const uint8_t *p, const uint8_t *end, char *out, size_t outlen,
		       uint64_t *pid)
{
	const uint8_t *v, *kv, *kvend;
	uint64_t len;
	unsigned wt;
	int f;

	out[0] = '\0';
	*pid = 0;
	while ((f = pb_next(&p, end, &wt, &v, &len)) > 0) {
		const uint8_t *key = NULL, *sval = NULL;
		uint64_t keylen = 0, svallen = 0, ival = 0;

		if (f != 1 || wt != 2)
			continue;
		kv = v;
		kvend = v + len;
		while ((f = pb_next(&kv, kvend, &wt, &v, &len)) > 0) {
			if (f == 1 && wt == 2) {
				key = v;
				keylen = len;
			} else if (f == 2 && wt == 2) {
				const uint8_t *av = v, *avend = v + len;

				while ((f = pb_next(&av, avend, &wt, &v, &len)) > 0) {
					if (f == 1 && wt == 2) {
						sval = v;
						svallen = len;
					} else if (f == 3 && wt == 0) {
						ival = len;
					}
				}
				if (f < 0)
					return -1;
			}
		}
		if (f < 0)
			return -1;
		if (key && keylen == 12 && memcmp(key, "service.name", 12) == 0 && sval) {
			if (svallen >= outlen)
				svallen = outlen - 1;
			memcpy(out, sval, svallen);
			out[svallen] = '\0';
		}
		if (key && keylen == 11 && memcmp(key, "process.pid", 11) == 0)
			*pid = ival;
	}
	return f < 0 ? -1 : 0;
}

/* Counts the spans of one ExportTraceServiceRequest. 0, or -1 when it is malformed. */
static int count_request(struct sink *s, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n, *v, *rs, *rsend, *ss, *ssend, *sp, *spend;
	char service[64];
	uint64_t len, pid = 0;
	unsigned wt;
	int f;

	while ((f = pb_next(&p, end, &wt, &v, &len)) > 0) {
		if (f != 1 || wt != 2)
			continue;
		rs = v;
		rsend = v + len;
		service[0] = '\0';
		pid = 0;
		/* The encoder writes the Resource (field 1) before the ScopeSpans (field 2). */
		while ((f = pb_next(&rs, rsend, &wt, &v, &len)) > 0) {
			if (f == 1 && wt == 2 &&
			    pb_resource(v, v + len, service, sizeof(service), &pid) != 0)
				return -1;
			if (f != 2 || wt != 2)
				continue;
			ss = v;
			ssend = v + len;
			while ((f = pb_next(&ss, ssend, &wt, &v, &len)) > 0) {
				unsigned kind = 0;

				if (f != 2 || wt != 2)
					continue;
				sp = v;
				spend = v + len;
				while ((f = pb_next(&sp, spend, &wt, &v, &len)) > 0)
					if (f == 6 && wt == 0) {
						kind = (unsigned)len;
						break;
					}
				if (f < 0)
					return -1;
				count_span(s, service, pid, kind);
			}
			if (f < 0)
				return -1;
		}
		if (f < 0)
			return -1;
	}
	return f < 0 ? -1 : 0;
}

static void decode_body(struct sink *s, const struct body_ref *b, uint8_t **buf, size_t *cap)
{
	const uint8_t *pb = s->arena + b->off;
	size_t len = b->len;

	if (b->gzip) {
		ssize_t n = gunzip(pb, b->len, buf, cap);

		if (n < 0) {
			s->decode_errors++;
			return;
		}
		pb = *buf;
		len = (size_t)n;
	}
	s->raw_bytes += len;
	if (count_request(s, pb, len) != 0)
		s->decode_errors++;
}

static int write_report(struct sink *s, const char *path)
{
	char *text;
	size_t cap = 4096 + (size_t)s->nservices * 160, off = 0;
	uint8_t *buf = NULL;
	size_t bufcap = 0;
	int err;

	for (size_t i = 0; i < s->nbodies; i++)
		decode_body(s, &s->bodies[i], &buf, &bufcap);
	free(buf);
	text = malloc(cap);
	if (!text)
		return -ENOMEM;
	off += (size_t)snprintf(
		text + off, cap - off,
		"{\"requests\":%" PRIu64 ",\"trace_requests\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
		",\"raw_bytes\":%" PRIu64 ",\"not_kept\":%" PRIu64 ",\"bad_requests\":%" PRIu64
		",\"decode_errors\":%" PRIu64 ",\"spans\":%" PRIu64
		",\"services_overflow\":%" PRIu64 ",\"by_service\":[",
		s->requests, s->trace_requests, s->wire_bytes, s->raw_bytes, s->not_kept,
		s->bad_requests, s->decode_errors, s->spans, s->services_overflow);
	for (unsigned i = 0; i < s->nservices && off < cap; i++) {
		char name[130];
		size_t w = 0;

		/* Service names are executable names here; escape just enough for JSON. */
		for (const char *p = s->services[i].name; *p && w < sizeof(name) - 2; p++) {
			if (*p == '"' || *p == '\\')
				name[w++] = '\\';
			name[w++] = (*p >= 0x20) ? *p : '?';
		}
		name[w] = '\0';
		off += (size_t)snprintf(text + off, cap - off,
					"%s{\"service\":\"%s\",\"pid\":%" PRIu64
					",\"kind\":%u,\"spans\":%" PRIu64 "}",
					i ? "," : "", name, s->services[i].pid, s->services[i].kind,
					s->services[i].spans);
	}
	if (off < cap)
		snprintf(text + off, cap - off, "]}\n");
	err = bench_write_file(path, text);
	free(text);
	return err;
}

static int sink_listen(struct sink *s, const char *port_file)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sa);
	struct epoll_event ev = {.events = EPOLLIN};
	char port[32];
	sigset_t mask;

	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(s->lfd, 128) != 0 || getsockname(s->lfd, (struct sockaddr *)&sa, &slen) != 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		return -errno;
	s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->sigfd < 0 || s->epfd < 0)
		return -errno;
	ev.data.ptr = &s->lfd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) != 0)
		return -errno;
	ev.data.ptr = &s->sigfd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) != 0)
		return -errno;
	snprintf(port, sizeof(port), "%u\n", ntohs(sa.sin_port));
	return bench_write_file(port_file, port);
}

int main(int argc, char **argv)
{
	static struct sink s;
	const char *port_file = NULL, *out = NULL;
	uint64_t max_mib = 2048;
	int opt, err;

	while ((opt = getopt(argc, argv, "P:o:m:")) != -1) {
		switch (opt) {
		case 'P':
			port_file = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'm':
			if (bench_parse_u64(optarg, 1, 65536, &max_mib) == 0)
				break;
			/* fall through */
		default:
			fprintf(stderr, "usage: sink -P PORT_FILE -o OUT_JSON [-m MAX_MIB]\n");
			return 2;
		}
	}
	if (!port_file || !out) {
		fprintf(stderr, "usage: sink -P PORT_FILE -o OUT_JSON [-m MAX_MIB]\n");
		return 2;
	}
	s.arena_cap = (size_t)max_mib << 20;
	/* Untouched pages cost nothing until the bodies arrive. */
	s.arena = malloc(s.arena_cap);
	s.bodies = calloc(SINK_BODIES_MAX, sizeof(*s.bodies));
	if (!s.arena || !s.bodies) {
		fprintf(stderr, "sink: out of memory for %" PRIu64 " MiB of bodies\n", max_mib);
		return 1;
	}
	err = sink_listen(&s, port_file);
	if (err) {
		fprintf(stderr, "sink: cannot listen on 127.0.0.1: %s\n", strerror(-err));
		return 1;
	}
	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(s.epfd, evs, 32, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &s.lfd) {
				accept_all(&s);
			} else if (evs[i].data.ptr == &s.sigfd) {
				err = write_report(&s, out);
				if (err)
					fprintf(stderr, "sink: cannot write %s: %s\n", out,
						strerror(-err));
				return err ? 1 : 0;
			} else {
				struct sink_conn *c = evs[i].data.ptr;

				if (conn_read(&s, c) != 0)
					conn_close(&s, c);
			}
		}
	}
}
