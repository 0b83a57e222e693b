// SPDX-License-Identifier: Apache-2.0
/*
 * The per-CPU rings read as one stream (agent/capture/rings.h), on rings laid out in memory
 * as the kernel lays them out (8-byte record headers with the busy and discard bits, data
 * mapped twice so no record wraps): time order across rings with each ring's own order
 * kept, discarded records skipped, a record still being written holding back only its own
 * ring, records across the end of the data area, and a real ring buffer map when the test
 * may create one. No root needed for the rest.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cmocka.h>

#include "agent/capture/rings.h"
#include "bpf/capture.h"

#define DATA 4096u

/* One ring in plain memory: the data area twice over, as the kernel maps it. */
struct fake_ring {
	uint64_t consumer, producer;
	uint8_t data[2 * DATA];
	struct ring_view view;
};

static void fake_init(struct fake_ring *f)
{
	memset(f, 0, sizeof(*f));
	f->view.consumer = &f->consumer;
	f->view.producer = &f->producer;
	f->view.data = f->data;
	f->view.mask = DATA - 1;
}

/*
 * Appends an event with timestamp @ts and id @id (in its sock field), @extra bytes longer
 * than its head; @flags: header bits.
 */
static void fake_put_n(struct fake_ring *f, uint64_t ts, uint64_t id, uint32_t flags,
		       uint32_t extra)
{
	struct mt_event_head h = {.kind = MT_EV_DATA, .ts_ns = ts, .sock = id};
	uint32_t hdr[2] = {((uint32_t)sizeof(h) + extra) | flags, 0};
	uint64_t pos = f->producer;

	for (unsigned i = 0; i < sizeof(hdr); i++) /* both mappings of the data area */
		f->data[(pos + i) & (DATA - 1)] = f->data[((pos + i) & (DATA - 1)) + DATA] =
			((uint8_t *)hdr)[i];
	for (unsigned i = 0; i < sizeof(h); i++)
		f->data[(pos + 8 + i) & (DATA - 1)] = f->data[((pos + 8 + i) & (DATA - 1)) + DATA] =
			((uint8_t *)&h)[i];
	f->producer = pos + 8 + ((sizeof(h) + extra + 7) & ~7u);
}

/* @n empty rings and their views (the views point into the rings: fill them after). */
static void fake_rings(struct fake_ring *r, struct ring_view *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		fake_init(&r[i]);
		v[i] = r[i].view;
	}
}

static void fake_put(struct fake_ring *f, uint64_t ts, uint64_t id, uint32_t flags)
{
	fake_put_n(f, ts, id, flags, 0);
}

/* Clears the busy bit of the record at @pos (its writer committed it). */
static void fake_commit(struct fake_ring *f, uint64_t pos)
{
	uint32_t hdr;

	memcpy(&hdr, &f->data[pos & (DATA - 1)], 4);
	hdr &= ~BPF_RINGBUF_BUSY_BIT;
	memcpy(&f->data[pos & (DATA - 1)], &hdr, 4);
	memcpy(&f->data[(pos & (DATA - 1)) + DATA], &hdr, 4);
}

struct seen {
	uint64_t ids[64];
	unsigned n;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct seen *s = ctx;
	struct mt_event_head h;

	assert_int_equal(size, sizeof(h));
	memcpy(&h, data, sizeof(h));
	assert_true(s->n < 64);
	s->ids[s->n++] = h.sock;
	return 0;
}

static void test_merged_by_time_each_ring_in_order(void **state)
{
	static struct fake_ring r[3];
	struct ring_view v[3];
	struct seen s = {0};
	const uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8};

	(void)state;
	fake_rings(r, v, 3);
	/* CPU 0: 1 (t10), 4 (t40), 7 (t70); CPU 1: 2, 5, 8; CPU 2: 3, 6. */
	for (uint64_t id = 1; id <= 8; id++)
		fake_put(&r[(id - 1) % 3], id * 10, id, 0);
	assert_int_equal(rings_consume(v, 3, UINT64_MAX, on_event, &s, NULL), 8);
	assert_int_equal(s.n, 8);
	assert_memory_equal(s.ids, want, sizeof(want));
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].consumer, r[i].producer);
	/* Nothing new: nothing delivered. */
	assert_int_equal(rings_consume(v, 3, UINT64_MAX, on_event, &s, NULL), 0);
}

/* Records the consumer position the kernel would see at each record delivered. */
struct published {
	const uint64_t *consumer;
	uint64_t seen[64];
	unsigned n;
};

static int on_event_published(void *ctx, void *data, size_t size)
{
	struct published *p = ctx;

	(void)data;
	(void)size;
	assert_true(p->n < 64);
	p->seen[p->n++] = *p->consumer;
	return 0;
}

/*
 * The consumer position is written where the kernel reads it once per 1/RINGS_PUBLISH_PARTS
 * of the ring, not per record (each write took a cache line from the CPU writing the ring),
 * and wholly at the drain's end: space is given back in steps, never lost.
 */
static void test_consumer_published_in_steps(void **state)
{
	static struct fake_ring r;
	struct ring_view v;
	struct published p = {.consumer = &r.consumer};
	const uint64_t rec = 8 + sizeof(struct mt_event_head), step = DATA / RINGS_PUBLISH_PARTS;
	unsigned changes = 0;

	(void)state;
	fake_rings(&r, &v, 1);
	for (uint64_t id = 1; id <= 40; id++)
		fake_put(&r, id, id, 0);
	assert_int_equal(rings_consume(&v, 1, UINT64_MAX, on_event_published, &p, NULL), 40);
	for (unsigned i = 1; i < p.n; i++) {
		assert_true(p.seen[i] >= p.seen[i - 1]);
		assert_true(i * rec - p.seen[i] < step); /* never more than a step behind */
		changes += p.seen[i] != p.seen[i - 1];
	}
	assert_int_equal(changes, (40 * rec - rec) / step);
	assert_int_equal(r.consumer, r.producer);
}

/*
 * A thread's event made on CPU 1 after one on CPU 0 comes after it, though CPU 1's ring is
 * read first; within a ring a later timestamp never overtakes (a ring's order is its own
 * even when its clock readings are not monotonic, e.g. an interrupt's event).
 */
static void test_ring_order_kept_over_timestamps(void **state)
{
	static struct fake_ring r[2];
	struct ring_view v[2];
	struct seen s = {0};
	const uint64_t want[] = {10, 11, 12, 20};

	(void)state;
	fake_init(&r[0]);
	fake_init(&r[1]);
	fake_put(&r[1], 200, 20, 0);
	fake_put(&r[0], 100, 10, 0);
	fake_put(&r[0], 150, 11, 0);
	fake_put(&r[0], 140, 12, 0); /* its own ring's order: after 11 */
	v[0] = r[1].view;	     /* CPU 1 first in the array */
	v[1] = r[0].view;
	assert_int_equal(rings_consume(v, 2, UINT64_MAX, on_event, &s, NULL), 4);
	/* 12 (t140) waits behind 11 (t150) in its ring; 20 (t200) after both. */
	assert_memory_equal(s.ids, want, sizeof(want));
}

static void test_discarded_skipped_busy_holds_its_ring(void **state)
{
	static struct fake_ring r[2];
	struct ring_view v[2];
	struct seen s = {0};
	uint64_t busy_at;

	(void)state;
	fake_rings(r, v, 2);
	fake_put(&r[0], 10, 1, 0);
	fake_put(&r[0], 20, 99, BPF_RINGBUF_DISCARD_BIT);
	fake_put(&r[0], 30, 3, 0);
	busy_at = r[1].producer;
	fake_put(&r[1], 5, 2, BPF_RINGBUF_BUSY_BIT); /* reserved, not committed yet */
	fake_put(&r[1], 40, 4, 0);
	assert_int_equal(rings_consume(v, 2, UINT64_MAX, on_event, &s, NULL), 2);
	assert_int_equal(s.ids[0], 1);
	assert_int_equal(s.ids[1], 3);
	assert_int_equal(r[1].consumer, busy_at);
	/* Committed: it and what waited behind it come now, in their ring's order. */
	fake_commit(&r[1], busy_at);
	assert_int_equal(rings_consume(v, 2, UINT64_MAX, on_event, &s, NULL), 2);
	assert_int_equal(s.ids[2], 2);
	assert_int_equal(s.ids[3], 4);
}

/* Records past the end of the data area are read through its second mapping. */
static void test_records_across_the_end(void **state)
{
	static struct fake_ring r;
	struct seen s = {0};
	uint64_t id = 0, delivered = 0;

	(void)state;
	fake_init(&r);
	/* 40 bytes, discarded: the 32-byte records after it straddle the end now and then. */
	fake_put_n(&r, 0, 0, BPF_RINGBUF_DISCARD_BIT, 8);
	for (int round = 0; round < 80; round++) {
		for (int k = 0; k < 5; k++, id++)
			fake_put(&r, id + 1, id + 1, 0);
		s.n = 0;
		delivered += (uint64_t)rings_consume(&r.view, 1, UINT64_MAX, on_event, &s, NULL);
		for (unsigned k = 0; k < s.n; k++)
			assert_int_equal(s.ids[k], id - 5 + k + 1);
	}
	assert_int_equal(delivered, id);
	assert_true(r.consumer > 2 * DATA); /* went round more than twice */
}

/*
 * A ring with nothing now may still get an older event (its program took the time and has
 * not reserved yet): only events up to the drain's bound are delivered, the younger ones
 * wait, so the older event that lands meanwhile comes before them.
 */
static void test_younger_events_wait_for_the_next_drain(void **state)
{
	static struct fake_ring r[2];
	struct ring_view v[2];
	struct rings_stats st = {0};
	struct seen s = {0};
	const uint64_t want[] = {1, 2, 3, 4};

	(void)state;
	fake_rings(r, v, 2);
	fake_put(&r[0], 100, 1, 0);
	fake_put(&r[0], 300, 3, 0);
	fake_put(&r[0], 400, 4, 0);
	assert_int_equal(rings_consume(v, 2, 250, on_event, &s, &st), 1);
	/* CPU 1's event of t200 is reserved only now. */
	fake_put(&r[1], 200, 2, 0);
	assert_int_equal(rings_consume(v, 2, 500, on_event, &s, &st), 3);
	assert_memory_equal(s.ids, want, sizeof(want));
	assert_int_equal(st.late, 0);
	assert_int_equal(st.last_ts, 400);
	/* Held up longer than the bound allows for: delivered all the same, and counted. */
	fake_put(&r[1], 350, 5, 0);
	assert_int_equal(rings_consume(v, 2, 600, on_event, &s, &st), 1);
	assert_int_equal(s.ids[4], 5);
	assert_int_equal(st.late, 1);
	assert_int_equal(st.last_ts, 400);
}

/* Loads a program that writes one event of timestamp now and id 7 into ring @map_fd. */
static int load_writer(int map_fd)
{
	const struct bpf_insn insns[] = {
		/* the event on the stack: kind 0, ts (below), sock 7 */
		{.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -24, .imm = 0},
		{.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -8, .imm = 7},
		{.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_ktime_get_ns},
		{.code = BPF_STX | BPF_MEM | BPF_DW,
		 .dst_reg = BPF_REG_10,
		 .src_reg = BPF_REG_0,
		 .off = -16},
		/* bpf_ringbuf_output(map, stack - 24, 24, BPF_RB_FORCE_WAKEUP) */
		{.code = BPF_LD | BPF_IMM | BPF_DW,
		 .dst_reg = BPF_REG_1,
		 .src_reg = BPF_PSEUDO_MAP_FD,
		 .imm = map_fd},
		{0},
		{.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_10},
		{.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_2, .imm = -24},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 24},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K,
		 .dst_reg = BPF_REG_4,
		 .imm = BPF_RB_FORCE_WAKEUP},
		{.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_ringbuf_output},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "t_writer", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), NULL);
}

/*
 * A real ring written by a program: its wake-up makes the epoll fd readable; a drain right
 * after leaves the event (younger than RINGS_HOLD_NS) and the fd is not readable again, so
 * the loop does not spin on what waits; a drain after the hold delivers it, and the final
 * drain takes what was written just before it.
 */
static void test_real_ring_hold_and_drain_all(void **state)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "t_ring", 0, 0, 256u << 10, NULL);
	uint8_t pkt[64] = {0};
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = sizeof(pkt));
	struct epoll_event ev;
	struct seen s = {0};
	struct rings *r;
	int epfd, prog;

	(void)state;
	if (fd < 0) {
		if (geteuid() != 0)
			skip(); /* by hand, unprivileged */
		fail_msg("bpf_map_create(RINGBUF): %s", strerror(errno));
	}
	prog = load_writer(fd);
	if (prog < 0)
		fail_msg("loading the test's ring writer: %s", strerror(errno));
	r = rings__new(&fd, 1, 256u << 10);
	assert_non_null(r);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = rings_epoll_fd(r);
	assert_int_equal(epoll_ctl(epfd, EPOLL_CTL_ADD, rings_epoll_fd(r), &ev), 0);
	assert_int_equal(epoll_wait(epfd, &ev, 1, 0), 0);

	assert_int_equal(bpf_prog_test_run_opts(prog, &run), 0);
	assert_int_equal(epoll_wait(epfd, &ev, 1, 1000), 1);
	assert_int_equal(rings_drain(r, false, on_event, &s), 0);
	assert_int_equal(epoll_wait(epfd, &ev, 1, 0), 0);
	usleep(2 * RINGS_HOLD_NS / 1000);
	assert_int_equal(rings_drain(r, false, on_event, &s), 1);
	assert_int_equal(s.ids[0], 7);

	assert_int_equal(bpf_prog_test_run_opts(prog, &run), 0);
	assert_int_equal(rings_drain(r, true, on_event, &s), 1);
	assert_int_equal(s.n, 2);
	rings__free(r);
	close(epfd);
	close(prog);
	close(fd);
}

static void test_sizes_per_cpu(void **state)
{
	(void)state;
	assert_int_equal(rings_size_per_cpu(1), 4u << 20);
	assert_int_equal(rings_size_per_cpu(2), 2u << 20);
	assert_int_equal(rings_size_per_cpu(3), 1u << 20);
	assert_int_equal(rings_size_per_cpu(16), 256u << 10);
	assert_int_equal(rings_size_per_cpu(256), 256u << 10);
	assert_int_equal(rings_size_per_cpu(0), 4u << 20);
}

/* Real ring buffer maps, mapped by rings__new (needs the right to create BPF maps). */
static void test_real_maps_map_and_drain_empty(void **state)
{
	int fds[2];
	struct rings *r;
	struct seen s = {0};

	(void)state;
	for (int i = 0; i < 2; i++) {
		fds[i] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "t_ring", 0, 0, 256u << 10, NULL);
		if (fds[i] < 0) {
			if (geteuid() != 0)
				skip(); /* by hand, unprivileged */
			fail_msg("bpf_map_create(RINGBUF): %s", strerror(errno));
		}
	}
	r = rings__new(fds, 2, 256u << 10);
	assert_non_null(r);
	assert_true(rings_epoll_fd(r) >= 0);
	assert_int_equal(rings_drain(r, false, on_event, &s), 0);
	rings__free(r);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merged_by_time_each_ring_in_order),
		cmocka_unit_test(test_ring_order_kept_over_timestamps),
		cmocka_unit_test(test_consumer_published_in_steps),
		cmocka_unit_test(test_discarded_skipped_busy_holds_its_ring),
		cmocka_unit_test(test_records_across_the_end),
		cmocka_unit_test(test_younger_events_wait_for_the_next_drain),
		cmocka_unit_test(test_real_ring_hold_and_drain_all),
		cmocka_unit_test(test_sizes_per_cpu),
		cmocka_unit_test(test_real_maps_map_and_drain_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
