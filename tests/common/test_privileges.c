// SPDX-License-Identifier: Apache-2.0
/* The start-up capability check: which capability is named, for which kernel. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/common/privileges.h"

#define B(n)		(1ull << (n))
#define DAC_OVERRIDE	1
#define DAC_READ_SEARCH 2
#define SYS_PTRACE	19
#define SYS_ADMIN	21
#define SYS_RESOURCE	24
#define PERFMON		38
#define BPF		39

static const uint64_t MANIFEST = B(BPF) | B(PERFMON) | B(SYS_PTRACE) | B(DAC_READ_SEARCH);

static int explain(uint64_t eff, int last_cap, bool memlock, char *err, size_t len)
{
	struct privileges_state st = {
		.effective = eff, .last_cap = last_cap, .memlock_needed = memlock};

	err[0] = '\0';
	return privileges_explain(&st, err, len);
}

static void test_manifest_set_is_enough(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(explain(MANIFEST, 40, false, err, sizeof(err)), 0);
	assert_int_equal(explain(~0ull, 40, true, err, sizeof(err)), 0); /* root */
	/* CAP_SYS_ADMIN covers BPF and PERFMON; DAC_OVERRIDE covers DAC_READ_SEARCH. */
	assert_int_equal(explain(B(SYS_ADMIN) | B(SYS_PTRACE) | B(DAC_OVERRIDE), 40, false, err,
				 sizeof(err)),
			 0);
}

/* One capability removed at a time: that one is named, with its Kubernetes spelling. */
static void test_each_missing_one_is_named(void **state)
{
	static const struct {
		int cap;
		const char *name, *k8s;
	} cases[] = {
		{BPF, "CAP_BPF", "[BPF]"},
		{PERFMON, "CAP_PERFMON", "[PERFMON]"},
		{SYS_PTRACE, "CAP_SYS_PTRACE", "[SYS_PTRACE]"},
		{DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "[DAC_READ_SEARCH]"},
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(explain(MANIFEST & ~B(cases[i].cap), 40, false, err, sizeof(err)),
				 -EPERM);
		assert_non_null(strstr(err, cases[i].name));
		assert_non_null(strstr(err, cases[i].k8s));
		assert_null(strchr(err, '\n'));
	}
}

static void test_old_kernels(void **state)
{
	char err[512];

	(void)state;
	/* Before 5.11 BPF memory counts against RLIMIT_MEMLOCK. */
	assert_int_equal(explain(MANIFEST, 40, true, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "CAP_SYS_RESOURCE"));
	assert_int_equal(explain(MANIFEST | B(SYS_RESOURCE), 40, true, err, sizeof(err)), 0);
	/* Before 5.8 there is no CAP_BPF: CAP_SYS_ADMIN it is. */
	assert_int_equal(explain(B(SYS_PTRACE) | B(DAC_READ_SEARCH), 37, false, err, sizeof(err)),
			 -EPERM);
	assert_non_null(strstr(err, "missing capability CAP_SYS_ADMIN,"));
}

static void test_nothing_names_all_and_root(void **state)
{
	char err[512], small[24];

	(void)state;
	assert_int_equal(explain(0, 40, false, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH"));
	assert_non_null(strstr(err, "root"));
	/* A short buffer truncates, never overflows. */
	assert_int_equal(explain(0, 40, false, small, sizeof(small)), -EPERM);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_set_is_enough),
		cmocka_unit_test(test_each_missing_one_is_named),
		cmocka_unit_test(test_old_kernels),
		cmocka_unit_test(test_nothing_names_all_and_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
