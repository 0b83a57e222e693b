// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/1.0 and HTTP/1.1 parser, both directions of one connection.
 * Spec: https://www.rfc-editor.org/rfc/rfc9112 (message syntax and framing),
 *       https://www.rfc-editor.org/rfc/rfc9110 (semantics),
 *       https://www.w3.org/TR/trace-context/ (traceparent, tracestate).
 *
 * Each direction is a small state machine. Line states (start line,
 * headers, chunk-size line, CRLF after chunk data, trailers) read only
 * captured bytes, one memchr per line; a line split across chunks is
 * gathered in http1_dir.line. Body states skip by byte count, gap bytes
 * included, in O(1) per chunk. When a line state runs into a gap, or the
 * framing is unusable (bad Content-Length, bad chunk size), the direction
 * goes to ST_RESYNC: it skips whole chunks until one whose captured bytes
 * begin with a start line. A response cut off that way is emitted with
 * MT_X_END_GUESSED when the next one starts (or at close).
 *
 * Requests enter the pending ring when their request line is parsed; the
 * response direction pairs each final response with the oldest pending
 * request and emits the exchange when the response ends.
 */
#include <string.h>
#include <strings.h>

#include "agent/protocols/http1.h"
#include "agent/protocols/kit.h"
#include "agent/common/traceparent.h"
#include "agent/common/util.h"

enum http1_state {
	ST_START = 0,	/* at a message boundary: reading a start line */
	ST_HEADERS,	/* header lines up to the empty line */
	ST_BODY,	/* Content-Length body: skip `remaining` bytes */
	ST_CHUNK_SIZE,	/* chunk-size line, extensions ignored */
	ST_CHUNK_DATA,	/* chunk data: skip `remaining` bytes */
	ST_CHUNK_END,	/* the CRLF after chunk data */
	ST_TRAILERS,	/* trailer lines up to the empty line */
	ST_UNTIL_CLOSE, /* response body framed by the connection's close */
	ST_RESYNC,	/* framing lost: wait for a chunk that starts with a start line */
	ST_UPGRADED,	/* the connection no longer speaks HTTP/1 (101, CONNECT) */
};

/* http1_dir.bits, for the message being read */
enum {
	B_OPEN = 1 << 0,     /* a start line was parsed; the message is not finished */
	B_HAS_CL = 1 << 1,   /* Content-Length seen */
	B_BAD_CL = 1 << 2,   /* Content-Length unusable */
	B_TE = 1 << 3,	     /* Transfer-Encoding seen */
	B_CHUNKED = 1 << 4,  /* ... and its last coding is chunked */
	B_UNPAIRED = 1 << 5, /* response with no pending request (orphan or dropped) */
	B_HOST = 1 << 6,
	B_TP = 1 << 7,	    /* traceparent seen */
	B_TS_DROP = 1 << 8, /* tracestate did not fit: dropped for good */
};

/* http1_dir.hdr */
enum { HDR_NONE = 0, HDR_OTHER, HDR_CL, HDR_TE, HDR_HOST, HDR_TP, HDR_TS };

/* A head or trailer section (or one line) longer than this: framing lost. */
#define HTTP1_HEAD_MAX (64u * 1024)
/* Raw bytes kept at the end of a line: the tail plus a CR. */
#define TAIL_RAW (HTTP1_TAIL_MAX + 1)
/* Chunk sizes beyond 15 hex digits are nonsense (and would overflow). */
#define CHUNK_DIGITS_MAX 15
/* Content-Length beyond 18 decimal digits is nonsense (and would overflow). */
#define CL_DIGITS_MAX 18

/* RFC 9110 tchar: the bytes of a method or a field name. */
static const uint8_t tchar[256] = {
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1,
	['%'] = 1,	   ['&'] = 1,	      ['\''] = 1,	 ['*'] = 1, ['+'] = 1, ['-'] = 1,
	['.'] = 1,	   ['^'] = 1,	      ['_'] = 1,	 ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* One line as the parser sees it: the same whether it came whole or in pieces. */
struct line {
	const char *p;	  /* first bytes, CR LF removed */
	size_t n;	  /* bytes at p: min(full, HTTP1_LINE_MAX) */
	size_t full;	  /* bytes in the whole line */
	const char *tail; /* last min(full, HTTP1_TAIL_MAX) bytes */
	size_t tail_n;
};

/* What one http1_feed() call works with. */
struct feed {
	struct l7_feed l7; /* the chunk, its direction, where exchanges go */
	struct http1_conn *c;
	struct http1_dir *d;
};

static bool is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

static void trim_ows(const char **p, size_t *n)
{
	while (*n > 0 && is_ows(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_ows((*p)[*n - 1]))
		(*n)--;
}

static bool known_method(const uint8_t *p, size_t n)
{
	static const char *const methods[] = {"GET",	 "HEAD",    "POST",  "PUT",  "DELETE",
					      "CONNECT", "OPTIONS", "TRACE", "PATCH"};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strlen(methods[i]) == n && memcmp(methods[i], p, n) == 0)
			return true;
	}
	return false;
}

/* Length of the method token at @p (at most MT_METHOD_MAX), stopping at the first non-tchar. */
static size_t method_len(const uint8_t *p, size_t n)
{
	size_t i = 0;

	n = l7_min_size(n, MT_METHOD_MAX);
	while (i < n && tchar[p[i]])
		i++;
	return i;
}

/*
 * Could @n bytes at @p be the start of a start line? True while undecided
 * (too few bytes); false as soon as they cannot be.
 */
static bool start_prefix_ok(bool is_req, const uint8_t *p, size_t n)
{
	static const char http[] = "HTTP/1.";
	size_t i;

	if (is_req) {
		i = method_len(p, n);
		if (i == n)
			return i < MT_METHOD_MAX;
		if (i == 0 || p[i] != ' ')
			return false;
		return i + 1 == n || p[i + 1] > ' ';
	}
	i = l7_min_size(n, 7);
	if (memcmp(p, http, i) != 0)
		return false;
	if (n > 7 && !is_digit(p[7]))
		return false;
	if (n > 8 && p[8] != ' ')
		return false;
	for (i = 9; i < 12 && i < n; i++) {
		if (!is_digit(p[i]))
			return false;
	}
	return true;
}

struct req_line {
	const char *method;
	size_t method_n;
	const char *target;
	size_t target_n;
	uint8_t version_minor;
};

/*
 * Parses "method SP target SP HTTP/1.d". A @cut line (ended by a gap) needs
 * only "method SP" and one byte of target; its version is taken as 1.1.
 */
static bool parse_request_line(const struct line *l, bool cut, struct req_line *rl)
{
	const uint8_t *p = (const uint8_t *)l->p;
	size_t m = method_len(p, l->n);
	size_t t0, t_end;

	if (m == 0 || m >= MT_METHOD_MAX || m >= l->n || p[m] != ' ')
		return false;
	t0 = m + 1;
	if (cut) {
		t_end = l->n;
		rl->version_minor = 1;
	} else {
		const char *v;

		/* The version is the last 9 bytes of the whole line: " HTTP/1.d". */
		if (l->full < t0 + 1 + 9 || l->tail_n < 9)
			return false;
		v = l->tail + l->tail_n - 9;
		if (memcmp(v, " HTTP/1.", 8) != 0 || !is_digit(v[8]))
			return false;
		rl->version_minor = (uint8_t)(v[8] - '0');
		t_end = l7_min_size(l->full - 9, l->n);
	}
	if (t_end <= t0)
		return false;
	for (size_t i = t0; i < t_end; i++) {
		if (p[i] <= ' ' || p[i] == 0x7f)
			return false;
	}
	if (m == 3 && memcmp(p, "PRI", 3) == 0)
		return false; /* the HTTP/2 preface, never HTTP/1 */
	rl->method = l->p;
	rl->method_n = m;
	rl->target = l->p + t0;
	rl->target_n = t_end - t0;
	return true;
}

/* Parses "HTTP/1.d SP 3DIGIT [SP reason]"; returns the status or 0. */
static uint16_t parse_status_line(const struct line *l, uint8_t *version_minor)
{
	const uint8_t *p = (const uint8_t *)l->p;
	uint16_t status;

	if (l->n < 12 || !start_prefix_ok(false, p, 12))
		return 0;
	if (l->n > 12 && p[12] != ' ')
		return 0;
	status = (uint16_t)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
	if (status < 100)
		return 0;
	*version_minor = (uint8_t)(p[7] - '0');
	return status;
}

/* http1_detect() on all @n bytes. */
static bool detect(const uint8_t *buf, size_t n, bool *is_request)
{
	size_t m;

	if (!buf || n < 4)
		return false;
	if (memcmp(buf, "HTTP", 4) == 0) {
		if (n < 8 || !start_prefix_ok(false, buf, l7_min_size(n, 12)))
			return false;
		if (is_request)
			*is_request = false;
		return true;
	}
	m = method_len(buf, n);
	if (m == 0 || m >= n || buf[m] != ' ')
		return false;
	if (m == 3 && memcmp(buf, "PRI", 3) == 0)
		return false; /* HTTP/2 connection preface */
	if (!known_method(buf, m)) {
		/* Any other method must be upper case with an origin-form target. */
		for (size_t i = 0; i < m; i++) {
			if (buf[i] < 'A' || buf[i] > 'Z')
				return false;
		}
		if (m + 1 >= n || (buf[m + 1] != '/' && buf[m + 1] != '*'))
			return false;
	} else if (m + 1 < n && buf[m + 1] <= ' ') {
		return false;
	}
	if (is_request)
		*is_request = true;
	return true;
}

bool http1_detect(const uint8_t *buf, size_t n, bool *is_request)
{
	return detect(buf, l7_min_size(n, 16), is_request);
}

/*
 * Does a chunk whose captured bytes are @p[0..@n) begin with a start line?
 * Used to resync, so as strict as http1_detect() (a known or upper-case
 * method), and the whole request line is checked when it is in view.
 */
static bool start_plausible(bool is_req, const uint8_t *p, size_t n)
{
	const uint8_t *nl;
	struct line l;
	struct req_line rl;
	bool req = false;

	if (!detect(p, l7_min_size(n, HTTP1_LINE_MAX), &req) || req != is_req)
		return false;
	if (!is_req)
		return n >= 12 && start_prefix_ok(false, p, 12) &&
		       (n == 12 || p[12] == ' ' || p[12] == '\r' || p[12] == '\n');
	nl = memchr(p, '\n', l7_min_size(n, HTTP1_LINE_MAX + 2));
	if (!nl)
		return true;
	l.p = (const char *)p;
	l.full = (size_t)(nl - p);
	if (l.full > 0 && p[l.full - 1] == '\r')
		l.full--;
	l.n = l7_min_size(l.full, HTTP1_LINE_MAX);
	l.tail_n = l7_min_size(l.full, HTTP1_TAIL_MAX);
	l.tail = l.p + l.full - l.tail_n;
	return parse_request_line(&l, false, &rl);
}

/* Forgets the message being read; the direction waits for a start line. */
static void dir_reset(struct http1_dir *d)
{
	d->state = ST_START;
	d->hdr = HDR_NONE;
	d->tail_len = 0;
	d->version_minor = 0;
	d->status = 0;
	d->bits = 0;
	d->flags = 0;
	d->line_len = 0;
	d->head_len = 0;
	d->remaining = 0;
	d->content_length = 0;
	d->body_bytes = 0;
	d->start_ns = 0;
	d->end_ns = 0;
}

void http1_init(struct http1_conn *c)
{
	memset(c, 0, sizeof(*c));
	dir_reset(&c->req);
	dir_reset(&c->resp);
}

/* The pending exchange the request direction is filling, or NULL. */
static struct mt_exchange *req_slot(struct http1_conn *c)
{
	if (!c->req_open || c->count == 0)
		return NULL;
	return &c->pending[(c->head + c->count - 1) % HTTP1_PIPELINE_MAX];
}

/* Copies what the request direction learnt since the last call into its pending exchange. */
static void req_sync(struct http1_conn *c)
{
	struct mt_exchange *x = req_slot(c);

	if (!x || !(c->req.bits & B_OPEN))
		return;
	x->req_end_ns = c->req.end_ns;
	x->req_body_bytes = c->req.body_bytes;
	x->flags |= c->req.flags;
}

/* Pops the oldest pending exchange and hands it to the caller. */
static void emit_oldest(struct http1_conn *c, struct l7_feed *f)
{
	struct mt_exchange *x = &c->pending[c->head];

	if (c->count == 1 && c->req_open) {
		req_sync(c);
		c->req_open = 0;
	}
	c->head = (uint8_t)((c->head + 1) % HTTP1_PIPELINE_MAX);
	c->count--;
	x->stage = MT_STAGE_DONE;
	l7_emit_done(f, x);
}

/* The request being read is complete. */
static void req_done(struct feed *f)
{
	req_sync(f->c);
	f->c->req_open = 0;
	dir_reset(f->d);
}

/* The response being read is complete: pair it and emit the exchange. */
static void resp_done(struct feed *f, uint32_t extra_flags)
{
	struct http1_conn *c = f->c;
	struct http1_dir *d = &c->resp;

	if (!(d->bits & B_UNPAIRED) && c->count > 0) {
		struct mt_exchange *x = &c->pending[c->head];

		x->status = d->status;
		x->resp_start_ns = d->start_ns;
		x->resp_end_ns = d->end_ns;
		x->resp_body_bytes = d->body_bytes;
		x->flags |= d->flags | extra_flags;
		emit_oldest(c, &f->l7);
	}
	dir_reset(d);
}

static void msg_done(struct feed *f)
{
	if (f->l7.is_req)
		req_done(f);
	else
		resp_done(f, 0);
}

/* Neither direction carries HTTP/1 any more. */
static void upgrade(struct http1_conn *c)
{
	req_sync(c);
	c->req_open = 0;
	dir_reset(&c->req);
	dir_reset(&c->resp);
	c->req.state = ST_UPGRADED;
	c->resp.state = ST_UPGRADED;
}

/* Response bytes at @ts went by unread (framing lost): what they may have answered. */
static void resp_unseen(struct http1_conn *c, uint64_t ts)
{
	c->resp_unseen_ns = ts;
	c->resp_unseen_pending = c->count;
}

/* The chunk being fed has bytes past its capture: their content is unknown. */
static bool chunk_cut(const struct feed *f)
{
	return f->l7.len > f->l7.cap;
}

/*
 * The framing of the open message is lost: flag it and wait for a chunk
 * that starts a new message. The message stays open; its end is guessed.
 */
static void lost(struct feed *f, bool head_cut)
{
	struct http1_dir *d = f->d;

	if (f->l7.is_req)
		d->flags |= MT_X_REQ_TRUNCATED;
	else
		d->flags |= MT_X_END_GUESSED | (head_cut ? MT_X_RESP_TRUNCATED : 0);
	d->line_len = 0;
	d->tail_len = 0;
	d->state = ST_RESYNC;
	if (!f->l7.is_req)
		resp_unseen(f->c, f->l7.ts);
}

/* Not a message start: skip to the next chunk that begins with one. */
static void not_http(struct feed *f, uint64_t skipped)
{
	l7_garbage(&f->l7, skipped);
	dir_reset(f->d);
	f->d->state = ST_RESYNC;
	/*
	 * Bytes seen whole and not HTTP (a TLS alert from a TLS port) answered nothing: the
	 * requests stay unanswered. Uncaptured ones may have held a response.
	 */
	if (!f->l7.is_req && chunk_cut(f))
		resp_unseen(f->c, f->l7.ts);
	else if (!f->l7.is_req)
		f->c->resp_unseen_pending = 0;
}

static void request_begin(struct feed *f, const struct req_line *rl)
{
	struct http1_conn *c = f->c;
	struct mt_exchange *x;

	f->l7.stats->requests++;
	f->d->bits |= B_OPEN;
	f->d->version_minor = rl->version_minor;
	if (c->count >= HTTP1_PIPELINE_MAX) {
		f->l7.stats->pipeline_drops++;
		c->req_open = 0;
		if (c->dropped_after < UINT16_MAX)
			c->dropped_after++;
		return;
	}
	c->dropped_before[(c->head + c->count) % HTTP1_PIPELINE_MAX] = c->dropped_after;
	c->dropped_after = 0;
	x = &c->pending[(c->head + c->count) % HTTP1_PIPELINE_MAX];
	c->count++;
	c->req_open = 1;
	memset(x, 0, sizeof(*x));
	x->protocol = MT_PROTO_HTTP1;
	x->version_minor = rl->version_minor;
	x->req_seq = f->d->start_seq;
	x->req_start_ns = f->d->start_ns;
	x->req_end_ns = f->d->end_ns;
	l7_copy_field(x->method, sizeof(x->method), rl->method, rl->method_n);
	l7_copy_field(x->target, sizeof(x->target), rl->target, rl->target_n);
}

/*
 * Decides which request a response answers. Responses to requests dropped
 * from a full pipeline are framed but not paired; a final response uses up
 * its request's place.
 */
static void response_begin(struct feed *f, uint16_t status)
{
	struct http1_conn *c = f->c;
	struct http1_dir *d = f->d;
	bool final = status >= 200 || status == 101;
	uint16_t *dropped = c->count > 0 ? &c->dropped_before[c->head] : &c->dropped_after;

	d->status = status;
	d->bits |= B_OPEN;
	if (final)
		f->l7.stats->responses++;
	if (*dropped > 0) {
		d->bits |= B_UNPAIRED;
		if (final)
			(*dropped)--;
	} else if (c->count == 0) {
		d->bits |= B_UNPAIRED;
		if (final)
			f->l7.stats->orphan_responses++;
	}
}

static bool parse_content_length(const char *v, size_t n, uint64_t *out)
{
	bool have = false;
	uint64_t val = 0;
	size_t i = 0;

	/* RFC 9110 8.6: a list of identical values is accepted as one. */
	for (;;) {
		size_t start;
		uint64_t x = 0;

		while (i < n && is_ows(v[i]))
			i++;
		start = i;
		while (i < n && is_digit((uint8_t)v[i])) {
			if (i - start >= CL_DIGITS_MAX)
				return false;
			x = x * 10 + (uint64_t)(v[i] - '0');
			i++;
		}
		if (i == start || (have && x != val))
			return false;
		val = x;
		have = true;
		while (i < n && is_ows(v[i]))
			i++;
		if (i == n)
			break;
		if (v[i] != ',')
			return false;
		i++;
	}
	*out = val;
	return true;
}

/* Is the last transfer coding of the list @v "chunked"? */
static bool last_coding_chunked(const char *v, size_t n)
{
	const char *comma = memrchr(v, ',', n);

	if (comma) {
		n -= (size_t)(comma + 1 - v);
		v = comma + 1;
	}
	trim_ows(&v, &n);
	return n == 7 && strncasecmp(v, "chunked", 7) == 0;
}

/* The last Transfer-Encoding seen decides: chunked must be the final coding. */
static void set_chunked(struct http1_dir *d, bool chunked)
{
	if (chunked)
		d->bits |= B_CHUNKED;
	else
		d->bits &= (uint16_t)~B_CHUNKED;
}

/* Adds one tracestate field value; the whole header is dropped when it does not fit. */
static void tracestate_add(struct http1_dir *d, struct mt_exchange *x, const char *v, size_t n,
			   bool cut, char sep)
{
	if (d->bits & B_TS_DROP)
		return;
	if (cut || !mt_tracestate_append(x->tracestate, sizeof(x->tracestate), v, n, sep)) {
		x->tracestate[0] = '\0';
		d->bits |= B_TS_DROP;
	}
}

static uint8_t header_kind(const char *name, size_t n, bool is_req)
{
	switch (n) {
	case 4:
		if (is_req && strncasecmp(name, "host", 4) == 0)
			return HDR_HOST;
		break;
	case 10:
		if (is_req && strncasecmp(name, "tracestate", 10) == 0)
			return HDR_TS;
		break;
	case 11:
		if (is_req && strncasecmp(name, "traceparent", 11) == 0)
			return HDR_TP;
		break;
	case 14:
		if (strncasecmp(name, "content-length", 14) == 0)
			return HDR_CL;
		break;
	case 17:
		if (strncasecmp(name, "transfer-encoding", 17) == 0)
			return HDR_TE;
		break;
	}
	return HDR_OTHER;
}

/* An obs-fold line: it continues the value of the previous header. */
static void on_fold(struct feed *f, const struct line *l)
{
	struct http1_dir *d = f->d;
	struct mt_exchange *x = f->l7.is_req ? req_slot(f->c) : NULL;
	const char *v = l->p;
	size_t n = l->n;
	bool cut = l->full > l->n;

	trim_ows(&v, &n);
	if (n == 0 && !cut)
		return;
	switch (d->hdr) {
	case HDR_CL:
		d->bits |= B_BAD_CL;
		break;
	case HDR_TE:
		set_chunked(d, cut ? last_coding_chunked(l->tail, l->tail_n)
				   : last_coding_chunked(v, n));
		break;
	case HDR_TP:
		if (x)
			x->traceparent[0] = '\0';
		break;
	case HDR_TS:
		if (x)
			tracestate_add(d, x, v, n, cut, ' ');
		break;
	default:
		break;
	}
}

static void on_header(struct feed *f, const struct line *l)
{
	struct http1_dir *d = f->d;
	struct mt_exchange *x;
	const char *colon, *v;
	size_t n;
	bool cut = l->full > l->n;
	uint64_t cl;

	if (is_ows(l->p[0])) {
		on_fold(f, l);
		return;
	}
	colon = memchr(l->p, ':', l->n);
	if (!colon) {
		d->hdr = HDR_OTHER; /* not a field line; tolerated and ignored */
		return;
	}
	d->hdr = header_kind(l->p, (size_t)(colon - l->p), f->l7.is_req);
	v = colon + 1;
	n = l->n - (size_t)(v - l->p);
	trim_ows(&v, &n);
	x = f->l7.is_req ? req_slot(f->c) : NULL;

	switch (d->hdr) {
	case HDR_CL:
		if (cut || !parse_content_length(v, n, &cl) ||
		    ((d->bits & B_HAS_CL) && cl != d->content_length))
			d->bits |= B_BAD_CL;
		else
			d->content_length = cl;
		d->bits |= B_HAS_CL;
		break;
	case HDR_TE:
		d->bits |= B_TE;
		set_chunked(d, cut ? last_coding_chunked(l->tail, l->tail_n)
				   : last_coding_chunked(v, n));
		break;
	case HDR_HOST:
		if (x && !(d->bits & B_HOST))
			l7_copy_field(x->host, sizeof(x->host), v, n);
		d->bits |= B_HOST;
		break;
	case HDR_TP:
		/* More than one traceparent is malformed (W3C 3.2). */
		if (x && !(d->bits & B_TP) && !cut && mt_traceparent_valid(v, n))
			l7_copy_field(x->traceparent, sizeof(x->traceparent), v,
				      MT_TRACEPARENT_LEN);
		else if (x)
			x->traceparent[0] = '\0';
		d->bits |= B_TP;
		break;
	case HDR_TS:
		if (x)
			tracestate_add(d, x, v, n, cut, ',');
		break;
	default:
		break;
	}
}

/* The request head ended with its empty line: how is its body framed? */
static void request_head_done(struct feed *f)
{
	struct http1_dir *d = f->d;
	struct http1_conn *c = f->c;

	/* Announce the request while it is in flight (see enum mt_stage). */
	if (c->req_open && c->count > 0 && f->l7.emit) {
		struct mt_exchange *x = &c->pending[(c->head + c->count - 1) % HTTP1_PIPELINE_MAX];

		x->stage = MT_STAGE_REQUEST;
		f->l7.emit(f->l7.ctx, x);
		x->stage = MT_STAGE_DONE;
	}

	if (d->bits & B_TE) {
		if (d->bits & B_CHUNKED)
			d->state = ST_CHUNK_SIZE;
		else
			lost(f, false); /* RFC 9112 6.3: the length cannot be known */
	} else if (d->bits & B_BAD_CL) {
		lost(f, false);
	} else if (d->content_length > 0) {
		d->remaining = d->content_length;
		d->state = ST_BODY;
	} else {
		req_done(f);
	}
}

/* The response head ended with its empty line (RFC 9112 6.3). */
static void response_head_done(struct feed *f)
{
	struct http1_conn *c = f->c;
	struct http1_dir *d = f->d;
	const struct mt_exchange *x = NULL;
	uint16_t st = d->status;

	if (!(d->bits & B_UNPAIRED) && c->count > 0)
		x = &c->pending[c->head];
	if (st == 101 || (x && st / 100 == 2 && strcmp(x->method, "CONNECT") == 0)) {
		resp_done(f, 0);
		upgrade(c); /* a tunnel or another protocol from here on */
		return;
	}
	if (st < 200) {
		dir_reset(d); /* interim: the final response follows */
		return;
	}
	if ((x && strcmp(x->method, "HEAD") == 0) || st == 204 || st == 304) {
		resp_done(f, 0);
	} else if (d->bits & B_TE) {
		d->state = (d->bits & B_CHUNKED) ? ST_CHUNK_SIZE : ST_UNTIL_CLOSE;
	} else if (d->bits & B_BAD_CL) {
		lost(f, false);
	} else if (d->bits & B_HAS_CL) {
		if (d->content_length > 0) {
			d->remaining = d->content_length;
			d->state = ST_BODY;
		} else {
			resp_done(f, 0);
		}
	} else {
		d->state = ST_UNTIL_CLOSE;
	}
}

static bool parse_chunk_size(const struct line *l, uint64_t *out)
{
	uint64_t x = 0;
	size_t i = 0;
	int h;

	for (; i < l->n; i++) {
		h = mt_hex_digit(l->p[i]);
		if (h < 0)
			break;
		if (i >= CHUNK_DIGITS_MAX)
			return false;
		x = x * 16 + (uint64_t)h;
	}
	if (i == 0)
		return false;
	while (i < l->n && is_ows(l->p[i]))
		i++;
	if (i < l->n && l->p[i] != ';')
		return false;
	*out = x;
	return true;
}

/* One complete line in a line state. @raw counts its bytes, LF included. */
static void on_line(struct feed *f, const struct line *l, uint64_t raw)
{
	struct http1_dir *d = f->d;
	struct req_line rl;
	uint64_t size;
	uint16_t status;

	switch (d->state) {
	case ST_START:
		if (f->l7.is_req) {
			if (!parse_request_line(l, false, &rl)) {
				not_http(f, raw);
				return;
			}
			request_begin(f, &rl);
		} else {
			status = parse_status_line(l, &d->version_minor);
			if (!status) {
				not_http(f, raw);
				return;
			}
			response_begin(f, status);
		}
		d->state = ST_HEADERS;
		break;
	case ST_HEADERS:
		if (l->full == 0) {
			if (f->l7.is_req)
				request_head_done(f);
			else
				response_head_done(f);
		} else if (d->head_len > HTTP1_HEAD_MAX) {
			lost(f, true);
		} else {
			on_header(f, l);
		}
		break;
	case ST_CHUNK_SIZE:
		if (!parse_chunk_size(l, &size)) {
			lost(f, false);
		} else if (size == 0) {
			d->head_len = 0;
			d->state = ST_TRAILERS;
		} else {
			d->remaining = size;
			d->state = ST_CHUNK_DATA;
		}
		break;
	case ST_CHUNK_END:
		if (l->full == 0)
			d->state = ST_CHUNK_SIZE;
		else
			lost(f, false);
		break;
	case ST_TRAILERS:
		if (l->full == 0)
			msg_done(f);
		else if (d->head_len > HTTP1_HEAD_MAX)
			lost(f, false);
		break;
	default:
		break;
	}
}

static bool is_line_state(uint8_t st)
{
	return st == ST_START || st == ST_HEADERS || st == ST_CHUNK_SIZE || st == ST_CHUNK_END ||
	       st == ST_TRAILERS;
}

/* Appends a piece of an unfinished line: its first and its last bytes are kept. */
static void line_append(struct http1_dir *d, const uint8_t *p, size_t n)
{
	uint64_t len = (uint64_t)d->line_len + n;

	if (d->line_len < HTTP1_LINE_MAX)
		memcpy(d->line + d->line_len, p, l7_min_size(n, HTTP1_LINE_MAX - d->line_len));
	if (n >= TAIL_RAW) {
		memcpy(d->tail, p + n - TAIL_RAW, TAIL_RAW);
		d->tail_len = TAIL_RAW;
	} else {
		size_t keep = d->tail_len + n > TAIL_RAW ? TAIL_RAW - n : d->tail_len;

		memmove(d->tail, d->tail + d->tail_len - keep, keep);
		memcpy(d->tail + keep, p, n);
		d->tail_len = (uint8_t)(keep + n);
	}
	d->line_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
}

static void line_from_buf(const struct http1_dir *d, struct line *l)
{
	size_t full = d->line_len;
	size_t tn = d->tail_len;

	if (tn > 0 && d->tail[tn - 1] == '\r') {
		full--;
		tn--;
	}
	l->p = d->line;
	l->full = full;
	l->n = l7_min_size(full, HTTP1_LINE_MAX);
	l->tail_n = l7_min_size(tn, HTTP1_TAIL_MAX);
	l->tail = d->tail + tn - l->tail_n;
}

static void line_from_mem(const uint8_t *p, size_t n, struct line *l)
{
	if (n > 0 && p[n - 1] == '\r')
		n--;
	l->p = (const char *)p;
	l->full = n;
	l->n = l7_min_size(n, HTTP1_LINE_MAX);
	l->tail_n = l7_min_size(n, HTTP1_TAIL_MAX);
	l->tail = l->p + n - l->tail_n;
}

/*
 * A line is unfinished at the end of the captured bytes. A start line that
 * cannot become one, or any line past HTTP1_HEAD_MAX, ends the message.
 */
static void line_pending(struct feed *f)
{
	struct http1_dir *d = f->d;
	uint64_t total = (uint64_t)d->head_len + d->line_len;

	if (d->state == ST_START) {
		if (total > HTTP1_HEAD_MAX ||
		    !start_prefix_ok(f->l7.is_req, (const uint8_t *)d->line,
				     l7_min_size(d->line_len, HTTP1_LINE_MAX)))
			not_http(f, d->line_len);
	} else if (total > HTTP1_HEAD_MAX) {
		lost(f, d->state == ST_HEADERS);
	}
}

/*
 * The line being read runs into uncaptured bytes: its end cannot be found.
 * A start line complete enough to name the message opens it, cut.
 */
static void line_gap(struct feed *f, uint64_t gap)
{
	struct http1_dir *d = f->d;
	struct req_line rl;
	struct line l;
	uint16_t status;

	if (d->state == ST_CHUNK_END && (uint64_t)d->line_len + gap == 2) {
		/*
		 * The call ends with the CRLF after chunk data, uncaptured (a client that reads
		 * the data and its CRLF at once): nothing else can be there.
		 */
		d->line_len = 0;
		d->tail_len = 0;
		d->state = ST_CHUNK_SIZE;
		return;
	}
	if (d->state != ST_START) {
		lost(f, d->state == ST_HEADERS);
		return;
	}
	if (d->line_len == 0) {
		not_http(f, gap);
		return;
	}
	line_from_buf(d, &l);
	status = f->l7.is_req ? 0 : parse_status_line(&l, &d->version_minor);
	if (f->l7.is_req && parse_request_line(&l, true, &rl)) {
		request_begin(f, &rl);
	} else if (status != 0) {
		response_begin(f, status);
	} else {
		not_http(f, (uint64_t)d->line_len + gap);
		return;
	}
	d->end_ns = f->l7.ts;
	lost(f, true);
}

/* Reads lines from captured bytes [@pos, @cap) while in a line state; returns the new @pos. */
static size_t feed_lines(struct feed *f, const uint8_t *data, size_t pos, size_t cap)
{
	struct http1_dir *d = f->d;

	while (pos < cap && is_line_state(d->state)) {
		const uint8_t *nl;
		size_t end, seg;
		uint64_t raw;
		struct line l;

		if (d->state == ST_START && d->line_len == 0) {
			/* RFC 9112 2.2: empty lines before a start line are ignored. */
			while (pos < cap && (data[pos] == '\r' || data[pos] == '\n'))
				pos++;
			if (pos == cap)
				break;
			d->start_ns = f->l7.ts;
			d->start_seq = f->l7.seq + (uint32_t)pos;
			d->head_len = 0;
		}
		nl = memchr(data + pos, '\n', cap - pos);
		end = nl ? (size_t)(nl - data) : cap;
		seg = end - pos;
		d->end_ns = f->l7.ts;
		if (!nl) {
			line_append(d, data + pos, seg);
			line_pending(f);
			return cap;
		}
		if (d->line_len == 0) {
			line_from_mem(data + pos, seg, &l);
			raw = seg + 1;
		} else {
			line_append(d, data + pos, seg);
			line_from_buf(d, &l);
			raw = (uint64_t)d->line_len + 1;
		}
		pos = end + 1;
		d->head_len = (uint32_t)l7_min_size((size_t)d->head_len + raw, UINT32_MAX);
		d->line_len = 0;
		d->tail_len = 0;
		on_line(f, &l, raw);
	}
	return pos;
}

/*
 * Ends the oldest pending request, whose response may have gone by unread while the framing
 * was lost: answered there or not, nobody can tell. Not an error: it ended by the time those
 * bytes went by, at the latest (end guessed, no status). Its span keeps the call in the graph
 * and its server span's parent in the trace.
 */
static void unseen_oldest(struct http1_conn *c, struct l7_feed *f, uint64_t end)
{
	struct mt_exchange *x = &c->pending[c->head];

	/* Not before the request itself (a guess: the pipeline overflowed, below). */
	if (end < x->req_end_ns)
		end = x->req_end_ns;
	if (end < x->req_start_ns)
		end = x->req_start_ns;
	x->flags |= MT_X_END_GUESSED;
	x->resp_end_ns = end;
	f->stats->responses_unseen++;
	emit_oldest(c, f);
}

/*
 * A response found again after lost framing: the responses of the requests sent before the
 * response bytes that came before it may be among those bytes, all but the newest pending
 * one's; or, when requests were dropped from a full pipeline after the newest pending one,
 * this answers one of those.
 * Without this, every later response of the connection would pair with a request one or
 * more places too old.
 */
static void resync_pairing(struct feed *f)
{
	struct http1_conn *c = f->c;

	c->resp_unseen_pending = 0;
	if (c->dropped_after > 0) {
		/* The newest requests were dropped: this response answers one of them. */
		while (c->count > 0)
			unseen_oldest(c, &f->l7, c->resp_prev_ns);
		c->dropped_after = 1; /* response_begin() leaves it unpaired */
		return;
	}
	/*
	 * A request sent after the last response bytes before this one was answered by none of
	 * them: this response is the oldest such one's. Those sent before may have been
	 * answered there (unread, or read as something else: a body whose length lied).
	 */
	while (c->count > 1 && c->pending[c->head].req_start_ns <= c->resp_prev_ns)
		unseen_oldest(c, &f->l7, c->resp_prev_ns);
	if (c->count > 0)
		c->dropped_before[c->head] = 0;
}

/*
 * At a chunk start in ST_RESYNC: does this chunk begin a message? If so the
 * message left open (its end guessed) is finished first.
 */
static bool resync(struct feed *f, const uint8_t *data, size_t cap)
{
	struct http1_dir *d = f->d;

	if (!start_plausible(f->l7.is_req, data, cap))
		return false;
	f->l7.stats->resyncs++;
	if (d->bits & B_OPEN) {
		if (f->l7.is_req)
			req_done(f);
		else
			resp_done(f, MT_X_END_GUESSED);
	}
	dir_reset(d);
	if (!f->l7.is_req)
		resync_pairing(f);
	return true;
}

void http1_feed(struct http1_conn *c, bool client_to_server, const struct mt_chunk *ch,
		mt_exchange_fn emit, void *ctx, struct http1_stats *stats)
{
	struct feed f;
	const uint8_t *data;
	size_t pos = 0, cap, len;

	if (!c || !l7_feed_begin(&f.l7, client_to_server, ch, emit, ctx, stats))
		return;
	f.c = c;
	f.d = client_to_server ? &c->req : &c->resp;
	data = f.l7.data;
	len = f.l7.len;
	cap = f.l7.cap;
	if (f.d->state == ST_UPGRADED)
		return;
	if (f.d->state == ST_RESYNC && !resync(&f, data, cap)) {
		if (!client_to_server && ((f.d->bits & B_OPEN) || chunk_cut(&f)))
			resp_unseen(c, f.l7.ts);
		if (f.d->bits & B_OPEN)
			f.d->end_ns = f.l7.ts; /* the open message may reach this far */
		else
			l7_garbage(&f.l7, len);
		pos = len;
	}

	while (pos < len) {
		struct http1_dir *d = f.d;
		uint64_t n;

		switch (d->state) {
		case ST_BODY:
		case ST_CHUNK_DATA:
			n = d->remaining < len - pos ? d->remaining : len - pos;
			d->remaining -= n;
			d->body_bytes = l7_sat_add(d->body_bytes, n);
			d->end_ns = f.l7.ts;
			pos += n;
			if (d->remaining == 0) {
				if (d->state == ST_BODY)
					msg_done(&f);
				else
					d->state = ST_CHUNK_END;
			}
			break;
		case ST_UNTIL_CLOSE:
			d->body_bytes = l7_sat_add(d->body_bytes, len - pos);
			d->end_ns = f.l7.ts;
			pos = len;
			break;
		case ST_RESYNC:
			if (!client_to_server && ((d->bits & B_OPEN) || chunk_cut(&f)))
				resp_unseen(c, f.l7.ts);
			if (d->bits & B_OPEN)
				d->end_ns = f.l7.ts;
			else
				l7_garbage(&f.l7, len - pos);
			pos = len;
			break;
		case ST_UPGRADED:
			pos = len;
			break;
		default:
			if (pos < cap)
				pos = feed_lines(&f, data, pos, cap);
			else {
				line_gap(&f, len - pos);
				pos = len;
			}
			break;
		}
	}
	if (!client_to_server)
		c->resp_prev_ns = f.l7.ts;
	if (client_to_server)
		req_sync(c);
}

void http1_close(struct http1_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		 struct http1_stats *stats)
{
	struct http1_dir *r;
	unsigned unseen, before;
	struct feed f;

	if (!c)
		return;
	l7_feed_close(&f.l7, ts_ns, emit, ctx, stats);
	r = &c->resp;
	unseen = r->state == ST_RESYNC ? c->resp_unseen_pending : 0;
	f.c = c;
	f.d = r;
	req_sync(c);
	before = c->count;
	if ((r->bits & B_OPEN) && (r->status >= 200 || r->status == 101)) {
		if (r->state == ST_UNTIL_CLOSE) {
			/* Framed by the close: it ends here. */
			if (ts_ns > r->end_ns)
				r->end_ns = ts_ns;
			resp_done(&f, MT_X_END_GUESSED);
		} else {
			resp_done(&f, MT_X_END_GUESSED |
					      (r->state == ST_HEADERS ? MT_X_RESP_TRUNCATED : 0));
		}
	}
	if (c->req_open && c->req.state == ST_HEADERS)
		c->pending[(c->head + c->count - 1) % HTTP1_PIPELINE_MAX].flags |=
			MT_X_REQ_TRUNCATED;
	/* The open response, finished above, answered the oldest of them. */
	unseen -= unseen < before - c->count ? unseen : before - c->count;
	while (c->count > 0) {
		if (unseen > 0) {
			unseen--;
			unseen_oldest(c, &f.l7, c->resp_unseen_ns);
			continue;
		}
		c->pending[c->head].flags |= MT_X_NO_RESPONSE;
		emit_oldest(c, &f.l7);
	}
	http1_init(c);
}

/* ---- registry entry ---- */

static enum l7_verdict http1_verdict(const uint8_t *buf, size_t n)
{
	bool is_request;

	if (!http1_detect(buf, n, &is_request))
		return L7_NO;
	return is_request ? L7_FROM_CLIENT : L7_FROM_SERVER;
}

static bool http1_idle(const void *state)
{
	const struct http1_conn *c = state;

	return c->count == 0 && c->dropped_after == 0 && c->req.state == ST_START &&
	       c->req.line_len == 0 && c->resp.state == ST_START && c->resp.line_len == 0;
}

uint64_t http1_skip_hint(const struct http1_conn *c, bool client_to_server)
{
	const struct http1_dir *d = client_to_server ? &c->req : &c->resp;

	/* A Content-Length body or chunk data: skipped by count, never looked at. */
	if (d->state == ST_BODY || d->state == ST_CHUNK_DATA)
		return d->remaining;
	return 0;
}

static uint64_t http1_skip_hint_state(const void *state, bool client_to_server)
{
	return http1_skip_hint(state, client_to_server);
}

L7_PARSER(http1_parser, struct http1_conn, http1, .protocol = MT_PROTO_HTTP1, .name = "http",
	  .detect = http1_verdict, .idle = http1_idle, .skip_hint = http1_skip_hint_state);
