"""A small OTLP/HTTP receiver for tests: what a process really exports, decoded.

with OtlpSink() as sink:
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
    ... run the process ...
    sink.spans()  # [{"name", "kind", "attributes", "events", "status"}, ...]
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


class OtlpSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[dict[str, Any]] = []
        self._logs: list[dict[str, Any]] = []
        self._metrics: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                sink._take(self.path, body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _take(self, path: str, body: bytes) -> None:
        with self._lock:
            if path.endswith("/v1/traces"):
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    resource = attributes(rs.resource.attributes)
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            self._spans.append(
                                {
                                    "name": s.name,
                                    "kind": s.kind,
                                    "scope": ss.scope.name,
                                    "trace_id": s.trace_id.hex(),
                                    "span_id": s.span_id.hex(),
                                    "parent_span_id": s.parent_span_id.hex(),
                                    "attributes": attributes(s.attributes),
                                    "events": [
                                        {"name": e.name, "attributes": attributes(e.attributes)}
                                        for e in s.events
                                    ],
                                    "status": s.status.code,
                                    "resource": resource,
                                }
                            )
            elif path.endswith("/v1/logs"):
                req_logs = ExportLogsServiceRequest.FromString(body)
                for rl in req_logs.resource_logs:
                    for sl in rl.scope_logs:
                        for r in sl.log_records:
                            self._logs.append(
                                {"body": value(r.body), "attributes": attributes(r.attributes)}
                            )
            elif path.endswith("/v1/metrics"):
                req_metrics = ExportMetricsServiceRequest.FromString(body)
                for rm in req_metrics.resource_metrics:
                    for sm in rm.scope_metrics:
                        self._metrics.extend(m.name for m in sm.metrics)

    def spans(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._spans)

    def logs(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._logs)

    def metric_names(self) -> set[str]:
        with self._lock:
            return set(self._metrics)

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
