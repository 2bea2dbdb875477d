"""`atalaia slo` and `atalaia report` against the native stack after the session's fleet run.

Both commands are evaluated at one fixed instant `AT` (a minute in the past, so every sample up to
it has arrived) over a window that covers the whole run, and their numbers are compared with
queries written here by hand, not built from the commands' own code:

- events SLIs as ratios of `increase()` (the commands use the spec's `rate()` ratios);
- time-slice SLIs (freshness, cost per task) as a range query of the `good` expression on the
  same minute grid as the command's subquery, averaged here in Python;
- the report's totals as direct metric queries, its derived numbers recomputed from them, and its
  error-log counts against the error log records the collector sent to Loki.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import pytest
import yaml

from atalaia_ops.cli import main
from atalaia_ops.cost import cost_usd
from atalaia_ops.slo import SPEC_PATH
from tests.e2e.backends import Prometheus, Store, attributes
from tests.e2e.conftest import FleetRun

WINDOW = "1h"
WINDOW_S = 3600
SLICE_S = 60
REL = 1e-6

HAND_EVENTS = {
    "availability": (
        "sum(increase(http_server_request_duration_seconds_count"
        '{{service_name="orchestrator", http_response_status_code=~"5.."}}[{w}])) or vector(0)',
        'sum(increase(http_server_request_duration_seconds_count{{service_name="orchestrator"}}'
        "[{w}]))",
        "errors",
    ),
    "task_availability": (
        'sum(increase(orchestrator_task_failures_total{{reason=~"agent_down|fallback_exhausted"}}'
        "[{w}])) or vector(0)",
        "sum(increase(orchestrator_tasks_total[{w}]))",
        "errors",
    ),
    "task_success": (
        'sum(increase(atalaia_agent_tasks_total{{atalaia_task_outcome!="success"}}[{w}]))'
        " or vector(0)",
        "sum(increase(atalaia_agent_tasks_total[{w}]))",
        "errors",
    ),
    "latency_p50": (
        'sum(increase(atalaia_agent_task_duration_seconds_bucket{{le=~"30(\\\\.0)?"}}[{w}]))',
        "sum(increase(atalaia_agent_task_duration_seconds_count[{w}]))",
        "good",
    ),
    "latency_p99": (
        'sum(increase(atalaia_agent_task_duration_seconds_bucket{{le=~"120(\\\\.0)?"}}[{w}]))',
        "sum(increase(atalaia_agent_task_duration_seconds_count[{w}]))",
        "good",
    ),
}
HAND_SLICES = {
    "freshness": """
        avg(
          time() - max by (gen_ai_agent_name) (
            max_over_time(atalaia_agent_heartbeat_timestamp_seconds[1h])
            or max_over_time(orchestrator_agent_last_heartbeat_timestamp_seconds[1h])
          ) <= bool 120
        )""",
    # The stack's cost: every emitter's tokens x the price rules (atalaia_ops.cost, docs/cost.md).
    "cost_per_task": f"""
        ({cost_usd("5m")}
           / sum(increase(atalaia_agent_tasks_total{{atalaia_task_outcome="success"}}[5m] anchored))
           <= bool 0.15)
        and on ()
        ({cost_usd("5m")} > 0
           or sum(increase(
                atalaia_agent_tasks_total{{atalaia_task_outcome="success"}}[5m] anchored)) > 0)""",
}
OBJECTIVES = {
    "availability": 0.995,
    "task_availability": 0.995,
    "task_success": 0.95,
    "latency_p50": 0.5,
    "latency_p99": 0.99,
    "freshness": 0.98,
    "cost_per_task": 0.9,
}


@pytest.fixture(scope="module")
def at(fleet_run: FleetRun) -> float:
    """A fixed instant a minute ago (not on a whole second), with the run inside WINDOW."""
    instant = math.floor(time.time()) - 60 + 0.5
    assert instant - fleet_run.started < WINDOW_S - 120, "the run does not fit the window"
    assert instant > fleet_run.started + 60, "the fleet has not run long enough"
    return instant


def one(prometheus: Prometheus, promql: str, at: float) -> float | None:
    import httpx

    r = httpx.get(
        f"{prometheus.url}/api/v1/query", params={"query": promql, "time": at}, timeout=30
    )
    r.raise_for_status()
    result = r.json()["data"]["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def hand_error_ratio(prometheus: Prometheus, name: str, window: str, at: float) -> float | None:
    if name in HAND_EVENTS:
        num_q, total_q, kind = HAND_EVENTS[name]
        num = one(prometheus, num_q.format(w=window), at)
        total = one(prometheus, total_q.format(w=window), at)
        if not total:
            return None
        ratio = (num or 0.0) / total
        return ratio if kind == "errors" else 1 - ratio
    import httpx

    seconds = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600}.get(window)
    seconds = seconds or {"1d": 86400, "3d": 259200}[window]
    # The subquery [window:1m] evaluates at multiples of 60 s in (at - window, at].
    start = math.floor((at - seconds) / SLICE_S) * SLICE_S + SLICE_S
    end = math.floor(at / SLICE_S) * SLICE_S
    r = httpx.get(
        f"{prometheus.url}/api/v1/query_range",
        params={"query": HAND_SLICES[name], "start": start, "end": end, "step": SLICE_S},
        timeout=30,
    )
    r.raise_for_status()
    values = [float(v) for s in r.json()["data"]["result"] for _, v in s["values"]]
    return 1 - sum(values) / len(values) if values else None


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, f"exit {rc}: {err}"
    return json.loads(out)


def slo_mismatches(doc: dict[str, Any], prometheus: Prometheus, at: float) -> list[str]:
    """Where `atalaia slo --json` disagrees with the hand-written PromQL, for every number."""
    slos = {s["name"]: s for s in doc["slos"]}
    assert set(slos) == set(OBJECTIVES)
    wrong = []
    for name, s in slos.items():
        budget = 1 - OBJECTIVES[name]
        assert math.isclose(s["objective"], OBJECTIVES[name])
        expected = hand_error_ratio(prometheus, name, doc["window"], at)
        assert expected is not None, f"{name}: no data for the hand-written check"
        if not close(s["error_ratio"], expected):
            wrong.append(f"{name}: error ratio {s['error_ratio']} != hand-computed {expected}")
            continue
        if expected is None:
            continue
        sli = 1 - expected
        for key, want in {"sli": sli, "error_budget_remaining": 1 - expected / budget}.items():
            if not close(s[key], want):
                wrong.append(f"{name}: {key} {s[key]} != {want}")
        if s["compliant"] != (sli >= OBJECTIVES[name]):
            wrong.append(f"{name}: compliant {s['compliant']} but SLI {sli}")
        for b in s["burn_rates"]:
            for side in ("long", "short"):
                err = hand_error_ratio(prometheus, name, b[f"{side}_window"], at)
                want = None if err is None else err / budget
                if not close(b[f"{side}_burn_rate"], want):
                    wrong.append(
                        f"{name} {b['long_window']}/{b['short_window']}: {side} burn "
                        f"{b[f'{side}_burn_rate']} != {want}"
                    )
    return wrong


def test_slo_matches_hand_written_promql(
    native_stack, fleet_run: FleetRun, prometheus: Prometheus, at: float, capsys
) -> None:
    url = native_stack.urls["prometheus"]
    argv = ["slo", "--json", "--window", WINDOW, "--prometheus-url", url, "--at", str(at)]
    doc = run_json(capsys, argv)
    wrong = slo_mismatches(doc, prometheus, at)
    assert not wrong, "\n".join(wrong)
    slos = {s["name"]: s for s in doc["slos"]}
    # The fault tour made tasks fail: the task-success SLI saw it.
    assert slos["task_success"]["error_ratio"] > 0
    # The heartbeats the API refused before the tour (503) burned availability.
    assert slos["availability"]["error_ratio"] > 0
    # The recording rules agree with the hand-written PromQL for the events SLIs, compared at
    # the rule's own evaluation time (its sample is up to 15 s older than `at`, more on a busy
    # machine, and the error ratio moves fast during the fault tour). They count with rate(),
    # the hand queries with increase(), and a rule misses a sample that arrived after it ran:
    # close, not equal. Time-slice SLIs sample differently and are not compared.
    for name in HAND_EVENTS:
        recorded = slos[name]["recorded_error_ratio"]
        series = f'slo:sli_error:ratio_rate{WINDOW}{{slo="{name}"}}'
        evaluated = one(prometheus, f"timestamp({series})", at)
        assert recorded is not None and evaluated is not None, (name, recorded)
        assert recorded == one(prometheus, series, at), name
        computed = hand_error_ratio(prometheus, name, WINDOW, evaluated)
        assert computed is not None and math.isclose(recorded, computed, abs_tol=0.01), (
            name,
            recorded,
            computed,
        )

    # The default text table has one row per SLO.
    assert main(["slo", "--window", WINDOW, "--prometheus-url", url, "--at", str(at)]) == 0
    table = capsys.readouterr().out
    for name in OBJECTIVES:
        assert any(line.startswith(name + " ") for line in table.splitlines()), table


def test_slo_check_can_fail(
    native_stack, fleet_run: FleetRun, prometheus: Prometheus, at: float, capsys, tmp_path
) -> None:
    """A spec whose task-success SLI counts successes as errors: the hand check catches it there
    and only there (so `atalaia slo` does read the spec it is given)."""
    spec = yaml.safe_load(SPEC_PATH.read_text())
    for slo in spec["slos"]:
        if slo["name"] == "task_success":
            slo["sli"]["events"]["errors"] = slo["sli"]["events"]["errors"].replace(
                'atalaia_task_outcome!="success"', 'atalaia_task_outcome="success"'
            )
    tampered = tmp_path / "slos.yaml"
    tampered.write_text(yaml.safe_dump(spec))
    url = native_stack.urls["prometheus"]
    argv = ["slo", "--json", "--window", WINDOW, "--prometheus-url", url, "--at", str(at)]
    doc = run_json(capsys, [*argv, "--spec", str(tampered)])
    wrong = slo_mismatches(doc, prometheus, at)
    assert wrong and all(w.startswith("task_success: error ratio") for w in wrong), wrong


def direct(prometheus: Prometheus, promql: str, label: str, at: float) -> dict[str, float]:
    import httpx

    r = httpx.get(
        f"{prometheus.url}/api/v1/query", params={"query": promql, "time": at}, timeout=30
    )
    r.raise_for_status()
    return {
        s["metric"].get(label) or "(unset)": float(s["value"][1])
        for s in r.json()["data"]["result"]
    }


def test_report_matches_direct_queries(
    native_stack, fleet_run: FleetRun, prometheus: Prometheus, store: Store, at: float, capsys
) -> None:
    urls = native_stack.urls
    base = ["report", "--since", WINDOW, "--prometheus-url", urls["prometheus"], "--at", str(at)]
    doc = run_json(capsys, [*base, "--format", "json", "--human-rate", "50"])
    tasks = "atalaia_agent_tasks_total"
    done = one(
        prometheus,
        f'sum(increase({tasks}{{atalaia_task_outcome="success"}}[{WINDOW}] anchored))',
        at,
    )
    failed = one(
        prometheus,
        f'sum(increase({tasks}{{atalaia_task_outcome!="success"}}[{WINDOW}] anchored))',
        at,
    )
    cost = one(prometheus, cost_usd(WINDOW), at)
    assert done and failed and cost, (done, failed, cost)
    assert close(doc["tasks_done"], done) and close(doc["tasks_failed"], failed)
    assert close(doc["cost_usd"], cost)
    assert close(doc["success_rate"], done / (done + failed))
    assert close(doc["cost_per_task_usd"], cost / done)
    assert close(doc["human_hours_saved"], done * 15 / 60)
    assert close(doc["roi"], done * 15 / 60 * 50 / cost)

    # The orchestrator runs here: its own failure reasons and its budgets are in the report.
    reasons = direct(
        prometheus,
        f"sum by (reason) (increase(orchestrator_task_failures_total[{WINDOW}] anchored))",
        "reason",
        at,
    )
    assert set(doc["failure_reasons"]) == {k for k, v in reasons.items() if v > 0}
    for k, v in doc["failure_reasons"].items():
        assert close(v, reasons[k]), k
    budgets = direct(prometheus, "orchestrator_budget_remaining_ratio", "atalaia_department", at)
    assert {b["department"]: b["remaining_ratio"] for b in doc["budgets"]} == budgets

    # Failed tasks by error type, and error log records by error type: the collector's counts.
    errors = direct(
        prometheus,
        "sum by (error_type) (increase("
        f'{tasks}{{atalaia_task_outcome!="success"}}[{WINDOW}] anchored))',
        "error_type",
        at,
    )
    assert doc["task_errors"] == {k: v for k, v in errors.items() if v > 0} and errors, errors
    # Independently of Prometheus: every error log record the collector forwarded to Loki, by
    # its error.type. The report's counts are exact counter differences over the window, and
    # the records are those with a time in it: they differ only by the records at its edges.
    sent: dict[str, int] = {}
    for _, record in store.logs():
        t = int(record.get("timeUnixNano") or record.get("observedTimeUnixNano") or 0) / 1e9
        if record.get("severityNumber", 0) >= 17 and at - WINDOW_S <= t <= at:
            kind = str(attributes(record).get("error.type") or "(unset)")
            sent[kind] = sent.get(kind, 0) + 1
    assert doc["error_logs"] and set(doc["error_logs"]) <= set(sent), (doc["error_logs"], sent)
    for kind, n in doc["error_logs"].items():
        assert 0.7 * sent[kind] - 2 <= n <= 1.1 * sent[kind] + 1, (kind, n, sent[kind])
    # The orchestrator logs every failed task at ERROR with its reason as error_type.
    assert set(doc["failure_reasons"]) <= set(sent), (doc["failure_reasons"], sent)

    assert main([*base, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Executive report") and f"| Tasks done | {done:,.0f} |" in md, md
    assert main([*base]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"Tasks done:\s+{re.escape(f'{done:,.0f}')}\n", text), text
