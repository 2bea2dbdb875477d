"""Atalaia's four datasources as Grafana's HTTP API takes them, for `atalaia grafana push`.

Same uids, types and cross-links as grafana/provisioning/datasources/atalaia.yaml (a test compares
them): exemplar -> trace, log line -> trace (trace_id structured metadata), trace -> logs, trace ->
metrics, service map.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def definitions(prometheus: str, loki: str, tempo: str, alertmanager: str | None) -> list[Json]:
    out: list[Json] = [
        {
            "uid": "prometheus",
            "name": "Prometheus",
            "type": "prometheus",
            "access": "proxy",
            "url": prometheus,
            "isDefault": True,
            "jsonData": {
                "httpMethod": "POST",
                "prometheusType": "Prometheus",
                "timeInterval": "15s",
                "exemplarTraceIdDestinations": [
                    {"name": "trace_id", "datasourceUid": "tempo", "urlDisplayLabel": "View trace"}
                ],
            },
        },
        {
            "uid": "loki",
            "name": "Loki",
            "type": "loki",
            "access": "proxy",
            "url": loki,
            "isDefault": False,
            "jsonData": {
                "maxLines": 1000,
                "derivedFields": [
                    {
                        "name": "TraceID",
                        "matcherType": "label",
                        "matcherRegex": "trace_id",
                        "datasourceUid": "tempo",
                        "url": "${__value.raw}",
                        "urlDisplayLabel": "View trace",
                    }
                ],
            },
        },
        {
            "uid": "tempo",
            "name": "Tempo",
            "type": "tempo",
            "access": "proxy",
            "url": tempo,
            "isDefault": False,
            "jsonData": {
                "streamingEnabled": {"search": True},
                "tracesToLogsV2": {
                    "datasourceUid": "loki",
                    "spanStartTimeShift": "-5m",
                    "spanEndTimeShift": "5m",
                    "tags": [{"key": "service.name", "value": "service_name"}],
                    "customQuery": True,
                    "query": '{${__tags}} | trace_id="${__trace.traceId}"',
                },
                "tracesToMetrics": {
                    "datasourceUid": "prometheus",
                    "spanStartTimeShift": "-5m",
                    "spanEndTimeShift": "5m",
                    "tags": [{"key": "service.name", "value": "service_name"}],
                    "queries": [
                        {
                            "name": "Request rate",
                            "query": "sum(rate(atalaia_span_calls_total{$__tags}"
                            "[$__rate_interval]))",
                        },
                        {
                            "name": "Error rate",
                            "query": "sum(rate(atalaia_span_calls_total{$__tags, "
                            'status_code="STATUS_CODE_ERROR"}[$__rate_interval]))',
                        },
                        {
                            "name": "p95 latency",
                            "query": "histogram_quantile(0.95, sum by (le) (rate("
                            "atalaia_span_duration_seconds_bucket{$__tags}[$__rate_interval])))",
                        },
                    ],
                },
                "serviceMap": {"datasourceUid": "prometheus"},
                "nodeGraph": {"enabled": True},
                "search": {"hide": False},
                "traceQuery": {
                    "timeShiftEnabled": True,
                    "spanStartTimeShift": "-30m",
                    "spanEndTimeShift": "30m",
                },
            },
        },
    ]
    if alertmanager:
        out.append(
            {
                "uid": "alertmanager",
                "name": "Alertmanager",
                "type": "alertmanager",
                "access": "proxy",
                "url": alertmanager,
                "isDefault": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            }
        )
    return out
