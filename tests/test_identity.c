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

#include "agent/identity.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_otel_service_name_wins),
		cmocka_unit_test(test_resource_attributes_fallback),
		cmocka_unit_test(test_no_name),
		cmocka_unit_test(test_odd_bytes_and_huge_environment),
		cmocka_unit_test(test_unterminated_last_entry),
		cmocka_unit_test(test_lookup_fake_proc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
