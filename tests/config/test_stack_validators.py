"""Each stack config passes its own upstream validator, as committed and as the native runner
rewrites it; and each validator is shown to reject a broken copy, so a green run means
something."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run
from tools import native_config
from tools.upstream import REPO

COLLECTOR = REPO / "otel-collector" / "config.yaml"
COLLECTOR_AUTH = REPO / "otel-collector" / "config.auth.yaml"
PROMETHEUS = REPO / "prometheus" / "prometheus.yml"
LOKI = REPO / "loki" / "loki.yaml"
TEMPO = REPO / "tempo" / "tempo.yaml"


def ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def native_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configs as the native runner rewrites them."""
    state = tmp_path_factory.mktemp("native")
    config_dir, _ = native_config.prepare(state)
    return config_dir


def broken(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} not in {source.name}: update this test"
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new, 1))
    return copy


# -- OpenTelemetry Collector ---------------------------------------------------------------
def as_mounted(config: Path, tmp_path: Path) -> Path:
    """A copy of a collector config as compose mounts it: config.yaml includes files of its
    directory by their container path (`${file:/etc/otelcol/...}`), here the repo's own."""
    copy = tmp_path / f"mounted-{config.name}"
    mount = {"/etc/otelcol": str(COLLECTOR.parent)}
    copy.write_text(native_config.rewrite_paths(config.read_text(), mount))
    return copy


def collector_validate(tool, *configs: Path, token: str | None = None):
    env = {**os.environ, "ATALAIA_OTLP_TOKEN": token or ""}
    args = [f"--config={c}" for c in configs]
    return run([tool("otelcol", "otelcol-atalaia"), "validate", *args], env=env)


def test_collector_config_validates(tool, tmp_path: Path) -> None:
    ok(collector_validate(tool, as_mounted(COLLECTOR, tmp_path)))


def test_collector_config_with_bearer_token_auth_validates(tool, tmp_path: Path) -> None:
    configs = (as_mounted(COLLECTOR, tmp_path), COLLECTOR_AUTH)
    ok(collector_validate(tool, *configs, token="s3cret-test-token"))


def test_collector_native_copies_validate(tool, native_copy: Path) -> None:
    ok(collector_validate(tool, native_copy / "otel-collector" / "config.yaml"))
    ok(collector_validate(tool, native_copy / "otel-collector" / "native-store.yaml"))


def test_collector_validator_rejects_unknown_exporter(tool, tmp_path: Path) -> None:
    bad = broken(tmp_path, COLLECTOR, "exporters: [otlp_grpc/tempo,", "exporters: [nope,")
    assert collector_validate(tool, as_mounted(bad, tmp_path)).returncode != 0


@pytest.mark.parametrize(
    ("included", "old", "new"),
    [
        # An include that is not valid YAML reaches the collector as a string, not a map.
        ("derived.yaml", "conditions: &llm_call\n      - '", "conditions: &llm_call [\n      - '"),
        ("normalise.yaml", 'set(span.attributes["gen_ai.provider.name"]', "set(span.nope["),
    ],
)
def test_collector_validator_rejects_a_broken_include(
    tool, tmp_path: Path, included: str, old: str, new: str
) -> None:
    copy_dir = tmp_path / "otel-collector"
    copy_dir.mkdir()
    for f in COLLECTOR.parent.glob("*.yaml"):
        (copy_dir / f.name).write_text(f.read_text())
    target = copy_dir / included
    assert old in target.read_text(), f"{old!r} not in {included}: update this test"
    target.write_text(target.read_text().replace(old, new, 1))
    mounted = tmp_path / "config.yaml"
    mounted.write_text(
        native_config.rewrite_paths(COLLECTOR.read_text(), {"/etc/otelcol": str(copy_dir)})
    )
    assert collector_validate(tool, mounted).returncode != 0


# -- Prometheus ------------------------------------------------------------------------------
def test_prometheus_config_is_valid(tool) -> None:
    ok(run([tool("prometheus", "promtool"), "check", "config", PROMETHEUS]))


def test_prometheus_native_copy_is_valid(tool, native_copy: Path) -> None:
    ok(
        run(
            [
                tool("prometheus", "promtool"),
                "check",
                "config",
                native_copy / "prometheus" / "prometheus.yml",
            ]
        )
    )


def test_promtool_rejects_a_broken_copy(tool, tmp_path: Path) -> None:
    bad = broken(tmp_path, PROMETHEUS, "out_of_order_time_window: 1h", "out_of_order_window: 1h")
    assert run([tool("prometheus", "promtool"), "check", "config", bad]).returncode != 0


# -- Loki ------------------------------------------------------------------------------------
def loki_verify(tool, config: Path):
    return run([tool("loki"), "-verify-config", f"-config.file={config}"])


def test_loki_config_verifies(tool) -> None:
    ok(loki_verify(tool, LOKI))


def test_loki_native_copy_verifies(tool, native_copy: Path) -> None:
    ok(loki_verify(tool, native_copy / "loki" / "loki.yaml"))


def test_loki_verifier_rejects_a_broken_copy(tool, tmp_path: Path) -> None:
    bad = broken(tmp_path, LOKI, "action: index_label", "action: index_everything")
    assert loki_verify(tool, bad).returncode != 0


# -- Tempo -----------------------------------------------------------------------------------
def tempo_verify(tool, config: Path):
    # -config.verify exits non-zero on a parse error and on any configuration warning.
    return run([tool("tempo"), f"-config.file={config}", "-config.verify=true"])


def test_tempo_config_verifies(tool) -> None:
    ok(tempo_verify(tool, TEMPO))


def test_tempo_native_copy_verifies(tool, native_copy: Path) -> None:
    ok(tempo_verify(tool, native_copy / "tempo" / "tempo.yaml"))


def test_tempo_verifier_rejects_a_broken_copy(tool, tmp_path: Path) -> None:
    bad = broken(tmp_path, TEMPO, "block_retention: 336h", "block_retention_days: 14")
    assert tempo_verify(tool, bad).returncode != 0
