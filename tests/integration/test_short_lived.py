# SPDX-License-Identifier: Apache-2.0
"""Processes that live 1-10 ms are named by their own OTEL_SERVICE_NAME (or service.name in
OTEL_RESOURCE_ATTRIBUTES), not by their thread name: the kernel reads the environment when the
process execs, since /proc is gone by the time its span is built (issue 12, point 2)."""

import http.server
import os
import shutil
import subprocess
import threading
import time

import pytest

from mt_agent import read_jsonl, stat
from mt_report import figure
from mt_spans import a, dump, select

HERE = os.path.dirname(os.path.abspath(__file__))
DELAYS_US = [0, 2000, 5000, 8000]  # time each client lingers after its answer
# The lifetimes (main to exit) asked for by issue 12, ms: each C client lingers after its answer
# for what is left of its lifetime once the request is done (about 1 ms here; 0 for 1 ms: it
# exits as soon as it has its answer).
LIFETIMES_MS = [1, 5, 10]
RUNS_PER_LIFETIME = 8
REQUEST_US = 1000


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler: run 'sudo make deps'")
    out = tmp_path / "short_client"
    subprocess.run([cc, "-O2", "-o", str(out), os.path.join(HERE, "peer_short_client.c")],
                   check=True)
    return str(out)


def run(argv, env):
    """Runs argv to its end; returns (pid, lifetime in ms): what the process printed (the C
    client: main() to exit), else from fork to reaped."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out, _ = p.communicate(timeout=10)
    ms = (time.monotonic() - t0) * 1000
    assert p.returncode == 0, f"{argv} exited {p.returncode}"
    if out.strip().isdigit():
        ms = int(out) / 1000
    return p.pid, ms


def test_short_lived_named_from_exec(request, tmp_path, agent, server, client):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    jsonl_path = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl_path)])
    runs = []  # (pid, lifetime_ms, expected service, how, target lifetime_ms)
    for i in range(RUNS_PER_LIFETIME * len(LIFETIMES_MS)):
        target = LIFETIMES_MS[i % len(LIFETIMES_MS)]
        delay = max(0, target * 1000 - REQUEST_US)
        env = dict(base)
        if i % 4 == 3:  # service.name inside the resource attributes, after another one
            env["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=test,service.name=short-attrs"
            want = "short-attrs"
        else:
            env["OTEL_SERVICE_NAME"] = "short-client"
            want = "short-client"
        pid, ms = run([client, str(server), str(delay)], env)
        runs.append((pid, ms, want, "c", target))
    curl = shutil.which("curl")
    if curl:
        for _ in range(5):
            env = dict(base, OTEL_SERVICE_NAME="curl-client")
            pid, ms = run([curl, "-s", "-o", "/dev/null", f"http://127.0.0.1:{server}/short"],
                          env)
            runs.append((pid, ms, "curl-client", "curl", None))
    time.sleep(1.5)  # past the agent's 1 s flush of idle spans
    stats = ag.stop()
    spans = read_jsonl(jsonl_path)

    right, wrong, missing = [], [], []
    for pid, ms, want, how, _ in runs:
        mine = select(spans, "CLIENT", pid=pid)
        if not mine:
            missing.append((pid, ms, how))
        elif all(s["resource"]["service.name"] == want for s in mine):
            right.append((pid, ms, how))
        else:
            wrong.append((pid, ms, how, mine[0]["resource"]["service.name"], want))
    right_pids = {r[0] for r in right}
    for target in LIFETIMES_MS:
        mine = [(pid, ms) for pid, ms, _, how, t in runs if t == target]
        lived = sorted(ms for _, ms in mine)
        figure(request, f"lifetime ~{target} ms: {sum(pid in right_pids for pid, _ in mine)} of "
                        f"{len(mine)} named right (lived {lived[0]:.2f}-{lived[-1]:.2f} ms, "
                        f"main to exit)")
    c_ms = sorted(r[1] for r in runs if r[3] == "c")
    curl_ms = sorted(r[1] for r in runs if r[3] == "curl") or [0]
    figure(request, f"{len(right)} of {len(runs)} short-lived clients named right "
                    f"({len(wrong)} wrong, {len(missing)} without a CLIENT span); C client "
                    f"lifetimes {c_ms[0]:.1f}-{c_ms[-1]:.1f} ms (main to exit), curl "
                    f"{curl_ms[0]:.1f}-{curl_ms[-1]:.1f} ms (fork to reaped); identity births "
                    f"{stat(stats, 'identity', 'births')}, kept {stat(stats, 'identity', 'kept')}")
    assert not missing, f"no CLIENT span for {missing}; spans:{dump(spans[:20])}"
    assert not wrong, f"named wrong (pid, ms, how, got, want): {wrong}"
    for s in select(spans, "CLIENT"):
        if s["resource"].get("process.pid") in {r[0] for r in runs}:
            assert a(s, "server.port") == server, s


CONTAINER_ID = "5b0c5b0c" * 8  # 64 hex digits


@pytest.fixture(params=["all", "v1-memory"])
def container_cgroup(request):
    """A cgroup named as podman names a container's, in each hierarchy the kernel side may read
    (the default one; on v1 and hybrid hosts, the memory controller's), or in the v1 memory
    controller's alone (a hybrid host whose runtime leaves the default hierarchy at its root)."""
    leaf = f"libpod-{CONTAINER_ID}.scope"
    dirs = []
    tops = ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
    if request.param == "v1-memory":
        if not os.path.exists("/sys/fs/cgroup/memory/cgroup.procs"):
            pytest.skip("no v1 memory controller on this host (pure cgroup v2)")
        tops = ("/sys/fs/cgroup/memory",)
    for top in tops:
        if not os.path.exists(os.path.join(top, "cgroup.procs")):
            continue
        if top == "/sys/fs/cgroup" and dirs:
            continue  # v1/hybrid: /sys/fs/cgroup itself is a tmpfs of hierarchies
        path = os.path.join(top, leaf)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            pytest.skip(f"cannot make a cgroup under {top}: {e}")
        dirs.append(path)
    if not dirs:
        pytest.skip("no writable cgroup hierarchy")
    yield dirs
    for d in dirs:
        for _ in range(50):  # the clients are reaped, but the kernel frees their cgroup lazily
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.05)


def test_short_lived_named_by_container(request, tmp_path, agent, server, client,
                                        container_cgroup):
    """No OTEL_* variable: a short-lived process is named by its container, read at exec."""
    def join():
        for d in container_cgroup:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    jsonl_path = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl_path)])
    runs = []
    for i in range(8):
        t0 = time.monotonic()
        p = subprocess.Popen([client, str(server), str(DELAYS_US[i % len(DELAYS_US)])], env=env,
                             stdout=subprocess.PIPE, preexec_fn=join)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 0
        runs.append((p.pid, int(out) / 1000 if out.strip().isdigit() else
                     (time.monotonic() - t0) * 1000))
    time.sleep(1.5)
    ag.stop()
    spans = read_jsonl(jsonl_path)
    want = f"container/{CONTAINER_ID[:12]}"
    got = {pid: sorted({s["resource"]["service.name"] for s in select(spans, "CLIENT", pid=pid)})
           for pid, _ in runs}
    right = [pid for pid, names in got.items() if names == [want]]
    figure(request, f"{len(right)} of {len(runs)} short-lived clients in a container cgroup named "
                    f"{want}; lifetimes {min(ms for _, ms in runs):.1f}-"
                    f"{max(ms for _, ms in runs):.1f} ms (main to exit); cgroups {container_cgroup}")
    assert len(right) == len(runs), f"service names by pid (want {want}): {got}"


STORM_EXECS = 20000
STORM_PARALLEL = 8
IDENTITY_MAX = 4096  # agent/identity/identity.h
RSS_GROWTH_MAX_KB = 8 * 1024
RSS_SECOND_HALF_MAX_KB = 768


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_exec_storm_is_bounded(request, tmp_path, agent):
    """20,000 processes exec and exit at once, none making a span: the identities recorded at
    each exec stay within the table's bound, every one not in the table is accounted for
    (expired after its exit or evicted, counted), and the agent's RSS stays flat."""
    cc = shutil.which("cc") or shutil.which("gcc")
    true = shutil.which("true")
    assert cc and true, "needs cc and true"
    storm = tmp_path / "exec_storm"
    subprocess.run([cc, "-O2", "-o", str(storm), os.path.join(HERE, "peer_exec_storm.c")],
                   check=True)
    ag = agent(["--listen", "off", "--stats-interval", "1"])
    time.sleep(1)
    rss0 = rss_kb(ag.pid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OTEL_SERVICE_NAME": "storm"}
    # Two halves: by the second the table is as full as it gets, so the RSS must not move.
    rss_half = []
    for _ in range(2):
        out = subprocess.run([str(storm), str(STORM_EXECS // 2), str(STORM_PARALLEL), true],
                             env=env, capture_output=True, text=True, timeout=240,
                             check=True).stdout
        assert int(out) == STORM_EXECS // 2
        rss_half.append(rss_kb(ag.pid))
    rss1 = rss_half[-1]
    time.sleep(1.5)  # one more stats line after the last exec
    rss2 = rss_kb(ag.pid)
    stats = ag.stop()
    births = stat(stats, "identity", "births", default=0)
    entries = stat(stats, "identity", "entries", default=0)
    evicted = stat(stats, "identity", "evicted", default=0)
    evicted_live = stat(stats, "identity", "evicted_live", default=0)
    exits = stat(stats, "identity", "exits", default=0)
    reused = stat(stats, "identity", "execs", default=0)  # pid reused, or exec'd again
    peak_entries = max([stat(s, "identity", "entries", default=0) for _, s in ag.periodic_stats]
                       + [entries])
    figure(request, f"exec storm: {STORM_EXECS} execs, {births} identities recorded at exec; "
                    f"peak {peak_entries} of {IDENTITY_MAX} entries, {evicted} evicted "
                    f"({evicted_live} of live processes), {exits} expired after exit, "
                    f"{reused} slots reused by the same pid; agent RSS "
                    f"{rss0 / 1024:.1f} MB before, {rss_half[0] / 1024:.1f} MB half-way, "
                    f"{rss1 / 1024:.1f} MB after, {rss2 / 1024:.1f} MB 1.5 s later")
    # Every exec of the storm was seen (the agent's own and the test's add a few).
    assert births >= STORM_EXECS, stats.get("identity")
    assert peak_entries <= IDENTITY_MAX, stats.get("identity")
    # Whatever is not in the table left it counted: expired after its exit, evicted, or
    # replaced by a later exec of the same pid.
    assert entries + evicted + exits + reused >= births, stats.get("identity")
    assert max(rss1, rss2) - rss0 <= RSS_GROWTH_MAX_KB, (rss0, rss_half, rss2)
    # 10,000 more execs: a leak of even 100 bytes each would show here.
    assert max(rss1, rss2) - rss_half[0] <= RSS_SECOND_HALF_MAX_KB, (rss0, rss_half, rss2)
