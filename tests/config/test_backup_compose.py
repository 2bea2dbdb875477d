"""compose.backup.yaml, the throwaway containers `make backup` / `make restore` run with Docker:
resolved by the real compose CLI over compose.yaml, covering every store's named volume, and
their shell scripts run here on directories standing in for the volumes (no Docker engine)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.config.test_stack_compose import COMPOSE_FILE, STORES
from tests.conftest import run
from tools import backup
from tools.upstream import REPO, read_versions


def compose_backup(tool, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATALAIA_", "GRAFANA_"))}
    return run(
        [
            tool("compose", "docker-compose"),
            "--project-directory",
            REPO,
            "-f",
            COMPOSE_FILE,
            "-f",
            backup.COMPOSE_BACKUP_FILE,
            "--env-file",
            REPO / "versions.env",
            "--env-file",
            REPO / ".env.example",
            *args,
        ],
        env={**env, "ATALAIA_BACKUP_STAGING": "/srv/staging"},
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def resolved(tool) -> dict:
    result = compose_backup(
        tool, "--profile", "backup", "--profile", "restore", "config", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_jobs_are_not_part_of_make_up(tool) -> None:
    """Without their profiles, the overlay adds no service: `make up` never starts them."""
    result = compose_backup(tool, "config", "--services")
    assert result.returncode == 0, result.stderr
    assert not {"volume-backup", "volume-restore"} & set(result.stdout.split())


def test_every_store_volume_is_covered_but_the_collector_queue(resolved: dict) -> None:
    declared = set(yaml.safe_load(COMPOSE_FILE.read_text())["volumes"])
    parts = {p.source for p in backup.COMPOSE_PARTS}
    assert parts == declared - set(backup.NOT_BACKED_UP)
    for job, read_only in (("volume-backup", True), ("volume-restore", False)):
        svc = resolved["services"][job]
        mounts = {m["target"]: m for m in svc["volumes"]}
        for volume in parts:
            m = mounts[f"/volumes/{volume}"]
            assert (m["type"], m["source"]) == ("volume", volume), job
            assert bool(m.get("read_only")) is read_only, f"{job}: {volume}"
        assert mounts["/staging"]["source"] == "/srv/staging"
        assert bool(mounts["/staging"].get("read_only")) is not read_only
        assert svc["network_mode"] == "none"
        assert svc["image"] == read_versions()["PYTHON_IMAGE"]


def test_each_part_is_the_volume_of_the_service_it_names(resolved: dict) -> None:
    """tools/backup.py stops part.service while it copies part.source: that service must be
    the one writing the volume."""
    for part in backup.COMPOSE_PARTS:
        mounts = {v["source"]: v for v in resolved["services"][part.service]["volumes"]}
        assert part.source in mounts, f"{part.service} does not mount {part.source}"
        assert mounts[part.source]["target"] == STORES[part.service]


# --- the scripts, on directories standing in for the volumes ------------------------------------
def script(resolved: dict, job: str) -> str:
    [text] = resolved["services"][job]["command"]
    return text.replace("$$", "$")  # `config` keeps compose's escape; the container gets one $


def job(resolved: dict, name: str, volumes: Path, staging: Path, **env: str):
    return subprocess.run(
        ["sh", "-c", script(resolved, name)],
        env={"PATH": os.environ["PATH"], "VOLUMES": str(volumes), "STAGING": str(staging), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def tree(root: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_uid, p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_backup_and_restore_scripts_round_trip(resolved: dict, tmp_path: Path) -> None:
    volumes, staging, empty = tmp_path / "volumes", tmp_path / "staging", tmp_path / "empty"
    (volumes / "grafana-data" / "plugins").mkdir(parents=True)
    db = volumes / "grafana-data" / "grafana.db"
    db.write_bytes(b"sqlite")
    db.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(db, 472, 0)  # Grafana's user in its image: kept by number
    (volumes / "prometheus-data" / "wal").mkdir(parents=True)
    (volumes / "prometheus-data" / "wal" / "00000000").write_bytes(b"wal")
    staging.mkdir()
    done = job(resolved, "volume-backup", volumes, staging)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in staging.iterdir()) == ["grafana-data.tar", "prometheus-data.tar"]

    for name in ("grafana-data", "prometheus-data"):
        (empty / name).mkdir(parents=True)
    done = job(resolved, "volume-restore", empty, staging, CHECK_ONLY="1")
    assert done.returncode == 0, done.stderr  # empty volumes: nothing to ask
    assert not any((empty / "grafana-data").iterdir())  # a check writes nothing
    done = job(resolved, "volume-restore", empty, staging)
    assert done.returncode == 0, done.stderr
    for name in ("grafana-data", "prometheus-data"):
        assert tree(empty / name) == tree(volumes / name)


def test_restore_script_never_replaces_a_volume_holding_data(resolved: dict, tmp_path: Path):
    volumes, staging = tmp_path / "volumes", tmp_path / "staging"
    (volumes / "loki-data").mkdir(parents=True)
    (volumes / "loki-data" / "old").write_text("old")
    staging.mkdir()
    source = tmp_path / "src"
    (source / "loki-data").mkdir(parents=True)
    (source / "loki-data" / "new").write_text("new")
    assert job(resolved, "volume-backup", source, staging).returncode == 0

    for env in ({"CHECK_ONLY": "1"}, {}, {"CHECK_ONLY": "1", "FORCE": "1"}):
        refused = job(resolved, "volume-restore", volumes, staging, **env)
        assert refused.returncode == 3, env
        assert "volumes holding data: loki-data" in refused.stderr
        assert sorted(p.name for p in (volumes / "loki-data").iterdir()) == ["old"]
    forced = job(resolved, "volume-restore", volumes, staging, FORCE="1")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in (volumes / "loki-data").iterdir()) == ["new"]


def test_restore_script_refuses_a_tar_without_its_volume(resolved: dict, tmp_path: Path):
    volumes, staging = tmp_path / "volumes", tmp_path / "staging"
    volumes.mkdir()
    staging.mkdir()
    (staging / "mystery-data.tar").write_bytes(b"")
    refused = job(resolved, "volume-restore", volumes, staging, FORCE="1")
    assert refused.returncode == 2
    assert "no volume mystery-data" in refused.stderr
