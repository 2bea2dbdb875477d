"""The native stack under load: what it sustains, how fresh the data is, what it costs, and that
nothing acknowledged is lost. Part of `make bench`, not of `make test`.

    make bench     # as root: runs this inside its own network namespace (atalaia-bench)

It starts its own native stack (collector, log and trace store, Prometheus, Alertmanager, alert
sink; Loki, Tempo and Grafana are images only and never run here) in a fresh state directory,
inside the network namespace `atalaia-bench` (created if missing), so its fixed ports never meet
the e2e suite's. Load is OTLP/HTTP protobuf built by tools/otlp_raw.py, acknowledged by HTTP 200.

Measures: cold start to ready; RSS of each process idle and at load; the highest offered rate of
spans/s, log records/s and metric points/s (steps) with nothing refused (non-200, receiver
refusals) or dropped (exporter send/enqueue failures) and everything where a user queries it,
and the collector's CPU time at that rate (items per CPU-second: the per-core figures of
docs/scale.md); the same for spans through the agent tier (otel-collector/scale/agent.yaml, a
second collector in front of the first); freshness (emit -> queryable: spans and logs at the
store's files, a metric sample in Prometheus) p50/p95; fault -> notification (DatabaseDown: a
pool reports 0 connections -> the alert sink has the notification); losses on a restart of the
log and trace store and on a kill -9 of the collector mid-stream; Prometheus's memory per active
series and the collector's per derived series. Prints one table and writes docs/benchmarks.md
with the machine it ran on.
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
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.backends import Store, body  # noqa: E402
from tools import otlp_raw  # noqa: E402
from tools.native_stack import (  # noqa: E402
    BY_NAME,
    NativeStack,
    is_ready,
    port_in_use,
    store_files,
)
from tools.upstream import components  # noqa: E402

NETNS = "atalaia-bench"
PER_REQUEST = 200  # spans, log records or metric points per OTLP request
STEPS = (1000, 2500, 5000, 10000, 20000)  # offered items per second
STEP_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
BY_SIGNAL = {"traces": "spans", "logs": "log records", "metrics": "metric points"}
# What an LLM call span carries (docs/telemetry.md, "chat {gen_ai.request.model}"), so that the
# pipeline's processors (limits, normalise, redaction) and the derived metrics have their work
# to do, and what an agent's log record carries besides its message. gen_ai.agent.name is added
# per item.
LLM_CALL: list[otlp_raw.Attr] = [
    ("gen_ai.operation.name", "chat"),
    ("gen_ai.provider.name", "openai"),
    ("gen_ai.request.model", "gpt-4o-mini"),
    ("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
    ("gen_ai.response.id", "chatcmpl-9f2c7e1b4d5a6c3e8b0a1f2d3c4b5a69"),
    ("gen_ai.response.finish_reasons", "stop"),
    ("gen_ai.usage.input_tokens", 812),
    ("gen_ai.usage.output_tokens", 164),
    ("gen_ai.usage.cache_read.input_tokens", 512),
    ("gen_ai.conversation.id", "conv-6b1e4f0a-2d7c-4e9b-8a35-1c0f9d2e7b64"),
    ("atalaia.department", "research"),
    ("atalaia.llm.cost.usd", 0.000221),
]
LOG_ATTRS: list[otlp_raw.Attr] = [("atalaia.department", "research"), ("logger.name", "agent")]
AGENTS = 10  # the throughput steps' spans and logs come from this many agent names
# Agent names for the collector's memory per derived series: each makes three token series (input,
# output, cache_read), and a derived metric keeps at most 5000 label sets (config.yaml).
CAP_AGENTS = 1500

# The agent tier, a second collector: its own ports (the native collector has 4317/4318/8888/13133).
AGENT_OTLP_HTTP, AGENT_METRICS, AGENT_HEALTH = 5318, 8889, 13135


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


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used, user + system (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def settle(pid: int, timeout: float = 60.0) -> None:
    """Wait until the process uses less than 5 % of a core over a second: its queues are empty."""
    end = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < end:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - last < 0.05:
            return
        last = now


def metric_sum(url: str, prefixes: tuple[str, ...]) -> float:
    """The sum of every sample whose line starts with one of `prefixes`, at a /metrics URL."""
    text = httpx.get(url, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefixes):
            total += float(line.rsplit(" ", 1)[1])
    return total


def collector_counter(stack: NativeStack, prefixes: tuple[str, ...]) -> float:
    return metric_sum(stack.urls["collector_metrics"], prefixes)


def promql(stack: NativeStack, query: str) -> float:
    """The value of a PromQL query that returns one number (0 when it returns nothing)."""
    resp = httpx.get(
        f"{stack.urls['prometheus']}/api/v1/query", params={"query": query}, timeout=30
    )
    result = resp.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


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
@dataclass(frozen=True)
class Load:
    """One kind of load for the throughput steps."""

    name: str  # as printed: spans, log records, metric points
    signal: str  # the OTLP/HTTP path: traces, logs or metrics
    url: str  # the OTLP/HTTP endpoint it is sent to
    request: Callable[[str, int], bytes]  # (step tag, request number) -> PER_REQUEST items
    arrived: Callable[[str], int]  # step tag -> how many of its items are where a user queries
    pid: int  # the collector whose CPU time is counted
    self_metrics: tuple[str, ...]  # /metrics of every collector on the path (refusals, drops)


@dataclass(frozen=True)
class Throughput:
    rate: str  # the highest clean rate, items/s; "≥ N" when the generator was the limit
    per_cpu_s: float  # items per CPU-second of the collector at that rate (0: no clean step)
    rss: dict[str, float]  # peak RSS of each process of the stack at that rate


def throughput(stack: NativeStack, load: Load) -> Throughput:
    """Highest rate (items/s) with nothing refused or dropped and all of it arrived, the items per
    collector CPU-second at it (counted from the step's start until the collector is idle again,
    its queues drained), and the RSS of each process at it."""
    best, per_cpu_s, rss_at_best, bound = 0, 0.0, {}, ""
    for rate in STEPS:
        tag = f"tp-{load.signal}-{rate}-{time.time_ns()}"
        failures_before = sum(metric_sum(u, FAILURES) for u in load.self_metrics)
        cpu_before = cpu_seconds(load.pid)
        interval = PER_REQUEST / rate
        sent = acked = 0
        rss_peak: dict[str, float] = {}
        with httpx.Client() as client:
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < STEP_S:
                payload = load.request(tag, n)
                n += 1
                sent += PER_REQUEST
                try:
                    if otlp_raw.post(client, load.url, load.signal, payload).status_code == 200:
                        acked += PER_REQUEST
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
        wait_for(lambda: load.arrived(tag) >= acked, timeout=60, interval=0.5)  # noqa: B023
        lost = acked - load.arrived(tag)
        settle(load.pid)
        cpu = cpu_seconds(load.pid) - cpu_before
        failed = sum(metric_sum(u, FAILURES) for u in load.self_metrics) - failures_before
        clean = acked == sent and lost == 0 and failed == 0
        verdict = "ok" if clean else "NOT SUSTAINED"
        if clean and achieved < 0.95 * rate:
            verdict = "ok, but the generator could not offer more"
        print(
            f"  {load.name} offered {rate}/s: achieved {achieved:.0f}/s, acked {acked}/{sent},"
            f" lost {lost}, refused/dropped {failed:.0f}, collector CPU {cpu:.1f} s"
            f" ({acked / max(cpu, 0.01):.0f} per CPU-s) -> {verdict}"
        )
        if not clean:
            bound = ""
            break
        if achieved > best:
            best, rss_at_best = round(achieved), rss_peak
            per_cpu_s = acked / cpu if cpu > 0 else 0.0
        if achieved < 0.95 * rate:
            bound = "≥ "  # the stack kept up with all the generator offered
            break
    else:
        bound = "≥ "  # every step passed: the ceiling is above the last one
    return Throughput(f"{bound}{best}", per_cpu_s, rss_at_best)


class Millis:
    """Sample times, each a millisecond after the last at least: Prometheus keeps one sample per
    series and millisecond, and each metrics request carries one sample of each of its series."""

    def __init__(self) -> None:
        self.last = 0

    def next_ns(self) -> int:
        self.last = max(time.time_ns() // 1_000_000, self.last + 1)
        return self.last * 1_000_000


def loads(stack: NativeStack, store: Store) -> dict[str, Load]:
    """Spans, log records and metric points into the collector, as the throughput steps send them.

    Spans and log records are counted at the store's files; metric points in Prometheus: each
    step writes PER_REQUEST series of its own (label i), one sample per request, and
    count_over_time over them must equal the points acknowledged."""
    url, pid = stack.urls["otlp_http"], stack.running()["otel-collector"]
    self_metrics = (stack.urls["collector_metrics"],)
    millis = Millis()

    def agent(i: int) -> otlp_raw.Attr:
        return ("gen_ai.agent.name", f"bench-agent-{i % AGENTS}")

    def spans(tag: str, n: int) -> bytes:
        items = [otlp_raw.span(f"{tag} {n}-{i}", [*LLM_CALL, agent(i)]) for i in range(PER_REQUEST)]
        return otlp_raw.traces_request("bench", items)

    def logs(tag: str, n: int) -> bytes:
        items = [otlp_raw.log(f"{tag} {n}-{i}", [*LOG_ATTRS, agent(i)]) for i in range(PER_REQUEST)]
        return otlp_raw.logs_request("bench", items)

    def points(tag: str, n: int) -> bytes:
        series: list[list[otlp_raw.Attr]] = [[("tag", tag), ("i", i)] for i in range(PER_REQUEST)]
        return otlp_raw.gauge_request(
            "bench", "atalaia_bench_points", series, float(n), millis.next_ns()
        )

    def spans_stored(tag: str) -> int:
        return sum(1 for _, s in store.spans() if s["name"].startswith(tag))

    def logs_stored(tag: str) -> int:
        return sum(1 for _, r in store.logs() if str(body(r)).startswith(tag))

    def samples(tag: str) -> int:
        return int(promql(stack, f'sum(count_over_time(atalaia_bench_points{{tag="{tag}"}}[15m]))'))

    return {
        "traces": Load("spans", "traces", url, spans, spans_stored, pid, self_metrics),
        "logs": Load("log records", "logs", url, logs, logs_stored, pid, self_metrics),
        "metrics": Load("metric points", "metrics", url, points, samples, pid, self_metrics),
    }


def start_agent_tier(stack: NativeStack, state: Path) -> subprocess.Popen[bytes]:
    """otel-collector/scale/agent.yaml run by a second collector (the same binary) in front of
    the native one, which stands for the gateway. Changed from the file, in a copy: its own ports
    and queue directory, and the loadbalancing exporters' DNS resolver (compose's otel-gateway)
    replaced by the static one, with the native collector's OTLP gRPC as the only gateway."""
    config = yaml.safe_load((REPO / "otel-collector" / "scale" / "agent.yaml").read_text())
    queue = state / "agent-tier" / "file_storage"
    config["extensions"]["health_check"]["endpoint"] = f"127.0.0.1:{AGENT_HEALTH}"
    config["extensions"]["file_storage"] |= {
        "directory": str(queue),
        "compaction": {
            **config["extensions"]["file_storage"]["compaction"],
            "directory": str(queue),
        },
    }
    config["receivers"]["otlp"]["protocols"] = {
        "http": {"endpoint": f"127.0.0.1:{AGENT_OTLP_HTTP}"}
    }
    for name, exporter in config["exporters"].items():
        config["exporters"][name] = {
            **exporter,
            "resolver": {"static": {"hostnames": [stack.urls["otlp_grpc"].split("//")[1]]}},
        }
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    reader["prometheus"] |= {"host": "127.0.0.1", "port": AGENT_METRICS}
    path = state / "agent-tier" / "agent.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = (state / "agent-tier" / "agent-tier.log").open("ab")
    binary = str(components()["otelcol"].binary("otelcol-atalaia"))
    proc = subprocess.Popen(
        [binary, f"--config={path}"], stdout=log, stderr=subprocess.STDOUT, cwd=path.parent
    )
    if wait_for(lambda: is_ready(f"http://127.0.0.1:{AGENT_HEALTH}/"), 60, 0.25) is None:
        proc.kill()
        tail = (state / "agent-tier" / "agent-tier.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the agent tier did not start; its log ends with:\n{tail}")
    return proc


def prometheus_memory_per_series(
    stack: NativeStack, series: int = 200_000, batch: int = 2000
) -> tuple[int, float]:
    """Push `series` new series (two samples each, a minute apart in sending) through the
    collector; return how many active series Prometheus's head gained and how many MB its RSS
    grew by. A first batch of other series warms the path up before the baseline is taken."""
    url, pid = stack.urls["otlp_http"], stack.running()["prometheus"]
    head = f"{stack.urls['prometheus']}/metrics"
    tag = f"cap-{time.time_ns()}"

    def push(prefix: str, first: int, last: int) -> None:
        with httpx.Client() as client:
            for lo in range(first, last, batch):
                labels = [
                    [("series", f"{prefix}{i}"), ("pool", f"pool-{i % 100}"), ("tag", tag)]
                    for i in range(lo, min(lo + batch, last))
                ]
                payload = otlp_raw.gauge_request("bench", "atalaia_bench_series", labels)
                resp = otlp_raw.post(client, url, "metrics", payload)
                resp.raise_for_status()

    def head_series() -> float:
        return metric_sum(head, ("prometheus_tsdb_head_series ",))

    push("warm-", 0, batch)
    wait_for(lambda: promql(stack, f'count(atalaia_bench_series{{tag="{tag}"}})') >= batch, 60)
    time.sleep(15)
    before, rss_before = head_series(), rss_mb(pid)
    for _ in range(2):  # a second sample each: every series has a head chunk in use
        push("s-", 0, series)
        wait_for(lambda: head_series() >= before + series, 120, 0.5)
    time.sleep(15)  # Prometheus scrapes itself and evaluates its rules meanwhile, as it would
    return int(head_series() - before), rss_mb(pid) - rss_before


def collector_memory_per_series(stack: NativeStack, agents: int = CAP_AGENTS) -> tuple[int, float]:
    """Chat spans (with token usage) from `agents` distinct gen_ai.agent.name values: each makes
    its own derived series (calls, duration, tokens; spanmetrics' calls and duration). Return
    how many derived series Prometheus received for them and how many MB the collector's RSS
    grew by. One agent's spans first warm the path up and say how many series an agent makes."""
    url, pid = stack.urls["otlp_http"], stack.running()["otel-collector"]
    prefix = f"bench-cap-{time.time_ns()}-"

    def send(names: list[str]) -> None:
        with httpx.Client() as client:
            for lo in range(0, len(names), PER_REQUEST):
                spans = [
                    otlp_raw.span("chat gpt-4o-mini", [*LLM_CALL, ("gen_ai.agent.name", name)])
                    for name in names[lo : lo + PER_REQUEST]
                ]
                payload = otlp_raw.traces_request("bench", spans)
                otlp_raw.post(client, url, "traces", payload).raise_for_status()

    def derived(agent_regex: str) -> float:
        return promql(
            stack, f'count({{__name__=~"atalaia_.*", gen_ai_agent_name=~"{agent_regex}"}})'
        )

    send([f"{prefix}warm"] * PER_REQUEST)
    warm = f"{prefix}warm"
    wait_for(
        lambda: promql(stack, f'count(atalaia_span_calls_total{{gen_ai_agent_name="{warm}"}})') > 0,
        90,
        1.0,
    )
    time.sleep(20)  # spanmetrics flushes every 15 s: every derived metric of that agent is in
    per_agent = derived(warm)
    settle(pid)
    rss_before = rss_mb(pid)
    send([f"{prefix}{i}" for i in range(agents)])
    many = f"{prefix}[0-9]+"
    wait_for(lambda: derived(many) >= per_agent * agents, 120, 1.0)
    time.sleep(20)
    settle(pid)
    return int(derived(many)), rss_mb(pid) - rss_before


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
        collector = stack.running()["otel-collector"]
        cpu_idle = cpu_seconds(collector)
        time.sleep(5)
        cpu_idle = (cpu_seconds(collector) - cpu_idle) / 5
        idle = rss_all(stack)
        rows.append(
            ("collector CPU at idle (host metrics, self-metrics)", f"{cpu_idle:.1%} of a core")
        )
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
        into_collector = loads(stack, store)
        results = {sig: throughput(stack, load) for sig, load in into_collector.items()}
        for sig, figure in (("traces", "s_core"), ("logs", "l_core"), ("metrics", "p_core")):
            name, r = BY_SIGNAL[sig], results[sig]
            rows.append((f"sustained {name}/s, none refused or dropped (10 s steps)", r.rate))
            rows.append(
                (f"{name} per collector CPU-second at that rate ({figure})", f"{r.per_cpu_s:.0f}")
            )
        for name in sorted(idle):
            load = max(r.rss.get(name, 0.0) for r in results.values())
            rows.append((f"RSS {name}: idle / at that load", f"{idle[name]:.0f} / {load:.0f} MB"))
        print("==> the agent tier (otel-collector/scale/agent.yaml) in front of the collector")
        agent = start_agent_tier(stack, state)
        try:
            via_agent = throughput(
                stack,
                replace(
                    into_collector["traces"],
                    name="spans via the agent tier",
                    url=f"http://127.0.0.1:{AGENT_OTLP_HTTP}",
                    pid=agent.pid,
                    self_metrics=(
                        stack.urls["collector_metrics"],
                        f"http://127.0.0.1:{AGENT_METRICS}/metrics",
                    ),
                ),
            )
        finally:
            agent.terminate()
            agent.wait(timeout=30)
        rows.append(("sustained spans/s through the agent tier to the store", via_agent.rate))
        rows.append(
            ("spans per agent-tier CPU-second at that rate (r_core)", f"{via_agent.per_cpu_s:.0f}")
        )
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
        print("==> memory per series (Prometheus restarted first: RSS from a fresh process)")
        stack.restart("prometheus")
        series, mb = prometheus_memory_per_series(stack)
        rows.append(
            (
                f"Prometheus active series per GiB of RSS (h_GiB; {series} new series)",
                f"{series / (mb / 1024):.0f} ({mb:.0f} MB more RSS,"
                f" {mb * 2**20 / series:.0f} B a series)",
            )
        )
        print("==> memory per derived series (the collector restarted first)")
        stack.restart("otel-collector")
        derived, mb = collector_memory_per_series(stack)
        rows.append(
            (
                f"collector RSS per derived series (b_stream; {derived} series,"
                f" {CAP_AGENTS} agents)",
                f"{mb * 2**20 / derived:.0f} B ({mb:.0f} MB more RSS)",
            )
        )
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
    rows.append(("bench run time", f"{(time.monotonic() - t0) / 60:.0f} min"))
    host["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"==> load average after the run {host['load_after']}")
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
  {PER_REQUEST}); the highest step at which every request was answered 200, the collector
  refused and dropped nothing (`otelcol_receiver_refused_*`, `otelcol_exporter_send_failed_*`,
  `_enqueue_failed_*` unchanged), everything arrived, and at least 95 % of the offered rate went
  out. Spans are LLM calls with the 13 attributes the library's chat spans carry (operation,
  provider, models, response id, token counts, conversation, department, cost, agent), log
  records have a one-line message and three attributes, both from {AGENTS} agent names; metric
  points are gauges with two labels. Spans and log records arrive at the store's files (where
  Tempo and Loki would have them); metric points in Prometheus: each step writes {PER_REQUEST}
  series of its own, one sample of each per request, and `count_over_time` over them must equal
  the points acknowledged. "≥ N": the stack took everything the generator (one Python process,
  on the same cores) could offer, so its own ceiling is higher.
- **per collector CPU-second** (`s_core`, `l_core`, `p_core` in [scale.md](scale.md#capacity-math)):
  the items acknowledged at the best clean step divided by the CPU time (user + system, from
  `/proc/<pid>/stat`) the collector process used from the step's start until it was idle again
  (under 5 % of a core for a second: its queues drained, the derived metrics of those spans and
  logs exported). One CPU-second is one core busy for a second, so this is items/s per core of
  the full `config.yaml` pipeline, whatever the load generator and the other processes took of
  the same cores. It includes the collector's idle work (host metrics, its self-metrics scraped
  every 15 s; the row "collector CPU at idle") and everything the collector did for those items:
  receiving, the disk queues, the export to the store or Prometheus and, for spans and logs, the
  derived-metrics path. Not counted: Prometheus and the store, which are other processes.
- **agent tier** (`r_core`): `otel-collector/scale/agent.yaml` run by a second collector process
  (the same binary) in front of the native one, which stands in for the gateway: the same file
  with its own ports and queue directory and the loadbalancing exporters' DNS resolver replaced by
  the static one (the native collector's OTLP gRPC, the only gateway). Spans go in at the agent
  tier and must arrive at the store through both collectors; `r_core` is spans per CPU-second of
  the agent tier process. With one gateway the routing still hashes every trace id, but there is
  only one destination to send to.
- **freshness**: from sending one span, log record or sample to seeing it where a user would
  query it (the store's files for spans and logs, Prometheus's query API for the sample). The
  exporters batch in their disk queues and flush after 1 s at the latest.
- **loss checks**: a stream of spans and log records; mid-stream the log and trace store
  restarts, or the collector is killed with SIGKILL and started again on the same disk queue;
  everything the collector answered 200 must arrive.
- **fault -> notification**: an agent reports a connection pool with no connections
  (`db.client.connection.count` 0, what `make fault FAULT=db_down` does); DatabaseDown has
  `for: 1m`, Prometheus evaluates every 15 s, Alertmanager waits `group_wait` 30 s.
- **Prometheus memory per series** (`h_GiB`): Prometheus is restarted (so its RSS starts from a
  fresh process, the earlier steps' garbage gone), one batch of series warms the path up, then
  new series are pushed as OTLP gauges through the collector (what agents do; the collector's
  limits, `otel-collector/limits.yaml`, cut only label values over 1 KiB and data points with
  more than 32 attributes, which these are not), two samples each, in requests of 2000, seven
  labels a series (name, job, service name and namespace, three of their own).
  `h_GiB` is the growth of `prometheus_tsdb_head_series` divided by the growth of Prometheus's
  RSS in GiB, 15 s after the last push. This is head memory (the last two hours, where every
  active series lives), with Go's garbage-collection headroom in it as in any RSS; series with
  many samples per chunk, more labels or longer label values take more.
- **collector memory per derived series** (`b_stream`): the collector is restarted, one agent's
  chat spans (the same LLM call spans) warm the derived-metrics path up and say how many series
  one agent makes, then one chat span from each of {CAP_AGENTS} other agent names
  (`gen_ai.agent.name`; with three token types each they stay under the 5000 label sets a
  derived metric may have). `b_stream` is the growth of the collector's RSS divided by the
  derived series Prometheus received for those agents
  (`count({{__name__=~"atalaia_.*", gen_ai_agent_name=~"..."}})`: LLM calls, their duration
  buckets, tokens by type, spanmetrics' calls and duration buckets), 20 s after the last of them
  arrived. Per agent it is `b_stream` times the series one agent makes (the row's count divided
  by the agents).

## Last run

Machine: {host["cpu"]}, {host["memory"]} RAM, {host["os"]}, Python {host["python"]}; load average
before the run {host["load"]} and after it {host["load_after"]} (1, 5, 15 min), on a machine
shared with other work. One run.

{table}
"""
    path.write_text(text)
    print(f"==> wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
