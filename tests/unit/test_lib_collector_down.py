"""The collector is down: the real OTLP exporters point at a closed local port. Helpers must stay
fast, never raise, never stall an asyncio event loop, and shutdown must return in bounded time."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from atalaia.exporters import from_environment
from atalaia.telemetry import Telemetry

CALLS = 3000


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: connections are refused


@pytest.fixture(params=["grpc", "http/protobuf"])
def unreachable(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", request.param)
    # Export often and keep the queues small, so that exports fail and items are dropped
    # *while* the agent is working.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "256")
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "256")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64")
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "64")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
    yield request.param


def setup() -> Telemetry:
    pipes = from_environment()
    assert len(pipes.exporters) == 3  # traces, metrics and logs all really export over OTLP
    return Telemetry.setup("down-agent", agent_name="helix", pipelines=pipes, json_logs=False)


def work(tel: Telemetry, i: int) -> None:
    with tel.track_task("t", task_id=str(i), department="ops"):
        with tel.track_llm_call("gpt-4o-mini", provider="openai") as call:
            call.record_usage(100, 20, 10)
        logging.getLogger("agent").info("task %d done", i)
        tel.record_retry("rate_limit")


def queued_spans(tel: Telemetry) -> int:
    """Spans waiting in the batch processor's queue (SDK internals: fails loudly if they move)."""
    (processor,) = tel.tracer_provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    return len(processor._batch_processor._queue)


def test_helpers_stay_fast_and_shutdown_is_bounded(unreachable: str) -> None:
    tel = setup()
    exporter = type(tel._exporters[0]).__module__
    assert ("grpc" if unreachable == "grpc" else "http") in exporter
    start = time.perf_counter()
    for i in range(CALLS):
        work(tel, i)
    elapsed = time.perf_counter() - start
    # The queue is bounded: what the collector cannot take is dropped, not accumulated.
    assert 0 < queued_spans(tel) <= 256
    assert tel.force_flush(timeout_s=1.0) in (True, False)  # bounded, never raises

    stop = time.perf_counter()
    tel.shutdown(timeout_s=2.0)
    stopped = time.perf_counter() - stop
    print(f"{unreachable}: {CALLS} tasks in {elapsed:.2f}s, shutdown in {stopped:.2f}s")
    assert elapsed < 10, f"{CALLS} instrumented tasks took {elapsed:.1f}s with the collector down"
    assert stopped < 4, f"shutdown took {stopped:.1f}s"


def test_event_loop_is_never_blocked(unreachable: str) -> None:
    tel = setup()
    lags: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    async def agent() -> None:
        for i in range(CALLS // 3):
            async with (
                tel.track_task("t", task_id=str(i)),
                tel.track_llm_call("gpt-4o", provider="openai") as call,
            ):
                await asyncio.sleep(0)
                call.record_usage(10, 10)
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # let time pass: exports fail meanwhile

    async def main() -> None:
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        await agent()
        stop.set()
        await tick

    asyncio.run(main())
    tel.shutdown(timeout_s=2.0)
    assert lags, "the ticker never ran"
    # A synchronous export to an unreachable collector would stall the loop for its retries
    # (seconds); batching on background threads keeps every await short.
    assert max(lags) < 0.5, f"event loop stalled for {max(lags):.2f}s"
