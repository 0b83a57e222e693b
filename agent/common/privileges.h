/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capabilities the agent needs, checked once at start so that a missing
 * one is named in one line instead of surfacing as a refused BPF load or as
 * services silently named after their executables. Root on a host has them
 * all; a container gets exactly what its manifest grants
 * (deploy/kubernetes/daemonset.yaml, README "Deploying").
 */
#ifndef MESHTRACE_PRIVILEGES_H
#define MESHTRACE_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the check is given: read from the process and the kernel, or made up by a test. */
struct privileges_state {
	uint64_t effective;  /* effective capability set, bit N = capability N */
	int last_cap;	     /* /proc/sys/kernel/cap_last_cap: 39 or more once CAP_BPF exists */
	bool memlock_needed; /* BPF memory is charged to RLIMIT_MEMLOCK (kernel < 5.11) and
				the limit is finite */
};

/*
 * Fills @st from this process (capget) and the running kernel. Returns 0 or
 * -errno when the capabilities cannot be read.
 */
int privileges_read(struct privileges_state *st);

/*
 * Returns 0 when @st holds every capability the agent needs, else -EPERM with
 * one line in @err naming the missing capability (or all of them, when more
 * than one is missing), what it is needed for and the fix.
 */
int privileges_explain(const struct privileges_state *st, char *err, size_t errlen);

/* privileges_read() then privileges_explain(). */
int privileges_check(char *err, size_t errlen);

#endif /* MESHTRACE_PRIVILEGES_H */
