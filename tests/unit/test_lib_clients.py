"""One line captures every LLM call: real `openai` and `anthropic` clients against a mock provider
(tests/golden/mock_llm.py), in a process whose only telemetry code is `atalaia.instrument()`,
exporting over OTLP/HTTP to a receiver here. Each call is exactly one GenAI span (the Anthropic
SDK's own tracing, our wrapper and the instrumentation never count it twice), with the provider's
token counts and the price table's cost; the task's identity lands on the instrumentation's
spans; the client's own retries are counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atalaia.prices import PriceTable
from tests.golden import mock_llm
from tests.support.otlp_sink import OtlpSink

REPO = Path(__file__).resolve().parents[2]
CALL_OPERATIONS = {"chat", "text_completion", "generate_content", "embeddings"}

AGENT = textwrap.dedent(
    """
    import asyncio, json, logging, os
    import atalaia  # the only telemetry line below is instrument()

    atalaia.instrument("clients-agent", agent_name="helix")

    import anthropic, openai

    URL = os.environ["MOCK_URL"]
    MESSAGES = [{"role": "user", "content": "How is the fleet?"}]
    oai = openai.OpenAI(base_url=URL + "/v1", api_key="k", max_retries=0)
    aoai = openai.AsyncOpenAI(base_url=URL + "/v1", api_key="k", max_retries=0)
    ant = anthropic.Anthropic(base_url=URL, api_key="k", max_retries=0)
    aant = anthropic.AsyncAnthropic(base_url=URL, api_key="k", max_retries=0)
    A = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": MESSAGES}
    usage = {"include_usage": True}

    with atalaia.track_task("clients", department="sales", conversation_id="conv-1"):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        for _ in oai.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=usage
        ):
            pass
        ant.messages.create(**A)
        for _ in ant.messages.create(**A, stream=True):
            pass

        async def more():
            await aoai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            stream = await aoai.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=usage
            )
            async for _ in stream:
                pass
            await aant.messages.create(**A)
            async with aant.messages.stream(**A) as s:
                async for _ in s:
                    pass

        asyncio.run(more())
        # A call site someone wrapped before: the wrapper steps aside, one span stays.
        with atalaia.track_llm_call("gpt-4o-mini", provider="openai") as call:
            answer = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            call.record_response(answer)
        # The client's own retries: 429, retried once, 429 again.
        retrying = openai.OpenAI(base_url=URL + "/v1", api_key="k", max_retries=1)
        try:
            retrying.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-golden-fail": "429"}
            )
        except openai.RateLimitError:
            pass
    print(json.dumps({"delegated_cost": call.cost_usd}))
    """
)


def run_agent(sink: OtlpSink, mock_url: str, extra_env: dict[str, str] | None = None) -> str:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATALAIA_", "ANTHROPIC_"))
    }
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="60000",
        MOCK_URL=mock_url,
        **(extra_env or {}),
    )
    proc = subprocess.run(
        [sys.executable, "-c", AGENT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def run() -> Iterator[dict[str, Any]]:
    state = mock_llm.MockLLM()
    server = mock_llm.serve(state)
    try:
        with OtlpSink() as sink:
            out = run_agent(sink, f"http://127.0.0.1:{server.server_address[1]}")
            yield {
                "spans": sink.spans(),
                "calls": state.ground_truth(),
                "metrics": sink.metric_names(),
                "summary": json.loads(out.strip().splitlines()[-1]),
            }
    finally:
        server.shutdown()


def llm_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if s["attributes"].get("gen_ai.operation.name") in CALL_OPERATIONS]


def test_every_call_is_exactly_one_genai_span(run: dict[str, Any]) -> None:
    calls, spans = run["calls"], llm_spans(run["spans"])
    # 10 calls made; the retried one reached the provider twice and is one call of the agent.
    assert len(calls) == 11
    assert len(spans) == 10, [s["name"] for s in spans]
    providers = sorted(s["attributes"]["gen_ai.provider.name"] for s in spans)
    assert providers == ["anthropic"] * 4 + ["openai"] * 6
    # No span from the Anthropic SDK's own tracing (ANTHROPIC_OPEN_TELEMETRY=false by instrument()).
    assert not [s for s in run["spans"] if s["name"].startswith("anthropic.")]
    # The wrapper that stepped aside is an ordinary span now, parent of the instrumented one.
    (wrapper,) = [s for s in run["spans"] if s["name"] == "atalaia.llm_call gpt-4o-mini"]
    assert "gen_ai.operation.name" not in wrapper["attributes"]
    assert any(s["parent_span_id"] == wrapper["span_id"] for s in spans)


def test_tokens_are_the_providers(run: dict[str, Any]) -> None:
    ok = [c for c in run["calls"] if c["status"] == 200]
    spans = [s for s in llm_spans(run["spans"]) if "error.type" not in s["attributes"]]
    sent = sorted((c["usage"]["input"], c["usage"]["output"]) for c in ok)
    got = sorted(
        (
            s["attributes"]["gen_ai.usage.input_tokens"],
            s["attributes"]["gen_ai.usage.output_tokens"],
        )
        for s in spans
    )
    assert got == sent
    assert len([c for c in ok if c["stream"]]) == 4  # streams included, sync and async


def expected_cost(attrs: dict[str, Any]) -> float:
    """By hand, from the shipped table's per-million prices (docs/cost.md's formula)."""
    price = PriceTable.defaults().lookup(attrs["gen_ai.request.model"])
    assert price is not None
    inp, out = attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]
    cached = attrs.get("gen_ai.usage.cache_read.input_tokens", 0)
    written = attrs.get(
        "gen_ai.usage.cache_creation.input_tokens",
        attrs.get("gen_ai.usage.cache_write.input_tokens", 0),
    )
    usd = (inp - cached - written) * price.input + cached * price.cached_input
    usd += written * price.cache_write_price + out * price.output
    return usd / 1e6


def test_cost_is_on_every_priced_span(run: dict[str, Any]) -> None:
    spans = [s for s in llm_spans(run["spans"]) if "error.type" not in s["attributes"]]
    for span in spans:
        attrs = span["attributes"]
        assert attrs["atalaia.llm.cost.usd"] == pytest.approx(expected_cost(attrs)), attrs
        assert attrs["atalaia.llm.cost.usd"] > 0
    # The wrapper still hands the caller the cost of the call it wrapped.
    assert run["summary"]["delegated_cost"] > 0


def test_the_tasks_identity_is_on_the_instrumentations_spans(run: dict[str, Any]) -> None:
    (task,) = [s for s in run["spans"] if s["name"] == "invoke_agent helix"]
    for span in llm_spans(run["spans"]):
        attrs = span["attributes"]
        assert span["trace_id"] == task["trace_id"]
        assert attrs["gen_ai.agent.name"] == "helix"
        assert attrs["atalaia.department"] == "sales"
        assert attrs["gen_ai.conversation.id"] == "conv-1"


def test_client_retries_are_counted(run: dict[str, Any]) -> None:
    (failed,) = [s for s in llm_spans(run["spans"]) if "error.type" in s["attributes"]]
    retries = [e for e in failed["events"] if e["name"] == "retry"]
    assert len(retries) == 1
    assert retries[0]["attributes"]["atalaia.retry.reason"] == "rate_limit"
    assert retries[0]["attributes"]["http.response.status_code"] == 429
    assert "atalaia.retries" in run["metrics"]


def test_no_duplicate_sdk_metrics(run: dict[str, Any]) -> None:
    """The instrumentations get a no-op meter provider: the collector derives these from spans."""
    assert not {n for n in run["metrics"] if n.startswith("gen_ai.")}


def test_an_explicit_anthropic_tracing_setting_is_respected_and_warned_about() -> None:
    state = mock_llm.MockLLM()
    server = mock_llm.serve(state)
    try:
        with OtlpSink() as sink:
            proc_env = {"ANTHROPIC_OPEN_TELEMETRY": "true"}
            out = run_agent(sink, f"http://127.0.0.1:{server.server_address[1]}", proc_env)
            spans = sink.spans()
    finally:
        server.shutdown()
    own = [s for s in spans if s["name"].startswith("anthropic.")]
    assert len(own) == 4, "the user asked for the Anthropic SDK's own spans"
    assert out.count("every Anthropic call is traced twice") == 1  # one warning, as a log line
