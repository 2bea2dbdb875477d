"""Panel constructors with Atalaia's defaults: big readable stats, legends as tables, links."""

from __future__ import annotations

import json
from urllib.parse import quote

from atalaia_ops.dashboards.model import GREEN_RED, Json, Panel, Target, Threshold

AGENT_DASHBOARD_UID = "atalaia-agent"


def T(v: float | None, color: str) -> Threshold:
    return Threshold(v, color)


def prom(expr: str, legend: str = "", *, instant: bool = False, exemplar: bool = False) -> Target:
    return Target(expr, "promql", legend, instant=instant, exemplar=exemplar)


def table_prom(expr: str) -> Target:
    return Target(expr, "promql", instant=True, fmt="table")


def logql(expr: str, legend: str = "", *, instant: bool = False) -> Target:
    return Target(expr, "logql", legend, instant=instant)


def traceql(expr: str, limit: int = 20) -> Target:
    return Target(expr, "traceql", limit=limit)


def agent_link(label_ref: str = "${__field.labels.gen_ai_agent_name}") -> Json:
    """A data link to the agent drill-down with this series' agent selected."""
    return {
        "title": "Open agent ${__field.labels.gen_ai_agent_name}",
        "url": f"/d/{AGENT_DASHBOARD_UID}?var-agent={label_ref}&${{__url_time_range}}",
    }


def trace_link(field_ref: str) -> Json:
    """A data link that opens a trace id in Explore on the Tempo datasource."""
    panes = {
        "t": {
            "datasource": "tempo",
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "tempo", "uid": "tempo"},
                    "queryType": "traceql",
                    "query": "__TRACE__",
                }
            ],
            "range": {"from": "now-1h", "to": "now"},
        }
    }
    encoded = quote(json.dumps(panes, separators=(",", ":")), safe="")
    return {
        "title": "View trace",
        "url": "/explore?schemaVersion=1&panes=" + encoded.replace("__TRACE__", field_ref),
        "targetBlank": False,
    }


def dashboard_link(uid: str, title: str, keep_vars: bool = True) -> Json:
    url = f"/d/{uid}?${{__url_time_range}}" + ("&${__all_variables}" if keep_vars else "")
    return {"title": title, "url": url}


def stat(
    title: str,
    description: str,
    *targets: Target,
    unit: str = "short",
    w: int = 4,
    h: int = 5,
    thresholds: tuple[Threshold, ...] = (T(None, "green"),),
    decimals: int | None = None,
    text_mode: str = "value",
    calc: str = "lastNotNull",
    graph: bool = False,
    data_links: list[Json] | None = None,
    mappings: list[Json] | None = None,
    min: float | None = None,
    max: float | None = None,
) -> Panel:
    return Panel(
        title,
        description,
        "stat",
        list(targets),
        unit=unit,
        w=w,
        h=h,
        thresholds=thresholds,
        decimals=decimals,
        min=min,
        max=max,
        data_links=data_links or [],
        mappings=mappings or [],
        options={
            "reduceOptions": {"calcs": [calc], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area" if graph else "none",
            "justifyMode": "center",
            "orientation": "auto",
            "textMode": text_mode,
            "wideLayout": True,
            "showPercentChange": False,
        },
    )


def timeseries(
    title: str,
    description: str,
    *targets: Target,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    thresholds: tuple[Threshold, ...] = (T(None, "green"),),
    stack: bool = False,
    bars: bool = False,
    data_links: list[Json] | None = None,
    min: float | None = None,
    max: float | None = None,
    threshold_style: str = "off",
) -> Panel:
    return Panel(
        title,
        description,
        "timeseries",
        list(targets),
        unit=unit,
        w=w,
        h=h,
        thresholds=thresholds,
        min=min,
        max=max,
        color_mode="palette-classic",
        data_links=data_links or [],
        custom={
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 2,
            "fillOpacity": 60 if bars else 15,
            "showPoints": "never",
            "spanNulls": True,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": threshold_style},
        },
        options={
            "legend": {
                "displayMode": "table",
                "placement": "right" if w >= 12 else "bottom",
                "calcs": ["lastNotNull", "max"],
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def bargauge(
    title: str,
    description: str,
    *targets: Target,
    unit: str = "short",
    w: int = 8,
    h: int = 8,
    thresholds: tuple[Threshold, ...] = GREEN_RED,
    data_links: list[Json] | None = None,
    min: float | None = None,
    max: float | None = None,
) -> Panel:
    return Panel(
        title,
        description,
        "bargauge",
        list(targets),
        unit=unit,
        w=w,
        h=h,
        thresholds=thresholds,
        min=min,
        max=max,
        data_links=data_links or [],
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
        },
    )


def table(
    title: str,
    description: str,
    *targets: Target,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    thresholds: tuple[Threshold, ...] = (T(None, "green"),),
    data_links: list[Json] | None = None,
    overrides: list[Json] | None = None,
    transformations: list[Json] | None = None,
) -> Panel:
    return Panel(
        title,
        description,
        "table",
        list(targets),
        unit=unit,
        w=w,
        h=h,
        thresholds=thresholds,
        data_links=data_links or [],
        overrides=overrides or [],
        transformations=transformations or [],
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


def logs(title: str, description: str, target: Target, w: int = 12, h: int = 8) -> Panel:
    return Panel(
        title,
        description,
        "logs",
        [target],
        w=w,
        h=h,
        options={
            "showTime": True,
            "wrapLogMessage": True,
            "prettifyLogMessage": False,
            "enableLogDetails": True,  # details show trace_id with the Loki derived-field link
            "dedupStrategy": "none",
            "sortOrder": "Descending",
            "showLabels": False,
        },
    )


def heatmap(title: str, description: str, target: Target, w: int = 12, h: int = 8) -> Panel:
    return Panel(
        title,
        description,
        "heatmap",
        [target],
        w=w,
        h=h,
        color_mode="scheme",
        options={
            "calculate": False,  # each series (one per agent) is a row of the heatmap
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "steps": 64},
            "yAxis": {"axisPlacement": "left"},
            "rowsFrame": {"layout": "auto"},
            "legend": {"show": True},
            "tooltip": {"mode": "single", "yHistogram": False},
            "cellValues": {"unit": "short"},
        },
    )


def traces_table(title: str, description: str, target: Target, w: int = 24, h: int = 8) -> Panel:
    return Panel(title, description, "table", [target], w=w, h=h, unit="ms", options={})
