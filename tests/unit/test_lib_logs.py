"""stdlib logging bridged to OTLP with trace context, one JSON line per record on stdout for an
app that did not configure logging, and nothing changed in an app that did."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry._logs import SeverityNumber

import atalaia
from atalaia.testing import Captured, in_memory

log = logging.getLogger("agent.test")


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger of an app that configured nothing (pytest's own handlers set aside)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    root.handlers.clear()
    root.setLevel(logging.WARNING)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def cap(bare_root: logging.Logger) -> Iterator[Captured]:
    captured = in_memory("svc-logs", agent_name="helix", install_logging=True).activate()
    yield captured
    captured.close()


def strip_pytest_handlers() -> None:
    """pytest adds its capture handlers to the root logger for each test phase: inside a test
    body, set them aside too."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if type(h).__module__ != "_pytest.logging"]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_records_carry_trace_and_task_ids(cap: Captured, capsys: pytest.CaptureFixture) -> None:
    with atalaia.track_task("t", task_id="task-42") as task:
        log.warning("budget low for %s", "sales", extra={"atalaia.department": "sales"})
        span_ctx = task.span.get_span_context()
    log.error("outside any span")

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


def test_the_root_level_is_the_apps(cap: Captured, bare_root: logging.Logger) -> None:
    """No INFO flood (httpx logs every request at INFO): the level stays what the app set."""
    assert bare_root.level == logging.WARNING
    logging.getLogger("httpx").info("HTTP Request: POST ... 200 OK")
    log.info("routine")
    assert cap.logs() == []


def test_log_level_only_when_asked(bare_root: logging.Logger) -> None:
    strip_pytest_handlers()
    captured = in_memory(install_logging=True, json_logs=False, log_level=logging.INFO)
    try:
        assert bare_root.level == logging.INFO
        log.info("now captured")
        assert [r.log_record.body for r in captured.logs()] == ["now captured"]
    finally:
        captured.close()


def test_an_app_that_configured_logging_keeps_its_handlers_and_levels(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture
) -> None:
    seen: list[str] = []

    class AppHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    strip_pytest_handlers()
    app = AppHandler()
    bare_root.addHandler(app)
    bare_root.setLevel(logging.INFO)
    captured = in_memory(install_logging=True)  # json_logs=True: not for a configured app
    try:
        assert bare_root.level == logging.INFO
        assert [
            h for h in bare_root.handlers if h is not app and "OTel" not in type(h).__name__
        ] == []
        log.info("once")
        log.debug("below the app's level")
        assert seen == ["once"]  # printed once, by the app's handler only
        assert json_lines(capsys.readouterr().out) == []
        assert [r.log_record.body for r in captured.logs()] == ["once"]  # at the app's levels
    finally:
        captured.close()
    assert bare_root.handlers == [app]


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


def test_long_messages_are_cut(cap: Captured) -> None:
    log.error("x" * 1_000_000, extra={"customer": "y" * 100_000})
    (record,) = cap.logs()
    assert len(record.log_record.body) == 64 * 1024
    assert len(record.log_record.attributes["customer"]) == 4096


def test_sdk_internal_logs_stay_off_otlp_and_are_rate_limited(
    cap: Captured, capsys: pytest.CaptureFixture
) -> None:
    sdk_log = logging.getLogger("opentelemetry.sdk._shared_internal")
    for _ in range(50):
        sdk_log.warning("Queue full, dropping %s.", "span")
    assert cap.logs() == []  # exporting the exporter's complaints would loop
    out = capsys.readouterr()
    assert json_lines(out.out) == []  # not through the app's (or our JSON) handlers
    assert out.err.count("Queue full") == 1  # to stderr, one line every 30 s
    logging.getLogger("opentelemetry.exporter.otlp").warning("Transient error, retrying")
    assert "Transient" not in capsys.readouterr().err


def test_json_logs_can_be_turned_off(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture
) -> None:
    strip_pytest_handlers()
    captured = in_memory(install_logging=True, json_logs=False)
    log.warning("only OTLP")
    captured.close()
    assert json_lines(capsys.readouterr().out) == []
    assert [r.log_record.body for r in captured.logs()] == ["only OTLP"]


def test_shutdown_removes_the_handlers(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture
) -> None:
    strip_pytest_handlers()
    captured = in_memory(install_logging=True)
    assert len(bare_root.handlers) == 2
    sdk = logging.getLogger("opentelemetry")
    assert sdk.propagate is False
    captured.close()
    assert bare_root.handlers == []
    assert sdk.handlers == [] and sdk.propagate is True
    log.warning("after shutdown")
    assert captured.logs() == []
    assert json_lines(capsys.readouterr().out) == []
