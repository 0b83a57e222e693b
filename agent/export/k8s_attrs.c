// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "agent/export/k8s_attrs.h"
#include "agent/identity/k8s_pods.h"

static void add(struct k8s_attr *out, unsigned *n, const char *key, const char *value)
{
	if (key && value && value[0] && *n < K8S_ATTRS_MAX)
		out[(*n)++] = (struct k8s_attr){key, value};
}

unsigned k8s_resource_attrs(const struct k8s *k, const struct mt_resource *r,
			    struct k8s_attr out[K8S_ATTRS_MAX])
{
	const struct k8s_meta *m = k8s_get(k, r->k8s, r->k8s_gen);
	unsigned n = 0;

	/* The field is an array: a service_namespace without NUL would run over. */
	if (memchr(r->service_namespace, '\0', sizeof(r->service_namespace)))
		add(out, &n, "service.namespace", r->service_namespace);
	if (!m)
		return n;
	add(out, &n, "k8s.namespace.name", m->namespace_name);
	add(out, &n, "k8s.pod.name", m->pod_name);
	add(out, &n, "k8s.pod.uid", m->pod_uid);
	add(out, &n, "k8s.container.name", m->container_name);
	add(out, &n, "container.id", m->container_id);
	add(out, &n, "container.image.name", m->image_name);
	add(out, &n, k8s_workload_attr(m->workload), m->workload_name);
	add(out, &n, k8s_workload_parent_attr(m->workload), m->workload_parent);
	return n;
}

static const char *peer_workload_key(enum k8s_workload w)
{
	switch (w) {
	case K8S_WL_DEPLOYMENT:
		return "peer.k8s.deployment.name";
	case K8S_WL_REPLICASET:
		return "peer.k8s.replicaset.name";
	case K8S_WL_STATEFULSET:
		return "peer.k8s.statefulset.name";
	case K8S_WL_DAEMONSET:
		return "peer.k8s.daemonset.name";
	case K8S_WL_JOB:
		return "peer.k8s.job.name";
	case K8S_WL_CRONJOB:
		return "peer.k8s.cronjob.name";
	case K8S_WL_NONE:
		break;
	}
	return NULL;
}

static unsigned add_span(struct span_attrs *out, const char *key, const char *value)
{
	struct span_attr *a;

	if (!key || !value || !value[0] || out->n >= SPAN_ATTRS_MAX)
		return 0;
	a = &out->attr[out->n++];
	*a = (struct span_attr){
		.key = key, .key_len = (uint32_t)strlen(key), .str = value, .type = SPAN_ATTR_STR};
	return 1;
}

unsigned k8s_span_peer_attrs(const struct k8s *k, const struct mt_span *s, struct span_attrs *out)
{
	const struct k8s_pod *pod;
	unsigned n = 0;

	if (s->kind != MT_SPAN_CLIENT || !s->peer_pod)
		return 0;
	pod = k8s_pods_get(k8s_pods_of(k), s->peer_pod, s->peer_pod_gen);
	if (!pod)
		return 0;
	n += add_span(out, "peer.service", pod->service_name);
	n += add_span(out, "peer.k8s.namespace.name", pod->namespace_name);
	n += add_span(out, "peer.k8s.pod.name", pod->pod_name);
	n += add_span(out, peer_workload_key((enum k8s_workload)pod->workload), pod->workload_name);
	return n;
}
