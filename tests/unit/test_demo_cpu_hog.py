"""The cpu_hog fault: Helix's workbench makes lookups wait while the hog runs, and the hog is
bounded (it ends by itself after its duration, and at once when switched off)."""

from __future__ import annotations

import time
from collections.abc import Callable

from demo_agents.cpu_hog import Workbench


def timed_lookup(bench: Workbench) -> float:
    started = time.perf_counter()
    bench.lookup("topic", rounds=200)
    return time.perf_counter() - started


def wait_until(condition: Callable[[], bool], deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_lookups_wait_for_the_hog_and_are_fast_again_when_it_stops() -> None:
    bench = Workbench()
    assert timed_lookup(bench) < 0.5
    bench.start_hog(duration_s=10)
    try:
        assert bench.hogging
        time.sleep(0.1)  # the hog now holds the workbench for its burst
        assert timed_lookup(bench) > 1.0
    finally:
        started = time.perf_counter()
        bench.stop_hog()
        assert time.perf_counter() - started < 1.0
    assert not bench.hogging
    assert timed_lookup(bench) < 0.5


def test_the_hog_ends_by_itself_after_its_duration() -> None:
    bench = Workbench()
    bench.start_hog(duration_s=1)
    assert wait_until(lambda: not bench.hogging, deadline_s=5)
