"""Atalaia's Grafana dashboards as code.

`python -m atalaia_ops.dashboards generate` writes every dashboard to grafana/dashboards/;
`... check` fails when the committed JSON differs from a fresh generation.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from atalaia_ops.dashboards import executive, fleet_tv, llm_cost, operations, slos, stack_health
from atalaia_ops.dashboards.model import Dashboard, Json

BUILDERS: tuple[Callable[[], Dashboard], ...] = (
    fleet_tv.build,
    operations.sla_shifts,
    llm_cost.build,
    executive.build,
    operations.agent_drilldown,
    operations.distributed_fallback,
    slos.build,
    stack_health.build,
    operations.business,
)

FOLDER = "Atalaia"  # the provisioning provider's folder; `atalaia grafana push` uses the same


def dashboards() -> list[Dashboard]:
    return [build() for build in BUILDERS]


def render(d: Dashboard) -> str:
    """The committed form: sorted keys are not used, so the JSON reads in Grafana's own order."""
    return json.dumps(d.to_json(), indent=2, ensure_ascii=False) + "\n"


def as_json() -> dict[str, Json]:
    """file name -> dashboard JSON, for every dashboard."""
    return {d.file: d.to_json() for d in dashboards()}
