"""Running an ASGI app on 127.0.0.1 inside the current process, for tests and embedding."""

from __future__ import annotations

import inspect
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from demo_agents.fleet_config import HOST


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, deadline_s: float = 15.0) -> None:
    """Poll `url` until it answers 200, or raise after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {deadline_s}s: {last}")


@contextmanager
def serve_in_thread(app: FastAPI, health_path: str = "/health") -> Iterator[str]:
    """Serve `app` on a free port in a thread; yields its base URL and stops it on exit."""
    port = free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base = f"http://{HOST}:{port}"
    try:
        wait_ready(base + health_path)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


QUIET_PREFIXES = ("/health", "/metrics", "/admin/", "/faults", "/load")


def _quiet(scope: MutableMapping[str, Any]) -> bool:
    path = str(scope.get("path", ""))
    return path.startswith(QUIET_PREFIXES)


def fastapi_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry support (newer FastAPI releases), tuned for the fleet: a
    SERVER span per task request, which the agent's invoke_agent span continues; no spans for
    health checks, scrapes and admin calls; no per-operation spans; no uncatalogued HTTP metrics.
    Empty on FastAPI releases without it."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"operation_spans": False, "metrics": False, "exclude": _quiet}}


def native_telemetry_off() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry support switched off, for an app that the OpenTelemetry
    instrumentation covers (`instrument_api`); empty on FastAPI releases without it."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


# Regular expressions searched in each request's URL (without its query): health checks and
# Prometheus's scrape would dominate the request rate and say nothing about the API's callers.
API_EXCLUDED_URLS = (r"/health$", r"/metrics$")


def instrument_api(
    app: FastAPI,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> FastAPI:
    """RED metrics and a SERVER span per request, from the maintained OpenTelemetry
    instrumentation (opentelemetry-instrumentation-fastapi), on the given providers or else the
    global ones: `http.server.request.duration` by `http.route` (the route's template, never the
    raw path; a request that matches no route has none), `http.request.method`,
    `http.response.status_code` and `error.type` (5xx). Needs the stable HTTP conventions
    (`demo_agents.instrumentation.opt_in_stable_http_conventions`). No spans per ASGI message."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        excluded_urls=",".join(API_EXCLUDED_URLS),
        exclude_spans=["receive", "send"],
    )
    return app
