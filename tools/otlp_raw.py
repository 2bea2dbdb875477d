"""OTLP/HTTP requests built by hand, for the load and limit checks (bench/bench_stack.py and the
e2e tests): what an SDK would never send (a value nested 10,000 levels deep, a 1 MB log body,
10,000 distinct label values) and plain load at rates a Python SDK pipeline cannot reach.

Requests are OTLP protobuf built with the opentelemetry-proto classes, except the deep value:
protobuf's Python runtime refuses to nest messages that deep, so `deep_span_request` writes the
wire format itself (it is a few length-delimited fields inside each other).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

PROTOBUF = {"Content-Type": "application/x-protobuf"}
Attr = tuple[str, str | int | float | bool]


def kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def resource(service: str, extra: Sequence[Attr] = ()) -> Resource:
    attrs = [("service.name", service), ("service.namespace", "atalaia-check"), *extra]
    return Resource(attributes=[kv(k, v) for k, v in attrs])


def new_ids() -> tuple[bytes, bytes]:
    return os.urandom(16), os.urandom(8)


def span(
    name: str,
    attrs: Sequence[Attr] = (),
    trace_id: bytes | None = None,
    start_ns: int | None = None,
    status_message: str = "",
    events: Sequence[str] = (),
) -> Span:
    tid, sid = new_ids()
    start = start_ns or time.time_ns()
    return Span(
        trace_id=trace_id or tid,
        span_id=sid,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1_000_000,
        attributes=[kv(k, v) for k, v in attrs],
        events=[Span.Event(name=e, time_unix_nano=start) for e in events],
        status=Status(message=status_message) if status_message else None,
    )


def log(body: str, attrs: Sequence[Attr] = (), severity: int = 9) -> LogRecord:
    now = time.time_ns()
    return LogRecord(
        time_unix_nano=now,
        observed_time_unix_nano=now,
        severity_number=severity,  # type: ignore[arg-type]
        severity_text="INFO",
        body=AnyValue(string_value=body),
        attributes=[kv(k, v) for k, v in attrs],
    )


def traces_request(service: str, spans: Iterable[Span], extra: Sequence[Attr] = ()) -> bytes:
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=resource(service, extra),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="atalaia.check"), spans=spans)
                ],
            )
        ]
    )
    out: bytes = req.SerializeToString()
    return out


def logs_request(service: str, records: Iterable[LogRecord], extra: Sequence[Attr] = ()) -> bytes:
    req = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource(service, extra),
                scope_logs=[
                    ScopeLogs(scope=InstrumentationScope(name="atalaia.check"), log_records=records)
                ],
            )
        ]
    )
    out: bytes = req.SerializeToString()
    return out


# -- the wire format by hand, for a value deeper than protobuf's Python runtime nests ------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _fixed64(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + value.to_bytes(8, "little")


def deep_value(depth: int, key: str = "a", leaf: str = "bottom") -> bytes:
    """An AnyValue holding a map holding a map ... `depth` levels deep, ending in a string."""
    value = _field(1, leaf.encode())  # AnyValue.string_value = 1
    for _ in range(depth):
        key_value = _field(1, key.encode()) + _field(2, value)  # KeyValue{key=1, value=2}
        value = _field(6, _field(1, key_value))  # AnyValue.kvlist_value=6 {values=1}
    return value


def deep_span_request(service: str, name: str, depth: int) -> bytes:
    """An ExportTraceServiceRequest with one span whose attribute `deep` nests `depth` maps."""
    trace_id, span_id = new_ids()
    start = time.time_ns()
    attribute = _field(1, b"deep") + _field(2, deep_value(depth))
    span_bytes = (
        _field(1, trace_id)
        + _field(2, span_id)
        + _field(5, name.encode())
        + _fixed64(7, start)
        + _fixed64(8, start + 1_000_000)
        + _field(9, attribute)
    )
    scope_spans = _field(1, b"\x0a\x0datalaia.check") + _field(2, span_bytes)
    resource_bytes = resource(service).SerializeToString()
    resource_spans = _field(1, resource_bytes) + _field(2, scope_spans)
    return _field(1, resource_spans)


def post(client: httpx.Client, otlp_http: str, signal: str, body: bytes) -> httpx.Response:
    """POST one request to the collector's OTLP/HTTP receiver (signal: traces, logs, metrics)."""
    return client.post(f"{otlp_http}/v1/{signal}", content=body, headers=PROTOBUF, timeout=30)


def gauge_request(
    service: str,
    metric: str,
    points: Sequence[Sequence[Attr]],
    value: float = 1.0,
    time_ns: int | None = None,
) -> bytes:
    """An ExportMetricsServiceRequest: one gauge, one data point per label set in `points`, all
    at `time_ns` (default: now)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        Gauge,
        Metric,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
    )

    now = time_ns or time.time_ns()
    dps = [
        NumberDataPoint(time_unix_nano=now, as_double=value, attributes=[kv(k, v) for k, v in p])
        for p in points
    ]
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=resource(service),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope(name="atalaia.check"),
                        metrics=[Metric(name=metric, gauge=Gauge(data_points=dps))],
                    )
                ],
            )
        ]
    )
    out: bytes = req.SerializeToString()
    return out
