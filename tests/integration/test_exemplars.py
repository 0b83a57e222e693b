# SPDX-License-Identifier: Apache-2.0
"""Issue 18: exemplars. Debian's Prometheus, started with --enable-feature=exemplar-storage,
scrapes the agent's /metrics (it asks for OpenMetrics); /api/v1/query_exemplars then returns
exemplars on the latency histograms whose trace ids are traces the agent exported over OTLP to
the test's receiver (decoded with the official protos), with the span's id, duration and end.
The sampler (traceidratio 0.5) drops about half the traces: no exemplar may name one of those.
The OTLP histograms carry the same kind of exemplars. Without any trace exporter there are none
(OTEL_METRICS_EXEMPLAR_FILTER=trace_based, the default); always_on and always_off do what they
say."""

import time
import urllib.request

from mt_graph import (Prometheus, edges_touching, metrics_posts, private_nginx, tag,
                      wait_graph)
from mt_otlp import free_port
from mt_peers import CurlRun
from mt_report import figure

RATIO = 0.5
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
               "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PATHS = ["/index.html", "/api/ok", "/api/ok", "/missing.html"]


def kept_by_spec(trace_id_hex, ratio):
    """TraceIdRatioBased: the id's 56 least-significant bits >= (1 - ratio) * 2^56."""
    return int(trace_id_hex[-14:], 16) >= round((1 - ratio) * 2 ** 56)


def scrape(port, accept=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def otlp_exemplars(receiver):
    """(metric name, resource service.name, exemplar) of every histogram point of the last
    accepted metrics export."""
    posts = [p for p in metrics_posts(receiver) if p.status == 200 and p.decoded is not None]
    assert posts, "the agent exported no metrics"
    out = []
    for rm in posts[-1].decoded.resource_metrics:
        res = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.WhichOneof("data") != "histogram":
                    continue
                for dp in m.histogram.data_points:
                    out += [(m.name, res.get("service.name"), ex) for ex in dp.exemplars]
    return out


def start_chain(tmp_path, monkeypatch, make_backend, make_nginx):
    t = tag()
    nginx_name = private_nginx(tmp_path, monkeypatch, t)
    backend_name = f"backend-{t}"
    backend = make_backend(free_port(), service_name=backend_name)
    nginx = make_nginx(backend.port)
    return nginx, nginx_name, backend_name


def test_prometheus_exemplars_point_at_exported_traces(request, tmp_path, monkeypatch, agent,
                                                       receiver, make_backend, make_nginx):
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"],
               env={"OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_TRACES_SAMPLER": "traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": str(RATIO)}, receiver=receiver)
    nginx, nginx_name, backend_name = start_chain(tmp_path, monkeypatch, make_backend,
                                                  make_nginx)
    prom = Prometheus(str(tmp_path), port, features=["exemplar-storage"]).start()
    request.addfinalizer(prom.stop)
    t0 = time.time() - 1
    queries = {
        "graph": f'traces_service_graph_request_server_seconds_bucket{{server="{nginx_name}"}}',
        "http": f'http_server_request_duration_seconds_bucket{{service_name="{backend_name}"}}',
    }

    def exported():
        return {s["span_id"]: s for s in receiver.spans()}

    # Traffic while Prometheus scrapes every second, until each query has an exemplar of a
    # trace the receiver holds (Prometheus keeps what it scraped; spans arrive in batches).
    found, rounds = {}, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        CurlRun([nginx.url(p) for p in PATHS]).run()
        rounds += 1
        spans = exported()
        for key, q in queries.items():
            for series in prom.query_exemplars(q, t0, time.time() + 1):
                for ex in series["exemplars"]:
                    if ex["labels"].get("span_id") in spans:
                        found[key] = (series["seriesLabels"], ex)
        if len(found) == len(queries) and rounds >= 8:
            break
        time.sleep(0.3)
    assert len(found) == len(queries), \
        f"Prometheus returned exemplars of exported spans for {sorted(found)} only " \
        f"(queries {queries}); prometheus log in {prom.dir}"

    # The scrape itself: OpenMetrics for Prometheus' Accept, the 0.0.4 text for others.
    ctype, om = scrape(port, PROM_ACCEPT)
    assert ctype == "application/openmetrics-text; version=1.0.0; charset=utf-8", ctype
    assert om.endswith("\n# EOF\n"), om[-200:]
    om_line = next(line for line in om.splitlines()
                   if line.startswith("traces_service_graph_request_server_seconds_bucket{")
                   and f'server="{nginx_name}"' in line and " # {trace_id=" in line)
    ctype, text = scrape(port)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    assert " # {" not in text and "# EOF" not in text

    # Every exemplar Prometheus holds for these series: an exported span of a kept trace, its
    # duration the value, its end the timestamp.
    time.sleep(1.5)  # the last spans reach the receiver
    spans = exported()
    checked, wrong = 0, []
    for q in queries.values():
        for series in prom.query_exemplars(q, t0, time.time() + 1):
            for ex in series["exemplars"]:
                lab = ex["labels"]
                s = spans.get(lab.get("span_id"))
                if (s is None or s["trace_id"] != lab.get("trace_id") or s["kind"] != "SERVER"
                        or not kept_by_spec(lab["trace_id"], RATIO)
                        or abs(float(ex["value"]) - (s["end_unix_nano"] - s["start_unix_nano"])
                               / 1e9) > 1e-9
                        or abs(float(ex["timestamp"]) - s["end_unix_nano"] / 1e9) > 0.002):
                    wrong.append((series["seriesLabels"].get("le"), ex, s))
                checked += 1
    assert not wrong, f"exemplars that are no exported span of theirs: {wrong[:3]}"

    stats = ag.stop()
    sampled_out = stats["user"]["spans_sampled_out"]
    assert sampled_out > 0, "the sampler dropped nothing: the test proves nothing"

    # OTLP: the histograms carry exemplars of exported spans too.
    spans = exported()
    otlp = otlp_exemplars(receiver)
    mine = [(n, r, ex) for n, r, ex in otlp
            if (n == "traces_service_graph_request_server" and ex.span_id.hex() in spans
                and spans[ex.span_id.hex()]["resource"].get("service.name") == nginx_name)
            or (n == "http.server.request.duration" and r == backend_name)]
    assert {n for n, _, _ in mine} == {"traces_service_graph_request_server",
                                       "http.server.request.duration"}, otlp[:5]
    bad = []
    for n, r, ex in otlp:
        s = spans.get(ex.span_id.hex())
        if (s is None or s["trace_id"] != ex.trace_id.hex() or ex.time_unix_nano !=
                s["end_unix_nano"] or ex.WhichOneof("value") != "as_double" or
                abs(ex.as_double - (s["end_unix_nano"] - s["start_unix_nano"]) / 1e9) > 1e-9):
            bad.append((n, r, ex))
    assert not bad, f"OTLP exemplars that are no exported span: {bad[:3]}"
    figure(request, f"exemplars: {checked} in Prometheus ({rounds} rounds of {len(PATHS)} "
                    f"requests), {len(otlp)} in the last OTLP export, all exported spans of kept "
                    f"traces; {sampled_out} spans sampled out; Prometheus scraped: {om_line}")


def test_exemplar_filter(request, tmp_path, monkeypatch, agent, make_backend, make_nginx):
    """No trace exporter: trace_based (the default) makes no exemplar, always_on does,
    always_off makes none even with traces exported (JSON lines here)."""
    nginx, nginx_name, _ = start_chain(tmp_path, monkeypatch, make_backend, make_nginx)
    counts = {}
    for name, args, env in (
            ("default, no exporter", [], {}),
            ("always_on, no exporter", [], {"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}),
            ("always_off, JSON lines", ["--jsonl", str(tmp_path / "spans.jsonl")],
             {"OTEL_METRICS_EXEMPLAR_FILTER": "always_off"}),
            ("default, JSON lines", ["--jsonl", str(tmp_path / "spans2.jsonl")], {})):
        port = free_port()
        ag = agent(["--listen", f"127.0.0.1:{port}"] + args, env=env)
        CurlRun([nginx.url(p) for p in PATHS]).run()
        wait_graph(port, lambda g: edges_touching(g, {nginx_name}).get(
            ("curl", nginx_name, "http"), {}).get("requests", 0) >= len(PATHS))
        _, om = scrape(port, PROM_ACCEPT)
        counts[name] = sum(1 for line in om.splitlines()
                           if f'server="{nginx_name}"' in line and " # {trace_id=" in line)
        ag.stop()
    figure(request, f"exemplars on nginx's service-graph buckets: {counts}")
    assert counts["default, no exporter"] == 0, counts
    assert counts["always_on, no exporter"] > 0, counts
    assert counts["always_off, JSON lines"] == 0, counts
    assert counts["default, JSON lines"] > 0, counts
