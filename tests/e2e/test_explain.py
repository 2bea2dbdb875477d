"""`atalaia explain` on the native stack after the session's fleet run (tests/e2e/conftest.py).

The fleet ran a quiet start, then cpu_hog on Helix, then slow_llm on Sigma's model, then a tour
of faults at once (slow_llm, llm_errors, retry_loop, agent_crash and crm_down), each with its
switch-on time recorded. explain is run as the CLI, with --json, over each phase and compared with
what was injected, which it does not know:

(a) cpu_hog: for Sigma (whose lookups wait for Helix's workbench) the top cause is Helix's CPU,
    the time it began is within one minute of the injection, and most of Sigma's extra time was
    inside Helix (its helix_lookup tool waiting on Helix's server spans);
(b) slow_llm on claude-sonnet-4-5: for Sigma the top cause is that model's latency;
(c) the second half of the quiet start against its first half: no symptom, no significant cause;
(d) the tour, for Nova: its CRM tool failing is named even if its tasks look fine (a silent
    failure), and its crash, healed by the supervisor within seconds, is named as an event.

All of that from Prometheus alone: Tempo and Loki are given as addresses where nothing answers
(they are stopped), and explain says so instead of failing. Examples and one trace (`--trace`)
need Tempo: they are read from tests/e2e/stand_in.py, which answers Tempo's API from the traces
the real collector sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from atalaia_ops.backends import Tempo
from atalaia_ops.cli import main
from tests.e2e.backends import Store
from tests.e2e.conftest import FleetRun
from tests.e2e.stand_in import serving

pytestmark = pytest.mark.usefixtures("native_stack")


def stopped() -> str:
    """The address of a backend that is not running."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def stand_in(store: Store) -> Iterator[str]:
    """Tempo's and Loki's query APIs over what the collector sent them."""
    with serving(store) as url:
        yield url


def explain(
    capsys: pytest.CaptureFixture[str],
    agent: str | None,
    window: tuple[float, float] | str,
    baseline: tuple[float, float],
    tempo: str | None = None,
) -> dict[str, Any]:
    backends = tempo or stopped()
    argv = ["explain", "--json", "--tempo-url", backends, "--loki-url", tempo or stopped()]
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
    # Every candidate query ran (a query Prometheus rejects would be "not checked").
    assert not [u for u in result["uncertainty"] if "not checked" in u], result["uncertainty"]
    print(json.dumps({k: result[k] for k in ("summary", "uncertainty", "events")}, indent=1))
    for cause in result["causes"]:
        print(f"{cause['score']:.2f} {cause['title']}: {cause['evidence'][0]}")
    return result


def quiet(fleet: FleetRun) -> tuple[float, float]:
    return fleet.phases["baseline"][0], fleet.phases["calm"][1]


def test_cpu_hog_on_helix_explains_sigma_from_prometheus_alone(
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str]
) -> None:
    injected, off = fleet_run.phases["cpu_hog"]
    result = explain(capsys, "Sigma", (injected, off), quiet(fleet_run))
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
    # Tempo was not there: no examples, and explain said why.
    assert result["examples"] == []
    assert any("Tempo" in u and "unreachable" in u for u in result["uncertainty"])


def test_cpu_hog_examples_and_one_trace_from_tempo(
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str], stand_in: str
) -> None:
    injected, off = fleet_run.phases["cpu_hog"]
    result = explain(capsys, "Sigma", (injected, off), quiet(fleet_run), tempo=stand_in)
    assert result["examples"] and all(len(x["trace_id"]) == 32 for x in result["examples"])
    # The slowest of them may have failed for another reason that overlapped (an LLM call that
    # timed out); the typical one waited inside Helix.
    inside = [x for x in result["examples"] if x["top"] == "inside helix"]
    assert inside, result["examples"]
    # The Explore link's TraceQL for the slow tasks is valid and finds them.
    with Tempo(stand_in) as tempo:
        slow = tempo.search(result["slow_tasks_query"], injected, off + 120, limit=200)
    assert {t["traceID"].zfill(32) for t in slow} & {x["trace_id"] for x in result["examples"]}

    # One task by its trace id: the agent comes from the trace, the answer is the same.
    slow = inside[0]["trace_id"]
    one = explain(capsys, None, slow, quiet(fleet_run), tempo=stand_in)
    assert (one["agent"], one["trace_id"], one["symptom"]) == ("Sigma", slow, True)
    top = one["causes"][0]
    assert (top["kind"], top["labels"].get("gen_ai_agent_name")) == ("cpu", "Helix"), top
    assert one["breakdown"][0]["category"] == "service:helix", one["breakdown"][:3]


def test_slow_model_explains_sigma(fleet_run: FleetRun, capsys: pytest.CaptureFixture[str]) -> None:
    injected, off = fleet_run.phases["slow_llm"]
    result = explain(capsys, "Sigma", (injected, off), quiet(fleet_run))
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
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str], agent: str
) -> None:
    result = explain(capsys, agent, fleet_run.phases["calm"], fleet_run.phases["baseline"])
    assert result["window_tasks"]["count"] >= 3, "too few tasks to say anything"
    assert not result["symptom"], result["summary"]
    assert result["causes"] == []
    assert result["silent_failures"] == [] and result["events"] == []
    assert "no significant cause" in result["summary"]


def test_the_tour_names_novas_silent_crm_failure_and_its_crash(
    fleet_run: FleetRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """crm_down: every lead Nova tries to write is lost while its tasks may still look fine;
    agent_crash: Nova's process dies and the supervisor restarts it within seconds."""
    on, off = fleet_run.phases["tour"]
    result = explain(capsys, "Nova", (on, off), quiet(fleet_run))
    silent = {(c["kind"], c["labels"].get("gen_ai_tool_name")) for c in result["silent_failures"]}
    assert ("tool_errors", "crm_create_lead") in silent, result["silent_failures"]
    assert any("restart" in e for e in result["events"]), result["events"]
    assert "crm_create_lead" in result["summary"] or result["symptom"], result["summary"]
    # A coincidence in time is never a likely cause: every cause acts where Nova's time or
    # failures were.
    assert all(c["relevance"] > 0 for c in result["causes"]), result["causes"]
