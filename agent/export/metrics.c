// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics: the families, the http.* series table (one histogram per
 * series, bounded, with overflow series), the agent's health values, and
 * the list of points built from them and the graph at each export. The list
 * is rebuilt from the live tables each time and written as Prometheus text
 * (metrics_prom.c) or as an OTLP request (metrics_otlp.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/common/util.h"
#include "agent/export/metrics_internal.h"
#include "agent/export/span_attrs.h"
#include "agent/protocols/l7.h"

#define ARENA_CHUNK (256u << 10)

const double metrics_http_bounds[METRICS_HTTP_BOUNDS] = {
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
};

const struct family metrics_families[F__MAX] = {
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
	[F_HEALTH0 + MH_SPANS_SAMPLED_OUT] = {"meshtrace.spans.sampled_out", "{span}",
					      "Spans counted in the graph and metrics but not "
					      "exported: the sampler decided so",
					      T_SUM},
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
	[F_HEALTH0 +
		MH_SPANS_SAMPLED] = {"meshtrace.spans.sampled", "{span}",
				     "Spans handed to the exporters, by rule: head (the "
				     "sampler) or tail (--keep-error-traces, --keep-slow-traces)",
				     T_SUM},
	[F_HEALTH0 +
		MH_TAILKEEP_TRACES] = {"meshtrace.tailkeep.traces", "{trace}",
				       "Unsampled local traces decided by the tail keep rule, "
				       "by result (evicted, expired: decided before their end)",
				       T_SUM},
};

/* ---- the list of points of one export ---- */

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

void metrics_list_free(struct series_list *l)
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
	if (p->nattrs < METRICS_ATTRS_MAX)
		p->attrs[p->nattrs++] = (struct attr){key, val, 0};
}

static void attr_int(struct point *p, const char *key, int64_t val)
{
	if (p->nattrs < METRICS_ATTRS_MAX)
		p->attrs[p->nattrs++] = (struct attr){key, NULL, val};
}

static void edge_attrs(struct point *p, const struct graph *g, const struct graph_edge *e)
{
	const struct graph_node *c = graph_node_at(g, e->client), *s = graph_node_at(g, e->server);

	attr_str(p, "client", c->name);
	attr_str(p, "server", s->name);
	attr_str(p, "connection_type", graph_conn_type_name(e->connection_type));
	/*
	 * Kubernetes namespaces, when the services have them. Not "namespace": a
	 * Prometheus scraping the agent's pod sets that label to the agent's own.
	 */
	if (c->namespace_name[0])
		attr_str(p, "client_namespace", c->namespace_name);
	if (s->namespace_name[0])
		attr_str(p, "server_namespace", s->namespace_name);
	/* And their workloads, "deployment/checkout": the dashboards' workload variable. */
	if (c->workload[0])
		attr_str(p, "client_workload", c->workload);
	if (s->workload[0])
		attr_str(p, "server_workload", s->workload);
}

static void hist_point(struct series_list *l, uint16_t f, const struct graph *g,
		       const struct graph_edge *e, const struct graph_hist *h,
		       const struct graph_exemplar *ex)
{
	struct point *p = add_point(l, f, NULL);

	if (!p)
		return;
	edge_attrs(p, g, e);
	p->count = h->count;
	p->sum = h->sum;
	p->buckets = h->buckets;
	p->exemplars = ex;
}

/* The later of two exemplars into @dst, bucket by bucket. */
static void exemplars_merge(struct graph_exemplar *dst, const struct graph_exemplar *src,
			    unsigned n)
{
	for (unsigned b = 0; b < n; b++)
		if (src[b].unix_ns > dst[b].unix_ns)
			dst[b] = src[b];
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
		struct graph_exemplar *srv_ex, *cli_ex;
		uint64_t req = 0, failed = 0;
		bool seen = false;

		for (uint32_t j = 0; j < i && !seen; j++)
			seen = same_pair(graph_edge_at(g, j), e);
		if (seen)
			continue;
		srv = arena_alloc(l, sizeof(*srv));
		cli = arena_alloc(l, sizeof(*cli));
		srv_ex = arena_alloc(l, sizeof(e->server_exemplars));
		cli_ex = arena_alloc(l, sizeof(e->client_exemplars));
		if (!srv || !cli || !srv_ex || !cli_ex)
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
			exemplars_merge(srv_ex, o->server_exemplars, GRAPH_LATENCY_BOUNDS + 1);
			exemplars_merge(cli_ex, o->client_exemplars, GRAPH_LATENCY_BOUNDS + 1);
		}
		sum_point(l, F_SG_TOTAL, NULL, (double)req, g, e);
		sum_point(l, F_SG_FAILED, NULL, (double)failed, g, e);
		if (srv->count)
			hist_point(l, F_SG_SERVER, g, e, srv, srv_ex);
		if (cli->count)
			hist_point(l, F_SG_CLIENT, g, e, cli, cli_ex);
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
			hist_point(l, F_EDGE_CONNECT_DURATION, g, e, &e->connect_latency, NULL);
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
		p->resource_ns = s->service_namespace;
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
		p->exemplars = m->exemplars[i].b;
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

int metrics_list_build(struct series_list *l, const struct metrics *m, const struct graph *g,
		       const struct metrics_health *h)
{
	memset(l, 0, sizeof(*l));
	if (g)
		graph_points(l, g);
	http_points(l, m);
	health_points(l, h);
	return l->oom ? -ENOMEM : 0;
}

int metrics_cmp_family(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

bool metrics_agent_resource_key(const char *key)
{
	return !strcmp(key, "service.name") || !strcmp(key, "host.name") ||
	       !strncmp(key, "telemetry.sdk.", strlen("telemetry.sdk."));
}

static const char *const exemplar_filters[] = {
	[METRICS_EXEMPLARS_TRACE_BASED] = "trace_based",
	[METRICS_EXEMPLARS_ALWAYS_ON] = "always_on",
	[METRICS_EXEMPLARS_ALWAYS_OFF] = "always_off",
};

int metrics_exemplar_filter_from_env(uint8_t *out, char *err, size_t errlen)
{
	const char *v = getenv("OTEL_METRICS_EXEMPLAR_FILTER");
	char buf[32];
	size_t len;

	*out = METRICS_EXEMPLARS_TRACE_BASED;
	if (!v)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	len = strlen(v);
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (!len)
		return 0;
	if (len < sizeof(buf)) {
		memcpy(buf, v, len);
		buf[len] = '\0';
		for (uint8_t i = 0; i < ARRAY_SIZE(exemplar_filters); i++)
			if (!strcasecmp(buf, exemplar_filters[i])) {
				*out = i;
				return 0;
			}
	}
	snprintf(err, errlen,
		 "OTEL_METRICS_EXEMPLAR_FILTER=\"%.32s\": unknown filter; unset it or give "
		 "trace_based (the default), always_on or always_off",
		 v);
	return -1;
}

const char *metrics_exemplar_filter_name(uint8_t filter)
{
	return filter < ARRAY_SIZE(exemplar_filters) ? exemplar_filters[filter] : "?";
}

const char *metrics_agent_service_name(const struct metrics *m)
{
	return m->cfg.service_name[0] ? m->cfg.service_name : METRICS_SCOPE_NAME;
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
	/* calloc()ed: pages of series never used cost no memory. */
	m->exemplars = calloc(METRICS_SERIES_MAX, sizeof(*m->exemplars));
	if (!m->series || !m->exemplars || hashtab_init(&m->by_key, METRICS_SERIES_MAX, 0)) {
		metrics__free(m);
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return m;
}

void metrics__free(struct metrics *m)
{
	if (!m)
		return;
	hashtab_fini(&m->by_key);
	free(m->exemplars);
	free(m->series);
	free(m);
}

static bool series_eq(const struct http_series *a, const struct http_series *b)
{
	return a->server == b->server && a->overflow == b->overflow && a->status == b->status &&
	       a->server_port == b->server_port && !strcmp(a->service, b->service) &&
	       !strcmp(a->service_namespace, b->service_namespace) &&
	       !strcmp(a->method, b->method) && !strcmp(a->error_type, b->error_type) &&
	       !strcmp(a->version, b->version) && !strcmp(a->scheme, b->scheme) &&
	       !strcmp(a->server_address, b->server_address);
}

static uint32_t series_hash(const struct http_series *k)
{
	uint64_t h = HASHTAB_STR_INIT ^ (uint64_t)(k->server | k->overflow << 1) ^
		     (uint64_t)k->status << 8 ^ (uint64_t)k->server_port << 16;

	h = hashtab_str_step(h, k->service);
	h = hashtab_str_step(h, k->service_namespace);
	h = hashtab_str_step(h, k->method);
	h = hashtab_str_step(h, k->error_type);
	h = hashtab_str_step(h, k->version);
	h = hashtab_str_step(h, k->scheme);
	h = hashtab_str_step(h, k->server_address);
	return hashtab_hash64(h);
}

static struct http_series *series_get(struct metrics *m, const struct http_series *key)
{
	uint32_t h = series_hash(key), i;
	struct http_series *s;

	for (i = hashtab_first(&m->by_key, h); i != HT_NIL; i = hashtab_next(&m->by_key, i))
		if (series_eq(&m->series[i], key))
			return &m->series[i];
	i = hashtab_slot_alloc(&m->by_key);
	if (i == HT_NIL)
		return NULL;
	m->nseries++;
	s = &m->series[i];
	*s = *key;
	s->used = 1;
	s->count = 0;
	s->sum = 0;
	memset(s->buckets, 0, sizeof(s->buckets));
	memset(&m->exemplars[i], 0, sizeof(m->exemplars[i]));
	hashtab_link(&m->by_key, h, i);
	m->stats.series = m->nseries;
	return s;
}

void metrics_on_span(struct metrics *m, const struct mt_span *s)
{
	metrics_on_span_exemplar(m, s, false);
}

void metrics_on_span_exemplar(struct metrics *m, const struct mt_span *s, bool exemplar)
{
	struct http_series key, *ser;
	double dur;
	unsigned lo = 0, hi = METRICS_HTTP_BOUNDS;

	if (s->protocol != MT_PROTO_HTTP1 && s->protocol != MT_PROTO_HTTP2)
		return;
	memset(&key, 0, sizeof(key));
	key.server = s->kind == MT_SPAN_SERVER;
	mt_strlcpy(key.service, s->resource.service_name, sizeof(key.service));
	mt_strlcpy(key.service_namespace, s->resource.service_namespace,
		   sizeof(key.service_namespace));
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
		mt_strlcpy(over.service_namespace, key.service_namespace,
			   sizeof(over.service_namespace));
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
	if (exemplar)
		graph_exemplar_set(&m->exemplars[ser - m->series].b[lo], s, dur);
}

void metrics_stats(const struct metrics *m, struct metrics_stats *out)
{
	*out = m->stats;
}
