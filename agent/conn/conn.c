// SPDX-License-Identifier: Apache-2.0
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent/common/hashtab.h"
#include "agent/common/util.h"
#include "agent/conn/conn.h"
#include "agent/protocols/tlsrec.h"

struct conn {
	uint64_t sock;
	uint64_t last_ns;
	uint8_t in_use;
	uint8_t proto; /* enum mt_protocol; MT_PROTO_UNKNOWN while detecting */
	uint8_t detect_tries;
	uint8_t gave_up;    /* left at TCP level */
	uint8_t tls;	    /* enum conn_tls */
	uint8_t tls_hooked; /* a TLS library's probe moved ciphertext on it: it is covered */
	const struct l7_parser *parser; /* NULL until detected */
	void *l7;			/* the parser's state, allocated at detection */
	/* Skip hints given to the kernel, per enum mt_dir (struct mt_skip). */
	uint8_t skip_on[2]; /* a hint is out: the kernel may skip up to skip_end */
	uint32_t skip_start[2];
	uint32_t skip_end[2];
	uint32_t skip_next[2]; /* seq after the last byte fed to the parser */
	struct conn_info info;
};

enum conn_tls {
	CONN_TLS_NONE = 0,  /* no TLS seen */
	CONN_TLS_WIRE = 1,  /* TLS records seen, no plaintext yet */
	CONN_TLS_PLAIN = 2, /* plaintext from a TLS library: only it is parsed */
};

struct conn_table {
	struct conn *conns;	/* max entries; untouched ones cost no memory */
	struct hashtab by_sock; /* owns the free slots */
	struct lrulist lru;	/* most recently active first */
	uint32_t hand;		/* where the next reclaim scan starts */
	uint64_t idle_ns;
	conn_exchange_fn fn;
	conn_io_fn io_fn;
	conn_mute_fn mute_fn;
	conn_skip_fn skip_fn;
	conn_tls_fn tls_fn;
	void *ctx;
	uint64_t parser_bytes_hwm; /* parser_bytes' high-water mark since the last trim */
	struct conn_stats stats;
};

static uint32_t hash_sock(uint64_t sock)
{
	return hashtab_hash64(sock);
}

struct conn_table *conn_table__new(uint32_t max_conns, uint64_t idle_ns, conn_exchange_fn fn,
				   void *ctx)
{
	struct conn_table *t;

	if (!max_conns)
		max_conns = CONN_MAX_DEFAULT;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->conns = calloc(max_conns, sizeof(*t->conns));
	if (!t->conns || hashtab_init(&t->by_sock, max_conns, 0) ||
	    lrulist_init(&t->lru, max_conns)) {
		conn_table__free(t);
		return NULL;
	}
	t->idle_ns = idle_ns ? idle_ns : CONN_IDLE_NS_DEFAULT;
	t->fn = fn;
	t->ctx = ctx;
	return t;
}

void conn_table__free(struct conn_table *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->by_sock.used; i++) {
		struct conn *c = &t->conns[i];

		if (c->in_use && c->parser && c->parser->release)
			c->parser->release(c->l7);
		if (c->in_use)
			free(c->l7);
	}
	free(t->conns);
	hashtab_fini(&t->by_sock);
	lrulist_fini(&t->lru);
	free(t);
}

static uint32_t lookup(const struct conn_table *t, uint64_t sock)
{
	uint32_t i = hashtab_first(&t->by_sock, hash_sock(sock));

	while (i != NIL && t->conns[i].sock != sock)
		i = hashtab_next(&t->by_sock, i);
	return i;
}

/* Context handed to the parser's callback: the table and the record. */
struct emit_ctx {
	struct conn_table *t;
	struct conn *c;
};

static void on_exchange(void *ctx, const struct mt_exchange *x)
{
	struct emit_ctx *e = ctx;

	if (e->t->fn)
		e->t->fn(e->t->ctx, &e->c->info, x);
}

/*
 * Events of this connection were lost in the kernel: what the parser holds
 * cannot be trusted. Its pending requests are dropped (counted as state
 * lost) and detection starts over at the next message start.
 */
static void on_exchange_aborted(void *ctx, const struct mt_exchange *x)
{
	struct emit_ctx *e = ctx;
	struct mt_exchange copy = *x;

	copy.flags |= MT_X_ABORTED;
	if (e->t->fn)
		e->t->fn(e->t->ctx, &e->c->info, &copy);
}

/* Frees a connection's parser state; detection runs again on its next message start. */
static void free_parser_state(struct conn_table *t, struct conn *c)
{
	if (c->parser->release)
		c->parser->release(c->l7);
	t->stats.parser_bytes -= c->parser->state_size;
	free(c->l7);
	c->l7 = NULL;
	c->parser = NULL;
	c->proto = MT_PROTO_UNKNOWN;
	c->detect_tries = 0;
}

/*
 * The parser's skip hints end, in the kernel too: left there, a hint would keep skipping
 * the calls of its range, whose bytes nobody would then count.
 */
static void skip_clear(struct conn_table *t, struct conn *c)
{
	struct mt_skip none = {0};

	if ((c->skip_on[0] || c->skip_on[1]) && t->skip_fn && t->skip_fn(t->ctx, c->sock, &none))
		t->stats.skip_hint_failed++;
	c->skip_on[0] = c->skip_on[1] = 0;
}

static void restart_parser(struct conn_table *t, struct conn *c, uint64_t now_ns)
{
	struct emit_ctx e = {t, c};

	t->stats.lost_restarts++;
	if (!c->parser)
		return;
	t->stats.l7[c->proto].state_lost++;
	c->parser->close(c->l7, now_ns, on_exchange_aborted, &e, &t->stats.l7[c->proto]);
	free_parser_state(t, c);
	c->gave_up = 0;
	skip_clear(t, c);
}

/* Ends a record: flushes what the parser holds, unhashes it, frees it. */
static void end_conn(struct conn_table *t, uint32_t i, uint64_t now_ns)
{
	struct conn *c = &t->conns[i];
	struct emit_ctx e = {t, c};

	if (c->parser) {
		c->parser->close(c->l7, now_ns, on_exchange, &e, &t->stats.l7[c->proto]);
		free_parser_state(t, c);
	}
	if (c->tls == CONN_TLS_WIRE && !c->tls_hooked)
		t->stats.tls_uncovered++;
	hashtab_unlink(&t->by_sock, hash_sock(c->sock), i);
	lrulist_unlink(&t->lru, i);
	c->in_use = 0;
	hashtab_slot_free(&t->by_sock, i);
	t->stats.active--;
}

/* Returns a fresh record for @sock, evicting the least recently used one if full. */
static uint32_t insert(struct conn_table *t, uint64_t sock, uint64_t now_ns)
{
	struct conn *c;
	uint32_t i = hashtab_slot_alloc(&t->by_sock);

	if (i == NIL) {
		end_conn(t, t->lru.tail, now_ns);
		t->stats.evicted_full++;
		i = hashtab_slot_alloc(&t->by_sock);
	}
	c = &t->conns[i];
	memset(c, 0, sizeof(*c));
	c->sock = sock;
	c->in_use = 1;
	c->last_ns = now_ns;
	c->info.sock = sock;
	c->info.fd = -1;
	hashtab_link(&t->by_sock, hash_sock(sock), i);
	lrulist_push_head(&t->lru, i);
	t->stats.active++;
	t->stats.opened++;
	return i;
}

static void touch(struct conn_table *t, uint32_t i, uint64_t now_ns)
{
	t->conns[i].last_ns = now_ns;
	lrulist_touch(&t->lru, i);
}

/* The first parser that recognises these bytes, and which side sends such bytes. */
static const struct l7_parser *detect_parser(const struct mt_data_event *ev,
					     enum l7_verdict *verdict)
{
	for (size_t i = 0; l7_parsers[i]; i++) {
		*verdict = l7_parsers[i]->detect(ev->data, ev->captured);
		if (*verdict != L7_NO)
			return l7_parsers[i];
	}
	return NULL;
}

/* Frees the parser state of a connection between messages; detection runs again later. */
static void release_idle_parser(struct conn_table *t, struct conn *c)
{
	free_parser_state(t, c);
	t->stats.parser_released++;
}

/*
 * Over CONN_PARSER_SOFT_MAX: frees the parser state of quiet connections
 * between messages, looking at CONN_RECLAIM_SCAN records from where the last
 * scan stopped, until @need more bytes fit under the soft limit.
 */
static void reclaim_parsers(struct conn_table *t, size_t need, uint64_t now_ns)
{
	for (uint32_t k = 0; k < CONN_RECLAIM_SCAN && t->by_sock.used; k++) {
		struct conn *c;

		if (t->stats.parser_bytes + need <= CONN_PARSER_SOFT_MAX)
			return;
		if (t->hand >= t->by_sock.used)
			t->hand = 0;
		c = &t->conns[t->hand++];
		if (c->in_use && c->parser && c->parser->idle &&
		    c->last_ns + CONN_PARSER_QUIET_NS < now_ns && c->parser->idle(c->l7))
			release_idle_parser(t, c);
	}
}

/*
 * Finds the protocol (and, for a connection first seen mid-life, the role)
 * from a message start. Parsing begins only at a message start, so a
 * connection first seen mid-message is picked up at its next message.
 * Returns true when the parser is ready for this chunk.
 */
static bool detect(struct conn_table *t, struct conn *c, const struct mt_data_event *ev)
{
	const struct l7_parser *p = NULL;
	enum l7_verdict v = L7_NO;
	bool sender_is_client;

	if (ev->captured)
		p = detect_parser(ev, &v);
	if (p && c->info.role == CONN_ROLE_UNKNOWN) {
		sender_is_client = v == L7_FROM_CLIENT;
		c->info.role = sender_is_client == (ev->dir == MT_DIR_EGRESS) ? CONN_ROLE_CLIENT
									      : CONN_ROLE_SERVER;
	}
	if (p) {
		bool c2s = (c->info.role == CONN_ROLE_CLIENT) == (ev->dir == MT_DIR_EGRESS);

		/* Bytes of the wrong side for this role: not a message start we can use. */
		if (c2s != (v == L7_FROM_CLIENT))
			p = NULL;
	}
	if (!p) {
		if (ev->captured && ++c->detect_tries >= CONN_DETECT_TRIES) {
			c->gave_up = 1;
			t->stats.not_parsed++;
			/* A known role and no protocol: stop copying its bytes in the kernel. */
			if (t->mute_fn && c->info.role != CONN_ROLE_UNKNOWN) {
				t->mute_fn(t->ctx, c->sock, &ev->tuple);
				t->stats.muted++;
			}
		}
		return false;
	}
	if (t->stats.parser_bytes + p->state_size > CONN_PARSER_SOFT_MAX)
		reclaim_parsers(t, p->state_size, ev->head.ts_ns);
	if (t->stats.parser_bytes + p->state_size > CONN_PARSER_MEMORY_MAX) {
		t->stats.parser_budget_full++;
		c->gave_up = 1;
		return false;
	}
	c->l7 = calloc(1, p->state_size);
	if (!c->l7) {
		t->stats.parser_alloc_failed++;
		c->gave_up = 1;
		return false;
	}
	p->init(c->l7);
	t->stats.parser_bytes += p->state_size;
	if (t->stats.parser_bytes > t->parser_bytes_hwm)
		t->parser_bytes_hwm = t->stats.parser_bytes;
	c->parser = p;
	c->proto = p->protocol;
	return true;
}

void conn_table_set_mute_fn(struct conn_table *t, conn_mute_fn fn)
{
	t->mute_fn = fn;
}

void conn_table_set_skip_fn(struct conn_table *t, conn_skip_fn fn)
{
	t->skip_fn = fn;
}

/*
 * Before a chunk of direction @dir: the bytes the kernel skipped under this direction's hint
 * (its seq jumped forward, within the hint) go to the parser first, uncaptured. The kernel
 * makes an event for the call that reaches the hint's end, so the skipped bytes all
 * precede this event in time.
 */
static void skip_gap(struct conn_table *t, struct conn *c, const struct mt_data_event *ev, bool c2s,
		     struct emit_ctx *e)
{
	uint8_t d = ev->dir & 1;
	uint32_t gap = (uint32_t)ev->seq - c->skip_next[d];
	struct mt_chunk ch = {0};

	if (!c->skip_on[d] || gap == 0)
		return;
	if (gap >= c->skip_end[d] - c->skip_next[d]) {
		t->stats.skip_mismatch++;
		return;
	}
	ch.len = gap;
	ch.seq = c->skip_next[d];
	ch.ts_ns = ev->head.ts_ns;
	t->stats.skipped_bytes += gap;
	c->parser->feed(c->l7, c2s, &ch, on_exchange, e, &t->stats.l7[c->proto]);
}

/*
 * After a chunk of direction @dir: when the parser will skip many of the coming bytes, the
 * kernel is told (once per hint), so that calls inside them make no event.
 */
static void skip_update(struct conn_table *t, struct conn *c, const struct mt_data_event *ev,
			bool c2s)
{
	uint8_t d = ev->dir & 1;
	struct mt_skip hint = {0};
	uint64_t n;
	uint32_t end;

	c->skip_next[d] = (uint32_t)ev->seq + ev->bytes;
	if (c->skip_on[d] && (int32_t)(c->skip_next[d] - c->skip_end[d]) >= 0)
		c->skip_on[d] = 0;
	/* TLS: the kernel sees ciphertext, whose sequence numbers are not the parser's. */
	if (!t->skip_fn || !c->parser || !c->parser->skip_hint || c->tls != CONN_TLS_NONE)
		return;
	n = c->parser->skip_hint(c->l7, c2s);
	if (n < CONN_SKIP_MIN)
		return;
	if (n > CONN_SKIP_MAX)
		n = CONN_SKIP_MAX;
	end = c->skip_next[d] + (uint32_t)n;
	if (c->skip_on[d] && c->skip_end[d] == end)
		return; /* the kernel has it */
	c->skip_on[d] = 1;
	c->skip_start[d] = c->skip_next[d];
	c->skip_end[d] = end;
	for (int i = 0; i < 2; i++) {
		if (!c->skip_on[i])
			continue;
		hint.start[i] = c->skip_start[i];
		hint.end[i] = c->skip_end[i];
	}
	if (t->skip_fn(t->ctx, c->sock, &hint) != 0) {
		t->stats.skip_hint_failed++;
		c->skip_on[d] = 0;
		return;
	}
	t->stats.skip_hints++;
}

void conn_table_set_tls_fn(struct conn_table *t, conn_tls_fn fn)
{
	t->tls_fn = fn;
}

void conn_table_set_io_fn(struct conn_table *t, conn_io_fn fn)
{
	t->io_fn = fn;
}

/* The first plaintext of a TLS connection: what was parsed before (a STARTTLS preamble) ends. */
static void tls_begin_plaintext(struct conn_table *t, struct conn *c)
{
	c->tls = CONN_TLS_PLAIN;
	c->info.tls = 1;
	skip_clear(t, c); /* a plaintext preamble's hint ends with it (the handshake follows) */
	t->stats.tls_plaintext++;
	if (c->parser)
		free_parser_state(t, c);
	c->gave_up = 0;
	c->detect_tries = 0;
}

/* A connection not parsed yet whose bytes are a TLS record: its ciphertext is never parsed. */
static bool tls_detect(struct conn_table *t, struct conn *c, const struct mt_data_event *ev)
{
	enum tlsrec_kind k = tlsrec_classify(ev->data, ev->captured);

	if (k == TLSREC_NO)
		return false;
	c->tls = CONN_TLS_WIRE;
	t->stats.tls_handshakes++;
	if (c->info.role == CONN_ROLE_UNKNOWN && k != TLSREC_RECORD) {
		bool sender_is_client = k == TLSREC_CLIENT_HELLO;

		c->info.role = sender_is_client == (ev->dir == MT_DIR_EGRESS) ? CONN_ROLE_CLIENT
									      : CONN_ROLE_SERVER;
	}
	if (t->tls_fn)
		t->tls_fn(t->ctx, ev->pid, c->sock);
	/* Ciphertext is worth nothing to copy; plaintext events come from the library's probes. */
	if (t->mute_fn && c->info.role != CONN_ROLE_UNKNOWN) {
		t->mute_fn(t->ctx, c->sock, &ev->tuple);
		t->stats.muted++;
	}
	return true;
}

/* TLS: true when this event's bytes are the stream the parser is to see. */
static bool tls_parse_this(struct conn_table *t, struct conn *c, const struct mt_data_event *ev)
{
	if (ev->flags & MT_DATA_F_TLS) {
		if (c->tls != CONN_TLS_PLAIN)
			tls_begin_plaintext(t, c);
		return true;
	}
	if (ev->flags & MT_DATA_F_TLS_WIRE) {
		/*
		 * Inside a probed library call: covered, even with no plaintext to come (a
		 * close_notify sent after the TCP close event, on a record of its own).
		 */
		c->tls_hooked = 1;
		if (c->tls == CONN_TLS_NONE)
			c->tls = CONN_TLS_WIRE;
		return false;
	}
	if (c->tls != CONN_TLS_NONE)
		return false;
	return c->parser || c->gave_up || !ev->captured || !tls_detect(t, c, ev);
}

void conn_table_on_data(struct conn_table *t, const struct mt_data_event *ev)
{
	uint32_t i = lookup(t, ev->head.sock);
	struct mt_chunk ch;
	struct emit_ctx e;
	struct conn *c;
	bool c2s;

	/*
	 * Bytes sent on a socket after its close was reported (a TLS library's close_notify
	 * from SSL_shutdown once the peer has gone: the socket has no local port any more)
	 * start no connection: nothing can follow them.
	 */
	if (i == NIL && ev->tuple.lport == 0)
		return;
	if (i == NIL) {
		i = insert(t, ev->head.sock, ev->head.ts_ns);
		t->conns[i].info.tuple = ev->tuple;
	} else {
		touch(t, i, ev->head.ts_ns);
	}
	c = &t->conns[i];
	c->info.pid = ev->pid;
	c->info.tid = ev->tid;
	if (ev->fd >= 0)
		c->info.fd = ev->fd;
	if (t->io_fn)
		t->io_fn(t->ctx, ev->tid, ev->pid, ev->head.sock, false);
	memcpy(c->info.comm, ev->comm, sizeof(c->info.comm));
	if (ev->flags & MT_DATA_F_LOST_BEFORE)
		restart_parser(t, c, ev->head.ts_ns);
	if (!tls_parse_this(t, c, ev))
		return;
	if (c->gave_up)
		return;
	if (!c->parser && !detect(t, c, ev)) {
		if (c->info.role == CONN_ROLE_UNKNOWN)
			t->stats.role_unknown_bytes += ev->bytes;
		return;
	}
	c2s = (c->info.role == CONN_ROLE_CLIENT) == (ev->dir == MT_DIR_EGRESS);

	e.t = t;
	e.c = c;
	skip_gap(t, c, ev, c2s, &e);
	ch = (struct mt_chunk){.seq = (uint32_t)ev->seq, .ts_ns = ev->head.ts_ns};
	if (ev->data_off && ev->data_off < ev->bytes) {
		/* Captured from the end of a skip hint on: the bytes before it, uncaptured. */
		ch.len = ev->data_off;
		t->stats.skip_offset_bytes += ev->data_off;
		c->parser->feed(c->l7, c2s, &ch, on_exchange, &e, &t->stats.l7[c->proto]);
		ch.seq += ev->data_off;
	}
	ch.data = ev->data;
	ch.captured = ev->captured;
	ch.len = ev->bytes - (ev->data_off < ev->bytes ? ev->data_off : 0);
	c->parser->feed(c->l7, c2s, &ch, on_exchange, &e, &t->stats.l7[c->proto]);
	skip_update(t, c, ev, c2s);
}

void conn_table_on_conn(struct conn_table *t, const struct mt_conn_event *ev)
{
	uint32_t i = lookup(t, ev->head.sock);
	struct conn *c;

	switch (ev->op) {
	case MT_CONN_CONNECT:
	case MT_CONN_ACCEPTED:
		/* A new life for this socket: whatever was recorded under it has ended. */
		if (i != NIL)
			end_conn(t, i, ev->head.ts_ns);
		i = insert(t, ev->head.sock, ev->head.ts_ns);
		c = &t->conns[i];
		c->info.tuple = ev->tuple;
		c->info.role = ev->op == MT_CONN_CONNECT ? CONN_ROLE_CLIENT : CONN_ROLE_SERVER;
		c->info.pid = ev->pid;
		memcpy(c->info.comm, ev->comm, sizeof(c->info.comm));
		if (ev->op == MT_CONN_CONNECT && t->io_fn)
			t->io_fn(t->ctx, ev->tid, ev->pid, ev->head.sock, true);
		break;
	case MT_CONN_ESTABLISHED:
		if (i != NIL) {
			/* The local port is only final once connected. */
			t->conns[i].info.tuple = ev->tuple;
			touch(t, i, ev->head.ts_ns);
		}
		break;
	case MT_CONN_FAILED:
		t->stats.connect_failed++;
		if (i != NIL)
			end_conn(t, i, ev->head.ts_ns);
		break;
	case MT_CONN_CLOSED:
		if (i != NIL) {
			end_conn(t, i, ev->head.ts_ns);
			t->stats.closed++;
		}
		break;
	case MT_CONN_RETRANSMIT:
		t->stats.retransmits++;
		break;
	default:
		break;
	}
}

void conn_table_expire(struct conn_table *t, uint64_t now_ns)
{
	/* Quiet connections, oldest first: give back parser state they do not need. */
	for (uint32_t i = t->lru.tail;
	     i != NIL && t->conns[i].last_ns + CONN_PARSER_IDLE_NS < now_ns;
	     i = lrulist_prev(&t->lru, i)) {
		struct conn *c = &t->conns[i];

		if (c->parser && c->parser->idle && c->parser->idle(c->l7))
			release_idle_parser(t, c);
	}
	while (t->lru.tail != NIL && t->conns[t->lru.tail].last_ns + t->idle_ns < now_ns) {
		end_conn(t, t->lru.tail, now_ns);
		t->stats.evicted_idle++;
	}
	/*
	 * Parser state is ~6 KB a connection (HTTP/1): a burst of connections leaves
	 * megabytes of free heap behind once they go idle or close, which glibc
	 * keeps mapped. Give it back, only after a large drop (not for churn).
	 */
	if (t->parser_bytes_hwm >= t->stats.parser_bytes + CONN_TRIM_BYTES) {
		malloc_trim(0);
		t->stats.trims++;
		t->parser_bytes_hwm = t->stats.parser_bytes;
	}
}

void conn_table_stats(const struct conn_table *t, struct conn_stats *out)
{
	*out = t->stats;
}
