# SPDX-License-Identifier: Apache-2.0
"""Issue 18: the OpenTelemetry SDK environment variables that concern the agent itself.
- OTEL_SDK_DISABLED=true: nothing reaches the collector although an endpoint is set; the agent
  still observes, serves /metrics and the page (local, pulled). Another value than true/false
  is read as false, with a warning.
- OTEL_SERVICE_NAME (over service.name in OTEL_RESOURCE_ATTRIBUTES) names the agent's OWN
  resource (its graph and health metrics, target_info), never an observed service.
- OTEL_EXPORTER_OTLP_*: the signal's variable wins over the general one, for the endpoint, the
  headers (replaced whole, not merged), the compression and the timeout."""

import json
import socket
import threading
import time
import urllib.request

from mt_agent import stat
from mt_graph import (edges_touching, flatten_metrics, last_metrics, metrics_posts,
                      private_nginx, tag, wait_graph)
from mt_otlp import free_port
from mt_peers import CurlRun
from mt_report import figure

PATHS = ["/index.html", "/api/ok", "/missing.html"]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.read().decode()


def traffic(nginx, nginx_name, port, rounds=2):
    for _ in range(rounds):
        CurlRun([nginx.url(p) for p in PATHS]).run()
    wait_graph(port, lambda g: edges_touching(g, {nginx_name}).get(
        ("curl", nginx_name, "http"), {}).get("requests", 0) >= rounds * len(PATHS))


def test_sdk_disabled(request, tmp_path, monkeypatch, agent, receiver, make_backend,
                      make_nginx):
    nginx_name = private_nginx(tmp_path, monkeypatch, tag())
    nginx = make_nginx(make_backend(free_port(), service_name=f"b-{tag()}").port)
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"],
               env={"OTEL_SDK_DISABLED": "TRUE", "OTEL_METRIC_EXPORT_INTERVAL": "500"},
               receiver=receiver)
    traffic(nginx, nginx_name, port)
    status, text = get(port, "/metrics")
    assert status == 200 and f'server="{nginx_name}"' in text
    status, page = get(port, "/")
    assert status == 200
    otlp = json.loads(get(port, "/api/stats")[1])["otlp"]
    assert otlp["sdk_disabled"] is True and otlp["enabled"] is False, otlp
    time.sleep(1.2)  # two metrics intervals: nothing may be sent
    stats = ag.stop()
    assert "OTEL_SDK_DISABLED=true: no OTLP export" in ag.stderr_text()
    assert stat(stats, "user", "spans") >= 2 * len(PATHS)
    assert receiver.posts == [], [p.path for p in receiver.posts]

    # =false: export goes on. (Not a boolean is bad configuration: test_bad_config.)
    ag = agent(["--listen", "127.0.0.1:0"], env={"OTEL_SDK_DISABLED": " False "},
               receiver=receiver)
    CurlRun([nginx.url("/index.html")]).run()
    ag.stop()
    assert receiver.spans() and metrics_posts(receiver)
    figure(request, f"OTEL_SDK_DISABLED=TRUE: 0 requests to the collector, /metrics and the page "
                    f"served, {stat(stats, 'user', 'spans')} spans made; =' False ': "
                    f"{len(receiver.spans())} spans exported")


def test_agent_resource_names(request, tmp_path, monkeypatch, agent, receiver, make_backend,
                              make_nginx):
    t = tag()
    nginx_name = private_nginx(tmp_path, monkeypatch, t)
    backend_name = f"backend-{t}"
    nginx = make_nginx(make_backend(free_port(), service_name=backend_name).port)
    own, attrs_name = f"mt-node-{t}", f"attrs-{t}"
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"],
               env={"OTEL_SERVICE_NAME": own, "OTEL_METRIC_EXPORT_INTERVAL": "500",
                    "OTEL_RESOURCE_ATTRIBUTES": f"service.name={attrs_name},"
                                                "deployment.environment=e2e"},
               receiver=receiver)
    traffic(nginx, nginx_name, port)
    _, text = get(port, "/metrics")
    assert f'target_info{{service_name="{own}",' in text, text[:400]
    ag.stop()
    flat = last_metrics(receiver)
    agent_res = {p["resource"] for p in flat if p["name"] == "meshtrace.events"}
    graph_res = {p["resource"] for p in flat if p["name"] == "traces_service_graph_request_total"}
    http_res = {p["resource"] for p in flat if p["name"] == "http.server.request.duration"}
    assert agent_res == {own} and graph_res == {own}, (agent_res, graph_res)
    assert {nginx_name, backend_name} <= http_res and not {own, attrs_name} & http_res, http_res
    spans = receiver.spans()
    names = {s["resource"].get("service.name") for s in spans}
    assert {nginx_name, backend_name} <= names and not {own, attrs_name} & names, names
    # The other attributes of OTEL_RESOURCE_ATTRIBUTES still go on every resource.
    assert all(s["resource"].get("deployment.environment") == "e2e" for s in spans)

    # Without OTEL_SERVICE_NAME, service.name of OTEL_RESOURCE_ATTRIBUTES names the agent.
    port2 = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port2}"],
               env={"OTEL_RESOURCE_ATTRIBUTES": f"service.name={attrs_name}"})
    _, text2 = get(port2, "/metrics")
    ag.stop()
    assert f'target_info{{service_name="{attrs_name}",' in text2, text2[:400]
    figure(request, f"agent resource: {sorted(agent_res)}; observed resources "
                    f"{sorted(n for n in names if n)}")


def test_otlp_signal_variables_win(request, tmp_path, monkeypatch, agent, make_receiver,
                                   make_backend, make_nginx):
    """General endpoint, headers, compression for metrics; the traces' own for traces."""
    nginx_name = private_nginx(tmp_path, monkeypatch, tag())
    nginx = make_nginx(make_backend(free_port(), service_name=f"b-{tag()}").port)
    general, traces = make_receiver(), make_receiver()
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"], endpoint=general.endpoint,
               env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces.endpoint + "/v1/traces",
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-general=g,x-both=general",
                    "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-both=traces",
                    "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
                    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip",
                    "OTEL_METRIC_EXPORT_INTERVAL": "500"})
    traffic(nginx, nginx_name, port)
    ag.stop()
    assert {p.path for p in general.posts} == {"/v1/metrics"}, {p.path for p in general.posts}
    assert {p.path for p in traces.posts} == {"/v1/traces"}, {p.path for p in traces.posts}
    for p in general.posts:
        assert p.headers.get("x-general") == "g" and p.headers.get("x-both") == "general"
        assert p.headers.get("content-encoding") == "gzip", p.headers
    for p in traces.posts:
        assert p.headers.get("x-both") == "traces" and "x-general" not in p.headers, p.headers
        assert "content-encoding" not in p.headers, p.headers
    assert traces.spans() and all(p.status == 200 for p in general.posts + traces.posts)
    assert flatten_metrics(general.posts[-1].decoded)
    figure(request, f"signal variables win: {len(traces.posts)} trace requests (own endpoint, "
                    f"headers, no gzip), {len(general.posts)} metrics requests (general ones, "
                    f"gzip)")


def test_otlp_signal_timeout_wins(request, tmp_path, monkeypatch, agent, receiver, make_nginx):
    """Traces go to a collector that never answers: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=300 beats
    the general 60000, so attempts time out and are retried while the test waits; the metrics
    (general timeout, a working receiver) go through."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    held, stop = [], threading.Event()

    def swallow():
        hole.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = hole.accept()
                held.append(c)
            except OSError:
                continue

    th = threading.Thread(target=swallow, daemon=True)
    th.start()
    request.addfinalizer(lambda: (stop.set(), th.join(2), hole.close(),
                                  [c.close() for c in held]))
    nginx = make_nginx(free_port())
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"], receiver=receiver,
               env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
                    f"http://127.0.0.1:{hole.getsockname()[1]}/v1/traces",
                    "OTEL_EXPORTER_OTLP_TIMEOUT": "60000",
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "300",
                    "OTEL_METRIC_EXPORT_INTERVAL": "500"})
    CurlRun([nginx.url("/index.html")]).run()
    otlp = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        otlp = json.loads(get(port, "/api/stats")[1])["otlp"]
        if otlp.get("retries", 0) >= 1 and metrics_posts(receiver):
            break
        time.sleep(0.2)
    ag.stop(timeout=15)
    figure(request, f"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=300 over 60000: otlp {otlp}")
    assert otlp.get("retries", 0) >= 1, otlp
    assert otlp.get("spans_exported") == 0, otlp
    assert metrics_posts(receiver), "the metrics (general timeout) did not go through"
