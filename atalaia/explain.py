"""Why was an agent slow (or failing)? The analysis behind `atalaia explain`.

1. Tasks: the agent's traces in the window and in a baseline period (Tempo, TraceQL). A task is
   *slow* above max(2 x the baseline median, the baseline p95); the window has a symptom when at
   least a fifth of its tasks (and two or more) are slow or failed and that is three times the
   baseline's share.
2. Where the time went: each task's critical path, split into queue wait, planning, LLM calls by
   model, tools, other services a tool called, failed attempts and timed-out attempts
   (`atalaia.traces`), averaged over the slow/failed tasks and compared with the baseline tasks.
3. What changed at the same time: every candidate signal (`atalaia.explain_signals`: process CPU
   and memory, LLM latency and error rate by model, retries, errors, queue depth, restarts, budget
   throttling, error logs) compared between the baseline and the slow period.
4. Ranking: score = anomaly x (0.2 + 0.8 x relevance) x timing, where anomaly is how far the
   signal moved (0..1, two doublings = 1), relevance the share of the extra time (or of the
   failures) that lies where this signal can act, and timing 1 when the signal moved at most 5 min
   before and 1 min after the slowdown began, else 0.5 (it more likely followed than caused it).
   "likely" from 0.4, "possible" from 0.15; nothing is significant when there is no symptom.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from atalaia import explain_signals as sig
from atalaia import traces
from atalaia.backends import BackendError, Loki, NoData, Prometheus, Series, Tempo

LIKELY, POSSIBLE = 0.4, 0.15
SEARCH_LIMIT = 500  # traces listed per period (search results are small)
FETCH_WINDOW = 60  # slow/failed traces fetched in full from the window
FETCH_BASELINE = 40  # baseline traces fetched in full
TIE_ORDER = (
    "cpu",
    "memory",
    "llm_latency",
    "llm_errors",
    "llm_tokens",
    "llm_calls",
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


@dataclass(frozen=True)
class Period:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class TaskStats:
    count: int
    slow: int
    failed: int
    median_s: float | None
    p90_s: float | None


@dataclass
class Part:
    category: str
    label: str
    window_s: float  # mean seconds per slow/failed task
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


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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


def _listing(tempo: Tempo, agent: str, period: Period) -> list[dict[str, object]]:
    found = tempo.search(tasks_query(agent), period.start, period.end, limit=SEARCH_LIMIT)
    return [t for t in found if period.start <= _start(t)]


def _failed_ids(tempo: Tempo, agent: str, period: Period) -> set[str]:
    found = tempo.search(failed_tasks_query(agent), period.start, period.end, limit=SEARCH_LIMIT)
    return {str(t["traceID"]) for t in found}


def _mean_breakdown(tasks: list[traces.Trace]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for task in tasks:
        for category, seconds in traces.breakdown(task).items():
            sums[category] += seconds
    return {c: s / len(tasks) for c, s in sums.items()} if tasks else {}


def _stats(durations: list[float], slow: int, failed: int) -> TaskStats:
    return TaskStats(
        len(durations),
        slow,
        failed,
        statistics.median(durations) if durations else None,
        _quantile(durations, 0.9),
    )


def _onset(window: list[traces.Trace], is_bad: Callable[[traces.Trace], bool]) -> float | None:
    """When the trouble began: the first bad task after which at least half of the next four
    tasks were bad too (one unlucky task does not start an incident)."""
    ordered = sorted(window, key=lambda t: t.start)
    for i, task in enumerate(ordered):
        following = ordered[i + 1 : i + 5]
        if is_bad(task) and (not following or sum(map(is_bad, following)) * 2 >= len(following)):
            return task.start
    return None


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
    if labels.get("error_type") == "429":
        values["error_type"] = "429 (rate limited)"
    if labels.get("gen_ai_agent_name") and "service_name" in labels:
        values["service_name"] = f"{labels['gen_ai_agent_name']} (service {labels['service_name']})"
    return signal.title.format_map(values)


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


@dataclass
class _Tasks:
    """The agent's tasks in the baseline and the window, and the verdict on the window."""

    base_count: int  # tasks listed in the baseline
    base_tasks: list[traces.Trace]  # a sample of them, fetched in full
    base_stats: TaskStats
    threshold: float  # slow above this many seconds
    fetched: list[traces.Trace]  # window tasks fetched in full: the slow and failed (or the trace)
    explained: list[traces.Trace]  # those that are slow or failed
    window_stats: TaskStats
    symptom: bool
    onset: float | None  # when the slowdown began
    period: Period  # while it lasted: what signals are compared over
    # Tasks the baseline's rate predicts in the window but that never reached the agent (0 when
    # it served at least 30 % of them): an agent that is down or hung fails no task, it has none.
    missing: float = 0.0
    expected: float = 0.0


@dataclass
class _Time:
    """Where the time went: mean critical-path seconds per category, slow tasks vs baseline."""

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


def _seconds(t: dict[str, object]) -> float:
    """A search result's duration in seconds."""
    return float(str(t.get("durationMs", 0))) / 1e3


def _start(t: dict[str, object]) -> float:
    """A search result's start, Unix seconds."""
    return int(str(t.get("startTimeUnixNano", 0))) / 1e9


def _tasks(
    tempo: Tempo, agent: str, window: Period, baseline: Period, trace_id: str | None
) -> _Tasks:
    base_list = _listing(tempo, agent, baseline)
    if not base_list:
        raise ExplainError(
            f"Tempo has no tasks of {agent} in the baseline {clock(baseline.start)} .. "
            f"{clock(baseline.end)}: nothing to compare with (choose another baseline with "
            "--baseline-from/--baseline-to, or check the agent's name)"
        )
    base_list.sort(key=_start)
    every = max(1, len(base_list) // FETCH_BASELINE)  # an even sample over the baseline
    base_tasks = _fetch(tempo, [str(t["traceID"]) for t in base_list[::every][:FETCH_BASELINE]])
    base_durations = [_seconds(t) for t in base_list]
    threshold = max(2 * statistics.median(base_durations), _quantile(base_durations, 0.95) or 0)
    base_slow = sum(d > threshold for d in base_durations)
    base_failed = sum(t.failed for t in base_tasks)
    base_share = base_slow / len(base_durations) + base_failed / max(1, len(base_tasks))

    if trace_id is not None:
        fetched = _fetch(tempo, [trace_id])
        if not fetched:
            raise ExplainError(f"Tempo has no trace {trace_id}")
        durations = [t.duration for t in fetched]
    else:
        listing = _listing(tempo, agent, window)
        durations = [_seconds(t) for t in listing]
        slow = sorted((t for t in listing if _seconds(t) > threshold), key=lambda t: -_seconds(t))
        ids = [str(t["traceID"]) for t in slow[:FETCH_WINDOW]]
        errored = _failed_ids(tempo, agent, window)
        ids += [i for i in sorted(errored) if i not in ids][: FETCH_WINDOW // 2]
        fetched = _fetch(tempo, ids)

    def is_bad(t: traces.Trace) -> bool:
        return t.duration > threshold or t.failed

    explained = fetched if trace_id is not None else [t for t in fetched if is_bad(t)]
    slow_n = sum(d > threshold for d in durations)
    failed_n = sum(t.failed for t in fetched)
    share = (slow_n + failed_n) / max(1, len(durations))
    onset: float | None = None
    expected = missing = 0.0
    if trace_id is not None:
        symptom = is_bad(fetched[0])
        onset, period = fetched[0].start, Period(fetched[0].start, fetched[0].root.end)
    else:
        # The baseline's rate over the part of it that had tasks (a stack younger than the
        # baseline has nothing before its first task).
        first = _start(base_list[0])
        expected = len(base_list) / max(60.0, baseline.end - max(first, baseline.start))
        expected *= window.seconds
        symptom = slow_n + failed_n >= 2 and share >= 0.2 and share >= 3 * base_share
        period = window
        if not symptom and expected >= 5 and len(durations) < 0.3 * expected:
            symptom, missing = True, expected - len(durations)
            period = _longest_gap([window.start, *sorted(map(_start, listing)), window.end])
            onset = period.start
        elif symptom:
            onset = _onset(explained, is_bad) or min(t.start for t in explained)
            # Until the last slow task ended, even after the window: a slow call started in
            # the window is measured (a latency histogram, for one) only when it ends.
            last = max(t.root.end for t in explained)
            period = Period(onset, min(time.time(), max(last, onset + 60)))
    if period.seconds < 60:  # at least four 15 s points to average over
        period = Period(period.start, period.start + 60)
    return _Tasks(
        len(base_list),
        base_tasks,
        _stats(base_durations, base_slow, base_failed),
        threshold,
        fetched,
        explained,
        _stats(durations, slow_n, failed_n),
        symptom,
        onset,
        period,
        missing,
        expected,
    )


def _longest_gap(times: list[float]) -> Period:
    """The longest stretch between consecutive times (sorted, window bounds included)."""
    start, end = max(itertools.pairwise(times), key=lambda p: p[1] - p[0])
    return Period(start, end)


def _time(tasks: _Tasks, agent: str) -> _Time:
    base = _mean_breakdown(tasks.base_tasks)
    window = _mean_breakdown(tasks.explained)
    deltas = {c: window.get(c, 0.0) - base.get(c, 0.0) for c in {*base, *window}}
    callers: dict[str, set[str]] = defaultdict(set)
    for t in [*tasks.explained, *tasks.base_tasks]:
        for service, tool_names in traces.service_callers(t).items():
            callers[service] |= tool_names
    return _Time(
        window,
        base,
        deltas,
        sum(d for d in deltas.values() if d > 0),
        dict(callers),
        Counter(str(t.root.error_type or "error") for t in tasks.explained if t.failed),
        set(base) | set(window),
        {s.service for t in [*tasks.explained, *tasks.base_tasks] for s in t.agent_spans(agent)},
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
    linked = [r for r in t.reasons if signal.kind in sig.FAILURE_LINKS.get(r, ())]
    model = s.labels.get("gen_ai_request_model")
    if model and not any(c.endswith(f":{model}") for c in t.used):
        linked = []  # a model the agent does not use cannot fail its tasks
    fail_share = sum(t.reasons[r] for r in linked) / max(1, len(tasks.explained))
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
                f"{agent}'s slow or failed tasks spent {t.window.get(c, 0):.2f} s in "
                f"{traces.label(c)}{via} vs {t.base.get(c, 0):.2f} s at baseline: "
                f"{d / t.extra:.0%} of the extra time"
            )
    if missing_note:
        evidence.append(missing_note)
    if linked:
        evidence.append(
            f"{sum(t.reasons[r] for r in linked)} of {len(tasks.explained)} slow/failed tasks "
            f"failed with {', '.join(linked)}"
        )
    if relevance == 0:
        evidence.append(
            f"nothing in {agent}'s traces passes through it: a coincidence in time only"
        )
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
    for signal in sig.SIGNALS:
        query = signal.query.replace("{agent}", agent)
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
                try:
                    top = _top_errors(loki, s.labels.get("service_name", ""), tasks.period)
                except BackendError as e:
                    doubts.append(f"error messages not read: {e}")
                    continue
                cause.evidence += [f"most frequent: {m}" for m in top]
    # On a tie the more specific signal first: a resource or a model before the agent's own
    # error counts, logs and retries, which are more often consequences.
    return sorted(found, key=lambda c: (-c.score, TIE_ORDER.index(c.kind)))


def _doubts(agent: str, tasks: _Tasks, t: _Time, causes: list[Cause]) -> list[str]:
    doubts = []
    if tasks.symptom and len(tasks.explained) < 5:
        doubts.append(
            f"only {len(tasks.explained)} slow or failed task(s) to learn from: the breakdown "
            "is rough"
        )
    if tasks.base_count < 10:
        doubts.append(f"the baseline has only {tasks.base_count} tasks")
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
    doubts.append(
        "causes are ranked by when signals moved and where the time went in traces: "
        "they are leads to check, not proof"
    )
    return doubts


def _examples(tasks: _Tasks) -> list[Example]:
    def top(t: traces.Trace) -> str:
        parts = traces.breakdown(t)
        return traces.label(max(parts, key=lambda c: parts[c])) if parts else ""

    slowest = sorted(tasks.explained or tasks.fetched, key=lambda t: -t.duration)[:3]
    return [Example(t.trace_id, t.start, round(t.duration, 3), t.failed, top(t)) for t in slowest]


def explain(
    agent: str,
    window: Period,
    baseline: Period,
    prom: Prometheus,
    loki: Loki | None,
    tempo: Tempo,
    trace_id: str | None = None,
) -> Explanation:
    """The four steps of the module docstring."""
    tasks = _tasks(tempo, agent, window, baseline, trace_id)
    t = _time(tasks, agent)
    parts = _parts(t) if tasks.explained else []  # nothing slow or failed to break down
    unchecked: list[str] = []
    found = _candidates(agent, window, baseline, prom, loki, tasks, t, unchecked)
    if tasks.symptom:
        causes = [c for c in found if c.confidence != "unlikely"]
        others = [c for c in found if c.confidence == "unlikely"]
    else:  # nothing to explain: whatever moved is only listed
        causes, others = [], found
        for cause in others:
            cause.confidence = "unlikely"
    summary = _summary(
        tasks,
        agent,
        tasks.symptom,
        tasks.window_stats,
        tasks.base_stats,
        tasks.threshold,
        causes,
        parts,
    )
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
        _examples(tasks),
        unchecked + _doubts(agent, tasks, t, causes),
        dict(t.reasons),
        slow_tasks_query(agent, tasks.threshold),
    )


def sig_match(cause: Cause, agent: str) -> Callable[[str], bool]:
    signal = next(s for s in sig.SIGNALS if s.kind == cause.kind)
    return signal.explains(cause.labels, agent)


def _summary(
    tasks: _Tasks,
    agent: str,
    symptom: bool,
    window: TaskStats,
    base: TaskStats,
    threshold: float,
    causes: list[Cause],
    parts: list[Part],
) -> str:
    med = f"median {window.median_s or 0:.1f} s vs {base.median_s or 0:.1f} s at baseline"
    if not symptom:
        return (
            f"{agent}'s tasks are in line with its baseline ({med}; {window.slow} of "
            f"{window.count} above {threshold:.1f} s, {window.failed} failed): "
            "no significant cause."
        )
    if tasks.missing:
        text = (
            f"{agent} served {window.count} task(s) where its baseline rate predicts "
            f"{tasks.expected:.0f}; none from {clock(tasks.period.start)} for "
            f"{tasks.period.seconds:.0f} s."
        )
        return text + (
            f" Most likely cause: {causes[0].title}." if causes else " No signal explains it."
        )
    where = next((p for p in parts if p.delta_s > 0), None)
    state = "failing" if window.failed > window.slow else "slow"
    text = (
        f"{agent} was {state}: {window.slow} of {window.count} tasks above {threshold:.1f} s and "
        f"{window.failed} failed ({med})."
    )
    if where and where.delta_s >= 0.1:
        text += f" Most of the extra time went to {where.label} (+{where.delta_s:.1f} s per task)."
    if causes:
        text += f" Most likely cause: {causes[0].title}."
    else:
        text += " No signal explains it."
    return text
