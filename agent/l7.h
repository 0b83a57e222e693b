/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What protocol parsers consume and produce. Parsers are pure: they see
 * chunks of one connection's byte stream and emit exchanges (a request with
 * its response). No I/O, no globals, no allocation after creation.
 */
#ifndef MESHTRACE_L7_H
#define MESHTRACE_L7_H

#include <stdbool.h>
#include <stdint.h>

#define MT_METHOD_MAX	   16
#define MT_TARGET_MAX	   256 /* request-target kept (path + query), truncated beyond */
#define MT_HOST_MAX	   128
#define MT_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */
#define MT_TRACESTATE_MAX  256

/*
 * One piece of a connection's byte stream in one direction, as one syscall
 * moved it. Only the first `captured` bytes are known; the remaining
 * `len - captured` bytes passed on the wire but were not copied.
 */
struct mt_chunk {
	const uint8_t *data;
	uint32_t captured;
	uint32_t len;
	uint64_t ts_ns; /* when the syscall moved it (CLOCK_MONOTONIC) */
};

enum mt_protocol {
	MT_PROTO_UNKNOWN = 0,
	MT_PROTO_HTTP1 = 1,
};

/* mt_exchange.flags */
enum mt_exchange_flags {
	MT_X_NO_RESPONSE = 1 << 0,    /* connection ended before a response */
	MT_X_REQ_TRUNCATED = 1 << 1,  /* request headers not fully captured */
	MT_X_RESP_TRUNCATED = 1 << 2, /* response headers not fully captured */
	MT_X_END_GUESSED = 1 << 3,    /* response end inferred (framing lost in a gap) */
};

/* A request and its response on one connection, as one side saw them. */
struct mt_exchange {
	uint8_t protocol;	/* enum mt_protocol */
	uint8_t version_minor;	/* HTTP/1.<minor> */
	uint16_t status;	/* HTTP status, 0 when no response */
	uint32_t flags;		/* enum mt_exchange_flags */
	uint64_t req_start_ns;	/* first byte of the request */
	uint64_t req_end_ns;	/* last byte of the request */
	uint64_t resp_start_ns; /* first byte of the final response, 0 if none */
	uint64_t resp_end_ns;	/* last byte of the response, 0 if none */
	uint64_t req_body_bytes;
	uint64_t resp_body_bytes;
	char method[MT_METHOD_MAX];
	char target[MT_TARGET_MAX]; /* as sent, query included; the span stage strips it */
	char host[MT_HOST_MAX];	    /* Host header, "" if absent */
	char traceparent[MT_TRACEPARENT_LEN + 1]; /* "" if absent or malformed */
	char tracestate[MT_TRACESTATE_MAX];
};

#endif /* MESHTRACE_L7_H */
