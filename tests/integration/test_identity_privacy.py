"""Consent, the personal-data vault, erasure and data-subject rights on SQLite and PostgreSQL.

Refused reads are logged: every read that names a valid party, a known purpose and known fields
is written to the data-access log with its outcome, and a refusal carries its code (see the
module docstring of `tianping.identity.privacy_service`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger_support import ManualClock, make_ledger
from tianping.identity.consent import (
    AccessRefused,
    ConsentNotLive,
    ConsentTextConflict,
    DataSubjectTransitionInvalid,
    PersonalFieldProhibited,
    PersonErased,
    PersonNotFound,
)
from tianping.identity.errors import IdentityError, InvalidInput, RequestConflict
from tianping.identity.ids import new_party_id
from tianping.identity.privacy_service import PrivacyService
from tianping.identity.privacy_store import PrivacyStore
from tianping.identity.vault import (
    DecryptionFailed,
    MasterKey,
    MasterKeyUnavailable,
    Scope,
    Sealed,
    Vault,
    unseal,
)
from tianping.ledger.service import Ledger

SECOND = 1_000_000_000
DAY = 86_400 * SECOND

ALICE_DATA = {
    "name": "Wang Fang",
    "id_number": "11010119900307123X",
    "phone": "+86 138 0013 8000",
    "address": "88 Century Avenue, Pudong, Shanghai",
    "date_of_birth": "1990-03-07",
    "income": "186000.00",
    "bank_card_number": "6222021234567890123",
    "email": "wang.fang@example.cn",
}
BOB_DATA = {
    "name": "Zhao Lei",
    "id_number": "44030519851122567Y",
    "phone": "+86 139 2233 4455",
    "address": "12 Binhai Road, Shenzhen",
    "date_of_birth": "1985-11-22",
    "income": "97000.00",
    "bank_card_number": "6217003810026894512",
    "email": "zhao.lei@example.cn",
}
STATEMENT = "My salary rose in March; the assessment used last year's payslip of Wang Fang."
ANSWER = "Reviewed by a person: the limit was recomputed with the new payslip of Wang Fang."


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def privacy(ledger: Ledger, clock: ManualClock, master: MasterKey) -> PrivacyService:
    return PrivacyService(ledger, Vault(master), clock)


def new_person(clock: ManualClock) -> str:
    return new_party_id(clock.now, os.urandom(10))


def publish_texts(privacy: PrivacyService) -> None:
    privacy.publish_consent_text(
        "marketing",
        1,
        ["marketing_personalisation"],
        ["email", "name"],
        "zh-CN",
        "我同意天平使用我的姓名和电子邮件向我推荐个性化优惠。",
    )
    privacy.publish_consent_text(
        "credit",
        1,
        ["credit_assessment"],
        ["income", "name", "id_number"],
        "zh-CN",
        "我单独同意天平为评估信用使用我的收入、姓名和身份证号。",
    )
    privacy.publish_consent_text(
        "share-acme",
        1,
        ["third_party_sharing"],
        ["name", "phone"],
        "en",
        "I separately agree that Tianping gives my name and phone to Acme Insurance.",
        recipient="Acme Insurance",
    )


def query(ledger: Ledger, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with ledger.read() as store:
        if store.backend != "sqlite":
            sql = sql.replace("?", "%s")
        rows = store.connection.execute(sql, parameters).fetchall()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def access_log(ledger: Ledger, party: str) -> list[tuple[Any, ...]]:
    return query(
        ledger,
        "SELECT accessor, fields, purpose, outcome, basis, refusal, consent_text_id, reason "
        "FROM data_access_log WHERE party_id = ? ORDER BY seq",
        (party,),
    )


def personal_values(*people: dict[str, str]) -> list[str]:
    """Every personal value used, plus the forms the vault normalises them to."""
    values = [value for person in people for value in person.values()]
    values += [value.replace(" ", "") for value in values if " " in value]
    return [*values, STATEMENT, ANSWER]


def all_rows_text(ledger: Ledger) -> str:
    """Every row of every table (vault ciphertexts included) rendered as text and bytes."""
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
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            ]
        parts: list[str] = []
        for table in tables:
            for row in store.connection.execute(f'SELECT * FROM "{table}"').fetchall():  # noqa: S608 - table names from the catalogue
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("utf-8", "replace"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


# -- put, read, consent ------------------------------------------------------------------------


def test_put_and_read_with_consent_writes_an_access_log_entry(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """A consented read returns the values and logs who, whose, which fields, purpose and basis."""
    alice = new_person(clock)
    publish_texts(privacy)
    written = privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    assert written.fields == tuple(sorted(ALICE_DATA))
    assert written.key_version == 1 and not written.replayed
    privacy.grant_consent(alice, "marketing", 1, "grant-1")
    clock.advance(1)

    values = privacy.read_personal_data(
        alice, ["email", "name"], "marketing_personalisation", "svc-offers", "campaign:2027-01"
    )

    assert values == {"email": ALICE_DATA["email"], "name": ALICE_DATA["name"]}
    assert access_log(ledger, alice) == [
        (
            "svc-offers",
            "email,name",
            "marketing_personalisation",
            "allowed",
            "consent",
            None,
            "marketing",
            "campaign:2027-01",
        )
    ]
    # Neither the log nor any other row holds a value in the clear; the vault holds ciphertext.
    stored = all_rows_text(ledger)
    assert not [value for value in personal_values(ALICE_DATA) if value in stored]
    assert len(query(ledger, "SELECT * FROM vault_fields WHERE party_id = ?", (alice,))) == 8


def test_contract_necessity_needs_no_consent(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """Payment reads of the card and name are lawful on the contract, with no consent given."""
    alice = new_person(clock)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    values = privacy.read_personal_data(
        alice, ["name", "bank_card_number"], "payment_service", "svc-payments", "payment:42"
    )
    assert values == {"name": "Wang Fang", "bank_card_number": ALICE_DATA["bank_card_number"]}
    assert access_log(ledger, alice)[0][3:5] == ("allowed", "contract_necessity")
    assert privacy.service_available(alice, "payment_account").available
    offers = privacy.service_available(alice, "personalised_offers")
    assert not offers.available and [p.value for p in offers.missing] == [
        "marketing_personalisation"
    ]


def test_read_without_consent_is_refused_and_logged_as_refused(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """A read with no lawful basis raises a stable code and leaves a refused entry in the log."""
    alice = new_person(clock)
    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")

    with pytest.raises(AccessRefused) as caught:
        privacy.read_personal_data(
            alice, ["income"], "credit_assessment", "svc-credit", "application:7"
        )

    assert caught.value.code == "personal_data_access_refused"
    assert caught.value.reason == "consent_required"
    assert ALICE_DATA["income"] not in str(caught.value)
    assert access_log(ledger, alice) == [
        (
            "svc-credit",
            "income",
            "credit_assessment",
            "refused",
            None,
            "consent_required",
            None,
            "application:7",
        )
    ]
    # A malformed request (an unknown purpose) is refused before anything is logged.
    with pytest.raises(InvalidInput):
        privacy.read_personal_data(alice, ["income"], "curiosity", "svc-credit", "x")
    assert len(access_log(ledger, alice)) == 1


def test_withdrawal_takes_effect(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """After a one-call withdrawal the next read is refused; granting again restores it."""
    alice = new_person(clock)
    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    privacy.grant_consent(alice, "credit", 1, "grant-credit")
    read = ("svc-credit", "application:7")
    assert privacy.read_personal_data(alice, ["income"], "credit_assessment", *read) == {
        "income": "186000.00"
    }

    withdrawal = privacy.withdraw_consent(alice, "credit", "withdraw-credit")

    # No clock advance: a read at the same wall-clock instant still sees the withdrawal.
    with pytest.raises(AccessRefused) as caught:
        privacy.read_personal_data(alice, ["income"], "credit_assessment", *read)
    assert caught.value.reason == "consent_withdrawn"
    states = privacy.consents(alice)
    assert [(s.text_id, s.live, s.withdrawn_at) for s in states] == [
        ("credit", False, withdrawal.at)
    ]
    with pytest.raises(ConsentNotLive):
        privacy.withdraw_consent(alice, "credit", "withdraw-again")
    assert privacy.withdraw_consent(alice, "credit", "withdraw-credit") == withdrawal

    privacy.grant_consent(alice, "credit", 1, "grant-credit-2")
    assert privacy.read_personal_data(alice, ["income"], "credit_assessment", *read)
    outcomes = [row[3:6] for row in access_log(ledger, alice)]
    assert outcomes == [
        ("allowed", "consent", None),
        ("refused", None, "consent_withdrawn"),
        ("allowed", "consent", None),
    ]


def test_sharing_needs_the_named_recipient(privacy: PrivacyService, clock: ManualClock) -> None:
    """A sharing consent names its recipient, and a read for another recipient is refused."""
    alice = new_person(clock)
    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    privacy.grant_consent(alice, "share-acme", 1, "grant-share")
    args = ("third_party_sharing", "svc-partners", "policy:99")
    shared = privacy.read_personal_data(alice, ["phone"], *args, recipient="Acme Insurance")
    assert shared == {"phone": ALICE_DATA["phone"]}
    with pytest.raises(AccessRefused) as caught:
        privacy.read_personal_data(alice, ["phone"], *args, recipient="Other Insurance")
    assert caught.value.reason == "consent_recipient_mismatch"


def test_prohibited_fields_are_refused_and_nothing_is_stored(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """A put carrying a prohibited field, however named, stores nothing at all."""
    alice = new_person(clock)
    for name in ("bloodType", "religion", "病史", "genetic_markers", "fingerPrint"):
        with pytest.raises(PersonalFieldProhibited) as caught:
            privacy.put_personal_data(alice, {"name": "Wang Fang", name: "O+"}, "put-病史")
        assert caught.value.code == "personal_field_prohibited"
    assert query(ledger, "SELECT * FROM vault_keys WHERE party_id = ?", (alice,)) == []
    assert query(ledger, "SELECT * FROM privacy_requests WHERE party_id = ?", (alice,)) == []


def test_writes_are_idempotent_by_request_id(privacy: PrivacyService, clock: ManualClock) -> None:
    """Replaying a request id returns the first outcome; reusing it for other data conflicts."""
    alice = new_person(clock)
    publish_texts(privacy)
    first = privacy.put_personal_data(alice, {"email": ALICE_DATA["email"]}, "put-1")
    again = privacy.put_personal_data(alice, {"email": ALICE_DATA["email"]}, "put-1")
    assert again.replayed and again.fields == first.fields
    with pytest.raises(RequestConflict):
        privacy.put_personal_data(alice, {"email": "other@example.cn"}, "put-1")
    grant = privacy.grant_consent(alice, "marketing", 1, "grant-1")
    assert privacy.grant_consent(alice, "marketing", 1, "grant-1") == grant
    with pytest.raises(RequestConflict):
        privacy.grant_consent(alice, "credit", 1, "grant-1")
    with pytest.raises(ConsentTextConflict):
        privacy.publish_consent_text(
            "marketing", 1, ["marketing_personalisation"], ["email"], "zh-CN", "changed"
        )


def test_correction_replaces_and_removes_values(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """A correction re-encrypts the new value and can delete a field; nobody else is touched."""
    alice = new_person(clock)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    with pytest.raises(PersonNotFound):
        privacy.correct_personal_data(new_person(clock), {"email": "x@example.cn"}, "c-0")
    result = privacy.correct_personal_data(
        alice, {"phone": "+86 137 0000 1111", "email": None}, "correct-1"
    )
    assert (result.fields, result.removed) == (("phone",), ("email",))
    export = privacy.export_personal_data(alice)
    assert export["personal_data"]["phone"] == "+86 137 0000 1111"
    assert "email" not in export["personal_data"]


def test_append_only_privacy_tables_refuse_edits(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """The database refuses to change or delete access-log and consent rows."""
    alice = new_person(clock)
    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    privacy.grant_consent(alice, "marketing", 1, "grant-1")
    privacy.read_personal_data(alice, ["name"], "payment_service", "svc", "payment:1")
    for statement in (
        "UPDATE data_access_log SET purpose = 'payment_service'",
        "DELETE FROM data_access_log",
        "DELETE FROM consent_events",
        "UPDATE consent_texts SET body = 'edited'",
    ):
        with pytest.raises((sqlite3.DatabaseError, psycopg.Error)), ledger.write() as uow:
            uow.connection.execute(statement)
    assert len(access_log(ledger, alice)) == 1


# -- erasure -----------------------------------------------------------------------------------


def _copy_sqlite_file(ledger: Ledger, target: Path) -> Path:
    source = ledger.pool.url.sqlite_path
    assert source is not None
    with sqlite3.connect(source) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def copies(clock: ManualClock) -> Iterator[list[Ledger]]:
    opened: list[Ledger] = []
    yield opened
    for copy in opened:
        copy.pool.close()


def test_erasure_makes_reads_fail_everywhere_and_keeps_what_the_law_requires(
    privacy: PrivacyService,
    ledger: Ledger,
    clock: ManualClock,
    master: MasterKey,
    tmp_path: Path,
    copies: list[Ledger],
) -> None:
    """After erasure the person's data is unreadable in the database, in rows and files copied
    before it (fully once the master key of that time is retired), and only the AML record
    remains, readable for AML alone."""
    alice, bob = new_person(clock), new_person(clock)
    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-alice")
    privacy.put_personal_data(bob, BOB_DATA, "put-bob")
    privacy.grant_consent(alice, "marketing", 1, "grant-alice")
    privacy.request_human_review(alice, "loan:17", STATEMENT, "review-1")
    clock.advance(60)

    # Backups taken before the erasure: Alice's value rows and wrapped key (both backends)...
    copied_fields = {
        row[0]: Sealed(row[1], row[2], row[3])
        for row in query(
            ledger,
            "SELECT field, key_version, nonce, ciphertext FROM vault_fields "
            "WHERE party_id = ? AND scope = 'live'",
            (alice,),
        )
    }
    with ledger.read() as store:
        copied_key = PrivacyStore(store.connection, store.backend).key(alice, Scope.LIVE)
    assert copied_key is not None and len(copied_fields) == 9
    # ... and, on SQLite, the whole database file.
    file_copy = None
    if ledger.backend == "sqlite":
        file_copy = _copy_sqlite_file(ledger, tmp_path / "before-erasure.db")

    receipt = privacy.erase_person(alice, "erase-alice")

    # Every ordinary read of Alice now fails, and the refusals are logged.
    for fields, purpose in (
        (["name"], "payment_service"),
        (["email"], "marketing_personalisation"),
        (["income"], "credit_assessment"),
    ):
        with pytest.raises(AccessRefused) as caught:
            privacy.read_personal_data(alice, fields, purpose, "svc", "after-erasure")
        assert caught.value.reason == "person_erased"
    assert access_log(ledger, alice)[-1][3:6] == ("refused", None, "person_erased")
    with pytest.raises(PersonErased):
        privacy.put_personal_data(alice, {"name": "Wang Fang"}, "put-again")
    with pytest.raises(PersonErased):
        privacy.grant_consent(alice, "marketing", 1, "grant-again")
    assert privacy.export_personal_data(alice)["personal_data"] == {}
    assert (
        query(
            ledger, "SELECT field FROM vault_fields WHERE party_id = ? AND scope = 'live'", (alice,)
        )
        == []
    )

    # The AML identity record is kept, and read only for AML, under the legal duty.
    aml = privacy.read_personal_data(
        alice, ["name", "id_number"], "aml_compliance", "aml-officer", "str:2027-0001"
    )
    assert aml == {"name": "Wang Fang", "id_number": ALICE_DATA["id_number"]}
    assert access_log(ledger, alice)[-1][3:5] == ("allowed", "legal_duty")
    with pytest.raises(AccessRefused) as caught:
        privacy.read_personal_data(alice, ["income"], "aml_compliance", "aml-officer", "str:1")
    assert caught.value.reason == "field_outside_purpose"

    # The receipt explains what was destroyed and what is kept, under which rule.
    document = receipt.document
    destroyed = {item["record"]: item for item in document["destroyed"]}
    retained = {item["record"]: item for item in document["retained"]}
    assert destroyed["personal_fields"]["fields"] == sorted(ALICE_DATA)
    assert destroyed["data_subject_request_texts"]["count"] == 1
    aml_record = retained["aml_customer_identity_record"]
    assert aml_record["fields"] == ["address", "date_of_birth", "id_number", "name", "phone"]
    assert aml_record["years"] == 10
    erased_on = document["erased_on"]
    assert aml_record["retain_until"] == str(int(erased_on[:4]) + 10) + erased_on[4:]
    assert "A4" in aml_record["citation"] and "A5" in aml_record["citation"]
    assert set(retained) >= {
        "ledger_entries_and_audit_chain",
        "consent_events",
        "data_access_log",
        "data_subject_requests",
    }
    assert retained["consent_events"]["count"] == 1
    assert document["backups"]["master_key_id"] == master.key_id
    assert privacy.erasure_receipt(alice) == document
    assert privacy.erase_person(alice, "erase-alice").replayed
    with pytest.raises(PersonErased):
        privacy.erase_person(alice, "erase-alice-2")
    assert not [value for value in personal_values(ALICE_DATA) if value in json.dumps(document)]

    # Copied value rows cannot be decrypted: the live database has no key for them any more,
    # and the one key it still holds for Alice (the AML retention key) does not open them.
    with ledger.read() as store:
        live = PrivacyStore(store.connection, store.backend)
        assert live.key(alice, Scope.LIVE) is None
        retention = live.key(alice, Scope.AML_RETENTION)
    assert retention is not None
    retention_key = privacy.vault.unwrap(retention)
    for name, sealed in copied_fields.items():
        for scope in Scope:
            with pytest.raises(DecryptionFailed):
                unseal(
                    retention_key, alice, scope, name, Sealed(1, sealed.nonce, sealed.ciphertext)
                )

    # A full copy taken before the erasure still holds the wrapped key under the master key of
    # that time: it stays readable with that master key (the documented boundary) ...
    if file_copy is not None:
        backup = make_ledger(f"sqlite:///{file_copy}", clock)
        copies.append(backup)
        old_view = PrivacyService(backup, Vault(master), clock)
        assert old_view.read_personal_data(alice, ["name"], "payment_service", "dr", "t") == {
            "name": "Wang Fang"
        }
    assert privacy.vault.unwrap(copied_key)

    # ... until that master key is retired: every data key is re-wrapped under a new one and
    # the old one is destroyed.
    new_master = MasterKey.generate()
    report = PrivacyService(ledger, Vault(new_master, retired=[master]), clock).rewrap_keys()
    assert (report.rewrapped, report.unavailable) == (2, 0)  # Bob's key, Alice's AML key
    current = PrivacyService(ledger, Vault(new_master), clock)
    assert current.read_personal_data(bob, ["name"], "payment_service", "svc", "p:1") == {
        "name": "Zhao Lei"
    }
    assert current.read_personal_data(alice, ["name"], "aml_compliance", "aml", "str:2") == {
        "name": "Wang Fang"
    }
    with pytest.raises(MasterKeyUnavailable):
        Vault(new_master).unwrap(copied_key)
    if file_copy is not None:
        new_view = PrivacyService(backup, Vault(new_master), clock)
        with pytest.raises(MasterKeyUnavailable):
            new_view.read_personal_data(alice, ["name"], "payment_service", "dr", "t")


def test_aml_record_is_destroyed_when_its_retention_ends(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """Ten years and a day after erasure the AML record is purged and unreadable too."""
    alice = new_person(clock)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    receipt = privacy.erase_person(alice, "erase-1")
    assert privacy.purge_expired_retention() == []
    clock.advance(nanoseconds=(10 * 366 + 1) * DAY)
    assert privacy.purge_expired_retention() == [alice]
    with pytest.raises(AccessRefused) as caught:
        privacy.read_personal_data(alice, ["name"], "aml_compliance", "aml", "str:3")
    assert caught.value.reason == "person_erased"
    assert query(ledger, "SELECT * FROM vault_keys WHERE party_id = ?", (alice,)) == []
    assert privacy.erasure_receipt(alice) == receipt.document


# -- export ------------------------------------------------------------------------------------


def test_export_contains_everything_and_no_other_persons_data(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """The export holds the person's values, consents, access log and requests, and nothing of
    anybody else."""
    alice, bob = new_person(clock), new_person(clock)
    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-alice")
    privacy.put_personal_data(bob, BOB_DATA, "put-bob")
    privacy.grant_consent(alice, "marketing", 1, "grant-alice")
    privacy.grant_consent(bob, "credit", 1, "grant-bob")
    privacy.read_personal_data(alice, ["email"], "marketing_personalisation", "svc", "c:1")
    privacy.read_personal_data(bob, ["income"], "credit_assessment", "svc", "c:2")
    with pytest.raises(AccessRefused):
        privacy.read_personal_data(alice, ["income"], "credit_assessment", "svc", "c:3")
    privacy.request_human_review(alice, "loan:17", STATEMENT, "review-alice")
    privacy.request_explanation(bob, "loan:18", "explain-bob")

    export = privacy.export_personal_data(alice)

    assert export["party_id"] == alice
    assert export["personal_data"] == {
        **ALICE_DATA,
        "bank_card_number": ALICE_DATA["bank_card_number"],
    }
    assert [(c["kind"], c["text_id"]) for c in export["consents"]] == [("grant", "marketing")]
    assert [s["live"] for s in export["consent_states"]] == [True]
    log = export["access_log"]
    assert [(e["purpose"], e["outcome"]) for e in log] == [
        ("marketing_personalisation", "allowed"),
        ("credit_assessment", "refused"),
        ("data_subject_request", "allowed"),
    ]
    assert {e["party_id"] for e in log} == {alice}
    assert export["access_log_total"] == 3 and not export["access_log_truncated"]
    assert [(r["kind"], r["statement"], r["state"]) for r in export["data_subject_requests"]] == [
        ("human_review", STATEMENT, "open")
    ]
    assert export["erasure"] is None
    text = json.dumps(export, ensure_ascii=False)
    assert bob not in text
    assert not [value for value in BOB_DATA.values() if value in text]
    assert "credit" not in [c["text_id"] for c in export["consents"]]


# -- key rotation ------------------------------------------------------------------------------


def test_master_key_rotation_rewraps_without_touching_ciphertexts(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock, master: MasterKey
) -> None:
    """Re-wrapping moves every data key to the new master key; the value rows stay identical."""
    people = [new_person(clock) for _ in range(5)]
    for index, party in enumerate(people):
        privacy.put_personal_data(party, ALICE_DATA, f"put-{index}")
    before = query(ledger, "SELECT * FROM vault_fields ORDER BY party_id, field")
    new_master = MasterKey.generate()

    report = PrivacyService(ledger, Vault(new_master, retired=[master]), clock).rewrap_keys(
        batch_size=2
    )

    assert (report.rewrapped, report.unavailable) == (5, 0)
    assert query(ledger, "SELECT * FROM vault_fields ORDER BY party_id, field") == before
    assert {row[0] for row in query(ledger, "SELECT master_key_id FROM vault_keys")} == {
        new_master.key_id
    }
    rotated = PrivacyService(ledger, Vault(new_master), clock)
    for party in people:
        assert rotated.read_personal_data(party, ["phone"], "payment_service", "svc", "p") == {
            "phone": ALICE_DATA["phone"]
        }
    with pytest.raises(MasterKeyUnavailable):
        privacy.read_personal_data(people[0], ["phone"], "payment_service", "svc", "p")
    # Another run finds nothing left to move; a vault without the old key reports it missing.
    assert rotated.rewrap_keys().rewrapped == 0


def test_data_key_rotation_reencrypts_the_persons_values(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """A new data key re-encrypts every value; ciphertexts from before no longer open."""
    alice = new_person(clock)
    privacy.put_personal_data(alice, ALICE_DATA, "put-1")
    privacy.request_human_review(alice, "loan:17", STATEMENT, "review-1")
    sql = "SELECT field, key_version, nonce, ciphertext FROM vault_fields WHERE party_id = ?"
    before = {row[0]: row[1:] for row in query(ledger, sql, (alice,))}

    result = privacy.rotate_data_key(alice, "rotate-1")

    after = {row[0]: row[1:] for row in query(ledger, sql, (alice,))}
    assert result.key_version == 2 and set(after) == set(before)
    assert all(after[name][0] == 2 and after[name][2] != before[name][2] for name in after)
    values = privacy.read_personal_data(
        alice, ["name", "address"], "identity_verification", "kyc", "review:1"
    )
    assert values == {"name": ALICE_DATA["name"], "address": ALICE_DATA["address"]}
    assert privacy.review_material("review-1", "reviewer-1", "case:1")["statement"] == STATEMENT
    with ledger.read() as store:
        wrapped = PrivacyStore(store.connection, store.backend).key(alice, Scope.LIVE)
    assert wrapped is not None
    new_key = privacy.vault.unwrap(wrapped)
    old_row = before["name"]
    with pytest.raises(DecryptionFailed):
        unseal(new_key, alice, Scope.LIVE, "name", Sealed(2, old_row[1], old_row[2]))
    assert privacy.rotate_data_key(alice, "rotate-1").replayed


# -- data-subject requests ---------------------------------------------------------------------


def test_explanation_and_human_review_requests_move_through_their_states(
    privacy: PrivacyService, ledger: Ledger, clock: ManualClock
) -> None:
    """Requests open, go into review and are answered; their texts are encrypted and logged."""
    alice = new_person(clock)
    explanation = privacy.request_explanation(alice, "rules.decision:123", "explain-1")
    review = privacy.request_human_review(alice, "loan:17", STATEMENT, "review-1")
    assert (explanation.state.value, review.state.value) == ("open", "open")
    assert privacy.request_explanation(alice, "rules.decision:123", "explain-1") == explanation
    with pytest.raises(RequestConflict):
        privacy.request_explanation(alice, "rules.decision:999", "explain-1")

    in_review = privacy.start_review("review-1", "reviewer-1")
    assert in_review.state.value == "in_review"
    assert privacy.start_review("review-1", "reviewer-1").state.value == "in_review"
    material = privacy.review_material("review-1", "reviewer-1", "case:17")
    assert material == {"statement": STATEMENT, "answer": None}
    answered = privacy.answer_request("review-1", "reviewer-1", ANSWER)
    assert answered.state.value == "answered" and answered.has_answer
    with pytest.raises(DataSubjectTransitionInvalid):
        privacy.start_review("review-1", "reviewer-2")
    privacy.answer_request("explain-1", "explainer", "Income below the threshold of rule L1.")

    assert [r.state.value for r in privacy.subject_requests(alice)] == ["answered", "answered"]
    history = privacy.export_personal_data(alice)["data_subject_requests"][1]
    assert [h["state"] for h in history["history"]] == ["open", "in_review", "answered"]
    assert (history["statement"], history["answer"]) == (STATEMENT, ANSWER)
    assert privacy.subject_request("review-1").respond_by > "2027-01-01"
    assert access_log(ledger, alice)[0][:4] == (
        "reviewer-1",
        "request_statement,request_answer",
        "data_subject_request",
        "allowed",
    )
    assert STATEMENT not in all_rows_text(ledger)


# -- logs --------------------------------------------------------------------------------------


def test_a_full_flow_never_logs_personal_data(
    ledger: Ledger,
    clock: ManualClock,
    master: MasterKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every log record of a full privacy flow, and every error raised, is free of the values."""
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    privacy = PrivacyService(ledger, Vault(master), clock)
    alice, bob = new_person(clock), new_person(clock)

    def attempt(call: Any, *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except IdentityError as error:
            errors.append(f"{error.code}: {error}")
            logging.getLogger("tianping.test").exception("refused")

    publish_texts(privacy)
    privacy.put_personal_data(alice, ALICE_DATA, "put-alice")
    privacy.put_personal_data(bob, BOB_DATA, "put-bob")
    attempt(privacy.put_personal_data, bob, {"bloodType": "O+", "name": "Zhao Lei"}, "bad-1")
    attempt(privacy.put_personal_data, bob, {"email": "zhao.lei at example.cn"}, "bad-2")
    attempt(privacy.put_personal_data, bob, {"date_of_birth": "2099-01-01"}, "bad-3")
    privacy.grant_consent(alice, "marketing", 1, "grant-1")
    privacy.grant_consent(alice, "credit", 1, "grant-2")
    privacy.read_personal_data(alice, ["email", "name"], "marketing_personalisation", "s", "c:1")
    privacy.read_personal_data(alice, ["income", "id_number"], "credit_assessment", "s", "c:2")
    privacy.withdraw_consent(alice, "credit", "withdraw-1")
    attempt(privacy.read_personal_data, alice, ["income"], "credit_assessment", "s", "c:3")
    attempt(privacy.read_personal_data, bob, ["email"], "marketing_personalisation", "s", "c:4")
    privacy.correct_personal_data(alice, {"phone": "+86 137 0000 1111"}, "correct-1")
    privacy.request_human_review(alice, "loan:17", STATEMENT, "review-1")
    privacy.start_review("review-1", "reviewer")
    privacy.review_material("review-1", "reviewer", "case:1")
    privacy.answer_request("review-1", "reviewer", ANSWER)
    privacy.export_personal_data(alice)
    privacy.rotate_data_key(bob, "rotate-bob")
    new_master = MasterKey.generate()
    PrivacyService(ledger, Vault(new_master, retired=[master]), clock).rewrap_keys()
    privacy = PrivacyService(ledger, Vault(new_master), clock)
    privacy.erase_person(alice, "erase-alice")
    attempt(privacy.read_personal_data, alice, ["name"], "payment_service", "s", "c:5")
    privacy.read_personal_data(alice, ["name"], "aml_compliance", "aml", "str:1")
    attempt(
        PrivacyService(ledger, Vault(master), clock).read_personal_data,
        bob,
        ["name"],
        "payment_service",
        "s",
        "c:6",
    )
    privacy.export_personal_data(bob)
    privacy.erase_person(bob, "erase-bob")

    assert len(errors) >= 7
    assert caplog.records, "the flow logs what it does"
    texts = [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    texts += [caplog.text, *errors]
    values = [*personal_values(ALICE_DATA, BOB_DATA), "+86 137 0000 1111", "1370000111"]
    leaks = [value for value in values for text in texts if value in text]
    assert leaks == []


def test_the_phone_index_follows_puts_corrections_and_erasure(
    ledger: Ledger, clock: ManualClock, master: MasterKey
) -> None:
    """A payer can name a payee by phone: the index maps a keyed digest of the number to the
    person, follows corrections, refuses a number already someone else's, and forgets an
    erased person."""
    import secrets as random_bytes

    from tianping.identity.errors import InvalidInput
    from tianping.identity.party_service import FingerprintKey

    key = FingerprintKey(random_bytes.token_bytes(32))
    indexed = PrivacyService(ledger, Vault(master), clock, index_key=key)
    alice, bob = new_person(clock), new_person(clock)
    indexed.put_personal_data(alice, {"name": "王小明", "phone": "13912345678"}, "p-1")
    assert indexed.party_by_phone("13912345678") == alice
    assert indexed.masked_name(alice, "test") == "**明"
    with pytest.raises(InvalidInput, match="another person"):
        indexed.put_personal_data(bob, {"phone": "13912345678"}, "p-2")
    indexed.correct_personal_data(alice, {"phone": "13787654321"}, "c-1")
    assert indexed.party_by_phone("13912345678") is None
    assert indexed.party_by_phone("13787654321") == alice
    indexed.put_personal_data(bob, {"phone": "13912345678"}, "p-3")
    assert indexed.party_by_phone("13912345678") == bob
    indexed.erase_person(alice, "e-1")
    assert indexed.party_by_phone("13787654321") is None
