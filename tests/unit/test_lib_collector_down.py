"""The collector is down: the real OTLP exporters point at a closed local port. Helpers must stay
fast, never raise, never stall an asyncio event loop; the queues stay bounded in items and bytes;
shutdown (and so a process's exit) returns within its budget without flooding stderr."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import atalaia
from atalaia._exporters import from_environment
from atalaia._telemetry import Telemetry

REPO = Path(__file__).resolve().parents[2]

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
    tel = Telemetry.setup("down-agent", agent_name="helix", pipelines=pipes, json_logs=False)
    return tel.activate()


def work(i: int) -> None:
    with atalaia.track_task("t", task_id=str(i), department="ops"):
        with atalaia.track_llm_call("gpt-4o-mini", provider="openai") as call:
            call.record_usage(100, 20, 10)
        logging.getLogger("agent").warning("task %d done", i)
        atalaia.record_retry("rate_limit")


def batcher(tel: Telemetry):  # type: ignore[no-untyped-def]
    """The span pipeline's bounded queue (the first processor adds the task's identity)."""
    processors = tel.tracer_provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    return processors[-1].batcher


def queued_spans(tel: Telemetry) -> int:
    return len(batcher(tel)._queue)


def test_helpers_stay_fast_and_shutdown_is_bounded(unreachable: str) -> None:
    tel = setup()
    exporter = type(tel._exporters[0]).__module__
    assert ("grpc" if unreachable == "grpc" else "http") in exporter
    start = time.perf_counter()
    for i in range(CALLS):
        work(i)
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
                atalaia.track_task("t", task_id=str(i)),
                atalaia.track_llm_call("gpt-4o", provider="openai") as call,
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


def test_queue_is_bounded_in_bytes(unreachable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Big spans (long ids, many attributes) with the collector away: the queue holds at most
    ATALAIA_EXPORT_QUEUE_BYTES, whatever the item count allows."""
    monkeypatch.setenv("ATALAIA_EXPORT_QUEUE_BYTES", str(1024 * 1024))
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2048")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")  # nothing leaves the queue meanwhile
    tel = setup()
    for i in range(400):
        with atalaia.track_task("t", task_id="x" * 200_000) as task:  # cut to 4096 characters
            for k in range(9):
                task.set_attribute(f"blob.{k}", f"{i}" + "y" * 10_000)
    queue = batcher(tel)
    assert queue.queued_bytes <= 1024 * 1024
    assert 0 < len(queue._queue) < 40  # ~40 kB each: ~25 fit, not 400
    assert queue.dropped > 0
    tel.shutdown(timeout_s=1.0)


EXIT_BUDGET_S = 2.0  # atalaia._telemetry.DEFAULT_SHUTDOWN_TIMEOUT_S, docs/library.md


def test_process_exit_is_quick_and_quiet_with_the_collector_away(unreachable: str) -> None:
    """What a user sees: an agent that logs and works, then exits, with nobody listening."""
    code = textwrap.dedent(
        """
        import logging, time
        import atalaia
        atalaia.instrument("exit-agent", agent_name="helix")
        log = logging.getLogger("agent")
        for i in range(300):
            with atalaia.track_task("t", task_id=str(i)):
                log.warning("step %d", i)
        time.sleep(0.5)  # exports are failing now
        print("done", flush=True)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATALAIA_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"],
        OTEL_EXPORTER_OTLP_PROTOCOL=unreachable,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:  # readiness: the work is done, exit starts now
        if line.startswith("done"):
            break
    started = time.perf_counter()
    _, stderr = proc.communicate(timeout=30)
    took = time.perf_counter() - started
    assert proc.returncode == 0, stderr
    assert took < EXIT_BUDGET_S + 1.0, f"exit took {took:.1f}s with the collector away"
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) <= 2, "stderr flooded:\n" + "\n".join(lines[:20])
