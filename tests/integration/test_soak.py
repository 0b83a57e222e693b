# SPDX-License-Identifier: Apache-2.0
"""A short soak (tests/integration/soak.py, SOAK_TEST_SECONDS of the mixed load; `make soak` runs
the same for ten minutes): the agent's memory stays bounded, every request of every class becomes
exactly one span on each side (or the agent counted why not), and every bounded table reports its
fill and its evictions."""

import os

import pytest

from conftest import require_agent
from mt_otlp import REPO
from mt_report import figure

import soak

SECONDS = float(os.environ.get("SOAK_TEST_SECONDS", "45"))
# Growth of the agent's RSS allowed after warm-up (the first half). Every table is allocated
# once at its bound and fills by touching pages; seen here: 0.3 MiB of growth after warm-up.
# A leak of 2 KiB per span (the load makes ~260 spans/s) grew it by 11.4 MiB and failed; the
# ten-minute `make soak` and its slope are what see smaller leaks. It is a bound on bytes, not
# on time: a slower machine makes fewer requests and so can only grow less, and the test passes
# or fails on what was allocated, never on how fast anything ran.
RSS_GROWTH_MAX = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def report():
    require_agent()
    return soak.run_soak(SECONDS, os.path.join(REPO, "build", "soak-test"), log=print)


def test_soak_rss_flat_after_warmup(request, report):
    rs = report["rss"]
    growth = (rs["peak_after_warm_mib"] - rs["warm_mib"]) * 1024 * 1024
    figure(request, f"soak {report['seconds']:.0f}s: RSS start {rs['start_mib']} MiB, after "
                    f"warm-up {rs['warm_mib']}, peak {rs['peak_mib']}, end {rs['end_mib']}; growth "
                    f"after warm-up {growth / 1048576:.2f} MiB; slope "
                    f"{rs['slope_mib_per_hour_second_half']:+.2f} MiB/h")
    assert rs["samples"] >= SECONDS * 0.8, f"too few RSS samples: {rs['samples']}"
    assert growth < RSS_GROWTH_MAX, \
        f"agent RSS grew {growth / 1048576:.2f} MiB after warm-up: {rs['series']}"


def test_soak_load_ran(report):
    """The load itself worked: every class made requests, and none failed (our own servers)."""
    assert not report["requests_failed"], (report["requests_failed"], report["first_errors"])
    for key, c in report["spans"].items():
        assert c["requests"] > 0, f"class {key} made no requests"


def test_soak_spans_match_requests(request, report):
    """One span per request on each side, per class: none extra, none twice, and any missing
    one covered by a counted loss (kernel sheds, refused connections or parsers, export drops).
    With no counted loss (the usual case) that is exact equality."""
    spans, losses = report["spans"], report["losses_counted_total"]
    figure(request, "soak spans/requests: " + ", ".join(
        f"{k} {c['spans']}/{c['requests']}" for k, c in spans.items()) +
        f"; counted losses {losses}")
    for key, c in spans.items():
        assert c["duplicates"] == 0 and c["bad_path"] == 0, (key, c)
        assert c["spans"] <= c["requests"], f"{key}: {c['spans']} spans for {c['requests']} requests"
    assert report["span_shortfall"] <= losses, \
        (f"{report['span_shortfall']} spans missing, only {losses} losses counted "
         f"{report['counted_losses']}: {spans}")
    e = report["exported"]
    assert e["h2_version_wrong"] == 0, e
    # Nothing lost between the exporter and the sink without a count.
    assert e["agent_spans_exported"] == e["sink_spans"], e
    dropped = sum(report["counted_losses"][k] for k in report["counted_losses"]
                  if k.startswith("otlp."))
    assert e["agent_spans_received"] == e["agent_spans_exported"] + dropped, e


def test_soak_short_lived_clients_named(request, report):
    """Every short-lived client's span carries its own pid and its own OTEL_SERVICE_NAME, also
    when its pid was another client's before (the forker wraps the pid counter)."""
    p = report["pids"]
    figure(request, f"soak pids: {p['forks']} forks, {p['wraps']} wraps; {p['client_processes']} "
                    f"short-lived clients, {p['client_processes_named_right']} named right; "
                    f"{p['reused_pids']} pids reused, {p['lives_named_right']} of "
                    f"{p['lives_of_reused_pids']} lives named right")
    assert p["client_processes"] > 0
    # A process whose exec event the kernel shed (counted) is named from /proc, if it still runs.
    if report["losses_counted_total"] == 0:
        assert p["client_processes_named_right"] == p["client_processes"], p
        assert p["lives_named_wrong"] == 0, p["wrong_examples"]


def test_soak_every_table_reports_fill_and_evictions(request, report):
    tables = report["tables"]
    figure(request, "soak tables (usage/capacity): " + ", ".join(
        f"{n} {t['usage']:.0f}/{t['capacity']:.0f}" for n, t in tables.items()
        if t["usage"] is not None and t["capacity"] is not None))
    assert not report["tables_missing"], \
        f"tables without usage, capacity or eviction counters: {report['tables_missing']}"
    for name, t in tables.items():
        assert t["capacity"] > 0 and 0 <= t["usage"] <= t["capacity"], (name, t)
    for name, m in report["kernel_maps"].items():
        assert m["entries"] <= m["capacity"], (name, m)
    # The linker frees a process's entries at its exit: the short-lived clients leave none
    # behind (before that fix they filled the thread table until its LRU took entries back).
    clients = report["pids"]["client_processes"]
    threads = tables["link_threads"]["usage"]
    assert threads is not None and threads <= max(64, clients // 4), \
        f"link threads {threads} after {clients} short-lived clients: entries kept past exit"
