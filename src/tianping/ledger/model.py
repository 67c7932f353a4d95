"""The ledger's records: accounts, transfers and the events that create them.

The semantics follow TigerBeetle (see `../shared/reference/anchors-ledger.md`): an account holds
four balance fields that only transfers move; a transfer debits one account and credits another in
the same currency; corrections are new transfers, never edits. Flags are plain integers rather than
`enum.IntFlag` because the engine tests them once per event on the hot path, where an `IntFlag`
operation costs several times a bit test on an `int`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class AccountFlags:
    """Bits of `Account.flags`."""

    LINKED = 1
    DEBITS_MUST_NOT_EXCEED_CREDITS = 2
    CREDITS_MUST_NOT_EXCEED_DEBITS = 4
    HISTORY = 8
    # State rather than configuration: set and cleared by `close_account` / `reopen_account`,
    # refused in `create_accounts`.
    CLOSED = 16

    NAMES: ClassVar[dict[str, int]] = {
        "linked": LINKED,
        "debits_must_not_exceed_credits": DEBITS_MUST_NOT_EXCEED_CREDITS,
        "credits_must_not_exceed_debits": CREDITS_MUST_NOT_EXCEED_DEBITS,
        "history": HISTORY,
        "closed": CLOSED,
    }
    ALL = (
        LINKED | DEBITS_MUST_NOT_EXCEED_CREDITS | CREDITS_MUST_NOT_EXCEED_DEBITS | HISTORY | CLOSED
    )
    # The linked bit describes the creating batch, not the account, so it is not stored.
    STORED = DEBITS_MUST_NOT_EXCEED_CREDITS | CREDITS_MUST_NOT_EXCEED_DEBITS | HISTORY | CLOSED


class TransferFlags:
    """Bits of `Transfer.flags`."""

    LINKED = 1
    PENDING = 2
    POST_PENDING = 4
    VOID_PENDING = 8
    BALANCING_DEBIT = 16
    BALANCING_CREDIT = 32

    NAMES: ClassVar[dict[str, int]] = {
        "linked": LINKED,
        "pending": PENDING,
        "post_pending": POST_PENDING,
        "void_pending": VOID_PENDING,
        "balancing_debit": BALANCING_DEBIT,
        "balancing_credit": BALANCING_CREDIT,
    }
    ALL = LINKED | PENDING | POST_PENDING | VOID_PENDING | BALANCING_DEBIT | BALANCING_CREDIT
    # The two-phase roles exclude each other: an event creates a hold, posts one or voids one.
    TWO_PHASE = PENDING | POST_PENDING | VOID_PENDING
    RESOLVING = POST_PENDING | VOID_PENDING
    BALANCING = BALANCING_DEBIT | BALANCING_CREDIT


def flag_names(flags: int, names: dict[str, int]) -> list[str]:
    """Spell a flag word as the list of its set flag names, in declaration order."""
    return [name for name, bit in names.items() if flags & bit]


def flags_from_names(selected: list[str] | tuple[str, ...], names: dict[str, int]) -> int:
    """Build a flag word from flag names; unknown names raise `ValueError` naming them."""
    unknown = [name for name in selected if name not in names]
    if unknown:
        raise ValueError(f"unknown flag(s): {', '.join(sorted(unknown))}")
    word = 0
    for name in selected:
        word |= names[name]
    return word


class Resolution:
    """How a pending transfer ended. Stored as text in `pending_resolutions.kind`."""

    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(slots=True)
class NewAccount:
    """A request to create an account. Everything but `id`, `currency` and `code` is optional."""

    id: int
    currency: str
    code: int
    flags: int = 0
    owner: str = ""


@dataclass(slots=True)
class Account:
    """An account as stored: immutable fields, four balances and the closed state."""

    id: int
    currency: str
    code: int
    flags: int
    owner: str
    timestamp: int
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def closed(self) -> bool:
        return bool(self.flags & AccountFlags.CLOSED)

    @property
    def keeps_history(self) -> bool:
        return bool(self.flags & AccountFlags.HISTORY)


@dataclass(slots=True)
class Balances:
    """An account's four balances as they stand now: what a wallet shows, without the fields
    an account never changes."""

    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


@dataclass(slots=True)
class NewTransfer:
    """A request to move money. Zero means "not given" for every optional integer field.

    For `post_pending` and `void_pending`, accounts, currency, code and amount may be left zero
    (or empty) and are then taken from the pending transfer; a zero amount on a post means "the
    whole pending amount". For a reversal (`reverses_id` set), accounts may be left zero and are
    then the original's swapped, and a zero amount means "whatever has not been reversed yet".
    """

    id: int
    debit_account_id: int = 0
    credit_account_id: int = 0
    amount: int = 0
    currency: str = ""
    code: int = 0
    flags: int = 0
    pending_id: int = 0
    reverses_id: int = 0
    timeout: int = 0
    metadata: str | None = None


@dataclass(slots=True)
class Transfer:
    """A transfer as stored. Every field is final; the row is never updated or deleted."""

    id: int
    debit_account_id: int
    credit_account_id: int
    amount: int
    currency: str
    code: int
    flags: int
    pending_id: int
    reverses_id: int
    timeout: int
    metadata: str | None
    timestamp: int

    @property
    def expires_at(self) -> int:
        """The ledger time (ns) at which an unresolved pending transfer is voided; 0 = never."""
        if self.flags & TransferFlags.PENDING and self.timeout:
            return self.timestamp + self.timeout * 1_000_000_000
        return 0

    @property
    def posts_balance(self) -> bool:
        """Whether this row moved posted balances (plain transfers, posts and reversals)."""
        return not self.flags & (TransferFlags.PENDING | TransferFlags.VOID_PENDING)


@dataclass(slots=True, frozen=True)
class AccountBalance:
    """An account's four balances as they stood right after the transfer at `timestamp`."""

    timestamp: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
