/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS plaintext from the library calls that carry it: SSL_read, SSL_write, SSL_read_ex and
 * SSL_write_ex of OpenSSL 1.1 and 3 (and BoringSSL, same ABI), entry and return. User space
 * attaches these programs to each library file (agent/capture/tls.c); nothing here knows a
 * path.
 *
 * A plaintext buffer belongs to a TCP connection: the ciphertext an SSL call moves goes through
 * a socket send or receive on the same thread while the call is in flight. The data path calls
 * tls_note_sock() for each of them, which records the socket (and the TCP sequence number of
 * the first ciphertext byte) in the thread's call and marks that ciphertext event as count-only
 * (MT_DATA_F_TLS_WIRE). At the call's return the plaintext goes out as a data event of that
 * socket flagged MT_DATA_F_TLS. A call that moved no ciphertext (data the library had already
 * decrypted) uses the socket its SSL object was last seen on.
 *
 * Cost: each SSL_* call is two uprobe hits (entry, return), each a trap; a call that moved no
 * plaintext (WANT_READ, errors) emits nothing.
 */
#ifndef MESHTRACE_BPF_TLS_BPF_H
#define MESHTRACE_BPF_TLS_BPF_H

/* Set by user space once a TLS library is attached: until then the data path skips the lookup. */
volatile __u64 tls_used = 0;

/* An SSL_* call in flight on one thread, from its entry to its return. */
struct tls_call {
	__u64 ssl;     /* the SSL * */
	__u64 buf;     /* the application's buffer */
	__u64 len_ptr; /* _ex: where the library writes the bytes it moved */
	__u64 sock;    /* the TCP socket the call moved ciphertext on; 0 until seen */
	__u32 seq;     /* TCP sequence number of that first ciphertext byte */
	__u8 fn;       /* enum mt_tls_fn */
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_TLS_CALLS_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* An SSL object of one process: SSL * addresses repeat across processes. */
struct tls_ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_TLS_SSL_MAX);
	__type(key, struct tls_ssl_key);
	__type(value, __u64); /* struct sock */
} tls_ssl_sock SEC(".maps");

/* Counters (index = enum mt_tls_stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_TLS_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_stats SEC(".maps");

/*
 * Called by the data path for each TCP send or receive of @sk on thread @pid_tgid. True when
 * the thread is inside an SSL_* call on that socket: its plaintext is reported by the call, so
 * this ciphertext is to be counted only.
 */
static __always_inline bool tls_note_sock(__u64 pid_tgid, struct sock *sk, __u32 seq)
{
	struct tls_call *c;

	if (!tls_used)
		return false;
	c = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!c)
		return false;
	if (!c->sock) {
		c->sock = (__u64)sk;
		c->seq = seq;
	} else if (c->sock != (__u64)sk) {
		return false; /* another socket (a BIO pair, a proxy): not this call's */
	}
	count(&tls_stats, MT_TLS_STAT_WIRE, 1);
	return true;
}

static __always_inline int tls_call_begin(__u64 ssl, __u64 buf, __u64 len_ptr, __u8 fn)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call c = {
		.ssl = ssl,
		.buf = buf,
		.len_ptr = len_ptr,
		.fn = fn,
	};

	if (is_agent(pid_tgid >> 32))
		return 0;
	count(&tls_stats, MT_TLS_STAT_CALLS, 1);
	/* Overwrites a call whose return never came (a thread that longjmp'd out of it). */
	if (bpf_map_update_elem(&tls_calls, &pid_tgid, &c, BPF_ANY) < 0)
		count(&tls_stats, MT_TLS_STAT_CALLS_FULL, 1);
	return 0;
}

/* The plaintext bytes the call moved, from its return value @rc; 0 for none. */
static __always_inline __u32 tls_call_moved(const struct tls_call *c, long rc)
{
	__u64 n = 0;

	if (c->fn == MT_TLS_FN_READ_EX || c->fn == MT_TLS_FN_WRITE_EX) {
		if ((int)rc != 1 || !c->len_ptr)
			return 0;
		if (bpf_probe_read_user(&n, sizeof(n), (const void *)c->len_ptr) < 0)
			return 0;
	} else if ((int)rc > 0) {
		n = (__u64)(int)rc;
	}
	return n > 0xffffffffull ? 0xffffffffu : (__u32)n;
}

/*
 * The socket under the call: the one it moved ciphertext on (remembered for its SSL object),
 * else the one its SSL object was last seen on; 0 when neither is known.
 */
static __always_inline __u64 tls_call_sock(const struct tls_call *c, __u32 tgid)
{
	struct tls_ssl_key key = {.ssl = c->ssl, .tgid = tgid};
	__u64 *known = bpf_map_lookup_elem(&tls_ssl_sock, &key);

	if (c->sock) {
		if (!known || *known != c->sock)
			bpf_map_update_elem(&tls_ssl_sock, &key, &c->sock, BPF_ANY);
		return c->sock;
	}
	return known ? *known : 0;
}

/* One plaintext data event: @n bytes at @buf on socket @sk, the first ones copied. */
static __always_inline void tls_emit(struct sock *sk, __u64 pid_tgid, __u8 dir, __u32 n, __u64 buf,
				     __u32 seq)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch_map, &zero);
	__u8 flags = MT_DATA_F_TLS;
	__u64 avail, key = (__u64)sk;
	int got, sent;

	if (!sc)
		return;
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail > MT_RINGBUF_BYTES - MT_RINGBUF_LIFECYCLE_RESERVE) {
		count(&tls_stats, MT_TLS_STAT_RINGBUF_FULL, 1);
		lost_event(sk);
		return;
	}
	got = copy_buf(sc, (const void *)buf, clamp_capture(n));
	if (got < 0) {
		count(&drops, MT_DROP_READ_FAULT, 1);
		flags |= MT_DATA_F_READ_FAULT;
		got = 0;
	}
	if (got > MT_CAPTURE_MAX)
		got = MT_CAPTURE_MAX;
	data_event_fill(sc, MT_EV_DATA, sk, pid_tgid, -1, n, got, dir, flags, seq);
	read_tuple(sk, &sc->ev.tuple);
	if (agent_endpoint_count && is_agent_peer(&sc->ev.tuple))
		return;
	if (lost_socks_used && bpf_map_lookup_elem(&lost_socks, &key)) {
		sc->ev.flags |= MT_DATA_F_LOST_BEFORE;
		bpf_map_delete_elem(&lost_socks, &key);
	}
	sent = data_event_submit(sc, got, avail);
	if (sent < 0) {
		count(&tls_stats, MT_TLS_STAT_RINGBUF_FULL, 1);
		lost_event(sk);
		return;
	}
	if (sent == 0)
		return;
	count(&tls_stats, MT_TLS_STAT_EVENTS, 1);
	count(&stats, MT_STAT_BYTES_CAPTURED, got);
}

static __always_inline int tls_call_end(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call *kept = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	struct tls_call c;
	__u64 sock;
	__u32 n;
	__u8 dir;

	if (!kept)
		return 0;
	c = *kept;
	bpf_map_delete_elem(&tls_calls, &pid_tgid);
	n = tls_call_moved(&c, PT_REGS_RC(ctx));
	if (!n) {
		count(&tls_stats, MT_TLS_STAT_EMPTY, 1);
		return 0;
	}
	sock = tls_call_sock(&c, pid_tgid >> 32);
	if (!sock) {
		count(&tls_stats, MT_TLS_STAT_NO_SOCK, 1);
		return 0;
	}
	dir = c.fn == MT_TLS_FN_READ || c.fn == MT_TLS_FN_READ_EX ? MT_DIR_INGRESS : MT_DIR_EGRESS;
	tls_emit((struct sock *)sock, pid_tgid, dir, n, c.buf, c.sock ? c.seq : 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_read_entry, void *ssl, void *buf)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, 0, MT_TLS_FN_READ);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_entry, void *ssl, const void *buf)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, 0, MT_TLS_FN_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex_entry, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, (__u64)readbytes, MT_TLS_FN_READ_EX);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex_entry, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, (__u64)written, MT_TLS_FN_WRITE_EX);
}

/* One return program for the four functions: the call's entry says which it was. */
SEC("uretprobe")
int BPF_KRETPROBE(tls_ret)
{
	return tls_call_end(ctx);
}

#endif /* MESHTRACE_BPF_TLS_BPF_H */
