"""Helix's workbench: a shared resource that other agents use through Helix's `/lookup`, and the
cpu_hog fault that burns CPU while holding it (seed 000: "CPU spike on Helix delays Sigma").

The hog is bounded: one thread, a maximum duration, and it stops as soon as it is switched off.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

log = logging.getLogger("demo_agents.cpu_hog")

MAX_HOG_S = 900.0
BURST_S = 4.0  # the hog holds the workbench this long between short breaks


class Workbench:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def lookup(self, topic: str, rounds: int = 2000) -> str:
        """A small CPU-bound computation on the shared workbench."""
        with self._lock:
            digest = topic.encode()
            for _ in range(rounds):
                digest = hashlib.sha256(digest).digest()
            return digest.hex()[:16]

    @property
    def hogging(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start_hog(self, duration_s: float) -> float:
        duration_s = max(1.0, min(duration_s, MAX_HOG_S))
        self.stop_hog()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._hog, args=(duration_s,), name="cpu-hog", daemon=True
        )
        self._thread.start()
        log.warning("cpu_hog fault on for %.0fs", duration_s)
        return duration_s

    def stop_hog(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BURST_S + 1)
            self._thread = None

    def _hog(self, duration_s: float) -> None:
        end = time.monotonic() + duration_s
        while not self._stop.is_set() and time.monotonic() < end:
            with self._lock:
                burst_end = min(time.monotonic() + BURST_S, end)
                digest = b"hog"
                while time.monotonic() < burst_end and not self._stop.is_set():
                    for _ in range(500):
                        digest = hashlib.sha256(digest).digest()
            self._stop.wait(0.002)  # just long enough to let one waiting lookup through
        log.info("cpu_hog fault over")
