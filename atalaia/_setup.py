"""`atalaia.instrument()`: the one line that sets up a process."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Iterable
from typing import Any

from atalaia import _telemetry
from atalaia._clients import instrument_clients
from atalaia._telemetry import Telemetry
from atalaia.prices import PriceTable

_log = logging.getLogger("atalaia")


def instrument(
    service_name: str,
    *,
    agent_name: str | None = None,
    environment: str | None = None,
    capture_content: bool | None = None,
    prices: PriceTable | None = None,
    resource_attributes: dict[str, Any] | None = None,
    json_logs: bool = True,
    log_level: int | None = None,
    clients: bool | Iterable[str] = True,
    shutdown_timeout_s: float = _telemetry.DEFAULT_SHUTDOWN_TIMEOUT_S,
) -> Telemetry:
    """Set up traces, metrics and logs for this process, exported over OTLP as the OTEL_*
    environment says, and turn on the OpenTelemetry GenAI instrumentations of the installed LLM
    clients and agent frameworks (`clients`: True for all, False for none, or their names, e.g.
    ``["openai"]``), so every call is traced with no change where it is made.

    Logging: what the app logs is captured at the app's levels; the root logger's level is
    changed only when `log_level` is given, and the JSON lines on stdout (`json_logs`) only
    when the app has not configured logging itself.

    Idempotent: a second call returns the first Telemetry (with a warning if its arguments
    differ). At exit, pending data gets `shutdown_timeout_s` to leave.
    """
    clients_key = clients if isinstance(clients, bool) else tuple(sorted(clients))
    config = {
        "service_name": service_name,
        "agent_name": agent_name,
        "environment": environment,
        "capture_content": capture_content,
        "prices": prices,
        "resource_attributes": resource_attributes,
        "json_logs": json_logs,
        "log_level": log_level,
        "clients": clients_key,
        "shutdown_timeout_s": shutdown_timeout_s,
    }
    with _telemetry.current_lock():
        existing = _telemetry.peek()
        if existing is not None and existing.config and not existing.is_shut_down:
            if dict(existing.config) != config:
                changed = sorted(k for k in config if config[k] != existing.config.get(k))
                _log.warning(
                    "atalaia.instrument() was already called; ignoring the new arguments %s",
                    changed,
                )
            return existing
    try:
        tel = Telemetry.setup(
            service_name,
            agent_name=agent_name,
            environment=environment,
            capture_content=capture_content,
            prices=prices,
            resource_attributes=resource_attributes,
            json_logs=json_logs,
            log_level=log_level,
            set_global=True,
        )
    except Exception as exc:  # never take the agent down for its telemetry
        _log.error("atalaia.instrument() failed, telemetry is off: %r", exc, exc_info=exc)
        tel = Telemetry.from_global()
    tel.config = config
    _telemetry.replace_current(tel)
    if tel._owns_providers:
        with tel.guard("instrumenting LLM clients"):
            tel.clients = instrument_clients(tel, clients)
    atexit.register(tel.shutdown, shutdown_timeout_s)
    return tel
