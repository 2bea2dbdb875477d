"""`atalaia_ops.traces`: OTLP JSON as Tempo serves it → span tree → critical path → categories.

The traces are built here span by span, shaped like the demo fleet's (orchestrator root,
planning call, dispatch, the agent's invoke_agent with LLM calls and tools, a tool calling
another service), with times chosen so that the right answer is known by hand."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from atalaia_ops import traces

T0 = 1_800_000_000.0


class Builder:
    """Spans grouped by service, as resourceSpans; ids are base64 like Tempo's v2 API."""

    def __init__(self) -> None:
        self.services: dict[str, list[dict[str, Any]]] = {}
        self.agents: dict[str, str] = {}
        self.n = 0

    def span(
        self,
        service: str,
        name: str,
        start: float,
        end: float,
        parent: str | None = None,
        error: bool = False,
        **attrs: Any,
    ) -> str:
        self.n += 1
        span_id = f"{self.n:016x}"
        raw: dict[str, Any] = {
            "traceId": base64.b64encode(bytes.fromhex("ab" * 16)).decode(),
            "spanId": base64.b64encode(bytes.fromhex(span_id)).decode(),
            "name": name,
            "startTimeUnixNano": str(int((T0 + start) * 1e9)),
            "endTimeUnixNano": str(int((T0 + end) * 1e9)),
            "attributes": [
                {"key": k.replace("__", "."), "value": _value(v)} for k, v in attrs.items()
            ],
            "status": {"code": "STATUS_CODE_ERROR"} if error else {},
        }
        if parent:
            raw["parentSpanId"] = base64.b64encode(bytes.fromhex(parent)).decode()
        self.services.setdefault(service, []).append(raw)
        return span_id

    def otlp(self) -> dict[str, Any]:
        resource_spans = []
        for service, spans in self.services.items():
            attrs = [{"key": "service.name", "value": {"stringValue": service}}]
            if service in self.agents:
                attrs.append(
                    {"key": "gen_ai.agent.name", "value": {"stringValue": self.agents[service]}}
                )
            resource_spans.append(
                {"resource": {"attributes": attrs}, "scopeSpans": [{"spans": spans}]}
            )
        return {"resourceSpans": resource_spans}


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": str(v)}


def report_task(lookup_s: float = 0.1, llm_s: float = 1.0, queue_s: float = 0.5) -> Builder:
    """orchestrate_task: queue, planning 0.2 s, dispatch → POST /tasks → invoke_agent Sigma:
    helix_lookup (→ POST /lookup in helix) then chat claude, then validate_output."""
    b = Builder()
    b.agents = {"sigma": "Sigma", "helix": "Helix"}
    t = queue_s
    end = t + 0.2 + 0.05 + lookup_s + llm_s + 0.01 + 0.05
    root = b.span("orchestrator", "orchestrate_task report", 0, end)
    b.span(
        "orchestrator",
        "chat gpt-4o-mini",
        t,
        t + 0.2,
        root,
        gen_ai__operation__name="chat",
        gen_ai__request__model="gpt-4o-mini",
    )
    t += 0.2
    dispatch = b.span("orchestrator", "dispatch_task Sigma", t, end, root, atalaia__chunk__depth=0)
    post = b.span("sigma", "POST /tasks", t + 0.01, end - 0.01, dispatch)
    agent = b.span(
        "sigma",
        "invoke_agent Sigma",
        t + 0.02,
        end - 0.02,
        post,
        gen_ai__operation__name="invoke_agent",
    )
    t += 0.05
    tool = b.span(
        "sigma",
        "execute_tool helix_lookup",
        t,
        t + lookup_s,
        agent,
        gen_ai__operation__name="execute_tool",
        gen_ai__tool__name="helix_lookup",
    )
    b.span("helix", "POST /lookup", t + 0.005, t + lookup_s - 0.005, tool)
    t += lookup_s
    b.span(
        "sigma",
        "chat claude-sonnet-4-5",
        t,
        t + llm_s,
        agent,
        gen_ai__operation__name="chat",
        gen_ai__request__model="claude-sonnet-4-5",
    )
    t += llm_s
    b.span(
        "sigma",
        "execute_tool validate_output",
        t,
        t + 0.01,
        agent,
        gen_ai__operation__name="execute_tool",
        gen_ai__tool__name="validate_output",
    )
    return b


def test_breakdown_adds_up_and_names_where_the_time_went() -> None:
    trace = traces.parse("ab" * 16, report_task(lookup_s=10.0).otlp())
    assert trace is not None and trace.root.name == "orchestrate_task report"
    parts = traces.breakdown(trace)
    assert sum(parts.values()) == pytest.approx(trace.duration, abs=1e-6)
    assert parts[traces.QUEUE] == pytest.approx(0.5, abs=1e-6)
    assert parts["planning:gpt-4o-mini"] == pytest.approx(0.2, abs=1e-6)
    assert parts["llm:claude-sonnet-4-5"] == pytest.approx(1.0, abs=1e-6)
    assert parts["service:helix"] == pytest.approx(9.99, abs=1e-6)  # inside POST /lookup
    assert parts["tool:helix_lookup"] == pytest.approx(0.01, abs=1e-6)  # the tool's own time
    assert max(parts, key=lambda c: parts[c]) == "service:helix"
    assert trace.agent_spans("sigma")[0].name == "invoke_agent Sigma"
    assert traces.service_callers(trace) == {"helix": {"helix_lookup"}}


def test_parallel_work_off_the_critical_path_does_not_count() -> None:
    b = Builder()
    root = b.span("svc", "invoke_agent A", 0, 10, gen_ai__operation__name="invoke_agent")
    kw = {"gen_ai__operation__name": "chat"}
    b.span("svc", "chat slow", 1, 9, root, gen_ai__request__model="slow", **kw)
    b.span("svc", "chat fast", 1, 3, root, gen_ai__request__model="fast", **kw)  # in parallel
    parts = traces.breakdown(traces.parse("t", b.otlp()))  # type: ignore[arg-type]
    assert parts == pytest.approx({"llm:slow": 8.0, traces.OVERHEAD: 2.0})


def test_failed_attempts_and_timeouts_are_their_own_categories() -> None:
    b = Builder()
    root = b.span("orch", "orchestrate_task code", 0, 20)
    b.span("orch", "dispatch_task A", 0, 12, root, error=True, error__type="timeout")
    retry = b.span("orch", "dispatch_task A", 12, 20, root)
    agent = b.span("a", "invoke_agent A", 12, 20, retry, gen_ai__operation__name="invoke_agent")
    kw = {"gen_ai__operation__name": "chat", "gen_ai__request__model": "m"}
    b.span("a", "chat m", 12, 15, agent, error=True, error__type="500", **kw)
    b.span("a", "chat m", 15, 20, agent, **kw)
    parts = traces.breakdown(traces.parse("t", b.otlp()))  # type: ignore[arg-type]
    # The timed-out dispatch never reached an agent span here: its own time is overhead.
    assert parts == pytest.approx(
        {"timeouts:agent overhead": 12.0, "retries:llm:m": 3.0, "llm:m": 5.0}
    )
    assert traces.label("retries:llm:m") == "failed attempts: LLM m"
    assert traces.base("timeouts:llm:m") == traces.base("llm:m") == "llm:m"


def test_hex_ids_missing_parents_and_empty_traces() -> None:
    b = Builder()
    b.span("svc", "orphan", 0, 1, parent="ffffffffffffffff")  # its parent never arrived
    b.span("svc", "longer orphan", 0, 5, parent="eeeeeeeeeeeeeeee")
    trace = traces.parse("t", b.otlp())
    assert trace is not None and trace.root.name == "longer orphan"
    assert traces.parse("t", {"resourceSpans": []}) is None
    assert traces._id("0123456789abcdef") == "0123456789abcdef"


def test_a_failed_attempt_is_charged_to_what_made_it_fail() -> None:
    """The demo's shape under llm_errors: the agent answers 200 with a failed result (the HTTP
    span is fine), its three LLM calls failed; then a second dispatch succeeds."""
    b = Builder()
    root = b.span("orch", "orchestrate_task sales", 0, 4)
    first = b.span("orch", "dispatch_task N", 0, 3, root, error=True, error__type="llm")
    post = b.span("n", "POST /tasks", 0, 3, first)
    agent = b.span(
        "n", "invoke_agent N", 0, 3, post, error=True, gen_ai__operation__name="invoke_agent"
    )
    kw = {"gen_ai__operation__name": "chat", "gen_ai__request__model": "m"}
    for start in (0.0, 1.0, 2.0):  # backoff between them is the agent's own time
        b.span("n", "chat m", start, start + 0.2, agent, error=True, error__type="500", **kw)
    second = b.span("orch", "dispatch_task N", 3, 4, root)
    agent2 = b.span("n", "invoke_agent N", 3, 4, second, gen_ai__operation__name="invoke_agent")
    b.span("n", "chat m", 3, 4, agent2, **kw)
    parts = traces.breakdown(traces.parse("t", b.otlp()))  # type: ignore[arg-type]
    assert parts == pytest.approx({"retries:llm:m": 3.0, "llm:m": 1.0})
