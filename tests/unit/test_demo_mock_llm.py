"""The mock LLM speaks the OpenAI protocol: checked with the official `openai` client over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from demo_agents.http_server import serve_in_thread
from demo_agents.mock_llm import create_app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_in_thread(create_app(seed=7)) as url:
        yield url


@pytest.fixture(autouse=True)
def no_faults(base_url: str) -> Iterator[None]:
    httpx.delete(f"{base_url}/admin/faults").raise_for_status()
    yield
    httpx.delete(f"{base_url}/admin/faults").raise_for_status()


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=10)


def set_faults(base_url: str, **faults: object) -> None:
    httpx.put(f"{base_url}/admin/faults", json=faults).raise_for_status()


def test_completion_reports_usage_with_cached_tokens_on_repeated_system_prompt(
    base_url: str,
) -> None:
    system = "You are Helix, a careful engineering agent. " * 40
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": system},
        {"role": "user", "content": "plan it"},
    ]
    llm = client(base_url)
    first = llm.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)
    second = llm.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)

    assert first.object == "chat.completion"
    assert first.model.startswith("gpt-4o-mini")
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens > len(system) // 5
    assert 1 <= first.usage.completion_tokens <= 50
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and 0 < cached < second.usage.prompt_tokens
    content = first.choices[0].message.content or ""
    assert len(content.split()) == first.usage.completion_tokens


def test_same_seed_gives_same_answers() -> None:
    answers = []
    for _ in range(2):
        with serve_in_thread(create_app(seed=3)) as url:
            llm = client(url)
            answers.append(
                [
                    llm.chat.completions.create(
                        model="llama-3.1-8b-instant", messages=[{"role": "user", "content": "hi"}]
                    )
                    .choices[0]
                    .message.content
                    for _ in range(3)
                ]
            )
    assert answers[0] == answers[1]
    assert len(set(answers[0])) == 3


def test_rate_limit_fault_returns_429_with_retry_after(base_url: str) -> None:
    set_faults(base_url, rate_limit_rate=1.0, retry_after_s=2)
    with pytest.raises(openai.RateLimitError) as info:
        client(base_url).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.code == "rate_limit_exceeded"


def test_error_fault_gives_server_errors_only_for_the_chosen_model(base_url: str) -> None:
    set_faults(base_url, error_rate=1.0, models=["claude-sonnet-4-5"])
    llm = client(base_url)
    statuses = set()
    for _ in range(8):
        with pytest.raises(openai.InternalServerError) as info:
            llm.chat.completions.create(
                model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
            )
        statuses.add(info.value.status_code)
        assert info.value.body is not None
    assert statuses <= {500, 503} and statuses
    ok = llm.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert ok.usage is not None


def test_slow_model_fault_slows_only_that_model(base_url: str) -> None:
    llm = client(base_url)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    baseline = llm.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, max_tokens=20
    ).elapsed.total_seconds()
    set_faults(base_url, slow_models={"gpt-4o": 10.0})
    slow = llm.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, max_tokens=20
    ).elapsed.total_seconds()
    other = llm.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, max_tokens=20
    ).elapsed.total_seconds()
    assert slow > 4 * baseline
    assert other < slow / 3


def test_unknown_model_is_404_model_not_found(base_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(base_url).chat.completions.create(
            model="gpt-17", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.code == "model_not_found"
    assert "gpt-17" in str(info.value)


def test_malformed_request_is_400_naming_the_field(base_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(base_url).chat.completions.create(model="gpt-4o", messages=[])
    assert info.value.param == "messages"
    bad_role = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]},
    )
    assert bad_role.status_code == 400
    assert "messages.0.role" in bad_role.json()["error"]["message"]


def test_fault_admin_rejects_unknown_models_and_bad_rates(base_url: str) -> None:
    unknown = httpx.put(f"{base_url}/admin/faults", json={"slow_models": {"gpt-17": 3}})
    assert unknown.status_code == 422 and "gpt-17" in unknown.text
    bad_rate = httpx.put(f"{base_url}/admin/faults", json={"error_rate": 3})
    assert bad_rate.status_code == 422 and "error_rate" in bad_rate.text
    typo = httpx.put(f"{base_url}/admin/faults", json={"eror_rate": 0.5})
    assert typo.status_code == 422 and "eror_rate" in typo.text
