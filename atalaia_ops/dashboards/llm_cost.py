"""LLM tokens & cost: tokens, spend, latency and errors by model, department and agent."""

from __future__ import annotations

from atalaia_ops.cost import cost_usd, total
from atalaia_ops.dashboards.model import Dashboard
from atalaia_ops.dashboards.panels import T, agent_link, bargauge, prom, stat, timeseries

RI = "$__rate_interval"
# Every emitter's tokens priced by the stack (prometheus/rules/cost.yml, docs/cost.md).
UNPRICED = " Tokens of models the price table lacks are not in it (alert LLMModelUnpriced)."


def build() -> Dashboard:
    d = Dashboard(
        uid="atalaia-llm-cost",
        title="Atalaia / LLM tokens & cost",
        description="Tokens by model and type, cost by model, department and agent, cost per task, "
        "LLM latency and errors, cached-token share and budgets.",
        tags=["atalaia", "llm", "cost"],
        file="llm-cost.json",
    )
    d.add_row(
        "Spend",
        stat(
            "Cost in range",
            "USD spent on LLM calls in the time range: every agent's tokens, priced by the stack "
            "from the price table." + UNPRICED,
            prom(cost_usd("$__range"), "USD"),
            unit="currencyUSD",
            decimals=2,
            w=6,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Cost per task",
            "LLM USD per successful agent task over the time range; the cost-per-task SLO is "
            "$0.15.",
            prom(
                f"{cost_usd('$__range')} / sum("
                + total('atalaia_agent_tasks_total{atalaia_task_outcome="success"}', "$__range")
                + ")",
                "USD/task",
            ),
            unit="currencyUSD",
            decimals=3,
            w=6,
            thresholds=(T(None, "green"), T(0.1, "orange"), T(0.15, "red")),
        ),
        stat(
            "Cached-token share",
            "Share of input tokens served from the provider's prompt cache over the time range "
            "(from the spans' token counts).",
            prom(
                "sum("
                + total('atalaia_genai_tokens_total{gen_ai_token_type="cache_read"}', "$__range")
                + ") / sum("
                + total('atalaia_genai_tokens_total{gen_ai_token_type="input"}', "$__range")
                + ")",
                "cached",
            ),
            unit="percentunit",
            decimals=1,
            w=6,
            thresholds=(T(None, "orange"), T(0.2, "green")),
        ),
        bargauge(
            "Budget remaining by department",
            "Share of each department's daily LLM budget left (the orchestrator's ledger). Needs "
            "an orchestrator that exposes Atalaia's orchestrator budget series; empty without "
            "one.",
            prom(
                "min by (atalaia_department) (orchestrator_budget_remaining_ratio)",
                "{{atalaia_department}}",
            ),
            unit="percentunit",
            w=6,
            h=6,
            min=0,
            max=1,
            thresholds=(T(None, "red"), T(0.1, "orange"), T(0.3, "green")),
        ),
    )
    d.add_row(
        "Cost",
        timeseries(
            "Cost by model (USD/h)",
            "LLM spend rate per requested model." + UNPRICED,
            prom(
                f"{cost_usd(RI, by=('gen_ai_request_model',), rate=True)} * 3600",
                "{{gen_ai_request_model}}",
            ),
            unit="currencyUSD",
            w=8,
            stack=True,
        ),
        timeseries(
            "Cost by department (USD/h)",
            "LLM spend rate per department.",
            prom(
                f"{cost_usd(RI, by=('atalaia_department',), rate=True)} * 3600",
                "{{atalaia_department}}",
            ),
            unit="currencyUSD",
            w=8,
            stack=True,
        ),
        timeseries(
            "Cost by agent (USD/h)",
            "LLM spend rate per agent; click a series to open the agent.",
            prom(
                f"{cost_usd(RI, by=('gen_ai_agent_name',), rate=True)} * 3600",
                "{{gen_ai_agent_name}}",
            ),
            unit="currencyUSD",
            w=8,
            stack=True,
            data_links=[agent_link()],
        ),
    )
    d.add_row(
        "Tokens",
        timeseries(
            "Tokens per minute by model and type",
            "Tokens per minute by type (input and output, and the cached and reasoning parts of "
            "them), counted from the spans.",
            prom(
                "sum by (gen_ai_request_model, gen_ai_token_type) "
                f"(rate(atalaia_genai_tokens_total[{RI}])) * 60",
                "{{gen_ai_request_model}} {{gen_ai_token_type}}",
            ),
            w=12,
            stack=True,
        ),
        timeseries(
            "Cached tokens per minute by model",
            "Input tokens served from the provider's cache, per model.",
            prom(
                "sum by (gen_ai_request_model) (rate(atalaia_genai_tokens_total"
                f'{{gen_ai_token_type="cache_read"}}[{RI}])) * 60',
                "{{gen_ai_request_model}}",
            ),
            w=12,
        ),
    )
    d.add_row(
        "Latency and errors",
        timeseries(
            "LLM latency p50 / p95 / p99 by model",
            "LLM call duration percentiles per model (from the spans); the dots are exemplars "
            "(the collector's span metrics of the calls) that open the call's trace.",
            *(
                prom(
                    f"histogram_quantile({q}, sum by (le, gen_ai_request_model) "
                    f"(rate(atalaia_genai_duration_seconds_bucket[{RI}])))",
                    f"p{int(q * 100)} {{{{gen_ai_request_model}}}}",
                )
                for q in (0.5, 0.95, 0.99)
            ),
            prom(
                "histogram_quantile(0.99, sum by (le) (rate(atalaia_span_duration_seconds_bucket"
                f'{{gen_ai_operation_name=~"chat|text_completion|generate_content|embeddings"}}'
                f"[{RI}])))",
                "p99 (exemplars)",
                exemplar=True,
            ),
            unit="s",
            w=12,
        ),
        timeseries(
            "LLM errors by type",
            "Failed LLM calls per minute by error type (the collector's classes: rate_limit, "
            "timeout, server_error, …) and model.",
            prom(
                "sum by (error_type, gen_ai_request_model) (rate("
                f'atalaia_genai_calls_total{{error_type!=""}}[{RI}])) * 60',
                "{{error_type}} {{gen_ai_request_model}}",
            ),
            w=12,
            stack=True,
            thresholds=(T(None, "green"), T(1, "red")),
        ),
    )
    return d
