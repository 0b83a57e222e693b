# SPDX-License-Identifier: Apache-2.0
"""Issue 15: OTEL_TRACES_SAMPLER=traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1 on curl -> nginx ->
backend. The service graph and the http.*.request.duration metrics still count every request of
nginx's access log exactly; about a tenth of the traces is exported, each exactly when the spec's
rule keeps its trace id, and with all its local spans (a trace is kept or dropped whole)."""

import collections
import os
import time

from mt_agent import stat
from mt_graph import edges_touching, last_metrics, points, private_nginx, tag, wait_graph
from mt_otlp import free_port
from mt_peers import CurlRun
from mt_report import figure
from mt_spans import a, dump, select, span_path

RATIO = 0.1
ROUNDS = 40
# Per curl process (one connection): static, proxied, missing.
PATHS = ["/index.html", "/api/ok", "/missing.html", "/api/ok", "/index.html"] * 2


def kept_by_spec(trace_id_hex, ratio):
    """TraceIdRatioBased: the id's 56 least-significant bits >= (1 - ratio) * 2^56."""
    return int(trace_id_hex[-14:], 16) >= round((1 - ratio) * 2 ** 56)


def test_ratio_keeps_metrics_exact_and_traces_whole(request, tmp_path, monkeypatch, agent,
                                                    receiver, make_backend, make_nginx):
    t = tag()
    nginx_name = private_nginx(tmp_path, monkeypatch, t)
    backend_name = f"backend-{t}"
    backend_port = free_port()
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"],
               env={"OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_TRACES_SAMPLER": "traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": str(RATIO)}, receiver=receiver)
    backend = make_backend(backend_port, service_name=backend_name)
    nginx = make_nginx(backend_port)
    for _ in range(ROUNDS):
        run = CurlRun([nginx.url(p) for p in PATHS]).run()
        assert [r["num_connects"] for r in run.results] == [1] + [0] * (len(PATHS) - 1)

    n = ROUNDS * len(PATHS)
    deadline = time.monotonic() + 5
    while len(nginx.log_lines()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    log = nginx.log_lines()
    assert len(log) == n, f"nginx logged {len(log)} requests, curl made {n}"
    proxied = sum(1 for line in log if line["path"].startswith("/api/"))
    want_edges = {("curl", nginx_name, "http"): n, (nginx_name, backend_name, "http"): proxied}

    def settled(graph):
        edges = edges_touching(graph, {nginx_name, backend_name})
        return all(k in edges and edges[k]["requests"] == v for k, v in want_edges.items())

    graph = wait_graph(port, settled)
    time.sleep(1.5)  # one more metrics export after the graph holds everything
    stats = ag.stop()
    flat = last_metrics(receiver)
    spans = receiver.spans()

    # The service graph: every request, whatever the ratio.
    edges = edges_touching(graph, {nginx_name, backend_name})
    got = {k: edges[k]["requests"] if k in edges else None for k in want_edges}
    assert got == want_edges, f"graph {got}, access log {want_edges}"

    # http.server.request.duration: every access-log line, by status.
    def counts(name, resource):
        return collections.Counter({p["attrs"].get("http.response.status_code"): p["count"]
                                    for p in points(flat, name) if p["resource"] == resource})
    log_status = collections.Counter(line["status"] for line in log)
    assert counts("http.server.request.duration", nginx_name) == log_status
    assert counts("http.server.request.duration", backend_name) == {200: proxied}

    # The exported spans: the spec's decision on each trace id, about a tenth of the traces.
    wrong = [s for s in spans if not kept_by_spec(s["trace_id"], RATIO)]
    assert not wrong, f"exported spans the ratio drops:{dump(wrong)}"
    nginx_server = select(spans, "SERVER", nginx.port)
    ours = nginx_server + select(spans, "CLIENT", nginx.port) + \
        select(spans, "CLIENT", backend.port) + select(spans, "SERVER", backend.port)
    out = stat(stats, "user", "spans_sampled_out")
    figure(request, f"ratio {RATIO}: {len(nginx_server)} of {n} nginx requests exported "
                    f"({len(nginx_server) / n:.3f}), {len(ours)} of the chain's spans; "
                    f"spans_sampled_out {out}; user {stat(stats, 'user')}")
    assert 0.03 * n <= len(nginx_server) <= 0.2 * n, f"{len(nginx_server)} of {n} exported"
    assert out and out >= 4 * n // 2, stats

    # Whole local traces: each exported request has its curl CLIENT and nginx SERVER spans, and
    # when proxied nginx's CLIENT and the backend's SERVER span too; nothing else of ours.
    by_trace = collections.defaultdict(list)
    for s in ours:
        by_trace[s["trace_id"]].append(s)
    for s in nginx_server:
        local = by_trace[s["trace_id"]]
        want = 4 if span_path(s).startswith("/api/") else 2
        assert len(local) == want, f"trace {s['trace_id']} ({span_path(s)}): " \
                                   f"{len(local)} local spans exported, {want} made:{dump(local)}"
    assert len(ours) == sum(4 if span_path(s).startswith("/api/") else 2 for s in nginx_server), \
        f"spans of traces whose nginx request was not exported:{dump(ours)}"
    assert all(a(s, "http.request.method") == "GET" for s in ours)


def test_parentbased_follows_the_traceparent_flag(request, tmp_path, monkeypatch, agent,
                                                   receiver, make_backend, make_nginx):
    """parentbased_always_off: a request that arrives with a sampled traceparent is exported
    whole on this node (nginx's SERVER and CLIENT spans, the backend's SERVER span: the flag
    travelled through the linker); one whose traceparent is not sampled, and a trace that starts
    here (the root sampler, always_off), export nothing. The RED metrics count them all."""
    nginx_name = private_nginx(tmp_path, monkeypatch, tag())
    backend_port = free_port()
    ag = agent([], env={"OTEL_METRIC_EXPORT_INTERVAL": "500",
                        "OTEL_TRACES_SAMPLER": "parentbased_always_off"}, receiver=receiver)
    backend = make_backend(backend_port)
    nginx = make_nginx(backend_port)
    sampled, unsampled = set(), set()
    runs = 0
    for i in range(12):
        tid = os.urandom(16).hex()
        flag = "01" if i % 3 == 0 else "00"
        (sampled if flag == "01" else unsampled).add(tid)
        tp = f"00-{tid}-{os.urandom(8).hex()}-{flag}"
        for headers in ([f"traceparent: {tp}"], []):
            run = CurlRun([nginx.url("/api/ok")], headers=headers).run()
            assert [r["status"] for r in run.results] == [200]
            runs += 1
    deadline = time.monotonic() + 5
    while len(nginx.log_lines()) < runs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(nginx.log_lines()) == runs
    time.sleep(1.5)
    stats = ag.stop()
    flat = last_metrics(receiver)
    spans = receiver.spans()
    ours = select(spans, "SERVER", nginx.port) + select(spans, "CLIENT", nginx.port) + \
        select(spans, "CLIENT", backend.port) + select(spans, "SERVER", backend.port)
    by_trace = collections.defaultdict(list)
    for s in ours:
        by_trace[s["trace_id"]].append(s)
    figure(request, f"parentbased_always_off: {len(sampled)} sampled and {len(unsampled)} "
                    f"unsampled traceparents, {runs - len(sampled) - len(unsampled)} roots -> "
                    f"{len(ours)} spans exported; user {stat(stats, 'user')}")
    assert set(by_trace) == sampled, f"exported traces {sorted(by_trace)}, sampled {sorted(sampled)}"
    for tid, local in by_trace.items():
        kinds = sorted((s["kind"], a(s, "server.port")) for s in local)
        assert kinds == sorted([("SERVER", nginx.port), ("CLIENT", backend.port),
                                ("SERVER", backend.port)]), f"trace {tid}:{dump(local)}"
    assert stat(stats, "user", "spans_sampled_out") >= 2 * (runs - len(sampled)) + 2 * len(sampled)
    total = sum(p["count"] for p in points(flat, "http.server.request.duration")
                if p["resource"] == nginx_name)
    assert total == runs, f"http.server.request.duration counted {total} of {runs} at nginx"


def test_tail_keep_errors_at_always_off(request, tmp_path, monkeypatch, agent, receiver,
                                        make_backend, make_nginx):
    """always_off with --keep-error-traces: the traces with an error (a 404: curl's CLIENT span
    is an Error) are exported whole (curl's CLIENT and nginx's SERVER span); the others not."""
    private_nginx(tmp_path, monkeypatch, tag())
    backend_port = free_port()
    ag = agent(["--keep-error-traces"], env={"OTEL_TRACES_SAMPLER": "always_off"},
               receiver=receiver)
    make_backend(backend_port)
    nginx = make_nginx(backend_port)
    paths = ["/index.html", "/missing.html"] * 5
    run = CurlRun([nginx.url(p) for p in paths]).run()
    assert [r["status"] for r in run.results] == [200, 404] * 5
    deadline = time.monotonic() + 5
    while len(nginx.log_lines()) < len(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    stats = ag.stop()
    spans = receiver.spans()
    ours = select(spans, "SERVER", nginx.port) + select(spans, "CLIENT", nginx.port)
    by_trace = collections.defaultdict(list)
    for s in ours:
        by_trace[s["trace_id"]].append(s)
    figure(request, f"always_off + --keep-error-traces: {len(by_trace)} traces, {len(ours)} "
                    f"spans exported; tailkeep {stat(stats, 'user', 'tailkeep')}")
    assert len(by_trace) == 5, f"{len(by_trace)} traces exported:{dump(ours)}"
    for tid, local in by_trace.items():
        assert sorted(s["kind"] for s in local) == ["CLIENT", "SERVER"], dump(local)
        assert all(span_path(s) == "/missing.html" for s in local), dump(local)
    assert stat(stats, "user", "tailkeep")["traces_kept"] >= 5
