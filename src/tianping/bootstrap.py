"""The composition root: builds the services of one process from its settings.

The API, the CLI and the tests all start here, so each of them gets the same wiring: one
connection pool per database, one `Ledger`, and one group committer for single-request writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tianping.config import Settings, load_settings
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger.group_commit import GroupCommitter
from tianping.ledger.service import Ledger
from tianping.ledger.sweeper import ExpirySweeper


@dataclass(slots=True)
class Services:
    """Everything a request handler or command needs, built once per process."""

    settings: Settings
    pool: ConnectionPool
    ledger: Ledger
    _committer: GroupCommitter | None = field(default=None)
    _committer_lock: threading.Lock = field(default_factory=threading.Lock)
    _sweeper: ExpirySweeper | None = field(default=None)

    def start_background_work(self) -> None:
        """Start what a long-running server needs: the group committer and the expiry sweep."""
        _ = self.committer
        if self._sweeper is None:
            self._sweeper = ExpirySweeper(self.ledger).start()

    @property
    def committer(self) -> GroupCommitter:
        """The group committer, started on first use (a CLI command rarely needs one).

        Request threads may ask for it at the same moment; the lock makes sure exactly one is
        started, since a second one's writer thread would never be stopped.
        """
        committer = self._committer
        if committer is None:
            with self._committer_lock:
                if self._committer is None:
                    self._committer = GroupCommitter(self.ledger)
                committer = self._committer
        return committer

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.close()
        self.pool.close()


def build_services(
    settings: Settings | None = None,
    *,
    migrate: bool = False,
    clock: Callable[[], int] = time.time_ns,
    pool_size: int = 8,
) -> Services:
    """Wire the services for `settings` (loaded from file and environment when omitted).

    With `migrate`, the database schema is brought up to date first; for SQLite the data
    directory is created if needed.
    """
    settings = settings or load_settings()
    if settings.database_url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade(settings.database_url)
    pool = ConnectionPool(
        settings.database_url, size=pool_size, sqlite_synchronous=settings.sqlite_synchronous
    )
    return Services(settings=settings, pool=pool, ledger=Ledger(pool, clock=clock))
