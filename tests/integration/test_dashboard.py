# SPDX-License-Identifier: Apache-2.0
"""Issue 6: the agent's own page, in Debian's headless chromium (driven by playwright-core from
npm, installed into tests/integration/browser/node_modules on first use).

With a real agent watching the chain curl -> nginx -> backend -> redis-server, the page must show
those services as nodes and the calls as edges with non-zero rates, open a trace in the
waterfall, and log no console error. The screenshot goes to build/dashboard.png (CI artifact).
A second test loads the page against made-up data for 50 services (dashboards/dev/serve.py) and
checks that no two nodes of the map overlap."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from mt_chain import chain  # noqa: F401  (fixture)
from mt_otlp import REPO, free_port
from mt_peers import wait_port
from mt_report import figure

BROWSER_DIR = os.path.join(REPO, "tests", "integration", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = "/usr/bin/node"
PAGE_MAX_BYTES = 300 * 1024
ALLOWED_URL = "http://www.w3.org/2000/svg"


def need_browser():
    """Installs playwright-core (npm ci, from the lockfile) when it is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: run 'sudo make deps' (Debian package chromium)")
    if not os.access(NODE, os.X_OK):
        pytest.fail("node missing: Node.js is expected on every machine")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "ci"], cwd=BROWSER_DIR, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"npm ci in {BROWSER_DIR} failed:\n{r.stdout}\n{r.stderr}"


def page_check(url, screenshot, *args, timeout=180):
    need_browser()
    os.makedirs(os.path.dirname(screenshot), exist_ok=True)
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    r = subprocess.run([NODE, os.path.join(BROWSER_DIR, "page_check.mjs"), url, screenshot,
                        *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, CHROMIUM=CHROMIUM))
    assert r.returncode == 0, f"page_check.mjs exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert not res["error"], f"the page did not get there: {res['error']}\n" \
        f"console errors: {res['console_errors']}\npage errors: {res['page_errors']}\n" \
        f"nodes: {[n['id'] for n in res['nodes']]}\nedges: {res['edges']}"
    assert not res["page_errors"], f"uncaught errors in the page: {res['page_errors']}"
    assert not res["console_errors"], f"console errors: {res['console_errors']}"
    assert not res["failed_requests"], f"requests failed: {res['failed_requests']}"
    assert not res["http_errors"], f"HTTP errors: {res['http_errors']}"
    assert os.path.getsize(screenshot) > 20_000, "the screenshot is (nearly) empty"
    return res


def overlapping(nodes):
    boxes = [(n["id"], n["box"]) for n in nodes]
    out = []
    for i, (a, (ax, ay, aw, ah)) in enumerate(boxes):
        for b, (bx, by, bw, bh) in boxes[i + 1:]:
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append((a, b))
    return out


def check_assets(c):
    """The page and its assets: right types, small, nothing fetched from elsewhere."""
    total = 0
    for path, ctype in (("/", "text/html"), ("/ui/app.js", "text/javascript"),
                        ("/ui/app.css", "text/css"), ("/ui/favicon.svg", "image/svg+xml")):
        status, headers, body = c.get(path)
        assert status == 200, path
        assert headers["Content-Type"].startswith(ctype), f"{path}: {headers['Content-Type']}"
        assert "no-store" in headers.get("Cache-Control", "") or headers.get("ETag"), path
        total += len(body)
        text = body.decode("utf-8")
        urls = set(re.findall(r"(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert urls <= {ALLOWED_URL}, f"{path} refers to other hosts: {urls - {ALLOWED_URL}}"
    try:
        c.get("/ui/no-such-file.js")
        raise AssertionError("/ui/no-such-file.js answered")
    except Exception as e:  # urllib raises HTTPError for 404
        assert "404" in str(e), e
    assert total < PAGE_MAX_BYTES, f"the page is {total} bytes; keep it under {PAGE_MAX_BYTES}"
    return total


def find_backend_trace(c, backend_pid):
    """A trace through the backend among those /api/traces lists, read whole, or None."""
    listed = c.get_json("/api/traces?sort=slowest&limit=200") + \
        c.get_json("/api/traces?sort=recent&limit=200")
    for t in listed:
        assert set(t) >= {"trace_id", "root_name", "root_service", "start_unix_ms",
                          "duration_ms", "spans", "error"}, t
    best = None
    for t in listed:
        if t["spans"] < 2:
            continue
        try:
            full = c.get_json(f"/api/traces/{t['trace_id']}")
        except Exception:
            continue  # forgotten in between: traffic from elsewhere on the node
        if any(s.get("pid") == backend_pid for s in full["spans"]):
            best = full
            break
    return best


def check_trace_api(c, backend_pid, timeout=30):
    """/api/traces lists traces; one of the chain's (traffic keeps flowing: other traffic on
    the node may push the first ones out of the store), read whole, has no header values or
    bodies among its attributes."""
    deadline = time.monotonic() + timeout
    best = find_backend_trace(c, backend_pid)
    while not best and time.monotonic() < deadline:
        time.sleep(0.5)
        best = find_backend_trace(c, backend_pid)
    assert best, f"no trace through the backend among /api/traces within {timeout}s"
    for s in best["spans"]:
        assert set(s) >= {"span_id", "parent_span_id", "name", "kind", "service",
                          "start_unix_ns", "end_unix_ns", "status", "attributes"}, s
        for k in s["attributes"]:
            assert ".header." not in k and not k.endswith(".body"), f"attribute {k} in {s}"
    return best


def test_dashboard_chain(request, chain):  # noqa: F811
    chain.drive_in_background(seconds=120)
    graph = chain.wait_edges([("curl", "nginx"), ("nginx", "backend")])
    redis_name = next((s["name"] for s in graph.get("services", [])
                       if chain.redis.proc.pid in s.get("pids", [])), "redis-server")
    page_bytes = check_assets(chain)
    trace = check_trace_api(chain, chain.backend.pid)

    shot = os.path.join(REPO, "build", "dashboard.png")
    pairs = lambda g: {(e["client"], e["server"]) for e in g.get("edges", [])}  # noqa: E731
    before = pairs(chain.get_json("/api/graph"))
    res = page_check(chain.base + "/", shot, "--edges", "curl>nginx,nginx>backend",
                     "--min-nodes", "4")
    after = pairs(chain.get_json("/api/graph"))
    chain.stop()
    nodes = {n["id"]: n for n in res["nodes"]}
    for want in ("curl", "nginx", "backend"):
        assert want in nodes, f"no {want} node on the map; nodes: {sorted(nodes)}"
        assert want in res["services"] or want == "curl", \
            f"{want} missing from the services table: {res['services']}"
    edges = {(e["client"], e["server"]): e for e in res["edges"]}
    for pair in (("curl", "nginx"), ("nginx", "backend")):
        assert edges[pair]["rate"] > 0, f"edge {pair} shows no rate: {edges[pair]}"
    # The map draws what /api/graph holds: every chain edge the graph had all along is drawn
    # (backend -> redis is a TCP-level edge until a redis parser feeds it requests).
    chain_edges = {("curl", "nginx"), ("nginx", "backend"), ("backend", redis_name)}
    required = chain_edges & before & after
    assert required <= set(edges), f"chain edges {required - set(edges)} held by /api/graph " \
        f"but not on the map; map edges: {sorted(edges)}"
    assert set(edges) <= before | after, f"edges on the map that /api/graph never had: " \
        f"{set(edges) - (before | after)}"
    redis_rate = edges[("backend", redis_name)]["rate"] if ("backend", redis_name) in edges \
        else None
    assert not overlapping(res["nodes"]), f"nodes overlap: {overlapping(res['nodes'])}"
    assert res["waterfall_rows"] >= 2, res
    assert res["attributes"].get("span id"), f"no span details: {res['attributes']}"
    assert "OTLP export" in res["health_text"] and "Dropped in the kernel" in res["health_text"]
    figure(request, f"page: {page_bytes / 1024:.1f} KiB embedded; map showed {len(nodes)} "
           f"nodes, {len(edges)} edges (curl->nginx {edges[('curl', 'nginx')]['rate']:.2f}/s, "
           f"nginx->backend {edges[('nginx', 'backend')]['rate']:.2f}/s, backend->{redis_name} "
           f"{'not in /api/graph' if redis_rate is None else f'{redis_rate:.2f}/s'}); waterfall of "
           f"{res['waterfall_rows']} spans; API trace through backend has "
           f"{len(trace['spans'])} spans; screenshot {os.path.relpath(shot, REPO)}")


def test_dashboard_fifty_services(request, tmp_path):
    port = free_port()
    srv = subprocess.Popen([sys.executable, os.path.join(REPO, "dashboards", "dev", "serve.py"),
                            "--port", str(port), "--services", "50"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        wait_port(port)
        shot = os.path.join(REPO, "build", "dashboard-50-services.png")
        res = page_check(f"http://127.0.0.1:{port}/", shot, "--min-nodes", "50")
    finally:
        srv.terminate()
        srv.wait(10)
    assert len(res["nodes"]) >= 50
    assert len(res["services"]) >= 50
    assert not overlapping(res["nodes"]), f"nodes overlap: {overlapping(res['nodes'])}"
    assert res["waterfall_rows"] >= 2
    figure(request, f"50-service map: {len(res['nodes'])} nodes, {len(res['edges'])} edges, "
           f"no overlaps; screenshot {os.path.relpath(shot, REPO)}")
