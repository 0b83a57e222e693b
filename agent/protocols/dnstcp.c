// SPDX-License-Identifier: Apache-2.0
/*
 * DNS over TCP: RFC 1035 4.2.2 (a two-byte length before each message) and
 * RFC 7766 (several queries in flight on one connection, answered in any
 * order, matched by id). Pure: bytes in, one exchange per query out.
 *
 * The first DNSTCP_KEEP bytes of each message are gathered (across chunks)
 * and parsed with the UDP path's parser (dns.c); the rest of a long message
 * (large answers) is skipped by its length.
 */
#include <stdio.h>
#include <string.h>

#include "agent/protocols/dns.h"
#include "agent/protocols/dnstcp.h"
#include "agent/protocols/kit.h"
#include "agent/common/util.h"

void dnstcp_init(struct dnstcp_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->req.need_len = 1;
	c->resp.need_len = 1;
}

/* RFC 1035 4.1.1 header of a standard query with one question, after the length. */
static bool looks_like_query(const uint8_t *b, size_t n)
{
	uint16_t len, qd, an, ns, ar;

	if (n < 14)
		return false;
	len = (uint16_t)(b[0] << 8 | b[1]);
	qd = (uint16_t)(b[6] << 8 | b[7]);
	an = (uint16_t)(b[8] << 8 | b[9]);
	ns = (uint16_t)(b[10] << 8 | b[11]);
	ar = (uint16_t)(b[12] << 8 | b[13]);
	/* QR=0, opcode QUERY, Z=0; one question, no answers; at most an OPT record. */
	return len >= 17 && len <= 4096 && (b[4] & 0xf8) == 0 && (b[5] & 0x40) == 0 && qd == 1 &&
	       an == 0 && ns == 0 && ar <= 1;
}

/*
 * The same header without its length: a server that reads the two-byte
 * length and the message with separate calls shows the message alone.
 */
static bool looks_like_bare_query(const uint8_t *b, size_t n)
{
	uint8_t with_len[14];

	if (n < 12)
		return false;
	with_len[0] = (uint8_t)(n >> 8);
	with_len[1] = (uint8_t)n;
	memcpy(with_len + 2, b, 12);
	return looks_like_query(with_len, sizeof(with_len));
}

enum l7_verdict dnstcp_detect(const uint8_t *buf, size_t n)
{
	return l7_client_if(looks_like_query(buf, n) || looks_like_bare_query(buf, n));
}

static void msg_done(struct dnstcp_conn *c, struct dnstcp_dir *d, struct l7_feed *f)
{
	struct l7_stats *stats = f->stats;
	bool c2s = f->is_req;
	struct dns_msg *m = &c->scratch;
	struct dnstcp_query *q = NULL;
	char type[16];

	if (dns_parse(d->keep, d->keep_len, m) != 0 || m->response == c2s) {
		stats->garbage_bytes += d->msg_len;
		return;
	}
	if (c2s) {
		struct dnstcp_query *slot = NULL;

		stats->requests++;
		for (unsigned i = 0; i < DNSTCP_INFLIGHT; i++)
			if (!c->q[i].in_use && !slot)
				slot = &c->q[i];
		if (!slot) {
			stats->pipeline_drops++;
			return;
		}
		memset(slot, 0, sizeof(*slot));
		slot->in_use = 1;
		slot->id = m->id;
		slot->x.protocol = MT_PROTO_DNS;
		slot->x.flags = MT_X_TCP;
		slot->x.req_seq = d->start_seq;
		slot->x.req_start_ns = d->start_ns;
		slot->x.req_end_ns = d->end_ns;
		slot->x.dns_qtype = m->qtype;
		snprintf(slot->x.operation, sizeof(slot->x.operation), "DNS %s",
			 dns_type_name(m->qtype, type, sizeof(type)));
		mt_strlcpy(slot->x.query_text, m->qname, sizeof(slot->x.query_text));
		slot->x.stage = MT_STAGE_REQUEST;
		if (f->emit)
			f->emit(f->ctx, &slot->x);
		slot->x.stage = MT_STAGE_DONE;
		return;
	}
	stats->responses++;
	for (unsigned i = 0; i < DNSTCP_INFLIGHT; i++)
		if (c->q[i].in_use && c->q[i].id == m->id)
			q = &c->q[i];
	if (!q) {
		stats->orphan_responses++;
		return;
	}
	q->x.resp_start_ns = d->start_ns;
	q->x.resp_end_ns = d->end_ns;
	q->x.dns_rcode = m->rcode;
	q->x.dns_answers = m->ancount;
	mt_strlcpy(q->x.status_text, dns_rcode_name(m->rcode, type, sizeof(type)),
		   sizeof(q->x.status_text));
	/* NXDOMAIN is an answer, not a failure (as for DNS over UDP). */
	if (m->rcode != DNS_RCODE_NOERROR && m->rcode != DNS_RCODE_NXDOMAIN)
		q->x.flags |= MT_X_ERROR;
	q->in_use = 0;
	l7_emit_done(f, &q->x);
}

void dnstcp_feed(struct dnstcp_conn *c, bool c2s, const struct mt_chunk *ch, mt_exchange_fn emit,
		 void *ctx, struct l7_stats *stats)
{
	struct dnstcp_dir *d;
	struct l7_feed f;
	size_t pos = 0;

	if (!c || !l7_feed_begin(&f, c2s, ch, emit, ctx, stats))
		return;
	d = c2s ? &c->req : &c->resp;
	if (!d->started && c2s && !looks_like_query(f.data, f.cap) &&
	    looks_like_bare_query(f.data, f.cap)) {
		/* Detected on a message whose length was read by an earlier call. */
		d->need_len = 0;
		d->msg_len = (uint32_t)f.len;
		d->remaining = (uint32_t)f.len;
		d->keep_len = 0;
		d->start_ns = f.ts;
		d->start_seq = f.seq;
	}
	d->started = 1;

	while (pos < f.len) {
		if (d->lost) { /* framing lost in uncaptured bytes: nothing to align on */
			l7_garbage(&f, f.len - pos);
			return;
		}
		if (d->need_len) {
			/* The two-byte length, possibly split across chunks. */
			if (pos >= f.cap) {
				d->lost = 1;
				f.stats->state_lost++;
				continue;
			}
			d->len_buf[d->len_have++] = f.data[pos++];
			if (d->len_have < 2)
				continue;
			d->need_len = 0;
			d->msg_len = (uint32_t)(d->len_buf[0] << 8 | d->len_buf[1]);
			d->remaining = d->msg_len;
			d->keep_len = 0;
			d->start_ns = f.ts;
			d->start_seq = f.seq + (uint32_t)pos - 2;
			if (!d->msg_len) {
				d->need_len = 1;
				d->len_have = 0;
			}
			continue;
		}
		if (!d->remaining) {
			d->need_len = 1;
			d->len_have = 0;
			continue;
		}
		/* Bytes after a gap are kept too: the header and question come first. */
		l7_body_take(&f, &pos, &d->remaining, d->keep, &d->keep_len, DNSTCP_KEEP);
		d->end_ns = f.ts;
		if (!d->remaining) {
			msg_done(c, d, &f);
			d->need_len = 1;
			d->len_have = 0;
		}
	}
}

void dnstcp_close(struct dnstcp_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		  struct l7_stats *stats)
{
	(void)ts_ns;
	(void)stats;
	for (unsigned i = 0; i < DNSTCP_INFLIGHT; i++) {
		if (!c->q[i].in_use)
			continue;
		c->q[i].in_use = 0;
		c->q[i].x.flags |= MT_X_NO_RESPONSE;
		if (emit)
			emit(ctx, &c->q[i].x);
	}
}

/* ---- registry entry ---- */

L7_PARSER(dnstcp_parser, struct dnstcp_conn, dnstcp, .protocol = MT_PROTO_DNS, .name = "dns",
	  .detect = dnstcp_detect);
