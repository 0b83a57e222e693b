/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The only contract between the kernel programs (capture.bpf.c) and user
 * space (agent/capture/capture.c). Fixed-width fields, explicit padding, no pointers.
 * Every size the kernel side uses is defined here.
 */
#ifndef MESHTRACE_BPF_CAPTURE_H
#define MESHTRACE_BPF_CAPTURE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bytes of payload copied per send/recv: default and hard upper bound. */
#define MT_CAPTURE_DEFAULT 512
#define MT_CAPTURE_MAX	   4096 /* power of two: the verifier bound is a mask */
/* iovec entries walked per readv/writev/sendmsg/recvmsg. */
#define MT_IOV_MAX 32
/*
 * The largest ring buffer of one CPU (power of two, multiple of the page size); user space
 * sizes them (agent/capture/rings.c): 4 MiB in all on machines with up to 16 CPUs.
 */
#define MT_RINGBUF_BYTES (4u << 20)
/*
 * Data events are shed, before any copy, once only this share of a ring is
 * left (1/16: 128 KiB of a 2 MiB ring): the rest is kept for connection and
 * process events, so the service graph stays whole while user space is behind.
 */
#define MT_RINGBUF_LIFECYCLE_SHARE 16
/* Default: wake the consumer when this much data is waiting. */
#define MT_WAKEUP_BYTES_DEFAULT (256u << 10)
/* Connections being opened (SYN_SENT) tracked for connect latency. */
#define MT_CONNECTING_MAX 16384
/* The agent's own outgoing connections (to its collector), whose far end is not traced. */
#define MT_AGENT_SOCKS_MAX 256
/* Sockets whose events were lost, until their next event says so. */
#define MT_LOST_SOCKS_MAX 4096
/* Sockets no parser wants: their payload is no longer copied, only counted. */
#define MT_MUTED_SOCKS_MAX 16384
/* Sockets with a skip hint (bytes their parser will not read): struct mt_skip. */
#define MT_SKIP_SOCKS_MAX 16384
/* Threads inside a data syscall, fallback (syscall tracepoint) mode only. */
#define MT_INFLIGHT_MAX 16384

enum mt_event_kind {
	MT_EV_DATA = 1, /* bytes moved on a TCP socket: struct mt_data_event */
	MT_EV_CONN = 2, /* TCP state change worth knowing: struct mt_conn_event */
	MT_EV_DNS = 3,	/* a UDP datagram to or from port 53: struct mt_data_event layout */
	MT_EV_PROC = 4, /* a process exited or exec'd: struct mt_proc_event */
};

enum mt_dir {
	MT_DIR_EGRESS = 0,  /* this process sent the bytes */
	MT_DIR_INGRESS = 1, /* this process received the bytes */
};

/* mt_data_event.flags */
enum mt_data_flags {
	MT_DATA_F_NO_BUF = 1 << 0,     /* no user buffer (sendfile, splice, io_uring): count only */
	MT_DATA_F_READ_FAULT = 1 << 1, /* the buffer could not be read: count only */
	MT_DATA_F_IOV_TRUNC = 1 << 2,  /* more iovecs than MT_IOV_MAX: capture is short */
	MT_DATA_F_LOST_BEFORE = 1 << 3, /* events of this socket were lost before this one */
	MT_DATA_F_MUTED = 1 << 4,	/* no parser wants this socket: count only, by request */
	/*
	 * Plaintext a TLS library handed to or got from the application (bpf/tls.bpf.h): the
	 * socket, tuple and seq are those of the TCP connection under it; bytes are plaintext
	 * bytes, which the graph does not count (the ciphertext events count the wire).
	 */
	MT_DATA_F_TLS = 1 << 5,
	/* Ciphertext moved inside a TLS library call whose plaintext is reported: count only. */
	MT_DATA_F_TLS_WIRE = 1 << 6,
};

enum mt_conn_op {
	MT_CONN_CONNECT = 1,	 /* CLOSE -> SYN_SENT: an active open began (pid known) */
	MT_CONN_ESTABLISHED = 2, /* SYN_SENT -> ESTABLISHED: client side up, latency known */
	MT_CONN_ACCEPTED = 3,	 /* SYN_RECV -> ESTABLISHED: server side up (softirq, no pid) */
	MT_CONN_FAILED = 4,	 /* SYN_SENT -> CLOSE: connect failed, err = sk_err */
	MT_CONN_CLOSED = 5,	 /* any established state -> CLOSE */
	MT_CONN_RETRANSMIT = 6,	 /* tcp:tcp_retransmit_skb */
};

/* Why an event never reached user space (per-CPU counters, index = reason). */
enum mt_drop_reason {
	MT_DROP_RINGBUF_FULL = 0,    /* ring buffer full (or data share used up): event shed */
	MT_DROP_READ_FAULT = 1,	     /* payload unreadable: sent as count only, not lost */
	MT_DROP_INFLIGHT_FULL = 2,   /* fallback mode: per-thread argument table full */
	MT_DROP_CONNECTING_FULL = 3, /* connect-latency table full */
	MT_DROP__MAX = 4,
};

/* Counters (per-CPU array, index = enum mt_stat). */
enum mt_stat {
	MT_STAT_DATA_EVENTS = 0, /* data events emitted */
	MT_STAT_CONN_EVENTS = 1,
	MT_STAT_WAKEUPS = 2, /* forced consumer wake-ups */
	MT_STAT_BYTES_CAPTURED = 3,
	MT_STAT_SELF_FILTERED =
		4, /* calls on the agent's own peers' sockets, dropped before any copy */
	MT_STAT_MUTES_STALE = 5, /* muted_socks entries of a socket reused for another connection */
	MT_STAT_SKIPPED_CALLS = 6, /* sends/receives inside a skip hint: no event made */
	MT_STAT_SKIPPED_BYTES = 7, /* the bytes they moved */
	MT_STAT__MAX = 8,
};

/*
 * A skip hint, per socket, written by user space (value of the skip_socks map), indexed by
 * enum mt_dir: the parser will not read the bytes at TCP sequence numbers [start, end) of that
 * direction (a body framed by its length). A send or receive whose bytes all lie in
 * [start, end - 1) makes no event: the next event's seq says how many bytes went by
 * unseen. The call that reaches `end` always makes one, so the parser learns when the
 * skipped message ended, and is captured from `end` on (mt_data_event.data_off).
 * start == end: no hint in that direction.
 */
struct mt_skip {
	__u32 start[2];
	__u32 end[2];
};

/*
 * The connection's addresses as seen by the socket's own process.
 * IPv4 addresses are stored v4-mapped (::ffff:a.b.c.d) so one form serves both.
 */
struct mt_tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;  /* host byte order */
	__u16 rport;  /* host byte order */
	__u16 family; /* AF_INET or AF_INET6: the socket's own family */
	__u16 _pad;
};

/* Common head of every event in the ring buffer. */
struct mt_event_head {
	__u8 kind; /* enum mt_event_kind */
	__u8 _pad[7];
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 sock;  /* address of struct sock: the connection's key while it lives */
};

struct mt_data_event {
	struct mt_event_head head;
	__u32 pid;
	__u32 tid;
	__s32 fd;    /* -1 when not known */
	__u32 bytes; /* bytes the call moved; captured <= bytes */
	__u16 captured;
	__u8 dir;   /* enum mt_dir */
	__u8 flags; /* enum mt_data_flags */
	/*
	 * Bytes of the call before the captured ones: a call that reaches the end of a skip
	 * hint (struct mt_skip) is captured from there, where its parser reads again (plain
	 * buffers only; 0 otherwise).
	 */
	__u32 data_off;
	__u64 seq; /* TCP sequence number of the first byte moved */
	char comm
		[16]; /* the thread's name: identity when the process is gone by the time we look */
	struct mt_tuple tuple;
	__u8 data[]; /* `captured` bytes of payload */
};

struct mt_conn_event {
	struct mt_event_head head;
	__u32 pid; /* 0 when the change happened outside process context */
	__u8 op;   /* enum mt_conn_op */
	__u8 _pad[3];
	__s32 err;	   /* sk_err for MT_CONN_FAILED/CLOSED (e.g. ECONNREFUSED), else 0 */
	__u32 tid;	   /* MT_CONN_CONNECT: the connecting thread, else 0 */
	__u64 duration_ns; /* MT_CONN_ESTABLISHED/FAILED: time since SYN_SENT, else 0 */
	char comm[16];	   /* MT_CONN_CONNECT only, else empty */
	struct mt_tuple tuple;
};

/* ---- DNS over UDP (address -> name from the answers) and process lifecycle ---- */

/* Bytes of a DNS datagram copied (EDNS answers are commonly up to 1232 bytes). */
#define MT_DNS_CAPTURE_MAX 1536
#define MT_DNS_PORT	   53

enum mt_proc_op {
	MT_PROC_EXIT = 1, /* the last thread of the process exited */
	MT_PROC_EXEC = 2, /* the process replaced its program (execve) */
};

/* MT_PROC_EXIT: the whole event. MT_PROC_EXEC: the head of struct mt_exec_event. */
struct mt_proc_event {
	struct mt_event_head head; /* head.sock is 0 */
	__u32 pid;		   /* the process (thread-group) id */
	__u8 op;		   /* enum mt_proc_op */
	__u8 _pad[3];
	char comm[16]; /* after an exec: the new program's name */
};

/*
 * What names a process, read by the kernel when it execs (its new
 * environment and its cgroup), so that a process gone in a few milliseconds
 * is still named by it. Per exec: at most MT_EXEC_ENV_ENTRIES_MAX entries of
 * the environment are looked at, one bounded read each.
 */
#define MT_EXEC_ENV_ENTRIES_MAX 512
#define MT_EXEC_ENV_READ	512 /* bytes of one entry read at once; longer ones take more */
#define MT_EXEC_SERVICE_MAX	64  /* OTEL_SERVICE_NAME's value, NUL-terminated */
#define MT_EXEC_ATTRS_MAX	256 /* OTEL_RESOURCE_ATTRIBUTES's value, NUL-terminated */
#define MT_EXEC_EXE_MAX		32  /* the executable file's name */
#define MT_EXEC_CGROUP_LEVELS	4   /* cgroup names sent, from the leaf up */
#define MT_EXEC_CGROUP_NAME_MAX 128

/* mt_exec_event.flags */
enum mt_exec_flags {
	MT_EXEC_F_ENV_TRUNC = 1 << 0,	/* the environment was not looked at to its end */
	MT_EXEC_F_ENV_FAULT = 1 << 1,	/* the environment could not be read */
	MT_EXEC_F_SVC_TRUNC = 1 << 2,	/* OTEL_SERVICE_NAME longer than its field */
	MT_EXEC_F_ATTRS_TRUNC = 1 << 3, /* OTEL_RESOURCE_ATTRIBUTES longer than its field */
};

struct mt_exec_event {
	struct mt_proc_event proc; /* proc.op is MT_PROC_EXEC */
	__u8 flags;		   /* enum mt_exec_flags */
	__u8 _pad[7];
	char exe[MT_EXEC_EXE_MAX]; /* the name of the file exec'd, symlinks resolved */
	char otel_service_name[MT_EXEC_SERVICE_MAX];	  /* "" when not set */
	char otel_resource_attributes[MT_EXEC_ATTRS_MAX]; /* "" when not set */
	/*
	 * The task's cgroup in the default (v2) hierarchy, or in the memory
	 * controller's when that is the root (v1 and hybrid hosts): its name,
	 * then its parents' ("" above the top). The leaf holds a container's
	 * id, a parent the kubelet's pod uid.
	 */
	char cgroup[MT_EXEC_CGROUP_LEVELS][MT_EXEC_CGROUP_NAME_MAX];
};

/* Counters of the DNS and process programs (per-CPU array "ext_stats", index = value). */
enum mt_ext_stat {
	MT_XSTAT_DNS_EVENTS = 0,     /* DNS datagrams emitted */
	MT_XSTAT_PROC_EVENTS = 1,    /* process exit/exec events emitted */
	MT_XSTAT_EXEC_ENV_TRUNC = 2, /* execs whose environment was too long to look at whole */
	MT_XSTAT_EXEC_ENV_FAULT = 3, /* execs whose environment could not be read */
	MT_XSTAT__MAX = 4,
};

/* ---- TLS libraries (bpf/tls.bpf.h): plaintext at the SSL_* calls ---- */

/* Threads inside an SSL_read/SSL_write call (entry to return). */
#define MT_TLS_CALLS_MAX 16384

/*
 * The key of a Go crypto/tls call in flight (tls_go_calls): a goroutine of one process, as
 * g addresses repeat across processes. tls_calls is keyed by the thread's pid_tgid.
 */
struct mt_tls_go_key {
	__u64 g;
	__u32 tgid;
	__u32 _pad;
};
/*
 * TLS calls in flight by process, folded by tgid & MT_TLS_PROC_MASK (tls_calls_by_proc in
 * bpf/tls.bpf.h): the data path looks calls up only for a process whose slot is not zero.
 */
#define MT_TLS_PROC_SLOTS 1024
#define MT_TLS_PROC_MASK  (MT_TLS_PROC_SLOTS - 1)

/* (process, SSL *) -> its socket and the plaintext reported ahead of its writes. */
#define MT_TLS_SSL_MAX 16384

/* The functions probed, one entry program each (tls_attach_points in agent/capture/tls.c). */
enum mt_tls_fn {
	MT_TLS_FN_READ = 0,	/* int SSL_read(SSL *, void *buf, int num) */
	MT_TLS_FN_WRITE = 1,	/* int SSL_write(SSL *, const void *buf, int num) */
	MT_TLS_FN_READ_EX = 2,	/* int SSL_read_ex(SSL *, void *, size_t, size_t *readbytes) */
	MT_TLS_FN_WRITE_EX = 3, /* int SSL_write_ex(SSL *, const void *, size_t, size_t *written) */
	MT_TLS_FN__MAX = 4,
};

/* Counters of the TLS probes (per-CPU array "tls_stats", index = value). */
enum mt_tls_stat {
	MT_TLS_STAT_CALLS = 0,	      /* SSL_* calls seen (each is two uprobe hits) */
	MT_TLS_STAT_EVENTS = 1,	      /* plaintext events emitted */
	MT_TLS_STAT_EMPTY = 2,	      /* calls that moved no plaintext (<= 0): no event */
	MT_TLS_STAT_NO_SOCK = 3,      /* plaintext whose TCP socket is unknown: dropped */
	MT_TLS_STAT_CALLS_FULL = 4,   /* the in-flight table was full: call not followed */
	MT_TLS_STAT_RINGBUF_FULL = 5, /* plaintext event shed: ring buffer full */
	MT_TLS_STAT_WIRE = 6,	      /* ciphertext calls seen inside an SSL_* call */
	/* writes whose plaintext left at their first ciphertext send, before the call returned */
	MT_TLS_STAT_WRITES_EARLY = 7,
	/* writes whose first bytes an earlier write that failed or fell short had already reported */
	MT_TLS_STAT_WRITES_RETRIED = 8,
	MT_TLS_STAT_GO_CALLS = 9, /* Go crypto/tls Write/Read entries (one uprobe hit each) */
	MT_TLS_STAT_GO_RETS = 10, /* RETs of those functions reached (one uprobe hit each) */
	MT_TLS_STAT_GO_WIRE = 11, /* ciphertext calls seen inside a Go Write/Read */
	MT_TLS_STAT__MAX = 12,
};

#endif /* MESHTRACE_BPF_CAPTURE_H */
