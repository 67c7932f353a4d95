"""The journal is append-only in the database itself, and tampering behind its back is caught.

Raw connections (the standard library's `sqlite3`, plain `psycopg`) play an operator or a bug
with SQL access: the database's triggers must refuse edits and deletions of journal rows and of
accounts' immutable fields, and once a trigger is dropped, `verify_chain` (or `ledger.check()`
for the mutable balances) must point at what was changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from ledger_support import ManualClock, make_ledger
from tianping.db.urls import parse_database_url
from tianping.ledger.audit import ChainReport, verify_chain
from tianping.ledger.journal import ChainRecord
from tianping.ledger.limits import ID_MAX
from tianping.ledger.model import AccountFlags, NewAccount, NewTransfer, TransferFlags
from tianping.ledger.results import (
    AccountStateChangeResult,
    CreateAccountResult,
    CreateTransferResult,
)
from tianping.ledger.service import Ledger

R = CreateTransferResult
USD = "USD"
BANK, ALICE, BOB = ID_MAX, 2**127 + 5, 2**64 + 9
PENDING = TransferFlags.PENDING

APPEND_ONLY_TABLES = (
    "transfers",
    "pending_resolutions",
    "account_events",
    "account_balances",
    "audit_chain",
)
# A change to one column of each table that its CHECK constraints would allow.
UPDATES = {
    "transfers": "amount = amount + 1",
    "pending_resolutions": "timestamp = timestamp + 1",
    "account_events": "account_id = account_id",
    "account_balances": "credits_posted = credits_posted + 1",
    "audit_chain": "kind = 'forged'",
}


def key(value: int) -> bytes:
    return value.to_bytes(16, "big")


class RawSQL:
    """A plain autocommit connection that bypasses the ledger, written with `?` placeholders."""

    def __init__(self, url: str) -> None:
        parsed = parse_database_url(url)
        self.backend = parsed.backend
        self.connection: Any
        if parsed.backend == "sqlite":
            self.connection = sqlite3.connect(parsed.sqlite_path or "", isolation_level=None)
            self.errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
        else:
            self.connection = psycopg.connect(parsed.dsn or "", autocommit=True)
            self.errors = (psycopg.DatabaseError,)

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = self.connection.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]

    def refused(self, sql: str, parameters: tuple[Any, ...] = ()) -> str:
        """Run a statement the database must refuse; return its error message."""
        with pytest.raises(self.errors) as error:
            self.execute(sql, parameters)
        return str(error.value)

    def table(self, name: str) -> list[tuple[Any, ...]]:
        return sorted(self.execute(f"SELECT * FROM {name}"), key=repr)  # noqa: S608

    def drop_append_only_trigger(self, table: str) -> None:
        """Remove the triggers that stop UPDATE and DELETE on a journal table."""
        if self.backend == "sqlite":
            self.execute(f"DROP TRIGGER {table}_no_update")
            self.execute(f"DROP TRIGGER {table}_no_delete")
        else:
            self.execute(f"DROP TRIGGER {table}_append_only ON {table}")

    def close(self) -> None:
        self.connection.close()


@dataclass
class Scenario:
    ledger: Ledger
    raw: RawSQL
    gap_timestamp: int  # a timestamp a failed event consumed inside a record's range


def populate(ledger: Ledger, clock: ManualClock) -> int:
    """Fill every journal table; return the timestamp of a failed event (a gap in a record)."""
    history = AccountFlags.HISTORY
    assert (
        ledger.create_accounts(
            [
                NewAccount(BANK, USD, 1),
                NewAccount(ALICE, USD, 1, history, "alice"),
                NewAccount(BOB, USD, 1, history),
            ]
        )
        == [CreateAccountResult.ok] * 3
    )
    ok = R.ok
    assert (
        ledger.create_transfers(
            [
                NewTransfer(1, BANK, ALICE, 100, USD, 1),
                NewTransfer(2, BANK, BOB, 50, USD, 1),
                NewTransfer(3, ALICE, BOB, 10, USD, 1, metadata='{"ref":"x"}'),
            ]
        )
        == [ok] * 3
    )
    assert (
        ledger.create_transfers(
            [
                NewTransfer(4, BANK, BOB, 20, USD, 1, PENDING),
                NewTransfer(5, BANK, ALICE, 30, USD, 1, PENDING, timeout=5),
            ]
        )
        == [ok] * 2
    )
    assert ledger.create_transfers(
        [
            NewTransfer(6, flags=TransferFlags.POST_PENDING, pending_id=4, amount=15),
            NewTransfer(99, BANK, ALICE, 0, USD, 1),  # fails, but takes a timestamp
            NewTransfer(7, BOB, ALICE, 5, USD, 1),
        ]
    ) == [ok, R.amount_must_be_positive, ok]
    (six, seven) = ledger.lookup_transfers([6, 7])
    assert seven.timestamp == six.timestamp + 2
    assert ledger.close_account(BOB) == AccountStateChangeResult.ok
    assert ledger.reopen_account(BOB) == AccountStateChangeResult.ok
    clock.advance(seconds=6)
    assert ledger.create_transfers([NewTransfer(8, ALICE, BANK, 1, USD, 1)]) == [ok]  # expires 5
    assert (
        ledger.create_transfers(
            [
                NewTransfer(9, BANK, ALICE, 3, USD, 1),
                NewTransfer(10, BANK, BOB, 4, USD, 1),
            ]
        )
        == [ok] * 2
    )
    assert ledger.create_transfers([NewTransfer(11, BANK, ALICE, 6, USD, 1)]) == [ok]
    assert ledger.check() == []
    return six.timestamp + 1


@pytest.fixture
def scenario(unchecked_ledger: Ledger, clock: ManualClock, database_url: str) -> Iterator[Scenario]:
    gap = populate(unchecked_ledger, clock)
    raw = RawSQL(database_url)
    try:
        yield Scenario(unchecked_ledger, raw, gap)
    finally:
        raw.close()


def chain(ledger: Ledger) -> ChainReport:
    with ledger.read(snapshot=True) as store:
        return verify_chain(store)


def records(ledger: Ledger) -> list[ChainRecord]:
    with ledger.read() as store:
        return store.chain_records(0, 1000)


def covering(ledger: Ledger, timestamp: int) -> ChainRecord:
    (record,) = [r for r in records(ledger) if r.first_timestamp <= timestamp <= r.last_timestamp]
    return record


def assert_sound(ledger: Ledger) -> None:
    assert ledger.check() == []
    report = chain(ledger)
    assert report.ok, report.breaks


# -- the database refuses edits -------------------------------------------------------------


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_journal_tables_refuse_update_and_delete(scenario: Scenario, table: str) -> None:
    """UPDATE and DELETE on every journal table are refused by the database."""
    raw = scenario.raw
    before = raw.table(table)
    assert len(before) >= 2
    message = raw.refused(f"UPDATE {table} SET {UPDATES[table]}")  # noqa: S608
    assert "append-only" in message
    message = raw.refused(f"DELETE FROM {table}")  # noqa: S608
    assert "append-only" in message
    if table == "transfers":  # one row, and an update that changes nothing
        raw.refused("DELETE FROM transfers WHERE id = ?", (key(3),))
        raw.refused("UPDATE transfers SET amount = amount WHERE id = ?", (key(3),))
        raw.refused("UPDATE transfers SET metadata = NULL WHERE id = ?", (key(3),))
    assert raw.table(table) == before
    assert_sound(scenario.ledger)


@pytest.mark.postgres
@pytest.mark.parametrize("table", [*APPEND_ONLY_TABLES, "accounts"])
def test_truncate_refused_on_postgresql(postgres_url: str, table: str) -> None:
    """TRUNCATE of a journal table or of accounts is refused on PostgreSQL."""
    clock = ManualClock()
    ledger = make_ledger(postgres_url, clock)
    raw = RawSQL(postgres_url)
    try:
        populate(ledger, clock)
        before = raw.table(table)
        message = raw.refused(f"TRUNCATE {table} CASCADE")
        assert "append-only (TRUNCATE refused)" in message
        assert raw.table(table) == before
        assert_sound(ledger)
    finally:
        raw.close()
        ledger.pool.close()


ACCOUNT_FIELD_CHANGES = {
    "currency": "currency = 'EUR'",
    "code": "code = code + 1",
    "owner": "owner = 'mallory'",
    "timestamp": "timestamp = timestamp + 1000000",
    "id": "id = ?",
    "flags": "flags = flags | 2",
}


@pytest.mark.parametrize("field", ACCOUNT_FIELD_CHANGES)
def test_account_immutable_fields_refused(scenario: Scenario, field: str) -> None:
    """Changing an account's currency, code, owner, timestamp, id or flags is refused."""
    raw = scenario.raw
    before = raw.table("accounts")
    parameters = (key(12345),) if field == "id" else ()
    statement = f"UPDATE accounts SET {ACCOUNT_FIELD_CHANGES[field]} WHERE id = ?"  # noqa: S608
    message = raw.refused(statement, (*parameters, key(ALICE)))
    assert "only balances and the closed flag may change" in message
    assert raw.table("accounts") == before
    assert_sound(scenario.ledger)


def test_account_delete_refused(scenario: Scenario) -> None:
    """Accounts are never deleted, even one without any transfer."""
    ledger, raw = scenario.ledger, scenario.raw
    assert ledger.create_accounts([NewAccount(77, USD, 1)]) == [CreateAccountResult.ok]
    before = raw.table("accounts")
    assert "never deleted" in raw.refused("DELETE FROM accounts WHERE id = ?", (key(77),))
    assert "never deleted" in raw.refused("DELETE FROM accounts")
    assert raw.table("accounts") == before
    assert_sound(ledger)


def test_account_balances_and_closed_flag_may_change(scenario: Scenario) -> None:
    """The columns the ledger itself updates (balances, the closed bit) are not blocked."""
    ledger, raw = scenario.ledger, scenario.raw
    before = raw.table("accounts")
    raw.execute(
        "UPDATE accounts SET credits_posted = credits_posted + 5, "
        "debits_pending = debits_pending + 1 WHERE id = ?",
        (key(ALICE),),
    )
    assert ledger.get_account(ALICE).credits_posted == before_credits(before, ALICE) + 5
    raw.execute(
        "UPDATE accounts SET credits_posted = credits_posted - 5, "
        "debits_pending = debits_pending - 1 WHERE id = ?",
        (key(ALICE),),
    )
    raw.execute("UPDATE accounts SET flags = flags | 16 WHERE id = ?", (key(BOB),))
    assert ledger.get_account(BOB).closed
    raw.execute("UPDATE accounts SET flags = flags & ~16 WHERE id = ?", (key(BOB),))
    assert raw.table("accounts") == before
    assert_sound(ledger)


def before_credits(rows: list[tuple[Any, ...]], account_id: int) -> int:
    (row,) = [r for r in rows if bytes(r[0]) == key(account_id)]
    return int(row[9])


# -- tampering behind the application's back is detected ------------------------------------


def test_changed_transfer_amount_breaks_its_record(scenario: Scenario) -> None:
    """After dropping the trigger, an edited transfer amount breaks exactly its record."""
    ledger, raw = scenario.ledger, scenario.raw
    (target,) = ledger.lookup_transfers([7])
    record = covering(ledger, target.timestamp)
    assert 1 < record.seq < records(ledger)[-1].seq
    raw.drop_append_only_trigger("transfers")
    raw.execute("UPDATE transfers SET amount = amount + 1 WHERE id = ?", (key(7),))

    report = chain(ledger)
    assert not report.ok
    assert report.first_break is not None
    assert report.first_break.seq == record.seq
    assert "body hash" in report.first_break.reason
    assert {b.seq for b in report.breaks} == {record.seq}
    # The balances no longer add up to the journal either.
    assert any("differ from its transfers" in finding for finding in ledger.check())


def test_changed_transfer_metadata_breaks_its_record(scenario: Scenario) -> None:
    """Editing a field that moves no money (metadata) is caught just the same."""
    ledger, raw = scenario.ledger, scenario.raw
    (target,) = ledger.lookup_transfers([3])
    record = covering(ledger, target.timestamp)
    raw.drop_append_only_trigger("transfers")
    raw.execute("UPDATE transfers SET metadata = ? WHERE id = ?", ('{"ref":"y"}', key(3)))
    report = chain(ledger)
    assert report.first_break is not None and report.first_break.seq == record.seq
    assert ledger.check() == []  # invisible to the balance checks: only the chain sees it


def test_deleted_transfer_breaks_its_record(scenario: Scenario) -> None:
    """After dropping the triggers, deleting a transfer row breaks exactly its record."""
    ledger, raw = scenario.ledger, scenario.raw
    (target,) = ledger.lookup_transfers([9])
    record = covering(ledger, target.timestamp)
    raw.drop_append_only_trigger("transfers")
    raw.execute("DELETE FROM transfers WHERE id = ?", (key(9),))
    assert ledger.lookup_transfers([9]) == []

    report = chain(ledger)
    assert report.first_break is not None
    assert report.first_break.seq == record.seq
    assert {b.seq for b in report.breaks} == {record.seq}


def test_forged_transfer_after_the_last_record_is_not_covered(scenario: Scenario) -> None:
    """A row inserted past the chain's end (no trigger needs dropping) is reported uncovered."""
    ledger, raw = scenario.ledger, scenario.raw
    last = records(ledger)[-1]
    forged_at = last.last_timestamp + 1000
    raw.execute(
        "INSERT INTO transfers (timestamp, id, debit_account_id, credit_account_id, amount, "
        "currency, code, flags, pending_id, reverses_id, timeout, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0, NULL)",
        (forged_at, key(666), key(BANK), key(ALICE), 1_000_000, USD, 1, 0),
    )
    report = chain(ledger)
    assert not report.ok
    assert report.first_break is not None
    assert report.first_break.seq == last.seq + 1
    assert "not covered" in report.first_break.reason
    assert str(forged_at) in report.first_break.reason
    assert any("after the head" in finding for finding in ledger.check())


def test_forged_transfer_inside_a_record_breaks_it(scenario: Scenario) -> None:
    """A row slipped into a timestamp gap inside a record's range breaks that record."""
    ledger, raw = scenario.ledger, scenario.raw
    record = covering(ledger, scenario.gap_timestamp)
    raw.execute(
        "INSERT INTO transfers (timestamp, id, debit_account_id, credit_account_id, amount, "
        "currency, code, flags, pending_id, reverses_id, timeout, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0, NULL)",
        (scenario.gap_timestamp, key(99), key(BANK), key(ALICE), 1, USD, 1, 0),
    )
    report = chain(ledger)
    assert report.first_break is not None
    assert report.first_break.seq == record.seq
    assert {b.seq for b in report.breaks} == {record.seq}


def test_edited_chain_hash_breaks_the_chain_there(scenario: Scenario) -> None:
    """Editing the stored hash of a middle record breaks the chain at that record or the next."""
    ledger, raw = scenario.ledger, scenario.raw
    chain_records = records(ledger)
    middle = chain_records[len(chain_records) // 2]
    assert 1 < middle.seq < chain_records[-1].seq
    raw.drop_append_only_trigger("audit_chain")
    raw.execute("UPDATE audit_chain SET hash = ? WHERE seq = ?", (bytes(32), middle.seq))

    report = chain(ledger)
    assert report.first_break is not None
    assert report.first_break.seq in (middle.seq, middle.seq + 1)
    assert {b.seq for b in report.breaks} <= {middle.seq, middle.seq + 1}
    assert ledger.check() == []


def test_edited_chain_body_hash_breaks_the_chain_there(scenario: Scenario) -> None:
    """Rewriting a record's body hash (to match forged rows, say) still breaks its link."""
    ledger, raw = scenario.ledger, scenario.raw
    middle = records(ledger)[3]
    raw.drop_append_only_trigger("audit_chain")
    raw.execute("UPDATE audit_chain SET body_hash = ? WHERE seq = ?", (bytes(32), middle.seq))
    report = chain(ledger)
    assert report.first_break is not None and report.first_break.seq == middle.seq


def test_edited_resolution_breaks_its_record(scenario: Scenario) -> None:
    """Turning an expiry into a post in pending_resolutions breaks the record that expired it."""
    ledger, raw = scenario.ledger, scenario.raw
    (resolved_at,) = raw.execute(
        "SELECT timestamp FROM pending_resolutions WHERE pending_id = ?", (key(5),)
    )[0]
    record = covering(ledger, resolved_at)
    raw.drop_append_only_trigger("pending_resolutions")
    raw.execute("UPDATE pending_resolutions SET kind = 'posted' WHERE pending_id = ?", (key(5),))
    report = chain(ledger)
    assert report.first_break is not None and report.first_break.seq == record.seq


def test_edited_account_balance_is_caught_by_check_not_chain(scenario: Scenario) -> None:
    """A balance edited in place (allowed by the triggers) is caught by ledger.check()."""
    ledger, raw = scenario.ledger, scenario.raw
    raw.execute(
        "UPDATE accounts SET credits_posted = credits_posted + 500 WHERE id = ?", (key(ALICE),)
    )
    findings = ledger.check()
    assert any(f"account {ALICE}: posted balances" in finding for finding in findings)
    assert any("USD: posted debits" in finding for finding in findings)
    assert chain(ledger).ok  # balances are state, not journal: the chain does not cover them


def test_lost_open_hold_is_caught_by_check(scenario: Scenario) -> None:
    """Deleting a hold from pending_open (mutable state) is caught by ledger.check()."""
    ledger, raw = scenario.ledger, scenario.raw
    assert ledger.create_transfers([NewTransfer(20, BANK, ALICE, 2, USD, 1, PENDING)]) == [R.ok]
    raw.execute("DELETE FROM pending_open WHERE pending_id = ?", (key(20),))
    assert any("neither open nor resolved" in finding for finding in ledger.check())


# -- gaps found while writing these tests, since closed: balance history is chained, the closed
# bit is compared with the journal, and hold expiries with their transfers -------------------


def test_edited_balance_history_is_detected(scenario: Scenario) -> None:
    """An edited balance-history row is reported by verify_chain or ledger.check()."""
    ledger, raw = scenario.ledger, scenario.raw
    raw.drop_append_only_trigger("account_balances")
    raw.execute(
        "UPDATE account_balances SET credits_posted = credits_posted + 1000 WHERE account_id = ?",
        (key(ALICE),),
    )
    assert ledger.get_account_balances(ALICE)[0].credits_posted == 1100  # the forgery is served
    assert not chain(ledger).ok


def test_closed_flag_changed_without_event_is_detected(scenario: Scenario) -> None:
    """Closing an account by raw SQL, without its journaled event, is reported."""
    ledger, raw = scenario.ledger, scenario.raw
    raw.execute("UPDATE accounts SET flags = flags | 16 WHERE id = ?", (key(ALICE),))
    assert ledger.get_account(ALICE).closed
    assert any("closed flag disagrees" in finding for finding in ledger.check())


def test_disabled_hold_expiry_is_detected(scenario: Scenario) -> None:
    """A hold whose expiry was removed from pending_open by raw SQL is reported by check()."""
    ledger, raw = scenario.ledger, scenario.raw
    assert ledger.create_transfers(
        [NewTransfer(21, BANK, ALICE, 2, USD, 1, PENDING, timeout=5)]
    ) == [R.ok]
    raw.execute("UPDATE pending_open SET expires_at = 0 WHERE pending_id = ?", (key(21),))
    assert any("expiry other than" in finding for finding in ledger.check())
