"""Starting and stopping the whole fleet as local processes, with a state file for `stop`.

The launcher starts the mock LLM and the orchestrator, each in its own process group; the
orchestrator's supervisor starts the agents inside its group, so stopping that group stops them
too, while each agent can still be restarted on its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo_agents import fleet_config
from demo_agents.http_server import wait_ready

PACKAGE_PARENT = Path(__file__).resolve().parent.parent
STATE_FILE = "fleet.json"


class FleetError(RuntimeError):
    pass


class AlreadyRunning(FleetError):
    pass


@dataclass(frozen=True)
class Options:
    load: float = 20.0
    seed: int = 42
    ready_timeout_s: float = 90.0


def state_path() -> Path:
    return fleet_config.state_dir() / STATE_FILE


def read_state() -> dict[str, Any] | None:
    path = state_path()
    if not path.exists():
        return None
    return dict(json.loads(path.read_text()))


def is_ours(pid: int) -> bool:
    """True if `pid` is alive and is one of our fleet processes (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the state file
    return b"demo_agents" in cmdline


def child_env() -> dict[str, str]:
    pythonpath = os.pathsep.join(
        p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")) if p
    )
    return {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "ATALAIA_DEMO_STATE_DIR": str(fleet_config.state_dir()),
        "ATALAIA_DEMO_LLM_URL": fleet_config.llm_base_url(),
        # prometheus-client's `*_created` series (one per counter/histogram label set) say when a
        # series was first seen; nothing reads them and they double the orchestrator's series.
        "PROMETHEUS_DISABLE_CREATED_SERIES": os.environ.get(
            "PROMETHEUS_DISABLE_CREATED_SERIES", "True"
        ),
    }


def spawn(name: str, argv: list[str]) -> int:
    logs = fleet_config.logs_dir()
    out = open(logs / f"{name}.log", "ab") if logs else None  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", *argv],
            env=child_env(),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: `stop` signals the whole group
        )
    finally:
        if out is not None:
            out.close()
    return popen.pid


def ports_in_use() -> list[int]:
    """The fleet's ports that something already listens on."""
    ports = [fleet_config.MOCK_LLM_PORT, fleet_config.ORCHESTRATOR_PORT]
    ports += [a.port for a in fleet_config.AGENTS]
    busy = []
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            try:
                sock.bind((fleet_config.BIND_HOST, port))
            except OSError:
                busy.append(port)
    return busy


def run(options: Options) -> dict[str, Any]:
    """Start the fleet and return once every part answers its health check."""
    state = read_state()
    if state and any(is_ours(pid) for pid in state["pids"].values()):
        raise AlreadyRunning(
            f"the fleet is already running ({state_path()}); `make demo-stop` stops it"
        )
    busy = ports_in_use()
    if busy:
        raise FleetError(
            f"port(s) {', '.join(map(str, busy))} on {fleet_config.BIND_HOST} are in use "
            "(another fleet with a different ATALAIA_DEMO_STATE_DIR?)"
        )
    llm_url = fleet_config.llm_base_url().removesuffix("/v1")
    orchestrator_url = fleet_config.orchestrator_url()
    pids: dict[str, int] = {}
    state = {
        "pids": pids,
        "seed": options.seed,
        "load": options.load,
        "started_at": time.time(),
        "urls": {"mock_llm": llm_url, "orchestrator": orchestrator_url},
        "logs": str(fleet_config.logs_dir() or "stdout"),
    }
    try:
        port, seed = str(fleet_config.MOCK_LLM_PORT), str(options.seed)
        pids["mock_llm"] = spawn(
            "mock_llm", ["demo_agents.mock_llm", "--port", port, "--seed", seed]
        )
        state_path().write_text(json.dumps(state, indent=2))
        wait_ready(f"{llm_url}/health", options.ready_timeout_s)
        pids["orchestrator"] = spawn(
            "orchestrator",
            [
                "demo_agents.orchestrator",
                "--port",
                str(fleet_config.ORCHESTRATOR_PORT),
                "--seed",
                str(options.seed),
                "--load",
                str(options.load),
            ],
        )
        state_path().write_text(json.dumps(state, indent=2))
        wait_ready(f"{orchestrator_url}/health", options.ready_timeout_s)
        for agent in fleet_config.AGENTS:
            wait_ready(f"{agent.url}/health", options.ready_timeout_s)
        # Something else answering on our ports also looks ready: make sure it is us.
        dead = [name for name, pid in pids.items() if not is_ours(pid) or _zombie(pid)]
        if dead:
            raise OSError(f"{', '.join(dead)} exited (is another fleet using its port?)")
    except (TimeoutError, OSError) as exc:
        stop()
        raise FleetError(f"the fleet did not start: {exc}; logs in {state['logs']}") from exc
    return state


def stop(timeout_s: float = 20.0) -> list[str]:
    """Stop every process group in the state file; returns what was stopped."""
    state = read_state()
    if state is None:
        return []
    stopped = []
    # The orchestrator first: it stops its agents and clears the faults on the mock LLM.
    for name in sorted(state["pids"], key=lambda n: n != "orchestrator"):
        pid = int(state["pids"][name])
        if not is_ours(pid):
            continue
        signal_group(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout_s):
            signal_group(pid, signal.SIGKILL)
            wait_gone(pid, 5)
        signal_group(pid, signal.SIGKILL, quiet=True)  # leftovers of the group, if any
        stopped.append(name)
    state_path().unlink(missing_ok=True)
    return stopped


def signal_group(pid: int, sig: signal.Signals, quiet: bool = False) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        if not quiet:
            raise


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)  # our child when run in the foreground
            if reaped:
                return True
        except ChildProcessError:
            pass
        if not is_ours(pid) or _zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def wait_foreground() -> None:
    """Block until a signal or until a fleet process dies (for containers), then stop all."""
    received: list[int] = []

    def on_signal(signum: int, _: object) -> None:
        received.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state = read_state() or {"pids": {}}
    while not received:
        if any(not is_ours(int(pid)) or _zombie(int(pid)) for pid in state["pids"].values()):
            break
        time.sleep(1.0)  # a signal interrupts the sleep
    stop()
