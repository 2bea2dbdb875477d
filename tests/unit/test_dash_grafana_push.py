"""`atalaia grafana push` against a local HTTP server that speaks the parts of Grafana's HTTP API
the command calls (Grafana itself cannot run here), with Grafana's request and response shapes:
/api/health, /api/user, /api/datasources[/uid/:uid], /api/folders[/:uid], /api/dashboards/db and
/api/dashboards/uid/:uid, Bearer-token auth with 401 for an unknown token and 403 for a Viewer."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from atalaia_ops.cli import main
from atalaia_ops.dashboards import as_json
from atalaia_ops.dashboards.datasources import definitions

ADMIN, VIEWER = "glsa_admin_token_for_tests", "glsa_viewer_token_for_tests"
PROVISIONING = Path(__file__).resolve().parents[2] / "grafana" / "provisioning" / "datasources"


class FakeGrafana:
    """In-memory state of one Grafana org."""

    def __init__(self) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.next_id = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def handle(self, method: str, path: str, token: str | None, body: Any) -> tuple[int, Any]:
        if path == "/api/health":
            return 200, {"commit": "0000000", "database": "ok", "version": "13.2.0"}
        if token not in (ADMIN, VIEWER):
            return 401, {
                "extra": None,
                "message": "Invalid API key",
                "messageId": "api-keys.invalid",
                "statusCode": 401,
                "traceID": "",
            }
        if path == "/api/user":
            return 200, {"id": 2, "login": "sa-atalaia", "isGrafanaAdmin": False, "orgId": 1}
        if token == VIEWER and (method != "GET" or path.startswith("/api/datasources")):
            action = "datasources:read" if method == "GET" else "datasources:create"
            return 403, {
                "accessErrorId": "ACE0000000001",
                "message": "You'll need additional permissions to perform this action. "
                f"Permissions needed: {action}",
                "title": "Access denied",
            }
        if method != "GET":
            self.writes.append((method, path))
        return self.route(method, path, body)

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = m.group(1)
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            if method == "GET":
                return 200, self.datasources[uid]
            if method == "PUT":
                ds = self.datasources[uid] = self.stored_ds(body, self.datasources[uid]["id"])
                ds["version"] += 1
                return 200, {
                    "datasource": ds,
                    "id": ds["id"],
                    "message": "Datasource updated",
                    "name": ds["name"],
                }
        if path == "/api/datasources" and method == "POST":
            if any(d["name"] == body["name"] for d in self.datasources.values()):
                return 409, {"message": "data source with the same name already exists"}
            if body.get("uid") in self.datasources:
                return 409, {"message": "data source with the same uid already exists"}
            ds = self.datasources[body["uid"]] = self.stored_ds(body, self.new_id())
            return 200, {
                "datasource": ds,
                "id": ds["id"],
                "message": "Datasource added",
                "name": ds["name"],
            }
        if m := re.fullmatch(r"/api/folders/([\w-]+)", path):
            uid = m.group(1)
            if uid not in self.folders:
                return 404, {"message": "folder not found", "status": "not-found"}
            if method == "PUT":
                self.folders[uid]["title"] = body["title"]
                self.folders[uid]["version"] += 1
            return 200, self.folders[uid]
        if path == "/api/folders" and method == "POST":
            if body["uid"] in self.folders or any(
                f["title"] == body["title"] for f in self.folders.values()
            ):
                return 409, {"message": "a folder with the same name already exists"}
            self.folders[body["uid"]] = {
                "id": self.new_id(),
                "uid": body["uid"],
                "title": body["title"],
                "url": f"/dashboards/f/{body['uid']}/",
                "version": 1,
            }
            return 200, self.folders[body["uid"]]
        if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            if m.group(1) not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            return 200, self.dashboards[m.group(1)]
        if path == "/api/dashboards/db" and method == "POST":
            return self.save_dashboard(body)
        return 404, {"message": "Not found"}

    def stored_ds(self, body: dict[str, Any], ds_id: int) -> dict[str, Any]:
        return {
            "id": ds_id,
            "orgId": 1,
            "user": "",
            "database": "",
            "basicAuth": False,
            "withCredentials": False,
            "readOnly": False,
            "secureJsonFields": {},
            "version": 1,
            "isDefault": False,
            **copy.deepcopy(body),
        }

    def save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        board = copy.deepcopy(body["dashboard"])
        if not board.get("title"):
            return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
        folder = body.get("folderUid")
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found", "status": "not-found"}
        existing = self.dashboards.get(board["uid"])
        if existing and not body.get("overwrite"):
            return 412, {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        version = existing["dashboard"]["version"] + 1 if existing else 1
        board["id"] = existing["dashboard"]["id"] if existing else self.new_id()
        board["version"] = version
        self.dashboards[board["uid"]] = {
            "dashboard": board,
            "meta": {
                "folderUid": folder,
                "slug": board["uid"],
                "url": f"/d/{board['uid']}/",
                "version": version,
            },
        }
        return 200, {
            "id": board["id"],
            "uid": board["uid"],
            "url": f"/d/{board['uid']}/",
            "status": "success",
            "version": version,
            "slug": board["uid"],
        }


def make_handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def serve(self) -> None:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = state.handle(self.command, self.path, token, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = serve

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def push(url: str, token: str, *extra: str) -> int:
    return main(
        [
            "grafana",
            "push",
            "--grafana-url",
            url,
            "--token",
            token,
            "--prometheus-url",
            "http://prometheus:9090",
            "--loki-url",
            "http://loki:3100",
            "--tempo-url",
            "http://tempo:3200",
            *extra,
        ]
    )


def test_first_push_creates_everything(grafana, capsys) -> None:
    url, state = grafana
    assert push(url, ADMIN, "--alertmanager-url", "http://alertmanager:9093") == 0
    assert set(state.datasources) == {"prometheus", "loki", "tempo", "alertmanager"}
    assert (
        state.datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0][
            "datasourceUid"
        ]
        == "tempo"
    )
    assert state.datasources["loki"]["url"] == "http://loki:3100"
    assert set(state.folders) == {"atalaia"}
    assert set(state.dashboards) == {b["uid"] for b in as_json().values()}
    assert all(d["meta"]["folderUid"] == "atalaia" for d in state.dashboards.values())
    out = capsys.readouterr().out
    assert "Grafana 13.2.0" in out and "14 changed, 0 unchanged" in out


def test_second_push_changes_nothing(grafana, capsys) -> None:
    url, state = grafana
    assert push(url, ADMIN) == 0
    writes = len(state.writes)
    assert push(url, ADMIN) == 0
    assert len(state.writes) == writes, state.writes[writes:]
    assert "0 changed, 13 unchanged" in capsys.readouterr().out


def test_changed_objects_are_overwritten_in_place(grafana, capsys) -> None:
    url, state = grafana
    assert push(url, ADMIN) == 0
    state.dashboards["atalaia-fleet-tv"]["dashboard"]["title"] = "edited in the UI"
    state.datasources["loki"]["url"] = "http://elsewhere:3100"
    before = state.dashboards["atalaia-fleet-tv"]["dashboard"]["version"]
    assert push(url, ADMIN) == 0
    assert state.dashboards["atalaia-fleet-tv"]["dashboard"]["title"] == "Atalaia / Fleet TV"
    assert state.dashboards["atalaia-fleet-tv"]["dashboard"]["version"] == before + 1
    assert state.datasources["loki"]["url"] == "http://loki:3100"
    assert len(state.datasources) == 3
    assert "2 changed, 11 unchanged" in capsys.readouterr().out


def test_custom_folder(grafana) -> None:
    url, state = grafana
    assert push(url, ADMIN, "--folder", "Agents & LLMs") == 0
    assert state.folders["agents-llms"]["title"] == "Agents & LLMs"
    assert {d["meta"]["folderUid"] for d in state.dashboards.values()} == {"agents-llms"}


def test_bad_token_is_a_clear_error(grafana, capsys) -> None:
    url, state = grafana
    assert push(url, "glsa_wrong") == 4
    err = capsys.readouterr().err
    assert "rejected the token (401 Invalid API key)" in err
    assert not state.writes


def test_viewer_token_is_a_clear_error(grafana, capsys) -> None:
    url, state = grafana
    assert push(url, VIEWER) == 4
    err = capsys.readouterr().err
    assert "403" in err and "Admin role" in err and "datasources:read" in err
    assert not state.writes


def test_unreachable_grafana_is_a_clear_error(capsys) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        assert push(f"http://127.0.0.1:{port}", ADMIN) == 3
    assert "cannot reach Grafana at http://127.0.0.1:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grafana-url", "localhost:3000"], "--grafana-url must start with http://"),
        (["--folder", "!!!"], "has no letters or digits"),
    ],
)
def test_bad_arguments_are_clear_errors(grafana, capsys, args: list[str], message: str) -> None:
    url, _ = grafana
    argv = ["--grafana-url", url, *args] if args[0] != "--grafana-url" else args
    code = main(
        [
            "grafana",
            "push",
            "--token",
            ADMIN,
            "--prometheus-url",
            "http://p:9090",
            "--loki-url",
            "http://l:3100",
            "--tempo-url",
            "http://t:3200",
            *argv,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_token(grafana, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    url, _ = grafana
    assert push(url, "") == 2
    assert "token is required" in capsys.readouterr().err


def test_datasources_match_the_provisioning() -> None:
    files = sorted(PROVISIONING.glob("*.y*ml"))
    assert files, "grafana/provisioning/datasources has no datasource file"
    text = "".join(f.read_text() for f in files).replace("$$", "$")
    provisioned = {ds["uid"]: ds for ds in yaml.safe_load(text)["datasources"]}
    pushed = {d["uid"]: d for d in definitions("http://p", "http://l", "http://t", "http://a")}
    assert set(provisioned) == set(pushed)
    for uid, ds in pushed.items():
        assert provisioned[uid]["type"] == ds["type"]
        assert provisioned[uid].get("jsonData") == ds["jsonData"], uid
