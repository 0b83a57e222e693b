// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "agent/export/k8s_attrs.h"

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
