"""Export pipelines built from the standard OTEL_* environment variables only.

Per signal (traces, metrics, logs):

- ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``: ``otlp`` (default), ``console`` or ``none``.
- ``OTEL_EXPORTER_OTLP_{SIGNAL_}PROTOCOL``: ``grpc`` (default, port 4317) or ``http/protobuf``
  (port 4318).
- Endpoint, headers, certificates, compression and timeout: the OTLP exporters read
  ``OTEL_EXPORTER_OTLP_{SIGNAL_}{ENDPOINT,HEADERS,...}`` themselves.

Everything is batched on SDK background threads into bounded queues (``OTEL_BSP_*`` /
``OTEL_BLRP_*``; 2048 items by default) that drop the oldest items when full, so a collector that is
down costs the agent memory bounded by the queue size and never a blocked call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

Signal = Literal["traces", "metrics", "logs"]
_log = logging.getLogger("atalaia")

# The SDK waits 10 s for an export by default. Exports run on background threads, but shutdown
# (at exit) waits for the last one: a short default keeps an agent whose collector is away from
# hanging on exit. Any OTEL_EXPORTER_OTLP_*TIMEOUT the user sets wins.
DEFAULT_EXPORT_TIMEOUT_S = 5.0
# The SDK exports metrics every 60 s by default; 15 s matches the usual Prometheus scrape interval
# so dashboards and heartbeat alerts see fresh data. OTEL_METRIC_EXPORT_INTERVAL wins.
DEFAULT_METRIC_INTERVAL_MS = 15_000


@dataclass
class Pipelines:
    """What the providers are built with; `exporters` are kept to cut a stuck shutdown short."""

    span_processors: list[SpanProcessor] = field(default_factory=list)
    metric_readers: list[MetricReader] = field(default_factory=list)
    log_processors: list[LogRecordProcessor] = field(default_factory=list)
    exporters: list[Any] = field(default_factory=list)


def _env(*keys: str) -> str | None:
    for key in keys:
        value = os.environ.get(key, "").strip()
        if value:
            return value
    return None


def _kinds(signal: Signal) -> list[str]:
    value = _env(f"OTEL_{signal.upper()}_EXPORTER") or "otlp"
    kinds = [k.strip().lower() for k in value.split(",") if k.strip()]
    for kind in kinds:
        if kind not in ("otlp", "console", "none"):
            _log.warning("OTEL_%s_EXPORTER=%s is not supported; using otlp", signal.upper(), kind)
    return ["otlp" if k not in ("console", "none") else k for k in kinds if k != "none"]


def protocol(signal: Signal) -> str:
    """The OTLP protocol for one signal: its own variable, then the generic one, then grpc."""
    value = (
        _env(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).lower()
    if value == "grpc":
        return "grpc"
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
    # Imported lazily: only the chosen transport (grpcio or requests) is loaded.
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


def _batch(cls: Callable[..., Any], exporter: Any, variables: str) -> Any:
    """A batching processor with the queue settings of the environment, or the SDK's defaults
    when those are inconsistent (the SDK raises on, e.g., a batch larger than the queue)."""
    try:
        return cls(exporter)
    except ValueError as exc:
        _log.error("invalid %s settings (%s); using the defaults", variables, exc)
        return cls(
            exporter, max_queue_size=2048, schedule_delay_millis=5000, max_export_batch_size=512
        )


def from_environment() -> Pipelines:
    """Batching processors and periodic readers for every exporter the environment asks for."""
    pipes = Pipelines()
    for kind in _kinds("traces"):
        if exporter := _exporter("traces", kind):
            pipes.exporters.append(exporter)
            pipes.span_processors.append(_batch(BatchSpanProcessor, exporter, "OTEL_BSP_*"))
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
            pipes.log_processors.append(_batch(BatchLogRecordProcessor, exporter, "OTEL_BLRP_*"))
    return pipes
