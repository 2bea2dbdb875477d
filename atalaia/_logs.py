"""stdlib logging -> OTLP (with trace context) and -> one JSON line per record on stdout.

Both handlers read the active span from the OpenTelemetry context at the moment the record is
emitted, so a log line written inside ``track_task`` / ``track_llm_call`` carries that span's
trace_id and span_id, and the task's ``atalaia.task.id``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber

from atalaia import names

# Records of these loggers never go to OTLP: the SDK logs its own export failures, and sending
# those through the exporter that is failing would loop (and fill the queue it reports on).
_INTERNAL_PREFIXES = ("opentelemetry",)
# Nor records written on the export threads (the HTTP client's own debug lines, say): exporting
# them would make more of them.
_EXPORT_THREADS = ("atalaia-export", "atalaia-flush", "OtelBatch", "OtelPeriodic")
# A log message longer than this is cut (the queue is bounded in bytes all the same).
MAX_BODY = 64 * 1024
MAX_VALUE = 4096

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}

# Python level names as the catalogue lists them (INFO, WARNING, ERROR ...).
_SEVERITY = (
    (50, SeverityNumber.FATAL),
    (40, SeverityNumber.ERROR),
    (30, SeverityNumber.WARN),
    (20, SeverityNumber.INFO),
    (10, SeverityNumber.DEBUG),
)

_SEVERITY_OF: dict[int, SeverityNumber] = {}

# Returns the extra attributes of the task a record was written in (see tracking.py).
ContextAttributes = Callable[[], Mapping[str, Any]]


def severity_number(levelno: int) -> SeverityNumber:
    cached = _SEVERITY_OF.get(levelno)
    if cached is not None:
        return cached
    found = SeverityNumber.UNSPECIFIED
    for floor, number in _SEVERITY:
        if levelno >= floor:
            found = SeverityNumber(number.value + min(levelno - floor, 3))
            break
    if len(_SEVERITY_OF) < 256:
        _SEVERITY_OF[levelno] = found
    return found


def _qualified_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def _plain(value: Any) -> Any:
    """An OTLP-compatible attribute value (str, bool, int, float or a list of those), strings
    cut to MAX_VALUE characters."""
    if isinstance(value, str):
        return value[:MAX_VALUE]
    if isinstance(value, bool | int | float):
        return value
    primitive = str | bool | int | float
    if isinstance(value, list | tuple) and all(isinstance(v, primitive) for v in value):
        return [v[:MAX_VALUE] if isinstance(v, str) else v for v in value[:128]]
    return str(value)[:MAX_VALUE]


def record_attributes(record: logging.LogRecord, task: ContextAttributes) -> dict[str, Any]:
    """The attributes of one record: `extra=` fields, the task's ids, exception type."""
    attrs: dict[str, Any] = {
        k: _plain(v) for k, v in vars(record).items() if k not in _RESERVED and v is not None
    }
    for key, value in task().items():
        attrs.setdefault(key, value)
    attrs["code.function.name"] = record.funcName
    attrs["code.file.path"] = record.pathname
    attrs["code.line.number"] = record.lineno
    if record.exc_info and record.exc_info[0] is not None:
        exc_type, exc, _ = record.exc_info
        attrs.setdefault(names.ERROR_TYPE, _qualified_name(exc_type))
        attrs["exception.type"] = _qualified_name(exc_type)
        attrs["exception.message"] = str(exc)
        attrs["exception.stacktrace"] = logging.Formatter().formatException(record.exc_info)
    return attrs


class OTelLogHandler(logging.Handler):
    """Sends stdlib log records to an OpenTelemetry LoggerProvider (and so over OTLP)."""

    def __init__(self, provider: LoggerProvider, task: ContextAttributes, level: int = 0) -> None:
        super().__init__(level)
        self._provider = provider
        self._task = task
        self._loggers: dict[str, Any] = {}  # by logger name: one lookup per name, not per record

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_INTERNAL_PREFIXES) or (record.threadName or "").startswith(
            _EXPORT_THREADS
        ):
            return
        try:
            logger = self._loggers.get(record.name)
            if logger is None:
                logger = self._provider.get_logger(record.name)
                if len(self._loggers) < 1000:
                    self._loggers[record.name] = logger
            logger.emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                context=otel_context.get_current(),
                severity_number=severity_number(record.levelno),
                severity_text=record.levelname,
                body=record.getMessage()[:MAX_BODY],
                attributes=record_attributes(record, self._task),
            )
        except Exception:
            self.handleError(record)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, trace_id, span_id, identity,
    the task's ids and any `extra=` fields."""

    def __init__(self, identity: Mapping[str, str], task: ContextAttributes) -> None:
        super().__init__()
        self._identity = dict(identity)
        self._task = task

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = trace.format_trace_id(span.trace_id)
            line["span_id"] = trace.format_span_id(span.span_id)
        line.update(self._identity)
        line.update(self._task())
        for key, value in vars(record).items():
            if key not in _RESERVED and value is not None:
                line[key] = _plain(value)
        if record.exc_info and record.exc_info[0] is not None:
            line.setdefault(names.ERROR_TYPE, _qualified_name(record.exc_info[0]))
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class JsonStdoutHandler(logging.Handler):
    """Writes each formatted record as one line to the *current* sys.stdout (looked up at each
    record, so redirections made after setup, e.g. by test runners, are honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class StderrHandler(logging.Handler):
    """Writes each formatted record to the *current* sys.stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class QuietInternals(logging.Filter):
    """Lets through at most one record per message template every `window_s` seconds from the
    OpenTelemetry SDK's own loggers: with the collector down, the exporters report every failed
    batch and the processors every dropped item, which would otherwise flood stdout."""

    def __init__(self, window_s: float = 30.0, *, per_message: bool = True) -> None:
        super().__init__()
        self._window_s = window_s
        self._per_message = per_message
        self._last: dict[tuple[str, object], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_INTERNAL_PREFIXES):
            return True
        key = (record.name, record.msg) if self._per_message else ("", "")
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self._window_s) < self._window_s:
                return False
            if len(self._last) > 1000:  # message templates are few; this only bounds memory
                self._last.clear()
            self._last[key] = now
        return True


def throttle_sdk_logs() -> tuple[logging.Logger, logging.Handler] | None:
    """The OpenTelemetry SDK's own complaints (an unreachable collector: one per failed batch and
    retry, per signal) to stderr, one line every 30 s at most, instead of through the app's handlers
    or Python's last-resort handler, unthrottled. Left alone if the app set up the
    ``opentelemetry`` logger itself."""
    logger = logging.getLogger("opentelemetry")
    for old in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(old)  # a previous Telemetry's, left while its exports gave up
        logger.propagate = True
    if logger.handlers or not logger.propagate:
        return None
    handler = StderrHandler()
    handler.setFormatter(
        logging.Formatter(
            "%(levelname)s %(name)s: %(message)s "
            "(atalaia: further OpenTelemetry SDK messages are held back for 30 s)"
        )
    )
    handler.addFilter(QuietInternals(per_message=False))
    logger.propagate = False
    return logger, handler


def restore_sdk_logs(logger: logging.Logger) -> None:
    if logger.name == "opentelemetry":
        logger.propagate = True
