// SPDX-License-Identifier: Apache-2.0
/*
 * The health table. Each row names one value of a snapshot of every stage's
 * counters and says where it goes: a place in the stats JSON (an object path
 * and a key), a health metric (family and attribute), or both. Adding a
 * counter is adding a row.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/common/json.h"
#include "agent/common/log.h"
#include "agent/common/util.h"
#include "agent/conn/conn.h"
#include "agent/export/otlp.h"
#include "agent/graph/graph.h"
#include "agent/health.h"
#include "agent/identity/identity.h"
#include "agent/identity/k8s.h"
#include "agent/identity/k8s_pods.h"
#include "agent/identity/peers.h"
#include "agent/serve/httpd.h"
#include "agent/serve/tracestore.h"
#include "agent/trace/dnsspans.h"
#include "agent/trace/linker.h"
#include "agent/trace/spans.h"

/* Every stage's counters at one moment, and the few values that are not counters. */
struct health_snap {
	struct capture_counters kc;
	uint64_t ext[MT_XSTAT__MAX];
	uint64_t xnode[MT_XS__MAX]; /* --propagate: the sock_ops programs' counters */
	struct conn_stats cs;
	struct span_stats ss;
	struct otlp_stats os;
	struct graph_stats gs;
	struct peers_stats ps;
	struct metrics_stats ms;
	struct identity_stats is;
	struct k8s_stats ks;
	struct dnsspans_stats ds;
	struct httpd_stats hs;
	struct tracestore_stats ts;
	struct tls_stats tls;
	uint64_t events;      /* events the loop received */
	uint64_t bad_events;  /* of which malformed */
	uint64_t mute_failed; /* sockets the kernel could not be told to stop copying (map full) */
	uint64_t drains, drain_ms_total, drain_us_max, drains_over_1ms, drains_over_5ms;
	uint64_t spans_sampled;	    /* exported by the sampler's decision */
	uint64_t spans_sampled_out; /* not exported: OTEL_TRACES_SAMPLER (and not kept by tail) */
	struct tailkeep_stats tk;   /* --keep-error-traces, --keep-slow-traces */
	uint64_t dns_events;
	uint64_t proc_events;
	uint64_t max_conns;
	uint64_t otlp_queue_max;	    /* OTEL_BSP_MAX_QUEUE_SIZE, as the exporter took it */
	uint64_t store_traces, store_spans; /* the trace store's fill (widened) */
	double span_update_ns;		    /* mean cost of one span in the graph stage */
	double cpu_user_s, cpu_system_s, rss_bytes;
	const char *capture_mode;
	const char *sampler; /* OTEL_TRACES_SAMPLER's name */
	const char *cpu_priority;
	bool otlp_enabled;
	bool sdk_disabled; /* OTEL_SDK_DISABLED=true */
};

enum health_value {
	HV_U64,	  /* uint64_t at .off */
	HV_F64,	  /* double at .off; a whole number in the JSON */
	HV_CONST, /* .konst, a capacity known at build time */
	HV_STR,	  /* const char * at .off; JSON only */
	HV_BOOL,  /* bool at .off; JSON only */
	HV_JSON,  /* .json writes the value; JSON only */
};

/* A row that stands for one value per name: the JSON key and the attribute value are the name. */
enum health_each {
	HE_ONE,
	HE_DROP_REASON, /* uint64_t[MT_DROP__MAX] at .off, named by capture_drop_name() */
	HE_UNLINKED,	/* uint64_t[LINK__MAX] at .off, named by linker_unlinked_name() */
};

struct health_row {
	const char *obj;  /* JSON object holding it, "" the top, "a.b" nested; NULL: not in JSON */
	const char *key;  /* its key there */
	int family;	  /* enum metrics_health_family; -1: not a metric */
	const char *attr; /* the metric's attribute key, or NULL */
	const char *attr_value;
	enum health_value value;
	enum health_each each;
	size_t off; /* in struct health_snap */
	uint64_t konst;
	void (*json)(struct mt_json *j, const struct health_snap *s);
};

#define SNAP(field) offsetof(struct health_snap, field)
/* In the stats JSON and a metric. */
#define BOTH(o, k, fam, a, v, field)                                                            \
	{                                                                                       \
		.obj = o, .key = k, .family = fam, .attr = a, .attr_value = v, .value = HV_U64, \
		.off = SNAP(field)                                                              \
	}
#define BOTH_F64(o, k, fam, a, v, field)                                                        \
	{                                                                                       \
		.obj = o, .key = k, .family = fam, .attr = a, .attr_value = v, .value = HV_F64, \
		.off = SNAP(field)                                                              \
	}
/* In the stats JSON only. */
#define JSON(o, k, field)                                                             \
	{                                                                             \
		.obj = o, .key = k, .family = -1, .value = HV_U64, .off = SNAP(field) \
	}
/* A metric only. */
#define METRIC(fam, a, v, field)                                                               \
	{                                                                                      \
		.family = fam, .attr = a, .attr_value = v, .value = HV_U64, .off = SNAP(field) \
	}
#define METRIC_F64(fam, a, v, field)                                                           \
	{                                                                                      \
		.family = fam, .attr = a, .attr_value = v, .value = HV_F64, .off = SNAP(field) \
	}
/* A table's capacity, a metric only. */
#define CAPACITY(table, n)                                                         \
	{                                                                          \
		.family = MH_TABLE_CAPACITY, .attr = "table", .attr_value = table, \
		.value = HV_CONST, .konst = (n)                                    \
	}
/* A string, a bool, or a value a function writes: in the stats JSON only. */
#define TEXT(o, k, field)                                                             \
	{                                                                             \
		.obj = o, .key = k, .family = -1, .value = HV_STR, .off = SNAP(field) \
	}
#define FLAG(o, k, field)                                                              \
	{                                                                              \
		.obj = o, .key = k, .family = -1, .value = HV_BOOL, .off = SNAP(field) \
	}
#define OWN(o, k, fn)                                                          \
	{                                                                      \
		.obj = o, .key = k, .family = -1, .value = HV_JSON, .json = fn \
	}
/* One value per name, in a JSON object of its own and as one metric attribute's values. */
#define EACH(o, fam, a, e, field)                                                                  \
	{                                                                                          \
		.obj = o, .family = fam, .attr = a, .value = HV_U64, .each = e, .off = SNAP(field) \
	}

static void json_drops_per_cpu(struct mt_json *j, const struct health_snap *s);
static void json_l7(struct mt_json *j, const struct health_snap *s);

static const struct health_row rows[] = {
	TEXT("", "capture_mode", capture_mode),
	TEXT("", "cpu_priority", cpu_priority),

	/* kernel: what the BPF programs counted */
	BOTH("kernel", "data_events", MH_KERNEL_EVENTS, "kind", "data",
	     kc.stats[MT_STAT_DATA_EVENTS]),
	BOTH("kernel", "conn_events", MH_KERNEL_EVENTS, "kind", "conn",
	     kc.stats[MT_STAT_CONN_EVENTS]),
	BOTH("kernel", "wakeups", MH_KERNEL_WAKEUPS, NULL, NULL, kc.stats[MT_STAT_WAKEUPS]),
	BOTH("kernel", "bytes_captured", MH_KERNEL_CAPTURED, NULL, NULL,
	     kc.stats[MT_STAT_BYTES_CAPTURED]),
	JSON("kernel", "self_filtered", kc.stats[MT_STAT_SELF_FILTERED]),
	JSON("kernel", "mutes_stale", kc.stats[MT_STAT_MUTES_STALE]),
	JSON("kernel", "events_late", kc.events_late),
	JSON("kernel", "skipped_calls", kc.stats[MT_STAT_SKIPPED_CALLS]),
	JSON("kernel", "skipped_bytes", kc.stats[MT_STAT_SKIPPED_BYTES]),
	EACH("kernel.drops", MH_KERNEL_DROPS, "reason", HE_DROP_REASON, kc.drops),
	OWN("kernel", "drops_per_cpu", json_drops_per_cpu),
	JSON("kernel.propagation", "requests_out", xnode[MT_XS_REQ_OUT]),
	JSON("kernel.propagation", "options_written", xnode[MT_XS_OPT_WRITTEN]),
	JSON("kernel.propagation", "options_no_room", xnode[MT_XS_OPT_NO_ROOM]),
	JSON("kernel.propagation", "options_missed", xnode[MT_XS_OPT_MISSED]),
	JSON("kernel.propagation", "options_parsed", xnode[MT_XS_OPT_PARSED]),
	JSON("kernel.propagation", "options_matched", xnode[MT_XS_OPT_MATCHED]),
	JSON("kernel.propagation", "requests_in", xnode[MT_XS_REQ_IN]),
	JSON("kernel.propagation", "no_storage", xnode[MT_XS_NO_STORAGE]),
	JSON("kernel.propagation", "events_lost", xnode[MT_XS_EVENT_LOST]),
	JSON("kernel.propagation", "requests_derived", xnode[MT_XS_REQ_DERIVED]),
	JSON("kernel.propagation", "requests_past_bound", xnode[MT_XS_PAST_BOUND]),

	/* user: the demultiplexer, the connection table, the span builder */
	BOTH("user", "events", MH_EVENTS, NULL, NULL, events),
	BOTH("user", "bad_events", MH_DROPS, "stage", "event_malformed", bad_events),
	JSON("user.drain", "count", drains),
	JSON("user.drain", "total_ms", drain_ms_total),
	JSON("user.drain", "max_us", drain_us_max),
	JSON("user.drain", "over_1ms", drains_over_1ms),
	JSON("user.drain", "over_5ms", drains_over_5ms),
	JSON("user", "spans", ss.spans),
	BOTH("user", "spans_server", MH_SPANS, "kind", "server", ss.server),
	BOTH("user", "spans_client", MH_SPANS, "kind", "client", ss.client),
	JSON("user", "spans_joined_traceparent", ss.joined_traceparent),
	JSON("user", "spans_sdk_reported", ss.sdk_reported),
	BOTH("user", "spans_sampled", MH_SPANS_SAMPLED, "rule", "head", spans_sampled),
	BOTH("user", "spans_sampled_out", MH_SPANS_SAMPLED_OUT, NULL, NULL, spans_sampled_out),
	BOTH("user.tailkeep", "spans_kept", MH_SPANS_SAMPLED, "rule", "tail", tk.spans_kept),
	JSON("user.tailkeep", "spans_dropped", tk.spans_dropped),
	BOTH("user.tailkeep", "traces_kept", MH_TAILKEEP_TRACES, "result", "kept", tk.traces_kept),
	BOTH("user.tailkeep", "traces_dropped", MH_TAILKEEP_TRACES, "result", "dropped",
	     tk.traces_dropped),
	BOTH("user.tailkeep", "traces_evicted", MH_TAILKEEP_TRACES, "result", "evicted",
	     tk.traces_evicted),
	BOTH("user.tailkeep", "traces_expired", MH_TAILKEEP_TRACES, "result", "expired",
	     tk.traces_expired),
	BOTH("user.tailkeep", "spans_held", MH_TABLE_USAGE, "table", "tailkeep_spans",
	     tk.spans_held),
	METRIC(MH_TABLE_CAPACITY, "table", "tailkeep_spans", tk.max_spans),
	JSON("user.tailkeep", "traces_held", tk.traces_held),
	TEXT("user", "sampler", sampler),
	BOTH("user", "role_unknown", MH_DROPS, "stage", "span_role_unknown", ss.role_unknown),
	BOTH("user", "conns_active", MH_TABLE_USAGE, "table", "connections", cs.active),
	METRIC(MH_TABLE_CAPACITY, "table", "connections", max_conns),
	JSON("user", "conns_opened", cs.opened),
	JSON("user", "conns_closed", cs.closed),
	BOTH("user", "conns_evicted_full", MH_DROPS, "stage", "conn_evicted_full", cs.evicted_full),
	JSON("user", "conns_evicted_idle", cs.evicted_idle),
	JSON("user", "connect_failed", cs.connect_failed),
	JSON("user", "retransmits", cs.retransmits),
	JSON("user", "lost_restarts", cs.lost_restarts),
	JSON("user", "role_unknown_bytes", cs.role_unknown_bytes),
	JSON("user", "conns_not_parsed", cs.not_parsed),
	JSON("user", "conns_muted", cs.muted),
	BOTH("user", "mute_failed", MH_DROPS, "stage", "kernel_mute_failed", mute_failed),
	JSON("user", "parser_released", cs.parser_released),
	JSON("user", "heap_trims", cs.trims),
	JSON("user", "skip_hints", cs.skip_hints),
	JSON("user", "skip_hint_failed", cs.skip_hint_failed),
	JSON("user", "skipped_bytes", cs.skipped_bytes),
	JSON("user", "skip_mismatch", cs.skip_mismatch),
	JSON("user", "skip_offset_bytes", cs.skip_offset_bytes),
	BOTH("user.link", "linked_in_process", MH_LINKS, "result", "in_process",
	     ss.link.linked_in_process),
	BOTH("user.link", "linked_peer", MH_LINKS, "result", "peer", ss.link.linked_peer),
	BOTH("user.link", "linked_traceparent", MH_LINKS, "result", "traceparent",
	     ss.link.linked_traceparent),
	BOTH("user.link", "skipped_instrumented", MH_LINKS, "result", "skipped_instrumented",
	     ss.link.skipped_instrumented),
	BOTH("user.link", "skipped_instrumented_server", MH_LINKS, "result",
	     "skipped_instrumented_server", ss.link.skipped_instrumented_server),
	JSON("user.link", "learned_continued", ss.link.learned_continued),
	JSON("user.link", "learned_new_trace", ss.link.learned_new_trace),
	JSON("user.link", "instrumented_procs", ss.link.instrumented_procs),
	BOTH("user.link", "instrumented_evicted", MH_DROPS, "stage", "instrumented_evicted",
	     ss.link.instrumented_evicted),
	BOTH("user.link", "linked_option", MH_LINKS, "result", "tcp_option", ss.link.linked_option),
	JSON("user.link", "option_mismatch", ss.link.option_mismatch),
	JSON("user.link", "option_evicted", ss.link.option_evicted),
	JSON("user.link", "linked_dnat", ss.link.linked_dnat), /* of linked_peer: through a VIP */
	JSON("user.link", "linked_tls_unsequenced", ss.link.linked_tls_unsequenced),
	JSON("user.link", "linked_port_remapped", ss.link.linked_port_remapped),
	JSON("user.link", "dnat_ambiguous", ss.link.dnat_ambiguous),
	JSON("user.link", "dnat_snat_unpaired", ss.link.dnat_snat_unpaired),
	JSON("user.link", "option_derived", ss.link.option_derived),
	JSON("user.link", "option_past_bound", ss.link.option_past_bound),
	JSON("user.link", "option_anchors_evicted", ss.link.option_anchors_evicted),
	JSON("user.link", "requests_held", ss.link.requests),
	METRIC(MH_TABLE_USAGE, "table", "link_requests", ss.link.requests),
	CAPACITY("link_requests", LINK_REQS_MAX),
	JSON("user.link", "requests_evicted", ss.link.requests_evicted), /* done clients first */
	BOTH("user.link", "threads", MH_TABLE_USAGE, "table", "link_threads", ss.link.threads),
	CAPACITY("link_threads", LINK_THREADS_MAX),
	BOTH("user.link", "processes", MH_TABLE_USAGE, "table", "link_processes",
	     ss.link.processes),
	CAPACITY("link_processes", LINK_THREADS_MAX),
	BOTH("user.link", "owners_evicted", MH_DROPS, "stage", "link_owners_evicted",
	     ss.link.owners_evicted),
	BOTH("user.link", "ties", MH_TABLE_USAGE, "table", "link_ties", ss.link.ties),
	CAPACITY("link_ties", LINK_TIES_MAX),
	JSON("user.link", "ties_replaced", ss.link.ties_replaced), /* a fallback rule links then */
	EACH("user.link.unlinked", MH_LINKS, "result", HE_UNLINKED, ss.link.unlinked),
	BOTH("user", "parser_alloc_failed", MH_DROPS, "stage", "parser_alloc_failed",
	     cs.parser_alloc_failed),
	BOTH("user", "parser_budget_full", MH_DROPS, "stage", "parser_budget_full",
	     cs.parser_budget_full),
	BOTH("user", "parser_bytes", MH_TABLE_USAGE, "table", "parser_bytes", cs.parser_bytes),
	CAPACITY("parser_bytes", CONN_PARSER_MEMORY_MAX),
	OWN("user", "l7", json_l7),

	/* tls: probes on TLS libraries and the connections they cover */
	BOTH("tls", "libraries_attached", MH_TABLE_USAGE, "table", "tls_libraries",
	     tls.libraries_attached),
	CAPACITY("tls_libraries", TLS_LIBS_MAX),
	BOTH("tls", "attach_failed", MH_DROPS, "stage", "tls_attach_failed", tls.attach_failed),
	BOTH("tls", "no_symbols", MH_DROPS, "stage", "tls_no_symbols", tls.no_symbols),
	BOTH("tls", "uncovered_processes", MH_DROPS, "stage", "tls_uncovered_process",
	     tls.uncovered_procs),
	BOTH("tls", "uncovered_conns", MH_DROPS, "stage", "tls_uncovered_conn", cs.tls_uncovered),
	JSON("tls", "handshake_conns", cs.tls_handshakes),
	JSON("tls", "plaintext_conns", cs.tls_plaintext),
	BOTH("tls", "plaintext_events", MH_KERNEL_EVENTS, "kind", "tls_plaintext",
	     tls.kernel[MT_TLS_STAT_EVENTS]),
	JSON("tls", "calls", tls.kernel[MT_TLS_STAT_CALLS]),
	JSON("tls", "calls_empty", tls.kernel[MT_TLS_STAT_EMPTY]),
	JSON("tls", "calls_live", tls.calls_live),
	JSON("tls", "procs_live", tls.procs_live),
	JSON("tls", "calls_swept", tls.calls_swept),
	JSON("tls", "wire_events", tls.kernel[MT_TLS_STAT_WIRE]),
	JSON("tls", "writes_early", tls.kernel[MT_TLS_STAT_WRITES_EARLY]),
	JSON("tls", "writes_retried", tls.kernel[MT_TLS_STAT_WRITES_RETRIED]),
	BOTH("tls", "no_socket", MH_DROPS, "stage", "tls_no_socket",
	     tls.kernel[MT_TLS_STAT_NO_SOCK]),
	BOTH("tls", "calls_full", MH_DROPS, "stage", "tls_calls_full",
	     tls.kernel[MT_TLS_STAT_CALLS_FULL]),
	BOTH("tls", "ringbuf_full", MH_DROPS, "stage", "tls_ringbuf_full",
	     tls.kernel[MT_TLS_STAT_RINGBUF_FULL]),
	JSON("tls", "processes_scanned", tls.processes_scanned),
	BOTH("tls", "exec_queue_full", MH_DROPS, "stage", "tls_exec_queue_full",
	     tls.exec_queue_full),
	BOTH("tls", "files_full", MH_DROPS, "stage", "tls_files_full", tls.files_full),
	/* Go crypto/tls (capture/tls_go.h): executables probed, left out and why; uprobe hits */
	BOTH("tls", "go_binaries_attached", MH_TABLE_USAGE, "table", "tls_go_binaries",
	     tls.go.binaries_attached),
	CAPACITY("tls_go_binaries", TLS_GO_BINS_MAX),
	BOTH("tls", "go_stripped", MH_DROPS, "stage", "tls_go_stripped", tls.go.stripped),
	BOTH("tls", "go_old_version", MH_DROPS, "stage", "tls_go_old_version", tls.go.old_version),
	BOTH("tls", "go_decode_failed", MH_DROPS, "stage", "tls_go_decode_failed",
	     tls.go.decode_failed),
	BOTH("tls", "go_attach_failed", MH_DROPS, "stage", "tls_go_attach_failed",
	     tls.go.attach_failed),
	JSON("tls", "go_calls", tls.kernel[MT_TLS_STAT_GO_CALLS]),
	JSON("tls", "go_rets", tls.kernel[MT_TLS_STAT_GO_RETS]),
	JSON("tls", "go_wire_events", tls.kernel[MT_TLS_STAT_GO_WIRE]),

	/* otlp: the trace exporter */
	FLAG("otlp", "enabled", otlp_enabled),
	FLAG("otlp", "sdk_disabled", sdk_disabled),
	JSON("otlp", "spans_received", os.spans_received),
	BOTH("otlp", "spans_exported", MH_SPANS_EXPORTED, NULL, NULL, os.spans_exported),
	BOTH("otlp", "spans_dropped_queue_full", MH_DROPS, "stage", "otlp_queue_full",
	     os.spans_dropped_queue_full),
	BOTH("otlp", "spans_dropped_rejected", MH_DROPS, "stage", "otlp_rejected",
	     os.spans_dropped_rejected),
	BOTH("otlp", "spans_dropped_shutdown", MH_DROPS, "stage", "otlp_shutdown",
	     os.spans_dropped_shutdown),
	METRIC(MH_DROPS, "stage", "otlp_encode", os.spans_dropped_error),
	BOTH("otlp", "spans_dropped_expired", MH_DROPS, "stage", "otlp_retries_expired",
	     os.spans_dropped_expired),
	JSON("otlp", "batches_expired", os.batches_expired),
	JSON("otlp", "responses_malformed", os.responses_malformed),
	JSON("otlp", "batches_sent", os.batches_sent),
	BOTH("otlp", "batches_failed", MH_EXPORT_FAILURES, "signal", "traces", os.batches_failed),
	BOTH("otlp", "retries", MH_EXPORT_RETRIES, NULL, NULL, os.retries),
	JSON("otlp", "bytes_sent", os.bytes_sent),
	BOTH("otlp", "queue_spans", MH_QUEUE_DEPTH, "queue", "otlp_spans", os.queue_spans),
	METRIC(MH_TABLE_USAGE, "table", "otlp_queue", os.queue_spans),
	BOTH("otlp", "queue_max", MH_TABLE_CAPACITY, "table", "otlp_queue", otlp_queue_max),

	/* graph: who calls whom */
	JSON("graph", "spans", gs.spans),
	BOTH("graph", "nodes", MH_TABLE_USAGE, "table", "graph_nodes", gs.nodes),
	CAPACITY("graph_nodes", GRAPH_NODES_MAX),
	BOTH("graph", "edges", MH_TABLE_USAGE, "table", "graph_edges", gs.edges),
	CAPACITY("graph_edges", GRAPH_EDGES_MAX),
	BOTH("graph", "sockets", MH_TABLE_USAGE, "table", "graph_sockets", gs.sockets),
	CAPACITY("graph_sockets", GRAPH_SOCKS_MAX),
	BOTH("graph", "nodes_full", MH_DROPS, "stage", "graph_nodes_full", gs.nodes_full),
	BOTH("graph", "edges_full", MH_DROPS, "stage", "graph_edges_full", gs.edges_full),
	BOTH("graph", "sockets_full", MH_DROPS, "stage", "graph_sockets_full", gs.sockets_full),
	BOTH("graph", "role_unknown", MH_DROPS, "stage", "graph_role_unknown", gs.role_unknown),
	JSON("graph", "unattributed", gs.unattributed),
	JSON("graph", "sockets_idle", gs.sockets_idle),
	JSON("graph", "sockets_closed", gs.sockets_closed),
	JSON("graph", "linger_cut", gs.linger_cut),
	JSON("graph", "late_peer_spans", gs.late_peer_spans),
	BOTH_F64("graph", "span_cost_ns", MH_SPAN_UPDATE_NS, NULL, NULL, span_update_ns),

	/* peers: address -> name (DNS, listeners) */
	BOTH("peers", "dns_kernel_events", MH_KERNEL_EVENTS, "kind", "dns",
	     ext[MT_XSTAT_DNS_EVENTS]),
	JSON("peers", "dns_events", dns_events),
	BOTH("peers", "dns_malformed", MH_DROPS, "stage", "dns_malformed", ps.dns_malformed),
	JSON("peers", "dns_names", ps.dns_names),
	BOTH("peers", "dns_entries", MH_TABLE_USAGE, "table", "dns_names", ps.dns_entries),
	CAPACITY("dns_names", PEERS_DNS_MAX),
	BOTH("peers", "dns_evicted", MH_DROPS, "stage", "dns_names_evicted", ps.dns_evicted),
	BOTH("peers", "listeners", MH_TABLE_USAGE, "table", "listeners", ps.listeners),
	CAPACITY("listeners", PEERS_LISTENERS_MAX),
	BOTH("peers", "listeners_evicted", MH_DROPS, "stage", "listeners_evicted",
	     ps.listeners_evicted),
	JSON("peers", "local_addrs", ps.local_addrs),

	/* dns_spans: DNS lookups as client spans */
	JSON("dns_spans", "queries", ds.queries),
	JSON("dns_spans", "responses", ds.responses),
	JSON("dns_spans", "spans", ds.spans),
	JSON("dns_spans", "paired_by_socket", ds.paired_by_socket),
	JSON("dns_spans", "unanswered", ds.unanswered),
	BOTH("dns_spans", "evicted", MH_DROPS, "stage", "dns_lookups_evicted", ds.evicted),
	JSON("dns_spans", "retransmits", ds.retransmits),
	JSON("dns_spans", "id_reused", ds.id_reused),
	BOTH("dns_spans", "orphan_responses", MH_DROPS, "stage", "dns_orphan_responses",
	     ds.orphan_responses),
	JSON("dns_spans", "malformed", ds.malformed),
	JSON("dns_spans", "no_payload", ds.no_payload),
	JSON("dns_spans", "server_side", ds.server_side),
	BOTH("dns_spans", "pending", MH_TABLE_USAGE, "table", "dns_lookups", ds.pending),
	CAPACITY("dns_lookups", DNSSPANS_PENDING_MAX),

	/* identity: pid -> service */
	BOTH("identity", "proc_kernel_events", MH_KERNEL_EVENTS, "kind", "proc",
	     ext[MT_XSTAT_PROC_EVENTS]),
	JSON("identity", "proc_events", proc_events),
	BOTH("identity", "entries", MH_TABLE_USAGE, "table", "identities", is.entries),
	CAPACITY("identities", IDENTITY_MAX),
	BOTH("identity", "evicted", MH_DROPS, "stage", "identity_evicted", is.evicted),
	JSON("identity", "evicted_live", is.evicted_live),
	JSON("identity", "exits", is.exits),
	JSON("identity", "execs", is.execs),
	JSON("identity", "births", is.births),
	JSON("identity", "kept", is.kept),
	BOTH("identity", "exec_env_truncated", MH_DROPS, "stage", "exec_env_truncated",
	     ext[MT_XSTAT_EXEC_ENV_TRUNC]),
	BOTH("identity", "exec_env_unreadable", MH_DROPS, "stage", "exec_env_unreadable",
	     ext[MT_XSTAT_EXEC_ENV_FAULT]),
	JSON("identity", "resolved", is.resolved),

	/* trace_store: recent traces for the page (empty without a listener) */
	BOTH("trace_store", "traces", MH_TABLE_USAGE, "table", "trace_store_traces", store_traces),
	CAPACITY("trace_store_traces", TRACESTORE_TRACES_MAX),
	BOTH("trace_store", "spans", MH_TABLE_USAGE, "table", "trace_store_spans", store_spans),
	CAPACITY("trace_store_spans", TRACESTORE_SPANS_MAX),
	JSON("trace_store", "traces_added", ts.traces_added),
	JSON("trace_store", "spans_added", ts.spans_added),
	JSON("trace_store", "traces_evicted", ts.traces_evicted),
	BOTH("trace_store", "spans_dropped_trace_full", MH_DROPS, "stage", "trace_store_trace_full",
	     ts.spans_dropped_trace),
	/* k8s: Kubernetes names from the runtime's CRI socket */
	JSON("k8s", "enabled", ks.enabled),
	JSON("k8s", "connected", ks.connected),
	BOTH("k8s", "entries", MH_TABLE_USAGE, "table", "k8s_containers", ks.entries),
	CAPACITY("k8s_containers", K8S_MAX),
	JSON("k8s", "lookups", ks.lookups),
	JSON("k8s", "resolved", ks.resolved),
	BOTH("k8s", "failed", MH_DROPS, "stage", "k8s_lookup_failed", ks.failed),
	JSON("k8s", "not_found", ks.not_found),
	BOTH("k8s", "full", MH_DROPS, "stage", "k8s_full", ks.full),
	JSON("k8s", "dropped", ks.dropped),
	JSON("k8s", "warmed", ks.warmed),
	JSON("k8s", "calls", ks.calls),
	JSON("k8s", "call_failures", ks.call_failures),
	JSON("k8s", "lookup_ns_total", ks.lookup_ns_total),
	BOTH("k8s", "pods", MH_TABLE_USAGE, "table", "k8s_pods", ks.pods),
	CAPACITY("k8s_pods", K8S_PODS_MAX),
	JSON("k8s", "pod_hits", ks.pod_hits),
	JSON("k8s", "pod_misses", ks.pod_misses),
	JSON("k8s", "pod_lists", ks.pod_lists),
	JSON("k8s", "pod_early_lists", ks.pod_early_lists),
	JSON("k8s", "pod_statuses", ks.pod_statuses),
	JSON("k8s", "pods_gone", ks.pods_gone),
	BOTH("k8s", "pods_full", MH_DROPS, "stage", "k8s_pods_full", ks.pods_full),
	JSON("k8s", "pod_list_ns_total", ks.pod_list_ns_total),
	JSON("k8s", "pod_status_ns_total", ks.pod_status_ns_total),

	/* metrics: the http.* series and their export */
	BOTH("metrics", "series", MH_TABLE_USAGE, "table", "metric_series", ms.series),
	CAPACITY("metric_series", METRICS_SERIES_MAX),
	BOTH("metrics", "series_full", MH_DROPS, "stage", "metric_series_full", ms.series_full),
	JSON("metrics", "otlp_exports", ms.otlp_exports),
	JSON("metrics", "scrapes", ms.scrapes),
	JSON("metrics", "metrics_requests_sent", os.metrics_requests_sent),
	BOTH("metrics", "metrics_requests_dropped", MH_DROPS, "stage", "metrics_requests",
	     os.metrics_requests_dropped),
	METRIC(MH_EXPORT_FAILURES, "signal", "metrics", os.metrics_requests_dropped),

	/* listener: the agent's own page, /metrics and API */
	JSON("listener", "accepted", hs.accepted),
	JSON("listener", "requests", hs.requests),
	JSON("listener", "bad_requests", hs.bad_requests),
	BOTH("listener", "rejected_full", MH_DROPS, "stage", "listener_full", hs.rejected_full),
	BOTH("listener", "timed_out", MH_DROPS, "stage", "listener_timed_out", hs.timed_out),
	BOTH("listener", "clients", MH_TABLE_USAGE, "table", "listener_clients", hs.clients),
	CAPACITY("listener_clients", HTTPD_CLIENTS_MAX),

	/* the agent process itself */
	METRIC_F64(MH_PROCESS_CPU, "cpu.mode", "user", cpu_user_s),
	METRIC_F64(MH_PROCESS_CPU, "cpu.mode", "system", cpu_system_s),
	METRIC_F64(MH_PROCESS_MEMORY, NULL, NULL, rss_bytes),
};

/* The agent's own CPU time and resident memory, from /proc/self. */
static void read_process(struct health_snap *s)
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
		s->cpu_user_s = (double)utime / ticks;
		s->cpu_system_s = (double)stime / ticks;
	}
	s->rss_bytes = (double)rss_pages * page;
}

static void snapshot(struct agent *a, struct health_snap *s, bool process)
{
	memset(s, 0, sizeof(*s));
	capture_read_counters(a->capture, &s->kc);
	capture_read_ext_counters(a->capture, s->ext);
	capture_read_xnode_counters(a->capture, s->xnode);
	conn_table_stats(a->conns, &s->cs);
	span_builder_stats(a->spans, &s->ss);
	if (a->otlp)
		otlp_exporter_stats(a->otlp, &s->os);
	graph_stats(a->graph, &s->gs);
	peers_stats(a->peers, &s->ps);
	metrics_stats(a->metrics, &s->ms);
	identity_stats(a->identity, &s->is);
	if (a->k8s)
		k8s_stats(a->k8s, &s->ks);
	dnsspans_stats(a->dns_spans, &s->ds);
	if (a->httpd)
		httpd_stats(a->httpd, &s->hs);
	if (a->traces)
		tracestore_stats(a->traces, &s->ts);
	s->store_traces = s->ts.traces;
	s->store_spans = s->ts.spans;
	s->otlp_queue_max = a->otlp ? a->otlp_cfg.queue_max_spans : 0;
	capture_tls_stats(a->capture, &s->tls);
	s->events = a->events;
	s->bad_events = a->bad_events;
	s->mute_failed = a->mute_failed;
	s->drains = a->drains;
	s->drain_ms_total = a->drain_ns_total / 1000000;
	s->drain_us_max = a->drain_ns_max / 1000;
	s->drains_over_1ms = a->drains_over_1ms;
	s->drains_over_5ms = a->drains_over_5ms;
	if (a->tailkeep)
		tailkeep_stats(a->tailkeep, &s->tk);
	s->spans_sampled = a->spans_sampled;
	s->spans_sampled_out = a->spans_sampled_out + s->tk.spans_dropped;
	s->sampler = mt_sampler_name(&a->sampler);
	s->dns_events = a->dns_events;
	s->proc_events = a->proc_events;
	s->max_conns = a->opts.max_conns;
	s->span_update_ns =
		s->gs.update_ns_count ? (double)s->gs.update_ns_sum / s->gs.update_ns_count : 0;
	if (process)
		read_process(s);
	s->capture_mode = capture_mode_name(a->capture);
	s->cpu_priority = cli_cpu_priority_name(a->opts.priority);
	s->otlp_enabled = a->otlp != NULL;
	s->sdk_disabled = a->sdk_disabled;
}

/* How many values the row stands for. */
static unsigned row_count(const struct health_row *r)
{
	switch (r->each) {
	case HE_DROP_REASON:
		return MT_DROP__MAX;
	case HE_UNLINKED:
		return LINK__MAX;
	default:
		return 1;
	}
}

/* The name of the @i-th value of a row: its JSON key, and its attribute's value. */
static const char *row_name(const struct health_row *r, unsigned i, const char *one)
{
	switch (r->each) {
	case HE_DROP_REASON:
		return capture_drop_name(i);
	case HE_UNLINKED:
		return linker_unlinked_name(i);
	default:
		return one;
	}
}

/* The @i-th value of a row as a whole number (a mean is cut to its integer part). */
static uint64_t row_u64(const struct health_row *r, const struct health_snap *s, unsigned i)
{
	const char *p = (const char *)s + r->off;
	uint64_t u;
	double d;

	switch (r->value) {
	case HV_CONST:
		return r->konst;
	case HV_F64:
		memcpy(&d, p, sizeof(d));
		return (uint64_t)d;
	default:
		memcpy(&u, p + i * sizeof(uint64_t), sizeof(u));
		return u;
	}
}

static double row_value(const struct health_row *r, const struct health_snap *s, unsigned i)
{
	double d;

	if (r->value != HV_F64)
		return (double)row_u64(r, s, i);
	memcpy(&d, (const char *)s + r->off, sizeof(d));
	return d;
}

void health_collect(struct agent *a)
{
	struct metrics_health *h = &a->health;
	struct health_snap s;

	static bool told;
	unsigned points = 0;

	snapshot(a, &s, true);
	metrics_health_reset(h);
	for (size_t k = 0; k < ARRAY_SIZE(rows); k++) {
		const struct health_row *r = &rows[k];

		if (r->family < 0)
			continue;
		for (unsigned i = 0; i < row_count(r); i++, points++)
			metrics_health_add(h, r->family, r->attr, row_name(r, i, r->attr_value),
					   row_value(r, &s, i));
	}
	/* A row past the array's end would vanish from /metrics without a word: say so once. */
	if (points > METRICS_HEALTH_MAX && !told) {
		mt_err("health table has %u metric points, METRICS_HEALTH_MAX is %u: raise it",
		       points, (unsigned)METRICS_HEALTH_MAX);
		told = true;
	}
}

/* Number of dot-separated parts of @path ("" has none). */
static unsigned path_depth(const char *path)
{
	unsigned n = *path ? 1 : 0;

	for (; *path; path++)
		n += *path == '.';
	return n;
}

/* The @n-th dot-separated part of @path: where it starts, and its length in *@len. */
static const char *path_part(const char *path, unsigned n, size_t *len)
{
	while (n--)
		path += strcspn(path, ".") + 1;
	*len = strcspn(path, ".");
	return path;
}

/* Closes and opens objects so that @j, now in the object at @from, is in the one at @to. */
static void move_to(struct mt_json *j, const char *from, const char *to)
{
	unsigned df = path_depth(from), dt = path_depth(to), common = 0;
	char key[64];

	for (; common < df && common < dt; common++) {
		size_t nf, nt;
		const char *pf = path_part(from, common, &nf), *pt = path_part(to, common, &nt);

		if (nf != nt || memcmp(pf, pt, nf) != 0)
			break;
	}
	for (unsigned d = df; d > common; d--)
		mt_json_obj_close(j);
	for (unsigned d = common; d < dt; d++) {
		size_t n;
		const char *p = path_part(to, d, &n);

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		mt_json_key(j, key);
		mt_json_obj_open(j);
	}
}

int health_write_json(struct agent *a, struct mt_buf *b)
{
	struct health_snap s;
	const char *at = "";
	struct mt_json j;

	snapshot(a, &s, false);
	mt_json_init(&j, b);
	mt_json_obj_open(&j);
	for (size_t k = 0; k < ARRAY_SIZE(rows); k++) {
		const struct health_row *r = &rows[k];
		const char *p = (const char *)&s + r->off;

		if (!r->obj)
			continue;
		move_to(&j, at, r->obj);
		at = r->obj;
		for (unsigned i = 0; i < row_count(r); i++) {
			mt_json_key(&j, row_name(r, i, r->key));
			switch (r->value) {
			case HV_STR:
				mt_json_str(&j, *(const char *const *)(const void *)p);
				break;
			case HV_BOOL:
				mt_json_bool(&j, *(const bool *)(const void *)p);
				break;
			case HV_JSON:
				r->json(&j, &s);
				break;
			default:
				mt_json_u64(&j, row_u64(r, &s, i));
			}
		}
	}
	move_to(&j, at, "");
	mt_json_obj_close(&j);
	return mt_json_err(&j);
}

/* Per CPU, for the drop reasons that happened at all. */
static void json_drops_per_cpu(struct mt_json *j, const struct health_snap *s)
{
	mt_json_obj_open(j);
	for (int i = 0; i < MT_DROP__MAX; i++) {
		if (!s->kc.drops[i])
			continue;
		mt_json_key(j, capture_drop_name(i));
		mt_json_arr_open(j);
		for (int cpu = 0; cpu < s->kc.ncpus; cpu++)
			mt_json_u64(j, s->kc.drops_cpu[i][cpu]);
		mt_json_arr_close(j);
	}
	mt_json_obj_close(j);
}

/* Per protocol parser, for HTTP/1 always and the others once they saw anything. */
static void json_l7(struct mt_json *j, const struct health_snap *s)
{
	mt_json_obj_open(j);
	for (int p = 1; p < MT_PROTO__MAX; p++) {
		const struct l7_stats *l = &s->cs.l7[p];

		if (p != MT_PROTO_HTTP1 && !l->requests && !l->responses && !l->garbage_bytes)
			continue;
		mt_json_key(j, l7_protocol_name((uint8_t)p));
		mt_json_obj_open(j);
		mt_json_key_u64(j, "requests", l->requests);
		mt_json_key_u64(j, "responses", l->responses);
		mt_json_key_u64(j, "exchanges", l->exchanges);
		mt_json_key_u64(j, "garbage_bytes", l->garbage_bytes);
		mt_json_key_u64(j, "resyncs", l->resyncs);
		mt_json_key_u64(j, "pipeline_drops", l->pipeline_drops);
		mt_json_key_u64(j, "orphan_responses", l->orphan_responses);
		mt_json_key_u64(j, "state_lost", l->state_lost);
		mt_json_key_u64(j, "responses_unseen", l->responses_unseen);
		mt_json_obj_close(j);
	}
	mt_json_obj_close(j);
}
