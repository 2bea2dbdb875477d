"""A mock LLM that speaks the OpenAI chat-completions protocol over real HTTP.

It exists because no real LLM is reachable here: the official `openai` client talks to it exactly as
it would to api.openai.com. Each model has a latency and error profile; faults (a slow model, an
error rate, 429 rate limits) are set at runtime through `/admin/faults`. Given a seed, the sequence
of outcomes per model is deterministic: the n-th request to a model always draws the same numbers.

    python -m demo_agents.mock_llm --port 8020 --seed 42
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import random
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from demo_agents.fleet_config import BIND_HOST, MOCK_LLM_PORT


@dataclass(frozen=True)
class ModelProfile:
    """How a model behaves when nothing is wrong."""

    response_model: str
    first_token_s: float  # time to first token
    per_token_s: float  # time per output token
    base_error_rate: float  # 5xx share of requests
    typical_output_tokens: int


PROFILES: dict[str, ModelProfile] = {
    "gpt-4o-mini": ModelProfile("gpt-4o-mini-2024-07-18", 0.15, 0.002, 0.002, 160),
    "gpt-4o": ModelProfile("gpt-4o-2024-08-06", 0.30, 0.004, 0.004, 240),
    "claude-sonnet-4-5": ModelProfile("claude-sonnet-4-5-20250929", 0.35, 0.004, 0.005, 260),
    "llama-3.1-8b-instant": ModelProfile("llama-3.1-8b-instant", 0.08, 0.001, 0.01, 200),
}

_WORD_LIST = """agent fleet task plan route result metric trace budget queue chunk merge
signal latency token model tool cache lead report finding summary review deploy incident shift"""
WORDS = tuple(_WORD_LIST.split())


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # the OpenAI API accepts many more fields
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False


class Faults(BaseModel):
    """Runtime faults. Rates are shares of requests (0-1); `models` limits the error faults to
    some models (empty: all)."""

    model_config = ConfigDict(extra="forbid")
    slow_models: dict[str, Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=dict, description="model -> latency multiplier"
    )
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    rate_limit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_after_s: int = Field(default=1, ge=0, le=60)
    models: list[str] = Field(default_factory=list)


def count_tokens(text: str) -> int:
    """About four characters per token, like the tokenizers of the models we pretend to be."""
    return max(1, math.ceil(len(text) / 4))


def message_text(message: Message) -> str:
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):
        return " ".join(str(part.get("text", "")) for part in message.content)
    return ""


def openai_error(status: int, message: str, kind: str, code: str | None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class MockLLM:
    """State of one server: the seed, per-model request counters, faults and a prefix cache."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.faults = Faults()
        self.requests: dict[str, int] = {}
        self.prefix_cache: OrderedDict[str, None] = OrderedDict()
        self.answered: dict[str, dict[int, int]] = {}  # model -> HTTP status -> count

    def count(self, model: str, status: int) -> None:
        by_status = self.answered.setdefault(model, {})
        by_status[status] = by_status.get(status, 0) + 1

    def rng(self, model: str) -> random.Random:
        n = self.requests.get(model, 0)
        self.requests[model] = n + 1
        return random.Random(f"{self.seed}:{model}:{n}")

    def cached_tokens(self, model: str, messages: list[Message]) -> int:
        """Prompt caching: the system/developer prefix is cached after its first use."""
        prefix = "\n".join(message_text(m) for m in messages if m.role in ("system", "developer"))
        if not prefix:
            return 0
        key = hashlib.sha256(f"{model}\n{prefix}".encode()).hexdigest()
        if key in self.prefix_cache:
            self.prefix_cache.move_to_end(key)
            return count_tokens(prefix)
        self.prefix_cache[key] = None
        if len(self.prefix_cache) > 1024:
            self.prefix_cache.popitem(last=False)
        return 0

    def faulted(self, model: str) -> bool:
        return not self.faults.models or model in self.faults.models


def create_app(seed: int = 42) -> FastAPI:
    app = FastAPI(title="Atalaia mock LLM (OpenAI chat-completions protocol)")
    state = MockLLM(seed)
    app.state.mock = state

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith("/v1/"):
            return await request_validation_exception_handler(request, exc)
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if p != "body")
        message = f"Invalid request: {param or 'body'}: {first['msg']}"
        return openai_error(400, message, "invalid_request_error", "invalid_value", param or None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "owned_by": "atalaia-mock"} for m in PROFILES]
        return {"object": "list", "data": data}

    @app.get("/admin/stats")
    async def stats() -> dict[str, dict[int, int]]:
        return state.answered

    @app.get("/admin/faults")
    async def get_faults() -> Faults:
        return state.faults

    @app.put("/admin/faults")
    async def put_faults(faults: Faults) -> Faults:
        unknown = sorted((set(faults.slow_models) | set(faults.models)) - set(PROFILES))
        if unknown:
            known = ", ".join(PROFILES)
            return JSONResponse(  # type: ignore[return-value]
                {"detail": f"unknown model(s) {', '.join(unknown)}; known: {known}"}, 422
            )
        state.faults = faults
        return faults

    @app.delete("/admin/faults")
    async def clear_faults() -> Faults:
        state.faults = Faults()
        return state.faults

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(req: ChatRequest) -> JSONResponse | dict[str, Any]:
        profile = PROFILES.get(req.model)
        if profile is None:
            return openai_error(
                404,
                f"The model `{req.model}` does not exist; available: {', '.join(PROFILES)}",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
        if req.stream:
            return openai_error(
                400, "stream=true is not supported by this mock", "invalid_request_error",
                "unsupported_value", "stream",
            )  # fmt: skip
        rng = state.rng(req.model)
        faults = state.faults
        hit_fault = state.faulted(req.model)
        roll = rng.random()
        if hit_fault and roll < faults.rate_limit_rate:
            await asyncio.sleep(0.02)
            state.count(req.model, 429)
            return openai_error(
                429,
                f"Rate limit reached for {req.model}: requests per min. "
                f"Please try again in {faults.retry_after_s}s.",
                "requests",
                "rate_limit_exceeded",
                headers={
                    "retry-after": str(faults.retry_after_s),
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                },
            )
        error_rate = profile.base_error_rate + (faults.error_rate if hit_fault else 0.0)
        if rng.random() < error_rate:
            await asyncio.sleep(profile.first_token_s)
            if rng.random() < 0.5:
                state.count(req.model, 503)
                return openai_error(
                    503, "The server is overloaded, please retry later.",
                    "server_error", "service_unavailable",
                )  # fmt: skip
            state.count(req.model, 500)
            return openai_error(
                500, "The server had an error while processing your request.",
                "server_error", None,
            )  # fmt: skip

        prompt_tokens = sum(count_tokens(message_text(m)) + 4 for m in req.messages) + 3
        cached = min(state.cached_tokens(req.model, req.messages), prompt_tokens)
        limit = req.max_completion_tokens or req.max_tokens
        # Answers tend to fill the room they are given: a smaller max_tokens is a faster call.
        typical = profile.typical_output_tokens if limit is None else 0.85 * limit
        wanted = max(1, int(rng.gauss(typical, typical / 8)))
        completion_tokens = min(wanted, limit) if limit else wanted
        finish_reason = "length" if limit is not None and wanted > limit else "stop"
        slowdown = faults.slow_models.get(req.model, 1.0)
        latency = (profile.first_token_s + completion_tokens * profile.per_token_s) * slowdown
        latency *= rng.uniform(0.8, 1.25)
        await asyncio.sleep(latency)
        content = " ".join(rng.choice(WORDS) for _ in range(completion_tokens))
        state.count(req.model, 200)
        return {
            "id": f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128)).hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": profile.response_model,
            "system_fingerprint": "fp_atalaia_mock",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
        }

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=BIND_HOST)
    parser.add_argument("--port", type=int, default=MOCK_LLM_PORT)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.seed), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
