"""The orchestrator's HTTP API.

GET  /health                      liveness and which agents are up
GET  /metrics                     Prometheus exposition (scraped by Prometheus)
GET  /metrics/summary             the same state as JSON (seed 001)
PUT  /agents/{name}/heartbeat     an agent is alive: recorded in SQLite (503 when it cannot be)
POST /events/{kind}               webhooks (seed 001), validated: 404 unknown kind, 422 bad body
GET  /faults                      active faults and the catalogue of switches
POST /faults/{name}?agent=A       switch a fault on
DELETE /faults[/{name}]           switch all faults (or one) off
PUT  /load                        change the load knob (tasks per minute)
POST /agents/{name}/restart       restart one agent process by hand

Every request but health checks and scrapes is measured (RED: `http.server.request.duration` by
route and status) and traced by the OpenTelemetry FastAPI instrumentation (`instrument_api`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from demo_agents import fleet_config
from demo_agents.http_server import instrument_api, native_telemetry_off
from demo_agents.orchestrator.events import EVENTS, LLMCostEvent
from demo_agents.orchestrator.faults import FAULTS, UnknownFault
from demo_agents.orchestrator.service import Orchestrator

log = logging.getLogger("demo_agents.orchestrator.api")
# When an agent should try again after a refused heartbeat (its loop beats every 5 s anyway).
HEARTBEAT_RETRY_AFTER_S = 5


class Load(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    tasks_per_min: float = Field(ge=0, le=600)


def known_agent(name: str) -> str:
    try:
        return fleet_config.agent(name).name
    except KeyError as exc:
        raise HTTPException(422, str(exc.args[0])) from exc


def create_app(
    orchestrator: Orchestrator,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> FastAPI:
    """The API in front of `orchestrator`, measured and traced on the given OpenTelemetry
    providers (default: the global ones, which `atalaia.instrument()` sets)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await orchestrator.start()
        try:
            yield
        finally:
            await orchestrator.stop()

    app = FastAPI(title="Atalaia demo orchestrator", lifespan=lifespan, **native_telemetry_off())
    app.state.orchestrator = orchestrator
    metrics = orchestrator.metrics

    @app.get("/health")
    async def health() -> dict[str, Any]:
        supervisor = orchestrator.supervisor
        return {
            "status": "ok",
            "agents_up": {a: supervisor.up.get(a, False) for a in supervisor.agents},
        }

    @app.get("/metrics")
    async def prometheus_metrics(request: Request) -> Response:
        # OpenMetrics when the scraper asks for it (as Prometheus does), else the text format.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(orchestrator.registry), media_type=content_type)

    @app.get("/metrics/summary")
    async def summary() -> dict[str, Any]:
        return await asyncio.to_thread(orchestrator.summary)

    @app.put("/agents/{name}/heartbeat")
    async def heartbeat(name: str) -> dict[str, Any]:
        agent = known_agent(name)
        try:
            # SQLite waits up to its busy timeout for a lock: off the event loop.
            last_seen = await asyncio.to_thread(orchestrator.store.beat, agent)
        except sqlite3.Error as exc:
            log.warning(
                "heartbeat of %s not recorded: %s", agent, exc,
                extra={"gen_ai.agent.name": agent, "error.type": "database"},
            )  # fmt: skip
            raise HTTPException(
                503,
                f"the heartbeat database is unavailable: {exc}",
                headers={"Retry-After": str(HEARTBEAT_RETRY_AFTER_S)},
            ) from exc
        return {"agent": agent, "last_seen": last_seen}

    @app.post("/events/{kind}", status_code=202)
    async def event(kind: str, body: Any = Body(default=None)) -> dict[str, Any]:  # noqa: B008
        model = EVENTS.get(kind)
        if model is None:
            raise HTTPException(404, f"unknown event kind {kind!r}; known: {', '.join(EVENTS)}")
        if not isinstance(body, dict):
            raise HTTPException(422, "the body must be a JSON object")
        try:
            payload = model.model_validate(body)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
                for e in exc.errors()
            ]
            return JSONResponse({"detail": problems}, status_code=422)  # type: ignore[return-value]
        data = payload.model_dump()
        if "agent" in data:
            data["agent"] = known_agent(data["agent"])
        if kind == "task_split":
            metrics.task_split(data["chunks"])
        elif kind == "timeout":
            metrics.timed_out(data["agent"], data["reason"])
        elif kind == "chunk_execution":
            metrics.chunk_finished(data["agent"], data["duration_s"])
        elif kind == "merge_deduplication":
            metrics.merged(data["chunks_combined"], data["duplicates_removed"])
        elif kind == "fallback_depth_exceeded":
            metrics.fallback_depth_exceeded()
        elif isinstance(payload, LLMCostEvent):
            state = orchestrator.budgets.charge(payload.department, payload.cost_usd)
            metrics.set_budget(state.department, state.limit_usd, state.spent_usd)
        return {"accepted": kind, "event": data}

    @app.get("/faults")
    async def faults() -> dict[str, Any]:
        return {
            "active": [f.as_dict() for f in orchestrator.faults.active.values()],
            "available": FAULTS,
        }

    @app.post("/faults/{name}")
    async def fault_on(name: str, agent: str | None = Query(default=None)) -> dict[str, Any]:
        if name not in FAULTS:
            raise HTTPException(404, f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if agent is not None:
            agent = known_agent(agent)
        try:
            fault = await orchestrator.fault_on(name, agent)
        except UnknownFault as exc:  # pragma: no cover - checked above
            raise HTTPException(404, f"unknown fault {exc}") from exc
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"could not switch {name} on: {exc!r}") from exc
        return {"active": fault.as_dict(), "what": FAULTS[name]}

    @app.delete("/faults")
    async def faults_off() -> dict[str, Any]:
        try:
            cleared = await orchestrator.faults_off()
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"could not clear the LLM faults: {exc!r}") from exc
        return {"cleared": cleared}

    @app.delete("/faults/{name}")
    async def fault_off(name: str) -> dict[str, Any]:
        try:
            cleared = await orchestrator.faults_off(name)
        except UnknownFault as exc:
            raise HTTPException(404, f"unknown fault {name!r}; known: {', '.join(FAULTS)}") from exc
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"could not clear {name}: {exc!r}") from exc
        return {"cleared": cleared}

    @app.put("/load")
    async def load(body: Load) -> dict[str, float]:
        orchestrator.load_per_min = body.tasks_per_min
        log.info("load set to %.1f tasks/min", body.tasks_per_min)
        return {"tasks_per_min": body.tasks_per_min}

    @app.post("/agents/{name}/restart")
    async def restart(name: str) -> dict[str, Any]:
        agent = known_agent(name)
        if not orchestrator.settings.spawn_agents:
            raise HTTPException(409, "this orchestrator does not run the agent processes")
        pid = await asyncio.to_thread(orchestrator.processes.restart, agent)
        return {"restarted": agent, "pid": pid}

    return instrument_api(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
