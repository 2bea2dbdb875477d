"""Alertmanager: amtool validates the config and proves every route; the real Alertmanager delivers
to the real alert sink with no secrets configured, inhibits warnings under a matching critical,
and renders the Slack, PagerDuty and Telegram messages with runbook and Grafana links."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urljoin

import httpx
import pytest
import yaml

from atalaia_ops import slo
from tests import chromium
from tests.conftest import run
from tools.upstream import REPO

AM_DIR = REPO / "alertmanager"
CONFIG = AM_DIR / "alertmanager.yml"
ROUTE_CASES = yaml.safe_load((AM_DIR / "tests" / "routes.yaml").read_text())
SECRETS_DIR = "/etc/alertmanager/secrets/"
SINK_TOKEN = "test-sink-token-4f9a2c"
SINK = "http://alert-sink:9199"
TELEGRAM_TOKEN = "123456:test-bot-token"
TELEGRAM_CHAT = -1001234567890  # a group's chat id is negative
CRITICAL_RECEIVERS = ("pagerduty-critical", "telegram-critical", "slack-critical")
SECRET_FIELDS = {
    "api_url",
    "routing_key",
    "service_key",
    "auth_password",
    "smtp_auth_password",
    "slack_api_url",
    "url",
}


def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def test_amtool_check_config_without_secrets(tool) -> None:
    assert not Path(SECRETS_DIR).exists() or not any(Path(SECRETS_DIR).iterdir())
    result = run([tool("alertmanager", "amtool"), "check-config", CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("case", ROUTE_CASES, ids=[c["name"] for c in ROUTE_CASES])
def test_route(tool, case: dict[str, Any]) -> None:
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    cmd = [tool("alertmanager", "amtool"), "config", "routes", "test", f"--config.file={CONFIG}"]
    result = run([*cmd, f"--verify.receivers={','.join(case['receivers'])}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr


def _routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from _routes(child)


def test_every_route_and_receiver_has_a_case() -> None:
    cfg = config()
    receivers = {r["name"] for r in cfg["receivers"]}
    assert {r for c in ROUTE_CASES for r in c["receivers"]} == receivers
    # Each route's own receiver is the one its matching case reaches through it.
    assert len(ROUTE_CASES) >= len(list(_routes(cfg["route"])))


def test_current_syntax_only() -> None:
    text = CONFIG.read_text()
    for old in ("match:", "match_re:", "source_match:", "target_match:", "mute_time_intervals:"):
        assert old not in text, f"deprecated {old!r} in alertmanager.yml"


def test_no_secrets_in_the_config_and_every_receiver_reaches_the_sink() -> None:
    def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, f"{path}.{k}")
                yield f"{path}.{k}", v
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{path}[{i}]")

    cfg = config()
    for path, value in walk(cfg):
        key = path.rsplit(".", 1)[-1]
        if key.endswith("_file"):
            # Integrations' secrets from alertmanager/secrets/; the sink's token is a compose
            # secret (from .env), mounted under /run/secrets.
            assert str(value).startswith((SECRETS_DIR, "/run/secrets/")), (
                f"{path} reads a secret from {value}"
            )
        elif key in SECRET_FIELDS:
            assert str(value).startswith(f"{SINK}/webhook/"), f"{path} holds a literal secret"
    for receiver in cfg["receivers"]:
        urls = [w.get("url") for w in receiver.get("webhook_configs", [])]
        assert f"{SINK}/webhook/{receiver['name']}" in urls, f"{receiver['name']} misses the sink"


# --- the real Alertmanager, the real sink ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class Capture(BaseHTTPRequestHandler):
    """Stands in for Slack's incoming webhook, PagerDuty's Events API and Telegram's Bot API:
    records what Alertmanager posts and answers as each service does."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Capture.received.append({"path": self.path, "json": json.loads(body)})
        answer = b"ok"
        if self.path.startswith("/telegram/"):
            # sendMessage's answer: the Message that was sent (the client parses it).
            message = {"message_id": 1, "date": 0, "chat": {"id": TELEGRAM_CHAT, "type": "group"}}
            answer = json.dumps({"ok": True, "result": message}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stack(tool, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Alertmanager with the repo's config and templates, delivering to a real alert sink.

    Only what a native run must change is changed: the sink's host, the secrets directory (empty
    but for the secrets of slack-critical, pagerduty-critical and telegram-critical, whose services
    are a local capture server) and group_wait (30 s -> 1 s, so the test does not wait).
    """
    procs: list[subprocess.Popen[str]] = []
    Capture.received = []
    capture = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    try:
        sink_port, am_port = free_port(), free_port()
        sink_url = f"http://127.0.0.1:{sink_port}"
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        # The sink records only what carries this token; Alertmanager's webhooks send it
        # (http_config credentials_file, /run/secrets/alert_sink_token in compose).
        (secrets / "alert_sink_token").write_text(SINK_TOKEN + "\n")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "atalaia_ops.alert_sink",
                    "--port",
                    str(sink_port),
                    f"--token-file={secrets / 'alert_sink_token'}",
                ],
                cwd=REPO,
                env={**os.environ, "ATALAIA_ALERT_SINK_DATA_DIR": str(tmp_path / "sink")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        slack_url = f"http://127.0.0.1:{capture.server_address[1]}/slack-critical"
        (secrets / "slack_critical_webhook_url").write_text(slack_url + "\n")
        (secrets / "pagerduty_routing_key").write_text("test-routing-key\n")
        (secrets / "telegram_bot_token").write_text(TELEGRAM_TOKEN + "\n")
        (secrets / "telegram_chat_id").write_text(f"{TELEGRAM_CHAT}\n")
        conf_dir = tmp_path / "alertmanager"
        (conf_dir / "templates").mkdir(parents=True)
        for tmpl in (AM_DIR / "templates").glob("*.tmpl"):
            (conf_dir / "templates" / tmpl.name).write_text(tmpl.read_text())
        text = CONFIG.read_text().replace(SINK, sink_url).replace(SECRETS_DIR, f"{secrets}/")
        text = text.replace("/run/secrets/", f"{secrets}/")
        cfg = yaml.safe_load(text)
        # PagerDuty's and Telegram's endpoints are not secrets but fixed URLs: point them at the
        # capture server.
        for receiver in cfg["receivers"]:
            for pd in receiver.get("pagerduty_configs", []):
                pd["url"] = f"http://127.0.0.1:{capture.server_address[1]}/pagerduty"
            for tg in receiver.get("telegram_configs", []):
                tg["api_url"] = f"http://127.0.0.1:{capture.server_address[1]}/telegram"
        for route in _routes(cfg["route"]):
            if "group_wait" in route or route is cfg["route"]:
                route["group_wait"] = "1s"
        (conf_dir / "alertmanager.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        am_url = f"http://127.0.0.1:{am_port}"
        procs.append(
            subprocess.Popen(
                [
                    str(tool("alertmanager", "alertmanager")),
                    f"--config.file={conf_dir / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    f"--web.external-url={am_url}",
                    "--cluster.listen-address=",
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / "alertmanager.log", "w"),  # noqa: SIM115
                text=True,
            )
        )
        wait_for(lambda: httpx.get(f"{sink_url}/health").status_code == 200, "the sink")
        wait_for(lambda: httpx.get(f"{am_url}/-/ready").status_code == 200, "Alertmanager")
        yield {"am": am_url, "sink": sink_url, "log": str(tmp_path / "alertmanager.log")}
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        capture.shutdown()


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {
            "summary": f"{name} summary",
            "description": f"{name} description",
            "runbook_url": f"{slo.RUNBOOK_BASE}{name}.md",
        },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }


def sink_notifications(stack: dict[str, str], receiver: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{stack['sink']}/notifications", params={"receiver": receiver})
    return r.json()["notifications"]


def test_alertmanager_delivers_to_the_sink_and_inhibits(stack: dict[str, str]) -> None:
    alerts = [
        alert("TaskSuccessRateLow", "critical", atalaia_department="sales"),
        # Same alert name and department, warning: inhibited by the critical one.
        alert("TaskSuccessRateLow", "warning", atalaia_department="sales"),
        # Another department's warning is not inhibited.
        alert("HighFailureRate", "warning", atalaia_department="ops", reason="timeout"),
        alert("Watchdog", "none"),
        # A vanished agent inhibits its own stale-heartbeat and no-spans warnings, not another
        # agent's.
        alert("AgentVanished", "critical", gen_ai_agent_name="helix"),
        alert("AgentHeartbeatStale", "warning", gen_ai_agent_name="helix"),
        alert("AgentSpansStopped", "warning", gen_ai_agent_name="helix", service_name="helix"),
        alert("AgentHeartbeatStale", "warning", gen_ai_agent_name="sigma"),
    ]
    r = httpx.post(f"{stack['am']}/api/v2/alerts", json=alerts)
    assert r.status_code == 200, r.text

    def delivered() -> bool:
        return all(
            sink_notifications(stack, rcv)
            for rcv in (*CRITICAL_RECEIVERS, "slack-platform", "deadmans-switch")
        )

    wait_for(delivered, "notifications in the sink")
    wait_for(
        lambda: all(
            len(sink_notifications(stack, rcv)) == 2
            for rcv in (*CRITICAL_RECEIVERS, "slack-platform")
        ),
        "two groups per receiver",
    )
    for receiver in CRITICAL_RECEIVERS:
        groups = {
            n["payload"]["groupLabels"]["alertname"]: n["payload"]
            for n in sink_notifications(stack, receiver)
        }
        assert set(groups) == {"TaskSuccessRateLow", "AgentVanished"}
        payload = groups["TaskSuccessRateLow"]
        assert payload["receiver"] == receiver
        assert [a["labels"]["severity"] for a in payload["alerts"]] == ["critical"]
        assert payload["alerts"][0]["annotations"]["runbook_url"].endswith("TaskSuccessRateLow.md")
    platform = sorted(
        (a["labels"]["alertname"], a["labels"].get("gen_ai_agent_name", ""))
        for n in sink_notifications(stack, "slack-platform")
        for a in n["payload"]["alerts"]
    )
    # The sales TaskSuccessRateLow warning and helix's stale heartbeat and stopped spans are
    # inhibited.
    assert platform == [("AgentHeartbeatStale", "sigma"), ("HighFailureRate", "")]
    watchdog = sink_notifications(stack, "deadmans-switch")[0]["payload"]
    assert watchdog["commonLabels"]["alertname"] == "Watchdog"
    assert sink_notifications(stack, "email-finance") == []


def test_a_collector_that_is_down_inhibits_the_agents_stopped_warnings(
    stack: dict[str, str],
) -> None:
    """Without the collector every agent looks stopped: TargetDown for it stands in for the lot,
    and warnings about other things still arrive."""
    alerts = [
        alert("TargetDown", "warning", job="otel-collector", instance="otel-collector:8888"),
        alert("AgentSpansStopped", "warning", gen_ai_agent_name="sigma", service_name="sigma"),
        alert("AgentLogsStopped", "warning", gen_ai_agent_name="nova", service_name="nova"),
        alert("HighErrorLogRate", "warning", service_name="orchestrator"),
    ]
    r = httpx.post(f"{stack['am']}/api/v2/alerts", json=alerts)
    assert r.status_code == 200, r.text
    wait_for(
        lambda: len(sink_notifications(stack, "slack-platform")) >= 2,
        "the TargetDown and HighErrorLogRate notifications",
    )
    time.sleep(3)  # every group was posted at once (group_wait 1 s): any other is in by now
    delivered = sorted(
        a["labels"]["alertname"]
        for n in sink_notifications(stack, "slack-platform")
        for a in n["payload"]["alerts"]
    )
    assert delivered == ["HighErrorLogRate", "TargetDown"]


def test_slack_and_pagerduty_messages_carry_runbook_and_grafana_links(
    stack: dict[str, str],
) -> None:
    r = httpx.post(
        f"{stack['am']}/api/v2/alerts",
        json=[alert("AgentVanished", "critical", gen_ai_agent_name="helix")],
    )
    assert r.status_code == 200, r.text
    wait_for(lambda: len(Capture.received) == 3, "the Slack, PagerDuty and Telegram calls")
    calls = {c["path"]: c["json"] for c in Capture.received}
    runbook = f"{slo.RUNBOOK_BASE}AgentVanished.md"
    grafana = "http://localhost:3000/alerting/list?search=AgentVanished"

    slack = calls["/slack-critical"]
    [attachment] = slack["attachments"]
    assert slack["channel"] == "#alerts-critical"
    assert attachment["title"] == "[FIRING:1] AgentVanished (critical): AgentVanished summary"
    assert attachment["title_link"] == grafana
    assert attachment["color"] == "danger"
    text = attachment["text"]
    assert "FIRING: AgentVanished summary\nAgentVanished description\n" in text
    assert "gen_ai_agent_name=helix severity=critical" in text
    assert f"Runbook: {runbook}" in text
    assert f"Grafana: {grafana}" in text
    assert "Prometheus: http://prometheus:9090/graph?g0.expr=up" in text

    pd = calls["/pagerduty"]
    assert pd["routing_key"] == "test-routing-key"
    assert pd["event_action"] == "trigger"
    assert pd["payload"]["severity"] == "critical"
    assert pd["payload"]["summary"] == "[FIRING:1] AgentVanished (critical): AgentVanished summary"
    assert {"href": runbook, "text": "Runbook"} in pd["links"]
    assert {"href": grafana, "text": "Grafana"} in pd["links"]
    assert pd["client"] == "Atalaia"
    assert f"Runbook: {runbook}" in pd["payload"]["custom_details"]["firing"]
    # The sink copies were delivered too.
    for receiver in CRITICAL_RECEIVERS:
        wait_for(lambda r=receiver: bool(sink_notifications(stack, r)), f"the {receiver} copy")


def test_telegram_message_is_escaped_html_with_runbook_and_grafana_links(
    tool, stack: dict[str, str], tmp_path: Path
) -> None:
    """Alertmanager's real Telegram integration, posting to a stand-in for the Bot API: the
    message is the atalaia.telegram.message template in HTML mode, with alert text escaped (it is
    untrusted: labels and annotations come from whatever the agents send). `amtool template
    render` of the webhook payload the sink got for the same group renders the same text, so it
    is a faithful preview of the template."""
    hostile = alert("AgentVanished", "critical", gen_ai_agent_name="he<b>lix")
    hostile["annotations"]["summary"] = "Agent <script>alert(1)</script> & co vanished"
    r = httpx.post(f"{stack['am']}/api/v2/alerts", json=[hostile])
    assert r.status_code == 200, r.text
    path = f"/telegram/bot{TELEGRAM_TOKEN}/sendMessage"
    wait_for(lambda: any(c["path"] == path for c in Capture.received), "the Telegram call")
    [call] = [c["json"] for c in Capture.received if c["path"] == path]
    assert call["chat_id"] == str(TELEGRAM_CHAT)
    assert call["parse_mode"] == "HTML"
    text = call["text"]
    runbook = f"{slo.RUNBOOK_BASE}AgentVanished.md"
    grafana = "http://localhost:3000/alerting/list?search=AgentVanished"
    summary = "Agent &lt;script&gt;alert(1)&lt;/script&gt; &amp; co vanished"
    assert text.startswith(f"<b>[FIRING:1] AgentVanished (critical): {summary}</b>\n"), text
    assert f"<b>FIRING</b>: {summary}\nAgentVanished description\n" in text
    assert "<code>gen_ai_agent_name=he&lt;b&gt;lix severity=critical </code>" in text
    assert f'<a href="{runbook}">Runbook</a>' in text
    assert f'<a href="{grafana}">Grafana</a>' in text
    assert '<a href="http://prometheus:9090/graph?g0.expr=up">Prometheus</a>' in text
    assert "<script>" not in text and "<b>lix" not in text

    wait_for(lambda: bool(sink_notifications(stack, "telegram-critical")), "the sink copy")
    payload = sink_notifications(stack, "telegram-critical")[0]["payload"]
    data = tmp_path / "payload.json"
    data.write_text(json.dumps(payload))
    rendered = run(
        [
            tool("alertmanager", "amtool"),
            "template",
            "render",
            f"--template.glob={AM_DIR / 'templates' / '*.tmpl'}",
            "--template.type=html",
            f"--template.data={data}",
            '--template.text={{ template "atalaia.telegram.message" . }}',
        ]
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert rendered.stdout.strip() == text.strip()


def test_without_secrets_the_real_integration_fails_and_the_sink_copy_arrives(
    stack: dict[str, str],
) -> None:
    # slack-platform has no secret file in this test: its Slack send fails, the sink gets it.
    r = httpx.post(
        f"{stack['am']}/api/v2/alerts",
        json=[alert("TargetDown", "warning", job="grafana", instance="grafana:3000")],
    )
    assert r.status_code == 200, r.text
    wait_for(lambda: bool(sink_notifications(stack, "slack-platform")), "the sink copy")
    wait_for(
        lambda: "slack_platform_webhook_url" in Path(stack["log"]).read_text(),
        "Alertmanager's log of the missing secret",
    )
    assert Capture.received == []


@pytest.mark.parametrize(
    "name",
    [
        "atalaia.title",
        "atalaia.text",
        "atalaia.summaries",
        "atalaia.email.subject",
        "atalaia.email.html",
        "atalaia.telegram.message",
        "atalaia.pagerduty.severity",
        "atalaia.grafana.alert_url",
    ],
)
def test_every_template_renders(tool, name: str) -> None:
    """amtool's example data (no runbook_url annotation, so atalaia.runbook.url is covered by the
    PagerDuty test above) through each template: no template error, some output."""
    result = run(
        [
            tool("alertmanager", "amtool"),
            "template",
            "render",
            f"--template.glob={AM_DIR / 'templates' / '*.tmpl'}",
            f'--template.text={{{{ template "{name}" . }}}}',
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip(), f"{name} rendered nothing"


# --- the sink's page, as a person sees it in a browser ------------------------------------------


def test_sink_page_in_chromium_shows_each_receivers_notifications(stack: dict[str, str]) -> None:
    """Real Alertmanager notifications in the real sink, its page rendered by headless Chromium:
    each alert under the receivers the routing tree sent it to, the receiver filter, and alert
    text that tries to inject markup shown as text."""
    hostile = "<script>document.title='pwned'</script> helix <b>vanished</b>"
    vanished = alert("AgentVanished", "critical", gen_ai_agent_name="helix")
    vanished["annotations"]["summary"] = hostile
    vanished["annotations"]["description"] = '<img src="x"> and <a href="https://x.test">a</a>'
    failing = alert("HighFailureRate", "warning", atalaia_department="ops", reason="timeout")
    failing["annotations"]["runbook_url"] = "javascript:alert(1)"
    r = httpx.post(f"{stack['am']}/api/v2/alerts", json=[vanished, failing])
    assert r.status_code == 200, r.text
    expected = {
        "AgentVanished": {"pagerduty-critical", "telegram-critical", "slack-critical"},
        "HighFailureRate": {"slack-platform"},
    }
    receivers = set().union(*expected.values())
    wait_for(
        lambda: all(sink_notifications(stack, rcv) for rcv in receivers),
        "the notifications of every receiver in the sink",
    )

    page = chromium.dom(f"{stack['sink']}/")
    assert page.find("h1").text() == "Atalaia alert sink"
    assert page.find("meta", http_equiv="refresh").attrs["content"].isdigit()  # reloads itself
    found: dict[str, set[str]] = {}
    for article in page.find_all("article", "notification"):
        for item in article.find_all("li", "alert"):
            found.setdefault(item.attrs["data-alertname"], set()).add(
                article.attrs["data-receiver"]
            )
    assert found == expected
    # Newest first.
    received = [t.attrs["datetime"] for t in page.find_all("time")]
    assert received == sorted(received, reverse=True)

    # The injected markup is text: no element was made from it, no script ran.
    assert page.find_all("script") == [] and page.find_all("img") == []
    assert page.find_all("b", None) == page.find_all("b", "alertname")
    assert page.find("title").text() != "pwned"
    [summary] = {s.text() for s in page.find_all("p", "summary") if "helix" in s.text()}
    assert summary == hostile
    item = page.find("li", "alert", data_alertname="AgentVanished")
    assert item.find("span", "severity").text() == "critical"
    assert item.find("span", "state").text() == "firing"
    assert item.find("dd", "ends").text() == "still firing"
    assert "gen_ai_agent_name=helix" in item.find("dd", "labels").text()
    links = {a.text(): a.attrs["href"] for a in item.find_all("a")}
    assert links == {
        "Runbook": f"{slo.RUNBOOK_BASE}AgentVanished.md",
        "Grafana": "http://localhost:3000/alerting/list?search=AgentVanished",
        "Prometheus": "http://prometheus:9090/graph?g0.expr=up",
    }
    # A javascript: runbook link from an alert's annotations is not made a link.
    item = page.find("li", "alert", data_alertname="HighFailureRate")
    assert "Runbook" not in {a.text() for a in item.find_all("a")}
    assert not [a for a in page.find_all("a") if a.attrs["href"].startswith("javascript:")]

    # The filter: follow the receiver's link in the page's navigation.
    nav = page.find("nav", "receivers")
    [link] = [a for a in nav.find_all("a") if a.text().startswith("telegram-critical ")]
    filtered = chromium.dom(urljoin(f"{stack['sink']}/", link.attrs["href"]))
    articles = filtered.find_all("article", "notification")
    assert articles
    assert {a.attrs["data-receiver"] for a in articles} == {"telegram-critical"}
    assert {i.attrs["data-alertname"] for i in filtered.find_all("li", "alert")} == {
        "AgentVanished"
    }
    current = filtered.find("nav", "receivers").find_all("a", aria_current="page")
    assert [a.text().split()[0] for a in current] == ["telegram-critical"]
