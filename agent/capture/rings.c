// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One BPF ring buffer per CPU, merged by timestamp (rings.h). */
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent/capture/rings.h"
#include "bpf/capture.h"

#define RING_MIN_BYTES (256ull << 10)
#define RING_MAX_BYTES (4ull << 20)
/* What one ring held before there was one per CPU: kept as the total on small machines. */
#define RINGS_TOTAL_BYTES (4ull << 20)

struct rings {
	struct ring_view *views;
	unsigned n;
	uint64_t size;
	long page;
	int epfd;
	struct rings_stats stats;
};

uint64_t rings_size_per_cpu(unsigned ncpus)
{
	uint64_t want = RINGS_TOTAL_BYTES / (ncpus ? ncpus : 1), size = RING_MIN_BYTES;

	while (size * 2 <= want && size < RING_MAX_BYTES)
		size *= 2;
	return size;
}

/* The record at the ring's consumer position: its header, read as the kernel publishes it. */
static uint32_t head_header(const struct ring_view *r, uint64_t pos)
{
	return __atomic_load_n((const uint32_t *)(r->data + (pos & r->mask)), __ATOMIC_ACQUIRE);
}

/* Gives the kernel back the space of the records read so far. */
static void publish(struct ring_view *r)
{
	if (r->published == r->pos)
		return;
	__atomic_store_n(r->consumer, r->pos, __ATOMIC_RELEASE);
	r->published = r->pos;
}

static void advance(struct ring_view *r, uint32_t len)
{
	r->pos += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
	if (r->pos - r->published >= (r->mask + 1) / RINGS_PUBLISH_PARTS)
		publish(r);
}

/*
 * Reads the ring's head record into its merge state, skipping discarded ones. False when
 * the ring has nothing committed to give now.
 */
static int read_head(struct ring_view *r)
{
	for (;;) {
		uint64_t pos = r->pos;
		uint32_t hdr, len;
		const uint8_t *sample;

		if (pos >= r->prod_seen) {
			r->prod_seen = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
			if (pos >= r->prod_seen)
				return 0;
		}
		hdr = head_header(r, pos);
		if (hdr & BPF_RINGBUF_BUSY_BIT)
			return 0; /* being written: its CPU's later records wait behind it */
		len = hdr & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (hdr & BPF_RINGBUF_DISCARD_BIT) {
			advance(r, len);
			continue;
		}
		sample = r->data + ((pos + BPF_RINGBUF_HDR_SZ) & r->mask);
		r->head_ts = 0;
		if (len >= sizeof(struct mt_event_head))
			memcpy(&r->head_ts, sample + offsetof(struct mt_event_head, ts_ns),
			       sizeof(r->head_ts));
		r->head_len = len;
		r->have_head = 1;
		return 1;
	}
}

long rings_consume(struct ring_view *rings, unsigned n, uint64_t until_ns, rings_event_fn fn,
		   void *ctx, struct rings_stats *st)
{
	long delivered = 0;

	for (unsigned i = 0; i < n; i++) {
		rings[i].ended = 0;
		rings[i].have_head = 0;
		rings[i].pos = rings[i].published = *rings[i].consumer;
		rings[i].prod_seen = 0;
	}
	for (;;) {
		struct ring_view *best = NULL;
		uint64_t pos;
		uint32_t len;

		for (unsigned i = 0; i < n; i++) {
			struct ring_view *r = &rings[i];

			if (r->ended)
				continue;
			if ((!r->have_head && !read_head(r)) || r->head_ts > until_ns) {
				r->ended = 1;
				continue;
			}
			if (!best || r->head_ts < best->head_ts)
				best = r;
		}
		if (!best) {
			for (unsigned i = 0; i < n; i++)
				publish(&rings[i]);
			return delivered;
		}
		if (st) {
			if (best->head_ts < st->last_ts)
				st->late++;
			else
				st->last_ts = best->head_ts;
		}
		pos = best->pos;
		len = best->head_len;
		fn(ctx, (void *)(best->data + ((pos + BPF_RINGBUF_HDR_SZ) & best->mask)), len);
		advance(best, len);
		best->have_head = 0;
		delivered++;
	}
}

struct rings *rings__new(const int *fds, unsigned n, uint64_t size)
{
	struct rings *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	r->n = n;
	r->size = size;
	r->page = sysconf(_SC_PAGESIZE);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->views = calloc(n, sizeof(*r->views));
	if (r->epfd < 0 || !r->views)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		struct ring_view *v = &r->views[i];
		struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = i};
		void *cons, *prod;

		cons = mmap(NULL, (size_t)r->page, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (cons == MAP_FAILED)
			goto fail;
		v->consumer = cons;
		prod = mmap(NULL, (size_t)(r->page + 2 * size), PROT_READ, MAP_SHARED, fds[i],
			    r->page);
		if (prod == MAP_FAILED)
			goto fail;
		v->producer = prod;
		v->data = (const uint8_t *)prod + r->page;
		v->mask = size - 1;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			goto fail;
	}
	return r;
fail:
	err = errno;
	rings__free(r);
	errno = err;
	return NULL;
}

void rings__free(struct rings *r)
{
	if (!r)
		return;
	for (unsigned i = 0; r->views && i < r->n; i++) {
		if (r->views[i].consumer)
			munmap(r->views[i].consumer, (size_t)r->page);
		if (r->views[i].producer)
			munmap((void *)r->views[i].producer, (size_t)(r->page + 2 * r->size));
	}
	if (r->epfd >= 0)
		close(r->epfd);
	free(r->views);
	free(r);
}

int rings_epoll_fd(const struct rings *r)
{
	return r->epfd;
}

long rings_drain(struct rings *r, bool all, rings_event_fn fn, void *ctx)
{
	struct epoll_event evs[16];
	struct timespec ts;
	uint64_t until = UINT64_MAX;

	/* Take the wake-ups: what younger events stay behind does not wake us again. */
	while (epoll_wait(r->epfd, evs, 16, 0) == 16)
		;
	if (!all) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		until = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - RINGS_HOLD_NS;
	}
	return rings_consume(r->views, r->n, until, fn, ctx, &r->stats);
}

void rings_get_stats(const struct rings *r, struct rings_stats *out)
{
	*out = r->stats;
}
