/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded chained hash table over caller-owned entries, a recency list
 * for the tables that evict the least recently used entry, and the hash
 * functions every table of the agent uses.
 *
 * The caller keeps its entries in an array of @cap records and names them by
 * index; the table holds only the chains: a power-of-two array of bucket
 * heads and one link per entry. It never compares keys: a lookup walks one
 * chain and the caller tests each entry itself, so no call through a
 * function pointer is made per probe:
 *
 *	for (i = hashtab_first(&t, h); i != HT_NIL; i = hashtab_next(&t, i))
 *		if (entries[i].key == key)
 *			return i;
 *
 * An entry may sit in more than one table (one key each, e.g. a socket by its
 * address and by its 4-tuple): each table has its own links. Slots come from
 * hashtab_slot_alloc(): the free list first, then slots never used (calloc'd
 * entry arrays cost no memory until touched); the free list runs through the
 * links of unhashed slots. Nothing here allocates after hashtab_init(), and
 * nothing takes a lock.
 */
#ifndef MESHTRACE_HASHTAB_H
#define MESHTRACE_HASHTAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HT_NIL UINT32_MAX

struct hashtab {
	uint32_t *head; /* mask + 1 chain heads */
	uint32_t *next; /* cap links: its chain while hashed, the free list while free */
	uint32_t mask;
	uint32_t cap;
	uint32_t used;	    /* slots handed out at least once: 0..used-1 */
	uint32_t free_head; /* slots given back, through next[] */
};

/*
 * Sets up @t for entries 0..@cap-1 with at least @nbuckets buckets (rounded
 * up to a power of two; 0 means 2 * @cap). Returns 0, or -ENOMEM with @t
 * left empty (hashtab_fini() is still safe).
 */
int hashtab_init(struct hashtab *t, uint32_t cap, uint32_t nbuckets);
/* Frees the chains (not the entries). Safe on a zeroed or failed table. */
void hashtab_fini(struct hashtab *t);
/* Empties the table and its free list: every slot is unused again. */
void hashtab_clear(struct hashtab *t);

/* The first entry of @hash's chain, or HT_NIL. */
static inline uint32_t hashtab_first(const struct hashtab *t, uint32_t hash)
{
	return t->head[hash & t->mask];
}

/* The entry after @i in its chain, or HT_NIL. */
static inline uint32_t hashtab_next(const struct hashtab *t, uint32_t i)
{
	return t->next[i];
}

/* Puts entry @i at the head of @hash's chain; it must not be in this table already. */
static inline void hashtab_link(struct hashtab *t, uint32_t hash, uint32_t i)
{
	uint32_t *head = &t->head[hash & t->mask];

	t->next[i] = *head;
	*head = i;
}

/* Takes entry @i out of @hash's chain (the hash it was linked with); no-op if absent. */
static inline void hashtab_unlink(struct hashtab *t, uint32_t hash, uint32_t i)
{
	uint32_t *pp = &t->head[hash & t->mask];

	while (*pp != HT_NIL && *pp != i)
		pp = &t->next[*pp];
	if (*pp == i)
		*pp = t->next[i];
}

/* A slot not in use: a freed one, else one never used. HT_NIL when all @cap are in use. */
static inline uint32_t hashtab_slot_alloc(struct hashtab *t)
{
	uint32_t i = t->free_head;

	if (i != HT_NIL) {
		t->free_head = t->next[i];
		return i;
	}
	return t->used < t->cap ? t->used++ : HT_NIL;
}

/* Gives slot @i back; it must be unlinked (its link now carries the free list). */
static inline void hashtab_slot_free(struct hashtab *t, uint32_t i)
{
	t->next[i] = t->free_head;
	t->free_head = i;
}

/*
 * A recency list over the same kind of entries (most recent at the head), for
 * tables that evict the least recently used entry when full or idle.
 */
struct lrulist {
	uint32_t *prev;
	uint32_t *next;
	uint32_t head; /* most recent, HT_NIL when empty */
	uint32_t tail; /* least recent */
};

/* Sets up an empty list for entries 0..@cap-1. Returns 0 or -ENOMEM (lrulist_fini() safe). */
int lrulist_init(struct lrulist *l, uint32_t cap);
void lrulist_fini(struct lrulist *l);

/* The entry more recent than @i, or HT_NIL. */
static inline uint32_t lrulist_prev(const struct lrulist *l, uint32_t i)
{
	return l->prev[i];
}

/* The entry less recent than @i, or HT_NIL. */
static inline uint32_t lrulist_next(const struct lrulist *l, uint32_t i)
{
	return l->next[i];
}

/* Takes @i out of the list; it must be in it. */
static inline void lrulist_unlink(struct lrulist *l, uint32_t i)
{
	if (l->prev[i] != HT_NIL)
		l->next[l->prev[i]] = l->next[i];
	else
		l->head = l->next[i];
	if (l->next[i] != HT_NIL)
		l->prev[l->next[i]] = l->prev[i];
	else
		l->tail = l->prev[i];
	l->prev[i] = l->next[i] = HT_NIL;
}

/* Puts @i, not in the list, at its head. */
static inline void lrulist_push_head(struct lrulist *l, uint32_t i)
{
	l->prev[i] = HT_NIL;
	l->next[i] = l->head;
	if (l->head != HT_NIL)
		l->prev[l->head] = i;
	l->head = i;
	if (l->tail == HT_NIL)
		l->tail = i;
}

/* Moves @i, in the list, to its head. */
static inline void lrulist_touch(struct lrulist *l, uint32_t i)
{
	if (l->head != i) {
		lrulist_unlink(l, i);
		lrulist_push_head(l, i);
	}
}

/* ---- hash functions: spread every input bit over the low bits used as the bucket ---- */

/* A 64-bit key (pointers, packed ids): the murmur3 finaliser. */
static inline uint32_t hashtab_hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (uint32_t)x;
}

/*
 * @n bytes (addresses, tuples, names), eight at a time, chained through
 * @seed so a key of several parts hashes part by part.
 */
static inline uint32_t hashtab_hash_bytes(const void *p, size_t n, uint32_t seed)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ (uint64_t)n * 0x9E3779B97F4A7C15ull;
	uint64_t w;

	for (; n >= 8; b += 8, n -= 8) {
		memcpy(&w, b, 8);
		h = ((h << 5 | h >> 59) ^ w) * 0x9E3779B97F4A7C15ull;
	}
	if (n) {
		w = 0;
		memcpy(&w, b, n);
		h = ((h << 5 | h >> 59) ^ w) * 0x9E3779B97F4A7C15ull;
	}
	return hashtab_hash64(h);
}

/*
 * Strings, in one pass (no strlen): FNV-1a over the bytes and the terminator
 * (so "ab","c" and "a","bc" differ), then the finaliser. A key of several
 * strings steps through each from HASHTAB_STR_INIT and is finished once:
 *
 *	h = hashtab_str_step(hashtab_str_step(HASHTAB_STR_INIT ^ n, a), b);
 *	return hashtab_hash64(h);
 */
#define HASHTAB_STR_INIT 0xcbf29ce484222325ull

static inline uint64_t hashtab_str_step(uint64_t h, const char *s)
{
	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return h * 0x100000001b3ull;
}

/* One NUL-terminated string (names, methods, addresses). */
static inline uint32_t hashtab_hash_str(const char *s, uint32_t seed)
{
	return hashtab_hash64(hashtab_str_step(HASHTAB_STR_INIT ^ seed, s));
}

#endif /* MESHTRACE_HASHTAB_H */
