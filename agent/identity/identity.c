// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/identity/identity.h"
#include "agent/common/hashtab.h"
#include "agent/common/util.h"
#include "agent/identity/k8s.h"

/* Where a service name came from, weakest first: a later read never replaces a stronger one. */
enum name_source {
	NAME_COMM = 0,	  /* the kernel's thread name: the process was gone */
	NAME_EXE = 1,	  /* the executable */
	NAME_CGROUP = 2,  /* the container or pod */
	NAME_K8S = 3,	  /* the pod's labels, through the runtime (k8s.h) */
	NAME_ENVIRON = 4, /* OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES */
};

struct identity_entry {
	uint64_t resolved_ns; /* 0: empty slot */
	uint64_t exited_ns;   /* 0: alive (as far as we know) */
	uint8_t source;	      /* enum name_source of res.service_name */
	bool reread;	/* named at exec from a partial environment: read /proc at next lookup */
	bool k8s_named; /* res carries k8s_handle's names */
	uint32_t k8s_handle; /* k8s_acquire()'s, 0 none */
	uint32_t k8s_gen;
	char container_id[65]; /* from the cgroup path, "" if none */
	struct mt_resource res;
};

struct identity {
	char proc_root[64];
	struct identity_entry *slots; /* open addressing, IDENTITY_MAX slots, linear probe */
	uint32_t count;
	struct identity_stats stats;
	struct mt_resource scratch;
	struct k8s *k8s;
	uint64_t now_ns; /* the latest time a caller gave */
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

void identity_set_k8s(struct identity *id, struct k8s *k8s)
{
	id->k8s = k8s;
}

struct k8s *identity_k8s(const struct identity *id)
{
	return id->k8s;
}

/* Lets go of @e's container entry in the k8s cache. */
static void k8s_detach(struct identity *id, struct identity_entry *e)
{
	if (e->k8s_handle && id->k8s)
		k8s_release(id->k8s, e->k8s_handle, e->k8s_gen, id->now_ns);
	e->k8s_handle = 0;
	e->k8s_named = false;
	e->container_id[0] = '\0';
}

/* @e runs in container @cid ("" none): holds its k8s entry, which starts a lookup when new. */
static void k8s_attach(struct identity *id, struct identity_entry *e, const char *cid)
{
	e->k8s_named = false; /* res was just rewritten */
	if (!id->k8s || (e->k8s_handle && !strcmp(e->container_id, cid)))
		return;
	k8s_detach(id, e);
	if (!cid[0])
		return;
	mt_strlcpy(e->container_id, cid, sizeof(e->container_id));
	e->k8s_handle = k8s_acquire(id->k8s, cid, id->now_ns, &e->k8s_gen);
}

/* Names @e from its pod once the runtime answered; cheap (an array index) until then. */
static void k8s_name(struct identity *id, struct identity_entry *e)
{
	const struct k8s_meta *m;

	if (!e->k8s_handle || e->k8s_named)
		return;
	m = k8s_get(id->k8s, e->k8s_handle, e->k8s_gen);
	if (!m)
		return;
	e->k8s_named = true;
	e->res.k8s = e->k8s_handle;
	e->res.k8s_gen = e->k8s_gen;
	mt_strlcpy(e->res.service_namespace, m->namespace_name, sizeof(e->res.service_namespace));
	if (e->source < NAME_ENVIRON && m->service_name[0]) {
		mt_strlcpy(e->res.service_name, m->service_name, sizeof(e->res.service_name));
		e->source = NAME_K8S;
	}
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

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* A pod uid at @s: 32 hex digits in 8-4-4-4-12 groups, separated by '-' or (systemd) '_'. */
static bool take_pod_uid(const char *s, size_t n, char out[37])
{
	static const int groups[5] = {8, 4, 4, 4, 12};
	size_t o = 0, i = 0;

	for (int g = 0; g < 5; g++) {
		if (i + (size_t)groups[g] > n || !is_hex(s + i, (size_t)groups[g]))
			return false;
		for (int k = 0; k < groups[g]; k++)
			out[o++] = (char)tolower((unsigned char)s[i++]);
		if (g < 4) {
			if (i >= n || (s[i] != '-' && s[i] != '_'))
				return false;
			out[o++] = '-';
			i++;
		}
	}
	out[o] = '\0';
	return true;
}

/* One path component: a container id and/or a pod uid. */
static void scan_component(const char *c, size_t n, bool kubepods, struct cgroup_identity *out)
{
	static const struct {
		const char *prefix;
		const char *runtime;
	} scopes[] = {
		{"docker-", "docker"},
		{"cri-containerd-", "containerd"},
		{"containerd-", "containerd"},
		{"nerdctl-", "containerd"},
		{"crio-", "cri-o"},
		{"libpod-", "podman"},
	};
	const char *pod;

	/* The runtime's helpers (conmon) sit beside the container, not in it. */
	if ((n > 12 && !memcmp(c, "crio-conmon-", 12)) ||
	    (n > 14 && !memcmp(c, "libpod-conmon-", 14)))
		return;
	if (n == 64 && is_hex(c, 64)) { /* cgroupfs drivers: the bare id */
		memcpy(out->container_id, c, 64);
		out->container_id[64] = '\0';
		if (!out->runtime[0])
			mt_strlcpy(out->runtime, kubepods ? "containerd" : "docker",
				   sizeof(out->runtime));
		return;
	}
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		size_t pl = strlen(scopes[i].prefix);

		/* "<prefix><id>.scope" under systemd; podman's cgroupfs driver drops ".scope". */
		if ((n == pl + 64 || (n == pl + 64 + 6 && !memcmp(c + pl + 64, ".scope", 6))) &&
		    !memcmp(c, scopes[i].prefix, pl) && is_hex(c + pl, 64)) {
			memcpy(out->container_id, c + pl, 64);
			out->container_id[64] = '\0';
			mt_strlcpy(out->runtime, scopes[i].runtime, sizeof(out->runtime));
			return;
		}
	}
	if (!kubepods)
		return;
	/* cgroupfs: "pod<uid>"; systemd: "kubepods[-<qos>]-pod<uid_with_underscores>.slice". */
	if (n > 3 && !memcmp(c, "pod", 3)) {
		take_pod_uid(c + 3, n - 3, out->pod_uid);
		return;
	}
	pod = memmem(c, n, "-pod", 4);
	if (pod)
		take_pod_uid(pod + 4, n - (size_t)(pod + 4 - c), out->pod_uid);
}

bool cgroup_identity_parse(const char *text, size_t len, struct cgroup_identity *out)
{
	const char *end = text + len;

	memset(out, 0, sizeof(*out));
	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		const char *line_end = nl ? nl : end;
		const char *path = text;
		bool kubepods;

		/* "hierarchy-ID:controllers:path": the path follows the second colon. */
		for (int colons = 0; colons < 2 && path < line_end; path++)
			if (*path == ':')
				colons++;
		kubepods = memmem(path, (size_t)(line_end - path), "kubepods", 8) != NULL;
		while (path < line_end) {
			const char *slash = memchr(path, '/', (size_t)(line_end - path));
			const char *c_end = slash ? slash : line_end;

			if (c_end > path)
				scan_component(path, (size_t)(c_end - path), kubepods, out);
			path = c_end + 1;
		}
		text = line_end + 1;
	}
	return out->container_id[0] || out->pod_uid[0];
}

void cgroup_identity_service(const struct cgroup_identity *ci, char *out, size_t len)
{
	if (ci->pod_uid[0])
		snprintf(out, len, "pod/%s", ci->pod_uid);
	else if (ci->container_id[0])
		snprintf(out, len, "container/%.12s", ci->container_id);
	else if (len)
		out[0] = '\0';
}

/* The container or pod name of @pid from /proc/PID/cgroup, "" if none; its container id in @cid. */
static void read_cgroup_service(const struct identity *id, uint32_t pid, char *out, size_t outlen,
				char cid[65])
{
	struct cgroup_identity ci;
	char path[96];
	char buf[IDENTITY_CGROUP_MAX];
	size_t total = 0;
	ssize_t n;
	int fd;

	out[0] = '\0';
	cid[0] = '\0';
	snprintf(path, sizeof(path), "%s/%u/cgroup", id->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (total < sizeof(buf) && (n = read(fd, buf + total, sizeof(buf) - total)) > 0)
		total += (size_t)n;
	close(fd);
	if (cgroup_identity_parse(buf, total, &ci)) {
		cgroup_identity_service(&ci, out, outlen);
		memcpy(cid, ci.container_id, sizeof(ci.container_id));
	}
}

/*
 * The name the program was started as: the executable's name, unless the
 * kernel's name for the task (the basename of the path exec'd, before
 * symlinks) differs from it rather than being a cut-down form of it, as for
 * Debian's redis-server, a symlink to redis-check-rdb.
 */
static void program_name(const struct identity *id, uint32_t pid, const char *exe, char *out,
			 size_t outlen)
{
	char path[96], comm[32];
	ssize_t n;
	int fd;

	mt_strlcpy(out, exe, outlen);
	snprintf(path, sizeof(path), "%s/%u/comm", id->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	if (comm[0] && strncmp(exe, comm, strlen(comm)) != 0)
		mt_strlcpy(out, comm, outlen);
}

/*
 * Fills @r from /proc. Returns the source of the name, NAME_COMM when the
 * process is gone (@r then uses @comm).
 */
static enum name_source resolve(struct identity *id, struct mt_resource *r, uint32_t pid,
				const char *comm, char cid[65])
{
	char cgroup_name[MT_SERVICE_MAX];

	memset(r, 0, sizeof(*r));
	cid[0] = '\0';
	r->pid = pid;
	id->stats.resolved++;
	if (!read_exe_name(id, pid, r->exe_name, sizeof(r->exe_name))) {
		id->stats.gone++;
		snprintf(r->exe_name, sizeof(r->exe_name), "%.16s", comm ? comm : "");
		mt_strlcpy(r->service_name, r->exe_name, sizeof(r->service_name));
		return NAME_COMM;
	}
	/* The cgroup also when the environment names it: its container's pod names it too. */
	read_cgroup_service(id, pid, cgroup_name, sizeof(cgroup_name), cid);
	read_service_name(id, pid, r->service_name, sizeof(r->service_name));
	if (r->service_name[0])
		return NAME_ENVIRON;
	mt_strlcpy(r->service_name, cgroup_name, sizeof(r->service_name));
	if (r->service_name[0])
		return NAME_CGROUP;
	program_name(id, pid, r->exe_name, r->service_name, sizeof(r->service_name));
	return NAME_EXE;
}

/* A fixed-size field of a kernel event as a C string: up to its first NUL, at most @n bytes. */
static size_t field_len(const char *f, size_t n)
{
	const char *nul = memchr(f, '\0', n);

	return nul ? (size_t)(nul - f) : n;
}

/* Feeds "KEY=VALUE" to @scan as one environment entry, when the value is not empty. */
static void scan_field(struct environ_scan *scan, const char *key, const char *v, size_t n)
{
	size_t len = field_len(v, n);

	if (!len)
		return;
	environ_scan_feed(scan, key, strlen(key));
	environ_scan_feed(scan, v, len);
	environ_scan_feed(scan, "", 1);
}

/* The same choice as resolve(), from what the kernel read at the exec. */
static enum name_source birth_resolve(const struct mt_exec_event *ev, struct mt_resource *r,
				      char cid[65])
{
	struct environ_scan scan;
	struct cgroup_identity ci;
	char comm[sizeof(ev->proc.comm) + 1];
	char path[8 + MT_EXEC_CGROUP_LEVELS * (MT_EXEC_CGROUP_NAME_MAX + 1)];
	size_t o = 0;

	memset(r, 0, sizeof(*r));
	cid[0] = '\0';
	r->pid = ev->proc.pid;
	snprintf(comm, sizeof(comm), "%.*s", (int)field_len(ev->proc.comm, sizeof(ev->proc.comm)),
		 ev->proc.comm);
	if (ev->exe[0])
		snprintf(r->exe_name, sizeof(r->exe_name), "%.*s",
			 (int)field_len(ev->exe, sizeof(ev->exe)), ev->exe);
	else
		mt_strlcpy(r->exe_name, comm, sizeof(r->exe_name));

	environ_scan_init(&scan);
	scan_field(&scan, "OTEL_SERVICE_NAME=", ev->otel_service_name,
		   sizeof(ev->otel_service_name));
	scan_field(&scan, "OTEL_RESOURCE_ATTRIBUTES=", ev->otel_resource_attributes,
		   sizeof(ev->otel_resource_attributes));
	mt_strlcpy(r->service_name, environ_scan_result(&scan), sizeof(r->service_name));

	/* The cgroup names, leaf first, as the v2 line of /proc/PID/cgroup: "0::/top/../leaf". */
	o = (size_t)snprintf(path, sizeof(path), "0::");
	for (int i = MT_EXEC_CGROUP_LEVELS - 1; i >= 0; i--) {
		size_t len = field_len(ev->cgroup[i], sizeof(ev->cgroup[i]));

		if (!len)
			continue;
		path[o++] = '/';
		memcpy(path + o, ev->cgroup[i], len);
		o += len;
	}
	if (cgroup_identity_parse(path, o, &ci))
		memcpy(cid, ci.container_id, sizeof(ci.container_id));
	if (r->service_name[0])
		return NAME_ENVIRON;
	if (ci.container_id[0] || ci.pod_uid[0]) {
		cgroup_identity_service(&ci, r->service_name, sizeof(r->service_name));
		if (r->service_name[0])
			return NAME_CGROUP;
	}

	/* program_name(): the exec'd name when it is not a cut-down form of the file's. */
	mt_strlcpy(r->service_name, r->exe_name, sizeof(r->service_name));
	if (comm[0] && strncmp(r->exe_name, comm, strlen(comm)) != 0)
		mt_strlcpy(r->service_name, comm, sizeof(r->service_name));
	return NAME_EXE;
}

void identity_from_exec_event(const struct mt_exec_event *ev, struct mt_resource *out)
{
	char cid[65];

	birth_resolve(ev, out, cid);
}

static struct identity_entry *find_entry(struct identity *id, uint32_t pid);

/* Which of two full slots to give up: an exited process's before a live one's, then the older. */
static bool evict_before(const struct identity_entry *a, const struct identity_entry *b)
{
	if (!a->exited_ns != !b->exited_ns)
		return a->exited_ns != 0;
	return a->resolved_ns < b->resolved_ns;
}

/*
 * A slot for @pid, which has none: an empty one in its probe window, else the
 * window's best to evict (counted). An exec storm of processes that never make
 * a span then replaces its own exited entries, not the long-lived services'.
 */
static struct identity_entry *claim_slot(struct identity *id, uint32_t pid)
{
	uint32_t h = hashtab_hash64(pid) & (IDENTITY_MAX - 1);
	struct identity_entry *victim = NULL;

	/* Slots are emptied anywhere (exit, exec): look at the whole window. */
	for (uint32_t probe = 0; probe < 8; probe++) {
		struct identity_entry *s = &id->slots[(h + probe) & (IDENTITY_MAX - 1)];

		if (!s->resolved_ns) {
			id->count++;
			return s;
		}
		if (!victim || evict_before(s, victim))
			victim = s;
	}
	k8s_detach(id, victim);
	id->stats.evicted++;
	if (!victim->exited_ns)
		id->stats.evicted_live++;
	return victim;
}

const struct mt_resource *identity_lookup(struct identity *id, uint32_t pid, const char *comm,
					  uint64_t now_ns)
{
	struct identity_entry *e = find_entry(id, pid);
	char cid[65];

	id->stats.lookups++;
	id->now_ns = now_ns;
	if (e) {
		if (!e->exited_ns && (e->reread || e->resolved_ns + IDENTITY_TTL_NS < now_ns)) {
			struct mt_resource fresh;
			enum name_source src = resolve(id, &fresh, pid, comm, cid);

			/*
			 * A process that is gone keeps the name it had; one whose environment
			 * or cgroup cannot be read (any more) keeps the stronger name it had.
			 */
			if (src != NAME_COMM && src >= e->source) {
				e->res = fresh;
				e->source = (uint8_t)src;
				k8s_attach(id, e, cid);
			} else if (src != NAME_COMM) {
				id->stats.kept++;
			}
			e->reread = false;
			e->resolved_ns = now_ns ? now_ns : 1;
		}
		k8s_name(id, e);
		return &e->res;
	}
	e = claim_slot(id, pid);
	e->source = (uint8_t)resolve(id, &e->res, pid, comm, cid);
	e->reread = false;
	e->resolved_ns = now_ns ? now_ns : 1;
	e->exited_ns = 0;
	k8s_attach(id, e, cid);
	k8s_name(id, e);
	return &e->res;
}

static struct identity_entry *find_entry(struct identity *id, uint32_t pid)
{
	uint32_t h = hashtab_hash64(pid) & (IDENTITY_MAX - 1);

	for (uint32_t probe = 0; probe < 8; probe++) {
		struct identity_entry *e = &id->slots[(h + probe) & (IDENTITY_MAX - 1)];

		if (e->resolved_ns && e->res.pid == pid)
			return e;
	}
	return NULL;
}

void identity_on_exit(struct identity *id, uint32_t pid, uint64_t now_ns)
{
	struct identity_entry *e = find_entry(id, pid);

	if (e && !e->exited_ns)
		e->exited_ns = now_ns ? now_ns : 1;
}

void identity_on_exec(struct identity *id, uint32_t pid)
{
	struct identity_entry *e = find_entry(id, pid);

	if (!e)
		return;
	/* Empty the slot: the next lookup reads /proc afresh. */
	k8s_detach(id, e);
	e->resolved_ns = 0;
	e->exited_ns = 0;
	id->count--;
	id->stats.execs++;
}

void identity_on_exec_event(struct identity *id, const struct mt_exec_event *ev, uint64_t now_ns)
{
	struct identity_entry *e = find_entry(id, ev->proc.pid);
	char cid[65];

	id->now_ns = now_ns;
	if (e)
		id->stats.execs++;
	else
		e = claim_slot(id, ev->proc.pid);
	e->source = (uint8_t)birth_resolve(ev, &e->res, cid);
	k8s_attach(id, e, cid);
	k8s_name(id, e);
	/* Past the entries looked at, OTEL_SERVICE_NAME may still be set: /proc has it all. */
	e->reread = (ev->flags & (MT_EXEC_F_ENV_TRUNC | MT_EXEC_F_ENV_FAULT)) &&
		    e->source != NAME_ENVIRON;
	e->resolved_ns = now_ns ? now_ns : 1;
	e->exited_ns = 0;
	id->stats.births++;
}

void identity_expire(struct identity *id, uint64_t now_ns)
{
	id->now_ns = now_ns;
	for (uint32_t i = 0; i < IDENTITY_MAX; i++) {
		struct identity_entry *e = &id->slots[i];

		if (e->resolved_ns && e->exited_ns &&
		    e->exited_ns + IDENTITY_EXIT_GRACE_NS < now_ns) {
			k8s_detach(id, e);
			e->resolved_ns = 0;
			e->exited_ns = 0;
			id->count--;
			id->stats.exits++;
		}
	}
}

void identity_stats(const struct identity *id, struct identity_stats *out)
{
	*out = id->stats;
	out->entries = id->count;
}
