/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tail keep, beyond the OpenTelemetry spec (opt-in: --keep-error-traces,
 * --keep-slow-traces MS): the spans of a trace the head sampler
 * (OTEL_TRACES_SAMPLER) did not keep are held until the trace ends on this
 * node, then handed on after all when any of them errored or lasted longer
 * than the threshold. The agent sees the node's whole local trace when it
 * ends; a collector needs a tail-sampling stage, and the memory, for that.
 *
 * A local trace ends with its local root: a span no span of this node is the
 * parent of (struct mt_span.local_root: a root, or a parent on another node or
 * in an SDK). Spans of a decided trace that come later follow the decision (a
 * kept trace keeps them; a dropped one keeps a later span that errs or is
 * slow, and is kept from then on). Bounded (TAILKEEP_MAX_SPANS held spans,
 * TAILKEEP_MAX_TRACES traces): when full, or when a trace is held longer than
 * TAILKEEP_HOLD_NS, the oldest trace is decided early on what it holds,
 * counted. Pure: no I/O; the caller's clock is the spans' end time.
 */
#ifndef MESHTRACE_TAILKEEP_H
#define MESHTRACE_TAILKEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/trace/span.h"

#define TAILKEEP_MAX_SPANS  2048
#define TAILKEEP_MAX_TRACES 4096
/* A local trace held longer than this (by its spans' end times) is decided on what it holds. */
#define TAILKEEP_HOLD_NS (10ull * 1000000000ull)
/* --keep-slow-traces: the largest threshold accepted, in ms (one hour). */
#define TAILKEEP_SLOW_MS_MAX 3600000ull

struct tailkeep_config {
	bool keep_errors;    /* a trace with a span whose status is Error */
	uint64_t slow_ns;    /* a trace with a span longer than this; 0: off */
	uint32_t max_spans;  /* 0: TAILKEEP_MAX_SPANS */
	uint32_t max_traces; /* 0: TAILKEEP_MAX_TRACES */
	uint64_t hold_ns;    /* 0: TAILKEEP_HOLD_NS */
};

struct tailkeep_stats {
	uint64_t spans_kept;	 /* unsampled spans handed on: their trace erred or was slow */
	uint64_t spans_dropped;	 /* unsampled spans let go: their trace was neither */
	uint64_t traces_kept;	 /* local traces kept by the rule */
	uint64_t traces_dropped; /* local traces let go */
	uint64_t traces_evicted; /* decided before their end: a table was full */
	uint64_t traces_expired; /* decided before their end: held TAILKEEP_HOLD_NS */
	uint64_t spans_held;	 /* spans held now */
	uint64_t traces_held;	 /* local traces held now */
	uint64_t max_spans;	 /* capacity */
};

/* Called with each span to keep, in the order its trace's spans came. */
typedef void (*tailkeep_keep_fn)(void *ctx, const struct mt_span *s);

struct tailkeep;

/* NULL on allocation failure. @keep is called for every span kept. */
struct tailkeep *tailkeep__new(const struct tailkeep_config *cfg, tailkeep_keep_fn keep, void *ctx);
/* Decides and lets go of nothing: call tailkeep_flush() first to hand on what is held. */
void tailkeep__free(struct tailkeep *t);

/* True when the rule is on (errors or a threshold): the caller hands unsampled spans over. */
bool tailkeep_enabled(const struct tailkeep_config *cfg);

/* A span the head sampler did not keep: held, kept now (@keep), or let go. */
void tailkeep_add(struct tailkeep *t, const struct mt_span *s);

/* Every trace held is decided now on what it holds (at shutdown). */
void tailkeep_flush(struct tailkeep *t);

void tailkeep_stats(const struct tailkeep *t, struct tailkeep_stats *out);

#endif /* MESHTRACE_TAILKEEP_H */
