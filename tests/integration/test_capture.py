# SPDX-License-Identifier: Apache-2.0
"""What the kernel side picks up: nothing from non-TCP I/O, connections that predate the agent
from their first I/O after it, and a W3C traceparent on the wire."""

import os
import subprocess
import sys
import time

from mt_agent import busy_note, stat
from mt_otlp import free_port
from mt_peers import HERE, CurlRun
from mt_report import figure
from mt_spans import a, dump, select, span_path

ROUNDS = 4000  # x13 data syscalls in peer_file_io.py


def data_events(agent_, after=None, timeout=0):
    """kernel.data_events from the newest periodic stats line (waiting up to timeout s for one
    newer than `after`), or None when the agent prints none."""
    deadline = time.monotonic() + timeout
    while True:
        newer = [(t, s) for t, s in agent_.periodic_stats if after is None or t > after]
        if newer and stat(newer[-1][1], "kernel", "data_events") is not None:
            return newer[-1][0], stat(newer[-1][1], "kernel", "data_events")
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def test_no_file_io_events(request, tmp_path, receiver, agent):
    ag = agent(["--stats-interval", "1"], receiver=receiver)
    before = data_events(ag, timeout=2.5)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_file_io.py"),
                             str(tmp_path), str(ROUNDS)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    calls = int(out.split()[1])
    after = data_events(ag, after=time.time(), timeout=2.5) if before else None
    stats = ag.stop()
    if before and after:
        window, delta = "workload window", after[1] - before[1]
    else:
        window, delta = "whole agent run", stat(stats, "kernel", "data_events")
    figure(request, f"{calls} file/pipe/unix/udp data syscalls full of HTTP bytes -> "
                    f"{delta} kernel data_events over the {window} (other TCP on the node "
                    f"included); drops {stat(stats, 'kernel', 'drops')}")
    leaked = [s for s in receiver.spans() if s["resource"].get("process.pid") == proc.pid
              or "/file-io-must-not-trace" in str(span_path(s))]
    assert not leaked, f"non-TCP I/O became spans:{dump(leaked)}"
    assert isinstance(delta, int), f"no kernel.data_events in the stats: {stats}"
    assert delta < calls // 10, \
        f"{delta} data events over the {window} for {calls} non-TCP syscalls: the kernel " \
        f"filter lets file/pipe/unix/udp I/O through (unless other TCP traffic on the node made " \
        f"them: the agent made {stat(stats, 'user', 'spans')} spans in this run)"


def test_preexisting_connection(request, receiver, agent, make_nginx):
    """A keep-alive connection opened and used before the agent starts: its requests after
    'meshtrace: ready' become spans on both sides; the one before does not."""
    nginx = make_nginx(free_port())
    client = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_keepalive_client.py"),
                               str(nginx.port), "/pre/1.txt", "/pre/2.txt", "/pre/3.txt?x=y"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        first = client.stdout.readline().split()
        assert first[:1] == ["before"] and first[2] == "200", (first, client.stderr.read())
        local_port = int(first[1])
        ag = agent(receiver=receiver)
        client.stdin.write("go\n")
        client.stdin.flush()
        out, err = client.communicate(timeout=20)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0 and out.split()[:4] == ["after", str(local_port), "200", "200"], \
        (out, err)
    workers = nginx.worker_pids()

    def on_conn(spans):
        server = [s for s in select(spans, "SERVER") if s["resource"].get("process.pid") in workers
                  and a(s, "network.peer.port") == local_port]
        return server, select(spans, "CLIENT", pid=client.pid)

    receiver.wait_for(lambda r: sum(map(len, on_conn(r.spans()))) >= 4, 10)
    stats = ag.stop()
    spans = receiver.spans()
    server, clientside = on_conn(spans)
    figure(request, f"pre-existing keep-alive connection: {len(server)} SERVER + "
                    f"{len(clientside)} CLIENT spans for the 2 requests after ready; "
                    f"user {stat(stats, 'user')}")
    mine = [s for s in spans if s["resource"].get("process.pid") in workers + [client.pid]]
    want = [("GET", "/pre/2.txt", 200), ("GET", "/pre/3.txt", 200)]
    for group, label in ((server, "nginx SERVER"), (clientside, "python CLIENT")):
        got = [(a(s, "http.request.method"), span_path(s), a(s, "http.response.status_code"))
               for s in group]
        assert got == want, f"{label} spans on the pre-existing connection: {got}, want {want}" \
                            f"{busy_note(stats)}; " \
                            f"spans of nginx and the client:{dump(mine)}"
        for s in group:
            assert a(s, "server.port") == nginx.port, \
                f"{label} span has server.port {a(s, 'server.port')}, nginx is on {nginx.port}"


def test_traceparent_joins_trace(request, receiver, agent, make_nginx):
    nginx = make_nginx(free_port())
    ag = agent(receiver=receiver)
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    c = CurlRun([nginx.url("/index.html?tp=1")],
                headers=[f"traceparent: 00-{trace_id}-{parent}-01"]).run()
    receiver.wait_for(lambda r: len(select(r.spans(), server_port=nginx.port)) >= 1, 10)
    stats = ag.stop()
    spans = select(receiver.spans(), server_port=nginx.port)
    server, client = select(spans, "SERVER"), select(spans, "CLIENT", pid=c.pid)
    assert len(server) == 1, busy_note(stats) + dump(spans)
    assert (server[0]["trace_id"], server[0]["parent_span_id"]) == (trace_id, parent), \
        f"nginx SERVER span did not join the traceparent's trace: {server[0]}"
    # A client that sends its own traceparent reports its side itself: the agent must not
    # emit a second CLIENT span for it (issue 4: never two spans for one side of a call).
    assert not client, f"agent duplicated the instrumented client's span: {dump(client)}"
    assert stats["user"]["link"]["skipped_instrumented"] >= 1, stats["user"]["link"]


def test_unparsed_connection_is_muted_in_the_kernel(request, agent):
    """Issue 5: a connection no parser recognises stops being copied in the kernel; its calls
    are still counted (count-only events), so byte counts stay right."""
    ag = agent(args=["--listen", "off"])
    sends = 10000
    subprocess.run([sys.executable, os.path.join(HERE, "peer_blob.py"), str(sends)], check=True,
                   timeout=60, stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    stats = ag.stop()
    kernel, user = stats["kernel"], stats["user"]
    events, captured = kernel["data_events"], kernel["bytes_captured"]
    figure(request, f"unparsed 40 MiB stream: {events} data events, {captured} payload bytes "
                    f"copied ({captured / max(events, 1):.0f} B/event; unmuted would be up to 512), "
                    f"connections muted {user['conns_muted']}")
    assert user["conns_muted"] >= 2, (user, busy_note(stats))  # both ends of the connection
    assert events >= sends, kernel  # every call still counted
    assert captured <= 0.25 * events * 512, \
        f"{captured} bytes copied for {events} events: muting did not stop the copies"
