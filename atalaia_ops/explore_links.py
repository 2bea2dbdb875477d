"""Grafana Explore links for a query or a trace, on the datasources Atalaia provisions.

The uids (`prometheus`, `loki`, `tempo`) are the fixed ones of grafana/provisioning and of
`atalaia grafana push`, so a link works on any Atalaia Grafana.
"""

from __future__ import annotations

import json
from urllib.parse import quote

DEFAULT_GRAFANA_URL = "http://localhost:3000"


def explore(grafana_url: str, backend: str, query: str, start: float, end: float) -> str:
    """An Explore URL showing `query` (PromQL, LogQL, or a TraceQL query / trace id) over
    [start, end] (Unix seconds)."""
    target: dict[str, object] = {"refId": "A", "datasource": {"type": backend, "uid": backend}}
    if backend == "tempo":
        target.update(queryType="traceql", query=query)
    else:
        target["expr"] = query
    panes = {
        "a": {
            "datasource": backend,
            "queries": [target],
            "range": {"from": str(int(start * 1000)), "to": str(int(end * 1000))},
        }
    }
    encoded = quote(json.dumps(panes, separators=(",", ":")), safe="")
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={encoded}"
