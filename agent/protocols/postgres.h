/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PostgreSQL frontend/backend protocol 3.0 parser: both directions of one
 * connection, pure and incremental.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html
 *       https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Exchanges:
 *  - simple query: one per Query ('Q'), ending at ReadyForQuery; several
 *    statements in one Query are one exchange, named by the first;
 *  - extended query: one per Execute ('E'), ending at its CommandComplete,
 *    EmptyQueryResponse or PortalSuspended. Its text is the one its Bind's
 *    statement was parsed from (the unnamed statement, or a named one kept
 *    from an earlier Parse). Pipelines (several Executes before one Sync) give
 *    one exchange per Execute. After an ErrorResponse the server skips to the
 *    Sync: the Execute that failed carries the SQLSTATE, the ones skipped are
 *    errors with no status code (libpq's PGRES_PIPELINE_ABORTED);
 *  - a Sync group with a Parse and no Execute (a statement prepared on its
 *    own) is one exchange named "PREPARE", ending at ReadyForQuery.
 * An ErrorResponse sets MT_X_ERROR and its SQLSTATE as status_text.
 * db_namespace is the StartupMessage's "database" (else its "user"); the
 * query text is always sanitised (sql_sanitize.h). An SSLRequest or
 * GSSENCRequest answered 'N' continues in the clear; answered 'S'/'G' the
 * connection is encrypted and no longer parsed.
 *
 * Messages are framed by their length, so long rows and long queries are
 * skipped by count across uncaptured bytes.
 *
 * No I/O, no globals, no allocation: struct pg_conn is embedded by the caller
 * and sized at compile time (about 9 KiB).
 */
#ifndef MESHTRACE_POSTGRES_H
#define MESHTRACE_POSTGRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"

/* Executes, Queries and lone Parses in flight with their text; more are dropped and counted. */
#define PG_PIPELINE_MAX 16
/* Responses awaited in order (one per Execute, Sync, Query, FunctionCall). */
#define PG_EXPECT_MAX 64
/* Named prepared statements remembered (least recently parsed forgotten first). */
#define PG_STMT_MAX 8
/* Bytes kept of a message's body: enough for a query text to sanitise. */
#define PG_KEEP_MAX 384
/* Longest statement name remembered; longer names are not matched. */
#define PG_NAME_MAX 48
#define PG_OP_MAX   32

struct pg_dir {
	uint8_t state;
	uint8_t type; /* the message's type byte, 0 for a startup-phase message */
	uint8_t hdr_n;
	uint8_t bits;
	uint8_t hdr[5];
	uint8_t _pad;
	uint16_t keep_n;
	uint32_t left; /* body bytes still to read */
	uint32_t len;  /* body bytes in all */
	uint64_t start_ns;
	uint64_t end_ns;
	uint32_t start_seq; /* TCP sequence number of the message's first byte */
	char keep[PG_KEEP_MAX];
};

/* A statement's text, as a Parse gave it. */
struct pg_stmt {
	uint32_t age; /* parse counter when last parsed: the oldest is replaced */
	uint8_t used;
	uint8_t name_len;
	uint8_t _pad[2];
	char name[PG_NAME_MAX];
	char op[PG_OP_MAX];
	char query[MT_QUERY_MAX];
};

/* An exchange waiting for its response. */
struct pg_slot {
	uint64_t start_ns;
	uint64_t end_ns;
	uint64_t resp_start_ns;
	uint32_t flags;
	uint32_t req_seq; /* TCP sequence number of the request's first byte */
	char status[6];	  /* SQLSTATE */
	uint8_t _pad[6];
	char op[PG_OP_MAX];
	char query[MT_QUERY_MAX];
};

/* A response awaited, in order. */
struct pg_expect {
	uint8_t kind;
	uint8_t slot; /* index into pg_conn.slots, 0xff for none */
};

struct pg_conn {
	struct pg_dir req;  /* frontend -> backend */
	struct pg_dir resp; /* backend -> frontend */
	struct l7_lost lost;
	uint32_t parses; /* Parse messages seen: the statements' clock */
	uint32_t _pad0;
	uint8_t phase;	     /* startup, authenticating, ready, encrypted */
	uint8_t ssl_wait;    /* the backend's next byte answers an SSL/GSSENC request */
	uint8_t aborted;     /* an ErrorResponse: the rest of the Sync group is skipped */
	uint8_t group_parse; /* the Sync group so far has a Parse ... */
	uint8_t group_exec;  /* ... and an Execute */
	uint8_t e_head;
	uint8_t e_count;
	uint8_t _pad;
	uint16_t slots_used; /* bit i: slots[i] is waiting */
	uint16_t _pad2;
	uint32_t group_start_seq; /* ... and its TCP sequence number */
	uint64_t group_start_ns;  /* first message of the Execute being assembled */
	uint32_t req_counter;	  /* messages, when the capture gives no TCP sequence numbers */
	uint32_t _pad3;
	char db_namespace[MT_NAMESPACE_MAX];
	char last_op[PG_OP_MAX]; /* the last Parse, for a lone-Parse exchange */
	char last_query[MT_QUERY_MAX];
	char bound_op[PG_OP_MAX]; /* the statement of the last Bind */
	char bound_query[MT_QUERY_MAX];
	struct pg_stmt unnamed;
	struct pg_stmt stmts[PG_STMT_MAX];
	struct pg_expect expect[PG_EXPECT_MAX];
	struct pg_slot slots[PG_PIPELINE_MAX];
};

/* PostgreSQL (l7.h's contract). */
L7_PARSER_DECLARE(postgres_parser, struct pg_conn, pg);

/*
 * Whether the first bytes of a stream are a PostgreSQL client's: an
 * SSLRequest, GSSENCRequest, CancelRequest or StartupMessage (v3), or, for a
 * connection first seen later, a Query or Parse message.
 */
enum l7_verdict pg_detect(const uint8_t *buf, size_t n);

#endif /* MESHTRACE_POSTGRES_H */
