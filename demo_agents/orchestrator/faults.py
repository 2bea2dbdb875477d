"""Fault switches: each one breaks a real part of the fleet so that a dashboard moves and an alert
fires. They act where the fault lives: the mock LLM's runtime faults, flags on the tasks sent to an
agent, an agent's admin endpoint, or the orchestrator's own load."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from demo_agents import fleet_config
from demo_agents.protocol import TaskFault

log = logging.getLogger("demo_agents.orchestrator.faults")

FAULTS: dict[str, str] = {
    "slow_llm": "one model answers ~30x slower (default: the agent's model, else gpt-4o)",
    "llm_errors": "85% of LLM calls fail with 500/503 (the agent's model, else all models)",
    "rate_limit": "90% of LLM calls get 429 with Retry-After (the agent's model, else all)",
    "retry_loop": "output validation keeps failing: the agent retries in a loop",
    "budget_burn": "agents send a runaway 100k-token context on every call",
    "agent_crash": "the agent process exits (default Nova); the supervisor restarts it",
    "agent_hang": "the agent (default Atlas) sends no heartbeat, even after restarts, until "
    "cleared: the supervisor restarts it in a loop and the heartbeat goes stale",
    "cpu_hog": "Helix burns CPU holding its workbench, which delays Sigma's lookups",
    "queue_backlog": "6x the load while agents take one task at a time: the queue grows",
    "crm_down": "Nova's CRM integration refuses every call: leads are lost",
    "db_down": "Sigma's report database is unreachable: its pool has no connections",
}
DEFAULT_AGENT = {
    "agent_crash": "Nova",
    "agent_hang": "Atlas",
    "cpu_hog": "Helix",
    "crm_down": "Nova",
    "db_down": "Sigma",
}
TASK_FAULTS: tuple[TaskFault, ...] = ("retry_loop", "budget_burn", "crm_down", "db_down")
SLOW_FACTOR = 30.0
BACKLOG_LOAD_FACTOR = 6.0
HOG_SECONDS = 600.0


class UnknownFault(KeyError):
    pass


@dataclass(frozen=True)
class ActiveFault:
    name: str
    agent: str | None
    model: str | None
    since: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "agent": self.agent, "model": self.model, "since": self.since}


class FaultController:
    def __init__(
        self,
        llm_admin_url: str,
        http: httpx.AsyncClient,
        agent_urls: dict[str, str] | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.state_dir = state_dir or fleet_config.state_dir()
        self.llm_admin_url = llm_admin_url
        self.http = http
        self.agent_urls = agent_urls or {a.name: a.url for a in fleet_config.AGENTS}
        self.active: dict[str, ActiveFault] = {}

    # --- what other parts ask -----------------------------------------------------------------
    def task_faults(self, agent: str) -> list[TaskFault]:
        flags: list[TaskFault] = []
        for name in TASK_FAULTS:
            fault = self.active.get(name)
            if fault is not None and fault.agent in (None, agent):
                flags.append(name)
        return flags

    @property
    def backlog(self) -> bool:
        return "queue_backlog" in self.active

    # --- switching ----------------------------------------------------------------------------
    async def switch_on(self, name: str, agent: str | None = None) -> ActiveFault:
        if name not in FAULTS:
            raise UnknownFault(name)
        agent = agent or DEFAULT_AGENT.get(name)
        spec = fleet_config.agent(agent) if agent else None  # KeyError names the known agents
        agent = spec.name if spec else None
        model = spec.model if spec else None
        if name == "slow_llm":
            model = model or "gpt-4o"
        fault = ActiveFault(name, agent, model, time.time())
        if name == "agent_crash":
            await self._agent_call(spec, "/admin/crash", None)
        elif name == "agent_hang":
            assert agent is not None
            fleet_config.hang_marker(self.state_dir, agent).touch()
        elif name == "cpu_hog":
            await self._agent_call(spec, "/admin/cpu_hog", {"on": True, "duration_s": HOG_SECONDS})
        self.active[name] = fault
        if name in ("slow_llm", "llm_errors", "rate_limit"):
            await self._push_llm_faults()
        log.warning("fault %s switched on (agent=%s, model=%s)", name, agent, model)
        return fault

    async def clear(self, name: str | None = None) -> list[str]:
        names = list(self.active) if name is None else [name]
        if name is not None and name not in FAULTS:
            raise UnknownFault(name)
        cleared = []
        for fault_name in names:
            fault = self.active.pop(fault_name, None)
            if fault is None:
                continue
            cleared.append(fault_name)
            if fault_name == "agent_hang" and fault.agent:
                fleet_config.hang_marker(self.state_dir, fault.agent).unlink(missing_ok=True)
            if fault_name == "cpu_hog" and fault.agent:
                spec = fleet_config.agent(fault.agent)
                try:
                    await self._agent_call(spec, "/admin/cpu_hog", {"on": False})
                except httpx.HTTPError as exc:  # the agent may have been restarted meanwhile
                    log.warning("could not switch cpu_hog off on %s: %r", fault.agent, exc)
        await self._push_llm_faults()
        if cleared:
            log.warning("faults cleared: %s", ", ".join(cleared))
        return cleared

    def llm_faults(self) -> dict[str, Any]:
        """The mock LLM's fault settings for the LLM faults that are on."""
        config: dict[str, Any] = {"slow_models": {}, "models": []}
        slow = self.active.get("slow_llm")
        if slow is not None and slow.model:
            config["slow_models"][slow.model] = SLOW_FACTOR
        scoped: list[str] = []
        rates = (("llm_errors", "error_rate", 0.85), ("rate_limit", "rate_limit_rate", 0.9))
        for name, key, rate in rates:
            fault = self.active.get(name)
            if fault is not None:
                config[key] = rate
                if fault.model:
                    scoped.append(fault.model)
        errors_on = {"llm_errors", "rate_limit"} & set(self.active)
        all_scoped = all(self.active[n].model for n in errors_on)
        if errors_on and all_scoped:
            config["models"] = sorted(set(scoped))
        if "rate_limit" in self.active:
            config["retry_after_s"] = 2
        return config

    async def _push_llm_faults(self) -> None:
        response = await self.http.put(
            f"{self.llm_admin_url}/admin/faults", json=self.llm_faults(), timeout=5
        )
        response.raise_for_status()

    async def _agent_call(
        self, spec: fleet_config.AgentSpec | None, path: str, body: dict[str, Any] | None
    ) -> None:
        assert spec is not None
        url = self.agent_urls[spec.name]
        response = await self.http.post(f"{url}{path}", json=body or {}, timeout=5)
        response.raise_for_status()
