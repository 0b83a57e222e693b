/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The harness the database and cache parser tests share: one connection's
 * parser state with its exchanges recorded, chunks fed with a TCP sequence
 * number per direction (and gaps: fewer bytes captured than moved), and
 * recorded sessions played with every message cut at a given split.
 *
 * Before including, define the parser: L7H_STATE (its state type), L7H_INIT,
 * L7H_FEED and L7H_CLOSE (its functions); REC_MAX (exchanges kept) is
 * optional. Everything here is static inline: a test uses what it needs.
 */
#ifndef MESHTRACE_TESTS_L7_HARNESS_H
#define MESHTRACE_TESTS_L7_HARNESS_H

#ifndef REC_MAX
#define REC_MAX 256
#endif
#define C2S true
#define S2C false

/* One message of a recorded session. */
struct msg {
	bool c2s;
	const char *data;
	size_t len;
};

#define M(dir, s)                     \
	{                             \
		dir, s, sizeof(s) - 1 \
	}

struct harness {
	L7H_STATE c;
	struct l7_stats st;
	int n;
	int announced;	 /* MT_STAGE_REQUEST exchanges */
	uint32_t seq[2]; /* TCP sequence number of the next byte, per direction */
	struct mt_exchange x[REC_MAX];
};

static inline void on_exchange(void *ctx, const struct mt_exchange *x)
{
	struct harness *h = ctx;

	if (x->stage == MT_STAGE_REQUEST) {
		assert_int_not_equal(x->req_seq, 0);
		h->announced++;
		return;
	}
	assert_true(h->n < REC_MAX);
	h->x[h->n++] = *x;
}

/* Every exchange has its own request sequence number, announced before it was done. */
static inline void assert_seqs(const struct harness *h)
{
	assert_true(h->announced >= h->n);
	for (int i = 0; i < h->n; i++) {
		assert_int_not_equal(h->x[i].req_seq, 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(h->x[i].req_seq, h->x[j].req_seq);
	}
}

static inline struct harness *harness_new(void)
{
	struct harness *h = test_calloc(1, sizeof(*h));

	assert_non_null(h);
	L7H_INIT(&h->c);
	return h;
}

static inline void harness_reset(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	L7H_INIT(&h->c);
}

/* Feeds @len bytes moved of which the first @cap were captured. */
static inline void feed_gap(struct harness *h, bool c2s, const void *data, size_t cap, size_t len,
			    uint64_t ts)
{
	uint8_t *copy = malloc(cap ? cap : 1);
	struct mt_chunk ch;

	assert_non_null(copy);
	if (cap)
		memcpy(copy, data, cap);
	if (!h->seq[c2s])
		h->seq[c2s] = c2s ? 1000 : 7000000; /* each direction's first sequence number */
	ch = (struct mt_chunk){.data = copy,
			       .captured = (uint32_t)cap,
			       .len = (uint32_t)len,
			       .seq = h->seq[c2s],
			       .ts_ns = ts};
	h->seq[c2s] += (uint32_t)len;
	L7H_FEED(&h->c, c2s, &ch, on_exchange, h, &h->st);
	free(copy);
}

static inline void feed(struct harness *h, bool c2s, const void *data, size_t n, uint64_t ts)
{
	feed_gap(h, c2s, data, n, n, ts);
}

static inline void feed_str(struct harness *h, bool c2s, const char *s, uint64_t ts)
{
	feed(h, c2s, s, strlen(s), ts);
}

static inline void close_conn(struct harness *h, uint64_t ts)
{
	L7H_CLOSE(&h->c, ts, on_exchange, h, &h->st);
}

/* Feeds a recorded session, each message cut at @split (0: whole); ts = index + 1. */
static inline void play(struct harness *h, const struct msg *m, size_t n, size_t split)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = split && split < m[i].len ? split : m[i].len;

		feed(h, m[i].c2s, m[i].data, k, i + 1);
		if (k < m[i].len)
			feed(h, m[i].c2s, m[i].data + k, m[i].len - k, i + 1);
	}
}

#define PLAY(h, s, split) play(h, s, sizeof(s) / sizeof(s[0]), split)

#endif /* MESHTRACE_TESTS_L7_HARNESS_H */
