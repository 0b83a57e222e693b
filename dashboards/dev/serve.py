#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Serves dashboards/web/ with made-up API answers, for working on the page without an agent.
  dashboards/dev/serve.py [--port 9470] [--services N]
--services 0 (default): the test chain (curl -> nginx -> backend -> redis, plus user and an
external peer). N > 0: a synthetic node with N services, to check the page stays readable.
The answers follow the agent's JSON contracts (/api/graph, /api/stats, /api/traces...)."""

import argparse
import http.server
import json
import os
import random
import time

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
START = time.time()


def chain_edges():
    return [("curl", "nginx", "", 3.2, 0.0), ("user", "nginx", "", 1.1, 0.0),
            ("nginx", "backend", "", 4.3, 0.021), ("backend", "redis", "database", 4.3, 0.0),
            ("backend", "api.example.com:443", "virtual_node", 0.4, 0.08)]


def synthetic_edges(n, rng):
    names = ["user", "ingress"] + [f"svc-{w}" for w in
                                   ("cart", "checkout", "payments", "catalog", "search", "users",
                                    "auth", "orders", "shipping", "email", "reviews", "recs",
                                    "inventory", "pricing", "ads", "media", "gateway", "profile",
                                    "billing", "ledger", "notify", "audit", "session", "geo",
                                    "tax", "fraud", "loyalty", "wishlist", "quotes", "currency",
                                    "feeds", "social", "chat", "export", "import", "report",
                                    "admin", "jobs", "scheduler", "metrics", "config", "flags",
                                    "cdn-edge", "thumbs", "video", "ml-score", "warehouse", "dns")]
    names = names[:n + 2]
    edges = [("user", "ingress", "", 40.0, 0.002)]
    tiers = [names[2:2 + n // 5], names[2 + n // 5:2 + n // 2], names[2 + n // 2:]]
    for s in tiers[0]:
        edges.append(("ingress", s, "", rng.uniform(2, 30), rng.choice([0, 0, 0.003, 0.02])))
    for a, b in ((0, 1), (1, 2)):
        for s in tiers[b]:
            c = rng.choice(tiers[a])
            edges.append((c, s, "", rng.uniform(0.5, 20), rng.choice([0, 0, 0, 0.012, 0.09])))
            if rng.random() < 0.3:
                c2 = rng.choice(tiers[a])
                if c2 != c:
                    edges.append((c2, s, "", rng.uniform(0.1, 5), 0))
    for s in rng.sample(tiers[2], min(6, len(tiers[2]))):
        edges.append((s, "postgres", "database", rng.uniform(1, 50), 0))
    for s in rng.sample(tiers[1], min(4, len(tiers[1]))):
        edges.append((s, "redis", "database", rng.uniform(1, 80), 0))
    edges.append((tiers[1][0], "kafka", "messaging_system", 12.0, 0))
    edges.append((tiers[2][0], "api.stripe.com:443", "virtual_node", 0.8, 0.01))
    edges.append((tiers[2][1], "10.0.4.7:9200", "virtual_node", 2.4, 0))
    return edges


def graph(edge_specs):
    now = time.time()
    wobble = 1 + 0.25 * __import__("math").sin(now / 5)
    nodes, services, edges = {}, {}, []
    uptime = max(1.0, now - START)
    for c, s, ctype, rate, err in edge_specs:
        rate *= wobble
        req = int(rate * uptime)
        failed = int(req * err)
        p50 = 0.4 + (hash(s) % 40) / 10
        edges.append({"client": c, "server": s, "protocol": "http" if ctype != "database" else
                      ("redis" if s == "redis" else "postgresql" if s == "postgres" else "tcp"),
                      "connection_type": ctype, "requests": req, "failed": failed,
                      "rate_per_s": rate, "error_rate": err, "p50_ms": p50, "p99_ms": p50 * 6.5,
                      "server_p50_ms": p50 * 0.8, "server_p99_ms": p50 * 5.2,
                      "bytes_sent": req * 310, "bytes_received": req * 2200,
                      "connects": max(1, req // 50), "connect_failures": 1 if err > 0.05 else 0,
                      "connect_p50_ms": 0.08, "retransmits": 2 if err > 0.05 else 0})
        for name in (c, s):
            kind = "user" if name == "user" else "external" if ":" in name else "service"
            n = nodes.setdefault(name, {"id": name, "name": name, "kind": kind, "requests": 0,
                                        "failed": 0})
        nodes[s]["requests"] += req
        nodes[s]["failed"] += failed
        if ":" not in s:
            sv = services.setdefault(s, {"name": s, "pids": [1000 + hash(s) % 9000],
                                         "requests": 0, "failed": 0, "rate_per_s": 0.0,
                                         "p50_ms": p50, "p99_ms": p50 * 5})
            sv["requests"] += req
            sv["failed"] += failed
            sv["rate_per_s"] += rate
    for name, n in nodes.items():
        if n["kind"] == "service" and name not in services:
            services[name] = {"name": name, "pids": [2000 + hash(name) % 9000], "requests": 0,
                              "failed": 0, "rate_per_s": 0.0, "p50_ms": 0, "p99_ms": 0}
    return {"generated_unix_ms": int(now * 1000), "window_s": 60, "nodes": list(nodes.values()),
            "edges": edges, "services": list(services.values())}


def stats():
    up = time.time() - START
    return {"capture_mode": "sock",
            "kernel": {"data_events": int(up * 900), "conn_events": int(up * 40), "wakeups": 3,
                       "bytes_captured": int(up * 300000),
                       "drops": {"ringbuf_full": 0, "read_fault": 2, "inflight_full": 0,
                                 "connecting_full": 0}},
            "user": {"events": int(up * 940), "bad_events": 0, "spans": int(up * 17),
                     "spans_server": 1, "spans_client": 1, "spans_joined_traceparent": 0,
                     "role_unknown": 0, "conns_active": 23, "conns_opened": int(up * 2),
                     "conns_closed": 0, "conns_evicted_full": 0, "conns_evicted_idle": 0,
                     "connect_failed": 1, "retransmits": 2, "role_unknown_bytes": 0,
                     "conns_not_parsed": 0, "parser_alloc_failed": 0,
                     "l7": {"http1": {"requests": 1, "responses": 1, "exchanges": 1,
                                      "garbage_bytes": 0, "resyncs": 0, "pipeline_drops": 0,
                                      "orphan_responses": 0, "state_lost": 0}}},
            "otlp": {"enabled": True, "spans_received": int(up * 17),
                     "spans_exported": int(up * 17), "spans_dropped_queue_full": 0,
                     "spans_dropped_rejected": 0, "spans_dropped_shutdown": 0,
                     "batches_sent": int(up), "batches_failed": 0, "retries": 0,
                     "bytes_sent": int(up * 9000), "queue_spans": 12}}


def make_traces(rng):
    out = {}
    now = int(time.time() * 1e9)
    for i in range(40):
        tid = "%032x" % rng.getrandbits(128)
        t0 = now - (40 - i) * 370_000_000
        slow = i % 9 == 4
        fail = i % 7 == 3
        total = int((58 if slow else 4.5 + rng.random() * 3) * 1e6)
        s1, s2, s3, s4, s5 = ("%016x" % rng.getrandbits(64) for _ in range(5))
        path = "/api/slow" if slow else "/api/fail" if fail else "/api/ok"
        code = 500 if fail else 200

        def sp(sid, parent, svc, kind, start, dur, name, attrs, err=False):
            a = {"http.request.method": "GET", "network.protocol.version": "1.1"}
            a.update(attrs)
            return {"span_id": sid, "parent_span_id": parent, "name": name, "kind": kind,
                    "service": svc, "pid": 1000 + len(svc), "start_unix_ns": t0 + start,
                    "end_unix_ns": t0 + start + dur, "status": "ERROR" if err else "UNSET",
                    "attributes": a}
        spans = [
            sp(s1, "", "curl", "CLIENT", 0, total, "GET " + path,
               {"url.full": "http://127.0.0.1:8080" + path, "http.response.status_code": code}, fail),
            sp(s2, s1, "nginx", "SERVER", 150_000, total - 300_000, "GET " + path,
               {"url.path": path, "http.response.status_code": code, "client.address": "127.0.0.1"}, fail),
            sp(s3, s2, "nginx", "CLIENT", 400_000, total - 900_000, "GET " + path,
               {"url.full": "http://127.0.0.1:9000" + path, "http.response.status_code": code}, fail),
            sp(s4, s3, "backend", "SERVER", 600_000, total - 1_300_000, "GET " + path,
               {"url.path": path, "http.response.status_code": code}, fail),
            sp(s5, s4, "backend", "CLIENT", 900_000, int(0.35e6), "GET",
               {"network.protocol.name": "redis", "db.operation.name": "GET"}),
        ]
        out[tid] = {"trace_id": tid, "root_name": "GET " + path, "root_service": "curl",
                    "start_unix_ms": t0 // 1_000_000, "duration_ms": total / 1e6,
                    "spans": len(spans), "error": fail, "_spans": spans}
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    edges = []
    traces = {}

    def log_message(self, fmt, *args):
        pass

    def send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def json(self, obj, code=200):
        self.send(code, "application/json", json.dumps(obj).encode())

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/api/graph":
            return self.json(graph(self.edges))
        if path == "/api/stats":
            return self.json(stats())
        if path == "/api/traces":
            items = [{k: v for k, v in t.items() if k != "_spans"} for t in self.traces.values()]
            if "sort=slowest" in query:
                items.sort(key=lambda t: -t["duration_ms"])
                items = items[:20]
            else:
                items.sort(key=lambda t: -t["start_unix_ms"])
            return self.json(items)
        if path.startswith("/api/traces/"):
            t = self.traces.get(path.rsplit("/", 1)[1])
            if not t:
                return self.json({"error": "trace not held"}, 404)
            return self.json({"trace_id": t["trace_id"], "spans": t["_spans"]})
        name = "index.html" if path == "/" else path.rsplit("/", 1)[-1]
        file = os.path.join(WEB, name)
        if "/" in name or not os.path.isfile(file):
            return self.send(404, "text/plain", b"not found\n")
        with open(file, "rb") as f:
            self.send(200, TYPES.get(os.path.splitext(name)[1], "application/octet-stream"),
                      f.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9470)
    ap.add_argument("--services", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(7)
    Handler.edges = synthetic_edges(args.services, rng) if args.services else chain_edges()
    Handler.traces = make_traces(rng)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"http://127.0.0.1:{srv.server_address[1]}/", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
