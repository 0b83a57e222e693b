// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "capture.h"
#include "capture.skel.h"
#include "log.h"

struct capture {
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	capture_event_fn fn;
	void *ctx;
	enum capture_mode mode;
	int ncpus;
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

static int on_ring_event(void *ctx, void *data, size_t size)
{
	struct capture *c = ctx;

	c->fn(c->ctx, data, size);
	return 0;
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

	c->skel = capture_bpf__open();
	if (!c->skel) {
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto out_free;
	}
	c->skel->rodata->agent_tgid = (uint32_t)getpid();
	c->skel->rodata->capture_bytes = opts->capture_bytes;
	c->skel->rodata->wakeup_bytes =
		opts->wakeup_bytes ? opts->wakeup_bytes : MT_WAKEUP_BYTES_DEFAULT;
	set_syscall_autoload(c->skel, c->mode == CAPTURE_SYSCALLS);

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
	rc = capture_bpf__attach(c->skel);
	if (rc) {
		snprintf(err, errlen,
			 "cannot attach the tracepoints (%s): is tracefs mounted at "
			 "/sys/kernel/tracing? (mount -t tracefs nodev /sys/kernel/tracing)",
			 strerror(-rc));
		goto out_destroy;
	}
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_ring_event, c, NULL);
	if (!c->rb) {
		snprintf(err, errlen, "cannot map the ring buffer: %s", strerror(errno));
		goto out_destroy;
	}
	return c;

out_destroy:
	capture_bpf__destroy(c->skel);
out_free:
	free(c);
	return NULL;
}

void capture__free(struct capture *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	capture_bpf__destroy(c->skel);
	free(c);
}

int capture_mute(struct capture *c, uint64_t sock)
{
	uint8_t one = 1;

	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.muted_socks), &sock, &one, BPF_ANY))
		return -errno;
	c->skel->bss->muted_used = 1;
	return 0;
}

void capture_detach(struct capture *c)
{
	capture_bpf__detach(c->skel);
}

int capture_fd(const struct capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int capture_drain(struct capture *c)
{
	return ring_buffer__consume(c->rb);
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
	out->ncpus = c->ncpus < CAPTURE_CPUS_REPORTED ? c->ncpus : CAPTURE_CPUS_REPORTED;
	sum_percpu(bpf_map__fd(c->skel->maps.drops), c->ncpus, out->drops, MT_DROP__MAX,
		   out->drops_cpu);
	sum_percpu(bpf_map__fd(c->skel->maps.stats), c->ncpus, out->stats, MT_STAT__MAX, NULL);
}

const char *capture_mode_name(const struct capture *c)
{
	return c->mode == CAPTURE_SOCK ? "sock" : "syscalls";
}

void capture_read_ext_counters(const struct capture *c, uint64_t out[MT_XSTAT__MAX])
{
	sum_percpu(bpf_map__fd(c->skel->maps.ext_stats), c->ncpus, out, MT_XSTAT__MAX, NULL);
}
