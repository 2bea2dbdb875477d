"""Every panel's PromQL query returns data from the real Prometheus after the demo fleet has run.

The demo fleet (demo_agents.launcher) runs against the native stack (the session fixture
`fleet_ran` of tests/e2e/conftest.py, shared by every fleet test); a phase of faults makes the
panels that show trouble (errors, retries, timeouts, task splits and fallback, restarts, SLA
misses, integration errors) move. Then every PromQL query of every dashboard runs as an instant
and as a range query, with the template variables substituted as Grafana would; a parse error or
an empty result fails, naming the dashboard and the panel.

The LogQL and TraceQL panels (log and trace tables, drill-downs) read Loki and Tempo, which exist
here only as container images: Grafana's own grammars parse each of them
(tests/config/test_dash_queries_parse.py), and what they read is what the collector sends to Loki
and Tempo, checked field by field in tests/e2e/test_stack_pipeline.py and
tests/e2e/test_fleet_catalogue.py.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import httpx

from atalaia_ops.dashboards import as_json
from atalaia_ops.dashboards.queries import Query, panel_queries, variable_defaults, variable_queries

DATA_DEADLINE_S = float(os.environ.get("ATALAIA_DASH_DEADLINE_S", "240"))
AGENT = "Helix"  # gpt-4o: slowed by slow_llm, so it has slow traces


def empty(result: dict[str, Any]) -> bool:
    return not result.get("data", {}).get("result")


class Backends:
    def __init__(self, urls: dict[str, str], started: float):
        self.urls, self.started = urls, started

    def run(self, q: Query, expr: str) -> list[str]:
        """Problems with this query: HTTP errors (parse errors are 400) and empty results. An
        instant panel (a stat, a bar gauge) must have a value now; a time series panel must have
        points over the run (an error rate is rightly empty once the faults are cleared)."""
        now = time.time()
        problems = []
        for label, url, params in self.requests(q, expr, now):
            if label == "instant" and not q.instant:
                resp = httpx.get(url, params=params, timeout=30)
                if resp.status_code != 200:
                    problems.append(f"{label}: HTTP {resp.status_code} {resp.text[:300]}")
                continue
            resp = httpx.get(url, params=params, timeout=30)
            if resp.status_code != 200:
                problems.append(f"{label}: HTTP {resp.status_code} {resp.text[:300]}")
            elif empty(resp.json()):
                problems.append(f"{label}: empty result")
        return problems

    def requests(self, q: Query, expr: str, now: float) -> list[tuple[str, str, dict[str, Any]]]:
        api = self.urls["prometheus"] + "/api/v1/"
        return [
            ("instant", api + "query", {"query": expr, "time": now}),
            (
                "range",
                api + "query_range",
                {"query": expr, "start": self.started - 60, "end": now, "step": 15},
            ),
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
            # Loki's and Tempo's own metrics exist only where they run (compose); their names are
            # checked against the pinned releases' sources (docs/loki-tempo-metrics.yaml).
            if q.kind == "promql" and not re.search(r"\b(loki|tempo)_", q.expr):
                out.append((q, q.substituted(values)))
    return out


def test_every_panel_query_returns_data(native_stack: Any, fleet_ran: float) -> None:
    """Every query must parse; every panel must have data in at least one of its queries (a
    panel of errors by source, LLM, tool and task, has none from a source that never failed)."""
    backends = Backends(native_stack.urls, fleet_ran)
    queries = all_queries(AGENT, time.time() - fleet_ran)
    assert len(queries) > 50, "the dashboards lost their PromQL panels"
    panels: dict[tuple[str, str], list[int]] = {}
    for i, (q, _) in enumerate(queries):
        panels.setdefault((q.dashboard, q.panel), []).append(i)
    pending: dict[tuple[str, str], list[str]] = {key: ["not run"] for key in panels}
    deadline = time.monotonic() + DATA_DEADLINE_S
    while pending and time.monotonic() < deadline:
        for key in list(pending):
            results = [(i, backends.run(*queries[i])) for i in panels[key]]
            broken = [f"{queries[i][1]}: {'; '.join(p)}" for i, p in results if "HTTP" in str(p)]
            if broken:
                pending[key] = broken
            elif all(p for _, p in results):
                pending[key] = [f"{queries[i][1]}: {'; '.join(p)}" for i, p in results]
            else:
                del pending[key]
        if pending:
            time.sleep(10)  # metrics arrive every 15 s
    report = [
        f"{dashboard} / {panel}:\n    " + "\n    ".join(problems)
        for (dashboard, panel), problems in sorted(pending.items())
    ]
    assert not report, f"{len(report)} of {len(panels)} panels failed:\n" + "\n".join(report)
    # The same checks do fail: on a series nobody writes, and on a query that does not parse.
    missing = Query("x", "no such series", "promql", "atalaia_no_such_series", True)
    assert backends.run(missing, missing.expr) == ["instant: empty result", "range: empty result"]
    series = Query("x", "no such series", "promql", "atalaia_no_such_series", False)
    assert backends.run(series, series.expr) == ["range: empty result"]
    broken = Query("x", "broken", "promql", "sum(rate(atalaia_agent_tasks_total[1m])", False)
    assert "instant: HTTP 400" in backends.run(broken, broken.expr)[0]
