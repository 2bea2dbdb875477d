"""Every dashboard query goes through the real parsers: throw-away Prometheus, Loki and Tempo from
the tool cache, on free loopback ports, each answering every PromQL (instant and range), LogQL and
TraceQL query with Grafana's variables substituted. A parse error fails; no data is needed here
(tests/e2e/test_dash_queries.py runs the same queries against real data). The same servers (and a
throw-away Alertmanager) prove that the stack self-metrics the dashboards add to the catalogue are
exposed under those names."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atalaia.dashboards import as_json
from atalaia.dashboards.queries import Query, panel_queries, variable_defaults, variable_queries

BOARDS = as_json()
QUERIES = [
    (q, {**variable_defaults(b), "agent": "Helix"})
    for b in BOARDS.values()
    for q in [*panel_queries(b), *variable_queries(b)]
]


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


LOKI_CONFIG = """
auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
common:
  path_prefix: {dir}
  replication_factor: 1
  instance_addr: 127.0.0.1
  ring:
    kvstore:
      store: inmemory
  storage:
    filesystem:
      chunks_directory: {dir}/chunks
      rules_directory: {dir}/rules
schema_config:
  configs:
    - from: 2024-01-01
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
limits_config:
  allow_structured_metadata: true
analytics:
  reporting_enabled: false
"""

TEMPO_CONFIG = """
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
memberlist:
  bind_addr: [127.0.0.1]
  bind_port: {gossip}
distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint: 127.0.0.1:{otlp}
ingester:
  lifecycler:
    address: 127.0.0.1
    ring:
      kvstore:
        store: inmemory
      replication_factor: 1
storage:
  trace:
    backend: local
    local:
      path: {dir}/traces
    wal:
      path: {dir}/wal
usage_report:
  reporting_enabled: false
"""


@pytest.fixture(scope="module")
def backends(tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    d = tmp_path_factory.mktemp("dash-parse")
    prom_port, loki_port, tempo_port, am_port = free_port(), free_port(), free_port(), free_port()
    tempo_otlp = free_port()
    (d / "alertmanager.yml").write_text(
        "route:\n  receiver: sink\nreceivers:\n  - name: sink\n"
        "    webhook_configs:\n      - url: http://127.0.0.1:9/\n"
    )
    (d / "prometheus.yml").write_text(  # scrapes itself, so that it appends samples
        "scrape_configs:\n  - job_name: self\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\n"
    )
    loki_dir, tempo_dir = d / "loki", d / "tempo"
    (d / "loki.yaml").write_text(LOKI_CONFIG.format(http=loki_port, grpc=free_port(), dir=loki_dir))
    (d / "tempo.yaml").write_text(
        TEMPO_CONFIG.format(
            http=tempo_port, grpc=free_port(), gossip=free_port(), otlp=tempo_otlp, dir=tempo_dir
        )
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
            "loki",
            [str(tool("loki")), f"-config.file={d / 'loki.yaml'}"],
            f"http://127.0.0.1:{loki_port}/ready",
            d / "loki.log",
        ),
        Server(
            "tempo",
            [str(tool("tempo")), f"-config.file={d / 'tempo.yaml'}"],
            f"http://127.0.0.1:{tempo_port}/ready",
            d / "tempo.log",
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
            "loki": f"http://127.0.0.1:{loki_port}",
            "tempo": f"http://127.0.0.1:{tempo_port}",
            "tempo_otlp": f"http://127.0.0.1:{tempo_otlp}",
            "alertmanager": f"http://127.0.0.1:{am_port}",
        }
    finally:
        for s in servers:
            s.stop()


def check(resp: httpx.Response, what: str) -> None:
    assert resp.status_code == 200, f"{what}: HTTP {resp.status_code}: {resp.text[:500]}"


def run_query(urls: dict[str, str], q: Query, expr: str) -> None:
    now = int(time.time())
    what = f"{q.dashboard} / {q.panel}: {expr}"
    if q.kind == "promql":
        base = urls["prometheus"] + "/api/v1/"
        check(httpx.get(base + "query", params={"query": expr, "time": now}, timeout=10), what)
        params = {"query": expr, "start": now - 900, "end": now, "step": 15}
        check(httpx.get(base + "query_range", params=params, timeout=10), what)
    elif q.kind == "logql":
        base = urls["loki"] + "/loki/api/v1/"
        endpoint, params = (
            ("query", {"query": expr, "time": now * 10**9})
            if q.instant
            else (
                "query_range",
                {"query": expr, "start": (now - 900) * 10**9, "end": now * 10**9, "step": 15},
            )
        )
        check(httpx.get(base + endpoint, params=params, timeout=10), what)
    else:
        params = {"q": expr, "start": now - 900, "end": now, "limit": 20}
        check(httpx.get(urls["tempo"] + "/api/search", params=params, timeout=10), what)


def test_every_query_parses_in_the_real_backends(backends: dict[str, str]) -> None:
    failures = []
    for q, values in QUERIES:
        try:
            run_query(backends, q, q.substituted(values))
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)
    assert {q.kind for q, _ in QUERIES} == {"promql", "logql", "traceql"}


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("promql", "sum(rate(orchestrator_tasks_total[1m])"),
        ("logql", '{gen_ai_agent_name="x"} |= '),
        ("traceql", '{ resource.gen_ai.agent.name = "x" && }'),
    ],
)
def test_a_broken_query_is_caught(backends: dict[str, str], kind: str, expr: str) -> None:
    with pytest.raises(AssertionError, match="HTTP 400"):
        run_query(backends, Query("x", "broken", kind, expr, False), expr)


# The stack self-metrics the dashboards read beyond those the alert rules already prove.
STACK_METRICS = {
    "prometheus": ["prometheus_tsdb_head_samples_appended_total"],
    "loki": ["loki_distributor_lines_received_total"],
    "tempo": ["tempo_distributor_spans_received_total"],
    "alertmanager": [
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
    ],
}


def exposed(url: str) -> set[str]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


def test_stack_metrics_on_the_dashboards_exist(backends: dict[str, str]) -> None:
    now_ns = str(time.time_ns())
    push = {"streams": [{"stream": {"service_name": "dash-test"}, "values": [[now_ns, "hello"]]}]}
    resp = httpx.post(backends["loki"] + "/loki/api/v1/push", json=push, timeout=10)
    assert resp.status_code == 204, resp.text
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "dash-test",
        "kind": 1,
        "startTimeUnixNano": now_ns,
        "endTimeUnixNano": now_ns,
    }
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "dash"}}]
                },
                "scopeSpans": [{"spans": [span]}],
            }
        ]
    }
    resp = httpx.post(backends["tempo_otlp"] + "/v1/traces", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 30  # counters with labels appear on first use
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
