# SPDX-License-Identifier: Apache-2.0
"""An OTLP/gRPC collector for the tests, beside mt_otlp's OTLP/HTTP one: Python grpcio
(Debian's python3-grpcio) serving the official TraceService/Export and MetricsService/Export
methods, with requests and responses (de)serialised by the classes mt_otlp generates from the
official schema in ../shared/otlp-proto. The services are registered as generic handlers under
their official names, so no stubs need compiling (grpc_tools' bundled protoc predates proto3
`optional`, which the schema uses).

Every call is recorded (an attempt log): method, metadata, the decoded request, what was
answered. fail_next() scripts answers: a gRPC status code, optionally with a RetryInfo delay in
grpc-status-details-bin, or a sleep past the client's deadline. TLS and mutual TLS with
make_ca() (a throwaway CA made with the openssl CLI)."""

import os
import subprocess
import threading
import time
from concurrent import futures

import grpc

from mt_otlp import flatten_traces, pb, unknown_fields

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num, data):
    """A length-delimited protobuf field."""
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def rpc_status(code, message, retry_delay_s=None):
    """An encoded google.rpc.Status, with a google.rpc.RetryInfo detail when retry_delay_s is
    given (written by hand: the google.rpc protos are not in the shared schema)."""
    out = _varint(1 << 3 | 0) + _varint(code) + _field(2, message.encode())
    if retry_delay_s is not None:
        secs, nanos = int(retry_delay_s), int(round((retry_delay_s % 1) * 1e9))
        duration = _varint(1 << 3 | 0) + _varint(secs) + \
            (_varint(2 << 3 | 0) + _varint(nanos) if nanos else b"")
        retry_info = _field(1, duration)
        any_ = _field(1, b"type.googleapis.com/google.rpc.RetryInfo") + _field(2, retry_info)
        out += _field(3, any_)
    return out


class Call:
    """One call as the receiver saw it."""

    def __init__(self, method, metadata, decoded, peer=""):
        self.method = method  # "traces" | "metrics"
        self.peer = peer  # "ipv4:127.0.0.1:<client port>": which connection
        self.metadata = metadata  # {key: value}, keys lower-case
        self.decoded = decoded
        self.unknown = unknown_fields(decoded)
        self.time = time.time()
        self.code = "OK"  # what the receiver answered (grpc.StatusCode name)

    def span_ids(self):
        return {s.span_id for rs in self.decoded.resource_spans for ss in rs.scope_spans
                for s in ss.spans} if self.method == "traces" else set()


class Failure:
    def __init__(self, code, retry_delay_s=None, sleep_s=0.0, message="scripted by the test"):
        self.code = code  # grpc.StatusCode, or None to answer OK after sleep_s
        self.retry_delay_s = retry_delay_s
        self.sleep_s = sleep_s
        self.message = message


class GrpcReceiver:
    """Listens on 127.0.0.1:<ephemeral>; plaintext (h2c), TLS, or mutual TLS."""

    def __init__(self, tls=None, client_auth=False, port=0):
        self.tls = tls  # a dict from make_ca(), or None
        self.client_auth = client_auth
        self.calls = []
        self.lock = threading.Lock()
        self._failures = []
        self.server = None
        self.port = port

    @property
    def endpoint(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _handle(self, method, request, context):
        md = {k.lower(): v for k, v in context.invocation_metadata()}
        call = Call(method, md, request, context.peer())
        fail = self._take_failure(method)
        with self.lock:
            self.calls.append(call)
        if fail and fail.sleep_s:
            if fail.code is None:
                call.code = "LATE"  # answered OK, but after the client's deadline
            time.sleep(fail.sleep_s)
        if fail and fail.code is not None:
            call.code = fail.code.name
            if fail.retry_delay_s is not None:
                context.set_trailing_metadata((("grpc-status-details-bin", rpc_status(
                    fail.code.value[0], fail.message, fail.retry_delay_s)),))
            context.abort(fail.code, fail.message)
        if method == "traces":
            return pb("trace_service").ExportTraceServiceResponse()
        return pb("metrics_service").ExportMetricsServiceResponse()

    def start(self):
        ts, ms = pb("trace_service"), pb("metrics_service")
        handlers = [
            grpc.method_handlers_generic_handler(TRACE_SERVICE, {
                "Export": grpc.unary_unary_rpc_method_handler(
                    lambda req, ctx: self._handle("traces", req, ctx),
                    request_deserializer=ts.ExportTraceServiceRequest.FromString,
                    response_serializer=ts.ExportTraceServiceResponse.SerializeToString)}),
            grpc.method_handlers_generic_handler(METRICS_SERVICE, {
                "Export": grpc.unary_unary_rpc_method_handler(
                    lambda req, ctx: self._handle("metrics", req, ctx),
                    request_deserializer=ms.ExportMetricsServiceRequest.FromString,
                    response_serializer=ms.ExportMetricsServiceResponse.SerializeToString)}),
        ]
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=handlers)
        if self.tls:
            creds = grpc.ssl_server_credentials(
                [(self.tls["server_key"], self.tls["server_cert"])],
                root_certificates=self.tls["ca_cert"] if self.client_auth else None,
                require_client_auth=self.client_auth)
            self.port = self.server.add_secure_port(f"127.0.0.1:{self.port}", creds)
        else:
            self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()
        return self

    def stop(self):
        if self.server:
            self.server.stop(0)
            self.server = None

    def fail_next(self, count, code, retry_delay_s=None, sleep_s=0.0, method="traces"):
        """Answers the next `count` calls of `method` with `code` (a grpc.StatusCode; None = OK
        after sleeping sleep_s), with RetryInfo(retry_delay_s) when given."""
        with self.lock:
            self._failures += [(method, Failure(code, retry_delay_s, sleep_s))] * count

    def _take_failure(self, method):
        with self.lock:
            for i, (m, f) in enumerate(self._failures):
                if m == method:
                    del self._failures[i]
                    return f
        return None

    def trace_calls(self, accepted_only=True):
        with self.lock:
            return [c for c in self.calls if c.method == "traces" and
                    (c.code == "OK" or not accepted_only)]

    def metrics_calls(self):
        with self.lock:
            return [c for c in self.calls if c.method == "metrics"]

    def spans(self):
        out = []
        for c in self.trace_calls():
            out += flatten_traces(c.decoded)
        return out

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.05)


def make_ca(directory):
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with
    the openssl CLI into `directory`. Returns paths (…_path) and PEM bytes."""
    d = str(directory)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    p = {k: os.path.join(d, f"{k}.pem") for k in
         ("ca_key", "ca_cert", "server_key", "server_cert", "client_key", "client_cert")}
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca_key"], "-out",
        p["ca_cert"], "-days", "2", "-subj", "/CN=meshtrace test CA")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                     ("client", "extendedKeyUsage=clientAuth")):
        csr = os.path.join(d, f"{who}.csr")
        extfile = os.path.join(d, f"{who}.ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p[f"{who}_key"], "-out", csr,
            "-subj", f"/CN=meshtrace test {who}")
        run("x509", "-req", "-in", csr, "-CA", p["ca_cert"], "-CAkey", p["ca_key"],
            "-CAcreateserial", "-out", p[f"{who}_cert"], "-days", "2", "-extfile", extfile)
    out = {f"{k}_path": v for k, v in p.items()}
    for k, v in p.items():
        with open(v, "rb") as f:
            out[k] = f.read()
    return out
