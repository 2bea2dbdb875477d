"""`atalaia explain --agent NAME`: why was this agent slow or failing, and since when?

Ranks from Prometheus alone: the agent's tasks and where their time went (the series the
collector derives from any emitter's spans), and what changed elsewhere at the same time; Tempo
adds example traces and Loki the most frequent error messages when they answer. Prints ranked
likely causes with their evidence and Grafana Explore links (`--json`: the same as JSON), and
silent failures and restarts even when the tasks look fine. See docs/insight.md and
`atalaia_ops.explain` for the method.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from atalaia_ops import explain as ex
from atalaia_ops import traces
from atalaia_ops.backends import (
    BackendError,
    Loki,
    NoData,
    Prometheus,
    Tempo,
    add_backend_args,
    parse_time,
)
from atalaia_ops.explore_links import DEFAULT_GRAFANA_URL, explore

EXIT_BACKEND, EXIT_NO_DATA = 1, 3
DEFAULT_WINDOW_S = 15 * 60
DEFAULT_BASELINE_S = 30 * 60


def _periods(args: argparse.Namespace, trace_start: float | None) -> tuple[ex.Period, ex.Period]:
    if trace_start is not None:
        window = ex.Period(trace_start - 60, trace_start + 600)
    else:
        end = args.to if args.to is not None else time.time()
        start = args.from_ if args.from_ is not None else end - DEFAULT_WINDOW_S
        window = ex.Period(start, end)
    if args.baseline_from is not None:
        baseline = ex.Period(args.baseline_from, args.baseline_to)
    else:
        baseline = ex.Period(window.start - DEFAULT_BASELINE_S, window.start)
    return window, baseline


def _check(args: argparse.Namespace) -> str | None:
    if args.trace and (args.from_ is not None or args.to is not None):
        return "--trace and --from/--to are exclusive: a trace brings its own window"
    if (args.baseline_from is None) != (args.baseline_to is None):
        return "--baseline-from and --baseline-to go together"
    if args.baseline_from is not None and args.baseline_from >= args.baseline_to:
        return "--baseline-from must be before --baseline-to"
    if args.from_ is not None and args.to is not None and args.from_ >= args.to:
        return "--from must be before --to"
    return None


def _trace_agent(tempo: Tempo, trace_id: str, agent: str | None) -> tuple[str, float]:
    """The trace's start, and its agent (the one given, or the trace's only agent)."""
    parsed = traces.parse(trace_id, tempo.trace(trace_id))
    if parsed is None:
        raise ex.ExplainError(f"trace {trace_id} has no spans")
    agents = sorted({s.agent for s in parsed.spans if s.operation == "invoke_agent" and s.agent})
    if agent is None:
        if len(agents) != 1:
            found = ", ".join(agents) or "none"
            raise ex.ExplainError(f"trace {trace_id} has agents: {found}; choose one with --agent")
        agent = agents[0]
    return agent, parsed.start


def to_json(e: ex.Explanation, grafana: str) -> dict[str, Any]:
    data = asdict(e)
    span = (min(e.baseline.start, e.window.start), e.window.end)
    data["slow_tasks_url"] = explore(grafana, "tempo", e.slow_tasks_query, *span)
    for cause in [*data["causes"], *data["other_changes"], *data["silent_failures"]]:
        cause["explore_url"] = explore(grafana, cause["backend"], cause["query"], *span)
    for example in data["examples"]:
        example["explore_url"] = explore(
            grafana, "tempo", example["trace_id"], example["start"] - 60, example["start"] + 600
        )
    return data


def _cause_lines(n: int, c: dict[str, Any]) -> list[str]:
    head = f"{n}. {c['title']}  [{c['confidence']}, score {c['score']:.2f}]"
    return [head, *(f"   - {line}" for line in c["evidence"]), f"   explore: {c['explore_url']}"]


def to_text(e: ex.Explanation, data: dict[str, Any]) -> str:
    c = ex.clock
    out = [
        f"atalaia explain: {e.agent}, {c(e.window.start)} .. {c(e.window.end)}"
        + (f" (trace {e.trace_id})" if e.trace_id else "")
        + f"; baseline {c(e.baseline.start)} .. {c(e.baseline.end)}",
        "",
        e.summary,
    ]
    if e.symptom_onset is not None:
        out.append(f"It began at {c(e.symptom_onset)}.")
    out.append(f"Slow tasks in Explore: {data['slow_tasks_url']}")
    if e.failure_reasons:
        reasons = ", ".join(f"{k} ({v})" for k, v in e.failure_reasons.items())
        out.append(f"Failure reasons: {reasons}.")
    if e.breakdown:
        how = (
            "critical path of the task"
            if e.trace_id
            else "mean per task over the incident, from span metrics"
        )
        out += ["", f"Where the time went ({how}; vs baseline):"]
        for p in e.breakdown[:8]:
            out.append(
                f"  {p.label:<44} {p.window_s:8.2f} s  (baseline {p.baseline_s:6.2f} s)  "
                f"{p.delta_s:+7.2f} s  {p.share:4.0%}"
            )
    if data["silent_failures"]:
        out += ["", "Failing although the tasks look fine:"]
        for cause in data["silent_failures"]:
            out.append(f"  - {cause['evidence'][0]}: {cause['explore_url']}")
    if e.events:
        out += ["", "Events:", *(f"  - {x}" for x in e.events)]
    out += ["", "Likely causes:" if e.causes else "Likely causes: none significant."]
    for n, cause in enumerate(data["causes"], 1):
        out += _cause_lines(n, cause)
    if data["other_changes"]:
        out += ["", "Other changes (not significant here):"]
        for cause in data["other_changes"][:5]:
            out.append(f"  - {cause['title']} (score {cause['score']:.2f}): {cause['evidence'][0]}")
    if data["examples"]:
        out += ["", "Slowest tasks:"]
        for x in data["examples"]:
            state = "failed" if x["failed"] else "ok"
            out.append(
                f"  - {x['trace_id']} {x['duration_s']:.1f} s at {c(x['start'])} ({state}), "
                f"mostly {x['top']}: {x['explore_url']}"
            )
    out += ["", "Uncertainty:", *(f"  - {u}" for u in e.uncertainty)]
    return "\n".join(out)


def _run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"atalaia explain: {problem}", file=sys.stderr)
        return 2
    if not args.agent and not args.trace:
        print("atalaia explain: --agent is required (or --trace ID)", file=sys.stderr)
        return 2
    try:
        with (
            Prometheus(args.prometheus_url) as prom,
            Loki(args.loki_url) as loki,
            Tempo(args.tempo_url) as tempo,
        ):
            agent, trace_start = args.agent, None
            if args.trace:
                agent, trace_start = _trace_agent(tempo, args.trace, args.agent)
            window, baseline = _periods(args, trace_start)
            result = ex.explain(agent, window, baseline, prom, loki, tempo, args.trace)
    except (ex.ExplainError, NoData) as e:
        print(f"atalaia explain: no data: {e}", file=sys.stderr)
        return EXIT_NO_DATA
    except BackendError as e:
        print(f"atalaia explain: {e}", file=sys.stderr)
        return EXIT_BACKEND
    data = to_json(result, args.grafana_url)
    print(json.dumps(data, indent=2) if args.json else to_text(result, data))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "explain",
        help="why was an agent slow or failing: ranked causes with evidence",
        description="Finds the agent's slow and failed tasks and where their time went "
        "(Prometheus: the collector's span metrics), compares with the agent's baseline and "
        "with what changed elsewhere at the same time, and ranks the likely causes; Tempo adds "
        "example traces and Loki error messages when they answer. Times are "
        "Unix seconds, ISO 8601, `now` or `now-15m`. Exit 1 when a backend fails, 2 on bad "
        "arguments, 3 when there are no tasks to explain or compare with.",
    )
    p.add_argument("--agent", help="the agent's gen_ai.agent.name (e.g. Sigma)")
    p.add_argument("--from", dest="from_", type=parse_time, help="window start (default to-15m)")
    p.add_argument("--to", type=parse_time, help="window end (default now)")
    p.add_argument("--trace", help="explain this one task (a trace id) instead of a window")
    p.add_argument(
        "--baseline-from",
        type=parse_time,
        help="baseline start (default: the 30 minutes before the window)",
    )
    p.add_argument("--baseline-to", type=parse_time, help="baseline end")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--grafana-url",
        default=DEFAULT_GRAFANA_URL,
        help=f"for the Explore links (default {DEFAULT_GRAFANA_URL})",
    )
    add_backend_args(p, loki=True, tempo=True, at=False)
    p.set_defaults(func=_run)
