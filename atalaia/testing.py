"""Test support: a Telemetry whose signals stay in memory, read back through the SDK's own
in-memory exporters and reader. For the library's tests and for users testing their agents::

    from atalaia.testing import in_memory

    cap = in_memory(agent_name="helix").activate()  # module helpers report here
    with atalaia.track_task("demo"):
        ...
    assert cap.spans()[0].name == "invoke_agent helix"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from atalaia._exporters import Pipelines
from atalaia._telemetry import Telemetry, forget


@dataclass
class Captured:
    telemetry: Telemetry
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.span_exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def metrics(self) -> dict[str, Metric]:
        """Every metric collected now, by name (cumulative since the start)."""
        data = self.metric_reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> list[Any]:
        """The data points of one metric (empty if it was not recorded)."""
        metric = self.metrics().get(name)
        return list(metric.data.data_points) if metric is not None else []

    def logs(self) -> list[ReadableLogRecord]:
        return list(self.log_exporter.get_finished_logs())

    def activate(self) -> Captured:
        """Make this the Telemetry that `atalaia.track_task` & co. report to."""
        self.telemetry.activate()
        return self

    def close(self) -> None:
        """Stop being the active Telemetry and shut the providers down."""
        forget(self.telemetry)
        self.telemetry.shutdown()


def in_memory(service_name: str = "test-agent", **setup: Any) -> Captured:
    """A Telemetry (not global, not activated, no stdlib logging unless `install_logging=True`)
    exporting synchronously into memory. `setup` goes to `Telemetry.setup`."""
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    setup.setdefault("install_logging", False)
    telemetry = Telemetry.setup(
        service_name,
        pipelines=Pipelines(
            span_exporters=[spans],
            metric_readers=[reader],
            log_exporters=[logs],
            synchronous=True,
        ),
        **setup,
    )
    return Captured(telemetry, spans, reader, logs)
