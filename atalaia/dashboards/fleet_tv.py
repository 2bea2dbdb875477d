"""Fleet TV: the Grafana home, read from across a room on a 1920x1080 screen.

No row headers (they cost a grid unit each) and four bands of panels whose heights add up to
`TV_ROWS` grid units; tests/unit/test_dash_layout.py proves that this fits 1080 px.
"""

from __future__ import annotations

from atalaia.cost import cost_usd
from atalaia.dashboards.model import Dashboard
from atalaia.dashboards.panels import (
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

HEARTBEAT_AGE = (
    "time() - max by (gen_ai_agent_name) (orchestrator_agent_last_heartbeat_timestamp_seconds)"
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
            "Agents up",
            "Agents whose process the orchestrator's supervisor sees alive, out of all it knows.",
            prom("sum(orchestrator_agent_up)", "up", instant=True),
            prom("count(orchestrator_agent_up)", "known", instant=True),
            text_mode="value_and_name",
            thresholds=(T(None, "red"), T(1, "green")),
        ),
        stat(
            "Tasks / min",
            "Tasks the orchestrator finished per minute (success and failure).",
            prom("sum(rate(orchestrator_tasks_total[$__rate_interval])) * 60", "tasks/min"),
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
                'sum(rate(orchestrator_tasks_total{status="success"}[1h]))'
                " / sum(rate(orchestrator_tasks_total[1h]))",
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
            "95th percentile of end-to-end task duration (enqueue to result); SLO p99 is 120 s.",
            prom(
                "histogram_quantile(0.95, sum by (le) "
                "(rate(orchestrator_task_duration_seconds_bucket[$__rate_interval])))",
                "p95",
            ),
            unit="s",
            decimals=1,
            thresholds=(T(None, "green"), T(30, "orange"), T(120, "red")),
        ),
        stat(
            "LLM spend today",
            "USD spent on LLM calls today across departments (the orchestrator's daily budget "
            "ledger, reset at midnight).",
            prom("sum(orchestrator_budget_spent_usd)", "spent", instant=True),
            unit="currencyUSD",
            decimals=2,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Budget left today",
            "Daily LLM budget left across departments; red when the emptiest department has "
            "under 10 % left.",
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
            "Heartbeat age by agent",
            "Seconds since each agent's last heartbeat in the orchestrator's store; the supervisor "
            "restarts an agent silent for 20 s. Click an agent to open its drill-down.",
            prom(HEARTBEAT_AGE, "{{gen_ai_agent_name}}", instant=True),
            unit="s",
            decimals=0,
            w=12,
            text_mode="value_and_name",
            thresholds=(T(None, "green"), T(20, "orange"), T(60, "red")),
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
            "Tasks waiting for an agent, all priorities.",
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
            "End-to-end task latency percentiles. The dots are exemplars from the agents' task "
            "histogram: click one to open its trace in Tempo.",
            prom(
                "histogram_quantile(0.95, sum by (le) "
                "(rate(orchestrator_task_duration_seconds_bucket[$__rate_interval])))",
                "p95",
            ),
            prom(
                "histogram_quantile(0.99, sum by (le) "
                "(rate(orchestrator_task_duration_seconds_bucket[$__rate_interval])))",
                "p99",
            ),
            prom(
                "histogram_quantile(0.99, sum by (le) "
                "(rate(atalaia_task_duration_seconds_bucket[$__rate_interval])))",
                "agent p99 (exemplars)",
                exemplar=True,
            ),
            unit="s",
            w=8,
            thresholds=(T(None, "green"), T(120, "red")),
            threshold_style="dashed",
        ),
        bargauge(
            "Errors by agent",
            "Errors per minute recorded by each agent (all error types). Click a bar to open "
            "the agent.",
            prom(
                "sum by (gen_ai_agent_name) (rate(atalaia_errors_total[$__rate_interval])) * 60",
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
            "Log volume by agent",
            "Log lines per interval from each agent (Loki), one heatmap row per agent.",
            logql(
                'sum by (gen_ai_agent_name) (count_over_time({gen_ai_agent_name=~".+"} [$__auto]))',
                "{{gen_ai_agent_name}}",
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
