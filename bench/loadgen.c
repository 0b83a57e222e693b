// SPDX-License-Identifier: Apache-2.0
/*
 * bench/loadgen: an open-loop HTTP/1.1 load generator for latency at a fixed
 * rate (wrk only saturates, and wrk2 is not packaged in Debian).
 *
 * Request i is due at start + i / rate, whatever happened to the ones before
 * it, and its latency runs from that due time to the last byte of its
 * response: a slow response delays the ones queued behind it and that wait
 * is counted (no coordinated omission). Requests go out on keep-alive
 * connections, one in flight per connection; when every connection is busy
 * the request waits for the first one to free up. One thread, epoll,
 * timer slack 1 ns.
 *
 * Options:
 *   -p PORT          server port on 127.0.0.1 (only loopback is allowed here)
 *   -r RATE          requests per second
 *   -d SECONDS       how long requests are scheduled
 *   -c CONNS         keep-alive connections carrying the load (default 32)
 *   -u PATH          request path (default /index.html)
 *   -n NPATHS        cycle through NPATHS distinct paths /u/0 .. /u/NPATHS-1 instead
 *   -i IDLE          first open IDLE more connections, one request each, and keep
 *                    them open and idle until the end
 *   -w SECONDS       warm-up: requests due in the first SECONDS are sent but not
 *                    put in the latency figures (default 0.5)
 *   -s MICROSECONDS  poll instead of sleeping when the next send is this close
 *                    (default 0: always sleep; see LG_SPIN_NS_DEFAULT)
 *   -o FILE          write the results as one JSON object to FILE (default stdout)
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"

#define LG_CONNS_MAX 4096
#define LG_IDLE_MAX  20000
#define LG_BUF	     8192
#define LG_DRAIN_NS  2000000000ull /* wait this long for answers after the last send */
#define LG_LATE_NS   1000000ull	   /* a send this much after its due time counts as late */
/*
 * Poll instead of sleeping when the next send is this close (-s). Off by
 * default: a generator that spins hides its CPU's idle time from the
 * scheduler, and the agent would then have to take CPU from it (or from
 * nginx) even at a rate that leaves room. Sleeping costs ~10 us of accuracy
 * per wake-up in this nested VM, the same with and without the agent.
 */
#define LG_SPIN_NS_DEFAULT 0ull

struct lg_conn {
	int fd;
	bool busy;
	uint64_t due_ns; /* of the request in flight */
	size_t len;
	char buf[LG_BUF];
};

struct lg {
	/* options */
	uint16_t port;
	uint64_t rate;
	double duration_s;
	double warmup_s;
	unsigned nconns;
	unsigned npaths;
	unsigned nidle;
	uint64_t spin_ns;
	const char *path;
	/* state */
	int epfd;
	struct lg_conn *conns;
	unsigned *free_stack;
	unsigned nfree;
	uint64_t *backlog; /* due times of requests waiting for a connection (ring) */
	size_t backlog_cap, backlog_head, backlog_len;
	uint32_t *lat_ns;
	size_t nlat, lat_cap;
	uint64_t start_ns, warm_end_ns;
	uint64_t path_seq;
	/* counters */
	uint64_t scheduled, sent, completed, errors, status_errors, late, reconnects, backlog_full,
		idle_open;
	uint64_t max_backlog;
	double lat_sum_ns;
};

static int connect_one(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int format_request(struct lg *g, char *buf, size_t len)
{
	if (g->npaths)
		return snprintf(buf, len,
				"GET /u/%" PRIu64 " HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
				"User-Agent: mt-loadgen\r\n\r\n",
				g->path_seq++ % g->npaths, g->port);
	return snprintf(buf, len,
			"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: mt-loadgen\r\n\r\n",
			g->path, g->port);
}

/*
 * Length of the complete response at the start of @buf, 0 while it is
 * incomplete, -1 when it cannot be framed. *@status gets the status code.
 */
static ssize_t response_len(const char *buf, size_t len, unsigned *status)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	const char *p;
	size_t hlen;
	unsigned long long cl = 0;
	bool have_cl = false;

	if (!end)
		return len >= LG_BUF ? -1 : 0;
	hlen = (size_t)(end - buf) + 4;
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	*status = (unsigned)strtoul(buf + 9, NULL, 10);
	for (p = memmem(buf, hlen, "\r\n", 2); p && p < end;
	     p = memmem(p + 2, (size_t)(end - p), "\r\n", 2)) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
			cl = strtoull(p + 17, NULL, 10);
			have_cl = true;
			break;
		}
	}
	if (!have_cl)
		return -1; /* nginx always sends one for these responses */
	if (hlen + cl > LG_BUF)
		return -1;
	return len >= hlen + cl ? (ssize_t)(hlen + cl) : 0;
}

static void record(struct lg *g, uint64_t due, uint64_t now)
{
	uint64_t lat = now > due ? now - due : 0;

	g->completed++;
	if (due < g->warm_end_ns || g->nlat == g->lat_cap)
		return;
	g->lat_ns[g->nlat++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
	g->lat_sum_ns += (double)lat;
}

/* Sends one request due at @due on the idle connection @ci. */
static void send_on(struct lg *g, unsigned ci, uint64_t due, uint64_t now)
{
	struct lg_conn *c = &g->conns[ci];
	char req[512];
	int len = format_request(g, req, sizeof(req));
	ssize_t n = send(c->fd, req, (size_t)len, MSG_NOSIGNAL);

	if (n != len) {
		g->errors++;
		g->free_stack[g->nfree++] = ci;
		return;
	}
	if (now > due + LG_LATE_NS)
		g->late++;
	c->busy = true;
	c->due_ns = due;
	g->sent++;
}

static void dispatch(struct lg *g, uint64_t due, uint64_t now)
{
	if (g->nfree) {
		send_on(g, g->free_stack[--g->nfree], due, now);
		return;
	}
	if (g->backlog_len == g->backlog_cap) {
		g->backlog_full++;
		return;
	}
	g->backlog[(g->backlog_head + g->backlog_len++) % g->backlog_cap] = due;
	if (g->backlog_len > g->max_backlog)
		g->max_backlog = g->backlog_len;
}

static int reopen(struct lg *g, unsigned ci)
{
	struct lg_conn *c = &g->conns[ci];
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = ci};
	int fd;

	close(c->fd);
	c->fd = -1;
	c->busy = false;
	c->len = 0;
	g->reconnects++;
	fd = connect_one(g->port);
	if (fd < 0)
		return fd;
	c->fd = fd;
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -errno;
	return 0;
}

/*
 * Connection @ci broke (closed, or sent what is not an answer): its request,
 * if any, is an error; a new connection takes its place.
 */
static int conn_failed(struct lg *g, unsigned ci)
{
	bool was_busy = g->conns[ci].busy;

	g->errors++;
	if (reopen(g, ci) != 0)
		return -EIO;
	if (was_busy) /* an idle one is on the free stack already */
		g->free_stack[g->nfree++] = ci;
	return 0;
}

/* Reads what connection @ci has; completes its request and hands it the next one waiting. */
static int on_readable(struct lg *g, unsigned ci)
{
	struct lg_conn *c = &g->conns[ci];
	ssize_t n = recv(c->fd, c->buf + c->len, LG_BUF - c->len, MSG_DONTWAIT);
	uint64_t now;
	unsigned status = 0;
	ssize_t rlen;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return conn_failed(g, ci);
	c->len += (size_t)n;
	rlen = response_len(c->buf, c->len, &status);
	if (rlen == 0)
		return 0;
	now = bench_now_ns();
	if (rlen < 0 || !c->busy)
		return conn_failed(g, ci);
	if (status < 200 || status > 299)
		g->status_errors++;
	record(g, c->due_ns, now);
	memmove(c->buf, c->buf + rlen, c->len - (size_t)rlen);
	c->len -= (size_t)rlen;
	c->busy = false;
	if (g->backlog_len) {
		uint64_t due = g->backlog[g->backlog_head];

		g->backlog_head = (g->backlog_head + 1) % g->backlog_cap;
		g->backlog_len--;
		send_on(g, ci, due, now);
	} else {
		g->free_stack[g->nfree++] = ci;
	}
	return 0;
}

/* Opens the idle connections: one request each, answered, then left open. */
static int open_idle(struct lg *g, int **fds)
{
	char req[512], buf[LG_BUF];

	*fds = calloc(g->nidle ? g->nidle : 1, sizeof(int));
	if (!*fds)
		return -ENOMEM;
	for (unsigned i = 0; i < g->nidle; i++) {
		int fd = connect_one(g->port), len;
		size_t got = 0;
		unsigned status;
		ssize_t rlen = 0;

		if (fd < 0)
			return fd;
		(*fds)[i] = fd;
		len = format_request(g, req, sizeof(req));
		if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len)
			return -EIO;
		while (rlen == 0) {
			ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);

			if (n <= 0)
				return -EIO;
			got += (size_t)n;
			rlen = response_len(buf, got, &status);
		}
		if (rlen < 0)
			return -EIO;
		g->idle_open++;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const struct lg *g, double p)
{
	size_t i;

	if (!g->nlat)
		return 0;
	i = (size_t)(p * (double)(g->nlat - 1) + 0.5);
	return g->lat_ns[i] / 1000.0;
}

static int report(struct lg *g, const char *out, double elapsed_s)
{
	char text[2048];

	qsort(g->lat_ns, g->nlat, sizeof(*g->lat_ns), cmp_u32);
	snprintf(text, sizeof(text),
		 "{\"rate\":%" PRIu64 ",\"duration_s\":%.3f,\"conns\":%u,\"idle_conns\":%" PRIu64
		 ",\"npaths\":%u,\"scheduled\":%" PRIu64 ",\"sent\":%" PRIu64
		 ",\"completed\":%" PRIu64 ",\"recorded\":%zu,\"errors\":%" PRIu64
		 ",\"status_errors\":%" PRIu64 ",\"late_1ms\":%" PRIu64 ",\"reconnects\":%" PRIu64
		 ",\"backlog_full\":%" PRIu64 ",\"max_backlog\":%" PRIu64
		 ",\"achieved_rps\":%.1f,\"mean_us\":%.2f,\"p50_us\":%.2f,\"p90_us\":%.2f"
		 ",\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f}\n",
		 g->rate, elapsed_s, g->nconns, g->idle_open, g->npaths, g->scheduled, g->sent,
		 g->completed, g->nlat, g->errors, g->status_errors, g->late, g->reconnects,
		 g->backlog_full, g->max_backlog, (double)g->completed / elapsed_s,
		 g->nlat ? g->lat_sum_ns / (double)g->nlat / 1000.0 : 0.0, pct_us(g, 0.50),
		 pct_us(g, 0.90), pct_us(g, 0.99), pct_us(g, 0.999),
		 g->nlat ? g->lat_ns[g->nlat - 1] / 1000.0 : 0.0);
	if (!out) {
		fputs(text, stdout);
		return 0;
	}
	return bench_write_file(out, text);
}

static int run(struct lg *g)
{
	uint64_t end_ns, drain_end_ns, next_due, now;
	uint64_t total = (uint64_t)(g->duration_s * (double)g->rate);

	g->start_ns = bench_now_ns();
	g->warm_end_ns = g->start_ns + (uint64_t)(g->warmup_s * 1e9);
	end_ns = g->start_ns + (uint64_t)(g->duration_s * 1e9);
	drain_end_ns = end_ns + LG_DRAIN_NS;
	for (;;) {
		struct epoll_event evs[64];
		struct timespec ts = {0, 0};
		int n;

		now = bench_now_ns();
		/* Every request due by now, spaced exactly 1/rate apart from the start. */
		while (g->scheduled < total &&
		       (next_due = g->start_ns + g->scheduled * 1000000000ull / g->rate) <= now) {
			g->scheduled++;
			dispatch(g, next_due, now);
		}
		if (g->scheduled >= total && g->nfree == g->nconns && !g->backlog_len)
			break;
		if (now >= drain_end_ns)
			break;
		if (g->scheduled < total) {
			/* Sleep only when the next send is far enough away to wake up in time. */
			next_due = g->start_ns + g->scheduled * 1000000000ull / g->rate;
			if (next_due > now + g->spin_ns)
				ts.tv_nsec = (long)(next_due - now - g->spin_ns);
		} else {
			ts.tv_nsec = 1000000;
		}
		n = epoll_pwait2(g->epfd, evs, 64, &ts, NULL);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++)
			if (on_readable(g, evs[i].data.u32) != 0)
				return -EIO;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen -p PORT -r RATE -d SECONDS [-c CONNS] [-u PATH] "
			"[-n NPATHS] [-i IDLE] [-w WARMUP_S] [-s SPIN_US] [-o FILE]\n");
}

int main(int argc, char **argv)
{
	struct lg g = {.nconns = 32,
		       .path = "/index.html",
		       .warmup_s = 0.5,
		       .spin_ns = LG_SPIN_NS_DEFAULT};
	const char *out = NULL;
	uint64_t v;
	int *idle_fds = NULL;
	int opt, err;
	double elapsed;

	while ((opt = getopt(argc, argv, "p:r:d:c:u:n:i:w:o:s:")) != -1) {
		switch (opt) {
		case 'p':
			if (bench_parse_u64(optarg, 1, 65535, &v))
				goto out_usage;
			g.port = (uint16_t)v;
			break;
		case 'r':
			if (bench_parse_u64(optarg, 1, 10000000, &v))
				goto out_usage;
			g.rate = v;
			break;
		case 'd':
			g.duration_s = strtod(optarg, NULL);
			break;
		case 'w':
			g.warmup_s = strtod(optarg, NULL);
			break;
		case 'c':
			if (bench_parse_u64(optarg, 1, LG_CONNS_MAX, &v))
				goto out_usage;
			g.nconns = (unsigned)v;
			break;
		case 'u':
			g.path = optarg;
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1, 100000000, &v))
				goto out_usage;
			g.npaths = (unsigned)v;
			break;
		case 'i':
			if (bench_parse_u64(optarg, 0, LG_IDLE_MAX, &v))
				goto out_usage;
			g.nidle = (unsigned)v;
			break;
		case 'o':
			out = optarg;
			break;
		case 's':
			if (bench_parse_u64(optarg, 0, 1000000, &v))
				goto out_usage;
			g.spin_ns = v * 1000;
			break;
		default:
			goto out_usage;
		}
	}
	if (!g.port || !g.rate || g.duration_s <= 0 || g.duration_s > 3600 || g.warmup_s < 0)
		goto out_usage;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	g.conns = calloc(g.nconns, sizeof(*g.conns));
	g.free_stack = calloc(g.nconns, sizeof(*g.free_stack));
	g.backlog_cap = (size_t)g.rate * 10 + 1024;
	g.backlog = calloc(g.backlog_cap, sizeof(*g.backlog));
	g.lat_cap = (size_t)((double)g.rate * g.duration_s) + 1024;
	g.lat_ns = calloc(g.lat_cap, sizeof(*g.lat_ns));
	if (g.epfd < 0 || !g.conns || !g.free_stack || !g.backlog || !g.lat_ns) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	err = open_idle(&g, &idle_fds);
	if (err) {
		fprintf(stderr,
			"loadgen: opening idle connection %" PRIu64 " to 127.0.0.1:%u: %s\n",
			g.idle_open + 1, g.port, strerror(-err));
		return 1;
	}
	for (unsigned i = 0; i < g.nconns; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

		g.conns[i].fd = connect_one(g.port);
		if (g.conns[i].fd < 0) {
			fprintf(stderr, "loadgen: cannot connect to 127.0.0.1:%u: %s\n", g.port,
				strerror(-g.conns[i].fd));
			return 1;
		}
		if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.conns[i].fd, &ev) != 0)
			return 1;
		g.free_stack[g.nfree++] = g.nconns - 1 - i;
	}
	err = run(&g);
	elapsed = (double)(bench_now_ns() - g.start_ns) / 1e9;
	if (elapsed > g.duration_s)
		elapsed = g.duration_s; /* the rate is over the scheduled window */
	if (err)
		fprintf(stderr, "loadgen: %s\n", strerror(-err));
	if (report(&g, out, elapsed) != 0) {
		fprintf(stderr, "loadgen: cannot write %s\n", out);
		return 1;
	}
	return err ? 1 : 0;

out_usage:
	usage();
	return 2;
}
