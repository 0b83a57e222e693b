// SPDX-License-Identifier: Apache-2.0
/*
 * k8s_pods: pod IP -> pod of this node (lists, statuses, deletion and IP reuse, misses and the
 * early list they ask for, bounds); the runtime socket search order over a fake root; the cost
 * of the hot-path lookup (hit and miss), printed for docs/cri.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/identity/k8s.h"
#include "agent/identity/k8s_pods.h"

#define S(n) ((uint64_t)(n)*1000000000ull)

static void v4(uint8_t out[16], const char *ip)
{
	unsigned a, b, c, d;

	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	assert_int_equal(sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d), 4);
	out[12] = (uint8_t)a;
	out[13] = (uint8_t)b;
	out[14] = (uint8_t)c;
	out[15] = (uint8_t)d;
}

/* One sandbox as a list item: a Deployment-like pod @name in @ns. */
static void list_item(struct k8s_pods *p, const char *sid, const char *ns, const char *name,
		      const char *hash)
{
	struct k8s_kv labels[] = {{"pod-template-hash", hash}};
	struct k8s_pod_in in = {.namespace_name = ns,
				.pod_name = name,
				.pod_uid = "u",
				.labels = labels,
				.n_labels = hash ? 1 : 0,
				.container_name = ""};

	k8s_pods_list_item(p, sid, &in);
}

/* Answers every status asked with @ip (one sandbox at a time: the test lists one new each). */
static unsigned answer_statuses(struct k8s_pods *p, uint64_t now, const char *const *ips, size_t n)
{
	const char *sid;
	uint16_t h, gen;
	unsigned asked = 0;

	while ((h = k8s_pods_next_status(p, now, &gen, &sid)) != 0) {
		k8s_pods_status_done(p, h, gen, true, ips, n, now);
		asked++;
	}
	return asked;
}

static const struct k8s_pod *find(struct k8s_pods *p, const char *ip, uint64_t now)
{
	uint8_t a[16];
	uint16_t h, gen = 0;

	v4(a, ip);
	h = k8s_pods_find(p, a, now, &gen);
	return h ? k8s_pods_get(p, h, gen) : NULL;
}

static void test_named_by_ip(void **state)
{
	struct k8s_pods *p = k8s_pods__new();
	const char *ips[] = {"10.1.0.5", "fd00::5"};
	const struct k8s_pod *pod;
	uint8_t a6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
	uint16_t h, gen;

	(void)state;
	assert_true(k8s_pods_list_due(p, S(1))); /* the first list: at once */
	k8s_pods_list_sent(p, S(1));
	assert_false(k8s_pods_list_due(p, S(2)));
	k8s_pods_list_begin(p);
	list_item(p, "sb1", "pay", "ledger-6f8d9c7b5-k2j4m", "6f8d9c7b5");
	k8s_pods_list_end(p, S(1));
	assert_null(find(p, "10.1.0.5", S(1))); /* no IP before its status */
	assert_int_equal(answer_statuses(p, S(1), ips, 2), 1);
	pod = find(p, "10.1.0.5", S(1));
	assert_non_null(pod);
	assert_string_equal(pod->namespace_name, "pay");
	assert_string_equal(pod->pod_name, "ledger-6f8d9c7b5-k2j4m");
	assert_int_equal(pod->workload, K8S_WL_DEPLOYMENT);
	assert_string_equal(pod->workload_name, "ledger");
	assert_string_equal(pod->service_name, "ledger");
	h = k8s_pods_find(p, a6, S(1), &gen); /* additional_ips: the IPv6 one */
	assert_true(h != 0);
	assert_ptr_equal(k8s_pods_get(p, h, gen), pod);
	/* Listed again: no new status asked. */
	k8s_pods_list_begin(p);
	list_item(p, "sb1", "pay", "ledger-6f8d9c7b5-k2j4m", "6f8d9c7b5");
	k8s_pods_list_end(p, S(11));
	assert_int_equal(answer_statuses(p, S(11), ips, 2), 0);
	k8s_pods__free(p);
}

static void test_deleted_and_ip_reused(void **state)
{
	struct k8s_pods *p = k8s_pods__new();
	const char *ip[] = {"10.1.0.5"};
	struct k8s_pods_stats st;
	uint8_t a[16];
	uint16_t h, gen = 0, h2, gen2 = 0;

	(void)state;
	v4(a, "10.1.0.5");
	k8s_pods_list_begin(p);
	list_item(p, "sb1", "pay", "ledger-6f8d9c7b5-k2j4m", "6f8d9c7b5");
	k8s_pods_list_end(p, S(1));
	answer_statuses(p, S(1), ip, 1);
	h = k8s_pods_find(p, a, S(1), &gen);
	assert_true(h != 0);
	/* ledger deleted, vault-0 given its IP: one list later the IP names vault. */
	k8s_pods_list_begin(p);
	list_item(p, "sb2", "audit", "vault-0", NULL);
	k8s_pods_list_end(p, S(11));
	assert_null(find(p, "10.1.0.5", S(11))); /* ledger is out of the index at once */
	/* A span still batched keeps its handle for the grace. */
	assert_non_null(k8s_pods_get(p, h, gen));
	answer_statuses(p, S(11), ip, 1);
	h2 = k8s_pods_find(p, a, S(11), &gen2);
	assert_true(h2 != 0);
	assert_string_equal(k8s_pods_get(p, h2, gen2)->namespace_name, "audit");
	assert_string_equal(k8s_pods_get(p, h2, gen2)->service_name, "vault-0");
	k8s_pods_expire(p, S(11) + K8S_PODS_GONE_GRACE_NS + 1);
	assert_null(k8s_pods_get(p, h, gen)); /* past its grace */
	k8s_pods_stats(p, &st);
	assert_int_equal(st.gone, 1);
	assert_int_equal(st.pods, 1);
	k8s_pods__free(p);
}

static void test_miss_asks_an_early_list_once(void **state)
{
	struct k8s_pods *p = k8s_pods__new();
	struct k8s_pods_stats st;
	uint8_t a[16], lo[16];
	uint16_t gen;

	(void)state;
	k8s_pods_list_sent(p, S(100));
	v4(a, "10.9.9.9");
	v4(lo, "127.0.0.1");
	assert_int_equal(k8s_pods_find(p, lo, S(100), &gen), 0); /* loopback: never asked */
	assert_false(k8s_pods_list_due(p, S(101)));
	assert_int_equal(k8s_pods_find(p, a, S(100), &gen), 0);
	assert_false(k8s_pods_list_due(p, S(101))); /* at most once per 2 s */
	assert_true(k8s_pods_list_due(p, S(102)));  /* then early */
	k8s_pods_list_sent(p, S(102));
	assert_int_equal(k8s_pods_find(p, a, S(103), &gen), 0);
	assert_false(k8s_pods_list_due(p, S(105))); /* the same miss: not before 30 s */
	assert_int_equal(k8s_pods_find(p, a, S(100) + K8S_PODS_MISS_NS, &gen), 0);
	assert_true(k8s_pods_list_due(p, S(100) + K8S_PODS_MISS_NS)); /* retried */
	k8s_pods_stats(p, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.early_lists, 1);
	k8s_pods__free(p);
}

static void test_status_failure_retried_and_bounds(void **state)
{
	struct k8s_pods *p = k8s_pods__new();
	const char *ip[] = {"10.1.0.5"}, *sid;
	struct k8s_pods_stats st;
	char id[32], name[32];
	uint16_t h, gen;

	(void)state;
	k8s_pods_list_begin(p);
	for (unsigned i = 0; i < K8S_PODS_MAX + 3; i++) {
		snprintf(id, sizeof(id), "sb%u", i);
		snprintf(name, sizeof(name), "p%u", i);
		list_item(p, id, "ns", name, NULL);
	}
	k8s_pods_list_end(p, S(1));
	k8s_pods_stats(p, &st);
	assert_int_equal(st.added, K8S_PODS_MAX);
	assert_int_equal(st.full, 3);
	h = k8s_pods_next_status(p, S(1), &gen, &sid);
	assert_true(h != 0);
	k8s_pods_status_done(p, h, gen, false, NULL, 0, S(1)); /* runtime down */
	k8s_pods_status_done(p, h, gen, true, ip, 1, S(1));    /* not asked now: ignored */
	assert_null(find(p, "10.1.0.5", S(1)));
	/* The others are asked; the failed one again after K8S_PODS_STATUS_RETRY_NS. */
	while ((h = k8s_pods_next_status(p, S(1), &gen, &sid)) != 0)
		k8s_pods_status_done(p, h, gen, true, NULL, 0, S(1));
	h = k8s_pods_next_status(p, S(1) + K8S_PODS_STATUS_RETRY_NS, &gen, &sid);
	assert_true(h != 0);
	assert_string_equal(sid, "sb0");
	k8s_pods_status_done(p, h, gen, true, ip, 1, S(4));
	assert_string_equal(find(p, "10.1.0.5", S(4))->pod_name, "p0");
	k8s_pods__free(p);
}

/* ---- the runtime socket search, over a fake root ---- */

static void make_socket(const char *root, const char *rel)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[256], cmd[300];
	int fd;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd); /* the socket file stays */
}

static void test_socket_search_order(void **state)
{
	char root[] = "/tmp/mt-k8s-root-XXXXXX", out[128], want[256], cmd[300];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_false(k8s_socket_search(root, out, sizeof(out))); /* none: cgroup names */
	/* A regular file where k3s's socket would be is no socket. */
	snprintf(want, sizeof(want), "%s/run/k3s/containerd", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", want);
	assert_int_equal(system(cmd), 0);
	snprintf(want, sizeof(want), "%s/run/k3s/containerd/containerd.sock", root);
	f = fopen(want, "w");
	assert_non_null(f);
	fclose(f);
	assert_false(k8s_socket_search(root, out, sizeof(out)));
	unlink(want);
	make_socket(root, "/run/k3s/containerd/containerd.sock"); /* k3s alone */
	assert_true(k8s_socket_search(root, out, sizeof(out)));
	assert_string_equal(out, want);
	make_socket(root, "/run/crio/crio.sock"); /* CRI-O before k3s */
	assert_true(k8s_socket_search(root, out, sizeof(out)));
	snprintf(want, sizeof(want), "%s/run/crio/crio.sock", root);
	assert_string_equal(out, want);
	make_socket(root, "/run/containerd/containerd.sock"); /* containerd first */
	assert_true(k8s_socket_search(root, out, sizeof(out)));
	snprintf(want, sizeof(want), "%s/run/containerd/containerd.sock", root);
	assert_string_equal(out, want);
	assert_false(k8s_socket_search(root, out, 8)); /* does not fit: not cut */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

/* ---- cost of the hot-path lookup ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	/* CPU time of this thread: the machine is shared, wall time counts others' turns too. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_lookup_cost(void **state)
{
	struct k8s_pods *p = k8s_pods__new();
	char id[32], name[32], ipbuf[32];
	const char *ips[1] = {ipbuf};
	uint8_t hit[16], miss[16];
	const unsigned n = 4000000;
	uint64_t t0, t_hit, t_miss, sum = 0;
	uint16_t gen;

	(void)state;
	/* A full table: 512 pods. */
	k8s_pods_list_begin(p);
	for (unsigned i = 0; i < K8S_PODS_MAX; i++) {
		snprintf(id, sizeof(id), "sb%u", i);
		snprintf(name, sizeof(name), "p%u", i);
		list_item(p, id, "ns", name, NULL);
	}
	k8s_pods_list_end(p, S(1));
	for (unsigned i = 0; i < K8S_PODS_MAX; i++) {
		const char *sid;
		uint16_t h = k8s_pods_next_status(p, S(1), &gen, &sid);

		snprintf(ipbuf, sizeof(ipbuf), "10.1.%u.%u", i / 200, i % 200 + 2);
		k8s_pods_status_done(p, h, gen, true, ips, 1, S(1));
	}
	v4(hit, "10.1.1.77");
	v4(miss, "10.200.0.1");
	t0 = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		hit[15] = (uint8_t)(2 + i % 200);
		sum += k8s_pods_find(p, hit, S(2), &gen);
	}
	t_hit = mono_ns() - t0;
	t0 = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		miss[15] = (uint8_t)(i % 64); /* 64 addresses of other nodes: remembered misses */
		sum += k8s_pods_find(p, miss, S(2), &gen);
	}
	t_miss = mono_ns() - t0;
	assert_true(sum > 0);
	printf("k8s_pods_find: %.1f ns a hit, %.1f ns a miss (512 pods; %zu bytes of table)\n",
	       (double)t_hit / n, (double)t_miss / n, k8s_pods_size());
	k8s_pods__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_by_ip),
		cmocka_unit_test(test_deleted_and_ip_reused),
		cmocka_unit_test(test_miss_asks_an_early_list_once),
		cmocka_unit_test(test_status_failure_retried_and_bounds),
		cmocka_unit_test(test_socket_search_order),
		cmocka_unit_test(test_lookup_cost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
