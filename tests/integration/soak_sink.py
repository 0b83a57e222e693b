#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The soak's OTLP/HTTP receiver, in a process of its own: it decodes every trace request with
the official schema's classes (mt_otlp), counts spans per load class and side, and keeps no span.

  soak_sink.py PORT_FILE CONFIG_JSON

CONFIG_JSON: {"ports": {"<server port>": "<class>"}, "octets": {"<2nd octet>": "<class>"}}.
A span belongs to a class by the far end of its connection: a CLIENT span by its server.port,
a SERVER span by its peer's loopback source address 127.<octet>.x.y (every load class that can
choose its source address connects from its own 127.<octet>/16; see soak_load.py), else by the
server port, which only the soak's servers listen on. HTTP spans also carry the request's sequence number in
their path (/<class>/<run>/<seq>): a sequence number seen twice on one side is a duplicate,
counted apart. GET /counts answers the counts as JSON."""

import gzip
import http.server
import json
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mt_otlp  # noqa: E402

HTTP_CLASSES = ("ka", "close", "h2", "short", "proxy", "up")
PATH_CLASS = {"up": "proxy"}  # nginx passes the proxied request's path on unchanged
PROCESS_CLASSES = ("short", "h2")  # client processes whose (pid, service) are checked


class Counts:
    def __init__(self, cfg):
        self.ports = {int(k): v for k, v in cfg["ports"].items()}
        self.octets = {int(k): v for k, v in cfg["octets"].items()}
        self.lock = threading.Lock()
        self.classes = {}
        self.seen = {}		# (class, kind) -> set of sequence numbers
        self.duplicates = {}
        self.bad_path = {}
        self.procs = {}		# "class:seq" -> [pid, service] of the CLIENT span
        self.other = {}		# spans of no class, by (kind, service, name), for the report
        self.trace_posts = self.metrics_posts = self.spans = self.bytes = 0
        self.h2_version_wrong = 0

    def classify(self, kind, a):
        if kind == "SERVER":
            peer = a.get("client.address") or a.get("network.peer.address") or ""
            parts = peer.split(".")
            if len(parts) == 4 and parts[0] == "127" and parts[1].isdigit() and \
                    int(parts[1]) in self.octets:
                return self.octets[int(parts[1])]
        # Clients that cannot choose their source address (nghttp): the server's own port.
        return self.ports.get(a.get("server.port"))

    def add_span(self, span, res):
        kind = {2: "SERVER", 3: "CLIENT"}.get(span.kind, str(span.kind))
        a = mt_otlp.attrs(span.attributes)
        cls = self.classify(kind, a)
        if cls is None:
            key = f"{kind} {res.get('service.name')} {span.name}"
            self.other[key] = self.other.get(key, 0) + 1
            return
        path = a.get("url.path") or urllib.parse.urlsplit(a.get("url.full", "")).path
        if cls == "http1":  # the HTTP/1 classes share a port: the path's first part says which
            cls = path.split("/")[1] if path.count("/") >= 1 else ""
            if cls not in HTTP_CLASSES:
                cls = "http1_unknown"
        name = f"{cls}.{kind.lower()}"
        self.classes[name] = self.classes.get(name, 0) + 1
        if cls not in HTTP_CLASSES:
            return
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != PATH_CLASS.get(cls, cls) or not parts[3].isdigit():
            self.bad_path[name] = self.bad_path.get(name, 0) + 1
            return
        seq = int(parts[3])
        seen = self.seen.setdefault(name, set())
        if seq in seen:
            self.duplicates[name] = self.duplicates.get(name, 0) + 1
        seen.add(seq)
        if cls == "h2" and a.get("network.protocol.version") != "2":
            self.h2_version_wrong += 1
        if cls in PROCESS_CLASSES and kind == "CLIENT":
            self.procs[f"{cls}:{seq}"] = [res.get("process.pid"), res.get("service.name")]

    def add_traces(self, body):
        req = mt_otlp.pb("trace_service").ExportTraceServiceRequest()
        req.ParseFromString(body)
        with self.lock:
            self.trace_posts += 1
            for rs in req.resource_spans:
                res = mt_otlp.attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans += 1
                        self.add_span(span, res)

    def snapshot(self):
        with self.lock:
            return {"classes": dict(self.classes), "duplicates": dict(self.duplicates),
                    "bad_path": dict(self.bad_path), "procs": dict(self.procs),
                    "other": dict(sorted(self.other.items(), key=lambda kv: -kv[1])[:40]),
                    "other_total": sum(self.other.values()),
                    "trace_posts": self.trace_posts, "metrics_posts": self.metrics_posts,
                    "spans": self.spans, "bytes": self.bytes,
                    "h2_version_wrong": self.h2_version_wrong}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the agent's libcurl expects

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, body=b"", ctype="application/x-protobuf"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/counts":
            return self.answer(404)
        self.answer(200, json.dumps(self.server.counts.snapshot()).encode(), "application/json")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        counts = self.server.counts
        with counts.lock:
            counts.bytes += n
        if self.headers.get("Content-Encoding", "") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            counts.add_traces(body)
        elif self.path == "/v1/metrics":
            with counts.lock:
                counts.metrics_posts += 1
        else:
            return self.answer(404)
        self.answer(200)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    mt_otlp.generate_proto()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.counts = Counts(cfg)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
