"""Every query of every dashboard, with Grafana's variables substituted, and the names they use.

Used by the tests: the catalogue contract, the real-parser check and the real-data check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

# Grafana's global variables, as the tests substitute them (the values Grafana would compute for a
# 15-minute window with a 15 s scrape interval).
GLOBALS: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "15m",
    "__auto": "1m",
}


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    panel: str  # title
    kind: str  # promql | logql | traceql
    expr: str  # as written in the dashboard
    instant: bool

    def substituted(self, values: Mapping[str, str]) -> str:
        return substitute(self.expr, values)


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace $name, ${name} and ${name:fmt} by values[name] (GLOBALS as fallback)."""
    merged = {**GLOBALS, **values}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in merged:
            raise KeyError(f"no value for variable ${name} in {expr!r}")
        return merged[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def variable_defaults(board: Json) -> dict[str, str]:
    """Each variable's default: textbox value, or '.+' for a multi/All query variable."""
    out: dict[str, str] = {}
    for v in board.get("templating", {}).get("list", []):
        if v["type"] == "textbox":
            out[v["name"]] = str(v["query"])
        elif v["type"] == "query" and v.get("includeAll"):
            out[v["name"]] = v.get("allValue") or ".+"
        elif v["type"] == "datasource":
            out[v["name"]] = v["current"]["value"]
    return out


def panel_queries(board: Json) -> Iterator[Query]:
    for panel in board["panels"]:
        for t in panel.get("targets", []):
            uid = t["datasource"]["uid"]
            kind = t["datasource"]["type"]
            lang = {"prometheus": "promql", "loki": "logql", "tempo": "traceql"}.get(kind)
            if lang is None:
                raise ValueError(f"{board['uid']}/{panel['title']}: unknown datasource {uid}")
            expr = t.get("query") if lang == "traceql" else t.get("expr")
            if not expr:
                raise ValueError(f"{board['uid']}/{panel['title']}: empty query")
            instant = bool(t.get("instant")) or t.get("queryType") == "instant"
            yield Query(board["uid"], panel["title"], lang, expr, instant)


def variable_queries(board: Json) -> Iterator[Query]:
    """label_values(metric, label) variables, as the PromQL selector Grafana runs for them."""
    for v in board.get("templating", {}).get("list", []):
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["definition"])
            if not m:
                raise ValueError(f"{board['uid']}: variable {v['name']} is not label_values()")
            yield Query(board["uid"], f"variable {v['name']}", "promql", m.group(1), True)


# --- names used by a query ------------------------------------------------------------------

PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "anchored",  # range selector modifiers (Prometheus 3)
    "smoothed",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) used by a PromQL expression (variables already substituted)."""
    labels: set[str] = set()
    text = _STRING.sub('""', expr)
    for block in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", block))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for clause in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text
    ):
        labels |= {x.strip() for x in clause.split(",") if x.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    metrics = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        metrics.add(name)
    return metrics, labels


def logql_labels(expr: str) -> set[str]:
    """Stream-selector labels and label-filter names of a LogQL query."""
    text = _STRING.sub('""', expr)
    names: set[str] = set()
    for block in re.findall(r"\{([^}]*)\}", text):
        names |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", block))
    for stage in re.findall(r"\|\s*([a-zA-Z_]\w*)\s*(?:=~|!~|!=|==|=|>|<)", text):
        names.add(stage)
    for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        names |= {x.strip() for x in clause.split(",") if x.strip()}
    return names


def traceql_attributes(expr: str) -> set[str]:
    """Attribute references (resource.x, span.x, .x) and intrinsics of a TraceQL query."""
    text = _STRING.sub('""', expr)
    attrs = set(re.findall(r"\b(?:resource|span)\.([\w.]+)", text))
    attrs |= set(re.findall(r"(?<![\w.])\.([\w.]+)", text))
    return attrs
