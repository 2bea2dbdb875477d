"""Grafana's dashboard-linter (built from its Go module, see versions.env) passes --strict on
every dashboard, with the exclusions explained in grafana/dashboards/.lint; and it catches a bad
one (this 2021 build checks stat, table and graph panels' PromQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run
from tools.upstream import REPO

DASHBOARDS = REPO / "grafana" / "dashboards"
FILES = sorted(p.name for p in DASHBOARDS.glob("*.json"))


@pytest.mark.parametrize("name", FILES)
def test_linter_passes_strict(tool, name: str) -> None:
    result = run([tool("dashboard-linter"), "lint", "--strict", DASHBOARDS / name])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "❌" not in result.stdout


def test_linter_fails_on_a_broken_query(tool, tmp_path: Path) -> None:
    shutil.copy(DASHBOARDS / ".lint", tmp_path / ".lint")
    board = json.loads((DASHBOARDS / "fleet-tv.json").read_text())
    stat = next(p for p in board["panels"] if p["type"] == "stat")
    stat["targets"][0]["expr"] = "sum(rate(orchestrator_tasks_total[5m])"
    (tmp_path / "fleet-tv.json").write_text(json.dumps(board))
    result = run([tool("dashboard-linter"), "lint", "--strict", tmp_path / "fleet-tv.json"])
    assert result.returncode != 0
    assert "invalid PromQL query" in result.stdout + result.stderr


def test_linter_fails_without_rate_interval(tool, tmp_path: Path) -> None:
    shutil.copy(DASHBOARDS / ".lint", tmp_path / ".lint")
    board = json.loads((DASHBOARDS / "fleet-tv.json").read_text())
    alerts = next(p for p in board["panels"] if p["type"] == "table")
    alerts["targets"][0]["expr"] = "sum(rate(orchestrator_tasks_total[5m]))"
    (tmp_path / "fleet-tv.json").write_text(json.dumps(board))
    result = run([tool("dashboard-linter"), "lint", "--strict", tmp_path / "fleet-tv.json"])
    assert result.returncode != 0, result.stdout
    assert "should use $__rate_interval" in result.stdout + result.stderr
