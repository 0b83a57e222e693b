/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HPACK header-block decoding for an observer (RFC 7541), on libnghttp2's
 * inflater. One decoder per direction of an HTTP/2 connection.
 *
 * An observer may miss bytes: a gap inside a header block, or a connection
 * first seen mid-stream, leaves the dynamic table unknown. The decoder then
 * starts again with an empty table and walks each later block itself before
 * the inflater sees it: fields that reference entries it does not have are
 * dropped, an entry inserted under a name it does not know is replaced by a
 * minimal placeholder (so the indices of later entries still line up), and
 * everything else (static-table references, literals, entries inserted since
 * the loss) still decodes. A table we hold is never larger than the
 * encoder's, so it never evicts an entry the encoder may still reference.
 *
 * Table sizes: the inflater follows the encoder's dynamic table size
 * updates; SETTINGS_HEADER_TABLE_SIZE only raises the largest size accepted
 * (an observer need not police the limit, and must not fail when it missed
 * the SETTINGS frame).
 */
#ifndef MESHTRACE_HPACK_H
#define MESHTRACE_HPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Table sizes accepted from an encoder before any SETTINGS, and at most ever. */
#define HPACK_BOUND_DEFAULT (64u * 1024)
#define HPACK_BOUND_MAX	    (1u << 20)

struct nghttp2_hd_inflater;

/* One decoded field; names are lower case (RFC 9113 8.2.1). Valid during the call only. */
typedef void (*hpack_field_fn)(void *ctx, const uint8_t *name, size_t namelen, const uint8_t *value,
			       size_t valuelen);

/* The decoder's state. Opaque to callers. */
struct hpack_dec {
	struct nghttp2_hd_inflater *inf; /* NULL: out of memory, nothing decodes */
	uint32_t bound;			 /* largest table size accepted from the encoder */
	uint32_t left;			 /* string bytes still to pass or skip (walker) */
	uint32_t ival;			 /* integer being read (walker) */
	uint8_t ishift;
	uint8_t wst;	     /* walker state */
	uint8_t rep;	     /* kind of the representation being read (walker) */
	uint8_t head_len;    /* bytes in head */
	uint8_t head[8];     /* bytes held back until the walker decides (walker) */
	uint8_t pass;	     /* the representation being read goes to the inflater */
	uint8_t name_str;    /* the string being read is a name (walker) */
	uint8_t partial;     /* the table may lack the encoder's older entries: walk */
	uint8_t in_block;    /* a block has begun and not ended */
	uint8_t fields;	     /* a field was read in this block */
	uint8_t dropped;     /* a field of this block could not be decoded */
	uint8_t broken;	     /* the rest of this block cannot be read */
	uint8_t bound_dirty; /* bound changed: tell the inflater at the next block */
	uint32_t resets;     /* times the table was found unknown */
};

/* Zeroes @d and creates its inflater. 0, or -ENOMEM (@d then decodes nothing). */
int hpack_dec_init(struct hpack_dec *d);

/* Frees what init created; @d may be zeroed or already freed. */
void hpack_dec_free(struct hpack_dec *d);

/* A header block begins (HEADERS or PUSH_PROMISE). */
void hpack_dec_begin(struct hpack_dec *d);

/* Captured bytes of the current block's fragment; decoded fields go to @fn. */
void hpack_dec_feed(struct hpack_dec *d, const uint8_t *p, size_t n, hpack_field_fn fn, void *ctx);

/* Bytes of the current block were not captured: its rest, and the table, are lost. */
void hpack_dec_gap(struct hpack_dec *d);

/*
 * The block ended (END_HEADERS). Returns true when every field of it was
 * decoded; false when some were dropped or lost (the fields already passed
 * to @fn stand).
 */
bool hpack_dec_end(struct hpack_dec *d, hpack_field_fn fn, void *ctx);

/* Framing was lost: whatever blocks passed unseen, the table is unknown. */
void hpack_dec_lost(struct hpack_dec *d);

/* The peer announced SETTINGS_HEADER_TABLE_SIZE @size for this direction's encoder. */
void hpack_dec_allow(struct hpack_dec *d, uint32_t size);

#endif /* MESHTRACE_HPACK_H */
