/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What identity needs besides the connections: the DNS answers the node's processes receive
 * (address -> name), and when a process execs a new program or exits.
 */
#ifndef MESHTRACE_BPF_DNSPROC_BPF_H
#define MESHTRACE_BPF_DNSPROC_BPF_H

/*
 * DNS over UDP: a datagram on a socket whose local or remote port is 53 goes
 * out whole (up to MT_DNS_CAPTURE_MAX bytes) as MT_EV_DNS, in the data
 * event's layout, so user space learns address -> name from the answers the
 * node's processes receive. Connected sockets (glibc's resolver connects)
 * and resolvers on port 53 are seen; an unconnected client socket talking to
 * a resolver off the node is not (its peer is only in the msghdr).
 * Sockets of other ports cost two field loads. Called from the sock tracepoints
 * (datapath.bpf.h) for every UDP send and receive.
 */
static __always_inline int on_udp_msg(const struct msg_args *m, __u8 dir)
{
	struct sock *sk = m->sk;
	struct task_struct *task;
	struct pt_regs *regs;
	struct scratch *sc;
	__u32 zero = 0, want, off = 0;
	__u64 pid_tgid;
	__u16 lport, rport;
	__u8 flags = 0;
	void *ring;
	int got, sent;

	if (m->protocol != IPPROTO_UDP || !msg_moved_bytes(m, dir))
		return 0;
	lport = sk->__sk_common.skc_num;
	rport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (lport != MT_DNS_PORT && rport != MT_DNS_PORT)
		return 0;
	task = traced_task(&pid_tgid);
	if (!task)
		return 0;
	sc = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!sc)
		return 0;

	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	want = (__u32)m->ret;
	if (want > MT_DNS_CAPTURE_MAX)
		want = MT_DNS_CAPTURE_MAX;
	bound_var(want);
	got = copy_payload(sc, MT_SYSCALL_NR(regs), MT_SYSCALL_ARG2(regs), MT_SYSCALL_ARG3(regs),
			   want, &flags, &off);
	if (got > MT_DNS_CAPTURE_MAX)
		got = MT_DNS_CAPTURE_MAX;

	data_event_fill(sc, MT_EV_DNS, sk, pid_tgid, (__s32)MT_SYSCALL_ARG1(regs), m->ret, got, dir,
			flags, 0);
	read_tuple_btf(sk, &sc->ev.tuple);
	ring = cpu_ring();
	sent = ring ? data_event_submit(ring, sc, got, bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA))
		    : -1;
	if (sent < 0)
		count(&drops, MT_DROP_RINGBUF_FULL, 1);
	else if (sent > 0)
		count(&ext_stats, MT_XSTAT_DNS_EVENTS, 1);
	return 0;
}

static __always_inline void emit_proc(__u32 pid, __u8 op)
{
	struct mt_proc_event *ev;

	ev = reserve_event(sizeof(*ev), MT_EV_PROC, bpf_ktime_get_ns(), 0);
	if (!ev)
		return;
	ev->pid = pid;
	ev->op = op;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, wake_flags(sizeof(*ev)));
	count(&ext_stats, MT_XSTAT_PROC_EVENTS, 1);
}

/*
 * A process is gone when its last thread exits: the agent drops what it
 * cached about it. The raw tracepoint's arguments are (struct task_struct *p,
 * bool group_dead) since Linux 6.16 (the commit that added group_dead to the
 * trace event too, whose field is probed here); before, (p) alone, and the
 * thread-group leader's exit stands in for it.
 */
SEC("tp_btf/sched_process_exit")
int sched_process_exit(__u64 *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task;
	bool dead;

	if (is_agent(pid_tgid >> 32) || !current_in_scope())
		return 0;
	/* volatile: the load must stay behind the test, the verifier refuses ctx[1] without it */
	if (bpf_core_field_exists(struct trace_event_raw_sched_process_exit, group_dead))
		dead = *(volatile __u64 *)&ctx[1] != 0;
	else
		dead = (__u32)pid_tgid == (__u32)(pid_tgid >> 32);
	if (!dead)
		return 0;
	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD)
		return 0;
	emit_proc(pid_tgid >> 32, MT_PROC_EXIT);
	return 0;
}

/*
 * kernfs_node::parent was renamed __parent in Linux 6.15 ("kernfs: Rename
 * kernfs_node::parent to kernfs_node::__parent"): both flavours, whichever
 * the running kernel has.
 */
struct kernfs_node___new {
	struct kernfs_node *__parent;
} __attribute__((preserve_access_index));

struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(struct kernfs_node___new, __parent))
		return BPF_CORE_READ((struct kernfs_node___new *)kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/*
 * The names of the task's cgroup and its parents, leaf first. The default
 * hierarchy's cgroup, unless that is the root (a v1 or hybrid host, where
 * the runtimes place containers in the v1 controllers): then the memory
 * controller's.
 */
static __always_inline void exec_read_cgroup(struct task_struct *task, struct mt_exec_event *ev)
{
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	struct kernfs_node *kn = BPF_CORE_READ(cset, dfl_cgrp, kn);
	int i;

	if (kn && !kn_parent(kn) &&
	    bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct cgroup_subsys_state *css = NULL;

		if (id >= 0 && id < 64)
			bpf_core_read(&css, sizeof(css), &cset->subsys[id]);
		if (css)
			kn = BPF_CORE_READ(css, cgroup, kn);
	}
	for (i = 0; i < MT_EXEC_CGROUP_LEVELS; i++) {
		struct kernfs_node *parent;

		ev->cgroup[i][0] = '\0';
		if (!kn)
			continue;
		parent = kn_parent(kn);
		if (!parent) { /* the root's name is not part of the path */
			kn = NULL;
			continue;
		}
		if (bpf_probe_read_kernel_str(ev->cgroup[i], sizeof(ev->cgroup[i]),
					      BPF_CORE_READ(kn, name)) < 0)
			ev->cgroup[i][0] = '\0';
		kn = parent;
	}
}

/* True when @s starts with @prefix (@n bytes, a constant: the loop unrolls). */
static __always_inline bool has_prefix(const char *s, const char *prefix, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != prefix[i])
			return false;
	return true;
}

/* Literals, not static const arrays: those would share .rodata's BTF with the tunables. */
#define MT_ENV_SVC   "OTEL_SERVICE_NAME="
#define MT_ENV_ATTRS "OTEL_RESOURCE_ATTRIBUTES="

/* One environment entry (bpf_loop callback): looks at it and moves past it. 1 stops the loop. */
static long exec_env_entry(__u64 index, void *ctx)
{
	struct exec_scratch *sc;
	__u32 zero = 0;
	long n;

	sc = bpf_map_lookup_elem(&exec_scratch_map, &zero);
	if (!sc)
		return 1;
	if (sc->p >= sc->end) {
		sc->done = 1;
		return 1;
	}
	n = bpf_probe_read_user_str(sc->entry, sizeof(sc->entry), (void *)sc->p);
	if (n <= 0) {
		sc->flags |= MT_EXEC_F_ENV_FAULT;
		sc->done = 1;
		return 1;
	}
	/* A piece of an entry longer than the read is not the start of one. */
	if (!sc->cont && n > 5 && has_prefix(sc->entry, "OTEL_", 5)) {
		if (has_prefix(sc->entry, MT_ENV_SVC, sizeof(MT_ENV_SVC) - 1)) {
			if (bpf_probe_read_user_str(sc->otel_service_name,
						    sizeof(sc->otel_service_name),
						    (void *)(sc->p + sizeof(MT_ENV_SVC) - 1)) ==
			    sizeof(sc->otel_service_name))
				sc->flags |= MT_EXEC_F_SVC_TRUNC;
			sc->done = 1; /* it wins over anything further on */
			return 1;
		}
		if (!sc->otel_resource_attributes[0] &&
		    has_prefix(sc->entry, MT_ENV_ATTRS, sizeof(MT_ENV_ATTRS) - 1) &&
		    bpf_probe_read_user_str(sc->otel_resource_attributes,
					    sizeof(sc->otel_resource_attributes),
					    (void *)(sc->p + sizeof(MT_ENV_ATTRS) - 1)) ==
			    sizeof(sc->otel_resource_attributes))
			sc->flags |= MT_EXEC_F_ATTRS_TRUNC;
	}
	sc->cont = n == sizeof(sc->entry);
	sc->p += sc->cont ? n - 1 : n;
	return 0;
}

/*
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES from the new environment,
 * which exec has just written to the top of the new stack (present, so a
 * non-sleeping read works). One bounded string read per entry, at most
 * MT_EXEC_ENV_ENTRIES_MAX of them (bpf_loop: the callback is verified once);
 * stops at OTEL_SERVICE_NAME, which wins.
 */
static __always_inline void exec_read_env(struct task_struct *task, struct mt_exec_event *ev)
{
	struct exec_scratch *sc;
	__u32 zero = 0;

	sc = bpf_map_lookup_elem(&exec_scratch_map, &zero);
	if (!sc)
		return;
	sc->p = BPF_CORE_READ(task, mm, env_start);
	sc->end = BPF_CORE_READ(task, mm, env_end);
	sc->flags = 0;
	sc->cont = 0;
	sc->done = 0;
	sc->otel_service_name[0] = '\0';
	sc->otel_resource_attributes[0] = '\0';
	bpf_loop(MT_EXEC_ENV_ENTRIES_MAX, exec_env_entry, NULL, 0);
	if (!sc->done)
		sc->flags |= MT_EXEC_F_ENV_TRUNC;
	ev->flags = sc->flags;
	__builtin_memcpy(ev->otel_service_name, sc->otel_service_name,
			 sizeof(ev->otel_service_name));
	__builtin_memcpy(ev->otel_resource_attributes, sc->otel_resource_attributes,
			 sizeof(ev->otel_resource_attributes));
}

/*
 * A new program in a process: what names it (environment, cgroup,
 * executable) is read now, while the process surely exists, and sent with
 * the event. A full ring buffer drops the event, counted; user space then
 * reads /proc at the first span, as for processes older than the agent.
 * @read_env is false on kernels without bpf_loop (before 5.17): the event
 * then says the environment was not read (MT_EXEC_F_ENV_TRUNC, not counted)
 * and user space reads it from /proc.
 */
static __always_inline int on_exec(struct linux_binprm *bprm, bool read_env)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct mt_exec_event *ev;

	__sync_fetch_and_add(&exec_gen, 1); /* every exec: names kept by the data path go stale */
	if (is_agent(pid_tgid >> 32) || !current_in_scope())
		return 0;
	ev = reserve_event(sizeof(*ev), MT_EV_PROC, bpf_ktime_get_ns(), 0);
	if (!ev)
		return 0;
	task = bpf_get_current_task_btf();
	ev->proc.pid = pid_tgid >> 32;
	ev->proc.op = MT_PROC_EXEC;
	__builtin_memset(ev->proc._pad, 0, sizeof(ev->proc._pad));
	bpf_get_current_comm(ev->proc.comm, sizeof(ev->proc.comm));
	ev->flags = 0;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	ev->otel_service_name[0] = '\0';
	ev->otel_resource_attributes[0] = '\0';
	if (bpf_probe_read_kernel_str(ev->exe, sizeof(ev->exe),
				      BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name)) < 0)
		ev->exe[0] = '\0';
	if (read_env) {
		exec_read_env(task, ev);
		if (ev->flags & MT_EXEC_F_ENV_TRUNC)
			count(&ext_stats, MT_XSTAT_EXEC_ENV_TRUNC, 1);
		if (ev->flags & MT_EXEC_F_ENV_FAULT)
			count(&ext_stats, MT_XSTAT_EXEC_ENV_FAULT, 1);
	} else {
		ev->flags = MT_EXEC_F_ENV_TRUNC;
	}
	exec_read_cgroup(task, ev);
	bpf_ringbuf_submit(ev, wake_flags(sizeof(*ev)));
	count(&ext_stats, MT_XSTAT_PROC_EVENTS, 1);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(bprm, true);
}

/* The same without bpf_loop, loaded instead of the above on kernels before 5.17. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_noloop, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	return on_exec(bprm, false);
}

#endif /* MESHTRACE_BPF_DNSPROC_BPF_H */
