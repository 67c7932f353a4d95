"""Crash recovery: a writer killed with SIGKILL at random moments loses no acknowledged batch
and never leaves a partial one.

A child process (crash_child.py) posts batches of transfers with deterministic ids and, after
each commit, appends the batch number to an ack file with fsync. The parent kills it after a
random 0.05-0.4 s, checks the database, restarts it from where the acks say, and repeats.
"""

from __future__ import annotations

import importlib.util
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from ledger_support import make_ledger
from tianping.db.urls import parse_database_url
from tianping.ledger.audit import verify_chain
from tianping.ledger.model import AccountFlags, NewAccount
from tianping.ledger.results import CreateAccountResult
from tianping.ledger.service import Ledger

CHILD = Path(__file__).with_name("crash_child.py")
ROUNDS = 6
NEVER_REACHED = 1_000_000  # kill rounds never get this far
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0

pytestmark = pytest.mark.slow


def _load_child() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tianping_tests_crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _load_child()


def start_child(url: str, acks: Path, first: int, stop: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(CHILD), url, str(acks), str(first), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
    line = process.stdout.readline() if readable else "(no output in time)"
    if line.strip() != "ready":
        process.kill()
        _, error = process.communicate(timeout=EXIT_TIMEOUT_S)
        pytest.fail(f"crash child did not start: {line!r}\n{error}")
    return process


def acknowledged(acks: Path) -> list[int]:
    """Batch numbers in the ack file; a torn last line (no newline) does not count."""
    if not acks.exists():
        return []
    text = acks.read_text(encoding="ascii")
    return [int(line) for line in text.split("\n")[:-1]]


def wait_for_other_sessions_to_end(url: str) -> None:
    """On PostgreSQL, wait until no other session is inside a transaction or a statement (the
    killed client's session ends when the server notices), so that a commit it may have sent
    just before dying has either happened or never will. The parent's own pooled connections
    are idle in autocommit mode and do not count."""
    parsed = parse_database_url(url)
    if parsed.backend != "postgresql":
        return
    deadline = time.monotonic() + 20
    with psycopg.connect(parsed.dsn or "", autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND state IS DISTINCT FROM 'idle'"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                pytest.fail("the killed client's PostgreSQL session did not end within 20 s")
            time.sleep(0.05)


def batch_presence(ledger: Ledger, batch: int) -> int:
    """How many of a batch's transfers are stored."""
    return len(ledger.lookup_transfers(child.transfer_ids(batch)))


def assert_sound(ledger: Ledger, context: str) -> None:
    findings = ledger.check()
    assert findings == [], f"{context}: {findings}"
    with ledger.read(snapshot=True) as store:
        report = verify_chain(store)
    assert report.ok, f"{context}: {report.breaks}"


def test_sigkilled_writer_recovers(database_url: str, tmp_path: Path) -> None:
    """Six SIGKILLs at random moments: acknowledged batches survive, no batch is partial."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    ledger = make_ledger(database_url)
    try:
        accounts = [NewAccount(child.FUND, "USD", 1)] + [
            NewAccount(account, "USD", 1, AccountFlags.HISTORY) for account in child.ACCOUNTS
        ]
        assert ledger.create_accounts(accounts) == [CreateAccountResult.ok] * len(accounts)
        acks = tmp_path / "acks.txt"
        events = child.EVENTS_PER_BATCH
        in_flight_seen = {"all": 0, "none": 0}

        for round_number in range(1, ROUNDS + 1):
            done = acknowledged(acks)
            first = done[-1] + 1 if done else 0
            context = f"seed {seed}, round {round_number}, started at batch {first}"
            process = start_child(database_url, acks, first, NEVER_REACHED)
            time.sleep(rng.uniform(0.05, 0.4))
            if process.poll() is not None:
                _, error = process.communicate()
                pytest.fail(
                    f"{context}: the child exited by itself ({process.returncode})\n{error}"
                )
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=EXIT_TIMEOUT_S)
            assert process.returncode == -signal.SIGKILL
            wait_for_other_sessions_to_end(database_url)

            done = acknowledged(acks)
            assert done == list(range(len(done))), context
            for batch in done:
                assert batch_presence(ledger, batch) == events, f"{context}: lost batch {batch}"
            in_flight = done[-1] + 1 if done else 0
            present = batch_presence(ledger, in_flight)
            assert present in (0, events), (
                f"{context}: batch {in_flight} is partial ({present} of {events} transfers)"
            )
            in_flight_seen["all" if present else "none"] += 1
            for later in range(in_flight + 1, in_flight + 3):
                assert batch_presence(ledger, later) == 0, f"{context}: batch {later} exists"
            assert_sound(ledger, context)

        # A last run, not killed, takes over from the acks and finishes normally; a batch that
        # committed without its ack is replayed and answers `exists` throughout.
        done = acknowledged(acks)
        first = done[-1] + 1
        process = start_child(database_url, acks, first, first + 5)
        output, error = process.communicate(timeout=EXIT_TIMEOUT_S)
        assert process.returncode == 0, f"seed {seed}: final run failed\n{error}"
        assert output.strip().endswith("done")
        assert acknowledged(acks) == list(range(first + 5))
        for batch in range(first + 5):
            assert batch_presence(ledger, batch) == events, f"seed {seed}: batch {batch}"
        assert_sound(ledger, f"seed {seed}, after the final run")
        # The kills landed mid-run, after real progress.
        assert first >= ROUNDS, f"seed {seed}: only {first} batches acknowledged in {ROUNDS} rounds"
        print(
            f"seed {seed}: {first} batches acknowledged over {ROUNDS} kills; batch in flight "
            f"at the kill found complete {in_flight_seen['all']} times, absent "
            f"{in_flight_seen['none']} times"
        )
    finally:
        ledger.pool.close()
