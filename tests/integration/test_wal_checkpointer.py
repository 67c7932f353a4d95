"""SQLite WAL checkpoints run in the pool's own thread, not in the committing writer."""

from __future__ import annotations

import gc
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tianping.db.checkpointer import BACKSTOP_PAGES, CHECKPOINT_NICENESS, WalCheckpointer
from tianping.db.pool import ConnectionPool

# Generous: the suite runs beside other work on a shared two-core machine.
WAIT_S = 30.0


def _write_rows(pool: ConnectionPool, rows: int) -> None:
    with pool.connection() as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, pad BLOB)")
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO filler (pad) VALUES (?)", [(bytes(500),) for _ in range(rows)]
        )
        connection.execute("COMMIT")


def _wait_for(
    condition: Callable[[], bool], what: str, state: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} {state()}")


def _rows_in_database_file(path: Path) -> int:
    """Rows of `filler` in the database file itself, not counting the WAL: only a checkpoint
    puts them there while connections stay open (the last close would checkpoint too)."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM filler").fetchone()[0])
    except sqlite3.DatabaseError:  # the table itself is not in the file yet, or mid-copy
        return -1
    finally:
        connection.close()


@contextmanager
def _pool_with_checkpointer(path: Path) -> Iterator[tuple[ConnectionPool, WalCheckpointer]]:
    """A pool whose thread looks at the log every 50 ms; its thread has ended afterwards."""
    pool = ConnectionPool(f"sqlite:///{path}", size=2, sqlite_checkpoint_interval_s=0.05)
    try:
        checkpointer = pool._checkpointer
        assert checkpointer is not None
        yield pool, checkpointer
    finally:
        pool.close()
    assert not checkpointer._thread.is_alive()


def _wait_for_rows_in_file(path: Path, rows: int, checkpointer: WalCheckpointer) -> None:
    # The thread counts a checkpoint once SQLite has returned it, so wait for both.
    _wait_for(
        lambda: _rows_in_database_file(path) == rows and checkpointer.checkpoints >= 1,
        "the rows in the database file",
        lambda: (
            f"rows in the file {_rows_in_database_file(path)}, checkpoints "
            f"{checkpointer.checkpoints}, failures {checkpointer.failures}, "
            f"thread alive {checkpointer._thread.is_alive()}"
        ),
    )


def test_the_pool_thread_checkpoints_what_writers_commit(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    with _pool_with_checkpointer(path) as (pool, checkpointer):
        _write_rows(pool, 2_000)  # about 250 pages: below SQLite's default threshold too
        _wait_for_rows_in_file(path, 2_000, checkpointer)
        assert checkpointer.failures == 0
        with pool.connection() as connection:
            # Writers checkpoint by themselves only past the backstop.
            assert connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES


def test_without_the_thread_writers_keep_sqlites_default(tmp_path: Path) -> None:
    pool = ConnectionPool(f"sqlite:///{tmp_path / 'plain.db'}", sqlite_checkpoint_interval_s=None)
    try:
        assert pool._checkpointer is None
        with pool.connection() as connection:
            assert connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        pool.close()


def test_an_idle_log_is_not_checkpointed_again(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    with _pool_with_checkpointer(path) as (pool, checkpointer):
        _write_rows(pool, 100)
        _wait_for_rows_in_file(path, 100, checkpointer)
        time.sleep(0.3)  # several ticks with no writes in between
        settled = checkpointer.checkpoints
        time.sleep(0.3)
        assert checkpointer.checkpoints == settled
        _write_rows(pool, 100)
        _wait_for(lambda: checkpointer.checkpoints > settled, "a checkpoint after new writes")


def test_a_pool_dropped_without_close_stops_its_thread(tmp_path: Path) -> None:
    pool = ConnectionPool(f"sqlite:///{tmp_path / 'dropped.db'}", sqlite_checkpoint_interval_s=0.05)
    checkpointer = pool._checkpointer
    assert checkpointer is not None
    del pool
    gc.collect()
    checkpointer._thread.join(WAIT_S)
    assert not checkpointer._thread.is_alive()


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own niceness on Linux")
def test_the_thread_runs_nicer_than_the_process(tmp_path: Path) -> None:
    with _pool_with_checkpointer(tmp_path / "nice.db") as (_, checkpointer):
        _wait_for(lambda: checkpointer.native_id is not None, "the thread to start")
        assert checkpointer.native_id is not None
        ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        expected = min(19, ours + CHECKPOINT_NICENESS)
        _wait_for(
            lambda: os.getpriority(os.PRIO_PROCESS, checkpointer.native_id or 0) == expected,
            "the thread's niceness",
        )


def test_the_interval_is_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        WalCheckpointer(tmp_path / "x.db", interval_s=0)
