"""Per-process CPU and memory, observed with psutil at each metric collection.

process.cpu.time (counter, s, cpu.mode=user|system), process.cpu.utilization (gauge, 1: CPU time
since the previous collection / wall time / CPUs available to the process) and process.memory.usage
(up-down counter, By: resident set size), as in docs/telemetry.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from atalaia import names

_log = logging.getLogger("atalaia")


class ProcessSampler:
    """Reads this process's counters; survives fork (re-reads its own pid) and never raises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self._last: tuple[float, float] | None = None  # (monotonic time, cpu seconds)
        self._failed = False

    def _proc(self) -> psutil.Process:
        if self._process.pid != os.getpid():  # forked: we are someone else now
            self._process = psutil.Process()
            self._last = None
        return self._process

    def _cpu_count(self) -> int:
        try:
            return len(self._proc().cpu_affinity() or []) or os.cpu_count() or 1
        except (AttributeError, psutil.Error):  # cpu_affinity is not on every platform
            return os.cpu_count() or 1

    def _fail(self, what: str, exc: Exception) -> list[Observation]:
        if not self._failed:
            self._failed = True
            _log.warning("cannot read %s of this process: %s", what, exc)
        return []

    def cpu_time(self, _: CallbackOptions) -> Iterable[Observation]:
        try:
            times = self._proc().cpu_times()
        except Exception as exc:
            return self._fail("CPU time", exc)
        return [
            Observation(times.user, {names.CPU_MODE: "user"}),
            Observation(times.system, {names.CPU_MODE: "system"}),
        ]

    def cpu_utilization(self, _: CallbackOptions) -> Iterable[Observation]:
        try:
            with self._lock:
                times = self._proc().cpu_times()
                now, used = time.monotonic(), times.user + times.system
                last, self._last = self._last, (now, used)
                if last is None:
                    # First collection: average since the process started.
                    elapsed = max(time.time() - self._proc().create_time(), 1e-6)
                    delta = used
                else:
                    elapsed, delta = max(now - last[0], 1e-6), used - last[1]
            return [Observation(max(delta, 0.0) / elapsed / self._cpu_count())]
        except Exception as exc:
            return self._fail("CPU utilization", exc)

    def memory_usage(self, _: CallbackOptions) -> Iterable[Observation]:
        try:
            return [Observation(self._proc().memory_info().rss)]
        except Exception as exc:
            return self._fail("memory usage", exc)


def register(meter: Meter) -> ProcessSampler:
    sampler = ProcessSampler()
    name, unit = names.M_CPU_TIME
    meter.create_observable_counter(
        name, callbacks=[sampler.cpu_time], unit=unit, description="CPU seconds used"
    )
    name, unit = names.M_CPU_UTILIZATION
    meter.create_observable_gauge(
        name,
        callbacks=[sampler.cpu_utilization],
        unit=unit,
        description="CPU used since the last collection / wall time / CPUs available (0-1)",
    )
    name, unit = names.M_MEMORY_USAGE
    meter.create_observable_up_down_counter(
        name,
        callbacks=[sampler.memory_usage],
        unit=unit,
        description="Resident set size of this process",
    )
    return sampler
