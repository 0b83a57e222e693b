// SPDX-License-Identifier: Apache-2.0
/*
 * meshtrace: the node agent. One event loop (epoll) over the ring buffer, a
 * timer, signals and the exporter's transfers; no threads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/serve/assets.h"
#include "agent/capture/capture.h"
#include "agent/conn/conn.h"
#include "agent/trace/dnsspans.h"
#include "agent/graph/graph.h"
#include "agent/serve/httpd.h"
#include "agent/identity/identity.h"
#include "agent/common/log.h"
#include "agent/common/privileges.h"
#include "agent/export/metrics.h"
#include "agent/identity/peers.h"
#include "agent/trace/spans.h"
#include "agent/serve/tracestore.h"
#include "agent/export/jsonl.h"
#include "agent/common/version.h"
#include "agent/export/otlp.h"

/*
 * How often the ring buffer is drained without a wake-up. Each drain is a
 * burst of work on a CPU an application may want (the agent's added p99 for
 * nginx at 27k req/s, ~1.3 ms); a 2 ms tick halved it but each wake-up costs
 * ~35 us in this VM (9 % more CPU, replay A/B), and draining in slices with
 * yields in between cost spans at saturation (docs/performance.md).
 */
#define TICK_MS		  10
#define SHUTDOWN_FLUSH_MS 5000
/* OTEL_METRIC_EXPORT_INTERVAL: the spec's default and the bounds we accept, ms. */
#define METRIC_INTERVAL_DEFAULT_MS 60000
#define METRIC_INTERVAL_MIN_MS	   100
#define METRIC_INTERVAL_MAX_MS	   86400000
#define LOCAL_ADDRS_REFRESH_S	   30

/*
 * How the agent competes for CPU with the applications it watches. Below
 * "normal" it takes (nearly) only the time they leave over: on a busy node it
 * falls behind and the kernel sheds data events, counted, instead of the
 * applications losing throughput or latency to the agent. Measured in
 * docs/performance.md: on a 2-core machine at half its capacity, "idle" kept
 * only a sixth of the spans, so it is a choice, not the default.
 */
enum cpu_priority {
	CPU_PRIORITY_NORMAL = 0, /* as started: competes with the applications (default) */
	CPU_PRIORITY_LOW,	 /* nice 19: a small share on a saturated node */
	CPU_PRIORITY_IDLE,	 /* SCHED_IDLE: only CPU time that would otherwise idle */
};

static const char *const cpu_priority_names[] = {"normal", "low", "idle"};

struct agent_opts {
	const char *jsonl_path;
	struct capture_opts capture;
	struct span_opts spans;
	uint32_t max_conns;
	unsigned stats_interval_s;
	const char *listen; /* NULL: HTTPD_DEFAULT_LISTEN; "off": no listener */
	enum cpu_priority priority;
	const char *record_path; /* --record */
	const char *replay_path; /* --replay */
};

struct agent {
	struct agent_opts opts;
	struct otlp_config otlp_cfg;
	struct capture *capture;
	struct conn_table *conns;
	struct identity *identity;
	struct span_builder *spans;
	struct otlp_exporter *otlp;
	struct jsonl_exporter *jsonl;
	struct httpd *httpd;
	struct tracestore *traces;  /* recent traces for the page; NULL without a listener */
	struct peers *peers;	    /* address -> who is there */
	struct dnsspans *dns_spans; /* DNS lookups -> client spans */
	struct graph *graph;	    /* who calls whom */
	struct metrics *metrics;    /* http.* series and the encoders */
	struct metrics_health health;
	uint64_t metric_interval_ms;
	uint64_t next_metrics_ms;
	uint64_t dns_events;
	uint64_t proc_events;
	uint64_t events;
	uint64_t bad_events;
	uint64_t mute_failed;
	bool attached; /* the kernel programs are attached: /healthz answers 200 only then */
	int epfd;
	int sigfd;
	int timerfd;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: meshtrace [OPTION]...\n"
		"Observe every TCP call on this node with eBPF, turn HTTP/1.x exchanges into\n"
		"spans, and export them over OTLP/HTTP. Needs root (or the capabilities BPF,\n"
		"PERFMON, SYS_PTRACE and DAC_READ_SEARCH).\n"
		"\n"
		"Options:\n"
		"  --jsonl PATH            also write each finished span as one JSON line to PATH\n"
		"                          ('-' for stdout)\n"
		"  --capture-bytes N       payload bytes copied per send/recv, 0..%u (default %u)\n"
		"  --capture-mode MODE     auto | sock | syscalls (default auto: sock tracepoints\n"
		"                          on Linux >= 6.3, syscall tracepoints elsewhere)\n"
		"  --record-query          keep url.query in spans (off by default: query strings\n"
		"                          may carry secrets)\n"
		"  --max-connections N     connections tracked at once (default %u)\n"
		"  --stats-interval SEC    print a counters line to stderr every SEC seconds\n"
		"  --cpu-priority P        normal (default) | low (nice 19) | idle (SCHED_IDLE):\n"
		"                          below normal the agent yields the CPU to applications\n"
		"                          and, when the node is busy, sheds data (counted)\n"
		"  --record FILE           also write every captured event, payload bytes\n"
		"                          included, to FILE (a debugging and benchmark aid;\n"
		"                          ~1.5 KB per HTTP request: it grows without a bound)\n"
		"  --replay FILE           run the pipeline on a recording instead of the kernel,\n"
		"                          at its recorded pace; exits at its end (no root "
		"needed)\n"
		"  --listen ADDR:PORT      the agent's HTTP listener (default %s; 'off' for "
		"none):\n"
		"                          /healthz, /api/stats, /metrics (Prometheus), "
		"/api/graph\n"
		"                          /api/traces, and the agent's page at /\n"
		"  -v, --verbose           more logging (libbpf and verifier messages)\n"
		"  -q, --quiet             only errors\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"\n"
		"Environment (OpenTelemetry standard):\n"
		"  OTEL_EXPORTER_OTLP_ENDPOINT         base URL; /v1/traces, /v1/metrics are "
		"appended\n"
		"  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  traces URL, used as is\n"
		"  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT metrics URL, used as is\n"
		"  OTEL_METRIC_EXPORT_INTERVAL         metrics export period, ms (default 60000)\n"
		"  OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS   k=v,k2=v2\n"
		"  OTEL_EXPORTER_OTLP_COMPRESSION      gzip (default) | none\n"
		"  OTEL_EXPORTER_OTLP_TIMEOUT          per-request timeout, ms (default 10000)\n"
		"  OTEL_EXPORTER_OTLP_PROTOCOL         http/protobuf (the only one supported)\n"
		"  OTEL_RESOURCE_ATTRIBUTES            k=v,... added to every resource\n"
		"  OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "
		"OTEL_BSP_MAX_QUEUE_SIZE\n"
		"No endpoint set: no OTLP export (use --jsonl to look at spans).\n",
		MT_CAPTURE_MAX, MT_CAPTURE_DEFAULT, CONN_MAX_DEFAULT, HTTPD_DEFAULT_LISTEN);
}

/* Parses a whole decimal number in [min, max]. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_JSONL = 256,
	OPT_CAPTURE_BYTES,
	OPT_CAPTURE_MODE,
	OPT_RECORD_QUERY,
	OPT_MAX_CONNS,
	OPT_STATS_INTERVAL,
	OPT_LISTEN,
	OPT_CPU_PRIORITY,
	OPT_RECORD,
	OPT_REPLAY,
};

/* Returns 0, 1 when the program should exit 0 (help, version), or -EINVAL. */
static int parse_args(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
		{"jsonl", required_argument, NULL, OPT_JSONL},
		{"capture-bytes", required_argument, NULL, OPT_CAPTURE_BYTES},
		{"capture-mode", required_argument, NULL, OPT_CAPTURE_MODE},
		{"record-query", no_argument, NULL, OPT_RECORD_QUERY},
		{"max-connections", required_argument, NULL, OPT_MAX_CONNS},
		{"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"cpu-priority", required_argument, NULL, OPT_CPU_PRIORITY},
		{"record", required_argument, NULL, OPT_RECORD},
		{"replay", required_argument, NULL, OPT_REPLAY},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->capture.capture_bytes = MT_CAPTURE_DEFAULT;
	o->capture.mode = CAPTURE_AUTO;
	o->max_conns = CONN_MAX_DEFAULT;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vqhV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSONL:
			o->jsonl_path = optarg;
			break;
		case OPT_CAPTURE_BYTES:
			if (parse_uint(optarg, 0, MT_CAPTURE_MAX, &v)) {
				mt_err("--capture-bytes '%s': give a number from 0 to %u", optarg,
				       MT_CAPTURE_MAX);
				return -EINVAL;
			}
			o->capture.capture_bytes = (uint32_t)v;
			break;
		case OPT_CAPTURE_MODE:
			if (strcmp(optarg, "auto") == 0)
				o->capture.mode = CAPTURE_AUTO;
			else if (strcmp(optarg, "sock") == 0)
				o->capture.mode = CAPTURE_SOCK;
			else if (strcmp(optarg, "syscalls") == 0)
				o->capture.mode = CAPTURE_SYSCALLS;
			else {
				mt_err("--capture-mode '%s': use auto, sock or syscalls", optarg);
				return -EINVAL;
			}
			break;
		case OPT_RECORD_QUERY:
			o->spans.record_query = true;
			break;
		case OPT_MAX_CONNS:
			if (parse_uint(optarg, 16, 1u << 22, &v)) {
				mt_err("--max-connections '%s': give a number from 16 to %u",
				       optarg, 1u << 22);
				return -EINVAL;
			}
			o->max_conns = (uint32_t)v;
			break;
		case OPT_STATS_INTERVAL:
			if (parse_uint(optarg, 0, 86400, &v)) {
				mt_err("--stats-interval '%s': give seconds from 0 to 86400",
				       optarg);
				return -EINVAL;
			}
			o->stats_interval_s = (unsigned)v;
			break;
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_CPU_PRIORITY:
			for (v = 0; v < 3; v++)
				if (strcmp(optarg, cpu_priority_names[v]) == 0)
					break;
			if (v == 3) {
				mt_err("--cpu-priority '%s': use idle, low or normal", optarg);
				return -EINVAL;
			}
			o->priority = (enum cpu_priority)v;
			break;
		case OPT_RECORD:
			o->record_path = optarg;
			break;
		case OPT_REPLAY:
			o->replay_path = optarg;
			break;
		case 'v':
			mt_log_level = MT_LOG_DEBUG;
			break;
		case 'q':
			mt_log_level = MT_LOG_ERROR;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("meshtrace %s\n", MESHTRACE_VERSION);
			return 1;
		case ':':
			mt_err("option '%s' needs a value; see --help", argv[optind - 1]);
			return -EINVAL;
		default:
			mt_err("unknown option '%s'; see --help", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		mt_err("unexpected argument '%s'; see --help", argv[optind]);
		return -EINVAL;
	}
	if (o->record_path && o->replay_path) {
		mt_err("--record and --replay: use one or the other");
		return -EINVAL;
	}
	return 0;
}

/* Lowers the agent's CPU priority as asked; a refusal is logged, not fatal. */
static void apply_cpu_priority(enum cpu_priority p)
{
	struct sched_param sp = {.sched_priority = 0};

	if (p == CPU_PRIORITY_IDLE && sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
		mt_warn("--cpu-priority idle: %s; running at normal priority", strerror(errno));
	if (p == CPU_PRIORITY_LOW && setpriority(PRIO_PROCESS, 0, 19) != 0)
		mt_warn("--cpu-priority low: %s; running at normal priority", strerror(errno));
}

static uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, read as tightly as two calls allow. */
static int64_t clock_offset_ns(void)
{
	struct timespec m1, r, m2;
	int64_t mono;

	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	mono = ((int64_t)m1.tv_sec * 1000000000 + m1.tv_nsec + (int64_t)m2.tv_sec * 1000000000 +
		m2.tv_nsec) /
	       2;
	return (int64_t)r.tv_sec * 1000000000 + r.tv_nsec - mono;
}

/* The agent's own CPU time and resident memory, from /proc/self. */
static void add_process_health(struct metrics_health *h)
{
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long utime = 0, stime = 0;
	long rss_pages = 0;
	char buf[1024];
	const char *p;
	FILE *f;

	f = fopen("/proc/self/stat", "r");
	if (f) {
		/* Fields after the ")" that ends comm: state is field 3, utime 14, stime 15. */
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			   &stime) != 2)
			utime = stime = 0;
		fclose(f);
	}
	f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%*d %ld", &rss_pages) != 1)
			rss_pages = 0;
		fclose(f);
	}
	if (ticks > 0) {
		metrics_health_add(h, MH_PROCESS_CPU, "cpu.mode", "user", (double)utime / ticks);
		metrics_health_add(h, MH_PROCESS_CPU, "cpu.mode", "system", (double)stime / ticks);
	}
	metrics_health_add(h, MH_PROCESS_MEMORY, NULL, NULL, (double)rss_pages * page);
}

static void on_span(void *ctx, const struct mt_span *s)
{
	struct agent *a = ctx;

	if (a->otlp)
		otlp_exporter_add_span(a->otlp, s);
	if (a->jsonl)
		jsonl_exporter_add_span(a->jsonl, s);
	if (a->traces)
		tracestore_add(a->traces, s);
	graph_on_span(a->graph, s);
	metrics_on_span(a->metrics, s);
}

static void on_exchange(void *ctx, const struct conn_info *ci, const struct mt_exchange *x)
{
	struct agent *a = ctx;

	span_builder_on_exchange(a->spans, ci, x);
}

static void on_io(void *ctx, uint32_t tid, uint32_t pid, uint64_t sock, bool connect)
{
	struct agent *a = ctx;

	span_builder_on_io(a->spans, tid, pid, sock, connect);
}

static void on_mute(void *ctx, uint64_t sock)
{
	struct agent *a = ctx;

	if (a->capture && capture_mute(a->capture, sock) != 0)
		a->mute_failed++;
}

static void on_event(void *ctx, const void *data, size_t size)
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
		if (ev->op == MT_PROC_EXEC) {
			identity_on_exec(a->identity, ev->pid);
		} else if (ev->op == MT_PROC_EXIT) {
			identity_on_exit(a->identity, ev->pid, head->ts_ns);
			graph_on_exit(a->graph, ev->pid);
			peers_forget_pid(a->peers, ev->pid);
		}
	} else {
		a->bad_events++;
	}
}

/* The graph stage's counters, appended to the stats object (which it closes). */
static void append_graph_stats(struct agent *a, char *buf, size_t len, size_t *off)
{
	struct graph_stats gs;
	struct peers_stats ps;
	struct metrics_stats ms;
	struct identity_stats is;
	struct dnsspans_stats ds;
	uint64_t ext[MT_XSTAT__MAX];
	struct otlp_stats os = {0};

	if (*off >= len)
		return;
	dnsspans_stats(a->dns_spans, &ds);
	if (a->otlp)
		otlp_exporter_stats(a->otlp, &os);
	graph_stats(a->graph, &gs);
	peers_stats(a->peers, &ps);
	metrics_stats(a->metrics, &ms);
	identity_stats(a->identity, &is);
	capture_read_ext_counters(a->capture, ext);
	*off += (size_t)snprintf(
		buf + *off, len - *off,
		",\"graph\":{\"spans\":%" PRIu64 ",\"nodes\":%" PRIu64 ",\"edges\":%" PRIu64
		",\"sockets\":%" PRIu64 ",\"nodes_full\":%" PRIu64 ",\"edges_full\":%" PRIu64
		",\"sockets_full\":%" PRIu64 ",\"role_unknown\":%" PRIu64
		",\"unattributed\":%" PRIu64 ",\"span_cost_ns\":%" PRIu64
		"},\"peers\":{\"dns_kernel_events\":%" PRIu64 ",\"dns_events\":%" PRIu64
		",\"dns_malformed\":%" PRIu64 ",\"dns_names\":%" PRIu64 ",\"dns_evicted\":%" PRIu64
		",\"listeners\":%" PRIu64 ",\"local_addrs\":%" PRIu64
		"},\"dns_spans\":{\"queries\":%" PRIu64 ",\"responses\":%" PRIu64
		",\"spans\":%" PRIu64 ",\"paired_by_socket\":%" PRIu64 ",\"unanswered\":%" PRIu64
		",\"evicted\":%" PRIu64 ",\"retransmits\":%" PRIu64 ",\"id_reused\":%" PRIu64
		",\"orphan_responses\":%" PRIu64 ",\"malformed\":%" PRIu64
		",\"no_payload\":%" PRIu64 ",\"server_side\":%" PRIu64 ",\"pending\":%" PRIu64
		"},\"identity\":{\"proc_kernel_events\":%" PRIu64 ",\"proc_events\":%" PRIu64
		",\"entries\":%" PRIu64 ",\"exits\":%" PRIu64 ",\"execs\":%" PRIu64
		",\"resolved\":%" PRIu64 "},\"metrics\":{\"series\":%" PRIu64
		",\"series_full\":%" PRIu64 ",\"otlp_exports\":%" PRIu64 ",\"scrapes\":%" PRIu64
		",\"metrics_requests_sent\":%" PRIu64 ",\"metrics_requests_dropped\":%" PRIu64 "}}",
		gs.spans, gs.nodes, gs.edges, gs.sockets, gs.nodes_full, gs.edges_full,
		gs.sockets_full, gs.role_unknown, gs.unattributed,
		gs.update_ns_count ? gs.update_ns_sum / gs.update_ns_count : 0,
		ext[MT_XSTAT_DNS_EVENTS], a->dns_events, ps.dns_malformed, ps.dns_names,
		ps.dns_evicted, ps.listeners, ps.local_addrs, ds.queries, ds.responses, ds.spans,
		ds.paired_by_socket, ds.unanswered, ds.evicted, ds.retransmits, ds.id_reused,
		ds.orphan_responses, ds.malformed, ds.no_payload, ds.server_side, ds.pending,
		ext[MT_XSTAT_PROC_EVENTS], a->proc_events, is.entries, is.exits, is.execs,
		is.resolved, ms.series, ms.series_full, ms.otlp_exports, ms.scrapes,
		os.metrics_requests_sent, os.metrics_requests_dropped);
}

/* Writes the agent's counters as one JSON object. */
static void format_stats(struct agent *a, char *buf, size_t len)
{
	struct capture_counters kc;
	struct conn_stats cs;
	struct span_stats ss;
	struct otlp_stats os = {0};
	size_t off = 0;

	capture_read_counters(a->capture, &kc);
	conn_table_stats(a->conns, &cs);
	span_builder_stats(a->spans, &ss);
	if (a->otlp)
		otlp_exporter_stats(a->otlp, &os);

#define APPEND(...)                                                                 \
	do {                                                                        \
		if (off < len)                                                      \
			off += (size_t)snprintf(buf + off, len - off, __VA_ARGS__); \
	} while (0)

	APPEND("{\"capture_mode\":\"%s\",\"cpu_priority\":\"%s\",\"kernel\":{\"data_events\":"
	       "%" PRIu64 ",\"conn_events\":%" PRIu64 ",\"wakeups\":%" PRIu64
	       ",\"bytes_captured\":%" PRIu64 ",\"drops\":{",
	       capture_mode_name(a->capture), cpu_priority_names[a->opts.priority],
	       kc.stats[MT_STAT_DATA_EVENTS], kc.stats[MT_STAT_CONN_EVENTS],
	       kc.stats[MT_STAT_WAKEUPS], kc.stats[MT_STAT_BYTES_CAPTURED]);
	for (int i = 0; i < MT_DROP__MAX; i++)
		APPEND("%s\"%s\":%" PRIu64, i ? "," : "", capture_drop_name(i), kc.drops[i]);
	/* Per CPU too, for the reasons that happened at all. */
	APPEND("},\"drops_per_cpu\":{");
	for (int i = 0, first = 1; i < MT_DROP__MAX; i++) {
		if (!kc.drops[i])
			continue;
		APPEND("%s\"%s\":[", first ? "" : ",", capture_drop_name(i));
		for (int cpu = 0; cpu < kc.ncpus; cpu++)
			APPEND("%s%" PRIu64, cpu ? "," : "", kc.drops_cpu[i][cpu]);
		APPEND("]");
		first = 0;
	}
	APPEND("}},\"user\":{\"events\":%" PRIu64 ",\"bad_events\":%" PRIu64 ",\"spans\":%" PRIu64
	       ",\"spans_server\":%" PRIu64 ",\"spans_client\":%" PRIu64
	       ",\"spans_joined_traceparent\":%" PRIu64 ",\"role_unknown\":%" PRIu64,
	       a->events, a->bad_events, ss.spans, ss.server, ss.client, ss.joined_traceparent,
	       ss.role_unknown);
	APPEND(",\"conns_active\":%" PRIu64 ",\"conns_opened\":%" PRIu64
	       ",\"conns_closed\":%" PRIu64 ",\"conns_evicted_full\":%" PRIu64
	       ",\"conns_evicted_idle\":%" PRIu64 ",\"connect_failed\":%" PRIu64
	       ",\"retransmits\":%" PRIu64 ",\"lost_restarts\":%" PRIu64
	       ",\"role_unknown_bytes\":%" PRIu64 ",\"conns_not_parsed\":%" PRIu64
	       ",\"conns_muted\":%" PRIu64 ",\"parser_released\":%" PRIu64
	       ",\"heap_trims\":%" PRIu64,
	       cs.active, cs.opened, cs.closed, cs.evicted_full, cs.evicted_idle, cs.connect_failed,
	       cs.retransmits, cs.lost_restarts, cs.role_unknown_bytes, cs.not_parsed, cs.muted,
	       cs.parser_released, cs.trims);
	APPEND(",\"link\":{\"linked_in_process\":%" PRIu64 ",\"linked_peer\":%" PRIu64
	       ",\"linked_traceparent\":%" PRIu64 ",\"skipped_instrumented\":%" PRIu64
	       ",\"requests_held\":%" PRIu64 ",\"unlinked\":{",
	       ss.link.linked_in_process, ss.link.linked_peer, ss.link.linked_traceparent,
	       ss.link.skipped_instrumented, ss.link.requests);
	for (int i = 0; i < LINK__MAX; i++)
		APPEND("%s\"%s\":%" PRIu64, i ? "," : "", linker_unlinked_name(i),
		       ss.link.unlinked[i]);
	APPEND("}}");
	APPEND(",\"parser_alloc_failed\":%" PRIu64 ",\"parser_budget_full\":%" PRIu64
	       ",\"parser_bytes\":%" PRIu64 ",\"l7\":{",
	       cs.parser_alloc_failed, cs.parser_budget_full, cs.parser_bytes);
	for (int p = 1, first = 1; p < MT_PROTO__MAX; p++) {
		const struct l7_stats *l = &cs.l7[p];

		if (p != MT_PROTO_HTTP1 && !l->requests && !l->responses && !l->garbage_bytes)
			continue;
		APPEND("%s\"%s\":{\"requests\":%" PRIu64 ",\"responses\":%" PRIu64
		       ",\"exchanges\":%" PRIu64 ",\"garbage_bytes\":%" PRIu64
		       ",\"resyncs\":%" PRIu64 ",\"pipeline_drops\":%" PRIu64
		       ",\"orphan_responses\":%" PRIu64 ",\"state_lost\":%" PRIu64 "}",
		       first ? "" : ",", l7_protocol_name((uint8_t)p), l->requests, l->responses,
		       l->exchanges, l->garbage_bytes, l->resyncs, l->pipeline_drops,
		       l->orphan_responses, l->state_lost);
		first = 0;
	}
	APPEND("}}");
	APPEND(",\"otlp\":{\"enabled\":%s,\"spans_received\":%" PRIu64
	       ",\"spans_exported\":%" PRIu64 ",\"spans_dropped_queue_full\":%" PRIu64
	       ",\"spans_dropped_rejected\":%" PRIu64 ",\"spans_dropped_shutdown\":%" PRIu64
	       ",\"batches_sent\":%" PRIu64 ",\"batches_failed\":%" PRIu64 ",\"retries\":%" PRIu64
	       ",\"bytes_sent\":%" PRIu64 ",\"queue_spans\":%" PRIu64 "}}",
	       a->otlp ? "true" : "false", os.spans_received, os.spans_exported,
	       os.spans_dropped_queue_full, os.spans_dropped_rejected, os.spans_dropped_shutdown,
	       os.batches_sent, os.batches_failed, os.retries, os.bytes_sent,
	       (uint64_t)os.queue_spans);
	off = off && off <= len ? off - 1 : off; /* reopen the object for the graph's part */
	append_graph_stats(a, buf, len, &off);
#undef APPEND
}

/* Gathers the agent's health into a->health for the metrics encoders. */
static void collect_health(struct agent *a)
{
	struct metrics_health *h = &a->health;
	struct capture_counters kc;
	struct conn_stats cs;
	struct span_stats ss;
	struct otlp_stats os = {0};
	struct graph_stats gs;
	struct peers_stats ps;
	struct metrics_stats ms;
	struct identity_stats is;
	struct dnsspans_stats ds;
	uint64_t ext[MT_XSTAT__MAX];

	capture_read_counters(a->capture, &kc);
	capture_read_ext_counters(a->capture, ext);
	conn_table_stats(a->conns, &cs);
	span_builder_stats(a->spans, &ss);
	if (a->otlp)
		otlp_exporter_stats(a->otlp, &os);
	graph_stats(a->graph, &gs);
	peers_stats(a->peers, &ps);
	metrics_stats(a->metrics, &ms);
	identity_stats(a->identity, &is);
	dnsspans_stats(a->dns_spans, &ds);

	metrics_health_reset(h);
	metrics_health_add(h, MH_KERNEL_EVENTS, "kind", "data", kc.stats[MT_STAT_DATA_EVENTS]);
	metrics_health_add(h, MH_KERNEL_EVENTS, "kind", "conn", kc.stats[MT_STAT_CONN_EVENTS]);
	metrics_health_add(h, MH_KERNEL_EVENTS, "kind", "dns", ext[MT_XSTAT_DNS_EVENTS]);
	metrics_health_add(h, MH_KERNEL_EVENTS, "kind", "proc", ext[MT_XSTAT_PROC_EVENTS]);
	for (int i = 0; i < MT_DROP__MAX; i++)
		metrics_health_add(h, MH_KERNEL_DROPS, "reason", capture_drop_name(i), kc.drops[i]);
	metrics_health_add(h, MH_KERNEL_WAKEUPS, NULL, NULL, kc.stats[MT_STAT_WAKEUPS]);
	metrics_health_add(h, MH_KERNEL_CAPTURED, NULL, NULL, kc.stats[MT_STAT_BYTES_CAPTURED]);
	metrics_health_add(h, MH_EVENTS, NULL, NULL, a->events);
	metrics_health_add(h, MH_DROPS, "stage", "event_malformed", a->bad_events);
	metrics_health_add(h, MH_DROPS, "stage", "conn_evicted_full", cs.evicted_full);
	metrics_health_add(h, MH_DROPS, "stage", "span_role_unknown", ss.role_unknown);
	metrics_health_add(h, MH_DROPS, "stage", "parser_alloc_failed", cs.parser_alloc_failed);
	metrics_health_add(h, MH_DROPS, "stage", "parser_budget_full", cs.parser_budget_full);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "parser_bytes", cs.parser_bytes);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "parser_bytes", CONN_PARSER_MEMORY_MAX);
	metrics_health_add(h, MH_DROPS, "stage", "otlp_queue_full", os.spans_dropped_queue_full);
	metrics_health_add(h, MH_DROPS, "stage", "otlp_rejected", os.spans_dropped_rejected);
	metrics_health_add(h, MH_DROPS, "stage", "otlp_shutdown", os.spans_dropped_shutdown);
	metrics_health_add(h, MH_DROPS, "stage", "otlp_encode", os.spans_dropped_error);
	metrics_health_add(h, MH_DROPS, "stage", "metrics_requests", os.metrics_requests_dropped);
	metrics_health_add(h, MH_DROPS, "stage", "graph_nodes_full", gs.nodes_full);
	metrics_health_add(h, MH_DROPS, "stage", "graph_edges_full", gs.edges_full);
	metrics_health_add(h, MH_DROPS, "stage", "graph_sockets_full", gs.sockets_full);
	metrics_health_add(h, MH_DROPS, "stage", "graph_role_unknown", gs.role_unknown);
	metrics_health_add(h, MH_DROPS, "stage", "metric_series_full", ms.series_full);
	metrics_health_add(h, MH_DROPS, "stage", "dns_malformed", ps.dns_malformed);
	metrics_health_add(h, MH_DROPS, "stage", "dns_names_evicted", ps.dns_evicted);
	metrics_health_add(h, MH_DROPS, "stage", "dns_lookups_evicted", ds.evicted);
	metrics_health_add(h, MH_DROPS, "stage", "dns_orphan_responses", ds.orphan_responses);
	metrics_health_add(h, MH_DROPS, "stage", "listeners_evicted", ps.listeners_evicted);
	metrics_health_add(h, MH_DROPS, "stage", "identity_evicted", is.evicted);
	add_process_health(h);
	metrics_health_add(h, MH_LINKS, "result", "in_process", ss.link.linked_in_process);
	metrics_health_add(h, MH_LINKS, "result", "peer", ss.link.linked_peer);
	metrics_health_add(h, MH_LINKS, "result", "traceparent", ss.link.linked_traceparent);
	metrics_health_add(h, MH_LINKS, "result", "skipped_instrumented",
			   ss.link.skipped_instrumented);
	for (int i = 0; i < LINK__MAX; i++)
		metrics_health_add(h, MH_LINKS, "result", linker_unlinked_name(i),
				   ss.link.unlinked[i]);
	metrics_health_add(h, MH_SPANS, "kind", "server", ss.server);
	metrics_health_add(h, MH_SPANS, "kind", "client", ss.client);
	metrics_health_add(h, MH_SPANS_EXPORTED, NULL, NULL, os.spans_exported);
	metrics_health_add(h, MH_EXPORT_FAILURES, "signal", "traces", os.batches_failed);
	metrics_health_add(h, MH_EXPORT_FAILURES, "signal", "metrics", os.metrics_requests_dropped);
	metrics_health_add(h, MH_EXPORT_RETRIES, NULL, NULL, os.retries);
	metrics_health_add(h, MH_QUEUE_DEPTH, "queue", "otlp_spans", os.queue_spans);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "connections", cs.active);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "connections", a->opts.max_conns);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "graph_nodes", gs.nodes);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "graph_nodes", GRAPH_NODES_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "graph_edges", gs.edges);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "graph_edges", GRAPH_EDGES_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "graph_sockets", gs.sockets);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "graph_sockets", GRAPH_SOCKS_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "dns_names", ps.dns_entries);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "dns_names", PEERS_DNS_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "dns_lookups", ds.pending);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "dns_lookups", DNSSPANS_PENDING_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "listeners", ps.listeners);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "listeners", PEERS_LISTENERS_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "identities", is.entries);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "identities", IDENTITY_MAX);
	metrics_health_add(h, MH_TABLE_USAGE, "table", "metric_series", ms.series);
	metrics_health_add(h, MH_TABLE_CAPACITY, "table", "metric_series", METRICS_SERIES_MAX);
	metrics_health_add(h, MH_SPAN_UPDATE_NS, NULL, NULL,
			   gs.update_ns_count ? (double)gs.update_ns_sum / gs.update_ns_count : 0);
}

/* Encodes every metric and queues it for the collector. */
static void export_metrics(struct agent *a)
{
	struct timespec ts;
	uint8_t *pb;
	size_t len;

	if (!a->otlp || !a->otlp_cfg.metrics_url[0])
		return;
	collect_health(a);
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

static int serve_metrics(void *ctx, const char *path, const char *query,
			 struct httpd_response *resp)
{
	struct agent *a = ctx;

	(void)path;
	(void)query;
	collect_health(a);
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return metrics_write_prometheus(a->metrics, a->graph, &a->health, &resp->body);
}

static int serve_graph(void *ctx, const char *path, const char *query, struct httpd_response *resp)
{
	struct agent *a = ctx;

	(void)path;
	(void)query;
	resp->content_type = "application/json";
	return graph_write_json(a->graph, &resp->body, now_mono_ns());
}

/* The readiness probe: 200 while the kernel programs are attached, 503 otherwise (--replay). */
static int serve_healthz(void *ctx, const char *path, const char *query,
			 struct httpd_response *resp)
{
	const struct agent *a = ctx;

	(void)path;
	(void)query;
	if (!a->attached) {
		resp->status = 503;
		return mt_buf_puts(&resp->body, "not attached\n");
	}
	return mt_buf_puts(&resp->body, "ok\n");
}

static int serve_stats(void *ctx, const char *path, const char *query, struct httpd_response *resp)
{
	char buf[8192];

	(void)path;
	(void)query;
	format_stats(ctx, buf, sizeof(buf));
	resp->content_type = "application/json";
	return mt_buf_printf(&resp->body, "%s\n", buf);
}

static int start_httpd(struct agent *a, char *err, size_t errlen)
{
	const char *addr = a->opts.listen ? a->opts.listen : HTTPD_DEFAULT_LISTEN;

	if (strcmp(addr, "off") == 0)
		return 0;
	a->httpd = httpd__new(addr, err, errlen);
	if (!a->httpd)
		return -EINVAL;
	httpd_route(a->httpd, "/healthz", serve_healthz, a);
	httpd_route(a->httpd, "/api/stats", serve_stats, a);
	httpd_route(a->httpd, "/metrics", serve_metrics, a);
	httpd_route(a->httpd, "/api/graph", serve_graph, a);
	a->traces = tracestore__new();
	if (!a->traces) {
		snprintf(err, errlen, "out of memory for the trace store");
		return -ENOMEM;
	}
	httpd_route(a->httpd, "/api/traces", tracestore_serve_list, a->traces);
	httpd_route(a->httpd, "/api/traces/", tracestore_serve_trace, a->traces);
	httpd_route(a->httpd, "/", assets_serve, NULL);
	httpd_route(a->httpd, "/ui/", assets_serve, NULL);
	return 0;
}

static int setup_loop(struct agent *a)
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
	span_builder_set_clock(a->spans, clock_offset_ns());
	conn_table_expire(a->conns, now);
	span_builder_expire(a->spans, now);
	graph_set_clock(a->graph, clock_offset_ns());
	graph_tick(a->graph, now);
	peers_expire(a->peers, now);
	dnsspans_expire(a->dns_spans, now);
	identity_expire(a->identity, now);
	if (now / 1000000000ull % LOCAL_ADDRS_REFRESH_S == 0)
		peers_refresh_local_addrs(a->peers);
	if (a->httpd) { /* the agent's own listener names itself (it never traces itself) */
		static const uint8_t any[16];

		peers_learn_listener(a->peers, any, httpd_port(a->httpd), (uint32_t)getpid(),
				     "meshtrace", now);
	}
	if (a->jsonl)
		jsonl_exporter_flush(a->jsonl);
	if (a->opts.stats_interval_s &&
	    now - *last_stats >= (uint64_t)a->opts.stats_interval_s * 1000000000ull) {
		char buf[8192];

		format_stats(a, buf, sizeof(buf));
		fprintf(stderr, "meshtrace: stats %s\n", buf);
		*last_stats = now;
	}
}

static int run_loop(struct agent *a)
{
	uint64_t last_second = now_mono_ns(), last_stats = last_second;

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
				capture_drain(a->capture);
				if (capture_replay_done(a->capture)) {
					mt_info("replay: finished");
					return 0;
				}
			} else if (fd == capture_fd(a->capture)) {
				capture_drain(a->capture);
			} else if (a->httpd && fd == httpd_fd(a->httpd)) {
				httpd_poll(a->httpd);
			}
		}
		if (a->otlp)
			otlp_exporter_poll(a->otlp);
		if (now_mono_ns() - last_second >= 1000000000ull) {
			last_second = now_mono_ns();
			on_second(a, last_second, &last_stats);
		}
		if (a->otlp && now_mono_ns() / 1000000 >= a->next_metrics_ms) {
			export_metrics(a);
			a->next_metrics_ms = now_mono_ns() / 1000000 + a->metric_interval_ms;
		}
	}
}

static void agent_free(struct agent *a)
{
	capture__free(a->capture);
	conn_table__free(a->conns);
	span_builder__free(a->spans);
	identity__free(a->identity);
	otlp_exporter__free(a->otlp);
	jsonl_exporter__free(a->jsonl);
	httpd__free(a->httpd);
	tracestore__free(a->traces);
	metrics__free(a->metrics);
	graph__free(a->graph);
	peers__free(a->peers);
	dnsspans__free(a->dns_spans);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->timerfd >= 0)
		close(a->timerfd);
}

/* OTEL_METRIC_EXPORT_INTERVAL (ms): the metrics export period. Returns 0 or 2 (bad value). */
static int metric_interval_from_env(uint64_t *out)
{
	const char *v = getenv("OTEL_METRIC_EXPORT_INTERVAL");
	unsigned long ms;

	*out = METRIC_INTERVAL_DEFAULT_MS;
	if (!v || !*v)
		return 0;
	if (parse_uint(v, METRIC_INTERVAL_MIN_MS, METRIC_INTERVAL_MAX_MS, &ms)) {
		mt_err("OTEL_METRIC_EXPORT_INTERVAL='%s': give milliseconds from %d to %d", v,
		       METRIC_INTERVAL_MIN_MS, METRIC_INTERVAL_MAX_MS);
		return 2;
	}
	*out = ms;
	return 0;
}

int main(int argc, char **argv)
{
	struct agent a = {.epfd = -1, .sigfd = -1, .timerfd = -1};
	char err[512] = "";
	char stats[8192];
	int rc;

	rc = parse_args(argc, argv, &a.opts);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (otlp_config_from_env(&a.otlp_cfg, err, sizeof(err)) != 0) {
		mt_err("%s", err);
		return 2;
	}
	if (!a.opts.replay_path && privileges_check(err, sizeof(err)) != 0) {
		mt_err("%s", err);
		return 2;
	}

	a.identity = identity__new("/proc");
	a.spans = a.identity ? span_builder__new(&a.opts.spans, a.identity, on_span, &a) : NULL;
	a.conns = conn_table__new(a.opts.max_conns, 0, on_exchange, &a);
	a.dns_spans = dnsspans__new(on_exchange, &a);
	if (!a.identity || !a.spans || !a.conns || !a.dns_spans) {
		mt_err("out of memory");
		rc = 1;
		goto out;
	}
	span_builder_set_clock(a.spans, clock_offset_ns());
	conn_table_set_io_fn(a.conns, on_io);
	conn_table_set_mute_fn(a.conns, on_mute);
	if (a.opts.jsonl_path) {
		a.jsonl = jsonl_exporter__new(a.opts.jsonl_path);
		if (!a.jsonl) {
			mt_err("--jsonl '%s': %s", a.opts.jsonl_path, strerror(errno));
			rc = 2;
			goto out;
		}
	}
	rc = metric_interval_from_env(&a.metric_interval_ms);
	if (rc)
		goto out;
	a.peers = peers__new();
	a.graph = a.peers ? graph__new(a.identity, a.peers) : NULL;
	a.metrics = metrics__new(&a.otlp_cfg);
	if (!a.graph || !a.metrics) {
		mt_err("out of memory");
		rc = 1;
		goto out;
	}
	peers_refresh_local_addrs(a.peers);
	graph_set_clock(a.graph, clock_offset_ns());
	a.next_metrics_ms = now_mono_ns() / 1000000 + a.metric_interval_ms;
	if (a.otlp_cfg.traces_url[0] || a.otlp_cfg.metrics_url[0]) {
		a.otlp = otlp_exporter__new(&a.otlp_cfg);
		if (!a.otlp) {
			mt_err("cannot start the OTLP exporter: %s", strerror(errno));
			rc = 1;
			goto out;
		}
	}

	if (start_httpd(&a, err, sizeof(err)) != 0) {
		mt_err("%s", err);
		rc = 2;
		goto out;
	}
	if (a.opts.replay_path)
		a.capture =
			capture__open_replay(a.opts.replay_path, on_event, &a, err, sizeof(err));
	else
		a.capture = capture__open(&a.opts.capture, on_event, &a, err, sizeof(err));
	if (!a.capture) {
		mt_err("%s", err);
		rc = 2;
		goto out;
	}
	a.attached = !a.opts.replay_path;
	if (a.opts.record_path) {
		rc = capture_record_to(a.capture, a.opts.record_path);
		if (rc) {
			mt_err("--record '%s': %s", a.opts.record_path, strerror(-rc));
			rc = 2;
			goto out;
		}
	}
	rc = setup_loop(&a);
	if (rc) {
		mt_err("cannot set up the event loop: %s", strerror(-rc));
		rc = 1;
		goto out;
	}
	apply_cpu_priority(a.opts.priority);
	fprintf(stderr, "meshtrace: ready\n");
	if (a.opts.replay_path)
		mt_info("replaying %s", a.opts.replay_path);
	else
		mt_info("capturing with %s tracepoints, %u payload bytes per call",
			capture_mode_name(a.capture), a.opts.capture.capture_bytes);
	mt_info("%s%s%s", a.otlp ? "exporting to " : "no OTLP endpoint set",
		a.otlp ? a.otlp_cfg.traces_url : "", a.jsonl ? ", writing JSON lines" : "");
	if (a.httpd)
		mt_info("listening on http://%s/",
			a.opts.listen ? a.opts.listen : HTTPD_DEFAULT_LISTEN);

	rc = run_loop(&a);
	if (rc) {
		mt_err("event loop failed: %s", strerror(-rc));
		rc = 1;
	}
	/* Back to normal priority: the final flush is bounded in time, not starved. */
	if (a.opts.priority != CPU_PRIORITY_NORMAL) {
		struct sched_param sp = {.sched_priority = 0};

		sched_setscheduler(0, SCHED_OTHER, &sp);
		setpriority(PRIO_PROCESS, 0, 0);
	}
	/* Detach first so nothing new arrives, then flush what was captured. */
	a.attached = false;
	capture_detach(a.capture);
	capture_drain(a.capture);
	graph_flush(a.graph, now_mono_ns());
	export_metrics(&a); /* the final values, so a short run's metrics are not lost */
	if (a.otlp && otlp_exporter_flush(a.otlp, SHUTDOWN_FLUSH_MS) != 0)
		mt_warn("the collector did not take every span within %d ms", SHUTDOWN_FLUSH_MS);
	if (a.jsonl)
		jsonl_exporter_flush(a.jsonl);
	format_stats(&a, stats, sizeof(stats));
	fprintf(stderr, "meshtrace: final stats %s\n", stats);
out:
	agent_free(&a);
	return rc;
}
