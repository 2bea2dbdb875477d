"""The collector's secret patterns catch real-looking secrets and leave ordinary ids alone.

The patterns use only syntax on which Python's re and Go's RE2 agree, so this runs them here;
tests/e2e proves the collector itself applies them.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tools.upstream import REPO

CONFIG = yaml.safe_load((REPO / "otel-collector" / "config.yaml").read_text())
PATTERNS = [re.compile(p) for p in CONFIG["processors"]["redaction"]["blocked_values"]]


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
    ],
)
def test_secret_is_masked(secret: str) -> None:
    assert mask(f"calling with {secret} now") == "calling with **** now"


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
