/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics: the service graph (the servicegraph connector's names and
 * labels), HTTP request durations (semantic conventions), and the agent's own
 * health, encoded two ways from one list of series so both say the same:
 *  - OTLP (ExportMetricsServiceRequest, cumulative temporality): graph and
 *    health metrics under the agent's resource, http.* under one resource
 *    per service (service.name);
 *  - Prometheus text exposition format 0.0.4, names converted per the
 *    OpenTelemetry "Prometheus and OpenMetrics Compatibility" spec (invalid
 *    characters to '_', unit suffix such as _seconds, _total on counters),
 *    resource service.name as label service_name, otel_scope_name/version
 *    on every series, resource attributes of the agent in target_info.
 * Spec: https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/
 *
 * Files: metrics.c (families, the http.* series table, the list of points of
 * one export), metrics_prom.c (the text format), metrics_otlp.c (the OTLP
 * request, written with agent/export/pb.h like the spans).
 *
 * Bounded: at most METRICS_SERIES_MAX http.* series; spans that would need
 * more go to one overflow series per instrument and service table slot
 * (attribute otel.metric.overflow=true) and are counted.
 */
#ifndef MESHTRACE_METRICS_H
#define MESHTRACE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/common/buf.h"
#include "agent/graph/graph.h"
#include "agent/trace/span.h"
#include "agent/export/otlp.h"

#define METRICS_SERIES_MAX  2048
#define METRICS_HEALTH_MAX  160
#define METRICS_HTTP_BOUNDS 14
#define METRICS_SCOPE_NAME  "meshtrace"

/* The semantic conventions' buckets for http.*.request.duration, seconds. */
extern const double metrics_http_bounds[METRICS_HTTP_BOUNDS];

/* The agent's health instruments (values handed in by the caller at export time). */
enum metrics_health_family {
	MH_KERNEL_EVENTS = 0, /* counter {event}, attribute kind */
	MH_KERNEL_DROPS,      /* counter {event}, attribute reason */
	MH_KERNEL_WAKEUPS,    /* counter {wakeup} */
	MH_KERNEL_CAPTURED,   /* counter By */
	MH_EVENTS,	      /* counter {event}: events user space received */
	MH_DROPS,	      /* counter {item}, attribute stage: dropped in user space */
	MH_SPANS,	      /* counter {span}, attribute kind */
	MH_SPANS_EXPORTED,    /* counter {span} */
	MH_EXPORT_FAILURES,   /* counter {request}, attribute signal */
	MH_EXPORT_RETRIES,    /* counter {request} */
	MH_QUEUE_DEPTH,	      /* gauge {item}, attribute queue */
	MH_TABLE_USAGE,	      /* gauge {entry}, attribute table */
	MH_TABLE_CAPACITY,    /* gauge {entry}, attribute table */
	MH_SPAN_UPDATE_NS,    /* gauge ns: mean cost of one span in the graph stage */
	MH_PROCESS_CPU,	      /* counter s, attribute cpu.mode: the agent's own CPU time */
	MH_PROCESS_MEMORY,    /* gauge By: the agent's resident memory */
	MH_LINKS,	      /* counter {span}, attribute result: trace linking outcomes */
	MH_SPANS_SAMPLED_OUT, /* counter {span}: counted, not exported (OTEL_TRACES_SAMPLER) */
	MH_SPANS_SAMPLED,     /* counter {span}, attribute rule: head (the sampler) | tail (kept) */
	MH_TAILKEEP_TRACES,   /* counter {trace}, attribute result: tail keep's decisions */
	MH__MAX,
};

struct metrics_health_point {
	uint8_t family;	   /* enum metrics_health_family */
	const char *key;   /* attribute key, NULL for none; static string */
	const char *value; /* attribute value; static string */
	double v;
};

struct metrics_health {
	unsigned n;
	struct metrics_health_point p[METRICS_HEALTH_MAX];
};

void metrics_health_reset(struct metrics_health *h);
/* Adds one value; beyond METRICS_HEALTH_MAX it is ignored. @key/@value must outlive the export. */
void metrics_health_add(struct metrics_health *h, enum metrics_health_family f, const char *key,
			const char *value, double v);

struct metrics_stats {
	uint64_t series;      /* http.* series in the table */
	uint64_t series_full; /* spans counted in an overflow series */
	uint64_t otlp_exports;
	uint64_t scrapes;
	uint64_t encode_failures;
};

struct metrics;

/* OTEL_METRICS_EXEMPLAR_FILTER: which measurements may become exemplars. */
enum metrics_exemplar_filter {
	METRICS_EXEMPLARS_TRACE_BASED = 0, /* the default: spans whose trace is exported */
	METRICS_EXEMPLARS_ALWAYS_ON,	   /* every span, exported or not */
	METRICS_EXEMPLARS_ALWAYS_OFF,	   /* none */
};

/*
 * Reads OTEL_METRICS_EXEMPLAR_FILTER (always_on, always_off, trace_based;
 * case-insensitive; unset or "" is trace_based) into *@out. Returns 0, or -1
 * with one line for the user in @err.
 */
int metrics_exemplar_filter_from_env(uint8_t *out, char *err, size_t errlen);

/* The filter's name as the variable spells it. */
const char *metrics_exemplar_filter_name(uint8_t filter);

/*
 * @cfg gives the resource attributes (OTEL_RESOURCE_ATTRIBUTES, host.name)
 * and the known HTTP methods; copied; NULL for defaults. NULL on ENOMEM.
 */
struct metrics *metrics__new(const struct otlp_config *cfg);
void metrics__free(struct metrics *m);

/* Records an HTTP span in http.server/client.request.duration; others are ignored. */
void metrics_on_span(struct metrics *m, const struct mt_span *s);
/*
 * The same, and when @exemplar the span becomes the exemplar of the bucket it
 * falls in (latest wins; the caller decides: only spans whose trace is exported).
 */
void metrics_on_span_exemplar(struct metrics *m, const struct mt_span *s, bool exemplar);

/*
 * Encodes every series as one ExportMetricsServiceRequest at @now_unix_ns.
 * *@out is malloc()ed (the caller frees it). Returns 0 or -ENOMEM.
 */
int metrics_encode_otlp(struct metrics *m, const struct graph *g, const struct metrics_health *h,
			uint64_t now_unix_ns, uint8_t **out, size_t *outlen);

/* Appends every series in the Prometheus text format. Returns 0 or -ENOMEM. */
int metrics_write_prometheus(struct metrics *m, const struct graph *g,
			     const struct metrics_health *h, struct mt_buf *b);

/*
 * The same in the OpenMetrics 1.0 text format, with exemplars on the latency
 * histograms' buckets (trace_id, span_id, value, timestamp) and "# EOF".
 * Content type METRICS_OPENMETRICS_TYPE. Returns 0 or -ENOMEM.
 * Spec: https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md
 */
int metrics_write_openmetrics(struct metrics *m, const struct graph *g,
			      const struct metrics_health *h, struct mt_buf *b);

#define METRICS_PROMETHEUS_TYPE	 "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/*
 * True when an HTTP Accept header value (NULL or "": none) prefers
 * application/openmetrics-text to text/plain, by q-value as RFC 9110 reads
 * it (a tie goes to OpenMetrics, as Prometheus lists it first). Pure.
 */
bool metrics_accepts_openmetrics(const char *accept);

/*
 * The Prometheus name of an OTLP metric: @name sanitised, the unit's suffix
 * ("s" -> _seconds, "By" -> _bytes, "{x}" -> none), then _total for a
 * monotonic sum. Exposed for tests.
 */
void metrics_prometheus_name(const char *name, const char *unit, bool monotonic_sum, char *out,
			     size_t len);

void metrics_stats(const struct metrics *m, struct metrics_stats *out);

#endif /* MESHTRACE_METRICS_H */
