"""Overhead of `track_llm_call` per call: no-op OpenTelemetry API vs the real SDK (exporting into
memory, so the network is not measured), against an uninstrumented baseline.

    make bench            # or: .venv/bin/python bench/bench_llm_call.py [--calls N] [--repeat R]

Prints microseconds per call (best and median of R rounds of N calls) and the overhead over the
baseline. A benchmark, not a test: it asserts nothing and is not part of `make test`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

from openai.types.chat import ChatCompletion
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from atalaia.exporters import Pipelines
from atalaia.telemetry import Telemetry

RESPONSE = ChatCompletion.model_validate(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant"}}],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200},
        },
    }
)


def noop_telemetry() -> Telemetry:
    return Telemetry(
        tracer_provider=trace.NoOpTracerProvider(),
        meter_provider=metrics.NoOpMeterProvider(),
        logger_provider=_logs.NoOpLoggerProvider(),
    )


def sdk_telemetry() -> Telemetry:
    # What instrument() builds, with in-memory exporters in place of OTLP.
    return Telemetry.setup(
        "bench",
        agent_name="bench",
        pipelines=Pipelines(
            span_processors=[BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 20)],
            metric_readers=[InMemoryMetricReader()],
        ),
        install_logging=False,
        process_metrics_enabled=False,
    )


def baseline(_: Telemetry | None) -> Callable[[], None]:
    def call() -> None:
        with nullcontext():
            RESPONSE.usage  # noqa: B018 - what an uninstrumented agent would read anyway

    return call


def with_usage(tel: Telemetry | None) -> Callable[[], None]:
    assert tel is not None

    def call() -> None:
        with tel.track_llm_call("gpt-4o-mini", provider="openai", department="sales") as llm:
            llm.record_usage(1200, 300, 200, response_model="gpt-4o-mini-2024-07-18")

    return call


def with_response(tel: Telemetry | None) -> Callable[[], None]:
    assert tel is not None

    def call() -> None:
        with tel.track_llm_call("gpt-4o-mini", provider="openai", department="sales") as llm:
            llm.record_response(RESPONSE)

    return call


def measure(fn: Callable[[], None], calls: int, repeat: int) -> tuple[float, float]:
    for _ in range(min(calls, 1000)):  # warm up caches and instrument storage
        fn()
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return min(rounds), statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    noop, sdk = noop_telemetry(), sdk_telemetry()
    cases = [
        ("baseline (no instrumentation)", baseline, None),
        ("track_llm_call, no-op API, record_usage", with_usage, noop),
        ("track_llm_call, no-op API, record_response", with_response, noop),
        ("track_llm_call, SDK, record_usage", with_usage, sdk),
        ("track_llm_call, SDK, record_response", with_response, sdk),
    ]
    print(f"{args.calls} calls x {args.repeat} rounds; microseconds per call")
    print(f"{'case':<46}{'best':>9}{'median':>9}{'overhead':>10}")
    base = 0.0
    for label, make, tel in cases:
        best, median = measure(make(tel), args.calls, args.repeat)
        if tel is None:
            base = best
        overhead = "" if tel is None else f"{best - base:>10.1f}"
        print(f"{label:<46}{best:>9.1f}{median:>9.1f}{overhead}")
    sdk.shutdown()


if __name__ == "__main__":
    main()
