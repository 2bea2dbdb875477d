"""The data behind `atalaia status`: every agent's state and numbers, from one aggregate PromQL
query per column (`by (gen_ai_agent_name)`, whatever the number of agents) and the alerts
Alertmanager has firing.

Agents are whoever any source names in the last hour (`SEEN_WINDOW`): the task and LLM-call
series the collector derives from any emitter's spans, the `atalaia` library's heartbeat, an
orchestrator's `orchestrator_agent_*` series, a scrape target labelled with the agent, plus any
agent that spent money or was restarted today, or that a firing alert names. A column whose
source does not report an agent is None (shown as "—"), never 0: an agent instrumented by
something else than the `atalaia` library, with no orchestrator, still has its tasks, success
rate, latency and cost.

The state of an agent (`state`), first match wins:

- ``restarting``: an orchestrator restarted it (`orchestrator_agent_restarts_total` rose) in
  the last `RESTART_WINDOW`. Two minutes is eight scrapes at the stack's 15 s interval, so a
  restart shows from the first refresh after Prometheus scraped it, for two minutes;
- ``down``: a liveness source says so: the orchestrator's `orchestrator_agent_up` is 0, a scrape
  target labelled with the agent is down (`up` 0), or the newest heartbeat (the library's or the
  orchestrator's record of it) is older than `STALE_AFTER_S` (120 s, AgentHeartbeatStale's
  threshold; an agent whose heartbeats stopped within the last hour stays listed as down);
- ``up``: a liveness source says it is up, or its heartbeat is fresh;
- None: no liveness source knows the agent (it only sends spans): its other columns still tell
  whether it works.

"Today" is the UTC day (since 00:00 UTC), the day the demo orchestrator's budgets reset on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from atalaia_ops.backends import Alertmanager, Prometheus, Sample
from atalaia_ops.cost import cost_usd, total

AGENT = "gen_ai_agent_name"  # the agent's label on every series and on the agents' alerts
SEEN_WINDOW = "1h"
STALE_AFTER_S = 120.0
RESTART_WINDOW = "2m"
DEFAULT_WINDOW = "5m"
TASKS = "atalaia_agent_tasks_total"
TASK_BUCKETS = "atalaia_agent_task_duration_seconds_bucket"
RESTARTS = "orchestrator_agent_restarts_total"
SEVERITY_ORDER = ("critical", "warning", "info")

# Where an agent is named, for the agent list: derived task and LLM-call series, heartbeats, an
# orchestrator's agent series and scrape targets that carry the agent label.
SOURCES = (
    TASKS,
    "atalaia_genai_calls_total",
    "atalaia_agent_heartbeat_timestamp_seconds",
    "orchestrator_agent_up",
    "orchestrator_agent_last_heartbeat_timestamp_seconds",
    "orchestrator_agent_on_shift",
    "up",
)


def today_window(at: float) -> tuple[float, str]:
    """(Unix time of 00:00 UTC on `at`'s day, a PromQL range from then to `at`)."""
    day = datetime.fromtimestamp(at, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = day.timestamp()
    return midnight, f"{max(1, int(at - midnight))}s"


def queries(window: str, today: str) -> dict[str, str]:
    """The PromQL of every column, each one aggregate query `by (gen_ai_agent_name)`."""
    a, seen = AGENT, SEEN_WINDOW
    present = "\n  or ".join(f'present_over_time({m}{{{a}!=""}}[{seen}])' for m in SOURCES)
    tasks = f"sum by ({a}) (increase({TASKS}[{window}]))"
    succeeded = f'sum by ({a}) (increase({TASKS}{{atalaia_task_outcome="success"}}[{window}]))'
    return {
        "seen": f"group by ({a}) (\n  {present}\n)",
        "up": f'min by ({a}) (orchestrator_agent_up or up{{{a}!=""}})',
        "on_shift": f"max by ({a}) (orchestrator_agent_on_shift)",
        "heartbeat_age_s": (
            f"time() - max by ({a}) (\n"
            f"  max_over_time(atalaia_agent_heartbeat_timestamp_seconds[{seen}])\n"
            f"  or max_over_time(orchestrator_agent_last_heartbeat_timestamp_seconds[{seen}])\n)"
        ),
        # 0, not absent, for an agent with task series but no finished task in the window.
        "tasks_per_min": (
            f"60 * sum by ({a}) (rate({TASKS}[{window}]))\n"
            f"or 0 * group by ({a}) (present_over_time({TASKS}[{seen}]))"
        ),
        # NaN (no task finished in the window) is None; all failed is 0, not absent.
        "success_rate": f"({succeeded} or 0 * {tasks})\n/ {tasks}",
        "p95_s": f"histogram_quantile(0.95, sum by ({a}, le) (rate({TASK_BUCKETS}[{window}])))",
        "cost_today_usd": cost_usd(today, by=(a,)),
        # Exact counts (anchored: no extrapolation to the window's edges; the orchestrator
        # exports each agent's counter at 0 from the start).
        "restarts_today": f"sum by ({a}) ({total(RESTARTS, today)})",
        "restarts_recent": f"sum by ({a}) ({total(RESTARTS, RESTART_WINDOW)})",
    }


@dataclass(frozen=True)
class Alert:
    alertname: str
    severity: str | None
    starts_at: str | None  # RFC 3339, as Alertmanager gives it
    summary: str | None


@dataclass
class AgentStatus:
    agent: str
    state: str | None  # "up" | "restarting" | "down"; None: no liveness source knows it
    up: bool | None  # orchestrator_agent_up / scrape target up (the lowest, if both)
    on_shift: bool | None
    heartbeat_age_s: float | None
    tasks_per_min: float | None
    success_rate: float | None  # 0..1 over the window
    p95_s: float | None  # task duration
    cost_today_usd: float | None
    restarts_today: int | None
    restarts_recent: int | None  # in the last RESTART_WINDOW
    alerts: list[Alert] = field(default_factory=list)


@dataclass
class FleetStatus:
    at: float  # Unix time every query was evaluated at
    window: str  # of tasks/min, success rate and p95
    today_since: float  # 00:00 UTC: cost and restarts count from here
    agents: list[AgentStatus]
    other_alerts: list[Alert]  # firing alerts that name no agent
    stale_since: float | None = None  # set when the latest refresh failed: data as of `at`
    error: str | None = None  # why it failed


def state(
    up: bool | None, heartbeat_age_s: float | None, restarts_recent: int | None
) -> str | None:
    """The state rule of the module's docstring."""
    if restarts_recent:
        return "restarting"
    if up is False or (heartbeat_age_s is not None and heartbeat_age_s > STALE_AFTER_S):
        return "down"
    if up is True or heartbeat_age_s is not None:
        return "up"
    return None


def _by_agent(samples: Iterable[Sample]) -> dict[str, float | None]:
    """agent -> value; NaN (0/0, an empty histogram) is None."""
    return {
        name: None if math.isnan(s.value) else s.value
        for s in samples
        if (name := s.labels.get(AGENT))
    }


def _alert(raw: dict[str, Any]) -> Alert:
    labels, notes = raw.get("labels") or {}, raw.get("annotations") or {}
    return Alert(
        alertname=str(labels.get("alertname", "")),
        severity=labels.get("severity"),
        starts_at=raw.get("startsAt"),
        summary=notes.get("summary"),
    )


def _alert_key(alert: Alert) -> tuple[int, str]:
    rank = SEVERITY_ORDER.index(alert.severity) if alert.severity in SEVERITY_ORDER else 3
    return rank, alert.alertname


def match_alerts(raw: Iterable[dict[str, Any]]) -> tuple[dict[str, list[Alert]], list[Alert]]:
    """Firing alerts by the agent their gen_ai_agent_name label names, and the others; alerts of
    severity "none" (the Watchdog, always firing by design) are left out."""
    per_agent: dict[str, list[Alert]] = {}
    others: list[Alert] = []
    for a in raw:
        labels = a.get("labels") or {}
        if labels.get("severity") == "none":
            continue
        name = labels.get(AGENT)
        (per_agent.setdefault(name, []) if name else others).append(_alert(a))
    for alerts in per_agent.values():
        alerts.sort(key=_alert_key)
    return per_agent, sorted(others, key=_alert_key)


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def _flag(value: float | None) -> bool | None:
    return None if value is None else value >= 1


def _agent(name: str, cols: dict[str, dict[str, float | None]], alerts: list[Alert]) -> AgentStatus:
    up = _flag(cols["up"].get(name))
    age = cols["heartbeat_age_s"].get(name)
    age = None if age is None else max(0.0, age)  # a sender's clock a little ahead
    recent = _int(cols["restarts_recent"].get(name))
    return AgentStatus(
        agent=name,
        state=state(up, age, recent),
        up=up,
        on_shift=_flag(cols["on_shift"].get(name)),
        heartbeat_age_s=age,
        tasks_per_min=cols["tasks_per_min"].get(name),
        success_rate=cols["success_rate"].get(name),
        p95_s=cols["p95_s"].get(name),
        cost_today_usd=cols["cost_today_usd"].get(name),
        restarts_today=_int(cols["restarts_today"].get(name)),
        restarts_recent=recent,
        alerts=alerts,
    )


def collect(
    prom: Prometheus, am: Alertmanager, at: float, window: str = DEFAULT_WINDOW
) -> FleetStatus:
    """One refresh: every column's query at `at`, then Alertmanager's firing alerts (now).

    Raises BackendError (Unreachable, QueryError) when either backend fails.
    """
    midnight, today = today_window(at)
    cols = {name: _by_agent(prom.query(q, at)) for name, q in queries(window, today).items()}
    per_agent, others = match_alerts(am.alerts())
    names = set(per_agent).union(*cols.values())
    agents = [_agent(n, cols, per_agent.get(n, [])) for n in sorted(names, key=str.casefold)]
    return FleetStatus(at, window, midnight, agents, others)


def to_dict(status: FleetStatus) -> dict[str, Any]:
    """The `--json` document: stable keys, numbers as numbers, None (null) for absent."""
    return asdict(status)
