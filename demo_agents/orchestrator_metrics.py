"""The orchestrator's pull-style metrics (prometheus-client, scraped from its ``/metrics``).

Every ``orchestrator_*`` series of docs/telemetry.md, behind methods named for what happened.
Label sets from closed value lists (and the departments / agents you declare) are created at 0
up front, so ``rate()`` and absence checks work before the first event. Like the rest of the
library, the methods log instead of raising.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_log = logging.getLogger("demo_agents.orchestrator_metrics")

AGENT = "gen_ai_agent_name"
DEPARTMENT = "atalaia_department"
OTHER = "other"

STATUSES = ("success", "failure")
PRIORITIES = ("high", "normal", "low")
FAILURE_REASONS = (
    "timeout",
    "llm_error",
    "budget",
    "agent_down",
    "agent_error",
    "fallback_exhausted",
)
TIMEOUT_REASONS = ("chunk", "task")
RETRY_REASONS = ("timeout", "agent_down", "agent_error", "llm_error", "rate_limit")
RESTART_REASONS = ("heartbeat_missed", "crashed")

TASK_BUCKETS = (1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class OrchestratorMetrics:
    """All orchestrator series, registered on `registry` (the default prometheus-client registry
    when None, i.e. what ``prometheus_client.make_asgi_app()`` serves)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        departments: Iterable[str] = (),
        agents: Iterable[str] = (),
    ) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._departments: set[str] = set()
        self._agents: set[str] = set()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=reg)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=reg)

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
        ) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=reg)

        self.tasks = counter(
            "orchestrator_tasks", "Tasks finished, end to end", ("status", DEPARTMENT, "priority")
        )
        self.task_failures = counter(
            "orchestrator_task_failures", "Why tasks failed", ("reason", DEPARTMENT)
        )
        self.task_duration = histogram(
            "orchestrator_task_duration_seconds",
            "Enqueue to result",
            TASK_BUCKETS,
            ("status", DEPARTMENT),
        )
        self.queue_depth = gauge("orchestrator_queue_depth", "Tasks waiting", ("priority",))
        self.active_tasks = gauge("orchestrator_active_tasks", "Tasks being worked on")
        self.active_sessions = gauge("orchestrator_active_sessions", "Open conversations/sessions")
        self.active_agents = gauge("orchestrator_active_agents", "Agents with a fresh heartbeat")
        self.planning_duration = histogram(
            "orchestrator_planning_duration_seconds", "Planning step", STEP_BUCKETS
        )
        self.routing_duration = histogram(
            "orchestrator_routing_duration_seconds", "Routing step", STEP_BUCKETS
        )
        self.dispatches = counter(
            "orchestrator_dispatches", "Tasks/chunks sent to each agent", (AGENT,)
        )
        self.retries = counter("orchestrator_retries", "Re-dispatches", (AGENT, "reason"))
        self.timeouts = counter("orchestrator_timeouts", "Dispatch timeouts", (AGENT, "reason"))
        self.task_splits = counter(
            "orchestrator_task_splits", "Tasks split into chunks after a timeout"
        )
        self.task_chunks = counter("orchestrator_task_chunks", "Chunks created")
        self.chunk_duration = histogram(
            "orchestrator_chunk_duration_seconds", "One chunk's execution", TASK_BUCKETS, (AGENT,)
        )
        self.fallback_depth_exceeded_total = counter(
            "orchestrator_fallback_depth_exceeded", "Splits that hit the maximum depth"
        )
        self.merge_chunks_combined = counter(
            "orchestrator_merge_chunks_combined", "Chunk results merged"
        )
        self.merge_duplicates_removed = counter(
            "orchestrator_merge_duplicates_removed", "Duplicate items removed on merge"
        )
        self.budget_limit = gauge("orchestrator_budget_limit_usd", "Daily budget", (DEPARTMENT,))
        self.budget_spent = gauge("orchestrator_budget_spent_usd", "Spent today", (DEPARTMENT,))
        self.budget_remaining = gauge(
            "orchestrator_budget_remaining_ratio", "0-1 left of today's budget", (DEPARTMENT,)
        )
        self.agent_up = gauge(
            "orchestrator_agent_up", "1 if the supervisor sees the agent process alive", (AGENT,)
        )
        self.agent_last_heartbeat = gauge(
            "orchestrator_agent_last_heartbeat_timestamp_seconds",
            "Last heartbeat in SQLite (Unix time)",
            (AGENT,),
        )
        self.agent_restarts = counter(
            "orchestrator_agent_restarts", "Self-healing restarts", (AGENT, "reason")
        )
        self.agent_on_shift = gauge(
            "orchestrator_agent_on_shift", "1 while the agent's shift is on", (AGENT,)
        )
        self.shifts = counter("orchestrator_shifts", "Shifts started", (AGENT,))
        self.sla_misses = counter(
            "orchestrator_sla_misses",
            "Tasks finished after their deadline",
            (AGENT, DEPARTMENT),
        )

        for priority in PRIORITIES:
            self.queue_depth.labels(priority=priority).set(0)
        for department in departments:
            self.add_department(department)
        for agent in agents:
            self.add_agent(agent)

    # --- pre-initialisation -------------------------------------------------------------------
    def add_department(self, department: str) -> None:
        """Create every series of `department` at 0 (called for you on first use)."""
        with self._lock:
            if department in self._departments:
                return
            self._departments.add(department)
            agents = list(self._agents)
        for status in STATUSES:
            self.task_duration.labels(status, department)
            for priority in PRIORITIES:
                self.tasks.labels(status, department, priority)
        for reason in FAILURE_REASONS:
            self.task_failures.labels(reason, department)
        for agent in agents:
            self.sla_misses.labels(agent, department)

    def add_agent(self, agent: str) -> None:
        """Create every counter of `agent` at 0 (called for you on first use). Gauges such as
        orchestrator_agent_up are not invented: they appear when something is known."""
        with self._lock:
            if agent in self._agents:
                return
            self._agents.add(agent)
            departments = list(self._departments)
        self.dispatches.labels(agent)
        self.shifts.labels(agent)
        self.chunk_duration.labels(agent)
        for reason in TIMEOUT_REASONS:
            self.timeouts.labels(agent, reason)
        for reason in RETRY_REASONS:
            self.retries.labels(agent, reason)
        for reason in RESTART_REASONS:
            self.agent_restarts.labels(agent, reason)
        for department in departments:
            self.sla_misses.labels(agent, department)

    # --- helpers --------------------------------------------------------------------------------
    def _closed(self, value: Any, allowed: tuple[str, ...], label: str) -> str:
        text = str(value)
        if text in allowed:
            return text
        self._report(f"{label}={text}", f"{label}={text!r} is not one of {allowed}; using 'other'")
        return OTHER

    def _report(self, key: str, message: str) -> None:
        with self._lock:
            first = key not in self._reported and len(self._reported) < 1000
            if first:
                self._reported.add(key)
        if first:
            _log.warning("orchestrator metrics: %s", message)

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._report(what, f"{what} failed: {exc!r}")

    def _dept(self, department: str) -> str:
        self.add_department(department)
        return department

    def _agent(self, agent: str) -> str:
        self.add_agent(agent)
        return agent

    # --- tasks ----------------------------------------------------------------------------------
    def task_finished(
        self,
        status: str,
        department: str,
        priority: str,
        duration_s: float,
        reason: str | None = None,
    ) -> None:
        """A task ended (status success|failure; reason of a failure: timeout, llm_error, budget,
        agent_down, agent_error, fallback_exhausted)."""

        def do() -> None:
            st = self._closed(status, STATUSES, "status")
            dept = self._dept(department)
            self.tasks.labels(st, dept, self._closed(priority, PRIORITIES, "priority")).inc()
            self.task_duration.labels(st, dept).observe(max(duration_s, 0.0))
            if st == "failure":
                why = self._closed(reason, FAILURE_REASONS, "reason")
                self.task_failures.labels(why, dept).inc()

        self._guard("task_finished", do)

    def set_queue_depth(self, priority: str, n: int) -> None:
        self._guard(
            "set_queue_depth",
            lambda: self.queue_depth.labels(self._closed(priority, PRIORITIES, "priority")).set(n),
        )

    def set_active(
        self, *, tasks: int | None = None, sessions: int | None = None, agents: int | None = None
    ) -> None:
        for gauge, value in (
            (self.active_tasks, tasks),
            (self.active_sessions, sessions),
            (self.active_agents, agents),
        ):
            if value is not None:
                self._guard("set_active", gauge.set, value)

    def observe_planning(self, seconds: float) -> None:
        self._guard("observe_planning", self.planning_duration.observe, seconds)

    def observe_routing(self, seconds: float) -> None:
        self._guard("observe_routing", self.routing_duration.observe, seconds)

    # --- dispatch and distributed fallback (seed 001) -------------------------------------------
    def dispatched(self, agent: str) -> None:
        self._guard("dispatched", lambda: self.dispatches.labels(self._agent(agent)).inc())

    def retried(self, agent: str, reason: str) -> None:
        """A task or chunk was dispatched again (reason: timeout, agent_down, agent_error,
        llm_error, rate_limit)."""

        def do() -> None:
            why = self._closed(reason, RETRY_REASONS, "reason")
            self.retries.labels(self._agent(agent), why).inc()

        self._guard("retried", do)

    def timed_out(self, agent: str, reason: str) -> None:
        """A dispatch timed out (reason: chunk | task)."""

        def do() -> None:
            why = self._closed(reason, TIMEOUT_REASONS, "reason")
            self.timeouts.labels(self._agent(agent), why).inc()

        self._guard("timed_out", do)

    def task_split(self, chunks: int) -> None:
        """A task was split into `chunks` chunks after a timeout."""

        def do() -> None:
            self.task_splits.inc()
            self.task_chunks.inc(max(chunks, 0))

        self._guard("task_split", do)

    def chunk_finished(self, agent: str, duration_s: float) -> None:
        self._guard(
            "chunk_finished",
            lambda: self.chunk_duration.labels(self._agent(agent)).observe(max(duration_s, 0.0)),
        )

    def fallback_depth_exceeded(self) -> None:
        self._guard("fallback_depth_exceeded", self.fallback_depth_exceeded_total.inc)

    def merged(self, chunks_combined: int, duplicates_removed: int) -> None:
        def do() -> None:
            self.merge_chunks_combined.inc(max(chunks_combined, 0))
            self.merge_duplicates_removed.inc(max(duplicates_removed, 0))

        self._guard("merged", do)

    # --- budgets ----------------------------------------------------------------------------------
    def set_budget(self, department: str, limit_usd: float, spent_usd: float) -> None:
        """Today's budget of a department; the remaining ratio is derived (0 when no budget)."""

        def do() -> None:
            dept = self._dept(department)
            self.budget_limit.labels(dept).set(limit_usd)
            self.budget_spent.labels(dept).set(spent_usd)
            ratio = 0.0 if limit_usd <= 0 else min(max(1 - spent_usd / limit_usd, 0.0), 1.0)
            self.budget_remaining.labels(dept).set(ratio)

        self._guard("set_budget", do)

    # --- agents: liveness, self-healing, shifts, SLA ---------------------------------------------
    def set_agent_up(self, agent: str, up: bool) -> None:
        self._guard("set_agent_up", lambda: self.agent_up.labels(self._agent(agent)).set(int(up)))

    def heartbeat_seen(self, agent: str, ts: float) -> None:
        """The last heartbeat of `agent` (Unix seconds)."""
        self._guard(
            "heartbeat_seen", lambda: self.agent_last_heartbeat.labels(self._agent(agent)).set(ts)
        )

    def agent_restarted(self, agent: str, reason: str) -> None:
        """The supervisor restarted `agent` (reason: heartbeat_missed | crashed)."""

        def do() -> None:
            why = self._closed(reason, RESTART_REASONS, "reason")
            self.agent_restarts.labels(self._agent(agent), why).inc()

        self._guard("agent_restarted", do)

    def set_on_shift(self, agent: str, on: bool) -> None:
        self._guard(
            "set_on_shift", lambda: self.agent_on_shift.labels(self._agent(agent)).set(int(on))
        )

    def shift_started(self, agent: str) -> None:
        self._guard("shift_started", lambda: self.shifts.labels(self._agent(agent)).inc())

    def sla_missed(self, agent: str, department: str) -> None:
        self._guard(
            "sla_missed",
            lambda: self.sla_misses.labels(self._agent(agent), self._dept(department)).inc(),
        )
