"""`tianping serve`: run the HTTP API under uvicorn.

The API module (`tianping.api.app`) is imported only here, when the command runs, so every other
command works without it. Uvicorn builds the app in each worker with `create_app()` (factory mode),
which reads its settings from the environment; this command therefore exports the effective
settings as ``TIANPING_*`` variables first, so the workers see what the command line said.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from tianping.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliError,
    ensure_migrated,
    state_of,
)
from tianping.config import CONFIG_ENV_VAR, Settings
from tianping.db.urls import parse_database_url

APP_FACTORY = "tianping.api.app:create_app"


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    allow_remote: bool,
    config: str | None = None,
) -> None:
    """Serve the API for `settings` until interrupted (shared by `serve` and `demo`)."""
    if not allow_remote and not is_loopback(host):
        raise CliError(
            f"refusing to listen on {host!r}: it is not a loopback address and the "
            "API may run without authentication in development; pass --allow-remote "
            "to do it anyway",
            EXIT_USAGE,
        )
    ensure_migrated(settings.database_url)
    try:
        import uvicorn

        from tianping.api import app as api_module
    except ImportError as exc:
        raise CliError(
            f"the HTTP API is not available in this installation ({exc})", EXIT_FAILED
        ) from None
    if not callable(getattr(api_module, "create_app", None)):
        raise CliError("tianping.api.app has no create_app() factory", EXIT_FAILED)
    os.environ["TIANPING_DATABASE_URL"] = settings.database_url
    os.environ["TIANPING_DATA_DIR"] = str(settings.data_dir)
    os.environ["TIANPING_SQLITE_SYNCHRONOUS"] = settings.sqlite_synchronous
    os.environ["TIANPING_LOG_LEVEL"] = settings.log_level
    if config is not None:
        os.environ[CONFIG_ENV_VAR] = config
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"serving the Tianping API on http://{shown}:{port} (interactive docs at "
        f"http://{shown}:{port}/docs); database "
        f"{parse_database_url(settings.database_url).redacted()}; Ctrl-C stops it"
    )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")
    ] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow a non-loopback --host (auth may be off in development)."
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (uvicorn); loopback only unless --allow-remote."""
    state = state_of(ctx)
    run_server(
        state.settings(),
        host=host,
        port=port,
        workers=workers,
        allow_remote=allow_remote,
        config=str(state.config.expanduser()) if state.config is not None else None,
    )
