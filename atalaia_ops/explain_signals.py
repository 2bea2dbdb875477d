"""What `atalaia explain` looks at besides the agent's own traces: the candidate causes.

Each `Signal` is one PromQL (or LogQL) range query whose series are candidate causes: a process's
CPU, a model's latency, the queue depth ... Each says which kinds of critical-path time
(`atalaia_ops.traces` categories) it can explain, so that a change that coincides with the slowdown
but cannot have caused where the time went ranks low. Only names from docs/telemetry.md are used.

`level()` compares one series between the baseline and the slow period: how far it moved (in
doublings above the baseline, after a noise floor) and when it first crossed its threshold.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from atalaia_ops import traces

# What a failed task's error.type points at: the orchestrator's reasons (on orchestrate_task,
# read from one trace) and what agents put on their invoke_agent spans (the collector's task
# counts carry it). Timeouts and exhausted fallbacks are slowness: the breakdown says where.
FAILURE_LINKS = {
    "budget": ("budget",),
    "agent_down": ("restarts",),
    "llm_error": ("llm_errors", "retries", "error_logs"),
    "agent_error": ("errors", "error_logs", "retries"),
}
_LLM_FAILURE = re.compile(
    r"rate.?limit|429|5\d\d|server_error|llm|openai|anthropic|api.?error|overloaded", re.I
)


def failure_kinds(reason: str) -> tuple[str, ...]:
    """The signal kinds that can have made a task fail with this error type."""
    if reason in FAILURE_LINKS:
        return FAILURE_LINKS[reason]
    if _LLM_FAILURE.search(reason):
        return FAILURE_LINKS["llm_error"]
    if re.search(r"integration|tool|crm", reason, re.I):
        return ("tool_errors", "integration_errors", "errors", "error_logs")
    return FAILURE_LINKS["agent_error"]


@dataclass(frozen=True)
class Signal:
    kind: str  # cpu, memory, llm_latency, llm_errors, retries, errors, queue, restarts, ...
    title: str  # "CPU of {service}", formatted with the series' labels
    query: str  # PromQL/LogQL; {agent} is replaced with the agent's name
    unit: str
    floor: float  # the smallest change worth a look, in `unit`
    # Which critical-path categories this series can explain, given its labels and the agent.
    explains: Callable[[dict[str, str], str], Callable[[str], bool]]
    backend: str = "prometheus"
    key: tuple[str, ...] = ()  # labels that name the series ("service_name", ...)
    measured_at_end: bool = False  # a duration, recorded when the call ends (not when it began)
    # A count or error rate whose series exists only once something happened: no points in the
    # baseline means zero there, not "unknown".
    absent_is_zero: bool = False


def _failed(category: str) -> bool:
    return category.startswith(f"{traces.RETRIES}:")


def _service_time(labels: dict[str, str], agent: str) -> Callable[[str], bool]:
    """A process's CPU or memory explains time spent inside it: the spans of that service in the
    agent's traces; when it is the agent's own process, also its tools and its own overhead."""
    service = labels.get("service_name", "")
    own = labels.get("gen_ai_agent_name", "").lower() == agent.lower()

    def match(category: str) -> bool:
        what = traces.base(category)
        if what == f"{traces.SERVICE}:{service}":
            return True
        return own and what.startswith((f"{traces.TOOL}:", traces.OVERHEAD))

    return match


def _local_time(_: dict[str, str], __: str) -> Callable[[str], bool]:
    """A busy host slows what runs on it for the agent: its tools and its own code (its LLM
    calls run elsewhere; another service's time is that service's CPU, checked on its own)."""
    return lambda c: traces.base(c).startswith((f"{traces.TOOL}:", traces.OVERHEAD))


def _model_time(labels: dict[str, str], _: str) -> Callable[[str], bool]:
    """A model's latency explains the time in its calls, failed, timed-out or not."""
    model = labels.get("gen_ai_request_model", "")
    return lambda c: traces.base(c) in (f"{traces.LLM}:{model}", f"{traces.PLANNING}:{model}")


def _model_failures(labels: dict[str, str], _: str) -> Callable[[str], bool]:
    """A model's errors explain the time of attempts that its failed calls made fail."""
    model = labels.get("gen_ai_request_model", "")
    mine = (f"{traces.LLM}:{model}", f"{traces.PLANNING}:{model}")
    return lambda c: _failed(c) and traces.base(c) in mine


def _retry_time(labels: dict[str, str], _: str) -> Callable[[str], bool]:
    reason = labels.get("atalaia_retry_reason", "")
    if reason in ("rate_limit", "llm_error"):
        llm = (f"{traces.LLM}:", f"{traces.PLANNING}:")
        return lambda c: _failed(c) and traces.base(c).startswith(llm)
    if reason in ("tool_error", "validation"):
        return lambda c: _failed(c) and traces.base(c).startswith(f"{traces.TOOL}:")
    return lambda c: _failed(c) or c.startswith(f"{traces.TIMEOUTS}:")


def _failed_attempts(_: dict[str, str], __: str) -> Callable[[str], bool]:
    return _failed


def _own_or_called_failures(labels: dict[str, str], agent: str) -> Callable[[str], bool]:
    """A service's error logs explain failed attempts of the agent's own process, or failed
    time inside that service (another service's errors fail nothing of this agent's)."""
    service = labels.get("service_name", "")
    if agent.lower() in (labels.get("gen_ai_agent_name", "").lower(), service.lower()):
        return _failed
    return lambda c: _failed(c) and traces.base(c) == f"{traces.SERVICE}:{service}"


def _tool_failures(labels: dict[str, str], _: str) -> Callable[[str], bool]:
    """A failing tool explains the time of its failed calls (any tool's, for an integration
    named differently from the tool that calls it)."""
    tool = labels.get("gen_ai_tool_name")
    if tool:
        return lambda c: _failed(c) and traces.base(c) == f"{traces.TOOL}:{tool}"
    return lambda c: _failed(c) and traces.base(c).startswith(f"{traces.TOOL}:")


def _queue_time(_: dict[str, str], __: str) -> Callable[[str], bool]:
    return lambda c: c == traces.QUEUE


def _restart_time(labels: dict[str, str], agent: str) -> Callable[[str], bool]:
    """A restart of the agent loses its in-flight attempts; of another agent, fills the queue."""
    own = labels.get("gen_ai_agent_name", "").lower() == agent.lower()
    return lambda c: c == traces.QUEUE or (own and _failed(c))


def _nothing(_: dict[str, str], __: str) -> Callable[[str], bool]:
    return lambda c: False


RATE = "1m"  # rate() window: four points of the 15 s export/scrape interval
# The collector's series, derived from every emitter's spans (docs/telemetry.md).
LLM_DURATION = "atalaia_genai_duration_seconds"
LLM_CALLS = "atalaia_genai_calls_total"
SIGNALS: tuple[Signal, ...] = (
    Signal(
        "cpu",
        "CPU of {service_name}",
        f"sum by (service_name, gen_ai_agent_name) (rate(process_cpu_time_seconds_total[{RATE}]))",
        "cores",
        0.1,
        _service_time,
        key=("service_name",),
    ),
    Signal(
        "memory",
        "memory of {service_name}",
        "sum by (service_name, gen_ai_agent_name) (process_memory_usage_bytes)",
        "bytes",
        100e6,
        _service_time,
        key=("service_name",),
    ),
    Signal(
        "host_cpu",
        "CPU of the host",
        f'sum(rate(system_cpu_time_seconds_total{{state!~"idle|wait"}}[{RATE}]))',
        "cores",
        0.25,
        _local_time,
    ),
    Signal(
        "host_memory",
        "memory used on the host",
        'sum(system_memory_usage_bytes{state="used"})',
        "bytes",
        500e6,
        _local_time,
    ),
    Signal(
        "llm_latency",
        "latency of {gen_ai_request_model} ({gen_ai_provider_name})",
        # Failed calls too: a call that timed out took the timeout, and that is the latency.
        "sum by (gen_ai_request_model, gen_ai_provider_name)"
        f" (rate({LLM_DURATION}_sum[{RATE}]))"
        " / sum by (gen_ai_request_model, gen_ai_provider_name)"
        f" (rate({LLM_DURATION}_count[{RATE}]))",
        "s",
        0.25,
        _model_time,
        key=("gen_ai_request_model",),
        measured_at_end=True,
    ),
    Signal(
        "llm_calls",
        "{agent}'s calls to {gen_ai_request_model}",
        f'sum by (gen_ai_request_model) (rate({LLM_CALLS}{{gen_ai_agent_name="{{agent}}"}}[{RATE}]))',  # noqa: E501
        "/s",
        0.05,
        _model_time,
        key=("gen_ai_request_model",),
        absent_is_zero=True,
    ),
    Signal(
        "llm_tokens",
        "{agent}'s input tokens to {gen_ai_request_model}",
        "sum by (gen_ai_request_model) (rate(atalaia_genai_tokens_total"
        f'{{gen_ai_agent_name="{{agent}}", gen_ai_token_type="input"}}[{RATE}]))',
        "tokens/s",
        50.0,
        _model_time,
        key=("gen_ai_request_model",),
        absent_is_zero=True,
    ),
    Signal(
        "llm_errors",
        "{gen_ai_request_model} ({gen_ai_provider_name}) calls failing with {error_type}",
        # Per error type, so that rate limits are told from server errors.
        f"sum by (gen_ai_request_model, gen_ai_provider_name, error_type)"
        f' (rate({LLM_CALLS}{{error_type!=""}}[{RATE}]))'
        f" / on (gen_ai_request_model, gen_ai_provider_name) group_left"
        f" sum by (gen_ai_request_model, gen_ai_provider_name)"
        f" (rate({LLM_CALLS}[{RATE}]))",
        "ratio",
        0.05,
        _model_failures,
        key=("gen_ai_request_model", "error_type"),
        absent_is_zero=True,
    ),
    Signal(
        "tool_errors",
        "{agent}'s tool {gen_ai_tool_name} failing",
        # The share of the agent's calls of each tool that failed: a tool can fail while the
        # tasks around it still succeed (the lead is lost, the task "works").
        "sum by (gen_ai_tool_name) (rate(atalaia_tool_calls_total"
        f'{{gen_ai_agent_name="{{agent}}", error_type!=""}}[{RATE}]))'
        " / sum by (gen_ai_tool_name) (rate(atalaia_tool_calls_total"
        f'{{gen_ai_agent_name="{{agent}}"}}[{RATE}]))',
        "ratio",
        0.1,
        _tool_failures,
        key=("gen_ai_tool_name",),
        absent_is_zero=True,
    ),
    Signal(
        "integration_errors",
        "{agent}'s integration {atalaia_integration_name} failing",
        "sum by (atalaia_integration_name) (rate(atalaia_integration_errors_total"
        f'{{gen_ai_agent_name="{{agent}}"}}[{RATE}]))',
        "/s",
        0.02,
        _tool_failures,
        key=("atalaia_integration_name",),
        absent_is_zero=True,
    ),
    Signal(
        "retries",
        "{agent}'s retries ({atalaia_retry_reason})",
        f'sum by (atalaia_retry_reason) (rate(atalaia_retries_total{{gen_ai_agent_name="{{agent}}"}}[{RATE}]))',  # noqa: E501
        "/s",
        0.03,
        _retry_time,
        key=("atalaia_retry_reason",),
        absent_is_zero=True,
    ),
    Signal(
        "errors",
        "{agent}'s {error_type} errors",
        f'sum by (error_type) (rate(atalaia_errors_total{{gen_ai_agent_name="{{agent}}"}}[{RATE}]))',  # noqa: E501
        "/s",
        0.03,
        _failed_attempts,
        key=("error_type",),
        absent_is_zero=True,
    ),
    Signal(
        "queue",
        "orchestrator queue depth",
        "sum(orchestrator_queue_depth)",
        "tasks",
        3.0,
        _queue_time,
    ),
    Signal(
        "restarts",
        "restarts of {gen_ai_agent_name}",
        f"sum by (gen_ai_agent_name) (increase(orchestrator_agent_restarts_total[{RATE}]))",
        "restarts",
        0.5,
        _restart_time,
        key=("gen_ai_agent_name",),
        absent_is_zero=True,
    ),
    # Gauges that fall when something is wrong, turned around so that a rise is the change:
    # they explain no time, only tasks an agent did not serve (see explain._is_own).
    Signal(
        "agent_down",
        "{gen_ai_agent_name} down",
        "1 - max by (gen_ai_agent_name) (orchestrator_agent_up)",
        "",
        0.5,
        _nothing,
        key=("gen_ai_agent_name",),
    ),
    Signal(
        "off_shift",
        "{gen_ai_agent_name} off shift",
        "1 - max by (gen_ai_agent_name) (orchestrator_agent_on_shift)",
        "",
        0.5,
        _nothing,
        key=("gen_ai_agent_name",),
    ),
    Signal(
        "budget",
        "budget throttling of {atalaia_department}",
        f'sum by (atalaia_department) (rate(orchestrator_task_failures_total{{reason="budget"}}[{RATE}]))',  # noqa: E501
        "/s",
        0.01,
        _nothing,
        key=("atalaia_department",),
        absent_is_zero=True,
    ),
    Signal(
        "error_logs",
        "error logs of {service_name}",
        # Error and fatal records per minute, counted by the collector from the records
        # themselves (atalaia_log_records_total): Loki is not needed to rank them.
        "sum by (service_name, gen_ai_agent_name) (rate(atalaia_log_records_total"
        f'{{atalaia_log_severity="error"}}[{RATE}])) * 60',
        "lines/min",
        3.0,
        _own_or_called_failures,
        key=("service_name",),
        absent_is_zero=True,
    ),
)


@dataclass(frozen=True)
class Level:
    """One series compared between the baseline and the slow period."""

    baseline: float  # median of the baseline points
    spread: float  # robust standard deviation of the baseline (1.4826 x MAD)
    window: float  # mean over the slow period
    peak: float  # largest point in the window
    onset: float | None  # first time (Unix s) the series crossed baseline + threshold
    anomaly: float  # 0 (no change) .. 1 (two doublings or more above the baseline)

    @property
    def change(self) -> float:
        return self.window - self.baseline


def level(
    points: list[tuple[float, float]],
    baseline: tuple[float, float],
    period: tuple[float, float],
    floor: float,
    search_from: float,
    absent_is_zero: bool = False,
) -> Level | None:
    """Compare `points` in `period` with `baseline`; None without points in both (a series
    with `absent_is_zero` and none in the baseline was 0 there)."""
    base = [v for t, v in points if baseline[0] <= t <= baseline[1] and math.isfinite(v)]
    now = [v for t, v in points if period[0] <= t <= period[1] and math.isfinite(v)]
    if not base and absent_is_zero:
        base = [0.0]
    if not base or not now:
        return None
    b = statistics.median(base)
    spread = 1.4826 * statistics.median(abs(v - b) for v in base)
    w = statistics.fmean(now)
    threshold = b + max(floor, 3 * spread)
    onset = None
    after = [(t, v) for t, v in points if search_from <= t <= period[1] and math.isfinite(v)]
    for (t, v), (_, v2) in zip(after, [*after[1:], after[-1]], strict=True):
        if v > threshold and v2 > threshold:  # two points in a row: not a single blip
            onset = t
            break
    anomaly = 0.0
    if w > threshold and onset is not None:  # above on average, and not by one blip
        anomaly = min(1.0, math.log2((w + floor) / (max(b, 0.0) + floor)) / 2)
    return Level(b, spread, w, max(now), onset, max(0.0, anomaly))
