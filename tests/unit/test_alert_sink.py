"""The alert sink as a real process on a free port, fed real Alertmanager webhook payloads."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tools.upstream import REPO

# What Alertmanager 0.34 posts for a webhook_config (captured from a real instance by
# tests/config/test_alertmanager.py, which checks the sink accepts the live payloads too).
PAYLOAD: dict[str, Any] = {
    "receiver": "slack-critical",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "AgentVanished",
                "gen_ai_agent_name": "helix",
                "severity": "critical",
            },
            "annotations": {
                "description": "Agent helix reported heartbeats within the last hour ...",
                "runbook_url": "https://github.com/atalaia/atalaia/blob/main/docs/runbooks/AgentVanished.md",
                "summary": "Agent helix vanished",
            },
            "startsAt": "2026-11-21T05:48:03.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...&g0.tab=1",
            "fingerprint": "3c8a5d9f0e1b2a47",
        }
    ],
    "groupLabels": {"alertname": "AgentVanished", "severity": "critical"},
    "commonLabels": {
        "alertname": "AgentVanished",
        "gen_ai_agent_name": "helix",
        "severity": "critical",
    },
    "commonAnnotations": {"summary": "Agent helix vanished"},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="AgentVanished", severity="critical"}',
    "truncatedAlerts": 0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sink:
    url: str
    data_dir: Path
    proc: subprocess.Popen[str]

    def stop(self) -> str:
        """Stop the process (SIGTERM, like docker stop) and return what it printed."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out


def start_sink(data_dir: Path, *extra: str) -> Sink:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atalaia_ops.alert_sink",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        cwd=REPO,
        env={**os.environ, "ATALAIA_ALERT_SINK_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"alert sink exited: {proc.communicate()[0]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Sink(url, data_dir, proc)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("alert sink did not answer /health within 10 s")


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    s = start_sink(tmp_path / "data")
    yield s
    if s.proc.poll() is None:
        s.stop()


def post(sink: Sink, receiver: str, body: Any, **kw: Any) -> httpx.Response:
    if isinstance(body, bytes | str):
        return httpx.post(f"{sink.url}/webhook/{receiver}", content=body, timeout=5, **kw)
    return httpx.post(f"{sink.url}/webhook/{receiver}", json=body, timeout=5, **kw)


def listed(sink: Sink, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{sink.url}/notifications", params=params, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["notifications"]


def test_health(sink: Sink) -> None:
    r = httpx.get(f"{sink.url}/health", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "notifications": 0}


def test_accepts_and_lists_newest_first_by_receiver(sink: Sink) -> None:
    resolved = copy.deepcopy(PAYLOAD)
    resolved["status"] = "resolved"
    resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-21T06:01:00Z"

    assert post(sink, "slack-critical", PAYLOAD).status_code == 200
    assert post(sink, "pagerduty-critical", PAYLOAD).status_code == 200
    r = post(sink, "slack-critical", resolved)
    assert r.status_code == 200
    assert r.json()["receiver"] == "slack-critical"

    everything = listed(sink)
    assert [n["receiver"] for n in everything] == [
        "slack-critical",
        "pagerduty-critical",
        "slack-critical",
    ]
    assert everything[0]["payload"] == resolved  # newest first, stored verbatim
    assert everything[2]["payload"] == PAYLOAD

    slack = listed(sink, receiver="slack-critical")
    assert [n["payload"]["status"] for n in slack] == ["resolved", "firing"]
    assert listed(sink, receiver="email-finance") == []
    assert len(listed(sink, limit=1)) == 1
    assert httpx.get(f"{sink.url}/health", timeout=5).json()["notifications"] == 3


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        ([PAYLOAD], 422, "must be a JSON object"),
        ({**PAYLOAD, "version": "3"}, 422, '"version" must be "4"'),
        ({**PAYLOAD, "status": "pending"}, 422, '"status" must be one of firing, resolved'),
        ({**PAYLOAD, "alerts": []}, 422, '"alerts" must be a non-empty array'),
        ({k: v for k, v in PAYLOAD.items() if k != "groupKey"}, 422, '"groupKey" must be a string'),
        ({**PAYLOAD, "commonLabels": {"severity": 2}}, 422, '"commonLabels" must be an object'),
        (
            {**PAYLOAD, "alerts": [{**PAYLOAD["alerts"][0], "labels": {"severity": "critical"}}]},
            422,
            "alerts[0].labels has no alertname",
        ),
        (
            {**PAYLOAD, "alerts": [{**PAYLOAD["alerts"][0], "startsAt": "yesterday"}]},
            422,
            "alerts[0].startsAt is not an RFC 3339 time",
        ),
        ({**PAYLOAD, "truncatedAlerts": -1}, 422, '"truncatedAlerts" must be a non-negative'),
    ],
)
def test_malformed_payloads_are_rejected_and_nothing_is_lost(
    sink: Sink, body: Any, status: int, message: str
) -> None:
    assert post(sink, "slack-critical", PAYLOAD).status_code == 200
    r = post(sink, "slack-critical", body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    notifications = listed(sink)
    assert len(notifications) == 1  # the bad one is not stored, the good one is still there
    assert notifications[0]["payload"] == PAYLOAD


def test_bad_requests(sink: Sink) -> None:
    r = post(sink, "not a receiver!", PAYLOAD)
    assert r.status_code == 400
    assert "invalid receiver name" in r.json()["error"]
    assert httpx.post(f"{sink.url}/alerts", json=PAYLOAD, timeout=5).status_code == 404
    assert httpx.get(f"{sink.url}/webhook/slack-critical", timeout=5).status_code == 405
    assert httpx.get(f"{sink.url}/notifications?limit=x", timeout=5).status_code == 400
    too_big = b" " * (8 * 1024 * 1024 + 1)
    assert post(sink, "slack-critical", too_big).status_code == 413
    assert listed(sink) == []


def test_persists_across_restarts_and_logs_json_lines(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_sink(data_dir)
    assert post(first, "deadmans-switch", PAYLOAD).status_code == 200
    assert post(first, "slack-critical", b"{").status_code == 400
    out = first.stop()

    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    notification = next(entry for entry in lines if entry["message"] == "notification")
    assert notification["level"] == "INFO"
    assert notification["logger"] == "atalaia_ops.alert_sink"
    assert notification["receiver"] == "deadmans-switch"
    assert notification["alertname"] == "AgentVanished"
    assert notification["status"] == "firing"
    assert notification["severity"] == "critical"
    assert notification["summaries"] == ["Agent helix vanished"]
    rejected = next(entry for entry in lines if entry["message"] == "rejected request")
    assert rejected["level"] == "WARNING"
    assert rejected["status"] == 400

    stored = (data_dir / "notifications.jsonl").read_text().splitlines()
    assert len(stored) == 1

    second = start_sink(data_dir)
    try:
        notifications = listed(second)
        assert len(notifications) == 1
        assert notifications[0]["receiver"] == "deadmans-switch"
        assert notifications[0]["payload"] == PAYLOAD
        assert notifications[0]["id"] == notification["notification_id"]
    finally:
        second.stop()


def test_concurrent_posts_are_all_recorded(sink: Sink) -> None:
    def send(i: int) -> int:
        body = copy.deepcopy(PAYLOAD)
        body["alerts"][0]["labels"]["gen_ai_agent_name"] = f"agent-{i}"
        return post(sink, "slack-platform", body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(send, range(40))) == {200}
    notifications = listed(sink)
    names = {n["payload"]["alerts"][0]["labels"]["gen_ai_agent_name"] for n in notifications}
    assert names == {f"agent-{i}" for i in range(40)}
    # Newest first means the same by file order and by received_at.
    received = [n["received_at"] for n in notifications]
    assert received == sorted(received, reverse=True)
    for line in (sink.data_dir / "notifications.jsonl").read_text().splitlines():
        json.loads(line)  # no interleaved writes


def test_default_data_dir_and_unwritable_dir(tmp_path: Path) -> None:
    from atalaia_ops import alert_sink

    env = {k: v for k, v in os.environ.items() if k != "ATALAIA_ALERT_SINK_DATA_DIR"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    code = (
        "from atalaia_ops.alert_sink import default_data_dir; print(default_data_dir())"
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == str(tmp_path / "state" / "atalaia" / "alert-sink")

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert alert_sink.main(["--port", str(free_port()), "--data-dir", str(blocker / "x")]) == 2


# --- the page at / -------------------------------------------------------------------------------


def page(sink: Sink, **params: Any) -> httpx.Response:
    return httpx.get(f"{sink.url}/", params=params, timeout=5)


def test_page_without_notifications(sink: Sink) -> None:
    r = page(sink)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "No notifications yet" in r.text


def test_page_escapes_alert_text_and_has_a_strict_csp(sink: Sink) -> None:
    hostile = copy.deepcopy(PAYLOAD)
    alert = hostile["alerts"][0]
    alert["annotations"]["summary"] = "<script>alert(1)</script>"
    alert["annotations"]["description"] = '"><img src=x onerror=alert(1)>'
    alert["annotations"]["runbook_url"] = "javascript:alert(1)"
    alert["labels"]["gen_ai_agent_name"] = "</code><iframe>"
    hostile["commonLabels"]["alertname"] = alert["labels"]["alertname"] = "A<b>&'\""
    assert post(sink, "slack-critical", hostile).status_code == 200

    r = page(sink)
    assert r.status_code == 200
    body = r.text
    for raw in ("<script>", "<img", "<iframe>", "A<b>", "javascript:"):
        assert raw not in body, f"{raw!r} reached the page unescaped"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert 'data-alertname="A&lt;b&gt;&amp;&#x27;&quot;"' in body
    # The Content-Security-Policy allows no script and exactly the page's own stylesheet.
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert "script-src" not in csp and "unsafe" not in r.headers["content-security-policy"]
    [style] = re.findall(r"<style>(.*?)</style>", body, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert csp["style-src"] == f"'sha256-{digest}'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_page_is_newest_first_filters_by_receiver_and_limits(sink: Sink) -> None:
    for receiver, agent in (("slack-critical", "a1"), ("telegram-critical", "a2"), ("x", "a3")):
        body = copy.deepcopy(PAYLOAD)
        body["alerts"][0]["labels"]["gen_ai_agent_name"] = agent
        assert post(sink, receiver, body).status_code == 200

    def agents(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return re.findall(r"gen_ai_agent_name=(a\d)", r.text)

    assert agents(page(sink)) == ["a3", "a2", "a1"]
    assert agents(page(sink, receiver="telegram-critical")) == ["a2"]
    assert agents(page(sink, limit=1)) == ["a3"]
    assert agents(page(sink, receiver="nobody")) == []
    assert "Nothing was sent to receiver nobody" in page(sink, receiver="nobody").text
    r = page(sink)
    assert '<a href="/?receiver=telegram-critical">telegram-critical (1)</a>' in r.text
    assert '<meta http-equiv="refresh"' in r.text
    assert page(sink, limit="x").status_code == 400


def test_page_links_and_times() -> None:
    from atalaia_ops.alert_sink import render_page

    resolved = copy.deepcopy(PAYLOAD)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-21T06:01:00Z"
    resolved["alerts"][0]["annotations"]["dashboard_url"] = "https://grafana.example.com/d/x"
    record = {
        "id": "1",
        "received_at": "2026-11-21T06:01:01.000Z",
        "receiver": "r",
        "payload": resolved,
    }
    body = render_page([record], grafana_url="https://g.example.com")
    assert "2026-11-21 05:48:03 UTC" in body and "2026-11-21 06:01:00 UTC" in body
    assert '<a href="https://grafana.example.com/d/x" rel="noopener noreferrer">Grafana</a>' in body
    del resolved["alerts"][0]["annotations"]["dashboard_url"]
    body = render_page([record], grafana_url="https://g.example.com")
    assert 'href="https://g.example.com/alerting/list?search=AgentVanished"' in body
    runbook = PAYLOAD["alerts"][0]["annotations"]["runbook_url"]
    assert f'<a href="{runbook}" rel="noopener noreferrer">Runbook</a>' in body


# -- only Alertmanager records: the shared token, and no request held open ---------------------
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Sink]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    s = start_sink(tmp_path / "data", f"--token-file={token_file}")
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_with_a_token_only_its_bearer_is_recorded(guarded: Sink) -> None:
    assert post(guarded, "slack-critical", PAYLOAD).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert post(guarded, "slack-critical", PAYLOAD, headers=wrong).status_code == 401
    basic = {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}
    assert post(guarded, "slack-critical", PAYLOAD, headers=basic).status_code == 401
    assert listed(guarded) == [], "nothing refused is stored"
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert post(guarded, "slack-critical", PAYLOAD, headers=ok).status_code == 200
    assert len(listed(guarded)) == 1
    assert httpx.get(f"{guarded.url}/health", timeout=5).status_code == 200  # reads stay open


def test_an_empty_token_file_stops_the_sink(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "atalaia_ops.alert_sink",
            "--port",
            str(free_port()),
            f"--token-file={tmp_path / 'token'}",
            f"--data-dir={tmp_path / 'data'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "token file is empty" in proc.stdout


def test_a_client_that_stops_sending_is_dropped(sink: Sink) -> None:
    """A request whose body never comes does not hold a sink thread for ever."""
    from atalaia_ops.alert_sink import READ_TIMEOUT_S

    host, port = sink.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=READ_TIMEOUT_S + 20) as conn:
        conn.sendall(b"POST /webhook/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        assert conn.recv(1024) == b"", "the sink answered instead of dropping the connection"
        waited = time.monotonic() - started
    assert READ_TIMEOUT_S - 1 <= waited < READ_TIMEOUT_S + 15


def test_connections_beyond_the_bound_get_503_at_once(tmp_path: Path) -> None:
    """Slow clients cannot take a thread each without bound: beyond --max-connections the sink
    answers 503 at once, and takes requests again as soon as a slot frees."""
    s = start_sink(tmp_path / "data", "--max-connections", "2")
    host, port = s.url.removeprefix("http://").split(":")
    try:
        held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(2)]
        for conn in held:  # headers sent, the body never: each holds its slot
            conn.sendall(b"POST /webhook/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        # A third: refused at once (a slot is taken once the server accepts, so wait for it).
        r = wait_for_status(s, 503)
        assert r.headers["Retry-After"] == "1" and "too many" in r.json()["error"]
        for conn in held:
            conn.close()
        assert wait_for_status(s, 200).json()["status"] == "ok"
    finally:
        s.stop()


def wait_for_status(s: Sink, status: int) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(f"{s.url}/health", timeout=5)
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            return r
        time.sleep(0.05)
