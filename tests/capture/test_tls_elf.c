// SPDX-License-Identifier: Apache-2.0
/*
 * Which files hold the TLS functions the probes go on, read from their ELF
 * symbol tables: the libssl this test maps (through libcurl), and files that
 * hold none (this test's own executable, a text file, a missing file). No
 * root needed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "agent/capture/tls.h"

/* The path of the libssl.so.N this process maps, into @out; false when none. */
static bool mapped_libssl(char *out, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');

		if (!p || !strstr(p, "/libssl.so"))
			continue;
		p[strcspn(p, "\n")] = '\0';
		snprintf(out, n, "%s", p);
		found = true;
	}
	fclose(f);
	return found;
}

static void test_libssl_has_all_four(void **state)
{
	char path[4096];
	bool symtab;
	int mask;

	(void)state;
	/* libcurl is linked against OpenSSL here (libcurl4-openssl-dev): libssl is mapped. */
	curl_version_info(CURLVERSION_NOW);
	if (!mapped_libssl(path, sizeof(path)))
		fail_msg("libssl is not mapped: is libcurl built with OpenSSL?");
	mask = tls_elf_functions(path, &symtab);
	assert_true(mask >= 0);
	assert_int_equal(mask, 1 << MT_TLS_FN_READ | 1 << MT_TLS_FN_WRITE | 1 << MT_TLS_FN_READ_EX |
				       1 << MT_TLS_FN_WRITE_EX);
}

static void test_files_without_them(void **state)
{
	char tmp[] = "/tmp/mt-tls-elf-XXXXXX";
	bool symtab;
	int fd;

	(void)state;
	/* This executable calls no SSL_* itself; it has a symbol table (built with -g). */
	assert_int_equal(tls_elf_functions("/proc/self/exe", &symtab), 0);
	assert_true(symtab);
	assert_int_equal(tls_elf_functions("/nonexistent/libssl.so.3", &symtab), -ENOENT);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SSL_read\n", 9), 9);
	close(fd);
	assert_int_equal(tls_elf_functions(tmp, &symtab), -ENOEXEC);
	unlink(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libssl_has_all_four),
		cmocka_unit_test(test_files_without_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
