# SPDX-License-Identifier: Apache-2.0
"""The command line: bad flags and bad environment exit 2 with one line; --help documents
every option; without root the agent says so and exits 2. These load no BPF."""

import os
import shutil
import tempfile

import pytest

from mt_agent import BINARY, replay_binary, run_cli

OPTIONS = ["--jsonl", "--capture-bytes", "--capture-mode", "--record-query", "--stats-interval",
           "--max-connections", "--cpu-priority", "--help", "--version", "-v"]
ENV_VARS = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION",
            "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME", "OTEL_METRICS_EXEMPLAR_FILTER",
            "OTEL_SDK_DISABLED"]


@pytest.fixture(autouse=True)
def binary():
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"{BINARY} missing: run 'make'")


def one_line_exit_2(res, names=()):
    """Exit 2 and one line on stderr that names at least one of `names` (the flag or value)."""
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2, f"exit {res.returncode}, stderr {res.stderr!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    if names:
        assert any(n in lines[0] for n in names), f"none of {names} named in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("args", [
    ["--no-such-flag"],
    ["--capture-mode", "bogus"],
    ["--capture-bytes", "abc"],
    ["--capture-bytes", "-5"],
    ["--stats-interval", "soon"],
    ["--max-connections", "0x"],
    ["--cpu-priority", "high"],
    ["--jsonl"],
    ["stray-argument"],
], ids=lambda args: " ".join(args))
def test_bad_flags(args):
    one_line_exit_2(run_cli(args), args)


@pytest.mark.parametrize("env", [
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "not a url"},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x/v1/traces"},
    {"OTEL_EXPORTER_OTLP_COMPRESSION": "brotli"},
    {"OTEL_EXPORTER_OTLP_TIMEOUT": "ten"},
    {"OTEL_METRICS_EXEMPLAR_FILTER": "sometimes"},
    {"OTEL_SERVICE_NAME": "bad\udcff"},
], ids=lambda env: " ".join(f"{k}={v}" for k, v in env.items()))
def test_bad_env(env):
    one_line_exit_2(run_cli([], env=env), list(env))


# Samplers the spec names that we do not implement, and ratios that are not in [0, 1]: refused
# before anything starts, with the variable, the value and what is accepted on one line.
@pytest.mark.parametrize("env", [
    {"OTEL_TRACES_SAMPLER": "jaeger_remote"},
    {"OTEL_TRACES_SAMPLER": "parentbased_jaeger_remote", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
    {"OTEL_TRACES_SAMPLER": "xray"},
    {"OTEL_TRACES_SAMPLER": "sometimes"},
    {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
    {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.1"},
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
], ids=lambda env: " ".join(f"{k}={v}" for k, v in env.items()))
def test_bad_sampler(env):
    var = "OTEL_TRACES_SAMPLER_ARG" if "OTEL_TRACES_SAMPLER_ARG" in env and \
        env["OTEL_TRACES_SAMPLER"].endswith("traceidratio") else "OTEL_TRACES_SAMPLER"
    line = one_line_exit_2(run_cli([], env=env), [f"{var}='{env[var]}'"])
    if var == "OTEL_TRACES_SAMPLER":
        assert "always_on" in line and "parentbased_traceidratio" in line, line
    else:
        assert "0 to 1" in line, line


def test_help_documents_every_option():
    res = run_cli(["--help"])
    assert res.returncode == 0, res
    text = res.stdout + res.stderr
    missing = [o for o in OPTIONS + ENV_VARS if o not in text]
    assert not missing, f"--help does not mention {missing}"


def test_version():
    res = run_cli(["--version"])
    assert res.returncode == 0 and (res.stdout + res.stderr).strip(), res


def test_not_root():
    """As nobody, with no capabilities: one line naming the cause and the fix, exit 2."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to drop to nobody) and setpriv")
    d = tempfile.mkdtemp(prefix="mt-notroot-")
    try:
        os.chmod(d, 0o755)
        copy = os.path.join(d, "meshtrace")
        shutil.copy(BINARY, copy)
        os.chmod(copy, 0o755)
        res = run_cli(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                       "--bounding-set=-all", copy], binary=shutil.which("setpriv"))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    line = one_line_exit_2(res)
    assert "root" in line or "CAP_" in line, f"does not name the missing privilege: {line!r}"


def test_replay_missing_file():
    one_line_exit_2(run_cli(["--replay", "/nonexistent/meshtrace.rec", "--listen", "off"]),
                    ["/nonexistent/meshtrace.rec"])


def test_replay_garbage_is_counted_not_fatal(tmp_path):
    """A recording of random records, many shaped like real events (right kind, random fields
    and payload): the whole pipeline sees garbage, exits 0 and counts what it could not use."""
    import json
    import random
    import struct

    rnd = random.Random(7)
    path = tmp_path / "garbage.rec"
    ts = 10**12
    with open(path, "wb") as f:
        for i in range(20000):
            kind = rnd.choice([1, 1, 1, 2, 3, 4, 9])
            size = rnd.choice([rnd.randint(1, 200), rnd.randint(112, 700)])
            body = bytearray(rnd.randbytes(size))
            if size >= 24:
                ts += rnd.randint(0, 2000)
                body[0] = kind
                body[8:16] = struct.pack("<Q", ts)
                body[16:24] = struct.pack("<Q", rnd.randint(1, 8) * 0x1000)  # few sockets
            if kind == 1 and size >= 112:
                text = rnd.choice([b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                                   b"*1\r\n$4\r\nPING\r\n", rnd.randbytes(40)])
                body[40:42] = struct.pack("<H", min(len(text), size - 112))  # captured
                body[112:112 + len(text)] = text[:size - 112]
            f.write(struct.pack("<I", size) + bytes(body) + b"\0" * ((8 - size % 8) % 8))
        f.write(b"\x05\x00")  # a torn tail
    out = tmp_path / "spans.jsonl"
    binary, env = replay_binary()
    res = run_cli(["--replay", str(path), "--listen", "off", "--jsonl", str(out)], env=env,
                  timeout=120, binary=binary)
    assert res.returncode == 0, f"{binary}: exit {res.returncode}: {res.stderr[-3000:]}"
    stats = json.loads(res.stderr.split("meshtrace: final stats ", 1)[1].splitlines()[0])
    assert stats["capture_mode"] == "replay"
    assert stats["user"]["events"] == 20000, stats["user"]
    assert stats["user"]["bad_events"] > 0, stats["user"]


@pytest.mark.parametrize("what", ["directory", "random bytes", "torn tail"])
def test_replay_not_a_recording(tmp_path, what):
    """--replay of something that is not a whole recording: exit 0 after what could be replayed,
    with one warning that says so (never a hang or a crash)."""
    if what == "directory":
        path = tmp_path
    else:
        path = tmp_path / "x.rec"
        if what == "random bytes":
            path.write_bytes(os.urandom(100) + b"\xff\xff\xff\xff")
        else:  # one whole 24-byte record, then a record cut short
            rec = (24).to_bytes(4, "little") + bytes([9]) + bytes(23)
            path.write_bytes(rec + (64).to_bytes(4, "little") + bytes(10))
    binary, env = replay_binary()
    res = run_cli(["--replay", str(path), "--listen", "off"], env=env, timeout=30, binary=binary)
    assert res.returncode == 0, res.stderr[-2000:]
    warn = [l for l in res.stderr.splitlines() if l.startswith("meshtrace: --replay:")]
    assert len(warn) == 1, res.stderr
    assert "not replayed" in warn[0] or "ends inside an event" in warn[0], warn
