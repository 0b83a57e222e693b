// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>

#include "agent/common/hashtab.h"

int hashtab_init(struct hashtab *t, uint32_t cap, uint32_t nbuckets)
{
	uint32_t n = 1;

	memset(t, 0, sizeof(*t));
	if (!nbuckets)
		nbuckets = cap > UINT32_MAX / 2 ? UINT32_MAX / 2 : 2 * cap;
	while (n < nbuckets && n < (1u << 31))
		n <<= 1;
	t->head = malloc((size_t)n * sizeof(*t->head));
	t->next = malloc((size_t)(cap ? cap : 1) * sizeof(*t->next));
	if (!t->head || !t->next) {
		hashtab_fini(t);
		return -ENOMEM;
	}
	t->mask = n - 1;
	t->cap = cap;
	hashtab_clear(t);
	return 0;
}

void hashtab_fini(struct hashtab *t)
{
	free(t->head);
	free(t->next);
	memset(t, 0, sizeof(*t));
	t->free_head = HT_NIL;
}

void hashtab_clear(struct hashtab *t)
{
	memset(t->head, 0xff, ((size_t)t->mask + 1) * sizeof(*t->head));
	t->used = 0;
	t->free_head = HT_NIL;
}

int lrulist_init(struct lrulist *l, uint32_t cap)
{
	size_t n = (size_t)(cap ? cap : 1) * sizeof(uint32_t);

	l->prev = malloc(n);
	l->next = malloc(n);
	l->head = l->tail = HT_NIL;
	if (!l->prev || !l->next) {
		lrulist_fini(l);
		return -ENOMEM;
	}
	return 0;
}

void lrulist_fini(struct lrulist *l)
{
	free(l->prev);
	free(l->next);
	l->prev = l->next = NULL;
	l->head = l->tail = HT_NIL;
}
