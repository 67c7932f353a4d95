"""Writers of one SQLite database take turns on an OS file lock, so a waiting writer wakes at once.

SQLite has one write lock per database file. A second writer that finds it taken does not
queue for it: its busy handler sleeps and retries, with sleeps growing to 100 ms. When several
processes write all the time (two API workers, each with a payments batcher), the lock is free
again within a millisecond, yet the loser sleeps on, and those sleeps are the tail of the
latency. Waiting on `fcntl.flock` of a file next to the database instead puts the waiter to
sleep in the kernel until the holder releases it, then wakes it at once.

The file lock only orders the writers; SQLite's own lock still guards the data. A writer that
does not take the file lock (a migration, another program, an older version of this one) still
waits in SQLite's busy handler as before, and a lock file that cannot be opened (a read-only
directory) means the writers go back to that busy handler, correct as ever, only slower.

Within a process, the writers of one pool first take a thread lock, so that at most one of its
threads waits for the file lock. Both waits are bounded by the connection's busy timeout, after
which the writer fails with SQLite's own "database is locked", as it did before: a process holds
the file lock only while it holds a write transaction, and the operating system releases it when
the process ends, however it ends, but a live process stuck inside a transaction must not stop
every other writer for ever (the ledger's promise: no deadlock lasts for ever). `flock` has no
timeout and a blocking call cannot be interrupted from another thread, so the wait is a
non-blocking attempt repeated after sleeps that start at 50 µs and double up to 1 ms: a freed
lock is taken within about a millisecond (SQLite's handler sleeps up to 100 ms), and the
deadline holds.

Set `sqlite_writer_lock = false` (env `TIANPING_SQLITE_WRITER_LOCK=false`) to rely on SQLite's
busy handler alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = ["WRITER_LOCK_SUFFIX", "SqliteWriterLock", "writer_lock_path"]

logger = logging.getLogger(__name__)

# The lock file is the database file's name with this suffix, beside it.
WRITER_LOCK_SUFFIX: Final = ".writer-lock"
# A waiter tries again after these pauses, doubling from the first to the longest.
_FIRST_PAUSE_S: Final = 0.000_05
_LONGEST_PAUSE_S: Final = 0.001


def writer_lock_path(database_path: str | os.PathLike[str]) -> Path:
    """Where the writer lock of the SQLite database at `database_path` lives."""
    path = Path(database_path)
    return path.with_name(path.name + WRITER_LOCK_SUFFIX)


class SqliteWriterLock:
    """One pool's turn among the writers of an SQLite database: a thread lock, then a file lock.

    `held()` is a context manager around one write transaction, from before its
    `BEGIN IMMEDIATE` to after its `COMMIT` or `ROLLBACK`.
    """

    def __init__(self, database_path: str | os.PathLike[str], wait_s: float) -> None:
        self.path = writer_lock_path(database_path)
        self._wait_s = wait_s
        self._threads = threading.Lock()
        # The open lock file, and the process that opened it: a forked child shares the parent's
        # open file description, and with it the parent's flock, so it opens its own.
        self._file: int | None = None
        self._owner_pid = 0
        self._unavailable = False

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._threads.acquire(timeout=self._wait_s):
            # What SQLite's busy handler answers when its timeout passes.
            raise sqlite3.OperationalError("database is locked")
        try:
            descriptor = self._descriptor()
            if descriptor is None:
                yield
                return
            self._acquire_file(descriptor)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _acquire_file(self, descriptor: int) -> None:
        """Take the file lock within the busy timeout, else fail as SQLite would."""
        deadline = time.monotonic() + self._wait_s
        pause = _FIRST_PAUSE_S
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE_S)

    def _descriptor(self) -> int | None:
        """The lock file, opened once per process; None when it cannot be opened."""
        if self._unavailable:
            return None
        if self._file is None or self._owner_pid != os.getpid():
            try:
                self._file = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as error:
                self._unavailable = True
                logger.warning(
                    "the SQLite writer lock file cannot be opened (%s); writers wait in "
                    "SQLite's busy handler instead",
                    type(error).__name__,
                )
                return None
            self._owner_pid = os.getpid()
        return self._file

    def close(self) -> None:
        """Close the lock file (a later write opens it again)."""
        with self._threads:
            if self._file is not None and self._owner_pid == os.getpid():
                os.close(self._file)
            self._file = None
