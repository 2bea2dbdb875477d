"""Telemetry: the providers of one process and every helper bound to them.

`atalaia.instrument()` builds one from the OTEL_* environment and makes it global; tests build
their own with in-memory readers and exporters (``Telemetry.setup(..., pipelines=...)``), so no
helper depends on OpenTelemetry's set-once global providers.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from atalaia import exporters, names, process_metrics
from atalaia.instruments import Instruments
from atalaia.logs import JsonLineFormatter, JsonStdoutHandler, OTelLogHandler, QuietInternals
from atalaia.prices import PriceFileError, PriceTable
from atalaia.resource import build_resource
from atalaia.tracking import (
    LLMCallHandle,
    LLMCallScope,
    TaskHandle,
    TaskScope,
    ToolHandle,
    ToolScope,
    Tracked,
    current_task,
    record_cost,
)
from atalaia.version import __version__

_log = logging.getLogger("atalaia")

ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = ("true", "1", "yes", "span_only", "span_and_event")
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0


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
        self._telemetry._internal_error(self._what, exc)
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


class Telemetry:
    """The providers, instruments and helpers of one process (or one test)."""

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
        self.prices = prices if prices is not None else PriceTable.defaults()
        self.resource = resource
        self.tracer = tracer_provider.get_tracer(names.SCOPE_NAME, __version__, names.SCHEMA_URL)
        self.meter = meter_provider.get_meter(names.SCOPE_NAME, __version__, names.SCHEMA_URL)
        self.instruments = Instruments.create(self.meter)
        self.config: Mapping[str, Any] = {}  # the instrument() arguments, for the idempotency check
        self._exporters: list[Any] = []
        self._handlers: list[logging.Handler] = []
        self._guards: dict[str, _Guard] = {}
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        self._db: dict[tuple[str, str | None], tuple[int, int]] = {}
        self._shutdown = False
        self._owns_providers = False

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
        log_level: int = logging.INFO,
        pipelines: exporters.Pipelines | None = None,
        install_logging: bool = True,
        process_metrics_enabled: bool = True,
        set_global: bool = False,
    ) -> Telemetry:
        """Build SDK providers. `pipelines` defaults to OTLP from the OTEL_* environment; tests
        pass in-memory ones. `set_global` makes them OpenTelemetry's global providers (so other
        instrumentations, e.g. the OpenAI one, use them too)."""
        resource = build_resource(
            service_name, agent_name=agent_name, environment=environment, extra=resource_attributes
        )
        pipes = pipelines if pipelines is not None else exporters.from_environment()
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        for span_processor in pipes.span_processors:
            tracer_provider.add_span_processor(span_processor)
        meter_provider = MeterProvider(
            metric_readers=pipes.metric_readers, resource=resource, shutdown_on_exit=False
        )
        logger_provider = LoggerProvider(
            resource=resource, shutdown_on_exit=False, meter_provider=meter_provider
        )
        for log_processor in pipes.log_processors:
            logger_provider.add_log_record_processor(log_processor)
        if prices is None:
            try:
                prices = PriceTable.load()
            except PriceFileError as exc:
                _log.error("%s; using the built-in price table", exc)
                prices = PriceTable.defaults()
        if capture_content is None:
            capture_content = capture_content_from_env()
        tel = cls(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
            service_name=str(resource.attributes.get(names.SERVICE_NAME, service_name)),
            agent_name=str(resource.attributes.get(names.AGENT_NAME, agent_name) or "") or None,
            capture_content=capture_content,
            prices=prices,
            resource=resource,
        )
        tel._owns_providers = True
        tel._exporters = list(pipes.exporters)
        if process_metrics_enabled:
            process_metrics.register(tel.meter)
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

    def _install_logging(self, *, json_logs: bool, log_level: int) -> None:
        root = logging.getLogger()
        handlers: list[logging.Handler] = [OTelLogHandler(self.logger_provider, self._task_attrs)]
        if json_logs:
            # From the resource, so OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES apply here too.
            resource = dict(self.resource.attributes) if self.resource else {}
            identity = {
                key: str(resource[key])
                for key in (names.SERVICE_NAME, names.AGENT_NAME)
                if resource.get(key)
            }
            json_handler = JsonStdoutHandler()
            json_handler.setFormatter(JsonLineFormatter(identity, self._task_attrs))
            json_handler.addFilter(QuietInternals())
            handlers.append(json_handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(log_level)
        self._handlers = handlers

    @staticmethod
    def _task_attrs() -> Mapping[str, Any]:
        task = current_task()
        return task.log_attributes() if task is not None else {}

    # --- internal error handling ------------------------------------------------------------
    def guard(self, what: str) -> _Guard:
        guard = self._guards.get(what)
        if guard is None:
            guard = self._guards.setdefault(what, _Guard(self, what))
        return guard

    def _internal_error(self, what: str, exc: Exception) -> None:
        with self._lock:
            first = what not in self._reported
            self._reported.add(what)
        if first:
            _log.warning(
                "atalaia: %s failed, telemetry may be incomplete: %r", what, exc, exc_info=exc
            )
        else:
            _log.debug("atalaia: %s failed again: %r", what, exc)

    def closed(
        self, value: Any, allowed: tuple[str, ...], attribute: str, fallback: str = names.OTHER
    ) -> str:
        """`value` if it is one of `allowed`, else `fallback` (one warning per value), so a typo
        or an exception message can never become a new metric label value."""
        text = str(value)
        if text in allowed:
            return text
        key = f"{attribute}={text}"
        with self._lock:
            first = key not in self._reported and len(self._reported) < 1000
            if first:
                self._reported.add(key)
        if first:
            _log.warning(
                "atalaia: %s=%r is not one of %s; using %r", attribute, text, allowed, fallback
            )
        return fallback

    def _attrs(self, agent: str | None, attrs: dict[str, Any]) -> dict[str, Any]:
        if agent is None:
            task = current_task()
            agent = task.agent if task is not None else None
        if agent:
            attrs[names.AGENT_NAME] = agent
        return attrs

    # --- helpers ----------------------------------------------------------------------------
    def track_task(
        self,
        kind: str = "task",
        *,
        task_id: str | None = None,
        department: str | None = None,
        conversation_id: str | None = None,
        agent: str | None = None,
        carrier: Mapping[str, str] | None = None,
    ) -> Tracked[TaskHandle]:
        return Tracked(
            lambda: TaskScope(self, kind, task_id, department, conversation_id, agent, carrier)
        )

    def track_llm_call(
        self,
        model: str,
        *,
        provider: str,
        operation: str = "chat",
        department: str | None = None,
        conversation_id: str | None = None,
        agent: str | None = None,
    ) -> Tracked[LLMCallHandle]:
        return Tracked(
            lambda: LLMCallScope(
                self, model, provider, operation, department, conversation_id, agent
            )
        )

    def track_tool(self, name: str, *, agent: str | None = None) -> Tracked[ToolHandle]:
        return Tracked(lambda: ToolScope(self, name, agent))

    def record_llm_cost(
        self,
        model: str,
        *,
        provider: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        response_model: str | None = None,
        department: str | None = None,
        agent: str | None = None,
    ) -> float:
        """Only the cost and cached-token counters of one LLM call, no span or GenAI histogram:
        for calls another instrumentation (e.g. the official OpenAI one) already traces.
        Returns the cost in USD (0 if it could not be recorded)."""
        with self.guard("record_llm_cost"):
            task = current_task()
            if task is not None:
                department = department or task.department
                agent = agent or task.agent
            return record_cost(
                self,
                provider=provider,
                model=model,
                response_model=response_model,
                input_tokens=max(int(input_tokens), 0),
                output_tokens=max(int(output_tokens), 0),
                cached_tokens=max(int(cached_tokens), 0),
                department=department,
                agent=agent,
            )
        return 0.0

    def record_retry(self, reason: str, *, agent: str | None = None) -> None:
        with self.guard("record_retry"):
            reason = self.closed(reason, names.RETRY_REASONS, names.RETRY_REASON)
            self.instruments.retries.add(1, self._attrs(agent, {names.RETRY_REASON: reason}))

    def record_timeout(self, reason: str, *, agent: str | None = None) -> None:
        with self.guard("record_timeout"):
            reason = self.closed(reason, names.TIMEOUT_REASONS, names.TIMEOUT_REASON)
            self.instruments.timeouts.add(1, self._attrs(agent, {names.TIMEOUT_REASON: reason}))

    def record_error(self, error_type: str, *, agent: str | None = None) -> None:
        with self.guard("record_error"):
            error_type = self.closed(error_type, names.ERROR_TYPES, names.ERROR_TYPE)
            self.instruments.errors.add(1, self._attrs(agent, {names.ERROR_TYPE: error_type}))

    def record_integration_error(self, name: str, *, agent: str | None = None) -> None:
        with self.guard("record_integration_error"):
            attrs = self._attrs(agent, {names.INTEGRATION_NAME: str(name)})
            self.instruments.integration_errors.add(1, attrs)

    def record_cache(self, hit: bool, *, agent: str | None = None) -> None:
        with self.guard("record_cache"):
            result = "hit" if hit else "miss"
            self.instruments.cache_requests.add(1, self._attrs(agent, {names.CACHE_RESULT: result}))

    def record_conversation(self, outcome: str, *, agent: str | None = None) -> None:
        with self.guard("record_conversation"):
            outcome = self.closed(outcome, names.CONVERSATION_OUTCOMES, names.CONVERSATION_OUTCOME)
            attrs = self._attrs(agent, {names.CONVERSATION_OUTCOME: outcome})
            self.instruments.conversations.add(1, attrs)

    def record_lead(self, *, agent: str | None = None) -> None:
        with self.guard("record_lead"):
            self.instruments.leads.add(1, self._attrs(agent, {}))

    def heartbeat(self, *, agent: str | None = None) -> None:
        """Set atalaia.agent.heartbeat.timestamp to now (Unix seconds)."""
        with self.guard("heartbeat"):
            self.instruments.heartbeat.set(time.time(), self._attrs(agent, {}))

    def set_db_connections(
        self, used: int, idle: int, pool: str, *, agent: str | None = None
    ) -> None:
        """Report the current size of a connection pool (absolute numbers; the up-down counter
        receives the change since the previous report)."""
        with self.guard("set_db_connections"):
            used, idle = max(int(used), 0), max(int(idle), 0)
            if agent is None and (task := current_task()) is not None:
                agent = task.agent
            with self._lock:
                prev_used, prev_idle = self._db.get((pool, agent), (0, 0))
                self._db[(pool, agent)] = (used, idle)
            for state, delta in (("used", used - prev_used), ("idle", idle - prev_idle)):
                attrs = self._attrs(agent, {names.DB_STATE: state, names.DB_POOL: pool})
                self.instruments.db_connections.add(delta, attrs)

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
        collector is unreachable (pending data is then dropped). Idempotent."""
        with self._lock:
            if self._shutdown:
                return True
            self._shutdown = True
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
        self._handlers = []
        _forget(self)
        if not self._owns_providers:
            return True
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
        _activate(self)
        return self


# The one module-level reference the library keeps: the Telemetry that module-level helpers
# (`atalaia.record_retry(...)`) use. It exists because those helpers take no Telemetry argument
# and OpenTelemetry's global providers cannot hold our instruments, price table and settings.
_current: Telemetry | None = None
_current_lock = threading.Lock()


def _activate(telemetry: Telemetry) -> None:
    global _current
    with _current_lock:
        _current = telemetry


def _forget(telemetry: Telemetry) -> None:
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


def instrument(
    service_name: str,
    *,
    agent_name: str | None = None,
    environment: str | None = None,
    capture_content: bool | None = None,
    prices: PriceTable | None = None,
    resource_attributes: dict[str, Any] | None = None,
    json_logs: bool = True,
    log_level: int = logging.INFO,
) -> Telemetry:
    """Set up traces, metrics and logs for this process, exported over OTLP as the OTEL_*
    environment says. Idempotent: a second call returns the first Telemetry (with a warning if
    its arguments differ)."""
    global _current
    config = {
        "service_name": service_name,
        "agent_name": agent_name,
        "environment": environment,
        "capture_content": capture_content,
        "prices": prices,
        "resource_attributes": resource_attributes,
        "json_logs": json_logs,
        "log_level": log_level,
    }
    with _current_lock:
        existing = _current
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
        _current = tel
    atexit.register(tel.shutdown)
    return tel
