// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP span attributes, stable semantic conventions:
 * https://opentelemetry.io/docs/specs/semconv/http/http-spans/
 *
 * Server span: http.request.method(+_original), url.path, url.query, url.scheme,
 * http.response.status_code, error.type, server.address/port, client.address,
 * network.peer.address/port, network.protocol.name/version.
 * Client span: the same, but url.full in place of url.path and url.query, and
 * no client.address. http.request.body.size / http.response.body.size (opt-in
 * in the semconv) when nonzero.
 *
 * error.type is set when the span stage marked the span ERROR: the status code
 * ("503"), or "_OTHER" when there was no response. HTTP/2 spans are the same,
 * with network.protocol.version "2".
 *
 * gRPC spans follow the RPC conventions instead (semantic-conventions main,
 * after v1.44: https://opentelemetry.io/docs/specs/semconv/rpc/grpc/):
 * rpc.system.name "grpc"; rpc.method "package.Service/Method", or "_OTHER"
 * with rpc.method_original when the server answered UNIMPLEMENTED (the one
 * sign on the wire that a method is not recognised); rpc.status_code the
 * status name ("NOT_FOUND"); error.type that name, or "_OTHER" when the call
 * ended with no status; server.address/port (from :authority), network.peer.*.
 * Which statuses are errors (every non-OK one for a client, UNKNOWN,
 * DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS for a
 * server) is decided by the parser and the span stage (MT_X_ERROR,
 * MT_X_CLIENT_ERROR), and shows here as the span's status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/export/span_attrs.h"
/*
 * The span keeps DNS facts as numbers (dns_qtype, dns_rcode); their names come
 * from the DNS parser, upstream and pure, the one table of them.
 */
#include "agent/protocols/dns.h"

/* RFC 9110 section 9 and RFC 5789 (PATCH): the semconv's "known" methods. */
static const char *const default_methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
};

bool span_attrs_method_known(const char *method, const char (*known)[MT_METHOD_MAX],
			     unsigned n_known)
{
	size_t i;

	if (!n_known) {
		for (i = 0; i < sizeof(default_methods) / sizeof(default_methods[0]); i++)
			if (!strcmp(method, default_methods[i]))
				return true;
		return false;
	}
	for (i = 0; i < n_known; i++)
		if (!strncmp(method, known[i], MT_METHOD_MAX))
			return true;
	return false;
}

void span_attrs_hex(char *dst, const uint8_t *id, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = digits[id[i] >> 4];
		dst[2 * i + 1] = digits[id[i] & 0xf];
	}
	dst[2 * n] = '\0';
}

void span_attrs_copy_span(struct mt_span *d, const struct mt_span *s)
{
	*d = *s;
	d->resource.service_name[sizeof(d->resource.service_name) - 1] = '\0';
	d->resource.exe_name[sizeof(d->resource.exe_name) - 1] = '\0';
	d->name[sizeof(d->name) - 1] = '\0';
	d->method[sizeof(d->method) - 1] = '\0';
	d->path[sizeof(d->path) - 1] = '\0';
	d->query[sizeof(d->query) - 1] = '\0';
	d->scheme[sizeof(d->scheme) - 1] = '\0';
	d->server_address[sizeof(d->server_address) - 1] = '\0';
	d->client_address[sizeof(d->client_address) - 1] = '\0';
	d->peer_address[sizeof(d->peer_address) - 1] = '\0';
	d->vip_address[sizeof(d->vip_address) - 1] = '\0';
	d->tracestate[sizeof(d->tracestate) - 1] = '\0';
}

static void add_attr(struct span_attrs *out, const char *key, uint32_t key_len, uint8_t type,
		     const char *str, int64_t num, bool local)
{
	struct span_attr *a;

	if (out->n >=
	    SPAN_ATTRS_MAX) { /* a bound, not a case: the list is sized for the most a span adds */
		out->dropped++;
		return;
	}
	a = &out->attr[out->n++];
	a->key = key;
	a->key_len = key_len;
	a->type = type;
	a->str = str;
	a->num = num;
	a->local = local;
}

/* Keys are string literals: their length is known without strlen(). */
#define add_str(out, key, val, local) \
	add_attr(out, key "", sizeof(key) - 1, SPAN_ATTR_STR, val, 0, local)
#define add_int(out, key, val) \
	add_attr(out, key "", sizeof(key) - 1, SPAN_ATTR_INT, NULL, val, false)

static bool is_ipv6(const char *addr)
{
	return strchr(addr, ':') != NULL;
}

static void build_url_full(struct span_attrs *out, const struct mt_span *s, const char *scheme)
{
	const char *host = s->server_address[0] ? s->server_address : s->peer_address;
	bool bracket = !s->server_address[0] && is_ipv6(host);
	unsigned default_port = !strcmp(scheme, "https") ? 443 : 80;
	char port[8] = "";
	const char *path = s->path[0] == '/' ? s->path : "";

	const char *parts[9];
	size_t off = 0, room = sizeof(out->url_full) - 1;

	/* Per client span: pieces copied in turn, no printf machinery (it showed in perf). */
	if (s->server_port && s->server_port != default_port) {
		char digits[6];
		int n = 0;
		unsigned v = s->server_port;

		do
			digits[n++] = (char)('0' + v % 10);
		while ((v /= 10) && n < 5);
		port[0] = ':';
		for (int i = 0; i < n; i++)
			port[1 + i] = digits[n - 1 - i];
		port[1 + n] = '\0';
	}
	parts[0] = scheme;
	parts[1] = "://";
	parts[2] = bracket ? "[" : "";
	parts[3] = host;
	parts[4] = bracket ? "]" : "";
	parts[5] = port;
	parts[6] = path;
	parts[7] = s->query[0] ? "?" : "";
	parts[8] = s->query;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t n = strlen(parts[i]);

		if (n > room - off)
			n = room - off;
		memcpy(out->url_full + off, parts[i], n);
		off += n;
	}
	out->url_full[off] = '\0';
}

/* gRPC status names by code (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
static const char *const grpc_status_names[] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

/* The name of the gRPC status in @text (its number), NULL when there is none; "_OTHER" if unknown. */
static const char *grpc_status_name(const char *text)
{
	char *end;
	long code;

	if (!text[0])
		return NULL;
	code = strtol(text, &end, 10);
	if (*end || code < 0 || code >= (long)(sizeof(grpc_status_names) / sizeof(char *)))
		return "_OTHER";
	return grpc_status_names[code];
}

/*
 * network.peer.*; a call through a translated address (DNAT) paired on this
 * node also names the address its client dialled: meshtrace.vip.* (no
 * semantic convention has it), on both sides.
 */
static void add_peer(struct span_attrs *out, const struct mt_span *s)
{
	if (s->peer_address[0]) {
		add_str(out, "network.peer.address", s->peer_address, false);
		if (s->peer_port)
			add_int(out, "network.peer.port", s->peer_port);
	}
	if (s->nat_paired && s->vip_address[0]) {
		add_str(out, "meshtrace.vip.address", s->vip_address, false);
		if (s->vip_port)
			add_int(out, "meshtrace.vip.port", s->vip_port);
	}
}

static void build_grpc(struct span_attrs *out, const struct mt_span *s)
{
	const char *status = grpc_status_name(s->status_text);
	bool unimplemented = status && !strcmp(status, "UNIMPLEMENTED");

	add_str(out, "rpc.system.name", "grpc", false);
	if (s->operation[0] && !unimplemented) {
		add_str(out, "rpc.method", s->operation, false);
	} else {
		add_str(out, "rpc.method", "_OTHER", false);
		if (s->operation[0])
			add_str(out, "rpc.method_original", s->operation, false);
	}
	if (status)
		add_str(out, "rpc.status_code", status, false);
	if (s->status == MT_STATUS_ERROR)
		add_str(out, "error.type", status ? status : "_OTHER", false);
	if (s->server_address[0]) {
		add_str(out, "server.address", s->server_address, false);
		if (s->server_port)
			add_int(out, "server.port", s->server_port);
	}
	add_peer(out, s);
}

/*
 * Database spans (https://opentelemetry.io/docs/specs/semconv/database/database-spans/,
 * .../database/redis/, .../database/postgresql/, .../database/mysql/): db.system.name;
 * db.operation.name (the command, or the SQL's first keyword); db.namespace (the
 * database, or Redis's index after SELECT); db.query.text, already sanitised by the
 * parser (none for Redis and memcached: their arguments are values);
 * db.response.status_code (SQLSTATE, MySQL error number, Redis error prefix,
 * memcached error word) and error.type, the same code or "_OTHER"; server.*,
 * client.address on SERVER spans, network.peer.*. NULL for other protocols.
 */
static const char *db_system(uint8_t protocol)
{
	switch (protocol) {
	case MT_PROTO_REDIS:
		return "redis";
	case MT_PROTO_POSTGRES:
		return "postgresql";
	case MT_PROTO_MYSQL:
		return "mysql";
	case MT_PROTO_MEMCACHED:
		return "memcached";
	default:
		return NULL;
	}
}

static void build_db(struct span_attrs *out, const struct mt_span *s, const char *system)
{
	add_str(out, "db.system.name", system, false);
	if (s->operation[0])
		add_str(out, "db.operation.name", s->operation, false);
	if (s->db_namespace[0])
		add_str(out, "db.namespace", s->db_namespace, false);
	if (s->query_text[0])
		add_str(out, "db.query.text", s->query_text, false);
	if (s->status_text[0])
		add_str(out, "db.response.status_code", s->status_text, false);
	if (s->status == MT_STATUS_ERROR)
		add_str(out, "error.type", s->status_text[0] ? s->status_text : "_OTHER", false);
	if (s->server_address[0]) {
		add_str(out, "server.address", s->server_address, false);
		if (s->server_port)
			add_int(out, "server.port", s->server_port);
	}
	if (s->kind == MT_SPAN_SERVER && s->client_address[0])
		add_str(out, "client.address", s->client_address, false);
	add_peer(out, s);
}

/*
 * DNS client spans (agent/trace/dnsspans.c). The semantic conventions define only
 * dns.question.name (https://opentelemetry.io/docs/specs/semconv/dns/) and
 * error.type with getaddrinfo's codes; the query type and the response code
 * use the Elastic Common Schema's names, the answer count is ours:
 * dns.question.name, dns.question.type ("AAAA"), dns.response_code
 * ("NXDOMAIN"), dns.answer_count (ANCOUNT), error.type when the span failed
 * ("timeout" with no response, SERVFAIL "try_again", any other code
 * "no_recovery"; NXDOMAIN is not a failure, see dnsspans.c), server.address
 * and server.port (the resolver), network.transport "udp", network.peer.*.
 */
static void build_dns(struct span_attrs *out, const struct mt_span *s)
{
	const char *qtype = dns_type_name(s->dns_qtype, out->dns_type, sizeof(out->dns_type));
	bool answered = s->status_text[0] != '\0';

	add_str(out, "dns.question.name", s->query_text, false);
	add_str(out, "dns.question.type", qtype, qtype == out->dns_type);
	if (answered) {
		add_str(out, "dns.response_code", s->status_text, false);
		add_int(out, "dns.answer_count", s->dns_answers);
	}
	if (s->status == MT_STATUS_ERROR) {
		const char *type = "no_recovery";

		if (!answered)
			type = "timeout";
		else if (s->dns_rcode == DNS_RCODE_SERVFAIL)
			type = "try_again";
		add_str(out, "error.type", type, false);
	}
	if (s->server_address[0]) {
		add_str(out, "server.address", s->server_address, false);
		if (s->server_port)
			add_int(out, "server.port", s->server_port);
	}
	add_str(out, "network.transport", (s->flags & MT_X_TCP) ? "tcp" : "udp", false);
	add_peer(out, s);
}

void span_attrs_build(struct span_attrs *out, const struct mt_span *s,
		      const char (*known)[MT_METHOD_MAX], unsigned n_known)
{
	bool server = s->kind == MT_SPAN_SERVER;
	const char *scheme = s->scheme[0] ? s->scheme : "http";

	out->n = 0;
	out->dropped = 0;
	if (s->protocol == MT_PROTO_GRPC) {
		build_grpc(out, s);
		return;
	}
	if (s->protocol == MT_PROTO_DNS) {
		build_dns(out, s);
		return;
	}
	if (db_system(s->protocol)) {
		build_db(out, s, db_system(s->protocol));
		return;
	}
	if (s->method[0] && span_attrs_method_known(s->method, known, n_known)) {
		add_str(out, "http.request.method", s->method, false);
	} else {
		add_str(out, "http.request.method", "_OTHER", false);
		if (s->method[0])
			add_str(out, "http.request.method_original", s->method, false);
	}

	if (server) {
		add_str(out, "url.path", s->path, false);
		if (s->query[0])
			add_str(out, "url.query", s->query, false);
	} else {
		build_url_full(out, s, scheme);
		add_str(out, "url.full", out->url_full, true);
	}
	if (server) /* Required on server spans; opt-in on client spans, whose url.full has it */
		add_str(out, "url.scheme", scheme, false);

	if (s->http_status)
		add_int(out, "http.response.status_code", s->http_status);
	if (s->status == MT_STATUS_ERROR) {
		if (s->http_status)
			snprintf(out->error_type, sizeof(out->error_type), "%u", s->http_status);
		else
			snprintf(out->error_type, sizeof(out->error_type), "_OTHER");
		add_str(out, "error.type", out->error_type, true);
	}

	if (s->server_address[0]) {
		add_str(out, "server.address", s->server_address, false);
		if (s->server_port)
			add_int(out, "server.port", s->server_port);
	} else if (!server && s->server_port) {
		add_int(out, "server.port", s->server_port);
	}
	if (server && s->client_address[0])
		add_str(out, "client.address", s->client_address, false);
	add_peer(out, s);

	/* network.protocol.name is only required when it is not "http". */
	if (s->protocol == MT_PROTO_HTTP1) {
		out->protocol_version[0] = '1';
		out->protocol_version[1] = '.';
		out->protocol_version[2] = (char)('0' + (s->http_minor < 10 ? s->http_minor : 9));
		out->protocol_version[3] = '\0';
		add_str(out, "network.protocol.version", out->protocol_version, true);
	} else if (s->protocol == MT_PROTO_HTTP2) {
		add_str(out, "network.protocol.version", "2", false);
	}
	if (s->req_body_bytes)
		add_int(out, "http.request.body.size", (int64_t)s->req_body_bytes);
	if (s->resp_body_bytes)
		add_int(out, "http.response.body.size", (int64_t)s->resp_body_bytes);
}
