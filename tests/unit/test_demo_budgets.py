"""Per-department daily budgets: charging, remaining ratio, exhaustion and the UTC-day rollover."""

from __future__ import annotations

import datetime as dt

import pytest

from demo_agents.orchestrator.budgets import Budgets


def test_charges_accumulate_per_department() -> None:
    budgets = Budgets({"sales": 10.0, "research": 4.0})
    budgets.charge("sales", 2.5)
    state = budgets.charge("sales", 5.0)
    assert state.spent_usd == pytest.approx(7.5)
    assert state.remaining_ratio == pytest.approx(0.25)
    assert not state.exhausted
    assert budgets.state("research").spent_usd == 0.0
    assert budgets.charge("research", 4.5).exhausted
    assert budgets.state("research").remaining_ratio == 0.0


def test_new_utc_day_resets_spending() -> None:
    day = [dt.date(2026, 1, 1)]
    budgets = Budgets({"sales": 10.0}, today=lambda: day[0])
    budgets.charge("sales", 9.0)
    day[0] = dt.date(2026, 1, 2)
    assert budgets.state("sales").spent_usd == 0.0
    assert budgets.state("sales").remaining_ratio == 1.0


def test_bad_charges_are_refused_with_a_clear_message() -> None:
    budgets = Budgets({"sales": 10.0})
    with pytest.raises(KeyError, match="marketing"):
        budgets.charge("marketing", 1.0)
    with pytest.raises(ValueError, match="negative"):
        budgets.charge("sales", -1.0)
    with pytest.raises(ValueError, match="positive"):
        Budgets({"sales": 0.0})


def test_restore_gives_back_spending_since_the_snapshot_but_never_adds() -> None:
    budgets = Budgets({"sales": 10.0, "research": 10.0})
    budgets.charge("sales", 2.0)
    snapshot = budgets.snapshot()
    budgets.charge("sales", 7.5)
    budgets.restore(snapshot)
    assert budgets.state("sales").spent_usd == pytest.approx(2.0)
    assert budgets.state("research").spent_usd == 0.0
    budgets.restore({"sales": 5.0, "marketing": 1.0})  # above current: unchanged; unknown: ignored
    assert budgets.state("sales").spent_usd == pytest.approx(2.0)
