/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The data path: every TCP send and receive, with the first bytes of its payload, as one
 * MT_EV_DATA event. Two ways in, chosen by user space at load time (bpf_program__set_autoload):
 *  - "sock" (default, Linux >= 6.3): sock:sock_send_length / sock:sock_recv_length, BTF-typed
 *    raw tracepoints that fire only for socket I/O; the syscall's buffer is reached through the
 *    user registers (bpf_task_pt_regs). No syscall tracepoint is attached, so processes doing
 *    other I/O stay on the syscall fast path, and no tracefs is needed.
 *  - "syscalls" (fallback): sys_enter/sys_exit of the data syscalls, the fd resolved to its
 *    socket through the task's file table. Classic tracepoints: these need tracefs.
 */
#ifndef MESHTRACE_BPF_DATAPATH_BPF_H
#define MESHTRACE_BPF_DATAPATH_BPF_H

/*
 * The socket's skip hint for @dir against the @bytes at @seq (struct mt_skip): -1 when they
 * all lie inside it, short of its last byte (no event: the parser will not read them, and
 * the call that reaches the hint's end will carry the time the skipped message ended);
 * else how many of them precede the hint's end, where the parser reads again (0: none).
 */
static __always_inline long skip_hint_at(struct sock *sk, __u8 dir, __u32 seq, __u32 bytes)
{
	__u64 key = (__u64)sk;
	struct mt_skip *s = bpf_map_lookup_elem(&skip_socks, &key);
	__u32 off, span;

	if (!s)
		return 0;
	dir &= 1;
	off = seq - s->start[dir];
	span = s->end[dir] - s->start[dir];
	if (off >= span)
		return 0;
	return bytes < span - off ? -1 : (long)(span - off);
}

/*
 * Builds and submits one data event. @nr/@arg/@cnt describe where the
 * syscall's buffer is; an unknown @nr (sendfile, splice, io_uring) yields a
 * count-only event.
 */
static __always_inline void emit_data(struct sock *sk, __u8 dir, __u32 bytes, long nr, __s32 fd,
				      __u64 arg, __u64 cnt, __u64 pid_tgid, bool btf_sk)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch_map, &zero);
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 want = clamp_capture(bytes);
	__u32 data_off = 0;
	__u8 flags = 0;
	int got, sent;
	__u64 avail = 0;
	void *ring;
	__u32 seq;

	if (!sc)
		return;
	if (btf_sk) {
		struct tcp_sock *t = bpf_skc_to_tcp_sock(sk);

		seq = t ? (dir == MT_DIR_EGRESS ? t->write_seq : t->copied_seq) - bytes : 0;
	} else if (dir == MT_DIR_EGRESS) {
		seq = BPF_CORE_READ(tp, write_seq) - bytes;
	} else {
		seq = BPF_CORE_READ(tp, copied_seq) - bytes;
	}
	/*
	 * Ciphertext inside an SSL_* call or a Go Write/Read whose plaintext is reported
	 * (tls.bpf.h, tls_go.bpf.h): count only. A
	 * write's plaintext leaves here, ahead of this event, through the same scratch buffer.
	 */
	if (tls_note_sock(pid_tgid, sk, seq, dir) || tls_go_note_sock(pid_tgid, sk, dir, seq)) {
		want = 0;
		flags |= MT_DATA_F_TLS_WIRE;
	} else if (skip_used) {
		long at = skip_hint_at(sk, dir, seq, bytes);

		if (at < 0) {
			count(&stats, MT_STAT_SKIPPED_CALLS, 1);
			count(&stats, MT_STAT_SKIPPED_BYTES, bytes);
			return;
		}
		data_off = (__u32)at;
		want = clamp_capture(bytes - data_off);
	}
	/* Shed before copying anything when user space is far behind: the copy would be wasted. */
	ring = data_ring(&avail);
	if (!ring) {
		lost_event(sk);
		return;
	}
	/* The tuple first: the agent's own traffic and muted sockets are known before any copy. */
	if (btf_sk)
		read_tuple_btf(sk, &sc->ev.tuple);
	else
		read_tuple(sk, &sc->ev.tuple);
	if (is_agent_peer(&sc->ev.tuple)) {
		count(&stats, MT_STAT_SELF_FILTERED, 1);
		return;
	}
	if (muted_used) {
		__u64 key = (__u64)sk;
		struct mt_tuple *muted = bpf_map_lookup_elem(&muted_socks, &key);

		if (muted && tuple_equal(muted, &sc->ev.tuple)) {
			want = 0;
			flags |= MT_DATA_F_MUTED;
		} else if (muted) {
			/* The socket was reused for another connection: not the one muted. */
			bpf_map_delete_elem(&muted_socks, &key);
			count(&stats, MT_STAT_MUTES_STALE, 1);
		}
	}

	got = copy_payload(sc, nr, arg, cnt, want, &flags, &data_off);
	if (flags & MT_DATA_F_NO_BUF)
		fd = -1;
	if (got > MT_CAPTURE_MAX)
		got = MT_CAPTURE_MAX;

	data_event_fill(sc, MT_EV_DATA, sk, pid_tgid, fd, bytes, got, dir, flags, seq);
	sc->ev.data_off = data_off;
	if (lost_socks_used) {
		__u64 key = (__u64)sk;

		if (bpf_map_lookup_elem(&lost_socks, &key)) {
			sc->ev.flags |= MT_DATA_F_LOST_BEFORE;
			bpf_map_delete_elem(&lost_socks, &key);
		}
	}

	sent = data_event_submit(ring, sc, got, avail);
	if (sent < 0) {
		lost_event(sk);
		return;
	}
	if (sent == 0)
		return;
	count(&stats, MT_STAT_DATA_EVENTS, 1);
	count(&stats, MT_STAT_BYTES_CAPTURED, got);
}

/* ---- "sock": sock:sock_send_length / sock:sock_recv_length ---- */

static __always_inline int on_sock_msg(struct sock *sk, int ret, int flags, __u8 dir)
{
	struct msg_args m = {
		.sk = sk,
		.ret = ret,
		.flags = flags,
		.family = sk->__sk_common.skc_family,
		.protocol = sk->sk_protocol,
	};
	struct task_struct *task;
	struct pt_regs *regs;
	__u64 pid_tgid;

	if (m.protocol != IPPROTO_TCP)
		return on_udp_msg(&m, dir);
	if (!msg_moved_bytes(&m, dir))
		return 0;
	task = traced_task(&pid_tgid);
	if (!task)
		return 0;

	if (propagate && dir == MT_DIR_INGRESS) {
		struct tcp_sock *t = bpf_skc_to_tcp_sock(sk);

		if (t) /* before the data event: user space needs the context first */
			xnode_on_recv(sk, t->copied_seq - ret, pid_tgid);
	}
	/* The syscall's own arguments, from the user registers: plain loads (BTF pointer). */
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	emit_data(sk, dir, ret, MT_SYSCALL_NR(regs), (__s32)MT_SYSCALL_ARG1(regs),
		  MT_SYSCALL_ARG2(regs), MT_SYSCALL_ARG3(regs), pid_tgid, true);
	return 0;
}

/*
 * tp_btf: a BTF-typed raw tracepoint. Cheaper to run than a classic
 * tracepoint (no trace record is formatted) and its struct sock argument
 * can be read with plain loads. Needs no trampoline, so it works where
 * fentry is refused, and no tracefs.
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	return on_sock_msg(sk, ret, flags, MT_DIR_EGRESS);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	return on_sock_msg(sk, ret, flags, MT_DIR_INGRESS);
}

/* ---- "syscalls": fallback for kernels without the sock tracepoints ---- */

/* Keeps a data syscall's arguments until its exit, by thread. */
static __always_inline int inflight_put(__s32 fd, __u64 buf, __u64 cnt, __u32 nr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct inflight_args a = {};

	if (is_agent(pid_tgid >> 32))
		return 0;
	a.fd = fd;
	a.buf = buf;
	a.cnt = cnt;
	a.nr = nr;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY) < 0)
		count(&drops, MT_DROP_INFLIGHT_FULL, 1);
	return 0;
}

/*
 * At the syscall's exit: its arguments, taken out of the table, into @a. False when none were
 * kept (the agent, a full table) or the call moved no bytes (@ret <= 0).
 */
static __always_inline bool inflight_take(__u64 pid_tgid, long ret, struct inflight_args *a)
{
	__u32 tid = (__u32)pid_tgid;
	struct inflight_args *kept = bpf_map_lookup_elem(&inflight, &tid);

	if (!kept)
		return false;
	*a = *kept;
	bpf_map_delete_elem(&inflight, &tid);
	return ret > 0;
}

/* The TCP socket behind @fd of the current task, or NULL. */
static __always_inline struct sock *fd_to_tcp_sock(__s32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds;
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	umode_t mode;

	if (fd < 0)
		return NULL;
	if ((unsigned int)fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) < 0 || !file)
		return NULL;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	return sk;
}

/*
 * At a data syscall's exit: the event, when its fd is a TCP socket. @splice: the fd kept is
 * the end it writes to (egress), and the one it reads from, in cnt, is tried next (ingress).
 */
static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx, __u8 dir, bool splice)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct inflight_args a;
	struct sock *sk;

	if (!inflight_take(pid_tgid, ctx->ret, &a))
		return 0;
	sk = fd_to_tcp_sock(a.fd);
	if (!sk && splice) {
		a.fd = (__s32)a.cnt;
		dir = MT_DIR_INGRESS;
		sk = fd_to_tcp_sock(a.fd);
	}
	if (!sk)
		return 0;
	emit_data(sk, dir, (__u32)ctx->ret, a.nr, a.fd, a.buf, a.cnt, pid_tgid, false);
	return 0;
}

/* (fd, buf, count or iovcnt): the first three arguments of every data syscall below. */
#define SYSCALL_PAIR(name, nr, dir)                                                       \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                       \
	int sys_enter_##name(struct trace_event_raw_sys_enter *ctx)                       \
	{                                                                                 \
		return inflight_put((__s32)ctx->args[0], ctx->args[1], ctx->args[2], nr); \
	}                                                                                 \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                        \
	int sys_exit_##name(struct trace_event_raw_sys_exit *ctx)                         \
	{                                                                                 \
		return sys_exit(ctx, dir, false);                                         \
	}

SYSCALL_PAIR(read, MT_NR_read, MT_DIR_INGRESS)
SYSCALL_PAIR(write, MT_NR_write, MT_DIR_EGRESS)
SYSCALL_PAIR(readv, MT_NR_readv, MT_DIR_INGRESS)
SYSCALL_PAIR(writev, MT_NR_writev, MT_DIR_EGRESS)
SYSCALL_PAIR(sendto, MT_NR_sendto, MT_DIR_EGRESS)
SYSCALL_PAIR(recvfrom, MT_NR_recvfrom, MT_DIR_INGRESS)
SYSCALL_PAIR(sendmsg, MT_NR_sendmsg, MT_DIR_EGRESS)
SYSCALL_PAIR(recvmsg, MT_NR_recvmsg, MT_DIR_INGRESS)
/* Count-only: the payload never passes through user memory, but the parsers must skip it. */
SYSCALL_PAIR(sendfile64, MT_NR_sendfile, MT_DIR_EGRESS)

/* splice(fd_in, off_in, fd_out, off_out, len, flags): either end may be the socket. */
SEC("tracepoint/syscalls/sys_enter_splice")
int sys_enter_splice(struct trace_event_raw_sys_enter *ctx)
{
	return inflight_put((__s32)ctx->args[2] /* out */, 0, ctx->args[0] /* in */, MT_NR_splice);
}

SEC("tracepoint/syscalls/sys_exit_splice")
int sys_exit_splice(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx, MT_DIR_EGRESS, true);
}

#endif /* MESHTRACE_BPF_DATAPATH_BPF_H */
