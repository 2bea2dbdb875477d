"""Webhook payloads for `POST /events/{kind}` (seed 001): external systems and agents that are not
our children report what happened. Unknown fields and wrong types are refused with a 422 that
names the field; an unknown kind is a 404 listing the known ones."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from demo_agents.protocol import Department


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TaskSplitEvent(Event):
    chunks: int = Field(ge=2, le=64)


class TimeoutEvent(Event):
    agent: str = Field(min_length=1, max_length=64)
    reason: Literal["chunk", "task"]


class ChunkExecutionEvent(Event):
    agent: str = Field(min_length=1, max_length=64)
    duration_s: float = Field(ge=0, le=3600)


class MergeDeduplicationEvent(Event):
    chunks_combined: int = Field(ge=1, le=10_000)
    duplicates_removed: int = Field(ge=0, le=1_000_000)


class FallbackDepthExceededEvent(Event):
    pass


class LLMCostEvent(Event):
    department: Department
    cost_usd: float = Field(ge=0, le=10_000)


EVENTS: dict[str, type[Event]] = {
    "task_split": TaskSplitEvent,
    "timeout": TimeoutEvent,
    "chunk_execution": ChunkExecutionEvent,
    "merge_deduplication": MergeDeduplicationEvent,
    "fallback_depth_exceeded": FallbackDepthExceededEvent,
    "llm_cost": LLMCostEvent,
}
