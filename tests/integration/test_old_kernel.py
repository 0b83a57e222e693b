# SPDX-License-Identifier: Apache-2.0
"""A kernel without bpf_loop (Linux < 5.17): the agent loads the exec program's variant that reads no
environment, says so in one warning, and still names processes — short-lived ones by the cgroup the
kernel reads at exec, longer ones by their OTEL_SERVICE_NAME from /proc (issue 12, point 2).
MESHTRACE_TEST_NO_BPF_LOOP=1 makes the agent take that path on this kernel."""

import os
import subprocess
import time

from mt_agent import read_jsonl, stat
from mt_report import figure
from mt_spans import select
# The HTTP server, the short-lived C client and the container cgroup of the exec-time tests.
from test_short_lived import CONTAINER_ID, client, container_cgroup, run, server  # noqa: F401

OLD_KERNEL = {"MESHTRACE_TEST_NO_BPF_LOOP": "1"}


def test_no_bpf_loop_names_from_cgroup_and_proc(request, tmp_path, agent, server, client,
                                                container_cgroup):
    def join():
        for d in container_cgroup:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    jsonl_path = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl_path)], env=OLD_KERNEL)
    assert any("no bpf_loop" in line for line in ag.stderr_lines), ag.stderr_text()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    # Short-lived, no OTEL_* variable, in a container's cgroup: the variant still reads the cgroup.
    boxed = []
    for _ in range(6):
        p = subprocess.Popen([client, str(server), "0"], env=base, stdout=subprocess.PIPE,
                             preexec_fn=join)
        p.communicate(timeout=10)
        assert p.returncode == 0
        boxed.append(p.pid)
    # Long enough for /proc (300 ms after the answer): named by its own OTEL_SERVICE_NAME.
    lingering = [run([client, str(server), "300000"], dict(base, OTEL_SERVICE_NAME="slow-cli"))[0]
                 for _ in range(4)]
    time.sleep(1.5)
    stats = ag.stop()
    spans = read_jsonl(jsonl_path)

    def names(pid):
        return sorted({s["resource"]["service.name"] for s in select(spans, "CLIENT", pid=pid)})

    want_box = f"container/{CONTAINER_ID[:12]}"
    box_right = [pid for pid in boxed if names(pid) == [want_box]]
    slow_right = [pid for pid in lingering if names(pid) == ["slow-cli"]]
    figure(request, f"without bpf_loop: {len(box_right)}/{len(boxed)} short-lived clients in a "
                    f"container cgroup named {want_box} (cgroup read at exec), "
                    f"{len(slow_right)}/{len(lingering)} clients living 300 ms named by "
                    f"OTEL_SERVICE_NAME (from /proc); identity births "
                    f"{stat(stats, 'identity', 'births')}")
    assert len(box_right) == len(boxed), {pid: names(pid) for pid in boxed}
    assert len(slow_right) == len(lingering), {pid: names(pid) for pid in lingering}
