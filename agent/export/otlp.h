/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OTLP/HTTP exporter: spans (and pre-encoded metrics) to an OpenTelemetry
 * collector as protobuf, gzip, POST /v1/traces and /v1/metrics.
 * Spec: https://opentelemetry.io/docs/specs/otlp/#otlphttp and
 *       https://opentelemetry.io/docs/specs/otel/protocol/exporter/
 *
 * Runs inside the caller's event loop, never blocks and never spawns a thread:
 * the caller watches otlp_exporter_fd() for EPOLLIN, waits no longer than
 * otlp_exporter_timeout_ms(), and calls otlp_exporter_poll() after either.
 * Not thread-safe: call every function from the loop's thread.
 *
 * Bounds (all drops are counted in struct otlp_stats):
 *  - spans waiting to be batched: at most batch_max;
 *  - encoded batches: at most queue_max_spans spans in total, the batch on the
 *    wire included; when a new batch does not fit, the OLDEST batches not on
 *    the wire are dropped (if only the one on the wire is left, the new batch
 *    is kept anyway: queue_max_spans < 2 * batch_max overshoots by one batch);
 *  - encoded metrics requests: at most OTLP_METRICS_QUEUE_MAX, oldest dropped.
 * A batch is retried (backoff below) until the collector accepts it, rejects
 * it for good, or newer spans push it out of the queue.
 */
#ifndef MESHTRACE_OTLP_H
#define MESHTRACE_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/identity/k8s.h"
#include "agent/trace/span.h"

/* Size limits of struct otlp_config (a longer env value is an error, not truncated). */
#define OTLP_URL_MAX		1024
#define OTLP_HEADERS_MAX	16
#define OTLP_HEADER_NAME_MAX	64
#define OTLP_HEADER_VALUE_MAX	512
#define OTLP_RESOURCE_ATTRS_MAX 32
#define OTLP_ATTR_KEY_MAX	128
#define OTLP_ATTR_VALUE_MAX	256
#define OTLP_HOST_NAME_MAX	256
#define OTLP_KNOWN_METHODS_MAX	32
#define OTLP_PATH_MAX		1024 /* a TLS file's path */

/*
 * Defaults: the OpenTelemetry spec's, except gzip (on for us) and the queue.
 * An SDK queues span objects; this queue holds spans already encoded and
 * gzipped (~47 B each), so 65,536 of them cost ~3 MiB and ride out the stalls
 * of a busy node that made 2,048 drop whole batches (make bench, figure 4).
 */
#define OTLP_DEFAULT_TIMEOUT_MS	       10000
#define OTLP_DEFAULT_SCHEDULE_DELAY_MS 5000
#define OTLP_DEFAULT_EXPORT_TIMEOUT_MS 30000
/*
 * Spans per export request: the SDK specification's default. (128 made the
 * gzip bursts smaller, but with one request in flight the exporter then sent
 * too few spans per second at saturation: the queue filled, make bench.)
 */
#define OTLP_DEFAULT_BATCH_MAX 512
#define OTLP_DEFAULT_QUEUE_MAX 65536
/* Upper limits accepted from the environment. */
#define OTLP_BATCH_LIMIT      8192
#define OTLP_QUEUE_LIMIT      (1u << 20)
#define OTLP_TIMEOUT_LIMIT_MS 3600000L

/* Retry policy: exponential backoff with full jitter, and Retry-After. */
#define OTLP_RETRY_BASE_MS	1000   /* cap of the first retry's random delay */
#define OTLP_RETRY_MAX_MS	30000  /* cap of any retry's random delay */
#define OTLP_RETRY_MIN_MS	100    /* floor, so a jitter of ~0 does not spin */
#define OTLP_RETRY_AFTER_MAX_MS 300000 /* a longer Retry-After is cut to this */

/* Encoded metrics requests waiting to be sent. */
#define OTLP_METRICS_QUEUE_MAX 8

struct otlp_header {
	char name[OTLP_HEADER_NAME_MAX];
	char value[OTLP_HEADER_VALUE_MAX];
};

struct otlp_kv {
	char key[OTLP_ATTR_KEY_MAX];
	char value[OTLP_ATTR_VALUE_MAX];
};

/* The OTLP/gRPC methods (opentelemetry-proto, collector/{trace,metrics}/v1). */
#define OTLP_GRPC_TRACES_METHOD	 "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define OTLP_GRPC_METRICS_METHOD "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

/* OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_}PROTOCOL */
enum otlp_protocol {
	OTLP_HTTP_PROTOBUF = 0, /* "http/protobuf": POST /v1/<signal>, HTTP/1.1 or h2 by ALPN */
	OTLP_GRPC = 1,		/* "grpc": unary Export call over HTTP/2 */
};

/* What one signal's requests look like on the wire. */
struct otlp_transport_config {
	struct otlp_header
		headers[OTLP_HEADERS_MAX]; /* sent as given, after ours (gRPC metadata) */
	unsigned n_headers;
	bool gzip;	 /* Content-Encoding: gzip; gRPC: grpc-encoding: gzip */
	long timeout_ms; /* one HTTP attempt, connect included; gRPC: also grpc-timeout */
	enum otlp_protocol protocol;
	/*
	 * TLS to the collector (https:// URLs), PEM files; "" = the system's CAs,
	 * no client certificate. OTEL_EXPORTER_OTLP_{,<SIGNAL>_}CERTIFICATE,
	 * _CLIENT_CERTIFICATE, _CLIENT_KEY.
	 */
	char ca_file[OTLP_PATH_MAX];
	char client_cert[OTLP_PATH_MAX];
	char client_key[OTLP_PATH_MAX];
};

struct otlp_config {
	/*
	 * Where requests go ("" = that export off). gRPC: the method's URL,
	 * http[s]://host:port/opentelemetry.proto.collector.<signal>.v1.<Service>/Export.
	 */
	char traces_url[OTLP_URL_MAX];
	char metrics_url[OTLP_URL_MAX];
	struct otlp_transport_config traces;
	struct otlp_transport_config metrics;
	/* Batching, from OTEL_BSP_MAX_EXPORT_BATCH_SIZE, _SCHEDULE_DELAY, _MAX_QUEUE_SIZE: */
	unsigned batch_max;	    /* spans per request */
	unsigned schedule_delay_ms; /* longest a span waits for its batch to fill */
	unsigned queue_max_spans;   /* encoded spans kept while the collector lags */
	/*
	 * OTEL_BSP_EXPORT_TIMEOUT: caps each attempt, with the signal's timeout_ms,
	 * and bounds a request's retries: no attempt starts later than this after
	 * its first; the request is then dropped, counted (as the Go SDK's batch
	 * processor bounds its exporter's retries by the same deadline).
	 */
	unsigned export_timeout_ms;
	unsigned retry_base_ms; /* OTLP_RETRY_BASE_MS unless a test shortens it */
	unsigned retry_max_ms;	/* OTLP_RETRY_MAX_MS unless a test shortens it */
	/*
	 * Added to every Resource (OTEL_RESOURCE_ATTRIBUTES). Attributes the agent
	 * sets itself win: service.name, process.pid, process.executable.name
	 * come from the observed process (service.name here is the agent's own:
	 * service_name below), telemetry.sdk.* are meshtrace's. host.name is
	 * host_name below.
	 */
	struct otlp_kv resource_attrs[OTLP_RESOURCE_ATTRS_MAX];
	unsigned n_resource_attrs;
	char host_name[OTLP_HOST_NAME_MAX]; /* host.name; "" = not sent */
	/*
	 * The Kubernetes names of the observed containers (not owned; NULL: none),
	 * written on each process's resource (agent/export/k8s_attrs.h).
	 */
	const struct k8s *k8s;
	/*
	 * service.name of the agent's OWN resource (its graph and health metrics),
	 * never of the services it observes: OTEL_SERVICE_NAME, else service.name
	 * of OTEL_RESOURCE_ATTRIBUTES. "" = "meshtrace".
	 */
	char service_name[OTLP_ATTR_VALUE_MAX];
	/* http.request.method values kept as is; others become "_OTHER". 0 = the semconv list. */
	char known_methods[OTLP_KNOWN_METHODS_MAX][MT_METHOD_MAX];
	unsigned n_known_methods;
};

struct otlp_stats {
	uint64_t spans_received;	   /* handed to otlp_exporter_add_span() */
	uint64_t spans_exported;	   /* accepted by the collector (2xx, minus rejected) */
	uint64_t spans_dropped_queue_full; /* oldest batches pushed out by newer spans */
	uint64_t spans_dropped_rejected;   /* non-retryable answer, or partial_success */
	uint64_t spans_dropped_shutdown;   /* still queued when otlp_exporter_flush() gave up */
	uint64_t spans_dropped_error;	   /* could not be encoded (out of memory) */
	uint64_t spans_dropped_expired;	   /* retried until OTEL_BSP_EXPORT_TIMEOUT passed */
	uint64_t responses_malformed; /* 2xx whose protobuf body did not parse (kept as accepted) */
	uint64_t batches_sent;	      /* trace requests answered 2xx */
	uint64_t batches_failed;      /* trace requests answered non-retryable 4xx/5xx */
	uint64_t batches_expired;     /* requests (both signals) given up after retrying */
	uint64_t retries;	      /* attempts scheduled again, both signals */
	uint64_t bytes_sent;	      /* request bodies put on the wire, retries included */
	uint64_t queue_spans;	      /* spans now waiting (unbatched + queued + on the wire) */
	uint64_t metrics_requests_sent;	   /* metrics requests answered 2xx */
	uint64_t metrics_requests_dropped; /* queue full, non-retryable answer, or shutdown */
	uint64_t metrics_points_rejected;  /* partial_success.rejected_data_points */
	int last_http_status;		   /* 0 before any answer */
	int last_grpc_status;		   /* grpc-status of the last gRPC answer; -1 before */
	char last_error[192];		   /* "" while everything went fine */
};

/*
 * Fills @cfg with the defaults: exports off (no URL), gzip on, the spec's
 * timeouts and sizes, host_name from gethostname().
 */
void otlp_config_defaults(struct otlp_config *cfg);

/*
 * Fills @cfg from the standard OpenTelemetry environment variables
 * (OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_}{ENDPOINT,HEADERS,COMPRESSION,TIMEOUT,
 * PROTOCOL,INSECURE,CERTIFICATE,CLIENT_KEY,CLIENT_CERTIFICATE}, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_SERVICE_NAME, OTEL_BSP_*, OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS). An empty
 * variable counts as unset. A signal-specific variable replaces the general one
 * whole (headers too: the lists are not merged), as the exporter spec and the
 * Java, Python and Go SDKs read it.
 * With no endpoint variable set both exports stay off. PROTOCOL is
 * http/protobuf (default) or grpc; a gRPC endpoint is used as is (no
 * /v1/<signal> path; host:port without a scheme is https unless INSECURE is
 * true, and gets port 4317 when it has none).
 * Returns 0, or -EINVAL with one line in @err naming the variable, the value
 * and the fix (@cfg is then partly filled and must not be used).
 */
int otlp_config_from_env(struct otlp_config *cfg, char *err, size_t errlen);

struct otlp_exporter;

/*
 * Creates an exporter for @cfg (copied). At least one of traces_url and
 * metrics_url must be set. Allocates everything the steady state needs.
 * On error returns NULL and sets errno (EINVAL: bad @cfg; ENOMEM; EIO: libcurl).
 */
struct otlp_exporter *otlp_exporter__new(const struct otlp_config *cfg);

/* Aborts transfers in flight and frees @x; queued spans are lost. NULL is a no-op. */
void otlp_exporter__free(struct otlp_exporter *x);

/*
 * Copies @s into the current batch. Never blocks and never fails: when the
 * queue is full the oldest batch is dropped and counted. A full batch is
 * encoded here. No-op when traces export is off.
 */
void otlp_exporter_add_span(struct otlp_exporter *x, const struct mt_span *s);

/* An epoll fd that turns readable when otlp_exporter_poll() has work. */
int otlp_exporter_fd(struct otlp_exporter *x);

/* Milliseconds until otlp_exporter_poll() must run again, 0 = now, -1 = no deadline. */
int otlp_exporter_timeout_ms(struct otlp_exporter *x);

/* Drives transfers, retries and the batch delay. Never blocks. */
void otlp_exporter_poll(struct otlp_exporter *x);

/*
 * At shutdown: sends every queued span and metrics request, blocking up to
 * @deadline_ms. Returns 0 when all were answered (accepted or rejected), or
 * -ETIMEDOUT; then what was left is dropped and counted (spans_dropped_shutdown).
 */
int otlp_exporter_flush(struct otlp_exporter *x, int deadline_ms);

/*
 * Queues an encoded ExportMetricsServiceRequest (@pb, @len, copied and
 * compressed here) for metrics_url. Returns 0 (an older request may have been
 * dropped to make room), -ENOTCONN when metrics export is off, -ENOMEM.
 */
int otlp_exporter_send_metrics(struct otlp_exporter *x, const uint8_t *pb, size_t len);

/* Copies the counters into @out. */
void otlp_exporter_stats(const struct otlp_exporter *x, struct otlp_stats *out);

/*
 * Encodes @n spans as one ExportTraceServiceRequest (uncompressed protobuf):
 * one ResourceSpans per process (mt_span.resource.pid), attributes per the
 * stable HTTP semantic conventions. Strings that are not valid UTF-8 are
 * repaired (U+FFFD). On success *@out is malloc()ed (the caller free()s it).
 * Returns 0, -EINVAL or -ENOMEM.
 */
int otlp_encode_spans(const struct mt_span *spans, size_t n, const struct otlp_config *cfg,
		      uint8_t **out, size_t *outlen);

#endif /* MESHTRACE_OTLP_H */
