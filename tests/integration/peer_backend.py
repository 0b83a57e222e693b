# SPDX-License-Identifier: Apache-2.0
"""The proxied backend: a small HTTP/1.1 server (keep-alive, Content-Length on every answer).
  peer_backend.py PORT LOGFILE [REDIS_PORT]
Prints 'ready PORT' once listening. Logs 'METHOD PATH STATUS CLIENT_PORT' per answer to LOGFILE.
  /api/ok 200, /api/fail 500, /api/slow 200 after 50 ms, anything else 404.
  With REDIS_PORT: /api/cache does INCR on redis-server at 127.0.0.1:REDIS_PORT (one keep-alive
  connection per handler thread, plain RESP) and answers 200 with the count (502 if redis failed)."""

import http.server
import socket
import sys
import threading
import time

LOG = None
REDIS_PORT = 0
LOCAL = threading.local()


def redis_incr(key):
    """INCR key over this thread's connection; returns the integer reply."""
    conn = getattr(LOCAL, "redis", None)
    if conn is None:
        conn = LOCAL.redis = socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=5)
    k = key.encode()
    conn.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(k), k))
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = conn.recv(64)
        if not chunk:
            LOCAL.redis = None
            raise ConnectionError("redis closed the connection")
        reply += chunk
    if not reply.startswith(b":"):
        raise ConnectionError(f"redis answered {reply!r}")
    return int(reply[1:-2])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mt-backend"

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        LOG.write(f"{self.command} {self.path} {int(code)} {self.client_address[1]}\n")
        LOG.flush()

    def _answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?")[0]
        if path == "/api/ok":
            self._answer(200, b'{"ok":true}\n')
        elif path == "/api/fail":
            self._answer(500, b'{"ok":false,"error":"induced failure"}\n')
        elif path == "/api/slow":
            time.sleep(0.05)
            self._answer(200, b'{"ok":true,"slow":true}\n')
        elif path == "/api/cache" and REDIS_PORT:
            try:
                n = redis_incr("meshtrace:hits")
                self._answer(200, b'{"ok":true,"hits":%d}\n' % n)
            except OSError:
                LOCAL.redis = None
                self._answer(502, b'{"ok":false,"error":"redis"}\n')
        else:
            self._answer(404, b'{"error":"not found"}\n')

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _route


def main():
    global LOG, REDIS_PORT
    port, LOG = int(sys.argv[1]), open(sys.argv[2], "a")
    if len(sys.argv) > 3:
        REDIS_PORT = int(sys.argv[3])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
