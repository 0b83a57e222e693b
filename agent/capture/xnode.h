/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to agent/capture: the scope (--cgroup) and the sock_ops program
 * of --propagate. The kernel side is bpf/sockops.bpf.h.
 */
#ifndef MESHTRACE_CAPTURE_XNODE_H
#define MESHTRACE_CAPTURE_XNODE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct capture_bpf;
struct bpf_link;

struct xnode_scope {
	uint64_t id;	/* the cgroup's id (its inode number in cgroupfs) */
	uint32_t level; /* its depth below the v2 hierarchy's root (the root is 0) */
	char path[PATH_MAX];
	char root[PATH_MAX]; /* the cgroup2 mount it is under */
};

/*
 * Resolves a --cgroup directory; @what names where it came from (the flag or
 * MESHTRACE_CGROUP) in messages. Returns 0, or -EINVAL with one line in @err
 * (not a directory, not on a cgroup2 file system).
 */
int xnode_scope_resolve(const char *what, const char *path, struct xnode_scope *s, char *err,
			size_t errlen);

/* The cgroup v2 root directory of this host into @out. Returns 0 or -ENOENT. */
int xnode_root_cgroup(char *out, size_t outlen);

/* Attaches the sock_ops program to cgroup directory @dir. NULL with one line in @err. */
struct bpf_link *xnode_attach_sockops(struct capture_bpf *skel, const char *dir, char *err,
				      size_t errlen);

#endif /* MESHTRACE_CAPTURE_XNODE_H */
