#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/report.py: turns bench/run.sh's raw files into figures, goals and a table.

    report.py RAW_DIR OUT_DIR        writes OUT_DIR/results.json (+ one file per figure),
                                     prints the table
    report.py --replay RAW BINS      BENCH_ONLY=replay: CPU of each build replaying one recording
    report.py --tls RAW_DIR OUT_DIR  figures 1 and 9 only (BENCH_ONLY=tls): OUT_DIR/tls.json, rows
    report.py --rate RAW_DIR FRAC    prints the fixed rate: FRAC x median saturated rps, agent off
    report.py --snapshot FILE        writes every process's CPU ticks (before/after a measured run)
    report.py --foreign S0 S1 PID    prints the % of the machine's CPU that processes other than PID
                                     and its descendants (and kernel threads) used between S0 and S1

Each figure is agent on vs off from alternated rounds: ratios and differences are taken
within a round (same minute, same machine state), then the median over rounds.
"""
import glob
import json
import os
import re
import statistics
import sys

# Issue 15's goals (figures 1, 1b, 2 at 25 % load, 3 user + kernel, 4, 8), and issue 7's that
# issue 15 did not replace (p50 at 50 % load, write loop, memory, export).
GOALS = {
    "saturated_rps_ratio": (">=", 0.85),
    "sampled_rps_ratio": (">=", 0.92),
    "added_p99_us_low_rate": ("<=", 200.0),
    "added_p50_us": ("<=", 5.0),
    "agent_cpu_total_us_per_request": ("<=", 2.5),
    "completeness_fixed": (">=", 0.999),
    "bpf_ns_per_request": ("<=", 800.0),
    "writeloop_ratio": ("<=", 1.15),
    "rss_steady_mib": ("<=", 32.0),
    "encode_spans_per_s_per_core": (">=", 200000.0),
    "wire_bytes_per_span": ("<=", 80.0),
}

# Counters that say a span (or the data for one) was lost, by stage.
LOSS_COUNTERS = [
    ("kernel", "drops", "ringbuf_full"),
    ("kernel", "drops", "inflight_full"),
    ("user", "bad_events"),
    ("user", "conns_evicted_full"),
    ("user", "conns_not_parsed"),
    ("user", "role_unknown"),
    ("user", "http1", "resyncs"),
    ("user", "http1", "pipeline_drops"),
    ("user", "http1", "orphan_responses"),
    ("otlp", "spans_dropped_queue_full"),
    ("otlp", "spans_dropped_rejected"),
    ("otlp", "spans_dropped_shutdown"),
    ("otlp", "spans_dropped_error"),
]


def load(path, default=None):
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text) if text else default
    except (OSError, ValueError):
        return default


def dig(d, *keys, default=0):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


MIN_ROUNDS = 3


def all_rounds(raw, phase):
    """Round numbers present for a phase, in order."""
    found = set()
    for p in glob.glob(os.path.join(raw, f"{phase}-r*-*")):
        m = re.match(rf"{phase}-r(\d+)-", os.path.basename(p))
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def noisy(raw, phase, r):
    return os.path.exists(os.path.join(raw, f"{phase}-r{r}.noisy"))


def rounds(raw, phase):
    """The rounds the figures use: those other work did not disturb, if there are enough."""
    every = all_rounds(raw, phase)
    clean = [r for r in every if not noisy(raw, phase, r)]
    return clean if len(clean) >= MIN_ROUNDS else every


def foreign_pct(raw, tag):
    v = load(os.path.join(raw, f"{tag}.foreign"))
    return v if isinstance(v, (int, float)) else None


def snapshot(path):
    """The machine's busy ticks and every process's [ppid, own ticks, children's ticks], for --foreign."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        # rest[0] is field 3 (state): ppid is field 4, utime stime cutime cstime fields 14..17.
        procs[d] = [int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])]
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    import time
    with open(path, "w") as f:
        # busy: user + nice + system (irq, softirq and steal are nobody's process time)
        json.dump({"t": time.monotonic(), "busy": cpu[0] + cpu[1] + cpu[2], "procs": procs}, f)


def foreign(s0_path, s1_path, root):
    """
    % of all CPUs used between two snapshots by processes that are neither ours (root and
    its descendants) nor kernel threads. Counted per process: its own ticks, plus what its
    children that ended meanwhile used (its cutime grows by their whole lives, so what
    those had used before the first snapshot is taken off again).
    """
    s0, s1 = load(s0_path, {}), load(s1_path, {})
    p0, p1 = s0.get("procs", {}), s1.get("procs", {})
    parent = {pid: v[0] for pid, v in list(p0.items()) + list(p1.items())}

    def excluded(pid):
        """Ours, or a kernel thread (kthreadd, pid 2, and its children)."""
        for _ in range(64):
            if pid in (root, "2"):
                return True
            pp = parent.get(pid)
            if not pp:
                return False
            pid = str(pp)
        return False

    ticks = 0
    for pid, (ppid, own1, kids1) in p1.items():
        if excluded(pid):
            continue
        _, own0, kids0 = p0.get(pid, [ppid, 0, 0])
        ticks += max(0, own1 - own0) + max(0, kids1 - kids0)
    for pid, (ppid, own0, kids0) in p0.items():
        if pid not in p1 and not excluded(pid):
            ticks -= own0 + kids0  # ended meanwhile: its parent's cutime counted all of it
    wall = max(1e-3, s1.get("t", 0) - s0.get("t", 0))
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, 100.0 * ticks / (wall * hz * os.cpu_count()))


def wrk_figures(path):
    try:
        text = open(path).read()
    except OSError:
        return None, None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    n = re.search(r"(\d+) requests in", text)
    return (float(rps.group(1)) if rps else None, int(n.group(1)) if n else None)


def mem_steady_kib(path):
    """Median Rss, Pss, Pss_Anon over the second half of the agent's life (the load is on by then)."""
    try:
        rows = [[int(x) for x in line.split()[1:4]] for line in open(path) if len(line.split()) == 4]
    except (OSError, ValueError):
        return None, None, None
    rows = [r for r in rows if r[0] > 0]
    rows = rows[len(rows) // 2:]
    if not rows:
        return None, None, None
    return tuple(median([r[i] for r in rows]) for i in range(3))


def window(raw, tag, client_service, client_done):
    """What one agent-on window says: completeness, losses, CPU, memory, bytes."""
    meta = load(os.path.join(raw, f"{tag}.meta.json"), {})
    agent = load(os.path.join(raw, f"{tag}.agent.json"), {})
    sink = load(os.path.join(raw, f"{tag}.sink.json"), {})
    nb, na = meta.get("nginx_before"), meta.get("nginx_after")

    def spans_of(service, pid, kind):
        """Spans of one process (by pid when known: other nginx may run on the node)."""
        return sum(e["spans"] for e in sink.get("by_service", [])
                   if e["kind"] == kind and (e.get("pid") == pid if pid else e["service"] == service))

    w = {"tag": tag}
    if nb is not None and na is not None:
        # Both stub_status fetches happen while the agent is attached: nginx served
        # (na - nb) requests after the first fetch, the first fetch itself, all traced.
        load_requests = na - nb - 1
        srv_expected = na - nb + 1
        srv = spans_of("nginx", meta.get("nginx_pid"), 2)
        cli = spans_of(client_service, meta.get("client_pid"), 3)
        w.update(
            requests=load_requests,
            server_spans=srv,
            server_expected=srv_expected,
            client_spans=cli,
            client_expected=client_done,
        )
        expected = srv_expected + (client_done or 0)
        w["completeness"] = (srv + cli) / expected if expected else None
        w["server_completeness"] = srv / srv_expected if srv_expected else None
        w["missing_spans"] = expected - srv - cli
        ticks = meta.get("agent_cpu_ticks")
        if ticks is not None and load_requests > 0:
            w["agent_cpu_s"] = ticks / meta.get("clk_tck", 100)
            w["agent_cpu_us_per_request"] = w["agent_cpu_s"] * 1e6 / load_requests
    losses = {}
    for path in LOSS_COUNTERS:
        v = dig(agent, *path)
        if v:
            losses[".".join(path)] = v
    w["losses"] = losses
    w["agent_spans"] = dig(agent, "user", "spans", default=None)
    w["exported"] = dig(agent, "otlp", "spans_exported", default=None)
    sent = dig(agent, "otlp", "bytes_sent", default=None)
    if sent and w["exported"]:
        w["wire_bytes_per_span"] = sent / w["exported"]
    w["sink_decode_errors"] = sink.get("decode_errors")
    w["sink_not_kept"] = sink.get("not_kept")
    w["rss_ready_kib"] = load(os.path.join(raw, f"{tag}.rss_ready"))
    w["rss_steady_kib"], w["pss_steady_kib"], w["pss_anon_steady_kib"] = mem_steady_kib(os.path.join(raw, f"{tag}.rss"))
    w["bpf_mapped_kib"] = load(os.path.join(raw, f"{tag}.bpf_mapped"))
    w["rss_peak_kib"] = load(os.path.join(raw, f"{tag}.hwm"))
    w["capture_mode"] = agent.get("capture_mode")
    w["agent_ok"] = bool(agent)
    if w.get("missing_spans", 0) > 0 and not losses:
        w["unaccounted_spans"] = w["missing_spans"]
    return w


def mib(kib):
    return None if kib is None else kib / 1024.0


def saturated(raw):
    out = {"rounds": []}
    for r in rounds(raw, "sat"):
        off, _ = wrk_figures(os.path.join(raw, f"sat-r{r}-off.wrk.txt"))
        on, on_done = wrk_figures(os.path.join(raw, f"sat-r{r}-on.wrk.txt"))
        w = window(raw, f"sat-r{r}-on", "wrk", on_done)
        w.update(rps_off=off, rps_on=on, ratio=on / off if on and off else None, round=r,
                 foreign_pct_off=foreign_pct(raw, f"sat-r{r}-off"),
                 foreign_pct_on=foreign_pct(raw, f"sat-r{r}-on"))
        out["rounds"].append(w)
    out["rounds_left_out"] = [r for r in all_rounds(raw, "sat") if r not in rounds(raw, "sat")]
    rs = out["rounds"]
    out["rps_off"] = median([w["rps_off"] for w in rs])
    out["rps_on"] = median([w["rps_on"] for w in rs])
    out["ratio"] = median([w["ratio"] for w in rs])
    # The same with --cpu-priority idle (a third run in each round).
    idle = []
    for r in rounds(raw, "sat"):
        off, _ = wrk_figures(os.path.join(raw, f"sat-r{r}-off.wrk.txt"))
        on, on_done = wrk_figures(os.path.join(raw, f"sat-r{r}-idle.wrk.txt"))
        if on is None:
            continue
        w = window(raw, f"sat-r{r}-idle", "wrk", on_done)
        w.update(rps_on=on, ratio=on / off if on and off else None, round=r)
        idle.append(w)
    losses = {}
    for w in idle:
        for k, v in w["losses"].items():
            losses[k] = losses.get(k, 0) + v
    # Figure 1b: the agent exporting 10 % of traces (traceidratio 0.1), a fourth run per round.
    samp = []
    for r in rounds(raw, "sat"):
        off, _ = wrk_figures(os.path.join(raw, f"sat-r{r}-off.wrk.txt"))
        on, on_done = wrk_figures(os.path.join(raw, f"sat-r{r}-samp.wrk.txt"))
        if on is None:
            continue
        w = window(raw, f"sat-r{r}-samp", "wrk", on_done)
        agent = load(os.path.join(raw, f"sat-r{r}-samp.agent.json"), {})
        w["sampled_out"] = dig(agent, "user", "spans_sampled_out", default=None)
        exp = (w.get("server_expected") or 0) + (w.get("client_expected") or 0)
        # What reached the sink against a tenth of what was expected (1.0 = all the sampled ones).
        w["sampled_completeness"] = ((w.get("server_spans") or 0) + (w.get("client_spans") or 0)) / (0.1 * exp) if exp else None
        w.update(rps_on=on, ratio=on / off if on and off else None, round=r)
        samp.append(w)
    out["sampled"] = {"rounds": samp, "ratio": median([w["ratio"] for w in samp]),
                      "ratio_range": [min([w["ratio"] for w in samp if w["ratio"]], default=None),
                                      max([w["ratio"] for w in samp if w["ratio"]], default=None)],
                      "rps_on": median([w["rps_on"] for w in samp]),
                      "completeness_vs_tenth": median([w.get("sampled_completeness") for w in samp]),
                      "agent_spans": median([w.get("agent_spans") for w in samp]),
                      "exported": median([w.get("exported") for w in samp]),
                      "sampled_out": median([w.get("sampled_out") for w in samp]),
                      "agent_cpu_us_per_request": median([w.get("agent_cpu_us_per_request") for w in samp])}
    out["idle"] = {"rounds": idle, "ratio": median([w["ratio"] for w in idle]),
                   "rps_on": median([w["rps_on"] for w in idle]),
                   "completeness": median([w.get("completeness") for w in idle]),
                   "losses": losses,
                   "unaccounted_spans": sum(w.get("unaccounted_spans", 0) for w in idle)}
    return out


def tls_saturated(raw):
    """Figure 9: saturated HTTPS, agent on / off, with the TLS probes' own counts."""
    out = {"rounds": []}
    for r in rounds(raw, "tls"):
        off, _ = wrk_figures(os.path.join(raw, f"tls-r{r}-off.wrk.txt"))
        on, on_done = wrk_figures(os.path.join(raw, f"tls-r{r}-on.wrk.txt"))
        w = window(raw, f"tls-r{r}-on", "wrk", on_done)
        agent = load(os.path.join(raw, f"tls-r{r}-on.agent.json"), {})
        calls = dig(agent, "tls", "calls", default=None)
        w.update(rps_off=off, rps_on=on, ratio=on / off if on and off else None, round=r,
                 tls=agent.get("tls"),
                 uprobe_hits_per_request=2 * calls / w["requests"] if calls and w.get("requests")
                 else None)
        out["rounds"].append(w)
    rs = out["rounds"]
    out["rps_off"] = median([w["rps_off"] for w in rs])
    out["rps_on"] = median([w["rps_on"] for w in rs])
    out["ratio"] = median([w["ratio"] for w in rs])
    out["agent_cpu_us_per_request"] = median([w.get("agent_cpu_us_per_request") for w in rs])
    out["uprobe_hits_per_request"] = median([w.get("uprobe_hits_per_request") for w in rs])
    out["completeness"] = median([w.get("completeness") for w in rs])
    return out


def tls_lines(sat, tls):
    """The table's rows for figure 9, beside figure 1's plaintext ones."""
    return [
        f"{'1 saturated HTTP rps, on / off':<46} {fmt(sat['ratio'])}  ({fmt(sat['rps_on'], '.0f')} / "
        f"{fmt(sat['rps_off'], '.0f')}), agent CPU "
        f"{fmt(median([w.get('agent_cpu_us_per_request') for w in sat['rounds']]), '.2f')} us/request",
        f"{'1b saturated HTTP rps, sampled 0.1 / off':<46} {fmt(sat['sampled']['ratio'])}  "
        f"({fmt(sat['sampled']['rps_on'], '.0f')}), spans at sink / (0.1 x expected) "
        f"{fmt(sat['sampled']['completeness_vs_tenth'], '.3f')}, agent spans {fmt(sat['sampled']['agent_spans'], '.0f')}"
        f" exported {fmt(sat['sampled']['exported'], '.0f')} sampled out {fmt(sat['sampled']['sampled_out'], '.0f')}, "
        f"agent CPU {fmt(sat['sampled']['agent_cpu_us_per_request'], '.2f')} us/request",
        f"{'9 saturated HTTPS rps, on / off':<46} {fmt(tls['ratio'])}  ({fmt(tls['rps_on'], '.0f')} / "
        f"{fmt(tls['rps_off'], '.0f')}), agent CPU {fmt(tls['agent_cpu_us_per_request'], '.2f')} us/request",
        f"{'  uprobe hits per HTTPS request (both ends)':<46} {fmt(tls['uprobe_hits_per_request'], '.1f')}, "
        f"completeness {fmt(tls['completeness'], '.4f')}",
    ]


def replayed(raw):
    """Figure 3 without the live noise: agent CPU per recorded request, replayed 3 times."""
    rec = window(raw, "replay-rec", "loadgen",
                 dig(load(os.path.join(raw, "replay-rec.loadgen.json"), {}), "completed", default=None))
    requests = rec.get("requests")
    runs = []
    for i in (1, 2, 3):
        meta = load(os.path.join(raw, f"replay-{i}.meta.json"), {})
        agent = load(os.path.join(raw, f"replay-{i}.agent.json"), {})
        cpu = meta.get("cpu_s")
        if cpu is None or meta.get("rc") != 0 or not requests:
            continue
        runs.append({"cpu_s": cpu, "us_per_request": cpu * 1e6 / requests,
                     "spans_exported": dig(agent, "otlp", "spans_exported", default=None)})
    return {"requests": requests, "recorded_spans_exported": rec.get("exported"),
            "rec_bytes": dig(load(os.path.join(raw, "replay.rec.json"), {}), "rec_bytes", default=None),
            "live_us_per_request": rec.get("agent_cpu_us_per_request"), "runs": runs,
            "us_per_request": median([r["us_per_request"] for r in runs])}


def fixed(raw, phase="fixed", rate_key="rate"):
    out = {"rounds": []}
    for r in rounds(raw, phase):
        off = load(os.path.join(raw, f"{phase}-r{r}-off.loadgen.json"), {})
        on = load(os.path.join(raw, f"{phase}-r{r}-on.loadgen.json"), {})
        w = window(raw, f"{phase}-r{r}-on", "loadgen", on.get("completed"))
        w.update(round=r, foreign_pct_off=foreign_pct(raw, f"{phase}-r{r}-off"),
                 foreign_pct_on=foreign_pct(raw, f"{phase}-r{r}-on"))
        for side, d in (("off", off), ("on", on)):
            if d.get("sent"):
                w[f"late_fraction_{side}"] = d.get("late_1ms", 0) / d["sent"]
        for k in ("p50_us", "p90_us", "p99_us", "p999_us", "achieved_rps", "errors", "late_1ms"):
            w[k + "_off"] = off.get(k)
            w[k + "_on"] = on.get(k)
        for k in ("p50_us", "p99_us", "p999_us"):
            if off.get(k) is not None and on.get(k) is not None:
                w["added_" + k] = on[k] - off[k]
        out["rounds"].append(w)
    out["rounds_left_out"] = [r for r in all_rounds(raw, phase) if r not in rounds(raw, phase)]
    rs = out["rounds"]
    out["late_fraction_off"] = median([w.get("late_fraction_off") for w in rs])
    out["late_fraction_on"] = median([w.get("late_fraction_on") for w in rs])
    out["rate"] = dig(load(os.path.join(raw, "run.json"), {}), rate_key, default=None)
    for k in ("p50_us", "p99_us", "p999_us"):
        out[k + "_off"] = median([w.get(k + "_off") for w in rs])
        out[k + "_on"] = median([w.get(k + "_on") for w in rs])
        out["added_" + k] = median([w.get("added_" + k) for w in rs])
    out["agent_cpu_us_per_request"] = median([w.get("agent_cpu_us_per_request") for w in rs])
    out["completeness"] = median([w.get("completeness") for w in rs])
    out["completeness_min"] = min([w["completeness"] for w in rs if w.get("completeness") is not None], default=None)
    out["modes"] = fixed_modes(raw, phase, rs)
    return out


def fixed_modes(raw, phase, rs):
    """The agent's other scheduling modes (BENCH_LOW_MODES) beside "off" in the same rounds."""
    modes = {}
    for w in rs:
        r = w["round"]
        for path in sorted(glob.glob(os.path.join(raw, f"{phase}-r{r}-*.loadgen.json"))):
            mode = os.path.basename(path)[len(f"{phase}-r{r}-"):-len(".loadgen.json")]
            if mode in ("off", "on"):
                continue
            d = load(path, {})
            m = window(raw, f"{phase}-r{r}-{mode}", "loadgen", d.get("completed"))
            for k in ("p50_us", "p99_us"):
                if d.get(k) is not None and w.get(k + "_off") is not None:
                    m["added_" + k] = d[k] - w[k + "_off"]
            modes.setdefault(mode, []).append(m)
    return {mode: {"rounds": len(ws),
                   "added_p50_us": median([m.get("added_p50_us") for m in ws]),
                   "added_p99_us": median([m.get("added_p99_us") for m in ws]),
                   "agent_cpu_us_per_request": median([m.get("agent_cpu_us_per_request") for m in ws]),
                   "completeness": median([m.get("completeness") for m in ws])}
            for mode, ws in modes.items()}


def mode_text(mode, m):
    """A mode's added p50 / p99 (and for the agent's modes its CPU and completeness)."""
    text = f"{fmt(m['added_p50_us'], '+.1f')} / {fmt(m['added_p99_us'], '+.1f')} us"
    if mode == "offs":
        return text
    if mode == "samp":  # a tenth of the traces exported: completeness against that tenth
        c = m["completeness"] / 0.1 if m["completeness"] is not None else None
        return (text + f", {fmt(m['agent_cpu_us_per_request'], '.2f')} us CPU/req, "
                f"spans {fmt(c, '.3f')} x a tenth of expected")
    return (text + f", {fmt(m['agent_cpu_us_per_request'], '.2f')} us CPU/req, "
            f"completeness {fmt(m['completeness'], '.4f')}")


def mode_flags(mode):
    """What a BENCH_LOW_MODES mode of bench/run.sh stands for (flags, environment, or no agent)."""
    if mode == "idle":
        return "--cpu-priority idle"
    if mode.startswith("batch"):
        return "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=" + mode[len("batch"):]
    if mode == "offs":
        return "no agent, the RSS sampler alone"
    if mode == "samp":
        return "traceidratio 0.1"
    return mode


def writeloop(raw):
    out = {"rounds": []}
    for r in rounds(raw, "write"):
        off = load(os.path.join(raw, f"write-r{r}-off.json"), {})
        on = load(os.path.join(raw, f"write-r{r}-on.json"), {})
        sysm = load(os.path.join(raw, f"write-r{r}-sys.json"), {})
        a, b, c = off.get("ns_per_call"), on.get("ns_per_call"), sysm.get("ns_per_call")
        out["rounds"].append({"round": r, "ns_off": a, "ns_on": b, "ratio": b / a if a and b else None,
                              "ns_syscalls": c, "ratio_syscalls": c / a if a and c else None,
                              "foreign_pct_off": foreign_pct(raw, f"write-r{r}-off"),
                              "foreign_pct_on": foreign_pct(raw, f"write-r{r}-on")})
    out["rounds_left_out"] = [r for r in all_rounds(raw, "write") if r not in rounds(raw, "write")]
    out["ns_off"] = median([w["ns_off"] for w in out["rounds"]])
    out["ns_on"] = median([w["ns_on"] for w in out["rounds"]])
    out["ratio"] = median([w["ratio"] for w in out["rounds"]])
    out["ns_syscalls"] = median([w["ns_syscalls"] for w in out["rounds"]])
    out["ratio_syscalls"] = median([w["ratio_syscalls"] for w in out["rounds"]])
    return out


def bpf_programs(raw, tag="bpfstats"):
    meta = load(os.path.join(raw, f"{tag}.meta.json"), {})
    requests = None
    if meta.get("nginx_after") is not None:
        requests = meta["nginx_after"] - meta["nginx_before"] - 1
    progs = []
    try:
        lines = open(os.path.join(raw, f"{tag}.progs.json")).read().split("\n")
    except OSError:
        lines = []
    for line in lines:
        p = load_line(line)
        if not p:
            continue
        cnt, ns = p.get("run_cnt", 0), p.get("run_time_ns", 0)
        progs.append({
            "name": p.get("name"),
            "id": p.get("id"),
            "run_cnt": cnt,
            "run_time_ns": ns,
            "ns_per_run": ns / cnt if cnt else None,
            "runs_per_request": cnt / requests if requests else None,
            "ns_per_request": ns / requests if requests else None,
        })
    progs.sort(key=lambda p: -(p["run_time_ns"] or 0))
    total = sum(p["ns_per_request"] or 0 for p in progs) if requests else None
    return {"requests": requests, "programs": progs, "total_ns_per_request": total}


def load_line(line):
    line = line.strip()
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def goal(name, value):
    if value is None:
        return "n/a"
    op, target = GOALS[name]
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "NOT met"


def fmt(v, spec=".3f", none="n/a"):
    return none if v is None else format(v, spec)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--snapshot":
        snapshot(sys.argv[2])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--foreign":
        print(int(round(foreign(sys.argv[2], sys.argv[3], sys.argv[4]))))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--rate":
        sat = saturated(sys.argv[2])
        if not sat["rps_off"]:
            sys.exit(1)
        print(int(sat["rps_off"] * float(sys.argv[3])))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--bpf":
        # BENCH_ONLY=bpf: per-program cost of each variant of the agent's flags, medians of rounds.
        variants = sys.argv[3].split(";")
        print(f"{'variant':<32} {'program':<20} {'ns/run':>8} {'runs/req':>9} {'ns/req':>8}  rounds")
        totals = []  # per variant: {round: total ns per request}
        for i, v in enumerate(variants):
            metas = sorted(glob.glob(os.path.join(sys.argv[2], f"bpf-r*-v{i}.meta.json")))
            runs = [bpf_programs(sys.argv[2], os.path.basename(m)[:-len(".meta.json")])
                    for m in metas]
            totals.append({re.search(r"bpf-r(\d+)-v", m).group(1): r["total_ns_per_request"]
                           for m, r in zip(metas, runs)})
            names = sorted({p["name"] for r in runs for p in r["programs"] if p["run_cnt"]})
            for n in names:
                ps = [p for r in runs for p in r["programs"] if p["name"] == n]
                print(f"{v or 'defaults':<32} {n:<20} {fmt(median([p['ns_per_run'] for p in ps]), '.0f'):>8} "
                      f"{fmt(median([p['runs_per_request'] for p in ps]), '.2f'):>9} "
                      f"{fmt(median([p['ns_per_request'] for p in ps]), '.0f'):>8}  {len(ps)}")
            print(f"{v or 'defaults':<32} {'total':<20} {'':>8} {'':>9} "
                  f"{fmt(median([r['total_ns_per_request'] for r in runs]), '.0f'):>8}  {len(runs)}")
        # This VM's speed drifts more between rounds than the builds differ: each variant
        # against the first one in the same round (minutes apart, not the whole run).
        for i, v in enumerate(variants[1:], 1):
            pairs = [(totals[i][r], totals[0][r]) for r in totals[i]
                     if r in totals[0] and totals[i][r] and totals[0][r]]
            if not pairs:
                continue
            ratios = [a / b for a, b in pairs]
            print(f"{v or 'defaults':<32} vs {variants[0] or 'defaults'}: total ns/req "
                  f"{median(ratios):.3f} x (median of {len(ratios)} rounds' ratios, "
                  f"{min(ratios):.3f}-{max(ratios):.3f}), lower in {sum(r < 1 for r in ratios)} "
                  f"of {len(ratios)} rounds")
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--replay":
        # BENCH_ONLY=replay: CPU of each build replaying the same recording, medians of rounds.
        print(f"{'build':<40} {'cpu s':>7} {'us/span':>8} {'spans':>9} {'exported':>9}  rounds (cpu s)")
        for i, b in enumerate(sys.argv[3].split(";")):
            cpu, spans, exported = [], [], []
            for m in sorted(glob.glob(os.path.join(sys.argv[2], f"replayab-r*-v{i}.meta.json"))):
                meta = load(m, {}) or {}
                st = load(m[:-len(".meta.json")] + ".agent.json", {}) or {}
                if meta.get("rc") != 0 or not dig(st, "user", "spans", default=0):
                    print(f"{b or 'default build':<40} failed: {m} rc {meta.get('rc')}")
                    continue
                cpu.append(meta["cpu_s"])
                spans.append(dig(st, "user", "spans"))
                exported.append(dig(st, "otlp", "spans_exported", default=0))
            us = median([c * 1e6 / n for c, n in zip(cpu, spans)])
            print(f"{b or 'default build':<40} {fmt(median(cpu), '.3f'):>7} {fmt(us, '.3f'):>8} "
                  f"{fmt(median(spans), '.0f'):>9} {fmt(median(exported), '.0f'):>9}  "
                  f"{', '.join(format(c, '.3f') for c in cpu)}")
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--latency":
        low = fixed(sys.argv[2], "fixedlow")
        print(f"rounds used: {len(low['rounds'])} (left out {low['rounds_left_out']})")
        print(f"added p50 / p99, agent on:  {fmt(low['added_p50_us'], '+.1f')} / {fmt(low['added_p99_us'], '+.1f')} us  "
              f"(off {fmt(low['p50_us_off'], '.1f')} / {fmt(low['p99_us_off'], '.1f')}), "
              f"{fmt(low['agent_cpu_us_per_request'], '.2f')} us CPU/req, completeness {fmt(low['completeness'], '.4f')}")
        for mode, m in sorted(low["modes"].items()):
            print(f"  {mode_flags(mode)}: {mode_text(mode, m)}")
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        sat, tls = saturated(sys.argv[2]), tls_saturated(sys.argv[2])
        os.makedirs(sys.argv[3], exist_ok=True)
        with open(os.path.join(sys.argv[3], "tls.json"), "w") as f:
            json.dump({"saturated": sat, "tls": tls}, f, indent=1, sort_keys=True)
        print("\n".join(tls_lines(sat, tls)))
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    raw, out_dir = sys.argv[1], sys.argv[2]
    run = load(os.path.join(raw, "run.json"), {})
    sat, fix, wl = saturated(raw), fixed(raw), writeloop(raw)
    low = fixed(raw, "fixedlow", "low_rate")
    mem = window(raw, "mem-on", "loadgen", dig(load(os.path.join(raw, "mem-on.loadgen.json"), {}), "completed", default=None))
    mem["loadgen"] = load(os.path.join(raw, "mem-on.loadgen.json"), {})
    progs = bpf_programs(raw)
    enc = load(os.path.join(raw, "encode.json"), {})
    export = {}
    for proto in ("http", "grpc"):
        runs = [load(os.path.join(raw, f"export-{proto}-{r}.json"), None) for r in (1, 2, 3)]
        runs = [x for x in runs if x]
        export[proto] = {"rounds": runs,
                         "cpu_ns_per_span": median([x.get("cpu_ns_per_span") for x in runs]),
                         "spans_exported": sum(x.get("spans_exported", 0) for x in runs)}
    rep = replayed(raw)
    tls = tls_saturated(raw)

    def mem_summary(ws):
        return {
            "ready_mib": mib(median([w["rss_ready_kib"] for w in ws])),
            "steady_mib": mib(median([w["rss_steady_kib"] for w in ws])),
            "peak_mib": mib(max([w["rss_peak_kib"] or 0 for w in ws], default=None)),
            "pss_steady_mib": mib(median([w["pss_steady_kib"] for w in ws])),
            "pss_anon_steady_mib": mib(median([w["pss_anon_steady_kib"] for w in ws])),
            "bpf_mapped_mib": mib(median([w["bpf_mapped_kib"] for w in ws])),
        }

    memory = {
        "saturated": mem_summary(sat["rounds"]),
        "fixed": mem_summary(fix["rounds"]),
        "idle_conns_and_paths": dict(mem_summary([mem]),
                                     idle_conns=dig(mem, "loadgen", "idle_conns", default=None),
                                     distinct_paths=dig(mem, "loadgen", "npaths", default=None)),
    }
    steady_worst = max([v["steady_mib"] for v in memory.values() if v["steady_mib"] is not None], default=None)
    wire = median([w.get("wire_bytes_per_span") for w in sat["rounds"] + fix["rounds"]])
    enc_rate = dig(enc, "loopback", "add_span_spans_per_s", default=None)
    sat_completeness = median([w.get("completeness") for w in sat["rounds"]])
    sat_missing = median([w.get("missing_spans") for w in sat["rounds"]])
    sat_losses = {}
    for w in sat["rounds"]:
        for k, v in w["losses"].items():
            sat_losses[k] = sat_losses.get(k, 0) + v
    unaccounted = sum(w.get("unaccounted_spans", 0) for w in sat["rounds"] + fix["rounds"] + sat["idle"]["rounds"])

    figures = {
        "saturated_rps_ratio": sat["ratio"],
        "added_p50_us": fix["added_p50_us"],
        "added_p99_us": fix["added_p99_us"],
        "added_p50_us_low_rate": low["added_p50_us"],
        "added_p99_us_low_rate": low["added_p99_us"],
        "agent_cpu_us_per_request": fix["agent_cpu_us_per_request"],
        "agent_cpu_total_us_per_request": (
            fix["agent_cpu_us_per_request"] + progs["total_ns_per_request"] / 1000
            if fix["agent_cpu_us_per_request"] is not None and progs["total_ns_per_request"]
            else None),
        "sampled_rps_ratio": sat["sampled"]["ratio"],
        "agent_cpu_us_per_request_replayed": rep["us_per_request"],
        "saturated_rps_ratio_idle_priority": sat["idle"]["ratio"],
        "completeness_saturated_idle_priority": sat["idle"]["completeness"],
        "completeness_fixed": fix["completeness"],
        "completeness_saturated": sat_completeness,
        "writeloop_ratio": wl["ratio"],
        "rss_steady_mib": steady_worst,
        "encode_spans_per_s_per_core": enc_rate,
        "wire_bytes_per_span": wire,
        "bpf_ns_per_request": progs["total_ns_per_request"],
        "tls_saturated_rps_ratio": tls["ratio"],
        "tls_agent_cpu_us_per_request": tls["agent_cpu_us_per_request"],
        "tls_uprobe_hits_per_request": tls["uprobe_hits_per_request"],
    }
    goals = {k: goal(k, figures[k]) for k in GOALS}
    results = {
        "run": run,
        "machine_start": load(os.path.join(raw, "machine-start.json"), {}),
        "figures": figures,
        "goals": goals,
        "saturated": sat,
        "fixed_rate": fix,
        "fixed_low_rate": low,
        "writeloop": wl,
        "memory": memory,
        "memory_window": mem,
        "export": {"encode": enc, "wire_bytes_per_span": wire, "by_protocol": export},
        "bpf_programs": progs,
        "replayed": rep,
        "tls": tls,
    }
    os.makedirs(out_dir, exist_ok=True)
    for name, part in [("results", results), ("saturated", sat), ("latency", {"rate": fix, "low_rate": low}),
                       ("writeloop", wl),
                       ("memory", memory), ("export", results["export"]), ("bpf_programs", progs)]:
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(part, f, indent=1, sort_keys=True)
            f.write("\n")

    # ---- the table ----
    ms = results["machine_start"]
    lines = []
    lines.append(f"meshtrace bench {run.get('date', '?')}  git {run.get('git', '?')}  Linux {run.get('kernel', '?')}, "
                 f"{run.get('cpus', '?')} CPUs  capture={sat['rounds'][0].get('capture_mode') if sat['rounds'] else '?'}  "
                 f"{run.get('rounds', '?')} rounds  {run.get('elapsed_s', '?')} s"
                 + ("  QUICK (smoke test)" if run.get("quick") else ""))
    if ms.get("other_agents") or (ms.get("busy_pct") or 0) >= 15:
        lines.append(f"WARNING: machine not quiet at start: {ms}")
    used = []
    for label, part in (("saturated", sat), ("fixed", fix), ("low", low), ("write", wl)):
        fs = [w.get(k) for w in part["rounds"] for k in ("foreign_pct_off", "foreign_pct_on")]
        fs = [f for f in fs if f is not None]
        used.append(f"{label} {len(part['rounds'])}" + (f" (left out {part['rounds_left_out']})" if part["rounds_left_out"] else "")
                    + (f" other work <= {max(fs)}%" if fs else ""))
    lines.append("rounds used: " + "; ".join(used))
    if (fix.get("late_fraction_off") or 0) > 0.01:
        lines.append(f"WARNING: without the agent the load generator sent {100 * fix['late_fraction_off']:.1f}% of requests "
                     ">1 ms late: it lacked CPU (other work, or a rate too high: BENCH_RATE); latency figures are unreliable")
    status_errors = sum((load(p, {}) or {}).get("status_errors", 0) for p in glob.glob(os.path.join(raw, "*.loadgen.json")))
    if status_errors:
        lines.append(f"WARNING: nginx answered {status_errors} requests with a non-2xx status")
    lines.append(f"{'figure':<46} {'value':<34} {'goal':<16} result")
    def row(name, value, gkey=None, goal_text=""):
        lines.append(f"{name:<46} {value:<34} {goal_text:<16} {goals.get(gkey, '') if gkey else ''}")
    row("1 saturated rps, on / off", f"{fmt(sat['ratio'])}  ({fmt(sat['rps_on'], '.0f')} / {fmt(sat['rps_off'], '.0f')})",
        "saturated_rps_ratio", ">= 0.85")
    row("1b same, traceidratio 0.1", f"{fmt(sat['sampled']['ratio'])}  ({fmt(sat['sampled']['rps_on'], '.0f')})",
        "sampled_rps_ratio", ">= 0.92")
    si = sat["idle"]
    if si["rounds"]:
        row("  with --cpu-priority idle", f"{fmt(si['ratio'])}  ({fmt(si['rps_on'], '.0f')}), "
            f"completeness {fmt(si['completeness'], '.3f')}")
        row("    its losses (sum of rounds)", ", ".join(f"{k}={v}" for k, v in sorted(si["losses"].items())) or "none")
    row(f"2 added latency @ {fix.get('rate')} req/s, p50", f"{fmt(fix['added_p50_us'], '+.1f')} us  ({fmt(fix['p50_us_off'], '.1f')} -> {fmt(fix['p50_us_on'], '.1f')})",
        "added_p50_us", "<= 5 us")
    row("  added latency, p99", f"{fmt(fix['added_p99_us'], '+.1f')} us  ({fmt(fix['p99_us_off'], '.1f')} -> {fmt(fix['p99_us_on'], '.1f')})")
    if (fix.get("late_fraction_on") or 0) > 0.01:
        row("  (with the agent the machine fell behind:", f"{100 * fix['late_fraction_on']:.0f}% of sends >1 ms late)")
    if low["rounds"]:
        row(f"  at {low.get('rate')} req/s: added p50 / p99", f"{fmt(low['added_p50_us'], '+.1f')} / {fmt(low['added_p99_us'], '+.1f')} us  (off {fmt(low['p50_us_off'], '.1f')} / {fmt(low['p99_us_off'], '.1f')})",
            "added_p99_us_low_rate", "p99 <= 200 us")
        for mode, m in sorted(low.get("modes", {}).items()):
            row(f"    {mode_flags(mode)}" if mode == "offs" else f"    with {mode_flags(mode)}", mode_text(mode, m))
    row("3 agent CPU per request, user + kernel", f"{fmt(figures['agent_cpu_total_us_per_request'], '.2f')} us",
        "agent_cpu_total_us_per_request", "<= 2.5 us")
    row("  user space", f"{fmt(fix['agent_cpu_us_per_request'], '.2f')} us")
    if rep["runs"]:
        row(f"  same work replayed (--replay, 3 runs)", f"{fmt(rep['us_per_request'], '.2f')} us  "
            f"(recorded at {run.get('low_rate')} req/s, live {fmt(rep['live_us_per_request'], '.2f')}; "
            f"spans {rep['runs'][0]['spans_exported']} vs {rep['recorded_spans_exported']} live)")
    row("  kernel programs (bpf_stats)", f"{fmt(progs['total_ns_per_request'] and progs['total_ns_per_request'] / 1000, '.2f')} us")
    samp = low.get("modes", {}).get("samp")
    if samp and samp.get("agent_cpu_us_per_request") is not None:
        row(f"  user space at {low.get('rate')} req/s: all | 0.1 sampled",
            f"{fmt(low['agent_cpu_us_per_request'], '.2f')} | {fmt(samp['agent_cpu_us_per_request'], '.2f')} us  "
            f"(same rounds; spans are built and counted either way)")
    row("4 completeness, fixed rate (spans/expected)", f"{fmt(fix['completeness'], '.4f')}  (min {fmt(fix['completeness_min'], '.4f')})",
        "completeness_fixed", ">= 0.999")
    row("  completeness, saturated", f"{fmt(sat_completeness, '.4f')}  missing {fmt(sat_missing, '.0f')}/round")
    fix_losses = {}
    for w in fix["rounds"]:
        for k, v in w["losses"].items():
            fix_losses[k] = fix_losses.get(k, 0) + v
    for label, losses in (("saturated", sat_losses), ("fixed rate", fix_losses)):
        items = [f"{k}={v}" for k, v in sorted(losses.items())] or ["none"]
        row(f"  loss counters, {label} (sum of rounds)", items[0])
        for it in items[1:]:
            row("", it)
    row("  missing spans no counter explains", f"{unaccounted}", None, "0")
    row("5 write() loop, ns/call on / off", f"{fmt(wl['ratio'])}  ({fmt(wl['ns_on'], '.0f')} / {fmt(wl['ns_off'], '.0f')} ns)",
        "writeloop_ratio", "<= 1.15")
    row("  same, agent in --capture-mode syscalls", f"{fmt(wl['ratio_syscalls'])}  ({fmt(wl['ns_syscalls'], '.0f')} ns)")
    m = memory
    row("6 RSS steady/peak MiB, saturated", f"{fmt(m['saturated']['steady_mib'], '.1f')} / {fmt(m['saturated']['peak_mib'], '.1f')}  (ready {fmt(m['saturated']['ready_mib'], '.1f')})",
        "rss_steady_mib", "<= 32 steady")
    row("  fixed rate", f"{fmt(m['fixed']['steady_mib'], '.1f')} / {fmt(m['fixed']['peak_mib'], '.1f')}")
    row(f"  {m['idle_conns_and_paths']['idle_conns']} idle conns + {m['idle_conns_and_paths']['distinct_paths']} paths",
        f"{fmt(m['idle_conns_and_paths']['steady_mib'], '.1f')} / {fmt(m['idle_conns_and_paths']['peak_mib'], '.1f')}")
    row("  of which: BPF maps mapped / PSS / heap", f"{fmt(m['fixed']['bpf_mapped_mib'], '.1f')} / {fmt(m['fixed']['pss_steady_mib'], '.1f')} / {fmt(m['fixed']['pss_anon_steady_mib'], '.1f')}")
    row("7 export: spans/s/core (add_span: encode+gzip)", f"{fmt(enc_rate, ',.0f')}  (varied: {fmt(dig(enc, 'varied', 'add_span_spans_per_s', default=None), ',.0f')})",
        "encode_spans_per_s_per_core", ">= 200,000")
    row("  encode+export CPU ns/span, http/protobuf | grpc",
        f"{fmt(export['http']['cpu_ns_per_span'], '.0f')} | {fmt(export['grpc']['cpu_ns_per_span'], '.0f')}  (100k spans/s to a local receiver, median of 3)")
    row("  bytes/span on the wire (agent runs)", f"{fmt(wire, '.1f')} B  (protobuf {fmt(dig(enc, 'loopback', 'pb_bytes_per_span', default=None), '.0f')} B)",
        "wire_bytes_per_span", "<= 80 B")
    lines.extend(tls_lines(sat, tls)[2:])
    row("8 kernel programs, ns per request (bpf_stats)", f"{fmt(progs['total_ns_per_request'], '.0f')} ns",
        "bpf_ns_per_request", "<= 800 ns")
    lines.append("  program (fixed rate)                          ns/run   runs/req   ns/req")
    for p in progs["programs"]:
        lines.append(f"  {str(p['name']):<44} {fmt(p['ns_per_run'], '8.0f')} {fmt(p['runs_per_request'], '10.2f')} {fmt(p['ns_per_request'], '8.0f')}")
    xnode = os.path.join(raw, "xnode.txt")
    if os.path.exists(xnode):
        with open(xnode) as f:
            text = f.read().strip()
        lines.append("10 cross-node propagation (tests/integration/test_xnode.py, MESHTRACE_BENCH=1):")
        lines.append("  " + (text.split(": ", 1)[-1] if text else "not measured: see raw/xnode.log"))
    print("\n".join(lines))
    print(f"(details: {os.path.join(out_dir, 'results.json')})")


if __name__ == "__main__":
    main()
