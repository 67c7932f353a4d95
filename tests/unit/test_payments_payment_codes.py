"""Unit tests for customer-presented payment codes: format, derivation, time window, refusals."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tianping.payments.payment_codes import (
    ACCEPTED_SKEW_STEPS,
    EXPIRED_LOOKBACK_STEPS,
    PAYMENT_CODE_LENGTH,
    SECRET_BYTES,
    SLOT_COUNT,
    STEP_SECONDS,
    PaymentCodeCredential,
    PaymentCodeError,
    PaymentCodeExpired,
    PaymentCodeInvalid,
    PaymentCodeIssuer,
    PaymentCodeMalformed,
    PaymentCodeMatch,
    new_payment_code_credential,
    slot_of,
    step_at,
    verify_payment_code,
)

SECRET = bytes(range(SECRET_BYTES))
OTHER_SECRET = bytes(range(100, 100 + SECRET_BYTES))
SLOT = 42
NOW = 1_700_000_000  # inside step 56_666_666, ten seconds after it began
STEP = NOW // STEP_SECONDS
CREDENTIAL = PaymentCodeCredential(slot=SLOT, secret=SECRET)
ISSUER = PaymentCodeIssuer(CREDENTIAL)


def secrets_of(*credentials: PaymentCodeCredential) -> dict[int, bytes]:
    """The service's slot table, reduced to what verification needs."""
    return {credential.slot: credential.secret for credential in credentials}


def verify(code: str, now: int, table: dict[int, bytes] | None = None) -> PaymentCodeMatch:
    return verify_payment_code(code, (table or secrets_of(CREDENTIAL)).get, now)


def start_of(step: int) -> int:
    return step * STEP_SECONDS


# --------------------------------------------------------------------------- format and derivation


def test_code_is_prefix_slot_and_ten_digits() -> None:
    code = ISSUER.code_at(NOW)
    assert len(code) == PAYMENT_CODE_LENGTH == 18
    assert code.isascii() and code.isdigit()
    assert code[:2] == "28"
    assert code[2:8] == "000042"
    assert slot_of(code) == SLOT


def test_code_follows_the_documented_derivation() -> None:
    """An independent reading of the module docstring gives the same ten digits."""
    message = b"tianping.payment-code.v1\x00" + SLOT.to_bytes(4, "big") + STEP.to_bytes(8, "big")
    digest = hmac.new(SECRET, message, hashlib.sha256).digest()
    offset = digest[31] % 16
    number = int.from_bytes(digest[offset : offset + 8], "big") % 2**63
    assert ISSUER.code_at(NOW) == "28000042" + str(number % 10**10).zfill(10)


def test_code_is_pinned_for_a_fixed_secret() -> None:
    """Changing the derivation would break every app in the field; this value must not move."""
    assert ISSUER.code_at(NOW) == "280000423505931430"


def test_code_is_the_same_throughout_a_step() -> None:
    assert ISSUER.code_at(start_of(STEP)) == ISSUER.code_at(start_of(STEP + 1) - 1)
    assert ISSUER.code_at(start_of(STEP)) == ISSUER.code_for_step(STEP)


def test_codes_change_from_step_to_step() -> None:
    codes = {ISSUER.code_for_step(step) for step in range(STEP, STEP + 200)}
    assert len(codes) == 200


def test_one_time_digits_use_the_whole_ten_digit_range() -> None:
    """A 31-bit truncation would only ever start with 0, 1 or 2; 63 bits reach every digit."""
    leading_digits = {ISSUER.code_for_step(step)[8] for step in range(STEP, STEP + 500)}
    assert leading_digits == set("0123456789")


def test_the_slot_is_bound_into_the_number() -> None:
    """The same secret under another slot gives an unrelated code."""
    other_slot = PaymentCodeIssuer(PaymentCodeCredential(slot=SLOT + 1, secret=SECRET))
    assert other_slot.code_at(NOW)[8:] != ISSUER.code_at(NOW)[8:]


def test_slot_is_zero_padded() -> None:
    for slot in (0, 7, SLOT_COUNT - 1):
        code = PaymentCodeIssuer(PaymentCodeCredential(slot, SECRET)).code_at(NOW)
        assert code[2:8] == f"{slot:06d}"
        assert slot_of(code) == slot


# --------------------------------------------------------------------------- verification


def test_a_fresh_code_verifies_to_its_slot_and_step() -> None:
    assert verify(ISSUER.code_at(NOW), NOW) == PaymentCodeMatch(slot=SLOT, step=STEP)


@pytest.mark.parametrize("offset", range(-ACCEPTED_SKEW_STEPS, ACCEPTED_SKEW_STEPS + 1))
def test_one_step_of_skew_either_way_is_accepted(offset: int) -> None:
    code = ISSUER.code_for_step(STEP + offset)
    assert verify(code, NOW) == PaymentCodeMatch(slot=SLOT, step=STEP + offset)


def test_a_code_lives_sixty_seconds_from_the_start_of_its_step() -> None:
    code = ISSUER.code_for_step(STEP)
    assert verify(code, start_of(STEP) + 59).step == STEP
    with pytest.raises(PaymentCodeExpired):
        verify(code, start_of(STEP) + 60)


def test_a_code_from_two_steps_ahead_is_invalid() -> None:
    """A payer clock more than one step fast is not absorbed: the code is not yet valid."""
    with pytest.raises(PaymentCodeInvalid):
        verify(ISSUER.code_for_step(STEP + ACCEPTED_SKEW_STEPS + 1), NOW)


def test_an_old_code_is_reported_as_expired() -> None:
    oldest_recognised = STEP - ACCEPTED_SKEW_STEPS - EXPIRED_LOOKBACK_STEPS
    for step in (STEP - ACCEPTED_SKEW_STEPS - 1, oldest_recognised):
        with pytest.raises(PaymentCodeExpired) as caught:
            verify(ISSUER.code_for_step(step), NOW)
        assert caught.value.code == "payment_code_expired"


def test_a_code_older_than_the_lookback_is_invalid() -> None:
    too_old = STEP - ACCEPTED_SKEW_STEPS - EXPIRED_LOOKBACK_STEPS - 1
    with pytest.raises(PaymentCodeInvalid):
        verify(ISSUER.code_for_step(too_old), NOW)


def test_codes_near_the_epoch_do_not_look_at_negative_steps() -> None:
    code = ISSUER.code_at(0)
    assert verify(code, 0) == PaymentCodeMatch(slot=SLOT, step=0)
    with pytest.raises(PaymentCodeInvalid):
        verify(ISSUER.code_for_step(5), 0)


def test_wrong_secret_is_invalid() -> None:
    with pytest.raises(PaymentCodeInvalid) as caught:
        verify(ISSUER.code_at(NOW), NOW, {SLOT: OTHER_SECRET})
    assert caught.value.code == "payment_code_invalid"


def test_unissued_slot_is_invalid() -> None:
    with pytest.raises(PaymentCodeInvalid):
        verify(ISSUER.code_at(NOW), NOW, {SLOT + 1: SECRET})


def test_a_code_moved_to_another_slot_is_invalid() -> None:
    """Rewriting the slot digits of a genuine code never lands on another payer's account."""
    code = ISSUER.code_at(NOW)
    moved = code[:2] + f"{SLOT + 1:06d}" + code[8:]
    with pytest.raises(PaymentCodeInvalid):
        verify(moved, NOW, {SLOT: SECRET, SLOT + 1: SECRET})


def test_each_changed_one_time_digit_is_invalid() -> None:
    code = ISSUER.code_at(NOW)
    for position in range(8, PAYMENT_CODE_LENGTH):
        changed_digit = str((int(code[position]) + 1) % 10)
        with pytest.raises(PaymentCodeInvalid):
            verify(code[:position] + changed_digit + code[position + 1 :], NOW)


def test_two_payers_resolve_to_their_own_slots() -> None:
    other = PaymentCodeCredential(slot=900_001, secret=OTHER_SECRET)
    table = secrets_of(CREDENTIAL, other)
    assert verify(PaymentCodeIssuer(other).code_at(NOW), NOW, table).slot == 900_001
    assert verify(ISSUER.code_at(NOW), NOW, table).slot == SLOT


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[object, object]] = []
    original = hmac.compare_digest

    def recording_compare(left: str, right: str) -> bool:
        compared.append((left, right))
        return original(left, right)

    monkeypatch.setattr(hmac, "compare_digest", recording_compare)
    verify(ISSUER.code_at(NOW), NOW)
    assert compared and compared[0][1] == ISSUER.code_at(NOW)[8:]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "code",
    [
        "",
        "28000042350593143",  # seventeen digits
        "2800004235059314300",  # nineteen digits
        "290000423505931430",  # another prefix
        "28000042350593143a",
        "28 000042350593143",
        "28000042350593143\u0660",  # ARABIC-INDIC DIGIT ZERO is a digit, but not ASCII
        "2" * 10_000,
    ],
)
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(PaymentCodeMalformed) as caught:
        verify(code, NOW)
    assert caught.value.code == "payment_code_malformed"
    with pytest.raises(PaymentCodeMalformed):
        slot_of(code)


def test_non_text_code_is_malformed() -> None:
    with pytest.raises(PaymentCodeMalformed):
        verify(280000423505931430, NOW)  # type: ignore[arg-type]


def test_malformed_code_never_reaches_the_slot_table() -> None:
    looked_up: list[int] = []

    def secret_for_slot(slot: int) -> bytes | None:
        looked_up.append(slot)
        return SECRET

    with pytest.raises(PaymentCodeMalformed):
        verify_payment_code("29" + ISSUER.code_at(NOW)[2:], secret_for_slot, NOW)
    assert looked_up == []


# --------------------------------------------------------------------------- credentials and inputs


def test_new_credential_takes_a_full_size_secret_from_the_random_source() -> None:
    requested: list[int] = []

    def random_bytes(count: int) -> bytes:
        requested.append(count)
        return b"\x07" * count

    credential = new_payment_code_credential(SLOT, random_bytes=random_bytes)
    assert requested == [SECRET_BYTES]
    assert credential == PaymentCodeCredential(SLOT, b"\x07" * SECRET_BYTES)


def test_new_credentials_get_different_secrets_by_default() -> None:
    first, second = new_payment_code_credential(1), new_payment_code_credential(1)
    assert len(first.secret) == SECRET_BYTES
    assert first.secret != second.secret


def test_credential_repr_hides_the_secret() -> None:
    assert repr(SECRET) not in repr(CREDENTIAL)
    assert "secret" not in repr(CREDENTIAL)


@pytest.mark.parametrize("slot", [-1, SLOT_COUNT, True, "42"])
def test_slot_out_of_range_is_refused(slot: object) -> None:
    with pytest.raises(ValueError, match="slot"):
        PaymentCodeCredential(slot=slot, secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slot"):
        new_payment_code_credential(slot)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [b"", b"x" * 15, b"x" * 65])
def test_secret_of_the_wrong_size_is_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        PaymentCodeCredential(slot=SLOT, secret=secret)


def test_secret_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        PaymentCodeCredential(slot=SLOT, secret="x" * 32)  # type: ignore[arg-type]


def test_a_bad_secret_from_the_table_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(ISSUER.code_at(NOW), NOW, {SLOT: b"short"})


@pytest.mark.parametrize("now", [-1, True, "1700000000", 2**62])
def test_now_must_be_sensible_unix_seconds(now: object) -> None:
    with pytest.raises(ValueError, match="now"):
        step_at(now)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now"):
        verify(ISSUER.code_at(NOW), now)  # type: ignore[arg-type]


def test_step_at_counts_thirty_second_steps() -> None:
    assert STEP_SECONDS == 30
    assert step_at(0) == 0
    assert step_at(29) == 0
    assert step_at(30) == 1
    assert step_at(NOW) == STEP


def test_issuer_needs_a_credential() -> None:
    with pytest.raises(TypeError):
        PaymentCodeIssuer(SECRET)  # type: ignore[arg-type]
    assert ISSUER.slot == SLOT
    with pytest.raises(ValueError, match="step"):
        ISSUER.code_for_step(-1)


def test_every_error_has_a_stable_code() -> None:
    codes = {
        PaymentCodeMalformed: "payment_code_malformed",
        PaymentCodeInvalid: "payment_code_invalid",
        PaymentCodeExpired: "payment_code_expired",
    }
    for error_class, code in codes.items():
        assert issubclass(error_class, PaymentCodeError)
        assert error_class("message").code == code
