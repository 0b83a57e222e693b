# SPDX-License-Identifier: Apache-2.0
"""The gRPC peers of test_grpc.py: a grpcio server and a client for mt.test.Greeter
(peer_grpc.proto; stubs generated into STUBDIR by mt_peers.generate_grpc_stubs).
  peer_grpc.py server STUBDIR PORT      prints 'ready PORT', serves until SIGTERM
  peer_grpc.py client STUBDIR PORT PLAN prints one JSON line: what it called and got
PLAN is JSON: {"unary": N, "stream": [count, ...], "not_found": N, "internal": N,
"concurrent": N} (concurrent calls are Hello futures in flight together on one channel, each
held 300 ms by the server)."""

import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, sys.argv[2])
import peer_grpc_pb2 as pb  # noqa: E402
import peer_grpc_pb2_grpc as pb_grpc  # noqa: E402


class Greeter(pb_grpc.GreeterServicer):
    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def _count(self):
        with self.lock:
            self.calls += 1

    def Hello(self, request, context):
        self._count()
        time.sleep(request.count / 1000)  # count: milliseconds to hold the call
        return pb.HelloReply(message="hello " + request.name)

    def Lookup(self, request, context):
        self._count()
        context.abort(grpc.StatusCode.NOT_FOUND, "no such name: " + request.name)

    def Broken(self, request, context):
        self._count()
        context.abort(grpc.StatusCode.INTERNAL, "induced failure")

    def Countdown(self, request, context):
        self._count()
        for i in range(request.count, 0, -1):
            yield pb.HelloReply(message=f"{request.name} {i}")


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                         options=[("grpc.max_concurrent_streams", 200)])
    pb_grpc.add_GreeterServicer_to_server(Greeter(), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"ready {port}", flush=True)
    done.wait()
    server.stop(1).wait()


def call(port, plan):
    out = {"pid": os.getpid(), "calls": []}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = pb_grpc.GreeterStub(channel)

        def record(method, code, replies=1):
            out["calls"].append({"method": method, "code": code.name, "replies": replies})

        for i in range(plan.get("unary", 0)):
            stub.Hello(pb.HelloRequest(name=f"u{i}"), timeout=10)
            record("mt.test.Greeter/Hello", grpc.StatusCode.OK)
        for count in plan.get("stream", []):
            replies = list(stub.Countdown(pb.HelloRequest(name="s", count=count), timeout=10))
            record("mt.test.Greeter/Countdown", grpc.StatusCode.OK, len(replies))
        for method, n in (("Lookup", plan.get("not_found", 0)), ("Broken", plan.get("internal", 0))):
            for i in range(n):
                try:
                    getattr(stub, method)(pb.HelloRequest(name=f"e{i}"), timeout=10)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    code = e.code()
                record(f"mt.test.Greeter/{method}", code)
        n = plan.get("concurrent", 0)
        if n:
            # All in flight at once on the channel's one connection: the server holds each for
            # 300 ms, and they are issued 2 ms apart (so each request is its own write, as an
            # application issuing calls would do, rather than one batch beyond any capture).
            futs = []
            for i in range(n):
                futs.append(stub.Hello.future(pb.HelloRequest(name=f"c{i}", count=300),
                                              timeout=20))
                time.sleep(0.002)
            for f in futs:
                f.result()
                record("mt.test.Greeter/Hello", grpc.StatusCode.OK)
    print(json.dumps(out), flush=True)


def main():
    role, port = sys.argv[1], int(sys.argv[3])
    if role == "server":
        serve(port)
    else:
        call(port, json.loads(sys.argv[4]))


if __name__ == "__main__":
    main()
