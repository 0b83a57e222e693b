# SPDX-License-Identifier: Apache-2.0
"""A node without tracefs (a fresh VM, most containers): the agent runs in a private mount
namespace where neither /sys/kernel/tracing nor /sys/kernel/debug/tracing is mounted. In the
default mode every program attaches through BTF, so it starts and makes spans for curl -> nginx
-> backend; --capture-mode syscalls needs classic tracepoints, so it says so in one line and
exits 2. tracefs stays mounted on the host: the namespace is the agent's alone."""

import os
import shutil

import pytest

import mt_agent
from conftest import require_agent
from mt_agent import busy_note, read_jsonl, run_cli, stat
from mt_otlp import free_port
from mt_peers import CurlRun
from mt_spans import select

# Hides tracefs in the new namespace (mounts do not propagate back to the host), checks that
# it is gone, then execs the command: the agent keeps the pid, and SIGTERM reaches it.
HIDE_TRACEFS = r"""
mountpoint -q /sys/kernel/tracing && umount -l /sys/kernel/tracing
mountpoint -q /sys/kernel/debug && mount -t tmpfs -o size=4k,mode=0700 none /sys/kernel/debug
for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
    if [ -e "$d/events" ]; then echo "test harness: cannot hide tracefs at $d" >&2; exit 97; fi
done
exec "$@"
"""


def without_tracefs(argv):
    """argv run in a private mount namespace without tracefs."""
    return [shutil.which("unshare"), "--mount", "--propagation", "private", "sh", "-c",
            HIDE_TRACEFS, "sh"] + list(argv)


@pytest.fixture(autouse=True)
def needs_unshare():
    require_agent()
    if not shutil.which("unshare") or not shutil.which("mountpoint"):
        pytest.skip("needs unshare and mountpoint (util-linux)")


@pytest.mark.parametrize("mode", ["sock", "syscalls"])
def test_attaches_without_tracefs(tmp_path, receiver, make_nginx, make_backend, mode):
    """sock mode needs no tracefs; syscalls mode mounts it in the agent's own mount namespace
    (the host's mounts stay as they were) and says so in one line."""
    backend_port = free_port()
    nginx = make_nginx(backend_port)
    backend = make_backend(backend_port)
    jsonl_path = tmp_path / "spans.jsonl"
    env = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    ag = mt_agent.Agent(["--jsonl", str(jsonl_path), "--listen", "off", "--capture-mode", mode],
                        env, str(tmp_path))
    ag.args = without_tracefs(ag.args)
    host_has_tracefs = os.path.ismount("/sys/kernel/tracing")
    ag.start()
    try:
        curl = CurlRun([nginx.url("/index.html"), nginx.url("/api/ok?k=v")]).run()
        single = CurlRun([nginx.url("/static/a.txt")]).run()
    finally:
        stats = ag.stop()
    assert os.path.ismount("/sys/kernel/tracing") == host_has_tracefs, \
        "the host's tracefs mount changed: the namespace leaked"
    said = [l for l in ag.stderr_text().splitlines() if "tracefs" in l]
    if mode == "sock":
        assert not said, said
    else:
        assert len(said) == 1 and "own mount namespace" in said[0], said
    assert stat(stats, "capture_mode") == mode, stats

    spans = receiver.spans()
    busy = busy_note(stats)
    nginx_server = select(spans, "SERVER", nginx.port)
    curl_client = select(spans, "CLIENT", nginx.port)
    backend_server = select(spans, "SERVER", backend.port)
    assert len(nginx_server) >= 3 and len(curl_client) >= 3, \
        f"nginx SERVER {len(nginx_server)}, curl CLIENT {len(curl_client)} of 3 requests{busy}"
    assert {s["resource"].get("process.pid") for s in curl_client} >= {curl.pid, single.pid}
    assert backend_server, f"no backend SERVER span for the proxied /api/ok{busy}"
    assert read_jsonl(jsonl_path), "no span in the JSONL file"
    # What classic tracepoints used to bring: connection lifecycle (inet_sock_set_state) and
    # process exec/exit (sched), now through tp_btf.
    assert stat(stats, "kernel", "conn_events", default=0) > 0, stats
    assert stat(stats, "identity", "proc_kernel_events", default=0) > 0, stats


def test_syscalls_mode_without_tracefs_nor_cap_sys_admin_says_so():
    """Without CAP_SYS_ADMIN (a container granted only CAP_BPF and CAP_PERFMON, say) the agent
    cannot mount tracefs for itself: one line says what to do."""
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv (util-linux)")
    argv = without_tracefs([shutil.which("setpriv"), "--bounding-set", "-sys_admin",
                            "--inh-caps", "-sys_admin", mt_agent.BINARY,
                            "--capture-mode", "syscalls", "--listen", "off"])
    res = run_cli(argv[1:], binary=argv[0])
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2, f"exit {res.returncode}, stderr {res.stderr!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert "tracefs" in lines[0] and "mount -t tracefs" in lines[0], lines[0]
    assert "CAP_SYS_ADMIN" in lines[0], lines[0]
