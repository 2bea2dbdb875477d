"""Each stack config passes its check, as committed and as the native runner rewrites it; and
each check is shown to reject a broken copy, so a green run means something.

The collector's and Prometheus's configs go through their own upstream validators (built from
their Go modules). Loki's and Tempo's are checked against the options their pinned releases
document, as data (see tools/config_check.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run
from tools import config_check, native_config
from tools.config_check import AllowedKeys
from tools.config_keys import count_keys
from tools.upstream import REPO, read_versions

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


# -- Loki and Tempo ----------------------------------------------------------------------------
# Both are AGPL: this project runs them only from their images, so there is no binary to run
# `loki -verify-config` or `tempo -config.verify`. Their configs are checked statically against
# the options the pinned release's configuration reference documents (tests/config/data/, made
# by tools/config_keys.py; tools/config_check.py walks the config).
@pytest.fixture(scope="module")
def loki_keys() -> AllowedKeys:
    return config_check.load(config_check.keys_file("loki"))


@pytest.fixture(scope="module")
def tempo_keys() -> AllowedKeys:
    return config_check.load(config_check.keys_file("tempo"))


@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_documented_options_are_those_of_the_pinned_release(component: str) -> None:
    path = config_check.keys_file(component)  # named after the version in versions.env
    assert path.exists(), f"{path.name} is missing: run tools/config_keys.py for the new pin"
    allowed = config_check.load(path)
    assert allowed.version == read_versions()[f"{component.upper()}_VERSION"]
    # A parse that silently lost most of the reference would make every check pass.
    assert count_keys(allowed.tree) > 1000


def test_loki_config_uses_only_documented_options(loki_keys: AllowedKeys) -> None:
    assert config_check.check_file(LOKI, loki_keys) == []


OTLP_ACTION = "limits_config.otlp_config.resource_attributes.attributes_config[0].action"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        # A value outside the documented ones: structured_metadata, drop, index_label.
        ("action: index_label", "action: index_everything", f"{OTLP_ACTION}: 'index_everything'"),
        ("retention_period: 720h", "retention_period: 30 days", "limits_config.retention_period"),
        ("store: inmemory", "store: in-memory", "common.ring.kvstore.store: 'in-memory'"),
        ("retention_enabled: true", "retention_enabled: 'true'", "compactor.retention_enabled"),
        ("wal:\n    enabled: true", "wal: true", "ingester.wal: a block of options"),
        ("from: 2024-01-01", "start: 2024-01-01", "schema_config.configs[0].start: not an option"),
        ("max_size_mb: 100", "max_size: 100", ".embedded_cache.max_size: not an option of Loki"),
    ],
)
def test_loki_check_rejects_a_broken_copy(
    loki_keys: AllowedKeys, tmp_path: Path, old: str, new: str, problem: str
) -> None:
    problems = config_check.check_file(broken(tmp_path, LOKI, old, new), loki_keys)
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_tempo_config_uses_only_documented_options(tempo_keys: AllowedKeys) -> None:
    assert config_check.check_file(TEMPO, tempo_keys) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "block_retention: 336h",
            "block_retention_days: 14",
            "compactor.compaction.block_retention_days: not an option of Tempo "
            + read_versions()["TEMPO_VERSION"],
        ),
        # distributor.receivers is the OpenTelemetry Collector's OTLP receiver config.
        (
            "endpoint: 0.0.0.0:4417",
            "endpont: 0.0.0.0:4417",
            "distributor.receivers.otlp.protocols.grpc.endpont: not an option",
        ),
        ("wait: 10s", "wait: 10", "metrics_generator.processor.service_graphs.wait: a duration"),
        (
            "filter_server_spans: false",
            "filter_server_spans: no thanks",
            "local_blocks.filter_server_spans: a boolean",
        ),
        (
            "processors: [service-graphs",
            "processors: [service_graphs",
            "overrides.defaults.metrics_generator.processors: 'service_graphs'",
        ),
        ("stream_over_http_enabled: true", "stream_over_http: true", "stream_over_http: not an"),
    ],
)
def test_tempo_check_rejects_a_broken_copy(
    tempo_keys: AllowedKeys, tmp_path: Path, old: str, new: str, problem: str
) -> None:
    problems = config_check.check_file(broken(tmp_path, TEMPO, old, new), tempo_keys)
    assert len(problems) == 1, problems
    assert problem in problems[0]
