# SPDX-License-Identifier: Apache-2.0
"""Issue 12, points 3-6: the agent as it ships.
- deploy/kubernetes renders with `kubectl kustomize` and every object validates against the
  Kubernetes schema (kubernetes-models, npm; k8s_schema/); the DaemonSet grants least privilege.
- The image (deploy/Dockerfile, FROM scratch; built once per session) is small.
- The image runs under podman with exactly the DaemonSet's security context (read from the
  rendered manifest): nginx -> backend on the host, redis-server in a container of its own
  (also FROM scratch); spans, graph edges, the container's service named container/<id>.
- `podman stop -t <terminationGracePeriodSeconds>`: the finished spans reach the collector.
- One capability removed at a time: the agent names it in one line and exits 2.
- /healthz is 200 while attached, 503 when not (--replay attaches nothing)."""

import json
import os
import re
import shutil
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

import mt_agent
import mt_peers
from mt_graph import edges_touching, get_graph, private_nginx, tag
from mt_otlp import REPO, free_port
from mt_peers import CurlRun, wait_port
from mt_report import figure
from mt_spans import a, dump, select, span_path

HERE = os.path.dirname(os.path.abspath(__file__))
KUSTOMIZE_DIR = os.path.join(REPO, "deploy", "kubernetes")
SCHEMA_DIR = os.path.join(HERE, "k8s_schema")
DOCKERFILE = os.path.join(REPO, "deploy", "Dockerfile")
ROOTFS = os.path.join(REPO, "scripts", "image_rootfs.sh")
AGENT_IMAGE = "localhost/meshtrace:test"
REDIS_IMAGE = "localhost/meshtrace-test-redis:test"
# The capabilities the agent needs, no more (README, "Deploying", says why each).
CAPS = ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"]
NODE_NAME = "test-node"
IMAGE_MAX_BYTES = 40 * 1000 * 1000
ROUNDS = 3


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} missing: run 'sudo make deps'")
    return path


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (podman, buildah and BPF): run as root")


# ---------------------------------------------------------------- the manifests


@pytest.fixture(scope="module")
def rendered():
    """The objects `kubectl kustomize deploy/kubernetes` renders."""
    r = subprocess.run([tool("kubectl"), "kustomize", KUSTOMIZE_DIR], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"kubectl kustomize {KUSTOMIZE_DIR} failed:\n{r.stderr}"
    return [o for o in yaml.safe_load_all(r.stdout) if o]


def the(objects, kind):
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(objects):
    return the(objects, "DaemonSet")["spec"]["template"]["spec"]


def test_manifests_render_and_validate(rendered):
    """Every object against the Kubernetes OpenAPI schema (kubernetes-models' validators)."""
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == ["DaemonSet", "Namespace", "Service", "ServiceAccount"], kinds
    if not os.path.isdir(os.path.join(SCHEMA_DIR, "node_modules", "kubernetes-models")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SCHEMA_DIR,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"npm ci in {SCHEMA_DIR} failed:\n{r.stdout}\n{r.stderr}"
    r = subprocess.run([tool("node"), os.path.join(SCHEMA_DIR, "validate.mjs")],
                       input=json.dumps(rendered), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"schema validation failed:\n{r.stdout}{r.stderr}"
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == len(rendered), r.stdout
    ns = the(rendered, "Namespace")["metadata"]["name"]
    assert all(o["metadata"].get("namespace") == ns for o in rendered if o["kind"] != "Namespace")


def test_daemonset_least_privilege(rendered):
    spec = pod_spec(rendered)
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc.get("privileged") is False and sc.get("allowPrivilegeEscalation") is False, sc
    assert sc["capabilities"]["drop"] == ["ALL"], sc
    assert sorted(sc["capabilities"]["add"]) == sorted(CAPS), sc
    assert sc.get("readOnlyRootFilesystem") is True, sc
    assert spec.get("hostPID") is True
    assert spec["serviceAccountName"] == the(rendered, "ServiceAccount")["metadata"]["name"]
    assert spec.get("automountServiceAccountToken") is False
    # Only host paths it reads, each read-only.
    host = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    assert set(host) <= set(mounts), (host, mounts)
    assert all(mounts[n].get("readOnly") is True for n in host), mounts
    # The agent attaches through BTF (no tracefs) and reads BTF from the container's own /sys:
    # the only host paths are the container runtimes' socket directories (docs/cri.md).
    assert set(host.values()) <= {"/run/containerd", "/run/crio", "/run/k3s/containerd"}, host
    # Upgrades: readiness on /healthz, a grace period longer than the agent's 5 s flush.
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz", probe
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert probe["port"] in ports or probe["port"] in ports.values(), (probe, ports)
    assert 5 < spec["terminationGracePeriodSeconds"] <= 30, spec["terminationGracePeriodSeconds"]
    env = {e["name"]: e for e in c["env"]}
    assert env["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", env
    # Prometheus: the Service selects the pods and names the metrics port.
    svc = the(rendered, "Service")
    labels = the(rendered, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items(), (svc, labels)
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["metrics"], svc


# ---------------------------------------------------------------- the images


@pytest.fixture(scope="session")
def podman_env(tmp_path_factory):
    """The environment for podman: a containers.conf (root here lacks CAP_SYS_RESOURCE, so the
    default rlimits must be ones it may set; runc, as crun refuses hybrid cgroups) and the
    seccomp profile that containerd's RuntimeDefault is since 1.6.9: podman's own default with
    bpf() allowed under CAP_BPF and perf_event_open() under CAP_PERFMON (podman's asks for
    CAP_SYS_ADMIN)."""
    need_root()
    d = tmp_path_factory.mktemp("podman")
    conf = d / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                    '"nproc=32768:32768"]\n[engine]\nruntime = "runc"\n')
    with open("/usr/share/containers/seccomp.json") as f:
        profile = json.load(f)
    for rule in profile["syscalls"]:
        if rule["action"] == "SCMP_ACT_ERRNO":
            rule["names"] = [n for n in rule["names"] if n not in ("bpf", "perf_event_open")]
    for name, cap in (("bpf", "CAP_BPF"), ("perf_event_open", "CAP_PERFMON")):
        profile["syscalls"].append({"names": [name], "action": "SCMP_ACT_ALLOW", "args": [],
                                    "includes": {"caps": [cap]}, "excludes": {}})
    seccomp = d / "seccomp-runtime-default.json"
    seccomp.write_text(json.dumps(profile))
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    return {"env": env, "seccomp": str(seccomp)}


def run(args, env, timeout=120, check=True):
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"{' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


@pytest.fixture(scope="session")
def images(podman_env, tmp_path_factory):
    """Builds the agent's image (what `make image` does, from build/meshtrace) and a redis-server
    image made the same way, once per session. Returns {"size": bytes, "seconds": build time}."""
    env = podman_env["env"]
    buildah, podman = tool("buildah"), tool("podman")
    if not os.access(mt_agent.BINARY, os.X_OK):
        pytest.fail(f"{mt_agent.BINARY} missing: run 'make'")
    d = tmp_path_factory.mktemp("images")
    t0 = time.monotonic()
    run([ROOTFS, mt_agent.BINARY, str(d / "agent")], env)
    run([buildah, "bud", "--quiet", "-f", DOCKERFILE, "-t", AGENT_IMAGE, str(d / "agent")], env)
    seconds = time.monotonic() - t0
    redis = os.path.realpath(mt_peers.REDIS_SERVER)
    run([ROOTFS, redis, str(d / "redis"), "redis-server"], env)
    (d / "redis.Dockerfile").write_text('FROM scratch\nCOPY . /\n'
                                        'ENTRYPOINT ["/usr/bin/redis-server"]\n')
    run([buildah, "bud", "--quiet", "-f", str(d / "redis.Dockerfile"), "-t", REDIS_IMAGE,
         str(d / "redis")], env)
    size = int(run([podman, "image", "inspect", "--format", "{{.Size}}", AGENT_IMAGE],
                   env).stdout.strip())
    yield {"size": size, "seconds": seconds}
    run([podman, "rmi", "-f", AGENT_IMAGE, REDIS_IMAGE], env, check=False)


def test_image_is_small(request, images):
    figure(request, f"image: {images['size'] / 1e6:.1f} MB (FROM scratch: agent + its "
                    f"libraries), built in {images['seconds']:.1f} s")
    assert images["size"] < IMAGE_MAX_BYTES, images


# ---------------------------------------------------------------- the agent in its container


def podman_args(objects, seccomp, port, endpoint=None, drop=None, batch_delay_ms=200):
    """`podman run` flags for exactly the DaemonSet's pod: its capabilities (less @drop), host
    PID and network namespaces, read-only root, its host mounts read-only, its env (the node
    name as the downward API would give it), its args with --listen moved to @port."""
    spec = pod_spec(objects)
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc.get("privileged")
    args = ["--cap-drop=all"]
    args += [f"--cap-add={cap}" for cap in sc["capabilities"]["add"] if cap != drop]
    if spec.get("hostPID"):
        args.append("--pid=host")
    if spec.get("hostNetwork"):
        args.append("--network=host")
    if sc.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]  # Kubernetes adds no tmpfs
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if "runAsUser" in sc:
        args += ["--user", f"{sc['runAsUser']}:0"]
    profile = sc.get("seccompProfile", {}).get("type")
    assert profile in ("RuntimeDefault", "Unconfined"), profile
    args += ["--security-opt",
             f"seccomp={seccomp}" if profile == "RuntimeDefault" else "seccomp=unconfined"]
    host = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}
    for m in c.get("volumeMounts", []):
        assert m.get("readOnly"), m
        # DirectoryOrCreate on a node: here, a runtime directory that is absent is left out.
        if os.path.isdir(host[m["name"]]):
            args += ["-v", f"{host[m['name']]}:{m['mountPath']}:ro"]
    defined = {}
    for e in c.get("env", []):
        if "valueFrom" in e:
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", e
            value = NODE_NAME
        elif e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT":
            value = endpoint
        else:  # $(VAR) of an earlier entry, as the kubelet expands it
            value = re.sub(r"\$\((\w+)\)", lambda m: defined.get(m[1], m[0]), e["value"])
        defined[e["name"]] = value
        if value:
            args += ["-e", f"{e['name']}={value}"]
    args += ["-e", f"OTEL_BSP_SCHEDULE_DELAY={batch_delay_ms}"]
    cmd = list(c.get("args", []))
    i = cmd.index("--listen")
    cmd[i + 1] = f"127.0.0.1:{port}"
    return args, cmd


class AgentContainer:
    """`podman run` of the agent's image in the foreground; stderr is collected as it comes."""

    def __init__(self, podman_env, flags, cmd):
        self.name = f"mt-agent-{tag()}"
        self.env = podman_env["env"]
        self.args = [tool("podman"), "run", "--rm", "--name", self.name] + flags + \
            [AGENT_IMAGE] + cmd
        self.lines = []
        self.ready = threading.Event()
        self.proc = None

    def start(self, wait_ready=True, timeout=30):
        self.proc = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not wait_ready:
            return self
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None:
                self.reader.join(5)
                raise AssertionError(f"the agent's container exited with {self.proc.returncode}"
                                     f" before 'meshtrace: ready':\n{self.text()}")
            assert time.monotonic() < deadline, f"not ready in {timeout}s:\n{self.text()}"
        return self

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.strip() == "meshtrace: ready":
                self.ready.set()

    def text(self):
        return "\n".join(self.lines[-40:])

    def wait(self, timeout):
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def stop(self, grace):
        """`podman stop -t grace`: SIGTERM, SIGKILL after grace seconds, as the kubelet does.
        Returns (exit code, seconds the agent took)."""
        t0 = time.monotonic()
        subprocess.run([tool("podman"), "stop", "-t", str(grace), self.name], env=self.env,
                       capture_output=True, timeout=grace + 30, stdin=subprocess.DEVNULL)
        rc = self.wait(30)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run([tool("podman"), "rm", "-f", "-t", "0", self.name], env=self.env,
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            self.proc.wait(30)


@pytest.fixture
def containers(podman_env):
    made = []

    def make(flags, cmd):
        c = AgentContainer(podman_env, flags, cmd)
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill()


@pytest.fixture
def redis_container(podman_env, images):
    """redis-server in a container of its own (FROM scratch), on the host's loopback."""
    port = free_port()
    name = f"mt-redis-{tag()}"
    env = podman_env["env"]
    r = run([tool("podman"), "run", "-d", "--rm", "--name", name, "--network=host", REDIS_IMAGE,
             "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], env)
    cid = r.stdout.strip().splitlines()[-1]
    try:
        wait_port(port)
        pid = int(run([tool("podman"), "inspect", "--format", "{{.State.Pid}}", name],
                      env).stdout)
        yield {"port": port, "id": cid, "pid": pid, "service": f"container/{cid[:12]}"}
    finally:
        run([tool("podman"), "rm", "-f", "-t", "0", name], env, check=False)


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_agent_in_its_container(request, tmp_path, monkeypatch, rendered, podman_env, images,
                                redis_container, containers, receiver, make_backend,
                                make_nginx):
    """nginx -> backend on the host, redis-server in its own container, the agent in its own
    with the DaemonSet's security context; then stopped as the kubelet stops it."""
    t = tag()
    nginx_name = private_nginx(tmp_path, monkeypatch, t)
    backend_name = f"backend-{t}"
    redis_name = redis_container["service"]
    port = free_port()
    # Batches wait 30 s: every span reaches the collector through the flush on SIGTERM.
    flags, cmd = podman_args(rendered, podman_env["seccomp"], port, receiver.endpoint,
                             batch_delay_ms=30000)
    t0 = time.monotonic()
    agent = containers(flags, cmd).start()
    ready_s = time.monotonic() - t0
    assert http_status(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")

    backend = make_backend(service_name=backend_name, redis_port=redis_container["port"])
    nginx = make_nginx(backend.port)
    for _ in range(ROUNDS):
        res = CurlRun([nginx.url("/api/cache"), nginx.url("/api/ok")]).run()
        assert [r["status"] for r in res.results] == [200, 200], res.results

    want = {(nginx_name, backend_name): 2 * ROUNDS, (backend_name, redis_name): ROUNDS}
    deadline = time.monotonic() + 15
    while True:
        edges = edges_touching(get_graph(port), {nginx_name, backend_name, redis_name})
        got = {}
        for (cl, sv, proto), e in edges.items():
            got[(cl, sv)] = got.get((cl, sv), 0) + (e["requests"] or 0)
        if all(got.get(k, 0) >= n for k, n in want.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert all(got.get(k, 0) >= n for k, n in want.items()), \
        f"graph edges {got}, want at least {want}:\n{agent.text()}"

    assert not receiver.trace_posts(accepted_only=False), "spans exported before the stop"
    grace = pod_spec(rendered)["terminationGracePeriodSeconds"]
    rc, took = agent.stop(grace)
    assert rc == 0, f"exit {rc} after podman stop -t {grace}:\n{agent.text()}"
    assert took < grace, f"the agent took {took:.1f}s of its {grace}s grace period"
    assert any(l.startswith("meshtrace: final stats") for l in agent.lines), agent.text()

    spans = receiver.spans()
    nginx_srv = [s for s in select(spans, kind="SERVER", server_port=nginx.port)
                 if s["resource"].get("service.name") == nginx_name]
    backend_srv = [s for s in select(spans, kind="SERVER", server_port=backend.port)
                   if s["resource"].get("service.name") == backend_name]
    redis_cli = [s for s in select(spans, kind="CLIENT", server_port=redis_container["port"])
                 if s["resource"].get("service.name") == backend_name]
    redis_srv = select(spans, kind="SERVER", server_port=redis_container["port"])
    assert sorted(span_path(s) for s in nginx_srv) == \
        sorted(["/api/cache", "/api/ok"] * ROUNDS), f"nginx spans:{dump(spans)}"
    assert len(backend_srv) == 2 * ROUNDS, f"backend spans:{dump(spans)}"
    assert [s["name"] for s in redis_cli] == ["INCR"] * ROUNDS, f"redis client:{dump(spans)}"
    assert [s["name"] for s in redis_srv] == ["INCR"] * ROUNDS, f"redis server:{dump(spans)}"
    nodes = {s["resource"].get("k8s.node.name") for s in spans}
    assert nodes == {NODE_NAME}, f"k8s.node.name from the downward API: {nodes}"
    names = {s["resource"].get("service.name") for s in redis_srv}
    assert names == {redis_name}, f"the containerised redis is named {names}, not {redis_name}"
    assert {s["resource"].get("process.pid") for s in redis_srv} == {redis_container["pid"]}
    # The backend's calls to redis are children of its server spans.
    parents = {s["span_id"] for s in backend_srv}
    assert all(s["parent_span_id"] in parents for s in redis_cli), dump(redis_cli)
    assert all(a(s, "db.system.name") == "redis" for s in redis_cli + redis_srv)
    figure(request, f"container: ready {ready_s:.1f} s after podman run (caps "
                    f"{', '.join(c for c in CAPS)}); stopped in {took:.1f} s of {grace} s with "
                    f"{len(spans)} spans delivered by the flush on SIGTERM; redis in its container named {redis_name}")


@pytest.mark.parametrize("cap", CAPS)
def test_each_capability_is_needed(request, rendered, podman_env, images, containers, cap):
    """The DaemonSet's context less one capability: one line naming it, exit 2."""
    flags, cmd = podman_args(rendered, podman_env["seccomp"], free_port(), drop=cap)
    agent = containers(flags, cmd).start(wait_ready=False)
    rc = agent.wait(60)
    lines = [l for l in agent.lines if l.strip()]
    assert rc == 2, f"exit {rc} without {cap}:\n{agent.text()}"
    assert len(lines) == 1, f"expected one line without {cap}, got:\n{agent.text()}"
    figure(request, f"without {cap}: exit {rc}: {lines[0].strip()}")
    assert f"CAP_{cap}" in lines[0] and f"[{cap}]" in lines[0], lines[0]


def test_healthz_fails_when_not_attached(tmp_path):
    """--replay attaches nothing: /healthz answers 503 while the agent runs and serves the rest."""
    need_root()
    path = tmp_path / "idle.rec"
    ts = 10**12
    with open(path, "wb") as f:  # two unknown 24-byte events 3 s apart: a 3 s replay
        for dt in (0, 3 * 10**9):
            body = bytearray(24)
            body[0] = 9
            body[8:16] = struct.pack("<Q", ts + dt)
            f.write(struct.pack("<I", 24) + bytes(body))
    port = free_port()
    binary, env = mt_agent.replay_binary()
    proc = subprocess.Popen([binary, "--replay", str(path), "--listen", f"127.0.0.1:{port}"],
                            env=mt_agent.clean_env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port)
        assert http_status(f"http://127.0.0.1:{port}/healthz") == (503, "not attached\n")
        assert http_status(f"http://127.0.0.1:{port}/api/stats")[0] == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
