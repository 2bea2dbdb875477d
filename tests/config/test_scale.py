"""compose.scale.yaml, the scale-out overlay (docs/scale.md): resolved over compose.yaml by the
real compose CLI, every collector config it runs validated by the real collector exactly as
compose would start it, Prometheus's config by promtool, Loki's and Tempo's against the options
their pinned releases document. No image is pulled or started here (no Docker engine)."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.config.test_stack_compose import COMPOSE_FILE
from tests.config.test_stack_validators import as_mounted, broken, collector_validate, ok
from tests.conftest import run
from tools import config_check
from tools.upstream import REPO, read_versions

SCALE_FILE = REPO / "compose.scale.yaml"
COLLECTOR_DIR = REPO / "otel-collector"
KEYS = {"ATALAIA_S3_ACCESS_KEY": "test-access", "ATALAIA_S3_SECRET_KEY": "test-secret"}
REPLICATED = {"otel-gateway", "loki", "loki-write", "tempo"}
ONE_SHOT = {"seaweedfs-buckets"}


class ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags (!reset, !override), which compose resolves itself."""


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_sequence(node)  # type: ignore[misc]
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
        ),
    )


def compose_scale(tool, *args: str, env: dict[str, str] | None = None):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ATALAIA_", "GRAFANA_"))}
    return run(
        [
            tool("compose", "docker-compose"),
            "--project-directory",
            REPO,
            "-f",
            COMPOSE_FILE,
            "-f",
            SCALE_FILE,
            "--env-file",
            REPO / "versions.env",
            "--env-file",
            REPO / ".env.example",
            *args,
        ],
        env={**base, **(env if env is not None else KEYS)},
        cwd=REPO,
    )


def resolve(tool, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = compose_scale(tool, *args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)
    return resolved


@pytest.fixture(scope="module")
def scaled(tool) -> dict[str, Any]:
    return resolve(tool)


@pytest.fixture(scope="module")
def with_kafka(tool) -> dict[str, Any]:
    return resolve(tool, "--profile", "kafka", env={**KEYS, "ATALAIA_SCALE_KAFKA": "1"})


def test_overlay_config_is_valid(tool) -> None:
    result = compose_scale(tool, "config", "-q")
    assert result.returncode == 0, result.stderr
    result = compose_scale(tool, "--profile", "kafka", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_object_storage_keys_have_no_default(tool) -> None:
    result = compose_scale(tool, "config", "-q", env={})
    assert result.returncode != 0
    assert "ATALAIA_S3_ACCESS_KEY" in result.stderr or "ATALAIA_S3_SECRET_KEY" in result.stderr


def test_images_come_from_versions_env(scaled: dict[str, Any], with_kafka: dict[str, Any]) -> None:
    raw = yaml.load(SCALE_FILE.read_text(), Loader=ComposeLoader)
    pins = read_versions()
    for name, svc in raw["services"].items():
        if "image" in svc:
            assert re.fullmatch(r"\$\{[A-Z]+_IMAGE:\?[^}]+\}", svc["image"]), name
    for var in re.findall(r"\$\{([A-Z_]+_IMAGE)", SCALE_FILE.read_text()):
        assert var in pins, f"{var} is not pinned in versions.env"
    services = with_kafka["services"]
    assert services["kafka"]["image"] == pins["KAFKA_IMAGE"]
    assert services["thanos-query"]["image"] == pins["THANOS_IMAGE"]
    assert services["seaweedfs"]["image"] == pins["SEAWEEDFS_IMAGE"]
    assert services["loki-write"]["image"] == services["loki"]["image"] == pins["LOKI_IMAGE"]
    assert f"FROM {pins['OTELCOL_IMAGE']}" in services["otel-gateway"]["build"]["dockerfile_inline"]


def test_every_service_is_production_shaped(with_kafka: dict[str, Any]) -> None:
    for name, svc in with_kafka["services"].items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", name
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name}: no health check"
        assert svc.get("restart") == "unless-stopped", f"{name}: no restart policy"
        assert svc["logging"]["options"]["max-size"], f"{name}: no log rotation"
        assert svc["deploy"]["resources"]["limits"]["memory"], f"{name}: no memory limit"


def test_tiers_and_stores_are_replicated(scaled: dict[str, Any]) -> None:
    services = scaled["services"]
    for name in REPLICATED:
        svc = services[name]
        assert svc["deploy"]["replicas"] >= 2, name
        # Replicas can share neither a host port nor a volume that holds their state.
        assert not svc.get("ports"), f"{name}: a published port stops a second replica"
        assert all(m["type"] == "bind" for m in svc.get("volumes", [])), name
    # Agents keep their endpoint: the agent tier is the service they already send to.
    ports = {int(p["target"]) for p in services["otel-collector"]["ports"]}
    assert {4317, 4318} <= ports
    assert services["otel-collector"]["depends_on"]["otel-gateway"]["condition"] == (
        "service_healthy"
    )
    assert "kafka" not in services  # only with its profile


def test_prometheus_flags_are_compose_yaml_s(tool, scaled: dict[str, Any]) -> None:
    """The overlay restates Prometheus's command for its config file: every other flag must stay
    the single stack's (a flag added or removed there must be here too)."""
    from tests.config.test_stack_compose import compose

    result = compose(tool, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    single = json.loads(result.stdout)["services"]["prometheus"]["command"]

    def flags(cmd: list[str]) -> set[str]:
        return {c for c in cmd if not c.startswith("--config.file")}

    scaled_cmd = scaled["services"]["prometheus"]["command"]
    assert flags(scaled_cmd) == flags(single)
    assert "--config.file=/etc/prometheus/scale/prometheus.yml" in scaled_cmd


# --- the collectors, exactly as compose starts them ---------------------------------------------
def config_args(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    args = shlex.split(command) if isinstance(command, str) else command
    return [a.removeprefix("--config=") for a in args if a.startswith("--config=")]


def local_configs(paths: list[str], tmp_path: Path) -> list[Path]:
    """The container paths of a command as files here: config.yaml as mounted (its includes),
    the others straight from the repo."""
    out = []
    for p in paths:
        assert p.startswith("/etc/otelcol/"), p
        local = COLLECTOR_DIR / p.removeprefix("/etc/otelcol/")
        assert local.is_file(), f"{p}: no such file in otel-collector/"
        out.append(as_mounted(local, tmp_path) if local.name == "config.yaml" else local)
    return out


@pytest.mark.parametrize(
    ("service", "env", "expected"),
    [
        ("otel-collector", {}, ["scale/agent.yaml"]),
        (
            "otel-collector",
            {"ATALAIA_SCALE_KAFKA": "1"},
            ["scale/agent.yaml", "scale/agent-kafka.yaml"],
        ),
        (
            "otel-collector",
            {"ATALAIA_OTLP_TOKEN": "t0k3n"},
            ["scale/agent.yaml", "config.auth.yaml"],
        ),
        ("otel-gateway", {}, ["config.yaml", "scale/gateway.yaml"]),
        (
            "otel-gateway",
            {"ATALAIA_SCALE_KAFKA": "1"},
            ["config.yaml", "scale/gateway.yaml", "scale/gateway-kafka.yaml"],
        ),
    ],
)
def test_collector_configs_validate_as_compose_runs_them(
    tool, tmp_path: Path, service: str, env: dict[str, str], expected: list[str]
) -> None:
    resolved = resolve(tool, "--profile", "kafka", env={**KEYS, **env})
    paths = config_args(resolved["services"][service])
    assert paths == [f"/etc/otelcol/{e}" for e in expected]
    ok(
        collector_validate(
            tool, *local_configs(paths, tmp_path), token=env.get("ATALAIA_OTLP_TOKEN")
        )
    )


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("agent.yaml", "routing_key: traceID", "routing_key: trace_id"),
        ("agent-kafka.yaml", "partition_traces_by_id: true", "partition_trace_by_id: true"),
        ("gateway.yaml", "metrics/tool_calls:", "metrics/tool_call:"),
        ("gateway-kafka.yaml", "group_id: atalaia-gateways", "group: atalaia-gateways"),
    ],
)
def test_collector_validator_rejects_a_broken_scale_config(
    tool, tmp_path: Path, file: str, old: str, new: str
) -> None:
    bad = broken(tmp_path, COLLECTOR_DIR / "scale" / file, old, new)
    base = (
        [COLLECTOR_DIR / "scale" / "agent.yaml"]
        if file.startswith("agent-")
        else [as_mounted(COLLECTOR_DIR / "config.yaml", tmp_path)]
        if file.startswith("gateway")
        else []
    )
    if file == "gateway-kafka.yaml":
        base.append(COLLECTOR_DIR / "scale" / "gateway.yaml")
    assert collector_validate(tool, *base, bad).returncode != 0


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COLLECTOR_DIR / name).read_text())
    return doc


def merged(*names: str) -> dict[str, Any]:
    """The collector's merge of several --config files: maps merge, anything else is replaced."""

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: merge(a[k], v) if k in a else v for k, v in b.items()} | {
                k: v for k, v in a.items() if k not in b
            }
        return b

    out: dict[str, Any] = {}
    for name in names:
        out = merge(out, load(name))
    return out


def test_agent_tier_routes_whole_traces_to_the_gateways(scaled: dict[str, Any]) -> None:
    agent = load("scale/agent.yaml")
    exporters = agent["exporters"]
    assert exporters["loadbalancing/traces"]["routing_key"] == "traceID"
    assert exporters["loadbalancing/logs"]["routing_key"] == "traceID"
    assert exporters["loadbalancing/metrics"]["routing_key"] == "streamID"
    gateway_grpc = merged("config.yaml")["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    for name, exporter in exporters.items():
        dns = exporter["resolver"]["dns"]
        assert dns["hostname"] == "otel-gateway", name  # the compose service of the gateways
        assert gateway_grpc.endswith(f":{dns['port']}")
        assert exporter["sending_queue"]["storage"] == "file_storage", f"{name}: not on disk"
    assert "otel-gateway" in scaled["services"]


def test_every_gateway_labels_the_series_it_derives() -> None:
    """Every pipeline that carries the connectors' metrics ends in transform/gateway, so two
    gateways never write one series."""
    gateway = merged("config.yaml", "scale/gateway.yaml")
    connectors = set(gateway["connectors"])
    derived = {
        name: p
        for name, p in gateway["service"]["pipelines"].items()
        if name.startswith("metrics") and connectors & set(p["receivers"])
    }
    assert derived
    for name, pipeline in derived.items():
        assert pipeline.get("processors", [])[-1:] == ["transform/gateway"], name
    # The agents' host metrics come from the agent tier only.
    assert "hostmetrics" not in gateway["service"]["pipelines"]["metrics"]["receivers"]
    assert "hostmetrics" in load("scale/agent.yaml")["service"]["pipelines"]["metrics"]["receivers"]


def test_kafka_topics_agree_between_the_tiers(with_kafka: dict[str, Any]) -> None:
    producer = load("scale/agent-kafka.yaml")["exporters"]["kafka"]
    consumer = load("scale/gateway-kafka.yaml")["receivers"]["kafka"]
    for signal in ("traces", "logs", "metrics"):
        assert consumer[signal]["topics"] == [producer[signal]["topic"]], signal
        assert consumer[signal]["encoding"] == producer[signal]["encoding"]
    assert producer["partition_traces_by_id"] and producer["partition_logs_by_trace_id"]
    assert producer["brokers"] == consumer["brokers"] == ["kafka:9092"]
    assert consumer["message_marking"] == {"after": True, "on_error": False}
    assert "kafka" in with_kafka["services"]


# --- Prometheus and Thanos ---------------------------------------------------------------------
SCALE_PROMETHEUS = REPO / "prometheus" / "scale" / "prometheus.yml"


def test_scale_prometheus_config_is_valid(tool) -> None:
    ok(run([tool("prometheus", "promtool"), "check", "config", SCALE_PROMETHEUS]))


def test_scale_prometheus_is_prometheus_yml_plus_remote_write() -> None:
    base = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    scale = yaml.safe_load(SCALE_PROMETHEUS.read_text())
    [remote] = scale.pop("remote_write")
    assert remote["url"] == "http://thanos-receive:19291/api/v1/receive"
    jobs = {j["job_name"]: j for j in scale.pop("scrape_configs")}
    assert jobs.pop("otel-gateway")["dns_sd_configs"][0]["names"] == ["otel-gateway"]
    assert list(jobs.values()) == base.pop("scrape_configs")
    assert scale.pop("rule_files") == [f"../{g}" for g in base.pop("rule_files")]
    assert scale == base, "prometheus/scale/prometheus.yml drifted from prometheus.yml"


def test_thanos_receivers_form_one_hashring(scaled: dict[str, Any]) -> None:
    [ring] = json.loads((REPO / "thanos" / "hashrings.json").read_text())
    services = scaled["services"]
    receivers = sorted(s for s in services if s.startswith("thanos-receive-"))
    assert len(receivers) >= 2
    local = []
    for name in receivers:
        cmd = services[name]["command"]
        local += [c.split("=", 1)[1] for c in cmd if c.startswith("--receive.local-endpoint=")]
        assert "thanos-receive" in services[name]["networks"]["default"]["aliases"]
    assert sorted(ring["endpoints"]) == sorted(local) == [f"{r}:10901" for r in receivers]
    query = services["thanos-query"]["command"]
    for name in [*receivers, "thanos-store"]:
        assert f"--endpoint={name}:10901" in query


def test_every_bucket_the_stores_use_is_created(scaled: dict[str, Any]) -> None:
    script = " ".join(scaled["services"]["seaweedfs-buckets"]["entrypoint"])
    made = set(re.search(r"for b in ([\w\s-]+?); do", script).group(1).split())  # type: ignore[union-attr]
    used = {yaml.safe_load((REPO / "thanos" / "objstore.yaml").read_text())["config"]["bucket"]}
    loki = yaml.safe_load((REPO / "loki" / "scale.yaml").read_text())
    used |= {loki["common"]["storage"]["s3"]["bucketnames"]}
    used |= {loki["ruler"]["storage"]["s3"]["bucketnames"]}
    used |= {
        yaml.safe_load((REPO / "tempo" / "scale.yaml").read_text())["storage"]["trace"]["s3"][
            "bucket"
        ]
    }
    assert used == made


# --- Loki and Tempo (image-only: checked against their documented options) ---------------------
@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_scale_configs_use_only_documented_options(component: str) -> None:
    keys = config_check.load(config_check.keys_file(component))
    assert config_check.check_file(REPO / component / "scale.yaml", keys) == []


def test_scale_loki_indexes_what_loki_yaml_does() -> None:
    """The dashboards' and the CLI's LogQL depend on the labels and structured metadata."""
    base = yaml.safe_load((REPO / "loki" / "loki.yaml").read_text())["limits_config"]
    scale = yaml.safe_load((REPO / "loki" / "scale.yaml").read_text())["limits_config"]
    for key in ("otlp_config", "allow_structured_metadata", "retention_period"):
        assert scale[key] == base[key], key


def test_scale_loki_check_rejects_a_broken_copy(tmp_path: Path) -> None:
    keys = config_check.load(config_check.keys_file("loki"))
    bad = broken(
        tmp_path,
        REPO / "loki" / "scale.yaml",
        "s3forcepathstyle: true",
        "s3_force_path_style: true",
    )
    problems = config_check.check_file(bad, keys)
    assert len(problems) == 1 and "s3_force_path_style: not an option" in problems[0]
