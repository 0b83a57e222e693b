#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One class of the soak's load (tests/integration/soak.py starts one process per class), at a
steady rate for a fixed time, against servers on 127.0.0.1. Every request goes to a path, key or
query that is never used again, and every new connection comes from a loopback source address
never used before (127.C.x.y, C the class's own second octet), so no table in the agent can
settle: what it holds must be evicted, expired or freed, never accumulated.

  soak_load.py CLASS RATE SECONDS PORT OUT_JSON [RUN_ID]

Classes:
  ka      HTTP/1.1 keep-alive, raw sockets; a new connection every CHURN_KA requests
  proxy   the same through nginx's reverse proxy to an upstream (kept-alive connections)
  close   HTTP/1.1 'Connection: close', one connection per request
  h2      HTTP/2 (h2c, prior knowledge): one nghttp process per H2_URLS requests, one connection
  short   one curl process per request (fork/exec), OTEL_SERVICE_NAME soak-short-a or -b by turn
  redis   RESP SET/GET of a fresh key, raw sockets; a new connection every CHURN_DB commands
  pg      PostgreSQL simple queries, raw protocol (trust auth); new connection every CHURN_DB
  mc      memcached text protocol set/get of a fresh key; new connection every CHURN_DB
  fork    no network: forks short children as fast as RATE to make the pid counter wrap

Writes one JSON object to OUT_JSON: requests made (and answered) by kind; for 'short' and 'h2'
every process's (pid, service, first sequence number); for 'fork' the forks and the wraps seen.
Any failed request is counted under "failed" with its first error, and never counted as made."""

import json
import os
import socket
import struct
import subprocess
import sys
import time

CURL = "/usr/bin/curl"
NGHTTP = "/usr/bin/nghttp"
CHURN_KA = 25
CHURN_DB = 40
H2_URLS = 5
# 127.17.0.1 is nginx's source address towards its upstream (soak.py: proxy_bind).
CLASS_OCTET = {"ka": 11, "close": 12, "short": 14, "redis": 15, "pg": 16, "proxy": 18, "mc": 19}
TIMEOUT = 10


class Sources:
    """Loopback source addresses 127.C.x.y, each used once (65,024 per class)."""

    def __init__(self, cls):
        self.octet = CLASS_OCTET[cls]
        self.n = 0

    def next(self):
        n = self.n
        self.n += 1
        hi, lo = divmod(n % (256 * 254), 254)
        return f"127.{self.octet}.{hi}.{lo + 1}"


def connect(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def until(self, sep):
        while sep not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(sep, 1)
        return head

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def http_response(r):
    """Reads one response with a Content-Length body; returns the status."""
    head = r.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    length = 0
    for h in head[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    r.exact(length)
    return status


class Paced:
    """Yields i = 0, 1, ... at RATE per second until SECONDS have passed: i is due at start +
    i / RATE; a late one comes at once (the rate stays steady on average). It ends at the end
    of SECONDS even when behind (a busy machine), so the load never outlasts its time."""

    def __init__(self, rate, seconds):
        self.rate = rate
        self.end = time.monotonic() + seconds
        self.start = time.monotonic()

    def __iter__(self):
        i = 0
        while True:
            due = self.start + i / self.rate
            now = time.monotonic()
            if due >= self.end or now >= self.end:
                return
            if due > now:
                time.sleep(due - now)
            yield i
            i += 1


class Result:
    def __init__(self, cls):
        self.out = {"class": cls, "requests": 0, "failed": 0, "first_error": None,
                    "connections": 0, "processes": []}

    def ok(self, n=1):
        self.out["requests"] += n

    def fail(self, e, n=1):
        self.out["failed"] += n
        if self.out["first_error"] is None:
            self.out["first_error"] = repr(e)


def run_ka(port, rate, seconds, run_id, res, cls="ka"):
    src = Sources(cls)
    sock = reader = None
    for i in Paced(rate, seconds):
        try:
            if sock is None or i % CHURN_KA == 0:
                if sock:
                    sock.close()
                sock = connect(port, src.next())
                reader = Reader(sock)
                res.out["connections"] += 1
            sock.sendall(f"GET /{cls}/{run_id}/{i} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
            if http_response(reader) != 200:
                raise ValueError("status not 200")
            res.ok()
        except (OSError, EOFError, ValueError) as e:
            res.fail(e)
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


def run_proxy(port, rate, seconds, run_id, res):
    run_ka(port, rate, seconds, run_id, res, "proxy")


def run_close(port, rate, seconds, run_id, res):
    src = Sources("close")
    for i in Paced(rate, seconds):
        try:
            with connect(port, src.next()) as sock:
                res.out["connections"] += 1
                sock.sendall(f"GET /close/{run_id}/{i} HTTP/1.1\r\nHost: soak\r\n"
                             f"Connection: close\r\n\r\n".encode())
                if http_response(Reader(sock)) != 200:
                    raise ValueError("status not 200")
            res.ok()
        except (OSError, EOFError, ValueError) as e:
            res.fail(e)


def spawn(args, env_name):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_SERVICE_NAME"] = env_name
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p, n, res, record, codes=None):
    """Waits for a client process that made @n requests; @codes parses its output into status
    codes (None: exit status 0 means all @n answered 200)."""
    out, err = p.communicate(timeout=TIMEOUT + 5)
    got = codes(out) if codes else (["200"] * n if p.returncode == 0 else [])
    ok = sum(1 for c in got if c == "200")
    if ok:
        res.ok(ok)
    if ok < n:
        res.fail(f"exit {p.returncode} codes {got} {err.strip()[:300]}", n - ok)
    if ok == n:
        res.out["processes"].append(record)


def run_h2(port, rate, seconds, run_id, res):
    """One nghttp process per H2_URLS requests, all streams at once on its one h2c connection
    (curl 7.88 fails requests after the first on a prior-knowledge connection, curl#10634).
    nghttp cannot choose its source address: these connect from 127.0.0.1."""
    for i in Paced(rate / H2_URLS, seconds):
        urls = [f"http://127.0.0.1:{port}/h2/{run_id}/{i * H2_URLS + k}" for k in range(H2_URLS)]
        p = spawn([NGHTTP, "-n", "--no-dep", "-t", str(TIMEOUT)] + urls, "soak-h2")
        res.out["connections"] += 1
        finish(p, H2_URLS, res, [p.pid, "soak-h2", i * H2_URLS])


def run_short(port, rate, seconds, run_id, res):
    """A process per request; its name alternates so that a reused pid must be named anew."""
    src = Sources("short")
    for i in Paced(rate, seconds):
        name = "soak-short-" + "ab"[i % 2]
        p = spawn([CURL, "-q", "-sS", "--noproxy", "*", "--max-time", str(TIMEOUT),
                   "--interface", src.next(), "-o", "/dev/null", "-w", "%{http_code}\\n",
                   f"http://127.0.0.1:{port}/short/{run_id}/{i}"], name)
        res.out["connections"] += 1
        finish(p, 1, res, [p.pid, name, i], codes=str.split)


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_reply(r):
    line = r.until(b"\r\n")
    if line[:1] == b"$":
        n = int(line[1:])
        return r.exact(n + 2)[:-2] if n >= 0 else None
    if line[:1] == b"-":
        raise ValueError(line.decode())
    return line[1:]


def run_redis(port, rate, seconds, run_id, res):
    """SET then GET of a fresh key, in turn; each command its own request."""
    src = Sources("redis")
    sock = reader = None
    for i in Paced(rate, seconds):
        key = f"soak:{run_id}:{i // 2}"
        try:
            if sock is None or i % CHURN_DB == 0:
                if sock:
                    sock.close()
                sock = connect(port, src.next())
                reader = Reader(sock)
                res.out["connections"] += 1
            if i % 2 == 0:
                sock.sendall(resp_cmd("SET", key, "v" * 16, "EX", "60"))
                if resp_reply(reader) != b"OK":
                    raise ValueError("SET not OK")
            else:
                sock.sendall(resp_cmd("GET", key))
                resp_reply(reader)
            res.ok()
        except (OSError, EOFError, ValueError) as e:
            res.fail(e)
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


def pg_msg(tag, body):
    return tag + struct.pack("!I", len(body) + 4) + body


def pg_until_ready(r):
    """Reads messages up to ReadyForQuery; raises on ErrorResponse."""
    err = None
    while True:
        tag = r.exact(1)
        (n,) = struct.unpack("!I", r.exact(4))
        body = r.exact(n - 4)
        if tag == b"E":
            err = body
        if tag == b"R" and body[:4] != b"\0\0\0\0":
            raise ValueError("server asks for a password: trust auth expected")
        if tag == b"Z":
            if err:
                raise ValueError(f"postgres error {err!r}")
            return


def pg_connect(port, src):
    sock = connect(port, src)
    params = b"user\0postgres\0database\0postgres\0application_name\0soak\0\0"
    body = struct.pack("!I", 196608) + params
    sock.sendall(struct.pack("!I", len(body) + 4) + body)
    r = Reader(sock)
    pg_until_ready(r)
    return sock, r


def run_pg(port, rate, seconds, run_id, res):
    src = Sources("pg")
    sock = reader = None
    for i in Paced(rate, seconds):
        try:
            if sock is None or i % CHURN_DB == 0:
                if sock:
                    sock.sendall(pg_msg(b"X", b""))
                    sock.close()
                sock, reader = pg_connect(port, src.next())
                res.out["connections"] += 1
            sock.sendall(pg_msg(b"Q", f"SELECT {i} AS soak_{run_id}\0".encode()))
            pg_until_ready(reader)
            res.ok()
        except (OSError, EOFError, ValueError) as e:
            res.fail(e)
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.sendall(pg_msg(b"X", b""))
        sock.close()


def run_mc(port, rate, seconds, run_id, res):
    """memcached: set then get of a fresh key, in turn."""
    src = Sources("mc")
    sock = reader = None
    for i in Paced(rate, seconds):
        key = f"soak:{run_id}:{i // 2}"
        try:
            if sock is None or i % CHURN_DB == 0:
                if sock:
                    sock.close()
                sock = connect(port, src.next())
                reader = Reader(sock)
                res.out["connections"] += 1
            if i % 2 == 0:
                sock.sendall(f"set {key} 0 60 16\r\n{'v' * 16}\r\n".encode())
                if reader.until(b"\r\n") != b"STORED":
                    raise ValueError("set not STORED")
            else:
                sock.sendall(f"get {key}\r\n".encode())
                while reader.until(b"\r\n") != b"END":
                    pass
            res.ok()
        except (OSError, EOFError, ValueError) as e:
            res.fail(e)
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


def run_fork(_port, rate, seconds, _run_id, res):
    """Children that exit at once: the pid counter moves RATE per second and wraps at pid_max.
    A wrap is seen when a child's pid is below the one before it."""
    last = wraps = 0
    for _ in Paced(rate, seconds):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        if pid < last:
            wraps += 1
        last = pid
        res.ok()
    res.out["wraps"] = wraps
    with open("/proc/sys/kernel/pid_max") as f:
        res.out["pid_max"] = int(f.read())


RUNNERS = {"ka": run_ka, "proxy": run_proxy, "close": run_close, "h2": run_h2,
           "short": run_short, "redis": run_redis, "pg": run_pg, "mc": run_mc, "fork": run_fork}


def main():
    if len(sys.argv) not in (6, 7) or sys.argv[1] not in RUNNERS:
        sys.exit(__doc__)
    cls, rate, seconds, port, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), \
        int(sys.argv[4]), sys.argv[5]
    run_id = sys.argv[6] if len(sys.argv) == 7 else "0"
    res = Result(cls)
    res.out["rate"] = rate
    t0 = time.monotonic()
    RUNNERS[cls](port, rate, seconds, run_id, res)
    res.out["seconds"] = round(time.monotonic() - t0, 3)
    with open(out + ".tmp", "w") as f:
        json.dump(res.out, f)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
