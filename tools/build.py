"""`make tools`: build every pinned upstream server from its Go module into the tool cache.

Every build is `go build -mod=readonly` of a module locked in tools/go/<component> (go.mod and
go.sum, written by tools.pin): nothing is resolved at build time, so the same pins give the same
binaries on any day. Idempotent: a component whose binaries exist and whose locked module is
unchanged is skipped. Builds go to a temporary directory that is
renamed into place only on success, so an interrupted build never leaves a half-built tool.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tools.upstream as up

STAMP = ".inputs"


def log(msg: str) -> None:
    print(f"[tools] {msg}", flush=True)


def go_env() -> dict[str, str]:
    # GOTOOLCHAIN=auto: a component that needs a newer Go gets it from the module proxy.
    return {**os.environ, "GOTOOLCHAIN": "auto", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}


def run(label: str, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Run a build step, printing a progress line every 30 s; fail loudly with its output."""
    start = time.monotonic()
    with open(cwd / "build.log", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                log(f"  {label}: still building ({time.monotonic() - start:.0f}s)")
    if proc.returncode != 0:
        tail = (cwd / "build.log").read_text(errors="replace").splitlines()[-40:]
        raise SystemExit(
            f"[tools] FAILED to build {label} (exit {proc.returncode}): {' '.join(cmd)}\n"
            + "\n".join(tail)
        )


def is_current(c: up.Component) -> bool:
    stamp = c.dir / STAMP
    return (
        stamp.exists()
        and stamp.read_text().strip() == c.inputs_digest()
        and all(c.binary(b).exists() for b in c.binaries)
    )


UI_STUB = (
    "<!doctype html><title>{name}</title><p>{name} {version} was built by Atalaia from its Go"
    " module without its web UI. The HTTP API works; the container image has the UI.</p>\n"
)


def stub_source(c: up.Component) -> Path:
    """Where the UI-stubbed copy of a module is built from. Go records a replacement's directory
    in the binary, so it is the same path for every tool cache: the same locks, the same bytes."""
    return Path(tempfile.gettempdir()) / "atalaia-ui-stub" / f"{c.name}-{c.module_version}"


def stub_ui_module(c: up.Component, work: Path, env: dict[str, str]) -> list[str]:
    """Build against a copy of the module whose UI directories hold a stub page.

    Returns the extra `go build` flags: an alternate go.mod (in the work dir) that replaces the
    module with that copy. The committed wrapper go.mod/go.sum are not touched.
    """
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{c.module}@{c.module_version}"],
        cwd=c.wrapper,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    src = stub_source(c)
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(json.loads(proc.stdout)["Dir"], src)
    for d in c.ui_stubs:
        (src / d).chmod(0o755) if (src / d).exists() else (src / d).mkdir(parents=True)
        (src / d / "index.html").write_text(UI_STUB.format(name=c.name, version=c.version))
    for f in ("go.mod", "go.sum"):
        shutil.copy(c.wrapper / f, work / f)
    subprocess.run(
        ["go", "mod", "edit", f"-replace={c.module}={src}", str(work / "go.mod")],
        env=env,
        check=True,
    )
    return [f"-modfile={work / 'go.mod'}"]


# up.BUILD_FLAGS has -buildvcs=false: a tool built from a module inside this repository (the
# collector) would otherwise carry the checkout's commit and dirty flag, and differ each time.
def build_go_component(c: up.Component, work: Path) -> None:
    env = go_env()
    flags = [*up.BUILD_FLAGS, "-ldflags", " ".join(["-s", "-w", *c.ldflags])]
    if c.tags:
        flags += ["-tags", c.tags]
    with contextlib.ExitStack() as stack:
        if c.ui_stubs:  # one build at a time uses the shared stub directory
            lock_path = stub_source(c).with_suffix(".lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fcntl.flock(stack.enter_context(open(lock_path, "w")), fcntl.LOCK_EX)
            flags += stub_ui_module(c, work, env)
            stack.callback(shutil.rmtree, stub_source(c), True)
        for binary, pkg in c.binaries.items():
            run(
                f"{c.name}/{binary}",
                [
                    "go",
                    "build",
                    "-C",
                    str(c.wrapper),
                    *flags,
                    "-o",
                    str(work / "bin" / binary),
                    pkg,
                ],
                work,
                env,
            )


def build(c: up.Component) -> None:
    work = c.dir.with_name(c.dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "bin").mkdir(parents=True)
    build_go_component(c, work)
    (work / STAMP).write_text(c.inputs_digest() + "\n")
    shutil.rmtree(c.dir, ignore_errors=True)
    work.rename(c.dir)


def build_all(names: list[str]) -> None:
    comps = up.components()
    names = names or list(comps)
    unknown = [n for n in names if n not in comps]
    if unknown:
        raise SystemExit(f"[tools] unknown component(s) {unknown}; known: {', '.join(comps)}")
    if shutil.which("go") is None:
        raise SystemExit("[tools] Go is required to build the upstream servers: install Go >= 1.24")
    root = up.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time per cache
        todo = [comps[n] for n in names if not is_current(comps[n])]
        for n in names:
            if comps[n] not in todo:
                log(f"{n} {comps[n].version}: cached in {comps[n].dir}")
        for i, c in enumerate(todo, 1):
            start = time.monotonic()
            log(f"[{i}/{len(todo)}] building {c.name} {c.version} ({c.module}@{c.module_version})")
            build(c)
            log(f"[{i}/{len(todo)}] {c.name} {c.version} built in {time.monotonic() - start:.0f}s")
    if todo:
        log(f"done; tool cache: {root}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(names: list[str]) -> None:
    """`make tools-verify`: build every tool as a brand-new machine would, from empty Go module
    and build caches (and an empty npm cache for the grammars) into an empty tool cache, with
    -mod=readonly: a build that needs anything the locks in tools/ do not pin fails here. Then
    compare each binary with the one the regular cache holds: the same locks, the same bytes."""
    names = names or list(up.components())
    cached = {  # where the regular cache keeps each binary (cache_root() moves below)
        (c.name, b): c.binary(b) for c in up.components().values() for b in c.binaries
    }
    with tempfile.TemporaryDirectory(prefix="atalaia-tools-verify-") as tmp:
        scratch = Path(tmp)
        os.environ.update(
            GOMODCACHE=str(scratch / "gomodcache"),
            GOCACHE=str(scratch / "gocache"),
            ATALAIA_TOOLS_DIR=str(scratch / "tools"),
            GOFLAGS="-mod=readonly",
            npm_config_cache=str(scratch / "npm-cache"),
        )
        log(f"verifying from empty caches in {scratch} (this takes the cold-build time)")
        start = time.monotonic()
        build_all(names)
        from tools import grammars  # imports this module: not at the top

        grammars.install()  # npm ci from the lock file, with an empty npm cache too
        log(f"all built from empty caches in {time.monotonic() - start:.0f}s")
        fresh = up.components()
        differ = []
        for name in names:
            for binary in fresh[name].binaries:
                new, old = fresh[name].binary(binary), cached[(name, binary)]
                if not old.exists():
                    log(f"  {name}/{binary}: built; no cached copy to compare with")
                elif sha256(new) == sha256(old):
                    log(f"  {name}/{binary}: identical to the cached build")
                else:
                    differ.append(f"{name}/{binary}")
                    log(f"  {name}/{binary}: DIFFERS from the cached build {old}")
        # The module cache is read-only by design; make it removable.
        subprocess.run(["chmod", "-R", "u+w", str(scratch)], check=False)
    if differ:
        raise SystemExit(f"[tools] not reproducible: {', '.join(differ)}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--verify"]:
        verify(argv[1:])
    else:
        build_all(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
