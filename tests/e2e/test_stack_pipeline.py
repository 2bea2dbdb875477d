"""Telemetry sent with the real OpenTelemetry SDK through the collector comes back out of
Prometheus, Loki and Tempo, correlated, with secrets removed.

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

from tests.e2e.backends import Loki, Prometheus, Tempo, attributes, eventually
from tests.e2e.otlp import Telemetry, unique
from tools.native_stack import NativeStack

API_KEY = "sk-live-" + "Q7wErTy" * 4
EMAIL = "alice.doe@example.com"
SECRETS = (API_KEY, EMAIL)
TASK_ID = "task-0123456789abcdef0123"  # looks a little like a key ("sk-..."): must survive


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
        agent.logger.info("task started")
        agent.logger.warning(
            "calling the provider with key %s on behalf of %s",
            API_KEY,
            EMAIL,
            extra={"user.email": EMAIL, "llm.api_key": API_KEY, "atalaia.task.id": TASK_ID},
        )
        with agent.tracer.start_as_current_span("chat mock-model", kind=SpanKind.CLIENT) as client:
            client.set_attribute("gen_ai.operation.name", "chat")
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
    """The collector's hostmetrics receiver: busy CPU in cores, used memory, load average."""
    busy = eventually(
        lambda: prometheus.query(
            'sum(rate(system_cpu_time_seconds_total{state!~"idle|wait"}[1m]))'
        ),
        timeout=60,
        what="host CPU from the hostmetrics receiver",
    )
    cores = len(prometheus.query('count by (cpu) (system_cpu_time_seconds_total{state="idle"})'))
    assert 0 < float(busy[0]["value"][1]) <= cores, (busy, cores)
    used = prometheus.query('system_memory_usage_bytes{state="used"}')
    assert used and float(used[0]["value"][1]) > 10e6
    assert prometheus.query("system_cpu_load_average_1m")


def test_traces_reach_tempo(scenario: Scenario, tempo: Tempo) -> None:
    spans = eventually(
        lambda: tempo.spans(scenario.trace_id), timeout=30, what="the trace in Tempo"
    )
    assert {s["name"] for s in spans} == {
        "invoke_agent e2e-agent",
        "chat mock-model",
        "POST /v1/chat/completions",
    }


def test_log_carries_its_span_trace_id_and_the_trace_is_found_by_it(
    scenario: Scenario, loki: Loki, tempo: Tempo
) -> None:
    query = (
        f'{{service_name="{scenario.agent.service}"}} '
        f'| trace_id="{scenario.trace_id}" |= "task started"'
    )
    streams = eventually(
        lambda: loki.query_range(query), timeout=30, what="the log line, by its trace id, in Loki"
    )
    (stream,) = streams
    labels = stream["stream"]
    # Index labels as the catalogue says; trace/span ids as structured metadata.
    assert labels["gen_ai_agent_name"] == "e2e-agent"
    assert labels["deployment_environment_name"] == "e2e"
    assert labels["trace_id"] == scenario.trace_id
    assert len(labels["span_id"]) == 16
    # ... and that id leads to the trace.
    spans = eventually(lambda: tempo.spans(labels["trace_id"]), timeout=30, what="the trace")
    assert "invoke_agent e2e-agent" in {s["name"] for s in spans}


def test_trace_and_span_ids_are_not_loki_index_labels(scenario: Scenario, loki: Loki) -> None:
    eventually(lambda: loki.lines(f'{{service_name="{scenario.agent.service}"}}'), timeout=30)
    labels = set(loki.labels())
    assert {"service_name", "gen_ai_agent_name", "deployment_environment_name"} <= labels
    assert not labels & {"trace_id", "span_id", "service_instance_id"}


def test_exemplar_on_latency_histogram_points_at_a_real_trace(
    scenario: Scenario, prometheus: Prometheus, tempo: Tempo
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
    spans = eventually(lambda: tempo.spans(ex["trace_id"]), timeout=30, what="the trace")
    assert any(s["name"] == "chat mock-model" for s in spans)


def test_span_metrics_and_service_graph_series_appear(
    scenario: Scenario, prometheus: Prometheus
) -> None:
    agent, llm = scenario.agent.service, scenario.llm.service
    calls = eventually(
        lambda: prometheus.query(
            f'traces_spanmetrics_calls_total{{service="{agent}", span_name="chat mock-model"}}'
        ),
        timeout=75,
        what="span metrics from Tempo's metrics-generator",
    )
    assert calls[0]["metric"]["span_kind"] == "SPAN_KIND_CLIENT"
    latency = prometheus.query(
        f'traces_spanmetrics_latency_bucket{{service="{agent}", span_name="chat mock-model"}}'
    )
    assert latency, "span-metric latency histogram is missing"
    edge = eventually(
        lambda: prometheus.query(
            f'traces_service_graph_request_total{{client="{agent}", server="{llm}"}}'
        ),
        timeout=75,
        what="the service-graph edge agent -> llm",
    )
    assert float(edge[0]["value"][1]) >= 1
    assert edge[0]["metric"]["client_gen_ai_agent_name"] == "e2e-agent"
    assert edge[0]["metric"]["server_gen_ai_agent_name"] == "mock-llm"


def test_secrets_are_redacted_before_storage(scenario: Scenario, loki: Loki, tempo: Tempo) -> None:
    streams = eventually(
        lambda: loki.query_range(
            f'{{service_name="{scenario.agent.service}"}} |= "calling the provider"'
        ),
        timeout=30,
        what="the log line with secrets",
    )
    (stream,) = streams
    ((_, line),) = stream["values"]
    metadata = stream["stream"]
    for secret in SECRETS:
        assert secret not in line
        assert secret not in str(metadata)
    assert line.count("****") == 2, line
    assert metadata["user_email"] == "****"
    assert metadata["llm_api_key"] == "****"
    assert metadata["atalaia_task_id"] == TASK_ID
    # Span attributes go through the same redaction.
    spans = eventually(lambda: tempo.spans(scenario.trace_id), timeout=30, what="the trace")
    (client,) = [s for s in spans if s["name"] == "chat mock-model"]
    assert attributes(client)["llm.api_key"] == "****"


def test_traceql_metrics_answer_from_local_blocks(scenario: Scenario, tempo: Tempo) -> None:
    """The metrics-generator's local-blocks processor makes `{...} | rate()` queries work."""
    query = f'{{resource.service.name="{scenario.agent.service}"}} | count_over_time()'

    def counted() -> float:
        series = tempo.metrics_query_range(query, since=600)
        return sum(float(s.get("value", 0)) for ts in series for s in ts.get("samples", []))

    assert eventually(counted, timeout=30, what="a TraceQL metrics result") == 2  # its 2 spans
