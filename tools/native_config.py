"""Turn the compose configs into native ones: only host names and container paths change.

compose.yaml mounts each config directory into its container and gives each store a named
volume. Run natively, the same files need two rewrites, made in a copy and nowhere else:

- host names: compose service names (`loki:3100`) and wildcard binds (`0.0.0.0:4317`) become
  127.0.0.1, because every service runs on this machine and must listen on loopback only;
- container paths: the mount points (`/etc/prometheus`, `/var/lib/otelcol`, ...) become
  directories under the native state dir.

Loki and Tempo are not part of the native stack (they exist only as container images); the
collector's exporters still send to `loki:3100` and `tempo:4417`, where the native log and
trace store (otel-collector/native-store.yaml) listens instead.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from tools.upstream import REPO

# compose service names that configs refer to (see compose.yaml).
HOSTS = (
    "otel-collector",
    "prometheus",
    "alertmanager",
    "loki",
    "tempo",
    "grafana",
    "alert-sink",
    "demo",
)

# Repo directory -> the container path compose.yaml mounts it at (read-only config).
CONFIG_MOUNTS = {
    "otel-collector": "/etc/otelcol",
    "prometheus": "/etc/prometheus",
    "alertmanager": "/etc/alertmanager",
}

# Store name -> the container path of its named volume.
DATA_MOUNTS = {
    "otelcol": "/var/lib/otelcol",
    "prometheus": "/prometheus",
    "alertmanager": "/alertmanager",
}

# Secrets compose mounts under /run/secrets (from .env); natively they live in the state dir,
# written once with a random value (0600) and kept across restarts.
SECRETS_MOUNT = "/run/secrets"
NATIVE_SECRETS = ("alert_sink_token",)

# The files whose text is rewritten; everything else in a config directory (rules, templates,
# promtool tests) is copied verbatim.
MAIN_CONFIGS = (
    "otel-collector/config.yaml",
    "otel-collector/config.auth.yaml",
    "otel-collector/native-store.yaml",
    "prometheus/prometheus.yml",
    "alertmanager/alertmanager.yml",
)

_HOST_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, HOSTS)) + r"):(\d+)\b")
_WILDCARD_RE = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])")


def rewrite_hosts(text: str) -> str:
    """`loki:3100` -> `127.0.0.1:3100`; every wildcard bind `0.0.0.0` -> `127.0.0.1`."""
    return _WILDCARD_RE.sub("127.0.0.1", _HOST_RE.sub(r"127.0.0.1:\1", text))


def path_map(config_dir: Path, data_dir: Path) -> dict[str, str]:
    """Container path -> native path, for every config mount and data volume."""
    mapping = {path: str(config_dir / name) for name, path in CONFIG_MOUNTS.items()}
    mapping |= {path: str(data_dir / name) for name, path in DATA_MOUNTS.items()}
    mapping[SECRETS_MOUNT] = str(config_dir.parent / "secrets")
    return mapping


def secrets_dir(state_dir: Path) -> Path:
    return state_dir / "secrets"


def write_secrets(state_dir: Path) -> Path:
    """Create each native secret (random, 0600) unless it exists; return their directory."""
    directory = secrets_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in NATIVE_SECRETS:
        path = directory / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24) + "\n")
    return directory


def rewrite_paths(text: str, mapping: dict[str, str]) -> str:
    """Replace container paths that start a YAML value (after a space, quote, `[`, `=`, `,`, or
    the `:` of a `${file:...}` include).

    A path inside a URL (`http://loki:3100/loki/api`) is preceded by none of them, so it is kept.
    """
    # Longest first, so /var/lib/otelcol wins over any shorter prefix.
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(
        r"(?<=[\s\"'\[=,:])(" + "|".join(map(re.escape, keys)) + r")(?=[/\s\"'\],]|$)",
        re.MULTILINE,
    )
    return pattern.sub(lambda m: mapping[m.group(1)], text)


def prepare(state_dir: Path, repo: Path = REPO) -> tuple[Path, Path]:
    """Copy the config directories into state_dir/config, rewritten; create the data dirs.

    Returns (config_dir, data_dir). The copy is refreshed on every call, so edits to the repo's
    configs take effect at the next `up`; data directories are kept.
    """
    config_dir, data_dir = state_dir / "config", state_dir / "data"
    shutil.rmtree(config_dir, ignore_errors=True)
    for name in CONFIG_MOUNTS:
        src = repo / name
        if not src.is_dir():
            raise FileNotFoundError(f"{src} is missing: the native stack runs the repo's configs")
        shutil.copytree(src, config_dir / name)
    for name in DATA_MOUNTS:
        (data_dir / name).mkdir(parents=True, exist_ok=True)
    write_secrets(state_dir)
    mapping = path_map(config_dir, data_dir)
    for rel in MAIN_CONFIGS:
        target = config_dir / rel
        if target.exists():
            target.write_text(rewrite_paths(rewrite_hosts(target.read_text()), mapping))
    return config_dir, data_dir
