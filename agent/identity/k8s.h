/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes names of the node's containers, from the container runtime's
 * CRI socket (agent/identity/cri.c): no API server, no cluster-wide watch, no
 * RBAC, only the socket the kubelet itself uses.
 *
 * At each connection, ListPodSandbox and ListContainers name every running
 * container at once (up to the free entries), so processes that ran before
 * the agent are named at their first span; an entry no process claims goes
 * after K8S_WARM_KEEP_NS. The image name, which the list lacks, follows in a
 * ContainerStatus per entry.
 *
 * A container id seen for the first time in a cgroup path (identity.c)
 * acquires an entry and starts one lookup, answered later on the event loop:
 * ListContainers (filter: the id) for its pod sandbox and name, then
 * PodSandboxStatus (pod name, namespace, uid, labels, annotations, IP) and
 * ContainerStatus (image) together. Until the answer, and for good when the
 * runtime does not know the id, the process keeps the names its cgroup gives.
 * A failed lookup (socket absent, runtime down or slow, an error) is counted
 * and tried again every K8S_RETRY_NS, so names heal when the runtime is back.
 *
 * Bounds: K8S_MAX entries (a node runs at most a few hundred containers;
 * beyond, acquisitions fail, counted in k8s.full). An entry goes
 * K8S_DROP_GRACE_NS after its last holder released it (the last process of
 * the container exited and its identity entry went), the grace letting
 * spans still batched for export find its attributes.
 *
 * What is inferred, not read (the CRI has no owner references): the
 * workload, from the labels and the name patterns the controllers give their
 * pods (k8s_workload_infer); see docs/cri.md.
 */
#ifndef MESHTRACE_K8S_H
#define MESHTRACE_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define K8S_MAX		  1024
#define K8S_RETRY_NS	  (2ull * 1000000000ull)
#define K8S_SCAN_NS	  (1ull * 1000000000ull) /* retries and expiries, at the latest */
#define K8S_DROP_GRACE_NS (10ull * 1000000000ull)
#define K8S_SEARCH_NS	  (10ull * 1000000000ull) /* looking for a socket again, when none */
#define K8S_WARM_KEEP_NS  (60ull * 1000000000ull) /* a warmed entry no process holds: kept */
#define K8S_NAME_MAX	  64  /* namespaces, container names: DNS labels, 63 bytes */
#define K8S_OBJ_MAX	  128 /* pod and workload names (up to 253 bytes: longer are cut) */
#define K8S_IMAGE_MAX	  160
#define K8S_SERVICE_MAX	  64 /* = MT_SERVICE_MAX */

/* The runtime sockets tried, in order, when none is named (--cri-socket, MESHTRACE_CRI_SOCKET). */
#define K8S_DEFAULT_SOCKETS                                               \
	{                                                                 \
		"/run/containerd/containerd.sock", "/run/crio/crio.sock", \
			"/run/k3s/containerd/containerd.sock"             \
	}

enum k8s_workload {
	K8S_WL_NONE = 0,
	K8S_WL_DEPLOYMENT, /* with its replicaset */
	K8S_WL_REPLICASET, /* a ReplicaSet whose name has no deployment in it */
	K8S_WL_STATEFULSET,
	K8S_WL_DAEMONSET,
	K8S_WL_JOB,
	K8S_WL_CRONJOB, /* with its job */
};

/* What the runtime says about a container, and what follows from it. */
struct k8s_meta {
	char container_id[65];
	char namespace_name[K8S_NAME_MAX];
	char pod_name[K8S_OBJ_MAX];
	char pod_uid[40];
	char container_name[K8S_NAME_MAX];
	char image_name[K8S_IMAGE_MAX];	 /* without tag or digest */
	uint8_t workload;		 /* enum k8s_workload */
	char workload_name[K8S_OBJ_MAX]; /* the deployment, statefulset, …, cronjob */
	char workload_parent
		[K8S_OBJ_MAX]; /* the replicaset of a deployment, the job of a cronjob */
	char service_name[K8S_SERVICE_MAX];
};

struct k8s_kv {
	const char *key;
	const char *value;
};

/* What k8s_meta_build() reads: a pod sandbox and one of its containers. */
struct k8s_pod_in {
	const char *namespace_name, *pod_name, *pod_uid;
	const struct k8s_kv *labels;
	size_t n_labels;
	const struct k8s_kv *annotations;
	size_t n_annotations;
	const char *container_name;
};

/*
 * Fills @m's pod, workload and service.name from @in; leaves container_id
 * and image_name. Pure.
 *
 * service.name, first found (OpenTelemetry's rules for Kubernetes; the
 * process's own OTEL_SERVICE_NAME wins over all of them, in identity.c): the
 * pod annotation resource.opentelemetry.io/service.name, the labels
 * app.kubernetes.io/instance then app.kubernetes.io/name, the workload name
 * (the deployment, statefulset, daemonset, cronjob or job; a replicaset's
 * when no deployment shows), the container name.
 */
void k8s_meta_build(struct k8s_meta *m, const struct k8s_pod_in *in);

/*
 * The workload that owns pod @pod_name with @labels, inferred (the CRI has no
 * owner references). Writes the workload's name to @name and its
 * intermediate owner (a deployment's replicaset, a cronjob's job) to
 * @parent ("" when none). Pure. Rules in docs/cri.md.
 */
enum k8s_workload k8s_workload_infer(const char *pod_name, const struct k8s_kv *labels,
				     size_t n_labels, char *name, size_t name_len, char *parent,
				     size_t parent_len);

/* "registry/repo/name:tag@sha256:…" → "registry/repo/name"; an image id ("sha256:…") → "". Pure. */
void k8s_image_name(const char *image, char *out, size_t len);

/* The OpenTelemetry attribute key of a workload's name ("k8s.deployment.name"), NULL for none. */
const char *k8s_workload_attr(enum k8s_workload w);
/* The key of the intermediate owner's name ("k8s.replicaset.name", "k8s.job.name"), or NULL. */
const char *k8s_workload_parent_attr(enum k8s_workload w);
/* "deployment", "statefulset", …; "" for none. */
const char *k8s_workload_kind(enum k8s_workload w);

struct k8s_stats {
	uint64_t lookups;   /* lookups started (one per container, plus retries) */
	uint64_t resolved;  /* lookups that named a container */
	uint64_t failed;    /* lookups that failed: runtime absent, down, slow or in error */
	uint64_t not_found; /* containers the runtime does not know (not a CRI container) */
	uint64_t full;	    /* acquisitions refused: K8S_MAX entries in use */
	uint64_t dropped;   /* entries dropped after their last process exited */
	uint64_t warmed;    /* entries named from the lists read at connect, before any lookup */
	uint64_t entries;   /* live entries */
	uint64_t calls;	    /* CRI calls made */
	uint64_t call_failures;
	uint64_t lookup_ns_total; /* first call to named, summed over resolved lookups */
	uint64_t connected;	  /* 1: a connection to the runtime is open */
	uint64_t enabled;	  /* 1: a socket is configured or was found */
	/* The pods by IP (k8s_pods.h). */
	uint64_t pods;		      /* pods with their IPs in the table */
	uint64_t pod_hits;	      /* addresses named as a pod of this node */
	uint64_t pod_misses;	      /* addresses not found (each at most once per 30 s) */
	uint64_t pod_lists;	      /* ListPodSandbox answers read */
	uint64_t pod_early_lists;     /* of which asked early, after a miss */
	uint64_t pod_statuses;	      /* PodSandboxStatus answers read */
	uint64_t pods_gone;	      /* sandboxes no longer listed */
	uint64_t pods_full;	      /* sandboxes left out: the table was full */
	uint64_t pod_list_ns_total;   /* call to answer, summed over pod_lists */
	uint64_t pod_status_ns_total; /* call to answer, summed over pod_statuses */
};

struct k8s;

/*
 * A client of the runtime at @socket_path, or of the first of
 * K8S_DEFAULT_SOCKETS that exists when NULL or "" (looked for again every
 * K8S_SEARCH_NS while none does). NULL on out of memory only.
 */
struct k8s *k8s__new(const char *socket_path);
void k8s__free(struct k8s *k);

/* The socket in use, "" when none was found. */
const char *k8s_socket(const struct k8s *k);

/*
 * Looks for the runtime sockets K8S_DEFAULT_SOCKETS under @root ("" for /),
 * in that order: the first that is a usable unix socket goes to @out.
 * Returns whether one was found.
 */
bool k8s_socket_search(const char *root, char *out, size_t len);

/* The pods of this node by IP (k8s_pods.h), filled by k8s_poll(). NULL for @k NULL. */
struct k8s_pods *k8s_pods_of(const struct k8s *k);

/*
 * Holds the entry of container @container_id (64 hex digits), creating it and
 * starting its lookup when new. Returns the handle (slot + 1) and sets *@gen,
 * or 0 when the table is full (counted). Each acquisition is released once.
 */
uint32_t k8s_acquire(struct k8s *k, const char *container_id, uint64_t now_ns, uint32_t *gen);
/* Lets go of a handle from k8s_acquire; the entry goes K8S_DROP_GRACE_NS after its last. */
void k8s_release(struct k8s *k, uint32_t handle, uint32_t gen, uint64_t now_ns);
/* The names of handle @handle if its lookup has answered, else NULL (also for a stale handle). */
const struct k8s_meta *k8s_get(const struct k8s *k, uint32_t handle, uint32_t gen);

/* Drives the client and the lookups, drops released entries. Call every loop tick. */
void k8s_poll(struct k8s *k, uint64_t now_ns);
/* The runtime's socket, for epoll, -1 when not connected. */
int k8s_fd(const struct k8s *k);

void k8s_stats(const struct k8s *k, struct k8s_stats *out);

#endif /* MESHTRACE_K8S_H */
