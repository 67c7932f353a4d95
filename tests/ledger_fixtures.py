"""Ledger fixtures, registered from conftest.py through `pytest_plugins`.

* ``clock``: a `ManualClock` (nanoseconds) the test can advance.
* ``ledger``: a migrated `Ledger` on ``database_url`` (so on SQLite and on PostgreSQL) driven by
  ``clock``. When the test ends the fixture checks the ledger's invariants (`ledger.check()`)
  and verifies the audit chain: every test that uses it therefore also checks double entry and
  the chain at the end, and fails if either is broken (tests that break them on purpose use
  ``unchecked_ledger``).
* ``unchecked_ledger``: the same without the final checks, for tamper tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger_support import ManualClock, make_ledger
from tianping.ledger.audit import verify_chain
from tianping.ledger.service import Ledger


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def unchecked_ledger(database_url: str, clock: ManualClock) -> Iterator[Ledger]:
    ledger = make_ledger(database_url, clock)
    yield ledger
    ledger.pool.close()


@pytest.fixture
def ledger(database_url: str, clock: ManualClock) -> Iterator[Ledger]:
    ledger = make_ledger(database_url, clock)
    yield ledger
    try:
        findings = ledger.check()
        with ledger.read(snapshot=True) as store:
            chain = verify_chain(store)
    finally:
        ledger.pool.close()
    assert findings == [], f"ledger invariants broken at the end of the test: {findings}"
    assert chain.ok, f"audit chain broken at the end of the test: {chain.breaks}"
