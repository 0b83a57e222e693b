/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parser contract: what protocol parsers consume and produce, and the
 * registry entry through which the connection stage drives them
 * (agent/protocols/README.md says more, and how to add a protocol).
 *
 * A parser receives chunks of one connection's byte stream, one direction
 * at a time, in order (struct mt_chunk: the bytes a syscall moved, of which
 * only the first `captured` are known), and hands on exchanges (struct
 * mt_exchange: a request with its response) through an mt_exchange_fn,
 * before the call returns; it adds to the protocol's struct l7_stats.
 * A parser never does I/O, keeps no globals (all it knows is in its
 * per-connection state), allocates nothing after init, and is bounded in
 * memory and in work per byte: input that is not its protocol is counted
 * and skipped, never a failure.
 */
#ifndef MESHTRACE_L7_H
#define MESHTRACE_L7_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/common/traceparent.h" /* MT_TRACEPARENT_LEN */

#define MT_METHOD_MAX	  16
#define MT_TARGET_MAX	  256 /* request-target kept (path + query), truncated beyond */
#define MT_HOST_MAX	  128
#define MT_TRACESTATE_MAX 256

/*
 * One piece of a connection's byte stream in one direction, as one syscall
 * moved it. Only the first `captured` bytes are known; the remaining
 * `len - captured` bytes passed on the wire but were not copied.
 */
struct mt_chunk {
	const uint8_t *data;
	uint32_t captured;
	uint32_t len;
	uint32_t seq;	/* TCP sequence number of the chunk's first byte (0 if unknown) */
	uint64_t ts_ns; /* when the syscall moved it (CLOCK_MONOTONIC) */
};

enum mt_protocol {
	MT_PROTO_UNKNOWN = 0,
	MT_PROTO_HTTP1 = 1,
	MT_PROTO_HTTP2 = 2,
	MT_PROTO_GRPC =
		3, /* HTTP/2 carrying application/grpc: set per exchange by the HTTP/2 parser */
	MT_PROTO_REDIS = 4,
	MT_PROTO_POSTGRES = 5,
	MT_PROTO_MYSQL = 6,
	MT_PROTO_MEMCACHED = 7,
	MT_PROTO_DNS = 8,
	MT_PROTO__MAX = 9,
};

#define MT_OPERATION_MAX   128
#define MT_NAMESPACE_MAX   64
#define MT_QUERY_MAX	   256
#define MT_STATUS_TEXT_MAX 16

/* mt_exchange.flags */
enum mt_exchange_flags {
	MT_X_NO_RESPONSE = 1 << 0,    /* connection ended before a response */
	MT_X_REQ_TRUNCATED = 1 << 1,  /* request headers not fully captured */
	MT_X_RESP_TRUNCATED = 1 << 2, /* response headers not fully captured */
	MT_X_END_GUESSED = 1 << 3,    /* response end inferred (framing lost in a gap) */
	MT_X_ABORTED = 1 << 5,	      /* parser state was lost: no span, only bookkeeping */
	MT_X_ERROR = 1 << 4, /* the protocol says the request failed (-ERR, ErrorResponse, ...) */
	/* failed as the client sees it, not as the server does (gRPC NOT_FOUND, per the RPC semconv) */
	MT_X_CLIENT_ERROR = 1 << 6,
	MT_X_TCP = 1 << 7, /* DNS carried over TCP (network.transport) */
};

/*
 * When a parser hands out an exchange. Every parser emits MT_STAGE_DONE once
 * per exchange; parsers that can also emit MT_STAGE_REQUEST once, as soon as
 * the request head is parsed (before any response), so the span stage can
 * give the request its trace context while the call is still in flight:
 * that is how a server's outgoing calls become its children.
 */
enum mt_stage {
	MT_STAGE_DONE = 0,
	MT_STAGE_REQUEST = 1,
};

/* A request and its response on one connection, as one side saw them. */
struct mt_exchange {
	uint8_t protocol; /* enum mt_protocol */
	uint8_t stage;	  /* enum mt_stage */
	uint8_t _pad[2];
	uint32_t req_seq;	/* TCP sequence number of the request's first byte (0 if unknown) */
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
	/*
	 * Databases, caches, RPC ("" / 0 when unused). @operation is the
	 * command or method (db.operation.name; for gRPC "package.Service/Method");
	 * @query_text is already sanitised (literals replaced by ?) unless the
	 * user opted in; @status_text is the protocol's own code (SQLSTATE, the
	 * Redis error prefix, the gRPC status number as text).
	 */
	char operation[MT_OPERATION_MAX];
	char db_namespace[MT_NAMESPACE_MAX];
	char query_text[MT_QUERY_MAX];
	char status_text[MT_STATUS_TEXT_MAX];
	/*
	 * DNS (agent/trace/dnsspans.c): the question name travels in @query_text and
	 * the response code's name ("NXDOMAIN") in @status_text.
	 */
	uint16_t dns_qtype;   /* enum dns_type of the question */
	uint16_t dns_answers; /* ANCOUNT of the response */
	uint8_t dns_rcode;    /* enum dns_rcode, valid when a response was seen */
	uint8_t _pad_dns[3];
};

/* Counters one protocol's parsers add to, aggregated across connections. */
struct l7_stats {
	uint64_t requests;	   /* request heads parsed */
	uint64_t responses;	   /* final response heads parsed */
	uint64_t exchanges;	   /* exchanges emitted */
	uint64_t garbage_bytes;	   /* bytes skipped while looking for a message start */
	uint64_t resyncs;	   /* times framing was lost and found again */
	uint64_t pipeline_drops;   /* requests dropped: too many in flight */
	uint64_t orphan_responses; /* responses with no request to pair with */
	uint64_t state_lost;	   /* connections whose parser state could not be recovered */
	/*
	 * Requests whose response may have gone by unread while the framing was lost (found
	 * again at a later response, or the connection closed first): span ends at those
	 * bytes, end guessed, no status, not an error. Like @exchanges, it includes those a
	 * restart after lost events then aborts (no span; the restart counts in @state_lost).
	 */
	uint64_t responses_unseen;
};

typedef void (*mt_exchange_fn)(void *ctx, const struct mt_exchange *x);

/* What the first bytes of a stream look like to a protocol's detector. */
enum l7_verdict {
	L7_NO = 0,
	L7_FROM_CLIENT = 1, /* bytes a client of this protocol sends */
	L7_FROM_SERVER = 2, /* bytes a server of this protocol sends (e.g. a greeting) */
};

/*
 * A protocol parser, as the connection stage drives it. Parsers are pure:
 * per-connection state of @state_size bytes (zeroed, then @init), bytes in,
 * exchanges out through @emit. @release frees anything @init allocated
 * (NULL when nothing is). Registered in agent/protocols/registry.c.
 */
struct l7_parser {
	uint8_t protocol; /* enum mt_protocol */
	const char *name;
	size_t state_size;
	/* Looks at the first captured bytes of one direction; cheap rejections first. */
	enum l7_verdict (*detect)(const uint8_t *buf, size_t n);
	void (*init)(void *state);
	void (*feed)(void *state, bool client_to_server, const struct mt_chunk *ch,
		     mt_exchange_fn emit, void *ctx, struct l7_stats *stats);
	void (*close)(void *state, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,
		      struct l7_stats *stats);
	void (*release)(void *state);
	/*
	 * Optional: true when @state holds nothing a later chunk needs (between
	 * messages, nothing pending), so an idle connection's state may be freed
	 * and the protocol detected again at its next message.
	 */
	bool (*idle)(const void *state);
	/*
	 * Optional: how many of the coming bytes of one direction the parser will
	 * not read (the rest of a body framed by its length), 0 when it will read
	 * the next byte. The connection stage passes large ones to the kernel,
	 * which then makes no event for calls wholly inside them; the bytes still
	 * arrive, uncaptured, in a chunk before the next one (captured 0).
	 */
	uint64_t (*skip_hint)(const void *state, bool client_to_server);
};

/*
 * What the kit (kit.h) remembers of a direction's lost framing, for the
 * parsers that pair responses with requests in order (Redis, memcached,
 * MySQL, PostgreSQL): embedded in their per-connection state, read and
 * written by kit.h's l7_lost_*() only.
 */
struct l7_lost {
	uint64_t end_ns; /* responses: where the bytes skipped since the loss end */
	uint32_t owed;	 /* responses: requests awaiting one when it was lost */
	uint8_t open[2]; /* [client -> server]: the framing was lost inside a message */
	uint8_t _pad[2];
};

/*
 * Declares the entry points of a parser written against its own state type
 * @type, which the tests call directly and kit.h's L7_PARSER() turns into the
 * registry entry @var:
 *   prefix_init(c)   @c becomes a connection that has carried no bytes;
 *   prefix_feed(c, client_to_server, ch, emit, ctx, stats)   one chunk
 *                    (struct l7_parser.feed; @emit and @stats may be NULL);
 *   prefix_close(c, ts_ns, emit, ctx, stats)   the connection ended at
 *                    @ts_ns: exchanges still open are handed on (unanswered
 *                    requests with MT_X_NO_RESPONSE).
 */
#define L7_PARSER_DECLARE(var, type, prefix)                                          \
	void prefix##_init(type *c);                                                  \
	void prefix##_feed(type *c, bool client_to_server, const struct mt_chunk *ch, \
			   mt_exchange_fn emit, void *ctx, struct l7_stats *stats);   \
	void prefix##_close(type *c, uint64_t ts_ns, mt_exchange_fn emit, void *ctx,  \
			    struct l7_stats *stats);                                  \
	extern const struct l7_parser var

/* Every registered parser, in detection order; NULL-terminated. */
extern const struct l7_parser *const l7_parsers[];

/* The parser for @protocol, or NULL. */
const struct l7_parser *l7_parser_for(uint8_t protocol);

/* Short lower-case name of @protocol ("http", "redis", ...), "tcp" for unknown. */
const char *l7_protocol_name(uint8_t protocol);

#endif /* MESHTRACE_L7_H */
