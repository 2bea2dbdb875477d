"""SLOs and error budgets, read from the series the SLO recording rules write (slo:*), and the
orchestrator API's RED metrics that the availability SLO reads."""

from __future__ import annotations

from atalaia_ops.dashboards.model import Dashboard, Variable
from atalaia_ops.dashboards.panels import T, bargauge, prom, table, table_prom, timeseries

SLO = 'slo=~"$slo"'
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
RI = "$__rate_interval"
# The orchestrator API's requests, as the availability SLO reads them (prometheus/slos.yaml):
# the OpenTelemetry FastAPI instrumentation's duration histogram (docs/telemetry.md).
API = 'service_name="orchestrator"'
API_COUNT = "http_server_request_duration_seconds_count"
API_BUCKETS = "http_server_request_duration_seconds_bucket"
SERVER_ERROR = 'http_response_status_code=~"5.."'


def burn_rate(window: str) -> str:
    """Error ratio over the window divided by the error budget (1 - objective)."""
    return (
        f"slo:sli_error:ratio_rate{window}{{{SLO}}} / on (slo) (1 - slo:objective:ratio{{{SLO}}})"
    )


def api_rate(by: str, matchers: str = API) -> str:
    return f"sum by ({by}) (rate({API_COUNT}{{{matchers}}}[{RI}]))"


def build() -> Dashboard:
    d = Dashboard(
        uid="atalaia-slos",
        title="Atalaia / SLOs",
        description="Every SLO: current SLI, objective, error budget remaining and burn rate for "
        "each alerting window (1 = spending the budget exactly over 30 days); the orchestrator "
        "API's request rate, 5xx ratio and p95 duration by route, which availability reads.",
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
    d.add_row(
        "Orchestrator API (availability)",
        timeseries(
            "API requests by route and status",
            "Requests per second to the orchestrator's API by route template and status code "
            "(health checks and scrapes are not measured; a request that matched no route has "
            "no route). The agents' heartbeats are its steady traffic.",
            prom(
                api_rate("http_route, http_response_status_code"),
                "{{http_route}} {{http_response_status_code}}",
            ),
            unit="reqps",
            w=8,
            stack=True,
        ),
        timeseries(
            "API 5xx ratio by route",
            "Share of each route's requests answered with a server error (5xx), what the "
            "availability SLO counts; 0 where a route had none. The dashed line is the error "
            "budget (0.5 %). A 4xx is the caller's error and is not in it.",
            prom(
                f"({api_rate('http_route', f'{API}, {SERVER_ERROR}')}"
                f" or 0 * {api_rate('http_route')}) / {api_rate('http_route')}",
                "{{http_route}}",
            ),
            unit="percentunit",
            w=8,
            min=0,
            thresholds=(T(None, "green"), T(0.005, "red")),
            threshold_style="dashed",
        ),
        timeseries(
            "API p95 duration by route",
            "95th percentile of the time the orchestrator's API took to answer, by route "
            "template (the buckets of the HTTP conventions, 5 ms to 10 s); the dots are "
            "exemplars that open the request's trace.",
            prom(
                f"histogram_quantile(0.95, sum by (le, http_route) "
                f"(rate({API_BUCKETS}{{{API}}}[{RI}])))",
                "{{http_route}}",
                exemplar=True,
            ),
            unit="s",
            w=8,
        ),
    )
    return d
