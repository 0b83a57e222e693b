# SPDX-License-Identifier: Apache-2.0
"""HTTP/1.1 bodies far longer than the capture, over raw sockets, for test_skip.py.
  peer_longbody.py server          listens on 127.0.0.1:0, prints its port, serves until killed:
      GET /cl/N        Content-Length body of N bytes, written 16 KiB per send()
      GET /chunked/N   chunked body of N bytes in 64 KiB chunks (size line, data 16 KiB per
                       send(), CRLF: separate calls)
      GET /file/N      Content-Length body of N bytes sent with sendfile() (count-only events)
      GET /lie/N       says Content-Length: N, sends 10 bytes: a server that lies
      POST /up         reads the request body (Content-Length), answers 201 "ok"
  peer_longbody.py client PORT     the scenario below; prints one JSON line per request:
      {"port": local port, "method", "path", "status", "body": response body bytes,
       "req_body": request body bytes}
  peer_longbody.py greedy PORT    three requests pipelined, all three responses read at once
  peer_longbody.py liar PORT N     keep-alive: GET /lie/N, reads the head and 10 bytes, then
                       N plain GET /cl/100 on the same connection; prints the same JSON lines
Reads are recv(16384), never past the end of a body or chunk (a size line: recv(64)): many receive
calls per body. LONGBODY_PACE_MS:
a pause after each 16 KiB of a body sent."""

import json
import os
import socket
import sys
import tempfile
import threading
import time

STEP = 16384
LINE_STEP = 64


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        d = sock.recv(STEP)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def header(head, name):
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def read_exact(sock, buf, n):
    """Reads n body bytes (buf first); returns what is left over."""
    while len(buf) < n:
        # Never past the body: the next message starts a receive call, where its start is
        # captured (a size line deep inside a call is past the capture: framing lost).
        d = sock.recv(min(STEP, n - len(buf)))
        if not d:
            raise EOFError("connection closed inside a body")
        buf += d
    return buf[n:]


def read_line(sock, buf):
    while b"\r\n" not in buf:
        # A few bytes at a time: what comes with a chunk's size line stays inside the capture.
        # (Read with STEP, the last size line, its data, the final chunk and the next
        # pipelined response can come in one receive, that response's head far past the
        # capture: unseen. The agent then ends its request's span unanswered, not in error.)
        d = sock.recv(LINE_STEP)
        if not d:
            raise EOFError("connection closed inside a chunked body")
        buf += d
    line, rest = buf.split(b"\r\n", 1)
    return line, rest


PACE_S = float(os.environ.get("LONGBODY_PACE_MS", "0")) / 1000


def send_in_steps(sock, data):
    """16 KiB per send(); with LONGBODY_PACE_MS, a pause after each: a body streamed as it is
    produced (a proxy relaying, a generated report), not one already in memory."""
    for i in range(0, len(data), STEP):
        sock.sendall(data[i:i + STEP])
        if PACE_S:
            time.sleep(PACE_S)


# ---- server ----

def serve_conn(c, files):
    buf = b""
    try:
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            method, path = head.split(" ")[:2]
            n_req = int(header(head, "content-length") or 0)
            buf = read_exact(c, buf, n_req)
            kind, _, arg = path[1:].split("?")[0].partition("/")
            n = int(arg) if arg.isdigit() else 0
            if method == "POST":
                c.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
            elif kind == "cl":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                send_in_steps(c, b"x" * n)
            elif kind == "chunked":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                left = n
                while left:
                    k = min(left, 65536)
                    c.sendall(b"%x\r\n" % k)
                    send_in_steps(c, b"y" * k)
                    c.sendall(b"\r\n")
                    left -= k
                c.sendall(b"0\r\n\r\n")
            elif kind == "file":
                if n not in files:
                    f = tempfile.TemporaryFile()
                    f.write(b"z" * n)
                    files[n] = f
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                c.sendfile(files[n], 0, n)
            elif kind == "lie":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                c.sendall(b"0123456789")
            else:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    except (OSError, EOFError):
        pass
    finally:
        c.close()


def server():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    files = {}
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve_conn, args=(c, files), daemon=True).start()


# ---- client ----

def request_bytes(method, path, body=0):
    head = f"{method} {path} HTTP/1.1\r\nHost: longbody\r\n"
    if method == "POST":
        head += f"Content-Length: {body}\r\n"
    return (head + "\r\n").encode()


def read_response(sock, buf):
    """One response: (status, body bytes, leftover)."""
    head, buf = read_head(sock, buf)
    if head is None:
        raise EOFError("connection closed before a response")
    status = int(head.split(" ")[1])
    if (header(head, "transfer-encoding") or "").lower() == "chunked":
        total = 0
        while True:
            line, buf = read_line(sock, buf)
            k = int(line.split(b";")[0], 16)
            if k == 0:
                _, buf = read_line(sock, buf)  # no trailers: the empty line
                return status, total, buf
            buf = read_exact(sock, buf, k + 2)
            total += k
    n = int(header(head, "content-length") or 0)
    return status, n, read_exact(sock, buf, n)


def report(sock, method, path, status, body, req_body=0):
    print(json.dumps({"port": sock.getsockname()[1], "method": method, "path": path,
                      "status": status, "body": body, "req_body": req_body}), flush=True)


def client(port):
    # A: keep-alive, one request at a time.
    a = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for rnd in range(2):
        for path in (f"/cl/{1 << 20}?r={rnd}", f"/chunked/{300000}?r={rnd}",
                     f"/file/{262144}?r={rnd}", f"/cl/100?r={rnd}"):
            a.sendall(request_bytes("GET", path))
            status, n, buf = read_response(a, buf)
            report(a, "GET", path, status, n)
        up = 300000
        a.sendall(request_bytes("POST", f"/up?r={rnd}", up))
        send_in_steps(a, b"u" * up)
        status, n, buf = read_response(a, buf)
        report(a, "POST", f"/up?r={rnd}", status, n, up)
    a.close()
    # B: three requests pipelined in one send().
    b = socket.create_connection(("127.0.0.1", port))
    paths = ["/cl/200000?p=1", "/chunked/200000?p=2", "/cl/50?p=3"]
    b.sendall(b"".join(request_bytes("GET", p) for p in paths))
    buf = b""
    for p in paths:
        status, n, buf = read_response(b, buf)
        report(b, "GET", p, status, n)
    b.close()


class Greedy:
    """A socket read the way clients with a big buffer read: all that is there, each time."""

    def __init__(self, sock):
        self.sock = sock

    def recv(self, _n):
        return self.sock.recv(1 << 20)

    def getsockname(self):
        return self.sock.getsockname()


def greedy(port):
    """Three requests pipelined, read only once every response is in: the first receive brings
    all three, the heads of the second and third far past the capture (unseen)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", port))
    paths = ["/cl/20000?g=1", "/chunked/20000?g=2", "/cl/50?g=3"]
    s.sendall(b"".join(request_bytes("GET", p) for p in paths))
    time.sleep(0.5)
    g, buf = Greedy(s), b""
    for p in paths:
        status, n, buf = read_response(g, buf)
        report(s, "GET", p, status, n)
    s.close()


def liar(port, n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request_bytes("GET", "/lie/20000"))
    head, buf = read_head(s, b"")
    buf = read_exact(s, buf, 10)
    report(s, "GET", "/lie/20000", int(head.split(" ")[1]), 10)
    for i in range(n):
        path = f"/cl/100?after={i}"
        s.sendall(request_bytes("GET", path))
        status, k, buf = read_response(s, buf)
        report(s, "GET", path, status, k)
    s.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    elif sys.argv[1] == "client":
        client(int(sys.argv[2]))
    elif sys.argv[1] == "greedy":
        greedy(int(sys.argv[2]))
    else:
        liar(int(sys.argv[2]), int(sys.argv[3]))
    os._exit(0)
