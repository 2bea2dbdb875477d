"""Tempo's and Loki's query APIs, answered from what the real collector sent them, for e2e tests.

Tempo and Loki are AGPL-licensed and exist here only as container images: no test may build or
run them. The native log and trace store (otel-collector/native-store.yaml) stands where their
ingest would and keeps exactly what the collector's Loki and Tempo exporters send. This server
answers the read APIs the CLI uses, from those files, in the shapes Tempo's and Loki's documented
APIs answer:

- Tempo `GET /api/search?q=&start=&end=&limit=` (TraceQL) and `GET /api/v2/traces/<id>`;
- Loki `GET /loki/api/v1/query_range` for a stream selector on `service_name` with a
  `detected_level` filter (the one log query the CLI sends).

It evaluates only the TraceQL the CLI writes (spanset filters joined by `&&`; inside them `=`,
`!=`, `=~`, `!~`, `>`, `<` on `span.*`, `resource.*`, `name`, `status`, `traceDuration`, combined
with `&&`, `||` and parentheses) and answers anything else with HTTP 400, the way Tempo answers
a query it cannot parse. It is a reader of real captures, not a store: nothing is indexed.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.e2e.backends import Store, attributes

Span = dict[str, Any]
Resource = dict[str, Any]


class Unsupported(ValueError):
    """A query outside the subset this stand-in evaluates (HTTP 400, like a parse error)."""


# --- TraceQL ---------------------------------------------------------------------------------
TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<dur>\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))'
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<op>&&|\|\||=~|!~|!=|>=|<=|[{}()=<>])"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_.]*))"
)
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
STATUS = {"error": "STATUS_CODE_ERROR", "ok": "STATUS_CODE_OK", "unset": "STATUS_CODE_UNSET"}
# The collector's OTLP JSON writes enums as numbers; Tempo's API answers with their names.
STATUS_NAMES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
KIND_NAMES = (
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
)


def status_name(span: Span) -> str:
    code = span.get("status", {}).get("code", 0)
    return STATUS_NAMES[code] if isinstance(code, int) else str(code)


def as_tempo(span: Span) -> Span:
    """A span as Tempo's v2 trace API writes it: ids in base64, enums by name."""
    out = dict(span)
    for key in ("traceId", "spanId", "parentSpanId"):
        if out.get(key):
            out[key] = base64.b64encode(bytes.fromhex(out[key])).decode()
    if isinstance(out.get("kind"), int):
        out["kind"] = KIND_NAMES[out["kind"]]
    if "status" in out:
        out["status"] = {**out["status"], "code": status_name(out)}
    return out


def tokens(query: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    query = query.rstrip()
    while pos < len(query):
        m = TOKEN.match(query, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"cannot read {query[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


@dataclass
class Trace:
    trace_id: str
    spans: list[tuple[Resource, Span]]

    @property
    def start(self) -> int:
        return min(int(s["startTimeUnixNano"]) for _, s in self.spans)

    @property
    def end(self) -> int:
        return max(int(s["endTimeUnixNano"]) for _, s in self.spans)

    @property
    def root(self) -> tuple[Resource, Span]:
        ids = {s["spanId"] for _, s in self.spans}
        roots = [(r, s) for r, s in self.spans if s.get("parentSpanId", "") not in ids]
        return min(roots or self.spans, key=lambda rs: int(rs[1]["startTimeUnixNano"]))


Cond = Callable[[Trace, Resource, Span], bool]


class Parser:
    def __init__(self, query: str):
        self.toks = tokens(query)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise Unsupported("unexpected end of query")
        tok = self.toks[self.i]
        if want is not None and tok[1] != want:
            raise Unsupported(f"expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def query(self) -> list[Cond]:
        spansets = [self.spanset()]
        while self.peek() == "&&":
            self.take("&&")
            spansets.append(self.spanset())
        if self.peek() is not None:
            raise Unsupported(f"unsupported after the spansets: {self.peek()!r}")
        return spansets

    def spanset(self) -> Cond:
        self.take("{")
        cond: Cond = (lambda t, r, s: True) if self.peek() == "}" else self.or_()
        self.take("}")
        return cond

    def or_(self) -> Cond:
        parts = [self.and_()]
        while self.peek() == "||":
            self.take("||")
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else lambda t, r, s: any(p(t, r, s) for p in parts)

    def and_(self) -> Cond:
        parts = [self.unary()]
        while self.peek() == "&&":
            self.take("&&")
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else lambda t, r, s: all(p(t, r, s) for p in parts)

    def unary(self) -> Cond:
        if self.peek() == "(":
            self.take("(")
            cond = self.or_()
            self.take(")")
            return cond
        kind, field = self.take()
        if kind != "ident":
            raise Unsupported(f"expected a field, got {field!r}")
        _, op = self.take()
        vkind, raw = self.take()
        return comparison(field, op, vkind, raw)


def comparison(field: str, op: str, vkind: str, raw: str) -> Cond:
    value: Any
    if vkind == "str":
        value = json.loads(raw)
    elif vkind == "dur":
        unit = re.sub(r"[\d.]", "", raw)
        value = float(raw[: -len(unit)]) * UNITS[unit]
    elif vkind == "num":
        value = float(raw)
    elif vkind == "ident" and field == "status" and raw in STATUS:
        value = STATUS[raw]
    else:
        raise Unsupported(f"unsupported value {raw!r} for {field}")

    def get(t: Trace, r: Resource, s: Span) -> Any:
        if field.startswith("span."):
            return attributes(s).get(field[5:])
        if field.startswith("resource."):
            return r.get(field[9:])
        if field == "name":
            return s["name"]
        if field == "status":
            return status_name(s)
        if field == "traceDuration":
            return (t.end - t.start) / 1e9
        if field == "duration":
            return (int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1e9
        raise Unsupported(f"unsupported field {field}")

    ops: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: v == value,
        "!=": lambda v: v is not None and v != value,
        "=~": lambda v: v is not None and re.fullmatch(str(value), str(v)) is not None,
        "!~": lambda v: v is not None and re.fullmatch(str(value), str(v)) is None,
        ">": lambda v: v is not None and float(v) > value,
        ">=": lambda v: v is not None and float(v) >= value,
        "<": lambda v: v is not None and float(v) < value,
        "<=": lambda v: v is not None and float(v) <= value,
    }
    if op not in ops:
        raise Unsupported(f"unsupported operator {op!r}")
    test = ops[op]
    return lambda t, r, s: test(get(t, r, s))


def search(store: Store, query: str, start: float, end: float, limit: int) -> list[dict[str, Any]]:
    """Tempo's search result objects for the traces that match, newest first."""
    conditions = Parser(query).query()
    by_trace: dict[str, list[tuple[Resource, Span]]] = defaultdict(list)
    for r, s in store.spans():
        by_trace[s["traceId"]].append((r, s))
    hits = []
    for trace_id, spans in by_trace.items():
        t = Trace(trace_id, spans)
        if not start * 1e9 <= t.start <= end * 1e9:
            continue
        if all(any(c(t, r, s) for r, s in spans) for c in conditions):
            hits.append(t)
    hits.sort(key=lambda t: -t.start)
    out = []
    for t in hits[:limit]:
        resource, root = t.root
        out.append(
            {
                "traceID": t.trace_id.lstrip("0"),  # Tempo's search drops leading zeros
                "rootServiceName": resource.get("service.name", ""),
                "rootTraceName": root["name"],
                "startTimeUnixNano": str(t.start),
                "durationMs": round((t.end - t.start) / 1e6),
            }
        )
    return out


def trace_body(store: Store, trace_id: str) -> dict[str, Any] | None:
    """Tempo's v2 trace by id: {"trace": {"resourceSpans": [...]}} (OTLP JSON)."""
    spans = store.trace(trace_id)
    if not spans:
        return None
    grouped: dict[str, tuple[Resource, list[Span]]] = {}
    for r, s in spans:
        grouped.setdefault(json.dumps(r, sort_keys=True), (r, []))[1].append(as_tempo(s))
    resource_spans = [
        {
            "resource": {
                "attributes": [{"key": k, "value": {"stringValue": str(v)}} for k, v in r.items()]
            },
            "scopeSpans": [{"spans": group}],
        }
        for r, group in grouped.values()
    ]
    return {"trace": {"resourceSpans": resource_spans}}


# --- LogQL -------------------------------------------------------------------------------------
LOG_QUERY = re.compile(
    r'^\{service_name="(?P<service>(?:[^"\\]|\\.)*)"\}'
    r'\s*\|\s*detected_level=~"(?P<levels>(?:[^"\\]|\\.)*)"\s*$'
)


def log_streams(store: Store, query: str, start: float, end: float, limit: int) -> list[dict]:
    m = LOG_QUERY.match(query)
    if not m:
        raise Unsupported(f"unsupported LogQL {query!r}")
    service = json.loads(f'"{m["service"]}"')
    levels = re.compile(json.loads(f'"{m["levels"]}"'))
    values = []
    for r, rec in store.logs():
        t = int(rec.get("timeUnixNano") or rec.get("observedTimeUnixNano") or 0)
        level = str(rec.get("severityText", "")).lower()
        if r.get("service.name") != service or not start * 1e9 <= t <= end * 1e9:
            continue
        if level and levels.fullmatch(level):
            line = next(iter(rec.get("body", {}).values()), "")
            values.append([str(t), str(line)])
    values.sort(key=lambda v: -int(v[0]))  # Loki's default direction: newest first
    stream = {"service_name": service}
    return [{"stream": stream, "values": values[:limit]}] if values else []


# --- the server --------------------------------------------------------------------------------
def _handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def reply(self, status: int, body: Any) -> None:
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/ready":
                    self.reply(200, "ready")
                elif url.path == "/api/search":
                    found = search(
                        store,
                        q.get("q", "{}"),
                        float(q.get("start", 0)),
                        float(q.get("end", 2**40)),
                        int(q.get("limit", 20)),
                    )
                    self.reply(200, {"traces": found})
                elif url.path.startswith("/api/v2/traces/"):
                    trace_id = url.path.rsplit("/", 1)[1].lower().zfill(32)
                    body = trace_body(store, trace_id)
                    self.reply(404, "trace not found") if body is None else self.reply(200, body)
                elif url.path == "/loki/api/v1/query_range":
                    streams = log_streams(
                        store,
                        q.get("query", ""),
                        int(q.get("start", 0)) / 1e9,
                        int(q.get("end", 2**62)) / 1e9,
                        int(q.get("limit", 100)),
                    )
                    self.reply(
                        200,
                        {"status": "success", "data": {"resultType": "streams", "result": streams}},
                    )
                else:
                    self.reply(404, f"no such path: {url.path}")
            except Unsupported as e:
                self.reply(400, f"parse error: {e}")

    return Handler


@contextmanager
def serving(store: Store) -> Iterator[str]:
    """Serve the stand-in on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(store))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
