"""`make bench`: what the agent library costs, side by side with the raw SDK and other emitters.

    .venv/bin/python bench/bench_library.py [--calls 300] [--runs 7] [--skip-install] [--extras]

1. Per LLM call: the real `openai` client over a mock transport (bench/_worker.py), one log line
   per call, the app's logging configured at INFO. Each emitter runs in its own process with its
   defaults, exporting OTLP/HTTP to a local sink that accepts and discards (bench/_sink.py):
   the raw SDK (no telemetry), atalaia as shipped (`instrument()`), the official OpenTelemetry
   OpenAI instrumentations (`-openai-v2`, `-genai-openai`, on the plain SDK), OpenLLMetry
   (`traceloop-sdk`) and OpenLIT. The other emitters run in the pinned virtualenvs the golden
   recordings use (tests/golden/record.py `venv()`, built under ~/.cache/atalaia/golden from
   each emitter's requirements.txt, with hashes). Runs are interleaved (emitter A, B, C, A, B,
   C ...), so a busy neighbour slows all of them alike; min and median over the runs.
2. Start-up: `import atalaia` and `import atalaia` + `instrument()` in fresh interpreters (min of
   5), and the resident memory `instrument()` adds.
3. The base install: a fresh venv with `pip install .` (no extras), cached under
   ~/.cache/atalaia/bench keyed by pyproject.toml: how many distributions, which, and that
   `import atalaia` works and none of httpx, grpcio, prometheus-client or fastapi came along.
   With --extras, the same for each extra (`grpc`, `openai`, `anthropic`, `ops`): it installs
   and its modules import.

Prints a table and the checks; exits 1 when a check fails. Not part of `make test` (heavy).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: tests.golden is the repo's

HERE = REPO / "bench"
PROJECT_PYTHON = Path(sys.executable)
BASE_LIMIT = 20
FORBIDDEN = ("httpx", "grpcio", "prometheus-client", "fastapi")
EXTRAS = {
    "grpc": "import opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "openai": "import opentelemetry.instrumentation.genai.openai, openai",
    "anthropic": "import opentelemetry.instrumentation.genai.anthropic, anthropic",
    "ops": "import atalaia_ops.cli, atalaia_ops.explain, atalaia_ops.slo; "
    "from atalaia_ops.cli import main; main(['version'])",
}


def golden_venv(emitter: str) -> Path:
    """tests/golden/record.py's venv(): the emitter's pinned virtualenv, built if missing."""
    record = importlib.import_module("tests.golden.record")
    return Path(record.venv(emitter))


def emitters() -> dict[str, Path]:
    """Emitter -> the Python that runs it."""
    return {
        "raw": PROJECT_PYTHON,
        "atalaia": PROJECT_PYTHON,
        "openai-v2": golden_venv("openai-v2") / "bin" / "python",
        "genai": golden_venv("genai") / "bin" / "python",
        "openllmetry": golden_venv("traceloop") / "bin" / "python",
        "openlit": golden_venv("openlit") / "bin" / "python",
    }


class Sink:
    """bench/_sink.py in its own process (its CPU is not the measured process's)."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="atalaia-bench-")
        portfile = Path(self._dir) / "port"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_sink.py"), str(portfile)])
        deadline = time.monotonic() + 30
        while not portfile.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: the OTLP sink did not start")
            time.sleep(0.05)
        self.endpoint = f"http://127.0.0.1:{portfile.read_text()}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "ATALAIA_", "TRACELOOP_", "OPENLIT_", "PYTHON"))
    }
    env.update(TRACELOOP_TELEMETRY="false", OPENLIT_DISABLE_TELEMETRY="true", **extra)
    return env


def run_worker(python: Path, emitter: str, calls: int, endpoint: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), str(HERE / "_worker.py"), emitter, str(calls), "1"],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: {emitter} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["log_lines"] != calls:
        raise SystemExit(f"bench: {emitter} lost log lines ({result['log_lines']} of {calls})")
    return result


def per_call(calls: int, runs: int) -> dict[str, dict[str, Any]]:
    pythons = emitters()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in pythons}
    sink = Sink()
    try:
        for run in range(runs):
            for name, python in pythons.items():
                print(f"[bench] run {run + 1}/{runs}: {name}", file=sys.stderr, flush=True)
                results[name].append(run_worker(python, name, calls, sink.endpoint))
    finally:
        sink.stop()
    summary = {}
    for name, rs in results.items():
        wall = [r["per_call_us"][0] for r in rs]
        cpu = [r["per_call_cpu_us"][0] for r in rs]
        summary[name] = {
            "wall_min": min(wall),
            "wall_median": statistics.median(wall),
            "cpu_min": min(cpu),
            "cpu_median": statistics.median(cpu),
            "setup_ms": min(r["setup_ms"] for r in rs),
            "rss_added_mib": min(r["rss_after_kib"] - r["rss_before_kib"] for r in rs) / 1024,
        }
    return summary


def startup(repeat: int = 5) -> dict[str, float]:
    """Fresh interpreters, min of `repeat`: import, import + instrument(), memory added."""
    probe = (
        "import time, json\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1])\n"
        "r0 = rss(); t0 = time.perf_counter()\n"
        "import atalaia\n"
        "t1 = time.perf_counter()\n"
        "atalaia.instrument('bench-startup', json_logs=False)\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'import_ms': (t1 - t0) * 1000, 'instrument_ms': (t2 - t1) * 1000,"
        " 'rss_mib': (rss() - r0) / 1024}))\n"
    )
    env = clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    env["OTEL_LOGS_EXPORTER"] = "none"
    samples = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, cwd="/", capture_output=True, text=True
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: min(s[key] for s in samples) for key in samples[0]}


def cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "atalaia" / "bench"


def fresh_install(extra: str | None) -> tuple[Path, list[str]]:
    """A venv with `pip install .[extra]`, cached by pyproject.toml and the package sources."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    for package in ("atalaia", "atalaia_ops"):
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.read_bytes())
    path = cache_dir() / f"install-{extra or 'base'}-{digest.hexdigest()[:16]}"
    python = path / "bin" / "python"
    if not (path / ".installed").exists():
        shutil.rmtree(path, ignore_errors=True)
        print(f"[bench] pip install .{f'[{extra}]' if extra else ''} into {path}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        target = f"{REPO}[{extra}]" if extra else str(REPO)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", target],
            check=True,
            cwd=tempfile.gettempdir(),  # never import from the checkout
        )
        (path / ".installed").touch()
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seeded = ("pip", "setuptools", "wheel")  # what `python -m venv` puts there by itself
    dists = sorted(p["name"].lower() for p in json.loads(listed) if p["name"] not in seeded)
    return python, dists


def check_import(python: Path, code: str) -> bool:
    out = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
    return out.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="LLM calls per run")
    parser.add_argument("--runs", type=int, default=7, help="runs per emitter (interleaved)")
    parser.add_argument("--skip-install", action="store_true", help="no fresh-install checks")
    parser.add_argument("--extras", action="store_true", help="also install each extra")
    args = parser.parse_args()

    checks: list[tuple[str, bool]] = []
    summary = per_call(args.calls, args.runs)
    raw = summary["raw"]
    print(f"\nPer LLM call ({args.calls} calls x {args.runs} interleaved runs; µs, min / median)")
    header = f"{'emitter':<12} {'wall':>15} {'added':>15} {'ratio':>11} {'caller CPU':>15}"
    print(header + f" {'set-up ms':>10} {'RSS MiB':>8}")
    for name, s in summary.items():
        added = (s["wall_min"] - raw["wall_min"], s["wall_median"] - raw["wall_median"])
        ratio = (s["wall_min"] / raw["wall_min"], s["wall_median"] / raw["wall_median"])
        print(
            f"{name:<12} {s['wall_min']:>7.0f} / {s['wall_median']:<5.0f}"
            f" {added[0]:>7.0f} / {added[1]:<5.0f} {ratio[0]:>5.2f} / {ratio[1]:<4.2f}"
            f" {s['cpu_min']:>7.0f} / {s['cpu_median']:<5.0f}"
            f" {s['setup_ms']:>10.0f} {s['rss_added_mib']:>8.1f}"
        )
    ours = summary["atalaia"]
    ratio = ours["wall_median"] / raw["wall_median"]
    checks.append((f"atalaia <= 1.1x the raw SDK per call (median {ratio:.2f}x)", ratio <= 1.1))
    ours_added = ours["wall_median"] - raw["wall_median"]
    for other in ("openllmetry", "openlit"):
        theirs = summary[other]["wall_median"] - raw["wall_median"]
        share = ours_added / theirs if theirs > 0 else float("inf")
        checks.append((f"atalaia <= 0.5x {other} in µs added (median {share:.2f}x)", share <= 0.5))

    start = startup()
    print(
        f"\nStart-up (fresh interpreter, min of 5): import atalaia {start['import_ms']:.1f} ms, "
        f"instrument() {start['instrument_ms']:.1f} ms, +{start['rss_mib']:.1f} MiB RSS"
    )

    if not args.skip_install:
        python, dists = fresh_install(None)
        bad = [d for d in dists if d in FORBIDDEN]
        print(f"\npip install . (no extras): {len(dists)} distributions: {', '.join(dists)}")
        checks.append(
            (f"base install <= {BASE_LIMIT} distributions ({len(dists)})", len(dists) <= BASE_LIMIT)
        )
        checks.append((f"base install has none of {', '.join(FORBIDDEN)}", not bad))
        checks.append(
            (
                "base install imports atalaia",
                check_import(python, "import atalaia; atalaia.instrument('x')"),
            )
        )
        if args.extras:
            for extra, code in EXTRAS.items():
                python, dists = fresh_install(extra)
                ok = check_import(python, f"import atalaia; {code}")
                print(f"pip install .[{extra}]: {len(dists)} distributions, imports: {ok}")
                checks.append((f"pip install .[{extra}] imports", ok))

    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
