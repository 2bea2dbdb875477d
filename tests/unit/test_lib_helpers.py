"""track_task / track_llm_call / track_tool and the recorders, read back through the SDK's
in-memory exporters and reader."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion
from opentelemetry.sdk.metrics.export import Gauge, Sum
from opentelemetry.trace import SpanKind, StatusCode

import atalaia
from atalaia.testing import Captured, in_memory


@pytest.fixture
def cap() -> Iterator[Captured]:
    captured = in_memory(agent_name="helix").activate()
    yield captured
    captured.close()


def attrs_of(points: list, **match: str) -> list[dict]:
    return [
        dict(p.attributes)
        for p in points
        if all(p.attributes.get(k) == v for k, v in match.items())
    ]


def point(cap: Captured, name: str, **attrs: object):
    found = [p for p in cap.points(name) if dict(p.attributes) == attrs]
    assert len(found) == 1, (
        f"{name} {attrs} not in {[dict(p.attributes) for p in cap.points(name)]}"
    )
    return found[0]


def chat_completion(model: str = "gpt-4o-mini-2024-07-18", cached: int = 0) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Bom dia!"},
                }
            ],
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
    )


# --- track_task ----------------------------------------------------------------------------------
def test_task_span(cap: Captured) -> None:
    with atalaia.track_task(
        "summarise", task_id="t-1", department="sales", conversation_id="c-9"
    ) as t:
        assert t.outcome == "success"
    (span,) = cap.spans()
    assert span.name == "invoke_agent helix"
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "helix",
        "atalaia.task.kind": "summarise",
        "atalaia.task.id": "t-1",
        "atalaia.department": "sales",
        "gen_ai.conversation.id": "c-9",
        "atalaia.task.outcome": "success",
    }
    # The collector derives the task series from the span; the library sends no copy.
    assert "atalaia.task.duration" not in cap.metrics()


def test_task_outcomes_from_exceptions_propagate_unchanged(cap: Captured) -> None:
    boom = ValueError("bad input")
    with pytest.raises(ValueError) as raised, atalaia.track_task():
        raise boom
    assert raised.value is boom
    with pytest.raises(TimeoutError), atalaia.track_task():
        raise TimeoutError
    failed, timed_out = cap.spans()
    assert failed.attributes["atalaia.task.outcome"] == "failure"
    assert failed.attributes["error.type"] == "ValueError"
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    assert timed_out.attributes["atalaia.task.outcome"] == "timeout"
    assert timed_out.attributes["error.type"] == "TimeoutError"


def test_client_timeouts_are_task_timeouts(cap: Captured) -> None:
    """openai.APITimeoutError is no TimeoutError subclass; it is a timeout all the same."""
    exc = openai.APITimeoutError(httpx.Request("POST", "http://x"))
    with pytest.raises(openai.APITimeoutError), atalaia.track_task():
        raise exc
    (span,) = cap.spans()
    assert span.attributes["atalaia.task.outcome"] == "timeout"


def test_task_outcome_settable_and_invalid_value_ignored(cap: Captured, caplog) -> None:
    with atalaia.track_task() as t:
        t.outcome = "timeout"
    with atalaia.track_task() as t:
        t.outcome = "exploded"  # not a catalogue value: warned about, not recorded
    assert "exploded" in caplog.text
    assert [s.attributes["atalaia.task.outcome"] for s in cap.spans()] == ["timeout", "success"]
    with atalaia.track_task() as t:
        t.set_error("validation")
    assert cap.spans()[-1].attributes["atalaia.task.outcome"] == "failure"
    assert cap.spans()[-1].attributes["error.type"] == "validation"


def test_decorators_sync_and_async_make_one_span_per_call(cap: Captured) -> None:
    @atalaia.track_task("sync-job")
    def job(x: int) -> int:
        return x * 2

    @atalaia.track_task("async-job")
    async def ajob(x: int) -> int:
        await asyncio.sleep(0.01)
        assert atalaia.current_task() is not None
        return x + 1

    assert job.__name__ == "job"
    assert [job(1), job(2)] == [2, 4]

    async def both() -> list[int]:
        return await asyncio.gather(ajob(1), ajob(2), ajob(3))

    assert asyncio.run(both()) == [2, 3, 4]
    spans = cap.spans()
    assert [s.attributes["atalaia.task.kind"] for s in spans].count("async-job") == 3
    # Concurrent tasks are separate roots, not nested in one another.
    assert all(s.parent is None for s in spans)
    assert len({s.context.trace_id for s in spans}) == 5


def test_async_context_manager_nests_llm_and_tool_spans(cap: Captured) -> None:
    async def work() -> None:
        async with atalaia.track_task("t", department="ops", agent="sigma"):
            async with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
                call.record_usage(10, 5)
            async with atalaia.track_tool("search"):
                pass

    asyncio.run(work())
    chat = cap.spans("chat gpt-4o")[0]
    tool = cap.spans("execute_tool search")[0]
    task = cap.spans("invoke_agent sigma")[0]
    assert chat.parent.span_id == task.context.span_id
    assert tool.parent.span_id == task.context.span_id
    # The LLM call inherits department and the explicit agent from its task.
    assert chat.attributes["atalaia.department"] == "ops"
    assert chat.attributes["gen_ai.agent.name"] == "sigma"
    assert chat.attributes["atalaia.llm.cost.usd"] > 0


def test_task_continues_a_remote_trace_from_carrier(cap: Captured) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    carrier = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    with atalaia.track_task(carrier=carrier):
        headers = atalaia.propagation_headers()
    (span,) = cap.spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.kind is SpanKind.SERVER
    assert headers["traceparent"].split("-")[1] == trace_id


def test_carrier_is_ignored_under_an_active_span(cap: Captured) -> None:
    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with (
        cap.telemetry.tracer.start_as_current_span("POST /tasks") as server,
        atalaia.track_task(carrier=carrier),
    ):
        pass
    task = cap.spans("invoke_agent helix")[0]
    assert task.parent.span_id == server.get_span_context().span_id
    assert task.kind is SpanKind.INTERNAL


# --- track_llm_call ------------------------------------------------------------------------------
def test_llm_call_span_and_cost(cap: Captured) -> None:
    with atalaia.track_llm_call("gpt-4o-mini", provider="openai", department="sales") as call:
        call.record_response(chat_completion(cached=1000))
    (span,) = cap.spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    a = dict(span.attributes)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.id"] == "chatcmpl-1"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1200, 300)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert "error.type" not in a
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    # gpt-4o-mini: 0.15 input, 0.075 cached input, 0.60 output USD per million tokens.
    expected = (200 * 0.15 + 1000 * 0.075 + 300 * 0.60) / 1e6
    assert a["atalaia.llm.cost.usd"] == pytest.approx(expected)
    assert call.cost_usd == pytest.approx(expected)


def rate_limited() -> openai.RateLimitError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(429, request=request, json={"error": {"message": "slow down"}})
    return openai.RateLimitError("slow down", response=response, body=None)


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (rate_limited(), "429"),
        (openai.APITimeoutError(httpx.Request("POST", "http://x")), "openai.APITimeoutError"),
        (ConnectionResetError(), "ConnectionResetError"),
    ],
)
def test_llm_call_error_type(cap: Captured, exc: Exception, error_type: str) -> None:
    with pytest.raises(type(exc)), atalaia.track_llm_call("gpt-4o", provider="openai"):
        raise exc
    (span,) = cap.spans()
    expected = error_type
    if error_type == "openai.APITimeoutError":
        expected = f"{type(exc).__module__}.APITimeoutError"  # fully qualified class name
    assert span.attributes["error.type"] == expected
    assert span.status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in span.attributes  # no usage reported, none invented


def test_unknown_model_costs_zero_with_one_warning(cap: Captured, caplog) -> None:
    for _ in range(3):
        with atalaia.track_llm_call("my-private-model", provider="vllm") as call:
            call.record_usage(100, 10)
    assert caplog.text.count("no price for model 'my-private-model'") == 1
    assert [s.attributes["atalaia.llm.cost.usd"] for s in cap.spans()] == [0, 0, 0]


def test_content_capture_is_off_by_default(cap: Captured) -> None:
    with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
        call.record_input_messages([{"role": "user", "content": "segredo"}])
        call.record_response(chat_completion())
    attrs = cap.spans()[0].attributes
    assert "gen_ai.input.messages" not in attrs
    assert "gen_ai.output.messages" not in attrs


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_content_capture_when_opted_in(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "environment":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        captured = in_memory()
    else:
        captured = in_memory(capture_content=True)
    captured.activate()
    with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
        call.record_input_messages([{"role": "user", "content": "Olá"}])
        call.record_response(chat_completion())
    captured.close()
    attrs = captured.spans()[0].attributes
    assert attrs["gen_ai.input.messages"] == (
        '[{"role": "user", "parts": [{"type": "text", "content": "Olá"}]}]'
    )
    assert attrs["gen_ai.output.messages"] == (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "Bom dia!"}], '
        '"finish_reason": "stop"}]'
    )


def test_anthropic_style_usage_counts_cache_reads_as_input(cap: Captured) -> None:
    response = {
        "model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 900},
    }
    with atalaia.track_llm_call("claude-sonnet-4-5", provider="anthropic") as call:
        call.record_response(response)
    attrs = cap.spans()[0].attributes
    assert attrs["gen_ai.usage.input_tokens"] == 1000
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 900
    assert attrs["atalaia.llm.cost.usd"] == pytest.approx((100 * 3 + 900 * 0.3 + 50 * 15) / 1e6)


# --- track_tool ----------------------------------------------------------------------------------
def test_tool_span(cap: Captured) -> None:
    with atalaia.track_tool("crm_lookup"):
        pass
    with pytest.raises(KeyError), atalaia.track_tool("crm_lookup"):
        raise KeyError("x")
    ok, failed = cap.spans()
    assert ok.name == "execute_tool crm_lookup"
    assert ok.kind is SpanKind.INTERNAL
    assert dict(ok.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "crm_lookup",
    }
    assert failed.attributes["error.type"] == "KeyError"


# --- recorders -----------------------------------------------------------------------------------
def test_recorders(cap: Captured, caplog) -> None:
    atalaia.record_retry("rate_limit")
    atalaia.record_retry("rate_limit", agent="sigma")
    atalaia.record_timeout("llm")
    atalaia.record_error("database")
    atalaia.record_integration_error("crm")
    atalaia.record_cache(True)
    atalaia.record_cache(False)
    atalaia.record_conversation("qualified")
    atalaia.record_lead()
    atalaia.record_error("ValueError: secret customer data")  # not a closed value
    m = cap.metrics()
    expected_units = {
        "atalaia.retries": "{retry}",
        "atalaia.timeouts": "{timeout}",
        "atalaia.errors": "{error}",
        "atalaia.integration.errors": "{error}",
        "atalaia.cache.requests": "{request}",
        "atalaia.conversations": "{conversation}",
        "atalaia.leads": "{lead}",
    }
    for name, unit in expected_units.items():
        assert m[name].unit == unit, name
        assert isinstance(m[name].data, Sum) and m[name].data.is_monotonic, name
    assert point(cap, "atalaia.retries", **{"atalaia.retry.reason": "rate_limit"}).value == 1
    sigma = {"atalaia.retry.reason": "rate_limit", "gen_ai.agent.name": "sigma"}
    assert point(cap, "atalaia.retries", **sigma).value == 1
    assert point(cap, "atalaia.timeouts", **{"atalaia.timeout.reason": "llm"}).value == 1
    assert point(cap, "atalaia.errors", **{"error.type": "database"}).value == 1
    assert point(cap, "atalaia.errors", **{"error.type": "other"}).value == 1
    assert "secret customer data" in caplog.text  # warned once, locally; never a label
    assert (
        point(cap, "atalaia.integration.errors", **{"atalaia.integration.name": "crm"}).value == 1
    )
    assert point(cap, "atalaia.cache.requests", **{"atalaia.cache.result": "hit"}).value == 1
    assert point(cap, "atalaia.cache.requests", **{"atalaia.cache.result": "miss"}).value == 1
    outcome = {"atalaia.conversation.outcome": "qualified"}
    assert point(cap, "atalaia.conversations", **outcome).value == 1
    assert point(cap, "atalaia.leads").value == 1


def test_heartbeat_and_db_connections(cap: Captured) -> None:
    before = time.time()
    atalaia.heartbeat()
    atalaia.heartbeat(agent="sigma")
    m = cap.metrics()["atalaia.agent.heartbeat.timestamp"]
    assert (m.unit, type(m.data)) == ("s", Gauge)
    assert before <= point(cap, "atalaia.agent.heartbeat.timestamp").value <= time.time()
    assert point(cap, "atalaia.agent.heartbeat.timestamp", **{"gen_ai.agent.name": "sigma"})

    atalaia.set_db_connections(used=3, idle=7, pool="main")
    atalaia.set_db_connections(used=5, idle=5, pool="main")
    m = cap.metrics()["db.client.connection.count"]
    assert (m.unit, type(m.data), m.data.is_monotonic) == ("{connection}", Sum, False)
    used = {"db.client.connection.state": "used", "db.client.connection.pool.name": "main"}
    idle = {"db.client.connection.state": "idle", "db.client.connection.pool.name": "main"}
    assert point(cap, "db.client.connection.count", **used).value == 5
    assert point(cap, "db.client.connection.count", **idle).value == 5


def test_process_metrics(cap: Captured) -> None:
    sum(i * i for i in range(200_000))  # burn a little CPU
    m = cap.metrics()
    cpu = m["process.cpu.time"]
    assert (cpu.unit, type(cpu.data), cpu.data.is_monotonic) == ("s", Sum, True)
    modes = {p.attributes["cpu.mode"]: p.value for p in cpu.data.data_points}
    assert set(modes) == {"user", "system"} and modes["user"] > 0
    util = m["process.cpu.utilization"]
    assert (util.unit, type(util.data)) == ("1", Gauge)
    assert 0 <= util.data.data_points[0].value <= 1
    mem = m["process.memory.usage"]
    assert (mem.unit, type(mem.data), mem.data.is_monotonic) == ("By", Sum, False)
    assert mem.data.data_points[0].value > 10_000_000


# --- never raising into agent code ---------------------------------------------------------------
def test_library_failures_do_not_reach_agent_code(cap: Captured, caplog) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter on fire")

    tel = cap.telemetry
    object.__setattr__(tel, "tracer", type("T", (), {"start_span": broken})())
    object.__setattr__(tel.instruments, "retries", type("C", (), {"add": broken})())
    with atalaia.track_task() as t:
        t.set_attribute("k", "v")
    atalaia.record_retry("timeout")
    atalaia.record_retry("timeout")
    # The wrapped code's own exception still propagates unchanged.
    with pytest.raises(ZeroDivisionError), atalaia.track_task():
        1 / 0  # noqa: B018
    assert caplog.text.count("record_retry failed") == 1
    assert caplog.text.count("track_task failed") == 1  # one warning per kind of problem


def test_decorated_before_instrument_reports_through_it() -> None:
    from atalaia import _telemetry as module

    module._current = None  # import time: instrument() has not run yet

    @atalaia.track_task("early")
    def early() -> None:
        with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
            call.record_usage(10, 10)

    captured = in_memory(agent_name="helix")
    captured.telemetry.activate()  # what instrument() does
    early()
    captured.telemetry.shutdown()
    assert [s.name for s in captured.spans()] == ["chat gpt-4o", "invoke_agent helix"]
    assert captured.spans()[0].attributes["atalaia.llm.cost.usd"] > 0


def test_helpers_work_before_instrument(caplog) -> None:
    from atalaia import _telemetry as module

    module._current = None  # as in a fresh process that never called instrument()
    with caplog.at_level(logging.WARNING):
        with atalaia.track_task() as t, atalaia.track_llm_call("m", provider="p") as c:
            c.record_usage(1, 1)
            t.outcome = "success"
        atalaia.record_retry("timeout")
        atalaia.heartbeat()
    assert "failed" not in caplog.text
    module._current = None
