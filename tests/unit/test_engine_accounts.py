"""Table-driven unit tests of the pure account engine (`plan_accounts`), with no database."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

from tianping.ledger.engine import plan_accounts
from tianping.ledger.limits import CODE_MAX, ID_MAX, ID_MIN, OWNER_REFERENCE_LENGTH_MAX
from tianping.ledger.model import Account, AccountFlags, NewAccount
from tianping.ledger.results import CREATE_ACCOUNT_PRECEDENCE, CreateAccountResult

R = CreateAccountResult
A = AccountFlags
T0 = 1_700_000_000_000_000_000
DEBITS_LIMITED = A.DEBITS_MUST_NOT_EXCEED_CREDITS
CREDITS_LIMITED = A.CREDITS_MUST_NOT_EXCEED_DEBITS

# Codes no event can produce through `plan_accounts`: none today. A code may only be listed here
# together with a comment proving why the engine can never return it.
UNREACHABLE: frozenset[CreateAccountResult] = frozenset()

EXISTING = {
    7: Account(7, "USD", 10, DEBITS_LIMITED | A.HISTORY, "party:1", T0 - 10),
    8: Account(8, "EUR", 11, A.CLOSED, "", T0 - 9, debits_posted=5, credits_posted=7),
}


def existing() -> dict[int, Account]:
    return copy.deepcopy(EXISTING)


def new(
    account_id: int = 50, currency: str = "USD", code: int = 1, flags: int = 0, owner: str = ""
) -> NewAccount:
    return NewAccount(account_id, currency, code, flags, owner)


@dataclass
class Case:
    name: str
    events: list[NewAccount]
    expected: list[CreateAccountResult]
    request_ends: list[int] | None = None


CASES: list[Case] = [
    Case("ok", [new()], [R.ok]),
    Case(
        "ok-every-storable-flag",
        [new(flags=DEBITS_LIMITED | A.HISTORY), new(51, flags=CREDITS_LIMITED)],
        [R.ok, R.ok],
    ),
    Case("id-min", [new(ID_MIN)], [R.ok]),
    Case("id-max", [new(ID_MAX)], [R.ok]),
    Case("code-min-and-max", [new(50, code=1), new(51, code=CODE_MAX)], [R.ok, R.ok]),
    Case("owner-at-max-length", [new(owner="a" * OWNER_REFERENCE_LENGTH_MAX)], [R.ok]),
    Case("owner-every-allowed-character", [new(owner="AZaz09._:-")], [R.ok]),
    Case("chain-ok", [new(50, flags=A.LINKED), new(51)], [R.ok, R.ok]),
    Case(
        "chain-member-fails",
        [new(50, flags=A.LINKED), new(51, code=0)],
        [R.linked_event_failed, R.code_invalid],
    ),
    Case(
        "chain-open",
        [new(50, flags=A.LINKED), new(51, flags=A.LINKED)],
        [R.linked_event_failed, R.linked_event_chain_open],
    ),
    Case(
        "chain-open-at-request-end",
        [new(50, flags=A.LINKED), new(51)],
        [R.linked_event_chain_open, R.ok],
        request_ends=[0, 1],
    ),
    Case("id-zero", [new(0)], [R.id_invalid]),
    Case("id-over-max", [new(ID_MAX + 1)], [R.id_invalid]),
    Case("id-negative", [new(-1)], [R.id_invalid]),
    Case("flags-closed", [new(flags=A.CLOSED)], [R.flags_invalid]),
    Case("flags-unknown-bit", [new(flags=32)], [R.flags_invalid]),
    Case("flags-negative", [new(flags=-2)], [R.flags_invalid]),
    Case(
        "both-limits",
        [new(flags=DEBITS_LIMITED | CREDITS_LIMITED)],
        [R.flags_are_mutually_exclusive],
    ),
    Case("currency-empty", [new(currency="")], [R.currency_invalid]),
    Case("currency-lowercase", [new(currency="usd")], [R.currency_invalid]),
    Case("currency-unknown", [new(currency="XXX")], [R.currency_invalid]),
    Case("currency-without-minor-unit", [new(currency="XAU")], [R.currency_invalid]),
    Case("code-zero", [new(code=0)], [R.code_invalid]),
    Case("code-over-max", [new(code=CODE_MAX + 1)], [R.code_invalid]),
    Case(
        "owner-too-long",
        [new(owner="a" * (OWNER_REFERENCE_LENGTH_MAX + 1))],
        [R.owner_reference_invalid],
    ),
    Case("owner-space", [new(owner="bad owner")], [R.owner_reference_invalid]),
    Case("owner-pipe", [new(owner="a|b")], [R.owner_reference_invalid]),
    Case("owner-newline", [new(owner="a\nb")], [R.owner_reference_invalid]),
    Case("owner-non-ascii", [new(owner="\u00fc")], [R.owner_reference_invalid]),
    Case("replay", [new(7, "USD", 10, DEBITS_LIMITED | A.HISTORY, "party:1")], [R.exists]),
    # The linked bit is not stored, so the replay matches; `exists` still fails its chain.
    Case(
        "replay-in-chain-ignores-linked-bit",
        [new(7, "USD", 10, DEBITS_LIMITED | A.HISTORY | A.LINKED, "party:1"), new(50)],
        [R.exists, R.linked_event_failed],
    ),
    Case("replay-of-closed-account", [new(8, "EUR", 11)], [R.exists]),
    Case("replay-in-same-batch", [new(50), new(50)], [R.ok, R.exists]),
    Case(
        "replay-different-code",
        [new(7, "USD", 11, DEBITS_LIMITED | A.HISTORY, "party:1")],
        [R.exists_with_different_fields],
    ),
    Case(
        "replay-different-currency",
        [new(7, "EUR", 10, DEBITS_LIMITED | A.HISTORY, "party:1")],
        [R.exists_with_different_fields],
    ),
    Case(
        "replay-different-flags",
        [new(7, "USD", 10, DEBITS_LIMITED, "party:1")],
        [R.exists_with_different_fields],
    ),
    Case(
        "replay-different-owner",
        [new(7, "USD", 10, DEBITS_LIMITED | A.HISTORY, "party:2")],
        [R.exists_with_different_fields],
    ),
    Case(
        "replay-different-in-same-batch",
        [new(50), new(50, code=2)],
        [R.ok, R.exists_with_different_fields],
    ),
]


def test_table_has_unique_names() -> None:
    """Case names are unique, so a failure points at exactly one row of the table."""
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_table(case: Case) -> None:
    """Each case yields its result codes and creates exactly the accepted accounts."""
    accounts = existing()
    plan = plan_accounts(case.events, accounts, T0, case.request_ends)
    assert plan.results == case.expected
    accepted = [index for index, code in enumerate(plan.results) if code == R.ok]
    assert [account.id for account in plan.accounts] == [case.events[i].id for i in accepted]
    assert [account.timestamp for account in plan.accounts] == [T0 + i for i in accepted]
    assert set(accounts) == set(EXISTING) | {account.id for account in plan.accounts}
    for account_id, account in EXISTING.items():
        assert accounts[account_id] == account  # existing accounts are never touched
    assert plan.last_timestamp == T0 + len(case.events) - 1


def test_every_result_code_is_covered_by_the_table() -> None:
    """Every CreateAccountResult except the proven-unreachable ones is produced by some case."""
    covered = {code for case in CASES for code in case.expected}
    assert covered == set(CreateAccountResult) - UNREACHABLE, (
        f"codes without a case: {sorted(c.name for c in set(R) - UNREACHABLE - covered)}"
    )


def test_created_account_fields() -> None:
    """A created account keeps its fields, drops the `linked` bit and starts at zero balances."""
    accounts = existing()
    event = new(60, "JPY", 42, A.LINKED | CREDITS_LIMITED | A.HISTORY, "party:9")
    plan = plan_accounts([event, new(61)], accounts, T0)
    assert plan.results == [R.ok, R.ok]
    created = plan.accounts[0]
    assert created == Account(60, "JPY", 42, CREDITS_LIMITED | A.HISTORY, "party:9", T0)
    assert accounts[60] is created
    assert not created.closed and created.keeps_history


PRECEDENCE_PAIRS: list[tuple[str, NewAccount, CreateAccountResult, CreateAccountResult]] = [
    ("id-vs-flags", new(0, flags=A.CLOSED), R.id_invalid, R.flags_invalid),
    (
        "flags-invalid-vs-exclusive",
        new(flags=A.CLOSED | DEBITS_LIMITED | CREDITS_LIMITED),
        R.flags_invalid,
        R.flags_are_mutually_exclusive,
    ),
    (
        "exclusive-vs-currency",
        new(currency="", flags=DEBITS_LIMITED | CREDITS_LIMITED),
        R.flags_are_mutually_exclusive,
        R.currency_invalid,
    ),
    ("currency-vs-code", new(currency="XXX", code=0), R.currency_invalid, R.code_invalid),
    ("code-vs-owner", new(code=0, owner="bad owner"), R.code_invalid, R.owner_reference_invalid),
    (
        "owner-vs-replay",
        new(7, "USD", 10, DEBITS_LIMITED | A.HISTORY, "bad owner"),
        R.owner_reference_invalid,
        R.exists_with_different_fields,
    ),
    (
        "code-vs-replay",
        new(7, "USD", 0, DEBITS_LIMITED | A.HISTORY, "party:1"),
        R.code_invalid,
        R.exists_with_different_fields,
    ),
]


@pytest.mark.parametrize(
    ("name", "event", "one", "other"), PRECEDENCE_PAIRS, ids=[pair[0] for pair in PRECEDENCE_PAIRS]
)
def test_precedence(
    name: str, event: NewAccount, one: CreateAccountResult, other: CreateAccountResult
) -> None:
    """An account failing two checks gets the one listed first in CREATE_ACCOUNT_PRECEDENCE."""
    first = min(one, other, key=CREATE_ACCOUNT_PRECEDENCE.index)
    assert first is one, f"{name}: the table lists the expected winner first"
    assert plan_accounts([event], existing(), T0).results == [first]


def test_chain_open_takes_precedence_over_everything() -> None:
    """A malformed account that leaves a chain open is reported as `linked_event_chain_open`."""
    plan = plan_accounts([new(0, currency="", flags=A.LINKED)], existing(), T0)
    assert plan.results == [R.linked_event_chain_open]


def test_chain_rollback_removes_created_accounts() -> None:
    """A failed chain creates none of its accounts; accounts before and after it survive."""
    accounts = existing()
    plan = plan_accounts(
        [
            new(50),
            new(51, flags=A.LINKED),
            new(52, flags=A.LINKED),
            new(53, currency="usd"),
            new(54),
            new(51),  # the rolled-back id is free again
        ],
        accounts,
        T0,
    )
    assert plan.results == [
        R.ok,
        R.linked_event_failed,
        R.linked_event_failed,
        R.currency_invalid,
        R.ok,
        R.ok,
    ]
    assert [account.id for account in plan.accounts] == [50, 54, 51]
    assert set(accounts) == {7, 8, 50, 51, 54}
    assert accounts[51].timestamp == T0 + 5


def test_chain_with_duplicate_id_fails_whole() -> None:
    """A chain creating the same id twice fails on the duplicate and creates nothing."""
    accounts = existing()
    plan = plan_accounts([new(50, flags=A.LINKED), new(50)], accounts, T0)
    assert plan.results == [R.linked_event_failed, R.exists]
    assert plan.accounts == []
    assert set(accounts) == set(EXISTING)


def test_empty_batch() -> None:
    """An empty batch creates nothing and reports no result."""
    plan = plan_accounts([], existing(), T0)
    assert plan.results == [] and plan.accounts == []
