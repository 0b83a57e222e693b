/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memcached text-protocol parser (classic and meta commands): both directions
 * of one connection, pure and incremental.
 * Spec: https://github.com/memcached/memcached/blob/master/doc/protocol.txt
 *
 * Every command line gets one response (or none: noreply, quit), in order, so
 * commands and responses pair like a pipeline. Data blocks (set/add/replace/
 * append/prepend/cas/ms, VALUE and VA) are skipped by their byte count, so
 * values longer than the capture never break the framing. A multi-key get is
 * one exchange, ending at END.
 *
 * An exchange carries the command word as its operation ("get", "set", ...;
 * "unknown" for words memcached does not know), and ERROR / CLIENT_ERROR /
 * SERVER_ERROR as status_text with MT_X_ERROR. Keys and values are never kept.
 *
 * No I/O, no globals, no allocation: struct memcached_conn is embedded by the
 * caller and sized at compile time.
 */
#ifndef MESHTRACE_MEMCACHED_H
#define MESHTRACE_MEMCACHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/protocols/l7.h"

/* Commands in flight on one connection; more are dropped and counted. */
#define MEMCACHED_PIPELINE_MAX 64
/* Bytes kept of a line: a storage line with a 250-byte key and every number fits. */
#define MEMCACHED_LINE_MAX 320
#define MEMCACHED_OP_MAX   12

/* One direction's reader. Opaque to callers. */
struct memcached_dir {
	uint8_t state;
	uint8_t bits;
	uint16_t line_keep; /* bytes in line[] */
	uint32_t line_len;  /* bytes of the current line (saturating) */
	uint32_t start_seq; /* TCP sequence number of the message's first byte */
	uint32_t _pad;
	uint64_t data_left; /* data block bytes (CRLF included) still to skip */
	uint64_t start_ns;
	uint64_t end_ns;
	char status[MT_STATUS_TEXT_MAX];
	char line[MEMCACHED_LINE_MAX];
};

/* A command waiting for its response. */
struct memcached_req {
	uint64_t start_ns;
	uint64_t end_ns;
	uint16_t skip_before; /* dropped commands just before this one */
	uint8_t flags;	      /* MT_X_* of the request */
	uint8_t quiet;	      /* meta command in quiet mode: its response may not come */
	uint32_t req_seq;     /* TCP sequence number of its first byte */
	char op[MEMCACHED_OP_MAX];
};

struct memcached_conn {
	struct memcached_dir req;  /* client -> server */
	struct memcached_dir resp; /* server -> client */
	struct l7_lost lost;
	uint16_t head;
	uint16_t count;
	uint16_t skip_tail; /* dropped commands after the newest pending one */
	uint16_t _pad;
	uint32_t req_counter; /* requests, when the capture gives no TCP sequence numbers */
	uint32_t _pad2;
	struct memcached_req pending[MEMCACHED_PIPELINE_MAX];
};

/* memcached: quiet commands still waiting at close are emitted without MT_X_NO_RESPONSE. */
L7_PARSER_DECLARE(memcached_parser, struct memcached_conn, memcached);

/* Whether the first bytes of a stream are a memcached text command ("get k", "set k 0 0 5"). */
enum l7_verdict memcached_detect(const uint8_t *buf, size_t n);

#endif /* MESHTRACE_MEMCACHED_H */
