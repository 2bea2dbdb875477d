"""A Loki restart in the middle of a log stream loses nothing: what Loki had acknowledged comes
back from its WAL, and what was sent while it was down waits in the collector's persistent
queue and is retried."""

from __future__ import annotations

import re

from tests.e2e.backends import Loki, eventually
from tests.e2e.otlp import Telemetry, unique
from tools.native_stack import NativeStack

PER_PHASE = 50


def send(t: Telemetry, marker: str, phase: str) -> None:
    for i in range(PER_PHASE):
        t.logger.info("%s %s line %03d", marker, phase, i)
    assert t.logger_provider.force_flush(10_000), "the SDK could not hand the logs over"


def test_loki_restart_mid_stream_loses_no_log_lines(
    native_stack: NativeStack, loki: Loki, telemetry: Telemetry
) -> None:
    marker = unique("restart")
    query = f'{{service_name="{telemetry.service}"}} |= "{marker}"'

    def received() -> set[str]:
        return {
            m.group(0)
            for line in loki.lines(query)
            if (m := re.search(r"(before|during|after) line \d{3}", line))
        }

    send(telemetry, marker, "before")
    eventually(
        lambda: len(received()) == PER_PHASE,
        timeout=30,
        what="the first lines in Loki before the restart",
    )

    collector_log = native_stack.log_path("otel-collector")
    seen = collector_log.stat().st_size
    native_stack.stop(["loki"])  # SIGTERM, as compose or systemd would
    send(telemetry, marker, "during")  # accepted by the collector while Loki is away

    def export_to_loki_failed() -> bool:
        with open(collector_log, errors="replace") as fh:
            fh.seek(seen)
            return any("Exporting failed" in line and "otlp_http/loki" in line for line in fh)

    # Keep Loki down until the collector has really tried (and failed) to deliver: otherwise a
    # quick restart would slip between two batches and prove nothing.
    eventually(export_to_loki_failed, timeout=30, what="a failed export to the stopped Loki")
    native_stack.start(["loki"])
    native_stack.wait_ready(["loki"], timeout=60)
    send(telemetry, marker, "after")

    expected = {
        f"{phase} line {i:03d}" for phase in ("before", "during", "after") for i in range(PER_PHASE)
    }
    eventually(
        lambda: received() == expected,
        timeout=60,
        what="every line sent before, during and after the restart",
    )
    # Nothing twice either: the retry of a batch Loki had already taken would show up here.
    assert len(loki.lines(query)) == len(expected)
