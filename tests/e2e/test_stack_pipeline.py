"""Telemetry sent with the real OpenTelemetry SDK through the collector comes back out of
Prometheus, and out of the native log and trace store exactly as the collector sends it to Loki
and Tempo: correlated, with secrets removed, and with the metrics the collector derives from
spans and log records.

One scenario is sent once (module fixture) and each test reads one aspect of it back, so the
waits overlap: an agent service handles a task (SERVER span), logs inside it, calls an LLM
service (CLIENT span -> SERVER span in a second service) and records the call's duration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tests.e2e.backends import Prometheus, Store, attributes, body, eventually
from tests.e2e.otlp import Telemetry, unique
from tools.native_stack import NativeStack

API_KEY = "sk-live-" + "Q7wErTy" * 4
EMAIL = "alice.doe@example.com"
SECRETS = (API_KEY, EMAIL)
TASK_ID = "task-0123456789abcdef0123"  # looks a little like a key ("sk-..."): must survive
TOKENS = {"input_tokens": 120, "output_tokens": 30, "cache_read.input_tokens": 20}


@dataclass
class Scenario:
    agent: Telemetry
    llm: Telemetry
    trace_id: str  # 32 hex digits
    client_span_id: str
    sent_at: float


@pytest.fixture(scope="module")
def scenario(native_stack: NativeStack) -> Scenario:
    urls = native_stack.urls
    agent = Telemetry(urls["otlp_grpc"], urls["otlp_http"], service=unique("e2e-agent"))
    llm = Telemetry(
        urls["otlp_grpc"], urls["otlp_http"], service=unique("e2e-llm"), agent="mock-llm"
    )
    duration = agent.meter.create_histogram(
        "gen_ai.client.operation.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28],
    )
    with agent.tracer.start_as_current_span("invoke_agent e2e-agent", kind=SpanKind.SERVER) as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.logger.info("task started")
        agent.logger.warning(
            "calling the provider with key %s on behalf of %s",
            API_KEY,
            EMAIL,
            extra={"user.email": EMAIL, "llm.api_key": API_KEY, "atalaia.task.id": TASK_ID},
        )
        with agent.tracer.start_as_current_span("chat mock-model", kind=SpanKind.CLIENT) as client:
            client.set_attribute("gen_ai.operation.name", "chat")
            client.set_attribute("gen_ai.system", "openai")  # the legacy name: normalised
            client.set_attribute("gen_ai.request.model", "mock-model")
            for kind, n in TOKENS.items():
                client.set_attribute(f"gen_ai.usage.{kind}", n)
            client.set_attribute("llm.api_key", API_KEY)
            # The LLM service's side of the call: a SERVER span whose parent is the CLIENT span
            # (what context propagation over HTTP would give), so Tempo sees an edge.
            with llm.tracer.start_as_current_span(
                "POST /v1/chat/completions", kind=SpanKind.SERVER
            ):
                time.sleep(0.05)
            duration.record(
                0.05, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "mock-model"}
            )
            ctx = client.get_span_context()
        trace_id = trace.format_trace_id(root.get_span_context().trace_id)
    agent.flush()
    llm.flush()
    yield Scenario(agent, llm, trace_id, trace.format_span_id(ctx.span_id), time.time())
    agent.shutdown()
    llm.shutdown()


def test_metrics_reach_prometheus_with_promoted_resource_labels(
    scenario: Scenario, prometheus: Prometheus
) -> None:
    series = eventually(
        lambda: prometheus.query(
            f'gen_ai_client_operation_duration_seconds_count{{service_name="{scenario.agent.service}"}}'
        ),
        timeout=30,
        what="the OTLP histogram in Prometheus",
    )
    (s,) = series
    assert float(s["value"][1]) == 1
    labels = s["metric"]
    assert labels["gen_ai_agent_name"] == "e2e-agent"
    assert labels["deployment_environment_name"] == "e2e"
    assert labels["service_namespace"] == "atalaia-e2e"
    assert labels["job"] == f"atalaia-e2e/{scenario.agent.service}"
    assert labels["gen_ai_request_model"] == "mock-model"


def test_host_metrics_reach_prometheus(native_stack: NativeStack, prometheus: Prometheus) -> None:
    """The collector's hostmetrics receiver: CPU time by state, used memory, load average."""
    # Busy share of all CPU time, both rates from the same samples in one query: it lies in
    # (0, 1] by construction, whatever the machine is doing and however many cores it has.
    busy = eventually(
        lambda: prometheus.query(
            'sum(rate(system_cpu_time_seconds_total{state!~"idle|wait"}[1m]))'
            " / sum(rate(system_cpu_time_seconds_total[1m]))"
        ),
        timeout=60,
        what="host CPU from the hostmetrics receiver",
    )
    assert 0 < float(busy[0]["value"][1]) <= 1, busy
    used = prometheus.query('system_memory_usage_bytes{state="used"}')
    assert used and float(used[0]["value"][1]) > 10e6
    assert prometheus.query("system_cpu_load_average_1m")


def spans_of(store: Store, trace_id: str, n: int) -> list[dict]:
    return [
        s
        for _, s in eventually(
            lambda: len(store.trace(trace_id)) >= n and store.trace(trace_id),
            timeout=30,
            what=f"{n} spans of trace {trace_id} at the store (Tempo's ingest)",
        )
    ]


def logs_of(store: Store, service: str, n: int) -> list[dict]:
    def found() -> list[dict]:
        records = [rec for res, rec in store.logs() if res.get("service.name") == service]
        return records if len(records) >= n else []

    return eventually(found, timeout=30, what=f"{n} log records of {service} (Loki's ingest)")


def test_traces_reach_the_tempo_exporter(scenario: Scenario, store: Store) -> None:
    spans = spans_of(store, scenario.trace_id, 3)
    assert {s["name"] for s in spans} == {
        "invoke_agent e2e-agent",
        "chat mock-model",
        "POST /v1/chat/completions",
    }
    # Normalised on the way: the legacy provider name, the agent identity from the resource.
    (client,) = [s for s in spans if s["name"] == "chat mock-model"]
    attrs = attributes(client)
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.agent.name"] == "e2e-agent"


def test_log_carries_its_span_trace_id_and_the_trace_is_found_by_it(
    scenario: Scenario, store: Store
) -> None:
    records = logs_of(store, scenario.agent.service, 2)
    (started,) = [r for r in records if body(r) == "task started"]
    # Trace and span ids are fields of the record (Loki keeps them as structured metadata,
    # not as index labels: see loki/loki.yaml), and they lead to the trace.
    assert started["traceId"] == scenario.trace_id
    assert len(started["spanId"]) == 16
    assert "invoke_agent e2e-agent" in {s["name"] for s in spans_of(store, started["traceId"], 3)}


def test_exemplar_on_latency_histogram_points_at_a_real_trace(
    scenario: Scenario, prometheus: Prometheus, store: Store
) -> None:
    query = (
        f"gen_ai_client_operation_duration_seconds_bucket"
        f'{{service_name="{scenario.agent.service}"}}'
    )
    found = eventually(
        lambda: prometheus.exemplars(query, time.time() - 600, time.time() + 60),
        timeout=30,
        what="an exemplar in Prometheus",
    )
    exemplars = [e for series in found for e in series["exemplars"]]
    assert exemplars, found
    ex = exemplars[0]["labels"]
    assert (ex["trace_id"], ex["span_id"]) == (scenario.trace_id, scenario.client_span_id)
    assert any(s["name"] == "chat mock-model" for s in spans_of(store, ex["trace_id"], 3))


def value(prometheus: Prometheus, promql: str, what: str) -> float:
    """The single sample of `promql` once it is there and non-zero (the connectors flush every
    15 s; Prometheus may show a series at 0 first, at its start time)."""

    def probe() -> list[dict] | None:
        found = prometheus.query(promql)
        return found if found and float(found[0]["value"][1]) > 0 else None

    (sample,) = eventually(probe, timeout=75, what=what)
    return float(sample["value"][1])


def test_span_metrics_are_derived_by_the_collector(
    scenario: Scenario, prometheus: Prometheus
) -> None:
    """RED per service from the spanmetrics connector: no span name label (it may embed ids),
    the GenAI operation and agent instead; latency buckets with exemplars."""
    agent = scenario.agent.service
    selector = f'service_name="{agent}", span_kind="SPAN_KIND_CLIENT", gen_ai_operation_name="chat"'
    calls = f"atalaia_span_calls_total{{{selector}}}"
    assert value(prometheus, calls, "span metrics from the spanmetrics connector") == 1
    (call,) = prometheus.query(calls)
    assert call["metric"]["gen_ai_agent_name"] == "e2e-agent"
    assert "span_name" not in call["metric"]
    # In seconds, on the configured bounds: the call slept 50 ms, so it is above 0.05 s however
    # busy the machine (an upper bound would hold only on a quiet one).
    buckets = f"atalaia_span_duration_seconds_bucket{{{selector}}}"
    bounds = {s["metric"]["le"]: float(s["value"][1]) for s in prometheus.query(buckets)}
    assert set(bounds) >= {"0.005", "0.05", "1", "300", "+Inf"}, sorted(bounds)
    assert bounds["0.05"] == 0 and bounds["+Inf"] == 1, bounds
    exemplars = prometheus.exemplars(buckets, time.time() - 600, time.time() + 60)
    assert {e["labels"]["trace_id"] for s in exemplars for e in s["exemplars"]} == {
        scenario.trace_id
    }


def test_genai_calls_tokens_and_tasks_are_derived_from_spans(
    scenario: Scenario, prometheus: Prometheus
) -> None:
    """The signal_to_metrics connector counts what the spans say, for any emitter."""
    service = scenario.agent.service
    mine = f'service_name="{service}", gen_ai_agent_name="e2e-agent"'
    llm = f'{mine}, gen_ai_provider_name="openai", gen_ai_request_model="mock-model"'
    calls = value(prometheus, f"atalaia_genai_calls_total{{{llm}}}", "derived LLM calls")
    assert calls == 1
    for kind, label in (
        ("input_tokens", "input"),
        ("output_tokens", "output"),
        ("cache_read.input_tokens", "cache_read"),
    ):
        tokens = f'atalaia_genai_tokens_total{{{llm}, gen_ai_token_type="{label}"}}'
        assert value(prometheus, tokens, f"{label} tokens") == TOKENS[kind]
    durations = f"atalaia_genai_duration_seconds_count{{{llm}}}"
    assert value(prometheus, durations, "derived LLM call durations") == 1
    tasks = f'atalaia_agent_tasks_total{{{mine}, atalaia_task_outcome="success"}}'
    assert value(prometheus, tasks, "derived tasks") == 1


def test_log_records_are_counted_by_severity(scenario: Scenario, prometheus: Prometheus) -> None:
    service = scenario.agent.service
    for severity in ("info", "warn"):
        records = (
            f'atalaia_log_records_total{{service_name="{service}", '
            f'atalaia_log_severity="{severity}"}}'
        )
        assert value(prometheus, records, f"{severity} log records") == 1


def test_secrets_are_redacted_before_storage(scenario: Scenario, store: Store) -> None:
    records = logs_of(store, scenario.agent.service, 2)
    (record,) = [r for r in records if "calling the provider" in str(body(r))]
    line, metadata = str(body(record)), attributes(record)
    for secret in SECRETS:
        assert secret not in line
        assert secret not in str(metadata)
    assert line.count("****") == 2, line
    assert metadata["user.email"] == "****"
    assert metadata["llm.api_key"] == "****"
    assert metadata["atalaia.task.id"] == TASK_ID
    # Span attributes go through the same redaction.
    (client,) = [s for s in spans_of(store, scenario.trace_id, 3) if s["name"] == "chat mock-model"]
    assert attributes(client)["llm.api_key"] == "****"
