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
 */
#ifndef MESHTRACE_CAPTURE_RINGS_H
#define MESHTRACE_CAPTURE_RINGS_H

#include <stddef.h>
#include <stdint.h>

/* One ring as mapped: the kernel's layout (linux/bpf.h, kernel/bpf/ringbuf.c). */
struct ring_view {
	uint64_t *consumer;	  /* the consumer position: ours to advance */
	const uint64_t *producer; /* the producer position: the kernel's */
	const uint8_t *data;	  /* the data pages, mapped twice: no record wraps */
	uint64_t mask;		  /* the data size - 1 (a power of two) */
	/* Merge state: the head record, read once per record. */
	uint64_t head_ts;
	uint32_t head_len; /* its sample size */
	uint8_t have_head; /* head_ts and head_len are read */
	uint8_t ended;	   /* nothing more this drain (empty, or its head is being written) */
};

typedef int (*rings_event_fn)(void *ctx, void *data, size_t size);

/*
 * Delivers every committed record of the @n rings to @fn, oldest timestamp first among the
 * rings' heads; discarded records are skipped. A ring whose head is still being written
 * stops there until the next call. Returns the records delivered.
 */
long rings_consume(struct ring_view *rings, unsigned n, rings_event_fn fn, void *ctx);

struct rings;

/*
 * Maps @n ring buffer maps (their fds, each @size bytes) and an epoll fd that is readable
 * when one of them has data. NULL with errno set on failure. The fds stay the caller's.
 */
struct rings *rings__new(const int *fds, unsigned n, uint64_t size);
void rings__free(struct rings *r);
int rings_epoll_fd(const struct rings *r);
long rings_drain(struct rings *r, rings_event_fn fn, void *ctx);

/* The size of each CPU's ring for @ncpus CPUs: a power of two from 256 KiB to 4 MiB. */
uint64_t rings_size_per_cpu(unsigned ncpus);

#endif /* MESHTRACE_CAPTURE_RINGS_H */
