"""The Resource every signal of a process carries: who is speaking."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.sdk.resources import (
    OTELResourceDetector,
    ProcessResourceDetector,
    Resource,
    ResourceDetector,
    get_aggregated_resources,
)

from atalaia import names

_log = logging.getLogger("atalaia")

# The process detector records the full command line; arguments may hold secrets (tokens passed
# as flags), so only the executable and command name are kept.
_DROPPED = ("process.command_line", "process.command_args")
DEFAULT_ENVIRONMENT = "development"
ENV_ENVIRONMENT = "ATALAIA_ENVIRONMENT"


def _detector(name: str) -> ResourceDetector | None:
    """An SDK resource detector by its registered entry-point name (the SDK registers `host`,
    `os`, `process` ...; the host detector's class is private, its entry point is not)."""
    try:
        found = entry_points(group="opentelemetry_resource_detector", name=name)
        for ep in found:
            detector = ep.load()()
            if isinstance(detector, ResourceDetector):
                return detector
    except Exception as exc:
        _log.warning("resource detector %r unavailable: %s", name, exc)
    return None


def build_resource(
    service_name: str,
    *,
    agent_name: str | None = None,
    environment: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Resource:
    """service.name, service.instance.id (a UUID per process), deployment.environment.name,
    gen_ai.agent.name, the SDK's process/host/os detectors and telemetry.sdk.*.

    Precedence, lowest first: detectors, the arguments, then OTEL_RESOURCE_ATTRIBUTES and
    OTEL_SERVICE_NAME, so an operator can relabel a process without touching its code.
    """
    attributes: dict[str, Any] = dict(extra or {})
    attributes[names.SERVICE_NAME] = service_name
    attributes[names.DEPLOYMENT_ENVIRONMENT] = (
        environment or os.environ.get(ENV_ENVIRONMENT) or DEFAULT_ENVIRONMENT
    )
    if agent_name:
        attributes[names.AGENT_NAME] = agent_name

    detectors = [d for d in (_detector("host"), _detector("os")) if d is not None]
    detectors.append(ProcessResourceDetector())
    detected = get_aggregated_resources(detectors, Resource.create({}))
    merged = detected.merge(Resource(attributes)).merge(OTELResourceDetector().detect())
    kept = {k: v for k, v in merged.attributes.items() if k not in _DROPPED}
    return Resource(kept, names.SCHEMA_URL)
