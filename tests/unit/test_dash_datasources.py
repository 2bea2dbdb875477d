"""Every datasource a dashboard refers to exists with Atalaia's fixed uid and the right type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from atalaia_ops.dashboards import as_json
from atalaia_ops.dashboards.model import DATASOURCE_TYPES, PROMETHEUS_VAR

PROVISIONING = Path(__file__).resolve().parents[2] / "grafana" / "provisioning" / "datasources"
BUILTIN = {"-- Grafana --", "-- Mixed --"}


def references(node: Any) -> list[dict[str, str]]:
    """Every {"type", "uid"} datasource object anywhere in the JSON."""
    found: list[dict[str, str]] = []
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            found.append(ds)
        for value in node.values():
            found += references(value)
    elif isinstance(node, list):
        for value in node:
            found += references(value)
    return found


def resolve(uid: str, board: dict[str, Any]) -> str:
    m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
    if not m:
        return uid
    for v in board["templating"]["list"]:
        if v["name"] == m.group(1) and v["type"] == "datasource":
            return str(v["current"]["value"])
    raise AssertionError(f"{board['uid']}: datasource variable {uid} is not defined")


@pytest.mark.parametrize(("name", "board"), sorted(as_json().items()))
def test_every_datasource_uid_is_a_fixed_one(name: str, board: dict[str, Any]) -> None:
    refs = references(board)
    assert refs
    for ref in refs:
        uid = resolve(ref["uid"], board)
        if uid in BUILTIN:
            continue
        assert uid in DATASOURCE_TYPES, f"{name}: unknown datasource uid {uid!r}"
        assert ref["type"] == DATASOURCE_TYPES[uid], f"{name}: {uid} is not a {ref['type']}"
    variable = next(v for v in board["templating"]["list"] if v["name"] == PROMETHEUS_VAR)
    assert variable["query"] == "prometheus" and variable["current"]["value"] == "prometheus"


def test_link_urls_name_existing_datasources() -> None:
    text = "".join(str(b) for b in as_json().values())
    found = re.findall(r"%22datasource%22%3A%22(\w+)%22", text)
    assert found, "no Explore links found"
    for uid in found:
        assert uid in DATASOURCE_TYPES


def test_provisioning_has_the_fixed_uids() -> None:
    files = sorted(PROVISIONING.glob("*.y*ml"))
    assert files, "grafana/provisioning/datasources has no datasource file"
    provisioned = {
        ds["uid"]: ds["type"]
        for f in files
        for ds in (yaml.safe_load(f.read_text()) or {}).get("datasources", [])
    }
    assert provisioned == DATASOURCE_TYPES
