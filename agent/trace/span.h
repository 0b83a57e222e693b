/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A finished span: what the span stage hands to every exporter. Self-contained
 * (no pointers), so exporters may copy it into their batches as is.
 */
#ifndef MESHTRACE_SPAN_H
#define MESHTRACE_SPAN_H

#include <stdint.h>

#include "bpf/capture.h"
#include "agent/identity/identity.h"
#include "agent/protocols/l7.h"

#define MT_ADDR_STR_MAX 46 /* INET6_ADDRSTRLEN */

/* Values are OTLP's Span.SpanKind. */
enum mt_span_kind {
	MT_SPAN_SERVER = 2,
	MT_SPAN_CLIENT = 3,
};

/* Values are OTLP's Status.StatusCode. */
enum mt_status {
	MT_STATUS_UNSET = 0,
	MT_STATUS_OK = 1,
	MT_STATUS_ERROR = 2,
};

struct mt_span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8]; /* all zero: a root span */
	uint8_t kind;		   /* enum mt_span_kind */
	uint8_t status;		   /* enum mt_status */
	uint8_t protocol;	   /* enum mt_protocol */
	uint8_t http_minor;	   /* network.protocol.version "1.<minor>" */
	uint16_t http_status;	   /* 0 when no response was seen */
	uint16_t server_port;
	uint16_t client_port;
	uint16_t peer_port;
	uint32_t flags; /* enum mt_exchange_flags of the exchange */
	uint64_t start_unix_ns;
	uint64_t end_unix_ns;
	uint64_t req_body_bytes;
	uint64_t resp_body_bytes;
	struct mt_resource resource;
	char name[MT_OPERATION_MAX]; /* HTTP: "{method}" or "HTTP"; else the operation */
	char method[MT_METHOD_MAX];
	char path[MT_TARGET_MAX];  /* url.path; the query too only when the user opts in */
	char query[MT_TARGET_MAX]; /* url.query, "" unless the user opts in */
	char scheme[8];		   /* url.scheme */
	char server_address[MT_HOST_MAX];
	char client_address[MT_ADDR_STR_MAX];
	char peer_address[MT_ADDR_STR_MAX]; /* network.peer.address */
	char tracestate[MT_TRACESTATE_MAX];
	/* Databases, caches, RPC: copied from struct mt_exchange ("" when unused). */
	char operation[MT_OPERATION_MAX];
	char db_namespace[MT_NAMESPACE_MAX];
	char query_text[MT_QUERY_MAX];
	char status_text[MT_STATUS_TEXT_MAX];
	/* The socket the exchange travelled on, as its own process saw it (the graph stage's key). */
	uint64_t sock;	       /* struct sock address */
	struct mt_tuple tuple; /* addresses v4-mapped, ports in host order */
	/* DNS: copied from struct mt_exchange (name in query_text, rcode name in status_text). */
	uint16_t dns_qtype;
	uint16_t dns_answers;
	uint8_t dns_rcode;
	/* The trace came from a remote parent (a W3C traceparent): the sampled flag to follow. */
	uint8_t trace_remote; /* 1: trace_flags are that parent's */
	uint8_t trace_flags;  /* W3C trace-flags, 0x01 sampled */
	/* No span of this node is its parent: the trace ends here on this node (tail keep). */
	uint8_t local_root;
	/* The process's OpenTelemetry SDK reports this side: counted (graph, metrics), not exported. */
	uint8_t sdk_reported;
	/*
	 * A CLIENT span to a pod IP of this node: a handle into the k8s pods
	 * table (agent/identity/k8s_pods.h), which the exporters turn into
	 * peer.service and the peer's k8s attributes. 0: none.
	 */
	uint16_t peer_pod;
	uint16_t peer_pod_gen;
	/*
	 * The client dialled an address translated (DNAT) to a server on this
	 * node and the two sides were paired (docs/tracing.md): set on both.
	 * A client span's peer_address/peer_port are then the server it reached;
	 * the address it dialled is kept in vip_*. The graph names the real
	 * server from nat_server_*, the client's socket from vip_*.
	 */
	uint8_t nat_paired;
	uint16_t vip_port;
	uint16_t nat_server_port;
	/*
	 * A server span whose client's source port conntrack changed (the linker paired them
	 * by sequence): the client's own port, where the graph finds its socket; 0 when not.
	 */
	uint16_t nat_client_port;
	uint8_t vip_addr[16];		   /* v4-mapped */
	uint8_t nat_server_addr[16];	   /* v4-mapped */
	char vip_address[MT_ADDR_STR_MAX]; /* meshtrace.vip.address */
};

#endif /* MESHTRACE_SPAN_H */
