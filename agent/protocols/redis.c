// SPDX-License-Identifier: Apache-2.0
/*
 * Redis parser, RESP2 and RESP3, both directions of one connection.
 * Spec: https://redis.io/docs/latest/develop/reference/protocol-spec/
 *       https://redis.io/docs/latest/develop/interact/pubsub/ (push messages)
 *
 * Each direction reads a tree of elements: header and simple lines are found
 * with one memchr, bulk strings ($, =, !) are skipped by count, gap bytes
 * included. Aggregates (*, %, ~, >, |) keep a count per open level. When a
 * line runs into uncaptured bytes the framing is lost (ST_LOST):
 *  - a command is taken to end with its chunk (clients write one command, or
 *    one pipeline, per call); the next chunk that starts like a command
 *    resumes the parsing;
 *  - replies: chunks are skipped until the client has sent a command after
 *    the loss and a chunk starts like a reply. The commands sent before the
 *    loss were answered inside the lost bytes: they are emitted with
 *    MT_X_END_GUESSED, ending at the last skipped chunk.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agent/protocols/redis.h"
#include "agent/protocols/kit.h"

enum redis_state {
	ST_TYPE = 0, /* at an element start: its type byte */
	ST_LINE,     /* the rest of a header or simple line */
	ST_BULK,     /* bulk bytes and their CRLF: skip bulk_left */
	ST_INLINE,   /* an inline command line (client, top level) */
	ST_LOST,     /* framing lost: wait for a chunk that starts a message */
};

/* redis_dir.bits */
enum {
	B_OPEN = 1 << 0,  /* a message is being read */
	B_ERROR = 1 << 1, /* the reply is an error */
	B_CUT = 1 << 2,	  /* the message's end was guessed */
};

/* Pub/sub commands and the kinds of their confirmations. */
enum ps_kind {
	PS_NONE = 0,
	PS_SUBSCRIBE,
	PS_PSUBSCRIBE,
	PS_SSUBSCRIBE,
	PS_UNSUBSCRIBE,
	PS_PUNSUBSCRIBE,
	PS_SUNSUBSCRIBE,
	PS_MESSAGE, /* message, pmessage, smessage: pushes only */
};

#define BULK_MAX   (1ull << 32) /* longest bulk taken as real (proto-max-bulk-len is 512 MB) */
#define COUNT_MAX  (1ll << 31)	/* most elements in one aggregate */
#define NUM_DIGITS 19
#define LINE_LIMIT (64u * 1024) /* longer lines are not RESP (inline commands stop there too) */

struct feed {
	struct l7_feed l7; /* the chunk, its direction, where exchanges go */
	struct redis_conn *c;
	struct redis_dir *d;
};

#define PROTO MT_PROTO_REDIS

static bool is_type(uint8_t t)
{
	return t && strchr("+-:$*%~>|_#,(!=", t) != NULL;
}

static bool is_upper(uint8_t ch)
{
	return ch >= 'A' && ch <= 'Z';
}

static bool is_alpha(uint8_t ch)
{
	return is_upper(ch) || (ch >= 'a' && ch <= 'z');
}

/* A byte of a command name: letters, digits and the separators modules use (JSON.GET). */
static bool is_name_byte(uint8_t ch)
{
	return is_alpha(ch) || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
	       ch == '|';
}

/* Parses a signed decimal of @n bytes; false unless it is one. */
static bool parse_int(const char *p, size_t n, int64_t *out)
{
	bool neg = n > 0 && p[0] == '-';
	int64_t v = 0;
	size_t i = neg ? 1 : 0;

	if (i == n || n - i > NUM_DIGITS - 1)
		return false;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

static enum ps_kind ps_kind_of(const char *s, size_t n)
{
	static const struct {
		const char *name;
		uint8_t kind;
	} kinds[] = {
		{"subscribe", PS_SUBSCRIBE},	   {"psubscribe", PS_PSUBSCRIBE},
		{"ssubscribe", PS_SSUBSCRIBE},	   {"unsubscribe", PS_UNSUBSCRIBE},
		{"punsubscribe", PS_PUNSUBSCRIBE}, {"sunsubscribe", PS_SUNSUBSCRIBE},
		{"message", PS_MESSAGE},	   {"pmessage", PS_MESSAGE},
		{"smessage", PS_MESSAGE},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == n && strncasecmp(kinds[i].name, s, n) == 0)
			return kinds[i].kind;
	return PS_NONE;
}

static bool is_unsub(uint8_t kind)
{
	return kind == PS_UNSUBSCRIBE || kind == PS_PUNSUBSCRIBE || kind == PS_SUNSUBSCRIBE;
}

static void dir_reset(struct redis_dir *d)
{
	memset(d, 0, sizeof(*d));
}

void redis_init(struct redis_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->db = -1;
}

/* ---- pairing ---- */

static struct redis_req *head_req(struct redis_conn *c)
{
	return c->count ? &c->pending[c->head] : NULL;
}

static void emit_req(struct feed *f, const struct redis_req *r, uint64_t resp_start,
		     uint64_t resp_end, uint32_t flags, const char *err, size_t err_n)
{
	struct redis_conn *c = f->c;
	struct mt_exchange x;

	l7_exchange_init(&x, MT_PROTO_REDIS, r->req_seq, r->flags | flags, r->start_ns, r->end_ns);
	x.resp_start_ns = resp_start;
	x.resp_end_ns = resp_end;
	memcpy(x.operation, r->op, sizeof(r->op));
	x.operation[sizeof(r->op) - 1] = '\0';
	if (err_n) {
		err_n = l7_min_size(err_n, sizeof(x.status_text) - 1);
		memcpy(x.status_text, err, err_n);
	}
	if (c->db >= 0)
		snprintf(x.db_namespace, sizeof(x.db_namespace), "%d", c->db);
	l7_emit_done(&f->l7, &x);
}

static void pop_head(struct redis_conn *c)
{
	c->head = (uint16_t)((c->head + 1) % REDIS_PIPELINE_MAX);
	c->count--;
}

/* A complete command: it waits for its reply (or is dropped when too many do). */
static void push_req(struct feed *f, uint32_t flags)
{
	struct redis_conn *c = f->c;
	struct redis_dir *d = f->d;
	struct redis_req *r;
	size_t i;

	f->l7.stats->requests++;
	if (c->count >= REDIS_PIPELINE_MAX) {
		f->l7.stats->pipeline_drops++;
		if (c->skip_tail < UINT16_MAX)
			c->skip_tail++;
		return;
	}
	r = &c->pending[(c->head + c->count) % REDIS_PIPELINE_MAX];
	c->count++;
	memset(r, 0, sizeof(*r));
	r->start_ns = d->start_ns;
	r->end_ns = d->end_ns;
	r->req_seq = d->start_seq;
	r->skip_before = c->skip_tail;
	c->skip_tail = 0;
	r->flags = (uint8_t)flags;
	r->select_db = -1;
	for (i = 0; i < d->name_len && i < sizeof(r->op) - 1; i++) {
		uint8_t ch = (uint8_t)d->name[i];

		r->op[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
	}
	r->op[i] = '\0';
	r->kind = (uint8_t)ps_kind_of(r->op, i);
	if (r->kind == PS_MESSAGE)
		r->kind = PS_NONE;
	if (strcmp(r->op, "SELECT") == 0) {
		int64_t db;

		if (parse_int(d->arg, d->arg_len, &db) && db >= 0 && db <= INT16_MAX)
			r->select_db = (int16_t)db;
	}
	l7_announce(&f->l7, PROTO, r->req_seq, r->start_ns, r->end_ns, r->op, sizeof(r->op));
}

/* Length of the error prefix in @s: up to the first space. */
static size_t err_prefix(const char *s, size_t n)
{
	const char *sp = memchr(s, ' ', n);

	return sp ? (size_t)(sp - s) : n;
}

/* A complete reply (or push) from the server. */
static void reply_done(struct feed *f)
{
	struct redis_conn *c = f->c;
	struct redis_dir *d = f->d;
	struct redis_req *r = head_req(c);
	uint8_t kind = PS_NONE;
	bool err = d->bits & B_ERROR;

	if ((d->top == '*' || d->top == '>') && d->name_len)
		kind = (uint8_t)ps_kind_of(d->name, d->name_len);
	if (d->top == '>' || (d->top == '*' && kind != PS_NONE)) {
		bool sub = c->subscribed;
		bool confirm_kind = kind != PS_NONE && kind != PS_MESSAGE;
		bool confirms = confirm_kind && r && !r->skip_before && r->kind == kind;

		/* RESP2 only: a RESP3 connection gets '>' pushes, never ambiguous. */
		if (d->top == '*' && confirm_kind && (confirms || sub))
			c->subscribed = !is_unsub(kind) || d->last_int > 0;
		if (!confirms && (d->top == '>' || sub))
			return; /* a push: never a reply */
	}
	f->l7.stats->responses++;
	if (r && r->skip_before) {
		r->skip_before--;
		return;
	}
	if (!r) {
		if (c->skip_tail)
			c->skip_tail--;
		else
			f->l7.stats->orphan_responses++;
		return;
	}
	if (r->select_db >= 0 && !err)
		c->db = r->select_db;
	emit_req(f, r, d->start_ns, d->end_ns,
		 (err ? MT_X_ERROR : 0) | ((d->bits & B_CUT) ? MT_X_END_GUESSED : 0), d->name,
		 err ? err_prefix(d->name, d->name_len) : 0);
	pop_head(c);
}

static void message_done(struct feed *f)
{
	if (f->l7.is_req)
		push_req(f, (f->d->bits & B_CUT) ? MT_X_REQ_TRUNCATED : 0);
	else
		reply_done(f);
	dir_reset(f->d);
}

/* ---- reading elements ---- */

static void lost(struct feed *f, size_t pos);

/* Keeps up to REDIS_NAME_MAX bytes of the string element being read, where it matters. */
static void keep_string(struct redis_dir *d, const char *p, size_t n)
{
	char *dst = NULL;
	uint8_t *len = NULL;

	if (d->depth == 0) {
		dst = d->name;
		len = &d->name_len;
	} else if (d->depth == 1 && d->elem == 0) {
		dst = d->name;
		len = &d->name_len;
	} else if (d->depth == 1 && d->elem == 1) {
		dst = d->arg;
		len = &d->arg_len;
	}
	if (!dst || *len >= REDIS_NAME_MAX)
		return;
	n = l7_min_size(n, REDIS_NAME_MAX - *len);
	memcpy(dst + *len, p, n);
	*len = (uint8_t)(*len + n);
}

/* The element being read is complete: count it in its aggregate, close what is full. */
static void element_done(struct feed *f, bool is_attr)
{
	struct redis_dir *d = f->d;

	for (;;) {
		if (d->depth == 0) {
			if (is_attr) {
				/* An attribute map comes before the reply it describes. */
				d->top = 0;
				d->name_len = d->arg_len = 0;
				d->elem = 0;
				d->state = ST_TYPE;
				return;
			}
			message_done(f);
			return;
		}
		if (!is_attr) {
			d->left[d->depth - 1]--;
			if (d->depth == 1)
				d->elem++;
		}
		d->state = ST_TYPE;
		if (d->left[d->depth - 1] > 0)
			return;
		d->depth--;
		is_attr = d->attr & (1u << d->depth);
		d->attr &= (uint16_t) ~(1u << d->depth);
	}
}

/* A header or simple line is complete: @p[0..@n) is what follows the type byte. */
static void on_line(struct feed *f, const char *p, size_t n, bool whole)
{
	struct redis_dir *d = f->d;
	int64_t v;

	switch (d->type) {
	case '*':
	case '%':
	case '~':
	case '>':
	case '|':
		if (!whole || !parse_int(p, n, &v) || v < -1 || v >= COUNT_MAX) {
			lost(f, SIZE_MAX);
			return;
		}
		if (v <= 0) {
			element_done(f, false); /* empty or null aggregate: a plain element */
			return;
		}
		if (d->depth >= REDIS_DEPTH_MAX) {
			lost(f, SIZE_MAX);
			return;
		}
		if (d->type == '|')
			d->attr |= (uint16_t)(1u << d->depth);
		d->left[d->depth++] = (d->type == '%' || d->type == '|') ? 2 * v : v;
		d->state = ST_TYPE;
		return;
	case '$':
	case '=':
	case '!':
		if (!whole || !parse_int(p, n, &v) || v < -1 || (uint64_t)v + 2 > BULK_MAX) {
			lost(f, SIZE_MAX);
			return;
		}
		if (v == -1) {
			element_done(f, false);
			return;
		}
		if (d->type == '!' && d->depth == 0)
			d->bits |= B_ERROR;
		d->bulk_left = (uint64_t)v + 2;
		d->state = ST_BULK;
		return;
	case '-':
		if (d->depth == 0)
			d->bits |= B_ERROR;
		keep_string(d, p, n);
		break;
	case ':':
		if (d->depth == 1 && parse_int(p, n, &v))
			d->last_int = v;
		break;
	case '+':
		keep_string(d, p, n);
		break;
	default: /* _ # , ( : scalars with nothing to keep */
		break;
	}
	element_done(f, false);
}

/* An inline command line: its first word is the command, its second the argument. */
static void on_inline(struct feed *f, const char *p, size_t n)
{
	struct redis_dir *d = f->d;
	size_t i = 0, w;

	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	w = i;
	while (i < n && p[i] != ' ' && p[i] != '\t')
		i++;
	d->name_len = (uint8_t)l7_min_size(i - w, REDIS_NAME_MAX);
	memcpy(d->name, p + w, d->name_len);
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	w = i;
	while (i < n && p[i] != ' ' && p[i] != '\t')
		i++;
	d->arg_len = (uint8_t)l7_min_size(i - w, REDIS_NAME_MAX);
	memcpy(d->arg, p + w, d->arg_len);
	message_done(f);
}

/* The line (after its type byte) ends at @end; keeps its first bytes across chunks. */
static void line_piece(struct redis_dir *d, const uint8_t *p, size_t n)
{
	size_t keep = l7_min_size(n, REDIS_LINE_MAX - d->line_keep);

	memcpy(d->line + d->line_keep, p, keep);
	d->line_keep = (uint8_t)(d->line_keep + keep);
	d->line_len = (uint32_t)l7_min_size((size_t)d->line_len + n, UINT32_MAX);
}

/* Reads captured bytes from @pos while the direction is in a line state; returns the new pos. */
static size_t feed_lines(struct feed *f, const uint8_t *data, size_t pos, size_t cap)
{
	struct redis_dir *d = f->d;

	while (pos < cap && (d->state == ST_TYPE || d->state == ST_LINE || d->state == ST_INLINE)) {
		const uint8_t *nl;
		size_t seg;
		bool whole;

		if (d->state == ST_TYPE) {
			uint8_t t = data[pos];

			if (!(d->bits & B_OPEN)) {
				if (f->l7.is_req && (t == '\r' || t == '\n')) {
					pos++; /* empty lines between inline commands */
					continue;
				}
				if (f->l7.is_req ? (t != '*' && !is_alpha(t)) : !is_type(t)) {
					lost(f, pos);
					return cap;
				}
				d->bits |= B_OPEN;
				d->start_ns = f->l7.ts;
				d->top = t;
				if (f->l7.is_req)
					d->start_seq =
						l7_request_seq(f->l7.seq, pos, &f->c->req_counter);
			} else if (d->top == 0) {
				if (!is_type(t)) {
					lost(f, SIZE_MAX);
					return cap;
				}
				d->top = t; /* the reply after a top-level attribute */
			} else if (!is_type(t) || (f->l7.is_req && t != '$')) {
				lost(f, SIZE_MAX);
				return cap;
			}
			d->end_ns = f->l7.ts;
			d->line_len = 0;
			d->line_keep = 0;
			if (f->l7.is_req && d->depth == 0 && t != '*') {
				d->state =
					ST_INLINE; /* the type byte is the command's first letter */
				continue;
			}
			d->type = t;
			d->state = ST_LINE;
			pos++;
			continue;
		}
		nl = memchr(data + pos, '\n', cap - pos);
		seg = nl ? (size_t)(nl - data) - pos : cap - pos;
		line_piece(d, data + pos, seg);
		d->end_ns = f->l7.ts;
		if (!nl) {
			if (d->line_len > LINE_LIMIT)
				lost(f, SIZE_MAX);
			return cap;
		}
		pos += seg + 1;
		whole = d->line_len <= REDIS_LINE_MAX;
		{
			size_t n = d->line_keep;

			if (whole && n > 0 && d->line[n - 1] == '\r')
				n--;
			if (d->state == ST_INLINE)
				on_inline(f, d->line, n);
			else
				on_line(f, d->line, n, whole);
		}
	}
	return pos;
}

/* Skips bulk bytes [pos, pos + n) of the chunk; @cap of its bytes are captured. */
static void skip_bulk(struct feed *f, const uint8_t *data, size_t pos, size_t n, size_t cap)
{
	struct redis_dir *d = f->d;
	uint64_t data_left = d->bulk_left > 2 ? d->bulk_left - 2 : 0;
	size_t seen = pos < cap ? l7_min_size(n, cap - pos) : 0;

	if (seen && data_left)
		keep_string(d, (const char *)data + pos, l7_min_size(seen, data_left));
	/* The two bytes after the data must be CR LF, where they were captured. */
	for (size_t i = data_left < n ? (size_t)data_left : n; i < n && i < seen; i++) {
		uint64_t left = d->bulk_left - i;

		if ((left == 2 && data[pos + i] != '\r') || (left == 1 && data[pos + i] != '\n')) {
			d->bulk_left = 0;
			lost(f, SIZE_MAX);
			return;
		}
	}
	d->bulk_left -= n;
	d->end_ns = f->l7.ts;
	if (d->bulk_left == 0)
		element_done(f, false);
}

/* ---- losing and finding the framing ---- */

/*
 * The framing is lost at byte @pos of the chunk (SIZE_MAX: inside a message,
 * nothing to count as garbage).
 */
static void lost(struct feed *f, size_t pos)
{
	struct redis_dir *d = f->d;
	bool open = d->bits & B_OPEN;

	/* A command is taken to end with this chunk. */
	if (f->l7.is_req && open && (d->name_len || d->depth > 0 || d->state == ST_INLINE)) {
		d->bits |= B_CUT;
		d->end_ns = f->l7.ts;
		push_req(f, MT_X_REQ_TRUNCATED);
	}
	l7_lost_at(&f->c->lost, &f->l7, pos, open, f->c->count, open ? f->l7.ts : d->end_ns);
	dir_reset(d);
	d->state = ST_LOST;
}

/*
 * Do the captured bytes @p[0..@n) begin with a message? They must parse as
 * RESP as far as they go (a command: an array of bulk strings, or an inline
 * line of a name).
 */
static bool looks_like_start(bool is_req, const uint8_t *p, size_t n)
{
	size_t pos = 0, elems = 0;
	int64_t expect = 1; /* elements still expected at the top level, roughly */

	if (n == 0)
		return false;
	if (is_req && p[0] != '*') {
		size_t i = 0;

		while (i < n && is_name_byte(p[i]))
			i++;
		return is_alpha(p[0]) && i <= REDIS_NAME_MAX &&
		       (i == n || p[i] == ' ' || p[i] == '\r' || p[i] == '\n');
	}
	while (pos < n && elems < 64 && expect > 0) {
		const uint8_t *nl;
		uint8_t t = p[pos];
		int64_t v = 0;

		if (!is_type(t) || (is_req && elems == 0 && t != '*') ||
		    (is_req && elems > 0 && t != '$'))
			return false;
		nl = memchr(p + pos, '\n', l7_min_size(n - pos, 24));
		if (!nl)
			return n - pos < 24;
		if (nl == p + pos + 1 || nl[-1] != '\r')
			return false;
		if (strchr("*%~>|$=!:", t) &&
		    !parse_int((const char *)p + pos + 1, (size_t)(nl - p) - pos - 2, &v))
			return false;
		pos = (size_t)(nl - p) + 1;
		elems++;
		if (elems == 1 && strchr("*%~>|", t))
			expect = t == '%' || t == '|' ? 2 * v : v;
		else if (elems > 1 || !strchr("*%~>|", t))
			expect--;
		if (strchr("$=!", t) && v >= 0) {
			if ((uint64_t)v + 2 > n - pos)
				return true;
			if (p[pos + v] != '\r' || p[pos + v + 1] != '\n')
				return false;
			pos += (size_t)v + 2;
		}
	}
	return true;
}

/* The oldest command ends without its reply (an l7_answer_fn). */
static void answer_head(void *p, uint64_t resp_end, uint32_t flags)
{
	struct feed *f = p;
	struct redis_req *r = head_req(f->c);

	if (r->skip_before == 0)
		emit_req(f, r, 0, resp_end, flags, NULL, 0);
	pop_head(f->c);
}

void redis_feed(struct redis_conn *c, bool client_to_server, const struct mt_chunk *ch,
		mt_exchange_fn emit, void *ctx, struct l7_stats *stats)
{
	struct feed f;
	const uint8_t *data;
	size_t pos = 0, cap, len;

	if (!c || !l7_feed_begin(&f.l7, client_to_server, ch, emit, ctx, stats))
		return;
	f.c = c;
	f.d = client_to_server ? &c->req : &c->resp;
	if (f.d->state == ST_LOST) {
		if (!l7_lost_resync(&c->lost, &f.l7,
				    looks_like_start(client_to_server, f.l7.data, f.l7.cap),
				    c->count, answer_head, &f))
			return;
		f.d->state = ST_TYPE;
	}
	data = f.l7.data;
	len = f.l7.len;
	cap = f.l7.cap;
	while (pos < len) {
		struct redis_dir *d = f.d;

		if (d->state == ST_LOST)
			return;
		if (d->state == ST_BULK) {
			size_t n = (size_t)(d->bulk_left < len - pos ? d->bulk_left : len - pos);

			skip_bulk(&f, data, pos, n, cap);
			pos += n;
			continue;
		}
		if (pos < cap) {
			pos = feed_lines(&f, data, pos, cap);
			continue;
		}
		/* A line or a message start in uncaptured bytes. */
		if (d->state == ST_INLINE) {
			d->bits |= B_CUT; /* an inline command: taken to end with its chunk */
			d->end_ns = f.l7.ts;
			on_inline(&f, d->line, d->line_keep);
		} else {
			lost(&f, SIZE_MAX);
		}
		return;
	}
}

void redis_close(struct redis_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		 struct l7_stats *stats)
{
	struct feed f;

	if (!c)
		return;
	l7_feed_close(&f.l7, ts_ns, emit, ctx, stats);
	f.c = c;
	f.d = &c->resp;
	l7_lost_close(&c->lost, &f.l7, c->req.state == ST_LOST, c->resp.state == ST_LOST, c->count,
		      answer_head, &f);
	redis_init(c);
}

/* ---- detection ---- */

enum l7_verdict redis_detect(const uint8_t *buf, size_t n)
{
	static const char *const inline_cmds[] = {"PING",  "ECHO", "INFO",
						  "HELLO", "AUTH", "SELECT"};
	size_t i = 1, j;
	int64_t count = 0, blen = 0;

	if (!buf || n < 4)
		return L7_NO;
	if (buf[0] != '*') {
		if (!is_upper(buf[0]))
			return L7_NO;
		while (i < n && i < 8 && is_upper(buf[i]))
			i++;
		if (i == n || (buf[i] != ' ' && buf[i] != '\r'))
			return L7_NO;
		for (j = 0; j < sizeof(inline_cmds) / sizeof(inline_cmds[0]); j++)
			if (strlen(inline_cmds[j]) == i && memcmp(inline_cmds[j], buf, i) == 0)
				return L7_FROM_CLIENT;
		return L7_NO;
	}
	/* "*<count>\r\n$<len>\r\n<name>\r\n" */
	while (i < n && i < 8 && buf[i] >= '0' && buf[i] <= '9')
		count = count * 10 + (buf[i++] - '0');
	if (i == 1 || count < 1 || i + 2 >= n || buf[i] != '\r' || buf[i + 1] != '\n' ||
	    buf[i + 2] != '$')
		return L7_NO;
	i += 3;
	j = i;
	while (i < n && i < j + 3 && buf[i] >= '0' && buf[i] <= '9')
		blen = blen * 10 + (buf[i++] - '0');
	if (i == j || blen < 1 || blen > REDIS_NAME_MAX || i + 2 + (size_t)blen + 2 > n ||
	    buf[i] != '\r' || buf[i + 1] != '\n')
		return L7_NO;
	i += 2;
	if (!is_alpha(buf[i]))
		return L7_NO;
	for (j = 0; j < (size_t)blen; j++)
		if (!is_name_byte(buf[i + j]))
			return L7_NO;
	return l7_client_if(buf[i + blen] == '\r' && buf[i + blen + 1] == '\n');
}

/* ---- registry entry ---- */

L7_PARSER(redis_parser, struct redis_conn, redis, .protocol = MT_PROTO_REDIS, .name = "redis",
	  .detect = redis_detect);
