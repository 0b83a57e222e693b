/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS plaintext of Go programs: crypto/tls.(*Conn).Write and (*Conn).Read (Go >= 1.17, the
 * register ABI "ABIInternal"). User space (agent/capture/tls_go.c) attaches go_tls_write_entry
 * and go_tls_read_entry at each function's first instruction and go_tls_ret at every RET
 * instruction inside it: no uretprobes, which rewrite the return address on a goroutine stack
 * that the Go runtime may move (and then crash the program).
 *
 * ABIInternal (src/cmd/compile/abi-internal.md): integer arguments in RAX, RBX, RCX, RDI, ... on
 * amd64 (R0, R1, R2, ... on arm64), results in the same registers, the current goroutine's g in
 * R14 (R28 on arm64). Write(b []byte) (int, error): receiver in RAX, b's pointer in RBX, its
 * length in RCX; n returned in RAX. A call is followed by its goroutine (g), not its thread: a
 * goroutine that blocks in the netpoller resumes on another thread.
 *
 * Each plaintext buffer is tied to its socket as the OpenSSL calls are (tls.bpf.h): the data
 * path calls tls_go_note_sock() for each TCP send or receive, and a goroutine inside Write or
 * Read (its g read from the syscall's user registers) claims the socket. Write's plaintext goes
 * out at its first ciphertext send, before the peer can have answered (same order as plaintext
 * I/O); Read's at the RET, with the bytes the call returned. A call that moved no ciphertext
 * (Read served from data already decrypted) uses the socket its *Conn was last seen on.
 *
 * Cost: one uprobe hit at the entry and one at the RET taken, per call; a Read that returned
 * nothing emits nothing.
 */
#ifndef MESHTRACE_BPF_TLS_GO_BPF_H
#define MESHTRACE_BPF_TLS_GO_BPF_H

#if defined(__TARGET_ARCH_x86)
#define MT_GO_ARG1(r) ((r)->ax)
#define MT_GO_ARG2(r) ((r)->bx)
#define MT_GO_ARG3(r) ((r)->cx)
#define MT_GO_G(r)    ((r)->r14)
#elif defined(__TARGET_ARCH_arm64)
#define MT_GO_ARG1(r) ((r)->regs[0])
#define MT_GO_ARG2(r) ((r)->regs[1])
#define MT_GO_ARG3(r) ((r)->regs[2])
#define MT_GO_G(r)    ((r)->regs[28])
#endif

/*
 * The handshake (crypto/tls.(*Conn).clientHandshake / serverHandshake, entry and RETs): a call of
 * its own kind, only to learn the *Conn's socket. The handshake may read the peer's first
 * application records along with its last handshake record, and the Read that returns them then
 * moves no ciphertext: without this it would have no socket.
 */
#define TLS_GO_FN_HANDSHAKE 0x80

/* Set by user space once a Go binary is probed: until then the data path skips the lookup. */
volatile __u64 tls_go_used = 0;

/* A Write or Read in flight on one goroutine, from its entry to its RET. */
struct tls_go_call {
	__u64 conn; /* the *tls.Conn */
	__u64 buf;  /* the slice's data */
	__u64 len;  /* the slice's length */
	__u64 sock; /* the TCP socket the call moved ciphertext on; 0 until seen */
	__u32 seq;  /* TCP sequence number of that first ciphertext byte */
	__u8 fn;    /* MT_TLS_FN_READ, MT_TLS_FN_WRITE or TLS_GO_FN_HANDSHAKE */
	__u8 sent;  /* Write: its plaintext event is out */
	__u8 _pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_TLS_CALLS_MAX);
	__type(key, struct mt_tls_go_key);
	__type(value, struct tls_go_call);
} tls_go_calls SEC(".maps");

/* (process, *tls.Conn) -> its socket, for Reads served from already-decrypted data. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_TLS_SSL_MAX);
	__type(key, struct tls_ssl_key);
	__type(value, __u64); /* struct sock */
} tls_go_conn_sock SEC(".maps");

static __always_inline void tls_go_remember(const struct tls_go_call *c, __u32 tgid)
{
	struct tls_ssl_key key = {.ssl = c->conn, .tgid = tgid};
	__u64 *known = bpf_map_lookup_elem(&tls_go_conn_sock, &key);

	if (!known || *known != c->sock)
		bpf_map_update_elem(&tls_go_conn_sock, &key, &c->sock, BPF_ANY);
}

/*
 * Called by the data path for each TCP send or receive of @sk (sequence number @seq of its first
 * byte). True when the goroutine doing it is inside a Go Write or Read on that socket: the
 * plaintext is reported by the call, this ciphertext is to be counted only. A Write's plaintext
 * event goes out here, at its first send.
 */
static __always_inline bool tls_go_note_sock(__u64 pid_tgid, struct sock *sk, __u8 dir, __u32 seq)
{
	struct task_struct *task;
	struct pt_regs *regs;
	struct mt_tls_go_key key = {.tgid = pid_tgid >> 32};
	struct tls_go_call *c;

	if (!tls_go_used || !tls_proc_live(pid_tgid >> 32))
		return false;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	key.g = MT_GO_G(regs);
	if (!key.g)
		return false;
	c = bpf_map_lookup_elem(&tls_go_calls, &key);
	if (!c)
		return false;
	if (!c->sock) {
		c->sock = (__u64)sk;
		c->seq = seq;
		tls_go_remember(c, key.tgid);
	} else if (c->sock != (__u64)sk) {
		return false; /* another socket: not this call's */
	}
	if (c->fn == TLS_GO_FN_HANDSHAKE)
		return false; /* the handshake's records are the connection's own business */
	count(&tls_stats, MT_TLS_STAT_GO_WIRE, 1);
	if (c->fn == MT_TLS_FN_WRITE && dir == MT_DIR_EGRESS && !c->sent) {
		__u32 n = c->len > 0xffffffffull ? 0xffffffffu : (__u32)c->len;

		c->sent = 1;
		if (n)
			tls_emit(sk, pid_tgid, MT_DIR_EGRESS, n, c->buf, seq);
	}
	return true;
}

static __always_inline int tls_go_begin(struct pt_regs *ctx, __u8 fn)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct mt_tls_go_key key = {.g = MT_GO_G(ctx), .tgid = pid_tgid >> 32};
	struct tls_go_call c = {
		.conn = MT_GO_ARG1(ctx),
		.buf = MT_GO_ARG2(ctx),
		.len = MT_GO_ARG3(ctx),
		.fn = fn,
	};

	if (is_agent(key.tgid))
		return 0;
	count(&tls_stats, MT_TLS_STAT_GO_CALLS, 1);
	/* Overwrites a call whose RET never came (a panic), or the same call restarted by morestack. */
	if (tls_call_put(&tls_go_calls, &key, key.tgid, &c, BPF_ANY) < 0)
		count(&tls_stats, MT_TLS_STAT_CALLS_FULL, 1);
	return 0;
}

SEC("uprobe")
int go_tls_handshake_entry(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct mt_tls_go_key key = {.g = MT_GO_G(ctx), .tgid = pid_tgid >> 32};
	struct tls_go_call c = {.conn = MT_GO_ARG1(ctx), .fn = TLS_GO_FN_HANDSHAKE};

	if (is_agent(key.tgid))
		return 0;
	/* Inside a Write or Read (a handshake it started): that call learns the socket. */
	tls_call_put(&tls_go_calls, &key, key.tgid, &c, BPF_NOEXIST);
	return 0;
}

/* At each RET of the handshake: ends a handshake call, and only that. */
SEC("uprobe")
int go_tls_handshake_ret(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct mt_tls_go_key key = {.g = MT_GO_G(ctx), .tgid = pid_tgid >> 32};
	struct tls_go_call *c = bpf_map_lookup_elem(&tls_go_calls, &key);

	if (c && c->fn == TLS_GO_FN_HANDSHAKE)
		tls_call_del(&tls_go_calls, &key, key.tgid);
	return 0;
}

SEC("uprobe")
int go_tls_write_entry(struct pt_regs *ctx)
{
	return tls_go_begin(ctx, MT_TLS_FN_WRITE);
}

SEC("uprobe")
int go_tls_read_entry(struct pt_regs *ctx)
{
	return tls_go_begin(ctx, MT_TLS_FN_READ);
}

/* At each RET of Write and Read: the call's entry says which it was; n is in the first result register. */
SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct mt_tls_go_key key = {.g = MT_GO_G(ctx), .tgid = pid_tgid >> 32};
	struct tls_go_call *kept = bpf_map_lookup_elem(&tls_go_calls, &key);
	struct tls_ssl_key ckey = {.tgid = key.tgid};
	__s64 rc = (__s64)MT_GO_ARG1(ctx);
	struct tls_go_call c;
	__u64 sock;
	__u64 *known;
	__u32 n;

	count(&tls_stats, MT_TLS_STAT_GO_RETS, 1);
	if (!kept)
		return 0;
	c = *kept;
	if (c.fn == TLS_GO_FN_HANDSHAKE)
		return 0; /* a RET of Write/Read inside a handshake: cannot be; not ours */
	tls_call_del(&tls_go_calls, &key, key.tgid);
	if (c.fn == MT_TLS_FN_WRITE && c.sent)
		return 0;
	if (rc <= 0) {
		count(&tls_stats, MT_TLS_STAT_EMPTY, 1);
		return 0;
	}
	n = rc > 0xffffffffll ? 0xffffffffu : (__u32)rc;
	sock = c.sock;
	if (!sock) {
		ckey.ssl = c.conn;
		known = bpf_map_lookup_elem(&tls_go_conn_sock, &ckey);
		sock = known ? *known : 0;
	}
	if (!sock) {
		count(&tls_stats, MT_TLS_STAT_NO_SOCK, 1);
		return 0;
	}
	tls_emit((struct sock *)sock, pid_tgid,
		 c.fn == MT_TLS_FN_READ ? MT_DIR_INGRESS : MT_DIR_EGRESS, n, c.buf,
		 c.sock ? c.seq : 0);
	return 0;
}

#endif /* MESHTRACE_BPF_TLS_GO_BPF_H */
