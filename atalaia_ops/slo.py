"""Service level objectives: load the spec (prometheus/slos.yaml) and generate Prometheus rules.

    python -m atalaia_ops.slo generate           # writes prometheus/rules/slo.yml
    python -m atalaia_ops.slo generate --check   # exits 1 if the committed file is out of date

For every SLO the generated rules record the SLI error ratio over each window (5m ... 30d), the
objective, and the error budget remaining over the SLO period; and they alert with multiwindow,
multi-burn-rate alerts (Google SRE workbook, ch. 5), all named ErrorBudgetBurnRate and told apart
by the `slo`, `severity`, `long_window` and `short_window` labels.

`load_spec` is the public entry point for other tools (the `atalaia slo` CLI).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from atalaia_ops.cost import cost_usd
from atalaia_ops.generated import check_generated

# The spec ships with the package (in a checkout, a link to prometheus/slos.yaml, its one copy);
# `--spec` reads another. The generator writes into the checkout it is run from.
SPEC_PATH = Path(__file__).resolve().parent / "data" / "slos.yaml"
RULES_PATH = Path("prometheus") / "rules" / "slo.yml"
# Runbook links point at docs/runbooks/<AlertName>.md in the repository; change the base here and
# in prometheus/rules/*.yml together (tests/config/test_rules.py checks they agree).
RUNBOOK_BASE = "https://github.com/atalaia/atalaia/blob/main/docs/runbooks/"
ALERT_NAME = "ErrorBudgetBurnRate"
# Windows the error ratio is recorded over; the burn-rate alerts and the period must be among them.
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
WINDOW_PLACEHOLDER = "$window"
# `$cost_usd(5m)` in an SLI is the stack's LLM cost over that window: atalaia_ops.cost.cost_usd().
_COST = re.compile(r"\$cost_usd\((\w+)\)")

HEADER = """\
# GENERATED FILE, DO NOT EDIT.
# Source: prometheus/slos.yaml. Regenerate with `python -m atalaia_ops.slo generate`;
# tests/config/test_rules.py fails when this file differs from a fresh generation.
"""

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SpecError(ValueError):
    """The SLO spec is invalid; the message says where and why."""


def duration_seconds(text: str) -> int:
    """'5m' -> 300. Only the single-unit Prometheus durations the spec uses."""
    m = _DURATION.match(text)
    if not m:
        raise SpecError(f"{text!r} is not a duration like 5m, 1h, 3d")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def human_duration(seconds: float) -> str:
    """Readable budget-exhaustion time: 50 hours, 5 days."""
    hours = seconds / 3600
    if hours <= 72:
        return f"{round(hours)} hours"
    return f"{round(hours / 24, 1):g} days"


@dataclass(frozen=True)
class EventsSLI:
    """Error ratio = errors / total, or 1 - good / total, each a rate over `$window`."""

    total: str
    errors: str | None = None
    good: str | None = None

    def error_ratio(self, window: str) -> str:
        total = self.total.replace(WINDOW_PLACEHOLDER, window)
        # `or vector(0)`: a labelled counter has no series until its first increment; no errors
        # yet must read as a ratio of 0, not as no data.
        if self.errors is not None:
            errors = self.errors.replace(WINDOW_PLACEHOLDER, window)
            return f"(\n  {errors}\n  or vector(0)\n)\n/\n{total}"
        assert self.good is not None
        good = self.good.replace(WINDOW_PLACEHOLDER, window)
        return f"1 - (\n  (\n    {good}\n    or vector(0)\n  )\n  /\n  {total}\n)"


@dataclass(frozen=True)
class TimeSliceSLI:
    """`good` in [0, 1] at each evaluation; error ratio over a window = 1 - its average."""

    good: str


@dataclass(frozen=True)
class SLO:
    name: str
    objective: float
    description: str
    sli: EventsSLI | TimeSliceSLI

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 10)


@dataclass(frozen=True)
class BurnRateAlert:
    severity: str
    long: str
    short: str
    burn_rate: float
    for_: str


@dataclass(frozen=True)
class Spec:
    period: str
    burn_rate_alerts: tuple[BurnRateAlert, ...]
    slos: tuple[SLO, ...]


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise SpecError(f"{where}: missing `{key}`")
    return mapping[key]


def _check_window(value: str, where: str) -> str:
    if value not in WINDOWS:
        raise SpecError(f"{where}: window {value!r} is not one of {', '.join(WINDOWS)}")
    return value


def _expand(expr: Any) -> Any:
    """Expand `$cost_usd(<window>)` in an SLI expression (other values pass unchanged)."""
    if not isinstance(expr, str):
        return expr
    return _COST.sub(lambda m: cost_usd(m.group(1)), expr)


def _parse_sli(raw: Any, where: str) -> EventsSLI | TimeSliceSLI:
    if isinstance(raw, dict):
        raw = {
            kind: {k: _expand(v) for k, v in body.items()} if isinstance(body, dict) else body
            for kind, body in raw.items()
        }
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SpecError(f"{where}: `sli` needs exactly one of `events` or `time_slices`")
    kind, body = next(iter(raw.items()))
    if not isinstance(body, dict):
        raise SpecError(f"{where}.{kind}: expected a mapping")
    if kind == "events":
        total = _require(body, "total", f"{where}.events")
        errors, good = body.get("errors"), body.get("good")
        if (errors is None) == (good is None):
            raise SpecError(f"{where}.events: give exactly one of `errors` or `good`")
        for key, expr in (("total", total), ("errors", errors), ("good", good)):
            if expr is not None and WINDOW_PLACEHOLDER not in expr:
                raise SpecError(f"{where}.events.{key}: must use [{WINDOW_PLACEHOLDER}]")
        return EventsSLI(
            total=total.strip(), errors=errors and errors.strip(), good=good and good.strip()
        )
    if kind == "time_slices":
        good = _require(body, "good", f"{where}.time_slices")
        if WINDOW_PLACEHOLDER in good:
            raise SpecError(
                f"{where}.time_slices.good: is evaluated at an instant, no {WINDOW_PLACEHOLDER}"
            )
        return TimeSliceSLI(good=good.strip())
    raise SpecError(f"{where}: unknown SLI kind {kind!r} (events or time_slices)")


def parse_spec(raw: Any) -> Spec:
    """Validate a parsed slos.yaml document."""
    if not isinstance(raw, dict):
        raise SpecError("the spec must be a mapping")
    period = _check_window(str(_require(raw, "period", "spec")), "period")
    alerts = []
    for i, a in enumerate(_require(raw, "burn_rate_alerts", "spec")):
        where = f"burn_rate_alerts[{i}]"
        severity = _require(a, "severity", where)
        if severity not in ("critical", "warning"):
            raise SpecError(f"{where}: severity must be critical or warning")
        long_w = _check_window(_require(a, "long", where), where)
        short_w = _check_window(_require(a, "short", where), where)
        if duration_seconds(short_w) >= duration_seconds(long_w):
            raise SpecError(f"{where}: the short window must be shorter than the long one")
        rate = float(_require(a, "burn_rate", where))
        if rate <= 0:
            raise SpecError(f"{where}: burn_rate must be positive")
        for_ = str(a.get("for", "0m"))
        duration_seconds(for_)
        alerts.append(BurnRateAlert(severity, long_w, short_w, rate, for_))
    slos = []
    seen: set[str] = set()
    for i, s in enumerate(_require(raw, "slos", "spec")):
        where = f"slos[{i}]"
        name = _require(s, "name", where)
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError(f"{where}: name must be snake_case, got {name!r}")
        if name in seen:
            raise SpecError(f"{where}: duplicate SLO name {name!r}")
        seen.add(name)
        objective = float(_require(s, "objective", f"slos.{name}"))
        if not 0 < objective < 1:
            raise SpecError(f"slos.{name}: objective must be between 0 and 1, got {objective}")
        desc = " ".join(str(_require(s, "description", f"slos.{name}")).split())
        slos.append(
            SLO(
                name,
                objective,
                desc,
                _parse_sli(_require(s, "sli", f"slos.{name}"), f"slos.{name}.sli"),
            )
        )
    return Spec(period, tuple(alerts), tuple(slos))


def load_spec(path: Path = SPEC_PATH) -> Spec:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from e
    return parse_spec(raw)


def _record_name(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}"


def _indent(expr: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in expr.splitlines())


def _rules_for(slo: SLO, spec: Spec) -> tuple[list[dict[str, Any]], list[str]]:
    """The rules of one SLO, and notes on burn-rate alerts left out (they could never fire)."""
    labels = {"slo": slo.name}
    rules: list[dict[str, Any]] = [
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective})", "labels": labels},
    ]
    if isinstance(slo.sli, TimeSliceSLI):
        rules.append(
            {"record": "slo:time_slice_good:ratio", "expr": slo.sli.good + "\n", "labels": labels}
        )
    for w in WINDOWS:
        if isinstance(slo.sli, EventsSLI):
            expr = slo.sli.error_ratio(w)
        else:
            expr = f'1 - avg_over_time(slo:time_slice_good:ratio{{slo="{slo.name}"}}[{w}])'
        rules.append({"record": _record_name(w), "expr": expr + "\n", "labels": labels})
    rules.append(
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": f'1 - {_record_name(spec.period)}{{slo="{slo.name}"}} / {slo.error_budget}',
            "labels": labels,
        }
    )
    skipped = []
    period_s = duration_seconds(spec.period)
    for a in spec.burn_rate_alerts:
        threshold = round(a.burn_rate * slo.error_budget, 10)
        rate, budget = f"{a.burn_rate:g}", f"{slo.error_budget:g}"
        window = f"{a.long}/{a.short}"
        if threshold >= 1:
            skipped.append(
                f"{slo.name}: {window} at {rate}x left out, its threshold {rate} x {budget} = "
                f"{threshold:g} is an error ratio that cannot be exceeded"
            )
            continue
        sel = f'{{slo="{slo.name}"}}'
        kind = "page" if a.severity == "critical" else "ticket"
        exhaust = human_duration(period_s / a.burn_rate)
        value = "{{ $value | humanizePercentage }}"
        rules.append(
            {
                "alert": ALERT_NAME,
                "expr": (
                    f"{_record_name(a.long)}{sel} > ({rate} * {budget})\n"
                    f"and\n{_record_name(a.short)}{sel} > ({rate} * {budget})\n"
                ),
                "for": a.for_,
                "labels": {
                    "severity": a.severity,
                    "slo": slo.name,
                    "long_window": a.long,
                    "short_window": a.short,
                },
                "annotations": {
                    "summary": (
                        f"SLO {slo.name} is burning its error budget {rate}x too fast "
                        f"({window}, {kind})"
                    ),
                    "description": (
                        f"The {slo.name} SLO (objective {slo.objective * 100:g} %) had an error "
                        f"ratio of {value} over the last {a.long}, and above {threshold * 100:g} % "
                        f"over the last {a.short} too. At {rate}x the sustainable rate the "
                        f"{spec.period} error budget of {slo.error_budget * 100:g} % is gone in "
                        f"{exhaust}. SLI: {slo.description}"
                    ),
                    "runbook_url": f"{RUNBOOK_BASE}{ALERT_NAME}.md",
                },
            }
        )
    return rules, skipped


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: every rule reads on its own
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def generate(spec: Spec) -> str:
    """The full text of prometheus/rules/slo.yml."""
    groups = []
    notes: list[str] = []
    for slo in spec.slos:
        rules, skipped = _rules_for(slo, spec)
        notes += skipped
        groups.append({"name": f"slo-{slo.name.replace('_', '-')}", "rules": rules})
    body = yaml.dump(
        {"groups": groups}, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True
    )
    note_text = "".join(f"#   {n}\n" for n in notes)
    if note_text:
        note_text = "# Burn-rate alerts left out because they could never fire:\n" + note_text
    return HEADER + note_text + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atalaia_ops.slo", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the SLO recording and alerting rules")
    gen.add_argument("--spec", type=Path, default=SPEC_PATH, help="SLO spec (default: %(default)s)")
    gen.add_argument(
        "--out", type=Path, default=RULES_PATH, help="rules file (default: %(default)s)"
    )
    gen.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if --out is out of date"
    )
    args = parser.parse_args(argv)
    try:
        text = generate(load_spec(args.spec))
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        return check_generated(args.out, text, "python -m atalaia_ops.slo generate")
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
