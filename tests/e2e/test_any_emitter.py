"""Any agent lights up Atalaia: agents instrumented by other libraries fill the dashboards.

Four small agents, each in its own virtualenv with one emitter's real PyPI packages (the official
openai-v2 instrumentation, OpenLLMetry/traceloop, OpenLIT, OpenInference; pinned in
tests/golden/<emitter>/requirements.txt), make real `openai` (and, where the emitter instruments
it, `anthropic`) calls against the mock provider of tests/golden/mock_llm.py: chat, streamed chat
with and without usage, embeddings, a 429 and a 500. Nothing of ours runs in them, and no
orchestrator runs: this module runs before the session's demo fleet starts (see conftest's
`pytest_collection_modifyitems`). Then, per agent:

- token totals by type equal what the mock reported (the emitters' known gaps applied, as in
  tests/config/test_normalise_golden.py), and the stack's cost equals tokens x price to 0.1 %;
- each failed call is counted once, under one normalised error type per kind;
- at least 90 % of the agent panels of the Fleet TV, LLM tokens & cost and Agent drill-down
  dashboards have data; a panel allowed to stay empty says in its description that it needs an
  orchestrator or the agent's process metrics.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from atalaia.prices import PriceTable
from atalaia_ops.cost import cost_usd
from atalaia_ops.dashboards import as_json
from atalaia_ops.dashboards.queries import panel_queries, variable_defaults
from tests.config.test_normalise_golden import LLM_OPERATIONS, TOKENS, canonical_truth
from tests.e2e.backends import Prometheus, eventually
from tests.golden import mock_llm, record

EMITTERS = ("openai-v2", "traceloop", "openlit", "openinference")
RUNS = 3  # each agent runs its script this many times, RUN_GAP_S apart: rates have points
RUN_GAP_S = 15.0
BOARDS = ("atalaia-fleet-tv", "atalaia-llm-cost", "atalaia-agent")
ALLOWED_EMPTY = "Needs an orchestrator"
COVERAGE = 0.9


@dataclass
class Agent:
    emitter: str
    name: str
    mock: mock_llm.MockLLM = field(default_factory=mock_llm.MockLLM)
    error: str = ""
    started: float = 0.0


def run_agent(agent: Agent, otlp_http: str) -> None:
    """Run the emitter's agent script RUNS times against its own mock provider."""
    python = record.venv(agent.emitter) / "bin" / "python"
    server = mock_llm.serve(agent.mock)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(record.cache_dir()),
        "OTEL_SERVICE_NAME": agent.name,
        "GOLDEN_AGENT": agent.name,  # the name of its invoke_agent spans, where it has them
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        "GOLDEN_OPENAI_URL": f"{base}/v1",
        "GOLDEN_ANTHROPIC_URL": base,
        "TRACELOOP_TELEMETRY": "false",
        "TRACELOOP_TRACE_CONTENT": "false",
        "OPENLIT_DISABLE_TELEMETRY": "true",
        "ANTHROPIC_OPEN_TELEMETRY": "false",  # beside an instrumentation it doubles every call
    }
    agent.started = time.time()
    try:
        for i in range(RUNS):
            proc = subprocess.run(
                [str(python), str(record.HERE / "agent.py"), agent.emitter],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if proc.returncode != 0:
                agent.error = f"exit {proc.returncode}: {proc.stderr[-2000:]}"
                return
            if i < RUNS - 1:
                time.sleep(RUN_GAP_S)  # spacing the runs, not waiting for anything
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def agents(native_stack: Any) -> dict[str, Agent]:
    # Build (or reuse) every emitter's venv first, one at a time, with their own progress lines.
    for emitter in EMITTERS:
        record.venv(emitter)
    ran = {e: Agent(e, f"byo-{e}") for e in EMITTERS}
    threads = [
        threading.Thread(target=run_agent, args=(a, native_stack.urls["otlp_http"]))
        for a in ran.values()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = {e: a.error for e, a in ran.items() if a.error}
    assert not failed, failed
    return ran


def llm_truth(agent: Agent) -> list[dict[str, Any]]:
    return [
        canonical_truth(agent.emitter, call)
        for call in agent.mock.ground_truth()
        if call["operation"] in LLM_OPERATIONS
    ]


def counters(prometheus: Prometheus, promql: str, label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in prometheus.query(promql)}


def settled(prometheus: Prometheus, promql: str, label: str, want: dict[str, float]) -> dict:
    """The counters once they reach `want` (they arrive within a flush or two), else the last."""
    seen: dict[str, Any] = {}

    def probe() -> bool:
        seen["last"] = counters(prometheus, promql, label)
        return seen["last"] == want

    with contextlib.suppress(AssertionError):  # the caller's assertion says what differs
        eventually(probe, timeout=60, what=promql)
    return dict(seen.get("last", {}))


@pytest.mark.parametrize("emitter", EMITTERS)
def test_tokens_equal_what_the_provider_reported(
    agents: dict[str, Agent], prometheus: Prometheus, emitter: str
) -> None:
    agent = agents[emitter]
    want: Counter[str] = Counter()
    for truth in llm_truth(agent):
        for kind, attribute in TOKENS.items():
            want[kind] += int(truth[attribute] or 0)
    want = Counter({k: v for k, v in want.items() if v})
    promql = (
        "sum by (gen_ai_token_type) (last_over_time(atalaia_genai_tokens_total"
        f'{{gen_ai_agent_name="{agent.name}"}}[30m]))'
    )
    got = settled(prometheus, promql, "gen_ai_token_type", dict(want))
    assert got == dict(want), (emitter, got, dict(want))


@pytest.mark.parametrize("emitter", EMITTERS)
def test_cost_is_tokens_times_price(
    agents: dict[str, Agent], prometheus: Prometheus, emitter: str
) -> None:
    agent = agents[emitter]
    table = PriceTable.load()
    want = 0.0
    for t in llm_truth(agent):
        price = table.lookup(str(t["gen_ai.request.model"]))
        assert price is not None, t["gen_ai.request.model"]
        want += price.cost(
            int(t[TOKENS["input"]] or 0),
            int(t[TOKENS["output"]] or 0),
            int(t[TOKENS["cache_read"]] or 0),
            int(t[TOKENS["cache_creation"]] or 0),
            int(t[TOKENS["reasoning"]] or 0),
        )
    promql = cost_usd("30m", matchers=f'gen_ai_agent_name="{agent.name}"')

    seen: dict[str, Any] = {}

    def close() -> float | None:
        found = prometheus.query(promql)
        got = float(found[0]["value"][1]) if found else 0.0
        seen["got"] = got
        return got if abs(got - want) <= 0.001 * want else None

    try:
        eventually(close, timeout=90, what=f"{emitter}'s cost, {want:.6f} USD")
    except AssertionError as e:
        by_model = prometheus.query(
            cost_usd("30m", by=("gen_ai_request_model", "gen_ai_token_type"),
                     matchers=f'gen_ai_agent_name="{agent.name}"')
        )  # fmt: skip
        raise AssertionError(f"{e}; got {seen.get('got')}; by model and type: {by_model}") from e


@pytest.mark.parametrize("emitter", EMITTERS)
def test_each_failure_is_one_normalised_error_type(
    agents: dict[str, Agent], prometheus: Prometheus, emitter: str
) -> None:
    agent = agents[emitter]
    want = Counter(str(t["error.type"]) for t in llm_truth(agent) if t["error.type"])
    assert want, "the script makes failing calls"
    promql = (
        "sum by (error_type) (last_over_time(atalaia_genai_calls_total"
        f'{{gen_ai_agent_name="{agent.name}", error_type!=""}}[30m]))'
    )
    got = settled(prometheus, promql, "error_type", dict(want))
    assert got == dict(want), (emitter, got)
    assert set(got) <= {"rate_limit", "server_error"}, got


def panels_with_data(
    prometheus: Prometheus, agent: str, since: float
) -> tuple[list[str], list[str], list[str]]:
    """(panels with data, panels allowed to be empty that are, panels empty that must not be)."""
    now = time.time()
    filled, allowed, empty = [], [], []
    for board in as_json().values():
        uid = board["uid"]
        if uid not in BOARDS:
            continue
        values = {**variable_defaults(board), "agent": agent, "__range": f"{int(now - since)}s"}
        by_panel: dict[str, list[Any]] = {}
        for q in panel_queries(board):
            by_panel.setdefault(q.panel, []).append(q)
        panels = [*board["panels"], *(c for p in board["panels"] for c in p.get("panels", []))]
        descriptions = {p.get("title"): p.get("description", "") for p in panels}
        for title, queries in by_panel.items():
            if any(q.kind != "promql" for q in queries):
                continue  # logs and traces panels read Loki and Tempo (compose only)
            has = False
            for q in queries:
                expr = q.substituted(values)
                params: dict[str, Any] = {"query": expr}
                if q.instant:
                    resp = httpx.get(f"{prometheus.url}/api/v1/query", params=params, timeout=30)
                else:
                    # Steps counted back from now, as Grafana's last point is: the newest
                    # recording-rule sample is inside the range, not after its last step.
                    start = now - (now - since) // 15 * 15
                    params |= {"start": start, "end": now, "step": 15}
                    resp = httpx.get(
                        f"{prometheus.url}/api/v1/query_range", params=params, timeout=30
                    )
                assert resp.status_code == 200, (uid, title, expr, resp.text[:300])
                if resp.json()["data"]["result"]:
                    has = True
            name = f"{uid} / {title}"
            if has:
                filled.append(name)
            elif ALLOWED_EMPTY in descriptions.get(title, ""):
                allowed.append(name)
            else:
                empty.append(name)
    return filled, allowed, empty


def test_the_dashboards_fill_for_every_emitter(
    agents: dict[str, Agent], prometheus: Prometheus
) -> None:
    report = {}
    for agent in agents.values():
        # The cost panels need the price recording rules' first evaluation (up to a minute
        # after the first tokens): wait for it, as the cost test does.
        priced = cost_usd("30m", matchers=f'gen_ai_agent_name="{agent.name}"')
        eventually(lambda q=priced: prometheus.query(q) or None, timeout=90, what="priced tokens")
    for emitter, agent in agents.items():
        filled, allowed, empty = panels_with_data(prometheus, agent.name, agent.started - 60)
        total = len(filled) + len(empty)
        report[emitter] = (len(filled), total, empty)
        print(
            f"{emitter}: {len(filled)}/{total} agent panels with data; empty: {empty}; "
            f"allowed to be (orchestrator only): {allowed}"
        )
    short = {e: r for e, r in report.items() if r[0] < COVERAGE * r[1]}
    assert not short, short
