"""Stack health: the collector, Prometheus, Loki, Tempo and Alertmanager watching themselves."""

from __future__ import annotations

from atalaia_ops.dashboards.model import Dashboard
from atalaia_ops.dashboards.panels import T, prom, stat, timeseries

RI = "$__rate_interval"
SIGNALS = (("spans", "traces"), ("metric_points", "metrics"), ("log_records", "logs"))
# Failure counters appear only once something failed: `or vector(0)` draws the healthy zero (the
# names are proven on the real binaries by tests/config).


def build() -> Dashboard:
    d = Dashboard(
        uid="atalaia-stack",
        title="Atalaia / Stack health",
        description="The observability stack itself: collector intake and exporters, backend "
        "ingestion, scrape targets and Alertmanager notifications.",
        tags=["atalaia", "stack"],
        file="stack-health.json",
    )
    d.add_row(
        "Targets",
        stat(
            "Targets down",
            "Scrape targets Prometheus cannot reach (the native stack has no Grafana target).",
            prom("count(up == 0) or vector(0)", "down", instant=True),
            w=6,
            h=4,
            thresholds=(T(None, "green"), T(1, "red")),
        ),
        stat(
            "Scrape targets up",
            "1 per target whose last scrape succeeded.",
            prom("max by (job) (up)", "{{job}}", instant=True),
            w=18,
            h=4,
            text_mode="name",
            thresholds=(T(None, "red"), T(1, "green")),
        ),
    )
    d.add_row(
        "Collector",
        *(
            timeseries(
                f"Collector {signal}: accepted / refused",
                f"{signal.capitalize()} items per second accepted and refused by the collector's "
                "receivers (refused = memory limiter or back-pressure).",
                prom(
                    f"sum by (receiver) (rate(otelcol_receiver_accepted_{item}[{RI}]))",
                    "accepted {{receiver}}",
                ),
                prom(
                    f"sum(rate(otelcol_receiver_refused_{item}[{RI}])) or vector(0)",
                    "refused",
                ),
                w=8,
            )
            for item, signal in SIGNALS
        ),
        *(
            timeseries(
                f"Exporters {signal}: sent / dropped",
                f"{signal.capitalize()} items per second each exporter delivered, and dropped "
                "after all retries (send failed) or because its queue was full (enqueue failed).",
                prom(
                    f"sum by (exporter) (rate(otelcol_exporter_sent_{item}[{RI}]))",
                    "sent {{exporter}}",
                ),
                prom(
                    f"sum(rate(otelcol_exporter_send_failed_{item}[{RI}])) or vector(0)",
                    "send failed",
                ),
                prom(
                    f"sum(rate(otelcol_exporter_enqueue_failed_{item}[{RI}])) or vector(0)",
                    "enqueue failed",
                ),
                w=8,
            )
            for item, signal in SIGNALS
        ),
        timeseries(
            "Exporter queue fill",
            "Batches in each exporter's sending queue as a share of its capacity; full means "
            "new data is dropped.",
            prom(
                "max by (exporter) (otelcol_exporter_queue_size)"
                " / max by (exporter) (otelcol_exporter_queue_capacity)",
                "{{exporter}}",
            ),
            unit="percentunit",
            w=24,
            h=6,
            min=0,
            max=1,
            thresholds=(T(None, "green"), T(0.8, "red")),
            threshold_style="dashed",
        ),
    )
    d.add_row(
        "Backends",
        timeseries(
            "Prometheus samples appended / s",
            "Samples written to Prometheus's head block (OTLP, scrapes and rules).",
            prom(f"sum(rate(prometheus_tsdb_head_samples_appended_total[{RI}]))", "samples/s"),
            w=8,
        ),
        timeseries(
            "Loki lines received / discarded",
            "Log lines per second Loki's distributor received, and lines it discarded by reason.",
            prom(f"sum(rate(loki_distributor_lines_received_total[{RI}]))", "received"),
            prom(
                f"sum(rate(loki_discarded_samples_total[{RI}])) or vector(0)",
                "discarded",
            ),
            w=8,
        ),
        timeseries(
            "Tempo spans received / discarded",
            "Spans per second Tempo's distributor received, and spans it discarded or refused.",
            prom(f"sum(rate(tempo_distributor_spans_received_total[{RI}]))", "received"),
            prom(
                f"sum(rate(tempo_discarded_spans_total[{RI}])) or vector(0)",
                "discarded",
            ),
            prom(f"sum(rate(tempo_receiver_refused_spans[{RI}])) or vector(0)", "refused"),
            w=8,
        ),
    )
    d.add_row(
        "Alerting",
        timeseries(
            "Alertmanager notifications sent / failed",
            "Notifications per second by integration (webhook, slack, pagerduty, email), and "
            "the failed ones.",
            prom(
                f"sum by (integration) (rate(alertmanager_notifications_total[{RI}]))",
                "sent {{integration}}",
            ),
            prom(
                f"sum(rate(alertmanager_notifications_failed_total[{RI}])) or vector(0)",
                "failed",
            ),
            w=12,
        ),
        timeseries(
            "Rule evaluation failures / notification errors",
            "Prometheus rule evaluations that failed, and failed sends to Alertmanager.",
            prom(
                f"sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total[{RI}]))",
                "{{rule_group}}",
            ),
            prom(
                f"sum(rate(prometheus_notifications_errors_total[{RI}]))",
                "notification errors",
            ),
            w=12,
            thresholds=(T(None, "green"), T(0.001, "red")),
        ),
    )
    return d
