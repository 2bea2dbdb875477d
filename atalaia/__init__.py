"""Atalaia: observability for fleets of AI agents.

    import atalaia
    atalaia.instrument("my-agent", agent_name="helix")

That one line traces every call of the installed LLM clients (OpenAI, Anthropic, and what the
OpenTelemetry GenAI instrumentations cover) and exports traces, metrics and logs over OTLP. The
helpers below add tasks, tool calls and agent signals (docs/library.md); they never raise into
agent code.

This module only re-exports. Names are loaded on first use, so ``import atalaia`` costs almost
nothing and ``import atalaia.prices`` (as the operator tools do) loads no OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atalaia._context import ContextThreadPoolExecutor, carry_context
    from atalaia._recorders import (
        heartbeat,
        record_cache,
        record_conversation,
        record_error,
        record_integration_error,
        record_lead,
        record_retry,
        record_timeout,
        set_db_connections,
    )
    from atalaia._setup import instrument
    from atalaia._telemetry import Telemetry, current
    from atalaia._tracking import (
        LLMCallHandle,
        TaskHandle,
        ToolHandle,
        Tracked,
        current_llm_call,
        current_task,
        propagation_headers,
        track_llm_call,
        track_task,
        track_tool,
    )
    from atalaia._version import __version__
    from atalaia.prices import ModelPrice, PriceFileError, PriceTable

# Where each public name is defined (its one definition).
_SOURCES = {
    "ContextThreadPoolExecutor": "atalaia._context",
    "carry_context": "atalaia._context",
    "heartbeat": "atalaia._recorders",
    "record_cache": "atalaia._recorders",
    "record_conversation": "atalaia._recorders",
    "record_error": "atalaia._recorders",
    "record_integration_error": "atalaia._recorders",
    "record_lead": "atalaia._recorders",
    "record_retry": "atalaia._recorders",
    "record_timeout": "atalaia._recorders",
    "set_db_connections": "atalaia._recorders",
    "instrument": "atalaia._setup",
    "Telemetry": "atalaia._telemetry",
    "current": "atalaia._telemetry",
    "LLMCallHandle": "atalaia._tracking",
    "TaskHandle": "atalaia._tracking",
    "ToolHandle": "atalaia._tracking",
    "Tracked": "atalaia._tracking",
    "current_llm_call": "atalaia._tracking",
    "current_task": "atalaia._tracking",
    "propagation_headers": "atalaia._tracking",
    "track_llm_call": "atalaia._tracking",
    "track_task": "atalaia._tracking",
    "track_tool": "atalaia._tracking",
    "__version__": "atalaia._version",
    "ModelPrice": "atalaia.prices",
    "PriceFileError": "atalaia.prices",
    "PriceTable": "atalaia.prices",
}

__all__ = [
    "ContextThreadPoolExecutor",
    "LLMCallHandle",
    "ModelPrice",
    "PriceFileError",
    "PriceTable",
    "TaskHandle",
    "Telemetry",
    "ToolHandle",
    "Tracked",
    "__version__",
    "carry_context",
    "current",
    "current_llm_call",
    "current_task",
    "heartbeat",
    "instrument",
    "propagation_headers",
    "record_cache",
    "record_conversation",
    "record_error",
    "record_integration_error",
    "record_lead",
    "record_retry",
    "record_timeout",
    "set_db_connections",
    "track_llm_call",
    "track_task",
    "track_tool",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'atalaia' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
