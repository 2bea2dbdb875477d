"""Dashboard JSON sanity and the Fleet TV's 1080p fit.

Grafana's grid: 24 columns; a panel `h` units high is h x 30 px plus 8 px between units
(GRID_CELL_HEIGHT = 30, GRID_CELL_VMARGIN = 8 in Grafana's frontend), so H units of stacked
panels take H x 38 - 8 px. In kiosk mode (`?kiosk`, what a TV runs) Grafana draws no navigation
bar, variables or time picker; the dashboard body keeps its padding of 16 px at the top and the
bottom. So on a 1080 px screen: 26 x 38 - 8 + 2 x 16 = 1012 px, leaving 68 px for browser chrome
(a TV browser in full screen has none). 27 units (1050 px) would also fit a chrome-less screen;
26 keeps a margin.
"""

from __future__ import annotations

import itertools

import pytest

from atalaia_ops.dashboards import as_json, dashboards
from atalaia_ops.dashboards.fleet_tv import TV_ROWS

CELL_PX, VMARGIN_PX, PAGE_PADDING_PX, SCREEN_PX = 30, 8, 16, 1080
BOARDS = as_json()


def height_px(units: int) -> int:
    return units * (CELL_PX + VMARGIN_PX) - VMARGIN_PX + 2 * PAGE_PADDING_PX


def rects(board: dict) -> list[tuple[str, int, int, int, int]]:
    return [
        (p["title"], p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"])
        for p in board["panels"]
    ]


def test_fleet_tv_fits_1080p_without_scrolling() -> None:
    tv = BOARDS["fleet-tv.json"]
    bottom = max(y + h for _, _, y, _, h in rects(tv))
    assert bottom == TV_ROWS
    assert height_px(bottom) <= SCREEN_PX, f"{bottom} units = {height_px(bottom)} px > 1080"
    assert not [p for p in tv["panels"] if p["type"] == "row"], "row headers waste TV space"
    assert tv["refresh"] == "30s"
    stats = [p for p in tv["panels"] if p["type"] == "stat"]
    assert len(stats) >= 8
    assert all(p["gridPos"]["h"] >= 5 for p in stats), "TV stats must be large"


def test_the_pixel_arithmetic() -> None:
    assert height_px(26) == 1012
    assert height_px(28) > SCREEN_PX  # 28 units would scroll


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_are_on_the_grid_without_overlap(name: str) -> None:
    board = BOARDS[name]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for title, x, y, w, h in rects(board):
        assert x >= 0 and x + w <= 24 and w > 0 and h > 0 and y >= 0, title
    for a, b in itertools.combinations(rects(board), 2):
        overlap_x = a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
        overlap_y = a[2] < b[2] + b[4] and b[2] < a[2] + a[4]
        assert not (overlap_x and overlap_y), f"{a[0]!r} overlaps {b[0]!r}"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_is_described_and_has_units(name: str) -> None:
    board = BOARDS[name]
    assert board["uid"].startswith("atalaia-") and "atalaia" in board["tags"]
    assert board["description"] and board["editable"] is False
    for p in board["panels"]:
        if p["type"] == "row":
            continue
        assert p["description"].strip(), f"{p['title']}: no description"
        assert p["targets"], f"{p['title']}: no query"
        defaults = p["fieldConfig"]["defaults"]
        assert defaults["unit"], f"{p['title']}: no unit"
        assert defaults["thresholds"]["steps"][0]["value"] is None


def test_uids_and_titles_are_unique_and_stable() -> None:
    boards = dashboards()
    assert sorted(d.uid for d in boards) == [
        "atalaia-agent",
        "atalaia-business",
        "atalaia-executive",
        "atalaia-fallback",
        "atalaia-fleet-tv",
        "atalaia-llm-cost",
        "atalaia-sla-shifts",
        "atalaia-slos",
        "atalaia-stack",
    ]
    assert len({d.title for d in boards}) == len(boards)


def test_panels_link_onward() -> None:
    """Latency -> exemplar traces, agent rows -> drill-down, error rows -> trace."""
    tv = {p["title"]: p for p in BOARDS["fleet-tv.json"]["panels"]}
    assert any(t["exemplar"] for t in tv["Task latency p95 / p99"]["targets"])
    link = tv["Idle time by agent"]["fieldConfig"]["defaults"]["links"][0]["url"]
    assert link.startswith("/d/atalaia-agent?var-agent=${__field.labels.gen_ai_agent_name}")
    agent = {p["title"]: p for p in BOARDS["agent-drilldown.json"]["panels"]}
    props = agent["Error lines"]["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]
    assert props["url"].startswith("/explore?") and "${__value.raw}" in props["url"]
    assert "tempo" in props["url"]
    assert agent["Logs"]["options"]["enableLogDetails"] is True  # derived field -> Tempo
    assert agent["Slowest traces"]["targets"][0]["queryType"] == "traceql"


def test_executive_has_rate_and_minutes_variables() -> None:
    variables = {v["name"]: v for v in BOARDS["executive.json"]["templating"]["list"]}
    assert variables["human_rate"]["type"] == "textbox"
    assert variables["minutes_per_task"]["type"] == "textbox"
    exprs = " ".join(t["expr"] for p in BOARDS["executive.json"]["panels"] for t in p["targets"])
    assert "$human_rate" in exprs and "$minutes_per_task" in exprs
