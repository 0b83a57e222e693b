/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of the node's container runtime over its CRI socket (gRPC over
 * HTTP/2 cleartext on a unix socket, as the kubelet talks to containerd and
 * CRI-O): unary calls of runtime.v1.RuntimeService, non-blocking, driven by
 * the agent's event loop (cri_client_poll). Bytes in, bytes out: the caller
 * encodes the request and decodes the answer (agent/identity/k8s.c).
 *
 * Bounds: CRI_CALLS_MAX calls in flight (cri_client_call refuses more), an
 * answer of at most CRI_ANSWER_MAX bytes, CRI_CALL_TIMEOUT_NS per call. When
 * the socket cannot be reached every call fails at once (counted by the
 * caller); a new connection is tried at most every CRI_RECONNECT_NS.
 */
#ifndef MESHTRACE_CRI_H
#define MESHTRACE_CRI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRI_CALLS_MAX	    32
#define CRI_ANSWER_MAX	    (4u << 20) /* gRPC's default receive limit */
#define CRI_CALL_TIMEOUT_NS (2ull * 1000000000ull)
#define CRI_RECONNECT_NS    (1ull * 1000000000ull)
#define CRI_SOCKET_PATH_MAX 108

/*
 * A call ended. @status: 0 (answer in @msg, @len bytes, valid during the
 * callback), a gRPC status > 0, or -errno (-ECONNREFUSED, -ETIMEDOUT,
 * -EPROTO, -EMSGSIZE …) when no answer came.
 */
typedef void (*cri_done_fn)(void *ctx, uint64_t tag, int status, const uint8_t *msg, size_t len);

struct cri_client_stats {
	uint64_t calls;
	uint64_t failed;   /* calls that ended without an answer or with a gRPC error */
	uint64_t timeouts; /* of which: no answer within CRI_CALL_TIMEOUT_NS */
	uint64_t connects; /* connections established */
	uint64_t connect_failures;
	uint64_t bytes_in;
	uint8_t connected;
};

struct cri_client;

/* A client of @socket_path; connects at the first call. NULL on out of memory. */
struct cri_client *cri_client__new(const char *socket_path, cri_done_fn done, void *ctx);
/* Fails every call in flight (-ECANCELED) and closes the connection. NULL is a no-op. */
void cri_client__free(struct cri_client *c);

/*
 * Starts the unary call /runtime.v1.RuntimeService/@method with the encoded
 * request @req (@len bytes). Returns 0 (the answer comes through the done
 * callback, never from inside this call), -EBUSY when CRI_CALLS_MAX calls
 * are in flight, -ENOTCONN when the runtime cannot be reached now,
 * -ENOMEM.
 */
int cri_client_call(struct cri_client *c, const char *method, const uint8_t *req, size_t len,
		    uint64_t tag, uint64_t now_ns);

/* Reads and writes what the socket allows, ends calls past their time. Never blocks. */
void cri_client_poll(struct cri_client *c, uint64_t now_ns);

/* The connected socket (for epoll), -1 when none. */
int cri_client_fd(const struct cri_client *c);

/* The number of calls in flight. */
unsigned cri_client_inflight(const struct cri_client *c);

void cri_client_stats(const struct cri_client *c, struct cri_client_stats *out);

/* Whether @path is a unix socket this process could connect to. */
bool cri_socket_usable(const char *path);

#endif /* MESHTRACE_CRI_H */
