"""The local alert sink: where Alertmanager delivers when no real integration is configured.

    python -m atalaia.alert_sink --host 127.0.0.1 --port 9199 [--data-dir DIR]

Alertmanager posts its webhook payload (version 4) to ``POST /webhook/<receiver>``; every receiver
in alertmanager/alertmanager.yml has such a webhook, so a person can see what would have gone to
PagerDuty, Slack or e-mail. The sink

- validates the payload and answers 400 (not JSON) or 422 (not an Alertmanager webhook payload)
  with a message saying what is wrong, storing nothing;
- appends each accepted notification to ``<data-dir>/notifications.jsonl`` and fsyncs it before
  answering 200, so nothing it accepted is lost, across restarts too;
- logs each notification as one JSON line on stdout (which lands in Loki);
- lists them at ``GET /notifications`` (newest first; ``?receiver=`` and ``?limit=`` filter) and
  answers ``GET /health``.

Standard library only: it runs in the same small image as the rest of the Python code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORT = 9199
DATA_DIR_ENV = "ATALAIA_ALERT_SINK_DATA_DIR"
MAX_BODY_BYTES = 8 * 1024 * 1024  # Alertmanager sends whole groups; 8 MiB is thousands of alerts.
RECEIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATUSES = ("firing", "resolved")

log = logging.getLogger("atalaia.alert_sink")


class PayloadError(ValueError):
    """The body is JSON but not an Alertmanager webhook payload."""


def _is_str_map(value: Any) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _check_time(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{where} must be an RFC 3339 time string")
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"{where} is not an RFC 3339 time: {value!r}")


def validate_payload(payload: Any) -> None:
    """Raise PayloadError listing every way `payload` departs from Alertmanager's webhook format.

    https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
    """
    if not isinstance(payload, dict):
        raise PayloadError("the body must be a JSON object")
    errors: list[str] = []
    if payload.get("version") != "4":
        errors.append(f'"version" must be "4", got {payload.get("version")!r}')
    for key in ("groupKey", "receiver", "status", "externalURL"):
        if not isinstance(payload.get(key), str):
            errors.append(f'"{key}" must be a string')
    if payload.get("status") not in STATUSES:
        errors.append(f'"status" must be one of {", ".join(STATUSES)}')
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        if not _is_str_map(payload.get(key)):
            errors.append(f'"{key}" must be an object of strings')
    truncated = payload.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        errors.append('"truncatedAlerts" must be a non-negative integer')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        errors.append('"alerts" must be a non-empty array')
        alerts = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(alert, dict):
            errors.append(f"{where} must be an object")
            continue
        if alert.get("status") not in STATUSES:
            errors.append(f"{where}.status must be one of {', '.join(STATUSES)}")
        labels = alert.get("labels")
        if not _is_str_map(labels):
            errors.append(f"{where}.labels must be an object of strings")
        elif "alertname" not in labels:
            errors.append(f"{where}.labels has no alertname")
        if not _is_str_map(alert.get("annotations")):
            errors.append(f"{where}.annotations must be an object of strings")
        _check_time(alert.get("startsAt"), f"{where}.startsAt", errors)
        _check_time(alert.get("endsAt"), f"{where}.endsAt", errors)
        for key in ("generatorURL", "fingerprint"):
            if key in alert and not isinstance(alert[key], str):
                errors.append(f"{where}.{key} must be a string")
    if errors:
        raise PayloadError("; ".join(errors))


class Store:
    """Append-only JSONL file; the file is the truth, so a restart loses nothing."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "notifications.jsonl"
        self._lock = threading.Lock()

    def append(self, receiver: str, payload: dict[str, Any]) -> dict[str, Any]:
        record = {
            "id": uuid.uuid4().hex,
            "received_at": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "receiver": receiver,
            "payload": payload,
        }
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return record

    def _records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self._lock:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                # Only a crash in the middle of a write can leave a partial last line.
                log.warning(
                    "skipping unreadable line",
                    extra={"fields": {"line": n, "file": str(self.path)}},
                )

    def list(self, receiver: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        found = [r for r in self._records() if receiver is None or r.get("receiver") == receiver]
        found.reverse()  # newest first
        return found if limit is None else found[:limit]

    def count(self) -> int:
        return sum(1 for _ in self._records())


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, the shape the rest of Atalaia logs in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, ensure_ascii=False)


def _summary(receiver: str, record: dict[str, Any]) -> dict[str, Any]:
    payload = record["payload"]
    alerts = payload["alerts"]
    return {
        "notification_id": record["id"],
        "receiver": receiver,
        "status": payload["status"],
        "alertname": payload["commonLabels"].get("alertname") or alerts[0]["labels"]["alertname"],
        "severity": payload["commonLabels"].get("severity", ""),
        "alerts": len(alerts),
        "firing": sum(1 for a in alerts if a["status"] == "firing"),
        "group_key": payload["groupKey"],
        "summaries": [a["annotations"].get("summary", "") for a in alerts],
    }


class Handler(BaseHTTPRequestHandler):
    server: SinkServer
    server_version = "atalaia-alert-sink"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs would drown the notifications; errors are logged explicitly

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        log.warning(
            "rejected request",
            extra={"fields": {"path": self.path, "status": int(status), "error": message}},
        )
        self._send(status, {"error": message})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok", "notifications": self.server.store.count()})
            return
        if url.path == "/notifications":
            query = parse_qs(url.query)
            receiver = query.get("receiver", [None])[0]
            limit_text = query.get("limit", [None])[0]
            limit = None
            if limit_text is not None:
                if not limit_text.isdigit():
                    self._error(HTTPStatus.BAD_REQUEST, "limit must be a non-negative integer")
                    return
                limit = int(limit_text)
            items = self.server.store.list(receiver, limit)
            self._send(HTTPStatus.OK, {"count": len(items), "notifications": items})
            return
        if url.path.startswith("/webhook/"):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "POST an Alertmanager webhook payload here")
            return
        self._error(HTTPStatus.NOT_FOUND, f"no such path: {url.path}")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if not url.path.startswith("/webhook/"):
            self._error(
                HTTPStatus.NOT_FOUND, f"no such path: {url.path}; POST to /webhook/<receiver>"
            )
            return
        receiver = url.path.removeprefix("/webhook/")
        if not RECEIVER_RE.match(receiver):
            self._error(HTTPStatus.BAD_REQUEST, f"invalid receiver name {receiver!r}")
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read; do not reuse the connection
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
            return
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self._error(HTTPStatus.BAD_REQUEST, f"body is not valid JSON: {e}")
            return
        try:
            validate_payload(payload)
        except PayloadError as e:
            self._error(
                HTTPStatus.UNPROCESSABLE_ENTITY, f"not an Alertmanager webhook payload: {e}"
            )
            return
        record = self.server.store.append(receiver, payload)
        log.info("notification", extra={"fields": _summary(receiver, record)})
        self._send(HTTPStatus.OK, {"id": record["id"], "receiver": receiver})


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store) -> None:
        self.store = store
        super().__init__(address, Handler)


def default_data_dir() -> Path:
    """$ATALAIA_ALERT_SINK_DATA_DIR, else the XDG state directory: writable for an unprivileged
    user in a container (its home) and outside the repository when run natively."""
    if explicit := os.environ.get(DATA_DIR_ENV):
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "atalaia" / "alert-sink"


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atalaia.alert_sink", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help=f"where notifications.jsonl lives (default: ${DATA_DIR_ENV}, else "
        "$XDG_STATE_HOME/atalaia/alert-sink, else ~/.local/state/atalaia/alert-sink)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    try:
        store = Store(args.data_dir)
        with store.path.open("a"):  # fail now, not on the first alert, if it is not writable
            pass
    except OSError as e:
        log.error("cannot write the data dir", extra={"fields": {"error": str(e)}})
        return 2
    server = SinkServer((args.host, args.port), store)
    host, port = str(server.server_address[0]), server.server_port
    log.info(
        "listening",
        extra={"fields": {"address": f"http://{host}:{port}", "data_dir": str(args.data_dir)}},
    )

    def stop(signum: int, frame: object) -> None:
        # docker stop sends SIGTERM; every accepted notification is already on disk.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
