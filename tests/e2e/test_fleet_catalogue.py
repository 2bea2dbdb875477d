"""The demo fleet produces the whole catalogue (docs/telemetry.md), through the real stack.

After the session's fleet run (tests/e2e/conftest.py `fleet_run`: baseline, single faults, two
heartbeats the orchestrator's API refuses, fault tour, faults cleared) against the native stack:

- every metric of the catalogue's agent, orchestrator and orchestrator API tables is in
  Prometheus under its catalogued series name (histograms as `_bucket`, `_sum` and `_count`),
  with every catalogued label, no label the catalogue does not list (cardinality), and only
  catalogued label values;
- the availability SLO's recording rules read the orchestrator API's real series: the agents'
  heartbeats are its requests, the heartbeats refused before the tour (503) its errors;
- what the collector sends to Tempo (the native log and trace store's files) has a trace of one
  task that holds the orchestrator's `orchestrate_task` span and, below it, an agent's
  `invoke_agent` span with that agent's `chat` spans;
- what it sends to Loki has log records of that task, from the orchestrator and from the agent,
  whose `traceId` / `spanId` (Loki's structured metadata `trace_id` / `span_id`) point at that
  trace and at spans in it.

The catalogue is parsed, not copied: a metric added to a table is checked from then on. Each
failure lists everything that is missing, not only the first thing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from atalaia_ops.dashboards.contract import CATALOGUE, expand_fragment
from demo_agents.fleet_config import AGENTS
from tests.e2e.backends import Prometheus, Store, attributes, body, eventually
from tests.e2e.conftest import FleetRun

# Resource attributes that Prometheus promotes to labels on every OTLP series (prometheus.yml
# `promote_resource_attributes`; the catalogue's conventions), plus the target labels.
PROMOTED = frozenset(
    {"service_name", "service_namespace", "deployment_environment_name", "gen_ai_agent_name"}
)
TARGET = frozenset({"job", "instance"})
# The library records a value outside an attribute's closed list as `other` (catalogue).
OUT_OF_SET = "other"
ORCHESTRATOR_SERVICE = "orchestrator"
# The fleet's processes (demo_agents): the orchestrator, each agent, the mock LLM. Whatever else
# reached the stack (another test's agents) is not the fleet's to answer for.
FLEET_SERVICES = "|".join(["orchestrator", "mock-llm", *(a.name.lower() for a in AGENTS)])
DEADLINE_S = 90.0  # the last export of the tour is at most one interval (15 s) old


def availability(window: str) -> str:
    """The availability SLO's error ratio over `window`, as its recording rule writes it."""
    return f'slo:sli_error:ratio_rate{window}{{slo="availability"}}'


@dataclass(frozen=True)
class CataloguedMetric:
    table: str  # "agent", "orchestrator" (scraped) or "api" (the orchestrator's API, OTLP)
    name: str  # as the table names it
    series: tuple[str, ...]  # the Prometheus series to find
    labels: frozenset[str]  # catalogued label names (data point attributes)
    values: dict[str, frozenset[str]] = field(default_factory=dict)  # closed value lists
    always: frozenset[str] = frozenset()  # labels every series must carry (not only some)


def table_rows(heading: str, text: str) -> list[list[str]]:
    """The cells of each body row of the first table under the `## heading...` line."""
    after = text.split(f"\n{heading}", 1)[1].split("\n", 1)[1]
    section = re.split(r"^## ", after, maxsplit=1, flags=re.MULTILINE)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows[2:]]


def code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def label_names(cell: str) -> list[str]:
    """`a.b` (`x`, `y`), `c` -> [a_b, c]: attribute names without their (values)."""
    return [n.replace(".", "_") for n in code_names(re.sub(r"\([^)]*\)", "", cell))]


def label_values(cell: str) -> dict[str, frozenset[str]]:
    """`a.b` (`x`, `y`) -> {a_b: {x, y}}, for each attribute that lists its values."""
    found = re.findall(r"`([\w.]+)` \(([^)]*)\)", cell)
    return {
        name.replace(".", "_"): frozenset(code_names(values))
        for name, values in found
        if code_names(values)  # "(only on failure)" is a remark, not a value list
    }


def series_names(cell: str) -> tuple[str, ...]:
    """`x_bucket` / `_sum` / `_count` -> (x_bucket, x_sum, x_count)."""
    out: list[str] = []
    for name in code_names(cell):
        out.append(expand_fragment(out[-1], name) if name.startswith("_") and out else name)
    return tuple(out)


def catalogue() -> list[CataloguedMetric]:
    text = CATALOGUE.read_text()
    metrics = []
    for row in table_rows("## Agent metrics", text):
        otel_name, _kind, _unit, attrs, prom = row
        metrics.append(
            CataloguedMetric(
                "agent",
                code_names(otel_name)[0],
                series_names(prom),
                # Identity: the agent's name, from the resource (or `agent=` on the helpers).
                frozenset(label_names(attrs)) | {"gen_ai_agent_name"},
                label_values(attrs),
                # Every agent-side series says which service (and fleet) it is from.
                always=frozenset({"service_name", "service_namespace"}),
            )
        )
    for row in table_rows("## Orchestrator API metrics", text):
        otel_name, _kind, _unit, attrs, prom = row
        metrics.append(
            CataloguedMetric(
                "api",
                code_names(otel_name)[0],
                series_names(prom),
                frozenset(label_names(attrs)),
                label_values(attrs),
                # The method on every series; the route only where a route matched.
                always=frozenset({"service_name", "service_namespace", "http_request_method"}),
            )
        )
    for row in table_rows("## Orchestrator metrics", text):
        (name,) = code_names(row[0])
        kind = row[1]
        series = (
            tuple(name + s for s in ("_bucket", "_sum", "_count"))
            if kind == "histogram"
            else (name,)
        )
        metrics.append(
            CataloguedMetric(
                "orchestrator",
                name,
                series,
                frozenset(label_names(row[2])),
                label_values(row[2]),
                always=frozenset(label_names(row[2])),  # pre-created label sets: all labels
            )
        )
    return metrics


CATALOGUED = catalogue()


def test_the_catalogue_parses_into_its_tables() -> None:
    """The parser sees what the tables hold (so the checks below are not vacuously green)."""
    tables = ("agent", "orchestrator", "api")
    by_table = {t: [m for m in CATALOGUED if m.table == t] for t in tables}
    assert len(by_table["agent"]) >= 12 and len(by_table["orchestrator"]) >= 27
    assert len(by_table["api"]) >= 4
    retries = next(m for m in CATALOGUED if m.name == "atalaia.retries")
    assert retries.series == ("atalaia_retries_total",)
    assert retries.values["atalaia_retry_reason"] == {
        "rate_limit", "llm_error", "timeout", "tool_error", "validation"
    }  # fmt: skip
    memory = next(m for m in CATALOGUED if m.name == "process.memory.usage")
    assert memory.series == ("process_memory_usage_bytes",)
    failures = next(m for m in CATALOGUED if m.name == "orchestrator_task_failures_total")
    assert failures.labels == {"reason", "atalaia_department"}
    duration = next(m for m in CATALOGUED if m.name == "http.server.request.duration")
    assert duration.series == tuple(
        f"http_server_request_duration_seconds{s}" for s in ("_bucket", "_sum", "_count")
    )
    assert {"http_route", "http_response_status_code", "error_type"} <= duration.labels
    assert "/agents/{name}/heartbeat" in duration.values["http_route"]


def problems_with(metric: CataloguedMetric, series: str, found: list[dict[str, str]]) -> list[str]:
    """What is wrong with one catalogued series, given the label sets Prometheus has for it."""
    if not found:
        return [f"{series}: no series in Prometheus"]
    problems = []
    seen = {label for labels in found for label in labels} - {"__name__"}
    expected = set(metric.labels) | ({"le"} if series.endswith("_bucket") else set())
    allowed = expected | TARGET | (PROMOTED if metric.table != "orchestrator" else set())
    if missing := sorted(expected - seen):
        problems.append(f"{series}: no series carries the catalogued label(s) {missing}")
    if extra := sorted(seen - allowed):
        problems.append(f"{series}: uncatalogued label(s) {extra}")
    for label in sorted(metric.always):
        if without := [s for s in found if label not in s]:
            problems.append(f"{series}: {len(without)} series without {label}: {without[0]}")
    for label, values in sorted(metric.values.items()):
        seen_values = {s[label] for s in found if label in s}
        if odd := sorted(seen_values - values - {OUT_OF_SET}):
            problems.append(f"{series}: {label} has uncatalogued value(s) {odd}")
    return problems


def catalogue_problems(prometheus: Prometheus, table: str, since: float) -> tuple[list[str], int]:
    problems: list[str] = []
    checked = 0
    for metric in (m for m in CATALOGUED if m.table == table):
        for series in metric.series:
            checked += 1
            # OTLP series carry their service; the orchestrator's scraped ones carry its job.
            mine = "job" if table == "orchestrator" else "service_name"
            fleet = f'{series}{{{mine}=~"{FLEET_SERVICES}"}}'
            problems += problems_with(metric, series, prometheus.series(fleet, since))
    return problems, checked


@pytest.mark.parametrize("table", ["agent", "orchestrator", "api"])
def test_every_catalogued_metric_is_in_prometheus_with_its_labels(
    table: str, prometheus: Prometheus, fleet_run: FleetRun
) -> None:
    # The fleet's own series only: what other e2e tests sent before it started (agents of other
    # instrumentation libraries, tests/e2e/test_any_emitter.py) has no sample after this.
    since = fleet_run.started + 30
    problems, checked = catalogue_problems(prometheus, table, since)
    deadline = time.monotonic() + DEADLINE_S
    while problems and time.monotonic() < deadline:
        time.sleep(5)  # OTLP metrics are exported every 15 s, scrapes every 15 s
        problems, checked = catalogue_problems(prometheus, table, since)
    assert not problems, (
        f"{len(problems)} problem(s) with the {checked} series of the catalogue's {table} table "
        f"after the fleet ran (faults: {', '.join(fleet_run.faults)}):\n  " + "\n  ".join(problems)
    )


def test_the_availability_sli_counts_the_apis_server_errors(
    prometheus: Prometheus, fleet_run: FleetRun
) -> None:
    """The SLI has a value at every moment (the agents' heartbeats keep the API busy), and the
    heartbeats refused before the tour (fleet_run, 503) are errors in it."""
    assert prometheus.query(availability("5m")), "availability has no 5m error ratio"

    def burnt() -> float:
        samples = prometheus.query(availability("1h"))
        assert samples, "availability has no 1h error ratio"
        ratio = float(samples[0]["value"][1])
        assert ratio > 0, "the refused heartbeats are not errors of the availability SLI"
        return ratio

    # The rules are evaluated every 15 s.
    ratio = eventually(burnt, timeout=DEADLINE_S, what="availability errors", interval=5)
    # Refusals are a few of the hundreds of heartbeats: the SLI's total is every request.
    assert ratio < 0.5, ratio


def test_the_orchestrator_exposes_no_created_series(
    prometheus: Prometheus, fleet_run: FleetRun
) -> None:
    """Uncatalogued noise stays out: the fleet turns prometheus-client's `*_created` off."""
    scraped = prometheus.series("orchestrator_tasks_total", fleet_run.started)
    assert scraped, "the orchestrator was never scraped"
    created = prometheus.series('{__name__=~"orchestrator_.*_created"}', fleet_run.started)
    assert created == [], created[:3]


def test_the_catalogue_check_fails_on_what_is_missing(prometheus: Prometheus) -> None:
    """The same check does go red: on a series nobody writes and on a label nobody sets."""
    ghost = CataloguedMetric("agent", "x", ("atalaia_no_such_series_total",), frozenset())
    found = prometheus.series(ghost.series[0], time.time() - 900)
    assert problems_with(ghost, ghost.series[0], found) == [
        "atalaia_no_such_series_total: no series in Prometheus"
    ]
    up = prometheus.series("up", time.time() - 900)
    wrong = CataloguedMetric("orchestrator", "up", ("up",), frozenset({"no_such_label"}))
    assert problems_with(wrong, "up", up)[0] == (
        "up: no series carries the catalogued label(s) ['no_such_label']"
    )


# --- one task: its trace and its logs, as sent to Tempo and Loki ------------------------------
@dataclass(frozen=True)
class TaskTrace:
    trace_id: str
    task_id: str
    agent_service: str
    span_ids: dict[str, str]  # span id -> service.name, for every span of the trace
    names: list[str]  # "service: span name" of every span, for messages


def _descends(span: dict[str, Any], ancestor_id: str, parents: dict[str, str]) -> bool:
    parent = span["parentSpanId"]
    seen: set[str] = set()
    while parent and parent not in seen:
        if parent == ancestor_id:
            return True
        seen.add(parent)
        parent = parents.get(parent, "")
    return False


def task_trace_problems(
    trace_id: str, spans: list[tuple[dict[str, Any], dict[str, Any]]]
) -> tuple[list[str], TaskTrace | None]:
    """What this trace lacks to be one task across orchestrator and agent (or the task).

    `spans` are (resource attributes, span) pairs as `Store.trace` returns them.
    """
    if not spans:
        return ["not received (yet)"], None
    parents = {s["spanId"]: s["parentSpanId"] for _, s in spans}
    service = {s["spanId"]: str(r.get("service.name")) for r, s in spans}
    problems = []
    roots = [
        s
        for r, s in spans
        if s["name"].startswith("orchestrate_task ")
        and r.get("service.name") == ORCHESTRATOR_SERVICE
    ]
    if not roots:
        problems.append(f"no `orchestrate_task ...` span from service {ORCHESTRATOR_SERVICE}")
    root = roots[0] if roots else None
    task_id = str(attributes(root).get("atalaia.task.id", "")) if root else ""
    invokes = [
        (r, s)
        for r, s in spans
        if s["name"].startswith("invoke_agent ")
        and r.get("service.name") not in (None, ORCHESTRATOR_SERVICE)
        and r.get("gen_ai.agent.name")
        and (root is None or _descends(s, root["spanId"], parents))
    ]
    if not invokes:
        problems.append("no `invoke_agent ...` span from an agent service below orchestrate_task")
    for resource, invoke in invokes:
        agent = resource["gen_ai.agent.name"]
        chats = [
            s
            for r, s in spans
            if s["name"].startswith("chat ")
            and r.get("service.name") == resource["service.name"]
            and _descends(s, invoke["spanId"], parents)
        ]
        if not chats:
            problems.append(f"no `chat ...` span from {agent} below its invoke_agent")
            continue
        if invoke["name"] != f"invoke_agent {agent}":
            problems.append(f"{invoke['name']!r} is not named after its agent {agent}")
            continue
        if task_id and str(attributes(invoke).get("atalaia.task.id", "")) != task_id:
            problems.append(f"invoke_agent's task id is not the orchestrated task's {task_id}")
            continue
        return [], TaskTrace(
            trace_id,
            task_id,
            str(resource["service.name"]),
            service,
            sorted(f"{service[s['spanId']]}: {s['name']}" for _, s in spans),
        )
    return problems, None


def find_task_trace(store: Store, since: float) -> TaskTrace:
    """The newest finished task (started after `since`, Unix time) whose trace holds
    orchestrator and agent spans."""
    tried: dict[str, list[str]] = {}

    def probe() -> TaskTrace | None:
        roots = [
            s
            for r, s in store.spans()
            if r.get("service.name") == ORCHESTRATOR_SERVICE
            and s["name"].startswith("orchestrate_task ")
            and int(s["startTimeUnixNano"]) >= since * 1e9
        ]
        assert roots, "no orchestrate_task span received"
        for root in sorted(roots, key=lambda s: -int(s["startTimeUnixNano"]))[:10]:
            trace_id = root["traceId"]
            problems, task = task_trace_problems(trace_id, store.trace(trace_id))
            if task:
                return task
            tried[trace_id] = problems
        return None

    try:
        return eventually(probe, timeout=DEADLINE_S, what="a task's trace", interval=5)
    except AssertionError as e:
        report = "\n  ".join(f"{t}: {'; '.join(p)}" for t, p in list(tried.items())[:10])
        raise AssertionError(f"{e}\nno trace has every part; the newest lack:\n  {report}") from e


@pytest.fixture(scope="module")
def task_trace(store: Store, fleet_run: FleetRun) -> TaskTrace:
    return find_task_trace(store, since=fleet_run.started)


def test_one_task_has_orchestrator_and_agent_spans_in_one_trace(task_trace: TaskTrace) -> None:
    services = set(task_trace.span_ids.values())
    assert {ORCHESTRATOR_SERVICE, task_trace.agent_service} <= services, task_trace.names
    assert task_trace.task_id, "orchestrate_task has no atalaia.task.id"


def test_the_task_trace_check_fails_on_a_trace_without_an_agent(
    store: Store, task_trace: TaskTrace
) -> None:
    """The same check does go red: on a trace that never arrived, and on the real trace with
    the agent's spans (or only its chat spans) taken out."""
    missing = "0" * 31 + "1"
    assert task_trace_problems(missing, store.trace(missing)) == (["not received (yet)"], None)
    spans = store.trace(task_trace.trace_id)
    orchestrator_only = [(r, s) for r, s in spans if r.get("service.name") == ORCHESTRATOR_SERVICE]
    assert task_trace_problems(task_trace.trace_id, orchestrator_only)[0] == [
        "no `invoke_agent ...` span from an agent service below orchestrate_task"
    ]
    no_chat = [(r, s) for r, s in spans if not s["name"].startswith("chat ")]
    problems, found = task_trace_problems(task_trace.trace_id, no_chat)
    assert found is None and problems and all("no `chat ...` span" in p for p in problems)


def test_the_task_logs_link_to_its_trace(store: Store, task_trace: TaskTrace) -> None:
    """Log records of the task carry its trace id and a span id of that trace (Loki keeps them
    as structured metadata, not as index labels: loki/loki.yaml), from the orchestrator and from
    the agent."""
    wanted = {ORCHESTRATOR_SERVICE, task_trace.agent_service}

    def probe() -> list[tuple[dict[str, Any], dict[str, Any]]] | None:
        records = [(r, rec) for r, rec in store.logs() if rec.get("traceId") == task_trace.trace_id]
        services = {r.get("service.name") for r, _ in records}
        assert wanted <= services, f"log records only from {sorted(map(str, services))}"
        return records

    records = eventually(probe, timeout=DEADLINE_S, what=f"the logs of {task_trace.trace_id}")
    problems = []
    for resource, record in records:
        where = f"{resource.get('service.name')}: {str(body(record))[:80]!r}"
        span_service = task_trace.span_ids.get(record.get("spanId", ""))
        if span_service != resource.get("service.name"):
            problems.append(
                f"{where}: spanId={record.get('spanId')!r} is not a span of this service in "
                f"the trace (spans: {task_trace.names})"
            )
    assert not problems, f"{len(problems)} of {len(records)} records:\n  " + "\n  ".join(problems)
