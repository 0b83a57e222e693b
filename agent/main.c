// SPDX-License-Identifier: Apache-2.0
/*
 * meshtrace: the node agent. This file composes the stages and nothing else:
 * capture -> conn (protocols) -> trace -> graph, export, serve, wired by the
 * callbacks below. The command line is in cli.c, the event loop in loop.c,
 * the health table (/api/stats, /metrics) in health.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/capture/xnode.h"
#include "agent/cli.h"
#include "agent/common/clock.h"
#include "agent/common/log.h"
#include "agent/common/privileges.h"
#include "agent/common/version.h"
#include "agent/conn/conn.h"
#include "agent/export/jsonl.h"
#include "agent/graph/graph.h"
#include "agent/health.h"
#include "agent/identity/identity.h"
#include "agent/identity/k8s.h"
#include "agent/identity/peers.h"
#include "agent/loop.h"
#include "agent/serve/assets.h"
#include "agent/serve/httpd.h"
#include "agent/serve/tracestore.h"
#include "agent/trace/dnsspans.h"

#define SHUTDOWN_FLUSH_MS 5000

/* A span leaves the agent: to the exporters. */
static void export_span(void *ctx, const struct mt_span *s)
{
	struct agent *a = ctx;

	if (a->otlp)
		otlp_exporter_add_span(a->otlp, s);
	if (a->jsonl)
		jsonl_exporter_add_span(a->jsonl, s);
}

static void on_span(void *ctx, const struct mt_span *s)
{
	struct agent *a = ctx;
	enum mt_sample_parent parent = MT_PARENT_NONE;
	bool sampled, exemplar;

	if (s->trace_remote)
		parent = (s->trace_flags & 0x01) ? MT_PARENT_REMOTE_SAMPLED
						 : MT_PARENT_REMOTE_NOT_SAMPLED;
	/*
	 * The sampler is pure (the trace id and the parent's flag decide), so its
	 * verdict is known before the metrics count the span: only a span whose
	 * trace goes out becomes an exemplar (OTEL_METRICS_EXEMPLAR_FILTER=
	 * trace_based), else a metric would point at a trace no backend has.
	 */
	sampled = mt_sampler_sample(&a->sampler, s->trace_id, parent);
	exemplar = !s->sdk_reported && (a->exemplar_filter == METRICS_EXEMPLARS_ALWAYS_ON ||
					(a->exemplar_filter == METRICS_EXEMPLARS_TRACE_BASED &&
					 sampled && a->traces_exported));
	/* Every span counts, whatever is exported: the graph, the RED metrics, the page. */
	graph_on_span_exemplar(a->graph, s, exemplar);
	metrics_on_span_exemplar(a->metrics, s, exemplar);
	if (s->sdk_reported)
		return; /* its SDK exports it: a second copy would be a duplicate */
	if (a->traces)
		tracestore_add(a->traces, s);
	if (sampled) {
		a->spans_sampled++;
		export_span(a, s);
	} else if (a->tailkeep) {
		/* Held until its local trace ends: kept if that trace erred or was slow. */
		tailkeep_add(a->tailkeep, s);
	} else {
		a->spans_sampled_out++;
	}
}

static void on_exchange(void *ctx, const struct conn_info *ci, const struct mt_exchange *x)
{
	struct agent *a = ctx;

	span_builder_on_exchange(a->spans, ci, x);
}

static void on_io(void *ctx, uint32_t tid, uint32_t pid, uint64_t sock, bool connect)
{
	struct agent *a = ctx;

	span_builder_on_io(a->spans, tid, pid, sock, connect);
}

static void on_mute(void *ctx, uint64_t sock, const struct mt_tuple *tuple)
{
	struct agent *a = ctx;

	if (a->capture && capture_mute(a->capture, sock, tuple) != 0)
		a->mute_failed++;
}

static int on_skip(void *ctx, uint64_t sock, const struct mt_skip *hint)
{
	struct agent *a = ctx;

	return a->capture ? capture_skip(a->capture, sock, hint) : 0;
}

/* A connection began with a TLS handshake: look for its process's TLS library. */
static void on_tls(void *ctx, uint32_t pid, uint64_t sock)
{
	struct agent *a = ctx;

	(void)sock;
	if (a->capture)
		capture_tls_on_handshake(a->capture, pid);
}

static int serve_metrics(void *ctx, const char *path, const char *query,
			 struct httpd_response *resp)
{
	struct agent *a = ctx;

	(void)path;
	(void)query;
	health_collect(a);
	/* OpenMetrics (with exemplars) for scrapers that ask for it, as Prometheus does. */
	if (metrics_accepts_openmetrics(resp->accept)) {
		resp->content_type = METRICS_OPENMETRICS_TYPE;
		return metrics_write_openmetrics(a->metrics, a->graph, &a->health, &resp->body);
	}
	resp->content_type = METRICS_PROMETHEUS_TYPE;
	return metrics_write_prometheus(a->metrics, a->graph, &a->health, &resp->body);
}

static int serve_graph(void *ctx, const char *path, const char *query, struct httpd_response *resp)
{
	struct agent *a = ctx;

	(void)path;
	(void)query;
	resp->content_type = "application/json";
	return graph_write_json(a->graph, &resp->body, mt_now_mono_ns());
}

/* The readiness probe: 200 while the kernel programs are attached, 503 otherwise (--replay). */
static int serve_healthz(void *ctx, const char *path, const char *query,
			 struct httpd_response *resp)
{
	const struct agent *a = ctx;

	(void)path;
	(void)query;
	if (!a->attached) {
		resp->status = 503;
		return mt_buf_puts(&resp->body, "not attached\n");
	}
	return mt_buf_puts(&resp->body, "ok\n");
}

static int serve_stats(void *ctx, const char *path, const char *query, struct httpd_response *resp)
{
	int err;

	(void)path;
	(void)query;
	resp->content_type = "application/json";
	err = health_write_json(ctx, &resp->body);
	return err ? err : mt_buf_puts(&resp->body, "\n");
}

static int start_httpd(struct agent *a, char *err, size_t errlen)
{
	const char *addr = a->opts.listen ? a->opts.listen : HTTPD_DEFAULT_LISTEN;

	if (strcmp(addr, "off") == 0)
		return 0;
	a->httpd = httpd__new(addr, err, errlen);
	if (!a->httpd)
		return -EINVAL;
	httpd_route(a->httpd, "/healthz", serve_healthz, a);
	httpd_route(a->httpd, "/api/stats", serve_stats, a);
	httpd_route(a->httpd, "/metrics", serve_metrics, a);
	httpd_route(a->httpd, "/api/graph", serve_graph, a);
	a->traces = tracestore__new();
	if (!a->traces) {
		snprintf(err, errlen, "out of memory for the trace store");
		return -ENOMEM;
	}
	httpd_route(a->httpd, "/api/traces", tracestore_serve_list, a->traces);
	httpd_route(a->httpd, "/api/traces/", tracestore_serve_trace, a->traces);
	httpd_route(a->httpd, "/", assets_serve, NULL);
	httpd_route(a->httpd, "/ui/", assets_serve, NULL);
	return 0;
}

static void agent_free(struct agent *a)
{
	capture__free(a->capture);
	conn_table__free(a->conns);
	span_builder__free(a->spans);
	identity__free(a->identity);
	k8s__free(a->k8s);
	otlp_exporter__free(a->otlp);
	jsonl_exporter__free(a->jsonl);
	httpd__free(a->httpd);
	tracestore__free(a->traces);
	metrics__free(a->metrics);
	graph__free(a->graph);
	peers__free(a->peers);
	dnsspans__free(a->dns_spans);
	tailkeep__free(a->tailkeep);
	loop_close(a);
}

/* Files the agent creates at start, removed again when the start fails. */
struct created_files {
	const char *paths[2];
	unsigned n;
};

/* Notes that @path is about to be made, unless it is there already (then it is the user's). */
static void note_created(struct created_files *cf, const char *path)
{
	if (cf->n < sizeof(cf->paths) / sizeof(cf->paths[0]) && access(path, F_OK) != 0)
		cf->paths[cf->n++] = path;
}

static void remove_created(const struct created_files *cf)
{
	for (unsigned i = 0; i < cf->n; i++)
		unlink(cf->paths[i]);
}

/* A file the agent will write at @path can be made there: its directory is writable. */
static int check_out_path(const char *flag, const char *path)
{
	char q[MT_LOG_VALUE_MAX + 32], dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof(dir), ".");
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		mt_err("%s '%s': a directory; give a file path", flag, mt_log_value(q, path));
		return 2;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		mt_err("%s '%s': cannot make a file in its directory (%s); give a path in a "
		       "writable directory",
		       flag, mt_log_value(q, path), strerror(errno));
		return 2;
	}
	return 0;
}

/* The files the flags name, checked before anything is made (each is made later). */
static int check_paths(const struct agent_opts *o)
{
	char q[MT_LOG_VALUE_MAX + 32];

	if (o->jsonl_path && strcmp(o->jsonl_path, "-") && check_out_path("--jsonl", o->jsonl_path))
		return 2;
	if (o->record_path && check_out_path("--record", o->record_path))
		return 2;
	if (o->replay_path && access(o->replay_path, R_OK) != 0) {
		mt_err("--replay '%s': %s", mt_log_value(q, o->replay_path), strerror(errno));
		return 2;
	}
	if (o->capture.cgroup) {
		struct xnode_scope scope;
		char err[512];

		if (xnode_scope_resolve(o->cgroup_from, o->capture.cgroup, &scope, err,
					sizeof(err)) != 0) {
			mt_err("%s", err);
			return 2;
		}
	}
	return 0;
}

/*
 * Everything the configuration says, checked before anything is started:
 * the OTEL_* variables. Returns 0, or 2 (the exit code) after one line.
 */
static int read_env_config(struct agent *a)
{
	char err[512] = "";

	if (otlp_config_from_env(&a->otlp_cfg, err, sizeof(err)) != 0 ||
	    mt_sampler_from_env(&a->sampler, err, sizeof(err)) != 0 ||
	    metrics_exemplar_filter_from_env(&a->exemplar_filter, err, sizeof(err)) != 0 ||
	    cli_metric_interval_from_env(&a->metric_interval_ms, err, sizeof(err)) != 0 ||
	    cli_sdk_disabled_from_env(&a->sdk_disabled, err, sizeof(err)) != 0) {
		mt_err("%s", err);
		return 2;
	}
	return 0;
}

/* The stages, in memory only: nothing here touches a file, a port or the kernel. */
static int build_stages(struct agent *a)
{
	a->identity = identity__new("/proc");
	if (a->identity && !a->opts.replay_path) {
		const char *sock = a->opts.cri_socket;

		if (!sock || strcmp(sock, "off") != 0) {
			a->k8s = k8s__new(sock);
			if (!a->k8s) {
				mt_err("out of memory");
				return 1;
			}
			identity_set_k8s(a->identity, a->k8s);
		}
	}
	a->spans = a->identity ? span_builder__new(&a->opts.spans, a->identity, on_span, a) : NULL;
	a->conns = conn_table__new(a->opts.max_conns, 0, on_exchange, a);
	a->dns_spans = dnsspans__new(on_exchange, a);
	a->peers = peers__new();
	a->graph = a->peers && a->identity ? graph__new(a->identity, a->peers) : NULL;
	a->metrics = metrics__new(&a->otlp_cfg);
	if (tailkeep_enabled(&a->opts.tailkeep)) {
		a->tailkeep = tailkeep__new(&a->opts.tailkeep, export_span, a);
		if (!a->tailkeep) {
			mt_err("out of memory");
			return 1;
		}
	}
	if (!a->identity || !a->spans || !a->conns || !a->dns_spans || !a->graph || !a->metrics) {
		mt_err("out of memory");
		return 1;
	}
	span_builder_set_clock(a->spans, mt_clock_offset_ns());
	conn_table_set_io_fn(a->conns, on_io);
	conn_table_set_mute_fn(a->conns, on_mute);
	if (!getenv("MESHTRACE_TEST_NO_SKIP")) /* every call an event, as before skip hints */
		conn_table_set_skip_fn(a->conns, on_skip);
	conn_table_set_tls_fn(a->conns, on_tls);
	peers_refresh_local_addrs(a->peers);
	graph_set_clock(a->graph, mt_clock_offset_ns());
	a->next_metrics_ms = mt_now_mono_ms() + a->metric_interval_ms;
	if (a->sdk_disabled)
		mt_info("OTEL_SDK_DISABLED=true: no OTLP export (traces, metrics); /metrics and "
			"the page stay served");
	else if (a->otlp_cfg.traces_url[0] || a->otlp_cfg.metrics_url[0]) {
		a->otlp_cfg.k8s = a->k8s;
		a->otlp = otlp_exporter__new(&a->otlp_cfg);
		if (!a->otlp) {
			mt_err("cannot start the OTLP exporter: %s", strerror(errno));
			return 1;
		}
	}
	return 0;
}

/*
 * What is seen from outside, cheapest and most often refused first: the
 * listener, the files, then the kernel programs. Returns 0, or the exit code
 * after one line; what was started is undone by the caller (agent_free,
 * remove_created).
 */
static int start_outside(struct agent *a, struct created_files *cf)
{
	char err[512] = "";
	FILE *probe;

	if (start_httpd(a, err, sizeof(err)) != 0) {
		mt_err("%s", err);
		return 2;
	}
	if (a->opts.jsonl_path) {
		if (strcmp(a->opts.jsonl_path, "-"))
			note_created(cf, a->opts.jsonl_path);
		a->jsonl = jsonl_exporter__new(a->opts.jsonl_path);
		if (a->jsonl)
			jsonl_exporter_set_k8s(a->jsonl, a->k8s);
		if (!a->jsonl) {
			char q[MT_LOG_VALUE_MAX + 32];

			mt_err("--jsonl '%s': %s", mt_log_value(q, a->opts.jsonl_path),
			       strerror(errno));
			return 2;
		}
	}
	/* --record's file is made before the programs load, so a bad path loads nothing. */
	if (a->opts.record_path) {
		note_created(cf, a->opts.record_path);
		probe = fopen(a->opts.record_path, "we");
		if (!probe) {
			char q[MT_LOG_VALUE_MAX + 32];

			mt_err("--record '%s': %s", mt_log_value(q, a->opts.record_path),
			       strerror(errno));
			return 2;
		}
		fclose(probe);
	}
	if (a->opts.replay_path)
		a->capture = capture__open_replay(a->opts.replay_path, loop_on_event, a, err,
						  sizeof(err));
	else
		a->capture = capture__open(&a->opts.capture, loop_on_event, a, err, sizeof(err));
	if (!a->capture) {
		mt_err("%s", err);
		return 2;
	}
	a->attached = !a->opts.replay_path;
	if (a->opts.record_path) {
		int ret = capture_record_to(a->capture, a->opts.record_path);

		if (ret) {
			mt_err("--record: %s", strerror(-ret));
			return 2;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct agent a = {.epfd = -1, .sigfd = -1, .timerfd = -1};
	struct created_files created = {.n = 0};
	char err[512] = "";
	int rc;

	/* 1. The configuration, whole: flags, then the environment. Nothing started yet. */
	rc = cli_parse(argc, argv, &a.opts, err, sizeof(err));
	if (rc < 0) {
		mt_err("%s", err);
		return 2;
	}
	if (rc == CLI_HELP) {
		cli_usage(stdout);
		return 0;
	}
	if (rc == CLI_VERSION) {
		printf("meshtrace %s\n", MESHTRACE_VERSION);
		return 0;
	}
	if (a.opts.log_level >= 0)
		mt_log_level = (enum mt_log_level)a.opts.log_level;
	rc = read_env_config(&a);
	if (!rc)
		rc = check_paths(&a.opts);
	if (rc)
		return rc;
	/* 2. The privileges the kernel programs need. */
	if (!a.opts.replay_path && privileges_check(err, sizeof(err)) != 0) {
		mt_err("%s", err);
		return 2;
	}
	/* 3. The stages in memory, then what is seen from outside. */
	rc = build_stages(&a);
	if (!rc)
		rc = start_outside(&a, &created);
	if (rc)
		goto out_undo;
	a.traces_exported = (a.otlp && a.otlp_cfg.traces_url[0]) || a.jsonl;
	rc = loop_setup(&a);
	if (rc) {
		mt_err("cannot set up the event loop: %s", strerror(-rc));
		rc = 1;
		goto out_undo;
	}
	cli_apply_cpu_priority(a.opts.priority);
	fprintf(stderr, "meshtrace: ready\n");
	if (a.opts.replay_path)
		mt_info("replaying %s", a.opts.replay_path);
	else
		mt_info("capturing with %s tracepoints, %u payload bytes per call",
			capture_mode_name(a.capture), a.opts.capture.capture_bytes);
	mt_info("%s%s%s", a.otlp ? "exporting to " : "no OTLP endpoint set",
		a.otlp ? a.otlp_cfg.traces_url : "", a.jsonl ? ", writing JSON lines" : "");
	if (a.httpd)
		mt_info("listening on http://%s/",
			a.opts.listen ? a.opts.listen : HTTPD_DEFAULT_LISTEN);

	rc = loop_run(&a);
	if (rc) {
		mt_err("event loop failed: %s", strerror(-rc));
		rc = 1;
	}
	/* Back to normal priority: the final flush is bounded in time, not starved. */
	cli_restore_cpu_priority(a.opts.priority);
	/* Detach first so nothing new arrives, then flush what was captured. */
	a.attached = false;
	capture_detach(a.capture);
	capture_drain_all(a.capture);
	graph_flush(a.graph, mt_now_mono_ns());
	if (a.tailkeep)
		tailkeep_flush(a.tailkeep); /* traces still held: decided on what they hold */
	loop_export_metrics(&a); /* the final values, so a short run's metrics are not lost */
	if (a.otlp && otlp_exporter_flush(a.otlp, SHUTDOWN_FLUSH_MS) != 0)
		mt_warn("the collector did not take every span within %d ms", SHUTDOWN_FLUSH_MS);
	if (a.jsonl)
		jsonl_exporter_flush(a.jsonl);
	loop_print_stats(&a, "final");
	agent_free(&a);
	return rc;

out_undo:
	agent_free(&a);
	remove_created(&created);
	return rc;
}
