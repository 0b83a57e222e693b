/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capture stage: loads and attaches the kernel programs, drains their
 * ring buffer, and reads their counters.
 */
#ifndef MESHTRACE_CAPTURE_H
#define MESHTRACE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bpf/capture.h"
#include "agent/capture/tls.h"
#include "bpf/sockops.h"

enum capture_mode {
	CAPTURE_AUTO = 0,     /* sock tracepoints where the kernel has them, else syscalls */
	CAPTURE_SOCK = 1,     /* sock:sock_{send,recv}_length (Linux >= 6.3) */
	CAPTURE_SYSCALLS = 2, /* syscalls:sys_{enter,exit}_* (any kernel with BTF) */
};

struct capture_opts {
	enum capture_mode mode;
	uint32_t capture_bytes; /* payload bytes copied per call, 0..MT_CAPTURE_MAX */
	uint64_t wakeup_bytes;	/* wake the consumer early when this much waits */
	bool no_tls;		/* --no-tls: no probes on TLS libraries */
	const char *cgroup;	/* --cgroup: a cgroup v2 directory, the scope; NULL: the node */
	bool propagate;		/* --propagate: trace context in a TCP header option */
};

/* Kernel-side counters, summed over CPUs. */
#define CAPTURE_CPUS_REPORTED 64 /* per-CPU drop counts kept for the first CPUs */

struct capture_counters {
	uint64_t drops[MT_DROP__MAX];
	uint64_t stats[MT_STAT__MAX];
	int ncpus; /* entries of drops_cpu that are meaningful */
	uint64_t drops_cpu[MT_DROP__MAX][CAPTURE_CPUS_REPORTED];
	uint64_t events_late; /* read after a younger event of another CPU (rings.h) */
};

/* Called for each event in the ring buffer, in order. @data is a mt_*_event. */
typedef void (*capture_event_fn)(void *ctx, const void *data, size_t size);

struct capture;

/*
 * Loads and attaches. On failure returns NULL with one line in @err naming
 * the cause and the fix.
 */
struct capture *capture__open(const struct capture_opts *opts, capture_event_fn fn, void *ctx,
			      char *err, size_t errlen);
void capture__free(struct capture *c);

/*
 * Stops copying the payload of @sock (no parser wants it) while it carries the connection
 * @tuple: its calls arrive as count-only events from now on; a call on the same struct sock
 * with another tuple (the socket reused) un-mutes it (kernel.mutes_stale). Returns 0 or
 * -errno (table full is not an error for the kernel: the LRU map forgets the oldest).
 */
int capture_mute(struct capture *c, uint64_t sock, const struct mt_tuple *tuple);

/*
 * Tells the kernel which coming bytes of @sock its parser will not read (struct mt_skip,
 * both directions): calls inside them make no event. Returns 0 or -errno (a full table
 * is not an error: the LRU map forgets the oldest hint, whose calls then make events).
 */
int capture_skip(struct capture *c, uint64_t sock, const struct mt_skip *hint);

/*
 * --record: also writes every event, as drained, to @path (payload bytes
 * included: a debugging and benchmarking aid). Returns 0 or -errno.
 */
int capture_record_to(struct capture *c, const char *path);

/*
 * --replay: a capture that loads nothing into the kernel and hands the
 * agent the events of a recording instead, at their recorded pace (each
 * capture_drain() gives what is due). Needs no privileges.
 */
struct capture *capture__open_replay(const char *path, capture_event_fn fn, void *ctx, char *err,
				     size_t errlen);

/*
 * A recording (--record, --replay): every ring-buffer record as a 4-byte
 * native-endian length, then its bytes, padded to 8. Same machine only.
 */
#define CAPTURE_RECORD_MAX (64u << 10) /* larger than any event the kernel makes */

/*
 * Reads the next record of a recording from @f into @buf (CAPTURE_RECORD_MAX
 * bytes). Returns its size; 0 at a clean end; -EBADMSG when the bytes are not
 * a recording (a length of 0 or over the maximum, a torn length), -ENODATA
 * when @f ends inside a record, -EIO on a read error (errno says which).
 */
int capture_read_record(FILE *f, void *buf);

/* True once a replay has handed over its last event. */
bool capture_replay_done(const struct capture *c);

/* Detaches every program: no event is produced after this returns. */
void capture_detach(struct capture *c);

/* An fd that becomes readable when the kernel forces a wake-up. */
int capture_fd(const struct capture *c);

/*
 * Hands the waiting events to the callback, in time order: those of the last
 * RINGS_HOLD_NS wait for the next call (an older one may still be on its way
 * on another CPU). Returns events consumed or -errno.
 */
int capture_drain(struct capture *c);
/* Hands every waiting event to the callback: after capture_detach(). */
int capture_drain_all(struct capture *c);

void capture_read_counters(const struct capture *c, struct capture_counters *out);

/* "sock" or "syscalls": the data path that was attached. */
const char *capture_mode_name(const struct capture *c);

/* Names of enum mt_drop_reason values, for reports. */
const char *capture_drop_name(int reason);

/* Counters of the DNS and process-lifecycle programs (index = enum mt_ext_stat), summed. */
void capture_read_ext_counters(const struct capture *c, uint64_t out[MT_XSTAT__MAX]);

/*
 * A process (@pid, 0 when unknown) began a connection with a TLS handshake: its libraries are
 * looked at now (agent/capture/tls.h). No-op without TLS probes.
 */
void capture_tls_on_handshake(struct capture *c, uint32_t pid);

/* The TLS libraries' counters; false (and zeros) when TLS probes are off. */
bool capture_tls_stats(const struct capture *c, struct tls_stats *out);
/* The cross-node programs' counters (bpf/sockops.h, enum mt_xstat), summed over CPUs. */
void capture_read_xnode_counters(const struct capture *c, uint64_t out[MT_XS__MAX]);

#endif /* MESHTRACE_CAPTURE_H */
