"""Reading LLM responses and shaping GenAI semconv values (error.type, messages)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def qualified_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def error_type_of(exc: BaseException) -> str:
    """`error.type` for an exception: its HTTP status code when it carries one (an OpenAI
    ``RateLimitError`` is ``"429"``), else its fully qualified class name."""
    for holder in (exc, getattr(exc, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int) and not isinstance(code, bool):
            return str(code)
    return qualified_name(type(exc))


def _get(obj: Any, key: str) -> Any:
    """obj.key or obj[key]: SDK response objects and plain dicts (parsed JSON) alike."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


def usage_of(response: Any) -> Usage | None:
    """Token usage from an OpenAI ChatCompletion (``usage.prompt_tokens``,
    ``completion_tokens``, ``prompt_tokens_details.cached_tokens``), an OpenAI Responses /
    Anthropic-style usage (``input_tokens``, ``output_tokens``, cache reads), or their dict form."""
    usage = _get(response, "usage")
    if usage is None:
        return None
    prompt = _int(_get(usage, "prompt_tokens"))
    if prompt is not None:  # OpenAI chat completions: prompt_tokens already includes cached ones
        details = _get(usage, "prompt_tokens_details")
        return Usage(
            input_tokens=prompt,
            output_tokens=_int(_get(usage, "completion_tokens")) or 0,
            cached_tokens=_int(_get(details, "cached_tokens")) or 0,
        )
    inp = _int(_get(usage, "input_tokens"))
    if inp is None:
        return None
    details = _get(usage, "input_tokens_details")
    cached = _int(_get(details, "cached_tokens"))  # OpenAI Responses API: included in input
    if cached is None:
        # Anthropic reports cache reads and writes apart from input_tokens; semconv's
        # gen_ai.usage.input_tokens counts all of them.
        cached = _int(_get(usage, "cache_read_input_tokens")) or 0
        inp += cached + (_int(_get(usage, "cache_creation_input_tokens")) or 0)
    return Usage(inp, _int(_get(usage, "output_tokens")) or 0, cached)


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, Iterable) else [content]:
        kind = _get(part, "type")
        text = _get(part, "text")
        if kind == "text" or text is not None:
            parts.append({"type": "text", "content": text})
        else:
            parts.append({"type": str(kind or "unknown")})  # images, audio: type only, no payload
    return parts


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in calls or []:
        function = _get(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": _get(call, "id"),
                "name": _get(function, "name"),
                "arguments": _get(function, "arguments"),
            }
        )
    return parts


def input_messages(messages: Iterable[Any]) -> str:
    """OpenAI-style chat messages as the semconv `gen_ai.input.messages` JSON."""
    out = []
    for message in messages:
        role = _get(message, "role") or "user"
        if role == "tool":
            parts: list[dict[str, Any]] = [
                {
                    "type": "tool_call_response",
                    "id": _get(message, "tool_call_id"),
                    "response": _get(message, "content"),
                }
            ]
        else:
            parts = _parts(_get(message, "content")) + _tool_calls(_get(message, "tool_calls"))
        out.append({"role": role, "parts": parts})
    return json.dumps(out, ensure_ascii=False, default=str)


def output_messages(response: Any) -> str | None:
    """The choices of an OpenAI ChatCompletion as the semconv `gen_ai.output.messages` JSON."""
    choices = _get(response, "choices")
    if not choices:
        return None
    out = []
    for choice in choices:
        message = _get(choice, "message")
        parts = _parts(_get(message, "content")) + _tool_calls(_get(message, "tool_calls"))
        out.append(
            {
                "role": _get(message, "role") or "assistant",
                "parts": parts,
                "finish_reason": _get(choice, "finish_reason") or "stop",
            }
        )
    return json.dumps(out, ensure_ascii=False, default=str)


def response_fields(response: Any) -> tuple[str | None, str | None, list[str]]:
    """(response model, response id, finish reasons)."""
    model = _get(response, "model")
    rid = _get(response, "id")
    reasons = [str(r) for c in (_get(response, "choices") or []) if (r := _get(c, "finish_reason"))]
    return (
        model if isinstance(model, str) else None,
        rid if isinstance(rid, str) else None,
        reasons,
    )


def is_stream(response: Any) -> bool:
    """A streamed response (an iterator of chunks), not a response object: pydantic models and
    dicts are iterable but are not iterators."""
    return hasattr(response, "__next__") or hasattr(response, "__anext__")


class StreamUsage:
    """Accumulates what the chunks of a stream say about the call: OpenAI chat completion chunks
    (the last one has ``usage`` when ``stream_options={"include_usage": True}``), OpenAI
    Responses events (``response.completed``) and Anthropic message events (``message_start``
    has the input usage, ``message_delta`` the output tokens so far)."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.usage: Usage | None = None
        self._anthropic_input: Usage | None = None

    def add(self, chunk: Any) -> None:
        kind = _get(chunk, "type")
        if kind == "message_start":
            message = _get(chunk, "message")
            self._take_ids(message)
            self._anthropic_input = usage_of(message)
            self.usage = self._anthropic_input
            return
        if kind == "message_delta":
            out = _int(_get(_get(chunk, "usage"), "output_tokens"))
            base = self._anthropic_input or Usage(0, 0, 0)
            if out is not None:
                self.usage = Usage(base.input_tokens, out, base.cached_tokens)
            reason = _get(_get(chunk, "delta"), "stop_reason")
            if reason:
                self.finish_reasons = [str(reason)]
            return
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            response = _get(chunk, "response")
            self._take_ids(response)
            self.usage = usage_of(response) or self.usage
            return
        self._take_ids(chunk)
        for choice in _get(chunk, "choices") or []:
            reason = _get(choice, "finish_reason")
            if reason:
                self.finish_reasons.append(str(reason))
        usage = usage_of(chunk)
        if usage is not None:
            self.usage = usage

    def _take_ids(self, obj: Any) -> None:
        model, rid = _get(obj, "model"), _get(obj, "id")
        if isinstance(model, str):
            self.model = model
        if isinstance(rid, str):
            self.response_id = rid
