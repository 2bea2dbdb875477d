"""`atalaia explain` on the native stack after the session's fleet run (tests/e2e/conftest.py).

The fleet ran a quiet start, then cpu_hog on Helix, then slow_llm on Sigma's model, each with its
switch-on time recorded. explain is run as the CLI, with --json, over each phase and compared with
what was injected, which it does not know:

(a) cpu_hog: for Sigma (whose lookups wait for Helix's workbench) the top cause is Helix's CPU,
    and the time it began is within one minute of the injection; the same for the slowest of
    those tasks alone (--trace);
(b) slow_llm on claude-sonnet-4-5: for Sigma the top cause is that model's latency;
(c) the second half of the quiet start against its first half: no symptom, no significant cause.

Tempo and Loki exist only as container images here: explain reads the traces and error logs the
real collector sent them, served by tests/e2e/stand_in.py the way their query APIs answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from atalaia.backends import Tempo
from atalaia.cli import main
from tests.e2e.backends import Store
from tests.e2e.conftest import FleetRun
from tests.e2e.stand_in import serving

pytestmark = pytest.mark.usefixtures("native_stack")


@pytest.fixture(scope="module")
def stand_in(store: Store) -> Iterator[str]:
    """Tempo's and Loki's query APIs over what the collector sent them."""
    with serving(store) as url:
        yield url


def explain(
    capsys: pytest.CaptureFixture[str],
    stand_in: str,
    agent: str | None,
    window: tuple[float, float] | str,
    baseline: tuple[float, float],
) -> dict[str, Any]:
    argv = ["explain", "--json", "--tempo-url", stand_in, "--loki-url", stand_in]
    argv += ["--agent", agent] if agent else []
    if isinstance(window, str):
        argv += ["--trace", window]
    else:
        argv += ["--from", f"{window[0]:.3f}", "--to", f"{window[1]:.3f}"]
    argv += ["--baseline-from", f"{baseline[0]:.3f}", "--baseline-to", f"{baseline[1]:.3f}"]
    capsys.readouterr()
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, f"atalaia {' '.join(argv)} exited {status}: {err}"
    result: dict[str, Any] = json.loads(out)
    # Every candidate query ran (a query the backend rejects would be "not checked").
    assert not [u for u in result["uncertainty"] if "not checked" in u], result["uncertainty"]
    print(json.dumps({k: result[k] for k in ("summary", "uncertainty")}, indent=1))
    for cause in result["causes"]:
        print(f"{cause['score']:.2f} {cause['title']}: {cause['evidence'][0]}")
    return result


def quiet(fleet: FleetRun) -> tuple[float, float]:
    return fleet.phases["baseline"][0], fleet.phases["calm"][1]


def test_cpu_hog_on_helix_explains_sigma(
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str], stand_in: str
) -> None:
    injected, off = fleet_run.phases["cpu_hog"]
    result = explain(capsys, stand_in, "Sigma", (injected, off), quiet(fleet_run))
    assert result["symptom"], result["summary"]
    top = result["causes"][0]
    assert (top["kind"], top["labels"].get("gen_ai_agent_name")) == ("cpu", "Helix"), top
    assert top["confidence"] == "likely"
    assert top["onset"] is not None and abs(top["onset"] - injected) <= 60, (
        f"Helix's CPU rose at {top['onset']}, the hog began at {injected}"
    )
    # Where Sigma's time went: inside Helix, reached through the helix_lookup tool.
    assert result["breakdown"][0]["category"] == "service:helix", result["breakdown"][:3]
    assert "explore?" in top["explore_url"] and "process_cpu_time" in top["query"]
    assert result["examples"] and len(result["examples"][0]["trace_id"]) == 32
    # The Explore link's TraceQL for the slow tasks is valid and finds them.
    with Tempo(stand_in) as tempo:
        slow = tempo.search(result["slow_tasks_query"], injected, off, limit=200)
    assert {t["traceID"].zfill(32) for t in slow} & {x["trace_id"] for x in result["examples"]}

    # One task by its trace id: the agent comes from the trace, the answer is the same.
    slowest = result["examples"][0]["trace_id"]
    one = explain(capsys, stand_in, None, slowest, quiet(fleet_run))
    assert (one["agent"], one["trace_id"], one["symptom"]) == ("Sigma", slowest, True)
    top = one["causes"][0]
    assert (top["kind"], top["labels"].get("gen_ai_agent_name")) == ("cpu", "Helix"), top


def test_slow_model_explains_sigma(
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str], stand_in: str
) -> None:
    injected, off = fleet_run.phases["slow_llm"]
    result = explain(capsys, stand_in, "Sigma", (injected, off), quiet(fleet_run))
    assert result["symptom"], result["summary"]
    top = result["causes"][0]
    assert top["kind"] == "llm_latency", top
    assert top["labels"]["gen_ai_request_model"] == "claude-sonnet-4-5"
    # The mean over the incident mixes calls begun before the fault: well above, not 30x.
    assert top["value"] > 1.5 * top["baseline"], top
    assert not any(
        c["kind"] == "llm_latency" and c["labels"]["gen_ai_request_model"] != "claude-sonnet-4-5"
        for c in result["causes"]
    ), "another model's latency was blamed"


@pytest.mark.parametrize("agent", ["Sigma", "Helix"])
def test_no_fault_no_significant_cause(
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str], stand_in: str, agent: str
) -> None:
    result = explain(
        capsys, stand_in, agent, fleet_run.phases["calm"], fleet_run.phases["baseline"]
    )
    assert result["window_tasks"]["count"] >= 3, "too few tasks to say anything"
    assert not result["symptom"], result["summary"]
    assert result["causes"] == []
    assert "no significant cause" in result["summary"]
