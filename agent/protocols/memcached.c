// SPDX-License-Identifier: Apache-2.0
/*
 * Memcached text protocol, both directions of one connection.
 * Spec: https://github.com/memcached/memcached/blob/master/doc/protocol.txt
 *       (meta commands: the "Meta Commands" section of the same file)
 *
 * Each direction reads lines (one memchr each; a line split across chunks
 * is gathered in memcached_dir.line) and data blocks, skipped by count, gap
 * bytes included. Responses frame themselves: VALUE/STAT/ITEM lines continue
 * a response up to END, VA carries one data block, any other line is a whole
 * response. A line that runs into uncaptured bytes loses the framing:
 *  - a command is taken to end with its chunk; the next chunk that starts
 *    with a command word resumes the parsing;
 *  - a response: when the line is the last 5 bytes of the chunk inside a
 *    retrieval response, it is taken for "END\r\n"; otherwise chunks are
 *    skipped until the client has sent a command after the loss and a chunk
 *    starts with a response word. The commands sent before the loss were
 *    answered inside the lost bytes (MT_X_END_GUESSED).
 */
#include <string.h>

#include "agent/protocols/memcached.h"
#include "agent/protocols/kit.h"

enum mc_state {
	ST_LINE = 0, /* reading a line */
	ST_DATA,     /* a data block and its CRLF: skip data_left */
	ST_LOST,     /* framing lost: wait for a chunk that starts a line we know */
};

/* memcached_dir.bits */
enum {
	B_OPEN = 1 << 0,  /* a message is being read */
	B_MULTI = 1 << 1, /* a response of VALUE/STAT lines, up to END */
	B_ERROR = 1 << 2, /* the response is an error */
	B_CUT = 1 << 3,	  /* the message's end was guessed */
	B_LAST = 1 << 4,  /* the message ends with the data block being skipped */
};

enum cmd_kind {
	K_UNKNOWN = 0,
	K_LINE,	    /* one line, one response (noreply: none) */
	K_GET,	    /* one line, a VALUE... END response */
	K_STORE,    /* <cmd> <key> <flags> <exptime> <bytes> [noreply] + data */
	K_CAS,	    /* cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] + data */
	K_META,	    /* mg md ma me mn: flags, q for quiet */
	K_META_SET, /* ms <key> <datalen> <flags>* + data */
	K_QUIT,	    /* no response */
};

static const struct {
	const char *name;
	uint8_t kind;
} commands[] = {
	{"get", K_GET},
	{"gets", K_GET},
	{"gat", K_GET},
	{"gats", K_GET},
	{"set", K_STORE},
	{"add", K_STORE},
	{"replace", K_STORE},
	{"append", K_STORE},
	{"prepend", K_STORE},
	{"cas", K_CAS},
	{"delete", K_LINE},
	{"incr", K_LINE},
	{"decr", K_LINE},
	{"touch", K_LINE},
	{"mg", K_META},
	{"md", K_META},
	{"ma", K_META},
	{"me", K_META},
	{"mn", K_META},
	{"ms", K_META_SET},
	{"stats", K_LINE},
	{"version", K_LINE},
	{"flush_all", K_LINE},
	{"verbosity", K_LINE},
	{"cache_memlimit", K_LINE},
	{"shutdown", K_LINE},
	{"slabs", K_LINE},
	{"lru", K_LINE},
	{"lru_crawler", K_LINE},
	{"watch", K_LINE},
	{"quit", K_QUIT},
};

/* Words that begin a response line. */
static const char *const responses[] = {
	"VALUE",   "END",     "STORED", "NOT_STORED",	"EXISTS",	"NOT_FOUND",
	"DELETED", "TOUCHED", "ERROR",	"CLIENT_ERROR", "SERVER_ERROR", "STAT",
	"ITEM",	   "VERSION", "OK",	"RESET",	"BUSY",		"BADCLASS",
	"NOSPARE", "NOTFULL", "UNSAFE", "SAME",		"VA",		"HD",
	"EN",	   "NF",      "NS",	"EX",		"MN",		"ME",
};

#define TOKENS_MAX 8
#define DATA_MAX \
	(1ull << 31) /* larger data blocks are not taken as real (item_size_max is 1 MB .. 1 GB) */
#define LINE_LIMIT \
	(64u * 1024) /* longer lines are not memcached (its own limit is 2048 for most) */
#define DIGITS_MAX 19

struct feed {
	struct l7_feed l7; /* the chunk, its direction, where exchanges go */
	struct memcached_conn *c;
	struct memcached_dir *d;
};

#define PROTO MT_PROTO_MEMCACHED

struct tokens {
	const char *p[TOKENS_MAX];
	size_t n[TOKENS_MAX];
	size_t count;
};

static void tokenize(const char *p, size_t n, struct tokens *t)
{
	size_t i = 0;

	t->count = 0;
	while (i < n && t->count < TOKENS_MAX) {
		size_t s;

		while (i < n && p[i] == ' ')
			i++;
		if (i == n)
			break;
		s = i;
		while (i < n && p[i] != ' ')
			i++;
		t->p[t->count] = p + s;
		t->n[t->count++] = i - s;
	}
}

static bool tok_is(const struct tokens *t, size_t i, const char *s)
{
	return i < t->count && t->n[i] == strlen(s) && memcmp(t->p[i], s, t->n[i]) == 0;
}

static bool parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > DIGITS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

static int command_index(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == n && memcmp(commands[i].name, p, n) == 0)
			return (int)i;
	return -1;
}

static bool response_word(const char *p, size_t n)
{
	if (n > 0 && n <= DIGITS_MAX && p[0] >= '0' && p[0] <= '9') {
		uint64_t v;

		return parse_u64(p, n, &v); /* incr/decr */
	}
	for (size_t i = 0; i < sizeof(responses) / sizeof(responses[0]); i++)
		if (strlen(responses[i]) == n && memcmp(responses[i], p, n) == 0)
			return true;
	return false;
}

static void dir_reset(struct memcached_dir *d)
{
	d->state = ST_LINE;
	d->bits = 0;
	d->line_keep = 0;
	d->line_len = 0;
	d->data_left = 0;
	d->start_ns = 0;
	d->end_ns = 0;
	d->status[0] = '\0';
}

void memcached_init(struct memcached_conn *c)
{
	memset(c, 0, sizeof(*c));
}

/* ---- pairing ---- */

static void emit_req(struct feed *f, const struct memcached_req *r, uint64_t resp_start,
		     uint64_t resp_end, uint32_t flags, const char *status)
{
	struct mt_exchange x;

	l7_exchange_init(&x, MT_PROTO_MEMCACHED, r->req_seq, r->flags | flags, r->start_ns,
			 r->end_ns);
	x.resp_start_ns = resp_start;
	x.resp_end_ns = resp_end;
	memcpy(x.operation, r->op, sizeof(r->op));
	x.operation[sizeof(r->op) - 1] = '\0';
	if (status)
		memcpy(x.status_text, status, sizeof(x.status_text));
	x.status_text[sizeof(x.status_text) - 1] = '\0';
	l7_emit_done(&f->l7, &x);
}

static void pop_head(struct memcached_conn *c)
{
	c->head = (uint16_t)((c->head + 1) % MEMCACHED_PIPELINE_MAX);
	c->count--;
}

/*
 * A complete command. @op is its word ("" if unknown); @expects says whether
 * a response will come. Commands that get none are emitted at once.
 */
static void push_req(struct feed *f, const char *op, size_t op_n, bool expects, bool quiet,
		     uint32_t flags)
{
	struct memcached_conn *c = f->c;
	struct memcached_dir *d = f->d;
	struct memcached_req r;

	f->l7.stats->requests++;
	memset(&r, 0, sizeof(r));
	r.start_ns = d->start_ns;
	r.end_ns = d->end_ns;
	r.req_seq = d->start_seq;
	r.flags = (uint8_t)flags;
	r.quiet = quiet;
	if (op_n) {
		memcpy(r.op, op, l7_min_size(op_n, sizeof(r.op) - 1));
	} else {
		memcpy(r.op, "unknown", sizeof("unknown"));
	}
	if (expects && c->count >= MEMCACHED_PIPELINE_MAX) {
		f->l7.stats->pipeline_drops++;
		if (c->skip_tail < UINT16_MAX)
			c->skip_tail++;
		return;
	}
	l7_announce(&f->l7, PROTO, r.req_seq, r.start_ns, r.end_ns, r.op, sizeof(r.op));
	if (!expects) {
		emit_req(f, &r, 0, 0, 0, NULL);
		return;
	}
	r.skip_before = c->skip_tail;
	c->skip_tail = 0;
	c->pending[(c->head + c->count) % MEMCACHED_PIPELINE_MAX] = r;
	c->count++;
}

/* A complete response. @mn: it is "MN", which flushes quiet meta commands. */
static void resp_done(struct feed *f, bool mn)
{
	struct memcached_conn *c = f->c;
	struct memcached_dir *d = f->d;
	uint32_t flags =
		((d->bits & B_ERROR) ? MT_X_ERROR : 0) | ((d->bits & B_CUT) ? MT_X_END_GUESSED : 0);

	f->l7.stats->responses++;
	/* Quiet meta commands before a no-op got no response: that was their success. */
	while (mn && c->count && c->pending[c->head].quiet && !c->pending[c->head].skip_before) {
		emit_req(f, &c->pending[c->head], 0, 0, 0, NULL);
		pop_head(c);
	}
	if (c->count && c->pending[c->head].skip_before) {
		c->pending[c->head].skip_before--;
	} else if (c->count) {
		emit_req(f, &c->pending[c->head], d->start_ns, d->end_ns, flags,
			 (d->bits & B_ERROR) ? d->status : NULL);
		pop_head(c);
	} else if (c->skip_tail) {
		c->skip_tail--;
	} else {
		f->l7.stats->orphan_responses++;
	}
	dir_reset(d);
}

/* ---- lines ---- */

static void lost(struct feed *f, size_t pos);

/* A command line is complete: what follows it, and does a response come? */
static void on_request_line(struct feed *f, const char *p, size_t n, bool cut)
{
	struct memcached_dir *d = f->d;
	struct tokens t;
	uint64_t bytes = 0;
	int ci;
	uint8_t kind;
	bool noreply, quiet = false, has_data = false;

	tokenize(p, n, &t);
	ci = t.count ? command_index(t.p[0], t.n[0]) : -1;
	kind = ci >= 0 ? commands[ci].kind : K_UNKNOWN;
	noreply = t.count > 1 && tok_is(&t, t.count - 1, "noreply") && kind != K_GET;
	switch (kind) {
	case K_STORE:
	case K_CAS:
		/* A line memcached rejects has no data block: it answers CLIENT_ERROR at once. */
		has_data =
			t.count >= (kind == K_CAS ? 6u : 5u) && parse_u64(t.p[4], t.n[4], &bytes);
		break;
	case K_META_SET:
		has_data = t.count >= 3 && parse_u64(t.p[2], t.n[2], &bytes);
		/* fall through */
	case K_META:
		for (size_t i = 2; i < t.count; i++)
			if (tok_is(&t, i, "q"))
				quiet = true;
		noreply = false;
		break;
	default:
		break;
	}
	if (cut && (kind == K_STORE || kind == K_CAS || kind == K_META_SET || kind == K_UNKNOWN)) {
		/* Where its data starts is unknown: it ends with the chunk. */
		if (kind != K_UNKNOWN)
			push_req(f, t.p[0], t.n[0], !noreply, quiet, MT_X_REQ_TRUNCATED);
		lost(f, SIZE_MAX);
		return;
	}
	if (has_data && bytes + 2 <= DATA_MAX) {
		/* The request ends after its data; keep what the line said until then. */
		d->data_left = bytes + 2;
		d->state = ST_DATA;
		d->bits |= B_LAST;
		d->line_keep = (uint16_t)l7_min_size(n, sizeof(d->line));
		memmove(d->line, p, d->line_keep);
		return;
	}
	push_req(f, ci >= 0 ? t.p[0] : NULL, ci >= 0 ? t.n[0] : 0, kind != K_QUIT && !noreply,
		 quiet, cut ? MT_X_REQ_TRUNCATED : 0);
	dir_reset(d);
}

/* The data block of a storage command is skipped: the command is complete. */
static void request_data_done(struct feed *f)
{
	struct memcached_dir *d = f->d;
	struct tokens t;
	bool noreply, quiet = false;
	int ci;

	tokenize(d->line, d->line_keep, &t);
	ci = t.count ? command_index(t.p[0], t.n[0]) : -1;
	noreply = t.count > 1 && tok_is(&t, t.count - 1, "noreply");
	if (ci >= 0 && commands[ci].kind == K_META_SET) {
		noreply = false;
		for (size_t i = 3; i < t.count; i++)
			if (tok_is(&t, i, "q"))
				quiet = true;
	}
	push_req(f, ci >= 0 ? t.p[0] : NULL, ci >= 0 ? t.n[0] : 0, !noreply, quiet,
		 (d->bits & B_CUT) ? MT_X_REQ_TRUNCATED : 0);
	dir_reset(d);
}

static void on_response_line(struct feed *f, const char *p, size_t n)
{
	struct memcached_dir *d = f->d;
	struct tokens t;
	uint64_t bytes;

	tokenize(p, n, &t);
	if (t.count && (tok_is(&t, 0, "VALUE") || tok_is(&t, 0, "VA"))) {
		bool va = t.n[0] == 2;
		size_t at = va ? 1 : 3; /* VA <size> ... / VALUE <key> <flags> <bytes> [<cas>] */

		if (t.count <= at || !parse_u64(t.p[at], t.n[at], &bytes) || bytes + 2 > DATA_MAX) {
			lost(f, SIZE_MAX);
			return;
		}
		if (!va)
			d->bits |= B_MULTI;
		else
			d->bits |= B_LAST;
		d->data_left = bytes + 2;
		d->state = ST_DATA;
		return;
	}
	if (t.count && (tok_is(&t, 0, "STAT") || tok_is(&t, 0, "ITEM"))) {
		d->bits |= B_MULTI;
		return;
	}
	if (t.count && (tok_is(&t, 0, "ERROR") || tok_is(&t, 0, "CLIENT_ERROR") ||
			tok_is(&t, 0, "SERVER_ERROR"))) {
		d->bits |= B_ERROR;
		memcpy(d->status, t.p[0], t.n[0]);
		d->status[t.n[0]] = '\0';
	}
	resp_done(f, tok_is(&t, 0, "MN"));
}

static void line_piece(struct memcached_dir *d, const uint8_t *p, size_t n)
{
	size_t keep = l7_min_size(n, sizeof(d->line) - d->line_keep);

	memcpy(d->line + d->line_keep, p, keep);
	d->line_keep = (uint16_t)(d->line_keep + keep);
	d->line_len = (uint32_t)l7_min_size((size_t)d->line_len + n, UINT32_MAX);
}

static size_t feed_lines(struct feed *f, const uint8_t *data, size_t pos, size_t cap)
{
	struct memcached_dir *d = f->d;

	while (pos < cap && d->state == ST_LINE) {
		const uint8_t *nl;
		size_t seg, n;

		if (!(d->bits & B_OPEN)) {
			uint8_t ch = data[pos];

			if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
			    !(ch >= '0' && ch <= '9') && ch != '\r' && ch != '\n') {
				lost(f, pos);
				return cap;
			}
			d->bits |= B_OPEN;
			d->start_ns = f->l7.ts;
			if (f->l7.is_req)
				d->start_seq = l7_request_seq(f->l7.seq, pos, &f->c->req_counter);
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
		n = d->line_keep;
		if (d->line_len <= sizeof(d->line) && n > 0 && d->line[n - 1] == '\r')
			n--;
		d->line_len = 0;
		d->line_keep = 0;
		if (f->l7.is_req)
			on_request_line(f, d->line, n, false);
		else
			on_response_line(f, d->line, n);
	}
	return pos;
}

static void skip_data(struct feed *f, size_t n)
{
	struct memcached_dir *d = f->d;

	d->data_left -= n;
	d->end_ns = f->l7.ts;
	if (d->data_left)
		return;
	d->state = ST_LINE;
	if (!(d->bits & B_LAST))
		return; /* a VALUE block: more lines follow */
	if (f->l7.is_req)
		request_data_done(f);
	else
		resp_done(f, false);
}

/* ---- losing and finding the framing ---- */

static void lost(struct feed *f, size_t pos)
{
	struct memcached_dir *d = f->d;
	bool open = d->bits & B_OPEN;

	l7_lost_at(&f->c->lost, &f->l7, pos, open, f->c->count, open ? f->l7.ts : d->end_ns);
	dir_reset(d);
	d->state = ST_LOST;
}

/* Do the captured bytes @p[0..@n) begin with a command (or a response) word? */
static bool looks_like_start(bool is_req, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && i < 16 && p[i] != ' ' && p[i] != '\r' && p[i] != '\n')
		i++;
	if (i == 0 || (i < n && i == 16) || (i == n && n >= 16))
		return false;
	if (i == n)
		return true; /* the word runs into the gap: take it */
	return is_req ? command_index((const char *)p, i) >= 0 : response_word((const char *)p, i);
}

/*
 * The oldest command ends without its response (an l7_answer_fn); a quiet
 * meta command's silence at close was its success.
 */
static void answer_head(void *p, uint64_t resp_end, uint32_t flags)
{
	struct feed *f = p;
	struct memcached_req *r = &f->c->pending[f->c->head];

	if (!r->skip_before)
		emit_req(f, r, 0, resp_end, r->quiet && flags == MT_X_NO_RESPONSE ? 0 : flags,
			 NULL);
	pop_head(f->c);
}

/*
 * A line runs into @gap uncaptured bytes that end the chunk. Inside a
 * retrieval response, a line of exactly "END\r\n" is taken as read.
 */
static void line_gap(struct feed *f, uint64_t gap)
{
	struct memcached_dir *d = f->d;

	if (f->l7.is_req) {
		if (d->bits & B_OPEN) {
			d->bits |= B_CUT;
			on_request_line(f, d->line, d->line_keep, true);
			if (d->state != ST_LOST)
				lost(f, SIZE_MAX); /* what follows in the next chunk is unknown */
		} else {
			lost(f, SIZE_MAX);
		}
		return;
	}
	if ((d->bits & B_MULTI) && d->line_len + gap == 5 &&
	    memcmp(d->line, "END\r\n", d->line_keep) == 0) {
		d->bits |= B_CUT;
		resp_done(f, false);
		return;
	}
	lost(f, SIZE_MAX);
}

void memcached_feed(struct memcached_conn *c, bool client_to_server, const struct mt_chunk *ch,
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
		f.d->state = ST_LINE;
	}
	data = f.l7.data;
	len = f.l7.len;
	cap = f.l7.cap;
	while (pos < len) {
		struct memcached_dir *d = f.d;

		if (d->state == ST_LOST)
			return;
		if (d->state == ST_DATA) {
			size_t n = (size_t)(d->data_left < len - pos ? d->data_left : len - pos);

			pos += n;
			skip_data(&f, n);
			continue;
		}
		if (pos < cap) {
			pos = feed_lines(&f, data, pos, cap);
			continue;
		}
		if ((d->bits & B_OPEN) || d->line_keep) {
			line_gap(&f, len - pos);
		} else {
			lost(&f, SIZE_MAX); /* messages wholly in the gap: unknown */
		}
		return;
	}
}

void memcached_close(struct memcached_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
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
	memcached_init(c);
}

/* ---- detection ---- */

enum l7_verdict memcached_detect(const uint8_t *buf, size_t n)
{
	size_t i = 0, k;
	int ci;
	uint8_t kind;

	if (!buf || n < 4 || buf[0] < 'a' || buf[0] > 'z')
		return L7_NO;
	while (i < n && i < 16 && buf[i] >= 'a' && buf[i] <= 'z')
		i++;
	if (i == n || (buf[i] != ' ' && buf[i] != '\r'))
		return L7_NO;
	ci = command_index((const char *)buf, i);
	if (ci < 0)
		return L7_NO;
	kind = commands[ci].kind;
	if (buf[i] == '\r')
		return l7_client_if((kind == K_LINE || kind == K_META) && i + 1 < n &&
				    buf[i + 1] == '\n');
	/* A key: printable, no control bytes. */
	k = i + 1;
	while (k < n && buf[k] > ' ' && buf[k] < 0x7f)
		k++;
	if (k == i + 1)
		return L7_NO;
	if (kind == K_STORE || kind == K_CAS) {
		/* The whole line, when captured: numbers after the key. */
		const uint8_t *nl = memchr(buf, '\n', l7_min_size(n, MEMCACHED_LINE_MAX));
		struct tokens t;
		uint64_t v;

		if (!nl)
			return l7_client_if(n >= MEMCACHED_LINE_MAX);
		tokenize((const char *)buf, (size_t)(nl - buf) - (nl[-1] == '\r' ? 1 : 0), &t);
		if (t.count < (kind == K_CAS ? 6u : 5u))
			return L7_NO;
		for (size_t j = 2; j < (kind == K_CAS ? 6u : 5u); j++)
			if (!parse_u64(t.p[j], t.n[j], &v) &&
			    !(j == 3 && t.n[j] && t.p[j][0] == '-'))
				return L7_NO;
	}
	return l7_client_if(k == n || buf[k] == ' ' || buf[k] == '\r' || buf[k] == '\n');
}

/* ---- registry entry ---- */

L7_PARSER(memcached_parser, struct memcached_conn, memcached, .protocol = MT_PROTO_MEMCACHED,
	  .name = "memcached", .detect = memcached_detect);
