"""Files the repository commits but a command generates (rules, the price table): `--check`."""

from __future__ import annotations

import sys
from pathlib import Path


def check_generated(path: Path, text: str, command: str) -> int:
    """Exit status of `--check`: 0 when `path` holds exactly `text`, else 1 and what to run."""
    current = path.read_text() if path.exists() else ""
    if current == text:
        return 0
    print(f"{path} is out of date: run `{command}`", file=sys.stderr)
    return 1
