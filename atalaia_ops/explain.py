"""Why was an agent slow (or failing)? The analysis behind `atalaia explain`.

It ranks from Prometheus alone, on the series the collector derives from any emitter's spans
(`atalaia_ops.explain_metrics`), so it explains an agent whoever instrumented it. Tempo adds example
traces, and Loki the most frequent error messages, when they answer; when they do not, that is
said, never an error. One task by its trace id (`--trace`) is read from Tempo.

1. Tasks: the agent's tasks (its `invoke_agent` spans) in the window and in a baseline period,
   from their duration histogram. A task is *slow* above max(2 x the baseline median, the
   baseline p95); the window has a symptom when at least a fifth of its tasks (and two or more)
   are slow or failed and that is three times the baseline's share, or when the agent served
   under 30 % of the tasks its baseline rate predicts (down, hung, off).
2. Where the time went: mean seconds per task in each kind of work (LLM calls by model, tools,
   other services a tool waited for, failed calls, the rest) over the incident, against the
   baseline. For one trace: its critical path (`atalaia_ops.traces`).
3. What changed at the same time: every candidate signal (`atalaia_ops.explain_signals`: process and
   host CPU and memory, LLM latency, errors, calls and tokens by model, tool failures, retries,
   errors, queue depth, restarts, budget throttling, error logs) between the baseline and the
   incident.
4. Ranking: score = anomaly x (0.2 + 0.8 x relevance) x timing, where anomaly is how far the
   signal moved (0..1, two doublings = 1), relevance the share of the extra time (or of the
   failures) that lies where this signal can act, and timing 1 when the signal moved at most 5 min
   before and 1 min after the slowdown began, else 0.5 (it more likely followed than caused it).
   "likely" from 0.4, "possible" from 0.15, and only with a relevance above 0: a signal that only
   coincides in time is listed under other changes, never as a cause.

Two things are reported even when the tasks look healthy: silent failures (a tool or integration
of the agent failing far above its baseline: leads lost while tasks "succeed") and events (the
agent's process restarted, even when the supervisor healed it within seconds).
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from atalaia_ops import explain_metrics as em
from atalaia_ops import explain_signals as sig
from atalaia_ops import traces
from atalaia_ops.backends import BackendError, Loki, NoData, Prometheus, Series, Tempo

LIKELY, POSSIBLE = 0.4, 0.15
SEARCH_LIMIT = 500  # traces listed per period (search results are small)
FETCH_BASELINE = 40  # baseline traces fetched in full for one trace's comparison
EXAMPLES = 3
TIE_ORDER = (
    "cpu",
    "memory",
    "llm_latency",
    "llm_errors",
    "llm_tokens",
    "llm_calls",
    "tool_errors",
    "integration_errors",
    "budget",
    "agent_down",
    "off_shift",
    "restarts",
    "host_cpu",
    "host_memory",
    "queue",
    "errors",
    "error_logs",
    "retries",
)
BEFORE_S, AFTER_S = 300.0, 60.0  # a cause may start this long before / after the slowdown
# A tool or integration failing this much more than at baseline is a finding on its own.
SILENT_KINDS = ("tool_errors", "integration_errors")
SILENT_ANOMALY = 0.5


@dataclass(frozen=True)
class Period:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class TaskStats:
    count: float
    slow: float
    failed: float
    median_s: float | None
    p90_s: float | None


@dataclass
class Part:
    category: str
    label: str
    window_s: float  # mean seconds per task in the incident (per slow/failed task: one trace)
    baseline_s: float  # mean seconds per baseline task
    delta_s: float
    share: float  # of the extra time (positive deltas only)


@dataclass
class Cause:
    kind: str
    title: str
    labels: dict[str, str]
    score: float
    confidence: str  # likely | possible | unlikely
    anomaly: float
    relevance: float
    timing: float
    baseline: float
    value: float  # mean over the slow period
    peak: float
    unit: str
    onset: float | None
    evidence: list[str]
    query: str
    backend: str


@dataclass
class Example:
    trace_id: str
    start: float
    duration_s: float
    failed: bool
    top: str  # the category that took most of its critical path


@dataclass
class Explanation:
    agent: str
    window: Period
    baseline: Period
    trace_id: str | None
    window_tasks: TaskStats
    baseline_tasks: TaskStats
    slow_threshold_s: float
    symptom: bool
    symptom_onset: float | None
    summary: str
    breakdown: list[Part]
    causes: list[Cause]  # significant: likely or possible, best first
    other_changes: list[Cause]  # moved, but not enough (or no symptom to explain)
    examples: list[Example]
    uncertainty: list[str]
    failure_reasons: dict[str, int] = field(default_factory=dict)
    slow_tasks_query: str = ""  # TraceQL for the agent's slow tasks (the Explore link's query)
    silent_failures: list[Cause] = field(default_factory=list)  # failing although tasks are fine
    events: list[str] = field(default_factory=list)  # restarts and the like, with their time


class ExplainError(Exception):
    """Not enough data to explain anything; the message says what is missing."""


def quoted(value: str) -> str:
    """A double-quoted TraceQL or LogQL string literal (both take Go's escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tasks_query(agent: str, condition: str = "") -> str:
    """TraceQL for the agent's tasks (and `condition`, e.g. `traceDuration > 3s`): traces with a
    span naming the agent (its invoke_agent, a dispatch to it, the task it finished; so a task
    that failed because the agent was down counts too) or its own process's invoke_agent."""
    name = quoted(agent)
    return (
        f"{{ (span.gen_ai.agent.name = {name} || (resource.gen_ai.agent.name = {name} && "
        'span.gen_ai.operation.name = "invoke_agent"))'
        + (f" && {condition}" if condition else "")
        + " }"
    )


def failed_tasks_query(agent: str) -> str:
    """TraceQL for the agent's tasks with a span in error."""
    return f"{tasks_query(agent)} && {{ status = error }}"


def slow_tasks_query(agent: str, threshold: float) -> str:
    """TraceQL for the agent's tasks slower than `threshold` seconds (the Explore link)."""
    return tasks_query(agent, f"traceDuration > {threshold:.1f}s")


def error_lines_query(service: str) -> str:
    """LogQL for a service's error log lines."""
    return f'{{service_name={quoted(service)}}} | detected_level=~"(?i)error|critical|fatal"'


def _fetch(tempo: Tempo, ids: list[str]) -> list[traces.Trace]:
    result = []
    for trace_id in ids:
        try:
            # Tempo's search drops leading zeros of trace ids; its trace API wants all 32.
            parsed = traces.parse(trace_id.zfill(32), tempo.trace(trace_id.zfill(32)))
        except NoData:
            continue
        if parsed is not None:
            result.append(parsed)
    return result


def _mean_breakdown(tasks: list[traces.Trace]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for task in tasks:
        for category, seconds in traces.breakdown(task).items():
            sums[category] += seconds
    return {c: s / len(tasks) for c, s in sums.items()} if tasks else {}


def _seconds(t: dict[str, object]) -> float:
    """A search result's duration in seconds."""
    return float(str(t.get("durationMs", 0))) / 1e3


def _start(t: dict[str, object]) -> float:
    """A search result's start, Unix seconds."""
    return int(str(t.get("startTimeUnixNano", 0))) / 1e9


def _fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1e6:.0f} MB"
    if unit == "ratio":
        return f"{value:.0%}"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "tokens/s":
        return f"{value:,.0f} tokens/s"
    if unit == "":  # a 0/1 state averaged over time
        return f"{value:.0%} of the time"
    if unit == "/s":
        return f"{value * 60:.1f}/min"
    return f"{value:.2f} {unit}"


def clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _title(signal: sig.Signal, labels: dict[str, str], agent: str) -> str:
    values = defaultdict(lambda: "?", {**labels, "agent": agent})
    # A process is named by its agent when it has one: "CPU of Helix (service helix)".
    if labels.get("error_type") in ("429", "rate_limit"):
        values["error_type"] = f"{labels['error_type']} (rate limited)"
    if labels.get("gen_ai_agent_name") and "service_name" in labels:
        values["service_name"] = f"{labels['gen_ai_agent_name']} (service {labels['service_name']})"
    return signal.title.format_map(values)


# --- the agent's tasks ------------------------------------------------------------------------
@dataclass
class _Tasks:
    """The agent's tasks in the baseline and the window, and the verdict on the window."""

    base_stats: TaskStats
    threshold: float  # slow above this many seconds
    window_stats: TaskStats
    symptom: bool
    onset: float | None  # when the slowdown began
    period: Period  # while it lasted: what signals and time are compared over
    period_count: float  # tasks that ended in the period
    period_mean_s: float | None
    base_mean_s: float | None
    bad: float  # slow or failed tasks to explain
    reasons: Counter[str]  # error_type of the failed tasks -> tasks
    services: set[str]  # the services the agent's tasks ran in
    # Tasks the baseline's rate predicts in the window but that never reached the agent (0 when
    # it served at least 30 % of them): an agent that is down or hung fails no task, it has none.
    missing: float = 0.0
    expected: float = 0.0
    trace: traces.Trace | None = None  # --trace: the one task
    base_traces: list[traces.Trace] = field(default_factory=list)  # --trace: its baseline


def _stats(p: em.PeriodTasks, threshold: float) -> TaskStats:
    h = p.histogram
    return TaskStats(round(p.count, 1), round(h.above(threshold), 1), round(p.failed, 1),
                     h.quantile(0.5), h.quantile(0.9))  # fmt: skip


def _metric_tasks(prom: Prometheus, agent: str, window: Period, baseline: Period) -> _Tasks:
    base = em.period_tasks(prom, agent, baseline.start, baseline.end)
    if base.count < 1 or base.histogram.count < 1:
        raise ExplainError(
            f"Prometheus has no tasks of {agent} in the baseline {clock(baseline.start)} .. "
            f"{clock(baseline.end)} (its invoke_agent spans, counted by the collector as "
            f"{em.TASKS}): nothing to compare with (choose another baseline with "
            "--baseline-from/--baseline-to, or check the agent's name)"
        )
    median = base.histogram.quantile(0.5) or 0.0
    threshold = max(2 * median, base.histogram.quantile(0.95) or 0.0)
    base_share = (base.histogram.above(threshold) + base.failed) / base.count
    win = em.period_tasks(prom, agent, window.start, window.end)
    slow = win.histogram.above(threshold)
    share = (slow + win.failed) / max(1.0, win.count)
    step = max(15.0, round((window.end - baseline.start) / 1000))
    bound = base.histogram.bound_at_or_above(threshold)
    steps = em.steps(prom, agent, baseline.start, window.end + 60, step, bound)
    # The baseline's rate over the part of it that had tasks (a stack younger than the baseline
    # has nothing before its first task).
    first = next((s.t - 60 for s in steps if s.count > 0), baseline.start)
    expected = base.count / max(60.0, baseline.end - max(first, baseline.start)) * window.seconds
    symptom = slow + win.failed >= 2 and share >= 0.2 and share >= 3 * base_share
    onset: float | None = None
    period, missing = window, 0.0
    in_window = [s for s in steps if window.start <= s.t <= window.end]
    if not symptom and expected >= 5 and win.count < 0.3 * expected:
        symptom, missing = True, expected - win.count
        quiet = [s.t for s in in_window if s.count < 0.5]
        period = _longest_run(quiet, step) or window
        onset = period.start
    elif symptom:
        found = _step_onset([s for s in steps if s.t >= window.start])
        # A step counts the minute before it: the trouble did not begin before the window.
        onset = None if found is None else max(window.start, found)
        bad_ends = [s.t for s in steps if s.t >= window.start and s.bad >= 0.5]
        if onset is not None:
            # Until the last slow task ended, a little after the window too: a slow call started
            # in the window is measured (a latency histogram, for one) only when it ends. Not
            # far after it, though: a task ending a minute later may belong to what came next.
            grace = min(60.0, max(15.0, 2 * threshold))
            last = max((t for t in bad_ends if t <= window.end + grace), default=onset + 60)
            period = Period(onset, min(time.time(), max(last, onset + 60)))
    if period.seconds < 60:  # at least four 15 s points to average over
        period = Period(period.start, period.start + 60)
    during = win if period == window else em.period_tasks(prom, agent, period.start, period.end)
    return _Tasks(
        _stats(base, threshold),
        threshold,
        _stats(win, threshold),
        symptom,
        onset,
        period,
        during.count,
        during.mean_s,
        base.mean_s,
        slow + win.failed,
        win.reasons,
        base.services | win.services,
        missing,
        expected,
    )


def _step_onset(steps: list[em.Step]) -> float | None:
    """When the trouble began: the first minute with slow or failed tasks after which at least
    half of the next four minutes had them too (one unlucky task does not start an incident).
    A step counts the tasks that ended in the minute before it, so the minute's start is taken."""

    def bad(s: em.Step) -> bool:
        return s.bad >= max(1.0, 0.3 * s.count)

    for i, s in enumerate(steps):
        following = steps[i + 1 : i + 5]
        if bad(s) and (not following or sum(map(bad, following)) * 2 >= len(following)):
            return s.t - 60.0
    return None


def _longest_run(times: list[float], step: float) -> Period | None:
    """The longest run of consecutive steps (each `step` apart) among `times`."""
    best: tuple[float, float] | None = None
    run: list[float] = []
    for t in sorted(times):
        if run and t - run[-1] > step * 1.5:
            run = []
        run.append(t)
        if best is None or run[-1] - run[0] > best[1] - best[0]:
            best = (run[0], run[-1])
    return Period(best[0] - 60.0, best[1]) if best else None


def _trace_tasks(
    prom: Prometheus, tempo: Tempo, agent: str, trace_id: str, baseline: Period
) -> _Tasks:
    """--trace: one task from Tempo, against the agent's baseline tasks (their histogram for the
    threshold, a sample of their traces for where the time usually goes)."""
    fetched = _fetch(tempo, [trace_id])
    if not fetched:
        raise ExplainError(f"Tempo has no trace {trace_id}")
    trace = fetched[0]
    base = em.period_tasks(prom, agent, baseline.start, baseline.end)
    if base.count < 1:
        raise ExplainError(
            f"Prometheus has no tasks of {agent} in the baseline {clock(baseline.start)} .. "
            f"{clock(baseline.end)}: nothing to compare with"
        )
    median = base.histogram.quantile(0.5) or 0.0
    threshold = max(2 * median, base.histogram.quantile(0.95) or 0.0)
    listing = tempo.search(tasks_query(agent), baseline.start, baseline.end, limit=SEARCH_LIMIT)
    listing = sorted((t for t in listing if baseline.start <= _start(t)), key=_start)
    every = max(1, len(listing) // FETCH_BASELINE)  # an even sample over the baseline
    base_traces = _fetch(tempo, [str(t["traceID"]) for t in listing[::every][:FETCH_BASELINE]])
    bad = trace.duration > threshold or trace.failed
    one = TaskStats(1, int(trace.duration > threshold), int(trace.failed), trace.duration, None)
    period = Period(trace.start, max(trace.root.end, trace.start + 60))
    reasons = Counter([str(trace.root.error_type or "error")] if trace.failed else [])
    return _Tasks(
        _stats(base, threshold),
        threshold,
        one,
        bad,
        trace.start,
        period,
        1.0,
        trace.duration,
        base.mean_s,
        1.0 if bad else 0.0,
        reasons,
        base.services | {s.service for s in trace.agent_spans(agent)},
        trace=trace,
        base_traces=base_traces,
    )


# --- where the time went ----------------------------------------------------------------------
@dataclass
class _Time:
    """Where the time went: mean seconds per task by category, incident vs baseline."""

    window: dict[str, float]
    base: dict[str, float]
    deltas: dict[str, float]
    extra: float  # the sum of the positive deltas
    callers: dict[str, set[str]]  # service -> the tools that called it
    reasons: Counter[str]  # failure reason -> failed tasks
    used: set[str]  # every category seen in the agent's tasks
    services: set[str]  # the services the agent's invoke_agent spans ran in

    def share(self, matches: Callable[[str], bool]) -> float:
        if self.extra <= 0:
            return 0.0
        return sum(max(d, 0.0) for c, d in self.deltas.items() if matches(c)) / self.extra


def _time(window: dict[str, float], base: dict[str, float], callers: dict[str, set[str]],
          tasks: _Tasks) -> _Time:  # fmt: skip
    deltas = {c: window.get(c, 0.0) - base.get(c, 0.0) for c in {*base, *window}}
    return _Time(
        window,
        base,
        deltas,
        sum(d for d in deltas.values() if d > 0),
        callers,
        tasks.reasons,
        set(base) | set(window),
        tasks.services,
    )


def _metric_time(prom: Prometheus, agent: str, tasks: _Tasks, baseline: Period) -> _Time:
    p = tasks.period
    window, w_calls, w_per_call = em.time_per_task(prom, agent, p.start, p.end, tasks.period_count)
    base_n = tasks.base_stats.count
    base, b_calls, b_per_call = em.time_per_task(prom, agent, baseline.start, baseline.end, base_n)
    callers: dict[str, set[str]] = {}
    if w_per_call:
        servers = (em.server_time(prom, p.start, p.end),
                   em.server_time(prom, baseline.start, baseline.end))  # fmt: skip
        rate = {t: n * tasks.period_count / max(1.0, p.seconds) for t, n in w_calls.items()}
        callers = em.split_services(
            window, base, (w_calls, b_calls), (w_per_call, b_per_call), servers, rate,
            tasks.services,
        )  # fmt: skip
    if tasks.period_count > 0:
        em.overhead(window, tasks.period_mean_s)
    em.overhead(base, tasks.base_mean_s)
    return _time(window, base, callers, tasks)


def _trace_time(tasks: _Tasks) -> _Time:
    assert tasks.trace is not None
    callers: dict[str, set[str]] = defaultdict(set)
    for t in [tasks.trace, *tasks.base_traces]:
        for service, tool_names in traces.service_callers(t).items():
            callers[service] |= tool_names
    return _time(
        _mean_breakdown([tasks.trace]), _mean_breakdown(tasks.base_traces), dict(callers), tasks
    )


def _parts(t: _Time) -> list[Part]:
    return [
        Part(
            c,
            traces.label(c),
            round(t.window.get(c, 0.0), 3),
            round(t.base.get(c, 0.0), 3),
            round(d, 3),
            round(max(d, 0.0) / t.extra, 3) if t.extra > 0 else 0.0,
        )
        for c, d in sorted(t.deltas.items(), key=lambda kv: -kv[1])
        if abs(d) >= 0.005 or t.window.get(c, 0) >= 0.005
    ]


# --- candidate causes ---------------------------------------------------------------------------
def _range(
    signal: sig.Signal,
    query: str,
    prom: Prometheus,
    loki: Loki | None,
    start: float,
    end: float,
    step: float,
) -> list[Series]:
    if signal.backend == "loki":
        if loki is None:
            return []
        return loki.series_range(query, start, end, step)
    return prom.query_range(query, start, end, step)


def _cause(
    signal: sig.Signal,
    s: Series,
    query: str,
    agent: str,
    baseline: Period,
    tasks: _Tasks,
    t: _Time,
) -> Cause | None:
    """Score one series as a cause (None when it did not move)."""
    period, onset = tasks.period, tasks.onset
    level = sig.level(
        s.points,
        (baseline.start, baseline.end),
        (period.start, period.end),
        signal.floor,
        period.start - 120,
        signal.absent_is_zero,
    )
    if level is None or level.anomaly <= 0:
        return None
    matches = signal.explains(s.labels, agent)
    linked = [r for r in t.reasons if signal.kind in sig.failure_kinds(r)]
    if signal.kind == "error_logs" and not _is_own(s.labels, agent, t):
        linked = []  # another service's error logs do not fail this agent's tasks
    model = s.labels.get("gen_ai_request_model")
    if model and not any(c.endswith(f":{model}") for c in t.used):
        linked = []  # a model the agent does not use cannot fail its tasks
    fail_share = sum(t.reasons[r] for r in linked) / max(1.0, tasks.bad)
    relevance = min(1.0, max(t.share(matches), fail_share))
    if tasks.missing and (signal.kind == "queue" or _is_own(s.labels, agent, t)):
        # The agent served too few tasks: what happened to the agent itself (or the queue that
        # held its tasks) is where the missing ones went.
        relevance = max(relevance, min(1.0, tasks.missing / tasks.expected))
        missing_note = (
            f"{agent} served {tasks.expected - tasks.missing:.0f} of the ~{tasks.expected:.0f} "
            "tasks its baseline rate predicts; this is about the agent itself (or its queue)"
        )
    else:
        missing_note = ""
    began = level.onset
    if began is not None and signal.measured_at_end:
        began -= level.peak  # the slow calls that raised it started that much earlier
    timing = 1.0
    if onset is not None and began is None:
        timing = 0.7
    elif onset is not None and began is not None:
        timing = 1.0 if onset - BEFORE_S <= began <= onset + AFTER_S else 0.5
    score = level.anomaly * (0.2 + 0.8 * relevance) * timing
    confidence = "likely" if score >= LIKELY else "possible" if score >= POSSIBLE else "unlikely"
    if relevance <= 0:
        confidence = "unlikely"  # it moved at the same time, and that is all

    title = _title(signal, s.labels, agent)
    first = (
        f"{title}: {_fmt(level.window, signal.unit)} on average during the incident "
        f"(baseline {_fmt(level.baseline, signal.unit)}, peak {_fmt(level.peak, signal.unit)})"
    )
    if level.onset:
        first += f", above normal from {clock(level.onset)}"
        if signal.measured_at_end:
            first += f" (calls that end then began up to {level.peak:.0f} s earlier)"
    evidence = [first]
    for c, d in sorted(t.deltas.items(), key=lambda kv: -kv[1]):
        if matches(c) and t.extra > 0 and d / t.extra >= 0.01:
            via = ""
            if c.startswith(f"{traces.SERVICE}:"):
                tools = ", ".join(sorted(t.callers.get(c.split(":", 1)[1], set())))
                via = f" (called by tool {tools})" if tools else ""
            evidence.append(
                f"{agent}'s tasks spent {t.window.get(c, 0):.2f} s in {traces.label(c)}{via} "
                f"vs {t.base.get(c, 0):.2f} s at baseline: {d / t.extra:.0%} of the extra time"
            )
    if missing_note:
        evidence.append(missing_note)
    if linked:
        evidence.append(
            f"{sum(t.reasons[r] for r in linked)} of {tasks.bad:.0f} slow/failed tasks "
            f"failed with {', '.join(linked)}"
        )
    if relevance == 0:
        evidence.append(f"nothing in {agent}'s tasks passes through it: a coincidence in time only")
    if timing < 1 and began is not None and onset is not None:
        evidence.append(
            f"it began {abs(began - onset):.0f} s {'after' if began > onset else 'before'} the "
            "slowdown, so it more likely followed than caused it"
        )
    return Cause(
        signal.kind,
        title,
        dict(s.labels),
        round(score, 3),
        confidence,
        round(level.anomaly, 3),
        round(relevance, 3),
        timing,
        level.baseline,
        level.window,
        level.peak,
        signal.unit,
        level.onset,
        evidence,
        query,
        signal.backend,
    )


def _top_errors(loki: Loki, service: str, period: Period, n: int = 3) -> list[str]:
    """The most frequent error messages of a service in the period, ids and numbers folded."""
    streams = loki.query_range(error_lines_query(service), period.start, period.end, limit=500)
    counts = Counter(
        re.sub(r"\b[0-9a-f]{8,}\b|\d+", "#", str(line))[:160]
        for stream in streams
        for _, line in stream.get("values", [])
    )
    return [f"{count} x {message!r}" for message, count in counts.most_common(n)]


def _is_own(labels: dict[str, str], agent: str, t: _Time) -> bool:
    """A series about the agent itself: its name, or the service its invoke_agent spans ran in."""
    if labels.get("gen_ai_agent_name", "").lower() == agent.lower():
        return True
    return labels.get("service_name", "") in t.services


def _candidates(
    agent: str,
    window: Period,
    baseline: Period,
    prom: Prometheus,
    loki: Loki | None,
    tasks: _Tasks,
    t: _Time,
    doubts: list[str],
) -> list[Cause]:
    """Every series of every signal that moved, scored, best first."""
    start = min(baseline.start, window.start)
    end = max(window.end, tasks.period.end)
    step = max(15.0, round((end - start) / 1000))
    found: list[Cause] = []
    loki_said: str | None = None
    for signal in sig.SIGNALS:
        query = signal.query.replace("{agent}", em.quote(agent))
        try:
            series = _range(signal, query, prom, loki, start, end, step)
        except BackendError as e:
            doubts.append(f"{signal.kind} not checked: {e}")
            continue
        for s in series:
            cause = _cause(signal, s, query, agent, baseline, tasks, t)
            if cause is None:
                continue
            found.append(cause)
            if signal.kind == "error_logs" and loki is not None and cause.confidence != "unlikely":
                if loki_said is not None:
                    continue
                try:
                    top = _top_errors(loki, s.labels.get("service_name", ""), tasks.period)
                except BackendError as e:
                    loki_said = f"no error messages (Loki): {e}"
                    continue
                cause.evidence += [f"most frequent: {m}" for m in top]
    if loki_said:
        doubts.append(loki_said)
    # On a tie the more specific signal first: a resource or a model before the agent's own
    # error counts, logs and retries, which are more often consequences.
    return sorted(found, key=lambda c: (-c.score, TIE_ORDER.index(c.kind)))


def _silent(found: list[Cause]) -> list[Cause]:
    """Tools and integrations of the agent failing far above their baseline: a finding even
    when its tasks look healthy (a CRM that refuses every lead while tasks 'succeed')."""
    return [c for c in found if c.kind in SILENT_KINDS and c.anomaly >= SILENT_ANOMALY]


def _doubts(agent: str, tasks: _Tasks, t: _Time, causes: list[Cause]) -> list[str]:
    doubts = []
    if tasks.symptom and tasks.trace is None and tasks.bad < 5 and not tasks.missing:
        doubts.append(
            f"only {tasks.bad:.0f} slow or failed task(s) to learn from: the breakdown is rough"
        )
    if tasks.base_stats.count < 10:
        doubts.append(f"the baseline has only {tasks.base_stats.count:.0f} tasks")
    if tasks.symptom and not causes:
        doubts.append("no signal moved enough to explain the slowdown; look at the example traces")
    if len(causes) >= 2 and causes[1].score >= 0.8 * causes[0].score:
        doubts.append(
            f"the first two causes fit about equally well ({causes[0].score:.2f} vs "
            f"{causes[1].score:.2f})"
        )
    if tasks.symptom and t.extra > 0:
        acting = [sig_match(c, agent) for c in causes]
        left = (
            sum(d for c, d in t.deltas.items() if d > 0 and not any(m(c) for m in acting)) / t.extra
        )
        if left >= 0.3:
            doubts.append(f"{left:.0%} of the extra time is not where any cause acts")
    if tasks.trace is None:
        doubts.append(
            "where the time went is per task from the collector's span metrics: calls that ran "
            "in parallel both count, and a tool's wait for another service is matched by numbers"
        )
    doubts.append(
        "causes are ranked by when signals moved and where the time went: "
        "they are leads to check, not proof"
    )
    return doubts


def _examples(
    tempo: Tempo | None, agent: str, window: Period, tasks: _Tasks, doubts: list[str]
) -> list[Example]:
    """The slowest (and failed) tasks of the incident from Tempo, with what took most of each."""

    def top(t: traces.Trace) -> str:
        parts = traces.breakdown(t)
        return traces.label(max(parts, key=lambda c: parts[c])) if parts else ""

    if tasks.trace is not None:
        picked = [tasks.trace]
    elif tempo is None:
        return []
    else:
        # Tasks that began in the window (the incident period may run past it, into whatever
        # came next).
        w = window
        try:
            slow = tempo.search(slow_tasks_query(agent, tasks.threshold), w.start, w.end, 20)
            failed = tempo.search(failed_tasks_query(agent), w.start, w.end, 20)
            hits = sorted(slow, key=lambda x: -_seconds(x))[:EXAMPLES]
            hits += [x for x in failed if x not in hits][: max(0, EXAMPLES - len(hits))]
            picked = _fetch(tempo, [str(x["traceID"]) for x in hits])
        except BackendError as e:
            doubts.append(f"no example traces (Tempo): {e}")
            return []
    picked.sort(key=lambda t: -t.duration)
    return [Example(t.trace_id, t.start, round(t.duration, 3), t.failed, top(t)) for t in picked]


def _events(prom: Prometheus, agent: str, window: Period, doubts: list[str]) -> list[str]:
    try:
        found = em.restarts(prom, agent, window.start, window.end)
    except BackendError as e:
        doubts.append(f"restarts not checked: {e}")
        return []
    return [f"{agent} {what} at about {clock(when)}" for what, when in found]


def explain(
    agent: str,
    window: Period,
    baseline: Period,
    prom: Prometheus,
    loki: Loki | None,
    tempo: Tempo | None,
    trace_id: str | None = None,
) -> Explanation:
    """The four steps of the module docstring."""
    if trace_id is not None:
        if tempo is None:
            raise ExplainError("explaining one trace needs Tempo (--tempo-url)")
        tasks = _trace_tasks(prom, tempo, agent, trace_id, baseline)
        t = _trace_time(tasks)
    else:
        tasks = _metric_tasks(prom, agent, window, baseline)
        t = _metric_time(prom, agent, tasks, baseline)
    parts = _parts(t) if tasks.bad or tasks.missing else []  # nothing slow or failed to split
    unchecked: list[str] = []
    found = _candidates(agent, window, baseline, prom, loki, tasks, t, unchecked)
    silent = _silent(found)
    if tasks.symptom:
        causes = [c for c in found if c.confidence != "unlikely"]
        others = [c for c in found if c.confidence == "unlikely"]
    else:  # nothing to explain: whatever moved is only listed
        causes, others = [], found
        for cause in others:
            cause.confidence = "unlikely"
    examples = _examples(tempo, agent, window, tasks, unchecked)
    events = _events(prom, agent, window, unchecked) if trace_id is None else []
    summary = _summary(tasks, agent, causes, parts, silent, events)
    return Explanation(
        agent,
        window,
        baseline,
        trace_id,
        tasks.window_stats,
        tasks.base_stats,
        round(tasks.threshold, 3),
        tasks.symptom,
        tasks.onset,
        summary,
        parts,
        causes,
        others,
        examples,
        unchecked + _doubts(agent, tasks, t, causes),
        dict(t.reasons),
        slow_tasks_query(agent, tasks.threshold),
        silent,
        events,
    )


def sig_match(cause: Cause, agent: str) -> Callable[[str], bool]:
    signal = next(s for s in sig.SIGNALS if s.kind == cause.kind)
    return signal.explains(cause.labels, agent)


def _summary(
    tasks: _Tasks,
    agent: str,
    causes: list[Cause],
    parts: list[Part],
    silent: list[Cause],
    events: list[str],
) -> str:
    window, base, threshold = tasks.window_stats, tasks.base_stats, tasks.threshold
    med = f"median {window.median_s or 0:.1f} s vs {base.median_s or 0:.1f} s at baseline"
    also = ""
    if silent:
        also += " But: " + "; ".join(c.evidence[0] for c in silent[:2]) + "."
    if events:
        also += " Events: " + "; ".join(events[:3]) + "."
    if not tasks.symptom:
        return (
            f"{agent}'s tasks are in line with its baseline ({med}; {window.slow:.0f} of "
            f"{window.count:.0f} above {threshold:.1f} s, {window.failed:.0f} failed): "
            "no significant cause." + also
        )
    if tasks.missing:
        text = (
            f"{agent} served {window.count:.0f} task(s) where its baseline rate predicts "
            f"{tasks.expected:.0f}; none from {clock(tasks.period.start)} for "
            f"{tasks.period.seconds:.0f} s."
        )
        return (
            text
            + (f" Most likely cause: {causes[0].title}." if causes else " No signal explains it.")
            + also
        )
    where = next((p for p in parts if p.delta_s > 0), None)
    state = "failing" if window.failed > window.slow else "slow"
    text = (
        f"{agent} was {state}: {window.slow:.0f} of {window.count:.0f} tasks above "
        f"{threshold:.1f} s and {window.failed:.0f} failed ({med})."
    )
    if where and where.delta_s >= 0.1:
        text += f" Most of the extra time went to {where.label} (+{where.delta_s:.1f} s per task)."
    if causes:
        text += f" Most likely cause: {causes[0].title}."
    else:
        text += " No signal explains it."
    return text + also
