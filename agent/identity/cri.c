// SPDX-License-Identifier: Apache-2.0
/*
 * The CRI client: one HTTP/2 connection (nghttp2, prior knowledge, no TLS) to
 * the runtime's unix socket, unary gRPC calls on it. Everything is
 * non-blocking: writes stop at EAGAIN and resume at the next poll; answers are
 * handed to the done callback from cri_client_poll only, after nghttp2 has
 * finished with the bytes read, so the callback may start new calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "agent/common/util.h"
#include "agent/identity/cri.h"
#include "agent/identity/grpc.h"

#define CRI_PATH_MAX 96

enum call_state {
	CALL_FREE = 0,
	CALL_SENT,
	CALL_DONE, /* ended: result in status, handed over at the next poll */
};

struct cri_call {
	uint8_t state;
	int32_t stream_id;
	int grpc_status; /* -1 until the trailers say */
	int status;	 /* what the done callback gets */
	uint64_t tag;
	uint64_t deadline_ns;
	uint8_t *req; /* prefix + message */
	size_t req_len, req_off;
	uint8_t *ans;
	size_t ans_len, ans_cap;
};

struct cri_client {
	char path[CRI_SOCKET_PATH_MAX];
	int fd;
	nghttp2_session *h2;
	uint64_t next_connect_ns;
	cri_done_fn done;
	void *ctx;
	struct cri_call calls[CRI_CALLS_MAX];
	unsigned inflight;
	struct cri_client_stats stats;
};

static struct cri_call *call_of(struct cri_client *c, int32_t stream_id)
{
	for (unsigned i = 0; i < CRI_CALLS_MAX; i++)
		if (c->calls[i].state == CALL_SENT && c->calls[i].stream_id == stream_id)
			return &c->calls[i];
	return NULL;
}

static void call_end(struct cri_call *call, int status)
{
	if (call->state == CALL_SENT) {
		call->state = CALL_DONE;
		call->status = status;
	}
}

static ssize_t on_send(nghttp2_session *h2, const uint8_t *data, size_t len, int flags, void *user)
{
	struct cri_client *c = user;
	ssize_t n;

	(void)h2;
	(void)flags;
	n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return NGHTTP2_ERR_WOULDBLOCK;
	if (n < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return n;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	struct cri_call *call = call_of(user, frame->hd.stream_id);

	(void)h2;
	(void)flags;
	if (!call)
		return 0;
	if (namelen == 11 && !memcmp(name, "grpc-status", 11))
		call->grpc_status = grpc_status_parse((const char *)value, valuelen);
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
		   size_t len, void *user)
{
	struct cri_client *c = user;
	struct cri_call *call = call_of(c, stream_id);

	(void)flags;
	if (!call)
		return 0;
	c->stats.bytes_in += len;
	if (call->ans_len + len > CRI_ANSWER_MAX) {
		call_end(call, -EMSGSIZE);
		nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
		return 0;
	}
	if (call->ans_len + len > call->ans_cap) {
		size_t cap = call->ans_cap ? call->ans_cap : 1024;
		uint8_t *p;

		while (cap < call->ans_len + len)
			cap *= 2;
		p = realloc(call->ans, cap);
		if (!p) {
			call_end(call, -ENOMEM);
			nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
			return 0;
		}
		call->ans = p;
		call->ans_cap = cap;
	}
	memcpy(call->ans + call->ans_len, data, len);
	call->ans_len += len;
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code, void *user)
{
	struct cri_call *call = call_of(user, stream_id);

	(void)h2;
	if (!call)
		return 0;
	if (error_code != NGHTTP2_NO_ERROR)
		call_end(call, -ECONNRESET);
	else if (call->grpc_status < 0)
		call_end(call, -EPROTO);
	else
		call_end(call, call->grpc_status);
	return 0;
}

static ssize_t read_req(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t len,
			uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct cri_call *call = src->ptr;
	size_t n = call->req_len - call->req_off;

	(void)h2;
	(void)stream_id;
	(void)user;
	if (n > len)
		n = len;
	memcpy(buf, call->req + call->req_off, n);
	call->req_off += n;
	if (call->req_off == call->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Ends every call in flight with @status and drops the connection. */
static void disconnect(struct cri_client *c, int status)
{
	for (unsigned i = 0; i < CRI_CALLS_MAX; i++)
		call_end(&c->calls[i], status);
	if (c->h2)
		nghttp2_session_del(c->h2);
	c->h2 = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->stats.connected = 0;
}

static int connect_socket(struct cri_client *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	nghttp2_session_callbacks *cbs;
	int fd, err;

	mt_strlcpy(sa.sun_path, c->path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (nghttp2_session_callbacks_new(&cbs) != 0) {
		close(fd);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_send_callback(cbs, on_send);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	err = nghttp2_session_client_new(&c->h2, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	if (err != 0) {
		close(fd);
		c->h2 = NULL;
		return -ENOMEM;
	}
	c->fd = fd;
	nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
	c->stats.connected = 1;
	c->stats.connects++;
	return 0;
}

struct cri_client *cri_client__new(const char *socket_path, cri_done_fn done, void *ctx)
{
	struct cri_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	mt_strlcpy(c->path, socket_path, sizeof(c->path));
	c->fd = -1;
	c->done = done;
	c->ctx = ctx;
	return c;
}

/* Hands the ended calls to the callback and frees their slots. */
static void deliver(struct cri_client *c)
{
	for (unsigned i = 0; i < CRI_CALLS_MAX; i++) {
		struct cri_call *call = &c->calls[i];
		const uint8_t *msg = NULL;
		size_t len = 0;
		int status;

		if (call->state != CALL_DONE)
			continue;
		status = call->status;
		if (status == 0 && grpc_unframe(call->ans, call->ans_len, &msg, &len) != 0)
			status = -EPROTO;
		if (status != 0)
			c->stats.failed++;
		if (status == -ETIMEDOUT)
			c->stats.timeouts++;
		/* Free the slot first: the callback may start the next call in it. */
		call->state = CALL_FREE;
		c->inflight--;
		if (c->done)
			c->done(c->ctx, call->tag, status, msg, len);
		free(call->req);
		free(call->ans);
		call->req = call->ans = NULL;
		call->ans_len = call->ans_cap = 0;
	}
}

void cri_client__free(struct cri_client *c)
{
	if (!c)
		return;
	disconnect(c, -ECANCELED);
	deliver(c);
	free(c);
}

/* Reads what is there, writes what can go. Returns false when the connection is lost. */
static bool pump(struct cri_client *c)
{
	uint8_t buf[16384];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n > 0) {
			if (nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0)
				return false;
			continue;
		}
		if (n == 0)
			return false;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return false;
	}
	return nghttp2_session_send(c->h2) == 0;
}

int cri_client_call(struct cri_client *c, const char *method, const uint8_t *req, size_t len,
		    uint64_t tag, uint64_t now_ns)
{
	char path[CRI_PATH_MAX];
	struct cri_call *call = NULL;
	nghttp2_data_provider prd;
	int32_t sid;
	int err;

	if (c->inflight >= CRI_CALLS_MAX)
		return -EBUSY;
	if (!c->h2) {
		if (now_ns < c->next_connect_ns)
			return -ENOTCONN;
		err = connect_socket(c);
		if (err) {
			c->stats.connect_failures++;
			c->next_connect_ns = now_ns + CRI_RECONNECT_NS;
			return -ENOTCONN;
		}
	}
	for (unsigned i = 0; i < CRI_CALLS_MAX && !call; i++)
		if (c->calls[i].state == CALL_FREE)
			call = &c->calls[i];
	if (!call) /* every free slot still holds an undelivered answer */
		return -EBUSY;
	call->req = malloc(GRPC_PREFIX_LEN + len);
	if (!call->req)
		return -ENOMEM;
	grpc_frame_prefix(call->req, (uint32_t)len);
	if (len)
		memcpy(call->req + GRPC_PREFIX_LEN, req, len);
	call->req_len = GRPC_PREFIX_LEN + len;
	call->req_off = 0;
	call->ans_len = 0;
	call->grpc_status = -1;
	call->tag = tag;
	call->deadline_ns = now_ns + CRI_CALL_TIMEOUT_NS;
	snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/%s", method);
	{
		const nghttp2_nv nva[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
			NV(":method", "POST"),
			NV(":scheme", "http"),
			NV(":authority", "localhost"),
			NV(":path", path),
			NV("content-type", "application/grpc"),
			NV("te", "trailers"),
			NV("user-agent", "meshtrace"),
#undef NV
		};

		prd.source.ptr = call;
		prd.read_callback = read_req;
		sid = nghttp2_submit_request(c->h2, NULL, nva, ARRAY_SIZE(nva), &prd, NULL);
	}
	if (sid < 0) {
		free(call->req);
		call->req = NULL;
		return -ENOMEM;
	}
	call->stream_id = sid;
	call->state = CALL_SENT;
	c->inflight++;
	c->stats.calls++;
	if (nghttp2_session_send(c->h2) != 0)
		disconnect(c, -ECONNRESET); /* ends this call too: delivered at the next poll */
	return 0;
}

void cri_client_poll(struct cri_client *c, uint64_t now_ns)
{
	if (c->h2 && !pump(c))
		disconnect(c, -ECONNRESET);
	for (unsigned i = 0; i < CRI_CALLS_MAX && c->h2; i++) {
		struct cri_call *call = &c->calls[i];

		if (call->state == CALL_SENT && now_ns > call->deadline_ns) {
			call_end(call, -ETIMEDOUT);
			nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->stream_id,
						  NGHTTP2_CANCEL);
		}
	}
	if (c->h2 && nghttp2_session_send(c->h2) != 0)
		disconnect(c, -ECONNRESET);
	deliver(c);
}

int cri_client_fd(const struct cri_client *c)
{
	return c->fd;
}

unsigned cri_client_inflight(const struct cri_client *c)
{
	return c->inflight;
}

void cri_client_stats(const struct cri_client *c, struct cri_client_stats *out)
{
	*out = c->stats;
}

bool cri_socket_usable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && access(path, W_OK) == 0;
}
