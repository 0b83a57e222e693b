# SPDX-License-Identifier: Apache-2.0
"""Clients for tests/integration/test_databases.py that need exact control of what goes on the
wire (one write for a whole pipeline, a subscriber that waits for pushes). 127.0.0.1 only.

  peer_db_client.py redis-pipeline PORT N     N commands in one write, then read N replies
  peer_db_client.py redis-sub PORT RESP N      (RESP 2|3) SUBSCRIBE news, print "subscribed",
                                               read N messages, UNSUBSCRIBE, PING, exit
  peer_db_client.py memcached PORT             a fixed memcached session (see MEMCACHED)

Each prints one JSON line with what it sent and got; exits non-zero on any surprise."""

import json
import socket
import sys

TIMEOUT = 10


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def resp(self):
        """One RESP2/RESP3 value (attributes skipped)."""
        line = self.line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-", b":", b",", b"(", b"#", b"_"):
            return (t, rest)
        if t in (b"$", b"=", b"!"):
            n = int(rest)
            if n < 0:
                return (t, None)
            data = self.exact(n + 2)[:-2]
            return (t, data)
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(rest)
            if n < 0:
                return (t, None)
            if t in (b"%", b"|"):
                n *= 2
            items = [self.resp() for _ in range(n)]
            if t == b"|":
                return self.resp()
            return (t, items)
        raise ValueError(f"not RESP: {line!r}")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def pipeline_plan(n):
    """(command args, expected reply kind) for each of the n commands; index 42 fails."""
    plan = []
    for i in range(n):
        if i == 42:
            plan.append((("LPUSH", "pipe:str", "x"), b"-"))
        elif i % 3 == 0:
            plan.append((("SET", "pipe:str", i), b"+"))
        elif i % 3 == 1:
            plan.append((("GET", "pipe:str"), b"$"))
        else:
            plan.append((("INCR", "pipe:n"), b":"))
    return plan


def redis_pipeline(port, n):
    s = connect(port)
    r = Reader(s)
    plan = pipeline_plan(n)
    s.sendall(b"".join(resp_cmd(*args) for args, _ in plan))  # one write
    kinds = []
    for _args, want in plan:
        t, _v = r.resp()
        kinds.append(t.decode())
        if t != want:
            raise AssertionError(f"reply {t!r}, expected {want!r}")
    s.close()
    return {"ops": [args[0] for args, _ in plan], "replies": kinds}


def redis_sub(port, proto, n):
    s = connect(port)
    r = Reader(s)
    sent = []

    def send(*args):
        sent.append(args[0])
        s.sendall(resp_cmd(*args))

    if proto == 3:
        send("HELLO", 3)
        r.resp()
    send("SUBSCRIBE", "news")
    t, v = r.resp()
    assert v[0][1] == b"subscribe", v
    print("subscribed", flush=True)
    got = []
    while len(got) < n:
        t, v = r.resp()
        assert t in (b"*", b">") and v[0][1] == b"message", (t, v)
        got.append(v[2][1].decode())
    send("UNSUBSCRIBE", "news")
    t, v = r.resp()
    assert v[0][1] == b"unsubscribe", v
    send("PING")
    t, v = r.resp()
    s.close()
    return {"sent": sent, "messages": got}


# (request bytes, expected response prefix, operation, error word or "")
MEMCACHED = [
    (b"set user:1 0 0 5\r\nalice\r\n", b"STORED", "set", ""),
    (b"get user:1\r\n", b"VALUE user:1", "get", ""),
    (b"add user:1 0 0 3\r\nbob\r\n", b"NOT_STORED", "add", ""),
    (b"set user:2 5 60 3\r\nbob\r\n", b"STORED", "set", ""),
    (b"get user:1 user:2 nokey\r\n", b"VALUE user:1", "get", ""),
    (b"gets user:1\r\n", b"VALUE user:1", "gets", ""),
    (b"delete user:2\r\n", b"DELETED", "delete", ""),
    (b"delete user:2\r\n", b"NOT_FOUND", "delete", ""),
    (b"set n 0 0 1\r\n5\r\n", b"STORED", "set", ""),
    (b"incr n 10\r\n", b"15", "incr", ""),
    (b"decr n 3\r\n", b"12", "decr", ""),
    (b"incr user:1 1\r\n", b"CLIENT_ERROR", "incr", "CLIENT_ERROR"),
    (b"touch n 100\r\n", b"TOUCHED", "touch", ""),
    # longer than the agent's default capture (512 bytes per call): skipped by count
    (b"set big 0 0 3000\r\n" + b"y" * 3000 + b"\r\n", b"STORED", "set", ""),
    (b"get big\r\n", b"VALUE big", "get", ""),
    (b"bogus\r\n", b"ERROR", "unknown", "ERROR"),
    (b"mn\r\n", b"MN", "mn", ""),
]


def memcached(port):
    s = connect(port)
    got = []
    for req, want, _op, _err in MEMCACHED:
        s.sendall(req)
        buf = b""
        # read a whole response: up to END for retrievals, one line otherwise
        while True:
            data = s.recv(65536)
            if not data:
                raise EOFError("memcached closed the connection")
            buf += data
            if want.startswith(b"VALUE"):
                if buf.endswith(b"END\r\n"):
                    break
            elif buf.endswith(b"\r\n"):
                break
        if not buf.startswith(want):
            raise AssertionError(f"{req[:30]!r}: got {buf[:60]!r}, expected {want!r}")
        got.append(buf.split(b"\r\n", 1)[0].decode(errors="replace"))
    s.close()
    return {"responses": got}


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "redis-pipeline":
        out = redis_pipeline(port, int(sys.argv[3]))
    elif cmd == "redis-sub":
        out = redis_sub(port, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "memcached":
        out = memcached(port)
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
