# SPDX-License-Identifier: Apache-2.0
"""Issue 6: the Grafana dashboards in dashboards/grafana/. Each one parses, has the structure a
stock Grafana loads (uid, title, panels with ids and grid positions, a `datasource` variable that
every panel and query uses), is what generate.py writes, and queries only metrics the agent
really exports: every metric name in every PromQL expression must appear in a live /metrics
scrape of an agent watching the three-service chain."""

import glob
import importlib.util
import json
import os
import re

import pytest
import yaml

from mt_chain import CHAIN_EDGES, chain  # noqa: F401  (fixture)
from mt_otlp import REPO
from mt_report import figure

GRAFANA = os.path.join(REPO, "dashboards", "grafana")
DASHBOARDS = sorted(glob.glob(os.path.join(GRAFANA, "*.json")))
WANT_TITLES = {"Service graph", "Service RED", "meshtrace agent health"}
DS_REF = {"type": "prometheus", "uid": "${datasource}"}

# Queried by the agent-health dashboard's CPU and memory panels, but not exported by the agent
# yet (the standard process collector names). Each name here must be missing from /metrics: the
# test fails once the agent exports one, so this list cannot go stale.
NOT_YET_EXPORTED = set()

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def all_panels(board):
    for p in board["panels"]:
        yield p
        yield from p.get("panels", [])


def metric_names(expr):
    """The metric names a PromQL expression reads: what is left once strings, label matchers,
    range selectors, grouping clauses, numbers and function names are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def queries(board):
    for p in all_panels(board):
        for t in p.get("targets", []):
            yield p, t
    for v in board["templating"]["list"]:
        if v["type"] == "query":
            yield v, {"expr": v["definition"], "datasource": v["datasource"]}


def query_metric_names(expr):
    """label_values(metric{...}, label) in variable queries names a metric too."""
    m = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", expr)
    return metric_names(m.group(1)) if m else metric_names(expr)


def test_metric_name_extraction():
    assert metric_names('sum by (client, server) (rate(traces_service_graph_request_total'
                        '{server=~"$service", namespace=~"$namespace"}[$__rate_interval]))') == \
        {"traces_service_graph_request_total"}
    assert metric_names('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[5m]))) / '
                        'sum(y_count) or vector(0)') == {"x_bucket", "y_count"}
    assert metric_names('label_join(label_replace(z, "id", "$1", "client", "(.*)"), "id", "->",'
                        ' "client", "server") * on (a) group_left (b) w offset 5m') == {"z", "w"}
    assert query_metric_names("label_values(meshtrace_events_total, instance)") == \
        {"meshtrace_events_total"}


def test_dashboards_structure():
    assert DASHBOARDS, f"no dashboards in {GRAFANA}"
    titles, uids = set(), set()
    for path in DASHBOARDS:
        name = os.path.basename(path)
        b = load(path)
        assert re.fullmatch(r"[a-z0-9-]{1,40}", b.get("uid", "")), f"{name}: uid {b.get('uid')!r}"
        assert b["uid"] not in uids, f"{name}: uid {b['uid']} used twice"
        uids.add(b["uid"])
        titles.add(b["title"])
        assert isinstance(b.get("schemaVersion"), int), name
        assert "meshtrace" in b.get("tags", []), name
        variables = {v["name"]: v for v in b["templating"]["list"]}
        ds = variables.get("datasource")
        assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", \
            f"{name}: needs a 'datasource' variable of type datasource (prometheus)"
        ids = set()
        panels = list(all_panels(b))
        assert len([p for p in panels if p["type"] != "row"]) >= 3, f"{name}: too few panels"
        for p in panels:
            where = f"{name}: panel {p.get('title')!r}"
            assert isinstance(p.get("id"), int) and p["id"] not in ids, f"{where}: id"
            ids.add(p["id"])
            g = p.get("gridPos", {})
            assert all(isinstance(g.get(k), int) for k in "hwxy"), f"{where}: gridPos {g}"
            assert g["x"] + g["w"] <= 24, f"{where}: wider than the grid"
            assert p.get("title"), f"{where}: no title"
            if p["type"] == "row":
                continue
            assert p.get("datasource") == DS_REF, f"{where}: datasource {p.get('datasource')}"
            assert p.get("targets"), f"{where}: no queries"
            refs = set()
            for t in p["targets"]:
                assert t.get("datasource") == DS_REF, f"{where}: query datasource"
                assert t.get("expr", "").strip(), f"{where}: empty query"
                assert t["refId"] not in refs, f"{where}: refId {t['refId']} twice"
                refs.add(t["refId"])
                assert t["expr"].count("(") == t["expr"].count(")"), \
                    f"{where}: unbalanced parentheses in {t['expr']}"
                # $1 in label_replace is a regex group: Grafana leaves unknown names alone.
                used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", t["expr"]))
                missing = {u for u in used if not u.startswith("__")} - set(variables)
                assert not missing, f"{where}: uses undefined variables {missing}"
        for v in variables.values():
            if v["type"] == "query":
                assert v.get("datasource") == DS_REF, f"{name}: variable {v['name']} datasource"
    assert WANT_TITLES <= titles, f"dashboards {titles}; want at least {WANT_TITLES}"

    graph = load(os.path.join(GRAFANA, "service-graph.json"))
    ng = [p for p in all_panels(graph) if p["type"] == "nodeGraph"]
    assert ng, "the Service graph dashboard has no Node Graph panel"
    assert {t["refId"] for t in ng[0]["targets"]} == {"nodes", "edges"}
    assert all(t["instant"] and t["format"] == "table" for t in ng[0]["targets"])
    red = load(os.path.join(GRAFANA, "service-red.json"))
    assert {"service", "namespace"} <= {v["name"] for v in red["templating"]["list"]}
    # Kubernetes names (docs/cri.md): the services' namespace and workload, on both boards.
    for board in (red, graph):
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {"k8s_namespace", "workload"} <= set(variables), board["uid"]
        assert "server_workload" in variables["workload"]["definition"]
        exprs = [t["expr"] for _, t in queries(board)]
        assert any('server_workload=~"$workload"' in e for e in exprs), board["uid"]
    assert any('service_namespace=~"$k8s_namespace"' in t["expr"] for _, t in queries(red))


LATENCY = re.compile(r"(traces_service_graph_request_(server|client)_seconds|"
                     r"http_(server|client)_request_duration_seconds)_bucket")


def test_latency_panels_link_to_traces():
    """Issue 18: every latency panel over time queries exemplars (the trace ids the agent
    writes in OpenMetrics) and links to the traces of its series' service in Tempo through a
    `tempo` data source variable; the link's Explore state is JSON once Grafana fills it in."""
    panels = 0
    for path in DASHBOARDS:
        name = os.path.basename(path)
        b = load(path)
        variables = {v["name"]: v for v in b["templating"]["list"]}
        for p in all_panels(b):
            if p["type"] != "timeseries" or not any(LATENCY.search(t["expr"])
                                                    for t in p["targets"]):
                continue
            panels += 1
            where = f"{name}: panel {p['title']!r}"
            tempo = variables.get("tempo")
            assert tempo and tempo["type"] == "datasource" and tempo["query"] == "tempo", \
                f"{where}: the dashboard needs a 'tempo' data source variable"
            for t in p["targets"]:
                assert t.get("exemplar") is True, f"{where}: query {t['refId']} without exemplars"
            (link,) = p["fieldConfig"]["defaults"]["links"]
            assert link["url"].startswith("/explore?"), link
            panes = link["url"].split("panes=", 1)[1]
            filled = (panes.replace("${tempo}", "meshtrace-tempo").replace("${__from}", "1")
                      .replace("${__to}", "2"))
            filled = re.sub(r"\$\{__field\.labels\.(\w+)\}", r"svc-\1", filled)
            state = json.loads(filled)["t"]
            assert state["datasource"] == "meshtrace-tempo"
            (query,) = state["queries"]
            assert query["datasource"] == {"type": "tempo", "uid": "meshtrace-tempo"}
            assert re.fullmatch(r'\{ resource\.service\.name = "svc-\w+" \}', query["query"]), \
                query
            label = re.search(r"__field\.labels\.(\w+)", panes).group(1)
            for t in p["targets"]:
                assert re.search(rf"\bby \([^)]*\b{label}\b", t["expr"]), \
                    f"{where}: the link names label {label}, the query does not keep it"
    assert panels >= 7, f"only {panels} latency panels found"


def test_dashboards_match_generator():
    spec = importlib.util.spec_from_file_location("generate", os.path.join(GRAFANA, "generate.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, make in gen.BOARDS.items():
        with open(os.path.join(GRAFANA, name), encoding="utf-8") as f:
            assert f.read() == gen.render(make), \
                f"dashboards/grafana/{name} differs from what generate.py writes: run it"
    assert sorted(gen.BOARDS) == sorted(os.path.basename(p) for p in DASHBOARDS)


def exemplar_destinations(datasources):
    """The Prometheus data source and Tempo uid its exemplars' trace_id label links to."""
    by_type = {d["type"]: d for d in datasources}
    assert set(by_type) == {"prometheus", "tempo"}, sorted(by_type)
    prom, tempo = by_type["prometheus"], by_type["tempo"]
    (dest,) = prom["jsonData"]["exemplarTraceIdDestinations"]
    # trace_id: the exemplar label the agent writes (tests/integration/test_exemplars.py).
    assert dest == {"name": "trace_id", "datasourceUid": tempo["uid"]}, dest
    return prom, tempo


def test_provisioning():
    with open(os.path.join(GRAFANA, "provisioning", "datasources", "meshtrace.yaml")) as f:
        ds = yaml.safe_load(f)
    assert ds["apiVersion"] == 1
    src, tempo = exemplar_destinations(ds["datasources"])
    assert src["uid"] == "meshtrace-prometheus" and tempo["uid"] == "meshtrace-tempo"
    assert src["url"].startswith("${"), "the URL comes from the environment"
    assert tempo["url"].startswith("${"), "the URL comes from the environment"
    for path in DASHBOARDS:
        t_var = [v for v in load(path)["templating"]["list"] if v["name"] == "tempo"]
        if t_var:
            assert t_var[0]["current"]["value"] == tempo["uid"], f"{path}: default Tempo"
    # The snippet docs/deploy ships says the same.
    with open(os.path.join(REPO, "docs", "deploy", "grafana-exemplars.md")) as f:
        doc = f.read()
    snippet = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert snippet, "docs/deploy/grafana-exemplars.md has no yaml snippet"
    text = re.sub(r"^ {3}", "", snippet.group(1), flags=re.M)
    dsrc, dtempo = exemplar_destinations(yaml.safe_load(text)["datasources"])
    assert (dsrc["uid"], dtempo["uid"]) == (src["uid"], tempo["uid"])
    for path in DASHBOARDS:
        ds_var = [v for v in load(path)["templating"]["list"] if v["name"] == "datasource"][0]
        assert ds_var["current"]["value"] == src["uid"], f"{path}: default data source"
    with open(os.path.join(GRAFANA, "provisioning", "dashboards", "meshtrace.yaml")) as f:
        prov = yaml.safe_load(f)
    (p,) = prov["providers"]
    assert p["type"] == "file" and p["options"]["path"]


def scrape_names(text):
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def test_queries_use_exported_metrics(request, chain):
    chain.wait_edges(CHAIN_EDGES[:2])
    status, headers, body = chain.get("/metrics")
    assert status == 200
    exported = scrape_names(body.decode())
    assert "traces_service_graph_request_total" in exported, sorted(exported)
    wrong, used = [], set()
    for path in DASHBOARDS:
        b = load(path)
        for p, t in queries(b):
            for m in query_metric_names(t["expr"]):
                used.add(m)
                if m not in exported and m not in NOT_YET_EXPORTED:
                    wrong.append(f"{os.path.basename(path)}: {p.get('title') or p.get('name')}: "
                                 f"{m}")
    assert not wrong, "queries name metrics the agent does not export:\n  " + "\n  ".join(wrong)
    stale = NOT_YET_EXPORTED & exported
    assert not stale, f"the agent now exports {stale}: remove them from NOT_YET_EXPORTED"
    missing = sorted(NOT_YET_EXPORTED & used)
    figure(request, f"{len(DASHBOARDS)} dashboards query {len(used)} metric names, all exported"
           + (f" except {missing} (CPU/memory panels, not exported yet)" if missing else ""))
