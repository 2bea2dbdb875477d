"""The cost rules are generated from the price table, and every consumer's cost query is
atalaia_ops.cost.cost_usd()'s."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from atalaia.prices import PriceTable
from atalaia_ops import cost, slo

pytestmark = pytest.mark.unit

TABLE = PriceTable.defaults()
RULES_TEXT = (Path(__file__).resolve().parents[2] / cost.RULES_PATH).read_text()
GROUPS = yaml.safe_load(RULES_TEXT)["groups"]
REPO = Path(__file__).resolve().parents[2]


def test_committed_rules_are_fresh() -> None:
    assert cost.generate(TABLE) == RULES_TEXT, (
        "prometheus/rules/cost.yml differs from the price table: "
        "run `python -m atalaia_ops.cost generate` and commit the result"
    )
    assert RULES_TEXT.startswith("# GENERATED FILE, DO NOT EDIT.")
    assert cost.main(["generate", "--check"]) == 0


def test_one_rule_per_price_name_and_sane_counts() -> None:
    prices, derived = GROUPS
    assert prices["interval"] == cost.PRICES_INTERVAL
    names = cost.price_names(TABLE)
    assert len(prices["rules"]) == len(names)
    assert [r["labels"][cost.PRICE_MODEL] for r in prices["rules"]] == [n for n, _ in names]
    series = sum(r["expr"].count("label_replace(") for r in prices["rules"])
    assert series == 5 * len(names)  # every type, so that a sent id matches one name for all
    assert 400 <= len(TABLE) <= len(names) <= 2000 and series <= 10_000
    header = f"{len(names)} price names ({len(TABLE)} models) x token types: {series} constant"
    assert header in RULES_TEXT
    assert [r.get("record") or r.get("alert") for r in derived["rules"]] == [
        cost.PRICE_MATCH,
        cost.MODEL_PRICE,
        cost.COST_RATE,
        cost.UNPRICED_RATE,
        cost.UNPRICED_ALERT,
    ]


def test_price_series_are_the_tables_per_token_prices() -> None:
    rule = next(
        r for r in GROUPS[0]["rules"] if r["labels"][cost.PRICE_MODEL] == "claude-sonnet-4-5"
    )
    found = dict(
        (t, float(v))
        for v, t in re.findall(r'vector\(([^)]+)\), "gen_ai_token_type", "(\w+)"', rule["expr"])
    )
    per_token = TABLE.prices["claude-sonnet-4-5"].per_token()
    assert found == per_token
    assert found["cache_read"] < 0 < found["cache_creation"]  # cheaper and dearer than input
    assert found["reasoning"] == 0  # reasoning costs what output does: nothing to add


def test_names_are_matched_as_sent_and_in_lower_case() -> None:
    names = dict(cost.price_names(TABLE))
    assert names["GLM-4.6"] == names["glm-4.6"] == "GLM-4.6"
    assert names["gpt-4o"] == "gpt-4o"
    assert not [n for n in names if "/" in n]


def test_cost_usd_builds_the_join() -> None:
    q = cost.cost_usd("1h", by=("atalaia_department",))
    assert q == (
        "sum by (atalaia_department) (increase(atalaia_genai_tokens_total[1h] anchored)"
        " * on (gen_ai_request_model, gen_ai_token_type) group_left ()"
        " max by (gen_ai_request_model, gen_ai_token_type)"
        " (last_over_time(atalaia:genai_model_price_usd_per_token[1h])))"
    )
    assert cost.cost_usd("$__rate_interval", rate=True).startswith(
        "sum (rate(atalaia_genai_tokens_total[$__rate_interval])"
    )
    assert 'atalaia_genai_tokens_total{atalaia_department="sales"}[5m]' in cost.cost_usd(
        "5m", matchers='atalaia_department="sales"'
    )


def test_promtool_tests_use_the_builders_expressions() -> None:
    text = (REPO / "prometheus" / "tests" / "cost_test.yml").read_text()
    assert cost.cost_usd("10m", by=("gen_ai_request_model",)) in text


def test_consumers_use_the_builder() -> None:
    """HighLLMCost, the cost-per-task SLO, the report and the dashboards price tokens with
    cost_usd(); nothing reads the library-only atalaia_llm_cost_usd_total any more."""
    agents = yaml.safe_load((REPO / "prometheus" / "rules" / "agents.yml").read_text())
    high = next(r for g in agents["groups"] for r in g["rules"] if r.get("alert") == "HighLLMCost")
    assert high["expr"].strip() == f"{cost.cost_usd('1h', by=('atalaia_department',))} > 10"
    spec = slo.load_spec()
    good = next(s for s in spec.slos if s.name == "cost_per_task").sli
    assert isinstance(good, slo.TimeSliceSLI)
    assert cost.cost_usd("5m") in good.good
    for path in [
        REPO / "prometheus" / "rules" / "agents.yml",
        REPO / "prometheus" / "rules" / "slo.yml",
        REPO / "atalaia_ops" / "cli_report.py",
        *sorted((REPO / "atalaia_ops" / "dashboards").glob("*.py")),
        *sorted((REPO / "grafana" / "dashboards").glob("*.json")),
    ]:
        assert "atalaia_llm_cost_usd_total" not in path.read_text(), path
