"""Every panel's query returns data from the real backends after the demo fleet has run.

The demo fleet (demo_agents.launcher) runs against the native stack (the session fixture
`fleet_ran` of tests/e2e/conftest.py, shared by every fleet test); a phase of faults makes the
panels that show trouble (errors, retries, timeouts, task splits and fallback, restarts, SLA
misses, integration errors) move. Then every PromQL query of every dashboard runs as an instant
and as a range query, every LogQL query on Loki and every TraceQL query on Tempo, with the
template variables substituted as Grafana would; a parse error or an empty result fails, naming
the dashboard and the panel.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from atalaia.dashboards import as_json
from atalaia.dashboards.queries import Query, panel_queries, variable_defaults, variable_queries

DATA_DEADLINE_S = float(os.environ.get("ATALAIA_DASH_DEADLINE_S", "240"))
AGENT = "Helix"  # gpt-4o: slowed by slow_llm, so it has slow traces


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
