"""Table-driven unit tests of the pure transfer engine (`plan_transfers`), with no database.

Every case runs against a fresh copy of one seeded `LedgerView` (`seeded_view`). Besides the
expected result codes, every table case checks that the plan moved balances by exactly what its
accepted transfers imply, so a refused event provably leaves balances untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

from tianping.ledger.engine import LedgerView, TransferPlan, chain_segments, plan_transfers
from tianping.ledger.limits import (
    AMOUNT_MINOR_MAX,
    BALANCE_MINOR_MAX,
    CODE_MAX,
    ID_MAX,
    ID_MIN,
    METADATA_BYTES_MAX,
    TIMEOUT_SECONDS_MAX,
)
from tianping.ledger.model import (
    Account,
    AccountFlags,
    NewTransfer,
    Resolution,
    Transfer,
    TransferFlags,
)
from tianping.ledger.results import CREATE_TRANSFER_PRECEDENCE, CreateTransferResult

R = CreateTransferResult
F = TransferFlags
SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND  # first ledger timestamp of the batch under test
NEAR_MAX = BALANCE_MINOR_MAX - 5

# Codes no event can produce through `plan_transfers`. Every code is reachable today; a code may
# only be listed here together with a comment proving why the engine can never return it.
UNREACHABLE: frozenset[CreateTransferResult] = frozenset()

# -- the seeded ledger -------------------------------------------------------------------------

ACCOUNTS = {
    # id: (currency, flags, preset balances (dp, dpo, cp, cpo) added to what seeded transfers move)
    1: ("USD", 0, (0, 0, 0, 0)),
    2: ("USD", 0, (0, 0, 0, 0)),
    3: ("USD", AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, (0, 0, 0, 100)),
    4: ("USD", AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS, (0, 100, 0, 0)),
    5: ("EUR", 0, (0, 0, 0, 0)),
    6: ("USD", AccountFlags.CLOSED, (0, 0, 0, 0)),
    7: ("USD", 0, (NEAR_MAX, NEAR_MAX, NEAR_MAX, NEAR_MAX)),
    8: ("EUR", 0, (0, 0, 0, 0)),
    9: ("USD", AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, (0, NEAR_MAX, 0, BALANCE_MINOR_MAX)),
    10: ("USD", AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS, (0, 0, NEAR_MAX, 0)),
    11: ("USD", AccountFlags.HISTORY, (0, 0, 0, 0)),
    12: ("USD", 0, (0, 0, 0, 40)),
    14: ("USD", AccountFlags.CLOSED, (0, 0, 0, 0)),
    16: ("USD", 0, (NEAR_MAX, NEAR_MAX, NEAR_MAX, NEAR_MAX)),
    ID_MAX: ("USD", 0, (0, 0, 0, 0)),
}


def _seed(
    transfer_id: int,
    debit: int,
    credit: int,
    amount: int,
    *,
    flags: int = 0,
    pending_id: int = 0,
    reverses_id: int = 0,
    timeout: int = 0,
    currency: str = "USD",
    timestamp: int,
) -> Transfer:
    return Transfer(
        transfer_id,
        debit,
        credit,
        amount,
        currency,
        7,
        flags,
        pending_id,
        reverses_id,
        timeout,
        None,
        timestamp,
    )


SEEDED = [
    _seed(100, 1, 2, 50, timestamp=T0 - 100),  # plain
    _seed(101, 1, 2, 30, flags=F.PENDING, timestamp=T0 - 99),  # open hold
    _seed(102, 1, 2, 20, flags=F.PENDING, timestamp=T0 - 98),  # posted below
    _seed(103, 1, 2, 10, flags=F.PENDING, timestamp=T0 - 97),  # voided below
    _seed(104, 1, 2, 40, flags=F.PENDING, timeout=10, timestamp=T0 - 5 * SECOND),  # T0 + 5 s
    _seed(105, 1, 2, 15, flags=F.PENDING, timeout=1, timestamp=T0 - 2 * SECOND),  # due T0 - 1 s
    _seed(106, 1, 2, 25, flags=F.PENDING, timeout=1, timestamp=T0 - 50 * SECOND),  # expired
    _seed(107, 6, 1, 12, flags=F.PENDING, timestamp=T0 - 96),  # from closed 6
    _seed(108, 6, 1, 5, timestamp=T0 - 95),  # from closed 6
    _seed(109, 5, 8, 60, currency="EUR", timestamp=T0 - 94),
    _seed(110, 1, 2, 20, flags=F.POST_PENDING, pending_id=102, timestamp=T0 - 93),
    _seed(111, 1, 2, 10, flags=F.VOID_PENDING, pending_id=103, timestamp=T0 - 92),
    _seed(112, 1, 6, 9, flags=F.PENDING, timestamp=T0 - 91),  # to closed 6
    _seed(113, 6, 1, 4, flags=F.PENDING, timeout=1, timestamp=T0 - 2 * SECOND),  # due, closed
]
RESOLUTIONS = {102: Resolution.POSTED, 103: Resolution.VOIDED, 106: Resolution.EXPIRED}


def _apply_effect(
    accounts: dict[int, Account], transfer: Transfer, transfers: dict[int, Transfer]
) -> None:
    """Move balances as one stored transfer implies, from first principles."""
    debit = accounts[transfer.debit_account_id]
    credit = accounts[transfer.credit_account_id]
    if transfer.flags & F.PENDING:
        debit.debits_pending += transfer.amount
        credit.credits_pending += transfer.amount
        return
    if transfer.flags & (F.POST_PENDING | F.VOID_PENDING):
        held = transfers[transfer.pending_id].amount
        debit.debits_pending -= held
        credit.credits_pending -= held
        if transfer.flags & F.VOID_PENDING:
            return
    debit.debits_posted += transfer.amount
    credit.credits_posted += transfer.amount


def seeded_view() -> LedgerView:
    """A fresh view: the accounts above, with balances consistent with the seeded transfers."""
    accounts = {
        account_id: Account(account_id, currency, 1, flags, "", 1, *preset)
        for account_id, (currency, flags, preset) in ACCOUNTS.items()
    }
    transfers = {transfer.id: copy.copy(transfer) for transfer in SEEDED}
    for transfer in SEEDED:
        if RESOLUTIONS.get(transfer.id) == Resolution.EXPIRED:
            continue  # its hold was released when it expired
        _apply_effect(accounts, transfer, transfers)
    return LedgerView(
        accounts=accounts, transfers=transfers, resolutions=dict(RESOLUTIONS), reversed_amounts={}
    )


def balances(view: LedgerView) -> dict[int, tuple[int, int, int, int]]:
    return {
        account.id: (
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        )
        for account in view.accounts.values()
    }


def run(
    events: list[NewTransfer],
    view: LedgerView | None = None,
    first: int = T0,
    expiring: tuple[Transfer, ...] = (),
    request_ends: list[int] | None = None,
) -> tuple[TransferPlan, LedgerView]:
    view = seeded_view() if view is None else view
    return plan_transfers(events, view, first, list(expiring), request_ends), view


def plain(
    transfer_id: int = 500,
    debit: int = 1,
    credit: int = 2,
    amount: int = 10,
    *,
    flags: int = 0,
    currency: str = "USD",
    code: int = 7,
    **fields: object,
) -> NewTransfer:
    return NewTransfer(transfer_id, debit, credit, amount, currency, code, flags, **fields)  # type: ignore[arg-type]


def pending(
    transfer_id: int = 500, debit: int = 1, credit: int = 2, amount: int = 10, **fields: object
) -> NewTransfer:
    flags = F.PENDING | int(fields.pop("flags", 0))  # type: ignore[call-overload]
    return plain(transfer_id, debit, credit, amount, flags=flags, **fields)


def post(transfer_id: int, pending_id: int, amount: int = 0, **fields: object) -> NewTransfer:
    flags = F.POST_PENDING | int(fields.pop("flags", 0))  # type: ignore[call-overload]
    return NewTransfer(transfer_id, amount=amount, flags=flags, pending_id=pending_id, **fields)  # type: ignore[arg-type]


def void(transfer_id: int, pending_id: int, amount: int = 0, **fields: object) -> NewTransfer:
    flags = F.VOID_PENDING | int(fields.pop("flags", 0))  # type: ignore[call-overload]
    return NewTransfer(transfer_id, amount=amount, flags=flags, pending_id=pending_id, **fields)  # type: ignore[arg-type]


def reverse(transfer_id: int, reverses_id: int, amount: int = 0, **fields: object) -> NewTransfer:
    return NewTransfer(transfer_id, amount=amount, reverses_id=reverses_id, **fields)  # type: ignore[arg-type]


def expected_balances(
    before: dict[int, tuple[int, int, int, int]], plan: TransferPlan, view: LedgerView
) -> dict[int, tuple[int, int, int, int]]:
    """Balances `before` moved by exactly the plan's expiries and accepted transfers."""
    accounts = {
        account_id: Account(account_id, "", 0, 0, "", 0, *values)
        for account_id, values in before.items()
    }
    for pending_id, kind, _ in plan.resolutions:
        if kind == Resolution.EXPIRED:
            held = view.transfers[pending_id]
            accounts[held.debit_account_id].debits_pending -= held.amount
            accounts[held.credit_account_id].credits_pending -= held.amount
    for transfer in plan.transfers:
        _apply_effect(accounts, transfer, view.transfers)
    return {
        account_id: (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
        for account_id, a in accounts.items()
    }


# -- the table -------------------------------------------------------------------------------

LONG_OK = "x" * METADATA_BYTES_MAX
LONG_BAD = "x" * (METADATA_BYTES_MAX + 1)
WIDE_BAD = "\u20ac" * 342  # 342 characters, 1026 bytes: the limit is on bytes


@dataclass
class Case:
    name: str
    events: list[NewTransfer]
    expected: list[CreateTransferResult]
    first: int = T0
    request_ends: list[int] | None = None


CASES: list[Case] = [
    # ok, and every boundary that is exactly at a limit
    Case("plain-ok", [plain()], [R.ok]),
    Case("pending-ok-with-timeout", [pending(timeout=30)], [R.ok]),
    Case("post-full", [post(500, 101)], [R.ok]),
    Case("post-partial", [post(500, 101, 12)], [R.ok]),
    Case(
        "post-explicit-fields",
        [post(500, 101, 30, debit_account_id=1, credit_account_id=2, currency="USD", code=7)],
        [R.ok],
    ),
    Case("void", [void(500, 101)], [R.ok]),
    Case("void-with-exact-amount", [void(500, 101, 30)], [R.ok]),
    Case("void-from-closed-account", [void(500, 107)], [R.ok]),
    Case("void-to-closed-account", [void(500, 112)], [R.ok]),
    Case("reversal-full", [reverse(500, 100)], [R.ok]),
    Case(
        "reversal-explicit-swapped",
        [reverse(500, 100, 50, debit_account_id=2, credit_account_id=1, currency="USD")],
        [R.ok],
    ),
    Case("reversal-of-a-post", [reverse(500, 110)], [R.ok]),
    Case("balancing-debit", [plain(debit=3, amount=1_000, flags=F.BALANCING_DEBIT)], [R.ok]),
    Case("amount-at-max", [plain(amount=AMOUNT_MINOR_MAX)], [R.ok]),
    Case("timeout-at-max", [pending(timeout=TIMEOUT_SECONDS_MAX)], [R.ok]),
    Case("id-min", [plain(ID_MIN)], [R.ok]),
    Case("id-max", [plain(ID_MAX)], [R.ok]),
    Case("account-id-max", [plain(credit=ID_MAX)], [R.ok]),
    Case("code-min-and-max", [plain(500, code=1), plain(501, code=CODE_MAX)], [R.ok, R.ok]),
    Case("metadata-at-max-bytes", [plain(metadata=LONG_OK)], [R.ok]),
    Case("metadata-unicode", [plain(metadata='{"n":"\u5929\u5e73|x"}')], [R.ok]),
    Case("debits-exactly-at-credits", [plain(debit=3, amount=100)], [R.ok]),
    Case("pending-exactly-at-credits", [pending(debit=3, amount=100)], [R.ok]),
    Case("credits-exactly-at-debits", [plain(credit=4, amount=100)], [R.ok]),
    Case("debits-posted-reach-max", [plain(debit=7, amount=5)], [R.ok]),
    Case("credits-posted-reach-max", [plain(credit=7, amount=5)], [R.ok]),
    Case("debits-pending-reach-max", [pending(debit=7, amount=5)], [R.ok]),
    Case("credits-pending-reach-max", [pending(credit=7, amount=5)], [R.ok]),
    Case("post-just-before-expiry", [post(500, 104)], [R.ok], first=T0 + 5 * SECOND - 1),
    # linked chains
    Case("chain-ok", [plain(500, flags=F.LINKED), plain(501)], [R.ok, R.ok]),
    Case(
        "chain-member-fails",
        [plain(500, flags=F.LINKED), plain(501, amount=0)],
        [R.linked_event_failed, R.amount_must_be_positive],
    ),
    Case(
        "chain-open-at-batch-end",
        [plain(500, flags=F.LINKED), plain(501, flags=F.LINKED)],
        [R.linked_event_failed, R.linked_event_chain_open],
    ),
    Case(
        "chain-open-at-request-end",
        [plain(500, flags=F.LINKED), plain(501, flags=F.LINKED), plain(502)],
        [R.linked_event_failed, R.linked_event_chain_open, R.ok],
        request_ends=[1, 2],
    ),
    # the shape of the event
    Case("id-zero", [plain(0)], [R.id_invalid]),
    Case("id-over-max", [plain(ID_MAX + 1)], [R.id_invalid]),
    Case("id-negative", [plain(-1)], [R.id_invalid]),
    Case("flags-unknown-bit", [plain(flags=64)], [R.flags_invalid]),
    Case("flags-negative", [plain(flags=-2)], [R.flags_invalid]),  # -1 would set `linked`
    Case(
        "pending-and-post",
        [plain(flags=F.PENDING | F.POST_PENDING, pending_id=101)],
        [R.flags_are_mutually_exclusive],
    ),
    Case("post-and-void", [post(500, 101, flags=F.VOID_PENDING)], [R.flags_are_mutually_exclusive]),
    Case(
        "balancing-void",
        [void(500, 101, flags=F.BALANCING_DEBIT)],
        [R.flags_are_mutually_exclusive],
    ),
    Case("reversal-pending", [pending(reverses_id=100)], [R.reversal_must_be_plain]),
    Case(
        "reversal-balancing",
        [plain(debit=2, credit=1, reverses_id=100, flags=F.BALANCING_CREDIT)],
        [R.reversal_must_be_plain],
    ),
    Case("plain-with-pending-id", [plain(pending_id=101)], [R.pending_id_must_be_zero]),
    Case("pending-with-pending-id", [pending(pending_id=101)], [R.pending_id_must_be_zero]),
    Case("post-without-pending-id", [post(500, 0)], [R.pending_id_required]),
    Case("post-of-itself", [post(500, 500)], [R.pending_id_must_be_different]),
    Case("plain-with-timeout", [plain(timeout=5)], [R.timeout_reserved_for_pending_transfer]),
    Case(
        "post-with-timeout", [post(500, 101, timeout=5)], [R.timeout_reserved_for_pending_transfer]
    ),
    Case(
        "timeout-over-max", [pending(timeout=TIMEOUT_SECONDS_MAX + 1)], [R.timeout_exceeds_maximum]
    ),
    Case("timeout-negative", [pending(timeout=-1)], [R.timeout_exceeds_maximum]),
    Case("debit-id-zero", [plain(debit=0)], [R.debit_account_id_invalid]),
    Case("debit-id-over-max", [plain(debit=ID_MAX + 1)], [R.debit_account_id_invalid]),
    Case(
        "post-debit-id-negative",
        [post(500, 101, debit_account_id=-1)],
        [R.debit_account_id_invalid],
    ),
    Case("credit-id-zero", [plain(credit=0)], [R.credit_account_id_invalid]),
    Case("credit-id-over-max", [plain(credit=ID_MAX + 1)], [R.credit_account_id_invalid]),
    Case("same-accounts", [plain(debit=1, credit=1)], [R.accounts_must_be_different]),
    Case("amount-zero", [plain(amount=0)], [R.amount_must_be_positive]),
    Case("amount-negative", [plain(amount=-5)], [R.amount_must_be_positive]),
    Case("pending-amount-zero", [pending(amount=0)], [R.amount_must_be_positive]),
    Case("amount-over-max", [plain(amount=AMOUNT_MINOR_MAX + 1)], [R.amount_exceeds_maximum]),
    Case(
        "post-amount-over-max", [post(500, 101, AMOUNT_MINOR_MAX + 1)], [R.amount_exceeds_maximum]
    ),
    Case("code-zero", [plain(code=0)], [R.code_invalid]),
    Case("code-over-max", [plain(code=CODE_MAX + 1)], [R.code_invalid]),
    Case("code-negative", [post(500, 101, code=-1)], [R.code_invalid]),
    Case("currency-empty", [plain(currency="")], [R.currency_invalid]),
    Case("currency-unknown", [plain(currency="XXX")], [R.currency_invalid]),
    Case("currency-lowercase", [plain(currency="usd")], [R.currency_invalid]),
    Case("currency-without-minor-unit", [plain(currency="XAU")], [R.currency_invalid]),
    Case("metadata-empty", [plain(metadata="")], [R.metadata_invalid]),
    Case("metadata-over-max", [plain(metadata=LONG_BAD)], [R.metadata_invalid]),
    Case("metadata-over-max-bytes", [plain(metadata=WIDE_BAD)], [R.metadata_invalid]),
    # idempotency
    Case("replay", [plain(100, amount=50)], [R.exists]),
    Case("replay-of-post-with-omitted-fields", [post(110, 102)], [R.exists]),
    Case("replay-twice-in-one-batch", [plain(500), plain(500)], [R.ok, R.exists]),
    Case("replay-different-amount", [plain(100, amount=51)], [R.exists_with_different_fields]),
    Case(
        "replay-different-metadata",
        [plain(100, amount=50, metadata="{}")],
        [R.exists_with_different_fields],
    ),
    Case("replay-different-flags", [plain(101, amount=30)], [R.exists_with_different_fields]),
    # post and void
    Case("post-unknown", [post(500, 999)], [R.pending_transfer_not_found]),
    Case("post-of-plain", [post(500, 100)], [R.pending_transfer_not_pending]),
    Case(
        "post-other-debit",
        [post(500, 101, debit_account_id=3)],
        [R.pending_transfer_has_different_debit_account_id],
    ),
    Case(
        "post-other-credit",
        [post(500, 101, credit_account_id=3)],
        [R.pending_transfer_has_different_credit_account_id],
    ),
    Case(
        "post-other-currency",
        [post(500, 101, currency="EUR")],
        [R.pending_transfer_has_different_currency],
    ),
    Case("post-other-code", [post(500, 101, code=8)], [R.pending_transfer_has_different_code]),
    Case("void-less", [void(500, 101, 29)], [R.pending_transfer_has_different_amount]),
    Case("void-more", [void(500, 101, 31)], [R.pending_transfer_has_different_amount]),
    Case("post-more", [post(500, 101, 31)], [R.exceeds_pending_transfer_amount]),
    Case("post-posted", [post(500, 102)], [R.pending_transfer_already_posted]),
    Case("void-posted", [void(500, 102)], [R.pending_transfer_already_posted]),
    Case("post-voided", [post(500, 103)], [R.pending_transfer_already_voided]),
    Case(
        "post-twice-in-one-batch",
        [post(500, 101), post(501, 101)],
        [R.ok, R.pending_transfer_already_posted],
    ),
    Case(
        "void-then-post",
        [void(500, 101), post(501, 101)],
        [R.ok, R.pending_transfer_already_voided],
    ),
    Case("post-expired", [post(500, 106)], [R.pending_transfer_expired]),
    Case("post-past-deadline", [post(500, 105)], [R.pending_transfer_expired]),
    Case("void-past-deadline", [void(500, 105)], [R.pending_transfer_expired]),
    Case("post-at-deadline", [post(500, 104)], [R.pending_transfer_expired], first=T0 + 5 * SECOND),
    # reversals
    Case("reversal-unknown", [reverse(500, 999)], [R.reversal_target_not_found]),
    Case("reversal-of-pending", [reverse(500, 101)], [R.reversal_target_not_posted]),
    Case("reversal-of-void", [reverse(500, 111)], [R.reversal_target_not_posted]),
    Case(
        "reversal-same-direction-debit",
        [reverse(500, 100, debit_account_id=1)],
        [R.reversal_must_swap_accounts],
    ),
    Case(
        "reversal-same-direction-credit",
        [reverse(500, 100, credit_account_id=2)],
        [R.reversal_must_swap_accounts],
    ),
    Case(
        "reversal-other-currency",
        [reverse(500, 100, currency="EUR")],
        [R.reversal_has_different_currency],
    ),
    Case("reversal-more", [reverse(500, 100, 51)], [R.reversal_exceeds_original]),
    Case(
        "reversal-twice-full",
        [reverse(500, 100), reverse(501, 100)],
        [R.ok, R.reversal_exceeds_original],
    ),
    # accounts
    Case("debit-unknown", [plain(debit=999)], [R.debit_account_not_found]),
    Case("credit-unknown", [plain(credit=999)], [R.credit_account_not_found]),
    Case("mixed-currencies", [plain(debit=1, credit=5)], [R.accounts_must_have_the_same_currency]),
    Case(
        "currency-not-accounts", [plain(currency="EUR")], [R.transfer_currency_must_match_accounts]
    ),
    Case("debit-closed", [plain(debit=6)], [R.debit_account_closed]),
    Case("credit-closed", [plain(credit=6)], [R.credit_account_closed]),
    Case("post-from-closed", [post(500, 107)], [R.debit_account_closed]),
    Case("post-to-closed", [post(500, 112)], [R.credit_account_closed]),
    Case("reversal-into-closed", [reverse(500, 108)], [R.credit_account_closed]),
    # balances
    Case("overflow-debits-pending", [pending(debit=7, amount=6)], [R.overflows_debits_pending]),
    Case("overflow-credits-pending", [pending(credit=7, amount=6)], [R.overflows_credits_pending]),
    Case("overflow-debits-posted", [plain(debit=7, amount=6)], [R.overflows_debits_posted]),
    Case("overflow-credits-posted", [plain(credit=7, amount=6)], [R.overflows_credits_posted]),
    Case("debits-over-credits", [plain(debit=3, amount=101)], [R.exceeds_credits]),
    Case("pending-over-credits", [pending(debit=3, amount=101)], [R.exceeds_credits]),
    Case(
        "pending-then-posting-over-credits",
        [pending(500, debit=3, amount=60), plain(501, debit=3, amount=41)],
        [R.ok, R.exceeds_credits],
    ),
    Case("credits-over-debits", [plain(credit=4, amount=101)], [R.exceeds_debits]),
    Case(
        "balancing-nothing-left",
        [plain(debit=1, amount=5, flags=F.BALANCING_DEBIT)],
        [R.exceeds_credits],
    ),
    Case(
        "balancing-credit-nothing-left",
        [plain(credit=2, amount=5, flags=F.BALANCING_CREDIT)],
        [R.exceeds_debits],
    ),
]


def test_table_has_unique_names() -> None:
    """Case names are unique, so a failure points at exactly one row of the table."""
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_table(case: Case) -> None:
    """Each case yields its result codes, and balances move exactly by what was accepted."""
    view = seeded_view()
    before = balances(view)
    plan, view = run(case.events, view, case.first, request_ends=case.request_ends)
    assert plan.results == case.expected
    accepted = [
        event.id for event, code in zip(case.events, plan.results, strict=True) if code == R.ok
    ]
    assert [transfer.id for transfer in plan.transfers] == accepted
    assert balances(view) == expected_balances(before, plan, view)
    # Event i takes timestamp first + i whether or not the events before it succeeded.
    accepted_at = [index for index, code in enumerate(plan.results) if code == R.ok]
    assert [transfer.timestamp for transfer in plan.transfers] == [
        case.first + index for index in accepted_at
    ]
    assert plan.last_timestamp == case.first + len(case.events) - 1


def test_every_result_code_is_covered_by_the_table() -> None:
    """Every CreateTransferResult except the proven-unreachable ones is produced by some case."""
    covered = {code for case in CASES for code in case.expected}
    assert covered == set(CreateTransferResult) - UNREACHABLE, (
        f"codes without a case: {sorted(c.name for c in set(R) - UNREACHABLE - covered)}"
    )


# -- precedence ------------------------------------------------------------------------------

PRECEDENCE_PAIRS: list[tuple[str, NewTransfer, CreateTransferResult, CreateTransferResult]] = [
    # (name, event violating both checks, one violated check, the other)
    ("id-vs-amount", plain(0, amount=0), R.id_invalid, R.amount_must_be_positive),
    (
        "flags-invalid-vs-exclusive",
        plain(flags=64 | F.PENDING | F.POST_PENDING),
        R.flags_invalid,
        R.flags_are_mutually_exclusive,
    ),
    (
        "exclusive-vs-pending-id",
        plain(flags=F.PENDING | F.POST_PENDING),
        R.flags_are_mutually_exclusive,
        R.pending_id_required,
    ),
    (
        "reversal-plain-vs-pending-id",
        pending(reverses_id=100, pending_id=101),
        R.reversal_must_be_plain,
        R.pending_id_must_be_zero,
    ),
    (
        "timeout-vs-debit-id",
        plain(debit=0, timeout=5),
        R.timeout_reserved_for_pending_transfer,
        R.debit_account_id_invalid,
    ),
    (
        "debit-id-vs-credit-id",
        plain(debit=0, credit=0),
        R.debit_account_id_invalid,
        R.credit_account_id_invalid,
    ),
    (
        "same-accounts-vs-amount",
        plain(debit=1, credit=1, amount=0),
        R.accounts_must_be_different,
        R.amount_must_be_positive,
    ),
    ("amount-vs-code", plain(amount=0, code=0), R.amount_must_be_positive, R.code_invalid),
    ("code-vs-currency", plain(code=0, currency=""), R.code_invalid, R.currency_invalid),
    (
        "currency-vs-metadata",
        plain(currency="XXX", metadata=""),
        R.currency_invalid,
        R.metadata_invalid,
    ),
    (
        "metadata-vs-replay",
        plain(100, amount=50, metadata=""),
        R.metadata_invalid,
        R.exists_with_different_fields,
    ),
    (
        "replay-different-vs-unknown-account",
        plain(100, debit=999, amount=50),
        R.exists_with_different_fields,
        R.debit_account_not_found,
    ),
    (
        "replay-vs-closed-account",
        plain(108, debit=6, credit=1, amount=5),
        R.exists,
        R.debit_account_closed,
    ),
    (
        "not-pending-vs-other-credit",
        post(500, 100, credit_account_id=3),
        R.pending_transfer_not_pending,
        R.pending_transfer_has_different_credit_account_id,
    ),
    (
        "other-debit-vs-other-credit",
        post(500, 101, debit_account_id=3, credit_account_id=1),
        R.pending_transfer_has_different_debit_account_id,
        R.pending_transfer_has_different_credit_account_id,
    ),
    (
        "other-currency-vs-other-code",
        post(500, 101, currency="EUR", code=8),
        R.pending_transfer_has_different_currency,
        R.pending_transfer_has_different_code,
    ),
    (
        "different-amount-vs-exceeds",
        void(500, 101, 31),
        R.pending_transfer_has_different_amount,
        R.exceeds_pending_transfer_amount,
    ),
    (
        "exceeds-pending-vs-posted",
        post(500, 102, 21),
        R.exceeds_pending_transfer_amount,
        R.pending_transfer_already_posted,
    ),
    (
        "exceeds-pending-vs-closed",
        post(500, 107, 13),
        R.exceeds_pending_transfer_amount,
        R.debit_account_closed,
    ),
    ("expired-vs-closed", post(500, 113), R.pending_transfer_expired, R.debit_account_closed),
    (
        "reversal-unknown-vs-account-unknown",
        reverse(500, 999, debit_account_id=999),
        R.reversal_target_not_found,
        R.debit_account_not_found,
    ),
    (
        "swap-vs-currency",
        reverse(500, 100, debit_account_id=1, currency="EUR"),
        R.reversal_must_swap_accounts,
        R.reversal_has_different_currency,
    ),
    (
        "reversal-more-vs-closed",
        reverse(500, 108, 6),
        R.reversal_exceeds_original,
        R.credit_account_closed,
    ),
    (
        "debit-unknown-vs-credit-unknown",
        plain(debit=999, credit=998),
        R.debit_account_not_found,
        R.credit_account_not_found,
    ),
    (
        "mixed-currencies-vs-transfer-currency",
        plain(debit=1, credit=5, currency="EUR"),
        R.accounts_must_have_the_same_currency,
        R.transfer_currency_must_match_accounts,
    ),
    (
        "mixed-currencies-vs-closed",
        plain(debit=6, credit=5),
        R.accounts_must_have_the_same_currency,
        R.debit_account_closed,
    ),
    (
        "debit-closed-vs-credit-closed",
        plain(debit=6, credit=14),
        R.debit_account_closed,
        R.credit_account_closed,
    ),
    (
        "credit-closed-vs-exceeds",
        plain(debit=3, credit=6, amount=101),
        R.credit_account_closed,
        R.exceeds_credits,
    ),
    (
        "overflow-pending-debit-vs-credit",
        pending(debit=7, credit=16, amount=6),
        R.overflows_debits_pending,
        R.overflows_credits_pending,
    ),
    (
        "overflow-posted-debit-vs-credit",
        plain(debit=7, credit=16, amount=6),
        R.overflows_debits_posted,
        R.overflows_credits_posted,
    ),
    (
        "overflow-vs-exceeds-credits",
        plain(debit=9, amount=6),
        R.overflows_debits_posted,
        R.exceeds_credits,
    ),
    (
        "overflow-pending-vs-exceeds-debits",
        pending(credit=10, amount=6),
        R.overflows_credits_pending,
        R.exceeds_debits,
    ),
    (
        "exceeds-credits-vs-debits",
        plain(debit=3, credit=4, amount=101),
        R.exceeds_credits,
        R.exceeds_debits,
    ),
]


@pytest.mark.parametrize(
    ("name", "event", "one", "other"), PRECEDENCE_PAIRS, ids=[pair[0] for pair in PRECEDENCE_PAIRS]
)
def test_precedence(
    name: str, event: NewTransfer, one: CreateTransferResult, other: CreateTransferResult
) -> None:
    """An event failing two checks gets the one listed first in CREATE_TRANSFER_PRECEDENCE."""
    first = min(one, other, key=CREATE_TRANSFER_PRECEDENCE.index)
    assert first is one, f"{name}: the table lists the expected winner first"
    plan, _ = run([event])
    assert plan.results == [first]


def test_chain_open_takes_precedence_over_everything() -> None:
    """A malformed event that leaves a chain open is reported as `linked_event_chain_open`."""
    plan, _ = run([plain(0, amount=0, flags=F.LINKED)])
    assert plan.results == [R.linked_event_chain_open]


# -- two-phase -------------------------------------------------------------------------------


def test_partial_post_releases_the_remainder() -> None:
    """Posting 12 of a 30 hold posts 12 and releases all 30 from pending on both accounts."""
    view = seeded_view()
    before = balances(view)
    plan, view = run([post(500, 101, 12)], view)
    assert plan.results == [R.ok]
    debit, credit = before[1], before[2]
    assert balances(view)[1] == (debit[0] - 30, debit[1] + 12, debit[2], debit[3])
    assert balances(view)[2] == (credit[0], credit[1], credit[2] - 30, credit[3] + 12)
    stored = plan.transfers[0]
    assert (stored.amount, stored.debit_account_id, stored.credit_account_id) == (12, 1, 2)
    assert (stored.currency, stored.code) == ("USD", 7)
    assert plan.resolutions == [(101, Resolution.POSTED, T0)]
    assert plan.pending_closed == [101]
    assert view.resolutions[101] == Resolution.POSTED
    again, _ = run([post(501, 101, 1), void(502, 101)], view, T0 + 10)
    assert again.results == [R.pending_transfer_already_posted] * 2


def test_post_amount_zero_posts_the_whole_hold() -> None:
    """A post with amount 0 posts the full pending amount."""
    plan, _ = run([post(500, 101)])
    assert plan.transfers[0].amount == 30


def test_void_on_closed_account_is_allowed_and_releases_the_hold() -> None:
    """Voiding a hold whose debit account is closed succeeds and releases the hold."""
    view = seeded_view()
    before = balances(view)
    plan, view = run([void(500, 107)], view)
    assert plan.results == [R.ok]
    assert balances(view)[6][0] == before[6][0] - 12
    assert balances(view)[1][2] == before[1][2] - 12
    assert view.accounts[6].closed


def test_post_on_closed_account_is_refused() -> None:
    """Posting a hold whose debit or credit account is closed is refused, balances untouched."""
    view = seeded_view()
    before = balances(view)
    plan, view = run([post(500, 107), post(501, 112)], view)
    assert plan.results == [R.debit_account_closed, R.credit_account_closed]
    assert balances(view) == before
    assert 107 not in view.resolutions and 112 not in view.resolutions


def test_expiring_voids_due_holds_first() -> None:
    """Holds passed in `expiring` are released first, one timestamp each, before the events."""
    view = seeded_view()
    before = balances(view)
    due = (view.transfers[105], view.transfers[113])
    plan, view = run([post(500, 105), post(501, 104), plain(502)], view, expiring=due)
    assert plan.results == [R.pending_transfer_expired, R.ok, R.ok]
    assert plan.resolutions[:2] == [
        (105, Resolution.EXPIRED, T0),
        (113, Resolution.EXPIRED, T0 + 1),
    ]
    assert view.resolutions[105] == view.resolutions[113] == Resolution.EXPIRED
    assert plan.pending_closed == [105, 113, 104]
    # Event i gets first_timestamp + number of expirations + i, failed or not.
    assert [t.timestamp for t in plan.transfers] == [T0 + 3, T0 + 4]
    assert plan.last_timestamp == T0 + 4
    after = balances(view)
    assert after[6][0] == before[6][0] - 4  # the closed account's hold expires too
    assert after == expected_balances(before, plan, view)


def test_expiring_alone_writes_only_resolutions() -> None:
    """An expiry-only plan (as `expire_pending` makes) writes resolutions and no transfers."""
    view = seeded_view()
    plan, view = run([], view, expiring=(view.transfers[105],))
    assert plan.results == []
    assert plan.transfers == []
    assert plan.resolutions == [(105, Resolution.EXPIRED, T0)]
    assert plan.writes_anything
    assert plan.last_timestamp == T0


def test_expiry_on_a_history_account_records_a_snapshot() -> None:
    """An expiry changes a `history` account's balances, so it records a snapshot at its time."""
    view = seeded_view()
    plan, view = run([pending(500, credit=11, amount=7, timeout=1)], view)
    assert plan.snapshots == [(11, T0, 0, 0, 7, 0)]
    hold = view.transfers[500]
    plan, view = run([], view, first=hold.expires_at, expiring=(hold,))
    assert plan.resolutions == [(500, Resolution.EXPIRED, hold.expires_at)]
    assert plan.snapshots == [(11, hold.expires_at, 0, 0, 0, 0)]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-1, R.ok), (0, R.pending_transfer_expired), (1, R.pending_transfer_expired)],
)
def test_post_at_the_expiry_boundary(offset: int, expected: CreateTransferResult) -> None:
    """A hold can be posted until one nanosecond before `timestamp + timeout`, not at it."""
    deadline = SEEDED[4].timestamp + 10 * SECOND
    plan, _ = run([post(500, 104)], first=deadline + offset)
    assert plan.results == [expected]


def test_pending_and_its_post_in_one_batch() -> None:
    """A hold created and posted in one batch leaves only the posted amount."""
    view = seeded_view()
    before = balances(view)
    plan, view = run([pending(500, amount=9, timeout=5), post(501, 500, 4)], view)
    assert plan.results == [R.ok, R.ok]
    assert [t.id for t in plan.pending_opened] == [500]
    assert plan.pending_closed == [500]
    assert balances(view)[1] == (before[1][0], before[1][1] + 4, before[1][2], before[1][3])


# -- reversals -------------------------------------------------------------------------------


def test_reversal_partial_then_remainder_then_over() -> None:
    """Reversals may return an original in parts, never more than its amount in total."""
    view = seeded_view()
    before = balances(view)
    plan, view = run([reverse(500, 100, 20)], view)
    assert plan.results == [R.ok]
    first = plan.transfers[0]
    assert (first.debit_account_id, first.credit_account_id, first.amount) == (2, 1, 20)
    assert (first.currency, first.code, first.reverses_id) == ("USD", 7, 100)
    assert view.reversed_amounts[100] == 20
    plan, view = run([reverse(501, 100), reverse(502, 100, 1)], view, T0 + 10)
    assert plan.results == [R.ok, R.reversal_exceeds_original]
    assert plan.transfers[0].amount == 30
    assert view.reversed_amounts[100] == 50
    after = balances(view)
    assert after[1][3] == before[1][3] + 50 and after[2][1] == before[2][1] + 50


def test_reversal_counts_earlier_reversals_from_the_view() -> None:
    """Amounts already reversed (as the service prefetches them) limit what is left."""
    view = seeded_view()
    view.reversed_amounts[100] = 45
    plan, _ = run([reverse(500, 100, 6), reverse(501, 100)], view)
    assert plan.results == [R.reversal_exceeds_original, R.ok]
    assert plan.transfers[0].amount == 5


def test_reversal_respects_limit_flags() -> None:
    """A reversal debiting a `debits_must_not_exceed_credits` account is held to the limit."""
    view = seeded_view()
    plan, view = run([plain(500, debit=2, credit=3, amount=10)], view)
    assert plan.results == [R.ok]
    # Account 3 may now debit 110 in total; spend it all, then try to reverse the credit.
    plan, view = run([plain(501, debit=3, amount=110), reverse(502, 500)], view, T0 + 10)
    assert plan.results == [R.ok, R.exceeds_credits]


# -- balancing -------------------------------------------------------------------------------


def test_balancing_debit_clamps_to_available_credit() -> None:
    """A balancing debit moves at most credits_posted - debits_pending - debits_posted."""
    view = seeded_view()
    plan, view = run(
        [
            pending(500, debit=3, amount=30),
            plain(501, debit=3, amount=1_000, flags=F.BALANCING_DEBIT),
            plain(502, debit=3, amount=1, flags=F.BALANCING_DEBIT),
        ],
        view,
    )
    assert plan.results == [R.ok, R.ok, R.exceeds_credits]
    assert plan.transfers[1].amount == 70
    assert balances(view)[3] == (30, 70, 0, 100)


def test_balancing_credit_clamps_to_available_debit() -> None:
    """A balancing credit moves at most debits_posted - credits_pending - credits_posted."""
    view = seeded_view()
    plan, view = run([plain(500, credit=4, amount=1_000, flags=F.BALANCING_CREDIT)], view)
    assert plan.results == [R.ok]
    assert plan.transfers[0].amount == 100
    assert balances(view)[4] == (0, 100, 0, 100)


def test_balancing_applies_without_limit_flag_and_keeps_smaller_amounts() -> None:
    """Balancing clamps even on an unflagged account, and an amount under the limit is kept."""
    plan, _ = run(
        [
            plain(500, debit=12, amount=100, flags=F.BALANCING_DEBIT),
            plain(501, debit=3, amount=7, flags=F.BALANCING_DEBIT),
        ]
    )
    assert plan.results == [R.ok, R.ok]
    assert [t.amount for t in plan.transfers] == [40, 7]


def test_balancing_replay_accepts_the_requested_amount() -> None:
    """A replay of a clamped balancing transfer with its requested amount answers `exists`."""
    view = seeded_view()
    plan, view = run([plain(500, debit=12, amount=100, flags=F.BALANCING_DEBIT)], view)
    assert plan.transfers[0].amount == 40
    replay, _ = run(
        [
            plain(500, debit=12, amount=100, flags=F.BALANCING_DEBIT),
            plain(500, debit=12, amount=39, flags=F.BALANCING_DEBIT),
        ],
        view,
        T0 + 10,
    )
    assert replay.results == [R.exists, R.exists_with_different_fields]


def test_balancing_both_sides_clamps_to_the_smaller() -> None:
    """With both balancing flags the amount is clamped by both accounts' limits."""
    plan, _ = run(
        [plain(500, debit=12, credit=4, amount=1_000, flags=F.BALANCING_DEBIT | F.BALANCING_CREDIT)]
    )
    assert plan.results == [R.ok]
    assert plan.transfers[0].amount == 40


# -- linked chains ---------------------------------------------------------------------------


def test_chain_rollback_restores_everything_exactly() -> None:
    """A failing chain with a hold, its post and a reversal leaves view and plan as before."""
    view = seeded_view()
    committed, view = run([plain(499, credit=11, amount=3)], view)
    assert committed.results == [R.ok]
    snapshot = copy.deepcopy(view)
    chain = [
        pending(500, credit=11, amount=9, flags=F.LINKED, timeout=5),
        post(501, 500, 4, flags=F.LINKED),
        reverse(502, 100, 10, flags=F.LINKED),
        plain(503, debit=11, credit=2, amount=1, flags=F.LINKED),
        plain(504, debit=3, amount=101),  # fails: exceeds_credits
    ]
    plan, view = run(chain, view, T0 + 10)
    assert plan.results == [R.linked_event_failed] * 4 + [R.exceeds_credits]
    assert balances(view) == balances(snapshot)
    assert view.transfers.keys() == snapshot.transfers.keys()
    assert view.resolutions == snapshot.resolutions
    assert view.reversed_amounts == snapshot.reversed_amounts
    assert plan.transfers == plan.resolutions == plan.snapshots == []
    assert plan.pending_opened == plan.pending_closed == []
    assert plan.accounts_changed == {}


def test_chain_rollback_keeps_earlier_events_of_the_batch() -> None:
    """Events before a failed chain keep their effects; the chain's own effects are undone."""
    view = seeded_view()
    before = balances(view)
    plan, view = run(
        [
            plain(500, credit=11, amount=5),
            pending(501, debit=11, amount=2, flags=F.LINKED),
            post(502, 501, flags=F.LINKED),
            plain(503, credit=11, amount=0),  # fails: amount_must_be_positive
            plain(504, debit=11, amount=1),
        ],
        view,
    )
    assert plan.results == [
        R.ok,
        R.linked_event_failed,
        R.linked_event_failed,
        R.amount_must_be_positive,
        R.ok,
    ]
    assert [t.id for t in plan.transfers] == [500, 504]
    assert balances(view) == expected_balances(before, plan, view)
    assert balances(view)[11] == (0, 1, 0, 5)
    # History snapshots exist only for the surviving events, at their own timestamps.
    assert [(s[0], s[1]) for s in plan.snapshots] == [(11, T0), (11, T0 + 4)]
    assert plan.pending_opened == [] and plan.pending_closed == []
    assert set(plan.accounts_changed) == {1, 2, 11}


def test_successful_chain_then_failing_chain() -> None:
    """A chain that succeeds stays applied when a later chain in the batch is rolled back."""
    view = seeded_view()
    before = balances(view)
    plan, view = run(
        [
            plain(500, flags=F.LINKED),
            reverse(501, 100, 5),
            post(502, 101, flags=F.LINKED),
            reverse(503, 100, 46),
        ],
        view,
    )
    assert plan.results == [R.ok, R.ok, R.linked_event_failed, R.reversal_exceeds_original]
    assert view.reversed_amounts == {100: 5}
    assert 101 not in view.resolutions
    assert balances(view) == expected_balances(before, plan, view)


def test_chain_failing_on_its_first_event() -> None:
    """When the first member fails, the others are not applied and get `linked_event_failed`."""
    view = seeded_view()
    before = balances(view)
    plan, view = run(
        [plain(500, debit=999, flags=F.LINKED), plain(501, flags=F.LINKED), plain(502)], view
    )
    assert plan.results == [R.debit_account_not_found, R.linked_event_failed, R.linked_event_failed]
    assert balances(view) == before


@pytest.mark.parametrize(
    ("flags", "request_ends", "segments"),
    [
        ([], None, []),
        ([0], None, [(0, 0, True)]),
        ([1], None, [(0, 0, False)]),
        ([1, 1, 0], None, [(0, 2, True)]),
        ([1, 1, 0], [0], [(0, 0, False), (1, 2, True)]),
        ([1, 0, 1], [1], [(0, 1, True), (2, 2, False)]),
        ([0, 1, 1, 0], [2, 3], [(0, 0, True), (1, 2, False), (3, 3, True)]),
        ([1, 1, 1, 1], [1, 3], [(0, 1, False), (2, 3, False)]),
        ([0, 0, 1, 0], [0, 1, 3], [(0, 0, True), (1, 1, True), (2, 3, True)]),
    ],
)
def test_chain_segments(
    flags: list[int], request_ends: list[int] | None, segments: list[tuple[int, int, bool]]
) -> None:
    """Chains end at the first unlinked event, at a request end, or (open) at the batch end."""
    assert chain_segments(flags, F.LINKED, request_ends) == segments


def test_request_ends_close_chains_per_request() -> None:
    """An open chain at one request's end fails alone; the next request is decided normally."""
    events = [
        plain(500, flags=F.LINKED),
        plain(501, flags=F.LINKED),
        plain(502, flags=F.LINKED),
        plain(503),
    ]
    plan, _ = run(events, request_ends=[1, 3])
    assert plan.results == [R.linked_event_failed, R.linked_event_chain_open, R.ok, R.ok]
    assert [t.timestamp for t in plan.transfers] == [T0 + 2, T0 + 3]


# -- regressions -----------------------------------------------------------------------------


def test_unencodable_metadata_is_refused_not_raised() -> None:
    """Metadata that is not valid Unicode text is refused with `metadata_invalid`."""
    plan, _ = run([plain(500, metadata='{"a":"\ud800"}'), plain(501)])
    assert plan.results == [R.metadata_invalid, R.ok]
