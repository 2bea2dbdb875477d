"""`python -m demo_agents stop`: stops every process group in the state file (children of the
fleet's processes too), removes the file, and never signals a pid that is not a fleet process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_agents import fleet_config, launcher
from demo_agents.http_server import free_port

# A stand-in for a fleet process: its command line names demo_agents (as the real ones do) and it
# starts a child in its process group, like the orchestrator starts the agents.
PARENT = (
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 'demo_agents']); "
    "print(c.pid, flush=True); time.sleep(60)"
)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATALAIA_DEMO_STATE_DIR", str(tmp_path))
        yield tmp_path


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][0] != "Z"


def wait_dead(pid: int, deadline_s: float = 10) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_signals_the_whole_group_and_removes_the_state_file(state_dir: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, "demo_agents"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    (state_dir / launcher.STATE_FILE).write_text(json.dumps({"pids": {"orchestrator": parent.pid}}))
    assert launcher.is_ours(parent.pid)

    assert launcher.stop(timeout_s=10) == ["orchestrator"]
    parent.wait(10)
    assert wait_dead(child)
    assert not (state_dir / launcher.STATE_FILE).exists()
    assert launcher.stop() == []  # nothing left: a second stop is harmless


def test_stop_leaves_a_recycled_pid_alone(state_dir: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (state_dir / launcher.STATE_FILE).write_text(
            json.dumps({"pids": {"mock_llm": stranger.pid}})
        )
        assert not launcher.is_ours(stranger.pid)
        assert launcher.stop(timeout_s=1) == []
        assert stranger.poll() is None
    finally:
        os.kill(stranger.pid, signal.SIGKILL)
        stranger.wait(5)


def test_run_refuses_when_the_fleet_is_already_running(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_spawn(name: str, argv: list[str]) -> int:
        raise AssertionError(f"run() must not start {name} while a fleet is running")

    monkeypatch.setattr(launcher, "spawn", no_spawn)
    me = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "print('up', flush=True); import time; time.sleep(60)",
            "demo_agents",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert me.stdout is not None and me.stdout.readline() == "up\n"  # exec'd: cmdline is ours
        (state_dir / launcher.STATE_FILE).write_text(json.dumps({"pids": {"mock_llm": me.pid}}))
        with pytest.raises(launcher.AlreadyRunning, match="already running"):
            launcher.run(launcher.Options())
    finally:
        me.kill()
        me.wait(5)


def test_ports_in_use_finds_a_listener_and_ignores_free_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        monkeypatch.setattr(fleet_config, "MOCK_LLM_PORT", taken)
        monkeypatch.setattr(fleet_config, "ORCHESTRATOR_PORT", free_port())
        monkeypatch.setattr(fleet_config, "AGENTS", ())
        assert launcher.ports_in_use() == [taken]
