// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL frontend/backend protocol 3.0, both directions of one connection.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html
 *       https://www.postgresql.org/docs/current/protocol-message-formats.html
 *       https://www.postgresql.org/docs/current/protocol-error-fields.html
 *
 * Each direction frames messages by their length (type byte + int32, or
 * int32 alone before the startup completes): the header is gathered across
 * chunks, the first PG_KEEP_MAX body bytes of the messages that matter are
 * kept, and the rest is skipped by count, gap bytes included. A message is
 * handled when its last byte has passed.
 *
 * Pairing: every frontend message that the backend answers with an end
 * marker enters the expect ring (Execute -> CommandComplete / EmptyQuery /
 * PortalSuspended / ErrorResponse; Sync, Query, FunctionCall ->
 * ReadyForQuery). ReadyForQuery closes everything up to the Sync it answers,
 * so the two sides find each other again after any surprise.
 *
 * A header that falls into uncaptured bytes loses the framing (ST_LOST):
 * frontend messages resume at the next chunk that starts with one; backend
 * messages resume once the client has sent something after the loss and a
 * chunk starts with a backend message. What was awaited before the loss was
 * answered inside the lost bytes: emitted with MT_X_END_GUESSED.
 */
#include <string.h>

#include "agent/protocols/postgres.h"
#include "agent/protocols/kit.h"
#include "agent/protocols/sql_sanitize.h"

enum pg_state {
	ST_HEADER = 0, /* gathering a message header */
	ST_BODY,       /* reading (keeping, then skipping) a body */
	ST_LOST,       /* framing lost: wait for a chunk that starts a message */
	ST_OFF,	       /* encrypted: not parsed any more */
};

enum pg_phase {
	PH_NEW = 0,   /* the next frontend message has no type byte (startup, SSLRequest) */
	PH_STARTUP,   /* StartupMessage sent: authentication until the first ReadyForQuery */
	PH_READY,     /* queries */
	PH_ENCRYPTED, /* TLS or GSS encryption accepted */
};

enum x_kind {
	X_EXEC = 1,	/* an Execute with its slot: ends at its completion */
	X_QUERY,	/* a Query with its slot: ends at ReadyForQuery */
	X_PREP,		/* a Sync after a lone Parse, with its slot: ends at ReadyForQuery */
	X_SYNC,		/* a Sync or FunctionCall: ends at ReadyForQuery */
	X_EXEC_DROPPED, /* an Execute without a slot (too many in flight) */
};

/* pg_dir.bits */
enum {
	B_HOLE = 1 << 0, /* the kept body stopped at uncaptured bytes */
};

#define NO_SLOT	       0xff
#define MSG_MAX	       (1u << 30) /* the backend's own limit for a message */
#define CODE_SSL       80877103u
#define CODE_GSSENC    80877104u
#define CODE_CANCEL    80877102u
#define CODE_V3	       196608u
#define STARTUP_MAX    10000u /* the backend's MAX_STARTUP_PACKET_LENGTH */
#define SERVER_KEEP    128    /* an ErrorResponse's first fields hold its SQLSTATE */
#define FRONTEND_TYPES "QPBDESHCXFdcfp"
#define BACKEND_TYPES  "123ACDEGHIKNRSTVWZcdnstv"

struct feed {
	struct l7_feed l7; /* the chunk, its direction, where exchanges go */
	struct pg_conn *c;
	struct pg_dir *d;
};

#define PROTO  MT_PROTO_POSTGRES
#define OP_MAX PG_OP_MAX

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool in_set(uint8_t t, const char *set)
{
	return t && strchr(set, t) != NULL;
}

static void dir_reset(struct pg_dir *d)
{
	d->state = ST_HEADER;
	d->type = 0;
	d->hdr_n = 0;
	d->bits = 0;
	d->keep_n = 0;
	d->left = 0;
	d->len = 0;
}

void pg_init(struct pg_conn *c)
{
	memset(c, 0, sizeof(*c));
}

/* ---- exchanges ---- */

static void emit_slot(struct feed *f, uint8_t i, uint64_t resp_end, uint32_t flags)
{
	struct pg_conn *c = f->c;
	struct pg_slot *s = &c->slots[i];
	struct mt_exchange x;

	l7_exchange_init(&x, MT_PROTO_POSTGRES, s->req_seq, s->flags | flags, s->start_ns,
			 s->end_ns);
	x.resp_start_ns = resp_end ? (s->resp_start_ns ? s->resp_start_ns : resp_end) : 0;
	x.resp_end_ns = resp_end;
	l7_copy_field(x.operation, sizeof(x.operation), s->op, strnlen(s->op, sizeof(s->op)));
	l7_copy_field(x.query_text, sizeof(x.query_text), s->query,
		      strnlen(s->query, sizeof(s->query)));
	l7_copy_field(x.status_text, sizeof(x.status_text), s->status, strnlen(s->status, 5));
	memcpy(x.db_namespace, c->db_namespace, sizeof(x.db_namespace));
	l7_emit_done(&f->l7, &x);
	c->slots_used &= (uint16_t) ~(1u << i);
}

/* A free slot for an exchange, filled from @op/@query, or NO_SLOT (counted). */
static uint8_t slot_new(struct feed *f, const char *op, const char *query, uint64_t start,
			uint32_t req_seq)
{
	struct pg_conn *c = f->c;
	struct pg_slot *s;
	uint8_t i;

	for (i = 0; i < PG_PIPELINE_MAX; i++)
		if (!(c->slots_used & (1u << i)))
			break;
	if (i == PG_PIPELINE_MAX) {
		f->l7.stats->pipeline_drops++;
		return NO_SLOT;
	}
	c->slots_used |= (uint16_t)(1u << i);
	s = &c->slots[i];
	memset(s, 0, offsetof(struct pg_slot, op));
	s->start_ns = start;
	s->end_ns = f->d->end_ns;
	s->req_seq = req_seq;
	l7_copy_field(s->op, sizeof(s->op), op, strnlen(op, PG_OP_MAX));
	l7_copy_field(s->query, sizeof(s->query), query, strnlen(query, MT_QUERY_MAX));
	l7_announce(&f->l7, PROTO, req_seq, start, s->end_ns, s->op, sizeof(s->op));
	return i;
}

static struct pg_expect *expect_head(struct pg_conn *c)
{
	return c->e_count ? &c->expect[c->e_head] : NULL;
}

static void expect_pop(struct pg_conn *c)
{
	c->e_head = (uint8_t)((c->e_head + 1) % PG_EXPECT_MAX);
	c->e_count--;
}

static void expect_push(struct feed *f, uint8_t kind, uint8_t slot)
{
	struct pg_conn *c = f->c;
	struct pg_expect *e;

	if (c->e_count >= PG_EXPECT_MAX) {
		f->l7.stats->pipeline_drops++;
		if (slot != NO_SLOT)
			c->slots_used &= (uint16_t) ~(1u << slot);
		return;
	}
	e = &c->expect[(c->e_head + c->e_count) % PG_EXPECT_MAX];
	c->e_count++;
	e->kind = kind;
	e->slot = slot;
}

/* ---- frontend messages ---- */

static void lost(struct feed *f, size_t pos);

/* Statement @name (@n bytes), or NULL. */
static struct pg_stmt *stmt_find(struct pg_conn *c, const char *name, size_t n)
{
	if (n == 0)
		return c->unnamed.used ? &c->unnamed : NULL;
	if (n > PG_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < PG_STMT_MAX; i++)
		if (c->stmts[i].used && c->stmts[i].name_len == n &&
		    memcmp(c->stmts[i].name, name, n) == 0)
			return &c->stmts[i];
	return NULL;
}

/* Where a Parse of statement @name goes: itself, a free entry, or the oldest. */
static struct pg_stmt *stmt_slot(struct pg_conn *c, const char *name, size_t n)
{
	struct pg_stmt *s = stmt_find(c, name, n), *oldest = &c->stmts[0];

	if (s || n == 0)
		return n == 0 ? &c->unnamed : s;
	for (size_t i = 0; i < PG_STMT_MAX; i++) {
		if (!c->stmts[i].used)
			return &c->stmts[i];
		if (c->stmts[i].age < oldest->age)
			oldest = &c->stmts[i];
	}
	return oldest;
}

/* A NUL-terminated string at @off of the kept body: its length, or -1 if it does not end there. */
static long kept_str(const struct pg_dir *d, size_t off)
{
	const char *nul;

	if (off > d->keep_n)
		return -1;
	nul = memchr(d->keep + off, '\0', d->keep_n - off);
	return nul ? (long)(nul - d->keep - off) : -1;
}

/* The query text at @off: up to its NUL, or all that was kept. */
static size_t kept_text(const struct pg_dir *d, size_t off)
{
	long n = kept_str(d, off);

	if (off > d->keep_n)
		return 0;
	return n >= 0 ? (size_t)n : d->keep_n - off;
}

static void startup_params(struct pg_conn *c, const struct pg_dir *d)
{
	const char *user = NULL, *db = NULL;
	size_t off = 4, user_n = 0, db_n = 0;

	while (off < d->keep_n) {
		long kn = kept_str(d, off), vn;

		if (kn <= 0)
			break;
		vn = kept_str(d, off + (size_t)kn + 1);
		if (vn < 0)
			break;
		if (kn == 4 && memcmp(d->keep + off, "user", 4) == 0) {
			user = d->keep + off + 5;
			user_n = (size_t)vn;
		} else if (kn == 8 && memcmp(d->keep + off, "database", 8) == 0) {
			db = d->keep + off + 9;
			db_n = (size_t)vn;
		}
		off += (size_t)kn + 1 + (size_t)vn + 1;
	}
	if (db && db_n)
		l7_copy_field(c->db_namespace, sizeof(c->db_namespace), db, db_n);
	else if (user)
		l7_copy_field(c->db_namespace, sizeof(c->db_namespace), user, user_n);
}

static void frontend_msg(struct feed *f)
{
	struct pg_conn *c = f->c;
	struct pg_dir *d = f->d;
	char op[PG_OP_MAX], query[MT_QUERY_MAX];
	struct pg_stmt *s;
	uint8_t slot;
	long n;
	size_t qn;

	switch (d->type) {
	case 0: {
		uint32_t code = d->keep_n >= 4 ? be32((const uint8_t *)d->keep) : 0;

		if (code == CODE_SSL || code == CODE_GSSENC) {
			c->ssl_wait = 1;
		} else if (code == CODE_V3) {
			startup_params(c, d);
			c->phase = PH_STARTUP;
		} else if (code != CODE_CANCEL) {
			lost(f, SIZE_MAX);
		}
		return;
	}
	case 'Q':
		f->l7.stats->requests++;
		qn = kept_text(d, 0);
		sql_operation(d->keep, qn, SQL_POSTGRES, op, sizeof(op));
		sql_sanitize(d->keep, qn, SQL_POSTGRES, query, sizeof(query));
		slot = slot_new(f, op, query, d->start_ns, d->start_seq);
		expect_push(f, slot == NO_SLOT ? X_SYNC : X_QUERY, slot);
		c->group_parse = c->group_exec = 0;
		c->group_start_ns = 0;
		return;
	case 'P':
		if (!c->group_start_ns) {
			c->group_start_ns = d->start_ns;
			c->group_start_seq = d->start_seq;
		}
		c->group_parse = 1;
		n = kept_str(d, 0);
		if (n < 0) {
			c->last_op[0] = c->last_query[0] = '\0';
			return;
		}
		qn = kept_text(d, (size_t)n + 1);
		sql_operation(d->keep + n + 1, qn, SQL_POSTGRES, c->last_op, sizeof(c->last_op));
		sql_sanitize(d->keep + n + 1, qn, SQL_POSTGRES, c->last_query,
			     sizeof(c->last_query));
		if (n > PG_NAME_MAX)
			return;
		s = stmt_slot(c, d->keep, (size_t)n);
		s->used = 1;
		s->age = ++c->parses;
		s->name_len = (uint8_t)n;
		memcpy(s->name, d->keep, (size_t)n);
		memcpy(s->op, c->last_op, sizeof(s->op));
		memcpy(s->query, c->last_query, sizeof(s->query));
		return;
	case 'B':
		if (!c->group_start_ns) {
			c->group_start_ns = d->start_ns;
			c->group_start_seq = d->start_seq;
		}
		n = kept_str(d, 0); /* the portal */
		s = NULL;
		if (n >= 0) {
			long sn = kept_str(d, (size_t)n + 1);

			if (sn >= 0)
				s = stmt_find(c, d->keep + n + 1, (size_t)sn);
		}
		l7_copy_field(c->bound_op, sizeof(c->bound_op), s ? s->op : "",
			      s ? strlen(s->op) : 0);
		l7_copy_field(c->bound_query, sizeof(c->bound_query), s ? s->query : "",
			      s ? strlen(s->query) : 0);
		return;
	case 'E':
		f->l7.stats->requests++;
		slot = slot_new(f, c->bound_op, c->bound_query,
				c->group_start_ns ? c->group_start_ns : d->start_ns,
				c->group_start_ns ? c->group_start_seq : d->start_seq);
		expect_push(f, slot == NO_SLOT ? X_EXEC_DROPPED : X_EXEC, slot);
		c->group_exec = 1;
		c->group_start_ns = 0;
		return;
	case 'S':
		slot = NO_SLOT;
		if (c->group_parse && !c->group_exec) {
			f->l7.stats->requests++;
			slot = slot_new(f, "PREPARE", c->last_query,
					c->group_start_ns ? c->group_start_ns : d->start_ns,
					c->group_start_ns ? c->group_start_seq : d->start_seq);
		}
		expect_push(f, slot == NO_SLOT ? X_SYNC : X_PREP, slot);
		c->group_parse = c->group_exec = 0;
		c->group_start_ns = 0;
		return;
	case 'F':
		expect_push(f, X_SYNC, NO_SLOT);
		return;
	default: /* D H C X d c f p: nothing awaited */
		return;
	}
}

/* ---- backend messages ---- */

/* The SQLSTATE ('C' field) of a kept ErrorResponse, or "". */
static void error_code(const struct pg_dir *d, char out[6])
{
	size_t off = 0;

	out[0] = '\0';
	while (off < d->keep_n && d->keep[off]) {
		long n = kept_str(d, off + 1);

		if (n < 0)
			return;
		if (d->keep[off] == 'C') {
			l7_copy_field(out, 6, d->keep + off + 1, (size_t)n);
			return;
		}
		off += 1 + (size_t)n + 1;
	}
}

static void backend_msg(struct feed *f)
{
	struct pg_conn *c = f->c;
	struct pg_dir *d = f->d;
	struct pg_expect *e = expect_head(c);
	char code[6];
	bool synced = false;

	if (c->phase != PH_READY) {
		/* Authentication, parameters, key data: no exchange until ReadyForQuery. */
		if (d->type == 'Z' || d->type == 'E')
			c->phase = PH_READY;
		return;
	}
	if (e && e->slot != NO_SLOT && !in_set(d->type, "ANS") && !c->slots[e->slot].resp_start_ns)
		c->slots[e->slot].resp_start_ns = d->start_ns;

	switch (d->type) {
	case 'C':
	case 'I':
	case 's':
		if (e && e->kind == X_EXEC) {
			f->l7.stats->responses++;
			emit_slot(f, e->slot, d->end_ns, 0);
			expect_pop(c);
		} else if (e && e->kind == X_EXEC_DROPPED) {
			f->l7.stats->responses++;
			expect_pop(c);
		} else if (!e || e->kind != X_QUERY) {
			f->l7.stats->orphan_responses++;
		}
		return;
	case 'E':
		error_code(d, code);
		if (!e) {
			f->l7.stats->orphan_responses++;
			return;
		}
		if (e->slot != NO_SLOT) {
			c->slots[e->slot].flags |= MT_X_ERROR;
			memcpy(c->slots[e->slot].status, code, sizeof(code));
		}
		if (e->kind == X_EXEC) {
			f->l7.stats->responses++;
			emit_slot(f, e->slot, d->end_ns, 0);
			expect_pop(c);
		} else if (e->kind == X_EXEC_DROPPED) {
			expect_pop(c);
		}
		if (e->kind != X_QUERY)
			c->aborted = 1; /* the backend skips to the Sync */
		return;
	case 'Z':
		f->l7.stats->responses++;
		while ((e = expect_head(c)) && !synced) {
			if (e->kind == X_EXEC)
				emit_slot(f, e->slot, d->end_ns,
					  c->aborted ? MT_X_ERROR : MT_X_END_GUESSED);
			else if (e->kind == X_QUERY || e->kind == X_PREP)
				emit_slot(f, e->slot, d->end_ns, 0);
			synced = e->kind == X_QUERY || e->kind == X_PREP || e->kind == X_SYNC;
			expect_pop(c);
		}
		if (!synced)
			f->l7.stats->orphan_responses++;
		c->aborted = 0;
		return;
	default:
		return;
	}
}

/* ---- framing ---- */

/* What is worth keeping of a message's body. */
static size_t keep_limit(const struct feed *f)
{
	if (!f->l7.is_req)
		return f->d->type == 'E' ? SERVER_KEEP : 0;
	return in_set(f->d->type, "QPB") || f->d->type == 0 ? PG_KEEP_MAX : 0;
}

static void message_done(struct feed *f)
{
	struct pg_dir *d = f->d;

	if (f->l7.is_req)
		frontend_msg(f);
	else
		backend_msg(f);
	if (d->state != ST_LOST && d->state != ST_OFF)
		dir_reset(d);
}

/* The header is complete, @pos bytes into the chunk: check it and start the body. */
static void header_done(struct feed *f, size_t pos)
{
	struct pg_dir *d = f->d;
	uint32_t raw;
	bool ok;

	if (d->hdr_n == 4) {
		raw = be32(d->hdr);
		d->type = 0;
		ok = raw >= 8 && raw <= STARTUP_MAX;
	} else {
		raw = be32(d->hdr + 1);
		d->type = d->hdr[0];
		ok = raw >= 4 && raw <= MSG_MAX &&
		     in_set(d->type, f->l7.is_req ? FRONTEND_TYPES : BACKEND_TYPES);
	}
	if (!ok) {
		/* Not a message: its header and what follows are garbage. */
		l7_garbage(&f->l7, d->hdr_n);
		d->hdr_n = 0;
		lost(f, pos);
		return;
	}
	d->len = d->left = raw - 4;
	d->keep_n = 0;
	d->state = ST_BODY;
	if (d->left == 0)
		message_done(f);
}

/*
 * The framing is lost. Bytes from @pos to the end of the chunk are garbage
 * when no message is open (SIZE_MAX: none are).
 */
static void lost(struct feed *f, size_t pos)
{
	struct pg_dir *d = f->d;
	bool open = d->state == ST_BODY || d->hdr_n > 0;

	l7_lost_at(&f->c->lost, &f->l7, pos, open, f->c->e_count, f->l7.ts);
	dir_reset(d);
	d->state = ST_LOST;
}

/* Does @p[0..@n) begin with a message of this direction (as far as it was captured)? */
static bool looks_like_start(bool is_req, const uint8_t *p, size_t n)
{
	size_t pos = 0;

	for (int i = 0; i < 8 && pos < n; i++) {
		uint32_t raw;

		if (!in_set(p[pos], is_req ? FRONTEND_TYPES : BACKEND_TYPES))
			return false;
		if (n - pos < 5)
			return true;
		raw = be32(p + pos + 1);
		if (raw < 4 || raw > MSG_MAX)
			return false;
		if (raw + 1 > n - pos)
			return true;
		pos += raw + 1;
	}
	return pos > 0;
}

/* The oldest response awaited does not come (an l7_answer_fn). */
static void answer_head(void *p, uint64_t resp_end, uint32_t flags)
{
	struct feed *f = p;
	struct pg_expect *e = expect_head(f->c);

	if (e->slot != NO_SLOT)
		emit_slot(f, e->slot, resp_end, flags);
	expect_pop(f->c);
}

/*
 * At a chunk in ST_LOST: whether it finds the framing again. Responses
 * start outside any Sync group; a client found again is past its startup.
 */
static bool resync(struct feed *f)
{
	struct pg_conn *c = f->c;

	if (!l7_lost_resync(&c->lost, &f->l7, looks_like_start(f->l7.is_req, f->l7.data, f->l7.cap),
			    c->e_count, answer_head, f))
		return false;
	if (!f->l7.is_req)
		c->aborted = 0;
	else if (c->phase == PH_NEW)
		c->phase = PH_READY;
	f->d->state = ST_HEADER;
	return true;
}

/* Reads the chunk's bytes, the captured ones and those that only passed. */
static void frame(struct feed *f)
{
	struct pg_conn *c = f->c;
	struct pg_dir *d = f->d;
	const uint8_t *data = f->l7.data;
	size_t pos = 0, cap = f->l7.cap, len = f->l7.len;

	while (pos < len) {
		if (d->state == ST_LOST || d->state == ST_OFF)
			return;
		if (d->state == ST_HEADER) {
			size_t need;

			if (pos >= cap) {
				lost(f, SIZE_MAX); /* a header in uncaptured bytes */
				return;
			}
			if (d->hdr_n == 0) {
				d->start_ns = f->l7.ts;
				if (f->l7.is_req)
					d->start_seq =
						l7_request_seq(f->l7.seq, pos, &c->req_counter);
				if (!f->l7.is_req && c->ssl_wait) {
					/* The answer to an SSLRequest: one byte. */
					c->ssl_wait = 0;
					if (data[pos] == 'S' || data[pos] == 'G') {
						c->phase = PH_ENCRYPTED;
						c->req.state = c->resp.state = ST_OFF;
						return;
					}
					if (data[pos] != 'N') {
						lost(f, pos);
						return;
					}
					pos++;
					continue;
				}
				if (f->l7.is_req && c->phase == PH_NEW && data[pos] != 0)
					c->phase = PH_READY; /* first seen after its startup */
			}
			need = (f->l7.is_req && c->phase == PH_NEW) ? 4 : 5;
			while (d->hdr_n < need && pos < cap)
				d->hdr[d->hdr_n++] = data[pos++];
			d->end_ns = f->l7.ts;
			if (d->hdr_n == need)
				header_done(f, pos);
			continue;
		}
		/* ST_BODY */
		if (l7_body_take(&f->l7, &pos, &d->left, d->keep, &d->keep_n,
				 (d->bits & B_HOLE) ? 0 : keep_limit(f)))
			d->bits |= B_HOLE;
		d->end_ns = f->l7.ts;
		if (d->left == 0)
			message_done(f);
	}
}

void pg_feed(struct pg_conn *c, bool client_to_server, const struct mt_chunk *ch,
	     mt_exchange_fn emit, void *ctx, struct l7_stats *stats)
{
	struct feed f;

	if (!c || !l7_feed_begin(&f.l7, client_to_server, ch, emit, ctx, stats))
		return;
	f.c = c;
	f.d = client_to_server ? &c->req : &c->resp;
	if (f.d->state == ST_OFF)
		return;
	if (f.d->state == ST_LOST && !resync(&f))
		return;
	frame(&f);
}

void pg_close(struct pg_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
	      struct l7_stats *stats)
{
	struct feed f;

	if (!c)
		return;
	l7_feed_close(&f.l7, ts_ns, emit, ctx, stats);
	f.c = c;
	f.d = &c->resp;
	l7_lost_close(&c->lost, &f.l7, c->req.state == ST_LOST, c->resp.state == ST_LOST,
		      c->e_count, answer_head, &f);
	pg_init(c);
}

/* ---- detection ---- */

enum l7_verdict pg_detect(const uint8_t *buf, size_t n)
{
	uint32_t len, code;
	size_t sql = 5;

	if (!buf || n < 8)
		return L7_NO;
	if (buf[0] == 0) {
		len = be32(buf);
		code = be32(buf + 4);
		if (code == CODE_SSL || code == CODE_GSSENC)
			return l7_client_if(len == 8);
		if (code == CODE_CANCEL)
			return l7_client_if(len == 16);
		/* StartupMessage: parameter names are lower-case words */
		return l7_client_if(
			code == CODE_V3 && len > 8 && len <= STARTUP_MAX &&
			(n == 8 || (buf[8] >= 'a' && buf[8] <= 'z') || (buf[8] == 0 && len == 9)));
	}
	if (buf[0] != 'Q' && buf[0] != 'P')
		return L7_NO;
	len = be32(buf + 1);
	if (len < 5 || len > (1u << 24))
		return L7_NO;
	if (buf[0] == 'P') {
		/* Parse: a statement name (often empty), then the SQL */
		const uint8_t *nul = memchr(buf + 5, 0, l7_min_size(n - 5, PG_NAME_MAX + 1));

		if (!nul)
			return L7_NO;
		sql = (size_t)(nul - buf) + 1;
		if (sql >= n)
			return L7_NO;
	}
	/* SQL begins with a letter, a comment, a parenthesis or white space */
	return l7_client_if((buf[sql] >= 'A' && buf[sql] <= 'Z') ||
			    (buf[sql] >= 'a' && buf[sql] <= 'z') || in_set(buf[sql], "(/- \n\t"));
}

/* ---- registry entry ---- */

L7_PARSER(postgres_parser, struct pg_conn, pg, .protocol = MT_PROTO_POSTGRES, .name = "postgresql",
	  .detect = pg_detect);
