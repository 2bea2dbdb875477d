"""Small typed builders for Grafana's dashboard JSON (the classic model, schemaVersion 41).

Grafana 13 still provisions and imports this JSON (its file provider and /api/dashboards/db both
take it and migrate it in memory). Each builder is a dataclass whose `to_json()` emits only the
keys Grafana needs; layout is computed by `Row`/`Grid` so that panels never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 41
GRID_COLUMNS = 24

Json = dict[str, Any]
DatasourceUid = Literal["prometheus", "loki", "tempo", "alertmanager"]
DATASOURCE_TYPES: dict[str, str] = {
    "prometheus": "prometheus",
    "loki": "loki",
    "tempo": "tempo",
    "alertmanager": "alertmanager",
}


PROMETHEUS_VAR = "datasource"  # the name Grafana's dashboard linter expects


def ds(uid: DatasourceUid) -> Json:
    """A datasource reference. Prometheus goes through the `$datasource` variable, whose default
    is the fixed uid `prometheus` (so users with several Prometheus servers can switch); Loki,
    Tempo and Alertmanager are referenced by their fixed uids."""
    if uid == "prometheus":
        return {"type": "prometheus", "uid": f"${{{PROMETHEUS_VAR}}}"}
    return {"type": DATASOURCE_TYPES[uid], "uid": uid}


def datasource_variable() -> Json:
    return {
        "name": PROMETHEUS_VAR,
        "label": "Data Source",
        "type": "datasource",
        "query": "prometheus",
        "description": "Prometheus datasource; Atalaia provisions it with the uid prometheus",
        "current": {"selected": True, "text": "Prometheus", "value": "prometheus"},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


@dataclass(frozen=True)
class Target:
    """One query of a panel. `kind` picks the query language and datasource."""

    expr: str
    kind: Literal["promql", "logql", "traceql"] = "promql"
    legend: str = ""
    instant: bool = False
    fmt: Literal["time_series", "table", "heatmap"] = "time_series"
    exemplar: bool = False
    limit: int = 20

    @property
    def datasource(self) -> DatasourceUid:
        uids: dict[str, DatasourceUid] = {
            "promql": "prometheus",
            "logql": "loki",
            "traceql": "tempo",
        }
        return uids[self.kind]

    def to_json(self, ref_id: str) -> Json:
        out: Json = {"refId": ref_id, "datasource": ds(self.datasource)}
        if self.kind == "promql":
            out |= {
                "expr": self.expr,
                "legendFormat": self.legend or "__auto",
                "range": not self.instant,
                "instant": self.instant,
                "format": self.fmt,
                "exemplar": self.exemplar,
                "editorMode": "code",
            }
        elif self.kind == "logql":
            out |= {
                "expr": self.expr,
                "legendFormat": self.legend,
                "queryType": "instant" if self.instant else "range",
                "editorMode": "code",
            }
        else:
            out |= {
                "query": self.expr,
                "queryType": "traceql",
                "tableType": "traces",
                "limit": self.limit,
            }
        return out


@dataclass(frozen=True)
class Threshold:
    value: float | None
    color: str


GREEN_RED = (Threshold(None, "green"), Threshold(1, "red"))


@dataclass
class Panel:
    """A panel. `w`/`h` are grid units; `x`/`y` are filled in by the layout."""

    title: str
    description: str
    type: str
    targets: list[Target]
    unit: str = "short"
    w: int = 6
    h: int = 6
    thresholds: tuple[Threshold, ...] = (Threshold(None, "green"),)
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    links: list[Json] = field(default_factory=list)
    data_links: list[Json] = field(default_factory=list)
    mappings: list[Json] = field(default_factory=list)
    overrides: list[Json] = field(default_factory=list)
    transformations: list[Json] = field(default_factory=list)
    color_mode: str = "thresholds"
    x: int = 0
    y: int = 0

    def to_json(self, panel_id: int) -> Json:
        defaults: Json = {
            "unit": self.unit,
            "color": {"mode": self.color_mode},
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": t.color, "value": t.value} for t in self.thresholds],
            },
            "mappings": self.mappings,
            "links": self.data_links,
        }
        for key in ("decimals", "min", "max"):
            if (value := getattr(self, key)) is not None:
                defaults[key] = value
        if self.custom:
            defaults["custom"] = self.custom
        refs = [chr(ord("A") + i) for i in range(len(self.targets))]
        first = self.targets[0].datasource if self.targets else "prometheus"
        mixed = len({t.datasource for t in self.targets}) > 1
        panel: Json = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": {"h": self.h, "w": self.w, "x": self.x, "y": self.y},
            "datasource": {"type": "datasource", "uid": "-- Mixed --"} if mixed else ds(first),
            "targets": [t.to_json(r) for t, r in zip(self.targets, refs, strict=True)],
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
        }
        if self.links:
            panel["links"] = self.links
        if self.transformations:
            panel["transformations"] = self.transformations
        return panel


@dataclass
class RowHeader:
    """A collapsed=false row header: one grid unit high, full width."""

    title: str

    def to_json(self, panel_id: int, y: int) -> Json:
        return {
            "id": panel_id,
            "type": "row",
            "title": self.title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y},
            "panels": [],
        }


@dataclass(frozen=True)
class Variable:
    """A dashboard variable: a `query` over a Prometheus label, or a `textbox` / `constant`."""

    name: str
    label: str
    kind: Literal["query", "textbox", "custom"]
    query: str = ""
    default: str = ""
    multi: bool = False
    include_all: bool = False
    description: str = ""

    def to_json(self) -> Json:
        out: Json = {
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "description": self.description,
            "hide": 0,
        }
        if self.kind == "query":
            out |= {
                "datasource": ds("prometheus"),
                "definition": self.query,
                "query": {
                    "query": self.query,
                    "refId": "PrometheusVariableQueryEditor-VariableQuery",
                },
                "refresh": 2,  # on time range change
                "sort": 1,
                "multi": self.multi,
                "includeAll": self.include_all,
                "allValue": ".+" if self.include_all else None,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}
                if self.include_all
                else {},
                "options": [],
                "regex": "",
            }
        elif self.kind == "textbox":
            out |= {
                "query": self.default,
                "current": {"text": self.default, "value": self.default},
                "options": [{"selected": True, "text": self.default, "value": self.default}],
            }
        else:
            out |= {
                "query": self.query,
                "current": {"text": self.default, "value": self.default},
                "options": [],
            }
        return out


Item = Panel | RowHeader


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    tags: list[str]
    file: str  # file name under grafana/dashboards/
    items: list[Item] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    refresh: str = "1m"
    time_from: str = "now-6h"
    links: list[Json] = field(default_factory=list)
    kiosk: bool = False

    def add_row(self, title: str | None, *panels: Panel) -> None:
        """Append a row header (if titled) and panels laid left to right, wrapping at 24."""
        if title:
            self.items.append(RowHeader(title))
        self.items.extend(panels)

    def layout(self) -> list[tuple[Item, int, int]]:
        """Place items: flow panels left to right, wrap when the row is full.

        Returns (item, x, y). A wrapped line starts below the tallest panel of the previous line,
        so nothing overlaps.
        """
        placed: list[tuple[Item, int, int]] = []
        x = y = line_h = 0
        for item in self.items:
            if isinstance(item, RowHeader):
                if x:
                    y, x, line_h = y + line_h, 0, 0
                placed.append((item, 0, y))
                y += 1
                continue
            if item.w > GRID_COLUMNS:
                raise ValueError(f"{self.uid}: panel {item.title!r} is wider than the grid")
            if x + item.w > GRID_COLUMNS:
                y, x, line_h = y + line_h, 0, 0
            placed.append((item, x, y))
            x += item.w
            line_h = max(line_h, item.h)
        return placed

    def to_json(self) -> Json:
        panels: list[Json] = []
        for panel_id, (item, x, y) in enumerate(self.layout(), 1):
            if isinstance(item, RowHeader):
                panels.append(item.to_json(panel_id, y))
            else:
                item.x, item.y = x, y
                panels.append(item.to_json(panel_id))
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": sorted(self.tags),
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,  # shared crosshair
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "templating": {"list": [datasource_variable(), *(v.to_json() for v in self.variables)]},
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "links": self.links,
            "panels": panels,
        }
