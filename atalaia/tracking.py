"""track_task / track_llm_call / track_tool: spans and metrics around a block of agent code.

Each helper returns a `Tracked`, usable as ``with``, ``async with`` and as a decorator of sync or
async functions. The library's own failures are logged, never raised; exceptions of the wrapped
code propagate unchanged.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from atalaia import genai, names

if TYPE_CHECKING:
    from atalaia.telemetry import Telemetry

H = TypeVar("H")
H_co = TypeVar("H_co", covariant=True)
F = TypeVar("F", bound=Callable[..., Any])

# The TaskHandle of the innermost track_task lives in the OpenTelemetry context (not in a global
# of ours), so nested helpers and log records inherit its department, conversation and agent.
TASK_KEY = otel_context.create_key("atalaia.task")


def current_task() -> TaskHandle | None:
    """The handle of the innermost ``track_task`` block running here, if any."""
    value = otel_context.get_value(TASK_KEY)
    return value if isinstance(value, TaskHandle) else None


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
        self.error_type = str(error_type)


class TaskHandle(_Handle):
    """Yielded by ``track_task``. ``outcome`` is success unless set, or failure / timeout when
    the block raises (TimeoutError -> timeout)."""

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
        self.agent = agent  # only when given explicitly: then it is a metric attribute too
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
        self._start = 0.0

    def enter(self) -> TaskHandle:
        kind, task_id, department, conversation_id, agent, carrier = self._args
        span: Span = trace.INVALID_SPAN
        parent_ctx: otel_context.Context | None = None
        with self._t.guard("track_task"):
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
        self._start = time.perf_counter()
        return self._handle

    def exit(self, exc: BaseException | None) -> None:
        duration = time.perf_counter() - self._start
        handle = self._handle
        if handle is None:
            return
        with self._t.guard("track_task"):
            if exc is not None:
                handle.error_type = handle.error_type or genai.error_type_of(exc)
                if handle._outcome in (None, "success"):
                    handle._outcome = "timeout" if isinstance(exc, TimeoutError) else "failure"
            outcome = handle.outcome
            span = handle.span
            span.set_attribute(names.TASK_OUTCOME, outcome)
            if outcome != "success":
                span.set_attribute(names.ERROR_TYPE, handle.error_type or outcome)
                span.set_status(Status(StatusCode.ERROR))
            if exc is not None:
                span.record_exception(exc)
            attrs = {names.TASK_OUTCOME: outcome}
            if handle.department:
                attrs[names.DEPARTMENT] = handle.department
            if handle.agent:
                attrs[names.AGENT_NAME] = handle.agent
            self._t.instruments.task_duration.record(duration, attrs)
        self._finish()

    def _finish(self) -> None:
        with self._t.guard("track_task"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        with self._t.guard("track_task"):
            assert self._handle is not None
            self._handle.span.end()


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
        ``prompt_tokens`` does). A later call replaces an earlier one."""
        with self._telemetry.guard("record_usage"):
            self.input_tokens = max(int(input_tokens), 0)
            self.output_tokens = max(int(output_tokens), 0)
            self.cached_tokens = max(int(cached_tokens), 0)
            if response_model:
                self.response_model = str(response_model)

    def record_response(self, response: Any) -> None:
        """Model, id, finish reasons and usage of an OpenAI SDK ChatCompletion (or its dict
        form, or an Anthropic-style ``usage``); output messages too when content capture is on."""
        with self._telemetry.guard("record_response"):
            model, response_id, reasons = genai.response_fields(response)
            usage = genai.usage_of(response)
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
                _set(self._span, names.OUTPUT_MESSAGES, genai.output_messages(response))

    def record_input_messages(self, messages: Any) -> None:
        """The prompt (OpenAI-style messages); kept only when content capture is on."""
        if self.capture_content:
            with self._telemetry.guard("record_input_messages"):
                self._span.set_attribute(names.INPUT_MESSAGES, genai.input_messages(messages))

    def record_output_messages(self, messages: Any) -> None:
        """The completion (OpenAI-style messages); kept only when content capture is on."""
        if self.capture_content:
            with self._telemetry.guard("record_output_messages"):
                self._span.set_attribute(names.OUTPUT_MESSAGES, genai.input_messages(messages))


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
        self._start = 0.0

    def enter(self) -> LLMCallHandle:
        model, provider, operation, department, conversation_id, agent = self._args
        span: Span = trace.INVALID_SPAN
        with self._t.guard("track_llm_call"):
            task = current_task()
            if task is not None:
                department = department or task.department
                conversation_id = conversation_id or task.conversation_id
                agent = agent or task.agent
            span = self._t.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT)
            span.set_attribute(names.OPERATION, operation)
            span.set_attribute(names.PROVIDER, provider)
            span.set_attribute(names.REQUEST_MODEL, model)
            _set(span, names.CONVERSATION_ID, conversation_id)
            _set(span, names.AGENT_NAME, agent)
            _set(span, names.DEPARTMENT, department)
        self._handle = LLMCallHandle(
            self._t,
            span,
            model=model,
            provider=provider,
            operation=operation,
            department=department,
            agent=agent,
        )
        with self._t.guard("track_llm_call"):
            self._token = otel_context.attach(trace.set_span_in_context(span))
        self._start = time.perf_counter()
        return self._handle

    def exit(self, exc: BaseException | None) -> None:
        duration = time.perf_counter() - self._start
        h = self._handle
        if h is None:
            return
        with self._t.guard("track_llm_call"):
            if exc is not None:
                h.error_type = h.error_type or genai.error_type_of(exc)
                h.span.record_exception(exc)
            span = h.span
            base = {
                names.OPERATION: h.operation,
                names.PROVIDER: h.provider,
                names.REQUEST_MODEL: h.model,
            }
            if h.response_model:
                base[names.RESPONSE_MODEL] = h.response_model
                span.set_attribute(names.RESPONSE_MODEL, h.response_model)
            if h.department:
                base[names.DEPARTMENT] = h.department
            if h.agent:
                base[names.AGENT_NAME] = h.agent
            inst = self._t.instruments
            duration_attrs = dict(base)
            if h.error_type:
                duration_attrs[names.ERROR_TYPE] = h.error_type
                span.set_attribute(names.ERROR_TYPE, h.error_type)
                span.set_status(Status(StatusCode.ERROR))
            inst.operation_duration.record(duration, duration_attrs)
            if h.input_tokens is not None and h.output_tokens is not None:
                span.set_attribute(names.INPUT_TOKENS, h.input_tokens)
                span.set_attribute(names.OUTPUT_TOKENS, h.output_tokens)
                inst.token_usage.record(h.input_tokens, {**base, names.TOKEN_TYPE: "input"})
                inst.token_usage.record(h.output_tokens, {**base, names.TOKEN_TYPE: "output"})
                h.cost_usd = record_cost(
                    self._t,
                    provider=h.provider,
                    model=h.model,
                    response_model=h.response_model,
                    input_tokens=h.input_tokens,
                    output_tokens=h.output_tokens,
                    cached_tokens=h.cached_tokens,
                    department=h.department,
                    agent=h.agent,
                )
                span.set_attribute(names.SPAN_COST, h.cost_usd)
                if h.cached_tokens:
                    span.set_attribute(names.CACHE_READ_TOKENS, h.cached_tokens)
        with self._t.guard("track_llm_call"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        with self._t.guard("track_llm_call"):
            h.span.end()


def record_cost(
    telemetry: Telemetry,
    *,
    provider: str,
    model: str,
    response_model: str | None,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    department: str | None,
    agent: str | None,
) -> float:
    """Price one call and add it to atalaia.llm.cost.usd and atalaia.llm.cached_tokens."""
    priced = response_model or model
    if response_model and telemetry.prices.lookup(response_model) is None:
        priced = model  # an unknown dated id: the requested family's price
    cost = telemetry.prices.cost(priced, input_tokens, output_tokens, cached_tokens)
    attrs = {names.PROVIDER: provider, names.REQUEST_MODEL: model}
    if agent:
        attrs[names.AGENT_NAME] = agent
    telemetry.instruments.llm_cost.add(
        cost, {**attrs, names.DEPARTMENT: department} if department else attrs
    )
    if cached_tokens:
        telemetry.instruments.cached_tokens.add(cached_tokens, attrs)
    return cost


class ToolHandle(_Handle):
    """Yielded by ``track_tool``."""

    def __init__(self, telemetry: Telemetry, span: Span, name: str) -> None:
        super().__init__(telemetry, span)
        self.name = name


class ToolScope:
    def __init__(self, telemetry: Telemetry, name: str, agent: str | None) -> None:
        self._t = telemetry
        self._name = name
        self._agent = agent
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
                h.error_type = h.error_type or genai.error_type_of(exc)
                h.span.record_exception(exc)
            if h.error_type:
                h.span.set_attribute(names.ERROR_TYPE, h.error_type)
                h.span.set_status(Status(StatusCode.ERROR))
        with self._t.guard("track_tool"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        with self._t.guard("track_tool"):
            h.span.end()
