"""The `atalaia` command.

Subcommands live in their own modules: any ``atalaia_ops/cli_<name>.py`` that defines
``register(subparsers) -> None`` (``subparsers`` is an ``argparse._SubParsersAction``) is found
and registered; its parsers set ``func``, a callable taking the parsed args and returning the
exit status. This module only holds the core commands: ``prices`` and ``version``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import atalaia_ops
from atalaia import __version__
from atalaia.prices import PriceFileError, PriceTable


def _prices(args: argparse.Namespace) -> int:
    try:
        table = PriceTable.load(args.file)
    except PriceFileError as exc:
        print(f"atalaia prices: {exc}", file=sys.stderr)
        return 2
    if args.format == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(table.to_dict(), sort_keys=False, width=100))
        return 0
    source = f"{table.source_package} {table.source_version}, " if table.source_package else ""
    print(f"# USD per million tokens; {source}as of {table.as_of}; from {', '.join(table.files)}")
    rows: list[tuple[str, ...]] = [
        ("model", "provider", "input", "cached_input", "cache_write", "output", "reasoning")
    ]
    for p in sorted(table, key=lambda p: (p.provider or "", p.model)):
        prices = (p.input, p.cached_input, p.cache_write_price, p.output, p.reasoning_price)
        rows.append((p.model, p.provider or "", *(f"{x:g}" for x in prices)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return 0


def _version(_: argparse.Namespace) -> int:
    print(f"atalaia {__version__}")
    return 0


def _register_core(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    prices = sub.add_parser(
        "prices",
        help="print the effective model price table",
        description="Print the model price table the library uses: the built-in one with "
        "--file (or $ATALAIA_PRICES_FILE) merged over it.",
    )
    prices.add_argument("--file", help="a price file to merge over the defaults (YAML)")
    prices.add_argument("--format", choices=("table", "yaml"), default="table")
    prices.set_defaults(func=_prices)
    version = sub.add_parser("version", help="print the library version")
    version.set_defaults(func=_version)


def _plugins() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(atalaia_ops.__path__)
        if m.name.startswith("cli_") and not m.ispkg
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atalaia", description="Observability for fleets of AI agents."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_core(sub)
    for name in _plugins():
        try:
            module = importlib.import_module(f"atalaia_ops.{name}")
        except ModuleNotFoundError as exc:  # the operator extra is not installed
            _missing(sub, name.removeprefix("cli_"), exc)
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def _missing(sub: argparse._SubParsersAction, command: str, exc: ImportError) -> None:  # type: ignore[type-arg]
    def explain(_: argparse.Namespace) -> int:
        print(
            f"atalaia {command}: needs {exc.name!r}, which comes with the operator tools: "
            "pip install 'atalaia[ops]'",
            file=sys.stderr,
        )
        return 2

    parser = sub.add_parser(command, help="(needs pip install 'atalaia[ops]')", add_help=False)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(func=explain)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except BrokenPipeError:  # `atalaia prices | head`: the reader left, which is fine
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's exit quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
