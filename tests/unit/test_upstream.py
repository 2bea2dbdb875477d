"""tools/upstream.py: versions.env parsing and the cache location."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.upstream import cache_root, components, read_versions


def test_rejects_malformed_line(tmp_path: Path) -> None:
    bad = tmp_path / "versions.env"
    bad.write_text("# comment\nPROMETHEUS_VERSION=3.16.0\nthis is not a pin\n")
    with pytest.raises(ValueError, match=r"versions.env:3: expected KEY=value"):
        read_versions(bad)


def test_cache_is_outside_the_repo_and_keyed_by_version(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ATALAIA_TOOLS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "atalaia" / "tools"
    prom = components()["prometheus"]
    assert (
        prom.dir
        == tmp_path / "atalaia" / "tools" / f"prometheus-{prom.version}-{prom.inputs_digest()}"
    )


def test_inputs_digest_changes_with_the_pin() -> None:
    """A rebuild is triggered when a pin changes even if the cache directory name did not."""
    pins = read_versions()
    a = components(pins)["prometheus"]
    b = components({**pins, "PROMETHEUS_VERSION": "0.0.1"})["prometheus"]
    assert a.inputs_digest() != b.inputs_digest()
    assert a.dir != b.dir
