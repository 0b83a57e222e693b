# SPDX-License-Identifier: Apache-2.0
"""The Job-like pod's work in the Kubernetes naming tests: COUNT rounds, INTERVAL seconds apart,
of one HTTP GET to each URL and one Redis PING to REDIS (host:port), each on a new connection;
then it exits (a Job's pod ends).
  peer_k8s_client.py COUNT INTERVAL REDIS URL..."""

import socket
import sys
import time
import urllib.request


def redis_ping(addr):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        s.recv(64)


def main():
    count, interval, redis, urls = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    for _ in range(count):
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    r.read()
            except OSError as e:
                print(f"GET {url}: {e}", flush=True)
        try:
            redis_ping(redis)
        except OSError as e:
            print(f"PING {redis}: {e}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
