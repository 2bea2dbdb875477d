"""Starting, stopping and restarting named child processes (the agents), one at a time."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("demo_agents.process_manager")


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None  # None: the child writes to our stdout/stderr


@dataclass
class Running:
    popen: subprocess.Popen[bytes]
    started_at: float


class ProcessManager:
    """Owns one child process per name. Children inherit our process group, so stopping the
    group (the launcher's `stop`) also stops them; each can still be restarted on its own."""

    def __init__(
        self,
        specs: list[ProcessSpec],
        cwd: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.cwd = cwd
        self.clock = clock
        self.running: dict[str, Running] = {}

    def start(self, name: str) -> int:
        spec = self.specs[name]
        env = {**os.environ, **spec.env}
        out = open(spec.log_path, "ab") if spec.log_path else None  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                spec.argv,
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
            )
        finally:
            if out is not None:
                out.close()
        self.running[name] = Running(popen, self.clock())
        log.info("started %s (pid %d)", name, popen.pid, extra={"gen_ai.agent.name": name})
        return popen.pid

    def pid(self, name: str) -> int | None:
        running = self.running.get(name)
        return None if running is None else running.popen.pid

    def started_at(self, name: str) -> float | None:
        running = self.running.get(name)
        return None if running is None else running.started_at

    def is_alive(self, name: str) -> bool:
        running = self.running.get(name)
        return running is not None and running.popen.poll() is None

    def exit_code(self, name: str) -> int | None:
        running = self.running.get(name)
        return None if running is None else running.popen.poll()

    def stop(self, name: str, timeout_s: float = 5.0) -> None:
        running = self.running.pop(name, None)
        if running is None or running.popen.poll() is not None:
            return
        running.popen.send_signal(signal.SIGTERM)
        try:
            running.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            running.popen.kill()
            running.popen.wait(timeout_s)

    def restart(self, name: str) -> int:
        self.stop(name)
        return self.start(name)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)
