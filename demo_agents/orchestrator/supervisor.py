"""Self-healing supervisor on APScheduler (seed 000): reads the SQLite heartbeats, marks agents up
or down, restarts a crashed or silent agent process, and runs the agents' shifts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

from demo_agents.heartbeat_store import HeartbeatStore
from demo_agents.process_manager import ProcessManager

log = logging.getLogger("demo_agents.supervisor")


class SupervisorEvents(Protocol):
    """The OrchestratorMetrics methods the supervisor reports through."""

    def set_agent_up(self, agent: str, up: bool) -> None: ...
    def heartbeat_seen(self, agent: str, ts: float) -> None: ...
    def agent_restarted(self, agent: str, reason: str) -> None: ...
    def set_on_shift(self, agent: str, on: bool) -> None: ...
    def shift_started(self, agent: str) -> None: ...


@dataclass(frozen=True)
class Shift:
    """A repeating turn: `on_s` seconds on shift, then `off_s` off. (0, 0) is always on."""

    on_s: int = 0
    off_s: int = 0

    def on_at(self, elapsed_s: float) -> bool:
        if self.off_s <= 0:
            return True
        return elapsed_s % (self.on_s + self.off_s) < self.on_s


@dataclass(frozen=True)
class Decision:
    agent: str
    reason: str  # heartbeat_missed | crashed


class Supervisor:
    def __init__(
        self,
        store: HeartbeatStore,
        processes: ProcessManager,
        events: SupervisorEvents,
        agents: Sequence[str],
        shifts: dict[str, Shift] | None = None,
        *,
        stale_after_s: float = 20.0,
        grace_s: float = 20.0,
        manage_processes: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.processes = processes
        self.events = events
        self.agents = list(agents)
        self.shifts = shifts or {}
        self.stale_after_s = stale_after_s
        self.grace_s = grace_s
        self.manage_processes = manage_processes
        self.clock = clock
        self.restarts: dict[str, dict[str, int]] = {}
        self.up: dict[str, bool] = dict.fromkeys(self.agents, False)
        self.on_shift: dict[str, bool] = {}
        self.epoch = clock()
        self._scheduler: BackgroundScheduler | None = None

    # --- heartbeats and restarts --------------------------------------------------------------
    def check(self) -> list[Decision]:
        """One supervision round; returns the restarts it made."""
        now = self.clock()
        beats = self.store.all()
        decisions = []
        for agent in self.agents:
            last = beats.get(agent)
            if last is not None:
                self.events.heartbeat_seen(agent, last)
            fresh = last is not None and now - last <= self.stale_after_s
            if not self.manage_processes:  # someone else runs it: the heartbeat is all we know
                self.up[agent] = fresh
                self.events.set_agent_up(agent, fresh)
                continue
            alive = self.processes.is_alive(agent)
            started = self.processes.started_at(agent) or now
            in_grace = now - started < self.grace_s
            reason = None
            if not alive:
                reason = "crashed"
                log.error(
                    "agent %s exited with %s; restarting",
                    agent,
                    self.processes.exit_code(agent),
                    extra={"gen_ai.agent.name": agent, "error.type": "internal"},
                )
            elif not fresh and not in_grace:
                reason = "heartbeat_missed"
                age = "never" if last is None else f"{now - last:.0f}s ago"
                log.error(
                    "agent %s silent (last heartbeat %s); restarting",
                    agent,
                    age,
                    extra={"gen_ai.agent.name": agent},
                )
            if reason is not None:
                self.processes.restart(agent)
                self.events.agent_restarted(agent, reason)
                counts = self.restarts.setdefault(agent, {})
                counts[reason] = counts.get(reason, 0) + 1
                decisions.append(Decision(agent, reason))
                alive, fresh = True, False
            # Up once the current process has written a heartbeat: a fresh beat left by the
            # previous incarnation does not mean the new one is listening yet.
            up = alive and fresh and last is not None and last >= started - 1.0
            self.up[agent] = up
            self.events.set_agent_up(agent, up)
        return decisions

    def available(self, agent: str) -> bool:
        """Up and on shift: the router may send it work."""
        return self.up.get(agent, False) and self.on_shift.get(agent, True)

    # --- shifts -------------------------------------------------------------------------------
    def update_shifts(self) -> None:
        elapsed = self.clock() - self.epoch
        for agent in self.agents:
            on = self.shifts.get(agent, Shift()).on_at(elapsed)
            if on and not self.on_shift.get(agent, False):
                self.events.shift_started(agent)
                log.info("shift started for %s", agent, extra={"gen_ai.agent.name": agent})
            elif not on and self.on_shift.get(agent, False):
                log.info("shift ended for %s", agent, extra={"gen_ai.agent.name": agent})
            self.on_shift[agent] = on
            self.events.set_on_shift(agent, on)

    # --- scheduling ---------------------------------------------------------------------------
    def start(self, check_every_s: float = 5.0) -> None:
        for agent in self.agents:
            if self.manage_processes and not self.processes.is_alive(agent):
                self.processes.start(agent)
        self.update_shifts()
        self._safe(self.check)()
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self._safe(self.check), "interval", seconds=check_every_s, id="heartbeats"
        )
        scheduler.add_job(self._safe(self.update_shifts), "interval", seconds=5, id="shifts")
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.processes.stop_all()

    @staticmethod
    def _safe(job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("supervisor job %s failed", getattr(job, "__name__", job))

        return run
