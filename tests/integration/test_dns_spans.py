# SPDX-License-Identifier: Apache-2.0
"""Issue 5, DNS: every lookup a client makes becomes one CLIENT span with its question, type,
response code and answer count.

In a network namespace of the test's own (test_dns_naming.Netns): the test resolver
(peer_dns.py) on 127.0.0.53:53 logs every answer it sends; a client resolves names with the C
library (getaddrinfo, as any program would): A and AAAA of a name that exists (the AAAA has no
record), A of a name that does not (NXDOMAIN), and both families at once (glibc sends the two
queries with one sendmmsg, whose bytes the kernel does not copy: those spans are paired by
socket). Names are absolute ("name.") so no search domain adds queries. The spans must be
exactly the answers the resolver logged, attribute for attribute, in JSONL and over OTLP."""

import collections
import os
import shutil
import subprocess
import sys

from mt_agent import busy_note, read_jsonl, stat
from mt_graph import tag
from mt_otlp import free_port
from mt_report import figure
from test_dns_naming import Netns, env_with, sh

HERE = os.path.dirname(os.path.abspath(__file__))
VIP = "10.77.0.10"
TYPES = {1: "A", 28: "AAAA"}
RCODES = {0: "NOERROR", 3: "NXDOMAIN"}

CLIENT = """
import os, socket, sys, time
print(os.getpid(), flush=True)
for name, fam in [(sys.argv[1], socket.AF_INET), (sys.argv[1], socket.AF_INET6),
                  (sys.argv[2], socket.AF_INET), (sys.argv[1], socket.AF_INET),
                  (sys.argv[1], socket.AF_UNSPEC)]:
    try:
        r = socket.getaddrinfo(name + ".", 80, fam, socket.SOCK_STREAM)
        print(name, fam, r[0][4][0], flush=True)
    except socket.gaierror as e:
        print(name, fam, "error", e.errno, flush=True)
time.sleep(1)  # the agent names a process from /proc while it lives
"""


def dns_spans(spans, pid):
    return [s for s in spans if s["kind"] == "CLIENT" and s["resource"].get("process.pid") == pid
            and s["attributes"].get("dns.question.name") is not None]


def key(s):
    at = s["attributes"]
    return (at["dns.question.name"], at.get("dns.question.type"), at.get("dns.response_code"),
            at.get("dns.answer_count"))


def test_dns_client_spans(request, agent, receiver, tmp_path):
    for tool in ("ip", "nft"):
        assert shutil.which(tool), f"{tool} missing: run 'sudo make deps' (iproute2, nftables)"
    t = tag()
    name, missing, svc = f"api-{t}.meshtrace.test", f"gone-{t}.meshtrace.test", f"dnsspans-{t}"
    ns = Netns(f"mt-dnss-{t}").create()
    request.addfinalizer(ns.destroy)
    log = tmp_path / "resolver.log"
    jsonl = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl), "--listen", "off"],
               env={"OTEL_BSP_MAX_QUEUE_SIZE": "262144"}, receiver=receiver)

    dns = ns.popen([sys.executable, os.path.join(HERE, "peer_dns.py"), "127.0.0.53", "53", name,
                    VIP, "60", str(log)], env_with())
    assert dns.stdout.readline().strip() == "ready", dns.stderr.read()
    out = sh("ip", "netns", "exec", ns.name, sys.executable, "-c", CLIENT, name, missing,
             env=env_with(OTEL_SERVICE_NAME=svc)).split("\n")
    pid = int(out[0])
    stats = ag.stop()

    answered = collections.Counter()
    with open(log) as f:
        for line in f:
            q, qtype, rcode, ancount = line.split()
            answered[(q, TYPES.get(int(qtype), qtype), RCODES.get(int(rcode), rcode),
                      int(ancount))] += 1
    # What the client asked for is there (glibc may add nothing else here: absolute names).
    for want in [(name, "A", "NOERROR", 1), (name, "AAAA", "NOERROR", 0),
                 (missing, "A", "NXDOMAIN", 0)]:
        assert answered[want] >= 1, (want, answered, out)
    assert answered[(name, "A", "NOERROR", 1)] == 3, answered

    spans = dns_spans(read_jsonl(jsonl), pid)
    got = collections.Counter(key(s) for s in spans)
    figure(request, f"DNS spans: expected {sum(answered.values())} (resolver answers), "
                    f"exported {len(spans)} (JSONL); dns_spans stats {stat(stats, 'dns_spans')}")
    assert got == answered, f"spans {got} != answers {answered}; stats " \
                            f"{stat(stats, 'dns_spans')}{busy_note(stats)}"
    for s in spans:
        at = s["attributes"]
        assert s["name"] == f"DNS {at['dns.question.type']}", s
        assert s["resource"].get("service.name") == svc, s
        assert s["status"] == "UNSET", s  # NXDOMAIN is an answer, not a failure
        assert "error.type" not in at, s
        assert at["server.address"] == "127.0.0.53" and at["server.port"] == 53, s
        assert at["network.transport"] == "udp", s
        assert s["end_unix_nano"] >= s["start_unix_nano"], s
    assert stat(stats, "dns_spans", "unanswered") == 0, stats
    assert stat(stats, "dns_spans", "evicted") == 0, stats

    # The same spans over OTLP, attribute for attribute.
    if not busy_note(stats):
        otlp = {s["span_id"]: s for s in dns_spans(receiver.spans(), pid)}
        assert set(otlp) == {s["span_id"] for s in spans}, (len(otlp), len(spans))
        for s in spans:
            assert otlp[s["span_id"]]["attributes"] == s["attributes"], (otlp[s["span_id"]], s)


TCP_CLIENT = r"""
import socket, struct, sys
def q(qid, name, qtype):
    body = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    body += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    body += struct.pack("!HH", qtype, 1)
    return struct.pack("!H", len(body)) + body
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
# Two queries pipelined in one write, then a third: RFC 7766 keeps the connection open.
s.sendall(q(1, sys.argv[2], 1) + q(2, sys.argv[2], 28))
s.sendall(q(3, sys.argv[3], 1))
got = 0
buf = b""
while got < 3:
    part = s.recv(4096)
    if not part:
        break
    buf += part
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
        buf = buf[2 + struct.unpack("!H", buf[:2])[0]:]
        got += 1
print(got)
"""


def test_dns_over_tcp_spans(request, agent, tmp_path):
    """Issue 5: DNS over TCP detected from the bytes alone (any port), both sides traced."""
    t = tag()
    name, missing = f"tcp-{t}.meshtrace.test", f"nope-{t}.meshtrace.test"
    jsonl = tmp_path / "spans.jsonl"
    port = free_port()
    ag = agent(["--jsonl", str(jsonl), "--listen", "off"])
    dns = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_dns.py"), "127.0.0.1",
                            str(port), name, VIP, "60"], env=env_with(DNS_TCP="1"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    request.addfinalizer(dns.kill)
    assert dns.stdout.readline().strip() == "ready", dns.stderr.read()
    out = subprocess.run([sys.executable, "-c", TCP_CLIENT, str(port), name, missing],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "3", out
    stats = ag.stop()
    spans = [s for s in read_jsonl(jsonl) if s["attributes"].get("dns.question.name") in
             (name, missing) and s["attributes"].get("network.transport") == "tcp"]
    by = collections.Counter((s["kind"], s["attributes"]["dns.question.name"],
                              s["attributes"]["dns.question.type"],
                              s["attributes"]["dns.response_code"]) for s in spans)
    figure(request, f"DNS over TCP: 3 queries, spans {dict(by)}")
    want = collections.Counter()
    for kind in ("CLIENT", "SERVER"):
        want[(kind, name, "A", "NOERROR")] += 1
        want[(kind, name, "AAAA", "NOERROR")] += 1
        want[(kind, missing, "A", "NXDOMAIN")] += 1
    assert by == want, f"{by} != {want}{busy_note(stats)}"
    for s in spans:
        assert s["name"] == f"DNS {s['attributes']['dns.question.type']}", s
