/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One BPF ring buffer per CPU, read as one stream in time order.
 *
 * A single ring shared by every CPU made each event's reservation take a lock and cache
 * lines that the other CPUs had just written (the ring's positions, its spinlock, the
 * records next to theirs): in a bpf_stats A/B at 10,000 req/s the receive program cost
 * 920 ns with one ring and 737 ns with one per CPU (send 672 / 617). With one ring per CPU
 * the programs of a CPU touch only their own ring.
 *
 * User space then reads the rings as one stream: each ring is in its CPU's order, and the
 * records at the heads of the rings are merged by their timestamp (the head of every event,
 * taken before it is reserved). A thread's events keep their order when it moves between
 * CPUs: its earlier event was committed before its later one was made. Events of different
 * threads were never ordered more strictly than their timestamps (one ring ordered them by
 * reservation, taken after the timestamp).
 *
 * A ring that is empty now may still get an event older than the heads of the others: its
 * program took the time and has not reserved yet. So a drain delivers only events older than
 * RINGS_HOLD_NS before it began; younger ones wait for the next drain (a tick, 10 ms). An
 * event delivered after a younger one (a writer held up longer than that, or a ring's own
 * order against its clock) is counted in rings_stats.late, not dropped.
 */
#ifndef MESHTRACE_CAPTURE_RINGS_H
#define MESHTRACE_CAPTURE_RINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One ring as mapped: the kernel's layout (linux/bpf.h, kernel/bpf/ringbuf.c). */
struct ring_view {
	uint64_t *consumer;	  /* the consumer position: ours to advance */
	const uint64_t *producer; /* the producer position: the kernel's */
	const uint8_t *data;	  /* the data pages, mapped twice: no record wraps */
	uint64_t mask;		  /* the data size - 1 (a power of two) */
	/*
	 * Positions kept here during a drain: the consumer position is published (written where
	 * the kernel reads it at every reservation) once per 1/RINGS_PUBLISH_PARTS of the ring
	 * and at the drain's end, and the producer position is read again only when the records
	 * known to be committed are used up. Read and written per record, both cache lines went
	 * back and forth between the agent's CPU and the CPU writing the ring at every event.
	 */
	uint64_t pos;	    /* the next record to read */
	uint64_t prod_seen; /* the producer position last read */
	uint64_t published; /* the consumer position last published */
	/* Merge state: the head record, read once per record. */
	uint64_t head_ts;
	uint32_t head_len; /* its sample size */
	uint8_t have_head; /* head_ts and head_len are read */
	uint8_t ended;	   /* nothing more this drain (empty, or its head is being written) */
};

typedef int (*rings_event_fn)(void *ctx, void *data, size_t size);

/* The consumer position is published each time this fraction of a ring has been read. */
#define RINGS_PUBLISH_PARTS 16

/* Time from an event's timestamp to its reservation that a drain allows for. */
#define RINGS_HOLD_NS (1000000ull)

struct rings_stats {
	uint64_t last_ts; /* the newest timestamp delivered */
	uint64_t late;	  /* events delivered after a younger one */
};

/*
 * Delivers the committed records of the @n rings whose timestamps are <= @until_ns to @fn,
 * oldest timestamp first among the rings' heads; discarded records are skipped. A ring
 * whose head is still being written, or younger than @until_ns, stops there until the next
 * call. Returns the records delivered; @st (may be NULL) counts the late ones.
 */
long rings_consume(struct ring_view *rings, unsigned n, uint64_t until_ns, rings_event_fn fn,
		   void *ctx, struct rings_stats *st);

struct rings;

/*
 * Maps @n ring buffer maps (their fds, each @size bytes) and an epoll fd that is readable
 * when one of them has data. NULL with errno set on failure. The fds stay the caller's.
 */
struct rings *rings__new(const int *fds, unsigned n, uint64_t size);
void rings__free(struct rings *r);
/* Readable when a ring asked to be read (edge-triggered: rings_drain clears it). */
int rings_epoll_fd(const struct rings *r);
/* Delivers what is older than RINGS_HOLD_NS; with @all, everything committed (at the end). */
long rings_drain(struct rings *r, bool all, rings_event_fn fn, void *ctx);
void rings_get_stats(const struct rings *r, struct rings_stats *out);

/* The size of each CPU's ring for @ncpus CPUs: a power of two from 256 KiB to 4 MiB. */
uint64_t rings_size_per_cpu(unsigned ncpus);

#endif /* MESHTRACE_CAPTURE_RINGS_H */
