"""The native runner's rewrite of the compose configs changes only hosts and container paths,
and the runner refuses clearly instead of half-starting."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tools import native_config
from tools.native_stack import NativeStack, StackError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    state = tmp_path_factory.mktemp("native")
    config_dir, data_dir = native_config.prepare(state)
    return state, config_dir, data_dir


def rewritten(prepared: tuple[Path, Path, Path]) -> dict[str, str]:
    _, config_dir, _ = prepared
    return {
        rel: (config_dir / rel).read_text()
        for rel in native_config.MAIN_CONFIGS
        if (config_dir / rel).exists()
    }


def test_no_compose_host_and_no_wildcard_bind_is_left(prepared) -> None:
    hosts = "|".join(map(re.escape, native_config.HOSTS))
    for rel, text in rewritten(prepared).items():
        assert not re.search(rf"\b(?:{hosts}):\d+", text), rel
        assert "0.0.0.0" not in text, rel


def test_container_paths_point_into_the_state_dir(prepared) -> None:
    state, _, data_dir = prepared
    texts = rewritten(prepared)
    for path in ("/var/lib/otelcol", "/etc/otelcol", "/etc/alertmanager/secrets"):
        for rel, text in texts.items():
            assert not re.search(rf"(?<![\w/.-]){re.escape(path)}\b", text), (rel, path)
    collector = texts["otel-collector/config.yaml"]
    assert f"directory: {data_dir / 'otelcol'}/file_storage" in collector
    # The includes of config.yaml are read from the copy.
    assert f"${{file:{state / 'config' / 'otel-collector'}/derived.yaml}}" in collector
    store = texts["otel-collector/native-store.yaml"]
    assert f"path: {data_dir / 'otelcol'}/store/logs.jsonl" in store
    assert str(state) in texts["alertmanager/alertmanager.yml"]


def test_urls_keep_their_paths(prepared) -> None:
    texts = rewritten(prepared)
    assert "endpoint: http://127.0.0.1:3100/otlp" in texts["otel-collector/config.yaml"]
    assert "endpoint: http://127.0.0.1:9090/api/v1/otlp" in texts["otel-collector/config.yaml"]
    assert "endpoint: 127.0.0.1:4417" in texts["otel-collector/config.yaml"]


def test_the_store_listens_where_the_collector_sends_logs_and_traces(prepared) -> None:
    """Natively, the log and trace store takes what config.yaml's Loki and Tempo exporters
    send: the same host:port (and Loki's OTLP path)."""
    texts = rewritten(prepared)
    store = texts["otel-collector/native-store.yaml"]
    assert "endpoint: 127.0.0.1:3100" in store and "logs_url_path: /otlp/v1/logs" in store
    assert "endpoint: 127.0.0.1:4417" in store


def test_only_hosts_and_paths_change(prepared) -> None:
    """Undo the path rewrite and the file is the committed one with only hosts rewritten."""
    _, config_dir, data_dir = prepared
    mapping = native_config.path_map(config_dir, data_dir)
    repo = Path(native_config.__file__).resolve().parents[1]
    for rel, text in rewritten(prepared).items():
        undone = text
        for container, native in sorted(mapping.items(), key=lambda kv: -len(kv[1])):
            undone = undone.replace(native, container)
        assert undone == native_config.rewrite_hosts((repo / rel).read_text()), rel


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 9093))
            s.listen()
        except OSError:
            pass  # something else already holds it: the runner must refuse all the same
        stack = NativeStack(tmp_path, services=["alertmanager"])
        with pytest.raises(StackError, match=r"9093 \(alertmanager\)"):
            stack.start()
    assert stack.running() == {}
    assert not (tmp_path / "stack.json").exists()


def test_host_rewrite_touches_only_host_port_pairs_and_wildcards() -> None:
    text = (
        "job_name: prometheus\n"
        "targets: [prometheus:9090, otel-collector:8888]\n"
        "host: 0.0.0.0\n"
        "url: http://10.0.0.0:9000/loki:3100x\n"
        "exporters: [otlp_http/loki]\n"
    )
    assert native_config.rewrite_hosts(text) == (
        "job_name: prometheus\n"
        "targets: [127.0.0.1:9090, 127.0.0.1:8888]\n"
        "host: 127.0.0.1\n"
        "url: http://10.0.0.0:9000/loki:3100x\n"
        "exporters: [otlp_http/loki]\n"
    )
