# SPDX-License-Identifier: Apache-2.0
"""Issue 14: TLS calls give the same spans as plaintext ones. nginx serves HTTPS and plain HTTP
side by side and proxies /api/ to a Python backend (HTTPS behind the HTTPS front, so nginx is a
TLS client too; plain behind the plain one); curl (libssl through libcurl) and a Python
http.client (CPython's _ssl) call both. Every span is checked against nginx's access log, the
backends' logs and what each client issued; the TLS spans against their plaintext twins; whole
traces through the TLS proxy; a traceparent sent inside TLS; no header or body value leaves.
Then: a client started after the agent with its own copy of libssl (another inode), in a private
mount namespace as a container would have it; and --no-tls, under which TLS connections stay TCP
and are counted as uncovered. The throwaway CA and certificate are made by the openssl CLI."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from mt_agent import read_jsonl
from mt_otlp import free_port
from mt_peers import NGINX, wait_port
from mt_report import figure
from mt_spans import a, dump, select, short

OPENSSL = "/usr/bin/openssl"
CURL = "/usr/bin/curl"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SECRET_HDR = "hdr-" + uuid.uuid4().hex
SECRET_BODY = "body-" + uuid.uuid4().hex

BACKEND = r'''
import http.server, ssl, sys
port, log, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        code = 503 if self.path.startswith("/api/fail") else 200
        body = b"backend says hi\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path} {code}\n")

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
if cert != "-":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
'''

CLIENT = r'''
import http.client, json, ssl, sys
port, cafile, secret, wait = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "wait"
paths = sys.argv[5:]
ctx = ssl.create_default_context(cafile=cafile) if cafile != "-" else None
print("loaded", flush=True)  # libssl is mapped (import ssl)
if wait:
    sys.stdin.readline()
if ctx:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
else:
    conn = http.client.HTTPConnection("127.0.0.1", port)
out = []
for p in paths:
    conn.request("GET", p, headers={"X-Secret": secret})
    r = conn.getresponse()
    r.read()
    out.append(r.status)
print(json.dumps({"statuses": out, "local_port": conn.sock.getsockname()[1]}), flush=True)
'''


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60, **kw)


class Certs:
    """A throwaway CA and a certificate for localhost / 127.0.0.1 signed by it."""

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        self.ca, self.ca_key = f"{d}/ca.crt", f"{d}/ca.key"
        self.cert, self.key = f"{d}/srv.crt", f"{d}/srv.key"
        run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=meshtrace test CA", "-keyout", self.ca_key, "-out", self.ca])
        run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", self.key, "-out", f"{d}/srv.csr"])
        with open(f"{d}/ext", "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run([OPENSSL, "x509", "-req", "-in", f"{d}/srv.csr", "-CA", self.ca, "-CAkey",
             self.ca_key, "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext",
             "-out", self.cert])


class Backend:
    """The Python backend (CPython's http.server), over TLS when given certificates."""

    def __init__(self, d, name, certs=None):
        self.port = free_port()
        self.log = os.path.join(d, f"{name}.log")
        self.script = os.path.join(d, "backend.py")
        with open(self.script, "w") as f:
            f.write(BACKEND)
        cert = [certs.cert, certs.key] if certs else ["-", "-"]
        self.proc = subprocess.Popen([sys.executable, self.script, str(self.port), self.log] +
                                     cert, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
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


class TlsNginx:
    """nginx: an HTTPS server proxying /api/ to an HTTPS backend, and a plain HTTP twin
    proxying to a plain backend; one worker; access log with the server port."""

    def __init__(self, d, certs, tls_backend, plain_backend):
        self.dir = os.path.join(d, "nginx")
        os.makedirs(os.path.join(self.dir, "www"), exist_ok=True)
        with open(os.path.join(self.dir, "www", "index.html"), "w") as f:
            f.write("<html>meshtrace tls test</html>\n")
        self.tls_port, self.plain_port = free_port(), free_port()
        self.access_log = os.path.join(self.dir, "access.log")
        d = self.dir
        locations = """
        root {www};
        location / {{ }}
        location /api/ {{
            proxy_pass {scheme}://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host backend;
            {extra}
        }}"""
        tls_loc = locations.format(
            www=f"{d}/www", scheme="https", upstream="tls_backend",
            extra=f"proxy_ssl_trusted_certificate {certs.ca}; proxy_ssl_verify on; "
                  "proxy_ssl_name localhost; proxy_ssl_session_reuse on;")
        plain_loc = locations.format(www=f"{d}/www", scheme="http", upstream="plain_backend",
                                     extra="")
        conf = f"""
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log info;
{"user root root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 256; }}
http {{
    default_type text/html;
    log_format mt '$server_port $status $request_method $request_uri $remote_port';
    access_log {self.access_log} mt;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    keepalive_timeout 30s;
    upstream tls_backend {{ server 127.0.0.1:{tls_backend.port}; keepalive 4; }}
    upstream plain_backend {{ server 127.0.0.1:{plain_backend.port}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{self.tls_port} ssl;
        ssl_certificate {certs.cert};
        ssl_certificate_key {certs.key};
        {tls_loc}
    }}
    server {{
        listen 127.0.0.1:{self.plain_port};
        {plain_loc}
    }}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-p", d, "-c", self.conf, "-e", f"{d}/error.log"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_port(self.tls_port)
        wait_port(self.plain_port)

    def lines(self, port):
        try:
            with open(self.access_log) as f:
                rows = [ln.split() for ln in f if ln.strip()]
        except FileNotFoundError:
            return []
        return [r for r in rows if int(r[0]) == port]

    def pids(self):
        out = {self.proc.pid}
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                out |= {int(x) for x in f.read().split()}
        except OSError:
            pass
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def certs(tmp_path):
    return Certs(str(tmp_path / "pki"))


@pytest.fixture
def world(tmp_path, certs):
    """The HTTPS and HTTP backends, then nginx in front of both (all before the agent)."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx missing: run 'sudo make deps' (nginx-light)")
    made = []
    tls_b = Backend(str(tmp_path), "tls_backend", certs)
    made.append(tls_b)
    plain_b = Backend(str(tmp_path), "plain_backend")
    made.append(plain_b)
    ng = TlsNginx(str(tmp_path), certs, tls_b, plain_b)
    made.append(ng)
    yield ng, tls_b, plain_b
    for m in reversed(made):
        m.stop()


def curl(urls, cafile=None, headers=(), data=None):
    """One curl process, one connection for its URLs; returns (pid, [status])."""
    args = [CURL, "-q", "-sS", "--noproxy", "*", "--max-time", "10"]
    if cafile:
        args += ["--cacert", cafile]
    for h in headers:
        args += ["-H", h]
    if data is not None:
        args += ["--data-binary", data]
    for u in urls:
        args += ["-o", "/dev/null", "-w", "%{http_code} %{num_connects}\\n", u]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, f"{' '.join(args)}: {err}"
    rows = [ln.split() for ln in out.splitlines()]
    assert [int(r[1]) for r in rows] == [1] + [0] * (len(rows) - 1), f"no keep-alive: {rows}"
    return p.pid, [int(r[0]) for r in rows]


def py_client(tmp_path, port, cafile, paths, env=None, wrap=(), before_requests=None):
    """The Python http.client, one keep-alive connection; returns (pid, result)."""
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen(list(wrap) + [sys.executable, str(script), str(port), cafile or "-",
                                       SECRET_HDR, "wait" if before_requests else "go"] + paths,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=full_env)
    line = p.stdout.readline()
    assert line.strip() == "loaded", f"client: {line!r} {p.stderr.read() if not line else ''}"
    if before_requests:
        before_requests(p)
        p.stdin.write("go\n")
        p.stdin.flush()
    out, err = p.communicate(timeout=30)
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


def wait_spans(path, pred, timeout=10):
    """Reads the JSONL file until pred(spans) holds (or the timeout), returns the spans."""
    deadline = time.monotonic() + timeout
    while True:
        spans = read_jsonl(path) if os.path.exists(path) else []
        if pred(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def by_pid(spans, pids):
    return [s for s in spans if s["resource"].get("process.pid") in pids]


# Attributes a span keeps whether its call was encrypted or not (the rest name ports and schemes).
SAME = ("http.request.method", "url.path", "http.response.status_code",
        "network.protocol.version", "http.response.body.size", "http.request.body.size",
        "server.address", "network.peer.address", "client.address")


def twin_key(s):
    return (s["kind"], s["name"], span_key_path(s), s["status"])


def span_key_path(s):
    p = a(s, "url.path")
    if p is None:
        full = a(s, "url.full") or ""
        p = "/" + full.split("/", 3)[3] if full.count("/") >= 3 else full
    return p.split("?")[0]


def test_https_spans_like_plaintext(request, tmp_path, agent, world, certs):
    ng, tls_b, plain_b = world
    jsonl = tmp_path / "spans.jsonl"
    listen = free_port()
    ag = agent(["--jsonl", str(jsonl), "--listen", f"127.0.0.1:{listen}"])
    st0 = api_stats(listen)
    assert st0["tls"]["libraries_attached"] >= 1, f"no TLS library attached at start: {st0['tls']}"

    issued = {}  # pid -> (port, [paths])
    paths = ["/index.html", "/api/ok?a=1", "/missing", "/api/fail", "/api/ok?b=2"]
    for scheme, port in (("https", ng.tls_port), ("http", ng.plain_port)):
        pid, codes = curl([f"{scheme}://127.0.0.1:{port}{p}" for p in paths], cafile=certs.ca)
        assert codes == [200, 200, 404, 503, 200], codes
        issued[pid] = (port, paths)
        # A POST with a secret header and body: neither may leave the agent.
        pid, codes = curl([f"{scheme}://127.0.0.1:{port}/api/echo"], cafile=certs.ca,
                          headers=[f"X-Secret: {SECRET_HDR}"], data=SECRET_BODY)
        issued[pid] = (port, ["/api/echo"])
        # A traceparent carried inside TLS joins its trace.
        pid, codes = curl([f"{scheme}://127.0.0.1:{port}/api/ok?tp=1"], cafile=certs.ca,
                          headers=[f"traceparent: 00-{TRACE_ID}-{PARENT_ID}-01"])
        issued[pid] = (port, ["/api/ok?tp=1"])
        p, res = py_client(tmp_path, port, certs.ca if scheme == "https" else None,
                           ["/index.html", "/api/ok?py=1", "/api/ok?py=2"])
        assert res["statuses"] == [200, 200, 200], res
        issued[p.pid] = (port, ["/index.html", "/api/ok?py=1", "/api/ok?py=2"])

    n_front = {port: sum(len(v[1]) for v in issued.values() if v[0] == port)
               for port in (ng.tls_port, ng.plain_port)}
    wait_for(lambda: all(len(ng.lines(p)) >= n for p, n in n_front.items()), "nginx's log")
    n_back = {tls_b.port: len(tls_b.lines()), plain_b.port: len(plain_b.lines())}
    ours = set(issued) | ng.pids() | {tls_b.proc.pid, plain_b.proc.pid}
    want_spans = 2 * sum(n_front.values()) + 2 * sum(n_back.values())
    spans = wait_spans(jsonl, lambda s: len(by_pid(s, ours)) >= want_spans)
    stats = ag.stop()
    spans = by_pid(read_jsonl(jsonl), ours)

    counts = {}
    for port, back in ((ng.tls_port, tls_b), (ng.plain_port, plain_b)):
        log = ng.lines(port)
        clients = [s for s in select(spans, "CLIENT", port) if s["resource"]["process.pid"] in
                   issued]
        counts[port] = {
            "nginx log": len(log),
            "nginx SERVER": len(select(spans, "SERVER", port)),
            "client CLIENT": len(clients),
            "backend log": len(back.lines()),
            "nginx CLIENT": len(select(spans, "CLIENT", back.port)),
            "backend SERVER": len(select(spans, "SERVER", back.port)),
        }
    figure_text = "; ".join(
        f"{'TLS' if port == ng.tls_port else 'plain'}: " +
        ", ".join(f"{k} {v}" for k, v in c.items()) for port, c in counts.items())
    tls_st = stats["tls"]
    n_tls_front, n_tls_back = len(ng.lines(ng.tls_port)), len(tls_b.lines())
    ends = 2 * n_tls_front + 2 * n_tls_back
    figure_note = (f"{figure_text}; tls stats {tls_st}; uprobe hits: "
                   f"{2 * tls_st['calls'] / max(1, n_tls_front):.1f} per TLS request "
                   f"through the proxy ({n_tls_back} of {n_tls_front} went on to the backend), "
                   f"{2 * tls_st['calls'] / max(1, ends):.1f} per TLS endpoint per request")
    print(figure_note)
    for port, c in counts.items():
        issued_here = sum(len(v[1]) for v in issued.values() if v[0] == port)
        assert c["nginx log"] == issued_here, figure_note
        assert c["nginx SERVER"] == c["nginx log"], f"{figure_note}{dump(spans)}"
        # The client that sent its own traceparent is instrumented: its span is not made.
        assert c["client CLIENT"] == issued_here - 1, figure_note
        assert c["nginx CLIENT"] == c["backend log"], f"{figure_note}{dump(spans)}"
        assert c["backend SERVER"] == c["backend log"], f"{figure_note}{dump(spans)}"
    assert counts[ng.tls_port] == counts[ng.plain_port], figure_note

    # url.scheme says https exactly for the spans of TLS calls; url.full of TLS clients too.
    for s in spans:
        tls_call = a(s, "server.port") in (ng.tls_port, tls_b.port)
        if a(s, "url.scheme") is not None:
            assert a(s, "url.scheme") == ("https" if tls_call else "http"), short(s)
        if a(s, "url.full") is not None:
            assert a(s, "url.full").startswith("https://" if tls_call else "http://"), short(s)

    # Every TLS span has a plaintext twin with the same attributes but for scheme and ports.
    def twins(port_a, port_b):
        out = {}
        for s in spans:
            if a(s, "server.port") in (port_a, port_b):
                out.setdefault(twin_key(s), []).append(s)
        return out
    tls_side = twins(ng.tls_port, tls_b.port)
    plain_side = twins(ng.plain_port, plain_b.port)
    assert sorted(tls_side) == sorted(plain_side), \
        f"TLS spans {sorted(tls_side)} vs plaintext {sorted(plain_side)}"
    for k in tls_side:
        ta = [{x: a(s, x) for x in SAME} for s in tls_side[k]]
        pa = [{x: a(s, x) for x in SAME} for s in plain_side[k]]
        assert sorted(map(str, ta)) == sorted(map(str, pa)), f"{k}: {ta} vs {pa}"
        tkeys = {frozenset(s["attributes"]) for s in tls_side[k]}
        pkeys = {frozenset(s["attributes"]) for s in plain_side[k]}
        assert tkeys == pkeys, f"{k}: attribute names differ: {tkeys} vs {pkeys}"

    # Whole traces through the TLS proxy: client -> nginx SERVER -> nginx CLIENT -> backend.
    by_id = {s["span_id"]: s for s in spans}
    chains = 0
    for s in select(spans, "SERVER", tls_b.port):
        nc = by_id.get(s["parent_span_id"])
        assert nc and nc["kind"] == "CLIENT" and a(nc, "server.port") == tls_b.port, \
            f"backend span without its nginx CLIENT parent: {short(s)}"
        ns = by_id.get(nc["parent_span_id"])
        assert ns and ns["kind"] == "SERVER" and a(ns, "server.port") == ng.tls_port, \
            f"nginx CLIENT span without its SERVER parent: {short(nc)}"
        assert s["trace_id"] == nc["trace_id"] == ns["trace_id"]
        if ns["trace_id"] == TRACE_ID:
            assert ns["parent_span_id"] == PARENT_ID, short(ns)
        else:
            cl = by_id.get(ns["parent_span_id"])
            assert cl and cl["kind"] == "CLIENT" and cl["resource"]["process.pid"] in issued, \
                f"nginx SERVER span without its client's parent: {short(ns)}"
        chains += 1
    assert chains == counts[ng.tls_port]["backend log"]
    tp = [s for s in select(spans, "SERVER", ng.tls_port) if s["trace_id"] == TRACE_ID]
    assert len(tp) == 1 and tp[0]["parent_span_id"] == PARENT_ID, dump(tp)

    # Privacy: no header or body value left the agent.
    text = jsonl.read_text() + open(ag.stdout_path).read()
    assert SECRET_HDR not in text and SECRET_BODY not in text

    # Ciphertext was never parsed: every TLS connection's plaintext was seen.
    assert tls_st["plaintext_events"] > 0 and tls_st["uncovered_conns"] == 0, tls_st
    assert tls_st["no_socket"] == 0, tls_st
    figure(request, figure_note)


def copy_libssl(dst):
    """A copy of the system's libssl (another inode): returns its directory."""
    src = os.path.realpath("/usr/lib/x86_64-linux-gnu/libssl.so.3")
    if not os.path.exists(src):
        src = os.path.realpath(subprocess.run(
            [sys.executable, "-c", "import _ssl; print(_ssl.__file__)"], capture_output=True,
            text=True).stdout.strip())
    os.makedirs(dst, exist_ok=True)
    shutil.copy(src, os.path.join(dst, "libssl.so.3"))
    return dst


@pytest.mark.parametrize("where", ["copy", "mount_namespace"])
def test_late_client_own_libssl(tmp_path, agent, world, certs, where):
    """A client started after the agent, whose libssl is its own copy of the file (another
    inode): in a plain directory, or visible only in its own mount namespace (a container)."""
    ng, tls_b, _ = world
    jsonl = tmp_path / "spans.jsonl"
    listen = free_port()
    ag = agent(["--jsonl", str(jsonl), "--listen", f"127.0.0.1:{listen}"])
    before = api_stats(listen)["tls"]["libraries_attached"]
    if where == "copy":
        libdir = copy_libssl(str(tmp_path / "lib"))
        wrap, env = (), {"LD_LIBRARY_PATH": libdir}
    else:
        # A tmpfs mounted in a new mount namespace: the agent's namespace cannot see the path.
        src = copy_libssl(str(tmp_path / "stage"))
        mnt = tmp_path / "ns"
        mnt.mkdir()
        wrap = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'mount -t tmpfs none {mnt} && cp {src}/libssl.so.3 {mnt}/ && '
                f'LD_LIBRARY_PATH={mnt} exec "$@"', "sh")
        env = {}

    def attached(p):
        maps = open(f"/proc/{p.pid}/maps").read()
        assert "libssl.so.3" in maps and "/usr/lib" not in [
            ln.split()[-1].rsplit("/", 1)[0] for ln in maps.splitlines()
            if ln.endswith("libssl.so.3")][0], "the client does not map its own libssl copy"
        wait_for(lambda: api_stats(listen)["tls"]["libraries_attached"] > before,
                 "the client's libssl attached")

    p, res = py_client(tmp_path, ng.tls_port, certs.ca, ["/index.html", "/api/ok?late=1"],
                       env=env, wrap=wrap, before_requests=attached)
    assert res["statuses"] == [200, 200]
    # unshare execs the shell, which execs python: same pid.
    spans = wait_spans(jsonl, lambda s: len(select(s, "CLIENT", ng.tls_port, pid=p.pid)) >= 2)
    stats = ag.stop()
    mine = select(read_jsonl(jsonl), "CLIENT", ng.tls_port, pid=p.pid)
    assert [span_key_path(s) for s in mine] == ["/index.html", "/api/ok"], dump(spans)
    assert all(a(s, "url.full").startswith("https://") for s in mine), dump(mine)
    assert stats["tls"]["libraries_attached"] == before + 1, stats["tls"]


def test_no_tls_leaves_tcp_counted(tmp_path, agent, world, certs):
    """--no-tls: no probes; TLS connections give no HTTP spans and are counted as uncovered,
    while plaintext ones are unaffected."""
    ng, _, _ = world
    jsonl = tmp_path / "spans.jsonl"
    listen = free_port()
    ag = agent(["--no-tls", "--jsonl", str(jsonl), "--listen", f"127.0.0.1:{listen}"])
    tls_pid, codes = curl([f"https://127.0.0.1:{ng.tls_port}/index.html"] * 3, cafile=certs.ca)
    assert codes == [200] * 3
    plain_pid, codes = curl([f"http://127.0.0.1:{ng.plain_port}/index.html"] * 3)
    wait_for(lambda: len(ng.lines(ng.plain_port)) >= 3 and len(ng.lines(ng.tls_port)) >= 3,
             "nginx's log")
    wait_spans(jsonl, lambda s: len(select(s, "CLIENT", ng.plain_port, pid=plain_pid)) >= 3)
    # The graph keeps the TLS call as a TCP edge curl -> nginx, marked "tls".
    def tls_edges():
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/api/graph", timeout=5) as r:
            g = json.loads(r.read())
        return [e for e in g["edges"] if e["connection_type"] == "tls"
                and e["client"] == "curl" and e["server"] == "nginx"]
    edges = wait_for(tls_edges, "a tls edge curl -> nginx in /api/graph")
    assert edges[0]["protocol"] == "tcp" and edges[0]["requests"] == 0, edges
    assert edges[0]["bytes_sent"] > 0 and edges[0]["connects"] >= 1, edges
    stats = ag.stop()
    spans = read_jsonl(jsonl)
    assert len(select(spans, "CLIENT", ng.plain_port, pid=plain_pid)) == 3
    assert not select(spans, server_port=ng.tls_port), dump(select(spans,
                                                                  server_port=ng.tls_port))
    assert stats["tls"]["libraries_attached"] == 0, stats["tls"]
    assert stats["tls"]["plaintext_events"] == 0, stats["tls"]
    # curl's connection, both ends (curl, nginx): began with a handshake, closed uncovered.
    assert stats["tls"]["handshake_conns"] >= 2, stats["tls"]
    assert stats["tls"]["uncovered_conns"] >= 2, stats["tls"]


STATIC_CLIENT = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

/* usage: sslcli PORT CAFILE N PATH: N GET requests on one TLS connection, after a line on stdin */
int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char line[16], buf[65536];
	int fd, n = atoi(argv[3]);
	SSL *s;

	SSL_CTX_load_verify_locations(ctx, argv[2], NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	printf("loaded\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 2;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 3;
	s = SSL_new(ctx);
	SSL_set_fd(s, fd);
	if (SSL_connect(s) != 1)
		return 4;
	for (int i = 0; i < n; i++) {
		char req[512];
		int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
				   argv[4]);
		size_t have = 0, want = 0;
		char *body;

		if (SSL_write(s, req, len) != len)
			return 5;
		for (;;) {
			int r = SSL_read(s, buf + have, (int)(sizeof(buf) - 1 - have));

			if (r <= 0)
				return 6;
			have += (size_t)r;
			buf[have] = 0;
			body = strstr(buf, "\r\n\r\n");
			if (body && !want) {
				char *cl = strcasestr(buf, "content-length:");

				want = (size_t)(body + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
			}
			if (want && have >= want)
				break;
		}
		printf("%.12s\n", buf + 9);
	}
	SSL_shutdown(s);
	return 0;
}
"""


def build_static_client(d, strip):
    """A client with OpenSSL linked in from its static libraries: SSL_* are in its .symtab,
    in no shared library. @strip: the symbol table removed (nothing for the agent to find)."""
    libdir = "/usr/lib/x86_64-linux-gnu"
    if not os.path.exists(f"{libdir}/libssl.a"):
        pytest.fail("libssl.a missing: run 'sudo make deps' (libssl-dev)")
    src = os.path.join(d, "sslcli.c")
    exe = os.path.join(d, "sslcli-stripped" if strip else "sslcli")
    with open(src, "w") as f:
        f.write(STATIC_CLIENT)
    run(["cc", "-O1", "-Wall", "-Werror", "-o", exe, src, f"{libdir}/libssl.a", f"{libdir}/libcrypto.a",
         "-lpthread", "-ldl"])
    if strip:
        run(["strip", exe])
    maps_libs = run(["ldd", exe]).stdout
    assert "libssl" not in maps_libs, maps_libs
    return exe


# Stripped: counted whether the agent looks at the process at its handshake or only at its exec.
@pytest.mark.parametrize("strip", [False, True], ids=["symbols", "stripped"])
def test_static_openssl_executable(tmp_path, agent, world, certs, strip):
    """OpenSSL linked into the executable (as Node.js has it): found by its symbol table when
    the process execs, after the agent started. Stripped: counted (no_symbols), not guessed."""
    ng, _, _ = world
    exe = build_static_client(str(tmp_path), strip)
    jsonl = tmp_path / "spans.jsonl"
    listen = free_port()
    ag = agent(["--jsonl", str(jsonl), "--listen", f"127.0.0.1:{listen}"])
    before = api_stats(listen)["tls"]
    p = subprocess.Popen([exe, str(ng.tls_port), certs.ca, "3", "/index.html"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "loaded"
    # Its first look is due 50 ms after the exec, its second a second later.
    wait_for(lambda: api_stats(listen)["tls"]["processes_scanned"] >= before[
        "processes_scanned"] + 1, "a look at the new process")
    if not strip:
        wait_for(lambda: api_stats(listen)["tls"]["libraries_attached"] >
                 before["libraries_attached"], "the executable attached")
    p.stdin.write("go\n")
    p.stdin.flush()
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, f"sslcli exited {p.returncode}: {err}"
    assert out.split().count("200") == 3, out
    wait_for(lambda: len(ng.lines(ng.tls_port)) >= 3, "nginx's log")
    if not strip:
        wait_spans(jsonl, lambda s: len(select(s, "CLIENT", ng.tls_port, pid=p.pid)) >= 3)
    else:
        wait_for(lambda: api_stats(listen)["tls"]["no_symbols"] > before["no_symbols"],
                 "the stripped executable counted")
    stats = ag.stop()
    mine = select(read_jsonl(jsonl), "CLIENT", ng.tls_port, pid=p.pid)
    nginx_side = select(read_jsonl(jsonl), "SERVER", ng.tls_port)
    # nginx's libssl is probed either way: its side of the calls is always seen.
    assert len(nginx_side) == 3, dump(nginx_side)
    if strip:
        assert not mine, dump(mine)
        assert stats["tls"]["uncovered_processes"] > before["uncovered_processes"], stats["tls"]
        assert stats["tls"]["libraries_attached"] == before["libraries_attached"], stats["tls"]
    else:
        assert len(mine) == 3 and all(a(s, "url.full") == f"https://127.0.0.1:{ng.tls_port}"
                                      "/index.html" for s in mine), dump(mine)
        # Same-node pairing: every nginx span that found a parent found it among these.
        ids = {s["span_id"] for s in mine}
        assert all(s["parent_span_id"] in ids for s in nginx_side if s["parent_span_id"])


BLOCKED_READER = r'''
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
print("handshaken", flush=True)
s.recv(1)  # nginx waits for a request: SSL_read blocks until this process is killed
'''


def test_thread_killed_inside_ssl_read_is_swept(tmp_path, agent, world, certs):
    """A TLS call whose return never comes (its process killed inside SSL_read) is taken out
    of the kernel's table of calls in flight, so the data path goes back to skipping the
    lookup for every send and receive (tls.calls_live, tls.calls_swept). The count by process
    (tls.procs_live: the slots that gate each process's lookups) goes up and down with it."""
    ng, _, _ = world
    listen = free_port()
    agent(["--listen", f"127.0.0.1:{listen}"])
    base = api_stats(listen)["tls"]
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKED_READER)
    p = subprocess.Popen([sys.executable, str(script), str(ng.tls_port), certs.ca],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "handshaken", f"client: {line!r} {p.stderr.read()}"
        live = wait_for(lambda: (lambda t: t if t["calls_live"] > base["calls_live"] else None)(
            api_stats(listen)["tls"]), "the blocked SSL_read counted in flight")
        assert live["procs_live"] > base["procs_live"], (base, live)
    finally:
        p.kill()
        p.wait(10)
    after = wait_for(lambda: (lambda t: t if t["calls_live"] == base["calls_live"] else None)(
        api_stats(listen)["tls"]), "the dead thread's call swept", timeout=10)
    print(f"calls_live {base['calls_live']} -> {live['calls_live']} (blocked in SSL_read) -> "
          f"{after['calls_live']} after the kill; calls_swept {after['calls_swept']}; "
          f"procs_live {base['procs_live']} -> {live['procs_live']} -> {after['procs_live']}")
    assert after["calls_swept"] >= 1, after
    assert after["procs_live"] == base["procs_live"], (base, live, after)


BLOCKED_MANY = r'''
import resource, socket, ssl, sys, threading
threading.stack_size(256 * 1024)
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, max(8192, resource.getrlimit(
    resource.RLIMIT_NOFILE)[1])))
cert, key, cafile, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
if not port:  # the server: every connection's server side blocks in SSL_read
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    port = srv.getsockname()[1]

    def serve(c):
        try:
            sctx.wrap_socket(c, server_side=True).recv(1)
        except OSError:
            pass

    def accept():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
cctx = ssl.create_default_context(cafile=cafile)
held, ready = [], threading.Semaphore(0)

def client():
    s = cctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                         server_hostname="localhost")
    held.append(s)
    ready.release()
    s.recv(1)  # blocks in SSL_read until the process ends

for _ in range(n):
    threading.Thread(target=client, daemon=True).start()
for _ in range(n):
    ready.acquire()
print(port, flush=True)
sys.stdin.read()
'''


def test_sweep_resumes_past_live_calls(tmp_path, agent, world, certs):
    """The sweep looks at no more than 1,024 calls a second and goes on from where it
    stopped: calls of a dead process are all taken out even behind more than 1,024 calls
    that stay live (a sweep that started over each second would see the same first 1,024
    again and again)."""
    listen = free_port()
    agent(["--listen", f"127.0.0.1:{listen}"])
    # nginx's libssl, the one Python's ssl module maps too: attached before the first call.
    base = wait_for(lambda: (lambda t: t if t["libraries_attached"] >= 1 else None)(
        api_stats(listen)["tls"]), "libssl attached")
    script = tmp_path / "many.py"
    script.write_text(BLOCKED_MANY)
    live_n, dead_n = 600, 150  # 1,200 live calls (both ends), 150 that die

    def start(n, *port):
        p = subprocess.Popen([sys.executable, str(script), certs.cert, certs.key, certs.ca,
                              str(n), *port], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        assert line.strip().isdigit(), f"blocked clients: {line!r} {p.stderr.read()}"
        return p, line.strip()

    keeper, port = start(live_n)
    victim = None
    try:
        victim, _ = start(dead_n, port)
        want = base["calls_live"] + 2 * live_n + 2 * dead_n
        live = wait_for(lambda: (lambda t: t if t["calls_live"] >= want else None)(
            api_stats(listen)["tls"]), f"{want} calls in flight", timeout=30)
        victim.kill()
        victim.wait(10)
        # The victim's clients die inside SSL_read (swept); the keeper's server ends of
        # those connections see the close and return.
        # (<=, not ==: a call the base counted may end meanwhile.)
        want = base["calls_live"] + 2 * live_n
        after = wait_for(lambda: (lambda t: t if t["calls_live"] <= want and t["calls_swept"]
                                  >= base["calls_swept"] + dead_n else None)(
            api_stats(listen)["tls"]), f"calls back to {want}, {dead_n} swept", timeout=20)
        assert after["calls_live"] >= 2 * live_n, (base, after)
        print(f"calls_live {base['calls_live']} -> {live['calls_live']} -> {after['calls_live']}"
              f" after killing {dead_n} blocked clients; calls_swept "
              f"{base['calls_swept']} -> {after['calls_swept']}")
        assert after["calls_swept"] - base["calls_swept"] == dead_n, (base, after)
        assert after["procs_live"] >= 1, after
    finally:
        for p in (victim, keeper):
            if p and p.poll() is None:
                p.kill()
                p.wait(10)
    end = wait_for(lambda: (lambda t: t if t["calls_live"] <= base["calls_live"] else None)(
        api_stats(listen)["tls"]), "every call swept", timeout=20)
    assert end["procs_live"] <= base["procs_live"], (base, end)
