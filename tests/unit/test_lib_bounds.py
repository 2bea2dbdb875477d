"""What agent code cannot make the library hold or send: long values are cut, labels take few
values, absurd token counts are refused, each kind of problem is one warning; context reaches
thread pools; streams and decorated calls report their usage."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import atalaia
from atalaia.testing import Captured, in_memory

MIB = 1024 * 1024


@pytest.fixture
def cap() -> Iterator[Captured]:
    captured = in_memory(agent_name="helix").activate()
    yield captured
    captured.close()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_huge_department_is_cut_on_spans_and_never_a_label(cap: Captured) -> None:
    department = "d" * (5 * MIB)
    with atalaia.track_task("t", department=department, task_id="x" * 200_000):
        atalaia.record_retry("timeout")
        with atalaia.track_tool("lookup"):
            pass
    for span in cap.spans():
        for value in span.attributes.values():
            assert not isinstance(value, str) or len(value) <= 4096
    for point in cap.points("atalaia.retries"):
        assert "atalaia.department" not in point.attributes


def test_label_values_are_capped_in_length_and_number(
    cap: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    atalaia.record_integration_error("i" * 10_000, agent="a" * MIB)
    for i in range(300):
        atalaia.record_integration_error(f"crm-{i}")
    points = cap.points("atalaia.integration.errors")
    names = {p.attributes["atalaia.integration.name"] for p in points}
    assert len(names) <= 201 and "other" in names
    assert all(len(v) <= 128 for p in points for v in p.attributes.values())
    other = sum(p.value for p in points if p.attributes["atalaia.integration.name"] == "other")
    assert other == 301 - 200
    text = "\n".join(warnings_of(caplog))
    assert text.count("distinct values") == 1  # one warning per kind, not per value
    assert text.count("was cut to 128") == 2  # one per label key (name, agent)


def test_absurd_token_counts_are_refused_with_one_warning(
    cap: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(50):
        with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
            call.record_usage(10**30, 5)
        assert call.cost_usd is None
    with atalaia.track_llm_call("gpt-4o", provider="openai") as call:
        call.record_usage(-3, 5)
    spans = cap.spans()
    assert all("gen_ai.usage.input_tokens" not in s.attributes for s in spans)
    assert all("atalaia.llm.cost.usd" not in s.attributes for s in spans)
    assert len([m for m in warnings_of(caplog) if "token count" in m]) == 1


def test_unknown_closed_values_warn_once_per_attribute(
    cap: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(100):
        atalaia.record_error(f"ValueError: customer {i}")
    assert len(warnings_of(caplog)) == 1


def test_context_reaches_thread_pools(cap: Captured) -> None:
    def tool(name: str) -> str | None:
        with atalaia.track_tool(name):
            task = atalaia.current_task()
            return task.department if task else None

    with atalaia.track_task("t", department="ops") as task:
        with atalaia.ContextThreadPoolExecutor(2) as pool:
            via_pool = list(pool.map(tool, ["a", "b"]))
        with ThreadPoolExecutor(1) as plain:
            carried = plain.submit(atalaia.carry_context(tool), "c").result()
            lost = plain.submit(tool, "d").result()
    assert via_pool == ["ops", "ops"] and carried == "ops"
    assert lost is None  # a plain pool starts from an empty context: that is what the helpers fix
    trace_id = task.span.get_span_context().trace_id
    by_name = {s.name: s for s in cap.spans()}
    for name in ("a", "b", "c"):
        span = by_name[f"execute_tool {name}"]
        assert span.context.trace_id == trace_id
        assert span.attributes["atalaia.department"] == "ops"
    assert by_name["execute_tool d"].context.trace_id != trace_id


def openai_chunks() -> list[dict[str, object]]:
    base = {"id": "c-1", "model": "gpt-4o-mini-2024-07-18", "object": "chat.completion.chunk"}
    return [
        {**base, "choices": [{"index": 0, "delta": {"content": "Bom"}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47},
        },
    ]


def test_wrap_stream_records_the_usage_of_a_stream(cap: Captured) -> None:
    with atalaia.track_llm_call("gpt-4o-mini", provider="openai") as call:
        seen = list(call.wrap_stream(iter(openai_chunks())))
    assert len(seen) == 3
    (span,) = cap.spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 40
    assert span.attributes["gen_ai.usage.output_tokens"] == 7
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert call.cost_usd and call.cost_usd > 0


def test_wrap_stream_reads_anthropic_events_async(cap: Captured) -> None:
    import asyncio

    events = [
        {
            "type": "message_start",
            "message": {
                "id": "m-1",
                "model": "claude-sonnet-4-5-20250929",
                "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 90},
            },
        },
        {"type": "content_block_delta", "delta": {"text": "Bom"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 12},
        },
    ]

    async def source():  # type: ignore[no-untyped-def]
        for e in events:
            yield e

    async def consume() -> None:
        async with atalaia.track_llm_call("claude-sonnet-4-5", provider="anthropic") as call:
            async for _ in call.wrap_stream(source()):
                pass

    asyncio.run(consume())
    (span,) = cap.spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 90
    assert span.attributes["gen_ai.usage.output_tokens"] == 12


def test_record_response_given_a_stream_says_so_once(
    cap: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        with atalaia.track_llm_call("gpt-4o-mini", provider="openai") as call:
            call.record_response(iter(openai_chunks()))
    assert len([m for m in warnings_of(caplog) if "wrap_stream" in m]) == 1


def test_a_decorated_call_can_reach_its_handle(cap: Captured) -> None:
    @atalaia.track_llm_call("gpt-4o", provider="openai")
    def ask() -> None:
        handle = atalaia.current_llm_call()
        assert handle is not None
        handle.record_usage(100, 10)

    ask()
    (span,) = cap.spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert atalaia.current_llm_call() is None
