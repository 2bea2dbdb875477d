"""Reading telemetry back out of the real backends' HTTP APIs, for e2e tests.

Every read is a poll with a deadline (`eventually`): telemetry takes a moment to travel
through the collector's batch and retry, and Tempo's metrics-generator writes every 15 s.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None], timeout: float = 60.0, what: str = "", interval: float = 0.5
) -> T:
    """Call `probe` until it returns something truthy; fail with the last error at the deadline.

    `probe` may also raise AssertionError / httpx.HTTPError to mean "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except (AssertionError, httpx.HTTPError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what or probe}; last: {last!r}")
        time.sleep(interval)


class Prometheus:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def query(self, promql: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        resp.raise_for_status()
        return resp.json()["data"]["result"]

    def series(self, match: str, start: float, end: float | None = None) -> list[dict[str, str]]:
        """Label sets of every series matching `match` that had a sample in [start, end]."""
        resp = httpx.get(
            f"{self.url}/api/v1/series",
            params={"match[]": match, "start": start, "end": end or time.time() + 60},
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()["data"]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) as the rule manager sees them."""
        resp = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        resp.raise_for_status()
        return resp.json()["data"]["alerts"]

    def exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        resp = httpx.get(
            f"{self.url}/api/v1/query_exemplars",
            params={"query": promql, "start": start, "end": end},
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()["data"]


class Loki:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def query_range(self, logql: str, since: float = 900, limit: int = 5000) -> list[dict]:
        """Streams matching `logql` in the last `since` seconds, oldest entries first."""
        now = time.time_ns()
        resp = httpx.get(
            f"{self.url}/loki/api/v1/query_range",
            timeout=10,
            params={
                "query": logql,
                "start": now - int(since * 1e9),
                "end": now + int(60e9),
                "limit": limit,
                "direction": "forward",
            },
        )
        resp.raise_for_status()
        return resp.json()["data"]["result"]

    def entries(
        self, logql: str, since: float = 900, limit: int = 5000
    ) -> list[tuple[dict[str, str], str, dict[str, str]]]:
        """(index labels, line, structured metadata) of each entry matching `logql`.

        Asks Loki to keep the two apart (`categorize-labels`): without it, a query's streams
        mix index labels, structured metadata and parsed labels into one map.
        """
        now = time.time_ns()
        resp = httpx.get(
            f"{self.url}/loki/api/v1/query_range",
            timeout=10,
            headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
            params={
                "query": logql,
                "start": now - int(since * 1e9),
                "end": now + int(60e9),
                "limit": limit,
                "direction": "forward",
            },
        )
        resp.raise_for_status()
        out = []
        for stream in resp.json()["data"]["result"]:
            for value in stream["values"]:
                meta = value[2].get("structuredMetadata", {}) if len(value) > 2 else {}
                out.append((stream["stream"], value[1], meta))
        return out

    def lines(self, logql: str, **kw: Any) -> list[str]:
        return [line for s in self.query_range(logql, **kw) for _, line in s["values"]]

    def labels(self) -> list[str]:
        resp = httpx.get(f"{self.url}/loki/api/v1/labels", timeout=10)
        resp.raise_for_status()
        return resp.json().get("data", [])


class Tempo:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace (OTLP JSON, v2 API) or None while Tempo does not have it yet."""
        resp = httpx.get(f"{self.url}/api/v2/traces/{trace_id}", timeout=10)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def spans(self, trace_id: str) -> list[dict[str, Any]]:
        trace = self.trace(trace_id)
        if not trace:
            return []
        body = trace.get("trace", trace)
        return [
            span
            for rs in body.get("resourceSpans", body.get("batches", []))
            for ss in rs.get("scopeSpans", [])
            for span in ss.get("spans", [])
        ]

    def resource_spans(self, trace_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource attributes, span) for every span of the trace; [] while Tempo lacks it.

        The spans' `traceId`, `spanId` and `parentSpanId` are turned from the base64 of Tempo's
        OTLP JSON into the lower-case hex that logs, exemplars and TraceQL use.
        """
        trace = self.trace(trace_id)
        if not trace:
            return []
        body = trace.get("trace", trace)
        out = []
        for rs in body.get("resourceSpans", body.get("batches", [])):
            resource = attributes(rs.get("resource", {}))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    ids = {k: hex_id(span.get(k)) for k in ("traceId", "spanId", "parentSpanId")}
                    out.append((resource, {**span, **ids}))
        return out

    def metrics_query_range(self, traceql: str, since: float = 900, step: str = "15s") -> list:
        """TraceQL metrics (`{...} | rate()`): the series, each with its samples."""
        now = int(time.time())
        resp = httpx.get(
            f"{self.url}/api/metrics/query_range",
            timeout=10,
            params={"q": traceql, "start": now - int(since), "end": now + 60, "step": step},
        )
        resp.raise_for_status()
        return resp.json().get("series", [])

    def search(self, traceql: str, since: float = 900) -> list[dict[str, Any]]:
        now = int(time.time())
        resp = httpx.get(
            f"{self.url}/api/search",
            timeout=10,
            params={"q": traceql, "start": now - int(since), "end": now + 60, "limit": 50},
        )
        resp.raise_for_status()
        return resp.json().get("traces", [])


def hex_id(value: str | None) -> str:
    """A trace or span id from OTLP JSON (base64, as Tempo writes it) as lower-case hex; ""
    for none. Ids that are already hex pass through."""
    if not value:
        return ""
    if len(value) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    return base64.b64decode(value).hex()


def attributes(span_or_record: dict[str, Any]) -> dict[str, Any]:
    """OTLP JSON attributes -> {key: python value}."""
    out = {}
    for kv in span_or_record.get("attributes", []):
        value = kv.get("value", {})
        out[kv["key"]] = next(iter(value.values()), None) if value else None
    return out
