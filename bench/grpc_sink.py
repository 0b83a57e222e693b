#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/grpc_sink.py: the benchmark's OTLP/gRPC receiver on 127.0.0.1 (Debian's
python3-grpcio), for figure 7's gRPC side. Answers every TraceService/Export and
MetricsService/Export call OK with an empty response, counting calls and request bytes
without decoding them (grpcio inflates gzip'd messages itself). Writes the chosen port to
PORT_FILE once listening; on SIGTERM writes {"calls": N, "bytes": B} to OUT_JSON.

Usage: grpc_sink.py PORT_FILE OUT_JSON"""

import json
import signal
import sys
import threading
from concurrent import futures

import grpc


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    port_file, out_json = sys.argv[1], sys.argv[2]
    counts = {"calls": 0, "bytes": 0}
    lock = threading.Lock()

    def export(req, _ctx):
        with lock:
            counts["calls"] += 1
            counts["bytes"] += len(req)
        return b""

    def handler(service):
        return grpc.method_handlers_generic_handler(service, {
            "Export": grpc.unary_unary_rpc_method_handler(
                export, request_deserializer=lambda b: b, response_serializer=lambda b: b)})

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[
        handler("opentelemetry.proto.collector.trace.v1.TraceService"),
        handler("opentelemetry.proto.collector.metrics.v1.MetricsService")])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(port_file, "w") as f:
        f.write(f"{port}\n")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(0)
    with open(out_json, "w") as f:
        json.dump(counts, f)
        f.write("\n")


if __name__ == "__main__":
    main()
