// SPDX-License-Identifier: Apache-2.0
/*
 * DNS client spans. Message format: RFC 1035 section 4.1; a client matches a
 * response to its query by socket, id and question (RFC 5452 section 9.1).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/trace/dnsspans.h"
#include "agent/protocols/dns.h"
#include "agent/common/hashtab.h"
#include "agent/common/util.h"

/* The id slot of a socket's query sent without bytes (sendmmsg): above any DNS id. */
#define ID_BLIND 0x10000u

struct pending {
	uint64_t sock;
	uint64_t ts_ns; /* the query left */
	uint32_t id;	/* DNS id, or ID_BLIND */
	uint32_t req_seq;
	uint32_t pid;
	uint32_t tid;
	uint16_t qtype;
	uint8_t in_use;
	char comm[16];
	struct mt_tuple tuple;
	char qname[DNS_NAME_MAX];
};

struct dnsspans {
	conn_exchange_fn fn;
	void *ctx;
	uint32_t next_seq; /* req_seq of the next lookup: distinct per lookup for the linker */
	struct dnsspans_stats stats;
	struct dns_msg msg; /* parsed here: too large for the stack of a hot path */
	struct pending slots[DNSSPANS_PENDING_MAX];
};

struct dnsspans *dnsspans__new(conn_exchange_fn fn, void *ctx)
{
	struct dnsspans *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->fn = fn;
	d->ctx = ctx;
	d->next_seq = 1;
	return d;
}

void dnsspans__free(struct dnsspans *d)
{
	free(d);
}

static uint32_t slot_hash(uint64_t sock, uint32_t id)
{
	return hashtab_hash64(sock ^ ((uint64_t)id << 32 | id)) & (DNSSPANS_PENDING_MAX - 1);
}

static struct pending *slot_find(struct dnsspans *d, uint64_t sock, uint32_t id)
{
	uint32_t h = slot_hash(sock, id);

	for (uint32_t i = 0; i < DNSSPANS_PROBE; i++) {
		struct pending *p = &d->slots[(h + i) & (DNSSPANS_PENDING_MAX - 1)];

		if (p->in_use && p->sock == sock && p->id == id)
			return p;
	}
	return NULL;
}

static void conn_of(const struct pending *p, struct conn_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->sock = p->sock;
	ci->pid = p->pid;
	ci->tid = p->tid;
	ci->fd = -1;
	ci->role = CONN_ROLE_CLIENT;
	memcpy(ci->comm, p->comm, sizeof(ci->comm));
	ci->tuple = p->tuple;
}

/* The exchange of @p at @stage, its response from @resp (NULL: none yet, or never). */
static void emit(struct dnsspans *d, const struct pending *p, uint8_t stage,
		 const struct dns_msg *resp, uint64_t resp_ns, uint32_t flags)
{
	struct mt_exchange x;
	struct conn_info ci;
	char type[16];

	memset(&x, 0, sizeof(x));
	x.protocol = MT_PROTO_DNS;
	x.stage = stage;
	x.req_seq = p->req_seq;
	x.flags = flags;
	x.req_start_ns = p->ts_ns;
	x.req_end_ns = p->ts_ns;
	x.dns_qtype = p->qtype;
	snprintf(x.operation, sizeof(x.operation), "DNS %s",
		 dns_type_name(p->qtype, type, sizeof(type)));
	mt_strlcpy(x.query_text, p->qname, sizeof(x.query_text));
	if (resp) {
		x.resp_start_ns = resp_ns;
		x.resp_end_ns = resp_ns;
		x.dns_rcode = resp->rcode;
		x.dns_answers = resp->ancount;
		mt_strlcpy(x.status_text, dns_rcode_name(resp->rcode, type, sizeof(type)),
			   sizeof(x.status_text));
		/*
		 * NXDOMAIN is an answer, not a failure: search-list expansion
		 * (ndots) makes it the common reply to most queries of a pod.
		 */
		if (resp->rcode != DNS_RCODE_NOERROR && resp->rcode != DNS_RCODE_NXDOMAIN)
			x.flags |= MT_X_ERROR;
	}
	conn_of(p, &ci);
	d->fn(d->ctx, &ci, &x);
}

static void slot_release(struct dnsspans *d, struct pending *p)
{
	p->in_use = 0;
	d->stats.pending--;
}

/* A free slot for (@sock, @id), evicting the oldest lookup of a full window. */
static struct pending *slot_take(struct dnsspans *d, uint64_t sock, uint32_t id)
{
	uint32_t h = slot_hash(sock, id);
	struct pending *oldest = NULL;

	for (uint32_t i = 0; i < DNSSPANS_PROBE; i++) {
		struct pending *p = &d->slots[(h + i) & (DNSSPANS_PENDING_MAX - 1)];

		if (!p->in_use)
			return p;
		if (!oldest || p->ts_ns < oldest->ts_ns)
			oldest = p;
	}
	if (oldest->id != ID_BLIND) {
		emit(d, oldest, MT_STAGE_DONE, NULL, 0, MT_X_ABORTED | MT_X_NO_RESPONSE);
		d->stats.evicted++;
	}
	slot_release(d, oldest);
	return oldest;
}

static struct pending *lookup_begin(struct dnsspans *d, const struct mt_data_event *ev, uint32_t id)
{
	struct pending *p = slot_take(d, ev->head.sock, id);

	memset(p, 0, sizeof(*p));
	p->in_use = 1;
	p->sock = ev->head.sock;
	p->id = id;
	p->ts_ns = ev->head.ts_ns;
	p->req_seq = d->next_seq++;
	p->pid = ev->pid;
	p->tid = ev->tid;
	memcpy(p->comm, ev->comm, sizeof(p->comm));
	p->comm[sizeof(p->comm) - 1] = '\0';
	p->tuple = ev->tuple;
	d->stats.pending++;
	return p;
}

static void on_query(struct dnsspans *d, const struct mt_data_event *ev, const struct dns_msg *m)
{
	struct pending *p = slot_find(d, ev->head.sock, m->id);

	d->stats.queries++;
	if (p && p->qtype == m->qtype && strcmp(p->qname, m->qname) == 0) {
		d->stats.retransmits++; /* the lookup lasts from its first try */
		return;
	}
	if (p) {
		d->stats.id_reused++;
		d->stats.unanswered++;
		emit(d, p, MT_STAGE_DONE, NULL, 0, MT_X_NO_RESPONSE);
		slot_release(d, p);
	}
	p = lookup_begin(d, ev, m->id);
	p->qtype = m->qtype;
	mt_strlcpy(p->qname, m->qname, sizeof(p->qname));
	emit(d, p, MT_STAGE_REQUEST, NULL, 0, 0);
}

static void on_response(struct dnsspans *d, const struct mt_data_event *ev, const struct dns_msg *m)
{
	struct pending *p = slot_find(d, ev->head.sock, m->id);
	struct pending blind;

	d->stats.responses++;
	if (p && p->qtype == m->qtype && strcmp(p->qname, m->qname) == 0) {
		emit(d, p, MT_STAGE_DONE, m, ev->head.ts_ns, 0);
		slot_release(d, p);
		d->stats.spans++;
		return;
	}
	p = slot_find(d, ev->head.sock, ID_BLIND);
	if (!p) {
		d->stats.orphan_responses++;
		return;
	}
	/* Kept for the socket's other responses: the copy is this lookup. */
	blind = *p;
	blind.req_seq = d->next_seq++;
	blind.qtype = m->qtype;
	mt_strlcpy(blind.qname, m->qname, sizeof(blind.qname));
	emit(d, &blind, MT_STAGE_REQUEST, NULL, 0, 0);
	emit(d, &blind, MT_STAGE_DONE, m, ev->head.ts_ns, 0);
	d->stats.spans++;
	d->stats.paired_by_socket++;
}

void dnsspans_on_event(struct dnsspans *d, const struct mt_data_event *ev)
{
	struct dns_msg *m = &d->msg;

	if (ev->tuple.lport == MT_DNS_PORT || ev->tuple.rport != MT_DNS_PORT) {
		d->stats.server_side++;
		return;
	}
	if (!ev->captured) {
		if (ev->dir == MT_DIR_INGRESS) {
			d->stats.no_payload++;
		} else {
			struct pending *p = slot_find(d, ev->head.sock, ID_BLIND);

			if (!p)
				p = lookup_begin(d, ev, ID_BLIND);
			p->ts_ns = ev->head.ts_ns; /* the latest send starts the next answers */
		}
		return;
	}
	/* qtype 0: the question did not fit in the bytes captured. */
	if (dns_parse(ev->data, ev->captured, m) != 0 || m->qdcount != 1 || !m->qtype ||
	    m->response != (ev->dir == MT_DIR_INGRESS)) {
		d->stats.malformed++;
		return;
	}
	if (m->response)
		on_response(d, ev, m);
	else
		on_query(d, ev, m);
}

void dnsspans_expire(struct dnsspans *d, uint64_t now_ns)
{
	for (uint32_t i = 0; i < DNSSPANS_PENDING_MAX; i++) {
		struct pending *p = &d->slots[i];

		if (!p->in_use || p->ts_ns + DNSSPANS_TIMEOUT_NS >= now_ns)
			continue;
		if (p->id != ID_BLIND) {
			emit(d, p, MT_STAGE_DONE, NULL, 0, MT_X_NO_RESPONSE);
			d->stats.unanswered++;
		}
		slot_release(d, p);
	}
}

void dnsspans_stats(const struct dnsspans *d, struct dnsspans_stats *out)
{
	*out = d->stats;
}
