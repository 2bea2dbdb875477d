"""The messages between the orchestrator and the agents (JSON over HTTP, W3C trace context in the
headers). Unknown fields are refused so that a typo is a 422 naming the field, not a silent loss."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Department = Literal["engineering", "operations", "research", "sales"]
Priority = Literal["high", "normal", "low"]
Status = Literal["success", "failure", "timeout"]
# Faults an agent acts on when they arrive with a task.
TaskFault = Literal["retry_loop", "budget_burn", "crm_down", "db_down"]


class TaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=32)
    department: Department
    priority: Priority = "normal"
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    depth: int = Field(default=0, ge=0, le=8)
    conversation_id: str | None = Field(default=None, max_length=64)
    deadline_s: float = Field(default=20.0, gt=0, le=600)
    attempt: int = Field(default=1, ge=1, le=10)
    faults: list[TaskFault] = Field(default_factory=list)


class TaskResult(BaseModel):
    agent: str
    status: Status
    items: list[str] = Field(default_factory=list)
    cost_usd: float = Field(default=0.0, ge=0)
    error_type: str | None = None
    reason: str | None = None


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=1, max_length=200)


class HogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool
    duration_s: float = Field(default=300.0, gt=0, le=900)
