/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The composed agent: every stage's object and the few counters that belong
 * to no stage (events the demultiplexer saw). Shared by the files at agent/'s
 * top level only: main.c builds it, cli.c fills its options, loop.c runs it,
 * health.c reads its counters. No stage includes this header.
 */
#ifndef MESHTRACE_AGENT_H
#define MESHTRACE_AGENT_H

#include <stdint.h>

#include "agent/capture/capture.h"
#include "agent/export/metrics.h"
#include "agent/export/otlp.h"
#include "agent/trace/sampler.h"
#include "agent/trace/spans.h"
#include "agent/trace/tailkeep.h"

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
	CPU_PRIORITY__MAX,
};

struct agent_opts {
	const char *jsonl_path;
	struct capture_opts capture;
	struct span_opts spans;
	uint32_t max_conns;
	unsigned stats_interval_s;
	const char *listen; /* NULL: HTTPD_DEFAULT_LISTEN; "off": no listener */
	enum cpu_priority priority;
	const char *record_path;	 /* --record */
	const char *replay_path;	 /* --replay */
	int log_level;			 /* enum mt_log_level from -v / -q, -1: the default */
	const char *cri_socket;		 /* --cri-socket or MESHTRACE_CRI_SOCKET; NULL: search */
	const char *cgroup_from;	 /* "--cgroup" or "MESHTRACE_CGROUP", for messages */
	struct tailkeep_config tailkeep; /* --keep-error-traces, --keep-slow-traces */
};

struct agent {
	struct agent_opts opts;
	struct otlp_config otlp_cfg;
	struct capture *capture;
	struct conn_table *conns;
	struct identity *identity;
	struct k8s *k8s; /* Kubernetes names from the CRI socket; NULL with --cri-socket off */
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
	/*
	 * The ring buffer drains: each is a burst of work an application on the
	 * same CPU waits behind (figure 2's added p99, docs/performance.md).
	 */
	uint64_t drains;
	uint64_t drain_ns_total;
	uint64_t drain_ns_max;
	uint64_t drains_over_1ms;
	uint64_t drains_over_5ms;
	uint64_t mute_failed;
	struct mt_sampler sampler;  /* OTEL_TRACES_SAMPLER: which spans the exporters get */
	uint64_t spans_sampled;	    /* the sampler's: handed to the exporters */
	uint64_t spans_sampled_out; /* counted by the graph and metrics, not exported */
	struct tailkeep *tailkeep;  /* NULL unless --keep-error-traces / --keep-slow-traces */
	uint8_t exemplar_filter; /* enum metrics_exemplar_filter (OTEL_METRICS_EXEMPLAR_FILTER) */
	bool traces_exported;	 /* spans leave the agent (OTLP traces or JSON lines) */
	bool sdk_disabled;	 /* OTEL_SDK_DISABLED=true: no OTLP export at all */
	bool attached; /* the kernel programs are attached: /healthz answers 200 only then */
	int epfd;
	int sigfd;
	int timerfd;
};

#endif /* MESHTRACE_AGENT_H */
