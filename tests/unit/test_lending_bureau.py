"""The credit-bureau boundary: consent tokens, report validation and the simulated bureau."""

from __future__ import annotations

import dataclasses

import pytest

from tianping.lending.bureau import (
    SIGNATURE_LENGTH,
    TOKEN_LIFETIME_SECONDS_MAX,
    BureauError,
    BureauFieldPersonal,
    BureauFieldProhibited,
    BureauInputInvalid,
    BureauQuery,
    BureauReport,
    ConsentToken,
    ConsentTokenExpired,
    ConsentTokenInvalid,
    ConsentTokenIssuer,
    ConsentTokenVerifier,
    ConsentTokenWrongLender,
    PurposeNotAllowed,
    ReportConflict,
    ReportingConsentMissing,
    SubjectUnknown,
    personal_category,
    validate_report,
)
from tianping.lending.bureau_sim import (
    QUERY_LOG_PER_SUBJECT_MAX,
    REPORT_HISTORY_PER_SOURCE_MAX,
    SimulatedBureau,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
ALICE = "pty_01jd3k9x7q8r2m4n6p0s1t3v5w"
BOB = "pty_01jd3k9x7q8r2m4n6p0s1t3v5x"
BANK = "bank_a"
OTHER_BANK = "bank_b"
T0 = 1_700_000_000
DAY = 24 * 3600


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make_report(
    report_id: str = "rep-1",
    *,
    subject: str = ALICE,
    reporter_id: str = "tianping",
    reported_at: int = T0,
    data: dict[str, int | str] | None = None,
) -> BureauReport:
    return BureauReport(
        report_id=report_id,
        reporter_id=reporter_id,
        subject=subject,
        reported_at=reported_at,
        data=data
        if data is not None
        else {
            "payment_volume_90d_minor": 1_234_500,
            "on_time_repayment_count": 11,
            "credit_balance_minor": 300_000,
            "credit_line_count": 2,
            "currency": "CNY",
        },
        consent_reference="consent-7",
    )


def issue(
    *,
    subject: str = ALICE,
    lender_id: str = BANK,
    purpose: str = "credit_assessment",
    issued_at: int = T0,
    expires_at: int = T0 + DAY,
    key: bytes = KEY,
) -> ConsentToken:
    return ConsentTokenIssuer(key).issue(
        token_id="tok-1",
        subject=subject,
        lender_id=lender_id,
        purpose=purpose,
        consent_reference="consent-9",
        issued_at=issued_at,
        expires_at=expires_at,
    )


def make_query(
    token: ConsentToken,
    *,
    query_id: str = "q-1",
    lender_id: str = BANK,
    subject: str = ALICE,
    purpose: str = "credit_assessment",
) -> BureauQuery:
    return BureauQuery(
        query_id=query_id, lender_id=lender_id, subject=subject, purpose=purpose, token=token
    )


@pytest.fixture
def bureau() -> SimulatedBureau:
    simulated = SimulatedBureau(FixedClock(T0), KEY)
    simulated.report(make_report())
    return simulated


# --------------------------------------------------------------------------- tokens


def test_a_token_round_trips_through_the_verifier() -> None:
    token = issue()
    assert len(token.signature) == SIGNATURE_LENGTH
    # Returns without raising: the lender, subject, purpose and time all match.
    ConsentTokenVerifier(KEY).check(make_query(token), T0 + 60)


def test_a_token_is_valid_from_issue_until_just_before_expiry() -> None:
    verifier = ConsentTokenVerifier(KEY)
    query = make_query(issue())
    verifier.check(query, T0)
    verifier.check(query, T0 + DAY - 1)
    with pytest.raises(ConsentTokenExpired) as raised:
        verifier.check(query, T0 + DAY)
    assert raised.value.code == "consent_token_expired"
    with pytest.raises(ConsentTokenInvalid):
        verifier.check(query, T0 - 1)


def test_a_token_for_another_lender_is_refused() -> None:
    query = make_query(issue(lender_id=OTHER_BANK))
    with pytest.raises(ConsentTokenWrongLender) as raised:
        ConsentTokenVerifier(KEY).check(query, T0)
    assert raised.value.code == "consent_token_wrong_lender"


@pytest.mark.parametrize(
    "change",
    [
        {"expires_at": T0 + 2 * DAY},
        {"lender_id": OTHER_BANK},
        {"subject": BOB},
        {"purpose": "post_loan_management"},
        {"consent_reference": "consent-10"},
        {"signature": bytes(SIGNATURE_LENGTH)},
    ],
)
def test_a_tampered_token_is_invalid(change: dict[str, object]) -> None:
    tampered = dataclasses.replace(issue(), **change)  # type: ignore[arg-type]
    # The query matches the tampered fields, so only the signature can catch the change.
    query = make_query(
        tampered, lender_id=tampered.lender_id, subject=tampered.subject, purpose=tampered.purpose
    )
    with pytest.raises(ConsentTokenInvalid) as raised:
        ConsentTokenVerifier(KEY).check(query, T0)
    assert raised.value.code == "consent_token_invalid"


def test_a_token_signed_with_another_key_is_invalid() -> None:
    with pytest.raises(ConsentTokenInvalid):
        ConsentTokenVerifier(KEY).check(make_query(issue(key=OTHER_KEY)), T0)


def test_a_token_for_another_person_is_invalid() -> None:
    with pytest.raises(ConsentTokenInvalid):
        ConsentTokenVerifier(KEY).check(make_query(issue(subject=BOB)), T0)


@pytest.mark.parametrize("purpose", ["marketing", "credit_bureau_reporting", "employment"])
def test_purposes_other_than_credit_are_not_allowed(purpose: str) -> None:
    with pytest.raises(PurposeNotAllowed) as raised:
        ConsentTokenVerifier(KEY).check(make_query(issue(), purpose=purpose), T0)
    assert raised.value.code == "purpose_not_allowed"
    with pytest.raises(PurposeNotAllowed):
        issue(purpose=purpose)


def test_a_token_does_not_cover_a_purpose_it_was_not_issued_for() -> None:
    query = make_query(issue(purpose="credit_assessment"), purpose="post_loan_management")
    with pytest.raises(PurposeNotAllowed):
        ConsentTokenVerifier(KEY).check(query, T0)


def test_token_lifetimes_are_bounded_by_purpose() -> None:
    longest = TOKEN_LIFETIME_SECONDS_MAX["credit_assessment"]
    issue(expires_at=T0 + longest)
    with pytest.raises(BureauInputInvalid):
        issue(expires_at=T0 + longest + 1)
    with pytest.raises(BureauInputInvalid):
        issue(expires_at=T0)


def test_short_keys_are_refused_and_never_shown() -> None:
    with pytest.raises(BureauInputInvalid):
        ConsentTokenIssuer(b"short")
    assert "k" * 32 not in repr(ConsentTokenIssuer(KEY))


# --------------------------------------------------------------------------- reports


def test_a_plain_report_of_raw_facts_is_valid() -> None:
    report = make_report()
    assert validate_report(report) is report


@pytest.mark.parametrize(
    ("field_name", "category"),
    [
        ("religion", "religion"),
        ("genetic_risk_score", "genes"),
        ("fingerprint_hash", "fingerprints"),
        ("face_template", "biometrics"),
        ("biometricVector", "biometrics"),
        ("blood_type", "blood_type"),
        ("disease_history", "disease"),
        ("medical_claims_count", "medical_history"),
        ("血型", "blood_type"),
    ],
)
def test_prohibited_fields_are_refused(field_name: str, category: str) -> None:
    report = make_report(data={"credit_line_count": 1, field_name: 1})
    with pytest.raises(BureauFieldProhibited) as raised:
        validate_report(report)
    assert raised.value.code == "bureau_field_prohibited"
    assert raised.value.category == category


@pytest.mark.parametrize(
    ("field_name", "category"),
    [
        ("name", "name"),
        ("full_name", "name"),
        ("id_number", "id_number"),
        ("idCardNo", "id_number"),
        ("phone", "phone"),
        ("mobile", "phone"),
        ("home_address", "address"),
        ("bank_card", "bank_card"),
        ("card_number_masked", "bank_card"),
        ("email", "email"),
        ("身份证号", "id_number"),
    ],
)
def test_personal_fields_are_refused(field_name: str, category: str) -> None:
    assert personal_category(field_name) == category
    with pytest.raises(BureauFieldPersonal) as raised:
        validate_report(make_report(data={field_name: "x"}))
    assert raised.value.code == "bureau_field_personal"


@pytest.mark.parametrize("value", ["13800138000", "11010519491231002X", "a@b.cn"])
def test_identifier_shaped_text_values_are_refused(value: str) -> None:
    with pytest.raises(BureauFieldPersonal):
        validate_report(make_report(data={"repayment_status": value}))


@pytest.mark.parametrize(
    "field_name", ["number_of_credit_lines", "valid_number_count", "rename_count", "gender_free"]
)
def test_ordinary_field_names_are_not_mistaken_for_personal_ones(field_name: str) -> None:
    assert personal_category(field_name) is None


def test_a_report_must_cite_a_reporting_consent() -> None:
    report = dataclasses.replace(make_report(), consent_purpose="credit_assessment")
    with pytest.raises(ReportingConsentMissing) as raised:
        validate_report(report)
    assert raised.value.code == "reporting_consent_missing"


@pytest.mark.parametrize(
    "data",
    [{}, {"count": 1.5}, {"flag": True}, {"note": "a\nb"}, {"big": 10**16}],
)
def test_malformed_report_data_is_refused_at_construction(data: dict[str, object]) -> None:
    with pytest.raises(BureauInputInvalid):
        make_report(data=data)  # type: ignore[arg-type]


def test_a_subject_shaped_like_a_phone_number_is_refused() -> None:
    with pytest.raises(BureauInputInvalid):
        make_report(subject="13800138000")


def test_a_report_cannot_be_changed_through_the_callers_dict() -> None:
    data: dict[str, int | str] = {"credit_line_count": 1}
    report = make_report(data=data)
    data["credit_line_count"] = 99
    assert report.data["credit_line_count"] == 1


# --------------------------------------------------------------------------- simulated bureau


def test_the_bureau_answers_a_valid_query(bureau: SimulatedBureau) -> None:
    response = bureau.query(make_query(issue()), T0 + 10)
    assert response.subject == ALICE
    assert response.source_count == 1
    assert response.as_of == T0
    assert response.fields["on_time_repayment_count"] == 11
    assert response.fields["currency"] == "CNY"


def test_the_bureau_refuses_prohibited_reports_on_receipt(bureau: SimulatedBureau) -> None:
    with pytest.raises(BureauFieldProhibited):
        bureau.report(make_report("rep-x", data={"religion": "none"}))


def test_reports_are_idempotent_and_conflicts_refused(bureau: SimulatedBureau) -> None:
    assert bureau.report(make_report()).duplicate is True
    with pytest.raises(ReportConflict) as raised:
        bureau.report(make_report(data={"credit_line_count": 5}))
    assert raised.value.code == "bureau_report_conflict"


def test_reports_from_several_institutions_are_aggregated(bureau: SimulatedBureau) -> None:
    bureau.report(
        make_report(
            "rep-2",
            reporter_id="bank_c",
            reported_at=T0 + 100,
            data={"credit_balance_minor": 50_000, "credit_line_count": 1, "currency": "CNY"},
        )
    )
    response = bureau.query(make_query(issue()), T0 + 200)
    assert response.source_count == 2
    assert response.fields["credit_balance_minor"] == 350_000
    assert response.fields["credit_line_count"] == 3
    assert response.as_of == T0 + 100


def test_the_latest_report_of_an_institution_replaces_its_earlier_one(
    bureau: SimulatedBureau,
) -> None:
    bureau.report(make_report("rep-2", reported_at=T0 + 50, data={"credit_line_count": 4}))
    # An older report arriving late goes into history without displacing the latest.
    bureau.report(make_report("rep-0", reported_at=T0 - 50, data={"credit_line_count": 9}))
    response = bureau.query(make_query(issue()), T0 + 60)
    assert response.fields == {"credit_line_count": 4}
    assert response.source_count == 1
    # As of a moment before the newer report, the earlier one answers.
    assert (
        bureau.query(make_query(issue(), query_id="q-2"), T0 + 10).fields["credit_line_count"] == 2
    )


def test_history_per_institution_is_bounded() -> None:
    simulated = SimulatedBureau(FixedClock(T0), KEY)
    for index in range(REPORT_HISTORY_PER_SOURCE_MAX + 5):
        simulated.report(make_report(f"rep-{index}", reported_at=T0 + index))
    # Only the latest reports are kept: a query before the kept window finds nothing.
    with pytest.raises(SubjectUnknown):
        simulated.query(make_query(issue()), T0 + 4)
    assert simulated.query(make_query(issue()), T0 + 5).as_of == T0 + 5


def test_an_unknown_subject_is_refused_only_after_the_token_checks(
    bureau: SimulatedBureau,
) -> None:
    with pytest.raises(SubjectUnknown) as raised:
        bureau.query(make_query(issue(subject=BOB), subject=BOB), T0)
    assert raised.value.code == "subject_unknown"
    # Without a valid token the caller learns nothing about whether Bob is known.
    with pytest.raises(ConsentTokenInvalid):
        bureau.query(make_query(issue(subject=BOB, key=OTHER_KEY), subject=BOB), T0)


def test_the_query_log_records_refused_queries_too(bureau: SimulatedBureau) -> None:
    bureau.query(make_query(issue(), query_id="q-ok"), T0 + 1)
    refusals: list[tuple[str, BureauQuery]] = [
        ("consent_token_wrong_lender", make_query(issue(lender_id=OTHER_BANK), query_id="q-w")),
        ("consent_token_expired", make_query(issue(), query_id="q-e")),
        ("purpose_not_allowed", make_query(issue(), query_id="q-p", purpose="marketing")),
        ("consent_token_invalid", make_query(issue(key=OTHER_KEY), query_id="q-t")),
    ]
    for index, (code, query) in enumerate(refusals):
        now = T0 + DAY + index if code == "consent_token_expired" else T0 + 2 + index
        with pytest.raises(BureauError) as raised:
            bureau.query(query, now)
        assert raised.value.code == code
    log = bureau.query_log(ALICE, 10)
    assert [entry.query_id for entry in log] == ["q-t", "q-p", "q-e", "q-w", "q-ok"]
    assert [entry.outcome for entry in log] == [
        "consent_token_invalid",
        "purpose_not_allowed",
        "consent_token_expired",
        "consent_token_wrong_lender",
        "answered",
    ]
    assert {entry.lender_id for entry in log} == {BANK}
    assert log[-1].purpose == "credit_assessment"
    assert log[-1].at == T0 + 1
    assert log[-1].token_id == "tok-1"


def test_a_subject_reads_only_its_own_log(bureau: SimulatedBureau) -> None:
    bureau.query(make_query(issue(), query_id="q-alice"), T0)
    with pytest.raises(SubjectUnknown):
        bureau.query(make_query(issue(subject=BOB), subject=BOB, query_id="q-bob"), T0)
    assert [entry.query_id for entry in bureau.query_log(ALICE, 10)] == ["q-alice"]
    assert [entry.query_id for entry in bureau.query_log(BOB, 10)] == ["q-bob"]
    assert bureau.query_log("pty_nobody", 10) == []


def test_the_log_is_bounded_and_limited(bureau: SimulatedBureau) -> None:
    token = issue()
    for index in range(QUERY_LOG_PER_SUBJECT_MAX + 3):
        bureau.query(make_query(token, query_id=f"q-{index}"), T0)
    newest = bureau.query_log(ALICE, 1000)
    assert len(newest) == QUERY_LOG_PER_SUBJECT_MAX
    assert newest[0].query_id == f"q-{QUERY_LOG_PER_SUBJECT_MAX + 2}"
    assert newest[-1].query_id == "q-3"
    assert len(bureau.query_log(ALICE, 2)) == 2
    with pytest.raises(BureauInputInvalid):
        bureau.query_log(ALICE, 0)


def test_the_simulator_is_deterministic() -> None:
    def run() -> list[object]:
        simulated = SimulatedBureau(FixedClock(T0), KEY)
        simulated.report(make_report())
        simulated.report(make_report("rep-2", reporter_id="bank_c", data={"credit_line_count": 1}))
        response = simulated.query(make_query(issue()), T0 + 1)
        return [response, simulated.query_log(ALICE, 5)]

    assert run() == run()
