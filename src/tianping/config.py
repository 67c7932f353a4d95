"""Runtime settings for Tianping.

Settings come from, highest priority first:

1. keyword arguments to :func:`load_settings` (e.g. from CLI options);
2. environment variables prefixed ``TIANPING_`` (``TIANPING_DATABASE_URL``,
   ``TIANPING_DATA_DIR``, ``TIANPING_SQLITE_SYNCHRONOUS``, ``TIANPING_LOG_LEVEL``);
3. a TOML file: the path in ``TIANPING_CONFIG`` (which must exist), otherwise
   ``tianping.toml`` in the current directory if present. Keys are the field names below,
   at the top level of the file; unknown keys are an error;
4. the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tianping.db.urls import InvalidDatabaseURL, parse_database_url

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "ConfigFileError",
    "Settings",
    "config_file",
    "default_database_url",
    "load_settings",
]

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
        log_level: DEBUG, INFO (default), WARNING, ERROR or CRITICAL. Case-insensitive.
            Env ``TIANPING_LOG_LEVEL``.
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
    log_level: LogLevel = "INFO"

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


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`; ``overrides`` (e.g. CLI options) win over env and file.

    ``None`` values in ``overrides`` are ignored, so optional CLI flags can be passed through.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
