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

/* Event kind of struct mt_xctx_event (after enum mt_event_kind's values). */
#define MT_EV_XCTX 16

/* mt_xctx_event.flags */
enum mt_xctx_flags {
	MT_XCTX_F_REMOTE = 1 << 0, /* ingress: the context came in a peer's option */
	MT_XCTX_F_THREAD = 1 << 1, /* egress: the trace id is the thread's server request's */
};

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
	MT_XS__MAX = 9,
};

#endif /* MESHTRACE_BPF_SOCKOPS_H */
