// SPDX-License-Identifier: Apache-2.0
/*
 * Tail keep: unsampled spans held per local trace, kept when the trace erred
 * or was slow (the contract is in tailkeep.h). Traces sit in one of two
 * lists, oldest last: held (waiting for their local root) and decided (the
 * decision remembered for spans that come late), the oldest decided entry
 * being the first one reused.
 */
#include "agent/trace/tailkeep.h"

#include <stdlib.h>
#include <string.h>

#include "agent/common/hashtab.h"

enum tk_state {
	TK_HELD = 1,
	TK_KEPT,
	TK_DROPPED,
};

struct tk_trace {
	uint8_t trace_id[16];
	uint8_t state;	  /* enum tk_state */
	bool interesting; /* a span erred or was slow */
	uint32_t first;	  /* held spans, in arrival order, through span_next[] */
	uint32_t last;
	uint32_t nspans;
	uint64_t since_ns; /* end time of its first span */
};

struct tailkeep {
	struct tailkeep_config cfg;
	tailkeep_keep_fn keep;
	void *ctx;
	struct tk_trace *traces;
	struct hashtab by_id;
	struct lrulist held;	/* TK_HELD, newest first */
	struct lrulist decided; /* TK_KEPT / TK_DROPPED, newest first */
	struct mt_span *spans;
	uint32_t *span_next;
	uint32_t span_free; /* free spans, through span_next[] */
	struct tailkeep_stats stats;
};

bool tailkeep_enabled(const struct tailkeep_config *cfg)
{
	return cfg->keep_errors || cfg->slow_ns;
}

struct tailkeep *tailkeep__new(const struct tailkeep_config *cfg, tailkeep_keep_fn keep, void *ctx)
{
	struct tailkeep *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cfg = *cfg;
	if (!t->cfg.max_spans)
		t->cfg.max_spans = TAILKEEP_MAX_SPANS;
	if (!t->cfg.max_traces)
		t->cfg.max_traces = TAILKEEP_MAX_TRACES;
	if (!t->cfg.hold_ns)
		t->cfg.hold_ns = TAILKEEP_HOLD_NS;
	t->keep = keep;
	t->ctx = ctx;
	t->traces = calloc(t->cfg.max_traces, sizeof(*t->traces));
	t->spans = calloc(t->cfg.max_spans, sizeof(*t->spans));
	t->span_next = calloc(t->cfg.max_spans, sizeof(*t->span_next));
	if (!t->traces || !t->spans || !t->span_next ||
	    hashtab_init(&t->by_id, t->cfg.max_traces, 0) != 0 ||
	    lrulist_init(&t->held, t->cfg.max_traces) != 0 ||
	    lrulist_init(&t->decided, t->cfg.max_traces) != 0) {
		tailkeep__free(t);
		return NULL;
	}
	for (uint32_t i = 0; i < t->cfg.max_spans; i++)
		t->span_next[i] = i + 1 < t->cfg.max_spans ? i + 1 : HT_NIL;
	t->span_free = 0;
	t->stats.max_spans = t->cfg.max_spans;
	return t;
}

void tailkeep__free(struct tailkeep *t)
{
	if (!t)
		return;
	hashtab_fini(&t->by_id);
	lrulist_fini(&t->held);
	lrulist_fini(&t->decided);
	free(t->traces);
	free(t->spans);
	free(t->span_next);
	free(t);
}

static uint32_t id_hash(const uint8_t trace_id[16])
{
	return hashtab_hash_bytes(trace_id, 16, 0);
}

static bool interesting(const struct tailkeep *t, const struct mt_span *s)
{
	if (t->cfg.keep_errors && s->status == MT_STATUS_ERROR)
		return true;
	return t->cfg.slow_ns && s->end_unix_ns > s->start_unix_ns &&
	       s->end_unix_ns - s->start_unix_ns > t->cfg.slow_ns;
}

/* Decides held trace @i on what it holds: its spans handed on or let go. */
static void decide(struct tailkeep *t, uint32_t i)
{
	struct tk_trace *tr = &t->traces[i];
	uint32_t k = tr->first;

	while (k != HT_NIL) {
		uint32_t next = t->span_next[k];

		if (tr->interesting)
			t->keep(t->ctx, &t->spans[k]);
		t->span_next[k] = t->span_free;
		t->span_free = k;
		k = next;
	}
	if (tr->interesting) {
		t->stats.spans_kept += tr->nspans;
		t->stats.traces_kept++;
		tr->state = TK_KEPT;
	} else {
		t->stats.spans_dropped += tr->nspans;
		t->stats.traces_dropped++;
		tr->state = TK_DROPPED;
	}
	t->stats.spans_held -= tr->nspans;
	t->stats.traces_held--;
	tr->first = tr->last = HT_NIL;
	tr->nspans = 0;
	lrulist_unlink(&t->held, i);
	lrulist_push_head(&t->decided, i);
}

/* A slot for a new trace: a free one, else the oldest decided, else the oldest held (evicted). */
static uint32_t trace_alloc(struct tailkeep *t)
{
	uint32_t i = hashtab_slot_alloc(&t->by_id);

	if (i != HT_NIL)
		return i;
	if (t->decided.tail == HT_NIL) {
		decide(t, t->held.tail); /* max_traces > 0: something is held */
		t->stats.traces_evicted++;
	}
	i = t->decided.tail;
	lrulist_unlink(&t->decided, i);
	hashtab_unlink(&t->by_id, id_hash(t->traces[i].trace_id), i);
	return i;
}

static uint32_t trace_find(const struct tailkeep *t, const uint8_t trace_id[16])
{
	for (uint32_t i = hashtab_first(&t->by_id, id_hash(trace_id)); i != HT_NIL;
	     i = hashtab_next(&t->by_id, i))
		if (memcmp(t->traces[i].trace_id, trace_id, 16) == 0)
			return i;
	return HT_NIL;
}

/* Held traces older than the hold time are decided on what they hold. */
static void expire(struct tailkeep *t, uint64_t now_ns)
{
	while (t->held.tail != HT_NIL &&
	       t->traces[t->held.tail].since_ns + t->cfg.hold_ns < now_ns) {
		decide(t, t->held.tail);
		t->stats.traces_expired++;
	}
}

/* A span of an already decided trace: follows the decision; an interesting one turns it. */
static void late_span(struct tailkeep *t, struct tk_trace *tr, const struct mt_span *s)
{
	if (tr->state == TK_DROPPED && interesting(t, s)) {
		tr->state = TK_KEPT;
		t->stats.traces_kept++;
	}
	if (tr->state == TK_KEPT) {
		t->keep(t->ctx, s);
		t->stats.spans_kept++;
	} else {
		t->stats.spans_dropped++;
	}
}

void tailkeep_add(struct tailkeep *t, const struct mt_span *s)
{
	struct tk_trace *tr;
	uint32_t i, k;

	expire(t, s->end_unix_ns);
	i = trace_find(t, s->trace_id);
	if (i == HT_NIL) {
		i = trace_alloc(t);
		tr = &t->traces[i];
		memset(tr, 0, sizeof(*tr));
		memcpy(tr->trace_id, s->trace_id, 16);
		tr->state = TK_HELD;
		tr->first = tr->last = HT_NIL;
		tr->since_ns = s->end_unix_ns;
		hashtab_link(&t->by_id, id_hash(s->trace_id), i);
		lrulist_push_head(&t->held, i);
		t->stats.traces_held++;
	}
	tr = &t->traces[i];
	if (tr->state != TK_HELD) {
		late_span(t, tr, s);
		return;
	}
	tr->interesting |= interesting(t, s);
	if (t->span_free == HT_NIL) {
		/* No room: the oldest held trace is decided now (maybe this one). */
		decide(t, t->held.tail);
		t->stats.traces_evicted++;
		if (tr->state != TK_HELD) {
			late_span(t, tr, s);
			return;
		}
	}
	k = t->span_free;
	t->span_free = t->span_next[k];
	t->spans[k] = *s;
	t->span_next[k] = HT_NIL;
	if (tr->last == HT_NIL)
		tr->first = k;
	else
		t->span_next[tr->last] = k;
	tr->last = k;
	tr->nspans++;
	t->stats.spans_held++;
	if (s->local_root)
		decide(t, i);
}

void tailkeep_flush(struct tailkeep *t)
{
	while (t->held.tail != HT_NIL)
		decide(t, t->held.tail);
}

void tailkeep_stats(const struct tailkeep *t, struct tailkeep_stats *out)
{
	*out = t->stats;
}
