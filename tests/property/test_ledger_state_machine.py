"""Stateful test: the pure engine plus an in-memory store against a first-principles model.

`Store` persists each plan exactly as `LedgerWrite` does (transfers, resolutions, the open-hold
table, balances of changed accounts, history snapshots) and builds each batch's `LedgerView` and
`expiring` list the way the service does (open holds with expires_at <= the batch's first
timestamp, sorted by (expires_at, id)). `Model` is written independently: plain dicts of balances
and hold states, each event decided by listing every condition it violates and reporting the one
that comes first in CREATE_TRANSFER_PRECEDENCE, effects applied by hand. The machine submits
batches to both and compares result codes, stored rows, balances and resolutions.

Scope: amounts stay small, so the `overflows_*` codes never arise here, and the machine only
generates well-formed events apart from a few deliberate refusals (same accounts, zero amount,
unknown ids, wrong currency or code); malformed shapes, overflows and precedence are covered
case by case in tests/unit/test_engine_transfers.py. Closing and reopening accounts is mirrored
directly (as `set_account_closed` does it), since it does not go through the engine.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tianping.ledger.engine import (
    LedgerView,
    TransferPlan,
    chain_segments,
    plan_accounts,
    plan_transfers,
)
from tianping.ledger.model import (
    Account,
    AccountFlags,
    NewAccount,
    NewTransfer,
    Resolution,
    Transfer,
    TransferFlags,
)
from tianping.ledger.results import (
    CREATE_TRANSFER_PRECEDENCE,
    CreateAccountResult,
    CreateTransferResult,
)

R = CreateTransferResult
F = TransferFlags
SECOND = 1_000_000_000
T0 = 1_800_000_000 * SECOND
CURRENCIES = ("USD", "EUR")
UNKNOWN_ACCOUNT = 999_999
UNKNOWN_TRANSFER = 888_888
DEBITS_LIMITED = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CREDITS_LIMITED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
PAIRINGS = ["usual"] * 34 + [
    "unknown-debit",
    "any-debit",
    "same-account",
    "unknown-credit",
    "any-credit",
    "any-credit",
    "other-currency",
]
ACCOUNT_FLAG_CHOICES = [
    0,
    0,
    DEBITS_LIMITED,
    CREDITS_LIMITED,
    AccountFlags.HISTORY,
    DEBITS_LIMITED | AccountFlags.HISTORY,
    CREDITS_LIMITED | AccountFlags.HISTORY,
    DEBITS_LIMITED | CREDITS_LIMITED,  # refused: flags_are_mutually_exclusive
]


# -- the in-memory store: what the service persists ------------------------------------------


class Store:
    """Tables as the service writes them; every insert checks its table's primary key."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.transfers: dict[int, Transfer] = {}
        self.resolutions: dict[int, tuple[str, int]] = {}
        self.pending_open: dict[int, int] = {}  # pending id -> expires_at (0 = never)
        self.snapshots: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self.last_timestamp = 0

    def next_timestamp(self, now: int) -> int:
        return max(now, self.last_timestamp + 1)

    def create_accounts(self, events: list[NewAccount], now: int) -> tuple[list[int], int]:
        first = self.next_timestamp(now)
        existing = {e.id: copy.copy(self.accounts[e.id]) for e in events if e.id in self.accounts}
        plan = plan_accounts(events, existing, first)
        for account in plan.accounts:
            assert account.id not in self.accounts, "duplicate account row"
            self.accounts[account.id] = copy.copy(account)
        if plan.accounts:
            self.last_timestamp = plan.last_timestamp
        return plan.results, first

    def set_closed(self, account_id: int, closed: bool, now: int) -> None:
        account = self.accounts[account_id]
        assert account.closed != closed
        self.last_timestamp = self.next_timestamp(now)
        account.flags = (
            account.flags | AccountFlags.CLOSED if closed else account.flags & ~AccountFlags.CLOSED
        )

    def create_transfers(
        self, events: list[NewTransfer], now: int, request_ends: list[int] | None = None
    ) -> tuple[TransferPlan, int]:
        first = self.next_timestamp(now)
        due = sorted(
            (expires_at, pending_id)
            for pending_id, expires_at in self.pending_open.items()
            if expires_at and expires_at <= first
        )
        referenced = {pending_id for _, pending_id in due}
        pending_ids = set(referenced)
        original_ids: set[int] = set()
        account_ids: set[int] = set()
        for event in events:
            referenced.add(event.id)
            if event.pending_id:
                referenced.add(event.pending_id)
                pending_ids.add(event.pending_id)
            if event.reverses_id:
                referenced.add(event.reverses_id)
                original_ids.add(event.reverses_id)
            account_ids.update((event.debit_account_id, event.credit_account_id))
        transfers = {i: copy.copy(self.transfers[i]) for i in referenced if i in self.transfers}
        for transfer in transfers.values():
            if transfer.id in pending_ids or transfer.id in original_ids:
                account_ids.update((transfer.debit_account_id, transfer.credit_account_id))
        view = LedgerView(
            accounts={i: copy.copy(self.accounts[i]) for i in account_ids if i in self.accounts},
            transfers=transfers,
            resolutions={i: self.resolutions[i][0] for i in pending_ids if i in self.resolutions},
            reversed_amounts=self._reversed_amounts(original_ids),
        )
        expiring = sorted(
            (transfers[pending_id] for _, pending_id in due),
            key=lambda transfer: (transfer.expires_at, transfer.id),
        )
        plan = plan_transfers(events, view, first, expiring, request_ends)
        self._write(plan)
        return plan, first

    def _reversed_amounts(self, original_ids: set[int]) -> dict[int, int]:
        totals: dict[int, int] = {}
        for transfer in self.transfers.values():
            if transfer.reverses_id in original_ids:
                totals[transfer.reverses_id] = totals.get(transfer.reverses_id, 0) + transfer.amount
        return totals

    def _write(self, plan: TransferPlan) -> None:
        if not plan.writes_anything:
            return
        for transfer in plan.transfers:
            assert transfer.id not in self.transfers, "duplicate transfer row"
            self.transfers[transfer.id] = copy.copy(transfer)
        for pending_id, kind, timestamp in plan.resolutions:
            assert pending_id not in self.resolutions, f"hold {pending_id} resolved twice"
            self.resolutions[pending_id] = (kind, timestamp)
        closed = set(plan.pending_closed)
        opened_ids = {transfer.id for transfer in plan.pending_opened}
        for transfer in plan.pending_opened:
            if transfer.id not in closed:
                assert transfer.id not in self.pending_open
                self.pending_open[transfer.id] = transfer.expires_at
        for pending_id in plan.pending_closed:
            if pending_id not in opened_ids:
                del self.pending_open[pending_id]  # KeyError: closing a hold that is not open
        for changed in plan.accounts_changed.values():
            stored = self.accounts[changed.id]
            stored.debits_pending = changed.debits_pending
            stored.debits_posted = changed.debits_posted
            stored.credits_pending = changed.credits_pending
            stored.credits_posted = changed.credits_posted
        for account_id, timestamp, *values in plan.snapshots:
            assert (account_id, timestamp) not in self.snapshots, "duplicate snapshot row"
            self.snapshots[account_id, timestamp] = tuple(values)  # type: ignore[assignment]
        self.last_timestamp = plan.last_timestamp


# -- the reference model ---------------------------------------------------------------------


@dataclass
class MAccount:
    currency: str
    flags: int  # as stored: without `linked`
    code: int
    owner: str
    closed: bool = False
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def balances(self) -> tuple[int, int, int, int]:
        return (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)


@dataclass
class MTransfer:
    """What the model remembers of an accepted transfer."""

    kind: str  # "plain", "pending", "post", "void" or "reversal"
    debit: int
    credit: int
    amount: int
    currency: str
    code: int
    timestamp: int
    expires_at: int = 0
    submitted: NewTransfer | None = None


@dataclass
class ModelState:
    accounts: dict[int, MAccount] = field(default_factory=dict)
    transfers: dict[int, MTransfer] = field(default_factory=dict)
    holds: dict[int, str] = field(default_factory=dict)  # pending id -> open/posted/voided/expired
    resolutions: dict[int, tuple[str, int]] = field(default_factory=dict)
    reversed: dict[int, int] = field(default_factory=dict)
    last_timestamp: int = 0


def first_failure(violations: list[CreateTransferResult]) -> CreateTransferResult:
    return min(violations, key=CREATE_TRANSFER_PRECEDENCE.index)


class Model:
    """Balances and hold states from first principles."""

    def __init__(self) -> None:
        self.state = ModelState()

    # -- time and expiry --

    def begin_batch(self, now: int) -> tuple[int, int]:
        """Expire due holds like the service; return (first timestamp, first event timestamp)."""
        state = self.state
        first = max(now, state.last_timestamp + 1)
        due = sorted(
            (t.expires_at, pending_id)
            for pending_id, t in state.transfers.items()
            if t.kind == "pending"
            and state.holds[pending_id] == "open"
            and t.expires_at
            and t.expires_at <= first
        )
        for offset, (_, pending_id) in enumerate(due):
            hold = state.transfers[pending_id]
            state.accounts[hold.debit].debits_pending -= hold.amount
            state.accounts[hold.credit].credits_pending -= hold.amount
            state.holds[pending_id] = "expired"
            state.resolutions[pending_id] = (Resolution.EXPIRED, first + offset)
        return first, first + len(due)

    # -- one event --

    def decide(self, event: NewTransfer, timestamp: int) -> CreateTransferResult:
        """Decide `event` against the current state and, if accepted, apply it."""
        state = self.state
        resolving = event.flags & (F.POST_PENDING | F.VOID_PENDING)
        if not resolving and not event.reverses_id:
            shape = []
            if event.debit_account_id == event.credit_account_id:
                shape.append(R.accounts_must_be_different)
            if event.amount <= 0:
                shape.append(R.amount_must_be_positive)
            if shape:
                return first_failure(shape)
        if event.id in state.transfers:
            same = state.transfers[event.id].submitted == event
            return R.exists if same else R.exists_with_different_fields
        if resolving:
            return self._resolve(event, timestamp)
        if event.reverses_id:
            return self._reverse(event, timestamp)
        return self._move(event, timestamp)

    def _resolve(self, event: NewTransfer, timestamp: int) -> CreateTransferResult:
        state = self.state
        hold = state.transfers.get(event.pending_id)
        if hold is None:
            return R.pending_transfer_not_found
        if hold.kind != "pending":
            return R.pending_transfer_not_pending
        posting = bool(event.flags & F.POST_PENDING)
        bad = []
        if event.code and event.code != hold.code:
            bad.append(R.pending_transfer_has_different_code)
        if not posting and event.amount and event.amount != hold.amount:
            bad.append(R.pending_transfer_has_different_amount)
        if event.amount > hold.amount:
            bad.append(R.exceeds_pending_transfer_amount)
        outcome = state.holds[event.pending_id]
        if outcome != "open":
            bad.append(
                {
                    "posted": R.pending_transfer_already_posted,
                    "voided": R.pending_transfer_already_voided,
                    "expired": R.pending_transfer_expired,
                }[outcome]
            )
        elif hold.expires_at and hold.expires_at <= timestamp:
            bad.append(R.pending_transfer_expired)
        debit, credit = state.accounts[hold.debit], state.accounts[hold.credit]
        if posting and debit.closed:
            bad.append(R.debit_account_closed)
        if posting and credit.closed:
            bad.append(R.credit_account_closed)
        if bad:
            return first_failure(bad)
        amount = event.amount if posting and event.amount else hold.amount
        debit.debits_pending -= hold.amount
        credit.credits_pending -= hold.amount
        if posting:
            debit.debits_posted += amount
            credit.credits_posted += amount
        kind = Resolution.POSTED if posting else Resolution.VOIDED
        state.holds[event.pending_id] = kind
        state.resolutions[event.pending_id] = (kind, timestamp)
        state.transfers[event.id] = MTransfer(
            "post" if posting else "void",
            hold.debit,
            hold.credit,
            amount,
            hold.currency,
            hold.code,
            timestamp,
            submitted=event,
        )
        return R.ok

    def _reverse(self, event: NewTransfer, timestamp: int) -> CreateTransferResult:
        state = self.state
        original = state.transfers.get(event.reverses_id)
        if original is None:
            return R.reversal_target_not_found
        if original.kind in ("pending", "void"):
            return R.reversal_target_not_posted
        remaining = original.amount - state.reversed.get(event.reverses_id, 0)
        amount = event.amount or remaining
        bad = []
        if remaining == 0 or amount > remaining:
            bad.append(R.reversal_exceeds_original)
        debit, credit = state.accounts[original.credit], state.accounts[original.debit]
        bad += self._account_and_limit_checks(debit, credit, amount)
        if bad:
            return first_failure(bad)
        debit.debits_posted += amount
        credit.credits_posted += amount
        state.reversed[event.reverses_id] = state.reversed.get(event.reverses_id, 0) + amount
        state.transfers[event.id] = MTransfer(
            "reversal",
            original.credit,
            original.debit,
            amount,
            original.currency,
            event.code or original.code,
            timestamp,
            submitted=event,
        )
        return R.ok

    def _move(self, event: NewTransfer, timestamp: int) -> CreateTransferResult:
        state = self.state
        debit = state.accounts.get(event.debit_account_id)
        credit = state.accounts.get(event.credit_account_id)
        bad = []
        if debit is None:
            bad.append(R.debit_account_not_found)
        if credit is None:
            bad.append(R.credit_account_not_found)
        if debit is None or credit is None:
            return first_failure(bad)
        if debit.currency != credit.currency:
            bad.append(R.accounts_must_have_the_same_currency)
        if event.currency != debit.currency:
            bad.append(R.transfer_currency_must_match_accounts)
        if bad:
            return first_failure(bad)
        # Balancing moves at most what the limit leaves; nothing left is a refusal.
        amount = event.amount
        zeroed_by = R.ok
        if event.flags & F.BALANCING_DEBIT:
            room = debit.credits_posted - debit.debits_pending - debit.debits_posted
            amount = min(amount, max(room, 0))
            zeroed_by = R.exceeds_credits
        if amount and event.flags & F.BALANCING_CREDIT:
            room = credit.debits_posted - credit.credits_pending - credit.credits_posted
            amount = min(amount, max(room, 0))
            zeroed_by = R.exceeds_debits
        pending = bool(event.flags & F.PENDING)
        bad = self._account_and_limit_checks(debit, credit, amount)
        if amount == 0:
            bad.append(zeroed_by)
        if bad:
            return first_failure(bad)
        if pending:
            debit.debits_pending += amount
            credit.credits_pending += amount
            state.holds[event.id] = "open"
        else:
            debit.debits_posted += amount
            credit.credits_posted += amount
        expires_at = timestamp + event.timeout * SECOND if pending and event.timeout else 0
        state.transfers[event.id] = MTransfer(
            "pending" if pending else "plain",
            event.debit_account_id,
            event.credit_account_id,
            amount,
            event.currency,
            event.code,
            timestamp,
            expires_at,
            submitted=event,
        )
        return R.ok

    @staticmethod
    def _account_and_limit_checks(
        debit: MAccount, credit: MAccount, amount: int
    ) -> list[CreateTransferResult]:
        bad = []
        if debit.closed:
            bad.append(R.debit_account_closed)
        if credit.closed:
            bad.append(R.credit_account_closed)
        # Both pending and posted exposure count against the limit, whichever this one adds to.
        if (
            debit.flags & DEBITS_LIMITED
            and debit.debits_pending + debit.debits_posted + amount > debit.credits_posted
        ):
            bad.append(R.exceeds_credits)
        if (
            credit.flags & CREDITS_LIMITED
            and credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
        ):
            bad.append(R.exceeds_debits)
        return bad

    # -- a batch --

    def submit(
        self, events: list[NewTransfer], now: int, request_ends: list[int] | None = None
    ) -> tuple[list[CreateTransferResult], int]:
        """Decide a batch; a chain runs on a copy of the state, kept only if all of it passes."""
        first, start = self.begin_batch(now)
        expired_any = start > first
        ends = set(request_ends or ())
        results: list[CreateTransferResult] = [R.ok] * len(events)
        chain_start = 0
        for index, event in enumerate(events):
            linked = bool(event.flags & F.LINKED)
            if linked and index != len(events) - 1 and index not in ends:
                continue
            members = range(chain_start, index + 1)
            chain_start = index + 1
            if linked:  # left open at the end of the batch or of its request
                for member in members:
                    results[member] = R.linked_event_failed
                results[index] = R.linked_event_chain_open
                continue
            # `decide` changes nothing when it refuses, so only chains need a copy to go back to.
            saved = copy.deepcopy(self.state) if len(members) > 1 else None
            for member in members:
                code = self.decide(events[member], start + member)
                if code != R.ok:
                    if saved is not None:
                        self.state = saved
                    for other in members:
                        results[other] = R.linked_event_failed
                    results[member] = code
                    break
        if expired_any or R.ok in results:
            self.state.last_timestamp = start + len(events) - 1
        return results, first

    # -- accounts --

    def create_accounts(
        self, events: list[NewAccount], now: int
    ) -> tuple[list[CreateAccountResult], int]:
        state = self.state
        first = max(now, state.last_timestamp + 1)
        results = []
        for event in events:
            if event.flags & DEBITS_LIMITED and event.flags & CREDITS_LIMITED:
                results.append(CreateAccountResult.flags_are_mutually_exclusive)
            elif event.id in state.accounts:
                known = state.accounts[event.id]
                same = (known.currency, known.code, known.flags, known.owner) == (
                    event.currency,
                    event.code,
                    event.flags & AccountFlags.STORED,
                    event.owner,
                )
                results.append(
                    CreateAccountResult.exists
                    if same
                    else CreateAccountResult.exists_with_different_fields
                )
            else:
                state.accounts[event.id] = MAccount(
                    event.currency, event.flags & AccountFlags.STORED, event.code, event.owner
                )
                results.append(CreateAccountResult.ok)
        if CreateAccountResult.ok in results:
            state.last_timestamp = first + len(events) - 1
        return results, first

    def set_closed(self, account_id: int, closed: bool, now: int) -> None:
        self.state.accounts[account_id].closed = closed
        self.state.last_timestamp = max(now, self.state.last_timestamp + 1)


# -- the machine -----------------------------------------------------------------------------


def _balances(accounts: dict[int, Account]) -> dict[int, tuple[int, int, int, int]]:
    return {
        i: (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
        for i, a in accounts.items()
    }


class LedgerMachine(RuleBasedStateMachine):
    """Drive the engine through a `Store` and check it against the `Model` after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.store = Store()
        self.model = Model()
        self.now = T0
        self.next_account_id = 1
        self.next_transfer_id = 1_000
        self.replayable: list[int] = []  # accepted events without the linked flag
        self.chains: list[list[int]] = []  # ids of every closed chain submitted
        self.batch_originals: list[int] = []  # reversal targets drawn for the current batch

    # -- helpers --

    def _submit(
        self, events: list[NewTransfer], request_ends: list[int] | None = None
    ) -> TransferPlan:
        self.batch_originals = []
        plan, first = self.store.create_transfers(events, self.now, request_ends)
        expected, model_first = self.model.submit(events, self.now, request_ends)
        assert first == model_first
        assert plan.results == expected, (events, plan.results, expected)
        state = self.model.state
        for index, (event, code) in enumerate(zip(events, plan.results, strict=True)):
            if code != R.ok:
                continue
            stored, known = self.store.transfers[event.id], state.transfers[event.id]
            assert (
                stored.debit_account_id,
                stored.credit_account_id,
                stored.amount,
                stored.currency,
                stored.code,
                stored.timestamp,
                stored.expires_at,
            ) == (
                known.debit,
                known.credit,
                known.amount,
                known.currency,
                known.code,
                known.timestamp,
                known.expires_at,
            )
            # Event i takes first timestamp + number of expiries + i.
            expired = sum(kind == Resolution.EXPIRED for _, kind, _ in plan.resolutions)
            assert stored.timestamp == first + expired + index
            if not event.flags & F.LINKED:
                self.replayable.append(event.id)
        return plan

    def _fresh_transfer_id(self) -> int:
        self.next_transfer_id += 1
        return self.next_transfer_id

    def _draw_accounts(self, data: st.DataObject) -> tuple[int, int, str]:
        """Usually two distinct open accounts of one currency; now and then a refused pairing."""
        accounts = self.model.state.accounts
        ids = sorted(accounts)
        usable = [i for i in ids if not accounts[i].closed] or ids
        # Integers would be drawn at their bounds far more often than uniformly, so pick the
        # kind of pairing from a list that is mostly "usual".
        pairing = data.draw(st.sampled_from(PAIRINGS))
        debit = (
            UNKNOWN_ACCOUNT
            if pairing == "unknown-debit"
            else data.draw(st.sampled_from(ids if pairing == "any-debit" else usable))
        )
        currency = (
            accounts[debit].currency
            if debit in accounts
            else data.draw(st.sampled_from(CURRENCIES))
        )
        same_currency = [i for i in usable if accounts[i].currency == currency and i != debit]
        if pairing == "same-account":
            credit = debit
        elif pairing == "unknown-credit":
            credit = UNKNOWN_ACCOUNT if debit != UNKNOWN_ACCOUNT else ids[0]
        elif pairing == "any-credit" or not same_currency:
            credit = data.draw(st.sampled_from(ids))
        else:
            credit = data.draw(st.sampled_from(same_currency))
        if pairing == "other-currency":
            currency = CURRENCIES[1 - CURRENCIES.index(currency)]
        return debit, credit, currency

    def _draw_event(
        self, data: st.DataObject, kind: str, chain_holds: dict[int, int]
    ) -> NewTransfer:
        """One event of `kind`: move, pending, resolve (post or void) or reversal."""
        state = self.model.state
        transfer_id = self._fresh_transfer_id()
        holds = {
            i: t.amount
            for i, t in state.transfers.items()
            if t.kind == "pending" and state.holds[i] == "open"
        }
        if data.draw(st.sampled_from([False] * 4 + [True])):  # now and then a resolved one
            holds.update({i: t.amount for i, t in state.transfers.items() if t.kind == "pending"})
        holds.update(chain_holds)
        if kind == "resolve" and holds:
            pending_id = data.draw(st.sampled_from(sorted(holds)))
            deadlines = sorted(
                (t.expires_at, i)
                for i, t in state.transfers.items()
                if t.expires_at and state.holds[i] == "open"
            )
            if deadlines and data.draw(st.sampled_from([False, False, True])):
                pending_id = deadlines[0][1]  # the next to expire: probes the deadline itself
            if data.draw(st.sampled_from([False] * 19 + [True])):
                pending_id = data.draw(
                    st.sampled_from(
                        [
                            UNKNOWN_TRANSFER,
                            *sorted(i for i, t in state.transfers.items() if t.kind != "pending"),
                        ]
                    )
                )
            held = holds.get(pending_id, 10)
            if data.draw(st.sampled_from(["post", "void"])) == "post":
                amount = data.draw(
                    st.sampled_from([0, 0, 0, held, held + 1]) | st.integers(1, max(held, 1))
                )
                flags = F.POST_PENDING
            else:
                amount = data.draw(st.sampled_from([0, 0, 0, held, held - 1 if held > 1 else 0]))
                flags = F.VOID_PENDING
            code = data.draw(st.sampled_from([0, 0, 0, 0, 1, 2]))
            return NewTransfer(
                transfer_id, amount=amount, code=code, flags=flags, pending_id=pending_id
            )
        posted = {
            i: t for i, t in state.transfers.items() if t.kind in ("plain", "post", "reversal")
        }
        if kind == "reversal" and posted:
            open_ones = sorted(i for i, t in posted.items() if t.amount > state.reversed.get(i, 0))
            original_id = data.draw(
                st.sampled_from(
                    open_ones
                    if open_ones and data.draw(st.sampled_from([True] * 4 + [False]))
                    else sorted(posted)
                )
            )
            # Reversing one original twice in a batch checks that a rolled-back chain gives its
            # reversed amount back.
            again = [i for i in self.batch_originals if i in posted]
            if again and data.draw(st.booleans()):
                original_id = data.draw(st.sampled_from(again))
            self.batch_originals.append(original_id)
            original = posted[original_id]
            remaining = original.amount - state.reversed.get(original_id, 0)
            amount = data.draw(
                st.sampled_from([0, 0, remaining + 1]) | st.integers(1, max(remaining, 1))
            )
            if data.draw(st.sampled_from([False] * 19 + [True])):
                original_id = data.draw(st.sampled_from([UNKNOWN_TRANSFER, *sorted(holds)]))
            explicit = data.draw(st.booleans())
            return NewTransfer(
                transfer_id,
                original.credit if explicit else 0,
                original.debit if explicit else 0,
                amount,
                reverses_id=original_id,
            )
        debit, credit, currency = self._draw_accounts(data)
        amount = data.draw(st.integers(1, 120))
        flags, timeout = 0, 0
        if kind == "pending":
            flags = F.PENDING
            timeout = data.draw(st.sampled_from([0, 0, 1, 2, 5]))
        else:
            variant = data.draw(
                st.sampled_from(["plain"] * 7 + ["zero", "balancing"] * 1 + ["balancing"])
            )
            if variant == "zero":
                amount = 0  # refused: amount_must_be_positive
            elif variant == "balancing":
                flags = data.draw(
                    st.sampled_from(
                        [F.BALANCING_DEBIT, F.BALANCING_CREDIT, F.BALANCING_DEBIT | F.PENDING]
                    )
                )
        return NewTransfer(transfer_id, debit, credit, amount, currency, 1, flags, timeout=timeout)

    # -- rules --

    @initialize()
    def open_funding_accounts(self) -> None:
        self._create_accounts(
            [
                NewAccount(1, "USD", 1),
                NewAccount(2, "EUR", 1),
                NewAccount(3, "USD", 1, DEBITS_LIMITED),
                NewAccount(4, "EUR", 1),
                NewAccount(5, "USD", 1, CREDITS_LIMITED),
            ]
        )

    def _create_accounts(self, events: list[NewAccount]) -> None:
        self.next_account_id = max(self.next_account_id, *(e.id + 1 for e in events))
        results, first = self.store.create_accounts(events, self.now)
        expected, model_first = self.model.create_accounts(events, self.now)
        assert (results, first) == (expected, model_first)
        for index, (event, code) in enumerate(zip(events, results, strict=True)):
            if code == CreateAccountResult.ok:
                assert self.store.accounts[event.id].timestamp == first + index

    @precondition(lambda self: len(self.model.state.accounts) < 12)
    @rule(data=st.data())
    def create_accounts(self, data: st.DataObject) -> None:
        events = []
        for _ in range(data.draw(st.integers(1, 3))):
            known = self.model.state.accounts
            if data.draw(st.sampled_from([False] * 7 + [True])):  # a replay
                account_id = data.draw(st.sampled_from(sorted(known)))
                account = known[account_id]
                code = account.code + data.draw(st.integers(0, 1))
                events.append(
                    NewAccount(account_id, account.currency, code, account.flags, account.owner)
                )
                continue
            events.append(
                NewAccount(
                    self.next_account_id + len(events),
                    data.draw(st.sampled_from(CURRENCIES)),
                    data.draw(st.integers(1, 3)),
                    data.draw(st.sampled_from(ACCOUNT_FLAG_CHOICES)),
                )
            )
        self._create_accounts(events)

    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        """A plain or balancing transfer (now and then a malformed one)."""
        self._submit([self._draw_event(data, "move", {})])

    @rule(data=st.data())
    def hold(self, data: st.DataObject) -> None:
        self._submit([self._draw_event(data, "pending", {})])

    @rule(data=st.data())
    def resolve(self, data: st.DataObject) -> None:
        """Post (fully or partly) or void a hold."""
        self._submit([self._draw_event(data, "resolve", {})])

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        self._submit([self._draw_event(data, "reversal", {})])

    @rule(data=st.data())
    def linked_chain(self, data: st.DataObject) -> None:
        """A chain of 2-4 events, closed, left open, or left open at the end of its request."""
        chain_holds: dict[int, int] = {}
        events = []
        for _ in range(data.draw(st.integers(2, 4))):
            kind = data.draw(st.sampled_from(["move", "move", "pending", "resolve", "reversal"]))
            event = self._draw_event(data, kind, chain_holds)
            if event.flags & F.PENDING:
                chain_holds[event.id] = event.amount
            events.append(replace(event, flags=event.flags | F.LINKED))
        ending = data.draw(st.sampled_from(["closed", "closed", "closed", "open", "open-request"]))
        request_ends = None
        if ending != "open":
            events[-1] = replace(events[-1], flags=events[-1].flags & ~F.LINKED)
        if ending == "open-request":
            events[-1] = replace(events[-1], flags=events[-1].flags | F.LINKED)
            events.append(self._draw_event(data, "move", {}))
            request_ends = [len(events) - 2, len(events) - 1]
        plan = self._submit(events, request_ends)
        chain = [event.id for event in (events[:-1] if ending == "open-request" else events)]
        self.chains.append(chain)
        if ending != "closed":
            assert all(self.store.transfers.get(i) is None for i in chain)
            assert plan.results[len(chain) - 1] == R.linked_event_chain_open

    @rule(data=st.data())
    def replay_exactly(self, data: st.DataObject) -> None:
        if not self.replayable:
            return
        transfer_id = data.draw(st.sampled_from(self.replayable))
        event = self.model.state.transfers[transfer_id].submitted
        assert event is not None
        self._replay(event, R.exists)

    @rule(data=st.data())
    def replay_with_other_amount(self, data: st.DataObject) -> None:
        state = self.model.state
        candidates = [
            i
            for i in self.replayable
            if not state.transfers[i].submitted.flags & F.BALANCING  # type: ignore[union-attr]
            or state.transfers[i].amount > 1
        ]
        if not candidates:
            return
        transfer_id = data.draw(st.sampled_from(candidates))
        known = state.transfers[transfer_id]
        event = known.submitted
        assert event is not None
        # A balancing transfer accepts any amount at least the one it moved, so go below that.
        amount = (
            known.amount - 1 if event.flags & F.BALANCING else max(known.amount, event.amount) + 1
        )
        self._replay(replace(event, amount=amount), R.exists_with_different_fields)

    def _replay(self, event: NewTransfer, expected: CreateTransferResult) -> None:
        before = _balances(self.store.accounts)
        plan = self._submit([event])
        assert plan.results == [expected]
        assert plan.transfers == []
        # Only the holds that expired at the start of the batch moved anything.
        for pending_id, kind, _ in plan.resolutions:
            assert kind == Resolution.EXPIRED
            hold = self.store.transfers[pending_id]
            dp, dpo, cp, cpo = before[hold.debit_account_id]
            before[hold.debit_account_id] = (dp - hold.amount, dpo, cp, cpo)
            dp, dpo, cp, cpo = before[hold.credit_account_id]
            before[hold.credit_account_id] = (dp, dpo, cp - hold.amount, cpo)
        assert _balances(self.store.accounts) == before

    @rule(data=st.data())
    def mixed_batch(self, data: st.DataObject) -> None:
        """Several single events and closed chains in one batch, later ones using earlier holds."""
        batch_holds: dict[int, int] = {}
        events: list[NewTransfer] = []
        chains: list[list[int]] = []
        for _ in range(data.draw(st.integers(2, 4))):
            size = data.draw(st.sampled_from([1, 1, 2, 3]))
            segment = []
            for position in range(size):
                kind = data.draw(
                    st.sampled_from(["move", "pending", "resolve", "resolve", "reversal"])
                )
                event = self._draw_event(data, kind, batch_holds)
                if event.flags & F.PENDING:
                    batch_holds[event.id] = event.amount
                if position < size - 1:
                    event = replace(event, flags=event.flags | F.LINKED)
                segment.append(event)
            events += segment
            if size > 1:
                chains.append([event.id for event in segment])
        self._submit(events)
        self.chains += chains

    @rule(data=st.data(), lead=st.sampled_from([1, 2, 3]), land_on_deadline=st.booleans())
    def resolve_at_deadline(self, data: st.DataObject, lead: int, land_on_deadline: bool) -> None:
        """Post or void a hold in the batch slot one before, or exactly at, its deadline."""
        state = self.model.state
        deadlines = sorted(
            (t.expires_at, i)
            for i, t in state.transfers.items()
            if t.expires_at
            and state.holds[i] == "open"
            and t.expires_at - lead > max(self.now, self.store.last_timestamp)
        )
        if not deadlines:
            return
        deadline, hold_id = deadlines[0]
        self.now = deadline - lead
        fillers = lead if land_on_deadline else lead - 1
        events = [self._draw_event(data, "move", {}) for _ in range(fillers)]
        flags = data.draw(st.sampled_from([F.POST_PENDING, F.VOID_PENDING]))
        events.append(NewTransfer(self._fresh_transfer_id(), flags=flags, pending_id=hold_id))
        plan = self._submit(events)
        if not any(kind == Resolution.EXPIRED for _, kind, _ in plan.resolutions):
            # No expiry shifted the slots, so the resolution sits at deadline - 1 or deadline.
            if land_on_deadline:
                assert plan.results[-1] == R.pending_transfer_expired
            else:
                assert plan.results[-1] in (R.ok, R.debit_account_closed, R.credit_account_closed)

    @rule(offset=st.sampled_from([0, 1, 2, 3, SECOND]))
    def advance_to_an_expiry(self, offset: int) -> None:
        """Move the clock to just before (or exactly at) the next deadline of an open hold."""
        deadlines = [
            expires_at
            for expires_at in self.store.pending_open.values()
            if expires_at > self.store.last_timestamp
        ]
        if deadlines:
            self.now = max(self.now, min(deadlines) - offset)

    @rule(
        seconds=st.integers(0, 4),
        nanoseconds=st.sampled_from([0, 1, SECOND // 2]),
        expire=st.booleans(),
    )
    def advance_clock(self, seconds: int, nanoseconds: int, expire: bool) -> None:
        self.now += seconds * SECOND + nanoseconds
        if expire:
            plan = self._submit([])  # what `expire_pending` does
            assert plan.transfers == []
            assert all(kind == Resolution.EXPIRED for _, kind, _ in plan.resolutions)

    @rule(data=st.data())
    def close_or_reopen(self, data: st.DataObject) -> None:
        """Close an account (at most two at a time), or reopen a closed one."""
        accounts = self.model.state.accounts
        closed_ids = sorted(i for i, a in accounts.items() if a.closed)
        candidates = closed_ids if len(closed_ids) >= 2 else sorted(accounts)
        account_id = data.draw(st.sampled_from(candidates))
        closed = not accounts[account_id].closed
        self.store.set_closed(account_id, closed, self.now)
        self.model.set_closed(account_id, closed, self.now)
        assert self.store.last_timestamp == self.model.state.last_timestamp

    # -- invariants --

    @invariant()
    def balances_equal_the_model(self) -> None:
        model = {i: a.balances() for i, a in self.model.state.accounts.items()}
        assert _balances(self.store.accounts) == model
        assert all(
            self.store.accounts[i].closed == a.closed for i, a in self.model.state.accounts.items()
        )

    @invariant()
    def money_is_conserved(self) -> None:
        for currency in CURRENCIES:
            accounts = [a for a in self.store.accounts.values() if a.currency == currency]
            assert sum(a.debits_posted for a in accounts) == sum(a.credits_posted for a in accounts)
            assert sum(a.debits_pending for a in accounts) == sum(
                a.credits_pending for a in accounts
            )

    @invariant()
    def limits_hold(self) -> None:
        for account in self.store.accounts.values():
            assert min(account.debits_pending, account.credits_pending) >= 0
            if account.flags & DEBITS_LIMITED:
                assert account.debits_pending + account.debits_posted <= account.credits_posted
            if account.flags & CREDITS_LIMITED:
                assert account.credits_pending + account.credits_posted <= account.debits_posted

    @invariant()
    def holds_resolve_at_most_once(self) -> None:
        store = self.store
        assert store.resolutions == self.model.state.resolutions
        resolvers: dict[int, int] = {}
        for transfer in store.transfers.values():
            if transfer.flags & (F.POST_PENDING | F.VOID_PENDING):
                assert transfer.pending_id not in resolvers, "two transfers resolve one hold"
                resolvers[transfer.pending_id] = transfer.id
                kind, timestamp = store.resolutions[transfer.pending_id]
                assert timestamp == transfer.timestamp
                assert kind == (
                    Resolution.POSTED if transfer.flags & F.POST_PENDING else Resolution.VOIDED
                )
        holds = {i for i, t in store.transfers.items() if t.flags & F.PENDING}
        assert set(store.resolutions) <= holds
        assert store.pending_open == {
            i: store.transfers[i].expires_at for i in holds - set(store.resolutions)
        }

    @invariant()
    def chains_are_all_or_nothing(self) -> None:
        for chain in self.chains:
            stored = [transfer_id in self.store.transfers for transfer_id in chain]
            assert all(stored) or not any(stored), chain

    @invariant()
    def history_snapshots_track_balances(self) -> None:
        latest: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
        for (account_id, timestamp), values in self.store.snapshots.items():
            if account_id not in latest or timestamp > latest[account_id][0]:
                latest[account_id] = (timestamp, values)
        balances = _balances(self.store.accounts)
        for account_id, account in self.store.accounts.items():
            if account_id in latest:
                assert account.keeps_history
                assert latest[account_id][1] == balances[account_id]
            elif account.keeps_history:
                assert balances[account_id] == (0, 0, 0, 0), "history account without snapshot"


# About 5 s on one core. Raise TIANPING_STATEFUL_EXAMPLES for a deeper (nightly) run; 3,000
# examples take under two minutes. No deadline and no size health checks: a step's cost depends
# on how much ledger it has built, which is the point, not a sign of a bad strategy.
LedgerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("TIANPING_STATEFUL_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestLedgerStateMachine = LedgerMachine.TestCase


# -- chain_segments --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    flags=st.lists(st.sampled_from([0, F.LINKED, F.PENDING, F.LINKED | F.PENDING]), max_size=30),
    data=st.data(),
)
def test_chain_segments_split_batches_at_unlinked_events_and_request_ends(
    flags: list[int],
    data: st.DataObject,
) -> None:
    """Segments tile the batch; each ends at an unlinked event, a request end or the batch end."""
    request_ends = data.draw(
        st.none() | st.lists(st.integers(0, max(len(flags) - 1, 0)), unique=True).map(sorted)
    )
    ends = set(request_ends or ()) if flags else set()
    segments = chain_segments(flags, F.LINKED, request_ends)

    position = 0
    for first, last, closed in segments:
        assert first == position <= last
        position = last + 1
        # Every event but the last of a segment is linked, and no segment spans a request end.
        assert all(flags[i] & F.LINKED for i in range(first, last))
        assert not ends.intersection(range(first, last))
        assert closed == (not flags[last] & F.LINKED)
        if not closed:
            assert last == len(flags) - 1 or last in ends
    assert position == len(flags)
    boundaries = {
        i for i, flag in enumerate(flags) if not flag & F.LINKED or i in ends or i == len(flags) - 1
    }
    assert [last for _, last, _ in segments] == sorted(boundaries)
