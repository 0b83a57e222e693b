// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics: one list of series (graph, http.*, health) built per export, then
 * written as OTLP protobuf or as Prometheus text. The list is rebuilt from
 * the live tables each time, so the two encodings cannot drift apart.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/export/metrics.h"
#include "agent/protocols/l7.h"
#include "otlp.pb-c.h"
#include "agent/common/util.h"
#include "agent/export/span_attrs.h"
#include "agent/common/utf8.h"

#define ATTRS_MAX    8
#define SERIES_BKTS  (METRICS_SERIES_MAX * 2)
#define ARENA_CHUNK  (256u << 10)
#define HIST_BKT_MAX 17 /* the largest bound list + 1 */

const double metrics_http_bounds[METRICS_HTTP_BOUNDS] = {
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
};

enum mtype {
	T_SUM = 0,
	T_GAUGE = 1,
	T_HIST = 2,
};

enum family_id {
	F_SG_TOTAL = 0,
	F_SG_FAILED,
	F_SG_SERVER,
	F_SG_CLIENT,
	F_EDGE_BYTES,
	F_EDGE_CONNECTS,
	F_EDGE_CONNECT_FAILURES,
	F_EDGE_RETRANSMITS,
	F_EDGE_CONNECT_DURATION,
	F_HTTP_SERVER,
	F_HTTP_CLIENT,
	F_HEALTH0, /* + enum metrics_health_family */
	F__MAX = F_HEALTH0 + MH__MAX,
};

struct family {
	const char *name;
	const char *unit;
	const char *help;
	uint8_t type; /* enum mtype */
	const double *bounds;
	unsigned nbounds;
};

static const struct family families[F__MAX] = {
	[F_SG_TOTAL] = {"traces_service_graph_request_total", "",
			"Total count of requests between two nodes", T_SUM},
	[F_SG_FAILED] = {"traces_service_graph_request_failed_total", "",
			 "Total count of failed requests between two nodes", T_SUM},
	[F_SG_SERVER] = {"traces_service_graph_request_server", "s",
			 "Time for a request between two nodes as seen from the server", T_HIST,
			 graph_latency_bounds, GRAPH_LATENCY_BOUNDS},
	[F_SG_CLIENT] = {"traces_service_graph_request_client", "s",
			 "Time for a request between two nodes as seen from the client", T_HIST,
			 graph_latency_bounds, GRAPH_LATENCY_BOUNDS},
	[F_EDGE_BYTES] = {"meshtrace.graph.edge.bytes", "By",
			  "Bytes between two nodes (direction sent: client to server)", T_SUM},
	[F_EDGE_CONNECTS] = {"meshtrace.graph.edge.connects", "{connection}",
			     "TCP connections established between two nodes", T_SUM},
	[F_EDGE_CONNECT_FAILURES] = {"meshtrace.graph.edge.connect_failures", "{connection}",
				     "TCP connects that failed (refused, timed out)", T_SUM},
	[F_EDGE_RETRANSMITS] = {"meshtrace.graph.edge.retransmits", "{segment}",
				"TCP segments retransmitted between two nodes", T_SUM},
	[F_EDGE_CONNECT_DURATION] = {"meshtrace.graph.edge.connect.duration", "s",
				     "TCP connect latency between two nodes", T_HIST,
				     graph_connect_bounds, GRAPH_CONNECT_BOUNDS},
	[F_HTTP_SERVER] = {"http.server.request.duration", "s", "Duration of HTTP server requests.",
			   T_HIST, metrics_http_bounds, METRICS_HTTP_BOUNDS},
	[F_HTTP_CLIENT] = {"http.client.request.duration", "s", "Duration of HTTP client requests.",
			   T_HIST, metrics_http_bounds, METRICS_HTTP_BOUNDS},
	[F_HEALTH0 + MH_KERNEL_EVENTS] = {"meshtrace.kernel.events", "{event}",
					  "Events the kernel programs emitted, by kind", T_SUM},
	[F_HEALTH0 + MH_KERNEL_DROPS] = {"meshtrace.kernel.drops", "{event}",
					 "Events lost or cut short in the kernel, by reason",
					 T_SUM},
	[F_HEALTH0 + MH_KERNEL_WAKEUPS] = {"meshtrace.kernel.wakeups", "{wakeup}",
					   "Early wake-ups of the agent by the kernel", T_SUM},
	[F_HEALTH0 + MH_KERNEL_CAPTURED] = {"meshtrace.kernel.captured", "By",
					    "Payload bytes copied out of the kernel", T_SUM},
	[F_HEALTH0 + MH_EVENTS] = {"meshtrace.events", "{event}",
				   "Events user space read from the ring buffer", T_SUM},
	[F_HEALTH0 + MH_DROPS] = {"meshtrace.drops", "{item}",
				  "Items dropped or not counted in user space, by stage", T_SUM},
	[F_HEALTH0 + MH_SPANS] = {"meshtrace.spans", "{span}", "Spans made, by kind", T_SUM},
	[F_HEALTH0 + MH_SPANS_EXPORTED] = {"meshtrace.spans.exported", "{span}",
					   "Spans the collector accepted", T_SUM},
	[F_HEALTH0 + MH_EXPORT_FAILURES] = {"meshtrace.export.failures", "{request}",
					    "Export requests given up, by signal", T_SUM},
	[F_HEALTH0 + MH_EXPORT_RETRIES] = {"meshtrace.export.retries", "{request}",
					   "Export attempts scheduled again after a failure",
					   T_SUM},
	[F_HEALTH0 + MH_QUEUE_DEPTH] = {"meshtrace.queue.depth", "{item}",
					"Items waiting in a queue", T_GAUGE},
	[F_HEALTH0 + MH_TABLE_USAGE] = {"meshtrace.table.usage", "{entry}",
					"Entries in use in a bounded table", T_GAUGE},
	[F_HEALTH0 + MH_TABLE_CAPACITY] = {"meshtrace.table.capacity", "{entry}",
					   "Size of a bounded table", T_GAUGE},
	[F_HEALTH0 + MH_SPAN_UPDATE_NS] = {"meshtrace.graph.span.cost", "ns",
					   "Mean time the graph stage spends on one span", T_GAUGE},
	[F_HEALTH0 + MH_PROCESS_CPU] = {"process.cpu.time", "s", "CPU time the agent used, by mode",
					T_SUM},
	[F_HEALTH0 + MH_PROCESS_MEMORY] = {"process.memory.usage", "By",
					   "Resident memory of the agent", T_GAUGE},
	[F_HEALTH0 + MH_LINKS] = {"meshtrace.trace.links", "{span}",
				  "Trace linking outcomes: how spans got (or did not get) a parent",
				  T_SUM},
};

struct http_series {
	uint8_t used;
	uint8_t server; /* http.server.* (else client) */
	uint8_t overflow;
	uint8_t _pad;
	uint16_t status;
	uint16_t server_port;
	uint32_t hnext;
	char service[MT_SERVICE_MAX];
	char method[MT_METHOD_MAX];
	char error_type[8];
	char version[8];
	char scheme[8];
	char server_address[MT_HOST_MAX];
	uint64_t count;
	double sum;
	uint64_t buckets[METRICS_HTTP_BOUNDS + 1];
};

struct metrics {
	struct otlp_config cfg;
	uint64_t start_unix_ns;
	struct http_series *series;
	uint32_t nseries;
	uint32_t *buckets;
	struct metrics_stats stats;
};

/* ---- the series list of one export ---- */

struct attr {
	const char *key;
	const char *str; /* NULL: num is the value */
	int64_t num;
};

struct point {
	uint16_t family;
	uint8_t nattrs;
	const char *resource; /* service.name of the resource; NULL: the agent's */
	struct attr attrs[ATTRS_MAX];
	double value;
	uint64_t count;
	double sum;
	const uint64_t *buckets; /* nbounds + 1 */
	uint32_t order;		 /* insertion order, for stable sorting */
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	uint8_t data[];
};

struct series_list {
	struct point *pts;
	size_t n;
	size_t cap;
	struct arena_chunk *chunks;
	bool oom;
};

static void *arena_alloc(struct series_list *l, size_t n)
{
	struct arena_chunk *c = l->chunks;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->used + n > ARENA_CHUNK) {
		size_t sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		c = calloc(1, sizeof(*c) + sz);
		if (!c) {
			l->oom = true;
			return NULL;
		}
		c->next = l->chunks;
		l->chunks = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

static void list_free(struct series_list *l)
{
	while (l->chunks) {
		struct arena_chunk *c = l->chunks;

		l->chunks = c->next;
		free(c);
	}
	free(l->pts);
}

static struct point *add_point(struct series_list *l, uint16_t family, const char *resource)
{
	struct point *p;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct point *np = realloc(l->pts, cap * sizeof(*np));

		if (!np) {
			l->oom = true;
			return NULL;
		}
		l->pts = np;
		l->cap = cap;
	}
	p = &l->pts[l->n];
	memset(p, 0, sizeof(*p));
	p->family = family;
	p->resource = resource;
	p->order = (uint32_t)l->n++;
	return p;
}

static void attr_str(struct point *p, const char *key, const char *val)
{
	if (p->nattrs < ATTRS_MAX)
		p->attrs[p->nattrs++] = (struct attr){key, val, 0};
}

static void attr_int(struct point *p, const char *key, int64_t val)
{
	if (p->nattrs < ATTRS_MAX)
		p->attrs[p->nattrs++] = (struct attr){key, NULL, val};
}

static void edge_attrs(struct point *p, const struct graph *g, const struct graph_edge *e)
{
	attr_str(p, "client", graph_node_at(g, e->client)->name);
	attr_str(p, "server", graph_node_at(g, e->server)->name);
	attr_str(p, "connection_type", graph_conn_type_name(e->connection_type));
}

static void hist_point(struct series_list *l, uint16_t f, const struct graph *g,
		       const struct graph_edge *e, const struct graph_hist *h)
{
	struct point *p = add_point(l, f, NULL);

	if (!p)
		return;
	edge_attrs(p, g, e);
	p->count = h->count;
	p->sum = h->sum;
	p->buckets = h->buckets;
}

static void sum_point(struct series_list *l, uint16_t f, const char *resource, double v,
		      const struct graph *g, const struct graph_edge *e)
{
	struct point *p = add_point(l, f, resource);

	if (!p)
		return;
	if (e)
		edge_attrs(p, g, e);
	p->value = v;
}

static bool same_pair(const struct graph_edge *a, const struct graph_edge *b)
{
	return a->client == b->client && a->server == b->server &&
	       a->connection_type == b->connection_type;
}

static void graph_points(struct series_list *l, const struct graph *g)
{
	uint32_t n = graph_edge_count(g);

	/*
	 * The servicegraph series are per (client, server, connection_type): edges
	 * of one pair over several protocols are summed.
	 */
	for (uint32_t i = 0; i < n; i++) {
		const struct graph_edge *e = graph_edge_at(g, i);
		struct graph_hist *srv, *cli;
		uint64_t req = 0, failed = 0;
		bool seen = false;

		for (uint32_t j = 0; j < i && !seen; j++)
			seen = same_pair(graph_edge_at(g, j), e);
		if (seen)
			continue;
		srv = arena_alloc(l, sizeof(*srv));
		cli = arena_alloc(l, sizeof(*cli));
		if (!srv || !cli)
			return;
		for (uint32_t j = i; j < n; j++) {
			const struct graph_edge *o = graph_edge_at(g, j);

			if (!same_pair(o, e))
				continue;
			req += o->requests;
			failed += o->failed;
			srv->count += o->server_latency.count;
			srv->sum += o->server_latency.sum;
			cli->count += o->client_latency.count;
			cli->sum += o->client_latency.sum;
			for (unsigned b = 0; b <= GRAPH_LATENCY_BOUNDS; b++) {
				srv->buckets[b] += o->server_latency.buckets[b];
				cli->buckets[b] += o->client_latency.buckets[b];
			}
		}
		sum_point(l, F_SG_TOTAL, NULL, (double)req, g, e);
		sum_point(l, F_SG_FAILED, NULL, (double)failed, g, e);
		if (srv->count)
			hist_point(l, F_SG_SERVER, g, e, srv);
		if (cli->count)
			hist_point(l, F_SG_CLIENT, g, e, cli);
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct graph_edge *e = graph_edge_at(g, i);
		const char *proto = l7_protocol_name(e->protocol);
		struct point *p;

		p = add_point(l, F_EDGE_BYTES, NULL);
		if (p) {
			edge_attrs(p, g, e);
			attr_str(p, "protocol", proto);
			attr_str(p, "direction", "sent");
			p->value = (double)e->bytes_sent;
		}
		p = add_point(l, F_EDGE_BYTES, NULL);
		if (p) {
			edge_attrs(p, g, e);
			attr_str(p, "protocol", proto);
			attr_str(p, "direction", "received");
			p->value = (double)e->bytes_received;
		}
		sum_point(l, F_EDGE_CONNECTS, NULL, (double)e->connects, g, e);
		sum_point(l, F_EDGE_CONNECT_FAILURES, NULL, (double)e->connect_failures, g, e);
		sum_point(l, F_EDGE_RETRANSMITS, NULL, (double)e->retransmits, g, e);
		for (size_t k = l->n >= 3 ? l->n - 3 : 0; k < l->n; k++)
			attr_str(&l->pts[k], "protocol", proto);
		if (e->connect_latency.count) {
			hist_point(l, F_EDGE_CONNECT_DURATION, g, e, &e->connect_latency);
			if (l->n)
				attr_str(&l->pts[l->n - 1], "protocol", proto);
		}
	}
}

static void http_points(struct series_list *l, const struct metrics *m)
{
	for (uint32_t i = 0; i < m->nseries; i++) {
		const struct http_series *s = &m->series[i];
		struct point *p =
			add_point(l, s->server ? F_HTTP_SERVER : F_HTTP_CLIENT, s->service);

		if (!p)
			return;
		if (s->overflow) {
			p->attrs[p->nattrs++] = (struct attr){"otel.metric.overflow", "true", 0};
		} else {
			attr_str(p, "http.request.method", s->method);
			if (s->status)
				attr_int(p, "http.response.status_code", s->status);
			if (s->error_type[0])
				attr_str(p, "error.type", s->error_type);
			if (s->server) {
				attr_str(p, "url.scheme", s->scheme);
			} else {
				attr_str(p, "server.address", s->server_address);
				attr_int(p, "server.port", s->server_port);
			}
			if (s->version[0])
				attr_str(p, "network.protocol.version", s->version);
		}
		p->count = s->count;
		p->sum = s->sum;
		p->buckets = s->buckets;
	}
}

static void health_points(struct series_list *l, const struct metrics_health *h)
{
	for (unsigned i = 0; h && i < h->n; i++) {
		struct point *p = add_point(l, (uint16_t)(F_HEALTH0 + h->p[i].family), NULL);

		if (!p)
			return;
		if (h->p[i].key)
			attr_str(p, h->p[i].key, h->p[i].value);
		p->value = h->p[i].v;
	}
}

static int build(struct series_list *l, const struct metrics *m, const struct graph *g,
		 const struct metrics_health *h)
{
	memset(l, 0, sizeof(*l));
	if (g)
		graph_points(l, g);
	http_points(l, m);
	health_points(l, h);
	return l->oom ? -ENOMEM : 0;
}

/* ---- http.* series ---- */

void metrics_health_reset(struct metrics_health *h)
{
	h->n = 0;
}

void metrics_health_add(struct metrics_health *h, enum metrics_health_family f, const char *key,
			const char *value, double v)
{
	if (h->n >= METRICS_HEALTH_MAX || f >= MH__MAX)
		return;
	h->p[h->n++] = (struct metrics_health_point){(uint8_t)f, key, value, v};
}

struct metrics *metrics__new(const struct otlp_config *cfg)
{
	struct metrics *m = calloc(1, sizeof(*m));
	struct timespec ts;

	if (!m)
		return NULL;
	if (cfg)
		m->cfg = *cfg;
	else
		otlp_config_defaults(&m->cfg);
	m->series = calloc(METRICS_SERIES_MAX, sizeof(*m->series));
	m->buckets = malloc(SERIES_BKTS * sizeof(uint32_t));
	if (!m->series || !m->buckets) {
		metrics__free(m);
		return NULL;
	}
	memset(m->buckets, 0xff, SERIES_BKTS * sizeof(uint32_t));
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return m;
}

void metrics__free(struct metrics *m)
{
	if (!m)
		return;
	free(m->series);
	free(m->buckets);
	free(m);
}

static uint32_t fnv(uint32_t h, const char *s)
{
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return (h ^ 0xff) * 16777619u;
}

static bool series_eq(const struct http_series *a, const struct http_series *b)
{
	return a->server == b->server && a->overflow == b->overflow && a->status == b->status &&
	       a->server_port == b->server_port && !strcmp(a->service, b->service) &&
	       !strcmp(a->method, b->method) && !strcmp(a->error_type, b->error_type) &&
	       !strcmp(a->version, b->version) && !strcmp(a->scheme, b->scheme) &&
	       !strcmp(a->server_address, b->server_address);
}

static uint32_t series_hash(const struct http_series *k)
{
	uint32_t h = 2166136261u ^ (uint32_t)(k->server | k->overflow << 1) ^
		     (uint32_t)k->status << 8 ^ (uint32_t)k->server_port << 16;

	h = fnv(h, k->service);
	h = fnv(h, k->method);
	h = fnv(h, k->error_type);
	h = fnv(h, k->version);
	h = fnv(h, k->scheme);
	h = fnv(h, k->server_address);
	return h & (SERIES_BKTS - 1);
}

static struct http_series *series_get(struct metrics *m, const struct http_series *key)
{
	uint32_t b = series_hash(key), i;
	struct http_series *s;

	for (i = m->buckets[b]; i != NIL; i = m->series[i].hnext)
		if (series_eq(&m->series[i], key))
			return &m->series[i];
	if (m->nseries >= METRICS_SERIES_MAX)
		return NULL;
	i = m->nseries++;
	s = &m->series[i];
	*s = *key;
	s->used = 1;
	s->count = 0;
	s->sum = 0;
	memset(s->buckets, 0, sizeof(s->buckets));
	s->hnext = m->buckets[b];
	m->buckets[b] = i;
	m->stats.series = m->nseries;
	return s;
}

void metrics_on_span(struct metrics *m, const struct mt_span *s)
{
	struct http_series key, *ser;
	double dur;
	unsigned lo = 0, hi = METRICS_HTTP_BOUNDS;

	if (s->protocol != MT_PROTO_HTTP1 && s->protocol != MT_PROTO_HTTP2)
		return;
	memset(&key, 0, sizeof(key));
	key.server = s->kind == MT_SPAN_SERVER;
	mt_strlcpy(key.service, s->resource.service_name, sizeof(key.service));
	if (s->method[0] &&
	    span_attrs_method_known(s->method, (const char(*)[MT_METHOD_MAX])m->cfg.known_methods,
				    m->cfg.n_known_methods))
		mt_strlcpy(key.method, s->method, sizeof(key.method));
	else
		mt_strlcpy(key.method, "_OTHER", sizeof(key.method));
	key.status = s->http_status;
	/* Per span: formatted by hand, no printf machinery. */
	if (s->status == MT_STATUS_ERROR) {
		if (s->http_status) {
			char digits[6];
			unsigned v = s->http_status, n = 0, o = 0;

			do
				digits[n++] = (char)('0' + v % 10);
			while ((v /= 10) && n < sizeof(digits));
			while (n)
				key.error_type[o++] = digits[--n];
		} else {
			memcpy(key.error_type, "_OTHER", sizeof("_OTHER"));
		}
	}
	if (s->protocol == MT_PROTO_HTTP1) {
		key.version[0] = '1';
		key.version[1] = '.';
		key.version[2] = (char)('0' + (s->http_minor < 10 ? s->http_minor : 9));
	} else {
		key.version[0] = '2';
	}
	if (key.server) {
		mt_strlcpy(key.scheme, s->scheme[0] ? s->scheme : "http", sizeof(key.scheme));
	} else {
		mt_strlcpy(key.server_address,
			   s->server_address[0] ? s->server_address : s->peer_address,
			   sizeof(key.server_address));
		key.server_port = s->server_port;
	}
	ser = series_get(m, &key);
	if (!ser) {
		/* Table full: one overflow series per instrument and service. */
		struct http_series over;

		memset(&over, 0, sizeof(over));
		over.server = key.server;
		over.overflow = 1;
		mt_strlcpy(over.service, key.service, sizeof(over.service));
		m->stats.series_full++;
		ser = series_get(m, &over);
		if (!ser) /* not even room for that: the last slot absorbs everything */
			ser = &m->series[METRICS_SERIES_MAX - 1];
	}
	dur = s->end_unix_ns > s->start_unix_ns ? (double)(s->end_unix_ns - s->start_unix_ns) / 1e9
						: 0;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (metrics_http_bounds[mid] >= dur)
			hi = mid;
		else
			lo = mid + 1;
	}
	ser->buckets[lo]++;
	ser->count++;
	ser->sum += dur;
}

void metrics_stats(const struct metrics *m, struct metrics_stats *out)
{
	*out = m->stats;
}

/* ---- Prometheus ---- */

static void sanitize(const char *in, char *out, size_t len, bool metric)
{
	size_t o = 0;

	for (const char *c = in; *c && o + 1 < len; c++) {
		char ch = *c;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			  (metric && ch == ':') || (o && ch >= '0' && ch <= '9');

		if (!ok)
			ch = '_';
		if (ch == '_' && o && out[o - 1] == '_')
			continue;
		out[o++] = ch;
	}
	if (!o && len > 1)
		out[o++] = '_';
	out[o] = '\0';
}

static void unit_word(const char *unit, char *out, size_t len)
{
	static const struct {
		const char *ucum;
		const char *word;
	} units[] = {
		{"s", "seconds"},      {"ms", "milliseconds"}, {"us", "microseconds"},
		{"ns", "nanoseconds"}, {"By", "bytes"},	       {"KiBy", "kibibytes"},
		{"MiBy", "mebibytes"}, {"1", "ratio"},	       {"%", "percent"},
	};
	const char *slash;

	out[0] = '\0';
	if (!unit[0] || unit[0] == '{')
		return;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(unit, units[i].ucum)) {
			mt_strlcpy(out, units[i].word, len);
			return;
		}
	slash = strchr(unit, '/');
	if (slash) {
		char a[32], b[32];

		snprintf(a, sizeof(a), "%.*s", (int)(slash - unit), unit);
		unit_word(a, b, sizeof(b));
		snprintf(out, len, "%s_per_%s", b[0] ? b : a, slash + 1);
		return;
	}
	/* Annotations in braces anywhere are dropped. */
	snprintf(out, len, "%.*s", (int)strcspn(unit, "{"), unit);
}

void metrics_prometheus_name(const char *name, const char *unit, bool monotonic_sum, char *out,
			     size_t len)
{
	char base[256], u[64], su[64];
	size_t n;

	sanitize(name, base, sizeof(base), true);
	unit_word(unit, u, sizeof(u));
	if (u[0]) {
		sanitize(u, su, sizeof(su), true);
		n = strlen(su);
		/* Appended unless the name carries it already. */
		if (!strstr(base, su)) {
			size_t bl = strlen(base);

			snprintf(base + bl, sizeof(base) - bl, "_%s", su);
		}
	}
	n = strlen(base);
	if (monotonic_sum && (n < 6 || strcmp(base + n - 6, "_total") != 0))
		snprintf(out, len, "%s_total", base);
	else
		snprintf(out, len, "%s", base);
}

/* A label value: valid UTF-8, with backslash, quote and newline escaped. */
static void label_value(struct mt_buf *b, const char *v)
{
	char fixed[3 * GRAPH_NAME_MAX + 1];
	size_t n = strlen(v);

	if (!utf8_valid(v, n)) {
		if (n > GRAPH_NAME_MAX)
			n = GRAPH_NAME_MAX;
		utf8_sanitize(fixed, sizeof(fixed), v, n);
		v = fixed;
	}
	for (const char *c = v; *c; c++) {
		if (*c == '\\')
			mt_buf_puts(b, "\\\\");
		else if (*c == '"')
			mt_buf_puts(b, "\\\"");
		else if (*c == '\n')
			mt_buf_puts(b, "\\n");
		else
			mt_buf_append(b, c, 1);
	}
}

static void labels(struct mt_buf *b, const struct point *p, const char *le)
{
	char key[128];

	mt_buf_puts(b, "{");
	for (unsigned i = 0; i < p->nattrs; i++) {
		sanitize(p->attrs[i].key, key, sizeof(key), false);
		mt_buf_printf(b, "%s=\"", key);
		if (p->attrs[i].str)
			label_value(b, p->attrs[i].str);
		else
			mt_buf_printf(b, "%" PRId64, p->attrs[i].num);
		mt_buf_puts(b, "\",");
	}
	if (p->resource) {
		mt_buf_puts(b, "service_name=\"");
		label_value(b, p->resource);
		mt_buf_puts(b, "\",");
	}
	mt_buf_printf(b, "otel_scope_name=\"%s\",otel_scope_version=\"%s\"", METRICS_SCOPE_NAME,
		      MESHTRACE_VERSION);
	if (le)
		mt_buf_printf(b, ",le=\"%s\"", le);
	mt_buf_puts(b, "}");
}

/* The shortest decimal form that reads back as @v (what Go's strconv 'g', -1 writes). */
static void shortest(char *out, size_t len, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, len, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void prom_number(struct mt_buf *b, double v)
{
	char num[40];

	if (isinf(v)) {
		mt_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		mt_buf_printf(b, "%.0f", v);
		return;
	}
	shortest(num, sizeof(num), v);
	mt_buf_puts(b, num);
}

static int cmp_family(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void target_info(struct mt_buf *b, const struct metrics *m)
{
	char key[128];

	mt_buf_puts(b, "# HELP target_info Target metadata\n# TYPE target_info gauge\n");
	mt_buf_printf(b,
		      "target_info{service_name=\"%s\",telemetry_sdk_name=\"meshtrace\","
		      "telemetry_sdk_language=\"c\",telemetry_sdk_version=\"%s\"",
		      METRICS_SCOPE_NAME, MESHTRACE_VERSION);
	if (m->cfg.host_name[0]) {
		mt_buf_puts(b, ",host_name=\"");
		label_value(b, m->cfg.host_name);
		mt_buf_puts(b, "\"");
	}
	for (unsigned i = 0; i < m->cfg.n_resource_attrs; i++) {
		const struct otlp_kv *kv = &m->cfg.resource_attrs[i];

		if (!strcmp(kv->key, "service.name") || !strcmp(kv->key, "host.name") ||
		    !strncmp(kv->key, "telemetry.sdk.", 14))
			continue;
		sanitize(kv->key, key, sizeof(key), false);
		mt_buf_printf(b, ",%s=\"", key);
		label_value(b, kv->value);
		mt_buf_puts(b, "\"");
	}
	mt_buf_puts(b, "} 1\n");
}

int metrics_write_prometheus(struct metrics *m, const struct graph *g,
			     const struct metrics_health *h, struct mt_buf *b)
{
	struct series_list l;
	int err = build(&l, m, g, h);

	if (err)
		goto out;
	m->stats.scrapes++;
	qsort(l.pts, l.n, sizeof(*l.pts), cmp_family);
	target_info(b, m);
	for (size_t i = 0; i < l.n;) {
		const struct family *f = &families[l.pts[i].family];
		size_t j = i;
		char name[256];

		metrics_prometheus_name(f->name, f->unit, f->type == T_SUM, name, sizeof(name));
		mt_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, f->help, name,
			      f->type == T_SUM	   ? "counter"
			      : f->type == T_GAUGE ? "gauge"
						   : "histogram");
		for (; j < l.n && l.pts[j].family == l.pts[i].family; j++) {
			const struct point *p = &l.pts[j];

			if (f->type != T_HIST) {
				mt_buf_puts(b, name);
				labels(b, p, NULL);
				mt_buf_puts(b, " ");
				prom_number(b, p->value);
				mt_buf_puts(b, "\n");
				continue;
			}
			{
				uint64_t cum = 0;
				char le[32];

				for (unsigned k = 0; k <= f->nbounds; k++) {
					cum += p->buckets[k];
					if (k < f->nbounds)
						shortest(le, sizeof(le), f->bounds[k]);
					else
						snprintf(le, sizeof(le), "+Inf");
					mt_buf_printf(b, "%s_bucket", name);
					labels(b, p, le);
					mt_buf_printf(b, " %" PRIu64 "\n", cum);
				}
				mt_buf_printf(b, "%s_sum", name);
				labels(b, p, NULL);
				mt_buf_puts(b, " ");
				prom_number(b, p->sum);
				mt_buf_printf(b, "\n%s_count", name);
				labels(b, p, NULL);
				mt_buf_printf(b, " %" PRIu64 "\n", p->count);
			}
		}
		i = j;
	}
	if (b->overflow)
		err = -ENOMEM;
out:
	if (err)
		m->stats.encode_failures++;
	list_free(&l);
	return err;
}

/* ---- OTLP ---- */

static int cmp_resource(const void *a, const void *b)
{
	const struct point *x = a, *y = b;
	int c;

	if (!x->resource != !y->resource)
		return x->resource ? 1 : -1;
	if (x->resource && (c = strcmp(x->resource, y->resource)) != 0)
		return c;
	return cmp_family(a, b);
}

static char *wire(struct series_list *l, const char *s)
{
	size_t n = strlen(s);
	char *out;

	if (utf8_valid(s, n))
		return (char *)(uintptr_t)s;
	out = arena_alloc(l, 3 * n + 1);
	if (!out)
		return (char *)"";
	utf8_sanitize(out, 3 * n + 1, s, n);
	return out;
}

static Meshtrace__Otlp__KeyValue *kv_str(struct series_list *l, const char *key, const char *val)
{
	Meshtrace__Otlp__KeyValue *kv = arena_alloc(l, sizeof(*kv));
	Meshtrace__Otlp__AnyValue *av = arena_alloc(l, sizeof(*av));

	if (!kv || !av)
		return NULL;
	meshtrace__otlp__key_value__init(kv);
	meshtrace__otlp__any_value__init(av);
	kv->key = wire(l, key);
	kv->value = av;
	av->value_case = MESHTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = wire(l, val);
	return kv;
}

static Meshtrace__Otlp__KeyValue *kv_int(struct series_list *l, const char *key, int64_t val)
{
	Meshtrace__Otlp__KeyValue *kv = arena_alloc(l, sizeof(*kv));
	Meshtrace__Otlp__AnyValue *av = arena_alloc(l, sizeof(*av));

	if (!kv || !av)
		return NULL;
	meshtrace__otlp__key_value__init(kv);
	meshtrace__otlp__any_value__init(av);
	kv->key = wire(l, key);
	kv->value = av;
	av->value_case = MESHTRACE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
	av->int_value = val;
	return kv;
}

static Meshtrace__Otlp__KeyValue **point_attrs(struct series_list *l, const struct point *p)
{
	Meshtrace__Otlp__KeyValue **kvs = arena_alloc(l, (p->nattrs + 1) * sizeof(*kvs));

	if (!kvs)
		return NULL;
	for (unsigned i = 0; i < p->nattrs; i++) {
		kvs[i] = p->attrs[i].str ? kv_str(l, p->attrs[i].key, p->attrs[i].str)
					 : kv_int(l, p->attrs[i].key, p->attrs[i].num);
		if (!kvs[i])
			return NULL;
	}
	return kvs;
}

static Meshtrace__Otlp__Resource *make_resource(struct series_list *l, const struct metrics *m,
						const char *service)
{
	Meshtrace__Otlp__Resource *r = arena_alloc(l, sizeof(*r));
	Meshtrace__Otlp__KeyValue **kvs =
		arena_alloc(l, (5 + OTLP_RESOURCE_ATTRS_MAX) * sizeof(*kvs));
	size_t n = 0;

	if (!r || !kvs)
		return NULL;
	meshtrace__otlp__resource__init(r);
	kvs[n++] = kv_str(l, "service.name", service ? service : METRICS_SCOPE_NAME);
	if (m->cfg.host_name[0])
		kvs[n++] = kv_str(l, "host.name", m->cfg.host_name);
	kvs[n++] = kv_str(l, "telemetry.sdk.name", "meshtrace");
	kvs[n++] = kv_str(l, "telemetry.sdk.language", "c");
	kvs[n++] = kv_str(l, "telemetry.sdk.version", MESHTRACE_VERSION);
	for (unsigned i = 0; i < m->cfg.n_resource_attrs; i++) {
		const struct otlp_kv *kv = &m->cfg.resource_attrs[i];

		if (!strcmp(kv->key, "service.name") || !strcmp(kv->key, "host.name") ||
		    !strncmp(kv->key, "telemetry.sdk.", 14))
			continue;
		kvs[n++] = kv_str(l, kv->key, kv->value);
	}
	for (size_t i = 0; i < n; i++)
		if (!kvs[i])
			return NULL;
	r->n_attributes = n;
	r->attributes = kvs;
	return r;
}

/* One Metric for the points [@from, @to) of one family and resource. */
static Meshtrace__Otlp__Metric *make_metric(struct series_list *l, const struct point *pts,
					    size_t from, size_t to, uint64_t start, uint64_t now)
{
	const struct family *f = &families[pts[from].family];
	Meshtrace__Otlp__Metric *mt = arena_alloc(l, sizeof(*mt));
	size_t n = to - from;

	if (!mt)
		return NULL;
	meshtrace__otlp__metric__init(mt);
	mt->name = (char *)(uintptr_t)f->name;
	mt->unit = (char *)(uintptr_t)f->unit;
	mt->description = (char *)(uintptr_t)f->help;
	if (f->type == T_HIST) {
		Meshtrace__Otlp__Histogram *h = arena_alloc(l, sizeof(*h));
		Meshtrace__Otlp__HistogramDataPoint **dps = arena_alloc(l, n * sizeof(*dps));

		if (!h || !dps)
			return NULL;
		meshtrace__otlp__histogram__init(h);
		h->aggregation_temporality =
			MESHTRACE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
		for (size_t i = 0; i < n; i++) {
			const struct point *p = &pts[from + i];
			Meshtrace__Otlp__HistogramDataPoint *dp = arena_alloc(l, sizeof(*dp));

			if (!dp)
				return NULL;
			meshtrace__otlp__histogram_data_point__init(dp);
			dp->attributes = point_attrs(l, p);
			if (!dp->attributes)
				return NULL;
			dp->n_attributes = p->nattrs;
			dp->start_time_unix_nano = start;
			dp->time_unix_nano = now;
			dp->count = p->count;
			dp->sum_present_case =
				MESHTRACE__OTLP__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
			dp->sum = p->sum;
			dp->n_bucket_counts = f->nbounds + 1;
			dp->bucket_counts = (uint64_t *)(uintptr_t)p->buckets;
			dp->n_explicit_bounds = f->nbounds;
			dp->explicit_bounds = (double *)(uintptr_t)f->bounds;
			dps[i] = dp;
		}
		h->n_data_points = n;
		h->data_points = dps;
		mt->data_case = MESHTRACE__OTLP__METRIC__DATA_HISTOGRAM;
		mt->histogram = h;
		return mt;
	}
	{
		Meshtrace__Otlp__NumberDataPoint **dps = arena_alloc(l, n * sizeof(*dps));

		if (!dps)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			const struct point *p = &pts[from + i];
			Meshtrace__Otlp__NumberDataPoint *dp = arena_alloc(l, sizeof(*dp));

			if (!dp)
				return NULL;
			meshtrace__otlp__number_data_point__init(dp);
			dp->attributes = point_attrs(l, p);
			if (!dp->attributes)
				return NULL;
			dp->n_attributes = p->nattrs;
			dp->start_time_unix_nano = f->type == T_SUM ? start : 0;
			dp->time_unix_nano = now;
			if (p->value == floor(p->value) && fabs(p->value) < 9e18) {
				dp->value_case = MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
				dp->as_int = (int64_t)p->value;
			} else {
				dp->value_case =
					MESHTRACE__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
				dp->as_double = p->value;
			}
			dps[i] = dp;
		}
		if (f->type == T_SUM) {
			Meshtrace__Otlp__Sum *s = arena_alloc(l, sizeof(*s));

			if (!s)
				return NULL;
			meshtrace__otlp__sum__init(s);
			s->aggregation_temporality =
				MESHTRACE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
			s->is_monotonic = 1;
			s->n_data_points = n;
			s->data_points = dps;
			mt->data_case = MESHTRACE__OTLP__METRIC__DATA_SUM;
			mt->sum = s;
		} else {
			Meshtrace__Otlp__Gauge *gg = arena_alloc(l, sizeof(*gg));

			if (!gg)
				return NULL;
			meshtrace__otlp__gauge__init(gg);
			gg->n_data_points = n;
			gg->data_points = dps;
			mt->data_case = MESHTRACE__OTLP__METRIC__DATA_GAUGE;
			mt->gauge = gg;
		}
	}
	return mt;
}

static bool same_resource(const struct point *a, const struct point *b)
{
	if (!a->resource || !b->resource)
		return a->resource == b->resource;
	return !strcmp(a->resource, b->resource);
}

int metrics_encode_otlp(struct metrics *m, const struct graph *g, const struct metrics_health *h,
			uint64_t now_unix_ns, uint8_t **out, size_t *outlen)
{
	Meshtrace__Otlp__ExportMetricsServiceRequest req =
		MESHTRACE__OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	Meshtrace__Otlp__InstrumentationScope scope = MESHTRACE__OTLP__INSTRUMENTATION_SCOPE__INIT;
	Meshtrace__Otlp__ResourceMetrics **rms;
	struct series_list l;
	size_t nres = 0, len;
	int err = build(&l, m, g, h);

	*out = NULL;
	*outlen = 0;
	if (err)
		goto out;
	err = -ENOMEM;
	qsort(l.pts, l.n, sizeof(*l.pts), cmp_resource);
	scope.name = (char *)METRICS_SCOPE_NAME;
	scope.version = (char *)MESHTRACE_VERSION;
	rms = arena_alloc(&l, (l.n + 1) * sizeof(*rms));
	if (!rms)
		goto out;
	for (size_t i = 0; i < l.n;) {
		Meshtrace__Otlp__ResourceMetrics *rm = arena_alloc(&l, sizeof(*rm));
		Meshtrace__Otlp__ScopeMetrics *sm = arena_alloc(&l, sizeof(*sm));
		Meshtrace__Otlp__ScopeMetrics **sms = arena_alloc(&l, sizeof(*sms));
		Meshtrace__Otlp__Metric **mts = arena_alloc(&l, F__MAX * sizeof(*mts));
		size_t j = i, nm = 0;

		if (!rm || !sm || !sms || !mts)
			goto out;
		meshtrace__otlp__resource_metrics__init(rm);
		meshtrace__otlp__scope_metrics__init(sm);
		rm->resource = make_resource(&l, m, l.pts[i].resource);
		if (!rm->resource)
			goto out;
		while (j < l.n && same_resource(&l.pts[j], &l.pts[i])) {
			size_t k = j;

			while (k < l.n && same_resource(&l.pts[k], &l.pts[i]) &&
			       l.pts[k].family == l.pts[j].family)
				k++;
			mts[nm] = make_metric(&l, l.pts, j, k, m->start_unix_ns, now_unix_ns);
			if (!mts[nm])
				goto out;
			nm++;
			j = k;
		}
		sm->scope = &scope;
		sm->n_metrics = nm;
		sm->metrics = mts;
		sms[0] = sm;
		rm->n_scope_metrics = 1;
		rm->scope_metrics = sms;
		rms[nres++] = rm;
		i = j;
	}
	req.n_resource_metrics = nres;
	req.resource_metrics = rms;
	len = meshtrace__otlp__export_metrics_service_request__get_packed_size(&req);
	*out = malloc(len ? len : 1);
	if (!*out)
		goto out;
	*outlen = meshtrace__otlp__export_metrics_service_request__pack(&req, *out);
	m->stats.otlp_exports++;
	err = 0;
out:
	if (err)
		m->stats.encode_failures++;
	list_free(&l);
	return err;
}
