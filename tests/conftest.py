"""Shared fixtures: databases for integration tests.

Fixtures (unit tests need none of them):

* ``postgres_server_url`` (session): URL of a PostgreSQL server's ``postgres`` database —
  ``$TIANPING_TEST_POSTGRES_URL``, or a throwaway cluster started on first use (shared by all
  xdist workers, stopped at the end of the run). Skips, or fails when
  ``TIANPING_TEST_POSTGRES=required``, if no server can be had. See tests/pg_support.py.
* ``postgres_database_factory``: call it to create a fresh empty database; returns its URL.
  Every database it made is dropped (WITH (FORCE)) after the test.
* ``postgres_url``: one fresh empty database ``tp_<hex>``.
* ``sqlite_url``: ``sqlite:///<tmp_path>/ledger.db`` (the file does not exist yet).
* ``database_url``: parametrized over ``sqlite`` and ``postgresql`` (the latter marked
  ``postgres``); yields the matching URL.

Tests under tests/integration and tests/e2e are marked ``integration`` / ``e2e``
automatically, and tests using the PostgreSQL fixtures are marked ``postgres``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import pg_support

pytest_plugins = ["ledger_fixtures", "identity_api_support"]

_SHARED_KEY = pytest.StashKey[pg_support.SharedCluster]()
_PG_FIXTURES = frozenset({"postgres_server_url", "postgres_database_factory", "postgres_url"})


def _decision() -> pg_support.Decision:
    return pg_support.decide_postgres(os.environ, pg_support.find_initdb() is not None)


def pytest_configure(config: pytest.Config) -> None:
    try:
        decision = _decision()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if hasattr(config, "workerinput"):
        return  # xdist worker: the controller set up the shared cluster directory
    if decision == "start" and pg_support.ENV_SHARED_DIR not in os.environ:
        shared = pg_support.SharedCluster.create()
        config.stash[_SHARED_KEY] = shared
        # Inherited by xdist workers, which are spawned after this hook.
        os.environ[pg_support.ENV_SHARED_DIR] = str(shared.directory)
        os.environ[pg_support.ENV_OWNER_PID] = str(os.getpid())


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED_KEY, None)
    if shared is not None:
        shared.teardown()
        os.environ.pop(pg_support.ENV_SHARED_DIR, None)
        os.environ.pop(pg_support.ENV_OWNER_PID, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        parts = (
            item.path.relative_to(tests_dir).parts if item.path.is_relative_to(tests_dir) else ()
        )
        if parts[:1] == ("integration",):
            item.add_marker(pytest.mark.integration)
        elif parts[:1] == ("e2e",):
            item.add_marker(pytest.mark.e2e)
        if _PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    skipped = 0
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr
        if "[postgres]" in str(reason):
            skipped += 1
    if not skipped:
        return
    if os.environ.get(pg_support.ENV_MODE, "").strip().lower() == "off":
        terminalreporter.write_sep(
            "-", f"{skipped} PostgreSQL tests skipped (TIANPING_TEST_POSTGRES=off)", yellow=True
        )
        return
    terminalreporter.write_sep("!", f"{skipped} PostgreSQL tests SKIPPED", red=True, bold=True)
    for line in pg_support.SKIP_BANNER:
        terminalreporter.write_line(line, red=True, bold=True)


def _check_reachable(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"{pg_support.ENV_URL} is set but the server is not reachable: {exc}", pytrace=False
        )


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the ``postgres`` database of the test PostgreSQL server (see module docstring)."""
    decision = _decision()
    if decision == "use":
        url = os.environ[pg_support.ENV_URL].strip()
        _check_reachable(url)
        return url
    if decision == "skip":
        off = os.environ.get(pg_support.ENV_MODE, "").strip().lower() == "off"
        pytest.skip(pg_support.SKIP_REASON_OFF if off else pg_support.SKIP_REASON)
    if decision == "fail":
        pytest.fail(
            "TIANPING_TEST_POSTGRES=required but there is no PostgreSQL server: "
            "TIANPING_TEST_POSTGRES_URL is unset and no PostgreSQL server binary (initdb) was "
            "found in /usr/lib/postgresql/*/bin or on PATH",
            pytrace=False,
        )
    shared_dir = os.environ.get(pg_support.ENV_SHARED_DIR)
    if not shared_dir:
        pytest.fail(
            f"{pg_support.ENV_SHARED_DIR} is unset (tests/conftest.py pytest_configure)",
            pytrace=False,
        )
    owner = os.environ.get(pg_support.ENV_OWNER_PID)
    try:
        return pg_support.SharedCluster(Path(shared_dir)).url(int(owner) if owner else None)
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"could not start a throwaway PostgreSQL cluster: {exc}", pytrace=False)


@pytest.fixture
def postgres_database_factory(postgres_server_url: str) -> Iterator[Callable[[], str]]:
    """Factory creating fresh empty databases ``tp_<hex>``; all dropped after the test."""
    created: list[str] = []

    def create() -> str:
        name, url = pg_support.create_database(postgres_server_url)
        created.append(name)
        return url

    yield create
    pg_support.drop_databases(postgres_server_url, created)


@pytest.fixture
def postgres_url(postgres_database_factory: Callable[[], str]) -> str:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    return postgres_database_factory()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite:///<tmp_path>/ledger.db``; the file does not exist yet."""
    return f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL, once per backend (``sqlite``, ``postgresql``)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TIANPING_* settings from outside the test (except the test suite's own), and an
    empty working directory, so no tianping.toml is picked up; returns that directory."""
    for name in list(os.environ):
        if name.startswith("TIANPING_") and not name.startswith("TIANPING_TEST_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir
