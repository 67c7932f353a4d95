"""SQL for parties, verifications, payment accounts, card bindings and the blocklist, on SQLite
and PostgreSQL: the only module that knows the tables of migration 0003.

Statements are written once with `?` placeholders; on PostgreSQL each `?` becomes `%s` (no
statement here contains a literal question mark). Every value is bound; only the fixed column
lists below are formatted into SQL. Dates are stored as ISO text on both backends, so they
compare as dates and read back the same everywhere.

The store runs on the connection of a unit of work (`LedgerWrite`) or of a read
(`Ledger.read()`); it never begins, commits or rolls back a transaction itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from tianping.db.statements import QmarkStatements
from tianping.identity.parties import (
    AccountClass,
    BlocklistEntry,
    BlocklistReason,
    CardBinding,
    Channel,
    InstitutionKind,
    Party,
    PartyKind,
    PaymentAccount,
    Verification,
)

__all__ = ["PartyRow", "PartyStore"]

_PARTY_COLUMNS = (
    "party_id, kind, institution_kind, registration_number, account_class, registered_at, "
    "minor_until, guardian_party_id, guardian_consent_reference"
)
_VERIFICATION_COLUMNS = "verification_id, channel, source, verified_at"
_ACCOUNT_COLUMNS = (
    "account_id, party_id, institution_id, account_class, opened_on, opened_at, "
    "guardian_consent_reference, requested_class"
)
_BINDING_COLUMNS = "binding_id, party_id, fingerprint, last_four, bound_at"
_BLOCKLIST_COLUMNS = "party_id, case_reference, listed_on, reason"


class PartyRow:
    """A party's own row (without its verifications) and the request that created it."""

    __slots__ = ("party", "request_digest", "request_id")

    def __init__(self, party: Party, request_id: str, request_digest: bytes) -> None:
        self.party = party
        self.request_id = request_id
        self.request_digest = request_digest


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


def _class(text: str | None) -> AccountClass | None:
    return AccountClass[text] if text is not None else None


def _party(row: Sequence[Any], verifications: tuple[Verification, ...] = ()) -> Party:
    return Party(
        party_id=row[0],
        kind=PartyKind(row[1]),
        institution_kind=InstitutionKind(row[2]) if row[2] is not None else None,
        registration_number=row[3],
        account_class=_class(row[4]),
        registered_at=row[5],
        minor_until=_date(row[6]),
        guardian_party_id=row[7],
        guardian_consent_reference=row[8],
        verifications=verifications,
    )


def _account(row: Sequence[Any]) -> PaymentAccount:
    return PaymentAccount(
        account_id=row[0],
        party_id=row[1],
        institution_id=row[2],
        account_class=AccountClass[row[3]],
        opened_on=date.fromisoformat(row[4]),
        opened_at=row[5],
    )


class PartyStore(QmarkStatements):
    """Statements over one open connection of either backend."""

    # -- parties ----------------------------------------------------------------------------

    def party_row(self, party_id: str) -> PartyRow | None:
        row = self._execute(
            f"SELECT {_PARTY_COLUMNS}, request_id, request_digest FROM identity_parties "  # noqa: S608 - fixed column list
            "WHERE party_id = ?",
            (party_id,),
        ).fetchone()
        return PartyRow(_party(row), row[9], bytes(row[10])) if row is not None else None

    def party_row_by_request(self, request_id: str) -> PartyRow | None:
        row = self._execute(
            f"SELECT {_PARTY_COLUMNS}, request_id, request_digest FROM identity_parties "  # noqa: S608 - fixed column list
            "WHERE request_id = ?",
            (request_id,),
        ).fetchone()
        return PartyRow(_party(row), row[9], bytes(row[10])) if row is not None else None

    def party(self, party_id: str, verifications_max: int) -> Party | None:
        """A party with its verifications (at most `verifications_max`, oldest first)."""
        row = self._execute(
            f"SELECT {_PARTY_COLUMNS} FROM identity_parties WHERE party_id = ?",  # noqa: S608 - fixed column list
            (party_id,),
        ).fetchone()
        if row is None:
            return None
        return _party(row, tuple(self.verifications(party_id, verifications_max)))

    def merchant_with_registration_number(self, registration_number: str) -> str | None:
        row = self._execute(
            "SELECT party_id FROM identity_parties WHERE registration_number = ?",
            (registration_number,),
        ).fetchone()
        return row[0] if row is not None else None

    def insert_party(
        self,
        party: Party,
        request_id: str,
        request_digest: bytes,
        seq: int,
    ) -> None:
        self._execute(
            "INSERT INTO identity_parties (party_id, request_id, request_digest, kind, "
            "institution_kind, registration_number, account_class, minor_until, "
            "guardian_party_id, guardian_consent_reference, registered_at, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                party.party_id,
                request_id,
                request_digest,
                party.kind.value,
                party.institution_kind.value if party.institution_kind else None,
                party.registration_number,
                party.account_class.label if party.account_class else None,
                party.minor_until.isoformat() if party.minor_until else None,
                party.guardian_party_id,
                party.guardian_consent_reference,
                party.registered_at,
                seq,
            ),
        )

    def set_party_class(self, party_id: str, account_class: AccountClass | None) -> None:
        self._execute(
            "UPDATE identity_parties SET account_class = ? WHERE party_id = ?",
            (account_class.label if account_class else None, party_id),
        )

    # -- verifications ----------------------------------------------------------------------

    def verifications(self, party_id: str, limit: int) -> list[Verification]:
        rows = self._execute(
            f"SELECT {_VERIFICATION_COLUMNS} FROM identity_verifications "  # noqa: S608 - fixed column list
            "WHERE party_id = ? ORDER BY recorded_at, verification_id LIMIT ?",
            (party_id, limit),
        ).fetchall()
        return [Verification(row[0], Channel(row[1]), row[2], row[3]) for row in rows]

    def verification(self, verification_id: str) -> tuple[str, Verification] | None:
        """A verification by id, with the party it belongs to."""
        row = self._execute(
            f"SELECT {_VERIFICATION_COLUMNS}, party_id FROM identity_verifications "  # noqa: S608 - fixed column list
            "WHERE verification_id = ?",
            (verification_id,),
        ).fetchone()
        if row is None:
            return None
        return row[4], Verification(row[0], Channel(row[1]), row[2], row[3])

    def insert_verification(
        self, party_id: str, verification: Verification, recorded_at: int, seq: int
    ) -> None:
        self._execute(
            "INSERT INTO identity_verifications (verification_id, party_id, channel, source, "
            "verified_at, recorded_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                verification.verification_id,
                party_id,
                verification.channel.value,
                verification.source,
                verification.verified_at,
                recorded_at,
                seq,
            ),
        )

    # -- payment accounts -------------------------------------------------------------------

    def account(self, account_id: str) -> PaymentAccount | None:
        row = self._execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM identity_payment_accounts WHERE account_id = ?",  # noqa: S608 - fixed column list
            (account_id,),
        ).fetchone()
        return _account(row) if row is not None else None

    def account_by_request(
        self, request_id: str
    ) -> tuple[PaymentAccount, str | None, AccountClass | None] | None:
        """The account a request opened, with the guardian consent reference and the class the
        request gave (None when it asked for the person's class)."""
        row = self._execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM identity_payment_accounts WHERE request_id = ?",  # noqa: S608 - fixed column list
            (request_id,),
        ).fetchone()
        return (_account(row), row[6], _class(row[7])) if row is not None else None

    def accounts_of(self, party_id: str, limit: int) -> list[PaymentAccount]:
        rows = self._execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM identity_payment_accounts "  # noqa: S608 - fixed column list
            "WHERE party_id = ? ORDER BY opened_at, account_id LIMIT ?",
            (party_id, limit),
        ).fetchall()
        return [_account(row) for row in rows]

    def count_accounts_of(self, party_id: str) -> int:
        row = self._execute(
            "SELECT COUNT(*) FROM identity_payment_accounts WHERE party_id = ?", (party_id,)
        ).fetchone()
        return int(row[0])

    def class_iii_account_at(self, party_id: str, institution_id: str) -> str | None:
        """The id of the person's Class III account at the institution, if there is one."""
        row = self._execute(
            "SELECT account_id FROM identity_payment_accounts "
            "WHERE party_id = ? AND institution_id = ? AND account_class = 'III'",
            (party_id, institution_id),
        ).fetchone()
        return row[0] if row is not None else None

    def insert_account(
        self,
        account: PaymentAccount,
        request_id: str,
        requested_class: AccountClass | None,
        guardian_consent_reference: str | None,
        seq: int,
    ) -> None:
        self._execute(
            "INSERT INTO identity_payment_accounts (account_id, request_id, party_id, "
            "institution_id, account_class, requested_class, guardian_consent_reference, "
            "opened_on, opened_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account.account_id,
                request_id,
                account.party_id,
                account.institution_id,
                account.account_class.label,
                requested_class.label if requested_class else None,
                guardian_consent_reference,
                account.opened_on.isoformat(),
                account.opened_at,
                seq,
            ),
        )

    def set_account_class(self, account_id: str, account_class: AccountClass) -> None:
        self._execute(
            "UPDATE identity_payment_accounts SET account_class = ? WHERE account_id = ?",
            (account_class.label, account_id),
        )

    # -- card bindings ----------------------------------------------------------------------

    def binding(self, binding_id: str) -> CardBinding | None:
        row = self._execute(
            f"SELECT {_BINDING_COLUMNS} FROM identity_card_bindings WHERE binding_id = ?",  # noqa: S608 - fixed column list
            (binding_id,),
        ).fetchone()
        return CardBinding(*row) if row is not None else None

    def binding_by_fingerprint(self, fingerprint: str) -> CardBinding | None:
        row = self._execute(
            f"SELECT {_BINDING_COLUMNS} FROM identity_card_bindings WHERE fingerprint = ?",  # noqa: S608 - fixed column list
            (fingerprint,),
        ).fetchone()
        return CardBinding(*row) if row is not None else None

    def bindings_of(self, party_id: str, limit: int) -> list[CardBinding]:
        rows = self._execute(
            f"SELECT {_BINDING_COLUMNS} FROM identity_card_bindings "  # noqa: S608 - fixed column list
            "WHERE party_id = ? ORDER BY bound_at, binding_id LIMIT ?",
            (party_id, limit),
        ).fetchall()
        return [CardBinding(*row) for row in rows]

    def count_bindings_of(self, party_id: str) -> int:
        row = self._execute(
            "SELECT COUNT(*) FROM identity_card_bindings WHERE party_id = ?", (party_id,)
        ).fetchone()
        return int(row[0])

    def insert_binding(self, binding: CardBinding, seq: int) -> None:
        self._execute(
            "INSERT INTO identity_card_bindings (binding_id, party_id, fingerprint, last_four, "
            "bound_at, seq) VALUES (?, ?, ?, ?, ?, ?)",
            (
                binding.binding_id,
                binding.party_id,
                binding.fingerprint,
                binding.last_four,
                binding.bound_at,
                seq,
            ),
        )

    # -- the blocklist ----------------------------------------------------------------------

    def blocklist_entries(self, party_id: str, limit: int) -> list[BlocklistEntry]:
        rows = self._execute(
            f"SELECT {_BLOCKLIST_COLUMNS} FROM identity_blocklist "  # noqa: S608 - fixed column list
            "WHERE party_id = ? ORDER BY listed_on, case_reference LIMIT ?",
            (party_id, limit),
        ).fetchall()
        return [
            BlocklistEntry(row[0], row[1], date.fromisoformat(row[2]), BlocklistReason(row[3]))
            for row in rows
        ]

    def known_party_ids(self, party_ids: Sequence[str]) -> set[str]:
        """Which of `party_ids` are registered parties (one statement for the lot)."""
        if not party_ids:
            return set()
        marks = ", ".join("?" * len(party_ids))
        rows = self._execute(
            f"SELECT party_id FROM identity_parties WHERE party_id IN ({marks})",  # noqa: S608 - placeholders only
            tuple(party_ids),
        ).fetchall()
        return {row[0] for row in rows}

    def blocklist_entries_of(self, party_ids: Sequence[str]) -> dict[str, list[BlocklistEntry]]:
        """The blocklist entries of many parties at once, oldest first per party."""
        if not party_ids:
            return {}
        marks = ", ".join("?" * len(party_ids))
        rows = self._execute(
            f"SELECT {_BLOCKLIST_COLUMNS} FROM identity_blocklist "  # noqa: S608 - fixed column list
            f"WHERE party_id IN ({marks}) ORDER BY party_id, listed_on, case_reference",
            tuple(party_ids),
        ).fetchall()
        entries: dict[str, list[BlocklistEntry]] = {}
        for row in rows:
            entries.setdefault(row[0], []).append(
                BlocklistEntry(row[0], row[1], date.fromisoformat(row[2]), BlocklistReason(row[3]))
            )
        return entries

    def insert_blocklist_entry(self, entry: BlocklistEntry, recorded_at: int, seq: int) -> None:
        self._execute(
            "INSERT INTO identity_blocklist (party_id, case_reference, listed_on, reason, "
            "recorded_at, seq) VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.party_id,
                entry.case_reference,
                entry.listed_on.isoformat(),
                entry.reason.value,
                recorded_at,
                seq,
            ),
        )
