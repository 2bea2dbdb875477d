"""The LogQL/TraceQL grammars `make tools` installs (tools/grammars.py): locked, outside the repo,
keyed by the lock file, installed once."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import run
from tools import grammars as query_grammars
from tools.upstream import REPO


def test_the_lock_pins_every_package_with_its_integrity_and_an_allowed_licence() -> None:
    lock = json.loads(query_grammars.LOCK_FILE.read_text())
    manifest = json.loads((query_grammars.PACKAGE / "package.json").read_text())
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    assert set(manifest["dependencies"]) == {"@grafana/lezer-logql", "@grafana/lezer-traceql"}
    for path, p in lock["packages"].items():
        if not path:
            continue
        assert p["integrity"].startswith("sha512-"), path
        assert p["license"] in {"Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause"}, path
    locked = query_grammars.locked_versions()
    for name, version in manifest["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: pin an exact version"
        assert locked[name] == version, name
    assert {"@lezer/lr", "@lezer/common"} <= set(locked)


def test_the_install_is_outside_the_repo_and_keyed_by_the_lock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    digest = hashlib.sha256(query_grammars.LOCK_FILE.read_bytes()).hexdigest()
    assert query_grammars.install_dir().name == f"grammars-{digest[:16]}"
    assert not query_grammars.install_dir().is_relative_to(REPO)
    monkeypatch.setenv("ATALAIA_TOOLS_DIR", str(tmp_path))
    assert query_grammars.install_dir() == tmp_path / f"grammars-{digest[:16]}"
    # A directory without the stamp that a complete install writes last is not an install.
    (tmp_path / f"grammars-{digest[:16]}" / "node_modules").mkdir(parents=True)
    assert query_grammars.installed() is None


def test_installed_packages_are_the_locked_ones(grammars: Path) -> None:
    for name, version in query_grammars.locked_versions().items():
        manifest = json.loads((grammars / "node_modules" / name / "package.json").read_text())
        assert manifest["version"] == version, name


def test_a_second_install_installs_nothing(grammars: Path) -> None:
    result = run([sys.executable, "-m", "tools.grammars"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installing" not in result.stdout, result.stdout
    assert f": cached in {grammars}" in result.stdout, result.stdout
