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
 * (MT_DATA_F_TLS_WIRE). The plaintext goes out as a data event of that socket flagged
 * MT_DATA_F_TLS:
 *  - a read's at the call's return (the bytes are in the buffer only then);
 *  - a write's at its first ciphertext send, before that send's own event: the peer may read,
 *    answer and call onwards before SSL_write returns, and same-node pairing needs the request
 *    to reach user space first. The application's buffer is valid for the whole call. The
 *    return then only settles short and failed writes: the bytes reported but not moved are
 *    kept per SSL object ("pending") and not reported again when the application retries them
 *    (OpenSSL wants a failed SSL_write retried with the same bytes).
 * A call that moved no ciphertext (data the library had already decrypted, a write into a
 * memory BIO) uses the socket its SSL object was last seen on, at its return.
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
	__u64 ssl;	 /* the SSL * */
	__u64 buf;	 /* the application's buffer */
	__u64 len_ptr;	 /* _ex: where the library writes the bytes it moved */
	__u64 sock;	 /* the TCP socket the call moved ciphertext on; 0 until seen */
	__u64 len;	 /* write: the bytes the application asked to write */
	__u64 skip_sock; /* write: the socket of the SSL object's pending bytes */
	__u32 seq;	 /* TCP sequence number of that first ciphertext byte */
	__u32 skip;	 /* write: first bytes an earlier write already reported */
	__u8 fn;	 /* enum mt_tls_fn */
	__u8 ahead;	 /* write: its plaintext left at its first ciphertext send */
	__u8 _pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_TLS_CALLS_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/*
 * Entries in tls_calls and tls_go_calls by process, folded (tgid & MT_TLS_PROC_MASK); their
 * sum is the TLS calls in flight on the node (tls.calls_live). While a process's slot is zero, its data
 * events look up neither map (a hash miss per event, for processes that map a TLS library but
 * send plaintext), whatever other processes do: a thread blocked in SSL_read (an idle
 * keep-alive client, a thread-per-connection server) costs the lookups only to its own
 * process and the few that share its slot. An entry whose return never comes (a thread that
 * dies inside a call) keeps its slot above zero until user space sweeps it (tls_tick()).
 */
__u32 tls_calls_by_proc[MT_TLS_PROC_SLOTS] = {};

/* Whether process @tgid (or one sharing its slot) has a TLS call in flight. */
static __always_inline bool tls_proc_live(__u32 tgid)
{
	return tls_calls_by_proc[tgid & MT_TLS_PROC_MASK] != 0;
}

static __always_inline void tls_live_add(__u32 tgid, int delta)
{
	__sync_fetch_and_add(&tls_calls_by_proc[tgid & MT_TLS_PROC_MASK], delta);
}

/*
 * Puts a call of process @tgid in @map (tls_calls or tls_go_calls) with @flags BPF_ANY or
 * BPF_NOEXIST.
 */
static __always_inline long tls_call_put(void *map, const void *key, __u32 tgid, const void *call,
					 __u64 flags)
{
	long err = bpf_map_update_elem(map, key, call, BPF_NOEXIST);

	if (err == 0)
		tls_live_add(tgid, 1);
	else if (flags == BPF_ANY)
		err = bpf_map_update_elem(map, key, call, BPF_EXIST);
	return err;
}

static __always_inline void tls_call_del(void *map, const void *key, __u32 tgid)
{
	if (bpf_map_delete_elem(map, key) == 0)
		tls_live_add(tgid, -1);
}

/* An SSL object of one process: SSL * addresses repeat across processes. */
struct tls_ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct tls_ssl {
	__u64 sock;    /* the struct sock it was last seen on */
	__u32 pending; /* plaintext reported ahead of a write that has not moved it yet */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_TLS_SSL_MAX);
	__type(key, struct tls_ssl_key);
	__type(value, struct tls_ssl);
} tls_ssls SEC(".maps");

/* Counters (index = enum mt_tls_stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_TLS_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_stats SEC(".maps");

static __always_inline bool tls_is_write(__u8 fn)
{
	return fn == MT_TLS_FN_WRITE || fn == MT_TLS_FN_WRITE_EX;
}

static __always_inline int tls_call_begin(__u64 ssl, __u64 buf, __u64 len, __u64 len_ptr, __u8 fn)
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
	if (tls_is_write(fn)) {
		struct tls_ssl_key key = {.ssl = ssl, .tgid = pid_tgid >> 32};
		struct tls_ssl *st = bpf_map_lookup_elem(&tls_ssls, &key);

		c.len = len;
		if (st && st->pending) {
			/* A retry (or the rest of a short write): its first bytes are reported. */
			c.skip = st->pending < len ? st->pending : (__u32)len;
			c.skip_sock = st->sock;
		}
	}
	/* Overwrites a call whose return never came (a thread that longjmp'd out of it). */
	if (tls_call_put(&tls_calls, &pid_tgid, pid_tgid >> 32, &c, BPF_ANY) < 0)
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
 * The socket under the call: the one it moved ciphertext on, else the one its SSL object was
 * last seen on; 0 when neither is known. Remembers it, with @pending, for the SSL object.
 */
static __always_inline __u64 tls_call_sock(const struct tls_call *c, __u32 tgid, __u32 pending)
{
	struct tls_ssl_key key = {.ssl = c->ssl, .tgid = tgid};
	struct tls_ssl *known = bpf_map_lookup_elem(&tls_ssls, &key);
	struct tls_ssl st = {.sock = c->sock, .pending = pending};

	if (!c->sock) {
		if (!known)
			return 0;
		st.sock = known->sock;
	}
	if (!known || known->sock != st.sock || known->pending != st.pending)
		bpf_map_update_elem(&tls_ssls, &key, &st, BPF_ANY);
	return st.sock;
}

/* One plaintext data event: @n bytes at @buf on socket @sk, the first ones copied. */
static __always_inline void tls_emit(struct sock *sk, __u64 pid_tgid, __u8 dir, __u32 n, __u64 buf,
				     __u32 seq)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch_map, &zero);
	__u8 flags = MT_DATA_F_TLS;
	__u64 avail = 0, key = (__u64)sk;
	void *ring;
	int got, sent;

	if (!sc)
		return;
	ring = data_ring(&avail);
	if (!ring) {
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
	if (is_agent_peer(&sc->ev.tuple))
		return;
	if (lost_socks_used && bpf_map_lookup_elem(&lost_socks, &key)) {
		sc->ev.flags |= MT_DATA_F_LOST_BEFORE;
		bpf_map_delete_elem(&lost_socks, &key);
	}
	sent = data_event_submit(ring, sc, got, avail);
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

/*
 * Called by the data path for each TCP send or receive of @sk on thread @pid_tgid, with the
 * sequence number @seq of its first byte. True when the thread is inside an SSL_* call on that
 * socket: its plaintext is reported by the call, so this ciphertext is to be counted only. The
 * first send of an SSL_write reports the write's plaintext now, ahead of the ciphertext. Uses
 * the scratch buffer: the caller fills its own event after this returns.
 */
static __always_inline bool tls_note_sock(__u64 pid_tgid, struct sock *sk, __u32 seq, __u8 dir)
{
	struct tls_call *c;

	if (!tls_used || !tls_proc_live(pid_tgid >> 32))
		return false;
	c = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!c)
		return false;
	if (!c->sock) {
		c->sock = (__u64)sk;
		c->seq = seq;
		/* Pending bytes of another socket: an SSL * freed and allocated again. */
		if (c->skip && c->skip_sock != (__u64)sk)
			c->skip = 0;
	} else if (c->sock != (__u64)sk) {
		return false; /* another socket (a BIO pair, a proxy): not this call's */
	}
	count(&tls_stats, MT_TLS_STAT_WIRE, 1);
	if (dir == MT_DIR_EGRESS && tls_is_write(c->fn) && !c->ahead) {
		c->ahead = 1;
		if (c->skip)
			count(&tls_stats, MT_TLS_STAT_WRITES_RETRIED, 1);
		if (c->len > c->skip) {
			count(&tls_stats, MT_TLS_STAT_WRITES_EARLY, 1);
			tls_emit(sk, pid_tgid, MT_DIR_EGRESS,
				 c->len - c->skip > 0xffffffffull ? 0xffffffffu
								  : (__u32)(c->len - c->skip),
				 c->buf + c->skip, seq);
		}
	}
	return true;
}

/*
 * A write's return, @n plaintext bytes moved: what it reported ahead is settled, what it moved
 * beyond that (no ciphertext seen during the call) is reported now.
 */
static __always_inline void tls_write_end(const struct tls_call *c, __u64 pid_tgid, __u64 n)
{
	__u64 claimed = c->ahead ? c->len : c->skip;
	__u64 sock, pending;

	if (!c->ahead && c->skip && n)
		count(&tls_stats, MT_TLS_STAT_WRITES_RETRIED, 1);
	pending = claimed > n ? claimed - n : 0;
	sock = tls_call_sock(c, pid_tgid >> 32, pending > 0xffffffffull ? 0 : (__u32)pending);
	if (n <= claimed) {
		if (!n)
			count(&tls_stats, MT_TLS_STAT_EMPTY, 1);
		return;
	}
	if (!sock) {
		count(&tls_stats, MT_TLS_STAT_NO_SOCK, 1);
		return;
	}
	tls_emit((struct sock *)sock, pid_tgid, MT_DIR_EGRESS,
		 n - claimed > 0xffffffffull ? 0xffffffffu : (__u32)(n - claimed), c->buf + claimed,
		 c->sock ? c->seq : 0);
}

static __always_inline int tls_call_end(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call *kept = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	struct tls_call c;
	__u64 sock;
	__u32 n;

	if (!kept)
		return 0;
	c = *kept;
	tls_call_del(&tls_calls, &pid_tgid, pid_tgid >> 32);
	n = tls_call_moved(&c, PT_REGS_RC(ctx));
	if (tls_is_write(c.fn)) {
		tls_write_end(&c, pid_tgid, n);
		return 0;
	}
	if (!n) {
		count(&tls_stats, MT_TLS_STAT_EMPTY, 1);
		return 0;
	}
	sock = tls_call_sock(&c, pid_tgid >> 32, 0);
	if (!sock) {
		count(&tls_stats, MT_TLS_STAT_NO_SOCK, 1);
		return 0;
	}
	tls_emit((struct sock *)sock, pid_tgid, MT_DIR_INGRESS, n, c.buf, c.sock ? c.seq : 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_read_entry, void *ssl, void *buf)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, 0, 0, MT_TLS_FN_READ);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_entry, void *ssl, const void *buf, int num)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, num > 0 ? (__u64)num : 0, 0, MT_TLS_FN_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex_entry, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, 0, (__u64)readbytes, MT_TLS_FN_READ_EX);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex_entry, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_call_begin((__u64)ssl, (__u64)buf, num, (__u64)written, MT_TLS_FN_WRITE_EX);
}

/* One return program for the four functions: the call's entry says which it was. */
SEC("uretprobe")
int BPF_KRETPROBE(tls_ret)
{
	return tls_call_end(ctx);
}

#endif /* MESHTRACE_BPF_TLS_BPF_H */
