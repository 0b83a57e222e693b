# SPDX-License-Identifier: Apache-2.0
"""Helpers for the service-graph tests: the chain with names of its own, reading /api/graph,
the OTLP metrics a receiver got (official schema), Prometheus text, and a real Prometheus."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.error
import urllib.request

import mt_peers
from mt_otlp import attrs, free_port
from mt_peers import wait_port

PROMETHEUS = os.environ.get("MESHTRACE_PROMETHEUS", "/usr/bin/prometheus")

# What peer_backend.py sends redis for /api/cache, and what INCR answers.
INCR_KEY = b"meshtrace:hits"
INCR_REQUEST = b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(INCR_KEY), INCR_KEY)


def incr_reply(n):
    return len(b":%d\r\n" % n)


def tag():
    """A suffix that keeps this run's service names apart from any other test on the node."""
    return secrets.token_hex(3)


def private_nginx(tmp_path, monkeypatch, suffix):
    """nginx run from a copy named nginx-<suffix>: its service name is that executable name, so
    nginx processes of other tests on the node never add to this test's edges."""
    path = os.path.join(str(tmp_path), f"nginx-{suffix}")
    shutil.copy2(mt_peers.NGINX, path)
    monkeypatch.setattr(mt_peers, "NGINX", path)
    return f"nginx-{suffix}"


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def get_graph(port):
    return json.loads(http_get(f"http://127.0.0.1:{port}/api/graph")[2])


def edges_touching(graph, names):
    """{(client, server, protocol): edge} for the edges with a node in @names."""
    return {(e["client"], e["server"], e["protocol"]): e for e in graph["edges"]
            if e["client"] in names or e["server"] in names}


def wait_graph(port, done, timeout=15):
    """Polls /api/graph until done(graph) is true; returns the last graph."""
    deadline = time.monotonic() + timeout
    while True:
        graph = get_graph(port)
        if done(graph) or time.monotonic() > deadline:
            return graph
        time.sleep(0.25)


def redis_stats(port):
    """INFO stats of redis-server, as a dict (this query's own connection included)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"$"):
                head, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    break
    out = {}
    for line in data.decode().splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


# ---------------------------------------------------------------- OTLP metrics


def flatten_metrics(req):
    """ExportMetricsServiceRequest -> list of dicts: resource (service.name), name, unit, kind,
    attrs, and value (sums, gauges) or count/sum/buckets/bounds (histograms)."""
    out = []
    for rm in req.resource_metrics:
        res = attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind == "histogram":
                    temporality = m.histogram.aggregation_temporality
                    for dp in m.histogram.data_points:
                        out.append({"resource": res.get("service.name"), "name": m.name,
                                    "unit": m.unit, "kind": kind, "scope": sm.scope.name,
                                    "temporality": temporality, "attrs": attrs(dp.attributes),
                                    "count": dp.count, "sum": dp.sum,
                                    "buckets": list(dp.bucket_counts),
                                    "bounds": list(dp.explicit_bounds)})
                else:
                    body = getattr(m, kind)
                    temporality = getattr(body, "aggregation_temporality", None)
                    monotonic = getattr(body, "is_monotonic", None)
                    for dp in body.data_points:
                        value = dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double
                        out.append({"resource": res.get("service.name"), "name": m.name,
                                    "unit": m.unit, "kind": kind, "scope": sm.scope.name,
                                    "temporality": temporality, "monotonic": monotonic,
                                    "attrs": attrs(dp.attributes), "value": value})
    return out


def metrics_posts(receiver):
    with receiver.lock:
        return [p for p in receiver.posts if p.path == "/v1/metrics"]


def last_metrics(receiver):
    """The points of the last accepted metrics export (cumulative: it holds the final values)."""
    posts = [p for p in metrics_posts(receiver) if p.status == 200 and p.decoded is not None]
    assert posts, "the agent exported no metrics to the receiver"
    return flatten_metrics(posts[-1].decoded)


def points(flat, name, **want):
    return [p for p in flat if p["name"] == name and
            all(p["attrs"].get(k) == v for k, v in want.items())]


def one(flat, name, **want):
    found = points(flat, name, **want)
    assert len(found) == 1, f"{len(found)} points of {name} {want}: {found}"
    return found[0]


# ---------------------------------------------------------------- Prometheus text


def parse_prometheus(text):
    """Prometheus text format -> {(name, frozenset(labels.items())): value}, plus the TYPE of
    each family; asserts the shape is sound (one TYPE per family, samples after it)."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, f"two TYPE lines for {name}"
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        name, rest = (line.split("{", 1) + [""])[:2] if "{" in line else (line.split(" ")[0], "")
        labels = {}
        if rest:
            body, _, value = rest.rpartition("} ")
            for part in _split_labels(body):
                k, _, v = part.partition("=")
                labels[k] = json.loads(v)
        else:
            value = line.split(" ")[1]
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples, types


def _split_labels(body):
    parts, cur, quoted, esc = [], "", False, False
    for ch in body:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            cur += ch
            esc = True
        elif ch == '"':
            cur += ch
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def sample(samples, name, **labels):
    found = [v for (n, ls), v in samples.items() if n == name and
             all(dict(ls).get(k) == v2 for k, v2 in labels.items())]
    assert len(found) == 1, f"{len(found)} samples of {name} {labels}"
    return found[0]


# ---------------------------------------------------------------- a real Prometheus


class Prometheus:
    """Debian's prometheus, scraping the agent every second; its own port and storage."""

    def __init__(self, workdir, target_port, features=()):
        self.dir = os.path.join(workdir, "prometheus")
        self.port = free_port()
        self.target_port = target_port
        self.features = list(features)  # --enable-feature=..., e.g. exemplar-storage
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: meshtrace
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ["127.0.0.1:{self.target_port}"]
""")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"] +
            [f"--enable-feature={f}" for f in self.features],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=20)
        # The port opens before the TSDB is ready: /-/ready answers 503 until then.
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready in 30 s"
            time.sleep(0.2)
        return self

    def query(self, expr):
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?" +
               urllib.parse.urlencode({"query": expr}))
        body = json.loads(http_get(url)[2])
        assert body["status"] == "success", body
        return body["data"]["result"]

    def query_exemplars(self, expr, start, end):
        """/api/v1/query_exemplars: [{seriesLabels, exemplars: [{labels, value, timestamp}]}]."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query_exemplars?" +
               urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}",
                                       "end": f"{end:.3f}"}))
        body = json.loads(http_get(url)[2])
        assert body["status"] == "success", body
        return body["data"] or []

    def targets(self):
        url = f"http://127.0.0.1:{self.port}/api/v1/targets"
        return json.loads(http_get(url)[2])["data"]["activeTargets"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self.log.close()

