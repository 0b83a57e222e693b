// SPDX-License-Identifier: Apache-2.0
/*
 * The /api/graph document: the graph's nodes, edges and services with their
 * counts, rates over the sliding window and latency percentiles estimated
 * from the histograms. Its shape is documented in docs/architecture.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/common/json.h"
#include "agent/graph/graph.h"
#include "agent/protocols/l7.h"

/* Milliseconds at quantile @q: the window's buckets, else the cumulative ones. */
/* A node's id: "namespace/name" for a service in a Kubernetes namespace, else its name. */
static const char *node_id(const struct graph_node *n, char *buf, size_t len)
{
	if (!n->namespace_name[0])
		return n->name;
	snprintf(buf, len, "%s/%s", n->namespace_name, n->name);
	return buf;
}

static double pick_ms(const uint32_t *window, const struct graph_hist *total, const double *bounds,
		      unsigned n, double q)
{
	uint64_t in_window = 0;

	for (unsigned i = 0; i <= n; i++)
		in_window += window[i];
	if (in_window)
		return 1000 * graph_quantile(bounds, n, window, q);
	return 1000 * graph_quantile64(bounds, n, total->buckets, q);
}

static double pick_connect_ms(const uint32_t *window, const struct graph_hist *total)
{
	uint64_t in_window = 0;

	for (unsigned i = 0; i <= GRAPH_CONNECT_BOUNDS; i++)
		in_window += window[i];
	if (in_window)
		return 1000 *
		       graph_quantile(graph_connect_bounds, GRAPH_CONNECT_BOUNDS, window, 0.5);
	return 1000 *
	       graph_quantile64(graph_connect_bounds, GRAPH_CONNECT_BOUNDS, total->buckets, 0.5);
}

static void key_f64(struct mt_json *j, const char *key, double v, int decimals)
{
	mt_json_key(j, key);
	mt_json_f64(j, v, decimals);
}

static double round3(double v)
{
	return round(v * 1000) / 1000;
}

int graph_write_json(const struct graph *g, struct mt_buf *b, uint64_t now_ns)
{
	uint32_t nnodes = graph_node_count(g), nedges = graph_edge_count(g);
	uint64_t *sums = calloc(4 * (size_t)(nnodes ? nnodes : 1), sizeof(uint64_t));
	uint64_t *in_req = sums, *in_fail = sums + nnodes, *out_req = sums + 2 * nnodes;
	uint64_t *out_fail = sums + 3 * nnodes;
	char id[sizeof(((struct graph_node *)0)->namespace_name) + GRAPH_NAME_MAX];
	struct timespec rt;
	struct graph_slot w;
	double window = 0;
	struct mt_json j;

	if (!sums)
		return -ENOMEM;
	for (uint32_t i = 0; i < nedges; i++) {
		const struct graph_edge *e = graph_edge_at(g, i);

		in_req[e->server] += e->requests;
		in_fail[e->server] += e->failed;
		out_req[e->client] += e->requests;
		out_fail[e->client] += e->failed;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	{
		static const struct graph_slot none[GRAPH_WINDOW_SLOTS];

		window = graph_window(g, none, now_ns, &w);
	}
	mt_json_init(&j, b);
	mt_json_obj_open(&j);
	mt_json_key_u64(&j, "generated_unix_ms",
			(uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000);
	mt_json_key(&j, "window_s");
	mt_json_f64(&j, round(window), 0);
	mt_json_key(&j, "nodes");
	mt_json_arr_open(&j);
	for (uint32_t i = 0; i < nnodes; i++) {
		const struct graph_node *n = graph_node_at(g, i);
		bool has_in = false, has_edge = false;

		for (uint32_t k = 0; k < nedges && !has_in; k++) {
			has_edge |= graph_edge_at(g, k)->client == i ||
				    graph_edge_at(g, k)->server == i;
			has_in |= graph_edge_at(g, k)->server == i;
		}
		if (!has_edge && n->kind != GRAPH_NODE_SERVICE)
			continue;
		mt_json_obj_open(&j);
		mt_json_key_str(&j, "id", node_id(n, id, sizeof(id)));
		mt_json_key_str(&j, "name", n->name);
		if (n->namespace_name[0])
			mt_json_key_str(&j, "namespace", n->namespace_name);
		if (n->workload[0])
			mt_json_key_str(&j, "workload", n->workload);
		mt_json_key_str(&j, "kind", graph_node_kind_name(n->kind));
		mt_json_key_u64(&j, "requests", has_in ? in_req[i] : out_req[i]);
		mt_json_key_u64(&j, "failed", has_in ? in_fail[i] : out_fail[i]);
		mt_json_obj_close(&j);
	}
	mt_json_arr_close(&j);
	mt_json_key(&j, "edges");
	mt_json_arr_open(&j);
	for (uint32_t i = 0; i < nedges; i++) {
		const struct graph_edge *e = graph_edge_at(g, i);
		const struct graph_hist *ch = &e->client_latency;
		const uint32_t *cw;
		uint64_t cn = 0;

		window = graph_window(g, e->slots, now_ns, &w);
		mt_json_obj_open(&j);
		mt_json_key_str(&j, "client", node_id(graph_node_at(g, e->client), id, sizeof(id)));
		mt_json_key_str(&j, "server", node_id(graph_node_at(g, e->server), id, sizeof(id)));
		mt_json_key_str(&j, "protocol", l7_protocol_name(e->protocol));
		mt_json_key_str(&j, "connection_type", graph_conn_type_name(e->connection_type));
		if (e->vip[0])
			mt_json_key_str(&j, "vip", e->vip);
		mt_json_key_u64(&j, "requests", e->requests);
		mt_json_key_u64(&j, "failed", e->failed);
		key_f64(&j, "rate_per_s", round3(w.requests / window), 3);
		key_f64(&j, "error_rate", w.requests ? (double)w.failed / w.requests : 0, 4);
		cw = w.client;
		for (unsigned k = 0; k <= GRAPH_LATENCY_BOUNDS; k++)
			cn += w.client[k];
		if (!cn && !ch->count) { /* no client side seen: the server's view */
			cw = w.server;
			ch = &e->server_latency;
		}
		key_f64(&j, "p50_ms",
			pick_ms(cw, ch, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, 0.5), 3);
		key_f64(&j, "p99_ms",
			pick_ms(cw, ch, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, 0.99), 3);
		key_f64(&j, "server_p50_ms",
			pick_ms(w.server, &e->server_latency, graph_latency_bounds,
				GRAPH_LATENCY_BOUNDS, 0.5),
			3);
		key_f64(&j, "server_p99_ms",
			pick_ms(w.server, &e->server_latency, graph_latency_bounds,
				GRAPH_LATENCY_BOUNDS, 0.99),
			3);
		mt_json_key_u64(&j, "bytes_sent", e->bytes_sent);
		mt_json_key_u64(&j, "bytes_received", e->bytes_received);
		mt_json_key_u64(&j, "connects", e->connects);
		mt_json_key_u64(&j, "connect_failures", e->connect_failures);
		key_f64(&j, "connect_p50_ms", pick_connect_ms(w.connect, &e->connect_latency), 3);
		mt_json_key_u64(&j, "retransmits", e->retransmits);
		mt_json_obj_close(&j);
	}
	mt_json_arr_close(&j);
	mt_json_key(&j, "services");
	mt_json_arr_open(&j);
	for (uint32_t i = 0; i < nnodes; i++) {
		const struct graph_node *n = graph_node_at(g, i);

		if (n->kind != GRAPH_NODE_SERVICE)
			continue;
		window = graph_window(g, n->slots, now_ns, &w);
		mt_json_obj_open(&j);
		mt_json_key_str(&j, "name", node_id(n, id, sizeof(id)));
		if (n->namespace_name[0])
			mt_json_key_str(&j, "namespace", n->namespace_name);
		if (n->workload[0])
			mt_json_key_str(&j, "workload", n->workload);
		mt_json_key(&j, "pids");
		mt_json_arr_open(&j);
		for (unsigned k = 0; k < n->npids; k++)
			mt_json_u64(&j, n->pids[k]);
		mt_json_arr_close(&j);
		mt_json_key_u64(&j, "requests", n->served);
		mt_json_key_u64(&j, "failed", n->served_failed);
		key_f64(&j, "rate_per_s", round3(w.requests / window), 3);
		key_f64(&j, "p50_ms",
			pick_ms(w.server, &n->served_latency, graph_latency_bounds,
				GRAPH_LATENCY_BOUNDS, 0.5),
			3);
		key_f64(&j, "p99_ms",
			pick_ms(w.server, &n->served_latency, graph_latency_bounds,
				GRAPH_LATENCY_BOUNDS, 0.99),
			3);
		mt_json_obj_close(&j);
	}
	mt_json_arr_close(&j);
	mt_json_obj_close(&j);
	mt_buf_puts(b, "\n");
	free(sums);
	return b->overflow ? -ENOMEM : 0;
}
