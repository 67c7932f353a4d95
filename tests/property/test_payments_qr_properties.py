"""Hypothesis properties of Tianping's EMVCo merchant QR payloads.

Two invariants: every valid `MerchantQr` survives encoding and parsing unchanged, and no payload
that differs from a valid one in a single character is accepted. The second is what the CRC is
for: CRC-16 detects every error burst of at most 16 bits, and one changed ASCII character is a
burst of at most 8, so a scanner never pays a damaged code.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.payments.qr import (
    EXPIRES_AT_MAX,
    MERCHANT_CITY_LENGTH_MAX,
    MERCHANT_ID_LENGTH_MAX,
    MERCHANT_NAME_LENGTH_MAX,
    PAYLOAD_LENGTH_MAX,
    REFERENCE_LENGTH_MAX,
    MerchantQr,
    QrError,
    encode_merchant_qr,
    parse_merchant_qr,
)

PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
MERCHANT_ID_ALPHABET = st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
)
MERCHANT_IDS = st.text(MERCHANT_ID_ALPHABET, min_size=1, max_size=MERCHANT_ID_LENGTH_MAX)
MERCHANT_NAMES = st.text(PRINTABLE_ASCII, min_size=1, max_size=MERCHANT_NAME_LENGTH_MAX)
MERCHANT_CITIES = st.text(PRINTABLE_ASCII, min_size=1, max_size=MERCHANT_CITY_LENGTH_MAX)
DIGIT = st.sampled_from("0123456789")
UPPER = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@st.composite
def merchant_qrs(draw: st.DrawFn) -> MerchantQr:
    """Any valid static or dynamic code, in any active currency, with fields up to their limits."""
    currency = draw(st.sampled_from(sorted(ACTIVE_CURRENCIES)))
    fields: dict[str, Any] = {
        "merchant_id": draw(MERCHANT_IDS),
        "merchant_name": draw(MERCHANT_NAMES),
        "merchant_city": draw(MERCHANT_CITIES),
        "category_code": draw(st.text(DIGIT, min_size=4, max_size=4)),
        "currency": currency,
        "country": draw(st.text(UPPER, min_size=2, max_size=2)),
    }
    if draw(st.booleans()):
        exponent = ACTIVE_CURRENCIES[currency][1]
        # Thirteen characters of amount text: twelve digits plus a point, or thirteen digits.
        digits_max = 13 if exponent == 0 else 12
        fields["amount_minor"] = draw(st.integers(1, 10**digits_max - 1))
        fields["reference"] = draw(
            st.text(PRINTABLE_ASCII, min_size=1, max_size=REFERENCE_LENGTH_MAX)
        )
        fields["expires_at"] = draw(st.integers(1, EXPIRES_AT_MAX))
    return MerchantQr(**fields)


@given(merchant_qrs())
def test_encoding_then_parsing_returns_the_same_code(qr: MerchantQr) -> None:
    payload = encode_merchant_qr(qr)
    assert len(payload) <= PAYLOAD_LENGTH_MAX
    assert parse_merchant_qr(payload) == qr


@given(merchant_qrs(), st.data())
def test_any_single_character_change_is_refused(qr: MerchantQr, data: st.DataObject) -> None:
    payload = encode_merchant_qr(qr)
    position = data.draw(st.integers(0, len(payload) - 1), label="position")
    original = payload[position]
    # Mostly printable ASCII, where a change keeps the payload's character set valid and only the
    # CRC and the structure checks can catch it, and sometimes any other character at all.
    replacement = data.draw(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=original)
        | st.characters(codec="utf-8", exclude_characters=original),
        label="replacement",
    )
    tampered = payload[:position] + replacement + payload[position + 1 :]
    with pytest.raises(QrError):
        parse_merchant_qr(tampered)
