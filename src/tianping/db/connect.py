"""Open raw DB-API connections configured the way the ledger expects.

SQLite connections are in manual-transaction mode (``isolation_level=None``): callers issue
``BEGIN`` / ``BEGIN IMMEDIATE`` / ``COMMIT`` themselves. PostgreSQL connections are psycopg 3
connections with autocommit off (psycopg opens a transaction on the first statement).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, Final, Literal, cast

import psycopg

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_CACHE_KIB",
    "SQLITE_SYNCHRONOUS_MODES",
    "SqliteSynchronous",
    "connect_postgres",
    "connect_sqlite",
]

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
SQLITE_SYNCHRONOUS_MODES: Final[tuple[str, ...]] = ("OFF", "NORMAL", "FULL", "EXTRA")
# How long a writer waits for the database's write lock before it fails as "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
# Each connection's page cache, in KiB (SQLite's default is 2 MiB). The payments path inserts
# into a dozen indexes at random places (payers, accounts, decision ids); once they outgrow a
# small cache every insert reads its page back from the operating system. The cache fills only
# as pages are read, so a small database never uses it all.
SQLITE_CACHE_KIB: Final = 32_768

# Identity adapters for the parameter types the stdlib driver does not bind directly. CPython's
# `sqlite3` (3.11) binds an exact int, float, str or bytearray as it is, but sends every other
# value (`bytes`, `None`, `bool`) through its adapter protocol first: a registry lookup that
# misses, then two failed attribute lookups, before it binds the value unchanged. Measured here,
# that cost about 300 ns for each 16-byte id and 490 ns for each NULL, and a payment binds some
# twenty ids and a handful of NULLs. With an adapter registered the lookup hits at once and
# calls a C function that returns the value unchanged (`{}.get` answers None for any key), so
# the stored values and their SQLite types are exactly what they were
# (`tests/integration/test_sqlite_adapters.py`). The registry is process-wide; these adapters
# change no value, so any other user of `sqlite3` in the process sees no difference but speed.
sqlite3.register_adapter(bytes, bytes)
sqlite3.register_adapter(type(None), cast(Callable[[None], None], {}.get))
sqlite3.register_adapter(bool, int)


def connect_sqlite(
    path: str | os.PathLike[str],
    synchronous: SqliteSynchronous | str = "FULL",
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
) -> sqlite3.Connection:
    """Open the SQLite database file at ``path``.

    The connection has ``isolation_level=None`` (no implicit transactions),
    ``check_same_thread=False``, and these pragmas: ``journal_mode=WAL``,
    ``synchronous=<synchronous>`` (one of OFF, NORMAL, FULL, EXTRA; case-insensitive),
    ``foreign_keys=ON``, ``busy_timeout=<busy_timeout_ms>`` and a page cache of
    ``SQLITE_CACHE_KIB``.

    The file is created if missing (its directory must exist). ``:memory:`` is refused.
    """
    sync = str(synchronous).upper()
    if sync not in SQLITE_SYNCHRONOUS_MODES:
        raise ValueError(
            f"invalid SQLite synchronous mode {synchronous!r}: "
            f"expected one of {', '.join(SQLITE_SYNCHRONOUS_MODES)}"
        )
    if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
        raise TypeError("busy_timeout_ms must be an int")
    if busy_timeout_ms < 0:
        raise ValueError("busy_timeout_ms must be >= 0")
    target = os.fspath(path)
    if target in ("", ":memory:") or target.startswith("file::memory:"):
        raise ValueError("in-memory SQLite databases are not supported: the ledger needs a file")

    conn = sqlite3.connect(
        target,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if row is None or str(row[0]).lower() != "wal":
            raise sqlite3.OperationalError(
                f"could not switch {target!r} to WAL journal mode (got {row!r})"
            )
        conn.execute(f"PRAGMA synchronous = {sync}")  # validated against a fixed list above
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    except BaseException:
        conn.close()
        raise
    return conn


def connect_postgres(dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a psycopg 3 connection with ``autocommit=False``.

    ``dsn`` is a libpq connection string (``host=... dbname=...``) or URL. URLs in any form
    accepted by :func:`tianping.db.urls.parse_database_url` (``postgres://``,
    ``postgresql+psycopg://``) are normalised first.
    """
    if "://" in dsn:
        from tianping.db.urls import parse_database_url

        parsed = parse_database_url(dsn)
        if parsed.backend != "postgresql" or parsed.dsn is None:
            raise ValueError(f"not a PostgreSQL URL: {parsed.redacted()}")
        dsn = parsed.dsn
    return psycopg.connect(dsn, autocommit=False)
