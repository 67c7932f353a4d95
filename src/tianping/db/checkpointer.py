"""Move SQLite's WAL checkpoints off the committing thread.

In WAL mode every commit appends pages to the `-wal` file, and by default the connection whose
commit takes the log past 1,000 pages copies the log back into the database file and syncs it
(a checkpoint) before its commit returns. On the payments path that was about half of the time
spent committing: a batch of 500 payments dirties a few hundred pages, so every few batches one
paid for a checkpoint of all of them, and with `synchronous=FULL` for two more fsyncs.

`WalCheckpointer` runs those checkpoints in a thread of their own, on a connection of its own,
every `interval_s` (a tenth of a second) when the log has been written since the last one. The
standard library's `sqlite3` releases the interpreter lock while SQLite works, so the copy and
its fsyncs overlap with the writers instead of stalling one of them. The checkpoints are
`PASSIVE`: they never wait for a reader or a writer, they copy what no reader still needs, and
SQLite starts the log again from its beginning once a checkpoint has copied all of it.

Writers keep a backstop: the pool sets their `wal_autocheckpoint` to `BACKSTOP_PAGES`, so a
log the thread cannot keep up with (a stalled thread, a disk slower than the writers) is still
checkpointed by a writer before it grows past that size, as SQLite would do by default at a
smaller size. `journal_size_limit` trims the file back to `BACKSTOP_PAGES`' worth of bytes when
the log restarts, so one burst does not keep a large file on disk for ever.

Several processes on one database each run their own checkpointer; SQLite lets one checkpoint
run at a time and a `PASSIVE` one that finds another running gives up until the next tick.
Crash safety is SQLite's: a checkpoint interrupted at any point is redone from the log at the
next open.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
from typing import Final

from tianping.db.connect import connect_sqlite

__all__ = [
    "BACKSTOP_PAGES",
    "CHECKPOINT_INTERVAL_S",
    "JOURNAL_SIZE_LIMIT_BYTES",
    "WalCheckpointer",
    "writer_pragmas",
]

# A writer checkpoints by itself only past this many pages of log (64 MiB of 4 KiB pages).
BACKSTOP_PAGES: Final = 16_384
# What the log file is trimmed back to when it restarts: the backstop's worth of 4 KiB pages.
JOURNAL_SIZE_LIMIT_BYTES: Final = BACKSTOP_PAGES * 4_096
# How often the thread looks at the log (a `stat` of the file; a checkpoint only when it was
# written). On the payments benchmark 0.1 s did a little better than 0.5 s and 2 s: shorter
# checkpoints let the log restart from its beginning more often instead of growing.
CHECKPOINT_INTERVAL_S: Final = 0.1
# How much nicer than the process the thread runs (Linux only, where a thread has a niceness
# of its own): when both cores are busy, serving requests comes before copying the log, which
# can wait for the next tick. On a machine with a core to spare it changes nothing.
CHECKPOINT_NICENESS: Final = 10


def writer_pragmas(connection: sqlite3.Connection) -> None:
    """Raise a writer connection's own checkpoint threshold to the backstop, and bound what
    the log keeps on disk after it restarts."""
    connection.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")


class WalCheckpointer:
    """A daemon thread that checkpoints one SQLite database's WAL; `close` stops it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        synchronous: str = "FULL",
        interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the checkpoint interval is a positive number of seconds")
        self._path = os.fspath(path)
        self._wal_path = self._path + "-wal"
        self._synchronous = synchronous
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._last_seen: tuple[int, int] | None = None
        self.checkpoints = 0  # completed `PASSIVE` checkpoints, for tests and diagnostics
        self.failures = 0  # checkpoints that raised; the writers' backstop covers for them
        self.native_id: int | None = None  # the thread's id for the kernel, once it runs
        self._thread = threading.Thread(
            target=self._run, name=f"wal-checkpoint:{os.path.basename(self._path)}", daemon=True
        )
        self._thread.start()

    def _log_written(self) -> bool:
        """Whether the log changed since the last look (its size or modification time)."""
        try:
            status = os.stat(self._wal_path)
        except FileNotFoundError:
            return False
        seen = (status.st_size, status.st_mtime_ns)
        changed = seen != self._last_seen
        self._last_seen = seen
        return changed

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        if sys.platform == "linux":
            # Lowering one's own priority needs no privilege; a sandbox that forbids it only
            # loses the nicety.
            with contextlib.suppress(OSError):
                current = os.getpriority(os.PRIO_PROCESS, self.native_id)
                os.setpriority(
                    os.PRIO_PROCESS, self.native_id, min(19, current + CHECKPOINT_NICENESS)
                )
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(self._interval_s):
                if not self._log_written():
                    continue
                try:
                    if connection is None:
                        connection = connect_sqlite(self._path, synchronous=self._synchronous)
                    busy, frames, copied = connection.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                    self.checkpoints += 1
                    if busy or copied < frames:
                        # Another checkpoint was running, or a reader still needed some of
                        # the log: look again at the next tick even if nothing is written.
                        self._last_seen = None
                except sqlite3.Error:
                    # A busy or failing checkpoint is retried at the next tick with a fresh
                    # connection; meanwhile the writers' backstop bounds the log.
                    self.failures += 1
                    if connection is not None:
                        with contextlib.suppress(sqlite3.Error):
                            connection.close()
                    connection = None
        finally:
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()

    def stop(self) -> None:
        """Ask the thread to end after its current checkpoint, without waiting for it."""
        self._stopping.set()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
