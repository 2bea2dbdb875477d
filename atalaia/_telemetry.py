"""Telemetry: the providers of one process and the state every helper shares.

`atalaia.instrument()` (_setup.py) builds one from the OTEL_* environment and makes it global;
tests build their own with in-memory exporters (`atalaia.testing.in_memory`), so no helper
depends on OpenTelemetry's set-once global providers. The helpers themselves are module-level
functions (_tracking.py, _recorders.py) that find the active Telemetry with `current()`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from atalaia import _exporters, _limits, _pipeline, _process_metrics, names
from atalaia._context import current_task_context, task_log_attributes
from atalaia._instruments import Instruments
from atalaia._logs import (
    JsonLineFormatter,
    JsonStdoutHandler,
    OTelLogHandler,
    QuietInternals,
    restore_sdk_logs,
    throttle_sdk_logs,
)
from atalaia._resource import build_resource
from atalaia._version import __version__
from atalaia.prices import PriceFileError, PriceTable

_log = logging.getLogger("atalaia")

ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = ("true", "1", "yes", "span_only", "span_and_event")
# What shutdown (and so the exit of a process) may take at most, the collector reachable or not.
DEFAULT_SHUTDOWN_TIMEOUT_S = 2.0


def capture_content_from_env() -> bool:
    return os.environ.get(ENV_CAPTURE_CONTENT, "").strip().lower() in _CAPTURE_ON


class _Guard:
    """``with telemetry.guard("what"):`` swallows and logs (once per `what`) any exception: the
    library's own failures must never reach agent code."""

    __slots__ = ("_telemetry", "_what")

    def __init__(self, telemetry: Telemetry, what: str) -> None:
        self._telemetry = telemetry
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self._telemetry.warnings.once(
            f"failed:{self._what}", "%s failed, telemetry may be incomplete: %r", self._what, exc
        )
        return True


def _bounded(fns: list[Callable[[], object]], timeout_s: float) -> bool:
    """Run each of `fns` on its own daemon thread (traces, logs and metrics flush in parallel);
    True if all finished within `timeout_s`."""
    workers = [threading.Thread(target=fn, name="atalaia-flush", daemon=True) for fn in fns]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0))
    return not any(worker.is_alive() for worker in workers)


class _LazyPrices:
    """The price table, read on first use (on the export thread, usually), not at start-up."""

    def __init__(self, table: PriceTable | None) -> None:
        self._table = table
        self._lock = threading.Lock()

    def get(self) -> PriceTable:
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    try:
                        self._table = PriceTable.load()
                    except PriceFileError as exc:
                        _log.error("%s; using the built-in price table", exc)
                        self._table = PriceTable.defaults()
                table = self._table
        return table

    def cost(self, model: str, inp: int, out: int, cached: int, written: int = 0) -> float:
        return self.get().cost(model, inp, out, cached, written)


class Telemetry:
    """The providers, instruments and shared state of one process (or one test)."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        logger_provider: _logs.LoggerProvider,
        service_name: str | None = None,
        agent_name: str | None = None,
        capture_content: bool = False,
        prices: PriceTable | None = None,
        resource: Resource | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.service_name = service_name
        self.agent_name = agent_name
        self.capture_content = capture_content
        self._prices = _LazyPrices(prices)
        self.resource = resource
        self.tracer = tracer_provider.get_tracer(names.SCOPE_NAME, __version__, names.SCHEMA_URL)
        self.meter = meter_provider.get_meter(names.SCOPE_NAME, __version__, names.SCHEMA_URL)
        self.instruments = Instruments.create(self.meter)
        self.warnings = _limits.Warnings()
        self.labels = _limits.Labels(self.warnings)
        self.config: Mapping[str, Any] = {}  # the instrument() arguments, for the idempotency check
        self.clients: list[str] = []  # the LLM client instrumentations turned on
        self._exporters: list[Any] = []
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self._guards: dict[str, _Guard] = {}
        self._lock = threading.Lock()
        self._db: dict[tuple[str, str | None], tuple[int, int]] = {}
        self._shutdown = False
        self._owns_providers = False

    @property
    def prices(self) -> PriceTable:
        return self._prices.get()

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def setup(
        cls,
        service_name: str,
        *,
        agent_name: str | None = None,
        environment: str | None = None,
        capture_content: bool | None = None,
        prices: PriceTable | None = None,
        resource_attributes: Mapping[str, Any] | None = None,
        json_logs: bool = True,
        log_level: int | None = None,
        pipelines: _exporters.Pipelines | None = None,
        install_logging: bool = True,
        process_metrics_enabled: bool = True,
        set_global: bool = False,
    ) -> Telemetry:
        """Build SDK providers. `pipelines` defaults to OTLP from the OTEL_* environment; tests
        pass in-memory ones. `set_global` makes them OpenTelemetry's global providers (so other
        instrumentations, e.g. an HTTP framework's, use them too)."""
        resource = build_resource(
            service_name, agent_name=agent_name, environment=environment, extra=resource_attributes
        )
        lazy_prices = _LazyPrices(prices)
        pipes = pipelines if pipelines is not None else _exporters.from_environment()
        warnings = _limits.Warnings()
        tracer_provider = TracerProvider(
            resource=resource, shutdown_on_exit=False, span_limits=_span_limits()
        )
        tracer_provider.add_span_processor(_pipeline.ContextSpanProcessor())
        for span_exporter in pipes.span_exporters:
            priced = _pipeline.PricingSpanExporter(span_exporter, lazy_prices.cost)
            tracer_provider.add_span_processor(
                SimpleSpanProcessor(priced)
                if pipes.synchronous
                else _pipeline.span_batcher(priced, warnings, **_exporters.queue_limits("BSP"))
            )
        meter_provider = MeterProvider(
            metric_readers=pipes.metric_readers, resource=resource, shutdown_on_exit=False
        )
        logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        for log_exporter in pipes.log_exporters:
            logger_provider.add_log_record_processor(
                SimpleLogRecordProcessor(log_exporter)
                if pipes.synchronous
                else _pipeline.log_batcher(  # type: ignore[arg-type]
                    log_exporter, warnings, **_exporters.queue_limits("BLRP")
                )
            )
        if capture_content is None:
            capture_content = capture_content_from_env()
        tel = cls(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
            service_name=str(resource.attributes.get(names.SERVICE_NAME, service_name)),
            agent_name=str(resource.attributes.get(names.AGENT_NAME, agent_name) or "") or None,
            capture_content=capture_content,
            resource=resource,
        )
        tel._prices = lazy_prices
        tel.warnings = warnings
        tel.labels = _limits.Labels(warnings)
        tel._owns_providers = True
        tel._exporters = list(pipes.exporters)
        if process_metrics_enabled:
            _process_metrics.register(tel.meter)
        if set_global:
            trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
            _logs.set_logger_provider(logger_provider)
        if install_logging:
            tel._install_logging(json_logs=json_logs, log_level=log_level)
        return tel

    @classmethod
    def from_global(cls) -> Telemetry:
        """Helpers bound to OpenTelemetry's global providers: no-ops until someone configures
        them (the API's proxies then forward to the real ones)."""
        return cls(
            tracer_provider=trace.get_tracer_provider(),
            meter_provider=metrics.get_meter_provider(),
            logger_provider=_logs.get_logger_provider(),
        )

    def _install_logging(self, *, json_logs: bool, log_level: int | None) -> None:
        """Capture what the app logs, at the app's levels: one OTLP handler on the root logger.
        The JSON-lines handler only for an app that has not configured logging (no root
        handlers), so no record is printed twice; the root level only when asked."""
        root = logging.getLogger()
        app_configured = bool(root.handlers)
        added: list[tuple[logging.Logger, logging.Handler]] = [
            (root, OTelLogHandler(self.logger_provider, task_log_attributes))
        ]
        if json_logs and not app_configured:
            # From the resource, so OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES apply here too.
            resource = dict(self.resource.attributes) if self.resource else {}
            identity = {
                key: str(resource[key])
                for key in (names.SERVICE_NAME, names.AGENT_NAME)
                if resource.get(key)
            }
            json_handler = JsonStdoutHandler()
            json_handler.setFormatter(JsonLineFormatter(identity, task_log_attributes))
            json_handler.addFilter(QuietInternals())
            added.append((root, json_handler))
        quiet = throttle_sdk_logs()
        if quiet is not None:
            added.append(quiet)
        for logger, handler in added:
            logger.addHandler(handler)
        if log_level is not None:
            root.setLevel(log_level)
        self._handlers = added

    # --- internal error handling and bounds ---------------------------------------------------
    def guard(self, what: str) -> _Guard:
        guard = self._guards.get(what)
        if guard is None:
            guard = self._guards.setdefault(what, _Guard(self, what))
        return guard

    def closed(
        self, value: Any, allowed: tuple[str, ...], attribute: str, fallback: str = names.OTHER
    ) -> str:
        """`value` if it is one of `allowed`, else `fallback` (one warning per attribute), so a
        typo or an exception message can never become a new metric label value."""
        text = value if isinstance(value, str) else str(value)
        if text in allowed:
            return text
        self.warnings.once(
            f"closed:{attribute}",
            "%s=%r is not one of %s; using %r",
            attribute,
            text[:100],
            allowed,
            fallback,
        )
        return fallback

    def metric_attributes(self, agent: str | None, attrs: dict[str, Any]) -> dict[str, Any]:
        """Data-point attributes: `attrs` (values capped) plus the agent, from the argument or
        the enclosing task."""
        if agent is None:
            agent = task_agent()
        if agent:
            attrs[names.AGENT_NAME] = agent
        for key, value in attrs.items():
            if isinstance(value, str):
                attrs[key] = self.labels.value(key, value)
        return attrs

    # --- lifecycle --------------------------------------------------------------------------
    def _providers(self) -> list[Any]:
        return [self.tracer_provider, self.logger_provider, self.meter_provider]

    def force_flush(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
        """Export what is buffered now; True if it finished within `timeout_s` (it runs on
        helper threads, so a collector that does not answer cannot hold the caller longer)."""
        if self._shutdown or not self._owns_providers:
            return False
        millis = int(timeout_s * 1000)

        def flusher(provider: Any) -> Callable[[], None]:
            def flush() -> None:
                with self.guard("force_flush"):
                    provider.force_flush(millis)

            return flush

        return _bounded([flusher(p) for p in self._providers()], timeout_s)

    def shutdown(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
        """Flush and stop every pipeline; returns within about `timeout_s` even when the
        collector is unreachable (pending data is then dropped, with one warning). Idempotent."""
        with self._lock:
            if self._shutdown:
                return True
            self._shutdown = True
        sdk_handlers = [(lg, h) for lg, h in self._handlers if lg.name == "opentelemetry"]
        for logger, handler in self._handlers:
            if logger.name != "opentelemetry":
                logger.removeHandler(handler)
        self._handlers = []
        forget(self)
        finished = self._stop_providers(timeout_s)
        # Only now, and only if every pipeline stopped: the SDK complains while it gives up on
        # an unreachable collector, and its threads may still do so until the process exits.
        if finished:
            for logger, handler in sdk_handlers:
                logger.removeHandler(handler)
                restore_sdk_logs(logger)
        return finished

    def _stop_providers(self, timeout_s: float) -> bool:
        if not self._owns_providers:
            return True
        _pipeline._SHUTDOWN_MILLIS[0] = int(timeout_s * 1000)
        millis = int(timeout_s * 1000)

        def stopper(provider: Any) -> Callable[[], None]:
            def stop() -> None:
                with self.guard("shutdown"):
                    if isinstance(provider, MeterProvider):
                        provider.shutdown(timeout_millis=millis)
                    else:
                        provider.shutdown()

            return stop

        if _bounded([stopper(p) for p in self._providers()], timeout_s):
            return True
        # Still exporting (collector unreachable, retries backing off): shutting the exporters
        # down makes their retry loops give up, so the pipelines finish without the data.
        for exporter in self._exporters:
            with self.guard("shutdown"):
                exporter.shutdown()
        _log.warning("atalaia: telemetry not flushed within %.1fs, pending data dropped", timeout_s)
        return False

    @property
    def is_shut_down(self) -> bool:
        return self._shutdown

    def activate(self) -> Telemetry:
        """Make this the Telemetry the module-level helpers (`atalaia.track_task` ...) use."""
        global _current
        with _current_lock:
            _current = self
        return self


def task_agent() -> str | None:
    task = current_task_context()
    return task.agent if task is not None else None


def _limit(variable: str, default: int) -> int:
    try:
        return int(os.environ.get(variable, "") or default)
    except ValueError:
        return default


def _span_limits() -> SpanLimits:
    """The SDK's limits, with a length cap on values (the SDK has none by default)."""
    return SpanLimits(
        max_attributes=_limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", _limits.ATTRIBUTE_COUNT),
        max_events=_limit("OTEL_SPAN_EVENT_COUNT_LIMIT", _limits.EVENT_COUNT),
        max_span_attribute_length=_limit(
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            _limit("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", _limits.ATTRIBUTE_LENGTH),
        ),
        max_event_attributes=_limits.ATTRIBUTE_COUNT,
        max_attribute_length=_limit("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", _limits.ATTRIBUTE_LENGTH),
    )


# The one module-level reference the library keeps: the Telemetry that module-level helpers
# (`atalaia.record_retry(...)`) use. It exists because those helpers take no Telemetry argument
# and OpenTelemetry's global providers cannot hold our instruments and settings.
_current: Telemetry | None = None
_current_lock = threading.Lock()


def forget(telemetry: Telemetry) -> None:
    global _current
    with _current_lock:
        if _current is telemetry:
            _current = None


def current() -> Telemetry:
    """The active Telemetry: the one `instrument()` built, else one bound to the global
    OpenTelemetry providers (no-op until configured)."""
    global _current
    tel = _current
    if tel is not None:
        return tel
    with _current_lock:
        if _current is None:
            _current = Telemetry.from_global()
        return _current


def replace_current(telemetry: Telemetry) -> Telemetry | None:
    """Make `telemetry` the active one; returns the one it replaces (for instrument())."""
    global _current
    with _current_lock:
        previous, _current = _current, telemetry
    return previous


def current_lock() -> threading.Lock:
    return _current_lock


def peek() -> Telemetry | None:
    return _current
