# SPDX-License-Identifier: Apache-2.0
"""Issue 2's integration test: curl -> nginx (static files, 404, /api/ proxied to a Python
backend) with the agent watching; every span checked against nginx's access log, the backend's
log and what curl reports, decoded with the official OTLP schema, and against the JSONL file."""

import collections
import time

import pytest

from mt_agent import busy_note, read_jsonl, stat
from mt_otlp import free_port
from mt_peers import CurlRun
from mt_report import figure
from mt_spans import (JSONL_KEYS, a, check_shape, dump, duration_ms, expected_status,
                      is_tcp_peer, select, short, span_path)

MS = 1_000_000
# Generous slack: the VM is noisy and nginx's $request_time has millisecond resolution taken
# from its cached clock.
DUR_BELOW_REQUEST_TIME_MS = 5
DUR_ABOVE_REQUEST_TIME_MS = 250
CAUSAL_SLACK_NS = 5 * MS


def drive(nginx):
    """The traffic: one curl process per request, then one curl reusing one connection.
    Returns the list of CurlRun."""
    singles = [
        CurlRun([nginx.url("/index.html?utm_source=test")]),
        CurlRun([nginx.url("/static/a.txt")]),
        CurlRun([nginx.url("/missing.html?q=2")]),
        CurlRun([nginx.url("/api/ok?k=v&x=1")]),
        CurlRun([nginx.url("/api/fail")]),
        CurlRun([nginx.url("/api/slow?t=50")]),
        CurlRun([nginx.url("/index.html")], method="HEAD"),
        CurlRun([nginx.url("/api/ok?via=post")], data="field=value&n=1"),
    ]
    keepalive = CurlRun([nginx.url(p) for p in (
        "/index.html?ka=1", "/static/big.bin", "/missing.html?ka=3", "/api/ok?ka=4", "/api/fail",
        "/static/a.txt?ka=6")])
    runs = singles + [keepalive]
    for c in runs:
        c.run()
    ka = keepalive.results
    assert [r["num_connects"] for r in ka] == [1] + [0] * (len(ka) - 1), \
        f"curl did not reuse its connection: {ka}"
    return runs


def wait_log(nginx, count, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        lines = nginx.log_lines()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


# auto picks the sock tracepoints on this kernel; syscalls is the fallback for older kernels
# (and the base), so both data paths must give the same spans.
@pytest.mark.parametrize("capture_mode", ["auto", "syscalls"])
def test_http_spans(request, tmp_path, receiver, agent, make_nginx, make_backend, capture_mode):
    backend_port = free_port()
    nginx = make_nginx(backend_port)  # runs before the agent: seen from its first I/O after
    jsonl_path = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl_path), "--capture-mode", capture_mode], receiver=receiver)
    backend = make_backend(backend_port)  # starts after the agent
    t0 = time.time_ns()
    runs = drive(nginx)
    t1 = time.time_ns()
    n_requests = sum(len(c.urls) for c in runs)
    log = wait_log(nginx, n_requests)
    stats = ag.stop()  # flushes every finished span to the receiver and the JSONL file
    spans = receiver.spans()
    jsonl = read_jsonl(jsonl_path)

    nginx_server = select(spans, "SERVER", nginx.port)
    curl_client = select(spans, "CLIENT", nginx.port)
    nginx_client = select(spans, "CLIENT", backend.port)
    backend_server = select(spans, "SERVER", backend.port)
    backend_log = backend.log_lines()
    ours = nginx_server + curl_client + nginx_client + backend_server
    figure(request, f"{len(log)} requests to nginx ({len(backend_log)} proxied to the backend): "
                    f"nginx SERVER {len(nginx_server)}, curl CLIENT {len(curl_client)}, nginx CLIENT "
                    f"{len(nginx_client)}, backend SERVER {len(backend_server)} -> {len(ours)} spans, "
                    f"{len(ours) / max(len(log), 1):.2f} spans per request (expected "
                    f"{(2 * len(log) + 2 * len(backend_log)) / max(len(log), 1):.2f}); "
                    f"{len(spans)} spans received in all, {len(jsonl)} JSONL lines")
    figure(request, f"kernel drops {stat(stats, 'kernel', 'drops')}, kernel data_events "
                    f"{stat(stats, 'kernel', 'data_events')}, user {stat(stats, 'user')}, "
                    f"otlp {stat(stats, 'otlp')}")

    # The official schema decoded every export with no field it does not know.
    posts = receiver.trace_posts(accepted_only=False)
    assert posts, "the agent exported nothing to the receiver"
    assert not [p.error for p in posts if p.error], [p.error for p in posts if p.error]
    assert not [p.unknown for p in posts if p.unknown], \
        f"fields unknown to the official schema: {[p.unknown for p in posts if p.unknown][:3]}"
    for p in posts:
        assert p.headers.get("content-type") == "application/x-protobuf", p.headers
        assert p.headers.get("content-encoding") == "gzip", f"gzip is the default: {p.headers}"

    # Harness sanity: the log holds exactly the requests curl made.
    assert len(log) == n_requests, f"nginx logged {len(log)} requests, curl made {n_requests}"

    # The test's spans are well formed (other processes on the node may have requests that got
    # no answer); only TCP peers produce spans at all (file I/O, e.g. nginx reading the files it
    # serves or writing its log, produces none).
    ours_pids = {nginx.master_pid, backend.pid, *nginx.worker_pids(), *(c.pid for c in runs)}
    mine = [s for s in spans if s["resource"].get("process.pid") in ours_pids]
    bad = [f"{short(s)}: {check_shape(s)}" for s in mine if check_shape(s)]
    assert not bad, "malformed spans:\n  " + "\n  ".join(bad[:10])
    assert len({s["span_id"] for s in spans}) == len(spans), "duplicate span ids"
    not_tcp = [s for s in spans if not is_tcp_peer(s)]
    assert not not_tcp, f"spans whose peer is not a TCP address:{dump(not_tcp)}"
    stray = [s for s in mine if s not in ours]
    assert not stray, f"spans from the test's processes outside their HTTP calls:{dump(stray)}"
    for s in mine:
        assert t0 - 2000 * MS <= s["start_unix_nano"] and s["end_unix_nano"] <= t1 + 2000 * MS, \
            f"span outside the test's wall-clock window {t0}..{t1}: {s}"

    # nginx SERVER spans: one per access-log line, matched by client port + request number.
    workers = nginx.worker_pids()
    busy = busy_note(stats)
    assert len(nginx_server) == len(log), \
        f"{len(nginx_server)} nginx SERVER spans for {len(log)} access-log lines{busy}; spans of the " \
        f"nginx worker {workers}:{dump(select(spans, pid=workers[0]))}\nall spans:{dump(spans)}"
    by_conn = collections.defaultdict(list)
    for s in nginx_server:
        by_conn[a(s, "network.peer.port")].append(s)
    for line in log:
        conn = by_conn.get(line["remote_port"], [])
        n = line["connection_requests"]
        assert len(conn) >= n, f"no span for log line {line}; spans on port " \
                               f"{line['remote_port']}:{dump(conn)}"
        s = conn[n - 1]
        want = (line["request_method"], line["path"], line["status"])
        got = (a(s, "http.request.method"), span_path(s), a(s, "http.response.status_code"))
        assert got == want, f"span {got} for log line {line}"
        assert s["status"] == expected_status("SERVER", line["status"]), (s["status"], line)
        assert s["resource"]["process.pid"] in workers, (s["resource"], workers)
        assert s["resource"]["service.name"] == "nginx", s["resource"]
        assert s["resource"]["process.executable.name"] == "nginx", s["resource"]
        assert a(s, "url.scheme") == "http" and a(s, "network.protocol.version") == "1.1", \
            s["attributes"]
        assert a(s, "server.address") == "127.0.0.1" and a(s, "client.address") == "127.0.0.1" \
            and a(s, "network.peer.address") == "127.0.0.1", s["attributes"]
        rt_ms, dur = line["request_time"] * 1000, duration_ms(s)
        assert rt_ms - DUR_BELOW_REQUEST_TIME_MS <= dur <= rt_ms + DUR_ABOVE_REQUEST_TIME_MS, \
            f"nginx span lasts {dur:.3f} ms, $request_time {line['request_time']} s: {line}"
        if line["path"] == "/api/slow":
            assert dur >= 45, f"/api/slow took 50 ms at the backend, nginx span {dur:.3f} ms"

    # curl CLIENT spans: one per URL, in the process that made it, with curl's statuses.
    assert len(curl_client) == n_requests, \
        f"{len(curl_client)} curl CLIENT spans for {n_requests} requests{busy}:{dump(curl_client)}"
    for c in runs:
        mine = select(curl_client, pid=c.pid)
        assert len(mine) == len(c.urls), f"{len(mine)} spans for curl pid {c.pid} {c.urls}:" \
                                         f"{dump(mine)}"
        for s, url, res in zip(mine, c.urls, c.results):
            path = url.split(str(nginx.port), 1)[1].split("?")[0]
            got = (a(s, "http.request.method"), span_path(s), a(s, "http.response.status_code"))
            assert got == (c.method, path, res["status"]), f"curl span {got} for {c.method} {url}"
            assert s["status"] == expected_status("CLIENT", res["status"]), (s["status"], url)
            assert s["resource"]["service.name"] == "curl", s["resource"]
            assert a(s, "network.peer.port") == nginx.port and \
                a(s, "network.peer.address") == "127.0.0.1", s["attributes"]
            # The server span sits inside the client span (same kernel clock on both sides).
            srv = by_conn[res["local_port"]]
            srv = [x for x in srv if span_path(x) == path]
            assert srv, f"no nginx span on port {res['local_port']} for {url}"
            inner = min(srv, key=lambda x: abs(x["start_unix_nano"] - s["start_unix_nano"]))
            assert s["start_unix_nano"] <= inner["start_unix_nano"] + CAUSAL_SLACK_NS and \
                inner["end_unix_nano"] <= s["end_unix_nano"] + CAUSAL_SLACK_NS, \
                f"nginx span not inside curl's span:\n  {s}\n  {inner}"

    # nginx -> backend: CLIENT spans in nginx, SERVER spans in the backend (service "backend").
    proxied = sorted((l["request_method"], l["path"], l["status"]) for l in log
                     if l["path"].startswith("/api/"))
    assert sorted((b["method"], b["path"], b["status"]) for b in backend_log) == proxied
    for group, label in ((nginx_client, "nginx CLIENT"), (backend_server, "backend SERVER")):
        got = sorted((a(s, "http.request.method"), span_path(s),
                      a(s, "http.response.status_code")) for s in group)
        assert got == proxied, \
            f"{label} spans {got} != proxied requests {proxied}{busy}:{dump(group)}"
        for s in group:
            code = a(s, "http.response.status_code")
            assert s["status"] == expected_status(s["kind"], code), short_status(s)
            assert a(s, "server.address") in ("backend", "127.0.0.1"), s["attributes"]
    for s in nginx_client:
        assert s["resource"]["process.pid"] in workers and \
            s["resource"]["service.name"] == "nginx", s["resource"]
        assert a(s, "network.peer.port") == backend.port, s["attributes"]
    client_ports = {b["client_port"] for b in backend_log}
    for s in backend_server:
        assert s["resource"]["service.name"] == "backend", s["resource"]
        assert s["resource"]["process.pid"] == backend.pid, (s["resource"], backend.pid)
        assert a(s, "network.peer.port") in client_ports, (s["attributes"], client_ports)
    slow = select(backend_server, path="/api/slow") + select(nginx_client, path="/api/slow")
    assert slow and all(duration_ms(s) >= 45 for s in slow), dump(slow)

    # JSONL has the same spans as OTLP, field for field.
    otlp_ids, jsonl_ids = {s["span_id"] for s in spans}, {s.get("span_id") for s in jsonl}
    assert otlp_ids == jsonl_ids, f"only in OTLP: {sorted(otlp_ids - jsonl_ids)[:10]}; only in " \
                                  f"JSONL: {sorted(jsonl_ids - otlp_ids)[:10]}"
    by_id = {s["span_id"]: s for s in spans}
    for j in jsonl:
        missing = [k for k in JSONL_KEYS if k not in j]
        assert not missing, f"JSONL line lacks {missing}: {j}"
        o = by_id[j["span_id"]]
        for k in JSONL_KEYS:
            if k == "resource":
                diff = {r: (v, o["resource"].get(r)) for r, v in j[k].items()
                        if o["resource"].get(r) != v}
                assert not diff, f"resource differs JSONL vs OTLP (jsonl, otlp): {diff}"
            else:
                assert j[k] == o[k], f"{k}: JSONL {j[k]!r} != OTLP {o[k]!r} for span {j['span_id']}"

    # The drop counters are there (their values are recorded above, not asserted: other
    # processes on the node share the ring buffer).
    drops = stat(stats, "kernel", "drops")
    assert isinstance(drops, dict) and "ringbuf_full" in drops and "read_fault" in drops, stats
    assert isinstance(stat(stats, "kernel", "data_events"), int) and \
        stat(stats, "kernel", "data_events") > 0, stats
    assert stat(stats, "otlp", "spans_exported", default=-1) >= len(spans), stats


def short_status(s):
    return f"{s['kind']} {a(s, 'http.response.status_code')} status={s['status']}"
