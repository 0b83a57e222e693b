# SPDX-License-Identifier: Apache-2.0
"""A real containerd (Debian's, with its CRI plugin and Debian's CNI plugins) for the tests,
started with its own config, root, state and socket under a temporary directory, and a small
CRI client that drives it as the kubelet does (RunPodSandbox, CreateContainer, StartContainer),
from our own .proto subset compiled at test time.

Images are built here, since no registry is reachable: the pause image holds one static binary
compiled at test time; the application image is an empty Debian-like root (bin -> usr/bin, ...)
whose containers get the host's /usr bind-mounted read-only, so they run the host's python3 and
redis-server. Pods get their IPs from a CNI bridge of their own (mtcri0, 10.213.0.0/24)."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid

from mt_otlp import REPO

PAUSE_IMAGE = "registry.k8s.io/pause:3.6"
APP_IMAGE = "localhost/meshtrace-test/app:1.0"
BRIDGE = "mtcri0"
SUBNET = "10.213.0.0/24"
CNI_BIN = "/usr/lib/cni"
NAMESPACE_K8S = "k8s.io"


def have_tools():
    """The reason the CRI tests cannot run here, or None."""
    for tool in ("containerd", "ctr", "runc", "gcc", "protoc"):
        if not shutil.which(tool):
            return f"{tool} missing (scripts/deps.sh installs containerd, runc, gcc, protoc)"
    if not os.path.exists(os.path.join(CNI_BIN, "bridge")):
        return "CNI plugins missing (Debian containernetworking-plugins)"
    try:
        import grpc  # noqa: F401
    except ImportError:
        return "python3-grpcio missing"
    return None


def compile_protos(outdir):
    """Our CRI subset (the agent's and the kubelet side the tests need) as Python modules."""
    subprocess.run(["protoc", "-I", os.path.join(REPO, "agent/identity/proto"),
                    "-I", os.path.join(REPO, "tests/integration"), f"--python_out={outdir}",
                    "cri.proto", "cri_kubelet.proto"], check=True)
    if outdir not in sys.path:
        sys.path.insert(0, outdir)
    import cri_pb2
    import cri_kubelet_pb2
    return cri_pb2, cri_kubelet_pb2


# ------------------------------------------------------------------------- images


def _tar_add(tar, name, data=None, mode=0o755, symlink=None, directory=False):
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if symlink:
        info.type = tarfile.SYMTYPE
        info.linkname = symlink
        tar.addfile(info)
    elif directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        info.mode = mode
        tar.addfile(info, io.BytesIO(data))


def _docker_archive(path, ref, layer, entrypoint):
    """A `docker save` style archive of one layer, which `ctr images import` reads."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [ref],
                            "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        _tar_add(tar, "config.json", config, 0o644)
        _tar_add(tar, "manifest.json", manifest, 0o644)
        _tar_add(tar, "layer.tar", layer, 0o644)


def _layer(files=(), links=(), dirs=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in dirs:
            _tar_add(tar, d, directory=True)
        for name, target in links:
            _tar_add(tar, name, symlink=target)
        for name, data in files:
            _tar_add(tar, name, data)
    return buf.getvalue()


def build_images(workdir):
    """Writes the pause and application image archives; returns their paths."""
    src = os.path.join(workdir, "pause.c")
    with open(src, "w") as f:
        f.write("#include <unistd.h>\nint main(void) { for (;;) pause(); }\n")
    pause_bin = os.path.join(workdir, "pause")
    subprocess.run(["gcc", "-static", "-Os", "-o", pause_bin, src], check=True)
    with open(pause_bin, "rb") as f:
        pause = _layer(files=[("pause", f.read())], dirs=["dev", "proc", "sys", "etc"])
    pause_tar = os.path.join(workdir, "pause.tar")
    _docker_archive(pause_tar, PAUSE_IMAGE, pause, ["/pause"])
    app = _layer(links=[("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"),
                        ("sbin", "usr/sbin")],
                 dirs=["usr", "etc", "tmp", "dev", "proc", "sys", "run", "var", "app"])
    app_tar = os.path.join(workdir, "app.tar")
    _docker_archive(app_tar, APP_IMAGE, app, ["/usr/bin/sleep", "infinity"])
    return pause_tar, app_tar


# ---------------------------------------------------------------------- containerd


class Containerd:
    """containerd with its CRI plugin on a socket of its own."""

    def __init__(self, workdir):
        self.dir = workdir
        self.socket = os.path.join(workdir, "containerd.sock")
        self.root = os.path.join(workdir, "root")
        self.state = os.path.join(workdir, "state")
        self.cni_conf = os.path.join(workdir, "cni")
        self.config = os.path.join(workdir, "config.toml")
        self.log_path = os.path.join(workdir, "containerd.log")
        self.proc = None

    def write_config(self):
        os.makedirs(self.cni_conf, exist_ok=True)
        with open(os.path.join(self.cni_conf, "10-mtcri.conflist"), "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": "mtcri", "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                          "dataDir": os.path.join(self.dir, "ipam")}},
                {"type": "loopback"}]}, f)
        with open(self.config, "w") as f:
            f.write(f"""version = 2
root = "{self.root}"
state = "{self.state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.cni_conf}"
""")

    def start(self, timeout=30):
        if not os.path.exists(self.config):
            self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["containerd", "--config", self.config], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd exited {self.proc.returncode}:\n"
                                     f"{self.log_tail()}")
            if os.path.exists(self.socket):
                try:
                    self.ctr("version")
                    return self
                except subprocess.CalledProcessError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"containerd not up within {timeout}s:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM: the containers keep running under their shims, as on a node."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def ctr(self, *args, **kw):
        return subprocess.run(["ctr", "--address", self.socket, "-n", NAMESPACE_K8S] +
                              list(args), check=True, capture_output=True, timeout=60, **kw)

    def import_image(self, tar):
        self.ctr("images", "import", "--no-unpack" if False else "--all-platforms", tar)

    def kill_everything(self):
        """Removes every task and container the tests made (shims included)."""
        for args in (("tasks", "ls", "-q"), ("containers", "ls", "-q")):
            try:
                ids = self.ctr(*args).stdout.decode().split()
            except subprocess.CalledProcessError:
                ids = []
            for cid in ids:
                if args[0] == "tasks":
                    subprocess.run(["ctr", "--address", self.socket, "-n", NAMESPACE_K8S,
                                    "tasks", "kill", "-s", "SIGKILL", cid],
                                   capture_output=True, timeout=30)
                else:
                    for _ in range(50):
                        r = subprocess.run(["ctr", "--address", self.socket, "-n",
                                            NAMESPACE_K8S, "containers", "rm", cid],
                                           capture_output=True, timeout=30)
                        if r.returncode == 0:
                            break
                        subprocess.run(["ctr", "--address", self.socket, "-n", NAMESPACE_K8S,
                                        "tasks", "rm", "-f", cid], capture_output=True,
                                       timeout=30)
                        time.sleep(0.1)


# ----------------------------------------------------------------------- the kubelet


class Kubelet:
    """The calls the kubelet makes, over grpcio, from our own proto subset."""

    SERVICE = "/runtime.v1.RuntimeService/"

    def __init__(self, socket, cri_pb2, kubelet_pb2):
        import grpc
        self.pb = cri_pb2
        self.kpb = kubelet_pb2
        self.channel = grpc.insecure_channel("unix://" + socket)
        self.pods = []

    def call(self, method, req, resp_type, timeout=60):
        fn = self.channel.unary_unary(self.SERVICE + method,
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=resp_type.FromString)
        return fn(req, timeout=timeout)

    def run_pod(self, namespace, name, labels=None, annotations=None, uid=None):
        """A pod sandbox as the kubelet makes it (cgroupfs parent /kubepods/besteffort/pod<uid>)."""
        k = self.kpb
        uid = uid or str(uuid.uuid4())
        cfg = k.PodSandboxConfig(
            metadata=self.pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace,
                                                attempt=0),
            hostname=name[:63], labels=labels or {}, annotations=annotations or {},
            linux=k.LinuxPodSandboxConfig(cgroup_parent=f"/kubepods/besteffort/pod{uid}"))
        sid = self.call("RunPodSandbox", k.RunPodSandboxRequest(config=cfg),
                        k.RunPodSandboxResponse).pod_sandbox_id
        status = self.call("PodSandboxStatus",
                           self.pb.PodSandboxStatusRequest(pod_sandbox_id=sid),
                           self.pb.PodSandboxStatusResponse).status
        pod = {"id": sid, "config": cfg, "uid": uid, "ip": status.network.ip,
               "namespace": namespace, "name": name}
        self.pods.append(pod)
        return pod

    def run_container(self, pod, name, command, env=None, labels=None):
        """A container of the application image with the host's /usr mounted read-only."""
        k = self.kpb
        cfg = k.ContainerConfig(
            metadata=self.pb.ContainerMetadata(name=name, attempt=0),
            image=self.pb.ImageSpec(image=APP_IMAGE), command=list(command),
            envs=[k.KeyValue(key=a, value=b) for a, b in (env or {}).items()],
            mounts=[k.Mount(container_path="/usr", host_path="/usr", readonly=True),
                    k.Mount(container_path="/app", host_path=os.path.join(
                        REPO, "tests/integration"), readonly=True)],
            labels={"io.kubernetes.container.name": name,
                    "io.kubernetes.pod.name": pod["name"],
                    "io.kubernetes.pod.namespace": pod["namespace"],
                    "io.kubernetes.pod.uid": pod["uid"], **(labels or {})})
        cid = self.call("CreateContainer",
                        k.CreateContainerRequest(pod_sandbox_id=pod["id"], config=cfg,
                                                 sandbox_config=pod["config"]),
                        k.CreateContainerResponse).container_id
        self.call("StartContainer", k.StartContainerRequest(container_id=cid),
                  k.StartContainerResponse)
        return cid

    def remove_all(self):
        k = self.kpb
        for pod in self.pods:
            for method, req, resp in (
                    ("StopPodSandbox", k.StopPodSandboxRequest(pod_sandbox_id=pod["id"]),
                     k.StopPodSandboxResponse),
                    ("RemovePodSandbox", k.RemovePodSandboxRequest(pod_sandbox_id=pod["id"]),
                     k.RemovePodSandboxResponse)):
                try:
                    self.call(method, req, resp, timeout=30)
                except Exception:  # noqa: BLE001 - best effort at teardown
                    pass
        self.pods = []
        self.channel.close()
