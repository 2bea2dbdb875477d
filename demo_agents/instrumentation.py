"""How every fleet process sets up `atalaia` (one call) and quiets per-request HTTP client logs."""

from __future__ import annotations

import logging
import os

import atalaia

NAMESPACE = "atalaia-demo"
# The HTTP clients log every request at INFO; spans already record each one.
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "apscheduler")
# OpenTelemetry's switch between the old and the stable semantic conventions of its HTTP
# instrumentations (the orchestrator's API: opentelemetry-instrumentation-fastapi).
SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
STABLE_HTTP = ("http", "http/dup")


def opt_in_stable_http_conventions() -> None:
    """Ask OpenTelemetry's HTTP instrumentations for the stable conventions: the duration as
    `http.server.request.duration` in seconds by `http.route`, method and status. Without it
    they write the old ones, whose duration carries the raw path (`http.target`): a series per
    URL. Whatever else the variable asks for is kept. The instrumentations read it once per
    process, when the first of them is set up, so this runs before `atalaia.instrument()`."""
    modes = [m.strip() for m in os.environ.get(SEMCONV_OPT_IN, "").split(",") if m.strip()]
    if not set(STABLE_HTTP) & set(modes):
        os.environ[SEMCONV_OPT_IN] = ",".join([*modes, "http"])


def instrument(service_name: str, agent_name: str | None = None) -> atalaia.Telemetry:
    opt_in_stable_http_conventions()
    telemetry = atalaia.instrument(
        service_name,
        agent_name=agent_name,
        environment=os.environ.get("ATALAIA_DEMO_ENVIRONMENT", "demo"),
        resource_attributes={"service.namespace": NAMESPACE},
        # The fleet's processes configure no logging of their own: INFO and up, as JSON lines.
        log_level=logging.INFO,
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return telemetry
