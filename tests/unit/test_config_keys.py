"""tools/config_keys.py reads the reference notation of Loki's and Tempo's docs into option trees,
and tools/config_check.py walks a config with one. The snippets here are written for the tests,
in the same notation as upstream's reference."""

from __future__ import annotations

import textwrap

import pytest

from tools.config_check import AllowedKeys, check
from tools.config_keys import (
    LokiReference,
    TempoReference,
    documented_values,
    manifest_tree,
    merge,
    otel_config_tables,
)

FENCE = "```"


def md(*sections: tuple[str, str]) -> str:
    """A markdown page of `heading` + yaml block sections."""
    return "\n".join(
        f"{heading}\n\n{FENCE}yaml\n{textwrap.dedent(body).strip()}\n{FENCE}\n"
        for heading, body in sections
    )


LOKI = (
    "## Configuration file reference\n\n"
    + md(
        (
            "### Supported contents and default values of `loki.yaml`",
            """
        # Enables auth.
        [auth_enabled: <boolean> | default = true]

        [server: <server>]

        common:
          # Backend storage. Supported values are: consul, etcd, inmemory.
          [store: <string> | default = "consul"]

          [path_prefix: <string> | default = ""]

        [schema_config: <schema_config>]

        [named: <map of string to server>]
        """,
        ),
        (
            "### server",
            """
        # Port.
        [http_listen_port: <int> | default = 3100]

        [<tls_config>]

        http_headers:
          [: <map of string to Header>]
        """,
        ),
        ("### tls_config", '[cert_file: <string> | default = ""]'),
        ("### schema_config", "[configs: <list of period_configs>]"),
        ("### period_config", "[period: <duration>]\n\n[tags: <map of string to string>]"),
    )
    + "\n## Runtime Configuration file\n\n"
    + md(("### later", "[ignored: <string>]"))
)


def test_loki_reference_resolves_named_blocks_lists_maps_and_embeds() -> None:
    assert LokiReference(LOKI).tree() == {
        "auth_enabled": "boolean",
        "server": {"cert_file": "string", "http_listen_port": "int", "http_headers": "map"},
        "common": {"store": "enum(consul|etcd|inmemory)", "path_prefix": "string"},
        "schema_config": {"configs": [{"period": "duration", "tags": "map"}]},
        "named": {
            "<name>": {"cert_file": "string", "http_listen_port": "int", "http_headers": "map"}
        },
    }


TEMPO = md(
    (
        "## Distributor",
        """
        distributor:
            receivers:
                otlp:
                    protocols:
                        grpc:    # default localhost:4317
            forwarders:
                # Forwarder name.
              - name: <string>
                backend: <string>
              - (repetition of above...)
        """,
    ),
    (
        "## Overrides",
        """
        overrides:
          defaults:
            ingestion: [rate_strategy: <global|local> | default = local]
            metrics_generator:
              # The following processors are supported:
              #  - service-graphs
              #  - span-metrics
              [processors: <list of strings>]
              span_metrics:
                [filter_policies: [
                  [
                    include/exclude:
                      match_type: <string>
                  ]
                ]
            storage:
              parquet_dedicated_columns:
                [
                  name: <string>, # name of the attribute
                  scope: <string> # options: resource, span
                ]
        ---
        overrides:
          "<tenant-id>":
            [other_file: <int>]
        """,
    ),
    ("## Example", "overrides:\n  defaults:\n    ingestion:\n      strategy: local"),
    (
        "## Configuration blocks\n\n### Policy match",
        "[match_type: <string>]\nattributes: <list of attributes>\n  - [key: <string>]",
    ),
)


def test_tempo_reference_reads_lists_flow_lists_alternatives_and_inline_options() -> None:
    tree = TempoReference(TEMPO).tree()
    assert tree["distributor"] == {
        "receivers": {"otlp": {"protocols": {"grpc": "any"}}},
        "forwarders": [{"name": "string", "backend": "string"}],
    }
    defaults = tree["overrides"]["defaults"]
    assert defaults["ingestion"] == {"rate_strategy": "enum(global|local)"}
    generator = defaults["metrics_generator"]
    assert generator["processors"] == "enum-items(service-graphs|span-metrics)"
    policy = {"match_type": "string"}
    assert generator["span_metrics"] == {
        "filter_policies": [{"include": policy, "exclude": policy}]
    }
    # A trailing comment is not read: one in Tempo's reference lists a wrong value ("regexp").
    columns = [{"name": "string", "scope": "string"}]
    assert defaults["storage"] == {"parquet_dedicated_columns": columns}
    # The second YAML document (another file) and the plain example are not options.
    assert set(tree["overrides"]) == {"defaults"}
    assert "strategy" not in defaults["ingestion"]


def test_manifest_kinds_come_from_the_default_values() -> None:
    manifest = {"a": True, "b": 3, "c": "5m0s", "d": "vParquet4", "e": [], "f": {}, "g": None}
    manifest["h"] = {0: True}  # keyed by data, not option names
    assert manifest_tree(manifest) == {
        "a": "boolean",
        "b": "number",
        "c": "duration",
        "d": "string",
        "e": "list",
        "f": "map",
        "g": "any",
        "h": "map",
    }


def test_merge_keeps_structure_over_opaque_leaves_and_refines_strings() -> None:
    assert merge({"r": "map", "s": "string"}, {"r": {"otlp": "any"}, "s": "enum(a|b)"}) == {
        "r": {"otlp": "any"},
        "s": "enum(a|b)",
    }
    assert merge({"x": "number"}, {"x": "int", "y": "any"}) == {"x": "number", "y": "any"}
    assert merge({"l": "list"}, {"l": [{"k": "string"}]}) == {"l": [{"k": "string"}]}


@pytest.mark.parametrize(
    ("doc", "values"),
    [
        ("Supported values are: 'snappy' and ''.", ["", "snappy"]),
        (
            "Deletion mode. Can be one of 'disabled', 'filter-only', or 'x'.",
            ["disabled", "filter-only", "x"],
        ),
        (
            "It allows one of [a, drop] for all. It additionally allows index_label action",
            ["a", "drop", "index_label"],
        ),
        ("Supported values: all, read. A full list of targets is printed by -list-targets", None),
        ("Supported values are: 'gzip', 'snappy' and '' (disable compression)", None),
        ("No list here.", None),
    ],
)
def test_documented_values(doc: str, values: list[str] | None) -> None:
    assert documented_values(doc) == values


def test_otel_config_tables() -> None:
    table = textwrap.dedent(
        """
        ### Config
        | Name      | Type                          | Default | Docs |
        |-----------|-------------------------------|---------|------|
        | protocols | [p-Protocols](#p-protocols)   |         |      |
        ### p-Protocols
        | Name | Type                          | Default | Docs |
        |------|-------------------------------|---------|------|
        | grpc | [g-Server](#g-server)         |         |      |
        ### g-Server
        | Name     | Type                          | Default | Docs |
        |----------|-------------------------------|---------|------|
        | endpoint | string                        |         |      |
        | idle     | [time-Duration](#time-duration) |       |      |
        | origins  | []string                      |         |      |
        | size     | uint64                        |         |      |
        ### time-Duration
        A duration.
        """
    )
    assert otel_config_tables(table) == {
        "protocols": {
            "grpc": {"endpoint": "string", "idle": "duration", "origins": "list", "size": "int"}
        }
    }


ALLOWED = AllowedKeys(
    "Loki",
    "9.9.9",
    {
        "server": {"port": "int", "level": "enum(info|debug)", "timeout": "duration"},
        "configs": [{"from": "string", "labels": "map"}],
        "stores": {"<name>": {"dir": "string"}},
        "targets": "enum-list(read|write)",
        "on": "boolean",
    },
)


def test_check_reports_every_problem_with_its_full_path() -> None:
    config = {
        "server": {"port": "64MB", "level": "warn", "timeout": "10", "extra": 1},
        "configs": [{"from": "2024-01-01"}, {"from": "x", "labels": ["a"], "to": 1}],
        "stores": {"one": {"dir": "/d"}, "two": {"dirs": "/d"}},
        "targets": "read,writ",
        "on": "yes please",
        "nope": None,
    }
    assert check(config, ALLOWED) == [
        "server.level: 'warn' is not a documented value (one of 'info', 'debug')",
        "server.timeout: a duration (with a unit, e.g. 30s, 1h) is documented, got '10'",
        "server.extra: not an option of Loki 9.9.9",
        "configs[1].labels: a mapping is documented, got a list",
        "configs[1].to: not an option of Loki 9.9.9",
        "stores.two.dirs: not an option of Loki 9.9.9 (did you mean dir?)",
        "targets: 'writ' is not a documented value (one of 'read', 'write')",
        "on: a boolean is documented, got 'yes please'",
        "nope: not an option of Loki 9.9.9",
    ]


def test_check_accepts_defaults_and_documented_shapes() -> None:
    config = {
        "server": {"port": 3100, "level": "info", "timeout": "1h30m"},
        "configs": [{"from": "2024-01-01", "labels": {"a": "b"}}],
        "stores": None,
        "targets": "read,write",
        "on": False,
    }
    assert check(config, ALLOWED) == []
    assert check({"server": {"port": {"a": 1}}}, ALLOWED) == [
        "server.port: a single value (int) is documented, got a mapping"
    ]
