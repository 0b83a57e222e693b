# SPDX-License-Identifier: Apache-2.0
"""OTLP/gRPC export and TLS to the collector, against a real grpcio server (mt_otlp_grpc) and
the OTLP/HTTP receiver: spans and metrics over gRPC, gzip, headers as metadata, the retry
matrix of the OTLP spec, TLS and mutual TLS with a throwaway CA, and the protocol variables'
precedence (signal-specific over generic)."""

import threading

import grpc
import pytest

from mt_agent import busy_note, run_cli, stat
from mt_otlp import OtlpReceiver, free_port
from mt_otlp_grpc import GrpcReceiver, make_ca
from mt_peers import CurlRun
from mt_report import figure
from mt_spans import dump, select


@pytest.fixture
def make_grpc_receiver():
    made = []

    def make(**kw):
        r = GrpcReceiver(**kw).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


def nginx_spans(spans, nginx):
    return select(spans, server_port=nginx.port)


def traffic(nginx, stop, tag):
    """curl → nginx every 0.2 s until stop is set: batches keep coming."""
    i = 0
    while not stop.is_set():
        CurlRun([nginx.url(f"/index.html?{tag}={i}")]).run()
        i += 1
        stop.wait(0.2)


def test_grpc_traces_and_metrics(request, make_grpc_receiver, agent, make_nginx):
    """Both signals over OTLP/gRPC (h2c), gzip'd, with OTEL_EXPORTER_OTLP_HEADERS as metadata;
    decoded with the official schema, no unknown fields."""
    rcv = make_grpc_receiver()
    nginx = make_nginx(free_port())
    ag = agent(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20t0k",
                    "OTEL_METRIC_EXPORT_INTERVAL": "500"},
               endpoint=rcv.endpoint)
    for i in range(3):
        CurlRun([nginx.url(f"/index.html?grpc={i}")]).run()
    ok = rcv.wait_for(lambda r: len(nginx_spans(r.spans(), nginx)) >= 6 and r.metrics_calls(), 30)
    stats = ag.stop()
    calls = rcv.trace_calls()
    otlp = stat(stats, "otlp")
    raw = sum(len(c.decoded.SerializeToString()) for c in rcv.calls)
    figure(request, f"OTLP/gRPC: {len(calls)} trace calls, {len(rcv.metrics_calls())} metrics "
                    f"calls, {raw} B of messages in {otlp['bytes_sent']} B on the wire; "
                    f"otlp {otlp}")
    assert ok, f"spans/metrics did not arrive over gRPC{busy_note(stats)}: " \
               f"{len(rcv.metrics_calls())} metrics calls;{dump(nginx_spans(rcv.spans(), nginx))}"
    got = nginx_spans(rcv.spans(), nginx)
    assert len(select(got, "SERVER")) == 3 and len(select(got, "CLIENT")) == 3, dump(got)
    for c in rcv.calls:
        assert not c.unknown, f"fields the official schema does not know: {c.unknown}"
        assert c.metadata.get("x-tenant") == "acme", c.metadata
        assert c.metadata.get("authorization") == "Bearer t0k", c.metadata
    m = rcv.metrics_calls()[0].decoded
    names = {mt.name for rm in m.resource_metrics for sm in rm.scope_metrics for mt in sm.metrics}
    assert names, "an empty metrics export"
    # gzip: what went on the wire is far smaller than the messages the receiver decoded.
    assert otlp["bytes_sent"] < raw / 2, (otlp["bytes_sent"], raw)
    assert otlp["spans_exported"] >= 6 and otlp["retries"] == 0, otlp
    # HTTP/2 connections are reused (with libcurl < 8.0 too, see otlp_transport.c).
    peers = {c.peer for c in rcv.calls}
    assert len(rcv.calls) >= 3 and len(peers) < len(rcv.calls), [c.peer for c in rcv.calls]


def test_grpc_retry_matrix(request, make_grpc_receiver, agent, make_nginx):
    """UNAVAILABLE retried; RESOURCE_EXHAUSTED dropped without RetryInfo and retried after its
    delay with it; INVALID_ARGUMENT dropped; a call past its deadline retried. Checked on the
    receiver's attempt log (which batch came back) and on the agent's counters."""
    rcv = make_grpc_receiver()
    # A retried batch is the next call, so each retry gets its own scripted answer.
    script = [
        ("UNAVAILABLE", dict(code=grpc.StatusCode.UNAVAILABLE)),
        ("retry of UNAVAILABLE", dict(code=None)),
        ("RESOURCE_EXHAUSTED", dict(code=grpc.StatusCode.RESOURCE_EXHAUSTED)),
        ("RESOURCE_EXHAUSTED+RetryInfo", dict(code=grpc.StatusCode.RESOURCE_EXHAUSTED,
                                              retry_delay_s=1.5)),
        ("retry of RetryInfo", dict(code=None)),
        ("INVALID_ARGUMENT", dict(code=grpc.StatusCode.INVALID_ARGUMENT)),
        ("deadline", dict(code=None, sleep_s=2.5)),
        ("retry of deadline", dict(code=None)),
    ]
    for _, kw in script:
        rcv.fail_next(1, **kw)
    nginx = make_nginx(free_port())
    ag = agent(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                    "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}, endpoint=rcv.endpoint)
    stop = threading.Event()
    t = threading.Thread(target=traffic, args=(nginx, stop, "matrix"), daemon=True)
    t.start()
    try:
        ok = rcv.wait_for(lambda r: len(r.trace_calls(accepted_only=False)) >= len(script), 60)
    finally:
        stop.set()
        t.join(5)
    stats = ag.stop()
    calls = rcv.trace_calls(accepted_only=False)
    otlp = stat(stats, "otlp")
    figure(request, "gRPC retry matrix: " + ", ".join(
        f"{name}→{c.code}" for (name, _), c in zip(script, calls)) + f"; otlp {otlp}")
    assert ok, f"the scripted calls did not all happen: {[c.code for c in calls]}"
    c = dict(zip([n for n, _ in script], calls))
    for call in calls[:len(script)]:
        assert call.span_ids(), "a scripted call carried no spans"

    def same_batch(a, b):
        return a.span_ids() == b.span_ids()

    # Retried: the very next call carries the same batch.
    assert same_batch(c["UNAVAILABLE"], c["retry of UNAVAILABLE"]), "UNAVAILABLE not retried"
    assert same_batch(c["RESOURCE_EXHAUSTED+RetryInfo"], c["retry of RetryInfo"]), \
        "RESOURCE_EXHAUSTED with RetryInfo not retried"
    wait = c["retry of RetryInfo"].time - c["RESOURCE_EXHAUSTED+RetryInfo"].time
    assert wait >= 1.4, f"retried {wait:.2f} s after RetryInfo said 1.5 s"
    assert same_batch(c["deadline"], c["retry of deadline"]), "the timed-out call not retried"
    # Dropped: the next call carries another batch, and that batch never comes back.
    for name, nxt in (("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED+RetryInfo"),
                      ("INVALID_ARGUMENT", "deadline")):
        assert not c[name].span_ids() & c[nxt].span_ids(), f"{name} was retried"
        assert not any(c[name].span_ids() & a.span_ids() for a in calls if a is not c[name]), \
            f"the batch refused with {name} came back"
    dropped = len(c["RESOURCE_EXHAUSTED"].span_ids()) + len(c["INVALID_ARGUMENT"].span_ids())
    assert otlp["batches_failed"] == 2, otlp
    assert otlp["spans_dropped_rejected"] == dropped, (dropped, otlp)
    assert otlp["retries"] == 3, otlp


def test_grpc_collector_restart(request, make_grpc_receiver, agent, make_nginx):
    """The collector restarts between two batches: the agent's idle HTTP/2 connection is gone,
    the next batch arrives over a new one (libcurl < 8.0 takes a detour there: counted as one
    retry at most), nothing is dropped."""
    rcv = make_grpc_receiver()
    nginx = make_nginx(free_port())
    ag = agent(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, endpoint=rcv.endpoint)
    CurlRun([nginx.url("/index.html?restart=before")]).run()
    ok1 = rcv.wait_for(lambda r: len(nginx_spans(r.spans(), nginx)) >= 2, 30)
    rcv.stop()
    rcv2 = make_grpc_receiver(port=rcv.port)
    CurlRun([nginx.url("/index.html?restart=after")]).run()
    ok2 = rcv2.wait_for(lambda r: len(nginx_spans(r.spans(), nginx)) >= 2, 30)
    stats = ag.stop()
    otlp = stat(stats, "otlp")
    figure(request, f"gRPC collector restart: calls before {len(rcv.calls)}, after "
                    f"{len(rcv2.calls)}; otlp {otlp}")
    assert ok1 and ok2, f"spans missing around a collector restart{busy_note(stats)}: {otlp}"
    assert otlp["batches_failed"] == 0 and otlp["spans_dropped_rejected"] == 0, otlp


def test_mutual_tls_both_protocols(request, ca, make_grpc_receiver, agent, make_nginx):
    """Traces over gRPC (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc beats the generic
    http/protobuf) and metrics over HTTP, both to receivers that demand a client certificate
    signed by the throwaway CA."""
    grcv = make_grpc_receiver(tls=ca, client_auth=True)
    hrcv = OtlpReceiver(tls=ca, client_auth=True).start()
    request.addfinalizer(hrcv.stop)
    nginx = make_nginx(free_port())
    ag = agent(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grcv.endpoint,
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": hrcv.endpoint + "/v1/metrics",
                    "OTEL_EXPORTER_OTLP_CERTIFICATE": ca["ca_cert_path"],
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": ca["client_cert_path"],
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY": ca["client_key_path"],
                    "OTEL_METRIC_EXPORT_INTERVAL": "500"})
    for i in range(3):
        CurlRun([nginx.url(f"/index.html?mtls={i}")]).run()
    ok = grcv.wait_for(lambda r: len(nginx_spans(r.spans(), nginx)) >= 6, 30)
    ok_m = hrcv.wait_for(lambda r: r.metrics_posts(), 30)
    stats = ag.stop()
    figure(request, f"mutual TLS: gRPC {len(grcv.trace_calls())} trace calls, HTTPS "
                    f"{len(hrcv.metrics_posts())} metrics POSTs, {len(hrcv.trace_posts())} trace "
                    f"POSTs; otlp {stat(stats, 'otlp')}")
    assert ok, f"no spans over gRPC + mutual TLS{busy_note(stats)}: {stat(stats, 'otlp')}"
    assert ok_m, f"no metrics over HTTPS + mutual TLS: {stat(stats, 'metrics')}"
    assert not hrcv.trace_posts(accepted_only=False), "traces went to the HTTP receiver"
    assert not grcv.metrics_calls(), "metrics went to the gRPC receiver"
    assert all(p.status == 200 for p in hrcv.metrics_posts())


def test_tls_without_client_certificate(request, ca, make_grpc_receiver, agent, make_nginx):
    """Generic grpc, METRICS_PROTOCOL=http/protobuf: traces reach a TLS gRPC receiver that
    asks for no client certificate (the CA from OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE); the
    metrics receiver demands one the agent does not have, so nothing is accepted there, the
    exports are retried and the agent keeps running."""
    grcv = make_grpc_receiver(tls=ca)
    hrcv = OtlpReceiver(tls=ca, client_auth=True).start()
    request.addfinalizer(hrcv.stop)
    nginx = make_nginx(free_port())
    ag = agent(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grcv.endpoint,
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": hrcv.endpoint + "/v1/metrics",
                    "OTEL_EXPORTER_OTLP_CERTIFICATE": ca["ca_cert_path"],
                    "OTEL_METRIC_EXPORT_INTERVAL": "500"})
    for i in range(3):
        CurlRun([nginx.url(f"/index.html?tls={i}")]).run()
    ok = grcv.wait_for(lambda r: len(nginx_spans(r.spans(), nginx)) >= 6, 30)
    hrcv.wait_for(lambda r: r.tls_rejected >= 2, 15)
    assert ag.alive(), ag.stderr_text()
    stats = ag.stop()
    otlp = stat(stats, "otlp")
    figure(request, f"TLS without a client certificate: {len(grcv.trace_calls())} gRPC trace "
                    f"calls; HTTPS metrics handshakes refused {hrcv.tls_rejected}; otlp {otlp}")
    assert ok, f"no spans over gRPC + TLS{busy_note(stats)}: {otlp}"
    assert hrcv.tls_rejected >= 2, "the metrics export was not retried after a refused handshake"
    assert not hrcv.posts, "a POST got through a receiver that demands a client certificate"
    assert otlp["retries"] >= 1, otlp


@pytest.mark.parametrize("var,value,words", [
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "cannot read it"),
    ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/nonexistent/key.pem", "cannot read it"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "not export OTLP as JSON"),
    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc2", "unknown protocol"),
])
def test_bad_settings_exit_2(var, value, words):
    """A bad TLS path or protocol: one line naming the variable, exit 2 (before any BPF)."""
    r = run_cli(["--listen", "off"], env={"OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:9",
                                          var: value})
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and var in lines[0] and words in lines[0], r.stderr
