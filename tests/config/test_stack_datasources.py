"""Grafana datasources: the four fixed uids exist, are cross-linked, and every uid that a
provisioning file or dashboard refers to is one of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tools.upstream import REPO

GRAFANA = REPO / "grafana"
FIXED_UIDS = {"prometheus", "loki", "tempo", "alertmanager"}
# Grafana's built-in pseudo datasources that panels may name.
BUILTIN = {"grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"}


def provisioned() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in sorted((GRAFANA / "provisioning" / "datasources").glob("*.y*ml")):
        for ds in yaml.safe_load(f.read_text()).get("datasources", []):
            assert ds["uid"] not in out, f"uid {ds['uid']} provisioned twice"
            out[ds["uid"]] = ds
    return out


def references(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """(uid, location) for every datasource reference inside a YAML/JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasourceUid" and isinstance(value, str):
                yield value, where
            elif key == "datasource":
                if isinstance(value, dict) and isinstance(value.get("uid"), str):
                    yield value["uid"], where
                elif isinstance(value, str):
                    yield value, where
            if isinstance(value, dict | list):
                yield from references(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from references(item, f"{where}[{i}]")


def datasource_variables(dashboard: dict) -> set[str]:
    """Names of a dashboard's datasource template variables ($ds / ${ds} refer to them)."""
    return {
        v["name"]
        for v in dashboard.get("templating", {}).get("list", [])
        if v.get("type") == "datasource"
    }


def unknown_references(files: list[Path], known: set[str]) -> list[str]:
    bad = []
    for f in files:
        doc = json.loads(f.read_text()) if f.suffix == ".json" else yaml.safe_load(f.read_text())
        variables = datasource_variables(doc) if f.suffix == ".json" else set()
        for uid, where in references(doc, f.relative_to(f.parents[1]).as_posix()):
            name = uid.strip("${}")
            if uid in known or uid in BUILTIN or (uid.startswith("$") and name in variables):
                continue
            bad.append(f"{where}: {uid!r}")
    return bad


def grafana_files() -> list[Path]:
    files = sorted((GRAFANA / "provisioning").rglob("*.y*ml"))
    return files + sorted((GRAFANA / "dashboards").rglob("*.json"))


def test_the_four_fixed_uids_are_provisioned() -> None:
    ds = provisioned()
    assert set(ds) == FIXED_UIDS
    assert {d["type"] for d in ds.values()} == FIXED_UIDS  # uid == type, by design


def test_every_referenced_uid_exists() -> None:
    assert unknown_references(grafana_files(), set(provisioned())) == []


def test_an_unknown_uid_is_caught(tmp_path: Path) -> None:
    (tmp_path / "dashboards").mkdir()
    dash = tmp_path / "dashboards" / "x.json"
    dash.write_text(
        json.dumps(
            {
                "templating": {"list": [{"name": "ds", "type": "datasource"}]},
                "panels": [
                    {"datasource": {"type": "prometheus", "uid": "prometheus"}},
                    {"datasource": {"uid": "${ds}"}},
                    {"datasource": {"type": "loki", "uid": "P8E80F9AEF21F6940"}},
                    {"targets": [{"datasource": "$undefined"}]},
                ],
            }
        )
    )
    assert len(unknown_references([dash], FIXED_UIDS)) == 2


def test_cross_links() -> None:
    ds = provisioned()
    prom, loki, tempo = (
        ds["prometheus"]["jsonData"],
        ds["loki"]["jsonData"],
        ds["tempo"]["jsonData"],
    )
    # exemplar -> trace
    assert {e["name"]: e["datasourceUid"] for e in prom["exemplarTraceIdDestinations"]} == {
        "trace_id": "tempo"
    }
    # log line -> trace, on the trace_id structured metadata (a label matcher, not a regex)
    (field,) = loki["derivedFields"]
    assert (field["datasourceUid"], field["matcherType"], field["matcherRegex"]) == (
        "tempo",
        "label",
        "trace_id",
    )
    # trace -> logs by trace id and service; trace -> metrics; service map; node graph
    to_logs = tempo["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    assert "trace_id=" in to_logs["query"] and "__trace.traceId" in to_logs["query"]
    assert {"key": "service.name", "value": "service_name"} in to_logs["tags"]
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"
    assert tempo["nodeGraph"]["enabled"] is True


def test_dashboards_provider_points_at_the_mounted_dashboards() -> None:
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "atalaia.yaml").read_text()
    )["providers"]
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
