"""`atalaia status` against a local HTTP server that answers as Prometheus's query API
(`/api/v1/query`: `{"status": "success", "data": {"resultType": "vector", "result": [...]}}`,
values as strings, NaN as "NaN", errors as `{"status": "error", "errorType", "error"}` with
HTTP 400) and Alertmanager's API v2 (`/api/v2/alerts`: a list of gettableAlert objects, filtered
by the `active` / `silenced` / `inhibited` / `unprocessed` parameters as Alertmanager filters
them). The server maps each column's query, as `fleet_status.queries` writes it for the request's
`time`, to canned series: the numbers on real data are tests/e2e/test_status_cli.py's.
Unreachable backends are a closed loopback port."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from atalaia_ops import fleet_status
from atalaia_ops.backends import Alertmanager, Unreachable
from atalaia_ops.cli import build_parser, main
from atalaia_ops.cli_status import make_console, render, watch
from atalaia_ops.dashboards.contract import load as load_contract
from atalaia_ops.dashboards.queries import promql_names
from atalaia_ops.fleet_status import AGENT, FleetStatus, queries, state, today_window

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules"
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colours and styles
ESC = "\x1b"

# A fleet as Prometheus would answer for it, per column: agent -> value.
# Helix: atalaia library and orchestrator (every column); ext-bot: spans only (another
# instrumentation, no orchestrator); Nova: orchestrator only, restarted a moment ago;
# Atlas: library heartbeat gone stale, off shift, no task in the window (NaN success and p95).
FLEET: dict[str, dict[str, float | str]] = {
    "seen": {"Helix": 1, "ext-bot": 1, "Nova": 1, "Atlas": 1},
    "up": {"Helix": 1, "Nova": 0, "Atlas": 1},
    "on_shift": {"Helix": 1, "Nova": 1, "Atlas": 0},
    "heartbeat_age_s": {"Helix": 3.2, "Nova": 21.0, "Atlas": 750.0},
    "tasks_per_min": {"Helix": 12.5, "ext-bot": 3.0, "Atlas": 0},
    "success_rate": {"Helix": 0.96, "ext-bot": 0.5, "Atlas": "NaN"},
    "p95_s": {"Helix": 4.25, "ext-bot": 95.0, "Atlas": "NaN"},
    "cost_today_usd": {"Helix": 1.2345, "ext-bot": 0.0042},
    "restarts_today": {"Helix": 0, "Nova": 2.0416, "Atlas": 0},
    "restarts_recent": {"Helix": 0, "Nova": 1.1, "Atlas": 0},
}


def gettable_alert(name: str, labels: dict[str, str], state: str = "active") -> dict[str, Any]:
    """An alert as Alertmanager's API v2 returns it."""
    return {
        "annotations": {"summary": f"{name} summary"},
        "endsAt": "2026-12-05T08:04:00.000Z",
        "fingerprint": f"{abs(hash((name, tuple(labels.items())))):016x}",
        "receivers": [{"name": "slack-platform"}],
        "startsAt": "2026-12-05T07:51:00.000Z",
        "status": {
            "inhibitedBy": ["x"] if state == "inhibited" else [],
            "mutedBy": [],
            "silencedBy": ["s"] if state == "silenced" else [],
            "state": "suppressed" if state in ("silenced", "inhibited") else state,
        },
        "updatedAt": "2026-12-05T07:59:00.000Z",
        "generatorURL": "http://prometheus:9090/graph",
        "labels": {"alertname": name, **labels},
    }


ALERTS = [
    gettable_alert("AgentRestartLoop", {AGENT: "Nova", "severity": "warning"}),
    gettable_alert("AgentVanished", {AGENT: "Ghost", "severity": "critical"}),
    gettable_alert("HighErrorRate", {AGENT: "Nova", "severity": "critical"}),
    gettable_alert("TargetDown", {"job": "grafana", "severity": "warning"}),
    gettable_alert("TargetDown", {"job": "loki", "severity": "warning"}),
    gettable_alert("CollectorRefusingData", {"signal": "logs", "severity": "warning"}),
    gettable_alert("Watchdog", {"severity": "none"}),
    gettable_alert("TaskSuccessRateLow", {AGENT: "Helix", "severity": "warning"}, "silenced"),
    gettable_alert("HighLatencyP99", {AGENT: "Helix", "severity": "warning"}, "inhibited"),
    gettable_alert("ToolCallsFailing", {AGENT: "Helix", "severity": "warning"}, "unprocessed"),
]


class FakeBackends:
    """What the server answers, and what it was asked."""

    def __init__(self) -> None:
        self.fleet: dict[str, dict[str, float | str]] = {k: dict(v) for k, v in FLEET.items()}
        self.alerts = list(ALERTS)
        self.window = fleet_status.DEFAULT_WINDOW
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.refreshes = 0  # the first query of a refresh is the agent list ("seen")
        self.fail_refreshes: set[int] = set()  # answer 503 during these refreshes (1-based)
        self.proxy_page: str | None = None  # a proxy's HTML error page (HTTP 502) for every query

    def prometheus(self, params: dict[str, str]) -> tuple[int, Any]:
        at = float(params["time"])
        columns = {q: name for name, q in queries(self.window, today_window(at)[1]).items()}
        column = columns.get(params.get("query", ""))
        if column == "seen":
            self.refreshes += 1
        if self.proxy_page is not None:
            return 502, self.proxy_page
        if self.refreshes in self.fail_refreshes:
            return 503, {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
        if column is None:
            error = f"1:1: parse error: unexpected query {params.get('query')!r}"
            return 400, {"status": "error", "errorType": "bad_data", "error": error}
        result = [
            {"metric": {AGENT: agent}, "value": [at, str(value)]}
            for agent, value in self.fleet[column].items()
        ]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def alertmanager(self, params: dict[str, str]) -> tuple[int, Any]:
        wanted = {k: params.get(k, "true") == "true" for k in ("active", "silenced", "inhibited")}
        wanted["unprocessed"] = params.get("unprocessed", "true") == "true"
        out = []
        for a in self.alerts:
            status = a["status"]
            if status["state"] == "unprocessed":
                keep = wanted["unprocessed"]
            elif status["silencedBy"] or status["inhibitedBy"]:
                keep = (not status["silencedBy"] or wanted["silenced"]) and (
                    not status["inhibitedBy"] or wanted["inhibited"]
                )
            else:
                keep = wanted["active"]
            if keep:
                out.append(a)
        return 200, out


@pytest.fixture
def fake() -> Iterator[tuple[FakeBackends, str]]:
    state_ = FakeBackends()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            state_.requests.append((url.path, params))
            if url.path == "/api/v1/query":
                code, body = state_.prometheus(params)
            elif url.path == "/api/v2/alerts":
                code, body = state_.alertmanager(params)
            else:
                code, body = 404, {"status": "error", "error": "not found"}
            html = isinstance(body, str)
            data = body.encode() if html else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/html" if html else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state_, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def urls(prom: str, am: str | None = None) -> list[str]:
    return ["--prometheus-url", prom, "--alertmanager-url", am or prom]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def row(text: str, agent: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.split()[:1] == [agent]]
    assert len(lines) == 1, text
    return lines[0].split()


# --- arguments and queries ---------------------------------------------------------------------


def test_defaults() -> None:
    args = build_parser().parse_args(["status"])
    assert (args.watch, args.json, args.interval, args.count, args.window) == (
        False,
        False,
        5.0,
        None,
        "5m",
    )
    assert args.prometheus_url == "http://127.0.0.1:9090"
    assert args.alertmanager_url == "http://127.0.0.1:9093"
    assert not hasattr(args, "at")  # alerts are now: no evaluation at another instant


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--interval", "0"],
        ["status", "--interval", "soon"],
        ["status", "--count", "-1"],
        ["status", "--window", "5x"],
        ["status", "--alertmanager-url", "127.0.0.1:9093"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_one_aggregate_query_per_column() -> None:
    q = queries("5m", "3600s")
    assert list(q) == [
        "seen",
        "up",
        "on_shift",
        "heartbeat_age_s",
        "tasks_per_min",
        "success_rate",
        "p95_s",
        "cost_today_usd",
        "restarts_today",
        "restarts_recent",
    ]
    for name, promql in q.items():
        assert f"by ({AGENT}" in promql, name  # aggregated per agent, never one query per agent
    assert "[3600s]" in q["cost_today_usd"] and "[3600s]" in q["restarts_today"]
    assert "[5m]" in q["tasks_per_min"] and "[2m]" in q["restarts_recent"]


def test_queries_use_catalogued_names_only() -> None:
    contract = load_contract()
    for name, promql in queries("5m", "3600s").items():
        metrics, labels = promql_names(promql)
        assert metrics - contract.metrics == set(), name
        assert labels - contract.labels == set(), name


def test_agent_alerts_carry_the_label_status_matches_on() -> None:
    """The rules name the agent of an alert with the label fleet_status.AGENT, and only it."""
    named = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                text = json.dumps(rule.get("annotations", {}))
                named |= set(re.findall(r"\$labels\.(\w*agent\w*)", text))
    assert named == {AGENT}


def test_today_is_the_utc_day() -> None:
    at = 1796455845.5  # 2026-12-06 07:30:45.5 UTC
    assert today_window(at) == (1796428800.0, "27045s")
    assert today_window(1796428800.2)[1] == "1s"  # never an empty range


@pytest.mark.parametrize(
    ("up", "age", "recent", "expected"),
    [
        (True, 3.0, 0, "up"),
        (None, 3.0, None, "up"),  # the library's heartbeat alone
        (True, None, None, "up"),  # a liveness source alone
        (False, 3.0, 0, "down"),
        (None, 121.0, None, "down"),
        (True, 500.0, 0, "down"),  # alive but its heartbeat stopped: hung
        (False, 500.0, 1, "restarting"),  # a restart wins
        (True, 1.0, 2, "restarting"),
        (None, None, None, None),  # spans only: no liveness source
    ],
)
def test_state_rule(
    up: bool | None, age: float | None, recent: int | None, expected: str | None
) -> None:
    assert state(up, age, recent) == expected


# --- output ------------------------------------------------------------------------------------


def test_table_lists_every_source_and_dashes_what_is_absent(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backends, url = fake
    rc, out, err = run(["status", *urls(url)], capsys)
    assert (rc, err) == (0, "")
    assert ESC not in out  # not a terminal: no colours, no cursor movement
    assert all(line == line.rstrip() for line in out.splitlines())
    assert out.startswith("Atalaia fleet at ")
    assert "5 agents (1 up, 1 restarting, 1 down)" in out.splitlines()[0]
    # agent state shift heartbeat tasks/min success p95 cost restarts alerts
    assert row(out, "Helix") == ["Helix", "up", "on", "3.2s", "12.5", "96.0%", "4.2s", "$1.23", "0"]
    assert row(out, "ext-bot") == [
        "ext-bot",
        "—",
        "—",
        "—",
        "3.0",
        "50.0%",
        "1m35s",
        "$0.0042",
        "—",
    ]
    nova = ["Nova", "restarting", "on", "21s", "—", "—", "—", "—", "2"]
    assert row(out, "Nova") == [*nova, "HighErrorRate,", "AgentRestartLoop"]  # critical first
    assert row(out, "Atlas") == ["Atlas", "down", "off", "12m30s", "0.0", "—", "—", "—", "0"]
    assert row(out, "Ghost") == ["Ghost", *["—"] * 8, "AgentVanished"]  # named by an alert only
    # one name firing for two series is shown once, with its count
    assert "Firing alerts naming no agent: CollectorRefusingData, TargetDown (2)\n" in out
    for hidden in ("Watchdog", "TaskSuccessRateLow", "HighLatencyP99", "ToolCallsFailing"):
        assert hidden not in out  # severity none; silenced; inhibited; not processed yet
    # One refresh: one query per column, and one Alertmanager call that leaves out silenced and
    # inhibited alerts.
    paths = [p for p, _ in backends.requests]
    assert paths.count("/api/v1/query") == len(queries("5m", "1s")) == 10
    assert paths.count("/api/v2/alerts") == 1
    alert_params = next(p for path, p in backends.requests if path == "/api/v2/alerts")
    assert alert_params == {"active": "true", "silenced": "false", "inhibited": "false"}
    times = {p["time"] for path, p in backends.requests if path == "/api/v1/query"}
    assert len(times) == 1  # every column at one instant


def test_json_document(fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, url = fake
    rc, out, _ = run(["status", "--json", *urls(url)], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert set(doc) == {
        "at", "window", "today_since", "agents", "other_alerts", "stale_since", "error"
    }  # fmt: skip
    assert (doc["window"], doc["stale_since"], doc["error"]) == ("5m", None, None)
    assert doc["today_since"] == today_window(doc["at"])[0]
    agents = {a["agent"]: a for a in doc["agents"]}
    assert list(agents) == ["Atlas", "ext-bot", "Ghost", "Helix", "Nova"]  # by name, any case
    assert agents["Helix"] == {
        "agent": "Helix",
        "state": "up",
        "up": True,
        "on_shift": True,
        "heartbeat_age_s": 3.2,
        "tasks_per_min": 12.5,
        "success_rate": 0.96,
        "p95_s": 4.25,
        "cost_today_usd": 1.2345,
        "restarts_today": 0,
        "restarts_recent": 0,
        "alerts": [],
    }
    ext = agents["ext-bot"]
    for key in ("state", "up", "on_shift", "heartbeat_age_s", "restarts_today", "restarts_recent"):
        assert ext[key] is None, key  # absent sources are null, not 0
    assert agents["Atlas"]["success_rate"] is None and agents["Atlas"]["p95_s"] is None  # NaN
    assert agents["Atlas"]["tasks_per_min"] == 0
    nova = agents["Nova"]
    assert (nova["state"], nova["up"], nova["restarts_today"], nova["restarts_recent"]) == (
        "restarting",
        False,
        2,
        1,
    )
    assert [a["alertname"] for a in nova["alerts"]] == ["HighErrorRate", "AgentRestartLoop"]
    assert nova["alerts"][0] == {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "starts_at": "2026-12-05T07:51:00.000Z",
        "summary": "HighErrorRate summary",
    }
    assert [a["alertname"] for a in doc["other_alerts"]] == [
        "CollectorRefusingData",
        "TargetDown",
        "TargetDown",
    ]  # every alert, the same name twice included


def test_no_agent_exits_3(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backends, url = fake
    backends.fleet = {k: {} for k in FLEET}
    backends.alerts = []
    rc, out, _ = run(["status", *urls(url)], capsys)
    assert rc == 3
    assert "No agent reported by any source in the last hour" in out
    rc, out, _ = run(["status", "--json", *urls(url)], capsys)
    assert rc == 3 and json.loads(out)["agents"] == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_styles_only_on_a_terminal_without_no_color() -> None:
    status = FleetStatus(1796463045.5, "5m", 1796428800.0, [], [])
    status.agents = [fleet_status._agent("Nova", {k: {} for k in FLEET}, [])]
    for env, styled in (({}, True), ({"NO_COLOR": "1"}, False)):
        console = make_console(Terminal(), {**env, "TERM": "xterm-256color"})
        console.print(render(status))
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert bool(SGR.search(text)) is styled, (env, text)
    console = make_console(io.StringIO(), {})
    console.print(render(status))
    assert ESC not in console.file.getvalue()  # type: ignore[attr-defined]


# --- --watch -----------------------------------------------------------------------------------


def test_watch_keeps_last_data_stale_and_retries(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backends, url = fake
    backends.fail_refreshes = {2, 3}
    argv = ["status", "--watch", "--count", "4", "--interval", "0.05", *urls(url)]
    rc, out, err = run(argv, capsys)
    assert (rc, err) == (0, "")
    assert ESC not in out
    frames = out.split("Atalaia fleet at ")[1:]
    assert len(frames) == 4
    assert "STALE" not in frames[0] and "STALE" not in frames[3]
    for frame in frames[1:3]:
        # the last data, still listed, marked stale since the first failure, with the cause
        assert row(frame, "Helix")[:3] == ["Helix", "up", "on"]
        match = re.search(r"STALE since (\d\d:\d\d:\d\d UTC): prometheus at (\S+): ", frame)
        assert match and match.group(2) == url, frame
        cause = " ".join(frame[match.end() :].split())
        assert "failed with HTTP 503: unavailable: TSDB not ready; retrying every 0.05s" in cause
    stale_since = {re.search(r"STALE since (\S+)", f).group(1) for f in frames[1:3]}  # type: ignore[union-attr]
    assert len(stale_since) == 1  # since the first failure, not the latest
    assert backends.refreshes == 4


def test_watch_json_lines_and_stale_fields(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backends, url = fake
    backends.fail_refreshes = {2}
    argv = ["status", "--watch", "--json", "--count", "2", "--interval", "0.05", *urls(url)]
    rc, out, _ = run(argv, capsys)
    assert rc == 1  # the last refresh failed
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["error"] is None and first["stale_since"] is None
    assert second["agents"] == first["agents"] and second["at"] == first["at"]
    assert second["stale_since"] >= first["at"] and "HTTP 503" in second["error"]


def test_watch_with_nothing_yet_says_no_data(capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port_url()
    argv = ["status", "--watch", "--count", "2", "--interval", "0.05", *urls(url)]
    rc, out, _ = run(argv, capsys)
    assert rc == 1
    assert out.count(f"NO DATA: prometheus at {url}: unreachable") == 2, out


def test_ctrl_c_exits_0() -> None:
    shown: list[FleetStatus] = []

    def fetch() -> FleetStatus:
        return FleetStatus(1.0, "5m", 0.0, [], [])

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    assert watch(fetch, shown.append, interval=5, window="5m", sleep=interrupt) == 0
    assert len(shown) == 1


def test_live_redraws_in_place_on_a_terminal(
    fake: tuple[FakeBackends, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = fake
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["status", "--watch", "--count", "2", "--interval", "0.05", *urls(url)]) == 0
    text = screen.getvalue()
    assert text.count("Atalaia fleet at") >= 2
    assert "\x1b[1A" in text or "\x1b[2K" in text  # the live display moves the cursor back up
    assert SGR.search(text)


# --- backends that fail ------------------------------------------------------------------------


def test_unreachable_prometheus_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = closed_port_url()
    rc, out, err = run(["status", *urls(url, closed_port_url())], capsys)
    assert rc == 1 and out == ""
    assert err.startswith(f"atalaia status: prometheus at {url}: unreachable (ConnectError")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreachable_alertmanager_is_one_line_and_exit_2(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = fake
    am = closed_port_url()
    rc, out, err = run(["status", "--json", *urls(url, am)], capsys)
    assert rc == 1 and out == ""
    assert err.startswith(f"atalaia status: alertmanager at {am}: unreachable (ConnectError")
    assert err.count("\n") == 1


def test_prometheus_error_is_named(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backends, url = fake
    backends.fail_refreshes = {1}
    rc, out, err = run(["status", *urls(url)], capsys)
    assert rc == 1 and out == ""
    assert err.startswith(f"atalaia status: prometheus at {url}: query ")
    assert "failed with HTTP 503: unavailable: TSDB not ready" in err


def test_a_multi_line_error_page_stays_one_line(
    fake: tuple[FakeBackends, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy in front of a backend may answer with an HTML page: still one line."""
    backends, url = fake
    backends.proxy_page = "<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n"
    rc, out, err = run(["status", *urls(url)], capsys)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1, err
    assert "<html> <body> <h1>502 Bad Gateway</h1> </body> </html>" in err


def test_alertmanager_client_names_itself_when_unreachable() -> None:
    url = closed_port_url()
    with Alertmanager(url, timeout=2) as am, pytest.raises(Unreachable) as exc:
        am.alerts()
    assert exc.value.backend == "alertmanager" and exc.value.url == url
