/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who a process is: pid -> service name and executable, read from /proc and
 * cached. Beside the pipeline: the span stage asks it, it reaches back into
 * nothing.
 *
 * service.name: OTEL_SERVICE_NAME in the process's environment, then
 * service.name in its OTEL_RESOURCE_ATTRIBUTES, then the executable's name,
 * then the thread name the kernel reported (for processes already gone).
 */
#ifndef MESHTRACE_IDENTITY_H
#define MESHTRACE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

#define IDENTITY_MAX	     4096
#define IDENTITY_TTL_NS	     (30ull * 1000000000ull)
#define IDENTITY_ENVIRON_MAX (1u << 20) /* bytes of /proc/PID/environ read at most */

struct identity_stats {
	uint64_t lookups;
	uint64_t resolved; /* /proc reads */
	uint64_t gone;	   /* process had exited: fell back to the kernel's thread name */
	uint64_t evicted;
};

struct identity;

struct identity *identity__new(const char *proc_root);
void identity__free(struct identity *id);

/*
 * The resource of @pid. @comm is the thread name the kernel reported, used
 * when /proc no longer has the process. Never NULL; valid until the next call.
 */
const struct mt_resource *identity_lookup(struct identity *id, uint32_t pid, const char *comm,
					  uint64_t now_ns);

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
