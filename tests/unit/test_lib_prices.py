"""The price table: shipped defaults, matching of dated ids, user overrides, clear errors, CLI."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import atalaia
import atalaia_ops.cli
from atalaia.prices import TOKEN_TYPES, ModelPrice, PriceFileError, PriceTable
from atalaia.testing import in_memory


@pytest.fixture(autouse=True)
def no_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATALAIA_PRICES_FILE", raising=False)


def test_defaults_cover_the_common_providers() -> None:
    table = PriceTable.defaults()
    assert table.as_of and table.source
    assert (table.source_package, table.source_version) == ("genai-prices", "0.2.5")
    assert len(table) >= 400
    providers = {p.provider for p in table}
    assert {
        "openai",
        "anthropic",
        "gcp.gen_ai",
        "mistral_ai",
        "deepseek",
        "x_ai",
        "cohere",
        "groq",
        "aws.bedrock",
    } <= providers
    for price in table:
        prices = (price.input, price.output, price.cached_input, price.cache_write_price)
        assert min(*prices, price.reasoning_price) >= 0, price
        assert price.cached_input <= price.input, price


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a dated id with a price of its own
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # the longer family wins
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("gpt-35-turbo", "gpt-3.5-turbo"),  # alias (Azure's spelling)
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),  # Anthropic's, not Bedrock's
        ("claude-3.5-sonnet", "claude-3-5-sonnet"),  # alias
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),  # Vertex AI's spelling
        ("claude-opus-4-20250514", "claude-opus-4-0"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("llama-3.1-8b-instant", "llama-3.1-8b-instant"),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        ("deepseek-chat", "deepseek-chat"),
        ("gpt-4oo", None),  # not at a separator
        ("my-finetune", None),
    ],
)
def test_lookup(model: str, entry: str | None) -> None:
    price = PriceTable.defaults().lookup(model)
    assert (price.model if price else None) == entry


def test_cost_math() -> None:
    table = PriceTable.defaults()
    # gpt-4o: 2.50 input, 1.25 cached input, 10.00 output per million tokens.
    assert table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert table.cost("gpt-4o", 0, 1_000_000) == pytest.approx(10.00)
    assert table.cost("gpt-4o", 1_000_000, 0, cached_tokens=1_000_000) == pytest.approx(1.25)
    assert table.cost("gpt-4o", 1000, 500, 200) == pytest.approx(
        (800 * 2.5 + 200 * 1.25 + 500 * 10) / 1e6
    )
    # Cached tokens can never exceed the input they are part of.
    assert table.cost("gpt-4o", 100, 0, cached_tokens=10_000) == pytest.approx(100 * 1.25 / 1e6)


def test_cost_of_every_token_type_and_per_token_prices() -> None:
    price = ModelPrice("m", input=2, output=10, cached_input=0.5, cache_write=2.5, reasoning=12)
    # 1000 input = 600 plain + 300 read from the cache + 100 written to it; 400 output = 150
    # plain + 250 reasoning.
    expected = (600 * 2 + 300 * 0.5 + 100 * 2.5 + 150 * 10 + 250 * 12) / 1e6
    assert price.cost(1000, 400, 300, 100, 250) == pytest.approx(expected)
    counts = {"input": 1000, "cache_read": 300, "cache_creation": 100, "output": 400}
    counts["reasoning"] = 250
    per_token = price.per_token()
    assert sum(counts[t] * per_token[t] for t in TOKEN_TYPES) == pytest.approx(expected)
    assert per_token == {
        "input": 2e-06,
        "output": 1e-05,
        "cache_read": -1.5e-06,
        "cache_creation": 5e-07,
        "reasoning": 2e-06,
    }
    # Unset cache-write and reasoning prices are the input and output prices.
    plain = ModelPrice("p", input=0.05, output=0.08, cached_input=0.05)
    assert plain.per_token() == {
        "input": 5e-08,
        "output": 8e-08,
        "cache_read": 0,
        "cache_creation": 0,
        "reasoning": 0,
    }
    assert plain.cost(100, 10, 0, 50, 5) == pytest.approx((100 * 0.05 + 10 * 0.08) / 1e6)


def test_unknown_models_give_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """3000 invented model ids are one warning, not 3000 (the rest at DEBUG)."""
    table = PriceTable.defaults()
    with caplog.at_level(logging.WARNING, "atalaia.prices"):
        assert [table.cost("nope-1", 10, 10) for _ in range(3)] == [0, 0, 0]
        for i in range(3000):
            table.cost(f"fine-tune-{i}", 10, 10)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "nope-1" in warnings[0].getMessage()
    assert "nope-1" in table.unknown_models and len(table.unknown_models) <= 1000


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


def test_user_file_overrides_and_extends(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        as_of: "2026-01-01"
        models:
          gpt-4o: {input: 2.0}              # partial: output and cached keep the defaults
          acme-llm: {provider: acme, input: 1, output: 2, aliases: [acme-latest]}
        """.replace("\n        ", "\n"),
    )
    table = PriceTable.load(path)
    gpt = table.lookup("gpt-4o-2024-08-06")
    assert (gpt.input, gpt.output, gpt.cached_input) == (2.0, 10.0, 1.25)
    acme = table.lookup("acme-latest")
    assert (acme.model, acme.input, acme.output, acme.cached_input) == ("acme-llm", 1, 2, 1)
    assert table.as_of == "2026-01-01"
    assert table.files == ("atalaia/data/prices.yaml", str(path))
    assert table.lookup("claude-3-5-haiku") is not None  # the rest of the defaults remain


def test_user_file_sets_cache_write_and_reasoning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "models:\n  gpt-4o: {cache_write: 3.0, reasoning: 12}\n  claude-sonnet-4-5: {input: 4}\n",
    )
    table = PriceTable.load(path)
    gpt = table.lookup("gpt-4o")
    assert (gpt.input, gpt.cache_write_price, gpt.output, gpt.reasoning_price) == (2.5, 3, 10, 12)
    # A price the source gives stays when another field is overridden.
    claude = table.lookup("claude-sonnet-4-5")
    assert (claude.input, claude.cached_input, claude.cache_write_price) == (4, 0.3, 3.75)
    # An unset cache-write price follows an overridden input price.
    mini = PriceTable.load(write(tmp_path, "models:\n  gpt-4o-mini: {input: 1}\n"))
    assert mini.lookup("gpt-4o-mini").cache_write_price == 1


def test_user_alias_takes_a_name_from_the_defaults(tmp_path: Path) -> None:
    # claude-3.5-sonnet is an alias of the shipped claude-3-5-sonnet; the user's model takes it.
    path = write(
        tmp_path, "models:\n  my-claude: {input: 1, output: 2, aliases: [claude-3.5-sonnet]}\n"
    )
    table = PriceTable.load(path)
    assert table.lookup("claude-3.5-sonnet").model == "my-claude"
    assert "claude-3.5-sonnet" not in table.lookup("claude-3-5-sonnet").aliases
    names = [n.lower() for p in table for n in p.names]
    assert len(names) == len(set(names)), "every name prices exactly one model"


def test_env_file_is_used_by_load_and_by_telemetry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "models:\n  house-model: {input: 4, output: 8}\n")
    monkeypatch.setenv("ATALAIA_PRICES_FILE", str(path))
    assert PriceTable.load().lookup("house-model") is not None
    cap = in_memory().activate()
    with atalaia.track_llm_call("house-model", provider="vllm") as call:
        call.record_usage(1_000_000, 1_000_000)
    cap.close()
    assert call.cost_usd == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("models: [\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
        ("prices: {}\n", "unknown top-level keys ['prices']"),
        ("models: {}\n", "`models:` must map"),
        ("models:\n  gpt-4o: {input: cheap}\n", "models.gpt-4o.input: expected a number"),
        (
            "models:\n  gpt-4o: {output: -1}\n",
            "models.gpt-4o.output: expected a finite number >= 0",
        ),
        ("models:\n  new-model: {input: 1}\n", "models.new-model: a new model needs `output`"),
        ("models:\n  gpt-4o: {inptu: 1}\n", "unknown keys ['inptu']"),
        ("currency: EUR\nmodels:\n  x: {input: 1, output: 1}\n", "currency must be USD"),
        (
            "models:\n  a: {input: 1, output: 1, aliases: [b]}\n  b: {input: 2, output: 2}\n",
            "models.b: 'b' is also a name of models.a",
        ),
        (
            "models:\n  a: {input: 1, output: 1, aliases: [GPT-4o]}\n",
            "'gpt-4o' is the id of a model of atalaia/data/prices.yaml; override that model",
        ),
        ("models:\n  a: {input: 1, output: 1, aliases: [a-]}\n", "'a-' is not a model id"),
        (
            "models:\n  gpt-4o: {cache_write: .nan}\n",
            "models.gpt-4o.cache_write: expected a finite",
        ),
        ("models:\n  gpt-4o: {reasoning: [1]}\n", "models.gpt-4o.reasoning: expected a number"),
    ],
)
def test_invalid_file_names_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PriceFileError) as err:
        PriceTable.load(path)
    assert str(path) in str(err.value)
    assert problem in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match=r"missing\.yaml: cannot read it"):
        PriceTable.load(tmp_path / "missing.yaml")


def test_invalid_env_file_does_not_stop_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ATALAIA_PRICES_FILE", str(write(tmp_path, "models: oops\n")))
    cap = in_memory()
    cap.close()
    assert cap.telemetry.prices.lookup("gpt-4o") is not None  # read on first use
    assert "using the built-in price table" in caplog.text and "prices.yaml" in caplog.text


# --- CLI -----------------------------------------------------------------------------------------
def test_cli_prices(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "models:\n  gpt-4o: {input: 3.33}\n")
    assert atalaia_ops.cli.main(["prices", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("gpt-4o "))
    assert row.split() == ["gpt-4o", "openai", "3.33", "1.25", "3.33", "10", "10"]
    assert atalaia_ops.cli.main(["prices", "--format", "yaml"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert PriceTable.defaults().to_dict() == doc


def test_cli_prices_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "models:\n  gpt-4o: {input: x}\n")
    assert atalaia_ops.cli.main(["prices", "--file", str(path)]) == 2
    assert f"price file {path}: models.gpt-4o.input" in capsys.readouterr().err


def test_cli_version_as_console_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "atalaia_ops.cli", "version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("atalaia ")


def test_cli_subcommands_from_other_modules(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import types

    plugin = types.ModuleType("atalaia_ops.cli_hello")

    def register(sub) -> None:  # type: ignore[no-untyped-def]
        parser = sub.add_parser("hello")
        parser.set_defaults(func=lambda args: print("hi") or 0)

    plugin.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "atalaia_ops.cli_hello", plugin)
    monkeypatch.setattr(atalaia_ops.cli, "_plugins", lambda: ["cli_hello"])
    assert atalaia_ops.cli.main(["hello"]) == 0
    assert capsys.readouterr().out == "hi\n"
