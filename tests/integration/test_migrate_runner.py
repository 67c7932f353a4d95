"""tianping.db.migrate against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from tianping.db import migrate
from tianping.db.urls import parse_database_url


def _package_head() -> str | None:
    """The head revision as Alembic itself sees the shipped migrations directory."""
    return ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_current_head()


def test_migrations_dir_is_inside_the_package() -> None:
    assert migrate.MIGRATIONS_DIR.is_dir()
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (migrate.MIGRATIONS_DIR / "versions").is_dir()


def test_upgrade_then_current_is_head(database_url: str) -> None:
    assert migrate.current(database_url) is None
    migrate.upgrade(database_url)
    head = _package_head()
    assert migrate.head_revision() == head
    assert migrate.current(database_url) == head
    migrate.upgrade(database_url)  # idempotent
    assert migrate.current(database_url) == head


def test_sqlite_upgrade_creates_parent_directory(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "deeper" / "ledger.db"
    migrate.upgrade(f"sqlite:///{db}")
    assert db.parent.is_dir()
    assert migrate.current(f"sqlite:///{db}") == _package_head()


def test_current_of_missing_sqlite_file_is_none_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "absent" / "ledger.db"
    assert migrate.current(f"sqlite:///{db}") is None
    assert not db.parent.exists()


_REVISION = '''"""test table

Revision ID: t0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("widgets") as batch:
        batch.add_column(sa.Column("name", sa.Text, nullable=False, server_default="w"))


def downgrade() -> None:
    op.drop_table("widgets")
'''

_BROKEN_REVISION = '''"""fails half way

Revision ID: t0002
Revises: t0001
"""

import sqlalchemy as sa
from alembic import op

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("gadgets", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT * FROM no_such_table")


def downgrade() -> None:
    op.drop_table("gadgets")
'''


def _table_names(url: str) -> set[str]:
    parsed = parse_database_url(url)
    if parsed.backend == "sqlite":
        with sqlite3.connect(str(parsed.sqlite_path)) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    else:
        assert parsed.dsn is not None
        with psycopg.connect(parsed.dsn) as pg:
            rows = pg.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def scripts_with_revisions(tmp_path: Path) -> Path:
    """The package's Alembic environment (env.py, script.py.mako) with only test revisions."""
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy2(migrate.MIGRATIONS_DIR / name, location / name)
    (location / "versions" / "t0001_widgets.py").write_text(_REVISION)
    return location


def test_env_applies_real_revisions(database_url: str, scripts_with_revisions: Path) -> None:
    assert migrate.head_revision(scripts_with_revisions) == "t0001"
    migrate.upgrade(database_url, script_location=scripts_with_revisions)
    assert migrate.current(database_url) == "t0001"
    assert {"widgets", "alembic_version"} <= _table_names(database_url)


def test_failed_upgrade_is_rolled_back(database_url: str, scripts_with_revisions: Path) -> None:
    (scripts_with_revisions / "versions" / "t0002_broken.py").write_text(_BROKEN_REVISION)
    with pytest.raises(Exception, match="no_such_table"):
        migrate.upgrade(database_url, script_location=scripts_with_revisions)
    # One transaction for the whole upgrade: neither revision is half-applied.
    assert migrate.current(database_url) is None
    assert "widgets" not in _table_names(database_url)
    assert "gadgets" not in _table_names(database_url)
    migrate.upgrade(database_url, "t0001", script_location=scripts_with_revisions)
    assert migrate.current(database_url) == "t0001"
