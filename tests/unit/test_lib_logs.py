"""stdlib logging bridged to OTLP with trace context, and one JSON line per record on stdout."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry._logs import SeverityNumber

from atalaia.testing import Captured, in_memory

log = logging.getLogger("agent.test")


@pytest.fixture
def cap() -> Iterator[Captured]:
    captured = in_memory("svc-logs", agent_name="helix", install_logging=True)
    yield captured
    captured.telemetry.shutdown()


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_records_carry_trace_and_task_ids(cap: Captured, capsys: pytest.CaptureFixture) -> None:
    tel = cap.telemetry
    with tel.track_task("t", task_id="task-42") as task:
        log.warning("budget low for %s", "sales", extra={"atalaia.department": "sales"})
        span_ctx = task.span.get_span_context()
    log.info("outside any span")

    inside, outside = cap.logs()
    rec = inside.log_record
    assert rec.body == "budget low for sales"
    assert rec.severity_text == "WARNING"
    assert rec.severity_number is SeverityNumber.WARN
    assert (rec.trace_id, rec.span_id) == (span_ctx.trace_id, span_ctx.span_id)
    assert rec.attributes["atalaia.task.id"] == "task-42"
    assert rec.attributes["atalaia.department"] == "sales"
    assert inside.resource.attributes["service.name"] == "svc-logs"
    assert inside.resource.attributes["gen_ai.agent.name"] == "helix"
    assert outside.log_record.trace_id == 0
    assert "atalaia.task.id" not in outside.log_record.attributes

    first, second = json_lines(capsys.readouterr().out)
    assert first["message"] == "budget low for sales"
    assert first["level"] == "WARNING"
    assert first["logger"] == "agent.test"
    assert first["trace_id"] == format(span_ctx.trace_id, "032x")
    assert first["span_id"] == format(span_ctx.span_id, "016x")
    assert first["service.name"] == "svc-logs"
    assert first["gen_ai.agent.name"] == "helix"
    assert first["atalaia.task.id"] == "task-42"
    assert first["atalaia.department"] == "sales"
    assert "trace_id" not in second


def test_exception_records_get_error_type(cap: Captured, capsys: pytest.CaptureFixture) -> None:
    try:
        raise ConnectionError("db down")
    except ConnectionError:
        log.exception("query failed")
    (record,) = cap.logs()
    assert record.log_record.severity_text == "ERROR"
    assert record.log_record.attributes["error.type"] == "ConnectionError"
    assert "db down" in record.log_record.attributes["exception.stacktrace"]
    (line,) = json_lines(capsys.readouterr().out)
    assert line["error.type"] == "ConnectionError"
    assert "Traceback" in line["exception"]


def test_sdk_internal_logs_stay_off_otlp_and_are_rate_limited(
    cap: Captured, capsys: pytest.CaptureFixture
) -> None:
    sdk_log = logging.getLogger("opentelemetry.sdk._shared_internal")
    for _ in range(50):
        sdk_log.warning("Queue full, dropping %s.", "span")
    assert cap.logs() == []  # exporting the exporter's complaints would loop
    assert len(json_lines(capsys.readouterr().out)) == 1


def test_json_logs_can_be_turned_off(capsys: pytest.CaptureFixture) -> None:
    captured = in_memory(install_logging=True, json_logs=False)
    log.info("only OTLP")
    captured.telemetry.shutdown()
    assert json_lines(capsys.readouterr().out) == []
    assert [r.log_record.body for r in captured.logs()] == ["only OTLP"]


def test_shutdown_removes_the_handlers(capsys: pytest.CaptureFixture) -> None:
    captured = in_memory(install_logging=True)
    root = logging.getLogger()
    before = len(root.handlers)
    captured.telemetry.shutdown()
    assert len(root.handlers) == before - 2
    log.warning("after shutdown")
    assert captured.logs() == []
    assert json_lines(capsys.readouterr().out) == []
