"""The upstream components Atalaia runs, as pinned in versions.env.

Everything that needs a version (the native build, the tests, the native runner) asks this
module; nothing else parses versions.env.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Flags of every `go build` (tools/build.py uses them; a change rebuilds every tool).
BUILD_FLAGS = ("-trimpath", "-buildvcs=false")
VERSIONS_FILE = REPO / "versions.env"
GO_WRAPPERS = REPO / "tools" / "go"
COLLECTOR_MANIFEST = REPO / "otel-collector" / "builder-config.yaml"


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse a KEY=value file the way compose's --env-file does (no quoting, no expansion)."""
    pins: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{path.name}:{lineno}: expected KEY=value, got {raw!r}")
        pins[key] = value
    return pins


def cache_root() -> Path:
    """Built binaries live outside the repo: $ATALAIA_TOOLS_DIR or $XDG_CACHE_HOME/atalaia/tools."""
    if override := os.environ.get("ATALAIA_TOOLS_DIR"):
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "atalaia" / "tools"


def _prometheus_ldflags(version: str) -> list[str]:
    pkg = "github.com/prometheus/common/version"
    return [
        f"-X {pkg}.Version={version}",
        f"-X {pkg}.Branch=release",
        f"-X {pkg}.BuildUser=atalaia",
    ]


@dataclass(frozen=True)
class Component:
    """One upstream server (or CLI) built from its Go module."""

    name: str
    version: str  # the release version the binary reports, e.g. 3.15.0
    module: str  # Go module path
    module_version: str  # Go module version (differs from `version` for Prometheus)
    binaries: dict[str, str]  # binary name -> Go package to build
    version_args: dict[str, list[str]]  # binary name -> args that print its version
    ldflags: list[str] = field(default_factory=list)
    tags: str = "netgo"
    # Directories that upstream's release build fills with a compiled web UI (npm/elm) and that
    # the Go code embeds. The module zip lacks them, so the native build embeds a one-page stub
    # there instead: the native server has its full API but no web UI (the image has both).
    ui_stubs: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        """<cache>/<name>-<version>-<digest of the locked module>: two checkouts whose locks
        differ (a branch that re-pinned, say) each keep their own build, never each other's."""
        return cache_root() / f"{self.name}-{self.version}-{self.inputs_digest()}"

    def binary(self, name: str | None = None) -> Path:
        return self.dir / "bin" / (name or next(iter(self.binaries)))

    @property
    def wrapper(self) -> Path:
        """The locked Go module in tools/go/<name> that `make tools` builds (see tools.pin)."""
        return GO_WRAPPERS / self.name

    def inputs_digest(self) -> str:
        """Hash of what the build depends on; a change triggers a rebuild of the same version."""
        h = hashlib.sha256()
        for f in sorted(self.wrapper.iterdir()) if self.wrapper.exists() else []:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        h.update(
            repr((self.binaries, self.ldflags, self.tags, self.ui_stubs, BUILD_FLAGS)).encode()
        )
        return h.hexdigest()[:16]


def _split(module_at_version: str) -> tuple[str, str]:
    module, _, version = module_at_version.partition("@")
    return module, version


def components(pins: dict[str, str] | None = None) -> dict[str, Component]:
    """All components built by `make tools`, keyed by name."""
    p = pins or read_versions()
    out: dict[str, Component] = {}

    mod, ver = _split(p["PROMETHEUS_MODULE"])
    out["prometheus"] = Component(
        "prometheus",
        p["PROMETHEUS_VERSION"],
        mod,
        ver,
        {"prometheus": f"{mod}/cmd/prometheus", "promtool": f"{mod}/cmd/promtool"},
        {"prometheus": ["--version"], "promtool": ["--version"]},
        _prometheus_ldflags(p["PROMETHEUS_VERSION"]),
    )
    mod, ver = _split(p["ALERTMANAGER_MODULE"])
    out["alertmanager"] = Component(
        "alertmanager",
        p["ALERTMANAGER_VERSION"],
        mod,
        ver,
        {"alertmanager": f"{mod}/cmd/alertmanager", "amtool": f"{mod}/cmd/amtool"},
        {"alertmanager": ["--version"], "amtool": ["--version"]},
        _prometheus_ldflags(p["ALERTMANAGER_VERSION"]),
        ui_stubs=("ui/app/dist",),
    )
    mod, ver = _split(p["COMPOSE_MODULE"])
    out["compose"] = Component(
        "compose",
        p["COMPOSE_VERSION"],
        mod,
        ver,
        {"docker-compose": f"{mod}/cmd"},
        {"docker-compose": ["version"]},
        [f"-X {mod}/internal.Version=v{p['COMPOSE_VERSION']}"],
        tags="",
    )
    mod, ver = _split(p["DASHBOARD_LINTER_MODULE"])
    out["dashboard-linter"] = Component(
        "dashboard-linter",
        p["DASHBOARD_LINTER_VERSION"],
        mod,
        ver,
        {"dashboard-linter": mod},
        {"dashboard-linter": []},  # no version flag: tests read its Go build info
        tags="",
    )
    # The collector distribution that tools.pin generated from the builder manifest; its
    # build info names the core module at OTELCOL_CORE_VERSION.
    out["otelcol"] = Component(
        "otelcol",
        p["OTELCOL_VERSION"],
        "go.opentelemetry.io/collector/otelcol",
        f"v{p['OTELCOL_CORE_VERSION']}",
        {"otelcol-atalaia": "."},
        {"otelcol-atalaia": ["--version"]},
        tags="",
    )
    return out
