"""The insight commands' backend client against a real Prometheus from the tool cache, on a free
loopback port: a bad query is a QueryError carrying Prometheus's own message, a query that matches
nothing is NoData, and `atalaia slo` / `atalaia report` turn those into clear messages and exit
codes. The Prometheus scrapes an in-process prometheus-client registry with the agent task series
the collector derives and one orchestrator budget, so that `atalaia report` has task data and
shows what only an orchestrator knows."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from atalaia_ops.backends import NoData, Prometheus, QueryError, Unreachable
from atalaia_ops.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prom_url(tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("insight-prom")
    registry = CollectorRegistry()
    tasks = Counter(
        "atalaia_agent_tasks",
        "tasks",
        ["gen_ai_agent_name", "atalaia_task_outcome"],
        registry=registry,
    )
    tasks.labels("Helix", "success").inc(9)
    tasks.labels("Helix", "failure").inc(1)
    Gauge(
        "orchestrator_budget_remaining_ratio", "left", ["atalaia_department"], registry=registry
    ).labels("sales").set(0.75)
    exporter_port, prom_port = free_port(), free_port()
    server, thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "orchestrator",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        )
    )
    url = f"http://127.0.0.1:{prom_port}"
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            str(tool("prometheus", "prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            try:
                # Ready, and two scrapes in: increase() over the task counter has a value.
                r = httpx.get(
                    f"{url}/api/v1/query",
                    params={"query": "sum(increase(atalaia_agent_tasks_total[1m]))"},
                    timeout=2,
                )
                if r.status_code == 200 and r.json()["data"]["result"]:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Prometheus not ready with data in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        server.shutdown()
        thread.join(5)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # bound, then released: nothing listens


def test_query_error_carries_prometheus_message(prom_url: str) -> None:
    with Prometheus(prom_url) as prom, pytest.raises(QueryError) as exc:
        prom.query("sum(rate(atalaia_agent_tasks_total[5m])")
    message = str(exc.value)
    assert message.startswith(f"prometheus at {prom_url}: ")
    assert "bad_data" in message and "parse error" in message, message


def test_no_data_is_distinct(prom_url: str) -> None:
    with Prometheus(prom_url) as prom:
        assert prom.query("no_such_metric_total") == []
        with pytest.raises(NoData, match="no data for 'sum\\(no_such_metric_total\\)'"):
            prom.scalar("sum(no_such_metric_total)")
        assert prom.scalar("sum(atalaia_agent_tasks_total)") == 10.0


def test_range_query(prom_url: str) -> None:
    now = time.time()
    with Prometheus(prom_url) as prom:
        series = prom.query_range("sum(atalaia_agent_tasks_total)", now - 30, now, 1)
    assert len(series) == 1 and series[0].points
    assert {v for _, v in series[0].points} == {10.0}


def test_unreachable_names_backend_and_url() -> None:
    url = closed_port_url()
    with Prometheus(url) as prom, pytest.raises(Unreachable) as exc:
        prom.query("up")
    assert str(exc.value).startswith(f"prometheus at {url}: unreachable (ConnectError")


def test_slo_reports_no_data(prom_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A Prometheus without any SLI series: every SLO says `no data`, exit 3."""
    empty_window_end = time.time() - 86400 * 10  # ten days ago this Prometheus had nothing
    rc = main(
        ["slo", "--window", "1d", "--prometheus-url", prom_url, "--at", f"{empty_window_end}"]
    )
    out, err = capsys.readouterr()
    assert rc == 3, (out, err)
    assert out.count("no data") >= 6, out
    assert "no data" in err and prom_url in err


def test_report_no_data(prom_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", "--prometheus-url", prom_url, "--at", f"{time.time() - 86400 * 10}"])
    out, err = capsys.readouterr()
    assert rc == 3 and out == ""
    assert f"no data: prometheus at {prom_url}" in err and "atalaia_agent_tasks_total" in err


def test_report_reads_agent_tasks_and_an_orchestrator_budget(
    prom_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["report", "--format", "json", "--since", "1h", "--prometheus-url", prom_url])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert [b["department"] for b in doc["budgets"]] == ["sales"]
    assert doc["budgets"][0]["remaining_ratio"] == 0.75
    assert doc["failure_reasons"] is None  # no orchestrator_tasks_total: no orchestrator here


def test_slo_unreachable_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port_url()
    assert main(["slo", "--prometheus-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"atalaia slo: prometheus at {url}: unreachable"), err
