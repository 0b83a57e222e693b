# SPDX-License-Identifier: Apache-2.0
"""The tests' own view of OTLP: Python classes generated from the official schema in
../shared/otlp-proto (never from the product's .proto subset), an OTLP/HTTP receiver,
and helpers that flatten decoded spans into plain dicts shaped like the agent's JSONL."""

import gzip
import http.server
import importlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYPROTO = os.path.join(REPO, "build", "pyproto")

_pb = {}


def shared_dir():
    """The shared folder beside the repository, or $MESHTRACE_SHARED."""
    return os.environ.get("MESHTRACE_SHARED") or os.path.join(REPO, "..", "shared")


def generate_proto():
    """Generates Python classes from the official OTLP schema into build/pyproto and imports
    them. Raises RuntimeError naming the cause when the schema or protoc is missing."""
    if _pb:
        return _pb
    src = os.path.join(shared_dir(), "otlp-proto")
    protos = []
    for root, _dirs, files in os.walk(src):
        protos += [os.path.relpath(os.path.join(root, f), src) for f in files if f.endswith(".proto")]
    if not protos:
        raise RuntimeError(f"no .proto files under {src}: set MESHTRACE_SHARED to the shared folder")
    if not shutil.which("protoc"):
        raise RuntimeError("protoc not found: run 'sudo make deps' (protobuf-compiler)")
    out = PYPROTO
    tmp = f"{out}.tmp.{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    except PermissionError:  # build/ not writable (a non-root run after a root build)
        out = tempfile.mkdtemp(prefix="meshtrace-pyproto-")
        tmp = os.path.join(out, "gen")
        os.makedirs(tmp)
    subprocess.run(["protoc", "-I", src, f"--python_out={tmp}"] + sorted(protos), check=True)
    # Regular packages, so that no other 'opentelemetry' on sys.path can shadow these.
    for root, _dirs, _files in os.walk(tmp):
        open(os.path.join(root, "__init__.py"), "a").close()
    if out == PYPROTO:
        shutil.rmtree(PYPROTO, ignore_errors=True)
        os.rename(tmp, PYPROTO)
    else:
        out = tmp
    sys.path.insert(0, out)
    base = "opentelemetry.proto."
    _pb["trace_service"] = importlib.import_module(base + "collector.trace.v1.trace_service_pb2")
    _pb["metrics_service"] = importlib.import_module(base + "collector.metrics.v1.metrics_service_pb2")
    _pb["trace"] = importlib.import_module(base + "trace.v1.trace_pb2")
    _pb["common"] = importlib.import_module(base + "common.v1.common_pb2")
    _pb["resource"] = importlib.import_module(base + "resource.v1.resource_pb2")
    return _pb


def pb(name):
    return generate_proto()[name]


# ---------------------------------------------------------------- flattening


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attrs(kvs):
    out = {}
    for kv in kvs:
        assert kv.key not in out, f"attribute {kv.key!r} appears twice"
        out[kv.key] = any_value(kv.value)
    return out


def unknown_fields(msg, path="request"):
    """Lists the paths of fields the official schema does not know (wrong field numbers or wire
    types in what the agent sent)."""
    found = []
    try:
        if len(msg.UnknownFields()):
            found.append(path)
    except (AttributeError, NotImplementedError):
        return found
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.label == field.LABEL_REPEATED:
            if field.message_type.GetOptions().map_entry:
                continue
            for i, item in enumerate(value):
                found += unknown_fields(item, f"{path}.{field.name}[{i}]")
        else:
            found += unknown_fields(value, f"{path}.{field.name}")
    return found


def flatten_traces(req):
    """ExportTraceServiceRequest -> list of dicts with the JSONL contract's keys, plus
    'resource_full' (every resource attribute) and 'scope' (scope name)."""
    trace_pb = pb("trace")
    spans = []
    for rs in req.resource_spans:
        res = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": trace_pb.Span.SpanKind.Name(s.kind).replace("SPAN_KIND_", ""),
                    "start_unix_nano": s.start_time_unix_nano,
                    "end_unix_nano": s.end_time_unix_nano,
                    "status": trace_pb.Status.StatusCode.Name(s.status.code).replace("STATUS_CODE_", ""),
                    "resource": dict(res),
                    "attributes": attrs(s.attributes),
                    "scope": ss.scope.name,
                })
    return spans


# ---------------------------------------------------------------- receiver


class Post:
    """One POST as the receiver saw it."""

    def __init__(self, path, headers, raw, status):
        self.path = path
        self.headers = headers  # names lower-cased
        self.raw = raw
        self.body = raw
        self.status = status  # what the receiver answered
        self.time = time.time()
        self.decoded = None
        self.error = None
        self.unknown = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortReservation:
    """Holds a port bound but not listening, so connections to it are refused and no other
    process takes it; release() frees it for the receiver."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def release(self):
        if self.sock:
            self.sock.close()
            self.sock = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mt-otlp-receiver"

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                rcv = self.server.receiver
                with rcv.lock:
                    rcv.tls_rejected += 1
                raise
        super().setup()

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _answer(self, code, body=b"", ctype="application/x-protobuf", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        rcv = self.server.receiver
        raw = self._read_body()
        path = self.path.split("?")[0]
        fail = rcv._take_failure()
        fault = None if fail else rcv._take_fault()
        post = Post(path, {k.lower(): v for k, v in self.headers.items()}, raw,
                    fail[0] if fail else FAULT_STATUS.get(fault, 200) if fault else 200)
        try:
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                post.body = gzip.decompress(raw)
            if path == "/v1/traces":
                post.decoded = pb("trace_service").ExportTraceServiceRequest.FromString(post.body)
            elif path == "/v1/metrics":
                post.decoded = pb("metrics_service").ExportMetricsServiceRequest.FromString(post.body)
            if post.decoded is not None:
                post.unknown = unknown_fields(post.decoded)
        except Exception as e:  # recorded; the test asserts there were none
            post.error = f"{type(e).__name__}: {e}"
            post.status = 400
        with rcv.lock:
            rcv.posts.append(post)
        if fault:
            self._fault(fault, rcv)
        elif fail:
            self._answer(fail[0], b"", "text/plain", [("Retry-After", str(fail[1]))] if fail[1] else [])
        elif post.error:
            self._answer(400, post.error.encode(), "text/plain")
        elif path == "/v1/metrics":
            self._answer(200, pb("metrics_service").ExportMetricsServiceResponse().SerializeToString())
        else:
            self._answer(200, pb("trace_service").ExportTraceServiceResponse().SerializeToString())


    def _fault(self, fault, rcv):
        """Answers the way a broken collector does (see OtlpReceiver.fault())."""
        if fault == "garbage200":  # says protobuf, is not an ExportTraceServiceResponse
            self._answer(200, GARBAGE)
        elif fault in ("garbage400", "garbage500"):
            self._answer(int(fault[-3:]), GARBAGE)
        elif fault == "drop":  # the head and a piece of the promised body, then FIN
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                             b"Content-Length: 64\r\n\r\n\x0a\x02")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "hang":  # read the request, never answer, hold the connection
            rcv._release.wait(600)
            self.close_connection = True
        else:
            raise ValueError(f"unknown fault {fault!r}")


# Not an ExportTraceServiceResponse: field 1 with wire type 7, which protobuf does not have.
GARBAGE = b"\x0f\xff\xfe garbage, not protobuf \x00\x01"
# What Post.status says for a fault: the code answered, 0 for none (dropped or never answered).
FAULT_STATUS = {"garbage200": 200, "garbage400": 400, "garbage500": 500, "drop": 0, "hang": 0}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ssl.SSLError):
            return  # a refused TLS handshake: counted in tls_rejected
        super().handle_error(request, client_address)


class OtlpReceiver:
    """An OTLP/HTTP collector for the tests: 127.0.0.1, ephemeral port unless given, one thread.
    Stores every POST (gunzipped, decoded with the official schema). With tls (a dict from
    mt_otlp_grpc.make_ca()) it speaks HTTPS; with client_auth too, mutual TLS."""

    def __init__(self, port=0, tls=None, client_auth=False):
        generate_proto()
        self.port = port
        self.tls = tls
        self.client_auth = client_auth
        self.posts = []
        self.lock = threading.Lock()
        self._failures = []  # [(status, retry_after)] answered to the next POSTs, in order
        self._fault = None  # fault() mode answered to every POST while set
        self._release = threading.Event()  # lets the connections held by "hang" go
        self.httpd = None
        self.thread = None

    @property
    def endpoint(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        self.httpd = _Server(("127.0.0.1", self.port), _Handler)
        self.httpd.receiver = self
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls["server_cert_path"], self.tls["server_key_path"])
            if self.client_auth:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(self.tls["ca_cert_path"])
            # The handshake happens in the handler's thread, not in accept().
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
            self.tls_rejected = 0
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="otlp-receiver",
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self._release.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def fail_next(self, count, status=503, retry_after=1):
        """Answers the next `count` POSTs with `status` (and Retry-After when not None)."""
        with self.lock:
            self._failures += [(status, retry_after)] * count

    def fault(self, mode):
        """Answers every POST from now on as a broken collector does, until fault(None):
        "garbage200" (200, a protobuf content type, a body that is not protobuf),
        "garbage400", "garbage500" (that status, the same body), "drop" (a 200 head and part
        of the body, then the connection closed), "hang" (reads the request, never answers,
        holds the connection until fault(None) or stop()). fail_next() answers go first."""
        assert mode is None or mode in FAULT_STATUS, mode
        with self.lock:
            self._fault = mode
            if mode == "hang":
                self._release.clear()
        if mode is None:
            self._release.set()

    def _take_fault(self):
        with self.lock:
            return self._fault

    def _take_failure(self):
        with self.lock:
            return self._failures.pop(0) if self._failures else None

    def metrics_posts(self):
        with self.lock:
            return [p for p in self.posts if p.path == "/v1/metrics"]

    def trace_posts(self, accepted_only=True):
        with self.lock:
            return [p for p in self.posts if p.path == "/v1/traces" and
                    (p.status == 200 or not accepted_only)]

    def spans(self):
        """Every span of every accepted trace export, flattened."""
        out = []
        for p in self.trace_posts():
            out += flatten_traces(p.decoded)
        return out

    def wait_for(self, predicate, timeout):
        """Polls predicate(self) until it is true or timeout seconds pass; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.05)
