/* SPDX-License-Identifier: Apache-2.0 */
/* What every request/response parser does the same way. */
#ifndef MESHTRACE_ANNOUNCE_H
#define MESHTRACE_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/protocols/l7.h"

/*
 * Announces a request while it is in flight (enum mt_stage): the span stage
 * gives it its trace context before any response. @op is copied up to
 * @op_max bytes.
 */
static inline void l7_announce(mt_exchange_fn emit, void *ctx, uint8_t protocol, uint32_t req_seq,
			       uint64_t start_ns, uint64_t end_ns, const char *op, size_t op_max)
{
	struct mt_exchange x;
	size_t n;

	if (!emit)
		return;
	memset(&x, 0, sizeof(x));
	x.protocol = protocol;
	x.stage = MT_STAGE_REQUEST;
	x.req_seq = req_seq;
	x.req_start_ns = start_ns;
	x.req_end_ns = end_ns;
	n = strnlen(op, op_max < sizeof(x.operation) ? op_max : sizeof(x.operation) - 1);
	memcpy(x.operation, op, n);
	x.operation[n] = '\0';
	emit(ctx, &x);
}

/*
 * The TCP sequence number of a request starting @pos bytes into a chunk
 * whose first byte is @chunk_seq: what the two ends of a connection agree
 * on. A per-connection count (never 0) when the capture did not know it.
 */
static inline uint32_t l7_request_seq(uint32_t chunk_seq, size_t pos, uint32_t *counter)
{
	if (chunk_seq)
		return chunk_seq + (uint32_t)pos;
	return ++*counter ? *counter : ++*counter;
}

#endif /* MESHTRACE_ANNOUNCE_H */
