// SPDX-License-Identifier: Apache-2.0
/*
 * The hash table kit: slots come from the free list before untouched ones and
 * run out at the capacity, chains find every entry linked and lose the one
 * unlinked wherever it sits in its chain, the recency list keeps its order,
 * and the hash functions spread keys that differ in one bit or one place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/common/hashtab.h"

#define CAP 64

static uint64_t keys[CAP];

static uint32_t find(const struct hashtab *t, uint64_t key)
{
	uint32_t i;

	for (i = hashtab_first(t, hashtab_hash64(key)); i != HT_NIL; i = hashtab_next(t, i))
		if (keys[i] == key)
			return i;
	return HT_NIL;
}

static void test_slots_free_list_first_then_full(void **state)
{
	struct hashtab t;

	(void)state;
	assert_int_equal(hashtab_init(&t, 4, 0), 0);
	assert_int_equal(t.mask + 1, 8);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(hashtab_slot_alloc(&t), i);
	assert_int_equal(hashtab_slot_alloc(&t), HT_NIL);
	hashtab_slot_free(&t, 2);
	hashtab_slot_free(&t, 0);
	assert_int_equal(hashtab_slot_alloc(&t), 0); /* last freed, first reused */
	assert_int_equal(hashtab_slot_alloc(&t), 2);
	assert_int_equal(hashtab_slot_alloc(&t), HT_NIL);
	assert_int_equal(t.used, 4);
	hashtab_clear(&t);
	assert_int_equal(hashtab_slot_alloc(&t), 0);
	hashtab_fini(&t);
	hashtab_fini(&t); /* twice is harmless */
}

static void test_chains_link_find_unlink(void **state)
{
	struct hashtab t;

	(void)state;
	/* Two buckets for 64 entries: long chains, unlinks at their head, middle and tail. */
	assert_int_equal(hashtab_init(&t, CAP, 2), 0);
	for (uint32_t n = 0; n < CAP; n++) {
		uint32_t i = hashtab_slot_alloc(&t);

		keys[i] = 0xffff888100000000ull + n * 64;
		hashtab_link(&t, hashtab_hash64(keys[i]), i);
	}
	for (uint32_t i = 0; i < CAP; i++)
		assert_int_equal(find(&t, keys[i]), i);
	for (uint32_t i = 0; i < CAP; i += 3) {
		hashtab_unlink(&t, hashtab_hash64(keys[i]), i);
		hashtab_slot_free(&t, i);
	}
	hashtab_unlink(&t, hashtab_hash64(keys[0]), 0); /* not linked: no-op */
	for (uint32_t i = 0; i < CAP; i++)
		assert_int_equal(find(&t, keys[i]), i % 3 ? i : HT_NIL);
	assert_int_equal(find(&t, 12345), HT_NIL);
	hashtab_fini(&t);
}

static void test_lru_order(void **state)
{
	struct lrulist l;
	uint32_t order[4], n = 0;

	(void)state;
	assert_int_equal(lrulist_init(&l, 8), 0);
	assert_int_equal(l.head, HT_NIL);
	for (uint32_t i = 0; i < 4; i++)
		lrulist_push_head(&l, i); /* 3 2 1 0 */
	lrulist_touch(&l, 1);		  /* 1 3 2 0 */
	lrulist_touch(&l, 1);		  /* already at the head */
	lrulist_unlink(&l, 0);		  /* 1 3 2 */
	lrulist_push_head(&l, 0);	  /* 0 1 3 2 */
	for (uint32_t i = l.head; i != HT_NIL; i = lrulist_next(&l, i))
		order[n++] = i;
	assert_int_equal(n, 4);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 3);
	assert_int_equal(order[3], 2);
	assert_int_equal(l.tail, 2);
	assert_int_equal(lrulist_prev(&l, 2), 3);
	lrulist_unlink(&l, 2);
	lrulist_unlink(&l, 0);
	assert_int_equal(l.head, 1);
	assert_int_equal(l.tail, 3);
	lrulist_fini(&l);
}

static void test_hashes_spread(void **state)
{
	static const uint8_t a16[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
	uint8_t b16[16];
	unsigned hit[64] = {0};

	(void)state;
	/* Cache-line aligned pointers (low six bits zero) still fill the low bits used as buckets. */
	for (uint64_t n = 0; n < 64 * 64; n++)
		hit[hashtab_hash64(0xffff888100000000ull + n * 64) & 63]++;
	for (unsigned b = 0; b < 64; b++)
		assert_in_range(hit[b], 32, 96);
	/* Byte keys: the last byte, the length and the seed all count. */
	memcpy(b16, a16, 16);
	b16[15] = 2;
	assert_int_not_equal(hashtab_hash_bytes(a16, 16, 0), hashtab_hash_bytes(b16, 16, 0));
	assert_int_not_equal(hashtab_hash_bytes(a16, 16, 0), hashtab_hash_bytes(a16, 15, 0));
	assert_int_not_equal(hashtab_hash_bytes(a16, 16, 0), hashtab_hash_bytes(a16, 16, 80));
	assert_int_equal(hashtab_hash_bytes(a16, 16, 7), hashtab_hash_bytes(a16, 16, 7));
	/* Strings: where one ends counts. */
	assert_int_not_equal(
		hashtab_hash64(hashtab_str_step(hashtab_str_step(HASHTAB_STR_INIT, "ab"), "c")),
		hashtab_hash64(hashtab_str_step(hashtab_str_step(HASHTAB_STR_INIT, "a"), "bc")));
	assert_int_not_equal(hashtab_hash_str("nginx", 0), hashtab_hash_str("nginy", 0));
	assert_int_equal(hashtab_hash_str("nginx", 3), hashtab_hash_str("nginx", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots_free_list_first_then_full),
		cmocka_unit_test(test_chains_link_find_unlink),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_hashes_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
