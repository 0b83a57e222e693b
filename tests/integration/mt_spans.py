# SPDX-License-Identifier: Apache-2.0
"""Selecting and checking flattened spans (dicts from mt_otlp.flatten_traces or JSONL lines)."""

import ipaddress
import re
import socket
import urllib.parse

# url.path, or url.full on CLIENT spans (the stable conventions' required attribute there): see
# span_path().
# url.scheme is required on server spans only (opt-in on client spans, whose url.full has it).
HTTP_KEYS = ["http.request.method", "http.response.status_code",
             "server.address", "server.port", "network.peer.address", "network.peer.port",
             "network.protocol.version"]
SERVER_KEYS = HTTP_KEYS + ["client.address", "url.scheme"]
RESOURCE_KEYS = ["service.name", "process.pid", "process.executable.name", "host.name",
                 "telemetry.sdk.name"]
JSONL_KEYS = ["trace_id", "span_id", "parent_span_id", "name", "kind", "start_unix_nano",
              "end_unix_nano", "status", "resource", "attributes"]


def a(span, key, default=None):
    return span["attributes"].get(key, default)


def span_path(span):
    """url.path, or the path of url.full (CLIENT spans may carry only url.full)."""
    at = span["attributes"]
    if "url.path" in at:
        return at["url.path"]
    if "url.full" in at:
        return urllib.parse.urlsplit(at["url.full"]).path
    return None


def short(span):
    """One line per span for assertion messages."""
    r, at = span.get("resource", {}), span.get("attributes", {})
    return (f"{span.get('kind')} {at.get('http.request.method')} "
            f"{at.get('url.path', at.get('url.full'))} -> "
            f"{at.get('http.response.status_code')} status={span.get('status')} "
            f"svc={r.get('service.name')} pid={r.get('process.pid')} "
            f"server={at.get('server.address')}:{at.get('server.port')} "
            f"peer={at.get('network.peer.address')}:{at.get('network.peer.port')} "
            f"dur={(span.get('end_unix_nano', 0) - span.get('start_unix_nano', 0)) / 1e6:.3f}ms "
            f"span={span.get('span_id')}")


def dump(spans, limit=40):
    lines = [short(s) for s in spans[:limit]]
    if len(spans) > limit:
        lines.append(f"... and {len(spans) - limit} more")
    return "\n  " + "\n  ".join(lines) if lines else " (none)"


def select(spans, kind=None, server_port=None, pid=None, path=None):
    out = []
    for s in spans:
        if kind and s["kind"] != kind:
            continue
        if server_port is not None and a(s, "server.port") != server_port:
            continue
        if pid is not None and s["resource"].get("process.pid") != pid:
            continue
        if path is not None and span_path(s) != path:
            continue
        out.append(s)
    return sorted(out, key=lambda s: s["start_unix_nano"])


def duration_ms(span):
    return (span["end_unix_nano"] - span["start_unix_nano"]) / 1e6


def expected_status(kind, code):
    """The contract: ERROR for 5xx on both kinds, for 4xx on CLIENT spans only."""
    if code >= 500 or (code >= 400 and kind == "CLIENT"):
        return "ERROR"
    return "UNSET"


def check_shape(span):
    """Problems with one span's ids, times, resource and HTTP attributes (empty when fine)."""
    bad = []
    if not re.fullmatch(r"[0-9a-f]{32}", span["trace_id"]) or set(span["trace_id"]) == {"0"}:
        bad.append(f"trace_id {span['trace_id']!r}")
    if not re.fullmatch(r"[0-9a-f]{16}", span["span_id"]) or set(span["span_id"]) == {"0"}:
        bad.append(f"span_id {span['span_id']!r}")
    if span["parent_span_id"] and not re.fullmatch(r"[0-9a-f]{16}", span["parent_span_id"]):
        bad.append(f"parent_span_id {span['parent_span_id']!r}")
    if not 0 < span["start_unix_nano"] <= span["end_unix_nano"]:
        bad.append(f"times {span['start_unix_nano']}..{span['end_unix_nano']}")
    if span["kind"] not in ("SERVER", "CLIENT"):
        bad.append(f"kind {span['kind']}")
    keys = SERVER_KEYS if span["kind"] == "SERVER" else HTTP_KEYS
    missing = [k for k in keys if k not in span["attributes"]]
    if "url.path" not in span["attributes"] and (span["kind"] == "SERVER" or
                                                 "url.full" not in span["attributes"]):
        missing.append("url.path" if span["kind"] == "SERVER" else "url.path|url.full")
    if missing:
        bad.append(f"missing attributes {missing}")
    missing = [k for k in RESOURCE_KEYS if k not in span["resource"]]
    if missing:
        bad.append(f"missing resource attributes {missing}")
    if span["resource"].get("telemetry.sdk.name") not in (None, "meshtrace"):
        bad.append(f"telemetry.sdk.name {span['resource'].get('telemetry.sdk.name')!r}")
    if span["resource"].get("host.name") not in (None, socket.gethostname()):
        bad.append(f"host.name {span['resource'].get('host.name')!r} != {socket.gethostname()!r}")
    method, code = a(span, "http.request.method"), a(span, "http.response.status_code")
    if method is not None and span["name"] != method:
        bad.append(f"name {span['name']!r} != method {method!r}")
    if isinstance(code, int) and span["status"] != expected_status(span["kind"], code):
        bad.append(f"status {span['status']} for {span['kind']} {code}")
    for key in ("url.path", "url.full"):
        if "?" in str(a(span, key, "")):
            bad.append(f"{key} keeps the query: {a(span, key)!r}")
    if "url.full" in span["attributes"]:
        full = urllib.parse.urlsplit(a(span, "url.full"))
        port = full.port or {"http": 80, "https": 443}.get(full.scheme)
        if full.scheme != "http" or port != a(span, "server.port"):
            bad.append(f"url.full {a(span, 'url.full')!r} disagrees with http/server.port")
    return bad


def is_tcp_peer(span):
    """A span's peer must be an IP address and port: anything else came from non-TCP I/O."""
    try:
        ipaddress.ip_address(a(span, "network.peer.address"))
    except (ValueError, TypeError):
        return False
    port = a(span, "network.peer.port")
    return isinstance(port, int) and 0 < port < 65536
