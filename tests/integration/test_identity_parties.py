"""Parties and KYC on SQLite and PostgreSQL: idempotent registration, verifications raising the
account class, one Class III account per institution, the blocklist's windows, minors with
guardians, same-name card binding, and no personal data in any table.

The `ledger` fixture verifies the ledger's invariants and the audit chain when each test ends,
so every test also proves that the identity records chained next to the ledger's leave it
intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ledger_support import ManualClock
from tianping.identity import party_service as ps
from tianping.identity.errors import IdentityError
from tianping.identity.ids import is_party_id
from tianping.identity.parties import (
    EVENT_TIMEZONE,
    AccountClass,
    Channel,
    InstitutionKind,
    PartyKind,
)
from tianping.ledger.service import Ledger

KEY = ps.FingerprintKey(bytes(range(32)))
TODAY = date(2026, 3, 1)
ADULT_BORN = date(1987, 5, 17)
CARD = "6222021234567890"
MERCHANT_NUMBER = "91330100716105852F"
EXTERNAL_KINDS = (
    Channel.ID_DOCUMENT_NAME_CHECK,
    Channel.BANK_CARD_ELEMENT_CHECK,
    Channel.FACE_MATCH,
    Channel.MOBILE_CARRIER_CHECK,
    Channel.FACE_MATCH,
)


def set_day(clock: ManualClock, day: date) -> None:
    """Move the clock to noon, Beijing time, on `day`."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=EVENT_TIMEZONE)
    clock.now = int(noon.timestamp()) * 1_000_000_000


@pytest.fixture
def today(clock: ManualClock) -> date:
    set_day(clock, TODAY)
    return TODAY


@pytest.fixture
def operator(ledger: Ledger, today: date) -> str:
    return ps.register_party(ledger, "operator", kind="platform_operator")


@pytest.fixture
def bank(ledger: Ledger, today: date) -> str:
    return ps.register_institution(ledger, "bank-1", institution_kind="partner_bank")


class Refusal:
    """Context manager asserting that the block raises an `IdentityError` with `code`."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.error: IdentityError | None = None

    def __enter__(self) -> Refusal:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        assert error is not None, f"expected a refusal with code {self.code}"
        assert isinstance(error, IdentityError), f"expected an IdentityError, got {error!r}"
        assert error.code == self.code, f"expected {self.code}, got {error.code}: {error}"
        self.error = error
        return True


def person(ledger: Ledger, request_id: str, born: date = ADULT_BORN, **extra: Any) -> str:
    return ps.register_person(ledger, request_id, date_of_birth=born, key=KEY, **extra)


def verify(
    ledger: Ledger, clock: ManualClock, party_id: str, count: int, prefix: str = "v"
) -> ps.VerificationResult:
    """Record `count` external verifications at distinct sources; returns the last result."""
    result = None
    for i in range(count):
        result = ps.record_verification(
            ledger,
            f"{prefix}-{party_id[-6:]}-{i}",
            party_id,
            channel=EXTERNAL_KINDS[i % len(EXTERNAL_KINDS)],
            source=f"source-{i}",
            verified_at=clock.now,
        )
    assert result is not None
    return result


def verified_person(ledger: Ledger, clock: ManualClock, request_id: str) -> str:
    """A person verified face to face (Class III)."""
    party_id = person(ledger, request_id)
    ps.record_verification(
        ledger,
        f"in-person-{request_id}",
        party_id,
        channel="in_person",
        source="branch-001",
        verified_at=clock.now,
    )
    return party_id


def all_stored_values(ledger: Ledger) -> Iterator[tuple[str, Any]]:
    """Every value of every table, with its table's name."""
    with ledger.read() as store:
        if store.backend == "sqlite":
            tables = [
                row[0]
                for row in store.connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
            ]
        else:
            tables = [
                row[0]
                for row in store.connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                ).fetchall()
            ]
        for table in tables:
            for row in store.connection.execute(f"SELECT * FROM {table}").fetchall():  # noqa: S608 - names from the catalogue
                for value in row:
                    yield table, value


def stored_text(ledger: Ledger) -> str:
    """All stored values as one text (bytes decoded leniently), to search for leaks."""
    parts = []
    for _, value in all_stored_values(ledger):
        if isinstance(value, bytes | memoryview):
            parts.append(bytes(value).decode("latin-1"))
        else:
            parts.append(str(value))
    return "\n".join(parts)


def count(ledger: Ledger, table: str) -> int:
    with ledger.read() as store:
        return int(store.connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed test table names


# -- registration ----------------------------------------------------------------------------


def test_registration_is_idempotent_by_request_id(ledger: Ledger, today: date) -> None:
    """The same request id with the same fields returns the same party and stores one row."""
    first = person(ledger, "signup-1")
    again = person(ledger, "signup-1")
    assert first == again
    assert is_party_id(first)
    assert count(ledger, "identity_parties") == 1
    party = ps.get_party(ledger, first)
    assert party.kind is PartyKind.PERSON
    assert party.account_class is None
    assert party.verifications == ()
    assert party.minor_until is None


def test_registration_with_the_same_id_and_other_fields_is_refused(
    ledger: Ledger, today: date
) -> None:
    """A reused request id with another date of birth, or for a merchant, is request_conflict."""
    person(ledger, "signup-1")
    with Refusal("request_conflict") as refusal:
        person(ledger, "signup-1", born=ADULT_BORN + timedelta(days=1))
    assert "1987" not in str(refusal.error)
    with Refusal("request_conflict"):
        ps.register_merchant(ledger, "signup-1", registration_number=MERCHANT_NUMBER)
    assert count(ledger, "identity_parties") == 1


def test_different_request_ids_register_different_people(ledger: Ledger, today: date) -> None:
    """Two requests with the same date of birth are two people, not one."""
    assert person(ledger, "signup-1") != person(ledger, "signup-2")


def test_person_registration_needs_the_fingerprint_key(
    ledger: Ledger, today: date, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key a person cannot be registered; the key from the environment works."""
    monkeypatch.delenv(ps.CARD_FINGERPRINT_KEY_ENV, raising=False)
    with Refusal("fingerprint_key_unavailable"):
        ps.register_person(ledger, "signup-1", date_of_birth=ADULT_BORN)
    monkeypatch.setenv(ps.CARD_FINGERPRINT_KEY_ENV, "zz-not-hex")
    with Refusal("fingerprint_key_unavailable"):
        ps.register_person(ledger, "signup-1", date_of_birth=ADULT_BORN)
    monkeypatch.setenv(ps.CARD_FINGERPRINT_KEY_ENV, bytes(range(32)).hex())
    from_env = ps.register_person(ledger, "signup-1", date_of_birth=ADULT_BORN)
    assert person(ledger, "signup-1") == from_env  # the same key recognises the retry
    assert repr(KEY) == "FingerprintKey(<hidden>)"


def test_merchants_institutions_and_staff_parties(ledger: Ledger, today: date) -> None:
    """Merchants keep their registration number (one merchant per number); institutions their
    kind; the operator, supervisors and auditors are plain parties."""
    merchant = ps.register_merchant(ledger, "m-1", registration_number=MERCHANT_NUMBER)
    assert ps.register_merchant(ledger, "m-1", registration_number=MERCHANT_NUMBER) == merchant
    with Refusal("registration_number_taken"):
        ps.register_merchant(ledger, "m-2", registration_number=MERCHANT_NUMBER)
    with Refusal("identity_input_invalid"):
        ps.register_merchant(ledger, "m-3", registration_number="91330100716105852G")
    assert ps.get_party(ledger, merchant).registration_number == MERCHANT_NUMBER
    for kind in InstitutionKind:
        institution = ps.register_institution(ledger, f"i-{kind.value}", institution_kind=kind)
        party = ps.get_party(ledger, institution)
        assert party.kind is PartyKind.INSTITUTION
        assert party.institution_kind is kind
    with Refusal("identity_input_invalid"):
        ps.register_institution(ledger, "i-x", institution_kind="payday_lender")
    for plain in ("platform_operator", "supervisor", "auditor"):
        assert ps.get_party(ledger, ps.register_party(ledger, plain, kind=plain)).kind == plain
    with Refusal("identity_input_invalid"):
        ps.register_party(ledger, "p-x", kind="person")


def test_unknown_and_malformed_party_ids(ledger: Ledger, today: date) -> None:
    """An unknown id is party_not_found; a malformed one is refused as input."""
    with Refusal("party_not_found"):
        ps.get_party(ledger, "pty_" + "0" * 26)
    with Refusal("identity_input_invalid") as refusal:
        ps.get_party(ledger, "Zhang San")
    assert "Zhang" not in str(refusal.error)


# -- minors ----------------------------------------------------------------------------------


def test_minor_needs_a_guardian_consent(ledger: Ledger, today: date) -> None:
    """At 13 years and 364 days a person is registered only with a guardian and consent."""
    born = date(2012, 3, 2)  # turns 14 tomorrow
    with Refusal("guardian_consent_required"):
        person(ledger, "child-1", born=born)
    guardian = person(ledger, "parent-1")
    with Refusal("guardian_consent_required"):
        person(ledger, "child-1", born=born, guardian_party_id=guardian)
    child = person(
        ledger,
        "child-1",
        born=born,
        guardian_party_id=guardian,
        guardian_consent_reference="consent-42",
    )
    party = ps.get_party(ledger, child)
    assert party.minor_until == date(2026, 3, 2)
    assert party.guardian_party_id == guardian
    assert party.guardian_consent_reference == "consent-42"
    assert party.is_minor_on(TODAY)
    assert not party.is_minor_on(date(2026, 3, 2))


def test_fourteen_exactly_needs_no_guardian(ledger: Ledger, today: date) -> None:
    """On the 14th birthday a person registers alone, and a guardian is not accepted."""
    born = date(2012, 3, 1)
    guardian = person(ledger, "parent-1")
    with Refusal("identity_input_invalid"):
        person(
            ledger,
            "teen-1",
            born=born,
            guardian_party_id=guardian,
            guardian_consent_reference="consent-1",
        )
    teen = person(ledger, "teen-1", born=born)
    assert ps.get_party(ledger, teen).minor_until is None


def test_guardian_must_be_an_adult_person(ledger: Ledger, today: date) -> None:
    """A guardian who is unknown, a merchant or a minor is refused."""
    born = date(2020, 1, 1)
    merchant = ps.register_merchant(ledger, "m-1", registration_number=MERCHANT_NUMBER)
    parent = person(ledger, "parent-1")
    sibling = person(
        ledger,
        "sibling",
        born=date(2013, 1, 1),
        guardian_party_id=parent,
        guardian_consent_reference="consent-1",
    )
    for guardian in ("pty_" + "0" * 26, merchant, sibling):
        with Refusal("guardian_invalid"):
            person(
                ledger,
                "child",
                born=born,
                guardian_party_id=guardian,
                guardian_consent_reference="consent-2",
            )


def test_dates_of_birth_are_checked(ledger: Ledger, today: date) -> None:
    """A future date of birth and one over 130 years back are refused; nothing is stored."""
    with Refusal("date_of_birth_invalid"):
        person(ledger, "future", born=TODAY + timedelta(days=1))
    with Refusal("date_of_birth_invalid"):
        person(ledger, "ancient", born=date(1896, 2, 29))
    assert count(ledger, "identity_parties") == 0
    assert ps.get_party(ledger, person(ledger, "oldest", born=date(1896, 3, 1))).kind == "person"


def test_minor_account_needs_guardian_consent_until_fourteen(
    ledger: Ledger, clock: ManualClock, today: date, operator: str
) -> None:
    """A minor's payment account needs the guardian's consent reference; once 14, it does not."""
    parent = person(ledger, "parent-1")
    child = person(
        ledger,
        "child-1",
        born=date(2015, 6, 1),
        guardian_party_id=parent,
        guardian_consent_reference="consent-1",
    )
    verify(ledger, clock, child, 1)
    with Refusal("guardian_consent_required"):
        ps.open_payment_account(ledger, "acc-1", child, operator)
    account = ps.open_payment_account(
        ledger, "acc-1", child, operator, guardian_consent_reference="consent-7"
    )
    assert account.account_class is AccountClass.I
    set_day(clock, date(2029, 6, 1))
    with Refusal("identity_input_invalid"):
        ps.open_payment_account(
            ledger, "acc-2", child, operator, guardian_consent_reference="consent-8"
        )
    assert ps.open_payment_account(ledger, "acc-2", child, operator).opened_on == date(2029, 6, 1)


# -- verifications and classes ---------------------------------------------------------------


def test_verifications_upgrade_the_class_step_by_step(
    ledger: Ledger, clock: ManualClock, today: date
) -> None:
    """1, 3 and 5 distinct external channels raise the class to I, II and III, no earlier."""
    party_id = person(ledger, "signup-1")
    classes = []
    upgrades = []
    for i in range(5):
        result = ps.record_verification(
            ledger,
            f"v-{i}",
            party_id,
            channel=EXTERNAL_KINDS[i],
            source=f"source-{i}",
            verified_at=clock.now,
        )
        classes.append(result.account_class)
        upgrades.append(result.upgraded)
        assert ps.get_party(ledger, party_id).account_class is result.account_class
    assert classes == [
        AccountClass.I,
        AccountClass.I,
        AccountClass.II,
        AccountClass.II,
        AccountClass.III,
    ]
    assert upgrades == [True, False, True, False, True]
    stored = ps.get_party(ledger, party_id).verifications
    assert [v.verification_id for v in stored] == [f"v-{i}" for i in range(5)]
    assert [v.channel for v in stored] == list(EXTERNAL_KINDS)


def test_repeated_checks_do_not_upgrade(ledger: Ledger, clock: ManualClock, today: date) -> None:
    """The same check at the same source recorded three times stays one channel: Class I."""
    party_id = person(ledger, "signup-1")
    for i in range(3):
        result = ps.record_verification(
            ledger, f"v-{i}", party_id, channel="face_match", source="gab", verified_at=clock.now
        )
    assert result.account_class is AccountClass.I
    assert len(ps.get_party(ledger, party_id).verifications) == 3


def test_in_person_verification_gives_class_iii(
    ledger: Ledger, clock: ManualClock, today: date
) -> None:
    """One face-to-face verification takes an unverified person straight to Class III."""
    party_id = verified_person(ledger, clock, "signup-1")
    assert ps.get_party(ledger, party_id).account_class is AccountClass.III


def test_verification_is_idempotent_by_its_id(
    ledger: Ledger, clock: ManualClock, today: date
) -> None:
    """A retried verification is a replay; the same id with other fields is a conflict."""
    party_id = person(ledger, "signup-1")
    fields: dict[str, Any] = {"channel": "face_match", "source": "gab", "verified_at": clock.now}
    first = ps.record_verification(ledger, "v-1", party_id, **fields)
    again = ps.record_verification(ledger, "v-1", party_id, **fields)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.account_class is AccountClass.I
    with Refusal("request_conflict"):
        ps.record_verification(ledger, "v-1", party_id, **{**fields, "source": "other"})
    other = person(ledger, "signup-2")
    with Refusal("request_conflict"):
        ps.record_verification(ledger, "v-1", other, **fields)
    assert count(ledger, "identity_verifications") == 1


def test_verification_refusals(ledger: Ledger, clock: ManualClock, today: date) -> None:
    """Verifications are for persons, with known channels, and not from the future."""
    merchant = ps.register_merchant(ledger, "m-1", registration_number=MERCHANT_NUMBER)
    party_id = person(ledger, "signup-1")
    now = clock.now
    with Refusal("party_kind_not_allowed"):
        ps.record_verification(
            ledger, "v-1", merchant, channel="face_match", source="gab", verified_at=now
        )
    with Refusal("party_not_found"):
        ps.record_verification(
            ledger, "v-1", "pty_" + "0" * 26, channel="face_match", source="gab", verified_at=now
        )
    with Refusal("identity_input_invalid"):
        ps.record_verification(
            ledger, "v-1", party_id, channel="fingerprint", source="gab", verified_at=now
        )
    with Refusal("identity_input_invalid"):
        ps.record_verification(
            ledger, "v-1", party_id, channel="face_match", source="gab", verified_at=now + 1
        )
    assert count(ledger, "identity_verifications") == 0


# -- payment accounts ------------------------------------------------------------------------


def test_accounts_need_the_verified_class(
    ledger: Ledger, clock: ManualClock, today: date, operator: str
) -> None:
    """No account without a verification; none above the verified class; the default is it."""
    party_id = person(ledger, "signup-1")
    with Refusal("account_class_not_verified"):
        ps.open_payment_account(ledger, "acc-1", party_id, operator)
    verify(ledger, clock, party_id, 3)
    with Refusal("account_class_not_verified"):
        ps.open_payment_account(ledger, "acc-1", party_id, operator, account_class="III")
    account = ps.open_payment_account(ledger, "acc-1", party_id, operator)
    assert account.account_class is AccountClass.II
    assert account.opened_on == TODAY
    lower = ps.open_payment_account(ledger, "acc-2", party_id, operator, account_class="I")
    assert lower.account_class is AccountClass.I
    assert [a.account_id for a in ps.list_payment_accounts(ledger, party_id)] == [
        account.account_id,
        lower.account_id,
    ]


def test_one_class_iii_account_per_person_per_institution(
    ledger: Ledger, clock: ManualClock, today: date, operator: str, bank: str
) -> None:
    """A second Class III at the same institution is refused; at another one it is allowed,
    and lower classes at the same institution are too."""
    party_id = verified_person(ledger, clock, "signup-1")
    first = ps.open_payment_account(ledger, "acc-1", party_id, operator)
    assert first.account_class is AccountClass.III
    with Refusal("class_iii_limit_reached"):
        ps.open_payment_account(ledger, "acc-2", party_id, operator)
    second = ps.open_payment_account(ledger, "acc-2", party_id, operator, account_class="II")
    at_bank = ps.open_payment_account(ledger, "acc-3", party_id, bank)
    assert (second.account_class, at_bank.account_class) == (AccountClass.II, AccountClass.III)
    with Refusal("class_iii_limit_reached"):
        ps.upgrade_payment_account(ledger, second.account_id, "III")
    other = verified_person(ledger, clock, "signup-2")
    assert ps.open_payment_account(ledger, "acc-4", other, operator).account_class.label == "III"


def test_account_opening_is_idempotent_by_request_id(
    ledger: Ledger, clock: ManualClock, today: date, operator: str, bank: str
) -> None:
    """A retried opening returns the same account (even a Class III one); other fields conflict."""
    party_id = verified_person(ledger, clock, "signup-1")
    first = ps.open_payment_account(ledger, "acc-1", party_id, operator)
    assert ps.open_payment_account(ledger, "acc-1", party_id, operator) == first
    with Refusal("request_conflict"):
        ps.open_payment_account(ledger, "acc-1", party_id, bank)
    with Refusal("request_conflict"):
        ps.open_payment_account(ledger, "acc-1", party_id, operator, account_class="III")
    assert count(ledger, "identity_payment_accounts") == 1


def test_accounts_are_issued_only_to_persons_by_issuers(
    ledger: Ledger, clock: ManualClock, today: date, operator: str
) -> None:
    """An insurer cannot issue payment accounts and a merchant or bank cannot hold one."""
    party_id = verified_person(ledger, clock, "signup-1")
    insurer = ps.register_institution(ledger, "ins-1", institution_kind="insurer")
    merchant = ps.register_merchant(ledger, "m-1", registration_number=MERCHANT_NUMBER)
    with Refusal("party_kind_not_allowed"):
        ps.open_payment_account(ledger, "acc-1", party_id, insurer)
    with Refusal("party_kind_not_allowed"):
        ps.open_payment_account(ledger, "acc-1", merchant, operator)
    with Refusal("party_not_found"):
        ps.open_payment_account(ledger, "acc-1", party_id, "pty_" + "0" * 26)


def test_upgrading_an_account_needs_the_extra_verifications(
    ledger: Ledger, clock: ManualClock, today: date, operator: str
) -> None:
    """A Class I account is raised to II only after the third channel, never lowered."""
    party_id = person(ledger, "signup-1")
    verify(ledger, clock, party_id, 1, prefix="a")
    account = ps.open_payment_account(ledger, "acc-1", party_id, operator)
    assert account.account_class is AccountClass.I
    with Refusal("account_class_not_verified"):
        ps.upgrade_payment_account(ledger, account.account_id, "II")
    result = verify(ledger, clock, party_id, 3, prefix="b")
    assert result.account_class is AccountClass.II
    upgraded = ps.upgrade_payment_account(ledger, account.account_id, "II")
    assert upgraded.account_class is AccountClass.II
    assert ps.upgrade_payment_account(ledger, account.account_id, "II") == upgraded
    with Refusal("identity_input_invalid"):
        ps.upgrade_payment_account(ledger, account.account_id, "I")
    with Refusal("payment_account_not_found"):
        ps.upgrade_payment_account(ledger, "pac_" + "0" * 26, "II")
    assert ps.list_payment_accounts(ledger, party_id)[0].account_class is AccountClass.II


# -- the blocklist ---------------------------------------------------------------------------

LISTED = date(2026, 2, 10)


def test_blocklist_windows_on_the_stored_listing(ledger: Ledger, today: date) -> None:
    """Suspension runs through the 5th anniversary and the bar through the 3rd: the day
    before and the day of each last day are restricted, the next day is not."""
    party_id = person(ledger, "signup-1")
    ps.add_to_blocklist(
        ledger,
        party_id,
        listed_on=LISTED,
        reason_code="account_renting",
        case_reference="police-2026-001",
    )
    status = ps.blocklist_status
    assert not status(ledger, party_id, LISTED - timedelta(days=1)).listed
    assert status(ledger, party_id, LISTED).payment_services_suspended
    for on, barred in (
        (date(2029, 2, 9), True),
        (date(2029, 2, 10), True),
        (date(2029, 2, 11), False),
    ):
        assert status(ledger, party_id, on).new_accounts_barred is barred
        assert status(ledger, party_id, on).payment_services_suspended
    for on, suspended in (
        (date(2031, 2, 9), True),
        (date(2031, 2, 10), True),
        (date(2031, 2, 11), False),
    ):
        assert status(ledger, party_id, on).payment_services_suspended is suspended
        assert not status(ledger, party_id, on).new_accounts_barred
    assert status(ledger, party_id, date(2031, 2, 10)).suspended_through == date(2031, 2, 10)


def test_blocklisted_person_cannot_open_accounts_for_three_years(
    ledger: Ledger, clock: ManualClock, today: date, operator: str
) -> None:
    """Opening is refused through the bar's last day and allowed the day after."""
    party_id = verified_person(ledger, clock, "signup-1")
    ps.add_to_blocklist(
        ledger, party_id, listed_on=LISTED, reason_code="account_selling", case_reference="c-1"
    )
    with Refusal("new_accounts_barred") as refusal:
        ps.open_payment_account(ledger, "acc-1", party_id, operator)
    assert "2029-02-10" in str(refusal.error)
    set_day(clock, date(2029, 2, 10))
    with Refusal("new_accounts_barred"):
        ps.open_payment_account(ledger, "acc-1", party_id, operator)
    set_day(clock, date(2029, 2, 11))
    assert ps.open_payment_account(ledger, "acc-1", party_id, operator).opened_on == date(
        2029, 2, 11
    )


def test_blocklisted_person_cannot_bind_cards_while_suspended(
    ledger: Ledger, clock: ManualClock, today: date
) -> None:
    """Card binding is a payment service: refused through the suspension's last day."""
    party_id = person(ledger, "signup-1")
    ps.add_to_blocklist(
        ledger, party_id, listed_on=LISTED, reason_code="account_buying", case_reference="c-1"
    )
    card = KEY.card(CARD)
    fields: dict[str, Any] = {
        "card_holder_name_matches": True,
        "card_fingerprint": card.fingerprint,
        "card_last_four": card.last_four,
    }
    set_day(clock, date(2031, 2, 10))
    with Refusal("payment_services_suspended"):
        ps.bind_bank_card(ledger, "bind-1", party_id, **fields)
    set_day(clock, date(2031, 2, 11))
    assert ps.bind_bank_card(ledger, "bind-1", party_id, **fields).last_four == "7890"


def test_blocklist_listing_is_idempotent_by_case(ledger: Ledger, today: date) -> None:
    """The same case again is a replay; the same case with another date is a conflict; a
    listing dated in the future, or of an institution, is refused."""
    party_id = person(ledger, "signup-1")
    fields: dict[str, Any] = {
        "listed_on": LISTED,
        "reason_code": "account_lending",
        "case_reference": "c-1",
    }
    first = ps.add_to_blocklist(ledger, party_id, **fields)
    assert ps.add_to_blocklist(ledger, party_id, **fields) == first
    with Refusal("request_conflict"):
        ps.add_to_blocklist(ledger, party_id, **{**fields, "listed_on": LISTED + timedelta(1)})
    with Refusal("identity_input_invalid"):
        ps.add_to_blocklist(ledger, party_id, **{**fields, "listed_on": TODAY + timedelta(1)})
    with Refusal("identity_input_invalid"):
        ps.add_to_blocklist(ledger, party_id, **{**fields, "reason_code": "rude"})
    bank = ps.register_institution(ledger, "bank-1", institution_kind="partner_bank")
    with Refusal("party_kind_not_allowed"):
        ps.add_to_blocklist(ledger, bank, **fields)
    assert count(ledger, "identity_blocklist") == 1


# -- bank cards ------------------------------------------------------------------------------


def test_card_binding_refuses_a_holder_who_is_not_the_person(ledger: Ledger, today: date) -> None:
    """A card held in another name is refused and nothing is stored (P4)."""
    party_id = person(ledger, "signup-1")
    card = KEY.card(CARD)
    with Refusal("card_holder_mismatch"):
        ps.bind_bank_card(
            ledger,
            "bind-1",
            party_id,
            card_holder_name_matches=False,
            card_fingerprint=card.fingerprint,
            card_last_four=card.last_four,
        )
    assert count(ledger, "identity_card_bindings") == 0
    assert ps.list_card_bindings(ledger, party_id) == []


def test_card_binding_stores_fingerprint_and_last_four_only(ledger: Ledger, today: date) -> None:
    """A same-name card is bound; its number appears in no table, in no form."""
    party_id = person(ledger, "signup-1")
    card = KEY.card("6222 0212 3456 7890")
    binding = ps.bind_bank_card(
        ledger,
        "bind-1",
        party_id,
        card_holder_name_matches=True,
        card_fingerprint=card.fingerprint,
        card_last_four=card.last_four,
    )
    assert binding.masked == "**** **** **** 7890"
    assert ps.list_card_bindings(ledger, party_id) == [binding]
    everything = stored_text(ledger)
    for fragment in (CARD, CARD[:12], CARD[4:], "6222 0212", "622202123456"):
        assert fragment not in everything
    assert card.fingerprint in everything


def test_card_binding_is_idempotent_and_a_card_binds_once(ledger: Ledger, today: date) -> None:
    """A retried binding returns it; the same card for someone else, or under a new id, is
    card_already_bound; another card under a used binding id is a conflict."""
    party_id = person(ledger, "signup-1")
    other = person(ledger, "signup-2")
    card = KEY.card(CARD)
    fields: dict[str, Any] = {
        "card_holder_name_matches": True,
        "card_fingerprint": card.fingerprint,
        "card_last_four": card.last_four,
    }
    first = ps.bind_bank_card(ledger, "bind-1", party_id, **fields)
    assert ps.bind_bank_card(ledger, "bind-1", party_id, **fields) == first
    with Refusal("card_already_bound"):
        ps.bind_bank_card(ledger, "bind-2", party_id, **fields)
    with Refusal("card_already_bound"):
        ps.bind_bank_card(ledger, "bind-3", other, **fields)
    second = KEY.card("6222021234567891")
    with Refusal("request_conflict"):
        ps.bind_bank_card(
            ledger,
            "bind-1",
            party_id,
            card_holder_name_matches=True,
            card_fingerprint=second.fingerprint,
            card_last_four=second.last_four,
        )
    with Refusal("identity_input_invalid"):
        ps.bind_bank_card(
            ledger,
            "bind-4",
            party_id,
            card_holder_name_matches=True,
            card_fingerprint=CARD,
            card_last_four="7890",
        )
    assert count(ledger, "identity_card_bindings") == 1


# -- personal data, composition, database guarantees -----------------------------------------


def test_no_date_of_birth_is_stored(ledger: Ledger, clock: ManualClock, today: date) -> None:
    """Neither an adult's nor a child's date of birth is stored anywhere, chain included."""
    parent = person(ledger, "parent-1")
    child_born = date(2016, 9, 23)
    person(
        ledger,
        "child-1",
        born=child_born,
        guardian_party_id=parent,
        guardian_consent_reference="consent-1",
    )
    everything = stored_text(ledger)
    for born in (ADULT_BORN, child_born):
        for form in (born.isoformat(), born.strftime("%Y%m%d"), born.strftime("%d/%m/%Y")):
            assert form not in everything


def test_registration_joins_the_callers_transaction(ledger: Ledger, today: date) -> None:
    """A registration inside a caller's unit of work is rolled back with it."""
    with pytest.raises(RuntimeError, match="caller failed"), ledger.write() as uow:
        party_id = ps.register_person(
            ledger, "signup-1", date_of_birth=ADULT_BORN, key=KEY, uow=uow
        )
        assert ps.get_party(ledger, party_id, uow=uow).kind is PartyKind.PERSON
        raise RuntimeError("caller failed")
    with Refusal("party_not_found"):
        ps.get_party(ledger, party_id)
    assert count(ledger, "identity_parties") == 0


def test_identity_events_are_chained(ledger: Ledger, clock: ManualClock, today: date) -> None:
    """Each write appends one identity.* chain record; replays append none."""
    with ledger.read() as store:
        before = store.read_head().seq
    party_id = verified_person(ledger, clock, "signup-1")
    person(ledger, "signup-1")
    with ledger.read() as store:
        placeholder = "?" if store.backend == "sqlite" else "%s"
        rows = store.connection.execute(
            f"SELECT kind FROM audit_chain WHERE seq > {placeholder} ORDER BY seq",  # noqa: S608 - a placeholder only
            (before,),
        ).fetchall()
    assert [row[0] for row in rows] == ["identity.party", "identity.verification"]
    assert set(ps.CHAIN_KINDS) >= {row[0] for row in rows}
    assert party_id


DATABASE_ERRORS = (sqlite3.DatabaseError, psycopg.Error)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE identity_verifications SET source = 'forged'",
        "DELETE FROM identity_verifications",
        "UPDATE identity_blocklist SET listed_on = '2000-01-01'",
        "DELETE FROM identity_blocklist",
        "UPDATE identity_parties SET kind = 'merchant'",
        "DELETE FROM identity_parties",
        "UPDATE identity_payment_accounts SET party_id = institution_id",
        "UPDATE identity_payment_accounts SET account_class = 'III'",
    ],
)
def test_the_database_guards_the_tables(
    ledger: Ledger, clock: ManualClock, today: date, operator: str, statement: str
) -> None:
    """Append-only rows cannot change, fixed fields cannot change, and a second Class III
    account at one institution cannot be written even behind the service's back."""
    party_id = verified_person(ledger, clock, "signup-1")
    ps.add_to_blocklist(
        ledger, party_id, listed_on=LISTED, reason_code="account_renting", case_reference="c-1"
    )
    set_day(clock, date(2029, 3, 1))
    ps.open_payment_account(ledger, "acc-1", party_id, operator)
    ps.open_payment_account(ledger, "acc-2", party_id, operator, account_class="II")
    with pytest.raises(DATABASE_ERRORS), ledger.write() as uow:
        uow.connection.execute(statement)
    assert count(ledger, "identity_verifications") == 1
    assert ps.get_party(ledger, party_id).kind is PartyKind.PERSON
