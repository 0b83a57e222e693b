// SPDX-License-Identifier: Apache-2.0
/* The agent's capabilities, checked once at start: see privileges.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/capability.h>

#include "agent/common/privileges.h"

/* Numbers from the kernel's uapi, spelled out: older headers lack the two newest. */
#define CAP_NR_DAC_OVERRIDE    1
#define CAP_NR_DAC_READ_SEARCH 2
#define CAP_NR_SYS_PTRACE      19
#define CAP_NR_SYS_ADMIN       21
#define CAP_NR_SYS_RESOURCE    24
#define CAP_NR_PERFMON	       38
#define CAP_NR_BPF	       39

#define BIT(n) (1ull << (n))

struct need {
	const char *name;   /* as the kernel and `capsh` spell it */
	const char *k8s;    /* as a securityContext spells it */
	uint64_t satisfied; /* any of these bits will do */
	const char *why;
};

/*
 * Each capability and what breaks without it (measured in a container that
 * had every other one: tests/integration/test_deploy.py).
 */
static const struct need NEED_BPF = {"CAP_BPF", "BPF", BIT(CAP_NR_BPF) | BIT(CAP_NR_SYS_ADMIN),
				     "needed to load the eBPF programs and maps"};
static const struct need NEED_PERFMON = {
	"CAP_PERFMON", "PERFMON", BIT(CAP_NR_PERFMON) | BIT(CAP_NR_SYS_ADMIN),
	"needed to attach the eBPF programs to tracepoints and read socket memory from them"};
static const struct need NEED_SYS_ADMIN = {
	"CAP_SYS_ADMIN", "SYS_ADMIN", BIT(CAP_NR_SYS_ADMIN),
	"needed to load and attach eBPF programs on a kernel older than 5.8 (no CAP_BPF)"};
static const struct need NEED_SYS_PTRACE = {
	"CAP_SYS_PTRACE", "SYS_PTRACE", BIT(CAP_NR_SYS_PTRACE),
	"needed to read other processes' /proc/PID/environ and /proc/PID/exe, which name their "
	"services"};
static const struct need NEED_DAC_READ_SEARCH = {
	"CAP_DAC_READ_SEARCH", "DAC_READ_SEARCH",
	BIT(CAP_NR_DAC_READ_SEARCH) | BIT(CAP_NR_DAC_OVERRIDE),
	"needed to open /proc/PID/environ (mode 0400) of processes run by other users, which "
	"name their services"};
static const struct need NEED_SYS_RESOURCE = {
	"CAP_SYS_RESOURCE", "SYS_RESOURCE", BIT(CAP_NR_SYS_RESOURCE),
	"needed to raise RLIMIT_MEMLOCK for the BPF maps on a kernel older than 5.11"};

/* Reads a small decimal number from @path; -1 when absent. */
static long read_long(const char *path)
{
	char buf[32], *end;
	ssize_t n;
	long v;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -1;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf)
		return -1;
	return v;
}

/* True on kernels before 5.11, where BPF memory counts against RLIMIT_MEMLOCK, not the memcg. */
static bool kernel_charges_memlock(void)
{
	struct utsname u;
	long major, minor;
	char *end;

	if (uname(&u) != 0)
		return false;
	errno = 0;
	major = strtol(u.release, &end, 10);
	if (errno || *end != '.')
		return false;
	minor = strtol(end + 1, &end, 10);
	if (errno)
		return false;
	return major < 5 || (major == 5 && minor < 11);
}

int privileges_read(struct privileges_state *st)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	struct rlimit rl;

	memset(st, 0, sizeof(*st));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return -errno;
	st->effective = (uint64_t)data[1].effective << 32 | data[0].effective;
	st->last_cap = (int)read_long("/proc/sys/kernel/cap_last_cap");
	if (st->last_cap < 0)
		st->last_cap = CAP_NR_BPF; /* no /proc: assume a current kernel */
	st->memlock_needed = kernel_charges_memlock() && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
			     rl.rlim_cur != RLIM_INFINITY;
	return 0;
}

int privileges_explain(const struct privileges_state *st, char *err, size_t errlen)
{
	const struct need *needs[6], *missing[6];
	size_t n = 0, nmissing = 0, off;

	if (st->last_cap >= CAP_NR_BPF) {
		needs[n++] = &NEED_BPF;
		needs[n++] = &NEED_PERFMON;
	} else {
		needs[n++] = &NEED_SYS_ADMIN;
	}
	needs[n++] = &NEED_SYS_PTRACE;
	needs[n++] = &NEED_DAC_READ_SEARCH;
	if (st->memlock_needed)
		needs[n++] = &NEED_SYS_RESOURCE;
	for (size_t i = 0; i < n; i++)
		if (!(st->effective & needs[i]->satisfied))
			missing[nmissing++] = needs[i];
	if (!nmissing)
		return 0;
	if (nmissing == 1) {
		snprintf(err, errlen,
			 "missing capability %s, %s: run as root, or grant it "
			 "(Kubernetes: securityContext.capabilities.add: [%s])",
			 missing[0]->name, missing[0]->why, missing[0]->k8s);
		return -EPERM;
	}
	off = (size_t)snprintf(err, errlen, "missing capabilities");
	for (size_t i = 0; i < nmissing && off < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, "%s %s", i ? "," : "",
					missing[i]->name);
	if (off < errlen)
		snprintf(err + off, errlen - off,
			 ": run as root (sudo), or grant them (Kubernetes: "
			 "securityContext.capabilities.add; README, Deploying, says why each)");
	return -EPERM;
}

int privileges_check(char *err, size_t errlen)
{
	struct privileges_state st;
	int rc;

	rc = privileges_read(&st);
	if (rc) {
		snprintf(err, errlen, "cannot read this process's capabilities: %s", strerror(-rc));
		return rc;
	}
	return privileges_explain(&st, err, errlen);
}
