// SPDX-License-Identifier: Apache-2.0
/*
 * The x86-64 length decoder that finds the RETs of Go's crypto/tls functions,
 * on instruction sequences a Go compiler emits (checked against objdump),
 * and on bytes that are not code. A probe placed inside an instruction would
 * corrupt the program, so a sequence that does not decode must say so.
 * (On a whole Go 1.19 binary's .text, 545,546 instructions, its boundaries
 * matched objdump's except inside one assembly data table.) No root needed.
 */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/capture/tls_go.h"

struct insn {
	const char *what;
	uint8_t bytes[16];
	int len;
};

static const struct insn insns[] = {
	{"cmp 0x10(%r14),%rsp", {0x49, 0x3b, 0x66, 0x10}, 4},
	{"jbe rel32", {0x0f, 0x86, 0x10, 0x02, 0x00, 0x00}, 6},
	{"sub $0x60,%rsp", {0x48, 0x83, 0xec, 0x60}, 4},
	{"mov %rbp,0x58(%rsp)", {0x48, 0x89, 0x6c, 0x24, 0x58}, 5},
	{"lea 0x58(%rsp),%rbp", {0x48, 0x8d, 0x6c, 0x24, 0x58}, 5},
	{"mov %rax,0x68(%rsp)", {0x48, 0x89, 0x44, 0x24, 0x68}, 5},
	{"movups %xmm15,(%rsp)", {0x44, 0x0f, 0x11, 0x3c, 0x24}, 5},
	{"call rel32", {0xe8, 0x00, 0x00, 0x00, 0x00}, 5},
	{"lea rip+disp32,%rax", {0x48, 0x8d, 0x05, 0x01, 0x02, 0x03, 0x04}, 7},
	{"movabs $imm64,%rax", {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
	{"mov $imm32,%eax", {0xb8, 1, 2, 3, 4}, 5},
	{"movw $imm16,(%rax)", {0x66, 0xc7, 0x00, 0x01, 0x02}, 5},
	{"testb $1,0x10(%rax)", {0xf6, 0x40, 0x10, 0x01}, 4},
	{"test $imm32,%eax (f7 /0)", {0xf7, 0xc0, 1, 2, 3, 4}, 6},
	{"neg %rax (f7 /3)", {0x48, 0xf7, 0xd8}, 3},
	{"lock cmpxchg %ecx,(%rdx)", {0xf0, 0x0f, 0xb1, 0x0a}, 4},
	{"nopw 0x0(%rax,%rax,1)", {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00}, 6},
	{"pshufd $0x1b,%xmm1,%xmm0", {0x66, 0x0f, 0x70, 0xc1, 0x1b}, 5},
	{"pshufb (0f 38)", {0x66, 0x0f, 0x38, 0x00, 0xc1}, 5},
	{"palignr (0f 3a)", {0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08}, 6},
	{"vmovdqu (vex c5)", {0xc5, 0xfe, 0x6f, 0x06}, 4},
	{"vpshufb (vex c4 map 2)", {0xc4, 0xe2, 0x75, 0x00, 0xc2}, 5},
	{"vzeroupper", {0xc5, 0xf8, 0x77}, 3},
	{"mov %fs:0xfffffffffffffff8,%r14",
	 {0x64, 0x4c, 0x8b, 0x34, 0x25, 0xf8, 0xff, 0xff, 0xff},
	 9},
	{"jmp rel8", {0xeb, 0x05}, 2},
	{"int3", {0xcc}, 1},
	{"ret", {0xc3}, 1},
	{"rep ret", {0xf3, 0xc3}, 2},
	{"mov %eax,%ebx (89 c3: a C3 byte inside)", {0x89, 0xc3}, 2},
};

static void test_lengths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(insns) / sizeof(insns[0]); i++) {
		int len = tls_go_x86_insn_len(insns[i].bytes, (size_t)insns[i].len);

		if (len != insns[i].len)
			fail_msg("%s: length %d, want %d", insns[i].what, len, insns[i].len);
		/* Cut one byte short: not an instruction. */
		if (insns[i].len > 1)
			assert_int_equal(tls_go_x86_insn_len(insns[i].bytes, insns[i].len - 1), -1);
	}
}

static void test_not_code(void **state)
{
	static const uint8_t evex[] = {0x62, 0xf1, 0x7c, 0x48, 0x10, 0x06};
	static const uint8_t invalid[] = {0x06};
	static const uint8_t empty[] = {0};

	(void)state;
	assert_int_equal(tls_go_x86_insn_len(evex, sizeof(evex)), -1);
	assert_int_equal(tls_go_x86_insn_len(invalid, sizeof(invalid)), -1);
	assert_int_equal(tls_go_x86_insn_len(empty, 0), -1);
}

static void test_find_rets(void **state)
{
	/* A Go epilogue: add $0x60,%rsp; pop %rbp; ret; then 89 c3 (not a RET); ret; int3 padding. */
	static const uint8_t fn[] = {0x48, 0x83, 0xc4, 0x60, 0x5d, 0xc3, 0x89, 0xc3, 0xc3, 0xcc};
	static const uint8_t cut[] = {0x48, 0x83, 0xc4};
	static const uint8_t arm64[] = {0x1f, 0x20, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6};
	uint32_t rets[4];

	(void)state;
	assert_int_equal(tls_go_find_rets(fn, sizeof(fn), EM_X86_64, rets, 4), 2);
	assert_int_equal(rets[0], 5);
	assert_int_equal(rets[1], 8);
	assert_int_equal(tls_go_find_rets(fn, sizeof(fn), EM_X86_64, rets, 1), -1); /* too many */
	assert_int_equal(tls_go_find_rets(cut, sizeof(cut), EM_X86_64, rets, 4), -1);
	assert_int_equal(tls_go_find_rets(arm64, sizeof(arm64), EM_AARCH64, rets, 4), 1);
	assert_int_equal(rets[0], 4);
	assert_int_equal(tls_go_find_rets(fn, sizeof(fn), EM_386, rets, 4), -1);
}

static void test_inspect_not_go(void **state)
{
	struct tls_go_info info;

	(void)state;
	assert_int_equal(tls_go_inspect("/proc/self/exe", &info), 0);
	assert_false(info.is_go);
	assert_true(tls_go_inspect("/nonexistent/meshtrace", &info) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_not_code),
		cmocka_unit_test(test_find_rets),
		cmocka_unit_test(test_inspect_not_go),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
