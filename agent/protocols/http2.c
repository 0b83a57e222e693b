// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/2 and gRPC parser, both directions of one connection.
 * Spec: https://www.rfc-editor.org/rfc/rfc9113 (HTTP/2: framing, streams),
 *       https://www.rfc-editor.org/rfc/rfc7541 (HPACK, in hpack.c),
 *       https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md (gRPC),
 *       https://www.w3.org/TR/trace-context/ (traceparent, tracestate).
 *
 * Each direction reads frames by count: the 9-byte frame header from
 * captured bytes, then the payload, whose captured part is looked at and
 * whose uncaptured part is only counted. The payload is split into its
 * parts (pad length, priority or promised stream, content, padding); the
 * content goes to HPACK (HEADERS, PUSH_PROMISE, CONTINUATION), to the
 * stream's byte counts (DATA) or to a small buffer (SETTINGS, RST_STREAM,
 * GOAWAY). When a frame header falls in uncaptured bytes the framing is
 * lost: the direction waits for a chunk that starts with plausible frame
 * headers, the HPACK table of that direction is taken as unknown, and the
 * streams open at that moment become suspects, emitted with their end
 * guessed unless they are seen again.
 */
#include <errno.h>
#include <string.h>

#include "agent/protocols/http2.h"
#include "agent/protocols/kit.h"
#include "agent/common/traceparent.h"

#define H2_NO_SLOT	  UINT16_MAX
#define FRAME_HEADER_LEN  9
#define PREFACE_LEN	  24
#define DEFAULT_MAX_FRAME 16384u
#define LARGEST_MAX_FRAME ((1u << 24) - 1)
#define SWEEP_EVERY_NS	  (100ull * 1000 * 1000)

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum frame_type {
	F_DATA = 0,
	F_HEADERS = 1,
	F_PRIORITY = 2,
	F_RST_STREAM = 3,
	F_SETTINGS = 4,
	F_PUSH_PROMISE = 5,
	F_PING = 6,
	F_GOAWAY = 7,
	F_WINDOW_UPDATE = 8,
	F_CONTINUATION = 9,
};

enum {
	FL_END_STREAM = 0x1,
	FL_ACK = 0x1,
	FL_END_HEADERS = 0x4,
	FL_PADDED = 0x8,
	FL_PRIORITY = 0x20,
};

/* The flags each frame type defines; senders leave the others unset (RFC 9113 4.1). */
static const uint8_t valid_flags[F_CONTINUATION + 1] = {
	[F_DATA] = FL_END_STREAM | FL_PADDED,
	[F_HEADERS] = FL_END_STREAM | FL_END_HEADERS | FL_PADDED | FL_PRIORITY,
	[F_SETTINGS] = FL_ACK,
	[F_PUSH_PROMISE] = FL_END_HEADERS | FL_PADDED,
	[F_PING] = FL_ACK,
	[F_CONTINUATION] = FL_END_HEADERS,
};

enum settings_id {
	SETTINGS_HEADER_TABLE_SIZE = 0x1,
	SETTINGS_MAX_FRAME_SIZE = 0x5,
};

/* RST_STREAM error codes (RFC 9113 section 7) that gRPC maps to a status of its own. */
enum {
	H2_REFUSED_STREAM = 0x7,
	H2_CANCEL = 0x8,
	H2_ENHANCE_YOUR_CALM = 0xb,
	H2_INADEQUATE_SECURITY = 0xc,
};

/* gRPC status codes used here (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
enum {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
};

enum dir_state {
	D_PREFACE = 0, /* client -> server: the connection preface */
	D_FIRST,       /* server -> client: the first chunk must start with a frame */
	D_RESYNC,      /* framing lost: wait for a chunk that starts with frames */
	D_HEADER,      /* a frame header */
	D_PAYLOAD,     /* a frame's payload */
};

enum payload_part {
	P_PADLEN = 0, /* the pad length byte */
	P_PRE,	      /* priority fields or the promised stream id */
	P_CONTENT,
	P_PAD,
};

enum block_kind {
	B_IGNORE = 0,	 /* decoded (the table must follow it) but not used */
	B_REQUEST,	 /* a request's header section */
	B_REQ_TRAILERS,	 /* a request's trailers */
	B_RESPONSE,	 /* a response's header section (interim or final) */
	B_RESP_TRAILERS, /* a response's trailers */
	B_ORPHAN,	 /* a response header section on a stream not traced */
};

/* h2_stream.bits */
enum {
	S_REQ_END = 1 << 0,	/* the client ended its side */
	S_RESP = 1 << 1,	/* the final response header section was seen */
	S_GRPC = 1 << 2,	/* content-type application/grpc* */
	S_GRPC_STATUS = 1 << 3, /* grpc_status is known */
	S_SUSPECT = 1 << 4,	/* open while framing was lost: its end may have been missed */
	S_TP = 1 << 5,		/* a traceparent field was seen */
	S_TS_DROP = 1 << 6,	/* tracestate did not fit: dropped */
	S_AUTHORITY = 1 << 7,	/* :authority was seen */
};

/* What one http2_feed() call works with. */
struct feed {
	struct l7_feed l7; /* the chunk, its direction, where exchanges go */
	struct http2_conn *c;
	struct h2_dir *d;
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool name_is(const uint8_t *name, size_t n, const char *lit, size_t lit_n)
{
	return n == lit_n && memcmp(name, lit, n) == 0;
}

#define NAME_IS(name, n, lit) name_is(name, n, lit, sizeof(lit) - 1)

/* ---- streams ---- */

static int find_slot(struct http2_conn *c, uint32_t id)
{
	if (id == 0)
		return -1;
	if (c->ids[c->last_slot] == id)
		return c->last_slot;
	for (unsigned i = 0; i < H2_STREAMS_MAX; i++) {
		if (c->ids[i] == id) {
			c->last_slot = (uint16_t)i;
			return (int)i;
		}
	}
	return -1;
}

static void touch(struct http2_conn *c, struct h2_stream *s, uint64_t ts)
{
	s->last_ns = ts;
	if (s->bits & S_SUSPECT) {
		s->bits &= (uint8_t)~S_SUSPECT;
		c->suspect--;
	}
}

static void free_slot(struct http2_conn *c, unsigned i)
{
	if (c->streams[i].bits & S_SUSPECT)
		c->suspect--;
	c->streams[i].bits = 0;
	c->streams[i].id = 0;
	c->ids[i] = 0;
	c->open--;
}

/* Whether a gRPC status is an error on the server's side too (RPC semconv, gRPC server spans). */
static bool grpc_server_error(unsigned code)
{
	switch (code) {
	case GRPC_UNKNOWN:
	case GRPC_DEADLINE_EXCEEDED:
	case GRPC_UNIMPLEMENTED:
	case GRPC_INTERNAL:
	case GRPC_UNAVAILABLE:
	case GRPC_DATA_LOSS:
		return true;
	default:
		return false;
	}
}

/* The exchange the stream in @s is so far, in the connection's scratch exchange. */
static struct mt_exchange *fill_exchange(struct http2_conn *c, const struct h2_stream *s,
					 uint32_t extra_flags)
{
	struct mt_exchange *x = &c->x;

	memset(x, 0, sizeof(*x));
	/* The linker keys requests in flight by it: streams of one connection must differ. */
	x->req_seq = s->req_seq ? s->req_seq : s->id;
	x->protocol = (s->bits & S_GRPC) ? MT_PROTO_GRPC : MT_PROTO_HTTP2;
	x->status = s->status;
	x->flags = s->flags | extra_flags;
	x->req_start_ns = s->req_start_ns;
	x->req_end_ns = s->req_end_ns;
	x->resp_start_ns = s->resp_start_ns;
	x->resp_end_ns = s->resp_end_ns;
	x->req_body_bytes = s->req_body_bytes;
	x->resp_body_bytes = s->resp_body_bytes;
	memcpy(x->method, s->method, sizeof(x->method));
	memcpy(x->target, s->target, sizeof(x->target));
	memcpy(x->host, s->host, sizeof(x->host));
	memcpy(x->traceparent, s->traceparent, sizeof(x->traceparent));
	memcpy(x->tracestate, s->tracestate, sizeof(x->tracestate));
	if (s->bits & S_GRPC) {
		const char *m = s->target[0] == '/' ? s->target + 1 : s->target;

		l7_copy_field(x->operation, sizeof(x->operation), m, strlen(m));
		if (s->bits & S_GRPC_STATUS) {
			unsigned code = s->grpc_status;
			char *p = x->status_text;

			if (code >= 100)
				*p++ = (char)('0' + code / 100);
			if (code >= 10)
				*p++ = (char)('0' + code / 10 % 10);
			*p++ = (char)('0' + code % 10);
			*p = '\0';
			if (grpc_server_error(code))
				x->flags |= MT_X_ERROR;
			else if (code != GRPC_OK)
				x->flags |= MT_X_CLIENT_ERROR;
		}
	}
	return x;
}

/* Hands the stream in slot @i to the caller as an exchange and frees the slot. */
static void emit_stream(struct feed *f, unsigned i, uint32_t extra_flags)
{
	struct http2_conn *c = f->c;
	struct mt_exchange *x = fill_exchange(c, &c->streams[i], extra_flags);

	l7_emit_done(&f->l7, x);
	free_slot(c, i);
}

/* The request's header section is in: announce the call while in flight (enum mt_stage). */
static void announce_request(struct feed *f, unsigned i)
{
	struct mt_exchange *x;

	if (!f->l7.emit)
		return;
	x = fill_exchange(f->c, &f->c->streams[i], 0);
	x->stage = MT_STAGE_REQUEST;
	f->l7.emit(f->l7.ctx, x);
}

/* A free slot for a new stream: the lowest free one, else the oldest suspect's. -1 if none. */
static int alloc_slot(struct feed *f)
{
	struct http2_conn *c = f->c;
	int oldest = -1;

	for (unsigned i = 0; i < H2_STREAMS_MAX; i++) {
		if (c->ids[i] == 0)
			return (int)i;
		if ((c->streams[i].bits & S_SUSPECT) &&
		    (oldest < 0 || c->streams[i].last_ns < c->streams[oldest].last_ns))
			oldest = (int)i;
	}
	if (oldest >= 0)
		emit_stream(f, (unsigned)oldest, MT_X_END_GUESSED);
	return oldest;
}

/* After framing was lost: every open stream may have ended unseen. */
static void mark_suspects(struct http2_conn *c)
{
	for (unsigned i = 0; i < H2_STREAMS_MAX; i++) {
		if (c->ids[i] && !(c->streams[i].bits & S_SUSPECT)) {
			c->streams[i].bits |= S_SUSPECT;
			c->suspect++;
		}
	}
}

/* Emits suspects not seen for H2_SUSPECT_NS; looks at most every SWEEP_EVERY_NS. */
static void sweep(struct feed *f)
{
	struct http2_conn *c = f->c;

	if (!c->suspect || f->l7.ts < c->last_sweep_ns + SWEEP_EVERY_NS)
		return;
	c->last_sweep_ns = f->l7.ts;
	for (unsigned i = 0; i < H2_STREAMS_MAX && c->suspect; i++) {
		struct h2_stream *s = &c->streams[i];

		if (c->ids[i] && (s->bits & S_SUSPECT) && f->l7.ts >= s->last_ns + H2_SUSPECT_NS)
			emit_stream(f, i, MT_X_END_GUESSED);
	}
}

/* The server ended the stream in slot @i: the exchange is complete. */
static void response_done(struct feed *f, unsigned i)
{
	f->c->streams[i].resp_end_ns = f->l7.ts;
	emit_stream(f, i, 0);
}

/* ---- header fields ---- */

static bool is_grpc_type(const uint8_t *v, size_t n)
{
	static const char grpc[] = "application/grpc";

	return n >= sizeof(grpc) - 1 && memcmp(v, grpc, sizeof(grpc) - 1) == 0 &&
	       (n == sizeof(grpc) - 1 || v[sizeof(grpc) - 1] == '+' || v[sizeof(grpc) - 1] == ';' ||
		v[sizeof(grpc) - 1] == '-');
}

/* A decimal of at most @digits digits, or -1. */
static int parse_uint(const uint8_t *v, size_t n, size_t digits)
{
	int x = 0;

	if (n == 0 || n > digits)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

static void request_field(struct h2_stream *s, const uint8_t *name, size_t nl, const uint8_t *v,
			  size_t vl)
{
	if (NAME_IS(name, nl, ":method")) {
		l7_copy_field(s->method, sizeof(s->method), v, vl);
	} else if (NAME_IS(name, nl, ":path")) {
		l7_copy_field(s->target, sizeof(s->target), v, vl);
	} else if (NAME_IS(name, nl, ":authority")) {
		l7_copy_field(s->host, sizeof(s->host), v, vl);
		s->bits |= S_AUTHORITY;
	} else if (NAME_IS(name, nl, "host")) {
		if (!(s->bits & S_AUTHORITY) && !s->host[0])
			l7_copy_field(s->host, sizeof(s->host), v, vl);
	} else if (NAME_IS(name, nl, "content-type")) {
		if (is_grpc_type(v, vl))
			s->bits |= S_GRPC;
	} else if (NAME_IS(name, nl, "traceparent")) {
		/* More than one traceparent is malformed (W3C 3.2). */
		if (!(s->bits & S_TP) && mt_traceparent_valid((const char *)v, vl))
			l7_copy_field(s->traceparent, sizeof(s->traceparent), v,
				      MT_TRACEPARENT_LEN);
		else
			s->traceparent[0] = '\0';
		s->bits |= S_TP;
	} else if (NAME_IS(name, nl, "tracestate")) {
		if (!(s->bits & S_TS_DROP) &&
		    !mt_tracestate_append(s->tracestate, sizeof(s->tracestate), (const char *)v, vl,
					  ','))
			s->bits |= S_TS_DROP; /* does not fit: dropped whole */
	}
}

/* Response fields wait in the direction until the block ends (an interim 1xx section is dropped). */
static void response_field(struct h2_dir *d, const uint8_t *name, size_t nl, const uint8_t *v,
			   size_t vl)
{
	int x;

	if (NAME_IS(name, nl, ":status")) {
		x = parse_uint(v, vl, 3);
		if (x >= 100)
			d->blk_status = (uint16_t)x;
	} else if (NAME_IS(name, nl, "content-type")) {
		if (is_grpc_type(v, vl))
			d->blk_grpc = 1;
	} else if (NAME_IS(name, nl, "grpc-status")) {
		x = parse_uint(v, vl, 3);
		if (x >= 0 && x <= UINT8_MAX) {
			d->blk_grpc_st = 1;
			d->blk_grpc_code = (uint8_t)x;
		}
	}
}

static void on_field(void *ctx, const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
	struct feed *f = ctx;
	struct h2_dir *d = f->d;

	switch (d->blk_kind) {
	case B_REQUEST:
		request_field(&f->c->streams[d->blk_slot], name, nl, v, vl);
		break;
	case B_RESPONSE:
	case B_RESP_TRAILERS:
	case B_ORPHAN:
		response_field(d, name, nl, v, vl);
		break;
	default:
		break;
	}
}

/* ---- header blocks ---- */

/* A HEADERS or PUSH_PROMISE frame opens a header block on stream @sid. */
static void block_begin(struct feed *f, uint32_t sid, bool push)
{
	struct http2_conn *c = f->c;
	struct h2_dir *d = f->d;
	struct h2_stream *s;
	int slot;

	d->blk_open = 1;
	d->blk_stream = sid;
	d->blk_end = !push && (d->flags & FL_END_STREAM);
	d->blk_status = 0;
	d->blk_grpc = 0;
	d->blk_grpc_st = 0;
	d->blk_slot = H2_NO_SLOT;
	d->blk_kind = B_IGNORE;
	hpack_dec_begin(&d->hp);
	if (push || !(sid & 1))
		return; /* promised and server-initiated streams are not traced */

	slot = find_slot(c, sid);
	if (slot >= 0) {
		s = &c->streams[slot];
		touch(c, s, f->l7.ts);
		d->blk_slot = (uint16_t)slot;
		if (f->l7.is_req)
			d->blk_kind = B_REQ_TRAILERS;
		else
			d->blk_kind = (s->bits & S_RESP) ? B_RESP_TRAILERS : B_RESPONSE;
		return;
	}
	/*
	 * A response on a stream above every request seen, after the client's
	 * framing was lost: its request passed unseen. Traced with what is known.
	 */
	if (!f->l7.is_req && !(c->c2s_lost_ns && sid > c->max_stream)) {
		d->blk_kind = B_ORPHAN;
		return;
	}
	if (f->l7.is_req)
		f->l7.stats->requests++;
	if (sid > c->max_stream)
		c->max_stream = sid;
	slot = alloc_slot(f);
	if (slot < 0) {
		f->l7.stats->pipeline_drops++;
		if (sid > c->max_dropped)
			c->max_dropped = sid;
		return;
	}
	s = &c->streams[slot];
	memset(s, 0, sizeof(*s));
	s->id = sid;
	s->req_seq = d->frame_seq;
	s->req_start_ns = d->frame_ns;
	s->req_end_ns = f->l7.ts;
	s->last_ns = f->l7.ts;
	if (!f->l7.is_req) {
		s->req_start_ns = c->c2s_lost_ns < d->frame_ns ? c->c2s_lost_ns : d->frame_ns;
		s->req_end_ns = s->req_start_ns;
		s->bits |= S_REQ_END;
		s->flags |= MT_X_REQ_TRUNCATED;
	}
	c->ids[slot] = sid;
	c->last_slot = (uint16_t)slot;
	c->open++;
	d->blk_slot = (uint16_t)slot;
	d->blk_kind = f->l7.is_req ? B_REQUEST : B_RESPONSE;
}

/* The stream in @s carries gRPC status @code (from a field or a reset). */
static void set_grpc_status(struct h2_stream *s, unsigned code)
{
	s->bits |= S_GRPC_STATUS;
	s->grpc_status = (uint8_t)code;
}

/*
 * The open header block ended: with END_HEADERS when @complete, else cut
 * short (a frame of another kind or stream came between, or framing was
 * lost). Applies what it said to its stream.
 */
static void block_end(struct feed *f, bool complete)
{
	struct http2_conn *c = f->c;
	struct h2_dir *d = f->d;
	struct h2_stream *s;
	bool ok;

	if (!complete)
		hpack_dec_gap(&d->hp);
	ok = hpack_dec_end(&d->hp, on_field, f);
	d->blk_open = 0;
	if (d->blk_slot == H2_NO_SLOT) {
		if (d->blk_kind == B_ORPHAN && d->blk_status >= 200 &&
		    d->blk_stream > c->max_dropped)
			f->l7.stats->orphan_responses++;
		return;
	}
	s = &c->streams[d->blk_slot];
	if (c->ids[d->blk_slot] != d->blk_stream)
		return; /* emitted meanwhile (reset, evicted) */
	switch (d->blk_kind) {
	case B_REQUEST:
	case B_REQ_TRAILERS:
		if (!ok)
			s->flags |= MT_X_REQ_TRUNCATED;
		s->req_end_ns = f->l7.ts;
		if (d->blk_end)
			s->bits |= S_REQ_END;
		if (d->blk_kind == B_REQUEST)
			announce_request(f, d->blk_slot);
		return;
	case B_RESPONSE:
		/* An interim (1xx) section; when :status is unknown, take it as final. */
		if (d->blk_status >= 100 && d->blk_status < 200 && !d->blk_end)
			return;
		s->bits |= S_RESP;
		s->status = d->blk_status;
		s->resp_start_ns = d->frame_ns;
		s->resp_end_ns = f->l7.ts;
		f->l7.stats->responses++;
		break;
	default: /* B_RESP_TRAILERS */
		s->resp_end_ns = f->l7.ts;
		break;
	}
	if (!ok)
		s->flags |= MT_X_RESP_TRUNCATED;
	if (d->blk_grpc)
		s->bits |= S_GRPC;
	if (d->blk_grpc_st)
		set_grpc_status(s, d->blk_grpc_code);
	if (d->blk_end)
		response_done(f, d->blk_slot);
}

/* ---- control frames ---- */

/* gRPC's reading of a stream reset (PROTOCOL-HTTP2.md, "Errors"). */
static unsigned grpc_status_of_reset(uint32_t code)
{
	switch (code) {
	case H2_REFUSED_STREAM:
		return GRPC_UNAVAILABLE;
	case H2_CANCEL:
		return GRPC_CANCELLED;
	case H2_ENHANCE_YOUR_CALM:
		return GRPC_RESOURCE_EXHAUSTED;
	case H2_INADEQUATE_SECURITY:
		return GRPC_PERMISSION_DENIED;
	default:
		return GRPC_INTERNAL;
	}
}

static void on_rst_stream(struct feed *f, uint32_t sid, bool have_code, uint32_t code)
{
	int slot = find_slot(f->c, sid);
	struct h2_stream *s;

	if (slot < 0)
		return;
	s = &f->c->streams[slot];
	if (f->l7.is_req)
		s->req_end_ns = f->l7.ts;
	else
		s->resp_end_ns = f->l7.ts;
	if (!(s->bits & S_GRPC) || (!(s->bits & S_GRPC_STATUS) && !have_code))
		s->flags |= MT_X_ERROR;
	else if (!(s->bits & S_GRPC_STATUS))
		set_grpc_status(s, grpc_status_of_reset(code));
	emit_stream(f, (unsigned)slot, 0);
}

/* GOAWAY from the server: streams above @last were never processed (RFC 9113 6.8). */
static void on_goaway(struct feed *f, uint32_t last)
{
	struct http2_conn *c = f->c;

	for (unsigned i = 0; i < H2_STREAMS_MAX; i++) {
		struct h2_stream *s = &c->streams[i];

		if (!c->ids[i] || c->ids[i] <= last)
			continue;
		if ((s->bits & S_GRPC) && !(s->bits & S_GRPC_STATUS))
			set_grpc_status(s, GRPC_UNAVAILABLE);
		emit_stream(f, i, (s->bits & S_RESP) ? MT_X_ERROR : MT_X_NO_RESPONSE);
	}
}

static void on_setting(struct feed *f, uint16_t id, uint32_t value)
{
	/* A setting constrains what the peer sends: the other direction. */
	struct h2_dir *other = &f->c->dir[f->l7.is_req ? 1 : 0];

	if (id == SETTINGS_HEADER_TABLE_SIZE)
		hpack_dec_allow(&other->hp, value);
	else if (id == SETTINGS_MAX_FRAME_SIZE && value >= DEFAULT_MAX_FRAME &&
		 value <= LARGEST_MAX_FRAME)
		other->max_frame = value;
}

/* SETTINGS content: 6-byte entries; an entry not fully captured is skipped. */
static void settings_bytes(struct feed *f, const uint8_t *p, size_t n)
{
	struct h2_dir *d = f->d;

	if (!p) {
		size_t total = d->cbuf_len + n;

		d->cbuf_len = (uint8_t)(total % 6);
		d->cbuf_bad = d->cbuf_len > 0;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		d->cbuf[d->cbuf_len++] = p[i];
		if (d->cbuf_len == 6) {
			if (!d->cbuf_bad)
				on_setting(f, (uint16_t)(d->cbuf[0] << 8 | d->cbuf[1]),
					   be32(d->cbuf + 2));
			d->cbuf_len = 0;
			d->cbuf_bad = 0;
		}
	}
}

/* RST_STREAM / GOAWAY: their first 8 bytes are kept. */
static void control_bytes(struct h2_dir *d, const uint8_t *p, size_t n)
{
	size_t k = l7_min_size(n, sizeof(d->cbuf) - d->cbuf_len);

	if (k == 0)
		return;
	if (p)
		memcpy(d->cbuf + d->cbuf_len, p, k);
	else
		d->cbuf_bad = 1;
	d->cbuf_len = (uint8_t)(d->cbuf_len + k);
}

/* ---- frames ---- */

static void on_data(struct feed *f, size_t n)
{
	int slot = find_slot(f->c, f->d->stream_id);
	struct h2_stream *s;

	if (slot < 0)
		return;
	s = &f->c->streams[slot];
	touch(f->c, s, f->l7.ts);
	if (f->l7.is_req) {
		s->req_body_bytes = l7_sat_add(s->req_body_bytes, n);
		s->req_end_ns = f->l7.ts;
	} else {
		s->resp_body_bytes = l7_sat_add(s->resp_body_bytes, n);
		s->resp_end_ns = f->l7.ts;
	}
}

/* Content bytes of the current frame: @p NULL when they were not captured. */
static void content(struct feed *f, const uint8_t *p, size_t n)
{
	struct h2_dir *d = f->d;

	switch (d->type) {
	case F_DATA:
		on_data(f, n);
		break;
	case F_HEADERS:
	case F_PUSH_PROMISE:
	case F_CONTINUATION:
		if (!d->blk_open)
			break;
		if (p)
			hpack_dec_feed(&d->hp, p, n, on_field, f);
		else
			hpack_dec_gap(&d->hp);
		break;
	case F_SETTINGS:
		if (!(d->flags & FL_ACK))
			settings_bytes(f, p, n);
		break;
	case F_RST_STREAM:
	case F_GOAWAY:
		control_bytes(d, p, n);
		break;
	default:
		break;
	}
}

static void enter_content(struct h2_dir *d)
{
	d->content = d->left > d->pad ? d->left - d->pad : 0;
	d->pst = P_CONTENT;
}

/*
 * @cap captured bytes at @p, then @gap uncaptured ones, of the current
 * frame's payload (never more than is left of it).
 */
static void payload(struct feed *f, const uint8_t *p, size_t cap, size_t gap)
{
	struct h2_dir *d = f->d;

	while (cap > 0 || gap > 0) {
		bool have = cap > 0;
		size_t avail = have ? cap : gap;
		size_t k = avail;

		switch (d->pst) {
		case P_PADLEN:
			k = 1;
			d->pad = have ? p[0] : 0;
			if (!have && d->blk_open)
				hpack_dec_gap(&d->hp); /* where the block starts is unknown */
			d->left--;
			if (d->pre)
				d->pst = P_PRE;
			else
				enter_content(d);
			break;
		case P_PRE:
			k = l7_min_size(avail, d->pre);
			d->pre = (uint8_t)(d->pre - k);
			d->left -= (uint32_t)k;
			if (d->pre == 0)
				enter_content(d);
			break;
		case P_CONTENT:
			if (d->content == 0) {
				d->pst = P_PAD;
				continue;
			}
			k = l7_min_size(avail, d->content);
			content(f, have ? p : NULL, k);
			d->content -= (uint32_t)k;
			d->left -= (uint32_t)k;
			break;
		default: /* P_PAD */
			d->left -= (uint32_t)k;
			break;
		}
		if (have) {
			p += k;
			cap -= k;
		} else {
			gap -= k;
		}
	}
}

/* The 9 bytes of a frame header are in: set up its payload. */
static void frame_begin(struct feed *f)
{
	struct h2_dir *d = f->d;
	const uint8_t *h = d->fh;

	d->left = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	d->type = h[3];
	d->flags = h[4];
	d->stream_id = be32(h + 5) & 0x7fffffffu;
	d->fh_len = 0;
	d->pad = 0;
	d->pre = 0;
	d->cbuf_len = 0;
	d->cbuf_bad = 0;
	d->pst = P_CONTENT;
	d->content = d->left;
	d->st = D_PAYLOAD;

	/* RFC 9113 6.10: nothing may come between a block's frames. */
	if (d->blk_open && (d->type != F_CONTINUATION || d->stream_id != d->blk_stream))
		block_end(f, false);

	switch (d->type) {
	case F_HEADERS:
		d->pre = (d->flags & FL_PRIORITY) ? 5 : 0;
		block_begin(f, d->stream_id, false);
		break;
	case F_PUSH_PROMISE:
		d->pre = 4;
		block_begin(f, d->stream_id, true);
		break;
	default:
		break;
	}
	if (d->type == F_HEADERS || d->type == F_PUSH_PROMISE || d->type == F_DATA) {
		if (d->flags & FL_PADDED)
			d->pst = P_PADLEN;
		else if (d->pre)
			d->pst = P_PRE;
	}
}

/* The current frame's payload has been read. */
static void frame_end(struct feed *f)
{
	struct h2_dir *d = f->d;
	int slot;

	d->st = D_HEADER;
	switch (d->type) {
	case F_DATA:
		if (!(d->flags & FL_END_STREAM))
			break;
		slot = find_slot(f->c, d->stream_id);
		if (slot < 0)
			break;
		if (f->l7.is_req) {
			f->c->streams[slot].bits |= S_REQ_END;
			f->c->streams[slot].req_end_ns = f->l7.ts;
		} else {
			response_done(f, (unsigned)slot);
		}
		break;
	case F_HEADERS:
	case F_PUSH_PROMISE:
	case F_CONTINUATION:
		if (d->blk_open && (d->flags & FL_END_HEADERS))
			block_end(f, true);
		break;
	case F_RST_STREAM:
		on_rst_stream(f, d->stream_id, d->cbuf_len >= 4 && !d->cbuf_bad, be32(d->cbuf));
		break;
	case F_GOAWAY:
		if (!f->l7.is_req && d->cbuf_len >= 4 && !d->cbuf_bad)
			on_goaway(f, be32(d->cbuf) & 0x7fffffffu);
		break;
	default:
		break;
	}
}

/* ---- plausibility: detection and resync ---- */

/* Could a sender have written frame header @h? Strict: unknown types are refused. */
static bool header_plausible(const uint8_t *h, uint32_t max_frame)
{
	uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	uint8_t type = h[3], flags = h[4];
	uint32_t sid = be32(h + 5);

	if ((sid & 0x80000000u) || len > max_frame || type > F_CONTINUATION ||
	    (flags & ~valid_flags[type]))
		return false;
	switch (type) {
	case F_DATA:
	case F_HEADERS:
		return sid != 0 && (!(flags & FL_PADDED) || len >= 1);
	case F_CONTINUATION:
		return sid != 0;
	case F_PRIORITY:
		return sid != 0 && len == 5;
	case F_RST_STREAM:
		return sid != 0 && len == 4;
	case F_SETTINGS:
		return sid == 0 && len % 6 == 0 && (!(flags & FL_ACK) || len == 0);
	case F_PUSH_PROMISE:
		return sid != 0 && (sid & 1) && len >= 4;
	case F_PING:
		return sid == 0 && len == 8;
	case F_GOAWAY:
		return sid == 0 && len >= 8;
	default: /* F_WINDOW_UPDATE */
		return len == 4;
	}
}

/* Largest index a field may use: the static table and a default-sized dynamic one (RFC 7541 4.1). */
#define INDEX_MAX (61 + 4096 / 32)

/*
 * An HPACK integer with a @prefix-bit prefix at @p[*@i]; false when it runs
 * past @n or is implausibly large.
 */
static bool hp_int(const uint8_t *p, size_t n, size_t *i, unsigned prefix, uint32_t *out)
{
	uint32_t mask = (1u << prefix) - 1, v = p[*i] & mask;
	unsigned shift = 0;

	(*i)++;
	if (v < mask) {
		*out = v;
		return true;
	}
	while (*i < n && shift <= 21) {
		uint8_t b = p[(*i)++];

		v += (uint32_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* A literal string sent raw (not Huffman-coded): a name must be lower-case tchars (RFC 9113 8.2). */
static bool raw_string_ok(const uint8_t *p, size_t n, bool name)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];

		if (name ? !(ch == '-' || ch == '_' || ch == '.' || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9'))
			 : (ch == 0 || ch == '\r' || ch == '\n'))
			return false;
	}
	return true;
}

/*
 * Which side wrote the header block fragment @p[0..@n)? Every representation
 * in view must be well formed (@whole: the fragment is the entire block, so
 * nothing may run past its end); pseudo-headers from the static table must
 * come first, each once, all of a request (:authority, :method, :path,
 * :scheme) or all of a response (:status); raw names must be lower case.
 */
static enum l7_verdict block_side(const uint8_t *p, size_t n, bool whole)
{
	/* Static indices 1..14 by pseudo-header: :authority, :method x2, :path x2, :scheme x2, :status x7. */
	static const uint8_t group[15] = {0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5, 5};
	enum l7_verdict side = L7_NO;
	unsigned fields = 0, seen = 0;
	bool pseudo = true;
	size_t i = 0;
	uint32_t v;

	while (i < n) {
		uint8_t b = p[i];
		unsigned strings, prefix;

		if ((b & 0xe0) == 0x20) {
			/* A dynamic table size update: only before the first field. */
			if (fields || !hp_int(p, n, &i, 5, &v))
				goto cut;
			continue;
		}
		prefix = (b & 0x80) ? 7 : (b & 0x40) ? 6 : 4;
		if (!hp_int(p, n, &i, prefix, &v))
			goto cut;
		if (v > INDEX_MAX || ((b & 0x80) && v == 0))
			return L7_NO;
		if (v >= 1 && v <= 14) {
			enum l7_verdict this = v <= 7 ? L7_FROM_CLIENT : L7_FROM_SERVER;

			if (!pseudo || (side != L7_NO && side != this) || (seen & (1u << group[v])))
				return L7_NO;
			side = this;
			seen |= 1u << group[v];
		} else if (fields == 0) {
			return L7_NO;
		} else {
			pseudo = false;
		}
		strings = (b & 0x80) ? 0 : v == 0 ? 2 : 1;
		while (strings > 0) {
			bool huff;

			if (i >= n)
				goto cut;
			huff = p[i] & 0x80;
			if (!hp_int(p, n, &i, 7, &v))
				goto cut;
			if (!huff && !raw_string_ok(p + i, l7_min_size(v, n - i), strings == 2))
				return L7_NO;
			if (v > n - i)
				goto cut;
			i += v;
			strings--;
		}
		fields++;
	}
	/* The whole block, or two fields of it at least, must have been in view. */
	return whole || fields >= 2 ? side : L7_NO;
cut:
	return !whole && fields >= 2 ? side : L7_NO;
}

/*
 * Do the captured bytes @buf[0..@n) start with frames? Every frame header
 * that lies in them must be plausible, and the first may not be a
 * CONTINUATION. *@side: what the first classifiable header block says.
 */
static bool frames_plausible(const uint8_t *buf, size_t n, uint32_t max_frame,
			     enum l7_verdict *side)
{
	size_t off = 0;
	unsigned frames = 0;

	*side = L7_NO;
	while (off + FRAME_HEADER_LEN <= n) {
		const uint8_t *h = buf + off;
		uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];

		if (!header_plausible(h, max_frame) || (frames == 0 && h[3] == F_CONTINUATION))
			return false;
		if (h[3] == F_PUSH_PROMISE && *side == L7_NO) {
			*side = L7_FROM_SERVER;
		} else if (h[3] == F_HEADERS && *side == L7_NO && (be32(h + 5) & 1)) {
			size_t start = off + FRAME_HEADER_LEN + ((h[4] & FL_PADDED) ? 1 : 0) +
				       ((h[4] & FL_PRIORITY) ? 5 : 0);
			size_t end = off + FRAME_HEADER_LEN + len;
			bool whole = end <= n && (h[4] & FL_END_HEADERS);

			if ((h[4] & FL_PADDED) && start <= n) {
				if (buf[start - 1] > end - start)
					return false;
				end -= buf[start - 1];
			}
			end = l7_min_size(end, n);
			if (start < end)
				*side = block_side(buf + start, end - start, whole);
		}
		off += FRAME_HEADER_LEN + len;
		frames++;
	}
	return frames > 0;
}

enum l7_verdict http2_detect(const uint8_t *buf, size_t n)
{
	enum l7_verdict side;

	if (!buf || n < 8)
		return L7_NO;
	if (buf[0] == 'P')
		return memcmp(buf, preface, l7_min_size(n, PREFACE_LEN)) == 0 ? L7_FROM_CLIENT
									      : L7_NO;
	if (buf[0] != 0 || n < FRAME_HEADER_LEN)
		return L7_NO;
	if (!frames_plausible(buf, n, DEFAULT_MAX_FRAME, &side))
		return L7_NO;
	return side;
}

/* ---- feeding ---- */

/* A frame header fell in uncaptured bytes: framing, and this direction's HPACK table, are lost. */
static void framing_lost(struct feed *f)
{
	struct h2_dir *d = f->d;

	if (d->blk_open)
		block_end(f, false);
	hpack_dec_lost(&d->hp);
	d->fh_len = 0;
	d->st = D_RESYNC;
	if (f->l7.is_req)
		f->c->c2s_lost_ns = f->l7.ts;
	mark_suspects(f->c);
}

/* The connection was first seen mid-stream: no HPACK state at all. */
static void start_midstream(struct http2_conn *c)
{
	/* Streams opened before this are not traced: their requests were not seen. */
	hpack_dec_lost(&c->dir[0].hp);
	hpack_dec_lost(&c->dir[1].hp);
	c->dir[0].st = D_FIRST;
	c->dir[1].st = D_FIRST;
}

/* At a chunk start in D_FIRST or D_RESYNC: does this chunk start with frames? */
static bool chunk_starts_frames(struct feed *f, const uint8_t *data, size_t cap)
{
	enum l7_verdict side;
	uint32_t max = f->d->max_frame > DEFAULT_MAX_FRAME ? f->d->max_frame : DEFAULT_MAX_FRAME;

	return data && frames_plausible(data, cap, max, &side);
}

/* Client preface bytes from @pos; returns the new position. */
static size_t read_preface(struct feed *f, const uint8_t *data, size_t cap, size_t len, size_t pos)
{
	struct h2_dir *d = f->d;
	size_t k;

	if (pos >= cap) {
		k = l7_min_size(PREFACE_LEN - d->preface, len - pos);
	} else {
		k = l7_min_size(PREFACE_LEN - d->preface, cap - pos);
		if (memcmp(data + pos, preface + d->preface, k) != 0) {
			l7_garbage(&f->l7, len - pos);
			d->st = D_RESYNC;
			return len;
		}
	}
	d->preface = (uint8_t)(d->preface + k);
	if (d->preface == PREFACE_LEN)
		d->st = D_HEADER;
	return pos + k;
}

void http2_feed(struct http2_conn *c, bool client_to_server, const struct mt_chunk *ch,
		mt_exchange_fn emit, void *ctx, struct l7_stats *stats)
{
	struct feed f;
	struct h2_dir *d;
	const uint8_t *data;
	size_t pos = 0, cap, len;

	if (!c || !l7_feed_begin(&f.l7, client_to_server, ch, emit, ctx, stats))
		return;
	d = &c->dir[client_to_server ? 0 : 1];
	f.c = c;
	f.d = d;
	data = f.l7.data;
	len = f.l7.len;
	cap = f.l7.cap;

	if (!c->started) {
		c->started = 1;
		if (!client_to_server || cap == 0 || data[0] != 'P')
			start_midstream(c);
	}

	while (pos < len) {
		size_t n, k;

		switch (d->st) {
		case D_PREFACE:
			pos = read_preface(&f, data, cap, len, pos);
			break;
		case D_FIRST:
		case D_RESYNC:
			/* A fresh connection's first chunk too short to judge is taken on trust. */
			if (pos == 0 && ((d->st == D_FIRST && cap > 0 && cap < FRAME_HEADER_LEN) ||
					 chunk_starts_frames(&f, data, cap))) {
				if (d->st == D_RESYNC)
					f.l7.stats->resyncs++;
				d->st = D_HEADER;
				break;
			}
			l7_garbage(&f.l7, len - pos);
			d->st = D_RESYNC;
			pos = len;
			break;
		case D_HEADER:
			if (pos >= cap) {
				framing_lost(&f);
				l7_garbage(&f.l7, len - pos);
				pos = len;
				break;
			}
			if (d->fh_len == 0) {
				d->frame_ns = f.l7.ts;
				d->frame_seq = f.l7.seq ? f.l7.seq + (uint32_t)pos : 0;
			}
			k = l7_min_size(FRAME_HEADER_LEN - d->fh_len, cap - pos);
			memcpy(d->fh + d->fh_len, data + pos, k);
			d->fh_len = (uint8_t)(d->fh_len + k);
			pos += k;
			if (d->fh_len == FRAME_HEADER_LEN) {
				frame_begin(&f);
				if (d->left == 0)
					frame_end(&f);
			}
			break;
		default: /* D_PAYLOAD */
			n = l7_min_size(d->left, len - pos);
			k = pos < cap ? l7_min_size(n, cap - pos) : 0;
			payload(&f, data + pos, k, n - k);
			pos += n;
			if (d->left == 0)
				frame_end(&f);
			break;
		}
	}
	sweep(&f);
	if (!c->lost_counted && (c->dir[0].hp.resets || c->dir[1].hp.resets)) {
		c->lost_counted = 1;
		f.l7.stats->state_lost++;
	}
}

void http2_close(struct http2_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		 struct l7_stats *stats)
{
	struct feed f;

	if (!c)
		return;
	l7_feed_close(&f.l7, ts_ns, emit, ctx, stats);
	f.c = c;
	for (unsigned k = 0; k < 2; k++) {
		f.d = &c->dir[k];
		f.l7.is_req = k == 0;
		if (c->dir[k].blk_open)
			block_end(&f, false);
	}
	f.d = &c->dir[1];
	f.l7.is_req = false;
	for (unsigned i = 0; i < H2_STREAMS_MAX && c->open; i++) {
		if (c->ids[i])
			emit_stream(&f, i,
				    (c->streams[i].bits & S_RESP) ? MT_X_END_GUESSED
								  : MT_X_NO_RESPONSE);
	}
}

int http2_init(struct http2_conn *c)
{
	int err = 0;

	/* Stream slots are set up when used: a connection costs the pages it touches. */
	memset(c, 0, offsetof(struct http2_conn, streams));
	for (unsigned k = 0; k < 2; k++) {
		if (hpack_dec_init(&c->dir[k].hp) != 0)
			err = -ENOMEM;
		c->dir[k].max_frame = DEFAULT_MAX_FRAME;
		c->dir[k].blk_slot = H2_NO_SLOT;
	}
	c->dir[0].st = D_PREFACE;
	c->dir[1].st = D_FIRST;
	return err;
}

void http2_release(struct http2_conn *c)
{
	if (!c)
		return;
	hpack_dec_free(&c->dir[0].hp);
	hpack_dec_free(&c->dir[1].hp);
}

/* ---- registry entry ---- */

static void http2_release_state(void *state)
{
	http2_release(state);
}

/* Without inflaters (http2_init() failed) streams are still traced, their fields unknown. */
L7_PARSER(http2_parser, struct http2_conn, http2, .protocol = MT_PROTO_HTTP2, .name = "http2",
	  .detect = http2_detect, .release = http2_release_state);
