/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.0 and HTTP/1.1 parser: both directions of one connection, pure and
 * incremental. Spec: RFC 9112 (message syntax), RFC 9110 (semantics).
 *
 * Bytes arrive as chunks (struct mt_chunk), one per syscall, of which only a
 * prefix may have been captured. The parser frames messages by byte count
 * (Content-Length, chunked, read-until-close), so a body far longer than the
 * capture is skipped, never misread as a new message. It pairs responses with
 * requests in order (pipelining), and emits one struct mt_exchange per
 * completed request/response.
 *
 * No I/O, no globals, no allocation: struct http1_conn is embedded by the
 * caller and sized at compile time.
 */
#ifndef MESHTRACE_HTTP1_H
#define MESHTRACE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"

/* Requests in flight on one connection (pipelining depth kept). */
#define HTTP1_PIPELINE_MAX 4
/* Longest header line kept whole; longer lines are truncated, not fatal. */
#define HTTP1_LINE_MAX 320

/* HTTP/1 uses the common counters. */
#define http1_stats l7_stats

/* Bytes kept from the end of a line longer than HTTP1_LINE_MAX (a long request line's version). */
#define HTTP1_TAIL_MAX 16

/* The parser's state for one direction. Opaque to callers. */
struct http1_dir {
	uint8_t state;
	uint8_t hdr; /* kind of the last header line, for obs-fold continuations */
	uint8_t tail_len;
	uint8_t version_minor;
	uint16_t status;
	uint16_t bits;
	uint32_t flags;	   /* MT_X_* gathered for the message being read */
	uint32_t line_len; /* bytes of the current, unfinished line (saturating) */
	uint32_t head_len; /* bytes of the current head or trailer section */
	uint32_t _pad;
	uint64_t remaining; /* body bytes still to skip (Content-Length or chunk) */
	uint64_t content_length;
	uint64_t body_bytes;
	uint32_t start_seq;	       /* TCP sequence number of the message's first byte */
	uint64_t start_ns;	       /* ts of the chunk carrying the message's first byte */
	uint64_t end_ns;	       /* ts of the chunk carrying the last byte seen so far */
	char tail[HTTP1_TAIL_MAX + 1]; /* last bytes of the current line, its CR included */
	char line[HTTP1_LINE_MAX];     /* first bytes of the current line */
};

struct http1_conn {
	struct http1_dir req;  /* client -> server */
	struct http1_dir resp; /* server -> client */
	uint8_t head;	       /* index of the oldest pending exchange */
	uint8_t count;	       /* pending exchanges */
	uint8_t req_open;      /* the newest pending exchange is the request being read */
	uint8_t _pad;
	/* requests dropped (pipeline full) just before pending[i], and after the newest */
	uint16_t dropped_before[HTTP1_PIPELINE_MAX];
	uint16_t dropped_after;
	uint16_t _pad2;
	/*
	 * While the response framing is lost (ST_RESYNC): when the latest response bytes went
	 * by, unread, and how many requests were pending then (the oldest ones): a response to
	 * any of them may have been among those bytes.
	 */
	uint64_t resp_unseen_ns;
	uint64_t resp_prev_ns; /* when the latest response-direction bytes came (any) */
	uint8_t resp_unseen_pending;
	uint8_t _pad3[7];
	struct mt_exchange pending[HTTP1_PIPELINE_MAX];
};

/*
 * HTTP/1.x (l7.h's contract): at close, a response framed by connection
 * close ends there.
 */
L7_PARSER_DECLARE(http1_parser, struct http1_conn, http1);

/* Body bytes of that direction the parser will skip unread next (struct l7_parser.skip_hint). */
uint64_t http1_skip_hint(const struct http1_conn *c, bool client_to_server);

/*
 * Classifies the first bytes of a stream: returns true when @buf starts like
 * an HTTP/1 message, and sets *@is_request (request line vs status line).
 * Needs no more than the first 16 bytes; fewer than 4 are never enough.
 */
bool http1_detect(const uint8_t *buf, size_t n, bool *is_request);

#endif /* MESHTRACE_HTTP1_H */
