"""One trace as a span tree, its critical path, and where a task's time went.

`atalaia explain` reads traces from Tempo (OTLP JSON, API v2) and asks of each task: along the
critical path (the chain of spans that decided when the task finished), how many seconds went to
queue wait, planning, each LLM model, each tool, other services called by a tool, failed attempts
and retries, timed-out attempts before chunking, and overhead. Spans that ran in parallel with the
critical path do not count: making them faster would not have finished the task sooner.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

# Categories of critical-path time. LLM, tool and service categories carry a name after the colon.
QUEUE = "queue wait"
PLANNING = "planning"  # planning:<model>, an LLM call outside any agent
LLM = "llm"  # llm:<model>
TOOL = "tool"  # tool:<name>
SERVICE = "service"  # service:<service.name>, another service a tool called
# Prefixes: time inside a failed attempt (retried, or failing the task) and inside a dispatch
# that timed out (after which the orchestrator splits the task into chunks).
RETRIES = "retries"  # retries:<what>, e.g. retries:llm:gpt-4o
TIMEOUTS = "timeouts"  # timeouts:<what>
OVERHEAD = "agent overhead"  # agent and dispatch spans' own time: network, agent code
ORCHESTRATOR = "orchestrator"  # the root's own time after its first child started


@dataclass
class Span:
    span_id: str
    parent_id: str | None
    name: str
    service: str
    agent: str | None  # resource gen_ai.agent.name, else the span's attribute
    start: float  # Unix seconds
    end: float
    attributes: dict[str, Any]
    error: bool
    children: list[Span] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def operation(self) -> str:
        return str(self.attributes.get("gen_ai.operation.name", ""))

    @property
    def error_type(self) -> str | None:
        value = self.attributes.get("error.type")
        return str(value) if value is not None else None


@dataclass
class Trace:
    trace_id: str
    root: Span
    spans: list[Span]

    @property
    def start(self) -> float:
        return self.root.start

    @property
    def duration(self) -> float:
        return self.root.duration

    @property
    def failed(self) -> bool:
        return self.root.error

    def agent_spans(self, agent: str) -> list[Span]:
        """The agent's invoke_agent spans (one per dispatch the agent took)."""
        return [
            s
            for s in self.spans
            if s.operation == "invoke_agent" and (s.agent or "").lower() == agent.lower()
        ]


def _id(value: Any) -> str:
    """OTLP JSON ids: Tempo sends base64; accept hex as well. Returns lower-case hex."""
    text = str(value or "")
    if not text:
        return ""
    if len(text) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        return base64.b64decode(text).hex()
    except (binascii.Error, ValueError):
        return text


def _value(v: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value", {})) for a in items or [] if "key" in a}


def parse(trace_id: str, otlp: dict[str, Any]) -> Trace | None:
    """A trace from Tempo's OTLP JSON (`{"resourceSpans": [...]}`); None when it has no spans."""
    spans: list[Span] = []
    for rs in otlp.get("resourceSpans") or otlp.get("batches") or []:
        resource = _attributes(rs.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", "unknown"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for raw in ss.get("spans", []):
                attrs = _attributes(raw.get("attributes"))
                agent = resource.get("gen_ai.agent.name") or attrs.get("gen_ai.agent.name")
                status = str(raw.get("status", {}).get("code", ""))
                spans.append(
                    Span(
                        span_id=_id(raw.get("spanId")),
                        parent_id=_id(raw.get("parentSpanId")) or None,
                        name=str(raw.get("name", "")),
                        service=service,
                        agent=str(agent) if agent else None,
                        start=int(raw.get("startTimeUnixNano", 0)) / 1e9,
                        end=int(raw.get("endTimeUnixNano", 0)) / 1e9,
                        attributes=attrs,
                        error=status in ("STATUS_CODE_ERROR", "2"),
                    )
                )
    if not spans:
        return None
    by_id = {s.span_id: s for s in spans}
    orphans = []
    for s in spans:
        parent = by_id.get(s.parent_id or "")
        if parent is None or parent is s:
            orphans.append(s)
        else:
            parent.children.append(s)
    # The root: a span without a parent; when spans are missing, the longest orphan.
    root = min(orphans, key=lambda s: (s.parent_id is not None, -s.duration, s.start))
    return Trace(trace_id, root, spans)


def critical_path(root: Span) -> list[tuple[Span, float, float]]:
    """(span, from, to) segments of the root's critical path, each span's own time on it.

    Walks back from the root's end: the child that finished last before the cursor was what the
    parent waited for; the gap after it is the parent's own time; recurse, move the cursor to that
    child's start, repeat. Children are clipped to their parent (clocks of two processes may
    disagree by a little).
    """
    segments: list[tuple[Span, float, float]] = []
    _walk(root, root.start, root.end, segments)
    return segments


def _walk(span: Span, lo: float, hi: float, out: list[tuple[Span, float, float]]) -> None:
    cursor = hi
    children = [c for c in span.children if c.start < hi and c.end > lo]
    while True:
        waiting = [c for c in children if c.start < cursor]
        if not waiting:
            break
        child = max(waiting, key=lambda c: (min(c.end, cursor), c.duration))
        child_end = min(child.end, cursor)
        child_start = max(child.start, lo)
        if cursor > child_end:
            out.append((span, child_end, cursor))
        if child_end > child_start:
            _walk(child, child_start, child_end, out)
        cursor = child_start
        children.remove(child)
        if cursor <= lo:
            break
    if cursor > lo:
        out.append((span, lo, cursor))


def _ancestors(trace: Trace) -> dict[str, list[Span]]:
    """For each span id, its ancestors from the root down (the span itself excluded)."""
    result: dict[str, list[Span]] = {}

    def visit(span: Span, chain: list[Span]) -> None:
        result[span.span_id] = chain
        for child in span.children:
            visit(child, [*chain, span])

    visit(trace.root, [])
    return result


def category(span: Span, ancestors: list[Span], root: Span, at: float) -> str:
    """Which kind of time one critical-path segment of `span` is: what was running (queue wait,
    planning:<model>, llm:<model>, tool:<name>, service:<name>, overhead). Inside a dispatch
    that timed out it is prefixed `timeouts:`. Inside any other failed attempt the whole attempt
    is time lost to what made it fail: `retries:` + what its innermost failed span was, e.g.
    retries:llm:gpt-4o when the model's error failed the attempt.
    """
    chain = [*ancestors[1:], span]  # below the root
    failed = [s for s in chain if s.error and s is not root]
    if not failed:
        return _what(span, chain, [*ancestors, span], root, at)
    attempt = failed[0]  # the outermost failed span is the attempt that was lost
    if attempt.name.startswith("dispatch_task") and attempt.error_type == "timeout":
        return f"{TIMEOUTS}:" + _what(span, chain, [*ancestors, span], root, at)
    above = chain[: chain.index(attempt)]
    path = _failure_path(attempt)
    lineage = [*ancestors[:1], *above, *path]
    return f"{RETRIES}:" + _what(path[-1], [*above, *path], lineage, root, at)


def _failure_path(attempt: Span) -> list[Span]:
    """From a failed span down to the failure's origin, through the spans in between (an HTTP
    server span that answered 200 with a failed result is not itself an error): at each step the
    nearest failed descendant that ended last, i.e. the failure its parent reported."""
    path = [attempt]
    while True:
        found = _nearest_failed(path[-1])
        if found is None:
            return path
        path += found


def _nearest_failed(span: Span) -> list[Span] | None:
    """The path below `span` to its shallowest failed descendant that ended last."""
    level: list[list[Span]] = [[c] for c in span.children]
    while level:
        failed = [p for p in level if p[-1].error]
        if failed:
            return max(failed, key=lambda p: p[-1].end)
        level = [[*p, c] for p in level for c in p[-1].children]
    return None


def _what(span: Span, chain: list[Span], lineage: list[Span], root: Span, at: float) -> str:
    if span is root:
        first_child = min((c.start for c in root.children), default=root.end)
        if span.operation != "invoke_agent" and at < first_child:
            return QUEUE
        return ORCHESTRATOR if span.operation != "invoke_agent" else OVERHEAD
    if span.operation == "chat":
        model = span.attributes.get("gen_ai.request.model", "unknown")
        in_agent = any(s.operation == "invoke_agent" for s in lineage)
        return f"{LLM}:{model}" if in_agent else f"{PLANNING}:{model}"
    tools = [s for s in chain if s.operation == "execute_tool"]
    if tools:
        tool = tools[-1]
        outside = [s for s in chain[chain.index(tool) + 1 :] if s.service != tool.service]
        if outside:
            return f"{SERVICE}:{outside[0].service}"
        return f"{TOOL}:{tool.attributes.get('gen_ai.tool.name', tool.name)}"
    return OVERHEAD


def base(category: str) -> str:
    """What was running, without the attempt prefix: retries:llm:m -> llm:m."""
    head, _, rest = category.partition(":")
    return rest if head in (RETRIES, TIMEOUTS) else category


def label(category: str) -> str:
    """A category as a reader sees it: llm:gpt-4o -> "LLM gpt-4o"."""
    kind, _, name = category.partition(":")
    if kind == RETRIES:
        return f"failed attempts: {label(name)}"
    if kind == TIMEOUTS:
        return f"timed-out attempts: {label(name)}"
    return {
        LLM: f"LLM {name}",
        PLANNING: f"planning ({name})",
        TOOL: f"tool {name}",
        SERVICE: f"inside {name}",
    }.get(kind, category)


def breakdown(trace: Trace) -> dict[str, float]:
    """Seconds of the trace's critical path per category (they add up to the root's duration)."""
    ancestors = _ancestors(trace)
    totals: dict[str, float] = defaultdict(float)
    for span, start, end in critical_path(trace.root):
        totals[category(span, ancestors.get(span.span_id, []), trace.root, start)] += end - start
    return dict(totals)


def service_callers(trace: Trace) -> dict[str, set[str]]:
    """For each other service a tool called: the tool names that called it."""
    callers: dict[str, set[str]] = defaultdict(set)
    ancestors = _ancestors(trace)
    for span in trace.spans:
        chain = [*ancestors.get(span.span_id, []), span]
        tools = [s for s in chain if s.operation == "execute_tool"]
        if tools and span.service != tools[-1].service:
            callers[span.service].add(str(tools[-1].attributes.get("gen_ai.tool.name", "")))
    return dict(callers)
