# SPDX-License-Identifier: Apache-2.0
"""Issue 16, calls through a virtual address: a client that dials a Service VIP which nftables
DNATs to a server on this node is paired with that server's span, the graph's edge names the
real server, and the VIP stays as an attribute (meshtrace.vip.*, the edge's "vip").

Three network namespaces play one Kubernetes node: two pods (client, server), each behind a
veth pair, and the node's own namespace that routes between them and translates, as kube-proxy
does, VIP:80 -> server:PORT in its prerouting nat chain. The server sees the client's own
address and port (DNAT without SNAT). A real curl calls the VIP N times on one keep-alive
connection and N times on new connections; a direct call to the server is the control. The same
again from a client in the node's own namespace (host network) through an iptables OUTPUT DNAT
rule, kube-proxy's iptables mode. With masquerade added (SNAT), the server sees the node's
address: those calls stay unpaired, and counted."""

import collections
import os
import shutil
import subprocess
import sys

import pytest

from mt_agent import busy_note, stat
from mt_graph import get_graph, wait_graph
from mt_otlp import flatten_traces, free_port
from mt_report import figure
from mt_spans import span_path

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer_xnode.py")
N = 20
PORT = 18090


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True, text=True)


class Node:
    """The node's netns (router + nat) and two pod netns, each joined to it by a veth pair."""

    def __init__(self):
        tag = os.getpid() % 200 + 20
        self.tag = tag
        self.node = f"mtvip{tag}n"
        self.pods = [f"mtvip{tag}c", f"mtvip{tag}s"]
        self.gw = [f"10.234.{tag}.1", f"10.235.{tag}.1"]
        self.addr = [f"10.234.{tag}.2", f"10.235.{tag}.2"]
        self.vip = f"10.236.{tag}.10"
        self.procs = []
        # Per-test names: other tests' spans on this kernel are not ours.
        self.client_svc = f"vip-client-{os.getpid()}"
        self.server_svc = f"vip-server-{os.getpid()}"

    def setup(self):
        for ns in [self.node] + self.pods:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for i, pod in enumerate(self.pods):
            host_if, pod_if = f"mtv{self.tag}h{i}", f"mtv{self.tag}p{i}"
            sh("ip", "link", "add", host_if, "netns", self.node, "type", "veth",
               "peer", "name", pod_if, "netns", pod)
            sh("ip", "-n", self.node, "addr", "add", f"{self.gw[i]}/24", "dev", host_if)
            sh("ip", "-n", self.node, "link", "set", host_if, "up")
            sh("ip", "-n", pod, "addr", "add", f"{self.addr[i]}/24", "dev", pod_if)
            sh("ip", "-n", pod, "link", "set", pod_if, "up")
            sh("ip", "-n", pod, "route", "add", "default", "via", self.gw[i])
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        rules = (f"table ip mtvip {{\n"
                 f" chain pre {{ type nat hook prerouting priority dstnat; policy accept;\n"
                 f"  ip daddr {self.vip} tcp dport 80 dnat to {self.addr[1]}:{PORT}; }}\n"
                 f" chain post {{ type nat hook postrouting priority srcnat; policy accept; }}\n"
                 f"}}\n")
        subprocess.run(["ip", "netns", "exec", self.node, "nft", "-f", "-"], input=rules,
                       check=True, capture_output=True, text=True)
        return self

    def iptables_output(self):
        """A host-network client's path: routed toward the pods, translated in nat OUTPUT."""
        sh("ip", "-n", self.node, "route", "add", f"{self.vip}/32", "dev", f"mtv{self.tag}h1")
        sh("ip", "netns", "exec", self.node, "iptables", "-t", "nat", "-A", "OUTPUT", "-d",
           self.vip, "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination",
           f"{self.addr[1]}:{PORT}")

    def masquerade(self):
        sh("ip", "netns", "exec", self.node, "nft", "add", "rule", "ip", "mtvip", "post",
           "ip", "daddr", self.addr[1], "masquerade")

    def server(self):
        cmd = ["ip", "netns", "exec", self.pods[1], "env", f"OTEL_SERVICE_NAME={self.server_svc}",
               sys.executable, PEER, "server", str(PORT)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        assert line.strip() == "ready", f"server did not start: {p.stderr.read()}"

    def curl(self, urls, ns=None):
        """One curl process for all @urls: one keep-alive connection."""
        cmd = ["ip", "netns", "exec", ns or self.pods[0], "env", f"OTEL_SERVICE_NAME={self.client_svc}",
               "curl", "-sS", "--fail", "-o", "/dev/null", "--max-time", "10"] + urls
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"curl {urls[0]} ...: {r.returncode} {r.stderr}"

    def teardown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        for ns in [self.node] + self.pods:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def node():
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, nftables and BPF")
    for tool in ("ip", "nft", "curl"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} missing: run 'sudo make deps' (iproute2, nftables, curl)")
    n = Node()
    try:
        yield n.setup()
    finally:
        n.teardown()


def our_spans(receiver, node):
    """{path: {kind: [span]}} of the test's client and server."""
    by = collections.defaultdict(lambda: collections.defaultdict(list))
    for p in receiver.trace_posts():
        for s in flatten_traces(p.decoded):
            if s["resource"].get("service.name") in (node.client_svc, node.server_svc):
                by[span_path(s) or ""][s["kind"]].append(s)
    return by


def calls(node, host, prefix, ns=None):
    """N calls on one keep-alive connection, then N on a new connection each."""
    node.curl([f"http://{host}/{prefix}/k{i}" for i in range(N)], ns)
    for i in range(N):
        node.curl([f"http://{host}/{prefix}/n{i}"], ns)
    return [f"/{prefix}/k{i}" for i in range(N)] + [f"/{prefix}/n{i}" for i in range(N)]


def wait_spans(receiver, node, paths, timeout=30):
    def complete(r):
        by = our_spans(r, node)
        return all(by[p]["CLIENT"] and by[p]["SERVER"] for p in paths)
    try:
        receiver.wait_for(complete, timeout)
    except AssertionError:
        pass  # the assertions below say what is missing
    return our_spans(receiver, node)


def check_pairs(by, paths, note):
    """(paired, client spans, server spans) over @paths; each path one span of each kind."""
    paired = 0
    for p in paths:
        cli, srv = by[p]["CLIENT"], by[p]["SERVER"]
        assert len(cli) == 1 and len(srv) == 1, f"{p}: {len(cli)} client and {len(srv)} " \
                                                f"server spans{note}"
        if srv[0]["parent_span_id"] == cli[0]["span_id"] and \
                srv[0]["trace_id"] == cli[0]["trace_id"]:
            paired += 1
    return paired


def graph_edges(graph, node):
    return [e for e in graph["edges"] if e["client"] == node.client_svc]


@pytest.mark.parametrize("via", ["nft-prerouting", "iptables-output"])
def test_vip_calls_pair_with_the_real_server(request, node, agent, receiver, via):
    if via == "iptables-output":
        if not shutil.which("iptables"):
            pytest.skip("iptables missing: run 'sudo make deps'")
        node.iptables_output()
    host_net = via == "iptables-output"
    client_ns = node.node if host_net else None
    client_addr = node.gw[1] if host_net else node.addr[0]
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"], receiver=receiver)
    node.server()
    vip_paths = calls(node, node.vip, "vip", client_ns)
    direct_paths = calls(node, f"{node.addr[1]}:{PORT}", "direct", client_ns)
    by = wait_spans(receiver, node, vip_paths + direct_paths)
    graph = wait_graph(port, lambda g: sum(e["requests"] for e in graph_edges(g, node))
                       >= 4 * N)
    stats = ag.stop()
    link = stat(stats, "user", "link", default={})
    note = f"; link {link}" + busy_note(stats)

    paired = check_pairs(by, vip_paths, note)
    direct = check_pairs(by, direct_paths, note)
    for p in vip_paths:
        cli, srv = by[p]["CLIENT"][0], by[p]["SERVER"][0]
        assert cli["attributes"].get("meshtrace.vip.address") == node.vip, f"{p}: {cli}"
        assert cli["attributes"].get("meshtrace.vip.port") == 80, f"{p}: {cli}"
        assert cli["attributes"].get("network.peer.address") == node.addr[1], f"{p}: {cli}"
        assert cli["attributes"].get("network.peer.port") == PORT, f"{p}: {cli}"
        assert cli["attributes"].get("server.address") == node.vip, f"{p}: {cli}"
        assert srv["attributes"].get("meshtrace.vip.address") == node.vip, f"{p}: {srv}"
        assert srv["attributes"].get("client.address") == client_addr, f"{p}: {srv}"
    for p in direct_paths:
        for s in (by[p]["CLIENT"][0], by[p]["SERVER"][0]):
            assert "meshtrace.vip.address" not in s["attributes"], f"{p}: {s}"

    edges = graph_edges(graph, node)
    figure(request, f"DNAT VIP -> server (3 netns, {via}, curl): {paired}/{2 * N} "
                    f"VIP calls paired ({N} keep-alive, {N} new connections), direct control "
                    f"{direct}/{2 * N}; linked_dnat {link.get('linked_dnat')}, dnat_ambiguous "
                    f"{link.get('dnat_ambiguous')}; spans after their peer closed "
                    f"{stat(stats, 'graph', 'late_peer_spans', default=None)}; edges "
                    f"{[(e['server'], e['requests'], e.get('vip')) for e in edges]}")
    assert paired == 2 * N, f"{paired}/{2 * N} VIP calls paired{note}"
    assert direct == 2 * N, f"{direct}/{2 * N} direct calls paired{note}"
    assert link["linked_dnat"] >= 2 * N and link["dnat_ambiguous"] == 0, link
    # One edge, to the real server, counting every call once; none to the VIP.
    assert [e["server"] for e in edges] == [node.server_svc], f"edges: {edges}"
    # On failure, every edge of the server and the graph's own counts say where a call went.
    server_edges = [(e["client"], e["protocol"], e["requests"], e.get("connects"))
                    for e in graph["edges"] if e["server"] == node.server_svc]
    assert edges[0]["requests"] == 4 * N, f"edges: {edges}; all edges to the server " \
                                          f"{server_edges}; graph {stat(stats, 'graph')}"
    assert edges[0].get("vip") == f"{node.vip}:80", f"edges: {edges}"
    assert not [e for e in graph["edges"] if node.vip in e["server"]], graph["edges"]


def test_vip_with_masquerade_stays_unpaired_and_counted(request, node, agent, receiver):
    """SNAT at the node (masquerade): the server sees the node's address and a port the client
    never had; nothing on the server's side names the client, so nothing is paired or guessed:
    the calls are counted in dnat_snat_unpaired and the client's edge names the VIP."""
    node.masquerade()
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"], receiver=receiver)
    node.server()
    paths = calls(node, node.vip, "snat")
    by = wait_spans(receiver, node, paths)
    graph = wait_graph(port, lambda g: sum(e["requests"] for e in graph_edges(g, node))
                       >= 2 * N)
    stats = ag.stop()
    link = stat(stats, "user", "link", default={})
    note = f"; link {link}" + busy_note(stats)
    paired = check_pairs(by, paths, note)
    for p in paths:
        assert by[p]["SERVER"][0]["attributes"].get("client.address") == node.gw[1]
        assert "meshtrace.vip.address" not in by[p]["CLIENT"][0]["attributes"]
    edges = [(e["client"], e["server"], e["requests"]) for e in graph["edges"]
             if node.client_svc in (e["client"], e["server"]) or
             node.server_svc in (e["client"], e["server"])]
    figure(request, f"DNAT + masquerade: {paired}/{2 * N} paired (expected 0), "
                    f"dnat_snat_unpaired {link.get('dnat_snat_unpaired')}; edges {edges}")
    assert paired == 0
    assert link["dnat_snat_unpaired"] >= 2 * N, link
    assert link["linked_dnat"] == 0, link
    # The client's edge names what it dialled: nothing told the real server.
    assert [e for e in edges if e[0] == node.client_svc and node.vip in e[1]], edges


REMAP_CLIENT = r"""
import socket, sys
vip, server, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(int(sys.argv[4])):
    # One source port toward the VIP, then straight to the server it was translated to.
    for name, dst in (("v", (vip, 80)), ("d", (server, int(sys.argv[5])))):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", first + i))
        s.connect(dst)
        s.sendall(f"GET /remap/{name}{i} HTTP/1.1\r\nHost: {dst[0]}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200"), data[:80]
        print(name, i, s.getsockname()[1], flush=True)
        s.close()
"""


def test_port_remapped_by_conntrack_pairs(request, node, agent, receiver):
    """A source port reused toward the VIP and then straight to the server: conntrack still
    holds the first call's translated entry, so it gives the second another source port (a
    clash remap, as on any node that translates). The server sees a port the client's socket
    never had; the TCP sequence number still names the call, and it is paired."""
    if not shutil.which("iptables"):
        pytest.skip("iptables missing: run 'sudo make deps'")
    node.iptables_output()
    n = 5
    first = 45000 + os.getpid() % 1000 * 10
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"], receiver=receiver)
    node.server()
    r = subprocess.run(["ip", "netns", "exec", node.node, "env",
                        f"OTEL_SERVICE_NAME={node.client_svc}", sys.executable, "-c",
                        REMAP_CLIENT, node.vip, node.addr[1], str(first), str(n), str(PORT)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    paths = [f"/remap/{k}{i}" for i in range(n) for k in "vd"]
    by = wait_spans(receiver, node, paths)
    graph = wait_graph(port, lambda g: sum(e["requests"] for e in g["edges"]
                                           if e["server"] == node.server_svc) >= 2 * n)
    stats = ag.stop()
    link = stat(stats, "user", "link", default={})
    note = f"; link {link}" + busy_note(stats)
    paired = check_pairs(by, paths, note)
    remapped = [by[f"/remap/d{i}"]["SERVER"][0]["attributes"].get("network.peer.port")
                for i in range(n)]
    figure(request, f"conntrack source-port remap (port reused VIP then direct, {n} times): "
                    f"{paired}/{2 * n} paired; server saw ports {remapped} for client ports "
                    f"{list(range(first, first + n))}; linked_port_remapped "
                    f"{link.get('linked_port_remapped')}, linked_dnat {link.get('linked_dnat')}")
    assert all(p != first + i for i, p in enumerate(remapped)), \
        f"conntrack did not remap: {remapped}"
    assert paired == 2 * n, f"{paired}/{2 * n} paired{note}"
    assert link["linked_port_remapped"] >= n, link
    # The server span learns the client's own port: the graph names the client by its socket
    # (not "user" for a caller it cannot see), every call and connect counted once.
    server_edges = [(e["client"], e["requests"], e.get("connects"), e.get("vip"))
                    for e in graph["edges"] if e["server"] == node.server_svc]
    assert [(c, r, k) for c, r, k, _ in server_edges] == [(node.client_svc, 2 * n, 2 * n)], \
        f"edges to the server: {server_edges}"
    for i in range(n):
        cli = by[f"/remap/d{i}"]["CLIENT"][0]
        assert "meshtrace.vip.address" not in cli["attributes"], cli
        assert by[f"/remap/v{i}"]["CLIENT"][0]["attributes"].get("meshtrace.vip.address") \
            == node.vip
