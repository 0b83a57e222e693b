/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Across nodes (bpf/sockops.h is the contract with user space):
 *  - the scope: with --cgroup, only processes (and sockets) in one cgroup v2
 *    subtree are traced. The test is one helper call for the current task,
 *    bpf_get_current_ancestor_cgroup_id(level) == id: no map lookup, and it
 *    works in tp_btf programs (bpf_current_task_under_cgroup needs a
 *    CGROUP_ARRAY lookup on top of the same ancestor walk). Softirq events
 *    (connection state changes) are tested on the socket's own cgroup.
 *    Without --cgroup the tests are compiled out by the verifier (rodata 0).
 *  - propagation (--propagate): a sock_ops program writes the sender's trace
 *    id and client span id in a TCP header option on the segment carrying a
 *    request's first byte, and reads it on the receiving side; the ids are
 *    decided in the kernel before that segment can leave (tcp_sendmsg_locked
 *    fires before the data is queued) and reported to user space, which uses
 *    them for the spans (MT_EV_XCTX events).
 * Request boundaries in the kernel: a request starts where a client socket
 * sends after it last received (or first sends), and where a server socket
 * receives after it last sent. The TCP sequence number of that byte keys the
 * ids, so keep-alive requests each get their own. Requests pipelined (sent
 * before the client reads) share the first one's option; both ends derive the
 * others' ids from it and the offset of each (mt_xopt_derive(), bpf/sockops.h).
 */
#ifndef MESHTRACE_BPF_SOCKOPS_BPF_H
#define MESHTRACE_BPF_SOCKOPS_BPF_H

#include "bpf/sockops.h"

/* Set by user space before load: the scope (0: whole node) and propagation. */
const volatile __u64 scope_cgroup_id = 0;
const volatile __u32 scope_level = 0;
const volatile __u8 propagate = 0;

/* True when the current task is inside the scope (always, without one). */
static __always_inline bool current_in_scope(void)
{
	if (!scope_cgroup_id)
		return true;
	return bpf_get_current_ancestor_cgroup_id(scope_level) == scope_cgroup_id;
}

/* True when @sk was made by a task inside the scope (its cgroup v2 at creation). */
static __always_inline bool sk_in_scope(const struct sock *sk)
{
	struct cgroup *cg, *anc = NULL;
	__u64 off;

	if (!scope_cgroup_id)
		return true;
	cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	if (!cg || BPF_CORE_READ(cg, level) < (int)scope_level)
		return false;
	off = bpf_core_field_offset(struct cgroup, ancestors) + scope_level * sizeof(anc);
	if (bpf_probe_read_kernel(&anc, sizeof(anc), (void *)cg + off) < 0 || !anc)
		return false;
	return BPF_CORE_READ(anc, kn, id) == scope_cgroup_id;
}

enum xrole {
	XROLE_NONE = 0,
	XROLE_CLIENT = 1, /* active open */
	XROLE_SERVER = 2, /* passive open */
};

struct xrecv {
	__u32 seq; /* of the segment that carried the option */
	__u8 used;
	__u8 roots; /* the option's MT_XOPT_ROOTS bit */
	__u8 _pad[2];
	__u8 trace_id[16];
	__u8 span_id[8];
};

/* Server: the last option matched to a request start; later requests of its burst derive. */
struct xanchor {
	__u32 seq;   /* the request it came with */
	__u32 bound; /* with @bounded: requests from here on arrived after an answer */
	__u8 have;
	__u8 bounded;
	__u8 roots;
	__u8 _pad[5];
	__u8 trace_id[16];
	__u8 span_id[8];
};

/* Per socket, made when a connection in scope is established (sock_ops). */
struct xsock {
	__u8 role;     /* enum xrole */
	__u8 last_dir; /* enum mt_dir + 1 of the last data moved; 0: none yet */
	__u8 pending;  /* client: the option still waits for its segment */
	__u8 recv_next;
	__u32 req_seq; /* client: sequence number of the request's first byte */
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 roots; /* client: the burst's requests are each their own trace */
	__u8 _pad[7];
	struct xrecv recv[MT_XRECV_SLOTS]; /* server: options received */
	struct xanchor anchor;		   /* server */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct xsock);
} xsocks SEC(".maps");

/* The trace id of the server request a thread is serving, and its socket. */
struct xthread {
	__u64 sock;
	__u8 trace_id[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_XTHREADS_MAX);
	__type(key, __u32);
	__type(value, struct xthread);
} xthreads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_XS__MAX);
	__type(key, __u32);
	__type(value, __u64);
} xstats SEC(".maps");

static __always_inline void random_bytes(__u8 *out, int n)
{
	for (int i = 0; i < n; i += 4) {
		__u32 r = bpf_get_prandom_u32();

		__builtin_memcpy(out + i, &r, 4);
	}
	out[0] |= 1; /* never all zero */
}

static __always_inline void xctx_emit(__u64 sock, __u32 tid, __u32 seq, __u8 dir, __u8 flags,
				      const __u8 *trace_id, const __u8 *span_id)
{
	struct mt_xctx_event ev = {};

	ev.head.kind = MT_EV_XCTX;
	ev.head.ts_ns = bpf_ktime_get_ns();
	ev.head.sock = sock;
	ev.tid = tid;
	ev.seq = seq;
	ev.dir = dir;
	ev.flags = flags;
	__builtin_memcpy(ev.trace_id, trace_id, 16);
	__builtin_memcpy(ev.span_id, span_id, 8);
	void *ring = cpu_ring();

	if (!ring || bpf_ringbuf_output(ring, &ev, sizeof(ev), wake_flags(sizeof(ev))) < 0)
		count(&xstats, MT_XS_EVENT_LOST, 1);
}

/*
 * A send is about to queue data (process context, the sending thread). On a
 * client socket whose last data went the other way, a request starts at
 * write_seq: its ids are decided here, before any of its segments exists.
 */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(tcp_sendmsg_locked, struct sock *sk)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct xthread *th;
	struct tcp_sock *tp;
	struct xsock *xs;
	__u8 flags = 0;

	xs = bpf_sk_storage_get(&xsocks, sk, NULL, 0);
	if (!xs)
		return 0;
	if (xs->role == XROLE_SERVER) {
		/* The answer: the thread is done with this socket's request. */
		xs->last_dir = MT_DIR_EGRESS + 1;
		if (xs->anchor.have && !xs->anchor.bounded && !xs->anchor.roots) {
			/* What arrived after this may follow a read of it: a new burst. */
			tp = bpf_skc_to_tcp_sock(sk);
			xs->anchor.bounded = 1;
			xs->anchor.bound = tp ? tp->rcv_nxt : xs->anchor.seq + 1;
			xctx_emit((__u64)sk, (__u32)pid_tgid, xs->anchor.bound, MT_DIR_INGRESS,
				  MT_XCTX_F_BOUND, xs->anchor.trace_id, xs->anchor.span_id);
		}
		th = bpf_map_lookup_elem(&xthreads, &(__u32){(__u32)pid_tgid});
		if (th && th->sock == (__u64)sk)
			bpf_map_delete_elem(&xthreads, &(__u32){(__u32)pid_tgid});
		return 0;
	}
	if (xs->role != XROLE_CLIENT || xs->last_dir == MT_DIR_EGRESS + 1)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	xs->last_dir = MT_DIR_EGRESS + 1;
	if (xs->pending)
		count(&xstats, MT_XS_OPT_MISSED, 1);
	xs->req_seq = tp->write_seq;
	th = bpf_map_lookup_elem(&xthreads, &(__u32){(__u32)pid_tgid});
	if (th) {
		__builtin_memcpy(xs->trace_id, th->trace_id, 16);
		flags |= MT_XCTX_F_THREAD;
	} else {
		random_bytes(xs->trace_id, 16);
		flags |= MT_XCTX_F_ROOTS;
	}
	xs->roots = !th;
	random_bytes(xs->span_id, 8);
	xs->span_id[0] &= (__u8)~MT_XOPT_ROOTS; /* the bit is the option's flag */
	xs->pending = 1;
	count(&xstats, MT_XS_REQ_OUT, 1);
	xctx_emit((__u64)sk, (__u32)pid_tgid, xs->req_seq, MT_DIR_EGRESS, flags, xs->trace_id,
		  xs->span_id);
	return 0;
}

/*
 * A receive on a socket in scope (the data path, process context): on a
 * server socket whose last data went the other way, a request starts at
 * @seq. Its trace id is the one in the option that came on its first
 * segment, or a new one; the thread's calls carry it from now on.
 */
static __always_inline void xnode_on_recv(struct sock *sk, __u32 seq, __u64 pid_tgid)
{
	struct xthread th = {.sock = (__u64)sk};
	__u8 parent[8] = {}, flags = 0;
	struct xsock *xs;
	int i;

	xs = bpf_sk_storage_get(&xsocks, sk, NULL, 0);
	if (!xs)
		return;
	if (xs->role == XROLE_CLIENT) {
		xs->last_dir = MT_DIR_INGRESS + 1;
		return;
	}
	if (xs->role != XROLE_SERVER || xs->last_dir == MT_DIR_INGRESS + 1)
		return;
	xs->last_dir = MT_DIR_INGRESS + 1;
	count(&xstats, MT_XS_REQ_IN, 1);
	for (i = 0; i < MT_XRECV_SLOTS; i++) {
		struct xrecv *r = &xs->recv[i];

		if (!r->used || r->seq != seq)
			continue;
		__builtin_memcpy(th.trace_id, r->trace_id, 16);
		__builtin_memcpy(parent, r->span_id, 8);
		r->used = 0;
		flags = MT_XCTX_F_REMOTE | (r->roots ? MT_XCTX_F_ROOTS : 0);
		count(&xstats, MT_XS_OPT_MATCHED, 1);
		/* The burst's later requests derive their ids from this one's. */
		xs->anchor.seq = seq;
		xs->anchor.have = 1;
		xs->anchor.bounded = 0;
		xs->anchor.roots = r->roots;
		__builtin_memcpy(xs->anchor.trace_id, r->trace_id, 16);
		__builtin_memcpy(xs->anchor.span_id, r->span_id, 8);
		break;
	}
	if (!flags && xs->anchor.have) {
		struct xanchor *a = &xs->anchor;
		__u32 off = seq - a->seq;

		if ((__s32)off > 0 && (a->roots || !a->bounded || (__s32)(seq - a->bound) < 0)) {
			__builtin_memcpy(th.trace_id, a->trace_id, 16);
			__builtin_memcpy(parent, a->span_id, 8);
			mt_xopt_derive(th.trace_id, parent, off, a->roots);
			flags = MT_XCTX_F_REMOTE | MT_XCTX_F_DERIVED |
				(a->roots ? MT_XCTX_F_ROOTS : 0);
			count(&xstats, MT_XS_REQ_DERIVED, 1);
		} else {
			count(&xstats, MT_XS_PAST_BOUND, 1);
		}
	}
	if (!flags)
		random_bytes(th.trace_id, 16);
	bpf_map_update_elem(&xthreads, &(__u32){(__u32)pid_tgid}, &th, BPF_ANY);
	xctx_emit((__u64)sk, (__u32)pid_tgid, seq, MT_DIR_INGRESS, flags, th.trace_id, parent);
}

/* ---- the sock_ops program: on the scope's cgroup (or the v2 root) ---- */

static __always_inline void xs_established(struct bpf_sock_ops *skops, __u8 role)
{
	struct bpf_sock *sk = skops->sk;
	struct xsock *xs;

	if (!sk)
		return;
	xs = bpf_sk_storage_get(&xsocks, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!xs) {
		count(&xstats, MT_XS_NO_STORAGE, 1);
		return;
	}
	xs->role = role;
	bpf_sock_ops_cb_flags_set(
		skops, skops->bpf_sock_ops_cb_flags |
			       (role == XROLE_CLIENT ? BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG
						     : BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG));
}

static __always_inline struct xsock *xs_of(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;

	return sk ? bpf_sk_storage_get(&xsocks, sk, NULL, 0) : NULL;
}

/* Room for the option while a request start waits for its segment (and in the MSS). */
static __always_inline void xs_hdr_len(struct bpf_sock_ops *skops)
{
	struct xsock *xs = xs_of(skops);

	if (!xs || !xs->pending)
		return;
	if (skops->args[0] != BPF_WRITE_HDR_TCP_CURRENT_MSS && skops->skb_len == 0)
		return; /* a pure ACK: carries no request byte */
	if (bpf_reserve_hdr_opt(skops, MT_XOPT_LEN, 0) < 0 &&
	    skops->args[0] != BPF_WRITE_HDR_TCP_CURRENT_MSS)
		count(&xstats, MT_XS_OPT_NO_ROOM, 1);
}

static __always_inline void xs_hdr_write(struct bpf_sock_ops *skops)
{
	struct tcphdr *th = skops->skb_data;
	__u8 opt[MT_XOPT_LEN];
	__u32 seq, hlen, payload;
	struct xsock *xs;

	if ((void *)(th + 1) > skops->skb_data_end)
		return;
	xs = xs_of(skops);
	if (!xs || !xs->pending)
		return;
	seq = bpf_ntohl(th->seq);
	hlen = th->doff * 4;
	payload = skops->skb_len > hlen ? skops->skb_len - hlen : 0;
	if (!payload)
		return;
	if (xs->req_seq - seq >= payload) {
		/* Not in this segment; once past it, the start went out without the option. */
		if ((__s32)(seq - xs->req_seq) > 0) {
			xs->pending = 0;
			count(&xstats, MT_XS_OPT_MISSED, 1);
		}
		return;
	}
	opt[0] = MT_XOPT_KIND;
	opt[1] = MT_XOPT_LEN;
	opt[2] = MT_XOPT_EXID >> 8;
	opt[3] = MT_XOPT_EXID & 0xff;
	__builtin_memcpy(&opt[4], xs->trace_id, 16);
	__builtin_memcpy(&opt[20], xs->span_id, 8);
	if (xs->roots)
		opt[20] |= MT_XOPT_ROOTS;
	if (bpf_store_hdr_opt(skops, opt, sizeof(opt), 0) == 0) {
		xs->pending = 0;
		count(&xstats, MT_XS_OPT_WRITTEN, 1);
	} else {
		count(&xstats, MT_XS_OPT_NO_ROOM, 1);
	}
}

static __always_inline void xs_hdr_parse(struct bpf_sock_ops *skops)
{
	__u8 opt[MT_XOPT_LEN] __attribute__((aligned(8))) = {MT_XOPT_KIND, 4, MT_XOPT_EXID >> 8,
							     MT_XOPT_EXID & 0xff};
	struct tcphdr *th = skops->skb_data;
	struct xsock *xs;
	struct xrecv *r;
	__u32 i, last;
	__u8 roots;

	if ((void *)(th + 1) > skops->skb_data_end)
		return;
	xs = xs_of(skops);
	if (!xs || xs->role != XROLE_SERVER)
		return;
	if (bpf_load_hdr_opt(skops, opt, sizeof(opt), 0) != MT_XOPT_LEN)
		return;
	count(&xstats, MT_XS_OPT_PARSED, 1);
	roots = opt[20] & MT_XOPT_ROOTS;
	opt[20] &= (__u8)~MT_XOPT_ROOTS;
	/* TSO copies one header to every segment: the first (lowest seq) is the request's. */
	last = (xs->recv_next + MT_XRECV_SLOTS - 1) % MT_XRECV_SLOTS;
	r = &xs->recv[last & (MT_XRECV_SLOTS - 1)];
	if (r->used && *(__u64 *)r->span_id == *(__u64 *)&opt[20])
		return;
	i = xs->recv_next % MT_XRECV_SLOTS;
	r = &xs->recv[i & (MT_XRECV_SLOTS - 1)];
	r->seq = bpf_ntohl(th->seq);
	r->roots = !!roots;
	__builtin_memcpy(r->trace_id, &opt[4], 16);
	__builtin_memcpy(r->span_id, &opt[20], 8);
	r->used = 1;
	xs->recv_next = (i + 1) % MT_XRECV_SLOTS;
}

SEC("sockops")
int xnode_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		xs_established(skops, XROLE_CLIENT);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		xs_established(skops, XROLE_SERVER);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		xs_hdr_len(skops);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		xs_hdr_write(skops);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		xs_hdr_parse(skops);
		break;
	default:
		break;
	}
	return 1;
}

#endif /* MESHTRACE_BPF_SOCKOPS_BPF_H */
