"""requirements/dev.lock pins every Python distribution `make venv` installs, with hashes: it must
cover what pyproject.toml asks for, within its ranges, and be what this environment runs."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.upstream import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK_TEXT = (REPO / "requirements" / "dev.lock").read_text()
LOCKED = {
    canonicalize_name(name): version
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", LOCK_TEXT, re.M)
}


def wanted() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    reqs += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    return [r for r in reqs if canonicalize_name(r.name) != "atalaia"]


def test_every_locked_pin_has_hashes() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", LOCK_TEXT.split("\n", 2)[2])
    unhashed = [e.split()[0] for e in entries if "==" in e and "--hash=sha256:" not in e]
    assert LOCKED and not unhashed, unhashed


@pytest.mark.parametrize("req", wanted(), ids=str)
def test_pyproject_requirement_is_locked_within_its_range(req: Requirement) -> None:
    name = canonicalize_name(req.name)
    assert name in LOCKED, f"{req.name} is not in requirements/dev.lock: run `make lock`"
    assert req.specifier.contains(LOCKED[name], prereleases=True), (
        f"{req.name} {LOCKED[name]} is outside pyproject.toml's {req.specifier}: run `make lock`"
    )


def test_this_environment_is_the_lock() -> None:
    """A venv built by `make venv` has exactly the locked versions (make rebuilds it when the
    lock changes)."""
    stale = {}
    for name, version in LOCKED.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            stale[name] = (version, installed)
    assert not stale, f"locked vs installed: {stale}; run `make venv`"
