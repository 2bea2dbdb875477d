"""A restart of what stands behind the Loki and Tempo exporters, in the middle of a stream, loses
nothing and duplicates nothing: what was sent while it was down waits in the collector's
persistent queue (file_storage) and is retried. The exporters are config.yaml's own, as compose
runs them; natively the native log and trace store stands where Loki and Tempo would."""

from __future__ import annotations

import re

from tests.e2e.backends import Store, body, eventually
from tests.e2e.otlp import Telemetry, unique
from tools.native_stack import NativeStack

PER_PHASE = 50
STORE = "log-trace-store"


def send(t: Telemetry, marker: str, phase: str) -> None:
    for i in range(PER_PHASE):
        t.logger.info("%s %s line %03d", marker, phase, i)
        with t.tracer.start_as_current_span(f"{marker} {phase} span {i:03d}"):
            pass
    assert t.logger_provider.force_flush(10_000), "the SDK could not hand the logs over"
    assert t.tracer_provider.force_flush(10_000), "the SDK could not hand the spans over"


def test_store_restart_mid_stream_loses_and_duplicates_nothing(
    native_stack: NativeStack, store: Store, telemetry: Telemetry
) -> None:
    marker = unique("restart")
    pattern = re.compile(r"(before|during|after) (line|span) \d{3}")

    def received() -> tuple[list[str], list[str]]:
        lines = [
            m.group(0)
            for _, r in store.logs()
            if marker in str(body(r)) and (m := pattern.search(str(body(r))))
        ]
        spans = [
            m.group(0)
            for _, s in store.spans()
            if marker in s["name"] and (m := pattern.search(s["name"]))
        ]
        return lines, spans

    send(telemetry, marker, "before")
    eventually(
        lambda: all(len(x) == PER_PHASE for x in received()),
        timeout=30,
        what="the first lines and spans at the store before the restart",
    )

    collector_log = native_stack.log_path("otel-collector")
    seen = collector_log.stat().st_size
    native_stack.stop([STORE])  # SIGTERM, as compose or systemd would
    send(telemetry, marker, "during")  # accepted by the collector while the store is away

    def exports_failed() -> bool:
        with open(collector_log, errors="replace") as fh:
            fh.seek(seen)
            text = fh.read()
        failed = [line for line in text.splitlines() if "Exporting failed" in line]
        return all(
            any(name in line for line in failed) for name in ("otlp_http/loki", "otlp_grpc/tempo")
        )

    # Keep the store down until the collector has really tried (and failed) to deliver to both:
    # otherwise a quick restart would slip between two batches and prove nothing.
    eventually(exports_failed, timeout=30, what="failed exports to the stopped Loki and Tempo")
    native_stack.start([STORE])
    native_stack.wait_ready([STORE], timeout=60)
    send(telemetry, marker, "after")

    phases = ("before", "during", "after")
    want_lines = sorted(f"{p} line {i:03d}" for p in phases for i in range(PER_PHASE))
    want_spans = sorted(f"{p} span {i:03d}" for p in phases for i in range(PER_PHASE))

    def complete() -> bool:
        lines, spans = received()
        return set(lines) == set(want_lines) and set(spans) == set(want_spans)

    eventually(complete, timeout=60, what="everything sent before, during and after the restart")
    # Nothing twice either: the retry of a batch already taken would show up here.
    lines, spans = received()
    assert sorted(lines) == want_lines
    assert sorted(spans) == want_spans


def test_a_collector_restart_keeps_what_it_queued_on_disk(
    native_stack: NativeStack, store: Store, telemetry: Telemetry
) -> None:
    """The exporters' queues live in file_storage: what the collector accepted while Loki and
    Tempo were away is still there after the collector itself restarts, and is delivered once
    they are back."""
    marker = unique("queued")
    pattern = re.compile(r"(queued) (line|span) \d{3}")

    def received() -> tuple[list[str], list[str]]:
        lines = [
            m.group(0)
            for _, r in store.logs()
            if marker in str(body(r)) and (m := pattern.search(str(body(r))))
        ]
        spans = [
            m.group(0)
            for _, s in store.spans()
            if marker in s["name"] and (m := pattern.search(s["name"]))
        ]
        return lines, spans

    collector_log = native_stack.log_path("otel-collector")
    seen = collector_log.stat().st_size
    native_stack.stop([STORE])
    send(telemetry, marker, "queued")

    def exports_failed() -> bool:
        with open(collector_log, errors="replace") as fh:
            fh.seek(seen)
            failed = [line for line in fh if "Exporting failed" in line]
        return all(
            any(name in line for line in failed) for name in ("otlp_http/loki", "otlp_grpc/tempo")
        )

    eventually(exports_failed, timeout=30, what="failed exports to the stopped Loki and Tempo")
    native_stack.restart("otel-collector")  # SIGTERM and start again, on the same disk queue
    native_stack.start([STORE])
    native_stack.wait_ready([STORE], timeout=60)
    want_lines = sorted(f"queued line {i:03d}" for i in range(PER_PHASE))
    want_spans = sorted(f"queued span {i:03d}" for i in range(PER_PHASE))
    eventually(
        lambda: (
            sorted(set(received()[0])) == want_lines and sorted(set(received()[1])) == want_spans
        ),
        timeout=90,
        what="what was queued before the collector restarted",
    )
    lines, spans = received()
    assert sorted(lines) == want_lines and sorted(spans) == want_spans  # and nothing twice
