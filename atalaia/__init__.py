"""Atalaia: observability for fleets of AI agents.

    import atalaia
    atalaia.instrument("my-agent", agent_name="helix")

Then wrap work in the helpers below (context managers and decorators, sync and async). They
emit exactly the signals of docs/telemetry.md and never raise into agent code. See docs/library.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate

from atalaia.prices import ModelPrice, PriceFileError, PriceTable
from atalaia.telemetry import Telemetry, current, instrument
from atalaia.tracking import (
    LLMCallHandle,
    LLMCallScope,
    TaskHandle,
    TaskScope,
    ToolHandle,
    ToolScope,
    Tracked,
    current_task,
)
from atalaia.version import __version__

__all__ = [
    "LLMCallHandle",
    "ModelPrice",
    "PriceFileError",
    "PriceTable",
    "TaskHandle",
    "Telemetry",
    "ToolHandle",
    "Tracked",
    "__version__",
    "current",
    "current_task",
    "heartbeat",
    "instrument",
    "propagation_headers",
    "record_cache",
    "record_conversation",
    "record_error",
    "record_integration_error",
    "record_lead",
    "record_llm_cost",
    "record_retry",
    "record_timeout",
    "set_db_connections",
    "track_llm_call",
    "track_task",
    "track_tool",
]


def track_task(
    kind: str = "task",
    *,
    task_id: str | None = None,
    department: str | None = None,
    conversation_id: str | None = None,
    agent: str | None = None,
    carrier: Mapping[str, str] | None = None,
) -> Tracked[TaskHandle]:
    """Span ``invoke_agent {agent}`` and ``atalaia.task.duration`` by outcome. `carrier`: the
    headers of the request that brought the task (W3C traceparent), to continue its trace."""
    # The Telemetry is looked up at each use, not now: a function decorated at import time,
    # before instrument() runs, still reports through the Telemetry instrument() builds.
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
    """Span ``{operation} {model}`` (CLIENT), GenAI duration and token histograms, cost."""
    return Tracked(
        lambda: LLMCallScope(
            current(), model, provider, operation, department, conversation_id, agent
        )
    )


def track_tool(name: str, *, agent: str | None = None) -> Tracked[ToolHandle]:
    """Span ``execute_tool {name}``."""
    return Tracked(lambda: ToolScope(current(), name, agent))


def record_llm_cost(
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
    """atalaia.llm.cost.usd (and cached tokens) for a call that another instrumentation traces;
    returns the cost in USD."""
    return current().record_llm_cost(
        model,
        provider=provider,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        response_model=response_model,
        department=department,
        agent=agent,
    )


def record_retry(reason: str, *, agent: str | None = None) -> None:
    """atalaia.retries += 1 (reason: rate_limit, llm_error, timeout, tool_error, validation)."""
    current().record_retry(reason, agent=agent)


def record_timeout(reason: str, *, agent: str | None = None) -> None:
    """atalaia.timeouts += 1 (reason: llm, tool, task)."""
    current().record_timeout(reason, agent=agent)


def record_error(error_type: str, *, agent: str | None = None) -> None:
    """atalaia.errors += 1 (llm, tool, api, database, integration, validation, internal)."""
    current().record_error(error_type, agent=agent)


def record_integration_error(name: str, *, agent: str | None = None) -> None:
    """atalaia.integration.errors += 1 for the named integration (e.g. "crm")."""
    current().record_integration_error(name, agent=agent)


def record_cache(hit: bool, *, agent: str | None = None) -> None:
    """atalaia.cache.requests += 1 (hit or miss)."""
    current().record_cache(hit, agent=agent)


def record_conversation(outcome: str, *, agent: str | None = None) -> None:
    """atalaia.conversations += 1 (qualified, unqualified, abandoned)."""
    current().record_conversation(outcome, agent=agent)


def record_lead(*, agent: str | None = None) -> None:
    """atalaia.leads += 1."""
    current().record_lead(agent=agent)


def heartbeat(*, agent: str | None = None) -> None:
    """atalaia.agent.heartbeat.timestamp = now."""
    current().heartbeat(agent=agent)


def set_db_connections(used: int, idle: int, pool: str, *, agent: str | None = None) -> None:
    """db.client.connection.count by state for `pool` (absolute numbers)."""
    current().set_db_connections(used, idle, pool, agent=agent)


def propagation_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the W3C trace context of the current span, for an outgoing request whose
    receiver passes them to ``track_task(carrier=...)``."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier
