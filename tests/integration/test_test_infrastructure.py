"""The test infrastructure itself: database fixtures and the PostgreSQL skip/require logic."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
import pytest

from pg_support import create_database, decide_postgres, drop_databases
from tianping.db.connect import connect_postgres, connect_sqlite
from tianping.db.urls import parse_database_url


def test_database_url_is_connectable(database_url: str) -> None:
    parsed = parse_database_url(database_url)
    if parsed.backend == "sqlite":
        assert parsed.sqlite_path is not None
        assert parsed.sqlite_path.is_absolute()
        assert not parsed.sqlite_path.exists()
        conn = sqlite3.connect(parsed.sqlite_path)
        try:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            conn.close()
    else:
        assert parsed.dsn is not None
        assert urlsplit(parsed.dsn).path.startswith("/tp_")
        with psycopg.connect(parsed.dsn, autocommit=True) as pg:
            assert pg.execute("SELECT 1").fetchone() == (1,)
            # A fresh database: no user tables.
            row = pg.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
            assert row == (0,)


@pytest.mark.postgres
def test_postgres_databases_are_distinct_and_isolated(
    postgres_database_factory: Callable[[], str],
) -> None:
    first, second = postgres_database_factory(), postgres_database_factory()
    assert first != second
    assert urlsplit(first).path != urlsplit(second).path
    with psycopg.connect(first, autocommit=True) as pg:
        pg.execute("CREATE TABLE only_in_first (x int)")
    with psycopg.connect(second, autocommit=True) as pg:
        row = pg.execute("SELECT to_regclass('only_in_first') IS NULL").fetchone()
        assert row == (True,)


@pytest.mark.postgres
def test_created_databases_are_dropped_even_while_in_use(postgres_server_url: str) -> None:
    name, url = create_database(postgres_server_url)
    assert name.startswith("tp_")

    def names() -> set[str]:
        with psycopg.connect(postgres_server_url, autocommit=True) as pg:
            return {r[0] for r in pg.execute("SELECT datname FROM pg_database").fetchall()}

    assert name in names()
    lingering = psycopg.connect(url, autocommit=True)  # a session the test forgot to close
    try:
        drop_databases(postgres_server_url, [name])
        assert name not in names()
    finally:
        lingering.close()
    drop_databases(postgres_server_url, [name])  # idempotent


def test_sqlite_url_points_into_tmp_path(sqlite_url: str, tmp_path: object) -> None:
    assert sqlite_url == f"sqlite:///{tmp_path}/ledger.db"


# --- tianping.db.connect on both backends ---------------------------------------------


def test_connect_sqlite_pragmas(sqlite_url: str) -> None:
    path = parse_database_url(sqlite_url).sqlite_path
    assert path is not None
    conn = connect_sqlite(path, synchronous="normal", busy_timeout_ms=1234)
    try:
        assert conn.isolation_level is None
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (1234,)
        # No implicit transactions: we issue BEGIN/COMMIT ourselves.
        conn.execute("CREATE TABLE t (x INTEGER)")
        in_transaction = [conn.in_transaction]
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (1)")
        in_transaction.append(conn.in_transaction)
        conn.execute("ROLLBACK")
        assert in_transaction == [False, True]
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        conn.close()
    default = connect_sqlite(path)
    try:
        assert default.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        default.close()


@pytest.mark.parametrize("bad", ["fast", "", "2"])
def test_connect_sqlite_rejects_bad_synchronous(sqlite_url: str, bad: str) -> None:
    path = parse_database_url(sqlite_url).sqlite_path
    assert path is not None
    with pytest.raises(ValueError, match="synchronous"):
        connect_sqlite(path, synchronous=bad)
    assert not path.exists()


def test_connect_sqlite_rejects_memory() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        connect_sqlite(":memory:")


@pytest.mark.postgres
def test_connect_postgres_is_not_autocommit(postgres_url: str) -> None:
    alias = "postgres://" + postgres_url.split("://", 1)[1]
    with connect_postgres(alias) as conn:
        assert conn.autocommit is False
        conn.execute("CREATE TABLE t (x int)")
        conn.rollback()
        assert conn.execute("SELECT to_regclass('t') IS NULL").fetchone() == (True,)


# --- the skip / require decision ---------------------------------------------------------

URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.mark.parametrize(
    ("env", "binary_found", "expected"),
    [
        ({}, False, "skip"),
        ({}, True, "start"),
        ({"TIANPING_TEST_POSTGRES_URL": URL}, False, "use"),
        ({"TIANPING_TEST_POSTGRES_URL": URL}, True, "use"),
        ({"TIANPING_TEST_POSTGRES_URL": "  "}, False, "skip"),
        ({"TIANPING_TEST_POSTGRES": "required"}, False, "fail"),
        ({"TIANPING_TEST_POSTGRES": "REQUIRED"}, False, "fail"),
        ({"TIANPING_TEST_POSTGRES": "required"}, True, "start"),
        ({"TIANPING_TEST_POSTGRES": "required", "TIANPING_TEST_POSTGRES_URL": URL}, False, "use"),
        ({"TIANPING_TEST_POSTGRES": "auto"}, False, "skip"),
        ({"TIANPING_TEST_POSTGRES": "auto"}, True, "start"),
        ({"TIANPING_TEST_POSTGRES": ""}, True, "start"),
        ({"TIANPING_TEST_POSTGRES": "off"}, True, "skip"),
        ({"TIANPING_TEST_POSTGRES": "off", "TIANPING_TEST_POSTGRES_URL": URL}, True, "skip"),
    ],
)
def test_decide_postgres(env: dict[str, str], binary_found: bool, expected: str) -> None:
    assert decide_postgres(env, binary_found) == expected


def test_decide_postgres_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="TIANPING_TEST_POSTGRES"):
        decide_postgres({"TIANPING_TEST_POSTGRES": "yes"}, True)
