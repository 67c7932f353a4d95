"""End-to-end loan servicing over HTTP (/v1/lending), on SQLite and PostgreSQL: a co-lent borrower
who never pays goes to default with adverse-change notices, is written off by the operator and a
recovery is booked, with the portfolio and the ledger agreeing throughout; a partner bank reads
its own L3 concentration; a borrower pays off early with the payoff quote. The credit model is
a stand-in (see lending_support.py); the rules, pricing and money are the real ones."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Final

import pytest

from identity_api_support import PASSWORD, IdentityApi, problem_code
from lending_support import rate_text
from payments_api_support import PAYMENTS, Customer, install_lending, install_payments, ok, onboard
from tianping.identity import party_service
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.model import PartnerBankFigures
from tianping.payments.model import local_date

LENDING: Final = "/v1/lending"
OPERATOR: Final = {"Authorization": f"Bearer {'o' * 40}"}
DAY_S: Final = 86_400


@pytest.fixture
def world(identity_api: IdentityApi) -> tuple[IdentityApi, Customer, str]:
    install_payments(identity_api)
    bank = party_service.register_institution(
        identity_api.services.ledger,
        "bank-servicing",
        institution_kind="partner_bank",
        clock=identity_api.clock,
    )
    install_lending(
        identity_api,
        # 25 % of 10,000.00 of tier-1 capital: 2,500.00 with one partner.
        partner_banks={bank: PartnerBankFigures(10_000_00, 1_000_000_00)},
    )
    return identity_api, onboard(identity_api, "lena", bank), bank


def _take_loan(api: IdentityApi, who: Customer, loan_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "application_id": f"app-{loan_id}",
        "amount": 5_000_00,
        "term_months": 6,
        "annual_income": 100_000_00,
        **extra,
    }
    offer = ok(api.as_party(who.token, "POST", "/applications", body, prefix=LENDING))
    assert offer["outcome"] == "approved"
    # The offer shows the cost table (L13) with the same all-in APR.
    table = offer["cost_disclosure"]
    assert table["apr_bps"] == offer["apr_bps"] and table["items"][0]["name"] == "interest"
    assert table["total_cost"] == table["items"][0]["amount"] > 0
    return dict(
        ok(
            api.as_party(
                who.token,
                "POST",
                f"/applications/app-{loan_id}/acceptance",
                {"loan_id": loan_id},
                prefix=LENDING,
            ),
            201,
        )
    )


def _operator(api: IdentityApi, method: str, path: str, body: Any = None) -> Any:
    return api.client.request(method, LENDING + path, json=body, headers=OPERATOR)


def _balance(api: IdentityApi, kind: LendingAccount, funder: str) -> int:
    account = api.services.ledger.lookup_account(chart.account_id(kind, funder, "CNY"))
    if account is None:
        return 0
    return account.debits_posted - account.credits_posted


def test_default_notices_write_off_and_recovery(world: tuple[IdentityApi, Customer, str]) -> None:
    api, lena, bank = world
    loan = _take_loan(api, lena, "loan-d", partner_bank_id=bank)
    first_due = date.fromisoformat(loan["next_due_on"])
    # The bank reads its own concentration: 3,500.00 co-lent against a 2,500.00 limit.
    identity = api.services.identity
    assert identity is not None
    identity.auth.set_password(bank, PASSWORD, role="partner")
    bank_token = api.login(bank).json()["access_token"]
    mine = ok(api.as_party(bank_token, "GET", f"/partners/{bank}/concentration", prefix=LENDING))
    assert (mine["co_lent_balance"], mine["single_partner_limit"]) == (3_500_00, 2_500_00)
    assert not mine["compliant"] and mine["breaches"][0]["excess"] == 1_000_00
    assert api.as_party(
        lena.token, "GET", f"/partners/{bank}/concentration", prefix=LENDING
    ).status_code == (403)
    # Nothing is paid: the operator's daily batches accrue interest, then penalty interest.
    day = date.fromisoformat(loan["disbursed_on"])
    while day < first_due + timedelta(days=3):
        day += timedelta(days=1)
        ok(_operator(api, "POST", f"/accruals/{day.isoformat()}"))
    owed = ok(api.as_party(lena.token, "GET", "/loans/loan-d", prefix=LENDING))
    assert owed["penalty_due"] > 0 and owed["accrued_interest"] > 0
    # Late by a day, then by 400 days: each worse class is a notice for the borrower.
    for late in (1, 400):
        ok(_operator(api, "POST", f"/classifications/{(first_due + timedelta(days=late))}"))
    notices = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/notices", prefix=LENDING)
    )["notices"]
    assert [n["to_tier"] for n in notices] == ["special_mention", "loss"]
    assert all(
        n["review_path"] == f"/v1/identity/parties/{lena.party_id}/review-requests" for n in notices
    )
    assert notices[0]["reasons"][0]["reason_id"] == "N-PAYMENT-OVERDUE"
    # The borrower asks for a human review of the change, through the identity context.
    review = api.as_party(
        lena.token,
        "POST",
        f"/parties/{lena.party_id}/review-requests",
        {
            "request_id": "rev-d",
            "decision_reference": notices[-1]["notice_id"][:64],
            "statement": "I was abroad",
        },
    )
    assert review.status_code == 201, review.text
    book = ok(_operator(api, "GET", "/portfolio"))
    assert book["by_tier"]["loss"]["loans"] == 1 and book["ledger_agrees"]
    # Each funder's receivables against its positions in the sub-ledger (70 %, rounded down).
    by_bank = book["ledger_by_funder"][bank]
    assert by_bank["loan_receivable"] == by_bank["sub_ledger_principal"] == 3_500_00
    assert (
        by_bank["interest_receivable"]
        == by_bank["sub_ledger_interest"]
        == (owed["accrued_interest"] * 7 // 10 + owed["penalty_due"] * 7 // 10)
    )
    # Stage 3: PD one, LGD 45 %, EAD everything owed, rounded half up once.
    assert book["by_stage"]["3"]["ecl"] == (book["by_stage"]["3"]["exposure"] * 45 + 50) // 100
    # Only the operator writes off; the borrower cannot.
    body = {"write_off_id": "wo-d", "on": str(first_due + timedelta(days=400)), "reason": "loss"}
    refused = api.as_party(lena.token, "POST", "/loans/loan-d/write-off", body, prefix=LENDING)
    assert refused.status_code == 403
    written = ok(_operator(api, "POST", "/loans/loan-d/write-off", body))
    total = owed["outstanding_principal"] + owed["accrued_interest"] + owed["penalty_due"]
    assert written["total"] == total == written["loss_expense"]
    assert written["by_funder"][bank]["principal"] == 3_500_00
    assert ok(_operator(api, "POST", "/loans/loan-d/write-off", body))["replayed"] is True
    conflict = _operator(api, "POST", "/loans/loan-d/write-off", {**body, "reason": "other"})
    assert problem_code(conflict) == "write_off_exists_with_different_fields"
    notices = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/notices", prefix=LENDING)
    )["notices"]
    assert notices[-1]["notice"] == "written_off" and notices[-1]["still_owed"] == total
    # The ledger: receivables cleared, each funder's share in its credit losses.
    for funder in (bank, PLATFORM):
        assert _balance(api, LendingAccount.LOAN_RECEIVABLE, funder) == 0
        assert _balance(api, LendingAccount.INTEREST_RECEIVABLE, funder) == 0
    losses = [_balance(api, LendingAccount.CREDIT_LOSSES, funder) for funder in (bank, PLATFORM)]
    assert sum(losses) == total
    # A recovery from the borrower's wallet, as each funder's recovery income.
    recovery = {"recovery_id": "rec-d", "amount": 1_000_00, "on": body["on"]}
    assert (
        api.as_party(
            lena.token, "POST", "/loans/loan-d/recoveries", recovery, prefix=LENDING
        ).status_code
        == 403
    )
    booked = ok(_operator(api, "POST", "/loans/loan-d/recoveries", recovery))
    # By the waterfall it settles the penalty interest, the interest and part of the principal;
    # the bank recovers the change of its position (70 %, rounded down) in each of them.
    left = 1_000_00
    bank_part = 0
    for bucket in ("penalty_due", "accrued_interest", "outstanding_principal"):
        owed_in_bucket = owed[bucket]
        paid = min(left, owed_in_bucket)
        bank_part += owed_in_bucket * 7 // 10 - (owed_in_bucket - paid) * 7 // 10
        left -= paid
    assert booked["recovered"] == 1_000_00 and booked["by_funder"] == {
        bank: bank_part,
        PLATFORM: 1_000_00 - bank_part,
    }
    assert ok(_operator(api, "POST", "/loans/loan-d/recoveries", recovery))["replayed"] is True
    recoveries = [-_balance(api, LendingAccount.RECOVERIES, funder) for funder in (bank, PLATFORM)]
    assert recoveries == [bank_part, 1_000_00 - bank_part]
    assert abs(bank_part - 700_00) <= 3  # within a unit per bucket of the pro-rata share
    book = ok(_operator(api, "GET", "/portfolio"))
    assert book["by_stage"] == {} and book["ledger_agrees"]
    assert book["ledger"]["loan_receivable"] == 0 == book["ledger"]["sub_ledger_principal"]
    # The credit losses to date: the write-off and the recovery, per funder, with the net
    # charge-off and the recovery rate (six places), agreeing with each funder's accounts.
    losses = book["credit_losses"]
    bank_lost = sum(written["by_funder"][bank].values())
    assert losses["loans"]["by_funder"] == {
        bank: {
            "written_off": bank_lost,
            "recovered": bank_part,
            "net_charge_off": bank_lost - bank_part,
            "recovery_rate": rate_text(bank_part, bank_lost),
        },
        PLATFORM: {
            "written_off": total - bank_lost,
            "recovered": 1_000_00 - bank_part,
            "net_charge_off": total - bank_lost - (1_000_00 - bank_part),
            "recovery_rate": rate_text(1_000_00 - bank_part, total - bank_lost),
        },
    }
    assert (losses["loans"]["written_off"], losses["loans"]["recovered"]) == (total, 1_000_00)
    assert losses["loans"]["net_charge_off"] == total - 1_000_00
    assert losses["credit_lines"]["written_off"] == 0
    assert losses["credit_lines"]["recovery_rate"] is None
    assert losses["total"] == {**losses["loans"], "by_funder": losses["loans"]["by_funder"]}
    assert losses["ledger_by_funder"][bank] == {
        "credit_losses": bank_lost,
        "recoveries": bank_part,
        "sub_ledger_written_off": bank_lost,
        "sub_ledger_recovered": bank_part,
    }
    assert losses["ledger_agrees"] and losses["window"] is None
    # Over a window: the write-off's day alone holds the write-off and the recovery (both
    # dated that day); the day after holds neither. A window ending before it starts and a
    # currency that is not a code are refused.
    on = body["on"]
    window = ok(_operator(api, "GET", f"/portfolio?since={on}&until={on}"))["credit_losses"]
    assert window["window"]["since"] == window["window"]["until"] == on
    assert window["window"]["total"] == losses["total"]
    after = str(date.fromisoformat(on) + timedelta(days=1))
    later = ok(_operator(api, "GET", f"/portfolio?since={after}"))["credit_losses"]["window"]
    assert (later["total"]["written_off"], later["total"]["recovered"]) == (0, 0)
    backwards = _operator(api, "GET", f"/portfolio?since={after}&until={on}")
    assert (backwards.status_code, problem_code(backwards)) == (422, "window_invalid")
    assert problem_code(_operator(api, "GET", "/portfolio?currency=cny")) == "invalid_query"
    elsewhere = ok(_operator(api, "GET", "/portfolio?currency=USD"))["credit_losses"]
    assert elsewhere["total"]["written_off"] == 0
    wallet = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/wallet", prefix=PAYMENTS)
    )
    assert wallet["available"] == 5_000_00 - 1_000_00
    quote = api.as_party(lena.token, "GET", f"/loans/loan-d/payoff?on={first_due}", prefix=LENDING)
    assert problem_code(quote) == "loan_not_active"


def test_early_repayment_with_the_payoff_quote_closes_the_loan(
    world: tuple[IdentityApi, Customer, str],
) -> None:
    api, lena, _ = world
    loan = _take_loan(api, lena, "loan-e")
    # A top-up for the interest, through the clearing house.
    rail = {
        "request_id": "t-lena",
        "direction": "top_up",
        "card_fingerprint": lena.card,
        "amount": 100_00,
    }
    ok(api.as_party(lena.token, "POST", "/rails", rail, prefix=PAYMENTS), 202)
    api.clock.advance(60)
    ok(api.client.post(PAYMENTS + "/clearing/callbacks", headers=OPERATOR))
    api.clock.advance(7 * DAY_S - 60)
    identity = api.services.identity
    assert identity is not None
    identity.auth.refresh_revocations()
    token = api.login(lena.party_id).json()["access_token"]
    today = local_date(api.clock())
    assert (today - date.fromisoformat(loan["disbursed_on"])).days == 7
    quote = ok(api.as_party(token, "GET", f"/loans/loan-e/payoff?on={today}", prefix=LENDING))
    assert quote["principal"] == 5_000_00 and quote["interest"] > 0
    assert quote["prepayment_fee"] == 0
    assert quote["total"] == quote["principal"] + quote["interest"]
    paid = ok(
        api.as_party(
            token,
            "POST",
            "/loans/loan-e/repayments",
            {"payment_id": "payoff-e", "amount": quote["total"]},
            prefix=LENDING,
        )
    )
    assert (paid["status"], paid["overpayment"]) == ("repaid", 0)
    assert paid["allocation"]["interest"] == quote["interest"]
    assert ok(api.as_party(token, "GET", "/loans/loan-e", prefix=LENDING))["status"] == "repaid"
    book = ok(_operator(api, "GET", "/portfolio"))
    assert book["ledger_agrees"] and book["ledger"]["interest_receivable"] == 0
    wallet = ok(api.as_party(token, "GET", f"/parties/{lena.party_id}/wallet", prefix=PAYMENTS))
    assert wallet["available"] == 100_00 - quote["interest"]
    # Someone else cannot read the borrower's quote or notices.
    other = api.login(api.customer("reg-other")).json()["access_token"]
    assert problem_code(
        api.as_party(other, "GET", f"/loans/loan-e/payoff?on={today}", prefix=LENDING)
    ) == ("loan_not_found")
    assert (
        api.as_party(other, "GET", f"/parties/{lena.party_id}/notices", prefix=LENDING).status_code
        == 403
    )
