"""The `native_stack` session fixture: the real stack as local processes, for every e2e test.

    def test_something(native_stack, store):
        native_stack.urls["prometheus"]   # http://127.0.0.1:9090
        native_stack.urls["otlp_grpc"]    # http://127.0.0.1:4317 (also otlp_http, alertmanager,
                                          # collector_metrics, alert_sink ...)
        store.spans(), store.logs()       # what the collector sent to Loki and Tempo
        native_stack.restart("log-trace-store")  # stop cleanly, start again, wait ready

It starts the collector, Prometheus, Alertmanager, the native log and trace store (where Loki and
Tempo would listen) and the alert sink from the repo's configs in a fresh state directory, waits
until all are ready and stops them at the end of the session. The ports are fixed (the configs'
own), so only one stack can run per network namespace: sessions in the same one take turns
through a lock file (another namespace, `ip netns exec`, has ports of its own).

The `fleet_run` session fixture (and `fleet_ran`, its start time) runs the demo fleet against
that stack once for every test that reads what a fleet leaves behind: a baseline, two single
faults, two heartbeats the orchestrator's API refuses (503), a tour of faults, the faults
cleared. The fleet then keeps running, fault-free, until the session ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.backends import Prometheus, Store, eventually
from tests.e2e.otlp import Telemetry
from tools.native_stack import NativeStack, StackError, store_files


def _network_namespace() -> str:
    """This process's network namespace: the fixed ports are per namespace, so is the lock."""
    try:
        return str(os.stat("/proc/self/ns/net").st_ino)
    except OSError:
        return "default"


LOCK = Path(tempfile.gettempdir()) / f"atalaia-native-stack-{_network_namespace()}.lock"
# Modules that need a stack nobody else sends to: they run before the demo fleet starts.
QUIET_FIRST = ("test_any_emitter.py",)
# Modules that stop the session's stack for a while (to run another on its ports): they run last.
LAST = ("test_backup.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def order(item: pytest.Item) -> int:
        name = Path(str(item.path)).name
        return 0 if name in QUIET_FIRST else 2 if name in LAST else 1

    items.sort(key=order)


LOCK_WAIT = float(os.environ.get("ATALAIA_E2E_LOCK_WAIT", "900"))


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """One native stack per machine: wait (up to LOCK_WAIT s) for another session to finish."""
    with open(LOCK, "a") as fh:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another e2e session held {LOCK} for {LOCK_WAIT:.0f}s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    with machine_lock():
        stack = NativeStack(tmp_path_factory.mktemp("native-stack"))
        try:
            seconds = stack.up(timeout=120)
        except StackError as e:
            pytest.fail(f"the native stack did not come up: {e}", pytrace=False)
        print(f"\nnative stack ready in {seconds:.1f}s in {stack.state_dir}")
        try:
            yield stack
        finally:
            killed = stack.stop()
            if killed:
                print(f"\nnative stack: killed after the stop deadline: {', '.join(killed)}")


@pytest.fixture(scope="session")
def prometheus(native_stack: NativeStack) -> Prometheus:
    return Prometheus(native_stack.urls["prometheus"])


@pytest.fixture(scope="session")
def store(native_stack: NativeStack) -> Store:
    return Store(store_files(native_stack)["logs"].parent)


@pytest.fixture
def telemetry(native_stack: NativeStack) -> Iterator[Telemetry]:
    """SDK pipelines with a service.name of their own, shut down after the test."""
    t = Telemetry(native_stack.urls["otlp_grpc"], native_stack.urls["otlp_http"])
    yield t
    t.shutdown()


# --- the demo fleet -------------------------------------------------------------------------
# The tour switches on the faults whose signals a healthy fleet never emits (demo_agents/README.md):
# slow_llm (atalaia_timeouts_total, task splits, fallback depth, SLA misses), llm_errors
# (`error_type` on GenAI durations, LLM retries), retry_loop (validation retries, orchestrator
# re-dispatches), agent_crash (restarts) and crm_down (atalaia_integration_errors_total).
# db_down stays out: tests/e2e/test_alert_delivery.py switches it on by itself, and an earlier
# DatabaseDown would hold the next notification of its Alertmanager group for group_interval.
#
# Before the tour, two single faults with known start times for `atalaia explain`
# (tests/e2e/test_explain.py): cpu_hog on Helix (Sigma's lookups wait for Helix), then slow_llm
# on Sigma's model. The quiet start is their baseline and, in its second half, the no-fault case.
FLEET_FAULTS = ("slow_llm", "llm_errors", "retry_loop", "agent_crash", "crm_down")
FLEET_LOAD = 60.0  # tasks per minute
FLEET_SEED = 42
BASELINE_S = float(os.environ.get("ATALAIA_E2E_BASELINE_S", "130"))
SINGLE_FAULT_S = float(os.environ.get("ATALAIA_E2E_SINGLE_FAULT_S", "45"))
SETTLE_S = 20.0  # after cpu_hog: Sigma's slow tasks finish, Helix's CPU rate falls back
FAULT_S = float(os.environ.get("ATALAIA_E2E_FAULT_S", "120"))
CLEARED_S = float(os.environ.get("ATALAIA_E2E_CLEARED_S", "30"))
WARMUP_S = 20.0  # processes starting up: not part of any baseline
# Before the tour the orchestrator's API fails for real: another process holds the write lock of
# its heartbeat database past SQLite's busy timeout (5 s), so a heartbeat is refused with 503, the
# server error the availability SLO counts (docs/alerting.md). Twice, the second once Prometheus
# has the first: the first sample of a new counter has nothing before it, so only an increase
# after it shows in rate() and in the SLI. The agents' heartbeats in those seconds are refused
# too, well within the supervisor's 20 s; a heartbeat is not a task, so no task-level SLI moves.
# Before the tour, not after it: what reads the fleet "a minute ago" (tests/e2e/test_insight_cli.py)
# has both refusals in Prometheus by then.
REFUSED_AGENT = "Helix"  # the heartbeat the test sends in its name
REFUSED_SERIES = (
    'http_server_request_duration_seconds_count{service_name="orchestrator", '
    'http_route="/agents/{name}/heartbeat", http_response_status_code="503"}'
)
EXPORT_DEADLINE_S = 90.0  # the orchestrator exports every 15 s; the collector retries


@dataclass(frozen=True)
class FleetRun:
    started: float  # Unix time the fleet was started
    toured: float  # Unix time the tour ended (faults cleared, CLEARED_S later)
    orchestrator: str  # http://127.0.0.1:8000: faults, load, health
    faults: tuple[str, ...]  # what the tour switched on
    logs: Path  # one log file per fleet process
    # (start, end) Unix times: "baseline" and "calm" (the quiet start, halved after the warm-up),
    # "cpu_hog" and "slow_llm" (each from the moment the fault was switched on), "tour" (every
    # fault of FLEET_FAULTS at once), "refused" (the two refused heartbeats, before the tour).
    phases: dict[str, tuple[float, float]]


def fleet_wait(seconds: float, orchestrator: str) -> None:
    """Let the fleet run, checking every 5 s that the orchestrator stays up while we wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = httpx.get(f"{orchestrator}/health", timeout=5)
        assert health.status_code == 200, f"the orchestrator stopped answering: {health.text}"
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))


def refuse_a_heartbeat(state_dir: Path, orchestrator: str) -> None:
    """Hold the heartbeat database's write lock while a heartbeat is sent: the API answers 503."""
    from demo_agents import fleet_config

    db = sqlite3.connect(fleet_config.heartbeat_db(state_dir), isolation_level=None)
    with contextlib.closing(db):
        db.execute("BEGIN IMMEDIATE")  # other writers wait; the supervisor still reads (WAL)
        try:
            url = f"{orchestrator}/agents/{REFUSED_AGENT}/heartbeat"
            refused = httpx.put(url, timeout=30)
        finally:
            db.execute("ROLLBACK")
    assert refused.status_code == 503, f"heartbeat with the database locked: {refused.text}"


def refuse_heartbeats(state_dir: Path, orchestrator: str, prometheus: Prometheus) -> None:
    refuse_a_heartbeat(state_dir, orchestrator)
    eventually(
        lambda: prometheus.query(REFUSED_SERIES),
        timeout=EXPORT_DEADLINE_S,
        what="the refused heartbeat (503) in Prometheus",
        interval=2,
    )
    refuse_a_heartbeat(state_dir, orchestrator)


@pytest.fixture(scope="session")
def fleet_run(
    native_stack: NativeStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetRun]:
    """The demo fleet against the native stack: baseline, fault tour, faults cleared.

    Runs once per session; the fleet keeps running (no faults) until the session ends and is
    then stopped with `demo_agents.launcher.stop` (each process group, SIGTERM first).
    """
    from demo_agents import fleet_config, launcher

    for port in (fleet_config.ORCHESTRATOR_PORT, fleet_config.MOCK_LLM_PORT):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:  # its health checks would answer for us
                pytest.fail(f"port {port} is taken: another demo fleet is running; stop it first")
    with pytest.MonkeyPatch.context() as env:
        # A state directory of our own: `stop` below can only ever stop the fleet started here.
        state_dir = tmp_path_factory.mktemp("demo-fleet")
        env.setenv("ATALAIA_DEMO_STATE_DIR", str(state_dir))
        env.delenv("ATALAIA_DEMO_LOGS", raising=False)  # one log file per process, in state_dir
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", native_stack.urls["otlp_http"])
        started = time.time()
        try:
            state = launcher.run(launcher.Options(load=FLEET_LOAD, seed=FLEET_SEED))
        except launcher.FleetError as e:
            pytest.fail(f"the demo fleet did not start: {e}", pytrace=False)
        orchestrator = state["urls"]["orchestrator"]
        try:
            print(f"\ndemo fleet up in {time.time() - started:.1f}s, logs in {state['logs']}")
            fleet_wait(BASELINE_S, orchestrator)
            quiet = (started + WARMUP_S, time.time())
            middle = (quiet[0] + quiet[1]) / 2
            phases = {"baseline": (quiet[0], middle), "calm": (middle, quiet[1])}
            for fault, query in (("cpu_hog", ""), ("slow_llm", "?agent=Sigma")):
                httpx.post(f"{orchestrator}/faults/{fault}{query}", timeout=10).raise_for_status()
                on = time.time()
                fleet_wait(SINGLE_FAULT_S, orchestrator)
                httpx.delete(f"{orchestrator}/faults", timeout=10).raise_for_status()
                phases[fault] = (on, time.time())
                fleet_wait(SETTLE_S, orchestrator)
            on = time.time()
            refuse_heartbeats(state_dir, orchestrator, Prometheus(native_stack.urls["prometheus"]))
            phases["refused"] = (on, time.time())
            for fault in FLEET_FAULTS:
                httpx.post(f"{orchestrator}/faults/{fault}", timeout=10).raise_for_status()
            on = time.time()
            fleet_wait(FAULT_S, orchestrator)
            httpx.delete(f"{orchestrator}/faults", timeout=10).raise_for_status()
            phases["tour"] = (on, time.time())
            fleet_wait(CLEARED_S, orchestrator)
            yield FleetRun(
                started, time.time(), orchestrator, FLEET_FAULTS, Path(state["logs"]), phases
            )
        finally:
            stopped = launcher.stop()
            print(f"\ndemo fleet stopped: {', '.join(stopped) or 'nothing was running'}")


@pytest.fixture(scope="session")
def fleet_ran(fleet_run: FleetRun) -> float:
    """When the session's demo fleet started (Unix time), once its fault tour is over."""
    return fleet_run.started
