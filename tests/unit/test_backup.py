"""tools/backup.py without servers: the archive (manifest, checksums), what restore refuses, and
secrets kept out of it. tests/e2e/test_backup.py runs it against the real native stack."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import backup
from tools.backup import NATIVE_PARTS, BackupError
from tools.upstream import read_versions

NOW = 1_796_000_000.0  # a fixed UTC time: 2026-11-30T...
STAMP = backup.utc_stamp(NOW)
SECRET_VALUES = ("hunter2-grafana", "otlp-t0ken-value", "oauth-client-s3cret", "pa55")
ENV = f"""# a comment: PASSWORD=not-a-value
GRAFANA_ADMIN_USER=admin
GRAFANA_ADMIN_PASSWORD={SECRET_VALUES[0]}
ATALAIA_OTLP_TOKEN={SECRET_VALUES[1]}
GRAFANA_OAUTH_CLIENT_SECRET={SECRET_VALUES[2]}
GRAFANA_OAUTH_SIGNOUT_REDIRECT_URL=https://user:{SECRET_VALUES[3]}@sso.example.com/logout
ATALAIA_UI_BIND=127.0.0.1
GRAFANA_OAUTH_CLIENT_ID=
"""


def fill_state(state: Path, tag: str = "v1") -> dict[str, bytes]:
    """A native state dir with a file or two in every part; returns {relative path: bytes}."""
    files = {
        "data/prometheus/wal/00000000": f"wal {tag}".encode() * 100,
        "data/prometheus/chunks_head/000001": f"chunks {tag}".encode(),
        "data/prometheus/01JBLOCK/meta.json": json.dumps({"ulid": tag}).encode(),
        "data/alertmanager/silences": f"silences {tag}".encode(),
        "data/alertmanager/nflog": f"nflog {tag}".encode(),
        "data/alert-sink/notifications.jsonl": f'{{"id": "{tag}"}}\n'.encode(),
        "data/otelcol/store/traces.jsonl": b'{"resourceSpans": []}\n',
        "data/otelcol/store/logs.jsonl": b'{"resourceLogs": []}\n',
    }
    for rel, data in files.items():
        (state / rel).parent.mkdir(parents=True, exist_ok=True)
        (state / rel).write_bytes(data)
    # Not state: the collector's queue, logs and the rewritten configs stay out.
    for rel in ("data/otelcol/file_storage/queue", "logs/prometheus.log", "config/x.yaml"):
        (state / rel).parent.mkdir(parents=True, exist_ok=True)
        (state / rel).write_text("not backed up")
    return files


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "repo" / ".env"
    path.parent.mkdir()
    path.write_text(ENV)
    return path


@pytest.fixture
def archive(tmp_path: Path, env_file: Path) -> Path:
    state = tmp_path / "state"
    fill_state(state)
    return backup.backup("native", tmp_path / "out", state_dir=state, env_file=env_file, now=NOW)


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def manifest_of(path: Path) -> dict:
    with tarfile.open(path, "r:gz") as tar:
        first = tar.getmembers()[0]
        fh = tar.extractfile(first)
        assert fh is not None
        return json.loads(fh.read())


def rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of an archive whose members went through edit(name, data) -> [(name, data, type)]."""
    out = io.BytesIO()
    with tarfile.open(src, "r:gz") as tin, tarfile.open(fileobj=out, mode="w:gz") as tout:
        for m in tin.getmembers():
            fh = tin.extractfile(m)
            data = fh.read() if fh else b""
            for name, new, kind in edit(m.name, data):
                info = tarfile.TarInfo(name)
                info.type = kind
                if kind == tarfile.SYMTYPE:
                    info.linkname = "/etc/passwd"
                    tout.addfile(info)
                else:
                    info.size = len(new)
                    tout.addfile(info, io.BytesIO(new))
    dst.write_bytes(out.getvalue())
    return dst


def keep(name: str, data: bytes) -> list[tuple[str, bytes, bytes]]:
    return [(name, data, tarfile.REGTYPE)]


# --- the archive -------------------------------------------------------------------------------
def test_archive_is_dated_and_its_manifest_comes_first(archive: Path) -> None:
    assert archive.name == f"atalaia-backup-{STAMP}.tar.gz"
    assert archive.stat().st_mode & 0o777 == 0o600
    names = [m.name for m in members(archive)]
    assert names[0] == f"atalaia-backup-{STAMP}/MANIFEST.json"
    assert all(n.startswith(f"atalaia-backup-{STAMP}/") for n in names)
    assert not list(archive.parent.glob("*.partial")) and not list(archive.parent.glob(".atalaia*"))


def test_manifest_names_versions_parts_and_checksums(archive: Path, tmp_path: Path) -> None:
    m = manifest_of(archive)
    assert (m["format"], m["format_version"], m["stack"]) == ("atalaia-backup", 1, "native")
    assert m["created"] == "2026-11-30T" + m["created"].split("T")[1]
    assert m["versions"] == read_versions()
    assert "cold copy" in m["consistency"]
    parts = {p["name"]: p for p in m["parts"]}
    assert set(parts) == {p.name for p in NATIVE_PARTS} | {"env"}
    assert all(p["what"] for p in m["parts"])
    assert parts["prometheus"]["files"] == 3
    # Every file of the state's parts, each with its real checksum; nothing else.
    state_files = fill_state(tmp_path / "again")
    expected = {
        f"parts/{p.name}/{rel.removeprefix(p.source + '/')}": data
        for rel, data in state_files.items()
        for p in NATIVE_PARTS
        if rel.startswith(p.source + "/")
    }
    assert set(m["files"]) == set(expected) | {"env/.env"}
    for rel, data in expected.items():
        assert m["files"][rel] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert "otelcol-data" in m["not_backed_up"]


def test_backup_refuses_an_empty_state_dir_and_a_tracked_repo_dir(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="nothing to back up"):
        backup.backup("native", tmp_path / "out", state_dir=tmp_path / "empty", now=NOW)
    state = tmp_path / "state"
    fill_state(state)
    with pytest.raises(BackupError, match="inside the repository"):
        backup.backup("native", backup.REPO / "docs", state_dir=state, now=NOW)


def test_backup_never_overwrites_an_archive(archive: Path, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="exists already"):
        backup.backup("native", archive.parent, state_dir=tmp_path / "state", now=NOW)


# --- secrets -------------------------------------------------------------------------------------
def test_strip_secrets_empties_values_by_key_and_url_credentials() -> None:
    text, stripped = backup.strip_secrets(ENV)
    assert stripped == [
        "GRAFANA_ADMIN_PASSWORD",
        "ATALAIA_OTLP_TOKEN",
        "GRAFANA_OAUTH_CLIENT_SECRET",
        "GRAFANA_OAUTH_SIGNOUT_REDIRECT_URL",
    ]
    values = backup.parse_env(text)
    assert values["GRAFANA_ADMIN_PASSWORD"] == values["ATALAIA_OTLP_TOKEN"] == ""
    assert values["GRAFANA_OAUTH_SIGNOUT_REDIRECT_URL"] == "https://sso.example.com/logout"
    assert values["GRAFANA_ADMIN_USER"] == "admin" and values["ATALAIA_UI_BIND"] == "127.0.0.1"
    assert "# a comment: PASSWORD=not-a-value" in text  # comments untouched


def test_no_secret_reaches_the_archive_unless_asked(
    archive: Path, tmp_path: Path, env_file: Path
) -> None:
    raw = gzip.decompress(archive.read_bytes())
    for value in SECRET_VALUES:
        assert value.encode() not in raw
    assert manifest_of(archive)["secrets_stripped"] == [
        "GRAFANA_ADMIN_PASSWORD",
        "ATALAIA_OTLP_TOKEN",
        "GRAFANA_OAUTH_CLIENT_SECRET",
        "GRAFANA_OAUTH_SIGNOUT_REDIRECT_URL",
    ]
    with_secrets = backup.backup(
        "native",
        tmp_path / "out2",
        state_dir=tmp_path / "state",
        env_file=env_file,
        secrets=True,
        now=NOW,
    )
    raw = gzip.decompress(with_secrets.read_bytes())
    assert all(value.encode() in raw for value in SECRET_VALUES)
    assert manifest_of(with_secrets)["secrets_included"] is True


def test_restore_keeps_the_current_secrets_for_stripped_keys(archive: Path, tmp_path: Path) -> None:
    target_env = tmp_path / "target.env"
    target_env.write_text(ENV.replace("ATALAIA_UI_BIND=127.0.0.1", "ATALAIA_UI_BIND=0.0.0.0"))
    backup.restore(archive, "native", state_dir=tmp_path / "new", env_file=target_env, force=True)
    values = backup.parse_env(target_env.read_text())
    assert values["ATALAIA_UI_BIND"] == "127.0.0.1"  # from the backup
    assert values["GRAFANA_ADMIN_PASSWORD"] == SECRET_VALUES[0]  # kept, not blanked
    assert target_env.stat().st_mode & 0o777 == 0o600


# --- restore -------------------------------------------------------------------------------------
def test_round_trip_into_an_empty_state_dir(archive: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    env = tmp_path / "fresh.env"
    parts = backup.restore(archive, "native", state_dir=new, env_file=env)
    assert set(parts) == {p.name for p in NATIVE_PARTS} | {"env"}
    for rel, data in fill_state(tmp_path / "expected").items():
        assert (new / rel).read_bytes() == data, rel
    assert not (new / "data/otelcol/file_storage").exists()
    assert not list(new.glob(".restore-*")) and not list(new.glob("pre-restore-*"))
    assert backup.parse_env(env.read_text())["GRAFANA_ADMIN_PASSWORD"] == ""


def test_restore_never_replaces_state_silently(archive: Path, tmp_path: Path) -> None:
    state = tmp_path / "occupied"
    fill_state(state, tag="current")
    env = tmp_path / "none.env"
    asked: list[str] = []

    def say_no(question: str) -> bool:
        asked.append(question)
        return False

    with pytest.raises(BackupError, match="FORCE=1"):
        backup.restore(archive, "native", state_dir=state, env_file=env, ask=say_no)
    assert asked and "prometheus" in asked[0]
    assert (state / "data/alert-sink/notifications.jsonl").read_text() == '{"id": "current"}\n'
    assert not list(state.glob(".restore-*"))

    backup.restore(archive, "native", state_dir=state, env_file=env, force=True)
    assert (state / "data/alert-sink/notifications.jsonl").read_text() == '{"id": "v1"}\n'
    [aside] = state.glob("pre-restore-*")
    assert (aside / "alert-sink/notifications.jsonl").read_text() == '{"id": "current"}\n'


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[Path]:
    """A state dir whose stack.json names a live process as its Prometheus."""
    state = tmp_path / "running"
    state.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    (state / "stack.json").write_text(json.dumps({"prometheus": {"pid": proc.pid, "argv": argv}}))
    yield state
    proc.kill()
    proc.wait()


def test_restore_refuses_while_the_stack_runs(archive: Path, running_stack: Path) -> None:
    with pytest.raises(BackupError, match=r"is running \(prometheus\).*make down"):
        backup.restore(archive, "native", state_dir=running_stack, force=True)
    assert not (running_stack / "data").exists()


def test_restore_refuses_an_archive_of_the_other_stack(archive: Path, tmp_path: Path) -> None:
    def as_compose(name: str, data: bytes):
        if name.endswith("MANIFEST.json"):
            data = json.dumps({**json.loads(data), "stack": "compose"}).encode()
        return keep(name, data)

    other = rewrite(archive, tmp_path / archive.name, as_compose)
    with pytest.raises(BackupError, match="backup of the compose stack"):
        backup.restore(other, "native", state_dir=tmp_path / "new", force=True)
    assert not (tmp_path / "new" / "data").exists()


def _tampered(name: str, data: bytes):
    return keep(name, b"x" + data[1:] if name.endswith("notifications.jsonl") else data)


def _unlisted(name: str, data: bytes):
    extra = [(name.rsplit("/", 1)[0] + "/extra", b"?", tarfile.REGTYPE)] if "nflog" in name else []
    return keep(name, data) + extra


def _escapes(name: str, data: bytes):
    return [(name.replace("parts/alert-sink/", "../"), data, tarfile.REGTYPE)]


def _linked(name: str, data: bytes):
    kind = tarfile.SYMTYPE if name.endswith("silences") else tarfile.REGTYPE
    return [(name, data, kind)]


def _no_manifest(name: str, data: bytes):
    return [] if name.endswith("MANIFEST.json") else keep(name, data)


def _other_format(name: str, data: bytes):
    if name.endswith("MANIFEST.json"):
        data = json.dumps({**json.loads(data), "format": "someone-else"}).encode()
    return keep(name, data)


def _missing(name: str, data: bytes):
    return [] if name.endswith("logs.jsonl") else keep(name, data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_tampered, "checksum mismatch"),
        (_unlisted, "not listed"),
        (_escapes, "outside"),
        (_linked, "only regular files"),
        (_no_manifest, "does not start with"),
        (_other_format, "not of format"),
        (_missing, "lacks files"),
    ],
)
def test_restore_refuses_an_archive_that_is_not_ours(
    archive: Path, tmp_path: Path, edit, message: str
) -> None:
    bad = rewrite(archive, tmp_path / "bad.tar.gz", edit)
    state = tmp_path / "new"
    with pytest.raises(BackupError, match=message):
        backup.restore(bad, "native", state_dir=state, env_file=tmp_path / "e", force=True)
    # Checked before anything is written: not even the state dir is left behind.
    assert not state.exists()
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("content", [b"", b"hello, not an archive", gzip.compress(b"not a tar")])
def test_restore_refuses_what_is_not_a_tar_gz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "atalaia-backup-20260101T000000Z.tar.gz"
    path.write_bytes(content)
    with pytest.raises(BackupError, match="not an Atalaia backup"):
        backup.restore(path, "native", state_dir=tmp_path / "new", force=True)


def test_restore_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no such file"):
        backup.restore(tmp_path / "nope.tar.gz", "native", state_dir=tmp_path / "s", force=True)


def test_cli_exit_codes(archive: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"nope")
    assert (
        backup.main(["restore", str(bad), "--stack", "native", "--state-dir", str(tmp_path)]) == 1
    )
    assert "not an Atalaia backup" in capsys.readouterr().err
