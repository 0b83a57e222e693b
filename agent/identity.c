// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"
#include "util.h"

struct identity_entry {
	uint64_t resolved_ns; /* 0: empty slot */
	struct mt_resource res;
};

struct identity {
	char proc_root[64];
	struct identity_entry *slots; /* open addressing, IDENTITY_MAX slots, linear probe */
	uint32_t count;
	struct identity_stats stats;
	struct mt_resource scratch;
};

struct identity *identity__new(const char *proc_root)
{
	struct identity *id = calloc(1, sizeof(*id));

	if (!id)
		return NULL;
	id->slots = calloc(IDENTITY_MAX, sizeof(*id->slots));
	if (!id->slots) {
		free(id);
		return NULL;
	}
	mt_strlcpy(id->proc_root, proc_root ? proc_root : "/proc", sizeof(id->proc_root));
	return id;
}

void identity__free(struct identity *id)
{
	if (!id)
		return;
	free(id->slots);
	free(id);
}

void environ_scan_init(struct environ_scan *s)
{
	memset(s, 0, sizeof(*s));
}

static void copy_value(char *dst, size_t dstlen, const char *src, size_t n)
{
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* service.name=VALUE inside an OTEL_RESOURCE_ATTRIBUTES list "k=v,k=v" (percent-encoded). */
static void scan_resource_attributes(struct environ_scan *s, const char *v, size_t n)
{
	static const char key[] = "service.name=";
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *item_end = comma ? comma : end;

		while (v < item_end && (*v == ' ' || *v == '\t'))
			v++;
		if ((size_t)(item_end - v) > sizeof(key) - 1 &&
		    memcmp(v, key, sizeof(key) - 1) == 0) {
			const char *val = v + sizeof(key) - 1;
			size_t o = 0;

			while (val < item_end && o + 1 < sizeof(s->resource_service_name)) {
				int hi, lo;

				if (*val == '%' && item_end - val >= 3 &&
				    sscanf(val + 1, "%1x%1x", (unsigned *)&hi, (unsigned *)&lo) ==
					    2) {
					s->resource_service_name[o++] = (char)(hi * 16 + lo);
					val += 3;
				} else {
					s->resource_service_name[o++] = *val++;
				}
			}
			while (o && (s->resource_service_name[o - 1] == ' '))
				o--;
			s->resource_service_name[o] = '\0';
		}
		v = item_end + 1;
	}
}

static void scan_entry(struct environ_scan *s)
{
	static const char svc[] = "OTEL_SERVICE_NAME=";
	static const char attrs[] = "OTEL_RESOURCE_ATTRIBUTES=";

	if (s->len > sizeof(svc) - 1 && memcmp(s->entry, svc, sizeof(svc) - 1) == 0)
		copy_value(s->otel_service_name, sizeof(s->otel_service_name),
			   s->entry + sizeof(svc) - 1, s->len - (sizeof(svc) - 1));
	else if (s->len > sizeof(attrs) - 1 && memcmp(s->entry, attrs, sizeof(attrs) - 1) == 0)
		scan_resource_attributes(s, s->entry + sizeof(attrs) - 1,
					 s->len - (sizeof(attrs) - 1));
}

void environ_scan_feed(struct environ_scan *s, const char *buf, size_t n)
{
	while (n) {
		const char *nul = memchr(buf, '\0', n);
		size_t take = nul ? (size_t)(nul - buf) : n;
		size_t room = sizeof(s->entry) - s->len;

		/* Entries longer than the buffer keep their start: that is where the name is. */
		memcpy(s->entry + s->len, buf, take < room ? take : room);
		s->len += take < room ? take : room;
		if (!nul)
			return;
		scan_entry(s);
		s->len = 0;
		buf += take + 1;
		n -= take + 1;
	}
}

const char *environ_scan_result(struct environ_scan *s)
{
	if (s->len) { /* an unterminated last entry */
		scan_entry(s);
		s->len = 0;
	}
	if (s->otel_service_name[0])
		return s->otel_service_name;
	return s->resource_service_name;
}

static void read_service_name(const struct identity *id, uint32_t pid, char *out, size_t outlen)
{
	struct environ_scan scan;
	char path[96];
	char buf[4096];
	size_t total = 0;
	ssize_t n;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/%u/environ", id->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	environ_scan_init(&scan);
	while (total < IDENTITY_ENVIRON_MAX && (n = read(fd, buf, sizeof(buf))) > 0) {
		environ_scan_feed(&scan, buf, (size_t)n);
		total += (size_t)n;
	}
	close(fd);
	mt_strlcpy(out, environ_scan_result(&scan), outlen);
}

/* Basename of /proc/PID/exe. Returns false when the process is gone. */
static bool read_exe_name(const struct identity *id, uint32_t pid, char *out, size_t outlen)
{
	char path[96];
	char target[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%u/exe", id->proc_root, pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	/* An exe replaced on disk reads "/usr/bin/x (deleted)". */
	if (n > 10 && strcmp(target + n - 10, " (deleted)") == 0)
		target[n - 10] = '\0';
	base = strrchr(target, '/');
	mt_strlcpy(out, base ? base + 1 : target, outlen);
	return true;
}

/* Fills @r from /proc. Returns false when the process is gone (@r then uses @comm). */
static bool resolve(struct identity *id, struct mt_resource *r, uint32_t pid, const char *comm)
{
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	id->stats.resolved++;
	if (!read_exe_name(id, pid, r->exe_name, sizeof(r->exe_name))) {
		id->stats.gone++;
		snprintf(r->exe_name, sizeof(r->exe_name), "%.16s", comm ? comm : "");
		mt_strlcpy(r->service_name, r->exe_name, sizeof(r->service_name));
		return false;
	}
	read_service_name(id, pid, r->service_name, sizeof(r->service_name));
	if (!r->service_name[0])
		mt_strlcpy(r->service_name, r->exe_name, sizeof(r->service_name));
	return true;
}

const struct mt_resource *identity_lookup(struct identity *id, uint32_t pid, const char *comm,
					  uint64_t now_ns)
{
	uint32_t h = (pid * 2654435761u) & (IDENTITY_MAX - 1);
	struct identity_entry *oldest = NULL;

	id->stats.lookups++;
	for (uint32_t probe = 0; probe < 8; probe++) {
		struct identity_entry *e = &id->slots[(h + probe) & (IDENTITY_MAX - 1)];

		if (e->resolved_ns && e->res.pid == pid) {
			if (e->resolved_ns + IDENTITY_TTL_NS < now_ns) {
				struct mt_resource fresh;

				/* A process that is gone keeps the name it had. */
				if (resolve(id, &fresh, pid, comm))
					e->res = fresh;
				e->resolved_ns = now_ns;
			}
			return &e->res;
		}
		if (!e->resolved_ns) {
			resolve(id, &e->res, pid, comm);
			e->resolved_ns = now_ns ? now_ns : 1;
			id->count++;
			return &e->res;
		}
		if (!oldest || e->resolved_ns < oldest->resolved_ns)
			oldest = e;
	}
	/* Probe window full: replace its oldest entry. */
	id->stats.evicted++;
	resolve(id, &oldest->res, pid, comm);
	oldest->resolved_ns = now_ns ? now_ns : 1;
	return &oldest->res;
}
