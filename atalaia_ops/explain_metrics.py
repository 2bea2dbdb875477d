"""An agent's tasks and where their time went, from Prometheus alone (for `atalaia explain`).

Everything here reads the series the collector derives from any emitter's spans
(docs/telemetry.md, "Derived in the collector"): tasks are `invoke_agent` spans, their durations a
histogram; LLM calls, tool calls and every service's server spans have duration sums and counts.
So explain ranks causes for an agent whoever instrumented it, without Tempo or Loki.

What metrics cannot say, traces can: which spans lay on a task's critical path. Here a category's
time per task is its total time over the period divided by the tasks finished in it (calls that
ran in parallel both count), and the time a tool spent inside another service is matched by
numbers, not by span links: a tool whose calls got slower by about as much as some other
service's server spans did, at a call rate that service can have served, is taken to have waited
for that service (`split_services`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from atalaia_ops import traces
from atalaia_ops.backends import NoData, Prometheus

TASKS = "atalaia_agent_tasks_total"
TASK_DURATION = "atalaia_agent_task_duration_seconds"
LLM_DURATION = "atalaia_genai_duration_seconds"
TOOL_DURATION = "atalaia_tool_duration_seconds"
SPAN_DURATION = "atalaia_span_duration_seconds"
SERVER = 'span_kind="SPAN_KIND_SERVER"'
STEP_WINDOW = "1m"  # per-step counts: tasks that ended in the minute before each step


def quote(value: str) -> str:
    """A PromQL string literal's contents: backslashes and double quotes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def selector(agent: str) -> str:
    return f'gen_ai_agent_name="{quote(agent)}"'


def duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (upper bound -> count of observations at or below it)."""

    buckets: tuple[tuple[float, float], ...]  # sorted by bound; the last bound is +Inf

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def at_or_below(self, x: float) -> float:
        """Observations at or below `x`, linearly interpolated inside its bucket (as
        histogram_quantile assumes)."""
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if x <= bound:
                if math.isinf(bound):
                    return below  # nothing is known inside the last bucket
                share = (x - lower) / (bound - lower) if bound > lower else 1.0
                return below + (cumulative - below) * min(1.0, max(0.0, share))
            lower, below = bound, cumulative
        return self.count

    def above(self, x: float) -> float:
        return max(0.0, self.count - self.at_or_below(x))

    def quantile(self, q: float) -> float | None:
        if self.count <= 0:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower  # as histogram_quantile: the highest finite bound
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower

    def bound_at_or_above(self, x: float) -> float | None:
        """The smallest finite bucket bound at or above `x` (None beyond the last)."""
        return next((b for b, _ in self.buckets if b >= x and not math.isinf(b)), None)


def _by(prom: Prometheus, promql: str, label: str, at: float) -> dict[str, float]:
    return {s.labels.get(label, ""): s.value for s in prom.query(promql, at)}


def _scalar(prom: Prometheus, promql: str, at: float) -> float:
    try:
        return prom.scalar(promql, at)
    except NoData:
        return 0.0


def histogram(prom: Prometheus, promql: str, at: float) -> Histogram:
    """`promql` must give one series per `le` (e.g. `sum by (le) (increase(x_bucket[..]))`)."""
    points = []
    for s in prom.query(promql, at):
        bound = float(s.labels.get("le", "nan"))
        if not math.isnan(bound):
            points.append((bound, s.value))
    return Histogram(tuple(sorted(points)))


@dataclass
class PeriodTasks:
    """The agent's tasks that ended in one period."""

    count: float
    failed: float
    histogram: Histogram
    mean_s: float | None
    reasons: Counter[str] = field(default_factory=Counter)  # error_type of failed tasks
    services: set[str] = field(default_factory=set)  # the services its tasks ran in


def period_tasks(prom: Prometheus, agent: str, start: float, end: float) -> PeriodTasks:
    sel, rng = selector(agent), duration(end - start)
    count = _scalar(prom, f"sum(increase({TASKS}{{{sel}}}[{rng}]))", end)
    bad = f'{sel}, atalaia_task_outcome!="success"'
    failed = _scalar(prom, f"sum(increase({TASKS}{{{bad}}}[{rng}]))", end)
    reasons = Counter(
        {
            (k or "error"): round(v)
            for k, v in _by(
                prom, f"sum by (error_type) (increase({TASKS}{{{bad}}}[{rng}]))", "error_type", end
            ).items()
            if round(v) > 0
        }
    )
    hist = histogram(prom, f"sum by (le) (increase({TASK_DURATION}_bucket{{{sel}}}[{rng}]))", end)
    total = _scalar(prom, f"sum(increase({TASK_DURATION}_sum{{{sel}}}[{rng}]))", end)
    services = set(
        _by(prom, f"count by (service_name) (last_over_time({TASKS}{{{sel}}}[{rng}]))",
            "service_name", end)
    )  # fmt: skip
    return PeriodTasks(
        count, failed, hist, total / hist.count if hist.count > 0 else None, reasons, services
    )


def bucket_selector(bound: float) -> str:
    """`le` as both spellings Prometheus 3 may store (`le="30"` over OTLP, `"30.0"` scraped)."""
    text = f"{bound:g}" if bound != int(bound) else str(int(bound))
    regex = re.escape(text) + r"(\.0)?"
    return 'le=~"' + regex.replace("\\", "\\\\") + '"'  # a PromQL string: backslashes doubled


@dataclass(frozen=True)
class Step:
    t: float  # Unix seconds: the end of the minute these counts are for
    count: float  # tasks that ended in that minute
    bad: float  # of which slow (above the threshold's bucket bound) or failed


def steps(
    prom: Prometheus, agent: str, start: float, end: float, step: float, slow_bound: float | None
) -> list[Step]:
    """Per-step task counts over [start, end]: how many ended, how many were slow or failed."""
    sel, w = selector(agent), STEP_WINDOW
    counts = _points(prom, f"sum(increase({TASKS}{{{sel}}}[{w}]))", start, end, step)
    bad = f'{sel}, atalaia_task_outcome!="success"'
    failed = _points(prom, f"sum(increase({TASKS}{{{bad}}}[{w}]))", start, end, step)
    fast: dict[float, float] = {}
    if slow_bound is not None:
        le = f"{sel}, {bucket_selector(slow_bound)}"
        fast = _points(
            prom, f"sum(increase({TASK_DURATION}_bucket{{{le}}}[{w}]))", start, end, step
        )
    out = []
    for t, n in sorted(counts.items()):
        slow = max(0.0, n - fast.get(t, n)) if slow_bound is not None else 0.0
        out.append(Step(t, n, min(n, slow + failed.get(t, 0.0))))
    return out


def _points(
    prom: Prometheus, promql: str, start: float, end: float, step: float
) -> dict[float, float]:
    series = prom.query_range(promql, start, end, step)
    return dict(series[0].points) if series else {}


def time_per_task(
    prom: Prometheus, agent: str, start: float, end: float, tasks: float
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Mean seconds per task by category over the period, with the calls behind the tool
    categories: (seconds per category, tool calls per task, tool seconds per call).

    Categories as `atalaia_ops.traces` names them: llm:<model> and tool:<tool> for successful calls,
    retries:llm:<model> and retries:tool:<tool> for the time of calls that failed.
    """
    if tasks <= 0:
        return {}, {}, {}
    sel, rng = selector(agent), duration(end - start)
    out: dict[str, float] = {}
    ok, failed = f'{sel}, error_type=""', f'{sel}, error_type!=""'
    for kind, metric, label in (
        (traces.LLM, LLM_DURATION, "gen_ai_request_model"),
        (traces.TOOL, TOOL_DURATION, "gen_ai_tool_name"),
    ):
        for which, prefix in ((ok, ""), (failed, f"{traces.RETRIES}:")):
            promql = f"sum by ({label}) (increase({metric}_sum{{{which}}}[{rng}]))"
            for name, total in _by(prom, promql, label, end).items():
                if total > 0:
                    out[f"{prefix}{kind}:{name or 'unknown'}"] = total / tasks
    calls = _by(
        prom, f"sum by (gen_ai_tool_name) (increase({TOOL_DURATION}_count{{{sel}}}[{rng}]))",
        "gen_ai_tool_name", end,
    )  # fmt: skip
    seconds = _by(
        prom, f"sum by (gen_ai_tool_name) (increase({TOOL_DURATION}_sum{{{sel}}}[{rng}]))",
        "gen_ai_tool_name", end,
    )  # fmt: skip
    per_task = {t: n / tasks for t, n in calls.items() if n > 0}
    per_call = {t: seconds.get(t, 0.0) / n for t, n in calls.items() if n > 0}
    return out, per_task, per_call


@dataclass(frozen=True)
class ServerTime:
    calls_per_s: float
    seconds_per_call: float


def server_time(prom: Prometheus, start: float, end: float) -> dict[str, ServerTime]:
    """Every service's SERVER spans over the period, per route: call rate and mean duration.
    Keyed `service` + NUL + `route` (a route of "" when the spans have none): a service's slow
    route must not be averaged away by its other ones."""
    rng, by = duration(end - start), "service_name, http_route"
    calls = prom.query(f"sum by ({by}) (increase({SPAN_DURATION}_count{{{SERVER}}}[{rng}]))", end)
    secs = {
        (s.labels.get("service_name", ""), s.labels.get("http_route", "")): s.value
        for s in prom.query(
            f"sum by ({by}) (increase({SPAN_DURATION}_sum{{{SERVER}}}[{rng}]))", end
        )
    }
    out = {}
    for s in calls:
        key = (s.labels.get("service_name", ""), s.labels.get("http_route", ""))
        if s.value > 0 and key[0]:
            out[f"{key[0]}\0{key[1]}"] = ServerTime(
                s.value / max(1.0, end - start), secs.get(key, 0.0) / s.value
            )
    return out


def service_of(key: str) -> str:
    return key.split("\0", 1)[0]


def split_services(
    window: dict[str, float],
    base: dict[str, float],
    tool_calls: tuple[dict[str, float], dict[str, float]],  # calls per task (window, baseline)
    tool_per_call: tuple[dict[str, float], dict[str, float]],  # s per call (window, baseline)
    servers: tuple[dict[str, ServerTime], dict[str, ServerTime]],  # (window, baseline)
    tool_rate: dict[str, float],  # the agent's calls/s of each tool in the window
    own: Iterable[str],  # the agent's own services: never "another service"
) -> dict[str, set[str]]:
    """Move the time a tool spent waiting for another service from tool:<t> to service:<s>, in
    both periods, where the numbers say so: the tool's calls got slower by at least 100 ms, a
    service other than the agent's own got slower per call by at least half as much, and that
    service served at least half as many calls per second as the tool made. The service's time
    per tool call (capped at the tool's) is what moves. Returns service -> the tools it serves.
    """
    mine = set(own)
    callers: dict[str, set[str]] = {}
    for tool, w_call in tool_per_call[0].items():
        b_call = tool_per_call[1].get(tool)
        if b_call is None or w_call - b_call < 0.1:
            continue
        rise = w_call - b_call
        best = None
        for name, w in servers[0].items():
            b = servers[1].get(name)
            if service_of(name) in mine or b is None:
                continue
            grew = w.seconds_per_call - b.seconds_per_call
            fits = grew >= 0.5 * rise and w.calls_per_s >= 0.5 * tool_rate.get(tool, 0.0)
            if fits and (best is None or grew > best[1]):
                best = (name, grew)
        if best is None:
            continue
        name = best[0]
        service = service_of(name)
        callers.setdefault(service, set()).add(tool)
        for period, calls, per_call, srv in (
            (window, tool_calls[0], w_call, servers[0][name]),
            (base, tool_calls[1], b_call, servers[1][name]),
        ):
            moved = min(per_call, srv.seconds_per_call) * calls.get(tool, 0.0)
            key = f"{traces.TOOL}:{tool}"
            if key in period:
                period[key] = max(0.0, period[key] - moved)
            category = f"{traces.SERVICE}:{service}"
            period[category] = period.get(category, 0.0) + moved
    return callers


def overhead(categories: dict[str, float], mean_task_s: float | None) -> None:
    """The task time no call accounts for: the agent's own code, queues inside it."""
    if mean_task_s is None:
        return
    rest = mean_task_s - sum(categories.values())
    if rest > 0:
        categories[traces.OVERHEAD] = rest


def restarts(prom: Prometheus, agent: str, start: float, end: float) -> list[tuple[str, float]]:
    """(what, when) of the agent's process restarts in [start, end]: the supervisor's count
    (orchestrator) and resets of the process's own CPU counter (any process-metrics emitter)."""
    sel, found = selector(agent), []
    step = 15.0
    for what, promql in (
        ("restarted by the supervisor",
         f"sum(increase(orchestrator_agent_restarts_total{{{sel}}}[{STEP_WINDOW}]))"),
        ("process restarted (its CPU counter reset)",
         f"sum(resets(process_cpu_time_seconds_total{{{sel}}}[{STEP_WINDOW}]))"),
    ):  # fmt: skip
        points = _points(prom, promql, start, end, step)
        first = next((t for t, v in sorted(points.items()) if v >= 0.5), None)
        if first is not None:
            found.append((what, first - 60.0))
    return found
