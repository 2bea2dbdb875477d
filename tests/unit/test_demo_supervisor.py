"""Supervisor restart decisions, with a real SQLite heartbeat table and real child processes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_agents.heartbeat_store import HeartbeatStore
from demo_agents.orchestrator.supervisor import Shift, Supervisor
from demo_agents.process_manager import ProcessManager, ProcessSpec

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


class Events:
    def __init__(self) -> None:
        self.restarts: list[tuple[str, str]] = []
        self.up: dict[str, bool] = {}
        self.seen: dict[str, float] = {}
        self.on_shift: dict[str, bool] = {}
        self.shifts_started: list[str] = []

    def set_agent_up(self, agent: str, up: bool) -> None:
        self.up[agent] = up

    def heartbeat_seen(self, agent: str, ts: float) -> None:
        self.seen[agent] = ts

    def agent_restarted(self, agent: str, reason: str) -> None:
        self.restarts.append((agent, reason))

    def set_on_shift(self, agent: str, on: bool) -> None:
        self.on_shift[agent] = on

    def shift_started(self, agent: str) -> None:
        self.shifts_started.append(agent)


def wait_dead(pid: int, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A reaped child is gone; an unreaped zombie still answers kill(pid, 0).
        if Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive after {deadline_s}s")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[HeartbeatStore, ProcessManager, Events, list[float]]]:
    store = HeartbeatStore(tmp_path / "heartbeats.sqlite")
    clock = [time.time()]
    manager = ProcessManager([ProcessSpec("Helix", SLEEPER)], clock=lambda: clock[0])
    events = Events()
    yield store, manager, events, clock
    manager.stop_all()


def make(setup: tuple[HeartbeatStore, ProcessManager, Events, list[float]]) -> Supervisor:
    store, manager, events, clock = setup
    return Supervisor(
        store, manager, events, ["Helix"], stale_after_s=20, grace_s=10, clock=lambda: clock[0]
    )


def test_fresh_heartbeat_keeps_the_agent_and_marks_it_up(setup) -> None:
    store, manager, events, clock = setup
    supervisor = make(setup)
    manager.start("Helix")
    clock[0] += 30
    store.beat("Helix", clock[0] - 5)
    assert supervisor.check() == []
    assert events.up == {"Helix": True}
    assert events.seen["Helix"] == clock[0] - 5
    assert supervisor.available("Helix")


def test_stale_heartbeat_kills_and_restarts_the_process(setup) -> None:
    store, manager, events, clock = setup
    supervisor = make(setup)
    old_pid = manager.start("Helix")
    store.beat("Helix", clock[0])
    clock[0] += 25  # past the grace period and 25 s since the last heartbeat
    decisions = supervisor.check()

    assert [(d.agent, d.reason) for d in decisions] == [("Helix", "heartbeat_missed")]
    assert events.restarts == [("Helix", "heartbeat_missed")]
    wait_dead(old_pid)
    new_pid = manager.pid("Helix")
    assert new_pid is not None and new_pid != old_pid
    assert manager.is_alive("Helix")
    # The new process gets its grace period: no second restart right away.
    assert supervisor.check() == []


def test_heartbeat_within_grace_period_is_not_a_miss(setup) -> None:
    store, manager, events, clock = setup
    supervisor = make(setup)
    manager.start("Helix")
    clock[0] += 5  # no heartbeat yet, but the process only just started
    assert supervisor.check() == []
    assert events.up["Helix"] is False  # not a miss, but not ready for work either
    store.beat("Helix", clock[0])
    assert supervisor.check() == []
    assert events.up["Helix"] is True


def test_dead_process_is_restarted_as_crashed(setup) -> None:
    store, manager, events, clock = setup
    supervisor = make(setup)
    pid = manager.start("Helix")
    store.beat("Helix", clock[0])
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while manager.is_alive("Helix") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.check()[0].reason == "crashed"
    assert events.restarts == [("Helix", "crashed")]
    assert manager.is_alive("Helix") and manager.pid("Helix") != pid


def test_shifts_turn_on_and_off_and_count_starts(setup) -> None:
    store, manager, events, clock = setup
    supervisor = Supervisor(
        store, manager, events, ["Helix"], {"Helix": Shift(60, 30)}, clock=lambda: clock[0]
    )
    supervisor.update_shifts()
    clock[0] += 70
    supervisor.update_shifts()
    assert events.on_shift == {"Helix": False}
    assert not supervisor.available("Helix")
    clock[0] += 25
    supervisor.update_shifts()
    assert events.on_shift == {"Helix": True}
    assert events.shifts_started == ["Helix", "Helix"]
