"""`atalaia status` against the native stack and the session's demo fleet.

- Every column, for every agent, equals PromQL written here by hand, evaluated at the same
  instant (a minute in the past, so every sample up to it has arrived), and the state follows
  the documented rule from those numbers: the columns as one aggregate query each are checked
  against simpler per-source queries (two heartbeat sources read apart, the success rate divided
  in Python, the cost multiplied out in Python from tokens and prices, "today" as Unix time
  modulo a day). The alerts per agent are Alertmanager's own answer, matched here by label.
- `atalaia status` as a user runs it: the table lists every agent of the demo fleet, up, with
  its numbers; `--json` has the documented shape, and its states follow the rule from its own
  numbers.
- A crash loop: `atalaia status --watch --json` runs as its own process while Helix's process is
  killed three times through the orchestrator's `agent_crash` fault. The first refresh that
  starts after Prometheus holds a restart by the supervisor shows Helix `restarting`; the first
  that starts after Alertmanager has AgentRestartLoop firing for Helix shows the alert and the
  three restarts, and so does the table. Ctrl-C (SIGINT) ends the watch with status 0.
- Backends that cannot answer (a closed port, a URL that is not Alertmanager's API): one line on
  stderr naming the backend, exit status 1, nothing on stdout, no traceback.
"""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from atalaia_ops.backends import Alertmanager
from atalaia_ops.backends import Prometheus as PromClient
from atalaia_ops.cli import main
from atalaia_ops.fleet_status import collect
from demo_agents import fleet_config
from tests.e2e.backends import eventually
from tests.e2e.conftest import FleetRun
from tools.upstream import REPO

AGENT = "gen_ai_agent_name"
FLEET = {a.name for a in fleet_config.AGENTS}
INTERVAL_S = 2.0
REL = 1e-9
MEASURED = ("tasks_per_min", "success_rate", "p95_s", "cost_today_usd", "heartbeat_age_s")
EXACT = ("up", "on_shift", "restarts_today", "restarts_recent")
# The table's header, as words ("cost today" is one column)
COLUMNS = ["agent", "state", "shift", "heartbeat", "tasks/min", "success", "p95", "cost", "today"]
COLUMNS += ["restarts", "alerts"]
DOC_KEYS = {"at", "window", "today_since", "agents", "other_alerts", "stale_since", "error"}
AGENT_KEYS = {"agent", "state", *MEASURED, *EXACT, "alerts"}
ALERT_KEYS = {"alertname", "severity", "starts_at", "summary"}
# Always on shift, and not the tour's agent_crash victim (Nova): no restart of its own yet.
VICTIM = "Helix"
LOOP = "AgentRestartLoop"  # more than 2 restarts in 15 minutes
CRASHES = 3


def backend_args(urls: dict[str, str]) -> list[str]:
    return ["--prometheus-url", urls["prometheus"], "--alertmanager-url", urls["alertmanager"]]


def by_agent(prom_url: str, promql: str, at: float | None = None) -> dict[str, float]:
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = at
    r = httpx.get(f"{prom_url}/api/v1/query", params=params, timeout=30)
    r.raise_for_status()
    data = r.json()["data"]
    assert data["resultType"] == "vector", data
    return {s["metric"][AGENT]: float(s["value"][1]) for s in data["result"]}


def hand_columns(prom_url: str, at: float) -> dict[str, dict[str, Any]]:
    """Every column, per agent, from plain queries and Python arithmetic."""

    def q(promql: str) -> dict[str, float]:
        return by_agent(prom_url, promql, at)

    today = f"{max(1, int(at % 86400))}s"  # Unix time has no leap seconds: a UTC day is 86400 s
    tasks = "atalaia_agent_tasks_total"
    known = {
        m: q(f'count by ({AGENT}) (count_over_time({m}{{{AGENT}!=""}}[1h]))')
        for m in (
            tasks,
            "atalaia_genai_calls_total",
            "atalaia_agent_heartbeat_timestamp_seconds",
            "orchestrator_agent_up",
            "orchestrator_agent_last_heartbeat_timestamp_seconds",
            "orchestrator_agent_on_shift",
            "up",
        )
    }
    lib_beat = q(f"max by ({AGENT}) (max_over_time(atalaia_agent_heartbeat_timestamp_seconds[1h]))")
    orch_beat = q(
        f"max by ({AGENT}) (max_over_time(orchestrator_agent_last_heartbeat_timestamp_seconds[1h]))"
    )
    beats = {
        a: max(lib_beat.get(a, -math.inf), orch_beat.get(a, -math.inf))
        for a in {*lib_beat, *orch_beat}
    }
    agent_up = q(f"min by ({AGENT}) (orchestrator_agent_up)")
    target_up = q(f'min by ({AGENT}) (up{{{AGENT}!=""}})')
    ups = {a: min(agent_up.get(a, 1), target_up.get(a, 1)) for a in {*agent_up, *target_up}}
    rate = q(f"sum by ({AGENT}) (rate({tasks}[5m]))")
    finished = q(f"sum by ({AGENT}) (increase({tasks}[5m]))")
    succeeded = q(f'sum by ({AGENT}) (increase({tasks}{{atalaia_task_outcome="success"}}[5m]))')
    p95 = q(
        f"histogram_quantile(0.95, sum by ({AGENT}, le) "
        "(rate(atalaia_agent_task_duration_seconds_bucket[5m])))"
    )
    # Cost: tokens by agent, model and type, times the price rules' price of that model and type.
    r = httpx.get(
        f"{prom_url}/api/v1/query",
        params={
            "query": "max by (gen_ai_request_model, gen_ai_token_type) "
            f"(last_over_time(atalaia:genai_model_price_usd_per_token[{today}]))",
            "time": at,
        },
        timeout=30,
    )
    r.raise_for_status()
    prices = {
        (s["metric"]["gen_ai_request_model"], s["metric"]["gen_ai_token_type"]): float(
            s["value"][1]
        )
        for s in r.json()["data"]["result"]
    }
    r = httpx.get(
        f"{prom_url}/api/v1/query",
        params={
            "query": f"sum by ({AGENT}, gen_ai_request_model, gen_ai_token_type) "
            f"(increase(atalaia_genai_tokens_total[{today}] anchored))",
            "time": at,
        },
        timeout=30,
    )
    r.raise_for_status()
    cost: dict[str, float] = {}
    for s in r.json()["data"]["result"]:
        m = s["metric"]
        price = prices.get((m["gen_ai_request_model"], m["gen_ai_token_type"]))
        if price is not None:
            cost[m[AGENT]] = cost.get(m[AGENT], 0.0) + float(s["value"][1]) * price
    restarts = "increase(orchestrator_agent_restarts_total[{w}] anchored)"
    return {
        "known": {a: 1 for k in known.values() for a in k},
        "up": {a: v >= 1 for a, v in ups.items()},
        "on_shift": {
            a: v >= 1 for a, v in q(f"max by ({AGENT}) (orchestrator_agent_on_shift)").items()
        },
        "heartbeat_age_s": {a: max(0.0, at - b) for a, b in beats.items()},
        "tasks_per_min": {
            **{a: 0.0 for a in known[tasks]},
            **{a: v * 60 for a, v in rate.items()},
        },
        "success_rate": {a: succeeded.get(a, 0.0) / n for a, n in finished.items() if n > 0},
        "p95_s": {a: v for a, v in p95.items() if not math.isnan(v)},
        "cost_today_usd": cost,
        "restarts_today": {
            a: round(v) for a, v in q(f"sum by ({AGENT}) ({restarts.format(w=today)})").items()
        },
        "restarts_recent": {
            a: round(v) for a, v in q(f"sum by ({AGENT}) ({restarts.format(w='2m')})").items()
        },
    }


def hand_state(up: bool | None, age: float | None, recent: int | None) -> str | None:
    """The rule docs/insight.md states, written again."""
    if recent is not None and recent > 0:
        return "restarting"
    if up is False or (age is not None and age > 120):
        return "down"
    if up or age is not None:
        return "up"
    return None


def firing_by_agent(am_url: str) -> dict[str, set[str]]:
    """Alertmanager's firing alerts (neither silenced nor inhibited) by the agent they name."""
    r = httpx.get(
        f"{am_url}/api/v2/alerts",
        params={"active": "true", "silenced": "false", "inhibited": "false"},
        timeout=10,
    )
    r.raise_for_status()
    out: dict[str, set[str]] = {}
    for a in r.json():
        labels = a["labels"]
        if (
            a["status"]["state"] == "active"
            and labels.get(AGENT)
            and labels.get("severity") != "none"
        ):
            out.setdefault(labels[AGENT], set()).add(labels["alertname"])
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)


def test_status_columns_match_hand_written_promql(native_stack, fleet_run: FleetRun) -> None:
    urls = native_stack.urls
    at = math.floor(time.time()) - 60 + 0.5
    assert at > fleet_run.started + 60, "the fleet has not run long enough"

    def consistent() -> tuple[Any, dict[str, set[str]]] | None:
        before = firing_by_agent(urls["alertmanager"])
        with PromClient(urls["prometheus"]) as prom, Alertmanager(urls["alertmanager"]) as am:
            status = collect(prom, am, at)
        # Alerts are Alertmanager's now: compare when they did not change meanwhile.
        return (status, before) if firing_by_agent(urls["alertmanager"]) == before else None

    status, alerts = eventually(consistent, timeout=60, what="Alertmanager's alerts settle")
    hand = hand_columns(urls["prometheus"], at)
    agents = {a.agent: a for a in status.agents}
    listed = set(agents)
    expected = {a for col in hand.values() for a in col} | set(alerts)
    assert listed == expected, listed ^ expected
    assert listed >= FLEET, FLEET - listed

    wrong = []
    for name, a in agents.items():
        for column in MEASURED:
            got, want = getattr(a, column), hand[column].get(name)
            if not close(got, want):
                wrong.append(f"{name} {column}: {got} != hand-computed {want}")
        for column in EXACT:
            got, want = getattr(a, column), hand[column].get(name)
            if got != want:
                wrong.append(f"{name} {column}: {got} != hand-computed {want}")
        up, age = hand["up"].get(name), hand["heartbeat_age_s"].get(name)
        want_state = hand_state(up, age, hand["restarts_recent"].get(name))
        if a.state != want_state:
            wrong.append(f"{name} state: {a.state} != {want_state}")
        if {x.alertname for x in a.alerts} != alerts.get(name, set()):
            wrong.append(f"{name} alerts: {a.alerts} != {alerts.get(name)}")
    assert not wrong, "\n".join(wrong)

    # The demo fleet fills every column: the atalaia library (heartbeats, spans) and the
    # orchestrator (up, shifts, restarts) both report each agent.
    for name in FLEET:
        a = agents[name]
        for column in (*MEASURED, "up", "on_shift", "restarts_today"):
            assert getattr(a, column) is not None, (name, column)
    # The tour crashed Nova (its default agent_crash victim): today's restarts count it, once
    # the supervisor's restart (5 s) has been scraped (15 s).
    if "agent_crash" in fleet_run.faults and fleet_run.phases["tour"][0] < at - 30:
        assert agents["Nova"].restarts_today >= 1


def table_rows(out: str) -> dict[str, list[str]]:
    """The table's rows by agent (the first word of a line that follows the header)."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == COLUMNS)
    rows = {}
    for line in lines[header + 2 :]:  # the header, then its rule
        if line.startswith("tasks/min, success and p95 over"):
            break
        rows[line.split()[0]] = line.split()
    return rows


def test_status_table_and_json(native_stack, fleet_run: FleetRun, capsys) -> None:
    urls = native_stack.urls
    argv = ["status", *backend_args(urls)]
    started = time.monotonic()
    assert main(argv) == 0
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    assert err == ""
    assert "\x1b" not in out  # not a terminal: no colours, no cursor movement
    assert re.match(r"Atalaia fleet at \d\d:\d\d:\d\d UTC: \d+ agents \(", out), out
    rows = table_rows(out)
    for name in FLEET:
        # agent state shift heartbeat tasks/min success p95 cost restarts [alerts]
        row = rows[name]
        assert row[1] in ("up", "restarting"), out  # Nova may be back from the tour's crash
        assert row[2] in ("on", "off"), out  # Atlas and Nova work in shifts
        assert re.fullmatch(r"\d+\.\ds|\d+s|\d+m\d\ds", row[3]), out  # a fresh heartbeat
        assert re.fullmatch(r"\d+\.\d", row[4]), out
        assert re.fullmatch(r"\d+\.\d%", row[5]), out
        assert re.fullmatch(r"\d+\.\ds|\d+s|\d+m\d\ds", row[6]), out
        assert re.fullmatch(r"\$[\d,]+\.\d\d(\d\d)?", row[7]) and row[7] != "$0.00", out
        assert re.fullmatch(r"\d+", row[8]), out

    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == DOC_KEYS
    assert (doc["window"], doc["stale_since"], doc["error"]) == ("5m", None, None)
    assert doc["today_since"] == doc["at"] // 86400 * 86400  # 00:00 UTC
    assert isinstance(doc["other_alerts"], list)
    agents = {a["agent"]: a for a in doc["agents"]}
    assert set(agents) >= FLEET and len(agents) == len(doc["agents"])
    assert list(agents) == sorted(agents, key=str.casefold)
    for a in doc["agents"]:
        assert set(a) == AGENT_KEYS, a
        assert a["state"] == hand_state(a["up"], a["heartbeat_age_s"], a["restarts_recent"]), a
        for key in ("up", "on_shift"):
            assert a[key] is None or isinstance(a[key], bool), a
        for key in MEASURED:
            assert a[key] is None or isinstance(a[key], float), a
        for key in ("restarts_today", "restarts_recent"):
            assert a[key] is None or isinstance(a[key], int), a
        for alert in a["alerts"]:
            assert set(alert) == ALERT_KEYS and alert["alertname"], alert
    for name in FLEET:
        a = agents[name]
        assert (a["state"] == "up" and a["up"] is True) or a["state"] == "restarting", a
        assert all(a[key] is not None for key in (*MEASURED, "on_shift", "restarts_today")), a
        assert a["cost_today_usd"] > 0 and a["tasks_per_min"] > 0, a
    with capsys.disabled():
        print(f"\none refresh (10 queries + 1 Alertmanager call) took {took:.2f}s\n{out}")


SIGINT_AS_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'atalaia'; runpy.run_module('atalaia_ops.cli', run_name='__main__')"
)


class Watch:
    """`atalaia status --watch --json` as a user's process; collects each refresh's document."""

    def __init__(self, urls: dict[str, str]) -> None:
        # Ctrl-C as a terminal delivers it: a test run started from a non-interactive shell's
        # background job inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
        command = [sys.executable, "-c", SIGINT_AS_A_TERMINAL, "status", "--watch", "--json"]
        argv = [*command, "--interval", str(INTERVAL_S), *backend_args(urls)]
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.frames: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.frames.append(json.loads(line))

    def agent(self, frame: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((a for a in frame["agents"] if a["agent"] == name), None)

    def first_from(self, t: float) -> dict[str, Any] | None:
        """The first refresh that started at or after `t`."""
        assert self.proc.poll() is None, f"status --watch exited with {self.proc.returncode}"
        return next((f for f in list(self.frames) if f["at"] >= t), None)

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(15)
        self._reader.join(5)
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()


def restarts_in_prometheus(prom_url: str, agent: str, window: str | None = None) -> float:
    """The supervisor's restarts of `agent` as Prometheus has them now: the counter itself, or
    its increase over `window`."""
    series = f'orchestrator_agent_restarts_total{{{AGENT}="{agent}"}}'
    values = by_agent(
        prom_url, f"sum by ({AGENT}) ({f'increase({series}[{window}])' if window else series})"
    )
    return values.get(agent, 0.0)


def restarts_in_orchestrator(orchestrator: str, agent: str) -> float:
    """The supervisor's restarts of `agent` from the orchestrator's /metrics, before any scrape."""
    r = httpx.get(f"{orchestrator}/metrics", timeout=10)
    r.raise_for_status()
    return sum(
        s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == "orchestrator_agent_restarts_total" and s.labels.get(AGENT) == agent
    )


def crash(orchestrator: str, agent: str) -> None:
    """Kill `agent`'s process through the agent_crash fault, and wait until the supervisor has
    restarted it and the new process answers (the next crash needs someone to take it)."""
    before = restarts_in_orchestrator(orchestrator, agent)
    r = httpx.post(f"{orchestrator}/faults/agent_crash", params={"agent": agent}, timeout=10)
    r.raise_for_status()
    eventually(
        lambda: restarts_in_orchestrator(orchestrator, agent) > before,
        timeout=60,
        what=f"the supervisor restarts {agent}",
    )

    def answers() -> bool:  # the old process is gone: the supervisor saw it exit
        httpx.get(f"{fleet_config.agent(agent).url}/health", timeout=5).raise_for_status()
        return True

    eventually(answers, timeout=60, what=f"{agent}'s new process answers")


def test_crash_loop_shows_restarting_and_the_alert(
    native_stack, fleet_run: FleetRun, capsys
) -> None:
    urls, orchestrator = native_stack.urls, fleet_run.orchestrator
    prom = urls["prometheus"]
    assert restarts_in_prometheus(prom, VICTIM, "2m") == 0, f"{VICTIM} restarted recently"
    assert LOOP not in firing_by_agent(urls["alertmanager"]).get(VICTIM, set())
    watch = Watch(urls)
    try:
        calm = eventually(
            lambda: (
                (f := watch.first_from(time.time() - INTERVAL_S))
                and (a := watch.agent(f, VICTIM))
                and a["state"] == "up"
                and a
            ),
            timeout=30,
            what=f"a refresh showing {VICTIM} up",
        )
        crashed_at = time.time()
        try:
            for _ in range(CRASHES):  # one after another: each waits for the restart
                crash(orchestrator, VICTIM)
            # Independently: when Prometheus holds a restart of the victim (by now, the first
            # is usually scraped already).
            eventually(
                lambda: restarts_in_prometheus(prom, VICTIM, "2m") > 0,
                timeout=60,
                what=f"Prometheus has {VICTIM}'s restart",
            )
            visible_at = time.time()
            frame = eventually(
                lambda: watch.first_from(visible_at), timeout=INTERVAL_S + 15, what="a refresh"
            )
            shown = watch.agent(frame, VICTIM)
            assert shown is not None and shown["state"] == "restarting", (frame, shown)
            assert shown["restarts_today"] >= calm["restarts_today"] + 1, (calm, shown)
            assert frame["error"] is None

            # Independently: Alertmanager fires AgentRestartLoop for the victim, and Prometheus
            # has every restart the supervisor counted (the alert may fire on an extrapolated
            # count a little short of the last one).
            total = restarts_in_orchestrator(orchestrator, VICTIM)
            eventually(
                lambda: (
                    restarts_in_prometheus(prom, VICTIM) >= total
                    and LOOP in firing_by_agent(urls["alertmanager"]).get(VICTIM, set())
                ),
                timeout=90,
                what=f"{LOOP} firing for {VICTIM} in Alertmanager",
            )
        finally:
            httpx.delete(f"{orchestrator}/faults/agent_crash", timeout=10)
        fired_at = time.time()
        frame = eventually(
            lambda: watch.first_from(fired_at), timeout=INTERVAL_S + 15, what="a refresh"
        )
        shown = watch.agent(frame, VICTIM)
        assert shown is not None, frame
        assert LOOP in [a["alertname"] for a in shown["alerts"]], shown
        loop = next(a for a in shown["alerts"] if a["alertname"] == LOOP)
        assert loop["severity"] == "warning" and VICTIM in loop["summary"], loop
        assert shown["restarts_today"] >= calm["restarts_today"] + CRASHES, (calm, shown)
        with capsys.disabled():
            print(
                f"\n{VICTIM}: {CRASHES} crashes -> a restart in Prometheus at "
                f"+{visible_at - crashed_at:.1f}s, {LOOP} in Alertmanager at "
                f"+{fired_at - crashed_at:.1f}s, in a refresh {frame['at'] - fired_at:.1f}s later"
            )
    finally:
        rc, err = watch.interrupt()
    assert rc == 0, err  # Ctrl-C ends --watch with status 0
    assert "Traceback" not in err, err

    # The table shows it too (Alertmanager keeps it firing for 15 minutes).
    assert main(["status", *backend_args(urls)]) == 0
    out = capsys.readouterr().out
    row = table_rows(out)[VICTIM]
    assert LOOP in " ".join(row[9:]), out
    assert int(row[8]) >= calm["restarts_today"] + CRASHES, out


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def status_process(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "atalaia_ops.cli", "status", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_backend_that_cannot_answer_is_one_line_and_exit_1(native_stack) -> None:
    urls = native_stack.urls
    nowhere = closed_port_url()
    prom, am = urls["prometheus"], urls["alertmanager"]
    cases = [
        (
            ["--prometheus-url", nowhere, "--alertmanager-url", am],
            rf"prometheus at {re.escape(nowhere)}: unreachable \(ConnectError: .+\)",
        ),
        (
            ["--json", "--prometheus-url", prom, "--alertmanager-url", nowhere],
            rf"alertmanager at {re.escape(nowhere)}: unreachable \(ConnectError: .+\)",
        ),
        # Something answers, but it is not Alertmanager's API (Prometheus has no /api/v2/alerts).
        (
            ["--prometheus-url", prom, "--alertmanager-url", prom],
            rf"alertmanager at {re.escape(prom)}: alerts failed with HTTP 404: 404 page not found",
        ),
    ]
    for args, message in cases:
        done = status_process(*args)
        assert done.returncode == 1, (args, done)
        assert done.stdout == "", (args, done.stdout)  # no half-drawn table or JSON
        assert re.fullmatch(f"atalaia status: {message}\n", done.stderr), (args, done.stderr)

    # --watch keeps refreshing: each refresh says what failed, and the last failure is exit 1.
    done = status_process("--watch", "--json", "--count", "2", "--interval", "0.1", *cases[0][0])
    assert (done.returncode, done.stderr) == (1, ""), done
    frames = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(frames) == 2 and all(f["agents"] == [] for f in frames), frames
    for f in frames:
        assert re.fullmatch(cases[0][1], f["error"]) and f["stale_since"] is not None, f
