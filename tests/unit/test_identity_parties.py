"""Unit tests of the parties' pure domain: party ids, the P1 account-class decision, minors and
dates of birth, blocklist periods, registration numbers and card fingerprints.

The class decision is checked against an independent statement of P1 for every combination of
channels, and against every count of distinct external channels from 0 to 6.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from tianping.identity.errors import DateOfBirthInvalid, IdentityError, InvalidInput
from tianping.identity.ids import (
    PARTY_ID_LENGTH,
    InvalidPartyId,
    InvalidPaymentAccountId,
    is_party_id,
    new_party_id,
    new_payment_account_id,
    parse_party_id,
    parse_payment_account_id,
)
from tianping.identity.parties import (
    EXTERNAL_CHANNELS,
    AccountClass,
    BlocklistEntry,
    BlocklistReason,
    Channel,
    Verification,
    account_class_for,
    add_years,
    blocklist_status_of,
    card_fingerprint,
    check_date_of_birth,
    check_reference,
    check_registration_number,
    check_source,
    distinct_external_channels,
    event_date,
    external_channels_missing,
    fourteenth_birthday,
    is_minor,
    normalise_card_number,
)

NS = 1_000_000_000
KEY = bytes(range(32))


def verification(channel: Channel, source: str = "src", number: int = 0) -> Verification:
    return Verification(f"v{number}", channel, source, NS)


def expected_class(external: int, in_person: bool) -> AccountClass | None:
    """P1 stated independently: face-to-face gives III; otherwise 5, 3 and 1 external channels
    give III, II and I."""
    if in_person or external >= 5:
        return AccountClass.III
    if external >= 3:
        return AccountClass.II
    if external >= 1:
        return AccountClass.I
    return None


# -- party ids -------------------------------------------------------------------------------


def test_new_party_id_has_the_shared_shape_and_parses_back() -> None:
    """A new party id is pty_ plus 26 lower-case Crockford characters and parses to itself."""
    party_id = new_party_id(1_800_000_000 * NS)
    assert len(party_id) == PARTY_ID_LENGTH == 30
    assert party_id.startswith("pty_")
    assert parse_party_id(party_id) == party_id
    assert is_party_id(party_id)


def test_party_id_encodes_time_like_a_ulid() -> None:
    """The time prefix matches the ULID specification's `ulid(1469918176385)` example."""
    party_id = new_party_id(1_469_918_176_385 * 1_000_000, entropy=bytes(10))
    assert party_id == "pty_01aryz6s41" + "0" * 16


def test_party_id_with_fixed_entropy_is_deterministic() -> None:
    """The same time and entropy give the same id; all-ones entropy fills the random part."""
    assert new_party_id(0, bytes(10)) == "pty_" + "0" * 26
    assert new_party_id(0, b"\xff" * 10) == "pty_" + "0" * 10 + "z" * 16
    assert new_party_id(5 * NS, b"\x01" * 10) == new_party_id(5 * NS, b"\x01" * 10)


def test_party_ids_sort_by_time() -> None:
    """An id made a millisecond later sorts after, whatever the random bits."""
    earlier = new_party_id(1_800_000_000 * NS, b"\xff" * 10)
    later = new_party_id(1_800_000_000 * NS + 1_000_000, bytes(10))
    assert earlier < later


def test_random_party_ids_differ() -> None:
    """Without fixed entropy, ids made in the same millisecond are distinct."""
    ids = {new_party_id(1_800_000_000 * NS) for _ in range(1000)}
    assert len(ids) == 1000


def test_party_id_refuses_bad_entropy_and_times() -> None:
    """Entropy must be 10 bytes and the time a non-negative integer within 48 bits of ms."""
    with pytest.raises(ValueError, match="10 bytes"):
        new_party_id(0, bytes(9))
    with pytest.raises(ValueError, match="non-negative"):
        new_party_id(-1)
    with pytest.raises(ValueError, match="beyond"):
        new_party_id(2**48 * 1_000_000)


VALID = "pty_01jd3k9x7q8r2m4n6p0s1t3v5w"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pty_",
        VALID.upper(),
        "PTY_01jd3k9x7q8r2m4n6p0s1t3v5w",
        "pac_01jd3k9x7q8r2m4n6p0s1t3v5w",
        "pty-01jd3k9x7q8r2m4n6p0s1t3v5w",
        VALID[:-1],
        VALID + "0",
        "pty_01jd3k9x7q8r2m4n6p0s1t3v5i",  # i, l, o and u are not in the alphabet
        "pty_01jd3k9x7q8r2m4n6p0s1t3v5l",
        "pty_01jd3k9x7q8r2m4n6p0s1t3v5o",
        "pty_01jd3k9x7q8r2m4n6p0s1t3v5u",
        "pty_81jd3k9x7q8r2m4n6p0s1t3v5w",  # over 128 bits
        " " + VALID,
        VALID + "\n",
    ],
)
def test_parse_party_id_refuses_non_canonical_text(text: str) -> None:
    """Anything but the canonical lower-case form is refused, without echoing the text."""
    with pytest.raises(InvalidPartyId) as caught:
        parse_party_id(text)
    assert caught.value.code == "party_id_invalid"
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, IdentityError)
    if len(text.strip()) > len("pty_"):
        assert text.strip() not in str(caught.value)
    assert not is_party_id(text)


@pytest.mark.parametrize("value", [None, 7, b"pty_01jd3k9x7q8r2m4n6p0s1t3v5w", ["x"]])
def test_parse_party_id_refuses_non_strings(value: object) -> None:
    """Only strings can be party ids."""
    with pytest.raises(InvalidPartyId):
        parse_party_id(value)


def test_parse_party_id_accepts_the_largest_id() -> None:
    """The first character may be 7, the largest that 128 bits allow."""
    assert parse_party_id("pty_7" + "z" * 25) == "pty_7" + "z" * 25


def test_payment_account_ids_have_their_own_prefix() -> None:
    """Payment-account ids are pac_ ULIDs and are not party ids."""
    account_id = new_payment_account_id(1_800_000_000 * NS)
    assert parse_payment_account_id(account_id) == account_id
    assert not is_party_id(account_id)
    with pytest.raises(InvalidPaymentAccountId) as caught:
        parse_payment_account_id(VALID)
    assert caught.value.code == "payment_account_id_invalid"


# -- account classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channels",
    [
        combination
        for size in range(len(Channel) + 1)
        for combination in itertools.combinations(list(Channel), size)
    ],
    ids=lambda channels: "+".join(channel.value for channel in channels) or "none",
)
def test_class_for_every_combination_of_channels(channels: tuple[Channel, ...]) -> None:
    """Each of the 32 combinations of channel kinds (one source each) gives P1's class."""
    verifications = [verification(channel, number=i) for i, channel in enumerate(channels)]
    external = sum(1 for channel in channels if channel in EXTERNAL_CHANNELS)
    assert account_class_for(verifications) == expected_class(
        external, Channel.IN_PERSON in channels
    )


@pytest.mark.parametrize(
    ("external", "expected"),
    [
        (0, None),
        (1, AccountClass.I),
        (2, AccountClass.I),
        (3, AccountClass.II),
        (4, AccountClass.II),
        (5, AccountClass.III),
        (6, AccountClass.III),
    ],
)
def test_class_at_each_count_of_external_channels(
    external: int, expected: AccountClass | None
) -> None:
    """0 external channels give no class, 1-2 Class I, 3-4 Class II, 5 or more Class III."""
    kinds = itertools.cycle(sorted(EXTERNAL_CHANNELS))
    verifications = [
        verification(next(kinds), source=f"source-{i}", number=i) for i in range(external)
    ]
    assert distinct_external_channels(verifications) == external
    assert account_class_for(verifications) == expected
    with_in_person = [*verifications, verification(Channel.IN_PERSON, "branch-1", 99)]
    assert account_class_for(with_in_person) is AccountClass.III


def test_in_person_alone_gives_class_iii() -> None:
    """A face-to-face verification supports every class on its own."""
    assert account_class_for([verification(Channel.IN_PERSON)]) is AccountClass.III
    for target in AccountClass:
        assert external_channels_missing(target, [verification(Channel.IN_PERSON)]) == 0


def test_repeating_a_check_at_the_same_source_counts_once() -> None:
    """Five face matches against one source are one channel: still Class I."""
    repeated = [verification(Channel.FACE_MATCH, "gab", i) for i in range(5)]
    assert distinct_external_channels(repeated) == 1
    assert account_class_for(repeated) is AccountClass.I


def test_same_kind_at_different_sources_counts_each_source() -> None:
    """Bank-card checks through five banks are five independent channels: Class III."""
    banks = [verification(Channel.BANK_CARD_ELEMENT_CHECK, f"bank:{i}", i) for i in range(5)]
    assert account_class_for(banks) is AccountClass.III


def test_in_person_does_not_count_as_an_external_channel() -> None:
    """Face-to-face checks are not external, however many there are."""
    branches = [verification(Channel.IN_PERSON, f"branch-{i}", i) for i in range(3)]
    assert distinct_external_channels(branches) == 0


@pytest.mark.parametrize(
    ("have", "target", "missing"),
    [
        (0, AccountClass.I, 1),
        (0, AccountClass.II, 3),
        (0, AccountClass.III, 5),
        (1, AccountClass.II, 2),
        (2, AccountClass.II, 1),
        (3, AccountClass.II, 0),
        (3, AccountClass.III, 2),
        (4, AccountClass.III, 1),
        (5, AccountClass.III, 0),
        (5, AccountClass.I, 0),
    ],
)
def test_upgrading_needs_exactly_the_missing_channels(
    have: int, target: AccountClass, missing: int
) -> None:
    """The extra external channels an upgrade needs are the class's count minus those held."""
    verifications = [
        verification(Channel.MOBILE_CARRIER_CHECK, f"carrier-{i}", i) for i in range(have)
    ]
    assert external_channels_missing(target, verifications) == missing
    more = verifications + [
        verification(Channel.FACE_MATCH, f"face-{i}", 100 + i) for i in range(missing)
    ]
    reached = account_class_for(more)
    assert reached is not None and reached >= target
    if missing:
        fewer = verifications + more[len(verifications) : len(more) - 1]
        assert (account_class_for(fewer) or 0) < target


def test_account_class_labels_are_the_rules_engines() -> None:
    """Classes are ordered I < II < III and read and print as I, II, III."""
    assert AccountClass.I < AccountClass.II < AccountClass.III
    assert [c.label for c in AccountClass] == ["I", "II", "III"]
    assert AccountClass.from_label("II") is AccountClass.II
    with pytest.raises(InvalidInput) as caught:
        AccountClass.from_label("IV")
    assert caught.value.field == "account_class"


# -- dates, minors ---------------------------------------------------------------------------


def test_event_date_is_the_beijing_date() -> None:
    """16:00 UTC on 31 December is already 1 January in Beijing; 15:59:59 is not."""
    new_year = int(datetime(2026, 12, 31, 16, tzinfo=UTC).timestamp()) * NS
    assert event_date(new_year) == date(2027, 1, 1)
    assert event_date(new_year - 1) == date(2026, 12, 31)


def test_minor_the_day_before_the_fourteenth_birthday() -> None:
    """Aged 13 years and 364 days (the day before turning 14) a person is a minor."""
    born = date(2012, 6, 15)
    on = date(2026, 6, 14)
    assert on == add_years(born, 13) + timedelta(days=364)
    assert is_minor(born, on)


def test_not_minor_on_the_fourteenth_birthday() -> None:
    """On the 14th birthday itself a person is no longer under 14."""
    born = date(2012, 6, 15)
    assert fourteenth_birthday(born) == date(2026, 6, 15)
    assert not is_minor(born, date(2026, 6, 15))
    assert not is_minor(born, date(2040, 1, 1))


def test_leap_day_birthday_turns_fourteen_on_28_february() -> None:
    """Born on 29 February, a person turns 14 on 28 February of a common year."""
    born = date(2012, 2, 29)
    assert fourteenth_birthday(born) == date(2026, 2, 28)
    assert is_minor(born, date(2026, 2, 27))
    assert not is_minor(born, date(2026, 2, 28))
    assert fourteenth_birthday(date(2010, 2, 28)) == date(2024, 2, 28)


def test_a_newborn_is_a_minor() -> None:
    """A date of birth equal to the event date is valid, and the person is a minor."""
    assert is_minor(date(2026, 3, 1), date(2026, 3, 1))


def test_future_date_of_birth_is_refused() -> None:
    """A date of birth even one day after the event date is refused."""
    with pytest.raises(DateOfBirthInvalid) as caught:
        check_date_of_birth(date(2026, 3, 2), date(2026, 3, 1))
    assert caught.value.code == "date_of_birth_invalid"
    assert "2026" not in str(caught.value)
    with pytest.raises(DateOfBirthInvalid):
        is_minor(date(2030, 1, 1), date(2026, 3, 1))


def test_date_of_birth_more_than_130_years_back_is_refused() -> None:
    """Exactly 130 years before the event date is accepted; one day earlier is refused."""
    on = date(2026, 3, 1)
    check_date_of_birth(date(1896, 3, 1), on)
    with pytest.raises(DateOfBirthInvalid):
        check_date_of_birth(date(1896, 2, 29), on)


def test_date_of_birth_must_be_a_date() -> None:
    """A datetime or a string is not a date of birth."""
    with pytest.raises(InvalidInput) as caught:
        check_date_of_birth(datetime(2000, 1, 1), date(2026, 3, 1))
    assert caught.value.field == "date_of_birth"
    with pytest.raises(InvalidInput):
        check_date_of_birth("2000-01-01", date(2026, 3, 1))  # type: ignore[arg-type]


def test_add_years_clamps_29_february() -> None:
    """Years forward or back from 29 February land on 28 February in a common year."""
    assert add_years(date(2020, 2, 29), 1) == date(2021, 2, 28)
    assert add_years(date(2020, 2, 29), -4) == date(2016, 2, 29)
    assert add_years(date(2020, 2, 29), -130) == date(1890, 2, 28)


# -- the blocklist ---------------------------------------------------------------------------

LISTED = date(2020, 3, 10)


def entry(listed_on: date = LISTED, case: str = "case-1") -> BlocklistEntry:
    return BlocklistEntry("pty_" + "0" * 26, case, listed_on, BlocklistReason.ACCOUNT_SELLING)


@pytest.mark.parametrize(
    ("on", "suspended", "barred"),
    [
        (LISTED - timedelta(days=1), False, False),
        (LISTED, True, True),
        (date(2023, 3, 9), True, True),  # the day before the bar's last day
        (date(2023, 3, 10), True, True),  # the bar's last day (third anniversary)
        (date(2023, 3, 11), True, False),  # the bar has expired
        (date(2025, 3, 9), True, False),
        (date(2025, 3, 10), True, False),  # the suspension's last day (fifth anniversary)
        (date(2025, 3, 11), False, False),  # the suspension has expired
    ],
)
def test_blocklist_periods_run_through_their_anniversaries(
    on: date, suspended: bool, barred: bool
) -> None:
    """New accounts are barred through the 3rd anniversary, payments through the 5th."""
    status = blocklist_status_of([entry()], on)
    assert status.payment_services_suspended is suspended
    assert status.new_accounts_barred is barred
    assert status.listed is (on >= LISTED)
    assert status.suspended_through == (date(2025, 3, 10) if suspended else None)
    assert status.barred_through == (date(2023, 3, 10) if barred else None)


def test_blocklist_latest_listing_governs() -> None:
    """A second, later listing extends both periods from its own date."""
    status = blocklist_status_of([entry(), entry(date(2024, 1, 5), "case-2")], date(2025, 6, 1))
    assert status.latest_listed_on == date(2024, 1, 5)
    assert status.suspended_through == date(2029, 1, 5)
    assert status.barred_through == date(2027, 1, 5)


def test_blocklist_listing_after_the_date_does_not_count_yet() -> None:
    """A listing dated after `on` has no effect on `on`."""
    status = blocklist_status_of([entry(date(2026, 1, 1))], date(2025, 12, 31))
    assert not status.listed
    assert not status.payment_services_suspended


def test_blocklist_leap_day_listing_ends_on_28_february() -> None:
    """Listed on 29 February, the periods end on 28 February of a common year."""
    status = blocklist_status_of([entry(date(2020, 2, 29))], date(2021, 1, 1))
    assert status.suspended_through == date(2025, 2, 28)
    assert status.barred_through == date(2023, 2, 28)


# -- inputs ----------------------------------------------------------------------------------

REAL_CODES = ("91330100716105852F", "9144030071526726XG", "91110000802100433B")


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_registration_numbers_pass_the_check_character(code: str) -> None:
    """Published unified social credit codes of real companies are accepted."""
    assert check_registration_number(code) == code


@pytest.mark.parametrize(
    "code",
    [
        "91330100716105852G",  # wrong check character
        "9133010071610585",  # too short
        "91330100716105852FF",  # too long
        "91330100716105852f",  # lower case
        "9133010071610585IF",  # I is not in the alphabet
        "",
    ],
)
def test_bad_registration_numbers_are_refused(code: str) -> None:
    """Wrong check characters, lengths, cases and letters are refused."""
    with pytest.raises(InvalidInput) as caught:
        check_registration_number(code)
    assert caught.value.field == "registration_number"


def test_references_are_bounded() -> None:
    """Request ids and references are 1 to 64 plain characters."""
    assert check_reference("request_id", "a" * 64) == "a" * 64
    for bad in ("", "a" * 65, "has space", "-leading", "名字", None):
        with pytest.raises(InvalidInput) as caught:
            check_reference("request_id", bad)
        assert caught.value.field == "request_id"
        assert caught.value.code == "identity_input_invalid"


def test_sources_are_lower_case_names() -> None:
    """A verification source is a short lower-case name."""
    assert check_source("bank:icbc") == "bank:icbc"
    for bad in ("", "Bank", "x" * 65, "a b"):
        with pytest.raises(InvalidInput):
            check_source(bad)


CARD = "6222021234567890"


def test_card_fingerprint_is_keyed_and_hides_the_number() -> None:
    """The fingerprint is 64 hex characters, depends on the key and contains no digits run of
    the card number; separators do not change it."""
    fingerprint = card_fingerprint(KEY, CARD)
    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0
    assert card_fingerprint(KEY, "6222 0212 3456 7890") == fingerprint
    assert card_fingerprint(KEY, "6222-0212-3456-7890") == fingerprint
    assert card_fingerprint(b"\x01" * 32, CARD) != fingerprint
    assert card_fingerprint(KEY, "6222021234567891") != fingerprint
    assert CARD not in fingerprint and CARD[-8:] not in fingerprint


@pytest.mark.parametrize("number", ["12345678901", "1" * 20, "62220212345678a0", "", "\uff16" * 16])
def test_card_numbers_must_be_12_to_19_digits(number: str) -> None:
    """Short, long, non-digit and non-ASCII numbers are refused without echoing them."""
    with pytest.raises(InvalidInput) as caught:
        normalise_card_number(number)
    assert caught.value.field == "card_number"
    if number:
        assert number not in str(caught.value)
