"""atalaia_ops.explain_metrics: histogram arithmetic, the service split and the step onset, without
servers (the same code runs against the real Prometheus in tests/e2e/test_explain.py)."""

from __future__ import annotations

import math

import pytest

from atalaia_ops import explain_metrics as em
from atalaia_ops.explain import _step_onset

# 100 tasks: 50 by 1 s, 80 by 2.5 s, 95 by 5 s, 100 by 10 s.
H = em.Histogram(((1.0, 50.0), (2.5, 80.0), (5.0, 95.0), (10.0, 100.0), (math.inf, 100.0)))


def test_quantiles_interpolate_inside_a_bucket_like_histogram_quantile() -> None:
    assert H.count == 100
    assert H.quantile(0.5) == pytest.approx(1.0)
    assert H.quantile(0.65) == pytest.approx(1.75)  # half-way through (1, 2.5]
    assert H.quantile(0.95) == pytest.approx(5.0)
    assert H.quantile(1.0) == pytest.approx(10.0)
    assert em.Histogram(()).quantile(0.5) is None


def test_counts_above_a_threshold() -> None:
    assert H.above(5.0) == pytest.approx(5.0)
    assert H.above(7.5) == pytest.approx(2.5)  # half of the 5 in (5, 10]
    assert H.above(0.5) == pytest.approx(75.0)  # half of the first 50 are above 0.5
    assert H.above(20.0) == 0.0
    assert H.bound_at_or_above(3.0) == 5.0 and H.bound_at_or_above(11.0) is None


def test_bucket_selector_matches_both_le_spellings() -> None:
    # PromQL strings take Go's escapes: the regex's backslashes are doubled.
    assert em.bucket_selector(10.0) == 'le=~"10(\\\\.0)?"'
    assert em.bucket_selector(2.5) == 'le=~"2\\\\.5(\\\\.0)?"'


def test_agent_names_are_quoted_for_promql() -> None:
    assert em.selector('a"b\\c') == 'gen_ai_agent_name="a\\"b\\\\c"'


def test_a_tool_waiting_on_a_slower_service_moves_its_time_there() -> None:
    window = {"tool:helix_lookup": 4.0, "llm:m": 1.0}
    base = {"tool:helix_lookup": 0.6, "llm:m": 1.0}
    callers = em.split_services(
        window,
        base,
        ({"helix_lookup": 1.0}, {"helix_lookup": 1.0}),  # one call per task
        ({"helix_lookup": 4.0}, {"helix_lookup": 0.6}),  # s per call
        (
            {
                "helix\0/lookup": em.ServerTime(0.5, 3.8),
                "helix\0/tasks": em.ServerTime(0.2, 9.0),  # its own tasks: not what waited
                "mock-llm\0": em.ServerTime(2.0, 1.0),
            },
            {
                "helix\0/lookup": em.ServerTime(0.5, 0.5),
                "helix\0/tasks": em.ServerTime(0.2, 9.0),
                "mock-llm\0": em.ServerTime(2.0, 1.0),
            },
        ),
        {"helix_lookup": 0.5},
        own={"sigma"},
    )
    assert callers == {"helix": {"helix_lookup"}}
    assert window["service:helix"] == pytest.approx(3.8)
    assert window["tool:helix_lookup"] == pytest.approx(0.2)
    assert base["service:helix"] == pytest.approx(0.5)
    assert base["tool:helix_lookup"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("server_window", "server_rate", "why"),
    [
        (0.9, 0.5, "the service barely slowed"),
        (3.8, 0.1, "the service served far fewer calls than the tool made"),
    ],
)
def test_no_move_when_the_numbers_do_not_fit(
    server_window: float, server_rate: float, why: str
) -> None:
    window, base = {"tool:t": 4.0}, {"tool:t": 0.6}
    callers = em.split_services(
        window,
        base,
        ({"t": 1.0}, {"t": 1.0}),
        ({"t": 4.0}, {"t": 0.6}),
        (
            {"other\0/x": em.ServerTime(server_rate, server_window)},
            {"other\0/x": em.ServerTime(1, 0.5)},
        ),
        {"t": 0.5},
        own=(),
    )
    assert callers == {}, why
    assert window == {"tool:t": 4.0}


def test_the_agents_own_service_is_never_another_service() -> None:
    window, base = {"tool:t": 4.0}, {"tool:t": 0.6}
    callers = em.split_services(
        window,
        base,
        ({"t": 1.0}, {"t": 1.0}),
        ({"t": 4.0}, {"t": 0.6}),
        ({"sigma\0/x": em.ServerTime(1, 3.8)}, {"sigma\0/x": em.ServerTime(1, 0.5)}),
        {"t": 0.5},
        own={"sigma"},
    )
    assert callers == {}


def test_overhead_is_what_no_call_accounts_for() -> None:
    categories = {"llm:m": 1.0, "tool:t": 0.5}
    em.overhead(categories, 2.0)
    assert categories["agent overhead"] == pytest.approx(0.5)
    em.overhead(calls := {"llm:m": 3.0}, 2.0)  # parallel calls: more than the task
    assert "agent overhead" not in calls


def test_onset_is_a_sustained_run_of_bad_minutes() -> None:
    steps = [em.Step(t, 10, 0) for t in range(0, 300, 15)]
    steps += [em.Step(300, 10, 5)]  # one bad minute, then fine again: a blip
    steps += [em.Step(t, 10, 0) for t in range(315, 600, 15)]
    steps += [em.Step(t, 10, 6) for t in range(600, 900, 15)]
    assert _step_onset(steps) == 600 - 60
    assert _step_onset([em.Step(t, 10, 0) for t in range(0, 300, 15)]) is None
