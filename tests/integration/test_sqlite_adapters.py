"""The identity adapters `tianping.db.connect` registers change no stored value or type."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tianping.db.connect import connect_sqlite


def test_bytes_none_and_bools_are_stored_as_before(tmp_path: Path) -> None:
    connection = connect_sqlite(tmp_path / "adapters.db")
    try:
        connection.execute("CREATE TABLE t (a, b, c, d, e)")
        blob = bytes(range(16))
        connection.execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)", (blob, None, True, False, bytearray(b"x"))
        )
        connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [(b"", None, 1, 0, "x")])
        rows = connection.execute(
            "SELECT typeof(a), a, typeof(b), b, typeof(c), c, typeof(d), d FROM t ORDER BY rowid"
        ).fetchall()
    finally:
        connection.close()
    assert rows == [
        ("blob", blob, "null", None, "integer", 1, "integer", 0),
        ("blob", b"", "null", None, "integer", 1, "integer", 0),
    ]
    # The adapters are the registered ones (a lookup that hits), not the slow miss.
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)] is bytes
    assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)] is int
