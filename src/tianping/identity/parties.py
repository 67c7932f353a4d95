"""Parties and KYC as pure domain: kinds, verification channels, account classes, minors, the
blocklist's periods, card fingerprints and the shapes of the inputs.

Everything here is a function of its arguments (standard library only; time is passed in), so the
decisions the law asks for can be tested exhaustively without a database.

Account classes (P1, PBoC Announcement [2015] No. 43, Art. 11). A personal payment account is
Class I when the person's identity was verified through at least one external (non-face-to-face)
channel, Class II with a face-to-face verification or at least three external channels, and
Class III with a face-to-face verification or at least five. An external channel is one
independent outside source confirming the identity: a check kind (ID document and name against
the public-security register, bank-card elements against the issuing bank, face match, mobile
carrier) at one source (the register, one bank, one carrier). Two bank-card checks through two
banks are therefore two channels, and the same check repeated at the same source is still one:
repeating a check adds no independent evidence. The class is recomputed from all verifications,
so upgrading needs exactly the missing verifications and nothing else.

Minors (PIPL Arts. 28 and 31, D3). All personal information of a child under 14 is sensitive and
needs a guardian's consent. A person is under 14 on every day before the 14th birthday. For a
birthday on 29 February the birthday in a common year is taken to be 28 February, as the Civil
Code (Art. 202) ends a period on the month's last day when the corresponding day is missing; the
rules engine counts blocklist periods the same way.

Blocklist (P12, Yinfa [2016] No. 261, Anti-Telecom and Online Fraud Law Art. 31). A person
confirmed by the police as renting, lending, selling or buying accounts has all payment services
suspended for 5 years and may open no new account for 3 years from the confirmation. A period
of whole years runs through its anniversary (the listing day itself is not counted, Civil Code
Arts. 201 and 202), which is how the rules engine's `cn.payments.blocklisted_*` rules read it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Any

from tianping.identity.errors import DateOfBirthInvalid, InvalidInput

__all__ = [
    "ACCOUNT_ISSUER_INSTITUTION_KINDS",
    "ACCOUNT_ISSUER_KINDS",
    "BANK_ACCOUNT_DIGITS_MAX",
    "BANK_ACCOUNT_DIGITS_MIN",
    "BLOCKLIST_ENTRIES_PER_PARTY_MAX",
    "CARDS_PER_PARTY_MAX",
    "DATE_OF_BIRTH_YEARS_MAX",
    "EVENT_TIMEZONE",
    "EXTERNAL_CHANNELS",
    "EXTERNAL_CHANNELS_REQUIRED",
    "MINOR_AGE_YEARS",
    "NEW_ACCOUNT_BAR_YEARS",
    "PAYMENT_ACCOUNTS_PER_PARTY_MAX",
    "PAYMENT_SUSPENSION_YEARS",
    "REFERENCE_LENGTH_MAX",
    "VERIFICATIONS_PER_PARTY_MAX",
    "AccountClass",
    "BlocklistEntry",
    "BlocklistReason",
    "BlocklistStatus",
    "CardBinding",
    "Channel",
    "InstitutionKind",
    "Party",
    "PartyKind",
    "PaymentAccount",
    "Verification",
    "account_class_for",
    "add_years",
    "bank_account_fingerprint",
    "blocklist_status_of",
    "canonical_json",
    "card_fingerprint",
    "check_date_of_birth",
    "check_reference",
    "check_registration_number",
    "check_source",
    "distinct_external_channels",
    "event_date",
    "external_channels_missing",
    "fourteenth_birthday",
    "is_minor",
    "last_day_of_period",
    "normalise_bank_account_number",
    "normalise_card_number",
]


class PartyKind(StrEnum):
    PERSON = "person"
    MERCHANT = "merchant"
    INSTITUTION = "institution"
    PLATFORM_OPERATOR = "platform_operator"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"


class InstitutionKind(StrEnum):
    PARTNER_BANK = "partner_bank"
    FUND_MANAGER = "fund_manager"
    INSURER = "insurer"
    CREDIT_BUREAU = "credit_bureau"
    CLEARING_HOUSE = "clearing_house"


class Channel(StrEnum):
    """How an identity was verified. All but `in_person` are external (non-face-to-face)."""

    ID_DOCUMENT_NAME_CHECK = "id_document_name_check"
    BANK_CARD_ELEMENT_CHECK = "bank_card_element_check"
    FACE_MATCH = "face_match"
    MOBILE_CARRIER_CHECK = "mobile_carrier_check"
    IN_PERSON = "in_person"


EXTERNAL_CHANNELS = frozenset(channel for channel in Channel if channel is not Channel.IN_PERSON)


class AccountClass(IntEnum):
    """Payment-account classes, ordered by what they allow; `label` is the rules engine's text."""

    I = 1  # noqa: E741 - the regulation's own name for the class
    II = 2
    III = 3

    @property
    def label(self) -> str:
        return self.name

    @classmethod
    def from_label(cls, text: str) -> AccountClass:
        try:
            return cls[text]
        except KeyError:
            raise InvalidInput("account_class", "an account class is I, II or III") from None


# External channels needed for each class when there is no face-to-face verification (P1).
EXTERNAL_CHANNELS_REQUIRED: Mapping[AccountClass, int] = {
    AccountClass.I: 1,
    AccountClass.II: 3,
    AccountClass.III: 5,
}

# Who may issue personal payment accounts: the platform itself (a payment institution) and the
# partner banks. Fund managers, insurers, bureaus and the clearing house do not.
ACCOUNT_ISSUER_KINDS = frozenset({PartyKind.PLATFORM_OPERATOR})
ACCOUNT_ISSUER_INSTITUTION_KINDS = frozenset({InstitutionKind.PARTNER_BANK})

MINOR_AGE_YEARS = 14
DATE_OF_BIRTH_YEARS_MAX = 130
PAYMENT_SUSPENSION_YEARS = 5
NEW_ACCOUNT_BAR_YEARS = 3

# Bounds on what one party accumulates; reads of a party stay bounded by them. They are far
# above any honest use (a person has a handful of verifications, accounts and cards).
VERIFICATIONS_PER_PARTY_MAX = 100
PAYMENT_ACCOUNTS_PER_PARTY_MAX = 50
CARDS_PER_PARTY_MAX = 20
BLOCKLIST_ENTRIES_PER_PARTY_MAX = 50

REFERENCE_LENGTH_MAX = 64

# Chinese law counts days in Beijing time (UTC+8, no daylight saving), so an event's date is its
# date there, whatever the server's time zone.
EVENT_TIMEZONE = timezone(timedelta(hours=8), "CST")


# -- verifications and classes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """One confirmation of a person's identity: by which channel, at which source, when."""

    verification_id: str
    channel: Channel
    source: str
    verified_at: int  # nanoseconds since the epoch

    @property
    def external(self) -> bool:
        return self.channel in EXTERNAL_CHANNELS


def distinct_external_channels(verifications: Iterable[Verification]) -> int:
    """How many independent external channels confirmed the identity: distinct (kind, source)."""
    return len({(v.channel, v.source) for v in verifications if v.channel in EXTERNAL_CHANNELS})


def account_class_for(verifications: Iterable[Verification]) -> AccountClass | None:
    """The highest payment-account class the verifications support, or None for none (P1)."""
    listed = list(verifications)
    if any(v.channel is Channel.IN_PERSON for v in listed):
        return AccountClass.III
    external = distinct_external_channels(listed)
    supported = [cls for cls, needed in EXTERNAL_CHANNELS_REQUIRED.items() if external >= needed]
    return max(supported) if supported else None


def external_channels_missing(target: AccountClass, verifications: Iterable[Verification]) -> int:
    """How many more distinct external channels `target` needs (0 when already supported).

    A face-to-face verification would do instead, whatever the number.
    """
    listed = list(verifications)
    current = account_class_for(listed)
    if current is not None and current >= target:
        return 0
    return EXTERNAL_CHANNELS_REQUIRED[target] - distinct_external_channels(listed)


# -- dates -----------------------------------------------------------------------------------


def event_date(now_ns: int) -> date:
    """The date of the instant `now_ns` (nanoseconds since the epoch) in Beijing time."""
    seconds = now_ns // 1_000_000_000
    return datetime.fromtimestamp(seconds, tz=UTC).astimezone(EVENT_TIMEZONE).date()


def add_years(start: date, years: int) -> date:
    """The same day `years` later (or earlier); 29 February becomes 28 February when missing."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return date(start.year + years, 2, 28)


def last_day_of_period(start: date, years: int) -> date:
    """The last day of a period of whole years from `start`: its anniversary (Civil Code 202)."""
    return add_years(start, years)


def check_date_of_birth(date_of_birth: date, on: date) -> None:
    """Refuse a date of birth after `on` or more than 130 years before it.

    The date is checked, not trusted: a typing error that made a child look like an adult (or a
    future date that made an age negative) would defeat the guardian rule.
    """
    if type(date_of_birth) is not date:
        raise InvalidInput("date_of_birth", "a date of birth is a calendar date")
    if date_of_birth > on:
        raise DateOfBirthInvalid("the date of birth lies after the date of the request")
    if date_of_birth < add_years(on, -DATE_OF_BIRTH_YEARS_MAX):
        raise DateOfBirthInvalid(
            f"the date of birth lies more than {DATE_OF_BIRTH_YEARS_MAX} years before the request"
        )


def fourteenth_birthday(date_of_birth: date) -> date:
    """The first day on which a person born on `date_of_birth` is no longer under 14."""
    return add_years(date_of_birth, MINOR_AGE_YEARS)


def is_minor(date_of_birth: date, on: date) -> bool:
    """Whether the person is under 14 on `on` (after checking the date of birth against it)."""
    check_date_of_birth(date_of_birth, on)
    return on < fourteenth_birthday(date_of_birth)


# -- the blocklist ---------------------------------------------------------------------------


class BlocklistReason(StrEnum):
    """What the police confirmed (P12: renting, lending, selling or buying accounts)."""

    ACCOUNT_RENTING = "account_renting"
    ACCOUNT_LENDING = "account_lending"
    ACCOUNT_SELLING = "account_selling"
    ACCOUNT_BUYING = "account_buying"


@dataclass(frozen=True, slots=True)
class BlocklistEntry:
    party_id: str
    case_reference: str
    listed_on: date
    reason: BlocklistReason


@dataclass(frozen=True, slots=True)
class BlocklistStatus:
    """A party's standing on the blocklist on one date.

    `suspended_through` and `barred_through` are the last days of the periods that are running
    (None when none is); the restriction ends the day after.
    """

    on: date
    listed: bool  # some listing took effect on or before `on`
    latest_listed_on: date | None
    payment_services_suspended: bool
    suspended_through: date | None
    new_accounts_barred: bool
    barred_through: date | None


def blocklist_status_of(entries: Iterable[BlocklistEntry], on: date) -> BlocklistStatus:
    """The standing that the listings give on `on`; listings dated after `on` do not count yet."""
    effective = [entry.listed_on for entry in entries if entry.listed_on <= on]
    if not effective:
        return BlocklistStatus(on, False, None, False, None, False, None)
    latest = max(effective)
    suspended_through = last_day_of_period(latest, PAYMENT_SUSPENSION_YEARS)
    barred_through = last_day_of_period(latest, NEW_ACCOUNT_BAR_YEARS)
    suspended = on <= suspended_through
    barred = on <= barred_through
    return BlocklistStatus(
        on,
        True,
        latest,
        suspended,
        suspended_through if suspended else None,
        barred,
        barred_through if barred else None,
    )


# -- views -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """A party as the identity context knows it: pseudonymous, with no personal data.

    `minor_until` is kept only for a person registered while under 14: the 14th birthday, the
    first day they are no longer a minor. It is derived from the date of birth, which itself is
    held only in the vault.
    """

    party_id: str
    kind: PartyKind
    institution_kind: InstitutionKind | None
    registration_number: str | None
    account_class: AccountClass | None
    registered_at: int
    minor_until: date | None
    guardian_party_id: str | None
    guardian_consent_reference: str | None
    verifications: tuple[Verification, ...]

    def is_minor_on(self, on: date) -> bool:
        return self.minor_until is not None and on < self.minor_until


@dataclass(frozen=True, slots=True)
class PaymentAccount:
    account_id: str
    party_id: str
    institution_id: str
    account_class: AccountClass
    opened_on: date
    opened_at: int


@dataclass(frozen=True, slots=True)
class CardBinding:
    """A bound bank card: only a keyed fingerprint and the last four digits are kept."""

    binding_id: str
    party_id: str
    fingerprint: str
    last_four: str
    bound_at: int

    @property
    def masked(self) -> str:
        return f"**** **** **** {self.last_four}"


# -- inputs ----------------------------------------------------------------------------------

_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_SOURCE = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")


def check_reference(field: str, value: object) -> str:
    """A client-chosen request id or a reference to another record: 1 to 64 plain characters."""
    if not isinstance(value, str) or _REFERENCE.fullmatch(value) is None:
        raise InvalidInput(
            field,
            f"{field} is 1 to {REFERENCE_LENGTH_MAX} characters: letters, digits and . _ : / - "
            "(starting with a letter or digit)",
        )
    return value


def check_source(value: object) -> str:
    """The source of a verification: a short lower-case name ("nciic", "bank:icbc", ...)."""
    if not isinstance(value, str) or _SOURCE.fullmatch(value) is None:
        raise InvalidInput(
            "source",
            f"a verification source is 1 to {REFERENCE_LENGTH_MAX} characters: lower-case "
            "letters, digits and . _ : -",
        )
    return value


# The unified social credit code (GB 32100-2015): 18 characters from this alphabet, the last a
# check character computed from the first 17 with weights 3^i mod 31.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC = re.compile(f"[{_USCC_ALPHABET}]{{18}}")


def check_registration_number(value: object) -> str:
    """A merchant's business registration number (unified social credit code), check character
    included; registration numbers are checked, not trusted, like dates of birth."""
    if not isinstance(value, str) or _USCC.fullmatch(value) is None:
        raise InvalidInput(
            "registration_number",
            "a business registration number is an 18-character unified social credit code",
        )
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(value, _USCC_WEIGHTS, strict=False))
    if _USCC_ALPHABET[(31 - total % 31) % 31] != value[17]:
        raise InvalidInput(
            "registration_number", "the business registration number's check character is wrong"
        )
    return value


_CARD_SEPARATORS = str.maketrans("", "", " -")
_CARD_LABEL = b"tianping.card-fingerprint.v1\x00"


def normalise_card_number(card_number: object) -> str:
    """The digits of a bank-card number (12 to 19, spaces and hyphens removed)."""
    digits = card_number.translate(_CARD_SEPARATORS) if isinstance(card_number, str) else ""
    if not (12 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        raise InvalidInput("card_number", "a bank-card number is 12 to 19 digits")
    return digits


def card_fingerprint(key: bytes, card_number: str) -> str:
    """The keyed fingerprint of a card number: HMAC-SHA256 under `key`, as 64 hex characters.

    A plain hash would not do: card numbers have so little entropy (a known prefix, a check
    digit) that every one of them can be hashed and looked up. Without the key the fingerprint
    reveals nothing, and with it a card can only be recognised, not recovered.
    """
    digits = normalise_card_number(card_number)
    return hmac.new(key, _CARD_LABEL + digits.encode(), hashlib.sha256).hexdigest()


_BANK_ACCOUNT_LABEL = b"tianping.bank-account-fingerprint.v1\x00"
# Bank account numbers in China run from about 12 to 25 digits (a corporate settlement account
# is often longer than a card); 8 to 32 digits admits every scheme without admitting free text.
BANK_ACCOUNT_DIGITS_MIN = 8
BANK_ACCOUNT_DIGITS_MAX = 32


def normalise_bank_account_number(account_number: object) -> str:
    """The digits of a bank account number (8 to 32, spaces and hyphens removed)."""
    digits = account_number.translate(_CARD_SEPARATORS) if isinstance(account_number, str) else ""
    if not (
        BANK_ACCOUNT_DIGITS_MIN <= len(digits) <= BANK_ACCOUNT_DIGITS_MAX
        and digits.isascii()
        and digits.isdigit()
    ):
        raise InvalidInput(
            "account_number",
            f"a bank account number is {BANK_ACCOUNT_DIGITS_MIN} to {BANK_ACCOUNT_DIGITS_MAX} "
            "digits",
        )
    return digits


def bank_account_fingerprint(key: bytes, account_number: str) -> str:
    """The keyed fingerprint of a bank account number, as `card_fingerprint` is of a card's
    (HMAC-SHA256, 64 hex characters), under a label of its own: an account and a card that
    happen to share digits never share a fingerprint."""
    digits = normalise_bank_account_number(account_number)
    return hmac.new(key, _BANK_ACCOUNT_LABEL + digits.encode(), hashlib.sha256).hexdigest()


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the one encoding used for chain bodies and digests."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
