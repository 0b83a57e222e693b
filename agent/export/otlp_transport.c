// SPDX-License-Identifier: Apache-2.0
/*
 * OTLP/HTTP transport: libcurl's multi interface in socket-action mode.
 * Spec: https://opentelemetry.io/docs/specs/otlp/#otlphttp (requests,
 * responses, partial success, failures, throttling and retries).
 *
 * curl's sockets go into an epoll fd of our own, and that fd goes into the
 * caller's epoll set (epoll fds nest), so one event loop drives everything;
 * curl's timer is folded into otlp_exporter_timeout_ms(). One request is in
 * flight per signal, on a reused easy handle, so the connection is kept
 * alive between batches.
 *
 * Answers: 2xx accepted (partial_success counted; a body that does not parse
 * counted too); 429, 502, 503, 504 and failures to connect, time-outs or a
 * connection dropped mid-answer retried after Retry-After or a backoff with
 * full jitter, until OTEL_BSP_EXPORT_TIMEOUT after the first attempt, then
 * dropped and counted; any other status drops the request, counted.
 *
 * OTLP/gRPC (https://opentelemetry.io/docs/specs/otlp/#otlpgrpc) rides the
 * same handle over HTTP/2 (prior knowledge for http://, ALPN for https://):
 * the batch goes out behind its 5-byte prefix through a read callback (the
 * queue keeps plain messages), grpc-status and RetryInfo come from the
 * trailers (otlp_grpc.c). OK is success; the codes otlp_grpc_retryable()
 * names are retried (after RetryInfo's delay when given); others drop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include "otlp.pb-c.h"
#include "agent/common/version.h"
#include "agent/export/otlp_internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t rng_next(struct otlp_exporter *x)
{
	/* xorshift64*: jitter only, not security. */
	x->rng ^= x->rng >> 12;
	x->rng ^= x->rng << 25;
	x->rng ^= x->rng >> 27;
	return x->rng * 2685821657736338717ull;
}

/* The head request was retried for as long as OTEL_BSP_EXPORT_TIMEOUT allows: dropped, counted. */
static void expire_head(struct otlp_signal *s, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	const struct otlp_batch *b = otlp_ring_at(s, 0);

	x->stats.batches_expired++;
	if (s == &x->sig[OTLP_TRACES])
		x->stats.spans_dropped_expired += b->nspans;
	else
		x->stats.metrics_requests_dropped++;
	otlp_log_limited(&s->rl_drop, now,
			 "%s: gave up on a request (%u spans) after %u attempts in %llu ms "
			 "(OTEL_BSP_EXPORT_TIMEOUT=%u): dropped; %llu requests given up so far",
			 s->name, b->nspans, s->attempt,
			 (unsigned long long)(now - b->first_try_ms), x->cfg.export_timeout_ms,
			 (unsigned long long)x->stats.batches_expired);
	/* s->attempt and retry_at_ms stay: the next request waits out the backoff. */
	otlp_ring_pop(s);
}

/*
 * Schedules the head request again, after Retry-After or a backoff with full
 * jitter; drops it instead when that would start later than the request's
 * deadline (first attempt + OTEL_BSP_EXPORT_TIMEOUT).
 */
static void schedule_retry(struct otlp_signal *s, long retry_after_ms, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	uint64_t cap, lo, delay, first;
	unsigned shift = s->attempt < 20 ? s->attempt : 20;

	s->attempt++;
	x->stats.retries++;
	if (retry_after_ms >= 0) {
		delay = retry_after_ms < OTLP_RETRY_AFTER_MAX_MS ? (uint64_t)retry_after_ms
								 : OTLP_RETRY_AFTER_MAX_MS;
	} else {
		/* Full jitter: uniform in [floor, min(max, base * 2^(attempt-1))]. */
		cap = (uint64_t)x->cfg.retry_base_ms << shift;
		if (cap > x->cfg.retry_max_ms)
			cap = x->cfg.retry_max_ms;
		lo = cap < OTLP_RETRY_MIN_MS ? cap : OTLP_RETRY_MIN_MS;
		delay = lo + rng_next(x) % (cap - lo + 1);
	}
	s->retry_at_ms = now + delay;
	first = s->count ? otlp_ring_at(s, 0)->first_try_ms : 0;
	if (first && s->retry_at_ms > first + x->cfg.export_timeout_ms)
		expire_head(s, now);
}

static void start_transfer(struct otlp_signal *s, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	struct otlp_batch *b = otlp_ring_at(s, 0);
	CURLMcode rc;

	if (!b->first_try_ms)
		b->first_try_ms = now ? now : 1;
	if (s->h2c_old_curl) {
		/*
		 * Reuse the h2c connection the last call left alive; else a fresh
		 * one by prior knowledge (prior knowledge on a reused one fails).
		 */
		s->h2c_reusing = s->h2c_up;
		curl_easy_setopt(s->easy, CURLOPT_HTTP_VERSION,
				 s->h2c_up ? CURL_HTTP_VERSION_2_0
					   : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
		curl_easy_setopt(s->easy, CURLOPT_FRESH_CONNECT, s->h2c_up ? 0L : 1L);
	}
	if (s->grpc) {
		/* The body comes from on_read(): prefix, then the batch as queued. */
		otlp_grpc_prefix(s->grpc_prefix, s->gzip, (uint32_t)b->len);
		s->up_off = 0;
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(b->len + OTLP_GRPC_PREFIX));
	} else {
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, b->body);
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
	}
	otlp_grpc_status_reset(&s->grpc_st);
	s->resp_len = 0;
	s->resp_protobuf = false;
	s->retry_after_ms = -1;
	s->errbuf[0] = '\0';
	rc = curl_multi_add_handle(x->multi, s->easy);
	if (rc != CURLM_OK) {
		otlp_set_error(x, "%s: libcurl: %s", s->name, curl_multi_strerror(rc));
		otlp_log_limited(&s->rl_fail, now, "%s: libcurl: %s; will retry", s->name,
				 curl_multi_strerror(rc));
		schedule_retry(s, -1, now);
		return;
	}
	s->in_flight = true;
}

void otlp_signal_maybe_start(struct otlp_signal *s, uint64_t now)
{
	if (s->enabled && !s->in_flight && s->count && now >= s->retry_at_ms)
		start_transfer(s, now);
}

static bool retryable(long code)
{
	return code == 429 || code == 502 || code == 503 || code == 504;
}

/* What the collector says goes into a log line: one line, printable. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = ' ';
}

/* The collector's words about a failure: google.rpc.Status.message, or the text body. */
static void error_text(struct otlp_signal *s, char *dst, size_t cap)
{
	dst[0] = '\0';
	if (s->resp_protobuf) {
		Meshtrace__Otlp__RpcStatus *st =
			meshtrace__otlp__rpc_status__unpack(NULL, s->resp_len, s->resp);

		if (st) {
			snprintf(dst, cap, "%.200s", st->message ? st->message : "");
			meshtrace__otlp__rpc_status__free_unpacked(st, NULL);
		}
	} else {
		snprintf(dst, cap, "%.*s", (int)(s->resp_len < 200 ? s->resp_len : 200),
			 (const char *)s->resp);
	}
	one_line(dst);
}

static void on_success(struct otlp_signal *s, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	uint32_t nspans = otlp_ring_at(s, 0)->nspans;
	const uint8_t *body = s->resp;
	size_t body_len = s->resp_protobuf ? s->resp_len : 0;
	int64_t rejected = 0;
	char msg[160] = "";
	bool z, malformed = false;

	/* gRPC: the response message behind its prefix; a compressed one (not asked for) is skipped. */
	if (s->grpc && (otlp_grpc_unframe(s->resp, s->resp_len, &body, &body_len, &z) || z))
		body_len = 0;
	if (body_len) {
		if (s == &x->sig[OTLP_TRACES]) {
			Meshtrace__Otlp__ExportTraceServiceResponse *r =
				meshtrace__otlp__export_trace_service_response__unpack(
					NULL, body_len, body);

			malformed = !r;
			if (r && r->partial_success) {
				rejected = r->partial_success->rejected_spans;
				snprintf(msg, sizeof(msg), "%s",
					 r->partial_success->error_message ?: "");
			}
			meshtrace__otlp__export_trace_service_response__free_unpacked(r, NULL);
		} else {
			Meshtrace__Otlp__ExportMetricsServiceResponse *r =
				meshtrace__otlp__export_metrics_service_response__unpack(
					NULL, body_len, body);

			malformed = !r;
			if (r && r->partial_success) {
				rejected = r->partial_success->rejected_data_points;
				snprintf(msg, sizeof(msg), "%s",
					 r->partial_success->error_message ?: "");
			}
			meshtrace__otlp__export_metrics_service_response__free_unpacked(r, NULL);
		}
	}
	one_line(msg);
	if (malformed) {
		/*
		 * 2xx says the collector took the request (OTLP/HTTP: "the server MUST
		 * respond with HTTP 200 OK" on success); a body that is not an Export
		 * response cannot carry partial_success, so nothing counts as rejected.
		 * Sending again would duplicate every span: counted and logged instead.
		 */
		x->stats.responses_malformed++;
		otlp_log_limited(&s->rl_partial, now,
				 "%s: HTTP 2xx from %s with a body that is not an Export response "
				 "(%zu bytes): counted as accepted (%llu such answers)",
				 s->name, s->url, body_len,
				 (unsigned long long)x->stats.responses_malformed);
	}
	if (rejected < 0)
		rejected = 0;
	if (s == &x->sig[OTLP_TRACES]) {
		if (rejected > nspans)
			rejected = nspans;
		x->stats.batches_sent++;
		x->stats.spans_exported += nspans - (uint64_t)rejected;
		x->stats.spans_dropped_rejected += (uint64_t)rejected;
	} else {
		x->stats.metrics_requests_sent++;
		x->stats.metrics_points_rejected += (uint64_t)rejected;
	}
	if (rejected || msg[0]) {
		otlp_set_error(x, "%s: collector rejected %lld: %s", s->name, (long long)rejected,
			       msg);
		otlp_log_limited(&s->rl_partial, now, "%s: collector rejected %lld %s: %s", s->name,
				 (long long)rejected,
				 s == &x->sig[OTLP_TRACES] ? "spans" : "points",
				 msg[0] ? msg : "(no message)");
	}
	if (s->attempt)
		otlp_log_limited(&s->rl_recover, now,
				 "%s: export to %s works again after %u failures", s->name, s->url,
				 s->attempt);
	s->attempt = 0;
	s->retry_at_ms = 0;
	otlp_ring_pop(s);
}

static void on_rejected(struct otlp_signal *s, long code, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	uint32_t nspans = otlp_ring_at(s, 0)->nspans;
	char msg[208];

	error_text(s, msg, sizeof(msg));
	if (s == &x->sig[OTLP_TRACES]) {
		x->stats.batches_failed++;
		x->stats.spans_dropped_rejected += nspans;
	} else {
		x->stats.metrics_requests_dropped++;
	}
	otlp_set_error(x, "%s: HTTP %ld from %s: %s", s->name, code, s->url, msg);
	otlp_log_limited(&s->rl_reject, now,
			 "%s: HTTP %ld from %s: %s; request dropped (not retryable: check the URL, "
			 "headers and the collector's log)",
			 s->name, code, s->url, msg[0] ? msg : "(no message)");
	s->attempt = 0;
	s->retry_at_ms = 0;
	otlp_ring_pop(s);
}

/* A gRPC answer with a status other than OK that is not retried: dropped, counted. */
static void on_grpc_rejected(struct otlp_signal *s, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	const struct otlp_grpc_status *st = &s->grpc_st;
	uint32_t nspans = otlp_ring_at(s, 0)->nspans;
	const char *hint = st->code < 0 ? "not a gRPC answer (no grpc-status): is the endpoint "
					  "an OTLP/gRPC port (4317)?"
					: "not retryable: check the collector's log";

	if (s == &x->sig[OTLP_TRACES]) {
		x->stats.batches_failed++;
		x->stats.spans_dropped_rejected += nspans;
	} else {
		x->stats.metrics_requests_dropped++;
	}
	otlp_set_error(x, "%s: gRPC %s (%d) from %s: %s", s->name, otlp_grpc_code_name(st->code),
		       st->code, s->url, st->message);
	otlp_log_limited(&s->rl_reject, now, "%s: gRPC %s (%d) from %s: %s; request dropped (%s)",
			 s->name, otlp_grpc_code_name(st->code), st->code, s->url,
			 st->message[0] ? st->message : "(no message)", hint);
	s->attempt = 0;
	s->retry_at_ms = 0;
	otlp_ring_pop(s);
}

/* An OTLP/gRPC call answered with HTTP 200: its fate is in grpc-status. */
static void finish_grpc(struct otlp_signal *s, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	const struct otlp_grpc_status *st = &s->grpc_st;

	x->stats.last_grpc_status = st->code;
	if (st->code == OTLP_GRPC_OK) {
		on_success(s, now);
	} else if (otlp_grpc_retryable(st->code, st->retry_delay_ms)) {
		otlp_set_error(x, "%s: gRPC %s (%d) from %s: %s", s->name,
			       otlp_grpc_code_name(st->code), st->code, s->url, st->message);
		otlp_log_limited(&s->rl_fail, now, "%s: gRPC %s (%d) from %s: %s; will retry",
				 s->name, otlp_grpc_code_name(st->code), st->code, s->url,
				 st->message[0] ? st->message : "(no message)");
		schedule_retry(s, st->retry_delay_ms, now);
	} else {
		on_grpc_rejected(s, now);
	}
}

static void finish_transfer(struct otlp_signal *s, CURLcode res, uint64_t now)
{
	struct otlp_exporter *x = s->x;
	curl_off_t up = 0;
	long code = 0, version = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(s->easy, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(s->easy, CURLINFO_HTTP_VERSION, &version);
	curl_multi_remove_handle(x->multi, s->easy);
	s->in_flight = false;
	x->stats.bytes_sent += (uint64_t)up;
	if (s->h2c_old_curl) {
		s->h2c_up = res == CURLE_OK && version == CURL_HTTP_VERSION_2_0;
		/*
		 * The connection died while idle and curl tried HTTP/1.1 with
		 * Upgrade: h2c instead: not the collector's answer, send again.
		 */
		if (res == CURLE_OK && !s->h2c_up && s->h2c_reusing) {
			schedule_retry(s, 0, now);
			return;
		}
	}

	if (res != CURLE_OK) {
		const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(res);

		otlp_set_error(x, "%s: %s: %s", s->name, s->url, why);
		otlp_log_limited(&s->rl_fail, now, "%s: %s: %s; will retry (is the collector up?)",
				 s->name, s->url, why);
		schedule_retry(s, -1, now);
		return;
	}
	x->stats.last_http_status = (int)code;
	if (s->grpc && code == 200) {
		finish_grpc(s, now);
	} else if (code >= 200 && code < 300) {
		on_success(s, now);
	} else if (retryable(code)) {
		otlp_set_error(x, "%s: HTTP %ld from %s", s->name, code, s->url);
		otlp_log_limited(&s->rl_fail, now, "%s: HTTP %ld from %s; will retry", s->name,
				 code, s->url);
		schedule_retry(s, s->retry_after_ms, now);
	} else {
		on_rejected(s, code, now);
	}
}

static void read_completions(struct otlp_exporter *x, uint64_t now)
{
	struct otlp_signal *s;
	CURLMsg *msg;
	int left;

	for (;;) {
		char *priv = NULL;

		msg = curl_multi_info_read(x->multi, &left);
		if (!msg)
			break;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		s = (struct otlp_signal *)(void *)priv;
		if (s)
			finish_transfer(s, msg->data.result, now);
	}
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct otlp_exporter *x = userp;
	struct epoll_event ev = {.data.fd = fd};

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(x->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(x->epfd, EPOLL_CTL_MOD, fd, &ev) && errno == ENOENT)
		epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct otlp_exporter *x = userp;

	(void)multi;
	x->curl_deadline_ms =
		timeout_ms < 0 ? -1 : (int64_t)(mt_now_mono_ms() + (uint64_t)timeout_ms);
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct otlp_signal *s = userp;
	size_t len = size * nmemb;
	size_t keep = sizeof(s->resp) - s->resp_len;

	if (keep > len)
		keep = len;
	memcpy(s->resp + s->resp_len, data, keep);
	s->resp_len += keep;
	return len;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110, section 10.2.3). */
static long parse_retry_after(const char *v)
{
	char *end;
	long secs;
	time_t when;

	if (*v >= '0' && *v <= '9') {
		errno = 0;
		secs = strtol(v, &end, 10);
		if (errno || *end)
			return -1;
		return secs > OTLP_RETRY_AFTER_MAX_MS / 1000 ? OTLP_RETRY_AFTER_MAX_MS
							     : secs * 1000;
	}
	when = curl_getdate(v, NULL);
	if (when == -1)
		return -1;
	when -= time(NULL);
	if (when <= 0)
		return 0;
	return when > OTLP_RETRY_AFTER_MAX_MS / 1000 ? OTLP_RETRY_AFTER_MAX_MS : (long)when * 1000;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct otlp_signal *s = userp;
	size_t len = size * nmemb;
	char v[128];
	size_t vlen;

	if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		/* A new response (after a 1xx): forget the previous one's. */
		s->retry_after_ms = -1;
		s->resp_protobuf = false;
		s->resp_len = 0;
		otlp_grpc_status_reset(&s->grpc_st);
		return len;
	}
	/* Trailers come here too (curl hands them to the header callback). */
	if (s->grpc && otlp_grpc_header(&s->grpc_st, data, len))
		return len;
	if (len > 12 && !strncasecmp(data, "retry-after:", 12)) {
		const char *p = data + 12;

		vlen = len - 12;
		while (vlen && (*p == ' ' || *p == '\t')) {
			p++;
			vlen--;
		}
		while (vlen && (p[vlen - 1] == '\r' || p[vlen - 1] == '\n' || p[vlen - 1] == ' '))
			vlen--;
		if (vlen < sizeof(v)) {
			memcpy(v, p, vlen);
			v[vlen] = '\0';
			s->retry_after_ms = parse_retry_after(v);
		}
	} else if (len > 13 && !strncasecmp(data, "content-type:", 13)) {
		s->resp_protobuf = memmem(data, len, "application/x-protobuf", 22) != NULL;
	}
	return len;
}

/* gRPC request body: the 5-byte prefix, then the head batch. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
	struct otlp_signal *s = userp;
	const struct otlp_batch *b = otlp_ring_at(s, 0);
	size_t cap = size * nitems, total = OTLP_GRPC_PREFIX + b->len, n = 0, chunk;

	while (n < cap && s->up_off < total) {
		if (s->up_off < OTLP_GRPC_PREFIX) {
			chunk = OTLP_GRPC_PREFIX - s->up_off;
			if (chunk > cap - n)
				chunk = cap - n;
			memcpy(buf + n, s->grpc_prefix + s->up_off, chunk);
		} else {
			chunk = total - s->up_off;
			if (chunk > cap - n)
				chunk = cap - n;
			memcpy(buf + n, b->body + (s->up_off - OTLP_GRPC_PREFIX), chunk);
		}
		n += chunk;
		s->up_off += chunk;
	}
	return n;
}

/* curl rewinds the body when it sends it again (a refused HTTP/2 stream). */
static int on_seek(void *userp, curl_off_t offset, int origin)
{
	struct otlp_signal *s = userp;

	if (origin != SEEK_SET || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	s->up_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* The request headers of @s: ours for the protocol, then the user's. NULL on ENOMEM. */
static struct curl_slist *request_headers(const struct otlp_transport_config *t, long timeout_ms)
{
	char line[OTLP_HEADER_NAME_MAX + OTLP_HEADER_VALUE_MAX + 4];
	struct curl_slist *l, *h;
	unsigned i;

	if (t->protocol == OTLP_GRPC) {
		l = curl_slist_append(NULL, "Content-Type: application/grpc");
		if (l)
			l = curl_slist_append(l, "TE: trailers");
		if (l && t->gzip)
			l = curl_slist_append(l, "grpc-encoding: gzip");
		/* The server gives up when we do (ms, at most 8 digits). */
		snprintf(line, sizeof(line), "grpc-timeout: %ldm", timeout_ms);
		if (l)
			l = curl_slist_append(l, line);
	} else {
		l = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
		if (l && t->gzip)
			l = curl_slist_append(l, "Content-Encoding: gzip");
	}
	/* No "Expect: 100-continue" round trip before large bodies. */
	if (l)
		l = curl_slist_append(l, "Expect:");
	for (i = 0; l && i < t->n_headers && i < OTLP_HEADERS_MAX; i++) {
		snprintf(line, sizeof(line), "%s: %s", t->headers[i].name, t->headers[i].value);
		h = curl_slist_append(l, line);
		if (!h)
			curl_slist_free_all(l);
		l = h;
	}
	return l;
}

int otlp_signal_init(struct otlp_exporter *x, struct otlp_signal *s, const char *name,
		     const char *url, const struct otlp_transport_config *t, unsigned nslots)
{
	long timeout = t->timeout_ms;

	s->x = x;
	s->name = name;
	s->url = url;
	s->retry_after_ms = -1;
	if (!url[0])
		return 0;
	s->enabled = true;
	s->gzip = t->gzip;
	s->nslots = nslots;
	s->ring = calloc(nslots, sizeof(*s->ring));
	s->easy = curl_easy_init();
	if (!s->ring || !s->easy)
		return -ENOMEM;

	s->grpc = t->protocol == OTLP_GRPC;
	if (x->cfg.export_timeout_ms && x->cfg.export_timeout_ms < timeout)
		timeout = x->cfg.export_timeout_ms;
	s->headers = request_headers(t, timeout);
	if (!s->headers)
		return -ENOMEM;

	if (curl_easy_setopt(s->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		return -EINVAL;
	curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *)s);
	curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "meshtrace/" MESHTRACE_VERSION);
	curl_easy_setopt(s->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	if (t->ca_file[0] && curl_easy_setopt(s->easy, CURLOPT_CAINFO, t->ca_file) != CURLE_OK)
		return -EINVAL;
	if (t->client_cert[0] &&
	    (curl_easy_setopt(s->easy, CURLOPT_SSLCERT, t->client_cert) != CURLE_OK ||
	     curl_easy_setopt(s->easy, CURLOPT_SSLKEY, t->client_key) != CURLE_OK))
		return -EINVAL;
	if (s->grpc) {
		/* gRPC needs HTTP/2: h2c by prior knowledge, or h2 chosen by ALPN over TLS. */
		bool h2c = strncasecmp(url, "https:", 6) != 0;

		curl_easy_setopt(s->easy, CURLOPT_HTTP_VERSION,
				 h2c ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
				     : CURL_HTTP_VERSION_2TLS);
		/*
		 * libcurl before 8.0 fails every request on a reused prior-knowledge
		 * connection ("Error in the HTTP2 framing layer", curl/curl#10634,
		 * fixed by #10643). There, start_transfer() opens a fresh connection
		 * by prior knowledge, and reuses it with CURL_HTTP_VERSION_2_0.
		 */
		s->h2c_old_curl = h2c && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
		curl_easy_setopt(s->easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(s->easy, CURLOPT_READDATA, s);
		curl_easy_setopt(s->easy, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(s->easy, CURLOPT_SEEKDATA, s);
		curl_easy_setopt(s->easy, CURLOPT_USERAGENT,
				 "meshtrace/" MESHTRACE_VERSION " (OTLP/gRPC, libcurl)");
	}
	return 0;
}

static void signal_free(struct otlp_exporter *x, struct otlp_signal *s)
{
	unsigned i;

	if (s->easy) {
		if (s->in_flight)
			curl_multi_remove_handle(x->multi, s->easy);
		curl_easy_cleanup(s->easy);
	}
	curl_slist_free_all(s->headers);
	for (i = 0; s->ring && i < s->nslots; i++)
		free(s->ring[i].body);
	free(s->ring);
}

void otlp_signal_abort(struct otlp_signal *s)
{
	if (!s->in_flight)
		return;
	curl_multi_remove_handle(s->x->multi, s->easy);
	s->in_flight = false;
}

int otlp_transport_init(struct otlp_exporter *x)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return -EIO;
	x->curl_deadline_ms = -1;
	x->multi = curl_multi_init();
	if (!x->multi)
		return -EIO;
	curl_multi_setopt(x->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(x->multi, CURLMOPT_SOCKETDATA, x);
	curl_multi_setopt(x->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(x->multi, CURLMOPT_TIMERDATA, x);
	return 0;
}

void otlp_transport_free(struct otlp_exporter *x)
{
	unsigned i;

	for (i = 0; i < OTLP_SIGNALS; i++)
		signal_free(x, &x->sig[i]);
	/* After the easy handles: closing cached connections calls on_curl_socket. */
	if (x->multi)
		curl_multi_cleanup(x->multi);
	x->multi = NULL;
}

void otlp_transport_poll_sockets(struct otlp_exporter *x)
{
	struct epoll_event ev[16];
	int n, i, running;

	n = epoll_wait(x->epfd, ev, 16, 0);
	for (i = 0; i < n; i++) {
		int flags = 0;

		if (ev[i].events & EPOLLIN)
			flags |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			flags |= CURL_CSELECT_OUT;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			flags |= CURL_CSELECT_ERR;
		curl_multi_socket_action(x->multi, ev[i].data.fd, flags, &running);
	}
}

void otlp_transport_run(struct otlp_exporter *x, uint64_t now)
{
	int running;

	if (x->curl_deadline_ms >= 0 && now >= (uint64_t)x->curl_deadline_ms) {
		x->curl_deadline_ms = -1;
		curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	read_completions(x, now);
}
