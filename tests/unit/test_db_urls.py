"""tianping.db.urls: parsing, refusal of unusable URLs, password redaction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tianping.db.urls import DatabaseURL, InvalidDatabaseURL, parse_database_url


def test_relative_sqlite_path() -> None:
    url = parse_database_url("sqlite:///var/tianping.db")
    assert url.backend == "sqlite"
    assert url.sqlite_path == Path("var/tianping.db")
    assert url.dsn is None
    assert url.sqlalchemy_url == "sqlite:///var/tianping.db"


def test_absolute_sqlite_path() -> None:
    url = parse_database_url("sqlite:////srv/ledger/ledger.db")
    assert url.sqlite_path == Path("/srv/ledger/ledger.db")
    assert url.sqlite_path.is_absolute()
    assert url.sqlalchemy_url == "sqlite:////srv/ledger/ledger.db"


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_database_url("  sqlite:///a.db\n").sqlite_path == Path("a.db")


@pytest.mark.parametrize(
    "raw",
    ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared"],
)
def test_in_memory_sqlite_is_refused(raw: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as info:
        parse_database_url(raw)
    message = str(info.value)
    assert "\n" not in message
    assert "in-memory" in message or "options" in message


def test_memory_refusal_explains_why() -> None:
    with pytest.raises(InvalidDatabaseURL, match="needs a database file"):
        parse_database_url("sqlite:///:memory:")


@pytest.mark.parametrize(
    ("raw", "dsn", "sqlalchemy_url"),
    [
        (
            "postgresql://u@localhost:5432/ledger",
            "postgresql://u@localhost:5432/ledger",
            "postgresql+psycopg://u@localhost:5432/ledger",
        ),
        (
            "postgres://u:pw@db.example:6543/ledger",
            "postgresql://u:pw@db.example:6543/ledger",
            "postgresql+psycopg://u:pw@db.example:6543/ledger",
        ),
        (
            "postgresql+psycopg://u@127.0.0.1/ledger?sslmode=disable",
            "postgresql://u@127.0.0.1/ledger?sslmode=disable",
            "postgresql+psycopg://u@127.0.0.1/ledger?sslmode=disable",
        ),
        (
            "POSTGRESQL:///ledger?host=/run/postgresql",
            "postgresql:///ledger?host=/run/postgresql",
            "postgresql+psycopg:///ledger?host=/run/postgresql",
        ),
    ],
)
def test_postgres_forms(raw: str, dsn: str, sqlalchemy_url: str) -> None:
    url = parse_database_url(raw)
    assert url.backend == "postgresql"
    assert url.sqlite_path is None
    assert url.dsn == dsn
    assert url.sqlalchemy_url == sqlalchemy_url


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("var/tianping.db", "not a database URL"),
        ("mysql://u@h/db", "unsupported database URL scheme 'mysql'"),
        ("sqlite+pysqlite:///a.db", "unsupported database URL scheme"),
        ("postgresql+psycopg2://u@h/db", "unsupported PostgreSQL driver"),
        ("postgresql+asyncpg://u@h/db", "unsupported PostgreSQL driver"),
        ("postgresql://u@h:notaport/db", "malformed PostgreSQL URL"),
        ("postgresql://u@h/db/extra", "single database name"),
        ("sqlite://host/a.db", "sqlite:///"),
        ("sqlite:///a.db?mode=ro", "options"),
        ("sqlite:///var/", "directory"),
    ],
)
def test_invalid_urls(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as info:
        parse_database_url(raw)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


SECRET = "s3cr3t-p%40ss"


def test_redacted_hides_password() -> None:
    url = parse_database_url(f"postgresql://alice:{SECRET}@db:5432/ledger?sslmode=require")
    assert url.redacted() == "postgresql://alice:***@db:5432/ledger?sslmode=require"
    assert SECRET in url.sqlalchemy_url  # still usable for connecting
    for shown in (url.redacted(), str(url), repr(url), f"{url}"):
        assert SECRET not in shown


def test_redacted_hides_password_query_parameter() -> None:
    url = parse_database_url(f"postgresql://alice@db/ledger?password={SECRET}&sslmode=require")
    assert SECRET not in url.redacted()
    assert "password=***" in url.redacted()
    assert "sslmode=require" in url.redacted()


def test_redacted_without_password_is_unchanged() -> None:
    raw = "postgresql://alice@db:5432/ledger"
    assert parse_database_url(raw).redacted() == raw
    assert parse_database_url("sqlite:///x.db").redacted() == "sqlite:///x.db"


@pytest.mark.parametrize(
    "raw",
    [
        f"mysql://alice:{SECRET}@db/ledger",
        f"postgresql+asyncpg://alice:{SECRET}@db/ledger",
        f"postgresql://alice:{SECRET}@db:99999999/ledger",
        f"postgresql://alice:{SECRET}@db/a/b",
        f"oracle://alice@db/x?password={SECRET}",
    ],
)
def test_errors_never_contain_passwords(raw: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as info:
        parse_database_url(raw)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)


def test_database_url_is_frozen() -> None:
    url = parse_database_url("sqlite:///a.db")
    assert isinstance(url, DatabaseURL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        url.backend = "postgresql"  # type: ignore[misc]
