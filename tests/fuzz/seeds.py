#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the fuzzers' seed corpora from the bytes the unit tests already use.

    tests/fuzz/seeds.py OUTDIR

OUTDIR/<harness>/seed-NNN for every harness of tests/fuzz/ (see the Makefile's
FUZZ_HARNESSES). The recorded sessions are read from the unit tests' sources
(tests/protocols/*.c string literals, tests/protocols/http2_recorded.h), so a
new recording there seeds the fuzzers too; nothing binary is committed.

Input formats (they must match the harnesses):
  fuzz_l7_<proto>  mode byte, then records [op][len lo][len hi][len bytes]
                   (tests/fuzz/fuzz_l7.c); op bit 0 = client to server
  fuzz_http1       mode byte, then records [op][len][len bytes] (fuzz_http1.c)
  fuzz_replay      a --record file of struct mt_data_event / mt_conn_event
  fuzz_dns         the first message's size (2 bytes, little-endian), two messages
  others           the bytes themselves (fuzz_sql: a leading option byte;
                   fuzz_otlp_env: NUL-separated "<variable index byte><value>";
                   fuzz_cli: NUL-separated arguments after argv[0])
"""
import os
import re
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PROTO_TESTS = os.path.join(ROOT, "tests", "protocols")


def read(name):
    with open(os.path.join(PROTO_TESTS, name), encoding="utf-8") as f:
        return f.read()


# ---- C string literals, as the C compiler reads them

_ESC = {"n": 10, "r": 13, "t": 9, "0": 0, "\\": 92, '"': 34, "'": 39, "a": 7, "b": 8,
        "f": 12, "v": 11, "?": 63}


def c_literal(src, i):
    """Decodes the literal starting at src[i] == '"'; returns (bytes, index after it)."""
    assert src[i] == '"'
    out = bytearray()
    i += 1
    while src[i] != '"':
        c = src[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = src[i + 1]
        if e == "x":
            j = i + 2
            while j < len(src) and src[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(src[i + 2:j], 16) & 0xFF)
            i = j
        elif e in "01234567":
            j = i + 1
            while j < len(src) and j < i + 4 and src[j] in "01234567":
                j += 1
            out.append(int(src[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out.append(_ESC[e])
            i += 2
    return bytes(out), i + 1


def c_literals(src, i):
    """Adjacent literals from src[i] (blanks and comments between them): their bytes, end."""
    out = b""
    while True:
        m = re.compile(r'(\s|/\*.*?\*/|//[^\n]*)*', re.S).match(src, i)
        i = m.end()
        if i >= len(src) or src[i] != '"':
            return out, i
        b, i = c_literal(src, i)
        out += b


def named_string(src, name):
    i = src.index("static const char %s[] =" % name) + len("static const char %s[] =" % name)
    return c_literals(src, i)[0]


def msg_arrays(src):
    """Every `static const struct msg NAME[] = {M(C2S, "..."), ...};`: {NAME: [(c2s, bytes)]}."""
    sessions = {}
    for m in re.finditer(r"static const struct msg (\w+)\[\] = \{", src):
        end = src.index("\n};", m.end())
        body, msgs, i = src[:end], [], m.end()
        while True:
            k = body.find("M(", i)
            if k < 0:
                break
            d = re.compile(r"M\((C2S|S2C),").match(body, k)
            if not d:
                i = k + 2
                continue
            data, i = c_literals(body, d.end())
            msgs.append((d.group(1) == "C2S", data))
        sessions[m.group(1)] = msgs
    return sessions


def brace_pairs(src, start_marker):
    """{"a", "b", ...} rows after @start_marker: [(first literal, second literal)]."""
    i = src.index(start_marker) + len(start_marker)
    end = src.index("\n};", i)
    rows = []
    while True:
        k = src.find("{", i, end)
        if k < 0:
            return rows
        a, j = c_literals(src, k + 1)
        j = src.index(",", j)
        b, j = c_literals(src, j + 1)
        rows.append((a, b))
        i = src.index("}", j) + 1


def http2_sessions():
    src = read("http2_recorded.h")
    arrays = {m.group(1): bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", m.group(2)))
              for m in re.finditer(r"static const uint8_t (\w+)\[\] = \{(.*?)\};", src, re.S)}
    sessions = []
    for m in re.finditer(r"static const struct rec_chunk \w+\[\] = \{(.*?)\};", src, re.S):
        sessions.append([(c == "true", arrays[name]) for c, name in
                         re.findall(r"\{(true|false), \d+, (\w+)\}", m.group(1))])
    return sessions


# ---- DNS messages (RFC 1035 4.1), as tests/protocols/test_dns*.c build them

def dns_name(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_query(qid, name, qtype=1):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_name(name) + \
        struct.pack(">HH", qtype, 1)


def dns_cname_response(qid, name):
    msg = struct.pack(">HHHHHH", qid, 0x8180, 1, 2, 0, 0) + dns_name(name) + \
        struct.pack(">HH", 1, 1)
    target = dns_name("lb." + name)
    cname_rdata = len(msg) + 12
    msg += struct.pack(">HHHIH", 0xC00C, 5, 1, 300, len(target)) + target
    msg += struct.pack(">HHHIH", 0xC000 | cname_rdata, 1, 1, 60, 4) + bytes([10, 1, 2, 3])
    return msg


def dns_aaaa_response(qid, name, rcode=0):
    msg = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, 1 if rcode == 0 else 0, 0, 0)
    msg += dns_name(name) + struct.pack(">HH", 28, 1)
    if rcode == 0:
        msg += struct.pack(">HHHIH", 0xC00C, 28, 1, 30, 16) + bytes(range(16))
    return msg


def dnstcp_session():
    msgs = []
    for qid, name, qtype in ((0x1111, "a.example.com", 1), (0x2222, "b.example", 28)):
        q = dns_query(qid, name, qtype)
        msgs.append((True, struct.pack(">H", len(q)) + q))
    r2 = dns_aaaa_response(0x2222, "b.example", rcode=3)
    r1 = dns_cname_response(0x1111, "a.example.com")
    msgs.append((False, struct.pack(">H", len(r2)) + r2 + struct.pack(">H", len(r1)) + r1))
    return msgs


# ---- the harnesses' input formats

def l7_input(msgs, split, mode=0):
    """Records of at most @split bytes each (one message may span several)."""
    out = bytearray([mode])
    for c2s, data in msgs:
        for k in range(0, max(len(data), 1), split):
            piece = data[k:k + split]
            out += bytes([1 if c2s else 0]) + struct.pack("<H", len(piece)) + piece
    return bytes(out)


def http1_input(msgs, mode):
    out = bytearray([mode])
    for c2s, data in msgs:
        for k in range(0, len(data), 255):
            piece = data[k:k + 255]
            out += bytes([1 if c2s else 0, len(piece)]) + piece
    return bytes(out)


# struct mt_data_event / mt_conn_event (bpf/capture.h); fuzz_replay.c asserts these sizes.
MT_EV_DATA, MT_EV_CONN, MT_EV_DNS = 1, 2, 3
DATA_EVENT_SIZE, CONN_EVENT_SIZE = 112, 104


def tuple_bytes(lport, rport):
    v4 = lambda a: bytes(10) + b"\xff\xff" + bytes(a)  # noqa: E731
    return v4([10, 0, 0, 1]) + v4([10, 0, 0, 2]) + struct.pack("<HHHH", lport, rport, 2, 0)


def data_event(kind, ts, sock, c2s_from_client, seq, payload, lport, rport):
    # A client's socket: client-to-server bytes are sent (dir 0 = egress in bpf/capture.h).
    head = struct.pack("<B7xQQ", kind, ts, sock)
    body = struct.pack("<IIiIHBBIQ", 100, 101, 5, len(payload), len(payload),
                       0 if c2s_from_client else 1, 0, 0, seq)
    ev = head + body + b"curl".ljust(16, b"\0") + tuple_bytes(lport, rport)
    assert len(ev) == DATA_EVENT_SIZE
    return ev + payload


def conn_event(ts, sock, op, lport, rport):
    head = struct.pack("<B7xQQ", MT_EV_CONN, ts, sock)
    body = struct.pack("<IB3xiIQ", 100, op, 0, 101, 1000)
    ev = head + body + b"curl".ljust(16, b"\0") + tuple_bytes(lport, rport)
    assert len(ev) == CONN_EVENT_SIZE
    return ev


def recording(events):
    out = bytearray()
    for ev in events:
        out += struct.pack("<I", len(ev)) + ev + bytes((8 - len(ev) % 8) % 8)
    return bytes(out)


def replay_seed(msgs, sock, rport, with_conn=True):
    events, ts, seq = [], 1_000_000_000, [1000, 5000]
    if with_conn:
        events.append(conn_event(ts, sock, 1, 40000, rport))  # MT_CONN_CONNECT
    for c2s, data in msgs:
        ts += 1000
        events.append(data_event(MT_EV_DATA, ts, sock, c2s, seq[c2s], data, 40000, rport))
        seq[c2s] += len(data)
    events.append(conn_event(ts + 1000, sock, 5, 40000, rport))  # MT_CONN_CLOSED
    return recording(events)


def main():
    out = sys.argv[1]
    seeds = {}

    def add(harness, data):
        seeds.setdefault(harness, []).append(data)

    h1 = read("test_http1.c")
    curl, nginx200, chunked = (named_string(h1, n) for n in ("CURL_GET", "NGINX_200",
                                                              "NGINX_CHUNKED"))
    http1 = [(True, curl), (False, nginx200), (True, curl), (False, chunked)]
    pg = msg_arrays(read("test_postgres.c"))
    my = msg_arrays(read("test_mysql.c"))
    redis = [m for req, resp in brace_pairs(read("test_redis.c"), "CLI[][2] = {")
             for m in ((True, req), (False, resp))]
    memcached = [m for req, resp in brace_pairs(read("test_memcached.c"), "} SESSION[] = {")
                 for m in ((True, req), (False, resp))]
    sessions = {
        "http1": [http1],
        "http2": http2_sessions(),
        "postgres": list(pg.values()),
        "mysql": list(my.values()),
        "redis": [redis],
        "memcached": [memcached],
        "dnstcp": [dnstcp_session()],
    }
    for proto, sess in sessions.items():
        assert sess and all(sess), proto
        for msgs in sess:
            # Whole messages; the detector-gated mode; small pieces.
            add("fuzz_l7_" + proto, l7_input(msgs, 60000))
            add("fuzz_l7_" + proto, l7_input(msgs, 60000, mode=1))
            add("fuzz_l7_" + proto, l7_input(msgs, 97))
    add("fuzz_http1", http1_input(http1, 0))
    add("fuzz_http1", http1_input(http1, 1))

    def two(first, second):
        return struct.pack("<H", len(first)) + first + second

    add("fuzz_dns", two(dns_query(7, "api.example.com"), dns_cname_response(7, "shop.example.test")))
    add("fuzz_dns", two(dns_aaaa_response(9, "v6.example"), dns_aaaa_response(9, "x.test", 3)))
    add("fuzz_dns", two(dns_cname_response(1, "www.example.org"), dns_query(2, "abc.example.com")))

    sql = read("test_sql_sanitize.c")
    stmts = set()
    i = 0
    while True:
        k = sql.find('"', i)
        if k < 0:
            break
        data, i = c_literals(sql, k)
        if len(data) > 4 and not data.startswith(b"sanitise") and b"%" not in data:
            stmts.add(data)
    for _, data in [m for s in pg.values() for m in s] + [m for s in my.values() for m in s]:
        q = data.find(b"SELECT")
        if q >= 0:
            stmts.add(data[q:])
    for n, s in enumerate(sorted(stmts)):
        add("fuzz_sql", bytes([n % 4]) + s)

    add("fuzz_httpd", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nAccept: */*\r\n\r\n")
    add("fuzz_httpd", b"HEAD /api/traces?service=shop&limit=20 HTTP/1.0\n\n")
    add("fuzz_httpd", b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")

    env = [
        b"\x00http://collector:4318/",
        b"\x01https://[::1]:4318/v1/traces",
        b"\x03api-key=secret%2C1, x-tenant = a b ",
        b"\x06gzip",
        b"\x08 2500 ",
        b"\x0ahttp/protobuf",
        b"\x0cservice.name=shop,host.name=node-1,k8s.pod.name=p%20q",
        b"\x0d512",
        b"\x0e65536",
        b"\x10GET,POST,PURGE",
    ]
    add("fuzz_otlp_env", b"\0".join(env))
    add("fuzz_otlp_env", b"\x00ftp://x\0\x0c=novalue")

    for argv in ([b"--jsonl", b"-", b"--capture-bytes", b"256", b"--listen", b"[::1]:9464"],
                 [b"--capture-mode=syscalls", b"--max-connections", b"65536", b"-q"],
                 [b"--record", b"/tmp/x.rec", b"--replay", b"/tmp/y.rec"],
                 [b"--cpu-priority", b"idle", b"--stats-interval", b"99999", b"-v"],
                 [b"--listen", b"127.0.0.1:70000", b"--record-query=1"],
                 [b"--jsonl", b"a\nmeshtrace: ready\x1b[31m", b"--bogus", b"--help"],
                 [b"--listen"], [b"-Vx", b"stray"]):
        add("fuzz_cli", b"\0".join(argv))

    add("fuzz_replay", replay_seed(http1, 0xFFFF888800001000, 80))
    add("fuzz_replay", replay_seed(redis, 0xFFFF888800002000, 6379))
    add("fuzz_replay", replay_seed(pg["PSQL_INSERT"], 0xFFFF888800003000, 5432, False))
    q = dns_query(0x4242, "api.example.com")
    r = dns_cname_response(0x4242, "api.example.com")
    add("fuzz_replay", recording([
        data_event(MT_EV_DNS, 2_000_000_000, 0xFFFF888800004000, True, 0, q, 40000, 53),
        data_event(MT_EV_DNS, 2_000_100_000, 0xFFFF888800004000, False, 0, r, 40000, 53)]))

    for harness, items in seeds.items():
        d = os.path.join(out, harness)
        os.makedirs(d, exist_ok=True)
        for n, data in enumerate(items):
            with open(os.path.join(d, "seed-%03d" % n), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
