"""The local alert sink: where Alertmanager delivers when no real integration is configured.

    python -m atalaia_ops.alert_sink --host 127.0.0.1 --port 9199 [--data-dir DIR]

Alertmanager posts its webhook payload (version 4) to ``POST /webhook/<receiver>``; every receiver
in alertmanager/alertmanager.yml has such a webhook, so a person can see what would have gone to
PagerDuty, Slack, Telegram or e-mail. The sink

- with ``--token-file`` (compose and the native stack always give one), records only what carries
  ``Authorization: Bearer <that token>``, as Alertmanager's webhook ``http_config`` sends it, and
  answers 401 to anything else: nobody else can forge a notification;
- validates the payload and answers 400 (not JSON) or 422 (not an Alertmanager webhook payload)
  with a message saying what is wrong, storing nothing;
- appends each accepted notification to ``<data-dir>/notifications.jsonl`` and fsyncs it before
  answering 200, so nothing it accepted is lost, across restarts too;
- drops a client that stops sending for READ_TIMEOUT_S (10 s) and handles at most
  ``--max-connections`` (64) at once, answering 503 with Retry-After beyond that: slow or
  flooding clients cannot pile up threads;
- logs each notification as one JSON line on stdout (which lands in Loki);
- lists them at ``GET /notifications`` (newest first; ``?receiver=`` and ``?limit=`` filter) and
  answers ``GET /health``;
- shows them to a person at ``GET /``: an HTML page, newest first, filterable by receiver, that
  reloads itself. Alert text is untrusted (it comes from whatever the agents send), so every value
  is escaped, only http(s) links are made, and a Content-Security-Policy allows no script at all.

Standard library only: it runs in the same small image as the rest of the Python code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import html
import json
import logging
import os
import re
import signal
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import parse_qs, quote, urlencode, urlsplit

DEFAULT_PORT = 9199
DATA_DIR_ENV = "ATALAIA_ALERT_SINK_DATA_DIR"
TOKEN_FILE_ENV = "ATALAIA_ALERT_SINK_TOKEN_FILE"
READ_TIMEOUT_S = 10  # a client that stops sending mid-request is dropped, not waited for
# Connections handled at once. Alertmanager sends a few at a time; a flood of slow clients beyond
# this gets an immediate 503 (retryable) instead of one thread each.
MAX_CONNECTIONS = 64
MAX_BODY_BYTES = 8 * 1024 * 1024  # Alertmanager sends whole groups; 8 MiB is thousands of alerts.
RECEIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATUSES = ("firing", "resolved")
GRAFANA_URL_ENV = "ATALAIA_GRAFANA_URL"
DEFAULT_GRAFANA_URL = "http://localhost:3000"  # as in alertmanager/templates/atalaia.tmpl
PAGE_LIMIT = 100  # notifications on the page unless ?limit= says otherwise
PAGE_REFRESH_S = 10

log = logging.getLogger("atalaia_ops.alert_sink")


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
        # The time is taken under the lock, so the file's order (newest last) is also the order
        # of received_at when Alertmanager posts to several receivers at once.
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            record = {
                "id": uuid.uuid4().hex,
                "received_at": datetime.now(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "receiver": receiver,
                "payload": payload,
            }
            f.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
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


# --- the page at / ---------------------------------------------------------------------------

PAGE_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 0 1rem;
  color: #1f2328; background: #f6f8fa; }
header.page { padding: 1rem 0 .5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.muted { color: #59636e; }
nav.receivers a { display: inline-block; margin: 0 .35rem .35rem 0; padding: .15rem .6rem;
  border: 1px solid #d1d9e0; border-radius: 1rem; color: #0969da; text-decoration: none;
  background: #fff; }
nav.receivers a[aria-current="page"] { background: #0969da; color: #fff; border-color: #0969da; }
article.notification { background: #fff; border: 1px solid #d1d9e0; border-left: 6px solid #cf222e;
  border-radius: 6px; margin: .75rem 0; padding: .5rem .9rem; }
article.notification.resolved { border-left-color: #1a7f37; }
article.notification > h2 { font-size: 1.05rem; margin: .2rem 0; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .3rem; font-size: .8rem;
  font-weight: 600; text-transform: uppercase; background: #eaeef2; color: #1f2328; }
.badge.firing, .badge.sev-critical { background: #cf222e; color: #fff; }
.badge.resolved { background: #1a7f37; color: #fff; }
.badge.sev-warning { background: #bf8700; color: #fff; }
.badge.receiver { text-transform: none; background: #ddf4ff; color: #0550ae; }
ol.alerts { list-style: none; margin: 0; padding: 0; }
li.alert { border-top: 1px solid #eaeef2; padding: .45rem 0; overflow-wrap: anywhere; }
li.alert p { margin: .15rem 0; }
.summary { font-weight: 600; }
.description { white-space: pre-wrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 .8rem; margin: .25rem 0; }
dt { color: #59636e; }
dd { margin: 0; }
code { font-size: .85rem; background: #f6f8fa; padding: 0 .25rem; border-radius: .25rem; }
p.links a { margin-right: .8rem; }
"""
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        # The one inline stylesheet above, by its hash: no script, no other source of anything.
        "style-src 'sha256-"
        + base64.b64encode(hashlib.sha256(PAGE_CSS.encode()).digest()).decode()
        + "'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SEVERITY_CLASSES = {"critical", "warning", "info", "none"}


def _e(value: Any) -> str:
    """Text or attribute value, escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def _safe_url(value: Any) -> str | None:
    """`value` if it is an absolute http(s) URL, else None: no javascript:, data: or relative
    links from untrusted annotations."""
    if not isinstance(value, str):
        return None
    try:
        url = urlsplit(value.strip())
    except ValueError:
        return None
    return value.strip() if url.scheme in ("http", "https") and url.netloc else None


def _when(value: Any) -> str:
    """An RFC 3339 time as 'YYYY-MM-DD HH:MM:SS UTC'; '' for Alertmanager's zero time."""
    if not isinstance(value, str):
        return ""
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.year <= 1:
        return ""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _link(url: str | None, text: str) -> str:
    if url is None:
        return ""
    return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(text)}</a>'


def _page_url(receiver: str | None) -> str:
    return "/" if receiver is None else "/?" + urlencode({"receiver": receiver})


def _render_alert(alert: dict[str, Any], grafana_url: str) -> str:
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    name = labels.get("alertname", "")
    status = alert.get("status") if alert.get("status") in STATUSES else "firing"
    severity = labels.get("severity", "")
    sev_class = f"sev-{severity}" if severity in SEVERITY_CLASSES else "sev-other"
    grafana = _safe_url(annotations.get("grafana_url")) or _safe_url(
        annotations.get("dashboard_url")
    )
    if grafana is None and name:
        grafana = _safe_url(f"{grafana_url}/alerting/list?search={quote(name, safe='')}")
    started, ended = _when(alert.get("startsAt")), _when(alert.get("endsAt"))
    pairs = " ".join(
        f"<code>{_e(k)}={_e(v)}</code>" for k, v in sorted(labels.items()) if k != "alertname"
    )
    links = " ".join(
        x
        for x in (
            _link(_safe_url(annotations.get("runbook_url")), "Runbook"),
            _link(grafana, "Grafana"),
            _link(_safe_url(alert.get("generatorURL")), "Prometheus"),
        )
        if x
    )
    parts = [
        f'<li class="alert {status}" data-alertname="{_e(name)}" data-status="{status}">',
        f'<p><b class="alertname">{_e(name)}</b> '
        f'<span class="badge severity {sev_class}">{_e(severity or "no severity")}</span> '
        f'<span class="badge state {status}">{status}</span></p>',
    ]
    if annotations.get("summary"):
        parts.append(f'<p class="summary">{_e(annotations["summary"])}</p>')
    if annotations.get("description"):
        parts.append(f'<p class="description">{_e(annotations["description"])}</p>')
    parts.append("<dl>")
    parts.append(f'<dt>Started</dt><dd class="starts">{_e(started or "unknown")}</dd>')
    ended_text = ended if status == "resolved" and ended else "still firing"
    parts.append(f'<dt>Ended</dt><dd class="ends">{_e(ended_text)}</dd>')
    if pairs:
        parts.append(f'<dt>Labels</dt><dd class="labels">{pairs}</dd>')
    parts.append("</dl>")
    if links:
        parts.append(f'<p class="links">{links}</p>')
    parts.append("</li>")
    return "".join(parts)


def _render_notification(record: dict[str, Any], grafana_url: str) -> str:
    payload = record.get("payload") or {}
    alerts = [a for a in payload.get("alerts") or [] if isinstance(a, dict)]
    status = payload.get("status") if payload.get("status") in STATUSES else "firing"
    common = payload.get("commonLabels") or {}
    first = (alerts[0].get("labels") or {}) if alerts else {}
    name = common.get("alertname") or first.get("alertname", "")
    firing = sum(1 for a in alerts if a.get("status") == "firing")
    count = f"{firing} of {len(alerts)} firing" if status == "firing" else f"{len(alerts)} alerts"
    receiver = record.get("receiver", "")
    return "".join(
        [
            f'<article class="notification {status}" data-receiver="{_e(receiver)}">',
            f'<h2><span class="badge receiver">{_e(receiver)}</span> '
            f'<span class="badge {status}">{status}</span> {_e(name)}</h2>',
            f'<p class="muted">received <time datetime="{_e(record.get("received_at"))}">'
            f"{_e(_when(record.get('received_at')))}</time> &middot; {_e(count)}</p>",
            '<ol class="alerts">',
            *(_render_alert(a, grafana_url) for a in alerts),
            "</ol></article>",
        ]
    )


def render_page(
    records: list[dict[str, Any]],
    *,
    receiver: str | None = None,
    limit: int = PAGE_LIMIT,
    grafana_url: str = DEFAULT_GRAFANA_URL,
) -> str:
    """The page at /: `records` (all of them, newest first) filtered to `receiver`, at most
    `limit`, with a link per receiver. Every value from a record is escaped."""
    counts = Counter(str(r.get("receiver", "")) for r in records)
    shown = [r for r in records if receiver is None or r.get("receiver") == receiver][:limit]
    all_current = ' aria-current="page"' if receiver is None else ""
    nav = [f'<a href="/"{all_current}>all ({len(records)})</a>']
    for name in sorted(counts):
        current = ' aria-current="page"' if name == receiver else ""
        nav.append(f'<a href="{_e(_page_url(name))}"{current}>{_e(name)} ({counts[name]})</a>')
    where = "every receiver" if receiver is None else f"receiver {receiver}"
    if shown:
        body = "".join(_render_notification(r, grafana_url) for r in shown)
    elif records:
        body = f'<p class="empty">Nothing was sent to {_e(where)}.</p>'
    else:
        body = (
            '<p class="empty">No notifications yet. Alertmanager delivers here, to '
            "<code>POST /webhook/&lt;receiver&gt;</code>, when an alert fires.</p>"
        )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{PAGE_REFRESH_S}">'
        f"<title>Alert sink: {_e(where)}</title>"
        f"<style>{PAGE_CSS}</style></head><body>"
        '<header class="page"><h1>Atalaia alert sink</h1>'
        '<p class="muted">What Alertmanager would have sent to each receiver, newest first '
        f"({len(shown)} of {counts[receiver] if receiver is not None else len(records)} "
        f"for {_e(where)}). Updated {now}; reloads every {PAGE_REFRESH_S} s.</p>"
        f'<nav class="receivers" aria-label="receivers">{"".join(nav)}</nav></header>'
        f"<main>{body}</main></body></html>\n"
    )


class Handler(BaseHTTPRequestHandler):
    server: SinkServer
    server_version = "atalaia-alert-sink"
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S  # socket timeout for every read: headers and body

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs would drown the notifications; errors are logged explicitly

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_page(self, page: str) -> None:
        data = page.encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", PAGE_CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        log.warning(
            "rejected request",
            extra={"fields": {"path": self.path, "status": int(status), "error": message}},
        )
        self._send(status, {"error": message})

    def _page(self, query_text: str) -> None:
        query = parse_qs(query_text)
        limit_text = query.get("limit", [str(PAGE_LIMIT)])[0]
        if not limit_text.isdigit():
            self._error(HTTPStatus.BAD_REQUEST, "limit must be a non-negative integer")
            return
        page = render_page(
            self.server.store.list(),
            receiver=query.get("receiver", [None])[0],
            limit=int(limit_text),
            grafana_url=self.server.grafana_url,
        )
        self._send_page(page)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/":
            self._page(url.query)
            return
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
        token = self.server.token
        if token is not None:
            sent = self.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                self.close_connection = True  # the body is not read
                self._error(HTTPStatus.UNAUTHORIZED, "a webhook needs the sink's bearer token")
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

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        grafana_url: str = DEFAULT_GRAFANA_URL,
        token: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.store = store
        self.grafana_url = grafana_url.rstrip("/")
        self.token = token  # None: webhooks need no token (tests, a sink on loopback only)
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):  # the client may be gone already
                request.sendall(BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


_BUSY_BODY = b'{"error": "too many connections open"}'
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_BUSY_BODY)
) + _BUSY_BODY


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
        prog="python -m atalaia_ops.alert_sink", description=__doc__.split("\n\n")[0]
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
    parser.add_argument(
        "--grafana-url",
        default=os.environ.get(GRAFANA_URL_ENV) or DEFAULT_GRAFANA_URL,
        help=f"Grafana's address for the page's links (default: ${GRAFANA_URL_ENV}, "
        f"else {DEFAULT_GRAFANA_URL})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=os.environ.get(TOKEN_FILE_ENV) or None,
        help="file holding the bearer token webhooks must send (Alertmanager's http_config "
        f"credentials_file); default: ${TOKEN_FILE_ENV}, else no token is asked for",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="connections handled at once; more get 503 (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as e:
            log.error("cannot read the token file", extra={"fields": {"error": str(e)}})
            return 2
        if not token:
            log.error("the token file is empty", extra={"fields": {"file": str(args.token_file)}})
            return 2
    try:
        store = Store(args.data_dir)
        with store.path.open("a"):  # fail now, not on the first alert, if it is not writable
            pass
    except OSError as e:
        log.error("cannot write the data dir", extra={"fields": {"error": str(e)}})
        return 2
    server = SinkServer(
        (args.host, args.port), store, args.grafana_url, token, args.max_connections
    )
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
