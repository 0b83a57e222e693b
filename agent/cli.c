// SPDX-License-Identifier: Apache-2.0
/* The command line: flags, OTEL_METRIC_EXPORT_INTERVAL, privileges, CPU priority. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/common/version.h"
#include "agent/common/log.h"
#include "agent/conn/conn.h"
#include "agent/serve/httpd.h"

/* OTEL_METRIC_EXPORT_INTERVAL: the spec's default and the bounds we accept, ms. */
#define METRIC_INTERVAL_DEFAULT_MS 60000
#define METRIC_INTERVAL_MIN_MS	   100
#define METRIC_INTERVAL_MAX_MS	   86400000

static const char *const cpu_priority_names[CPU_PRIORITY__MAX] = {"normal", "low", "idle"};

const char *cli_cpu_priority_name(enum cpu_priority p)
{
	return (unsigned)p < CPU_PRIORITY__MAX ? cpu_priority_names[p] : "?";
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: meshtrace [OPTION]...\n"
		"Observe every TCP call on this node with eBPF; parse HTTP/1, HTTP/2 and gRPC,\n"
		"Redis, PostgreSQL, MySQL, memcached and DNS into spans and a service graph;\n"
		"export them over OTLP/HTTP or OTLP/gRPC (traces and metrics), serve /metrics and "
		"a "
		"page.\n"
		"Needs root (or the capabilities BPF, PERFMON, SYS_PTRACE and DAC_READ_SEARCH).\n"
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
		"  --cgroup PATH           trace only processes in this cgroup v2 subtree (a\n"
		"                          directory under the cgroup2 mount; env\n"
		"                          MESHTRACE_CGROUP): one agent per subtree\n"
		"  --propagate             carry the trace context to other nodes' agents in a\n"
		"                          TCP header option (off by default; env\n"
		"                          MESHTRACE_PROPAGATE=1); see docs/tracing.md\n"
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
		"  OTEL_EXPORTER_OTLP_PROTOCOL         http/protobuf (default) | grpc (also per "
		"signal:\n"
		"                                      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "
		"..._METRICS_...)\n"
		"  OTEL_EXPORTER_OTLP_CERTIFICATE      CA file (PEM) to trust the collector; with\n"
		"  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY for mutual TLS\n"
		"  OTEL_EXPORTER_OTLP_INSECURE         true: plaintext gRPC to a host:port "
		"endpoint\n"
		"  OTEL_TRACES_SAMPLER                 always_on (default) | always_off | "
		"traceidratio\n"
		"                                      | "
		"parentbased_{always_on,always_off,traceidratio}\n"
		"                                      (export only: graph and metrics count every "
		"span)\n"
		"  OTEL_TRACES_SAMPLER_ARG             traceidratio's ratio, 0..1 (default 1.0)\n"
		"  OTEL_RESOURCE_ATTRIBUTES            k=v,... added to every resource\n"
		"  OTEL_SERVICE_NAME                   service.name of the agent's own metrics "
		"(default meshtrace)\n"
		"  OTEL_METRICS_EXEMPLAR_FILTER        trace_based (default) | always_on | "
		"always_off\n"
		"  OTEL_SDK_DISABLED                   true: no OTLP export (/metrics, the page "
		"stay)\n"
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
	OPT_CGROUP,
	OPT_PROPAGATE,
};

int cli_parse(int argc, char **argv, struct agent_opts *o)
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
		{"cgroup", required_argument, NULL, OPT_CGROUP},
		{"propagate", no_argument, NULL, OPT_PROPAGATE},
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
	o->capture.cgroup = getenv("MESHTRACE_CGROUP");
	if (o->capture.cgroup && !o->capture.cgroup[0])
		o->capture.cgroup = NULL;
	{
		const char *p = getenv("MESHTRACE_PROPAGATE");

		o->capture.propagate = p && (strcmp(p, "1") == 0 || strcasecmp(p, "true") == 0);
	}
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
			for (v = 0; v < CPU_PRIORITY__MAX; v++)
				if (strcmp(optarg, cpu_priority_names[v]) == 0)
					break;
			if (v == CPU_PRIORITY__MAX) {
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
		case OPT_CGROUP:
			o->capture.cgroup = optarg;
			break;
		case OPT_PROPAGATE:
			o->capture.propagate = true;
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

void cli_apply_cpu_priority(enum cpu_priority p)
{
	struct sched_param sp = {.sched_priority = 0};

	if (p == CPU_PRIORITY_IDLE && sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
		mt_warn("--cpu-priority idle: %s; running at normal priority", strerror(errno));
	if (p == CPU_PRIORITY_LOW && setpriority(PRIO_PROCESS, 0, 19) != 0)
		mt_warn("--cpu-priority low: %s; running at normal priority", strerror(errno));
}

int cli_metric_interval_from_env(uint64_t *out)
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

bool cli_sdk_disabled_from_env(void)
{
	const char *v = getenv("OTEL_SDK_DISABLED");

	if (!v || !*v || !strcasecmp(v, "false"))
		return false;
	if (!strcasecmp(v, "true"))
		return true;
	mt_warn("OTEL_SDK_DISABLED='%.32s' is not true or false: read as false (export stays on)",
		v);
	return false;
}

void cli_restore_cpu_priority(enum cpu_priority p)
{
	struct sched_param sp = {.sched_priority = 0};

	if (p == CPU_PRIORITY_NORMAL)
		return;
	sched_setscheduler(0, SCHED_OTHER, &sp);
	setpriority(PRIO_PROCESS, 0, 0);
}
