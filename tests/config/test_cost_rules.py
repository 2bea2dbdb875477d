"""The stack's cost equals the price table's own: for every model of the table (sent as its id,
dated, or with a vendor prefix) and every token type, the generated Prometheus rules, evaluated by
the real promtool, give the cost that PriceTable.cost() computes for the same tokens, to 0.1 %;
and the ids the table cannot price are exactly the ones the rules call unpriced.

The table is the shipped one with a user file merged over it, so that overrides reach the stack
and some models have a price for every token type (cache write, reasoning) that differs from the
input and output prices.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from atalaia.prices import PriceTable
from atalaia_ops import cost
from tests.conftest import run

OVERRIDES = """\
models:
  gpt-4o: {cache_write: 3.125, reasoning: 12.5}
  o3-mini: {cache_write: 1.375, reasoning: 6.6}
  acme-reasoner: {provider: acme, input: 1, output: 4, cached_input: 0.1, cache_write: 1.25,
                  reasoning: 5, aliases: [acme-r1]}
"""
# Tokens a minute of each type for model number i: input includes the cache reads and writes,
# output the reasoning tokens.
BASE = {"input": 6000, "cache_read": 1800, "cache_creation": 600, "output": 3000, "reasoning": 900}
MINUTES = 10
CHUNK = 50
UNPRICED = ["my-finetune", "unknown", "gpt-4oo", "GPT-4o"]  # GPT-4o: PromQL cannot lower case


def sent_ids(table: PriceTable) -> list[str]:
    ids = []
    for i, price in enumerate(sorted(table, key=lambda p: p.model)):
        ids.append(price.model)
        if i % 7 == 0:
            ids.append(f"{price.model}-2026-01-01")  # three trailing segments dropped
        if i % 11 == 0:
            ids.append(f"some-vendor/{price.model}")
    return [*ids, "acme-r1", "gpt-4o-2024-08-06", "claude-3-5-sonnet-v2@20241022"]


def tokens(i: int) -> dict[str, int]:
    return {t: n * (1 + i % 5) for t, n in BASE.items()}


def test_rules_cost_equals_python_cost(tool, tmp_path: Path) -> None:
    override = tmp_path / "overrides.yaml"
    override.write_text(OVERRIDES)
    table = PriceTable.load(override)
    (tmp_path / "cost.yml").write_text(cost.generate(table))

    ids = [*sent_ids(table), *UNPRICED]
    assert {s for s in UNPRICED if table.lookup(s) is None} == set(UNPRICED) - {"GPT-4o"}
    by_model = cost.cost_usd(f"{MINUTES}m", by=("gen_ai_request_model",))
    groups, priced = [], []
    # promtool allows 10,000 samples a query (Prometheus: 50 million), and the price series alone
    # are 4,090: 50 ids a test group.
    for start in range(0, len(ids), CHUNK):
        series, expected, unpriced = [], [], []
        for i, sent in enumerate(ids[start : start + CHUNK], start):
            per_minute = tokens(i)
            for token_type, n in per_minute.items():
                labels = (
                    f'gen_ai_agent_name="a{i % 3}", gen_ai_provider_name="p", '
                    f'gen_ai_request_model="{sent}", gen_ai_token_type="{token_type}"'
                )
                series.append(
                    {
                        "series": f"atalaia_genai_tokens_total{{{labels}}}",
                        "values": f"0+{n}x{MINUTES}",
                    }
                )
            if sent in UNPRICED:
                unpriced.append({"labels": f'{{gen_ai_request_model="{sent}"}}', "value": 1})
                continue
            total = {t: n * MINUTES for t, n in per_minute.items()}
            usd = table.cost(
                sent,
                total["input"],
                total["output"],
                cached_tokens=total["cache_read"],
                cache_creation_tokens=total["cache_creation"],
                reasoning_tokens=total["reasoning"],
            )
            assert table.lookup(sent) is not None, sent
            series.append(
                {
                    "series": f'python_cost_usd{{gen_ai_request_model="{sent}"}}',
                    "values": f"{usd!r}x{MINUTES}",
                }
            )
            expected.append({"labels": f'{{gen_ai_request_model="{sent}"}}', "value": 1})
            priced.append(sent)
        groups.append(
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        # |stack - python| <= 0.1 % of python, for every priced id.
                        "expr": (
                            f"abs({by_model} - on (gen_ai_request_model) python_cost_usd)"
                            " <= bool on (gen_ai_request_model) (0.001 * python_cost_usd)"
                        ),
                        "eval_time": f"{MINUTES}m",
                        "exp_samples": expected,
                    },
                    {
                        # The unpriced ids, exactly.
                        "expr": f"group by (gen_ai_request_model) ({cost.UNPRICED_RATE})",
                        "eval_time": f"{MINUTES}m",
                        "exp_samples": unpriced,
                    },
                ],
            }
        )
    unit = {"rule_files": ["cost.yml"], "evaluation_interval": "1m", "tests": groups}
    (tmp_path / "cost_test.yml").write_text(yaml.safe_dump(unit, width=1000))
    assert len(priced) > len(table)  # every model, some of them twice
    result = run([tool("prometheus", "promtool"), "test", "rules", "cost_test.yml"], cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[:5000]
