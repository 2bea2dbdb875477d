"""LLM cost in the stack: Prometheus prices every emitter's tokens with rules generated from the
price table, and this module is the one place that writes the PromQL for it.

    python -m atalaia_ops.cost generate           # writes prometheus/rules/cost.yml
    python -m atalaia_ops.cost generate --check   # exits 1 if the committed file is out of date
    python -m atalaia_ops.cost generate --prices my-prices.yaml --out /etc/prometheus/rules/cost.yml

The collector counts tokens from every emitter's spans as `atalaia_genai_tokens_total` (by agent,
provider, requested model, department and token type; docs/telemetry.md). The generated rules:

1. `atalaia:genai_price_usd_per_token{atalaia_price_model, gen_ai_token_type}`: one constant
   series per name of the price table (a model's id and aliases) and token type, in USD per
   token of that type's counter. `input` and `output` count every token at the plain price;
   `cache_read` and `cache_creation` tokens are part of `input`, `reasoning` tokens part of
   `output`, so those carry only the difference to the plain price (ModelPrice.per_token), and
   the sum over the types is exact without counting a token twice.
2. `atalaia:genai_price_model:info{gen_ai_request_model, atalaia_price_model}`: for every model
   id that tokens arrive with, the table name it matches: the id as sent without a `vendor/`
   prefix, else the id with its last 1, 2, ... MATCH_DEPTH `-`/`:`/`@` segments dropped, the
   longest match first. That is the price table's own lookup (atalaia.prices), except that
   PromQL cannot change case: an id must be sent as the table spells it or in lower case.
   `atalaia:genai_model_price_usd_per_token{gen_ai_request_model, gen_ai_token_type,
   atalaia_price_model}` is then the price of each token type of each sent id.
3. `atalaia:genai_cost_usd:rate5m` (USD per second) and `atalaia:genai_unpriced_tokens:rate5m`
   (tokens per second of ids that match no name), and the alert LLMModelUnpriced.

Consumers never write the join: `cost_usd()` returns it for any window and grouping.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from atalaia.prices import (
    MATCH_DEPTH,
    SEPARATORS,
    TOKEN_TYPES,
    PriceFileError,
    PriceTable,
)
from atalaia_ops.generated import check_generated

# Written into the checkout the generator is run from (its root).
RULES_PATH = Path("prometheus") / "rules" / "cost.yml"
RUNBOOK_BASE = "https://github.com/atalaia/atalaia/blob/main/docs/runbooks/"

TOKENS = "atalaia_genai_tokens_total"
PRICE = "atalaia:genai_price_usd_per_token"
PRICE_MATCH = "atalaia:genai_price_model:info"
MODEL_PRICE = "atalaia:genai_model_price_usd_per_token"
COST_RATE = "atalaia:genai_cost_usd:rate5m"
UNPRICED_RATE = "atalaia:genai_unpriced_tokens:rate5m"
UNPRICED_ALERT = "LLMModelUnpriced"
PRICE_MODEL = "atalaia_price_model"  # the table name a sent id was priced as
# The cost rate keeps the labels budgets and dashboards group by.
COST_LABELS = ("gen_ai_agent_name", "gen_ai_provider_name", "gen_ai_request_model")
COST_LABELS_DEPARTMENT = (*COST_LABELS, "atalaia_department")
PRICES_INTERVAL = "1m"  # constants: a sample a minute is plenty (the lookback is 5 minutes)

HEADER = """\
# GENERATED FILE, DO NOT EDIT.
# Source: the price table (atalaia/data/prices.yaml, {source}, as of {as_of}).
# Regenerate with `python -m atalaia_ops.cost generate`; tests/unit/test_cost.py fails when this
# file differs from a fresh generation. How prices are matched and applied: docs/cost.md.
#
# {names} price names ({models} models) x token types: {series} constant price series;
# {rules} rules in all.
"""

_SEP = "".join(re.escape(s) for s in SEPARATORS)


def total(selector: str, window: str) -> str:
    """PromQL for how much the counter `selector` grew over `window`, exactly: see cost_usd()."""
    return f"increase({selector}[{window}] anchored)"


def cost_usd(
    window: str,
    *,
    by: Sequence[str] = (),
    rate: bool = False,
    matchers: str = "",
) -> str:
    """PromQL for the USD cost of the LLM tokens of every emitter: over `window` (increase), or
    per second (`rate=True`), summed by the labels `by` of atalaia_genai_tokens_total.

    `matchers` (e.g. 'atalaia_department="sales"') narrows the tokens. The price of each sent
    model id is the latest one recorded for it in the window, so a window that saw no rule
    evaluation, or only ids the table does not know, has no cost (see the unpriced series).

    A total is `increase(...[window] anchored)`: the exact difference between the counter's
    value before the window and its last value in it, where plain increase() extrapolates to
    the window's edges (a spend that is off by up to half a sample interval's worth). A counter
    born inside the window counts from zero: Prometheus stores a zero at its start time
    (--enable-feature=created-timestamp-zero-ingestion; the collector gives the derived series
    a start time).
    """
    agg = f"sum by ({', '.join(by)})" if by else "sum"
    sel = f"{{{matchers}}}" if matchers else ""
    tokens = f"rate({TOKENS}{sel}[{window}])" if rate else total(f"{TOKENS}{sel}", window)
    return (
        f"{agg} ({tokens}"
        " * on (gen_ai_request_model, gen_ai_token_type) group_left ()"
        " max by (gen_ai_request_model, gen_ai_token_type)"
        f" (last_over_time({MODEL_PRICE}[{window}])))"
    )


def unpriced_tokens(window: str, *, by: Sequence[str] = ("gen_ai_request_model",)) -> str:
    """PromQL for the tokens over `window` of model ids that the table does not price."""
    return (
        f"sum by ({', '.join(by)}) ({total(TOKENS, window)}"
        f" unless on (gen_ai_request_model) last_over_time({MODEL_PRICE}[{window}]))"
    )


def price_names(table: PriceTable) -> list[tuple[str, str]]:
    """(name, model) for every name a sent id can match in PromQL: each id and alias without a
    vendor/ prefix, as spelt and in lower case."""
    out: dict[str, str] = {}
    for price in table:
        for name in price.names:
            short = name.strip().rsplit("/", 1)[-1]
            for spelling in (short, short.lower()):
                out.setdefault(spelling, price.model)
    return sorted(out.items())


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise PriceFileError(f"price {value!r} is not finite")
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _price_expr(per_token: dict[str, float]) -> str:
    # Every type, 0 included: a sent id then matches a name for all its token types or none,
    # never one type here and another at a shorter name.
    terms = [
        f'label_replace(vector({_number(per_token[t])}), "gen_ai_token_type", "{t}", "", "")'
        for t in TOKEN_TYPES
    ]
    return "\nor ".join(terms) + "\n"


def _level(depth: int) -> str:
    """The table name of each sent id with `depth` trailing segments dropped, where it is one."""
    segment = f"[{_SEP}][^{_SEP}/]*"
    regex = "(?:.*/)?([^/]+)" if depth == 0 else f"(?:.*/)?([^/]+?)(?:{segment}){{{depth}}}"
    regex = regex.replace("\\", "\\\\")
    return (
        "(\n"
        f"  label_replace(group by (gen_ai_request_model) ({TOKENS}),\n"
        f'    "{PRICE_MODEL}", "$1", "gen_ai_request_model", "{regex}")\n'
        f"  * on ({PRICE_MODEL}) group_left ()\n"
        f'  group by ({PRICE_MODEL}) ({PRICE}{{gen_ai_token_type="input"}})\n'
        ")"
    )


def price_model_expr(depth: int = MATCH_DEPTH) -> str:
    """The rule that finds each sent id's table name: the longest match (fewest segments
    dropped) wins; `or on (gen_ai_request_model)` adds a shorter one only for ids still
    without."""
    levels = [_level(d) for d in range(depth + 1)]
    return "\nor on (gen_ai_request_model)\n".join(levels) + "\n"


def model_price_expr() -> str:
    """The price of every token type of every sent id, from its table name."""
    return (
        f"group by (gen_ai_request_model, gen_ai_token_type) ({TOKENS})\n"
        f"* on (gen_ai_request_model) group_left ({PRICE_MODEL}) {PRICE_MATCH}\n"
        f"* on ({PRICE_MODEL}, gen_ai_token_type) group_left () {PRICE}\n"
    )


def rules(table: PriceTable) -> list[dict[str, Any]]:
    """The rule groups of prometheus/rules/cost.yml."""
    by_model = {p.model: p for p in table}
    constants = [
        {
            "record": PRICE,
            "expr": _price_expr(by_model[model].per_token()),
            "labels": {PRICE_MODEL: name},
        }
        for name, model in price_names(table)
    ]
    labels = ", ".join(COST_LABELS_DEPARTMENT)
    value = "{{ $value | humanize }}"
    derived: list[dict[str, Any]] = [
        {"record": PRICE_MATCH, "expr": price_model_expr()},
        {"record": MODEL_PRICE, "expr": model_price_expr()},
        {
            "record": COST_RATE,
            "expr": (
                f"sum by ({labels}) (\n  rate({TOKENS}[5m])\n"
                "  * on (gen_ai_request_model, gen_ai_token_type) group_left ()\n"
                f"  max by (gen_ai_request_model, gen_ai_token_type) ({MODEL_PRICE})\n)\n"
            ),
        },
        {
            "record": UNPRICED_RATE,
            "expr": (
                "sum by (gen_ai_provider_name, gen_ai_request_model) (\n"
                f"  rate({TOKENS}[5m])\n"
                f"  unless on (gen_ai_request_model) {MODEL_PRICE}\n)\n"
            ),
        },
        {
            "alert": UNPRICED_ALERT,
            "expr": f"{UNPRICED_RATE} > 0\n",
            "for": "15m",
            "labels": {"severity": "warning", "team": "finance"},
            "annotations": {
                "summary": (
                    "Tokens of model {{ $labels.gen_ai_request_model }} have no price: "
                    "their cost is missing"
                ),
                "description": (
                    "Agents have been sending tokens of model {{ $labels.gen_ai_request_model }} "
                    "(provider {{ $labels.gen_ai_provider_name }}) for 15 minutes, "
                    f"{value} tokens a second now, and the price table has no price for that "
                    "id, so no cost, budget or cost SLO counts them. Add the model to a price "
                    "file and regenerate the cost rules."
                ),
                "runbook_url": f"{RUNBOOK_BASE}{UNPRICED_ALERT}.md",
            },
        },
    ]
    return [
        {"name": "atalaia-cost-prices", "interval": PRICES_INTERVAL, "rules": constants},
        {"name": "atalaia-cost", "rules": derived},
    ]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def generate(table: PriceTable) -> str:
    """The full text of prometheus/rules/cost.yml."""
    groups = rules(table)
    constants = groups[0]["rules"]
    series = sum(r["expr"].count("label_replace(") for r in constants)
    body = yaml.dump(
        {"groups": groups}, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True
    )
    source = table.source_package and f"{table.source_package} {table.source_version}"
    header = HEADER.format(
        source=source or table.source[:60],
        as_of=table.as_of,
        names=len(constants),
        models=len(table),
        series=series,
        rules=len(constants) + len(groups[1]["rules"]),
    )
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atalaia_ops.cost", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the cost recording and alerting rules")
    gen.add_argument(
        "--prices",
        help="a price file merged over the defaults (default: $ATALAIA_PRICES_FILE, if set)",
    )
    gen.add_argument("--out", type=Path, default=RULES_PATH, help="default: %(default)s")
    gen.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if --out is out of date"
    )
    args = parser.parse_args(argv)
    try:
        text = generate(PriceTable.load(args.prices))
    except PriceFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        return check_generated(args.out, text, "python -m atalaia_ops.cost generate")
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
