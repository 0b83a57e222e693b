/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's own HTTP listener: /metrics, the JSON API, /healthz and the page.
 * Read-only (GET and HEAD), one response per connection, bounded: at most
 * HTTPD_CLIENTS_MAX clients (more are closed at once, counted),
 * HTTPD_HEAD_MAX bytes of request head, HTTPD_HEAD_MS from accept to the end
 * of the head (a client sending one byte a second is closed, however steady),
 * HTTPD_IDLE_MS without progress while answering, HTTPD_CONN_MS in all.
 * It runs inside the agent's event loop: httpd_fd() is an epoll fd, and the
 * loop calls httpd_expire() every second so that silent clients go too.
 */
#ifndef MESHTRACE_HTTPD_H
#define MESHTRACE_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "agent/common/buf.h"

#define HTTPD_CLIENTS_MAX    64
#define HTTPD_HEAD_MAX	     8192
#define HTTPD_IDLE_MS	     10000
#define HTTPD_HEAD_MS	     10000
#define HTTPD_CONN_MS	     60000
#define HTTPD_RESPONSE_MAX   (16u << 20)
#define HTTPD_ROUTES_MAX     16
#define HTTPD_DEFAULT_LISTEN "127.0.0.1:9464"

struct httpd_response {
	int status;		  /* 200 unless the handler says otherwise */
	const char *content_type; /* static string */
	struct mt_buf body;
	const char *accept; /* in: the request's Accept header value, "" when none */
};

/*
 * Fills @resp for a GET of @path (no query; @query is what followed '?', or
 * ""). Returns 0, or -errno for a 500.
 */
typedef int (*httpd_handler)(void *ctx, const char *path, const char *query,
			     struct httpd_response *resp);

struct httpd_stats {
	uint64_t accepted; /* connections taken into a client slot */
	uint64_t requests;
	uint64_t rejected_full; /* connections closed at once: HTTPD_CLIENTS_MAX reached */
	uint64_t bad_requests;
	uint64_t timed_out; /* closed by HTTPD_HEAD_MS, HTTPD_IDLE_MS or HTTPD_CONN_MS */
	uint64_t clients;   /* open now */
};

/* What a request head asks for, as the listener reads it. */
struct httpd_request {
	char method[8];
	char target[1024]; /* the path, cut at '?' */
	const char *query; /* into @target: what followed '?', or "" */
	char accept[512];  /* the first Accept header's value (cut), "" when none */
};

/*
 * Reads the request line and the Accept header of the NUL-terminated request
 * head @head into @req.
 * Returns 0, or -EINVAL when it is not "METHOD /target ..." (a 400). Pure.
 */
int httpd_parse_request(const char *head, struct httpd_request *req);

struct httpd;

/*
 * Listens on @addr ("IP:PORT" or "[IPv6]:PORT"). On failure returns NULL with
 * one line in @err naming the cause and the fix.
 */
struct httpd *httpd__new(const char *addr, char *err, size_t errlen);
void httpd__free(struct httpd *h);

/* Routes a path to a handler: exact match, or prefix match when @path ends in '/'. */
int httpd_route(struct httpd *h, const char *path, httpd_handler fn, void *ctx);

int httpd_fd(const struct httpd *h);
/* Accepts, reads, answers and writes whatever is ready; drops expired clients. */
void httpd_poll(struct httpd *h);
/* Closes the clients past a deadline at @now_ms (monotonic), counted in timed_out. */
void httpd_expire(struct httpd *h, uint64_t now_ms);
/* The port actually bound (useful with port 0). */
uint16_t httpd_port(const struct httpd *h);
void httpd_stats(const struct httpd *h, struct httpd_stats *out);

#endif /* MESHTRACE_HTTPD_H */
