# SPDX-License-Identifier: Apache-2.0
"""Real peers for the integration tests: nginx (static files + /api/ proxied to a backend),
the Python backend, and curl. Everything listens on 127.0.0.1 only."""

import os
import signal
import socket
import subprocess
import sys
import time

from mt_otlp import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX = os.environ.get("MESHTRACE_NGINX", "/usr/sbin/nginx")
CURL = "/usr/bin/curl"
REDIS_SERVER = os.environ.get("MESHTRACE_REDIS", "/usr/bin/redis-server")

# $remote_port and $upstream_status beyond the brief's fields: they let each log line be matched
# to one span (client port + request number on the connection).
LOG_FIELDS = ["msec", "request_time", "status", "request_method", "request_uri", "connection",
              "connection_requests", "remote_addr", "remote_port", "upstream_status"]

STATIC = {
    "index.html": b"<html><body>meshtrace test page</body></html>\n",
    "static/a.txt": b"a" * 600 + b"\n",
    # Far longer than any captured prefix: the request after it on a keep-alive connection must
    # still be parsed as a request, not lost inside this body.
    "static/big.bin": bytes(range(256)) * 1024,
}
for _i in range(1, 4):
    STATIC[f"pre/{_i}.txt"] = f"file {_i}\n".encode()


def stop_proc(proc, sig=signal.SIGTERM, timeout=15):
    """Stops a server started with Popen: @sig, then SIGKILL after @timeout s."""
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Nginx:
    """nginx master + 1 worker in its own prefix directory."""

    def __init__(self, workdir, backend_port):
        self.dir = os.path.join(workdir, "nginx")
        self.root = os.path.join(self.dir, "www")
        self.backend_port = backend_port
        self.port = free_port()
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.proc = None

    def write_config(self):
        os.makedirs(self.root, exist_ok=True)
        for name, data in STATIC.items():
            path = os.path.join(self.root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        fmt = " ".join("$" + f for f in LOG_FIELDS)
        d = self.dir
        conf = f"""
# written by tests/integration/mt_peers.py
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log info;
{"user root root;" if os.geteuid() == 0 else ""}
worker_rlimit_nofile 4096;
events {{ worker_connections 2048; }}
http {{
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    log_format mt '{fmt}';
    access_log {self.access_log} mt;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30s;
    upstream backend {{
        server 127.0.0.1:{self.backend_port};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        root {self.root};
        location / {{ }}
        location /api/ {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self):
        self.write_config()
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", self.conf, "-e", self.error_log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not self.worker_pids():
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}: "
                                     f"{self.proc.stderr.read().decode()}{self._error_log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError("nginx started no worker in 10s" + self._error_log_tail())
            time.sleep(0.05)
        wait_port(self.port)
        return self

    def _error_log_tail(self):
        try:
            with open(self.error_log) as f:
                return "\nerror.log:\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    @property
    def master_pid(self):
        return self.proc.pid

    def worker_pids(self):
        return children(self.proc.pid)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_lines(self):
        """The access log, one dict per line, in file order."""
        out = []
        with open(self.access_log) as f:
            for line in f:
                vals = line.split()
                assert len(vals) == len(LOG_FIELDS), f"unexpected access log line {line!r}"
                rec = dict(zip(LOG_FIELDS, vals))
                for k in ("status", "connection", "connection_requests", "remote_port"):
                    rec[k] = int(rec[k])
                rec["msec"] = float(rec["msec"])
                rec["request_time"] = float(rec["request_time"])
                rec["path"] = rec["request_uri"].split("?")[0]
                out.append(rec)
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: lets the log be complete
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Backend:
    """peer_backend.py in its own process, with OTEL_SERVICE_NAME=backend."""

    def __init__(self, workdir, port=None, service_name="backend", redis_port=None):
        self.port = port or free_port()
        self.redis_port = redis_port
        self.log = os.path.join(workdir, "backend.log")
        self.service_name = service_name
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_SERVICE_NAME"] = self.service_name
        args = [sys.executable, os.path.join(HERE, "peer_backend.py"), str(self.port), self.log]
        if self.redis_port:
            args.append(str(self.redis_port))
        self.proc = subprocess.Popen(args, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # bounded: the script prints or dies at once
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"backend did not start: {line!r} {self.proc.stderr.read()}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log_lines(self):
        out = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                for line in f:
                    method, path, status, port = line.split()
                    out.append({"method": method, "path": path.split("?")[0], "status": int(status),
                                "client_port": int(port)})
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class CurlRun:
    """One curl process (one or more URLs over one connection when they share a host)."""

    def __init__(self, urls, method=None, data=None, headers=()):
        args = [CURL, "-q", "-sS", "--noproxy", "*", "--max-time", "10"]
        if method == "HEAD":
            args.append("-I")
        elif method:
            args += ["-X", method]
        if data is not None:
            args += ["--data-binary", data]
        for h in headers:
            args += ["-H", h]
        for u in urls:
            args += ["-o", "/dev/null", "-w", "%{http_code} %{num_connects} %{local_port}\\n", u]
        self.args = args
        self.urls = list(urls)
        self.method = method or ("POST" if data is not None else "GET")

    def run(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, f"{' '.join(self.args)} failed: {err}"
        self.results = []
        for line in out.splitlines():
            code, connects, port = line.split()
            self.results.append({"status": int(code), "num_connects": int(connects),
                                 "local_port": int(port)})
        assert len(self.results) == len(self.urls), out
        return self


class Redis:
    """redis-server on 127.0.0.1:<free port>, in the foreground, no persistence."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = os.path.join(workdir, "redis")
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.dir,
                                      "--daemonize", "no"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
