"""What the OpenTelemetry context carries for us: the innermost task and LLM call, and how to
take that context into a thread pool.

The handles live in the OpenTelemetry context (contextvars), not in globals, so nested helpers,
log records and other instrumentations' spans inherit the task's department, conversation and
agent. Threads do not inherit contextvars: `ContextThreadPoolExecutor` and `carry_context` take
them along.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar

from opentelemetry import context as otel_context

P = ParamSpec("P")
R = TypeVar("R")

TASK_KEY = otel_context.create_key("atalaia.task")
LLM_CALL_KEY = otel_context.create_key("atalaia.llm_call")


class TaskContext(Protocol):
    """What a task handle offers to the rest of the library (see _tracking.TaskHandle)."""

    department: str | None
    conversation_id: str | None
    agent: str | None

    def log_attributes(self) -> Mapping[str, str]: ...


class LLMCallContext(Protocol):
    """What an LLM call handle offers to the span processor (see _tracking.LLMCallHandle)."""

    def delegate(self) -> None: ...


def current_task_context() -> TaskContext | None:
    value = otel_context.get_value(TASK_KEY)
    return value if value is not None else None  # type: ignore[return-value]


def current_llm_call_context(ctx: otel_context.Context | None = None) -> LLMCallContext | None:
    value = otel_context.get_value(LLM_CALL_KEY, ctx)
    return value if value is not None else None  # type: ignore[return-value]


def task_log_attributes() -> Mapping[str, Any]:
    task = current_task_context()
    return task.log_attributes() if task is not None else {}


def carry_context(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` bound to the context of the caller (the current task, trace and LLM call), for a
    thread, a thread pool or a callback that runs elsewhere::

        pool.submit(atalaia.carry_context(lookup), customer_id)
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose jobs run in the context of the code that submitted them, so a
    tool called from a pool inside ``track_task`` stays in the task's trace and department."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        run = contextvars.copy_context().run
        return super().submit(run, fn, *args, **kwargs)  # type: ignore[arg-type]
