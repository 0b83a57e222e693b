/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes attributes of a span's resource (OpenTelemetry's k8s.* and
 * container.* conventions), from the names the k8s cache holds for the
 * process's container. Shared by every exporter, so each says the same.
 */
#ifndef MESHTRACE_K8S_ATTRS_H
#define MESHTRACE_K8S_ATTRS_H

#include "agent/export/span_attrs.h"
#include "agent/identity/identity.h"
#include "agent/identity/k8s.h"
#include "agent/trace/span.h"

#define K8S_ATTRS_MAX 10

struct k8s_attr {
	const char *key;
	const char *value; /* points into the k8s cache: valid until the next k8s_poll() */
};

/*
 * The attributes of @r: service.namespace, then, when @k still holds its
 * container's names, k8s.namespace.name, k8s.pod.name, k8s.pod.uid,
 * k8s.container.name, container.id, container.image.name and the workload's.
 * Empty values are left out. Returns how many were written to @out.
 */
unsigned k8s_resource_attrs(const struct k8s *k, const struct mt_resource *r,
			    struct k8s_attr out[K8S_ATTRS_MAX]);

/*
 * Appends to @out, for a CLIENT span whose peer is a pod of this node (the
 * handle in @s->peer_pod still names it in @k's pods table): peer.service
 * (the pod's service.name by the pod's rules), peer.k8s.namespace.name,
 * peer.k8s.pod.name and peer.k8s.<workload>.name (peer.k8s.deployment.name,
 * ...). Values point into the table: valid until the next k8s_poll(). Returns
 * how many were added (at most 4, fewer when @out is full).
 */
unsigned k8s_span_peer_attrs(const struct k8s *k, const struct mt_span *s, struct span_attrs *out);

#endif /* MESHTRACE_K8S_ATTRS_H */
