"""instrument(): resource, exporters from OTEL_* only, idempotency, globals, atexit flush.

instrument() sets OpenTelemetry's global providers, which a process can do once, so the tests
that call it run in a fresh interpreter each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from atalaia import _exporters as exporters
from atalaia._resource import build_resource

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATALAIA_"))}
    # No collector in unit tests: nothing is exported unless a test asks for it.
    clean.update(
        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none"
    )
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=clean,
    )


def test_instrument_is_idempotent_and_global() -> None:
    result = run_python(
        """
        import json, logging
        from opentelemetry import trace, metrics
        import atalaia
        a = atalaia.instrument("svc", agent_name="helix")
        b = atalaia.instrument("svc", agent_name="helix")
        c = atalaia.instrument("svc", agent_name="sigma")
        print(json.dumps({
            "same": a is b is c,
            "current": atalaia.current() is a,
            "global_tracer": trace.get_tracer_provider() is a.tracer_provider,
            "global_meter": metrics.get_meter_provider() is a.meter_provider,
        }))
        """
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.splitlines()[-1])
    assert facts == {"same": True, "current": True, "global_tracer": True, "global_meter": True}
    # One warning, naming what was ignored, as a JSON log line on stdout.
    warnings = [json.loads(x) for x in result.stdout.splitlines() if "already called" in x]
    assert len(warnings) == 1 and "agent_name" in warnings[0]["message"]


def test_atexit_flushes_to_the_configured_exporter() -> None:
    # The console exporters print what is flushed at exit: proof that shutdown ran via atexit.
    result = run_python(
        """
        import atalaia
        atalaia.instrument("svc-exit", agent_name="helix", json_logs=False)
        with atalaia.track_task("t", task_id="t-1"):
            pass
        """,
        env={"OTEL_TRACES_EXPORTER": "console"},
    )
    assert result.returncode == 0, result.stderr
    assert '"name": "invoke_agent helix"' in result.stdout
    assert '"atalaia.task.id": "t-1"' in result.stdout


def test_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    attrs = dict(
        build_resource(
            "svc", agent_name="helix", environment="prod", extra={"team": "growth"}
        ).attributes
    )
    assert attrs["service.name"] == "svc"
    assert attrs["gen_ai.agent.name"] == "helix"
    assert attrs["deployment.environment.name"] == "prod"
    assert attrs["team"] == "growth"
    uuid.UUID(str(attrs["service.instance.id"]))
    assert attrs["telemetry.sdk.language"] == "python"
    assert attrs["process.pid"] == os.getpid()
    assert "host.name" in attrs and "os.type" in attrs
    # The command line may carry secrets: not exported.
    assert "process.command_line" not in attrs and "process.command_args" not in attrs
    # Same process, same instance id.
    assert build_resource("svc").attributes["service.instance.id"] == attrs["service.instance.id"]


def test_environment_overrides_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging,team=ops")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed")
    attrs = build_resource("svc", environment="prod").attributes
    assert attrs["service.name"] == "renamed"
    assert attrs["deployment.environment.name"] == "staging"
    assert attrs["team"] == "ops"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"traces": "http", "metrics": "http", "logs": "http"}),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            {"traces": "grpc", "metrics": "grpc", "logs": "grpc"},
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            {"traces": "http", "metrics": "http", "logs": "http"},
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
            },
            {"traces": "http", "metrics": "http", "logs": "grpc"},
        ),
    ],
)
def test_exporters_follow_the_protocol_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: dict[str, str]
) -> None:
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pipes = exporters.from_environment()
    try:
        modules = [type(e).__module__ for e in pipes.exporters]
        got = {
            signal: ("grpc" if ".grpc." in module else "http")
            for signal, module in zip(("traces", "metrics", "logs"), modules, strict=True)
        }
        assert got == expected
        # Short export timeout by default, so exit is never held for long by a dead collector.
        assert all(getattr(e, "_timeout", 2.0) == 2.0 for e in pipes.exporters)
    finally:
        for exporter in pipes.span_exporters + pipes.log_exporters:
            exporter.shutdown()
        for reader in pipes.metric_readers:
            reader.shutdown()


def test_endpoint_headers_and_timeout_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    pipes = exporters.from_environment()
    try:
        (exporter,) = pipes.exporters
        assert exporter._endpoint == "collector.example:4317"
        assert ("authorization", "Bearer abc") in exporter._headers
        assert exporter._timeout == 2.0
        assert pipes.metric_readers == [] and pipes.log_exporters == []
    finally:
        for span_exporter in pipes.span_exporters:
            span_exporter.shutdown()
