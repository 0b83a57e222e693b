# SPDX-License-Identifier: Apache-2.0
"""What the kernel side picks up: nothing from non-TCP I/O, connections that predate the agent
from their first I/O after it, and a W3C traceparent on the wire. And how capture behaves under
pressure and by choice: data shed (counted) while connection events are kept when user space is
behind, --cpu-priority, --record/--replay, bounded parser memory for bursts of idle connections."""

import os
import subprocess
import sys
import time

import pytest

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
                    f"connections muted {user['conns_muted']}, kernel.mutes_stale "
                    f"{kernel['mutes_stale']}")
    assert user["conns_muted"] >= 2, (user, busy_note(stats))  # both ends of the connection
    # The muted entries carry the connection's tuple, which the stream's own calls match.
    assert kernel["mutes_stale"] == 0, kernel
    assert events >= sends, kernel  # every call still counted
    assert captured <= 0.25 * events * 512, \
        f"{captured} bytes copied for {events} events: muting did not stop the copies"


def test_backlog_sheds_data_keeps_lifecycle(request, tmp_path, monkeypatch, receiver, agent,
                                            make_nginx):
    """User space stops draining (SIGSTOP) while traffic goes on: the kernel sheds data events
    before copying them, counted, and keeps the ring buffer's last part for connection events,
    so every connection made meanwhile is still in the graph. Once the agent runs again, the
    keep-alive connection that lost events is parsed from its next request on."""
    import http.client
    import signal

    from mt_graph import get_graph, private_nginx, tag

    name = private_nginx(tmp_path, monkeypatch, tag())
    nginx = make_nginx(free_port())
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"], receiver=receiver)
    ka = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)

    def get(path):
        ka.request("GET", path)
        r = ka.getresponse()
        r.read()
        return r.status

    assert get("/static/a.txt") == 200
    os.kill(ag.pid, signal.SIGSTOP)
    try:
        # ~1.5 KB of events per request: 6,000 fill the 4 MiB ring buffer well past its data share.
        t0 = time.monotonic()
        for i in range(6000):
            get("/static/a.txt")
        stall_conns = 10
        for i in range(stall_conns):
            CurlRun([f"http://127.0.0.1:{nginx.port}/during-{i}"]).run()
        stalled_s = time.monotonic() - t0
    finally:
        os.kill(ag.pid, signal.SIGCONT)
    after = [CurlRun([f"http://127.0.0.1:{nginx.port}/after-new-{i}"]).run() for i in range(3)]
    statuses = [get(f"/after-ka-{i}") for i in range(3)]
    assert statuses == [404] * 3
    ka.close()

    want_connects = stall_conns + len(after)
    deadline = time.monotonic() + 15
    while True:
        graph = get_graph(port)
        connects = sum(e["connects"] for e in graph["edges"]
                       if e["client"] == "curl" and e["server"] == name)
        if connects >= want_connects or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    stats = ag.stop()
    spans = receiver.spans()
    shed = stat(stats, "kernel", "drops", "ringbuf_full")
    figure(request, f"agent stopped {stalled_s:.1f} s under 6,000 keep-alive requests + "
                    f"{stall_conns} new connections: {shed} data events shed in the kernel, "
                    f"curl -> {name} connects in the graph {connects} (want {want_connects}); "
                    f"kernel {stat(stats, 'kernel')}")
    assert shed and shed > 0, f"nothing shed while the agent was stopped: {stats}"
    assert connects == want_connects, \
        f"connections made while the agent was behind are missing from the graph: {graph}"
    got = {(s["kind"], span_path(s)) for s in spans if "/after-" in str(span_path(s))}
    want = {(k, f"/after-{w}-{i}") for k in ("SERVER", "CLIENT")
            for w in ("new", "ka") for i in range(3)}
    assert want <= got, f"missing after the backlog: {sorted(want - got)}"
    # The keep-alive connection's own client spans: its parser started over after the loss.
    mine = select(spans, kind="CLIENT", pid=os.getpid())
    assert {span_path(s) for s in mine} >= {f"/after-ka-{i}" for i in range(3)}, dump(mine)


@pytest.mark.parametrize("priority,policy,nice", [("idle", 5, 0), ("low", 0, 19)])
def test_cpu_priority(request, receiver, agent, make_nginx, priority, policy, nice):
    """--cpu-priority idle runs the agent as SCHED_IDLE (policy 5), low at nice 19; either way it
    still traces on a machine with idle time, and its final stats say which."""
    nginx = make_nginx(free_port())
    ag = agent(["--cpu-priority", priority], receiver=receiver)
    with open(f"/proc/{ag.pid}/sched") as f:
        got_policy = next(int(l.split(":")[1]) for l in f if l.startswith("policy"))
    with open(f"/proc/{ag.pid}/stat") as f:
        got_nice = int(f.read().rsplit(")", 1)[1].split()[16])
    run = CurlRun([f"http://127.0.0.1:{nginx.port}/static/a.txt?p={i}" for i in range(3)]).run()
    stats = ag.stop()
    got = select(receiver.spans(), kind="CLIENT", pid=run.pid)
    figure(request, f"--cpu-priority {priority}: scheduling policy {got_policy}, nice {got_nice}, "
                    f"{len(got)} of 3 curl calls traced; {busy_note(stats)}")
    assert (got_policy, got_nice) == (policy, nice)
    assert stats.get("cpu_priority") == priority, stats
    assert len(got) == 3, dump(got)


def test_record_and_replay(request, tmp_path, agent, make_nginx):
    """--record writes what the kernel handed over; --replay runs the same pipeline on it without
    loading BPF (as nobody, with no capabilities) and makes the same spans: kinds, paths,
    statuses and parent-child shape (the ids themselves are random)."""
    import shutil
    import tempfile

    from mt_agent import read_jsonl, replay_binary

    nginx = make_nginx(free_port())
    d = tempfile.mkdtemp(prefix="mt-replay-")
    try:
        os.chmod(d, 0o777)
        rec, live_jsonl = os.path.join(d, "events.rec"), str(tmp_path / "live.jsonl")
        replay_jsonl, binary = os.path.join(d, "replay.jsonl"), os.path.join(d, "meshtrace")
        san_binary, env = replay_binary()
        shutil.copy(san_binary, binary)
        os.chmod(binary, 0o755)
        ag = agent(["--record", rec, "--jsonl", live_jsonl])
        run = CurlRun([f"http://127.0.0.1:{nginx.port}/static/a.txt?r={i}" for i in range(4)] +
                      [f"http://127.0.0.1:{nginx.port}/missing-{i}" for i in range(2)]).run()
        time.sleep(0.3)
        ag.stop()
        os.chmod(rec, 0o644)
        rec_bytes = os.path.getsize(rec)
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              "--inh-caps=-all", "--bounding-set=-all", binary, "--replay", rec,
                              "--jsonl", replay_jsonl, "--listen", "off"],
                             capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL, env={**os.environ, **env})
        assert res.returncode == 0, f"{san_binary}: exit {res.returncode}: {res.stderr[-3000:]}"
        replayed_all = read_jsonl(replay_jsonl)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    pids = {run.pid, *nginx.worker_pids()}

    def shape(spans):
        mine = [s for s in spans if s["resource"].get("process.pid") in pids]
        by_id = {s["span_id"]: s for s in mine}
        return sorted((s["kind"], a(s, "url.path") or a(s, "url.full"),
                       a(s, "http.response.status_code"),
                       by_id[s["parent_span_id"]]["kind"] if s["parent_span_id"] in by_id else "")
                      for s in mine)

    live, replayed = shape(read_jsonl(live_jsonl)), shape(replayed_all)
    figure(request, f"--record: {rec_bytes} bytes for {len(run.urls)} curl calls; --replay as "
                    f"nobody: {len(replayed)} spans of curl and nginx (live {len(live)})")
    assert len(live) == 2 * len(run.urls), live
    assert replayed == live


def test_burst_of_idle_connections_bounded_parser_memory(request, receiver, agent, make_nginx):
    """600 keep-alive connections each make one request, then stay open and quiet: both ends
    would hold ~6 KB of HTTP/1 parser state each (~7 MB); past a 2 MiB soft limit the agent
    takes it back from connections quiet between messages, so its parser memory stays near
    that limit, and every request still becomes its two spans."""
    import socket

    nginx = make_nginx(free_port())
    ag = agent(["--stats-interval", "1"], receiver=receiver)
    n = 600
    socks = []
    try:
        for i in range(n):  # a pool warming up: each connection's request answered in turn
            s = socket.create_connection(("127.0.0.1", nginx.port), timeout=10)
            socks.append(s)
            s.sendall(f"GET /static/a.txt?burst={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            got = b""
            while b"\r\n\r\n" not in got or len(got) < 601:
                chunk = s.recv(65536)
                assert chunk, "nginx closed a connection"
                got += chunk
        time.sleep(1.5)  # one periodic stats line while all are still open (idle release: 2 s)
        samples = [stat(st, "user", "parser_bytes") or 0 for _, st in ag.periodic_stats]
    finally:
        for s in socks:
            s.close()
    stats = ag.stop()
    pids = {os.getpid(), *nginx.worker_pids()}
    spans = [s for s in receiver.spans()
             if span_path(s) == "/static/a.txt" and s["resource"].get("process.pid") in pids]
    peak = max(samples, default=0)
    figure(request, f"{n} keep-alive connections, one request each, held open: parser state "
                    f"sampled each second peaked at {peak / 2**20:.2f} MiB (~{2 * n * 5840 / 2**20:.1f} "
                    f"MiB if every end kept it); released {stat(stats, 'user', 'parser_released')}, "
                    f"spans {len(spans)} (want {2 * n}); {busy_note(stats)}")
    assert samples, "no periodic stats line while the connections were open"
    assert peak <= 3 * 2**20, f"parser state peaked at {peak} bytes"
    assert len(spans) == 2 * n, len(spans)


def test_record_to_a_full_disk_is_reported(request, agent, make_nginx):
    """--record to a device that is always full: the agent keeps tracing, exits 0, and says the
    recording is incomplete and why."""
    nginx = make_nginx(free_port())
    ag = agent(["--record", "/dev/full"])
    CurlRun([f"http://127.0.0.1:{nginx.port}/static/a.txt?full={i}" for i in range(3)]).run()
    time.sleep(0.3)
    stats = ag.stop()
    err = ag.stderr_text()
    line = next((l for l in err.splitlines() if "--record" in l), "")
    figure(request, f"--record /dev/full: {line!r}; spans {stat(stats, 'user', 'spans')}")
    assert "No space left on device" in line and "incomplete" in line, err[-2000:]
    assert stat(stats, "user", "spans") >= 6, stats
