// SPDX-License-Identifier: Apache-2.0
/*
 * The /api/graph document: the graph's nodes, edges and services with their
 * counts, rates over the sliding window and latency percentiles estimated
 * from the histograms. Its shape is documented in docs/architecture.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/graph/graph.h"
#include "agent/protocols/l7.h"

/* Milliseconds at quantile @q: the window's buckets, else the cumulative ones. */
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
	struct timespec rt;
	struct graph_slot w;
	double window = 0;
	bool first;

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
	mt_buf_printf(b, "{\"generated_unix_ms\":%" PRIu64 ",\"window_s\":%.0f,\"nodes\":[",
		      (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000, round(window));
	first = true;
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
		mt_buf_printf(b, "%s{\"id\":", first ? "" : ",");
		mt_buf_json_str(b, n->name);
		mt_buf_puts(b, ",\"name\":");
		mt_buf_json_str(b, n->name);
		mt_buf_printf(b,
			      ",\"kind\":\"%s\",\"requests\":%" PRIu64 ",\"failed\":%" PRIu64 "}",
			      graph_node_kind_name(n->kind), has_in ? in_req[i] : out_req[i],
			      has_in ? in_fail[i] : out_fail[i]);
		first = false;
	}
	mt_buf_puts(b, "],\"edges\":[");
	for (uint32_t i = 0; i < nedges; i++) {
		const struct graph_edge *e = graph_edge_at(g, i);
		double rate, err_rate;

		window = graph_window(g, e->slots, now_ns, &w);
		rate = w.requests / window;
		err_rate = w.requests ? (double)w.failed / w.requests : 0;
		mt_buf_printf(b, "%s{\"client\":", i ? "," : "");
		mt_buf_json_str(b, graph_node_at(g, e->client)->name);
		mt_buf_puts(b, ",\"server\":");
		mt_buf_json_str(b, graph_node_at(g, e->server)->name);
		mt_buf_printf(
			b,
			",\"protocol\":\"%s\",\"connection_type\":\"%s\",\"requests\":%" PRIu64
			",\"failed\":%" PRIu64 ",\"rate_per_s\":%.3f,\"error_rate\":%.4f",
			l7_protocol_name(e->protocol), graph_conn_type_name(e->connection_type),
			e->requests, e->failed, round3(rate), err_rate);
		{
			const uint32_t *cw = w.client;
			const struct graph_hist *ch = &e->client_latency;
			uint64_t cn = 0;

			for (unsigned k = 0; k <= GRAPH_LATENCY_BOUNDS; k++)
				cn += w.client[k];
			if (!cn && !ch->count) { /* no client side seen: the server's view */
				cw = w.server;
				ch = &e->server_latency;
			}
			mt_buf_printf(
				b, ",\"p50_ms\":%.3f,\"p99_ms\":%.3f",
				pick_ms(cw, ch, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, 0.5),
				pick_ms(cw, ch, graph_latency_bounds, GRAPH_LATENCY_BOUNDS, 0.99));
		}
		mt_buf_printf(
			b,
			",\"server_p50_ms\":%.3f,\"server_p99_ms\":%.3f,\"bytes_sent\":%" PRIu64
			",\"bytes_received\":%" PRIu64 ",\"connects\":%" PRIu64
			",\"connect_failures\":%" PRIu64
			",\"connect_p50_ms\":%.3f,\"retransmits\":%" PRIu64 "}",
			pick_ms(w.server, &e->server_latency, graph_latency_bounds,
				GRAPH_LATENCY_BOUNDS, 0.5),
			pick_ms(w.server, &e->server_latency, graph_latency_bounds,
				GRAPH_LATENCY_BOUNDS, 0.99),
			e->bytes_sent, e->bytes_received, e->connects, e->connect_failures,
			pick_connect_ms(w.connect, &e->connect_latency), e->retransmits);
	}
	mt_buf_puts(b, "],\"services\":[");
	first = true;
	for (uint32_t i = 0; i < nnodes; i++) {
		const struct graph_node *n = graph_node_at(g, i);

		if (n->kind != GRAPH_NODE_SERVICE)
			continue;
		window = graph_window(g, n->slots, now_ns, &w);
		mt_buf_printf(b, "%s{\"name\":", first ? "" : ",");
		mt_buf_json_str(b, n->name);
		mt_buf_puts(b, ",\"pids\":[");
		for (unsigned k = 0; k < n->npids; k++)
			mt_buf_printf(b, "%s%u", k ? "," : "", n->pids[k]);
		mt_buf_printf(b,
			      "],\"requests\":%" PRIu64 ",\"failed\":%" PRIu64
			      ",\"rate_per_s\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
			      n->served, n->served_failed, round3(w.requests / window),
			      pick_ms(w.server, &n->served_latency, graph_latency_bounds,
				      GRAPH_LATENCY_BOUNDS, 0.5),
			      pick_ms(w.server, &n->served_latency, graph_latency_bounds,
				      GRAPH_LATENCY_BOUNDS, 0.99));
		first = false;
	}
	mt_buf_puts(b, "]}\n");
	free(sums);
	return b->overflow ? -ENOMEM : 0;
}
