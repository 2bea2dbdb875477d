"""Reading telemetry back out of the stack, for e2e tests: Prometheus's HTTP API, and the files
the native log and trace store writes in place of Loki and Tempo.

Every read is a poll with a deadline (`eventually`): telemetry takes a moment to travel
through the collector's batch and retry, and the span-derived metrics are flushed every 15 s.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
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
        result: list[dict[str, Any]] = resp.json()["data"]["result"]
        return result

    def series(self, match: str, start: float, end: float | None = None) -> list[dict[str, str]]:
        """Label sets of every series matching `match` that had a sample in [start, end]."""
        resp = httpx.get(
            f"{self.url}/api/v1/series",
            params={"match[]": match, "start": start, "end": end or time.time() + 60},
            timeout=30,
        )
        resp.raise_for_status()
        labels: list[dict[str, str]] = resp.json()["data"]
        return labels

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) as the rule manager sees them."""
        resp = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        resp.raise_for_status()
        alerts: list[dict[str, Any]] = resp.json()["data"]["alerts"]
        return alerts

    def exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        resp = httpx.get(
            f"{self.url}/api/v1/query_exemplars",
            params={"query": promql, "start": start, "end": end},
            timeout=10,
        )
        resp.raise_for_status()
        exemplars: list[dict[str, Any]] = resp.json()["data"]
        return exemplars


class Store:
    """What the collector sent to Loki and Tempo, as the native log and trace store wrote it.

    The store (otel-collector/native-store.yaml) listens where Loki's OTLP and Tempo's OTLP gRPC
    ingest would and writes each request it receives as one line of OTLP JSON, so this is exactly
    what compose's Loki and Tempo would have been given. Files are read incrementally: each call
    parses only what was appended (or rotated out) since the last one. A file's offset is kept by
    its inode, not its name: the store rotates by renaming the current file to <signal>-<time>.jsonl
    (which then goes on from where it was read) and starting a new one (read from its start).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self._offsets: dict[tuple[int, int], int] = {}  # (device, inode) -> bytes read
        self._spans: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._logs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._by_trace: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._lock = threading.Lock()  # the Tempo/Loki stand-in reads from several threads

    def _read(self) -> None:
        with self._lock:
            before = len(self._spans)
            self._read_files()
            for resource, span in self._spans[before:]:
                self._by_trace.setdefault(span["traceId"], []).append((resource, span))

    def _read_files(self) -> None:
        # Rotated files (logs-<time>.jsonl) first, oldest first, then the current one.
        for signal, sink in (("logs", self._logs), ("traces", self._spans)):
            files = sorted(self.directory.glob(f"{signal}-*.jsonl"))
            files.append(self.directory / f"{signal}.jsonl")
            for path in files:
                try:
                    fh = path.open("rb")
                except FileNotFoundError:  # rotated away since the glob: read next time
                    continue
                with fh:
                    stat = os.fstat(fh.fileno())
                    key = (stat.st_dev, stat.st_ino)
                    offset = self._offsets.get(key, 0)
                    if offset > stat.st_size:  # an inode of a deleted backup, reused
                        offset = 0
                    fh.seek(offset)
                    data = fh.read()
                end = data.rfind(b"\n") + 1  # a line still being written waits for next time
                self._offsets[key] = offset + end
                for line in data[:end].splitlines():
                    if line.strip():
                        sink.extend(_records(json.loads(line)))

    def spans(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource attributes, span) of every span received so far; ids as lower-case hex."""
        self._read()
        return list(self._spans)

    def trace(self, trace_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        self._read()
        return list(self._by_trace.get(trace_id, []))

    def logs(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource attributes, log record) of every record received so far."""
        self._read()
        return list(self._logs)


def _records(request: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource attributes, span or log record) of an OTLP JSON export request."""
    out = []
    for key, scopes, items in (
        ("resourceSpans", "scopeSpans", "spans"),
        ("resourceLogs", "scopeLogs", "logRecords"),
    ):
        for rs in request.get(key, []):
            resource = attributes(rs.get("resource", {}))
            for scope in rs.get(scopes, []):
                for item in scope.get(items, []):
                    ids = {k: hex_id(item.get(k)) for k in ("traceId", "spanId", "parentSpanId")}
                    if items == "logRecords":  # a record outside any span has no ids at all
                        ids = {k: v for k, v in ids.items() if k in item}
                    out.append((resource, {**item, **ids}))  # a root span's parent is ""
    return out


def body(record: dict[str, Any]) -> Any:
    """A log record's body as a Python value."""
    value = record.get("body", {})
    return next(iter(value.values()), None) if value else None


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
