"""`atalaia report`: the executive report of seed 003, from real queries.

Tasks done and failed, success rate, LLM cost and cost per successful task, human hours saved and
ROI (at configurable rates), budget left per department, and the top failure reasons: from the
orchestrator's `reason` label and from error logs in Loki (grouped by their `error_type`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from atalaia.backends import (
    BackendError,
    Loki,
    NoData,
    Prometheus,
    add_backend_args,
    now_or,
    parse_duration,
)

EXIT_BACKEND, EXIT_NO_DATA = 1, 3
# Error logs of every service; `detected_level` is Loki's normalised severity.
ERROR_LOGS = '{service_name=~".+"} | detected_level=~"(?i)error|critical|fatal"'


def queries(since: str) -> dict[str, str]:
    """The PromQL behind every number of the report (the e2e test checks against these names)."""
    return {
        "tasks_done": f'sum(increase(orchestrator_tasks_total{{status="success"}}[{since}]))',
        "tasks_failed": f'sum(increase(orchestrator_tasks_total{{status="failure"}}[{since}]))',
        "cost_usd": f"sum(increase(atalaia_llm_cost_usd_total[{since}]))",
        "failure_reasons": (
            f"sum by (reason) (increase(orchestrator_task_failures_total[{since}])) > 0"
        ),
        "budget_remaining": "max by (atalaia_department) (orchestrator_budget_remaining_ratio)",
        "budget_limit": "max by (atalaia_department) (orchestrator_budget_limit_usd)",
        "budget_spent": "max by (atalaia_department) (orchestrator_budget_spent_usd)",
    }


def log_query(since: str) -> str:
    return f"sum by (error_type) (count_over_time({ERROR_LOGS} [{since}]))"


@dataclass
class Budget:
    department: str
    remaining_ratio: float
    limit_usd: float | None
    spent_usd: float | None


@dataclass
class Report:
    at: float
    since: str
    tasks_done: float
    tasks_failed: float
    success_rate: float | None
    cost_usd: float
    cost_per_task_usd: float | None
    human_rate_usd_per_hour: float
    minutes_per_task: float
    human_hours_saved: float
    human_cost_equivalent_usd: float
    roi: float | None  # human cost equivalent / LLM cost
    budgets: list[Budget]
    failure_reasons: dict[str, float]  # orchestrator's reason label -> failed tasks
    error_logs: dict[str, int] | None  # error_type -> error log lines; None: Loki failed
    warnings: list[str] = field(default_factory=list)


def _value(prom: Prometheus, q: str, at: float) -> float:
    try:
        return prom.scalar(q, at)
    except NoData:
        return 0.0


def build(
    prom: Prometheus,
    loki: Loki | None,
    since: str,
    at: float,
    human_rate: float,
    minutes_per_task: float,
) -> Report:
    q = queries(since)
    total = prom.query(f"sum(increase(orchestrator_tasks_total[{since}]))", at)
    if not total:
        raise NoData(
            prom.backend,
            prom.url,
            f"no orchestrator_tasks_total series in the {since} before "
            f"{_when(at)}: is the orchestrator being scraped?",
        )
    done, failed = _value(prom, q["tasks_done"], at), _value(prom, q["tasks_failed"], at)
    cost = _value(prom, q["cost_usd"], at)
    finished = done + failed
    hours = done * minutes_per_task / 60
    human_cost = hours * human_rate
    reasons = {
        s.labels.get("reason", "unknown"): s.value for s in prom.query(q["failure_reasons"], at)
    }
    limits = {
        s.labels.get("atalaia_department", ""): s.value for s in prom.query(q["budget_limit"], at)
    }
    spent = {
        s.labels.get("atalaia_department", ""): s.value for s in prom.query(q["budget_spent"], at)
    }
    budgets = sorted(
        (
            Budget(dep, s.value, limits.get(dep), spent.get(dep))
            for s in prom.query(q["budget_remaining"], at)
            if (dep := s.labels.get("atalaia_department", ""))
        ),
        key=lambda b: b.remaining_ratio,
    )
    report = Report(
        at=at,
        since=since,
        tasks_done=done,
        tasks_failed=failed,
        success_rate=done / finished if finished > 0 else None,
        cost_usd=cost,
        cost_per_task_usd=cost / done if done > 0 else None,
        human_rate_usd_per_hour=human_rate,
        minutes_per_task=minutes_per_task,
        human_hours_saved=hours,
        human_cost_equivalent_usd=human_cost,
        roi=human_cost / cost if cost > 0 else None,
        budgets=budgets,
        failure_reasons=dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        error_logs=None,
    )
    if loki is not None:
        try:
            logs = loki.query(log_query(since), at)
            counts = {s.labels.get("error_type") or "(unset)": round(s.value) for s in logs}
            report.error_logs = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        except BackendError as e:
            report.warnings.append(f"failure reasons from logs unavailable: {e}")
    return report


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"${v:,.{digits}f}"


def _lines(r: Report, md: bool) -> list[str]:
    rate = "n/a" if r.success_rate is None else f"{r.success_rate * 100:.1f}%"
    roi = "n/a (no LLM cost)" if r.roi is None else f"{r.roi:,.1f}x"
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        (
            "Production",
            [
                ("Tasks done", f"{r.tasks_done:,.0f}"),
                ("Tasks failed", f"{r.tasks_failed:,.0f}"),
                ("Success rate", rate),
            ],
        ),
        (
            "Cost",
            [
                ("LLM cost", _money(r.cost_usd)),
                ("Cost per task", _money(r.cost_per_task_usd, 4)),
            ],
        ),
        (
            "Value",
            [
                (
                    "Human hours saved",
                    f"{r.human_hours_saved:,.1f} h ({r.minutes_per_task:g} min per task)",
                ),
                (
                    "Human equivalent",
                    f"{_money(r.human_cost_equivalent_usd)} "
                    f"(at {_money(r.human_rate_usd_per_hour)}/h)",
                ),
                ("ROI", roi),
            ],
        ),
    ]
    title = f"Executive report: the {r.since} up to {_when(r.at)}"
    out = [f"# {title}" if md else title, "" if md else "=" * len(title)]
    for name, rows in sections:
        if md:
            out += ["", f"## {name}", "", "| | |", "|---|---:|"]
            out += [f"| {k} | {v} |" for k, v in rows]
        else:
            out += ["", name.upper()]
            out += [f"  {k + ':':<20}{v}" for k, v in rows]
    out += ["", "## Budget left today" if md else "BUDGET LEFT TODAY"]
    if md:
        out += ["", "| department | left | spent | limit |", "|---|---:|---:|---:|"]
    if not r.budgets:
        out.append("no budget series" if not md else "| (no budget series) | | | |")
    for b in r.budgets:
        left = f"{b.remaining_ratio * 100:.0f}%"
        if md:
            out.append(
                f"| {b.department} | {left} | {_money(b.spent_usd)} | {_money(b.limit_usd)} |"
            )
        else:
            out.append(
                f"  {b.department + ':':<20}{left:>5} left ({_money(b.spent_usd)} of "
                f"{_money(b.limit_usd)})"
            )
    out += ["", "## Top failure reasons" if md else "TOP FAILURE REASONS"]
    if md:
        out.append("")
    if r.failure_reasons:
        out.append("Failed tasks by reason (orchestrator):")
        out += [
            f"{'-' if md else ' '} {k}: {v:,.0f}" for k, v in list(r.failure_reasons.items())[:5]
        ]
    else:
        out.append("No failed tasks.")
    if r.error_logs is None:
        out.append("Error logs: unavailable (see warnings).")
    elif r.error_logs:
        out.append("Error log lines by error type (Loki):")
        out += [f"{'-' if md else ' '} {k}: {v:,}" for k, v in list(r.error_logs.items())[:5]]
    else:
        out.append("No error log lines.")
    alerts = []
    if r.budgets and min(b.remaining_ratio for b in r.budgets) < 0.2:
        low = ", ".join(b.department for b in r.budgets if b.remaining_ratio < 0.2)
        alerts.append(f"Budget critical: {low} below 20 % left")
    if r.success_rate is not None and r.success_rate < 0.9:
        alerts.append("Success rate below 90 %")
    out += ["", "## Attention" if md else "ATTENTION"]
    if md:
        out.append("")
    out += [f"- {a}" for a in alerts] or ["- Nothing needs attention."]
    if r.warnings:
        out += ["", "Warnings:", *(f"- {w}" for w in r.warnings)]
    return out


def format_report(r: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(asdict(r), indent=2)
    return "\n".join(_lines(r, md=fmt == "markdown"))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _run(args: argparse.Namespace) -> int:
    at = now_or(args.at)
    try:
        with Prometheus(args.prometheus_url) as prom, Loki(args.loki_url) as loki:
            report = build(prom, loki, args.since, at, args.human_rate, args.minutes_per_task)
    except NoData as e:
        print(f"atalaia report: no data: {e}", file=sys.stderr)
        return EXIT_NO_DATA
    except BackendError as e:
        print(f"atalaia report: {e}", file=sys.stderr)
        return EXIT_BACKEND
    print(format_report(report, args.format))
    for w in report.warnings:
        print(f"atalaia report: {w}", file=sys.stderr)
    return EXIT_BACKEND if report.warnings else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report",
        help="executive report: tasks, success rate, cost, hours saved, ROI, budgets, failures",
        description="The executive report (seed 003) over --since, from Prometheus and Loki. "
        "Exit 1 when a backend fails (the report is still printed if only Loki failed), "
        "3 when Prometheus has no task data for the period.",
    )
    p.add_argument("--since", type=parse_duration, default="24h", help="period (default 24h)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument(
        "--human-rate",
        type=_positive,
        default=40.0,
        help="USD per hour of the human work a task replaces (default 40)",
    )
    p.add_argument(
        "--minutes-per-task",
        type=_positive,
        default=15.0,
        help="minutes a person would take per task (default 15)",
    )
    add_backend_args(p, loki=True)
    p.set_defaults(func=_run)
