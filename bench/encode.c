// SPDX-License-Identifier: Apache-2.0
/*
 * bench/encode: what exporting a span costs in CPU and in bytes, off line.
 *
 * Two batches of 512 spans (the exporter's default batch):
 *  - "loopback": what the HTTP benchmark produces, pairs of an nginx SERVER
 *    span and a load generator CLIENT span in one trace, 127.0.0.1, one path;
 *  - "varied": a busier node, 8 server processes, varied paths and clients.
 * For each: CPU time (CLOCK_PROCESS_CPUTIME_ID, so spans per second per core)
 * of otlp_encode_spans() + gzip at the exporter's level, and of the whole
 * exporter path, otlp_exporter_add_span(), which copies, encodes and
 * compresses each full batch (nothing is sent: the exporter is never polled).
 * Also the protobuf and gzip bytes per span. One JSON object on stdout.
 *
 * With -x ENDPOINT -p http|grpc: the whole export instead, to a real receiver
 * (bench/sink for OTLP/HTTP, bench/grpc_sink.py for OTLP/gRPC): "loopback"
 * spans go through otlp_exporter_add_span() and the transport for -t seconds
 * at -r spans per second (default 100,000: both receivers keep up, so both
 * protocols do the same work per second), then a flush; CPU time of this
 * process (encode, gzip, libcurl, HTTP/1.1 or HTTP/2 framing) per span the
 * receiver accepted.
 *
 * Usage: encode [-t SECONDS_PER_MEASURE] [-x ENDPOINT -p http|grpc [-r SPANS_PER_S]]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/export/otlp.h"

#include "benchutil.h"

#define ENC_BATCH 512
/* The exporter's zlib level (OTLP_GZIP_LEVEL in agent/export/otlp.c). */
#define ENC_GZIP_LEVEL 1

struct enc_result {
	double encode_gzip_spans_per_s;
	double add_span_spans_per_s;
	double pb_bytes_per_span;
	double gz_bytes_per_span;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void random_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

static void base_span(struct mt_span *s, uint64_t t, uint32_t pid, const char *svc, uint8_t kind)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->status = MT_STATUS_UNSET;
	s->protocol = MT_PROTO_HTTP1;
	s->http_minor = 1;
	s->http_status = 200;
	s->start_unix_ns = t;
	s->end_unix_ns = t + 20000 + rng() % 200000;
	s->resp_body_bytes = 600;
	s->resource.pid = pid;
	snprintf(s->resource.service_name, sizeof(s->resource.service_name), "%s", svc);
	snprintf(s->resource.exe_name, sizeof(s->resource.exe_name), "%s", svc);
	snprintf(s->name, sizeof(s->name), "GET");
	snprintf(s->method, sizeof(s->method), "GET");
	snprintf(s->scheme, sizeof(s->scheme), "http");
	random_bytes(s->span_id, sizeof(s->span_id));
}

/* nginx SERVER + loadgen CLIENT pairs on loopback, the client span the parent. */
static void make_loopback(struct mt_span *s, size_t n)
{
	uint64_t t = 1760000000000000000ull;

	for (size_t i = 0; i + 1 < n; i += 2) {
		uint16_t cport = (uint16_t)(40000 + rng() % 32);

		t += 15000;
		base_span(&s[i], t, 4242, "wrk", MT_SPAN_CLIENT);
		base_span(&s[i + 1], t + 5000, 4100, "nginx", MT_SPAN_SERVER);
		random_bytes(s[i].trace_id, sizeof(s[i].trace_id));
		memcpy(s[i + 1].trace_id, s[i].trace_id, sizeof(s[i].trace_id));
		memcpy(s[i + 1].parent_span_id, s[i].span_id, sizeof(s[i].span_id));
		for (size_t k = i; k < i + 2; k++) {
			s[k].server_port = 8080;
			s[k].client_port = cport;
			s[k].peer_port = s[k].kind == MT_SPAN_SERVER ? cport : 8080;
			snprintf(s[k].path, sizeof(s[k].path), "/index.html");
			snprintf(s[k].server_address, sizeof(s[k].server_address), "127.0.0.1");
			snprintf(s[k].client_address, sizeof(s[k].client_address), "127.0.0.1");
			snprintf(s[k].peer_address, sizeof(s[k].peer_address), "127.0.0.1");
		}
	}
}

/* 8 server processes, varied paths, clients and timing. */
static void make_varied(struct mt_span *s, size_t n)
{
	uint64_t t = 1760000000000000000ull;

	for (size_t i = 0; i < n; i++) {
		t += rng() % 100000;
		base_span(&s[i], t, 1000 + (uint32_t)(i % 8), "shop-api", MT_SPAN_SERVER);
		random_bytes(s[i].trace_id, sizeof(s[i].trace_id));
		s[i].server_port = 8080;
		s[i].client_port = (uint16_t)(32768 + rng() % 28000);
		s[i].peer_port = s[i].client_port;
		s[i].resp_body_bytes = 200 + rng() % 4000;
		snprintf(s[i].path, sizeof(s[i].path), "/api/v1/products/%u",
			 (unsigned)(rng() % 5000));
		snprintf(s[i].server_address, sizeof(s[i].server_address), "shop.local");
		snprintf(s[i].client_address, sizeof(s[i].client_address), "10.0.%u.%u",
			 (unsigned)(rng() % 4), (unsigned)(rng() % 250));
		snprintf(s[i].peer_address, sizeof(s[i].peer_address), "%s", s[i].client_address);
	}
}

static int gzip_once(z_stream *z, const uint8_t *in, size_t len, uint8_t **out, size_t *cap,
		     size_t *outlen)
{
	size_t need = deflateBound(z, len);

	if (need > *cap) {
		uint8_t *p = realloc(*out, need);

		if (!p)
			return -ENOMEM;
		*out = p;
		*cap = need;
	}
	if (deflateReset(z) != Z_OK)
		return -EIO;
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)len;
	z->next_out = *out;
	z->avail_out = (uInt)*cap;
	if (deflate(z, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	*outlen = *cap - z->avail_out;
	return 0;
}

static int measure(const struct mt_span *spans, double seconds, struct enc_result *r)
{
	struct otlp_config cfg;
	struct otlp_exporter *x;
	z_stream z = {0};
	uint8_t *pb = NULL, *gz = NULL;
	size_t pblen = 0, gzlen = 0, gzcap = 0;
	uint64_t t0, budget = (uint64_t)(seconds * 1e9), batches = 0, added = 0;
	int err;

	otlp_config_defaults(&cfg);
	snprintf(cfg.host_name, sizeof(cfg.host_name), "bench-node");
	/* A port nobody listens on: the exporter is never polled, so nothing is sent. */
	snprintf(cfg.traces_url, sizeof(cfg.traces_url), "http://127.0.0.1:9/v1/traces");
	if (deflateInit2(&z, ENC_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;

	t0 = bench_cpu_ns();
	do {
		err = otlp_encode_spans(spans, ENC_BATCH, &cfg, &pb, &pblen);
		if (!err)
			err = gzip_once(&z, pb, pblen, &gz, &gzcap, &gzlen);
		if (err)
			goto out;
		free(pb);
		pb = NULL;
		batches++;
	} while (bench_cpu_ns() - t0 < budget);
	r->encode_gzip_spans_per_s =
		(double)(batches * ENC_BATCH) / ((double)(bench_cpu_ns() - t0) / 1e9);
	err = otlp_encode_spans(spans, ENC_BATCH, &cfg, &pb, &pblen);
	if (!err)
		err = gzip_once(&z, pb, pblen, &gz, &gzcap, &gzlen);
	if (err)
		goto out;
	r->pb_bytes_per_span = (double)pblen / ENC_BATCH;
	r->gz_bytes_per_span = (double)gzlen / ENC_BATCH;

	x = otlp_exporter__new(&cfg);
	if (!x) {
		err = -errno;
		goto out;
	}
	t0 = bench_cpu_ns();
	do {
		for (size_t i = 0; i < ENC_BATCH; i++)
			otlp_exporter_add_span(x, &spans[i]);
		added += ENC_BATCH;
	} while (bench_cpu_ns() - t0 < budget);
	r->add_span_spans_per_s = (double)added / ((double)(bench_cpu_ns() - t0) / 1e9);
	otlp_exporter__free(x);
out:
	free(pb);
	free(gz);
	deflateEnd(&z);
	return err;
}

/* The whole export path to a receiver at @endpoint: CPU per accepted span. */
static int measure_export(const struct mt_span *spans, const char *endpoint, bool grpc,
			  double seconds, double rate)
{
	uint64_t next_ns, step_ns = (uint64_t)(ENC_BATCH / rate * 1e9);
	struct otlp_config cfg;
	struct otlp_exporter *x;
	struct otlp_stats st;
	uint64_t t0, c0, wall, cpu, added = 0;
	int efd, n;

	otlp_config_defaults(&cfg);
	snprintf(cfg.host_name, sizeof(cfg.host_name), "bench-node");
	n = snprintf(cfg.traces_url, sizeof(cfg.traces_url), "%s%s", endpoint,
		     grpc ? OTLP_GRPC_TRACES_METHOD : "/v1/traces");
	if (n < 0 || (size_t)n >= sizeof(cfg.traces_url))
		return -EINVAL;
	cfg.traces.protocol = grpc ? OTLP_GRPC : OTLP_HTTP_PROTOBUF;
	x = otlp_exporter__new(&cfg);
	if (!x)
		return -errno;
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0) {
		otlp_exporter__free(x);
		return -errno;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN};

		epoll_ctl(efd, EPOLL_CTL_ADD, otlp_exporter_fd(x), &ev);
	}
	t0 = bench_now_ns();
	c0 = bench_cpu_ns();
	next_ns = t0;
	while (bench_now_ns() - t0 < (uint64_t)(seconds * 1e9)) {
		struct epoll_event ev;
		uint64_t now = bench_now_ns();

		if (now >= next_ns) {
			for (size_t i = 0; i < ENC_BATCH; i++)
				otlp_exporter_add_span(x, &spans[i]);
			added += ENC_BATCH;
			next_ns += step_ns;
		} else {
			int t = otlp_exporter_timeout_ms(x);
			int until = (int)((next_ns - now) / 1000000) + 1;

			epoll_wait(efd, &ev, 1, t < 0 || t > until ? until : t);
		}
		otlp_exporter_poll(x);
	}
	otlp_exporter_flush(x, 30000);
	cpu = bench_cpu_ns() - c0;
	wall = bench_now_ns() - t0;
	otlp_exporter_stats(x, &st);
	printf("{\"protocol\":\"%s\",\"rate\":%.0f,\"spans_added\":%" PRIu64
	       ",\"spans_exported\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
	       ",\"cpu_s\":%.3f,\"wall_s\":%.3f"
	       ",\"cpu_ns_per_span\":%.1f,\"spans_per_s_per_core\":%.0f,\"last_error\":\"%s\"}\n",
	       grpc ? "grpc" : "http/protobuf", rate, added, st.spans_exported, st.retries,
	       st.bytes_sent, (double)cpu / 1e9, (double)wall / 1e9,
	       st.spans_exported ? (double)cpu / (double)st.spans_exported : 0.0,
	       cpu ? (double)st.spans_exported / ((double)cpu / 1e9) : 0.0,
	       st.last_error[0] ? "see stderr" : "");
	if (st.last_error[0])
		fprintf(stderr, "encode: last export error: %s\n", st.last_error);
	close(efd);
	otlp_exporter__free(x);
	return st.spans_exported ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	static struct mt_span loopback[ENC_BATCH], varied[ENC_BATCH];
	const char *endpoint = NULL, *proto = "http";
	struct enc_result a, b;
	double seconds = 1.0, rate = 100000;
	int opt, err;

	while ((opt = getopt(argc, argv, "t:x:p:r:")) != -1) {
		if (opt == 'r' && (rate = strtod(optarg, NULL)) >= 1000 && rate <= 1e8) {
			continue;
		} else if (opt == 'x') {
			endpoint = optarg;
		} else if (opt == 'p' && (!strcmp(optarg, "http") || !strcmp(optarg, "grpc"))) {
			proto = optarg;
		} else if (opt != 't' || (seconds = strtod(optarg, NULL)) <= 0 || seconds > 60) {
			fprintf(stderr, "usage: encode [-t SECONDS_PER_MEASURE] "
					"[-x ENDPOINT -p http|grpc [-r SPANS_PER_S]]\n");
			return 2;
		}
	}
	make_loopback(loopback, ENC_BATCH);
	if (endpoint) {
		err = measure_export(loopback, endpoint, !strcmp(proto, "grpc"), seconds, rate);
		if (err)
			fprintf(stderr, "encode: export to %s: %s\n", endpoint, strerror(-err));
		return err ? 1 : 0;
	}
	make_varied(varied, ENC_BATCH);
	err = measure(loopback, seconds, &a);
	if (!err)
		err = measure(varied, seconds, &b);
	if (err) {
		fprintf(stderr, "encode: %s\n", strerror(-err));
		return 1;
	}
	printf("{\"batch\":%d,\"gzip_level\":%d,"
	       "\"loopback\":{\"encode_gzip_spans_per_s\":%.0f,\"add_span_spans_per_s\":%.0f,"
	       "\"pb_bytes_per_span\":%.1f,\"gz_bytes_per_span\":%.1f},"
	       "\"varied\":{\"encode_gzip_spans_per_s\":%.0f,\"add_span_spans_per_s\":%.0f,"
	       "\"pb_bytes_per_span\":%.1f,\"gz_bytes_per_span\":%.1f}}\n",
	       ENC_BATCH, ENC_GZIP_LEVEL, a.encode_gzip_spans_per_s, a.add_span_spans_per_s,
	       a.pb_bytes_per_span, a.gz_bytes_per_span, b.encode_gzip_spans_per_s,
	       b.add_span_spans_per_s, b.pb_bytes_per_span, b.gz_bytes_per_span);
	return 0;
}
