"""versions.env is the one place upstream versions live: everything else must agree with it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.upstream import COLLECTOR_MANIFEST, REPO, Component, read_versions

PINS = read_versions()
IMAGES = {k.removesuffix("_IMAGE"): v for k, v in PINS.items() if k.endswith("_IMAGE")}


def release_of_module_version(c: Component) -> str | None:
    """The release a Go module version corresponds to, where the mapping is mechanical."""
    v = c.module_version.removeprefix("v")
    if c.name == "prometheus":  # Prometheus 3.x.y is published as module v0.3xx.y
        _, minor, patch = v.split(".")
        return f"{int(minor) // 100}.{int(minor) % 100}.{patch}"
    return v


@pytest.mark.parametrize("name", ["prometheus", "alertmanager", "compose", "otelcol"])
def test_module_version_is_the_pinned_release(upstream: dict[str, Component], name: str) -> None:
    c = upstream[name]
    if name == "otelcol":
        assert c.module_version == f"v{PINS['OTELCOL_CORE_VERSION']}"
        return
    expected = release_of_module_version(c)
    if expected is not None:
        assert expected == c.version, (
            f"{name}: module {c.module_version} is not release {c.version}"
        )


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_image_tag_matches_version(key: str) -> None:
    if key == "PYTHON":
        return
    tag = IMAGES[key].rsplit(":", 1)[1].removeprefix("v")
    assert tag == PINS[f"{key}_VERSION"], f"{key}_IMAGE {IMAGES[key]} vs {key}_VERSION"


@pytest.mark.parametrize("name", ["prometheus", "alertmanager", "compose", "dashboard-linter"])
def test_wrapper_gomod_requires_the_pinned_module(
    upstream: dict[str, Component], name: str
) -> None:
    c = upstream[name]
    mod = json.loads(subprocess.check_output(["go", "mod", "edit", "-json"], cwd=c.wrapper))
    required = {r["Path"]: r["Version"] for r in mod["Require"]}
    assert required.get(c.module) == c.module_version, (
        f"tools/go/{name}/go.mod is stale: run `python -m tools.pin {name}`"
    )
    assert sorted(t["Path"] for t in mod.get("Tool") or []) == sorted(c.binaries.values())


def test_collector_manifest_matches_versions() -> None:
    manifest = yaml.safe_load(COLLECTOR_MANIFEST.read_text())
    assert manifest["dist"]["version"] == PINS["OTELCOL_VERSION"]
    bad = []
    for kind in ("receivers", "processors", "exporters", "extensions", "connectors"):
        for entry in manifest.get(kind) or []:
            module, version = entry["gomod"].split()
            want = (
                PINS["OTELCOL_VERSION"]
                if "collector-contrib" in module
                else PINS["OTELCOL_CORE_VERSION"]
            )
            if version != f"v{want}":
                bad.append(entry["gomod"])
    assert not bad, f"builder manifest entries not at the pinned versions: {bad}"


def test_demo_dockerfile_default_base_is_the_pin() -> None:
    """`docker build` without compose falls back to the Dockerfile's default: the same pin."""
    dockerfile = (REPO / "demo_agents" / "Dockerfile").read_text()
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert default, "demo_agents/Dockerfile must take its base image from ARG PYTHON_IMAGE"
    assert default.group(1) == PINS["PYTHON_IMAGE"]
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.M)


def _gomod(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        subprocess.check_output(["go", "mod", "edit", "-json"], cwd=directory)
    )
    return doc


def test_collector_lock_matches_the_manifest(upstream: dict[str, Component]) -> None:
    """tools/go/otelcol is the builder manifest, generated and locked: every component the
    manifest lists is imported by the generated sources and required at exactly its version,
    with its checksum in go.sum; nothing else is imported. Run `python -m tools.pin otelcol`
    after editing the manifest."""
    lock = upstream["otelcol"].wrapper
    manifest = yaml.safe_load(COLLECTOR_MANIFEST.read_text())
    wanted: dict[str, str] = {}
    imports: set[str] = set()
    for kind in ("receivers", "processors", "exporters", "extensions", "connectors"):
        for entry in manifest.get(kind) or []:
            module, version = entry["gomod"].split()
            wanted[module] = version
            imports.add(entry.get("import", module))
    required = {r["Path"]: r["Version"] for r in _gomod(lock)["Require"]}
    stale = {m: (v, required.get(m)) for m, v in wanted.items() if required.get(m) != v}
    assert not stale, f"manifest vs tools/go/otelcol/go.mod (want, locked): {stale}"
    sums = (lock / "go.sum").read_text()
    unsummed = [m for m, v in wanted.items() if f"{m} {v} h1:" not in sums]
    assert not unsummed, f"no go.sum checksum for {unsummed}"
    components = (lock / "components.go").read_text()
    imported = set(re.findall(r'^\s*\w+ "([^"]+)"$', components, re.M))
    imported = {
        i
        for i in imported
        if not i.startswith("go.opentelemetry.io/collector/") or any(i == w for w in imports)
    }
    assert imported == imports, (
        f"components.go imports {sorted(imported - imports)} the manifest does not list, "
        f"lacks {sorted(imports - imported)}"
    )
    assert f'Version:     "{manifest["dist"]["version"]}"' in (lock / "main.go").read_text()


def test_no_go_module_of_ours_names_agpl_code() -> None:
    """Loki, Tempo and Grafana are AGPL: no module we build may require (or checksum) them."""
    agpl = re.compile(r"github\.com/grafana/(loki|tempo|grafana)(/|\s)")
    hits = [
        f"{f.relative_to(REPO)}: {line.strip()}"
        for f in sorted(REPO.glob("tools/go/*/go.*"))
        for line in f.read_text().splitlines()
        if agpl.search(line)
    ]
    assert not hits, "\n".join(hits)
