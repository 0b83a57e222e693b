/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redis parser (RESP2 and RESP3): both directions of one connection, pure and
 * incremental. Spec: https://redis.io/docs/latest/develop/reference/protocol-spec/
 *
 * Commands (RESP arrays of bulk strings, or inline lines) are paired with
 * replies in order, pipelines included. Bulk strings are skipped by their
 * length, so values far longer than the capture never break the framing.
 * Pub/sub messages (RESP2 "message"/"pmessage"/"smessage" arrays on a
 * subscribed connection, RESP3 '>' pushes) are never taken for replies; a
 * (P|S)(UN)SUBSCRIBE is answered by its first confirmation.
 *
 * An exchange carries the command name, upper-cased, as its operation, the
 * error prefix of an error reply ("ERR", "WRONGTYPE") as status_text with
 * MT_X_ERROR, and the database index after a successful SELECT as
 * db_namespace. Arguments are never kept: they are values.
 *
 * No I/O, no globals, no allocation: struct redis_conn is embedded by the
 * caller and sized at compile time.
 */
#ifndef MESHTRACE_REDIS_H
#define MESHTRACE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"

/* Commands in flight on one connection; more are dropped and counted. */
#define REDIS_PIPELINE_MAX 128
/* Aggregate nesting followed; deeper replies lose the framing. */
#define REDIS_DEPTH_MAX 16
/* Bytes kept of a header or simple-string line (the rest is counted, not kept). */
#define REDIS_LINE_MAX 64
/* Bytes kept of a command name, of a push kind, of an error prefix. */
#define REDIS_NAME_MAX 24

/* One direction's reader. Opaque to callers. */
struct redis_dir {
	uint8_t state;
	uint8_t type;  /* type byte of the element being read */
	uint8_t depth; /* open aggregates */
	uint8_t top;   /* type byte of the message's top-level element */
	uint8_t bits;
	uint8_t name_len;   /* bytes in name[] */
	uint8_t arg_len;    /* bytes in arg[] */
	uint8_t line_keep;  /* bytes in line[] */
	uint32_t line_len;  /* bytes of the current line (saturating) */
	uint32_t elem;	    /* index of the next element at depth 1 */
	int64_t last_int;   /* last integer seen at depth 1 */
	uint64_t bulk_left; /* bulk bytes (CRLF included) still to skip */
	uint64_t start_ns;
	uint64_t end_ns;
	int64_t left[REDIS_DEPTH_MAX]; /* elements still to read, per open aggregate */
	uint16_t attr;		       /* bit d: the aggregate at depth d is an attribute */
	uint16_t _pad;
	uint32_t start_seq;	   /* TCP sequence number of the message's first byte */
	char name[REDIS_NAME_MAX]; /* first string at depth 1 (or of an inline line) */
	char arg[REDIS_NAME_MAX];  /* second string at depth 1 */
	char line[REDIS_LINE_MAX];
};

/* A command waiting for its reply. */
struct redis_req {
	uint64_t start_ns;
	uint64_t end_ns;
	uint16_t skip_before; /* dropped commands just before this one */
	int16_t select_db;    /* SELECT's index, -1 otherwise */
	uint8_t kind;	      /* pub/sub confirmation expected, or none */
	uint8_t flags;	      /* MT_X_* of the request */
	uint32_t req_seq;     /* TCP sequence number of its first byte */
	char op[REDIS_NAME_MAX];
	uint8_t _pad[4];
};

struct redis_conn {
	struct redis_dir req;  /* client -> server */
	struct redis_dir resp; /* server -> client */
	struct l7_lost lost;
	uint16_t head;	    /* oldest pending command */
	uint16_t count;	    /* pending commands */
	uint16_t skip_tail; /* dropped commands after the newest pending one */
	int16_t db;	    /* database index after a SELECT, -1 unknown */
	uint8_t subscribed; /* a RESP2 connection in subscribed mode */
	uint8_t _pad[3];
	uint32_t req_counter; /* requests, when the capture gives no TCP sequence numbers */
	struct redis_req pending[REDIS_PIPELINE_MAX];
};

/* Redis: commands still waiting at close get MT_X_NO_RESPONSE (l7.h's contract). */
L7_PARSER_DECLARE(redis_parser, struct redis_conn, redis);

/*
 * Whether the first bytes of a stream are a Redis command: a RESP array whose
 * first bulk string is a plausible command name, or a few inline commands
 * written upper case (PING, INFO, ...). Replies are not recognised: a
 * connection is picked up at a command.
 */
enum l7_verdict redis_detect(const uint8_t *buf, size_t n);

#endif /* MESHTRACE_REDIS_H */
