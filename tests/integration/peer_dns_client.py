# SPDX-License-Identifier: Apache-2.0
"""Looks NAME up through the C library (getaddrinfo, so /etc/resolv.conf) and makes COUNT HTTP
GETs to it, one connection each, as any program would.
  peer_dns_client.py NAME PORT COUNT
Prints the address it resolved and each status."""

import http.client
import socket
import sys
import time


def main():
    name, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    addr = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    print(addr, flush=True)
    for _ in range(count):
        conn = http.client.HTTPConnection(name, port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        print(resp.status, flush=True)
        conn.close()
    # The agent reads a process's environment (OTEL_SERVICE_NAME) from /proc when it handles
    # the process's events, every 50 ms or later under load: a process gone by then is named
    # by its thread name instead. Stay a moment.
    time.sleep(1)


if __name__ == "__main__":
    main()
