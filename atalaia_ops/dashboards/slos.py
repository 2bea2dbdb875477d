"""SLOs and error budgets, read from the series the SLO recording rules write (slo:*)."""

from __future__ import annotations

from atalaia_ops.dashboards.model import Dashboard, Variable
from atalaia_ops.dashboards.panels import T, bargauge, prom, table, table_prom, timeseries

SLO = 'slo=~"$slo"'
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")


def burn_rate(window: str) -> str:
    """Error ratio over the window divided by the error budget (1 - objective)."""
    return (
        f"slo:sli_error:ratio_rate{window}{{{SLO}}} / on (slo) (1 - slo:objective:ratio{{{SLO}}})"
    )


def build() -> Dashboard:
    d = Dashboard(
        uid="atalaia-slos",
        title="Atalaia / SLOs",
        description="Every SLO: current SLI, objective, error budget remaining and burn rate for "
        "each alerting window (1 = spending the budget exactly over 30 days).",
        tags=["atalaia", "slo"],
        file="slos.json",
        time_from="now-24h",
        variables=[
            Variable(
                "slo",
                "SLO",
                "query",
                "label_values(slo:objective:ratio, slo)",
                multi=True,
                include_all=True,
                description="SLOs from prometheus/slos.yaml",
            )
        ],
    )
    d.add_row(
        "Now",
        table(
            "SLO summary",
            "Per SLO: objective, SLI over 1 h and 30 d (1 - error ratio), error budget remaining "
            "and the 1 h burn rate.",
            table_prom(f"slo:objective:ratio{{{SLO}}}"),
            table_prom(f"1 - slo:sli_error:ratio_rate1h{{{SLO}}}"),
            table_prom(f"1 - slo:sli_error:ratio_rate30d{{{SLO}}}"),
            table_prom(f"slo:error_budget_remaining:ratio{{{SLO}}}"),
            table_prom(burn_rate("1h")),
            unit="percentunit",
            w=16,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "objective",
                            "Value #B": "SLI 1h",
                            "Value #C": "SLI 30d",
                            "Value #D": "budget left",
                            "Value #E": "burn rate 1h",
                        },
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "burn rate 1h"},
                    "properties": [
                        {"id": "unit", "value": "x"},
                        {
                            "id": "thresholds",
                            "value": {
                                "mode": "absolute",
                                "steps": [
                                    {"color": "green", "value": None},
                                    {"color": "orange", "value": 1},
                                    {"color": "red", "value": 14.4},
                                ],
                            },
                        },
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    ],
                }
            ],
        ),
        bargauge(
            "Error budget remaining",
            "Share of the 30-day error budget left; negative when overspent.",
            prom(f"slo:error_budget_remaining:ratio{{{SLO}}}", "{{slo}}", instant=True),
            unit="percentunit",
            min=-1,
            max=1,
            thresholds=(T(None, "red"), T(0.25, "orange"), T(0.5, "green")),
        ),
    )
    d.add_row(
        "Burn rates",
        *(
            timeseries(
                f"Burn rate {long} / {short}",
                f"Burn rate over {long} and {short}: the multiwindow alert fires when both exceed "
                f"{factor} ({severity}).",
                prom(burn_rate(long), f"{{{{slo}}}} {long}"),
                prom(burn_rate(short), f"{{{{slo}}}} {short}"),
                unit="x",
                w=12,
                thresholds=(T(None, "green"), T(factor, "red")),
                threshold_style="dashed",
            )
            for long, short, factor, severity in (
                ("1h", "5m", 14.4, "page"),
                ("6h", "30m", 6, "page"),
                ("1d", "2h", 3, "ticket"),
                ("3d", "6h", 1, "ticket"),
            )
        ),
    )
    d.add_row(
        "SLI",
        timeseries(
            "SLI over time (1h window)",
            "1 - error ratio over the last hour, with the objective as a dashed line per SLO.",
            prom(f"1 - slo:sli_error:ratio_rate1h{{{SLO}}}", "{{slo}}"),
            prom(f"slo:objective:ratio{{{SLO}}}", "{{slo}} objective"),
            unit="percentunit",
            w=24,
        ),
    )
    return d
