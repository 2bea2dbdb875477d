"""What installing and importing costs: the agent library and the operator tools load apart, each
in a fresh interpreter; no import cycles; the alert sink runs on the standard library alone; the
base install stays small; runtime data ships with the packages."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("atalaia", "atalaia_ops")
BASE_LIMIT = 20
HEAVY = ("httpx", "httpx2", "grpc", "prometheus_client", "fastapi", "openai", "anthropic")


def loaded_after(code: str) -> set[str]:
    """The top-level names of the modules a fresh interpreter has loaded after `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_atalaia_loads_nothing_heavy() -> None:
    modules = loaded_after("import atalaia")
    assert not {m for m in modules if m.startswith("atalaia_ops")}
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert "opentelemetry.sdk.trace" not in modules  # re-exports load on first use


def test_instrument_loads_the_sdk_and_one_transport_only() -> None:
    modules = loaded_after(
        "import os; os.environ['OTEL_TRACES_EXPORTER'] = 'otlp'\n"
        # Nowhere: a test must not send to whatever stack listens on the default port.
        "os.environ['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://127.0.0.1:9'\n"
        "import atalaia; atalaia.instrument('probe', json_logs=False)"
    )
    assert "opentelemetry.sdk.trace" in modules
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in modules
    assert not {m for m in modules if m.startswith("opentelemetry.exporter.otlp.proto.grpc")}
    assert not {m for m in modules if m.startswith("atalaia_ops")}
    # The LLM clients are instrumented when they are first imported, not imported for it.
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize(
    "module",
    [
        "atalaia_ops",
        "atalaia_ops.cli",
        "atalaia_ops.cost",
        "atalaia_ops.slo",
        "atalaia_ops.explain",
        "atalaia_ops.dashboards",
    ],
)
def test_the_operator_side_never_loads_the_agent_librarys_sdk(module: str) -> None:
    modules = loaded_after(f"import {module}")
    assert not {m for m in modules if m.startswith("opentelemetry")}
    assert not {m for m in modules if m.startswith("atalaia.") and m != "atalaia.prices"} - {
        "atalaia._version"
    }


def test_alert_sink_is_standard_library_only() -> None:
    modules = loaded_after("import atalaia_ops.alert_sink") - loaded_after("pass")  # site's own
    stdlib = set(sys.stdlib_module_names)
    foreign = {m.split(".")[0] for m in modules} - stdlib - {"atalaia_ops", "__main__"}
    assert not foreign, f"the alert sink loads {sorted(foreign)}"
    out = subprocess.run(
        [sys.executable, "-m", "atalaia_ops.alert_sink", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert "usage" in out.stdout


def imports_of(path: Path, package: str) -> set[str]:
    """Every module of `package` that `path` imports, wherever the import is (functions and
    TYPE_CHECKING blocks too): a cycle anywhere is a cycle."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == package}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == package
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def module_graph(package: str) -> dict[str, set[str]]:
    root = REPO / package
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imports_of(path, package) if m in modules and m != name}
    # The package's __init__ only re-exports (lazily, or for type checkers): not an edge.
    graph[package] = set()
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    graph = module_graph(package)
    assert len(graph) > 5
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_agent_library_never_imports_the_operator_tools() -> None:
    for path in (REPO / "atalaia").rglob("*.py"):
        assert not imports_of(path, "atalaia_ops"), path


def test_internal_modules_are_private() -> None:
    public = {p.stem for p in (REPO / "atalaia").glob("*.py") if not p.stem.startswith("_")}
    assert public == {"names", "prices", "testing"}


def base_closure() -> set[str]:
    """The distributions `pip install atalaia` (no extras) brings, from the installed
    distributions' own metadata (the venv is the lock): what pip would resolve."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = {"python_version": f"{sys.version_info[0]}.{sys.version_info[1]}", "extra": ""}
    todo = [Requirement(r) for r in project["dependencies"]]
    seen = {"atalaia"}
    while todo:
        req = todo.pop()
        if req.marker is not None and not Marker(str(req.marker)).evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.requires(name) or []]
    return seen


def test_base_install_is_small_and_has_none_of_the_heavy_ones() -> None:
    dists = base_closure()
    assert len(dists) <= BASE_LIMIT, sorted(dists)
    assert not dists & {"httpx", "httpx2", "grpcio", "prometheus-client", "fastapi"}, dists
    assert "opentelemetry-exporter-otlp-proto-http" in dists
    assert "opentelemetry-semantic-conventions" in dists  # the SDK's; never declared by us


def test_runtime_data_ships_with_the_packages() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["package-data"]
    assert "data/*" in data["atalaia"] and "data/*" in data["atalaia_ops"]
    assert (REPO / "atalaia" / "data" / "prices.yaml").is_file()
    spec = REPO / "atalaia_ops" / "data" / "slos.yaml"
    assert spec.read_text() == (REPO / "prometheus" / "slos.yaml").read_text()  # one copy
    from atalaia_ops import slo

    assert slo.SPEC_PATH.resolve() == spec.resolve()
    assert not slo.RULES_PATH.is_absolute()  # the generators write where they are run
