// SPDX-License-Identifier: Apache-2.0
/*
 * The capture's cross-node parts (bpf/sockops.bpf.h): resolving --cgroup to
 * the (id, level) the kernel compares, and attaching the sock_ops program
 * that carries the trace context in a TCP header option.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/capture/xnode.h"
#include "agent/common/log.h"
#include "capture.skel.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* The mount point of the cgroup2 file system holding @path (longest match), into @out. */
static int cgroup2_mount_of(const char *path, char *out, size_t outlen)
{
	char line[4096];
	size_t best = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], *sep = strstr(line, " - ");
		size_t n;

		if (!sep || strncmp(sep, " - cgroup2 ", 11) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		n = strlen(mnt);
		if (n <= best || strncmp(path, mnt, n) != 0 ||
		    (path[n] != '/' && path[n] != 0 && strcmp(mnt, "/") != 0))
			continue;
		best = n;
		snprintf(out, outlen, "%s", mnt);
	}
	fclose(f);
	return best ? 0 : -ENOENT;
}

int xnode_scope_resolve(const char *what, const char *path, struct xnode_scope *s, char *err,
			size_t errlen)
{
	char real[PATH_MAX], mnt[PATH_MAX], q[MT_LOG_VALUE_MAX + 32];
	struct statfs fs;
	struct stat st;
	const char *p;

	memset(s, 0, sizeof(*s));
	if (!realpath(path, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s '%s': not a directory (%s)", what, mt_log_value(q, path),
			 strerror(errno));
		return -EINVAL;
	}
	if (statfs(real, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC ||
	    cgroup2_mount_of(real, mnt, sizeof(mnt)) != 0) {
		snprintf(err, errlen,
			 "%s '%s': not in a cgroup v2 file system; give a directory under "
			 "the cgroup2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid "
			 "hosts)",
			 what, mt_log_value(q, path));
		return -EINVAL;
	}
	/* The level is the depth below the hierarchy's root: one per path component. */
	for (p = real + (strcmp(mnt, "/") == 0 ? 0 : strlen(mnt)); *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			s->level++;
	s->id = (uint64_t)st.st_ino; /* a cgroup's id is its kernfs inode number */
	snprintf(s->path, sizeof(s->path), "%s", real);
	snprintf(s->root, sizeof(s->root), "%s", mnt);
	return 0;
}

int xnode_root_cgroup(char *out, size_t outlen)
{
	static const char *const roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	struct statfs fs;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		if (statfs(roots[i], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
			snprintf(out, outlen, "%s", roots[i]);
			return 0;
		}
	}
	return cgroup2_mount_of("/", out, outlen) == 0 ? 0 : -ENOENT;
}

struct bpf_link *xnode_attach_sockops(struct capture_bpf *skel, const char *dir, char *err,
				      size_t errlen)
{
	struct bpf_link *link;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "--propagate: cannot open the cgroup %s (%s)", dir,
			 strerror(errno));
		return NULL;
	}
	link = bpf_program__attach_cgroup(skel->progs.xnode_sockops, fd);
	close(fd);
	if (!link)
		snprintf(err, errlen,
			 "--propagate: cannot attach the sock_ops program to %s (%s): the kernel "
			 "needs CONFIG_CGROUP_BPF and TCP header options (Linux >= 5.10)",
			 dir, strerror(errno));
	return link;
}
