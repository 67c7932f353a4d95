"""Helpers shared by ledger tests: a migrated ledger on any backend, and a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass

from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger.service import Ledger


@dataclass
class ManualClock:
    """A clock the test moves by hand (nanoseconds since the epoch)."""

    now: int = 1_800_000_000_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 0, nanoseconds: int = 0) -> None:
        self.now += int(seconds * 1_000_000_000) + nanoseconds


def make_ledger(url: str, clock: ManualClock | None = None, pool_size: int = 4) -> Ledger:
    """Migrate the database at `url` and return a ledger on it."""
    upgrade(url)
    pool = ConnectionPool(url, size=pool_size)
    if clock is None:
        return Ledger(pool)
    return Ledger(pool, clock=clock)
