"""A small bounded pool of raw DB-API connections for one database.

The ledger's hot paths use the drivers directly (the standard library's `sqlite3` and psycopg 3)
instead of SQLAlchemy's pool and engine: at a hundred thousand transfers a second the few
microseconds SQLAlchemy adds per statement would be most of the budget. SQLAlchemy and Alembic
still own the schema (see `tianping.db.migrate`). This pool is the only extra machinery that choice
needs: it hands a connection to one thread at a time and never holds more than `size`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from psycopg.pq import TransactionStatus

from tianping.db.checkpointer import CHECKPOINT_INTERVAL_S, WalCheckpointer, writer_pragmas
from tianping.db.connect import SQLITE_BUSY_TIMEOUT_MS, connect_postgres, connect_sqlite
from tianping.db.urls import DatabaseURL, parse_database_url
from tianping.db.writer_lock import SqliteWriterLock

Connection = Any  # sqlite3.Connection or psycopg.Connection; the store knows which.
_PG_IDLE = TransactionStatus.IDLE


class ConnectionPool:
    """Hands out at most `size` connections; a thread waits when all are in use."""

    def __init__(
        self,
        url: str | DatabaseURL,
        size: int = 8,
        sqlite_synchronous: str = "FULL",
        acquire_timeout_s: int = 30,
        sqlite_writer_lock: bool = True,
        sqlite_checkpoint_interval_s: float | None = CHECKPOINT_INTERVAL_S,
    ) -> None:
        """`sqlite_checkpoint_interval_s`: how often a thread of the pool's own checkpoints
        an SQLite database's WAL (see `tianping.db.checkpointer`); None leaves checkpoints
        to the writers, as SQLite does by default."""
        self.url = url if isinstance(url, DatabaseURL) else parse_database_url(url)
        self.backend = self.url.backend
        # SQLite writers take turns on a file lock beside the database (see `writer_lock`);
        # PostgreSQL writers queue on the ledger's advisory lock, which wakes them already.
        self._writer_lock: SqliteWriterLock | None = None
        if self.backend == "sqlite" and sqlite_writer_lock:
            assert self.url.sqlite_path is not None
            self._writer_lock = SqliteWriterLock(
                self.url.sqlite_path, wait_s=SQLITE_BUSY_TIMEOUT_MS / 1000
            )
        self._checkpointer: WalCheckpointer | None = None
        if self.backend == "sqlite" and sqlite_checkpoint_interval_s is not None:
            assert self.url.sqlite_path is not None
            self._checkpointer = WalCheckpointer(
                self.url.sqlite_path, sqlite_synchronous, sqlite_checkpoint_interval_s
            )
            # A pool dropped without `close` still stops its thread.
            weakref.finalize(self, self._checkpointer.stop)
        self._size = size
        self._synchronous = sqlite_synchronous
        self._timeout = acquire_timeout_s
        # Idle connections. `list.pop` and `list.append` are atomic under the interpreter
        # lock, so the common case (a connection is idle) takes no lock at all; a point read
        # costs a few microseconds and a queue's lock and condition would be a third of it.
        self._idle: list[Connection] = []
        self._available = threading.Condition(threading.Lock())
        self._waiters = 0
        self._created = 0
        self._all: list[Connection] = []
        self._closed = False

    def _open(self) -> Connection:
        if self.backend == "sqlite":
            assert self.url.sqlite_path is not None
            lite = connect_sqlite(self.url.sqlite_path, synchronous=self._synchronous)
            if self._checkpointer is not None:
                writer_pragmas(lite)
            return lite
        assert self.url.dsn is not None
        connection = connect_postgres(self.url.dsn)
        # Pooled PostgreSQL connections run in autocommit mode and the ledger store opens its
        # transactions with an explicit BEGIN. A point read is then one round trip instead of
        # three (the driver's implicit BEGIN, the SELECT and the ROLLBACK that ends it).
        connection.autocommit = True
        return connection

    def reset(self, connection: Connection) -> None:
        """End whatever transaction the connection is in, discarding its work."""
        if self.backend == "sqlite":
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        elif connection.info.transaction_status != _PG_IDLE:
            connection.execute("ROLLBACK")

    def acquire(self) -> Connection:
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self._timeout
        with self._available:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._created < self._size:
                    self._created += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no database connection became free within {self._timeout} s"
                    )
                # Registering as a waiter before sleeping, under the lock, pairs with
                # `release` appending first and reading the count second: a release can
                # never slip between our check of `_idle` and our wait unnoticed.
                self._waiters += 1
                try:
                    self._available.wait(remaining)
                finally:
                    self._waiters -= 1
        try:
            connection = self._open()
        except BaseException:
            with self._available:
                self._created -= 1
                self._available.notify()
            raise
        with self._available:
            self._all.append(connection)
        return connection

    def release(self, connection: Connection, broken: bool = False) -> None:
        if broken or self._closed:
            self._discard(connection)
            return
        self._idle.append(connection)
        if self._waiters:
            with self._available:
                self._available.notify()

    def _discard(self, connection: Connection) -> None:
        with self._available:
            if connection in self._all:
                self._all.remove(connection)
                self._created -= 1
            self._available.notify()
        # A connection that fails to close is gone anyway.
        with contextlib.suppress(Exception):
            connection.close()

    def writer_turn(self) -> AbstractContextManager[None]:
        """Held around each write transaction: this pool's turn among the database's writers."""
        if self._writer_lock is None:
            return nullcontext()
        return self._writer_lock.held()

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
                self.reset(connection)
            except Exception:
                broken = True
            raise
        finally:
            self.release(connection, broken=broken)

    def close(self) -> None:
        self._closed = True
        with self._available:
            connections, self._all = self._all, []
            self._idle.clear()
            self._created = 0
            self._available.notify_all()
        for connection in connections:
            # Closing at shutdown: there is nothing to recover from a failure here.
            with contextlib.suppress(Exception):
                connection.close()
        if self._writer_lock is not None:
            self._writer_lock.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
