"""Every recorded emitter, replayed through the real collector, comes out canonical and counted.

tests/golden/<emitter>/ holds what a real GenAI instrumentation package sent (recorded from its
PyPI release by tests/golden/record.py) and the mock provider's own record of each call: the
ground truth. Here the pinned collector runs the repo's otel-collector/normalise.yaml and
derived.yaml (included by path, as config.yaml includes them) between an OTLP/HTTP receiver and
file exporters; every fixture is posted to it, then the spans and the derived metrics it wrote
are checked field by field against the ground truth:

- each LLM call is exactly one span with the canonical operation, provider, request and response
  model, token counts equal to what the mock returned, and on the 429 and 500 calls the
  normalised error.type (`rate_limit`, `server_error`);
- atalaia.genai.calls / atalaia.genai.tokens / atalaia.agent.tasks / atalaia.tool.calls have
  the labels and values that follow from those calls;
- nothing canonical the emitter set was overwritten.

What an emitter does not send (cache tokens, tokens of a stream) or sends wrong cannot be made
up in the collector: GAPS lists each such case with its reason, and docs/library.md ("Bring your
own instrumentation") tells users. A gap that closes (a newer release sends the value) fails the
test too, so the list stays true.

Spellings no recorded package sends any more (older releases) are checked with spans made here,
in SPELLINGS, through the same collector run.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tools.upstream import REPO

GOLDEN = REPO / "tests" / "golden"
EMITTERS = sorted(p.parent.name for p in GOLDEN.glob("*/expected.json"))
LLM_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")
OPERATIONS = {*LLM_OPERATIONS, "invoke_agent", "execute_tool", "create_agent", "retrieval"}
TOKENS = {  # ground-truth field -> canonical attribute
    "input": "gen_ai.usage.input_tokens",
    "output": "gen_ai.usage.output_tokens",
    "cache_read": "gen_ai.usage.cache_read.input_tokens",
    "cache_creation": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning": "gen_ai.usage.reasoning.output_tokens",
}
TOKEN_TYPE = {"gen_ai.usage.input_tokens": "input", "gen_ai.usage.output_tokens": "output"}
TOKEN_TYPE |= {
    "gen_ai.usage.cache_read.input_tokens": "cache_read",
    "gen_ai.usage.cache_creation.input_tokens": "cache_creation",
    "gen_ai.usage.reasoning.output_tokens": "reasoning",
}
ERROR_CLASS = {429: "rate_limit", 500: "server_error"}
CANONICAL_ERRORS = {"rate_limit", "timeout", "server_error", "bad_request", "auth"}
CANONICAL_ERRORS |= {"not_found", "connection", "other"}

# What an emitter leaves out or gets wrong, per call (see call_key) and field: the value its
# canonical span has instead (None: absent), and why. Fields: the TOKENS keys, "response_model",
# "error" (the normalised error.type).
# Zero cache counts where the provider reported none are not listed: a 0 is the truth.
NO_CACHE_OPENAI = "does not read OpenAI's prompt_tokens_details / completion_tokens_details"
NO_STREAM_USAGE = "the stream wrapper reads usage only from a final response, not from the chunks"
VERCEL_ERROR = "records a failed call as a plain Error, 'AI SDK operation failed': no status"
# LLM spans an emitter makes beside the one per call: (provider, operation) -> how many, and why.
# They are counted as calls too: the collector cannot tell a wrapper from the call inside it.
EXTRA_SPANS: dict[str, dict[tuple[str, str], tuple[int, str]]] = {
    "vercel-ai": {
        ("openai", "embeddings"): (1, "embed() is an embeddings span around the call's own"),
    },
}
GAPS: dict[str, dict[tuple[str, str], tuple[int | str | None, str]]] = {
    "openai-v2": {
        ("openai.chat", "cache_read"): (None, NO_CACHE_OPENAI),
        ("openai.chat", "reasoning"): (None, NO_CACHE_OPENAI),
        ("openai.chat.stream", "cache_read"): (None, NO_CACHE_OPENAI),
        ("openai.chat.stream", "reasoning"): (None, NO_CACHE_OPENAI),
    },
    "openlit": {
        ("openai.chat", "reasoning"): (None, "does not read completion_tokens_details"),
        ("openai.chat.stream", "reasoning"): (None, "does not read completion_tokens_details"),
        # A stream without usage: OpenLIT counts the tokens itself (an estimate, not the bill).
        ("openai.chat.stream-nousage", "input"): (29, "estimates tokens it was not told"),
        ("openai.chat.stream-nousage", "output"): (11, "estimates tokens it was not told"),
        ("anthropic.chat.stream", "cache_read"): (0, "drops the cache counts of message_start"),
        # ...so the corrected input is input_tokens alone.
        ("anthropic.chat.stream", "input"): (21, "drops the cache counts of message_start"),
    },
    "traceloop": {
        ("openai.chat.stream", "reasoning"): (
            None,
            "reads reasoning tokens of whole responses only",
        ),
        ("anthropic.chat.stream", "output"): (26, "adds message_start's placeholder output 1"),
    },
    "vercel-ai": {
        ("openai.chat", "reasoning"): (None, "does not record reasoning tokens"),
        ("openai.chat.stream", "reasoning"): (None, "does not record reasoning tokens"),
        ("openai.chat.429", "error"): ("other", VERCEL_ERROR),
        ("openai.chat.500", "error"): ("other", VERCEL_ERROR),
        ("anthropic.chat.429", "error"): ("other", VERCEL_ERROR),
        ("anthropic.chat.500", "error"): ("other", VERCEL_ERROR),
        # The embed() wrapper span has no response model, the call span inside it has none either.
        ("openai.embeddings", "response_model"): (None, "not recorded on embeddings"),
    },
    "agento11y": {
        ("openai.chat.stream", "input"): (None, NO_STREAM_USAGE),
        ("openai.chat.stream", "output"): (None, NO_STREAM_USAGE),
        ("openai.chat.stream", "cache_read"): (None, NO_STREAM_USAGE),
        ("openai.chat.stream", "reasoning"): (None, NO_STREAM_USAGE),
        ("openai.chat.stream", "response_model"): ("gpt-4o-mini", NO_STREAM_USAGE),
        ("openai.chat.stream-nousage", "response_model"): ("gpt-4o-mini", NO_STREAM_USAGE),
        ("anthropic.chat.stream", "input"): (None, NO_STREAM_USAGE),
        ("anthropic.chat.stream", "output"): (None, NO_STREAM_USAGE),
        ("anthropic.chat.stream", "cache_read"): (None, NO_STREAM_USAGE),
        ("anthropic.chat.stream", "cache_creation"): (None, NO_STREAM_USAGE),
        ("anthropic.chat.stream", "response_model"): ("claude-sonnet-4-5", NO_STREAM_USAGE),
    },
}


# -- the collector run ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def value(v: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as Python (intValue is a string in JSON)."""
    if not v:
        return None
    kind, raw = next(iter(v.items()))
    if kind == "intValue":
        return int(raw)
    if kind == "arrayValue":
        return [value(x) for x in raw.get("values", [])]
    return raw


def attrs(item: dict[str, Any]) -> dict[str, Any]:
    return {kv["key"]: value(kv.get("value", {})) for kv in item.get("attributes", [])}


def kinds(item: dict[str, Any]) -> dict[str, str]:
    """Attribute key -> its OTLP JSON value kind (intValue, stringValue, ...)."""
    return {kv["key"]: next(iter(kv["value"]), "") for kv in item.get("attributes", [])}


@dataclass
class Span:
    service: str
    scope: str
    raw: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def attributes(self) -> dict[str, Any]:
        return attrs(self.raw)

    @property
    def start(self) -> int:
        return int(self.raw["startTimeUnixNano"])


def spans_of(requests: list[dict[str, Any]]) -> list[Span]:
    out = []
    for request in requests:
        for rs in request.get("resourceSpans", []):
            resource = attrs(rs.get("resource", {}))
            service = resource.get("service.name", "")
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope", {}).get("name", "")
                out += [Span(service, scope, s, resource) for s in ss.get("spans", [])]
    return out


@dataclass
class Replay:
    spans: list[Span]
    # (service, metric name) -> [(data point attributes, value)], the last cumulative point of
    # each stream
    metrics: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = field(default_factory=dict)

    def of(self, service: str) -> list[Span]:
        return sorted((s for s in self.spans if s.service == service), key=lambda s: s.start)

    def series(self, service: str, name: str) -> list[tuple[dict[str, Any], float]]:
        return self.metrics.get((service, name), [])


def last_points(requests: list[dict[str, Any]]) -> dict[tuple[str, str], list[Any]]:
    streams: dict[tuple[str, str, str], tuple[int, dict[str, Any], float]] = {}
    for request in requests:
        for rm in request.get("resourceMetrics", []):
            service = attrs(rm.get("resource", {})).get("service.name", "")
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    points = (m.get("sum") or m.get("histogram") or {}).get("dataPoints", [])
                    for p in points:
                        a = attrs(p)
                        v = float(p.get("asInt", p.get("asDouble", p.get("count", 0))))
                        key = (service, m["name"], json.dumps(a, sort_keys=True))
                        t = int(p["timeUnixNano"])
                        if key not in streams or streams[key][0] <= t:
                            streams[key] = (t, a, v)
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for (service, name, _), (_, a, v) in streams.items():
        out[(service, name)].append((a, v))
    return dict(out)


def collector_config(port: int, out: Path) -> dict[str, Any]:
    """otlp -> transform/normalise -> file, and the spans -> signal_to_metrics ->
    deltatocumulative -> file: config.yaml's processing with files in place of the backends."""
    conf = REPO / "otel-collector"
    return {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}},
        "processors": {
            "transform/normalise": f"${{file:{conf / 'normalise.yaml'}}}",
            "deltatocumulative": {"max_stale": "10m"},
        },
        "connectors": {"signal_to_metrics": f"${{file:{conf / 'derived.yaml'}}}"},
        "exporters": {
            "file/traces": {"path": str(out / "traces.jsonl")},
            "file/metrics": {"path": str(out / "metrics.jsonl")},
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["transform/normalise"],
                    "exporters": ["file/traces", "signal_to_metrics"],
                },
                "metrics": {
                    "receivers": ["signal_to_metrics"],
                    "processors": ["deltatocumulative"],
                    "exporters": ["file/metrics"],
                },
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
    }


def post(port: int, body: bytes) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces",
        data=body,
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200, resp.read()


def fixtures() -> list[bytes]:
    out = []
    for emitter in EMITTERS:
        out += [ln.encode() for ln in (GOLDEN / emitter / "traces.jsonl").read_text().splitlines()]
    return out


@pytest.fixture(scope="module")
def replay(tool, tmp_path_factory: pytest.TempPathFactory) -> Replay:
    out = tmp_path_factory.mktemp("normalise")
    port = free_port()
    (out / "config.json").write_text(json.dumps(collector_config(port, out)))
    log = (out / "collector.log").open("wb")
    proc = subprocess.Popen(
        [str(tool("otelcol", "otelcol-atalaia")), f"--config={out / 'config.json'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("collector did not start:\n" + (out / "collector.log").read_text())
                time.sleep(0.2)
        for body in [*fixtures(), *(json.dumps(r).encode() for r in SPELLINGS_REQUESTS)]:
            post(port, body)
    finally:
        proc.send_signal(signal.SIGTERM)  # the file exporters flush on shutdown
        proc.wait(timeout=30)
        log.close()
    collector_log = (out / "collector.log").read_text()
    # error_mode: ignore logs a statement that failed on a record; none may fail on these.
    assert "failed to execute statement" not in collector_log, collector_log[-4000:]
    read = [
        [json.loads(ln) for ln in (out / f"{s}.jsonl").read_text().splitlines() if ln.strip()]
        for s in ("traces", "metrics")
    ]
    return Replay(spans_of(read[0]), last_points(read[1]))


# -- the golden fixtures ----------------------------------------------------------------------
def expected(emitter: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / emitter / "expected.json").read_text())
    return data


def call_key(call: dict[str, Any]) -> str:
    key = f"{call['provider']}.{call['operation']}"
    if call["stream"]:
        key += ".stream"
    if call["status"] != 200:
        key += f".{call['status']}"
    elif call["usage"] is None:
        key += "-nousage"
    return key


def canonical_truth(emitter: str, call: dict[str, Any]) -> dict[str, Any]:
    """The canonical attributes the span of `call` must have: the mock's record, with the
    emitter's GAPS applied. Absent attributes are None."""
    gaps = GAPS.get(emitter, {})
    key = call_key(call)
    truth: dict[str, Any] = {
        "gen_ai.operation.name": call["operation"],
        "gen_ai.provider.name": call["provider"],
        "gen_ai.request.model": call["request_model"],
        "gen_ai.response.model": call["response_model"],
        "error.type": ERROR_CLASS.get(call["status"]),
    }
    if (key, "response_model") in gaps:
        truth["gen_ai.response.model"] = gaps[(key, "response_model")][0]
    if (key, "error") in gaps:
        truth["error.type"] = gaps[(key, "error")][0]
    usage = call["usage"] or {}
    for name, attribute in TOKENS.items():
        reported = usage.get(name)
        # A cache or reasoning count of 0 may be sent or left out: both say "none".
        truth[attribute] = reported if reported or name in ("input", "output") else 0
        if call["operation"] == "embeddings" and name == "output":
            truth[attribute] = None
        if (key, name) in gaps:
            truth[attribute] = gaps[(key, name)][0]
    return truth


def llm_spans(replay: Replay, emitter: str) -> list[Span]:
    service = expected(emitter)["service.name"]
    return [
        s for s in replay.of(service) if s.attributes.get("gen_ai.operation.name") in LLM_OPERATIONS
    ]


def without_extra(emitter: str, spans: list[Span]) -> list[Span]:
    """The spans of the calls: EXTRA_SPANS' wrappers (those with no tokens) left out."""
    extra = {k: n for k, (n, _) in EXTRA_SPANS.get(emitter, {}).items()}
    out = []
    for span in spans:
        a = span.attributes
        key = (a.get("gen_ai.provider.name"), a.get("gen_ai.operation.name"))
        if extra.get(key) and "gen_ai.usage.input_tokens" not in a:
            extra[key] -= 1
            continue
        out.append(span)
    assert not any(extra.values()), f"{emitter}: EXTRA_SPANS not found: {extra}"
    return out


@pytest.mark.parametrize("emitter", EMITTERS)
def test_each_llm_call_is_one_canonical_span(replay: Replay, emitter: str) -> None:
    calls = expected(emitter)["calls"]
    spans = without_extra(emitter, llm_spans(replay, emitter))
    assert [s.raw["name"] for s in spans] and len(spans) == len(calls), (
        f"{emitter}: {len(calls)} LLM calls made, {len(spans)} LLM spans after normalisation:"
        f" {[s.raw['name'] for s in spans]}"
    )
    problems = []
    for span, call in zip(spans, calls, strict=True):
        got, truth = span.attributes, canonical_truth(emitter, call)
        for attribute, want in truth.items():
            have = got.get(attribute)
            if attribute in TOKEN_TYPE and want == 0 and have is None:
                continue  # "no cached tokens" sent as nothing
            if have != want:
                problems.append(
                    f"{call_key(call)} ({span.raw['name']}): {attribute} = {have!r}, want {want!r}"
                )
        for attribute in TOKEN_TYPE:
            if attribute in got and kinds(span.raw)[attribute] != "intValue":
                problems.append(f"{call_key(call)}: {attribute} is not an integer")
        if call["status"] != 200 and "atalaia.error.original_type" not in got:
            problems.append(f"{call_key(call)}: the emitter's error type was not kept")
    assert not problems, f"{emitter}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("emitter", EMITTERS)
def test_derived_llm_metrics_count_each_call_and_token(replay: Replay, emitter: str) -> None:
    exp = expected(emitter)
    service = exp["service.name"]
    want_calls: Counter[tuple[Any, ...]] = Counter()
    want_tokens: Counter[tuple[Any, ...]] = Counter()
    for call in exp["calls"]:
        truth = canonical_truth(emitter, call)
        labels = (call["provider"], call["request_model"])
        want_calls[(*labels, call["operation"], truth["error.type"])] += 1
        for attribute, token_type in TOKEN_TYPE.items():
            if truth[attribute] is not None:
                want_tokens[(*labels, token_type)] += truth[attribute]
    for (provider, operation), (n, _) in EXTRA_SPANS.get(emitter, {}).items():
        model = next(c["request_model"] for c in exp["calls"] if c["operation"] == operation)
        want_calls[(provider, model, operation, None)] += n
    agents = set()
    got_calls: Counter[tuple[Any, ...]] = Counter()
    for a, v in replay.series(service, "atalaia.genai.calls"):
        got_calls[
            (
                a["gen_ai.provider.name"],
                a["gen_ai.request.model"],
                a["gen_ai.operation.name"],
                a.get("error.type"),
            )
        ] += int(v)
        agents.add(a.get("gen_ai.agent.name"))
    got_tokens: Counter[tuple[Any, ...]] = Counter()
    for a, v in replay.series(service, "atalaia.genai.tokens"):
        got_tokens[
            (a["gen_ai.provider.name"], a["gen_ai.request.model"], a["gen_ai.token.type"])
        ] += int(v)
    assert dict(got_calls) == dict(want_calls)
    # Zero counts (a 0 cache read) may or may not make a series; compare the non-zero ones.
    assert {k: v for k, v in got_tokens.items() if v} == {k: v for k, v in want_tokens.items() if v}
    # The agent is named: by the emitter where it sets gen_ai.agent.name, else by the service.
    assert agents and agents <= {exp.get("agent", "golden-agent"), service}, agents


@pytest.mark.parametrize("emitter", EMITTERS)
def test_tasks_and_tool_calls_are_counted(replay: Replay, emitter: str) -> None:
    exp = expected(emitter)
    service = exp["service.name"]
    tasks = replay.series(service, "atalaia.agent.tasks")
    tools = replay.series(service, "atalaia.tool.calls")
    assert sum(v for _, v in tasks) == exp["tasks"], tasks
    failed = sum(v for a, v in tasks if a["atalaia.task.outcome"] == "failure")
    assert failed == exp.get("failed_tasks", 0), tasks
    assert sum(v for _, v in tools) == exp["tools"], tools
    for a, _ in tasks:
        assert a["gen_ai.agent.name"] == exp.get("agent", "golden-agent"), a
    for a, _ in tools:
        assert a["gen_ai.tool.name"] == "lookup_weather", a


@pytest.mark.parametrize("emitter", EMITTERS)
def test_nothing_canonical_the_emitter_sent_is_overwritten(replay: Replay, emitter: str) -> None:
    """Every canonical attribute a recorded span carried keeps its value, except the two stated
    exceptions: error.type of LLM calls (kept in atalaia.error.original_type) and OpenLIT's
    Anthropic input count (kept in atalaia.usage.reported_input_tokens)."""
    raw = {
        s.raw["spanId"]: s
        for s in spans_of(
            [json.loads(ln) for ln in (GOLDEN / emitter / "traces.jsonl").read_text().splitlines()]
        )
    }
    after = {s.raw["spanId"]: s for s in replay.of(expected(emitter)["service.name"])}
    assert set(after) == set(raw), "spans were lost or added"
    changed = []
    for span_id, before in raw.items():
        old, new = before.attributes, after[span_id].attributes
        for key, was in old.items():
            if not key.startswith("gen_ai.") and key != "error.type":
                continue
            if key == "error.type" and new.get("atalaia.error.original_type") == was:
                continue
            if key == "gen_ai.operation.name" and was not in OPERATIONS:
                continue  # agento11y's generateText / streamText: not a value of the conventions
            if (
                key == "gen_ai.usage.input_tokens"
                and new.get("atalaia.usage.reported_input_tokens") == was
            ):
                continue
            if new.get(key) != was:
                changed.append(f"{before.raw['name']}: {key} {was!r} -> {new.get(key)!r}")
    assert not changed, "\n".join(changed)


def test_every_gap_is_still_a_gap(replay: Replay) -> None:
    """A GAPS entry names a call that exists: a stale entry would hide a regression. (A gap that
    closes fails test_each_llm_call_is_one_canonical_span: the value differs from the entry.)"""
    for emitter, gaps in GAPS.items():
        keys = {call_key(c) for c in expected(emitter)["calls"]}
        stale = [k for k, _ in gaps if k not in keys]
        assert not stale, f"{emitter}: GAPS for calls it does not make: {stale}"


# -- spellings no recorded package sends any more -----------------------------------------------
def _kv(key: str, v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"key": key, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": key, "value": {"intValue": str(v)}}
    return {"key": key, "value": {"stringValue": str(v)}}


# (span name, kind, status code, status message, attributes) -> the canonical attributes wanted
SpellingCase = tuple[str, int, int, str, dict[str, Any], dict[str, Any]]
CLIENT, INTERNAL, ERROR = 3, 1, 2
SPELLINGS: dict[str, SpellingCase] = {
    "gen_ai.system and pre-1.27 token names": (
        "chat gpt-4o",
        CLIENT,
        0,
        "",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.completion_tokens": 3,
        },
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 11,
            "gen_ai.usage.output_tokens": 3,
        },
    ),
    "OpenLLMetry before 0.4x: llm.request.type, llm.usage.*, llm.request.model": (
        "openai.chat",
        CLIENT,
        0,
        "",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "llm.request.model": "gpt-4o",
            "llm.response.model": "gpt-4o-2024-08-06",
            "llm.usage.prompt_tokens": 12,
            "llm.usage.completion_tokens": 4,
            "gen_ai.usage.cache_creation_input_tokens": 2,
            "gen_ai.usage.cache_read_input_tokens": 5,
        },
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 4,
            "gen_ai.usage.cache_creation.input_tokens": 2,
            "gen_ai.usage.cache_read.input_tokens": 5,
        },
    ),
    "a plain span named by the conventions only, provider from server.address, string tokens": (
        "chat claude-haiku-4-5",
        CLIENT,
        0,
        "",
        {
            "server.address": "api.anthropic.com",
            "gen_ai.request.model": "claude-haiku-4-5",
            "gen_ai.usage.input_tokens": "40",
            "gen_ai.usage.output_tokens": "9",
            "gen_ai.usage.cached_tokens": "7",
        },
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 40,
            "gen_ai.usage.output_tokens": 9,
            "gen_ai.usage.cache_read.input_tokens": 7,
        },
    ),
    "a span of the user's own named chat is not an LLM call": (
        "chat with support",
        INTERNAL,
        0,
        "",
        {},
        {"gen_ai.operation.name": None},
    ),
    "OpenInference CHAIN is a step, not a task": (
        "RunnableSequence",
        INTERNAL,
        0,
        "",
        {"openinference.span.kind": "CHAIN"},
        {"gen_ai.operation.name": None},
    ),
    "the atalaia library's status code 429": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "",
        {"gen_ai.operation.name": "chat", "error.type": "429"},
        {"error.type": "rate_limit", "atalaia.error.original_type": "429"},
    ),
    "timeout by class": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "Request timed out.",
        {"gen_ai.operation.name": "chat", "error.type": "openai.APITimeoutError"},
        {"error.type": "timeout"},
    ),
    "auth by status code 401": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "",
        {
            "gen_ai.operation.name": "chat",
            "error.type": "AuthenticationError",
            "http.response.status_code": 401,
        },
        {"error.type": "auth"},
    ),
    "not found in the status message": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "Error code: 404 - model not found",
        {"gen_ai.operation.name": "chat", "error.type": "openai.NotFoundError"},
        {"error.type": "not_found"},
    ),
    "bad request by Anthropic's error type": (
        "chat claude",
        CLIENT,
        ERROR,
        "",
        {"gen_ai.operation.name": "chat", "error.type": "invalid_request_error"},
        {"error.type": "bad_request"},
    ),
    "connection error": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "",
        {"gen_ai.operation.name": "chat", "error.type": "openai.APIConnectionError"},
        {"error.type": "connection"},
    ),
    "an unknown error is other, the original kept": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "",
        {"gen_ai.operation.name": "chat", "error.type": "KeyError"},
        {"error.type": "other", "atalaia.error.original_type": "KeyError"},
    ),
    "canonical values stay": (
        "chat gpt-4o",
        CLIENT,
        ERROR,
        "",
        {"gen_ai.operation.name": "chat", "error.type": "timeout"},
        {"error.type": "timeout", "atalaia.error.original_type": None},
    ),
    "a task's error.type is not an LLM error": (
        "invoke_agent helix",
        INTERNAL,
        ERROR,
        "",
        {"gen_ai.operation.name": "invoke_agent", "error.type": "agent_down"},
        {"error.type": "agent_down"},
    ),
}
SPELLINGS_REQUESTS = [
    {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        _kv("service.name", "spellings"),
                        _kv("deployment.environment", "test"),
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "test"},
                        "spans": [
                            {
                                "traceId": f"{i + 1:032x}",
                                "spanId": f"{i + 1:016x}",
                                "name": name,
                                "kind": kind,
                                "startTimeUnixNano": str(1_767_225_600_000_000_000 + i),
                                "endTimeUnixNano": str(1_767_225_601_000_000_000 + i),
                                "status": {"code": code, "message": message},
                                "attributes": [_kv(k, v) for k, v in given.items()]
                                + [_kv("test.case", case)],
                            }
                            for i, (case, (name, kind, code, message, given, _)) in enumerate(
                                SPELLINGS.items()
                            )
                        ],
                    }
                ],
            }
        ]
    }
]


@pytest.mark.parametrize("case", list(SPELLINGS))
def test_older_spellings_become_canonical(replay: Replay, case: str) -> None:
    (span,) = [s for s in replay.of("spellings") if s.attributes.get("test.case") == case]
    got = span.attributes
    for attribute, want in SPELLINGS[case][-1].items():
        assert got.get(attribute) == want, f"{attribute} = {got.get(attribute)!r}, want {want!r}"
        if isinstance(want, int):
            assert kinds(span.raw)[attribute] == "intValue", attribute


def test_resource_environment_gets_its_current_name(replay: Replay) -> None:
    """OpenLIT's deployment.environment becomes deployment.environment.name (a label)."""
    for service, want in (("spellings", "test"), ("golden-openlit", "golden")):
        spans = replay.of(service)
        assert spans and {s.resource.get("deployment.environment.name") for s in spans} == {want}
