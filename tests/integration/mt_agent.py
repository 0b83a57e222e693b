# SPDX-License-Identifier: Apache-2.0
"""Runs build/meshtrace for a test: start, wait for 'meshtrace: ready', stop with SIGTERM,
parse the final stats line."""

import json
import os
import re
import signal
import subprocess
import threading
import time

from mt_otlp import REPO

BINARY = os.environ.get("MESHTRACE_BIN") or os.path.join(REPO, "build", "meshtrace")
# The agent built with ASan/UBSan (`make test` builds it): --replay runs it without BPF, so the
# tests that replay recordings use it when it is there, and fail on any sanitizer report.
SAN_BINARY = os.path.join(REPO, "build", "san", "meshtrace")
SAN_ENV = {"ASAN_OPTIONS": "verify_asan_link_order=0:abort_on_error=0:exitcode=86",
           "UBSAN_OPTIONS": "halt_on_error=1:exitcode=87:print_stacktrace=1"}


def replay_binary():
    """(binary, extra env) for --replay runs: the sanitizer build when present."""
    if os.access(SAN_BINARY, os.X_OK):
        return SAN_BINARY, dict(SAN_ENV)
    return BINARY, {}
READY_TIMEOUT = 20
STOP_TIMEOUT = 30

_STATS = re.compile(r"^meshtrace: (?:(\w+) )?stats (\{.*\})\s*$")


def clean_env(extra=None):
    """The test's environment without any OTEL_* the caller may have set, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra or {})
    return env


class Agent:
    def __init__(self, args=(), env=None, workdir="/tmp"):
        self.args = [BINARY] + list(args)
        self.env = clean_env(env)
        self.workdir = workdir
        self.stderr_lines = []
        self.final_stats = None
        self.periodic_stats = []  # every other "meshtrace: ... stats {JSON}" line, parsed
        self.returncode = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.proc = None

    def start(self):
        self.stdout_path = os.path.join(self.workdir, "agent.stdout")
        self.stderr_path = os.path.join(self.workdir, "agent.stderr")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._stdout, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"meshtrace exited with {self.proc.returncode} before "
                                     f"'meshtrace: ready'; stderr:\n{self.stderr_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no 'meshtrace: ready' within {READY_TIMEOUT}s; stderr:\n"
                                     f"{self.stderr_text()}")
        return self

    def _read_stderr(self):
        with open(self.stderr_path, "wb") as log:
            for raw in self.proc.stderr:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    self.stderr_lines.append(line)
                if line.strip() == "meshtrace: ready":
                    self._ready.set()
                m = _STATS.match(line)
                if m:
                    try:
                        stats = json.loads(m.group(2))
                    except ValueError:
                        continue
                    if m.group(1) == "final":
                        self.final_stats = stats
                    else:
                        self.periodic_stats.append((time.time(), stats))

    def stderr_text(self):
        with self._lock:
            return "\n".join(self.stderr_lines[-60:])

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, bounded wait; asserts exit 0 and a parsable final stats line. Returns the
        final stats. Idempotent."""
        if self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"meshtrace did not exit within {timeout}s of SIGTERM; "
                                     f"stderr:\n{self.stderr_text()}")
            finally:
                self._reader.join(5)
                self._stdout.close()
        assert self.returncode == 0, \
            f"meshtrace exited with {self.returncode} after SIGTERM; stderr:\n{self.stderr_text()}"
        assert self.final_stats is not None, \
            f"no 'meshtrace: final stats {{JSON}}' line on stderr:\n{self.stderr_text()}"
        return self.final_stats

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.returncode is None and self.proc:
            self.returncode = self.proc.returncode


def read_jsonl(path):
    """Parses a --jsonl file; asserts every line is one JSON object."""
    spans = []
    assert os.path.exists(path), f"the agent wrote no JSONL file at {path}"
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise AssertionError(f"{path}:{n}: not JSON ({e}): {line[:200]!r}")
            assert isinstance(obj, dict), f"{path}:{n}: not an object"
            spans.append(obj)
    return spans


def stat(stats, *path, default=None):
    """stats['a']['b'] or default when any level is missing."""
    cur = stats
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur


def busy_note(stats):
    """When the agent dropped spans for want of queue room (other traffic on the node, e.g. a
    benchmark in another session), a note that says so, for assertion messages; else ""."""
    dropped = stat(stats, "otlp", "spans_dropped_queue_full", default=0) or 0
    if not dropped:
        return ""
    return (f" [NOTE: the agent dropped {dropped} of {stat(stats, 'otlp', 'spans_received')} "
            f"spans (queue full): other traffic on the node crowded out the test's spans]")


def run_cli(args, env=None, timeout=15, preexec=None, binary=BINARY):
    """Runs the binary to completion (for flag checks); kills it after timeout."""
    try:
        return subprocess.run([binary] + list(args), env=clean_env(env), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"meshtrace {' '.join(args)} still running after {timeout}s "
                             f"(expected it to exit); stderr: {e.stderr!r}")
