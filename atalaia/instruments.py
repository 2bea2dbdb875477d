"""The synchronous instruments of docs/telemetry.md, created once per Telemetry from its meter."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter, _Gauge

from atalaia import names


@dataclass(frozen=True)
class Instruments:
    token_usage: Histogram
    operation_duration: Histogram
    llm_cost: Counter
    cached_tokens: Counter
    task_duration: Histogram
    retries: Counter
    timeouts: Counter
    errors: Counter
    integration_errors: Counter
    cache_requests: Counter
    conversations: Counter
    leads: Counter
    heartbeat: _Gauge
    db_connections: UpDownCounter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        def counter(spec: tuple[str, str], description: str) -> Counter:
            return meter.create_counter(spec[0], unit=spec[1], description=description)

        def histogram(
            spec: tuple[str, str], description: str, buckets: tuple[float, ...]
        ) -> Histogram:
            return meter.create_histogram(
                spec[0],
                unit=spec[1],
                description=description,
                explicit_bucket_boundaries_advisory=buckets,
            )

        return cls(
            token_usage=histogram(
                names.M_TOKEN_USAGE, "Input and output tokens used", names.TOKEN_USAGE_BUCKETS
            ),
            operation_duration=histogram(
                names.M_OPERATION_DURATION,
                "GenAI operation duration",
                names.OPERATION_DURATION_BUCKETS,
            ),
            llm_cost=counter(names.M_LLM_COST, "Cost of LLM calls in USD, from the price table"),
            cached_tokens=counter(names.M_CACHED_TOKENS, "Input tokens served from a prompt cache"),
            task_duration=histogram(
                names.M_TASK_DURATION, "Agent task duration", names.TASK_DURATION_BUCKETS
            ),
            retries=counter(names.M_RETRIES, "Retries by reason"),
            timeouts=counter(names.M_TIMEOUTS, "Timeouts by reason"),
            errors=counter(names.M_ERRORS, "Errors by type"),
            integration_errors=counter(names.M_INTEGRATION_ERRORS, "External integration errors"),
            cache_requests=counter(names.M_CACHE_REQUESTS, "Cache lookups by result"),
            conversations=counter(names.M_CONVERSATIONS, "Conversations finished, by outcome"),
            leads=counter(names.M_LEADS, "Leads generated"),
            heartbeat=meter.create_gauge(
                names.M_HEARTBEAT[0],
                unit=names.M_HEARTBEAT[1],
                description="Unix time of the agent's last heartbeat",
            ),
            db_connections=meter.create_up_down_counter(
                names.M_DB_CONNECTIONS[0],
                unit=names.M_DB_CONNECTIONS[1],
                description="Database connections by state",
            ),
        )
