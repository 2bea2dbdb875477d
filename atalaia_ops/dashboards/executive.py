"""Executive view (seed 003): today's output, cost, hours saved and ROI.

The value of an hour of human work and the minutes a human would spend on one task are
dashboard variables (text boxes), so each team types in its own numbers.
"""

from __future__ import annotations

from atalaia_ops.cost import cost_usd, total
from atalaia_ops.dashboards.model import Dashboard, Variable
from atalaia_ops.dashboards.panels import T, prom, stat, timeseries

# The agents' tasks (their invoke_agent spans, counted by the collector): any fleet has them.
# Totals over the time range are exact differences, like the cost (atalaia_ops.cost.total).
TASKS = "atalaia_agent_tasks_total"
DONE = "sum(" + total(TASKS + '{atalaia_task_outcome="success"}', "$__range") + ")"
FAILED = "sum(" + total(TASKS + '{atalaia_task_outcome!="success"}', "$__range") + ")"
COST = cost_usd("$__range")  # every emitter's tokens, priced by the stack (docs/cost.md)
HOURS_SAVED = f"{DONE} * $minutes_per_task / 60"


def build() -> Dashboard:
    d = Dashboard(
        uid="atalaia-executive",
        title="Atalaia / Executive",
        description="Seed 003: tasks done and failed today, success rate, cost, human hours saved, "
        "ROI and budget left. Set the human hourly rate and minutes per task above.",
        tags=["atalaia", "executive", "business"],
        file="executive.json",
        time_from="now/d",
        refresh="5m",
        variables=[
            Variable(
                "human_rate",
                "Human rate (USD/h)",
                "textbox",
                default="50",
                description="What an hour of the human work the agents replace costs, in USD",
            ),
            Variable(
                "minutes_per_task",
                "Minutes per task",
                "textbox",
                default="15",
                description="Minutes a person would spend on one task the agents finish",
            ),
        ],
    )
    d.add_row(
        None,
        stat(
            "Tasks done",
            "Tasks finished successfully in the time range (default: today).",
            prom(DONE, "done"),
            w=6,
            thresholds=(T(None, "green"),),
        ),
        stat(
            "Tasks failed",
            "Tasks that failed in the time range (default: today).",
            prom(FAILED, "failed"),
            w=6,
            thresholds=(T(None, "green"), T(1, "orange")),
        ),
        stat(
            "Success rate",
            "Successful share of finished tasks in the time range; the SLO is 95 %.",
            prom(f"{DONE} / sum({total(TASKS, '$__range')})", "success"),
            unit="percentunit",
            decimals=1,
            w=6,
            thresholds=(T(None, "red"), T(0.95, "green")),
        ),
        stat(
            "Budget left today",
            "Share of today's total LLM budget left across departments. Needs an orchestrator "
            "that exposes Atalaia's orchestrator budget series; empty without one.",
            prom(
                "1 - sum(orchestrator_budget_spent_usd) / sum(orchestrator_budget_limit_usd)",
                "left",
            ),
            unit="percentunit",
            decimals=0,
            w=6,
            thresholds=(T(None, "red"), T(0.1, "orange"), T(0.3, "green")),
        ),
    )
    d.add_row(
        None,
        stat(
            "Cost",
            "LLM spend in the time range (default: today).",
            prom(COST, "USD"),
            unit="currencyUSD",
            decimals=2,
            w=6,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Average cost per task",
            "LLM spend divided by successful tasks in the time range.",
            prom(f"{COST} / {DONE}", "USD/task"),
            unit="currencyUSD",
            decimals=3,
            w=6,
            thresholds=(T(None, "green"), T(0.15, "red")),
        ),
        stat(
            "Human hours saved",
            "Successful tasks x minutes per task / 60 (variable: minutes per task).",
            prom(HOURS_SAVED, "hours"),
            unit="h",
            decimals=1,
            w=6,
            thresholds=(T(None, "green"),),
        ),
        stat(
            "ROI",
            "(hours saved x human rate - LLM cost) / LLM cost over the time range.",
            prom(f"({HOURS_SAVED} * $human_rate - {COST}) / {COST}", "ROI"),
            unit="percentunit",
            decimals=0,
            w=6,
            thresholds=(T(None, "red"), T(0, "orange"), T(1, "green")),
        ),
    )
    d.add_row(
        None,
        timeseries(
            "Tasks per hour by outcome",
            "Finished tasks per hour, by outcome.",
            prom(
                "sum by (atalaia_task_outcome) (rate(atalaia_agent_tasks_total[$__rate_interval]))"
                " * 3600",
                "{{atalaia_task_outcome}}",
            ),
            w=12,
            stack=True,
        ),
        timeseries(
            "Value vs cost (USD/h)",
            "Value of the human time saved per hour (at the human rate) against LLM spend per "
            "hour.",
            prom(
                'sum(rate(atalaia_agent_tasks_total{atalaia_task_outcome="success"}'
                "[$__rate_interval])) * 3600"
                " * $minutes_per_task / 60 * $human_rate",
                "value",
            ),
            prom(f"{cost_usd('$__rate_interval', rate=True)} * 3600", "LLM cost"),
            unit="currencyUSD",
            w=12,
        ),
    )
    return d
