"""The frozen registry of result codes, and the order in which checks are made.

Every event in a batch gets exactly one result. The numbers are part of the public contract (they
appear in the HTTP API, the CLI and stored decision records), so a number is assigned once and never
reused or renumbered; new codes take the next free number. `tests/unit/test_result_registry.py`
compares the registry with a committed snapshot so that a renumbering cannot slip through review.

Precedence: when several checks would fail for one event, the result is the first failing check in
the `*_PRECEDENCE` tuple below, and the engine makes its checks in exactly that order. The order is
chosen so that (1) malformed events are reported before anything is looked up, (2) a replay of an
already-created event is recognised before the ledger's current state is consulted, so a retry of a
success always answers `exists` even if balances or account states have since changed, and (3) the
balance limits come last, because they are the only checks whose outcome depends on other events.
"""

from __future__ import annotations

from enum import IntEnum


class CreateAccountResult(IntEnum):
    """The outcome of one account in a `create_accounts` batch."""

    ok = 0
    linked_event_failed = 1
    linked_event_chain_open = 2
    id_invalid = 3
    flags_are_mutually_exclusive = 4
    flags_invalid = 5
    currency_invalid = 6
    code_invalid = 7
    owner_reference_invalid = 8
    exists_with_different_fields = 9
    exists = 10


CREATE_ACCOUNT_PRECEDENCE: tuple[CreateAccountResult, ...] = (
    CreateAccountResult.linked_event_chain_open,
    CreateAccountResult.id_invalid,
    CreateAccountResult.flags_invalid,
    CreateAccountResult.flags_are_mutually_exclusive,
    CreateAccountResult.currency_invalid,
    CreateAccountResult.code_invalid,
    CreateAccountResult.owner_reference_invalid,
    CreateAccountResult.exists_with_different_fields,
    CreateAccountResult.exists,
    CreateAccountResult.linked_event_failed,
)


class CreateTransferResult(IntEnum):
    """The outcome of one transfer in a `create_transfers` batch."""

    ok = 0
    linked_event_failed = 1
    linked_event_chain_open = 2
    id_invalid = 3
    flags_are_mutually_exclusive = 4
    debit_account_id_invalid = 5
    credit_account_id_invalid = 6
    accounts_must_be_different = 7
    pending_id_must_be_zero = 8
    pending_id_required = 9
    pending_id_must_be_different = 10
    timeout_reserved_for_pending_transfer = 11
    amount_must_be_positive = 12
    amount_exceeds_maximum = 13
    code_invalid = 14
    currency_invalid = 15
    metadata_invalid = 16
    reversal_must_be_plain = 17
    exists_with_different_fields = 18
    exists = 19
    debit_account_not_found = 20
    credit_account_not_found = 21
    accounts_must_have_the_same_currency = 22
    transfer_currency_must_match_accounts = 23
    pending_transfer_not_found = 24
    pending_transfer_not_pending = 25
    pending_transfer_has_different_debit_account_id = 26
    pending_transfer_has_different_credit_account_id = 27
    pending_transfer_has_different_currency = 28
    pending_transfer_has_different_code = 29
    exceeds_pending_transfer_amount = 30
    pending_transfer_has_different_amount = 31
    pending_transfer_already_posted = 32
    pending_transfer_already_voided = 33
    pending_transfer_expired = 34
    reversal_target_not_found = 35
    reversal_target_not_posted = 36
    reversal_must_swap_accounts = 37
    reversal_has_different_currency = 38
    reversal_exceeds_original = 39
    debit_account_closed = 40
    credit_account_closed = 41
    overflows_debits_pending = 42
    overflows_credits_pending = 43
    overflows_debits_posted = 44
    overflows_credits_posted = 45
    exceeds_credits = 46
    exceeds_debits = 47
    timeout_exceeds_maximum = 48
    flags_invalid = 49


R = CreateTransferResult

CREATE_TRANSFER_PRECEDENCE: tuple[CreateTransferResult, ...] = (
    # The shape of the event, checked with nothing looked up.
    R.linked_event_chain_open,
    R.id_invalid,
    R.flags_invalid,
    R.flags_are_mutually_exclusive,
    R.reversal_must_be_plain,
    R.pending_id_must_be_zero,
    R.pending_id_required,
    R.pending_id_must_be_different,
    R.timeout_reserved_for_pending_transfer,
    R.timeout_exceeds_maximum,
    R.debit_account_id_invalid,
    R.credit_account_id_invalid,
    R.accounts_must_be_different,
    R.amount_must_be_positive,
    R.amount_exceeds_maximum,
    R.code_invalid,
    R.currency_invalid,
    R.metadata_invalid,
    # Idempotency: a replay is recognised before the ledger's present state matters.
    R.exists_with_different_fields,
    R.exists,
    # The referenced pending transfer (for post and void).
    R.pending_transfer_not_found,
    R.pending_transfer_not_pending,
    R.pending_transfer_has_different_debit_account_id,
    R.pending_transfer_has_different_credit_account_id,
    R.pending_transfer_has_different_currency,
    R.pending_transfer_has_different_code,
    R.pending_transfer_has_different_amount,
    R.exceeds_pending_transfer_amount,
    R.pending_transfer_already_posted,
    R.pending_transfer_already_voided,
    R.pending_transfer_expired,
    # The referenced original (for reversals).
    R.reversal_target_not_found,
    R.reversal_target_not_posted,
    R.reversal_must_swap_accounts,
    R.reversal_has_different_currency,
    R.reversal_exceeds_original,
    # The accounts.
    R.debit_account_not_found,
    R.credit_account_not_found,
    R.accounts_must_have_the_same_currency,
    R.transfer_currency_must_match_accounts,
    R.debit_account_closed,
    R.credit_account_closed,
    # Balances. A balancing transfer first clamps its amount to what the limit leaves; if
    # nothing is left it fails there with `exceeds_credits` / `exceeds_debits`, and the
    # overflow checks below then apply to the clamped amount.
    R.overflows_debits_pending,
    R.overflows_credits_pending,
    R.overflows_debits_posted,
    R.overflows_credits_posted,
    R.exceeds_credits,
    R.exceeds_debits,
    # Set on the other members of a chain after one of them failed.
    R.linked_event_failed,
)

del R


class AccountStateChangeResult(IntEnum):
    """The outcome of closing or reopening one account."""

    ok = 0
    id_invalid = 1
    account_not_found = 2
    already_closed = 3
    not_closed = 4


def describe_registry() -> dict[str, object]:
    """Return the whole registry as plain data, for the snapshot test and the API's reference."""
    return {
        "create_account": {int(code): code.name for code in CreateAccountResult},
        "create_account_precedence": [code.name for code in CREATE_ACCOUNT_PRECEDENCE],
        "create_transfer": {int(code): code.name for code in CreateTransferResult},
        "create_transfer_precedence": [code.name for code in CREATE_TRANSFER_PRECEDENCE],
        "account_state_change": {int(code): code.name for code in AccountStateChangeResult},
    }
