"""Typed read-only clients for the stack's backends: Prometheus, Loki, Tempo and Alertmanager.

The insight commands (`atalaia slo`, `atalaia report`, `atalaia explain`, `atalaia status`) share
them. Every failure is a `BackendError` that names the backend, its URL and the cause, with three
kinds told apart:

* `Unreachable`: nothing answered (connection refused, DNS, timeout);
* `QueryError`: the backend answered with an error (bad query, HTTP 4xx/5xx);
* `NoData`: the query was fine but matched nothing; callers decide whether that is an error.

Defaults match `make up` (the native stack and compose both bind these ports on loopback).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import httpx

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_LOKI_URL = "http://127.0.0.1:3100"
DEFAULT_TEMPO_URL = "http://127.0.0.1:3200"
DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"
DEFAULT_TIMEOUT = 30.0


class BackendError(Exception):
    """A backend could not answer a query; `str()` says which backend, where, and why."""

    def __init__(self, backend: str, url: str, cause: str):
        self.backend, self.url, self.cause = backend, url, cause
        super().__init__(f"{backend} at {url}: {cause}")


class Unreachable(BackendError):
    """Nothing answered at the URL."""


class QueryError(BackendError):
    """The backend answered with an error: a bad query or an HTTP error status."""


class NoData(BackendError):
    """The query was valid but returned nothing."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (Unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)


class _Client:
    backend = "backend"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        if not url.startswith(("http://", "https://")):
            raise QueryError(self.backend, url, "the URL must start with http:// or https://")
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any], what: str) -> httpx.Response:
        """GET path; raise Unreachable or QueryError (with the backend's own message) on failure."""
        try:
            resp = self._http.get(path, params=params)
        except httpx.TransportError as e:
            raise Unreachable(
                self.backend, self.url, f"unreachable ({type(e).__name__}: {e})"
            ) from e
        except httpx.HTTPError as e:  # pragma: no cover - other client-side failures
            raise QueryError(self.backend, self.url, f"{what}: {e}") from e
        if resp.status_code >= 400:
            raise QueryError(
                self.backend,
                self.url,
                f"{what} failed with HTTP {resp.status_code}: {_error_text(resp)}",
            )
        return resp

    def _json(self, resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError as e:
            raise QueryError(
                self.backend, self.url, f"{what}: the answer is not JSON: {resp.text[:200]!r}"
            ) from e


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict):
        kind, error = body.get("errorType"), body.get("error") or body.get("message")
        if error:
            return f"{kind}: {error}" if kind else str(error)
    return str(body)[:500]


def _prom_data(client: _Client, resp: httpx.Response, what: str) -> dict[str, Any]:
    body = client._json(resp, what)
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise QueryError(client.backend, client.url, f"{what} failed: {error}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise QueryError(client.backend, client.url, f"{what}: no `data` in the answer")
    return data


def _samples(data: dict[str, Any]) -> list[Sample]:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [Sample({}, float(result[1]))]  # type: ignore[index]
    return [Sample(dict(r.get("metric", {})), float(r["value"][1])) for r in result or []]


def _series(data: dict[str, Any]) -> list[Series]:
    return [
        Series(dict(r.get("metric", {})), [(float(t), float(v)) for t, v in r.get("values", [])])
        for r in data.get("result") or []
    ]


class Prometheus(_Client):
    backend = "prometheus"

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Instant query at `at` (Unix time; default now). [] when nothing matched."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        what = f"query {_short(promql)}"
        return _samples(_prom_data(self, self._get("/api/v1/query", params, what), what))

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        what = f"range query {_short(promql)}"
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step}
        return _series(_prom_data(self, self._get("/api/v1/query_range", params, what), what))

    def scalar(self, promql: str, at: float | None = None) -> float:
        """The single value of an aggregated query; NoData when it matched nothing."""
        samples = self.query(promql, at)
        if not samples:
            raise NoData(self.backend, self.url, f"no data for {_short(promql)}")
        if len(samples) > 1:
            raise QueryError(
                self.backend,
                self.url,
                f"expected one series, got {len(samples)} for {_short(promql)}",
            )
        return samples[0].value


class Loki(_Client):
    backend = "loki"

    def query(self, logql: str, at: float | None = None) -> list[Sample]:
        """Instant metric query (`sum by (x) (count_over_time({...}[24h]))`)."""
        params: dict[str, Any] = {"query": logql}
        if at is not None:
            params["time"] = str(int(at * 1e9))
        what = f"query {_short(logql)}"
        return _samples(_prom_data(self, self._get("/loki/api/v1/query", params, what), what))

    def query_range(
        self, logql: str, start: float, end: float, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Log streams (or metric series for a metric query) in [start, end], newest first."""
        params = {
            "query": logql,
            "start": str(int(start * 1e9)),
            "end": str(int(end * 1e9)),
            "limit": limit,
        }
        what = f"query_range {_short(logql)}"
        data = _prom_data(self, self._get("/loki/api/v1/query_range", params, what), what)
        return list(data.get("result") or [])

    def series_range(self, logql: str, start: float, end: float, step: float) -> list[Series]:
        """A metric query (`sum by (x) (count_over_time(...))`) as series of (time, value)."""
        params = {
            "query": logql,
            "start": str(int(start * 1e9)),
            "end": str(int(end * 1e9)),
            "step": f"{step:g}s",
        }
        what = f"query_range {_short(logql)}"
        return _series(_prom_data(self, self._get("/loki/api/v1/query_range", params, what), what))


class Tempo(_Client):
    backend = "tempo"

    def search(
        self, traceql: str, start: float, end: float, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Traces matching a TraceQL query in [start, end] (Tempo's search result objects)."""
        params = {"q": traceql, "start": int(start), "end": int(end) + 1, "limit": limit}
        what = f"search {_short(traceql)}"
        body = self._json(self._get("/api/search", params, what), what)
        return list(body.get("traces") or []) if isinstance(body, dict) else []

    def trace(self, trace_id: str) -> dict[str, Any]:
        """One trace as OTLP JSON (API v2); NoData when Tempo does not have it."""
        what = f"trace {trace_id}"
        try:
            resp = self._http.get(f"/api/v2/traces/{trace_id}")
        except httpx.TransportError as e:
            raise Unreachable(
                self.backend, self.url, f"unreachable ({type(e).__name__}: {e})"
            ) from e
        if resp.status_code == 404:
            raise NoData(self.backend, self.url, f"no trace with id {trace_id}")
        if resp.status_code >= 400:
            raise QueryError(
                self.backend, self.url, f"{what} failed with HTTP {resp.status_code}: "
                f"{_error_text(resp)}"
            )  # fmt: skip
        body = self._json(resp, what)
        return body.get("trace", body) if isinstance(body, dict) else {}


class Alertmanager(_Client):
    backend = "alertmanager"

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts firing now: active, neither silenced nor inhibited (API v2
        `gettableAlert` objects: `labels`, `annotations`, `startsAt`, `status`, ...)."""
        params = {"active": "true", "silenced": "false", "inhibited": "false"}
        what = "alerts"
        body = self._json(self._get("/api/v2/alerts", params, what), what)
        if not isinstance(body, list):
            raise QueryError(self.backend, self.url, f"{what}: expected a list, got {body!r:.200}")
        return [a for a in body if isinstance(a, dict) and _state(a) == "active"]


def _state(alert: dict[str, Any]) -> str:
    status = alert.get("status")
    return str(status.get("state", "")) if isinstance(status, dict) else ""


def _short(query: str, limit: int = 160) -> str:
    flat = " ".join(query.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


# --- command-line plumbing shared by the insight commands ----------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> str:
    """argparse type for a Prometheus duration such as 30d, 24h, 90m; returns it unchanged."""
    text = text.strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h, 7d or 4w")
    return text


def duration_to_seconds(text: str) -> int:
    return int(text[:-1]) * _UNITS[text[-1]]


def parse_time(text: str) -> float:
    """argparse type for a time: Unix seconds, ISO 8601 (e.g. 2026-11-21T03:12:00Z), `now` or
    `now-15m` (a duration before now)."""
    text = text.strip()
    if text == "now":
        return time.time()
    if text.startswith("now-"):
        try:
            return time.time() - duration_to_seconds(parse_duration(text[4:]))
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from e
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither Unix seconds nor an ISO 8601 time"
        ) from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r} must start with http:// or https://")
    return text


def add_backend_args(
    parser: argparse.ArgumentParser,
    *,
    loki: bool = False,
    tempo: bool = False,
    alertmanager: bool = False,
    at: bool = True,
) -> None:
    """--prometheus-url (and --loki-url / --tempo-url / --alertmanager-url when the command reads
    them, and --at when it looks at one moment)."""
    parser.add_argument(
        "--prometheus-url",
        type=_url,
        default=DEFAULT_PROMETHEUS_URL,
        help=f"Prometheus HTTP API (default {DEFAULT_PROMETHEUS_URL})",
    )
    if loki:
        parser.add_argument(
            "--loki-url",
            type=_url,
            default=DEFAULT_LOKI_URL,
            help=f"Loki HTTP API (default {DEFAULT_LOKI_URL})",
        )
    if tempo:
        parser.add_argument(
            "--tempo-url",
            type=_url,
            default=DEFAULT_TEMPO_URL,
            help=f"Tempo HTTP API (default {DEFAULT_TEMPO_URL})",
        )
    if alertmanager:
        parser.add_argument(
            "--alertmanager-url",
            type=_url,
            default=DEFAULT_ALERTMANAGER_URL,
            help=f"Alertmanager HTTP API (default {DEFAULT_ALERTMANAGER_URL})",
        )
    if not at:
        return
    parser.add_argument(
        "--at",
        type=parse_time,
        default=None,
        help="evaluate at this time (Unix seconds or ISO 8601; default now)",
    )


def now_or(at: float | None) -> float:
    return time.time() if at is None else at
