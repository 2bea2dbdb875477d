"""The committed JSON in grafana/dashboards/ is exactly what `python -m atalaia_ops.dashboards
generate` writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from atalaia_ops.dashboards import dashboards
from atalaia_ops.dashboards.__main__ import main

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"


def test_committed_dashboards_match_a_fresh_generation(capsys) -> None:
    assert main(["check"]) == 0, capsys.readouterr().err
    committed = {p.name for p in DEFAULT_OUT.glob("*.json")}
    assert committed == {d.file for d in dashboards()}, "stray or missing dashboard files"


def test_check_fails_when_a_dashboard_was_edited_by_hand(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dashboards"
    shutil.copytree(DEFAULT_OUT, out)
    tv = out / "fleet-tv.json"
    board = json.loads(tv.read_text())
    board["refresh"] = "5s"
    tv.write_text(json.dumps(board, indent=2) + "\n")
    assert main(["check", "--out", str(out)]) == 1
    assert "fleet-tv.json" in capsys.readouterr().err
    assert main(["generate", "--out", str(out)]) == 0
    assert main(["check", "--out", str(out)]) == 0
