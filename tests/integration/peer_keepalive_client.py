# SPDX-License-Identifier: Apache-2.0
"""A keep-alive client that straddles the agent's start.
  peer_keepalive_client.py PORT PATH_BEFORE PATH_AFTER...
Opens one connection, sends GET PATH_BEFORE, prints 'before LOCAL_PORT STATUS', then waits for a
line on stdin; then sends each PATH_AFTER on the same connection and prints 'after LOCAL_PORT
STATUS...'. Exits non-zero if the connection was not reused."""

import http.client
import sys


def get(conn, path):
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def main():
    port, before, after = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    local = conn.sock.getsockname()[1]
    print(f"before {local} {get(conn, before)}", flush=True)
    sys.stdin.readline()
    sock = conn.sock
    statuses = [str(get(conn, p)) for p in after]
    if conn.sock is not sock or conn.sock.getsockname()[1] != local:
        print("connection was not reused", file=sys.stderr)
        sys.exit(1)
    print(f"after {local} {' '.join(statuses)}", flush=True)
    conn.close()


if __name__ == "__main__":
    main()
