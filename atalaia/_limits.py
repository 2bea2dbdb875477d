"""Bounds on what agent code can make the library hold or send, and one warning per kind of problem.

- Span and log attribute values are cut to `ATTRIBUTE_LENGTH` characters and at most
  `ATTRIBUTE_COUNT` attributes per item (the SDK's own limits, set here unless the OTEL_*LIMIT
  variables say otherwise).
- Metric label values are cut to `LABEL_LENGTH` characters, and each label key takes at most
  `LABEL_VALUES` distinct values per process; later new values are recorded as ``other``.
- Token counts above `MAX_TOKENS` (or negative) are refused.
- Each kind of problem is logged once (at WARNING), the repeats at DEBUG.
"""

from __future__ import annotations

import logging
import threading

_log = logging.getLogger("atalaia")

ATTRIBUTE_LENGTH = 4096
ATTRIBUTE_COUNT = 128
EVENT_COUNT = 128
LABEL_LENGTH = 128
LABEL_VALUES = 200
# More tokens than any model's context holds by far: a count above it is a bug in the caller
# (or a parsed garbage value), and priced it would put absurd amounts in the cost series.
MAX_TOKENS = 100_000_000
OTHER = "other"


class Warnings:
    """Logs the first occurrence of each kind of problem as a warning, the rest at debug."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def once(self, kind: str, message: str, *args: object) -> None:
        with self._lock:
            first = kind not in self._seen
            if first:
                self._seen.add(kind)
        if first:
            _log.warning("atalaia: " + message, *args)
        elif _log.isEnabledFor(logging.DEBUG):
            _log.debug("atalaia: " + message, *args)

    def seen(self, kind: str) -> bool:
        return kind in self._seen


class Labels:
    """Caps metric label values: length, and distinct values per key."""

    def __init__(self, warnings: Warnings) -> None:
        self._values: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._warnings = warnings

    def value(self, key: str, value: object) -> str:
        text = value if isinstance(value, str) else str(value)
        if len(text) > LABEL_LENGTH:
            self._warnings.once(
                f"label-length:{key}",
                "a %s value of %d characters was cut to %d (metric labels stay short)",
                key,
                len(text),
                LABEL_LENGTH,
            )
            text = text[:LABEL_LENGTH]
        seen = self._values.get(key)
        if seen is not None and text in seen:
            return text
        with self._lock:
            seen = self._values.setdefault(key, set())
            if text in seen or len(seen) < LABEL_VALUES:
                seen.add(text)
                return text
        self._warnings.once(
            f"label-values:{key}",
            "%s has taken %d distinct values; new ones are recorded as %r",
            key,
            LABEL_VALUES,
            OTHER,
        )
        return OTHER


def tokens(value: object, warnings: Warnings, what: str = "token count") -> int | None:
    """A sane token count, or None (with one warning per kind) for a negative, absurd or
    non-integer one."""
    if isinstance(value, bool):
        value = None
    try:
        count: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        warnings.once(
            "tokens-invalid", "%s %r is not an integer; not recorded", what, str(value)[:100]
        )
        return None
    if count < 0 or count > MAX_TOKENS:
        warnings.once(
            "tokens-absurd",
            "%s %d is outside 0..%d; not recorded",
            what,
            count,
            MAX_TOKENS,
        )
        return None
    return count
