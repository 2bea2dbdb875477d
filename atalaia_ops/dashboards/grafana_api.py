"""Pushing Atalaia's datasources, folder and dashboards into an existing Grafana over its HTTP API.

Idempotent: each object is read first and written only when it differs, so a second run reports
everything `unchanged`; a changed one is overwritten in place (same uid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Json = dict[str, Any]
# Fields Grafana adds or manages itself; they never count as a difference.
_DS_FIELDS = ("name", "type", "access", "url", "isDefault", "jsonData")
_DASHBOARD_VOLATILE = ("id", "version")


class GrafanaError(RuntimeError):
    """A failure with a message meant for the user; `exit_code` for the CLI."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Report:
    actions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, action)

    def add(self, kind: str, name: str, action: str) -> None:
        self.actions.append((kind, name, action))

    @property
    def changed(self) -> int:
        return sum(1 for *_, a in self.actions if a != "unchanged")


class Grafana:
    def __init__(self, url: str, token: str, timeout: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise GrafanaError(f"--grafana-url must start with http:// or https://, got {url!r}", 2)
        if not token:
            raise GrafanaError("a Grafana token is required (--token or $GRAFANA_TOKEN)", 2)
        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, json: Json | None = None) -> httpx.Response:
        try:
            resp = self.client.request(method, path, json=json)
        except httpx.TransportError as e:
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {e}", 3) from e
        if resp.status_code == 401:
            raise GrafanaError(
                f"Grafana at {self.url} rejected the token (401 {message(resp)}): "
                "pass a valid service account token with --token",
                4,
            )
        if resp.status_code == 403:
            raise GrafanaError(
                f"the token may not {method} {path} (403 {message(resp)}): "
                "its service account needs the Admin role to manage datasources",
                4,
            )
        return resp

    def get(self, path: str) -> Json | None:
        resp = self.request("GET", path)
        if resp.status_code == 404:
            return None
        expect(resp, f"GET {path}")
        return dict(resp.json())

    def send(self, method: str, path: str, body: Json) -> Json:
        resp = self.request(method, path, body)
        expect(resp, f"{method} {path}")
        return dict(resp.json())

    # --- the three kinds of objects -----------------------------------------------------------

    def check(self) -> str:
        """Grafana's version, and proof that the token is accepted."""
        health = self.get("/api/health") or {}
        self.get("/api/user")  # /api/health needs no auth: this call checks the token
        return str(health.get("version", "unknown"))

    def upsert_datasource(self, ds: Json, report: Report) -> None:
        current = self.get(f"/api/datasources/uid/{ds['uid']}")
        if current is None:
            self.send("POST", "/api/datasources", ds)
            report.add("datasource", ds["uid"], "created")
        elif any(current.get(k) != ds.get(k) for k in _DS_FIELDS):
            self.send("PUT", f"/api/datasources/uid/{ds['uid']}", ds)
            report.add("datasource", ds["uid"], "updated")
        else:
            report.add("datasource", ds["uid"], "unchanged")

    def upsert_folder(self, uid: str, title: str, report: Report) -> None:
        current = self.get(f"/api/folders/{uid}")
        if current is None:
            self.send("POST", "/api/folders", {"uid": uid, "title": title})
            report.add("folder", uid, "created")
        elif current.get("title") != title:
            self.send("PUT", f"/api/folders/{uid}", {"title": title, "overwrite": True})
            report.add("folder", uid, "updated")
        else:
            report.add("folder", uid, "unchanged")

    def upsert_dashboard(self, board: Json, folder_uid: str, report: Report) -> None:
        current = self.get(f"/api/dashboards/uid/{board['uid']}")
        if current is not None:
            same_folder = current.get("meta", {}).get("folderUid") == folder_uid
            if same_folder and strip(current.get("dashboard", {})) == strip(board):
                report.add("dashboard", board["uid"], "unchanged")
                return
        body = {
            "dashboard": {**strip(board), "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "atalaia grafana push",
        }
        self.send("POST", "/api/dashboards/db", body)
        report.add("dashboard", board["uid"], "created" if current is None else "updated")


def strip(board: Json) -> Json:
    return {k: v for k, v in board.items() if k not in _DASHBOARD_VOLATILE}


def message(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("message", resp.reason_phrase))
    except ValueError:
        return resp.reason_phrase


def expect(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise GrafanaError(f"{what} failed: HTTP {resp.status_code} {message(resp)}", 1)


def push(
    grafana: Grafana,
    datasources: list[Json],
    folder: tuple[str, str],
    boards: list[Json],
    log: Callable[[str], None] = print,
) -> Report:
    report = Report()
    version = grafana.check()
    log(f"Grafana {version} at {grafana.url}")
    for ds in datasources:
        grafana.upsert_datasource(ds, report)
    grafana.upsert_folder(*folder, report)
    for board in boards:
        grafana.upsert_dashboard(board, folder[0], report)
    for kind, name, action in report.actions:
        log(f"  {kind:<10} {name:<24} {action}")
    return report
