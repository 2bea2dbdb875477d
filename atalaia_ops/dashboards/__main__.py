"""`python -m atalaia_ops.dashboards generate|check [--out DIR]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atalaia_ops.dashboards import dashboards, render

# Relative to where it is run (the checkout's root), never into the installed package.
DEFAULT_OUT = Path("grafana") / "dashboards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atalaia_ops.dashboards")
    parser.add_argument("command", choices=("generate", "check"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="dashboards directory")
    args = parser.parse_args(argv)
    out: Path = args.out
    stale: list[str] = []
    boards = dashboards()
    uids = [d.uid for d in boards]
    if len(set(uids)) != len(uids):
        print(f"duplicate dashboard uids: {uids}", file=sys.stderr)
        return 2
    if args.command == "generate":
        out.mkdir(parents=True, exist_ok=True)
    for d in boards:
        path = out / d.file
        text = render(d)
        if args.command == "generate":
            path.write_text(text)
            print(f"wrote {path}")
        elif not path.exists() or path.read_text() != text:
            stale.append(d.file)
    if stale:
        print(
            f"stale dashboards in {out}: {', '.join(stale)}; "
            "run `python -m atalaia_ops.dashboards generate`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
