// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agent/trace/spans.h"
#include "agent/common/traceparent.h"
#include "agent/common/util.h"
#include "agent/identity/k8s.h"
#include "agent/identity/k8s_pods.h"

struct span_builder {
	struct span_opts opts;
	struct identity *id;
	span_fn fn;
	void *ctx;
	int64_t clock_offset_ns;
	struct linker *linker;
	struct span_stats stats;
	struct mt_span span; /* built here, handed out by pointer */
};

struct span_builder *span_builder__new(const struct span_opts *opts, struct identity *id,
				       span_fn fn, void *ctx)
{
	struct span_builder *b = calloc(1, sizeof(*b));
	uint64_t seed[4];
	struct timespec ts;

	if (!b)
		return NULL;
	b->opts = *opts;
	b->id = id;
	b->fn = fn;
	b->ctx = ctx;
	if (getrandom(seed, sizeof(seed), 0) != sizeof(seed)) {
		/* No entropy source: ids need only be unique, not secret. */
		clock_gettime(CLOCK_REALTIME, &ts);
		seed[0] = (uint64_t)ts.tv_nsec ^ 0x9E3779B97F4A7C15ull;
		seed[1] = (uint64_t)ts.tv_sec * 0xBF58476D1CE4E5B9ull;
		seed[2] = (uint64_t)getpid() ^ 0x94D049BB133111EBull;
		seed[3] = 0x2545F4914F6CDD1Dull;
	}
	b->linker = linker__new(seed);
	if (!b->linker) {
		free(b);
		return NULL;
	}
	return b;
}

void span_builder__free(struct span_builder *b)
{
	if (!b)
		return;
	linker__free(b->linker);
	free(b);
}

void span_builder_on_io(struct span_builder *b, uint32_t tid, uint32_t pid, uint64_t sock,
			bool connect)
{
	if (connect)
		linker_on_connect(b->linker, tid, pid, sock);
	else
		linker_on_io(b->linker, tid, sock);
}

void span_builder_on_process_gone(struct span_builder *b, uint32_t pid)
{
	linker_forget_process(b->linker, pid);
}

void span_builder_on_xctx(struct span_builder *b, const struct mt_xctx_event *ev)
{
	linker_on_xctx(b->linker, ev);
}

void span_builder_expire(struct span_builder *b, uint64_t now_ns)
{
	linker_expire(b->linker, now_ns);
}

void span_builder_set_clock(struct span_builder *b, int64_t offset_ns)
{
	b->clock_offset_ns = offset_ns;
}

void mt_format_addr(const uint8_t addr[16], char *out, size_t outlen)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0 && outlen >= 16) {
		/* Per span, twice: no printf machinery for four small numbers. */
		char *p = out;

		for (int i = 12; i < 16; i++) {
			unsigned v = addr[i];

			if (v >= 100)
				*p++ = (char)('0' + v / 100);
			if (v >= 10)
				*p++ = (char)('0' + v / 10 % 10);
			*p++ = (char)('0' + v % 10);
			*p++ = i < 15 ? '.' : '\0';
		}
	} else if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
		if (outlen)
			out[0] = '\0'; /* no room: callers pass MT_ADDR_STR_MAX */
	} else if (!inet_ntop(AF_INET6, addr, out, (socklen_t)outlen)) {
		snprintf(out, outlen, "?");
	}
}

static bool known_method(const char *m)
{
	static const char *const methods[] = {"GET",	 "HEAD",    "POST",  "PUT",  "DELETE",
					      "CONNECT", "OPTIONS", "TRACE", "PATCH"};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i]) == 0)
			return true;
	return false;
}

/* Splits a request-target into path and query (RFC 9112 3.2: origin or absolute form). */
static void split_target(const char *target, char *path, size_t pathlen, char *query,
			 size_t querylen)
{
	const char *p = target;
	const char *q;
	size_t n;

	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		p = strstr(p, "://") + 3;
		p += strcspn(p, "/?#");
	}
	n = strcspn(p, "?#");
	if (n >= pathlen)
		n = pathlen - 1;
	memcpy(path, p, n);
	path[n] = '\0';
	if (!path[0] && p[0] != '*')
		snprintf(path, pathlen, "/");
	query[0] = '\0';
	q = strchr(p, '?');
	if (q) {
		n = strcspn(q + 1, "#");
		if (n >= querylen)
			n = querylen - 1;
		memcpy(query, q + 1, n);
		query[n] = '\0';
	}
}

/* Host header "name[:port]" or "[v6][:port]" into address and port (0 if absent). */
static void split_host(const char *host, char *addr, size_t addrlen, uint16_t *port)
{
	const char *colon;
	size_t n;

	*port = 0;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');

		n = close ? (size_t)(close - host - 1) : strlen(host + 1);
		if (n >= addrlen)
			n = addrlen - 1;
		memcpy(addr, host + 1, n);
		addr[n] = '\0';
		colon = close && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strrchr(host, ':');
		n = colon ? (size_t)(colon - host) : strlen(host);
		if (n >= addrlen)
			n = addrlen - 1;
		memcpy(addr, host, n);
		addr[n] = '\0';
	}
	if (colon) {
		char *end;
		long v = strtol(colon + 1, &end, 10);

		if (end != colon + 1 && *end == '\0' && v > 0 && v < 65536)
			*port = (uint16_t)v;
	}
}

void span_builder_on_exchange(struct span_builder *b, const struct conn_info *ci,
			      const struct mt_exchange *x)
{
	struct mt_span *s = &b->span;
	const struct mt_resource *res;
	struct link_ids ids;
	uint64_t end_ns;
	bool server;

	if (ci->role == CONN_ROLE_UNKNOWN) {
		if (x->stage == MT_STAGE_DONE)
			b->stats.role_unknown++;
		return;
	}
	if (x->stage == MT_STAGE_REQUEST) {
		linker_on_request(b->linker, ci, x);
		return;
	}
	linker_on_done(b->linker, ci, x, &ids);
	if (x->flags & MT_X_ABORTED)
		return; /* state was lost */
	server = ci->role == CONN_ROLE_SERVER;
	memset(s, 0, sizeof(*s));
	/* The process's SDK reports this side: it still counts, but is not sent twice. */
	s->sdk_reported = !ids.emit;
	memcpy(s->trace_id, ids.trace_id, sizeof(s->trace_id));
	memcpy(s->span_id, ids.span_id, sizeof(s->span_id));
	memcpy(s->parent_span_id, ids.parent_span_id, sizeof(s->parent_span_id));
	s->trace_remote = ids.remote;
	s->trace_flags = ids.trace_flags;
	s->local_root = ids.local_root;
	if (x->traceparent[0]) {
		uint8_t trace_id[16], parent_id[8];

		/* In the trace the request carried: its tracestate belongs to it too. */
		if (mt_traceparent_decode(x->traceparent, trace_id, parent_id, NULL) &&
		    memcmp(trace_id, s->trace_id, sizeof(trace_id)) == 0) {
			b->stats.joined_traceparent++;
			mt_strlcpy(s->tracestate, x->tracestate, sizeof(s->tracestate));
		}
	}

	s->kind = server ? MT_SPAN_SERVER : MT_SPAN_CLIENT;
	s->protocol = x->protocol;
	s->http_minor = x->version_minor;
	s->http_status = x->status;
	s->flags = x->flags;
	end_ns = x->resp_end_ns ? x->resp_end_ns : x->req_end_ns;
	if (end_ns < x->req_start_ns)
		end_ns = x->req_start_ns;
	s->start_unix_ns = (uint64_t)((int64_t)x->req_start_ns + b->clock_offset_ns);
	s->end_unix_ns = (uint64_t)((int64_t)end_ns + b->clock_offset_ns);
	s->req_body_bytes = x->req_body_bytes;
	s->resp_body_bytes = x->resp_body_bytes;

	if (x->status >= 500 || (!server && x->status >= 400) ||
	    (x->flags & (MT_X_NO_RESPONSE | MT_X_ERROR)) ||
	    (!server && (x->flags & MT_X_CLIENT_ERROR)))
		s->status = MT_STATUS_ERROR;

	mt_strlcpy(s->method, x->method, sizeof(s->method));
	mt_strlcpy(s->operation, x->operation, sizeof(s->operation));
	mt_strlcpy(s->db_namespace, x->db_namespace, sizeof(s->db_namespace));
	mt_strlcpy(s->query_text, x->query_text, sizeof(s->query_text));
	mt_strlcpy(s->status_text, x->status_text, sizeof(s->status_text));
	s->dns_qtype = x->dns_qtype;
	s->dns_answers = x->dns_answers;
	s->dns_rcode = x->dns_rcode;
	if (x->protocol == MT_PROTO_HTTP1 || x->protocol == MT_PROTO_HTTP2)
		mt_strlcpy(s->name, known_method(x->method) ? x->method : "HTTP", sizeof(s->name));
	else if (x->protocol == MT_PROTO_GRPC && strcmp(x->status_text, "12") == 0)
		mt_strlcpy(s->name, "grpc", sizeof(s->name)); /* UNIMPLEMENTED: rpc.method _OTHER */
	else if (x->operation[0])
		mt_strlcpy(s->name, x->operation, sizeof(s->name));
	else
		mt_strlcpy(s->name, l7_protocol_name(x->protocol), sizeof(s->name));
	split_target(x->target, s->path, sizeof(s->path), s->query, sizeof(s->query));
	if (!b->opts.record_query)
		s->query[0] = '\0';
	if (ci->tls)
		memcpy(s->scheme, "https", sizeof("https"));
	else
		memcpy(s->scheme, "http", sizeof("http"));

	mt_format_addr(ci->tuple.raddr, s->peer_address, sizeof(s->peer_address));
	s->peer_port = ci->tuple.rport;
	s->sock = ci->sock;
	s->tuple = ci->tuple;
	if (ids.nat.paired) {
		s->nat_paired = 1;
		memcpy(s->vip_addr, ids.nat.vip, 16);
		s->vip_port = ids.nat.vip_port;
		memcpy(s->nat_server_addr, ids.nat.server, 16);
		s->nat_server_port = ids.nat.server_port;
		mt_format_addr(ids.nat.vip, s->vip_address, sizeof(s->vip_address));
	}
	if (server)
		s->nat_client_port = ids.nat.client_port;
	if (x->host[0])
		split_host(x->host, s->server_address, sizeof(s->server_address), &s->server_port);
	if (server) {
		mt_strlcpy(s->client_address, s->peer_address, sizeof(s->client_address));
		s->client_port = ci->tuple.rport;
		if (!s->server_address[0])
			mt_format_addr(ci->tuple.laddr, s->server_address,
				       sizeof(s->server_address));
		if (!s->server_port)
			s->server_port = ci->tuple.lport;
	} else {
		if (!s->server_address[0])
			mt_strlcpy(s->server_address, s->peer_address, sizeof(s->server_address));
		if (!s->server_port)
			s->server_port = ci->tuple.rport;
		/* server.* stay what it dialled; the network peer is the server it reached. */
		if (s->nat_paired) {
			mt_format_addr(s->nat_server_addr, s->peer_address,
				       sizeof(s->peer_address));
			s->peer_port = s->nat_server_port;
		}
	}

	res = identity_lookup(b->id, ci->pid, ci->comm, x->req_start_ns);
	s->resource = *res;
	if (!server) /* a pod of this node at the far end: its names, through a handle */
		s->peer_pod = k8s_pods_find(k8s_pods_of(identity_k8s(b->id)), ci->tuple.raddr,
					    x->req_start_ns, &s->peer_pod_gen);

	if (s->sdk_reported) {
		b->stats.sdk_reported++;
	} else {
		b->stats.spans++;
		if (server)
			b->stats.server++;
		else
			b->stats.client++;
	}
	if (b->fn)
		b->fn(b->ctx, s);
}

void span_builder_stats(const struct span_builder *b, struct span_stats *out)
{
	*out = b->stats;
	linker_stats(b->linker, &out->link);
}
