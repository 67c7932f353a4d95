"""Parse and validate database URLs.

Accepted forms (SQLAlchemy conventions):

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db``.
  In-memory databases (``sqlite://``, ``sqlite:///:memory:``, ``file::memory:``) are refused:
  the ledger needs a real file for WAL mode and for several connections to share one database.
* ``postgresql://…``, ``postgres://…`` and ``postgresql+psycopg://…`` (libpq URL syntax).

Anything else raises :class:`InvalidDatabaseURL` with a one-line message. Passwords never
appear in messages, ``repr()`` or ``str()``: use :meth:`DatabaseURL.redacted` for display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["DatabaseURL", "InvalidDatabaseURL", "parse_database_url"]

Backend = Literal["sqlite", "postgresql"]

_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_SQLITE_PREFIX = "sqlite:///"
_REDACTED = "***"
# Best-effort scrubbing of "//user:secret@" and "password=secret" in arbitrary strings.
_USERINFO_PASSWORD = re.compile(r"(//[^/?#@:]*:)[^@/?#]*@")
_QUERY_PASSWORD = re.compile(r"(?i)(\bpassword=)[^&\s]*")


class InvalidDatabaseURL(ValueError):
    """A database URL that Tianping cannot use. The message is one line, without secrets."""


def _scrub(raw: str) -> str:
    """Redact anything that looks like a password in an arbitrary (possibly invalid) URL."""
    return _QUERY_PASSWORD.sub(
        rf"\g<1>{_REDACTED}", _USERINFO_PASSWORD.sub(rf"\g<1>{_REDACTED}@", raw)
    )


@dataclass(frozen=True, repr=False)
class DatabaseURL:
    """A validated database URL.

    Attributes:
        backend: ``"sqlite"`` or ``"postgresql"``.
        sqlite_path: the database file (SQLite only; may be relative to the working directory).
        dsn: a libpq connection URL (``postgresql://…``) for psycopg (PostgreSQL only).
        sqlalchemy_url: the URL for SQLAlchemy/Alembic (``sqlite:///…`` or
            ``postgresql+psycopg://…``). Contains the password, if any: do not print it.
    """

    backend: Backend
    sqlite_path: Path | None
    dsn: str | None
    sqlalchemy_url: str

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``, safe to print or log."""
        if self.backend == "sqlite":
            return self.sqlalchemy_url
        parts = urlsplit(self.dsn or "")
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:{_REDACTED}@{hostport}"
        query = parts.query
        if query:
            pairs = [
                (k, _REDACTED if k.lower() == "password" else v)
                for k, v in parse_qsl(query, keep_blank_values=True)
            ]
            query = urlencode(pairs, safe="*/")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.redacted()!r})"


def parse_database_url(url: str) -> DatabaseURL:
    """Validate ``url`` and return a :class:`DatabaseURL`, or raise :class:`InvalidDatabaseURL`."""
    raw = url.strip()
    if not raw:
        raise InvalidDatabaseURL("database URL is empty")
    if "\n" in raw or "\r" in raw:
        raise InvalidDatabaseURL("database URL must be a single line")
    scheme, sep, _rest = raw.partition("://")
    if not sep:
        raise InvalidDatabaseURL(
            f"not a database URL (expected sqlite:///PATH or postgresql://...): {_scrub(raw)!r}"
        )
    scheme = scheme.lower()
    if scheme == "sqlite":
        return _parse_sqlite(raw)
    if scheme in _POSTGRES_SCHEMES:
        return _parse_postgres(raw)
    if scheme.startswith(("postgresql+", "postgres+")):
        raise InvalidDatabaseURL(
            f"unsupported PostgreSQL driver {scheme!r}: use postgresql:// or postgresql+psycopg://"
        )
    raise InvalidDatabaseURL(
        f"unsupported database URL scheme {scheme!r} (expected sqlite or postgresql): "
        f"{_scrub(raw)!r}"
    )


def _parse_sqlite(raw: str) -> DatabaseURL:
    memory_msg = (
        "in-memory SQLite databases are not supported: the ledger needs a database file "
        "(WAL mode, several connections); use sqlite:///PATH/TO/FILE.db"
    )
    if raw.lower() in ("sqlite://", "sqlite:"):
        raise InvalidDatabaseURL(memory_msg)
    if not raw.lower().startswith(_SQLITE_PREFIX):
        raise InvalidDatabaseURL(
            f"SQLite URLs must look like sqlite:///relative.db or sqlite:////abs/path.db, "
            f"got {_scrub(raw)!r}"
        )
    path = raw[len(_SQLITE_PREFIX) :]
    if "?" in path or "#" in path:
        raise InvalidDatabaseURL(f"SQLite URL options ('?...') are not supported: {_scrub(raw)!r}")
    if not path:
        raise InvalidDatabaseURL(memory_msg)
    if path == ":memory:" or path.startswith("file::memory:") or "mode=memory" in path:
        raise InvalidDatabaseURL(memory_msg)
    if path.endswith("/"):
        raise InvalidDatabaseURL(f"SQLite path is a directory, not a file: {path!r}")
    return DatabaseURL(
        backend="sqlite",
        sqlite_path=Path(path),
        dsn=None,
        sqlalchemy_url=_SQLITE_PREFIX + path,
    )


def _parse_postgres(raw: str) -> DatabaseURL:
    _scheme, _, rest = raw.partition("://")
    dsn = "postgresql://" + rest
    try:
        parts = urlsplit(dsn)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidDatabaseURL(f"malformed PostgreSQL URL ({exc}): {_scrub(raw)!r}") from None
    if parts.fragment:
        raise InvalidDatabaseURL(f"PostgreSQL URL must not have a '#fragment': {_scrub(raw)!r}")
    if parts.path.count("/") > 1:
        raise InvalidDatabaseURL(
            f"PostgreSQL URL path must be a single database name: {_scrub(raw)!r}"
        )
    return DatabaseURL(
        backend="postgresql",
        sqlite_path=None,
        dsn=dsn,
        sqlalchemy_url="postgresql+psycopg://" + rest,
    )
