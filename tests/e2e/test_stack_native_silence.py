"""`make up-native` silences the one alert that is false by design natively: TargetDown for
Grafana, Loki and Tempo, which exist only as container images. Once, visibly, and only that
alert."""

from __future__ import annotations

import time

import httpx

from tools.native_stack import ABSENT_JOBS, SILENCE_AUTHOR, silence_absent_targets


def test_absent_targets_down_is_silenced_once(native_stack) -> None:
    am = native_stack.urls["alertmanager"]
    silence_absent_targets(am)  # the first call of this session may or may not create it
    assert silence_absent_targets(am) is False, "a second `up` must not add another silence"
    ours = [
        s
        for s in httpx.get(f"{am}/api/v2/silences", timeout=5).json()
        if s["createdBy"] == SILENCE_AUTHOR and s["status"]["state"] == "active"
    ]
    assert len(ours) == 1, ours
    matchers = {(m["name"], m["value"], m["isRegex"]) for m in ours[0]["matchers"]}
    assert matchers == {("alertname", "TargetDown", False), ("job", ABSENT_JOBS, True)}
    # It silences exactly that. Probe with two short-lived synthetic alerts (they expire in 20 s
    # and carry a label that says what they are).
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 20))
    alerts = [
        {
            "labels": {"alertname": "TargetDown", "job": job, "atalaia_probe": "silence-test"},
            "endsAt": ends,
        }
        for job in ("grafana", "loki", "tempo", "prometheus")
    ]
    httpx.post(f"{am}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()
    state = {
        a["labels"]["job"]: a["status"]["state"]
        for a in httpx.get(f"{am}/api/v2/alerts", timeout=5).json()
        if a["labels"].get("atalaia_probe") == "silence-test"
    }
    assert state == {
        "grafana": "suppressed",
        "loki": "suppressed",
        "tempo": "suppressed",
        "prometheus": "active",
    }, state
