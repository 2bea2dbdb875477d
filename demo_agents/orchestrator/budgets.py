"""Per-department daily budgets, charged with the LLM cost the agents report back."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class BudgetState:
    department: str
    limit_usd: float
    spent_usd: float

    @property
    def remaining_ratio(self) -> float:
        if self.limit_usd <= 0:
            return 0.0
        return max(0.0, 1.0 - self.spent_usd / self.limit_usd)

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.limit_usd


class Budgets:
    """Daily limits per department; spending resets when the UTC day changes."""

    def __init__(
        self, limits: Mapping[str, float], today: Callable[[], dt.date] = utc_today
    ) -> None:
        bad = {d: v for d, v in limits.items() if v <= 0}
        if bad:
            raise ValueError(f"budget limits must be positive: {bad}")
        self._limits = dict(limits)
        self._today = today
        self._day = today()
        self._spent = dict.fromkeys(limits, 0.0)
        self._lock = threading.Lock()

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day = day
            self._spent = dict.fromkeys(self._limits, 0.0)

    def charge(self, department: str, usd: float) -> BudgetState:
        if department not in self._limits:
            raise KeyError(f"unknown department {department!r}; known: {sorted(self._limits)}")
        if usd < 0:
            raise ValueError(f"a charge cannot be negative: {usd}")
        with self._lock:
            self._roll()
            self._spent[department] += usd
            return BudgetState(department, self._limits[department], self._spent[department])

    def state(self, department: str) -> BudgetState:
        with self._lock:
            self._roll()
            return BudgetState(department, self._limits[department], self._spent[department])

    def all(self) -> list[BudgetState]:
        return [self.state(d) for d in sorted(self._limits)]

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            self._roll()
            return dict(self._spent)

    def restore(self, spent: dict[str, float]) -> None:
        """Put spending back to a snapshot of the same day (never above what is spent now)."""
        with self._lock:
            self._roll()
            for department, usd in spent.items():
                if department in self._spent:
                    self._spent[department] = min(self._spent[department], usd)

    @property
    def departments(self) -> list[str]:
        return sorted(self._limits)
