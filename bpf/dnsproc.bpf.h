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
	__u32 zero = 0, want;
	__u64 pid_tgid;
	__u16 lport, rport;
	__u8 flags = 0;
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
			   want, &flags);
	if (got > MT_DNS_CAPTURE_MAX)
		got = MT_DNS_CAPTURE_MAX;

	data_event_fill(sc, MT_EV_DNS, sk, pid_tgid, (__s32)MT_SYSCALL_ARG1(regs), m->ret, got, dir,
			flags, 0);
	read_tuple_btf(sk, &sc->ev.tuple);
	sent = data_event_submit(sc, got, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA));
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

	if (is_agent(pid_tgid >> 32))
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

/* A new program in a process: its identity (environment, executable) is read again. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (is_agent(pid_tgid >> 32))
		return 0;
	emit_proc(pid_tgid >> 32, MT_PROC_EXEC);
	return 0;
}

#endif /* MESHTRACE_BPF_DNSPROC_BPF_H */
