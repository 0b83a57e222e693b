/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by agent/export/otlp*.c only: the reusable encoder behind
 * otlp_encode_spans(), the exporter's state, and the seams between the
 * batching (otlp.c), the queue (otlp_ring.c), the transport
 * (otlp_transport.c) and the log helpers (otlp_log.c).
 */
#ifndef MESHTRACE_OTLP_INTERNAL_H
#define MESHTRACE_OTLP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <libdeflate.h>

#include "agent/common/clock.h"
#include "agent/export/otlp.h"

#define OTLP_LOG_PREFIX "meshtrace: otlp: "
/* One log line per kind of trouble per minute, at most. */
#define OTLP_LOG_INTERVAL_MS 60000
/* Response bytes kept for decoding (partial success, error status); the rest is skipped. */
#define OTLP_RESPONSE_MAX (16u << 10)

/* ---- encoder (otlp_encode.c) ---- */

struct otlp_encoder;

/*
 * An encoder for batches of up to @max_spans spans with @cfg's resource
 * attributes (copied). Everything such a batch needs is allocated here, so
 * encoding allocates nothing but a larger output buffer now and then.
 * NULL + errno on failure (EINVAL: a @cfg string is not UTF-8; ENOMEM).
 */
struct otlp_encoder *otlp_encoder__new(const struct otlp_config *cfg, size_t max_spans);

/* NULL is a no-op. */
void otlp_encoder__free(struct otlp_encoder *enc);

/*
 * Encodes @n (<= max_spans) spans into the encoder's own buffer: *@out is
 * valid until the next call, or until otlp_encoder_swap_buf(). Returns 0,
 * -E2BIG (@n too large) or -ENOMEM.
 */
int otlp_encoder_encode(struct otlp_encoder *enc, const struct mt_span *spans, size_t n,
			const uint8_t **out, size_t *outlen);

/*
 * Swaps the encoder's output buffer with *@buf / *@cap (a buffer the caller
 * owns, possibly NULL / 0): hands over the last encoding without a copy.
 */
void otlp_encoder_swap_buf(struct otlp_encoder *enc, uint8_t **buf, size_t *cap);

/* ---- OTLP/gRPC framing and status (otlp_grpc.c) ---- */

/* The Length-Prefixed-Message header: compressed flag, 4-byte big-endian length. */
#define OTLP_GRPC_PREFIX 5
/* Decoded grpc-status-details-bin kept; a longer one is not read (no RetryInfo). */
#define OTLP_GRPC_DETAILS_MAX 2048

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum otlp_grpc_code {
	OTLP_GRPC_OK = 0,
	OTLP_GRPC_CANCELLED = 1,
	OTLP_GRPC_UNKNOWN = 2,
	OTLP_GRPC_INVALID_ARGUMENT = 3,
	OTLP_GRPC_DEADLINE_EXCEEDED = 4,
	OTLP_GRPC_RESOURCE_EXHAUSTED = 8,
	OTLP_GRPC_ABORTED = 10,
	OTLP_GRPC_OUT_OF_RANGE = 11,
	OTLP_GRPC_UNIMPLEMENTED = 12,
	OTLP_GRPC_INTERNAL = 13,
	OTLP_GRPC_UNAVAILABLE = 14,
	OTLP_GRPC_DATA_LOSS = 15,
};

/* What the trailers (or a Trailers-Only answer's headers) said. */
struct otlp_grpc_status {
	int code;	     /* grpc-status; -1: none seen */
	long retry_delay_ms; /* RetryInfo.retry_delay from grpc-status-details-bin; -1: none */
	char message[160];   /* grpc-message, percent-decoded, one printable line */
};

/* Writes the 5-byte prefix of a message of @len bytes. */
void otlp_grpc_prefix(uint8_t out[OTLP_GRPC_PREFIX], bool compressed, uint32_t len);

/*
 * Finds the one message in a response body @buf of @len bytes. Returns 0 with
 * *@msg, *@msglen, *@compressed set, or -EBADMSG (truncated, a bad flag, or
 * more than one message).
 */
int otlp_grpc_unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen,
		      bool *compressed);

/* "UNAVAILABLE" for 14; "?" for a code gRPC does not define. */
const char *otlp_grpc_code_name(int code);

/*
 * Whether OTLP retries @code: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS; RESOURCE_EXHAUSTED only when the
 * server sent RetryInfo (@retry_delay_ms >= 0).
 */
bool otlp_grpc_retryable(int code, long retry_delay_ms);

/*
 * Decodes base64 (standard or URL alphabet, padding optional) into @dst.
 * Returns the byte count, -EINVAL (not base64) or -E2BIG (@cap too small).
 */
ssize_t otlp_base64_decode(const char *src, size_t len, uint8_t *dst, size_t cap);

/*
 * RetryInfo.retry_delay in ms (capped at OTLP_RETRY_AFTER_MAX_MS) from an
 * encoded google.rpc.Status, or -1 when it carries no RetryInfo.
 */
long otlp_grpc_retry_delay_ms(const uint8_t *status_pb, size_t len);

/* Sets @st to "nothing seen". */
void otlp_grpc_status_reset(struct otlp_grpc_status *st);

/*
 * Reads one header or trailer line ("name: value\r\n", @len bytes) into @st
 * if it is grpc-status, grpc-message or grpc-status-details-bin. Returns
 * whether it was one of those.
 */
bool otlp_grpc_header(struct otlp_grpc_status *st, const char *line, size_t len);

/* ---- exporter state ---- */

enum otlp_signal_kind {
	OTLP_TRACES = 0,
	OTLP_METRICS = 1,
	OTLP_SIGNALS = 2,
};

struct otlp_batch {
	uint8_t *body; /* what goes on the wire: protobuf, gzip'd when configured */
	size_t len;
	size_t cap;
	uint32_t nspans;       /* 0 for metrics */
	uint64_t first_try_ms; /* its first attempt (monotonic ms); 0: not tried yet */
};

struct otlp_ratelimit {
	uint64_t next_ms;
	uint64_t suppressed;
};

/* One signal's queue of encoded requests and its HTTP transfer. */
struct otlp_signal {
	struct otlp_exporter *x;
	const char *name; /* "traces", "metrics" */
	bool enabled;
	bool gzip;
	bool in_flight;	    /* the head batch is on the wire */
	bool resp_protobuf; /* the answer is application/x-protobuf */
	bool grpc;	    /* OTLP/gRPC: framed body, status in trailers */
	bool h2c_old_curl;  /* gRPC over h2c with libcurl < 8.0 (see otlp_signal_init) */
	bool h2c_up;	    /* ... the last call left a live h2c connection to reuse */
	bool h2c_reusing;   /* ... the call on the wire reuses it */
	CURL *easy;
	struct curl_slist *headers;
	const char *url;
	/* Ring of encoded batches; of the free slots only the next to fill keep buffers. */
	struct otlp_batch *ring;
	unsigned nslots;
	unsigned head; /* oldest: on the wire, or waiting for retry_at_ms */
	unsigned count;
	uint64_t ring_spans;
	uint64_t retry_at_ms;		 /* head may be (re)sent from then on */
	unsigned attempt;		 /* failures in a row */
	long retry_after_ms;		 /* from the answer being read, -1: none */
	struct otlp_grpc_status grpc_st; /* from the answer being read */
	uint8_t grpc_prefix[OTLP_GRPC_PREFIX];
	size_t up_off; /* gRPC: bytes of prefix + body handed to curl */
	size_t resp_len;
	uint8_t resp[OTLP_RESPONSE_MAX];
	char errbuf[CURL_ERROR_SIZE];
	struct otlp_ratelimit rl_fail;
	struct otlp_ratelimit rl_reject;
	struct otlp_ratelimit rl_partial;
	struct otlp_ratelimit rl_drop;
	struct otlp_ratelimit rl_recover;
};

struct otlp_exporter {
	struct otlp_config cfg;
	int epfd; /* curl's sockets; handed to the caller's loop */
	CURLM *multi;
	int64_t curl_deadline_ms; /* -1: curl has no timer */
	struct otlp_signal sig[OTLP_SIGNALS];
	struct otlp_encoder *enc;
	struct mt_span *pending; /* batch_max spans not yet encoded */
	unsigned npending;
	uint64_t pending_since_ms;
	struct libdeflate_compressor *gz; /* reused for every batch */
	uint8_t *gz_buf;		  /* gzip output, copied into a slot buffer of its size */
	size_t gz_cap;
	size_t freed_bytes; /* queue buffers freed since the last malloc_trim */
	uint64_t rng;
	struct otlp_stats stats;
};

/* ---- log and last error (otlp_log.c) ---- */

/* Logs one line unless this kind of line was logged in the last minute. */
__attribute__((format(printf, 3, 4))) void otlp_log_limited(struct otlp_ratelimit *rl, uint64_t now,
							    const char *fmt, ...);

/* Sets stats.last_error. */
__attribute__((format(printf, 2, 3))) void otlp_set_error(struct otlp_exporter *x, const char *fmt,
							  ...);

/* ---- the queue of encoded batches (otlp_ring.c) ---- */

/* The batch @rel places after the head. */
struct otlp_batch *otlp_ring_at(struct otlp_signal *s, unsigned rel);

/* Forgets the head batch (answered, rejected or given up). */
void otlp_ring_pop(struct otlp_signal *s);

/*
 * The slot for one more batch of @k spans, made by dropping the oldest
 * batches not on the wire (counted and logged) while the ring has no free
 * slot or would hold more than @max_spans spans. Filled, then otlp_ring_push().
 */
struct otlp_batch *otlp_ring_make_room(struct otlp_signal *s, uint32_t k, uint64_t max_spans,
				       uint64_t now);

/* Queues the slot otlp_ring_make_room() returned, now holding @nspans spans. */
void otlp_ring_push(struct otlp_signal *s, uint32_t nspans);

/* ---- transport (otlp_transport.c) ---- */

/* Creates x->multi, wired to x->epfd. Returns 0, -EIO. */
int otlp_transport_init(struct otlp_exporter *x);

/* Frees both signals' transfers and x->multi. */
void otlp_transport_free(struct otlp_exporter *x);

/*
 * Sets up @s to POST to @url with @t's headers, compression, timeout, TLS
 * files and protocol (gRPC: HTTP/2, the 5-byte prefix, grpc-* headers), with
 * a ring of @nslots batches. "" @url: the signal stays off. Returns 0,
 * -ENOMEM, -EINVAL (curl refused the URL).
 */
int otlp_signal_init(struct otlp_exporter *x, struct otlp_signal *s, const char *name,
		     const char *url, const struct otlp_transport_config *t, unsigned nslots);

/* Sends the head batch if there is one, none is in flight and no retry is pending. */
void otlp_signal_maybe_start(struct otlp_signal *s, uint64_t now);

/* Stops @s's transfer in flight, if any. */
void otlp_signal_abort(struct otlp_signal *s);

/* Hands ready sockets to curl (never blocks). */
void otlp_transport_poll_sockets(struct otlp_exporter *x);

/* Runs curl's timer when due, then handles finished transfers. */
void otlp_transport_run(struct otlp_exporter *x, uint64_t now);

#endif /* MESHTRACE_OTLP_INTERNAL_H */
