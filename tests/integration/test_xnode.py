# SPDX-License-Identifier: Apache-2.0
"""Issue 16's integration tests: traces across nodes (trace context in a TCP header option,
--propagate) and agents scoped to a cgroup v2 subtree (--cgroup).

Two network namespaces joined by a veth pair play two nodes; each node's processes live in
their own cgroup v2 subtree, watched by their own agent scoped to it; both agents export to
one OTLP receiver (each with its own x-mt-node header, so the test knows who sent what):

  A (node 1, client) --keep-alive--> B (node 2, server; calls C per request on its
  handler thread's keep-alive connection) --keep-alive--> C (node 1, server)

With --propagate every request must form one trace across both agents' exports:
A.CLIENT -> B.SERVER -> B.CLIENT -> C.SERVER, parent ids right at each hop. Without it (the
control) the same run gives fragments. A client whose peer runs no agent gets its bytes back
unchanged with the option on."""

import collections
import os
import shutil
import subprocess
import sys
import time

import pytest

from mt_agent import busy_note, stat
from mt_otlp import flatten_traces
from mt_report import figure
from mt_spans import span_path

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer_xnode.py")
N = 40  # requests, on one keep-alive connection A -> B (and B -> C)
BURSTS = 20  # pipelined bursts of 3 requests A -> B
COST_N, COST_ROUNDS = 2000, 6  # test_cost_per_request
PORT_B, PORT_C, PORT_ECHO, PORT_REDIS = 18081, 18082, 18083, 18084
REDIS_SERVER = os.environ.get("MESHTRACE_REDIS", "/usr/bin/redis-server")
ECHO_BYTES = 200_000


def cgroup2_root():
    for d in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(d, "cgroup.procs")) and \
                os.path.exists(os.path.join(d, "cgroup.subtree_control")):
            return d
    return None


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True, text=True)


class Nodes:
    """Two netns joined by a veth pair, and a cgroup v2 subtree per node."""

    def __init__(self):
        tag = os.getpid() % 200 + 20
        self.ns = [f"mtxn{tag}a", f"mtxn{tag}b"]
        self.addr = [f"10.231.{tag}.1", f"10.231.{tag}.2"]
        self.veth = [f"mtxn{tag}a", f"mtxn{tag}b"]
        root = cgroup2_root()
        self.cg_top = os.path.join(root, f"mt-xnode-{os.getpid()}")
        self.cg = [os.path.join(self.cg_top, "node1"), os.path.join(self.cg_top, "node2")]
        self.procs = []

    def setup(self):
        for ns in self.ns:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", self.veth[0], "netns", self.ns[0], "type", "veth",
           "peer", "name", self.veth[1], "netns", self.ns[1])
        for i in (0, 1):
            sh("ip", "-n", self.ns[i], "addr", "add", f"{self.addr[i]}/24", "dev", self.veth[i])
            sh("ip", "-n", self.ns[i], "link", "set", self.veth[i], "up")
        for d in self.cg:
            os.makedirs(d, exist_ok=True)
        return self

    def start(self, node, args, service, cgroup=True, program=None):
        """A peer in node's netns (0 or 1), in node's cgroup unless cgroup is False; servers are
        waited for ('ready'). program: argv run instead of peer_xnode.py."""
        # Into the cgroup first: 'ip netns exec' mounts a sysfs of the namespace's own.
        join = f"echo $$ > {self.cg[node]}/cgroup.procs && " if cgroup else ""
        cmd = ["sh", "-c", join + f'exec ip netns exec {self.ns[node]} env '
               'OTEL_SERVICE_NAME="$0" "$@"', service] + (program or [sys.executable, PEER])
        p = subprocess.Popen(cmd + [str(a) for a in args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def start_server(self, node, args, service, cgroup=True):
        p = self.start(node, args, service, cgroup)
        line = p.stdout.readline()
        assert line.strip() == "ready", f"{service} did not start: {p.stderr.read()}"
        return p

    def run(self, node, args, service, cgroup=True):
        p = self.start(node, args, service, cgroup)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip().endswith("done"), \
            f"{service} {args} failed ({p.returncode}): {out} {err}"
        return out

    def stop_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        self.procs = []

    def teardown(self):
        self.stop_procs()
        for ns in self.ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for d in self.cg + [self.cg_top]:
            try:
                os.rmdir(d)
            except OSError:
                pass


@pytest.fixture
def nodes():
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, cgroups and BPF")
    if not shutil.which("ip"):
        pytest.skip("iproute2 missing: run 'sudo make deps'")
    if not cgroup2_root():
        pytest.skip("no cgroup v2 hierarchy mounted")
    n = Nodes()
    try:
        yield n.setup()
    finally:
        n.teardown()


def node_agents(agent, receiver, nodes, propagate):
    extra = ["--propagate"] if propagate else []
    return [agent(["--listen", "off", "--cgroup", nodes.cg[i]] + extra,
                  env={"OTEL_EXPORTER_OTLP_HEADERS": f"x-mt-node={i + 1}"}, receiver=receiver)
            for i in (0, 1)]


def chain_spans(receiver):
    """{node header: [span]} of the chain's services, per exporting agent."""
    out = collections.defaultdict(list)
    for p in receiver.trace_posts():
        node = p.headers.get("x-mt-node")
        for s in flatten_traces(p.decoded):
            if s["resource"].get("service.name") in ("svc-a", "svc-b", "svc-c", "svc-echo",
                                                     "svc-echo-client", "svc-redis"):
                out[node].append(s)
    return out


def run_chain(nodes):
    nodes.start_server(0, ["server", PORT_C], "svc-c")
    nodes.start_server(1, ["server", PORT_B, f"{nodes.addr[0]}:{PORT_C}"], "svc-b")
    nodes.run(0, ["client", f"{nodes.addr[1]}:{PORT_B}", N, "/r/"], "svc-a")


ROLES = {("/c/r/", "svc-b", "CLIENT"): "b_cli", ("/c/r/", "svc-c", "SERVER"): "c_srv",
         ("/r/", "svc-a", "CLIENT"): "a_cli", ("/r/", "svc-b", "SERVER"): "b_srv"}


def calls(spans):
    """{request index: {role: span}}, roles a_cli, b_srv, b_cli, c_srv, from the paths."""
    by = collections.defaultdict(dict)
    for s in spans:
        path = span_path(s) or ""
        prefix = "/c/r/" if path.startswith("/c/r/") else "/r/"
        role = ROLES.get((prefix, s["resource"].get("service.name"), s["kind"]))
        if not role or not path.startswith(prefix):
            continue
        i = int(path[len(prefix):])
        assert role not in by[i], f"two {role} spans for request {i}"
        by[i][role] = s
    return by


def wait_complete(receiver, timeout=30):
    def complete(r):
        by = calls(sum(chain_spans(r).values(), []))
        return len(by) == N and all(len(v) == 4 for v in by.values())
    receiver.wait_for(complete, timeout)


def test_traces_join_across_nodes(request, nodes, agent, receiver):
    ags = node_agents(agent, receiver, nodes, propagate=True)
    run_chain(nodes)
    wait_complete(receiver)
    stats = [a.stop() for a in ags]
    per_node = chain_spans(receiver)
    note = busy_note(stats[0]) + busy_note(stats[1])

    # The scope: each agent reported its own node's processes only.
    services = {n: {s["resource"]["service.name"] for s in v} for n, v in per_node.items()}
    assert services.get("1") == {"svc-a", "svc-c"}, f"node 1's agent exported {services}"
    assert services.get("2") == {"svc-b"}, f"node 2's agent exported {services}"

    by = calls(per_node["1"] + per_node["2"])
    assert len(by) == N, f"requests seen: {sorted(by)}{note}"
    joined = 0
    for i, c in sorted(by.items()):
        assert set(c) == {"a_cli", "b_srv", "b_cli", "c_srv"}, f"request {i}: {sorted(c)}{note}"
        traces = {s["trace_id"] for s in c.values()}
        if len(traces) == 1 and \
                c["b_srv"]["parent_span_id"] == c["a_cli"]["span_id"] and \
                c["b_cli"]["parent_span_id"] == c["b_srv"]["span_id"] and \
                c["c_srv"]["parent_span_id"] == c["b_cli"]["span_id"]:
            joined += 1
    prop = [stat(s, "kernel", "propagation", default={}) for s in stats]
    link = [stat(s, "user", "link", default={}) for s in stats]
    figure(request, f"cross-node chain A->B->C, {N} keep-alive requests: {joined}/{N} whole "
                    f"traces with every parent right; kernel node1 {prop[0]}, node2 {prop[1]}; "
                    f"linked_option node1 {link[0].get('linked_option')}, node2 "
                    f"{link[1].get('linked_option')}")
    assert joined == N, f"only {joined}/{N} requests formed one trace with the right parents; " \
                        f"kernel: {prop}; link: {link}{note}"
    assert link[1]["linked_option"] >= N and link[0]["linked_option"] >= N


def test_without_propagation_traces_stay_fragments(request, nodes, agent, receiver):
    ags = node_agents(agent, receiver, nodes, propagate=False)
    run_chain(nodes)
    wait_complete(receiver)
    stats = [a.stop() for a in ags]
    by = calls(sum(chain_spans(receiver).values(), []))
    assert len(by) == N, f"requests seen: {sorted(by)}"
    crossed = sum(1 for c in by.values()
                  if c["b_srv"]["trace_id"] == c["a_cli"]["trace_id"] or
                  c["c_srv"]["trace_id"] == c["b_cli"]["trace_id"])
    inside = sum(1 for c in by.values()
                 if c["b_cli"]["trace_id"] == c["b_srv"]["trace_id"] and
                 c["b_cli"]["parent_span_id"] == c["b_srv"]["span_id"])
    figure(request, f"control (no --propagate): {crossed}/{N} requests joined across nodes, "
                    f"{inside}/{N} joined inside node 2")
    assert crossed == 0, f"{crossed} requests joined across nodes without propagation"
    assert inside == N  # the in-process link still works: the fragments are per node
    assert stat(stats[0], "kernel", "propagation", "requests_out") == 0


def test_peer_without_agent_gets_exact_bytes(request, nodes, agent, receiver):
    ags = node_agents(agent, receiver, nodes, propagate=True)
    # The echo server is in node 2's netns but in no agent's cgroup: nothing parses the option.
    nodes.start_server(1, ["echo", PORT_ECHO], "svc-echo", cgroup=False)
    nodes.run(0, ["echo-client", f"{nodes.addr[1]}:{PORT_ECHO}", ECHO_BYTES], "svc-echo-client")
    stats = [a.stop() for a in ags]
    prop = [stat(s, "kernel", "propagation", default={}) for s in stats]
    figure(request, f"peer without agent: 3 x {ECHO_BYTES} B echoed byte-exact with the option "
                    f"on; node1 kernel {prop[0]}")
    assert prop[0]["options_written"] >= 3, f"no option was sent: {prop[0]}"
    assert prop[1]["options_parsed"] == 0, f"node 2's agent read an option: {prop[1]}"


def test_cgroup_flag_must_name_a_cgroup2_directory(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: the agent loads BPF before it runs")
    from mt_agent import run_cli
    r = run_cli(["--listen", "off", "--cgroup", str(tmp_path)])
    assert r.returncode != 0 and "not in a cgroup v2 file system" in r.stderr, r.stderr
    r = run_cli(["--listen", "off"], env={"MESHTRACE_CGROUP": str(tmp_path / "missing")})
    assert r.returncode != 0 and "not a directory" in r.stderr, r.stderr


def test_pipelined_requests_each_get_their_parent(request, nodes, agent, receiver):
    """A sends bursts of 3 GETs before reading (one write, or three): one option per burst, the
    other two requests' ids derived from it by offset on both nodes."""
    ags = node_agents(agent, receiver, nodes, propagate=True)
    nodes.start_server(1, ["server", PORT_B], "svc-b")
    nodes.run(0, ["pipeline", f"{nodes.addr[1]}:{PORT_B}", BURSTS, "/p/"], "svc-a")
    n = 3 * BURSTS

    def pairs(r):
        by = collections.defaultdict(dict)
        for s in sum(chain_spans(r).values(), []):
            path = span_path(s) or ""
            if not path.startswith("/p/"):
                continue
            by[int(path[3:])][s["kind"]] = s
        return by
    receiver.wait_for(lambda r: len(pairs(r)) == n and
                      all(len(v) == 2 for v in pairs(r).values()), 30)
    stats = [a.stop() for a in ags]
    by = pairs(receiver)
    joined = sum(1 for c in by.values()
                 if c["SERVER"]["trace_id"] == c["CLIENT"]["trace_id"] and
                 c["SERVER"]["parent_span_id"] == c["CLIENT"]["span_id"])
    traces = {c["CLIENT"]["trace_id"] for c in by.values()}
    prop = [stat(s, "kernel", "propagation", default={}) for s in stats]
    link = [stat(s, "user", "link", default={}) for s in stats]
    figure(request, f"pipelined: {BURSTS} bursts of 3 requests A -> B: {joined}/{n} server spans "
                    f"with their own request's parent, {len(traces)} traces; node1 kernel "
                    f"{prop[0]}; node2 kernel {prop[1]}; option_derived node1 "
                    f"{link[0].get('option_derived')} node2 {link[1].get('option_derived')}, "
                    f"past_bound node2 {link[1].get('option_past_bound')}")
    assert len(by) == n and joined == n, f"{joined}/{n} joined; kernel {prop}; link {link}"
    assert len(traces) == n, f"{len(traces)} traces for {n} requests (one each expected)"
    assert prop[0]["options_written"] < n  # one option per burst (or per write), not per request


def test_redis_call_from_b_joins_across_nodes(request, nodes, agent, receiver):
    """B answers each GET after a Redis pipeline (SET + GET in one write) to node 1: the second
    command's ids are derived, in the trace of B's request."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server missing: run 'sudo make deps'")
    ags = node_agents(agent, receiver, nodes, propagate=True)
    redis = nodes.start(0, ["--port", PORT_REDIS, "--bind", nodes.addr[0], "--save", "",
                            "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp",
                            "--protected-mode", "no"],
                        "svc-redis", program=[REDIS_SERVER])
    for line in redis.stdout:
        if "Ready to accept connections" in line:
            break
    nodes.start_server(1, ["server", PORT_B, "-", f"{nodes.addr[0]}:{PORT_REDIS}"], "svc-b")
    nodes.run(0, ["client", f"{nodes.addr[1]}:{PORT_B}", N, "/r/"], "svc-a")

    def spans(r):
        return sum(chain_spans(r).values(), [])

    def complete(r):
        sp = spans(r)
        return sum(1 for s in sp if s["resource"].get("service.name") == "svc-redis") >= 2 * N \
            and len(calls(sp)) == N
    receiver.wait_for(complete, 30)
    stats = [a.stop() for a in ags]
    sp = spans(receiver)
    by_trace = collections.defaultdict(list)
    for s in sp:
        by_trace[s["trace_id"]].append(s)
    joined = 0
    for i, c in sorted(calls(sp).items()):
        if set(c) != {"a_cli", "b_srv"}:
            continue
        t = by_trace[c["a_cli"]["trace_id"]]
        rcli = [s for s in t if s["resource"]["service.name"] == "svc-b" and
                s["kind"] == "CLIENT"]
        rsrv = [s for s in t if s["resource"]["service.name"] == "svc-redis"]
        if c["b_srv"]["trace_id"] == c["a_cli"]["trace_id"] and \
                c["b_srv"]["parent_span_id"] == c["a_cli"]["span_id"] and \
                len(rcli) == 2 and len(rsrv) == 2 and \
                all(s["parent_span_id"] == c["b_srv"]["span_id"] for s in rcli) and \
                {s["parent_span_id"] for s in rsrv} == {s["span_id"] for s in rcli}:
            joined += 1
    prop = [stat(s, "kernel", "propagation", default={}) for s in stats]
    link = [stat(s, "user", "link", default={}) for s in stats]
    figure(request, f"Redis pipeline from B (SET+GET per request) to node 1: {joined}/{N} requests "
                    f"one trace A -> B -> 2 x Redis with every parent right; node1 option_derived "
                    f"{link[0].get('option_derived')}, kernel node2 {prop[1]}")
    assert joined == N, f"{joined}/{N} joined; kernel {prop}; link {link}"


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.bench
def test_cost_per_request(request, nodes, agent, receiver):
    """Cost of propagation: the chain A -> B -> C, COST_N keep-alive requests, without agents,
    with both agents scoped, and scoped + --propagate; alternated rounds in one run (the order
    rotates), medians reported. Two measures: A's wall time per request, and CPU time per
    request of A, B, C and both agents (where the kernel programs and the agents' work land;
    steadier than wall time on a shared VM). A figure: no threshold is asserted."""
    hz = os.sysconf("SC_CLK_TCK")
    servers = [nodes.start_server(0, ["server", PORT_C], "svc-c"),
               nodes.start_server(1, ["server", PORT_B, f"{nodes.addr[0]}:{PORT_C}"], "svc-b")]
    wall, cpu = collections.defaultdict(list), collections.defaultdict(list)
    for rnd in range(COST_ROUNDS):
        modes = ["no agent", "scoped", "scoped + propagate"]
        for mode in modes[rnd % 3:] + modes[:rnd % 3]:  # each mode first in some round
            ags = [] if mode == "no agent" else \
                node_agents(agent, receiver, nodes, propagate=mode != "scoped")
            pids = [p.pid for p in servers] + [a.pid for a in ags]
            before = sum(cpu_ticks(p) for p in pids)
            # New connections each time: the sock_ops program sees only connections it saw open.
            out = nodes.run(0, ["client", f"{nodes.addr[1]}:{PORT_B}", COST_N, f"/k{rnd}/"],
                            "svc-a")
            if ags:  # the agents' share: what they took to handle this round's events
                time.sleep(0.5)
            used = (sum(cpu_ticks(p) for p in pids) - before) * 1e6 / hz / COST_N
            wall[mode].append(float(out.split("us_per_request")[1].split()[0]))
            cpu[mode].append(used + float(out.split("cpu_us_per_request")[1].split()[0]))
            for a in ags:
                a.stop()

    def med(v):
        return sorted(v)[len(v) // 2]
    mw, mc = {m: med(v) for m, v in wall.items()}, {m: med(v) for m, v in cpu.items()}
    p, s_, n = "scoped + propagate", "scoped", "no agent"
    figure(request, f"cost per request, chain A -> B -> C across the veth, {COST_N} keep-alive "
                    f"requests, median of {COST_ROUNDS} rotated rounds: CPU "
                    + ", ".join(f"{m} {v:.1f} us" for m, v in mc.items())
                    + f" (propagation {mc[p] - mc[s_]:+.1f} us/req over scoped, "
                      f"{mc[p] - mc[n]:+.1f} over none); wall "
                    + ", ".join(f"{m} {v:.1f} us" for m, v in mw.items())
                    + f"; every round CPU {dict(cpu)} wall {dict(wall)}")
