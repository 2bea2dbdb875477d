"""The orchestrator's work loop: queues by priority, planning (an LLM call), routing to an agent
that is up and on shift, dispatch over HTTP with the trace context, chunk fallback on timeout,
budgets charged with the cost the agents report, SLA deadlines and re-dispatch on failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import atalaia
from demo_agents import fleet_config
from demo_agents.orchestrator.budgets import Budgets
from demo_agents.orchestrator.fallback import (
    FallbackExhausted,
    FallbackPolicy,
    UnitTimeout,
    WorkUnit,
    run_with_fallback,
)
from demo_agents.orchestrator.faults import BACKLOG_LOAD_FACTOR, FaultController
from demo_agents.orchestrator.workload import Task
from demo_agents.protocol import TaskRequest, TaskResult

log = logging.getLogger("demo_agents.orchestrator")
tracer = trace.get_tracer("demo_agents.orchestrator")

# Which agents can do a department's work, in order of preference.
ROUTES: dict[str, tuple[str, ...]] = {
    "engineering": ("Helix", "Atlas"),
    "operations": ("Sigma", "Helix"),
    "research": ("Atlas", "Helix"),
    "sales": ("Nova", "Sigma"),
}
AGENT_DOWN_AFTER_S = 90.0  # a queued task with no agent to run it for this long fails


class TaskFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Stats:
    """Counts for `/metrics/summary` (the Prometheus series live in OrchestratorMetrics)."""

    finished: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    failures: dict[str, int] = field(default_factory=dict)
    sla_misses: int = 0
    splits: int = 0
    chunks: int = 0
    duplicates_removed: int = 0
    fallback_exceeded: int = 0
    dispatches: dict[str, int] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        metrics: Any,
        budgets: Budgets,
        faults: FaultController,
        available: Callable[[str], bool],
        http: httpx.AsyncClient,
        planner: openai.AsyncOpenAI,
        *,
        policy: FallbackPolicy | None = None,
        agent_urls: dict[str, str] | None = None,
        concurrency: dict[str, int] | None = None,
    ) -> None:
        self.metrics = metrics
        self.budgets = budgets
        self.faults = faults
        self.available = available
        self.http = http
        self.planner = planner
        self.policy = policy or FallbackPolicy()
        self.agent_urls = agent_urls or {a.name: a.url for a in fleet_config.AGENTS}
        self.concurrency = concurrency or {a.name: a.concurrency for a in fleet_config.AGENTS}
        self.queues: dict[str, deque[Task]] = {p: deque() for p in fleet_config.PRIORITIES}
        self.in_flight: dict[str, Task] = {}
        self.busy: dict[str, int] = dict.fromkeys(self.agent_urls, 0)  # tasks routed to each
        self.dispatching: dict[str, int] = dict.fromkeys(self.agent_urls, 0)  # requests open
        self.stats = Stats()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        for state in budgets.all():
            metrics.set_budget(state.department, state.limit_usd, state.spent_usd)

    # --- queueing -----------------------------------------------------------------------------
    def submit(self, task: Task) -> None:
        task.span = tracer.start_span(f"orchestrate_task {task.kind}", kind=SpanKind.INTERNAL)
        for key, value in (
            ("atalaia.task.id", task.task_id),
            ("atalaia.task.kind", task.kind),
            ("atalaia.department", task.department),
            ("atalaia.task.priority", task.priority),
        ):
            task.span.set_attribute(key, value)
        if task.conversation_id:
            task.span.set_attribute("gen_ai.conversation.id", task.conversation_id)
        self.queues[task.priority].append(task)
        self._report_queues()
        self._wake.set()

    def queue_depth(self) -> dict[str, int]:
        return {p: len(q) for p, q in self.queues.items()}

    def _report_queues(self) -> None:
        for priority, queue in self.queues.items():
            self.metrics.set_queue_depth(priority, len(queue))
        sessions = {
            t.conversation_id
            for t in (*self.in_flight.values(), *(t for q in self.queues.values() for t in q))
            if t.conversation_id
        }
        agents = sum(1 for a in self.agent_urls if self.available(a))
        self.metrics.set_active(tasks=len(self.in_flight), sessions=len(sessions), agents=agents)

    def capacity(self, agent: str) -> int:
        return 1 if self.faults.backlog else self.concurrency.get(agent, 1)

    def route(self, task: Task) -> str | None:
        for agent in ROUTES[task.department]:
            if self.available(agent) and self.busy.get(agent, 0) < self.capacity(agent):
                return agent
        return None

    def load_factor(self) -> float:
        return BACKLOG_LOAD_FACTOR if self.faults.backlog else 1.0

    async def dispatch_loop(self) -> None:
        """Hand queued tasks to free agents, highest priority first."""
        while True:
            self._wake.clear()
            blocked: set[str] = set()  # departments with no free agent in this pass
            for priority in fleet_config.PRIORITIES:
                queue = self.queues[priority]
                for task in list(queue):
                    if task.department in blocked:
                        self._fail_if_stranded(queue, task)
                        continue
                    started = time.perf_counter()
                    agent = self.route(task)
                    self.metrics.observe_routing(time.perf_counter() - started)
                    if agent is None:
                        blocked.add(task.department)
                        self._fail_if_stranded(queue, task)
                        continue
                    queue.remove(task)
                    self.busy[agent] += 1
                    self.in_flight[task.task_id] = task
                    job = asyncio.create_task(self._process(task, agent))
                    self._running.add(job)
                    job.add_done_callback(self._running.discard)
            self._report_queues()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)

    def _fail_if_stranded(self, queue: deque[Task], task: Task) -> None:
        if task.age() > AGENT_DOWN_AFTER_S and not any(
            self.available(a) for a in ROUTES[task.department]
        ):
            queue.remove(task)
            self._finish(task, "failure", "agent_down", None)

    # --- one task -----------------------------------------------------------------------------
    async def _process(self, task: Task, agent: str) -> None:
        status, agents = "failure", {agent}
        reason: str | None = "llm_error"
        extra = {"atalaia.task.id": task.task_id}
        with trace.use_span(task.span, end_on_exit=False):
            try:
                if self.budgets.state(task.department).exhausted:
                    raise TaskFailed("budget", f"{task.department} spent its daily budget")
                await self._plan(task)
                result = await run_with_fallback(
                    WorkUnit(task.task_id, 0, task.size),
                    lambda unit, timeout: self._execute(task, unit, timeout, agent),
                    self.policy,
                    self,
                )
                agents = result.agents or agents
                status, reason = "success", None
            except FallbackExhausted as exc:
                reason = "fallback_exhausted"
                log.error("%s", exc, extra=extra)
            except TaskFailed as exc:
                reason = exc.reason
                log.error("task %s failed: %s", task.task_id, exc, extra=extra)
            except Exception as exc:
                reason = "agent_error"
                log.exception(
                    "task %s failed: %r",
                    task.task_id,
                    exc,
                    extra={**extra, "error.type": "internal"},
                )
            finally:
                self.busy[agent] -= 1
                self.in_flight.pop(task.task_id, None)
                self._finish(task, status, reason, sorted(agents)[0])
                self._wake.set()

    async def _plan(self, task: Task) -> None:
        started = time.perf_counter()
        model, provider = fleet_config.PLANNER_MODEL
        try:
            with atalaia.track_llm_call(model, provider=provider, department=task.department) as c:
                response = await self.planner.chat.completions.create(
                    model=model,
                    messages=[
                        {"role": "system", "content": "You are the orchestrator's planner."},
                        {"role": "user", "content": f"Plan {task.kind} task of {task.size}."},
                    ],
                    max_tokens=30,
                )
                c.record_response(response)
            self._charge(task, c.cost_usd or 0.0)
        except openai.OpenAIError as exc:
            # Planning is an optimisation: without it the task still runs with the default plan.
            atalaia.record_error("llm")
            log.warning("planning %s failed (%r); using the default plan", task.task_id, exc)
        finally:
            self.metrics.observe_planning(time.perf_counter() - started)

    def _charge(self, task: Task, usd: float) -> None:
        state = self.budgets.charge(task.department, usd)
        self.metrics.set_budget(state.department, state.limit_usd, state.spent_usd)

    def _pick(self, task: Task, preferred: str, unit: WorkUnit) -> str:
        """The task's agent; a chunk stays with it while it has room (its context is warm) and
        spills over to the least loaded other capable agent when it is full or unavailable."""
        if self.available(preferred) and (
            unit.depth == 0 or self.dispatching.get(preferred, 0) < self.capacity(preferred)
        ):
            return preferred
        others = [a for a in ROUTES[task.department] if a != preferred and self.available(a)]
        if not others:
            return preferred
        return min(others, key=lambda a: self.dispatching.get(a, 0) / self.capacity(a))

    async def _execute(
        self, task: Task, unit: WorkUnit, timeout_s: float, preferred: str
    ) -> tuple[str, list[str], float]:
        """Send one unit to an agent; one re-dispatch on failure; UnitTimeout on timeout."""
        agent = self._pick(task, preferred, unit)
        last_reason = "llm_error"
        for attempt in (1, 2):
            result = await self._dispatch(task, unit, timeout_s, agent, attempt)
            if result.status == "success":
                self._charge(task, result.cost_usd)
                return agent, result.items, 0.0
            self._charge(task, result.cost_usd)
            if result.status == "timeout":
                raise UnitTimeout(agent)
            last_reason = result.reason or "agent_error"
            if attempt == 1:
                self.metrics.retried(agent, _retry_reason(last_reason))
                if last_reason == "agent_down":
                    others = [
                        a for a in ROUTES[task.department] if a != agent and self.available(a)
                    ]
                    agent = others[0] if others else agent
        raise TaskFailed(_failure_reason(last_reason), f"{agent}: {last_reason}")

    async def _dispatch(
        self, task: Task, unit: WorkUnit, timeout_s: float, agent: str, attempt: int = 1
    ) -> TaskResult:
        request = TaskRequest(
            task_id=task.task_id,
            kind=task.kind,
            department=task.department,
            priority=task.priority,
            start=unit.start,
            end=unit.end,
            depth=unit.depth,
            conversation_id=task.conversation_id,
            deadline_s=timeout_s,
            attempt=attempt,
            faults=self.faults.task_faults(agent),
        )
        self.metrics.dispatched(agent)
        self.stats.dispatches[agent] = self.stats.dispatches.get(agent, 0) + 1
        self.dispatching[agent] = self.dispatching.get(agent, 0) + 1
        try:
            return await self._post(task, request, timeout_s, agent)
        finally:
            self.dispatching[agent] -= 1

    async def _post(
        self, task: Task, request: TaskRequest, timeout_s: float, agent: str
    ) -> TaskResult:
        with tracer.start_as_current_span(f"dispatch_task {agent}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.agent.name", agent)
            span.set_attribute("atalaia.task.id", task.task_id)
            span.set_attribute("atalaia.chunk.depth", request.depth)
            try:
                response = await self.http.post(
                    f"{self.agent_urls[agent]}/tasks",
                    json=request.model_dump(),
                    headers=atalaia.propagation_headers(),
                    timeout=timeout_s + 3.0,
                )
                response.raise_for_status()
                result = TaskResult.model_validate(response.json())
            except httpx.TimeoutException:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                span.set_attribute("error.type", "timeout")
                return TaskResult(agent=agent, status="timeout", reason="timeout")
            except (httpx.HTTPError, ValueError) as exc:
                span.set_status(Status(StatusCode.ERROR, repr(exc)))
                span.set_attribute("error.type", "agent_down")
                log.warning(
                    "dispatch of %s to %s failed: %r",
                    task.task_id,
                    agent,
                    exc,
                    extra={"atalaia.task.id": task.task_id, "error.type": "api"},
                )
                return TaskResult(agent=agent, status="failure", reason="agent_down")
            if result.status != "success":
                span.set_status(Status(StatusCode.ERROR, result.status))
                span.set_attribute("error.type", result.error_type or result.status)
            return result

    def _finish(self, task: Task, status: str, reason: str | None, agent: str | None) -> None:
        duration = task.age()
        self.metrics.task_finished(status, task.department, task.priority, duration, reason)
        self.stats.finished[status] = self.stats.finished.get(status, 0) + 1
        if reason:
            self.stats.failures[reason] = self.stats.failures.get(reason, 0) + 1
        missed = duration > task.sla_s
        if missed and agent:
            self.metrics.sla_missed(agent, task.department)
            self.stats.sla_misses += 1
        span = task.span or trace.INVALID_SPAN
        extra = {"atalaia.task.id": task.task_id}
        with trace.use_span(span, end_on_exit=True):
            span.set_attribute("atalaia.task.outcome", status)
            if agent:
                span.set_attribute("gen_ai.agent.name", agent)
            if reason:
                span.set_attribute("error.type", reason)
                span.set_status(Status(StatusCode.ERROR, reason))
            if status == "success":
                log.info(
                    "task %s done by %s in %.1fs%s",
                    task.task_id,
                    agent,
                    duration,
                    " (SLA missed)" if missed else "",
                    extra=extra,
                )
            else:
                log.error(
                    "task %s failed (%s) after %.1fs",
                    task.task_id,
                    reason,
                    duration,
                    extra={**extra, "error.type": reason},
                )
        self._report_queues()

    # --- FallbackEvents, forwarded to the metrics ---------------------------------------------
    def timed_out(self, agent: str, reason: str) -> None:
        self.metrics.timed_out(agent, reason)

    def task_split(self, chunks: int) -> None:
        self.stats.splits += 1
        self.stats.chunks += chunks
        self.metrics.task_split(chunks)

    def chunk_finished(self, agent: str, duration_s: float) -> None:
        self.metrics.chunk_finished(agent, duration_s)

    def fallback_depth_exceeded(self) -> None:
        self.stats.fallback_exceeded += 1
        self.metrics.fallback_depth_exceeded()

    def merged(self, chunks_combined: int, duplicates_removed: int) -> None:
        self.stats.duplicates_removed += duplicates_removed
        self.metrics.merged(chunks_combined, duplicates_removed)

    async def drain(self) -> None:
        for job in list(self._running):
            job.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


def _retry_reason(agent_reason: str) -> str:
    """An agent's failure reason mapped onto orchestrator_retries_total's closed set."""
    if agent_reason in ("llm_error", "rate_limit", "timeout", "agent_down"):
        return agent_reason
    return "agent_error"


def _failure_reason(agent_reason: str) -> str:
    """An agent's failure reason mapped onto orchestrator_task_failures_total's closed set."""
    if agent_reason in ("llm_error", "rate_limit", "timeout"):
        return "llm_error"
    if agent_reason == "agent_down":
        return "agent_down"
    return "agent_error"
