// SPDX-License-Identifier: Apache-2.0
/*
 * The pods of this node by IP (contract in k8s_pods.h). Entries by sandbox
 * id (chained hash); the IP index is open addressing, rebuilt whole after
 * any change (at most a list or a status answer at a time, off the hot
 * path), so it needs no tombstones and a lookup stops at the first empty
 * bucket.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "agent/common/hashtab.h"
#include "agent/common/util.h"
#include "agent/identity/k8s_pods.h"

#define ID_BUCKETS 1024 /* a power of two, twice K8S_PODS_MAX */
#define MISS_PROBE 8

enum pod_state {
	POD_FREE = 0,
	POD_ASK,   /* its IPs are to be asked (at retry_ns) */
	POD_ASKED, /* PodSandboxStatus in flight */
	POD_READY, /* in the IP index */
	POD_GONE,  /* not listed any more: out of the index, kept for the grace */
};

struct pod_entry {
	uint8_t state;
	bool seen; /* in the list being read */
	uint16_t gen;
	uint32_t next; /* id chain, or free list */
	uint64_t retry_ns;
	uint64_t gone_ns;
	char sandbox_id[65];
	struct k8s_pod pod;
};

struct ip_bucket {
	uint8_t addr[16];
	uint16_t pod; /* slot + 1; 0: empty */
};

struct miss {
	uint8_t addr[16];
	uint64_t until_ns; /* 0: empty */
};

struct k8s_pods {
	struct pod_entry entries[K8S_PODS_MAX];
	uint32_t id_buckets[ID_BUCKETS];
	uint32_t free_head;
	struct ip_bucket ips[K8S_PODS_IP_BUCKETS];
	struct miss misses[K8S_PODS_MISSES_MAX];
	bool want_list; /* a miss since the last list */
	bool index_dirty;
	uint64_t last_list_ns;
	struct k8s_pods_stats stats;
};

static uint32_t id_bucket(const char *id)
{
	return hashtab_hash_str(id, 0) & (ID_BUCKETS - 1);
}

static uint32_t addr_hash(const uint8_t addr[16])
{
	uint64_t a, b;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	return hashtab_hash64(a * 0x9e3779b97f4a7c15ull ^ b);
}

struct k8s_pods *k8s_pods__new(void)
{
	struct k8s_pods *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	for (uint32_t i = 0; i < ID_BUCKETS; i++)
		p->id_buckets[i] = NIL;
	for (uint32_t i = 0; i < K8S_PODS_MAX; i++)
		p->entries[i].next = i + 1 < K8S_PODS_MAX ? i + 1 : NIL;
	p->free_head = 0;
	return p;
}

void k8s_pods__free(struct k8s_pods *p)
{
	free(p);
}

static bool is_loopback_or_zero(const uint8_t a[16])
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t zero[16];

	if (!memcmp(a, v4mapped, 12))
		return a[12] == 127 || !memcmp(a + 12, zero, 4);
	return !memcmp(a, zero, 15) && (a[15] == 0 || a[15] == 1);
}

/* Remembers @addr as a miss: true when it was not one already (a list is wanted). */
static bool note_miss(struct k8s_pods *p, const uint8_t addr[16], uint64_t now_ns)
{
	uint32_t h = addr_hash(addr), oldest = NIL;
	uint64_t oldest_until = UINT64_MAX;

	for (uint32_t k = 0; k < MISS_PROBE; k++) {
		uint32_t i = (h + k) & (K8S_PODS_MISSES_MAX - 1);
		struct miss *m = &p->misses[i];

		if (m->until_ns && !memcmp(m->addr, addr, 16)) {
			if (now_ns < m->until_ns)
				return false;
			m->until_ns = now_ns + K8S_PODS_MISS_NS;
			return true;
		}
		if (m->until_ns < oldest_until) {
			oldest_until = m->until_ns;
			oldest = i;
		}
	}
	memcpy(p->misses[oldest].addr, addr, 16);
	p->misses[oldest].until_ns = now_ns + K8S_PODS_MISS_NS;
	return true;
}

uint16_t k8s_pods_find(struct k8s_pods *p, const uint8_t addr[16], uint64_t now_ns, uint16_t *gen)
{
	uint32_t h;

	if (!p || is_loopback_or_zero(addr))
		return 0;
	h = addr_hash(addr);
	for (uint32_t k = 0; k < K8S_PODS_IP_BUCKETS; k++) {
		const struct ip_bucket *b = &p->ips[(h + k) & (K8S_PODS_IP_BUCKETS - 1)];

		if (!b->pod)
			break;
		if (!memcmp(b->addr, addr, 16)) {
			p->stats.hits++;
			*gen = p->entries[b->pod - 1].gen;
			return b->pod;
		}
	}
	if (note_miss(p, addr, now_ns)) {
		p->stats.misses++;
		p->want_list = true;
	}
	return 0;
}

const struct k8s_pod *k8s_pods_get(const struct k8s_pods *p, uint16_t handle, uint16_t gen)
{
	const struct pod_entry *e;

	if (!p || !handle || handle > K8S_PODS_MAX)
		return NULL;
	e = &p->entries[handle - 1];
	if (e->gen != gen || (e->state != POD_READY && e->state != POD_GONE))
		return NULL;
	return &e->pod;
}

static void index_rebuild(struct k8s_pods *p)
{
	memset(p->ips, 0, sizeof(p->ips));
	for (uint32_t i = 0; i < K8S_PODS_MAX; i++) {
		const struct pod_entry *e = &p->entries[i];

		if (e->state != POD_READY)
			continue;
		for (unsigned a = 0; a < e->pod.n_ips; a++) {
			uint32_t h = addr_hash(e->pod.ips[a]);

			for (uint32_t k = 0; k < K8S_PODS_IP_BUCKETS; k++) {
				struct ip_bucket *b = &p->ips[(h + k) & (K8S_PODS_IP_BUCKETS - 1)];

				if (b->pod && memcmp(b->addr, e->pod.ips[a], 16))
					continue;
				/* Two live sandboxes with one IP: the runtime's view is mid-change; the later wins. */
				memcpy(b->addr, e->pod.ips[a], 16);
				b->pod = (uint16_t)(i + 1);
				break;
			}
		}
	}
	p->index_dirty = false;
}

bool k8s_pods_list_due(const struct k8s_pods *p, uint64_t now_ns)
{
	if (!p->last_list_ns)
		return true;
	if (now_ns >= p->last_list_ns + K8S_PODS_REFRESH_NS)
		return true;
	return p->want_list && now_ns >= p->last_list_ns + K8S_PODS_LIST_MIN_NS;
}

void k8s_pods_list_sent(struct k8s_pods *p, uint64_t now_ns)
{
	if (p->want_list && p->last_list_ns && now_ns < p->last_list_ns + K8S_PODS_REFRESH_NS)
		p->stats.early_lists++;
	p->last_list_ns = now_ns ? now_ns : 1;
	p->want_list = false;
}

void k8s_pods_list_begin(struct k8s_pods *p)
{
	for (uint32_t i = 0; i < K8S_PODS_MAX; i++)
		p->entries[i].seen = false;
}

static struct pod_entry *find_sandbox(struct k8s_pods *p, const char *id)
{
	for (uint32_t i = p->id_buckets[id_bucket(id)]; i != NIL; i = p->entries[i].next)
		if (p->entries[i].state != POD_GONE && !strcmp(p->entries[i].sandbox_id, id))
			return &p->entries[i];
	return NULL;
}

void k8s_pods_list_item(struct k8s_pods *p, const char *sandbox_id, const struct k8s_pod_in *in)
{
	struct k8s_meta m;
	struct pod_entry *e;
	uint32_t slot, b;

	if (!sandbox_id || !sandbox_id[0] || strlen(sandbox_id) >= sizeof(e->sandbox_id))
		return;
	e = find_sandbox(p, sandbox_id);
	if (e) {
		e->seen = true;
		return;
	}
	if (p->free_head == NIL) {
		p->stats.full++;
		return;
	}
	slot = p->free_head;
	e = &p->entries[slot];
	p->free_head = e->next;
	b = id_bucket(sandbox_id);
	e->next = p->id_buckets[b];
	p->id_buckets[b] = slot;
	e->gen++;
	e->state = POD_ASK;
	e->seen = true;
	e->retry_ns = 0;
	mt_strlcpy(e->sandbox_id, sandbox_id, sizeof(e->sandbox_id));
	memset(&m, 0, sizeof(m));
	k8s_meta_build(&m, in);
	memset(&e->pod, 0, sizeof(e->pod));
	mt_strlcpy(e->pod.namespace_name, m.namespace_name, sizeof(e->pod.namespace_name));
	mt_strlcpy(e->pod.pod_name, m.pod_name, sizeof(e->pod.pod_name));
	e->pod.workload = m.workload;
	mt_strlcpy(e->pod.workload_name, m.workload_name, sizeof(e->pod.workload_name));
	mt_strlcpy(e->pod.service_name, m.service_name, sizeof(e->pod.service_name));
	p->stats.added++;
}

static void unchain(struct k8s_pods *p, uint32_t slot)
{
	uint32_t *q = &p->id_buckets[id_bucket(p->entries[slot].sandbox_id)];

	while (*q != NIL && *q != slot)
		q = &p->entries[*q].next;
	if (*q == slot)
		*q = p->entries[slot].next;
}

void k8s_pods_list_end(struct k8s_pods *p, uint64_t now_ns)
{
	for (uint32_t i = 0; i < K8S_PODS_MAX; i++) {
		struct pod_entry *e = &p->entries[i];

		if (e->state == POD_FREE || e->state == POD_GONE || e->seen)
			continue;
		if (e->state == POD_READY) {
			p->index_dirty = true;
			p->stats.pods--;
		}
		/* Out of the id chain now (a new sandbox may take the id), freed after the grace. */
		unchain(p, i);
		e->state = POD_GONE;
		e->gone_ns = now_ns;
		p->stats.gone++;
	}
	p->stats.lists++;
	if (p->index_dirty)
		index_rebuild(p);
}

uint16_t k8s_pods_next_status(struct k8s_pods *p, uint64_t now_ns, uint16_t *gen,
			      const char **sandbox_id)
{
	for (uint32_t i = 0; i < K8S_PODS_MAX; i++) {
		struct pod_entry *e = &p->entries[i];

		if (e->state != POD_ASK || now_ns < e->retry_ns)
			continue;
		e->state = POD_ASKED;
		*gen = e->gen;
		*sandbox_id = e->sandbox_id;
		return (uint16_t)(i + 1);
	}
	return 0;
}

/* "10.1.2.3" or "fd00::5" -> 16 bytes, v4-mapped for IPv4. */
static bool parse_ip(const char *s, uint8_t out[16])
{
	uint8_t v4[4];

	if (inet_pton(AF_INET, s, v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, v4, 4);
		return true;
	}
	return inet_pton(AF_INET6, s, out) == 1;
}

void k8s_pods_status_done(struct k8s_pods *p, uint16_t h, uint16_t gen, bool ok,
			  const char *const *ips, size_t n_ips, uint64_t now_ns)
{
	struct pod_entry *e;

	if (!h || h > K8S_PODS_MAX)
		return;
	e = &p->entries[h - 1];
	if (e->gen != gen || e->state != POD_ASKED)
		return;
	if (!ok) {
		p->stats.status_failed++;
		e->state = POD_ASK;
		e->retry_ns = now_ns + K8S_PODS_STATUS_RETRY_NS;
		return;
	}
	p->stats.statuses++;
	e->pod.n_ips = 0;
	for (size_t i = 0; i < n_ips && e->pod.n_ips < K8S_POD_IPS; i++)
		if (ips[i] && parse_ip(ips[i], e->pod.ips[e->pod.n_ips]))
			e->pod.n_ips++;
	e->state = POD_READY;
	p->stats.pods++;
	/* An address that missed before this pod was known may be its: ask it again at once. */
	memset(p->misses, 0, sizeof(p->misses));
	index_rebuild(p);
}

void k8s_pods_expire(struct k8s_pods *p, uint64_t now_ns)
{
	for (uint32_t i = 0; i < K8S_PODS_MAX; i++) {
		struct pod_entry *e = &p->entries[i];

		if (e->state != POD_GONE || now_ns < e->gone_ns + K8S_PODS_GONE_GRACE_NS)
			continue;
		e->state = POD_FREE;
		e->next = p->free_head;
		p->free_head = i;
	}
}

void k8s_pods_stats(const struct k8s_pods *p, struct k8s_pods_stats *out)
{
	*out = p->stats;
}

size_t k8s_pods_size(void)
{
	return sizeof(struct k8s_pods);
}

void k8s_pods_add_call_ns(struct k8s_pods *p, bool list, uint64_t ns)
{
	if (list)
		p->stats.list_ns_total += ns;
	else
		p->stats.status_ns_total += ns;
}
