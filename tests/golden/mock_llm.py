"""A mock LLM provider for the golden recordings: the OpenAI (chat completions, embeddings) and
Anthropic (messages) HTTP protocols, streaming and not, with fixed token counts per call and
errors on request.

Standard library only. Every answer is deterministic, and every call is written down with what
it returned (`MockLLM.calls`): the usage a canonical span must show, in the GenAI conventions'
terms (`input` includes cached tokens, `output` includes reasoning tokens). That list is the
ground truth the golden tests compare normalised spans and derived metrics with.

A request fails when it carries `x-golden-fail: 429` or `x-golden-fail: 500` (the agent passes it
as an extra header): the error body each provider sends for a rate limit or a server error.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Usage:
    input: int  # all input tokens, cached ones included
    output: int  # all output tokens, reasoning ones included
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0


# (provider, operation, stream) -> the usage the mock reports. Distinct numbers per call, so a
# value on a span or a metric says which call it came from.
USAGE: dict[tuple[str, str, bool], Usage] = {
    ("openai", "chat", False): Usage(input=120, output=17, cache_read=64, reasoning=5),
    ("openai", "chat", True): Usage(input=96, output=23, cache_read=32, reasoning=3),
    ("openai", "embeddings", False): Usage(input=8, output=0),
    # Anthropic reports input_tokens without the cached ones; the canonical input adds them.
    ("anthropic", "chat", False): Usage(input=110, output=19, cache_read=64, cache_creation=16),
    ("anthropic", "chat", True): Usage(input=69, output=25, cache_read=48, cache_creation=0),
}

RESPONSE_MODEL = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "text-embedding-3-small": "text-embedding-3-small",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
}

ANSWER = ["The", " fleet", " is", " healthy", "."]


@dataclass
class Call:
    provider: str
    operation: str
    stream: bool
    request_model: str
    response_model: str | None
    status: int
    usage: Usage | None


@dataclass
class MockLLM:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def ground_truth(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(c) for c in self.calls]


def _sse(handler: BaseHTTPRequestHandler, events: list[tuple[str | None, Any]]) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.end_headers()
    for name, data in events:
        chunk = (f"event: {name}\n" if name else "") + "data: "
        chunk += data if isinstance(data, str) else json.dumps(data)
        handler.wfile.write((chunk + "\n\n").encode())
        handler.wfile.flush()
    handler.close_connection = True


def _openai_usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _anthropic_usage(u: Usage, output: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": u.input - u.cache_read - u.cache_creation,
        "output_tokens": u.output if output is None else output,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation_input_tokens": u.cache_creation,
    }


OPENAI_ERRORS = {
    429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
}
ANTHROPIC_ERRORS = {
    429: ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
}


def make_handler(state: MockLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            req = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.split("?")[0].rstrip("/")
            fail = int(self.headers.get("x-golden-fail") or 0)
            if path.endswith("/chat/completions"):
                self.openai_chat(req, fail)
            elif path.endswith("/embeddings"):
                self.openai_embeddings(req, fail)
            elif path.endswith("/messages"):
                self.anthropic_messages(req, fail)
            else:
                self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

        # -- OpenAI -------------------------------------------------------------------------
        def openai_error(self, req: dict[str, Any], operation: str, status: int) -> None:
            stream = bool(req.get("stream"))
            state.record(Call("openai", operation, stream, req["model"], None, status, None))
            message, kind, code = OPENAI_ERRORS[status]
            headers = {"retry-after": "1", "x-request-id": f"req_golden_{status}"}
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
            self._json(status, body, headers)

        def openai_chat(self, req: dict[str, Any], fail: int) -> None:
            if fail:
                return self.openai_error(req, "chat", fail)
            stream = bool(req.get("stream"))
            usage = USAGE[("openai", "chat", stream)]
            model = RESPONSE_MODEL.get(req["model"], req["model"])
            state.record(Call("openai", "chat", stream, req["model"], model, 200, usage))
            cid, created = f"chatcmpl-golden{len(state.calls)}", 1767225600
            if not stream:
                self._json(
                    200,
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_golden",
                        "service_tier": "default",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "".join(ANSWER)},
                                "logprobs": None,
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": _openai_usage(usage),
                    },
                )
                return None
            base = {"id": cid, "object": "chat.completion.chunk", "created": created}
            base |= {"model": model, "system_fingerprint": "fp_golden"}
            events: list[tuple[str | None, Any]] = []
            for i, word in enumerate(ANSWER):
                delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                events.append((None, {**base, "choices": [choice]}))
            events.append(
                (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            )
            if (req.get("stream_options") or {}).get("include_usage"):
                events.append((None, {**base, "choices": [], "usage": _openai_usage(usage)}))
            else:  # nothing reports usage: the ground truth says so
                state.calls[-1].usage = None
            events.append((None, "[DONE]"))
            _sse(self, events)
            return None

        def openai_embeddings(self, req: dict[str, Any], fail: int) -> None:
            if fail:
                return self.openai_error(req, "embeddings", fail)
            usage = USAGE[("openai", "embeddings", False)]
            model = RESPONSE_MODEL.get(req["model"], req["model"])
            state.record(Call("openai", "embeddings", False, req["model"], model, 200, usage))
            vector = [0.25, -0.5, 0.125, 1.0]
            embedding: Any = vector
            if req.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack("<4f", *vector)).decode()
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
                    "model": model,
                    "usage": {"prompt_tokens": usage.input, "total_tokens": usage.input},
                },
            )
            return None

        # -- Anthropic ----------------------------------------------------------------------
        def anthropic_messages(self, req: dict[str, Any], fail: int) -> None:
            stream = bool(req.get("stream"))
            if fail:
                state.record(Call("anthropic", "chat", stream, req["model"], None, fail, None))
                kind, message = ANTHROPIC_ERRORS[fail]
                body = {"type": "error", "error": {"type": kind, "message": message}}
                headers = {"retry-after": "1", "request-id": f"req_golden_{fail}"}
                self._json(fail, body, headers)
                return None
            usage = USAGE[("anthropic", "chat", stream)]
            model = RESPONSE_MODEL.get(req["model"], req["model"])
            state.record(Call("anthropic", "chat", stream, req["model"], model, 200, usage))
            mid = f"msg_golden{len(state.calls)}"
            message = {"id": mid, "type": "message", "role": "assistant", "model": model}
            if not stream:
                content = [{"type": "text", "text": "".join(ANSWER)}]
                body = {**message, "content": content, "stop_reason": "end_turn"}
                self._json(200, body | {"stop_sequence": None, "usage": _anthropic_usage(usage)})
                return None
            start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
            start["usage"] = _anthropic_usage(usage, output=1)
            events: list[tuple[str | None, Any]] = [
                ("message_start", {"type": "message_start", "message": start}),
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
            ]
            for word in ANSWER:
                delta = {"type": "text_delta", "text": word}
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                )
            events += [
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": usage.output},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
            _sse(self, events)
            return None

    return Handler


def serve(state: MockLLM, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start the mock on a free port (port 0) in a daemon thread; returns the server."""
    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
