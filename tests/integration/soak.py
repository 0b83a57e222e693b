#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The soak (make soak): the agent under a steady mixed load for SOAK_SECONDS, then a report.

  soak.py [--seconds N] [--out DIR]      (root; build/meshtrace built)

Starts on 127.0.0.1: nginx (HTTP/1.1, and HTTP/2 over h2c), redis-server, PostgreSQL (Debian's,
initdb into a fresh directory, trust auth), the OTLP sink (soak_sink.py), and the agent exporting
traces and metrics to the sink. Then one soak_load.py process per class (see LOAD): HTTP/1
keep-alive and not, HTTP/2, a curl process per request, Redis, PostgreSQL, and a forker that
makes the pid counter wrap; every path, key, query and source address is used once.

While it runs: the agent's VmRSS every second (/proc/PID/status), /api/stats every STATS_EVERY
seconds. At the end: RSS start, peak, end, and the least-squares slope over the second half (the
first is warm-up: tables fill to their working size, the allocator settles); every bounded
table's fill level (/metrics meshtrace_table_usage and _capacity) with its eviction and drop
counters (/api/stats); the kernel maps' fill (bpftool); spans the sink received per class and
side against the requests the load made; pids reused by the load's short-lived clients and
whether the spans named each life right. Writes DIR/report.json and DIR/report.txt."""

import argparse
import glob
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mt_agent  # noqa: E402
from mt_otlp import REPO, free_port  # noqa: E402
from mt_peers import NGINX, stop_proc, wait_port  # noqa: E402

# Requests per second per class (the fork class: children per second). Modest on purpose: two
# cores shared with the servers and the load itself; the soak is about time, not throughput.
LOAD = {"ka": 30, "proxy": 10, "close": 15, "h2": 10, "short": 4, "redis": 20, "pg": 10, "mc": 10,
        "fork": 150}
STATS_EVERY = 30
# Every bounded table of the agent: its name in meshtrace_table_usage{table=...}, and the
# /api/stats counters of what it evicted, refused or dropped when full (or idle).
TABLES = {
    "connections": ["user.conns_evicted_full", "user.conns_evicted_idle"],
    "parser_bytes": ["user.parser_budget_full", "user.parser_alloc_failed",
                     "user.parser_released"],
    "graph_nodes": ["graph.nodes_full"],
    "graph_edges": ["graph.edges_full"],
    "graph_sockets": ["graph.sockets_full", "graph.sockets_idle"],
    "link_requests": ["user.link.requests_evicted", "user.link.unlinked.table_full"],
    "link_threads": ["user.link.owners_evicted"],
    "link_processes": ["user.link.owners_evicted"],
    "link_ties": ["user.link.ties_replaced"],
    "trace_store_traces": ["trace_store.traces_evicted"],
    "trace_store_spans": ["trace_store.spans_dropped_trace_full"],
    "identities": ["identity.evicted", "identity.exits"],
    "listeners": ["peers.listeners_evicted"],
    "dns_names": ["peers.dns_evicted"],
    "dns_lookups": ["dns_spans.evicted"],
    "metric_series": ["metrics.series_full"],
    "otlp_queue": ["otlp.spans_dropped_queue_full"],
}
# Counted losses that may explain a span short of its request: kernel sheds, connections or
# parsers refused for want of room, spans the exporter dropped.
LOSS_COUNTERS = ["kernel.drops.ringbuf_full", "user.conns_evicted_full",
                 "user.parser_budget_full", "user.parser_alloc_failed", "user.bad_events",
                 "user.role_unknown", "otlp.spans_dropped_queue_full",
                 "otlp.spans_dropped_rejected", "otlp.spans_dropped_shutdown"]
# Span classes; "up" is nginx's side of the proxied requests (as many as "proxy" made).
SPAN_CLASSES = ["ka", "close", "h2", "short", "proxy", "up", "redis", "pg", "mc"]
UP_OCTET = 17
MIB = 1024 * 1024


def path_get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# ------------------------------------------------------------------ servers


def start_nginx(d):
    """One worker; every path answers 200 "ok" (the paths never repeat, so no file could); the
    proxy port passes requests on to the upstream port over kept-alive connections from
    127.{UP_OCTET}.0.1."""
    os.makedirs(d, exist_ok=True)
    http_port, h2_port, proxy_port, up_port = free_port(), free_port(), free_port(), free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{"user root root;" if os.geteuid() == 0 else ""}
worker_rlimit_nofile 4096;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    keepalive_timeout 30s;
    keepalive_requests 100000;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{http_port};
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{h2_port} http2;
        location / {{ return 200 "ok\\n"; }}
    }}
    upstream up {{
        server 127.0.0.1:{up_port};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_bind 127.{UP_OCTET}.0.1;
        }}
    }}
    server {{
        listen 127.0.0.1:{up_port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for port in (http_port, h2_port, proxy_port, up_port):
        wait_port(port)
    return proc, {"http": http_port, "h2": h2_port, "proxy": proxy_port, "up": up_port}


def start_redis(d):
    os.makedirs(d, exist_ok=True)
    port = free_port()
    # Not protected mode: the load connects from 127.x.y.z, which it counts as remote.
    proc = subprocess.Popen(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--protected-mode", "no",
                             "--save", "", "--appendonly", "no", "--dir", d,
                             "--logfile", os.path.join(d, "redis.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_memcached(d):
    os.makedirs(d, exist_ok=True)
    port = free_port()
    with open(os.path.join(d, "memcached.log"), "wb") as log:
        proc = subprocess.Popen(["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port),
                                 "-U", "0", "-u", "root", "-t", "1", "-m", "64"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    wait_port(port)
    return proc, port


def start_postgres(d):
    """initdb as the postgres user, then postgres on 127.0.0.1 (it refuses to run as root)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not bins:
        raise RuntimeError("PostgreSQL missing: run 'sudo make deps' (postgresql)")
    bindir = os.path.dirname(bins[-1])
    pw = pwd.getpwnam("postgres")
    os.makedirs(d, exist_ok=True)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    as_pg = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": d}
    data = os.path.join(d, "data")
    subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync", "--no-instructions"], check=True, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **as_pg)
    with open(os.path.join(data, "pg_hba.conf"), "a") as f:
        f.write("host all all 127.0.0.0/8 trust\n")  # the load's sources are 127.x.y.z
    port = free_port()
    log = os.path.join(d, "postgres.log")
    with open(log, "wb") as f:
        os.chown(log, pw.pw_uid, pw.pw_gid)
        proc = subprocess.Popen([os.path.join(bindir, "postgres"), "-D", data, "-p", str(port),
                                 "-k", d, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                 "-c", "max_connections=50"],
                                stdin=subprocess.DEVNULL, stdout=f, stderr=f, **as_pg)
    wait_port(port, timeout=30)
    for _ in range(100):  # listening is not accepting yet: wait for a login to work
        r = subprocess.run([os.path.join(bindir, "psql"), "-X", "-q", "-h", "127.0.0.1", "-p",
                            str(port), "-U", "postgres", "-c", "SELECT 1"],
                           capture_output=True, timeout=30)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    return proc, port


def start_sink(d, cfg):
    cfg_path, port_file = os.path.join(d, "sink.json"), os.path.join(d, "sink.port")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "soak_sink.py"), port_file,
                             cfg_path], stdin=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "sink.stderr"), "wb"))
    deadline = time.monotonic() + 60
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the OTLP sink did not start: see " + d + "/sink.stderr")
        time.sleep(0.05)
    with open(port_file) as f:
        return proc, int(f.read())


def http_get(port, path, timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


# ------------------------------------------------------------------ sampling


class Sampler(threading.Thread):
    """VmRSS of the agent every second; /api/stats and /metrics every STATS_EVERY seconds, as a
    dashboard and a scraper would (so their response buffers are part of the steady state)."""

    def __init__(self, pid, listen_port):
        super().__init__(daemon=True)
        self.pid, self.port = pid, listen_port
        self.rss = []  # (seconds since start, bytes)
        self.stats = []  # (seconds, stats JSON)
        self.scrapes = 0
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()

    def rss_now(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return None

    def run(self):
        next_stats = 10  # the first during warm-up, then every STATS_EVERY
        while not self.stop_ev.wait(1.0 - (time.monotonic() - self.t0) % 1.0):
            t = time.monotonic() - self.t0
            try:
                self.rss.append((round(t, 2), self.rss_now()))
            except OSError:
                return
            if t >= next_stats:
                next_stats += STATS_EVERY
                try:
                    self.stats.append((round(t, 1), json.loads(http_get(self.port, "/api/stats"))))
                    http_get(self.port, "/metrics")
                    self.scrapes += 1
                except (OSError, ValueError):
                    pass


def slope_per_hour(points):
    """Least-squares slope of (seconds, bytes), in MiB per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return (sxy / sxx) * 3600 / MIB if sxx else 0.0


def prom_tables(text):
    """{table: {"usage": v, "capacity": v}} from meshtrace_table_usage/_capacity lines."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^meshtrace_table_(usage|capacity)\{[^}]*table="([^"]+)"[^}]*\}\s+(\S+)',
                     line)
        if m:
            out.setdefault(m.group(2), {})[m.group(1)] = float(m.group(3))
    return out


def agent_maps(pid):
    """{map id: (name, type, max_entries)} of the BPF maps the agent holds open (its fdinfo)."""
    out = {}
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) != "anon_inode:bpf-map":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
            out[int(info["map_id"])] = (int(info["map_type"]), int(info["max_entries"]))
        except (OSError, KeyError, ValueError):
            continue
    return out


def kernel_maps(pid):
    """Entries in each of the agent's BPF hash maps (bpftool map dump), or {} without bpftool."""
    out = {}
    for map_id, (mtype, cap) in agent_maps(pid).items():
        if mtype not in (1, 9):  # BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH
            continue
        try:
            show = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "id", str(map_id)],
                                             capture_output=True, timeout=30).stdout)
            dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)],
                                             capture_output=True, timeout=60).stdout or "[]")
        except (OSError, ValueError, subprocess.TimeoutExpired):
            continue
        out[show.get("name", str(map_id))] = {"entries": len(dump), "capacity": cap,
                                              "lru": mtype == 9}
    return out


# ------------------------------------------------------------------ the run


def run_soak(seconds, out_dir, log=print):
    """Runs the soak for @seconds and returns the report (also written to @out_dir)."""
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mt-soak-")
    os.chmod(work, 0o755)
    run_id = str(int(time.time()))
    procs, loads, ag = [], {}, None
    try:
        nginx, np = start_nginx(os.path.join(work, "nginx"))
        procs.append((nginx, signal.SIGQUIT))
        mc, mc_port = start_memcached(os.path.join(work, "memcached"))
        procs.append((mc, signal.SIGTERM))
        redis, redis_port = start_redis(os.path.join(work, "redis"))
        procs.append((redis, signal.SIGTERM))
        pg, pg_port = start_postgres(os.path.join(work, "pg"))
        procs.append((pg, signal.SIGINT))
        ports = {"ka": np["http"], "proxy": np["proxy"], "close": np["http"], "h2": np["h2"],
                 "short": np["http"], "redis": redis_port, "pg": pg_port, "mc": mc_port,
                 "fork": 0}
        import soak_load
        # A CLIENT span belongs to a class by its server port; HTTP/1 classes share one nginx
        # port, so the sink tells them apart by their path, and by source address for SERVER.
        cfg = {"ports": {str(np["http"]): "http1", str(np["h2"]): "h2",
                         str(np["proxy"]): "proxy", str(np["up"]): "up",
                         str(redis_port): "redis", str(pg_port): "pg", str(mc_port): "mc"},
               "octets": {str(o): c for c, o in soak_load.CLASS_OCTET.items()}}
        cfg["octets"][str(UP_OCTET)] = "up"
        sink, sink_port = start_sink(work, cfg)
        procs.append((sink, signal.SIGTERM))
        listen_port = free_port()
        ag = mt_agent.Agent(["--listen", f"127.0.0.1:{listen_port}"], workdir=work, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "1000",
            "OTEL_METRIC_EXPORT_INTERVAL": "10000"}).start()
        log(f"soak: agent pid {ag.pid}, {seconds}s of load {LOAD}, work dir {work}")
        sampler = Sampler(ag.pid, listen_port)
        sampler.start()
        t_load = time.monotonic()
        for cls, rate in LOAD.items():
            out = os.path.join(work, f"load-{cls}.json")
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "soak_load.py"), cls,
                                  str(rate), str(seconds), str(ports[cls]), out, run_id],
                                 stdin=subprocess.DEVNULL,
                                 stderr=open(os.path.join(work, f"load-{cls}.stderr"), "wb"))
            loads[cls] = (p, out)
        for cls, (p, _) in loads.items():
            p.wait(seconds + 120)
        load_s = time.monotonic() - t_load
        time.sleep(2)  # the last responses' events drained, their spans made
        sampler.stop_ev.set()  # RSS is the load's: not the final queries' and bpftool's
        sampler.join(5)
        final_api = json.loads(http_get(listen_port, "/api/stats"))
        prom = http_get(listen_port, "/metrics")
        kmaps = kernel_maps(ag.pid)
        final = ag.stop()  # SIGTERM: the exporter flushes what it holds
        counts = json.loads(http_get(sink_port, "/counts"))
        results = {}
        for cls, (p, out) in loads.items():
            if p.returncode != 0 or not os.path.exists(out):
                raise RuntimeError(f"load {cls} failed (exit {p.returncode}): see "
                                   f"{work}/load-{cls}.stderr")
            with open(out) as f:
                results[cls] = json.load(f)
        report = build_report(seconds, load_s, sampler, final_api, final, prom, kmaps, counts,
                              results)
        report["work_dir"] = work
    finally:
        if ag is not None and ag.alive():
            ag.kill()
        for cls, (p, _) in loads.items():
            stop_proc(p, signal.SIGKILL)
        for p, sig in reversed(procs):
            stop_proc(p, sig)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out_dir, "report.txt"), "w") as f:
        f.write(summary(report))
    shutil.rmtree(work, ignore_errors=True)
    return report


def build_report(seconds, load_s, sampler, api, final, prom, kmaps, counts, results):
    rss = [(t, v) for t, v in sampler.rss if v is not None]
    half = seconds / 2
    second_half = [(t, v) for t, v in rss if t >= half]
    r = {"seconds": seconds, "load_seconds": round(load_s, 1), "load_rates": LOAD}
    r["rss"] = {
        "samples": len(rss),
        "start_mib": round(rss[0][1] / MIB, 2) if rss else None,
        "warm_mib": round(second_half[0][1] / MIB, 2) if second_half else None,
        "peak_mib": round(max(v for _, v in rss) / MIB, 2) if rss else None,
        "peak_after_warm_mib": round(max(v for _, v in second_half) / MIB, 2)
        if second_half else None,
        "end_mib": round(rss[-1][1] / MIB, 2) if rss else None,
        "slope_mib_per_hour_second_half": round(slope_per_hour(second_half), 3),
        "series": [[t, round(v / MIB, 2)] for t, v in rss],
    }
    # Tables: fill from /metrics, evictions from the last /api/stats (before SIGTERM).
    fills = prom_tables(prom)
    tables = {}
    for name, counters in TABLES.items():
        f = fills.get(name, {})
        peak = max([f.get("usage", 0)] + [
            (prom_usage_from_stats(s, name) or 0) for _, s in sampler.stats])
        tables[name] = {"usage": f.get("usage"), "capacity": f.get("capacity"),
                        "peak_usage_sampled": peak,
                        "counters": {c: path_get(api, c) for c in counters}}
    r["tables"] = tables
    r["tables_missing"] = sorted(n for n, t in tables.items()
                                 if t["usage"] is None or t["capacity"] is None or
                                 any(v is None for v in t["counters"].values()))
    r["tables_unlisted"] = sorted(set(fills) - set(TABLES))
    r["kernel_maps"] = kmaps
    r["kernel_drops"] = path_get(final, "kernel.drops")
    losses = {c: path_get(final, c) or 0 for c in LOSS_COUNTERS}
    r["counted_losses"] = losses
    # Spans against requests, per class and side.
    classes = {}
    for cls in SPAN_CLASSES:
        made = results["proxy" if cls == "up" else cls]["requests"]
        for side in ("client", "server"):
            key = f"{cls}.{side}"
            got = counts["classes"].get(key, 0)
            classes[key] = {"requests": made, "spans": got,
                            "duplicates": counts["duplicates"].get(key, 0),
                            "bad_path": counts["bad_path"].get(key, 0)}
    r["spans"] = classes
    r["requests_failed"] = {c: results[c]["failed"] for c in results if results[c]["failed"]}
    r["first_errors"] = {c: results[c]["first_error"] for c in results
                         if results[c]["first_error"]}
    short = sum(max(0, v["requests"] - v["spans"]) for v in classes.values())
    extra = sum(max(0, v["spans"] - v["requests"]) for v in classes.values())
    r["span_shortfall"] = short
    r["span_excess"] = extra
    r["losses_counted_total"] = sum(losses.values())
    r["spans_exact"] = short == 0 and extra == 0
    # Every span the exporter says the collector accepted reached the sink, and no other.
    r["exported"] = {"agent_spans_exported": path_get(final, "otlp.spans_exported"),
                     "agent_spans_received": path_get(final, "otlp.spans_received"),
                     "sink_spans": counts["spans"], "sink_trace_posts": counts["trace_posts"],
                     "sink_metrics_posts": counts["metrics_posts"],
                     "sink_other_spans": counts["other_total"], "sink_other": counts["other"],
                     "h2_version_wrong": counts["h2_version_wrong"]}
    r["pids"] = pid_report(results, counts)
    r["connections"] = {c: results[c]["connections"] for c in results}
    r["final_stats"] = final
    return r


def prom_usage_from_stats(stats, table):
    """The usage of @table in a periodic /api/stats, where the JSON has it (else None)."""
    where = {"connections": "user.conns_active", "parser_bytes": "user.parser_bytes",
             "graph_nodes": "graph.nodes", "graph_edges": "graph.edges",
             "graph_sockets": "graph.sockets", "link_requests": "user.link.requests_held",
             "link_threads": "user.link.threads", "link_processes": "user.link.processes",
             "link_ties": "user.link.ties", "trace_store_traces": "trace_store.traces",
             "trace_store_spans": "trace_store.spans", "identities": "identity.entries",
             "listeners": "peers.listeners", "dns_names": "peers.dns_entries",
             "dns_lookups": "dns_spans.pending", "metric_series": "metrics.series",
             "otlp_queue": "otlp.queue_spans"}.get(table)
    return path_get(stats, where) if where else None


def pid_report(results, counts):
    """Pids the short-lived clients reused (pid_max wrapped), and whether each life of a reused
    pid got its own name in its spans."""
    lives = {}
    for cls in ("short", "h2"):
        for pid, name, seq in results[cls]["processes"]:
            lives.setdefault(pid, []).append((cls, name, seq))
    reused = {pid: ls for pid, ls in lives.items() if len(ls) > 1}
    right = wrong = missing = 0
    wrong_examples = []
    for pid, ls in reused.items():
        for cls, name, seq in ls:
            got = counts["procs"].get(f"{cls}:{seq}")
            if got is None:
                missing += 1
            elif got == [pid, name]:
                right += 1
            else:
                wrong += 1
                if len(wrong_examples) < 10:
                    wrong_examples.append({"pid": pid, "want": name, "got": got})
    all_right = sum(1 for cls in ("short", "h2") for pid, name, seq in results[cls]["processes"]
                    if counts["procs"].get(f"{cls}:{seq}") == [pid, name])
    fork = results.get("fork", {})
    return {"client_processes": sum(len(ls) for ls in lives.values()),
            "client_processes_named_right": all_right,
            "reused_pids": len(reused), "lives_of_reused_pids": right + wrong + missing,
            "lives_named_right": right, "lives_named_wrong": wrong,
            "lives_without_span": missing, "wrong_examples": wrong_examples,
            "forks": fork.get("requests"), "wraps": fork.get("wraps"),
            "pid_max": fork.get("pid_max")}


def summary(r):
    rs = r["rss"]
    lines = [f"meshtrace soak: {r['seconds']} s of mixed load (rates/s {r['load_rates']})",
             f"RSS: start {rs['start_mib']} MiB, after warm-up {rs['warm_mib']} MiB, peak "
             f"{rs['peak_mib']} MiB, end {rs['end_mib']} MiB; slope over the second half "
             f"{rs['slope_mib_per_hour_second_half']:+.3f} MiB/h ({rs['samples']} samples)",
             "", f"{'table':<20} {'usage':>10} {'capacity':>10} {'peak':>10}  evictions/drops"]
    for name, t in r["tables"].items():
        ctr = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in t["counters"].items())
        lines.append(f"{name:<20} {fmt(t['usage']):>10} {fmt(t['capacity']):>10} "
                     f"{fmt(t['peak_usage_sampled']):>10}  {ctr}")
    if r["tables_missing"]:
        lines.append(f"MISSING table rows: {r['tables_missing']}")
    if r["tables_unlisted"]:
        lines.append(f"tables the agent reports that the soak does not list: "
                     f"{r['tables_unlisted']}")
    for name, m in r["kernel_maps"].items():
        lines.append(f"kernel map {name:<14} {m['entries']:>10} {fmt(m['capacity']):>10}")
    lines += ["", f"kernel drops {r['kernel_drops']}; counted losses {r['counted_losses']}", "",
              f"{'class':<14} {'requests':>9} {'spans':>9} {'dup':>5}"]
    for key, c in r["spans"].items():
        flag = "" if c["spans"] == c["requests"] else "   <-- differs"
        lines.append(f"{key:<14} {c['requests']:>9} {c['spans']:>9} {c['duplicates']:>5}{flag}")
    e = r["exported"]
    lines.append(f"spans: exact in every class: {r['spans_exact']} (short {r['span_shortfall']}, "
                 f"excess {r['span_excess']}, counted losses {r['losses_counted_total']}); agent "
                 f"exported {e['agent_spans_exported']}, sink received {e['sink_spans']} "
                 f"({e['sink_other_spans']} of other traffic)")
    if r["requests_failed"]:
        lines.append(f"requests failed: {r['requests_failed']} {r['first_errors']}")
    p = r["pids"]
    lines.append(f"pids: {p['forks']} forks, {p['wraps']} wraps of pid_max {p['pid_max']}; "
                 f"{p['client_processes']} short-lived clients ({p['client_processes_named_right']}"
                 f" named right), {p['reused_pids']} pids reused by {p['lives_of_reused_pids']} "
                 f"lives: {p['lives_named_right']} named right, {p['lives_named_wrong']} wrong, "
                 f"{p['lives_without_span']} without a span")
    return "\n".join(lines) + "\n"


def fmt(v):
    if v is None:
        return "-"
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "soak"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (the agent loads BPF)")
    if not os.access(mt_agent.BINARY, os.X_OK):
        sys.exit(f"soak: {mt_agent.BINARY} missing: run 'make'")
    report = run_soak(args.seconds, args.out)
    sys.stdout.write(summary(report))
    print(f"soak: report in {args.out}/report.json and report.txt")


if __name__ == "__main__":
    main()
