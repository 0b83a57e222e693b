// SPDX-License-Identifier: Apache-2.0
/*
 * OTLP/HTTP exporter: batching, the bounded queue, and the API the event loop
 * calls. The queue of encoded batches is in otlp_ring.c, the transport in
 * otlp_transport.c, the encoder in otlp_encode.c, the log helpers in otlp_log.c.
 *
 * Data path: add_span copies into `pending` (batch_max spans). A full batch,
 * or the oldest pending span reaching schedule_delay_ms, is encoded and
 * compressed into the next slot of a signal's ring of encoded batches. The
 * ring holds at most queue_max_spans spans; when a new batch does not fit, the
 * oldest batch not on the wire is dropped and counted.
 *
 * Memory: gzip output goes to one scratch buffer (sized for the worst case),
 * then into a slot buffer sized to what it holds (~25 KB for 512 spans, where
 * the worst-case bound is ~240 KB). A slot sent or dropped hands its buffer to
 * a slot filled next, or frees it: only queued batches and two spares hold
 * memory, not every slot the ring ever went round. The steady state still
 * allocates nothing; after a backlog drains, the freed memory is trimmed.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent/export/otlp_internal.h"
#include "agent/export/span_attrs.h"

/*
 * gzip level 1: on 512 typical server spans, 68 B/span against 64 at level 6,
 * for 2.5x less CPU (test_measure_size_and_speed in tests/export/test_otlp.c).
 * libdeflate, not zlib: whole buffers in one call, and zlib's deflate was
 * ~40% of the agent's CPU under load (perf, make bench).
 */
#define OTLP_GZIP_LEVEL 1
/* Ring slots beyond queue_max_spans / batch_max, for partial batches cut by the timer. */
#define OTLP_RING_SPARE 3
/* Once this much of the queue's memory was freed and the queue is empty, give it back. */
#define OTLP_TRIM_BYTES (1u << 20)

/* ---- batches ---- */

static int ensure_cap(struct otlp_batch *b, size_t need)
{
	uint8_t *p;
	size_t cap;

	if (b->cap >= need && b->body)
		return 0;
	cap = need + need / 8 + 64;
	p = realloc(b->body, cap);
	if (!p)
		return -ENOMEM;
	b->body = p;
	b->cap = cap;
	return 0;
}

/*
 * Puts @len bytes into @b as they go on the wire. Compressed output goes to
 * the scratch buffer first: a slot's buffer is sized to what it holds, not to
 * the compressor's worst-case bound (~10x the usual gzip'd size of spans).
 */
static int fill_body(struct otlp_exporter *x, struct otlp_batch *b, const uint8_t *data, size_t len,
		     bool gzip)
{
	size_t bound, n;
	int err;

	if (gzip) {
		bound = libdeflate_gzip_compress_bound(x->gz, len);
		if (x->gz_cap < bound) {
			uint8_t *p = realloc(x->gz_buf, bound);

			if (!p)
				return -ENOMEM;
			x->gz_buf = p;
			x->gz_cap = bound;
		}
		n = libdeflate_gzip_compress(x->gz, data, len, x->gz_buf, x->gz_cap);
		if (!n)
			return -EIO;
		data = x->gz_buf;
		len = n;
	}
	err = ensure_cap(b, len);
	if (err)
		return err;
	memcpy(b->body, data, len);
	b->len = len;
	return 0;
}

/* After a backlog drained: return what its buffers took to the system. */
static void maybe_trim(struct otlp_exporter *x)
{
	if (x->freed_bytes < OTLP_TRIM_BYTES || x->sig[OTLP_TRACES].count ||
	    x->sig[OTLP_METRICS].count)
		return;
	x->freed_bytes = 0;
	malloc_trim(0);
}

/* Encodes the pending spans into the next batch of the queue. */
static void cut_batch(struct otlp_exporter *x, uint64_t now)
{
	struct otlp_signal *s = &x->sig[OTLP_TRACES];
	struct otlp_batch *b;
	const uint8_t *pb;
	unsigned n = x->npending;
	size_t len;
	int err;

	if (!n)
		return;
	x->npending = 0;
	b = otlp_ring_make_room(s, n, x->cfg.queue_max_spans, now);
	err = otlp_encoder_encode(x->enc, x->pending, n, &pb, &len);
	if (!err && s->gzip) {
		err = fill_body(x, b, pb, len, true);
	} else if (!err) {
		/* No copy: the encoder's buffer becomes the batch's, and vice versa. */
		otlp_encoder_swap_buf(x->enc, &b->body, &b->cap);
		b->len = len;
	}
	if (err) {
		x->stats.spans_dropped_error += n;
		otlp_set_error(x, "traces: could not encode %u spans: %s", n, strerror(-err));
		otlp_log_limited(&s->rl_drop, now, "traces: could not encode %u spans: %s; dropped",
				 n, strerror(-err));
		return;
	}
	otlp_ring_push(s, n);
}

/* ---- the API ---- */

static bool backlog_small(const struct otlp_exporter *x)
{
	const struct otlp_signal *s = &x->sig[OTLP_TRACES];

	/* While the collector fails, fill whole batches rather than queue many small ones. */
	return s->count == 0 || (s->count == 1 && s->attempt == 0);
}

static void run_due(struct otlp_exporter *x)
{
	unsigned i, round;

	/* Starting a transfer arms curl's timer at 0: go round again rather than return. */
	for (round = 0; round < 3; round++) {
		uint64_t now = mt_now_mono_ms();

		otlp_transport_run(x, now);
		if (x->npending && backlog_small(x) &&
		    now >= x->pending_since_ms + x->cfg.schedule_delay_ms)
			cut_batch(x, now);
		for (i = 0; i < OTLP_SIGNALS; i++)
			otlp_signal_maybe_start(&x->sig[i], now);
		if (x->curl_deadline_ms < 0 || (uint64_t)x->curl_deadline_ms > mt_now_mono_ms())
			break;
	}
}

void otlp_exporter_poll(struct otlp_exporter *x)
{
	otlp_transport_poll_sockets(x);
	run_due(x);
	maybe_trim(x);
}

int otlp_exporter_fd(struct otlp_exporter *x)
{
	return x->epfd;
}

int otlp_exporter_timeout_ms(struct otlp_exporter *x)
{
	uint64_t now = mt_now_mono_ms();
	int64_t next = x->curl_deadline_ms;
	unsigned i;

	for (i = 0; i < OTLP_SIGNALS; i++) {
		const struct otlp_signal *s = &x->sig[i];

		if (s->enabled && !s->in_flight && s->count &&
		    (next < 0 || s->retry_at_ms < (uint64_t)next))
			next = (int64_t)s->retry_at_ms;
	}
	if (x->npending && backlog_small(x)) {
		uint64_t due = x->pending_since_ms + x->cfg.schedule_delay_ms;

		if (next < 0 || due < (uint64_t)next)
			next = (int64_t)due;
	}
	if (next < 0)
		return -1;
	if ((uint64_t)next <= now)
		return 0;
	return next - (int64_t)now > INT_MAX ? INT_MAX : (int)(next - (int64_t)now);
}

void otlp_exporter_add_span(struct otlp_exporter *x, const struct mt_span *s)
{
	uint64_t now;

	if (!x->sig[OTLP_TRACES].enabled)
		return;
	x->stats.spans_received++;
	span_attrs_copy_span(&x->pending[x->npending++], s);
	if (x->npending == 1)
		x->pending_since_ms = mt_now_mono_ms();
	if (x->npending < x->cfg.batch_max)
		return;
	now = mt_now_mono_ms();
	cut_batch(x, now);
	otlp_signal_maybe_start(&x->sig[OTLP_TRACES], now);
}

int otlp_exporter_send_metrics(struct otlp_exporter *x, const uint8_t *pb, size_t len)
{
	struct otlp_signal *s = &x->sig[OTLP_METRICS];
	uint64_t now = mt_now_mono_ms();
	struct otlp_batch *b;
	int err;

	if (!s->enabled)
		return -ENOTCONN;
	b = otlp_ring_make_room(s, 0, UINT64_MAX, now);
	err = fill_body(x, b, pb, len, s->gzip);
	if (err) {
		x->stats.metrics_requests_dropped++;
		otlp_set_error(x, "metrics: could not queue a request: %s", strerror(-err));
		return err == -EIO ? -ENOMEM : err;
	}
	otlp_ring_push(s, 0);
	otlp_signal_maybe_start(s, now);
	return 0;
}

static bool idle(const struct otlp_exporter *x)
{
	unsigned i;

	for (i = 0; i < OTLP_SIGNALS; i++)
		if (x->sig[i].count || x->sig[i].in_flight)
			return false;
	return !x->npending;
}

/* Drops everything still queued, counting it as lost at shutdown. */
static void drop_all(struct otlp_exporter *x)
{
	unsigned i;

	x->stats.spans_dropped_shutdown += x->npending;
	x->npending = 0;
	for (i = 0; i < OTLP_SIGNALS; i++) {
		struct otlp_signal *s = &x->sig[i];

		otlp_signal_abort(s);
		if (i == OTLP_TRACES)
			x->stats.spans_dropped_shutdown += s->ring_spans;
		else
			x->stats.metrics_requests_dropped += s->count;
		while (s->count)
			otlp_ring_pop(s);
	}
}

int otlp_exporter_flush(struct otlp_exporter *x, int deadline_ms)
{
	uint64_t end = mt_now_mono_ms() + (uint64_t)(deadline_ms > 0 ? deadline_ms : 0);
	struct epoll_event ev;

	cut_batch(x, mt_now_mono_ms());
	for (;;) {
		uint64_t now;
		int t;

		otlp_exporter_poll(x);
		if (idle(x))
			return 0;
		now = mt_now_mono_ms();
		if (now >= end)
			break;
		t = otlp_exporter_timeout_ms(x);
		if (t < 0 || (uint64_t)t > end - now)
			t = (int)(end - now);
		epoll_wait(x->epfd, &ev, 1, t);
	}
	otlp_set_error(x, "flush: gave up after %d ms with data still queued", deadline_ms);
	drop_all(x);
	return -ETIMEDOUT;
}

void otlp_exporter_stats(const struct otlp_exporter *x, struct otlp_stats *out)
{
	*out = x->stats;
	out->queue_spans = x->npending + x->sig[OTLP_TRACES].ring_spans;
}

static bool config_ok(const struct otlp_config *cfg)
{
	if (!cfg->traces_url[0] && !cfg->metrics_url[0])
		return false;
	if (strnlen(cfg->traces_url, OTLP_URL_MAX) == OTLP_URL_MAX ||
	    strnlen(cfg->metrics_url, OTLP_URL_MAX) == OTLP_URL_MAX)
		return false;
	if (!cfg->batch_max || cfg->batch_max > OTLP_BATCH_LIMIT ||
	    cfg->queue_max_spans < cfg->batch_max || cfg->queue_max_spans > OTLP_QUEUE_LIMIT)
		return false;
	return cfg->traces.timeout_ms > 0 && cfg->metrics.timeout_ms > 0 &&
	       cfg->traces.n_headers <= OTLP_HEADERS_MAX &&
	       cfg->metrics.n_headers <= OTLP_HEADERS_MAX && cfg->retry_max_ms > 0;
}

struct otlp_exporter *otlp_exporter__new(const struct otlp_config *cfg)
{
	struct otlp_exporter *x;
	unsigned trace_slots;
	int err;

	if (!cfg || !config_ok(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL; /* calloc() set errno to ENOMEM */
	x->cfg = *cfg;
	x->curl_deadline_ms = -1;
	x->stats.last_grpc_status = -1;
	x->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (x->epfd < 0) {
		err = -errno;
		goto out_free;
	}
	if (getrandom(&x->rng, sizeof(x->rng), GRND_NONBLOCK) != sizeof(x->rng) || !x->rng)
		x->rng = mt_now_mono_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;

	err = otlp_transport_init(x);
	if (err)
		goto out_free;

	err = -ENOMEM;
	x->gz = libdeflate_alloc_compressor(OTLP_GZIP_LEVEL);
	if (!x->gz)
		goto out_free;

	trace_slots = (x->cfg.queue_max_spans + x->cfg.batch_max - 1) / x->cfg.batch_max +
		      OTLP_RING_SPARE;
	err = otlp_signal_init(x, &x->sig[OTLP_TRACES], "traces", x->cfg.traces_url, &x->cfg.traces,
			       trace_slots);
	if (err)
		goto out_free;
	err = otlp_signal_init(x, &x->sig[OTLP_METRICS], "metrics", x->cfg.metrics_url,
			       &x->cfg.metrics, OTLP_METRICS_QUEUE_MAX + 1);
	if (err)
		goto out_free;

	if (x->sig[OTLP_TRACES].enabled) {
		x->enc = otlp_encoder__new(&x->cfg, x->cfg.batch_max);
		if (!x->enc) {
			err = -errno;
			goto out_free;
		}
		x->pending = calloc(x->cfg.batch_max, sizeof(*x->pending));
		if (!x->pending) {
			err = -ENOMEM;
			goto out_free;
		}
	}
	return x;

out_free:
	otlp_exporter__free(x);
	errno = -err;
	return NULL;
}

void otlp_exporter__free(struct otlp_exporter *x)
{
	if (!x)
		return;
	otlp_transport_free(x);
	if (x->epfd >= 0)
		close(x->epfd);
	libdeflate_free_compressor(x->gz);
	free(x->gz_buf);
	otlp_encoder__free(x->enc);
	free(x->pending);
	free(x);
}
