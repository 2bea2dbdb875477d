"""track_task / track_llm_call / track_tool: spans around a block of agent code.

Each helper returns a `Tracked`, usable as ``with``, ``async with`` and as a decorator of sync or
async functions (inside a decorated function `current_task()` / `current_llm_call()` give the
handle). The library's own failures are logged, never raised; exceptions of the wrapped code
propagate unchanged.

`track_llm_call` is for clients that no instrumentation covers: `instrument()` turns on the
OpenTelemetry GenAI instrumentations of the installed OpenAI, Anthropic ... clients, and when
such an instrumented call runs inside a `track_llm_call` block, the block steps aside (its span
loses its GenAI attributes and name) so that the call is one GenAI span, not two.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from atalaia import _genai, _limits, names
from atalaia._context import LLM_CALL_KEY, TASK_KEY
from atalaia._telemetry import Telemetry, current

H = TypeVar("H")
H_co = TypeVar("H_co", covariant=True)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def current_task() -> TaskHandle | None:
    """The handle of the innermost ``track_task`` block running here, if any."""
    value = otel_context.get_value(TASK_KEY)
    return value if isinstance(value, TaskHandle) else None


def current_llm_call() -> LLMCallHandle | None:
    """The handle of the innermost ``track_llm_call`` block running here, if any (e.g. inside
    a function decorated with ``@track_llm_call``)."""
    value = otel_context.get_value(LLM_CALL_KEY)
    return value if isinstance(value, LLMCallHandle) else None


def is_timeout(exc: BaseException) -> bool:
    """TimeoutError and the clients' own timeout classes (openai.APITimeoutError,
    httpx.TimeoutException ...), which are not TimeoutError subclasses."""
    if isinstance(exc, TimeoutError):
        return True
    return any("Timeout" in cls.__name__ for cls in type(exc).__mro__)


class _Scope(Protocol[H_co]):
    def enter(self) -> H_co: ...

    def exit(self, exc: BaseException | None) -> None: ...


class Tracked(Generic[H]):
    """A reusable context manager (sync and async) and decorator around `open_scope`.

    Every ``with`` / call opens a fresh scope. Entering the *same* object concurrently from several
    tasks is not supported (each ``with track_task(...)`` expression makes its own object anyway).
    """

    def __init__(self, open_scope: Callable[[], _Scope[H]]) -> None:
        self._open = open_scope
        self._scopes: list[_Scope[H]] = []

    def __enter__(self) -> H:
        scope = self._open()
        self._scopes.append(scope)
        return scope.enter()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._scopes:
            self._scopes.pop().exit(exc)

    async def __aenter__(self) -> H:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        open_scope = self._open
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with Tracked(open_scope):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Tracked(open_scope):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _set(span: Span, key: str, value: Any) -> None:
    if value is not None:
        span.set_attribute(key, value)


class _Handle:
    """What all handles share: the span, extra attributes, an error type without an exception."""

    def __init__(self, telemetry: Telemetry, span: Span) -> None:
        self._telemetry = telemetry
        self._span = span
        self.error_type: str | None = None

    @property
    def span(self) -> Span:
        return self._span

    @property
    def trace_id(self) -> str | None:
        """Hex trace id of this block's span (None when tracing is off)."""
        ctx = self._span.get_span_context()
        return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None

    def set_attribute(self, key: str, value: Any) -> None:
        """Add an attribute to the span (not to metrics: spans may carry high-cardinality ids)."""
        with self._telemetry.guard("set_attribute"):
            self._span.set_attribute(key, value)

    def set_error(self, error_type: str) -> None:
        """Mark the block failed without raising (e.g. an error result returned as a value)."""
        self.error_type = str(error_type)[: _limits.LABEL_LENGTH]


class TaskHandle(_Handle):
    """Yielded by ``track_task``. ``outcome`` is success unless set, or failure / timeout when
    the block raises (a timeout exception -> timeout)."""

    def __init__(
        self,
        telemetry: Telemetry,
        span: Span,
        *,
        kind: str,
        task_id: str | None,
        department: str | None,
        conversation_id: str | None,
        agent: str | None,
    ) -> None:
        super().__init__(telemetry, span)
        self.kind = kind
        self.task_id = task_id
        self.department = department
        self.conversation_id = conversation_id
        self.agent = agent  # only when given explicitly
        self.default_agent = telemetry.agent_name
        self._outcome: str | None = None

    @property
    def outcome(self) -> str:
        return self._outcome or ("failure" if self.error_type else "success")

    @outcome.setter
    def outcome(self, value: str) -> None:
        """success | failure | timeout; anything else is logged and ignored."""
        self._outcome = self._telemetry.closed(
            value, names.TASK_OUTCOMES, names.TASK_OUTCOME, fallback=self.outcome
        )

    def set_error(self, error_type: str) -> None:
        super().set_error(error_type)
        if self._outcome in (None, "success"):
            self._outcome = "failure"

    def log_attributes(self) -> dict[str, str]:
        attrs = {names.TASK_ID: self.task_id} if self.task_id else {}
        if self.agent:
            attrs[names.AGENT_NAME] = self.agent
        return attrs


def _text(value: str | None) -> str | None:
    """An identity value for spans: cut to the attribute length bound."""
    return None if value is None else str(value)[: _limits.ATTRIBUTE_LENGTH]


class TaskScope:
    def __init__(
        self,
        telemetry: Telemetry,
        kind: str,
        task_id: str | None,
        department: str | None,
        conversation_id: str | None,
        agent: str | None,
        carrier: Mapping[str, str] | None,
    ) -> None:
        self._t = telemetry
        self._args = (kind, task_id, department, conversation_id, agent, carrier)
        self._handle: TaskHandle | None = None
        self._token: object = None

    def enter(self) -> TaskHandle:
        kind, task_id, department, conversation_id, agent, carrier = self._args
        span: Span = trace.INVALID_SPAN
        parent_ctx: otel_context.Context | None = None
        with self._t.guard("track_task"):
            kind, task_id = str(kind)[: _limits.LABEL_LENGTH], _text(task_id)
            department, conversation_id = _text(department), _text(conversation_id)
            agent = _text(agent)
            parent = current_task()
            if parent is not None:  # a sub-task inherits what it was not told
                department = department or parent.department
                conversation_id = conversation_id or parent.conversation_id
                agent = agent or parent.agent
            name_agent = agent or self._t.agent_name
            # The carrier continues the caller's trace, unless a span is already active here
            # (e.g. a web framework's instrumentation extracted the same headers first).
            remote = bool(carrier) and not trace.get_current_span().get_span_context().is_valid
            parent_ctx = propagate.extract(carrier) if remote and carrier else None
            span = self._t.tracer.start_span(
                f"invoke_agent {name_agent}" if name_agent else "invoke_agent",
                context=parent_ctx,
                kind=SpanKind.SERVER if remote else SpanKind.INTERNAL,
            )
            span.set_attribute(names.OPERATION, "invoke_agent")
            span.set_attribute(names.TASK_KIND, kind)
            _set(span, names.AGENT_NAME, name_agent)
            _set(span, names.TASK_ID, task_id)
            _set(span, names.DEPARTMENT, department)
            _set(span, names.CONVERSATION_ID, conversation_id)
        self._handle = TaskHandle(
            self._t,
            span,
            kind=kind,
            task_id=task_id,
            department=department,
            conversation_id=conversation_id,
            agent=agent,
        )
        with self._t.guard("track_task"):
            ctx = trace.set_span_in_context(span, parent_ctx)
            self._token = otel_context.attach(otel_context.set_value(TASK_KEY, self._handle, ctx))
        return self._handle

    def exit(self, exc: BaseException | None) -> None:
        handle = self._handle
        if handle is None:
            return
        with self._t.guard("track_task"):
            if exc is not None:
                handle.error_type = handle.error_type or _genai.error_type_of(exc)
                if handle._outcome in (None, "success"):
                    handle._outcome = "timeout" if is_timeout(exc) else "failure"
            outcome = handle.outcome
            span = handle.span
            span.set_attribute(names.TASK_OUTCOME, outcome)
            if outcome != "success":
                span.set_attribute(names.ERROR_TYPE, handle.error_type or outcome)
                span.set_status(Status(StatusCode.ERROR))
            if exc is not None:
                span.record_exception(exc)
        with self._t.guard("track_task"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        with self._t.guard("track_task"):
            handle.span.end()


class LLMCallHandle(_Handle):
    """Yielded by ``track_llm_call``: report what the model said it used."""

    def __init__(
        self,
        telemetry: Telemetry,
        span: Span,
        *,
        model: str,
        provider: str,
        operation: str,
        department: str | None,
        agent: str | None,
    ) -> None:
        super().__init__(telemetry, span)
        self.model = model
        self.provider = provider
        self.operation = operation
        self.department = department
        self.agent = agent
        self.response_model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cached_tokens = 0
        self.cost_usd: float | None = None
        # An instrumentation traced the call made inside this block: it is the GenAI span.
        self.delegated = False

    def delegate(self) -> None:
        self.delegated = True

    @property
    def capture_content(self) -> bool:
        return self._telemetry.capture_content

    def record_usage(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        response_model: str | None = None,
    ) -> None:
        """Tokens of this call; ``input_tokens`` includes ``cached_tokens`` (OpenAI's
        ``prompt_tokens`` does). A later call replaces an earlier one. Negative or absurd counts
        are refused (one warning)."""
        with self._telemetry.guard("record_usage"):
            warnings = self._telemetry.warnings
            inp = _limits.tokens(input_tokens, warnings, "input token count")
            out = _limits.tokens(output_tokens, warnings, "output token count")
            cached = _limits.tokens(cached_tokens, warnings, "cached token count")
            if inp is None or out is None:
                return
            self.input_tokens, self.output_tokens = inp, out
            self.cached_tokens = min(cached or 0, inp)
            if response_model:
                self.response_model = str(response_model)[: _limits.LABEL_LENGTH]

    def record_response(self, response: Any) -> None:
        """Model, id, finish reasons and usage of an OpenAI ChatCompletion (or its dict form),
        an OpenAI Responses or Anthropic Message; output messages too when content capture is on.
        A stream is not a response: pass it through `wrap_stream` instead (warned once)."""
        with self._telemetry.guard("record_response"):
            if _genai.is_stream(response):
                self._telemetry.warnings.once(
                    "record_response-stream",
                    "record_response() was given a stream, which holds no usage yet: iterate "
                    "`call.wrap_stream(stream)` instead (docs/library.md)",
                )
                return
            model, response_id, reasons = _genai.response_fields(response)
            usage = _genai.usage_of(response)
            if usage is not None:
                self.record_usage(
                    usage.input_tokens, usage.output_tokens, usage.cached_tokens, model
                )
            elif model:
                self.response_model = model
            _set(self._span, names.RESPONSE_ID, response_id)
            if reasons:
                self._span.set_attribute(names.FINISH_REASONS, reasons)
            if self.capture_content:
                _set(self._span, names.OUTPUT_MESSAGES, _genai.output_messages(response))

    def _chunk(self, chunk: Any, acc: _genai.StreamUsage) -> None:
        with self._telemetry.guard("wrap_stream"):
            acc.add(chunk)

    def _stream_done(self, acc: _genai.StreamUsage) -> None:
        with self._telemetry.guard("wrap_stream"):
            if acc.model:
                self.response_model = acc.model
            if acc.usage is not None:
                u = acc.usage
                self.record_usage(u.input_tokens, u.output_tokens, u.cached_tokens, acc.model)
            _set(self._span, names.RESPONSE_ID, acc.response_id)
            if acc.finish_reasons:
                self._span.set_attribute(names.FINISH_REASONS, acc.finish_reasons)

    def wrap_stream(self, stream: Any) -> Any:
        """Iterate the returned stream instead of `stream` (sync or async): each chunk passes
        through unchanged, and the usage of the final chunk (OpenAI with
        ``stream_options={"include_usage": True}``, Anthropic's message events) is recorded."""
        acc = _genai.StreamUsage()
        if hasattr(stream, "__aiter__"):
            return self._async_stream(stream, acc)
        return self._sync_stream(stream, acc)

    def _sync_stream(self, stream: Any, acc: _genai.StreamUsage) -> Iterator[Any]:
        try:
            for chunk in stream:
                self._chunk(chunk, acc)
                yield chunk
        finally:
            self._stream_done(acc)

    async def _async_stream(self, stream: Any, acc: _genai.StreamUsage) -> AsyncIterator[Any]:
        try:
            async for chunk in stream:
                self._chunk(chunk, acc)
                yield chunk
        finally:
            self._stream_done(acc)

    def record_input_messages(self, messages: Any) -> None:
        """The prompt (OpenAI-style messages); kept only when content capture is on."""
        if self.capture_content:
            with self._telemetry.guard("record_input_messages"):
                self._span.set_attribute(names.INPUT_MESSAGES, _genai.input_messages(messages))

    def record_output_messages(self, messages: Any) -> None:
        """The completion (OpenAI-style messages); kept only when content capture is on."""
        if self.capture_content:
            with self._telemetry.guard("record_output_messages"):
                self._span.set_attribute(names.OUTPUT_MESSAGES, _genai.input_messages(messages))


class LLMCallScope:
    def __init__(
        self,
        telemetry: Telemetry,
        model: str,
        provider: str,
        operation: str,
        department: str | None,
        conversation_id: str | None,
        agent: str | None,
    ) -> None:
        self._t = telemetry
        self._args = (model, provider, operation, department, conversation_id, agent)
        self._handle: LLMCallHandle | None = None
        self._token: object = None
        self._conversation: str | None = None

    def enter(self) -> LLMCallHandle:
        model, provider, operation, department, conversation_id, agent = self._args
        span: Span = trace.INVALID_SPAN
        with self._t.guard("track_llm_call"):
            model, provider = str(model)[: _limits.LABEL_LENGTH], str(provider)[:64]
            operation = str(operation)[:64]
            task = current_task()
            if task is not None:
                department = department or task.department
                conversation_id = conversation_id or task.conversation_id
                agent = agent or task.agent
            self._conversation = _text(conversation_id)
            # The GenAI attributes are set at the end, once it is known whether an
            # instrumentation traced the same call (then this span steps aside).
            span = self._t.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT)
        self._handle = LLMCallHandle(
            self._t,
            span,
            model=model,
            provider=provider,
            operation=operation,
            department=_text(department),
            agent=_text(agent),
        )
        with self._t.guard("track_llm_call"):
            ctx = otel_context.set_value(
                LLM_CALL_KEY, self._handle, trace.set_span_in_context(span)
            )
            self._token = otel_context.attach(ctx)
        return self._handle

    def exit(self, exc: BaseException | None) -> None:
        h = self._handle
        if h is None:
            return
        with self._t.guard("track_llm_call"):
            span = h.span
            if exc is not None:
                h.error_type = h.error_type or _genai.error_type_of(exc)
                span.record_exception(exc)
            if h.error_type:
                span.set_attribute(names.ERROR_TYPE, h.error_type)
                span.set_status(Status(StatusCode.ERROR))
            if h.input_tokens is not None and h.output_tokens is not None:
                priced = h.response_model or h.model
                if h.response_model and self._t.prices.lookup(h.response_model) is None:
                    priced = h.model  # an unknown dated id: the requested family's price
                h.cost_usd = self._t.prices.cost(
                    priced, h.input_tokens, h.output_tokens, h.cached_tokens
                )
            if h.delegated:
                # The instrumented span inside is the call; this one is only a wrapper now.
                span.update_name(f"atalaia.llm_call {h.model}")
                span.set_attribute("atalaia.llm_call.delegated", True)
            else:
                span.set_attribute(names.OPERATION, h.operation)
                span.set_attribute(names.PROVIDER, h.provider)
                span.set_attribute(names.REQUEST_MODEL, h.model)
                _set(span, names.CONVERSATION_ID, self._conversation)
                _set(span, names.AGENT_NAME, h.agent)
                _set(span, names.DEPARTMENT, h.department)
                _set(span, names.RESPONSE_MODEL, h.response_model)
                if h.input_tokens is not None and h.output_tokens is not None:
                    span.set_attribute(names.INPUT_TOKENS, h.input_tokens)
                    span.set_attribute(names.OUTPUT_TOKENS, h.output_tokens)
                    if h.cached_tokens:
                        span.set_attribute(names.CACHE_READ_TOKENS, h.cached_tokens)
                    _set(span, names.SPAN_COST, h.cost_usd)
        with self._t.guard("track_llm_call"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        with self._t.guard("track_llm_call"):
            h.span.end()


class ToolHandle(_Handle):
    """Yielded by ``track_tool``."""

    def __init__(self, telemetry: Telemetry, span: Span, name: str) -> None:
        super().__init__(telemetry, span)
        self.name = name


class ToolScope:
    def __init__(self, telemetry: Telemetry, name: str, agent: str | None) -> None:
        self._t = telemetry
        self._name = str(name)[: _limits.LABEL_LENGTH]
        self._agent = _text(agent)
        self._handle: ToolHandle | None = None
        self._token: object = None

    def enter(self) -> ToolHandle:
        span: Span = trace.INVALID_SPAN
        with self._t.guard("track_tool"):
            task = current_task()
            agent = self._agent or (task.agent if task else None)
            span = self._t.tracer.start_span(f"execute_tool {self._name}", kind=SpanKind.INTERNAL)
            span.set_attribute(names.OPERATION, "execute_tool")
            span.set_attribute(names.TOOL_NAME, self._name)
            _set(span, names.AGENT_NAME, agent)
        self._handle = ToolHandle(self._t, span, self._name)
        with self._t.guard("track_tool"):
            self._token = otel_context.attach(trace.set_span_in_context(span))
        return self._handle

    def exit(self, exc: BaseException | None) -> None:
        h = self._handle
        if h is None:
            return
        with self._t.guard("track_tool"):
            if exc is not None:
                h.error_type = h.error_type or _genai.error_type_of(exc)
                h.span.record_exception(exc)
            if h.error_type:
                h.span.set_attribute(names.ERROR_TYPE, h.error_type)
                h.span.set_status(Status(StatusCode.ERROR))
        with self._t.guard("track_tool"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        with self._t.guard("track_tool"):
            h.span.end()


# --- the public helpers ------------------------------------------------------------------------
# The Telemetry is looked up at each use, not when the helper is called: a function decorated at
# import time, before instrument() runs, still reports through the Telemetry instrument() builds.


def track_task(
    kind: str = "task",
    *,
    task_id: str | None = None,
    department: str | None = None,
    conversation_id: str | None = None,
    agent: str | None = None,
    carrier: Mapping[str, str] | None = None,
) -> Tracked[TaskHandle]:
    """Span ``invoke_agent {agent}``: the collector derives the task series from it. `carrier`:
    the headers of the request that brought the task (W3C traceparent), to continue its trace."""
    return Tracked(
        lambda: TaskScope(current(), kind, task_id, department, conversation_id, agent, carrier)
    )


def track_llm_call(
    model: str,
    *,
    provider: str,
    operation: str = "chat",
    department: str | None = None,
    conversation_id: str | None = None,
    agent: str | None = None,
) -> Tracked[LLMCallHandle]:
    """Span ``{operation} {model}`` (CLIENT) for a client no instrumentation covers, with tokens
    and cost; steps aside for an instrumented call made inside it."""
    return Tracked(
        lambda: LLMCallScope(
            current(), model, provider, operation, department, conversation_id, agent
        )
    )


def track_tool(name: str, *, agent: str | None = None) -> Tracked[ToolHandle]:
    """Span ``execute_tool {name}``."""
    return Tracked(lambda: ToolScope(current(), name, agent))


def propagation_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the W3C trace context of the current span, for an outgoing request whose
    receiver passes them to ``track_task(carrier=...)``."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier
