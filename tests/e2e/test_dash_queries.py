"""Every panel's query returns data from the real backends after the demo fleet has run.

The demo fleet (demo_agents.launcher) runs against the native stack (the `native_stack` fixture of
tests/e2e/conftest.py); a phase of faults makes the panels that show trouble (errors, retries,
timeouts, task splits and fallback, restarts, SLA misses, integration errors) move. Then every
PromQL query of every dashboard runs as an instant and as a range query, every LogQL query on Loki
and every TraceQL query on Tempo, with the template variables substituted as Grafana would; a
parse error or an empty result fails, naming the dashboard and the panel.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from atalaia.dashboards import as_json
from atalaia.dashboards.queries import Query, panel_queries, variable_defaults, variable_queries

FAULTS = ("slow_llm", "llm_errors", "retry_loop", "agent_crash", "crm_down")
BASELINE_S = float(os.environ.get("ATALAIA_DASH_BASELINE_S", "60"))
FAULT_S = float(os.environ.get("ATALAIA_DASH_FAULT_S", "120"))
DATA_DEADLINE_S = float(os.environ.get("ATALAIA_DASH_DEADLINE_S", "240"))
AGENT = "Helix"  # gpt-4o: slowed by slow_llm, so it has slow traces


def wait(seconds: float, fleet_url: str) -> None:
    """Let the fleet run, checking that the orchestrator stays up while we wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert httpx.get(f"{fleet_url}/health", timeout=5).status_code == 200
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))


@pytest.fixture(scope="module")
def fleet_ran(native_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[float]:
    """Run the demo fleet: a baseline, then faults, then faults cleared. Yields its start time."""
    launcher = pytest.importorskip("demo_agents.launcher", reason="the demo fleet is not here")
    from demo_agents import fleet_config

    for port in (fleet_config.ORCHESTRATOR_PORT, fleet_config.MOCK_LLM_PORT):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:  # its health checks would answer for us
                pytest.fail(f"port {port} is taken: another demo fleet is running; stop it first")
    os.environ.setdefault("ATALAIA_DEMO_STATE_DIR", str(tmp_path_factory.mktemp("demo-fleet")))
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = native_stack.urls["otlp_grpc"]
    started = time.time()
    state = launcher.run(launcher.Options(load=60, seed=42))
    fleet = state["urls"]["orchestrator"]
    try:
        wait(BASELINE_S, fleet)
        for fault in FAULTS:
            httpx.post(f"{fleet}/faults/{fault}", timeout=10).raise_for_status()
        wait(FAULT_S, fleet)
        httpx.delete(f"{fleet}/faults", timeout=10).raise_for_status()
        wait(30, fleet)
        yield started
    finally:
        launcher.stop()


def empty(result: dict[str, Any]) -> bool:
    data = result.get("data", {})
    if "result" in data:
        return not data["result"]
    return not result.get("traces")


class Backends:
    def __init__(self, urls: dict[str, str], started: float):
        self.urls, self.started = urls, started

    def run(self, q: Query, expr: str) -> list[str]:
        """Problems with this query: HTTP errors (parse errors are 400) and empty results."""
        now = time.time()
        problems = []
        for label, url, params in self.requests(q, expr, now):
            resp = httpx.get(url, params=params, timeout=30)
            if resp.status_code != 200:
                problems.append(f"{label}: HTTP {resp.status_code} {resp.text[:300]}")
            elif empty(resp.json()):
                problems.append(f"{label}: empty result")
        return problems

    def requests(self, q: Query, expr: str, now: float) -> list[tuple[str, str, dict[str, Any]]]:
        start = self.started - 60
        if q.kind == "promql":
            api = self.urls["prometheus"] + "/api/v1/"
            return [
                ("instant", api + "query", {"query": expr, "time": now}),
                (
                    "range",
                    api + "query_range",
                    {"query": expr, "start": start, "end": now, "step": 15},
                ),
            ]
        if q.kind == "logql":
            api = self.urls["loki"] + "/loki/api/v1/"
            ns = {"start": int(start * 1e9), "end": int(now * 1e9)}
            if q.instant:
                return [("instant", api + "query", {"query": expr, "time": ns["end"]})]
            return [("range", api + "query_range", {"query": expr, **ns, "limit": 100})]
        return [
            (
                "search",
                self.urls["tempo"] + "/api/search",
                {"q": expr, "start": int(start), "end": int(now) + 1, "limit": 20},
            )
        ]


def all_queries(agent: str, range_s: float) -> list[tuple[Query, str]]:
    out = []
    for board in as_json().values():
        values = {
            **variable_defaults(board),
            "agent": agent,
            "__range": f"{max(60, int(range_s))}s",
        }
        for q in [*panel_queries(board), *variable_queries(board)]:
            out.append((q, q.substituted(values)))
    return out


def test_every_panel_query_returns_data(native_stack: Any, fleet_ran: float) -> None:
    backends = Backends(native_stack.urls, fleet_ran)
    queries = all_queries(AGENT, time.time() - fleet_ran)
    assert {q.kind for q, _ in queries} == {"promql", "logql", "traceql"}
    pending: dict[int, list[str]] = {i: ["not run"] for i in range(len(queries))}
    deadline = time.monotonic() + DATA_DEADLINE_S
    while pending and time.monotonic() < deadline:
        for i in list(pending):
            q, expr = queries[i]
            problems = backends.run(q, expr)
            if problems:
                pending[i] = problems
            else:
                del pending[i]
        if pending:
            time.sleep(10)  # Tempo's and Prometheus's writes land every 15 s
    report = [
        f"{queries[i][0].dashboard} / {queries[i][0].panel}: {queries[i][1]}\n    "
        + "; ".join(problems)
        for i, problems in sorted(pending.items())
    ]
    assert not report, f"{len(report)} of {len(queries)} queries failed:\n" + "\n".join(report)
    # The same checks do fail: on a series nobody writes, and on a query that does not parse.
    missing = Query("x", "no such series", "promql", "atalaia_no_such_series", False)
    assert backends.run(missing, missing.expr) == ["instant: empty result", "range: empty result"]
    broken = Query("x", "broken", "logql", '{gen_ai_agent_name="Helix"} |= ', False)
    assert "range: HTTP 400" in backends.run(broken, broken.expr)[0]
