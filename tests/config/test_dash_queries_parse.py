"""Every query Atalaia ships goes through a real parser.

PromQL: a throw-away Prometheus from the tool cache, on a free loopback port, answers every
dashboard query (instant and range) and every trace-to-metrics query of the Tempo datasource.

LogQL and TraceQL: Loki and Tempo are AGPL and are not built here, so Grafana's own grammars
(`@grafana/lezer-logql`, `@grafana/lezer-traceql`, the parsers of Grafana's query editors;
tools/grammars.py) parse every LogQL and TraceQL query of the dashboards, of the datasource
provisioning, of the CLI (`atalaia explain`, as its Explore links hand them to Grafana) and of
the runbooks, in one Node process. Any syntax error fails, naming the query, where it comes from
and the line and column of the error.

Grafana's variables are substituted first. No data is needed here (tests/e2e/test_dash_queries.py
runs the dashboard queries against real data). A throw-away Prometheus and Alertmanager prove that
the stack self-metrics the dashboards add to the catalogue are exposed under those names; Loki's
and Tempo's are in docs/loki-tempo-metrics.yaml (tests/unit/test_loki_tempo_metrics.py).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from atalaia_ops import explain
from atalaia_ops.dashboards import as_json
from atalaia_ops.dashboards.datasources import definitions
from atalaia_ops.dashboards.queries import panel_queries, variable_defaults, variable_queries
from atalaia_ops.explain_signals import SIGNALS
from atalaia_ops.explore_links import DEFAULT_GRAFANA_URL, explore
from tools import grammars as query_grammars
from tools.upstream import REPO

BOARDS = as_json()
QUERIES = [
    (q, {**variable_defaults(b), "agent": "Helix"})
    for b in BOARDS.values()
    for q in [*panel_queries(b), *variable_queries(b)]
]
LANGUAGE = {"prometheus": "promql", "loki": "logql", "tempo": "traceql"}


@dataclass(frozen=True)
class Shipped:
    """One query as Atalaia ships it, variables substituted."""

    source: str  # dashboards | datasources | cli | docs
    where: str  # what a person looks for to fix it
    language: str  # promql | logql | traceql
    query: str


# --- the queries ------------------------------------------------------------------------------


def dashboard_queries() -> list[Shipped]:
    return [
        Shipped("dashboards", f"dashboard {q.dashboard} / {q.panel}", q.kind, q.substituted(v))
        for q, v in QUERIES
    ]


# Representative values for the variables of Grafana's datasource links ($__tags is built from the
# link's `tags`, as Grafana does: key="value" pairs).
LINK_VALUES = {
    "__trace.traceId": "5b8efff798038103d269b633813fc60c",
    "__span.spanId": "eee19b7ec3c1b174",
    "__rate_interval": "1m",
}


def _link_substituted(query: str, tags: list[dict[str, str]]) -> str:
    values = {**LINK_VALUES, "__tags": ", ".join(f'{t.get("value") or t["key"]}="x"' for t in tags)}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no test value for Grafana variable ${name} in {query!r}")
        return values[name]

    return re.sub(r"\$\{([\w.]+)\}|\$(\w+(?:\.\w+)*)", repl, query)


def _link_queries(
    node: Any, where: str, uid: str | None, tags: list[dict[str, str]]
) -> Iterator[tuple[str, str | None, str]]:
    """(where, target datasource uid, query) of every `query` in a datasource's jsonData: the
    target is the nearest enclosing `datasourceUid`, the tags the nearest enclosing `tags`."""
    if isinstance(node, dict):
        uid = node.get("datasourceUid", uid)
        tags = node.get("tags", tags)
        if isinstance(node.get("query"), str):
            yield where, uid, _link_substituted(node["query"], tags)
        for key, value in node.items():
            yield from _link_queries(value, f"{where}.{key}", uid, tags)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _link_queries(item, f"{where}[{i}]", uid, tags)


def datasource_queries() -> list[Shipped]:
    """The queries of the datasources' cross-links (trace -> logs, trace -> metrics), from the
    provisioning file and from `atalaia grafana push`'s definitions. A derived field's link to
    Tempo carries a trace id, not a TraceQL query: it has no `query` and is not parsed."""
    path = REPO / "grafana" / "provisioning" / "datasources" / "atalaia.yaml"
    # `$$` is how a provisioning file escapes `$` from Grafana's environment expansion.
    provisioned = yaml.safe_load(path.read_text().replace("$$", "$"))["datasources"]
    pushed = definitions("http://p", "http://l", "http://t", "http://a")
    types = {ds["uid"]: ds["type"] for ds in provisioned}
    out = []
    for origin, sources in ((path.relative_to(REPO).as_posix(), provisioned), ("push", pushed)):
        for ds in sources:
            for where, uid, query in _link_queries(ds.get("jsonData", {}), ds["uid"], None, []):
                assert uid in types, f"{origin} {where}: query without a known datasourceUid"
                language = LANGUAGE[types[uid]]
                out.append(Shipped("datasources", f"{origin}: {where}", language, query))
    return out


def _through_explore(backend: str, query: str) -> str:
    """The query as Grafana receives it from the Explore link the CLI prints."""
    url = explore(DEFAULT_GRAFANA_URL, backend, query, 0, 60)
    target = json.loads(parse_qs(urlsplit(url).query)["panes"][0])["a"]["queries"][0]
    return str(target["query" if backend == "tempo" else "expr"])


# Agent and service names as a user may spell them: quotes, backslashes and non-ASCII must stay
# inside the string literal.
NAMES = ["Helix", 'Agent "Q"', "back\\slash", "Núcleo-7"]


def cli_queries() -> list[Shipped]:
    out: list[tuple[str, str, str]] = []
    for name in NAMES:
        out += [
            (f"explain.tasks_query({name!r})", "tempo", explain.tasks_query(name)),
            (f"explain.failed_tasks_query({name!r})", "tempo", explain.failed_tasks_query(name)),
            (
                f"explain.slow_tasks_query({name!r}, 3.04)",
                "tempo",
                explain.slow_tasks_query(name, 3.04),
            ),
            (f"explain.error_lines_query({name!r})", "loki", explain.error_lines_query(name)),
        ]
        out += [
            (f"explain_signals {s.kind} for {name!r}", s.backend, s.query.replace("{agent}", name))
            for s in SIGNALS
            if s.backend == "loki"
        ]
    return [Shipped("cli", w, LANGUAGE[b], _through_explore(b, q)) for w, b, q in out]


def docs_queries() -> list[Shipped]:
    """Fenced ```logql / ```traceql blocks of the README and docs (the runbooks' log queries), as
    a person pastes them into Explore (placeholders such as <agent> are inside string literals)."""
    out = []
    for path in sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")]):
        text = path.read_text()
        for m in re.finditer(r"^\s*```(logql|traceql)\n(.*?)^\s*```", text, re.M | re.S):
            where = f"{path.relative_to(REPO).as_posix()}:{text[: m.start(2)].count(chr(10)) + 1}"
            out.append(Shipped("docs", where, m.group(1), m.group(2).strip()))
    return out


SHIPPED = [*dashboard_queries(), *datasource_queries(), *cli_queries(), *docs_queries()]
GRAMMAR_CHECKED = [q for q in SHIPPED if q.language in query_grammars.LANGUAGES]

# Broken on purpose: the checks must catch each, at this line and column.
BROKEN = [
    Shipped("broken", "test: unfinished line filter", "logql", '{gen_ai_agent_name="x"} |= '),
    Shipped("broken", "test: dangling &&", "traceql", '{ resource.gen_ai.agent.name = "x" && }'),
    Shipped(
        "broken",
        "test: unclosed parenthesis",
        "logql",
        'sum by (service_name) (\n  count_over_time({service_name="x"} [1m])',
    ),
    Shipped("broken", "test: unescaped backslash", "traceql", '{ span.x = "a\\" }'),
]
BROKEN_AT = ["line 1, column 28", "line 1, column 39", "line 2, column 43", "line 1, column 12"]


# --- LogQL and TraceQL: Grafana's grammars ----------------------------------------------------


@pytest.fixture(scope="module")
def parsed(grammars: Path) -> query_grammars.Parsed:
    """Every shipped LogQL/TraceQL query and the broken ones, in one Node process."""
    queries = [(q.language, q.query) for q in [*GRAMMAR_CHECKED, *BROKEN]]
    return query_grammars.parse_errors(queries, grammars)


def failures(result: query_grammars.Parsed, queries: list[Shipped], offset: int = 0) -> list[str]:
    return [
        query_grammars.describe(q.where, q.language, q.query, result.errors[offset + i])
        for i, q in enumerate(queries)
        if result.errors[offset + i]
    ]


def test_every_logql_and_traceql_query_parses_in_grafanas_grammars(
    parsed: query_grammars.Parsed,
) -> None:
    wanted = {k: v for k, v in query_grammars.locked_versions().items() if k in parsed.grammars}
    assert parsed.grammars == wanted, "the grammars that parsed are not the locked ones"
    bad = failures(parsed, GRAMMAR_CHECKED)
    assert not bad, f"{len(bad)} of {len(GRAMMAR_CHECKED)} queries do not parse:\n\n" + "\n\n".join(
        bad
    )


def test_every_source_of_queries_is_checked() -> None:
    """A refactor that loses a source (or its language) fails here, not silently."""
    found = {(q.source, q.language) for q in SHIPPED}
    assert found >= {
        ("dashboards", "promql"),
        ("dashboards", "logql"),
        ("dashboards", "traceql"),
        ("datasources", "logql"),
        ("datasources", "promql"),
        ("cli", "logql"),
        ("cli", "traceql"),
        ("docs", "logql"),
    }, found
    assert {q.language for q in SHIPPED} == {"promql", "logql", "traceql"}


@pytest.mark.parametrize(
    ("index", "position"), list(enumerate(BROKEN_AT)), ids=[q.where for q in BROKEN]
)
def test_a_broken_query_is_caught(parsed: query_grammars.Parsed, index: int, position: str) -> None:
    q = BROKEN[index]
    bad = failures(parsed, [q], offset=len(GRAMMAR_CHECKED) + index)
    assert len(bad) == 1, f"{q.query!r} was not caught"
    assert bad[0].startswith(f"{q.where}: {q.language} syntax error in {q.query!r}"), bad[0]
    assert f"  {position} " in bad[0], bad[0]


# --- PromQL: the real Prometheus ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, name: str, cmd: list[str], ready: str, log: Path):
        self.name, self.ready_url, self.log = name, ready, log
        self.proc = subprocess.Popen(
            cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"{self.name} not ready in {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def backends(tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    d = tmp_path_factory.mktemp("dash-parse")
    prom_port, am_port = free_port(), free_port()
    (d / "alertmanager.yml").write_text(
        "route:\n  receiver: sink\nreceivers:\n  - name: sink\n"
        "    webhook_configs:\n      - url: http://127.0.0.1:9/\n"
    )
    (d / "prometheus.yml").write_text(  # scrapes itself, so that it appends samples
        "scrape_configs:\n  - job_name: self\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\n"
    )
    servers = [
        Server(
            "prometheus",
            [
                str(tool("prometheus")),
                f"--config.file={d / 'prometheus.yml'}",
                f"--storage.tsdb.path={d / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            f"http://127.0.0.1:{prom_port}/-/ready",
            d / "prometheus.log",
        ),
        Server(
            "alertmanager",
            [
                str(tool("alertmanager")),
                f"--config.file={d / 'alertmanager.yml'}",
                f"--storage.path={d / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            f"http://127.0.0.1:{am_port}/-/ready",
            d / "alertmanager.log",
        ),
    ]
    try:
        for s in servers:
            s.wait_ready()
        yield {
            "prometheus": f"http://127.0.0.1:{prom_port}",
            "alertmanager": f"http://127.0.0.1:{am_port}",
        }
    finally:
        for s in servers:
            s.stop()


def check(resp: httpx.Response, what: str) -> None:
    assert resp.status_code == 200, f"{what}: HTTP {resp.status_code}: {resp.text[:500]}"


def run_promql(client: httpx.Client, urls: Mapping[str, str], where: str, expr: str) -> None:
    """Instant and range query; AssertionError (HTTP 400 and Prometheus' message) if rejected."""
    now = int(time.time())
    what = f"{where}: {expr}"
    base = urls["prometheus"] + "/api/v1/"
    check(client.get(base + "query", params={"query": expr, "time": now}), what)
    params = {"query": expr, "start": now - 900, "end": now, "step": 15}
    check(client.get(base + "query_range", params=params), what)


def test_every_promql_query_parses_in_prometheus(backends: dict[str, str]) -> None:
    promql = [q for q in SHIPPED if q.language == "promql"]
    failed = []
    with httpx.Client(timeout=10) as client:
        for q in promql:
            try:
                run_promql(client, backends, q.where, q.query)
            except AssertionError as e:
                failed.append(str(e))
    assert not failed, "\n".join(failed)
    assert {q.source for q in promql} == {"dashboards", "datasources"}


def test_a_broken_promql_query_is_caught(backends: dict[str, str]) -> None:
    with httpx.Client(timeout=10) as client, pytest.raises(AssertionError, match="HTTP 400"):
        run_promql(client, backends, "test", "sum(rate(orchestrator_tasks_total[1m])")


# The stack self-metrics the dashboards read beyond those the alert rules already prove. Loki's
# and Tempo's are in docs/loki-tempo-metrics.yaml, read from their sources.
STACK_METRICS = {
    "prometheus": ["prometheus_tsdb_head_samples_appended_total"],
    "alertmanager": [
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
    ],
}


def exposed(url: str) -> set[str]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


def test_stack_metrics_on_the_dashboards_exist(backends: dict[str, str]) -> None:
    deadline = time.monotonic() + 30  # Prometheus counts appended samples from its first scrape
    while True:
        missing = {
            name
            for component, names in STACK_METRICS.items()
            for name in names
            if name not in exposed(backends[component])
        }
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not missing, f"not exposed by the pinned binaries: {sorted(missing)}"
