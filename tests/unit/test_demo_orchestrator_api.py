"""The orchestrator's HTTP API over real HTTP: webhook validation, fault switches (checked on the
real mock LLM they reconfigure), the Prometheus exposition and the JSON summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo_agents import fleet_config
from demo_agents.http_server import free_port, serve_in_thread
from demo_agents.mock_llm import create_app as create_mock_llm
from demo_agents.orchestrator.app import create_app
from demo_agents.orchestrator.service import Orchestrator, Settings


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with serve_in_thread(create_mock_llm(seed=1)) as url:
        yield url


@pytest.fixture(scope="module")
def api(llm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state: Path = tmp_path_factory.mktemp("state")
    # Agents at ports where nothing listens: a fleet running on this machine is never touched.
    nowhere = {a.name: f"http://127.0.0.1:{free_port()}" for a in fleet_config.AGENTS}
    settings = Settings(
        llm_url=f"{llm_url}/v1",
        state_dir=state,
        spawn_agents=False,
        generate=False,
        agent_urls=nowhere,
    )
    with serve_in_thread(create_app(Orchestrator(settings))) as url:
        yield url


@pytest.fixture(autouse=True)
def no_faults(api: str) -> Iterator[None]:
    yield
    httpx.delete(f"{api}/faults").raise_for_status()


def metric(api: str, series: str) -> float:
    for line in httpx.get(f"{api}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not exposed")


def test_good_webhooks_move_the_metrics(api: str) -> None:
    before = metric(api, "orchestrator_task_splits_total")
    response = httpx.post(f"{api}/events/task_split", json={"chunks": 3})
    assert response.status_code == 202, response.text
    assert metric(api, "orchestrator_task_splits_total") == before + 1
    assert metric(api, "orchestrator_task_chunks_total") >= 3

    merged = httpx.post(
        f"{api}/events/merge_deduplication", json={"chunks_combined": 3, "duplicates_removed": 4}
    )
    assert merged.status_code == 202
    assert metric(api, "orchestrator_merge_duplicates_removed_total") >= 4

    timeout = httpx.post(f"{api}/events/timeout", json={"agent": "sigma", "reason": "chunk"})
    assert timeout.status_code == 202
    assert timeout.json()["event"]["agent"] == "Sigma"
    series = 'orchestrator_timeouts_total{gen_ai_agent_name="Sigma",reason="chunk"}'
    assert metric(api, series) >= 1


def test_llm_cost_webhook_charges_the_department_budget(api: str) -> None:
    response = httpx.post(f"{api}/events/llm_cost", json={"department": "sales", "cost_usd": 5})
    assert response.status_code == 202, response.text
    budgets = httpx.get(f"{api}/metrics/summary").json()["budgets"]
    assert budgets["sales"]["spent_usd"] >= 5
    assert budgets["sales"]["remaining_ratio"] <= 0.75
    ratio = metric(api, 'orchestrator_budget_remaining_ratio{atalaia_department="sales"}')
    assert ratio == pytest.approx(budgets["sales"]["remaining_ratio"], abs=1e-3)


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("task_split", {"chunks": "3"}, "chunks"),  # a string is not an int
        ("task_split", {"chunks": 1}, "chunks"),  # a split needs two chunks
        ("task_split", {}, "chunks"),
        ("timeout", {"agent": "Helix", "reason": "lunch"}, "reason"),
        ("chunk_execution", {"agent": "Helix", "duration_s": -1}, "duration_s"),
        ("merge_deduplication", {"chunks_combined": 2, "duplicates": 1}, "duplicates"),
        ("llm_cost", {"department": "marketing", "cost_usd": 1}, "department"),
    ],
)
def test_bad_webhooks_are_422_naming_the_field(
    api: str, kind: str, body: dict[str, object], field: str
) -> None:
    before = httpx.get(f"{api}/metrics").text
    response = httpx.post(f"{api}/events/{kind}", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text
    assert "orchestrator_task_splits_total" in before


def test_malformed_json_unknown_kind_and_unknown_agent(api: str) -> None:
    broken = httpx.post(
        f"{api}/events/task_split",
        content=b"{chunks: 3",
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422 and "JSON" in broken.text
    not_object = httpx.post(f"{api}/events/task_split", json=[1, 2])
    assert not_object.status_code == 422 and "object" in not_object.text
    unknown = httpx.post(f"{api}/events/teleport", json={})
    assert unknown.status_code == 404 and "task_split" in unknown.text
    stranger = httpx.post(f"{api}/events/timeout", json={"agent": "Zed", "reason": "task"})
    assert stranger.status_code == 422 and "Zed" in stranger.text and "Helix" in stranger.text


def test_llm_fault_switches_reconfigure_the_mock_llm(api: str, llm_url: str) -> None:
    slow = httpx.post(f"{api}/faults/slow_llm", params={"agent": "Sigma"})
    assert slow.status_code == 200, slow.text
    assert httpx.get(f"{llm_url}/admin/faults").json()["slow_models"] == {"claude-sonnet-4-5": 30.0}
    limited = httpx.post(f"{api}/faults/rate_limit")
    assert limited.status_code == 200
    llm_faults = httpx.get(f"{llm_url}/admin/faults").json()
    assert llm_faults["rate_limit_rate"] > 0 and llm_faults["models"] == []
    active = {f["name"] for f in httpx.get(f"{api}/faults").json()["active"]}
    assert active == {"slow_llm", "rate_limit"}

    assert httpx.delete(f"{api}/faults/slow_llm").json() == {"cleared": ["slow_llm"]}
    assert httpx.get(f"{llm_url}/admin/faults").json()["slow_models"] == {}
    assert httpx.delete(f"{api}/faults").json() == {"cleared": ["rate_limit"]}
    assert httpx.get(f"{llm_url}/admin/faults").json()["rate_limit_rate"] == 0


def test_task_faults_reach_only_the_chosen_agent(api: str) -> None:
    assert httpx.post(f"{api}/faults/retry_loop", params={"agent": "Helix"}).status_code == 200
    summary = httpx.get(f"{api}/metrics/summary").json()
    assert summary["faults"][0]["name"] == "retry_loop"
    assert summary["faults"][0]["agent"] == "Helix"


def test_bad_fault_requests(api: str) -> None:
    unknown = httpx.post(f"{api}/faults/meteor")
    assert unknown.status_code == 404 and "slow_llm" in unknown.text
    stranger = httpx.post(f"{api}/faults/cpu_hog", params={"agent": "Zed"})
    assert stranger.status_code == 422 and "Zed" in stranger.text
    # The agent process is not running here: the switch reports it instead of pretending.
    unreachable = httpx.post(f"{api}/faults/agent_crash", params={"agent": "Nova"})
    assert unreachable.status_code == 502 and "agent_crash" in unreachable.text
    assert httpx.get(f"{api}/faults").json()["active"] == []


def test_load_knob_validation(api: str) -> None:
    assert httpx.put(f"{api}/load", json={"tasks_per_min": 12}).json() == {"tasks_per_min": 12}
    bad = httpx.put(f"{api}/load", json={"tasks_per_min": -3})
    assert bad.status_code == 422 and "tasks_per_min" in bad.text


def test_every_orchestrator_series_is_exposed(api: str) -> None:
    text = httpx.get(f"{api}/metrics").text
    for series in (
        "orchestrator_tasks_total",
        "orchestrator_queue_depth",
        "orchestrator_budget_limit_usd",
        "orchestrator_agent_up",
        "orchestrator_agent_on_shift",
        "orchestrator_agent_restarts_total",
    ):
        assert f"\n{series}" in text, series


def test_clearing_budget_burn_gives_back_what_it_spent(api: str) -> None:
    def spent() -> float:
        return float(httpx.get(f"{api}/metrics/summary").json()["budgets"]["research"]["spent_usd"])

    before = spent()
    assert httpx.post(f"{api}/faults/budget_burn").status_code == 200
    burn = httpx.post(f"{api}/events/llm_cost", json={"department": "research", "cost_usd": 9})
    assert burn.status_code == 202
    assert spent() == pytest.approx(before + 9)
    assert httpx.delete(f"{api}/faults").json() == {"cleared": ["budget_burn"]}
    assert spent() == pytest.approx(before)
    gauge = metric(api, 'orchestrator_budget_spent_usd{atalaia_department="research"}')
    assert gauge == pytest.approx(before)


def test_agent_hang_marks_the_agent_until_cleared(api: str) -> None:
    state_dir = Path(httpx.get(f"{api}/metrics/summary").json()["state_dir"])
    marker = state_dir / "hang-atlas"
    assert httpx.post(f"{api}/faults/agent_hang").json()["active"]["agent"] == "Atlas"
    assert marker.exists()
    assert httpx.delete(f"{api}/faults/agent_hang").json() == {"cleared": ["agent_hang"]}
    assert not marker.exists()


def test_metrics_speak_openmetrics_when_asked(api: str) -> None:
    plain = httpx.get(f"{api}/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    open_metrics = httpx.get(
        f"{api}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")
    assert "orchestrator_tasks_total" in open_metrics.text
