// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * meshtrace capture: every TCP send/recv on the node, with the first bytes of
 * its payload, and the TCP state changes that open and close connections.
 *
 * Two data paths, chosen by user space at load time (bpf_program__set_autoload):
 *  - "sock" (default, Linux >= 6.3): sock:sock_send_length / sock:sock_recv_length
 *    fire only for socket I/O; the syscall's buffer is reached through the
 *    user registers (bpf_task_pt_regs). No syscall tracepoint is attached, so
 *    processes doing other I/O stay on the syscall fast path.
 *  - "syscalls" (fallback): sys_enter/sys_exit of the data syscalls, the fd
 *    resolved to its socket through the task's file table.
 * Connection lifecycle comes from sock:inet_sock_set_state in both modes.
 * Nothing here needs kprobes or fentry.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "bpf/capture.h"

#define AF_INET	    2
#define AF_INET6    10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define MSG_PEEK    2
#define PF_KTHREAD  0x00200000
#define S_IFMT	    00170000
#define S_IFSOCK    0140000

/* x86_64 syscall numbers of the calls whose buffer we know how to find. */
#define NR_read	    0
#define NR_write    1
#define NR_readv    19
#define NR_writev   20
#define NR_sendto   44
#define NR_recvfrom 45
#define NR_sendmsg  46
#define NR_recvmsg  47
#define NR_sendfile 40
#define NR_splice   275

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Keeps clang from checking a bound on one register and using another. */
#define bound_var(v) asm volatile("" : "+r"(v))

/* Set by user space before load. */
const volatile __u32 agent_tgid = 0;
const volatile __u32 capture_bytes = MT_CAPTURE_DEFAULT;
const volatile __u64 wakeup_bytes = MT_WAKEUP_BYTES_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MT_RINGBUF_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Event under construction: header, then room for a capture at any iovec offset. */
struct scratch {
	struct mt_data_event ev;
	__u8 data[2 * MT_CAPTURE_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* SYN_SENT time of active opens, for connect latency. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_CONNECTING_MAX);
	__type(key, __u64);
	__type(value, __u64);
} connecting SEC(".maps");

/*
 * The agent's own connections. The agent's side is never traced (agent_tgid),
 * but the far end of its export connection may be a collector on this node,
 * whose server spans would be exported, observed and exported again without
 * end. So the endpoints of the agent's connections are remembered, and a
 * socket whose peer is one of them is not traced either.
 */
struct endpoint {
	__u8 addr[16];
	__u16 port;
	__u16 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_AGENT_SOCKS_MAX);
	__type(key, __u64);		/* struct sock of the agent */
	__type(value, struct endpoint); /* its local endpoint, once connected */
} agent_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_AGENT_SOCKS_MAX);
	__type(key, struct endpoint);
	__type(value, __u8);
} agent_endpoints SEC(".maps");

/*
 * Sockets that lost a data event to a full ring buffer. The next event of
 * the socket carries MT_DATA_F_LOST_BEFORE, so its parser starts over at a
 * message boundary instead of misreading the stream.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_LOST_SOCKS_MAX);
	__type(key, __u64);
	__type(value, __u8);
} lost_socks SEC(".maps");

/*
 * Sockets user space gave up parsing (no known protocol): their payload is
 * not copied any more, each call becomes a count-only event. Written by user
 * space, removed here when the socket closes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_MUTED_SOCKS_MAX);
	__type(key, __u64);
	__type(value, __u8);
} muted_socks SEC(".maps");

/* Set by user space when it first mutes a socket: skips the lookup until then. */
volatile __u64 muted_used = 0;

/* Entries ever put in lost_socks: skips the lookup while nothing was ever lost. */
volatile __u64 lost_socks_used = 0;

/* Live entries in agent_endpoints: skips the lookup when the agent has none. */
volatile __u64 agent_endpoint_count = 0;

/* Fallback mode: a data syscall's arguments between enter and exit, by thread. */
struct syscall_args {
	__u64 buf; /* buffer, iovec array or msghdr, by nr */
	__u64 cnt; /* iovcnt for readv/writev */
	__s32 fd;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_INFLIGHT_MAX);
	__type(key, __u32);
	__type(value, struct syscall_args);
} inflight SEC(".maps");

static __always_inline void count(void *map, __u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		*v += n;
}

/*
 * Lazy wake-up: the consumer polls on a timer, and is woken early only when
 * the waiting data crosses the threshold with this event. A wake-up per
 * event costs ~2 us and halves throughput; waking on every event above the
 * threshold (while the consumer is already running) costs nearly as much.
 */
static __always_inline __u64 wake_flags_at(__u64 avail, __u32 size)
{
	if (avail < wakeup_bytes && avail + size >= wakeup_bytes) {
		count(&stats, MT_STAT_WAKEUPS, 1);
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 wake_flags(__u32 size)
{
	return wake_flags_at(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), size);
}

/*
 * A data event of @sk was not delivered: count it, and have the socket's next
 * event say so (one map write per socket, not per lost event).
 */
static __always_inline void lost_event(struct sock *sk)
{
	__u64 key = (__u64)sk;
	__u8 one = 1;

	count(&drops, MT_DROP_RINGBUF_FULL, 1);
	if (bpf_map_lookup_elem(&lost_socks, &key))
		return;
	if (bpf_map_update_elem(&lost_socks, &key, &one, BPF_ANY) == 0)
		lost_socks_used = 1;
}

static __always_inline bool is_agent(__u32 tgid)
{
	return tgid == agent_tgid;
}

/* Addresses from the socket itself, IPv4 stored v4-mapped. */
static __always_inline void read_tuple(struct sock *sk, struct mt_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	t->family = family;
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->_pad = 0;
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memset(t->laddr, 0, 10);
		__builtin_memset(t->raddr, 0, 10);
		t->laddr[10] = t->laddr[11] = 0xff;
		t->raddr[10] = t->raddr[11] = 0xff;
		__builtin_memcpy(&t->laddr[12], &l, 4);
		__builtin_memcpy(&t->raddr[12], &r, 4);
	} else {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/*
 * The same, through a BTF pointer the verifier trusts (tp_btf arguments):
 * plain loads instead of a bpf_probe_read_kernel() call per field.
 */
static __always_inline void read_tuple_btf(struct sock *sk, struct mt_tuple *t)
{
	__u16 family = sk->__sk_common.skc_family;

	t->family = family;
	t->lport = sk->__sk_common.skc_num;
	t->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	t->_pad = 0;
	if (family == AF_INET) {
		__u32 l = sk->__sk_common.skc_rcv_saddr;
		__u32 r = sk->__sk_common.skc_daddr;

		__builtin_memset(t->laddr, 0, 10);
		__builtin_memset(t->raddr, 0, 10);
		t->laddr[10] = t->laddr[11] = 0xff;
		t->raddr[10] = t->raddr[11] = 0xff;
		__builtin_memcpy(&t->laddr[12], &l, 4);
		__builtin_memcpy(&t->raddr[12], &r, 4);
	} else {
		__u64 *l = (__u64 *)t->laddr, *r = (__u64 *)t->raddr;

		l[0] = ((__u64 *)sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)[0];
		l[1] = ((__u64 *)sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)[1];
		r[0] = ((__u64 *)sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8)[0];
		r[1] = ((__u64 *)sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8)[1];
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

/* True when the far end of this connection is one of the agent's own sockets. */
static __always_inline bool is_agent_peer(const struct mt_tuple *t)
{
	struct endpoint ep = {};

	__builtin_memcpy(ep.addr, t->raddr, sizeof(ep.addr));
	ep.port = t->rport;
	return bpf_map_lookup_elem(&agent_endpoints, &ep) != NULL;
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
	__u8 flags = 0;
	int got = 0;
	__u64 avail;
	__u32 size;
	__u32 seq;

	if (!sc)
		return;
	/*
	 * Shed before copying anything when user space is this far behind: the
	 * copy would be wasted, and the last MT_RINGBUF_LIFECYCLE_RESERVE bytes
	 * belong to connection and process events.
	 */
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail > MT_RINGBUF_BYTES - MT_RINGBUF_LIFECYCLE_RESERVE) {
		lost_event(sk);
		return;
	}
	if (muted_used) {
		__u64 key = (__u64)sk;

		if (bpf_map_lookup_elem(&muted_socks, &key)) {
			want = 0;
			flags |= MT_DATA_F_MUTED;
		}
	}

	switch (nr) {
	case NR_read:
	case NR_write:
	case NR_sendto:
	case NR_recvfrom:
		got = copy_buf(sc, (const void *)arg, want);
		break;
	case NR_readv:
	case NR_writev:
		got = copy_iov(sc, (const struct iovec *)arg, cnt, want, &flags);
		break;
	case NR_sendmsg:
	case NR_recvmsg:
		got = copy_msghdr(sc, (const struct user_msghdr *)arg, want, &flags);
		break;
	default:
		flags |= MT_DATA_F_NO_BUF;
		fd = -1;
		break;
	}
	if (got < 0) {
		count(&drops, MT_DROP_READ_FAULT, 1);
		flags |= MT_DATA_F_READ_FAULT;
		got = 0;
	}
	if (got > MT_CAPTURE_MAX)
		got = MT_CAPTURE_MAX;

	if (btf_sk) {
		struct tcp_sock *t = bpf_skc_to_tcp_sock(sk);

		seq = t ? (dir == MT_DIR_EGRESS ? t->write_seq : t->copied_seq) - bytes : 0;
	} else if (dir == MT_DIR_EGRESS) {
		seq = BPF_CORE_READ(tp, write_seq) - bytes;
	} else {
		seq = BPF_CORE_READ(tp, copied_seq) - bytes;
	}

	sc->ev.head.kind = MT_EV_DATA;
	sc->ev.head.ts_ns = bpf_ktime_get_ns();
	sc->ev.head.sock = (__u64)sk;
	sc->ev.pid = pid_tgid >> 32;
	sc->ev.tid = (__u32)pid_tgid;
	sc->ev.fd = fd;
	sc->ev.bytes = bytes;
	sc->ev.captured = got;
	sc->ev.dir = dir;
	sc->ev.flags = flags;
	sc->ev._pad = 0;
	sc->ev.seq = seq;
	bpf_get_current_comm(sc->ev.comm, sizeof(sc->ev.comm));
	if (btf_sk)
		read_tuple_btf(sk, &sc->ev.tuple);
	else
		read_tuple(sk, &sc->ev.tuple);
	if (agent_endpoint_count && is_agent_peer(&sc->ev.tuple))
		return;
	if (lost_socks_used) {
		__u64 key = (__u64)sk;

		if (bpf_map_lookup_elem(&lost_socks, &key)) {
			sc->ev.flags |= MT_DATA_F_LOST_BEFORE;
			bpf_map_delete_elem(&lost_socks, &key);
		}
	}

	size = sizeof(struct mt_data_event) + (__u32)got;
	if (size > sizeof(*sc))
		return;
	bound_var(size);
	if (bpf_ringbuf_output(&events, sc, size, wake_flags_at(avail, size)) < 0) {
		lost_event(sk);
		return;
	}
	count(&stats, MT_STAT_DATA_EVENTS, 1);
	count(&stats, MT_STAT_BYTES_CAPTURED, got);
}

/* ---- data path "sock": sock:sock_send_length / sock:sock_recv_length ---- */

/* UDP datagrams to or from port 53 (defined at the end of this file). */
/* The arguments of sock:sock_{send,recv}_length, as both data paths see them. */
struct msg_args {
	struct sock *sk;
	int ret;
	int flags;
	__u16 family;
	__u16 protocol;
};

static __always_inline int on_udp_msg(const struct msg_args *m, __u8 dir);

static __always_inline int on_sock_msg(const struct msg_args *m, __u8 dir)
{
	struct task_struct *task;
	struct pt_regs *regs;
	__u64 pid_tgid;

	if (m->protocol != IPPROTO_TCP)
		return on_udp_msg(m, dir);
	if (m->ret <= 0)
		return 0;
	if (m->family != AF_INET && m->family != AF_INET6)
		return 0;
	if (dir == MT_DIR_INGRESS && (m->flags & MSG_PEEK))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	if (is_agent(pid_tgid >> 32))
		return 0;
	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD)
		return 0;

	/* The syscall's own arguments, from the user registers: plain loads (BTF pointer). */
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	emit_data(m->sk, dir, m->ret, regs->orig_ax, (__s32)regs->di, regs->si, regs->dx, pid_tgid,
		  true);
	return 0;
}

/*
 * tp_btf: a BTF-typed raw tracepoint. Cheaper to run than a classic
 * tracepoint (no trace record is formatted) and its struct sock argument
 * can be read with plain loads. Needs no trampoline, so it works where
 * fentry is refused.
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	struct msg_args m = {
		.sk = sk,
		.ret = ret,
		.flags = flags,
		.family = sk->__sk_common.skc_family,
		.protocol = sk->sk_protocol,
	};

	return on_sock_msg(&m, MT_DIR_EGRESS);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	struct msg_args m = {
		.sk = sk,
		.ret = ret,
		.flags = flags,
		.family = sk->__sk_common.skc_family,
		.protocol = sk->sk_protocol,
	};

	return on_sock_msg(&m, MT_DIR_INGRESS);
}

/* ---- data path "syscalls": fallback for kernels without the sock tracepoints ---- */

static __always_inline int sys_enter(struct trace_event_raw_sys_enter *ctx, __u32 nr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_args a = {};

	if (is_agent(pid_tgid >> 32))
		return 0;
	a.fd = (__s32)ctx->args[0];
	a.buf = ctx->args[1];
	a.cnt = ctx->args[2];
	a.nr = nr;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY) < 0)
		count(&drops, MT_DROP_INFLIGHT_FULL, 1);
	return 0;
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

static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct syscall_args args;
	struct sock *sk;

	if (!a)
		return 0;
	args = *a;
	bpf_map_delete_elem(&inflight, &tid);
	if (ctx->ret <= 0)
		return 0;
	sk = fd_to_tcp_sock(args.fd);
	if (!sk)
		return 0;
	emit_data(sk, dir, (__u32)ctx->ret, args.nr, args.fd, args.buf, args.cnt, pid_tgid, false);
	return 0;
}

#define SYSCALL_PAIR(name, nr, dir)                                 \
	SEC("tracepoint/syscalls/sys_enter_" #name)                 \
	int sys_enter_##name(struct trace_event_raw_sys_enter *ctx) \
	{                                                           \
		return sys_enter(ctx, nr);                          \
	}                                                           \
	SEC("tracepoint/syscalls/sys_exit_" #name)                  \
	int sys_exit_##name(struct trace_event_raw_sys_exit *ctx)   \
	{                                                           \
		return sys_exit(ctx, dir);                          \
	}

SYSCALL_PAIR(read, NR_read, MT_DIR_INGRESS)
SYSCALL_PAIR(write, NR_write, MT_DIR_EGRESS)
SYSCALL_PAIR(readv, NR_readv, MT_DIR_INGRESS)
SYSCALL_PAIR(writev, NR_writev, MT_DIR_EGRESS)
SYSCALL_PAIR(sendto, NR_sendto, MT_DIR_EGRESS)
SYSCALL_PAIR(recvfrom, NR_recvfrom, MT_DIR_INGRESS)
SYSCALL_PAIR(sendmsg, NR_sendmsg, MT_DIR_EGRESS)
SYSCALL_PAIR(recvmsg, NR_recvmsg, MT_DIR_INGRESS)
/* Count-only: the payload never passes through user memory, but the parsers must skip it. */
SYSCALL_PAIR(sendfile64, NR_sendfile, MT_DIR_EGRESS)

/* splice(fd_in, off_in, fd_out, off_out, len, flags): either end may be the socket. */
SEC("tracepoint/syscalls/sys_enter_splice")
int sys_enter_splice(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_args a = {};

	if (is_agent(pid_tgid >> 32))
		return 0;
	a.fd = (__s32)ctx->args[2]; /* out */
	a.cnt = ctx->args[0];	    /* in */
	a.nr = NR_splice;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY) < 0)
		count(&drops, MT_DROP_INFLIGHT_FULL, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_splice")
int sys_exit_splice(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct syscall_args args;
	struct sock *sk;

	if (!a)
		return 0;
	args = *a;
	bpf_map_delete_elem(&inflight, &tid);
	if (ctx->ret <= 0)
		return 0;
	sk = fd_to_tcp_sock(args.fd);
	if (sk) {
		emit_data(sk, MT_DIR_EGRESS, (__u32)ctx->ret, NR_splice, args.fd, 0, 0, pid_tgid,
			  false);
		return 0;
	}
	sk = fd_to_tcp_sock((__s32)args.cnt);
	if (sk)
		emit_data(sk, MT_DIR_INGRESS, (__u32)ctx->ret, NR_splice, (__s32)args.cnt, 0, 0,
			  pid_tgid, false);
	return 0;
}

/* ---- connection lifecycle ---- */

static __always_inline void emit_conn(struct sock *sk, __u8 op, __u32 pid, __s32 err,
				      __u64 duration_ns, __u64 now)
{
	struct mt_conn_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(&drops, MT_DROP_RINGBUF_FULL, 1);
		return;
	}
	ev->head.kind = MT_EV_CONN;
	__builtin_memset(ev->head._pad, 0, sizeof(ev->head._pad));
	ev->head.ts_ns = now;
	ev->head.sock = (__u64)sk;
	ev->pid = pid;
	ev->op = op;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	ev->err = err;
	ev->tid = pid ? (__u32)bpf_get_current_pid_tgid() : 0;
	ev->duration_ns = duration_ns;
	if (pid)
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	else
		__builtin_memset(ev->comm, 0, sizeof(ev->comm));
	read_tuple(sk, &ev->tuple);
	bpf_ringbuf_submit(ev, wake_flags(sizeof(*ev)));
	count(&stats, MT_STAT_CONN_EVENTS, 1);
}

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	__u64 key = (__u64)sk;
	__u64 now, *t0, dur = 0;
	struct endpoint *own;
	int oldstate = ctx->oldstate;
	int newstate = ctx->newstate;
	__u64 pid_tgid;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ctx->family != AF_INET && ctx->family != AF_INET6)
		return 0;
	now = bpf_ktime_get_ns();

	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		pid_tgid = bpf_get_current_pid_tgid();
		if (is_agent(pid_tgid >> 32)) {
			struct endpoint none = {};

			bpf_map_update_elem(&agent_socks, &key, &none, BPF_ANY);
			return 0;
		}
		if (bpf_map_update_elem(&connecting, &key, &now, BPF_ANY) < 0)
			count(&drops, MT_DROP_CONNECTING_FULL, 1);
		emit_conn(sk, MT_CONN_CONNECT, pid_tgid >> 32, 0, 0, now);
		return 0;
	}
	own = bpf_map_lookup_elem(&agent_socks, &key);
	if (own) {
		if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
			struct mt_tuple t;
			__u8 one = 1;

			read_tuple(sk, &t);
			__builtin_memcpy(own->addr, t.laddr, sizeof(own->addr));
			own->port = t.lport;
			if (bpf_map_update_elem(&agent_endpoints, own, &one, BPF_NOEXIST) == 0)
				__sync_fetch_and_add(&agent_endpoint_count, 1);
		} else if (newstate == TCP_CLOSE) {
			if (own->port && bpf_map_delete_elem(&agent_endpoints, own) == 0)
				__sync_fetch_and_add(&agent_endpoint_count, -1);
			bpf_map_delete_elem(&agent_socks, &key);
		}
		return 0;
	}
	if (oldstate == TCP_SYN_SENT) {
		/* Only connections whose start we saw (never the agent's own). */
		t0 = bpf_map_lookup_elem(&connecting, &key);
		if (!t0)
			return 0;
		dur = now - *t0;
		bpf_map_delete_elem(&connecting, &key);
		if (newstate == TCP_ESTABLISHED)
			emit_conn(sk, MT_CONN_ESTABLISHED, 0, 0, dur, now);
		else if (newstate == TCP_CLOSE)
			emit_conn(sk, MT_CONN_FAILED, 0, BPF_CORE_READ(sk, sk_err), dur, now);
		return 0;
	}
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		emit_conn(sk, MT_CONN_ACCEPTED, 0, 0, 0, now);
		return 0;
	}
	if (newstate == TCP_CLOSE && oldstate != TCP_LISTEN && oldstate != TCP_SYN_RECV &&
	    oldstate != TCP_NEW_SYN_RECV) {
		if (muted_used)
			bpf_map_delete_elem(&muted_socks, &key);
		emit_conn(sk, MT_CONN_CLOSED, 0, BPF_CORE_READ(sk, sk_err), 0, now);
	}
	return 0;
}

/* The stable head of tcp:tcp_retransmit_skb across kernel versions. */
struct retransmit_ctx {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
};

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit_skb(struct retransmit_ctx *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	__u16 family;

	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	emit_conn(sk, MT_CONN_RETRANSMIT, 0, 0, 0, bpf_ktime_get_ns());
	return 0;
}

/* ---- appended for the service graph (issue 3) ---- */

#define IPPROTO_UDP 17

/* Counters of the programs below (index = enum mt_ext_stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_XSTAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} ext_stats SEC(".maps");

/*
 * DNS over UDP: a datagram on a socket whose local or remote port is 53 goes
 * out whole (up to MT_DNS_CAPTURE_MAX bytes) as MT_EV_DNS, in the data
 * event's layout, so user space learns address -> name from the answers the
 * node's processes receive. Connected sockets (glibc's resolver connects)
 * and resolvers on port 53 are seen; an unconnected client socket talking to
 * a resolver off the node is not (its peer is only in the msghdr).
 * Sockets of other ports cost two field reads.
 */
static __always_inline int on_udp_msg(const struct msg_args *m, __u8 dir)
{
	struct sock *sk = m->sk;
	struct task_struct *task;
	struct pt_regs *regs;
	struct scratch *sc;
	__u32 zero = 0, want, size;
	__u64 pid_tgid;
	__u16 lport, rport;
	__u8 flags = 0;
	int got = 0;
	long nr;

	if (m->protocol != IPPROTO_UDP || m->ret <= 0)
		return 0;
	if (m->family != AF_INET && m->family != AF_INET6)
		return 0;
	if (dir == MT_DIR_INGRESS && (m->flags & MSG_PEEK))
		return 0;
	lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (lport != MT_DNS_PORT && rport != MT_DNS_PORT)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	if (is_agent(pid_tgid >> 32))
		return 0;
	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD)
		return 0;
	sc = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!sc)
		return 0;

	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = regs->orig_ax;
	want = (__u32)m->ret;
	if (want > MT_DNS_CAPTURE_MAX)
		want = MT_DNS_CAPTURE_MAX;
	bound_var(want);
	switch (nr) {
	case NR_read:
	case NR_write:
	case NR_sendto:
	case NR_recvfrom:
		got = copy_buf(sc, (const void *)regs->si, want);
		break;
	case NR_readv:
	case NR_writev:
		got = copy_iov(sc, (const struct iovec *)regs->si, regs->dx, want, &flags);
		break;
	case NR_sendmsg:
	case NR_recvmsg:
		got = copy_msghdr(sc, (const struct user_msghdr *)regs->si, want, &flags);
		break;
	default: /* sendmmsg, recvmmsg, io_uring: nothing a parser can use */
		flags |= MT_DATA_F_NO_BUF;
		break;
	}
	if (got < 0) {
		count(&drops, MT_DROP_READ_FAULT, 1);
		flags |= MT_DATA_F_READ_FAULT;
		got = 0;
	}
	if (got > MT_DNS_CAPTURE_MAX)
		got = MT_DNS_CAPTURE_MAX;

	sc->ev.head.kind = MT_EV_DNS;
	sc->ev.head.ts_ns = bpf_ktime_get_ns();
	sc->ev.head.sock = (__u64)sk;
	sc->ev.pid = pid_tgid >> 32;
	sc->ev.tid = (__u32)pid_tgid;
	sc->ev.fd = (__s32)regs->di;
	sc->ev.bytes = m->ret;
	sc->ev.captured = got;
	sc->ev.dir = dir;
	sc->ev.flags = flags;
	sc->ev._pad = 0;
	sc->ev.seq = 0;
	bpf_get_current_comm(sc->ev.comm, sizeof(sc->ev.comm));
	read_tuple(sk, &sc->ev.tuple);

	size = sizeof(struct mt_data_event) + (__u32)got;
	if (size > sizeof(*sc))
		return 0;
	bound_var(size);
	if (bpf_ringbuf_output(&events, sc, size, wake_flags(size)) < 0) {
		count(&drops, MT_DROP_RINGBUF_FULL, 1);
		return 0;
	}
	count(&ext_stats, MT_XSTAT_DNS_EVENTS, 1);
	return 0;
}

static __always_inline void emit_proc(__u32 pid, __u8 op)
{
	struct mt_proc_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(&drops, MT_DROP_RINGBUF_FULL, 1);
		return;
	}
	ev->head.kind = MT_EV_PROC;
	__builtin_memset(ev->head._pad, 0, sizeof(ev->head._pad));
	ev->head.ts_ns = bpf_ktime_get_ns();
	ev->head.sock = 0;
	ev->pid = pid;
	ev->op = op;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, wake_flags(sizeof(*ev)));
	count(&ext_stats, MT_XSTAT_PROC_EVENTS, 1);
}

/*
 * A process is gone when its last thread exits: the agent drops what it
 * cached about it. group_dead is in the tracepoint since Linux 6.16; before,
 * the thread-group leader's exit stands in for it.
 */
SEC("tracepoint/sched/sched_process_exit")
int sched_process_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task;
	bool dead;

	if (is_agent(pid_tgid >> 32))
		return 0;
	if (bpf_core_field_exists(ctx->group_dead))
		dead = BPF_CORE_READ(ctx, group_dead);
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
SEC("tracepoint/sched/sched_process_exec")
int sched_process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (is_agent(pid_tgid >> 32))
		return 0;
	emit_proc(pid_tgid >> 32, MT_PROC_EXEC);
	return 0;
}
