"""The `tianping` command: the Typer application and its global options.

    tianping [--config PATH] [--database-url URL] [--data-dir DIR] COMMAND ...

The global options override the settings from the environment and the TOML file (see
`tianping.config`). Every command is defined in a module of this package and registered here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tianping import __version__
from tianping.cli import (
    audit_commands,
    db_commands,
    demo,
    identity_commands,
    ledger_commands,
    lending_commands,
    payments_commands,
    rules_commands,
    serve,
)
from tianping.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliState,
    describe_error,
    print_error,
)


class TianpingGroup(TyperGroup):
    """The root group: turns every expected failure into one `error:` line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        code = self._run(args, prog_name, complete_var, windows_expand_args, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        windows_expand_args: bool,
        **extra: Any,
    ) -> int:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except typer.TyperException as exc:  # usage errors: bad or missing options and values
            return _usage_error(exc)
        except typer.Abort:
            print_error("aborted")
            return EXIT_FAILED
        except (Exception, KeyboardInterrupt) as exc:
            described = describe_error(exc)
            if described is None:
                raise
            message, code = described
            print_error(message)
            return code
        return result if isinstance(result, int) else 0


def _usage_error(exc: typer.TyperException) -> int:
    context = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
        # `tianping` or `tianping ledger` alone. With Rich, building the exception has already
        # printed the help (Typer checks the class by name too); without it, the message is it.
        if exc.format_message().strip():
            typer.echo(exc.format_message())
        print_error(f"missing command; see `{context.command_path} --help`")
        return EXIT_USAGE
    # Typer reports a `parser` that raised ValueError as "Value error, <message>".
    message = exc.format_message().replace("Value error, ", "")
    if context is not None:
        message = f"{message.rstrip('.')} (see `{context.command_path} --help`)"
    print_error(message)
    code = getattr(exc, "exit_code", EXIT_USAGE)
    return code if isinstance(code, int) and code else EXIT_USAGE


app = typer.Typer(
    cls=TianpingGroup,
    name="tianping",
    help="Tianping: a double-entry ledger with a tamper-evident journal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tianping {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="PATH",
            help="TOML settings file (instead of $TIANPING_CONFIG or ./tianping.toml).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="Database URL: sqlite:///PATH or postgresql://... (overrides settings).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Data directory; the default SQLite database is DIR/tianping.db.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Tianping: a double-entry ledger with a tamper-evident journal."""
    state = CliState(config=config, database_url=database_url, data_dir=data_dir)
    ctx.obj = state
    ctx.call_on_close(state.close)


app.add_typer(db_commands.app, name="db")
app.add_typer(ledger_commands.app, name="ledger")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(rules_commands.app, name="rules")
app.add_typer(identity_commands.app, name="identity")
app.add_typer(payments_commands.app, name="payments")
app.add_typer(lending_commands.app, name="lending")
app.command("serve")(serve.serve_command)
app.command("demo")(demo.demo_command)
