/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by agent/export/metrics*.c only: the metric families, the http.*
 * series table, and the list of points one export is written from
 * (metrics.c), which the Prometheus text (metrics_prom.c) and the OTLP
 * request (metrics_otlp.c) both read, so the two cannot drift apart.
 */
#ifndef MESHTRACE_METRICS_INTERNAL_H
#define MESHTRACE_METRICS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/common/hashtab.h"
#include "agent/export/metrics.h"

/* Attributes of one point at the most. */
#define METRICS_ATTRS_MAX 8

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

/* Every family, indexed by enum family_id. */
extern const struct family metrics_families[F__MAX];

struct http_series {
	uint8_t used;
	uint8_t server; /* http.server.* (else client) */
	uint8_t overflow;
	uint8_t _pad;
	uint16_t status;
	uint16_t server_port;
	char service[MT_SERVICE_MAX];
	char service_namespace[64]; /* the resource's service.namespace, "" outside Kubernetes */
	char method[MT_METHOD_MAX];
	char error_type[8];
	char version[8];
	char scheme[8];
	char server_address[MT_HOST_MAX];
	uint64_t count;
	double sum;
	uint64_t buckets[METRICS_HTTP_BOUNDS + 1];
};

/* The exemplars of one http.* series, per bucket; a table beside the series (same index). */
struct http_exemplars {
	struct graph_exemplar b[METRICS_HTTP_BOUNDS + 1];
};

struct metrics {
	struct otlp_config cfg;
	uint64_t start_unix_ns;
	struct http_series *series;
	struct http_exemplars *exemplars; /* METRICS_SERIES_MAX, zeroed with their series */
	uint32_t nseries;
	struct hashtab by_key; /* series by their attributes */
	struct metrics_stats stats;
};

/* ---- the list of points of one export ---- */

struct attr {
	const char *key;
	const char *str; /* NULL: num is the value */
	int64_t num;
};

struct point {
	uint16_t family;
	uint8_t nattrs;
	const char *resource;	 /* service.name of the resource; NULL: the agent's */
	const char *resource_ns; /* its service.namespace; NULL or "": none */
	struct attr attrs[METRICS_ATTRS_MAX];
	double value;
	uint64_t count;
	double sum;
	const uint64_t *buckets;		/* nbounds + 1 */
	const struct graph_exemplar *exemplars; /* nbounds + 1 (unix_ns 0: none), or NULL */
	uint32_t order;				/* insertion order, for stable sorting */
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

/*
 * Fills @l with a point per series: the graph's (@g may be NULL), the http.*
 * table's, then @h's (may be NULL), in that order. Returns 0 or -ENOMEM;
 * metrics_list_free() @l either way.
 */
int metrics_list_build(struct series_list *l, const struct metrics *m, const struct graph *g,
		       const struct metrics_health *h);

void metrics_list_free(struct series_list *l);

/* qsort() order: by family, then in the order the points were added. */
int metrics_cmp_family(const void *a, const void *b);

/*
 * True for the resource attributes the agent sets itself (service.name,
 * host.name, telemetry.sdk.*): those of OTEL_RESOURCE_ATTRIBUTES are not sent.
 */
bool metrics_agent_resource_key(const char *key);

/*
 * service.name of the agent's own resource (graph and health metrics,
 * target_info): OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES
 * (both from the agent's environment), else METRICS_SCOPE_NAME.
 */
const char *metrics_agent_service_name(const struct metrics *m);

#endif /* MESHTRACE_METRICS_INTERNAL_H */
