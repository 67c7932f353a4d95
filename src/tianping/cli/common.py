"""What every command shares: exit codes, error mapping, settings, parsing and output helpers.

Errors reach the user as one line on stderr, `error: <message>`, and an exit code from the small
table below; a traceback is printed only for a genuine bug (an exception this module does not
know). Human output is Rich tables on stdout; `--json` prints one JSON document on stdout instead.
Progress bars go to stderr so that they never mix with a JSON document.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sqlite3
import sys
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tianping.bootstrap import Services, build_services
from tianping.config import CONFIG_ENV_VAR, ConfigFileError, Settings, load_settings
from tianping.db.urls import InvalidDatabaseURL, parse_database_url
from tianping.ledger.errors import AccountNotFound, LedgerError
from tianping.ledger.ids import InvalidId, parse_id
from tianping.ledger.money import Currency, Money, MoneyError

# -- exit codes ------------------------------------------------------------------------------

EXIT_OK = 0
#: A check found problems, or the command could not do its work (database unreachable or not
#: initialised, some events of an import rejected, the server failed to start).
EXIT_FAILED = 1
#: Usage errors and bad input: a malformed option, id or amount, or an event the ledger refused.
EXIT_USAGE = 2
#: What the command names does not exist (an account, a transfer).
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the CLI reports as one line; `exit_code` is one of the EXIT_* codes."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """Collapse any whitespace (database drivers like multi-line messages) to single spaces."""
    return " ".join(str(text).split()) or "unknown error"


def _validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid settings: " + "; ".join(parts)


def describe_error(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an exception the CLI expects, else None.

    Expected are bad input (ids, amounts, currencies, settings, URLs), ledger request errors and
    database errors. Anything else is a bug and keeps its traceback.
    """
    import psycopg
    import sqlalchemy.exc

    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, AccountNotFound):
        return exc.message, EXIT_NOT_FOUND
    if isinstance(exc, LedgerError):
        return exc.message, EXIT_USAGE
    if isinstance(exc, pydantic.ValidationError):
        return _validation_message(exc), EXIT_USAGE
    if isinstance(exc, InvalidDatabaseURL | ConfigFileError | InvalidId | MoneyError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, sqlite3.Error | psycopg.Error):
        return f"database error: {exc}", EXIT_FAILED
    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        cause = getattr(exc, "orig", None) or exc
        return f"database error: {cause}", EXIT_FAILED
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out", EXIT_FAILED
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EXIT_FAILED
    if isinstance(exc, ValueError):
        return str(exc), EXIT_USAGE
    return None


def print_error(message: str) -> None:
    """Write `error: <message>` as one line on stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)


# -- settings and services -------------------------------------------------------------------


@contextmanager
def config_file_override(path: Path | None) -> Iterator[None]:
    """Make `load_settings` read `path` as the TOML file (it reads ``TIANPING_CONFIG``)."""
    if path is None:
        yield
        return
    if not path.expanduser().is_file():
        raise CliError(f"--config {str(path)!r}: no such file")
    previous = os.environ.get(CONFIG_ENV_VAR)
    os.environ[CONFIG_ENV_VAR] = str(path.expanduser())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(CONFIG_ENV_VAR, None)
        else:
            os.environ[CONFIG_ENV_VAR] = previous


def ensure_migrated(database_url: str) -> None:
    """Refuse to work on a database that `tianping db init` has not brought to the head."""
    from tianping.db.migrate import current, head_revision

    revision = current(database_url)
    head = head_revision()
    where = parse_database_url(database_url).redacted()
    if revision is None:
        raise CliError(
            f"the database {where} is not initialised; run `tianping db init`", EXIT_FAILED
        )
    if revision != head:
        raise CliError(
            f"the database {where} is at revision {revision} but this version of "
            f"Tianping needs {head}; run `tianping db migrate`",
            EXIT_FAILED,
        )


@dataclass
class CliState:
    """The global options of one invocation, and the services built from them on demand."""

    config: Path | None = None
    database_url: str | None = None
    data_dir: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _services: Services | None = field(default=None, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        """Settings from (highest first) `overrides`, the global options, env, TOML, defaults."""
        if self._settings is not None and not overrides:
            return self._settings
        values: dict[str, Any] = {"database_url": self.database_url, "data_dir": self.data_dir}
        values.update(overrides)
        with config_file_override(self.config):
            settings = load_settings(**values)
        if not overrides:
            self._settings = settings
        return settings

    def services(self, clock: Any = None) -> Services:
        """The services on a migrated database, built once and closed when the command ends."""
        if self._services is None:
            settings = self.settings()
            ensure_migrated(settings.database_url)
            if clock is None:
                self._services = build_services(settings, pool_size=2)
            else:
                self._services = build_services(settings, pool_size=2, clock=clock)
        return self._services

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None


def state_of(ctx: typer.Context) -> CliState:
    """The `CliState` of this invocation (created by the root callback)."""
    state = ctx.find_object(CliState)
    if state is None:  # only when a command is invoked without the root callback
        state = ctx.ensure_object(CliState)
        ctx.call_on_close(state.close)
    return state


# -- parsing ---------------------------------------------------------------------------------


def parse_id_option(value: str) -> int:
    """An account or transfer id: a decimal integer in [1, 2**128 - 2] (Typer `parser`)."""
    return parse_id(value.strip())


_FRACTION = re.compile(r"^(?P<head>[^.]*T\d{2}:\d{2}:\d{2})\.(?P<fraction>\d{1,9})(?P<tail>.*)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LEDGER_TIME_MAX = 2**63 - 1


def parse_timestamp(text: str) -> int:
    """Ledger time in nanoseconds from digits (nanoseconds) or an ISO 8601 date-time.

    A date-time without an offset is taken as UTC. Up to nine fraction digits are kept, so the
    times the CLI prints can be pasted back exactly.
    """
    text = text.strip()
    if text.isascii() and text.isdigit():
        return _in_ledger_range(int(text), text)
    nanos = 0
    match = _FRACTION.match(text)
    if match is not None:
        fraction = match["fraction"]
        nanos = int(fraction.ljust(9, "0"))
        text = match["head"] + match["tail"]
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither nanoseconds since the epoch nor an ISO 8601 "
            "date-time (such as 2026-11-27T08:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    if delta < timedelta(0):
        raise ValueError(f"{text!r} is before 1970")
    return _in_ledger_range((delta // timedelta(microseconds=1)) * 1000 + nanos, text)


def _in_ledger_range(timestamp: int, text: str) -> int:
    # Ledger timestamps are signed 64-bit nanoseconds: nothing lies after 2262-04-11.
    if timestamp > LEDGER_TIME_MAX:
        raise ValueError(f"{text!r} is after the end of ledger time (2262-04-11)")
    return timestamp


def parse_amount(text: str, currency: str) -> int:
    """Decimal text in `currency` to a positive count of minor units (`Money.parse` rules)."""
    money = Money.parse(text.strip(), currency)
    if money.amount_minor <= 0:
        raise CliError(f"the amount must be positive, not {text!r}")
    return money.amount_minor


# -- formatting ------------------------------------------------------------------------------


def format_time(timestamp: int) -> str:
    """Ledger nanoseconds as ISO 8601 UTC with all nine fraction digits, or "-" for zero."""
    if timestamp <= 0:
        return "-"
    seconds, nanos = divmod(timestamp, 1_000_000_000)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def format_amount(amount_minor: int, currency: str) -> str:
    """Minor units as canonical decimal text (`Money.format`); unknown currencies stay raw."""
    try:
        return Money(amount_minor, Currency.of(currency)).format()
    except MoneyError:
        return str(amount_minor)


def format_balance(debits: int, credits: int, currency: str) -> str:
    """A net balance with its side: "120.00 Cr" when credits exceed debits, "Dr" otherwise."""
    net = credits - debits
    if net == 0:
        return format_amount(0, currency)
    side = "Cr" if net > 0 else "Dr"
    return f"{format_amount(abs(net), currency)} {side}"


def cell(value: object, style: str = "") -> Text:
    """A table cell that is never read as Rich markup (owners and metadata are user data)."""
    return Text(str(value), style=style)


def console() -> Console:
    """A console on stdout; wide when stdout is not a terminal, so ids are never cut."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def progress_console() -> Console:
    """A console on stderr for progress bars, which must never mix with JSON on stdout."""
    return Console(stderr=True, highlight=False)


def quiet_unless_terminal(target: Console) -> bool:
    """Whether a progress bar on `target` should be hidden: scripts and logs do not want it."""
    return not target.is_terminal


def emit_json(document: object) -> None:
    """Print one JSON document on stdout."""
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


# JSON parsers that read numbers as doubles lose integers from here on (ledger ids are 128-bit).
_JSON_SAFE_INTEGER_MAX = 2**53


def jsonable(value: Any) -> Any:
    """A service's answer (dataclasses, enums, dates, bytes, big ids) as plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [jsonable(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum) and isinstance(value.value, str):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool) and value >= _JSON_SAFE_INTEGER_MAX:
        return str(value)
    return value


def parse_day(value: str) -> str:
    """A business date as YYYY-MM-DD (a Typer `parser`: a ValueError becomes a usage error)."""
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def record_table(title: str, record: dict[str, Any]) -> Table:
    """One record as a two-column table of field and value."""
    table = Table(title=title, show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name, value in record.items():
        table.add_row(cell(name), cell("-" if value is None or value == () else value))
    return table


# Fields of a record that hold ledger nanoseconds, shown as ISO 8601 times.
_TIME_FIELDS = ("created_at", "updated_at", "opened_at", "registered_at", "at", "decided_at")


def show_record(title: str, value: Any, as_json: bool, money_fields: Collection[str]) -> None:
    """Print a service's answer as JSON (amounts in minor units) or as a two-column table
    (the `money_fields` as decimal amounts in the record's currency, times as ISO 8601)."""
    document = jsonable(value)
    if as_json:
        emit_json(document)
        return
    currency = document.get("currency", "CNY")
    shown = {
        name: format_amount(item, currency)
        if name in money_fields and isinstance(item, int)
        else item
        for name, item in document.items()
    }
    for name in _TIME_FIELDS:
        moment = shown.get(name)
        if isinstance(moment, int):
            shown[name] = format_time(moment)
    console().print(record_table(title, shown))


def id_text(value: int) -> str:
    """Ids in JSON are strings: 128-bit integers do not survive JSON parsers that use doubles."""
    return str(value)


def optional_id(value: int) -> str | None:
    return str(value) if value else None


def join_ids(ids: Sequence[int]) -> str:
    return ", ".join(str(value) for value in ids)
