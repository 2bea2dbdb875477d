"""Convert the maintained price table of the `genai-prices` package into atalaia/data/prices.yaml.

    python -m tools.prices refresh            # rewrite atalaia/data/prices.yaml, as of today
    python -m tools.prices refresh --check    # exit 1 if the file differs from a fresh conversion

`genai-prices` (Pydantic, MIT licence) is a development dependency only: the library reads the
YAML file this writes and never imports the package. The conversion keeps the models of the
providers in PROVIDERS that are priced per token, in that order of precedence: a name that two
providers use (Azure's `o1`, Vertex's `claude-...`) prices the first one's model. For each model
it takes the price in force on the `as_of` date at noon UTC (standard rate, not batch or off-peak)
and, for a price tiered by prompt length, the base tier. Its names are its id plus the literal
ids of its match clauses (equals, starts-with, contains, the literal head of a `^name-\\d...`
regex);
names that the table's own matching (a dated id uses its family's entry: docs/cost.md) already
gives the same model are left out, so an alias is listed only where it matters.

The result is checked with the library's own parser (atalaia.prices) before it is written:
data that it would refuse is never written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from atalaia.prices import MATCH_DEPTH, SEPARATORS, PriceFileError, PriceTable, _parse, normalise
from atalaia_ops.generated import check_generated
from tools.upstream import REPO

PACKAGE = "genai-prices"
OUT = REPO / "atalaia" / "data" / "prices.yaml"
# (genai-prices provider id, the gen_ai.provider.name the GenAI conventions give it), in order of
# precedence. First-party APIs first; then Groq (open-weight models under their usual ids),
# Bedrock (its own `vendor.model-v1:0` ids) and Azure (whose OpenAI models are OpenAI's).
PROVIDERS: tuple[tuple[str, str], ...] = (
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "gcp.gen_ai"),
    ("mistral", "mistral_ai"),
    ("deepseek", "deepseek"),
    ("x-ai", "x_ai"),
    ("cohere", "cohere"),
    ("meta", "meta"),
    ("moonshotai", "moonshotai"),
    ("zai", "zai"),
    ("minimax", "minimax"),
    ("perplexity", "perplexity"),
    ("groq", "groq"),
    ("aws", "aws.bedrock"),
    ("azure", "azure.ai.openai"),
)
# genai-prices price keys (USD per million tokens) -> the table's fields.
FIELDS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "output_reasoning_mtok": "reasoning",
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")  # a model id, as the table takes it
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # written without quotes
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


class ConversionError(ValueError):
    """The source data cannot be converted; the message names the model and the problem."""


@dataclass
class Model:
    key: str
    provider: str
    prices: dict[str, Decimal]
    names: list[str] = field(default_factory=list)  # aliases, in the source's order


@dataclass
class Conversion:
    models: list[Model]
    version: str
    as_of: dt.date
    providers: tuple[str, ...]
    skipped: dict[str, list[str]]  # reason -> "provider/model" (or a clause) left out


# --- reading the source ---------------------------------------------------------------------


def clause_names(clause: Any) -> tuple[list[str], list[str]]:
    """The literal model ids a genai-prices match clause names, and the clauses that name none
    (an `ends_with`, a regex without a literal id head). A `contains` names its text: the
    source uses it for ids with a region prefix (`us.anthropic.claude-...`)."""
    if hasattr(clause, "and_"):
        # starts-with X and not (a `^(?!...)` regex): the exclusions are models of their own
        # (gemini-2.5-pro and not its -tts variant), which the longest name wins anyway.
        heads = [c for c in clause.and_ if not str(getattr(c, "regex", "")).startswith("^(?!")]
        if len(heads) == 1:
            return clause_names(heads[0])
        return [], [repr(clause)]
    if hasattr(clause, "or_"):
        names: list[str] = []
        skipped: list[str] = []
        for sub in clause.or_:
            n, s = clause_names(sub)
            names += n
            skipped += s
        return names, skipped
    for attr in ("equals", "starts_with", "contains"):
        if hasattr(clause, attr):
            text = str(getattr(clause, attr)).strip().rstrip("".join(SEPARATORS))
            return ([text], []) if text else ([], [f"{attr} {getattr(clause, attr)!r}"])
    if hasattr(clause, "regex"):
        head = regex_head(str(clause.regex))
        return ([head], []) if head else ([], [f"regex {clause.regex!r}"])
    return [], [repr(clause)]


def regex_head(regex: str) -> str | None:
    """`^gpt-5\\.6-luna-\\d{4}...$` -> gpt-5.6-luna: the literal id a regex starts with, when
    what follows it is a separator (so that the table's prefix matching covers the regex's
    dated forms); None otherwise."""
    if not regex.startswith("^"):
        return None
    out, i = "", 1
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex) and regex[i + 1] in ".-_:@":
            out, i = out + regex[i + 1], i + 2
        elif c.isalnum() or c in "-_:@":
            out, i = out + c, i + 1
        else:
            break
    rest = regex[i:]
    if out and out[-1] in SEPARATORS:
        return out.rstrip("".join(SEPARATORS)) or None
    if rest == "$" or rest[:2] in ("[-", "[@", "[:") or rest.startswith(("(?:-", "(-", "(@")):
        return out or None
    return None


def _prices_on(model: Any, when: dt.datetime) -> dict[str, Decimal]:
    price = model.get_prices(when)
    out: dict[str, Decimal] = {}
    for key, name in FIELDS.items():
        value = getattr(price, key, None)
        if value is None:
            continue
        base = getattr(value, "base", value)  # TieredPrices: the base tier
        if not isinstance(base, Decimal) or not base.is_finite() or base < 0:
            raise ConversionError(
                f"{model.id}: {key} is {value!r}, not a finite price >= 0 in USD per 1M tokens"
            )
        out[name] = base
    return out


def convert(
    providers: Sequence[Any],
    version: str,
    as_of: dt.date,
    wanted: Sequence[tuple[str, str]] = PROVIDERS,
) -> Conversion:
    """The models of the wanted providers, named and deduplicated as the table needs them."""
    by_id = {p.id: p for p in providers}
    missing = [pid for pid, _ in wanted if pid not in by_id]
    if missing:
        raise ConversionError(f"{PACKAGE} {version} has no provider {', '.join(missing)}")
    when = dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
    claimed: dict[str, str] = {}  # normalised name -> key of the model that has it
    models: list[Model] = []
    skipped: dict[str, list[str]] = {}
    for pid, provider_name in wanted:
        earlier = dict(claimed)  # the providers before this one
        # A name spelt without a vendor/ prefix beats the same name with one (Perplexity's
        # `sonar` is not its `perplexity/sonar`), whichever model comes first.
        plain = {
            normalise(n)
            for source in by_id[pid].models
            for n in [source.id, *clause_names(source.match)[0]]
            if "/" not in n
        }
        for source in by_id[pid].models:
            where = f"{pid}/{source.id}"
            prices = _prices_on(source, when)
            if "input" not in prices or ("output" not in prices and not _is_embedding(source)):
                skipped.setdefault("not priced per input and output token", []).append(where)
                continue
            prices.setdefault("output", Decimal(0))
            names, unmatched = clause_names(source.match)
            for clause in unmatched:
                skipped.setdefault("match clause with no literal id", []).append(
                    f"{where}: {clause}"
                )
            named: list[str] = []
            for name in _unique([source.id, *names]):
                short = name.rsplit("/", 1)[-1].strip()
                if not _ID.fullmatch(short) or short[-1] in SEPARATORS:
                    skipped.setdefault("name that is not a model id", []).append(
                        f"{where}: {name!r}"
                    )
                elif "/" in name and normalise(short) in plain:
                    skipped.setdefault("vendor/ name of another model's plain name", []).append(
                        f"{where}: {name!r}"
                    )
                else:
                    named.append(short)
            # A name an earlier provider's model already matches (Bedrock's starts-with
            # `claude-sonnet-4-5-20250929` is Anthropic's claude-sonnet-4-5) stays theirs.
            fresh = [
                n
                for n in named
                if normalise(n) not in claimed and resolve(normalise(n), earlier, depth=64) is None
            ]
            fresh = _unique(fresh, key=normalise)
            if not fresh:
                reason = (
                    "every name already priced by an earlier provider"
                    if named
                    else "no name that is a model id"
                )
                skipped.setdefault(reason, []).append(where)
                continue
            model = Model(fresh[0], provider_name, prices, fresh[1:])
            for name in fresh:
                claimed[normalise(name)] = model.key
            models.append(model)
    _drop_implied_aliases(models, claimed)
    return Conversion(models, version, as_of, tuple(p for p, _ in wanted), skipped)


def _is_embedding(model: Any) -> bool:
    return "embed" in str(model.id).lower()


def _unique(items: Iterable[str], key: Any = lambda s: s) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def resolve(name: str, index: dict[str, str], depth: int = MATCH_DEPTH) -> str | None:
    """The key a normalised name matches with at most `depth` trailing id segments dropped:
    the table's lookup (atalaia.prices) and the Prometheus rules' (atalaia_ops.cost) agree there."""
    for _ in range(depth + 1):
        if name in index:
            return index[name]
        cut = max(name.rfind(s) for s in SEPARATORS)
        if cut <= 0:
            return None
        name = name[:cut]
    return None


def _drop_implied_aliases(models: list[Model], index: dict[str, str]) -> None:
    """Leave out an alias when dropping trailing segments of it finds its model anyway
    (gpt-4o-2024-08-06 -> gpt-4o). Dropping one such alias never changes what another name
    matches, so they can all go at once."""
    for model in models:
        kept = []
        for alias in model.names:
            rest = dict(index)
            del rest[normalise(alias)]
            if resolve(normalise(alias), rest) != model.key:
                kept.append(alias)
        model.names = kept


# --- writing the table ----------------------------------------------------------------------

HEADER = """\
# GENERATED FILE, DO NOT EDIT: `python -m tools.prices refresh` converts the price table of the
# genai-prices package into this file (tests/unit/test_prices_refresh.py fails when it differs
# from a fresh conversion). Override or extend it with your own file instead: docs/cost.md.
#
# USD per million tokens:
#   input         input (prompt) tokens
#   output        output (completion) tokens, reasoning tokens included
#   cached_input  input tokens read from the provider's prompt cache (default: input)
#   cache_write   input tokens written to the prompt cache, 5-minute cache (default: input)
#   reasoning     reasoning output tokens (default: output)
# A sent model id matches a model's id or alias, ignoring case and a `vendor/` prefix; else the
# longest of them that the id starts with, followed by `-`, `:` or `@` (so gpt-4o-2024-08-06
# uses gpt-4o). Aliases are listed only where that rule would not find the model.
"""


def _scalar(value: str) -> str:
    if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS and not _numberish(value):
        return value
    return json.dumps(value)


def _numberish(value: str) -> bool:
    try:
        yaml.safe_load(value)
    except yaml.YAMLError:
        return True
    return not isinstance(yaml.safe_load(value), str)


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def render(conv: Conversion) -> str:
    providers = ", ".join(conv.providers)
    source = (
        f"{PACKAGE} {conv.version} (Pydantic's LLM price table, MIT licence): list prices of "
        f"the providers {providers}, in force on {conv.as_of.isoformat()}. Standard rates (not "
        "batch or off-peak); a price tiered by prompt length is its base tier."
    )
    lines = [
        HEADER,
        f"source: {json.dumps(source)}",
        f"source_package: {PACKAGE}",
        f'source_version: "{conv.version}"',
        f'as_of: "{conv.as_of.isoformat()}"',
        "currency: USD",
        "models:",
    ]
    current = None
    for m in conv.models:
        if m.provider != current:
            current = m.provider
            lines.append(f"  # --- {current} " + "-" * max(3, 94 - len(current)))
        fields = [f"provider: {_scalar(m.provider)}"]
        for name in ("input", "output", "cached_input", "cache_write", "reasoning"):
            if name in m.prices:
                fields.append(f"{name}: {_number(m.prices[name])}")
        if m.names:
            fields.append(f"aliases: [{', '.join(_scalar(a) for a in m.names)}]")
        lines.append(f"  {_scalar(m.key)}: {{{', '.join(fields)}}}")
    return "\n".join(lines) + "\n"


def check(text: str, name: str = "atalaia/data/prices.yaml") -> PriceTable:
    """Parse the text as the library will; raises PriceFileError for data it would refuse."""
    return _parse(text, name, base=None)


def load_source() -> tuple[list[Any], str]:
    """genai-prices' bundled data and its version (a development dependency: make venv)."""
    try:
        from genai_prices.data import providers
    except ImportError as exc:  # pragma: no cover - the dev environment has it
        raise ConversionError(
            f"{PACKAGE} is not installed: it is a development dependency (make venv)"
        ) from exc
    return list(providers), metadata.version(PACKAGE)


def committed_as_of(path: Path) -> dt.date | None:
    try:
        doc = yaml.safe_load(path.read_text())
        return dt.date.fromisoformat(str(doc["as_of"]))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.prices", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    refresh = sub.add_parser("refresh", help=f"convert {PACKAGE}'s prices into the table")
    refresh.add_argument("--out", type=Path, default=OUT, help="default: %(default)s")
    refresh.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="prices in force on this date (default: today)"
    )
    refresh.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs (as of its own date)"
    )
    refresh.add_argument("-v", "--verbose", action="store_true", help="list what was left out")
    args = parser.parse_args(argv)
    as_of = args.as_of or (committed_as_of(args.out) if args.check else None)
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    try:
        providers, version = load_source()
        conv = convert(providers, version, as_of)
        text = render(conv)
        table = check(text, str(args.out))
    except (ConversionError, PriceFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return check_generated(args.out, text, "python -m tools.prices refresh")
    args.out.write_text(text)
    names = sum(len(p.names) for p in table)
    print(
        f"wrote {args.out}: {len(table)} models ({names} names) from {PACKAGE} {version}, "
        f"as of {as_of}"
    )
    for reason, items in sorted(conv.skipped.items()):
        print(f"  left out, {reason}: {len(items)}")
        if args.verbose:
            for item in items:
                print(f"    {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
