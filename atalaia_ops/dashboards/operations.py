"""Operational dashboards: SLA & shifts (seed 000), agent drill-down, distributed fallback
(seed 001) and business (seed 002)."""

from __future__ import annotations

from atalaia_ops.dashboards.model import Dashboard, Variable
from atalaia_ops.dashboards.panels import (
    T,
    agent_link,
    bargauge,
    dashboard_link,
    logql,
    logs,
    prom,
    stat,
    table,
    timeseries,
    trace_link,
    traceql,
    traces_table,
)

AGENT = 'gen_ai_agent_name=~"$agent"'
# An agent's log streams: its gen_ai.agent.name, or its service name when it sends none.
AGENT_LOGS = '{service_name=~".+"} | gen_ai_agent_name="$agent" or service_name="$agent"'
RI = "$__rate_interval"


def agent_variable(multi: bool) -> Variable:
    return Variable(
        "agent",
        "Agent",
        "query",
        # Every agent whose spans reach the collector, whoever instrumented it.
        'label_values(atalaia_span_calls_total{gen_ai_agent_name!=""}, gen_ai_agent_name)',
        multi=multi,
        include_all=multi,
        description="gen_ai.agent.name of every agent that sends spans (else its service name)",
    )


ORCHESTRATOR_ONLY = (
    " Needs an orchestrator that exposes Atalaia's orchestrator series (docs/telemetry.md); "
    "empty without one."
)


def sla_shifts() -> Dashboard:
    d = Dashboard(
        uid="atalaia-sla-shifts",
        title="Atalaia / SLA & shifts",
        description="Seed 000: shifts per agent, self-healing restarts, heartbeats, SLA misses and "
        "the error budget of every SLO.",
        tags=["atalaia", "sla", "shifts"],
        file="sla-shifts.json",
        variables=[agent_variable(multi=True)],
        links=[dashboard_link("atalaia-slos", "SLOs"), dashboard_link("atalaia-agent", "Agent")],
    )
    d.add_row(
        "Shifts",
        stat(
            "On shift now",
            "1 while the agent's shift is on (the supervisor only routes work to agents on shift).",
            prom(
                f"max by (gen_ai_agent_name) (orchestrator_agent_on_shift{{{AGENT}}})",
                "{{gen_ai_agent_name}}",
                instant=True,
            ),
            w=12,
            text_mode="name",
            thresholds=(T(None, "red"), T(1, "green")),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "off shift", "color": "red"},
                        "1": {"text": "on shift", "color": "green"},
                    },
                }
            ],
            data_links=[agent_link()],
        ),
        timeseries(
            "Shifts started",
            "Shifts started per agent in each interval.",
            prom(
                "sum by (gen_ai_agent_name) "
                f"(increase(orchestrator_shifts_total{{{AGENT}}}[{RI}]))",
                "{{gen_ai_agent_name}}",
            ),
            w=12,
            bars=True,
            data_links=[agent_link()],
        ),
    )
    d.add_row(
        "Self-healing",
        timeseries(
            "Restarts by agent and reason",
            "Agent processes the supervisor restarted: crashed (process exited) or "
            "heartbeat_missed (silent for 20 s).",
            prom(
                "sum by (gen_ai_agent_name, reason) "
                f"(increase(orchestrator_agent_restarts_total{{{AGENT}}}[{RI}]))",
                "{{gen_ai_agent_name}} {{reason}}",
            ),
            w=12,
            bars=True,
            stack=True,
            data_links=[agent_link()],
        ),
        timeseries(
            "Heartbeat age",
            "Seconds since each agent's last heartbeat: from the orchestrator's store and from "
            "the agent's own OTLP heartbeat gauge.",
            prom(
                "time() - max by (gen_ai_agent_name) "
                f"(orchestrator_agent_last_heartbeat_timestamp_seconds{{{AGENT}}})",
                "{{gen_ai_agent_name}} (store)",
            ),
            prom(
                "time() - max by (gen_ai_agent_name) "
                f"(atalaia_agent_heartbeat_timestamp_seconds{{{AGENT}}})",
                "{{gen_ai_agent_name}} (OTLP)",
            ),
            unit="s",
            w=12,
            thresholds=(T(None, "green"), T(20, "orange"), T(120, "red")),
            threshold_style="dashed",
            data_links=[agent_link()],
        ),
    )
    d.add_row(
        "SLA",
        timeseries(
            "SLA misses",
            "Tasks finished after their priority's deadline (high 30 s, normal 60 s, low 120 s), "
            "per agent and department.",
            prom(
                "sum by (gen_ai_agent_name, atalaia_department) "
                f"(increase(orchestrator_sla_misses_total{{{AGENT}}}[{RI}]))",
                "{{gen_ai_agent_name}} / {{atalaia_department}}",
            ),
            w=12,
            bars=True,
            stack=True,
        ),
        bargauge(
            "Error budget remaining per SLO",
            "Share of each SLO's 30-day error budget that is left (recorded by the SLO rules); "
            "negative when overspent.",
            prom("slo:error_budget_remaining:ratio", "{{slo}}", instant=True),
            unit="percentunit",
            w=12,
            min=-1,
            max=1,
            thresholds=(T(None, "red"), T(0.25, "orange"), T(0.5, "green")),
        ),
    )
    return d


def agent_drilldown() -> Dashboard:
    d = Dashboard(
        uid="atalaia-agent",
        title="Atalaia / Agent drill-down",
        description="One agent, whoever instrumented it: RED metrics, its process's CPU and "
        "memory, failed and retried calls, its slowest traces and its logs.",
        tags=["atalaia", "agent"],
        file="agent-drilldown.json",
        variables=[agent_variable(multi=False)],
        links=[dashboard_link("atalaia-fleet-tv", "Fleet TV", keep_vars=False)],
    )
    d.add_row(
        "RED",
        timeseries(
            "Tasks and LLM calls by outcome",
            "Tasks the agent finished per minute by outcome (success, failure, timeout: its "
            "invoke_agent spans), and its LLM calls per minute, ok or failed. An agent whose "
            "instrumentation marks no tasks (some only trace the LLM client) shows its calls.",
            prom(
                "sum by (atalaia_task_outcome) "
                f"(rate(atalaia_agent_tasks_total{{{AGENT}}}[{RI}])) * 60",
                "task {{atalaia_task_outcome}}",
            ),
            prom(
                f'sum(rate(atalaia_genai_calls_total{{{AGENT}, error_type=""}}[{RI}])) * 60',
                "LLM call ok",
            ),
            prom(
                f'sum(rate(atalaia_genai_calls_total{{{AGENT}, error_type!=""}}[{RI}])) * 60',
                "LLM call failed",
            ),
            unit="short",
            w=8,
            stack=True,
        ),
        timeseries(
            "Errors by type",
            "Failed LLM calls, tool calls and tasks per minute, by error.type (from the spans).",
            prom(
                "sum by (error_type) "
                f'(rate(atalaia_genai_calls_total{{{AGENT}, error_type!=""}}[{RI}])) * 60',
                "LLM {{error_type}}",
            ),
            prom(
                "sum by (error_type) "
                f'(rate(atalaia_tool_calls_total{{{AGENT}, error_type!=""}}[{RI}])) * 60',
                "tool {{error_type}}",
            ),
            prom(
                "sum by (error_type) (rate(atalaia_agent_tasks_total"
                f'{{{AGENT}, atalaia_task_outcome!="success"}}[{RI}])) * 60',
                "task {{error_type}}",
            ),
            w=8,
            stack=True,
        ),
        timeseries(
            "Task and LLM call duration",
            "Percentiles of the agent's task duration, and its LLM calls' p95; the dots are "
            "exemplars (the collector's span metrics of its invoke_agent spans) that open the "
            "task's trace.",
            *(
                prom(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(atalaia_agent_task_duration_seconds_bucket{{{AGENT}}}[{RI}])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ),
            prom(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(atalaia_genai_duration_seconds_bucket{{{AGENT}}}[{RI}])))",
                "LLM call p95",
            ),
            prom(
                "histogram_quantile(0.99, sum by (le) (rate(atalaia_span_duration_seconds_bucket"
                f'{{{AGENT}, gen_ai_operation_name="invoke_agent"}}[{RI}])))',
                "p99 (exemplars)",
                exemplar=True,
            ),
            unit="s",
            w=8,
        ),
    )
    d.add_row(
        "Process",
        timeseries(
            "CPU",
            "CPU utilisation of the agent's process (1 = one full core). Needs the process "
            "metrics the atalaia library sends (OpenTelemetry's system-metrics instrumentation "
            "sends the same names).",
            prom(f"max by (gen_ai_agent_name) (process_cpu_utilization_ratio{{{AGENT}}})", "cpu"),
            prom(
                f"sum by (cpu_mode) (rate(process_cpu_time_seconds_total{{{AGENT}}}[{RI}]))",
                "cpu seconds/s {{cpu_mode}}",
            ),
            unit="percentunit",
            w=8,
            thresholds=(T(None, "green"), T(0.9, "red")),
        ),
        timeseries(
            "Memory (RSS)",
            "Resident memory of the agent's process (the same process metrics as CPU).",
            prom(f"max by (gen_ai_agent_name) (process_memory_usage_bytes{{{AGENT}}})", "rss"),
            unit="bytes",
            w=8,
        ),
        timeseries(
            "Retries and timeouts",
            "LLM calls that failed in a way clients retry (rate limits, timeouts, server errors; "
            "from the spans), the agent's own retries and timeouts by reason (the atalaia "
            "library), and the orchestrator's re-dispatches to it, per minute.",
            prom(
                "sum by (error_type) (rate(atalaia_genai_calls_total{"
                f'{AGENT}, error_type=~"rate_limit|timeout|server_error|connection"}}[{RI}])) * 60',
                "retryable LLM {{error_type}}",
            ),
            prom(
                "sum by (atalaia_retry_reason) "
                f"(rate(atalaia_retries_total{{{AGENT}}}[{RI}])) * 60",
                "retry {{atalaia_retry_reason}}",
            ),
            prom(
                "sum by (atalaia_timeout_reason) "
                f"(rate(atalaia_timeouts_total{{{AGENT}}}[{RI}])) * 60",
                "timeout {{atalaia_timeout_reason}}",
            ),
            prom(
                f"sum by (reason) (rate(orchestrator_retries_total{{{AGENT}}}[{RI}])) * 60",
                "re-dispatch {{reason}}",
            ),
            w=8,
        ),
    )
    d.add_row(
        "Traces and logs",
        traces_table(
            "Slowest traces",
            "The agent's slowest tasks (invoke_agent spans) in the time range (TraceQL); click "
            "a trace id to open it.",
            traceql(
                '{ span.gen_ai.agent.name = "$agent" '
                '&& span.gen_ai.operation.name = "invoke_agent" && duration > 1s }',
                limit=20,
            ),
            w=12,
            h=10,
        ),
        logs(
            "Logs",
            "The agent's log lines (by its gen_ai.agent.name, else its service name); expand one "
            "and follow trace_id to its trace.",
            logql(AGENT_LOGS),
            w=12,
            h=10,
        ),
    )
    d.add_row(
        None,
        table(
            "Error lines",
            "The agent's ERROR log lines with their error.type and trace id; click a trace_id "
            "to open the trace in Tempo.",
            logql(AGENT_LOGS + ' | detected_level=~"(?i)error|critical|fatal"'),
            w=24,
            h=8,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "trace_id"},
                    "properties": [{"id": "links", "value": [trace_link("${__value.raw}")]}],
                }
            ],
            transformations=[
                {"id": "extractFields", "options": {"source": "labels"}},
                {
                    "id": "filterFieldsByName",
                    "options": {"include": {"names": ["Time", "Line", "error_type", "trace_id"]}},
                },
            ],
        ),
    )
    return d


def distributed_fallback() -> Dashboard:
    """The 11 panels of seed 001, named as there."""
    d = Dashboard(
        uid="atalaia-fallback",
        title="Atalaia / Distributed fallback",
        description="Seed 001: task splitting after timeouts, chunk fallback, agent load, merge "
        "de-duplication and the containers' resources.",
        tags=["atalaia", "orchestrator", "fallback"],
        file="distributed-fallback.json",
    )
    d.add_row(
        "Fallback",
        timeseries(
            "1. Task splits",
            "Tasks split into chunks after a timeout, and chunks created, per interval.",
            prom(f"sum(increase(orchestrator_task_splits_total[{RI}]))", "splits"),
            prom(f"sum(increase(orchestrator_task_chunks_total[{RI}]))", "chunks"),
            w=8,
            bars=True,
        ),
        timeseries(
            "2. Timeouts by agent",
            "Dispatch timeouts per agent and reason (chunk or whole task).",
            prom(
                f"sum by (gen_ai_agent_name, reason) (increase(orchestrator_timeouts_total[{RI}]))",
                "{{gen_ai_agent_name}} {{reason}}",
            ),
            w=8,
            bars=True,
            stack=True,
            data_links=[agent_link()],
        ),
        timeseries(
            "3. Task latency p95 / p99",
            "End-to-end task duration percentiles.",
            *(
                prom(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(orchestrator_task_duration_seconds_bucket[{RI}])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.95, 0.99)
            ),
            unit="s",
            w=8,
            thresholds=(T(None, "green"), T(120, "red")),
            threshold_style="dashed",
        ),
    )
    d.add_row(
        "Agents",
        bargauge(
            "4. Agent load",
            "Tasks and chunks dispatched to each agent per minute.",
            prom(
                f"sum by (gen_ai_agent_name) (rate(orchestrator_dispatches_total[{RI}])) * 60",
                "{{gen_ai_agent_name}}",
            ),
            thresholds=(T(None, "green"),),
            data_links=[agent_link()],
        ),
        timeseries(
            "5. Success / failure",
            "Finished tasks per minute by status.",
            prom(f"sum by (status) (rate(orchestrator_tasks_total[{RI}])) * 60", "{{status}}"),
            w=8,
            stack=True,
        ),
        timeseries(
            "6. Failures by reason",
            "Why tasks failed, per minute.",
            prom(
                f"sum by (reason) (rate(orchestrator_task_failures_total[{RI}])) * 60",
                "{{reason}}",
            ),
            w=8,
            stack=True,
        ),
    )
    d.add_row(
        "Resources",
        timeseries(
            "7. CPU by agent",
            "CPU utilisation of each agent's process (1 = one core).",
            prom(
                "max by (gen_ai_agent_name) (process_cpu_utilization_ratio)",
                "{{gen_ai_agent_name}}",
            ),
            unit="percentunit",
            w=8,
            thresholds=(T(None, "green"), T(0.9, "red")),
            data_links=[agent_link()],
        ),
        timeseries(
            "8. Memory by agent",
            "Resident memory of each agent's process.",
            prom(
                "max by (gen_ai_agent_name) (process_memory_usage_bytes)", "{{gen_ai_agent_name}}"
            ),
            unit="bytes",
            w=8,
            data_links=[agent_link()],
        ),
        stat(
            "9. Fallback depth exceeded",
            "Splits that hit the maximum fallback depth in the time range (the task then fails "
            "or is returned partial).",
            prom("sum(increase(orchestrator_fallback_depth_exceeded_total[$__range]))", "exceeded"),
            w=8,
            h=8,
            thresholds=(T(None, "green"), T(1, "red")),
        ),
    )
    d.add_row(
        "Merge",
        timeseries(
            "10. Merge and de-duplication",
            "Chunk results merged, and duplicate items removed by the merge, per interval.",
            prom(f"sum(increase(orchestrator_merge_chunks_combined_total[{RI}]))", "combined"),
            prom(f"sum(increase(orchestrator_merge_duplicates_removed_total[{RI}]))", "duplicates"),
            w=12,
            bars=True,
        ),
        timeseries(
            "11. Chunk latency p95 by agent",
            "95th percentile of one chunk's execution time, per agent.",
            prom(
                "histogram_quantile(0.95, sum by (le, gen_ai_agent_name) "
                f"(rate(orchestrator_chunk_duration_seconds_bucket[{RI}])))",
                "{{gen_ai_agent_name}}",
            ),
            unit="s",
            w=12,
            data_links=[agent_link()],
        ),
    )
    return d


def business() -> Dashboard:
    d = Dashboard(
        uid="atalaia-business",
        title="Atalaia / Business",
        description="Seed 002: conversations per minute by outcome, leads and conversion.",
        tags=["atalaia", "business"],
        file="business.json",
    )
    d.add_row(
        None,
        stat(
            "Conversations (range)",
            "Conversations finished in the time range.",
            prom("sum(increase(atalaia_conversations_total[$__range]))", "conversations"),
            w=8,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Leads (range)",
            "Leads created in the time range.",
            prom("sum(increase(atalaia_leads_total[$__range]))", "leads"),
            w=8,
            thresholds=(T(None, "blue"),),
        ),
        stat(
            "Conversion rate",
            "Leads per finished conversation over the time range.",
            prom(
                "sum(increase(atalaia_leads_total[$__range]))"
                " / sum(increase(atalaia_conversations_total[$__range]))",
                "conversion",
            ),
            unit="percentunit",
            decimals=1,
            w=8,
            thresholds=(T(None, "red"), T(0.1, "orange"), T(0.25, "green")),
        ),
    )
    d.add_row(
        None,
        timeseries(
            "Conversations per minute by outcome",
            "Finished conversations per minute: qualified, unqualified, abandoned.",
            prom(
                "sum by (atalaia_conversation_outcome) "
                f"(rate(atalaia_conversations_total[{RI}])) * 60",
                "{{atalaia_conversation_outcome}}",
            ),
            w=12,
            stack=True,
        ),
        timeseries(
            "Leads per minute",
            "Leads created per minute, by agent.",
            prom(
                f"sum by (gen_ai_agent_name) (rate(atalaia_leads_total[{RI}])) * 60",
                "{{gen_ai_agent_name}}",
            ),
            w=12,
            data_links=[agent_link()],
        ),
    )
    return d
