# SPDX-License-Identifier: Apache-2.0
"""Issue 14, Go crypto/tls: a Go HTTPS server and a Go client (peer_go_tls/main.go, standard
library only, built here with Debian's Go toolchain and cached in build/go-tls/) give the same
spans as any HTTP server and client: N requests on one keep-alive connection are N SERVER spans
and N CLIENT spans with their attributes, and each SERVER span's parent is its CLIENT span (same-
node pairing through TLS). The server runs before the agent (found at start), the client is
another file started after it (found at exec). A stripped build (-ldflags=-s) is counted with its
reason and left out, never guessed at. Measures uprobe hits per request."""

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from mt_agent import read_jsonl, stat
from mt_otlp import REPO, free_port
from mt_peers import wait_port
from mt_report import figure
from mt_spans import a, dump, select, short

GO = shutil.which("go") or "/usr/lib/go/bin/go"
OPENSSL = "/usr/bin/openssl"
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_go_tls", "main.go")
OUT = os.path.join(REPO, "build", "go-tls")
N = 20


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def go_bins():
    """peer_go_tls with symbols and stripped, built once per source and toolchain version."""
    if not os.access(GO, os.X_OK):
        pytest.skip("Go toolchain missing: run 'sudo make deps' (golang-go)")
    version = run([GO, "version"]).stdout.strip()
    with open(SRC, "rb") as f:
        key = hashlib.sha256(f.read() + version.encode()).hexdigest()[:16]
    d = os.path.join(OUT, key)
    bins = {"plain": os.path.join(d, "peer_go_tls"),
            "stripped": os.path.join(d, "peer_go_tls_stripped")}
    if not all(os.access(p, os.X_OK) for p in bins.values()):
        os.makedirs(d, exist_ok=True)
        env = dict(os.environ, GOCACHE=os.path.join(OUT, "cache"), CGO_ENABLED="0",
                   GOFLAGS="", GO111MODULE="off", GOPATH=os.path.join(OUT, "gopath"))
        run([GO, "build", "-o", bins["plain"] + ".tmp", SRC], env=env)
        run([GO, "build", "-ldflags=-s -w", "-o", bins["stripped"] + ".tmp", SRC], env=env)
        for p in bins.values():
            os.replace(p + ".tmp", p)
    bins["version"] = version
    return bins


@pytest.fixture
def cert(tmp_path):
    """A self-signed certificate for 127.0.0.1 (the client trusts it as its root)."""
    crt, key = str(tmp_path / "srv.crt"), str(tmp_path / "srv.key")
    run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", crt])
    return crt, key


class GoServer:
    def __init__(self, binary, d, cert):
        self.port = free_port()
        self.log = os.path.join(d, "go_server.log")
        self.proc = subprocess.Popen([binary, "server", str(self.port), cert[0], cert[1],
                                      self.log], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()
        wait_port(self.port)

    def lines(self):
        try:
            with open(self.log) as f:
                return [ln.split() for ln in f if ln.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def go_client(binary, port, cafile, paths, before_requests):
    """The Go client: one keep-alive connection; before_requests(proc) runs once it is loaded."""
    p = subprocess.Popen([binary, "client", str(port), cafile] + paths, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip() == "loaded", f"client: {line!r} {p.stderr.read() if not line else ''}"
    before_requests(p)
    p.stdin.write("go\n")
    p.stdin.flush()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return p, json.loads(out.strip().splitlines()[-1])


def api_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=5) as r:
        return json.loads(r.read())


def wait_for(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.05)


def wait_spans(path, pred, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        spans = read_jsonl(path) if os.path.exists(path) else []
        if pred(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def test_go_https_spans(request, tmp_path, agent, go_bins, cert):
    srv = GoServer(go_bins["plain"], str(tmp_path), cert)
    try:
        run_go_case(request, tmp_path, agent, go_bins, cert, srv)
    finally:
        srv.stop()


def run_go_case(request, tmp_path, agent, go_bins, cert, srv):
    # The client is its own file (another inode): attached when it is exec'd, not at start.
    client_bin = str(tmp_path / "go_client")
    shutil.copy(go_bins["plain"], client_bin)
    stripped_bin = str(tmp_path / "go_client_stripped")
    shutil.copy(go_bins["stripped"], stripped_bin)

    jsonl = tmp_path / "spans.jsonl"
    listen = free_port()
    ag = agent(["--jsonl", str(jsonl), "--listen", f"127.0.0.1:{listen}"])
    st0 = api_stats(listen)["tls"]
    assert st0["go_binaries_attached"] >= 1, f"the running Go server was not probed: {st0}"

    def attached(p):
        wait_for(lambda: api_stats(listen)["tls"]["go_binaries_attached"] >
                 st0["go_binaries_attached"], "the Go client probed at exec")

    paths = [f"/hello?i={i}" if i % 5 else f"/missing/{i}" for i in range(N)]
    want_codes = [404 if p.startswith("/missing") else 200 for p in paths]
    cl, res = go_client(client_bin, srv.port, cert[0], paths, attached)
    assert res["statuses"] == want_codes and res["conns"] == 1, res

    ours = {srv.proc.pid, cl.pid}
    wait_spans(jsonl, lambda s: len(select(s, "SERVER", srv.port, pid=srv.proc.pid)) >= N and
               len(select(s, "CLIENT", srv.port, pid=cl.pid)) >= N)
    st_mid = api_stats(listen)["tls"]

    # The stripped client: counted as left out, no CLIENT span guessed for it.
    sp, sres = go_client(stripped_bin, srv.port, cert[0], ["/hello?stripped=1"] * 3,
                         lambda p: wait_for(lambda: api_stats(listen)["tls"]["go_stripped"] >
                                            st0["go_stripped"], "the stripped client counted"))
    assert sres["statuses"] == [200] * 3, sres
    wait_spans(jsonl, lambda s: len(select(s, "SERVER", srv.port, pid=srv.proc.pid)) >= N + 3)
    stats = ag.stop()
    tls = stats["tls"]
    spans = [s for s in read_jsonl(jsonl) if s["resource"].get("process.pid") in ours | {sp.pid}]

    servers = select(spans, "SERVER", srv.port, pid=srv.proc.pid)
    clients = select(spans, "CLIENT", srv.port, pid=cl.pid)
    stripped_clients = [s for s in spans if s["resource"].get("process.pid") == sp.pid]
    log = srv.lines()
    hits = st_mid["go_calls"] + st_mid["go_rets"]
    note = (f"Go crypto/tls ({go_bins['version'].split()[2]}): {N} requests on one keep-alive "
            f"connection: server log {len(log)}, SERVER spans {len(servers)}, CLIENT spans "
            f"{len(clients)} (expected {N} + {N}); stripped client: {len(stripped_clients)} "
            f"spans, go_stripped {tls['go_stripped']}; uprobe hits {hits / N:.1f} per request "
            f"(client + server; {st_mid['go_calls']} entries, {st_mid['go_rets']} RETs); "
            f"paired by flow (first request decrypted in the handshake) "
            f"{stat(stats, 'user', 'link', 'linked_tls_unsequenced', default=0)}; "
            f"tls stats {tls}")
    print(note)
    assert len(log) == N + 3, note
    assert len(servers) == N + 3, f"{note}{dump(spans)}"
    assert len(clients) == N, f"{note}{dump(spans)}"
    assert not stripped_clients, f"spans guessed for the stripped client: {dump(stripped_clients)}"
    assert tls["go_stripped"] == 1 and tls["go_decode_failed"] == 0, tls
    assert tls["go_attach_failed"] == 0 and tls["no_socket"] == 0, tls

    # Attributes, as any HTTP/1.1 span over TLS has them.
    for s, path, code in zip(servers[:N], paths, want_codes):
        assert s["name"] == "GET", short(s)
        assert a(s, "http.request.method") == "GET" and a(s, "url.scheme") == "https", short(s)
        assert a(s, "url.path") == path.split("?")[0], short(s)
        assert a(s, "http.response.status_code") == code, short(s)
        assert a(s, "network.protocol.version") == "1.1", short(s)
        assert a(s, "client.address") == "127.0.0.1", short(s)
        assert a(s, "network.peer.port") == res["local_port"], short(s)
    for s, path, code in zip(clients, paths, want_codes):
        assert a(s, "http.request.method") == "GET", short(s)
        assert (a(s, "url.full") or "").startswith(f"https://127.0.0.1:{srv.port}/"), short(s)
        assert a(s, "http.response.status_code") == code, short(s)
        assert s["status"] == ("ERROR" if code >= 400 else "UNSET"), short(s)

    # Same-node pairing through TLS: each SERVER span's parent is its CLIENT span.
    by_id = {s["span_id"]: s for s in clients}
    for s in servers[:N]:
        c = by_id.get(s["parent_span_id"])
        assert c, f"SERVER span not paired with a CLIENT span: {short(s)}{dump(clients)}"
        assert c["trace_id"] == s["trace_id"] and a(c, "http.response.status_code") == \
            a(s, "http.response.status_code"), f"{short(c)} / {short(s)}"
    # The stripped client's connection stays a TCP edge; its server side is still seen.
    assert tls["uncovered_conns"] >= 1, tls
    figure(request, note)
