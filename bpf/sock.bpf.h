/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a data event is made of: the socket's addresses, the first bytes of the syscall's
 * buffer (a plain buffer, an iovec array or a msghdr), and the event itself, built in a
 * per-CPU scratch and copied to the ring buffer. Shared by the TCP data path and DNS.
 */
#ifndef MESHTRACE_BPF_SOCK_BPF_H
#define MESHTRACE_BPF_SOCK_BPF_H

/* Kernel constants that are macros, hence not in vmlinux.h. */
#define AF_INET	    2
#define AF_INET6    10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define MSG_PEEK    2
#define PF_KTHREAD  0x00200000
#define S_IFMT	    00170000
#define S_IFSOCK    0140000

/* Keeps clang from checking a bound on one register and using another. */
#define bound_var(v) asm volatile("" : "+r"(v))

/* The arguments of sock:sock_{send,recv}_length: one TCP or UDP send or receive. */
struct msg_args {
	struct sock *sk;
	int ret;
	int flags;
	__u16 family;
	__u16 protocol;
};

/* A send or receive worth a look: it moved bytes, on an IP socket, and is not a MSG_PEEK. */
static __always_inline bool msg_moved_bytes(const struct msg_args *m, __u8 dir)
{
	if (m->ret <= 0)
		return false;
	if (m->family != AF_INET && m->family != AF_INET6)
		return false;
	return !(dir == MT_DIR_INGRESS && (m->flags & MSG_PEEK));
}

/*
 * The current task, with its pid_tgid in @pid_tgid; NULL when it is the agent, a kernel
 * thread or outside the scope (--cgroup): none is traced.
 */
static __always_inline struct task_struct *traced_task(__u64 *pid_tgid)
{
	struct task_struct *task;

	*pid_tgid = bpf_get_current_pid_tgid();
	if (is_agent(*pid_tgid >> 32))
		return NULL;
	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD)
		return NULL;
	if (!current_in_scope()) /* --cgroup: outside the agent's subtree */
		return NULL;
	return task;
}

/* IPv4 addresses, stored v4-mapped (::ffff:a.b.c.d). */
static __always_inline void tuple_set_v4(struct mt_tuple *t, __u32 l, __u32 r)
{
	__builtin_memset(t->laddr, 0, 10);
	__builtin_memset(t->raddr, 0, 10);
	t->laddr[10] = t->laddr[11] = 0xff;
	t->raddr[10] = t->raddr[11] = 0xff;
	__builtin_memcpy(&t->laddr[12], &l, 4);
	__builtin_memcpy(&t->raddr[12], &r, 4);
}

/* Addresses from the socket itself, through a pointer read from memory (fallback mode). */
static __always_inline void read_tuple(struct sock *sk, struct mt_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	t->family = family;
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->_pad = 0;
	if (family == AF_INET) {
		tuple_set_v4(t, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr),
			     BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/*
 * The same, through a BTF pointer the verifier trusts (tp_btf arguments):
 * plain loads instead of a bpf_probe_read_kernel() call per field.
 */
static __always_inline void read_tuple_btf(const struct sock *sk, struct mt_tuple *t)
{
	const struct sock_common *c = &sk->__sk_common;
	__u16 family = c->skc_family;

	t->family = family;
	t->lport = c->skc_num;
	t->rport = bpf_ntohs(c->skc_dport);
	t->_pad = 0;
	if (family == AF_INET) {
		tuple_set_v4(t, c->skc_rcv_saddr, c->skc_daddr);
	} else {
		__u64 *l = (__u64 *)t->laddr, *r = (__u64 *)t->raddr;

		l[0] = ((__u64 *)c->skc_v6_rcv_saddr.in6_u.u6_addr8)[0];
		l[1] = ((__u64 *)c->skc_v6_rcv_saddr.in6_u.u6_addr8)[1];
		r[0] = ((__u64 *)c->skc_v6_daddr.in6_u.u6_addr8)[0];
		r[1] = ((__u64 *)c->skc_v6_daddr.in6_u.u6_addr8)[1];
	}
}

static __always_inline __u32 clamp_capture(__u64 want)
{
	__u32 cap = capture_bytes;

	if (cap > MT_CAPTURE_MAX)
		cap = MT_CAPTURE_MAX;
	return want < cap ? (__u32)want : cap;
}

/* Copies up to @want bytes from a single user buffer. Returns bytes copied or -1. */
static __always_inline int copy_buf(struct scratch *sc, const void *ubuf, __u32 want32)
{
	__u64 want = want32 & (2 * MT_CAPTURE_MAX - 1);

	if (want > MT_CAPTURE_MAX)
		want = MT_CAPTURE_MAX;
	bound_var(want);
	if (bpf_probe_read_user(sc->data, want, ubuf) < 0)
		return -1;
	return (int)want;
}

/* Copies up to @want bytes gathered from an iovec array. Returns bytes copied or -1. */
static __always_inline int copy_iov(struct scratch *sc, const struct iovec *iov, __u64 iovcnt,
				    __u32 want, __u8 *flags)
{
	__u64 off = 0;
	int i;

	for (i = 0; i < MT_IOV_MAX; i++) {
		struct iovec iv;
		__u64 n;

		if ((__u64)i >= iovcnt || off >= want)
			break;
		if (bpf_probe_read_user(&iv, sizeof(iv), &iov[i]) < 0)
			return -1;
		n = want - off;
		if (iv.iov_len < n)
			n = iv.iov_len;
		/* 64-bit all the way: a u32 here lets clang bound one half of a register. */
		n &= 2 * MT_CAPTURE_MAX - 1;
		if (n > MT_CAPTURE_MAX)
			n = MT_CAPTURE_MAX;
		bound_var(n);
		off &= MT_CAPTURE_MAX - 1;
		if (n && bpf_probe_read_user(&sc->data[off], n, iv.iov_base) < 0)
			return -1;
		off += n;
	}
	if (off < want && i == MT_IOV_MAX)
		*flags |= MT_DATA_F_IOV_TRUNC;
	return (int)off;
}

static __always_inline int copy_msghdr(struct scratch *sc, const struct user_msghdr *umsg,
				       __u32 want, __u8 *flags)
{
	struct user_msghdr m;

	if (bpf_probe_read_user(&m, sizeof(m), umsg) < 0)
		return -1;
	return copy_iov(sc, m.msg_iov, m.msg_iovlen, want, flags);
}

/*
 * Copies up to @want bytes of syscall @nr's payload into the scratch: @arg is its buffer,
 * iovec array or msghdr, @cnt the iovec count; a plain buffer from @off bytes in (@off
 * becomes 0 where it was not applied). Returns the bytes copied; 0 with
 * MT_DATA_F_NO_BUF in @flags for a call without a user buffer (sendfile, splice, sendmmsg,
 * io_uring), 0 with MT_DATA_F_READ_FAULT (and counted) when the buffer could not be read.
 */
static __always_inline int copy_payload(struct scratch *sc, long nr, __u64 arg, __u64 cnt,
					__u32 want, __u8 *flags, __u32 *off)
{
	int got;

	switch (nr) {
	case MT_NR_read:
	case MT_NR_write:
	case MT_NR_sendto:
	case MT_NR_recvfrom:
		got = copy_buf(sc, (const void *)(arg + *off), want);
		break;
	case MT_NR_readv:
	case MT_NR_writev:
		got = copy_iov(sc, (const struct iovec *)arg, cnt, want, flags);
		break;
	case MT_NR_sendmsg:
	case MT_NR_recvmsg:
		got = copy_msghdr(sc, (const struct user_msghdr *)arg, want, flags);
		break;
	default:
		*flags |= MT_DATA_F_NO_BUF;
		*off = 0;
		return 0;
	}
	if (nr != MT_NR_read && nr != MT_NR_write && nr != MT_NR_sendto && nr != MT_NR_recvfrom)
		*off = 0; /* an iovec array is captured from its start */
	if (got < 0) {
		count(&drops, MT_DROP_READ_FAULT, 1);
		*flags |= MT_DATA_F_READ_FAULT;
		got = 0;
	}
	return got;
}

/* Fills the data event in the scratch, all but its tuple, for the current thread. */
static __always_inline void data_event_fill(struct scratch *sc, __u8 kind, const struct sock *sk,
					    __u64 pid_tgid, __s32 fd, __u32 bytes, int got,
					    __u8 dir, __u8 flags, __u64 seq)
{
	sc->ev.head.kind = kind;
	sc->ev.head.ts_ns = bpf_ktime_get_ns();
	sc->ev.head.sock = (__u64)sk;
	sc->ev.pid = pid_tgid >> 32;
	sc->ev.tid = (__u32)pid_tgid;
	sc->ev.fd = fd;
	sc->ev.bytes = bytes;
	sc->ev.captured = got;
	sc->ev.dir = dir;
	sc->ev.flags = flags;
	sc->ev.data_off = 0;
	sc->ev.seq = seq;
	/*
	 * The thread's name (~5 % of the data programs' time, read for every event): kept from
	 * this CPU's last event when that was the same thread with no exec since. A rename
	 * without exec (prctl PR_SET_NAME) shows once the CPU has run another thread's event.
	 */
	if (sc->comm_tid != (__u32)pid_tgid || sc->comm_gen != exec_gen) {
		sc->comm_gen = exec_gen;
		bpf_get_current_comm(sc->ev.comm, sizeof(sc->ev.comm));
		sc->comm_tid = (__u32)pid_tgid;
	}
}

/*
 * Copies the scratch's event and its @got payload bytes to @ring (this CPU's); @avail is the
 * data waiting there (for the wake-up). Returns 1 when sent, -1 when the ring buffer is full,
 * 0 when @got is out of bounds (never: the callers clamp it; the verifier needs the check).
 */
static __always_inline int data_event_submit(void *ring, struct scratch *sc, int got, __u64 avail)
{
	__u32 size = sizeof(struct mt_data_event) + (__u32)got;

	if (size > sizeof(*sc))
		return 0;
	bound_var(size);
	if (bpf_ringbuf_output(ring, sc, size, wake_flags_at(avail, size)) < 0)
		return -1;
	return 1;
}

#endif /* MESHTRACE_BPF_SOCK_BPF_H */
