"""Export pipelines built from the standard OTEL_* environment variables only.

Per signal (traces, metrics, logs):

- ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``: ``otlp`` (default), ``console`` or ``none``.
- ``OTEL_EXPORTER_OTLP_{SIGNAL_}PROTOCOL``: ``http/protobuf`` (default, port 4318; the transport
  the library depends on) or ``grpc`` (port 4317; ``pip install 'atalaia[grpc]'``).
- Endpoint, headers, certificates, compression and timeout: the OTLP exporters read
  ``OTEL_EXPORTER_OTLP_{SIGNAL_}{ENDPOINT,HEADERS,...}`` themselves.

Spans and log records are batched on one background thread per signal into queues bounded in
items (``OTEL_BSP_MAX_QUEUE_SIZE`` / ``OTEL_BLRP_MAX_QUEUE_SIZE``, 2048) and in bytes
(``ATALAIA_EXPORT_QUEUE_BYTES``, 32 MiB each) that drop the oldest items when full (_pipeline.py),
so a collector that is down costs the agent bounded memory and never a blocked call.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

Signal = Literal["traces", "metrics", "logs"]
_log = logging.getLogger("atalaia")

# The SDK waits 10 s for an export by default. Exports run on background threads, but shutdown
# (at exit) waits for the last one: a short default keeps an agent whose collector is away from
# hanging on exit. Any OTEL_EXPORTER_OTLP_*TIMEOUT the user sets wins.
DEFAULT_EXPORT_TIMEOUT_S = 2.0
# The SDK exports metrics every 60 s by default; 15 s matches the usual Prometheus scrape interval
# so dashboards and heartbeat alerts see fresh data. OTEL_METRIC_EXPORT_INTERVAL wins.
DEFAULT_METRIC_INTERVAL_MS = 15_000
ENV_QUEUE_BYTES = "ATALAIA_EXPORT_QUEUE_BYTES"


@dataclass
class Pipelines:
    """Exporters and readers the providers are built with. Spans and logs are batched in
    bounded queues, or exported on the caller's thread when `synchronous` (tests). `exporters`
    are kept to cut a stuck shutdown short."""

    span_exporters: list[Any] = field(default_factory=list)
    metric_readers: list[MetricReader] = field(default_factory=list)
    log_exporters: list[Any] = field(default_factory=list)
    exporters: list[Any] = field(default_factory=list)
    synchronous: bool = False


def _env(*keys: str) -> str | None:
    for key in keys:
        value = os.environ.get(key, "").strip()
        if value:
            return value
    return None


def _int_env(key: str, default: int) -> int:
    value = _env(key)
    try:
        return int(value) if value else default
    except ValueError:
        _log.warning("%s=%r is not an integer; using %d", key, value, default)
        return default


def queue_limits(prefix: str) -> dict[str, Any]:
    """The batching settings of OTEL_BSP_* / OTEL_BLRP_*, and the byte bound."""
    items = _int_env(f"OTEL_{prefix}_MAX_QUEUE_SIZE", 2048)
    return {
        "max_items": items,
        "max_bytes": _int_env(ENV_QUEUE_BYTES, 32 * 1024 * 1024),
        "batch_size": min(_int_env(f"OTEL_{prefix}_MAX_EXPORT_BATCH_SIZE", 512), items),
        "delay_s": _int_env(f"OTEL_{prefix}_SCHEDULE_DELAY", 5000) / 1000,
    }


def _kinds(signal: Signal) -> list[str]:
    value = _env(f"OTEL_{signal.upper()}_EXPORTER") or "otlp"
    kinds = [k.strip().lower() for k in value.split(",") if k.strip()]
    for kind in kinds:
        if kind not in ("otlp", "console", "none"):
            _log.warning("OTEL_%s_EXPORTER=%s is not supported; using otlp", signal.upper(), kind)
    return ["otlp" if k not in ("console", "none") else k for k in kinds if k != "none"]


def grpc_installed() -> bool:
    return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None


def protocol(signal: Signal) -> str:
    """The OTLP protocol for one signal: its own variable, then the generic one, then
    http/protobuf (the specification's default, and the transport the library depends on)."""
    value = (
        _env(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()
    if value == "grpc":
        if grpc_installed():
            return "grpc"
        _log.warning(
            "OTLP protocol grpc asked for, but the gRPC exporter is not installed "
            "(pip install 'atalaia[grpc]'); using http/protobuf"
        )
        return "http/protobuf"
    if value != "http/protobuf":
        _log.warning(
            "OTLP protocol %r is not supported by the Python exporters; using http/protobuf", value
        )
    return "http/protobuf"


def _timeout(signal: Signal) -> float | None:
    """None lets the exporter read its OTEL_EXPORTER_OTLP_*TIMEOUT variable."""
    if _env(f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        return None
    return DEFAULT_EXPORT_TIMEOUT_S


def _otlp_exporter(signal: Signal) -> Any:
    # Imported lazily: only the chosen transport is loaded.
    timeout = _timeout(signal)
    if protocol(signal) == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(timeout=timeout)
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter(timeout=timeout)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(timeout=timeout)
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(timeout=timeout)
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )

    return HttpLogExporter(timeout=timeout)


_CONSOLE: dict[Signal, Callable[[], Any]] = {
    "traces": ConsoleSpanExporter,
    "metrics": ConsoleMetricExporter,
    "logs": ConsoleLogRecordExporter,
}


def _exporter(signal: Signal, kind: str) -> Any | None:
    try:
        return _CONSOLE[signal]() if kind == "console" else _otlp_exporter(signal)
    except Exception as exc:  # a bad OTEL_* value must not stop the agent
        _log.error("cannot build the %s %s exporter, not exporting them: %s", kind, signal, exc)
        return None


def from_environment() -> Pipelines:
    """An exporter per signal and kind the environment asks for."""
    pipes = Pipelines()
    for kind in _kinds("traces"):
        if exporter := _exporter("traces", kind):
            pipes.exporters.append(exporter)
            pipes.span_exporters.append(exporter)
    interval = None if _env("OTEL_METRIC_EXPORT_INTERVAL") else DEFAULT_METRIC_INTERVAL_MS
    for kind in _kinds("metrics"):
        if exporter := _exporter("metrics", kind):
            pipes.exporters.append(exporter)
            pipes.metric_readers.append(
                PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
            )
    for kind in _kinds("logs"):
        if exporter := _exporter("logs", kind):
            pipes.exporters.append(exporter)
            pipes.log_exporters.append(exporter)
    return pipes
