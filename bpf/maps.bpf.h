/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Everything the kernel side keeps: the tunables user space sets before load, the ring buffer,
 * the per-socket and per-thread tables (each bounded by a size from bpf/capture.h), the
 * counters, and the few helpers that only touch them.
 */
#ifndef MESHTRACE_BPF_MAPS_BPF_H
#define MESHTRACE_BPF_MAPS_BPF_H

/* Set by user space before load. */
const volatile __u32 agent_tgid = 0;
const volatile __u32 capture_bytes = MT_CAPTURE_DEFAULT;
const volatile __u64 wakeup_bytes = MT_WAKEUP_BYTES_DEFAULT;

/* The size of each CPU's ring (user space: agent/capture/rings.c). */
const volatile __u32 ring_bytes = MT_RINGBUF_BYTES;

/*
 * One ring buffer per CPU (agent/capture/rings.h): a program reserves in its own CPU's ring,
 * so no lock or cache line of a ring is shared between CPUs. User space sizes the array to
 * the possible CPUs and puts a ring of ring_bytes in each slot before attaching.
 */
struct ring_of_cpu {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MT_RINGBUF_BYTES);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct ring_of_cpu);
} rings SEC(".maps");

/* This CPU's ring; NULL never (every possible CPU has one), checked for the verifier. */
static __always_inline void *cpu_ring(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rings, &cpu);
}

/* Data events are shed when less than this is left in the ring (see MT_RINGBUF_LIFECYCLE_SHARE). */
static __always_inline __u64 ring_shed_at(void)
{
	return ring_bytes - ring_bytes / MT_RINGBUF_LIFECYCLE_SHARE;
}

/*
 * This CPU's ring for a data event, with the data waiting there in *@avail (for the
 * wake-up); NULL when the event is to be shed before any copy: user space is so far behind
 * that the ring's last 1/MT_RINGBUF_LIFECYCLE_SHARE belongs to connection and process events.
 */
static __always_inline void *data_ring(__u64 *avail)
{
	void *ring = cpu_ring();

	if (!ring)
		return NULL;
	*avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	return *avail > ring_shed_at() ? NULL : ring;
}

/* Why events never reached user space (index = enum mt_drop_reason). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Counters of the data path and the connection lifecycle (index = enum mt_stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Counters of the DNS and process programs (index = enum mt_ext_stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_XSTAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} ext_stats SEC(".maps");

/*
 * Event under construction: header, then room for a capture at any iovec offset. The header's
 * comm is left from this CPU's last event: data_event_fill() reads the thread's name again
 * only when that event was another thread's, or an exec happened since (exec_gen).
 */
struct scratch {
	struct mt_data_event ev;
	__u8 data[2 * MT_CAPTURE_MAX];
	__u64 comm_gen; /* exec_gen when ev.comm was read */
	__u32 comm_tid; /* the thread it was read for; 0: none */
	__u32 _pad;
};

/* Execs on the node so far: a thread's name changes with its program. */
volatile __u64 exec_gen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* An exec'ing process's environment, looked at one entry at a time, and what was found. */
struct exec_scratch {
	char entry[MT_EXEC_ENV_READ];
	char otel_service_name[MT_EXEC_SERVICE_MAX];
	char otel_resource_attributes[MT_EXEC_ATTRS_MAX];
	unsigned long p;   /* the next entry */
	unsigned long end; /* the environment's end */
	__u8 flags;	   /* enum mt_exec_flags */
	__u8 cont;	   /* p is inside an entry longer than one read */
	__u8 done;	   /* the end, OTEL_SERVICE_NAME or a fault was reached */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_scratch_map SEC(".maps");

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
	__u8 addr[16];	    /* the agent socket's local end */
	__u8 peer_addr[16]; /* ... and its remote end: ports are shared between connections */
	__u16 port;
	__u16 peer_port;
	__u16 _pad[2];
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
 * space, removed here when the socket closes. The value is the connection's
 * 4-tuple: a struct sock freed without its close being seen and reused for
 * another connection no longer matches it, and is not muted wrongly.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_MUTED_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct mt_tuple);
} muted_socks SEC(".maps");

/*
 * Skip hints (struct mt_skip): user space says which coming bytes of a socket its parser
 * will not read. Written by user space only; removed here when the socket closes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_SKIP_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct mt_skip);
} skip_socks SEC(".maps");

/* Set by user space with its first skip hint: skips the lookup until then. */
volatile __u64 skip_used = 0;

/* Set by user space when it first mutes a socket: skips the lookup until then. */
volatile __u64 muted_used = 0;

/* Entries ever put in lost_socks: skips the lookup while nothing was ever lost. */
volatile __u64 lost_socks_used = 0;

/*
 * Live entries of agent_endpoints by the agent's local port, folded (port & AGENT_PORT_MASK):
 * a data event whose far port has a zero here is not the agent's without a lookup. Every
 * event of a node whose agent exports over TCP would otherwise hash a 40-byte key.
 */
#define AGENT_PORT_SLOTS 1024
#define AGENT_PORT_MASK	 (AGENT_PORT_SLOTS - 1)
__u32 agent_port_refs[AGENT_PORT_SLOTS] = {};

/* One more (@delta 1) or one fewer (-1) live endpoint of the agent with local port @port. */
static __always_inline void agent_port_ref(__u16 port, int delta)
{
	__sync_fetch_and_add(&agent_port_refs[port & AGENT_PORT_MASK], delta);
}

/*
 * Fallback mode: a data syscall's arguments between enter and exit, by thread
 * (not named syscall_args: Linux 6.19 has a struct of that name).
 */
struct inflight_args {
	__u64 buf; /* buffer, iovec array or msghdr, by nr */
	__u64 cnt; /* iovcnt for readv/writev; splice: the fd it reads from */
	__s32 fd;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_INFLIGHT_MAX);
	__type(key, __u32);
	__type(value, struct inflight_args);
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

/* The wake-up flag for an event reserved in this CPU's ring (reserve_event()). */
static __always_inline __u64 wake_flags(__u32 size)
{
	void *ring = cpu_ring();

	return ring ? wake_flags_at(bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA), size)
		    : BPF_RB_NO_WAKEUP;
}

/*
 * Reserves a @size-byte event in the ring buffer (connection and process events: fixed size,
 * filled in place) with its head filled in. NULL, counted, when the ring buffer is full.
 */
static __always_inline void *reserve_event(__u32 size, __u8 kind, __u64 ts_ns, __u64 sock)
{
	void *ring = cpu_ring();
	struct mt_event_head *head = ring ? bpf_ringbuf_reserve(ring, size, 0) : NULL;

	if (!head) {
		count(&drops, MT_DROP_RINGBUF_FULL, 1);
		return NULL;
	}
	head->kind = kind;
	__builtin_memset(head->_pad, 0, sizeof(head->_pad));
	head->ts_ns = ts_ns;
	head->sock = sock;
	return head;
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

/* True when @a and @b name the same connection (addresses, ports, family). */
static __always_inline bool tuple_equal(const struct mt_tuple *a, const struct mt_tuple *b)
{
	const __u64 *x = (const __u64 *)a->laddr, *y = (const __u64 *)b->laddr;

	/* laddr and raddr: 32 bytes, four words */
	if (x[0] != y[0] || x[1] != y[1] || x[2] != y[2] || x[3] != y[3])
		return false;
	return a->lport == b->lport && a->rport == b->rport && a->family == b->family;
}

/* True when the far end of this connection is one of the agent's own sockets. */
static __always_inline bool is_agent_peer(const struct mt_tuple *t)
{
	struct endpoint ep = {};

	if (!agent_port_refs[t->rport & AGENT_PORT_MASK])
		return false;
	/* The whole 4-tuple: connect() gives one ephemeral port to connections to different peers. */
	__builtin_memcpy(ep.addr, t->raddr, sizeof(ep.addr));
	ep.port = t->rport;
	__builtin_memcpy(ep.peer_addr, t->laddr, sizeof(ep.peer_addr));
	ep.peer_port = t->lport;
	return bpf_map_lookup_elem(&agent_endpoints, &ep) != NULL;
}

#endif /* MESHTRACE_BPF_MAPS_BPF_H */
