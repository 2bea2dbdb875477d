"""Chunk split, merge with de-duplication, and the timeout -> split -> merge cascade (seed 001)."""

from __future__ import annotations

import asyncio

import pytest

from demo_agents.orchestrator.fallback import (
    FallbackExhausted,
    FallbackPolicy,
    UnitTimeout,
    WorkUnit,
    merge,
    run_with_fallback,
    split,
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def timed_out(self, agent: str, reason: str) -> None:
        self.events.append(("timeout", agent, reason))

    def task_split(self, chunks: int) -> None:
        self.events.append(("split", chunks))

    def chunk_finished(self, agent: str, duration_s: float) -> None:
        self.events.append(("chunk", agent))

    def fallback_depth_exceeded(self) -> None:
        self.events.append(("exceeded",))

    def merged(self, chunks_combined: int, duplicates_removed: int) -> None:
        self.events.append(("merged", chunks_combined, duplicates_removed))


def test_split_covers_every_item_and_overlaps_at_boundaries() -> None:
    unit = WorkUnit("t1", 0, 11)
    chunks = split(unit, parts=3, overlap=2)
    assert [(c.start, c.end) for c in chunks] == [(0, 6), (4, 10), (8, 11)]
    assert {c.depth for c in chunks} == {1}
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert covered == set(range(11))


def test_split_never_makes_empty_chunks() -> None:
    assert split(WorkUnit("t", 5, 6), parts=4) == [WorkUnit("t", 5, 6)]
    chunks = split(WorkUnit("t", 0, 3), parts=5, overlap=0)
    assert [c.size for c in chunks] == [1, 1, 1]
    with pytest.raises(ValueError):
        split(WorkUnit("t", 0, 3), parts=1)


def test_merge_keeps_order_and_counts_duplicates() -> None:
    result = merge([["a", "b", "c"], ["c", "d"], ["d", "e", "a"]])
    assert result.items == ["a", "b", "c", "d", "e"]
    assert result.chunks_combined == 3
    assert result.duplicates_removed == 3


def items(unit: WorkUnit) -> list[str]:
    return [f"{unit.task_id}:{i}" for i in range(unit.start, unit.end)]


def test_timeout_splits_runs_chunks_and_merges_without_duplicates() -> None:
    recorder = Recorder()
    sizes: list[int] = []

    async def execute(unit: WorkUnit, timeout_s: float) -> tuple[str, list[str], float]:
        sizes.append(unit.size)
        if unit.size > 6:  # only small enough work finishes in time
            raise UnitTimeout("Helix")
        return "Atlas", items(unit), 0.01

    policy = FallbackPolicy(max_depth=2, parts=2, overlap=2)
    result = asyncio.run(run_with_fallback(WorkUnit("t", 0, 10), execute, policy, recorder))

    assert result.items == [f"t:{i}" for i in range(10)]
    # 10 -> (0,7) + (5,10); (0,7) is still too big -> (0,6) + (4,7): three chunks finish.
    assert sorted(sizes) == [3, 5, 6, 7, 10]
    assert result.cost_usd == pytest.approx(0.03)
    assert result.agents == {"Atlas"}
    assert recorder.events[0] == ("timeout", "Helix", "task")
    assert ("timeout", "Helix", "chunk") in recorder.events
    assert recorder.events.count(("split", 2)) == 2
    assert recorder.events.count(("merged", 2, 2)) == 2
    assert recorder.events.count(("chunk", "Atlas")) == 3


def test_depth_limit_raises_and_counts_exceeded() -> None:
    recorder = Recorder()

    async def always_slow(unit: WorkUnit, timeout_s: float) -> tuple[str, list[str], float]:
        raise UnitTimeout("Sigma")

    policy = FallbackPolicy(max_depth=1, parts=2, overlap=0)
    with pytest.raises(FallbackExhausted):
        asyncio.run(run_with_fallback(WorkUnit("t", 0, 8), always_slow, policy, recorder))
    assert recorder.events.count(("split", 2)) == 1
    assert ("exceeded",) in recorder.events
    assert ("timeout", "Sigma", "chunk") in recorder.events
    assert not any(e[0] == "merged" for e in recorder.events)
