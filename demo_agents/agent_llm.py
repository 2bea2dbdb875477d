"""An agent's LLM calls: the official `openai` client against the mock LLM, inside
`atalaia.track_llm_call`, with retries, timeouts and errors recorded by reason."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import openai

import atalaia

log = logging.getLogger("demo_agents.agent.llm")

MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_S = 5.0


class LLMFailed(Exception):
    """Every attempt failed; `reason` is the last retry reason."""

    def __init__(self, reason: str, last: BaseException) -> None:
        super().__init__(f"LLM call failed after {MAX_ATTEMPTS} attempts ({reason}): {last}")
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    content: str
    cost_usd: float
    input_tokens: int
    output_tokens: int


def retry_after(exc: openai.APIStatusError) -> float:
    value = exc.response.headers.get("retry-after")
    try:
        return min(float(value), MAX_RETRY_AFTER_S) if value is not None else 1.0
    except ValueError:
        return 1.0


class LLM:
    """One agent's model, called with retries. `max_retries=0` on the client: the retries are
    ours, so that each one is counted by reason and shows as its own `chat` span."""

    def __init__(self, base_url: str, model: str, provider: str, timeout_s: float = 30.0) -> None:
        self.model = model
        self.provider = provider
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key="demo-key-not-secret", max_retries=0, timeout=timeout_s
        )

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int,
        model: str | None = None,
        provider: str | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        model = model or self.model
        provider = provider or self.provider
        last: BaseException | None = None
        reason = "llm_error"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            wait = 0.2 * 2**attempt
            try:
                with atalaia.track_llm_call(model, provider=provider) as call:
                    response = await self.client.chat.completions.create(
                        model=model,
                        messages=messages,  # type: ignore[arg-type]
                        max_tokens=max_tokens,
                        timeout=timeout_s,
                    )
                    call.record_response(response)
                content = response.choices[0].message.content or ""
                usage = response.usage
                return Answer(
                    content,
                    call.cost_usd or 0.0,
                    usage.prompt_tokens if usage else 0,
                    usage.completion_tokens if usage else 0,
                )
            except openai.RateLimitError as exc:
                last, reason = exc, "rate_limit"
                wait = retry_after(exc)
                atalaia.record_error("api")
            except openai.APITimeoutError as exc:
                last, reason = exc, "timeout"
                atalaia.record_timeout("llm")
            except (openai.InternalServerError, openai.APIConnectionError) as exc:
                last, reason = exc, "llm_error"
                atalaia.record_error("llm")
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying cannot help
                atalaia.record_error("llm")
                raise LLMFailed("llm_error", exc) from exc
            if attempt < MAX_ATTEMPTS:
                atalaia.record_retry(reason)
                log.warning(
                    "LLM %s attempt %d failed (%s); retrying in %.1fs",
                    model,
                    attempt,
                    reason,
                    wait,
                    extra={"error.type": reason},
                )
                await asyncio.sleep(wait)
        assert last is not None
        raise LLMFailed(reason, last)

    async def close(self) -> None:
        await self.client.close()
