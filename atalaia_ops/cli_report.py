"""`atalaia report`: the executive report of seed 003, from real queries to Prometheus.

Tasks done and failed (every agent's `invoke_agent` spans, counted by the collector), success
rate, LLM cost (every emitter's tokens, priced by the stack: atalaia_ops.cost; tokens of models the
price table lacks are listed, not priced) and cost per successful task, human hours saved and
ROI (at configurable rates),
and the top failure reasons: by the failed tasks' `error_type`, and error log records by their
`error_type` (also counted by the collector). An orchestrator that exposes Atalaia's
orchestrator series adds its budgets and its own failure reasons; without one those sections
say so.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from atalaia_ops.backends import (
    BackendError,
    NoData,
    Prometheus,
    add_backend_args,
    now_or,
    parse_duration,
)
from atalaia_ops.cost import cost_usd, total, unpriced_tokens

EXIT_BACKEND, EXIT_NO_DATA = 1, 3
TASKS = "atalaia_agent_tasks_total"  # derived from invoke_agent spans (docs/telemetry.md)
DONE = TASKS + '{atalaia_task_outcome="success"}'
FAILED = TASKS + '{atalaia_task_outcome!="success"}'


def queries(since: str) -> dict[str, str]:
    """The PromQL behind every number of the report (the e2e test checks against these names)."""
    return {
        # Totals are exact differences (cost.total), like the cost they are divided into.
        "tasks": f"sum({total(TASKS, since)})",
        "tasks_done": f"sum({total(DONE, since)})",
        "tasks_failed": f"sum({total(FAILED, since)})",
        "cost_usd": cost_usd(since),  # every emitter's tokens, priced by the stack
        "unpriced_tokens": f"{unpriced_tokens(since)} > 0",
        "task_errors": (f"sum by (error_type) ({total(FAILED, since)}) > 0"),
        "error_logs": (
            "sum by (error_type) ("
            + total('atalaia_log_records_total{atalaia_log_severity="error"}', since)
            + ") > 0"
        ),
        "failure_reasons": (
            f"sum by (reason) ({total('orchestrator_task_failures_total', since)}) > 0"
        ),
        "budget_remaining": "max by (atalaia_department) (orchestrator_budget_remaining_ratio)",
        "budget_limit": "max by (atalaia_department) (orchestrator_budget_limit_usd)",
        "budget_spent": "max by (atalaia_department) (orchestrator_budget_spent_usd)",
    }


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
    budgets: list[Budget] | None  # None: no orchestrator reports budgets
    task_errors: dict[str, float]  # error_type of the failed tasks -> tasks
    failure_reasons: dict[str, float] | None  # orchestrator's reason -> tasks; None: none runs
    error_logs: dict[str, float]  # error_type -> error log records
    # Model ids whose tokens the price table does not price -> tokens: not in cost_usd.
    unpriced_tokens: dict[str, float] = field(default_factory=dict)


def _value(prom: Prometheus, q: str, at: float) -> float:
    try:
        return prom.scalar(q, at)
    except NoData:
        return 0.0


def _by(prom: Prometheus, q: str, label: str, at: float) -> dict[str, float]:
    """label value -> value, largest first; a missing label is "(unset)"."""
    out = {s.labels.get(label) or "(unset)": s.value for s in prom.query(q, at)}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def build(
    prom: Prometheus,
    since: str,
    at: float,
    human_rate: float,
    minutes_per_task: float,
) -> Report:
    q = queries(since)
    if not prom.query(q["tasks"], at):
        raise NoData(
            prom.backend,
            prom.url,
            f"no {TASKS} series in the {since} before {_when(at)}: have the agents sent "
            "invoke_agent spans to the collector?",
        )
    done, failed = _value(prom, q["tasks_done"], at), _value(prom, q["tasks_failed"], at)
    cost = _value(prom, q["cost_usd"], at)
    finished = done + failed
    hours = done * minutes_per_task / 60
    human_cost = hours * human_rate
    # What only an orchestrator knows: budgets and its own failure reasons.
    orchestrated = bool(prom.query("count(orchestrator_tasks_total)", at))
    limits = _by(prom, q["budget_limit"], "atalaia_department", at)
    spent = _by(prom, q["budget_spent"], "atalaia_department", at)
    remaining = prom.query(q["budget_remaining"], at)
    budgets = sorted(
        (
            Budget(dep, s.value, limits.get(dep), spent.get(dep))
            for s in remaining
            if (dep := s.labels.get("atalaia_department", ""))
        ),
        key=lambda b: b.remaining_ratio,
    )
    return Report(
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
        budgets=budgets if remaining else None,
        task_errors=_by(prom, q["task_errors"], "error_type", at),
        failure_reasons=_by(prom, q["failure_reasons"], "reason", at) if orchestrated else None,
        error_logs=_by(prom, q["error_logs"], "error_type", at),
        unpriced_tokens=_by(prom, q["unpriced_tokens"], "gen_ai_request_model", at),
    )


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"${v:,.{digits}f}"


def _unpriced(tokens: dict[str, float]) -> str:
    """`1,200 (my-model, unknown)`: tokens the cost leaves out, and their model ids."""
    ids = ", ".join(list(tokens)[:3]) + (", ..." if len(tokens) > 3 else "")
    return f"{sum(tokens.values()):,.0f} not in the cost ({ids})"


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
                *([("Unpriced tokens", _unpriced(r.unpriced_tokens))] if r.unpriced_tokens else []),
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
    bullet = "-" if md else " "
    out += ["", "## Budget left today" if md else "BUDGET LEFT TODAY"]
    if md:
        out += ["", "| department | left | spent | limit |", "|---|---:|---:|---:|"]
    if r.budgets is None:
        none = "no orchestrator reports budgets (orchestrator_budget_* series)"
        out.append(f"| ({none}) | | | |" if md else f"  {none}")
    for b in r.budgets or []:
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
    if r.task_errors:
        out.append("Failed tasks by error type:")
        out += [f"{bullet} {k}: {v:,.0f}" for k, v in list(r.task_errors.items())[:5]]
    else:
        out.append("No failed tasks.")
    if r.failure_reasons:
        out.append("Failed tasks by reason (orchestrator):")
        out += [f"{bullet} {k}: {v:,.0f}" for k, v in list(r.failure_reasons.items())[:5]]
    if r.error_logs:
        out.append("Error log records by error type:")
        out += [f"{bullet} {k}: {v:,.0f}" for k, v in list(r.error_logs.items())[:5]]
    else:
        out.append("No error log records.")
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
        with Prometheus(args.prometheus_url) as prom:
            report = build(prom, args.since, at, args.human_rate, args.minutes_per_task)
    except NoData as e:
        print(f"atalaia report: no data: {e}", file=sys.stderr)
        return EXIT_NO_DATA
    except BackendError as e:
        print(f"atalaia report: {e}", file=sys.stderr)
        return EXIT_BACKEND
    print(format_report(report, args.format))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report",
        help="executive report: tasks, success rate, cost, hours saved, ROI, budgets, failures",
        description="The executive report (seed 003) over --since, from Prometheus. "
        "Exit 1 when Prometheus fails, 3 when it has no task data for the period.",
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
    add_backend_args(p)
    p.set_defaults(func=_run)
