#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the Grafana dashboards in this folder (the JSON files are committed; edit this script
and run it again: `dashboards/grafana/generate.py`). tests/integration/test_grafana_json.py
checks that the JSON files are what this script writes, and that every metric a query names is
one the agent exports.

Every panel reads a Prometheus data source chosen by the `datasource` variable (default: the one
provisioning/datasources/meshtrace.yaml creates, uid meshtrace-prometheus). The latency panels
query with exemplars on: each exemplar (a trace id the agent exported, see /metrics in
OpenMetrics) links to its trace in Tempo through the Prometheus data source's
exemplarTraceIdDestinations (provisioned, see docs/deploy/grafana-exemplars.md); their "Traces
in Tempo" link opens the `tempo` data source variable's search for the series' service. The metric names
are those of the agent's /metrics (and of the OpenTelemetry Collector's servicegraph connector
for traces_service_graph_*, so these dashboards also work on metrics made from Tempo traces)."""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
DS_UID_DEFAULT = "meshtrace-prometheus"
TEMPO_UID_DEFAULT = "meshtrace-tempo"
RI = "$__rate_interval"
NS = 'namespace=~"$namespace"'
# The Kubernetes namespace of the services (the agent's CRI names, docs/cri.md), apart from
# "namespace", which a Prometheus scraping the agent's pod sets to the agent's own.
SNS = 'server_namespace=~"$k8s_namespace"'
CNS = 'client_namespace=~"$k8s_namespace"'
# The services' Kubernetes workload, "deployment/checkout" (docs/cri.md).
SWL = 'server_workload=~"$workload"'
CWL = 'client_workload=~"$workload"'


def var_k8s(ns_label="server_namespace"):
    """The Kubernetes namespace and workload variables (absent labels match All)."""
    return [var_query("k8s_namespace", "Service namespace",
                      f"label_values(traces_service_graph_request_total, {ns_label})"),
            var_query("workload", "Workload",
                      f"label_values(traces_service_graph_request_total{{{NS}, {SNS}}}, "
                      "server_workload)")]


def var_datasource():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {"text": "Prometheus (meshtrace)",
                                               "value": DS_UID_DEFAULT},
            "hide": 0, "refresh": 1, "regex": "", "options": []}


def var_tempo():
    return {"name": "tempo", "label": "Traces (Tempo)", "type": "datasource", "query": "tempo",
            "current": {"text": "Tempo (meshtrace)", "value": TEMPO_UID_DEFAULT},
            "hide": 0, "refresh": 1, "regex": "", "options": []}


def tempo_link(service_label):
    """A data link to Explore: the Tempo search for the traces of the series' service."""
    pane = ('{"t":{"datasource":"${tempo}","queries":[{"refId":"A","datasource":'
            '{"type":"tempo","uid":"${tempo}"},"queryType":"traceql","query":'
            '"{ resource.service.name = \\"${__field.labels.%s}\\" }"}],'
            '"range":{"from":"${__from}","to":"${__to}"}}}' % service_label)
    return {"title": "Traces in Tempo", "url": "/explore?schemaVersion=1&panes=" + pane,
            "targetBlank": False}


def var_query(name, label, query, multi=True, include_all=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
            "allValue": ".*", "current": {"text": "All", "value": "$__all"} if include_all else {},
            "hide": 0, "options": [], "regex": ""}


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant, "format": fmt, "editorMode": "code"}
    # A latency histogram over time: its exemplars (trace ids) are shown and link to traces.
    if "_seconds_bucket" in expr and not instant:
        t["exemplar"] = True
    return t


def latency(panel, service_label):
    """A latency panel: exemplars on (see target()), a link to the service's traces in Tempo."""
    panel["fieldConfig"]["defaults"]["links"] = [tempo_link(service_label)]
    return panel


class Board:
    def __init__(self, uid, title, description, tags, variables):
        self.uid, self.title, self.description = uid, title, description
        self.tags, self.variables = tags, variables
        self.panels = []
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def newline(self):
        if self.x:
            self.y += self.row_h
            self.x = 0
            self.row_h = 0

    def add(self, panel, w=12, h=8):
        if self.x + w > 24:
            self.newline()
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel.setdefault("datasource", DS)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def json(self):
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["meshtrace"] + self.tags, "editable": True, "graphTooltip": 1,
            "schemaVersion": 39, "version": 1, "timezone": "browser", "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"}, "fiscalYearStartMonth": 0,
            "liveNow": False, "weekStart": "",
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts", "type": "dashboard"}]},
            "links": [{"title": "meshtrace", "type": "dashboards", "tags": ["meshtrace"],
                       "asDropdown": True, "includeVars": True, "keepTime": True}],
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def timeseries(title, targets, unit="short", description="", stack=False, legend_calcs=None):
    return {"type": "timeseries", "title": title, "description": description,
            "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": {
                "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if not stack else 35,
                "showPoints": "never", "spanNulls": False,
                "stacking": {"mode": "normal" if stack else "none", "group": "A"}}},
                "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "right",
                                   "calcs": legend_calcs or ["mean", "max"], "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title, targets, unit="short", description="", thresholds=None, color_mode="value"):
    steps = thresholds or [{"color": "green", "value": None}]
    return {"type": "stat", "title": title, "description": description, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute",
                                                                      "steps": steps},
                                         "color": {"mode": "thresholds"}}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": color_mode, "graphMode": "area", "justifyMode": "auto",
                        "textMode": "auto", "orientation": "auto"}}


def table(title, targets, renames, units, description="", sort_by=None):
    overrides = [{"matcher": {"id": "byName", "options": name},
                  "properties": [{"id": "unit", "value": unit}]} for name, unit in units.items()]
    overrides += [{"matcher": {"id": "byName", "options": "Error ratio"},
                   "properties": [{"id": "custom.cellOptions",
                                   "value": {"type": "color-text"}},
                                  {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                                      {"color": "green", "value": None},
                                      {"color": "orange", "value": 0.01},
                                      {"color": "red", "value": 0.05}]}}]}] \
        if "Error ratio" in units else []
    return {"type": "table", "title": title, "description": description, "targets": targets,
            "transformations": [
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True},
                                               "renameByName": renames}}],
            "fieldConfig": {"defaults": {"custom": {"align": "auto", "filterable": True}},
                            "overrides": overrides},
            "options": {"showHeader": True, "cellHeight": "sm",
                        "sortBy": [{"displayName": sort_by, "desc": True}] if sort_by else []}}


def q(p, metric_sel, by):
    """histogram_quantile over a _bucket series."""
    return f"histogram_quantile({p}, sum by ({by}, le) (rate({metric_sel}[{RI}])))"


# ---------------------------------------------------------------------------------------------
def service_graph():
    b = Board("meshtrace-service-graph", "Service graph",
              "Who calls whom on the nodes meshtrace watches: a Node Graph of the "
              "traces_service_graph_* metrics (requests/s on each edge), with the edges' "
              "rates, errors and latency below.", ["service-graph"],
              [var_datasource(), var_tempo(),
               var_query("namespace", "Namespace",
                         "label_values(traces_service_graph_request_total, namespace)"),
               *var_k8s()])
    sel = f"{{{NS}, {SNS}, {SWL}}}"
    rate = f"rate(traces_service_graph_request_total{sel}[{RI}])"
    nodes = ("label_replace(sum by (id) ("
             f"label_replace({rate}, \"id\", \"$1\", \"server\", \"(.*)\")) or sum by (id) ("
             f"label_replace({rate}, \"id\", \"$1\", \"client\", \"(.*)\")) * 0, "
             "\"title\", \"$1\", \"id\", \"(.*)\")")
    edges = ("label_join(label_replace(label_replace(sum by (client, server) ("
             f"{rate}), \"source\", \"$1\", \"client\", \"(.*)\"), \"target\", \"$1\", "
             "\"server\", \"(.*)\"), \"id\", \"->\", \"client\", \"server\")")
    b.add({"type": "nodeGraph", "title": "Service graph (requests/s)",
           "description": "Nodes are services (and external peers); arrows point from client to "
                          "server. Main stat: requests/s received (nodes) or carried (edges).",
           "targets": [target(nodes, ref="nodes", instant=True, fmt="table"),
                       target(edges, ref="edges", instant=True, fmt="table")],
           "transformations": [{"id": "organize", "options": {"renameByName": {
               "Value": "mainstat", "Value #nodes": "mainstat", "Value #edges": "mainstat"},
               "excludeByName": {"Time": True}}}],
           "options": {"nodes": {"mainStatUnit": "reqps"}, "edges": {"mainStatUnit": "reqps"}}},
          w=24, h=16)
    b.row("Edges")
    by = "client, server"
    b.add(table("Edges now", [
        target(f"sum by ({by}) ({rate})", ref="A", instant=True, fmt="table"),
        target(f"sum by ({by}) (rate(traces_service_graph_request_failed_total{sel}[{RI}])) / "
               f"sum by ({by}) ({rate})", ref="B", instant=True, fmt="table"),
        target(q(0.5, f"traces_service_graph_request_server_seconds_bucket{sel}", by),
               ref="C", instant=True, fmt="table"),
        target(q(0.99, f"traces_service_graph_request_server_seconds_bucket{sel}", by),
               ref="D", instant=True, fmt="table"),
        target(q(0.99, f"traces_service_graph_request_client_seconds_bucket{sel}", by),
               ref="E", instant=True, fmt="table")],
        {"client": "Client", "server": "Server", "Value #A": "Requests/s",
         "Value #B": "Error ratio", "Value #C": "Server p50", "Value #D": "Server p99",
         "Value #E": "Client p99"},
        {"Requests/s": "reqps", "Error ratio": "percentunit", "Server p50": "s",
         "Server p99": "s", "Client p99": "s"}, sort_by="Requests/s"), w=24, h=10)
    b.add(timeseries("Requests/s by edge", [target(f"sum by ({by}) ({rate})",
                                                   "{{client}} → {{server}}")], "reqps"))
    b.add(timeseries("Failed requests/s by edge", [target(
        f"sum by ({by}) (rate(traces_service_graph_request_failed_total{sel}[{RI}]))",
        "{{client}} → {{server}}")], "reqps"))
    b.add(latency(timeseries("Server-side p99 by edge", [target(
        q(0.99, f"traces_service_graph_request_server_seconds_bucket{sel}", by),
        "{{client}} → {{server}}")], "s", "Dots are exemplars: click one for its trace."),
        "server"))
    b.add(latency(timeseries("Client-side p99 by edge", [target(
        q(0.99, f"traces_service_graph_request_client_seconds_bucket{sel}", by),
        "{{client}} → {{server}}")], "s", "Includes the network and queueing on the client. "
        "Dots are exemplars: click one for its trace."), "client"))
    return b


def service_red():
    sv = 'server=~"$service"'
    b = Board("meshtrace-service-red", "Service RED",
              "Rate, errors and duration per service (as a server) and per edge, from the "
              "service-graph histograms, and per HTTP method and status code from "
              "http.server.request.duration / http.client.request.duration.", ["red"],
              [var_datasource(), var_tempo(),
               var_query("namespace", "Namespace",
                         "label_values(traces_service_graph_request_total, namespace)"),
               *var_k8s(),
               var_query("service", "Service",
                         f"label_values(traces_service_graph_request_total{{{NS}, {SNS}, "
                         f"{SWL}}}, server)")])
    sel = f"{{{sv}, {NS}, {SNS}, {SWL}}}"
    total = f"rate(traces_service_graph_request_total{sel}[{RI}])"
    failed = f"rate(traces_service_graph_request_failed_total{sel}[{RI}])"
    bucket = f"traces_service_graph_request_server_seconds_bucket{sel}"
    b.row("Services ($service)")
    b.add(stat("Requests/s", [target(f"sum({total})")], "reqps"), w=6, h=4)
    b.add(stat("Error ratio", [target(f"sum({failed}) / sum({total})")], "percentunit",
               thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.01},
                           {"color": "red", "value": 0.05}]), w=6, h=4)
    b.add(stat("p50", [target(f"histogram_quantile(0.5, sum by (le) (rate({bucket}[{RI}])))")],
               "s"), w=6, h=4)
    b.add(stat("p99", [target(f"histogram_quantile(0.99, sum by (le) (rate({bucket}[{RI}])))")],
               "s", thresholds=[{"color": "green", "value": None},
                                {"color": "orange", "value": 0.5}, {"color": "red", "value": 1}]),
          w=6, h=4)
    b.add(timeseries("Requests/s by service", [target(f"sum by (server) ({total})",
                                                      "{{server}}")], "reqps"), w=8)
    b.add(timeseries("Error ratio by service", [target(
        f"sum by (server) ({failed}) / sum by (server) ({total})", "{{server}}")],
        "percentunit"), w=8)
    b.add(latency(timeseries("Latency by service (server side)", [
        target(q(0.5, bucket, "server"), "p50 {{server}}", "A"),
        target(q(0.95, bucket, "server"), "p95 {{server}}", "B"),
        target(q(0.99, bucket, "server"), "p99 {{server}}", "C")], "s",
        "Dots are exemplars: click one for its trace."), "server"), w=8)

    b.row("Edges into and out of $service")
    esel_in = f"{{{sv}, {NS}, {SNS}, {SWL}}}"
    esel_out = f'{{client=~"$service", {NS}, {CNS}, {CWL}}}'
    by = "client, server"
    for title, esel in (("Calls into $service", esel_in), ("Calls made by $service", esel_out)):
        b.add(timeseries(f"{title}: requests/s", [target(
            f"sum by ({by}) (rate(traces_service_graph_request_total{esel}[{RI}]))",
            "{{client}} → {{server}}")], "reqps"), w=8)
        b.add(timeseries(f"{title}: error ratio", [target(
            f"sum by ({by}) (rate(traces_service_graph_request_failed_total{esel}[{RI}])) / "
            f"sum by ({by}) (rate(traces_service_graph_request_total{esel}[{RI}]))",
            "{{client}} → {{server}}")], "percentunit"), w=8)
        b.add(latency(timeseries(f"{title}: client-side p99", [target(
            q(0.99, f"traces_service_graph_request_client_seconds_bucket{esel}", by),
            "{{client}} → {{server}}")], "s"), "client"), w=8)

    b.row("HTTP ($service)")
    hs = f'{{service_name=~"$service", service_namespace=~"$k8s_namespace", {NS}}}'
    hb = f"http_server_request_duration_seconds_bucket{hs}"
    b.add(timeseries("HTTP server requests/s by status code", [target(
        f"sum by (service_name, http_response_status_code) "
        f"(rate(http_server_request_duration_seconds_count{hs}[{RI}]))",
        "{{service_name}} {{http_response_status_code}}")], "reqps", stack=True), w=8)
    b.add(latency(timeseries("HTTP server p99 by method", [target(
        q(0.99, hb, "service_name, http_request_method"),
        "{{service_name}} {{http_request_method}}")], "s"), "service_name"), w=8)
    b.add(timeseries("HTTP server mean duration", [target(
        f"sum by (service_name) (rate(http_server_request_duration_seconds_sum{hs}[{RI}])) / "
        f"sum by (service_name) (rate(http_server_request_duration_seconds_count{hs}[{RI}]))",
        "{{service_name}}")], "s"), w=8)
    cb = f"http_client_request_duration_seconds_bucket{hs}"
    b.add(timeseries("HTTP client requests/s by server", [target(
        f"sum by (service_name, server_address, server_port) "
        f"(rate(http_client_request_duration_seconds_count{hs}[{RI}]))",
        "{{service_name}} → {{server_address}}:{{server_port}}")], "reqps"), w=12)
    b.add(latency(timeseries("HTTP client p99 by server", [target(
        q(0.99, cb, "service_name, server_address"),
        "{{service_name}} → {{server_address}}")], "s"), "service_name"), w=12)
    return b


def agent_health():
    inst = '{instance=~"$instance"}'
    b = Board("meshtrace-agent-health", "meshtrace agent health",
              "Is the agent seeing everything, and is it keeping up? Events, drops by reason, "
              "export failures, queue depth, table fullness, CPU and memory.", ["health"],
              [var_datasource(),
               var_query("instance", "Agent", "label_values(meshtrace_events_total, instance)")])

    def r(metric, extra=""):
        sel = inst if not extra else '{instance=~"$instance", ' + extra + "}"
        return f"rate({metric}{sel}[{RI}])"
    red = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
    b.add(stat("Events/s", [target(f"sum({r('meshtrace_events_total')})")], "short"), w=4, h=4)
    b.add(stat("Spans/s", [target(f"sum({r('meshtrace_spans_total')})")], "short"), w=4, h=4)
    b.add(stat("Kernel drops (range)", [target(
        f"sum(increase(meshtrace_kernel_drops_total{inst}[$__range]))", instant=True)],
        thresholds=red, color_mode="background"), w=4, h=4)
    b.add(stat("Agent drops (range)", [target(
        f"sum(increase(meshtrace_drops_total{inst}[$__range]))", instant=True)],
        thresholds=red, color_mode="background"), w=4, h=4)
    b.add(stat("Export failures (range)", [target(
        f"sum(increase(meshtrace_export_failures_total{inst}[$__range]))", instant=True)],
        thresholds=red, color_mode="background"), w=4, h=4)
    b.add(stat("Resident memory", [target(f"sum(process_memory_usage_bytes{inst})")],
               "bytes"), w=4, h=4)
    b.row("Events")
    b.add(timeseries("Kernel events/s by kind", [target(
        f"sum by (kind) ({r('meshtrace_kernel_events_total')})", "{{kind}}")], stack=True))
    b.add(timeseries("Events read and spans made", [
        target(f"sum({r('meshtrace_events_total')})", "events read", "A"),
        target(f"sum by (kind) ({r('meshtrace_spans_total')})", "spans {{kind}}", "B"),
        target(f"sum({r('meshtrace_kernel_wakeups_total')})", "early wake-ups", "C")]))
    b.row("Drops")
    b.add(timeseries("Kernel drops/s by reason", [target(
        f"sum by (reason) ({r('meshtrace_kernel_drops_total')})", "{{reason}}")],
        description="ringbuf_full: the ring buffer was full; read_fault: the payload could not "
                    "be read (sent as a count only); inflight_full / connecting_full: a "
                    "kernel table was full."))
    b.add(timeseries("Agent drops/s by stage", [target(
        f"sum by (stage) ({r('meshtrace_drops_total')})", "{{stage}}")]))
    b.row("Export")
    b.add(timeseries("Spans exported/s", [
        target(f"sum({r('meshtrace_spans_exported_total')})", "exported", "A"),
        target(f"sum({r('meshtrace_spans_total')})", "made", "B")]), w=8)
    b.add(timeseries("Export failures and retries/s", [
        target(f"sum by (signal) ({r('meshtrace_export_failures_total')})", "failed {{signal}}",
               "A"),
        target(f"sum({r('meshtrace_export_retries_total')})", "retries", "B")]), w=8)
    b.add(timeseries("Queue depth", [target(
        f"max by (queue) (meshtrace_queue_depth{inst})", "{{queue}}")]), w=8)
    b.row("Tables and resources")
    b.add({"type": "bargauge", "title": "Table fullness",
           "description": "Entries in use ÷ size, per bounded table. A full table drops and "
                          "counts (see the drop panels).",
           "targets": [target(f"max by (table) (meshtrace_table_usage{inst}) / "
                              f"max by (table) (meshtrace_table_capacity{inst})", "{{table}}",
                              instant=True)],
           "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1,
                                        "thresholds": {"mode": "absolute", "steps": [
                                            {"color": "green", "value": None},
                                            {"color": "orange", "value": 0.7},
                                            {"color": "red", "value": 0.9}]}},
                           "overrides": []},
           "options": {"orientation": "horizontal", "displayMode": "gradient",
                       "showUnfilled": True, "reduceOptions": {"calcs": ["lastNotNull"],
                                                               "fields": "", "values": False}}},
          w=8)
    b.add(timeseries("CPU", [target(f"sum by (instance) ({r('process_cpu_time_seconds_total')})",
                                    "{{instance}}")], "percentunit",
                     "CPU time the agent used per second (1 = one core)."), w=8)
    b.add(timeseries("Memory", [target(f"sum by (instance) (process_memory_usage_bytes{inst})",
                                       "{{instance}}")], "bytes"), w=8)
    return b


BOARDS = {"service-graph.json": service_graph, "service-red.json": service_red,
          "agent-health.json": agent_health}


def render(make):
    return json.dumps(make().json(), indent=2, ensure_ascii=False) + "\n"


def main():
    for name, make in BOARDS.items():
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write(render(make))


if __name__ == "__main__":
    main()
