# SPDX-License-Identifier: Apache-2.0
"""The exporter against a collector that is down, then up; and one that answers 503."""

import time

from mt_agent import busy_note, stat
from mt_otlp import PortReservation, free_port
from mt_peers import CurlRun
from mt_report import figure
from mt_spans import dump, select


def drop_counters(stats):
    otlp = stat(stats, "otlp", default={}) or {}
    return {k: v for k, v in otlp.items() if "drop" in k and isinstance(v, int)}


def test_collector_down_then_up(request, make_receiver, agent, make_nginx):
    reserved = PortReservation()  # bound, not listening: connections are refused
    nginx = make_nginx(free_port())
    ag = agent(env={"OTEL_EXPORTER_OTLP_TIMEOUT": "2000"},
               endpoint=f"http://127.0.0.1:{reserved.port}")
    for i in range(5):
        CurlRun([nginx.url(f"/index.html?phase=down&n={i}")]).run()
    time.sleep(2)  # several export attempts fail meanwhile
    assert ag.alive(), f"agent died while the collector was down:\n{ag.stderr_text()}"

    reserved.release()
    up_at = time.time()
    rcv = make_receiver(port=reserved.port)
    for i in range(3):
        CurlRun([nginx.url(f"/static/a.txt?phase=up&n={i}")]).run()

    def up_spans(r):
        return select(r.spans(), server_port=nginx.port, path="/static/a.txt")

    rcv.wait_for(lambda r: len(up_spans(r)) >= 6, 30)
    got = up_spans(rcv)
    first = min((p.time for p in rcv.trace_posts()), default=None)
    assert ag.alive(), f"agent died after the collector came up:\n{ag.stderr_text()}"
    stats = ag.stop()
    spans = rcv.spans()
    down = select(spans, server_port=nginx.port, path="/index.html")
    figure(request, f"collector up after 2 s down: first accepted export "
                    f"{(first - up_at) if first else float('nan'):.2f} s later; spans from before: "
                    f"{len(down)}/10 delivered; otlp {stat(stats, 'otlp')}")
    assert len(got) == 6, f"spans made after the collector came up did not all arrive in 30 s" \
                          f"{busy_note(stats)}:{dump(select(spans, server_port=nginx.port))}"
    assert len(select(spans, 'SERVER', nginx.port)) == len(select(spans, 'CLIENT', nginx.port))
    missing = 10 - len(down)
    drops = drop_counters(stats)
    assert missing == 0 or sum(drops.values()) >= missing, \
        f"{missing} spans from while the collector was down neither arrived nor were counted " \
        f"as dropped: otlp {stat(stats, 'otlp')}"


def test_collector_503_retry_after(request, receiver, agent, make_nginx):
    receiver.fail_next(2, status=503, retry_after=1)
    nginx = make_nginx(free_port())
    ag = agent(receiver=receiver)
    for i in range(3):
        CurlRun([nginx.url(f"/index.html?n={i}")]).run()
    ok = receiver.wait_for(lambda r: len(select(r.spans(), server_port=nginx.port)) >= 6, 20)
    stats = ag.stop()
    posts = receiver.trace_posts(accepted_only=False)
    refused = [p for p in posts if p.status == 503]
    figure(request, f"503 with Retry-After: 1 twice: {len(posts)} POSTs, statuses "
                    f"{[p.status for p in posts][:8]}; otlp {stat(stats, 'otlp')}")
    assert ok, f"the test's spans did not arrive after two 503s{busy_note(stats)}:" \
               f"{dump(select(receiver.spans(), server_port=nginx.port))}"
    assert len(refused) == 2, [p.status for p in posts]
    accepted = [p for p in posts if p.status == 200]
    for p in refused:
        ids = {s.span_id for rs in p.decoded.resource_spans for ss in rs.scope_spans
               for s in ss.spans}
        retry = [q for q in accepted if q.time > p.time and ids <= {
            s.span_id for rs in q.decoded.resource_spans for ss in rs.scope_spans
            for s in ss.spans}]
        assert retry, "the batch refused with 503 was never sent again"
        wait = retry[0].time - p.time
        assert wait >= 0.9, f"retried {wait:.3f} s after a 503 with Retry-After: 1"


def test_collector_that_never_answers(request, agent, make_nginx):
    """A collector that accepts connections and reads, but never answers: each export times
    out and is retried, the agent keeps observing and serving, and SIGTERM still exits within
    the shutdown flush bound (5 s), counting what it could not deliver."""
    import socket
    import threading

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    held, stop = [], threading.Event()

    def swallow():
        hole.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = hole.accept()
            except OSError:
                continue
            c.settimeout(0.2)
            held.append(c)
            for conn in list(held):
                try:
                    conn.recv(65536)  # read and never answer
                except OSError:
                    pass

    t = threading.Thread(target=swallow, daemon=True)
    t.start()
    request.addfinalizer(lambda: (stop.set(), t.join(2), hole.close(),
                                  [c.close() for c in held]))
    nginx = make_nginx(free_port())
    ag = agent(args=["--listen", "127.0.0.1:0"],
               env={"OTEL_EXPORTER_OTLP_TIMEOUT": "500"},
               endpoint=f"http://127.0.0.1:{hole.getsockname()[1]}")
    for i in range(5):
        CurlRun([nginx.url(f"/index.html?phase=hole&n={i}")]).run()
    time.sleep(2.5)  # several attempts time out meanwhile
    assert ag.alive(), f"agent died with a collector that never answers:\n{ag.stderr_text()}"
    started = time.monotonic()
    stats = ag.stop(timeout=15)
    took = time.monotonic() - started
    otlp = stat(stats, "otlp")
    figure(request, f"collector that never answers: exit after SIGTERM in {took:.1f} s; "
                    f"otlp {otlp}")
    assert stat(stats, "user", "spans") >= 10, stats["user"]  # it kept observing
    assert otlp["retries"] >= 1, otlp
    assert otlp["spans_exported"] == 0, otlp
    # Nothing silently lost: what was made is queued, dropped at shutdown, or counted.
    assert otlp["spans_received"] == otlp["queue_spans"] + sum(drop_counters(stats).values()), otlp
