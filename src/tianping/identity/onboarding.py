"""Flows that join parties and the personal-data vault: binding a card in the person's own name.

`party_service.bind_bank_card` never sees a card number or a name: it takes a keyed fingerprint
and the outcome of the same-name comparison (P4). This module makes that comparison where it
belongs, next to the vault: it reads the person's name for the payment service (a read that is
lawful by contract necessity, and written to the data-access log like every other read),
compares it with the name the card's issuer reports, and hands only the fingerprint, the last
four digits and the yes/no outcome to the party service. Neither the name nor the number is
logged or stored here.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from tianping.identity import party_service
from tianping.identity.errors import InvalidInput
from tianping.identity.parties import CardBinding
from tianping.identity.party_service import FingerprintKey
from tianping.identity.privacy_service import PrivacyService

__all__ = ["CARD_BINDING_ACCESSOR", "bind_card_in_own_name", "same_name"]

# Who reads the person's name for the comparison, as the data-access log records it.
CARD_BINDING_ACCESSOR: Final = "identity:card-binding"
_CARD_BINDING_REASON: Final = "PBoC P4 same-name bank-card binding check"
_HOLDER_NAME_LENGTH_MAX: Final = 128


def same_name(recorded: str, reported: str) -> bool:
    """Whether two renderings of a name are the same name.

    Compatibility normalisation (NFKC) makes full-width and half-width forms equal, case is
    folded, and runs of white space count as one space: issuers differ in exactly these ways,
    and in no way that would let a different person's name through.
    """

    def canonical(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

    return canonical(recorded) == canonical(reported) != ""


def bind_card_in_own_name(
    privacy: PrivacyService,
    key: FingerprintKey,
    binding_id: str,
    party_id: str,
    card_number: str,
    holder_name: str,
) -> CardBinding:
    """Bind the card to the person if its holder (as the issuer reports it) is the person (P4).

    Refused: a person with no name in the vault (`identity_input_invalid`), a holder name that
    differs (`card_holder_mismatch`), and everything `party_service.bind_bank_card` refuses.
    """
    if not isinstance(holder_name, str) or not 0 < len(holder_name) <= _HOLDER_NAME_LENGTH_MAX:
        raise InvalidInput(
            "holder_name", f"holder_name is 1 to {_HOLDER_NAME_LENGTH_MAX} characters"
        )
    fingerprint = key.card(card_number)
    recorded = privacy.read_personal_data(
        party_id,
        ["name"],
        "payment_service",
        accessor=CARD_BINDING_ACCESSOR,
        reason=_CARD_BINDING_REASON,
    ).get("name")
    if recorded is None:
        raise InvalidInput("name", "the person has no name on record to compare with the card")
    return party_service.bind_bank_card(
        privacy.ledger,
        binding_id,
        party_id,
        card_holder_name_matches=same_name(recorded, holder_name),
        card_fingerprint=fingerprint.fingerprint,
        card_last_four=fingerprint.last_four,
        clock=privacy.clock,
    )
