"""The native stack: compose.yaml's services as local processes, for machines without Docker.

    python -m tools.native_stack up [--state-dir DIR] [--timeout S]
    python -m tools.native_stack down | status

`up` runs the repo's configs (rewritten in a copy by tools.native_config) with the binaries
`make tools` built, waits until every service answers its readiness endpoint, prints the URLs
and returns, leaving the processes running in the background. `down` stops them: SIGTERM, then
SIGKILL after a deadline. State lives in $ATALAIA_NATIVE_DIR, else
${XDG_STATE_HOME:-~/.local/state}/atalaia/native: config/ (the rewritten copy), data/<store>,
logs/<service>.log and stack.json (pids).

Grafana, Loki and Tempo exist only as container images (and are AGPL-licensed: this project does
not build them), so they are listed as missing rather than faked. The collector still sends logs
and traces to where Loki and Tempo would listen; the native log and trace store, a second
collector (otel-collector/native-store.yaml), writes them to rotating OTLP JSON files under
data/otelcol/store.

tests/e2e/conftest.py drives the same NativeStack class as a pytest session fixture.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import native_config
from tools.upstream import components

# Flags the compose services also pass (compose.yaml); tests/config checks they agree. No
# --web.enable-lifecycle: its /-/reload and /-/quit take a POST from anyone who reaches the port
# (reload with SIGHUP instead).
PROMETHEUS_FLAGS = (
    "--web.enable-otlp-receiver",
    "--web.enable-remote-write-receiver",
    "--enable-feature=exemplar-storage,created-timestamp-zero-ingestion",
)


@dataclass(frozen=True)
class Service:
    name: str
    command: Callable[[Path, Path], list[str]]  # (config_dir, data_dir) -> argv
    ready_url: str
    ports: tuple[int, ...]  # every port it listens on; all must be free before `up`
    urls: dict[str, str] = field(default_factory=dict)  # what a user or test talks to
    enabled: Callable[[], bool] = lambda: True
    stop_timeout: float = 20.0  # SIGTERM -> SIGKILL


def _bin(component: str, binary: str | None = None) -> str:
    return str(components()[component].binary(binary))


def _collector_cmd(cfg: Path, _data: Path) -> list[str]:
    cmd = [_bin("otelcol", "otelcol-atalaia"), f"--config={cfg / 'otel-collector/config.yaml'}"]
    if os.environ.get("ATALAIA_OTLP_TOKEN"):  # same switch as compose.yaml
        cmd.append(f"--config={cfg / 'otel-collector/config.auth.yaml'}")
    return cmd


def _alert_sink_available() -> bool:
    with contextlib.suppress(ModuleNotFoundError):
        return importlib.util.find_spec("atalaia_ops.alert_sink") is not None
    return False


LOCAL = "http://127.0.0.1"
SERVICES: tuple[Service, ...] = (
    Service(
        "prometheus",
        lambda cfg, data: [
            _bin("prometheus"),
            f"--config.file={cfg / 'prometheus/prometheus.yml'}",
            f"--storage.tsdb.path={data / 'prometheus'}",
            "--web.listen-address=127.0.0.1:9090",
            *PROMETHEUS_FLAGS,
        ],
        f"{LOCAL}:9090/-/ready",
        (9090,),
        {"prometheus": f"{LOCAL}:9090"},
    ),
    Service(
        "alertmanager",
        lambda cfg, data: [
            _bin("alertmanager"),
            f"--config.file={cfg / 'alertmanager/alertmanager.yml'}",
            f"--storage.path={data / 'alertmanager'}",
            "--web.listen-address=127.0.0.1:9093",
            "--cluster.listen-address=",  # no clustering: one instance
        ],
        f"{LOCAL}:9093/-/ready",
        (9093,),
        {"alertmanager": f"{LOCAL}:9093"},
    ),
    Service(
        "log-trace-store",
        lambda cfg, _data: [
            _bin("otelcol", "otelcol-atalaia"),
            f"--config={cfg / 'otel-collector/native-store.yaml'}",
        ],
        f"{LOCAL}:13134/",
        (3100, 4417, 13134),  # where Loki's OTLP and Tempo's OTLP gRPC would listen
        {"log_trace_store": f"{LOCAL}:13134/"},
    ),
    Service(
        "otel-collector",
        _collector_cmd,
        f"{LOCAL}:13133/",
        (4317, 4318, 4319, 8888, 13133),  # 4319: the derived-metrics loopback (otlp/derive)
        {
            "otlp_grpc": f"{LOCAL}:4317",
            "otlp_http": f"{LOCAL}:4318",
            "collector_metrics": f"{LOCAL}:8888/metrics",
            "collector_health": f"{LOCAL}:13133/",
        },
    ),
    Service(
        "alert-sink",
        lambda cfg, data: [
            sys.executable,
            "-m",
            "atalaia_ops.alert_sink",
            "--host",
            "127.0.0.1",
            "--port",
            "9199",
            f"--data-dir={data / 'alert-sink'}",
            # Alertmanager's webhooks send this token (alertmanager.yml http_config).
            f"--token-file={native_config.secrets_dir(cfg.parent) / 'alert_sink_token'}",
        ],
        f"{LOCAL}:9199/health",
        (9199,),
        {"alert_sink": f"{LOCAL}:9199"},
        enabled=_alert_sink_available,
    ),
)
BY_NAME = {s.name: s for s in SERVICES}
STOP_FIRST = ("otel-collector", "alert-sink")  # entry points before the backends they feed
# What compose runs and the native stack cannot: each exists only as a container image.
NOT_NATIVE = {
    "grafana": "not in the native stack (container image only): no dashboards",
    "loki": "not in the native stack (container image only): logs go to files, see below",
    "tempo": "not in the native stack (container image only): traces go to files, see below",
}
NATIVE_HINT = (
    "Grafana, Loki and Tempo run only from their container images: with a Docker engine,"
    " `make up` starts the whole stack with compose."
)


def default_state_dir() -> Path:
    if override := os.environ.get("ATALAIA_NATIVE_DIR"):
        return Path(override)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "atalaia" / "native"


class StackError(RuntimeError):
    """The stack could not be brought up or down; the message says why and what to do."""


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def is_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int, binary: str) -> bool:
    """True if pid runs `binary` (a recycled pid that runs something else is not ours)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not _reap(pid):  # exited: our zombie child, reaped now
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            raw = cmdline.read_bytes()
        except OSError:
            return False
        # Empty for an instant right after exec.
        return not raw or binary.encode() in raw.split(b"\0")[:3]
    return True


class NativeStack:
    """The native stack rooted at one state directory."""

    def __init__(self, state_dir: Path | None = None, services: Iterable[str] | None = None):
        self.state_dir = (state_dir or default_state_dir()).resolve()
        wanted = set(services) if services is not None else None
        self.services = [
            s for s in SERVICES if (wanted is None or s.name in wanted) and s.enabled()
        ]
        self.logs_dir = self.state_dir / "logs"
        self.pid_file = self.state_dir / "stack.json"
        self.config_dir = self.state_dir / "config"
        self.data_dir = self.state_dir / "data"

    # -- state ---------------------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in self.services:
            out |= s.urls
        return out

    def _read_pids(self) -> dict[str, dict[str, Any]]:
        if not self.pid_file.exists():
            return {}
        pids: dict[str, dict[str, Any]] = json.loads(self.pid_file.read_text())
        return pids

    def _write_pids(self, pids: dict[str, dict[str, Any]]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids, indent=2) + "\n")
        tmp.replace(self.pid_file)

    def running(self) -> dict[str, int]:
        """Services of this stack whose recorded process is still alive."""
        return {
            name: rec["pid"]
            for name, rec in self._read_pids().items()
            if _alive(rec["pid"], rec["argv"][0])
        }

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- lifecycle -----------------------------------------------------------------------
    def check_binaries(self) -> None:
        missing = []
        for s in self.services:
            argv0 = s.command(self.config_dir, self.data_dir)[0]
            if not Path(argv0).exists():
                missing.append(f"{s.name}: {argv0}")
        if missing:
            raise StackError(
                "built binaries are missing (run `make tools`):\n  " + "\n  ".join(missing)
            )

    def check_ports(self, services: Iterable[Service]) -> None:
        taken = [f"{p} ({s.name})" for s in services for p in s.ports if port_in_use(p)]
        if taken:
            raise StackError(
                "ports already in use on 127.0.0.1: "
                + ", ".join(taken)
                + ". Another stack (compose, or a native stack with another state dir) is"
                " running: stop it first (`make down` / `make down-native`)."
            )

    def start(self, names: Iterable[str] | None = None) -> None:
        """Start services (all by default) without waiting for them to be ready."""
        todo = [s for s in self.services if names is None or s.name in set(names)]
        self.check_binaries()
        self.check_ports(todo)
        if names is None or not self.config_dir.exists():
            # A fresh copy for a full start; one service restarting keeps the copy the others run.
            native_config.prepare(self.state_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        pids = self._read_pids()
        for s in todo:
            argv = s.command(self.config_dir, self.data_dir)
            with open(self.log_path(s.name), "ab") as log:
                log.write(
                    f"\n==> {time.strftime('%FT%TZ', time.gmtime())} {' '.join(argv)}\n".encode()
                )
                log.flush()
                proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.data_dir,
                    start_new_session=True,  # outlives `make up-native`
                )
            pids[s.name] = {"pid": proc.pid, "argv": argv}
        self._write_pids(pids)

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 90.0) -> float:
        """Poll readiness endpoints until all answer 2xx; returns seconds waited.

        Fails fast, with the log tail, when a process exits while being waited for.
        """
        start = time.monotonic()
        pending = {s.name: s for s in self.services if names is None or s.name in set(names)}
        while pending:
            alive = self.running()
            for name in list(pending):
                if name not in alive:
                    raise StackError(
                        f"{name} exited during startup; its log "
                        f"({self.log_path(name)}) ends with:\n{self.log_tail(name)}"
                    )
                if is_ready(pending[name].ready_url):
                    del pending[name]
            if not pending:
                break
            if time.monotonic() - start > timeout:
                detail = "\n".join(
                    f"--- {n} ({self.log_path(n)}):\n{self.log_tail(n)}" for n in pending
                )
                raise StackError(f"not ready after {timeout:.0f}s: {', '.join(pending)}\n" + detail)
            time.sleep(0.25)
        return time.monotonic() - start

    def up(self, timeout: float = 90.0) -> float:
        """Start everything and wait until it is ready; returns the seconds that took."""
        start = time.monotonic()
        already = self.running()
        if already:
            if len(already) == len(self.services):
                self.wait_ready(timeout=timeout)
                return time.monotonic() - start
            raise StackError(f"partly running ({', '.join(already)}): run `down` first")
        self.start()
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - start

    def stop(self, names: Iterable[str] | None = None, deadline: float | None = None) -> list[str]:
        """SIGTERM the given (default: all) services, SIGKILL what is left after `deadline`
        (default: each service's stop_timeout).

        The entry points (collector, alert sink) stop first, while the backends still run, so
        the collector hands over what it holds instead of failing to export it at shutdown.
        Returns the names that had to be killed.
        """
        wanted = set(names) if names is not None else None
        pids = self._read_pids()
        victims = {
            n: r
            for n, r in pids.items()
            if (wanted is None or n in wanted) and _alive(r["pid"], r["argv"][0])
        }
        first = {n: r for n, r in victims.items() if n in STOP_FIRST}
        rest = {n: r for n, r in victims.items() if n not in STOP_FIRST}
        timeouts = {s.name: deadline or s.stop_timeout for s in SERVICES}
        killed = _terminate(first, timeouts) + _terminate(rest, timeouts)
        for name in wanted if wanted is not None else set(pids):
            pids.pop(name, None)
        if pids:
            self._write_pids(pids)
        else:
            self.pid_file.unlink(missing_ok=True)
        return killed

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Stop one service cleanly and start it again on the same data; wait until ready."""
        self.stop([name])
        self.start([name])
        self.wait_ready([name], timeout=timeout)


def _terminate(victims: dict[str, dict[str, Any]], timeouts: dict[str, float]) -> list[str]:
    """SIGTERM each process group, wait up to `deadline`, kill the rest; return their names."""
    for rec in victims.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec["pid"], signal.SIGTERM)
    start = time.monotonic()
    while any(
        _reap(r["pid"]) and time.monotonic() - start < timeouts.get(n, 20.0)
        for n, r in victims.items()
    ):
        time.sleep(0.1)
    killed = []
    for name, rec in victims.items():
        if _reap(rec["pid"]):
            killed.append(name)
            # SIGQUIT first: a Go server writes every goroutine's stack to its log and exits,
            # which shows where it hung. SIGKILL whatever is still there after that.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rec["pid"], signal.SIGQUIT)
            _wait_gone(rec["pid"], 2.0)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rec["pid"], signal.SIGKILL)
            _wait_gone(rec["pid"], 5.0)
    return killed


def _reap(pid: int) -> bool:
    """True while pid is still running (reaps it if it is our zombie child)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        if stat.read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _wait_gone(pid: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while _reap(pid) and time.monotonic() < end:
        time.sleep(0.05)


# -- CLI -----------------------------------------------------------------------------------
SILENCE_AUTHOR = "atalaia native stack"
ABSENT_JOBS = "grafana|loki|tempo"  # Prometheus scrape jobs of what the native stack lacks


def silence_absent_targets(alertmanager_url: str, days: int = 365) -> bool:
    """Silence TargetDown for Grafana, Loki and Tempo in Alertmanager: natively they do not run,
    so their targets are down by design, and a page about them every few hours would teach people
    to ignore the sink. Visible and removable like any silence; returns False if one was already
    active."""
    api = f"{alertmanager_url}/api/v2/silences"
    with urllib.request.urlopen(api, timeout=5) as resp:
        for silence in json.load(resp):
            if silence["createdBy"] == SILENCE_AUTHOR and silence["status"]["state"] == "active":
                return False
    now = time.time()

    def stamp(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    body = {
        "matchers": [
            {"name": "alertname", "value": "TargetDown", "isRegex": False, "isEqual": True},
            {"name": "job", "value": ABSENT_JOBS, "isRegex": True, "isEqual": True},
        ],
        "startsAt": stamp(now),
        "endsAt": stamp(now + days * 86400),
        "createdBy": SILENCE_AUTHOR,
        "comment": "Grafana, Loki and Tempo are not in the native stack (container images only).",
    }
    req = urllib.request.Request(
        api, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5):
        return True


def store_files(stack: NativeStack) -> dict[str, Path]:
    """Where the native log and trace store writes (rotated files sit beside these)."""
    store = stack.data_dir / "otelcol" / "store"
    return {"logs": store / "logs.jsonl", "traces": store / "traces.jsonl"}


def print_urls(stack: NativeStack) -> None:
    for name, url in stack.urls.items():
        print(f"  {name:<18} {url}")
    for name, why in NOT_NATIVE.items():
        print(f"  {name:<18} {why}")
    for kind, path in store_files(stack).items():
        print(f"  {kind + ' (OTLP JSON)':<18} {path}  (rotated at 100 MB, 10 kept, 14 days)")
    print(f"==> {NATIVE_HINT}")
    if not any(s.name == "alert-sink" for s in stack.services):
        print(f"  {'alert_sink':<18} not started (atalaia_ops.alert_sink is not importable)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.native_stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state/data/logs directory (default: $ATALAIA_NATIVE_DIR or "
        "$XDG_STATE_HOME/atalaia/native)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=None,
        help="seconds from SIGTERM to SIGKILL on down (default: 20 s per service)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=90.0,
        help="seconds to wait for readiness on up",
    )
    args = parser.parse_args(argv)
    stack = NativeStack(args.state_dir)
    try:
        if args.action == "up":
            print(f"==> native stack in {stack.state_dir}")
            seconds = stack.up(timeout=args.timeout)
            print(f"==> ready in {seconds:.1f}s; logs in {stack.logs_dir}")
            if silence_absent_targets(stack.urls["alertmanager"]):
                print(f'==> silenced TargetDown{{job=~"{ABSENT_JOBS}"}}: not in the native stack')
            print_urls(stack)
            print("==> stop it with `make down-native`")
        elif args.action == "down":
            if not stack.running():
                print(f"==> native stack in {stack.state_dir} is not running")
                stack.pid_file.unlink(missing_ok=True)
                return 0
            killed = stack.stop(deadline=args.stop_timeout)
            print(
                "==> stopped"
                + (f" (killed after the deadline: {', '.join(killed)})" if killed else "")
            )
        else:
            running = stack.running()
            for s in stack.services:
                state = (
                    ("ready" if is_ready(s.ready_url) else "starting")
                    if s.name in running
                    else "stopped"
                )
                print(f"  {s.name:<16} {state:<9} {next(iter(s.urls.values()))}")
            for name, why in NOT_NATIVE.items():
                print(f"  {name:<16} {why}")
            return 0 if len(running) == len(stack.services) else 3
    except StackError as e:
        print(f"native stack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
