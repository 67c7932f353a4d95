"""A small bounded pool of raw DB-API connections for one database.

The ledger's hot paths use the drivers directly (the standard library's `sqlite3` and psycopg 3)
instead of SQLAlchemy's pool and engine: at a hundred thousand transfers a second the few
microseconds SQLAlchemy adds per statement would be most of the budget. SQLAlchemy and Alembic
still own the schema (see `tianping.db.migrate`). This pool is the only extra machinery that choice
needs: it hands a connection to one thread at a time and never holds more than `size`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tianping.db.connect import connect_postgres, connect_sqlite
from tianping.db.urls import DatabaseURL, parse_database_url

Connection = Any  # sqlite3.Connection or psycopg.Connection; the store knows which.


class ConnectionPool:
    """Hands out at most `size` connections; a thread waits when all are in use."""

    def __init__(self, url: str | DatabaseURL, size: int = 8, sqlite_synchronous: str = "FULL",
                 acquire_timeout_s: float = 30.0) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_database_url(url)
        self.backend = self.url.backend
        self._size = size
        self._synchronous = sqlite_synchronous
        self._timeout = acquire_timeout_s
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._all: list[Connection] = []
        self._closed = False

    def _open(self) -> Connection:
        if self.backend == "sqlite":
            assert self.url.sqlite_path is not None
            return connect_sqlite(self.url.sqlite_path, synchronous=self._synchronous)
        assert self.url.dsn is not None
        return connect_postgres(self.url.dsn)

    def acquire(self) -> Connection:
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self._size:
                self._created += 1
                try:
                    connection = self._open()
                except BaseException:
                    self._created -= 1
                    raise
                self._all.append(connection)
                return connection
        try:
            return self._idle.get(timeout=self._timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no database connection became free within {self._timeout:.0f} s"
            ) from None

    def release(self, connection: Connection, broken: bool = False) -> None:
        if broken or self._closed:
            self._discard(connection)
            return
        self._idle.put(connection)

    def _discard(self, connection: Connection) -> None:
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)
                self._created -= 1
        try:
            connection.close()
        except Exception:  # noqa: BLE001, S110 - a connection that fails to close is gone anyway
            pass

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow a connection. After an exception the connection's transaction is rolled back;
        if even that fails its session state is unknown, so it is discarded, not reused."""
        connection = self.acquire()
        broken = False
        try:
            yield connection
        except BaseException:
            try:
                connection.rollback()
            except Exception:  # noqa: BLE001 - any failure here means the session is unusable
                broken = True
            raise
        finally:
            self.release(connection, broken=broken)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            connections, self._all = self._all, []
            self._created = 0
        for connection in connections:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110 - closing at shutdown; nothing to recover
                pass
