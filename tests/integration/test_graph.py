# SPDX-License-Identifier: Apache-2.0
"""Issue 3: the service graph and its metrics, against real servers on loopback.
The chain curl -> nginx (reverse proxy) -> backend (Python, OTEL_SERVICE_NAME) -> redis-server;
the edges, names and counts from /api/graph, from the OTLP metrics (decoded with the official
schema) and from /metrics, and a real Prometheus scraping the agent.

The chain's names are its own (nginx runs from a copy named nginx-<tag>, the backend is
backend-<tag>), so other tests running on the node at the same time never add to its edges."""

import collections
import time

import pytest

from mt_agent import stat
from mt_graph import (INCR_REQUEST, Prometheus, edges_touching, get_graph, http_get, incr_reply,
                      last_metrics, metrics_posts, one, parse_prometheus, points, private_nginx,
                      redis_stats, sample, tag, wait_graph)
from mt_otlp import free_port
from mt_peers import CurlRun, Redis
from mt_report import figure

# Per curl process (one connection): the whole chain twice, the backend alone, a backend
# failure, a static file and a missing one (nginx alone).
PATHS = [("/api/cache", 200), ("/api/ok", 200), ("/api/cache", 200), ("/api/fail", 500),
         ("/index.html", 200), ("/missing.html", 404)]
SG_BOUNDS = [0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15]
HTTP_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


class ChainRun:
    """The chain with names of its own, and what the test drove through it."""

    def __init__(self, request, tmp_path, monkeypatch, agent, receiver, make_backend,
                 make_nginx):
        t = tag()
        self.nginx_name = private_nginx(tmp_path, monkeypatch, t)
        self.backend_name = f"backend-{t}"
        self.port = free_port()
        self.agent = agent(["--listen", f"127.0.0.1:{self.port}"],
                           env={"OTEL_METRIC_EXPORT_INTERVAL": "500"}, receiver=receiver)
        self.redis = Redis(str(tmp_path)).start()
        request.addfinalizer(self.redis.stop)
        self.backend = make_backend(service_name=self.backend_name, redis_port=self.redis.port)
        self.nginx = make_nginx(self.backend.port)
        self.rounds = 0
        self.runs = []

    def drive(self, rounds):
        for _ in range(rounds):
            run = CurlRun([self.nginx.url(p) for p, _ in PATHS]).run()
            got = [r["status"] for r in run.results]
            assert got == [s for _, s in PATHS], f"curl got {got}"
            assert [r["num_connects"] for r in run.results] == [1] + [0] * (len(PATHS) - 1)
            self.runs.append(run)
        self.rounds += rounds

    def expected(self):
        """{(client, server): (requests, failed)} the test drove, and the redis traffic."""
        r = self.rounds
        per = collections.Counter(p for p, _ in PATHS)
        proxied = sum(n for p, n in per.items() if p.startswith("/api/"))
        cache = per["/api/cache"] * r
        return {
            ("curl", self.nginx_name): (len(PATHS) * r, 2 * r),
            (self.nginx_name, self.backend_name): (proxied * r, r),
        }, cache

    def names(self):
        return {self.nginx_name, self.backend_name}

    def settled(self, graph):
        want, cache = self.expected()
        edges = edges_touching(graph, self.names())
        by_pair = {(c, s): e for (c, s, _), e in edges.items()}
        for pair, (req, _) in want.items():
            e = by_pair.get(pair)
            if not e or e["requests"] != req:
                return False
        e = by_pair.get((self.backend_name, "redis-server"))
        return bool(e) and e["bytes_sent"] == cache * len(INCR_REQUEST)


@pytest.fixture
def chain_run(request, tmp_path, monkeypatch, agent, receiver, make_backend, make_nginx):
    return ChainRun(request, tmp_path, monkeypatch, agent, receiver, make_backend, make_nginx)


def redis_edge_expectation(edge, cache):
    """The backend -> redis edge: TCP level until a RESP parser is registered, then redis."""
    if edge["protocol"] == "tcp":
        return {"requests": 0, "failed": 0, "connection_type": ""}
    assert edge["protocol"] == "redis", edge
    return {"requests": cache, "failed": 0, "connection_type": "database"}


def test_chain_graph_and_otlp_metrics(request, chain_run, receiver):
    c = chain_run
    c.drive(rounds=4)
    want, cache = c.expected()
    graph = wait_graph(c.port, c.settled)
    edges = edges_touching(graph, c.names())
    # Connections redis accepted, less the test's own two (Redis.start's port probe, INFO).
    redis_conns = int(redis_stats(c.redis.port)["total_connections_received"]) - 2
    backend_conns = len({line["client_port"] for line in c.backend.log_lines()})
    prom_text = http_get(f"http://127.0.0.1:{c.port}/metrics")[2].decode()
    stats = c.agent.stop()
    flat = last_metrics(receiver)

    got = {k: (e["requests"], e["failed"], e["connects"], e["bytes_sent"], e["bytes_received"])
           for k, e in edges.items()}
    figure(request, f"chain edges as exported (client, server, protocol: requests, failed, "
                    f"connects, bytes sent, bytes received): {got}")
    figure(request, "health at the end: kernel drops " + str(stat(stats, "kernel", "drops")) +
                    f"; graph {stat(stats, 'graph')}; peers {stat(stats, 'peers')}; metrics "
                    f"{stat(stats, 'metrics')}; otlp {stat(stats, 'otlp')}")

    # The exact edge set among the chain's own services, with the names the issue asks for.
    redis_key = next((k for k in edges if k[:2] == (c.backend_name, "redis-server")), None)
    assert redis_key, f"no backend -> redis-server edge in {sorted(edges)}"
    assert set(edges) == {("curl", c.nginx_name, "http"), (c.nginx_name, c.backend_name, "http"),
                          redis_key}, sorted(edges)

    # Requests and failures equal what the test drove; histograms hold every one of them.
    for (client, server), (req, failed) in want.items():
        e = edges[(client, server, "http")]
        assert (e["requests"], e["failed"]) == (req, failed), e
        assert e["connection_type"] == "", e
        assert e["p50_ms"] > 0 and e["server_p50_ms"] > 0, e
        assert 0 < e["rate_per_s"] and abs(e["error_rate"] - failed / req) < 1e-3, e
    e = edges[("curl", c.nginx_name, "http")]
    assert e["connects"] == c.rounds, e  # one connection per curl process
    assert e["connect_failures"] == 0 and e["connect_p50_ms"] > 0, e
    assert edges[(c.nginx_name, c.backend_name, "http")]["connects"] == backend_conns
    e = edges[redis_key]
    for k, v in redis_edge_expectation(e, cache).items():
        assert e[k] == v, (k, e)
    assert e["connects"] == redis_conns, (e, redis_conns)
    assert e["bytes_sent"] == cache * len(INCR_REQUEST), e
    assert e["bytes_received"] == sum(incr_reply(n) for n in range(1, cache + 1)), e
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert nodes[c.nginx_name]["kind"] == "service" and nodes["redis-server"]["kind"] == "service"
    services = {s["name"]: s for s in graph["services"]}
    assert set(services[c.nginx_name]["pids"]) <= set(c.nginx.worker_pids()) | {c.nginx.master_pid}
    assert services[c.backend_name]["pids"] == [c.backend.pid]
    assert services[c.backend_name]["requests"] == want[(c.nginx_name, c.backend_name)][0]

    # OTLP: decoded with the official schema, nothing unknown, cumulative.
    posts = metrics_posts(receiver)
    assert posts and not [p.error for p in posts if p.error], [p.error for p in posts]
    assert not [p.unknown for p in posts if p.unknown], [p.unknown for p in posts][:3]
    assert all(p.headers.get("content-type") == "application/x-protobuf" for p in posts)
    for p in flat:
        if p["kind"] in ("sum", "histogram"):
            assert p["temporality"] == 2, p  # AGGREGATION_TEMPORALITY_CUMULATIVE
        if p["kind"] == "sum":
            assert p["monotonic"], p
    for (client, server), (req, failed) in want.items():
        lab = {"client": client, "server": server, "connection_type": ""}
        assert one(flat, "traces_service_graph_request_total", **lab)["value"] == req
        assert one(flat, "traces_service_graph_request_failed_total", **lab)["value"] == failed
        for side in ("server", "client"):
            h = one(flat, f"traces_service_graph_request_{side}", **lab)
            assert h["unit"] == "s" and h["bounds"] == SG_BOUNDS, h
            assert h["count"] == req and sum(h["buckets"]) == req, h
    lab = {"client": c.backend_name, "server": "redis-server"}
    exp = redis_edge_expectation(edges[redis_key], cache)
    assert one(flat, "traces_service_graph_request_total", **lab)["value"] == exp["requests"]
    assert one(flat, "meshtrace.graph.edge.bytes", direction="sent", **lab)["value"] == \
        cache * len(INCR_REQUEST)
    assert one(flat, "meshtrace.graph.edge.connects", **lab)["value"] == redis_conns

    # http.*.request.duration: per service resource, semconv buckets, counts by status.
    def http_counts(name, resource, **want_attrs):
        found = [p for p in points(flat, name, **want_attrs) if p["resource"] == resource]
        for p in found:
            assert p["bounds"] == HTTP_BOUNDS and p["unit"] == "s", p
        return collections.Counter({p["attrs"].get("http.response.status_code"): p["count"]
                                    for p in found})
    r = c.rounds
    assert http_counts("http.server.request.duration", c.nginx_name) == \
        {200: 4 * r, 500: r, 404: r}
    assert http_counts("http.server.request.duration", c.backend_name) == {200: 3 * r, 500: r}
    assert http_counts("http.client.request.duration", "curl", **{"server.port": c.nginx.port}) \
        == {200: 4 * r, 500: r, 404: r}
    assert http_counts("http.client.request.duration", c.nginx_name,
                       **{"server.port": c.backend.port}) == {200: 3 * r, 500: r}

    # The agent's health, under the agent's resource.
    for name in ("meshtrace.kernel.events", "meshtrace.kernel.drops", "meshtrace.events",
                 "meshtrace.drops", "meshtrace.spans", "meshtrace.spans.exported",
                 "meshtrace.export.failures", "meshtrace.queue.depth", "meshtrace.table.usage",
                 "meshtrace.table.capacity"):
        found = points(flat, name)
        assert found and all(p["resource"] == "meshtrace" for p in found), name
    assert one(flat, "meshtrace.table.capacity", table="graph_edges")["value"] == 2048
    assert one(flat, "meshtrace.spans.exported")["value"] > 0

    # /metrics said the same of the chain (scraped before the stop; no traffic since).
    samples, types = parse_prometheus(prom_text)
    assert types["traces_service_graph_request_total"] == "counter"
    assert types["traces_service_graph_request_server_seconds"] == "histogram"
    assert types["http_server_request_duration_seconds"] == "histogram"
    for (client, server), (req, failed) in want.items():
        lab = {"client": client, "server": server}
        assert sample(samples, "traces_service_graph_request_total", **lab) == req
        assert sample(samples, "traces_service_graph_request_failed_total", **lab) == failed
        assert sample(samples, "traces_service_graph_request_server_seconds_count", **lab) == req
        assert sample(samples, "traces_service_graph_request_client_seconds_bucket", le="+Inf",
                      **lab) == req
    assert sample(samples, "http_server_request_duration_seconds_count",
                  service_name=c.backend_name, http_response_status_code="500") == r


def test_prometheus_scrapes_the_graph(request, tmp_path, chain_run):
    c = chain_run
    c.drive(rounds=2)
    want, _ = c.expected()
    wait_graph(c.port, c.settled)
    prom = Prometheus(str(tmp_path), c.port).start()
    request.addfinalizer(prom.stop)
    query = ('traces_service_graph_request_total{server=~"%s|%s"}' %
             (c.nginx_name, c.backend_name))
    deadline = time.monotonic() + 30
    got = {}
    while time.monotonic() < deadline:
        got = {(r["metric"]["client"], r["metric"]["server"]): float(r["value"][1])
               for r in prom.query(query)}
        if all(got.get(pair) == req for pair, (req, _) in want.items()):
            break
        time.sleep(0.5)
    targets = prom.targets()
    figure(request, f"Prometheus {query} -> {got}; scrape health "
                    f"{[t.get('health') for t in targets]}")
    assert targets and targets[0]["health"] == "up", targets
    for pair, (req, failed) in want.items():
        assert got.get(pair) == req, (pair, got)
    fails = {(r["metric"]["client"], r["metric"]["server"]): float(r["value"][1]) for r in
             prom.query('traces_service_graph_request_failed_total{server="%s"}' %
                        c.backend_name)}
    assert fails == {(c.nginx_name, c.backend_name): 2.0}, fails
    # The histogram is usable as Grafana's service graph uses it.
    res = prom.query('sum by (client, server) (traces_service_graph_request_server_seconds_count'
                     '{server="%s"})' % c.nginx_name)
    assert [float(r["value"][1]) for r in res] == [want[("curl", c.nginx_name)][0]], res
    res = prom.query('histogram_quantile(0.5, sum by (le) (rate('
                     'traces_service_graph_request_server_seconds_bucket{server="%s"}[1m])))'
                     % c.nginx_name)
    assert res is not None
    graph = get_graph(c.port)
    assert any(e["client"] == "prometheus" and e["server"] == "meshtrace"
               for e in graph["edges"]), "the scrape itself is an edge to the agent"
