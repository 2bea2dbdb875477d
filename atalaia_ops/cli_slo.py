"""`atalaia slo`: every SLO's SLI, compliance, error budget left and burn rates, from PromQL.

The SLIs come from the same spec that generates the recording and alerting rules
(`prometheus/slos.yaml`, loaded by `atalaia_ops.slo.load_spec`): an events SLI is its error-ratio
expression over the window; a time-slice SLI is one minus the average of its `good` expression,
evaluated as a subquery every `--slice-step` over the window (the rules evaluate it every 15 s and
average the recorded series; the two agree up to that sampling). Nothing is read back from the
recorded series except, when the window is one the rules record, as a cross-check in `--json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from atalaia_ops.backends import (
    BackendError,
    NoData,
    Prometheus,
    add_backend_args,
    now_or,
    parse_duration,
)
from atalaia_ops.slo import SLO, SPEC_PATH, WINDOWS, EventsSLI, Spec, SpecError, load_spec

EXIT_BACKEND, EXIT_NO_DATA = 1, 3


def error_ratio_expr(slo: SLO, window: str, slice_step: str = "1m") -> str:
    """PromQL for the SLO's error ratio over `window` (0 = perfect), from the spec."""
    if isinstance(slo.sli, EventsSLI):
        return slo.sli.error_ratio(window)
    return f"1 - avg_over_time((\n{slo.sli.good}\n)[{window}:{slice_step}])"


@dataclass
class Burn:
    long_window: str
    short_window: str
    severity: str
    threshold: float  # burn-rate factor the alert fires above
    long_burn_rate: float | None
    short_burn_rate: float | None
    can_fire: bool  # False when threshold x budget >= 1: the rules leave this pair out
    burning: bool  # both windows above the threshold: the alert's condition holds now


@dataclass
class SLOStatus:
    name: str
    description: str
    objective: float
    window: str
    sli: float | None  # good share over the window; None: no data
    error_ratio: float | None
    compliant: bool | None
    error_budget: float
    error_budget_remaining: float | None  # share of the window's budget left; < 0 overspent
    burn_rates: list[Burn]
    recorded_error_ratio: float | None = None  # the rules' series, when the window is recorded


def _ratio(prom: Prometheus, expr: str, at: float) -> float | None:
    try:
        value = prom.scalar(expr, at)
    except NoData:
        return None
    return None if value != value else value  # NaN (0/0): no events in the window


def evaluate(
    prom: Prometheus, spec: Spec, window: str, at: float, slice_step: str = "1m"
) -> list[SLOStatus]:
    cache: dict[tuple[str, str], float | None] = {}

    def err(slo: SLO, w: str) -> float | None:
        if (slo.name, w) not in cache:
            cache[(slo.name, w)] = _ratio(prom, error_ratio_expr(slo, w, slice_step), at)
        return cache[(slo.name, w)]

    recorded: dict[str, float] = {}
    if window in WINDOWS:
        for s in prom.query(f"slo:sli_error:ratio_rate{window}", at):
            if "slo" in s.labels and s.value == s.value:
                recorded[s.labels["slo"]] = s.value
    out = []
    for slo in spec.slos:
        budget = slo.error_budget
        e = err(slo, window)
        burns = []
        for a in spec.burn_rate_alerts:
            lo, sh = err(slo, a.long), err(slo, a.short)
            lb = None if lo is None else lo / budget
            sb = None if sh is None else sh / budget
            can_fire = a.burn_rate * budget < 1
            burning = (
                can_fire
                and lb is not None
                and sb is not None
                and lb > a.burn_rate
                and sb > a.burn_rate
            )
            burns.append(Burn(a.long, a.short, a.severity, a.burn_rate, lb, sb, can_fire, burning))
        out.append(
            SLOStatus(
                name=slo.name,
                description=slo.description,
                objective=slo.objective,
                window=window,
                sli=None if e is None else 1 - e,
                error_ratio=e,
                compliant=None if e is None else (1 - e) >= slo.objective,
                error_budget=budget,
                error_budget_remaining=None if e is None else 1 - e / budget,
                burn_rates=burns,
                recorded_error_ratio=recorded.get(slo.name),
            )
        )
    return out


def _pct(value: float | None, digits: int = 2) -> str:
    return "no data" if value is None else f"{value * 100:.{digits}f}%"


def _burn(b: Burn) -> str:
    if not b.can_fire:
        return "n/a"

    def one(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    mark = " !" if b.burning else ""
    return f"{one(b.long_burn_rate)}/{one(b.short_burn_rate)}{mark}"


def format_table(statuses: list[SLOStatus], at: float) -> str:
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    window = statuses[0].window if statuses else ""
    pairs = [
        f"{b.long_window}/{b.short_window}" for b in (statuses[0].burn_rates if statuses else [])
    ]
    header = ["SLO", "objective", "SLI", "met", "budget left", *(f"burn {p}" for p in pairs)]
    rows = [header]
    for s in statuses:
        met = "no data" if s.compliant is None else ("yes" if s.compliant else "NO")
        rows.append(
            [
                s.name,
                _pct(s.objective, 1),
                _pct(s.sli, 3),
                met,
                _pct(s.error_budget_remaining, 1),
                *(_burn(b) for b in s.burn_rates),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"SLOs over the last {window}, at {when}"]
    for row in rows:
        pairs_ = enumerate(zip(row, widths, strict=True))
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs_)
        lines.append("  ".join(cells).rstrip())
    lines.append(
        "burn: long/short window burn rate (1 = the budget lasts exactly the SLO period)\n"
        "!: both above the alert's threshold; n/a: the spec leaves that alert out"
    )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(Path(args.spec))
    except (OSError, SpecError) as e:
        print(f"atalaia slo: {e}", file=sys.stderr)
        return 2
    at = now_or(args.at)
    try:
        with Prometheus(args.prometheus_url) as prom:
            statuses = evaluate(prom, spec, args.window, at, args.slice_step)
    except BackendError as e:
        print(f"atalaia slo: {e}", file=sys.stderr)
        return EXIT_BACKEND
    if args.json:
        doc = {"at": at, "window": args.window, "slos": [asdict(s) for s in statuses]}
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(statuses, at))
    if all(s.sli is None for s in statuses):
        print(
            f"atalaia slo: no data: Prometheus at {args.prometheus_url} has no series for any SLI "
            f"over the last {args.window} (is anything sending telemetry?)",
            file=sys.stderr,
        )
        return EXIT_NO_DATA
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "slo",
        help="SLIs, compliance, error budgets and burn rates of every SLO",
        description="Compute each SLO of the spec (prometheus/slos.yaml) by PromQL: its SLI over "
        "--window, whether the objective is met, the error budget left, and the burn rate over "
        "each alerting window pair. Exit 1 when Prometheus fails, 3 when no SLI has data.",
    )
    p.add_argument("--window", type=parse_duration, default="30d", help="SLO window (default 30d)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--spec",
        default=str(SPEC_PATH),
        help="the SLO spec (default: the one shipped with the package, prometheus/slos.yaml)",
    )
    p.add_argument(
        "--slice-step",
        type=parse_duration,
        default="1m",
        help="resolution of time-slice SLIs (freshness, cost_per_task); default 1m",
    )
    add_backend_args(p)
    p.set_defaults(func=_run)
