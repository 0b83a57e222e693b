/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What differs between architectures: the numbers of the syscalls whose buffer the data path
 * knows how to find, and where a syscall's number and arguments sit in the task's user registers
 * (bpf_task_pt_regs()). The target is the one libbpf's bpf_tracing.h is told about
 * (-D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64: the Makefile sets it from `uname -m`); the
 * arguments are read with its PT_REGS_PARMn_SYSCALL() accessors.
 */
#ifndef MESHTRACE_BPF_ARCH_BPF_H
#define MESHTRACE_BPF_ARCH_BPF_H

#if defined(__TARGET_ARCH_x86)

/* arch/x86/entry/syscalls/syscall_64.tbl */
#define MT_NR_read     0
#define MT_NR_write    1
#define MT_NR_readv    19
#define MT_NR_writev   20
#define MT_NR_sendfile 40
#define MT_NR_sendto   44
#define MT_NR_recvfrom 45
#define MT_NR_sendmsg  46
#define MT_NR_recvmsg  47
#define MT_NR_splice   275

/* The syscall number: orig_ax keeps it while ax is the return value (-1 outside a syscall). */
#define MT_SYSCALL_NR(regs) ((long)(regs)->orig_ax)

#elif defined(__TARGET_ARCH_arm64)

/* include/uapi/asm-generic/unistd.h: arm64 uses the generic table. */
#define MT_NR_read     63
#define MT_NR_write    64
#define MT_NR_readv    65
#define MT_NR_writev   66
#define MT_NR_sendfile 71
#define MT_NR_splice   76
#define MT_NR_sendto   206
#define MT_NR_recvfrom 207
#define MT_NR_sendmsg  211
#define MT_NR_recvmsg  212

/* arch/arm64/include/asm/ptrace.h: syscallno (NO_SYSCALL, -1, outside a syscall). */
struct pt_regs___mt_arm64 {
	int syscallno;
} __attribute__((preserve_access_index));

#define MT_SYSCALL_NR(regs) ((long)BPF_CORE_READ((struct pt_regs___mt_arm64 *)(regs), syscallno))

#else
#error "meshtrace's kernel side knows x86-64 and arm64: build with -D__TARGET_ARCH_x86 or _arm64"
#endif

/* The syscall's first three arguments (on x86-64, plain loads through the BTF pointer). */
#define MT_SYSCALL_ARG1(regs) PT_REGS_PARM1_SYSCALL(regs)
#define MT_SYSCALL_ARG2(regs) PT_REGS_PARM2_SYSCALL(regs)
#define MT_SYSCALL_ARG3(regs) PT_REGS_PARM3_SYSCALL(regs)

#endif /* MESHTRACE_BPF_ARCH_BPF_H */
