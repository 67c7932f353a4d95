"""Hypothesis properties of `plan_transfers` on batches of plain transfers between limited accounts.

A deliberately simple model decides each plain transfer from first principles (same accounts,
non-positive amount, the two limit flags) and applies accepted ones in order; the engine must
agree with it event by event, never break a limit, and leave refused events without effect.
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.ledger.engine import LedgerView, plan_transfers
from tianping.ledger.model import Account, AccountFlags, NewTransfer
from tianping.ledger.results import CreateTransferResult

R = CreateTransferResult
T0 = 1_700_000_000_000_000_000
DEBITS_LIMITED = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CREDITS_LIMITED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
# Codes that depend only on the event itself (and on accounts, which transfers never create),
# so a refused event is refused again, with the same code, whatever the balances have become.
STATE_INDEPENDENT = {R.accounts_must_be_different, R.amount_must_be_positive}


@st.composite
def limited_accounts(draw: st.DrawFn) -> dict[int, Account]:
    """3 to 6 USD accounts, each unflagged or limited, with balances that respect its limit."""
    accounts = {}
    for account_id in range(1, draw(st.integers(3, 6)) + 1):
        flags = draw(st.sampled_from([0, DEBITS_LIMITED, CREDITS_LIMITED]))
        a, b = draw(st.integers(0, 300)), draw(st.integers(0, 300))
        held = draw(st.integers(0, 50))
        if flags == DEBITS_LIMITED:
            # debits_pending + debits_posted <= credits_posted
            dp, dpo, cp, cpo = min(held, max(a, b) - min(a, b)), min(a, b), 0, max(a, b)
        elif flags == CREDITS_LIMITED:
            dp, dpo, cp, cpo = 0, max(a, b), min(held, max(a, b) - min(a, b)), min(a, b)
        else:
            dp, dpo, cp, cpo = held, a, held, b
        accounts[account_id] = Account(account_id, "USD", 1, flags, "", 1, dp, dpo, cp, cpo)
    return accounts


@st.composite
def batches(draw: st.DrawFn) -> tuple[dict[int, Account], list[NewTransfer]]:
    accounts = draw(limited_accounts())
    ids = st.sampled_from(sorted(accounts))
    events = [
        NewTransfer(
            1000 + index, draw(ids), draw(ids), draw(st.integers(0, 150) | st.just(1)), "USD", 1
        )
        for index in range(draw(st.integers(1, 25)))
    ]
    return accounts, events


def _model_decide(accounts: dict[int, Account], event: NewTransfer) -> CreateTransferResult:
    """Decide one plain transfer from first principles, in precedence order."""
    if event.debit_account_id == event.credit_account_id:
        return R.accounts_must_be_different
    if event.amount <= 0:
        return R.amount_must_be_positive
    debit = accounts[event.debit_account_id]
    credit = accounts[event.credit_account_id]
    if (
        debit.flags & DEBITS_LIMITED
        and debit.debits_pending + debit.debits_posted + event.amount > debit.credits_posted
    ):
        return R.exceeds_credits
    if (
        credit.flags & CREDITS_LIMITED
        and credit.credits_pending + credit.credits_posted + event.amount > credit.debits_posted
    ):
        return R.exceeds_debits
    return R.ok


def _limits_hold(account: Account) -> bool:
    if account.flags & DEBITS_LIMITED:
        return account.debits_pending + account.debits_posted <= account.credits_posted
    if account.flags & CREDITS_LIMITED:
        return account.credits_pending + account.credits_posted <= account.debits_posted
    return True


def _view(accounts: dict[int, Account]) -> LedgerView:
    return LedgerView(accounts=copy.deepcopy(accounts))


@settings(max_examples=300, deadline=None)
@given(batches())
def test_plain_batches_keep_limits_and_refusals_have_no_effect(
    batch: tuple[dict[int, Account], list[NewTransfer]],
) -> None:
    """Each event gets one code, agreeing with the model; accepted ones keep every limit."""
    accounts, events = batch
    view = _view(accounts)
    plan = plan_transfers(events, view, T0)
    assert len(plan.results) == len(events)
    assert all(code in set(CreateTransferResult) for code in plan.results)

    model = copy.deepcopy(accounts)
    for event, code in zip(events, plan.results, strict=True):
        assert code == _model_decide(model, event), event
        if code == R.ok:
            model[event.debit_account_id].debits_posted += event.amount
            model[event.credit_account_id].credits_posted += event.amount
            assert _limits_hold(model[event.debit_account_id])
            assert _limits_hold(model[event.credit_account_id])
    # Refused events moved nothing: the final balances are the accepted ones applied in order.
    assert view.accounts == model
    assert [t.id for t in plan.transfers] == [
        e.id for e, code in zip(events, plan.results, strict=True) if code == R.ok
    ]
    assert all(
        t.amount == e.amount
        for t, e in zip(
            plan.transfers,
            [e for e, c in zip(events, plan.results, strict=True) if c == R.ok],
            strict=True,
        )
    )
    assert set(plan.accounts_changed) == {
        account_id
        for t in plan.transfers
        for account_id in (t.debit_account_id, t.credit_account_id)
    }


@settings(max_examples=200, deadline=None)
@given(batches())
def test_replaying_a_batch_answers_exists_and_moves_nothing(
    batch: tuple[dict[int, Account], list[NewTransfer]],
) -> None:
    """Replaying a batch on its own result: `exists` for accepted events, no balance change.

    An event refused for a state-independent reason is refused again with the same code. One
    refused by a limit (`exceeds_*`) is decided afresh against the balances the batch left, as
    the model decides it: it may now pass, or now hit the other account's limit. (So "a replay
    yields the same failure codes" holds only for state-independent codes.)
    """
    accounts, events = batch
    view = _view(accounts)
    first = plan_transfers(events, view, T0)
    after_first = copy.deepcopy(view.accounts)

    second = plan_transfers(events, view, T0 + len(events))
    model = copy.deepcopy(after_first)
    for event, before, now in zip(events, first.results, second.results, strict=True):
        if before == R.ok:
            assert now == R.exists
        elif before in STATE_INDEPENDENT:
            assert now == before
        else:
            # The balances have changed since, so either limit may now be the one that bites.
            assert now in (R.ok, R.exceeds_credits, R.exceeds_debits)
            assert now == _model_decide(model, event)
            if now == R.ok:
                model[event.debit_account_id].debits_posted += event.amount
                model[event.credit_account_id].credits_posted += event.amount
    assert view.accounts == model
    if all(code == R.ok or code in STATE_INDEPENDENT for code in first.results):
        assert view.accounts == after_first
        assert second.transfers == []
    assert all(_limits_hold(account) for account in view.accounts.values())
