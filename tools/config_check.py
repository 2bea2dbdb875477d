"""Check a Loki or Tempo config against the options its pinned release documents.

The allowed options are data, generated from upstream's configuration reference by
tools/config_keys.py into tests/config/data/<component>-<version>.keys.yaml. This module walks a
config and reports, with its full path:

- every key that is not a documented option (`compactor.compaction.block_retention_days: not an
  option of Tempo 2.9.0`), with the closest documented name when there is one;
- a block where a value is documented, or a value where a block or a list is documented;
- a value outside the documented list of values (the `enum...(...)` kinds), a boolean that is
  not true/false, a duration that is not one, a number that is not one.

    python -m tools.config_check loki loki/loki.yaml
    python -m tools.config_check tempo tempo/tempo.yaml
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.config_keys import DATA_DIR, WILDCARD, Node
from tools.upstream import read_versions

# Go durations (5m0s, 1.5h) and Prometheus/Loki ones (1d, 2w); `0` needs no unit.
_DURATION = re.compile(r"^(?:0|-?(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+)$")
# Loki's <int> also takes a size with a unit ("256KB", "64MiB").
_SIZE = re.compile(r"^\d+(?:\.\d+)?\s*(?:[KMGTPE]i?)?B$")
_ENUM = re.compile(r"^(?P<kind>enum|enum-list|enum-items)\((?P<values>.*)\)$")


@dataclass(frozen=True)
class AllowedKeys:
    """The documented options of one release of one component."""

    component: str  # "Loki"
    version: str  # "3.7.8"
    tree: dict[str, Node]

    @property
    def release(self) -> str:
        return f"{self.component} {self.version}"


def keys_file(component: str, version: str | None = None) -> Path:
    """tests/config/data/<component>-<version>.keys.yaml, for the version pinned in versions.env."""
    version = version or read_versions()[f"{component.upper()}_VERSION"]
    return DATA_DIR / f"{component.lower()}-{version}.keys.yaml"


def load(path: Path) -> AllowedKeys:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise ValueError(f"{path}: not an allowed-keys file (no `keys:` mapping)")
    return AllowedKeys(str(data["component"]), str(data["version"]), data["keys"])


def check(config: Any, allowed: AllowedKeys) -> list[str]:
    """Every problem found in a parsed config, as `path: what is wrong`."""
    problems: list[str] = []
    _walk(config, allowed.tree, "", allowed, problems)
    return problems


def check_file(path: Path, allowed: AllowedKeys) -> list[str]:
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        return [f"{path}: not YAML: {err}"]
    if not isinstance(config, dict):
        return [f"{path}: the top level is not a mapping"]
    return check(config, allowed)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {value!r}"


def _walk(value: Any, node: Node, path: str, allowed: AllowedKeys, out: list[str]) -> None:
    if value is None:  # `key:` with no value: the default
        return
    if isinstance(node, dict):
        if not isinstance(value, dict):
            out.append(f"{path}: a block of options is documented, got {_shape(value)}")
            return
        for key, child in value.items():
            sub = _join(path, key)
            spec = node.get(str(key), node.get(WILDCARD))
            if spec is None:
                hint = difflib.get_close_matches(str(key), [k for k in node if k != WILDCARD], 1)
                more = f" (did you mean {hint[0]}?)" if hint else ""
                out.append(f"{sub}: not an option of {allowed.release}{more}")
            else:
                _walk(child, spec, sub, allowed, out)
    elif isinstance(node, list):
        if not isinstance(value, list):
            out.append(f"{path}: a list of blocks is documented, got {_shape(value)}")
            return
        for i, item in enumerate(value):
            _walk(item, node[0], f"{path}[{i}]", allowed, out)
    else:
        if problem := _leaf_problem(value, node):
            out.append(f"{path}: {problem}")


def _leaf_problem(value: Any, kind: str) -> str | None:
    """Why a value does not fit a documented leaf kind, or None if it does (or may)."""
    if kind == "any":
        return None
    enum = _ENUM.match(kind)
    if enum and enum["kind"] == "enum-items":
        if not isinstance(value, list):
            return f"a list is documented, got {_shape(value)}"
        return _enum_problem([str(v) for v in value], enum["values"].split("|"))
    if kind == "map":
        return None if isinstance(value, dict) else f"a mapping is documented, got {_shape(value)}"
    if kind == "list":
        return None if isinstance(value, list) else f"a list is documented, got {_shape(value)}"
    if isinstance(value, dict | list):
        return f"a single value ({kind}) is documented, got {_shape(value)}"
    if kind == "boolean" and not isinstance(value, bool):
        return f"a boolean is documented, got {value!r}"
    if kind == "duration" and not (
        (isinstance(value, int) and not isinstance(value, bool) and value == 0)
        or (isinstance(value, str) and _DURATION.match(value))
    ):
        return f"a duration (with a unit, e.g. 30s, 1h) is documented, got {value!r}"
    if kind in {"int", "number", "float"} and (
        isinstance(value, bool)
        or not (
            isinstance(value, int | float)
            or (kind == "int" and isinstance(value, str) and _SIZE.match(value))
        )
    ):
        return f"a number is documented, got {value!r}"
    if enum:
        given = str(value).split(",") if enum["kind"] == "enum-list" else [str(value)]
        return _enum_problem([v.strip() for v in given], enum["values"].split("|"))
    return None


def _enum_problem(given: list[str], values: list[str]) -> str | None:
    bad = [v for v in given if v not in values]
    if not bad:
        return None
    documented = ", ".join(repr(v) for v in values)
    return f"{', '.join(map(repr, bad))} is not a documented value (one of {documented})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("component", choices=["loki", "tempo"])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--keys", type=Path, help="default: the data for the pinned version")
    args = parser.parse_args(argv)
    allowed = load(args.keys or keys_file(args.component))
    failed = False
    for path in args.configs:
        problems = check_file(path, allowed)
        for problem in problems:
            print(f"{path}: {problem}")
        if not problems:
            print(f"{path}: every option is documented for {allowed.release}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
