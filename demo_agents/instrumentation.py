"""How every fleet process sets up `atalaia` (one call) and quiets per-request HTTP client logs."""

from __future__ import annotations

import logging
import os

import atalaia

NAMESPACE = "atalaia-demo"
# The HTTP clients log every request at INFO; spans already record each one.
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "apscheduler")


def instrument(service_name: str, agent_name: str | None = None) -> atalaia.Telemetry:
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
