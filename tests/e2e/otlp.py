"""Real OpenTelemetry SDK pipelines pointed at the collector, for e2e tests.

Each `Telemetry` has its own providers (nothing global is set) and a resource of its own, so
tests can tell their data apart: service.name is unique per test run.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Telemetry:
    """Traces and logs over OTLP gRPC (:4317), metrics over OTLP HTTP (:4318)."""

    otlp_grpc: str
    otlp_http: str
    service: str = field(default_factory=lambda: unique("e2e"))
    agent: str = "e2e-agent"
    environment: str = "e2e"
    extra_resource: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.resource = Resource.create(
            {
                "service.name": self.service,
                "service.namespace": "atalaia-e2e",
                "deployment.environment.name": self.environment,
                "gen_ai.agent.name": self.agent,
                **self.extra_resource,
            }
        )
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=self.otlp_grpc, insecure=True), schedule_delay_millis=200
            )
        )
        self.meter_provider = MeterProvider(
            resource=self.resource,
            metric_readers=[
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=f"{self.otlp_http}/v1/metrics"),
                    export_interval_millis=60_000,
                )
            ],
        )  # tests flush explicitly
        self.logger_provider = LoggerProvider(resource=self.resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=self.otlp_grpc, insecure=True), schedule_delay_millis=200
            )
        )
        self.tracer = self.tracer_provider.get_tracer("atalaia.e2e")
        self.meter = self.meter_provider.get_meter("atalaia.e2e")
        self.logger = logging.getLogger(f"atalaia.e2e.{self.service}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.addHandler(LoggingHandler(logger_provider=self.logger_provider))

    def flush(self) -> None:
        assert self.tracer_provider.force_flush(10_000), "spans were not exported"
        assert self.logger_provider.force_flush(10_000), "logs were not exported"
        assert self.meter_provider.force_flush(10_000), "metrics were not exported"

    def shutdown(self) -> None:
        self.flush()
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()
