"""`atalaia explain` without servers: the signal comparison, the candidate signals' names and
links, the Explore links, the arguments and the error for an unreachable backend.
tests/e2e/test_explain.py runs it on the real stack after injected faults."""

from __future__ import annotations

import json
import socket
from urllib.parse import parse_qs, urlparse

import pytest

from atalaia_ops import explain_signals as sig
from atalaia_ops.cli import build_parser, main
from atalaia_ops.dashboards.contract import load as load_contract
from atalaia_ops.dashboards.queries import logql_labels, promql_names
from atalaia_ops.explore_links import explore

T0 = 1_800_000_000.0


def series(values: list[float], step: float = 15.0) -> list[tuple[float, float]]:
    return [(T0 + i * step, v) for i, v in enumerate(values)]


def test_level_finds_a_rise_and_when_it_began() -> None:
    # 20 baseline points around 0.05 cores, then a hog: 1 core from point 24 on.
    values = [0.05, 0.04, 0.06, 0.05] * 5 + [0.05] * 4 + [1.0] * 8
    points = series(values)
    level = sig.level(points, (T0, T0 + 19 * 15), (T0 + 20 * 15, T0 + 31 * 15), 0.1, T0 + 300)
    assert level is not None
    assert level.baseline == pytest.approx(0.05)
    assert level.onset == T0 + 24 * 15
    assert level.anomaly == 1.0  # far more than two doublings
    assert level.peak == 1.0


def test_level_ignores_noise_and_single_blips() -> None:
    values = [0.05, 0.04, 0.06, 0.05] * 5 + [0.06, 0.9, 0.05, 0.04, 0.06, 0.05]
    level = sig.level(series(values), (T0, T0 + 19 * 15), (T0 + 300, T0 + 25 * 15), 0.1, T0 + 300)
    assert level is not None
    assert level.onset is None  # one point above is a blip, not an onset
    assert level.anomaly == 0.0  # the mean over the period stays under the threshold


def test_level_needs_points_on_both_sides() -> None:
    assert sig.level(series([1.0, 2.0]), (T0 - 100, T0 - 50), (T0, T0 + 15), 0.1, T0) is None


def test_an_error_rate_that_did_not_exist_in_the_baseline_was_zero_there() -> None:
    """rate(x{error_type!=""}) has no series until the first error: absent means 0."""
    errors = series([0.6, 0.8, 0.85, 0.8])  # only during the incident
    level = sig.level(errors, (T0 - 600, T0 - 1), (T0, T0 + 45), 0.05, T0 - 120, True)
    assert level is not None and level.baseline == 0.0 and level.onset == T0
    assert level.anomaly == 1.0
    assert sig.level(errors, (T0 - 600, T0 - 1), (T0, T0 + 45), 0.05, T0 - 120) is None


def test_signals_use_catalogued_names_only() -> None:
    contract = load_contract()
    for signal in sig.SIGNALS:
        query = signal.query.replace("{agent}", "Sigma")
        if signal.backend == "loki":
            assert logql_labels(query) - contract.labels - {"detected_level"} == set()
            continue
        metrics, labels = promql_names(query)
        assert metrics <= contract.metrics, (signal.kind, metrics - contract.metrics)
        assert labels <= contract.labels, (signal.kind, labels - contract.labels)
        assert set(signal.key) <= labels | {"service_name"}


def test_signals_explain_only_where_they_act() -> None:
    by_kind = {s.kind: s for s in sig.SIGNALS}
    helix_cpu = by_kind["cpu"].explains(
        {"service_name": "helix", "gen_ai_agent_name": "Helix"}, "Sigma"
    )
    assert helix_cpu("service:helix") and helix_cpu("timeouts:service:helix")
    assert not helix_cpu("tool:helix_lookup")  # Sigma's own tool time is Sigma's
    own_cpu = by_kind["cpu"].explains(
        {"service_name": "sigma", "gen_ai_agent_name": "Sigma"}, "Sigma"
    )
    assert own_cpu("tool:sql_query") and not own_cpu("llm:claude-sonnet-4-5")
    latency = by_kind["llm_latency"].explains({"gen_ai_request_model": "gpt-4o"}, "Sigma")
    assert latency("llm:gpt-4o") and latency("planning:gpt-4o") and latency("timeouts:llm:gpt-4o")
    assert not latency("llm:gpt-4o-mini")
    errors = by_kind["llm_errors"].explains({"gen_ai_request_model": "gpt-4o"}, "Sigma")
    assert errors("retries:llm:gpt-4o") and not errors("llm:gpt-4o")
    assert by_kind["queue"].explains({}, "Sigma")("queue wait")


def test_explore_link_opens_the_query_on_the_provisioned_datasource() -> None:
    url = explore("http://grafana:3000/", "prometheus", 'up{job="x"}', T0, T0 + 60)
    parsed = urlparse(url)
    assert (parsed.netloc, parsed.path) == ("grafana:3000", "/explore")
    panes = json.loads(parse_qs(parsed.query)["panes"][0])
    query = panes["a"]["queries"][0]
    assert query["expr"] == 'up{job="x"}' and query["datasource"]["uid"] == "prometheus"
    assert panes["a"]["range"] == {"from": str(int(T0 * 1000)), "to": str(int((T0 + 60) * 1000))}
    trace = json.loads(
        parse_qs(urlparse(explore("g", "tempo", "ab" * 16, T0, T0)).query)["panes"][0]
    )
    assert trace["a"]["queries"][0]["query"] == "ab" * 16


def test_defaults_match_make_up() -> None:
    args = build_parser().parse_args(["explain", "--agent", "Sigma"])
    assert (args.prometheus_url, args.loki_url, args.tempo_url) == (
        "http://127.0.0.1:9090",
        "http://127.0.0.1:3100",
        "http://127.0.0.1:3200",
    )
    assert args.grafana_url == "http://localhost:3000"
    assert args.from_ is None and args.to is None and not args.json


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain"], "--agent is required"),
        (["explain", "--agent", "S", "--trace", "ab", "--to", "now"], "exclusive"),
        (["explain", "--agent", "S", "--baseline-from", "now-1h"], "go together"),
        (["explain", "--agent", "S", "--from", "now", "--to", "now-1h"], "--from must be before"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_unreachable_prometheus_exits_1_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Prometheus is the one backend explain cannot do without."""
    url = closed_port()
    argv = ["explain", "--agent", "Sigma", "--prometheus-url", url, "--tempo-url", closed_port()]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"prometheus at {url}" in err and "unreachable" in err


def test_one_trace_needs_tempo(capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port()
    assert main(["explain", "--trace", "ab" * 16, "--tempo-url", url]) == 1
    err = capsys.readouterr().err
    assert f"tempo at {url}" in err and "unreachable" in err


def test_every_signal_has_a_place_in_the_tie_order() -> None:
    from atalaia_ops.explain import TIE_ORDER

    assert sorted(TIE_ORDER) == sorted(s.kind for s in sig.SIGNALS)


def test_the_longest_quiet_run_is_where_an_agent_served_nothing() -> None:
    from atalaia_ops.explain import Period, _longest_run

    # Steps every 15 s; quiet (no task ended) at 30..75 and at 150..240: the second is longer.
    # Each step counts the minute before it, so the run starts a minute before its first step.
    quiet = [30.0, 45.0, 60.0, 75.0, 150.0, 165.0, 180.0, 195.0, 210.0, 225.0, 240.0]
    assert _longest_run(quiet, 15.0) == Period(90.0, 240.0)
    assert _longest_run([], 15.0) is None
