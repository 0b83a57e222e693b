# SPDX-License-Identifier: Apache-2.0
"""Issue 18: a service instrumented with the real OpenTelemetry JS SDK in a chain of
uninstrumented ones, the SDK and the agent exporting to one OTLP receiver:

  curl -> nginx (reverse proxy) -> node (SDK: @opentelemetry/sdk-node + instrumentation-http,
  OTLP/HTTP protobuf; tests/integration/node/) -> backend (Python) -> redis-server

The SDK reports node's SERVER and CLIENT spans; the agent reports every other side of every call,
and none of node's (it learns that node reports its own server spans from node's call carrying a
traceparent its request did not bring). Every hop (service, kind) has exactly one span per
request, counted against nginx's access log.

What joins, precisely (docs/tracing.md, "Services with an OpenTelemetry SDK"):
- curl sends traceparent T/X: one trace T per request. nginx forwards the header unchanged (the
  agent cannot write bytes), so the SDK's SERVER span's parent is X, the same as nginx's SERVER
  span's, not nginx's CLIENT span; every other link is parent -> child along the chain.
- curl sends none: two traces per request. The agent's {curl CLIENT -> nginx SERVER -> nginx
  CLIENT} in one; the SDK's SERVER span is the root of a second trace (it received no context)
  holding {SDK SERVER -> SDK CLIENT -> backend SERVER -> backend CLIENT -> redis SERVER}."""

import collections
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from mt_agent import busy_note, stat
from mt_otlp import REPO, free_port
from mt_peers import CurlRun, Redis, wait_port
from mt_report import figure
from mt_spans import dump

NODE = shutil.which("node") or "/usr/bin/node"
NPM = shutil.which("npm") or "/usr/bin/npm"
SRC_DIR = os.path.join(REPO, "tests", "integration", "node")
# Installed once per lockfile: a re-run with the same lockfile costs nothing.
INSTALL_DIR = os.path.join(REPO, "build", "node-sdk")
N = 20  # requests per test, one curl each, one after the other
# Every hop of the chain, in order: (service, kind).
HOPS = [("curl", "CLIENT"), ("nginx", "SERVER"), ("nginx", "CLIENT"), ("node", "SERVER"),
        ("node", "CLIENT"), ("backend", "SERVER"), ("backend", "CLIENT"), ("redis", "SERVER")]


def need_sdk():
    """npm ci of tests/integration/node into build/node-sdk, unless that lockfile is installed."""
    if not os.access(NODE, os.X_OK) or not os.access(NPM, os.X_OK):
        pytest.fail("node or npm missing: run 'sudo make deps' (Debian's nodejs and npm)")
    with open(os.path.join(SRC_DIR, "package-lock.json"), "rb") as f:
        lock = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(INSTALL_DIR, "node_modules", ".meshtrace-lock")
    os.makedirs(INSTALL_DIR, exist_ok=True)
    for name in ("package.json", "package-lock.json", "service.js"):
        shutil.copyfile(os.path.join(SRC_DIR, name), os.path.join(INSTALL_DIR, name))
    try:
        with open(stamp) as f:
            if f.read().strip() == lock:
                return
    except OSError:
        pass
    r = subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=INSTALL_DIR, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"npm ci in {INSTALL_DIR} failed:\n{r.stdout}\n{r.stderr}"
    with open(stamp, "w") as f:
        f.write(lock + "\n")


class NodeService:
    """tests/integration/node/service.js: the SDK exports to @receiver as service 'node'."""

    def __init__(self, backend_port, receiver, workdir):
        self.port = free_port()
        self.backend_port = backend_port
        self.receiver = receiver
        self.log = os.path.join(workdir, "node.log")
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({
            "OTEL_SERVICE_NAME": "node",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.receiver.endpoint + "/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        })
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([NODE, os.path.join(INSTALL_DIR, "service.js"),
                                      str(self.port), str(self.backend_port)],
                                     cwd=INSTALL_DIR, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.logf, text=True)
        line = self.proc.stdout.readline()  # bounded: the script prints or dies
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"node service did not start: {line!r}\n{self.log_text()}")
        wait_port(self.port)
        return self

    def log_text(self):
        with open(self.log) as f:
            return f.read()[-4000:]

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        """SIGTERM: the SDK flushes its last spans, then the process exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()


class SdkChain:
    def __init__(self, ag, receiver, redis, backend, node, nginx):
        self.agent, self.receiver = ag, receiver
        self.redis, self.backend, self.node, self.nginx = redis, backend, node, nginx
        self.nginx_workers = set(nginx.worker_pids())
        self.curl_pids = set()

    def hop(self, s):
        """(service, kind, reporter) of a span of the chain, or None for anything else."""
        res, kind = s["resource"], s["kind"]
        pid = res.get("process.pid")
        if res.get("telemetry.sdk.language") == "nodejs":
            return ("node", kind, "sdk") if res.get("service.name") == "node" else None
        if res.get("telemetry.sdk.name") != "meshtrace":
            return None
        port = s["attributes"].get("server.port")
        if pid in self.curl_pids and kind == "CLIENT" and port == self.nginx.port:
            return ("curl", kind, "agent")
        if pid in self.nginx_workers:
            return ("nginx", kind, "agent")
        if pid == self.node.pid:
            if kind == "CLIENT" and port == self.receiver.port:
                return ("node-export", kind, "agent")  # the SDK's own export POSTs
            return ("node", kind, "agent")
        if pid == self.backend.pid:
            return ("backend", kind, "agent")
        if pid == self.redis.proc.pid and kind == "SERVER":
            return ("redis", kind, "agent")
        return None

    def run(self, traceparents, path="/api/cache"):
        """One curl per request, one after the other; returns the curl runs."""
        runs = []
        for tp in traceparents:
            c = CurlRun([self.nginx.url(path)],
                        headers=[f"traceparent: {tp}"] if tp else []).run()
            assert c.results[0]["status"] == 200, c.results
            self.curl_pids.add(c.pid)
            runs.append(c)
        return runs

    def finish(self, want_spans):
        """Waits for @want_spans spans of the chain, stops node (its SDK flushes) and the
        agent; returns (spans of the chain with their hop, final agent stats)."""
        def enough(r):
            return sum(1 for s in r.spans() if self.hop(s) and self.hop(s)[0] != "node-export") \
                >= want_spans
        self.receiver.wait_for(enough, 15)
        self.node.stop()
        stats = self.agent.stop()
        spans = [s for s in self.receiver.spans() if self.hop(s)]
        for s in spans:
            s["hop"] = self.hop(s)
        return spans, stats

    def graph_edges(self):
        """(client, server) -> requests from the agent's /api/graph."""
        url = f"http://127.0.0.1:{self.agent.listen_port}/api/graph"
        with urllib.request.urlopen(url, timeout=10) as r:
            graph = json.loads(r.read())
        return {(e["client"], e["server"]): e.get("requests", 0) for e in graph.get("edges", [])}

    def access_log(self):
        return [r for r in self.nginx.log_lines() if r["path"] == "/api/cache"]


@pytest.fixture
def sdk_chain(tmp_path, receiver, agent, make_backend, make_nginx):
    need_sdk()
    listen = free_port()
    ag = agent(["--listen", f"127.0.0.1:{listen}"], receiver=receiver)
    ag.listen_port = listen
    redis = Redis(str(tmp_path)).start()
    node = None
    try:
        backend = make_backend(redis_port=redis.port)
        node = NodeService(backend.port, receiver, str(tmp_path)).start()
        nginx = make_nginx(node.port)
        yield SdkChain(ag, receiver, redis, backend, node, nginx)
    finally:
        if node:
            node.stop()
        redis.stop()


def link_stats(stats):
    return stat(stats, "user", "link") or {}


def hop_name(h):
    return f"{h[0]}.{h[1]}({h[2]})"


def per_request_hops(members):
    return collections.Counter((s["hop"][0], s["hop"][1]) for s in members
                               if s["hop"][0] != "node-export")


def check_access_log(chain, nginx_servers):
    """One access-log line per request, each matched by its client port to one nginx SERVER span."""
    log = chain.access_log()
    assert len(log) == N and all(r["status"] == 200 for r in log), log
    log_ports = sorted(r["remote_port"] for r in log)
    span_ports = sorted(s["attributes"].get("network.peer.port") for s in nginx_servers)
    assert log_ports == span_ports, \
        f"nginx SERVER spans' client ports {span_ports} are not the access log's {log_ports}"


def duplicates(traces_of_request):
    """Per hop: spans beyond one per request, over all requests."""
    extra = collections.Counter()
    for members in traces_of_request:
        for hop, n in per_request_hops(members).items():
            if n > 1:
                extra[hop] += n - 1
    return {f"{h[0]}.{h[1]}": n for h, n in extra.items()}


def export_note(spans, request_traces):
    """The agent's spans of node's export calls (the SDK's POSTs to the receiver): how many, and
    how many landed in a request's trace (made while a request was in flight: rule 2)."""
    ex = [s for s in spans if s["hop"][0] == "node-export"]
    inside = sum(1 for s in ex if s["trace_id"] in request_traces)
    return f"{len(ex)} ({inside} inside a request's trace)"


def test_sdk_chain_with_traceparent(request, sdk_chain):
    """curl sends traceparent: one trace per request, each hop once, the SDK's spans for node."""
    chain = sdk_chain
    calls = [(f"{0x5bf92f3577b34da6a3ce929d0e0e4700 + i:032x}", f"{0x10f067aa0ba90200 + i:016x}")
             for i in range(N)]
    chain.run([f"00-{t}-{p}-01" for t, p in calls])
    spans, stats = chain.finish(len(HOPS[1:]) * N)
    busy = busy_note(stats)
    link = link_stats(stats)
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    want = collections.Counter({h: 1 for h in HOPS[1:]})
    complete = 0
    problems = []
    for trace_id, x in calls:
        members = by_trace.pop(trace_id, [])
        got = per_request_hops(members)
        pick = {(s["hop"][0], s["hop"][1]): s for s in members}
        ok = got == want and all(s["hop"][2] == ("sdk" if s["hop"][0] == "node" else "agent")
                                 for s in members if s["hop"][0] != "node-export")
        if ok:
            # Parents along the chain; node's SERVER span is a child of what nginx forwarded.
            expect = [(("nginx", "SERVER"), x), (("nginx", "CLIENT"), ("nginx", "SERVER")),
                      (("node", "SERVER"), x), (("node", "CLIENT"), ("node", "SERVER")),
                      (("backend", "SERVER"), ("node", "CLIENT")),
                      (("backend", "CLIENT"), ("backend", "SERVER")),
                      (("redis", "SERVER"), ("backend", "CLIENT"))]
            for child, parent in expect:
                pid = parent if isinstance(parent, str) else pick[parent]["span_id"]
                if pick[child]["parent_span_id"] != pid:
                    ok = False
                    problems.append(f"trace {trace_id}: {child}'s parent is "
                                    f"{pick[child]['parent_span_id']}, not {parent}")
        else:
            problems.append(f"trace {trace_id}: hops {dict(got)} reporters "
                            f"{sorted(hop_name(s['hop']) for s in members)}")
        complete += ok
    dup = duplicates([[s for s in spans if s["trace_id"] == t] for t, _ in calls])
    outside = dict(collections.Counter(hop_name(s["hop"]) for v in by_trace.values() for s in v))
    exports = export_note(spans, {t for t, _ in calls})
    figure(request, f"SDK chain, curl sends traceparent: {complete}/{N} requests one complete "
                    f"trace; duplicate spans per hop {dup or 'none'}; spans outside the "
                    f"requests' traces {outside}; node's export "
                    f"calls seen {exports}; link stats {link}")
    check_access_log(chain, [s for s in spans if s["hop"][:2] == ("nginx", "SERVER")])
    assert complete == N, f"{N - complete} of {N} requests not one complete trace{busy}:\n  " + \
        "\n  ".join(problems[:6]) + dump([s for s in spans if s["hop"][0] != "node-export"])
    assert not [s for s in spans if s["hop"] == ("curl", "CLIENT", "agent")], \
        "the agent reported curl's side though curl put its own traceparent on the wire"
    assert not [s for s in spans if s["hop"][0] == "node" and s["hop"][2] == "agent"], \
        "the agent reported a side of node, whose SDK reports both"
    assert link.get("skipped_instrumented_server") == N, link
    assert link.get("learned_continued") == N, link
    assert link.get("instrumented_procs") == 0, link  # node exited before the agent: forgotten


def test_sdk_chain_without_traceparent(request, sdk_chain):
    """curl sends none: per request two traces (the agent's up to nginx's CLIENT span, the SDK's
    from node's SERVER span on), each hop once; nothing of node reported by the agent, the first
    request included."""
    chain = sdk_chain
    chain.run([None] * N)
    # The sides node's SDK reports are still counted: the graph has node's edges both ways.
    edges = {}
    for _ in range(40):
        edges = chain.graph_edges()
        if edges.get(("nginx", "node"), 0) >= N and edges.get(("node", "backend"), 0) >= N:
            break
        time.sleep(0.25)
    spans, stats = chain.finish(len(HOPS) * N)
    busy = busy_note(stats)
    link = link_stats(stats)
    check_access_log(chain, [s for s in spans if s["hop"][:2] == ("nginx", "SERVER")])
    heads = sorted((s for s in spans if s["hop"][:2] == ("curl", "CLIENT")),
                   key=lambda s: s["start_unix_nano"])
    roots = sorted((s for s in spans if s["hop"] == ("node", "SERVER", "sdk")),
                   key=lambda s: s["start_unix_nano"])
    assert len(heads) == N and len(roots) == N, \
        f"{len(heads)} curl CLIENT and {len(roots)} SDK SERVER spans for {N} requests{busy}" + \
        dump(spans)
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    complete = 0
    problems = []
    pairs = []
    for head, root in zip(heads, roots):
        up, down = by_trace[head["trace_id"]], by_trace[root["trace_id"]]
        pairs.append(up + down)
        got_up, got_down = per_request_hops(up), per_request_hops(down)
        ok = head["trace_id"] != root["trace_id"] and not root["parent_span_id"] and \
            got_up == collections.Counter({h: 1 for h in HOPS[:3]}) and \
            got_down == collections.Counter({h: 1 for h in HOPS[3:]})
        if ok:
            pick = {(s["hop"][0], s["hop"][1]): s for s in up + down}
            for a, b in zip(HOPS, HOPS[1:]):
                if b == ("node", "SERVER"):
                    continue  # the SDK received no context: a root (checked above)
                if pick[b]["parent_span_id"] != pick[a]["span_id"]:
                    ok = False
                    problems.append(f"{b}'s parent is not {a}")
        else:
            problems.append(f"request traces: up {dict(got_up)}, down {dict(got_down)}")
        complete += ok
    dup = duplicates(pairs)
    exports = export_note(spans, {s["trace_id"] for p in pairs for s in p})
    figure(request, f"SDK chain, no traceparent from curl: {complete}/{N} requests as the two "
                    f"expected traces (agent's curl->nginx, SDK's node->backend->redis); duplicate "
                    f"spans per hop {dup or 'none'}; node's export calls seen {exports}; graph "
                    f"nginx->node {edges.get(('nginx', 'node'))} node->backend "
                    f"{edges.get(('node', 'backend'))} requests; spans counted not exported "
                    f"{stat(stats, 'user', 'spans_sdk_reported')}; link stats {link}")
    assert edges.get(("nginx", "node"), 0) >= N and edges.get(("node", "backend"), 0) >= N, \
        f"the graph lacks node's edges (its SDK-reported sides still count): {edges}"
    assert complete == N, f"{N - complete} of {N} requests not as expected{busy}:\n  " + \
        "\n  ".join(problems[:6]) + dump([s for s in spans if s["hop"][0] != "node-export"])
    assert not [s for s in spans if s["hop"][0] == "node" and s["hop"][2] == "agent"], \
        "the agent reported a side of node, whose SDK reports both" + dump(spans)
    assert link.get("skipped_instrumented_server") == N, link
    assert link.get("learned_new_trace") == N, link


def test_sdk_server_without_calls(request, sdk_chain):
    """What stays duplicated: until node has made a call carrying its SDK's traceparent, nothing on
    the wire shows that it reports its server spans, so requests it answers itself (/api/health)
    are reported by the agent too; after one such call, none is."""
    chain = sdk_chain
    chain.run([None] * 2, "/api/health")
    chain.run([None], "/api/cache")
    chain.run([None] * 2, "/api/health")
    spans, stats = chain.finish(2 * 5 + 8 + 2 * 4)
    link = link_stats(stats)
    mine = sorted((s for s in spans if s["hop"] == ("node", "SERVER", "agent")),
                  key=lambda s: s["start_unix_nano"])
    sdk = [s for s in spans if s["hop"] == ("node", "SERVER", "sdk")]
    cache = [s for s in spans if s["hop"] == ("backend", "SERVER", "agent")]
    figure(request, f"SDK service answering by itself: node SERVER spans from the agent "
                    f"{len(mine)} (of 4 self-answered requests, 2 before node was known), from "
                    f"the SDK {len(sdk)}; link stats {link}")
    assert len(sdk) == 5, dump(spans)
    assert len(cache) == 1, dump(spans)
    assert len(mine) == 2 and all(s["attributes"].get("url.path") == "/api/health" and
                                  s["end_unix_nano"] < cache[0]["start_unix_nano"]
                                  for s in mine), \
        "the agent should report node's first two (self-answered) requests, and only those" + \
        dump(mine)
    assert link.get("learned_new_trace") == 1, link
    assert link.get("skipped_instrumented_server") == 3, link
