"""Record the golden fixtures: what each real GenAI instrumentation package sends.

    python -m tests.golden.record [EMITTER ...]      # all of them by default

For each emitter (a directory under tests/golden/ with a requirements.txt: every package pinned
with hashes, compiled from its requirements.in), this

1. creates the emitter's own virtualenv from requirements.txt, cached outside the repo under
   ${XDG_CACHE_HOME:-~/.cache}/atalaia/golden/ and keyed by the digest of the pins (a changed pin
   is a new venv; an unchanged one is reused);
2. starts the mock provider (tests/golden/mock_llm.py) and a capture collector: the pinned
   collector binary (`python -m tools.build otelcol` builds it if missing) with an OTLP receiver
   on free loopback ports and file exporters, no processors, so the files hold exactly what the
   emitter sent;
3. runs tests/golden/agent.py EMITTER in that venv;
4. writes tests/golden/EMITTER/traces.jsonl (and logs.jsonl when the emitter sent log records):
   OTLP JSON export requests, trimmed of host, process and OS resource attributes and of stack
   traces and source paths; expected.json: the mock's own record of every call (status, models,
   token usage: the ground truth) and what the agent made; manifest.json: the package versions
   and the SDK metric names the emitter sent (metrics are not kept: the stack derives its own).

The recording needs PyPI and takes a few minutes the first time (venvs); it is not part of
`make test`, which replays the committed fixtures (tests/config/test_normalise_golden.py).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.golden import mock_llm
from tools.upstream import REPO, components

HERE = Path(__file__).resolve().parent
RESOURCE_DROP = ("host.", "process.", "os.", "container.", "k8s.", "service.instance.id")
ATTRIBUTE_DROP = {"exception.stacktrace", "code.filepath", "code.file.path", "code.lineno"}
ATTRIBUTE_DROP |= {"code.line.number", "code.namespace", "code.function"}


def emitters() -> list[str]:
    """Python emitters have a requirements.txt, JavaScript ones a package-lock.json."""
    locks = [*HERE.glob("*/requirements.txt"), *HERE.glob("*/package-lock.json")]
    return sorted(p.parent.name for p in locks)


def is_node(emitter: str) -> bool:
    return (HERE / emitter / "package-lock.json").exists()


NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--engine-strict=false"]


def node_env(emitter: str) -> Path:
    """A JavaScript emitter's packages, installed with `npm ci` from its lock file into the
    cache (keyed by the lock), with its agent.mjs copied beside them."""
    lock = HERE / emitter / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    path = cache_dir() / f"node-{emitter}-{digest}"
    if not (path / ".installed").exists():
        print(f"[golden] {emitter}: npm ci into {path}", flush=True)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(HERE / emitter / name, path / name)
        subprocess.run(NPM_CI, cwd=path, check=True)
        (path / ".installed").touch()
    shutil.copy(HERE / emitter / "agent.mjs", path / "agent.mjs")
    return path


def cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "atalaia" / "golden"


def venv(emitter: str) -> Path:
    """The emitter's venv, created from its pins if it is not cached yet."""
    reqs = HERE / emitter / "requirements.txt"
    pins = [line for line in reqs.read_text().splitlines() if not line.lstrip().startswith("#")]
    digest = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    path = cache_dir() / f"venv-{emitter}-{digest}"
    if (path / ".installed").exists():
        return path
    print(f"[golden] {emitter}: creating {path}", flush=True)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "-q", "--require-hashes", "--no-deps", "-r", str(reqs)], check=True)
    (path / ".installed").touch()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Capture:
    """The pinned collector, receiving OTLP and writing it to files untouched."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.http, self.grpc = free_port(), free_port()
        binary = components()["otelcol"].binary("otelcol-atalaia")
        if not binary.exists():
            subprocess.run([sys.executable, "-m", "tools.build", "otelcol"], cwd=REPO, check=True)
        config = {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "http": {"endpoint": f"127.0.0.1:{self.http}"},
                        "grpc": {"endpoint": f"127.0.0.1:{self.grpc}"},
                    }
                }
            },
            "exporters": {
                f"file/{s}": {"path": str(directory / f"{s}.jsonl")}
                for s in ("traces", "logs", "metrics")
            },
            "service": {
                "pipelines": {
                    s: {"receivers": ["otlp"], "exporters": [f"file/{s}"]}
                    for s in ("traces", "logs", "metrics")
                },
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            },
        }
        (directory / "capture.yaml").write_text(json.dumps(config))
        self.log = open(directory / "collector.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(binary), f"--config={directory / 'capture.yaml'}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.http), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "[golden] capture collector did not start:\n"
                        + (directory / "collector.log").read_text()
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM: the file exporters flush and close."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()

    def read(self, signal_name: str) -> list[dict[str, Any]]:
        path = self.directory / f"{signal_name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _keep_attrs(attrs: list[dict[str, Any]], drop: Any) -> list[dict[str, Any]]:
    return [kv for kv in attrs if not drop(kv["key"])]


def trim(request: dict[str, Any]) -> dict[str, Any]:
    """Drop resource attributes that describe this machine and attributes that hold its paths."""
    for key, scopes, items in (
        ("resourceSpans", "scopeSpans", "spans"),
        ("resourceLogs", "scopeLogs", "logRecords"),
    ):
        for rs in request.get(key, []):
            res = rs.get("resource", {})
            if "attributes" in res:
                res["attributes"] = _keep_attrs(
                    res["attributes"], lambda k: k.startswith(RESOURCE_DROP)
                )
            for scope in rs.get(scopes, []):
                for item in scope.get(items, []):
                    item["attributes"] = _keep_attrs(
                        item.get("attributes", []), ATTRIBUTE_DROP.__contains__
                    )
                    for event in item.get("events", []):
                        event["attributes"] = _keep_attrs(
                            event.get("attributes", []), ATTRIBUTE_DROP.__contains__
                        )
    return request


def check_clean(text: str, emitter: str, extra: list[str]) -> None:
    """Refuse to write a fixture that names this machine, its user or its paths."""
    needles = [str(Path.home()), socket.gethostname(), tempfile.gettempdir() + "/", *extra]
    user = getpass.getuser()
    if user not in ("root",):
        needles.append(user)
    found = [n for n in needles if n and n in text]
    if found:
        raise SystemExit(f"[golden] {emitter}: the capture still holds {found}; extend trim()")


def metric_names(requests: list[dict[str, Any]]) -> list[str]:
    names = {
        m["name"]
        for r in requests
        for rm in r.get("resourceMetrics", [])
        for sm in rm.get("scopeMetrics", [])
        for m in sm.get("metrics", [])
    }
    return sorted(names)


def installed_versions(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def node_versions(env_dir: Path) -> dict[str, str]:
    lock = json.loads((env_dir / "package-lock.json").read_text())
    wanted = lock["packages"][""]["dependencies"]
    return {name: lock["packages"][f"node_modules/{name}"]["version"] for name in wanted}


def record(emitter: str) -> None:
    node = is_node(emitter)
    env_dir = node_env(emitter) if node else venv(emitter)
    python = env_dir / "bin" / "python"
    command = (
        ["node", str(env_dir / "agent.mjs")]
        if node
        else [str(python), str(HERE / "agent.py"), emitter]
    )
    with tempfile.TemporaryDirectory(prefix="atalaia-golden-") as tmp:
        state = mock_llm.MockLLM()
        server = mock_llm.serve(state)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        capture = Capture(Path(tmp))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,  # nothing of ours for the emitter to read or write
            "OTEL_SERVICE_NAME": f"golden-{emitter}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{capture.http}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
            "GOLDEN_OPENAI_URL": f"{base}/v1",
            "GOLDEN_ANTHROPIC_URL": base,
            "TRACELOOP_TELEMETRY": "false",
            "TRACELOOP_TRACE_CONTENT": "false",  # prompts and completions stay out
            "OPENLIT_DISABLE_TELEMETRY": "true",
            # anthropic >= 1.x traces its own calls once a tracer provider exists; beside an
            # instrumentation that doubles every call. Only its own recording keeps it.
            "ANTHROPIC_OPEN_TELEMETRY": "true" if emitter == "anthropic-sdk" else "false",
        }
        print(f"[golden] {emitter}: running the agent", flush=True)
        try:
            proc = subprocess.run(
                command,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            capture.stop()
            server.shutdown()
        sys.stderr.write(proc.stderr[-4000:])
        if proc.returncode != 0:
            raise SystemExit(f"[golden] {emitter}: the agent failed (exit {proc.returncode})")
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        traces = [trim(r) for r in capture.read("traces")]
        logs = [trim(r) for r in capture.read("logs")]
        metrics = metric_names(capture.read("metrics"))
    out = HERE / emitter
    texts = {
        "traces.jsonl": "".join(json.dumps(r, sort_keys=True) + "\n" for r in traces),
        "logs.jsonl": "".join(json.dumps(r, sort_keys=True) + "\n" for r in logs),
    }
    if node:
        packages = node_versions(env_dir)
    else:
        versions = installed_versions(python)
        pins = {
            line.split("#")[0].strip().split("==")[0].split("<")[0].split(">")[0].lower()
            for line in (out / "requirements.in").read_text().splitlines()
            if line.split("#")[0].strip()
        }
        prefixes = ("opentelemetry-instrumentation", "opentelemetry-util-genai", "openinference")
        packages = {
            name: versions[name]
            for name in sorted(versions)
            if name in pins or name.startswith(prefixes)
        }
    manifest = {
        "emitter": emitter,
        "packages": packages,
        "service.name": f"golden-{emitter}",
        "sdk_metrics": metrics,
        "log_records": sum(
            len(sl.get("logRecords", []))
            for r in logs
            for rl in r.get("resourceLogs", [])
            for sl in rl.get("scopeLogs", [])
        ),
    }
    expected = {"service.name": f"golden-{emitter}", **summary, "calls": state.ground_truth()}
    texts["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    texts["expected.json"] = json.dumps(expected, indent=2) + "\n"
    for text in texts.values():
        check_clean(text, emitter, [str(env_dir), tmp])
    for name, text in texts.items():
        if name == "logs.jsonl" and not text:
            (out / name).unlink(missing_ok=True)
            continue
        (out / name).write_text(text)
    spans = sum(
        len(s.get("spans", []))
        for r in traces
        for rs in r.get("resourceSpans", [])
        for s in rs.get("scopeSpans", [])
    )
    print(
        f"[golden] {emitter}: {spans} spans, {len(logs)} log requests, {len(metrics)} metric names"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("emitter", nargs="*", help=f"default: all of {', '.join(emitters())}")
    args = parser.parse_args()
    for emitter in args.emitter or emitters():
        if emitter not in emitters():
            raise SystemExit(f"unknown emitter {emitter!r}; known: {', '.join(emitters())}")
        record(emitter)


if __name__ == "__main__":
    main()
