# SPDX-License-Identifier: Apache-2.0
"""Fixtures for meshtrace's integration tests: the official-schema OTLP classes, an OTLP/HTTP
receiver, the agent, nginx and the backend. Tests that need root/BPF skip with a reason;
tests/run_all.sh fails a CI run that skipped anything."""

import os

import pytest

import mt_agent
import mt_otlp
from mt_peers import Backend, Nginx
from mt_report import FIGURES

ROOT_SKIP = "needs root and BPF: run as root"


def pytest_configure(config):
    mt_otlp.generate_proto()  # once per session; fails the run loudly if the schema is missing
    config.addinivalue_line("markers", "bench: a cost figure for `make bench` (MESHTRACE_BENCH=1), "
                                       "not a check: left out of `make test`")


def pytest_collection_modifyitems(config, items):
    """Figures of cost are measured by `make bench` on a quiet machine, not by `make test`:
    without MESHTRACE_BENCH=1 the tests marked bench are deselected (not skipped)."""
    bench = os.environ.get("MESHTRACE_BENCH") == "1"
    keep = [i for i in items if (i.get_closest_marker("bench") is not None) == bench]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("meshtrace figures")
    lines = [f"{name}: {text}" for name, text in FIGURES]
    for line in lines:
        terminalreporter.write_line(line)
    try:
        path = os.path.join(mt_otlp.REPO, "build", "integration-figures.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    except OSError:
        pass


def require_agent():
    if os.geteuid() != 0:
        pytest.skip(ROOT_SKIP)
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("needs BTF (/sys/kernel/btf/vmlinux)")
    if not os.access(mt_agent.BINARY, os.X_OK):
        pytest.skip(f"{mt_agent.BINARY} missing: run 'make'")


@pytest.fixture
def receiver():
    """A running OTLP/HTTP receiver on 127.0.0.1:<ephemeral>."""
    r = mt_otlp.OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def make_receiver():
    """Factory: make_receiver(port=0, start=True) for late starts and failure modes."""
    made = []

    def make(port=0, start=True):
        r = mt_otlp.OtlpReceiver(port)
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def agent(tmp_path):
    """Factory: agent(args=[], env={}, receiver=None) starts build/meshtrace and waits for
    'meshtrace: ready'. With a receiver, OTLP goes there with OTEL_BSP_SCHEDULE_DELAY=200.
    Teardown stops every agent still running and asserts exit 0 + final stats."""
    require_agent()
    started = []

    def start(args=(), env=None, receiver=None, endpoint=None):
        full_env = {"OTEL_BSP_SCHEDULE_DELAY": "200"}
        if receiver is not None:
            endpoint = receiver.endpoint
        if endpoint:
            full_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        full_env.update(env or {})
        workdir = tmp_path / f"agent{len(started)}"
        workdir.mkdir()
        a = mt_agent.Agent(args, full_env, str(workdir))
        started.append(a)
        return a.start()

    yield start
    errors = []
    for a in started:
        try:
            a.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def make_backend(tmp_path):
    made = []

    def make(port=None, service_name="backend", redis_port=None):
        b = Backend(str(tmp_path), port, service_name, redis_port)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def make_nginx(tmp_path):
    if not os.access("/usr/sbin/nginx", os.X_OK):
        pytest.skip("nginx missing: run 'sudo make deps' (nginx-light)")
    made = []

    def make(backend_port):
        n = Nginx(str(tmp_path), backend_port)
        made.append(n)
        return n.start()

    yield make
    for n in made:
        n.stop()
