"""The orchestrator API's RED metrics and spans (opentelemetry-instrumentation-fastapi), over real
HTTP into in-memory readers: one duration histogram by route template, method and status; no
series per raw path (a 404 on an unknown path has no route); health checks and scrapes left out;
a heartbeat the SQLite database cannot take is a 503 with `error.type`, and a failed span."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from atalaia.testing import Captured, in_memory
from demo_agents import fleet_config
from demo_agents.http_server import free_port, serve_in_thread
from demo_agents.orchestrator.app import create_app
from demo_agents.orchestrator.service import Orchestrator, Settings

DURATION = "http.server.request.duration"
HEARTBEAT_ROUTE = "/agents/{name}/heartbeat"
# The attributes the stable HTTP conventions put on the duration (docs/telemetry.md).
ATTRIBUTES = {
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "error.type",
    "url.scheme",
    "network.protocol.version",
}


@pytest.fixture(scope="module")
def captured() -> Iterator[Captured]:
    cap = in_memory("orchestrator")
    yield cap
    cap.telemetry.shutdown()


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Orchestrator:
    # Nothing listens where its LLM and agents would be: it starts none and sends no task.
    nowhere = f"http://127.0.0.1:{free_port()}"
    return Orchestrator(
        Settings(
            llm_url=f"{nowhere}/v1",
            state_dir=Path(tmp_path_factory.mktemp("state")),
            spawn_agents=False,
            generate=False,
            agent_urls={a.name: nowhere for a in fleet_config.AGENTS},
        )
    )


@pytest.fixture(scope="module")
def api(orchestrator: Orchestrator, captured: Captured) -> Iterator[str]:
    app = create_app(
        orchestrator,
        tracer_provider=captured.telemetry.tracer_provider,
        meter_provider=captured.telemetry.meter_provider,
    )
    with serve_in_thread(app) as url:
        yield url


def requests_by(captured: Captured) -> Counter[tuple[Any, ...]]:
    """Requests counted by the duration histogram, by (method, route, status, error type)."""
    return Counter(
        {
            (
                p.attributes.get("http.request.method"),
                p.attributes.get("http.route"),
                p.attributes.get("http.response.status_code"),
                p.attributes.get("error.type"),
            ): p.count
            for p in captured.points(DURATION)
        }
    )


def counted_since(
    captured: Captured, before: Counter[tuple[Any, ...]], expected: dict[tuple[Any, ...], int]
) -> Counter[tuple[Any, ...]]:
    """What was counted since `before`, once it is `expected` or after 5 s: the instrumentation
    records a request after its response has gone out, a moment after the client has it."""
    deadline = time.monotonic() + 5
    counted = requests_by(captured) - before
    while counted != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        counted = requests_by(captured) - before
    return counted


def test_requests_are_counted_by_route_template_method_and_status(
    api: str, captured: Captured, orchestrator: Orchestrator
) -> None:
    before = requests_by(captured)
    for _ in range(3):
        assert httpx.put(f"{api}/agents/helix/heartbeat").status_code == 200
    assert orchestrator.store.last_seen("Helix") is not None  # recorded under its real name
    assert httpx.put(f"{api}/agents/Zed/heartbeat").status_code == 422  # unknown agent
    assert httpx.post(f"{api}/events/task_split", json={"chunks": 2}).status_code == 202
    assert httpx.post(f"{api}/events/teleport", json={}).status_code == 404
    for i in range(4):  # four raw paths, one series: no route
        assert httpx.get(f"{api}/no/such/path/{i}").status_code == 404
    for _ in range(5):  # left out: health checks and Prometheus's scrape
        assert httpx.get(f"{api}/health").status_code == 200
        assert httpx.get(f"{api}/metrics").status_code == 200
    assert httpx.get(f"{api}/metrics/summary").status_code == 200  # not a scrape: counted

    expected = {
        ("PUT", HEARTBEAT_ROUTE, 200, None): 3,
        ("PUT", HEARTBEAT_ROUTE, 422, None): 1,  # a client error is not an error.type
        ("POST", "/events/{kind}", 202, None): 1,
        ("POST", "/events/{kind}", 404, None): 1,
        ("GET", None, 404, None): 4,
        ("GET", "/metrics/summary", 200, None): 1,
    }
    assert counted_since(captured, before, expected) == expected
    points = captured.points(DURATION)
    for point in points:
        assert set(point.attributes) <= ATTRIBUTES, point.attributes
    routes = {p.attributes.get("http.route") for p in points}
    assert not {"/health", "/metrics"} & routes
    # The old conventions' duration (milliseconds, by raw path) is not written.
    assert captured.points("http.server.duration") == []


def test_a_heartbeat_the_database_cannot_take_is_a_503_and_an_error(
    api: str, captured: Captured, orchestrator: Orchestrator
) -> None:
    """Another process holds SQLite's write lock past the busy timeout (5 s): the heartbeat is
    refused with 503 and Retry-After, counted with `error.type` 503, its span failed."""
    before = requests_by(captured)
    with closing(sqlite3.connect(orchestrator.store.path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        refused = httpx.put(f"{api}/agents/Sigma/heartbeat", timeout=30)
        waited = time.monotonic() - started
        other.execute("ROLLBACK")
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert "database is locked" in refused.json()["detail"]
    assert waited >= 4.5  # it waited for the lock, off the event loop
    assert httpx.get(f"{api}/health").status_code == 200
    assert httpx.put(f"{api}/agents/Sigma/heartbeat").status_code == 200  # lock gone: recorded

    expected = {
        ("PUT", HEARTBEAT_ROUTE, 503, "503"): 1,
        ("PUT", HEARTBEAT_ROUTE, 200, None): 1,
    }
    assert counted_since(captured, before, expected) == expected
    spans = [
        s
        for s in captured.spans()
        if s.kind == SpanKind.SERVER and s.attributes.get("http.response.status_code") == 503
    ]
    assert [s.name for s in spans] == [f"PUT {HEARTBEAT_ROUTE}"]
    assert spans[0].status.status_code == StatusCode.ERROR
    assert spans[0].attributes.get("error.type") == "503"
    # No span for each ASGI message: one SERVER span per request.
    assert not [s for s in captured.spans() if s.name.endswith((" send", " receive"))]


def test_an_unhandled_exception_is_a_500_and_an_error(
    api: str, captured: Captured, orchestrator: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug, not a refusal: the instrumentation sits outside FastAPI's error handling, so the
    crash is counted as the 500 the caller got, with `error.type`, which availability counts."""

    def broken() -> dict[str, Any]:
        raise RuntimeError("the summary broke")

    monkeypatch.setattr(orchestrator, "summary", broken)
    before = requests_by(captured)
    assert httpx.get(f"{api}/metrics/summary").status_code == 500
    expected = {("GET", "/metrics/summary", 500, "500"): 1}
    assert counted_since(captured, before, expected) == expected
