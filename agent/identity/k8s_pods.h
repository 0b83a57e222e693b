/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pods of this node by IP: pod IP -> namespace, pod, workload and
 * service.name, so a connection to a pod IP of this node is named by that
 * pod's workload (graph, and peer.service on client spans). Pod IPs of other
 * nodes and Service VIPs are not here: they keep the names DNS gives them.
 *
 * Filled by k8s.c from the runtime's CRI socket: a ListPodSandbox (ready pods,
 * with their labels) at connect and every K8S_PODS_REFRESH_NS, and a
 * PodSandboxStatus for each sandbox new to the table (its IPs: network.ip and
 * additional_ips; a sandbox keeps its IPs for its life). A sandbox missing from
 * a list is gone: out of the IP index at once, its entry kept
 * K8S_PODS_GONE_GRACE_NS for the spans still batched for export. So when a
 * pod is deleted and its IP given to another, the name follows within one
 * refresh.
 *
 * An address looked up and not found (k8s_pods_find) asks for an early list,
 * at most once per K8S_PODS_LIST_MIN_NS; the same address is not asked for
 * again for K8S_PODS_MISS_NS. The lookup itself is a hash probe: no I/O, no
 * allocation, never waits for the runtime.
 *
 * Bounds: K8S_PODS_MAX pods of K8S_POD_IPS addresses each (beyond, counted in
 * full), K8S_PODS_MISSES_MAX addresses remembered as misses.
 */
#ifndef MESHTRACE_K8S_PODS_H
#define MESHTRACE_K8S_PODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/identity/k8s.h"

#define K8S_PODS_MAX		 512
#define K8S_POD_IPS		 2    /* network.ip and one of additional_ips (dual stack) */
#define K8S_PODS_IP_BUCKETS	 2048 /* a power of two, twice K8S_PODS_MAX * K8S_POD_IPS */
#define K8S_PODS_MISSES_MAX	 256  /* a power of two */
#define K8S_PODS_REFRESH_NS	 (10ull * 1000000000ull)
#define K8S_PODS_LIST_MIN_NS	 (2ull * 1000000000ull)
#define K8S_PODS_MISS_NS	 (30ull * 1000000000ull)
#define K8S_PODS_GONE_GRACE_NS	 (10ull * 1000000000ull)
#define K8S_PODS_STATUS_RETRY_NS (2ull * 1000000000ull)

struct k8s_pod {
	char namespace_name[K8S_NAME_MAX];
	char pod_name[K8S_OBJ_MAX];
	uint8_t workload; /* enum k8s_workload */
	char workload_name[K8S_OBJ_MAX];
	char service_name[K8S_SERVICE_MAX]; /* the pod's rules (no process environment) */
	uint8_t n_ips;
	uint8_t ips[K8S_POD_IPS][16]; /* v4-mapped */
};

struct k8s_pods_stats {
	uint64_t pods;	   /* live entries with their IPs */
	uint64_t lists;	   /* ListPodSandbox answers read */
	uint64_t statuses; /* PodSandboxStatus answers read */
	uint64_t status_failed;
	uint64_t added;	 /* sandboxes that entered the table */
	uint64_t gone;	 /* sandboxes no longer listed */
	uint64_t full;	 /* sandboxes left out: K8S_PODS_MAX in the table */
	uint64_t hits;	 /* lookups that named a pod */
	uint64_t misses; /* lookups of addresses not asked about in the last K8S_PODS_MISS_NS */
	uint64_t early_lists;	  /* lists asked for because of a miss */
	uint64_t list_ns_total;	  /* ListPodSandbox: call to answer, summed */
	uint64_t status_ns_total; /* PodSandboxStatus: call to answer, summed */
};

struct k8s_pods;

/* An empty table; NULL on out of memory. */
struct k8s_pods *k8s_pods__new(void);
void k8s_pods__free(struct k8s_pods *p);

/*
 * The pod at @addr (16 bytes, v4-mapped): its handle (slot + 1) with *@gen,
 * or 0. A miss is remembered and asks for an early list (see above). The hot
 * path's call: a hash probe. @p NULL: 0.
 */
uint16_t k8s_pods_find(struct k8s_pods *p, const uint8_t addr[16], uint64_t now_ns, uint16_t *gen);
/* The pod of a handle from k8s_pods_find, or NULL when it went (past its grace) or was reused. */
const struct k8s_pod *k8s_pods_get(const struct k8s_pods *p, uint16_t handle, uint16_t gen);

/* ---- filling, from the runtime's answers (k8s.c) ---- */

/* Whether a ListPodSandbox is due: the periodic refresh, or an early one after a miss. */
bool k8s_pods_list_due(const struct k8s_pods *p, uint64_t now_ns);
/* A ListPodSandbox was sent (or could not be): the next is K8S_PODS_LIST_MIN_NS away at least. */
void k8s_pods_list_sent(struct k8s_pods *p, uint64_t now_ns);

/* A list's answer: begin, one item per ready sandbox, end (sandboxes not listed are gone). */
void k8s_pods_list_begin(struct k8s_pods *p);
void k8s_pods_list_item(struct k8s_pods *p, const char *sandbox_id, const struct k8s_pod_in *in);
void k8s_pods_list_end(struct k8s_pods *p, uint64_t now_ns);

/*
 * A sandbox whose IPs are to be asked (new in the table, or its last ask
 * failed K8S_PODS_STATUS_RETRY_NS ago): its handle and *@gen, *@sandbox_id
 * (valid until the next call), marked asked; 0 when none.
 */
uint16_t k8s_pods_next_status(struct k8s_pods *p, uint64_t now_ns, uint16_t *gen,
			      const char **sandbox_id);
/*
 * The answer for handle @h: its addresses (text, as the CRI gives them), or
 * @ok false when the call failed (asked again later). Ignored for a handle
 * gone meanwhile. Unparsable addresses are skipped.
 */
void k8s_pods_status_done(struct k8s_pods *p, uint16_t h, uint16_t gen, bool ok,
			  const char *const *ips, size_t n_ips, uint64_t now_ns);

/* Drops entries gone more than K8S_PODS_GONE_GRACE_NS ago. */
void k8s_pods_expire(struct k8s_pods *p, uint64_t now_ns);

void k8s_pods_stats(const struct k8s_pods *p, struct k8s_pods_stats *out);
/* The table's memory, bytes (all of it allocated by k8s_pods__new). */
size_t k8s_pods_size(void);
/* For k8s.c: call-to-answer times (ns) of one list, one status. */
void k8s_pods_add_call_ns(struct k8s_pods *p, bool list, uint64_t ns);

#endif /* MESHTRACE_K8S_PODS_H */
