# SPDX-License-Identifier: Apache-2.0
"""Kubernetes names from the node's container runtime, against a real containerd (Debian's, CRI
plugin, CNI bridge) driven through the CRI API as the kubelet drives it (mt_cri.py).

Pods, as their controllers would make them:
  shop/checkout-7d9f8b6c5d-x2x4q   Deployment-like (pod-template-hash), HTTP server
  staging/checkout-5c8d7f9b4-q7w2e the same service name in another namespace
  data/cache-0                     StatefulSet-like, redis-server, app.kubernetes.io/instance
  shop/report-29012345-*           Job of a CronJob, OTEL_SERVICE_NAME=reporter in its container,
                                   calling both checkouts over HTTP and the cache over Redis
The agent reads the runtime's socket (--cri-socket); every assertion is on what it exports."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

import mt_cri
from conftest import require_agent
from mt_otlp import free_port

SCHEDULE = 29012345  # the CronJob's scheduled time, minutes since 1970, as its Job name carries


@pytest.fixture(scope="module")
def cluster():
    require_agent()
    why = mt_cri.have_tools()
    if why:
        pytest.fail(why)  # root and CI: never skipped
    workdir = tempfile.mkdtemp(prefix="mt-cri-")
    pb, kpb = mt_cri.compile_protos(workdir)
    pause, app = mt_cri.build_images(workdir)
    ctd = mt_cri.Containerd(workdir).start()
    kube = None
    try:
        ctd.import_image(pause)
        ctd.import_image(app)
        kube = mt_cri.Kubelet(ctd.socket, pb, kpb)
        pods = {}
        pods["checkout"] = kube.run_pod(
            "shop", "checkout-7d9f8b6c5d-x2x4q",
            labels={"app": "checkout", "pod-template-hash": "7d9f8b6c5d"})
        pods["checkout-staging"] = kube.run_pod(
            "staging", "checkout-5c8d7f9b4-q7w2e",
            labels={"app": "checkout", "pod-template-hash": "5c8d7f9b4"})
        pods["cache"] = kube.run_pod(
            "data", "cache-0",
            labels={"controller-revision-hash": "cache-6b8f9d7c4",
                    "statefulset.kubernetes.io/pod-name": "cache-0",
                    "app.kubernetes.io/instance": "cache-main"})
        for key in ("checkout", "checkout-staging"):
            kube.run_container(pods[key], "web", ["/usr/bin/python3", "-m", "http.server",
                                                  "--directory", "/app", "8080"])
        kube.run_container(pods["cache"], "redis",
                           ["/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0",
                            "--protected-mode", "no", "--save", "", "--appendonly", "no"])
        for key in ("checkout", "checkout-staging"):
            wait_http(f"http://{pods[key]['ip']}:8080/")
        yield {"containerd": ctd, "kube": kube, "pods": pods, "dir": workdir}
    finally:
        if kube:
            if ctd.proc is None:
                ctd.start()
            kube.remove_all()
        ctd.stop()
        subprocess.run(["ip", "link", "del", mt_cri.BRIDGE], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_http(url, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run_job(cluster, count, interval=0.1, suffix="x7k2p"):
    """A Job's pod of the CronJob 'report', calling the two checkouts and the cache."""
    pods, kube = cluster["pods"], cluster["kube"]
    job = f"report-{SCHEDULE}"
    pod = kube.run_pod("shop", f"{job}-{suffix}",
                       labels={"batch.kubernetes.io/job-name": job, "job-name": job,
                               "batch.kubernetes.io/controller-uid": "c0ffee"})
    cid = kube.run_container(
        pod, "runner",
        ["/usr/bin/python3", "/app/peer_k8s_client.py", str(count), str(interval),
         f"{pods['cache']['ip']}:6379", f"http://{pods['checkout']['ip']}:8080/",
         f"http://{pods['checkout-staging']['ip']}:8080/"],
        env={"OTEL_SERVICE_NAME": "reporter"})
    return pod, cid


def api(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.load(r)


def ours(spans, namespaces=("shop", "staging", "data")):
    return [s for s in spans if s["resource"].get("k8s.namespace.name") in namespaces]


def start_agent(agent, receiver, cluster, port):
    return agent(["--cri-socket", cluster["containerd"].socket, "--listen",
                  f"127.0.0.1:{port}"], receiver=receiver)


def test_pods_named_from_the_runtime(cluster, agent, receiver):
    port = free_port()
    start_agent(agent, receiver, cluster, port)
    pods = cluster["pods"]
    # At connect the agent lists the running pods and containers: the three servers, which ran
    # before it, are named before their first span.
    warm = receiver.wait_for(lambda _: (lambda k: k if k["warmed"] >= 3 else None)(
        api(port, "/api/stats")["k8s"]), 15)
    assert warm, api(port, "/api/stats")["k8s"]
    job_pod, job_cid = run_job(cluster, count=30)

    def complete(r):
        spans = ours(r.spans())
        have = {(s["resource"].get("service.name"), s["resource"].get("k8s.namespace.name"),
                 s["kind"]) for s in spans}
        return spans if {("checkout", "shop", "SERVER"), ("checkout", "staging", "SERVER"),
                         ("cache-main", "data", "SERVER"),
                         ("reporter", "shop", "CLIENT")} <= have else None

    spans = receiver.wait_for(complete, 30)
    assert spans, (f"spans named from the runtime: "
                   f"{sorted({(s['resource'].get('service.name'), s['kind']) for s in receiver.spans()})}")

    spans = ours(receiver.spans())  # the latest too: the image name follows the warm-up

    def resource_of(name, ns, kind):
        return next(s["resource"] for s in reversed(spans)
                    if s["resource"].get("service.name") == name and
                    s["resource"].get("k8s.namespace.name") == ns and s["kind"] == kind)

    checkout = resource_of("checkout", "shop", "SERVER")
    print("checkout's resource:", json.dumps(checkout, indent=1, sort_keys=True))
    assert checkout["service.namespace"] == "shop"
    assert checkout["k8s.pod.name"] == "checkout-7d9f8b6c5d-x2x4q"
    assert checkout["k8s.pod.uid"] == pods["checkout"]["uid"]
    assert checkout["k8s.container.name"] == "web"
    assert checkout["k8s.deployment.name"] == "checkout"
    assert checkout["k8s.replicaset.name"] == "checkout-7d9f8b6c5d"
    assert checkout["container.image.name"] == "localhost/meshtrace-test/app"
    assert len(checkout["container.id"]) == 64
    staging = resource_of("checkout", "staging", "SERVER")
    assert staging["k8s.pod.name"] == "checkout-5c8d7f9b4-q7w2e"
    assert staging["container.id"] != checkout["container.id"]
    cache = resource_of("cache-main", "data", "SERVER")
    assert cache["k8s.statefulset.name"] == "cache"
    assert cache["k8s.container.name"] == "redis"
    assert "k8s.deployment.name" not in cache
    # The container's own OTEL_SERVICE_NAME wins over its pod's names; the workload stays.
    reporter = resource_of("reporter", "shop", "CLIENT")
    assert reporter["container.id"] == job_cid
    assert reporter["k8s.cronjob.name"] == "report"
    assert reporter["k8s.job.name"] == f"report-{SCHEDULE}"
    assert reporter["k8s.pod.name"] == job_pod["name"]
    assert reporter["k8s.container.name"] == "runner"
    # A process in our pods may go out with its cgroup's name ("pod/<uid>") only until the
    # runtime answered its container's lookup: once named, never unnamed again.
    uids = {p["uid"] for p in pods.values()} | {job_pod["uid"]}
    by_pid = {}
    for s in sorted(receiver.spans(), key=lambda s: s["start_unix_nano"]):
        name = s["resource"].get("service.name", "")
        if name.startswith("pod/") and name[4:] in uids:
            by_pid.setdefault(s["resource"]["process.pid"], []).append(False)
        elif s["resource"].get("k8s.namespace.name") in ("shop", "staging", "data"):
            by_pid.setdefault(s["resource"]["process.pid"], []).append(True)
    for pid, named in by_pid.items():
        assert named[-1] and False not in named[named.index(True):], (pid, named)
    # The servers were named by the warm-up, the Job at its exec: no span went out unnamed.
    assert all(all(named) for named in by_pid.values()), by_pid

    graph = receiver.wait_for(lambda r: (lambda g: g if {"shop/checkout", "staging/checkout"} <=
                                         {n["id"] for n in g["nodes"]} else None)(
        api(port, "/api/graph")), 10)
    assert graph, api(port, "/api/graph")
    print("service map:", json.dumps({"nodes": [n for n in graph["nodes"]
                                               if n.get("namespace")],
                                      "edges": [(e["client"], e["server"], e["protocol"])
                                                for e in graph["edges"]
                                                if "/" in e["client"]]}, indent=1))
    edges = {(e["client"], e["server"]) for e in graph["edges"]}
    assert ("shop/reporter", "shop/checkout") in edges
    assert ("shop/reporter", "staging/checkout") in edges
    assert ("shop/reporter", "data/cache-main") in edges
    assert not [e for e in edges if e[1].startswith("pod/")], edges
    stats = api(port, "/api/stats")["k8s"]
    print("k8s stats:", stats, "mean lookup ms:",
          stats["lookup_ns_total"] / max(stats["resolved"], 1) / 1e6)
    assert stats["connected"] == 1 and stats["failed"] == 0, stats
    assert stats["warmed"] >= 3 and stats["resolved"] >= 1, stats  # servers; the Job
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b'server_namespace="staging"' in metrics
    # Workloads on graph nodes and edge series; service.namespace on the RED series.
    nodes = {n["id"]: n for n in api(port, "/api/graph")["nodes"]}
    assert nodes["shop/checkout"].get("workload") == "deployment/checkout", nodes["shop/checkout"]
    assert nodes["data/cache-main"].get("workload") == "statefulset/cache", nodes
    assert nodes["shop/reporter"].get("workload") == "cronjob/report", nodes
    assert b'server_workload="deployment/checkout"' in metrics
    assert b'client_workload="cronjob/report"' in metrics
    assert b'service_name="checkout",service_namespace="staging"' in metrics
    assert b'service_name="checkout",service_namespace="shop"' in metrics


def test_runtime_down_then_back(cluster, agent, receiver):
    """containerd stopped: cgroup names, failed lookups counted, nothing stops; back: names heal."""
    ctd, pods = cluster["containerd"], cluster["pods"]
    url = f"http://{pods['checkout']['ip']}:8080/"
    ctd.stop()
    port = free_port()
    a = start_agent(agent, receiver, cluster, port)

    def checkout_spans(r, name):
        return [s for s in r.spans() if s["kind"] == "SERVER" and
                s["resource"].get("service.name") == name]

    fallback = f"pod/{pods['checkout']['uid']}"
    deadline = time.monotonic() + 20
    while not checkout_spans(receiver, fallback) and time.monotonic() < deadline:
        wait_http(url)
        time.sleep(0.2)
    down = checkout_spans(receiver, fallback)
    assert down, sorted({s["resource"].get("service.name") for s in receiver.spans()})
    assert "k8s.namespace.name" not in down[0]["resource"]

    def failed(_):
        k = api(port, "/api/stats")["k8s"]
        return k if k["failed"] >= 1 and k["connected"] == 0 else None

    stats = receiver.wait_for(failed, 10)
    assert stats, api(port, "/api/stats")["k8s"]
    assert a.alive()

    ctd.start()
    deadline = time.monotonic() + 30
    while not checkout_spans(receiver, "checkout") and time.monotonic() < deadline:
        wait_http(url)
        time.sleep(0.2)
    healed = checkout_spans(receiver, "checkout")
    assert healed, api(port, "/api/stats")["k8s"]
    assert healed[-1]["resource"]["k8s.namespace.name"] == "shop"
    k = api(port, "/api/stats")["k8s"]
    assert k["connected"] == 1 and k["resolved"] >= 1, k


def test_cache_entry_dropped_when_the_container_exits(cluster, agent, receiver):
    port = free_port()
    start_agent(agent, receiver, cluster, port)
    run_job(cluster, count=3, suffix="d4m9q")

    def reporter(r):
        return [s for s in r.spans() if s["resource"].get("service.name") == "reporter" and
                s["resource"].get("k8s.pod.name", "").endswith("d4m9q")]

    assert receiver.wait_for(reporter, 20), sorted({s["resource"].get("service.name")
                                                     for s in receiver.spans()})
    # The job's process exits: its identity entry goes after 5 s, its container's k8s entry
    # 10 s after that; the servers' entries stay.
    def dropped(_):
        k = api(port, "/api/stats")["k8s"]
        return k if k["dropped"] >= 1 else None

    k = receiver.wait_for(dropped, 40)
    assert k, api(port, "/api/stats")["k8s"]
    assert k["entries"] >= 1  # the servers' containers are still there


def remove_pod(kube, pod):
    """StopPodSandbox + RemovePodSandbox, as the kubelet does when a pod is deleted."""
    k = kube.kpb
    kube.call("StopPodSandbox", k.StopPodSandboxRequest(pod_sandbox_id=pod["id"]),
              k.StopPodSandboxResponse, timeout=30)
    kube.call("RemovePodSandbox", k.RemovePodSandboxRequest(pod_sandbox_id=pod["id"]),
              k.RemovePodSandboxResponse, timeout=30)
    kube.pods.remove(pod)


def reuse_ip_next(cluster, ip):
    """host-local hands out addresses round robin from the last it reserved: make @ip the next
    (on a node the kubelet's IPAM reuses freed addresses the same way, only later)."""
    net = os.path.join(cluster["containerd"].dir, "ipam", "mtcri")
    prev = ip.rsplit(".", 1)
    with open(os.path.join(net, "last_reserved_ip.0"), "w") as f:
        f.write(f"{prev[0]}.{int(prev[1]) - 1}")


def curl_spans(r, ip):
    return [s for s in r.spans() if s["kind"] == "CLIENT" and
            s["resource"].get("process.executable.name") == "curl" and
            s["attributes"].get("network.peer.address") == ip]


def test_peer_named_by_pod_ip(cluster, agent, receiver):
    """curl on the host calls a pod's IP: its client span and the graph edge name the pod's
    workload. The pod is deleted and its IP given to another pod: the name follows."""
    kube = cluster["kube"]
    port = free_port()
    start_agent(agent, receiver, cluster, port)
    ledger = kube.run_pod("pay", "ledger-6f8d9c7b5-k2j4m",
                          labels={"app": "ledger", "pod-template-hash": "6f8d9c7b5"})
    kube.run_container(ledger, "web", ["/usr/bin/python3", "-m", "http.server",
                                       "--directory", "/app", "8080"])
    ip = ledger["ip"]
    url = f"http://{ip}:8080/"
    wait_http(url)

    def curl_until(name, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            subprocess.run(["curl", "-s", "-o", "/dev/null", url], check=True, timeout=10)
            named = [s for s in curl_spans(receiver, ip)
                     if s["attributes"].get("peer.service") == name]
            if named:
                return named
            time.sleep(0.3)
        return None

    named = curl_until("ledger", 20)
    assert named, ([s["attributes"] for s in curl_spans(receiver, ip)][-3:],
                   api(port, "/api/stats")["k8s"])
    attrs = named[-1]["attributes"]
    print("curl's client span to the ledger pod:", json.dumps(attrs, indent=1, sort_keys=True))
    assert attrs["peer.k8s.namespace.name"] == "pay"
    assert attrs["peer.k8s.pod.name"] == "ledger-6f8d9c7b5-k2j4m"
    assert attrs["peer.k8s.deployment.name"] == "ledger"
    assert "k8s.namespace.name" not in named[-1]["resource"]  # curl itself is on the host
    graph = receiver.wait_for(lambda r: (lambda g: g if any(
        e["server"] == "pay/ledger" and e["client"] == "curl" for e in g["edges"]) else None)(
        api(port, "/api/graph")), 10)
    assert graph, api(port, "/api/graph")["edges"]
    print("service map:", json.dumps({
        "nodes": [n for n in graph["nodes"] if n["id"] in ("curl", "pay/ledger")],
        "edges": [e for e in graph["edges"] if e["server"] == "pay/ledger"]}, indent=1))

    # The pod goes; another, of another namespace and workload, gets its IP.
    remove_pod(kube, ledger)
    reuse_ip_next(cluster, ip)
    vault = kube.run_pod("audit", "vault-0",
                         labels={"controller-revision-hash": "vault-5d6c7b8f9",
                                 "statefulset.kubernetes.io/pod-name": "vault-0"})
    assert vault["ip"] == ip, (vault["ip"], ip)
    # The host's neighbour entry still holds the old pod's MAC (CNI's bridge plugin sends no
    # gratuitous ARP): forget it, as it would be after its timeout.
    subprocess.run(["ip", "neigh", "flush", "to", ip, "dev", mt_cri.BRIDGE], capture_output=True)
    kube.run_container(vault, "web", ["/usr/bin/python3", "-m", "http.server",
                                      "--directory", "/app", "8080"])
    wait_http(url)
    t_switch = time.time_ns()
    named = curl_until("vault", 30)  # within a refresh (10 s), or at once after a miss
    assert named, ([s["attributes"] for s in curl_spans(receiver, ip)][-3:],
                   api(port, "/api/stats")["k8s"])
    attrs = named[-1]["attributes"]
    assert attrs["peer.k8s.namespace.name"] == "audit"
    assert attrs["peer.k8s.statefulset.name"] == "vault"
    first = min(s["start_unix_nano"] for s in named)
    print(f"the name followed the IP {(first - t_switch) / 1e9:.1f} s after the new pod was up")
    # Once the new pod is named, the old one never again.
    later = [s["attributes"].get("peer.service") for s in curl_spans(receiver, ip)
             if s["start_unix_nano"] > first]
    assert "ledger" not in later, later
    k = api(port, "/api/stats")["k8s"]
    print("k8s stats:", k)
    assert k["pods_gone"] >= 1 and k["pod_hits"] >= 2, k
    assert k["pod_lists"] >= 1 and k["pod_statuses"] >= 1, k
    print("ListPodSandbox ms:", k["pod_list_ns_total"] / k["pod_lists"] / 1e6,
          "PodSandboxStatus ms:", k["pod_status_ns_total"] / k["pod_statuses"] / 1e6)
    graph = receiver.wait_for(lambda r: (lambda g: g if any(
        e["server"] == "audit/vault" and e["client"] == "curl" for e in g["edges"]) else None)(
        api(port, "/api/graph")), 10)
    assert graph, api(port, "/api/graph")["edges"]


DEFAULT_SOCKETS = ("/run/containerd/containerd.sock", "/run/crio/crio.sock",
                   "/run/k3s/containerd/containerd.sock")


def test_node_without_cri_socket(agent, receiver):
    """No --cri-socket and none of the runtimes' sockets: one line says so, the agent runs with
    cgroup names and an empty pods table, and keeps looking (every 10 s)."""
    require_agent()
    port = free_port()
    a = agent(["--listen", f"127.0.0.1:{port}"], receiver=receiver)
    present = [p for p in DEFAULT_SOCKETS if os.path.exists(p)]
    deadline = time.monotonic() + 10
    want = "CRI: Kubernetes names from the runtime at" if present else "CRI: no runtime socket"
    while want not in a.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert want in a.stderr_text(), a.stderr_text()
    k = api(port, "/api/stats")["k8s"]
    assert a.alive()
    if not present:  # the machines here have no node runtime running
        assert k["enabled"] == 0 and k["connected"] == 0 and k["pods"] == 0, k
        assert k["pod_lists"] == 0, k
