"""The counters and gauges that spans cannot carry: retries by reason, timeouts, errors, business
events, heartbeats and connection pools (docs/telemetry.md, "Agent metrics").

Label values come from closed sets (anything else is recorded as ``other``, one warning) or are
capped in length and in distinct values (_limits.Labels).
"""

from __future__ import annotations

import time

from atalaia import names
from atalaia._context import current_task_context
from atalaia._telemetry import current


def record_retry(reason: str, *, agent: str | None = None) -> None:
    """atalaia.retries += 1 (reason: rate_limit, llm_error, timeout, tool_error, validation).
    The openai and anthropic clients' own retries are counted by `instrument()` already."""
    tel = current()
    with tel.guard("record_retry"):
        reason = tel.closed(reason, names.RETRY_REASONS, names.RETRY_REASON)
        tel.instruments.retries.add(1, tel.metric_attributes(agent, {names.RETRY_REASON: reason}))


def record_timeout(reason: str, *, agent: str | None = None) -> None:
    """atalaia.timeouts += 1 (reason: llm, tool, task)."""
    tel = current()
    with tel.guard("record_timeout"):
        reason = tel.closed(reason, names.TIMEOUT_REASONS, names.TIMEOUT_REASON)
        attrs = tel.metric_attributes(agent, {names.TIMEOUT_REASON: reason})
        tel.instruments.timeouts.add(1, attrs)


def record_error(error_type: str, *, agent: str | None = None) -> None:
    """atalaia.errors += 1 (llm, tool, api, database, integration, validation, internal)."""
    tel = current()
    with tel.guard("record_error"):
        error_type = tel.closed(error_type, names.ERROR_TYPES, names.ERROR_TYPE)
        tel.instruments.errors.add(1, tel.metric_attributes(agent, {names.ERROR_TYPE: error_type}))


def record_integration_error(name: str, *, agent: str | None = None) -> None:
    """atalaia.integration.errors += 1 for the named integration (e.g. "crm")."""
    tel = current()
    with tel.guard("record_integration_error"):
        attrs = tel.metric_attributes(agent, {names.INTEGRATION_NAME: str(name)})
        tel.instruments.integration_errors.add(1, attrs)


def record_cache(hit: bool, *, agent: str | None = None) -> None:
    """atalaia.cache.requests += 1 (hit or miss)."""
    tel = current()
    with tel.guard("record_cache"):
        result = "hit" if hit else "miss"
        attrs = tel.metric_attributes(agent, {names.CACHE_RESULT: result})
        tel.instruments.cache_requests.add(1, attrs)


def record_conversation(outcome: str, *, agent: str | None = None) -> None:
    """atalaia.conversations += 1 (qualified, unqualified, abandoned)."""
    tel = current()
    with tel.guard("record_conversation"):
        outcome = tel.closed(outcome, names.CONVERSATION_OUTCOMES, names.CONVERSATION_OUTCOME)
        attrs = tel.metric_attributes(agent, {names.CONVERSATION_OUTCOME: outcome})
        tel.instruments.conversations.add(1, attrs)


def record_lead(*, agent: str | None = None) -> None:
    """atalaia.leads += 1."""
    tel = current()
    with tel.guard("record_lead"):
        tel.instruments.leads.add(1, tel.metric_attributes(agent, {}))


def heartbeat(*, agent: str | None = None) -> None:
    """atalaia.agent.heartbeat.timestamp = now (Unix seconds)."""
    tel = current()
    with tel.guard("heartbeat"):
        tel.instruments.heartbeat.set(time.time(), tel.metric_attributes(agent, {}))


def set_db_connections(used: int, idle: int, pool: str, *, agent: str | None = None) -> None:
    """db.client.connection.count by state for `pool` (absolute numbers; the up-down counter
    receives the change since the previous report)."""
    tel = current()
    with tel.guard("set_db_connections"):
        used, idle = max(int(used), 0), max(int(idle), 0)
        if agent is None and (task := current_task_context()) is not None:
            agent = task.agent
        pool = tel.labels.value(names.DB_POOL, pool)
        with tel._lock:
            prev_used, prev_idle = tel._db.get((pool, agent), (0, 0))
            tel._db[(pool, agent)] = (used, idle)
        for state, delta in (("used", used - prev_used), ("idle", idle - prev_idle)):
            attrs = tel.metric_attributes(agent, {names.DB_STATE: state, names.DB_POOL: pool})
            tel.instruments.db_connections.add(delta, attrs)
