// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for one protocol parser, driven through its l7_parser
 * (agent/protocols/l7.h) as the connection stage drives it. Built once per
 * protocol: -DFUZZ_PROTO=MT_PROTO_REDIS gives fuzz_l7_redis (see the Makefile).
 *
 * Input: one mode byte, then records [op][len, 2 bytes little-endian][len
 * bytes]. op bit 0 is the direction (1: client to server), bit 1 closes the
 * connection after the chunk (a new one starts), bits 2-3 pick the captured
 * part (all, half, none, all but the last byte), bits 4-7 add uncaptured
 * bytes on the wire (a gap). Every chunk is copied to a buffer of exactly its
 * captured size and the state lives in one of exactly state_size, so ASan
 * sees any read or write past them.
 *
 * Mode bit 0: like the connection stage, feed nothing until the detector
 * accepts a chunk in the direction it names. Mode bit 1: when the parser says
 * it is idle, release its state and start again at the next chunk (what the
 * connection stage does to quiet connections).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/protocols/l7.h"
#include "tests/fuzz/fuzz_check.h"

#ifndef FUZZ_PROTO
#error "define FUZZ_PROTO (an enum mt_protocol)"
#endif

struct run {
	const struct l7_parser *p;
	void *state;
	bool started;
	uint64_t emitted;
	struct l7_stats st;
};

static void on_exchange(void *ctx, const struct mt_exchange *x)
{
	struct run *r = ctx;

	fuzz_check_exchange(x, r->p->protocol);
	r->emitted++;
}

/*
 * One allocation of exactly state_size, kept across inputs: allocating ~100
 * KB (HTTP/2) per connection cost more than the parsing.
 */
static void conn_start(struct run *r)
{
	static void *state;

	if (!state && !(state = malloc(r->p->state_size)))
		abort();
	r->state = state;
	memset(r->state, 0, r->p->state_size);
	r->p->init(r->state);
	r->started = false;
}

static void conn_end(struct run *r, uint64_t ts)
{
	if (r->started)
		r->p->close(r->state, ts, on_exchange, r, &r->st);
	if (r->p->release)
		r->p->release(r->state);
	r->state = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run r;
	bool gate, reclaim;
	size_t pos = 1;
	uint64_t ts = 1;

	if (size < 1 || size > (1 << 20))
		return 0;
	memset(&r, 0, sizeof(r));
	r.p = l7_parser_for(FUZZ_PROTO);
	if (!r.p)
		abort();
	gate = data[0] & 1;
	reclaim = data[0] & 2;
	conn_start(&r);
	while (pos + 3 <= size) {
		uint8_t op = data[pos];
		uint32_t len = (uint32_t)data[pos + 1] | (uint32_t)data[pos + 2] << 8;
		bool c2s = op & 1;
		uint32_t cap, wire;
		struct mt_chunk ch;
		uint8_t *copy;

		pos += 3;
		if (len > size - pos)
			len = (uint32_t)(size - pos);
		cap = len;
		switch ((op >> 2) & 3) {
		case 1:
			cap = len / 2;
			break;
		case 2:
			cap = 0;
			break;
		case 3:
			cap = len ? len - 1 : 0;
			break;
		}
		wire = len + (uint32_t)(op >> 4) * (uint32_t)(op >> 4) * 997u;
		copy = malloc(cap ? cap : 1);
		if (!copy)
			abort();
		memcpy(copy, data + pos, cap);
		pos += len;
		ts += 1000;

		if (!r.started && gate) {
			enum l7_verdict v = r.p->detect(copy, cap);

			if (v == L7_FROM_CLIENT && c2s)
				r.started = true;
			else if (v == L7_FROM_SERVER && !c2s)
				r.started = true;
		} else {
			(void)r.p->detect(copy, cap);
			r.started = true;
		}
		if (r.started) {
			ch = (struct mt_chunk){.data = copy,
					       .captured = cap,
					       .len = wire,
					       .seq = (uint32_t)pos,
					       .ts_ns = ts};
			r.p->feed(r.state, c2s, &ch, on_exchange, &r, &r.st);
		}
		free(copy);
		if (op & 2) {
			conn_end(&r, ts);
			conn_start(&r);
		} else if (reclaim && r.started && r.p->idle && r.p->idle(r.state)) {
			/* Between messages: the state goes, the next chunk starts afresh. */
			if (r.p->release)
				r.p->release(r.state);
			conn_start(&r);
		}
	}
	conn_end(&r, ts + 1);
	if (r.st.exchanges > r.emitted)
		abort();
	return 0;
}
