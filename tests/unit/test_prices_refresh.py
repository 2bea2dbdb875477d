"""The price table is a faithful, fresh conversion of the installed genai-prices package.

The conversion runs on the real package's data (a development dependency, locked): the committed
atalaia/data/prices.yaml must be what it gives, well-known models must cost what the package's
own calculator says, every id the package names must find a model with the package's prices,
and data that the library would refuse is never written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from typing import Any

import genai_prices
import pytest
from genai_prices import types as gp

from atalaia.prices import PriceFileError, PriceTable, normalise
from tools import prices as refresh

pytestmark = pytest.mark.unit

SOURCE, VERSION = refresh.load_source()
COMMITTED = refresh.OUT.read_text()
AS_OF = refresh.committed_as_of(refresh.OUT)
TABLE = PriceTable.defaults()
NOON = dt.datetime.combine(AS_OF or dt.date.today(), dt.time(12), tzinfo=dt.UTC)


def test_committed_table_is_the_conversion_of_the_locked_package() -> None:
    assert AS_OF is not None
    assert metadata.version("genai-prices") == VERSION == TABLE.source_version
    assert TABLE.source_package == "genai-prices"
    fresh = refresh.render(refresh.convert(SOURCE, VERSION, AS_OF))
    assert fresh == COMMITTED, (
        "atalaia/data/prices.yaml is not what genai-prices gives: run "
        "`python -m tools.prices refresh` (then `python -m atalaia_ops.cost generate`)"
    )
    assert refresh.main(["refresh", "--check"]) == 0


def test_hundreds_of_models_of_the_major_providers() -> None:
    conv = refresh.convert(SOURCE, VERSION, AS_OF or dt.date.today())
    assert len(conv.models) == len(TABLE) >= 400
    counts: dict[str, int] = {}
    for m in conv.models:
        counts[m.provider] = counts.get(m.provider, 0) + 1
    assert counts["openai"] >= 80 and counts["anthropic"] >= 20 and counts["gcp.gen_ai"] >= 40
    # Only these are left out, and a model left out as unpriced really has no token price.
    assert set(conv.skipped) <= {
        "every name already priced by an earlier provider",
        "match clause with no literal id",
        "name that is not a model id",
        "not priced per input and output token",
        "vendor/ name of another model's plain name",
        "no name that is a model id",
    }
    by_key = {f"{p.id}/{m.id}": m for p in SOURCE for m in p.models}
    for where in conv.skipped["not priced per input and output token"]:
        price = by_key[where].get_prices(NOON)
        assert price.input_mtok is None or price.output_mtok is None, where


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o", "openai"),
        ("gpt-4o-mini-2024-07-18", "openai"),
        ("gpt-4.1", "openai"),
        ("o3-mini", "openai"),
        ("claude-sonnet-4-5-20250929", "anthropic"),
        ("claude-haiku-4-5", "anthropic"),
        ("claude-3-5-haiku-20241022", "anthropic"),
        ("gemini-2.5-flash", "google"),
        ("gemini-2.5-pro", "google"),
        ("mistral-large-latest", "mistral"),
        ("deepseek-chat", "deepseek"),
        ("grok-3", "x-ai"),
        ("command-r-plus", "cohere"),
        ("llama-3.1-8b-instant", "groq"),
    ],
)
def test_well_known_models_cost_what_the_package_says(model: str, provider: str) -> None:
    # A call below every prompt-length tier: 20k input tokens, of which 5k read from the cache
    # and 2k written to it, and 3k output tokens.
    usage = genai_prices.Usage(
        input_tokens=20_000, cache_read_tokens=5_000, cache_write_tokens=2_000, output_tokens=3_000
    )
    theirs = genai_prices.calc_price(
        usage, model, provider_id=provider, genai_request_timestamp=NOON
    ).total_price
    ours = TABLE.cost(model, 20_000, 3_000, cached_tokens=5_000, cache_creation_tokens=2_000)
    assert ours == pytest.approx(float(theirs), rel=1e-9), (model, ours, theirs)
    assert ours > 0


def test_every_id_the_package_names_finds_its_prices() -> None:
    """Each literal id of a kept model's match clauses finds a model with the package's prices,
    or one of an earlier provider (whose model the id is, e.g. Vertex's claude ids)."""
    order = {name: i for i, (_, name) in enumerate(refresh.PROVIDERS)}
    checked, wrong = 0, []
    for pid, provider_name in refresh.PROVIDERS:
        provider = next(p for p in SOURCE if p.id == pid)
        for model in provider.models:
            prices = refresh._prices_on(model, NOON)
            if "input" not in prices or ("output" not in prices and "embed" not in model.id):
                continue  # not priced per token: left out
            names, _ = refresh.clause_names(model.match)
            plain = {normalise(n) for m in provider.models for n in [m.id] if "/" not in n}
            for name in names:
                if "/" in name and normalise(name) in plain and normalise(name) != model.id:
                    continue  # `perplexity/sonar` is not Perplexity's `sonar`
                found = TABLE.lookup(name)
                if found is None:
                    wrong.append(f"{pid}/{model.id}: {name} has no price")
                    continue
                if order[found.provider or ""] < order[provider_name]:
                    continue  # an earlier provider's model
                got = (found.input, found.output, found.cached_input)
                want = (
                    float(prices["input"]),
                    float(prices.get("output", 0)),
                    float(prices.get("cached_input", prices["input"])),
                )
                checked += 1
                if got != want:
                    wrong.append(f"{pid}/{model.id}: {name} -> {found.model} {got} != {want}")
    assert checked > 600
    assert not wrong, "\n".join(wrong[:20])


def test_implied_aliases_are_left_out_and_still_match() -> None:
    gpt = TABLE.prices["gpt-4o"]
    assert "gpt-4o-2024-08-06" not in gpt.aliases  # gpt-4o + a date: found without an alias
    assert TABLE.lookup("gpt-4o-2024-08-06") is gpt
    index = {normalise(n): p.model for p in TABLE for n in p.names}
    assert refresh.resolve("gpt-4o-2024-08-06", index) == "gpt-4o"
    assert refresh.resolve("gpt-4o-2024-08-06", index, depth=2) is None


@pytest.mark.parametrize(
    ("regex", "head"),
    [
        (r"^gpt-5\.6-luna-\d{4}-\d{2}-\d{2}$", "gpt-5.6-luna"),
        (r"^claude-opus-5[-@]\d{8}$", "claude-opus-5"),
        (r"^claude-fable-5$", "claude-fable-5"),
        (r"^x-ai/grok-4\.3-\d{8}$", None),  # a vendor prefix: not an id the table takes
        (r"^gpt\d", None),  # `gpt` would price every gpt-* id
        (r"(?i)claude", None),
    ],
)
def test_regex_head(regex: str, head: str | None) -> None:
    assert refresh.regex_head(regex) == head


# --- bad data is refused with a clear error --------------------------------------------------


@dataclass
class FakeModel:
    id: str
    match: Any
    prices: gp.ModelPrice
    deprecated: bool | None = None

    def get_prices(self, when: dt.datetime) -> gp.ModelPrice:
        return self.prices


@dataclass
class FakeProvider:
    id: str
    models: list[FakeModel] = field(default_factory=list)


def fake(model_id: str, **prices: Decimal) -> FakeProvider:
    model = FakeModel(model_id, gp.ClauseEquals(equals=model_id), gp.ModelPrice(**prices))
    return FakeProvider("acme", [model])


WANTED = (("acme", "acme"),)
TODAY = dt.date(2026, 1, 1)


def test_a_negative_price_is_refused() -> None:
    source = [fake("acme-1", input_mtok=Decimal(1), output_mtok=Decimal(-2))]
    with pytest.raises(refresh.ConversionError, match=r"acme-1: output_mtok is .*-2"):
        refresh.convert(source, "9.9", TODAY, WANTED)


def test_a_missing_provider_is_refused() -> None:
    with pytest.raises(refresh.ConversionError, match=r"genai-prices 9\.9 has no provider acme"):
        refresh.convert([], "9.9", TODAY, WANTED)


def test_written_table_is_checked_by_the_library_parser() -> None:
    conv = refresh.convert(
        [fake("acme-1", input_mtok=Decimal("1.5"), output_mtok=Decimal(3))], "9.9", TODAY, WANTED
    )
    table = refresh.check(refresh.render(conv))
    assert table.lookup("acme-1-20260101").cost(1_000_000, 0) == 1.5
    assert table.source_version == "9.9" and table.as_of == "2026-01-01"
    # What the parser refuses is never written: the same names twice, for instance.
    broken = refresh.render(conv) + "  ACME-1: {provider: acme, input: 1, output: 1}\n"
    with pytest.raises(PriceFileError, match=r"'ACME-1' is also a name of models\.acme-1"):
        refresh.check(broken)


def test_refresh_writes_and_reports(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prices.yaml"
    assert refresh.main(["refresh", "--out", str(out), "--as-of", str(AS_OF)]) == 0
    assert out.read_text() == COMMITTED
    assert f"{len(TABLE)} models" in capsys.readouterr().out
    out.write_text(
        COMMITTED.replace(
            "gpt-4o: {provider: openai, input: 2.5", "gpt-4o: {provider: openai, input: 2.6"
        )
    )
    assert refresh.main(["refresh", "--out", str(out), "--check"]) == 1
