/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection lifecycle: the TCP state changes that open and close connections (with
 * connect latency and the error of a failed connect), and retransmits, as MT_EV_CONN events.
 * Both come from BTF-typed raw tracepoints, in either data path mode: no tracefs needed.
 * The agent's own connections are not reported; their endpoints are remembered instead, so the
 * far end of an export connection to a collector on this node is not traced either.
 */
#ifndef MESHTRACE_BPF_LIFECYCLE_BPF_H
#define MESHTRACE_BPF_LIFECYCLE_BPF_H

static __always_inline void emit_conn(const struct sock *sk, __u8 op, __u32 pid, __s32 err,
				      __u64 duration_ns, __u64 now)
{
	struct mt_conn_event *ev;

	if (!sk_in_scope(sk))
		return;
	ev = reserve_event(sizeof(*ev), MT_EV_CONN, now, (__u64)sk);
	if (!ev)
		return;
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
	read_tuple_btf(sk, &ev->tuple);
	bpf_ringbuf_submit(ev, wake_flags(sizeof(*ev)));
	count(&stats, MT_STAT_CONN_EVENTS, 1);
}

/* sock:inet_sock_set_state, whose raw arguments are (sk, oldstate, newstate). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk;
	__u64 now, *t0, dur = 0;
	struct endpoint *own;
	__u16 family;
	__u64 pid_tgid;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
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

			read_tuple_btf(sk, &t);
			__builtin_memcpy(own->addr, t.laddr, sizeof(own->addr));
			own->port = t.lport;
			__builtin_memcpy(own->peer_addr, t.raddr, sizeof(own->peer_addr));
			own->peer_port = t.rport;
			if (bpf_map_update_elem(&agent_endpoints, own, &one, BPF_NOEXIST) == 0)
				agent_port_ref(own->port, 1);
		} else if (newstate == TCP_CLOSE) {
			if (own->port && bpf_map_delete_elem(&agent_endpoints, own) == 0)
				agent_port_ref(own->port, -1);
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
			emit_conn(sk, MT_CONN_FAILED, 0, sk->sk_err, dur, now);
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
		if (skip_used)
			bpf_map_delete_elem(&skip_socks, &key);
		emit_conn(sk, MT_CONN_CLOSED, 0, sk->sk_err, 0, now);
	}
	return 0;
}

/* tcp:tcp_retransmit_skb: (sk, skb), and a reason on newer kernels; only sk is read. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk)
{
	__u16 family;

	if (!sk)
		return 0;
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	emit_conn(sk, MT_CONN_RETRANSMIT, 0, 0, 0, bpf_ktime_get_ns());
	return 0;
}

#endif /* MESHTRACE_BPF_LIFECYCLE_BPF_H */
