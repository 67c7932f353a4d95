"""SME working-capital loans on both backends: a merchant's months of takings become exact
cash-flow features; with the merchant's consent the SME card decides within the cap its
receipts support; the loan is paid into the merchant's settlement account and repaid from what
that account holds beyond the takings its next settlement pays out."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.model import Application
from tianping.lending.service import LendingRefusal, LendingService
from tianping.lending.synthetic_sme import sme_scorecard
from tianping.payments import chart as payments_chart
from tianping.payments.model import PaymentError, local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_S = 86_400


class Consent:
    """The identity context's answer, fixed: whether the party's consents let a service run."""

    def __init__(self, available: bool) -> None:
        self.available = available
        self.asked: list[tuple[str, str]] = []

    def service_available(self, party_id: str, service: str) -> Any:
        self.asked.append((party_id, service))
        return self


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    """A noodle shop paid over three months (the clock starts on 2027-01-15): January 300 and
    200 (50 of it refunded), February 400 and 100 on one day and 100 the next, March 700 and
    one declined attempt; the loan is asked for in April."""
    world = make_world(ledger, clock)
    for name in ("alice", "bob", "carol", "dave"):
        world.person(name)
    for name in ("alice", "bob", "carol"):
        world.fund(name, 2_000_00)
    world.merchant("noodles")

    def pay(payment_id: str, payer: str, amount: int) -> str:
        return str(world.pay(payment_id, payer, "noodles", amount, auth_factors=2).status)

    assert pay("jan-1", "alice", 300_00) == "completed"
    assert pay("jan-2", "bob", 200_00) == "completed"
    world.service.refund("jan-r", "jan-1", 50_00)
    clock.advance(31 * DAY_S)
    assert pay("feb-1", "alice", 400_00) == "completed"
    assert pay("feb-2", "carol", 100_00) == "completed"
    clock.advance(DAY_S)
    assert pay("feb-3", "bob", 100_00) == "completed"
    clock.advance(28 * DAY_S)
    assert pay("mar-1", "alice", 700_00) == "completed"
    assert pay("mar-x", "dave", 10_00) == "declined"  # an empty wallet
    clock.advance(31 * DAY_S)
    assert local_date(clock()).month == 4
    return world


def _lending(world: PaymentsWorld, consent: Consent | None, scorer: Any = None) -> LendingService:
    return LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        consent=consent,
        sme_scorer=scorer or FixedScorer(),
        acquiring=world.service,
    )


def _sme(world: PaymentsWorld, application_id: str, amount: int, **extra: Any) -> Application:
    fields: dict[str, Any] = {
        "application_id": application_id,
        "party_id": world.merchants["noodles"],
        "amount": amount,
        "term_months": 6,
        "annual_income": 8_000_00 * 12,
        "product": "sme",
    }
    fields.update(extra)
    return Application(**fields)


def test_the_cash_flow_profile_of_three_months_is_exact(world: PaymentsWorld) -> None:
    today = local_date(world.clock())
    profile = world.service.merchant_cash_flow_profile(world.merchants["noodles"], today, 6)
    assert profile.window == ("2026-10", "2026-11", "2026-12", "2027-01", "2027-02", "2027-03")
    assert profile.monthly_receipts == (0, 0, 0, 500_00, 600_00, 700_00)
    assert profile.months_observed == 3  # trading since January
    assert profile.features() == {
        "mean_monthly_receipts": 600_00,
        # slope 100 a month over a mean of 600: 16.67%; sd sqrt(2/3)*100 over 600: 13.61%
        "receipts_trend_bps": 1_666,
        "receipts_cv_bps": 1_360,
        "refund_ratio_bps": 50_00 * 10_000 // 1_800_00,
        "failed_ratio_bps": 1 * 10_000 // 7,
        "distinct_payers": 3,
        "active_days": 4,
        "months_since_first_receipt": 3,
    }
    # A shorter window sees only March; before the first receipt there is nothing.
    march = world.service.merchant_cash_flow_profile(world.merchants["noodles"], today, 1)
    assert (march.mean_monthly_receipts, march.distinct_payers) == (700_00, 1)
    early = world.service.merchant_cash_flow_profile(
        world.merchants["noodles"], date(2027, 1, 3), 6
    )
    assert (early.mean_monthly_receipts, early.months_since_first_receipt) == (0, None)
    with pytest.raises(PaymentError) as bad:
        world.service.merchant_cash_flow_profile(world.merchants["noodles"], today, 25)
    assert bad.value.code == "payment_input_invalid"
    with pytest.raises(PaymentError) as unknown:
        world.service.merchant_cash_flow_profile(world.people["alice"], today, 6)
    assert unknown.value.code == "merchant_not_found"


def test_approve_disburse_to_the_settlement_account_and_repay(world: PaymentsWorld) -> None:
    merchant = world.merchants["noodles"]
    consent = Consent(True)
    lending = _lending(world, consent)
    offer = lending.apply(_sme(world, "sme-1", 1_500_00))
    assert offer.outcome == "approved", offer
    assert consent.asked == [(merchant, "sme_working_capital")]
    assert offer.sources == ("acquiring_cash_flows", "application")
    assert offer.apr_bps is not None and offer.rate_bps is not None
    assert lending.apply(_sme(world, "sme-1", 1_500_00)).replayed
    payable = payments_chart.merchant_account(merchant, "CNY")
    before = world.ledger.get_account(payable).credits_posted
    loan = lending.accept("sme-1", "sme-loan-1")
    assert (loan.product, loan.party_id, loan.principal) == ("sme", merchant, 1_500_00)
    assert world.ledger.get_account(payable).credits_posted - before == 1_500_00
    receivable = world.ledger.get_account(
        chart.account_id(LendingAccount.LOAN_RECEIVABLE, PLATFORM, "CNY")
    )
    assert receivable.debits_posted - receivable.credits_posted == 1_500_00
    assert world.service.merchant_free_balance(merchant) == 1_500_00
    assert world.service.safeguarding_check().in_balance
    # A day's interest makes the debt more than the loan's proceeds: paying it all would take
    # takings the next settlement pays out, so it is refused.
    interest = lending.accrue(date.fromisoformat(loan.disbursed_on) + timedelta(days=1)).interest
    assert interest > 0
    with pytest.raises(LendingRefusal) as short:
        lending.repay("sme-loan-1", "rp-big", 1_500_00 + interest)
    assert short.value.code == "insufficient_funds"
    repaid = lending.repay("sme-loan-1", "rp-1", 500_00)
    assert repaid.allocation == {
        "fees": 0,
        "penalty_interest": 0,
        "interest": interest,
        "principal": 500_00 - interest,
    }
    assert lending.repay("sme-loan-1", "rp-1", 500_00).replayed
    assert world.service.merchant_free_balance(merchant) == 1_000_00
    owed = lending.loan("sme-loan-1").outstanding_principal
    assert owed == 1_000_00 + interest
    # Settlement still pays every day's takings in full after the repayment.
    for day in ("2027-01-15", "2027-02-15", "2027-02-16", "2027-03-16"):
        world.service.settle_merchants(day)
    assert world.service.merchant_free_balance(merchant) == 1_000_00
    with pytest.raises(LendingRefusal):
        lending.repay("sme-loan-1", "rp-2", owed)
    part = lending.repay("sme-loan-1", "rp-3", 1_000_00)
    assert (part.status, lending.loan("sme-loan-1").outstanding_principal) == ("active", interest)
    assert world.service.safeguarding_check().in_balance


def test_without_consent_nothing_is_read_and_the_application_is_refused(
    world: PaymentsWorld,
) -> None:
    for consent in (Consent(False), None):
        with pytest.raises(LendingRefusal) as refused:
            _lending(world, consent).apply(_sme(world, "sme-nc", 1_000_00))
        assert refused.value.code == "sme_consent_required"
    with pytest.raises(LendingRefusal):
        _lending(world, Consent(True)).application("sme-nc")


def test_the_amount_is_capped_by_receipts_and_only_merchants_apply(world: PaymentsWorld) -> None:
    lending = _lending(world, Consent(True))
    with pytest.raises(LendingRefusal) as capped:
        lending.apply(_sme(world, "sme-big", 1_800_01))
    assert capped.value.code == "amount_above_receipts_cap"
    assert "180000" in capped.value.message
    assert lending.apply(_sme(world, "sme-cap", 1_800_00)).outcome == "approved"
    with pytest.raises(LendingRefusal) as person:
        lending.apply(_sme(world, "sme-p", 1_000_00, party_id=world.people["alice"]))
    assert person.value.code == "applicant_not_merchant"
    with pytest.raises(LendingRefusal) as term:
        lending.apply(_sme(world, "sme-t", 1_000_00, term_months=36))
    assert term.value.code == "term_invalid"


def test_the_sme_card_decides_with_reasons_and_refuses_prohibited_fields(
    world: PaymentsWorld,
) -> None:
    from tianping.lending.scoring.errors import ProhibitedField

    lending = _lending(world, Consent(True), sme_scorecard())
    outcome = lending.apply(_sme(world, "sme-card", 1_800_00))
    assert outcome.score is not None and outcome.pd_ppm is not None
    assert outcome.model_version == sme_scorecard().primary.version
    if outcome.outcome == "declined":
        assert outcome.reasons and all(r["text_zh"] for r in outcome.reasons)
    with pytest.raises(ProhibitedField):
        lending.apply(_sme(world, "sme-bad", 1_000_00, features={"blood_type": "A"}))


def test_a_high_risk_merchant_is_declined_with_reasons_and_cannot_take_up(
    world: PaymentsWorld,
) -> None:
    lending = _lending(world, Consent(True), FixedScorer(score_points=420, pd=0.4))
    declined = lending.apply(_sme(world, "sme-risky", 1_000_00))
    assert declined.outcome == "declined"
    assert declined.reasons and declined.review_path is not None
    with pytest.raises(LendingRefusal) as refused:
        lending.accept("sme-risky", "sme-loan-r")
    assert refused.value.code == "application_not_approved"
