"""The synchronous instruments of docs/telemetry.md, created once per Telemetry from its meter.

Only what spans cannot carry: calls, tokens, durations, tasks and tools are derived from the
spans by the collector (docs/telemetry.md, "Derived in the collector"), so the library sends no
copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Meter, UpDownCounter, _Gauge

from atalaia import names


@dataclass(frozen=True)
class Instruments:
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

        return cls(
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
