"""The e2e suite's and the stack bench's reader of the native log and trace store
(tests/e2e/backends.py Store) across a rotation: the store's file exporter renames the current
file to <signal>-<time>.jsonl and starts a new one, and nothing may be missed or read twice."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.backends import Store


def _line(name: str) -> str:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": name}
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return json.dumps(request) + "\n"


def test_a_rotation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    current = tmp_path / "traces.jsonl"
    current.write_text(_line("a") + _line("b"))
    store = Store(tmp_path)
    assert [s["name"] for _, s in store.spans()] == ["a", "b"]
    with current.open("a") as fh:  # appended after the last read, before the rotation
        fh.write(_line("c"))
    current.rename(tmp_path / "traces-2026-01-01T00-00-00.000.jsonl")
    current.write_text(_line("d"))  # the new current file, shorter than the old offset
    assert [s["name"] for _, s in store.spans()] == ["a", "b", "c", "d"]
    with current.open("a") as fh:
        fh.write(_line("e"))
    assert [s["name"] for _, s in store.spans()] == ["a", "b", "c", "d", "e"]
