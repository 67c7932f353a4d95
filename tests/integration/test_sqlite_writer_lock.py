"""SQLite writers take turns on a file lock beside the database (`tianping.db.writer_lock`).

A writer in another process (or another pool) waits for the turn and goes on as soon as it is
given back; a process that dies holding it does not block anyone; with the setting off there is
no lock file and writers meet only in SQLite's busy handler; a lock file that cannot be opened
leaves the writers correct. SQLite only: PostgreSQL writers queue on an advisory lock.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tianping.bootstrap import build_services
from tianping.config import load_settings
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.db.writer_lock import SqliteWriterLock, writer_lock_path
from tianping.ledger.model import AccountFlags, NewAccount, NewTransfer
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger

USD = "USD"
SOURCE, TARGET = 1, 2
CHILD_START_S = 60.0
# Long enough that a writer not waiting for the turn would have finished well within it.
HELD_S = 1.0


@contextmanager
def importable_by_children() -> Iterator[None]:
    """Let 'spawn' children import this module by its name under pytest's importlib mode."""
    root = str(Path(__file__).resolve().parents[__name__.count(".")])
    added = root not in sys.path
    if added:
        sys.path.append(root)
    try:
        yield
    finally:
        if added:
            sys.path.remove(root)


def _ledger(url: str, *, writer_lock: bool = True) -> Ledger:
    return Ledger(ConnectionPool(url, size=2, sqlite_writer_lock=writer_lock))


@pytest.fixture
def url(sqlite_url: str) -> str:
    upgrade(sqlite_url)
    ledger = _ledger(sqlite_url)
    accounts = [NewAccount(SOURCE, USD, 1), NewAccount(TARGET, USD, 1, AccountFlags.HISTORY)]
    assert ledger.create_accounts(accounts) == [CreateAccountResult.ok] * 2
    ledger.pool.close()
    return sqlite_url


def transfer(transfer_id: int) -> NewTransfer:
    return NewTransfer(transfer_id, SOURCE, TARGET, 1, USD, 1)


def writing_child(url: str, transfer_id: int, started: Any, finished: Any) -> None:
    """Child: one transfer in its own process and pool; says when it starts and ends."""
    ledger = _ledger(url)
    started.set()
    (result,) = ledger.create_transfers([transfer(transfer_id)])
    assert result == CreateTransferResult.ok
    ledger.pool.close()
    finished.set()


def holding_child(url: str, transfer_id: int, holding: Any) -> None:
    """Child: opens a write transaction (holding the turn), writes, then never commits."""
    ledger = _ledger(url)
    with ledger.write() as uow:
        uow.create_transfers([transfer(transfer_id)])
        uow.flush()
        holding.set()
        time.sleep(3600)


def spawn(target: Any, *arguments: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=target, args=arguments)
    with importable_by_children():
        process.start()
    return process


def events() -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    return context.Event(), context.Event()


def transfer_ids(url: str) -> set[int]:
    ledger = _ledger(url)
    try:
        return {t.id for t in ledger.get_account_transfers(TARGET, limit=1000)}
    finally:
        ledger.pool.close()


def test_a_writer_in_another_process_waits_for_the_turn_then_goes_on(url: str) -> None:
    ledger = _ledger(url)
    started, finished = events()
    try:
        # Only the turn is held, not SQLite's lock: a child that did not wait for the turn
        # would commit at once.
        with ledger.pool.writer_turn():
            child = spawn(writing_child, url, 100, started, finished)
            assert started.wait(CHILD_START_S)
            assert not finished.wait(HELD_S)
        assert finished.wait(10)
        child.join(10)
        assert child.exitcode == 0
        assert transfer_ids(url) == {100}
    finally:
        ledger.pool.close()


def test_with_the_setting_off_writers_use_no_lock_file(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    lock_file = writer_lock_path(sqlite_url.removeprefix("sqlite:///"))
    ledger = _ledger(sqlite_url, writer_lock=False)
    try:
        accounts = [NewAccount(SOURCE, USD, 1), NewAccount(TARGET, USD, 1)]
        assert ledger.create_accounts(accounts) == [CreateAccountResult.ok] * 2
        assert ledger.create_transfers([transfer(101)]) == [CreateTransferResult.ok]
    finally:
        ledger.pool.close()
    assert not lock_file.exists()
    ledger = _ledger(sqlite_url)
    try:
        assert ledger.create_transfers([transfer(102)]) == [CreateTransferResult.ok]
    finally:
        ledger.pool.close()
    assert lock_file.exists()


def test_a_process_that_dies_holding_the_turn_blocks_no_one(url: str) -> None:
    holding = multiprocessing.get_context("spawn").Event()
    child = spawn(holding_child, url, 200, holding)
    try:
        assert holding.wait(CHILD_START_S)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        ledger = _ledger(url)
        try:
            began = time.monotonic()
            assert ledger.create_transfers([transfer(201)]) == [CreateTransferResult.ok]
            # Neither the file lock nor SQLite's lock outlives the process.
            assert time.monotonic() - began < 5
        finally:
            ledger.pool.close()
        # The dead writer's transaction never committed.
        assert transfer_ids(url) == {201}
    finally:
        if child.is_alive():
            child.kill()
            child.join(10)


def test_two_pools_in_one_process_take_turns(url: str) -> None:
    first, second = _ledger(url), _ledger(url)
    done = threading.Event()

    def write() -> None:
        second.create_transfers([transfer(300)])
        done.set()

    try:
        with first.pool.writer_turn():
            thread = threading.Thread(target=write)
            thread.start()
            assert not done.wait(HELD_S)
        assert done.wait(10)
        thread.join(10)
        assert transfer_ids(url) == {300}
    finally:
        first.pool.close()
        second.pool.close()


def test_threads_of_one_pool_wait_no_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    lock = SqliteWriterLock(tmp_path / "ledger.db", wait_s=0.2)
    failures: list[BaseException] = []

    def contender() -> None:
        try:
            with lock.held():
                pass
        except sqlite3.OperationalError as error:
            failures.append(error)

    with lock.held():
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(10)
    assert [str(error) for error in failures] == ["database is locked"]
    with lock.held():  # given back, it can be taken again
        pass
    lock.close()


def test_a_writer_waits_for_another_holders_turn_no_longer_than_the_busy_timeout(
    tmp_path: Path,
) -> None:
    """A holder that never gives the turn back (a live process stuck in a transaction) makes
    other writers fail like SQLite's busy handler would, after its timeout: never for ever."""
    holder = SqliteWriterLock(tmp_path / "ledger.db", wait_s=5.0)
    waiter = SqliteWriterLock(tmp_path / "ledger.db", wait_s=0.3)
    with holder.held():
        started = time.monotonic()
        with (
            pytest.raises(sqlite3.OperationalError, match="database is locked"),
            waiter.held(),
        ):
            pass
        waited = time.monotonic() - started
    assert 0.3 <= waited < 3.0, waited
    # Given back, the waiter takes the turn at once.
    started = time.monotonic()
    with waiter.held():
        pass
    assert time.monotonic() - started < 1.0
    holder.close()
    waiter.close()


def test_a_lock_file_that_cannot_be_opened_leaves_writers_correct(url: str) -> None:
    database = url.removeprefix("sqlite:///")
    # A directory where the lock file should be: opening it for writing fails.
    writer_lock_path(database).unlink()
    writer_lock_path(database).mkdir()
    ledger = _ledger(url)
    try:
        assert ledger.create_transfers([transfer(400)]) == [CreateTransferResult.ok]
        assert ledger.create_transfers([transfer(401)]) == [CreateTransferResult.ok]
    finally:
        ledger.pool.close()
    assert transfer_ids(url) == {400, 401}


@pytest.mark.parametrize("enabled", [True, False])
def test_the_setting_reaches_the_services_pool(
    sqlite_url: str, tmp_path: Path, enabled: bool
) -> None:
    settings = load_settings(database_url=sqlite_url, data_dir=tmp_path, sqlite_writer_lock=enabled)
    services = build_services(settings, migrate=True, environ={})
    try:
        accounts = [NewAccount(SOURCE, USD, 1), NewAccount(TARGET, USD, 1)]
        assert services.ledger.create_accounts(accounts) == [CreateAccountResult.ok] * 2
    finally:
        services.close()
    assert writer_lock_path(sqlite_url.removeprefix("sqlite:///")).exists() is enabled
