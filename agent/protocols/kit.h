/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parser kit: what every parser in this folder would otherwise write
 * again. A parser includes it from its .c file only; the rest of the agent
 * sees parsers through l7.h. Everything here is static inline: it sits in
 * per-message and per-chunk paths (there is no kit.c).
 *
 *  - struct l7_feed: one feed() or close() call (the chunk, its direction,
 *    where exchanges and counts go), set up by l7_feed_begin()/l7_feed_close();
 *  - exchanges: l7_exchange_init(), l7_emit_done(), l7_announce(),
 *    l7_request_seq();
 *  - framing: l7_body_take() (a body framed by its length, kept up to a
 *    limit), l7_garbage();
 *  - lost framing, for the parsers that pair responses in order:
 *    l7_lost_at(), l7_lost_resync(), l7_lost_close() over struct l7_lost
 *    (l7.h), answering requests through the parser's l7_answer_fn;
 *  - L7_PARSER(): the registry entry (struct l7_parser) of a parser written
 *    against its own state type.
 */
#ifndef MESHTRACE_L7_KIT_H
#define MESHTRACE_L7_KIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/protocols/l7.h"

static inline size_t l7_min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* @a + @b, UINT64_MAX where it would wrap (byte counters fed by the wire). */
static inline uint64_t l7_sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* Copies @n bytes to a NUL-terminated field of @cap (> 0) bytes, truncating. */
static inline void l7_copy_field(char *dst, size_t cap, const void *src, size_t n)
{
	n = l7_min_size(n, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- one call ---- */

/* What one feed() or close() call works with. */
struct l7_feed {
	const uint8_t *data;	/* the chunk's bytes: data[0..cap) were captured */
	size_t cap;		/* captured bytes, at most len (0 when data is NULL) */
	size_t len;		/* bytes the chunk moved on the wire */
	uint64_t ts;		/* when (CLOCK_MONOTONIC): the chunk's, or the close's */
	uint32_t seq;		/* TCP sequence number of data[0], 0 if unknown */
	bool is_req;		/* client -> server */
	mt_exchange_fn emit;	/* may be NULL */
	void *ctx;		/* @emit's */
	struct l7_stats *stats; /* never NULL: &scratch when the caller passed none */
	struct l7_stats scratch;
};

/* Where @f's counts go: @stats, or @f's scratch when the caller passed none. */
static inline void l7_feed_stats(struct l7_feed *f, struct l7_stats *stats)
{
	if (!stats) {
		memset(&f->scratch, 0, sizeof(f->scratch));
		stats = &f->scratch;
	}
	f->stats = stats;
}

/*
 * Sets up @f for one chunk of @ch going client -> server when @c2s. Returns
 * false when there is nothing to parse (no chunk, or no bytes).
 */
static inline bool l7_feed_begin(struct l7_feed *f, bool c2s, const struct mt_chunk *ch,
				 mt_exchange_fn emit, void *ctx, struct l7_stats *stats)
{
	if (!ch || ch->len == 0)
		return false;
	f->data = ch->data;
	f->len = ch->len;
	f->cap = ch->data ? l7_min_size(ch->captured, ch->len) : 0;
	f->ts = ch->ts_ns;
	f->seq = ch->seq;
	f->is_req = c2s;
	f->emit = emit;
	f->ctx = ctx;
	l7_feed_stats(f, stats);
	return true;
}

/* Sets up @f for a close at @ts_ns: no bytes, the server's direction. */
static inline void l7_feed_close(struct l7_feed *f, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
				 struct l7_stats *stats)
{
	memset(f, 0, offsetof(struct l7_feed, scratch));
	f->ts = ts_ns;
	f->emit = emit;
	f->ctx = ctx;
	l7_feed_stats(f, stats);
}

/* @n bytes skipped that were no message. */
static inline void l7_garbage(struct l7_feed *f, uint64_t n)
{
	f->stats->garbage_bytes = l7_sat_add(f->stats->garbage_bytes, n);
}

/* ---- exchanges ---- */

/* Starts @x: zeroed, then what every parser's exchange has. */
static inline void l7_exchange_init(struct mt_exchange *x, uint8_t protocol, uint32_t req_seq,
				    uint32_t flags, uint64_t req_start_ns, uint64_t req_end_ns)
{
	memset(x, 0, sizeof(*x));
	x->protocol = protocol;
	x->req_seq = req_seq;
	x->flags = flags;
	x->req_start_ns = req_start_ns;
	x->req_end_ns = req_end_ns;
}

/* Hands on a finished exchange (MT_STAGE_DONE), counted. */
static inline void l7_emit_done(struct l7_feed *f, const struct mt_exchange *x)
{
	f->stats->exchanges++;
	if (f->emit)
		f->emit(f->ctx, x);
}

/*
 * Announces a request while it is in flight (enum mt_stage): the span stage
 * gives it its trace context before any response. @op is copied up to
 * @op_max bytes.
 */
static inline void l7_announce(const struct l7_feed *f, uint8_t protocol, uint32_t req_seq,
			       uint64_t start_ns, uint64_t end_ns, const char *op, size_t op_max)
{
	struct mt_exchange x;

	if (!f->emit)
		return;
	l7_exchange_init(&x, protocol, req_seq, 0, start_ns, end_ns);
	x.stage = MT_STAGE_REQUEST;
	l7_copy_field(x.operation, sizeof(x.operation), op,
		      strnlen(op, l7_min_size(op_max, sizeof(x.operation) - 1)));
	f->emit(f->ctx, &x);
}

/*
 * The TCP sequence number of a request starting @pos bytes into a chunk
 * whose first byte is @chunk_seq: what the two ends of a connection agree
 * on. A per-connection count (never 0) when the capture did not know it.
 */
static inline uint32_t l7_request_seq(uint32_t chunk_seq, size_t pos, uint32_t *counter)
{
	if (chunk_seq)
		return chunk_seq + (uint32_t)pos;
	return ++*counter ? *counter : ++*counter;
}

/* ---- framing ---- */

/*
 * Reads the part of a body framed by its length (a MySQL packet, a
 * PostgreSQL message, a DNS message over TCP) that the chunk holds from
 * *@pos: min(*@left, bytes left in the chunk), uncaptured ones included. The
 * captured ones are appended to @keep, which holds *@kept bytes, up to
 * @limit. Advances *@pos, lowers *@left, raises *@kept. Returns true when the
 * keeping stopped at uncaptured bytes short of @limit (what follows in
 * @keep would be out of place).
 */
static inline bool l7_body_take(const struct l7_feed *f, size_t *pos, uint32_t *left, void *keep,
				uint16_t *kept, size_t limit)
{
	size_t n = l7_min_size(*left, f->len - *pos);
	bool hole = false;

	if (*kept < limit) {
		size_t seen = *pos < f->cap ? l7_min_size(n, f->cap - *pos) : 0;
		size_t k = l7_min_size(seen, limit - *kept);

		if (k)
			memcpy((uint8_t *)keep + *kept, f->data + *pos, k);
		*kept = (uint16_t)(*kept + k);
		hole = seen < n && *kept < limit;
	}
	*left -= (uint32_t)n;
	*pos += n;
	return hole;
}

/* ---- lost framing: the parsers that pair responses in order ---- */

/*
 * Redis, memcached, MySQL and PostgreSQL pair responses with requests in
 * order and lose a direction's framing when a header falls in uncaptured
 * bytes. The parser then resets that direction into its own lost state and
 * tells the kit (l7_lost_at()); it finds the framing again at a chunk that
 * starts a message (l7_lost_resync()): requests at once; responses only
 * once the client has sent a request after the loss, the requests awaited
 * at the loss having been answered inside the lost bytes. The parser keeps
 * its requests awaiting responses, oldest first; the kit answers them
 * through an l7_answer_fn, and at close (l7_lost_close()) those still
 * awaited.
 */

/*
 * The oldest request awaiting a response ends without one: handed on with
 * @flags (MT_X_END_GUESSED and its response ending at @resp_end_ns, or
 * MT_X_NO_RESPONSE and 0) unless the parser dropped it, then forgotten.
 * @p is the parser's (its per-call context).
 */
typedef void (*l7_answer_fn)(void *p, uint64_t resp_end_ns, uint32_t flags);

/*
 * The framing of @f's direction is lost at byte @pos of the chunk (SIZE_MAX:
 * none of it is counted as garbage), inside a message when @open.
 * @awaited: requests awaiting responses; @end_ns: where the responses read
 * so far end.
 */
static inline void l7_lost_at(struct l7_lost *l, struct l7_feed *f, size_t pos, bool open,
			      size_t awaited, uint64_t end_ns)
{
	if (!open && pos < f->len)
		l7_garbage(f, f->len - pos);
	if (!f->is_req) {
		l->owed = (uint32_t)awaited;
		l->end_ns = end_ns;
	}
	l->open[f->is_req] = open;
}

/*
 * At a chunk of a direction whose framing is lost: whether it resumes the
 * parsing (counted), @starts telling whether it begins like a message of
 * its direction. Responses resume only once @awaited (requests awaiting
 * responses) has grown past those owed, which are then answered through
 * @answer(@p). A chunk skipped: responses still awaited may reach this far;
 * otherwise it is garbage, unless it is the rest of the message the loss
 * cut.
 */
static inline bool l7_lost_resync(struct l7_lost *l, struct l7_feed *f, bool starts, size_t awaited,
				  l7_answer_fn answer, void *p)
{
	if (!starts || (!f->is_req && awaited <= l->owed)) {
		if (!f->is_req && awaited)
			l->end_ns = f->ts;
		else if (!l->open[f->is_req])
			l7_garbage(f, f->len);
		return false;
	}
	f->stats->resyncs++;
	for (; !f->is_req && l->owed; l->owed--)
		answer(p, l->end_ns, MT_X_END_GUESSED);
	return true;
}

/*
 * At close, with @awaited requests awaiting responses, every one answered
 * through @answer(@p): when the responses' framing was never found again
 * (@resp_lost), those owed were answered in the lost bytes; the others got
 * no response. A direction still lost (@req_lost, @resp_lost) is counted
 * (state_lost).
 */
static inline void l7_lost_close(const struct l7_lost *l, struct l7_feed *f, bool req_lost,
				 bool resp_lost, size_t awaited, l7_answer_fn answer, void *p)
{
	size_t guessed = resp_lost ? l7_min_size(l->owed, awaited) : 0;

	if (req_lost || resp_lost)
		f->stats->state_lost++;
	for (size_t i = 0; i < awaited; i++)
		answer(p, i < guessed ? l->end_ns : 0,
		       i < guessed ? MT_X_END_GUESSED : MT_X_NO_RESPONSE);
}

/* ---- the registry entry ---- */

/* A detector's verdict for a protocol only recognised from its client's bytes. */
static inline enum l7_verdict l7_client_if(bool from_client)
{
	return from_client ? L7_FROM_CLIENT : L7_NO;
}

/*
 * Defines @var, the struct l7_parser of a parser written against its own
 * state type @type, from its functions @prefix##_init(type *),
 * @prefix##_feed(type *, ...) and @prefix##_close(type *, ...) (l7.h's
 * signatures otherwise; an _init's result is ignored), followed by the
 * designated initialisers given: .protocol, .name, .detect, and .release or
 * .idle where the parser has them. The adapters it writes only convert the
 * state pointer.
 */
#define L7_PARSER(var, type, prefix, ...)                                                       \
	static void prefix##_init_state(void *state)                                            \
	{                                                                                       \
		(void)prefix##_init((type *)state);                                             \
	}                                                                                       \
	static void prefix##_feed_state(void *state, bool c2s, const struct mt_chunk *ch,       \
					mt_exchange_fn emit, void *ctx, struct l7_stats *stats) \
	{                                                                                       \
		prefix##_feed((type *)state, c2s, ch, emit, ctx, stats);                        \
	}                                                                                       \
	static void prefix##_close_state(void *state, uint64_t ts_ns, mt_exchange_fn emit,      \
					 void *ctx, struct l7_stats *stats)                     \
	{                                                                                       \
		prefix##_close((type *)state, ts_ns, emit, ctx, stats);                         \
	}                                                                                       \
	const struct l7_parser var = {.state_size = sizeof(type),                               \
				      .init = prefix##_init_state,                              \
				      .feed = prefix##_feed_state,                              \
				      .close = prefix##_close_state,                            \
				      __VA_ARGS__}

#endif /* MESHTRACE_L7_KIT_H */
