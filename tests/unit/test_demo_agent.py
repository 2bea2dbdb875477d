"""One agent process's app, served over HTTP, against the real mock LLM: the task continues the
caller's trace, the LLM and tool calls are spans of that trace, the signals land in the SDK's
in-memory readers, the heartbeat reaches the real orchestrator's API and its SQLite, and the
retry_loop fault loops and fails."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from atalaia.testing import Captured, in_memory
from demo_agents import fleet_config
from demo_agents.agent import Agent, create_app
from demo_agents.agent_tools import (
    ConnectionPool,
    DatabaseUnavailable,
    IntegrationError,
    crm_create_lead,
    sql_report,
)
from demo_agents.http_server import free_port, serve_in_thread
from demo_agents.mock_llm import create_app as create_mock_llm
from demo_agents.orchestrator.app import create_app as create_orchestrator
from demo_agents.orchestrator.service import Orchestrator, Settings


@pytest.fixture(scope="module")
def captured() -> Iterator[Captured]:
    cap = in_memory("atlas", agent_name="Atlas")
    cap.telemetry.activate()
    yield cap
    cap.telemetry.shutdown()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with serve_in_thread(create_mock_llm(seed=5)) as llm:
        yield f"{llm}/v1"


@pytest.fixture(scope="module")
def orchestrator(llm_url: str, state_dir: Path) -> Iterator[tuple[Orchestrator, str]]:
    """A real orchestrator that only listens: it starts no agents and sends no tasks."""
    nowhere = {a.name: f"http://127.0.0.1:{free_port()}" for a in fleet_config.AGENTS}
    settings = Settings(
        llm_url=llm_url,
        state_dir=state_dir,
        spawn_agents=False,
        generate=False,
        agent_urls=nowhere,
    )
    orchestrator = Orchestrator(settings)
    with serve_in_thread(create_orchestrator(orchestrator)) as url:
        yield orchestrator, url


@pytest.fixture(scope="module")
def agent_url(
    captured: Captured, llm_url: str, state_dir: Path, orchestrator: tuple[Orchestrator, str]
) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATALAIA_DEMO_LLM_URL", llm_url)
        agent = Agent(fleet_config.agent("Atlas"), 5, state_dir, orchestrator[1])
        with serve_in_thread(create_app(agent)) as url:
            yield url


def task(task_id: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "task_id": task_id,
        "kind": "research",
        "department": "research",
        "start": 0,
        "end": 6,
        "deadline_s": 20,
    }
    return {**body, **extra}


def test_task_continues_the_callers_trace(agent_url: str, captured: Captured) -> None:
    caller = TracerProvider().get_tracer("orchestrator-under-test")
    with caller.start_as_current_span("dispatch_task Atlas", kind=SpanKind.CLIENT) as parent:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        response = httpx.post(f"{agent_url}/tasks", json=task("t-trace"), headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "success"
    assert result["items"] == [f"t-trace:{i}" for i in range(6)]
    assert result["cost_usd"] > 0

    trace_id = parent.get_span_context().trace_id
    (invoke,) = [s for s in captured.spans("invoke_agent Atlas") if s.context.trace_id == trace_id]
    assert invoke.kind == SpanKind.SERVER
    assert invoke.parent is not None and invoke.parent.span_id == parent.get_span_context().span_id
    assert invoke.attributes["atalaia.task.id"] == "t-trace"
    assert invoke.attributes["atalaia.task.outcome"] == "success"
    in_trace = [s for s in captured.spans() if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert "chat llama-3.1-8b-instant" in names
    assert "execute_tool web_search" in names
    assert "execute_tool validate_output" in names
    chat = next(s for s in in_trace if s.name == "chat llama-3.1-8b-instant")
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    assert chat.parent is not None and chat.parent.span_id == invoke.context.span_id
    assert trace.format_trace_id(trace_id) == format(trace_id, "032x")


def test_signals_reach_the_meter(agent_url: str, captured: Captured) -> None:
    response = httpx.post(f"{agent_url}/tasks", json=task("t-metrics"))
    assert response.json()["status"] == "success"
    # Tasks, tokens and cost travel on spans (the collector derives their series).
    invoke = next(s for s in captured.spans() if s.name.startswith("invoke_agent"))
    assert invoke.attributes["atalaia.task.outcome"] == "success"
    calls = [s for s in captured.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert calls and all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in calls)
    cache = {
        p.attributes["atalaia.cache.result"] for p in captured.points("atalaia.cache.requests")
    }
    assert "miss" in cache
    assert sum(s.attributes["atalaia.llm.cost.usd"] for s in calls) > 0


def test_retry_loop_fault_retries_then_fails_as_validation(
    agent_url: str, captured: Captured
) -> None:
    def validation_retries() -> float:
        return sum(
            p.value
            for p in captured.points("atalaia.retries")
            if p.attributes["atalaia.retry.reason"] == "validation"
        )

    before = validation_retries()
    response = httpx.post(f"{agent_url}/tasks", json=task("t-loop", faults=["retry_loop"]))
    result = response.json()
    assert result["status"] == "failure"
    assert result["error_type"] == "validation"
    assert validation_retries() - before == 7  # 8 attempts, 7 retries


def test_bad_task_is_422_naming_the_field(agent_url: str) -> None:
    response = httpx.post(f"{agent_url}/tasks", json=task("t-bad", department="marketing"))
    assert response.status_code == 422 and "department" in response.text
    response = httpx.post(f"{agent_url}/tasks", json=task("t-bad", faults=["meteor"]))
    assert response.status_code == 422 and "faults" in response.text


def test_heartbeat_reaches_the_orchestrator(
    agent_url: str, orchestrator: tuple[Orchestrator, str], captured: Captured
) -> None:
    """Over HTTP (`PUT /agents/Atlas/heartbeat`) into the orchestrator's SQLite, and then into
    the agent's own heartbeat gauge."""
    store = orchestrator[0].store
    deadline = time.monotonic() + 10
    while store.last_seen("Atlas") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    last = store.last_seen("Atlas")
    assert last is not None and abs(time.time() - last) < 30
    deadline = time.monotonic() + 10
    while not captured.points("atalaia.agent.heartbeat.timestamp") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert captured.points("atalaia.agent.heartbeat.timestamp")


def test_db_down_empties_the_pool_and_fails_checkouts(captured: Captured, tmp_path: Path) -> None:
    def connections() -> dict[str, float]:
        return {
            p.attributes["db.client.connection.state"]: p.value
            for p in captured.points("db.client.connection.count")
            if p.attributes["db.client.connection.pool.name"] == "test-pool"
        }

    pool = ConnectionPool(tmp_path / "reports.sqlite", "test-pool", size=3)
    assert sql_report(pool, "billing", 4) == 1
    assert connections() == {"idle": 3, "used": 0}
    pool.set_online(False)
    assert connections() == {"idle": 0, "used": 0}
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        sql_report(pool, "billing", 4)
    pool.set_online(True)
    assert sql_report(pool, "billing", 4) == 2  # the data survived the outage
    assert connections() == {"idle": 3, "used": 0}
    pool.close()


def test_crm_down_loses_the_lead_and_counts_integration_errors(
    agent_url: str, captured: Captured
) -> None:
    def crm_errors() -> float:
        return sum(p.value for p in captured.points("atalaia.integration.errors"))

    before = crm_errors()
    with pytest.raises(IntegrationError):
        asyncio.run(crm_create_lead(random.Random(1), "conv-1", crm_down=True))
    assert crm_errors() == before + 1
    assert asyncio.run(crm_create_lead(random.Random(1), "conv-1", crm_down=False)) == "lead-conv-1"
