"""Shared fixtures. Tests are grouped by directory: tests/unit, tests/config, tests/e2e get the
`unit`, `config` and `e2e` markers automatically, so `pytest -m unit` runs one group."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from demo_agents.instrumentation import opt_in_stable_http_conventions
from tools import grammars as query_grammars
from tools.upstream import REPO, Component, components

GROUPS = ("unit", "config", "e2e")

# As every demo fleet process does at its start: OpenTelemetry's HTTP instrumentations read the
# switch once per process, when the first of them is set up, so before any test sets one up.
opt_in_stable_http_conventions()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).relative_to(REPO / "tests").parts
        if parts and parts[0] in GROUPS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session", autouse=True)
def _in_the_checkout() -> None:
    """The generators read and write paths relative to where they run (the checkout's root, as
    `make` runs them), never inside the installed package: run every test from there."""
    os.chdir(REPO)


@pytest.fixture(scope="session")
def upstream() -> dict[str, Component]:
    return components()


@pytest.fixture(scope="session")
def tool(upstream: dict[str, Component]):
    """tool("prometheus", "promtool") -> path of the built binary; fails (never skips) if absent."""

    def find(component: str, binary: str | None = None) -> Path:
        path = upstream[component].binary(binary)
        if not path.exists():
            pytest.fail(f"{path} is missing: run `make tools` first")
        return path

    return find


@pytest.fixture(scope="session")
def grammars() -> Path:
    """The installed LogQL/TraceQL grammars (tools/grammars.py); fails (never skips) if absent."""
    path = query_grammars.installed()
    if path is None:
        pytest.fail(
            f"{query_grammars.install_dir()} is missing: run `make tools` first"
            " (it installs Grafana's LogQL/TraceQL grammars)"
        )
    return path


def run(cmd: list[str | Path], **kw) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its result; the caller asserts on returncode with the output."""
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)
