// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer harness for agent/protocols/http1.c, called directly (fuzz_l7_http1
 * drives it through its l7_parser): `make fuzz FUZZ=fuzz_http1`.
 *
 * Input: one mode byte, then records of [op][n][n bytes of data]. op bit 0
 * is the direction, bit 1 closes the connection after the chunk, bits 2-3
 * pick the captured part (all, a prefix, none), bits 4-7 scale the bytes
 * on the wire beyond the data. Every chunk is copied to a buffer of exactly
 * its captured size, so a read past it is caught.
 *
 * With mode bit 0 set, every chunk is fully captured and the stream is also
 * fed with consecutive same-direction chunks merged: when neither run met
 * garbage or a resync, both must emit the same exchanges.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/protocols/http1.h"

#define MAX_CHUNKS 512
#define MAX_X	   256

struct chunk {
	const uint8_t *data;
	uint32_t n;   /* data bytes available */
	uint32_t cap; /* captured */
	uint32_t len; /* on the wire */
	bool c2s;
	bool close;
};

struct run {
	struct http1_conn c;
	struct http1_stats st;
	int n;
	struct mt_exchange x[MAX_X];
};

static void check_str(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		abort();
}

static void on_exchange(void *ctx, const struct mt_exchange *x)
{
	struct run *r = ctx;
	bool unanswered;
	size_t tp;

	if (x->stage == MT_STAGE_REQUEST)
		return;

	check_str(x->method, sizeof(x->method));
	check_str(x->target, sizeof(x->target));
	check_str(x->host, sizeof(x->host));
	check_str(x->traceparent, sizeof(x->traceparent));
	check_str(x->tracestate, sizeof(x->tracestate));
	tp = strlen(x->traceparent);
	if ((tp != 0 && tp != MT_TRACEPARENT_LEN) || x->method[0] == '\0' || x->target[0] == '\0')
		abort();
	if (x->flags & ~(uint32_t)(MT_X_NO_RESPONSE | MT_X_REQ_TRUNCATED | MT_X_RESP_TRUNCATED |
				   MT_X_END_GUESSED))
		abort();
	/*
	 * Unanswered: the connection ended first, or the response may have gone by unseen in
	 * lost framing (end guessed, no response head: ends at the unread bytes).
	 */
	unanswered = (x->flags & MT_X_NO_RESPONSE) ||
		     ((x->flags & MT_X_END_GUESSED) && x->resp_start_ns == 0);
	if (unanswered ? x->status != 0 : (x->status < 100 || x->status > 999))
		abort();
	if (unanswered && !(x->flags & MT_X_NO_RESPONSE) && x->resp_end_ns < x->req_start_ns)
		abort();
	if (x->protocol != MT_PROTO_HTTP1)
		abort();
	if (r->n < MAX_X)
		r->x[r->n++] = *x;
}

static void feed_one(struct run *r, const struct chunk *ch, uint64_t ts)
{
	uint8_t *copy = malloc(ch->cap ? ch->cap : 1);
	struct mt_chunk mc;

	if (!copy)
		abort();
	memcpy(copy, ch->data, ch->cap);
	mc = (struct mt_chunk){.data = copy, .captured = ch->cap, .len = ch->len, .ts_ns = ts};
	http1_feed(&r->c, ch->c2s, &mc, on_exchange, r, &r->st);
	free(copy);
	if (r->c.count > HTTP1_PIPELINE_MAX)
		abort();
}

static bool same_exchange(const struct mt_exchange *a, const struct mt_exchange *b)
{
	return a->status == b->status && a->flags == b->flags &&
	       a->version_minor == b->version_minor && a->req_body_bytes == b->req_body_bytes &&
	       a->resp_body_bytes == b->resp_body_bytes && strcmp(a->method, b->method) == 0 &&
	       strcmp(a->target, b->target) == 0 && strcmp(a->host, b->host) == 0 &&
	       strcmp(a->traceparent, b->traceparent) == 0 &&
	       strcmp(a->tracestate, b->tracestate) == 0;
}

/* Feeds @chunks merged: runs of one direction, up to a close, become one chunk. */
static void feed_merged(struct run *r, const struct chunk *chunks, int n)
{
	static uint8_t buf[1 << 20];
	struct chunk m;

	for (int i = 0; i < n;) {
		size_t len = 0;
		int j = i;

		do {
			memcpy(buf + len, chunks[j].data, chunks[j].n);
			len += chunks[j].n;
		} while (!chunks[j++].close && j < n && chunks[j].c2s == chunks[i].c2s);
		m = (struct chunk){buf,		  (uint32_t)len, (uint32_t)len,
				   (uint32_t)len, chunks[i].c2s, chunks[j - 1].close};
		feed_one(r, &m, 1);
		if (m.close)
			http1_close(&r->c, 1, on_exchange, r, &r->st);
		i = j;
	}
	http1_close(&r->c, 1, on_exchange, r, &r->st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct chunk chunks[MAX_CHUNKS];
	static struct run a, b;
	bool diff;
	size_t pos = 1;
	int n = 0;

	if (size < 1 || size > (1 << 20))
		return 0;
	diff = data[0] & 1;
	while (pos + 2 <= size && n < MAX_CHUNKS) {
		uint8_t op = data[pos];
		uint32_t len = data[pos + 1];
		struct chunk *ch = &chunks[n++];

		pos += 2;
		if (len > size - pos)
			len = (uint32_t)(size - pos);
		ch->data = data + pos;
		ch->n = len;
		ch->c2s = op & 1;
		ch->close = op & 2;
		ch->cap = len;
		ch->len = len;
		if (!diff) {
			if (((op >> 2) & 3) == 1)
				ch->cap = len / 2;
			else if (((op >> 2) & 3) == 2)
				ch->cap = 0;
			ch->len = len + (uint32_t)(op >> 4) * (uint32_t)(op >> 4) * 997u;
		}
		pos += len;
	}

	memset(&a, 0, sizeof(a));
	http1_init(&a.c);
	for (int i = 0; i < n; i++) {
		feed_one(&a, &chunks[i], (uint64_t)i + 1);
		if (chunks[i].close)
			http1_close(&a.c, (uint64_t)i + 1, on_exchange, &a, &a.st);
	}
	http1_close(&a.c, (uint64_t)n + 1, on_exchange, &a, &a.st);
	if (a.c.count != 0)
		abort();
	if (!diff)
		return 0;

	memset(&b, 0, sizeof(b));
	http1_init(&b.c);
	feed_merged(&b, chunks, n);
	if (a.st.garbage_bytes || a.st.resyncs || b.st.garbage_bytes || b.st.resyncs)
		return 0;
	if (a.n != b.n)
		abort();
	for (int i = 0; i < a.n; i++) {
		if (!same_exchange(&a.x[i], &b.x[i]))
			abort();
	}
	return 0;
}
