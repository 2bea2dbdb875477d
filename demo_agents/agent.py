"""One demo agent process (Helix, Sigma, Atlas or Nova), instrumented with `atalaia`.

    python -m demo_agents.agent --name Helix [--port 8010] [--seed 42]

`POST /tasks` runs a task inside `track_task`, continuing the orchestrator's trace from the W3C
`traceparent` header. A background loop sends the heartbeat to the orchestrator's API (`PUT
/agents/{name}/heartbeat`, which records it in SQLite) and, once recorded, to `atalaia.heartbeat()`.
`/admin/crash` and `/admin/cpu_hog` are the agent side of the orchestrator's fault switches; a
hang marker file in the state directory (agent_hang) stops the heartbeat, across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request

import atalaia
from demo_agents import agent_jobs, fleet_config
from demo_agents.agent_llm import LLM, LLMFailed
from demo_agents.agent_tools import ConnectionPool, ResultCache, ToolError
from demo_agents.cpu_hog import Workbench
from demo_agents.http_server import fastapi_telemetry
from demo_agents.instrumentation import instrument
from demo_agents.protocol import HogRequest, LookupRequest, TaskRequest, TaskResult

log = logging.getLogger("demo_agents.agent")

HEARTBEAT_EVERY_S = 5.0
# The orchestrator may wait up to SQLite's busy timeout (5 s) before it answers.
HEARTBEAT_TIMEOUT_S = 10.0
CRASH_EXIT_CODE = 70


class Agent:
    def __init__(
        self, spec: fleet_config.AgentSpec, seed: int, state_dir: Path, orchestrator_url: str
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.heartbeat_url = f"{orchestrator_url}/agents/{spec.name}/heartbeat"
        self.llm = LLM(fleet_config.llm_base_url(), spec.model, spec.provider)
        self.cache = ResultCache()
        self.http = httpx.AsyncClient()
        self.workbench = Workbench()
        self.pool = (
            ConnectionPool(state_dir / f"{spec.name.lower()}-reports.sqlite", "reports")
            if spec.job == "report"
            else None
        )
        self.hang_marker = fleet_config.hang_marker(state_dir, spec.name)

    async def heartbeat_loop(self) -> None:
        while True:
            if self.hang_marker.exists():
                log.error(
                    "%s is hung (agent_hang fault): no heartbeat", self.spec.name,
                    extra={"error.type": "internal"},
                )  # fmt: skip
            else:
                try:
                    response = await self.http.put(self.heartbeat_url, timeout=HEARTBEAT_TIMEOUT_S)
                    response.raise_for_status()
                    atalaia.heartbeat()
                except httpx.HTTPError as exc:
                    # Not the agent's failure: the orchestrator restarts it if it stays unheard.
                    log.warning(
                        "heartbeat not recorded by the orchestrator: %r", exc,
                        extra={"error.type": "api"},
                    )  # fmt: skip
                    atalaia.record_error("api")
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    async def handle(self, task: TaskRequest, headers: dict[str, str]) -> TaskResult:
        rng = random.Random(f"{self.seed}:{task.task_id}:{task.start}:{task.end}:{task.attempt}")
        ctx = agent_jobs.JobContext(
            self.spec.name,
            self.llm,
            rng,
            self.cache,
            self.http,
            fleet_config.agent("Helix").url,
            self.pool,
        )
        result = TaskResult(agent=self.spec.name, status="success")
        with atalaia.track_task(
            task.kind,
            task_id=task.task_id,
            department=task.department,
            conversation_id=task.conversation_id,
            carrier=headers,
        ) as handle:
            handle.set_attribute("atalaia.task.priority", task.priority)
            handle.set_attribute("atalaia.chunk.depth", task.depth)
            log.info(
                "task %s: %d items (depth %d)",
                task.task_id,
                task.end - task.start,
                task.depth,
                extra={"atalaia.task.id": task.task_id},
            )
            try:
                async with asyncio.timeout(task.deadline_s):
                    result.items = await agent_jobs.run(ctx, self.spec.job, task)
            except TimeoutError:
                atalaia.record_timeout("task")
                handle.outcome = "timeout"
                result.status, result.reason = "timeout", "timeout"
                log.warning(
                    "task %s timed out after %.0fs",
                    task.task_id,
                    task.deadline_s,
                    extra={"atalaia.task.id": task.task_id, "error.type": "timeout"},
                )
            except LLMFailed as exc:
                handle.set_error("llm")
                result.status, result.error_type, result.reason = "failure", "llm", exc.reason
                log.error(
                    "task %s failed: %s",
                    task.task_id,
                    exc,
                    extra={"atalaia.task.id": task.task_id, "error.type": "llm"},
                )
            except ToolError as exc:
                kind = exc.error_type
                handle.set_error(kind)
                result.status, result.error_type = "failure", kind
                result.reason = kind if kind == "validation" else "tool_error"
                log.error(
                    "task %s failed: %s",
                    task.task_id,
                    exc,
                    extra={"atalaia.task.id": task.task_id, "error.type": kind},
                )
            except (httpx.HTTPError, OSError) as exc:
                atalaia.record_error("api")
                handle.set_error("api")
                result.status, result.error_type, result.reason = "failure", "api", "tool_error"
                log.error(
                    "task %s failed calling a service: %r",
                    task.task_id,
                    exc,
                    extra={"atalaia.task.id": task.task_id, "error.type": "api"},
                )
        result.cost_usd = ctx.cost_usd
        return result

    async def close(self) -> None:
        self.workbench.stop_hog()
        await self.http.aclose()
        await self.llm.close()
        if self.pool is not None:
            self.pool.close()


def create_app(agent: Agent) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        beats = asyncio.create_task(agent.heartbeat_loop())
        yield
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await agent.close()

    app = FastAPI(
        title=f"Atalaia demo agent {agent.spec.name}", lifespan=lifespan, **fastapi_telemetry()
    )

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {
            "status": "ok",
            "agent": agent.spec.name,
            "job": agent.spec.job,
            "model": agent.spec.model,
            "cpu_hog": agent.workbench.hogging,
        }

    @app.post("/tasks")
    async def tasks(task: TaskRequest, request: Request) -> TaskResult:
        return await agent.handle(task, dict(request.headers))

    @app.post("/lookup")
    def lookup(body: LookupRequest) -> dict[str, str]:
        # A plain def: FastAPI runs it in a worker thread, where it waits for the workbench.
        return {"topic": body.topic, "digest": agent.workbench.lookup(body.topic)}

    @app.post("/admin/cpu_hog")
    async def cpu_hog(body: HogRequest) -> dict[str, object]:
        if body.on:
            seconds = agent.workbench.start_hog(body.duration_s)
            return {"cpu_hog": True, "duration_s": seconds}
        await asyncio.to_thread(agent.workbench.stop_hog)
        return {"cpu_hog": False}

    @app.post("/admin/crash")
    async def crash() -> dict[str, object]:
        log.critical("agent_crash fault: %s exits now", agent.spec.name)
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, os._exit, CRASH_EXIT_CODE)
        return {"crashing": agent.spec.name, "exit_code": CRASH_EXIT_CODE}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one demo agent.")
    parser.add_argument("--name", required=True, choices=[a.name for a in fleet_config.AGENTS])
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    spec = fleet_config.agent(args.name)
    telemetry = instrument(spec.name.lower(), agent_name=spec.name)
    try:
        agent = Agent(spec, args.seed, fleet_config.state_dir(), fleet_config.orchestrator_url())
        app = create_app(agent)
        port = args.port or spec.port
        uvicorn.run(app, host=fleet_config.BIND_HOST, port=port, log_level="warning")
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
