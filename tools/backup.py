"""Back up and restore the stack's state: `make backup`, `make restore FILE=...`.

    python -m tools.backup backup  --stack native|compose [--output-dir DIR] [--secrets]
    python -m tools.backup restore ARCHIVE --stack native|compose [--force]

An archive is `atalaia-backup-<UTC time>.tar.gz`, one top directory of the same name holding
MANIFEST.json (first: format, time, the pins of versions.env, what each part is, and the SHA-256
and size of every file), then the parts:

- native: parts/<name>/... copied from the native state dir: Prometheus's TSDB, Alertmanager's
  silences and notification log, the alert sink's records, the log and trace store's files;
- compose: parts/<volume>.tar, one tar per named volume (Prometheus, Alertmanager, alert sink,
  Loki, Tempo, Grafana), written by a throwaway container (compose.backup.yaml);
- env/.env, with every secret's value emptied unless --secrets (then also
  env/alertmanager-secrets/, the receivers' secret files).

Consistency: a cold copy. The stores are stopped while their files are copied (Prometheus's
TSDB with its WAL closed cleanly, Alertmanager writing its silences and notification log at
shutdown) and started again at once; the collector keeps running and holds what arrives in its
on-disk queue (retrying for up to an hour), so nothing pushed is lost, while Prometheus misses
the scrapes of the pause. Prometheus's snapshot API is not used: it needs
--web.enable-admin-api, which also opens series deletion to anyone who reaches the port, and
Alertmanager has no such API at all (docs/backup.md).

The collector's own queue (otelcol-data, data/otelcol/file_storage) is not backed up: it is data
in flight, and a restored queue would send it twice.

Restore checks the whole archive (manifest, every checksum, nothing unlisted, no link or path
outside it) before it touches anything, refuses while the stack runs, and never replaces
existing state unless told to (--force, or a "yes" at a terminal); natively what it replaces is
moved aside into <state dir>/pre-restore-<time>/.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tools.upstream import REPO, read_versions

FORMAT = "atalaia-backup"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
NAME_RE = re.compile(r"^atalaia-backup-(\d{8}T\d{6}Z)$")
CHUNK = 1 << 20

CONSISTENCY = (
    "cold copy: each store was stopped while its files were copied and started again at once;"
    " the collector kept running and queued what arrived meanwhile"
)


@dataclass(frozen=True)
class Part:
    name: str  # in the archive: parts/<name> (native) or parts/<name>.tar (compose)
    source: str  # native: path under the state dir; compose: the named volume
    what: str
    service: str  # the service that writes it: stopped while it is copied


NATIVE_PARTS = (
    Part(
        "prometheus",
        "data/prometheus",
        "Prometheus TSDB (blocks, head chunks, WAL), copied with Prometheus stopped",
        "prometheus",
    ),
    Part(
        "alertmanager",
        "data/alertmanager",
        "Alertmanager state: silences and notification log (written at shutdown)",
        "alertmanager",
    ),
    Part(
        "alert-sink",
        "data/alert-sink",
        "the alert sink's records (notifications.jsonl)",
        "alert-sink",
    ),
    Part(
        "log-trace-store",
        "data/otelcol/store",
        "the native log and trace store: what the collector sent to Loki and Tempo, OTLP JSON",
        "log-trace-store",
    ),
)

# compose.yaml's named volumes, each with the service that writes it. Not otelcol-data: the
# collector's queue is data in flight (see the module docstring).
COMPOSE_PARTS = (
    Part("prometheus-data", "prometheus-data", "Prometheus TSDB", "prometheus"),
    Part(
        "alertmanager-data",
        "alertmanager-data",
        "Alertmanager state: silences and notification log",
        "alertmanager",
    ),
    Part("alert-sink-data", "alert-sink-data", "the alert sink's records", "alert-sink"),
    Part("loki-data", "loki-data", "Loki: chunks, index, WAL, compactor state", "loki"),
    Part("tempo-data", "tempo-data", "Tempo: blocks, WAL, generator state", "tempo"),
    Part(
        "grafana-data",
        "grafana-data",
        "Grafana: its database (users, preferences, annotations, anything made in the UI)",
        "grafana",
    ),
)
NOT_BACKED_UP = {
    "otelcol-data": "the collector's on-disk queue: data in flight, it would be sent twice",
}
COMPOSE_BACKUP_FILE = REPO / "compose.backup.yaml"

# .env keys whose values are secrets, and credentials inside URLs.
SECRET_KEY_RE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|(^|_)API_?KEY$|_KEY$)", re.I)
URL_CREDENTIALS_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/:@]+:[^\s/@]+@")
AM_SECRETS = REPO / "alertmanager" / "secrets"


class BackupError(RuntimeError):
    """Backup or restore refused or failed; the message says why and what to do."""


# --- the archive -------------------------------------------------------------------------------
def utc_stamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def archive_name(stamp: str) -> str:
    return f"atalaia-backup-{stamp}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def strip_secrets(text: str) -> tuple[str, list[str]]:
    """An .env with every secret's value emptied; returns it and the keys that lost a value.

    A key is a secret by its name (PASSWORD, SECRET, TOKEN, ..._KEY); credentials inside a URL
    (`https://user:pass@host`) go whatever the key.
    """
    out, stripped = [], []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        key, sep, value = body.partition("=")
        key = key.strip()
        if body.lstrip().startswith("#") or not sep or not key.isidentifier():
            out.append(line)
            continue
        if SECRET_KEY_RE.search(key) and value.strip():
            stripped.append(key)
            out.append(f"{key}=" + line[len(body) :])
            continue
        cleaned = URL_CREDENTIALS_RE.sub(r"\1", value)
        if cleaned != value:
            stripped.append(key)
        out.append(f"{key}={cleaned}" + line[len(body) :])
    return "".join(out), stripped


def parse_env(text: str) -> dict[str, str]:
    values = {}
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if sep and not raw.lstrip().startswith("#") and key.strip().isidentifier():
            values[key.strip()] = value
    return values


def merge_env(archived: str, current: str | None, stripped: Sequence[str]) -> str:
    """The archived .env, where a key the backup stripped keeps the value of the current .env."""
    if not current or not stripped:
        return archived
    keep = {k: v for k, v in parse_env(current).items() if k in set(stripped)}
    out = []
    for line in archived.splitlines(keepends=True):
        key = line.partition("=")[0].strip()
        if key in keep and "=" in line and not line.lstrip().startswith("#"):
            end = line[len(line.rstrip("\r\n")) :]
            out.append(f"{key}={keep[key]}{end}")
        else:
            out.append(line)
    return "".join(out)


@dataclass
class Staged:
    """What a backup collected, laid out as it goes into the archive (relative paths)."""

    root: Path
    stack: str
    parts: list[dict[str, Any]]
    secrets: bool
    stripped: list[str]


def _walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under root, sorted; anything else (links, sockets) is an error."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                raise BackupError(f"{path}: not a regular file; refusing to back it up")
            yield path
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                raise BackupError(f"{Path(dirpath) / name}: a link; refusing to back it up")


def build_manifest(staged: Staged, created: str) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}
    parts = []
    for part in staged.parts:
        count = size = 0
        base = staged.root / part["path"]
        paths = [base] if base.is_file() else list(_walk_files(base)) if base.exists() else []
        for path in paths:
            rel = path.relative_to(staged.root).as_posix()
            n = path.stat().st_size
            files[rel] = {"sha256": sha256_file(path), "bytes": n}
            count += 1
            size += n
        parts.append({**part, "files": count, "bytes": size})
    versions = read_versions()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": created,
        "stack": staged.stack,
        "consistency": CONSISTENCY,
        "versions": versions,
        "secrets_included": staged.secrets,
        "secrets_stripped": staged.stripped,
        "not_backed_up": NOT_BACKED_UP,
        "parts": parts,
        "files": files,
    }


def write_archive(staged: Staged, output_dir: Path, stamp: str) -> Path:
    """MANIFEST.json first, then every file of the staged parts; written to a .partial file and
    renamed into place, so an archive under its final name is always complete."""
    output_dir.mkdir(parents=True, exist_ok=True)
    top = archive_name(stamp)
    final = output_dir / f"{top}.tar.gz"
    if final.exists():
        raise BackupError(f"{final} exists already; not overwriting it")
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    manifest = build_manifest(staged, created)
    partial = final.with_name(final.name + ".partial")
    mtime = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    try:
        with tarfile.open(partial, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
            info = tarfile.TarInfo(f"{top}/{MANIFEST}")
            info.size, info.mode, info.mtime = len(data), 0o644, mtime
            tar.addfile(info, io.BytesIO(data))
            for rel, meta in manifest["files"].items():
                path = staged.root / rel
                info = tarfile.TarInfo(f"{top}/{rel}")
                st = path.stat()
                info.size, info.mode, info.mtime = st.st_size, st.st_mode & 0o777, int(st.st_mtime)
                if st.st_size != meta["bytes"]:
                    raise BackupError(f"{rel} changed while it was archived")
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
        os.chmod(partial, 0o600)  # state (and maybe secrets): only its owner reads it
        partial.rename(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return final


def _safe_rel(name: str, top: str) -> str:
    """The member's path below the archive's top directory; refuses anything that could land
    outside the restore directory."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != top:
        raise BackupError(f"not an Atalaia backup: member {name!r} is outside {top}/")
    return PurePosixPath(*path.parts[1:]).as_posix()


def read_archive(archive: Path, dest: Path) -> dict[str, Any]:
    """Check `archive` completely and extract it into `dest` (which must not exist).

    Returns the manifest. Refuses (BackupError) an archive that is not ours: not a gzip'd tar,
    no manifest first, another format, a member that is not a regular file or directory, a
    file the manifest does not list or one whose size or SHA-256 differs, a listed file missing.
    """
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r|gz") as tar:
            return _read_members(tar, archive, dest)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise BackupError(
            f"not an Atalaia backup: {archive.name} is not a readable tar.gz ({e})"
        ) from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _read_members(tar: tarfile.TarFile, archive: Path, dest: Path) -> dict[str, Any]:
    first = tar.next()
    top = PurePosixPath(first.name).parts[0] if first is not None and first.name else ""
    if first is None or not NAME_RE.match(top) or first.name != f"{top}/{MANIFEST}":
        raise BackupError(
            f"not an Atalaia backup: {archive.name} does not start with"
            f" atalaia-backup-<time>/{MANIFEST}"
        )
    raw = tar.extractfile(first)
    try:
        manifest = json.loads(raw.read()) if raw else None
    except ValueError as e:
        raise BackupError(f"not an Atalaia backup: its {MANIFEST} is not JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"not an Atalaia backup: {MANIFEST} is not of format {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{archive.name} is format version {manifest.get('format_version')}; this Atalaia"
            f" reads version {FORMAT_VERSION}"
        )
    files: dict[str, dict[str, Any]] = manifest.get("files") or {}
    seen: set[str] = set()
    while (member := tar.next()) is not None:
        rel = _safe_rel(member.name, top)
        if member.isdir():
            continue
        if not member.isreg():
            raise BackupError(f"refusing {member.name}: only regular files belong in a backup")
        meta = files.get(rel)
        if meta is None or rel in seen:
            raise BackupError(f"{member.name} is not listed in {MANIFEST} (or is there twice)")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        h, n = hashlib.sha256(), 0
        src = tar.extractfile(member)
        assert src is not None
        with target.open("wb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                n += len(chunk)
                out.write(chunk)
        os.chmod(target, member.mode & 0o777 or 0o600)
        if n != meta.get("bytes") or h.hexdigest() != meta.get("sha256"):
            raise BackupError(f"{member.name}: checksum mismatch, the archive is damaged")
        seen.add(rel)
    missing = sorted(set(files) - seen)
    if missing:
        raise BackupError(f"the archive lacks files its manifest lists: {', '.join(missing[:5])}")
    return manifest


# --- staging: what each kind of stack contributes ----------------------------------------------
def stage_env(
    staging: Path, env_file: Path, secrets: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    parts: list[dict[str, Any]] = []
    stripped: list[str] = []
    if env_file.is_file():
        text = env_file.read_text()
        if not secrets:
            text, stripped = strip_secrets(text)
        (staging / "env").mkdir(parents=True, exist_ok=True)
        (staging / "env" / ".env").write_text(text)
        what = ".env (knobs" + (", with its secrets)" if secrets else "; secret values emptied)")
        parts.append({"name": "env", "path": "env/.env", "what": what})
    if secrets and AM_SECRETS.is_dir() and any(AM_SECRETS.iterdir()):
        shutil.copytree(AM_SECRETS, staging / "env" / "alertmanager-secrets")
        parts.append(
            {
                "name": "alertmanager-secrets",
                "path": "env/alertmanager-secrets",
                "what": "alertmanager/secrets/: the receivers' secret files",
            }
        )
    return parts, stripped


class Native:
    """The native stack (tools/native_stack.py) rooted at one state directory."""

    def __init__(self, state_dir: Path) -> None:
        from tools.native_stack import NativeStack

        self.stack = NativeStack(state_dir)
        self.state_dir = self.stack.state_dir

    def running(self) -> dict[str, int]:
        return self.stack.running()

    @contextlib.contextmanager
    def paused(self, services: Sequence[str]) -> Iterator[list[str]]:
        """Stop those of `services` that run, yield their names, start them again."""
        names = [s for s in services if s in self.running()]
        if names:
            print(f"==> pausing {', '.join(names)} for a consistent copy", flush=True)
            self.stack.stop(names)
        try:
            yield names
        finally:
            if names:
                self.stack.start(names)
                waited = self.stack.wait_ready(names, timeout=120)
                print(f"==> {', '.join(names)} running again ({waited:.1f}s)", flush=True)

    def stage(self, staging: Path) -> list[dict[str, Any]]:
        parts = []
        with self.paused([p.service for p in NATIVE_PARTS]):
            for part in NATIVE_PARTS:
                src = self.state_dir / part.source
                dst = staging / "parts" / part.name
                if src.is_dir():
                    shutil.copytree(src, dst, symlinks=True)
                else:
                    dst.mkdir(parents=True)
                parts.append({"name": part.name, "path": f"parts/{part.name}", "what": part.what})
        return parts

    def check_stopped(self) -> None:
        running = self.running()
        if running:
            raise BackupError(
                f"the native stack in {self.state_dir} is running ({', '.join(running)}):"
                " stop it first (`make down`), then restore"
            )

    def scratch_dir(self, archive: Path) -> Path:
        return self.state_dir  # same file system: the parts are renamed into place

    def has_data(self) -> bool:
        return any((self.state_dir / p.source).is_dir() for p in NATIVE_PARTS)

    def occupied(self, extracted: Path) -> list[str]:
        """Parts that already hold data in the state dir."""
        return [
            p.name
            for p in NATIVE_PARTS
            if (self.state_dir / p.source).is_dir() and any((self.state_dir / p.source).iterdir())
        ]

    def install(self, extracted: Path, stamp: str) -> str | None:
        """Move the extracted parts into the state dir; what was there goes to pre-restore-*/.
        Returns a note saying where, if anything was moved aside."""
        aside = self.state_dir / f"pre-restore-{stamp}"
        moved = False
        for part in NATIVE_PARTS:
            src = extracted / "parts" / part.name
            dst = self.state_dir / part.source
            if dst.exists():
                (aside / part.name).parent.mkdir(parents=True, exist_ok=True)
                dst.rename(aside / part.name)
                moved = True
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                src.rename(dst)
            else:
                dst.mkdir()
        if not moved:
            return None
        return f"what was there is in {aside}: delete it once the restore looks right"


class Compose:
    """The compose stack, driven through the compose CLI; volumes are read and written by the
    throwaway containers of compose.backup.yaml."""

    def __init__(self, cli: Sequence[str], env_files: Sequence[Path]) -> None:
        self.base = [*cli, "--project-directory", str(REPO)]
        for f in env_files:
            self.base += ["--env-file", str(f)]

    def _run(
        self, args: Sequence[str], env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.base, *args], env={**os.environ, **(env or {})}, text=True, capture_output=True
        )
        if check and proc.returncode != 0:
            raise BackupError(f"`compose {' '.join(args)}` failed:\n{proc.stderr.strip()}")
        return proc

    def running(self) -> list[str]:
        out = self._run(["-f", "compose.yaml", "ps", "--status", "running", "--services"])
        return [s for s in out.stdout.split() if s]

    def _volumes(self, profile: str, staging: Path, env: dict[str, str] | None = None) -> int:
        service = f"volume-{profile}"
        args = ["-f", "compose.yaml", "-f", COMPOSE_BACKUP_FILE.name, "--profile", profile]
        proc = self._run(
            [*args, "run", "--rm", "--no-deps", service],
            env={"ATALAIA_BACKUP_STAGING": str(staging), **(env or {})},
            check=False,
        )
        sys.stderr.write(proc.stderr)
        return proc.returncode

    def stage(self, staging: Path) -> list[dict[str, Any]]:
        services = [p.service for p in COMPOSE_PARTS]
        up = set(self.running())
        running = [s for s in services if s in up]
        (staging / "parts").mkdir(parents=True)
        if running:
            print(f"==> pausing {', '.join(running)} for a consistent copy", flush=True)
            self._run(["-f", "compose.yaml", "stop", *running])
        try:
            if self._volumes("backup", staging / "parts") != 0:
                raise BackupError("the volume-backup container failed (its output is above)")
        finally:
            if running:
                self._run(["-f", "compose.yaml", "start", *running])
                print(f"==> {', '.join(running)} running again", flush=True)
        return [
            {"name": p.name, "path": f"parts/{p.name}.tar", "what": p.what} for p in COMPOSE_PARTS
        ]

    def check_stopped(self) -> None:
        running = self.running()
        if running:
            raise BackupError(
                f"the compose stack is running ({', '.join(running)}): stop it first"
                " (`make down`), then restore"
            )

    def scratch_dir(self, archive: Path) -> Path:
        return archive.parent

    def occupied(self, extracted: Path) -> list[str]:
        code = self._volumes("restore", extracted / "parts", {"ATALAIA_RESTORE_CHECK_ONLY": "1"})
        if code == 3:
            return ["one or more volumes (listed above)"]
        if code != 0:
            raise BackupError("the volume-restore container failed (its output is above)")
        return []

    def install(self, extracted: Path, stamp: str) -> str | None:
        if self._volumes("restore", extracted / "parts", {"ATALAIA_RESTORE_FORCE": "1"}) != 0:
            raise BackupError("the volume-restore container failed (its output is above)")
        return None


# --- the two commands --------------------------------------------------------------------------
def backup(
    stack: str,
    output_dir: Path,
    *,
    state_dir: Path | None = None,
    compose_cli: Sequence[str] = (),
    env_file: Path = REPO / ".env",
    env_files: Sequence[Path] = (),
    secrets: bool = False,
    now: float | None = None,
) -> Path:
    stamp = utc_stamp(now)
    output_dir = output_dir.resolve()
    if (output_dir == REPO or REPO in output_dir.parents) and not _git_ignored(output_dir):
        raise BackupError(
            f"{output_dir} is inside the repository and not git-ignored: choose a directory"
            " outside it (BACKUP_DIR=...), where a backup cannot end up in a commit"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{archive_name(stamp)}-", dir=output_dir))
    try:
        if stack == "native":
            native = Native(state_dir or _default_state_dir())
            if not native.has_data():
                raise BackupError(f"nothing to back up: {native.state_dir} holds no stack data")
            parts = native.stage(staging)
        else:
            parts = Compose(compose_cli, env_files).stage(staging)
        env_parts, stripped = stage_env(staging, env_file, secrets)
        staged = Staged(staging, stack, parts + env_parts, secrets, stripped)
        return write_archive(staged, output_dir, stamp)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


Ask = Callable[[str], bool]


def ask_tty(question: str) -> bool:
    """Ask at a terminal; without one the answer is no (FORCE=1 says yes)."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def restore(
    archive: Path,
    stack: str,
    *,
    state_dir: Path | None = None,
    compose_cli: Sequence[str] = (),
    env_file: Path = REPO / ".env",
    env_files: Sequence[Path] = (),
    force: bool = False,
    ask: Ask = ask_tty,
) -> list[str]:
    """Put `archive` back; returns what was restored (part names). Refuses while the stack runs,
    for an archive that is not ours or not of this kind of stack, and (unless force or ask says
    yes) when it would replace state or a different .env."""
    archive = archive.resolve()
    target: Native | Compose = (
        Native(state_dir or _default_state_dir())
        if stack == "native"
        else Compose(compose_cli, env_files)
    )
    target.check_stopped()
    scratch_parent = target.scratch_dir(archive)
    made_parent = not scratch_parent.exists()
    scratch_parent.mkdir(parents=True, exist_ok=True)
    extracted = Path(tempfile.mkdtemp(prefix=".restore-", dir=scratch_parent))
    extracted.rmdir()
    try:
        manifest = read_archive(archive, extracted)
        if manifest["stack"] != stack:
            raise BackupError(
                f"{archive.name} is a backup of the {manifest['stack']} stack; this is the"
                f" {stack} stack: restore it where it was made"
            )
        _warn_versions(manifest)
        conflicts = target.occupied(extracted)
        env_text = _env_to_write(extracted, manifest, env_file)
        if env_text is not None and env_file.exists() and env_file.read_text() != env_text:
            conflicts.append(f"{env_file.name} (differs)")
        if conflicts and not force:
            question = f"Restoring {archive.name} replaces {', '.join(conflicts)}. Go on?"
            if not ask(question):
                aside = " (moved aside, not deleted)" if isinstance(target, Native) else ""
                raise BackupError(
                    f"not restored: it would replace {', '.join(conflicts)}."
                    f" Run it again with FORCE=1 to replace them{aside}"
                )
        note = target.install(extracted, utc_stamp())
        if note:
            print(f"==> {note}")
        if env_text is not None:
            env_file.write_text(env_text)
            env_file.chmod(0o600)
        secrets_dir = extracted / "env" / "alertmanager-secrets"
        if secrets_dir.is_dir():
            shutil.copytree(secrets_dir, AM_SECRETS, dirs_exist_ok=True)
        return [p["name"] for p in manifest["parts"]]
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
        if made_parent and not any(scratch_parent.iterdir()):
            scratch_parent.rmdir()  # a refused restore leaves no empty state dir behind


def _env_to_write(extracted: Path, manifest: dict[str, Any], env_file: Path) -> str | None:
    archived = extracted / "env" / ".env"
    if not archived.is_file():
        return None
    current = env_file.read_text() if env_file.is_file() else None
    return merge_env(archived.read_text(), current, manifest.get("secrets_stripped") or [])


def _warn_versions(manifest: dict[str, Any]) -> None:
    now = read_versions()
    then: dict[str, str] = manifest.get("versions") or {}
    differ = sorted(k for k in then if k.endswith("_VERSION") and now.get(k) != then[k])
    for key in differ:
        print(
            f"warning: the backup was made with {key}={then[key]}, this checkout pins"
            f" {now.get(key)}: the stores read older data, not always newer",
            file=sys.stderr,
        )


def _git_ignored(path: Path) -> bool:
    """True if git ignores an archive written there (False without git: refuse, to be safe)."""
    probe = path / "atalaia-backup-probe.tar.gz"
    try:
        proc = subprocess.run(
            ["git", "-C", str(REPO), "check-ignore", "-q", str(probe)], check=False
        )
    except OSError:
        return False
    return proc.returncode == 0


def _default_state_dir() -> Path:
    from tools.native_stack import default_state_dir

    return default_state_dir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", choices=["native", "compose"], required=True)
    common.add_argument("--state-dir", type=Path, default=None, help="the native state dir")
    common.add_argument(
        "--compose-cli", default="docker compose", help="the compose command (compose stack)"
    )
    common.add_argument(
        "--env-file", type=Path, action="append", default=[], help="compose --env-file (repeat)"
    )
    b = sub.add_parser("backup", parents=[common], help="write a dated archive of the state")
    b.add_argument("--output-dir", type=Path, required=True)
    b.add_argument("--secrets", action="store_true", help="keep .env's secrets (and AM secrets)")
    r = sub.add_parser("restore", parents=[common], help="put an archive back (stack stopped)")
    r.add_argument("archive", type=Path)
    r.add_argument("--force", action="store_true", help="replace existing state without asking")
    args = parser.parse_args(argv)
    cli = shlex.split(args.compose_cli)
    try:
        if args.action == "backup":
            path = backup(
                args.stack,
                args.output_dir,
                state_dir=args.state_dir,
                compose_cli=cli,
                env_files=args.env_file,
                secrets=args.secrets,
            )
            size = path.stat().st_size
            print(f"==> backup written: {path} ({size / 1e6:.1f} MB)")
            if not args.secrets:
                print("    (.env's secret values are not in it; SECRETS=1 keeps them)")
        else:
            parts = restore(
                args.archive,
                args.stack,
                state_dir=args.state_dir,
                compose_cli=cli,
                env_files=args.env_file,
                force=args.force,
            )
            print(f"==> restored {', '.join(parts)} from {args.archive}; start it with `make up`")
    except BackupError as e:
        print(f"{args.action}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
