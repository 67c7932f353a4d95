"""Helpers shared by migrations: run a DDL script on either backend, make tables append-only.

Migrations 0001 to 0005 carry their own copies of these steps (they are history and stay as
they ran); later migrations use this module so that the append-only triggers are the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op

__all__ = ["make_append_only", "run_script"]


def run_script(script: str) -> None:
    """Run `script` (statements separated by `;` at line ends) on the migration's connection.

    `{blob}` and `{without_rowid}` in the script become each backend's spelling: BLOB and
    WITHOUT ROWID on SQLite, BYTEA and nothing on PostgreSQL.
    """
    sqlite = op.get_bind().dialect.name == "sqlite"
    text = script.format(
        blob="BLOB" if sqlite else "BYTEA", without_rowid=" WITHOUT ROWID" if sqlite else ""
    )
    for statement in (part.strip() for part in text.split(";\n")):
        if statement:
            op.execute(statement)


def make_append_only(tables: Iterable[str]) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on each table, as the journal does."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in tables:
        if sqlite:
            for action in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table}: rows are append-only'); END"
                )
        else:
            # 0001 created the trigger function shared by every append-only table.
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tianping_refuse_journal_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
            )
