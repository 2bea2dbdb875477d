"""Prometheus rules: promtool validates and unit-tests them, the generated SLO rules are fresh,
every alert is documented and tested, and rules use only the catalogue's series and labels."""

from __future__ import annotations

import functools
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from atalaia_ops import slo
from atalaia_ops.dashboards.queries import PROMQL_KEYWORDS
from tests.conftest import run
from tools.upstream import REPO

RULES_DIR = REPO / "prometheus" / "rules"
TESTS_DIR = REPO / "prometheus" / "tests"
RUNBOOKS = REPO / "docs" / "runbooks"
CATALOGUE = REPO / "docs" / "telemetry.md"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))

# DESIGN §4: every alert the seeds name, plus heartbeat (stale and vanished), restart loop,
# Watchdog and the stack's own health.
REQUIRED_ALERTS = {
    "TaskSuccessRateLow", "AgentRetryLoop", "BudgetCritical", "HighLatencyP99",
    "ErrorBudgetBurnRate", "HighTimeoutEvents", "FallbackDepthExceeded", "HighFailureRate",
    "HighLatency", "HighErrorRate", "DatabaseDown", "LLMAPIFailures", "HighLLMCost",
    "IntegrationError", "AgentHeartbeatStale", "AgentVanished", "AgentRestartLoop", "Watchdog",
    "LLMModelUnpriced",
    "CollectorRefusingData", "CollectorDroppingData", "CollectorExporterQueueNearlyFull",
    "TargetDown", "LokiIngestionErrors", "TempoIngestionErrors",
}  # fmt: skip
ALWAYS_FIRING = {"Watchdog"}  # no silent case possible by design
SEVERITIES = {"critical", "warning", "none"}


@functools.cache  # cost.yml has a rule per price name: parse each file once, not per test
def rules() -> list[dict[str, Any]]:
    out = []
    for path in RULE_FILES:
        for group in yaml.load(path.read_text(), Loader=yaml.CSafeLoader)["groups"]:
            out += group["rules"]
    return out


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def test_there_are_rules_and_tests() -> None:
    assert {p.name for p in RULE_FILES} >= {"agents.yml", "stack.yml", "slo.yml"}
    assert TEST_FILES


def test_generated_slo_rules_are_fresh() -> None:
    committed = (RULES_DIR / "slo.yml").read_text()
    assert committed == slo.generate(slo.load_spec()), (
        "prometheus/rules/slo.yml differs from prometheus/slos.yaml: "
        "run `python -m atalaia_ops.slo generate` and commit the result"
    )
    assert committed.startswith("# GENERATED FILE, DO NOT EDIT.")


def test_promtool_check_rules(tool) -> None:
    result = run([tool("prometheus", "promtool"), "check", "rules", *RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(tool, test_file: Path) -> None:
    result = run([tool("prometheus", "promtool"), "test", "rules", test_file.name], cwd=TESTS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists() -> None:
    assert {a["alert"] for a in alerts()} >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: f"{r['alert']}-{r['expr'][:40]}")
def test_alert_is_documented(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert rule["labels"]["severity"] in SEVERITIES
    ann = rule["annotations"]
    assert ann["summary"].strip() and ann["description"].strip()
    assert ann["runbook_url"] == f"{slo.RUNBOOK_BASE}{name}.md"
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.exists(), f"{runbook} is missing"
    text = runbook.read_text()
    for section in ("## Meaning", "## First three checks", "## How to fix", "## When to escalate"):
        assert section in text, f"{runbook.name} has no '{section}' section"
    assert "```promql" in text or "```logql" in text, f"{runbook.name} has no query to paste"


def test_no_orphan_runbooks() -> None:
    names = {a["alert"] for a in alerts()}
    assert {p.stem for p in RUNBOOKS.glob("*.md")} <= names


def _alert_tests() -> dict[str, list[list[Any]]]:
    """alertname -> the exp_alerts lists of all its promtool cases."""
    cases: dict[str, list[list[Any]]] = {}
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    return cases


@pytest.mark.parametrize("name", sorted({a["alert"] for a in alerts()}))
def test_alert_has_firing_and_silent_cases(name: str) -> None:
    cases = _alert_tests().get(name, [])
    firing = [c for c in cases if c]
    assert firing, f"{name} has no promtool case where it fires"
    if name not in ALWAYS_FIRING:
        assert any(not c for c in cases), f"{name} has no promtool case where it stays silent"
    for exp in firing:
        for alert in exp:
            assert alert["exp_labels"].get("severity"), f"{name}: assert the labels"
            assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url"}


def test_burn_rate_alerts_are_tested_fast_and_slow() -> None:
    windows = {
        (a["exp_labels"]["long_window"], a["exp_labels"]["short_window"])
        for exp in _alert_tests()["ErrorBudgetBurnRate"]
        for a in exp
    }
    assert ("1h", "5m") in windows, "no fast-burn (page) case"
    assert ("3d", "6h") in windows, "no slow-burn (ticket) case"


# --- the catalogue contract -------------------------------------------------------------------

BUILTIN_LABELS = {"__name__", "le", "job", "instance"}


@functools.cache
def catalogue() -> tuple[set[str], set[str]]:
    """(series, labels) named in docs/telemetry.md, from its backticked names."""
    tokens = set(re.findall(r"`([^`\s]+)`", CATALOGUE.read_text()))
    series: set[str] = set()
    labels: set[str] = set()
    for token in tokens:
        name = token.replace(".", "_")
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            continue
        labels.add(name)
        series.add(name)
        for suffix in ("_bucket", "_sum", "_count"):  # histograms: one row names the family
            series.add(name + suffix)
            if name.endswith("_bucket"):
                series.add(name.removesuffix("_bucket") + suffix)
    # Rows like `otelcol_exporter_sent_spans` / `_metric_points` / `_log_records`.
    text = CATALOGUE.read_text()
    for base, rest in re.findall(r"`(\w+?)_spans`((?:\s*/\s*`_\w+`)+)", text):
        for suffix in re.findall(r"`(_\w+)`", rest):
            series.add(base + suffix)
    return series, labels


def used_names(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, label names, labels introduced by label_replace) used by a PromQL expr."""
    introduced = set()
    for m in re.finditer(r"label_replace\(", expr):
        depth, i = 1, m.end()
        while depth:  # the destination label is the first argument after the top-level comma
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            if depth == 1 and expr[i] == ",":
                introduced.add(re.match(r'\s*"(\w+)"', expr[i + 1 :]).group(1))  # type: ignore[union-attr]
                break
            i += 1
    strings_removed = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels: set[str] = set()
    for group in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", strings_removed
    ):
        labels |= {x.strip() for x in group.split(",") if x.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", strings_removed):
        labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    rest = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", strings_removed
    )
    rest = re.sub(r"\{[^}]*\}", " ", rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    metrics = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", rest):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_KEYWORDS:
            continue
        metrics.add(word)
    return metrics, labels, introduced


def test_used_names_parser() -> None:
    metrics, labels, introduced = used_names(
        'sum by (a, b) (rate(x_total{c="1", d=~"2"}[5m])) / on () y > bool 2 '
        'or label_replace(z, "sig", "v", "", "")'
    )
    assert metrics == {"x_total", "y", "z"}
    assert labels == {"a", "b", "c", "d"}
    assert introduced == {"sig"}


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_rules_use_only_catalogued_series_and_labels(rule: dict[str, Any]) -> None:
    series, labels = catalogue()
    recorded = {r["record"] for r in rules() if "record" in r}
    rule_labels = {k for r in rules() for k in r.get("labels", {})}
    metrics, used_labels, introduced = used_names(rule["expr"])
    unknown = metrics - series - recorded
    assert not unknown, f"not in docs/telemetry.md: {sorted(unknown)}"
    unknown_labels = used_labels - labels - BUILTIN_LABELS - rule_labels - introduced
    assert not unknown_labels, f"labels not in docs/telemetry.md: {sorted(unknown_labels)}"
    for text in rule.get("annotations", {}).values():
        for label in re.findall(r"\$labels\.(\w+)", text):
            assert label in labels | BUILTIN_LABELS | introduced | rule_labels, label


def test_catalogue_check_can_fail() -> None:
    series, _ = catalogue()
    metrics, _, _ = used_names("rate(made_up_metric_total[5m])")
    assert metrics - series == {"made_up_metric_total"}


# --- `le` spellings under real ingestion -------------------------------------------------------


def test_le_spellings_in_a_real_prometheus(tool, tmp_path: Path) -> None:
    """A real Prometheus 3 stores le="120.0" for a scraped prometheus-client histogram and le="120"
    for an OTLP one, and the selectors the rules use (`le=~"120(\\.0)?"`) match both."""

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    buckets = [0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600]
    registry = CollectorRegistry()
    scraped = Histogram(
        "orchestrator_task_duration_seconds", "enqueue -> result", ["status"], buckets=buckets,
        registry=registry,
    )  # fmt: skip
    for seconds in (3, 20, 100, 200):
        scraped.labels(status="success").observe(seconds)
    exporter_port, prom_port = free_port(), free_port()
    server, _ = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(p) for p in RULE_FILES],
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
    prom = subprocess.Popen(
        [
            str(tool("prometheus", "prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--web.enable-otlp-receiver",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "w"),  # noqa: SIM115
    )
    provider = None
    try:

        def query(q: str) -> list[dict[str, Any]]:
            r = httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=5)
            assert r.status_code == 200, r.text
            return r.json()["data"]["result"]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{url}/api/v1/otlp/v1/metrics"),
            export_interval_millis=600_000,
        )
        provider = MeterProvider(
            resource=Resource.create({"service.name": "le-test", "gen_ai.agent.name": "helix"}),
            metric_readers=[reader],
            views=[
                View(
                    instrument_name="atalaia.task.duration",
                    aggregation=ExplicitBucketHistogramAggregation(buckets),
                )
            ],
        )
        pushed = provider.get_meter("le-test").create_histogram("atalaia.task.duration", unit="s")
        for seconds in (3, 20, 100, 200):
            pushed.record(seconds, {"atalaia.task.outcome": "success"})
        assert provider.force_flush(10_000)

        def le_values(metric: str) -> set[str]:
            return {s["metric"]["le"] for s in query(f"{metric}_bucket")}

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            le_values("orchestrator_task_duration_seconds")
            and le_values("atalaia_task_duration_seconds")
        ):
            time.sleep(0.3)
        assert {"30.0", "120.0"} <= le_values("orchestrator_task_duration_seconds")
        assert "120" not in le_values("orchestrator_task_duration_seconds")
        assert {"30", "120"} <= le_values("atalaia_task_duration_seconds")
        assert "120.0" not in le_values("atalaia_task_duration_seconds")
        for metric in ("orchestrator_task_duration_seconds", "atalaia_task_duration_seconds"):
            # 3 of the 4 observations are within 120 s, 2 within 30 s, whichever the spelling.
            for le, share in (("120", 0.75), ("30", 0.5)):
                [sample] = query(
                    f'sum({metric}_bucket{{le=~"{le}(\\\\.0)?"}}) / sum({metric}_count)'
                )
                assert float(sample["value"][1]) == share, (metric, le, sample)
        # The repo's rules load and evaluate in the real server.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not query('slo:objective:ratio{slo="latency_p99"}'):
            time.sleep(0.3)
        assert float(query('slo:objective:ratio{slo="latency_p99"}')[0]["value"][1]) == 0.99
        r = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        failing = [
            (g["name"], x.get("lastError")) for g in r for x in g["rules"] if x.get("lastError")
        ]
        assert not failing, failing
    finally:
        if provider is not None:
            provider.shutdown()
        prom.terminate()
        prom.wait(timeout=10)
        server.shutdown()


# --- stack self-metric names, from the running binaries ----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _series_names(metrics_text: str) -> set[str]:
    return set(re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", metrics_text, flags=re.M))


def _rule_names(prefix: str) -> set[str]:
    return {m for r in rules() for m in used_names(r["expr"])[0] if m.startswith(prefix)}


class _Process:
    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))  # noqa: SIM115

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        pytest.fail(f"{url} not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:  # Loki's graceful shutdown takes long; not under test
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_collector_self_metrics_used_by_rules_exist(tool, tmp_path: Path) -> None:
    """Run the pinned collector with every pipeline exporting to a backend that is slow and
    fails, so receivers count refusals, exporters count failed sends and full queues; every
    otelcol_* series the rules use must then be on :8888."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class SlowFailingBackend(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(2)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), SlowFailingBackend)
    Thread(target=backend.serve_forever, daemon=True).start()
    otlp_port, telemetry_port = _free_port(), _free_port()
    exporter = {
        "endpoint": f"http://127.0.0.1:{backend.server_address[1]}",
        "retry_on_failure": {"enabled": False},
        "sending_queue": {"enabled": True, "queue_size": 1, "num_consumers": 1},
    }
    pipeline = {"receivers": ["otlp"], "exporters": ["otlp_http/slow"]}
    # The derived metrics' series limit (otelcol_deltatocumulative_datapoints): a delta sum
    # through a delta_to_cumulative processor, as config.yaml's metrics/<derived> pipelines.
    derived = {**pipeline, "processors": ["delta_to_cumulative"]}
    config = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp_port}"}}}},
        "processors": {"delta_to_cumulative": {"max_streams": 1}},
        "exporters": {"otlp_http/slow": exporter},
        "service": {
            "pipelines": {"logs": pipeline, "traces": pipeline, "metrics": derived},
            "telemetry": {
                "metrics": {
                    "level": "normal",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "127.0.0.1", "port": telemetry_port}
                                }
                            }
                        }
                    ],
                }
            },
        },
    }
    (tmp_path / "otelcol.yaml").write_text(yaml.safe_dump(config))
    binary = tool("otelcol", "otelcol-atalaia")
    proc = _Process(
        [str(binary), f"--config={tmp_path / 'otelcol.yaml'}"], tmp_path / "otelcol.log"
    )
    metrics_url = f"http://127.0.0.1:{telemetry_port}/metrics"
    try:
        proc.wait_http(metrics_url)
        bodies = {
            "logs": {
                "resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]
            },
            "traces": {
                "resourceSpans": [
                    {
                        "scopeSpans": [
                            {
                                "spans": [
                                    {
                                        "traceId": "5b8efff798038103d269b633813fc60c",
                                        "spanId": "eee19b7ec3c1b174",
                                        "name": "x",
                                        "startTimeUnixNano": "1",
                                        "endTimeUnixNano": "2",
                                    }
                                ]
                            }
                        ]
                    }
                ]
            },
            "metrics": {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {
                                "metrics": [
                                    {
                                        "name": "g",
                                        "gauge": {
                                            "dataPoints": [{"asDouble": 1, "timeUnixNano": "1"}]
                                        },
                                    },
                                    {
                                        "name": "d",
                                        "sum": {
                                            "aggregationTemporality": 1,  # delta
                                            "isMonotonic": True,
                                            "dataPoints": [{"asInt": "1", "timeUnixNano": "2"}],
                                        },
                                    },
                                ]
                            }
                        ]
                    }
                ]
            },
        }
        for _ in range(4):  # 1 in flight + 1 queued; the rest find the queue full
            for signal, body in bodies.items():
                httpx.post(f"http://127.0.0.1:{otlp_port}/v1/{signal}", json=body, timeout=5)
        wanted = _rule_names("otelcol_")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            missing = wanted - _series_names(httpx.get(metrics_url, timeout=5).text)
            if not missing:
                break
            time.sleep(0.5)
        assert not missing, f"the rules use otelcol series the collector does not expose: {missing}"
    finally:
        proc.stop()
        backend.shutdown()


# Loki's and Tempo's self-metrics (AGPL: not run here) are checked against their upstream sources
# at the pinned releases: docs/loki-tempo-metrics.yaml, tests/unit/test_loki_tempo_metrics.py.
