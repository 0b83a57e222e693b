# SPDX-License-Identifier: Apache-2.0
"""Issue 5, HTTP/2 and gRPC against real peers on loopback, the agent started before any client
connects:
- a grpcio server and client (peer_grpc.py; stubs generated from peer_grpc.proto at test time):
  unary calls, server-streaming calls, NOT_FOUND and INTERNAL statuses, and 50 calls in flight
  at once on the channel's one connection. Every call gives one SERVER span in the server and
  one CLIENT span in the client, with the RPC conventions' attributes and each side's error rule.
- nghttpd and nghttp (HTTP/2 over cleartext with prior knowledge): several streams on one
  connection, 200 and 404, as HTTP spans with network.protocol.version 2."""

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mt_agent import busy_note, read_jsonl
from mt_otlp import free_port
from mt_peers import wait_port
from mt_report import figure
from mt_spans import a, dump, is_tcp_peer, span_path

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer_grpc.py")
PROTO = os.path.join(HERE, "peer_grpc.proto")
NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
NGHTTP = shutil.which("nghttp") or "/usr/bin/nghttp"

# Errors by side, per the RPC conventions for gRPC: every non-OK status for a client; only these
# for a server.
SERVER_ERRORS = {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
                 "DATA_LOSS"}
PLAN = {"unary": 5, "stream": [3, 10], "not_found": 2, "internal": 1, "concurrent": 50}


def grpc_stubs(tmp_path):
    """Generates the Python stubs of peer_grpc.proto into tmp_path/stubs."""
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        pytest.skip(f"{e.name} missing: run 'sudo make deps' (python3-grpcio, python3-grpc-tools)")
    out = tmp_path / "stubs"
    out.mkdir()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", HERE,
                    f"--python_out={out}", f"--grpc_python_out={out}", PROTO], check=True,
                   timeout=60)
    return str(out)


class GrpcServer:
    def __init__(self, stubs):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, PEER, "server", stubs, str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"gRPC server did not start: {line!r} {self.proc.stderr.read()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run_client(stubs, port, plan):
    proc = subprocess.Popen([sys.executable, PEER, "client", stubs, str(port), json.dumps(plan)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"gRPC client failed: {err}"
    return json.loads(out)


def rpc_spans(spans, kind, pid):
    return sorted((s for s in spans if s["kind"] == kind and
                   s["resource"].get("process.pid") == pid and
                   a(s, "rpc.system.name") == "grpc"), key=lambda s: s["start_unix_nano"])


def short_rpc(s):
    return (f"{s['kind']} {s['name']} {a(s, 'rpc.method')} {a(s, 'rpc.status_code')} "
            f"status={s['status']} err={a(s, 'error.type')} pid={s['resource'].get('process.pid')}"
            f" peer={a(s, 'network.peer.address')}:{a(s, 'network.peer.port')}")


def find_key(obj, key):
    """The value under key anywhere in nested dicts (the agent's per-protocol parser stats)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def max_overlap(spans):
    """The most spans in flight at one instant."""
    events = sorted([(s["start_unix_nano"], 1) for s in spans] +
                    [(s["end_unix_nano"], -1) for s in spans])
    cur = best = 0
    for _t, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_grpc_spans(request, tmp_path, receiver, agent):
    stubs = grpc_stubs(tmp_path)
    jsonl_path = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl_path), "--listen", "off", "--capture-bytes", "4096"],
               receiver=receiver)
    server = GrpcServer(stubs)  # after the agent: its accepts are seen
    try:
        result = run_client(stubs, server.port, PLAN)
        time.sleep(0.3)  # the server's last writes reach the agent's ring buffer
    finally:
        server.stop()
    stats = ag.stop()
    spans = receiver.spans()
    jsonl = read_jsonl(jsonl_path)
    calls = result["calls"]
    expected = collections.Counter((c["method"], c["code"]) for c in calls)
    srv = rpc_spans(spans, "SERVER", server.proc.pid)
    cli = rpc_spans(spans, "CLIENT", result["pid"])
    h2 = find_key(stats, "grpc") or find_key(stats, "http2")
    figure(request, f"gRPC: {len(calls)} calls made; SERVER spans {len(srv)}, CLIENT spans "
                    f"{len(cli)} (expected {len(calls)} each); max CLIENT spans in flight at once "
                    f"{max_overlap(cli)}; parser stats {h2}")

    busy = busy_note(stats)
    assert len(calls) == 5 + 2 + 2 + 1 + 50, calls
    for label, got in (("SERVER", srv), ("CLIENT", cli)):
        assert len(got) == len(calls), \
            f"{len(got)} {label} gRPC spans for {len(calls)} calls{busy}:\n  " + \
            "\n  ".join(short_rpc(s) for s in got[:80]) + f"\nall spans:{dump(spans)}"
        counted = collections.Counter((a(s, "rpc.method"), a(s, "rpc.status_code")) for s in got)
        assert counted == expected, f"{label} (rpc.method, rpc.status_code) {counted} != calls " \
                                    f"{expected}"
        for s in got:
            code = a(s, "rpc.status_code")
            is_error = code != "OK" if label == "CLIENT" else code in SERVER_ERRORS
            assert s["status"] == ("ERROR" if is_error else "UNSET"), short_rpc(s)
            assert a(s, "error.type") == (code if is_error else None), short_rpc(s)
            assert s["name"] == a(s, "rpc.method"), short_rpc(s)
            assert a(s, "server.address") == "127.0.0.1" and \
                a(s, "server.port") == server.port, s["attributes"]
            assert is_tcp_peer(s), s["attributes"]
            assert "http.request.method" not in s["attributes"], s["attributes"]
            assert 0 < s["start_unix_nano"] <= s["end_unix_nano"], s
    # One connection carried every call: the server saw one client port.
    ports = {a(s, "network.peer.port") for s in srv}
    assert len(ports) == 1, f"server spans from client ports {ports}"
    # The 50 futures really were in flight together on that connection.
    assert max_overlap(cli) >= 40, f"at most {max_overlap(cli)} calls in flight at once"
    # The streaming calls: the server span lasts as long as its stream of replies.
    streams = [s for s in srv if a(s, "rpc.method") == "mt.test.Greeter/Countdown"]
    assert len(streams) == 2, [short_rpc(s) for s in streams]
    # Each server span sits inside its client span (same kernel clock on both sides).
    slack = 5_000_000
    for method in ("mt.test.Greeter/Lookup", "mt.test.Greeter/Broken",
                   "mt.test.Greeter/Countdown"):
        for c, s in zip([x for x in cli if a(x, "rpc.method") == method],
                        [x for x in srv if a(x, "rpc.method") == method]):
            assert c["start_unix_nano"] <= s["start_unix_nano"] + slack and \
                s["end_unix_nano"] <= c["end_unix_nano"] + slack, (short_rpc(c), short_rpc(s))
    # Each call's two spans are one trace: the request's TCP sequence number pairs them.
    by_span = {c["span_id"]: c for c in cli}
    unpaired = [short_rpc(s) for s in srv if by_span.get(s["parent_span_id"]) is None or
                a(by_span[s["parent_span_id"]], "rpc.method") != a(s, "rpc.method")]
    assert not unpaired, f"{len(unpaired)} server spans not children of their client span: " \
                         f"{unpaired[:5]}"
    # JSONL carries the same RPC attributes.
    by_id = {s["span_id"]: s for s in jsonl}
    for s in srv + cli:
        j = by_id.get(s["span_id"])
        assert j is not None, f"span {s['span_id']} missing from JSONL"
        for key in ("rpc.system.name", "rpc.method", "rpc.status_code", "error.type"):
            assert j["attributes"].get(key) == a(s, key), (key, j["attributes"], s["attributes"])


def test_http2_nghttpd(request, tmp_path, receiver, agent):
    if not (os.access(NGHTTPD, os.X_OK) and os.access(NGHTTP, os.X_OK)):
        pytest.skip("nghttpd/nghttp missing: run 'sudo make deps' (nghttp2-server, "
                    "nghttp2-client)")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_bytes(b"<html>meshtrace over h2</html>\n")
    (www / "big.txt").write_bytes(b"0123456789abcdef" * 4096)  # 64 KiB: DATA beyond any capture
    port = free_port()
    ag = agent(["--listen", "off"], receiver=receiver)
    server = subprocess.Popen([NGHTTPD, "--no-tls", "-a", "127.0.0.1", "-d", str(www),
                               str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        wait_port(port)
        paths = ["/index.html?x=1", "/big.txt", "/missing", "/index.html"]
        runs = []
        # One nghttp process per connection; each asks for every path at once (one stream each).
        for _ in range(3):
            p = subprocess.run([NGHTTP, "-n", "--no-dep"] +
                               [f"http://127.0.0.1:{port}{p}" for p in paths],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            runs.append(p)
        time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(10)
    stats = ag.stop()
    spans = [s for s in receiver.spans() if a(s, "server.port") == port]
    srv = [s for s in spans if s["kind"] == "SERVER" and
           s["resource"].get("process.pid") == server.pid]
    cli = [s for s in spans if s["kind"] == "CLIENT"]
    n = len(paths) * len(runs)
    figure(request, f"HTTP/2 nghttp -> nghttpd: {n} requests; SERVER spans {len(srv)}, CLIENT "
                    f"spans {len(cli)} (expected {n} each)")
    busy = busy_note(stats)
    want = collections.Counter({("GET", "/index.html", 200): 2 * len(runs),
                                ("GET", "/big.txt", 200): len(runs),
                                ("GET", "/missing", 404): len(runs)})
    for label, got in (("SERVER", srv), ("CLIENT", cli)):
        assert len(got) == n, f"{len(got)} {label} spans for {n} requests{busy}:{dump(spans)}"
        counted = collections.Counter((a(s, "http.request.method"), span_path(s),
                                       a(s, "http.response.status_code")) for s in got)
        assert counted == want, f"{label}: {counted} != {want}"
        for s in got:
            assert a(s, "network.protocol.version") == "2", s["attributes"]
            assert s["name"] == "GET", s
            code = a(s, "http.response.status_code")
            assert s["status"] == ("ERROR" if code == 404 and label == "CLIENT" else "UNSET"), s
            if span_path(s) == "/big.txt":
                # Counted by frame length; a write or read far beyond the capture may hide frame
                # headers, so the count can fall short, never exceed.
                assert 0 < a(s, "http.response.body.size", 0) <= 65536, s["attributes"]
        assert not [s for s in got if "?" in str(a(s, "url.path", a(s, "url.full", "")))]
