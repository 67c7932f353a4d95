"""Customer-presented payment codes: short-lived one-time numbers a merchant scans or types in.

The payer's app shows an 18-digit number (and its barcode); the merchant's terminal sends it to
Tianping, which resolves it to the payer and debits them. The app can compute codes offline, so
a code is derived from a per-payer secret and the time, in the manner of RFC 6238 (TOTP):

    code = "28" + slot (6 digits) + one-time number (10 digits)

* "28" is a fixed prefix, so a terminal can tell a Tianping payment code from other numbers
  (card numbers, other wallets' codes) before sending it anywhere.
* The slot is a number from 000000 to 999999 that the payment service issues to one payer's
  enrolled device and keeps in a table of slot to (payer, secret). It is written in the clear so
  that a code resolves to one secret with one indexed lookup, never a scan over every payer.
* The one-time number is HMAC-SHA256, keyed by the slot's secret, over a domain label, the slot
  and the time step, truncated in the manner of RFC 4226 section 5.3: the low four bits of the
  last byte pick an offset, eight bytes from there (top bit cleared, as RFC 4226 does with four)
  are read as an integer, and its last ten decimal digits are kept. RFC 4226 takes four bytes,
  which give only 31 bits and cannot fill ten digits; eight bytes give 63 bits, so the ten digits
  are uniform to within one part in a billion. Binding the slot into the message means a secret
  copied to another slot by mistake still gives unrelated codes there.

Time. A step is `STEP_SECONDS` (30 s). The service accepts the code of its own current step and
of one step either side (`ACCEPTED_SKEW_STEPS`): the step before lets a code shown at the end of
its step be scanned a moment later, or a payer clock running behind; the step after absorbs a
payer clock running ahead. With both clocks right, a code is therefore accepted for at most
60 seconds after its step began. A code that matches one of the `EXPIRED_LOOKBACK_STEPS` steps
before that window raises `PaymentCodeExpired`, so the app can say "refresh the code" instead of
"wrong code"; anything else is `PaymentCodeInvalid`.

What the service must do with a match. This module is pure and keeps no state, so it cannot tell
a first use from a replay. `verify_payment_code` returns the (slot, step) it matched, and the
service must record it and accept a slot's code only if its step is later than the last step
accepted for that slot, in the same transaction as the payment. That makes each code single-use
(RFC 6238 section 5.2) and also refuses an older code after a newer one. A payer who pays twice
within one step gets the next step's code for the second payment, which the +1 skew allowance
accepts. The service should also count failed verifications per slot and per terminal and stop
after a few: one guess at a known slot succeeds with probability 3 in 10^10, which is only
negligible while guesses are limited.

Known limits. The slot is visible to every merchant who scans a code, so it identifies a payer
across purchases for as long as the slot is theirs; the service should lease slots for a limited
time, hand out free slots at random, and re-enrol devices when a lease ends. Six digits allow a
million concurrent enrolments; widening the slot means a longer code or fewer one-time digits.

Hand-written because the library the project uses for TOTP (pyotp) truncates to 31 bits as RFC
4226 does, so only about a fifth of all ten-digit numbers could ever occur, and it has no notion
of a slot. The primitives come from the standard library (`hmac`, `hashlib`, `secrets`), and
comparisons use `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ACCEPTED_SKEW_STEPS",
    "EXPIRED_LOOKBACK_STEPS",
    "ONE_TIME_DIGITS",
    "PAYMENT_CODE_LENGTH",
    "PAYMENT_CODE_PREFIX",
    "SECRET_BYTES",
    "SECRET_BYTES_MAX",
    "SECRET_BYTES_MIN",
    "SLOT_COUNT",
    "SLOT_DIGITS",
    "STEP_SECONDS",
    "PaymentCodeCredential",
    "PaymentCodeError",
    "PaymentCodeExpired",
    "PaymentCodeInvalid",
    "PaymentCodeIssuer",
    "PaymentCodeMalformed",
    "PaymentCodeMatch",
    "new_payment_code_credential",
    "slot_of",
    "step_at",
    "verify_payment_code",
]

PAYMENT_CODE_PREFIX: Final = "28"
SLOT_DIGITS: Final = 6
SLOT_COUNT: Final = 10**SLOT_DIGITS
ONE_TIME_DIGITS: Final = 10
PAYMENT_CODE_LENGTH: Final = len(PAYMENT_CODE_PREFIX) + SLOT_DIGITS + ONE_TIME_DIGITS

STEP_SECONDS: Final = 30
ACCEPTED_SKEW_STEPS: Final = 1
# How many steps before the accepted window are still recognised, to report "expired" rather
# than "invalid". Ten steps (five minutes) covers a code shown and then forgotten on a screen,
# and bounds a failed verification to thirteen HMAC computations.
EXPIRED_LOOKBACK_STEPS: Final = 10

# 32 bytes is the HMAC-SHA256 output length, the key size RFC 2104 section 3 recommends. Keys
# shorter than 16 bytes are refused as too weak, longer than 64 (SHA-256's block size, beyond
# which HMAC hashes the key first) as a sign that something other than a secret was passed.
SECRET_BYTES: Final = 32
SECRET_BYTES_MIN: Final = 16
SECRET_BYTES_MAX: Final = 64

# Unix time in seconds fits in eight bytes for any plausible clock, and the step is written in
# eight bytes; the bound refuses a nonsensical `now` instead of overflowing.
_NOW_MAX: Final = 2**62
# Separates these HMACs from any other use of the same key, and versions the derivation.
_DOMAIN_LABEL: Final = b"tianping.payment-code.v1\x00"
_CODE_PATTERN: Final = re.compile(
    rf"{PAYMENT_CODE_PREFIX}(?P<slot>[0-9]{{{SLOT_DIGITS}}})(?P<otp>[0-9]{{{ONE_TIME_DIGITS}}})"
)


class PaymentCodeError(ValueError):
    """Root of the payment-code errors; `code` is stable and the message names no payer."""

    code = "payment_code_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PaymentCodeMalformed(PaymentCodeError):
    """Raised when the text is not 18 ASCII digits starting with the Tianping prefix."""

    code = "payment_code_malformed"


class PaymentCodeInvalid(PaymentCodeError):
    """Raised when a well-formed code belongs to no issued slot or does not match its secret.

    An unknown slot and a wrong number give the same error so that a caller probing codes learns
    nothing about which slots are issued from the answer.
    """

    code = "payment_code_invalid"


class PaymentCodeExpired(PaymentCodeError):
    """Raised when a code is genuine but its step is before the accepted window."""

    code = "payment_code_expired"


@dataclass(frozen=True, slots=True)
class PaymentCodeMatch:
    """What a verified code resolved to: the slot and the time step whose code it was.

    The service records the pair; see the module docstring for why and how.
    """

    slot: int
    step: int


def _check_slot(slot: object) -> int:
    # bool is refused although it is an int: True as a slot number is always a bug.
    if type(slot) is not int or not 0 <= slot < SLOT_COUNT:
        raise ValueError(f"slot must be an int from 0 to {SLOT_COUNT - 1}")
    return slot


def _check_secret(secret: object) -> bytes:
    if not isinstance(secret, bytes):
        raise TypeError(f"secret must be bytes, got {type(secret).__name__}")
    if not SECRET_BYTES_MIN <= len(secret) <= SECRET_BYTES_MAX:
        raise ValueError(
            f"secret must be {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes, got {len(secret)}"
        )
    return secret


def _check_now(now: object) -> int:
    if type(now) is not int or not 0 <= now < _NOW_MAX:
        raise ValueError("now must be an int of Unix seconds, not negative")
    return now


@dataclass(frozen=True, slots=True)
class PaymentCodeCredential:
    """One enrolment: the slot the service issued and the secret shared with the payer's app.

    The secret is left out of `repr` so that it never reaches a log by accident.
    """

    slot: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_slot(self.slot)
        _check_secret(self.secret)


def new_payment_code_credential(
    slot: int, *, random_bytes: Callable[[int], bytes] = secrets.token_bytes
) -> PaymentCodeCredential:
    """Make a credential for a slot the service has chosen, with a fresh random secret.

    `random_bytes` must be a cryptographically secure source; it is a parameter only so that
    tests can make credentials deterministically.
    """
    return PaymentCodeCredential(slot=_check_slot(slot), secret=random_bytes(SECRET_BYTES))


def step_at(now: int) -> int:
    """Return the time step that contains `now` (Unix seconds)."""
    return _check_now(now) // STEP_SECONDS


def _one_time_number(secret: bytes, slot: int, step: int) -> str:
    """The ten-digit one-time number for (slot, step), as zero-padded text."""
    message = _DOMAIN_LABEL + slot.to_bytes(4, "big") + step.to_bytes(8, "big")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    # Dynamic truncation: the offset is at most 15, so eight bytes from it stay inside the 32.
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 8], "big") & 0x7FFF_FFFF_FFFF_FFFF
    return f"{value % 10**ONE_TIME_DIGITS:0{ONE_TIME_DIGITS}d}"


class PaymentCodeIssuer:
    """Computes the payment codes of one credential; runs in the payer's app or for it.

    It holds no clock: the caller passes `now`, so the same issuer gives the same code for the
    same instant, which is what lets the service recompute it.
    """

    __slots__ = ("_credential",)

    def __init__(self, credential: PaymentCodeCredential) -> None:
        if not isinstance(credential, PaymentCodeCredential):
            raise TypeError(f"expected a PaymentCodeCredential, got {type(credential).__name__}")
        self._credential = credential

    @property
    def slot(self) -> int:
        return self._credential.slot

    def code_for_step(self, step: int) -> str:
        """Return the 18-digit code for a time step."""
        if type(step) is not int or not 0 <= step < _NOW_MAX:
            raise ValueError("step must be a non-negative int")
        slot = self._credential.slot
        one_time = _one_time_number(self._credential.secret, slot, step)
        return f"{PAYMENT_CODE_PREFIX}{slot:0{SLOT_DIGITS}d}{one_time}"

    def code_at(self, now: int) -> str:
        """Return the 18-digit code to show at `now` (Unix seconds)."""
        return self.code_for_step(step_at(now))


def _split_code(code: object) -> tuple[int, str]:
    """Return (slot, one-time digits) of a well-formed code, or raise `PaymentCodeMalformed`."""
    if not isinstance(code, str):
        raise PaymentCodeMalformed("a payment code must be text")
    # The length check comes first so that a huge input is refused without a regex scan.
    if len(code) != PAYMENT_CODE_LENGTH:
        raise PaymentCodeMalformed(f"a payment code has exactly {PAYMENT_CODE_LENGTH} digits")
    match = _CODE_PATTERN.fullmatch(code)
    if match is None:
        raise PaymentCodeMalformed(
            f"a payment code is {PAYMENT_CODE_LENGTH} ASCII digits starting with "
            f"{PAYMENT_CODE_PREFIX}"
        )
    return int(match["slot"]), match["otp"]


def slot_of(code: str) -> int:
    """Return the slot a well-formed code names, without checking the code itself.

    Useful to route or rate-limit by slot before the secret is fetched; never treat the result
    as proof of anything.
    """
    return _split_code(code)[0]


def verify_payment_code(
    code: str, secret_for_slot: Callable[[int], bytes | None], now: int
) -> PaymentCodeMatch:
    """Check a scanned code and return the (slot, step) it is for.

    `secret_for_slot` looks up the secret of an issued slot and returns None for a slot that is
    not issued. `now` is the service's Unix time in seconds. The caller must then enforce one-time
    use: accept the match only if its step is later than the last step recorded for the slot,
    and record it with the payment (see the module docstring).

    Raises `PaymentCodeMalformed` for text that is not a payment code, `PaymentCodeExpired` for
    a genuine code whose step has passed, and `PaymentCodeInvalid` for anything else.
    """
    current_step = step_at(now)
    slot, presented = _split_code(code)
    secret = secret_for_slot(slot)
    if secret is None:
        raise PaymentCodeInvalid("the payment code is not valid")
    _check_secret(secret)
    # The current step is tried first, so in the (one in ten billion) case that two steps give
    # the same number the most likely one is reported.
    accepted_steps = [current_step]
    for distance in range(1, ACCEPTED_SKEW_STEPS + 1):
        accepted_steps += [current_step - distance, current_step + distance]
    for step in accepted_steps:
        if step >= 0 and hmac.compare_digest(_one_time_number(secret, slot, step), presented):
            return PaymentCodeMatch(slot=slot, step=step)
    oldest_accepted = current_step - ACCEPTED_SKEW_STEPS
    for step in range(oldest_accepted - 1, oldest_accepted - 1 - EXPIRED_LOOKBACK_STEPS, -1):
        if step >= 0 and hmac.compare_digest(_one_time_number(secret, slot, step), presented):
            raise PaymentCodeExpired("the payment code has expired; show a fresh one")
    raise PaymentCodeInvalid("the payment code is not valid")
