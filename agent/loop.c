// SPDX-License-Identifier: Apache-2.0
/*
 * The event loop and the demultiplexer of kernel events. The ring buffer is
 * drained on its wake-ups and on every tick; work that is not per event
 * (expiry, clocks, flushes, the stats line, the metrics export) runs once a
 * second or once an export period.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/common/clock.h"
#include "agent/common/log.h"
#include "agent/conn/conn.h"
#include "agent/export/jsonl.h"
#include "agent/graph/graph.h"
#include "agent/health.h"
#include "agent/identity/identity.h"
#include "agent/identity/k8s.h"
#include "agent/identity/peers.h"
#include "agent/loop.h"
#include "agent/serve/httpd.h"
#include "agent/trace/dnsspans.h"

/*
 * How often the ring buffer is drained without a wake-up. Each drain is a
 * burst of work on a CPU an application may want (the agent's added p99 for
 * nginx at 27k req/s, ~1.3 ms); a 2 ms tick halved it but each wake-up costs
 * ~35 us in this VM (9 % more CPU, replay A/B), and draining in slices with
 * yields in between cost spans at saturation (docs/performance.md).
 */
#define TICK_MS		      10
#define LOCAL_ADDRS_REFRESH_S 30
/* The stats JSON's limit: far above what it holds (a few KiB). */
#define STATS_JSON_MAX (1u << 20)

void loop_on_event(void *ctx, const void *data, size_t size)
{
	struct agent *a = ctx;
	const struct mt_event_head *head = data;

	a->events++;
	if (size < sizeof(*head)) {
		a->bad_events++;
		return;
	}
	if (head->kind == MT_EV_DATA) {
		const struct mt_data_event *ev = data;

		if (size < sizeof(*ev) || ev->captured > size - sizeof(*ev) ||
		    ev->captured > ev->bytes) {
			a->bad_events++;
			return;
		}
		if (!(ev->flags &
		      MT_DATA_F_TLS)) /* TLS plaintext: its ciphertext counts the wire */
			graph_on_data(a->graph, ev);
		conn_table_on_data(a->conns, ev);
	} else if (head->kind == MT_EV_CONN && size >= sizeof(struct mt_conn_event)) {
		conn_table_on_conn(a->conns, data);
		graph_on_conn(a->graph, data);
	} else if (head->kind == MT_EV_DNS && size >= sizeof(struct mt_data_event)) {
		const struct mt_data_event *ev = data;

		a->dns_events++;
		if (ev->captured > size - sizeof(*ev)) {
			a->bad_events++;
			return;
		}
		if (ev->captured) /* sendmmsg, recvmmsg: counted in the kernel, nothing to read */
			peers_on_dns(a->peers, ev->data, ev->captured, head->ts_ns);
		dnsspans_on_event(a->dns_spans, ev);
	} else if (head->kind == MT_EV_PROC && size >= sizeof(struct mt_proc_event)) {
		const struct mt_proc_event *ev = data;

		a->proc_events++;
		span_builder_on_process_gone(a->spans, ev->pid); /* exit, or another program */
		if (ev->op == MT_PROC_EXEC && size >= sizeof(struct mt_exec_event)) {
			identity_on_exec_event(a->identity, data, head->ts_ns);
		} else if (ev->op == MT_PROC_EXEC) { /* a recording made before exec events grew */
			identity_on_exec(a->identity, ev->pid);
		} else if (ev->op == MT_PROC_EXIT) {
			identity_on_exit(a->identity, ev->pid, head->ts_ns);
			graph_on_exit(a->graph, ev->pid);
			peers_forget_pid(a->peers, ev->pid);
		}
	} else if (head->kind == MT_EV_XCTX && size >= sizeof(struct mt_xctx_event)) {
		if (a->spans)
			span_builder_on_xctx(a->spans, data);
	} else {
		a->bad_events++;
	}
}

void loop_export_metrics(struct agent *a)
{
	struct timespec ts;
	uint8_t *pb;
	size_t len;

	if (!a->otlp || !a->otlp_cfg.metrics_url[0])
		return;
	health_collect(a);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (metrics_encode_otlp(a->metrics, a->graph, &a->health,
				(uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, &pb,
				&len) != 0) {
		mt_warn("could not encode the metrics (out of memory)");
		return;
	}
	otlp_exporter_send_metrics(a->otlp, pb, len);
	free(pb);
}

/* One drain of the rings, timed: how long the applications' CPU is taken at a time. */
static void drain(struct agent *a)
{
	uint64_t t0 = mt_now_mono_ns(), ns;

	capture_drain(a->capture);
	ns = mt_now_mono_ns() - t0;
	a->drains++;
	a->drain_ns_total += ns;
	if (ns > a->drain_ns_max)
		a->drain_ns_max = ns;
	a->drains_over_1ms += ns > 1000000;
	a->drains_over_5ms += ns > 5000000;
}

int loop_setup(struct agent *a)
{
	struct itimerspec its = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->sigfd < 0 || a->timerfd < 0 || a->epfd < 0)
		return -errno;
	if (timerfd_settime(a->timerfd, 0, &its, NULL) != 0)
		return -errno;
	ev.data.fd = a->sigfd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->sigfd, &ev) != 0)
		return -errno;
	ev.data.fd = a->timerfd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->timerfd, &ev) != 0)
		return -errno;
	ev.data.fd = capture_fd(a->capture);
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0)
		return -errno;
	if (a->otlp) {
		ev.data.fd = otlp_exporter_fd(a->otlp);
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0)
			return -errno;
	}
	if (a->httpd) {
		ev.data.fd = httpd_fd(a->httpd);
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0)
			return -errno;
	}
	return 0;
}

/* Work done every second: clock, idle connections, buffered output, stats line. */
static void on_second(struct agent *a, uint64_t now, uint64_t *last_stats)
{
	span_builder_set_clock(a->spans, mt_clock_offset_ns());
	conn_table_expire(a->conns, now);
	span_builder_expire(a->spans, now);
	graph_set_clock(a->graph, mt_clock_offset_ns());
	graph_tick(a->graph, now);
	peers_expire(a->peers, now);
	dnsspans_expire(a->dns_spans, now);
	identity_expire(a->identity, now);
	if (now / 1000000000ull % LOCAL_ADDRS_REFRESH_S == 0)
		peers_refresh_local_addrs(a->peers);
	if (a->httpd) { /* the agent's own listener names itself (it never traces itself) */
		static const uint8_t any[16];

		httpd_expire(a->httpd, now / 1000000ull); /* silent clients send no event */

		peers_learn_listener(a->peers, any, httpd_port(a->httpd), (uint32_t)getpid(),
				     "meshtrace", now);
	}
	if (a->jsonl)
		jsonl_exporter_flush(a->jsonl);
	if (a->opts.stats_interval_s &&
	    now - *last_stats >= (uint64_t)a->opts.stats_interval_s * 1000000000ull) {
		loop_print_stats(a, NULL);
		*last_stats = now;
	}
}

int loop_run(struct agent *a)
{
	uint64_t last_second = mt_now_mono_ns(), last_stats = last_second;

	for (;;) {
		struct epoll_event evs[8];
		int timeout = -1;
		int n;

		if (a->otlp)
			timeout = otlp_exporter_timeout_ms(a->otlp);
		n = epoll_wait(a->epfd, evs, 8, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == a->sigfd) {
				struct signalfd_siginfo si;

				if (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
					mt_info("signal %u: flushing and exiting", si.ssi_signo);
					return 0;
				}
			} else if (fd == a->timerfd) {
				uint64_t ticks;

				if (read(a->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
					return -errno;
				drain(a);
				if (a->k8s) /* the runtime's answers: off the hot path, each tick */
					k8s_poll(a->k8s, mt_now_mono_ns());
				if (capture_replay_done(a->capture)) {
					mt_info("replay: finished");
					return 0;
				}
			} else if (fd == capture_fd(a->capture)) {
				drain(a);
			} else if (a->httpd && fd == httpd_fd(a->httpd)) {
				httpd_poll(a->httpd);
			}
		}
		if (a->otlp)
			otlp_exporter_poll(a->otlp);
		if (mt_now_mono_ns() - last_second >= 1000000000ull) {
			last_second = mt_now_mono_ns();
			on_second(a, last_second, &last_stats);
		}
		if (a->otlp && mt_now_mono_ns() / 1000000 >= a->next_metrics_ms) {
			loop_export_metrics(a);
			a->next_metrics_ms = mt_now_mono_ns() / 1000000 + a->metric_interval_ms;
		}
	}
}

void loop_print_stats(struct agent *a, const char *what)
{
	struct mt_buf b;

	mt_buf_init(&b, STATS_JSON_MAX);
	if (health_write_json(a, &b) == 0)
		fprintf(stderr, "meshtrace: %s%sstats %s\n", what ? what : "", what ? " " : "",
			b.data);
	else
		mt_warn("the stats JSON did not fit in %u bytes", STATS_JSON_MAX);
	mt_buf_free(&b);
}

void loop_close(struct agent *a)
{
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->timerfd >= 0)
		close(a->timerfd);
	a->epfd = a->sigfd = a->timerfd = -1;
}
