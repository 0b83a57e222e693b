/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 parser, gRPC included: both directions of one connection, pure and
 * incremental. Spec: RFC 9113 (HTTP/2), RFC 7541 (HPACK), gRPC over HTTP/2
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
 *
 * Frames are read by their length, so DATA never captured is skipped by
 * count. Each client-initiated stream becomes one exchange: the request is
 * HEADERS (+CONTINUATION) and DATA up to the client's END_STREAM, the
 * response is HEADERS, DATA and trailers up to the server's END_STREAM; the
 * exchange is emitted when the server ends the stream, either side resets
 * it, a GOAWAY says it was never processed, or the connection closes. A
 * stream whose content-type is application/grpc* is a gRPC call
 * (MT_PROTO_GRPC): operation "package.Service/Method", status_text the
 * grpc-status.
 *
 * Detection: the client connection preface. A connection first seen
 * mid-stream is detected only from a run of plausible frames (every frame
 * header in the captured bytes valid for its type, lengths within 16 KiB)
 * that contains a HEADERS frame whose first field is a request or response
 * pseudo-header from the static table; such a connection's HPACK state is
 * unknown from the start (see hpack.h) and is counted in state_lost.
 *
 * Bounded: at most H2_STREAMS_MAX open streams per connection; a stream
 * beyond that is not traced (pipeline_drops). The only allocations are the
 * two HPACK inflaters (at init, and again after a loss) and what they do
 * within their tables.
 */
#ifndef MESHTRACE_HTTP2_H
#define MESHTRACE_HTTP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"
#include "agent/protocols/hpack.h"

/* Streams traced at once on one connection (RFC 9113 recommends allowing at least 100). */
#define H2_STREAMS_MAX 128
/* After framing was lost, a stream not seen again for this long is emitted, its end guessed. */
#define H2_SUSPECT_NS (1000ull * 1000 * 1000)

/* One open stream. */
struct h2_stream {
	uint32_t id; /* 0: slot free */
	uint16_t status;
	uint8_t bits; /* S_* in http2.c */
	uint8_t grpc_status;
	uint32_t flags;	  /* MT_X_* gathered so far */
	uint32_t req_seq; /* TCP sequence number of the request's first byte (see mt_exchange) */
	uint64_t req_start_ns;
	uint64_t req_end_ns;
	uint64_t resp_start_ns;
	uint64_t resp_end_ns;
	uint64_t last_ns; /* last frame of this stream */
	uint64_t req_body_bytes;
	uint64_t resp_body_bytes;
	char method[MT_METHOD_MAX];
	char target[MT_TARGET_MAX];
	char host[MT_HOST_MAX];
	char traceparent[MT_TRACEPARENT_LEN + 1];
	char tracestate[MT_TRACESTATE_MAX];
};

/* The parser's state for one direction. Opaque to callers. */
struct h2_dir {
	struct hpack_dec hp;
	uint64_t frame_ns;  /* the chunk that carried the current frame's first byte */
	uint32_t frame_seq; /* TCP sequence number of that byte (stream id if unknown) */
	uint32_t _pad0;
	uint32_t left;	       /* payload bytes of the current frame still to read */
	uint32_t content;      /* content bytes (payload less prefix and padding) still to read */
	uint32_t stream_id;    /* of the current frame */
	uint32_t max_frame;    /* the receiver's SETTINGS_MAX_FRAME_SIZE */
	uint32_t blk_stream;   /* stream of the open header block */
	uint16_t blk_slot;     /* its slot; H2_NO_SLOT: the block's fields go nowhere */
	uint16_t blk_status;   /* :status of a response block */
	uint8_t st;	       /* enum in http2.c */
	uint8_t pst;	       /* part of the payload being read */
	uint8_t type;	       /* of the current frame */
	uint8_t flags;	       /* of the current frame */
	uint8_t fh_len;	       /* frame header bytes gathered */
	uint8_t fh[9];	       /* the frame header being gathered */
	uint8_t pad;	       /* padding at the end of the current frame */
	uint8_t pre;	       /* priority / promised-stream bytes still to skip */
	uint8_t blk_kind;      /* what the open header block is */
	uint8_t blk_open;      /* a header block is open: CONTINUATION must follow */
	uint8_t blk_end;       /* the HEADERS frame that opened it had END_STREAM */
	uint8_t blk_grpc;      /* the block said content-type application/grpc* */
	uint8_t blk_grpc_st;   /* the block carried grpc-status ... */
	uint8_t blk_grpc_code; /* ... with this value */
	uint8_t cbuf_len;      /* control payload bytes gathered */
	uint8_t cbuf_bad;      /* some of them were not captured */
	uint8_t cbuf[8];       /* RST_STREAM / GOAWAY head, one SETTINGS entry */
	uint8_t preface;       /* client preface bytes matched so far */
	uint8_t _pad[3];
};

struct http2_conn {
	struct h2_dir dir[2]; /* [0] client -> server, [1] server -> client */
	uint8_t started;      /* a chunk was fed */
	uint8_t lost_counted; /* state_lost was counted for this connection */
	uint16_t open;	      /* streams in use */
	uint16_t suspect;     /* streams marked suspect after a loss of framing */
	uint16_t last_slot;   /* the slot used last: most frames follow their predecessor's */
	uint32_t max_dropped; /* highest stream id not traced for want of a slot */
	uint32_t max_stream;  /* highest stream id whose request was seen */
	uint64_t c2s_lost_ns; /* when the client's framing was last lost (0: never) */
	uint64_t last_sweep_ns;
	uint32_t ids[H2_STREAMS_MAX]; /* stream id per slot, 0 if free: a compact index */
	struct h2_stream streams[H2_STREAMS_MAX];
	struct mt_exchange x; /* built here, handed out by pointer */
};

/* Resets @c to a connection that has carried no bytes. 0, or -ENOMEM (headers then not decoded). */
int http2_init(struct http2_conn *c);

/* Frees what http2_init allocated. */
void http2_release(struct http2_conn *c);

/*
 * Feeds one chunk. @client_to_server says which way the bytes went. Each
 * finished exchange is passed to @emit (may be NULL) before this returns.
 * Never fails: what is not HTTP/2 is counted in @stats and skipped.
 */
void http2_feed(struct http2_conn *c, bool client_to_server, const struct mt_chunk *ch,
		mt_exchange_fn emit, void *ctx, struct l7_stats *stats);

/* The connection ended at @ts_ns: every open stream is emitted (MT_X_NO_RESPONSE if unanswered). */
void http2_close(struct http2_conn *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		 struct l7_stats *stats);

/* Classifies the first captured bytes of a stream (see the top of this file). */
enum l7_verdict http2_detect(const uint8_t *buf, size_t n);

/* The registry's entry for HTTP/2 and gRPC. */
extern const struct l7_parser http2_parser;

#endif /* MESHTRACE_HTTP2_H */
