"""The SLO spec loader and rule generator (atalaia_ops.slo)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from atalaia_ops import slo

SPEC: dict[str, Any] = {
    "period": "30d",
    "burn_rate_alerts": [
        {"severity": "critical", "long": "1h", "short": "5m", "burn_rate": 14.4, "for": "2m"},
        {"severity": "warning", "long": "3d", "short": "6h", "burn_rate": 1, "for": "3h"},
    ],
    "slos": [
        {
            "name": "task_success",
            "objective": 0.95,
            "description": "Tasks that succeeded.",
            "sli": {
                "events": {
                    "errors": 'sum(rate(orchestrator_tasks_total{status="failure"}[$window]))',
                    "total": "sum(rate(orchestrator_tasks_total[$window]))",
                }
            },
        },
        {
            "name": "half",
            "objective": 0.5,
            "description": "Half of them.",
            "sli": {"time_slices": {"good": "vector(1)"}},
        },
    ],
}


def test_the_repo_spec_loads() -> None:
    spec = slo.load_spec()
    assert [s.name for s in spec.slos] == [
        "availability",
        "task_availability",
        "task_success",
        "latency_p50",
        "latency_p99",
        "freshness",
        "cost_per_task",
    ]
    objectives = {s.name: s.objective for s in spec.slos}
    assert objectives["availability"] == objectives["task_availability"] == 0.995
    # Availability is the orchestrator API's: its 5xx out of all its requests.
    availability = next(s for s in spec.slos if s.name == "availability").sli
    assert isinstance(availability, slo.EventsSLI) and availability.errors is not None
    assert 'http_response_status_code=~"5.."' in availability.errors
    assert "http_server_request_duration_seconds_count" in availability.total
    assert objectives["latency_p99"] == 0.99
    assert [(a.long, a.short, a.burn_rate, a.severity) for a in spec.burn_rate_alerts] == [
        ("1h", "5m", 14.4, "critical"),
        ("6h", "30m", 6, "critical"),
        ("1d", "2h", 3, "warning"),
        ("3d", "6h", 1, "warning"),
    ]


def test_generation() -> None:
    text = slo.generate(slo.parse_spec(SPEC))
    assert text.startswith(slo.HEADER)
    rules = {
        g["name"]: g["rules"] for g in yaml.safe_load(text)["groups"]
    }  # header comments are YAML comments
    assert set(rules) == {"slo-task-success", "slo-half"}
    records = [r["record"] for r in rules["slo-task-success"] if "record" in r]
    assert records == [
        "slo:objective:ratio",
        *(f"slo:sli_error:ratio_rate{w}" for w in slo.WINDOWS),
        "slo:error_budget_remaining:ratio",
    ]
    ratio_1h = next(
        r for r in rules["slo-task-success"] if r.get("record") == "slo:sli_error:ratio_rate1h"
    )
    assert "[1h]" in ratio_1h["expr"] and "$window" not in ratio_1h["expr"]
    assert "or vector(0)" in ratio_1h["expr"]
    alerts = [r for r in rules["slo-task-success"] if "alert" in r]
    assert [(a["labels"]["long_window"], a["for"]) for a in alerts] == [("1h", "2m"), ("3d", "3h")]
    assert alerts[0]["expr"].startswith(
        'slo:sli_error:ratio_rate1h{slo="task_success"} > (14.4 * 0.05)'
    )
    # objective 0.5: 14.4 x 0.5 >= 1 can never fire and is left out, the 1x ticket stays.
    half_alerts = [r for r in rules["slo-half"] if "alert" in r]
    assert [a["labels"]["long_window"] for a in half_alerts] == ["3d"]
    assert "half: 1h/5m at 14.4x left out" in text
    assert any(r.get("record") == "slo:time_slice_good:ratio" for r in rules["slo-half"])


def test_check_mode(tmp_path: Path) -> None:
    spec_file = tmp_path / "slos.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    out = tmp_path / "slo.yml"
    assert slo.main(["generate", "--spec", str(spec_file), "--out", str(out), "--check"]) == 1
    assert slo.main(["generate", "--spec", str(spec_file), "--out", str(out)]) == 0
    assert slo.main(["generate", "--spec", str(spec_file), "--out", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "# edited by hand\n")
    assert slo.main(["generate", "--spec", str(spec_file), "--out", str(out), "--check"]) == 1


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    node: Any = spec
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_broken(["period"], "2w"), "window '2w' is not one of"),
        (_broken(["slos", 0, "objective"], 1.5), "objective must be between 0 and 1"),
        (_broken(["slos", 1, "name"], "task_success"), "duplicate SLO name"),
        (_broken(["slos", 0, "name"], "Task Success"), "must be snake_case"),
        (_broken(["slos", 0, "description"], KeyError), "missing `description`"),
        (_broken(["burn_rate_alerts", 0, "short"], "1d"), "short window must be shorter"),
        (_broken(["burn_rate_alerts", 0, "severity"], "page"), "severity must be critical"),
        (
            _broken(["slos", 0, "sli", "events", "good"], "sum(rate(x[$window]))"),
            "exactly one of `errors` or `good`",
        ),
        (_broken(["slos", 0, "sli", "events", "total"], "sum(x)"), "must use [$window]"),
        (_broken(["slos", 1, "sli"], {"ratio": {}}), "unknown SLI kind 'ratio'"),
        (_broken(["slos", 1, "sli", "time_slices", "good"], "rate(x[$window])"), "no $window"),
    ],
)
def test_invalid_specs_are_rejected_with_a_message(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(slo.SpecError, match=message.replace("[", r"\[").replace("$", r"\$")):
        slo.parse_spec(spec)


def test_cli_reports_spec_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "slos.yaml"
    spec_file.write_text("period: [")
    assert slo.main(["generate", "--spec", str(spec_file), "--out", str(tmp_path / "o")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
