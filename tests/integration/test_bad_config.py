# SPDX-License-Identifier: Apache-2.0
"""Bad configuration never half-starts (issue 17): every flag and every OTEL_* and MESHTRACE_*
variable the agent reads, each with a malformed, an empty, a huge (64 KiB) and an out-of-range
value. A fatal one gives exactly one line on stderr naming the flag or variable, exit 2, and the
agent made no bpf() or perf_event_open() call, bound no port and left no file (strace watches
each run). An empty variable is unset: those start (on an empty --replay, so no BPF is loaded).
A boolean that is neither true nor false is fatal too, for every boolean alike (the OTel spec
would read it as false with a warning; README.md says why the agent does not).
A failure after something was made (the listener, the --jsonl file) undoes it.
No case loads BPF: the whole file runs in a few seconds."""

import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

import pytest

from mt_agent import BINARY, clean_env
from mt_otlp import REPO, free_port

HUGE = 64 * 1024
FORGED = "x\nmeshtrace: ready\x1b[2J\x1b]0;pwned\x07"
# Lines the agent prints on every run that starts: not warnings.
STARTED = ("meshtrace: ready", "meshtrace: replaying", "meshtrace: no OTLP endpoint",
           "meshtrace: replay: finished", "meshtrace: final stats", "meshtrace: exporting")


@dataclass
class Case:
    name: str  # the flag or variable the line must name
    kind: str  # malformed, empty, huge, out-of-range, forged, missing, ...
    args: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    expect: str = "fatal"  # fatal | start (no line about it) | warn (one line naming it)

    @property
    def id(self):
        return f"{self.name}:{self.kind}"


def flag_cases(tmp):
    digits = "9" * HUGE
    cases = []

    def flag(name, malformed=None, out_of_range=None, huge="a" * HUGE, empty=True,
             forged=FORGED):
        if malformed is not None:
            cases.append(Case(name, "malformed", [name, malformed]))
        if out_of_range is not None:
            cases.append(Case(name, "out-of-range", [name, out_of_range]))
        if huge is not None:
            cases.append(Case(name, "huge", [name, huge]))
        if empty:
            cases.append(Case(name, "empty", [name, ""]))
        cases.append(Case(name, "missing", [name]))  # no value at all
        cases.append(Case(name, "forged", [name, forged]))

    in_no_dir = os.path.join(tmp, "no-such-dir", FORGED)
    flag("--capture-bytes", "12x", "4097", digits)
    flag("--capture-mode", "fast")
    flag("--max-connections", "1e5", "15", digits)
    flag("--stats-interval", "1s", "86401", digits)
    flag("--listen", "localhost", "127.0.0.1:65536", "1" * HUGE + ":9464")
    flag("--cpu-priority", "high")
    flag("--keep-slow-traces", "1s", "3600001", digits)
    cases.append(Case("--keep-slow-traces", "zero", ["--keep-slow-traces", "0"]))
    flag("--jsonl", os.path.join(tmp, "no", "such", "dir.jsonl"), None, "/" + "a" * HUGE,
         forged=in_no_dir)
    flag("--record", os.path.join(tmp, "no", "such", "dir.rec"), None, "/" + "a" * HUGE,
         forged=in_no_dir)
    flag("--replay", os.path.join(tmp, "no-such.rec"), None, "/" + "a" * HUGE,
         forged=in_no_dir)
    cases.append(Case("--jsonl", "a directory", ["--jsonl", tmp]))
    # --cgroup: a cgroup v2 directory, checked before anything starts.
    flag("--cgroup", os.path.join(tmp, "no-such-cgroup"), tmp, "/" + "a" * HUGE,
         forged=in_no_dir)
    # --cri-socket: off, or any absolute path a unix socket can have (the runtime may come
    # later), not longer.
    cases.append(Case("--cri-socket", "huge", ["--cri-socket", "/" + "a" * HUGE]))
    cases.append(Case("--cri-socket", "out-of-range", ["--cri-socket", "/" + "a" * 107]))
    cases.append(Case("--cri-socket", "relative", ["--cri-socket", "run/containerd.sock"]))
    cases.append(Case("--cri-socket", "forged", ["--cri-socket", FORGED]))
    cases.append(Case("--cri-socket", "empty", ["--cri-socket", ""]))
    cases.append(Case("--cri-socket", "missing", ["--cri-socket"]))
    for name in ("--record-query", "--no-tls", "--propagate", "--keep-error-traces", "--verbose",
                 "--quiet", "--help",
                 "--version"):
        cases.append(Case(name, "value-given", [name + "=1"]))
        cases.append(Case(name, "forged", [name + "=" + FORGED]))
    cases.append(Case("--no-such-flag", "unknown", ["--no-such-flag"]))
    cases.append(Case("-x", "unknown", ["-x"]))
    cases.append(Case("stray", "argument", ["stray"]))
    cases.append(Case("--record", "with --replay", ["--record", os.path.join(tmp, "r.rec"),
                                                    "--replay", "/dev/null"]))
    return cases


def otlp(what):
    return [f"OTEL_EXPORTER_OTLP_{what}", f"OTEL_EXPORTER_OTLP_TRACES_{what}",
            f"OTEL_EXPORTER_OTLP_METRICS_{what}"]


def env_cases(tmp):
    not_pem = os.path.join(tmp, "not.pem")
    with open(not_pem, "w") as f:
        f.write("hello\n")
    cases = []

    def var(name, malformed=None, out_of_range=None, huge="a" * HUGE, context=None,
            forged=True):
        ctx = dict(context or {})
        for kind, value in (("malformed", malformed), ("out-of-range", out_of_range),
                            ("huge", huge), ("forged", FORGED if forged else None)):
            if value is not None:
                cases.append(Case(name, kind, env=dict(ctx, **{name: value})))
        # Empty is unset (the spec): the agent starts (without the context, which would
        # export to an address that is not ours).
        cases.append(Case(name, "empty", env={name: ""}, expect="start"))

    for name in otlp("ENDPOINT"):
        var(name, "collector:4318", "http://127.0.0.1:65536", "http://" + "a" * HUGE)
    for name in otlp("HEADERS"):
        var(name, "no-equals-sign", ",".join(f"h{i}=v" for i in range(200)), "k=" + "v" * HUGE)
    for name in otlp("COMPRESSION"):
        var(name, "zstd")
    for name in otlp("TIMEOUT"):
        var(name, "10s", "0", "9" * HUGE)
    for name in otlp("PROTOCOL"):
        var(name, "udp")
    grpc = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}
    for name in otlp("INSECURE"):
        var(name, "yes", None, context=grpc)
    for what in ("CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"):
        for name in otlp(what):
            var(name, not_pem, os.path.join(tmp, "missing.pem"), "/" + "a" * HUGE)
    var("OTEL_BSP_SCHEDULE_DELAY", "soon", "99999999999999", "9" * HUGE)
    var("OTEL_BSP_EXPORT_TIMEOUT", "soon", "0", "9" * HUGE)
    var("OTEL_BSP_MAX_QUEUE_SIZE", "many", "0", "9" * HUGE)
    var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many", "0", "9" * HUGE)
    var("OTEL_RESOURCE_ATTRIBUTES", "novalue", "k=%zz", "k=" + "v" * HUGE)
    var("OTEL_SERVICE_NAME", "bad\udcff", None, "a" * HUGE, forged=False)
    var("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,P O S T", ",", "A" * HUGE)
    var("OTEL_TRACES_SAMPLER", "sometimes")
    ratio = {"OTEL_TRACES_SAMPLER": "traceidratio"}
    var("OTEL_TRACES_SAMPLER_ARG", "half", "1.5", "0." + "1" * HUGE, context=ratio)
    var("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes")
    var("OTEL_METRIC_EXPORT_INTERVAL", "1m", "99", "9" * HUGE)
    # Booleans other than true/false are fatal, like every bad value (README.md: why not the
    # spec's warning); 1 is not a true value for an OTEL_* boolean.
    var("OTEL_SDK_DISABLED", "yes", "1")
    cases.append(Case("OTEL_SDK_DISABLED", "blanks", env={"OTEL_SDK_DISABLED": " false "},
                      expect="start"))
    # A sampler argument is ignored by samplers that take none.
    cases.append(Case("OTEL_TRACES_SAMPLER_ARG", "ignored by always_on",
                      env={"OTEL_TRACES_SAMPLER_ARG": "half"}, expect="start"))
    return cases


def meshtrace_cases(tmp):
    """The MESHTRACE_* variables, checked like their flags (and even when the flag is given)."""
    cases = []

    def var(name, malformed, out_of_range, huge, good):
        for kind, value in (("malformed", malformed), ("out-of-range", out_of_range),
                            ("huge", huge), ("forged", FORGED)):
            cases.append(Case(name, kind, env={name: value}))
        cases.append(Case(name, "empty", env={name: ""}, expect="start"))
        if good:
            cases.append(Case(name, "good", env={name: good}, expect="start"))

    var("MESHTRACE_PROPAGATE", "yes", "2", "1" * HUGE, "0")
    var("MESHTRACE_CRI_SOCKET", "run/containerd.sock", "/" + "a" * 107, "/" + "a" * HUGE, "off")
    var("MESHTRACE_CGROUP", os.path.join(tmp, "no-such-cgroup"), tmp, "/" + "a" * HUGE, None)
    var("MESHTRACE_NO_TLS", "yes", "2", "1" * HUGE, "0")
    var("MESHTRACE_KEEP_ERROR_TRACES", "yes", "2", "1" * HUGE, "true")
    var("MESHTRACE_KEEP_SLOW_TRACES_MS", "1s", "0", "9" * HUGE, "250")
    # The flag wins, but a bad variable is still bad configuration.
    cases.append(Case("MESHTRACE_CRI_SOCKET", "bad under the flag", ["--cri-socket", "off"],
                      env={"MESHTRACE_CRI_SOCKET": "relative.sock"}))
    cases.append(Case("MESHTRACE_PROPAGATE", "bad under the flag", ["--propagate"],
                      env={"MESHTRACE_PROPAGATE": "on"}))
    return cases


# Read by the agent but not configuration: switches the tests set (the older kernels' path,
# every call an event as before skip hints); any value turns it on, there is nothing to get wrong.
NOT_CONFIG = {"MESHTRACE_TEST_NO_BPF_LOOP", "MESHTRACE_TEST_NO_SKIP"}


def run_case(case, workdir):
    """Runs the agent on one case under strace; returns (case, result, syscalls, leftovers)."""
    os.makedirs(workdir)
    trace = workdir + ".strace"
    port = free_port()
    if case.expect == "fatal":
        # What a real start would make: a listener and a --jsonl file (the case's flags,
        # given after, win where they name the same flag).
        args = ["--listen", f"127.0.0.1:{port}", "--jsonl", os.path.join(workdir, "spans.jsonl")]
    else:
        args = ["--replay", "/dev/null", "--listen", "off"]
    argv = [shutil.which("strace"), "-f", "-qq", "-o", trace, "-e",
            "trace=bpf,perf_event_open,bind,listen"] + [BINARY] + args + case.args
    env = clean_env(case.env)
    res = subprocess.run(argv, env=env, capture_output=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    with open(trace, errors="replace") as f:
        calls = [l for l in f if "(" in l and not l.startswith("+++")]
    leftovers = sorted(os.listdir(workdir))
    port_free = True
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            port_free = False
    return case, res, calls, leftovers, port_free


def lines_of(res):
    return [l for l in res.stderr.decode("utf-8", "replace").splitlines() if l.strip()]


def check(case, res, calls, leftovers, port_free):
    """The failures of one case, as text ('' when it behaved)."""
    lines = lines_of(res)
    if case.expect == "fatal":
        if res.returncode != 2:
            return f"exit {res.returncode}, want 2; stderr {lines[:5]}"
        if len(lines) != 1:
            return f"{len(lines)} lines on stderr, want 1: {lines[:5]}"
        if case.name not in lines[0]:
            return f"the line does not name {case.name}: {lines[0][:300]!r}"
        if len(lines[0]) > 1024 + 20:
            return f"a line of {len(lines[0])} bytes"
        if any(c in lines[0] for c in "\x1b\x07\r") or "\x9b" in lines[0]:
            return f"control characters echoed: {lines[0][:300]!r}"
        if calls:
            return f"half-started, syscalls made: {calls[:5]}"
        if leftovers:
            return f"files left behind: {leftovers}"
        if not port_free:
            return "the listener's port is still taken"
        return ""
    if res.returncode != 0:
        return f"exit {res.returncode}, want 0 (it should start); stderr {lines[:5]}"
    if any(c.startswith("bpf(") or c.split("(")[0].split()[-1] == "bpf" for c in calls):
        return f"--replay loaded BPF: {calls[:3]}"
    extra = [l for l in lines if not l.startswith(STARTED)]
    if case.expect == "start" and extra:
        return f"unexpected lines: {extra[:3]}"
    if case.expect == "warn":
        if len(extra) != 1 or case.name not in extra[0]:
            return f"want one warning naming {case.name}, got {extra[:3]}"
        if any(c in extra[0] for c in "\x1b\x07\r"):
            return f"control characters echoed: {extra[0][:300]!r}"
    return ""


@pytest.fixture(scope="module")
def strace():
    if not shutil.which("strace"):
        pytest.fail("strace missing: run 'sudo make deps'")


def run_all(cases, tmp_path):
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(run_case, c, str(tmp_path / f"case{n}"))
                   for n, c in enumerate(cases)]
        for fut in futures:
            case, res, calls, leftovers, port_free = fut.result()
            why = check(case, res, calls, leftovers, port_free)
            if why:
                failures.append(f"{case.id}: {why}")
    return failures


def test_every_flag(strace, tmp_path):
    cases = flag_cases(str(tmp_path))
    names = {c.name for c in cases}
    # Every option --help lists is covered.
    helptext = subprocess.run([BINARY, "--help"], capture_output=True, text=True).stdout
    listed = {w.rstrip(",") for w in helptext.split() if w.startswith("--")}
    assert listed - names == set(), f"flags not covered: {listed - names}"
    failures = run_all(cases, tmp_path)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def names_read(prefix, after):
    """The variable names starting with @prefix that a string literal in agent/**.c spells
    (followed by the regex @after), and that --help mentions."""
    read = set()
    for root, _, files in os.walk(os.path.join(REPO, "agent")):
        for fn in files:
            if fn.endswith(".c"):
                with open(os.path.join(root, fn)) as f:
                    read |= set(re.findall(rf'"({prefix}[A-Z_]*[A-Z]){after}', f.read()))
    helptext = subprocess.run([BINARY, "--help"], capture_output=True, text=True).stdout
    return read | set(re.findall(rf"\b({prefix}[A-Z_]*[A-Z])\b", helptext))


def test_every_otel_variable(strace, tmp_path):
    cases = env_cases(str(tmp_path))
    names = {c.name for c in cases}
    # Every OTEL_* name the agent's sources spell out, and --help lists, is covered (the
    # per-signal names are made from the general ones with "OTEL_EXPORTER_OTLP_%s_").
    read = names_read("OTEL_", '[="]')
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in read and "OTEL_TRACES_SAMPLER" in read, read
    missing = read - names
    assert not missing, f"OTEL_* variables not covered: {sorted(missing)}"
    failures = run_all(cases, tmp_path)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def test_every_meshtrace_variable(strace, tmp_path):
    cases = meshtrace_cases(str(tmp_path))
    names = {c.name for c in cases}
    # Every MESHTRACE_* variable the agent's sources spell out, and --help lists, is covered.
    read = names_read("MESHTRACE_", '"')
    assert {"MESHTRACE_PROPAGATE", "MESHTRACE_CRI_SOCKET"} <= read, read
    missing = read - names - NOT_CONFIG
    assert not missing, f"MESHTRACE_* variables not covered: {sorted(missing)}"
    failures = run_all(cases, tmp_path)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def test_later_failure_removes_what_it_made(strace, tmp_path):
    """--jsonl made, then --replay cannot be read: the file goes again; a --jsonl file that was
    there before (the user's) stays, untouched."""
    mine = tmp_path / "new.jsonl"
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text("kept\n")
    for path in (mine, theirs):
        res = subprocess.run([BINARY, "--listen", "off", "--jsonl", str(path), "--replay",
                              str(tmp_path / "missing.rec")], env=clean_env(),
                             capture_output=True, timeout=30)
        lines = lines_of(res)
        assert res.returncode == 2 and len(lines) == 1 and "--replay" in lines[0], lines
    assert not mine.exists(), "the --jsonl file made before the failure was left"
    assert theirs.read_text() == "kept\n"


def test_listen_port_taken(strace, tmp_path):
    """The port is another process's: one line naming --listen, nothing else made."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        jsonl = tmp_path / "spans.jsonl"
        trace = tmp_path / "strace"
        res = subprocess.run([shutil.which("strace"), "-f", "-qq", "-o", str(trace), "-e",
                              "trace=bpf,perf_event_open", BINARY, "--listen",
                              f"127.0.0.1:{port}", "--jsonl", str(jsonl)], env=clean_env(),
                             capture_output=True, timeout=30)
    lines = lines_of(res)
    assert res.returncode == 2 and len(lines) == 1 and "--listen" in lines[0], lines
    assert not jsonl.exists()
    assert not [l for l in trace.read_text().splitlines() if "(" in l], trace.read_text()
