"""Run Alembic migrations programmatically (no ``alembic.ini`` needed).

The Alembic environment lives in the ``migrations`` directory of this package; revision files
go in ``migrations/versions/``. With no revision files, :func:`upgrade` is a no-op and
:func:`current` returns ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from tianping.db.urls import DatabaseURL, parse_database_url

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current", "head_revision", "upgrade"]

#: The Alembic script location shipped inside the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SQLITE_BUSY_TIMEOUT_S = 30.0
_PG_LOCK_KEY = 0x7469_616E_7069_6E67  # "tianping"; fits in a signed bigint


def alembic_config(script_location: str | Path | None = None) -> Config:
    """An Alembic :class:`Config` pointing at the package's migrations (or ``script_location``)."""
    cfg = Config()
    location = str(script_location or MIGRATIONS_DIR)
    # ConfigParser interpolation: a literal '%' must be doubled.
    cfg.set_main_option("script_location", location.replace("%", "%%"))
    return cfg


def head_revision(script_location: str | Path | None = None) -> str | None:
    """The single head revision id, or ``None`` when there are no revisions."""
    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


def _engine(parsed: DatabaseURL, *, write: bool) -> sa.Engine:
    if parsed.backend == "sqlite":
        engine = sa.create_engine(
            parsed.sqlalchemy_url,
            poolclass=NullPool,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S},
        )

        # pysqlite does not emit BEGIN before DDL; take over transaction control so that a
        # whole upgrade is one atomic transaction (documented SQLAlchemy recipe). Writers take
        # the write lock up front so concurrent upgrades serialise instead of deadlocking.
        begin_sql = "BEGIN IMMEDIATE" if write else "BEGIN"

        @sa.event.listens_for(engine, "connect")
        def _no_implicit_tx(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _explicit_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql(begin_sql)

        return engine
    return sa.create_engine(parsed.sqlalchemy_url, poolclass=NullPool)


@contextmanager
def _connection(parsed: DatabaseURL, *, write: bool) -> Iterator[sa.Connection]:
    engine = _engine(parsed, write=write)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def upgrade(
    url: str,
    revision: str = "head",
    *,
    script_location: str | Path | None = None,
) -> None:
    """Upgrade the database at ``url`` to ``revision`` in a single transaction.

    For SQLite, the parent directory of the database file is created if missing.
    """
    parsed = parse_database_url(url)
    if parsed.backend == "sqlite" and parsed.sqlite_path is not None:
        parsed.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    cfg = alembic_config(script_location)
    with _connection(parsed, write=True) as conn:
        if parsed.backend == "postgresql":
            # Serialise concurrent upgrades of the same database (released at commit).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or ``None`` if it was never migrated.

    A missing SQLite file is reported as ``None`` and is not created.
    """
    parsed = parse_database_url(url)
    sqlite_path = parsed.sqlite_path
    if parsed.backend == "sqlite" and sqlite_path is not None and not sqlite_path.exists():
        return None
    with _connection(parsed, write=False) as conn:
        return MigrationContext.configure(conn).get_current_revision()
