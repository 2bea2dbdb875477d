"""Alertmanager's silence API behind its own basic auth (alertmanager/web.example.yml, switched
on as docs/alerting.md says), run with the real binary: without the password nobody creates a
silence (one `alertname=~".+"` silence mutes every page) or forges an alert; with it, both work."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tools.upstream import REPO

USER = "atalaia"
PASSWORD = "atalaia-test-only-password"  # a test password, hashed below
# bcrypt of PASSWORD (cost 10), made once: the hash is all the web config holds.
HASH = "$2b$10$VtsN5NzhsuzsDfvctESUweleTf3u1MmiJziyWzRqofRMchnn1M8F2"

SILENCE = {
    "matchers": [{"name": "alertname", "value": ".+", "isRegex": True, "isEqual": True}],
    "startsAt": "2026-01-01T00:00:00Z",
    "endsAt": "2099-01-01T00:00:00Z",
    "createdBy": "someone",
    "comment": "mute everything",
}
ALERT = [{"labels": {"alertname": "DatabaseDown", "severity": "critical"}}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def alertmanager(tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("am-auth")
    example = yaml.safe_load((REPO / "alertmanager" / "web.example.yml").read_text())
    assert set(example) == {"basic_auth_users"}, "the example is what this test switches on"
    (tmp / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": {USER: HASH}}))
    port = _free_port()
    log = tmp / "alertmanager.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(tool("alertmanager")),
                f"--config.file={REPO / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.config.file={tmp / 'web.yml'}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/-/ready", auth=(USER, PASSWORD), timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_silence_without_the_password_is_refused(alertmanager: str) -> None:
    resp = httpx.post(f"{alertmanager}/api/v2/silences", json=SILENCE, timeout=5)
    assert resp.status_code == 401
    wrong = httpx.post(
        f"{alertmanager}/api/v2/silences", json=SILENCE, auth=(USER, "guess"), timeout=5
    )
    assert wrong.status_code == 401
    listed = httpx.get(f"{alertmanager}/api/v2/silences", auth=(USER, PASSWORD), timeout=5)
    assert listed.json() == [], "a refused silence must not exist"


def test_forged_alerts_and_reads_without_the_password_are_refused(alertmanager: str) -> None:
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=ALERT, timeout=5).status_code == 401
    assert httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).status_code == 401


def test_with_the_password_silences_work(alertmanager: str) -> None:
    resp = httpx.post(
        f"{alertmanager}/api/v2/silences", json=SILENCE, auth=(USER, PASSWORD), timeout=5
    )
    assert resp.status_code == 200, resp.text
    assert "silenceID" in resp.json()
