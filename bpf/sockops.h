/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Contract between the cross-node programs (sockops.bpf.h) and user space:
 * the scope (one cgroup v2 subtree) and trace context propagation in a TCP
 * header option. Fixed-width fields, explicit padding.
 */
#ifndef MESHTRACE_BPF_SOCKOPS_H
#define MESHTRACE_BPF_SOCKOPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * The option: kind 253 (RFC 4727 experimental), length 28, an RFC 6994 ExID,
 * then the sender's trace id (16 bytes) and client span id (8 bytes).
 */
#define MT_XOPT_KIND 253
#define MT_XOPT_LEN  28
#define MT_XOPT_EXID 0x4D54 /* "MT" */

/* Threads whose current server request's trace id is kept (LRU). */
#define MT_XTHREADS_MAX 16384
/* Options received and not yet matched to a request start, per socket. */
#define MT_XRECV_SLOTS 4

/*
 * Pipelining: one option per burst of requests (what a client sends before it
 * next reads). The option carries the first request's ids; a request starting
 * i bytes after it gets ids both ends derive with mt_xopt_derive() from those
 * and i. When the burst shares the option's trace (its sender was serving a
 * request), the receiver derives only for requests that had arrived when it
 * first answered after the option (MT_XCTX_F_BOUND): a later one may belong to
 * a new burst whose option was lost, and would join the last burst's trace.
 * A burst of roots (MT_XOPT_ROOTS) derives up to the next option: a wrong
 * derivation there makes a trace of its own, as no option would.
 */
/*
 * On the wire, the top bit of the span id's first byte (span ids the kernel
 * makes keep it clear): the burst's requests are each a trace of their own
 * (the sender served no request); clear, they share the option's trace id.
 */
#define MT_XOPT_ROOTS 0x80

/* Event kind of struct mt_xctx_event (after enum mt_event_kind's values). */
#define MT_EV_XCTX 16

/* mt_xctx_event.flags */
enum mt_xctx_flags {
	MT_XCTX_F_REMOTE = 1 << 0,  /* ingress: the context came in a peer's option */
	MT_XCTX_F_THREAD = 1 << 1,  /* egress: the trace id is the thread's server request's */
	MT_XCTX_F_DERIVED = 1 << 2, /* ingress: derived from an earlier option of the burst */
	/*
	 * ingress, no ids: the server answered for the first time since the
	 * option at the socket's last anchor; requests starting at or after
	 * @seq (what had arrived then) are not derived from it.
	 */
	MT_XCTX_F_BOUND = 1 << 3,
	MT_XCTX_F_ROOTS = 1 << 4, /* the burst's later requests are each their own trace */
};

/*
 * The ids of the request @off bytes after the one whose ids are @trace_id,
 * @span_id (the option's), in place. @roots: each request its own trace;
 * else the trace id is kept. Byte-order free and the same in the kernel and
 * user space, so both ends of a connection compute the same ids.
 */
static inline __u64 mt_xopt_mix(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline void mt_xopt_derive8(__u8 *id, __u32 off, __u64 salt)
{
	__u64 v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | id[i];
	v = mt_xopt_mix(v ^ mt_xopt_mix((__u64)off * 0x9e3779b97f4a7c15ULL + salt));
	for (i = 7; i >= 0; i--) {
		id[i] = (__u8)v;
		v >>= 8;
	}
}

static inline void mt_xopt_derive(__u8 trace_id[16], __u8 span_id[8], __u32 off, int roots)
{
	mt_xopt_derive8(span_id, off, 1);
	span_id[0] = (span_id[0] & (__u8)~MT_XOPT_ROOTS) | 1; /* never zero, flag bit clear */
	if (roots) {
		mt_xopt_derive8(trace_id, off, 2);
		mt_xopt_derive8(trace_id + 8, off, 3);
		trace_id[0] |= 1;
	}
}

/*
 * The context the kernel decided for a request, keyed by socket and the TCP
 * sequence number of the request's first byte:
 *  - egress (a client request starts): trace_id and span_id are what the
 *    option carries; user space gives the client span this span id.
 *  - ingress (a server request starts): trace_id is the one the thread's
 *    calls will carry; with MT_XCTX_F_REMOTE, span_id is the remote parent.
 */
struct mt_xctx_event {
	struct {
		__u8 kind; /* MT_EV_XCTX */
		__u8 _pad[7];
		__u64 ts_ns;
		__u64 sock;
	} head; /* the layout of struct mt_event_head */
	__u32 tid;
	__u32 seq;
	__u8 dir;   /* enum mt_dir */
	__u8 flags; /* enum mt_xctx_flags */
	__u8 _pad[6];
	__u8 trace_id[16];
	__u8 span_id[8];
};

/* Counters (per-CPU array "xstats", index = value). */
enum mt_xstat {
	MT_XS_REQ_OUT = 0,     /* client request starts given ids */
	MT_XS_OPT_WRITTEN = 1, /* options written on the segment of a request's first byte */
	MT_XS_OPT_NO_ROOM = 2, /* no option space left (e.g. SACK blocks): not sent */
	MT_XS_OPT_MISSED = 3,  /* request start passed without its segment carrying the option */
	MT_XS_OPT_PARSED = 4,  /* our options received */
	MT_XS_OPT_MATCHED = 5, /* ... matched to a server request start */
	MT_XS_REQ_IN = 6,      /* server request starts seen */
	MT_XS_NO_STORAGE = 7,  /* socket storage could not be had */
	MT_XS_EVENT_LOST = 8,  /* context event not delivered (ring buffer full) */
	MT_XS_REQ_DERIVED = 9, /* server request starts given ids derived from the burst's option */
	MT_XS_PAST_BOUND = 10, /* ... past the option's bound (arrived after the answer): none */
	MT_XS__MAX = 11,
};

#endif /* MESHTRACE_BPF_SOCKOPS_H */
