// SPDX-License-Identifier: Apache-2.0
/*
 * HPACK decoding for an observer, on libnghttp2's inflater.
 * Spec: https://www.rfc-editor.org/rfc/rfc7541 (HPACK),
 *       https://www.rfc-editor.org/rfc/rfc9113#section-4.3 (header blocks in HTTP/2).
 *
 * In step with the encoder, blocks go to the inflater as they arrive. Once
 * the table is unknown ("partial"), a small walker reads each block's
 * representations (RFC 7541 section 6) without decoding strings, and
 * forwards to the inflater only what it can decode against the entries it
 * holds; see hpack.h for the rules. The walker never allocates; the inflater
 * allocates per literal field and per table entry, within the table size.
 */
#include <errno.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "agent/protocols/hpack.h"

/* Entries of the static table (RFC 7541 Appendix A). */
#define STATIC_ENTRIES 61
/* A longer name or value is refused by the inflater (NGHTTP2_HD_MAX_NV). */
#define STRING_MAX 65536
/* Integers of more continuation bytes than this are nonsense here (> 2^28). */
#define INT_BYTES_MAX 5

enum walker_state {
	W_OP = 0, /* first byte of a representation */
	W_INT,	  /* continuation bytes of its index or size */
	W_SLEN,	  /* first byte of a string length */
	W_SINT,	  /* continuation bytes of a string length */
	W_STR,	  /* string bytes */
};

enum rep_kind {
	R_INDEXED = 0, /* 1xxxxxxx */
	R_LIT_INC,     /* 01xxxxxx: literal, inserted into the table */
	R_SIZE,	       /* 001xxxxx: dynamic table size update */
	R_LIT,	       /* 0000xxxx / 0001xxxx: literal, not inserted */
};

/* A literal with incremental indexing, empty name and value: the smallest entry there is. */
static const uint8_t placeholder[] = {0x40, 0x00, 0x00};

static void set_bound(struct hpack_dec *d)
{
	if (d->inf && nghttp2_hd_inflate_change_table_size(d->inf, d->bound) == 0)
		d->bound_dirty = 0;
}

int hpack_dec_init(struct hpack_dec *d)
{
	memset(d, 0, sizeof(*d));
	d->bound = HPACK_BOUND_DEFAULT;
	if (nghttp2_hd_inflate_new(&d->inf) != 0) {
		d->inf = NULL;
		return -ENOMEM;
	}
	set_bound(d);
	return 0;
}

void hpack_dec_free(struct hpack_dec *d)
{
	if (d && d->inf) {
		nghttp2_hd_inflate_del(d->inf);
		d->inf = NULL;
	}
}

/* The table is unknown from here on: start again with an empty one, and walk. */
static void reset_table(struct hpack_dec *d)
{
	if (d->inf)
		nghttp2_hd_inflate_del(d->inf);
	if (nghttp2_hd_inflate_new(&d->inf) != 0)
		d->inf = NULL;
	set_bound(d);
	d->partial = 1;
	d->resets++;
}

/*
 * Hands @n bytes of the block to the inflater (@final: the block ends with
 * them). Returns false when the inflater refused them: the block is broken.
 */
static bool inflate(struct hpack_dec *d, const uint8_t *p, size_t n, bool final, hpack_field_fn fn,
		    void *ctx)
{
	static const uint8_t none[1];

	if (!p)
		p = none;
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(d->inf, &nv, &flags, p, n, final);

		if (rv < 0)
			return false;
		p += rv;
		n -= (size_t)rv;
		if ((flags & NGHTTP2_HD_INFLATE_EMIT) && nv.namelen > 0 && fn)
			fn(ctx, nv.name, nv.namelen, nv.value, nv.valuelen);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->inf);
			return true;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && n == 0)
			return true;
	}
}

static void forward(struct hpack_dec *d, const uint8_t *p, size_t n, hpack_field_fn fn, void *ctx)
{
	if (n && !inflate(d, p, n, false, fn, ctx))
		d->broken = 1;
}

static size_t table_entries(const struct hpack_dec *d)
{
	return nghttp2_hd_inflate_get_num_table_entries(d->inf);
}

/* The leading integer of a representation is complete: pass it on, or drop it. */
static void decide(struct hpack_dec *d, hpack_field_fn fn, void *ctx)
{
	uint32_t idx = d->ival;

	switch (d->rep) {
	case R_SIZE:
		if (d->fields || idx > HPACK_BOUND_MAX) {
			d->broken = 1; /* RFC 7541 4.2: only at the start of a block */
			return;
		}
		if (idx > d->bound) {
			d->bound = idx;
			set_bound(d);
		}
		forward(d, d->head, d->head_len, fn, ctx);
		d->wst = W_OP;
		return;
	case R_INDEXED:
		d->fields = 1;
		if (idx == 0) {
			d->broken = 1;
			return;
		}
		if (idx <= table_entries(d))
			forward(d, d->head, d->head_len, fn, ctx);
		else
			d->dropped = 1;
		d->wst = W_OP;
		return;
	default:
		d->fields = 1;
		d->name_str = idx == 0;
		d->pass = idx <= table_entries(d);
		if (d->pass) {
			forward(d, d->head, d->head_len, fn, ctx);
		} else {
			d->dropped = 1;
			/* Its entry is unknown, but it takes a place in the table. */
			if (d->rep == R_LIT_INC)
				forward(d, placeholder, sizeof(placeholder), fn, ctx);
		}
		d->wst = W_SLEN;
		return;
	}
}

/* A string length is complete. */
static void string_begins(struct hpack_dec *d, hpack_field_fn fn, void *ctx)
{
	if (d->ival > STRING_MAX) {
		d->broken = 1;
		return;
	}
	if (d->pass)
		forward(d, d->head, d->head_len, fn, ctx);
	d->left = d->ival;
	d->wst = W_STR;
}

static void string_ends(struct hpack_dec *d)
{
	if (d->name_str) {
		d->name_str = 0;
		d->wst = W_SLEN;
	} else {
		d->wst = W_OP;
	}
}

/* Appends a continuation byte of an integer; false when it is implausibly long. */
static bool int_byte(struct hpack_dec *d, uint8_t b)
{
	if (d->head_len >= 1 + INT_BYTES_MAX)
		return false;
	d->head[d->head_len++] = b;
	d->ival += (uint32_t)(b & 0x7f) << d->ishift;
	d->ishift = (uint8_t)(d->ishift + 7);
	return true;
}

/* Starts an integer with a @prefix-bit prefix in @b; true when it is already complete. */
static bool int_first(struct hpack_dec *d, uint8_t b, unsigned prefix)
{
	uint8_t mask = (uint8_t)((1u << prefix) - 1);

	d->head[0] = b;
	d->head_len = 1;
	d->ishift = 0;
	d->ival = b & mask;
	return d->ival < mask;
}

static void walk(struct hpack_dec *d, const uint8_t *p, size_t n, hpack_field_fn fn, void *ctx)
{
	size_t i = 0;

	while (i < n && !d->broken) {
		uint8_t b = p[i];
		size_t k;

		switch (d->wst) {
		case W_OP:
			i++;
			if (b & 0x80) {
				d->rep = R_INDEXED;
				k = 7;
			} else if (b & 0x40) {
				d->rep = R_LIT_INC;
				k = 6;
			} else if (b & 0x20) {
				d->rep = R_SIZE;
				k = 5;
			} else {
				d->rep = R_LIT;
				k = 4;
			}
			d->pass = 1;
			if (int_first(d, b, (unsigned)k))
				decide(d, fn, ctx);
			else
				d->wst = W_INT;
			break;
		case W_INT:
			i++;
			if (!int_byte(d, b))
				d->broken = 1;
			else if (!(b & 0x80))
				decide(d, fn, ctx);
			break;
		case W_SLEN:
			i++;
			if (int_first(d, b, 7))
				string_begins(d, fn, ctx);
			else
				d->wst = W_SINT;
			break;
		case W_SINT:
			i++;
			if (!int_byte(d, b))
				d->broken = 1;
			else if (!(b & 0x80))
				string_begins(d, fn, ctx);
			break;
		default: /* W_STR */
			k = n - i < d->left ? n - i : d->left;
			if (d->pass)
				forward(d, p + i, k, fn, ctx);
			i += k;
			d->left -= (uint32_t)k;
			break;
		}
		if (d->wst == W_STR && d->left == 0 && !d->broken)
			string_ends(d);
	}
}

void hpack_dec_begin(struct hpack_dec *d)
{
	if (d->in_block) /* the last block never ended: it cannot be trusted */
		hpack_dec_lost(d);
	d->in_block = 1;
	d->fields = 0;
	d->dropped = 0;
	d->broken = d->inf == NULL;
	d->wst = W_OP;
	d->left = 0;
	if (d->bound_dirty)
		set_bound(d);
}

void hpack_dec_feed(struct hpack_dec *d, const uint8_t *p, size_t n, hpack_field_fn fn, void *ctx)
{
	if (!d->in_block || d->broken || n == 0)
		return;
	if (d->partial)
		walk(d, p, n, fn, ctx);
	else if (!inflate(d, p, n, false, fn, ctx))
		d->broken = 1;
}

void hpack_dec_gap(struct hpack_dec *d)
{
	if (d->in_block)
		d->broken = 1;
}

bool hpack_dec_end(struct hpack_dec *d, hpack_field_fn fn, void *ctx)
{
	bool ok;

	if (!d->in_block)
		return false;
	d->in_block = 0;
	if (!d->broken && d->partial && d->wst != W_OP)
		d->broken = 1; /* the block ended inside a representation */
	if (!d->broken && !inflate(d, NULL, 0, true, fn, ctx))
		d->broken = 1;
	if (d->broken) {
		reset_table(d);
		return false;
	}
	ok = !d->dropped;
	return ok;
}

void hpack_dec_lost(struct hpack_dec *d)
{
	d->in_block = 0;
	d->broken = 0;
	reset_table(d);
}

void hpack_dec_allow(struct hpack_dec *d, uint32_t size)
{
	if (size > HPACK_BOUND_MAX)
		size = HPACK_BOUND_MAX;
	if (size > d->bound) {
		d->bound = size;
		d->bound_dirty = 1;
	}
}
