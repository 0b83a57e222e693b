# SPDX-License-Identifier: Apache-2.0
"""Issue 4's integration tests: whole traces across three uninstrumented services on loopback.

  client --> A (python ThreadingHTTPServer, thread per connection, OTEL_SERVICE_NAME=svc-a)
         --> B (nginx reverse proxy: one worker, an event loop)
         --> C (a second nginx serving static files)

A's path picks how it calls B: /new/... a new connection per call, /ka/... the handler thread's
own keep-alive connection. B's path picks how it calls C: /ka/... an upstream with keep-alive,
/nk/... a new connection per call. So GET A/new/ka/f.txt -> B/ka/f.txt -> C/ka/f.txt.

Every request must form exactly one trace, decoded from OTLP with the official schema, whose
parent chain (by parent_span_id) is
  root CLIENT -> A.SERVER -> A.CLIENT -> B.SERVER -> B.CLIENT -> C.SERVER
with one span per side per call and every child inside its parent's time (CLOCK_SLACK_NS)."""

import collections
import http.client
import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from mt_agent import busy_note, stat
from mt_otlp import free_port
from mt_peers import HERE, LOG_FIELDS, CurlRun, Nginx
from mt_report import figure
from mt_spans import a, dump, short, span_path

MS = 1_000_000
CLOCK_SLACK_NS = 1 * MS  # both sides stamp with the same kernel clock; wake-up order only
CHAIN = ["root", "a_srv", "a_cli", "b_srv", "b_cli", "c_srv"]
LABEL = {"root": "client.CLIENT", "a_srv": "A.SERVER", "a_cli": "A.CLIENT",
         "b_srv": "B.SERVER", "b_cli": "B.CLIENT", "c_srv": "C.SERVER"}
FILES = ("f.txt", "g.txt", "h.txt")
UNIQUE_FILES = 200  # x0.txt..: one path per request where a test needs to tell requests apart
M = 60  # requests in the concurrent test
# (A's mode of calling B, B's mode of calling C) for each concurrent client; a client whose A
# mode is 'ka' keeps its connection to A, so that A's handler thread (and its connection to B)
# lives across its requests.
CLIENT_MODES = [("new", "ka"), ("new", "nk"), ("ka", "ka"), ("ka", "nk"), ("new", "ka"),
                ("ka", "ka")]


# ---------------------------------------------------------------- the three services


class ConfNginx(Nginx):
    """mt_peers.Nginx (one worker, own prefix) with the http block's servers given."""

    def __init__(self, workdir, servers):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir, 0)
        self.servers = servers

    def write_config(self):
        d = self.dir
        os.makedirs(self.root, exist_ok=True)
        for mode in ("ka", "nk"):
            os.makedirs(os.path.join(self.root, mode), exist_ok=True)
            for name in FILES + tuple(f"x{i}.txt" for i in range(UNIQUE_FILES)):
                with open(os.path.join(self.root, mode, name), "wb") as f:
                    f.write(f"{mode}/{name} from C\n".encode() * 8)
        fmt = " ".join("$" + f for f in LOG_FIELDS)
        conf = f"""
# written by tests/integration/test_traces.py
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log info;
{"user root root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 512; }}
http {{
    default_type text/plain;
    log_format mt '{fmt}';
    access_log {self.access_log} mt;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    keepalive_timeout 30s;
    {self.servers(self.port, self.root)}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)


def c_servers(port, root):
    return f"server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}"


def b_servers(c_port):
    return lambda port, root: f"""
    upstream c_ka {{ server 127.0.0.1:{c_port}; keepalive 8; }}
    upstream c_nk {{ server 127.0.0.1:{c_port}; }}
    server {{
        listen 127.0.0.1:{port};
        location /ka/ {{ proxy_pass http://c_ka; proxy_http_version 1.1;
                        proxy_set_header Connection ""; }}
        location /nk/ {{ proxy_pass http://c_nk; }}
    }}"""


class SvcA:
    def __init__(self, b_port):
        self.port = free_port()
        self.b_port = b_port
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_SERVICE_NAME"] = "svc-a"
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_svc_a.py"),
                                      str(self.port), str(self.b_port)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"service A did not start: {line!r} {self.proc.stderr.read()}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Services:
    def __init__(self, tmp_path):
        self.c = ConfNginx(str(tmp_path / "c"), c_servers)
        self.c.start()
        self.b = ConfNginx(str(tmp_path / "b"), b_servers(self.c.port))
        self.b.start()
        self.a = SvcA(self.b.port).start()
        self.b_workers = self.b.worker_pids()
        self.c_workers = self.c.worker_pids()
        assert len(self.b_workers) == 1 and len(self.c_workers) == 1, \
            (self.b_workers, self.c_workers)

    def url(self, path):
        return f"http://127.0.0.1:{self.a.port}{path}"

    def stop(self):
        self.a.stop()
        self.b.stop()
        self.c.stop()

    def role(self, s, root_pids):
        """Which side of which call a span is, or None for anything else on the node."""
        pid, kind = s["resource"].get("process.pid"), s["kind"]
        if pid in root_pids and kind == "CLIENT" and a(s, "server.port") == self.a.port:
            return "root"
        if pid == self.a.pid:
            return "a_srv" if kind == "SERVER" else "a_cli"
        if pid in self.b_workers:
            return "b_srv" if kind == "SERVER" else "b_cli"
        if pid in self.c_workers and kind == "SERVER":
            return "c_srv"
        return None


@pytest.fixture
def services(tmp_path):
    if not os.access("/usr/sbin/nginx", os.X_OK):
        pytest.skip("nginx missing: run 'sudo make deps' (nginx-light)")
    s = Services(tmp_path)
    yield s
    s.stop()


# ---------------------------------------------------------------- analysis


def link_stats(stats):
    return stat(stats, "user", "link")


def analyze(spans, svc, root_pids, chain=CHAIN):
    """Sorts the test's spans by role and checks every trace that starts at a span of chain[0].
    Returns (by_role, traces, problems) where traces is a list of (head span, [problem, ...])."""
    by_role = collections.defaultdict(list)
    role_of = {}
    for s in spans:
        r = svc.role(s, root_pids)
        if r:
            by_role[r].append(s)
            role_of[s["span_id"]] = r
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    by_id = {s["span_id"]: s for s in spans}
    traces = []
    for head in sorted(by_role[chain[0]], key=lambda s: s["start_unix_nano"]):
        members = by_trace[head["trace_id"]]
        problems = []
        got = collections.Counter(role_of.get(s["span_id"], "foreign") for s in members)
        for r in chain:
            if got[r] != 1:
                problems.append(f"{got[r]} {LABEL[r]} spans in the trace")
        for r in set(got) - set(chain):
            problems.append(f"{got[r]} {LABEL.get(r, r)} spans in the trace (not of this call)")
        pick = {role_of.get(s["span_id"]): s for s in members}
        for parent_role, child_role in zip(chain, chain[1:]):
            p, c = pick.get(parent_role), pick.get(child_role)
            if not p or not c:
                continue
            if c["parent_span_id"] != p["span_id"]:
                actual = by_id.get(c["parent_span_id"])
                what = describe(actual, role_of) if actual else c["parent_span_id"] or "none"
                problems.append(f"{LABEL[child_role]}'s parent is {what}, not {LABEL[parent_role]}")
                continue
            if c["start_unix_nano"] + CLOCK_SLACK_NS < p["start_unix_nano"] or \
                    c["end_unix_nano"] > p["end_unix_nano"] + CLOCK_SLACK_NS:
                problems.append(
                    f"{LABEL[child_role]} [{c['start_unix_nano']}, {c['end_unix_nano']}] not "
                    f"inside {LABEL[parent_role]} [{p['start_unix_nano']}, {p['end_unix_nano']}] "
                    f"(start {(c['start_unix_nano'] - p['start_unix_nano']) / 1e3:+.1f} us, end "
                    f"{(c['end_unix_nano'] - p['end_unix_nano']) / 1e3:+.1f} us)")
        traces.append((head, problems))
    return by_role, traces, role_of


def describe(s, role_of):
    return f"{LABEL.get(role_of.get(s['span_id']), 'a foreign span')} {span_path(s)} " \
           f"span={s['span_id']} trace={s['trace_id'][:8]}"


def link_report(by_role, role_of, chain=CHAIN):
    """Per link of the chain: how many children have a parent of the right role."""
    by_id = {s["span_id"]: s for r in by_role.values() for s in r}
    out = []
    for parent_role, child_role in zip(chain, chain[1:]):
        kids = by_role.get(child_role, [])
        ok = sum(1 for c in kids if role_of.get(c["parent_span_id"]) == parent_role and
                 by_id[c["parent_span_id"]]["trace_id"] == c["trace_id"])
        roots = sum(1 for c in kids if not c["parent_span_id"])
        out.append(f"{LABEL[parent_role]}->{LABEL[child_role]} {ok}/{len(kids)}"
                   + (f" ({roots} roots)" if roots else ""))
    return ", ".join(out)


def trace_dump(head, spans, role_of):
    members = sorted((s for s in spans if s["trace_id"] == head["trace_id"]),
                     key=lambda s: s["start_unix_nano"])
    return "\n    " + "\n    ".join(
        f"{LABEL.get(role_of.get(s['span_id']), 'foreign'):13} {short(s)} "
        f"parent={s['parent_span_id'] or '-'} start={s['start_unix_nano']}" for s in members)


def failure_text(traces, spans, role_of, limit=4):
    bad = [(h, p) for h, p in traces if p]
    lines = []
    for head, problems in bad[:limit]:
        lines.append(f"  trace {head['trace_id']} ({span_path(head)}): {'; '.join(problems)}"
                     f"{trace_dump(head, spans, role_of)}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more incomplete traces")
    return "\n".join(lines)


def wait_spans(receiver, svc, root_pids, want, timeout=8):
    """Waits until the receiver holds `want` spans of the test's services."""
    def enough(r):
        return sum(1 for s in r.spans() if svc.role(s, root_pids)) >= want
    receiver.wait_for(enough, timeout)


# ---------------------------------------------------------------- the tests


def _client(svc, modes, count, barrier, results, errors):
    a_mode, b_mode = modes
    conn = None
    try:
        barrier.wait(10)
        for i in range(count):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", svc.a.port, timeout=10)
            path = f"/{a_mode}/{b_mode}/{FILES[i % len(FILES)]}"
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            results.append((path, resp.status, len(body)))
            if a_mode != "ka":
                conn.close()
                conn = None
    except Exception as e:  # reported by the test
        errors.append(f"{modes}: {type(e).__name__}: {e}")
    finally:
        if conn is not None:
            conn.close()


def test_three_services_concurrent(request, receiver, agent, services):
    """M requests from several concurrent client threads (the test process itself is the
    traced root client) through A -> B -> C: each one whole trace."""
    svc = services
    ag = agent(receiver=receiver)
    per = M // len(CLIENT_MODES)
    results, errors = [], []
    barrier = threading.Barrier(len(CLIENT_MODES))
    threads = [threading.Thread(target=_client, args=(svc, m, per, barrier, results, errors))
               for m in CLIENT_MODES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    n = len(results)
    assert n == per * len(CLIENT_MODES) and all(r[1] == 200 for r in results), results
    root_pids = {os.getpid()}
    wait_spans(receiver, svc, root_pids, 6 * n)
    stats = ag.stop()
    busy = busy_note(stats)
    spans = receiver.spans()
    by_role, traces, role_of = analyze(spans, svc, root_pids)
    complete = sum(1 for _h, p in traces if not p)
    per_mode = collections.defaultdict(lambda: [0, 0])
    for head, problems in traces:
        mode = "/".join(span_path(head).split("/")[1:3])
        per_mode[mode][1] += 1
        per_mode[mode][0] += not problems
    modes = dict(sorted((k, f"{v[0]}/{v[1]}") for k, v in per_mode.items()))
    figure(request, f"three services (A python thread-per-connection -> B nginx proxy -> C "
                    f"nginx static), {n} requests from {len(CLIENT_MODES)} concurrent clients: "
                    f"{complete}/{n} formed one complete trace ({complete / max(n, 1):.3f}); "
                    f"by A-mode/B-mode {modes}; "
                    f"spans per role "
                    f"{ {LABEL[r]: len(by_role.get(r, [])) for r in CHAIN} }; "
                    f"links {link_report(by_role, role_of)}{busy}")
    figure(request, f"link stats (three services): {link_stats(stats)}")

    # One span per side per call, no more, no less.
    ids = [s["span_id"] for s in spans]
    assert len(set(ids)) == len(ids), "duplicate span ids in the export"
    counts = {LABEL[r]: len(by_role.get(r, [])) for r in CHAIN}
    assert all(v == n for v in counts.values()), \
        f"want {n} spans of each side of each call, got {counts}{busy}"
    not_roots = [s for s in by_role["root"] if s["parent_span_id"]]
    assert not not_roots, f"the test's own client spans must be roots:{dump(not_roots)}"
    # Every request: exactly one trace, the whole chain, children inside their parents.
    assert complete == n, \
        f"{n - complete} of {n} requests did not form one complete trace{busy}; links " \
        f"{link_report(by_role, role_of)}; link stats {link_stats(stats)}\n" \
        f"{failure_text(traces, spans, role_of)}"
    assert len({h["trace_id"] for h, _p in traces}) == n, "two requests share a trace id"


def test_client_traceparent(request, receiver, agent, services):
    """A client that sends its own traceparent: every span of its call lands in that trace, A's
    server span has the header's parent, and the agent emits no span for curl's side."""
    svc = services
    ag = agent(receiver=receiver)
    calls = []
    for i, path in enumerate(("/new/ka/f.txt", "/ka/nk/g.txt", "/new/nk/h.txt")):
        trace_id = f"{0x4bf92f3577b34da6a3ce929d0e0e4700 + i:032x}"
        parent = f"{0x00f067aa0ba902b0 + i:016x}"
        c = CurlRun([svc.url(path)], headers=[f"traceparent: 00-{trace_id}-{parent}-01",
                                              "tracestate: mt=test"]).run()
        assert c.results[0]["status"] == 200, c.results
        calls.append((c, trace_id, parent, path))
    curl_pids = {c.pid for c, *_ in calls}
    wait_spans(receiver, svc, curl_pids, 5 * len(calls))
    stats = ag.stop()
    busy = busy_note(stats)
    spans = receiver.spans()
    by_role, _t, role_of = analyze(spans, svc, curl_pids)
    figure(request, f"client traceparent: {len(calls)} curl calls; spans per role "
                    f"{ {LABEL[r]: len(by_role.get(r, [])) for r in CHAIN} }; link stats "
                    f"{link_stats(stats)}")
    curl_spans = [s for s in spans if s["resource"].get("process.pid") in curl_pids]
    assert not curl_spans, \
        f"the agent emitted spans for an instrumented client (curl sent traceparent):" \
        f"{dump(curl_spans)}"
    for c, trace_id, parent, path in calls:
        mine = [s for s in spans if s["trace_id"] == trace_id]
        got = collections.Counter(role_of.get(s["span_id"], "foreign") for s in mine)
        want = collections.Counter({r: 1 for r in CHAIN[1:]})
        assert got == want, \
            f"{path} with traceparent {trace_id}: roles in that trace {dict(got)}, want one of " \
            f"each of {[LABEL[r] for r in CHAIN[1:]]}{busy}; the test's spans:" \
            f"{dump([s for s in spans if role_of.get(s['span_id'])])}"
        pick = {role_of[s["span_id"]]: s for s in mine}
        assert pick["a_srv"]["parent_span_id"] == parent, \
            f"A.SERVER's parent is {pick['a_srv']['parent_span_id']!r}, the header said {parent}"
        for p, ch in zip(CHAIN[1:], CHAIN[2:]):
            assert pick[ch]["parent_span_id"] == pick[p]["span_id"], \
                f"{path}: {LABEL[ch]}'s parent is not {LABEL[p]}:{dump(mine)}"
    link = link_stats(stats) or {}
    assert link.get("skipped_instrumented", 0) >= len(calls), \
        f"skipped_instrumented should count curl's {len(calls)} calls: {link}"
    assert link.get("linked_traceparent", 0) >= len(calls), link


def _read_responses(sock, count, timeout=10):
    """Reads `count` HTTP/1.1 responses with Content-Length off a socket; returns statuses."""
    sock.settimeout(timeout)
    buf, statuses = b"", []
    while len(statuses) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            if len(buf) >= end + 4 + length:
                statuses.append(int(head.split()[1]))
                buf = buf[end + 4 + length:]
                continue
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"A closed the connection after {len(statuses)} responses")
        buf += data
    return statuses


def test_pipelined_requests(request, receiver, agent, services):
    """Three requests written to A in one send on one keep-alive connection: three traces."""
    svc = services
    ag = agent(receiver=receiver)
    paths = ["/new/ka/f.txt", "/ka/ka/g.txt", "/new/nk/h.txt"]
    with socket.create_connection(("127.0.0.1", svc.a.port), timeout=10) as sock:
        sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:{svc.a.port}\r\n\r\n".encode()
                              for p in paths))
        statuses = _read_responses(sock, len(paths))
    assert statuses == [200] * len(paths), statuses
    root_pids = {os.getpid()}
    wait_spans(receiver, svc, root_pids, 6 * len(paths))
    stats = ag.stop()
    busy = busy_note(stats)
    spans = receiver.spans()
    by_role, traces, role_of = analyze(spans, svc, root_pids)
    complete = sum(1 for _h, p in traces if not p)
    figure(request, f"pipelined: {complete}/{len(paths)} complete traces; links "
                    f"{link_report(by_role, role_of)}; link stats {link_stats(stats)}")
    assert sorted(span_path(s) for s in by_role["root"]) == sorted(paths), \
        f"root client spans for the pipelined requests{busy}:{dump(by_role['root'])}"
    assert complete == len(paths), \
        f"{len(paths) - complete} of {len(paths)} pipelined requests did not form one complete " \
        f"trace{busy}; links {link_report(by_role, role_of)}; link stats {link_stats(stats)}\n" \
        f"{failure_text(traces, spans, role_of)}"
    # The requests' own paths at every hop (A calls B with A's path minus its mode).
    for head, _p in traces:
        want = span_path(head).split("/", 2)[2]
        for s in spans:
            if s["trace_id"] == head["trace_id"] and role_of.get(s["span_id"]) != "root":
                assert span_path(s).endswith(want.split("/", 1)[1]), \
                    f"{LABEL[role_of[s['span_id']]]} {span_path(s)} in the trace of " \
                    f"{span_path(head)}"


def test_connection_before_agent(request, receiver, agent, services):
    """A keep-alive connection to A (and, behind it, A's to B and B's to C) opened and used
    before the agent starts: the two requests after 'meshtrace: ready' form complete traces."""
    svc = services
    client = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_keepalive_client.py"),
                               str(svc.a.port), "/ka/ka/f.txt", "/ka/ka/g.txt", "/ka/ka/h.txt"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        first = client.stdout.readline().split()
        assert first[:1] == ["before"] and first[2] == "200", (first, client.stderr.read())
        ag = agent(receiver=receiver)
        client.stdin.write("go\n")
        client.stdin.flush()
        out, err = client.communicate(timeout=20)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0 and out.split()[2:] == ["200", "200"], (out, err)
    root_pids = {client.pid}
    wait_spans(receiver, svc, root_pids, 12)
    stats = ag.stop()
    busy = busy_note(stats)
    spans = receiver.spans()
    by_role, traces, role_of = analyze(spans, svc, root_pids)
    complete = sum(1 for _h, p in traces if not p)
    figure(request, f"connection before the agent: {complete}/2 complete traces; links "
                    f"{link_report(by_role, role_of)}; link stats {link_stats(stats)}")
    assert sorted(span_path(s) for s in by_role["root"]) == ["/ka/ka/g.txt", "/ka/ka/h.txt"], \
        f"root client spans on the pre-existing connection{busy}:{dump(by_role['root'])}"
    assert complete == 2, \
        f"{2 - complete} of the 2 requests on the pre-existing connection did not form one " \
        f"complete trace{busy}; links {link_report(by_role, role_of)}; link stats " \
        f"{link_stats(stats)}\n{failure_text(traces, spans, role_of)}"


def _proxy_client(port, paths, barrier, results, errors):
    try:
        barrier.wait(10)
        for path in paths:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            results.append((path, resp.status))
    except Exception as e:  # reported by the test
        errors.append(f"{type(e).__name__}: {e}")


def test_event_loop_proxy_never_guesses(request, receiver, agent, services):
    """Many requests in flight at once on B's single nginx worker (an event loop), each with its
    own path: every B.CLIENT span is either the child of the B.SERVER span of the same request,
    or a root counted as ambiguous. Never the child of another request (the issue: 'link only
    when the evidence is unambiguous, and count the ambiguous cases instead of guessing').
    Half the clients go through B's upstream with keep-alive (/ka/), half through the default
    one, a new connection per call (/nk/: nginx connects, then writes in a later turn)."""
    svc = services
    ag = agent(receiver=receiver)
    threads_n, per = 16, UNIQUE_FILES // 16
    results, errors = [], []
    barrier = threading.Barrier(threads_n)
    threads = [threading.Thread(target=_proxy_client, args=(
        svc.b.port, [f"/{'nk' if k % 2 == 0 else 'ka'}/x{k * per + i}.txt" for i in range(per)],
        barrier, results, errors)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    n = len(results)
    assert n == threads_n * per and all(r[1] == 200 for r in results), results

    def b_side(spans, kind):
        return [s for s in spans if s["resource"].get("process.pid") in svc.b_workers
                and s["kind"] == kind]
    receiver.wait_for(lambda r: len(b_side(r.spans(), "CLIENT")) >= n, 8)
    stats = ag.stop()
    busy = busy_note(stats)
    spans = receiver.spans()
    by_id = {s["span_id"]: s for s in spans}
    b_srv, b_cli = b_side(spans, "SERVER"), b_side(spans, "CLIENT")
    right, wrong, roots = collections.Counter(), collections.Counter(), collections.Counter()
    wrong_examples = []
    for s in b_cli:
        mode = span_path(s).split("/")[1]
        parent = by_id.get(s["parent_span_id"])
        if not s["parent_span_id"]:
            roots[mode] += 1
        elif parent and parent in b_srv and span_path(parent) == span_path(s) and \
                parent["trace_id"] == s["trace_id"]:
            right[mode] += 1
        else:
            wrong[mode] += 1
            other = f"B.SERVER {span_path(parent)} start={parent['start_unix_nano']}" \
                if parent else s["parent_span_id"]
            wrong_examples.append(f"B.CLIENT {span_path(s)} span={s['span_id']} "
                                  f"start={s['start_unix_nano']} -> parent {other}")
    link = link_stats(stats) or {}
    ambiguous = stat(link, "unlinked", "ambiguous_thread", default=0)
    figure(request, f"event-loop proxy, {n} requests from {threads_n} concurrent clients straight "
                    f"to B: B.CLIENT spans {len(b_cli)} (B.SERVER {len(b_srv)}); right parent "
                    f"{dict(right)}, WRONG parent {dict(wrong)}, roots {dict(roots)}; link stats "
                    f"{link}{busy}")
    assert len(b_cli) == n and len(b_srv) == n, \
        f"{len(b_srv)} B.SERVER and {len(b_cli)} B.CLIENT spans for {n} requests{busy}"
    assert not wrong, \
        f"{sum(wrong.values())} of {n} B.CLIENT spans were given the B.SERVER span of ANOTHER " \
        f"request as parent (by mode {dict(wrong)}; right {dict(right)}, roots {dict(roots)}); " \
        f"link stats {link}:\n  " + "\n  ".join(wrong_examples[:8])
    assert ambiguous >= sum(roots.values()), \
        f"{sum(roots.values())} B.CLIENT spans are roots but only {ambiguous} were counted " \
        f"ambiguous_thread: {link}"
