"""Turning on the maintained OpenTelemetry GenAI instrumentations of what is installed.

Every installed instrumentation package of the official GenAI family (entry point group
``opentelemetry_instrumentor``, distributions ``opentelemetry-instrumentation-genai-*``, plus
``opentelemetry-instrumentation-openai-v2`` and ``opentelemetry-instrumentation-google-genai``)
whose instrumented library is installed too is turned on with our tracer and logger providers,
and a no-op meter provider: the collector derives calls, tokens and durations from the spans, so
the instrumentations' own histograms would only be a second copy (docs/telemetry.md).

Where both ``-genai-openai`` and the older ``-openai-v2`` are installed, only the first is used
(both would trace every call). The Anthropic SDK traces itself once a tracer provider exists; when
an Anthropic instrumentation is turned on here, its own tracing is turned off
(``ANTHROPIC_OPEN_TELEMETRY=false``) so that a call is one span.

The clients' own retries (openai and anthropic, whose clients share one retry loop) become
``atalaia.retries`` by reason and a ``retry`` event on the call's span.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider

from atalaia import names
from atalaia._telemetry import Telemetry

_log = logging.getLogger("atalaia")

# Older packages replaced by a -genai-* one: never both on the same library.
_SUPERSEDED = {"opentelemetry-instrumentation-openai-v2": "openai"}
_OTHER_OFFICIAL = (
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-instrumentation-google-genai",
)
_GENAI_PREFIX = "opentelemetry-instrumentation-genai-"
ENV_ANTHROPIC_TRACING = "ANTHROPIC_OPEN_TELEMETRY"
# The instrumentation is asked for by the name of its entry point (the library it instruments).
_installed: dict[str, Any] = {}


def _official(dist: str) -> bool:
    return dist.startswith(_GENAI_PREFIX) or dist in _OTHER_OFFICIAL


def _instrumented_libraries(dist: metadata.Distribution) -> list[str]:
    """The distributions an instrumentation instruments (its ``instruments`` extra)."""
    found = []
    for requirement in dist.requires or []:
        if "extra" in requirement and "instruments" in requirement:
            match = re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement)
            if match:
                found.append(match.group(1))
    return found


def _has_distribution(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def available() -> dict[str, metadata.EntryPoint]:
    """The official GenAI instrumentations installed whose libraries are installed, by name."""
    chosen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group="opentelemetry_instrumentor"):
        dist = ep.dist
        if dist is None or not _official(dist.name):
            continue
        libraries = _instrumented_libraries(dist)
        if not libraries or not all(_has_distribution(lib) for lib in libraries):
            continue
        if ep.name in chosen and dist.name in _SUPERSEDED:
            continue  # a -genai-* package for the same library is already chosen
        chosen[ep.name] = ep
    return chosen


def instrument_clients(telemetry: Telemetry, which: bool | Iterable[str]) -> list[str]:
    """Turn on the instrumentations (all available, or those named); returns their names."""
    if which is False:
        return []
    found = available()
    wanted = set(found) if which is True else set(which)
    missing = sorted(wanted - set(found))
    if missing and which is not True:
        telemetry.warnings.once(
            "instrumentation-missing",
            "no installed OpenTelemetry GenAI instrumentation for %s: "
            "install the matching atalaia extra (docs/library.md)",
            ", ".join(missing),
        )
    for name in ("openai", "anthropic"):
        if which is True and name not in found and _has_distribution(name):
            telemetry.warnings.once(
                f"instrumentation-missing:{name}",
                "%s is installed but not its instrumentation, so its calls are not traced: "
                "pip install 'atalaia[%s]' (or wrap calls in track_llm_call)",
                name,
                name,
            )
    done = []
    for name in sorted(wanted & set(found)):
        if name == "anthropic":
            _quiet_anthropic_tracing(telemetry)
        _when_imported(name, lambda ep=found[name], n=name: _turn_on(telemetry, n, ep))
        done.append(name)
    return done


def _when_imported(module: str, callback: Any) -> None:
    """Run `callback` now if `module` is imported already (or is no importable module), else
    when it first is: the clients take 0.5 to 1.5 s to import, which an agent that has them
    installed but does not use them should not pay in `instrument()`."""
    if module in sys.modules or importlib.util.find_spec(module) is None:
        callback()
        return
    import wrapt  # installed with every instrumentation (opentelemetry-instrumentation)

    wrapt.register_post_import_hook(lambda _module: callback(), module)


def _turn_on(telemetry: Telemetry, name: str, ep: metadata.EntryPoint) -> None:
    with telemetry.guard(f"instrumenting {name}"):
        if name not in _installed:
            instrumentor = ep.load()()
            instrumentor.instrument(
                tracer_provider=telemetry.tracer_provider,
                meter_provider=NoOpMeterProvider(),
                logger_provider=telemetry.logger_provider,
            )
            _installed[name] = instrumentor
        if name in ("openai", "anthropic"):
            _count_retries(telemetry, name)


def uninstrument_clients() -> None:
    """Undo instrument_clients (tests)."""
    for name, instrumentor in list(_installed.items()):
        instrumentor.uninstrument()
        del _installed[name]
    for library, (owner, original) in list(_retry_patches.items()):
        owner._sleep_for_retry = original
        del _retry_patches[library]


def _quiet_anthropic_tracing(telemetry: Telemetry) -> None:
    value = os.environ.get(ENV_ANTHROPIC_TRACING)
    if value is None:
        os.environ[ENV_ANTHROPIC_TRACING] = "false"
    elif value.lower() != "false":
        telemetry.warnings.once(
            "anthropic-twice",
            "%s=%s with the Anthropic instrumentation on: every Anthropic call is traced twice",
            ENV_ANTHROPIC_TRACING,
            value,
        )


_retry_patches: dict[str, tuple[Any, Any]] = {}


def _retry_reason(response: Any) -> str:
    status = getattr(response, "status_code", None)
    if status == 429:
        return "rate_limit"
    if status in (408, 504):
        return "timeout"
    return "llm_error"


def _count_retries(telemetry: Telemetry, library: str) -> None:
    """Wrap the client's retry sleep (``_sleep_for_retry``, shared by the sync and async
    clients of the Stainless-generated SDKs) to count each retry. Skipped, with no harm, when a
    client version has no such method."""
    if library in _retry_patches:
        return
    with telemetry.guard(f"counting {library} retries"):
        module = __import__(f"{library}._base_client", fromlist=["BaseClient"])
        for cls_name in ("SyncAPIClient", "AsyncAPIClient"):
            owner = getattr(module, cls_name, None)
            original = getattr(owner, "_sleep_for_retry", None) if owner else None
            if original is None:
                continue
            _retry_patches[f"{library}.{cls_name}"] = (owner, original)
            owner._sleep_for_retry = _retry_wrapper(telemetry, original)  # type: ignore[union-attr]


def _retry_wrapper(telemetry: Telemetry, original: Any) -> Any:
    def _sleep_for_retry(self: Any, *args: Any, **kwargs: Any) -> Any:
        with telemetry.guard("counting a retry"):
            response = kwargs.get("response")
            reason = _retry_reason(response)
            telemetry.instruments.retries.add(
                1, telemetry.metric_attributes(None, {names.RETRY_REASON: reason})
            )
            span = trace.get_current_span()
            attrs: dict[str, Any] = {names.RETRY_REASON: reason}
            if response is not None and getattr(response, "status_code", None):
                attrs["http.response.status_code"] = int(response.status_code)
            if "retries_taken" in kwargs:
                attrs["atalaia.retry.attempt"] = int(kwargs["retries_taken"]) + 1
            span.add_event("retry", attrs)
        return original(self, *args, **kwargs)

    return _sleep_for_retry
