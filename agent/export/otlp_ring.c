// SPDX-License-Identifier: Apache-2.0
/*
 * One signal's queue: a ring of encoded batches, the oldest on the wire or
 * waiting for its retry. When a new batch does not fit (slots or spans), the
 * oldest batch not on the wire is dropped and counted. A slot that leaves the
 * queue hands its buffer to one of the slots filled next, or frees it, so
 * free slots hold no memory but a few spares (see otlp.c).
 */
#include <stdlib.h>

#include "agent/export/otlp_internal.h"

/* Free slots that keep a buffer for the next batches: the ones filled next. */
#define OTLP_RING_SPARE_BUFS 2

struct otlp_batch *otlp_ring_at(struct otlp_signal *s, unsigned rel)
{
	return &s->ring[(s->head + rel) % s->nslots];
}

/*
 * A slot left the queue: its buffer goes to one of the OTLP_RING_SPARE_BUFS
 * slots filled next if one has none, else it is freed. So free slots hold no
 * memory but those few, however many slots a backlog once filled.
 */
static void slot_release(struct otlp_signal *s, struct otlp_batch *b)
{
	struct otlp_batch tmp;
	unsigned i;

	b->nspans = 0;
	b->len = 0;
	if (!b->body)
		return;
	for (i = 0; i < OTLP_RING_SPARE_BUFS && s->count + i < s->nslots; i++) {
		struct otlp_batch *next = otlp_ring_at(s, s->count + i);

		if (next == b)
			return;
		if (!next->body) {
			tmp = *next;
			*next = *b;
			*b = tmp;
			return;
		}
	}
	s->x->freed_bytes += b->cap;
	free(b->body);
	b->body = NULL;
	b->cap = 0;
}

void otlp_ring_pop(struct otlp_signal *s)
{
	struct otlp_batch *b = &s->ring[s->head];

	s->ring_spans -= b->nspans;
	s->head = (s->head + 1) % s->nslots;
	s->count--;
	slot_release(s, b);
}

/* Drops the oldest batch not on the wire; false when there is none. */
static bool drop_oldest(struct otlp_signal *s, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	unsigned rel = s->in_flight ? 1 : 0, i;
	uint32_t n;

	if (rel >= s->count)
		return false;
	n = otlp_ring_at(s, rel)->nspans;
	/* Close the gap, keeping every slot's buffer for reuse. */
	for (i = rel; i + 1 < s->count; i++) {
		struct otlp_batch tmp = *otlp_ring_at(s, i);

		*otlp_ring_at(s, i) = *otlp_ring_at(s, i + 1);
		*otlp_ring_at(s, i + 1) = tmp;
	}
	s->count--;
	s->ring_spans -= n;
	slot_release(s, otlp_ring_at(s, s->count));
	if (s == &x->sig[OTLP_TRACES]) {
		x->stats.spans_dropped_queue_full += n;
		otlp_log_limited(&s->rl_drop, now,
				 "traces: queue full (%u spans), collector too slow or down: "
				 "dropped the oldest %u spans (%llu so far)",
				 x->cfg.queue_max_spans, n,
				 (unsigned long long)x->stats.spans_dropped_queue_full);
	} else {
		x->stats.metrics_requests_dropped++;
		otlp_log_limited(&s->rl_drop, now,
				 "metrics: queue full (%u requests), collector too slow or down: "
				 "dropped the oldest",
				 OTLP_METRICS_QUEUE_MAX);
	}
	return true;
}

struct otlp_batch *otlp_ring_make_room(struct otlp_signal *s, uint32_t k, uint64_t max_spans,
				       uint64_t now)
{
	while (s->count == s->nslots || (s->count && s->ring_spans + k > max_spans))
		if (!drop_oldest(s, now))
			break;
	return otlp_ring_at(s, s->count);
}

void otlp_ring_push(struct otlp_signal *s, uint32_t nspans)
{
	otlp_ring_at(s, s->count)->nspans = nspans;
	otlp_ring_at(s, s->count)->first_try_ms = 0;
	s->ring_spans += nspans;
	s->count++;
}
