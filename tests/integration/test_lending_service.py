"""Lending on the ledger: decide, accept (disburse to the wallet), accrue, repay; on both
backends. The credit model here is a stand-in with fixed answers, so each test is about the
service (consent, rules, pricing, money); the real scorecards are tested in the scoring tests."""

from __future__ import annotations

from datetime import timedelta
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
from tianping.payments.model import local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    world.person("alice")
    return world


def _service(world: PaymentsWorld, scorer: FixedScorer | None = None) -> LendingService:
    return LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=scorer or FixedScorer(),
    )


def _application(world: PaymentsWorld, application_id: str, **extra: Any) -> Application:
    fields: dict[str, Any] = {
        "application_id": application_id,
        "party_id": world.people["alice"],
        "amount": 10_000_00,
        "term_months": 12,
        "annual_income": 120_000_00,
    }
    fields.update(extra)
    return Application(**fields)


def test_apply_accept_accrue_and_repay(world: PaymentsWorld) -> None:
    world.fund("alice", 100_00)
    lending = _service(world)
    offer = lending.apply(_application(world, "app-1"))
    assert offer.outcome == "approved", offer
    assert offer.rate_bps is not None and offer.apr_bps is not None
    assert offer.apr_bps >= offer.rate_bps  # daily interest compounds above the nominal rate
    assert lending.apply(_application(world, "app-1")).replayed
    loan = lending.accept("app-1", "loan-1")
    alice = world.people["alice"]
    assert world.service.balance(alice) == 10_100_00
    assert world.service.safeguarding_check().in_balance
    day = local_date(world.clock())
    report = lending.accrue(day + timedelta(days=1))
    assert report.loans == 1
    interest = report.interest
    assert interest == 10_000_00 * loan.rate_bps // 3_650_000
    repaid = lending.repay("loan-1", "r-1", 500_00)
    assert repaid.allocation["interest"] == interest
    assert repaid.allocation["principal"] == 500_00 - interest
    assert lending.repay("loan-1", "r-1", 500_00).replayed
    assert lending.loan("loan-1").outstanding_principal == 10_000_00 - (500_00 - interest)
    assert world.service.balance(alice) == 9_600_00
    assert world.service.safeguarding_check().in_balance
    # Paying off everything closes the loan; more than is owed stays in the wallet.
    owed = lending.loan("loan-1").outstanding_principal
    final = lending.repay("loan-1", "r-2", owed + 1_00)
    assert (final.status, final.overpayment) == ("repaid", 1_00)
    assert world.service.balance(alice) == 9_600_00 - owed
    with pytest.raises(LendingRefusal) as taken:
        lending.accept("app-1", "loan-2")
    assert taken.value.code == "offer_taken"


def test_a_co_lent_loan_books_each_funders_share(world: PaymentsWorld) -> None:
    lending = _service(world)
    offer = lending.apply(_application(world, "app-co", partner_bank_id="bank-7"))
    assert offer.outcome == "approved", offer
    lending.accept("app-co", "loan-co")

    def receivable(funder: str) -> int:
        account = world.ledger.get_account(
            chart.account_id(LendingAccount.LOAN_RECEIVABLE, funder, "CNY")
        )
        return account.debits_posted - account.credits_posted

    assert (receivable("bank-7"), receivable(PLATFORM)) == (7_000_00, 3_000_00)
    assert world.service.safeguarding_check().in_balance


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ({"is_student": True}, "cn.lending.student_microloan_ban"),
        ({"has_income": False, "annual_income": 0}, "cn.lending.borrower_income_required"),
        ({"amount": 400_000_00, "annual_income": 3_000_000_00}, "cn.lending"),
    ],
)
def test_rule_refusals_decline_with_a_review_path(
    world: PaymentsWorld, extra: dict[str, Any], rule: str
) -> None:
    declined = _service(world).apply(_application(world, "app-x", **extra))
    assert declined.outcome == "declined"
    assert any(rule_id.startswith(rule) for rule_id in declined.rule_ids), declined.rule_ids
    assert declined.review_path == f"/v1/identity/parties/{world.people['alice']}/review-requests"


def test_a_high_risk_applicant_is_declined_with_the_scores_reasons(world: PaymentsWorld) -> None:
    declined = _service(world, FixedScorer(score_points=420, pd=0.31)).apply(
        _application(world, "app-risky")
    )
    assert declined.outcome == "declined"
    assert [reason["reason_id"] for reason in declined.reasons] == [
        "R-INCOME-LOW",
        "R-HISTORY-SHORT",
    ]
    with pytest.raises(LendingRefusal) as refused:
        _service(world).accept("app-risky", "loan-r")
    assert refused.value.code == "application_not_approved"


def test_without_consent_the_score_uses_application_data_only(world: PaymentsWorld) -> None:
    scorer = FixedScorer()

    class NoConsent:
        def service_available(self, party_id: str, service: str) -> Any:
            return type("Check", (), {"available": False})()

    lending = LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=scorer,
        consent=NoConsent(),
    )
    outcome = lending.apply(_application(world, "app-nc"))
    assert scorer.seen_sources == [frozenset({"application"})]
    assert outcome.sources == ("application",)


def test_the_platform_scorecard_decides_with_reasons_and_a_fallback(world: PaymentsWorld) -> None:
    """The default scorer: trained on the synthetic population, it uses the person's payments
    only with consent and otherwise falls back to the application-only card."""
    from tianping.lending.synthetic import platform_scorecard

    world.fund("alice", 1_000_00)
    for index in range(3):
        world.person(f"friend{index}")
        world.pay(f"p-{index}", "alice", f"friend{index}", 10_00, auth_factors=2)

    class Consent:
        def __init__(self, available: bool) -> None:
            self.available = available

        def service_available(self, party_id: str, service: str) -> Any:
            return self

    outcomes = {}
    for consented in (True, False):
        lending = LendingService(
            world.ledger,
            world.clock,
            rules=RulesService(world.ledger, cached_rulebook("cn")),
            scorer=platform_scorecard(),
            consent=Consent(consented),
            profile=world.service.payer_profile,
        )
        outcomes[consented] = lending.apply(_application(world, f"app-{consented}"))
    assert outcomes[True].sources == ("application", "bureau", "platform_payments")
    assert outcomes[False].sources == ("application",)
    assert outcomes[True].model_version != outcomes[False].model_version
    assert world.service.payer_profile(world.people["alice"])["payments_90d_count"] == 3


def test_the_bureau_is_queried_with_a_consent_token_and_logs_it(world: PaymentsWorld) -> None:
    import secrets

    from tianping.lending.bureau import BureauReport, ConsentTokenIssuer
    from tianping.lending.bureau_sim import SimulatedBureau
    from tianping.lending.service import BureauAccess
    from tianping.lending.synthetic import platform_scorecard

    key = secrets.token_bytes(32)
    clock_s = lambda: world.clock() // 1_000_000_000  # noqa: E731 - a tiny adapter
    bureau = SimulatedBureau(clock_s, key)
    alice = world.people["alice"]
    bureau.report(
        BureauReport(
            report_id="rep-1",
            reporter_id="bank-9",
            subject=alice,
            reported_at=clock_s() - 10,
            data={"delinquencies_24m": 4, "inquiries_6m": 9},
            consent_reference="consent-1",
        )
    )

    class Consented:
        available = True

        def service_available(self, party_id: str, service: str) -> Any:
            return self

    def lending(with_bureau: bool) -> LendingService:
        access = BureauAccess(bureau, ConsentTokenIssuer(key), "tianping-lender", clock_s)
        return LendingService(
            world.ledger,
            world.clock,
            rules=RulesService(world.ledger, cached_rulebook("cn")),
            scorer=platform_scorecard(),
            consent=Consented(),
            bureau=access if with_bureau else None,
        )

    plain = lending(False).apply(_application(world, "app-plain"))
    seen = lending(True).apply(_application(world, "app-bureau"))
    assert seen.score is not None and plain.score is not None
    assert seen.score < plain.score  # four delinquencies and nine inquiries cost points
    (entry,) = bureau.query_log(alice, 10)
    assert (entry.lender_id, entry.purpose, entry.outcome) == (
        "tianping-lender",
        "credit_assessment",
        "answered",
    )


def test_days_past_due_drive_the_class_the_stage_and_the_provision(world: PaymentsWorld) -> None:
    """A borrower who pays nothing: one day after the first due date the loan is special
    mention in stage 2; 92 days after, substandard in stage 3; paying what was due cures it."""
    from datetime import date

    world.fund("alice", 10_000_00)
    lending = _service(world)
    assert lending.apply(
        _application(world, "app-late", amount=3_000_00, term_months=6)
    ).outcome == ("approved")
    loan = lending.accept("app-late", "loan-late")
    assert loan.next_due_on is not None
    first_due = date.fromisoformat(loan.next_due_on)
    assert lending.classify(first_due) == 1
    assert (lending.loan("loan-late").tier, lending.loan("loan-late").stage) == ("normal", 1)
    lending.classify(first_due + timedelta(days=1))
    late = lending.loan("loan-late")
    assert (late.days_past_due, late.tier, late.stage) == (1, "special_mention", 2)
    lending.classify(first_due + timedelta(days=92))
    worse = lending.loan("loan-late")
    assert (worse.days_past_due, worse.tier, worse.stage) == (92, "substandard", 3)
    book = lending.portfolio()
    assert book["by_stage"]["3"]["loans"] == 1
    assert book["ecl_total"] == (3_000_00 * 45 + 50) // 100  # stage 3: PD 1, LGD 45%
    # With interest accrued day by day up to the due date, paying more than the first
    # instalment cures it: nothing is overdue any more.
    lending.accrue_through(first_due, date.fromisoformat(loan.disbursed_on))
    lending.repay("loan-late", "cure", 600_00)
    lending.classify(first_due + timedelta(days=1))
    cured = lending.loan("loan-late")
    assert (cured.days_past_due, cured.tier, cured.stage) == (0, "normal", 1)


def test_equal_principal_offer_schedule_and_apr(world: PaymentsWorld) -> None:
    """等额本金: the same principal every month, so instalments fall as interest does; the
    offer's all-in APR is priced on that schedule, and the loan's instalments are the offer's."""
    lending = _service(world)
    annuity = lending.apply(_application(world, "app-annuity"))
    principal = lending.apply(
        _application(world, "app-principal", repayment_method="equal_principal")
    )
    assert (annuity.outcome, principal.outcome) == ("approved", "approved")
    assert principal.repayment_method == "equal_principal"
    assert lending.application("app-principal").repayment_method == "equal_principal"
    # The same rate on a different schedule: different cash flows, each APR solved on its own.
    assert annuity.rate_bps == principal.rate_bps
    assert principal.apr_bps is not None and principal.apr_bps >= principal.rate_bps
    lending.accept("app-principal", "loan-principal")
    plan = lending.schedule("loan-principal")
    assert plan["repayment_method"] == "equal_principal"
    parts = [row["principal"] for row in plan["instalments"]]
    assert len(parts) == 12 and sum(parts) == 10_000_00
    assert len(set(parts[:-1])) == 1 and parts[-1] >= parts[0]
    totals = [row["principal"] + row["interest"] for row in plan["instalments"]]
    assert totals[0] > totals[-2]  # falling instalments (the last carries the remainder)
    lending.accept("app-annuity", "loan-annuity")
    annuity_totals = [
        row["principal"] + row["interest"]
        for row in lending.schedule("loan-annuity")["instalments"]
    ]
    # Paying principal down faster costs less interest in all.
    interest = sum(row["interest"] for row in plan["instalments"])
    annuity_interest = sum(annuity_totals) - 10_000_00
    assert interest < annuity_interest
    # A replay with another method is another application, refused under the same id.
    with pytest.raises(LendingRefusal) as conflict:
        lending.apply(_application(world, "app-annuity", repayment_method="equal_principal"))
    assert conflict.value.code == "request_conflict"
    with pytest.raises(LendingRefusal) as invalid:
        lending.apply(_application(world, "app-x", repayment_method="balloon"))
    assert invalid.value.code == "repayment_method_invalid"


def test_disbursement_on_to_the_borrowers_own_card(world: PaymentsWorld) -> None:
    """ "To the bank card": the wallet credit, then at once a withdrawal to the borrower's own
    bound card through the clearing house; retrying pays nothing twice; a card that is not the
    borrower's is refused by the payments context's P4 check."""
    lending = LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        card_rails=world.service,
    )
    alice = world.people["alice"]
    before = world.service.balance(alice)
    assert lending.apply(_application(world, "app-card")).outcome == "approved"
    loan = lending.accept("app-card", "loan-card")
    payout = lending.disburse_to_card("loan-card", world.cards["alice"])
    assert (payout["amount"], payout["state"]) == (loan.principal, "submitted")
    assert lending.disburse_to_card("loan-card", world.cards["alice"]) == payout  # a retry
    # The withdrawal holds the money at once; the clearing house's answer posts it.
    assert world.service.balance(alice) == before
    world.clock.advance(30)
    world.service.process_callbacks()
    assert world.service.rail_request(payout["request_id"]).state == "succeeded"
    assert world.service.balance(alice) == before
    assert world.service.safeguarding_check().in_balance
    # The loan is paid out once: another card for the same loan is another request.
    with pytest.raises(LendingRefusal) as again:
        lending.disburse_to_card("loan-card", "ab" * 32)
    assert again.value.code == "request_conflict"
    # A card that is not bound in the borrower's name is refused (P4); the money stays put.
    assert lending.apply(_application(world, "app-card-2")).outcome == "approved"
    lending.accept("app-card-2", "loan-card-2")
    with pytest.raises(LendingRefusal) as not_hers:
        lending.disburse_to_card("loan-card-2", "ab" * 32)
    assert not_hers.value.code == "card_not_bound"
    assert world.service.balance(alice) == before + 10_000_00  # the second loan's principal
