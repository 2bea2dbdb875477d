"""The small agent each golden recording runs, inside the emitter's own virtualenv.

    <venv>/bin/python tests/golden/agent.py EMITTER

It instruments itself with EMITTER's real package, then makes the same calls with the real
`openai` (and, where the emitter instruments it, `anthropic`) client against the mock provider
(tests/golden/mock_llm.py): a chat call, a streamed chat call with usage, a streamed one without,
an embeddings call, a rate-limited call (429) and a failing one (500); the same for Anthropic's
messages API. Where the emitter has a way to mark an agent's task and a tool call, the calls run
inside one task with one tool call. Telemetry goes over OTLP/HTTP to the capture collector that
tests/golden/record.py started (the standard OTEL_EXPORTER_OTLP_* variables, or the emitter's own
setting). The last line on stdout is a JSON summary of what the agent made (tasks, tools).

Only the emitter's venv is on the path here: no atalaia, nothing from the repo.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

OPENAI_URL = os.environ["GOLDEN_OPENAI_URL"]  # http://127.0.0.1:PORT/v1
ANTHROPIC_URL = os.environ["GOLDEN_ANTHROPIC_URL"]  # http://127.0.0.1:PORT
OTLP = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]  # http://127.0.0.1:PORT
# The agent name: tests/e2e/test_any_emitter.py gives each emitter its own.
AGENT, TOOL = os.environ.get("GOLDEN_AGENT", "golden-agent"), "lookup_weather"
KEY = "golden-test-key"  # the mock checks nothing; not a real key
FAIL_429 = {"x-golden-fail": "429"}
FAIL_500 = {"x-golden-fail": "500"}
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "How is the fleet?"},
]


def _swallow(call: Callable[[], Any]) -> None:
    """A failing call is part of the script: its span is what we record."""
    try:
        call()
    except Exception as e:  # the clients' RateLimitError / InternalServerError
        print(f"  expected failure: {type(e).__module__}.{type(e).__name__}", file=sys.stderr)


def run_openai() -> None:
    import openai

    client = openai.OpenAI(base_url=OPENAI_URL, api_key=KEY, max_retries=0)
    model = "gpt-4o-mini"
    client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=64)
    for _ in client.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ):
        pass
    for _ in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
        pass  # no usage asked for: nobody can know the tokens
    client.embeddings.create(model="text-embedding-3-small", input="fleet health")
    _swallow(
        lambda: client.chat.completions.create(
            model=model, messages=MESSAGES, extra_headers=FAIL_429
        )
    )
    _swallow(
        lambda: client.chat.completions.create(
            model=model, messages=MESSAGES, extra_headers=FAIL_500
        )
    )


def run_anthropic() -> None:
    """Anthropic's messages API. Only the anthropic-sdk recording leaves the SDK's own tracing on
    (record.py sets ANTHROPIC_OPEN_TELEMETRY=false elsewhere): with an instrumentation as well,
    every call would be two spans."""
    import anthropic

    client = anthropic.Anthropic(base_url=ANTHROPIC_URL, api_key=KEY, max_retries=0)
    model = "claude-sonnet-4-5"
    kw: dict[str, Any] = {
        "model": model,
        "max_tokens": 64,
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": "How is the fleet?"}],
    }
    client.messages.create(**kw)
    for _ in client.messages.create(**kw, stream=True):
        pass
    _swallow(lambda: client.messages.create(**kw, extra_headers=FAIL_429))
    _swallow(lambda: client.messages.create(**kw, extra_headers=FAIL_500))


# -- plain OpenTelemetry SDK set-up (emitters that leave it to the application) ---------------


def sdk() -> Callable[[], None]:
    """Global tracer, meter and logger providers exporting OTLP/HTTP; returns the shutdown."""
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    _logs.set_logger_provider(logger_provider)

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()
        logger_provider.shutdown()

    return shutdown


# -- emitters ---------------------------------------------------------------------------------
Summary = dict[str, Any]


def openai_v2() -> Summary:
    """opentelemetry-instrumentation-openai-v2: the official OpenAI instrumentation."""
    shutdown = sdk()
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    run_openai()
    shutdown()
    return {"tasks": 0, "tools": 0}


def genai() -> Summary:
    """opentelemetry-instrumentation-genai-openai / -anthropic, with opentelemetry-util-genai's
    TelemetryHandler for the agent's task and tool call."""
    shutdown = sdk()
    from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
    from opentelemetry.util.genai.handler import get_telemetry_handler

    OpenAIInstrumentor().instrument()
    AnthropicInstrumentor().instrument()
    handler = get_telemetry_handler()
    with handler.invoke_local_agent(agent_name=AGENT, request_model="gpt-4o-mini"):
        with handler.tool(TOOL, agent_name=AGENT):
            pass
        run_openai()
        run_anthropic()
    shutdown()
    return {"tasks": 1, "tools": 1}


def traceloop() -> Summary:
    """traceloop-sdk (OpenLLMetry): its own SDK set-up, @agent and @tool decorators."""
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import agent, tool

    Traceloop.init(
        app_name=os.environ["OTEL_SERVICE_NAME"],
        api_endpoint=OTLP,
        disable_batch=True,
        telemetry_enabled=False,
    )

    @tool(name=TOOL)
    def lookup() -> str:
        return "sunny"

    @agent(name=AGENT)
    def work() -> None:
        lookup()
        run_openai()
        run_anthropic()

    work()
    with contextlib.suppress(Exception):
        from opentelemetry import metrics, trace

        trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
        metrics.get_meter_provider().shutdown()  # type: ignore[attr-defined]
    return {"tasks": 1, "tools": 1}


def openlit() -> Summary:
    """openlit: its own SDK set-up (openlit.init); no task or tool API for plain clients."""
    import tempfile

    import openlit as ol

    prices = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    prices.write("{}")  # openlit fetches a price list from the internet unless given one
    prices.close()
    ol.init(
        pricing_json=prices.name,
        otlp_endpoint=OTLP,
        application_name=os.environ["OTEL_SERVICE_NAME"],
        environment="golden",
        capture_message_content=False,
        disable_batch=True,
    )
    run_openai()
    run_anthropic()
    from opentelemetry import metrics, trace

    with contextlib.suppress(Exception):
        trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
        metrics.get_meter_provider().shutdown()  # type: ignore[attr-defined]
    return {"tasks": 0, "tools": 0}


def openinference() -> Summary:
    """openinference-instrumentation-openai / -anthropic (spans only), with OITracer's agent and
    tool decorators."""
    shutdown = sdk()
    from openinference.instrumentation import OITracer, TraceConfig
    from openinference.instrumentation.anthropic import AnthropicInstrumentor
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry import trace

    config = TraceConfig(hide_inputs=True, hide_outputs=True)
    OpenAIInstrumentor().instrument(config=config)
    AnthropicInstrumentor().instrument(config=config)
    tracer = OITracer(trace.get_tracer("golden"), config=config)

    @tracer.tool(name=TOOL)
    def lookup() -> str:
        return "sunny"

    @tracer.agent(name=AGENT)
    def work() -> None:
        lookup()
        run_openai()
        run_anthropic()

    work()
    shutdown()
    return {"tasks": 1, "tools": 1}


def anthropic_sdk() -> Summary:
    """The anthropic SDK's built-in tracing (2.x, and 1.x since some release): a CLIENT span
    per API call, whenever a tracer provider is set. No instrumentation package at all."""
    shutdown = sdk()
    run_anthropic()
    shutdown()
    return {"tasks": 0, "tools": 0}


def agento11y() -> Summary:
    """agento11y (Grafana's agent SDK): its provider wrappers around each call, the
    application's OpenTelemetry set-up, generation export to Grafana's ingest turned off."""
    shutdown = sdk()
    import anthropic
    import openai
    from agento11y import Client, ClientConfig, GenerationExportConfig, ToolExecutionStart
    from agento11y_anthropic import AnthropicOptions, AnthropicStreamSummary, messages
    from agento11y_openai import ChatCompletionsStreamSummary, OpenAIOptions, chat, embeddings

    o11y = Client(ClientConfig(generation_export=GenerationExportConfig(protocol="none")))
    oai = openai.OpenAI(base_url=OPENAI_URL, api_key=KEY, max_retries=0)
    ant = anthropic.Anthropic(base_url=ANTHROPIC_URL, api_key=KEY, max_retries=0)
    o_opts = OpenAIOptions(agent_name=AGENT)
    a_opts = AnthropicOptions(agent_name=AGENT)
    with o11y.start_tool_execution(ToolExecutionStart(tool_name=TOOL, agent_name=AGENT)):
        pass
    req: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 64}
    chat.completions.create(o11y, req, lambda r: oai.chat.completions.create(**r), o_opts)
    stream_req = {**req, "stream": True, "stream_options": {"include_usage": True}}
    chat.completions.stream(
        o11y,
        stream_req,
        lambda r: ChatCompletionsStreamSummary(events=list(oai.chat.completions.create(**r))),
        o_opts,
    )
    chat.completions.stream(
        o11y,
        {**req, "stream": True},
        lambda r: ChatCompletionsStreamSummary(events=list(oai.chat.completions.create(**r))),
        o_opts,
    )
    emb = {"model": "text-embedding-3-small", "input": "fleet health"}
    embeddings.create(o11y, emb, lambda r: oai.embeddings.create(**r), o_opts)
    for fail in (FAIL_429, FAIL_500):
        _swallow(
            lambda fail=fail: chat.completions.create(
                o11y,
                req,
                lambda r: oai.chat.completions.create(**r, extra_headers=fail),
                o_opts,
            )
        )
    a_req: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": "How is the fleet?"}],
    }
    messages.create(o11y, a_req, lambda r: ant.messages.create(**r), a_opts)
    messages.stream(
        o11y,
        {**a_req, "stream": True},
        lambda r: AnthropicStreamSummary(events=list(ant.messages.create(**r))),
        a_opts,
    )
    for fail in (FAIL_429, FAIL_500):
        _swallow(
            lambda fail=fail: messages.create(
                o11y, a_req, lambda r: ant.messages.create(**r, extra_headers=fail), a_opts
            )
        )
    o11y.shutdown()
    shutdown()
    return {"tasks": 0, "tools": 1}


EMITTERS: dict[str, Callable[[], Summary]] = {
    "openai-v2": openai_v2,
    "genai": genai,
    "traceloop": traceloop,
    "openlit": openlit,
    "openinference": openinference,
    "agento11y": agento11y,
    "anthropic-sdk": anthropic_sdk,
}


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Emitters print banners; only the summary goes to stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


if __name__ == "__main__":
    with _stdout_to_stderr():
        summary = EMITTERS[sys.argv[1]]()
    print(json.dumps(summary))
