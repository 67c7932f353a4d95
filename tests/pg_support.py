"""PostgreSQL helpers for the test suite (used by tests/conftest.py).

How the tests get a PostgreSQL server:

* ``TIANPING_TEST_POSTGRES_URL`` set: use that server (CI starts one with scripts/pg-throwaway).
* otherwise, PostgreSQL server binaries installed: start a throwaway cluster with
  ``scripts/pg-throwaway`` the first time a test needs it, shared by all xdist workers, and
  stop it when the pytest run ends.
* otherwise: skip PostgreSQL tests (loudly), or fail them if ``TIANPING_TEST_POSTGRES=required``.

``TIANPING_TEST_POSTGRES=off`` skips PostgreSQL tests even when a server could be had.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV_URL = "TIANPING_TEST_POSTGRES_URL"
ENV_MODE = "TIANPING_TEST_POSTGRES"
# Set by the controlling pytest process; inherited by xdist workers.
ENV_SHARED_DIR = "TIANPING_TEST_PG_SHARED_DIR"
ENV_OWNER_PID = "TIANPING_TEST_PG_OWNER_PID"

MODES = ("", "auto", "required", "off")
REPO_ROOT = Path(__file__).resolve().parent.parent
PG_THROWAWAY = REPO_ROOT / "scripts" / "pg-throwaway"

SKIP_REASON = "[postgres] no PostgreSQL server binary found and TIANPING_TEST_POSTGRES_URL is unset"
SKIP_REASON_OFF = "[postgres] PostgreSQL tests disabled by TIANPING_TEST_POSTGRES=off"
SKIP_BANNER = (
    "PostgreSQL tests SKIPPED: no PostgreSQL server binary found; "
    "set TIANPING_TEST_POSTGRES=required to make this an error",
    "(install PostgreSQL, e.g. apt-get install postgresql, "
    "or set TIANPING_TEST_POSTGRES_URL=postgresql://... to use an existing server)",
)

Decision = Literal["use", "start", "skip", "fail"]


def decide_postgres(env: Mapping[str, str], binary_found: bool) -> Decision:
    """Decide how the test run gets its PostgreSQL server.

    * ``"use"``: the server at ``$TIANPING_TEST_POSTGRES_URL``;
    * ``"start"``: start a throwaway cluster (server binaries are installed);
    * ``"skip"``: skip PostgreSQL tests (nothing available, or ``TIANPING_TEST_POSTGRES=off``);
    * ``"fail"``: nothing available but ``TIANPING_TEST_POSTGRES=required``.

    Raises ValueError for an unknown ``TIANPING_TEST_POSTGRES`` value.
    """
    mode = env.get(ENV_MODE, "").strip().lower()
    if mode not in MODES:
        raise ValueError(
            f"{ENV_MODE}={env.get(ENV_MODE)!r}: expected one of required, auto, off (or unset)"
        )
    if mode == "off":
        return "skip"
    if env.get(ENV_URL, "").strip():
        return "use"
    if binary_found:
        return "start"
    return "fail" if mode == "required" else "skip"


def find_initdb() -> Path | None:
    """The initdb that scripts/pg-throwaway would use, or None (same search order)."""
    bindir = os.environ.get("PG_BINDIR")
    if bindir:
        candidate = Path(bindir) / "initdb"
        return candidate if os.access(candidate, os.X_OK) else None

    def version_key(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", Path(path).parent.parent.name))

    found = [p for p in glob.glob("/usr/lib/postgresql/*/bin/initdb") if os.access(p, os.X_OK)]
    if found:
        return Path(max(found, key=version_key))
    on_path = shutil.which("initdb")
    return Path(on_path) if on_path else None


def start_cluster(directory: Path, watch_pid: int | None = None) -> str:
    """Start a throwaway cluster in ``directory`` (see scripts/pg-throwaway); return its URL."""
    env = dict(os.environ)
    if watch_pid is not None:
        env["PG_THROWAWAY_WATCH_PID"] = str(watch_pid)
    proc = subprocess.run(
        [str(PG_THROWAWAY), "start", str(directory)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/pg-throwaway start failed (exit {proc.returncode}):\n{proc.stderr}"
        )
    url = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if not url.startswith("postgresql://"):
        raise RuntimeError(f"scripts/pg-throwaway printed no URL:\n{proc.stdout}\n{proc.stderr}")
    return url


def stop_cluster(directory: Path) -> None:
    """Stop the cluster in ``directory`` (idempotent)."""
    subprocess.run(
        [str(PG_THROWAWAY), "stop", str(directory)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )


class SharedCluster:
    """One throwaway cluster per pytest run, shared by all xdist workers.

    The controlling process creates the shared directory (``create``) and, at the end of the
    run, stops the cluster if anybody started it (``teardown``). Workers — or the only
    process, without xdist — call ``url()``: the first caller starts the cluster under an
    exclusive file lock, the others read the URL it left behind.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cluster_dir = directory / "cluster"
        self.url_file = directory / "url"
        self.lock_file = directory / "lock"

    @classmethod
    def create(cls) -> SharedCluster:
        directory = Path(tempfile.mkdtemp(prefix="tianping-pytest-pg-"))
        # The server's OS user (when running as root) must be able to reach cluster/.
        directory.chmod(0o711)
        return cls(directory)

    def url(self, owner_pid: int | None) -> str:
        with self.lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.url_file.exists():
                    return self.url_file.read_text().strip()
                url = start_cluster(self.cluster_dir, watch_pid=owner_pid)
                self.url_file.write_text(url + "\n")
                return url
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def teardown(self) -> None:
        if self.cluster_dir.exists():
            stop_cluster(self.cluster_dir)
        shutil.rmtree(self.directory, ignore_errors=True)


def url_for_database(server_url: str, dbname: str) -> str:
    """``server_url`` with its database name replaced by ``dbname``."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_database(server_url: str) -> tuple[str, str]:
    """Create an empty database ``tp_<random hex>``; return ``(name, url)``."""
    name = f"tp_{secrets.token_hex(8)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, url_for_database(server_url, name)


def drop_databases(server_url: str, names: Iterable[str]) -> None:
    """Drop the named databases, disconnecting any sessions still using them."""
    names = list(names)
    if not names:
        return
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
