"""The pure double-entry engine: decide every event of a batch and plan its effects.

The engine does no I/O. The service layer prefetches, inside the write transaction, every record a
batch can touch (a `LedgerView`), hands it to `plan_transfers` or `plan_accounts` together with the
first ledger timestamp of the batch, and writes the returned plan. Because the plan is computed
against a snapshot taken under the ledger's write lock, the same engine is correct for one process
or many, and a crash before commit leaves nothing behind.

Semantics follow TigerBeetle's (anchors-ledger.md, section 1.1), extended with first-class
reversals: a transfer that names `reverses_id` moves money back along an earlier posted transfer,
never more in total than the original amount.

Checks are made in the order of `results.CREATE_TRANSFER_PRECEDENCE`; keep the two in step. Effects
are applied only after every check of an event has passed, so a failed event that is not part of a
linked chain needs no undo. Inside a linked chain the engine keeps an undo log and rolls the chain
back when one of its members fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.limits import (
    AMOUNT_MINOR_MAX,
    BALANCE_MINOR_MAX,
    CODE_MAX,
    CODE_MIN,
    ID_MAX,
    ID_MIN,
    METADATA_BYTES_MAX,
    OWNER_REFERENCE_LENGTH_MAX,
    TIMEOUT_SECONDS_MAX,
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
from tianping.ledger.results import CreateAccountResult, CreateTransferResult

CURRENCY_CODES = frozenset(ACTIVE_CURRENCIES)
_OWNER_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")

# Local aliases: the engine's inner loop reads these thousands of times per batch, and a module
# global is cheaper to load than an attribute of a class.
_LINKED = TransferFlags.LINKED
_PENDING = TransferFlags.PENDING
_POST = TransferFlags.POST_PENDING
_VOID = TransferFlags.VOID_PENDING
_RESOLVING = TransferFlags.RESOLVING
_TWO_PHASE = TransferFlags.TWO_PHASE
_BALANCING = TransferFlags.BALANCING
_BALANCING_DEBIT = TransferFlags.BALANCING_DEBIT
_BALANCING_CREDIT = TransferFlags.BALANCING_CREDIT
_TRANSFER_FLAGS_ALL = TransferFlags.ALL
_DEBITS_LIMITED = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
_CREDITS_LIMITED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
_HISTORY = AccountFlags.HISTORY
_CLOSED = AccountFlags.CLOSED

_R = CreateTransferResult
_OK = 0


@dataclass(slots=True)
class LedgerView:
    """The records one batch may consult, prefetched under the write lock.

    `transfers` holds the existing transfers whose ids the batch names (its own ids, pending ids
    and reversed ids); `resolutions` says how each referenced pending transfer ended, if it has;
    `reversed_amounts` is the total already reversed of each referenced original. The engine adds
    what the batch itself creates, so later events of the same batch see earlier ones.
    """

    accounts: dict[int, Account] = field(default_factory=dict)
    transfers: dict[int, Transfer] = field(default_factory=dict)
    resolutions: dict[int, str] = field(default_factory=dict)
    reversed_amounts: dict[int, int] = field(default_factory=dict)


BalanceSnapshot = tuple[int, int, int, int, int, int]
"""(account id, timestamp, debits_pending, debits_posted, credits_pending, credits_posted)."""


@dataclass(slots=True)
class TransferPlan:
    """What a transfer batch writes, in ledger-timestamp order."""

    results: list[int]
    transfers: list[Transfer] = field(default_factory=list)
    # (pending id, Resolution.*, timestamp) for posts, voids and expiries.
    resolutions: list[tuple[int, str, int]] = field(default_factory=list)
    accounts_changed: dict[int, Account] = field(default_factory=dict)
    snapshots: list[BalanceSnapshot] = field(default_factory=list)
    pending_opened: list[Transfer] = field(default_factory=list)
    pending_closed: list[int] = field(default_factory=list)
    last_timestamp: int = 0

    @property
    def writes_anything(self) -> bool:
        return bool(self.transfers or self.resolutions)


@dataclass(slots=True)
class AccountPlan:
    """What an account batch writes."""

    results: list[int]
    accounts: list[Account] = field(default_factory=list)
    last_timestamp: int = 0


def chain_segments(
    flags: Sequence[int], linked_bit: int, request_ends: Sequence[int] | None = None
) -> list[tuple[int, int, bool]]:
    """Split a batch into linked chains: (first index, last index, closed?) per chain.

    A chain runs from an event with the linked flag to the first following event without it. A
    chain still open at the end of the batch, or at the end of one client request inside a
    group-committed batch (`request_ends` holds each request's last index), is not closed: the
    engine fails it whole with `linked_event_chain_open`, because a client that forgot to close its
    chain did not mean to commit the events it holds.
    """
    ends = set(request_ends) if request_ends is not None else set()
    segments: list[tuple[int, int, bool]] = []
    start = 0
    count = len(flags)
    for index in range(count):
        if not flags[index] & linked_bit:
            segments.append((start, index, True))
            start = index + 1
        elif index == count - 1 or index in ends:
            segments.append((start, index, False))
            start = index + 1
    return segments


def _run_chains(
    flags: Sequence[int],
    linked_bit: int,
    request_ends: Sequence[int] | None,
    evaluate: Callable[[int], int],
    savepoint: Callable[[], object],
    rollback: Callable[[object], None],
    release: Callable[[], None],
    chain_open: int,
    chain_failed: int,
) -> list[int]:
    """Decide every event, honouring all-or-nothing linked chains.

    Events outside chains are evaluated in a tight loop without savepoints, because the engine
    applies an event's effects only after all its checks pass.
    """
    results = [_OK] * len(flags)
    has_links = any(flag & linked_bit for flag in flags)
    if not has_links:
        for index in range(len(flags)):
            results[index] = evaluate(index)
        return results
    for first, last, closed in chain_segments(flags, linked_bit, request_ends):
        if first == last and closed:
            results[first] = evaluate(first)
            continue
        if not closed:
            for index in range(first, last):
                results[index] = chain_failed
            results[last] = chain_open
            continue
        mark = savepoint()
        for index in range(first, last + 1):
            code = evaluate(index)
            if code != _OK:
                rollback(mark)
                for other in range(first, last + 1):
                    results[other] = chain_failed
                results[index] = code
                break
        else:
            release()
    return results


class _TransferBatch:
    """The mutable working state of one `plan_transfers` call."""

    __slots__ = ("chain_depth", "events", "first_timestamp", "plan", "undo", "view")

    def __init__(
        self,
        events: Sequence[NewTransfer],
        view: LedgerView,
        plan: TransferPlan,
        first_timestamp: int,
    ) -> None:
        self.events = events
        self.view = view
        self.plan = plan
        self.first_timestamp = first_timestamp
        # The undo log is kept only while a linked chain is being evaluated.
        self.undo: list[tuple[object, ...]] | None = None
        self.chain_depth = 0

    # -- linked-chain support ---------------------------------------------------------------

    def savepoint(self) -> object:
        self.undo = []
        plan = self.plan
        return (
            len(plan.transfers),
            len(plan.resolutions),
            len(plan.snapshots),
            len(plan.pending_opened),
            len(plan.pending_closed),
        )

    def rollback(self, mark: object) -> None:
        assert self.undo is not None
        view = self.view
        plan = self.plan
        for entry in reversed(self.undo):
            kind = entry[0]
            if kind == "balance":
                _, account, dp, dpo, cp, cpo = entry
                assert isinstance(account, Account)
                account.debits_pending = dp  # type: ignore[assignment]
                account.debits_posted = dpo  # type: ignore[assignment]
                account.credits_pending = cp  # type: ignore[assignment]
                account.credits_posted = cpo  # type: ignore[assignment]
            elif kind == "transfer":
                view.transfers.pop(entry[1], None)  # type: ignore[call-overload]
            elif kind == "resolution":
                view.resolutions.pop(entry[1], None)  # type: ignore[call-overload]
            elif kind == "reversed":
                _, original_id, previous = entry
                if previous is None:
                    view.reversed_amounts.pop(original_id, None)  # type: ignore[call-overload]
                else:
                    view.reversed_amounts[original_id] = previous  # type: ignore[index,assignment]
            elif kind == "changed":
                plan.accounts_changed.pop(entry[1], None)  # type: ignore[call-overload]
        assert isinstance(mark, tuple)
        transfers, resolutions, snapshots, opened, closed = mark
        del plan.transfers[transfers:]
        del plan.resolutions[resolutions:]
        del plan.snapshots[snapshots:]
        del plan.pending_opened[opened:]
        del plan.pending_closed[closed:]
        self.undo = None

    def release(self) -> None:
        """The chain committed: stop keeping an undo log until the next chain starts."""
        self.undo = None

    # -- the checks and effects of one event ---------------------------------------------

    def evaluate(self, index: int) -> int:
        event = self.events[index]
        timestamp = self.first_timestamp + index
        view = self.view
        flags = event.flags
        event_id = event.id

        # 1. The shape of the event, with nothing looked up.
        if type(event_id) is not int or not ID_MIN <= event_id <= ID_MAX:
            return _R.id_invalid
        if flags & ~_TRANSFER_FLAGS_ALL or flags < 0:
            return _R.flags_invalid
        two_phase = flags & _TWO_PHASE
        if two_phase & (two_phase - 1) or (flags & _BALANCING and flags & _RESOLVING):
            return _R.flags_are_mutually_exclusive
        reverses_id = event.reverses_id
        if reverses_id and flags & (_TWO_PHASE | _BALANCING):
            return _R.reversal_must_be_plain
        resolving = flags & _RESOLVING
        pending_id = event.pending_id
        if not resolving:
            if pending_id:
                return _R.pending_id_must_be_zero
        elif not pending_id:
            return _R.pending_id_required
        elif pending_id == event_id:
            return _R.pending_id_must_be_different
        timeout = event.timeout
        if timeout:
            if not flags & _PENDING:
                return _R.timeout_reserved_for_pending_transfer
            if timeout < 0 or timeout > TIMEOUT_SECONDS_MAX:
                return _R.timeout_exceeds_maximum
        defaults_allowed = resolving or reverses_id
        debit_id = event.debit_account_id
        credit_id = event.credit_account_id
        if debit_id == 0:
            if not defaults_allowed:
                return _R.debit_account_id_invalid
        elif not ID_MIN <= debit_id <= ID_MAX:
            return _R.debit_account_id_invalid
        if credit_id == 0:
            if not defaults_allowed:
                return _R.credit_account_id_invalid
        elif not ID_MIN <= credit_id <= ID_MAX:
            return _R.credit_account_id_invalid
        if debit_id and debit_id == credit_id:
            return _R.accounts_must_be_different
        amount = event.amount
        if amount < 0 or (amount == 0 and not defaults_allowed):
            return _R.amount_must_be_positive
        if amount > AMOUNT_MINOR_MAX:
            return _R.amount_exceeds_maximum
        code = event.code
        if code == 0:
            if not defaults_allowed:
                return _R.code_invalid
        elif not CODE_MIN <= code <= CODE_MAX:
            return _R.code_invalid
        currency = event.currency
        if currency:
            if currency not in CURRENCY_CODES:
                return _R.currency_invalid
        elif not defaults_allowed:
            return _R.currency_invalid
        metadata = event.metadata
        if metadata is not None and not _metadata_fits(metadata):
            return _R.metadata_invalid

        # 2. Idempotency: a replay answers before the present state of the ledger is consulted.
        transfers = view.transfers
        existing = transfers.get(event_id)
        if existing is not None:
            return _compare_with_existing(event, existing)

        # 3. What a post, void or reversal refers to; fill in the fields it lets the client omit.
        pending: Transfer | None = None
        original: Transfer | None = None
        if resolving:
            pending = transfers.get(pending_id)
            if pending is None:
                return _R.pending_transfer_not_found
            if not pending.flags & _PENDING:
                return _R.pending_transfer_not_pending
            if debit_id and debit_id != pending.debit_account_id:
                return _R.pending_transfer_has_different_debit_account_id
            if credit_id and credit_id != pending.credit_account_id:
                return _R.pending_transfer_has_different_credit_account_id
            if currency and currency != pending.currency:
                return _R.pending_transfer_has_different_currency
            if code and code != pending.code:
                return _R.pending_transfer_has_different_code
            if flags & _VOID and amount and amount != pending.amount:
                return _R.pending_transfer_has_different_amount
            if amount > pending.amount:
                return _R.exceeds_pending_transfer_amount
            state = view.resolutions.get(pending_id)
            if state is not None:
                if state == Resolution.POSTED:
                    return _R.pending_transfer_already_posted
                if state == Resolution.VOIDED:
                    return _R.pending_transfer_already_voided
                return _R.pending_transfer_expired
            expires_at = pending.expires_at
            if expires_at and expires_at <= timestamp:
                return _R.pending_transfer_expired
            debit_id = pending.debit_account_id
            credit_id = pending.credit_account_id
            currency = pending.currency
            code = pending.code
            if flags & _VOID or amount == 0:
                amount = pending.amount
        elif reverses_id:
            original = transfers.get(reverses_id)
            if original is None:
                return _R.reversal_target_not_found
            if not original.posts_balance:
                return _R.reversal_target_not_posted
            if (debit_id and debit_id != original.credit_account_id) or (
                credit_id and credit_id != original.debit_account_id
            ):
                return _R.reversal_must_swap_accounts
            if currency and currency != original.currency:
                return _R.reversal_has_different_currency
            remaining = original.amount - view.reversed_amounts.get(reverses_id, 0)
            if amount == 0:
                amount = remaining
            if remaining == 0 or amount > remaining:
                return _R.reversal_exceeds_original
            debit_id = original.credit_account_id
            credit_id = original.debit_account_id
            currency = original.currency
            if code == 0:
                code = original.code

        # 4. The accounts.
        accounts = view.accounts
        debit = accounts.get(debit_id)
        if debit is None:
            return _R.debit_account_not_found
        credit = accounts.get(credit_id)
        if credit is None:
            return _R.credit_account_not_found
        if debit.currency != credit.currency:
            return _R.accounts_must_have_the_same_currency
        if currency != debit.currency:
            return _R.transfer_currency_must_match_accounts
        if not flags & _VOID:
            if debit.flags & _CLOSED:
                return _R.debit_account_closed
            if credit.flags & _CLOSED:
                return _R.credit_account_closed

        # 5. Balances. Balancing transfers move at most what the limit leaves available.
        if flags & _BALANCING:
            if flags & _BALANCING_DEBIT:
                available = debit.credits_posted - debit.debits_pending - debit.debits_posted
                amount = min(amount, max(available, 0))
                if amount == 0:
                    return _R.exceeds_credits
            if flags & _BALANCING_CREDIT:
                available = credit.debits_posted - credit.credits_pending - credit.credits_posted
                amount = min(amount, max(available, 0))
                if amount == 0:
                    return _R.exceeds_debits

        debit_pending = debit.debits_pending
        debit_posted = debit.debits_posted
        credit_pending = credit.credits_pending
        credit_posted = credit.credits_posted
        if flags & _PENDING:
            if debit_pending + amount > BALANCE_MINOR_MAX:
                return _R.overflows_debits_pending
            if credit_pending + amount > BALANCE_MINOR_MAX:
                return _R.overflows_credits_pending
            debit_pending += amount
            credit_pending += amount
        elif resolving:
            assert pending is not None
            debit_pending -= pending.amount
            credit_pending -= pending.amount
            if flags & _POST:
                if debit_posted + amount > BALANCE_MINOR_MAX:
                    return _R.overflows_debits_posted
                if credit_posted + amount > BALANCE_MINOR_MAX:
                    return _R.overflows_credits_posted
                debit_posted += amount
                credit_posted += amount
        else:
            if debit_posted + amount > BALANCE_MINOR_MAX:
                return _R.overflows_debits_posted
            if credit_posted + amount > BALANCE_MINOR_MAX:
                return _R.overflows_credits_posted
            debit_posted += amount
            credit_posted += amount
        # Posting or voiding releases a hold and never raises exposure, so only new holds and
        # new postings are held against the flags' limits.
        if not resolving:
            if (
                debit.flags & _DEBITS_LIMITED
                and debit_pending + debit_posted > debit.credits_posted
            ):
                return _R.exceeds_credits
            if (
                credit.flags & _CREDITS_LIMITED
                and credit_pending + credit_posted > credit.debits_posted
            ):
                return _R.exceeds_debits

        # 6. Every check passed: apply.
        transfer = Transfer(
            event_id,
            debit_id,
            credit_id,
            amount,
            currency,
            code,
            flags,
            pending_id,
            reverses_id,
            timeout,
            metadata,
            timestamp,
        )
        plan = self.plan
        undo = self.undo
        if undo is not None:
            undo.append(
                (
                    "balance",
                    debit,
                    debit.debits_pending,
                    debit.debits_posted,
                    debit.credits_pending,
                    debit.credits_posted,
                )
            )
            undo.append(
                (
                    "balance",
                    credit,
                    credit.debits_pending,
                    credit.debits_posted,
                    credit.credits_pending,
                    credit.credits_posted,
                )
            )
            undo.append(("transfer", event_id))
            if debit_id not in plan.accounts_changed:
                undo.append(("changed", debit_id))
            if credit_id not in plan.accounts_changed:
                undo.append(("changed", credit_id))
        debit.debits_pending = debit_pending
        debit.debits_posted = debit_posted
        credit.credits_pending = credit_pending
        credit.credits_posted = credit_posted
        transfers[event_id] = transfer
        plan.transfers.append(transfer)
        changed = plan.accounts_changed
        changed[debit_id] = debit
        changed[credit_id] = credit
        if flags & _PENDING:
            plan.pending_opened.append(transfer)
        elif resolving:
            kind = Resolution.POSTED if flags & _POST else Resolution.VOIDED
            if undo is not None:
                undo.append(("resolution", pending_id))
            view.resolutions[pending_id] = kind
            plan.resolutions.append((pending_id, kind, timestamp))
            plan.pending_closed.append(pending_id)
        elif reverses_id:
            previous = view.reversed_amounts.get(reverses_id)
            if undo is not None:
                undo.append(("reversed", reverses_id, previous))
            view.reversed_amounts[reverses_id] = (previous or 0) + amount
        if debit.flags & _HISTORY:
            plan.snapshots.append(
                (
                    debit_id,
                    timestamp,
                    debit.debits_pending,
                    debit.debits_posted,
                    debit.credits_pending,
                    debit.credits_posted,
                )
            )
        if credit.flags & _HISTORY:
            plan.snapshots.append(
                (
                    credit_id,
                    timestamp,
                    credit.debits_pending,
                    credit.debits_posted,
                    credit.credits_pending,
                    credit.credits_posted,
                )
            )
        return _OK


def _metadata_fits(metadata: str) -> bool:
    """Whether metadata is non-empty, valid UTF-8 text (no lone surrogates) and small enough."""
    try:
        size = len(metadata.encode())
    except UnicodeEncodeError:
        return False
    return 0 < size <= METADATA_BYTES_MAX


def _compare_with_existing(event: NewTransfer, existing: Transfer) -> int:
    """Tell a faithful replay (`exists`) from a different event reusing an id.

    Fields the client may omit on a post, void or reversal match when omitted. A balancing
    transfer stores the amount actually moved, which is at most the amount asked for.
    """
    flags = event.flags
    defaults_allowed = flags & _RESOLVING or event.reverses_id
    same = (
        flags == existing.flags
        and event.pending_id == existing.pending_id
        and event.reverses_id == existing.reverses_id
        and event.timeout == existing.timeout
        and event.metadata == existing.metadata
        and _matches(event.debit_account_id, existing.debit_account_id, defaults_allowed)
        and _matches(event.credit_account_id, existing.credit_account_id, defaults_allowed)
        and _matches(event.code, existing.code, defaults_allowed)
        and (event.currency == existing.currency or (not event.currency and defaults_allowed))
    )
    if same:
        if flags & _BALANCING:
            same = event.amount >= existing.amount
        else:
            same = _matches(event.amount, existing.amount, defaults_allowed)
    return _R.exists if same else _R.exists_with_different_fields


def _matches(given: int, stored: int, omission_allowed: object) -> bool:
    return given == stored or (given == 0 and bool(omission_allowed))


def plan_transfers(
    events: Sequence[NewTransfer],
    view: LedgerView,
    first_timestamp: int,
    expiring: Sequence[Transfer] = (),
    request_ends: Sequence[int] | None = None,
) -> TransferPlan:
    """Decide a batch of transfers against `view` and return what to write.

    `expiring` lists unresolved pending transfers whose timeout has passed; they are voided first,
    each taking one timestamp, so that expiry happens at a deterministic point of ledger time. The
    events then take the following timestamps, one each whether or not they succeed, which keeps
    every event's timestamp independent of the outcome of the others.
    """
    plan = TransferPlan(results=[])
    timestamp = first_timestamp
    for pending in expiring:
        _expire(pending, view, plan, timestamp)
        timestamp += 1
    batch = _TransferBatch(events, view, plan, timestamp)
    plan.results = _run_chains(
        [event.flags for event in events],
        _LINKED,
        request_ends,
        batch.evaluate,
        batch.savepoint,
        batch.rollback,
        batch.release,
        _R.linked_event_chain_open,
        _R.linked_event_failed,
    )
    plan.last_timestamp = timestamp + len(events) - 1
    return plan


def _expire(pending: Transfer, view: LedgerView, plan: TransferPlan, timestamp: int) -> None:
    """Release the hold of a pending transfer whose timeout has passed."""
    assert pending.flags & _PENDING and pending.id not in view.resolutions
    debit = view.accounts[pending.debit_account_id]
    credit = view.accounts[pending.credit_account_id]
    debit.debits_pending -= pending.amount
    credit.credits_pending -= pending.amount
    assert debit.debits_pending >= 0 and credit.credits_pending >= 0
    view.resolutions[pending.id] = Resolution.EXPIRED
    plan.resolutions.append((pending.id, Resolution.EXPIRED, timestamp))
    plan.pending_closed.append(pending.id)
    plan.accounts_changed[debit.id] = debit
    plan.accounts_changed[credit.id] = credit
    for account in (debit, credit):
        if account.flags & _HISTORY:
            plan.snapshots.append(
                (
                    account.id,
                    timestamp,
                    account.debits_pending,
                    account.debits_posted,
                    account.credits_pending,
                    account.credits_posted,
                )
            )


# -- accounts ------------------------------------------------------------------------------

_A = CreateAccountResult
_ACCOUNT_CREATE_FLAGS = AccountFlags.ALL & ~AccountFlags.CLOSED


def plan_accounts(
    events: Sequence[NewAccount],
    existing: dict[int, Account],
    first_timestamp: int,
    request_ends: Sequence[int] | None = None,
) -> AccountPlan:
    """Decide a batch of new accounts against the existing ones with the same ids."""
    plan = AccountPlan(results=[])
    created: list[Account] = plan.accounts

    def evaluate(index: int) -> int:
        event = events[index]
        code = _check_new_account(event, existing)
        if code != _OK:
            return code
        account = Account(
            id=event.id,
            currency=event.currency,
            code=event.code,
            flags=event.flags & AccountFlags.STORED,
            owner=event.owner,
            timestamp=first_timestamp + index,
        )
        existing[event.id] = account
        created.append(account)
        return _OK

    def savepoint() -> object:
        return len(created)

    def rollback(mark: object) -> None:
        assert isinstance(mark, int)
        for account in created[mark:]:
            del existing[account.id]
        del created[mark:]

    plan.results = _run_chains(
        [event.flags for event in events],
        AccountFlags.LINKED,
        request_ends,
        evaluate,
        savepoint,
        rollback,
        _release_nothing,
        _A.linked_event_chain_open,
        _A.linked_event_failed,
    )
    plan.last_timestamp = first_timestamp + len(events) - 1
    return plan


def _release_nothing() -> None:
    """Accounts keep no undo log beyond the savepoint mark, so a committed chain frees nothing."""


def _check_new_account(event: NewAccount, existing: dict[int, Account]) -> int:
    if type(event.id) is not int or not ID_MIN <= event.id <= ID_MAX:
        return _A.id_invalid
    flags = event.flags
    if flags < 0 or flags & ~_ACCOUNT_CREATE_FLAGS:
        return _A.flags_invalid
    if flags & _DEBITS_LIMITED and flags & _CREDITS_LIMITED:
        return _A.flags_are_mutually_exclusive
    if event.currency not in CURRENCY_CODES:
        return _A.currency_invalid
    if type(event.code) is not int or not CODE_MIN <= event.code <= CODE_MAX:
        return _A.code_invalid
    owner = event.owner
    if len(owner) > OWNER_REFERENCE_LENGTH_MAX or not _OWNER_CHARACTERS.issuperset(owner):
        return _A.owner_reference_invalid
    account = existing.get(event.id)
    if account is not None:
        same = (
            account.currency == event.currency
            and account.code == event.code
            and account.flags & ~_CLOSED == flags & AccountFlags.STORED
            and account.owner == owner
        )
        return _A.exists if same else _A.exists_with_different_fields
    return _OK
