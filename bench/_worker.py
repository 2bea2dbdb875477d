"""One emitter's side of `make bench` (bench/bench_library.py), run by that emitter's Python.

    <python> bench/_worker.py EMITTER CALLS RUNS

Standard library, `openai` and its HTTP library only (each emitter's venv has its own), so it
runs in the project's venv and in the golden recording venvs alike. The app does what an agent
does: configures logging (INFO, to a handler of its own), then sets the emitter up with its
defaults, exporting OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT, then makes CALLS chat completions
with the real `openai` client over a mock transport (no network: the answer is built in
process), one log line per call, RUNS times. Prints one JSON line: microseconds per call of each
run, the set-up time and the resident memory before and after the set-up.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "All agents are healthy."},
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 17, "total_tokens": 137},
}
MESSAGES = [{"role": "user", "content": "How is the fleet?"}]


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def client() -> Any:
    """The real openai client over a mock transport of the HTTP library it is built on."""
    import openai

    try:
        import httpx2 as http
    except ImportError:  # openai < 3 is built on httpx
        import httpx as http  # type: ignore[no-redef]
    body = json.dumps(ANSWER).encode()

    def handler(request: Any) -> Any:
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    http_client = http.Client(transport=http.MockTransport(handler))
    return openai.OpenAI(api_key="bench", base_url="http://llm.invalid/v1", http_client=http_client)


# --- emitters, each with its own defaults -------------------------------------------------------
def sdk() -> None:
    """The plain OpenTelemetry SDK set-up an application does for an instrumentation that leaves
    it to the application: traces, metrics and logs over OTLP/HTTP, batched."""
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    _logs.set_logger_provider(logger_provider)


def raw() -> None:
    """No telemetry at all: the baseline."""


def atalaia_default() -> None:
    import atalaia

    atalaia.instrument("bench-agent", agent_name="bench")


def openai_v2() -> None:
    sdk()
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # type: ignore[import-not-found]

    OpenAIInstrumentor().instrument()


def genai() -> None:
    sdk()
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()


def openllmetry() -> None:
    from traceloop.sdk import Traceloop  # type: ignore[import-not-found]

    Traceloop.init(
        app_name="bench-agent",
        api_endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"],
        telemetry_enabled=False,
    )


def openlit() -> None:
    import openlit as ol  # type: ignore[import-not-found]

    prices = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    prices.write("{}")  # openlit fetches a price list from the internet unless given one
    prices.close()
    ol.init(
        otlp_endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"],
        application_name="bench-agent",
        pricing_json=prices.name,
    )


EMITTERS: dict[str, Callable[[], None]] = {
    "raw": raw,
    "atalaia": atalaia_default,
    "openai-v2": openai_v2,
    "genai": genai,
    "openllmetry": openllmetry,
    "openlit": openlit,
}


def main() -> None:
    emitter, calls, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sink = io.StringIO()
    logging.basicConfig(level=logging.INFO, stream=sink, format="%(levelname)s %(message)s")
    log = logging.getLogger("agent")
    import openai  # noqa: F401  (the app has its client imported before telemetry is set up)

    before = rss_kib()
    start = time.perf_counter()
    with open(os.devnull, "w") as quiet:  # emitters' banners
        saved, sys.stdout = sys.stdout, quiet
        try:
            EMITTERS[emitter]()
        finally:
            sys.stdout = saved
    setup_ms = (time.perf_counter() - start) * 1000
    c = client()

    def one() -> None:
        answer = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        log.info("answer received: %d tokens", answer.usage.total_tokens)

    for _ in range(max(calls // 2, 50)):  # warm up: imports, caches, first exports
        one()
    per_call, per_call_cpu, per_call_process = [], [], []
    for _ in range(runs):
        sink.seek(0)
        sink.truncate()
        t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        for _ in range(calls):
            one()
        per_call.append((time.perf_counter() - t0) / calls * 1e6)
        per_call_cpu.append((time.thread_time() - c0) / calls * 1e6)
        time.sleep(0.3)  # let the exporters' threads send what the run made
        per_call_process.append((time.process_time() - p0) / calls * 1e6)
    result = {
        "emitter": emitter,
        "per_call_us": per_call,  # wall clock on the caller's thread
        "per_call_cpu_us": per_call_cpu,  # CPU of the caller's thread
        "per_call_process_cpu_us": per_call_process,  # CPU of every thread, exports included
        "setup_ms": setup_ms,
        "rss_before_kib": before,
        "rss_after_kib": rss_kib(),
        "log_lines": sink.getvalue().count("answer received"),
    }
    print(json.dumps(result), flush=True)
    os._exit(0)  # no exit-time flush in the measurement's wall clock


if __name__ == "__main__":
    main()
