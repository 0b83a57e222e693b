/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The connection stage: one record per live TCP socket seen by the capture
 * stage, its role (client or server), its protocol, and the parser state.
 * Bytes go in; exchanges come out, each with the connection's description.
 *
 * Bounded: at most max_conns records. When full, the least recently active
 * record is evicted and counted; records idle for longer than the idle
 * timeout are evicted by conn_table_expire().
 */
#ifndef MESHTRACE_CONN_H
#define MESHTRACE_CONN_H

#include <stdint.h>

#include "bpf/capture.h"
#include "agent/protocols/l7.h"

#define CONN_MAX_DEFAULT     8192
#define CONN_IDLE_NS_DEFAULT (600ull * 1000000000ull)
/* A connection quiet this long gives back its parser state when the parser is between messages. */
#define CONN_PARSER_IDLE_NS (2ull * 1000000000ull)
/*
 * Above this much parser state, a connection about to get parser state first
 * takes it from connections quiet for CONN_PARSER_QUIET_NS and between
 * messages (a bounded scan): a burst of keep-alive connections that then go
 * idle does not hold ~6 KB each until CONN_PARSER_IDLE_NS. Busy connections
 * keep theirs; the soft limit may be passed.
 */
#define CONN_PARSER_SOFT_MAX (2u << 20)
#define CONN_PARSER_QUIET_NS (10ull * 1000000ull)
#define CONN_RECLAIM_SCAN    32 /* records looked at per connection given parser state */
/* Memory for parser state across all connections; beyond it connections stay at TCP level. */
#define CONN_PARSER_MEMORY_MAX (48u << 20)
/*
 * When parser state in use has fallen this far below its high-water mark
 * (idle connections released, a burst of connections closed), the freed heap
 * is given back to the system (malloc_trim) at the next conn_table_expire().
 */
#define CONN_TRIM_BYTES (1u << 20)
/*
 * Skip hints (struct l7_parser.skip_hint) at least this long are passed to the kernel: a
 * shorter body is rarely more than one call, not worth a map update.
 */
#define CONN_SKIP_MIN (8u << 10)
#define CONN_SKIP_MAX (1u << 30) /* longer hints are cut: sequence numbers are 32-bit */
/* Chunks looked at for a protocol before a connection is left at TCP level. */
#define CONN_DETECT_TRIES 16

enum conn_role {
	CONN_ROLE_UNKNOWN = 0,
	CONN_ROLE_CLIENT = 1, /* this socket's process connected */
	CONN_ROLE_SERVER = 2, /* this socket's process accepted */
};

/* What later stages learn about the connection an exchange travelled on. */
struct conn_info {
	uint64_t sock;
	uint32_t pid;
	uint32_t tid; /* the thread of the I/O that produced the exchange */
	int32_t fd;
	uint8_t role; /* enum conn_role */
	uint8_t tls;  /* the exchanges are plaintext a TLS library gave (url.scheme https) */
	uint8_t _pad[2];
	char comm[16];
	struct mt_tuple tuple;
};

struct conn_stats {
	uint64_t active;
	uint64_t opened;	 /* records created */
	uint64_t closed;	 /* records ended by a TCP close */
	uint64_t evicted_full;	 /* records evicted because the table was full */
	uint64_t evicted_idle;	 /* records evicted for idleness */
	uint64_t connect_failed; /* active opens that failed */
	uint64_t retransmits;
	uint64_t
		lost_restarts; /* parsers restarted because the kernel lost events of their socket */
	uint64_t role_unknown_bytes;  /* bytes on connections whose role could not be told */
	uint64_t not_parsed;	      /* connections left at TCP level (no known protocol) */
	uint64_t parser_alloc_failed; /* connections not parsed: no memory for parser state */
	uint64_t parser_released;     /* idle connections that gave back their parser state */
	uint64_t muted; /* connections whose payload the kernel was told to stop copying */
	uint64_t parser_budget_full; /* connections not parsed: CONN_PARSER_MEMORY_MAX reached */
	uint64_t parser_bytes;	     /* parser state in use now */
	uint64_t trims;		     /* times freed parser state was given back (malloc_trim) */
	uint64_t skip_hints;	     /* skip hints passed to the kernel */
	uint64_t skip_hint_failed;   /* ... that the kernel map refused */
	uint64_t skipped_bytes;	     /* bytes the kernel skipped, fed to parsers uncaptured */
	uint64_t skip_mismatch;	     /* events whose seq disagreed with the hint: no gap assumed */
	uint64_t skip_offset_bytes;  /* bytes before the capture of calls reaching a hint's end */
	uint64_t tls_handshakes;     /* connections that began with a TLS handshake */
	uint64_t tls_plaintext;	     /* connections whose TLS plaintext was seen */
	uint64_t tls_uncovered;	     /* TLS connections closed without any plaintext seen */
	struct l7_stats l7[MT_PROTO__MAX]; /* per protocol, indexed by enum mt_protocol */
};

typedef void (*conn_exchange_fn)(void *ctx, const struct conn_info *ci,
				 const struct mt_exchange *x);
/*
 * Told of every data event before it is parsed (which thread touched which
 * socket, @connect false), and of every connect() (@connect true).
 */
typedef void (*conn_io_fn)(void *ctx, uint32_t tid, uint32_t pid, uint64_t sock, bool connect);

struct conn_table;

/* NULL on allocation failure. @max_conns 0 means CONN_MAX_DEFAULT. */
struct conn_table *conn_table__new(uint32_t max_conns, uint64_t idle_ns, conn_exchange_fn fn,
				   void *ctx);
/* Frees the table and all parser state; pending requests are dropped, not emitted. NULL: no-op. */
void conn_table__free(struct conn_table *t);

/* Told when a connection is left at TCP level, so its payload need not be copied; @tuple is the
 * connection as its last data event saw it. */
typedef void (*conn_mute_fn)(void *ctx, uint64_t sock, const struct mt_tuple *tuple);
void conn_table_set_mute_fn(struct conn_table *t, conn_mute_fn fn);

/*
 * Told when a parser will not read a socket's coming bytes (struct mt_skip, both
 * directions): the kernel need not make events for them. Returns 0 or -errno.
 */
typedef int (*conn_skip_fn)(void *ctx, uint64_t sock, const struct mt_skip *hint);
void conn_table_set_skip_fn(struct conn_table *t, conn_skip_fn fn);

/*
 * Told when a connection not parsed yet begins with a TLS record (its
 * plaintext may be in a library not probed yet), once per connection.
 */
typedef void (*conn_tls_fn)(void *ctx, uint32_t pid, uint64_t sock);
void conn_table_set_tls_fn(struct conn_table *t, conn_tls_fn fn);

/* Sets the observer of every data event (NULL for none). */
void conn_table_set_io_fn(struct conn_table *t, conn_io_fn fn);

void conn_table_on_data(struct conn_table *t, const struct mt_data_event *ev);
void conn_table_on_conn(struct conn_table *t, const struct mt_conn_event *ev);

/* Evicts records idle since before @now_ns - idle timeout. */
void conn_table_expire(struct conn_table *t, uint64_t now_ns);

void conn_table_stats(const struct conn_table *t, struct conn_stats *out);

#endif /* MESHTRACE_CONN_H */
