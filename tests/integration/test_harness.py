# SPDX-License-Identifier: Apache-2.0
"""The harness checks itself (no agent, no root): the receiver decodes what the official
classes encode, gzipped or not, answers 503 on demand and starts late on a reserved port; nginx
and the backend serve what the integration tests expect."""

import gzip
import http.client
import socket

import pytest

from mt_otlp import PortReservation, flatten_traces, pb
from mt_peers import CurlRun


def sample_request():
    ts, tr, common = pb("trace_service"), pb("trace"), pb("common")
    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (("service.name", "backend"), ("process.pid", 42)):
        kv = rs.resource.attributes.add(key=k)
        if isinstance(v, int):
            kv.value.int_value = v
        else:
            kv.value.string_value = v
    ss = rs.scope_spans.add(scope=common.InstrumentationScope(name="meshtrace"))
    span = ss.spans.add(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="GET",
                        kind=tr.Span.SPAN_KIND_SERVER, start_time_unix_nano=1,
                        end_time_unix_nano=2)
    span.status.code = tr.Status.STATUS_CODE_ERROR
    span.attributes.add(key="http.response.status_code").value.int_value = 500
    span.attributes.add(key="url.path").value.string_value = "/api/fail"
    return req


def post(port, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/v1/traces", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


@pytest.mark.parametrize("gzipped", [False, True])
def test_receiver_decodes(receiver, gzipped):
    body = sample_request().SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    resp, data = post(receiver.port, body, headers)
    assert resp.status == 200
    pb("trace_service").ExportTraceServiceResponse.FromString(data)
    [p] = receiver.trace_posts()
    assert p.error is None and p.unknown == []
    [s] = receiver.spans()
    assert s["trace_id"] == bytes(range(1, 17)).hex() and s["span_id"] == "0102030405060708"
    assert (s["kind"], s["status"], s["name"]) == ("SERVER", "ERROR", "GET")
    assert s["resource"] == {"service.name": "backend", "process.pid": 42}
    assert s["attributes"] == {"http.response.status_code": 500, "url.path": "/api/fail"}


def test_receiver_flags_unknown_fields(receiver):
    body = sample_request().SerializeToString() + b"\xf8\x07\x01"  # field 127, varint
    post(receiver.port, body, {"Content-Type": "application/x-protobuf"})
    assert receiver.trace_posts()[0].unknown == ["request"]


def test_receiver_503_then_ok(receiver):
    receiver.fail_next(1, 503, retry_after=1)
    body = sample_request().SerializeToString()
    resp, _ = post(receiver.port, body, {})
    assert resp.status == 503 and resp.getheader("Retry-After") == "1"
    resp, _ = post(receiver.port, body, {})
    assert resp.status == 200
    assert len(receiver.spans()) == 1  # only the accepted export counts


def test_receiver_late_start(make_receiver):
    reserved = PortReservation()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", reserved.port), timeout=2)
    reserved.release()
    r = make_receiver(port=reserved.port)
    assert r.port == reserved.port
    assert post(r.port, sample_request().SerializeToString(), {})[0].status == 200


def test_flatten_matches_jsonl_shape():
    [s] = flatten_traces(sample_request())
    assert {"trace_id", "span_id", "parent_span_id", "name", "kind", "start_unix_nano",
            "end_unix_nano", "status", "resource", "attributes"} <= set(s)


def test_nginx_and_backend_serve(make_nginx, make_backend):
    backend = make_backend()
    nginx = make_nginx(backend.port)
    c = CurlRun([nginx.url(p) for p in ("/index.html?q=1", "/static/big.bin", "/missing.html",
                                         "/api/ok?x=1", "/api/fail", "/api/slow")]).run()
    assert [r["status"] for r in c.results] == [200, 200, 404, 200, 500, 200]
    assert [r["num_connects"] for r in c.results] == [1, 0, 0, 0, 0, 0]
    head = CurlRun([nginx.url("/index.html")], method="HEAD").run()
    posted = CurlRun([nginx.url("/api/ok")], data="a=1").run()
    assert head.results[0]["status"] == 200 and posted.results[0]["status"] == 200
    log = nginx.log_lines()
    assert [(l["request_method"], l["path"], l["status"], l["connection_requests"]) for l in log] \
        == [("GET", "/index.html", 200, 1), ("GET", "/static/big.bin", 200, 2),
            ("GET", "/missing.html", 404, 3), ("GET", "/api/ok", 200, 4),
            ("GET", "/api/fail", 500, 5), ("GET", "/api/slow", 200, 6),
            ("HEAD", "/index.html", 200, 1), ("POST", "/api/ok", 200, 1)]
    assert log[0]["remote_port"] == c.results[0]["local_port"]
    assert log[5]["request_time"] >= 0.045
    assert [(b["method"], b["path"], b["status"]) for b in backend.log_lines()] == \
        [("GET", "/api/ok", 200), ("GET", "/api/fail", 500), ("GET", "/api/slow", 200),
         ("POST", "/api/ok", 200)]
    assert len(nginx.worker_pids()) == 1
    with open(f"/proc/{backend.pid}/environ", "rb") as f:
        assert b"OTEL_SERVICE_NAME=backend\0" in f.read()
