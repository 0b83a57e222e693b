// SPDX-License-Identifier: Apache-2.0
/* The command line: flags, OTEL_METRIC_EXPORT_INTERVAL, privileges, CPU priority. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
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
		"  --no-tls                no uprobes on TLS libraries (OpenSSL): HTTPS and other\n"
		"                          TLS connections stay TCP edges (also "
		"MESHTRACE_NO_TLS=1)\n"
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
		"  --keep-error-traces     beyond the sampler: export every local trace with an\n"
		"                          error, whatever OTEL_TRACES_SAMPLER dropped (env\n"
		"                          MESHTRACE_KEEP_ERROR_TRACES=1)\n"
		"  --keep-slow-traces MS   the same for traces with a span longer than MS ms,\n"
		"                          1..%llu (env MESHTRACE_KEEP_SLOW_TRACES_MS)\n"
		"  --listen ADDR:PORT      the agent's HTTP listener (default %s; 'off' for "
		"none):\n"
		"                          /healthz, /api/stats, /metrics (Prometheus), "
		"/api/graph\n"
		"                          /api/traces, and the agent's page at /\n"
		"  --cri-socket PATH       the container runtime's CRI socket, for Kubernetes\n"
		"                          names (default: MESHTRACE_CRI_SOCKET, else the first\n"
		"                          of /run/containerd/containerd.sock, "
		"/run/crio/crio.sock,\n"
		"                          /run/k3s/containerd/containerd.sock; 'off' for none)\n"
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
		MT_CAPTURE_MAX, MT_CAPTURE_DEFAULT, CONN_MAX_DEFAULT,
		(unsigned long long)TAILKEEP_SLOW_MS_MAX, HTTPD_DEFAULT_LISTEN);
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

/*
 * "off", "IP:PORT" or "[IPv6]:PORT" with a port 0..65535, as the listener
 * reads it: checked here so a bad --listen stops the agent before anything starts.
 */
static bool listen_addr_valid(const char *addr)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *port_s, *close, *colon;
	unsigned long port;
	size_t n;

	if (!strcmp(addr, "off"))
		return true;
	if (addr[0] == '[') {
		close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return false;
		n = (size_t)(close - addr - 1);
		port_s = close + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return false;
		n = (size_t)(colon - addr);
		port_s = colon + 1;
	}
	if (n >= sizeof(host))
		return false;
	memcpy(host, addr + (addr[0] == '['), n);
	host[n] = '\0';
	if (parse_uint(port_s, 0, 65535, &port))
		return false;
	if (addr[0] == '[')
		return inet_pton(AF_INET6, host, bin) == 1;
	return inet_pton(AF_INET, host, bin) == 1;
}

/* A path given to a flag: not empty, no longer than the kernel takes. */
static int check_path(const char *flag, const char *v, char *err, size_t errlen)
{
	char q[MT_LOG_VALUE_MAX + 32];

	if (!v[0])
		return mt_fail(err, errlen, "%s '': give a file path", flag);
	if (strlen(v) >= PATH_MAX)
		return mt_fail(err, errlen,
			       "%s '%s': path longer than %d bytes; give a shorter one", flag,
			       mt_log_value(q, v), PATH_MAX - 1);
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
	OPT_CRI_SOCKET,
	OPT_NO_TLS,
	OPT_CGROUP,
	OPT_PROPAGATE,
	OPT_KEEP_ERRORS,
	OPT_KEEP_SLOW,
};

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
	{"cri-socket", required_argument, NULL, OPT_CRI_SOCKET},
	{"no-tls", no_argument, NULL, OPT_NO_TLS},
	{"cgroup", required_argument, NULL, OPT_CGROUP},
	{"propagate", no_argument, NULL, OPT_PROPAGATE},
	{"keep-error-traces", no_argument, NULL, OPT_KEEP_ERRORS},
	{"keep-slow-traces", required_argument, NULL, OPT_KEEP_SLOW},
	{"verbose", no_argument, NULL, 'v'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* --cgroup or MESHTRACE_CGROUP (@name): a path; the directory itself is checked later. */
static int check_cgroup(const char *name, const char *v, char *err, size_t errlen)
{
	char q[MT_LOG_VALUE_MAX + 32];

	if (!v[0] || strlen(v) >= PATH_MAX)
		return mt_fail(err, errlen,
			       "%s '%s': give a cgroup v2 directory (a path shorter "
			       "than %d bytes)",
			       name, mt_log_value(q, v), PATH_MAX);
	return 0;
}

/*
 * --cri-socket or MESHTRACE_CRI_SOCKET (@name): off, or an absolute path that fits a unix
 * socket's sun_path (108 bytes with its NUL). The socket itself may come later.
 */
static int check_cri_socket(const char *name, const char *v, char *err, size_t errlen)
{
	char q[MT_LOG_VALUE_MAX + 32];

	if (strcmp(v, "off") != 0 && (v[0] != '/' || strlen(v) > 107))
		return mt_fail(err, errlen,
			       "%s '%s': give the runtime's socket as an absolute path of at most "
			       "107 bytes, or off",
			       name, mt_log_value(q, v));
	return 0;
}

/*
 * A boolean variable @name: unset or empty leaves @out alone; true or false (any case, blanks
 * around ignored; 1 or 0 too when @digits) set it. Anything else is bad configuration: -EINVAL
 * with one line in @err. (The OTel spec would read it as false with a warning; a typo that
 * silently keeps a feature on or off is worse than an agent that does not start.)
 */
static int env_bool(const char *name, bool digits, bool *out, char *err, size_t errlen)
{
	const char *v = getenv(name);
	char q[MT_LOG_VALUE_MAX + 32];
	size_t len;

	if (!v)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	len = strlen(v);
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (!len)
		return 0;
	if ((len == 4 && !strncasecmp(v, "true", 4)) || (digits && len == 1 && v[0] == '1')) {
		*out = true;
		return 0;
	}
	if ((len == 5 && !strncasecmp(v, "false", 5)) || (digits && len == 1 && v[0] == '0')) {
		*out = false;
		return 0;
	}
	return mt_fail(err, errlen, "%s='%s': give true or false%s", name,
		       mt_log_value(q, getenv(name)), digits ? " (or 1 or 0)" : "");
}

/*
 * The MESHTRACE_* variables, each checked like its flag: always (a bad value is bad
 * configuration even where a flag overrides it), applied where no flag was given. Returns 0
 * or -EINVAL with one line in @err.
 */
static int env_options(struct agent_opts *o, char *err, size_t errlen)
{
	const char *v;
	bool propagate = false, no_tls = false, keep_errors = false;
	char q[MT_LOG_VALUE_MAX + 32];
	unsigned long ms;
	int ret;

	v = getenv("MESHTRACE_CGROUP");
	if (v && v[0]) {
		ret = check_cgroup("MESHTRACE_CGROUP", v, err, errlen);
		if (ret)
			return ret;
		if (!o->capture.cgroup) {
			o->capture.cgroup = v;
			o->cgroup_from = "MESHTRACE_CGROUP";
		}
	}
	v = getenv("MESHTRACE_CRI_SOCKET");
	if (v && v[0]) {
		ret = check_cri_socket("MESHTRACE_CRI_SOCKET", v, err, errlen);
		if (ret)
			return ret;
		if (!o->cri_socket)
			o->cri_socket = v;
	}
	ret = env_bool("MESHTRACE_PROPAGATE", true, &propagate, err, errlen);
	if (ret)
		return ret;
	o->capture.propagate = o->capture.propagate || propagate; /* --propagate: always on */
	ret = env_bool("MESHTRACE_NO_TLS", true, &no_tls, err, errlen);
	if (ret)
		return ret;
	o->capture.no_tls = o->capture.no_tls || no_tls; /* --no-tls: always off */
	ret = env_bool("MESHTRACE_KEEP_ERROR_TRACES", true, &keep_errors, err, errlen);
	if (ret)
		return ret;
	o->tailkeep.keep_errors = o->tailkeep.keep_errors || keep_errors;
	v = getenv("MESHTRACE_KEEP_SLOW_TRACES_MS");
	if (v && v[0]) {
		if (parse_uint(v, 1, TAILKEEP_SLOW_MS_MAX, &ms))
			return mt_fail(err, errlen,
				       "MESHTRACE_KEEP_SLOW_TRACES_MS='%s': give milliseconds from "
				       "1 to %llu",
				       mt_log_value(q, v),
				       (unsigned long long)TAILKEEP_SLOW_MS_MAX);
		if (!o->tailkeep.slow_ns) /* --keep-slow-traces wins */
			o->tailkeep.slow_ns = (uint64_t)ms * 1000000ull;
	}
	return 0;
}

/* One option with its value (NULL for flags without one) into @o. */
static int take_option(int c, const char *arg, struct agent_opts *o, char *err, size_t errlen)
{
	char q[MT_LOG_VALUE_MAX + 32];
	unsigned long v;

	switch (c) {
	case OPT_JSONL:
		o->jsonl_path = arg;
		return strcmp(arg, "-") ? check_path("--jsonl", arg, err, errlen) : 0;
	case OPT_CAPTURE_BYTES:
		if (parse_uint(arg, 0, MT_CAPTURE_MAX, &v))
			return mt_fail(err, errlen,
				       "--capture-bytes '%s': give a number from 0 to %u",
				       mt_log_value(q, arg), MT_CAPTURE_MAX);
		o->capture.capture_bytes = (uint32_t)v;
		return 0;
	case OPT_CAPTURE_MODE:
		if (strcmp(arg, "auto") == 0)
			o->capture.mode = CAPTURE_AUTO;
		else if (strcmp(arg, "sock") == 0)
			o->capture.mode = CAPTURE_SOCK;
		else if (strcmp(arg, "syscalls") == 0)
			o->capture.mode = CAPTURE_SYSCALLS;
		else
			return mt_fail(err, errlen,
				       "--capture-mode '%s': use auto, sock or syscalls",
				       mt_log_value(q, arg));
		return 0;
	case OPT_RECORD_QUERY:
		o->spans.record_query = true;
		return 0;
	case OPT_NO_TLS:
		o->capture.no_tls = true;
		return 0;
	case OPT_CGROUP:
		o->capture.cgroup = arg;
		o->cgroup_from = "--cgroup";
		return check_cgroup("--cgroup", arg, err, errlen);
	case OPT_PROPAGATE:
		o->capture.propagate = true;
		return 0;
	case OPT_KEEP_ERRORS:
		o->tailkeep.keep_errors = true;
		return 0;
	case OPT_KEEP_SLOW:
		if (parse_uint(arg, 1, TAILKEEP_SLOW_MS_MAX, &v))
			return mt_fail(err, errlen,
				       "--keep-slow-traces '%s': give milliseconds from 1 to %llu",
				       mt_log_value(q, arg),
				       (unsigned long long)TAILKEEP_SLOW_MS_MAX);
		o->tailkeep.slow_ns = (uint64_t)v * 1000000ull;
		return 0;
	case OPT_MAX_CONNS:
		if (parse_uint(arg, CLI_MAX_CONNS_MIN, CLI_MAX_CONNS_MAX, &v))
			return mt_fail(err, errlen,
				       "--max-connections '%s': give a number from %u to %u",
				       mt_log_value(q, arg), CLI_MAX_CONNS_MIN, CLI_MAX_CONNS_MAX);
		o->max_conns = (uint32_t)v;
		return 0;
	case OPT_STATS_INTERVAL:
		if (parse_uint(arg, 0, 86400, &v))
			return mt_fail(err, errlen,
				       "--stats-interval '%s': give seconds from 0 to 86400",
				       mt_log_value(q, arg));
		o->stats_interval_s = (unsigned)v;
		return 0;
	case OPT_LISTEN:
		if (!listen_addr_valid(arg))
			return mt_fail(err, errlen,
				       "--listen '%s': give an address and a port 0-65535, e.g. "
				       "127.0.0.1:9464 or [::1]:9464, or off",
				       mt_log_value(q, arg));
		o->listen = arg;
		return 0;
	case OPT_CRI_SOCKET:
		o->cri_socket = arg;
		return check_cri_socket("--cri-socket", arg, err, errlen);
	case OPT_CPU_PRIORITY:
		for (v = 0; v < CPU_PRIORITY__MAX; v++)
			if (strcmp(arg, cpu_priority_names[v]) == 0)
				break;
		if (v == CPU_PRIORITY__MAX)
			return mt_fail(err, errlen, "--cpu-priority '%s': use idle, low or normal",
				       mt_log_value(q, arg));
		o->priority = (enum cpu_priority)v;
		return 0;
	case OPT_RECORD:
		o->record_path = arg;
		return check_path("--record", arg, err, errlen);
	case OPT_REPLAY:
		o->replay_path = arg;
		return check_path("--replay", arg, err, errlen);
	case 'v':
		o->log_level = MT_LOG_DEBUG;
		return 0;
	case 'q':
		o->log_level = MT_LOG_ERROR;
		return 0;
	default:
		return mt_fail(err, errlen, "internal: option %d not handled", c);
	}
}

/* The option argv[optind - 1] named, for a message: "--name" of "--name=value", or "-x". */
static const char *option_name(char *out, size_t outlen, const char *arg, int optopt_c)
{
	char q[MT_LOG_VALUE_MAX + 32];

	if (arg[0] == '-' && arg[1] == '-') {
		size_t n = strcspn(arg, "=");

		snprintf(out, outlen, "%.*s", (int)(n < MT_LOG_VALUE_MAX ? n : MT_LOG_VALUE_MAX),
			 arg);
		mt_log_value(q, out);
		snprintf(out, outlen, "%s", q);
	} else if (optopt_c > 0 && optopt_c < 256) {
		snprintf(out, outlen, "-%c", optopt_c);
		mt_log_value(q, out);
		snprintf(out, outlen, "%s", q);
	} else {
		snprintf(out, outlen, "%s", mt_log_value(q, arg));
	}
	return out;
}

void cli_defaults(struct agent_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->capture.capture_bytes = MT_CAPTURE_DEFAULT;
	o->capture.mode = CAPTURE_AUTO;
	o->max_conns = CONN_MAX_DEFAULT;
	o->log_level = -1;
}

int cli_parse(int argc, char **argv, struct agent_opts *o, char *err, size_t errlen)
{
	char name[MT_LOG_VALUE_MAX + 32];
	int c, ret;

	cli_defaults(o);
	if (err && errlen)
		err[0] = '\0';
	opterr = 0;
	optind = 0; /* glibc: start afresh, so the parser can run again (tests, the fuzzer) */
	while ((c = getopt_long(argc, argv, "+:vqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return CLI_HELP;
		case 'V':
			return CLI_VERSION;
		case ':':
			return mt_fail(err, errlen, "option '%s' needs a value; see --help",
				       option_name(name, sizeof(name), argv[optind - 1], optopt));
		case '?':
			if (argv[optind - 1][0] == '-' && argv[optind - 1][1] == '-' &&
			    strchr(argv[optind - 1], '=') && optopt)
				return mt_fail(
					err, errlen, "option '%s' takes no value; see --help",
					option_name(name, sizeof(name), argv[optind - 1], optopt));
			return mt_fail(err, errlen, "unknown option '%s'; see --help",
				       option_name(name, sizeof(name), argv[optind - 1], optopt));
		default:
			ret = take_option(c, optarg, o, err, errlen);
			if (ret)
				return ret;
		}
	}
	if (optind < argc)
		return mt_fail(err, errlen, "unexpected argument '%s'; see --help",
			       mt_log_value(name, argv[optind]));
	if (o->record_path && o->replay_path)
		return mt_fail(err, errlen, "--record and --replay: use one or the other");
	ret = env_options(o, err, errlen);
	return ret ? ret : CLI_RUN;
}

void cli_usage(FILE *out)
{
	usage(out);
}

void cli_apply_cpu_priority(enum cpu_priority p)
{
	struct sched_param sp = {.sched_priority = 0};

	if (p == CPU_PRIORITY_IDLE && sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
		mt_warn("--cpu-priority idle: %s; running at normal priority", strerror(errno));
	if (p == CPU_PRIORITY_LOW && setpriority(PRIO_PROCESS, 0, 19) != 0)
		mt_warn("--cpu-priority low: %s; running at normal priority", strerror(errno));
}

int cli_metric_interval_from_env(uint64_t *out, char *err, size_t errlen)
{
	const char *v = getenv("OTEL_METRIC_EXPORT_INTERVAL");
	char q[MT_LOG_VALUE_MAX + 32];
	unsigned long ms;

	*out = METRIC_INTERVAL_DEFAULT_MS;
	if (!v || !*v)
		return 0;
	if (parse_uint(v, METRIC_INTERVAL_MIN_MS, METRIC_INTERVAL_MAX_MS, &ms))
		return mt_fail(err, errlen,
			       "OTEL_METRIC_EXPORT_INTERVAL='%s': give milliseconds from %d to %d",
			       mt_log_value(q, v), METRIC_INTERVAL_MIN_MS, METRIC_INTERVAL_MAX_MS);
	*out = ms;
	return 0;
}

int cli_sdk_disabled_from_env(bool *out, char *err, size_t errlen)
{
	*out = false;
	return env_bool("OTEL_SDK_DISABLED", false, out, err, errlen);
}

void cli_restore_cpu_priority(enum cpu_priority p)
{
	struct sched_param sp = {.sched_priority = 0};

	if (p == CPU_PRIORITY_NORMAL)
		return;
	sched_setscheduler(0, SCHED_OTHER, &sp);
	setpriority(PRIO_PROCESS, 0, 0);
}
