"""`tianping db`: create the database and keep its schema at the head revision."""

from __future__ import annotations

from typing import Annotated

import typer

from tianping.cli.common import EXIT_FAILED, CliError, console, emit_json, state_of
from tianping.db.migrate import current, head_revision, upgrade
from tianping.db.urls import parse_database_url

app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]


def _head() -> str:
    head = head_revision()
    if head is None:  # pragma: no cover - the package always ships its revisions
        raise CliError("this build of Tianping ships no migrations", EXIT_FAILED)
    return head


@app.command("init")
def init(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create the data directory and the database, and migrate it to the head revision."""
    settings = state_of(ctx).settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    before = current(settings.database_url)
    upgrade(settings.database_url)
    after = current(settings.database_url)
    where = parse_database_url(settings.database_url).redacted()
    if as_json:
        emit_json(
            {
                "database": where,
                "data_dir": str(settings.data_dir),
                "from_revision": before,
                "to_revision": after,
                "head": _head(),
            }
        )
        return
    if before == after:
        console().print(f"database {where} is already initialised (revision {after})", markup=False)
    else:
        console().print(f"initialised database {where} at revision {after}", markup=False)


@app.command("migrate")
def migrate(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Upgrade the database schema to the head revision and print the from/to revisions."""
    settings = state_of(ctx).settings()
    before = current(settings.database_url)
    upgrade(settings.database_url)
    after = current(settings.database_url)
    where = parse_database_url(settings.database_url).redacted()
    if as_json:
        emit_json({"database": where, "from_revision": before, "to_revision": after})
        return
    if before == after:
        console().print(f"database {where}: already at head revision {after}", markup=False)
    else:
        console().print(
            f"database {where}: migrated from {before or '(empty)'} to {after}", markup=False
        )


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the database's revision against the head revision (exit 1 if they differ)."""
    settings = state_of(ctx).settings()
    revision = current(settings.database_url)
    head = _head()
    where = parse_database_url(settings.database_url).redacted()
    up_to_date = revision == head
    if as_json:
        emit_json({"database": where, "current": revision, "head": head, "up_to_date": up_to_date})
    else:
        state = (
            "up to date"
            if up_to_date
            else "not initialised"
            if revision is None
            else "behind the head"
        )
        console().print(
            f"database {where}\n  current: {revision or '(none)'}\n"
            f"  head:    {head}\n  status:  {state}",
            markup=False,
        )
    if not up_to_date:
        hint = "tianping db init" if revision is None else "tianping db migrate"
        raise CliError(f"the database is not at the head revision; run `{hint}`", EXIT_FAILED)
