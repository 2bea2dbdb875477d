"""Every built upstream binary is the pinned release, built from the pinned Go module."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run
from tools.upstream import REPO, components

BINARIES = [(c.name, b) for c in components().values() for b in c.binaries]


@pytest.mark.parametrize(("component", "binary"), BINARIES, ids=[f"{c}/{b}" for c, b in BINARIES])
def test_binary_reports_pinned_version(upstream, tool, component: str, binary: str) -> None:
    c = upstream[component]
    if not c.version_args[binary]:  # no version flag (dashboard-linter): read Go's build info
        info = run(["go", "version", "-m", tool(component, binary)]).stdout
        assert re.search(
            rf"^\s+(dep|mod)\s+{re.escape(c.module)}\s+{re.escape(c.module_version)}\s", info, re.M
        ), info
        return
    result = run([tool(component, binary), *c.version_args[binary]])
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert re.search(rf"\bv?{re.escape(c.version)}\b", out), (
        f"{binary} says {out!r}, pinned {c.version}"
    )


@pytest.mark.parametrize(
    "component", ["prometheus", "alertmanager", "compose", "dashboard-linter", "otelcol"]
)
def test_binary_was_built_from_pinned_module(upstream, tool, component: str) -> None:
    """Go embeds its module graph in the binary: the version string is not just an ldflag."""
    c = upstream[component]
    for binary in c.binaries:
        info = run(["go", "version", "-m", tool(component, binary)]).stdout
        deps = dict(re.findall(r"^\s+(?:dep|mod)\s+(\S+)\s+(\S+)", info, re.M))
        assert c.module in deps, f"{binary}: {c.module} not in build info"
        # A module built from a copy with a UI stub (replace => dir) keeps its version here.
        assert deps[c.module] == c.module_version, f"{binary} built from {deps[c.module]}"


def test_collector_has_the_components_our_config_uses(tool) -> None:
    result = run([tool("otelcol", "otelcol-atalaia"), "components"])
    assert result.returncode == 0, result.stderr
    for name in (
        "otlp",
        "host_metrics",
        "prometheus",
        "memory_limiter",
        "batch",
        "resource_detection",
        "redaction",
        "transform",
        "file_storage",
        "bearertokenauth",
        "health_check",
        "prometheus_remote_write",
        "otlp_http",
        "otlp_grpc",
        "debug",
    ):
        assert re.search(rf"\b{name}\b", result.stdout), f"collector lacks {name}"


def test_second_build_builds_nothing() -> None:
    """`make tools` on a warm cache is a no-op: every component reports cached."""
    result = run(["python3", "-m", "tools.build"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "building" not in result.stdout, result.stdout
    assert result.stdout.count(": cached in ") == len(components()), result.stdout
