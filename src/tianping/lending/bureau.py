"""The boundary to a licensed credit bureau, through which alone platform data reaches lenders.

Since the "break the direct link" deadline (C3, C4: PBoC Order [2021] No. 4, in force from
2022-01-01 with a transition to 2023-06-30) a platform may not hand personal data, profiles or
scores straight to a lender. The data flow is instead

1. the person consents to credit-bureau reporting (`credit_bureau_reporting`, a separate consent
   under PIPL Art. 23 and C1);
2. the platform reports *raw* facts about the person to a licensed bureau (Baihang, Pudao,
   Qiantang, or the PBoC Credit Reference Center) as a `BureauReport`: payment volumes, on-time
   repayment counts, credit balances and lines, never names, ID numbers or other identifiers,
   and never the data C1 forbids outright (religion, genes, fingerprints and other biometrics,
   blood type, disease or medical history);
3. when the person applies for credit with a named lender and grants credit-assessment consent
   for that lender, the platform issues a `ConsentToken` naming the person, the lender, the
   purpose and an expiry, signed with HMAC-SHA256 under a key the platform shares with the
   bureau;
4. the lender queries the bureau with that token and a stated purpose (`BureauQuery`); the
   bureau verifies the token and answers with a `BureauResponse`, or refuses with a stable code;
5. the bureau logs every query, answered or refused, and the person may read the log of who
   looked at their data and why (C2 access rights, PIPL Art. 44-45 transparency).

`CreditBureau` is the protocol a real bureau adapter and `tianping.lending.bureau_sim` both
implement. `validate_report` is the platform-side gate every report passes before it leaves,
and the simulated bureau runs the same gate on receipt.

Checks on a query run in a fixed order: the purpose stated, the token's signature, the token's
subject, lender and purpose against the query, the token's validity window, and only then
whether the bureau knows the subject at all. Checking the subject last means that a caller
without a valid token for that person learns nothing about whether the bureau holds data on
them.

Everything here is pure: standard library, plus the identity context's pure field-name
classifier (`tianping.identity.consent.prohibited_category`) so the platform has exactly one
definition of the data C1 forbids. Times are integer unix seconds supplied by the caller; keys
are injected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, Protocol, get_args

from tianping.identity.consent import prohibited_category

__all__ = [
    "CONSENT_KEY_LENGTH_MIN",
    "FIELD_INT_ABS_MAX",
    "FIELD_NAME_LENGTH_MAX",
    "FIELD_TEXT_LENGTH_MAX",
    "IDENTIFIER_LENGTH_MAX",
    "QUERY_LOG_LIMIT_MAX",
    "QUERY_PURPOSES",
    "REPORTING_PURPOSE",
    "REPORT_FIELDS_MAX",
    "SIGNATURE_LENGTH",
    "TIME_MAX",
    "TOKEN_LIFETIME_SECONDS_MAX",
    "BureauCapacityReached",
    "BureauError",
    "BureauFieldPersonal",
    "BureauFieldProhibited",
    "BureauInputInvalid",
    "BureauQuery",
    "BureauReport",
    "BureauResponse",
    "ConsentToken",
    "ConsentTokenExpired",
    "ConsentTokenInvalid",
    "ConsentTokenIssuer",
    "ConsentTokenVerifier",
    "ConsentTokenWrongLender",
    "CreditBureau",
    "FieldValue",
    "PurposeNotAllowed",
    "QueryLogEntry",
    "QueryOutcome",
    "QueryPurpose",
    "ReportAck",
    "ReportConflict",
    "ReportingConsentMissing",
    "SubjectUnknown",
    "personal_category",
    "validate_report",
]

# --------------------------------------------------------------------------- limits

# Report, query, token, lender, reporter and consent ids, and subjects, are at most this long: a
# party id is 30 characters, and 64 leaves room for any bureau's own reference format.
IDENTIFIER_LENGTH_MAX: Final = 64

# One report carries at most this many named fields. The raw facts a bureau takes from a payment
# platform are a short list; a long one suggests a profile being smuggled through (C4).
REPORT_FIELDS_MAX: Final = 64

# Field names are short snake_case words such as `payment_volume_90d_minor`.
FIELD_NAME_LENGTH_MAX: Final = 64

# A text value is a short code (a currency, a repayment status), never free text that could
# carry a name or an address.
FIELD_TEXT_LENGTH_MAX: Final = 64

# Integer values are counts or minor-unit amounts; 10**15 fen is ten trillion yuan, beyond any
# real figure, and keeps absurd values out of the sums the bureau computes.
FIELD_INT_ABS_MAX: Final = 10**15

# Times are unix seconds from 0 to the end of year 9999, the range `datetime` can show.
TIME_MAX: Final = 253_402_300_799

# HMAC-SHA256 keys shorter than the hash output weaken the signature (RFC 2104 section 3).
CONSENT_KEY_LENGTH_MIN: Final = 32
SIGNATURE_LENGTH: Final = hashlib.sha256().digest_size

# One read of the query log returns at most this many entries.
QUERY_LOG_LIMIT_MAX: Final = 1_000

QueryPurpose = Literal["credit_assessment", "post_loan_management"]
QUERY_PURPOSES: Final = frozenset(get_args(QueryPurpose))

# The consent purpose (as `tianping.identity.consent.Purpose` spells it) a report must cite.
REPORTING_PURPOSE: Final = "credit_bureau_reporting"

# A token for a loan decision lives as long as an application is open; a token for managing a
# granted loan lives as long as a consumer loan may (the longest consumer-loan terms in this
# platform's products are five years). Longer tokens are refused at issue and at verification,
# so consent cannot quietly outlive its purpose (PIPL Art. 19: the shortest period necessary).
TOKEN_LIFETIME_SECONDS_MAX: Final[Mapping[str, int]] = MappingProxyType(
    {
        "credit_assessment": 30 * 24 * 3600,
        "post_loan_management": 5 * 366 * 24 * 3600,
    }
)

QueryOutcome = Literal[
    "answered",
    "purpose_not_allowed",
    "consent_token_invalid",
    "consent_token_wrong_lender",
    "consent_token_expired",
    "subject_unknown",
]

FieldValue = int | str

# Identifiers: printable ASCII without separators, so they can never break a log line or carry
# free text.
_IDENTIFIER_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
# An identifier made only of 11 or more digits has the shape of a mobile number, an ID number
# or a card number; such a "pseudonym" is refused because it is probably the real thing.
_PERSONAL_NUMBER_IDENTIFIER: Final = re.compile(r"[0-9]{11,}|[0-9]{17}[0-9Xx]")
_FIELD_NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*")
# A text value holding 11 or more digits in a row, or an "@", looks like a mobile number, an ID
# or card number, or an e-mail address: personal data a report must not carry.
_PERSONAL_VALUE_PATTERN: Final = re.compile(r"[0-9]{11,}|@")
_CONTROL_PATTERN: Final = re.compile(r"[\x00-\x1f\x7f]")

# Biometric field names (C1 names fingerprints; C6 puts all biometric authentication data in
# its highest class, never shared). The identity classifier covers fingerprints; these cover
# the other biometrics, matched at the start of a word.
_BIOMETRIC_STEMS: Final = ("biometric", "facial", "faceprint", "iris", "retina", "voiceprint")
_BIOMETRIC_WORDS: Final = frozenset({"face", "faces", "palmprint", "gait"})
_BIOMETRIC_CHINESE: Final = ("生物特征", "人脸", "面部", "虹膜", "声纹", "掌纹")

# Personal identifiers, by category. A word matches when it equals one of the exact words or
# starts with one of the stems; pairs match two consecutive words. The lists aim at names,
# identity-document numbers, phone numbers, addresses, bank cards and e-mail addresses, which a
# bureau report identifies by pseudonym only.
_PERSONAL_EXACT_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "name": "name",
        "names": "name",
        "mobile": "phone",
        "tel": "phone",
        "msisdn": "phone",
        "addr": "address",
        "postcode": "address",
        "zipcode": "address",
        "pan": "bank_card",
        "iban": "bank_card",
        "ssn": "id_number",
    }
)
_PERSONAL_STEMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "surname": "name",
        "fullname": "name",
        "firstname": "name",
        "lastname": "name",
        "idnumber": "id_number",
        "idcard": "id_number",
        "passport": "id_number",
        "phone": "phone",
        "telephone": "phone",
        "cellphone": "phone",
        "address": "address",
        "street": "address",
        "bankcard": "bank_card",
        "cardnumber": "bank_card",
        "email": "email",
    }
)
_PERSONAL_PAIRS: Final[Mapping[tuple[str, str], str]] = MappingProxyType(
    {
        ("id", "number"): "id_number",
        ("id", "no"): "id_number",
        ("id", "card"): "id_number",
        ("bank", "card"): "bank_card",
        ("card", "number"): "bank_card",
        ("card", "no"): "bank_card",
        ("account", "number"): "bank_card",
        ("account", "no"): "bank_card",
        ("e", "mail"): "email",
    }
)
_PERSONAL_CHINESE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "姓名": "name",
        "名字": "name",
        "身份证": "id_number",
        "证件号": "id_number",
        "电话": "phone",
        "手机": "phone",
        "地址": "address",
        "住址": "address",
        "银行卡": "bank_card",
        "卡号": "bank_card",
        "邮箱": "email",
    }
)
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD: Final = re.compile(r"[^0-9a-z]+")


# --------------------------------------------------------------------------- errors


class BureauError(Exception):
    """Root of the credit-bureau errors; `code` is stable and the message holds no personal data.

    Messages name fields and categories, never values: they reach logs and HTTP responses.
    """

    code = "bureau_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BureauInputInvalid(BureauError):
    """A field of a report, token or query is malformed or out of range; `field` names it."""

    code = "bureau_input_invalid"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class BureauFieldProhibited(BureauError):
    """A report names data C1 forbids collecting at all; `category` says which kind."""

    code = "bureau_field_prohibited"

    def __init__(self, field_name: str, category: str) -> None:
        super().__init__(f"field {field_name!r} is prohibited credit data ({category})")
        self.field = field_name
        self.category = category


class BureauFieldPersonal(BureauError):
    """A report carries a personal identifier (by name or by the shape of a text value)."""

    code = "bureau_field_personal"

    def __init__(self, field_name: str, category: str) -> None:
        super().__init__(
            f"field {field_name!r} holds a personal identifier ({category}); "
            "reports identify the person by pseudonym only"
        )
        self.field = field_name
        self.category = category


class ReportingConsentMissing(BureauError):
    """The report does not cite a consent to credit-bureau reporting."""

    code = "reporting_consent_missing"


class ReportConflict(BureauError):
    """A report id already used for a report with different contents."""

    code = "bureau_report_conflict"


class BureauCapacityReached(BureauError):
    """A bounded store of the bureau is full; the message names the limit."""

    code = "bureau_capacity_reached"


class PurposeNotAllowed(BureauError):
    """The purpose stated is not one a lender may query for, or the token does not cover it."""

    code = "purpose_not_allowed"


class ConsentTokenInvalid(BureauError):
    """The token's signature does not verify, or it names another person, or it is malformed."""

    code = "consent_token_invalid"


class ConsentTokenWrongLender(BureauError):
    """The token was issued for a different lender than the one querying."""

    code = "consent_token_wrong_lender"


class ConsentTokenExpired(BureauError):
    """The query falls outside the token's validity window."""

    code = "consent_token_expired"


class SubjectUnknown(BureauError):
    """The bureau holds no report on the subject (as of the query time)."""

    code = "subject_unknown"


# --------------------------------------------------------------------------- field checks


def _require_identifier(field_name: str, value: object) -> str:
    if not isinstance(value, str):
        raise BureauInputInvalid(field_name, f"must be a str, got {type(value).__name__}")
    if not 1 <= len(value) <= IDENTIFIER_LENGTH_MAX:
        raise BureauInputInvalid(
            field_name, f"must be 1 to {IDENTIFIER_LENGTH_MAX} characters long"
        )
    if _IDENTIFIER_PATTERN.fullmatch(value) is None:
        raise BureauInputInvalid(
            field_name, "must be ASCII letters, digits and '_', '.', ':' or '-'"
        )
    if _PERSONAL_NUMBER_IDENTIFIER.fullmatch(value) is not None:
        raise BureauInputInvalid(
            field_name, "has the shape of a phone, ID or card number; use a pseudonymous id"
        )
    return value


def _require_time(field_name: str, value: object) -> int:
    # `type(...) is int` refuses bool, which is an int subclass and always a bug here.
    if type(value) is not int or not 0 <= value <= TIME_MAX:
        raise BureauInputInvalid(field_name, f"must be an int of unix seconds, 0 to {TIME_MAX}")
    return value


def _words_of(name: str) -> list[str]:
    """The lower-case words of a field name, splitting camelCase and any non-alphanumeric run."""
    return [word for word in _NON_WORD.split(_CAMEL_BOUNDARY.sub(" ", name).casefold()) if word]


def _biometric(name: str, words: Sequence[str]) -> bool:
    if any(term in name for term in _BIOMETRIC_CHINESE):
        return True
    return any(word in _BIOMETRIC_WORDS or word.startswith(_BIOMETRIC_STEMS) for word in words)


def personal_category(name: str) -> str | None:
    """The kind of personal identifier a field name denotes (`name`, `id_number`, `phone`,
    `address`, `bank_card`, `email`), or None.

    Words are matched, not substrings, so `valid_number` or `transaction_count` pass while
    `full_name`, `phoneNumber`, `id_no` and `bank_card_last4` are caught.
    """
    text = unicodedata.normalize("NFKC", name)
    for term, category in _PERSONAL_CHINESE.items():
        if term in text:
            return category
    words = _words_of(text)
    for word in words:
        exact = _PERSONAL_EXACT_WORDS.get(word)
        if exact is not None:
            return exact
        for stem, category in _PERSONAL_STEMS.items():
            if word.startswith(stem):
                return category
    for index in range(len(words) - 1):
        paired = _PERSONAL_PAIRS.get((words[index], words[index + 1]))
        if paired is not None:
            return paired
    return None


def _prohibited(name: str) -> str | None:
    """The C1 category a field name falls under (biometrics included), or None."""
    category = prohibited_category(name)
    if category is not None:
        return category
    text = unicodedata.normalize("NFKC", name)
    if _biometric(text, _words_of(text)):
        return "biometrics"
    return None


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class BureauReport:
    """Raw facts one reporting institution sends about one pseudonymous person.

    `report_id` is the idempotency key: resending the same report is harmless, and reusing the
    id for different contents is refused. `data` maps snake_case field names to integers
    (counts, minor-unit amounts) or short text codes; construction checks only the shape, and
    `validate_report` decides whether the contents may be reported at all. `consent_reference`
    names the person's consent record, and `consent_purpose` must be `credit_bureau_reporting`.
    """

    report_id: str
    reporter_id: str
    subject: str
    reported_at: int
    data: Mapping[str, FieldValue]
    consent_reference: str
    consent_purpose: str = REPORTING_PURPOSE

    def __post_init__(self) -> None:
        _require_identifier("report_id", self.report_id)
        _require_identifier("reporter_id", self.reporter_id)
        _require_identifier("subject", self.subject)
        _require_time("reported_at", self.reported_at)
        _require_identifier("consent_reference", self.consent_reference)
        if not isinstance(self.consent_purpose, str) or len(self.consent_purpose) > 64:
            raise BureauInputInvalid("consent_purpose", "must be a str of at most 64 characters")
        if not isinstance(self.data, Mapping):
            raise BureauInputInvalid("data", "must be a mapping of field names to values")
        if not 1 <= len(self.data) <= REPORT_FIELDS_MAX:
            raise BureauInputInvalid("data", f"must hold 1 to {REPORT_FIELDS_MAX} fields")
        copied: dict[str, FieldValue] = {}
        for name, value in self.data.items():
            if not isinstance(name, str) or not 1 <= len(name) <= FIELD_NAME_LENGTH_MAX:
                raise BureauInputInvalid(
                    "data", f"field names must be str of 1 to {FIELD_NAME_LENGTH_MAX} characters"
                )
            if type(value) is int:
                if abs(value) > FIELD_INT_ABS_MAX:
                    raise BureauInputInvalid(name, f"must be within ±{FIELD_INT_ABS_MAX}")
            elif type(value) is str:
                if len(value) > FIELD_TEXT_LENGTH_MAX or _CONTROL_PATTERN.search(value):
                    raise BureauInputInvalid(
                        name,
                        f"text values are at most {FIELD_TEXT_LENGTH_MAX} printable characters",
                    )
            else:
                raise BureauInputInvalid(name, "values must be int or str (no float, no bool)")
            copied[name] = value
        # A read-only copy, so the frozen report cannot change under the caller's dict.
        object.__setattr__(self, "data", MappingProxyType(copied))

    def fingerprint(self) -> str:
        """A SHA-256 of the contents, used to tell a resend from a conflicting reuse of the id."""
        canonical = json.dumps(
            [
                self.report_id,
                self.reporter_id,
                self.subject,
                self.reported_at,
                sorted(self.data.items()),
                self.consent_reference,
                self.consent_purpose,
            ],
            ensure_ascii=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def validate_report(report: BureauReport) -> BureauReport:
    """Return the report if it may be sent to a bureau; raise the first refusal otherwise.

    Refusals, in order: `reporting_consent_missing` when the report does not cite a
    credit-bureau-reporting consent; `bureau_field_prohibited` for data C1 forbids (religion,
    genes, fingerprints and other biometrics, blood type, disease, medical history), checked on
    every field before anything else so that such a field is always named for what it is;
    `bureau_field_personal` for a field whose name denotes a personal identifier or whose text
    value has the shape of one; `bureau_input_invalid` for a field name that is not snake_case.
    """
    if report.consent_purpose != REPORTING_PURPOSE:
        raise ReportingConsentMissing(
            f"a report must cite a consent to {REPORTING_PURPOSE}, "
            f"not to {report.consent_purpose!r}"
        )
    for name in report.data:
        category = _prohibited(name)
        if category is not None:
            raise BureauFieldProhibited(name if name.isascii() else "<non-ascii>", category)
    for name, value in report.data.items():
        label = name if name.isascii() else "<non-ascii>"
        category = personal_category(name)
        if category is not None:
            raise BureauFieldPersonal(label, category)
        if isinstance(value, str) and _PERSONAL_VALUE_PATTERN.search(value):
            raise BureauFieldPersonal(label, "identifier_shaped_value")
        if _FIELD_NAME_PATTERN.fullmatch(name) is None:
            raise BureauInputInvalid(label, "field names are snake_case: a-z, 0-9 and '_'")
    return report


@dataclass(frozen=True, slots=True)
class ReportAck:
    """The bureau's acknowledgement of a report; `duplicate` marks a harmless resend."""

    report_id: str
    subject: str
    accepted_at: int
    duplicate: bool


# --------------------------------------------------------------------------- consent tokens


@dataclass(frozen=True, slots=True)
class ConsentToken:
    """The platform's signed statement that `subject` let `lender_id` query for `purpose`.

    Valid from `issued_at` (inclusive) to `expires_at` (exclusive). `consent_reference` names
    the consent record behind it, so the query log ties every query to a consent. The signature
    covers every other field; changing any of them invalidates it.
    """

    token_id: str
    subject: str
    lender_id: str
    purpose: str
    issued_at: int
    expires_at: int
    consent_reference: str
    signature: bytes

    def __post_init__(self) -> None:
        _require_identifier("token_id", self.token_id)
        _require_identifier("subject", self.subject)
        _require_identifier("lender_id", self.lender_id)
        _require_identifier("consent_reference", self.consent_reference)
        if not isinstance(self.purpose, str) or len(self.purpose) > 64:
            raise BureauInputInvalid("purpose", "must be a str of at most 64 characters")
        _require_time("issued_at", self.issued_at)
        _require_time("expires_at", self.expires_at)
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_LENGTH:
            raise BureauInputInvalid("signature", f"must be {SIGNATURE_LENGTH} bytes")

    def signed_message(self) -> bytes:
        """The canonical bytes the signature covers: a versioned JSON array of the fields."""
        return _signed_message(
            self.token_id,
            self.subject,
            self.lender_id,
            self.purpose,
            self.issued_at,
            self.expires_at,
            self.consent_reference,
        )


def _signed_message(
    token_id: str,
    subject: str,
    lender_id: str,
    purpose: str,
    issued_at: int,
    expires_at: int,
    consent_reference: str,
) -> bytes:
    # A JSON array is unambiguous (no field can run into the next), and the version tag means a
    # future format can never verify under an old one.
    return json.dumps(
        [
            "tianping.bureau.consent.v1",
            token_id,
            subject,
            lender_id,
            purpose,
            issued_at,
            expires_at,
            consent_reference,
        ],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")


def _require_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) < CONSENT_KEY_LENGTH_MIN:
        # The message never echoes the key or its length beyond the rule.
        raise BureauInputInvalid("key", f"must be at least {CONSENT_KEY_LENGTH_MIN} bytes")
    return key


class ConsentTokenIssuer:
    """Issues consent tokens when a person grants credit-assessment consent for a named lender.

    The key is injected (the platform's secrets store holds it) and shared with the bureau,
    which verifies with `ConsentTokenVerifier`.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = _require_key(key)

    def __repr__(self) -> str:
        return "ConsentTokenIssuer(key=<hidden>)"

    def issue(
        self,
        *,
        token_id: str,
        subject: str,
        lender_id: str,
        purpose: str,
        consent_reference: str,
        issued_at: int,
        expires_at: int,
    ) -> ConsentToken:
        """Sign a token; refuses a purpose lenders may not query for and over-long lifetimes."""
        if purpose not in QUERY_PURPOSES:
            raise PurposeNotAllowed(f"tokens are issued only for {sorted(QUERY_PURPOSES)}")
        _require_time("issued_at", issued_at)
        _require_time("expires_at", expires_at)
        lifetime = expires_at - issued_at
        if not 0 < lifetime <= TOKEN_LIFETIME_SECONDS_MAX[purpose]:
            raise BureauInputInvalid(
                "expires_at",
                f"a {purpose} token lives 1 to {TOKEN_LIFETIME_SECONDS_MAX[purpose]} seconds",
            )
        message = _signed_message(
            token_id, subject, lender_id, purpose, issued_at, expires_at, consent_reference
        )
        signature = hmac.new(self._key, message, hashlib.sha256).digest()
        return ConsentToken(
            token_id=token_id,
            subject=subject,
            lender_id=lender_id,
            purpose=purpose,
            issued_at=issued_at,
            expires_at=expires_at,
            consent_reference=consent_reference,
            signature=signature,
        )


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class BureauQuery:
    """A lender's request for a person's bureau data, for a stated purpose, under a token."""

    query_id: str
    lender_id: str
    subject: str
    purpose: str
    token: ConsentToken

    def __post_init__(self) -> None:
        _require_identifier("query_id", self.query_id)
        _require_identifier("lender_id", self.lender_id)
        _require_identifier("subject", self.subject)
        if not isinstance(self.purpose, str) or len(self.purpose) > 64:
            raise BureauInputInvalid("purpose", "must be a str of at most 64 characters")
        if not isinstance(self.token, ConsentToken):
            raise BureauInputInvalid("token", "must be a ConsentToken")


class ConsentTokenVerifier:
    """The bureau's side of the consent token: checks a query against its token."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = _require_key(key)

    def __repr__(self) -> str:
        return "ConsentTokenVerifier(key=<hidden>)"

    def check(self, query: BureauQuery, now: int) -> None:
        """Return if the query may be answered; raise the refusal otherwise.

        Order: the purpose stated (`purpose_not_allowed`), the signature
        (`consent_token_invalid`), the token's subject (`consent_token_invalid`), its lender
        (`consent_token_wrong_lender`), its purpose (`purpose_not_allowed`), and the time: a
        token not yet valid is `consent_token_invalid` (it was issued in the future, which no
        honest clock does), one past its expiry or with an over-long lifetime
        `consent_token_expired`.
        """
        _require_time("now", now)
        if query.purpose not in QUERY_PURPOSES:
            raise PurposeNotAllowed(
                f"lenders may query only for {sorted(QUERY_PURPOSES)}, not {query.purpose!r}"
            )
        token = query.token
        expected = hmac.new(self._key, token.signed_message(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, token.signature):
            raise ConsentTokenInvalid("the consent token's signature does not verify")
        if token.subject != query.subject:
            raise ConsentTokenInvalid("the consent token was issued for a different person")
        if token.lender_id != query.lender_id:
            raise ConsentTokenWrongLender("the consent token was issued for a different lender")
        if token.purpose != query.purpose:
            raise PurposeNotAllowed("the consent token does not cover the purpose stated")
        if now < token.issued_at:
            raise ConsentTokenInvalid("the consent token is not valid yet")
        lifetime_max = TOKEN_LIFETIME_SECONDS_MAX.get(token.purpose, 0)
        if now >= token.expires_at or token.expires_at - token.issued_at > lifetime_max:
            raise ConsentTokenExpired("the consent token has expired")


@dataclass(frozen=True, slots=True)
class BureauResponse:
    """The bureau's answer: the person's aggregated fields as of the latest report used.

    `source_count` is the number of reporting institutions whose reports were aggregated.
    """

    query_id: str
    subject: str
    as_of: int
    fields: Mapping[str, FieldValue]
    source_count: int


@dataclass(frozen=True, slots=True)
class QueryLogEntry:
    """One query as the bureau logged it, whether answered or refused.

    `outcome` is "answered" or the refusal code. `sequence` orders entries of one bureau.
    """

    sequence: int
    query_id: str
    subject: str
    lender_id: str
    purpose: str
    token_id: str
    outcome: QueryOutcome
    at: int


class CreditBureau(Protocol):
    """A licensed credit bureau as the platform and lenders see it."""

    def report(self, report: BureauReport) -> ReportAck:
        """Store a validated report; idempotent on `report_id`."""
        ...

    def query(self, query: BureauQuery, now: int) -> BureauResponse:
        """Answer a lender's query, or raise the refusal; either way the query is logged."""
        ...

    def query_log(self, subject: str, limit: int) -> list[QueryLogEntry]:
        """The subject's query log, newest first, at most `limit` entries."""
        ...
