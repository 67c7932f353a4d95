"""Errors of the identity context: one root with a stable `code`, and the parties' refusals.

    IdentityError                        root of every identity error; carries a stable `code`
    ├── InvalidInput                     a field is malformed or out of range (`field` names it)
    ├── RequestConflict                  a request id reused with different fields
    ├── PartyNotFound                    no party has this id
    ├── PartyKindNotAllowed              the party's kind cannot do this (a bank opening a wallet)
    ├── DateOfBirthInvalid               a date of birth in the future or over 130 years ago
    ├── GuardianConsentRequired          a person under 14 without a guardian's consent (D3)
    ├── GuardianInvalid                  the named guardian cannot act as one
    ├── RegistrationNumberTaken          a merchant registration number already registered
    ├── AccountClassNotVerified          the verifications do not support the class asked (P1)
    ├── ClassIIILimitReached             a second Class III account at one institution (P12)
    ├── NewAccountsBarred                a blocklisted person within the 3-year bar (P12)
    ├── PaymentServicesSuspended         a blocklisted person within the 5-year suspension (P12)
    ├── PaymentAccountNotFound           no payment account has this id
    ├── CardHolderMismatch               the card's holder is not the person (P4)
    ├── CardAlreadyBound                 the card is already bound
    ├── LimitReached                     a per-party list is full
    └── FingerprintKeyUnavailable        the card-fingerprint key is missing or malformed

Other identity modules (authentication, the vault, consent) subclass `IdentityError` for their
own refusals. Messages never contain personal data (names, ID or card numbers, dates of birth):
they reach logs and HTTP responses. The edges map each `code` to a response in one place.
"""

from __future__ import annotations

__all__ = [
    "AccountClassNotVerified",
    "CardAlreadyBound",
    "CardHolderMismatch",
    "ClassIIILimitReached",
    "DateOfBirthInvalid",
    "FingerprintKeyUnavailable",
    "GuardianConsentRequired",
    "GuardianInvalid",
    "IdentityError",
    "InvalidInput",
    "LimitReached",
    "NewAccountsBarred",
    "PartyKindNotAllowed",
    "PartyNotFound",
    "PaymentAccountNotFound",
    "PaymentServicesSuspended",
    "RegistrationNumberTaken",
    "RequestConflict",
]


class IdentityError(Exception):
    """Root of the identity context's errors."""

    code = "identity_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(IdentityError):
    """A field of a request is malformed or out of range; `field` names it, never its value."""

    code = "identity_input_invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RequestConflict(IdentityError):
    """A client request id already used for a request with different fields."""

    code = "request_conflict"


class PartyNotFound(IdentityError):
    code = "party_not_found"


class PartyKindNotAllowed(IdentityError):
    """The party exists but its kind cannot take part in this operation."""

    code = "party_kind_not_allowed"


class DateOfBirthInvalid(IdentityError):
    """A date of birth after the event date or more than 130 years before it."""

    code = "date_of_birth_invalid"


class GuardianConsentRequired(IdentityError):
    """A person under 14 on the event date needs a guardian's consent reference (PIPL Art. 31)."""

    code = "guardian_consent_required"


class GuardianInvalid(IdentityError):
    """The named guardian is not a registered person who is 14 or over, or is the child."""

    code = "guardian_invalid"


class RegistrationNumberTaken(IdentityError):
    """Another merchant is already registered with this business registration number."""

    code = "registration_number_taken"


class AccountClassNotVerified(IdentityError):
    """The person's verifications do not support the account class asked for (P1)."""

    code = "account_class_not_verified"


class ClassIIILimitReached(IdentityError):
    """The person already holds a Class III account at this institution (P12)."""

    code = "class_iii_limit_reached"


class NewAccountsBarred(IdentityError):
    """The person is blocklisted and within the period barring new accounts (P12)."""

    code = "new_accounts_barred"


class PaymentServicesSuspended(IdentityError):
    """The party is blocklisted and its payment services are suspended (P12)."""

    code = "payment_services_suspended"


class PaymentAccountNotFound(IdentityError):
    code = "payment_account_not_found"


class CardHolderMismatch(IdentityError):
    """The bank card is not held in the person's own name (P4 same-name binding)."""

    code = "card_holder_mismatch"


class CardAlreadyBound(IdentityError):
    """The bank card is already bound, to this party or another."""

    code = "card_already_bound"


class LimitReached(IdentityError):
    """A party's list of verifications, accounts, cards or listings is full."""

    code = "identity_limit_reached"


class FingerprintKeyUnavailable(IdentityError):
    """The key for card fingerprints and request digests is not configured or is malformed."""

    code = "fingerprint_key_unavailable"
