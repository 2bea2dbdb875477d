"""The seeded task generator: kinds, departments, priorities, sizes and SLA deadlines."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from demo_agents.protocol import Department, Priority

KIND_OF: dict[Department, str] = {
    "engineering": "code",
    "operations": "report",
    "research": "research",
    "sales": "sales",
}
DEPARTMENT_WEIGHTS: dict[Department, int] = {
    "engineering": 3,
    "operations": 2,
    "research": 2,
    "sales": 3,
}
PRIORITY_WEIGHTS: dict[Priority, int] = {"high": 2, "normal": 5, "low": 3}
# Enqueue -> result deadline by priority; finishing later is an SLA miss.
SLA_S: dict[Priority, float] = {"high": 30.0, "normal": 60.0, "low": 120.0}
TURNS_PER_CONVERSATION = 3


@dataclass
class Task:
    task_id: str
    kind: str
    department: Department
    priority: Priority
    size: int
    conversation_id: str | None = None
    created: float = field(default_factory=time.monotonic)
    span: Any = None  # the orchestrate_task span, open from enqueue to result

    @property
    def sla_s(self) -> float:
        return SLA_S[self.priority]

    def age(self) -> float:
        return time.monotonic() - self.created


class TaskGenerator:
    """Deterministic sequence of tasks for a seed; arrivals are a Poisson process."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.count = 0
        self.sales_count = 0

    def next(self) -> Task:
        self.count += 1
        departments = list(DEPARTMENT_WEIGHTS)
        department = self.rng.choices(departments, [DEPARTMENT_WEIGHTS[d] for d in departments])[0]
        priorities = list(PRIORITY_WEIGHTS)
        priority = self.rng.choices(priorities, [PRIORITY_WEIGHTS[p] for p in priorities])[0]
        conversation = None
        if department == "sales":
            conversation = f"conv-{self.seed}-{self.sales_count // TURNS_PER_CONVERSATION:05d}"
            self.sales_count += 1
        return Task(
            task_id=f"task-{self.seed}-{self.count:06d}",
            kind=KIND_OF[department],
            department=department,
            priority=priority,
            size=self.rng.randint(4, 12),
            conversation_id=conversation,
        )

    def interarrival_s(self, per_minute: float) -> float:
        return self.rng.expovariate(max(per_minute, 0.01) / 60.0)
