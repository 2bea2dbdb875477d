"""Dashboards use only the telemetry catalogue's series, labels and attributes (and the series the
recording rules write): every PromQL, LogQL and TraceQL query of every panel and variable."""

from __future__ import annotations

import pytest

from atalaia_ops.dashboards import as_json, contract
from atalaia_ops.dashboards.queries import (
    Query,
    logql_labels,
    panel_queries,
    promql_names,
    substitute,
    traceql_attributes,
    variable_defaults,
    variable_queries,
)

CONTRACT = contract.load()
BOARDS = as_json()
QUERIES: list[tuple[Query, dict[str, str]]] = [
    (q, {**variable_defaults(b), "agent": "Helix"})
    for b in BOARDS.values()
    for q in [*panel_queries(b), *variable_queries(b)]
]
IDS = [f"{q.dashboard}:{q.panel}:{q.expr[:40]}" for q, _ in QUERIES]


def unknown_names(q: Query, values: dict[str, str]) -> list[str]:
    expr = substitute(q.expr, values)
    if q.kind == "promql":
        metrics, labels = promql_names(expr)
        return sorted(
            [f"metric {m}" for m in metrics - CONTRACT.metrics]
            + [f"label {la}" for la in labels - CONTRACT.labels]
        )
    if q.kind == "logql":
        return sorted(f"label {la}" for la in logql_labels(expr) - CONTRACT.labels)
    attrs = traceql_attributes(expr)
    return sorted(f"attribute {a}" for a in attrs - CONTRACT.attributes)


def test_every_dashboard_has_queries() -> None:
    assert len(BOARDS) == 9
    kinds = {q.kind for q, _ in QUERIES}
    assert kinds == {"promql", "logql", "traceql"}
    assert len(QUERIES) > 100


@pytest.mark.parametrize(("query", "values"), QUERIES, ids=IDS)
def test_query_uses_only_catalogued_names(query: Query, values: dict[str, str]) -> None:
    assert not unknown_names(query, values), (
        f"{query.dashboard} / {query.panel}: not in docs/telemetry.md or a recording rule: "
        f"{unknown_names(query, values)} in {query.expr}"
    )


def test_catalogue_parser_finds_the_tables() -> None:
    for name in (
        "atalaia_genai_tokens_total",
        "atalaia_genai_duration_seconds_bucket",
        "orchestrator_tasks_total",
        "otelcol_exporter_queue_size",
        "slo:sli_error:ratio_rate30m",
        "slo:error_budget_remaining:ratio",
        "alertmanager_notifications_total",
    ):
        assert name in CONTRACT.metrics, name
    assert {"gen_ai_agent_name", "gen_ai_request_model", "slo", "trace_id"} <= CONTRACT.labels
    assert "gen_ai.agent.name" in CONTRACT.attributes


@pytest.mark.parametrize(
    ("expr", "bad"),
    [
        ("sum(rate(atalaia_tasks_total[5m]))", "metric atalaia_tasks_total"),
        ('sum by (agent) (rate(atalaia_errors_total{foo="x"}[5m]))', "label agent"),
        (
            "histogram_quantile(0.9, sum by (le) (rate(made_up_bucket[5m])))",
            "metric made_up_bucket",
        ),
    ],
)
def test_an_uncatalogued_name_is_caught(expr: str, bad: str) -> None:
    found = unknown_names(Query("x", "y", "promql", expr, False), {})
    assert bad in found, found


def test_logql_and_traceql_names_are_checked() -> None:
    assert unknown_names(Query("x", "y", "logql", '{agent="a"} | level="x"', False), {}) == [
        "label agent",
        "label level",
    ] or "label agent" in unknown_names(Query("x", "y", "logql", '{agent="a"}', False), {})
    found = unknown_names(Query("x", "y", "traceql", '{ span.made.up = "1" }', False), {})
    assert found == ["attribute made.up"]


def test_promql_names_skips_functions_strings_and_durations() -> None:
    metrics, labels = promql_names(
        'sum by (gen_ai_agent_name) (rate(x_total{a="rate(y)", b=~"z"}[5m] offset 1h)) '
        "/ on (slo) group_left () (1 - vector(0))"
    )
    assert metrics == {"x_total"}
    assert labels == {"gen_ai_agent_name", "a", "b", "slo"}


@pytest.mark.parametrize(
    ("previous", "fragment", "expanded"),
    [
        ("x_bucket", "_sum", "x_sum"),
        (
            "otelcol_receiver_accepted_spans_total",
            "_log_records_total",
            "otelcol_receiver_accepted_log_records_total",
        ),
        ("slo:sli_error:ratio_rate5m", "_rate30m", "slo:sli_error:ratio_rate30m"),
    ],
)
def test_catalogue_fragments_expand(previous: str, fragment: str, expanded: str) -> None:
    assert contract.expand_fragment(previous, fragment) == expanded
