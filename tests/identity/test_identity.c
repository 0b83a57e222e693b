// SPDX-License-Identifier: Apache-2.0
/* Identity: service names from environment blocks, and /proc lookups on a fake /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/identity/identity.h"

static const char *scan_all(struct environ_scan *s, const char *env, size_t n, size_t piece)
{
	environ_scan_init(s);
	for (size_t off = 0; off < n; off += piece)
		environ_scan_feed(s, env + off, n - off < piece ? n - off : piece);
	return environ_scan_result(s);
}

static void test_otel_service_name_wins(void **state)
{
	static const char env[] = "PATH=/bin\0OTEL_RESOURCE_ATTRIBUTES=service.name=fromattrs,x=y\0"
				  "OTEL_SERVICE_NAME=checkout\0HOME=/root";
	struct environ_scan s;

	(void)state;
	/* Every piece size: entries split anywhere still parse. */
	for (size_t piece = 1; piece <= sizeof(env); piece++)
		assert_string_equal(scan_all(&s, env, sizeof(env) - 1, piece), "checkout");
}

static void test_resource_attributes_fallback(void **state)
{
	static const char env[] = "A=1\0OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, "
				  "service.name=cart%20svc ,k=v\0";
	struct environ_scan s;

	(void)state;
	assert_string_equal(scan_all(&s, env, sizeof(env) - 1, 7), "cart svc");
}

static void test_no_name(void **state)
{
	static const char env[] =
		"OTEL_SERVICE_NAMEX=nope\0XOTEL_SERVICE_NAME=nope\0OTEL_SERVICE_NAME=";
	struct environ_scan s;

	(void)state;
	assert_string_equal(scan_all(&s, env, sizeof(env) - 1, 3), "");
}

static void test_odd_bytes_and_huge_environment(void **state)
{
	size_t n = 4u << 20;
	char *env = malloc(n);
	struct environ_scan s;
	const char *name;
	size_t off = 0;

	(void)state;
	assert_non_null(env);
	/* 4 MiB of binary noise and an entry longer than the scan buffer, then the name. */
	for (size_t i = 0; i < n; i++)
		env[i] = (char)((i * 2654435761u) >> 13);
	memcpy(env + 1000, "\0OTEL_SERVICE_NAME=", 19);
	memset(env + 1019, 'x', 100000); /* a 100 kB value: kept truncated */
	env[101019] = '\0';
	off = n - 64;
	memcpy(env + off, "\0OTEL_SERVICE_NAME=\xff\xfe-svc\0", 27);
	name = scan_all(&s, env, n, 4096);
	/* The last definition wins, bytes as they are (the exporter makes them valid UTF-8). */
	assert_string_equal(name, "\xff\xfe-svc");
	free(env);
}

static void test_unterminated_last_entry(void **state)
{
	static const char env[] = "OTEL_SERVICE_NAME=tail";
	struct environ_scan s;

	(void)state;
	assert_string_equal(scan_all(&s, env, sizeof(env) - 1, 5), "tail");
}

/* A fake /proc: PID/exe symlink and PID/environ file. */
static void make_proc(const char *root, unsigned pid, const char *exe, const char *env, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%u", root, pid);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%u/exe", root, pid);
	assert_int_equal(symlink(exe, path), 0);
	snprintf(path, sizeof(path), "%s/%u/environ", root, pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite(env, 1, n, f);
	fclose(f);
}

static void test_lookup_fake_proc(void **state)
{
	char root[] = "/tmp/mt-proc-XXXXXX";
	const struct mt_resource *r;
	struct identity *id;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_proc(root, 100, "/usr/sbin/nginx", "A=b\0", 4);
	make_proc(root, 101, "/opt/app/server (deleted)", "OTEL_SERVICE_NAME=backend\0", 26);
	id = identity__new(root);
	assert_non_null(id);

	r = identity_lookup(id, 100, "nginx", 1);
	assert_int_equal(r->pid, 100);
	assert_string_equal(r->exe_name, "nginx");
	assert_string_equal(r->service_name, "nginx");

	r = identity_lookup(id, 101, "server", 1);
	assert_string_equal(r->exe_name, "server");
	assert_string_equal(r->service_name, "backend");

	/* Gone from /proc: the kernel's thread name stands in. */
	r = identity_lookup(id, 102, "curl", 1);
	assert_string_equal(r->exe_name, "curl");
	assert_string_equal(r->service_name, "curl");

	/* Many pids: bounded, never fails. */
	for (uint32_t pid = 1000; pid < 1000 + 3 * IDENTITY_MAX; pid++)
		assert_non_null(identity_lookup(id, pid, "x", 2));
	identity__free(id);
	identity__free(NULL);
}

/* Copies @tmpl into @out with every "%s" replaced by @id. */
static void expand_id(char *out, size_t len, const char *tmpl, const char *id)
{
	size_t o = 0;

	while (*tmpl && o + 65 < len) {
		if (tmpl[0] == '%' && tmpl[1] == 's') {
			memcpy(out + o, id, strlen(id));
			o += strlen(id);
			tmpl += 2;
		} else {
			out[o++] = *tmpl++;
		}
	}
	out[o] = '\0';
}

/* cgroup paths as the runtimes write them (v2 "0::" lines, v1 "N:ctrl:" lines). */
static void test_cgroup_formats(void **state)
{
	static const char id[] = "3f2a6b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
	static const struct {
		const char *text;
		const char *container;
		const char *pod;
		const char *runtime;
		const char *service;
	} cases[] = {
		/* docker, systemd cgroup driver */
		{"0::/system.slice/docker-%s.scope\n", id, "", "docker", "container/3f2a6b0c9d8e"},
		/* docker, cgroupfs driver, cgroup v1 with several hierarchies */
		{"12:pids:/docker/%s\n11:memory:/docker/%s\n0::/\n", id, "", "docker",
		 "container/3f2a6b0c9d8e"},
		/* containerd under kubelet, systemd driver: the pod uid has underscores */
		{"0::/kubepods.slice/kubepods-burstable.slice/"
		 "kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_112233445566.slice/"
		 "cri-containerd-%s.scope\n",
		 id, "1a2b3c4d-5e6f-7a8b-9c0d-112233445566", "containerd",
		 "pod/1a2b3c4d-5e6f-7a8b-9c0d-112233445566"},
		/* kubelet cgroupfs driver (containerd) */
		{"0::/kubepods/besteffort/pod1A2B3C4D-5E6F-7A8B-9C0D-112233445566/%s\n", id,
		 "1a2b3c4d-5e6f-7a8b-9c0d-112233445566", "containerd",
		 "pod/1a2b3c4d-5e6f-7a8b-9c0d-112233445566"},
		/* cri-o, guaranteed QoS pod (no QoS slice) */
		{"0::/kubepods.slice/kubepods-pod0a0b0c0d_1111_2222_3333_444455556666.slice/"
		 "crio-%s.scope\n",
		 id, "0a0b0c0d-1111-2222-3333-444455556666", "cri-o",
		 "pod/0a0b0c0d-1111-2222-3333-444455556666"},
		/* cri-o's conmon sits beside the container: no container id */
		{"0::/machine.slice/crio-conmon-%s.scope\n", "", "", "", ""},
		/* podman, rootless */
		{"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-%s.scope/"
		 "container\n",
		 id, "", "podman", "container/3f2a6b0c9d8e"},
		/* podman, cgroupfs driver (no systemd), cgroup v1 and the unified hierarchy */
		{"4:memory:/libpod_parent/libpod-%s\n0::/libpod_parent/libpod-%s\n", id, "",
		 "podman", "container/3f2a6b0c9d8e"},
		/* podman's conmon under cgroupfs */
		{"0::/libpod_parent/libpod-conmon-%s\n", "", "", "", ""},
		/* systemd services and sessions: no container */
		{"0::/system.slice/nginx.service\n", "", "", "", ""},
		{"0::/user.slice/user-1000.slice/session-3.scope\n", "", "", "", ""},
		{"0::/init.scope\n", "", "", "", ""},
		/* not quite an id: 63 hex digits */
		{"0::/docker/3f2a6b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2\n", "",
		 "", "", ""},
		/* empty, and no trailing newline */
		{"", "", "", "", ""},
		{"0::/system.slice/docker-%s.scope", id, "", "docker", "container/3f2a6b0c9d8e"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cgroup_identity ci;
		char text[1024], svc[MT_SERVICE_MAX];
		bool found;

		expand_id(text, sizeof(text), cases[i].text, id);
		found = cgroup_identity_parse(text, strlen(text), &ci);
		assert_int_equal(found, cases[i].container[0] || cases[i].pod[0]);
		assert_string_equal(ci.container_id, cases[i].container);
		assert_string_equal(ci.pod_uid, cases[i].pod);
		assert_string_equal(ci.runtime, cases[i].runtime);
		cgroup_identity_service(&ci, svc, sizeof(svc));
		assert_string_equal(svc, cases[i].service);
	}
}

/* Name precedence on a fake /proc: environment, then container, then executable; exit and exec. */
static void test_container_name_and_lifecycle(void **state)
{
	char root[] = "/tmp/mt-proc-XXXXXX";
	char path[256];
	const struct mt_resource *r;
	struct identity_stats st;
	struct identity *id;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_proc(root, 300, "/usr/bin/app", "A=1\0", 4);
	make_proc(root, 301, "/usr/bin/app", "OTEL_SERVICE_NAME=named\0", 24);
	for (unsigned pid = 300; pid <= 301; pid++) {
		snprintf(path, sizeof(path), "%s/%u/cgroup", root, pid);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("0::/system.slice/docker-"
		      "aaaaaaaaaaaabbbbbbbbbbbbccccccccccccddddddddddddeeeeeeeeeeeeffff.scope\n",
		      f);
		fclose(f);
	}
	/* Debian's redis-server is a symlink to redis-check-rdb: the name it was started as wins. */
	make_proc(root, 302, "/usr/bin/redis-check-rdb", "A=1\0", 4);
	snprintf(path, sizeof(path), "%s/302/comm", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("redis-server\n", f);
	fclose(f);
	/* A name the kernel cut to 15 characters is not a different name. */
	make_proc(root, 303, "/usr/bin/python3.11", "A=1\0", 4);
	snprintf(path, sizeof(path), "%s/303/comm", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("python3\n", f);
	fclose(f);
	id = identity__new(root);
	assert_non_null(id);
	r = identity_lookup(id, 302, "redis-server", 1);
	assert_string_equal(r->service_name, "redis-server");
	assert_string_equal(r->exe_name, "redis-check-rdb");
	assert_string_equal(identity_lookup(id, 303, "python3", 1)->service_name, "python3.11");
	r = identity_lookup(id, 300, "app", 1);
	assert_string_equal(r->service_name, "container/aaaaaaaaaaaa");
	assert_string_equal(r->exe_name, "app");
	r = identity_lookup(id, 301, "app", 1);
	assert_string_equal(r->service_name, "named");

	/* exec: the next lookup reads /proc again. */
	snprintf(path, sizeof(path), "%s/300/environ", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("OTEL_SERVICE_NAME=after-exec\0", 1, 29, f);
	fclose(f);
	assert_string_equal(identity_lookup(id, 300, "app", 2)->service_name,
			    "container/aaaaaaaaaaaa");
	identity_on_exec(id, 300);
	assert_string_equal(identity_lookup(id, 300, "app", 3)->service_name, "after-exec");

	/* exit: kept through the grace period (even past the TTL), then dropped. */
	identity_on_exit(id, 301, 10);
	identity_expire(id, 10 + IDENTITY_EXIT_GRACE_NS / 2);
	assert_string_equal(identity_lookup(id, 301, "app", 10 + IDENTITY_TTL_NS * 2)->service_name,
			    "named");
	identity_expire(id, 10 + IDENTITY_EXIT_GRACE_NS + 1);
	identity_stats(id, &st);
	assert_int_equal(st.exits, 1);
	assert_int_equal(st.execs, 1);
	assert_int_equal(st.entries, 3);
	identity__free(id);
}

/* An exec event as the kernel sends it. */
static void exec_event(struct mt_exec_event *ev, uint32_t pid, const char *comm, const char *exe,
		       const char *svc, const char *attrs)
{
	memset(ev, 0, sizeof(*ev));
	ev->proc.head.kind = MT_EV_PROC;
	ev->proc.pid = pid;
	ev->proc.op = MT_PROC_EXEC;
	/* Fields are NUL-padded, not always NUL-terminated: memcpy what fits. */
	memcpy(ev->proc.comm, comm, strnlen(comm, sizeof(ev->proc.comm)));
	memcpy(ev->exe, exe, strnlen(exe, sizeof(ev->exe)));
	memcpy(ev->otel_service_name, svc, strnlen(svc, sizeof(ev->otel_service_name)));
	memcpy(ev->otel_resource_attributes, attrs,
	       strnlen(attrs, sizeof(ev->otel_resource_attributes)));
}

/* What the kernel read at exec names the process, by the same precedence as /proc. */
static void test_from_exec_event(void **state)
{
	static const char cid[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct mt_exec_event ev;
	struct mt_resource r;

	(void)state;
	exec_event(&ev, 7, "psql", "psql", "psql-client", "service.name=other");
	identity_from_exec_event(&ev, &r);
	assert_int_equal(r.pid, 7);
	assert_string_equal(r.service_name, "psql-client");
	assert_string_equal(r.exe_name, "psql");

	exec_event(&ev, 7, "job", "job", "", "deployment.environment=x,service.name=my%20job");
	identity_from_exec_event(&ev, &r);
	assert_string_equal(r.service_name, "my job");

	/* A value filling its whole field (no NUL): cut, never read past. */
	exec_event(&ev, 7, "job", "job", "", "");
	memset(ev.otel_service_name, 'a', sizeof(ev.otel_service_name));
	identity_from_exec_event(&ev, &r);
	assert_int_equal(strlen(r.service_name), MT_SERVICE_MAX - 1);

	/* The container from the cgroup names, leaf first: podman, then a kubelet pod. */
	exec_event(&ev, 8, "app", "app", "", "");
	snprintf(ev.cgroup[0], sizeof(ev.cgroup[0]), "libpod-%s.scope", cid);
	snprintf(ev.cgroup[1], sizeof(ev.cgroup[1]), "machine.slice");
	identity_from_exec_event(&ev, &r);
	assert_string_equal(r.service_name, "container/0123456789ab");
	exec_event(&ev, 8, "app", "app", "", "");
	snprintf(ev.cgroup[0], sizeof(ev.cgroup[0]), "%s", cid);
	snprintf(ev.cgroup[1], sizeof(ev.cgroup[1]), "pod11111111-2222-3333-4444-555555555555");
	snprintf(ev.cgroup[2], sizeof(ev.cgroup[2]), "burstable");
	snprintf(ev.cgroup[3], sizeof(ev.cgroup[3]), "kubepods");
	identity_from_exec_event(&ev, &r);
	assert_string_equal(r.service_name, "pod/11111111-2222-3333-4444-555555555555");

	/* The executable: the name it was started as when not a cut-down form of the file's. */
	exec_event(&ev, 9, "redis-server", "redis-check-rdb", "", "");
	identity_from_exec_event(&ev, &r);
	assert_string_equal(r.service_name, "redis-server");
	assert_string_equal(r.exe_name, "redis-check-rdb");
	exec_event(&ev, 9, "python3", "python3.11", "", "");
	identity_from_exec_event(&ev, &r);
	assert_string_equal(r.service_name, "python3.11");
	exec_event(&ev, 9, "sh", "", "", "");
	identity_from_exec_event(&ev, &r);
	assert_string_equal(r.exe_name, "sh");
}

/*
 * A process that exec'd and is gone before its first span is still named
 * from the exec; a later /proc read never replaces a stronger name with a
 * weaker one; a partial environment is completed from /proc.
 */
/*
 * An exec storm: processes exec and exit faster than their entries expire.
 * The table stays within IDENTITY_MAX, every entry replaced is counted, and
 * the exited storm gives up its own entries before a live service's.
 */
static void test_exec_storm_bounded(void **state)
{
	struct mt_exec_event ev;
	struct identity_stats st;
	struct identity *id;
	const uint32_t storm = 50000;

	(void)state;
	id = identity__new("/nonexistent");
	assert_non_null(id);
	exec_event(&ev, 1, "server", "server", "long-lived", "");
	identity_on_exec_event(id, &ev, 1);
	for (uint32_t i = 0; i < storm; i++) {
		exec_event(&ev, 100 + i, "true", "true", "storm", "");
		identity_on_exec_event(id, &ev, 2 + i);
		identity_on_exit(id, 100 + i, 2 + i);
	}
	identity_stats(id, &st);
	assert_true(st.entries <= IDENTITY_MAX);
	assert_int_equal(st.births, storm + 1);
	assert_true(st.evicted > 0);
	assert_int_equal(st.evicted + st.entries, st.births);
	assert_int_equal(st.evicted_live, 0);
	assert_string_equal(identity_lookup(id, 1, "server", 3 + storm)->service_name,
			    "long-lived");
	identity__free(id);
}

static void test_seeded_by_exec_event(void **state)
{
	char root[] = "/tmp/mt-proc-XXXXXX";
	struct mt_exec_event ev;
	struct identity_stats st;
	struct identity *id;

	(void)state;
	assert_non_null(mkdtemp(root));
	id = identity__new(root);
	assert_non_null(id);

	/* 500: exec'd with OTEL_SERVICE_NAME, gone from /proc before the lookup. */
	exec_event(&ev, 500, "psql", "psql", "psql-client", "");
	identity_on_exec_event(id, &ev, 1);
	assert_string_equal(identity_lookup(id, 500, "psql", 2)->service_name, "psql-client");
	identity_on_exit(id, 500, 3);
	assert_string_equal(identity_lookup(id, 500, "psql", 4)->service_name, "psql-client");

	/* 501: alive, its environ unreadable later (no file): the stronger name stays. */
	make_proc(root, 501, "/usr/bin/app", "", 0);
	exec_event(&ev, 501, "app", "app", "named-at-birth", "");
	identity_on_exec_event(id, &ev, 1);
	assert_string_equal(identity_lookup(id, 501, "app", 2)->service_name, "named-at-birth");
	assert_string_equal(identity_lookup(id, 501, "app", 2 + IDENTITY_TTL_NS * 2)->service_name,
			    "named-at-birth");
	identity_stats(id, &st);
	assert_int_equal(st.kept, 1);

	/* 502: the kernel could not look at the whole environment: /proc completes it. */
	make_proc(root, 502, "/usr/bin/big", "A=1\0OTEL_SERVICE_NAME=from-proc\0", 32);
	exec_event(&ev, 502, "big", "big", "", "");
	ev.flags = MT_EXEC_F_ENV_TRUNC;
	identity_on_exec_event(id, &ev, 1);
	assert_string_equal(identity_lookup(id, 502, "big", 2)->service_name, "from-proc");

	/* 503: a second exec names the new program. */
	exec_event(&ev, 503, "sh", "dash", "", "");
	identity_on_exec_event(id, &ev, 1);
	assert_string_equal(identity_lookup(id, 503, "sh", 2)->service_name, "sh");
	exec_event(&ev, 503, "worker", "worker", "batch", "");
	identity_on_exec_event(id, &ev, 3);
	assert_string_equal(identity_lookup(id, 503, "worker", 4)->service_name, "batch");

	identity_stats(id, &st);
	assert_int_equal(st.births, 5);
	assert_int_equal(st.execs, 1);
	identity__free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_otel_service_name_wins),
		cmocka_unit_test(test_resource_attributes_fallback),
		cmocka_unit_test(test_no_name),
		cmocka_unit_test(test_odd_bytes_and_huge_environment),
		cmocka_unit_test(test_unterminated_last_entry),
		cmocka_unit_test(test_lookup_fake_proc),
		cmocka_unit_test(test_cgroup_formats),
		cmocka_unit_test(test_container_name_and_lifecycle),
		cmocka_unit_test(test_from_exec_event),
		cmocka_unit_test(test_seeded_by_exec_event),
		cmocka_unit_test(test_exec_storm_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
