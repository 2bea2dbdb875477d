"""What happens to a span or log record between the code that makes it and the exporter.

- `ContextSpanProcessor` (on the caller's thread, at span start): spans started inside
  ``track_task`` get the task's agent, department and conversation, whoever made them (an
  OpenAI or Anthropic instrumentation, an HTTP client's); an instrumented LLM call inside
  ``track_llm_call`` makes that wrapper step aside, so the call is one GenAI span.
- `BoundedBatchProcessor` (spans and log records): a queue bounded in items *and* bytes,
  exported in batches by one background thread; when full, the oldest items are dropped.
- `PricingSpanExporter` (on that background thread): LLM call spans that carry tokens but no
  cost get ``atalaia.llm.cost.usd`` from the price table, whoever made them.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from atalaia import names
from atalaia._context import LLM_CALL_KEY, TASK_KEY
from atalaia._limits import Warnings

_log = logging.getLogger("atalaia")

T = TypeVar("T")

# The GenAI instrumentations' spelling of cache writes (semconv later named them cache_creation).
_CACHE_WRITE_TOKENS = "gen_ai.usage.cache_write.input_tokens"
CALL_OPERATIONS = frozenset(("chat", "text_completion", "generate_content", "embeddings"))
DEFAULT_MAX_ITEMS = 2048
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_BATCH = 512
DEFAULT_DELAY_S = 5.0


class ContextSpanProcessor(SpanProcessor):
    """Puts the current task's identity on spans other code starts inside it."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        task = otel_context.get_value(TASK_KEY, parent_context)
        call = otel_context.get_value(LLM_CALL_KEY, parent_context)
        if task is None and call is None:
            return
        attrs = span.attributes or {}
        operation = attrs.get(names.OPERATION)
        if call is not None and operation in CALL_OPERATIONS:
            call.delegate()  # type: ignore[attr-defined]
        if task is None or names.TASK_KIND in attrs:
            return
        agent = task.agent or task.default_agent  # type: ignore[attr-defined]
        if agent and names.AGENT_NAME not in attrs:
            span.set_attribute(names.AGENT_NAME, agent)
        if task.department and names.DEPARTMENT not in attrs:  # type: ignore[attr-defined]
            span.set_attribute(names.DEPARTMENT, task.department)  # type: ignore[attr-defined]
        conversation = task.conversation_id  # type: ignore[attr-defined]
        if conversation and operation is not None and names.CONVERSATION_ID not in attrs:
            span.set_attribute(names.CONVERSATION_ID, conversation)


def _span_bytes(span: ReadableSpan) -> int:
    """A cheap estimate of what a span holds: its strings, plus a fixed overhead."""
    size = 256 + len(span.name)
    for key, value in (span.attributes or {}).items():
        size += len(key) + (len(value) if isinstance(value, str) else 16)
    for event in span.events:
        size += 64 + len(event.name)
        for key, value in (event.attributes or {}).items():
            size += len(key) + (len(value) if isinstance(value, str) else 16)
    return size


def _log_bytes(record: Any) -> int:
    log_record = record.log_record
    body = log_record.body
    size = 256 + (len(body) if isinstance(body, str) else 64)
    attributes = log_record.attributes
    if attributes:
        values = getattr(attributes, "_dict", attributes)  # BoundedAttributes: skip its lock
        size += sum(len(v) if type(v) is str else 16 for v in values.values())
        size += 32 * len(values)
    return size


class _Exporter(Generic[T]):
    """What BoundedBatchProcessor needs of an exporter (spans or logs alike)."""

    def export(self, batch: Sequence[T]) -> Any: ...

    def shutdown(self) -> Any: ...


_processors: weakref.WeakSet[BoundedBatchProcessor[Any]] = weakref.WeakSet()


def _after_fork() -> None:
    for processor in list(_processors):
        processor._reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class BoundedBatchProcessor(Generic[T]):
    """A batching processor whose queue is bounded in items and in bytes.

    The SDK's batch processors bound their queue by count only: 2048 spans of 200 kB ids are
    400 MB held while the collector is away. Here an item that does not fit pushes the oldest
    out (counted, and warned about once). Exports run on one daemon thread; `force_flush` and
    `shutdown` wait at most their timeout.
    """

    def __init__(
        self,
        exporter: Any,
        size_of: Callable[[T], int],
        *,
        what: str,
        warnings: Warnings,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        batch_size: int = DEFAULT_BATCH,
        delay_s: float = DEFAULT_DELAY_S,
    ) -> None:
        self._exporter = exporter
        self._size_of = size_of
        self._what = what
        self._warnings = warnings
        self.max_items = max(int(max_items), 1)
        self.max_bytes = max(int(max_bytes), 1024)
        self._batch_size = max(min(int(batch_size), self.max_items), 1)
        self._delay_s = delay_s
        self._queue: collections.deque[tuple[T, int]] = collections.deque()
        self.queued_bytes = 0
        self.dropped = 0
        self._shutdown = False
        self._exporting = threading.Lock()
        _processors.add(self)
        self._reinit()

    def _reinit(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue.clear()
        self.queued_bytes = 0
        self._exporting = threading.Lock()
        self._worker = threading.Thread(
            target=self._run, name=f"atalaia-export-{self._what}", daemon=True
        )
        self._worker.start()

    # --- the caller's side ----------------------------------------------------------------
    def add(self, item: T) -> None:
        if self._shutdown:
            return
        size = self._size_of(item)
        dropped = 0
        with self._lock:
            queue = self._queue
            while queue and (
                len(queue) >= self.max_items or self.queued_bytes + size > self.max_bytes
            ):
                _, old = queue.popleft()
                self.queued_bytes -= old
                dropped += 1
            if size > self.max_bytes:
                dropped += 1
            else:
                queue.append((item, size))
                self.queued_bytes += size
            if len(queue) >= self._batch_size:
                self._wake.notify()
        if dropped:
            self.dropped += dropped
            self._warnings.once(
                f"queue-full:{self._what}",
                "the %s export queue is full (%d items or %d bytes): dropping the oldest; "
                "is the collector reachable?",
                self._what,
                self.max_items,
                self.max_bytes,
            )

    # --- the worker ----------------------------------------------------------------------
    def _take(self) -> list[T]:
        with self._lock:
            n = min(len(self._queue), self._batch_size)
            batch = [self._queue.popleft() for _ in range(n)]
            self.queued_bytes -= sum(size for _, size in batch)
        return [item for item, _ in batch]

    def _export(self, batch: list[T]) -> None:
        if not batch:
            return
        try:
            self._exporter.export(batch)
        except Exception as exc:  # an exporter must not kill the worker
            self._warnings.once(f"export:{self._what}", "exporting %s failed: %r", self._what, exc)

    def _run(self) -> None:
        while not self._shutdown:
            with self._lock:
                if len(self._queue) < self._batch_size and not self._shutdown:
                    self._wake.wait(self._delay_s)
            with self._exporting:
                self._export(self._take())

    # --- lifecycle ----------------------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        while self._queue and time.monotonic() < deadline:
            if not self._exporting.acquire(timeout=max(deadline - time.monotonic(), 0)):
                return False
            try:
                self._export(self._take())
            finally:
                self._exporting.release()
        return not self._queue

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        if self._shutdown:
            return
        self.force_flush(timeout_millis)
        self._shutdown = True
        with self._lock:
            self._wake.notify_all()
        self._exporter.shutdown()


class BoundedSpanProcessor(SpanProcessor):
    """The span side of BoundedBatchProcessor."""

    def __init__(self, batcher: BoundedBatchProcessor[ReadableSpan]) -> None:
        self.batcher = batcher

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.batcher.add(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.batcher.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.batcher.shutdown(_shutdown_millis())


class BoundedLogProcessor:
    """The log side of BoundedBatchProcessor (a LogRecordProcessor)."""

    def __init__(self, batcher: BoundedBatchProcessor[Any]) -> None:
        self.batcher = batcher

    def on_emit(self, log_record: Any) -> None:
        self.batcher.add(log_record)

    def enabled(self, **_: Any) -> bool:
        return True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.batcher.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.batcher.shutdown(_shutdown_millis())


_SHUTDOWN_MILLIS = [2000]


def _shutdown_millis() -> int:
    return _SHUTDOWN_MILLIS[0]


def span_batcher(exporter: Any, warnings: Warnings, **limits: Any) -> BoundedSpanProcessor:
    return BoundedSpanProcessor(
        BoundedBatchProcessor(exporter, _span_bytes, what="span", warnings=warnings, **limits)
    )


def log_batcher(exporter: Any, warnings: Warnings, **limits: Any) -> BoundedLogProcessor:
    return BoundedLogProcessor(
        BoundedBatchProcessor(exporter, _log_bytes, what="log", warnings=warnings, **limits)
    )


class PricingSpanExporter(SpanExporter):
    """Adds ``atalaia.llm.cost.usd`` to LLM call spans that have tokens and no cost, on the
    export thread (never on the caller's), then hands the spans on."""

    def __init__(
        self, inner: SpanExporter, price: Callable[[str, int, int, int, int], float]
    ) -> None:
        self._inner = inner
        self._price = price

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([self._priced(span) for span in spans])

    def _priced(self, span: ReadableSpan) -> ReadableSpan:
        attrs = span.attributes
        if not attrs or names.SPAN_COST in attrs:
            return span
        if attrs.get(names.OPERATION) not in CALL_OPERATIONS:
            return span
        inp, out = attrs.get(names.INPUT_TOKENS), attrs.get(names.OUTPUT_TOKENS)
        if not isinstance(inp, int) or not isinstance(out, int):
            return span
        model = attrs.get(names.RESPONSE_MODEL) or attrs.get(names.REQUEST_MODEL)
        if not isinstance(model, str):
            return span
        cached = attrs.get(names.CACHE_READ_TOKENS)
        written = attrs.get(names.CACHE_CREATION_TOKENS, attrs.get(_CACHE_WRITE_TOKENS))
        try:
            cost = self._price(
                model,
                inp,
                out,
                cached if isinstance(cached, int) else 0,
                written if isinstance(written, int) else 0,
            )
        except Exception:
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes={**attrs, names.SPAN_COST: cost},
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)
