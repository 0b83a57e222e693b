/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The W3C traceparent header (Trace Context level 1, section 3.2:
 * https://www.w3.org/TR/trace-context/#traceparent-header), and the
 * tracestate list that travels with it, written once for
 * the parsers that read it (HTTP/1, HTTP/2), the span stage and the linker
 * that decode it, and the propagation that will write it:
 *
 *   version "-" trace-id "-" parent-id "-" trace-flags
 *   2 hex      32 hex        16 hex        2 hex        lower-case only
 *
 * Pure functions: no state, no allocation.
 */
#ifndef MESHTRACE_TRACEPARENT_H
#define MESHTRACE_TRACEPARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */
#define MT_TRACE_ID_LEN	   16 /* bytes */
#define MT_SPAN_ID_LEN	   8  /* bytes */

/*
 * Whether the @n bytes at @v are a traceparent a receiver may act on: the
 * four fields in lower-case hex, version not "ff", trace-id and parent-id not
 * all zeros. Version 00 is exactly MT_TRACEPARENT_LEN bytes; a later version
 * may append "-..." (the receiver then reads the first 55 bytes as version 00).
 */
bool mt_traceparent_valid(const char *v, size_t n);

/*
 * Decodes the NUL-terminated traceparent @tp (one mt_traceparent_valid()
 * accepted, cut to MT_TRACEPARENT_LEN bytes) into its ids and, when @flags is
 * not NULL, its trace-flags. Returns false, the outputs then undefined, when
 * @tp does not have the shape of one.
 */
bool mt_traceparent_decode(const char *tp, uint8_t trace_id[MT_TRACE_ID_LEN],
			   uint8_t parent_id[MT_SPAN_ID_LEN], uint8_t *flags);

/*
 * Writes the version-00 traceparent for @trace_id, @span_id and @flags into
 * @out (MT_TRACEPARENT_LEN characters and a NUL).
 */
void mt_traceparent_format(char out[MT_TRACEPARENT_LEN + 1],
			   const uint8_t trace_id[MT_TRACE_ID_LEN],
			   const uint8_t span_id[MT_SPAN_ID_LEN], uint8_t flags);

/*
 * Appends one tracestate field value (the @n bytes at @v) to the list in @ts
 * (NUL-terminated, @cap bytes), after @sep when the list is not empty:
 * several tracestate fields are one list (RFC 9110 5.3). Returns false, @ts
 * then emptied, when the whole does not fit: a cut list would be wrong.
 */
bool mt_tracestate_append(char *ts, size_t cap, const char *v, size_t n, char sep);

#endif /* MESHTRACE_TRACEPARENT_H */
