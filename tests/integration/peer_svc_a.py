# SPDX-License-Identifier: Apache-2.0
"""Service A of the trace-linking tests: a thread-per-request HTTP/1.1 server (ThreadingHTTPServer:
one thread per connection, requests on it in order) that calls service B for every request.
  peer_svc_a.py PORT B_PORT
Prints 'ready PORT' once listening. GET /<mode>/<rest> calls B with GET /<rest> and answers 200
with B's body (502 if B failed):
  mode 'new': a new connection to B for this call, closed after it;
  mode 'ka':  the handler thread's own keep-alive connection to B (made on its first call).
A 'traceparent' header on the request to A is not forwarded (A is uninstrumented)."""

import http.client
import http.server
import sys
import threading

B_PORT = 0
LOCAL = threading.local()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mt-svc-a"

    def log_message(self, fmt, *args):
        pass

    def _call_b(self, mode, path):
        if mode == "ka":
            conn = getattr(LOCAL, "conn", None)
            if conn is None:
                conn = LOCAL.conn = http.client.HTTPConnection("127.0.0.1", B_PORT, timeout=10)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", B_PORT, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if mode == "ka":
                LOCAL.conn = None
            return 502, f"call to B failed: {e}\n".encode()
        finally:
            if mode != "ka":
                conn.close()

    def do_GET(self):
        parts = self.path.split("/", 2)
        if len(parts) < 3 or parts[1] not in ("new", "ka"):
            body, code = b"use /new/... or /ka/...\n", 404
        else:
            code, body = self._call_b(parts[1], "/" + parts[2])
            if code != 200:
                code = 502
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    global B_PORT
    port, B_PORT = int(sys.argv[1]), int(sys.argv[2])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
