"""`atalaia status [--watch] [--json]`: every agent of the fleet on one screen.

The numbers and the state rule are `atalaia_ops.fleet_status`'s; this module draws them with
rich: a table on a terminal, redrawn in place every `--interval` seconds with `--watch`
(rich.live). Not a terminal (a pipe, a file, CI) or NO_COLOR set: no colours or styles, and
with `--watch` off a terminal each refresh is printed after the previous one. `--json` prints
the document `fleet_status.to_dict` builds (one compact line per refresh with `--watch`).

A backend that fails is one line on stderr naming it, its URL and the cause, and exit status 2;
with `--watch` the last data stays on screen marked "stale since" and the next refresh retries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from atalaia_ops.backends import (
    Alertmanager,
    BackendError,
    Prometheus,
    add_backend_args,
    parse_duration,
)
from atalaia_ops.fleet_status import (
    DEFAULT_WINDOW,
    RESTART_WINDOW,
    AgentStatus,
    Alert,
    FleetStatus,
    collect,
    to_dict,
    today_window,
)

EXIT_BACKEND, EXIT_NO_AGENTS = 1, 3  # as the other insight commands (docs/insight.md)
DEFAULT_INTERVAL_S = 5.0
TIMEOUT_S = 10.0  # per query: a refresh should not hang on a backend that stopped answering
PLAIN_WIDTH = 160  # off a terminal (no width to ask for) unless $COLUMNS says otherwise
DASH = "—"
STATE_STYLE = {"up": "green", "restarting": "bold yellow", "down": "bold red"}

Show = Callable[[FleetStatus], None]


# --- formatting --------------------------------------------------------------------------------


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _money(usd: float | None) -> str:
    if usd is None:
        return DASH
    return f"${usd:.4f}" if 0 < abs(usd) < 0.01 else f"${usd:,.2f}"


def _number(value: float | int | None, fmt: str = "{:.1f}") -> str:
    return DASH if value is None else fmt.format(value)


def _flag(value: bool | None, yes: str, no: str) -> str:
    return DASH if value is None else (yes if value else no)


def _alerts(alerts: list[Alert]) -> Text:
    """Alert names, most severe first; one name firing for several series (TargetDown for three
    jobs) once, with its count: "TargetDown (3)". --json keeps every alert."""
    counts: dict[tuple[str, str | None], int] = {}
    for alert in alerts:
        key = (alert.alertname, alert.severity)
        counts[key] = counts.get(key, 0) + 1
    text = Text()
    for i, ((name, severity), n) in enumerate(counts.items()):
        text.append(", " if i else "")
        text.append(name, "bold red" if severity == "critical" else "yellow")
        text.append(f" ({n})" if n > 1 else "")
    return text


def _row(a: AgentStatus) -> list[RenderableType]:
    success = None if a.success_rate is None else a.success_rate * 100
    return [
        a.agent,
        Text(a.state or DASH, STATE_STYLE.get(a.state or "", "dim")),
        _flag(a.on_shift, "on", "off"),
        _duration(a.heartbeat_age_s),
        _number(a.tasks_per_min),
        _number(success, "{:.1f}%"),
        _duration(a.p95_s),
        _money(a.cost_today_usd),
        _number(a.restarts_today, "{}"),
        _alerts(a.alerts),
    ]


def table(status: FleetStatus) -> Table:
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for name, justify in (
        ("agent", "left"),
        ("state", "left"),
        ("shift", "left"),
        ("heartbeat", "right"),
        ("tasks/min", "right"),
        ("success", "right"),
        ("p95", "right"),
        ("cost today", "right"),
        ("restarts", "right"),
        ("alerts", "left"),
    ):
        t.add_column(name, justify=justify, no_wrap=name != "alerts")  # type: ignore[arg-type]
    for agent in status.agents:
        t.add_row(*_row(agent))
    return t


def _heading(status: FleetStatus) -> Text:
    counts = {s: sum(a.state == s for a in status.agents) for s in ("up", "restarting", "down")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    head = Text(f"Atalaia fleet at {_clock(status.at)}: ", style="bold")
    head.append(f"{len(status.agents)} agents" + (f" ({summary})" if summary else ""))
    return head


def render(status: FleetStatus, interval: float | None = None) -> RenderableType:
    """The screen: heading, the table, what the columns cover, other alerts, staleness."""
    parts: list[RenderableType] = [_heading(status)]
    if status.agents:
        parts.append(table(status))
    elif status.error is None:
        parts.append(
            "No agent reported by any source in the last hour: is anything sending telemetry?"
        )
    parts.append(
        Text(
            f"tasks/min, success and p95 over the last {status.window}; cost and restarts since "
            f"00:00 UTC; restarting: restarted within {RESTART_WINDOW}; {DASH}: no source "
            "reports it",
            style="dim",
        )
    )
    if status.other_alerts:
        line = Text("Firing alerts naming no agent: ")
        line.append_text(_alerts(status.other_alerts))
        parts.append(line)
    if status.error is not None:
        since = status.stale_since or status.at
        what = f"STALE since {_clock(since)}" if status.agents else "NO DATA"
        retry = f"; retrying every {interval:g}s" if interval else ""
        parts.append(Text(f"{what}: {status.error}{retry}", style="bold red"))
    return Group(*parts)


# --- output ------------------------------------------------------------------------------------


def make_console(file: TextIO, environ: Mapping[str, str]) -> Console:
    """A rich console for `file`: styled only on a terminal without NO_COLOR."""
    try:
        tty = file.isatty()
    except (AttributeError, ValueError):
        tty = False
    plain = not tty or bool(environ.get("NO_COLOR"))
    width = None if tty else int(environ.get("COLUMNS") or PLAIN_WIDTH)
    return Console(
        file=file,
        force_terminal=tty,
        color_system=None if plain else "auto",
        no_color=plain,
        highlight=False,
        width=width,
    )


@contextmanager
def display(console: Console, *, as_json: bool, watch: bool, interval: float) -> Iterator[Show]:
    """How each refresh is shown: JSON, redrawn in place (a terminal with --watch), or printed."""
    out = console.file
    if as_json:

        def show_json(status: FleetStatus) -> None:
            doc = to_dict(status)
            out.write((json.dumps(doc) if watch else json.dumps(doc, indent=2)) + "\n")
            out.flush()

        yield show_json
    elif watch and console.is_terminal and not console.is_dumb_terminal:
        with Live(console=console, auto_refresh=False) as live:
            yield lambda status: live.update(render(status, interval), refresh=True)
    else:

        def show_text(status: FleetStatus) -> None:
            with console.capture() as frame:
                console.print(render(status, interval if watch else None))
            text = frame.get()
            if not console.is_terminal:  # a file or a pipe: no padding at the ends of lines
                text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
            out.write(text + ("\n" if watch else ""))
            out.flush()

        yield show_text


# --- the command -------------------------------------------------------------------------------


def one_line(error: BackendError) -> str:
    """The error on one line: a backend's message may span several (a proxy's HTML page)."""
    return " ".join(str(error).split())


def stale(last: FleetStatus | None, error: BackendError, since: float, window: str) -> FleetStatus:
    """What a refresh that failed shows: the last data (or none yet), stale since `since`."""
    if last is None:
        midnight, _ = today_window(since)
        return FleetStatus(since, window, midnight, [], [], since, one_line(error))
    return replace(last, stale_since=since, error=one_line(error))


def watch(
    fetch: Callable[[], FleetStatus],
    show: Show,
    *,
    interval: float,
    window: str,
    count: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> int:
    """Refresh every `interval` seconds (`count` times, or until Ctrl-C: exit 0). A failed
    refresh keeps the last data, marked stale, and the next one retries."""
    last: FleetStatus | None = None
    failed_since: float | None = None
    done = 0
    try:
        while True:
            started = time.monotonic()
            try:
                last, failed_since = fetch(), None
                shown = last
            except BackendError as e:
                failed_since = failed_since or clock()
                shown = stale(last, e, failed_since, window)
            show(shown)
            done += 1
            if count is not None and done >= count:
                return 0 if shown.error is None else EXIT_BACKEND
            sleep(max(0.0, started + interval - time.monotonic()))
    except KeyboardInterrupt:
        return 0


def once(fetch: Callable[[], FleetStatus], show: Show) -> int:
    """One refresh: 0, or 2 when a backend fails (one line on stderr), 3 when no agent is known."""
    try:
        status = fetch()
    except BackendError as e:
        print(f"atalaia status: {one_line(e)}", file=sys.stderr)
        return EXIT_BACKEND
    except KeyboardInterrupt:
        return 130
    show(status)
    return 0 if status.agents else EXIT_NO_AGENTS


def _run(args: argparse.Namespace) -> int:
    console = make_console(sys.stdout, os.environ)
    with (
        Prometheus(args.prometheus_url, timeout=TIMEOUT_S) as prom,
        Alertmanager(args.alertmanager_url, timeout=TIMEOUT_S) as am,
        display(console, as_json=args.json, watch=args.watch, interval=args.interval) as show,
    ):

        def fetch() -> FleetStatus:
            return collect(prom, am, round(time.time(), 3), args.window)

        if not args.watch:
            return once(fetch, show)
        return watch(fetch, show, interval=args.interval, window=args.window, count=args.count)


def _positive(kind: type[float] | type[int]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive {kind.__name__}")
        return value

    return parse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status",
        help="every agent on one screen: state, shift, heartbeat, tasks, success, p95, cost, "
        "restarts, alerts",
        description="Every agent's state and numbers from Prometheus and the alerts "
        "Alertmanager has firing, on one screen (docs/insight.md says what each column and "
        "state means). Exit 2 when a backend fails, 3 when no source names any agent.",
    )
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument(
        "--interval",
        type=_positive(float),
        default=DEFAULT_INTERVAL_S,
        help=f"seconds between refreshes with --watch (default {DEFAULT_INTERVAL_S:g})",
    )
    p.add_argument(
        "--count",
        type=_positive(int),
        default=None,
        help="with --watch: stop after this many refreshes (default: until Ctrl-C)",
    )
    p.add_argument(
        "--json", action="store_true", help="print JSON (with --watch: one line per refresh)"
    )
    p.add_argument(
        "--window",
        type=parse_duration,
        default=DEFAULT_WINDOW,
        help=f"window of tasks/min, success rate and p95 (default {DEFAULT_WINDOW})",
    )
    add_backend_args(p, alertmanager=True, at=False)
    p.set_defaults(func=_run)
