"""Agent heartbeats in SQLite (seed 000): table agent_heartbeats(agent, last_seen).

`last_seen` is Unix time in seconds (REAL). Agents write, the supervisor reads; every call opens its
own short connection so that separate processes never share a handle.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS agent_heartbeats (
    agent TEXT PRIMARY KEY,
    last_seen REAL NOT NULL
)"""


class HeartbeatStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5.0)

    def beat(self, agent: str, now: float | None = None) -> float:
        ts = time.time() if now is None else now
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO agent_heartbeats(agent, last_seen) VALUES (?, ?) "
                "ON CONFLICT(agent) DO UPDATE SET last_seen = excluded.last_seen",
                (agent, ts),
            )
        return ts

    def last_seen(self, agent: str) -> float | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT last_seen FROM agent_heartbeats WHERE agent = ?", (agent,)
            ).fetchone()
        return None if row is None else float(row[0])

    def all(self) -> dict[str, float]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT agent, last_seen FROM agent_heartbeats").fetchall()
        return {str(agent): float(ts) for agent, ts in rows}
