/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The graph stage: who calls whom. Spans and TCP events in; a table of
 * nodes (services on this node, peers outside it, "user") and edges
 * (client, server, protocol) with their counts and histograms out, read by
 * the metrics exporters and the JSON API.
 *
 * What is counted where, so that a call seen at both ends counts once:
 *  - requests: from the SERVER span when the server process is on this node,
 *    else from the CLIENT span;
 *  - failed: from the CLIENT span when the client is on this node (its view
 *    of failure is the wider one: 4xx too), else from the SERVER span. This
 *    is what the collector's servicegraph connector counts for a span pair;
 *  - latency: the client-side histogram from CLIENT spans, the server-side
 *    one from SERVER spans (a side not observed stays empty);
 *  - bytes, connects, connect failures and connect latency: from the client's
 *    socket when the client is on this node, else from the server's socket;
 *  - retransmits: from every socket of the edge on this node.
 * TCP counts of a socket join the edge of the protocol its spans carry; a
 * socket with no span by its close (or GRAPH_DECIDE_NS after it was first
 * seen) joins the pair's existing edge of a parsed protocol if there is one,
 * else a "tcp" edge. A closed socket whose far end nothing here names waits
 * GRAPH_LINGER_NS for a late span first (only a span tells a VIP's real server).
 *
 * Naming: a service is its process's service.name (identity). The server of
 * a connection is the local process at its far end (the socket of the other
 * end, else the listener learned for that address and port), else the pod of
 * this node at that IP (its namespace and service.name, identity's k8s_pods),
 * else the name a DNS answer gave the address, else "ip:port". A client not on
 * this node is the pod at its address, else its address's DNS name, else "user" (the servicegraph connector's name for
 * an uninstrumented caller). Edges to or from a node outside this one have
 * connection_type "virtual_node", database protocols "database".
 *
 * Bounded: GRAPH_NODES_MAX nodes, GRAPH_EDGES_MAX edges, GRAPH_SOCKS_MAX
 * sockets. What does not fit is dropped and counted (graph_stats).
 * Single-threaded; no allocation after graph__new.
 */
#ifndef MESHTRACE_GRAPH_H
#define MESHTRACE_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "bpf/capture.h"
#include "agent/common/buf.h"
#include "agent/identity/identity.h"
#include "agent/identity/peers.h"
#include "agent/trace/span.h"

#define GRAPH_NODES_MAX	     1024
#define GRAPH_EDGES_MAX	     2048
#define GRAPH_SOCKS_MAX	     16384
#define GRAPH_NAME_MAX	     256
#define GRAPH_WORKLOAD_MAX   144		    /* "statefulset/" + a name of K8S_OBJ_MAX */
#define GRAPH_SERVICE_PIDS   8			    /* pids listed per service */
#define GRAPH_DECIDE_NS	     (2ull * 1000000000ull) /* a socket's protocol, at the latest */
#define GRAPH_SOCK_IDLE_NS   (600ull * 1000000000ull)
#define GRAPH_SLOT_NS	     (10ull * 1000000000ull) /* sliding window: slots of 10 s ... */
#define GRAPH_WINDOW_SLOTS   6			     /* ... the last 5 and the current one */
#define GRAPH_LATENCY_BOUNDS 16
#define GRAPH_CONNECT_BOUNDS 12

/*
 * A closed socket still names its peer's late spans this long: a server's
 * span can come after its client closed (graph_on_conn). Its slot is taken
 * back sooner when a new socket needs it.
 */
#define GRAPH_LINGER_NS (1ull * 1000000000ull)

/* The servicegraph connector's default latency buckets, seconds. */
extern const double graph_latency_bounds[GRAPH_LATENCY_BOUNDS];
/* Connect latency buckets, seconds. */
extern const double graph_connect_bounds[GRAPH_CONNECT_BOUNDS];

enum graph_node_kind {
	GRAPH_NODE_SERVICE = 0,	 /* a process on this node */
	GRAPH_NODE_EXTERNAL = 1, /* a peer named by DNS or address */
	GRAPH_NODE_USER = 2,	 /* a caller from outside with no name */
};

enum graph_conn_type {
	GRAPH_CT_NONE = 0,
	GRAPH_CT_DATABASE = 1,
	GRAPH_CT_MESSAGING = 2,
	GRAPH_CT_VIRTUAL_NODE = 3,
	GRAPH_CT_TLS = 4, /* a "tcp" edge of TLS connections whose plaintext no probe covers */
};

/* A cumulative histogram over one of the bound lists above. */
struct graph_hist {
	uint64_t count;
	double sum; /* seconds */
	uint64_t buckets[GRAPH_LATENCY_BOUNDS + 1];
};

/*
 * The latest span that fell in one histogram bucket: an exemplar, as
 * OpenMetrics and OTLP carry it (trace and span id, the value, when). One per
 * bucket, overwritten by the next (no reservoir sampling: the newest trace is
 * the one a scraper has not seen yet). unix_ns 0: none yet.
 */
struct graph_exemplar {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint64_t unix_ns; /* the span's end */
	double value;	  /* seconds */
};

/* Records @s (its duration @value) as the exemplar @ex. */
void graph_exemplar_set(struct graph_exemplar *ex, const struct mt_span *s, double value);

/* One slot of the sliding window (counts only, the histograms' buckets included). */
struct graph_slot {
	uint64_t epoch; /* slot number (time / GRAPH_SLOT_NS) these counts belong to */
	uint32_t requests;
	uint32_t failed;
	uint32_t client[GRAPH_LATENCY_BOUNDS + 1];
	uint32_t server[GRAPH_LATENCY_BOUNDS + 1];
	uint32_t connect[GRAPH_CONNECT_BOUNDS + 1];
};

struct graph_node {
	char name[GRAPH_NAME_MAX];
	/*
	 * The service's Kubernetes namespace ("" outside Kubernetes, and for
	 * peers and users): with the name, the node's key, so `checkout` in
	 * `shop` and in `staging` are two nodes.
	 */
	char namespace_name[64];
	/*
	 * The Kubernetes workload behind the service, "<kind>/<name>"
	 * ("deployment/checkout"), "" when none is known: from the process's
	 * container (identity's k8s names) or the pod at a peer's IP.
	 */
	char workload[GRAPH_WORKLOAD_MAX];
	uint8_t kind; /* enum graph_node_kind */
	uint8_t npids;
	uint32_t pids[GRAPH_SERVICE_PIDS];
	/* As a server, from its SERVER spans: the service's own RED. */
	uint64_t served;
	uint64_t served_failed;
	struct graph_hist served_latency;
	struct graph_slot slots[GRAPH_WINDOW_SLOTS];
	uint64_t last_ns;
};

struct graph_edge {
	uint32_t client; /* node index */
	uint32_t server;
	uint8_t protocol;	 /* enum mt_protocol; MT_PROTO_UNKNOWN is "tcp" */
	uint8_t connection_type; /* enum graph_conn_type */
	uint64_t requests;
	uint64_t failed;
	struct graph_hist client_latency;
	struct graph_hist server_latency;
	/* Exemplars of the two histograms above, per bucket (graph_on_span_exemplar). */
	struct graph_exemplar client_exemplars[GRAPH_LATENCY_BOUNDS + 1];
	struct graph_exemplar server_exemplars[GRAPH_LATENCY_BOUNDS + 1];
	uint64_t bytes_sent;	 /* client -> server */
	uint64_t bytes_received; /* server -> client */
	uint64_t connects;
	uint64_t connect_failures;
	uint64_t retransmits;
	struct graph_hist connect_latency; /* over graph_connect_bounds */
	struct graph_slot slots[GRAPH_WINDOW_SLOTS];
	uint64_t last_ns;
	/*
	 * "addr:port" its clients dialled when a translation (DNAT, a Service
	 * VIP) took them to this server, the latest seen; "" for direct calls.
	 */
	char vip[64];
};

struct graph_stats {
	uint64_t spans;		 /* spans seen */
	uint64_t nodes;		 /* nodes in the table */
	uint64_t edges;		 /* edges in the table */
	uint64_t sockets;	 /* sockets tracked now (open; closed ones kept a moment are not) */
	uint64_t nodes_full;	 /* updates dropped: node table full */
	uint64_t edges_full;	 /* updates dropped: edge table full */
	uint64_t sockets_full;	 /* sockets not tracked: socket table full */
	uint64_t role_unknown;	 /* sockets whose side could not be told: not counted */
	uint64_t unattributed;	 /* TCP events for sockets never seen (retransmits of old ones) */
	uint64_t sockets_idle;	 /* sockets dropped after GRAPH_SOCK_IDLE_NS without activity */
	uint64_t sockets_closed; /* closed sockets kept GRAPH_LINGER_NS for late spans, now */
	uint64_t linger_cut;	 /* closed sockets let go early: a new socket needed the slot */
	uint64_t late_peer_spans; /* spans whose peer's socket had closed (named all the same) */
	uint64_t update_ns_sum;	  /* time spent in graph_on_span, for the cost figure */
	uint64_t update_ns_count;
};

struct graph;

/*
 * @id and @peers are borrowed (identity names processes, peers names
 * addresses). NULL on allocation failure.
 */
struct graph *graph__new(struct identity *id, struct peers *peers);
void graph__free(struct graph *g);

/* Kernel timestamps are CLOCK_MONOTONIC; the JSON says unix time = ts + offset. */
void graph_set_clock(struct graph *g, int64_t offset_ns);

/* A finished span (call at the span stage's output). */
void graph_on_span(struct graph *g, const struct mt_span *s);
/*
 * The same, and when @exemplar the span becomes the exemplar of the latency
 * bucket it falls in (the caller decides: only spans whose trace is exported).
 */
void graph_on_span_exemplar(struct graph *g, const struct mt_span *s, bool exemplar);
/* A data event on a TCP socket: call BEFORE the connection stage sees it. */
void graph_on_data(struct graph *g, const struct mt_data_event *ev);
/* A TCP state event: call AFTER the connection stage saw it. */
void graph_on_conn(struct graph *g, const struct mt_conn_event *ev);
/* A process exited: it leaves its services' pid lists. */
void graph_on_exit(struct graph *g, uint32_t pid);

/* Settles sockets whose protocol is overdue and drops idle ones; about once a second. */
void graph_tick(struct graph *g, uint64_t now_ns);

/* Settles every socket still waiting for its protocol (before a final export). */
void graph_flush(struct graph *g, uint64_t now_ns);

/* Read access for the exporters: indexes 0 .. count-1, stable for the graph's life. */
uint32_t graph_node_count(const struct graph *g);
uint32_t graph_edge_count(const struct graph *g);
const struct graph_node *graph_node_at(const struct graph *g, uint32_t i);
const struct graph_edge *graph_edge_at(const struct graph *g, uint32_t i);

/* "", "database", "messaging_system", "virtual_node", "tls". */
const char *graph_conn_type_name(uint8_t connection_type);
/* "service", "external", "user". */
const char *graph_node_kind_name(uint8_t kind);

/*
 * Sums the sliding window of @slots into @out at @now_ns (slots older than
 * the window are skipped). Returns the window's length in seconds, at most
 * (GRAPH_WINDOW_SLOTS - 1) * slot + the current slot's elapsed part, and no
 * more than the time since the graph started.
 */
double graph_window(const struct graph *g, const struct graph_slot *slots, uint64_t now_ns,
		    struct graph_slot *out);

/*
 * Estimates the @q quantile (0..1) in seconds from bucket counts over
 * @bounds (n bounds, n + 1 buckets), interpolating linearly inside a bucket
 * as Prometheus' histogram_quantile does. 0 when the buckets are empty.
 */
double graph_quantile(const double *bounds, unsigned n, const uint32_t *buckets, double q);
double graph_quantile64(const double *bounds, unsigned n, const uint64_t *buckets, double q);

/*
 * Writes the /api/graph document (see docs/architecture.md) for @now_ns
 * (CLOCK_MONOTONIC). Returns 0 or -ENOMEM (buffer limit reached).
 */
int graph_write_json(const struct graph *g, struct mt_buf *b, uint64_t now_ns);

void graph_stats(const struct graph *g, struct graph_stats *out);

#endif /* MESHTRACE_GRAPH_H */
