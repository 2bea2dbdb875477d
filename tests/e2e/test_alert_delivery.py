"""A real alert, end to end: a demo-fleet fault fires it, Alertmanager routes it, the sink has it.

The session's demo fleet (tests/e2e/conftest.py `fleet_run`, fault-free once its tour is over)
gets the `db_down` fault: Sigma's report database goes away, its pool reports no connections
(`db_client_connection_count` 0), and after the rule's `for: 1m` Prometheus fires
`DatabaseDown` (prometheus/rules/agents.yml, severity critical). Alertmanager routes it
(alertmanager/alertmanager.yml) and, after `group_wait`, the webhook of every matched receiver
delivers it to the alert sink (atalaia_ops.alert_sink), which records it under that receiver.
Clearing the fault resolves it: Prometheus stops firing it and Alertmanager no longer holds it
as active. The resolved notification itself waits for `group_interval` (5m), so it is not
awaited here. No config file is changed for the test; every wait is a poll with a deadline.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.backends import Prometheus, eventually
from tests.e2e.conftest import FleetRun
from tools.native_stack import NativeStack
from tools.upstream import REPO

FAULT = "db_down"
ALERT = "DatabaseDown"
AGENT = "Sigma"  # db_down's default agent: the one with the report database
# What the routing tree of alertmanager/alertmanager.yml says for a critical alert: PagerDuty and
# Telegram (each with `continue`) and then Slack #alerts-critical, which stops there, so the
# catch-all slack-platform and finance's e-mail never see it. Cross-checked with amtool below.
RECEIVERS = {"pagerduty-critical", "telegram-critical", "slack-critical"}
NOT_RECEIVERS = {"slack-platform", "email-finance", "deadmans-switch"}
AM_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
# Deadlines. Firing: the pool's next report (a Sigma task), one metric export (15 s), one rule
# evaluation (15 s), `for: 1m`, one more evaluation. Delivered: group_wait (30 s) plus the send.
# Resolved: the next Sigma task, one export, one evaluation, Prometheus's send.
FIRING_S = 180.0
DELIVERED_S = 90.0
RESOLVED_S = 120.0


def our_alerts(alerts: list[dict[str, Any]], state: str | None = None) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == ALERT
        and a["labels"].get("gen_ai_agent_name") == AGENT
        and (state is None or a["state"] == state)
    ]


class Sink:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def notifications(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/notifications", timeout=10)
        resp.raise_for_status()
        return list(resp.json()["notifications"])

    def of_alert(self, skip: set[str]) -> list[dict[str, Any]]:
        """Notifications (not in `skip`) that carry a firing DatabaseDown of our agent."""
        return [
            n
            for n in self.notifications()
            if n["id"] not in skip
            and any(
                a["status"] == "firing"
                and a["labels"].get("alertname") == ALERT
                and a["labels"].get("gen_ai_agent_name") == AGENT
                for a in n["payload"]["alerts"]
            )
        ]


def am_alerts(url: str) -> list[dict[str, Any]]:
    """Alertmanager's alerts named ALERT for our agent, whatever their state."""
    resp = httpx.get(
        f"{url}/api/v2/alerts",
        params={"filter": [f'alertname="{ALERT}"', f'gen_ai_agent_name="{AGENT}"']},
        timeout=10,
    )
    resp.raise_for_status()
    return list(resp.json())


def amtool_receivers(amtool: Path, labels: dict[str, str]) -> set[str]:
    """The receivers alertmanager.yml's routing tree picks for `labels`, as amtool says."""
    result = subprocess.run(
        [
            str(amtool),
            "config",
            "routes",
            "test",
            f"--config.file={AM_CONFIG}",
            *(f"{k}={v}" for k, v in sorted(labels.items())),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {r.strip() for r in result.stdout.strip().split(",") if r.strip()}


def test_db_down_fires_database_down_routed_to_the_critical_receivers_then_resolves(
    native_stack: NativeStack,
    prometheus: Prometheus,
    fleet_run: FleetRun,
    tool: Callable[..., Path],
) -> None:
    sink = Sink(native_stack.urls["alert_sink"])
    alertmanager = native_stack.urls["alertmanager"]
    # Nothing of ours is there before: whatever we find below comes from this fault.
    assert not our_alerts(prometheus.alerts()), f"{ALERT} is already active before the fault"
    assert not [a for a in am_alerts(alertmanager) if a["status"]["state"] == "active"]
    before = {n["id"] for n in sink.notifications()}
    fault = f"{fleet_run.orchestrator}/faults/{FAULT}"
    httpx.post(fault, timeout=10).raise_for_status()
    try:
        fire_deliver_resolve(
            prometheus, sink, alertmanager, tool("alertmanager", "amtool"), before, fault
        )
    finally:
        httpx.delete(fault, timeout=10)  # 404 once cleared: fine


def fire_deliver_resolve(
    prometheus: Prometheus,
    sink: Sink,
    alertmanager: str,
    amtool: Path,
    before: set[str],
    fault: str,
) -> None:
    """With the fault on: the alert fires, is routed and delivered; the fault off: it resolves."""
    switched_on = time.monotonic()
    firing = eventually(
        lambda: our_alerts(prometheus.alerts(), "firing"),
        timeout=FIRING_S,
        what=f"{ALERT} firing in Prometheus after {FAULT}",
        interval=2,
    )
    fired_after = time.monotonic() - switched_on
    labels = firing[0]["labels"]
    assert labels["severity"] == "critical", labels
    assert firing[0]["annotations"]["runbook_url"].endswith(f"/runbooks/{ALERT}.md")

    # The routing tree, read by Alertmanager's own amtool, agrees with what this test expects.
    routed = amtool_receivers(amtool, labels)
    assert routed == RECEIVERS, f"amtool routes {labels} to {sorted(routed)}"

    def delivered() -> dict[str, list[dict[str, Any]]]:
        by_receiver: dict[str, list[dict[str, Any]]] = {}
        for n in sink.of_alert(before):
            by_receiver.setdefault(n["receiver"], []).append(n)
        missing = RECEIVERS - set(by_receiver)
        assert not missing, f"nothing yet under {sorted(missing)}; got {sorted(by_receiver)}"
        return by_receiver

    by_receiver = eventually(
        delivered,
        timeout=DELIVERED_S,
        what=f"a firing {ALERT} notification in the sink under each of {sorted(RECEIVERS)}",
        interval=2,
    )
    delivered_after = time.monotonic() - switched_on
    for receiver in RECEIVERS:
        payload = by_receiver[receiver][0]["payload"]
        assert payload["receiver"] == receiver, payload["receiver"]
        assert payload["status"] == "firing"
        assert payload["commonLabels"]["alertname"] == ALERT
    wrong = set(by_receiver) & NOT_RECEIVERS
    assert not wrong, f"{ALERT} also reached {sorted(wrong)}, which the routing tree excludes"
    # Alertmanager itself says where it went.
    active = [a for a in am_alerts(alertmanager) if a["status"]["state"] == "active"]
    assert active, f"Alertmanager has no active {ALERT}"
    assert {r["name"] for r in active[0]["receivers"]} == RECEIVERS

    httpx.delete(fault, timeout=10).raise_for_status()
    cleared = time.monotonic()
    eventually(
        lambda: not our_alerts(prometheus.alerts()),
        timeout=RESOLVED_S,
        what=f"{ALERT} no longer pending or firing in Prometheus after clearing {FAULT}",
        interval=2,
    )

    def resolved_in_alertmanager() -> bool:
        still = [a for a in am_alerts(alertmanager) if a["status"]["state"] == "active"]
        assert not still, f"still active in Alertmanager, endsAt {still[0]['endsAt']}"
        return True

    eventually(
        resolved_in_alertmanager,
        timeout=60,
        what=f"{ALERT} resolved (not active) in Alertmanager",
        interval=2,
    )
    print(
        f"\n{ALERT}: firing {fired_after:.0f}s after {FAULT}, in the sink after "
        f"{delivered_after:.0f}s, resolved {time.monotonic() - cleared:.0f}s after clearing"
    )
