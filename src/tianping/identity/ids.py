"""Pseudonymous party ids and payment-account ids: their shape, how they are made and read.

A party id is `pty_` followed by a ULID in lower-case Crockford base32: 26 characters encoding
48 bits of milliseconds since the epoch and 80 random bits, e.g. `pty_01jd3k9x7q8r2m4n6p0s1t3v5w`.
Outside the identity context nothing else identifies a person, so the id carries no personal
data at all: only the time it was made and randomness. The time prefix keeps index inserts near
the right-hand edge of the B-tree, as the ledger's ids do.

Payment-account ids have the same form with the prefix `pac_`.

Only the canonical form is accepted (lower case, no Crockford aliases such as `i`, `l`, `o`),
because ids are compared as text in SQL and two spellings of one id would be two parties.

This module is pure: the time is passed in, and randomness comes from the operating system
unless the caller supplies it (tests do, for deterministic ids).
"""

from __future__ import annotations

import os
import re
from typing import NewType

from tianping.identity.errors import IdentityError

__all__ = [
    "PARTY_ID_LENGTH",
    "PARTY_ID_PREFIX",
    "PAYMENT_ACCOUNT_ID_PREFIX",
    "InvalidPartyId",
    "InvalidPaymentAccountId",
    "PartyId",
    "PaymentAccountId",
    "is_party_id",
    "new_party_id",
    "new_payment_account_id",
    "parse_party_id",
    "parse_payment_account_id",
    "ulid_text",
]

PartyId = NewType("PartyId", str)
PaymentAccountId = NewType("PaymentAccountId", str)

PARTY_ID_PREFIX = "pty_"
PAYMENT_ACCOUNT_ID_PREFIX = "pac_"
_ULID_LENGTH = 26
PARTY_ID_LENGTH = len(PARTY_ID_PREFIX) + _ULID_LENGTH

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_ENTROPY_BYTES = 10
_MILLIS_MAX = 2**48 - 1
# A ULID is 128 bits in 130 bits of base32, so its first character is at most '7'.
_ULID_PATTERN = r"[0-7][0-9a-hjkmnp-tv-z]{25}"
_PARTY_ID = re.compile(PARTY_ID_PREFIX + _ULID_PATTERN)
_PAYMENT_ACCOUNT_ID = re.compile(PAYMENT_ACCOUNT_ID_PREFIX + _ULID_PATTERN)


class InvalidPartyId(IdentityError, ValueError):
    """A text that is not a party id in canonical form.

    The message never repeats the text: a caller may have passed a name or an ID number by
    mistake, and error messages reach logs.
    """

    code = "party_id_invalid"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or f"a party id is {PARTY_ID_PREFIX!r} followed by {_ULID_LENGTH} lower-case "
            "Crockford base32 characters"
        )


class InvalidPaymentAccountId(IdentityError, ValueError):
    """A text that is not a payment-account id in canonical form."""

    code = "payment_account_id_invalid"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or f"a payment-account id is {PAYMENT_ACCOUNT_ID_PREFIX!r} followed by "
            f"{_ULID_LENGTH} lower-case Crockford base32 characters"
        )


def ulid_text(now_ns: int, entropy: bytes | None = None) -> str:
    """A ULID in lower-case Crockford base32 for the time `now_ns` (nanoseconds).

    `entropy` gives the 80 random bits (10 bytes) for deterministic tests; by default they come
    from the operating system's random source.
    """
    if type(now_ns) is not int or now_ns < 0:
        raise ValueError("the time is a non-negative number of nanoseconds")
    millis = now_ns // 1_000_000
    if millis > _MILLIS_MAX:
        raise ValueError("the time lies beyond what a ULID can encode (year 10889)")
    if entropy is None:
        entropy = os.urandom(_ENTROPY_BYTES)
    elif len(entropy) != _ENTROPY_BYTES:
        raise ValueError(f"entropy is {_ENTROPY_BYTES} bytes, not {len(entropy)}")
    number = (millis << 80) | int.from_bytes(entropy, "big")
    characters = []
    for _ in range(_ULID_LENGTH):
        characters.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(characters))


def new_party_id(now_ns: int, entropy: bytes | None = None) -> PartyId:
    """A new party id made at `now_ns`; `entropy` (10 bytes) only for deterministic tests."""
    return PartyId(PARTY_ID_PREFIX + ulid_text(now_ns, entropy))


def new_payment_account_id(now_ns: int, entropy: bytes | None = None) -> PaymentAccountId:
    """A new payment-account id made at `now_ns`; `entropy` only for deterministic tests."""
    return PaymentAccountId(PAYMENT_ACCOUNT_ID_PREFIX + ulid_text(now_ns, entropy))


def is_party_id(text: object) -> bool:
    """Whether `text` is a party id in canonical form."""
    return isinstance(text, str) and _PARTY_ID.fullmatch(text) is not None


def parse_party_id(text: object) -> PartyId:
    """Read a party id, refusing anything but the canonical form with `InvalidPartyId`."""
    if not isinstance(text, str) or _PARTY_ID.fullmatch(text) is None:
        raise InvalidPartyId()
    return PartyId(text)


def parse_payment_account_id(text: object) -> PaymentAccountId:
    """Read a payment-account id, refusing anything but the canonical form."""
    if not isinstance(text, str) or _PAYMENT_ACCOUNT_ID.fullmatch(text) is None:
        raise InvalidPaymentAccountId()
    return PaymentAccountId(text)
