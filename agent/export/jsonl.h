/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON lines exporter: one span per line, for people and for scripts.
 *
 * {"trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"<16 hex>"|"",
 *  "name":"GET","kind":"SERVER"|"CLIENT","start_unix_nano":123,
 *  "end_unix_nano":456,"status":"UNSET"|"OK"|"ERROR",
 *  "resource":{"service.name":"nginx","process.pid":123,
 *              "process.executable.name":"nginx"},
 *  "attributes":{ the OTLP exporter's span attributes, ints as numbers }}
 *
 * Every line is valid JSON: strings are escaped (control characters as
 * \u00XX) and bytes that are not UTF-8 become U+FFFD.
 * Not thread-safe: call from the event loop's thread.
 */
#ifndef MESHTRACE_JSONL_H
#define MESHTRACE_JSONL_H

#include <stdint.h>

#include "agent/trace/span.h"

/* Output buffered between flushes. */
#define JSONL_BUF_BYTES (64u << 10)

struct jsonl_exporter;

struct jsonl_stats {
	uint64_t spans_written; /* lines handed to write(2) in full */
	uint64_t spans_dropped; /* lines lost to write errors */
	int last_errno;		/* of the last failed write, 0 if none */
};

/*
 * Opens @path for appending (created 0644), or standard output for "-".
 * Returns NULL and sets errno on failure (the open(2) errno, or ENOMEM).
 */
struct jsonl_exporter *jsonl_exporter__new(const char *path);

/* Flushes, closes the file (never standard output), frees @x. NULL is a no-op. */
void jsonl_exporter__free(struct jsonl_exporter *x);

/*
 * Appends @s as one line to the buffer; writes the buffer out first when the
 * line might not fit. A failed write drops what was buffered, counted.
 */
void jsonl_exporter_add_span(struct jsonl_exporter *x, const struct mt_span *s);

/* Writes out what is buffered. Returns 0 or -errno (the lines are then dropped, counted). */
int jsonl_exporter_flush(struct jsonl_exporter *x);

struct k8s;
/* Writes the Kubernetes names @k8s holds (not owned) on each span's resource. */
void jsonl_exporter_set_k8s(struct jsonl_exporter *x, const struct k8s *k8s);

/* Copies the counters into @out. */
void jsonl_exporter_stats(const struct jsonl_exporter *x, struct jsonl_stats *out);

#endif /* MESHTRACE_JSONL_H */
