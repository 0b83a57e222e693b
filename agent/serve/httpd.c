// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/serve/httpd.h"
#include "agent/common/clock.h"
#include "agent/common/util.h"

struct client {
	int fd;		      /* -1: free slot */
	bool answering;	      /* the head is in; the answer is being written */
	uint64_t accepted_ms; /* HTTPD_HEAD_MS and HTTPD_CONN_MS count from here */
	uint64_t last_ms;     /* last progress: HTTPD_IDLE_MS counts from here */
	size_t head_len;
	size_t sent;
	struct mt_buf out; /* status line + headers + body */
	char head[HTTPD_HEAD_MAX];
};

struct route {
	char path[64];
	httpd_handler fn;
	void *ctx;
};

struct httpd {
	int listen_fd;
	int epfd;
	uint16_t port;
	struct route routes[HTTPD_ROUTES_MAX];
	int nroutes;
	struct client clients[HTTPD_CLIENTS_MAX];
	struct httpd_stats stats;
};

/* Parses "IP:PORT" or "[IPv6]:PORT" into @ss. */
static int parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *port_s;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, (size_t)(close - addr - 1));
		host[close - addr - 1] = '\0';
		port_s = close + 2;
	} else {
		const char *colon = strrchr(addr, ':');

		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		port_s = colon + 1;
	}
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || end == port_s || *end || port < 0 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

struct httpd *httpd__new(const char *addr, char *err, size_t errlen)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	struct httpd *h;
	int one = 1;

	if (parse_listen(addr, &ss, &sslen)) {
		snprintf(err, errlen,
			 "--listen '%s': give an address and port, e.g. 127.0.0.1:9464 or "
			 "[::1]:9464",
			 addr);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < HTTPD_CLIENTS_MAX; i++)
		h->clients[i].fd = -1;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->epfd < 0 || h->listen_fd < 0) {
		snprintf(err, errlen, "cannot create the listener: %s", strerror(errno));
		goto out_free;
	}
	setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->listen_fd, (struct sockaddr *)&ss, sslen) != 0) {
		snprintf(err, errlen, "--listen %s: %s; choose another port with --listen", addr,
			 strerror(errno));
		goto out_free;
	}
	if (listen(h->listen_fd, 64) != 0) {
		snprintf(err, errlen, "listen on %s: %s", addr, strerror(errno));
		goto out_free;
	}
	getsockname(h->listen_fd, (struct sockaddr *)&ss, &sslen);
	h->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						: ((struct sockaddr_in6 *)&ss)->sin6_port);
	ev.data.ptr = NULL; /* the listener */
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->listen_fd, &ev) != 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto out_free;
	}
	return h;

out_free:
	httpd__free(h);
	return NULL;
}

static void client_close(struct httpd *h, struct client *c)
{
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	h->stats.clients--;
	mt_buf_free(&c->out);
}

void httpd__free(struct httpd *h)
{
	if (!h)
		return;
	for (int i = 0; i < HTTPD_CLIENTS_MAX; i++)
		if (h->clients[i].fd >= 0)
			client_close(h, &h->clients[i]);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->epfd >= 0)
		close(h->epfd);
	free(h);
}

int httpd_route(struct httpd *h, const char *path, httpd_handler fn, void *ctx)
{
	if (h->nroutes >= HTTPD_ROUTES_MAX || strlen(path) >= sizeof(h->routes[0].path))
		return -ENOSPC;
	mt_strlcpy(h->routes[h->nroutes].path, path, sizeof(h->routes[0].path));
	h->routes[h->nroutes].fn = fn;
	h->routes[h->nroutes].ctx = ctx;
	h->nroutes++;
	return 0;
}

int httpd_fd(const struct httpd *h)
{
	return h->epfd;
}

uint16_t httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_stats(const struct httpd *h, struct httpd_stats *out)
{
	*out = h->stats;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* Replaces the client's output with a full response and switches it to writing. */
static void respond(struct httpd *h, struct client *c, int status, const char *type,
		    const struct mt_buf *body, bool head_only)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	size_t body_len = body ? body->len : 0;

	c->answering = true;
	mt_buf_free(&c->out);
	mt_buf_init(&c->out, HTTPD_RESPONSE_MAX + 1024);
	mt_buf_printf(&c->out,
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
		      "Connection: close\r\n\r\n",
		      status, status_text(status), type ? type : "text/plain; charset=utf-8",
		      body_len);
	if (body && !head_only)
		mt_buf_append(&c->out, body->data, body->len);
	c->sent = 0;
	epoll_ctl(h->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void respond_text(struct httpd *h, struct client *c, int status, const char *text)
{
	struct mt_buf b;

	mt_buf_init(&b, 1024);
	mt_buf_printf(&b, "%s\n", text);
	respond(h, c, status, NULL, &b, false);
	mt_buf_free(&b);
}

static const struct route *find_route(const struct httpd *h, const char *path)
{
	for (int i = 0; i < h->nroutes; i++) {
		const struct route *r = &h->routes[i];
		size_t n = strlen(r->path);

		if (strcmp(path, r->path) == 0)
			return r;
		if (n > 1 && r->path[n - 1] == '/' && strncmp(path, r->path, n) == 0)
			return r;
	}
	return NULL;
}

int httpd_parse_request(const char *head, struct httpd_request *req)
{
	char *query;

	if (sscanf(head, "%7s %1023s HTTP/1.%*c", req->method, req->target) != 2 ||
	    req->target[0] != '/')
		return -EINVAL;
	query = strchr(req->target, '?');
	if (query)
		*query++ = '\0';
	req->query = query ? query : "";
	req->accept[0] = '\0';
	for (const char *line = strchr(head, '\n'); line && line[1];
	     line = strchr(line + 1, '\n')) {
		const char *v = line + 1;
		size_t n;

		if (*v == '\r' || *v == '\n')
			break; /* the end of the head */
		if (strncasecmp(v, "Accept:", 7) != 0)
			continue;
		v += 7;
		while (*v == ' ' || *v == '\t')
			v++;
		n = strcspn(v, "\r\n");
		if (n >= sizeof(req->accept))
			n = sizeof(req->accept) - 1;
		memcpy(req->accept, v, n);
		req->accept[n] = '\0';
		break;
	}
	return 0;
}

/* The request head is complete: route it and queue the answer. */
static void handle_request(struct httpd *h, struct client *c)
{
	struct httpd_request req;
	struct httpd_response resp;
	const struct route *r;
	bool head;
	int rc;

	h->stats.requests++;
	if (httpd_parse_request(c->head, &req)) {
		h->stats.bad_requests++;
		respond_text(h, c, 400, "bad request");
		return;
	}
	head = strcmp(req.method, "HEAD") == 0;
	if (!head && strcmp(req.method, "GET") != 0) {
		respond_text(h, c, 405, "only GET and HEAD");
		return;
	}
	r = find_route(h, req.target);
	if (!r) {
		respond_text(h, c, 404, "not found");
		return;
	}
	memset(&resp, 0, sizeof(resp));
	resp.status = 200;
	resp.accept = req.accept;
	mt_buf_init(&resp.body, HTTPD_RESPONSE_MAX);
	rc = r->fn(r->ctx, req.target, req.query, &resp);
	if (rc || resp.body.overflow)
		respond_text(h, c, 500, "internal error");
	else
		respond(h, c, resp.status, resp.content_type, &resp.body, head);
	mt_buf_free(&resp.body);
}

static void on_readable(struct httpd *h, struct client *c)
{
	ssize_t n;

	n = read(c->fd, c->head + c->head_len, sizeof(c->head) - 1 - c->head_len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(h, c);
		return;
	}
	if (n < 0)
		return;
	c->last_ms = mt_now_mono_ms();
	c->head_len += (size_t)n;
	c->head[c->head_len] = '\0';
	if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
		handle_request(h, c);
	} else if (c->head_len >= sizeof(c->head) - 1) {
		h->stats.bad_requests++;
		respond_text(h, c, 431, "request head too large");
	}
}

static void on_writable(struct httpd *h, struct client *c)
{
	ssize_t n = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(h, c);
		return;
	}
	c->last_ms = mt_now_mono_ms();
	c->sent += (size_t)n;
	if (c->sent >= c->out.len)
		client_close(h, c);
}

static void accept_clients(struct httpd *h)
{
	for (;;) {
		struct epoll_event ev = {.events = EPOLLIN};
		struct client *c = NULL;
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		for (int i = 0; i < HTTPD_CLIENTS_MAX; i++) {
			if (h->clients[i].fd < 0) {
				c = &h->clients[i];
				break;
			}
		}
		if (!c) {
			h->stats.rejected_full++;
			close(fd);
			continue;
		}
		h->stats.accepted++;
		h->stats.clients++;
		c->fd = fd;
		c->answering = false;
		c->head_len = 0;
		c->sent = 0;
		c->accepted_ms = c->last_ms = mt_now_mono_ms();
		mt_buf_init(&c->out, HTTPD_RESPONSE_MAX + 1024);
		ev.data.ptr = c;
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
			client_close(h, c);
	}
}

void httpd_poll(struct httpd *h)
{
	struct epoll_event evs[16];
	int n;

	n = epoll_wait(h->epfd, evs, 16, 0);
	for (int i = 0; i < n; i++) {
		struct client *c = evs[i].data.ptr;

		if (!c) {
			accept_clients(h);
			continue;
		}
		if (c->fd < 0)
			continue;
		if (evs[i].events & EPOLLOUT)
			on_writable(h, c);
		else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			on_readable(h, c);
	}
	httpd_expire(h, mt_now_mono_ms());
}

/* Whether @c is past one of its deadlines at @now. */
static bool client_expired(const struct client *c, uint64_t now)
{
	if (now - c->accepted_ms > HTTPD_CONN_MS)
		return true;
	if (!c->answering)
		return now - c->accepted_ms > HTTPD_HEAD_MS;
	return now - c->last_ms > HTTPD_IDLE_MS;
}

void httpd_expire(struct httpd *h, uint64_t now_ms)
{
	for (int i = 0; i < HTTPD_CLIENTS_MAX; i++) {
		struct client *c = &h->clients[i];

		if (c->fd >= 0 && client_expired(c, now_ms)) {
			h->stats.timed_out++;
			client_close(h, c);
		}
	}
}
