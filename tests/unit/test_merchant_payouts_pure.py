"""The pure parts of merchant payouts and the SME sweep: the swept share of a day's takings,
the sweep's bounds, a settlement's fee and net with a sweep, and bank-account fingerprints."""

from __future__ import annotations

import secrets

import pytest

from tianping.identity.errors import InvalidInput
from tianping.identity.parties import bank_account_fingerprint, card_fingerprint
from tianping.identity.party_service import FingerprintKey
from tianping.lending.model import LendingRefusal
from tianping.lending.sweep import SWEEP_BPS_MAX, check_sweep_bps, sweep_share
from tianping.payments.model import settlement_split


def test_the_share_is_rounded_down_in_the_merchants_favour() -> None:
    assert sweep_share(500_05, 1_000) == 50_00
    assert sweep_share(9, 1_000) == 0
    assert sweep_share(0, 5_000) == 0
    assert sweep_share(-100, 5_000) == 0
    assert sweep_share(1_000_00, SWEEP_BPS_MAX) == 500_00


@pytest.mark.parametrize("value", [-1, SWEEP_BPS_MAX + 1, 10.0, "1000", True])
def test_a_sweep_is_at_most_half_of_the_takings(value: object) -> None:
    with pytest.raises(LendingRefusal) as refused:
        check_sweep_bps(value)
    assert refused.value.code == "sweep_invalid"


def test_a_sweep_in_bounds_is_accepted() -> None:
    assert [check_sweep_bps(v) for v in (0, 1, SWEEP_BPS_MAX)] == [0, 1, SWEEP_BPS_MAX]


def test_settlement_pays_the_takings_less_fee_and_sweep() -> None:
    assert settlement_split(500_05, 60) == (3_00, 497_05)
    assert settlement_split(500_05, 60, 50_00) == (3_00, 447_05)
    # A refund after the sweep left less than the fee: the fee gives way, nothing is overdrawn.
    assert settlement_split(51_00, 60, 50_00) == (31, 69)
    assert settlement_split(50_50, 1_000, 50_00) == (50, 0)
    assert settlement_split(40_00, 1_000, 50_00) == (0, 0)


def test_bank_account_fingerprints_are_keyed_and_not_card_fingerprints() -> None:
    key = secrets.token_bytes(32)
    number = "6222020200112233445"
    assert bank_account_fingerprint(key, "6222 0202-0011 2233 445") == bank_account_fingerprint(
        key, number
    )
    assert bank_account_fingerprint(key, number) != card_fingerprint(key, number)
    assert bank_account_fingerprint(key, number) != bank_account_fingerprint(
        secrets.token_bytes(32), number
    )
    account = FingerprintKey(key).bank_account("12345678901234567890123456")
    assert account.last_four == "3456" and len(account.fingerprint) == 64


@pytest.mark.parametrize("number", ["1234567", "1" * 33, "6222abcd00112233", "", "\uff11" * 9])
def test_a_bank_account_number_is_8_to_32_plain_digits(number: str) -> None:
    with pytest.raises(InvalidInput):
        bank_account_fingerprint(secrets.token_bytes(32), number)
