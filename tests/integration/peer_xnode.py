# SPDX-License-Identifier: Apache-2.0
"""Peers of test_xnode.py, each run inside a network namespace and a cgroup made by the test.

  server PORT [UPSTREAM_HOST:UPSTREAM_PORT|-] [REDIS_HOST:REDIS_PORT]
                                             HTTP/1.1 keep-alive server (thread per connection);
                                             with an upstream, each GET /x calls GET /c/x there on
                                             the handler thread's own keep-alive connection; with
                                             Redis, each GET /x sends SET x + GET x there in one
                                             write (a pipeline) on the thread's own connection
  client HOST:PORT N PREFIX                  N GETs PREFIX<i> on one keep-alive connection;
                                             prints the mean time per request
  pipeline HOST:PORT BURSTS PREFIX           BURSTS bursts of 3 GETs PREFIX<i> sent before any
                                             answer is read: even bursts in one write, odd ones
                                             in three (TCP_NODELAY); then the 3 answers
  echo PORT                                  POST: answers the body it read, byte for byte
  echo-client HOST:PORT SIZE                 POSTs SIZE random bytes, checks the answer is equal
Servers print 'ready' once listening."""

import http.client
import http.server
import os
import socket
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None
    redis = None
    local = threading.local()

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go in two writes: without this, Nagle + delayed ACK add 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        body = b"ok " + self.path.encode()
        if self.upstream:
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(*self.upstream, timeout=10)
                self.local.conn = conn
            conn.request("GET", "/c" + self.path)
            resp = conn.getresponse()
            body += b" <- " + resp.read()
        if self.redis:
            body += b" <- " + self._redis_pipeline(self.path.encode())
        self._answer(body)

    def _redis_pipeline(self, key):
        r = getattr(self.local, "redis", None)
        if r is None:
            r = socket.create_connection(self.redis, timeout=10)
            r.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.redis = r
        val = b"v" + key
        r.sendall(resp_command(b"SET", key, val) + resp_command(b"GET", key))
        want = b"+OK\r\n$%d\r\n%s\r\n" % (len(val), val)
        got = b""
        while len(got) < len(want):
            chunk = r.recv(4096)
            if not chunk:
                break
            got += chunk
        if got != want:
            raise RuntimeError(f"redis answered {got!r}, expected {want!r}")
        return val

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                break
            data += chunk
        self._answer(data)


def resp_command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def serve(port, upstream=None, redis=None):
    if upstream and upstream != "-":
        host, p = upstream.rsplit(":", 1)
        Handler.upstream = (host, int(p))
    if redis:
        host, p = redis.rsplit(":", 1)
        Handler.redis = (host, int(p))
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.daemon_threads = True
    print("ready", flush=True)
    srv.serve_forever()


def client(target, n, prefix):
    host, port = target.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    t0, c0 = time.monotonic(), time.process_time()
    for i in range(n):
        conn.request("GET", f"{prefix}{i}")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or not body.startswith(b"ok "):
            print(f"bad answer to {prefix}{i}: {resp.status} {body[:80]!r}", flush=True)
            sys.exit(1)
    print(f"us_per_request {(time.monotonic() - t0) * 1e6 / n:.1f}", flush=True)
    print(f"cpu_us_per_request {(time.process_time() - c0) * 1e6 / n:.1f}", flush=True)
    print("done", flush=True)


def read_answer(f):
    """One HTTP/1.1 answer with Content-Length from buffered reader f: (status, body)."""
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, f.read(length)


def pipeline(target, bursts, prefix):
    host, port = target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    for b in range(bursts):
        reqs = [f"GET {prefix}{3 * b + k} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
                for k in range(3)]
        if b % 2 == 0:
            s.sendall(b"".join(reqs))
        else:
            for r in reqs:
                s.sendall(r)
        for k in range(3):
            status, body = read_answer(f)
            if status != 200 or body != f"ok {prefix}{3 * b + k}".encode():
                print(f"bad answer to {prefix}{3 * b + k}: {status} {body[:80]!r}", flush=True)
                sys.exit(1)
    print("done", flush=True)


def echo_client(target, size):
    host, port = target.rsplit(":", 1)
    data = os.urandom(size)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    for _ in range(3):  # keep-alive: each request starts a new option
        conn.request("POST", "/echo", body=data)
        got = conn.getresponse().read()
        if got != data:
            print(f"echo differs: sent {len(data)} bytes, got {len(got)}", flush=True)
            sys.exit(1)
    print("done", flush=True)


def main(argv):
    mode = argv[1]
    if mode == "server":
        serve(int(argv[2]), argv[3] if len(argv) > 3 else None, argv[4] if len(argv) > 4 else None)
    elif mode == "echo":
        serve(int(argv[2]))
    elif mode == "client":
        client(argv[2], int(argv[3]), argv[4])
    elif mode == "pipeline":
        pipeline(argv[2], int(argv[3]), argv[4])
    elif mode == "echo-client":
        echo_client(argv[2], int(argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
