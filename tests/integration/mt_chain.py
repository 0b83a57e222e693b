# SPDX-License-Identifier: Apache-2.0
"""The three-service chain on loopback, watched by an agent that serves its HTTP listener:
curl -> nginx (reverse proxy) -> backend (Python, OTEL_SERVICE_NAME=backend) -> redis-server.
The `chain` fixture starts it; tests import it (`from mt_chain import chain`)."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from mt_otlp import free_port
from mt_peers import CurlRun, Redis

# The edges the chain makes, by the names the agent gives the services.
CHAIN_EDGES = [("curl", "nginx"), ("nginx", "backend"), ("backend", "redis-server")]


class Chain:
    def __init__(self, agent, nginx, backend, redis, listen_port):
        self.agent = agent
        self.nginx = nginx
        self.backend = backend
        self.redis = redis
        self.port = listen_port
        self.base = f"http://127.0.0.1:{listen_port}"
        self.requests = 0
        self._stop = threading.Event()
        self._thread = None

    def drive(self, rounds=1):
        """Per round, one curl process over one connection: two cached reads (the whole
        chain), one plain call and one failing call."""
        for _ in range(rounds):
            urls = [self.nginx.url(p) for p in ("/api/cache", "/api/ok", "/api/cache",
                                                "/api/fail")]
            CurlRun(urls).run()
            self.requests += len(urls)

    def drive_in_background(self, seconds=90, pause=0.25):
        """Keeps traffic flowing (so rates stay non-zero) until stop() or @seconds pass."""
        deadline = time.monotonic() + seconds

        def loop():
            while not self._stop.is_set() and time.monotonic() < deadline:
                self.drive()
                self._stop.wait(pause)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(30)

    def get(self, path, timeout=10):
        with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
            return r.status, r.headers, r.read()

    def get_json(self, path):
        return json.loads(self.get(path)[2])

    def wait_edges(self, edges=CHAIN_EDGES, timeout=30):
        """Polls /api/graph until every (client, server) edge has requests; returns the graph."""
        deadline = time.monotonic() + timeout
        graph = None
        while time.monotonic() < deadline:
            try:
                graph = self.get_json("/api/graph")
            except (urllib.error.URLError, ValueError, OSError):
                graph = None
            if graph:
                have = {(e["client"], e["server"]) for e in graph.get("edges", [])
                        if e.get("requests", 0) > 0}
                if all(e in have for e in edges):
                    return graph
            time.sleep(0.5)
        seen = sorted((e["client"], e["server"], e.get("requests")) for e in
                      (graph or {}).get("edges", []))
        raise AssertionError(f"/api/graph did not show the edges {edges} within {timeout}s; "
                             f"it shows {seen}")


@pytest.fixture
def chain(tmp_path, agent, make_backend, make_nginx):
    """Starts the agent (listener on a free port), redis-server, the backend and nginx, in that
    order, and drives a few rounds of traffic through the chain."""
    port = free_port()
    ag = agent(["--listen", f"127.0.0.1:{port}"])
    redis = Redis(str(tmp_path)).start()
    try:
        backend = make_backend(redis_port=redis.port)
        nginx = make_nginx(backend.port)
        c = Chain(ag, nginx, backend, redis, port)
        c.drive(rounds=3)
        yield c
        c.stop()
    finally:
        redis.stop()
