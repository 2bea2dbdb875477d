"""`atalaia slo` / `atalaia report` without servers: arguments, the PromQL they build from the SLO
spec, their text / Markdown / JSON output, and the errors for a backend that is not there (a closed
loopback port). tests/config/test_insight_backends.py covers a real Prometheus; tests/e2e the
numbers on real data."""

from __future__ import annotations

import argparse
import json
import socket
import time

import pytest

from atalaia_ops import backends
from atalaia_ops.backends import Loki, Prometheus, QueryError, Tempo, Unreachable
from atalaia_ops.cli import build_parser, main
from atalaia_ops.cli_report import Budget, Report, format_report, queries
from atalaia_ops.cli_slo import Burn, SLOStatus, error_ratio_expr, format_table
from atalaia_ops.dashboards.contract import load as load_contract
from atalaia_ops.dashboards.queries import promql_names
from atalaia_ops.slo import load_spec


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- arguments ---------------------------------------------------------------------------------


def test_defaults_match_make_up() -> None:
    args = build_parser().parse_args(["report"])
    assert args.prometheus_url == "http://127.0.0.1:9090"
    assert not hasattr(args, "loki_url")  # the report needs Prometheus only
    assert (args.since, args.format, args.human_rate, args.minutes_per_task) == (
        "24h",
        "text",
        40.0,
        15.0,
    )
    slo = build_parser().parse_args(["slo"])
    assert (slo.window, slo.json, slo.at) == ("30d", False, None)
    parser = argparse.ArgumentParser()
    backends.add_backend_args(parser, loki=True, tempo=True)
    assert parser.parse_args([]).tempo_url == "http://127.0.0.1:3200"


@pytest.mark.parametrize(
    "argv",
    [
        ["slo", "--window", "30x"],
        ["slo", "--window", "0d"],
        ["slo", "--prometheus-url", "127.0.0.1:9090"],
        ["slo", "--at", "yesterday"],
        ["report", "--format", "pdf"],
        ["report", "--human-rate", "-5"],
        ["report", "--minutes-per-task", "zero"],
        ["report", "--prometheus-url", "prometheus:9090"],
        ["report", "--loki-url", "http://127.0.0.1:3100"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_parse_time() -> None:
    assert backends.parse_time("1700000000.5") == 1700000000.5
    assert backends.parse_time("2026-11-21T03:12:00Z") == 1795230720.0
    assert backends.parse_time("2026-11-21T03:12:00") == 1795230720.0  # naive means UTC
    assert backends.duration_to_seconds("7d") == 7 * 86400


# --- the PromQL comes from the spec -------------------------------------------------------------


def test_error_ratio_expr_is_the_specs() -> None:
    slos = {s.name: s for s in load_spec().slos}
    expr = error_ratio_expr(slos["task_success"], "7d")
    assert 'sum(rate(atalaia_agent_tasks_total{atalaia_task_outcome!="success"}[7d]))' in expr
    assert "$window" not in expr
    fresh = error_ratio_expr(slos["freshness"], "1h", "30s")
    assert fresh.startswith("1 - avg_over_time((") and fresh.endswith(")[1h:30s])")
    assert slos["freshness"].sli.good in fresh  # type: ignore[union-attr]


# --- output ------------------------------------------------------------------------------------


def _status(name: str, err: float | None, burning: bool = False) -> SLOStatus:
    budget = 0.05
    return SLOStatus(
        name=name,
        description="d",
        objective=0.95,
        window="30d",
        sli=None if err is None else 1 - err,
        error_ratio=err,
        compliant=None if err is None else 1 - err >= 0.95,
        error_budget=budget,
        error_budget_remaining=None if err is None else 1 - err / budget,
        burn_rates=[
            Burn("1h", "5m", "critical", 14.4, 20.0, 30.0, True, burning),
            Burn("3d", "6h", "warning", 1, None, None, False, False),
        ],
    )


def test_slo_table() -> None:
    at = 1795230720.0
    text = format_table([_status("task_success", 0.1, True), _status("freshness", None)], at)
    lines = text.splitlines()
    assert lines[0] == "SLOs over the last 30d, at 2026-11-21 03:12:00 UTC"
    assert lines[1].split() == [
        "SLO", "objective", "SLI", "met", "budget", "left", "burn", "1h/5m", "burn", "3d/6h",
    ]  # fmt: skip
    assert lines[2].split() == [
        "task_success", "95.0%", "90.000%", "NO", "-100.0%", "20.00/30.00", "!", "n/a",
    ]  # fmt: skip
    assert lines[3].split()[:4] == ["freshness", "95.0%", "no", "data"]


def _report(**kw: object) -> Report:
    base: dict[str, object] = dict(
        at=1795230720.0,
        since="24h",
        tasks_done=1200.0,
        tasks_failed=50.0,
        success_rate=0.96,
        cost_usd=12.5,
        cost_per_task_usd=12.5 / 1200,
        human_rate_usd_per_hour=40.0,
        minutes_per_task=15.0,
        human_hours_saved=300.0,
        human_cost_equivalent_usd=12000.0,
        roi=960.0,
        budgets=[Budget("sales", 0.1, 50.0, 45.0), Budget("research", 0.9, 50.0, 5.0)],
        task_errors={"TimeoutError": 35.0, "RateLimitError": 15.0},
        failure_reasons={"timeout": 30.0, "llm_error": 20.0},
        error_logs={"timeout": 31.0, "(unset)": 4.0},
    )
    base.update(kw)
    return Report(**base)  # type: ignore[arg-type]


def test_report_text() -> None:
    text = format_report(_report(), "text")
    assert text.startswith("Executive report: the 24h up to 2026-11-21 03:12 UTC\n====")
    for fragment in (
        "  Tasks done:         1,200\n",
        "  Success rate:       96.0%\n",
        "  Cost per task:      $0.0104\n",
        "  Human hours saved:  300.0 h (15 min per task)\n",
        "  ROI:                960.0x\n",
        "  sales:                10% left ($45.00 of $50.00)\n",
        "  TimeoutError: 35\n",
        "  timeout: 30\n",
        "- Budget critical: sales below 20 % left",
    ):
        assert fragment in text, (fragment, text)
    assert "Success rate below" not in text


def test_report_says_which_tokens_the_cost_leaves_out() -> None:
    assert "Unpriced tokens" not in format_report(_report(), "text")
    text = format_report(_report(unpriced_tokens={"my-model": 1200.0, "unknown": 30.0}), "text")
    assert "  Unpriced tokens:    1,230 not in the cost (my-model, unknown)\n" in text, text
    q = queries("24h")
    assert "atalaia:genai_model_price_usd_per_token" in q["cost_usd"]
    assert q["unpriced_tokens"].startswith("sum by (gen_ai_request_model) (increase(")


def test_report_says_what_needs_an_orchestrator() -> None:
    """Agents alone: no budgets and no orchestrator reasons, said as such, the rest reported."""
    text = format_report(_report(budgets=None, failure_reasons=None), "text")
    assert "no orchestrator reports budgets" in text, text
    assert "Failed tasks by reason (orchestrator)" not in text
    assert "  TimeoutError: 35\n" in text and "  Tasks done:         1,200\n" in text
    md = format_report(_report(budgets=None, failure_reasons=None), "markdown")
    assert "| (no orchestrator reports budgets" in md


def test_report_markdown_and_json() -> None:
    md = format_report(_report(success_rate=0.5, roi=None), "markdown")
    assert md.startswith("# Executive report")
    assert "| Tasks done | 1,200 |" in md and "| ROI | n/a (no LLM cost) |" in md
    assert "| sales | 10% | $45.00 | $50.00 |" in md
    assert "- Success rate below 90 %" in md
    doc = json.loads(format_report(_report(), "json"))
    assert doc["tasks_done"] == 1200.0 and doc["budgets"][0]["department"] == "sales"
    assert doc["error_logs"] == {"timeout": 31.0, "(unset)": 4.0}


def test_report_queries_use_catalogued_names_only() -> None:
    contract = load_contract()
    metrics: set[str] = set()
    labels: set[str] = set()
    for q in queries("24h").values():
        m, ls = promql_names(q)
        metrics |= m
        labels |= ls
    assert metrics - contract.metrics == set()
    assert labels - contract.labels == set()
    assert "atalaia_agent_tasks_total" in metrics and "atalaia_log_records_total" in metrics


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", [Prometheus, Loki, Tempo])
def test_unreachable_names_backend_url_and_cause(client: type) -> None:
    url = closed_port_url()
    c = client(url, timeout=2)
    started = time.monotonic()
    with pytest.raises(Unreachable) as exc:
        if client is Tempo:
            c.search("{}", 0, 1)
        else:
            c.query("up")
    c.close()
    assert time.monotonic() - started < 5
    assert exc.value.backend == client.backend and exc.value.url == url
    assert str(exc.value) == f"{client.backend} at {url}: {exc.value.cause}"
    assert "unreachable (ConnectError" in exc.value.cause


def test_url_without_scheme_is_an_error() -> None:
    with pytest.raises(QueryError, match="must start with http"):
        Prometheus("localhost:9090")


@pytest.mark.parametrize("command", ["slo", "report"])
def test_commands_exit_1_when_prometheus_is_unreachable(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = closed_port_url()
    assert main([command, "--prometheus-url", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"atalaia {command}: prometheus at {url}: unreachable"), err
