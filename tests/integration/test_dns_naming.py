# SPDX-License-Identifier: Apache-2.0
"""Issue 3, DNS naming: a peer the node cannot see is named by the DNS answer its client got.

Everything runs in a network namespace the test creates: a resolver of the test's own on
127.0.0.53:53 (the namespace's /etc/resolv.conf points at it, through ip-netns's /etc/netns/),
a server on 10.77.0.2:8080, and a virtual address 10.77.0.10:80 that nftables DNATs to it, as a
load balancer or a Kubernetes Service would. A client looks the name up with the C library
(getaddrinfo) and calls it.

With DNAT alone the server sees the client's own address and port, and the linker pairs the
call across the translation (TCP sequence numbers are untouched): the edge goes to the server's
service, a name better than any DNS answer. With the source translated too (SNAT, as a
masquerading node does), nothing on the node can pair the two sides: the address the client
connected to belongs to no process, so its edge is named by the DNS name, and the server sees
the caller as "user", as the servicegraph connector names an unpaired caller."""

import os
import shutil
import subprocess
import sys

import pytest

from mt_agent import stat
from mt_graph import edges_touching, tag, wait_graph
from mt_otlp import free_port
from mt_report import figure

HERE = os.path.dirname(os.path.abspath(__file__))
VIP, REAL, PORT, COUNT = "10.77.0.10", "10.77.0.2", 8080, 3
SNAT_SRC = "10.77.0.3"


def sh(*args, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=20, **kw)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr.strip()}"
    return r.stdout


class Netns:
    def __init__(self, name):
        self.name = name
        self.etc = f"/etc/netns/{name}"
        self.procs = []

    def create(self, snat=False):
        sh("ip", "netns", "add", self.name)
        ns = ["ip", "-n", self.name]
        sh(*ns, "link", "set", "lo", "up")
        sh(*ns, "addr", "add", f"{REAL}/32", "dev", "lo")
        sh(*ns, "addr", "add", f"{SNAT_SRC}/32", "dev", "lo")
        sh(*ns, "route", "add", f"{VIP}/32", "dev", "lo", "src", REAL)
        post = (f" chain post {{\n  type nat hook postrouting priority 100;\n"
                f"  ip daddr {REAL} tcp dport {PORT} snat to {SNAT_SRC}\n }}\n") if snat else ""
        sh("ip", "netns", "exec", self.name, "nft", "-f", "-",
           input=f"table ip meshtrace_test {{\n chain out {{\n"
                 f"  type nat hook output priority -100;\n"
                 f"  ip daddr {VIP} tcp dport 80 dnat to {REAL}:{PORT}\n }}\n{post}}}\n")
        os.makedirs(self.etc, exist_ok=True)
        with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.53\noptions timeout:2 attempts:2\n")
        return self

    def popen(self, args, env):
        p = subprocess.Popen(["ip", "netns", "exec", self.name] + args, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def destroy(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=20)
        shutil.rmtree(self.etc, ignore_errors=True)


def env_with(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("nat", ["dnat+snat", "dnat"])
def test_dns_name_names_the_edge(request, agent, nat):
    for tool in ("ip", "nft"):
        assert shutil.which(tool), f"{tool} missing: run 'sudo make deps' (iproute2, nftables)"
    t = tag()
    name = f"shop-{t}.meshtrace.test"
    client_svc, server_svc = f"dnsclient-{t}", f"shop-{t}"
    ns = Netns(f"mt-dns-{t}")
    request.addfinalizer(ns.destroy)
    ns.create(snat=nat == "dnat+snat")
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"])

    dns = ns.popen([sys.executable, os.path.join(HERE, "peer_dns.py"), "127.0.0.53", "53", name,
                    VIP, "60"], env_with())
    assert dns.stdout.readline().strip() == "ready", dns.stderr.read()
    server = ns.popen([sys.executable, "-m", "http.server", str(PORT), "--bind", REAL],
                      env_with(OTEL_SERVICE_NAME=server_svc))
    sh("ip", "netns", "exec", ns.name, sys.executable, "-c",
       "import socket,time\nfor _ in range(100):\n try:\n"
       f"  socket.create_connection(('{REAL}', {PORT}), 0.5).close(); break\n"
       " except OSError: time.sleep(0.05)\n")
    client = sh("ip", "netns", "exec", ns.name, sys.executable,
                os.path.join(HERE, "peer_dns_client.py"), name, "80", str(COUNT),
                env=env_with(OTEL_SERVICE_NAME=client_svc)).split()
    assert client == [VIP] + ["200"] * COUNT, client

    target = name if nat == "dnat+snat" else server_svc

    def done(graph):
        edges = edges_touching(graph, {client_svc, server_svc})
        e = edges.get((client_svc, target, "http"))
        return e is not None and e["requests"] == COUNT
    graph = wait_graph(port, done)
    edges = edges_touching(graph, {client_svc, server_svc})
    stats = ag.stop()
    link = stat(stats, "user", "link", default={})
    figure(request, f"DNS naming ({nat}): edges {sorted(edges)}; peers {stat(stats, 'peers')}; "
                    f"linked_dnat {link.get('linked_dnat')}, "
                    f"dnat_snat_unpaired {link.get('dnat_snat_unpaired')}")

    e = edges.get((client_svc, target, "http"))
    assert e, f"no edge {client_svc} -> {target}: {sorted(edges)}"
    assert (e["requests"], e["failed"], e["connects"]) == (COUNT, 0, COUNT), e
    kinds = {n["name"]: n["kind"] for n in graph["nodes"]}
    # Lookups are calls too (DNS client spans): each process's edge to the resolver, by
    # protocol "dns", beside the HTTP edges.
    assert any(k[0] == client_svc and k[2] == "dns" for k in edges), sorted(edges)
    if nat == "dnat":
        # Paired across the DNAT: one edge, both sides' latencies, no "user" caller.
        assert link["linked_dnat"] >= COUNT, link
        assert e["server_p50_ms"] > 0, e
        assert kinds[server_svc] == "service" and name not in kinds, kinds
        assert {k for k in edges if k[2] != "dns"} == {(client_svc, server_svc, "http")}, \
            sorted(edges)
    else:
        assert link["dnat_snat_unpaired"] >= COUNT, link
        assert e["connection_type"] == "virtual_node", e
        assert e["p50_ms"] > 0 and e["server_p50_ms"] == 0, e  # only the client side is paired
        assert kinds[name] == "external" and kinds[client_svc] == "service", kinds
        e = edges.get(("user", server_svc, "http"))
        assert e and e["requests"] == COUNT and e["failed"] == 0, sorted(edges)
        assert {k for k in edges if k[2] != "dns"} == {(client_svc, name, "http"),
                                                        ("user", server_svc, "http")}, \
            sorted(edges)
    assert stat(stats, "peers", "dns_names") >= 1, stats
    assert stat(stats, "peers", "dns_kernel_events") >= 2, stats
