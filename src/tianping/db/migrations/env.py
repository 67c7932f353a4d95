"""Alembic environment for Tianping.

Used programmatically by :mod:`tianping.db.migrate`, which passes an open SQLAlchemy
connection in ``config.attributes["connection"]``. Falls back to the ``sqlalchemy.url`` main
option (e.g. when Alembic's own CLI is pointed at this directory).
SQLite migrations use batch mode (``render_as_batch``) since SQLite's ALTER TABLE is limited.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

config = context.config

# Revisions are written by hand; autogenerate can be enabled by passing metadata here.
target_metadata = config.attributes.get("target_metadata")


def _configure_and_run(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        # tianping.db.migrate makes pysqlite transactional, so DDL is atomic on SQLite too.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline migrations need the sqlalchemy.url option")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database: pass a connection in config.attributes['connection'] "
            "or set sqlalchemy.url"
        )
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
