"""Distributed fallback (seed 001): a task that times out is split into chunks, each chunk runs on
its own (and may split again) up to a maximum depth, and the chunk results are merged with
duplicates removed. Chunks overlap by a few items so that no boundary loses context; the merge
removes that overlap again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class WorkUnit:
    """Items [start, end) of one task; depth 0 is the whole task."""

    task_id: str
    start: int
    end: int
    depth: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class FallbackPolicy:
    max_depth: int = 2
    parts: int = 2
    overlap: int = 2
    task_timeout_s: float = 20.0
    chunk_timeout_s: float = 15.0

    def timeout(self, unit: WorkUnit) -> float:
        return self.task_timeout_s if unit.depth == 0 else self.chunk_timeout_s


@dataclass
class UnitResult:
    items: list[str]
    cost_usd: float = 0.0
    agents: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class MergeResult:
    items: list[str]
    chunks_combined: int
    duplicates_removed: int


class FallbackExhausted(Exception):
    """A chunk timed out at the maximum depth: the task cannot be finished."""


class UnitTimeout(Exception):
    def __init__(self, agent: str) -> None:
        super().__init__(f"{agent} timed out")
        self.agent = agent


class FallbackEvents(Protocol):
    """What the fallback reports (implemented over OrchestratorMetrics)."""

    def timed_out(self, agent: str, reason: str) -> None: ...
    def task_split(self, chunks: int) -> None: ...
    def chunk_finished(self, agent: str, duration_s: float) -> None: ...
    def fallback_depth_exceeded(self) -> None: ...
    def merged(self, chunks_combined: int, duplicates_removed: int) -> None: ...


# Runs one unit on an agent within `timeout_s`: returns (agent, items, cost) or raises UnitTimeout.
Execute = Callable[[WorkUnit, float], Awaitable[tuple[str, list[str], float]]]


def split(unit: WorkUnit, parts: int = 2, overlap: int = 2) -> list[WorkUnit]:
    """`parts` contiguous chunks covering `unit`, each extended by `overlap` items into the next."""
    if parts < 2:
        raise ValueError("a split needs at least 2 parts")
    parts = min(parts, unit.size)
    if parts < 2:
        return [unit]
    step, extra = divmod(unit.size, parts)
    chunks = []
    start = unit.start
    for i in range(parts):
        end = start + step + (1 if i < extra else 0)
        chunks.append(WorkUnit(unit.task_id, start, min(end + overlap, unit.end), unit.depth + 1))
        start = end
    return chunks


def merge(results: Iterable[Sequence[str]]) -> MergeResult:
    """Concatenate chunk results in order, keeping the first occurrence of each item."""
    seen: set[str] = set()
    items: list[str] = []
    chunks = duplicates = 0
    for result in results:
        chunks += 1
        for item in result:
            if item in seen:
                duplicates += 1
            else:
                seen.add(item)
                items.append(item)
    return MergeResult(items, chunks, duplicates)


async def run_with_fallback(
    unit: WorkUnit, execute: Execute, policy: FallbackPolicy, events: FallbackEvents
) -> UnitResult:
    """Run `unit`; on timeout split it and run the chunks concurrently, recursively."""
    started = time.monotonic()
    try:
        agent, items, cost = await execute(unit, policy.timeout(unit))
    except UnitTimeout as exc:
        events.timed_out(exc.agent, "task" if unit.depth == 0 else "chunk")
        if unit.depth >= policy.max_depth or unit.size < 2:
            events.fallback_depth_exceeded()
            raise FallbackExhausted(f"{unit.task_id}: timed out at depth {unit.depth}") from exc
        chunks = split(unit, policy.parts, policy.overlap)
        events.task_split(len(chunks))
        results = await asyncio.gather(
            *(run_with_fallback(chunk, execute, policy, events) for chunk in chunks)
        )
        merged = merge(r.items for r in results)
        events.merged(merged.chunks_combined, merged.duplicates_removed)
        return UnitResult(
            merged.items,
            sum(r.cost_usd for r in results),
            set().union(*(r.agents for r in results)),
        )
    if unit.depth > 0:
        events.chunk_finished(agent, time.monotonic() - started)
    return UnitResult(list(items), cost, {agent})
