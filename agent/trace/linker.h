/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trace linking: gives each request its trace context while it is in flight,
 * so that calls join into whole traces without changes to the applications.
 *
 * - In-process: a CLIENT request becomes the child of the SERVER request its
 *   thread is handling, decided in this order:
 *   1. its connection was opened by a connect() made right after the thread
 *      read that server request (event loops such as nginx, which connect
 *      upstream in the turn that read the request);
 *   2. the thread has exactly one server request in flight (thread per
 *      request);
 *   3. all of the thread's in-flight server requests arrived on one HTTP/1
 *      connection (pipelining, served in order): the oldest;
 *   4. the thread's previous I/O was on the socket of its newest in-flight
 *      server request (a keep-alive upstream written in the same turn);
 *   5. the thread has none in flight and its process exactly one (work
 *      handed to another thread).
 *   Everything else is counted as ambiguous, never guessed.
 * - Across processes on this node: the CLIENT request on one end of a TCP
 *   connection and the SERVER request on the other are the same call when
 *   they start at the same TCP sequence number of the same flow. When the
 *   client dialled an address translated to the server's (a Service VIP,
 *   DNAT without SNAT), the flows differ only in the server's address or
 *   port: the two are paired by client address, port and sequence number
 *   when exactly one candidate matches (several: counted, not paired).
 * - W3C trace context: an incoming traceparent is used when no client span of
 *   this node matches; a client request that already carries a traceparent
 *   of its own (an instrumented client) gets no agent span, so no side of a
 *   call is reported twice.
 * - Instrumented servers: a process whose call, made for a server request,
 *   carries a traceparent that request did not bring (the same trace with
 *   another parent id: its SDK made a span in between; or a trace begun
 *   where the request brought none) reports its server spans itself. It is
 *   remembered (pid and program name, until it exits or execs) and its server
 *   requests get no agent span from then on, that one included.
 *
 * Bounded: at most LINK_REQS_MAX requests in flight and LINK_THREADS_MAX
 * threads are tracked; overflow evicts the oldest and is counted.
 */
#ifndef MESHTRACE_LINKER_H
#define MESHTRACE_LINKER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/conn/conn.h"
#include "agent/protocols/l7.h"
#include "bpf/sockops.h"

#define LINK_REQS_MAX	     16384
#define LINK_THREADS_MAX     8192
#define LINK_TIES_MAX	     4096 /* connections tied at connect() to a server request */
#define LINK_THREAD_INFLIGHT 8	  /* server requests remembered per thread */
#define LINK_REQ_TTL_NS	     (600ull * 1000000000ull) /* in flight longer: forgotten */
#define LINK_SDK_PROCS_MAX   1024 /* processes known to report their own server spans */
#define LINK_XCTX_MAX	     4096 /* kernel contexts waiting for their request (--propagate) */
#define LINK_XANCHOR_MAX     4096 /* sockets' last option, for the burst's later requests */

enum link_unlinked {
	LINK_NO_SERVER_CONTEXT = 0, /* client call made outside any server request: a root */
	LINK_AMBIGUOUS_THREAD,	    /* several server requests in flight on the thread */
	LINK_AMBIGUOUS_PROCESS,	    /* none on the thread, several in the process */
	LINK_PEER_NOT_SEEN,    /* server request from a local peer whose request was not seen */
	LINK_EXTERNAL_CALLER,  /* server request from outside the node without traceparent */
	LINK_NO_REQUEST_STAGE, /* exchange completed with no request-time context */
	LINK_TABLE_FULL,       /* context evicted before the exchange completed */
	LINK__MAX,
};

struct link_stats {
	uint64_t linked_in_process;    /* client spans given a parent server span */
	uint64_t linked_peer;	       /* server spans given a parent client span on this node */
	uint64_t linked_traceparent;   /* server spans given their parent by W3C traceparent */
	uint64_t skipped_instrumented; /* client spans not emitted: the client is instrumented */
	uint64_t
		skipped_instrumented_server; /* server spans not emitted: its process reports them */
	uint64_t learned_continued;	     /* evidence: a call continued the request's trace */
	uint64_t learned_new_trace; /* evidence: a call began a trace the request did not bring */
	uint64_t instrumented_evicted; /* known instrumented processes forgotten: table full */
	uint64_t linked_option;	       /* server spans given their parent by a TCP option */
	uint64_t option_mismatch;      /* client spans whose sent option named another trace */
	uint64_t option_evicted;       /* kernel contexts overwritten before their request came */
	uint64_t linked_dnat; /* of linked_peer: the client dialled a translated address (VIP) */
	uint64_t linked_port_remapped; /* of linked_peer: conntrack gave the call another port */
	uint64_t dnat_ambiguous;       /* several requests matched a translated call: not paired */
	uint64_t dnat_snat_unpaired;   /* same seq, another source (SNAT): not paired */
	uint64_t linked_tls_unsequenced; /* of linked_peer: TLS read with no ciphertext, by flow */
	uint64_t option_derived;	 /* requests given ids derived from their burst's option */
	uint64_t option_past_bound;	 /* server requests after a burst's bound: not derived */
	uint64_t option_anchors_evicted; /* a socket's last option forgotten for another's */
	uint64_t unlinked[LINK__MAX];
	uint64_t requests; /* requests held now (in flight, or done clients awaiting a server) */
	uint64_t requests_evicted; /* slots taken back because the table was full */
	uint64_t threads;   /* thread entries in use (a process's main thread freed at its exit) */
	uint64_t processes; /* process entries in use */
	uint64_t owners_evicted;     /* thread or process entries replaced: their window was full */
	uint64_t ties;		     /* connect() ties held now */
	uint64_t ties_replaced;	     /* ties overwritten before they were used */
	uint64_t instrumented_procs; /* processes known now to report their own server spans */
};

/*
 * A call whose client dialled an address that was translated (DNAT) to a
 * server on this node, paired by linker: both sides carry it.
 */
struct link_nat {
	uint8_t vip[16];    /* the address the client dialled (v4-mapped) */
	uint8_t server[16]; /* the server's address it reached */
	uint16_t vip_port;
	uint16_t server_port;
	/*
	 * Server side: the client's own source port when conntrack gave the call another one
	 * (a port still held in its table by an earlier translated call), 0 when not: where
	 * the client's socket is found. Set with or without @paired.
	 */
	uint16_t client_port;
	bool paired; /* false: no address translation seen, the fields above are zero */
};

/* The trace context of one side of one call. */
struct link_ids {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8]; /* zero: a root */
	bool emit;	     /* false: the process's SDK reports this side, not ours to send */
	bool remote;	     /* the trace came in a W3C traceparent (adopted, or a peer's) */
	uint8_t trace_flags; /* remote: that traceparent's trace-flags (0x01 sampled) */
	/*
	 * No span of this node is the parent: a root, or a parent on another node
	 * (traceparent, TCP option) or in an SDK. Its end is the end of the trace
	 * on this node, as far as this span's subtree goes.
	 */
	bool local_root;
	struct link_nat nat; /* the call went through a translated address */
};

struct linker;

/* @seed: 32 bytes of randomness for ids. NULL on allocation failure. */
struct linker *linker__new(const uint64_t seed[4]);
void linker__free(struct linker *l);

/* Every data event, before it is parsed: which socket the thread touched last. */
void linker_on_io(struct linker *l, uint32_t tid, uint64_t sock);

/*
 * A connect() by @tid: when the thread's last I/O was on the socket of a
 * server request it is handling, the new connection is tied to that request
 * (an event loop connects upstream in the turn that read the request, but
 * may write on the new connection turns later).
 */
void linker_on_connect(struct linker *l, uint32_t tid, uint32_t pid, uint64_t sock);

/* An exchange at MT_STAGE_REQUEST: decide its context now. */
void linker_on_request(struct linker *l, const struct conn_info *ci, const struct mt_exchange *x);

/* An exchange at MT_STAGE_DONE: its final context, then forgotten. */
void linker_on_done(struct linker *l, const struct conn_info *ci, const struct mt_exchange *x,
		    struct link_ids *out);

/*
 * @pid exited or exec'd: whatever was learned about its instrumentation goes, and its
 * process entry and its main thread's with it.
 */
void linker_forget_process(struct linker *l, uint32_t pid);
/*
 * --propagate: the context the kernel decided for the request that starts at
 * @ev->seq on socket @ev->head.sock (bpf/sockops.h). It arrives before that
 * request's data; the request takes it when it begins.
 */
void linker_on_xctx(struct linker *l, const struct mt_xctx_event *ev);

/* Forgets requests in flight for longer than LINK_REQ_TTL_NS. */
void linker_expire(struct linker *l, uint64_t now_ns);

void linker_stats(const struct linker *l, struct link_stats *out);
const char *linker_unlinked_name(int reason);

/* Fills @n bytes of random, never all-zero id. */
void linker_random_id(struct linker *l, uint8_t *out, size_t n);

#endif /* MESHTRACE_LINKER_H */
