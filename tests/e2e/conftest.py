"""The `native_stack` session fixture: the real stack as local processes, for every e2e test.

    def test_something(native_stack):
        native_stack.urls["prometheus"]   # http://127.0.0.1:9090
        native_stack.urls["otlp_grpc"]    # http://127.0.0.1:4317 (also otlp_http, loki, tempo,
                                          # alertmanager, collector_metrics, alert_sink ...)
        native_stack.restart("loki")      # stop cleanly, start on the same data, wait ready

It starts collector, Prometheus, Alertmanager, Loki and Tempo (and the alert sink when
atalaia.alert_sink exists) from the repo's configs in a fresh state directory, waits until all
are ready and stops them at the end of the session. The ports are fixed (the configs' own), so
only one stack can run per machine: sessions on the same machine take turns through a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.backends import Loki, Prometheus, Tempo
from tests.e2e.otlp import Telemetry
from tools.native_stack import NativeStack, StackError

LOCK = Path(tempfile.gettempdir()) / "atalaia-native-stack.lock"
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
def loki(native_stack: NativeStack) -> Loki:
    return Loki(native_stack.urls["loki"])


@pytest.fixture(scope="session")
def tempo(native_stack: NativeStack) -> Tempo:
    return Tempo(native_stack.urls["tempo"])


@pytest.fixture
def telemetry(native_stack: NativeStack) -> Iterator[Telemetry]:
    """SDK pipelines with a service.name of their own, shut down after the test."""
    t = Telemetry(native_stack.urls["otlp_grpc"], native_stack.urls["otlp_http"])
    yield t
    t.shutdown()
