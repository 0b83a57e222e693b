/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who a process is: pid -> service name and executable, read from /proc and
 * cached. Beside the pipeline: the span stage asks it, it reaches back into
 * nothing.
 *
 * service.name: OTEL_SERVICE_NAME in the process's environment, then
 * service.name in its OTEL_RESOURCE_ATTRIBUTES, then the container or pod its
 * cgroup path shows ("pod/<uid>" for kubelet paths, "container/<12-hex id>"
 * for docker, containerd, cri-o and podman), then the executable's name, then
 * the thread name the kernel reported (for processes already gone).
 *
 * A process that execs while the agent runs is named from what the kernel
 * read at the exec (identity_on_exec_event): its new environment and its
 * cgroup, so a process gone within milliseconds is still named by them.
 * Older processes are read from /proc at their first span.
 *
 * Cached per pid for IDENTITY_TTL_NS, then read again from /proc; a read
 * that would give a name of a weaker source (an environment or cgroup it
 * cannot read) keeps the one it has. Dropped IDENTITY_EXIT_GRACE_NS after the process exits
 * (identity_on_exit), the grace letting the spans it left behind (a
 * connection closed by its exit) still carry its name.
 */
#ifndef MESHTRACE_IDENTITY_H
#define MESHTRACE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/capture.h"

#define MT_SERVICE_MAX 64
#define MT_EXE_MAX     32

/* The process that owns the span: becomes the OTLP Resource. */
struct mt_resource {
	uint32_t pid;
	/*
	 * The Kubernetes names of the process's container (agent/identity/k8s.h)
	 * once the runtime answered: a handle into the k8s cache, so a span
	 * carries 8 bytes for them and the exporter writes them once per
	 * resource. 0: none (not a CRI container, or not answered yet).
	 */
	uint32_t k8s;
	uint32_t k8s_gen;
	char service_name[MT_SERVICE_MAX];
	char service_namespace[64]; /* the pod's namespace (service.namespace), "" if none */
	char exe_name[MT_EXE_MAX];
};

#define IDENTITY_MAX	       4096
#define IDENTITY_TTL_NS	       (30ull * 1000000000ull)
#define IDENTITY_ENVIRON_MAX   (1u << 20) /* bytes of /proc/PID/environ read at most */
#define IDENTITY_EXIT_GRACE_NS (5ull * 1000000000ull)
#define IDENTITY_CGROUP_MAX    8192 /* bytes of /proc/PID/cgroup read at most */

struct identity_stats {
	uint64_t lookups;
	uint64_t resolved;     /* /proc reads */
	uint64_t gone;	       /* process had exited: fell back to the kernel's thread name */
	uint64_t evicted;      /* entries replaced because their probe window was full */
	uint64_t evicted_live; /* ... of processes not known to have exited (read again later) */
	uint64_t exits;	       /* entries dropped because the process exited */
	uint64_t execs;	       /* entries refreshed because the process exec'd */
	uint64_t births;       /* entries named from an exec event (what the kernel read) */
	uint64_t kept;	       /* /proc reads that gave a weaker name than the entry had: kept */
	uint64_t entries;      /* live cache entries */
};

struct identity;
struct k8s;

struct identity *identity__new(const char *proc_root);
void identity__free(struct identity *id);

/*
 * Names processes in containers the runtime knows from @k8s (not owned): a
 * container id first seen in a cgroup path starts its lookup; until it is
 * answered (or when it fails) the cgroup's names stay. The process's own
 * OTEL_SERVICE_NAME still wins. NULL: cgroup names only.
 */
void identity_set_k8s(struct identity *id, struct k8s *k8s);
/* The k8s client set by identity_set_k8s (its pods by IP name peers), or NULL. */
struct k8s *identity_k8s(const struct identity *id);

/*
 * The resource of @pid. @comm is the thread name the kernel reported, used
 * when /proc no longer has the process. Never NULL; valid until the next call.
 */
const struct mt_resource *identity_lookup(struct identity *id, uint32_t pid, const char *comm,
					  uint64_t now_ns);

/* The process exited: its entry goes after IDENTITY_EXIT_GRACE_NS (identity_expire). */
void identity_on_exit(struct identity *id, uint32_t pid, uint64_t now_ns);
/* The process exec'd: its entry is read again from /proc at the next lookup. */
void identity_on_exec(struct identity *id, uint32_t pid);
/*
 * The process exec'd and the kernel read what names it: its entry is named
 * from @ev now, and is read from /proc at the next lookup only if the kernel
 * could not look at its whole environment.
 */
void identity_on_exec_event(struct identity *id, const struct mt_exec_event *ev, uint64_t now_ns);
/* The resource @ev names, as identity_on_exec_event would cache it. Pure. */
void identity_from_exec_event(const struct mt_exec_event *ev, struct mt_resource *out);
/* Drops the entries of processes that exited more than the grace period ago. */
void identity_expire(struct identity *id, uint64_t now_ns);

void identity_stats(const struct identity *id, struct identity_stats *out);

/* What a cgroup path says about the container or pod a process runs in. */
struct cgroup_identity {
	char container_id[65]; /* 64 hex digits, "" if none */
	char pod_uid[37];      /* canonical 8-4-4-4-12 form, "" if none */
	char runtime[16];      /* "docker", "containerd", "cri-o", "podman" or "" */
};

/*
 * Parses the text of /proc/PID/cgroup (v1 "N:ctrl:/path" or v2 "0::/path"
 * lines) for a container id and a kubelet pod uid. Pure. Returns true when
 * either was found.
 */
bool cgroup_identity_parse(const char *text, size_t len, struct cgroup_identity *out);

/* "pod/<uid>", else "container/<first 12 hex digits>", else "". */
void cgroup_identity_service(const struct cgroup_identity *ci, char *out, size_t len);

/*
 * Finds service.name in an environment block (NUL-separated "K=V" entries)
 * streamed in pieces: the pure core of identity_lookup, exposed for tests.
 */
struct environ_scan {
	char entry[512]; /* the start of the entry being read */
	size_t len;
	int truncated;
	char otel_service_name[MT_SERVICE_MAX];
	char resource_service_name[MT_SERVICE_MAX];
};
void environ_scan_init(struct environ_scan *s);
void environ_scan_feed(struct environ_scan *s, const char *buf, size_t n);
/* The service name found ("" if none); OTEL_SERVICE_NAME wins. */
const char *environ_scan_result(struct environ_scan *s);

#endif /* MESHTRACE_IDENTITY_H */
