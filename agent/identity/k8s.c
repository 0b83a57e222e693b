// SPDX-License-Identifier: Apache-2.0
/*
 * The cache of container names and the lookups that fill it (contract in
 * k8s.h). Each lookup is a small state machine driven by the CRI client's
 * answers; a call's tag names its entry (slot, generation) and step, so an
 * answer for an entry dropped and reused meanwhile is recognised and ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/common/clock.h"
#include "agent/common/hashtab.h"
#include "agent/common/log.h"
#include "agent/common/util.h"
#include "agent/identity/cri.h"
#include "agent/identity/k8s.h"
#include "agent/identity/k8s_pods.h"
#include "cri.pb-c.h"

#define K8S_BUCKETS 2048 /* a power of two, twice K8S_MAX */
#define K8S_KV_MAX  64	 /* labels or annotations read per pod */

enum entry_state {
	ENTRY_FREE = 0,
	ENTRY_QUEUED,	 /* a lookup is due (new, or retrying at retry_ns) */
	ENTRY_CONTAINER, /* ListContainers sent */
	ENTRY_POD,	 /* PodSandboxStatus and ContainerStatus sent */
	ENTRY_READY,	 /* named */
	ENTRY_UNKNOWN,	 /* the runtime does not know it: cgroup names for good */
};

enum call_step {
	STEP_VERSION = 1,
	STEP_CONTAINER,
	STEP_POD,
	STEP_IMAGE,
	STEP_LIST_PODS,	      /* the warm-up at connect: every ready pod */
	STEP_LIST_CONTAINERS, /* and every running container */
	STEP_IMAGE_ONLY,      /* the image of an entry named by the warm-up */
	STEP_PODS_LIST,	      /* the pods by IP (k8s_pods.c): ready sandboxes */
	STEP_PODS_STATUS,     /* and a new sandbox's IPs */
};

struct k8s_entry {
	uint8_t state;
	uint8_t pending; /* STEP_POD and STEP_IMAGE answers still to come */
	bool failed;	 /* one of them failed */
	bool need_image; /* named by the warm-up, whose list has no image name: ask it */
	uint32_t gen;
	uint32_t refs;
	uint32_t next; /* hash chain, or free list */
	uint64_t retry_ns;
	uint64_t released_ns; /* refs went to 0 */
	uint64_t started_ns;  /* the lookup's first call */
	char sandbox_id[65];
	struct k8s_meta meta;
};

struct k8s {
	char socket[CRI_SOCKET_PATH_MAX];
	bool searching;	   /* no socket named: look through the defaults */
	bool said_missing; /* the line saying no socket was found is out */
	uint64_t next_search_ns;
	bool version_asked;
	uint8_t warm_pending; /* warm-up lists still to come */
	Runtime__V1__ListPodSandboxResponse *warm_pods;
	Runtime__V1__ListContainersResponse *warm_containers;
	struct cri_client *cri;
	struct k8s_entry *entries; /* K8S_MAX */
	struct k8s_pods *pods;	   /* pod IP -> pod */
	uint64_t pods_list_ns;	   /* when the pods' list was asked */
	uint64_t pods_status_ns[K8S_PODS_MAX];
	uint32_t buckets[K8S_BUCKETS];
	uint32_t free_head;
	uint64_t now_ns;
	/*
	 * The tables are walked when a lookup or an image is due (scan_due), else
	 * once per K8S_SCAN_NS for retries and expiries: not at every 10 ms tick
	 * (1,536 entries each time, 2.6 % of the agent's CPU in a bench profile).
	 */
	bool scan_due;
	uint64_t next_scan_ns;
	struct k8s_stats stats;
};

static uint64_t tag_of(uint32_t slot, uint32_t gen, enum call_step step)
{
	return (uint64_t)slot << 40 | (uint64_t)gen << 8 | (uint64_t)step;
}

static uint32_t bucket_of(const char *cid)
{
	uint64_t h = 0;

	/* The id is random hex: its first 16 digits hash well enough. */
	for (int i = 0; i < 16 && cid[i]; i++)
		h = h << 4 | (uint64_t)mt_hex_digit(cid[i]);
	return (uint32_t)hashtab_hash64(h) & (K8S_BUCKETS - 1);
}

bool k8s_socket_search(const char *root, char *out, size_t len)
{
	static const char *const defaults[] = K8S_DEFAULT_SOCKETS;
	char path[CRI_SOCKET_PATH_MAX + 64];

	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		snprintf(path, sizeof(path), "%s%s", root ? root : "", defaults[i]);
		if (cri_socket_usable(path) && strlen(path) < len) {
			mt_strlcpy(out, path, len);
			return true;
		}
	}
	return false;
}

static void find_socket(struct k8s *k, uint64_t now_ns)
{
	k->next_search_ns = now_ns + K8S_SEARCH_NS;
	if (k8s_socket_search("", k->socket, sizeof(k->socket))) {
		k->searching = false;
		mt_info("CRI: Kubernetes names from the runtime at %s", k->socket);
	}
}

static void on_answer(void *ctx, uint64_t tag, int status, const uint8_t *msg, size_t len);

static void warm_lists_free(struct k8s *k)
{
	if (k->warm_pods)
		runtime__v1__list_pod_sandbox_response__free_unpacked(k->warm_pods, NULL);
	if (k->warm_containers)
		runtime__v1__list_containers_response__free_unpacked(k->warm_containers, NULL);
	k->warm_pods = NULL;
	k->warm_containers = NULL;
}

static int start_client(struct k8s *k)
{
	k->cri = cri_client__new(k->socket, on_answer, k);
	return k->cri ? 0 : -ENOMEM;
}

struct k8s *k8s__new(const char *socket_path)
{
	struct k8s *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->entries = calloc(K8S_MAX, sizeof(*k->entries));
	k->pods = k8s_pods__new();
	if (!k->entries || !k->pods) {
		k8s_pods__free(k->pods);
		free(k->entries);
		free(k);
		return NULL;
	}
	for (uint32_t i = 0; i < K8S_BUCKETS; i++)
		k->buckets[i] = NIL;
	for (uint32_t i = 0; i < K8S_MAX; i++)
		k->entries[i].next = i + 1 < K8S_MAX ? i + 1 : NIL;
	k->free_head = 0;
	if (socket_path && socket_path[0]) {
		mt_strlcpy(k->socket, socket_path, sizeof(k->socket));
	} else {
		/* The first k8s_poll() looks: nothing is said before the agent has started. */
		k->searching = true;
	}
	if (k->socket[0] && start_client(k) != 0) {
		k8s__free(k);
		return NULL;
	}
	return k;
}

void k8s__free(struct k8s *k)
{
	if (!k)
		return;
	cri_client__free(k->cri);
	warm_lists_free(k);
	k8s_pods__free(k->pods);
	free(k->entries);
	free(k);
}

const char *k8s_socket(const struct k8s *k)
{
	return k->socket;
}

struct k8s_pods *k8s_pods_of(const struct k8s *k)
{
	return k ? k->pods : NULL;
}

static struct k8s_entry *find(struct k8s *k, const char *cid, uint32_t *slot)
{
	for (uint32_t i = k->buckets[bucket_of(cid)]; i != NIL; i = k->entries[i].next) {
		if (!strcmp(k->entries[i].meta.container_id, cid)) {
			*slot = i;
			return &k->entries[i];
		}
	}
	return NULL;
}

uint32_t k8s_acquire(struct k8s *k, const char *container_id, uint64_t now_ns, uint32_t *gen)
{
	struct k8s_entry *e;
	uint32_t slot, b;

	e = find(k, container_id, &slot);
	if (!e) {
		if (k->free_head == NIL) {
			k->stats.full++;
			return 0;
		}
		slot = k->free_head;
		e = &k->entries[slot];
		k->free_head = e->next;
		b = bucket_of(container_id);
		e->next = k->buckets[b];
		k->buckets[b] = slot;
		e->gen++;
		e->state = ENTRY_QUEUED;
		e->refs = 0;
		e->retry_ns = 0;
		k->scan_due = true;
		memset(&e->meta, 0, sizeof(e->meta));
		mt_strlcpy(e->meta.container_id, container_id, sizeof(e->meta.container_id));
		k->stats.entries++;
		(void)now_ns;
	}
	e->refs++;
	*gen = e->gen;
	return slot + 1;
}

void k8s_release(struct k8s *k, uint32_t handle, uint32_t gen, uint64_t now_ns)
{
	struct k8s_entry *e;

	if (!handle || handle > K8S_MAX)
		return;
	e = &k->entries[handle - 1];
	if (e->state == ENTRY_FREE || e->gen != gen || !e->refs)
		return;
	if (--e->refs == 0)
		e->released_ns = now_ns ? now_ns : 1;
}

const struct k8s_meta *k8s_get(const struct k8s *k, uint32_t handle, uint32_t gen)
{
	const struct k8s_entry *e;

	if (!k || !handle || handle > K8S_MAX)
		return NULL;
	e = &k->entries[handle - 1];
	return e->state == ENTRY_READY && e->gen == gen ? &e->meta : NULL;
}

static void drop(struct k8s *k, uint32_t slot)
{
	struct k8s_entry *e = &k->entries[slot];
	uint32_t *p = &k->buckets[bucket_of(e->meta.container_id)];

	while (*p != NIL && *p != slot)
		p = &k->entries[*p].next;
	if (*p == slot)
		*p = e->next;
	e->state = ENTRY_FREE; /* answers still in flight see the state and go */
	e->next = k->free_head;
	k->free_head = slot;
	k->stats.entries--;
	k->stats.dropped++;
}

static void lookup_failed(struct k8s *k, struct k8s_entry *e)
{
	k->stats.failed++;
	e->state = ENTRY_QUEUED;
	e->retry_ns = k->now_ns + K8S_RETRY_NS; /* the periodic scan takes it up */
}

/* Starts a call for entry @slot; false (the lookup failed, counted) when it could not. */
static bool call(struct k8s *k, const char *method, const ProtobufCMessage *req, uint64_t tag)
{
	uint8_t buf[256];
	size_t len = protobuf_c_message_get_packed_size(req);
	int err;

	if (len > sizeof(buf))
		return false;
	protobuf_c_message_pack(req, buf);
	err = cri_client_call(k->cri, method, buf, len, tag, k->now_ns);
	if (err)
		return false;
	k->stats.calls++;
	return true;
}

static void start_lookup(struct k8s *k, uint32_t slot)
{
	struct k8s_entry *e = &k->entries[slot];
	Runtime__V1__ContainerFilter filter = RUNTIME__V1__CONTAINER_FILTER__INIT;
	Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;

	filter.id = e->meta.container_id;
	req.filter = &filter;
	k->stats.lookups++;
	e->started_ns = k->now_ns;
	if (!call(k, "ListContainers", &req.base, tag_of(slot, e->gen, STEP_CONTAINER))) {
		lookup_failed(k, e);
		return;
	}
	e->state = ENTRY_CONTAINER;
}

static void ask_pod(struct k8s *k, uint32_t slot, struct k8s_entry *e)
{
	Runtime__V1__PodSandboxStatusRequest pod = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
	Runtime__V1__ContainerStatusRequest ctr = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;

	pod.pod_sandbox_id = e->sandbox_id;
	ctr.container_id = e->meta.container_id;
	e->state = ENTRY_POD;
	e->failed = false;
	e->pending = 0;
	if (call(k, "PodSandboxStatus", &pod.base, tag_of(slot, e->gen, STEP_POD)))
		e->pending++;
	else
		e->failed = true;
	if (!e->failed && call(k, "ContainerStatus", &ctr.base, tag_of(slot, e->gen, STEP_IMAGE)))
		e->pending++;
	else
		e->failed = true;
	if (!e->pending)
		lookup_failed(k, e);
}

static void on_container(struct k8s *k, uint32_t slot, struct k8s_entry *e, const uint8_t *msg,
			 size_t len)
{
	Runtime__V1__ListContainersResponse *r =
		runtime__v1__list_containers_response__unpack(NULL, len, msg);
	const Runtime__V1__Container *c = NULL;

	if (!r) {
		lookup_failed(k, e);
		return;
	}
	for (size_t i = 0; i < r->n_containers && !c; i++)
		if (r->containers[i]->id && !strcmp(r->containers[i]->id, e->meta.container_id))
			c = r->containers[i];
	if (!c || !c->pod_sandbox_id || !c->pod_sandbox_id[0]) {
		k->stats.not_found++;
		e->state = ENTRY_UNKNOWN;
	} else {
		mt_strlcpy(e->sandbox_id, c->pod_sandbox_id, sizeof(e->sandbox_id));
		if (c->metadata && c->metadata->name)
			mt_strlcpy(e->meta.container_name, c->metadata->name,
				   sizeof(e->meta.container_name));
		ask_pod(k, slot, e);
	}
	runtime__v1__list_containers_response__free_unpacked(r, NULL);
}

/* A map's entries as k8s_kv (protoc-c gives each map its own entry type: same fields). */
static size_t labels_kv(struct k8s_kv *out, Runtime__V1__PodSandboxStatus__LabelsEntry **in,
			size_t n)
{
	n = n < K8S_KV_MAX ? n : K8S_KV_MAX;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct k8s_kv){in[i]->key, in[i]->value};
	return n;
}

static size_t annotations_kv(struct k8s_kv *out,
			     Runtime__V1__PodSandboxStatus__AnnotationsEntry **in, size_t n)
{
	n = n < K8S_KV_MAX ? n : K8S_KV_MAX;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct k8s_kv){in[i]->key, in[i]->value};
	return n;
}

static bool on_pod(struct k8s_entry *e, const uint8_t *msg, size_t len)
{
	Runtime__V1__PodSandboxStatusResponse *r =
		runtime__v1__pod_sandbox_status_response__unpack(NULL, len, msg);
	struct k8s_kv labels[K8S_KV_MAX], annotations[K8S_KV_MAX];
	struct k8s_pod_in in = {0};
	const Runtime__V1__PodSandboxStatus *s;
	char container[K8S_NAME_MAX];

	if (!r || !r->status || !r->status->metadata) {
		if (r)
			runtime__v1__pod_sandbox_status_response__free_unpacked(r, NULL);
		return false;
	}
	s = r->status;
	mt_strlcpy(container, e->meta.container_name, sizeof(container));
	in.namespace_name = s->metadata->namespace_;
	in.pod_name = s->metadata->name;
	in.pod_uid = s->metadata->uid;
	in.labels = labels;
	in.n_labels = labels_kv(labels, s->labels, s->n_labels);
	in.annotations = annotations;
	in.n_annotations = annotations_kv(annotations, s->annotations, s->n_annotations);
	in.container_name = container;
	k8s_meta_build(&e->meta, &in);
	runtime__v1__pod_sandbox_status_response__free_unpacked(r, NULL);
	return true;
}

static bool on_image(struct k8s_entry *e, const uint8_t *msg, size_t len)
{
	Runtime__V1__ContainerStatusResponse *r =
		runtime__v1__container_status_response__unpack(NULL, len, msg);

	if (!r || !r->status) {
		if (r)
			runtime__v1__container_status_response__free_unpacked(r, NULL);
		return false;
	}
	if (r->status->image && r->status->image->image)
		k8s_image_name(r->status->image->image, e->meta.image_name,
			       sizeof(e->meta.image_name));
	runtime__v1__container_status_response__free_unpacked(r, NULL);
	return true;
}

static size_t sandbox_labels_kv(struct k8s_kv *out, Runtime__V1__PodSandbox__LabelsEntry **in,
				size_t n)
{
	n = n < K8S_KV_MAX ? n : K8S_KV_MAX;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct k8s_kv){in[i]->key, in[i]->value};
	return n;
}

static size_t sandbox_annotations_kv(struct k8s_kv *out,
				     Runtime__V1__PodSandbox__AnnotationsEntry **in, size_t n)
{
	n = n < K8S_KV_MAX ? n : K8S_KV_MAX;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct k8s_kv){in[i]->key, in[i]->value};
	return n;
}

/* A new entry for container @c of pod @p, named from the lists: kept K8S_WARM_KEEP_NS unheld. */
static void warm_one(struct k8s *k, const Runtime__V1__Container *c,
		     const Runtime__V1__PodSandbox *p)
{
	struct k8s_kv labels[K8S_KV_MAX], annotations[K8S_KV_MAX];
	struct k8s_pod_in in = {0};
	struct k8s_entry *e;
	uint32_t slot, gen;

	if (!c->id || strlen(c->id) != 64 || find(k, c->id, &slot) || k->free_head == NIL)
		return;
	slot = k8s_acquire(k, c->id, k->now_ns, &gen) - 1;
	e = &k->entries[slot];
	e->refs = 0;
	e->released_ns = k->now_ns + K8S_WARM_KEEP_NS - K8S_DROP_GRACE_NS;
	mt_strlcpy(e->sandbox_id, p->id, sizeof(e->sandbox_id));
	in.namespace_name = p->metadata->namespace_;
	in.pod_name = p->metadata->name;
	in.pod_uid = p->metadata->uid;
	in.labels = labels;
	in.n_labels = sandbox_labels_kv(labels, p->labels, p->n_labels);
	in.annotations = annotations;
	in.n_annotations = sandbox_annotations_kv(annotations, p->annotations, p->n_annotations);
	in.container_name = c->metadata && c->metadata->name ? c->metadata->name : "";
	k8s_meta_build(&e->meta, &in);
	e->state = ENTRY_READY;
	e->need_image = true;
	k->scan_due = true;
	k->stats.warmed++;
}

/* Both lists are in: an entry for each running container of a ready pod. */
static void warm_up(struct k8s *k)
{
	const Runtime__V1__ListPodSandboxResponse *pods = k->warm_pods;
	const Runtime__V1__ListContainersResponse *ctrs = k->warm_containers;

	for (size_t i = 0; pods && ctrs && i < ctrs->n_containers; i++) {
		const Runtime__V1__Container *c = ctrs->containers[i];

		for (size_t j = 0; c->pod_sandbox_id && j < pods->n_items; j++) {
			const Runtime__V1__PodSandbox *p = pods->items[j];

			if (p->id && p->metadata && !strcmp(p->id, c->pod_sandbox_id)) {
				warm_one(k, c, p);
				break;
			}
		}
	}
	warm_lists_free(k);
}

static void on_list(struct k8s *k, enum call_step step, int status, const uint8_t *msg, size_t len)
{
	if (status == 0 && step == STEP_LIST_PODS && !k->warm_pods)
		k->warm_pods = runtime__v1__list_pod_sandbox_response__unpack(NULL, len, msg);
	else if (status == 0 && step == STEP_LIST_CONTAINERS && !k->warm_containers)
		k->warm_containers = runtime__v1__list_containers_response__unpack(NULL, len, msg);
	if (k->warm_pending && --k->warm_pending == 0)
		warm_up(k);
}

/* Asks for every ready pod and running container: the warm-up, once per connection. */
static void ask_lists(struct k8s *k)
{
	Runtime__V1__PodSandboxStateValue ready = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
	Runtime__V1__PodSandboxFilter pf = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
	Runtime__V1__ListPodSandboxRequest pods = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__ContainerStateValue running = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
	Runtime__V1__ContainerFilter cf = RUNTIME__V1__CONTAINER_FILTER__INIT;
	Runtime__V1__ListContainersRequest ctrs = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;

	ready.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
	pf.state = &ready;
	pods.filter = &pf;
	running.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	cf.state = &running;
	ctrs.filter = &cf;
	k->warm_pending = 0;
	if (call(k, "ListPodSandbox", &pods.base, STEP_LIST_PODS))
		k->warm_pending++;
	if (call(k, "ListContainers", &ctrs.base, STEP_LIST_CONTAINERS))
		k->warm_pending++;
}

/* ---- pods by IP (k8s_pods.c): the list, then each new sandbox's status ---- */

static void ask_pods(struct k8s *k)
{
	Runtime__V1__PodSandboxStateValue ready = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
	Runtime__V1__PodSandboxFilter pf = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
	Runtime__V1__ListPodSandboxRequest req = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	uint16_t h, gen;
	const char *sid;

	if (k8s_pods_list_due(k->pods, k->now_ns) &&
	    cri_client_inflight(k->cri) + 2 < CRI_CALLS_MAX) {
		ready.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
		pf.state = &ready;
		req.filter = &pf;
		k8s_pods_list_sent(k->pods, k->now_ns);
		k->pods_list_ns = mt_now_mono_ns();
		call(k, "ListPodSandbox", &req.base, STEP_PODS_LIST);
	}
	while (cri_client_inflight(k->cri) + 4 < CRI_CALLS_MAX &&
	       (h = k8s_pods_next_status(k->pods, k->now_ns, &gen, &sid)) != 0) {
		Runtime__V1__PodSandboxStatusRequest st =
			RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;

		st.pod_sandbox_id = (char *)sid;
		k->pods_status_ns[h - 1] = mt_now_mono_ns();
		if (!call(k, "PodSandboxStatus", &st.base, tag_of(h, gen, STEP_PODS_STATUS)))
			k8s_pods_status_done(k->pods, h, gen, false, NULL, 0, k->now_ns);
	}
}

static void on_pods_list(struct k8s *k, int status, const uint8_t *msg, size_t len)
{
	Runtime__V1__ListPodSandboxResponse *r;
	struct k8s_kv labels[K8S_KV_MAX], annotations[K8S_KV_MAX];

	if (status != 0)
		return; /* the table stays as it is: the next list is at most K8S_PODS_REFRESH_NS away */
	r = runtime__v1__list_pod_sandbox_response__unpack(NULL, len, msg);
	if (!r)
		return;
	k8s_pods_add_call_ns(k->pods, true, mt_now_mono_ns() - k->pods_list_ns);
	k8s_pods_list_begin(k->pods);
	for (size_t i = 0; i < r->n_items; i++) {
		const Runtime__V1__PodSandbox *p = r->items[i];
		struct k8s_pod_in in = {0};

		if (!p->id || !p->metadata)
			continue;
		in.namespace_name = p->metadata->namespace_;
		in.pod_name = p->metadata->name;
		in.pod_uid = p->metadata->uid;
		in.labels = labels;
		in.n_labels = sandbox_labels_kv(labels, p->labels, p->n_labels);
		in.annotations = annotations;
		in.n_annotations =
			sandbox_annotations_kv(annotations, p->annotations, p->n_annotations);
		in.container_name = "";
		k8s_pods_list_item(k->pods, p->id, &in);
	}
	k8s_pods_list_end(k->pods, k->now_ns);
	runtime__v1__list_pod_sandbox_response__free_unpacked(r, NULL);
}

static void on_pods_status(struct k8s *k, uint16_t h, uint16_t gen, int status, const uint8_t *msg,
			   size_t len)
{
	Runtime__V1__PodSandboxStatusResponse *r = NULL;
	const char *ips[1 + K8S_POD_IPS];
	size_t n = 0;

	if (status == 0)
		r = runtime__v1__pod_sandbox_status_response__unpack(NULL, len, msg);
	if (!r || !r->status) {
		k8s_pods_status_done(k->pods, h, gen, false, NULL, 0, k->now_ns);
		if (r)
			runtime__v1__pod_sandbox_status_response__free_unpacked(r, NULL);
		return;
	}
	k8s_pods_add_call_ns(k->pods, false, mt_now_mono_ns() - k->pods_status_ns[h - 1]);
	if (r->status->network) {
		const Runtime__V1__PodSandboxNetworkStatus *net = r->status->network;

		if (net->ip && net->ip[0])
			ips[n++] = net->ip;
		for (size_t i = 0; i < net->n_additional_ips && n < ARRAY_SIZE(ips); i++)
			if (net->additional_ips[i]->ip)
				ips[n++] = net->additional_ips[i]->ip;
	}
	k8s_pods_status_done(k->pods, h, gen, true, ips, n, k->now_ns);
	runtime__v1__pod_sandbox_status_response__free_unpacked(r, NULL);
}

static void on_image_only(struct k8s *k, uint32_t slot, uint32_t gen, int status,
			  const uint8_t *msg, size_t len)
{
	struct k8s_entry *e = &k->entries[slot];

	if (e->gen != gen || e->state != ENTRY_READY)
		return;
	if (status != 0 || !on_image(e, msg, len))
		e->need_image = true; /* asked again at the next periodic scan */
}

static void on_version(struct k8s *k, int status, const uint8_t *msg, size_t len)
{
	Runtime__V1__VersionResponse *r;

	if (status != 0) {
		k->version_asked = false; /* asked again at the next connection */
		return;
	}
	r = runtime__v1__version_response__unpack(NULL, len, msg);
	if (!r)
		return;
	mt_info("CRI: %s %s (API %s) at %s", r->runtime_name, r->runtime_version,
		r->runtime_api_version, k->socket);
	runtime__v1__version_response__free_unpacked(r, NULL);
	ask_lists(k);
}

static void on_answer(void *ctx, uint64_t tag, int status, const uint8_t *msg, size_t len)
{
	struct k8s *k = ctx;
	uint32_t slot = (uint32_t)(tag >> 40), gen = (uint32_t)(tag >> 8);
	enum call_step step = (enum call_step)(tag & 0xff);
	struct k8s_entry *e;

	if (status != 0)
		k->stats.call_failures++;
	if (step == STEP_VERSION) {
		on_version(k, status, msg, len);
		return;
	}
	if (step == STEP_LIST_PODS || step == STEP_LIST_CONTAINERS) {
		on_list(k, step, status, msg, len);
		return;
	}
	if (step == STEP_PODS_LIST) {
		on_pods_list(k, status, msg, len);
		return;
	}
	if (step == STEP_PODS_STATUS) {
		if (slot && slot <= K8S_PODS_MAX)
			on_pods_status(k, (uint16_t)slot, (uint16_t)gen, status, msg, len);
		return;
	}
	if (slot >= K8S_MAX)
		return;
	if (step == STEP_IMAGE_ONLY) {
		on_image_only(k, slot, gen, status, msg, len);
		return;
	}
	e = &k->entries[slot];
	if (e->gen != gen || (e->state != ENTRY_CONTAINER && e->state != ENTRY_POD))
		return; /* dropped (and maybe reused) meanwhile */
	if (step == STEP_CONTAINER) {
		if (status != 0)
			lookup_failed(k, e);
		else
			on_container(k, slot, e, msg, len);
		return;
	}
	if (status != 0 || !(step == STEP_POD ? on_pod(e, msg, len) : on_image(e, msg, len)))
		e->failed = true;
	if (--e->pending)
		return;
	if (e->failed) {
		lookup_failed(k, e);
		return;
	}
	e->state = ENTRY_READY;
	k->stats.resolved++;
	k->stats.lookup_ns_total += k->now_ns - e->started_ns;
}

void k8s_poll(struct k8s *k, uint64_t now_ns)
{
	k->now_ns = now_ns;
	if (k->searching && now_ns >= k->next_search_ns) {
		find_socket(k, now_ns);
		if (k->searching && !k->said_missing)
			mt_info("CRI: no runtime socket (%s, %s, %s): pods and containers are "
				"named from cgroups; --cri-socket names another",
				"/run/containerd/containerd.sock", "/run/crio/crio.sock",
				"/run/k3s/containerd/containerd.sock");
		k->said_missing |= k->searching;
		if (!k->searching && start_client(k) != 0)
			return;
	}
	if (k->cri) {
		if (!k->version_asked) {
			Runtime__V1__VersionRequest v = RUNTIME__V1__VERSION_REQUEST__INIT;

			v.version = "v1";
			k->version_asked = call(k, "Version", &v.base, STEP_VERSION);
		}
		ask_pods(k);
		cri_client_poll(k->cri, now_ns);
	}
	if (!k->scan_due && now_ns < k->next_scan_ns)
		return;
	k->scan_due = false;
	k->next_scan_ns = now_ns + K8S_SCAN_NS;
	k8s_pods_expire(k->pods, now_ns);
	for (uint32_t i = 0; i < K8S_MAX; i++) {
		struct k8s_entry *e = &k->entries[i];

		if (e->state == ENTRY_FREE)
			continue;
		if (!e->refs && e->released_ns + K8S_DROP_GRACE_NS < now_ns &&
		    e->state != ENTRY_CONTAINER && e->state != ENTRY_POD) {
			drop(k, i);
			continue;
		}
		if (e->state == ENTRY_READY && e->need_image && k->cri &&
		    cri_client_inflight(k->cri) + 2 < CRI_CALLS_MAX) {
			Runtime__V1__ContainerStatusRequest req =
				RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;

			req.container_id = e->meta.container_id;
			e->need_image = !call(k, "ContainerStatus", &req.base,
					      tag_of(i, e->gen, STEP_IMAGE_ONLY));
			continue;
		}
		if (e->state == ENTRY_READY && e->need_image && k->cri)
			k->scan_due = true; /* no room for the call now: the next tick */
		if (e->state != ENTRY_QUEUED || now_ns < e->retry_ns)
			continue;
		if (!k->cri) { /* no socket: the lookup fails, counted, tried again later */
			k->stats.lookups++;
			lookup_failed(k, e);
			continue;
		}
		if (cri_client_inflight(k->cri) + 2 >= CRI_CALLS_MAX) {
			k->scan_due = true; /* the rest at the next tick */
			break;
		}
		start_lookup(k, i);
	}
}

int k8s_fd(const struct k8s *k)
{
	return k->cri ? cri_client_fd(k->cri) : -1;
}

void k8s_stats(const struct k8s *k, struct k8s_stats *out)
{
	struct cri_client_stats cs = {0};
	struct k8s_pods_stats ps;

	*out = k->stats;
	if (k->cri)
		cri_client_stats(k->cri, &cs);
	out->connected = cs.connected;
	out->enabled = k->cri != NULL;
	k8s_pods_stats(k->pods, &ps);
	out->pods = ps.pods;
	out->pod_hits = ps.hits;
	out->pod_misses = ps.misses;
	out->pod_lists = ps.lists;
	out->pod_early_lists = ps.early_lists;
	out->pod_statuses = ps.statuses;
	out->pods_gone = ps.gone;
	out->pods_full = ps.full;
	out->pod_list_ns_total = ps.list_ns_total;
	out->pod_status_ns_total = ps.status_ns_total;
}
