"""Fleet TV: the Grafana home, read from across a room on a 1920x1080 screen.

No row headers (they cost a grid unit each) and four bands of panels whose heights add up to
`TV_ROWS` grid units; tests/unit/test_dash_layout.py proves that this fits 1080 px.
"""

from __future__ import annotations

from atalaia_ops.cost import cost_usd
from atalaia_ops.dashboards.model import Dashboard
from atalaia_ops.dashboards.panels import (
    T,
    agent_link,
    bargauge,
    dashboard_link,
    heatmap,
    logql,
    logs,
    prom,
    stat,
    table,
    table_prom,
    timeseries,
)

TV_ROWS = 26  # 5 + 5 + 8 + 8 grid units; see docs/dashboards.md for the pixel budget

# Everything here but the budget and the queue comes from what any agent sends: the series the
# collector derives from spans and log records (docs/telemetry.md, "Derived in the collector").
TASKS = "atalaia_agent_tasks_total"
TASK_BUCKETS = "atalaia_agent_task_duration_seconds_bucket"
AGENT_SPANS = 'atalaia_span_calls_total{gen_ai_agent_name!=""}'
# Seconds since the agent's spans last moved (15 s steps over the last hour). The span-metric
# series themselves keep being exported for a while after the last span, so their timestamps
# would say nothing; their rate does.
IDLE = (
    "time() - max by (gen_ai_agent_name) (max_over_time((timestamp("
    f"sum by (gen_ai_agent_name) (rate({AGENT_SPANS}[1m])) > 0))[1h:15s]))"
)
ORCHESTRATOR_ONLY = (
    " Needs an orchestrator that exposes Atalaia's orchestrator series "
    "(docs/telemetry.md); empty without one."
)


def build() -> Dashboard:
    d = Dashboard(
        uid="atalaia-fleet-tv",
        title="Atalaia / Fleet TV",
        description="The fleet at a glance, for a TV: agents, tasks, latency, spend, alerts "
        "and errors.",
        tags=["atalaia", "tv", "fleet"],
        file="fleet-tv.json",
        refresh="30s",
        time_from="now-1h",
        kiosk=True,
        links=[
            dashboard_link("atalaia-agent", "Agent drill-down", keep_vars=False),
            dashboard_link("atalaia-slos", "SLOs", keep_vars=False),
            dashboard_link("atalaia-llm-cost", "LLM tokens & cost", keep_vars=False),
        ],
    )
    d.add_row(
        None,
        stat(
            "Agents active",
            "Agents whose spans arrived in the last 5 minutes, out of those seen in the last day "
            "(gen_ai.agent.name, else the service name).",
            prom(
                f"count(sum by (gen_ai_agent_name) (increase({AGENT_SPANS}[5m])) > 0) or vector(0)",
                "active",
                instant=True,
            ),
            prom(
                f"count(count by (gen_ai_agent_name) (last_over_time({AGENT_SPANS}[1d])))",
                "known",
                instant=True,
            ),
            text_mode="value_and_name",
            thresholds=(T(None, "red"), T(1, "green")),
        ),
        stat(
            "Tasks / min",
            "Tasks the agents finished per minute, success and failure (their invoke_agent spans).",
            prom(f"sum(rate({TASKS}[$__rate_interval])) * 60", "tasks/min"),
            unit="short",
            decimals=1,
            graph=True,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Task success (1h) vs SLO",
            "Share of finished tasks that succeeded over the last hour; red below the task "
            "success SLO objective (95 %).",
            prom(
                f'sum(rate({TASKS}{{atalaia_task_outcome="success"}}[1h]))'
                f" / sum(rate({TASKS}[1h]))",
                "success",
                instant=True,
            ),
            prom('slo:objective:ratio{slo="task_success"}', "objective", instant=True),
            unit="percentunit",
            decimals=1,
            text_mode="value_and_name",
            thresholds=(T(None, "red"), T(0.95, "orange"), T(0.99, "green")),
        ),
        stat(
            "Task latency p95",
            "95th percentile of the agents' task duration; SLO p99 is 120 s.",
            prom(
                f"histogram_quantile(0.95, sum by (le) (rate({TASK_BUCKETS}[$__rate_interval])))",
                "p95",
            ),
            unit="s",
            decimals=1,
            thresholds=(T(None, "green"), T(30, "orange"), T(120, "red")),
        ),
        stat(
            "LLM spend, 24 h",
            "USD spent on LLM calls over the last 24 hours, every agent's tokens priced by the "
            "stack (docs/cost.md).",
            prom(cost_usd("24h"), "spent", instant=True),
            unit="currencyUSD",
            decimals=2,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Budget left today",
            "Daily LLM budget left across departments; red when the emptiest department has "
            "under 10 % left." + ORCHESTRATOR_ONLY,
            prom(
                "sum(orchestrator_budget_limit_usd) - sum(orchestrator_budget_spent_usd)",
                "left",
                instant=True,
            ),
            unit="currencyUSD",
            decimals=2,
            thresholds=(T(None, "red"), T(1, "orange"), T(10, "green")),
        ),
    )
    d.add_row(
        None,
        stat(
            "Idle time by agent",
            "Seconds since each agent's spans last arrived (any emitter); orange after a "
            "minute, red after five. Click an agent to open its drill-down.",
            prom(IDLE, "{{gen_ai_agent_name}}", instant=True),
            unit="s",
            decimals=0,
            w=12,
            text_mode="value_and_name",
            thresholds=(T(None, "green"), T(60, "orange"), T(300, "red")),
            data_links=[agent_link()],
        ),
        stat(
            "LLM burn rate",
            "USD per hour spent on LLM calls, at the current rate.",
            prom(f"{cost_usd('$__rate_interval', rate=True)} * 3600", "USD/h"),
            unit="currencyUSD",
            decimals=2,
            graph=True,
            thresholds=(T(None, "green"), T(5, "orange"), T(20, "red")),
        ),
        stat(
            "Queue depth",
            "Tasks waiting for an agent, all priorities." + ORCHESTRATOR_ONLY,
            prom("sum(orchestrator_queue_depth)", "waiting"),
            graph=True,
            thresholds=(T(None, "green"), T(10, "orange"), T(50, "red")),
        ),
        stat(
            "Firing alerts",
            "Alerts firing now (Prometheus ALERTS), the always-firing Watchdog excluded.",
            prom(
                'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
                "firing",
                instant=True,
            ),
            thresholds=(T(None, "green"), T(1, "red")),
        ),
    )
    d.add_row(
        None,
        timeseries(
            "Task latency p95 / p99",
            "The agents' task latency percentiles. The dots are exemplars from the collector's "
            "span metrics of invoke_agent spans: click one to open its trace in Tempo.",
            prom(
                f"histogram_quantile(0.95, sum by (le) (rate({TASK_BUCKETS}[$__rate_interval])))",
                "p95",
            ),
            prom(
                f"histogram_quantile(0.99, sum by (le) (rate({TASK_BUCKETS}[$__rate_interval])))",
                "p99",
            ),
            prom(
                "histogram_quantile(0.99, sum by (le) (rate(atalaia_span_duration_seconds_bucket"
                '{gen_ai_operation_name="invoke_agent"}[$__rate_interval])))',
                "p99 (exemplars)",
                exemplar=True,
            ),
            unit="s",
            w=8,
            thresholds=(T(None, "green"), T(120, "red")),
            threshold_style="dashed",
        ),
        bargauge(
            "Errors by agent",
            "Spans that ended in error per minute, by agent (failed LLM calls, tools and tasks, "
            "from any emitter). Click a bar to open the agent.",
            prom(
                "sum by (gen_ai_agent_name) (rate(atalaia_span_calls_total"
                '{gen_ai_agent_name!="", status_code="STATUS_CODE_ERROR"}[$__rate_interval])) * 60',
                "{{gen_ai_agent_name}}",
            ),
            unit="short",
            thresholds=(T(None, "green"), T(1, "orange"), T(5, "red")),
            data_links=[agent_link()],
        ),
        table(
            "Firing alerts",
            "Every alert firing now, with its severity (Prometheus ALERTS series).",
            table_prom('sum by (alertname, severity) (ALERTS{alertstate="firing"})'),
            w=8,
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True, "Value": True}},
                }
            ],
        ),
    )
    d.add_row(
        None,
        heatmap(
            "Log volume by service",
            "Log records per minute from each service (counted by the collector), one heatmap "
            "row per service; the lines themselves are in Loki.",
            prom(
                "sum by (service_name) (rate(atalaia_log_records_total[$__rate_interval])) * 60",
                "{{service_name}}",
            ),
        ),
        logs(
            "Latest errors",
            "The newest ERROR log lines of the fleet. Expand a line and follow its trace_id to "
            "the trace (Loki derived field to Tempo).",
            logql('{service_name=~".+"} | detected_level=~"(?i)error|critical|fatal"'),
        ),
    )
    return d
