"""With ATALAIA_OTLP_TOKEN set, the collector's OTLP receivers (config.yaml + config.auth.yaml)
turn away requests without the bearer token and accept those with it.

This runs its own collector on free ports, beside the native stack, from a copy of the two
committed files in which only ports, the queue directory and the includes' directory differ.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.backends import eventually
from tools.upstream import REPO, components

TOKEN = "e2e-" + "x7Kq" * 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def authenticated_collector(tmp_path: Path) -> Iterator[str]:
    binary = components()["otelcol"].binary("otelcol-atalaia")
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make tools` first")
    ports = {p: free_port() for p in (4317, 4318, 4319, 8888, 13133)}
    configs = []
    for name in ("config.yaml", "config.auth.yaml"):
        text = (REPO / "otel-collector" / name).read_text()
        text = re.sub(r"0\.0\.0\.0:(\d+)", lambda m: f"127.0.0.1:{ports[int(m[1])]}", text)
        # The derived-metrics loopback (otlp/derive and the exporter that feeds it).
        text = text.replace("127.0.0.1:4319", f"127.0.0.1:{ports[4319]}")
        text = text.replace("port: 8888", f"port: {ports[8888]}")
        text = text.replace("host: 0.0.0.0", "host: 127.0.0.1")
        text = text.replace("/var/lib/otelcol", str(tmp_path))
        text = text.replace("/etc/otelcol", str(REPO / "otel-collector"))  # its includes
        (tmp_path / name).write_text(text)
        configs.append(f"--config={tmp_path / name}")
    log = open(tmp_path / "collector.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [binary, *configs],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ATALAIA_OTLP_TOKEN": TOKEN},
    )
    health = f"http://127.0.0.1:{ports[13133]}/"
    try:
        eventually(
            lambda: proc.poll() is None and httpx.get(health).status_code == 200,
            timeout=30,
            what="the authenticated collector's health endpoint",
        )
        yield f"http://127.0.0.1:{ports[4318]}/v1/logs"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_otlp_needs_the_bearer_token_when_one_is_set(authenticated_collector: str) -> None:
    body = b'{"resourceLogs":[]}'
    headers = {"Content-Type": "application/json"}
    assert httpx.post(authenticated_collector, content=body, headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer not-the-token"}
    assert httpx.post(authenticated_collector, content=body, headers=wrong).status_code == 401
    right = {**headers, "Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(authenticated_collector, content=body, headers=right).status_code == 200
