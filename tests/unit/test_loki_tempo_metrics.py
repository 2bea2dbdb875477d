"""Every Loki and Tempo self-metric the dashboards and alert rules read is in
docs/loki-tempo-metrics.yaml, read from its upstream source at the pinned release (Loki and Tempo
are AGPL and are not run by the tests), with the label values the queries select on."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from atalaia_ops.dashboards import as_json
from atalaia_ops.dashboards.queries import panel_queries, promql_names, variable_defaults
from tools.upstream import REPO, read_versions

DATA = REPO / "docs" / "loki-tempo-metrics.yaml"
RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
COMPONENTS = {"loki": "LOKI_VERSION", "tempo": "TEMPO_VERSION"}


@cache
def data() -> dict[str, Any]:
    return dict(yaml.safe_load(DATA.read_text()))


def listed() -> dict[str, dict[str, Any]]:
    return {name: m for c in COMPONENTS for name, m in data()[c]["metrics"].items()}


def exprs() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard query and every rule."""
    out = []
    for board in as_json().values():
        values = {**variable_defaults(board), "agent": "Helix"}
        for q in panel_queries(board):
            if q.kind == "promql":
                out.append((f"dashboard {q.dashboard} / {q.panel}", q.substituted(values)))
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                out.append((f"{path.relative_to(REPO)}: {name}", str(rule["expr"])))
    return out


def listed_name(series: str) -> str | None:
    """The entry a series belongs to: itself, or the histogram it is a _bucket/_sum/_count of."""
    metrics = listed()
    if series in metrics:
        return series
    for suffix in HISTOGRAM_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and metrics.get(base, {}).get("type") == "histogram":
            return base
    return None


def used() -> dict[str, list[str]]:
    """loki_* / tempo_* series -> where they are used."""
    out: dict[str, list[str]] = {}
    for where, expr in exprs():
        for name in promql_names(expr)[0]:
            if name.startswith(tuple(f"{c}_" for c in COMPONENTS)):
                out.setdefault(name, []).append(where)
    return out


def test_the_list_is_for_the_pinned_releases() -> None:
    pins = read_versions()
    for component, key in COMPONENTS.items():
        version = data()[component]["version"]
        assert version == pins[key], (
            f"{DATA.name} lists {component} {version}'s metrics but versions.env pins {pins[key]}: "
            f"read each source at v{pins[key]} and update the list"
        )


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_entry_names_its_upstream_source(component: str) -> None:
    version = data()[component]["version"]
    for name, m in data()[component]["metrics"].items():
        assert name.startswith(f"{component}_"), name
        assert m["type"] in {"counter", "gauge", "histogram"}, name
        assert m["meaning"], name
        assert m["sources"], name
        own = f"https://github.com/grafana/{component}/blob/v{version}/"
        assert any(s.startswith(own) for s in m["sources"]), f"{name}: no source under {own}"
        for s in m["sources"]:
            assert re.fullmatch(
                r"https://github\.com/grafana/[\w-]+/blob/[\w.]+/[\w/.-]+\.go", s
            ), s
        for label, values in m.get("labels", {}).items():
            for value, source in values.items():
                assert source.startswith(own), f"{name}{{{label}={value!r}}}: source {source}"


def test_every_loki_and_tempo_series_used_is_listed() -> None:
    found = used()
    assert {"loki_distributor_lines_received_total", "tempo_receiver_refused_spans"} <= set(found)
    missing = {name: where for name, where in found.items() if listed_name(name) is None}
    assert not missing, (
        f"not in {DATA.name} (read each in the upstream source at the pinned "
        f"release and add it): {missing}"
    )


def test_nothing_unused_is_listed() -> None:
    in_use = {listed_name(name) for name in used()}
    assert set(listed()) <= in_use, f"listed but not used: {sorted(set(listed()) - in_use)}"


SELECTOR = re.compile(r"\b((?:loki|tempo)_\w+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|=)\s*"([^"]*)"')


def selected_values() -> list[tuple[str, str, str, str]]:
    """(where, metric entry, label, value) for each literal value a query selects a loki_* /
    tempo_* series on: label="v" or label=~"a|b" (a regex that is only alternatives of words;
    patterns such as status_code=~"5.." say nothing about a value's spelling)."""
    out = []
    for where, expr in exprs():
        for series, matchers in SELECTOR.findall(expr):
            for label, _, value in MATCHER.findall(matchers):
                words = value.split("|")
                if all(re.fullmatch(r"\w+", w) for w in words):
                    out += [(where, listed_name(series) or series, label, w) for w in words]
    return out


def test_the_label_values_selected_on_are_listed() -> None:
    found = selected_values()
    assert ("loki_request_duration_seconds", "route", "otlp_v1_logs") in {f[1:] for f in found}
    metrics = listed()
    missing = [
        f"{where}: {name}{{{label}={value!r}}}"
        for where, name, label, value in found
        if value not in metrics.get(name, {}).get("labels", {}).get(label, {})
    ]
    assert not missing, f"label values not in {DATA.name}: {missing}"


def test_a_missing_metric_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The checks can fail: drop an entry from a copy of the list and it is reported."""
    copy = data()["loki"] | {"metrics": dict(data()["loki"]["metrics"])}
    del copy["metrics"]["loki_distributor_lines_received_total"]
    (tmp_path / DATA.name).write_text(yaml.safe_dump({**data(), "loki": copy}))
    monkeypatch.setattr(f"{__name__}.DATA", tmp_path / DATA.name)
    data.cache_clear()
    try:
        with pytest.raises(AssertionError, match="loki_distributor_lines_received_total"):
            test_every_loki_and_tempo_series_used_is_listed()
    finally:
        monkeypatch.undo()
        data.cache_clear()
