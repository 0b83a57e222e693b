// SPDX-License-Identifier: Apache-2.0
/*
 * MySQL / MariaDB client/server protocol, both directions of one connection.
 * Spec: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
 *       https://mariadb.com/kb/en/connection/ (handshake, MariaDB capabilities)
 *       https://mariadb.com/kb/en/result-set-packets/ (metadata caching)
 *
 * Each direction frames packets by their 3-byte length: the header is
 * gathered across chunks, the first bytes of the payload that matter are
 * kept, the rest is skipped by count, gap bytes included. A packet is handled
 * when its last byte has passed. A payload of 0xffffff bytes continues in
 * the next packet, which is then not read as a packet of its own.
 *
 * The response to the oldest command is followed packet by packet (rs):
 * OK / ERR / EOF end it; a column count opens a result set (column
 * definitions, an EOF unless CLIENT_DEPRECATE_EOF, rows, a terminator whose
 * status may say more results follow). A 0xfe packet shorter than 0xffffff is
 * never a row, whatever the capabilities; an EOF is exactly 5 bytes, an OK
 * with the 0xfe header at least 7, which settles a connection whose
 * handshake was not seen.
 *
 * A header in uncaptured bytes loses the framing (ST_LOST): client packets
 * resume at the next chunk that starts with a command; server packets once
 * the client has sent a command after the loss and a chunk starts with a
 * response's first packet. The commands sent before the loss were answered
 * inside the lost bytes (MT_X_END_GUESSED).
 */
#include <stdio.h>
#include <string.h>

#include "agent/protocols/mysql.h"
#include "agent/protocols/kit.h"
#include "agent/protocols/sql_sanitize.h"

enum mysql_state {
	ST_HEADER = 0,
	ST_BODY,
	ST_LOST,
	ST_OFF, /* TLS: not parsed any more */
};

enum mysql_phase {
	PH_NEW = 0, /* nothing seen */
	PH_GREETED, /* the server's greeting: the client's handshake response is next */
	PH_AUTH,    /* authentication packets until OK or ERR */
	PH_COMMAND, /* commands and responses */
};

/* Where the server is in the response to the oldest command. */
enum mysql_rs {
	RS_FIRST = 0,	/* its first packet */
	RS_COLS,	/* column definitions: cols_left */
	RS_COLS_EOF,	/* the EOF after them */
	RS_ROWS,	/* rows up to a terminator */
	RS_PREP_PARAMS, /* COM_STMT_PREPARE: parameter definitions */
	RS_PREP_PARAMS_EOF,
	RS_PREP_COLS,
	RS_PREP_COLS_EOF,
	RS_UNTIL_OK, /* LOCAL INFILE, COM_CHANGE_USER: until OK or ERR */
};

/* mysql_dir.bits */
enum {
	B_HOLE = 1 << 0,      /* the kept payload stopped at uncaptured bytes */
	B_CONTINUES = 1 << 1, /* the packet being read continues the previous one */
	B_NEXT_CONT = 1 << 2, /* the next packet continues this one (0xffffff bytes) */
};

enum {
	COM_QUIT = 0x01,
	COM_INIT_DB = 0x02,
	COM_QUERY = 0x03,
	COM_FIELD_LIST = 0x04,
	COM_STATISTICS = 0x09,
	COM_CHANGE_USER = 0x11,
	COM_STMT_PREPARE = 0x16,
	COM_STMT_EXECUTE = 0x17,
	COM_STMT_SEND_LONG_DATA = 0x18,
	COM_STMT_CLOSE = 0x19,
	COM_STMT_FETCH = 0x1c,
	COM_STMT_BULK_EXECUTE = 0xfa, /* MariaDB */
};

#define CLIENT_CONNECT_WITH_DB	   (1ull << 3)
#define CLIENT_COMPRESS		   (1ull << 5)
#define CLIENT_PROTOCOL_41	   (1ull << 9)
#define CLIENT_SSL		   (1ull << 11)
#define CLIENT_SECURE_CONNECTION   (1ull << 15)
#define CLIENT_PLUGIN_AUTH_LENENC  (1ull << 21)
#define CLIENT_DEPRECATE_EOF	   (1ull << 24)
#define CLIENT_QUERY_ATTRIBUTES	   (1ull << 27) /* MySQL 8: a COM_QUERY carries parameters first */
#define CLIENT_MYSQL		   (1ull << 0)	/* a MariaDB server leaves it clear */
#define MARIADB_CACHE_METADATA	   (1ull << (32 + 4))
#define SERVER_MORE_RESULTS_EXISTS 0x0008
#define PACKET_MAX		   0xffffffu
#define SERVER_KEEP		   160 /* a greeting, an OK/ERR/EOF, a prepare OK */
#define DE_UNKNOWN		   0
#define DE_NO			   1
#define DE_YES			   2

/* Commands other than queries: their names, and whether a response comes. */
static const struct {
	uint8_t cmd;
	bool response;
	const char *name;
} commands[] = {
	{COM_QUIT, false, "QUIT"},
	{COM_INIT_DB, true, "INIT_DB"},
	{COM_FIELD_LIST, true, "FIELD_LIST"},
	{0x07, true, "REFRESH"},
	{0x08, true, "SHUTDOWN"},
	{COM_STATISTICS, true, "STATISTICS"},
	{0x0a, true, "PROCESS_INFO"},
	{0x0c, true, "PROCESS_KILL"},
	{0x0d, true, "DEBUG"},
	{0x0e, true, "PING"},
	{COM_CHANGE_USER, true, "CHANGE_USER"},
	{COM_STMT_SEND_LONG_DATA, false, "STMT_SEND_LONG_DATA"},
	{COM_STMT_CLOSE, false, "STMT_CLOSE"},
	{0x1a, true, "STMT_RESET"},
	{0x1b, true, "SET_OPTION"},
	{COM_STMT_FETCH, true, "STMT_FETCH"},
	{0x1f, true, "RESET_CONNECTION"},
};

struct feed {
	struct l7_feed l7; /* the chunk, its direction, where exchanges go */
	struct mysql_conn *c;
	struct mysql_dir *d;
};

#define PROTO  MT_PROTO_MYSQL
#define OP_MAX MYSQL_OP_MAX

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le24(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static uint32_t le32(const uint8_t *p)
{
	return le24(p) | (uint32_t)p[3] << 24;
}

/* A length-encoded integer at @p (@n bytes available); its size in *@size, 0 if cut. */
static uint64_t lenenc(const uint8_t *p, size_t n, size_t *size)
{
	size_t k;
	uint64_t v = 0;

	*size = 0;
	if (n == 0)
		return 0;
	if (p[0] < 0xfb) {
		*size = 1;
		return p[0];
	}
	k = p[0] == 0xfc ? 2 : p[0] == 0xfd ? 3 : p[0] == 0xfe ? 8 : 0;
	if (k == 0 || n < k + 1)
		return 0;
	for (size_t i = 0; i < k; i++)
		v |= (uint64_t)p[1 + i] << (8 * i);
	*size = k + 1;
	return v;
}

static void dir_reset(struct mysql_dir *d)
{
	d->state = ST_HEADER;
	d->hdr_n = 0;
	d->bits &= B_NEXT_CONT;
	d->keep_n = 0;
	d->left = 0;
	d->len = 0;
}

void mysql_init(struct mysql_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->resp_seq = 1;
}

/* ---- exchanges ---- */

static struct mysql_req *head_req(struct mysql_conn *c)
{
	return c->count ? &c->pending[c->head] : NULL;
}

static void pop_head(struct mysql_conn *c)
{
	c->head = (uint8_t)((c->head + 1) % MYSQL_PIPELINE_MAX);
	c->count--;
	c->rs = RS_FIRST;
	c->resp_seq = 1;
}

static void emit_req(struct feed *f, const struct mysql_req *r, uint64_t resp_end, uint32_t flags,
		     const char *status)
{
	struct mysql_conn *c = f->c;
	struct mt_exchange x;

	l7_exchange_init(&x, MT_PROTO_MYSQL, r->req_seq, flags, r->start_ns, r->end_ns);
	x.resp_start_ns = resp_end ? (r->resp_start_ns ? r->resp_start_ns : resp_end) : 0;
	x.resp_end_ns = resp_end;
	l7_copy_field(x.operation, sizeof(x.operation), r->op, strnlen(r->op, sizeof(r->op)));
	l7_copy_field(x.query_text, sizeof(x.query_text), r->query,
		      strnlen(r->query, sizeof(r->query)));
	if (status)
		l7_copy_field(x.status_text, sizeof(x.status_text), status, strlen(status));
	memcpy(x.db_namespace, c->db_namespace, sizeof(x.db_namespace));
	l7_emit_done(&f->l7, &x);
}

/* The head command's response ended (@err: the ERR's code, or NULL). */
static void resp_done(struct feed *f, const char *err)
{
	struct mysql_conn *c = f->c;
	struct mysql_req *r = head_req(c);

	f->l7.stats->responses++;
	if (!r || r->skip_before) {
		if (r)
			r->skip_before--;
		else
			f->l7.stats->orphan_responses++;
		c->rs = RS_FIRST;
		c->resp_seq = 1;
		return;
	}
	if (!err && r->sets_ns)
		memcpy(c->db_namespace, c->next_ns, sizeof(c->db_namespace));
	emit_req(f, r, f->d->end_ns, err ? MT_X_ERROR : 0, err);
	pop_head(c);
}

static struct mysql_stmt *stmt_find(struct mysql_conn *c, uint32_t id)
{
	for (size_t i = 0; i < MYSQL_STMT_MAX; i++)
		if (c->stmts[i].used && c->stmts[i].id == id)
			return &c->stmts[i];
	return NULL;
}

/* The statement a successful COM_STMT_PREPARE created: its id now names the head's text. */
static void stmt_add(struct mysql_conn *c, uint32_t id, const struct mysql_req *r)
{
	struct mysql_stmt *s = stmt_find(c, id), *oldest = &c->stmts[0];

	for (size_t i = 0; !s && i < MYSQL_STMT_MAX; i++) {
		if (!c->stmts[i].used) {
			s = &c->stmts[i];
			break;
		}
		if (c->stmts[i].age < oldest->age)
			oldest = &c->stmts[i];
	}
	if (!s)
		s = oldest;
	s->used = 1;
	s->id = id;
	s->age = ++c->prepares;
	sql_operation(r->query, strlen(r->query), SQL_MYSQL, s->op, sizeof(s->op));
	memcpy(s->query, r->query, sizeof(s->query));
}

/* ---- client packets ---- */

static void lost(struct feed *f, size_t pos);

static void handshake_response(struct mysql_conn *c, const struct mysql_dir *d)
{
	const uint8_t *p = (const uint8_t *)d->keep;
	size_t n = d->keep_n, off = 32, sz;
	const uint8_t *nul;
	uint64_t caps, auth;

	if (n < 4)
		return;
	caps = le32(p);
	if (!(caps & CLIENT_PROTOCOL_41) || n < 32)
		return;
	if (!(c->server_caps & CLIENT_MYSQL))
		caps |= (uint64_t)le32(p + 28) << 32; /* MariaDB's extended capabilities */
	c->client_caps = caps;
	c->deprecate_eof = (caps & c->server_caps & CLIENT_DEPRECATE_EOF) ? DE_YES : DE_NO;
	c->compressed = (caps & c->server_caps & CLIENT_COMPRESS) != 0;
	c->cache_metadata = (caps & c->server_caps & MARIADB_CACHE_METADATA) != 0;
	/* user name */
	nul = memchr(p + off, 0, n - off);
	if (!nul)
		return;
	off = (size_t)(nul - p) + 1;
	/* auth response */
	if (caps & CLIENT_PLUGIN_AUTH_LENENC) {
		auth = lenenc(p + off, n - off, &sz);
		if (!sz)
			return;
		off += sz + auth;
	} else if (caps & CLIENT_SECURE_CONNECTION) {
		if (off >= n)
			return;
		off += 1 + (size_t)p[off];
	} else {
		nul = memchr(p + off, 0, n - off);
		if (!nul)
			return;
		off = (size_t)(nul - p) + 1;
	}
	if (!(caps & CLIENT_CONNECT_WITH_DB) || off >= n)
		return;
	nul = memchr(p + off, 0, n - off);
	if (nul && nul > p + off)
		l7_copy_field(c->db_namespace, sizeof(c->db_namespace), (const char *)p + off,
			      (size_t)(nul - p) - off);
}

/* The schema a "USE name" names (backticks removed), into @out. */
static void use_target(const char *q, size_t n, char *out, size_t cap)
{
	size_t i = 0, s;

	while (i < n && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r'))
		i++;
	i += 3; /* USE */
	while (i < n && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r'))
		i++;
	if (i < n && q[i] == '`') {
		const char *e;

		i++;
		e = memchr(q + i, '`', n - i);
		l7_copy_field(out, cap, q + i, e ? (size_t)(e - q) - i : 0);
		return;
	}
	s = i;
	while (i < n && q[i] != ' ' && q[i] != ';' && q[i] != '\t' && q[i] != '\n' && q[i] != '\r')
		i++;
	l7_copy_field(out, cap, q + s, i - s);
}

/*
 * MySQL 8 with CLIENT_QUERY_ATTRIBUTES: a COM_QUERY starts with its parameter
 * count and set count. With no parameters (the common case) they are skipped;
 * with some, where the text starts is not worked out: none is kept. On a
 * connection whose handshake was not seen, "\0\1" before a letter is taken
 * for them.
 */
static void query_attributes(const struct mysql_conn *c, const char **text, size_t *n)
{
	const uint8_t *p = (const uint8_t *)*text;
	bool known = c->client_caps & c->server_caps & CLIENT_QUERY_ATTRIBUTES;
	bool guess = c->phase == PH_COMMAND && !c->client_caps && *n > 2 && p[0] == 0 &&
		     p[1] == 1 && ((p[2] | 0x20) >= 'a' && (p[2] | 0x20) <= 'z');

	if (!known && !guess)
		return;
	if (*n >= 2 && p[0] == 0 && p[1] == 1) {
		*text += 2;
		*n -= 2;
	} else {
		*n = 0;
	}
}

static void command(struct feed *f)
{
	struct mysql_conn *c = f->c;
	struct mysql_dir *d = f->d;
	const uint8_t *p = (const uint8_t *)d->keep;
	uint8_t cmd = d->keep_n ? p[0] : 0;
	struct mysql_req *r;
	const char *text = d->keep + 1;
	size_t tn = d->keep_n ? d->keep_n - 1u : 0, i;
	bool response = true;
	const char *name = NULL;

	if (!d->keep_n)
		return;
	switch (cmd) {
	case COM_QUERY:
	case COM_STMT_PREPARE:
	case COM_STMT_EXECUTE:
	case COM_STMT_BULK_EXECUTE:
		break;
	default:
		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (commands[i].cmd == cmd)
				break;
		if (i == sizeof(commands) / sizeof(commands[0])) {
			lost(f, SIZE_MAX); /* not a command we know: not a command at all */
			return;
		}
		name = commands[i].name;
		response = commands[i].response;
		break;
	}
	if (cmd == COM_STMT_CLOSE && d->keep_n >= 5) {
		struct mysql_stmt *s = stmt_find(c, le32(p + 1));

		if (s)
			s->used = 0;
	}
	f->l7.stats->requests++;
	if (!response)
		return; /* QUIT, STMT_CLOSE, STMT_SEND_LONG_DATA: no response, no exchange */
	if (c->count >= MYSQL_PIPELINE_MAX) {
		f->l7.stats->pipeline_drops++;
		if (c->skip_tail < UINT16_MAX)
			c->skip_tail++;
		return;
	}
	r = &c->pending[(c->head + c->count) % MYSQL_PIPELINE_MAX];
	c->count++;
	memset(r, 0, offsetof(struct mysql_req, op));
	r->op[0] = r->query[0] = '\0';
	r->start_ns = d->start_ns;
	r->end_ns = d->end_ns;
	r->req_seq = d->start_seq;
	r->cmd = cmd;
	r->skip_before = c->skip_tail;
	c->skip_tail = 0;
	switch (cmd) {
	case COM_QUERY:
		query_attributes(c, &text, &tn);
		sql_operation(text, tn, SQL_MYSQL, r->op, sizeof(r->op));
		sql_sanitize(text, tn, SQL_MYSQL, r->query, sizeof(r->query));
		if (strcmp(r->op, "USE") == 0) {
			use_target(text, tn, c->next_ns, sizeof(c->next_ns));
			r->sets_ns = c->next_ns[0] != '\0';
		}
		break;
	case COM_STMT_PREPARE:
		l7_copy_field(r->op, sizeof(r->op), "PREPARE", 7);
		sql_sanitize(text, tn, SQL_MYSQL, r->query, sizeof(r->query));
		break;
	case COM_STMT_EXECUTE:
	case COM_STMT_BULK_EXECUTE: {
		struct mysql_stmt *s = NULL;

		if (d->keep_n >= 5) {
			uint32_t id = le32(p + 1);

			/* MariaDB: -1 is the statement prepared last (prepare and execute sent together) */
			if (id == 0xffffffffu) {
				for (i = 0; i < MYSQL_STMT_MAX; i++)
					if (c->stmts[i].used && (!s || c->stmts[i].age > s->age))
						s = &c->stmts[i];
			} else {
				s = stmt_find(c, id);
			}
		}
		if (s) {
			memcpy(r->op, s->op, sizeof(r->op));
			memcpy(r->query, s->query, sizeof(r->query));
		} else {
			l7_copy_field(r->op, sizeof(r->op), "EXECUTE", 7);
		}
		break;
	}
	case COM_INIT_DB:
		l7_copy_field(r->op, sizeof(r->op), name, strlen(name));
		l7_copy_field(c->next_ns, sizeof(c->next_ns), text, strnlen(text, tn));
		r->sets_ns = c->next_ns[0] != '\0';
		break;
	default:
		l7_copy_field(r->op, sizeof(r->op), name, strlen(name));
		break;
	}
	l7_announce(&f->l7, PROTO, r->req_seq, r->start_ns, r->end_ns, r->op, sizeof(r->op));
}

static void client_packet(struct feed *f)
{
	struct mysql_conn *c = f->c;
	struct mysql_dir *d = f->d;

	if (d->bits & B_CONTINUES)
		return;
	switch (c->phase) {
	case PH_GREETED:
		if (d->len == 32 && d->keep_n >= 4 &&
		    (le32((const uint8_t *)d->keep) & CLIENT_SSL)) {
			/* An SSL request: TLS from here on. */
			c->req.state = c->resp.state = ST_OFF;
			return;
		}
		handshake_response(c, d);
		c->phase = PH_AUTH;
		return;
	case PH_AUTH:
		return; /* authentication data */
	case PH_NEW:
		if (d->seq != 0)
			return;
		c->phase = PH_COMMAND; /* first seen after its handshake */
				       /* fall through */
	case PH_COMMAND:
	default:
		if (d->seq == 0)
			command(f);
		return; /* seq > 0: LOCAL INFILE data, authentication after CHANGE_USER */
	}
}

/* ---- server packets ---- */

static void greeting(struct mysql_conn *c, const struct mysql_dir *d)
{
	const uint8_t *p = (const uint8_t *)d->keep;
	size_t n = d->keep_n;
	const uint8_t *nul = n > 1 ? memchr(p + 1, 0, n - 1) : NULL;
	size_t off;

	c->phase = PH_GREETED;
	if (!nul)
		return;
	off = (size_t)(nul - p) + 1 + 4 + 8 + 1; /* connection id, auth data 1, filler */
	if (off + 2 > n)
		return;
	c->server_caps = le16(p + off);
	if (off + 2 + 1 + 2 + 2 <= n)
		c->server_caps |= (uint64_t)le16(p + off + 5) << 16;
	/* MariaDB: extended capabilities in the last 4 of the 10 reserved bytes */
	if (!(c->server_caps & CLIENT_MYSQL) && off + 2 + 1 + 2 + 2 + 1 + 10 <= n)
		c->server_caps |= (uint64_t)le32(p + off + 2 + 1 + 2 + 2 + 1 + 6) << 32;
}

/* The status flags of an OK or EOF packet. */
static uint32_t status_flags(const struct mysql_dir *d)
{
	const uint8_t *p = (const uint8_t *)d->keep;
	size_t n = d->keep_n, off = 1, sz;

	if (n == 0)
		return 0;
	if (p[0] == 0xfe && d->len == 5)
		return n >= 5 ? le16(p + 3) : 0; /* EOF: warnings, status */
	lenenc(p + off, n - off, &sz);
	if (!sz)
		return 0;
	off += sz;
	lenenc(p + off, n - off, &sz);
	if (!sz)
		return 0;
	off += sz;
	return off + 2 <= n ? le16(p + off) : 0;
}

/* A terminator (EOF, or OK with the 0xfe header) that ends a result set. */
static void rows_end(struct feed *f)
{
	if (status_flags(f->d) & SERVER_MORE_RESULTS_EXISTS)
		f->c->rs = RS_FIRST;
	else
		resp_done(f, NULL);
}

static void server_packet(struct feed *f)
{
	struct mysql_conn *c = f->c;
	struct mysql_dir *d = f->d;
	const uint8_t *p = (const uint8_t *)d->keep;
	struct mysql_req *r = head_req(c);
	uint8_t b0 = d->keep_n ? p[0] : 0;
	bool term = b0 == 0xfe && d->len < PACKET_MAX; /* EOF or OK: never a row */
	char code[8];
	size_t sz;
	uint64_t v;

	if (d->bits & B_CONTINUES)
		return;
	if (c->phase == PH_NEW) {
		if (d->seq == 0 && b0 == 0x0a)
			greeting(c, d);
		return;
	}
	if (c->phase == PH_GREETED)
		return; /* nothing expected before the client's handshake response */
	if (c->phase == PH_AUTH) {
		if (b0 == 0x00 || b0 == 0xff) {
			c->phase = PH_COMMAND;
			c->resp_seq = 1;
			/* compressed packets from here on: not parsed */
			if (c->compressed && b0 == 0x00)
				c->req.state = c->resp.state = ST_OFF;
		}
		return;
	}
	if (!d->keep_n && d->len) {
		lost(f, SIZE_MAX); /* its first byte was not captured */
		return;
	}
	if (r && !r->resp_start_ns)
		r->resp_start_ns = d->start_ns;
	if (b0 == 0xff && d->len >= 3 && c->rs != RS_COLS && c->rs != RS_PREP_PARAMS &&
	    c->rs != RS_PREP_COLS) {
		uint32_t err_no = le16(p + 1);

		if (err_no == 0xffff)
			return; /* MariaDB progress report */
		snprintf(code, sizeof(code), "%u", err_no);
		resp_done(f, code);
		return;
	}
	switch (c->rs) {
	case RS_FIRST:
		if (r && r->cmd == COM_STMT_PREPARE && b0 == 0x00 && d->keep_n >= 9) {
			stmt_add(c, le32(p + 1), r);
			c->prep_cols = le16(p + 5);
			c->params_left = le16(p + 7);
			c->cols_left = c->prep_cols;
			if (c->params_left)
				c->rs = RS_PREP_PARAMS;
			else if (c->prep_cols)
				c->rs = RS_PREP_COLS;
			else
				resp_done(f, NULL);
			return;
		}
		if (b0 == 0x00 || (b0 == 0xfe && d->len < 9)) {
			rows_end(f); /* OK (or EOF): more results may follow */
			return;
		}
		if (b0 == 0xfb || (r && r->cmd == COM_CHANGE_USER)) {
			c->rs = RS_UNTIL_OK; /* LOCAL INFILE request, or re-authentication */
			return;
		}
		if (!r || r->cmd == COM_STATISTICS || term) {
			resp_done(f, NULL); /* a string, or something unexpected: one packet */
			return;
		}
		if (r->cmd == COM_FIELD_LIST || r->cmd == COM_STMT_FETCH) {
			c->rs = RS_ROWS; /* definitions or rows up to EOF */
			return;
		}
		v = lenenc(p, d->keep_n, &sz);
		if (!sz || v == 0 || v > 4096) {
			lost(f, SIZE_MAX);
			return;
		}
		c->cols_left = (uint32_t)v;
		if (c->cache_metadata && sz < d->keep_n && p[sz] == 0)
			c->cols_left = 0; /* the client has the column definitions cached */
		if (c->cols_left)
			c->rs = RS_COLS;
		else
			c->rs = c->deprecate_eof == DE_YES ? RS_ROWS : RS_COLS_EOF;
		return;
	case RS_COLS:
		if (--c->cols_left == 0)
			c->rs = c->deprecate_eof == DE_YES ? RS_ROWS : RS_COLS_EOF;
		return;
	case RS_COLS_EOF:
		if (term && d->len == 5) {
			c->rs = RS_ROWS; /* the EOF after the definitions */
		} else if (term) {
			rows_end(f); /* an OK: CLIENT_DEPRECATE_EOF after all, no rows */
		} else {
			c->rs = RS_ROWS; /* a row: CLIENT_DEPRECATE_EOF after all */
		}
		return;
	case RS_ROWS:
		if (term)
			rows_end(f);
		return;
	case RS_PREP_PARAMS:
		if (--c->params_left == 0) {
			c->cols_left = c->prep_cols;
			if (c->deprecate_eof != DE_YES)
				c->rs = RS_PREP_PARAMS_EOF;
			else if (c->cols_left)
				c->rs = RS_PREP_COLS;
			else
				resp_done(f, NULL);
		}
		return;
	case RS_PREP_PARAMS_EOF:
		if (!(term && d->len == 5) && c->cols_left)
			c->cols_left--; /* no EOF: that was a column definition */
		if (c->cols_left)
			c->rs = RS_PREP_COLS;
		else
			resp_done(f, NULL);
		return;
	case RS_PREP_COLS:
		if (--c->cols_left == 0) {
			if (c->deprecate_eof != DE_YES)
				c->rs = RS_PREP_COLS_EOF;
			else
				resp_done(f, NULL);
		}
		return;
	case RS_PREP_COLS_EOF:
		resp_done(f, NULL);
		return;
	case RS_UNTIL_OK:
	default:
		if (b0 == 0x00)
			resp_done(f, NULL);
		return;
	}
}

/* ---- framing ---- */

static void packet_done(struct feed *f)
{
	struct mysql_dir *d = f->d;
	bool next_cont = d->len == PACKET_MAX;

	if (f->l7.is_req)
		client_packet(f);
	else
		server_packet(f);
	if (d->state == ST_LOST || d->state == ST_OFF)
		return;
	dir_reset(d);
	d->bits = next_cont ? B_NEXT_CONT : 0;
}

static size_t keep_limit(const struct feed *f)
{
	struct mysql_dir *d = f->d;

	if (d->bits & B_CONTINUES)
		return 0;
	if (!f->l7.is_req)
		return SERVER_KEEP;
	/* the handshake response, or a command: its byte and its text */
	return MYSQL_KEEP_MAX;
}

static void lost(struct feed *f, size_t pos)
{
	struct mysql_dir *d = f->d;
	bool open = d->state == ST_BODY || d->hdr_n > 0;

	l7_lost_at(&f->c->lost, &f->l7, pos, open, f->c->count, f->l7.ts);
	dir_reset(d);
	d->bits = 0;
	d->state = ST_LOST;
}

/* Does @p[0..@n) begin with a packet that starts a command (or a response)? */
static bool looks_like_start(bool is_req, const uint8_t *p, size_t n)
{
	uint32_t len;

	if (n < 4)
		return n > 0 && !is_req;
	len = le24(p);
	if (len == 0 || p[3] != (is_req ? 0 : 1))
		return false;
	if (is_req && n > 4) {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (commands[i].cmd == p[4])
				return true;
		return p[4] == COM_QUERY || p[4] == COM_STMT_PREPARE || p[4] == COM_STMT_EXECUTE ||
		       p[4] == COM_STMT_BULK_EXECUTE;
	}
	return true;
}

/* The oldest command ends without its response (an l7_answer_fn). */
static void answer_head(void *p, uint64_t resp_end, uint32_t flags)
{
	struct feed *f = p;

	if (!head_req(f->c)->skip_before)
		emit_req(f, head_req(f->c), resp_end, flags, NULL);
	pop_head(f->c);
}

/* At a chunk in ST_LOST: whether it finds the framing again; the responses start afresh. */
static bool resync(struct feed *f)
{
	struct mysql_conn *c = f->c;

	if (!l7_lost_resync(&c->lost, &f->l7, looks_like_start(f->l7.is_req, f->l7.data, f->l7.cap),
			    c->count, answer_head, f))
		return false;
	if (!f->l7.is_req) {
		c->rs = RS_FIRST;
		c->resp_seq = 1;
	}
	f->d->state = ST_HEADER;
	return true;
}

/*
 * Does the header just read carry the sequence id the conversation calls for?
 * Commands start at 0 (their continuations, LOCAL INFILE data and
 * re-authentication go on from there); a response's packets count up from 1.
 */
static bool seq_ok(const struct feed *f)
{
	const struct mysql_conn *c = f->c;
	const struct mysql_dir *d = f->d;

	if (c->phase != PH_COMMAND || (d->bits & B_CONTINUES))
		return true;
	if (f->l7.is_req)
		return d->seq == 0 || c->rs == RS_UNTIL_OK;
	return d->seq == c->resp_seq;
}

static void frame(struct feed *f)
{
	struct mysql_dir *d = f->d;
	const uint8_t *data = f->l7.data;
	size_t pos = 0, cap = f->l7.cap, len = f->l7.len;

	while (pos < len) {
		if (d->state == ST_LOST || d->state == ST_OFF)
			return;
		if (d->state == ST_HEADER) {
			if (pos >= cap) {
				lost(f, SIZE_MAX); /* a header in uncaptured bytes */
				return;
			}
			if (d->hdr_n == 0) {
				d->start_ns = f->l7.ts;
				if (f->l7.is_req)
					d->start_seq =
						l7_request_seq(f->l7.seq, pos, &f->c->req_counter);
			}
			while (d->hdr_n < 4 && pos < cap)
				d->hdr[d->hdr_n++] = data[pos++];
			d->end_ns = f->l7.ts;
			if (d->hdr_n < 4)
				continue;
			d->len = d->left = le24(d->hdr);
			d->seq = d->hdr[3];
			d->keep_n = 0;
			if (d->bits & B_NEXT_CONT)
				d->bits = (uint8_t)((d->bits & ~B_NEXT_CONT) | B_CONTINUES);
			if (!seq_ok(f)) {
				/* Not the packet the conversation calls for: garbage. */
				l7_garbage(&f->l7, 4);
				d->hdr_n = 0;
				lost(f, pos);
				return;
			}
			if (!f->l7.is_req)
				f->c->resp_seq = (uint8_t)(d->seq + 1);
			d->state = ST_BODY;
			if (d->left == 0)
				packet_done(f);
			continue;
		}
		if (l7_body_take(&f->l7, &pos, &d->left, d->keep, &d->keep_n,
				 (d->bits & B_HOLE) ? 0 : keep_limit(f)))
			d->bits |= B_HOLE;
		d->end_ns = f->l7.ts;
		if (d->left == 0)
			packet_done(f);
	}
}

void mysql_feed(struct mysql_conn *c, bool client_to_server, const struct mt_chunk *ch,
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

void mysql_close(struct mysql_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
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
	mysql_init(c);
}

/* ---- detection ---- */

enum l7_verdict mysql_detect(const uint8_t *buf, size_t n)
{
	uint32_t len;

	if (!buf || n < 6 || buf[3] != 0)
		return L7_NO;
	len = le24(buf);
	if (buf[4] == 0x0a) {
		/* Greeting: protocol 10, a printable version string, NUL, id, 8 bytes, a 0 filler */
		size_t i = 5, end = l7_min_size(n, (size_t)len + 4);

		if (len < 40 || len > 1024)
			return L7_NO;
		while (i < end && i < 5 + 64 && buf[i] >= 0x20 && buf[i] < 0x7f)
			i++;
		if (i == 5 || i >= end || buf[i] != 0)
			return L7_NO;
		if (i + 13 < end && buf[i + 13] != 0)
			return L7_NO;
		return L7_FROM_SERVER;
	}
	if (buf[4] == COM_QUERY && len >= 2 && len <= (1u << 24)) {
		/* COM_QUERY: SQL text, printable as far as it goes (MySQL 8 may put "\0\1" first) */
		size_t start = n > 7 && buf[5] == 0 && buf[6] == 1 ? 7 : 5;
		uint8_t c0 = buf[start];
		size_t end = l7_min_size(n, l7_min_size((size_t)len + 4, start + 32));

		if (!((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z') || c0 == '(' ||
		      c0 == '/' || c0 == ' '))
			return L7_NO;
		for (size_t i = start; i < end; i++)
			if ((buf[i] < 0x20 && buf[i] != '\n' && buf[i] != '\t' && buf[i] != '\r') ||
			    buf[i] == 0x7f)
				return L7_NO;
		return L7_FROM_CLIENT;
	}
	return L7_NO;
}

/* ---- registry entry ---- */

L7_PARSER(mysql_parser, struct mysql_conn, mysql, .protocol = MT_PROTO_MYSQL, .name = "mysql",
	  .detect = mysql_detect);
