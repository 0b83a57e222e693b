/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's memory of recent traces, for its own page: finished spans
 * grouped by trace id, the most recently active traces, and the slowest ones
 * of the last TRACESTORE_SLOW_KEEP_S seconds kept even when newer traffic
 * pushes everything else out.
 *
 * Bounded: at most TRACESTORE_TRACES_MAX traces and TRACESTORE_SPANS_MAX
 * spans (each a struct mt_span, ~1.6 KiB: ~3.3 MiB when full), at most
 * TRACESTORE_TRACE_SPANS_MAX spans per trace. When full, the least recently
 * active trace that is not among the slowest is forgotten; spans past a
 * trace's limit are dropped. Both are counted.
 *
 * Served as JSON (no header values, no bodies: only the span attributes the
 * exporters send):
 *   GET /api/traces?sort=recent|slowest&limit=N
 *     [{"trace_id","root_name","root_service","start_unix_ms","duration_ms",
 *       "spans","error"}]
 *   GET /api/traces/<trace_id>
 *     {"trace_id","spans":[{"span_id","parent_span_id","name","kind",
 *       "service","pid","start_unix_ns","end_unix_ns","status",
 *       "attributes":{...}}]}
 */
#ifndef MESHTRACE_TRACESTORE_H
#define MESHTRACE_TRACESTORE_H

#include <stdint.h>

#include "agent/common/buf.h"
#include "agent/serve/httpd.h"
#include "agent/trace/span.h"

#define TRACESTORE_TRACES_MAX	   512
#define TRACESTORE_SPANS_MAX	   2048
#define TRACESTORE_TRACE_SPANS_MAX 64
#define TRACESTORE_SLOWEST_MAX	   16
#define TRACESTORE_SLOW_KEEP_S	   900
#define TRACESTORE_LIST_DEFAULT	   50

enum tracestore_sort {
	TRACESTORE_RECENT = 0,	/* latest start first */
	TRACESTORE_SLOWEST = 1, /* longest first */
};

struct tracestore_stats {
	uint64_t spans_added;
	uint64_t traces_added;
	uint64_t traces_evicted;      /* forgotten to make room */
	uint64_t spans_dropped_trace; /* past TRACESTORE_TRACE_SPANS_MAX in one trace */
	uint32_t traces;	      /* held now */
	uint32_t spans;		      /* held now */
};

struct tracestore;

/* NULL on allocation failure. */
struct tracestore *tracestore__new(void);
/* NULL is a no-op. */
void tracestore__free(struct tracestore *t);

/* Copies @s into the store. Never fails: when full it forgets old traces. */
void tracestore_add(struct tracestore *t, const struct mt_span *s);

void tracestore_stats(const struct tracestore *t, struct tracestore_stats *out);

/*
 * Appends the list of at most @limit traces as a JSON array to @out. Slowest
 * lists only traces that ended within TRACESTORE_SLOW_KEEP_S of @now_unix_ns.
 * Returns 0, or -ENOMEM when @out is full.
 */
int tracestore_list_json(const struct tracestore *t, enum tracestore_sort sort, unsigned limit,
			 uint64_t now_unix_ns, struct mt_buf *out);

/*
 * Appends one trace, its spans in start order, as a JSON object to @out.
 * @trace_id_hex is 32 hex digits. Returns 0, -EINVAL for a malformed id,
 * -ENOENT when the store does not hold that trace, or -ENOMEM.
 */
int tracestore_trace_json(const struct tracestore *t, const char *trace_id_hex, struct mt_buf *out);

/* httpd handlers; @ctx is the struct tracestore. GET /api/traces ... */
int tracestore_serve_list(void *ctx, const char *path, const char *query,
			  struct httpd_response *resp);
/* ... and GET /api/traces/<trace_id> (route the prefix "/api/traces/"). */
int tracestore_serve_trace(void *ctx, const char *path, const char *query,
			   struct httpd_response *resp);

#endif /* MESHTRACE_TRACESTORE_H */
