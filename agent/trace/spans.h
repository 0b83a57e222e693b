/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The span stage: an exchange on a connection becomes a span (SERVER for the
 * side that accepted, CLIENT for the side that connected), with ids, W3C
 * trace context, HTTP semantic-convention attributes and the process's
 * resource.
 */
#ifndef MESHTRACE_SPANS_H
#define MESHTRACE_SPANS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/conn/conn.h"
#include "agent/identity/identity.h"
#include "agent/trace/linker.h"
#include "agent/trace/span.h"

struct span_opts {
	bool record_query; /* keep url.query (off: query strings may hold secrets) */
};

struct span_stats {
	uint64_t spans;
	uint64_t server;
	uint64_t client;
	uint64_t joined_traceparent; /* spans that joined an incoming W3C trace */
	uint64_t sdk_reported; /* spans counted but not exported: the process's SDK reports them */
	uint64_t role_unknown; /* exchanges dropped: connection role unknown */
	struct link_stats link;
};

typedef void (*span_fn)(void *ctx, const struct mt_span *s);

struct span_builder;

/* @id is borrowed. NULL on allocation failure. */
struct span_builder *span_builder__new(const struct span_opts *opts, struct identity *id,
				       span_fn fn, void *ctx);
void span_builder__free(struct span_builder *b);

/* Kernel timestamps are CLOCK_MONOTONIC: unix time = ts + @offset_ns. */
void span_builder_set_clock(struct span_builder *b, int64_t offset_ns);

/* Takes exchanges at both stages (enum mt_stage); spans are made at MT_STAGE_DONE. */
void span_builder_on_exchange(struct span_builder *b, const struct conn_info *ci,
			      const struct mt_exchange *x);

/* Every data event before parsing, and every connect(): thread activity for linking. */
void span_builder_on_io(struct span_builder *b, uint32_t tid, uint32_t pid, uint64_t sock,
			bool connect);

/* Process @pid exited or exec'd: what the linker learned about it goes (its instrumentation). */
void span_builder_on_process_gone(struct span_builder *b, uint32_t pid);
/* --propagate: a kernel context for a request about to begin (see linker_on_xctx()). */
void span_builder_on_xctx(struct span_builder *b, const struct mt_xctx_event *ev);

/* Forgets requests that never completed (call about once a second). */
void span_builder_expire(struct span_builder *b, uint64_t now_ns);

void span_builder_stats(const struct span_builder *b, struct span_stats *out);

/* "a.b.c.d" for v4-mapped addresses, RFC 5952 text otherwise. */
void mt_format_addr(const uint8_t addr[16], char *out, size_t outlen);

#endif /* MESHTRACE_SPANS_H */
