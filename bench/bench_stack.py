"""The native stack under load: what it sustains, how fresh the data is, what it costs, and that
nothing acknowledged is lost. Part of `make bench`, not of `make test`.

    make bench     # as root: runs this inside its own network namespace (atalaia-bench)

It starts its own native stack (collector, log and trace store, Prometheus, Alertmanager, alert
sink; Loki, Tempo and Grafana are images only and never run here) in a fresh state directory,
inside the network namespace `atalaia-bench` (created if missing), so its fixed ports never meet
the e2e suite's. Load is OTLP/HTTP protobuf built by tools/otlp_raw.py, acknowledged by HTTP 200.

Measures: cold start to ready; RSS of each process idle and at load; the highest offered rate of
spans/s and log records/s (steps) with nothing refused (non-200, receiver refusals) or dropped
(exporter send/enqueue failures) and everything at the store; freshness (emit -> queryable: spans
and logs at the store's files, a metric sample in Prometheus) p50/p95; fault -> notification
(DatabaseDown: a pool reports 0 connections -> the alert sink has the notification); losses on a
restart of the log and trace store and on a kill -9 of the collector mid-stream. Prints one
table and writes docs/benchmarks.md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.backends import Store, body  # noqa: E402
from tools import otlp_raw  # noqa: E402
from tools.native_stack import BY_NAME, NativeStack, port_in_use, store_files  # noqa: E402

NETNS = "atalaia-bench"
SPANS_PER_REQUEST = 200
STEPS = (1000, 2500, 5000, 10000, 20000)  # offered items per second
STEP_S = 10.0


def in_netns() -> None:
    """Re-run this script inside its own network namespace (root only)."""
    if os.environ.get("ATALAIA_BENCH_NETNS") == NETNS:
        return
    if os.geteuid() != 0:
        sys.exit("the stack bench runs in a network namespace of its own: run it as root")
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if NETNS not in names.split():
        subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"], check=True)
    env = {**os.environ, "ATALAIA_BENCH_NETNS": NETNS}
    cmd = ["ip", "netns", "exec", NETNS, sys.executable, *sys.argv]
    sys.exit(subprocess.run(cmd, env=env).returncode)


# -- helpers -------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_all(stack: NativeStack) -> dict[str, float]:
    return {name: rss_mb(pid) for name, pid in stack.running().items()}


def collector_counter(stack: NativeStack, prefixes: tuple[str, ...]) -> float:
    text = httpx.get(stack.urls["collector_metrics"], timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefixes):
            total += float(line.rsplit(" ", 1)[1])
    return total


FAILURES = (
    "otelcol_receiver_refused_",
    "otelcol_exporter_send_failed_",
    "otelcol_exporter_enqueue_failed_",
)


def wait_for(probe: Callable[[], bool], timeout: float, interval: float = 0.05) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(interval)
    return None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- measurements --------------------------------------------------------------------------------
def throughput(stack: NativeStack, store: Store, signal_: str) -> tuple[str, dict[str, float]]:
    """Highest rate (items/s) with nothing refused or dropped and all of it stored, and the RSS
    of each process at it. "≥ N" when the generator, not the stack, could go no faster."""
    best, rss_at_best, bound = 0, {}, ""
    url = stack.urls["otlp_http"]
    for rate in STEPS:
        tag = f"tp-{signal_}-{rate}-{time.time_ns()}"
        failures_before = collector_counter(stack, FAILURES)
        per_request = SPANS_PER_REQUEST
        interval = per_request / rate
        sent = acked = 0
        rss_peak: dict[str, float] = {}
        with httpx.Client() as client:
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < STEP_S:
                if signal_ == "traces":
                    items = [otlp_raw.span(f"{tag} {n}-{i}") for i in range(per_request)]
                    payload = otlp_raw.traces_request("bench", items)
                else:
                    records = [otlp_raw.log(f"{tag} {n}-{i}") for i in range(per_request)]
                    payload = otlp_raw.logs_request("bench", records)
                n += 1
                sent += per_request
                try:
                    if otlp_raw.post(client, url, signal_, payload).status_code == 200:
                        acked += per_request
                except httpx.HTTPError:
                    pass
                if n % 10 == 0:
                    for k, v in rss_all(stack).items():
                        rss_peak[k] = max(rss_peak.get(k, 0.0), v)
                lag = start + n * interval - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            elapsed = time.monotonic() - start
        achieved = sent / elapsed

        def stored(tag: str = tag) -> int:
            if signal_ == "traces":
                return sum(1 for _, s in store.spans() if s["name"].startswith(tag))
            return sum(1 for _, r in store.logs() if str(body(r)).startswith(tag))

        wait_for(lambda: stored() >= acked, timeout=60, interval=0.5)  # noqa: B023 (called now)
        lost = acked - stored()
        failed = collector_counter(stack, FAILURES) - failures_before
        clean = acked == sent and lost == 0 and failed == 0
        verdict = "ok" if clean else "NOT SUSTAINED"
        if clean and achieved < 0.95 * rate:
            verdict = "ok, but the generator could not offer more"
        print(
            f"  {signal_} offered {rate}/s: achieved {achieved:.0f}/s, acked {acked}/{sent},"
            f" lost {lost}, refused/dropped {failed:.0f} -> {verdict}"
        )
        if not clean:
            bound = ""
            break
        if achieved > best:
            best, rss_at_best = int(achieved), rss_peak
        if achieved < 0.95 * rate:
            bound = "≥ "  # the stack kept up with all the generator offered
            break
    else:
        bound = "≥ "  # every step passed: the ceiling is above the last one
    return f"{bound}{best}", rss_at_best


def freshness(stack: NativeStack, store: Store, samples: int = 20) -> dict[str, list[float]]:
    url = stack.urls["otlp_http"]
    prom = stack.urls["prometheus"]
    out: dict[str, list[float]] = {"traces": [], "logs": [], "metrics": []}
    with httpx.Client() as client:
        for i in range(samples):
            tag = f"fresh-{i}-{time.time_ns()}"
            t0 = time.monotonic()
            otlp_raw.post(
                client, url, "traces", otlp_raw.traces_request("bench", [otlp_raw.span(tag)])
            )
            d = wait_for(lambda: any(s["name"] == tag for _, s in store.spans()[-50:]), 30)  # noqa: B023
            if d is not None:
                out["traces"].append(time.monotonic() - t0)
            t0 = time.monotonic()
            otlp_raw.post(client, url, "logs", otlp_raw.logs_request("bench", [otlp_raw.log(tag)]))
            d = wait_for(lambda: any(body(r) == tag for _, r in store.logs()[-50:]), 30)  # noqa: B023
            if d is not None:
                out["logs"].append(time.monotonic() - t0)
            t0 = time.monotonic()
            otlp_raw.post(
                client,
                url,
                "metrics",
                otlp_raw.gauge_request("bench", "atalaia_bench_fresh", [[("tag", tag)]]),
            )
            query = f'atalaia_bench_fresh{{tag="{tag}"}}'

            def in_prometheus(q: str = query) -> bool:
                resp = client.get(f"{prom}/api/v1/query", params={"query": q}, timeout=5)
                return bool(resp.json()["data"]["result"])

            d = wait_for(in_prometheus, 30)
            if d is not None:
                out["metrics"].append(time.monotonic() - t0)
    return out


def fault_to_notification(stack: NativeStack) -> float | None:
    """A pool with no connection (DatabaseDown) -> the alert sink receives the notification."""
    url, sink = stack.urls["otlp_http"], stack.urls["alert_sink"]
    agent = f"bench-agent-{time.time_ns()}"
    point = [("db.client.connection.pool.name", "bench"), ("gen_ai.agent.name", agent)]
    stop = threading.Event()
    with httpx.Client() as client:
        payload = otlp_raw.gauge_request("bench", "db.client.connection.count", [point], 0.0)
        t0 = time.monotonic()

        def keep_sending() -> None:  # as an SDK would: every few seconds
            while not stop.is_set():
                otlp_raw.post(client, url, "metrics", payload)
                stop.wait(5)

        threading.Thread(target=keep_sending, daemon=True).start()

        def notified() -> bool:
            notes = client.get(f"{sink}/notifications", timeout=5).json()["notifications"]
            return any(
                a["labels"].get("alertname") == "DatabaseDown"
                and a["labels"].get("gen_ai_agent_name") == agent
                for n in notes
                for a in n["payload"].get("alerts", [])
            )

        d = wait_for(notified, timeout=300, interval=1.0)
        stop.set()
        return None if d is None else time.monotonic() - t0


def loss_check(stack: NativeStack, store: Store, fault: str) -> tuple[int, int]:
    """Stream logs and spans, inject the fault mid-stream; return (acknowledged, lost)."""
    tag = f"loss-{fault}-{time.time_ns()}"
    url = stack.urls["otlp_http"]
    acked: set[str] = set()
    stop = threading.Event()

    def stream() -> None:
        n = 0
        with httpx.Client() as client:
            while not stop.is_set():
                keys = [f"{n}-{i}" for i in range(20)]
                n += 1
                for sig, payload in (
                    (
                        "logs",
                        otlp_raw.logs_request("bench", [otlp_raw.log(f"{tag} {k}") for k in keys]),
                    ),
                    (
                        "traces",
                        otlp_raw.traces_request(
                            "bench", [otlp_raw.span(f"{tag} {k}") for k in keys]
                        ),
                    ),
                ):
                    try:
                        if otlp_raw.post(client, url, sig, payload).status_code == 200:
                            acked.update(f"{sig}:{k}" for k in keys)
                    except httpx.HTTPError:
                        pass
                time.sleep(0.02)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    time.sleep(3)
    if fault == "collector kill -9":
        pid = stack.running()["otel-collector"]
        os.kill(pid, signal.SIGKILL)
        ports = BY_NAME["otel-collector"].ports
        wait_for(
            lambda: (
                "otel-collector" not in stack.running() and not any(port_in_use(p) for p in ports)
            ),
            10,
        )
        stack.start(["otel-collector"])
        stack.wait_ready(["otel-collector"], timeout=60)
    else:
        stack.restart("log-trace-store")
    time.sleep(3)
    stop.set()
    sender.join(timeout=30)

    def delivered() -> set[str]:
        got = {
            f"logs:{str(body(r)).rsplit(' ', 1)[-1]}"
            for _, r in store.logs()
            if str(body(r)).startswith(tag)
        }
        got |= {
            f"traces:{s['name'].rsplit(' ', 1)[-1]}"
            for _, s in store.spans()
            if s["name"].startswith(tag)
        }
        return got

    wait_for(lambda: acked <= delivered(), timeout=120, interval=1.0)
    return len(acked), len(acked - delivered())


# -- report --------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{int(mem) / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    in_netns()
    host = machine()
    print(f"==> stack bench in network namespace {NETNS} on {host['cpu']}, load {host['load']}")
    state = Path(tempfile.mkdtemp(prefix="atalaia-bench-"))
    stack = NativeStack(state)
    rows: list[tuple[str, str]] = []
    try:
        t0 = time.monotonic()
        stack.up(timeout=120)
        cold = time.monotonic() - t0
        rows.append(("cold start to ready (all five processes)", f"{cold:.1f} s"))
        store = Store(store_files(stack)["logs"].parent)
        time.sleep(5)
        idle = rss_all(stack)
        print("==> freshness")
        fresh = freshness(stack, store)
        for sig, label in (
            ("traces", "spans at the store"),
            ("logs", "log records at the store"),
            ("metrics", "a sample in Prometheus"),
        ):
            v = fresh[sig]
            rows.append(
                (
                    f"freshness, {label}: p50 / p95 ({len(v)} samples)",
                    f"{pct(v, 0.5) * 1000:.0f} / {pct(v, 0.95) * 1000:.0f} ms",
                )
            )
        print("==> throughput")
        spans, rss_spans = throughput(stack, store, "traces")
        logs, rss_logs = throughput(stack, store, "logs")
        rows.append(("sustained spans/s, none refused or dropped (10 s steps)", spans))
        rows.append(("sustained log records/s, none refused or dropped", logs))
        for name in sorted(idle):
            load = max(rss_spans.get(name, 0.0), rss_logs.get(name, 0.0))
            rows.append((f"RSS {name}: idle / at that load", f"{idle[name]:.0f} / {load:.0f} MB"))
        print("==> loss checks")
        for fault in ("log and trace store restart", "collector kill -9"):
            acked, lost = loss_check(stack, store, fault)
            rows.append((f"lost on a {fault} mid-stream", f"{lost} of {acked} acknowledged"))
        print("==> fault -> notification (DatabaseDown; `for: 1m`, group_wait 30 s)")
        d = fault_to_notification(stack)
        rows.append(
            (
                "fault -> notification at the alert sink",
                "not within 300 s" if d is None else f"{d:.0f} s",
            )
        )
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)
    header = f"| {'measure':<{width}} | result |\n|{'-' * (width + 2)}|--------|"
    print(header + "\n" + table)
    if not args.no_write:
        write_doc(args.out, host, header + "\n" + table)
    return 0


def write_doc(path: Path, host: dict[str, str], table: str) -> None:
    text = f"""# Benchmarks

`make bench` measures two things: the library's overhead per LLM call next to the raw SDK and the
other instrumentation libraries (`bench/bench_library.py`, results in [library.md](library.md))
and the native stack under load (`bench/bench_stack.py`, this page). Neither is part of `make
test`. The stack bench starts its own native stack (collector, log and trace store, Prometheus,
Alertmanager, alert sink; Loki, Tempo and Grafana exist only as images and are not measured) in a
network namespace of its own, sends OTLP/HTTP protobuf at it and reads back what arrived. The load
generator is Python on the same machine, so it competes with the stack for the CPU: the rates are
a floor for the stack, not its ceiling.

- **sustained rate**: offered in 10 s steps ({", ".join(str(s) for s in STEPS)} items/s, requests of
  {SPANS_PER_REQUEST}); the highest step at which every request was answered 200, the collector
  refused and dropped nothing (`otelcol_receiver_refused_*`, `otelcol_exporter_send_failed_*`,
  `_enqueue_failed_*` unchanged), everything reached the store, and at least 95 % of the offered
  rate went out. "≥ N": the stack took everything the generator (one Python process, on the
  same cores) could offer, so its own ceiling is higher.
- **freshness**: from sending one span, log record or sample to seeing it where a user would
  query it (the store's files for spans and logs, Prometheus's query API for the sample). The
  exporters batch in their disk queues and flush after 1 s at the latest.
- **loss checks**: a stream of spans and log records; mid-stream the log and trace store
  restarts, or the collector is killed with SIGKILL and started again on the same disk queue;
  everything the collector answered 200 must arrive.
- **fault -> notification**: an agent reports a connection pool with no connections
  (`db.client.connection.count` 0, what `make fault FAULT=db_down` does); DatabaseDown has
  `for: 1m`, Prometheus evaluates every 15 s, Alertmanager waits `group_wait` 30 s.

## Last run

Machine: {host["cpu"]}, {host["memory"]} RAM, {host["os"]}, Python {host["python"]}; load average
before the run {host["load"]} (1, 5, 15 min), on a machine shared with other work.

{table}
"""
    path.write_text(text)
    print(f"==> wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
