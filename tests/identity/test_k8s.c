// SPDX-License-Identifier: Apache-2.0
/* k8s: workload inference, service.name rules and image names from what the runtime says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/identity/k8s.h"

#define KV(k, v)         \
	{                \
		(k), (v) \
	}
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct wl {
	enum k8s_workload kind;
	char name[K8S_OBJ_MAX];
	char parent[K8S_OBJ_MAX];
};

static struct wl infer(const char *pod, const struct k8s_kv *labels, size_t n)
{
	struct wl w;

	w.kind = k8s_workload_infer(pod, labels, n, w.name, sizeof(w.name), w.parent,
				    sizeof(w.parent));
	return w;
}

static void test_deployment_from_pod_template_hash(void **state)
{
	static const struct k8s_kv labels[] = {KV("app", "checkout"),
					       KV("pod-template-hash", "7d9f8b6c5d")};
	struct wl w = infer("checkout-7d9f8b6c5d-x2x4q", labels, N(labels));

	(void)state;
	assert_int_equal(w.kind, K8S_WL_DEPLOYMENT);
	assert_string_equal(w.name, "checkout");
	assert_string_equal(w.parent, "checkout-7d9f8b6c5d");
	assert_string_equal(k8s_workload_attr(w.kind), "k8s.deployment.name");
	assert_string_equal(k8s_workload_parent_attr(w.kind), "k8s.replicaset.name");
}

static void test_replicaset_without_deployment(void **state)
{
	/* A ReplicaSet made by hand: its name does not end in the hash. */
	static const struct k8s_kv labels[] = {KV("pod-template-hash", "abc12")};
	struct wl w = infer("frontend-9zq8w", labels, N(labels));

	(void)state;
	assert_int_equal(w.kind, K8S_WL_REPLICASET);
	assert_string_equal(w.name, "frontend");
	assert_string_equal(w.parent, "");
}

static void test_statefulset_daemonset(void **state)
{
	static const struct k8s_kv sts[] = {KV("controller-revision-hash", "db-6b8f9d7c4"),
					    KV("statefulset.kubernetes.io/pod-name", "db-12")};
	static const struct k8s_kv ds[] = {KV("controller-revision-hash", "5f7d8"),
					   KV("pod-template-generation", "3")};
	struct wl w = infer("db-12", sts, N(sts));

	(void)state;
	assert_int_equal(w.kind, K8S_WL_STATEFULSET);
	assert_string_equal(w.name, "db");
	w = infer("node-exporter-8h2kd", ds, N(ds));
	assert_int_equal(w.kind, K8S_WL_DAEMONSET);
	assert_string_equal(w.name, "node-exporter");
}

static void test_job_and_cronjob(void **state)
{
	static const struct k8s_kv job[] = {KV("batch.kubernetes.io/job-name", "migrate-v2")};
	static const struct k8s_kv cron[] = {KV("job-name", "report-29012345")};
	static const struct k8s_kv short_suffix[] = {KV("job-name", "build-1234")};
	struct wl w = infer("migrate-v2-7xk2p", job, N(job));

	(void)state;
	assert_int_equal(w.kind, K8S_WL_JOB);
	assert_string_equal(w.name, "migrate-v2");
	w = infer("report-29012345-x7k2p", cron, N(cron));
	assert_int_equal(w.kind, K8S_WL_CRONJOB);
	assert_string_equal(w.name, "report");
	assert_string_equal(w.parent, "report-29012345");
	/* Fewer than 8 digits is no scheduled time in minutes: a Job of its own. */
	w = infer("build-1234-abcde", short_suffix, N(short_suffix));
	assert_int_equal(w.kind, K8S_WL_JOB);
	assert_string_equal(w.name, "build-1234");
}

static void test_bare_pod(void **state)
{
	static const struct k8s_kv labels[] = {KV("run", "debug")};
	struct wl w = infer("debug", labels, N(labels));

	(void)state;
	assert_int_equal(w.kind, K8S_WL_NONE);
	assert_null(k8s_workload_attr(w.kind));
	/* A hash label on a name without a dash names nothing. */
	static const struct k8s_kv hash[] = {KV("pod-template-hash", "x")};
	w = infer("lonely", hash, N(hash));
	assert_int_equal(w.kind, K8S_WL_NONE);
}

static const char *service(const struct k8s_kv *labels, size_t nl, const struct k8s_kv *ann,
			   size_t na, const char *pod, const char *container)
{
	static struct k8s_meta m;
	struct k8s_pod_in in = {.namespace_name = "shop",
				.pod_name = pod,
				.pod_uid = "u",
				.labels = labels,
				.n_labels = nl,
				.annotations = ann,
				.n_annotations = na,
				.container_name = container};

	memset(&m, 0, sizeof(m));
	k8s_meta_build(&m, &in);
	assert_string_equal(m.namespace_name, "shop");
	assert_string_equal(m.container_name, container);
	return m.service_name;
}

static void test_service_name_rules(void **state)
{
	static const struct k8s_kv all[] = {KV("pod-template-hash", "7d9f8b6c5d"),
					    KV("app.kubernetes.io/name", "shop-web"),
					    KV("app.kubernetes.io/instance", "checkout-eu")};
	static const struct k8s_kv ann[] = {KV("resource.opentelemetry.io/service.name", "co")};
	static const struct k8s_kv name_only[] = {KV("pod-template-hash", "7d9f8b6c5d"),
						  KV("app.kubernetes.io/name", "shop-web")};
	static const struct k8s_kv hash_only[] = {KV("pod-template-hash", "7d9f8b6c5d")};
	static const char pod[] = "checkout-7d9f8b6c5d-x2x4q";

	(void)state;
	/* The annotation, then instance, then name, then the workload, then the container. */
	assert_string_equal(service(all, N(all), ann, N(ann), pod, "web"), "co");
	assert_string_equal(service(all, N(all), NULL, 0, pod, "web"), "checkout-eu");
	assert_string_equal(service(name_only, N(name_only), NULL, 0, pod, "web"), "shop-web");
	assert_string_equal(service(hash_only, N(hash_only), NULL, 0, pod, "web"), "checkout");
	assert_string_equal(service(NULL, 0, NULL, 0, "debug", "shell"), "shell");
	/* An empty annotation does not win. */
	static const struct k8s_kv empty[] = {KV("resource.opentelemetry.io/service.name", "")};
	assert_string_equal(service(hash_only, N(hash_only), empty, N(empty), pod, "web"),
			    "checkout");
}

static void test_image_name(void **state)
{
	char out[K8S_IMAGE_MAX];

	(void)state;
	k8s_image_name("docker.io/library/redis:7.2", out, sizeof(out));
	assert_string_equal(out, "docker.io/library/redis");
	k8s_image_name("registry.local:5000/team/app:1.0@sha256:abcd", out, sizeof(out));
	assert_string_equal(out, "registry.local:5000/team/app");
	k8s_image_name("registry.local:5000/team/app", out, sizeof(out));
	assert_string_equal(out, "registry.local:5000/team/app");
	k8s_image_name("nginx", out, sizeof(out));
	assert_string_equal(out, "nginx");
	k8s_image_name("sha256:0123abcd", out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_cache_without_runtime(void **state)
{
	/* A socket that is not there: lookups fail, counted, and nothing is named. */
	struct k8s *k = k8s__new("/nonexistent/cri.sock");
	static const char cid[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct k8s_stats st;
	uint32_t gen, h, gen2, h2;

	(void)state;
	assert_non_null(k);
	h = k8s_acquire(k, cid, 1, &gen);
	assert_int_not_equal(h, 0);
	h2 = k8s_acquire(k, cid, 1, &gen2);
	assert_int_equal(h, h2);
	assert_int_equal(gen, gen2);
	k8s_poll(k, 2);
	assert_null(k8s_get(k, h, gen));
	k8s_stats(k, &st);
	assert_int_equal(st.entries, 1);
	assert_true(st.failed >= 1);
	/* Released twice (two holders): dropped K8S_DROP_GRACE_NS after the last. */
	k8s_release(k, h, gen, 10);
	k8s_poll(k, 10 + K8S_DROP_GRACE_NS + 1);
	k8s_stats(k, &st);
	assert_int_equal(st.entries, 1);
	k8s_release(k, h, gen, 20);
	k8s_poll(k, 20 + K8S_DROP_GRACE_NS / 2);
	k8s_stats(k, &st);
	assert_int_equal(st.entries, 1);
	/* Expiries wait for the tables' periodic walk: at most K8S_SCAN_NS later. */
	k8s_poll(k, 20 + K8S_DROP_GRACE_NS + K8S_SCAN_NS + 1);
	k8s_stats(k, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.dropped, 1);
	/* The stale handle names nothing, and releasing it again is harmless. */
	assert_null(k8s_get(k, h, gen));
	k8s_release(k, h, gen, 30);
	k8s__free(k);
}

/*
 * The tables are walked when work is due, else once per K8S_SCAN_NS: a new
 * container's lookup starts at the next tick; a tick with nothing due does
 * nothing, and a failed lookup is retried at a walk after K8S_RETRY_NS.
 */
static void test_poll_walks_when_due(void **state)
{
	struct k8s *k = k8s__new("/nonexistent/cri.sock");
	static const char a[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static const char b[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
	struct k8s_stats st;
	uint32_t gen;

	(void)state;
	assert_non_null(k);
	k8s_poll(k, 1);
	assert_int_not_equal(k8s_acquire(k, a, 1, &gen), 0);
	k8s_poll(k, 2);
	k8s_stats(k, &st);
	assert_int_equal(st.failed, 1);
	assert_int_not_equal(k8s_acquire(k, b, 3, &gen), 0);
	k8s_poll(k, 4); /* within the walk period, but a lookup is due */
	k8s_stats(k, &st);
	assert_int_equal(st.failed, 2);
	k8s_poll(k, 5);
	k8s_poll(k, K8S_RETRY_NS); /* nothing due yet */
	k8s_stats(k, &st);
	assert_int_equal(st.failed, 2);
	k8s_poll(k, K8S_RETRY_NS + K8S_SCAN_NS + 10); /* both retried */
	k8s_stats(k, &st);
	assert_int_equal(st.failed, 4);
	k8s__free(k);
}

static void test_cache_bounded(void **state)
{
	struct k8s *k = k8s__new("/nonexistent/cri.sock");
	struct k8s_stats st;
	char cid[65];
	uint32_t gen;

	(void)state;
	for (unsigned i = 0; i < K8S_MAX + 5; i++) {
		snprintf(cid, sizeof(cid), "%064x", i);
		k8s_acquire(k, cid, 1, &gen);
	}
	k8s_stats(k, &st);
	assert_int_equal(st.entries, K8S_MAX);
	assert_int_equal(st.full, 5);
	k8s__free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deployment_from_pod_template_hash),
		cmocka_unit_test(test_replicaset_without_deployment),
		cmocka_unit_test(test_statefulset_daemonset),
		cmocka_unit_test(test_job_and_cronjob),
		cmocka_unit_test(test_bare_pod),
		cmocka_unit_test(test_service_name_rules),
		cmocka_unit_test(test_image_name),
		cmocka_unit_test(test_cache_without_runtime),
		cmocka_unit_test(test_poll_walks_when_due),
		cmocka_unit_test(test_cache_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
