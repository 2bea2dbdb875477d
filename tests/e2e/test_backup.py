"""`make backup` and `make restore` on the real native stack: what the stack held before a backup
is there again after a restore into an EMPTY state directory, started as a new stack.

- Prometheus: a series pushed through the collector before the backup is queried back;
- the alert sink: a notification it recorded is listed again;
- Alertmanager: a silence made before the backup is active again;
- the log and trace store: a span and a log line sent before the backup are in its files.

The backup is taken while the stack runs: the stores pause for the copy and come back, and what
agents send meanwhile waits in the collector's queue and arrives (checked too). The restore needs
the stack's fixed ports, so this module runs last (tests/e2e/conftest.py) and brings the
session's stack back up when it is done.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.backends import Prometheus, Store, body, eventually
from tests.e2e.otlp import Telemetry, unique
from tools import backup
from tools.native_config import secrets_dir
from tools.native_stack import NativeStack, store_files

DURING = 40  # log lines sent while the backup runs, one every 50 ms


def notification(marker: str) -> dict:
    """A webhook payload as Alertmanager sends it (the sink validates the shape)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = {
        "status": "firing",
        "labels": {"alertname": "BackupProbe", "severity": "warning", "marker": marker},
        "annotations": {"summary": f"recorded before the backup ({marker})"},
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": "0123456789abcdef",
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="BackupProbe", marker="{marker}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "backup-probe",
        "groupLabels": {"alertname": "BackupProbe"},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }


def silence(am: str, marker: str) -> str:
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    resp = httpx.post(
        f"{am}/api/v2/silences",
        json={
            "matchers": [{"name": "marker", "value": marker, "isRegex": False, "isEqual": True}],
            "startsAt": stamp(now),
            "endsAt": stamp(now + 86400),
            "createdBy": "tests/e2e/test_backup.py",
            "comment": marker,
        },
        timeout=10,
    )
    resp.raise_for_status()
    return str(resp.json()["silenceID"])


def probe_value(prom: Prometheus, job: str) -> float | None:
    result = prom.query(f'last_over_time(backup_probe_total{{job="{job}"}}[1h])')
    return float(result[0]["value"][1]) if result else None


def in_store(store: Store, marker: str) -> tuple[int, int]:
    spans = sum(1 for _, s in store.spans() if s["name"] == f"{marker} span")
    logs = sum(1 for _, r in store.logs() if str(body(r)) == f"{marker} before")
    return spans, logs


def test_restore_into_an_empty_state_dir_brings_back_what_was_backed_up(
    native_stack: NativeStack, prometheus: Prometheus, telemetry: Telemetry, tmp_path: Path
) -> None:
    urls = native_stack.urls
    marker = unique("backup")
    store = Store(store_files(native_stack)["logs"].parent)

    # --- before the backup: one of each kind of state -------------------------------------------
    # The counter comes from an SDK of its own, shut down once it exported: an SDK left running
    # would export the same cumulative value again to the restored stack, and the series would
    # be found there whether or not the restore brought it back.
    probe = Telemetry(urls["otlp_grpc"], urls["otlp_http"])
    job = f"atalaia-e2e/{probe.service}"
    probe.meter.create_counter("backup.probe").add(42)
    probe.shutdown()
    with telemetry.tracer.start_as_current_span(f"{marker} span"):
        telemetry.logger.info("%s before", marker)
    telemetry.flush()
    eventually(lambda: probe_value(prometheus, job) == 42, timeout=60, what="the probe series")
    eventually(lambda: in_store(store, marker) == (1, 1), timeout=60, what="span and log stored")
    # As Alertmanager sends it: with the sink's bearer token (the native stack's secret).
    token = (secrets_dir(native_stack.state_dir) / "alert_sink_token").read_text().strip()
    httpx.post(
        f"{urls['alert_sink']}/webhook/backup-probe",
        json=notification(marker),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).raise_for_status()
    silence_id = silence(urls["alertmanager"], marker)

    # --- the backup, taken while the stack runs and agents keep sending ------------------------
    collector_pid = native_stack.running()["otel-collector"]
    sending = threading.Event()

    def keep_sending() -> None:
        for i in range(DURING):
            telemetry.logger.info("%s during %02d", marker, i)
            time.sleep(0.05)
        sending.set()

    sender = threading.Thread(target=keep_sending)
    sender.start()
    env_file = tmp_path / "repo.env"
    env_file.write_text("GRAFANA_ADMIN_PASSWORD=not-in-the-archive\nATALAIA_UI_BIND=127.0.0.1\n")
    archive = backup.backup(
        "native", tmp_path / "backups", state_dir=native_stack.state_dir, env_file=env_file
    )
    sender.join()
    assert archive.name.startswith("atalaia-backup-") and archive.name.endswith("Z.tar.gz")
    assert b"not-in-the-archive" not in archive.read_bytes()
    # Every service runs again; the collector never stopped.
    assert set(native_stack.running()) == {s.name for s in native_stack.services}
    assert native_stack.running()["otel-collector"] == collector_pid
    assert telemetry.logger_provider.force_flush(10_000)

    def during() -> int:
        return sum(1 for _, r in store.logs() if str(body(r)).startswith(f"{marker} during"))

    eventually(lambda: during() == DURING, timeout=90, what="every line sent during the pause")

    # --- restore into an empty state dir, as a new stack on the same ports ---------------------
    native_stack.stop()
    restored_dir = tmp_path / "restored"
    assert not restored_dir.exists()
    restored = NativeStack(restored_dir)
    try:
        parts = backup.restore(
            archive, "native", state_dir=restored_dir, env_file=tmp_path / "fresh.env"
        )
        assert {"prometheus", "alertmanager", "alert-sink", "log-trace-store"} <= set(parts)
        restored.up(timeout=120)

        # Prometheus: the series written before the backup.
        prom = Prometheus(restored.urls["prometheus"])
        eventually(lambda: probe_value(prom, job) == 42, timeout=60, what="the restored series")

        # The alert sink: the notification it recorded.
        def listed() -> list[dict]:
            resp = httpx.get(
                f"{restored.urls['alert_sink']}/notifications",
                params={"receiver": "backup-probe"},
                timeout=10,
            )
            resp.raise_for_status()
            return [n for n in resp.json()["notifications"] if marker in str(n)]

        assert len(listed()) == 1

        # Alertmanager: the silence, still active.
        silences = httpx.get(f"{restored.urls['alertmanager']}/api/v2/silences", timeout=10)
        mine = [s for s in silences.json() if s["id"] == silence_id]
        assert mine and mine[0]["comment"] == marker
        assert mine[0]["status"]["state"] == "active"

        # The log and trace store: the span and the log line sent before the backup.
        restored_store = Store(store_files(restored)["logs"].parent)
        assert in_store(restored_store, marker) == (1, 1)

        # A running stack is never restored over.
        with pytest.raises(backup.BackupError, match="is running"):
            backup.restore(archive, "native", state_dir=restored_dir, force=True)
    finally:
        restored.stop()
        native_stack.up(timeout=120)  # the session's stack, for whatever runs after this
