"""The ledger's use cases against real databases, on SQLite and on PostgreSQL.

Every test runs on both backends through the `ledger` fixture, which also checks the ledger's
invariants and verifies the audit chain when the test ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from ledger_support import ManualClock
from tianping.ledger.errors import AccountNotFound, BatchTooLarge, HistoryNotEnabled, InvalidQuery
from tianping.ledger.journal import ChainHead
from tianping.ledger.limits import (
    AMOUNT_MINOR_MAX,
    ID_MAX,
    METADATA_BYTES_MAX,
    TRANSFERS_PER_BATCH_MAX,
)
from tianping.ledger.model import (
    Account,
    AccountBalance,
    AccountFlags,
    Balances,
    NewAccount,
    NewTransfer,
    Transfer,
    TransferFlags,
)
from tianping.ledger.results import (
    AccountStateChangeResult,
    CreateAccountResult,
    CreateTransferResult,
)
from tianping.ledger.service import Ledger

A = CreateAccountResult
R = CreateTransferResult
S = AccountStateChangeResult

USD = "USD"
EUR = "EUR"
SECOND_NS = 1_000_000_000
HISTORY = AccountFlags.HISTORY
DEBITS_LIMITED = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CREDITS_LIMITED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
PENDING = TransferFlags.PENDING
POST = TransferFlags.POST_PENDING
VOID = TransferFlags.VOID_PENDING
LINKED = TransferFlags.LINKED

# Ids spread over the whole 128-bit range, including the largest one allowed.
BANK = ID_MAX
ALICE = 2**127 + 11
BOB = 2**64 + 7
CAROL = 3


# -- helpers --------------------------------------------------------------------------------


def open_accounts(ledger: Ledger, *accounts: NewAccount) -> None:
    assert ledger.create_accounts(list(accounts)) == [A.ok] * len(accounts)


def usd(account_id: int, flags: int = 0, owner: str = "") -> NewAccount:
    return NewAccount(account_id, USD, 10, flags, owner)


def move(transfer_id: int, debit: int, credit: int, amount: int, **fields: object) -> NewTransfer:
    return NewTransfer(transfer_id, debit, credit, amount, USD, 1, **fields)  # type: ignore[arg-type]


def post(ledger: Ledger, *transfers: NewTransfer) -> None:
    results = ledger.create_transfers(list(transfers))
    assert results == [R.ok] * len(transfers), results


def balances(ledger: Ledger, account_id: int) -> tuple[int, int, int, int]:
    """(debits_pending, debits_posted, credits_pending, credits_posted), read both by the whole
    account and by the balances-only point read, which must agree."""
    a = ledger.get_account(account_id)
    whole = (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
    assert ledger.lookup_balances(account_id) == Balances(*whole)
    return whole


def head(ledger: Ledger) -> tuple[ChainHead, int]:
    """The chain head and the newest journal timestamp: both unchanged iff nothing was written."""
    with ledger.read() as store:
        return store.read_head(), store.latest_journal_timestamp()


def transfer_ids(transfers: Sequence[Transfer]) -> list[int]:
    return [t.id for t in transfers]


# -- round trips ----------------------------------------------------------------------------


def test_point_reads_of_unknown_and_malformed_ids(ledger: Ledger) -> None:
    """The hot point reads answer None, never raise, for ids no account can have."""
    open_accounts(ledger, usd(BANK))
    for missing in (ALICE, 0, -1, ID_MAX + 1, True):
        assert ledger.lookup_balances(missing) is None
        assert ledger.lookup_account(missing) is None
    assert ledger.lookup_balances(BANK) == Balances(0, 0, 0, 0)


def test_accounts_round_trip(ledger: Ledger, clock: ManualClock) -> None:
    """Accounts read back exactly as created, with 128-bit ids up to ID_MAX."""
    events = [
        NewAccount(1, USD, 1),
        NewAccount(ID_MAX, EUR, 65535, HISTORY | DEBITS_LIMITED, "party:ID_MAX"),
        NewAccount(2**64, "JPY", 7, AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS, "p-1.x_y"),
        NewAccount(2**127, USD, 2, AccountFlags.LINKED | HISTORY, "o" * 64),
        NewAccount(2**127 + 1, USD, 3),
    ]
    first = clock.now
    assert ledger.create_accounts(events) == [A.ok] * len(events)

    expected = [
        Account(e.id, e.currency, e.code, e.flags & AccountFlags.STORED, e.owner, first + i)
        for i, e in enumerate(events)
    ]
    ids = [e.id for e in events]
    assert ledger.lookup_accounts(ids) == expected
    # In the order asked, unknown and malformed ids left out, duplicates once.
    asked = [2**127 + 1, 999, ID_MAX, 0, 2**128, 2**128 - 1, -1, ID_MAX, 1]
    assert ledger.lookup_accounts(asked) == [expected[4], expected[1], expected[0]]
    assert ledger.get_account(ID_MAX) == expected[1]
    assert ledger.get_account(ID_MAX).id == 2**128 - 2
    with pytest.raises(AccountNotFound):
        ledger.get_account(2**128 - 3)


def test_transfers_round_trip(ledger: Ledger, clock: ManualClock) -> None:
    """Transfers read back exactly as created, with every field and 128-bit ids up to ID_MAX."""
    open_accounts(ledger, usd(BANK), usd(ALICE), usd(BOB))
    clock.advance(seconds=1)
    metadata_max = '{"k":"' + "x" * (METADATA_BYTES_MAX - 8) + '"}'
    assert len(metadata_max.encode()) == METADATA_BYTES_MAX
    events = [
        NewTransfer(ID_MAX, BANK, ALICE, AMOUNT_MINOR_MAX, USD, 65535),
        NewTransfer(2**127, ALICE, BOB, 1, USD, 1, metadata='{"ref":"a|b","n":"\u5929\u5e73"}'),
        NewTransfer(2**64, BANK, BOB, 250, USD, 2, PENDING, timeout=3600, metadata=metadata_max),
        NewTransfer(1, BANK, BOB, 50, USD, 3, PENDING),
    ]
    first = clock.now
    post(ledger, *events)
    expected = [
        Transfer(
            e.id,
            e.debit_account_id,
            e.credit_account_id,
            e.amount,
            e.currency,
            e.code,
            e.flags,
            e.pending_id,
            e.reverses_id,
            e.timeout,
            e.metadata,
            first + i,
        )
        for i, e in enumerate(events)
    ]
    assert ledger.lookup_transfers([e.id for e in events]) == expected
    assert ledger.lookup_transfers([1, 0, 2**128, 2**128 - 1, ID_MAX]) == [expected[3], expected[0]]
    # A post of the 128-bit hold with every optional field omitted is filled in from the hold.
    post(ledger, NewTransfer(ID_MAX - 1, flags=POST, pending_id=2**64))
    (stored,) = ledger.lookup_transfers([ID_MAX - 1])
    assert (
        stored.debit_account_id,
        stored.credit_account_id,
        stored.amount,
        stored.currency,
        stored.code,
        stored.pending_id,
    ) == (BANK, BOB, 250, USD, 2, 2**64)
    assert balances(ledger, BANK) == (50, AMOUNT_MINOR_MAX + 250, 0, 0)
    assert balances(ledger, ALICE) == (0, 1, 0, AMOUNT_MINOR_MAX)
    assert balances(ledger, BOB) == (0, 0, 50, 251)


def test_replays_across_commits(ledger: Ledger) -> None:
    """Replaying an event in a later commit answers exists (or exists_with_different_fields)."""
    open_accounts(ledger, usd(BANK), usd(ALICE, HISTORY, "alice"))
    post(ledger, move(10, BANK, ALICE, 100, metadata='{"r":1}'))
    post(ledger, move(11, BANK, ALICE, 5, flags=PENDING, timeout=60))
    post(ledger, NewTransfer(12, flags=POST, pending_id=11, amount=3))
    before = head(ledger)
    state = (balances(ledger, BANK), balances(ledger, ALICE))

    assert ledger.create_accounts([usd(BANK), usd(ALICE, HISTORY, "alice")]) == [A.exists] * 2
    assert (
        ledger.create_accounts(
            [
                usd(ALICE, HISTORY, "bob"),
                usd(ALICE),
                NewAccount(BANK, EUR, 10),
                NewAccount(BANK, USD, 11),
            ]
        )
        == [A.exists_with_different_fields] * 4
    )
    assert (
        ledger.create_transfers(
            [
                move(10, BANK, ALICE, 100, metadata='{"r":1}'),
                move(11, BANK, ALICE, 5, flags=PENDING, timeout=60),
                NewTransfer(12, flags=POST, pending_id=11, amount=3),
                # The omitted fields of a post match whatever the post was filled in with.
                NewTransfer(12, BANK, ALICE, 3, USD, 1, flags=POST, pending_id=11),
            ]
        )
        == [R.exists] * 4
    )
    assert (
        ledger.create_transfers(
            [
                move(10, BANK, ALICE, 101, metadata='{"r":1}'),
                move(10, BANK, ALICE, 100),
                move(10, ALICE, BANK, 100, metadata='{"r":1}'),
                move(11, BANK, ALICE, 5, flags=PENDING, timeout=61),
                NewTransfer(12, flags=POST, pending_id=11, amount=4),
            ]
        )
        == [R.exists_with_different_fields] * 5
    )
    # A replay is recognised even when the ledger's present state would now refuse the event.
    assert ledger.close_account(ALICE) == S.ok
    after_close = head(ledger)
    assert ledger.create_transfers([move(10, BANK, ALICE, 100, metadata='{"r":1}')]) == [R.exists]
    assert head(ledger) == after_close
    assert ledger.reopen_account(ALICE) == S.ok

    assert (balances(ledger, BANK), balances(ledger, ALICE)) == state
    assert before[0].seq + 2 == head(ledger)[0].seq  # only the close and the reopen were written


def test_two_phase_across_commits(ledger: Ledger) -> None:
    """Holds are posted (partly) or voided in later commits, and only once."""
    open_accounts(ledger, usd(BANK), usd(ALICE, DEBITS_LIMITED), usd(BOB, HISTORY))
    post(ledger, move(1, BANK, ALICE, 1000))
    post(ledger, move(2, ALICE, BOB, 600, flags=PENDING), move(3, ALICE, BOB, 300, flags=PENDING))
    assert balances(ledger, ALICE) == (900, 0, 0, 1000)
    assert balances(ledger, BOB) == (0, 0, 900, 0)
    # The holds count against ALICE's limit.
    assert ledger.create_transfers([move(4, ALICE, BOB, 101)]) == [R.exceeds_credits]

    assert ledger.create_transfers([NewTransfer(5, flags=POST, pending_id=2, amount=601)]) == [
        R.exceeds_pending_transfer_amount
    ]
    post(ledger, NewTransfer(5, flags=POST, pending_id=2, amount=450))
    assert balances(ledger, ALICE) == (300, 450, 0, 1000)
    assert balances(ledger, BOB) == (0, 0, 300, 450)

    post(ledger, NewTransfer(6, flags=VOID, pending_id=3))
    assert balances(ledger, ALICE) == (0, 450, 0, 1000)
    assert balances(ledger, BOB) == (0, 0, 0, 450)
    (void,) = ledger.lookup_transfers([6])
    assert (void.amount, void.debit_account_id, void.credit_account_id) == (300, ALICE, BOB)

    before = head(ledger)
    assert ledger.create_transfers(
        [
            NewTransfer(7, flags=POST, pending_id=2),
            NewTransfer(8, flags=VOID, pending_id=2),
            NewTransfer(9, flags=POST, pending_id=3),
            NewTransfer(10, flags=VOID, pending_id=3),
            NewTransfer(11, flags=POST, pending_id=1),
            NewTransfer(12, flags=POST, pending_id=99),
            NewTransfer(13, flags=VOID, pending_id=3, amount=1),
            NewTransfer(14, BOB, ALICE, flags=POST, pending_id=2),
        ]
    ) == [
        R.pending_transfer_already_posted,
        R.pending_transfer_already_posted,
        R.pending_transfer_already_voided,
        R.pending_transfer_already_voided,
        R.pending_transfer_not_pending,
        R.pending_transfer_not_found,
        R.pending_transfer_has_different_amount,
        R.pending_transfer_has_different_debit_account_id,
    ]
    assert head(ledger) == before
    # The released 150 of the partly posted hold is available again.
    post(ledger, move(15, ALICE, BOB, 550))
    assert ledger.create_transfers([move(16, ALICE, BOB, 1)]) == [R.exceeds_credits]


def test_expiry_by_expire_pending(ledger: Ledger, clock: ManualClock) -> None:
    """A hold past its timeout is voided by expire_pending, and a later post is refused."""
    open_accounts(ledger, usd(BANK), usd(ALICE, DEBITS_LIMITED | HISTORY), usd(BOB))
    post(ledger, move(1, BANK, ALICE, 100))
    post(ledger, move(2, ALICE, BOB, 80, flags=PENDING, timeout=5))
    (hold,) = ledger.lookup_transfers([2])
    assert balances(ledger, ALICE) == (80, 0, 0, 100)

    clock.advance(seconds=4)
    assert ledger.expire_pending() == 0
    assert balances(ledger, ALICE) == (80, 0, 0, 100)

    clock.advance(seconds=2)
    assert ledger.expire_pending() == 1
    assert balances(ledger, ALICE) == (0, 0, 0, 100)
    assert balances(ledger, BOB) == (0, 0, 0, 0)
    assert ledger.expire_pending() == 0

    before = head(ledger)
    assert ledger.create_transfers([NewTransfer(3, flags=POST, pending_id=2)]) == [
        R.pending_transfer_expired
    ]
    assert ledger.create_transfers([NewTransfer(4, flags=VOID, pending_id=2)]) == [
        R.pending_transfer_expired
    ]
    assert head(ledger) == before
    # The expiry is in ALICE's balance history, at or after the hold's expiry time.
    history = ledger.get_account_balances(ALICE)
    assert [(b.debits_pending, b.credits_posted) for b in history] == [
        (0, 100),
        (80, 100),
        (0, 100),
    ]
    assert history[-1].timestamp >= hold.expires_at
    post(ledger, move(5, ALICE, BOB, 100))


def test_expiry_happens_at_the_next_write(ledger: Ledger, clock: ManualClock) -> None:
    """An expired hold is voided implicitly by the next write, before that write's events."""
    open_accounts(ledger, usd(BANK), usd(ALICE, DEBITS_LIMITED), usd(BOB))
    post(ledger, move(1, BANK, ALICE, 100))
    post(
        ledger,
        move(2, ALICE, BOB, 100, flags=PENDING, timeout=5),
        move(3, BANK, BOB, 7, flags=PENDING, timeout=1),
    )
    assert ledger.create_transfers([move(4, ALICE, BOB, 1)]) == [R.exceeds_credits]

    clock.advance(seconds=6)
    # This batch needs ALICE's held funds: it succeeds only because both holds expire first.
    post(ledger, move(5, ALICE, BOB, 100))
    assert balances(ledger, ALICE) == (0, 100, 0, 100)
    assert balances(ledger, BOB) == (0, 0, 0, 100)
    assert balances(ledger, BANK) == (0, 100, 0, 0)
    assert ledger.expire_pending() == 0
    assert (
        ledger.create_transfers(
            [NewTransfer(6, flags=POST, pending_id=2), NewTransfer(7, flags=POST, pending_id=3)]
        )
        == [R.pending_transfer_expired] * 2
    )


def test_post_in_the_same_write_as_the_expiry(ledger: Ledger, clock: ManualClock) -> None:
    """A post arriving after the timeout, with no write in between, is refused as expired."""
    open_accounts(ledger, usd(BANK), usd(ALICE))
    post(ledger, move(1, BANK, ALICE, 10, flags=PENDING, timeout=5))
    clock.advance(seconds=6)
    assert ledger.create_transfers([NewTransfer(2, flags=POST, pending_id=1)]) == [
        R.pending_transfer_expired
    ]
    assert balances(ledger, BANK) == (0, 0, 0, 0)
    assert ledger.expire_pending() == 0


def test_linked_chain_failing_midway_writes_nothing(ledger: Ledger) -> None:
    """A linked chain whose middle event fails leaves no trace; other events still commit."""
    open_accounts(ledger, usd(BANK), usd(ALICE, DEBITS_LIMITED | HISTORY), usd(BOB, HISTORY))
    post(ledger, move(1, BANK, ALICE, 100))
    before = head(ledger)
    state = [balances(ledger, a) for a in (BANK, ALICE, BOB)]

    results = ledger.create_transfers(
        [
            move(2, ALICE, BOB, 60, flags=LINKED),
            move(3, ALICE, BOB, 30, flags=LINKED | PENDING),
            move(4, ALICE, BOB, 20, flags=LINKED),  # 60 + 30 + 20 > 100
            move(5, BANK, BOB, 1),
        ]
    )
    assert results == [
        R.linked_event_failed,
        R.linked_event_failed,
        R.exceeds_credits,
        R.linked_event_failed,
    ]
    assert head(ledger) == before
    assert ledger.lookup_transfers([2, 3, 4, 5]) == []
    assert [balances(ledger, a) for a in (BANK, ALICE, BOB)] == state
    assert len(ledger.get_account_balances(BOB)) == 0

    results = ledger.create_transfers(
        [
            move(6, BANK, BOB, 7),
            move(2, ALICE, BOB, 60, flags=LINKED),
            move(3, ALICE, CAROL, 30, flags=LINKED),  # unknown account
            move(4, ALICE, BOB, 20),
            move(8, BANK, BOB, 8, flags=LINKED),  # chain left open at the end of the batch
        ]
    )
    assert results == [
        R.ok,
        R.linked_event_failed,
        R.credit_account_not_found,
        R.linked_event_failed,
        R.linked_event_chain_open,
    ]
    assert transfer_ids(ledger.lookup_transfers([2, 3, 4, 6, 8])) == [6]
    assert balances(ledger, BOB) == (0, 0, 0, 7)
    assert balances(ledger, ALICE) == state[1]


def test_reversal(ledger: Ledger) -> None:
    """Reversals move money back along a posted transfer, never more than its amount."""
    open_accounts(ledger, usd(BANK), usd(ALICE, HISTORY), usd(BOB))
    post(ledger, move(1, BANK, ALICE, 100), move(2, BANK, BOB, 9, flags=PENDING))
    post(ledger, NewTransfer(3, reverses_id=1, amount=30))
    (reversal,) = ledger.lookup_transfers([3])
    assert (
        reversal.debit_account_id,
        reversal.credit_account_id,
        reversal.amount,
        reversal.currency,
        reversal.code,
    ) == (ALICE, BANK, 30, USD, 1)
    assert balances(ledger, ALICE) == (0, 30, 0, 100)

    assert ledger.create_transfers(
        [
            NewTransfer(4, BANK, ALICE, 10, reverses_id=1),
            NewTransfer(5, reverses_id=1, amount=71),
            NewTransfer(6, reverses_id=2),
            NewTransfer(7, reverses_id=77),
            NewTransfer(8, reverses_id=1, currency=EUR),
        ]
    ) == [
        R.reversal_must_swap_accounts,
        R.reversal_exceeds_original,
        R.reversal_target_not_posted,
        R.reversal_target_not_found,
        R.reversal_has_different_currency,
    ]
    post(ledger, NewTransfer(9, ALICE, BANK, 0, USD, 5, reverses_id=1))  # the remaining 70
    assert ledger.lookup_transfers([9])[0].amount == 70
    assert ledger.create_transfers([NewTransfer(10, reverses_id=1, amount=1)]) == [
        R.reversal_exceeds_original
    ]
    assert balances(ledger, ALICE) == (0, 100, 0, 100)
    assert balances(ledger, BANK) == (9, 100, 0, 100)
    # A reversal can itself be reversed.
    post(ledger, NewTransfer(11, reverses_id=9, amount=20))
    assert balances(ledger, ALICE) == (0, 100, 0, 120)


def test_close_and_reopen_account(ledger: Ledger) -> None:
    """A closed account refuses new transfers (voids still pass) until it is reopened."""
    open_accounts(ledger, usd(BANK), usd(ALICE), usd(BOB))
    post(ledger, move(1, BANK, ALICE, 50, flags=PENDING), move(2, BANK, ALICE, 50, flags=PENDING))

    assert ledger.close_account(ALICE) == S.ok
    assert ledger.get_account(ALICE).closed
    assert ledger.get_account(ALICE).flags == AccountFlags.CLOSED
    assert ledger.close_account(ALICE) == S.already_closed
    assert ledger.close_account(CAROL) == S.account_not_found
    assert ledger.close_account(0) == S.id_invalid
    assert ledger.close_account(2**128) == S.id_invalid
    assert ledger.reopen_account(BOB) == S.not_closed

    before = head(ledger)
    assert ledger.create_transfers(
        [
            move(3, BANK, ALICE, 1),
            move(4, ALICE, BOB, 1),
            NewTransfer(5, flags=POST, pending_id=1),
            move(6, BANK, ALICE, 1, flags=PENDING),
        ]
    ) == [
        R.credit_account_closed,
        R.debit_account_closed,
        R.credit_account_closed,
        R.credit_account_closed,
    ]
    assert head(ledger) == before
    post(ledger, NewTransfer(7, flags=VOID, pending_id=2))
    assert balances(ledger, ALICE) == (0, 0, 50, 0)

    assert ledger.reopen_account(ALICE) == S.ok
    assert not ledger.get_account(ALICE).closed
    assert ledger.reopen_account(ALICE) == S.not_closed
    post(ledger, move(3, BANK, ALICE, 1), NewTransfer(5, flags=POST, pending_id=1))
    assert balances(ledger, ALICE) == (0, 0, 0, 51)


def test_account_transfers_pagination(ledger: Ledger) -> None:
    """get_account_transfers pages through 250 transfers in both orders and filters sides."""
    open_accounts(ledger, usd(BANK), usd(ALICE), usd(BOB))
    created: list[int] = []
    transfer_id = 1000
    for batch in range(3):
        events = []
        for _ in range(90 if batch < 2 else 70):
            transfer_id += 1
            if transfer_id % 3 == 0:
                events.append(move(transfer_id, ALICE, BOB, transfer_id % 97 + 1))
            else:
                events.append(move(transfer_id, BANK, ALICE, transfer_id % 89 + 1))
            created.append(transfer_id)
        # Unrelated and failed events between them leave gaps in ALICE's timestamps.
        events.insert(40, move(1, BANK, BOB, 5 + batch) if batch == 0 else move(2, BOB, BANK, 0))
        events.insert(41, move(1_000_000 + batch, BANK, BOB, 3))
        results = ledger.create_transfers(events)
        assert results.count(R.ok) == len(events) - (batch > 0)
    assert len(created) == 250

    def pages(newest_first: bool, debits: bool = True, credits: bool = True) -> list[int]:
        seen: list[Transfer] = []
        low = high = 0
        sizes = []
        while True:
            page = ledger.get_account_transfers(
                ALICE, low, high, 100, newest_first, debits, credits
            )
            if not page:
                break
            sizes.append(len(page))
            stamps = [t.timestamp for t in page]
            assert stamps == sorted(stamps, reverse=newest_first)
            assert len(set(stamps)) == len(stamps)
            seen.extend(page)
            if newest_first:
                high = page[-1].timestamp - 1
            else:
                low = page[-1].timestamp + 1
        total = len(seen)
        assert sizes == [100] * (total // 100) + ([total % 100] if total % 100 else [])
        assert all(t.debit_account_id == ALICE or t.credit_account_id == ALICE for t in seen)
        return transfer_ids(seen)

    assert pages(False) == created
    assert pages(True) == created[::-1]
    debit_ids = [i for i in created if i % 3 == 0]
    credit_ids = [i for i in created if i % 3 != 0]
    assert pages(False, credits=False) == debit_ids
    assert pages(True, credits=False) == debit_ids[::-1]
    assert pages(False, debits=False) == credit_ids
    assert ledger.get_account_transfers(ALICE, debits=False, credits=False) == []

    # Bounds are inclusive.
    (first, second) = ledger.lookup_transfers(created[:2])
    window = ledger.get_account_transfers(ALICE, first.timestamp, second.timestamp)
    assert transfer_ids(window) == created[:2]
    assert len(ledger.get_account_transfers(ALICE, limit=1000)) == 250
    with pytest.raises(InvalidQuery):
        ledger.get_account_transfers(ALICE, limit=0)
    with pytest.raises(InvalidQuery):
        ledger.get_account_transfers(ALICE, limit=1001)
    with pytest.raises(InvalidQuery):
        ledger.get_account_transfers(ALICE, timestamp_min=5, timestamp_max=4)
    with pytest.raises(AccountNotFound):
        ledger.get_account_transfers(CAROL)


def test_balance_history_and_balance_at(ledger: Ledger, clock: ManualClock) -> None:
    """A history account's balances are kept after each transfer and can be read at any time."""
    open_accounts(ledger, usd(BANK), usd(ALICE, HISTORY))
    created_at = ledger.get_account(ALICE).timestamp
    steps: list[tuple[int, tuple[int, int, int, int]]] = []
    plan = [
        move(1, BANK, ALICE, 100),
        move(2, ALICE, BANK, 30),
        move(3, ALICE, BANK, 20, flags=PENDING),
        NewTransfer(4, flags=POST, pending_id=3, amount=15),
        move(5, BANK, ALICE, 7, flags=PENDING),
        NewTransfer(6, reverses_id=1, amount=10),
    ]
    for event in plan:
        clock.advance(seconds=10)
        post(ledger, event)
        (stored,) = ledger.lookup_transfers([event.id])
        steps.append((stored.timestamp, balances(ledger, ALICE)))

    history = ledger.get_account_balances(ALICE)
    assert [
        (b.timestamp, (b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted))
        for b in history
    ] == steps
    assert ledger.get_account_balances(ALICE, newest_first=True) == history[::-1]
    assert ledger.get_account_balances(ALICE, limit=2) == history[:2]
    assert ledger.get_account_balances(ALICE, steps[2][0], steps[3][0]) == history[2:4]
    assert ledger.get_account_balances(ALICE, history[1].timestamp + 1, limit=2) == history[2:4]

    zero = (0, 0, 0, 0)

    def at(timestamp: int) -> tuple[int, int, int, int]:
        b = ledger.balance_at(ALICE, timestamp)
        assert b.timestamp <= timestamp
        return (b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted)

    assert at(1) == zero
    assert at(created_at - 1) == zero
    assert at(created_at) == zero
    assert at(steps[0][0] - 1) == zero
    for index, (timestamp, expected) in enumerate(steps):
        assert at(timestamp) == expected
        assert ledger.balance_at(ALICE, timestamp) == history[index]
        assert at(timestamp + 1) == expected
        assert at(timestamp + 5 * SECOND_NS) == expected
    assert at(2**63 - 1) == steps[-1][1]
    assert steps[-1][1] == balances(ledger, ALICE)
    with pytest.raises(InvalidQuery):
        ledger.balance_at(ALICE, 0)
    with pytest.raises(InvalidQuery):
        ledger.balance_at(ALICE, 2**63)


def test_history_not_enabled(ledger: Ledger) -> None:
    """Balance history is refused for an account created without the history flag."""
    open_accounts(ledger, usd(BANK), usd(ALICE))
    post(ledger, move(1, BANK, ALICE, 5))
    with pytest.raises(HistoryNotEnabled):
        ledger.get_account_balances(ALICE)
    with pytest.raises(HistoryNotEnabled):
        ledger.balance_at(ALICE, 2**62)
    with pytest.raises(AccountNotFound):
        ledger.get_account_balances(CAROL)
    with pytest.raises(AccountNotFound):
        ledger.balance_at(CAROL, 2**62)
    # Its posted activity is still available as a statement.
    assert ledger.statement(ALICE).closing_credits == 5


def test_statement_across_a_period_boundary(ledger: Ledger, clock: ManualClock) -> None:
    """A statement's opening totals are everything posted before the period, its closing ones
    add the period's posted entries."""
    open_accounts(ledger, usd(BANK), usd(ALICE), usd(BOB))
    post(
        ledger,
        move(1, BANK, ALICE, 100),
        move(2, ALICE, BOB, 30),
        move(3, ALICE, BOB, 40, flags=PENDING),
        move(4, ALICE, BOB, 8, flags=PENDING),
    )
    clock.advance(seconds=3600)
    boundary = clock.now
    post(
        ledger,
        NewTransfer(5, flags=POST, pending_id=3, amount=25),
        NewTransfer(6, flags=VOID, pending_id=4),
        move(7, BANK, ALICE, 11),
        move(8, BOB, ALICE, 2),
    )
    clock.advance(seconds=3600)
    end = clock.now - 1
    post(ledger, move(9, BANK, ALICE, 1000))  # after the period

    statement = ledger.statement(ALICE, boundary, end)
    assert (statement.opening_debits, statement.opening_credits) == (30, 100)
    assert transfer_ids(statement.entries) == [5, 7, 8]
    assert (statement.closing_debits, statement.closing_credits) == (55, 113)
    assert statement.complete and statement.next_timestamp is None
    assert (statement.timestamp_min, statement.timestamp_max) == (boundary, end)

    # The period before the boundary closes where the next one opens.
    earlier = ledger.statement(ALICE, 0, boundary - 1)
    assert transfer_ids(earlier.entries) == [1, 2]
    assert (earlier.opening_debits, earlier.opening_credits) == (0, 0)
    assert (earlier.closing_debits, earlier.closing_credits) == (30, 100)

    whole = ledger.statement(ALICE)
    assert (whole.closing_debits, whole.closing_credits) == (55, 1113)
    account = ledger.get_account(ALICE)
    assert (whole.closing_debits, whole.closing_credits) == (
        account.debits_posted,
        account.credits_posted,
    )

    cut = ledger.statement(ALICE, boundary, end, limit=2)
    assert not cut.complete
    (seventh,) = ledger.lookup_transfers([7])
    # The page holds the post and the void (not posted), and the next page starts at 7.
    assert transfer_ids(cut.entries) == [5]
    assert cut.next_timestamp == seventh.timestamp
    rest = ledger.statement(ALICE, cut.next_timestamp, end)
    assert (rest.opening_debits, rest.opening_credits) == (cut.closing_debits, cut.closing_credits)
    assert (rest.closing_debits, rest.closing_credits) == (55, 113)


# -- bad input ------------------------------------------------------------------------------

TOO_LONG_METADATA = '{"k":"' + "x" * METADATA_BYTES_MAX + '"}'
MULTIBYTE_METADATA = '{"k":"' + "\u00e9" * (METADATA_BYTES_MAX // 2) + '"}'  # > max in bytes

BAD_TRANSFERS = [
    pytest.param(move(100, BANK, ALICE, 0), R.amount_must_be_positive, id="zero-amount"),
    pytest.param(move(100, BANK, ALICE, -5), R.amount_must_be_positive, id="negative-amount"),
    pytest.param(
        move(100, BANK, ALICE, AMOUNT_MINOR_MAX + 1), R.amount_exceeds_maximum, id="amount-over-max"
    ),
    pytest.param(move(100, CAROL, ALICE, 1), R.debit_account_not_found, id="unknown-debit"),
    pytest.param(move(100, BANK, CAROL, 1), R.credit_account_not_found, id="unknown-credit"),
    pytest.param(move(100, BANK, BOB, 1), R.credit_account_closed, id="closed-credit"),
    pytest.param(move(100, BOB, BANK, 1), R.debit_account_closed, id="closed-debit"),
    pytest.param(
        move(100, BANK, 4, 1),
        R.accounts_must_have_the_same_currency,
        id="currency-mismatch-accounts",
    ),
    pytest.param(
        NewTransfer(100, BANK, ALICE, 1, EUR, 1),
        R.transfer_currency_must_match_accounts,
        id="currency-mismatch-transfer",
    ),
    pytest.param(
        NewTransfer(100, BANK, ALICE, 1, "XXX", 1), R.currency_invalid, id="unknown-currency"
    ),
    pytest.param(move(0, BANK, ALICE, 1), R.id_invalid, id="id-zero"),
    pytest.param(move(2**128, BANK, ALICE, 1), R.id_invalid, id="id-2**128"),
    pytest.param(move(2**128 - 1, BANK, ALICE, 1), R.id_invalid, id="id-all-ones"),
    pytest.param(move(-1, BANK, ALICE, 1), R.id_invalid, id="id-negative"),
    pytest.param(move(100, 2**128, ALICE, 1), R.debit_account_id_invalid, id="debit-id-2**128"),
    pytest.param(move(100, 0, ALICE, 1), R.debit_account_id_invalid, id="debit-id-zero"),
    pytest.param(move(100, BANK, 2**128, 1), R.credit_account_id_invalid, id="credit-id-2**128"),
    pytest.param(move(100, BANK, BANK, 1), R.accounts_must_be_different, id="same-accounts"),
    pytest.param(
        move(100, BANK, ALICE, 1, metadata=TOO_LONG_METADATA),
        R.metadata_invalid,
        id="metadata-too-long",
    ),
    pytest.param(
        move(100, BANK, ALICE, 1, metadata=MULTIBYTE_METADATA),
        R.metadata_invalid,
        id="metadata-too-many-bytes",
    ),
    pytest.param(move(100, BANK, ALICE, 1, metadata=""), R.metadata_invalid, id="metadata-empty"),
    pytest.param(
        move(100, BANK, ALICE, 1, timeout=5),
        R.timeout_reserved_for_pending_transfer,
        id="timeout-not-pending",
    ),
    pytest.param(NewTransfer(100, BANK, ALICE, 1, USD, 0), R.code_invalid, id="code-zero"),
    pytest.param(NewTransfer(100, BANK, ALICE, 1, USD, 65536), R.code_invalid, id="code-big"),
    pytest.param(move(100, BANK, ALICE, 1, flags=64), R.flags_invalid, id="unknown-flag"),
    pytest.param(
        move(100, BANK, ALICE, 1, flags=PENDING | POST),
        R.flags_are_mutually_exclusive,
        id="pending-and-post",
    ),
    pytest.param(move(100, ALICE, BANK, 11), R.exceeds_credits, id="overdraw-limited"),
]


@pytest.mark.parametrize(("event", "expected"), BAD_TRANSFERS)
def test_bad_transfer_gets_its_code_and_writes_nothing(
    ledger: Ledger, event: NewTransfer, expected: CreateTransferResult
) -> None:
    """Each malformed or refused transfer gets its result code and changes nothing."""
    open_accounts(
        ledger, usd(BANK), usd(ALICE, DEBITS_LIMITED | HISTORY), usd(BOB), NewAccount(4, EUR, 10)
    )
    post(ledger, move(1, BANK, ALICE, 10))
    assert ledger.close_account(BOB) == S.ok
    before = head(ledger)
    state = [balances(ledger, a) for a in (BANK, ALICE, BOB, 4)]

    assert ledger.create_transfers([event]) == [expected]
    # Inside a batch the bad event fails alone (and twice: still no trace).
    assert ledger.create_transfers([event, event]) == [expected, expected]
    assert head(ledger) == before
    assert [balances(ledger, a) for a in (BANK, ALICE, BOB, 4)] == state
    assert ledger.lookup_transfers([100, ID_MAX]) == []
    assert len(ledger.get_account_balances(ALICE)) == 1
    assert ledger.check() == []


BAD_ACCOUNTS = [
    pytest.param(NewAccount(0, USD, 1), A.id_invalid, id="id-zero"),
    pytest.param(NewAccount(2**128, USD, 1), A.id_invalid, id="id-2**128"),
    pytest.param(NewAccount(2**128 - 1, USD, 1), A.id_invalid, id="id-all-ones"),
    pytest.param(NewAccount(7, "usd", 1), A.currency_invalid, id="currency-lowercase"),
    pytest.param(NewAccount(7, "XAU", 1), A.currency_invalid, id="currency-no-minor-unit"),
    pytest.param(NewAccount(7, USD, 0), A.code_invalid, id="code-zero"),
    pytest.param(NewAccount(7, USD, 65536), A.code_invalid, id="code-big"),
    pytest.param(
        NewAccount(7, USD, 1, owner="o" * 65), A.owner_reference_invalid, id="owner-too-long"
    ),
    pytest.param(NewAccount(7, USD, 1, owner="a b"), A.owner_reference_invalid, id="owner-space"),
    pytest.param(NewAccount(7, USD, 1, owner="a|b"), A.owner_reference_invalid, id="owner-pipe"),
    pytest.param(
        NewAccount(7, USD, 1, owner="a\nb"), A.owner_reference_invalid, id="owner-newline"
    ),
    pytest.param(NewAccount(7, USD, 1, AccountFlags.CLOSED), A.flags_invalid, id="flag-closed"),
    pytest.param(NewAccount(7, USD, 1, 32), A.flags_invalid, id="flag-unknown"),
    pytest.param(
        NewAccount(7, USD, 1, DEBITS_LIMITED | CREDITS_LIMITED),
        A.flags_are_mutually_exclusive,
        id="both-limits",
    ),
]


@pytest.mark.parametrize(("event", "expected"), BAD_ACCOUNTS)
def test_bad_account_gets_its_code_and_writes_nothing(
    ledger: Ledger, event: NewAccount, expected: CreateAccountResult
) -> None:
    """Each malformed account gets its result code and changes nothing."""
    open_accounts(ledger, usd(BANK))
    before = head(ledger)
    assert ledger.create_accounts([event]) == [expected]
    assert head(ledger) == before
    assert ledger.lookup_accounts([7, 0, 2**128 - 1]) == []
    assert ledger.check() == []


def test_batch_too_large_raises_and_writes_nothing(ledger: Ledger, clock: ManualClock) -> None:
    """A batch of 8190 events raises BatchTooLarge and writes nothing; 8189 are accepted."""
    open_accounts(ledger, usd(BANK), usd(ALICE))
    post(ledger, move(1, BANK, ALICE, 3, flags=PENDING, timeout=1))
    clock.advance(seconds=2)  # the hold is due: even its expiry must not be written
    before = head(ledger)
    oversized = [move(10 + i, BANK, ALICE, 1) for i in range(TRANSFERS_PER_BATCH_MAX + 1)]
    with pytest.raises(BatchTooLarge):
        ledger.create_transfers(oversized)
    with pytest.raises(BatchTooLarge):
        ledger.create_accounts([usd(10 + i) for i in range(TRANSFERS_PER_BATCH_MAX + 1)])
    assert head(ledger) == before
    assert ledger.lookup_transfers([10, 10 + TRANSFERS_PER_BATCH_MAX]) == []
    assert ledger.lookup_accounts([10]) == []
    assert balances(ledger, ALICE) == (0, 0, 3, 0)
    assert ledger.check() == []

    results = ledger.create_transfers(oversized[:TRANSFERS_PER_BATCH_MAX])
    assert results == [R.ok] * TRANSFERS_PER_BATCH_MAX
    assert balances(ledger, ALICE) == (0, 0, 0, TRANSFERS_PER_BATCH_MAX)


def test_timestamps_increase_when_the_clock_goes_backwards(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Ledger timestamps strictly increase across batches even when the clock goes back."""
    open_accounts(ledger, usd(BANK), usd(ALICE, HISTORY))
    post(ledger, move(1, BANK, ALICE, 1), move(2, BANK, ALICE, 1))
    clock.now -= 3600 * SECOND_NS
    post(ledger, move(3, BANK, ALICE, 1, flags=PENDING, timeout=5))
    open_accounts(ledger, usd(BOB))
    clock.now -= 1
    post(ledger, move(4, BANK, BOB, 1))
    assert ledger.close_account(BOB) == S.ok
    clock.now = 1
    post(ledger, move(5, BANK, ALICE, 1))
    # Ten seconds of wall clock later, ledger time has still not reached the hold's expiry.
    clock.advance(seconds=10)
    assert ledger.expire_pending() == 0

    stamps = [t.timestamp for t in ledger.lookup_transfers([1, 2, 3, 4, 5])]
    bob = ledger.get_account(BOB)
    assert stamps[2] < bob.timestamp < stamps[3]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))
    history = ledger.get_account_balances(ALICE)
    assert [b.timestamp for b in history] == [stamps[0], stamps[1], stamps[2], stamps[4]]
    with ledger.read() as store:
        chain = store.chain_records(0, 100)
    assert all(b.first_timestamp == a.last_timestamp + 1 for a, b in itertools.pairwise(chain))
    assert chain[-1].last_timestamp == stamps[4]
    # Once the clock catches up again, ledger time follows it.
    clock.now = stamps[4] + 100 * SECOND_NS
    assert ledger.expire_pending() == 1
    post(ledger, move(6, BANK, ALICE, 1))
    assert ledger.lookup_transfers([6])[0].timestamp == clock.now + 1


def test_balance_type_is_account_balance(ledger: Ledger) -> None:
    """balance_at returns an AccountBalance even for an account without any transfer."""
    open_accounts(ledger, usd(ALICE, HISTORY))
    created = ledger.get_account(ALICE).timestamp
    assert ledger.balance_at(ALICE, created + 5) == AccountBalance(created, 0, 0, 0, 0)
    assert ledger.balance_at(ALICE, created - 5) == AccountBalance(created - 5, 0, 0, 0, 0)


def test_expiry_backlog_larger_than_one_write(ledger: Ledger, clock: ManualClock) -> None:
    """More due holds than one write expires (1024) are drained by expire_pending or writes."""
    open_accounts(ledger, usd(BANK), usd(ALICE, HISTORY))
    holds = [move(10_000 + i, BANK, ALICE, 1, flags=PENDING, timeout=1) for i in range(1030)]
    post(ledger, *holds)
    clock.advance(seconds=2)
    assert ledger.expire_pending() == 1030
    assert balances(ledger, ALICE) == (0, 0, 0, 0)

    post(ledger, *[move(20_000 + i, BANK, ALICE, 1, flags=PENDING, timeout=1) for i in range(1030)])
    clock.advance(seconds=2)
    post(ledger, move(1, BANK, ALICE, 5))  # expires the first 1024 before its own event
    assert balances(ledger, ALICE) == (0, 0, 6, 5)
    assert ledger.expire_pending() == 6
    assert balances(ledger, ALICE) == (0, 0, 0, 5)
    assert ledger.create_transfers([NewTransfer(2, flags=POST, pending_id=20_000 + 1029)]) == [
        R.pending_transfer_expired
    ]


def test_unit_of_work_commits_together_or_not_at_all(ledger: Ledger, clock: ManualClock) -> None:
    """Everything done in one LedgerWrite commits together, and nothing of it after an error."""
    open_accounts(ledger, usd(BANK), usd(ALICE, HISTORY))
    before = head(ledger)
    with pytest.raises(RuntimeError, match="caller failed"), ledger.write() as uow:
        assert uow.create_transfers([move(1, BANK, ALICE, 5)]) == [R.ok]
        assert uow.set_account_closed(ALICE, True) == S.ok
        uow.append_record("test.decision", b'{"decision":"accept"}')
        raise RuntimeError("caller failed")
    assert head(ledger) == before
    assert ledger.lookup_transfers([1]) == []
    assert not ledger.get_account(ALICE).closed
    assert ledger.get_account_balances(ALICE) == []

    with ledger.write() as uow:
        assert uow.create_transfers([move(1, BANK, ALICE, 5, flags=PENDING, timeout=1)]) == [R.ok]
        clock.advance(seconds=2)
        # Later calls in the same unit of work see the earlier ones, expiries included.
        assert uow.create_transfers([NewTransfer(2, flags=POST, pending_id=1)]) == [
            R.pending_transfer_expired
        ]
        assert uow.create_transfers([move(3, BANK, ALICE, 7)]) == [R.ok]
        record = uow.append_record("test.decision", b'{"decision":"accept"}')
    assert balances(ledger, ALICE) == (0, 0, 0, 7)
    # The hold, its expiry (written by the refused post's call), the transfer, the record.
    assert head(ledger)[0].seq == record.seq == before[0].seq + 4
    assert ledger.expire_pending() == 0
