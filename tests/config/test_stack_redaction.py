"""The collector's secret patterns catch real-looking secrets and leave ordinary ids alone.

Two layers: the patterns themselves, run here with Python's re (they use only syntax on which
it and Go's RE2 agree), and every rule through the pinned collector running config.yaml's own
`redaction` and `transform/redact` processors: a secret of each kind is sent in a span attribute,
a span name, a span status message, a span event name and attribute, a log body and a log
attribute, and none comes out; attributes whose key names a secret are masked whole, and token
counts (`gen_ai.usage.input_tokens`) are not.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tools import otlp_raw
from tools.upstream import REPO

CONFIG = yaml.safe_load((REPO / "otel-collector" / "config.yaml").read_text())
PATTERNS = [re.compile(p) for p in CONFIG["processors"]["redaction"]["blocked_values"]]


# One secret per rule of config.yaml's blocked_values (same order), as it would appear in text.
SECRETS = {
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123",
    "anthropic": "sk-ant-api03-abcdefghijklmnopqrstuvWXYZ012345",
    "stripe_secret": "sk_live_" + "51HqLyjWDarjtT1zdp7dc" * 2,
    "stripe_restricted": "rk_live_" + "51HqLyjWDarjtT1zdp7dc" * 2,
    "stripe_webhook": "whsec_" + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a1B2c3D4e5" * 4,
    "github_fine_grained": "github_pat_" + "11ABCDEFG0" * 5,
    "gitlab": "glpat-" + "xYz12AbC34dEf56GhI78",
    "slack": "xoxb-123456789012-abcdefABCDEF",
    "google": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    "huggingface": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXBhcnQ",
    "gcp_private_key": (
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----"
    ),
    "bearer": "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "basic": "Basic dXNlcjpodW50ZXIyaHVudGVyMg==",
    "key_value": "password=hunter2hunter2",
    "json_key_value": '"api_key": "k-9f8e7d6c5b4a"',
    "email": "maria.silva+agents@empresa.com.br",
    "url_credentials": "postgres://agent:hunter2@db.internal:5432/app",
}
# What must not survive of each (a key=value rule masks the value with its key).
LEAKS = {name: secret for name, secret in SECRETS.items()}
LEAKS |= {"key_value": "hunter2", "json_key_value": "k-9f8e7d6c5b4a", "url_credentials": "hunter2"}
LEAKS |= {"gcp_private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}


def mask(value: str) -> str:
    for p in PATTERNS:
        value = p.sub("****", value)
    return value


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123",
        "sk-ant-api03-abcdefghijklmnopqrstuv",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5" * 4,
        "xoxb-123456789012-abcdefABCDEF",
        "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        "maria.silva+agents@empresa.com.br",
        *SECRETS.values(),
    ],
)
def test_secret_is_masked(secret: str) -> None:
    assert "****" in mask(f"calling with {secret} now")
    assert secret not in mask(f"calling with {secret} now")


@pytest.mark.parametrize(
    "ordinary",
    [
        "task-0123456789abcdef0123",  # atalaia.task.id: "sk-..." inside a word is not a key
        "desk-reservation-agent-0001",
        "4bf92f3577b34da6a3ce929d0e0e4736",  # trace id
        "00f067aa0ba902b7",  # span id
        "6f1c2b9e-8a1d-4c3e-9f7a-2b5d8e0c1a4f",  # conversation id
        "gpt-4o-mini-2024-07-18",
        "invoke_agent billing-agent",
    ],
)
def test_ordinary_values_are_kept(ordinary: str) -> None:
    assert mask(ordinary) == ordinary


# -- through the real collector ----------------------------------------------------------------
PLACES = ("span attribute", "span name", "status message", "event name", "event attribute")
PLACES += ("log body", "log attribute")
# Keys that name a secret: their string values are masked whole, whatever they hold.
SECRET_KEYS = (
    "password",
    "db.password",
    "api_key",
    "x-api-key",
    "http.request.header.authorization",
)
SECRET_KEYS += ("client_secret", "access_token", "auth.token", "private_key", "cookie")
KEPT_KEYS = {"gen_ai.usage.input_tokens": 1200, "gen_ai.token.type": "input", "tokenizer": "bpe"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _value(v: dict[str, Any]) -> Any:
    return next(iter(v.values()), None) if v else None


@pytest.fixture(scope="module")
def collector_output(tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Send every secret in every place through config.yaml's redaction processors; return what
    the file exporter wrote: {"spans": [...], "logs": [...]} in OTLP JSON."""
    tmp = tmp_path_factory.mktemp("redaction")
    port, health = _free_port(), _free_port()
    processors = {
        "redaction": CONFIG["processors"]["redaction"],
        "transform/redact": f"${{file:{REPO / 'otel-collector' / 'redact.yaml'}}}",
    }
    config = {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health}"}},
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}},
        "processors": processors,
        "exporters": {
            "file/spans": {"path": str(tmp / "spans.jsonl")},
            "file/logs": {"path": str(tmp / "logs.jsonl")},
        },
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["redaction", "transform/redact"],
                    "exporters": ["file/spans"],
                },
                "logs": {
                    "receivers": ["otlp"],
                    "processors": ["redaction", "transform/redact"],
                    "exporters": ["file/logs"],
                },
            },
            "telemetry": {"metrics": {"level": "none"}},
        },
    }
    # yaml.safe_dump would quote the ${file:...} include; the collector expands it either way.
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    log = tmp / "otelcol.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(tool("otelcol", "otelcol-atalaia")), f"--config={tmp / 'config.yaml'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{health}/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}"
        spans, logs = [], []
        for name, secret in SECRETS.items():
            text = f"rule {name}: calling with {secret} now"
            spans.append(
                otlp_raw.span(
                    f"span {name} {secret}",
                    [("rule", name), ("note", text)],
                    status_message=text,
                    events=[f"event {name} {secret}"],
                )
            )
            logs.append(otlp_raw.log(text, [("rule", name), ("note", text)]))
        keyed = [(k, f"value-of-{k}") for k in SECRET_KEYS] + list(KEPT_KEYS.items())
        spans.append(otlp_raw.span("keyed", [("rule", "keys"), *keyed]))
        logs.append(otlp_raw.log("keyed", [("rule", "keys"), *keyed]))
        for span in spans[:-1]:  # the event carries the text as an attribute too
            span.events[0].attributes.append(span.attributes[1])
        with httpx.Client() as client:
            for signal, body in (
                ("traces", otlp_raw.traces_request("redaction-check", spans)),
                ("logs", otlp_raw.logs_request("redaction-check", logs)),
            ):
                assert otlp_raw.post(client, url, signal, body).status_code == 200

        def read(name: str, key: str, items: str) -> list[dict[str, Any]]:
            path = tmp / name
            if not path.exists():
                return []
            out = []
            for line in path.read_text().splitlines():
                for rs in json.loads(line).get(key, []):
                    for scope in rs.get(
                        "scopeSpans" if key == "resourceSpans" else "scopeLogs", []
                    ):
                        out += scope.get(items, [])
            return out

        while True:
            got = {
                "spans": read("spans.jsonl", "resourceSpans", "spans"),
                "logs": read("logs.jsonl", "resourceLogs", "logRecords"),
            }
            if len(got["spans"]) == len(spans) and len(got["logs"]) == len(logs):
                break
            assert time.monotonic() < deadline + 30, f"the file exporter wrote {got}"
            time.sleep(0.2)
        yield got
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _attrs(item: dict[str, Any]) -> dict[str, Any]:
    return {kv["key"]: _value(kv.get("value", {})) for kv in item.get("attributes", [])}


def _places(output: dict[str, Any], rule: str) -> dict[str, str]:
    span = next(s for s in output["spans"] if _attrs(s).get("rule") == rule)
    log = next(r for r in output["logs"] if _attrs(r).get("rule") == rule)
    return {
        "span attribute": str(_attrs(span)["note"]),
        "span name": span["name"],
        "status message": span.get("status", {}).get("message", ""),
        "event name": span["events"][0]["name"],
        "event attribute": str(_attrs(span["events"][0])["note"]),
        "log body": str(_value(log["body"])),
        "log attribute": str(_attrs(log)["note"]),
    }


@pytest.mark.parametrize("rule", list(SECRETS))
def test_the_collector_masks_each_secret_everywhere(
    collector_output: dict[str, Any], rule: str
) -> None:
    places = _places(collector_output, rule)
    assert set(places) == set(PLACES)
    for place, text in places.items():
        assert LEAKS[rule] not in text, f"{rule} leaked in the {place}: {text!r}"
        assert "****" in text, f"{rule}: nothing masked in the {place}: {text!r}"


@pytest.mark.parametrize("signal", ["spans", "logs"])
def test_the_collector_masks_attributes_whose_key_names_a_secret(
    collector_output: dict[str, Any], signal: str
) -> None:
    item = next(i for i in collector_output[signal] if _attrs(i).get("rule") == "keys")
    attrs = _attrs(item)
    for key in SECRET_KEYS:
        assert attrs[key] == "****", f"{key}: {attrs[key]!r}"
    assert {k: attrs[k] for k in KEPT_KEYS} == {
        k: str(v) if isinstance(v, int) else v for k, v in KEPT_KEYS.items()
    }
