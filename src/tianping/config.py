"""Runtime settings for Tianping.

Settings come from, highest priority first:

1. keyword arguments to :func:`load_settings` (e.g. from CLI options);
2. environment variables prefixed ``TIANPING_`` (``TIANPING_DATABASE_URL``,
   ``TIANPING_DATA_DIR``, ``TIANPING_SQLITE_SYNCHRONOUS``, ``TIANPING_LOG_LEVEL``,
   ``TIANPING_RULEBOOK``, ``TIANPING_RULEBOOK_OVERLAYS``, ``TIANPING_SECRETS_FILE``);
3. a TOML file: the path in ``TIANPING_CONFIG`` (which must exist), otherwise
   ``tianping.toml`` in the current directory if present. Keys are the field names below,
   at the top level of the file; unknown keys are an error;
4. the defaults below.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tianping.db.urls import InvalidDatabaseURL, parse_database_url

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "SECRET_NAMES",
    "ConfigFileError",
    "Settings",
    "config_file",
    "default_database_url",
    "load_secrets_file",
    "load_settings",
]

# The secrets a secrets file may hold: the identity context's keys (see identity/README.md).
# Anything else in the file is refused, so a database password or a typo cannot hide there.
SECRET_NAMES = frozenset(
    {
        "TIANPING_TOKEN_SIGNING_KEY",
        "TIANPING_SECRETS_KEY",
        "TIANPING_CARD_FINGERPRINT_KEY",
        "TIANPING_MASTER_KEY",
        "TIANPING_API_TOKEN",
    }
)
_SECRETS_FILE_BYTES_MAX = 64 * 1024

#: Environment variable naming a TOML settings file.
CONFIG_ENV_VAR = "TIANPING_CONFIG"
#: TOML settings file picked up from the current directory when ``TIANPING_CONFIG`` is unset.
DEFAULT_CONFIG_FILE = "tianping.toml"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


class ConfigFileError(ValueError):
    """The TOML settings file named by ``TIANPING_CONFIG`` is missing or unreadable."""


def config_file() -> Path | None:
    """The TOML settings file to read, or ``None``: ``$TIANPING_CONFIG`` or ./tianping.toml."""
    explicit = os.environ.get(CONFIG_ENV_VAR, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigFileError(f"{CONFIG_ENV_VAR}={explicit!r}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def default_database_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/tianping.db`` with ``data_dir`` made absolute."""
    return "sqlite:///" + str((Path(data_dir).expanduser() / "tianping.db").resolve())


class Settings(BaseSettings):
    """Tianping settings.

    Attributes:
        data_dir: directory for Tianping's files (the default SQLite database lives here).
            Env ``TIANPING_DATA_DIR``. Default ``var`` (relative to the working directory).
        database_url: where the ledger lives: ``sqlite:///PATH`` (relative path) or
            ``sqlite:////ABS/PATH``, or ``postgresql://user:pass@host:port/dbname``
            (``postgres://`` and ``postgresql+psycopg://`` also accepted). In-memory SQLite is
            refused. Env ``TIANPING_DATABASE_URL``. Default
            ``sqlite:///<absolute data_dir>/tianping.db``.
        sqlite_synchronous: SQLite ``PRAGMA synchronous`` for ledger connections: OFF, NORMAL,
            FULL (default; durable on power loss with WAL) or EXTRA. Case-insensitive.
            Env ``TIANPING_SQLITE_SYNCHRONOUS``.
        sqlite_writer_lock: whether the ledger's SQLite writers take turns on an OS file lock
            beside the database (``<database file>.writer-lock``), so that a writer waiting
            for another process wakes as soon as the lock is free instead of sleeping in
            SQLite's busy handler (up to 100 ms a time): it takes a freed lock within about a
            millisecond. Default true. Either way a writer gives up with "database is locked"
            after the 30 s busy timeout (the operating system releases the lock of a process
            that dies). Env ``TIANPING_SQLITE_WRITER_LOCK``.
        log_level: DEBUG, INFO (default), WARNING, ERROR or CRITICAL. Case-insensitive.
            Env ``TIANPING_LOG_LEVEL``.
        rulebook: the rulebook the process enforces: a shipped one (``cn``, ``eu``) or a
            rulebook directory. Env ``TIANPING_RULEBOOK``. Default ``cn``.
        rulebook_overlays: overlays applied in order; in the environment a comma-separated
            list (``TIANPING_RULEBOOK_OVERLAYS=interest-cap-15-4,class-ii-annual-cap-50k``),
            in the TOML file a list. Default none.
        secrets_file: a file of ``NAME=value`` lines holding the identity keys (the output of
            ``tianping identity keys generate``), readable by its owner only; variables set
            in the environment win over it. Env ``TIANPING_SECRETS_FILE``. Keys never go in the
            TOML file, which is meant to be shared and versioned.
    """

    model_config = SettingsConfigDict(
        env_prefix="TIANPING_",
        extra="forbid",
        frozen=True,
        validate_default=True,
        # Validation errors must not echo inputs: database_url may carry a password.
        hide_input_in_errors=True,
    )

    data_dir: Path = Path("var")
    database_url: str = ""
    sqlite_synchronous: SqliteSynchronous = "FULL"
    sqlite_writer_lock: bool = True
    log_level: LogLevel = "INFO"
    rulebook: str = "cn"
    rulebook_overlays: Annotated[tuple[str, ...], NoDecode] = ()
    secrets_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("sqlite_synchronous", "log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("rulebook")
    @classmethod
    def _rulebook_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("rulebook is a rulebook name or directory")
        return value

    @field_validator("rulebook_overlays", mode="before")
    @classmethod
    def _overlay_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = [part.strip() for part in value.split(",")]
            value = [] if names == [""] else names
        if isinstance(value, list | tuple) and any(
            not isinstance(name, str) or not name.strip() for name in value
        ):
            raise ValueError("an empty overlay name (a stray comma?)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _derive_database_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not str(data.get("database_url") or "").strip():
            data = dict(data)
            data["database_url"] = default_database_url(Path(data.get("data_dir") or "var"))
        return data

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        value = value.strip()
        try:
            parse_database_url(value)
        except InvalidDatabaseURL as exc:
            raise ValueError(str(exc)) from None
        return value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                yield name, parse_database_url(value).redacted()
            else:
                yield name, value


def load_secrets_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` secrets in `path`, refusing a file others can read or that holds
    anything but `SECRET_NAMES`. Values are never echoed in errors."""
    try:
        status = path.stat()
    except OSError as exc:
        raise ConfigFileError(f"secrets file {str(path)!r}: {exc.strerror}") from None
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigFileError(f"secrets file {str(path)!r} is readable by others; `chmod 600` it")
    if status.st_size > _SECRETS_FILE_BYTES_MAX:
        raise ConfigFileError(f"secrets file {str(path)!r} is larger than a secrets file can be")
    secrets: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, equals, value = text.partition("=")
        if not equals or name.strip() not in SECRET_NAMES:
            raise ConfigFileError(
                f"secrets file {str(path)!r} line {number}: expected NAME=value with NAME one "
                f"of {sorted(SECRET_NAMES)}"
            )
        secrets[name.strip()] = value.strip()
    return secrets


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`; ``overrides`` (e.g. CLI options) win over env and file.

    ``None`` values in ``overrides`` are ignored, so optional CLI flags can be passed through.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
