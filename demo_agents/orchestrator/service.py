"""The orchestrator's parts wired together: metrics, budgets, faults, supervisor, engine and the
seeded task generator. `app.py` puts HTTP in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client import CollectorRegistry

from demo_agents import fleet_config
from demo_agents.heartbeat_store import HeartbeatStore
from demo_agents.orchestrator.budgets import Budgets
from demo_agents.orchestrator.engine import Engine
from demo_agents.orchestrator.faults import ActiveFault, FaultController
from demo_agents.orchestrator.supervisor import Shift, Supervisor
from demo_agents.orchestrator.workload import TaskGenerator
from demo_agents.orchestrator_metrics import OrchestratorMetrics
from demo_agents.process_manager import ProcessManager, ProcessSpec

log = logging.getLogger("demo_agents.orchestrator")

PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass
class Settings:
    seed: int = 42
    load_per_min: float = 20.0
    llm_url: str = field(default_factory=fleet_config.llm_base_url)
    state_dir: Path = field(default_factory=fleet_config.state_dir)
    spawn_agents: bool = True  # False: agents run elsewhere; only their heartbeats are read
    # Where the agents reach this orchestrator's API (their heartbeats).
    url: str = field(default_factory=fleet_config.orchestrator_url)
    generate: bool = True  # False: no generated load (tests, or webhooks only)
    agent_urls: dict[str, str] = field(
        default_factory=lambda: {a.name: a.url for a in fleet_config.AGENTS}
    )
    stale_after_s: float = 20.0
    check_every_s: float = 5.0


def agent_process(spec: fleet_config.AgentSpec, settings: Settings) -> ProcessSpec:
    logs = fleet_config.logs_dir()
    pythonpath = os.pathsep.join(
        p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")) if p
    )
    return ProcessSpec(
        spec.name,
        [
            sys.executable,
            "-m",
            "demo_agents.agent",
            "--name",
            spec.name,
            "--seed",
            str(settings.seed),
        ],
        env={
            "PYTHONPATH": pythonpath,
            "ATALAIA_DEMO_STATE_DIR": str(settings.state_dir),
            "ATALAIA_DEMO_LLM_URL": settings.llm_url,
            "ATALAIA_DEMO_ORCHESTRATOR_URL": settings.url,
        },
        log_path=logs / f"{spec.name.lower()}.log" if logs else None,
    )


class Orchestrator:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        names = [a.name for a in fleet_config.AGENTS]
        self.metrics = OrchestratorMetrics(
            self.registry, departments=fleet_config.DEPARTMENTS, agents=names
        )
        self.budgets = Budgets(fleet_config.DAILY_BUDGET_USD)
        self.http = httpx.AsyncClient()
        self.faults = FaultController(
            settings.llm_url.removesuffix("/v1"),
            self.http,
            settings.agent_urls,
            settings.state_dir,
        )
        self.store = HeartbeatStore(fleet_config.heartbeat_db(settings.state_dir))
        self.processes = ProcessManager(
            [agent_process(a, settings) for a in fleet_config.AGENTS]
            if settings.spawn_agents
            else []
        )
        self.supervisor = Supervisor(
            self.store,
            self.processes,
            self.metrics,
            names,
            {a.name: Shift(*a.shift) for a in fleet_config.AGENTS},
            stale_after_s=settings.stale_after_s,
            manage_processes=settings.spawn_agents,
        )
        self.planner = openai.AsyncOpenAI(
            base_url=settings.llm_url, api_key="demo-key-not-secret", max_retries=1, timeout=10
        )
        self.engine = Engine(
            self.metrics,
            self.budgets,
            self.faults,
            self.supervisor.available,
            self.http,
            self.planner,
            agent_urls=settings.agent_urls,
        )
        self.generator = TaskGenerator(settings.seed)
        self.load_per_min = settings.load_per_min
        self._spent_before_burn: dict[str, float] | None = None
        self._loops: list[asyncio.Task[None]] = []

    async def fault_on(self, name: str, agent: str | None = None) -> ActiveFault:
        if name == "budget_burn" and self._spent_before_burn is None:
            self._spent_before_burn = self.budgets.snapshot()
        return await self.faults.switch_on(name, agent)

    async def faults_off(self, name: str | None = None) -> list[str]:
        cleared = await self.faults.clear(name)
        if "budget_burn" in cleared and self._spent_before_burn is not None:
            # A demo affordance: clearing budget_burn gives back what the burn spent today, so
            # the fleet does not stay out of budget until midnight UTC.
            self.budgets.restore(self._spent_before_burn)
            self._spent_before_burn = None
            for state in self.budgets.all():
                self.metrics.set_budget(state.department, state.limit_usd, state.spent_usd)
        return cleared

    async def generate_loop(self) -> None:
        while True:
            self.engine.submit(self.generator.next())
            rate = self.load_per_min * self.engine.load_factor()
            await asyncio.sleep(self.generator.interarrival_s(rate))

    async def start(self) -> None:
        # Starting agents blocks (fork/exec), so it runs off the event loop.
        await asyncio.to_thread(self.supervisor.start, self.settings.check_every_s)
        self._loops.append(asyncio.create_task(self.engine.dispatch_loop()))
        if self.settings.generate and self.load_per_min > 0:
            self._loops.append(asyncio.create_task(self.generate_loop()))

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await self.engine.drain()
        with contextlib.suppress(httpx.HTTPError):
            await self.faults_off()
        await asyncio.to_thread(self.supervisor.shutdown)
        await self.http.aclose()
        await self.planner.close()

    def summary(self) -> dict[str, Any]:
        stats = self.engine.stats
        beats = self.store.all()
        total = sum(stats.finished.values())
        return {
            "load_per_min": self.load_per_min,
            "seed": self.settings.seed,
            "state_dir": str(self.settings.state_dir),
            "tasks": {
                "finished": stats.finished,
                "success_rate": (stats.finished.get("success", 0) / total) if total else None,
                "failures_by_reason": stats.failures,
                "sla_misses": stats.sla_misses,
                "in_flight": len(self.engine.in_flight),
                "queued": self.engine.queue_depth(),
            },
            "fallback": {
                "splits": stats.splits,
                "chunks": stats.chunks,
                "duplicates_removed": stats.duplicates_removed,
                "depth_exceeded": stats.fallback_exceeded,
            },
            "dispatches": stats.dispatches,
            "budgets": {
                b.department: {
                    "limit_usd": b.limit_usd,
                    "spent_usd": round(b.spent_usd, 6),
                    "remaining_ratio": round(b.remaining_ratio, 4),
                }
                for b in self.budgets.all()
            },
            "agents": {
                name: {
                    "up": self.supervisor.up.get(name, False),
                    "on_shift": self.supervisor.on_shift.get(name, True),
                    "last_heartbeat": beats.get(name),
                    "pid": self.processes.pid(name),
                    "restarts": self.supervisor.restarts.get(name, {}),
                    "busy": self.engine.busy.get(name, 0),
                }
                for name in self.supervisor.agents
            },
            "faults": [f.as_dict() for f in self.faults.active.values()],
        }
