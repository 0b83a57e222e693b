// SPDX-License-Identifier: Apache-2.0
/*
 * The pure half of k8s: from what the runtime says about a pod and a
 * container to the OpenTelemetry names (workload, service.name). No I/O.
 */
#include <stdio.h>
#include <string.h>

#include "agent/common/util.h"
#include "agent/identity/k8s.h"

static const char *kv_find(const struct k8s_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i].key && kv[i].value && !strcmp(kv[i].key, key))
			return kv[i].value;
	return NULL;
}

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* @s without its last "-suffix" into @out; false when @s has no '-'. */
static bool cut_last(const char *s, char *out, size_t len)
{
	const char *dash = strrchr(s, '-');

	if (!dash || dash == s)
		return false;
	snprintf(out, len, "%.*s", (int)(dash - s), s);
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !memcmp(s + n - m, suffix, m);
}

enum k8s_workload k8s_workload_infer(const char *pod_name, const struct k8s_kv *labels,
				     size_t n_labels, char *name, size_t name_len, char *parent,
				     size_t parent_len)
{
	const char *hash = kv_find(labels, n_labels, "pod-template-hash");
	const char *job = kv_find(labels, n_labels, "batch.kubernetes.io/job-name");
	const char *dash;
	char buf[K8S_OBJ_MAX + 32];

	name[0] = parent[0] = '\0';
	if (!job)
		job = kv_find(labels, n_labels, "job-name");
	if (hash && hash[0] && cut_last(pod_name, buf, sizeof(buf))) {
		/* Deployment → ReplicaSet "<deployment>-<hash>" → pod "<replicaset>-<5 chars>". */
		char suffix[K8S_OBJ_MAX];

		snprintf(suffix, sizeof(suffix), "-%s", hash);
		mt_strlcpy(parent, buf, parent_len);
		if (ends_with(buf, suffix) && strlen(buf) > strlen(suffix)) {
			snprintf(name, name_len, "%.*s", (int)(strlen(buf) - strlen(suffix)), buf);
			return K8S_WL_DEPLOYMENT;
		}
		mt_strlcpy(name, buf, name_len);
		parent[0] = '\0';
		return K8S_WL_REPLICASET;
	}
	if (kv_find(labels, n_labels, "statefulset.kubernetes.io/pod-name") ||
	    (kv_find(labels, n_labels, "controller-revision-hash") &&
	     kv_find(labels, n_labels, "apps.kubernetes.io/pod-index"))) {
		/* StatefulSet pods are "<statefulset>-<ordinal>". */
		dash = strrchr(pod_name, '-');
		if (dash && dash != pod_name && all_digits(dash + 1, strlen(dash + 1))) {
			snprintf(name, name_len, "%.*s", (int)(dash - pod_name), pod_name);
			return K8S_WL_STATEFULSET;
		}
	}
	if (kv_find(labels, n_labels, "pod-template-generation") &&
	    kv_find(labels, n_labels, "controller-revision-hash") &&
	    cut_last(pod_name, buf, sizeof(buf))) {
		/* DaemonSet pods are "<daemonset>-<5 chars>". */
		mt_strlcpy(name, buf, name_len);
		return K8S_WL_DAEMONSET;
	}
	if (job && job[0]) {
		/* A CronJob's Jobs are "<cronjob>-<scheduled time in minutes since 1970>". */
		dash = strrchr(job, '-');
		if (dash && dash != job && strlen(dash + 1) >= 8 &&
		    all_digits(dash + 1, strlen(dash + 1))) {
			snprintf(name, name_len, "%.*s", (int)(dash - job), job);
			mt_strlcpy(parent, job, parent_len);
			return K8S_WL_CRONJOB;
		}
		mt_strlcpy(name, job, name_len);
		return K8S_WL_JOB;
	}
	return K8S_WL_NONE;
}

void k8s_image_name(const char *image, char *out, size_t len)
{
	const char *at = strchr(image, '@');
	size_t n = at ? (size_t)(at - image) : strlen(image);
	const char *slash, *colon;

	/* An image id (what some runtimes report for an image pulled by digest) is no name. */
	if (!strncmp(image, "sha256:", 7)) {
		if (len)
			out[0] = '\0';
		return;
	}
	/* A ':' after the last '/' starts the tag; one before it is a registry's port. */
	slash = memrchr(image, '/', n);
	colon = memrchr(slash ? slash : image, ':', n - (size_t)((slash ? slash : image) - image));
	if (colon)
		n = (size_t)(colon - image);
	snprintf(out, len, "%.*s", (int)n, image);
}

void k8s_meta_build(struct k8s_meta *m, const struct k8s_pod_in *in)
{
	static const char *const service_keys[] = {"app.kubernetes.io/instance",
						   "app.kubernetes.io/name"};
	const char *svc;

	mt_strlcpy(m->namespace_name, in->namespace_name ? in->namespace_name : "",
		   sizeof(m->namespace_name));
	mt_strlcpy(m->pod_name, in->pod_name ? in->pod_name : "", sizeof(m->pod_name));
	mt_strlcpy(m->pod_uid, in->pod_uid ? in->pod_uid : "", sizeof(m->pod_uid));
	mt_strlcpy(m->container_name, in->container_name ? in->container_name : "",
		   sizeof(m->container_name));
	m->workload = (uint8_t)k8s_workload_infer(m->pod_name, in->labels, in->n_labels,
						  m->workload_name, sizeof(m->workload_name),
						  m->workload_parent, sizeof(m->workload_parent));

	svc = kv_find(in->annotations, in->n_annotations, "resource.opentelemetry.io/service.name");
	for (size_t i = 0; i < ARRAY_SIZE(service_keys) && (!svc || !svc[0]); i++)
		svc = kv_find(in->labels, in->n_labels, service_keys[i]);
	if (!svc || !svc[0])
		svc = m->workload_name;
	if (!svc[0])
		svc = m->container_name;
	if (!svc[0])
		svc = m->pod_name;
	mt_strlcpy(m->service_name, svc, sizeof(m->service_name));
}

const char *k8s_workload_attr(enum k8s_workload w)
{
	switch (w) {
	case K8S_WL_DEPLOYMENT:
		return "k8s.deployment.name";
	case K8S_WL_REPLICASET:
		return "k8s.replicaset.name";
	case K8S_WL_STATEFULSET:
		return "k8s.statefulset.name";
	case K8S_WL_DAEMONSET:
		return "k8s.daemonset.name";
	case K8S_WL_JOB:
		return "k8s.job.name";
	case K8S_WL_CRONJOB:
		return "k8s.cronjob.name";
	default:
		return NULL;
	}
}

const char *k8s_workload_parent_attr(enum k8s_workload w)
{
	if (w == K8S_WL_DEPLOYMENT)
		return "k8s.replicaset.name";
	if (w == K8S_WL_CRONJOB)
		return "k8s.job.name";
	return NULL;
}

const char *k8s_workload_kind(enum k8s_workload w)
{
	static const char *const kinds[] = {"",		 "deployment", "replicaset", "statefulset",
					    "daemonset", "job",	       "cronjob"};

	return (unsigned)w < ARRAY_SIZE(kinds) ? kinds[w] : "";
}
