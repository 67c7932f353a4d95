"""Purpose-bound consent and the lawful basis of every read of personal data, as pure domain.

Everything here is a function of its arguments (standard library and the identity context's
other pure modules only; time is passed in as nanoseconds), so the decisions the law asks for
can be tested exhaustively without a database or keys.

Personal fields. The vault holds exactly eight kinds of personal data: `name`, `id_number`,
`phone`, `address`, `date_of_birth`, `income`, `bank_card_number` and `email`. Anything else is
refused at input, and these names are refused with their own code, `personal_field_prohibited`,
however the request spells them, because the credit-reporting regulation forbids collecting
them at all (C1, State Council Order No. 631, Art. 14): religion, genes, fingerprints, blood
type, disease and medical history. A field name is normalised (NFKC, camelCase split into
words, case folded, any run of other characters read as a word break) and refused when

* one of its words is, or starts with, one of these stems:
  religion: `religio`, `faith`, `creed`;
  genes: `gene`, `genes`, `genetic`, `genome`, `genomic`, `genotyp`, `dna`, `allele`;
  fingerprints: `fingerprint`, `dactylogram`, or the words `finger` then `print(s)`;
  blood type: `bloodtype`, `bloodgroup`, or the words `blood` then `type`/`group`;
  disease: `disease`, `illness`, `sickness`, `diagnos`, `ailment`, `patholog`;
  medical history: `medical`, `medication`, `medicine`, `health`, `clinical`, `patient`;
* or its letters run together contain `religio`, `fingerprint`, `bloodtype`, `bloodgroup`,
  `genetic`, `genome`, `genotyp`, `disease`, `diagnos`, `medical` or `healthrecord`;
* or it contains one of the Chinese terms 宗教, 信仰, 基因, 遗传, 指纹, 血型, 疾病, 病史, 病历,
  病症, 诊断, 医疗, 健康.

`gene` is matched as a word, not inside one, so `general` or `gender` pass; a rare false refusal
(a field called `good_faith`) is the accepted price of never storing a prohibited field.

Purposes. Seven purposes can be consented to: `payment_service`, `identity_verification`,
`credit_assessment`, `credit_bureau_reporting`, `marketing_personalisation`,
`third_party_sharing` (always with a named recipient) and `cross_border_transfer` (with the
overseas recipient named, PIPL Art. 39). Two more are never consented to: `aml_compliance`,
read only under the legal duty to keep customer identity records (A4, A5), and
`data_subject_request`, reserved for the person's own export and correction (PIPL Arts. 44-50,
D6), which ordinary reads cannot claim.

Lawful basis (PIPL Art. 13, D1). A read names one purpose and a set of fields; it is lawful
when every field lies within the purpose's scope (the minimum the purpose needs, PIPL Art. 6)
and either

* a basis other than consent covers every field: contract necessity for the fields a payment
  needs (`payment_service`: name, ID number, phone, bank-card number), or a legal duty for the
  customer-due-diligence identity set (`identity_verification` and `aml_compliance`: name, ID
  number, date of birth, address, phone; A5, A6 and P1 make real-name verification mandatory);
* or a live consent covers the purpose and every field. Consent is given to a versioned text
  that lists its purposes, the fields it discloses, its language, its hash and (for sharing and
  cross-border transfer) its recipient. Where the law asks for separate consent (D2, D3) the
  text must name that one purpose alone, and a consent given to a bundle of purposes does not
  count: for `credit_assessment` (C1: written consent for credit data; income and financial
  accounts are sensitive), `credit_bureau_reporting` and `third_party_sharing` (giving data to
  another handler, Art. 23), `cross_border_transfer` (Art. 39), and for any consent-based read
  of a sensitive field (`id_number`, `bank_card_number`, `income`: financial accounts are
  sensitive PI under Art. 28; income is restricted credit data under C1; the national standard
  GB/T 35273-2020 lists ID numbers as sensitive).

One basis covers a whole read; a caller that needs fields under two bases makes two reads, so
the data-access log names exactly one basis per entry. Separate consent is only a question when
consent is the basis: PIPL Art. 13 lets contract necessity and legal duty stand without consent.

Consent is live from its grant's timestamp until a withdrawal of the same text (any version)
takes effect at the withdrawal's timestamp; a later grant makes it live again. Events at the
same nanosecond are applied in the order they were recorded.

Services (D1). `SERVICE_NEEDS` lists which purposes each service needs. A service is available
when every purpose it needs has a basis other than consent or a live consent; a consent the
service does not need (marketing for payments, say) is never asked about, so refusing it never
blocks the service.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from tianping.identity.errors import IdentityError, InvalidInput
from tianping.identity.parties import check_date_of_birth, normalise_card_number

__all__ = [
    "ACCESS_REFUSAL_CODES",
    "AML_IDENTITY_FIELDS",
    "CONSENTABLE_PURPOSES",
    "DATA_SUBJECT_RESPONSE_DAYS",
    "FIELD_VALUE_LENGTH_MAX",
    "POLICIES",
    "SENSITIVE_FIELDS",
    "SERVICE_NEEDS",
    "AccessDecision",
    "AccessRefused",
    "Basis",
    "ConsentEvent",
    "ConsentEventKind",
    "ConsentNotLive",
    "ConsentText",
    "ConsentTextBundled",
    "ConsentTextConflict",
    "ConsentTextNotFound",
    "DataSubjectRequestKind",
    "DataSubjectRequestNotFound",
    "DataSubjectRequestState",
    "DataSubjectTransitionInvalid",
    "Field",
    "LiveConsent",
    "PersonErased",
    "PersonNotFound",
    "PersonalFieldProhibited",
    "PersonalFieldUnknown",
    "PrivacyError",
    "Purpose",
    "PurposePolicy",
    "RetentionRule",
    "ServiceCheck",
    "aml_retention_rule",
    "check_consent_text",
    "check_field_names",
    "check_field_value",
    "check_purpose",
    "check_recipient",
    "decide_access",
    "live_consents",
    "prohibited_category",
    "respond_by",
    "service_check",
    "transition_allowed",
]


# -- errors ----------------------------------------------------------------------------------


class PrivacyError(IdentityError):
    """Root of the consent and vault errors; messages never contain personal values."""

    code = "privacy_error"


class PersonalFieldProhibited(PrivacyError):
    """A field whose collection the law forbids (C1): refused at input, never stored."""

    code = "personal_field_prohibited"

    def __init__(self, category: str) -> None:
        super().__init__(
            f"a field of the request falls under the prohibited category {category!r} "
            "(religion, genes, fingerprints, blood type, disease and medical history may not "
            "be collected: C1)"
        )
        self.category = category


class PersonalFieldUnknown(PrivacyError):
    """A field that is not one of the vault's eight kinds of personal data."""

    code = "personal_field_unknown"


class ConsentTextNotFound(PrivacyError):
    code = "consent_text_not_found"


class ConsentTextConflict(PrivacyError):
    """A consent text id and version already published with other contents."""

    code = "consent_text_conflict"


class ConsentTextBundled(PrivacyError):
    """A text bundling a purpose that needs separate consent with other purposes (D2, D3)."""

    code = "consent_text_bundles_separate_purpose"


class ConsentNotLive(PrivacyError):
    """A withdrawal of a consent that is not live: nothing to withdraw."""

    code = "consent_not_live"


class AccessRefused(PrivacyError):
    """A read of personal data without a lawful basis; `reason` is one of
    `ACCESS_REFUSAL_CODES`. The refusal is itself written to the data-access log."""

    code = "personal_data_access_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PersonErased(PrivacyError):
    """The person's personal data was erased; their pseudonymous id cannot be reused."""

    code = "person_erased"


class PersonNotFound(PrivacyError):
    """The vault holds nothing about this party."""

    code = "person_not_found"


class DataSubjectRequestNotFound(PrivacyError):
    code = "data_subject_request_not_found"


class DataSubjectTransitionInvalid(PrivacyError):
    code = "data_subject_request_transition_invalid"


# -- fields ----------------------------------------------------------------------------------


class Field(StrEnum):
    NAME = "name"
    ID_NUMBER = "id_number"
    PHONE = "phone"
    ADDRESS = "address"
    DATE_OF_BIRTH = "date_of_birth"
    INCOME = "income"
    BANK_CARD_NUMBER = "bank_card_number"
    EMAIL = "email"


ALL_FIELDS = frozenset(Field)

# Sensitive personal information: a consent-based read of any of these needs separate consent.
SENSITIVE_FIELDS = frozenset({Field.ID_NUMBER, Field.BANK_CARD_NUMBER, Field.INCOME})

# The customer identity data the AML Law and the CDD Measures require to be kept (A4, A5).
AML_IDENTITY_FIELDS = frozenset(
    {Field.NAME, Field.ID_NUMBER, Field.DATE_OF_BIRTH, Field.ADDRESS, Field.PHONE}
)

# The longest value of each field, in characters. Values are short by nature; the bounds stop a
# client from parking arbitrary documents in the vault.
FIELD_VALUE_LENGTH_MAX: Mapping[Field, int] = {
    Field.NAME: 128,
    Field.ID_NUMBER: 32,
    Field.PHONE: 32,
    Field.ADDRESS: 512,
    Field.DATE_OF_BIRTH: 10,
    Field.INCOME: 16,
    Field.BANK_CARD_NUMBER: 23,
    Field.EMAIL: 254,
}

_WORD_STEMS: Mapping[str, tuple[str, ...]] = {
    "religion": ("religio", "faith", "creed"),
    "genes": ("gene", "genes", "genetic", "genome", "genomic", "genotyp", "dna", "allele"),
    "fingerprints": ("fingerprint", "dactylogram"),
    "blood_type": ("bloodtype", "bloodgroup"),
    "disease": ("disease", "illness", "sickness", "diagnos", "ailment", "patholog"),
    "medical_history": ("medical", "medication", "medicine", "health", "clinical", "patient"),
}
# Stems matched as whole words only: as prefixes they would catch `general` or `dnab`.
_EXACT_WORDS = frozenset({"gene", "genes", "dna"})
_WORD_PAIRS: Mapping[tuple[str, str], str] = {
    ("finger", "print"): "fingerprints",
    ("finger", "prints"): "fingerprints",
    ("blood", "type"): "blood_type",
    ("blood", "group"): "blood_type",
}
_COMPACT_STEMS: Mapping[str, str] = {
    "religio": "religion",
    "fingerprint": "fingerprints",
    "bloodtype": "blood_type",
    "bloodgroup": "blood_type",
    "genetic": "genes",
    "genome": "genes",
    "genotyp": "genes",
    "disease": "disease",
    "diagnos": "disease",
    "medical": "medical_history",
    "healthrecord": "medical_history",
}
_CHINESE_TERMS: Mapping[str, str] = {
    "宗教": "religion",
    "信仰": "religion",
    "基因": "genes",
    "遗传": "genes",
    "指纹": "fingerprints",
    "血型": "blood_type",
    "疾病": "disease",
    "病症": "disease",
    "诊断": "disease",
    "病史": "medical_history",
    "病历": "medical_history",
    "医疗": "medical_history",
    "健康": "medical_history",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9a-z]+")
# Field names longer than this are refused as unknown without being inspected further.
FIELD_NAME_LENGTH_MAX = 256
FIELDS_PER_REQUEST_MAX = len(Field)
# A request may carry a few names beyond the eight fields (every one of them is refused), but
# not an unbounded list.
_NAMES_PER_REQUEST_MAX = 32


def prohibited_category(name: str) -> str | None:
    """The prohibited category (C1) a field name falls under, or None; see the module notes."""
    text = unicodedata.normalize("NFKC", name)
    for term, category in _CHINESE_TERMS.items():
        if term in text:
            return category
    words = [word for word in _NON_WORD.split(_CAMEL.sub(" ", text).casefold()) if word]
    for word in words:
        for category, stems in _WORD_STEMS.items():
            for stem in stems:
                if word == stem or (stem not in _EXACT_WORDS and word.startswith(stem)):
                    return category
    for pair in itertools.pairwise(words):
        paired = _WORD_PAIRS.get(pair)
        if paired is not None:
            return paired
    compact = "".join(words)
    for stem, category in _COMPACT_STEMS.items():
        if stem in compact:
            return category
    return None


def check_field_names(names: Iterable[object]) -> list[Field]:
    """The fields named, refusing prohibited ones first (with their category), then unknown ones.

    Prohibited names are looked for before anything else, so a request carrying one is refused
    with `personal_field_prohibited` whatever else is wrong with it.
    """
    listed = list(names)
    if len(listed) > _NAMES_PER_REQUEST_MAX:
        raise InvalidInput("fields", f"a request names at most {FIELDS_PER_REQUEST_MAX} fields")
    for name in listed:
        if isinstance(name, str) and len(name) <= FIELD_NAME_LENGTH_MAX:
            category = prohibited_category(name)
            if category is not None:
                raise PersonalFieldProhibited(category)
    fields: list[Field] = []
    for name in listed:
        if not isinstance(name, str) or name not in ALL_FIELDS:
            raise PersonalFieldUnknown(
                "a field of the request is not one of: " + ", ".join(sorted(ALL_FIELDS))
            )
        field = Field(name)
        if field in fields:
            raise InvalidInput("fields", f"the field {field.value} is named twice")
        fields.append(field)
    if not fields:
        raise InvalidInput("fields", "a request names at least one field")
    return fields


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,30}")
_INCOME = re.compile(r"(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_field_value(field: Field, value: object, on: date) -> str:
    """The value to store for `field`, normalised; refuses malformed values without quoting them.

    Error messages name the field and the expected shape only: the value is personal data and
    messages reach logs. `on` is the request's date, against which a date of birth is checked.
    """
    if not isinstance(value, str) or not value or len(value) > FIELD_VALUE_LENGTH_MAX[field]:
        raise InvalidInput(
            field.value,
            f"{field.value} is a text of 1 to {FIELD_VALUE_LENGTH_MAX[field]} characters",
        )
    if field in (Field.NAME, Field.ADDRESS):
        if _CONTROL.search(value) or value.strip() != value:
            raise InvalidInput(
                field.value, f"{field.value} has control characters or surrounding spaces"
            )
        return unicodedata.normalize("NFC", value)
    if field is Field.ID_NUMBER:
        if _ID_NUMBER.fullmatch(value) is None:
            raise InvalidInput(field.value, "an ID number is letters, digits and hyphens")
        return value.upper()
    if field is Field.PHONE:
        if _PHONE.fullmatch(value) is None:
            raise InvalidInput(field.value, "a phone number is digits with an optional +")
        return value
    if field is Field.DATE_OF_BIRTH:
        try:
            born = date.fromisoformat(value) if _ISO_DATE.fullmatch(value) else None
        except ValueError:
            born = None
        if born is None:
            raise InvalidInput(field.value, "a date of birth is an ISO date (YYYY-MM-DD)")
        check_date_of_birth(born, on)
        return born.isoformat()
    if field is Field.INCOME:
        # An annual income in yuan as a decimal text: money is never a float.
        if _INCOME.fullmatch(value) is None:
            raise InvalidInput(
                field.value, "an income is a decimal amount in yuan with at most two decimals"
            )
        return value
    if field is Field.BANK_CARD_NUMBER:
        return normalise_card_number(value)
    if _EMAIL.fullmatch(value) is None:
        raise InvalidInput(field.value, "an email address has the form local@domain")
    return value


# -- purposes, bases and policies ------------------------------------------------------------


class Purpose(StrEnum):
    PAYMENT_SERVICE = "payment_service"
    IDENTITY_VERIFICATION = "identity_verification"
    CREDIT_ASSESSMENT = "credit_assessment"
    CREDIT_BUREAU_REPORTING = "credit_bureau_reporting"
    MARKETING_PERSONALISATION = "marketing_personalisation"
    THIRD_PARTY_SHARING = "third_party_sharing"
    CROSS_BORDER_TRANSFER = "cross_border_transfer"
    AML_COMPLIANCE = "aml_compliance"
    DATA_SUBJECT_REQUEST = "data_subject_request"


class Basis(StrEnum):
    """The lawful bases this platform relies on (PIPL Art. 13, D1)."""

    CONSENT = "consent"
    CONTRACT_NECESSITY = "contract_necessity"
    LEGAL_DUTY = "legal_duty"
    DATA_SUBJECT_RIGHT = "data_subject_right"


@dataclass(frozen=True, slots=True)
class PurposePolicy:
    """What a purpose may read and on which bases."""

    purpose: Purpose
    scope: frozenset[Field]
    consentable: bool
    separate_consent: bool
    needs_recipient: bool
    other_basis: Basis | None
    other_basis_fields: frozenset[Field]
    citation: str


_PAYMENT_NECESSARY = frozenset({Field.NAME, Field.ID_NUMBER, Field.PHONE, Field.BANK_CARD_NUMBER})

POLICIES: Mapping[Purpose, PurposePolicy] = {
    policy.purpose: policy
    for policy in (
        PurposePolicy(
            Purpose.PAYMENT_SERVICE,
            _PAYMENT_NECESSARY | {Field.ADDRESS, Field.EMAIL},
            consentable=True,
            separate_consent=False,
            needs_recipient=False,
            other_basis=Basis.CONTRACT_NECESSITY,
            other_basis_fields=_PAYMENT_NECESSARY,
            citation="PIPL Art. 13(2) contract necessity (D1); real-name payment accounts P1, P4",
        ),
        PurposePolicy(
            Purpose.IDENTITY_VERIFICATION,
            AML_IDENTITY_FIELDS | {Field.BANK_CARD_NUMBER},
            consentable=True,
            separate_consent=False,
            needs_recipient=False,
            other_basis=Basis.LEGAL_DUTY,
            other_basis_fields=AML_IDENTITY_FIELDS,
            citation="PIPL Art. 13(3) legal duty: CDD on opening payment accounts (A5, A6, P1)",
        ),
        PurposePolicy(
            Purpose.CREDIT_ASSESSMENT,
            AML_IDENTITY_FIELDS | {Field.INCOME, Field.BANK_CARD_NUMBER},
            consentable=True,
            separate_consent=True,
            needs_recipient=False,
            other_basis=None,
            other_basis_fields=frozenset(),
            citation="C1 (Order No. 631 Arts. 13-18): written consent; PIPL Arts. 28-29 (D3)",
        ),
        PurposePolicy(
            Purpose.CREDIT_BUREAU_REPORTING,
            AML_IDENTITY_FIELDS | {Field.INCOME},
            consentable=True,
            separate_consent=True,
            needs_recipient=False,
            other_basis=None,
            other_basis_fields=frozenset(),
            citation="C1, C3, C4: data to lenders only via a licensed bureau; PIPL Art. 23 (D2)",
        ),
        PurposePolicy(
            Purpose.MARKETING_PERSONALISATION,
            frozenset({Field.NAME, Field.EMAIL, Field.PHONE, Field.DATE_OF_BIRTH}),
            consentable=True,
            separate_consent=False,
            needs_recipient=False,
            other_basis=None,
            other_basis_fields=frozenset(),
            citation="PIPL Art. 24 and the algorithm provisions: refusable, never needed (D4, D5)",
        ),
        PurposePolicy(
            Purpose.THIRD_PARTY_SHARING,
            ALL_FIELDS,
            consentable=True,
            separate_consent=True,
            needs_recipient=True,
            other_basis=None,
            other_basis_fields=frozenset(),
            citation="PIPL Art. 23: separate consent naming the recipient (D2)",
        ),
        PurposePolicy(
            Purpose.CROSS_BORDER_TRANSFER,
            ALL_FIELDS,
            consentable=True,
            separate_consent=True,
            needs_recipient=True,
            other_basis=None,
            other_basis_fields=frozenset(),
            citation="PIPL Art. 39: separate consent naming the overseas recipient (D2, D9)",
        ),
        PurposePolicy(
            Purpose.AML_COMPLIANCE,
            AML_IDENTITY_FIELDS,
            consentable=False,
            separate_consent=False,
            needs_recipient=False,
            other_basis=Basis.LEGAL_DUTY,
            other_basis_fields=AML_IDENTITY_FIELDS,
            citation="AML Law (2024 revision) and CDD Measures 2025: records kept >= 10 years "
            "(A4, A5)",
        ),
        PurposePolicy(
            Purpose.DATA_SUBJECT_REQUEST,
            ALL_FIELDS,
            consentable=False,
            separate_consent=False,
            needs_recipient=False,
            other_basis=Basis.DATA_SUBJECT_RIGHT,
            other_basis_fields=ALL_FIELDS,
            citation="PIPL Arts. 44-50: access, copy, correction, deletion (D6)",
        ),
    )
}

CONSENTABLE_PURPOSES = frozenset(p for p, policy in POLICIES.items() if policy.consentable)
# Purposes that only the vault's own data-subject paths may use; an ordinary read naming one
# is refused, so nobody can reach every field by claiming to act for the person.
RESERVED_PURPOSES = frozenset({Purpose.DATA_SUBJECT_REQUEST})

# Why a read may be refused; stable codes, written to the data-access log.
ACCESS_REFUSAL_CODES = (
    "purpose_reserved",
    "field_outside_purpose",
    "recipient_required",
    "recipient_not_applicable",
    "consent_required",
    "consent_withdrawn",
    "consent_not_separate",
    "consent_fields_not_covered",
    "consent_recipient_mismatch",
    "person_not_found",
    "person_erased",
)


def check_purpose(value: object) -> Purpose:
    if not isinstance(value, str) or value not in Purpose.__members__.values():
        raise InvalidInput("purpose", "a purpose is one of: " + ", ".join(p.value for p in Purpose))
    return Purpose(value)


_RECIPIENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/&()-]{0,127}")


def check_recipient(value: object) -> str:
    """A named recipient (an institution's party id or registered name), 1 to 128 characters."""
    if not isinstance(value, str) or _RECIPIENT.fullmatch(value) is None:
        raise InvalidInput(
            "recipient", "a recipient is 1 to 128 letters, digits, spaces and . _ : / & ( ) -"
        )
    return value


# -- consent texts and events ----------------------------------------------------------------


_TEXT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}")
VERSION_MAX = 2**31 - 1
CONSENT_BODY_LENGTH_MAX = 20_000


@dataclass(frozen=True, slots=True)
class ConsentText:
    """One version of a consent text: what the person is shown and agrees to.

    `text_hash` is the SHA-256 of the text's UTF-8 body, so a grant proves which words were
    agreed to even if the body were later lost.
    """

    text_id: str
    version: int
    purposes: tuple[Purpose, ...]
    fields: tuple[Field, ...]
    language: str
    text_hash: bytes
    recipient: str | None = None

    @property
    def is_separate(self) -> bool:
        """Whether the text asks for one purpose alone (a separate consent, D2)."""
        return len(self.purposes) == 1


def check_consent_text(text: ConsentText) -> ConsentText:
    """Refuse a malformed text, and one that bundles a separate-consent purpose with others."""
    if _TEXT_ID.fullmatch(text.text_id) is None:
        raise InvalidInput(
            "text_id", "a consent text id is 1 to 64 lower-case letters, digits and . _ -"
        )
    if type(text.version) is not int or not 1 <= text.version <= VERSION_MAX:
        raise InvalidInput("version", f"a consent text version is 1 to {VERSION_MAX}")
    if _LANGUAGE.fullmatch(text.language) is None:
        raise InvalidInput("language", "a language is a language tag such as zh-CN or en")
    if len(text.text_hash) != 32:
        raise InvalidInput("text_hash", "a text hash is a SHA-256 digest (32 bytes)")
    purposes = set(text.purposes)
    if not purposes or len(purposes) != len(text.purposes):
        raise InvalidInput("purposes", "a consent text names one or more distinct purposes")
    if not purposes <= CONSENTABLE_PURPOSES:
        raise InvalidInput("purposes", "only consentable purposes can be named in a consent text")
    fields = set(text.fields)
    if not fields or len(fields) != len(text.fields):
        raise InvalidInput("fields", "a consent text discloses one or more distinct fields")
    outside = [field for field in fields if not any(field in POLICIES[p].scope for p in purposes)]
    if outside:
        raise InvalidInput("fields", "a consent text lists a field none of its purposes may use")
    if len(purposes) > 1:
        separate = sorted(p.value for p in purposes if POLICIES[p].separate_consent)
        if separate or fields & SENSITIVE_FIELDS:
            raise ConsentTextBundled(
                "purposes that need separate consent ("
                + (", ".join(separate) or "sensitive fields")
                + ") must each have a text of their own (PIPL Arts. 23, 29, 39; D2, D3)"
            )
    needs_recipient = any(POLICIES[p].needs_recipient for p in purposes)
    if needs_recipient and text.recipient is None:
        raise InvalidInput("recipient", "a sharing or cross-border text names its recipient")
    if not needs_recipient and text.recipient is not None:
        raise InvalidInput("recipient", "only sharing and cross-border texts name a recipient")
    if text.recipient is not None:
        check_recipient(text.recipient)
    return text


class ConsentEventKind(StrEnum):
    GRANT = "grant"
    WITHDRAW = "withdraw"


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """A grant of one text version, or a withdrawal of a text (all its versions).

    `seq` orders events recorded at the same nanosecond (it is the audit-chain sequence).
    """

    request_id: str
    party_id: str
    kind: ConsentEventKind
    text_id: str
    version: int | None
    at: int
    seq: int


@dataclass(frozen=True, slots=True)
class LiveConsent:
    text: ConsentText
    granted_at: int
    request_id: str


def live_consents(
    events: Iterable[ConsentEvent],
    texts: Mapping[tuple[str, int], ConsentText],
    at: int,
) -> list[LiveConsent]:
    """The consents live at `at`, latest grant first; one per text id (its latest version)."""
    live: dict[str, LiveConsent] = {}
    for event in sorted(events, key=lambda e: (e.at, e.seq)):
        if event.at > at:
            break
        if event.kind is ConsentEventKind.WITHDRAW:
            live.pop(event.text_id, None)
            continue
        text = None if event.version is None else texts.get((event.text_id, event.version))
        if text is not None:
            live[event.text_id] = LiveConsent(text, event.at, event.request_id)
    return sorted(live.values(), key=lambda c: c.granted_at, reverse=True)


def _was_withdrawn(
    events: Iterable[ConsentEvent],
    purpose: Purpose,
    texts: Mapping[tuple[str, int], ConsentText],
    at: int,
) -> bool:
    granted: set[str] = set()
    withdrawn = False
    for event in sorted(events, key=lambda e: (e.at, e.seq)):
        if event.at > at:
            break
        if event.kind is ConsentEventKind.GRANT and event.version is not None:
            text = texts.get((event.text_id, event.version))
            if text is not None and purpose in text.purposes:
                granted.add(event.text_id)
        elif event.text_id in granted:
            withdrawn = True
    return withdrawn


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """Whether a read is lawful, on which basis, or why not (a stable refusal code)."""

    allowed: bool
    basis: Basis | None
    refusal: str | None
    consent_text_id: str | None
    consent_version: int | None
    citation: str

    @staticmethod
    def refuse(code: str, citation: str) -> AccessDecision:
        if code not in ACCESS_REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        return AccessDecision(False, None, code, None, None, citation)


def decide_access(
    purpose: Purpose,
    fields: Collection[Field],
    at: int,
    events: Sequence[ConsentEvent],
    texts: Mapping[tuple[str, int], ConsentText],
    recipient: str | None = None,
) -> AccessDecision:
    """Decide whether reading `fields` for `purpose` at `at` (ns) is lawful; see the module notes.

    `events` are the person's consent events (in any order) and `texts` the consent texts they
    name. The checks run from the purpose outward: a reserved purpose, fields outside the
    purpose's scope, a missing or superfluous recipient; then a basis other than consent; then
    consent, with the most specific reason when no live consent will do.
    """
    policy = POLICIES[purpose]
    if purpose in RESERVED_PURPOSES:
        return AccessDecision.refuse("purpose_reserved", policy.citation)
    wanted = frozenset(fields)
    if not wanted <= policy.scope:
        return AccessDecision.refuse("field_outside_purpose", "PIPL Art. 6: minimum necessary")
    if policy.needs_recipient and recipient is None:
        return AccessDecision.refuse("recipient_required", policy.citation)
    if not policy.needs_recipient and recipient is not None:
        return AccessDecision.refuse("recipient_not_applicable", policy.citation)
    if policy.other_basis is not None and wanted <= policy.other_basis_fields:
        return AccessDecision(True, policy.other_basis, None, None, None, policy.citation)
    if not policy.consentable:
        return AccessDecision.refuse("consent_required", policy.citation)
    candidates = [c for c in live_consents(events, texts, at) if purpose in c.text.purposes]
    if not candidates:
        code = (
            "consent_withdrawn"
            if _was_withdrawn(events, purpose, texts, at)
            else "consent_required"
        )
        return AccessDecision.refuse(code, policy.citation)
    separate_needed = policy.separate_consent or bool(wanted & SENSITIVE_FIELDS)
    if separate_needed:
        candidates = [c for c in candidates if c.text.is_separate]
        if not candidates:
            return AccessDecision.refuse(
                "consent_not_separate", "PIPL Arts. 23, 29, 39: separate consent (D2, D3)"
            )
    candidates = [c for c in candidates if wanted <= frozenset(c.text.fields)]
    if not candidates:
        return AccessDecision.refuse("consent_fields_not_covered", policy.citation)
    if policy.needs_recipient:
        candidates = [c for c in candidates if c.text.recipient == recipient]
        if not candidates:
            return AccessDecision.refuse("consent_recipient_mismatch", policy.citation)
    chosen = candidates[0].text
    return AccessDecision(
        True, Basis.CONSENT, None, chosen.text_id, chosen.version, policy.citation
    )


# -- services --------------------------------------------------------------------------------

# Which purposes each service needs. Nothing needs marketing personalisation except the
# personalised offers themselves, so declining it blocks nothing else (D1, D4, D5).
SERVICE_NEEDS: Mapping[str, tuple[Purpose, ...]] = {
    "payment_account": (Purpose.PAYMENT_SERVICE, Purpose.IDENTITY_VERIFICATION),
    "credit_line": (
        Purpose.IDENTITY_VERIFICATION,
        Purpose.CREDIT_ASSESSMENT,
        Purpose.CREDIT_BUREAU_REPORTING,
    ),
    # A merchant's working-capital loan scored on its own acquiring cash flows (lending's
    # source `acquiring_cash_flows`): the credit-assessment consent, given separately (C1, D3).
    "sme_working_capital": (Purpose.IDENTITY_VERIFICATION, Purpose.CREDIT_ASSESSMENT),
    "cross_border_payment": (
        Purpose.PAYMENT_SERVICE,
        Purpose.IDENTITY_VERIFICATION,
        Purpose.CROSS_BORDER_TRANSFER,
    ),
    "personalised_offers": (Purpose.MARKETING_PERSONALISATION,),
}


@dataclass(frozen=True, slots=True)
class ServiceCheck:
    service: str
    available: bool
    missing: tuple[Purpose, ...]


def service_check(
    service: str,
    events: Sequence[ConsentEvent],
    texts: Mapping[tuple[str, int], ConsentText],
    at: int,
) -> ServiceCheck:
    """Whether the person's consents let `service` run at `at`, and which consents are missing.

    Only the purposes the service needs are looked at; a purpose with a basis other than consent
    never needs one.
    """
    needs = SERVICE_NEEDS.get(service)
    if needs is None:
        raise InvalidInput("service", "a service is one of: " + ", ".join(sorted(SERVICE_NEEDS)))
    live = live_consents(events, texts, at)
    missing = tuple(
        purpose
        for purpose in needs
        if POLICIES[purpose].other_basis is None
        and not any(purpose in consent.text.purposes for consent in live)
    )
    return ServiceCheck(service, not missing, missing)


# -- retention and data-subject requests -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long a record must be kept after the business relationship ends, and why."""

    name: str
    years: int
    effective_from: date
    citation: str


# Customer identity data and transaction records: at least 10 years from the end of the business
# relationship under the revised AML Law (A4, in force 2025-01-01) and the CDD and Record-Keeping
# Measures (A5, in force 2026-01-01). Before 2025 the 2007 rules asked for 5 years (A5's note).
_AML_RETENTION = (
    RetentionRule(
        "aml_customer_identity_records",
        5,
        date(2007, 8, 1),
        "PBoC 2007 customer identification and record-keeping rules: 5 years (superseded; A5)",
    ),
    RetentionRule(
        "aml_customer_identity_records",
        10,
        date(2025, 1, 1),
        "AML Law (2024 revision, in force 2025-01-01): customer identity data and transaction "
        "records kept at least 10 years (A4); PBoC/NFRA/CSRC CDD and Record-Keeping Measures "
        "(in force 2026-01-01): at least 10 years (A5)",
    ),
)


def aml_retention_rule(on: date) -> RetentionRule:
    """The AML record-retention rule in force on `on` (the day the relationship ended)."""
    rule = _AML_RETENTION[0]
    for candidate in _AML_RETENTION:
        if candidate.effective_from <= on:
            rule = candidate
    return rule


class DataSubjectRequestKind(StrEnum):
    EXPLANATION = "explanation"
    HUMAN_REVIEW = "human_review"


class DataSubjectRequestState(StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    ANSWERED = "answered"


_TRANSITIONS = frozenset(
    {
        (DataSubjectRequestState.OPEN, DataSubjectRequestState.IN_REVIEW),
        (DataSubjectRequestState.OPEN, DataSubjectRequestState.ANSWERED),
        (DataSubjectRequestState.IN_REVIEW, DataSubjectRequestState.ANSWERED),
    }
)

# The platform answers data-subject requests within 30 days: PIPL sets no deadline, industry
# practice under GB/T 35273-2020 is about 15 working days or 30 days (D6, a standard rather than
# law), and GDPR's one month is the comparator (G5).
DATA_SUBJECT_RESPONSE_DAYS = 30


def transition_allowed(current: DataSubjectRequestState, new: DataSubjectRequestState) -> bool:
    """open -> in_review -> answered, or open -> answered; answered is final."""
    return (current, new) in _TRANSITIONS


def respond_by(received_on: date) -> date:
    return received_on + timedelta(days=DATA_SUBJECT_RESPONSE_DAYS)
