"""The library and docs/telemetry.md agree: every catalogued agent metric is emitted with the
catalogued type, unit and attributes, and every orchestrator series is exposed with its labels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import atalaia
from atalaia import names
from atalaia.testing import in_memory
from demo_agents import orchestrator_metrics
from demo_agents.orchestrator_metrics import OrchestratorMetrics

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "telemetry.md"


def table(heading: str) -> list[list[str]]:
    """Rows (cells without backticks) of the first markdown table under `heading`."""
    text = CATALOGUE.read_text()
    lines = text.split(heading, 1)[1].splitlines()[1:]
    end = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    rows = [line for line in lines[:end] if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]


def code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


AGENT_ROWS = table("## Agent metrics")
ORCHESTRATOR_ROWS = table("## Orchestrator metrics")
KINDS = {"histogram": (Histogram, None), "counter": (Sum, True), "gauge": (Gauge, None)}
KINDS["up-down counter"] = (Sum, False)


def exercise_every_helper():
    cap = in_memory(agent_name="helix").activate()
    with atalaia.track_task("t", department="sales"):
        with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
            call.record_usage(10, 5, 2, response_model="gpt-4o-2024-08-06")
        atalaia.record_retry("timeout")
        atalaia.record_timeout("llm")
        atalaia.record_error("llm")
        atalaia.record_integration_error("crm")
        atalaia.record_cache(True)
        atalaia.record_conversation("abandoned")
        atalaia.record_lead()
        atalaia.heartbeat()
        atalaia.set_db_connections(1, 1, "main")
    try:
        with atalaia.track_llm_call("gpt-4o", provider="openai"):
            raise TimeoutError
    except TimeoutError:
        pass
    metrics = cap.metrics()
    cap.close()
    return metrics


def test_catalogue_lists_every_agent_metric() -> None:
    assert len(AGENT_ROWS) >= 12


def test_spans_carry_what_is_no_longer_a_metric() -> None:
    """Calls, tokens, durations and tasks are derived from spans by the collector: the library
    sends none of them as SDK metrics (one source per series)."""
    emitted = set(exercise_every_helper())
    for dropped in (
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "atalaia.task.duration",
        "atalaia.llm.cost.usd",
        "atalaia.llm.cached_tokens",
    ):
        assert dropped not in emitted


@pytest.mark.parametrize("row", AGENT_ROWS, ids=[code_names(r[0])[0] for r in AGENT_ROWS])
def test_agent_metric_matches_catalogue(row: list[str]) -> None:
    otel_name = code_names(row[0])[0]
    kind, unit = row[1], code_names(row[2])[0]
    attributes = code_names(re.sub(r"\([^)]*\)", "", row[3]))  # names, not (values)
    metrics = exercise_every_helper()
    assert otel_name in metrics, f"{otel_name} is catalogued but not emitted"
    metric = metrics[otel_name]
    data_type, monotonic = KINDS[kind]
    assert isinstance(metric.data, data_type), otel_name
    if monotonic is not None:
        assert metric.data.is_monotonic is monotonic, otel_name
    assert metric.unit == unit
    emitted = {k for p in metric.data.data_points for k in p.attributes}
    assert emitted <= set(attributes) | {names.AGENT_NAME}, (
        f"uncatalogued {emitted - set(attributes)}"
    )
    # Every catalogued attribute is emitted (a few need a failure or a department to appear).
    assert set(attributes) <= emitted, f"{otel_name}: never emits {set(attributes) - emitted}"


@pytest.mark.parametrize(
    ("metric", "attribute", "values"),
    [
        ("atalaia.retries", "atalaia.retry.reason", names.RETRY_REASONS),
        ("atalaia.timeouts", "atalaia.timeout.reason", names.TIMEOUT_REASONS),
        ("atalaia.errors", "error.type", names.ERROR_TYPES),
        ("atalaia.cache.requests", "atalaia.cache.result", names.CACHE_RESULTS),
        ("atalaia.conversations", "atalaia.conversation.outcome", names.CONVERSATION_OUTCOMES),
        ("db.client.connection.count", "db.client.connection.state", names.DB_STATES),
    ],
)
def test_closed_value_lists_match_catalogue(
    metric: str, attribute: str, values: tuple[str, ...]
) -> None:
    row = next(r for r in AGENT_ROWS if code_names(r[0]) == [metric])
    found = re.search(rf"`{re.escape(attribute)}` \(([^)]*)\)", row[3])
    assert found, f"{metric}: no value list for {attribute}"
    assert set(code_names(found.group(1))) == set(values)


def test_catalogued_buckets_are_the_ones_used() -> None:
    text = CATALOGUE.read_text()
    for buckets in (
        orchestrator_metrics.TASK_BUCKETS,
        orchestrator_metrics.STEP_BUCKETS,
    ):
        listed = ", ".join(str(int(b)) if b == int(b) else str(b) for b in buckets)
        assert f"[{listed}]" in text


# --- orchestrator ---------------------------------------------------------------------------
def exposition(metrics: OrchestratorMetrics) -> dict[str, list]:
    """Prometheus series name -> samples, parsed from the text exposition."""
    series: dict[str, list] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(sample)
    return series


def test_every_orchestrator_series_exists_at_zero_before_any_event() -> None:
    m = OrchestratorMetrics(CollectorRegistry(), departments=["sales"], agents=["helix"])
    series = exposition(m)
    labels_wanted = {}
    for row in ORCHESTRATOR_ROWS:
        (name,) = code_names(row[0])
        labels_wanted[name] = code_names(re.sub(r"\([^)]*\)", "", row[2]))  # drop (values)
    gauges_set_on_first_event = {
        "orchestrator_budget_limit_usd",
        "orchestrator_budget_spent_usd",
        "orchestrator_budget_remaining_ratio",
        "orchestrator_agent_up",
        "orchestrator_agent_last_heartbeat_timestamp_seconds",
        "orchestrator_agent_on_shift",
    }
    for name, labels in labels_wanted.items():
        lookup = f"{name}_count" if name.endswith("_seconds") and "timestamp" not in name else name
        if name in gauges_set_on_first_event:
            assert lookup not in series, f"{name} invented before anything was known"
            continue
        assert lookup in series, f"{name} is catalogued but not exposed"
        for sample in series[lookup]:
            assert set(sample.labels) - {"le"} == set(labels), (name, sample.labels)
            assert sample.value == 0, (name, sample)
    # Closed value lists: exactly the catalogued values exist at 0.
    for name, label in (
        ("orchestrator_queue_depth", "priority"),
        ("orchestrator_task_failures_total", "reason"),
        ("orchestrator_retries_total", "reason"),
        ("orchestrator_timeouts_total", "reason"),
        ("orchestrator_agent_restarts_total", "reason"),
        ("orchestrator_tasks_total", "status"),
        ("orchestrator_tasks_total", "priority"),
    ):
        exposed = {s.labels[label] for s in series[name]}
        assert exposed == catalogued_values(name, label), (name, label)


def catalogued_values(series: str, label: str) -> set[str]:
    """The values listed for `label` in the row of `series` (or, for a label whose values are
    listed once, such as `priority`, in the first row that lists them)."""
    rows = sorted(ORCHESTRATOR_ROWS, key=lambda r: code_names(r[0]) != [series])
    for row in rows:
        found = re.search(rf"`{label}` \(([^)]*)\)", row[2])
        if found:
            return set(code_names(found.group(1)))
    raise AssertionError(f"{series}: no value list for {label}")


def test_orchestrator_methods_move_the_catalogued_series() -> None:
    m = OrchestratorMetrics(CollectorRegistry())
    m.task_finished("success", "sales", "high", 12.0)
    m.task_finished("failure", "sales", "low", 700.0, reason="timeout")
    m.set_queue_depth("normal", 7)
    m.set_active(tasks=3, sessions=2, agents=4)
    m.observe_planning(0.02)
    m.observe_routing(0.003)
    m.dispatched("helix")
    m.retried("helix", "timeout")
    m.timed_out("helix", "chunk")
    m.task_split(chunks=4)
    m.chunk_finished("helix", 3.0)
    m.fallback_depth_exceeded()
    m.merged(chunks_combined=4, duplicates_removed=2)
    m.set_budget("sales", limit_usd=100, spent_usd=80)
    m.set_agent_up("helix", True)
    m.heartbeat_seen("helix", 1_700_000_000.0)
    m.agent_restarted("helix", "heartbeat_missed")
    m.set_on_shift("helix", True)
    m.shift_started("helix")
    m.sla_missed("helix", "sales")
    m.task_finished("exploded", "sales", "urgent", -1)  # bad input: logged, recorded as other

    s = exposition(m)

    def value(name: str, **labels: str) -> float:
        found = [x.value for x in s[name] if all(x.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, (name, labels, s.get(name))
        return found[0]

    dept = {"atalaia_department": "sales"}
    ok = {"status": "success", **dept, "priority": "high"}
    assert value("orchestrator_tasks_total", **ok) == 1
    assert value("orchestrator_task_failures_total", reason="timeout", **dept) == 1
    assert (
        value("orchestrator_task_duration_seconds_bucket", status="success", le="15.0", **dept) == 1
    )
    assert (
        value("orchestrator_task_duration_seconds_bucket", status="failure", le="600.0", **dept)
        == 0
    )
    assert value("orchestrator_task_duration_seconds_count", status="failure", **dept) == 1
    buckets = {x.labels["le"] for x in s["orchestrator_task_duration_seconds_bucket"]}
    assert buckets == {
        f"{b:.1f}" for b in (1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
    } | {"+Inf"}
    assert value("orchestrator_queue_depth", priority="normal") == 7
    assert value("orchestrator_active_tasks") == 3
    assert value("orchestrator_active_sessions") == 2
    assert value("orchestrator_active_agents") == 4
    assert value("orchestrator_planning_duration_seconds_count") == 1
    assert value("orchestrator_routing_duration_seconds_sum") == pytest.approx(0.003)
    assert value("orchestrator_dispatches_total", gen_ai_agent_name="helix") == 1
    assert value("orchestrator_retries_total", gen_ai_agent_name="helix", reason="timeout") == 1
    assert value("orchestrator_timeouts_total", gen_ai_agent_name="helix", reason="chunk") == 1
    assert value("orchestrator_timeouts_total", gen_ai_agent_name="helix", reason="task") == 0
    assert value("orchestrator_task_splits_total") == 1
    assert value("orchestrator_task_chunks_total") == 4
    assert value("orchestrator_chunk_duration_seconds_count", gen_ai_agent_name="helix") == 1
    assert value("orchestrator_fallback_depth_exceeded_total") == 1
    assert value("orchestrator_merge_chunks_combined_total") == 4
    assert value("orchestrator_merge_duplicates_removed_total") == 2
    assert value("orchestrator_budget_limit_usd", **dept) == 100
    assert value("orchestrator_budget_spent_usd", **dept) == 80
    assert value("orchestrator_budget_remaining_ratio", **dept) == pytest.approx(0.2)
    assert value("orchestrator_agent_up", gen_ai_agent_name="helix") == 1
    assert (
        value("orchestrator_agent_last_heartbeat_timestamp_seconds", gen_ai_agent_name="helix")
        == 1.7e9
    )
    restarts = {"gen_ai_agent_name": "helix", "reason": "heartbeat_missed"}
    assert value("orchestrator_agent_restarts_total", **restarts) == 1
    assert value("orchestrator_agent_on_shift", gen_ai_agent_name="helix") == 1
    assert value("orchestrator_shifts_total", gen_ai_agent_name="helix") == 1
    assert value("orchestrator_sla_misses_total", gen_ai_agent_name="helix", **dept) == 1
    assert value("orchestrator_tasks_total", status="other", priority="other", **dept) == 1


def test_budget_ratio_is_clamped() -> None:
    m = OrchestratorMetrics(CollectorRegistry())
    m.set_budget("ops", limit_usd=10, spent_usd=25)
    m.set_budget("rnd", limit_usd=0, spent_usd=0)
    s = exposition(m)
    ratios = {
        x.labels["atalaia_department"]: x.value for x in s["orchestrator_budget_remaining_ratio"]
    }
    assert ratios == {"ops": 0.0, "rnd": 0.0}
