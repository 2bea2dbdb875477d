"""compose.yaml, checked by the real compose CLI (`docker-compose config`) and then for the
properties the design promises: pinned images, health checks, volumes, limits, safe binds."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import run
from tools import native_config, native_stack
from tools.upstream import REPO, read_versions

COMPOSE_FILE = REPO / "compose.yaml"
PASSWORD = "only-for-this-test"
# Services whose image is built locally (from a Dockerfile) rather than pulled.
BUILT = {"otel-collector", "alert-sink", "demo"}
STORES = {  # service -> where its named volume is mounted (the native runner maps the same)
    "otel-collector": "/var/lib/otelcol",
    "prometheus": "/prometheus",
    "alertmanager": "/alertmanager",
    "loki": "/loki",
    "tempo": "/var/tempo",
    "grafana": "/var/lib/grafana",
    "alert-sink": "/var/lib/atalaia-demo",
}


def compose(tool, *args: str, env: dict[str, str] | None = None, env_file: Path | None = None):
    """`docker-compose` with versions.env and .env.example, then `env_file` (a user's .env: later
    files win) if given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ATALAIA_", "GRAFANA_"))}
    return run(
        [
            tool("compose", "docker-compose"),
            "--project-directory",
            REPO,
            "-f",
            COMPOSE_FILE,
            "--env-file",
            REPO / "versions.env",
            "--env-file",
            REPO / ".env.example",
            *(["--env-file", env_file] if env_file else []),
            *args,
        ],
        env={**base, **(env or {})},
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def resolved(tool) -> dict:
    """compose.yaml as compose resolves it with versions.env and .env.example."""
    result = compose(tool, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_is_valid(tool) -> None:
    result = compose(tool, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_grafana_refuses_an_empty_admin_password(resolved: dict, tmp_path) -> None:
    """No working default: with .env.example's empty password the container exits at once."""
    grafana = resolved["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""
    # `config` output keeps `$$` escaped; the container receives a single `$`.
    entrypoint = [part.replace("$$", "$") for part in grafana["entrypoint"]]
    assert entrypoint[:2] == ["sh", "-c"]

    def start(password: str):
        return run(
            entrypoint,
            env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": password},
            cwd=tmp_path,
        )

    refused = start("")
    assert refused.returncode == 1
    assert "GRAFANA_ADMIN_PASSWORD is empty" in refused.stderr
    # With a password the guard hands over to the image's /run.sh (absent here: exit 127).
    assert start(PASSWORD).returncode == 127


def test_no_version_key_and_images_from_versions_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "version" not in raw
    for name, svc in raw["services"].items():
        if name in BUILT:
            assert "build" in svc and "image" not in svc, f"{name}: built locally, not pulled"
        else:
            assert re.fullmatch(r"\$\{[A-Z]+_IMAGE:\?[^}]+\}", svc["image"]), (
                f"{name}: image {svc['image']!r} must come from versions.env as ${{X_IMAGE:?...}}"
            )
    # Base images of the local builds come from versions.env too.
    for var in re.findall(r"\$\{([A-Z_]+_IMAGE)", COMPOSE_FILE.read_text()):
        assert var in read_versions(), f"{var} is not pinned in versions.env"


def test_images_resolve_to_the_pins(resolved: dict) -> None:
    pins = read_versions()
    assert resolved["services"]["prometheus"]["image"] == pins["PROMETHEUS_IMAGE"]
    assert resolved["services"]["loki"]["image"] == pins["LOKI_IMAGE"]
    assert resolved["services"]["tempo"]["image"] == pins["TEMPO_IMAGE"]
    assert resolved["services"]["grafana"]["image"] == pins["GRAFANA_IMAGE"]
    assert resolved["services"]["alertmanager"]["image"] == pins["ALERTMANAGER_IMAGE"]
    dockerfile = resolved["services"]["otel-collector"]["build"]["dockerfile_inline"]
    assert f"FROM {pins['OTELCOL_IMAGE']}" in dockerfile


def test_every_service_is_production_shaped(resolved: dict) -> None:
    for name, svc in resolved["services"].items():
        assert svc.get("healthcheck", {}).get("test"), f"{name}: no health check"
        assert svc.get("restart") == "unless-stopped", f"{name}: no restart policy"
        assert svc["logging"]["options"]["max-size"], f"{name}: no log rotation"
        assert svc["deploy"]["resources"]["limits"]["memory"], f"{name}: no memory limit"


def test_ordering_waits_for_health(resolved: dict) -> None:
    services = resolved["services"]
    for name in ("otel-collector", "grafana", "demo"):
        deps = services[name]["depends_on"]
        assert deps and all(d["condition"] == "service_healthy" for d in deps.values()), name
    assert {"prometheus", "loki", "tempo"} <= set(services["otel-collector"]["depends_on"])


def test_stores_are_named_volumes(resolved: dict) -> None:
    for name, target in STORES.items():
        mounts = {v["target"]: v for v in resolved["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume", f"{name}: {target} is not a named volume"
    # The native runner maps the same container paths to its data directory.
    native = set(native_config.DATA_MOUNTS.values())
    # Grafana, Loki and Tempo do not run natively; the native alert sink gets --data-dir in the
    # state dir.
    not_native = {"/var/lib/grafana", "/loki", "/var/tempo", "/var/lib/atalaia-demo"}
    assert native == set(STORES.values()) - not_native


def test_config_mounts_match_the_native_runner(resolved: dict) -> None:
    for repo_dir, target in native_config.CONFIG_MOUNTS.items():
        service = "otel-collector" if repo_dir == "otel-collector" else repo_dir
        mounts = {v["target"]: v for v in resolved["services"][service]["volumes"]}
        assert mounts[target]["type"] == "bind"
        assert mounts[target]["source"] == str(REPO / repo_dir)
        assert mounts[target].get("read_only") is True


def test_ui_ports_on_loopback_and_otlp_published(resolved: dict) -> None:
    published = {}
    for name, svc in resolved["services"].items():
        for port in svc.get("ports", []):
            published[int(port["target"])] = (name, port.get("host_ip"))
    assert published[4317][1] == published[4318][1] == "0.0.0.0"
    for port, (name, host_ip) in published.items():
        if port not in (4317, 4318):
            assert host_ip == "127.0.0.1", f"{name}:{port} is published on {host_ip}"
    for port in (3000, 9090, 9093, 3100, 3200):
        assert port in published


def test_prometheus_flags_match_the_native_runner(resolved: dict) -> None:
    command = resolved["services"]["prometheus"]["command"]
    flags = {c for c in command if not c.startswith(("--config.file", "--storage.tsdb.path"))}
    assert flags == set(native_stack.PROMETHEUS_FLAGS)


def test_prometheus_lifecycle_api_is_off(resolved: dict) -> None:
    """/-/reload and /-/quit would take a POST from anyone who reaches the port."""
    assert "--web.enable-lifecycle" not in resolved["services"]["prometheus"]["command"]
    assert "--web.enable-lifecycle" not in native_stack.PROMETHEUS_FLAGS


API_PORTS = {9090, 9093, 3100, 3200, 8888, 13133, 8000}  # write and admin paths, no auth


def test_publishing_the_uis_does_not_publish_the_backends(tool) -> None:
    """ATALAIA_UI_BIND=0.0.0.0 (Grafana on the LAN) leaves every backend API on loopback."""
    result = compose(tool, "config", "--format", "json", env={"ATALAIA_UI_BIND": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    binds = {
        int(port["target"]): port.get("host_ip")
        for svc in json.loads(result.stdout)["services"].values()
        for port in svc.get("ports", [])
    }
    assert binds[3000] == binds[9199] == "0.0.0.0"
    assert {p: binds[p] for p in API_PORTS} == dict.fromkeys(API_PORTS, "127.0.0.1")


def test_otlp_token_switches_on_collector_auth(tool) -> None:
    def collector_command(env: dict[str, str]) -> list[str]:
        result = compose(tool, "config", "--format", "json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["services"]["otel-collector"]["command"]

    assert collector_command({}) == ["--config=/etc/otelcol/config.yaml"]
    assert collector_command({"ATALAIA_OTLP_TOKEN": "t0k3n"}) == [
        "--config=/etc/otelcol/config.yaml",
        "--config=/etc/otelcol/config.auth.yaml",
    ]


def test_grafana_is_safe_by_default(resolved: dict) -> None:
    env = resolved["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].endswith("/fleet-tv.json")


# --- Grafana single sign-on (docs/grafana.md) ---------------------------------------------------

GRAFANA_DOC = REPO / "docs" / "grafana.md"
OAUTH = "GF_AUTH_GENERIC_OAUTH_"


def keycloak_env_block() -> str:
    """The .env lines docs/grafana.md tells a Keycloak user to write."""
    blocks = re.findall(r"```sh\n(.*?)```", GRAFANA_DOC.read_text(), flags=re.S)
    [block] = [b for b in blocks if "GRAFANA_OAUTH_ENABLED=true" in b]
    return block


def grafana_service(tool, env_file: Path | None = None) -> dict:
    result = compose(tool, "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]["grafana"]


def test_grafana_sso_is_off_by_default(resolved: dict) -> None:
    env = resolved["services"]["grafana"]["environment"]
    enabled = {k: v for k, v in env.items() if k.startswith("GF_AUTH_") and k.endswith("_ENABLED")}
    assert enabled == {"GF_AUTH_ANONYMOUS_ENABLED": "false", f"{OAUTH}ENABLED": "false"}
    for key in ("CLIENT_ID", "CLIENT_SECRET", "AUTH_URL", "TOKEN_URL", "API_URL"):
        assert env[f"{OAUTH}{key}"] == "", f"{OAUTH}{key} has a value in the defaults"
    assert env[f"{OAUTH}ALLOW_ASSIGN_GRAFANA_ADMIN"] == "false"
    # The secret has no value anywhere in the repository, only a place in .env.
    assert re.search(r"(?m)^GRAFANA_OAUTH_CLIENT_SECRET=$", (REPO / ".env.example").read_text())
    assert "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET: ${GRAFANA_OAUTH_CLIENT_SECRET:-}" in (
        COMPOSE_FILE.read_text()
    )


def test_grafana_sso_from_env_file_reaches_the_container(tool, tmp_path: Path) -> None:
    """docs/grafana.md's Keycloak .env, as a user's .env: compose hands every setting to Grafana."""
    env_file = tmp_path / ".env"
    env_file.write_text(keycloak_env_block())
    grafana = grafana_service(tool, env_file)
    env = grafana["environment"]
    realm = "https://sso.example.com/realms/atalaia/protocol/openid-connect"
    assert {k: v for k, v in env.items() if k.startswith(OAUTH)} == {
        f"{OAUTH}ENABLED": "true",
        f"{OAUTH}NAME": "Keycloak",
        f"{OAUTH}CLIENT_ID": "grafana",
        f"{OAUTH}CLIENT_SECRET": "paste-the-client-secret-here",
        f"{OAUTH}SCOPES": "openid email profile",
        f"{OAUTH}AUTH_URL": f"{realm}/auth",
        f"{OAUTH}TOKEN_URL": f"{realm}/token",
        f"{OAUTH}API_URL": f"{realm}/userinfo",
        f"{OAUTH}ROLE_ATTRIBUTE_PATH": "contains(roles[*], 'admin') && 'Admin' || "
        "contains(roles[*], 'editor') && 'Editor' || 'Viewer'",
        f"{OAUTH}ALLOW_SIGN_UP": "true",
        f"{OAUTH}SIGNOUT_REDIRECT_URL": f"{realm}/logout?client_id=grafana"
        "&post_logout_redirect_uri=https%3A%2F%2Fgrafana.example.com%2Flogin",
        f"{OAUTH}USE_PKCE": "true",
        f"{OAUTH}ALLOW_ASSIGN_GRAFANA_ADMIN": "false",
    }
    # The redirect URI the provider is told about is built from the root URL.
    assert env["GF_SERVER_ROOT_URL"] == "https://grafana.example.com/"
    # Nothing else about logins changes.
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_grafana_refuses_sso_without_its_endpoints(resolved: dict, tmp_path: Path) -> None:
    entrypoint = [p.replace("$$", "$") for p in resolved["services"]["grafana"]["entrypoint"]]
    complete = {
        "GF_SECURITY_ADMIN_PASSWORD": PASSWORD,
        f"{OAUTH}ENABLED": "true",
        f"{OAUTH}CLIENT_ID": "grafana",
        f"{OAUTH}AUTH_URL": "https://sso.example.com/auth",
        f"{OAUTH}TOKEN_URL": "https://sso.example.com/token",
    }

    def start(env: dict[str, str]):
        return run(entrypoint, env={"PATH": os.environ["PATH"], **env}, cwd=tmp_path)

    for missing in ("CLIENT_ID", "AUTH_URL", "TOKEN_URL"):
        refused = start({**complete, f"{OAUTH}{missing}": ""})
        assert refused.returncode == 1, missing
        assert "GRAFANA_OAUTH_ENABLED=true needs" in refused.stderr
    # Complete, or off: the guard hands over to the image's /run.sh (absent here: exit 127).
    assert start(complete).returncode == 127
    assert start(
        {"GF_SECURITY_ADMIN_PASSWORD": PASSWORD, f"{OAUTH}ENABLED": "false"}
    ).returncode == (127)
