"""The tools the demo agents call inside `atalaia.track_tool`. They are real local work (SQLite
queries, HTTP calls to Helix, hashing) with seeded failure rates standing in for flaky systems."""

from __future__ import annotations

import asyncio
import queue
import random
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import atalaia


class ToolError(Exception):
    """A tool failed in a way the agent may retry; `error_type` is its atalaia.errors type."""

    error_type = "tool"


class IntegrationError(ToolError):
    """An external system (CRM) refused the call."""

    error_type = "integration"


class DatabaseUnavailable(ToolError):
    """The report database cannot be reached."""

    error_type = "database"


class ValidationFailed(ToolError):
    """A result does not match its schema."""

    error_type = "validation"


class ConnectionPool:
    """A small fixed pool of SQLite connections, reported as db.client.connection.count. The
    db_down fault takes it offline: no connections, and every checkout fails."""

    def __init__(self, path: Path, name: str, size: int = 3) -> None:
        self.path = path
        self.name = name
        self.size = size
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._online = False
        self.set_online(True)
        with self.connection() as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, topic TEXT, rows INT)"
            )

    def set_online(self, online: bool) -> None:
        with self._lock:
            if online == self._online:
                return
            self._online = online
            if online:
                for _ in range(self.size):
                    self._idle.put(sqlite3.connect(self.path, timeout=5.0, check_same_thread=False))
            else:
                self._drain()
        self._report()

    def _report(self) -> None:
        idle = self._idle.qsize() if self._online else 0
        used = self.size - idle if self._online else 0
        atalaia.set_db_connections(used, idle, self.name)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        if not self._online:
            raise DatabaseUnavailable(f"database {self.path.name} is unreachable")
        conn = self._idle.get(timeout=10)
        self._report()
        try:
            yield conn
        finally:
            if self._online:
                self._idle.put(conn)
            else:
                conn.close()
            self._report()

    def _drain(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()

    def close(self) -> None:
        with self._lock:
            self._drain()


def sql_report(pool: ConnectionPool, topic: str, rows: int) -> int:
    """Insert a report row and count the reports on that topic (runs in a worker thread)."""
    with pool.connection() as db, db:
        db.execute("INSERT INTO reports(topic, rows) VALUES (?, ?)", (topic, rows))
        (count,) = db.execute("SELECT COUNT(*) FROM reports WHERE topic = ?", (topic,)).fetchone()
        return int(count)


class ResultCache:
    """A small LRU cache; every lookup is counted as a hit or a miss."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._data: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        value = self._data.get(key)
        atalaia.record_cache(value is not None)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


async def run_tests(rng: random.Random, size: int) -> int:
    with atalaia.track_tool("run_tests"):
        await asyncio.sleep(0.02 * size)
        if rng.random() < 0.03:
            raise ToolError("flaky test run")
        return size * 3


async def helix_lookup(client: httpx.AsyncClient, helix_url: str, topic: str) -> str:
    """Sigma asks Helix for a computed result: this is how a CPU hog on Helix delays Sigma."""
    with atalaia.track_tool("helix_lookup"):
        # Trace context goes along, so Helix's side of the call is part of Sigma's trace.
        response = await client.post(
            f"{helix_url}/lookup",
            json={"topic": topic},
            headers=atalaia.propagation_headers(),
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["digest"])


async def query_reports(pool: ConnectionPool, topic: str, rows: int, db_down: bool) -> int:
    with atalaia.track_tool("sql_query"):
        pool.set_online(not db_down)
        return await asyncio.to_thread(sql_report, pool, topic, rows)


async def web_search(cache: ResultCache, rng: random.Random, query: str) -> list[str]:
    with atalaia.track_tool("web_search"):
        cached = cache.get(f"search:{query}")
        if cached is not None:
            return cached.split("|")
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        results = [f"{query}-source-{i}" for i in range(rng.randint(2, 5))]
        cache.put(f"search:{query}", "|".join(results))
        return results


async def crm_create_lead(rng: random.Random, conversation_id: str, crm_down: bool) -> str:
    with atalaia.track_tool("crm_create_lead"):
        await asyncio.sleep(rng.uniform(0.02, 0.1))
        if crm_down or rng.random() < 0.01:
            atalaia.record_integration_error("crm")
            raise IntegrationError("CRM answered 502 creating the lead")
        return f"lead-{conversation_id}"


async def validate_output(fail: bool) -> None:
    """Checks a result against its schema; the retry_loop fault makes it always fail."""
    with atalaia.track_tool("validate_output"):
        await asyncio.sleep(0.01)
        if fail:
            raise ValidationFailed("output does not match the schema")
