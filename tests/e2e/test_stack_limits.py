"""What the collector acknowledges survives it, and no input poisons the stack.

- kill -9 of the collector in the middle of a stream: every log record, span and sample it
  answered 200 to reaches the store and Prometheus after it restarts on the same disk queue
  (the exporters batch inside their persistent queues; nothing waits in memory before them);
- a 1 MB log body and a span nested 10,000 levels deep, in the same requests as ordinary
  records: every ordinary record is delivered, the two arrive cut down and marked
  (atalaia.limited), are counted by reason, no export fails, and the collector's queues are
  empty again within 30 s;
- 10,000 distinct label values of one derived metric stop at the configured per-metric series
  limit, and CollectorSeriesLimitReached fires.

Requests are OTLP/HTTP protobuf built by tools/otlp_raw.py, so that "acknowledged" is exactly
an HTTP 200 from the collector's receiver.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import yaml

from tests.e2e.backends import Prometheus, Store, attributes, body, eventually
from tests.e2e.otlp import unique
from tools import otlp_raw
from tools.native_stack import BY_NAME, NativeStack, port_in_use
from tools.upstream import REPO

COLLECTOR = "otel-collector"


def collector_metric(stack: NativeStack, name: str) -> float:
    """Sum of one of the collector's own metrics, from its /metrics endpoint."""
    text = httpx.get(stack.urls["collector_metrics"], timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def kill_9(stack: NativeStack, name: str) -> None:
    """SIGKILL one service and wait until its process is gone and its ports are free."""
    pid = stack.running()[name]
    os.kill(pid, signal.SIGKILL)
    ports = BY_NAME[name].ports
    eventually(
        lambda: name not in stack.running() and not any(port_in_use(p) for p in ports),
        timeout=10,
        interval=0.1,
        what=f"{name} gone after kill -9",
    )


# -- kill -9 mid-stream --------------------------------------------------------------------------
def test_kill_9_of_the_collector_loses_nothing_it_acknowledged(
    native_stack: NativeStack, store: Store, prometheus: Prometheus
) -> None:
    service = unique("kill9")
    url = native_stack.urls["otlp_http"]
    acked: dict[str, set[str]] = {"logs": set(), "traces": set(), "metrics": set()}
    stop = threading.Event()
    sent = 0

    def stream() -> None:
        nonlocal sent
        seq = 0
        with httpx.Client() as client:
            while not stop.is_set():
                keys = [f"{seq:05d}-{i}" for i in range(5)]
                seq += 1
                bodies = {
                    "logs": otlp_raw.logs_request(
                        service, [otlp_raw.log(f"{service} line {k}") for k in keys]
                    ),
                    "traces": otlp_raw.traces_request(
                        service, [otlp_raw.span(f"{service} span {k}") for k in keys]
                    ),
                    "metrics": otlp_raw.gauge_request(
                        service, "atalaia_check_kill9", [[("seq", k)] for k in keys]
                    ),
                }
                for sig, payload in bodies.items():
                    try:
                        ok = otlp_raw.post(client, url, sig, payload).status_code == 200
                    except httpx.HTTPError:
                        ok = False  # not acknowledged: may or may not arrive
                    if ok:
                        acked[sig].update(keys)
                sent += 1
                time.sleep(0.01)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    eventually(lambda: len(acked["logs"]) >= 200, timeout=30, what="a stream under way")
    kill_9(native_stack, COLLECTOR)  # mid-stream, with batches waiting in the exporters' queues
    native_stack.start([COLLECTOR])
    native_stack.wait_ready([COLLECTOR], timeout=60)
    before = len(acked["logs"])
    eventually(lambda: len(acked["logs"]) >= before + 200, timeout=30, what="the stream resumed")
    stop.set()
    sender.join(timeout=30)

    def missing() -> dict[str, set[str]]:
        lines = {
            str(body(r)).rsplit(" ", 1)[-1] for _, r in store.logs() if service in str(body(r))
        }
        spans = {s["name"].rsplit(" ", 1)[-1] for _, s in store.spans() if service in s["name"]}
        samples = {
            r["metric"]["seq"]
            for r in prometheus.query(
                f'last_over_time(atalaia_check_kill9{{service_name="{service}"}}[10m])'
            )
        }
        return {
            "logs": acked["logs"] - lines,
            "traces": acked["traces"] - spans,
            "metrics": acked["metrics"] - samples,
        }

    def none_missing() -> bool:
        gone = missing()
        assert not any(gone.values()), {k: [*sorted(v)[:5], len(v)] for k, v in gone.items()}
        return True

    eventually(none_missing, timeout=90, what="every acknowledged record after the kill -9")
    assert all(len(v) > 400 for v in acked.values()), {k: len(v) for k, v in acked.items()}


# -- poison --------------------------------------------------------------------------------------
def test_a_1mb_log_body_and_a_10000_deep_span_poison_nothing(
    native_stack: NativeStack, store: Store, prometheus: Prometheus
) -> None:
    service = unique("poison")
    url = native_stack.urls["otlp_http"]
    failed_before = sum(
        collector_metric(native_stack, f"otelcol_exporter_send_failed_{item}")
        for item in ("spans", "log_records")
    )
    started = time.monotonic()
    with httpx.Client() as client:
        for round_ in range(3):
            logs = [otlp_raw.log(f"{service} ok {round_}-{i}") for i in range(20)]
            logs.insert(10, otlp_raw.log(f"{service} huge {round_} " + "x" * 1_000_000))
            spans = [otlp_raw.span(f"{service} ok {round_}-{i}") for i in range(20)]
            assert (
                otlp_raw.post(client, url, "logs", otlp_raw.logs_request(service, logs)).status_code
                == 200
            )
            assert (
                otlp_raw.post(
                    client, url, "traces", otlp_raw.traces_request(service, spans)
                ).status_code
                == 200
            )
            deep = otlp_raw.deep_span_request(service, f"{service} deep {round_}", 10_000)
            assert otlp_raw.post(client, url, "traces", deep).status_code == 200

    want = {f"{r}-{i}" for r in range(3) for i in range(20)}

    def delivered() -> bool:
        lines = [r for _, r in store.logs() if service in str(body(r))]
        spans = [s for _, s in store.spans() if service in s["name"]]
        ok_lines = {str(body(r)).rsplit(" ", 1)[-1] for r in lines if " ok " in str(body(r))}
        ok_spans = {s["name"].rsplit(" ", 1)[-1] for s in spans if " ok " in s["name"]}
        huge = [r for r in lines if " huge " in str(body(r))]
        deep = [s for s in spans if " deep " in s["name"]]
        assert ok_lines == want and ok_spans == want, (len(ok_lines), len(ok_spans))
        assert len(huge) == 3 and len(deep) == 3, (len(huge), len(deep))
        for r in huge:
            assert len(str(body(r)).encode()) <= 131072
            assert str(body(r)).endswith("...[truncated by atalaia]")
            assert attributes(r)["atalaia.limited"] == "body_size"
        for s in deep:
            attrs = attributes(s)
            assert "attribute_depth" in attrs["atalaia.limited"]
            assert isinstance(attrs["deep"], str) and len(attrs["deep"]) <= 16384
        return True

    eventually(delivered, timeout=30, what="every ordinary record, and the poison cut down")

    def healthy() -> bool:
        assert httpx.get(native_stack.urls["collector_health"], timeout=5).status_code == 200
        assert collector_metric(native_stack, "otelcol_exporter_queue_size") == 0
        return True

    eventually(healthy, timeout=30 - (time.monotonic() - started) + 30, what="queues drained")
    assert time.monotonic() - started < 60
    failed_after = sum(
        collector_metric(native_stack, f"otelcol_exporter_send_failed_{item}")
        for item in ("spans", "log_records")
    )
    assert failed_after == failed_before, "an export failed: the poison reached a backend"

    def counted() -> dict[str, float]:
        selector = f'atalaia_stack_limited_total{{service_name="{service}"}}'
        rows = prometheus.query(f"sum by (atalaia_limited, atalaia_signal) ({selector})")
        got = {
            f"{r['metric']['atalaia_signal']}:{r['metric']['atalaia_limited']}": float(
                r["value"][1]
            )
            for r in rows
        }
        assert (
            got.get("logs:body_size") == 3 and got.get("traces:attribute_depth,attribute_size") == 3
        ), got
        return got

    eventually(counted, timeout=60, what="the limited records counted by reason in Prometheus")


# -- series limit --------------------------------------------------------------------------------
def configured_series_limit() -> int:
    config = yaml.safe_load((REPO / "otel-collector" / "config.yaml").read_text())
    return int(config["processors"]["delta_to_cumulative/log_records"]["max_streams"])


def test_10000_label_values_stop_at_the_series_limit_and_the_alert_fires(
    native_stack: NativeStack, prometheus: Prometheus
) -> None:
    limit = configured_series_limit()
    service = unique("cardinality")
    others = prometheus.query("count(last_over_time(atalaia_log_records_total[15m]))")
    before = int(float(others[0]["value"][1])) if others else 0
    url = native_stack.urls["otlp_http"]
    with httpx.Client() as client:
        for chunk in range(10):
            records = [
                otlp_raw.log(f"{service} failure", [("error.type", f"E{chunk * 1000 + i:05d}")], 17)
                for i in range(1000)
            ]
            resp = otlp_raw.post(client, url, "logs", otlp_raw.logs_request(service, records))
            assert resp.status_code == 200

    query = f'count(atalaia_log_records_total{{service_name="{service}"}})'

    def at_limit() -> int:
        rows = prometheus.query(query)
        n = int(float(rows[0]["value"][1])) if rows else 0
        assert n >= limit - before - 50, n  # the series stop at the limit, not before it
        return n

    try:
        n = eventually(at_limit, timeout=90, what="the derived series up to the limit")
        assert n <= limit

        def firing() -> bool:
            alerts = [
                a
                for a in prometheus.alerts()
                if a["labels"]["alertname"] == "CollectorSeriesLimitReached"
            ]
            assert any(a["state"] == "firing" for a in alerts), alerts
            return True

        eventually(firing, timeout=120, what="CollectorSeriesLimitReached firing")
    finally:
        # The metric stays at its limit until these streams go stale (10 min): every later
        # test's new log-record series would be dropped. A restart forgets them all, as the
        # runbook says.
        native_stack.restart("otel-collector")
