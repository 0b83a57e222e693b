// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/capture/capture.h"
#include "agent/capture/rings.h"
#include "agent/capture/tls.h"
#include "agent/capture/xnode.h"
#include "capture.skel.h"
#include "agent/common/clock.h"
#include "agent/common/log.h"

/* A recording's format: see CAPTURE_RECORD_MAX in capture.h. */
#define REC_MAX	  CAPTURE_RECORD_MAX
#define REC_ALIGN 8
/* A gap between recorded events longer than this is not waited out. */
#define REPLAY_JUMP_NS (10ull * 1000000000ull)

struct replay {
	FILE *f;
	uint8_t *buf;	  /* the next record, read ahead */
	uint32_t size;	  /* its size; 0: none read yet */
	uint64_t last_ts; /* the previous event's recorded time */
	int64_t offset;	  /* recorded time + offset = when it is due (CLOCK_MONOTONIC) */
	bool done;
	uint64_t records;
	int efd; /* never readable: replay is paced by the agent's drain timer */
};

struct capture {
	struct capture_bpf *skel; /* NULL when replaying */
	struct rings *rings;	  /* one ring buffer per CPU */
	capture_event_fn fn;
	void *ctx;
	enum capture_mode mode;
	int ncpus;
	uint64_t ring_size; /* bytes in each CPU's ring */
	FILE *record;	    /* --record: every event is also written here */
	uint64_t record_errors;
	struct replay *replay;
	struct tls_attach *tls;	  /* NULL: --no-tls, or replaying */
	struct bpf_link *sockops; /* --propagate */
};

static const char *const drop_names[MT_DROP__MAX] = {
	[MT_DROP_RINGBUF_FULL] = "ringbuf_full",
	[MT_DROP_READ_FAULT] = "read_fault",
	[MT_DROP_INFLIGHT_FULL] = "inflight_full",
	[MT_DROP_CONNECTING_FULL] = "connecting_full",
};

const char *capture_drop_name(int reason)
{
	if (reason < 0 || reason >= MT_DROP__MAX)
		return "unknown";
	return drop_names[reason];
}

/* libbpf's messages go to our log: warnings shown, the rest at debug level. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	if (level == LIBBPF_DEBUG && mt_log_level < MT_LOG_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && mt_log_level < MT_LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	mt_log(level == LIBBPF_WARN ? MT_LOG_WARN : MT_LOG_DEBUG, "libbpf: %s", line);
	return 0;
}

/* True when the running kernel has the sock:sock_{send,recv}_length tracepoints. */
static bool kernel_has_sock_length_tracepoints(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (!vmlinux)
		return false;
	found = btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) >
			0 &&
		btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) > 0;
	btf__free(vmlinux);
	return found;
}

/*
 * True when the classic tracepoints' ids can be read, as libbpf reads them: from tracefs at
 * /sys/kernel/tracing, or through debugfs at /sys/kernel/debug/tracing.
 */
static bool tracefs_mounted(void)
{
	return access("/sys/kernel/tracing/events/syscalls", F_OK) == 0 ||
	       access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0;
}

/*
 * Mounts tracefs for the agent alone, as a node without it (a fresh VM, a
 * container) needs for the syscalls data path: in a mount namespace of its
 * own, a copy of the host's, so the host's mounts stay as they were. The copy
 * is a slave of the host's: mounts made there later (new containers' root
 * filesystems) still reach the agent. Needs CAP_SYS_ADMIN, and a single thread
 * (the agent has one). On failure, errno is left as the failing call set it.
 */
static bool tracefs_mount_private(void)
{
	if (unshare(CLONE_NEWNS) != 0)
		return false;
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0)
		return false;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) != 0)
		return false;
	if (!tracefs_mounted()) {
		errno = ENOENT; /* mounted, but this kernel has no syscall tracepoints */
		return false;
	}
	return true;
}

/*
 * The exec program reads the new environment with bpf_loop (Linux 5.17); on
 * older kernels a variant without it is loaded instead, and names come from
 * /proc as for processes older than the agent. A probe that cannot tell
 * (an error) keeps the full program: loading then says what failed.
 */
static void set_exec_autoload(struct capture_bpf *skel)
{
	bool loop = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCKET_FILTER, BPF_FUNC_loop, NULL) != 0;

	if (getenv("MESHTRACE_TEST_NO_BPF_LOOP")) /* the older kernels' path, for tests */
		loop = false;

	if (!loop)
		mt_warn("this kernel has no bpf_loop (Linux < 5.17): processes are named from "
			"/proc, "
			"so short-lived ones may get their executable's name");
	bpf_program__set_autoload(skel->progs.sched_process_exec, loop);
	bpf_program__set_autoload(skel->progs.sched_process_exec_noloop, !loop);
}

static void set_syscall_autoload(struct capture_bpf *skel, bool on)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj)
	{
		const char *sec = bpf_program__section_name(prog);

		if (strncmp(sec, "tracepoint/syscalls/", 20) == 0)
			bpf_program__set_autoload(prog, on);
	}
	bpf_program__set_autoload(skel->progs.sock_send_length, !on);
	bpf_program__set_autoload(skel->progs.sock_recv_length, !on);
}

static void set_tls_autoload(struct capture_bpf *skel, bool on)
{
	bpf_program__set_autoload(skel->progs.tls_read_entry, on);
	bpf_program__set_autoload(skel->progs.tls_write_entry, on);
	bpf_program__set_autoload(skel->progs.tls_read_ex_entry, on);
	bpf_program__set_autoload(skel->progs.tls_write_ex_entry, on);
	bpf_program__set_autoload(skel->progs.tls_ret, on);
	bpf_program__set_autoload(skel->progs.go_tls_write_entry, on);
	bpf_program__set_autoload(skel->progs.go_tls_read_entry, on);
	bpf_program__set_autoload(skel->progs.go_tls_ret, on);
	bpf_program__set_autoload(skel->progs.go_tls_handshake_entry, on);
	bpf_program__set_autoload(skel->progs.go_tls_handshake_ret, on);
}

/*
 * Probes the TLS libraries of the processes running now. Not fatal: without it
 * TLS connections stay TCP edges (a warning says so).
 */
static void tls_open(struct capture *c)
{
	struct tls_programs p = {
		.entry =
			{
				[MT_TLS_FN_READ] = c->skel->progs.tls_read_entry,
				[MT_TLS_FN_WRITE] = c->skel->progs.tls_write_entry,
				[MT_TLS_FN_READ_EX] = c->skel->progs.tls_read_ex_entry,
				[MT_TLS_FN_WRITE_EX] = c->skel->progs.tls_write_ex_entry,
			},
		.ret = c->skel->progs.tls_ret,
		.tls_used = &c->skel->bss->tls_used,
		.calls_by_proc = c->skel->bss->tls_calls_by_proc,
		.calls_fd = bpf_map__fd(c->skel->maps.tls_calls),
		.go_calls_fd = bpf_map__fd(c->skel->maps.tls_go_calls),
		.stats_fd = bpf_map__fd(c->skel->maps.tls_stats),
		.go =
			{
				.write_entry = c->skel->progs.go_tls_write_entry,
				.read_entry = c->skel->progs.go_tls_read_entry,
				.ret = c->skel->progs.go_tls_ret,
				.handshake_entry = c->skel->progs.go_tls_handshake_entry,
				.handshake_ret = c->skel->progs.go_tls_handshake_ret,
				.used = &c->skel->bss->tls_go_used,
			},
	};

	c->tls = tls_attach__new(&p);
	if (!c->tls) {
		mt_warn("TLS: out of memory: TLS plaintext is not captured");
		return;
	}
	tls_scan_all(c->tls);
}

void capture_tls_on_handshake(struct capture *c, uint32_t pid)
{
	if (c->tls)
		tls_on_handshake(c->tls, pid);
}

bool capture_tls_stats(const struct capture *c, struct tls_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c->tls)
		return false;
	tls_read_stats(c->tls, c->ncpus, out);
	return true;
}

/*
 * --cgroup and --propagate, before load: the scope's (id, level) in rodata;
 * the propagation programs are loaded only when asked for. Returns 0, or -1
 * with one line in @err.
 */
static int set_xnode(struct capture *c, const struct capture_opts *opts, char *err, size_t errlen)
{
	struct xnode_scope scope;

	if (opts->cgroup) {
		if (xnode_scope_resolve("--cgroup", opts->cgroup, &scope, err, errlen))
			return -1;
		c->skel->rodata->scope_cgroup_id = scope.id;
		c->skel->rodata->scope_level = scope.level;
		mt_info("scope: processes in cgroup %s (id %llu, level %u)", scope.path,
			(unsigned long long)scope.id, scope.level);
	}
	if (opts->propagate && c->mode != CAPTURE_SOCK) {
		snprintf(err, errlen,
			 "--propagate needs the sock tracepoints (--capture-mode sock, Linux >= "
			 "6.3)");
		return -1;
	}
	c->skel->rodata->propagate = opts->propagate;
	bpf_program__set_autoload(c->skel->progs.tcp_sendmsg_locked, opts->propagate);
	bpf_program__set_autoload(c->skel->progs.xnode_sockops, opts->propagate);
	return 0;
}

static void record_event(struct capture *c, const void *data, size_t size)
{
	static const uint8_t pad[REC_ALIGN];
	uint32_t n = (uint32_t)size;

	if (size > REC_MAX || fwrite(&n, sizeof(n), 1, c->record) != 1 ||
	    fwrite(data, 1, size, c->record) != size ||
	    fwrite(pad, 1, (REC_ALIGN - size % REC_ALIGN) % REC_ALIGN, c->record) !=
		    (REC_ALIGN - size % REC_ALIGN) % REC_ALIGN)
		c->record_errors++;
}

static int on_ring_event(void *ctx, void *data, size_t size)
{
	struct capture *c = ctx;
	const struct mt_proc_event *pe = data;

	/* A new program may bring a TLS library: looked at a little later, off this path. */
	if (c->tls && size >= sizeof(*pe) && pe->head.kind == MT_EV_PROC && pe->op == MT_PROC_EXEC)
		tls_on_exec(c->tls, pe->pid, pe->head.ts_ns);
	if (c->record)
		record_event(c, data, size);
	c->fn(c->ctx, data, size);
	return 0;
}

/*
 * One ring buffer per possible CPU, put in the programs' array (rings.h) and mapped, before
 * the programs are attached.
 */
static int make_rings(struct capture *c, char *err, size_t errlen)
{
	int outer = bpf_map__fd(c->skel->maps.rings), rc = -1;
	int *fds = calloc((size_t)c->ncpus, sizeof(*fds));
	int made = 0;

	if (!fds) {
		snprintf(err, errlen, "cannot make the ring buffers: %s", strerror(ENOMEM));
		return -1;
	}
	for (; made < c->ncpus; made++) {
		uint32_t cpu = (uint32_t)made;

		fds[made] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "mt_ring", 0, 0,
					   (uint32_t)c->ring_size, NULL);
		if (fds[made] < 0) {
			snprintf(err, errlen,
				 "cannot make a %" PRIu64 " KiB ring buffer for CPU %d: %s",
				 c->ring_size >> 10, made, strerror(errno));
			goto out;
		}
		if (bpf_map_update_elem(outer, &cpu, &fds[made], BPF_ANY)) {
			snprintf(err, errlen, "cannot give CPU %d its ring buffer: %s", made,
				 strerror(errno));
			made++;
			goto out;
		}
	}
	c->rings = rings__new(fds, (unsigned)c->ncpus, c->ring_size);
	if (!c->rings)
		snprintf(err, errlen, "cannot map the ring buffers: %s", strerror(errno));
	else
		rc = 0;
out:
	/* The array and the mappings hold the rings now. */
	while (made-- > 0)
		if (fds[made] >= 0)
			close(fds[made]);
	free(fds);
	return rc;
}

struct capture *capture__open(const struct capture_opts *opts, capture_event_fn fn, void *ctx,
			      char *err, size_t errlen)
{
	struct capture *c;
	bool have_sock;
	int rc;

	libbpf_set_print(libbpf_print);
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(err, errlen,
			 "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): "
			 "meshtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return NULL;
	}
	if (opts->capture_bytes > MT_CAPTURE_MAX) {
		snprintf(err, errlen, "capture size %u is over the maximum %u", opts->capture_bytes,
			 MT_CAPTURE_MAX);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fn = fn;
	c->ctx = ctx;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		snprintf(err, errlen, "cannot count the possible CPUs: %s", strerror(-c->ncpus));
		goto out_free;
	}

	have_sock = kernel_has_sock_length_tracepoints();
	c->mode = opts->mode;
	if (c->mode == CAPTURE_AUTO)
		c->mode = have_sock ? CAPTURE_SOCK : CAPTURE_SYSCALLS;
	if (c->mode == CAPTURE_SOCK && !have_sock) {
		snprintf(err, errlen,
			 "--capture-mode sock needs the sock:sock_send_length tracepoint (Linux >= "
			 "6.3); "
			 "use --capture-mode syscalls on this kernel");
		goto out_free;
	}
	/* Only the syscalls data path has classic tracepoints; the rest attaches through BTF. */
	if (c->mode == CAPTURE_SYSCALLS && !tracefs_mounted()) {
		if (!tracefs_mount_private()) {
			snprintf(err, errlen,
				 "--capture-mode syscalls attaches syscall tracepoints, which need "
				 "tracefs, and it is not mounted, nor could the agent mount it for "
				 "itself (%s; it needs CAP_SYS_ADMIN): mount it (mount -t tracefs "
				 "nodev /sys/kernel/tracing), or use --capture-mode sock (Linux >= "
				 "6.3), which needs none",
				 strerror(errno));
			goto out_free;
		}
		mt_info("tracefs was not mounted: mounted it at /sys/kernel/tracing in the "
			"agent's own mount namespace (the host's mounts are unchanged)");
	}

	c->skel = capture_bpf__open();
	if (!c->skel) {
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto out_free;
	}
	c->skel->rodata->agent_tgid = (uint32_t)getpid();
	c->skel->rodata->capture_bytes = opts->capture_bytes;
	c->ring_size = rings_size_per_cpu((unsigned)c->ncpus);
	c->skel->rodata->ring_bytes = (uint32_t)c->ring_size;
	/* Woken early at an eighth of a ring at most: far below where data is shed. */
	c->skel->rodata->wakeup_bytes =
		opts->wakeup_bytes ? opts->wakeup_bytes : MT_WAKEUP_BYTES_DEFAULT;
	if (c->skel->rodata->wakeup_bytes > c->ring_size / 8)
		c->skel->rodata->wakeup_bytes = c->ring_size / 8;
	/* The rings' own size is theirs to have: the kernel does not compare it to the template. */
	if (bpf_map__set_max_entries(c->skel->maps.rings, (uint32_t)c->ncpus)) {
		snprintf(err, errlen, "cannot size the ring buffer array: %s", strerror(errno));
		goto out_destroy;
	}
	set_syscall_autoload(c->skel, c->mode == CAPTURE_SYSCALLS);
	set_exec_autoload(c->skel);
	set_tls_autoload(c->skel, !opts->no_tls);
	if (set_xnode(c, opts, err, errlen))
		goto out_destroy;

	rc = capture_bpf__load(c->skel);
	if (rc) {
		if (rc == -EPERM || errno == EPERM)
			snprintf(err, errlen,
				 "loading BPF programs was refused (EPERM): run as root, or grant "
				 "CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE");
		else
			snprintf(err, errlen,
				 "the kernel refused the BPF programs (%s); run with -v for the "
				 "verifier log",
				 strerror(-rc));
		goto out_destroy;
	}
	if (make_rings(c, err, errlen))
		goto out_destroy;
	rc = capture_bpf__attach(c->skel);
	if (rc) {
		if (c->mode == CAPTURE_SYSCALLS)
			snprintf(
				err, errlen,
				"cannot attach the syscall tracepoints (%s): is tracefs mounted at "
				"/sys/kernel/tracing? (mount -t tracefs nodev /sys/kernel/tracing)",
				strerror(-rc));
		else
			snprintf(
				err, errlen,
				"cannot attach the BPF programs to their BTF tracepoints (%s): run "
				"with -v to see which one; --capture-mode syscalls is the fallback",
				strerror(-rc));
		goto out_destroy;
	}
	if (opts->propagate) {
		char dir[PATH_MAX];

		if (opts->cgroup)
			snprintf(dir, sizeof(dir), "%s", opts->cgroup);
		else if (xnode_root_cgroup(dir, sizeof(dir)) != 0) {
			snprintf(err, errlen, "--propagate: no cgroup v2 file system is mounted");
			goto out_destroy;
		}
		c->sockops = xnode_attach_sockops(c->skel, dir, err, errlen);
		if (!c->sockops)
			goto out_destroy;
	}
	if (!opts->no_tls)
		tls_open(c);
	return c;

out_destroy:
	bpf_link__destroy(c->sockops);
	capture_bpf__destroy(c->skel);
out_free:
	free(c);
	return NULL;
}

void capture__free(struct capture *c)
{
	if (!c)
		return;
	if (c->record) {
		int err = fclose(c->record) != 0 ? errno : 0;

		if (err || c->record_errors)
			mt_warn("--record: writing the recording failed (%s): it is incomplete",
				strerror(err ? err : EIO));
	}
	if (c->replay) {
		fclose(c->replay->f);
		close(c->replay->efd);
		free(c->replay->buf);
		free(c->replay);
	}
	tls_attach__free(c->tls);
	rings__free(c->rings);
	bpf_link__destroy(c->sockops);
	capture_bpf__destroy(c->skel);
	free(c);
}

int capture_record_to(struct capture *c, const char *path)
{
	c->record = fopen(path, "we");
	if (!c->record)
		return -errno;
	setvbuf(c->record, NULL, _IOFBF, 1 << 20);
	return 0;
}

struct capture *capture__open_replay(const char *path, capture_event_fn fn, void *ctx, char *err,
				     size_t errlen)
{
	struct capture *c = calloc(1, sizeof(*c));
	struct replay *r = calloc(1, sizeof(*r));

	if (!c || !r || !(r->buf = malloc(REC_MAX))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r->f = fopen(path, "re");
	if (!r->f) {
		snprintf(err, errlen, "--replay '%s': %s", path, strerror(errno));
		goto fail;
	}
	c->fn = fn;
	c->ctx = ctx;
	c->ncpus = 1;
	c->replay = r;
	return c;
fail:
	if (r) {
		if (r->efd > 0)
			close(r->efd);
		free(r->buf);
		free(r);
	}
	free(c);
	return NULL;
}

int capture_read_record(FILE *f, void *buf)
{
	uint32_t n;
	size_t padded, got;

	got = fread(&n, 1, sizeof(n), f);
	if (got == 0 && feof(f))
		return 0; /* the end, cleanly */
	if (got != sizeof(n) || n == 0 || n > REC_MAX)
		return ferror(f) ? -EIO : -EBADMSG;
	padded = n + (REC_ALIGN - n % REC_ALIGN) % REC_ALIGN;
	if (fread(buf, 1, padded, f) != padded)
		return -ENODATA;
	return (int)n;
}

/* Reads the next record into r->buf; false at the end (or a short, damaged tail). */
static bool replay_read(struct replay *r)
{
	int n = capture_read_record(r->f, r->buf);

	if (n == -ENODATA) {
		mt_warn("--replay: the recording ends inside an event after %" PRIu64 " events",
			r->records);
		return false;
	}
	if (n < 0) {
		mt_warn("--replay: %s after %" PRIu64 " events: the rest is not replayed",
			n == -EIO ? strerror(errno) : "not a recording, or damaged", r->records);
		return false;
	}
	r->size = (uint32_t)n;
	return n > 0;
}

/*
 * Replays the recorded events that are due: the recording's timing is kept,
 * shifted to now, so the agent's clocks and timeouts see what they saw live.
 */
static int replay_drain(struct capture *c)
{
	struct replay *r = c->replay;
	uint64_t now = mt_now_mono_ns();
	int n = 0;

	while (!r->done) {
		struct mt_event_head *h = (struct mt_event_head *)r->buf;

		if (!r->size && !replay_read(r)) {
			r->done = true;
			break;
		}
		if (r->size >= sizeof(*h)) {
			/* A jump (another recording appended, a damaged record): due now. */
			if (!r->records || h->ts_ns + REPLAY_JUMP_NS < r->last_ts ||
			    h->ts_ns > r->last_ts + REPLAY_JUMP_NS)
				r->offset = (int64_t)(now - h->ts_ns);
			if (h->ts_ns + (uint64_t)r->offset > now)
				break;
			r->last_ts = h->ts_ns;
			h->ts_ns += (uint64_t)r->offset;
		}
		r->records++;
		c->fn(c->ctx, r->buf, r->size);
		r->size = 0;
		n++;
	}
	return n;
}

bool capture_replay_done(const struct capture *c)
{
	return c->replay && c->replay->done;
}

int capture_mute(struct capture *c, uint64_t sock, const struct mt_tuple *tuple)
{
	if (!c->skel)
		return 0;

	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.muted_socks), &sock, tuple, BPF_ANY))
		return -errno;
	c->skel->bss->muted_used = 1;
	return 0;
}

int capture_skip(struct capture *c, uint64_t sock, const struct mt_skip *hint)
{
	if (!c->skel)
		return 0;
	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.skip_socks), &sock, hint, BPF_ANY))
		return -errno;
	c->skel->bss->skip_used = 1;
	return 0;
}

void capture_detach(struct capture *c)
{
	if (c->tls)
		tls_detach(c->tls);
	if (c->skel)
		capture_bpf__detach(c->skel);
}

int capture_fd(const struct capture *c)
{
	return c->replay ? c->replay->efd : rings_epoll_fd(c->rings);
}

int capture_drain(struct capture *c)
{
	if (c->replay)
		return replay_drain(c);
	if (c->tls)
		tls_tick(c->tls, mt_now_mono_ns());
	return rings_drain(c->rings, false, on_ring_event, c);
}

int capture_drain_all(struct capture *c)
{
	if (c->replay)
		return replay_drain(c);
	return rings_drain(c->rings, true, on_ring_event, c);
}

/* Sums one per-CPU array of u64 counters into @out[0..n). */
static void sum_percpu(int map_fd, int ncpus, uint64_t *out, uint32_t n,
		       uint64_t (*per_cpu)[CAPTURE_CPUS_REPORTED])
{
	uint64_t vals[ncpus];

	for (uint32_t i = 0; i < n; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(map_fd, &i, vals) != 0)
			continue;
		for (int cpu = 0; cpu < ncpus; cpu++) {
			out[i] += vals[cpu];
			if (per_cpu && cpu < CAPTURE_CPUS_REPORTED)
				per_cpu[i][cpu] = vals[cpu];
		}
	}
}

void capture_read_counters(const struct capture *c, struct capture_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (!c->skel)
		return;
	out->ncpus = c->ncpus < CAPTURE_CPUS_REPORTED ? c->ncpus : CAPTURE_CPUS_REPORTED;
	sum_percpu(bpf_map__fd(c->skel->maps.drops), c->ncpus, out->drops, MT_DROP__MAX,
		   out->drops_cpu);
	sum_percpu(bpf_map__fd(c->skel->maps.stats), c->ncpus, out->stats, MT_STAT__MAX, NULL);
	if (c->rings) {
		struct rings_stats rs;

		rings_get_stats(c->rings, &rs);
		out->events_late = rs.late;
	}
}

const char *capture_mode_name(const struct capture *c)
{
	if (c->replay)
		return "replay";
	return c->mode == CAPTURE_SOCK ? "sock" : "syscalls";
}

void capture_read_xnode_counters(const struct capture *c, uint64_t out[MT_XS__MAX])
{
	if (!c->skel) {
		memset(out, 0, MT_XS__MAX * sizeof(out[0]));
		return;
	}
	sum_percpu(bpf_map__fd(c->skel->maps.xstats), c->ncpus, out, MT_XS__MAX, NULL);
}

void capture_read_ext_counters(const struct capture *c, uint64_t out[MT_XSTAT__MAX])
{
	if (!c->skel) {
		memset(out, 0, MT_XSTAT__MAX * sizeof(out[0]));
		return;
	}
	sum_percpu(bpf_map__fd(c->skel->maps.ext_stats), c->ncpus, out, MT_XSTAT__MAX, NULL);
}
