/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS client spans: pairs the UDP DNS queries a process on the node sends
 * (MT_EV_DNS, EGRESS, QR=0) with the responses it receives on the same socket
 * (INGRESS, QR=1, same id and question), and hands each lookup to the span
 * stage as a struct mt_exchange (MT_PROTO_DNS) on a CLIENT connection: once
 * at MT_STAGE_REQUEST when the query leaves, so a lookup made while a server
 * request is handled becomes its child, and once at MT_STAGE_DONE.
 *
 * Only client sockets (remote port 53, local port not 53) make spans; a
 * resolver's own sockets are counted and left alone.
 *
 * Queries sent with sendmmsg (glibc sends A and AAAA together that way) leave
 * the kernel with no bytes: the socket's send time is remembered, and a
 * response on that socket with no pending query is paired with it, both
 * stages emitted at the response.
 *
 * Bounded: DNSSPANS_PENDING_MAX lookups in flight, open addressing with a
 * window of DNSSPANS_PROBE slots. When a window is full its oldest lookup is
 * evicted: ended with MT_X_ABORTED (the linker forgets it, no span) and
 * counted. A lookup unanswered after DNSSPANS_TIMEOUT_NS is emitted as a span
 * with MT_X_NO_RESPONSE (status ERROR) and counted: a timed-out lookup is
 * what an operator wants to see.
 */
#ifndef MESHTRACE_DNSSPANS_H
#define MESHTRACE_DNSSPANS_H

#include <stdint.h>

#include "bpf/capture.h"
#include "agent/conn/conn.h"
#include "agent/protocols/l7.h"

#define DNSSPANS_PENDING_MAX 1024 /* power of two */
#define DNSSPANS_PROBE	     16
#define DNSSPANS_TIMEOUT_NS  (5ull * 1000000000ull)

struct dnsspans_stats {
	uint64_t queries;	   /* queries seen on client sockets */
	uint64_t responses;	   /* responses seen on client sockets */
	uint64_t spans;		   /* lookups completed by a response */
	uint64_t paired_by_socket; /* of which paired with a query sent without bytes */
	uint64_t unanswered;	   /* lookups emitted with no response after the timeout */
	uint64_t evicted;	   /* lookups dropped: their probe window was full */
	uint64_t retransmits;	   /* the same query again while pending (kept the first) */
	uint64_t id_reused;	   /* a new question under a pending id: the old one ended */
	uint64_t orphan_responses; /* responses with no query to pair with */
	uint64_t malformed;	   /* datagrams not parsable as DNS, or not the expected QR */
	uint64_t no_payload;	   /* responses received without bytes (recvmmsg) */
	uint64_t server_side;	   /* datagrams on a resolver's socket (local port 53) */
	uint64_t pending;	   /* lookups in flight now, and sockets' byteless sends */
};

struct dnsspans;

/* NULL on allocation failure. @fn receives every exchange at both stages. */
struct dnsspans *dnsspans__new(conn_exchange_fn fn, void *ctx);
void dnsspans__free(struct dnsspans *d);

/*
 * Takes one MT_EV_DNS event whose ev->captured payload bytes follow it (the
 * caller has checked they are within the event). Never fails: what cannot be
 * used is counted in dnsspans_stats.
 */
void dnsspans_on_event(struct dnsspans *d, const struct mt_data_event *ev);

/* Emits the lookups unanswered since before @now_ns - DNSSPANS_TIMEOUT_NS. */
void dnsspans_expire(struct dnsspans *d, uint64_t now_ns);

void dnsspans_stats(const struct dnsspans *d, struct dnsspans_stats *out);

#endif /* MESHTRACE_DNSSPANS_H */
