"""Grafana's LogQL and TraceQL grammars: install them (`make tools`) and parse queries with them.

The grammars are the npm packages `@grafana/lezer-logql` and `@grafana/lezer-traceql`, the parsers
of Grafana's own query editors (Apache-2.0), locked in tools/npm/grammars/package-lock.json.
`python -m tools.grammars` installs them with `npm ci` (never `npm install`: the lock file is the
only input) into the tool cache outside the repository, in a directory named after the lock file's
hash; a second run installs nothing. The install goes to a temporary directory that is renamed
into place only when complete, and a file lock serialises concurrent installs.

`parse_errors()` runs tools/npm/grammars/check.mjs once for any number of queries.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.build import log, run
from tools.upstream import REPO, cache_root

PACKAGE = REPO / "tools" / "npm" / "grammars"
LOCK_FILE = PACKAGE / "package-lock.json"
SCRIPT = PACKAGE / "check.mjs"
LANGUAGES = ("logql", "traceql")
STAMP = ".lock-sha256"  # written last into a complete install: the full hash of the lock file
NODE_MAJOR = 20

NPM_CI = [
    "npm",
    "ci",
    "--ignore-scripts",  # nothing from the registry runs at install time
    "--omit=dev",
    "--no-audit",
    "--no-fund",
    # @grafana/lezer-logql 0.4.2 declares node >= 24 for its own build tooling; its published
    # parser is plain JavaScript that runs on Node 20 (the tests run it). A user's
    # engine-strict=true must not turn that warning into a failure.
    "--engine-strict=false",
]


def lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def install_dir() -> Path:
    """Where `make tools` installs the locked packages: the tool cache, keyed by the lock."""
    return cache_root() / f"grammars-{lock_digest()[:16]}"


def installed() -> Path | None:
    """The complete install for the current lock file, or None (run `make tools`)."""
    d = install_dir()
    stamp = d / STAMP
    if stamp.exists() and stamp.read_text().strip() == lock_digest():
        return d
    return None


def locked_versions() -> dict[str, str]:
    """Package name -> version, as package-lock.json pins them."""
    packages = json.loads(LOCK_FILE.read_text())["packages"]
    return {
        path.removeprefix("node_modules/"): str(p["version"])
        for path, p in packages.items()
        if path.startswith("node_modules/")
    }


def _check_node() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit(
            f"[tools] Node.js >= {NODE_MAJOR} with npm is required to install the LogQL/TraceQL"
            " grammars"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"v(\d+)\.", version)
    if not m or int(m.group(1)) < NODE_MAJOR:
        raise SystemExit(f"[tools] Node.js >= {NODE_MAJOR} is required, found {version!r}")


def install() -> Path:
    """Install the locked grammars into the tool cache unless they are there already."""
    target = install_dir()
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    label = ", ".join(
        f"{name} {version}"
        for name, version in locked_versions().items()
        if name.startswith("@grafana/")
    )
    with open(root / ".grammars.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time per cache
        if installed() is not None:
            log(f"grammars ({label}): cached in {target}")
            return target
        _check_node()
        start = time.monotonic()
        log(f"installing grammars ({label}) with npm ci into {target}")
        work = target.with_name(target.name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for f in ("package.json", "package-lock.json"):
            shutil.copy(PACKAGE / f, work / f)
        env = {**os.environ, "npm_config_update_notifier": "false"}
        run("grammars/npm ci", NPM_CI, work, env)
        (work / STAMP).write_text(lock_digest() + "\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
        log(f"grammars installed in {time.monotonic() - start:.0f}s")
    return target


@dataclass(frozen=True)
class QueryError:
    """One syntax error in a query: offsets [start, end) and the line and column of start."""

    start: int
    end: int
    line: int
    column: int
    text: str  # the query's text the error node covers ("" where something is missing)


@dataclass(frozen=True)
class Parsed:
    grammars: dict[str, str]  # package -> version that parsed
    errors: list[list[QueryError]] = field(repr=False)  # per query, in order; [] when it parses


def parse_errors(queries: Sequence[tuple[str, str]], install: Path) -> Parsed:
    """Parse each (language, query) with Grafana's grammars, in one Node process."""
    unknown = {lang for lang, _ in queries} - set(LANGUAGES)
    if unknown:
        raise ValueError(f"unknown query language(s) {sorted(unknown)}; known: {LANGUAGES}")
    payload = json.dumps([{"language": lang, "query": q} for lang, q in queries])
    proc = subprocess.run(
        ["node", str(SCRIPT), str(install)],
        input=payload,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    errors = [
        [QueryError(e["from"], e["to"], e["line"], e["column"], e["text"]) for e in found]
        for found in out["results"]
    ]
    if len(errors) != len(queries):
        raise RuntimeError(f"{SCRIPT.name} answered {len(errors)} of {len(queries)} queries")
    return Parsed(dict(out["grammars"]), errors)


def describe(where: str, language: str, query: str, errors: Sequence[QueryError]) -> str:
    """A failure message: where the query comes from, the query, and each error's position
    with the line it is on and a caret under it."""
    lines = query.split("\n")
    out = [f"{where}: {language} syntax error in {query!r}"]
    for e in errors:
        what = f"unexpected {e.text!r}" if e.text else "something is missing here"
        out.append(f"  line {e.line}, column {e.column} (offset {e.start}): {what}")
        out.append(f"    {lines[e.line - 1]}")
        out.append("    " + " " * (e.column - 1) + "^" * max(1, min(len(e.text), 40)))
    return "\n".join(out)


def main(argv: list[str]) -> None:
    if argv:
        raise SystemExit("usage: python -m tools.grammars  (installs the locked grammars)")
    install()


if __name__ == "__main__":
    main(sys.argv[1:])
