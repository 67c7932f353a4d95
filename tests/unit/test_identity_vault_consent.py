"""Unit tests of the vault's cryptography and of purpose-bound consent (pure parts, no database)."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
from datetime import date
from pathlib import Path

import pytest

from tianping.identity.consent import (
    ACCESS_REFUSAL_CODES,
    AML_IDENTITY_FIELDS,
    POLICIES,
    SERVICE_NEEDS,
    Basis,
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    ConsentTextBundled,
    DataSubjectRequestState,
    Field,
    PersonalFieldProhibited,
    PersonalFieldUnknown,
    Purpose,
    aml_retention_rule,
    check_consent_text,
    check_field_names,
    check_field_value,
    decide_access,
    live_consents,
    prohibited_category,
    respond_by,
    service_check,
    transition_allowed,
)
from tianping.identity.errors import IdentityError, InvalidInput
from tianping.identity.vault import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    DataKey,
    DecryptionFailed,
    MasterKey,
    MasterKeyInvalid,
    MasterKeyUnavailable,
    Scope,
    Sealed,
    Vault,
    load_master_key,
    seal,
    unseal,
)

ALICE = "pty_01jd3k9x7q8r2m4n6p0s1t3v5w"
BOB = "pty_01jd3k9x7q8r2m4n6p0s1t3v5x"
T0 = 1_800_000_000_000_000_000

# -- vault: field encryption -------------------------------------------------------------------


def test_seal_and_unseal_round_trip() -> None:
    """A sealed value decrypts to itself, and its ciphertext does not contain the plaintext."""
    key = DataKey.generate()
    sealed = seal(key, ALICE, Scope.LIVE, "name", "张伟 Zhang Wei")
    assert len(sealed.nonce) == 12
    assert b"Zhang" not in sealed.ciphertext
    assert len(sealed.ciphertext) == len("张伟 Zhang Wei".encode()) + 16
    assert unseal(key, ALICE, Scope.LIVE, "name", sealed) == "张伟 Zhang Wei"


@pytest.mark.parametrize("part", ["ciphertext", "tag", "nonce"])
def test_tampered_ciphertext_fails(part: str) -> None:
    """Flipping one bit of the ciphertext, its tag or its nonce makes decryption fail."""
    key = DataKey.generate()
    sealed = seal(key, ALICE, Scope.LIVE, "phone", "+86 138 0013 8000")
    ciphertext = bytearray(sealed.ciphertext)
    nonce = bytearray(sealed.nonce)
    if part == "ciphertext":
        ciphertext[0] ^= 1
    elif part == "tag":
        ciphertext[-1] ^= 0x80
    else:
        nonce[5] ^= 4
    tampered = Sealed(sealed.key_version, bytes(nonce), bytes(ciphertext))
    with pytest.raises(DecryptionFailed) as caught:
        unseal(key, ALICE, Scope.LIVE, "phone", tampered)
    assert "138" not in str(caught.value)


@pytest.mark.parametrize(
    ("party", "scope", "name"),
    [
        (BOB, Scope.LIVE, "address"),
        (ALICE, Scope.LIVE, "email"),
        (ALICE, Scope.AML_RETENTION, "address"),
    ],
    ids=["another-party", "another-field", "another-scope"],
)
def test_wrong_associated_data_fails(party: str, scope: Scope, name: str) -> None:
    """A ciphertext moved to another party's row, another field or another scope fails."""
    key = DataKey.generate()
    sealed = seal(key, ALICE, Scope.LIVE, "address", "1 Century Avenue, Shanghai")
    with pytest.raises(DecryptionFailed):
        unseal(key, party, scope, name, sealed)


def test_wrong_key_version_in_the_row_fails() -> None:
    """A row whose recorded key version was edited no longer authenticates."""
    key = DataKey.generate(version=3)
    sealed = seal(key, ALICE, Scope.LIVE, "income", "120000.00")
    relabelled = DataKey(key._key, 4)
    with pytest.raises(DecryptionFailed):
        unseal(relabelled, ALICE, Scope.LIVE, "income", Sealed(4, sealed.nonce, sealed.ciphertext))
    with pytest.raises(DecryptionFailed):
        unseal(relabelled, ALICE, Scope.LIVE, "income", sealed)


def test_wrong_key_fails() -> None:
    """Another data key of the same version cannot decrypt the value."""
    sealed = seal(DataKey.generate(), ALICE, Scope.LIVE, "id_number", "110101199003071234")
    with pytest.raises(DecryptionFailed):
        unseal(DataKey.generate(), ALICE, Scope.LIVE, "id_number", sealed)


def test_nonces_never_repeat_across_writes() -> None:
    """Thousands of writes of one value under one key use distinct nonces and ciphertexts."""
    key = DataKey.generate()
    sealed = [seal(key, ALICE, Scope.LIVE, "phone", "13800138000") for _ in range(5_000)]
    assert len({s.nonce for s in sealed}) == 5_000
    assert len({s.ciphertext for s in sealed}) == 5_000
    assert all(unseal(key, ALICE, Scope.LIVE, "phone", s) == "13800138000" for s in sealed[:50])


def test_key_objects_never_show_or_pickle_their_bytes() -> None:
    """repr shows ids and versions only, and pickling key material is refused."""
    master = MasterKey.generate()
    data_key = DataKey.generate(version=2)
    assert repr(master) == f"MasterKey(key_id={master.key_id!r})"
    assert repr(data_key) == "DataKey(version=2)"
    assert data_key._key.hex() not in repr(Vault(master))
    for secret in (master, data_key, Vault(master)):
        with pytest.raises(TypeError):
            pickle.dumps(secret)


# -- vault: key wrapping and rotation ----------------------------------------------------------


def test_wrap_and_unwrap_round_trip() -> None:
    """A wrapped data key unwraps to a key that opens what the original sealed."""
    vault = Vault(MasterKey.generate())
    data_key, wrapped = vault.new_data_key(ALICE, Scope.LIVE)
    assert wrapped.master_key_id == vault.current.key_id
    assert len(wrapped.wrapped) == 48 and len(wrapped.nonce) == 12
    assert data_key._key not in wrapped.wrapped
    sealed = seal(data_key, ALICE, Scope.LIVE, "name", "Li Na")
    assert unseal(vault.unwrap(wrapped), ALICE, Scope.LIVE, "name", sealed) == "Li Na"


def test_a_wrapped_key_moved_to_another_person_or_tampered_fails() -> None:
    """A wrapped key copied onto another party's row, or altered, does not unwrap."""
    vault = Vault(MasterKey.generate())
    _, wrapped = vault.new_data_key(ALICE, Scope.LIVE)
    moved = type(wrapped)(
        BOB, wrapped.scope, 1, wrapped.master_key_id, wrapped.nonce, wrapped.wrapped
    )
    with pytest.raises(DecryptionFailed):
        vault.unwrap(moved)
    altered = bytearray(wrapped.wrapped)
    altered[3] ^= 1
    with pytest.raises(DecryptionFailed):
        vault.unwrap(
            type(wrapped)(
                ALICE, Scope.LIVE, 1, wrapped.master_key_id, wrapped.nonce, bytes(altered)
            )
        )


def test_master_key_rotation_keeps_data_readable_with_the_new_key_only() -> None:
    """After re-wrapping under a new master key the data opens with it alone, not the old one."""
    old, new = MasterKey.generate(), MasterKey.generate()
    data_key, wrapped = Vault(old).new_data_key(ALICE, Scope.LIVE)
    sealed = seal(data_key, ALICE, Scope.LIVE, "email", "li.na@example.cn")

    rewrapped = Vault(new, retired=[old]).rewrap(wrapped)

    assert rewrapped.master_key_id == new.key_id != old.key_id
    assert rewrapped.wrapped != wrapped.wrapped
    opened = Vault(new).unwrap(rewrapped)
    assert unseal(opened, ALICE, Scope.LIVE, "email", sealed) == "li.na@example.cn"
    with pytest.raises(MasterKeyUnavailable):
        Vault(old).unwrap(rewrapped)
    with pytest.raises(MasterKeyUnavailable):
        Vault(new).unwrap(wrapped)
    # Re-wrapping what is already under the current key changes nothing.
    assert Vault(new).rewrap(rewrapped) is rewrapped


def test_master_key_id_identifies_without_revealing() -> None:
    """The key id is 16 hex digits, stable for one key and different for another."""
    raw = os.urandom(32)
    assert MasterKey(raw).key_id == MasterKey(raw).key_id
    assert len(MasterKey(raw).key_id) == 16
    assert raw.hex()[:16] != MasterKey(raw).key_id
    assert MasterKey(raw).key_id != MasterKey(os.urandom(32)).key_id


def test_master_key_loads_from_environment_and_files(tmp_path: Path) -> None:
    """The key loads from base64 in the environment, and from raw or base64 key files."""
    raw = os.urandom(32)
    encoded = base64.b64encode(raw).decode()
    expected = MasterKey(raw).key_id
    assert load_master_key(environ={MASTER_KEY_ENV: encoded}).key_id == expected
    raw_file = tmp_path / "master.key"
    raw_file.write_bytes(raw)
    raw_file.chmod(0o600)
    assert load_master_key(raw_file, environ={}).key_id == expected
    text_file = tmp_path / "master.b64"
    text_file.write_text(encoded + "\n")
    text_file.chmod(0o400)
    assert load_master_key(environ={MASTER_KEY_FILE_ENV: str(text_file)}).key_id == expected


def test_master_key_refusals(tmp_path: Path) -> None:
    """A missing, short, non-base64 or world-readable key is refused without echoing it."""
    with pytest.raises(MasterKeyInvalid):
        load_master_key(environ={})
    with pytest.raises(MasterKeyInvalid):
        load_master_key(environ={MASTER_KEY_ENV: base64.b64encode(b"short").decode()})
    with pytest.raises(MasterKeyInvalid) as caught:
        load_master_key(environ={MASTER_KEY_ENV: "not base64 at all!"})
    assert "not base64" not in str(caught.value)
    exposed = tmp_path / "exposed.key"
    exposed.write_bytes(os.urandom(32))
    exposed.chmod(0o644)
    with pytest.raises(MasterKeyInvalid, match="0600"):
        load_master_key(exposed, environ={})
    with pytest.raises(MasterKeyInvalid):
        load_master_key(tmp_path / "missing.key", environ={})


# -- fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("religion", "religion"),
        ("religiousBelief", "religion"),
        ("RELIGIOUS-AFFILIATION", "religion"),
        ("faith", "religion"),
        ("宗教信仰", "religion"),
        ("genes", "genes"),
        ("geneticData", "genes"),
        ("dna_sequence", "genes"),
        ("Genotype", "genes"),
        ("基因检测", "genes"),
        ("fingerprint", "fingerprints"),
        ("finger_prints", "fingerprints"),
        ("FingerPrintTemplate", "fingerprints"),
        ("指纹", "fingerprints"),
        ("blood_type", "blood_type"),
        ("bloodType", "blood_type"),
        ("Blood Group", "blood_type"),
        ("血型", "blood_type"),
        ("disease", "disease"),
        ("chronicDiseases", "disease"),
        ("diagnosis_code", "disease"),
        ("疾病", "disease"),
        ("medical_history", "medical_history"),
        ("medicalHistory", "medical_history"),
        ("health_status", "medical_history"),
        ("既往病史", "medical_history"),
    ],
)
def test_prohibited_fields_are_recognised_however_named(name: str, category: str) -> None:
    """Every spelling of a prohibited field (C1) is refused with its category."""
    assert prohibited_category(name) == category
    with pytest.raises(PersonalFieldProhibited) as caught:
        check_field_names(["name", name])
    assert caught.value.code == "personal_field_prohibited"
    assert caught.value.category == category


@pytest.mark.parametrize("name", ["general_notes", "gender", "generation", "address", "name"])
def test_ordinary_names_are_not_mistaken_for_prohibited_ones(name: str) -> None:
    """Words that merely contain a stem (`gene` in `general`) are not prohibited."""
    assert prohibited_category(name) is None


def test_prohibited_names_win_over_unknown_ones() -> None:
    """A request with an unknown and a prohibited field is refused for the prohibited one."""
    with pytest.raises(PersonalFieldProhibited):
        check_field_names(["nickname", "bloodType"])
    with pytest.raises(PersonalFieldUnknown) as caught:
        check_field_names(["nickname"])
    assert caught.value.code == "personal_field_unknown"
    with pytest.raises(InvalidInput):
        check_field_names(["name", "name"])
    with pytest.raises(InvalidInput):
        check_field_names([])
    assert check_field_names(["email", "name"]) == [Field.EMAIL, Field.NAME]


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        (Field.DATE_OF_BIRTH, "1990-02-30"),
        (Field.DATE_OF_BIRTH, "2999-01-01"),
        (Field.INCOME, "12000.5e3"),
        (Field.BANK_CARD_NUMBER, "6222 0212 x"),
        (Field.EMAIL, "li.na.example.cn"),
        (Field.PHONE, "call 13800138000"),
        (Field.NAME, " Li Na"),
        (Field.ID_NUMBER, "110101 19900307"),
    ],
)
def test_malformed_values_are_refused_without_quoting_them(field: Field, bad: str) -> None:
    """Validation errors name the field but never repeat the value."""
    with pytest.raises(IdentityError) as caught:
        check_field_value(field, bad, date(2027, 1, 15))
    assert bad not in str(caught.value)
    assert bad.strip() not in str(caught.value)


def test_values_are_normalised() -> None:
    """Card numbers lose their separators, ID numbers are upper-cased, dates stay ISO."""
    on = date(2027, 1, 15)
    assert check_field_value(Field.BANK_CARD_NUMBER, "6222 0212-3456 7890", on) == (
        "622202123456" + "7890"
    )
    assert check_field_value(Field.ID_NUMBER, "11010119900307123x", on).endswith("X")
    assert check_field_value(Field.DATE_OF_BIRTH, "1990-03-07", on) == "1990-03-07"
    assert check_field_value(Field.INCOME, "120000.50", on) == "120000.50"


# -- consent texts -----------------------------------------------------------------------------


def text(
    text_id: str,
    purposes: tuple[Purpose, ...],
    fields: tuple[Field, ...],
    recipient: str | None = None,
    version: int = 1,
) -> ConsentText:
    return ConsentText(
        text_id,
        version,
        purposes,
        fields,
        "zh-CN",
        hashlib.sha256(text_id.encode()).digest(),
        recipient,
    )


def grant(body: ConsentText, at: int, seq: int, party: str = ALICE) -> ConsentEvent:
    return ConsentEvent(
        f"g-{seq}", party, ConsentEventKind.GRANT, body.text_id, body.version, at, seq
    )


def withdraw(text_id: str, at: int, seq: int) -> ConsentEvent:
    return ConsentEvent(f"w-{seq}", ALICE, ConsentEventKind.WITHDRAW, text_id, None, at, seq)


def texts_of(*bodies: ConsentText) -> dict[tuple[str, int], ConsentText]:
    return {(body.text_id, body.version): body for body in bodies}


def test_a_bundled_text_with_a_separate_consent_purpose_is_refused() -> None:
    """Separate-consent purposes, and sensitive fields, cannot be bundled into one text."""
    with pytest.raises(ConsentTextBundled) as caught:
        check_consent_text(
            text(
                "bundle",
                (Purpose.CREDIT_ASSESSMENT, Purpose.MARKETING_PERSONALISATION),
                (Field.NAME,),
            )
        )
    assert caught.value.code == "consent_text_bundles_separate_purpose"
    with pytest.raises(ConsentTextBundled):
        check_consent_text(
            text(
                "bundle-sensitive",
                (Purpose.PAYMENT_SERVICE, Purpose.MARKETING_PERSONALISATION),
                (Field.NAME, Field.ID_NUMBER),
            )
        )
    ordinary = text(
        "bundle-ok",
        (Purpose.PAYMENT_SERVICE, Purpose.MARKETING_PERSONALISATION),
        (Field.NAME, Field.EMAIL),
    )
    assert check_consent_text(ordinary) is ordinary


def test_consent_text_shape_is_checked() -> None:
    """Recipients only for sharing texts, no reserved purposes, fields within the purposes."""
    with pytest.raises(InvalidInput):
        check_consent_text(text("share", (Purpose.THIRD_PARTY_SHARING,), (Field.NAME,)))
    with pytest.raises(InvalidInput):
        check_consent_text(
            text("mkt", (Purpose.MARKETING_PERSONALISATION,), (Field.NAME,), recipient="Acme")
        )
    with pytest.raises(InvalidInput):
        check_consent_text(text("aml", (Purpose.AML_COMPLIANCE,), (Field.NAME,)))
    with pytest.raises(InvalidInput):
        check_consent_text(text("mkt", (Purpose.MARKETING_PERSONALISATION,), (Field.INCOME,)))
    with pytest.raises(InvalidInput):
        check_consent_text(text("Bad Id", (Purpose.MARKETING_PERSONALISATION,), (Field.NAME,)))


# -- lawful basis ------------------------------------------------------------------------------

# The outcome of reading `fields` for each purpose with no consent at all.
WITHOUT_CONSENT = [
    (Purpose.PAYMENT_SERVICE, (Field.NAME, Field.BANK_CARD_NUMBER), None, "contract_necessity"),
    (Purpose.PAYMENT_SERVICE, (Field.EMAIL,), None, "consent_required"),
    (Purpose.IDENTITY_VERIFICATION, (Field.NAME, Field.ID_NUMBER), None, "legal_duty"),
    (Purpose.IDENTITY_VERIFICATION, (Field.BANK_CARD_NUMBER,), None, "consent_required"),
    (Purpose.CREDIT_ASSESSMENT, (Field.INCOME,), None, "consent_required"),
    (Purpose.CREDIT_BUREAU_REPORTING, (Field.NAME,), None, "consent_required"),
    (Purpose.MARKETING_PERSONALISATION, (Field.EMAIL,), None, "consent_required"),
    (Purpose.MARKETING_PERSONALISATION, (Field.INCOME,), None, "field_outside_purpose"),
    (Purpose.THIRD_PARTY_SHARING, (Field.NAME,), None, "recipient_required"),
    (Purpose.THIRD_PARTY_SHARING, (Field.NAME,), "Acme Insurance", "consent_required"),
    (Purpose.CROSS_BORDER_TRANSFER, (Field.NAME,), "Acme HK", "consent_required"),
    (Purpose.CREDIT_ASSESSMENT, (Field.NAME,), "Acme", "recipient_not_applicable"),
    (Purpose.AML_COMPLIANCE, (Field.NAME, Field.ID_NUMBER), None, "legal_duty"),
    (Purpose.AML_COMPLIANCE, (Field.INCOME,), None, "field_outside_purpose"),
    (Purpose.DATA_SUBJECT_REQUEST, (Field.NAME,), None, "purpose_reserved"),
]


@pytest.mark.parametrize(("purpose", "fields", "recipient", "expected"), WITHOUT_CONSENT)
def test_lawful_basis_without_consent(
    purpose: Purpose, fields: tuple[Field, ...], recipient: str | None, expected: str
) -> None:
    """With no consent, only contract necessity and legal duty make a read lawful."""
    decision = decide_access(purpose, fields, T0, [], {}, recipient)
    if expected in ACCESS_REFUSAL_CODES:
        assert not decision.allowed
        assert decision.refusal == expected
        assert decision.basis is None
    else:
        assert decision.allowed
        assert decision.basis == Basis(expected)
        assert decision.consent_text_id is None


def test_every_purpose_is_covered_without_consent() -> None:
    """The table above names every purpose, so none is left undecided."""
    assert {row[0] for row in WITHOUT_CONSENT} == set(Purpose)


# For each consentable purpose: fields a consent-based read asks for (beyond any other basis).
WITH_CONSENT = [
    (Purpose.PAYMENT_SERVICE, (Field.EMAIL, Field.ADDRESS), None),
    (Purpose.IDENTITY_VERIFICATION, (Field.BANK_CARD_NUMBER,), None),
    (Purpose.CREDIT_ASSESSMENT, (Field.INCOME, Field.NAME), None),
    (Purpose.CREDIT_BUREAU_REPORTING, (Field.NAME, Field.ID_NUMBER), None),
    (Purpose.MARKETING_PERSONALISATION, (Field.EMAIL,), None),
    (Purpose.THIRD_PARTY_SHARING, (Field.NAME, Field.PHONE), "Acme Insurance"),
    (Purpose.CROSS_BORDER_TRANSFER, (Field.NAME,), "Acme HK Ltd"),
]


@pytest.mark.parametrize(("purpose", "fields", "recipient"), WITH_CONSENT)
def test_lawful_basis_with_a_separate_consent(
    purpose: Purpose, fields: tuple[Field, ...], recipient: str | None
) -> None:
    """A live single-purpose consent covering the fields makes the read lawful on consent."""
    body = check_consent_text(
        text("t-" + purpose.value.replace("_", "-"), (purpose,), fields, recipient)
    )
    decision = decide_access(
        purpose, fields, T0 + 10, [grant(body, T0, 1)], texts_of(body), recipient
    )
    assert decision.allowed
    assert decision.basis is Basis.CONSENT
    assert (decision.consent_text_id, decision.consent_version) == (body.text_id, 1)
    before = decide_access(purpose, fields, T0 - 1, [grant(body, T0, 1)], texts_of(body), recipient)
    assert before.refusal == "consent_required"


def test_every_consentable_purpose_is_covered_with_consent() -> None:
    """The consent table above names every purpose a person can consent to."""
    assert {row[0] for row in WITH_CONSENT} == {
        p for p, policy in POLICIES.items() if policy.consentable
    }


def test_withdrawal_is_effective_from_its_timestamp() -> None:
    """A consent is live up to the nanosecond before its withdrawal, and again after a re-grant."""
    body = text("mkt", (Purpose.MARKETING_PERSONALISATION,), (Field.EMAIL,))
    events = [grant(body, T0, 1), withdraw("mkt", T0 + 100, 2), grant(body, T0 + 200, 3)]
    texts = texts_of(body)

    def at(moment: int) -> str | None:
        decision = decide_access(
            Purpose.MARKETING_PERSONALISATION, [Field.EMAIL], moment, events, texts
        )
        return decision.basis.value if decision.basis else decision.refusal

    assert at(T0 + 99) == "consent"
    assert at(T0 + 100) == "consent_withdrawn"
    assert at(T0 + 199) == "consent_withdrawn"
    assert at(T0 + 200) == "consent"
    assert [c.text.text_id for c in live_consents(events, texts, T0 + 150)] == []


def test_events_at_the_same_nanosecond_apply_in_recorded_order() -> None:
    """A grant and a withdrawal at one instant resolve by their sequence numbers."""
    body = text("mkt", (Purpose.MARKETING_PERSONALISATION,), (Field.EMAIL,))
    texts = texts_of(body)
    withdrawn_last = [grant(body, T0, 1), withdraw("mkt", T0, 2)]
    granted_last = [withdraw("mkt", T0, 1), grant(body, T0, 2)]
    assert live_consents(withdrawn_last, texts, T0) == []
    assert [c.text for c in live_consents(granted_last, texts, T0)] == [body]


def test_withdrawing_another_text_leaves_this_consent_live() -> None:
    """Withdrawal is per text: withdrawing text B does not end consent given to text A."""
    mkt = text("mkt", (Purpose.MARKETING_PERSONALISATION,), (Field.EMAIL,))
    other = text("mkt-2", (Purpose.MARKETING_PERSONALISATION,), (Field.PHONE,))
    events = [grant(mkt, T0, 1), grant(other, T0, 2), withdraw("mkt-2", T0 + 1, 3)]
    decision = decide_access(
        Purpose.MARKETING_PERSONALISATION, [Field.EMAIL], T0 + 2, events, texts_of(mkt, other)
    )
    assert decision.allowed and decision.consent_text_id == "mkt"


@pytest.mark.parametrize(
    ("purpose", "fields"),
    [
        (Purpose.CREDIT_ASSESSMENT, (Field.NAME,)),
        (Purpose.CREDIT_BUREAU_REPORTING, (Field.NAME,)),
        (Purpose.PAYMENT_SERVICE, (Field.EMAIL, Field.ID_NUMBER)),
    ],
    ids=["credit-assessment", "bureau-reporting", "sensitive-field"],
)
def test_separate_consent_purposes_refuse_a_bundled_consent(
    purpose: Purpose, fields: tuple[Field, ...]
) -> None:
    """A consent given to a bundle of purposes does not count where separate consent is due."""
    bundle = text(
        "bundle",
        (purpose, Purpose.MARKETING_PERSONALISATION),
        tuple(set(fields) | {Field.EMAIL}),
    )
    decision = decide_access(purpose, fields, T0 + 1, [grant(bundle, T0, 1)], texts_of(bundle))
    assert not decision.allowed
    assert decision.refusal == "consent_not_separate"
    # The same bundle does count for its ordinary purpose and non-sensitive fields.
    ordinary = decide_access(
        Purpose.MARKETING_PERSONALISATION,
        [Field.EMAIL],
        T0 + 1,
        [grant(bundle, T0, 1)],
        texts_of(bundle),
    )
    assert ordinary.allowed and ordinary.basis is Basis.CONSENT


def test_consent_must_cover_the_fields_and_name_the_recipient() -> None:
    """A live consent that lists other fields or another recipient does not make a read lawful."""
    mkt = text("mkt", (Purpose.MARKETING_PERSONALISATION,), (Field.EMAIL,))
    share = text("share", (Purpose.THIRD_PARTY_SHARING,), (Field.NAME,), recipient="Acme Insurance")
    events = [grant(mkt, T0, 1), grant(share, T0, 2)]
    texts = texts_of(mkt, share)
    phone = decide_access(Purpose.MARKETING_PERSONALISATION, [Field.PHONE], T0 + 1, events, texts)
    assert phone.refusal == "consent_fields_not_covered"
    other = decide_access(
        Purpose.THIRD_PARTY_SHARING, [Field.NAME], T0 + 1, events, texts, "Other Co"
    )
    assert other.refusal == "consent_recipient_mismatch"
    named = decide_access(
        Purpose.THIRD_PARTY_SHARING, [Field.NAME], T0 + 1, events, texts, "Acme Insurance"
    )
    assert named.allowed and named.consent_text_id == "share"


def test_contract_and_legal_bases_survive_withdrawal_of_every_consent() -> None:
    """Withdrawing consents never blocks what a contract or the law requires."""
    pay = text("pay", (Purpose.PAYMENT_SERVICE,), (Field.EMAIL,))
    events = [grant(pay, T0, 1), withdraw("pay", T0 + 1, 2)]
    decision = decide_access(Purpose.PAYMENT_SERVICE, [Field.NAME], T0 + 2, events, texts_of(pay))
    assert decision.allowed and decision.basis is Basis.CONTRACT_NECESSITY
    email = decide_access(Purpose.PAYMENT_SERVICE, [Field.EMAIL], T0 + 2, events, texts_of(pay))
    assert email.refusal == "consent_withdrawn"


# -- services ----------------------------------------------------------------------------------


def test_refusing_an_unneeded_consent_never_blocks_a_service() -> None:
    """Payment runs with no consent at all; marketing consent only matters to marketing (D1)."""
    payment = service_check("payment_account", [], {}, T0)
    assert payment.available and payment.missing == ()
    offers = service_check("personalised_offers", [], {}, T0)
    assert not offers.available and offers.missing == (Purpose.MARKETING_PERSONALISATION,)
    credit = service_check("credit_line", [], {}, T0)
    assert credit.missing == (Purpose.CREDIT_ASSESSMENT, Purpose.CREDIT_BUREAU_REPORTING)
    assessment = text("credit", (Purpose.CREDIT_ASSESSMENT,), (Field.INCOME,))
    bureau = text("bureau", (Purpose.CREDIT_BUREAU_REPORTING,), (Field.NAME,))
    events = [grant(assessment, T0, 1), grant(bureau, T0, 2)]
    assert service_check("credit_line", events, texts_of(assessment, bureau), T0).available
    assert all(
        Purpose.MARKETING_PERSONALISATION not in needs
        for name, needs in SERVICE_NEEDS.items()
        if name != "personalised_offers"
    )
    with pytest.raises(InvalidInput):
        service_check("unknown", [], {}, T0)


# -- retention and requests --------------------------------------------------------------------


def test_aml_retention_follows_the_rule_in_force() -> None:
    """Ten years from 2025-01-01 (A4, A5); five under the 2007 rules before that."""
    current = aml_retention_rule(date(2027, 1, 15))
    assert current.years == 10
    assert "A4" in current.citation and "A5" in current.citation
    assert aml_retention_rule(date(2024, 12, 31)).years == 5
    assert aml_retention_rule(date(2025, 1, 1)).years == 10
    assert {
        Field.NAME,
        Field.ID_NUMBER,
        Field.DATE_OF_BIRTH,
        Field.ADDRESS,
        Field.PHONE,
    } == AML_IDENTITY_FIELDS


def test_data_subject_request_states() -> None:
    """open -> in_review -> answered, open -> answered; nothing leaves answered or goes back."""
    open_, review, answered = DataSubjectRequestState
    assert transition_allowed(open_, review)
    assert transition_allowed(review, answered)
    assert transition_allowed(open_, answered)
    assert not transition_allowed(answered, review)
    assert not transition_allowed(review, open_)
    assert not transition_allowed(answered, open_)
    assert respond_by(date(2027, 1, 15)) == date(2027, 2, 14)
