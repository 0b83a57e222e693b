# SPDX-License-Identifier: Apache-2.0
"""Kernel-side skipping (skip hints, issue 15): bodies far longer than the capture (Content-Length,
chunked, sendfile, a request body), keep-alive and pipelined, give the same spans with skip hints
as without (MESHTRACE_TEST_NO_SKIP), from far fewer kernel events, counted from the agent's
--record of the test's own connections. And a server whose Content-Length lies: the parser and
the kernel skip what the lie says, then the connection resyncs (counted) and every later request
on it gets its spans."""

import collections
import os
import struct
import subprocess
import sys
import json

import pytest

from mt_agent import busy_note, stat
from mt_peers import HERE
from mt_report import figure
from mt_spans import a, dump, select, span_path

PEER = os.path.join(HERE, "peer_longbody.py")
LIES_AFTER = 220  # plain requests after the lie: ~140 B each, the lie covers 20,000 B


def start_server(env=None):
    proc = subprocess.Popen([sys.executable, PEER, "server"], stdout=subprocess.PIPE, text=True,
                            env=env)
    port = int(proc.stdout.readline())
    return proc, port


def run_client(*args, env=None):
    out = subprocess.run([sys.executable, PEER, *args], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def data_events(path, port):
    """Data events of the recording on connections to or from @port: (count, bytes moved)."""
    n = moved = 0
    with open(path, "rb") as f:
        blob = f.read()
    off = 0
    while off + 4 <= len(blob):
        (size,) = struct.unpack_from("=I", blob, off)
        rec = blob[off + 4:off + 4 + size]
        off += 4 + size + (8 - size % 8) % 8
        if size < 112 or rec[0] != 1:  # MT_EV_DATA; struct mt_data_event is 112 B + data
            continue
        nbytes = struct.unpack_from("=I", rec, 36)[0]
        lport, rport = struct.unpack_from("=HH", rec, 104)
        if port in (lport, rport):
            n += 1
            moved += nbytes
    return n, moved


def run(agent, make_receiver, tmp_path, tag, env, scenario, pace_ms=0):
    rec = tmp_path / f"{tag}.rec"
    receiver = make_receiver()
    ag = agent(["--record", str(rec)], env=env, receiver=receiver)
    peer_env = dict(os.environ, LONGBODY_PACE_MS=str(pace_ms))
    srv, port = start_server(peer_env)
    try:
        done = run_client(scenario[0], str(port), *scenario[1:], env=peer_env)
    finally:
        srv.kill()
        srv.wait()
    stats = ag.stop()
    spans = [s for s in receiver.spans() if a(s, "server.port") == port]
    events, moved = data_events(str(rec), port)
    return done, spans, stats, events, moved, port


def summary(span):
    return (span["kind"], a(span, "network.peer.port") if span["kind"] == "SERVER" else 0,
            a(span, "http.request.method"), span_path(span), a(span, "http.response.status_code"),
            a(span, "http.response.body.size"), a(span, "http.request.body.size"))


def expected(done):
    out = []
    for r in done:
        for kind in ("SERVER", "CLIENT"):
            out.append((kind, r["port"] if kind == "SERVER" else 0, r["method"],
                        r["path"].split("?")[0], r["status"], r["body"] or None,
                        r["req_body"] or None))
    return sorted(out, key=repr)


# pace 0: bodies go through loopback faster than the agent's 10 ms drain tick, so most of a
# body is through before user space has read the head and given the hint; pace 5: a body
# streamed as produced (5 ms pause per 16 KiB), where the hint is in place for most of it.
@pytest.mark.parametrize("pace_ms", [0, 5])
def test_long_bodies_same_spans_fewer_events(request, tmp_path, make_receiver, agent, pace_ms):
    got = {}
    for tag, env in (("before", {"MESHTRACE_TEST_NO_SKIP": "1"}), ("skip", {})):
        done, spans, stats, events, moved, port = run(agent, make_receiver, tmp_path, tag, env,
                                                      ["client"], pace_ms)
        want = expected(done)
        have = sorted((summary(s) for s in spans), key=repr)
        figure(request, f"{tag}: {len(done)} requests, {len(spans)} spans, {events} data "
                        f"events for {moved} bytes on the test's connections; kernel "
                        f"skipped_calls {stat(stats, 'kernel', 'skipped_calls')} "
                        f"skipped_bytes {stat(stats, 'kernel', 'skipped_bytes')}, user "
                        f"skip_hints {stat(stats, 'user', 'skip_hints')} skipped_bytes "
                        f"{stat(stats, 'user', 'skipped_bytes')} skip_mismatch "
                        f"{stat(stats, 'user', 'skip_mismatch')}")
        missing = collections.Counter(want) - collections.Counter(have)
        extra = collections.Counter(have) - collections.Counter(want)
        got[tag] = (events, moved, stats, missing, extra)
        assert not missing and not extra, \
            f"{tag}: spans differ from what the client did{busy_note(stats)}: missing " \
            f"{sorted(missing.elements(), key=repr)[:8]}, extra " \
            f"{sorted(extra.elements(), key=repr)[:8]}:{dump(spans)}"
        assert stat(stats, "user", "skip_mismatch") == 0
    (before, moved_b, _, _, _), (after, moved_a, st, _, _) = got["before"], got["skip"]
    # The same bytes moved in both runs; what the kernel skipped, user space fed as gaps.
    assert stat(st, "user", "skip_hints") > 0
    assert stat(st, "user", "skipped_bytes") > 0
    # Other agents' hints are theirs: this agent's kernel and user space count the same bytes,
    # unless other traffic on the node used skip hints of this agent (its own, then: equal).
    assert stat(st, "kernel", "skipped_bytes") == stat(st, "user", "skipped_bytes")
    assert after < before, f"{after} events with skip hints vs {before} without"
    if pace_ms:
        assert after * 2 < before, f"{after} events with skip hints vs {before} without"


def test_responses_past_the_capture_are_unseen_not_errors(request, tmp_path, make_receiver,
                                                          agent):
    """A pipelining client that reads all three responses in one receive: the second and third
    heads lie past the capture. Their CLIENT spans end unanswered (no status) but not in error
    (counted: responses_unseen); the first is exact, and so is every SERVER span."""
    done, spans, stats, _, _, port = run(agent, make_receiver, tmp_path, "greedy", {},
                                         ["greedy"])
    assert [(r["path"].split("?")[0], r["status"]) for r in done] == \
        [("/cl/20000", 200), ("/chunked/20000", 200), ("/cl/50", 200)]
    server = {span_path(s): s for s in select(spans, "SERVER", port)}
    client = {span_path(s): s for s in select(spans, "CLIENT", port)}
    unseen = stat(stats, "user", "l7", "http", "responses_unseen", default=None)
    figure(request, f"3 pipelined responses read in one receive: CLIENT "
                    f"{[(p, a(s, 'http.response.status_code'), s['status']) for p, s in client.items()]}"
                    f"; http responses_unseen {unseen}")
    assert sorted(server) == sorted(client) == ["/chunked/20000", "/cl/20000", "/cl/50"], \
        dump(spans)
    for path, body in (("/cl/20000", 20000), ("/chunked/20000", 20000), ("/cl/50", 50)):
        assert a(server[path], "http.response.status_code") == 200, dump(spans)
        assert a(server[path], "http.response.body.size") == body, dump(spans)
    assert a(client["/cl/20000"], "http.response.status_code") == 200, dump(spans)
    for path in ("/chunked/20000", "/cl/50"):
        assert a(client[path], "http.response.status_code") is None, dump(spans)
        assert client[path]["status"] != "ERROR", dump(spans)
    assert unseen >= 2, stat(stats, "user", "l7", "http")


def test_lying_content_length_resyncs(request, tmp_path, make_receiver, agent):
    done, spans, stats, events, _, port = run(agent, make_receiver, tmp_path, "liar", {},
                                              ["liar", str(LIES_AFTER)])
    assert len(done) == LIES_AFTER + 1
    server = select(spans, "SERVER", port)
    client = select(spans, "CLIENT", port)
    resyncs = stat(stats, "user", "l7", "http", "resyncs", default=None)
    figure(request, f"lying Content-Length (20,000 B said, 10 sent) then {LIES_AFTER} requests "
                    f"on the connection: SERVER {len(server)}, CLIENT {len(client)} spans, "
                    f"{events} data events; http stats {stat(stats, 'user', 'l7', 'http')}; "
                    f"kernel skipped_calls {stat(stats, 'kernel', 'skipped_calls')}")
    # The requests whose responses the lie swallowed end unanswered but not in error (their
    # responses went by as the lie's body), counted; every request after the resync is
    # paired with its own response, on both sides.
    unseen = stat(stats, "user", "l7", "http", "responses_unseen", default=None)
    assert unseen >= 1, stat(stats, "user", "l7")
    for side, got in (("SERVER", server), ("CLIENT", client)):
        assert len(got) >= 60, f"{side}: {len(got)} spans:{dump(got[-20:])}"
        errors = [s for s in got if s["status"] == "ERROR"]
        assert not errors, f"{side}: {len(errors)} spans in error:{dump(errors[:10])}"
        bad = [s for s in got[-60:] if (a(s, "http.response.status_code"),
                                         a(s, "http.response.body.size")) != (200, 100)]
        assert not bad, f"{side}: wrong pairing after the resync:{dump(bad[:10])}"
        assert span_path(got[-1]) == "/cl/100", dump(got[-3:])
    assert resyncs >= 1, stat(stats, "user", "l7")
