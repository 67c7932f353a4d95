"""Lending over HTTP, under /v1/lending.

A customer applies for itself (a consumer instalment loan), a merchant for itself (an SME
working-capital loan, `product: sme`, decided on its own acquiring cash flows with its
consent); each reads its own applications and loans, takes up an approved offer (shown with its
cost-disclosure table, L13), reads a payoff quote and repays, and reads its adverse-change
notices; a partner bank reads the loans it co-funds and its own co-lending concentration (L3);
supervisors and auditors read every application, loan and concentration; the operator runs the
daily accrual, the SME sweep (before the day's merchant settlement) and classification, writes
loans off and books recoveries. A declined application
and an adverse-change notice answer with their reasons and the path to ask for a human review
(D4, G5, G7). Amounts are integers of minor units.

Credit lines: an approved `credit_line` offer is opened as a line (`POST
/applications/{id}/credit-line`); its holder (and the partner bank that co-funds it) reads the
line, its statements and its transactions (page by page); the holder repays it, turns a bill
into instalments after a quote that shows the all-in APR, and closes it once repaid; the
operator issues a day's statements, classifies the lines (a past-due line is frozen and its
holder notified), freezes and unfreezes a line, writes one off and books recoveries on it.
Paying a merchant on the line is a payment (`POST /v1/payments` with `funding_source:
"credit_line"`), never a default; a merchant's refund of it (`POST /v1/payments/{id}/refunds`)
goes back to the line (on a written-off line, as a recovery).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Strict, StringConstraints
from pydantic import Field as PydanticField

from tianping.api.identity_routes import PartyIdPath, PartyIdText
from tianping.api.ledger_routes import ServicesDependency, get_services
from tianping.api.problems import ApiProblem
from tianping.api.schemas import PROBLEM_RESPONSES, Day
from tianping.api.security import (
    FILTERED_BY_HANDLER,
    PARTY_IN_PATH,
    Access,
    OwnershipRule,
    acting_party,
    require,
)
from tianping.lending.credit_lines import STATEMENT_DAY_MAX, InstalmentQuote
from tianping.lending.line_service import (
    STATEMENTS_PAGE_MAX,
    TRANSACTIONS_PAGE_MAX,
)
from tianping.lending.line_store import LineRow
from tianping.lending.loan_book import WRITE_OFF_REASON_MAX
from tianping.lending.model import Application
from tianping.lending.service import NOTICES_PAGE_MAX, LendingService
from tianping.lending.sweep import SWEEP_BPS_MAX

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/lending",
    tags=["lending"],
    responses=PROBLEM_RESPONSES,
)

RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]


def _lending(request: Request) -> LendingService:
    return get_services(request).lending


def _application_parties(request: Request) -> Collection[str]:
    return (_lending(request).application(str(request.path_params["application_id"])).party_id,)


def _loan_parties(request: Request) -> Collection[str]:
    loan = _lending(request).loan(str(request.path_params["loan_id"]))
    return (loan.party_id, loan.partner_bank_id)


def _bank_in_path(request: Request) -> Collection[str]:
    return (str(request.path_params["bank_id"]),)


def _line_parties(request: Request) -> Collection[str]:
    line = _lending(request).line(str(request.path_params["line_id"]))
    return (line.party_id, line.partner_bank_id)


# An application is its applicant's; a loan or a credit line is its borrower's and its
# co-funding bank's; a bank's concentration is the bank's own.
APPLICATION_IN_PATH: Final = OwnershipRule(
    "applicant", _application_parties, "application_not_found"
)
LOAN_IN_PATH: Final = OwnershipRule("borrower or funding bank", _loan_parties, "loan_not_found")
BANK_IN_PATH: Final = OwnershipRule("partner bank in path", _bank_in_path)
LINE_IN_PATH: Final = OwnershipRule(
    "line holder or funding bank", _line_parties, "credit_line_not_found"
)

Applicant = Annotated[
    Access, Depends(require("lending:write", own="lending:apply:own", owner=FILTERED_BY_HANDLER))
]
ApplicantOfApplication = Annotated[
    Access, Depends(require("lending:write", own="lending:apply:own", owner=APPLICATION_IN_PATH))
]
Borrower = Annotated[
    Access, Depends(require("lending:write", own="lending:apply:own", owner=LOAN_IN_PATH))
]
_READ_APPLICATION: Final = [
    Depends(require("lending:read", own="lending:read:own", owner=APPLICATION_IN_PATH))
]
_READ_LOAN: Final = [Depends(require("lending:read", own="lending:read:own", owner=LOAN_IN_PATH))]
LineHolder = Annotated[
    Access, Depends(require("lending:write", own="lending:apply:own", owner=LINE_IN_PATH))
]
_READ_LINE: Final = [Depends(require("lending:read", own="lending:read:own", owner=LINE_IN_PATH))]
_OPERATE: Final = [Depends(require("lending:write"))]
_READ_NOTICES: Final = [
    Depends(require("lending:read", own="lending:read:own", owner=PARTY_IN_PATH))
]
_READ_CONCENTRATION: Final = [
    Depends(require("lending:read", own="lending:read:own", owner=BANK_IN_PATH))
]


def _service(services: ServicesDependency) -> LendingService:
    return services.lending


Lending = Annotated[LendingService, Depends(_service)]


# Money is a JSON integer of minor units: strict, so that `107.0` or `"107"` is refused rather
# than quietly converted.
LoanAmount = Annotated[int, Strict(), PydanticField(ge=1, le=10**10)]
Income = Annotated[int, Strict(), PydanticField(ge=0, le=10**12)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationRequest(_Strict):
    application_id: RequestId
    amount: LoanAmount
    term_months: Annotated[int, PydanticField(ge=1, le=60)]
    annual_income: Income
    has_income: bool = True
    is_student: bool = False
    partner_bank_id: PartyIdText | None = None
    applicant_id: PartyIdText | None = None
    # `sme`: a merchant's working-capital loan; `annual_income` is then its stated turnover.
    # `credit_line`: a revolving credit line, its limit the amount approved.
    product: Literal["instalment", "sme", "credit_line"] = "instalment"
    # A loan's schedule: 等额本息 (the same total each month) or 等额本金 (the same principal
    # each month). A credit line has none.
    repayment_method: Literal["equal_instalment", "equal_principal"] = "equal_instalment"


class AcceptRequest(_Strict):
    loan_id: RequestId
    # An SME loan only: the share of each day's takings (basis points) that repays the loan
    # before settlement; 0 for none.
    sweep_bps: Annotated[int, PydanticField(ge=0, le=SWEEP_BPS_MAX)] = 0
    # A consumer loan only: pay the principal on to this bank card, bound in the borrower's own
    # name (P4), instead of leaving it in the wallet.
    card_fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class OpenLineRequest(_Strict):
    line_id: RequestId
    statement_day: Annotated[int, PydanticField(ge=1, le=STATEMENT_DAY_MAX)] = 1


class InstalmentQuoteRequest(_Strict):
    months: Annotated[int, PydanticField(ge=1, le=36)]


class InstalmentRequest(_Strict):
    plan_id: RequestId
    months: Annotated[int, PydanticField(ge=1, le=36)]


class RepaymentRequest(_Strict):
    payment_id: RequestId
    amount: LoanAmount


class WriteOffRequest(_Strict):
    write_off_id: RequestId
    on: Day
    reason: Annotated[str, StringConstraints(min_length=1, max_length=WRITE_OFF_REASON_MAX)]


class RecoveryRequest(_Strict):
    recovery_id: RequestId
    amount: LoanAmount
    on: Day


def _plain(value: Any) -> dict[str, Any]:
    document = dataclasses.asdict(value)
    for name in ("decision_id",):
        if document.get(name) is not None:
            document[name] = str(document[name])
    return document


@router.post("/applications")
def apply(body: ApplicationRequest, access: Applicant, lending: Lending) -> dict[str, Any]:
    """Apply for an instalment loan, or as a merchant for an SME working-capital loan: the
    decision, with the all-in APR when approved and the reasons and the human-review path when
    declined."""
    outcome = lending.apply(
        Application(
            application_id=body.application_id,
            party_id=acting_party(access, body.applicant_id),
            amount=body.amount,
            term_months=body.term_months,
            annual_income=body.annual_income,
            has_income=body.has_income,
            is_student=body.is_student,
            partner_bank_id=body.partner_bank_id,
            product=body.product,
            repayment_method=body.repayment_method,
        )
    )
    return _plain(outcome)


@router.get("/applications/{application_id}", dependencies=_READ_APPLICATION)
def get_application(application_id: RequestId, lending: Lending) -> dict[str, Any]:
    return _plain(lending.application(application_id))


@router.post("/applications/{application_id}/acceptance", status_code=201)
def accept(
    application_id: RequestId,
    body: AcceptRequest,
    access: ApplicantOfApplication,
    lending: Lending,
) -> dict[str, Any]:
    """Take up an approved offer: the loan is booked and its principal paid to the wallet (to
    the merchant's settlement account for an SME loan, which may agree to a sweep of its
    takings, `sweep_bps`), and on to the borrower's own bank card when `card_fingerprint` is
    given (`card_payout`: the clearing house's answer arrives later; a decline leaves the money
    in the wallet). Retrying the same acceptance neither books nor pays twice."""
    loan = lending.accept(application_id, body.loan_id, body.sweep_bps)
    document = dataclasses.asdict(loan) | {"sweep_bps": body.sweep_bps}
    if body.card_fingerprint is not None:
        document["card_payout"] = lending.disburse_to_card(loan.loan_id, body.card_fingerprint)
    return document


@router.get("/loans/{loan_id}", dependencies=_READ_LOAN)
def get_loan(loan_id: RequestId, lending: Lending) -> dict[str, Any]:
    return dataclasses.asdict(lending.loan(loan_id)) | {
        "sweep_bps": lending.loan_sweep_bps(loan_id)
    }


@router.post("/loans/{loan_id}/repayments")
def repay(
    loan_id: RequestId, body: RepaymentRequest, access: Borrower, lending: Lending
) -> dict[str, Any]:
    """Repay from the borrower's wallet, or a merchant's settlement account for an SME loan
    (fees, penalty interest, interest, then principal)."""
    if not access.unrestricted and lending.loan(loan_id).party_id != access.party:
        raise ApiProblem("forbidden", "only the borrower repays from its wallet")
    return dataclasses.asdict(lending.repay(loan_id, body.payment_id, body.amount))


@router.post("/accruals/{day}", dependencies=_OPERATE)
def accrue(day: Day, lending: Lending) -> dict[str, Any]:
    """Accrue one day's interest over the whole book (set-based; idempotent per day)."""
    return dataclasses.asdict(lending.accrue(day))


@router.post("/sweeps/{day}", dependencies=_OPERATE)
def sweep(day: Day, lending: Lending) -> dict[str, Any]:
    """Repay every SME loan with a sweep from its share of the day's takings; run before the
    day's merchant settlement, which then pays out the rest. Idempotent per loan and day."""
    return dataclasses.asdict(lending.sweep_repayments(day))


@router.post("/classifications/{day}", dependencies=_OPERATE)
def classify(day: Day, lending: Lending) -> dict[str, int]:
    """Days past due, the five-tier class and the expected-loss stage of the whole book on a
    day (set-based)."""
    return {"loans": lending.classify(day)}


@router.get("/portfolio", dependencies=[Depends(require("lending:read"))])
def portfolio(
    lending: Lending,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY",
    since: Day | None = None,
    until: Day | None = None,
) -> dict[str, Any]:
    """The active book by five-tier class and stage, with each stage's expected-loss provision;
    the credit losses to date (written off, recovered, net charge-offs and recovery rates of
    loans and lines, by funder, checked against the ledger), and over `since`..`until`
    (inclusive) when either is given."""
    return lending.portfolio(currency, since=since, until=until)


@router.get("/loans/{loan_id}/schedule", dependencies=_READ_LOAN)
def get_schedule(loan_id: RequestId, lending: Lending) -> dict[str, Any]:
    """The loan's instalments (due date, principal, interest) and what is paid of each."""
    return lending.schedule(loan_id)


@router.get("/loans/{loan_id}/payoff", dependencies=_READ_LOAN)
def payoff(loan_id: RequestId, on: Day, lending: Lending) -> dict[str, Any]:
    """What settles the loan on `on` (principal, interest to that day, penalty interest, fees;
    no prepayment fee): repaying `total` that day closes the loan."""
    return dataclasses.asdict(lending.quote_payoff(loan_id, on))


@router.post("/loans/{loan_id}/write-off", dependencies=_OPERATE)
def write_off(loan_id: RequestId, body: WriteOffRequest, lending: Lending) -> dict[str, Any]:
    """Write a loan off (loss class, or past the configured days past due): each funder's share
    to its credit losses; the borrower gets a notice. Idempotent by `write_off_id`."""
    return dataclasses.asdict(lending.write_off(loan_id, body.write_off_id, body.on, body.reason))


@router.post("/loans/{loan_id}/recoveries", dependencies=_OPERATE)
def record_recovery(loan_id: RequestId, body: RecoveryRequest, lending: Lending) -> dict[str, Any]:
    """Book cash recovered on a written-off loan from the borrower's wallet, as each funder's
    recovery income. Idempotent by `recovery_id`."""
    return dataclasses.asdict(
        lending.record_recovery(loan_id, body.recovery_id, body.amount, body.on)
    )


@router.get("/parties/{party_id}/notices", dependencies=_READ_NOTICES)
def notices(
    party_id: PartyIdPath,
    lending: Lending,
    limit: Annotated[int, PydanticField(ge=1, le=NOTICES_PAGE_MAX)] = NOTICES_PAGE_MAX,
) -> dict[str, Any]:
    """A borrower's adverse-change notices (a worse class, a write-off), with their reasons and
    the path to ask for a human review."""
    return {"notices": lending.notices(party_id, limit)}


@router.get("/partners/{bank_id}/concentration", dependencies=_READ_CONCENTRATION)
def partner_concentration(bank_id: RequestId, lending: Lending) -> dict[str, Any]:
    """A partner bank's co-lending balance with the platform against the L3 limits."""
    return lending.concentration_report(bank_id)


# -- credit lines ----------------------------------------------------------------------------


def _line(line: LineRow) -> dict[str, Any]:
    document = dataclasses.asdict(line)
    document["owed"] = line.owed
    document["available"] = line.available
    return document


def _quote(quote: InstalmentQuote) -> dict[str, Any]:
    """The quote as shown to the customer: the all-in APR first (L9), then the instalments."""
    return {
        "apr_bps": quote.apr_bps,
        "apr": str(quote.apr),
        "amount": quote.amount,
        "months": quote.months,
        "total_fee": quote.total_fee,
        "monthly_fee_rate": str(quote.monthly_fee_rate),
        "instalments": [
            {
                "number": i.number,
                "bill_on": i.bill_on.isoformat(),
                "due_on": i.due_on.isoformat(),
                "principal": i.principal,
                "fee": i.fee,
            }
            for i in quote.instalments
        ],
        "cost_items": [
            {
                "name": item.name,
                "payee": item.payee,
                "standard": item.standard,
                "amount": item.amount,
            }
            for item in quote.disclosure.items
        ],
    }


def _holder_only(access: Access, lending: LendingService, line_id: str) -> None:
    # The funding bank may read the line, but only its holder repays it or changes its bills.
    if not access.unrestricted and lending.line(line_id).party_id != access.party:
        raise ApiProblem("forbidden", "only the line's holder may do this")


@router.post("/applications/{application_id}/credit-line", status_code=201)
def open_line(
    application_id: RequestId,
    body: OpenLineRequest,
    access: ApplicantOfApplication,
    lending: Lending,
) -> dict[str, Any]:
    """Take up an approved credit-line offer: the line is opened with the approved amount as
    its limit; it needs a live consent to credit-bureau reporting (L5)."""
    return _line(lending.open_line(application_id, body.line_id, body.statement_day))


@router.get("/credit-lines/{line_id}", dependencies=_READ_LINE)
def get_line(line_id: RequestId, lending: Lending) -> dict[str, Any]:
    return _line(lending.line(line_id))


@router.get("/credit-lines/{line_id}/statements", dependencies=_READ_LINE)
def list_statements(
    line_id: RequestId,
    lending: Lending,
    limit: Annotated[int, Query(ge=1, le=STATEMENTS_PAGE_MAX)] = 12,
) -> list[dict[str, Any]]:
    """The line's statements, newest first."""
    return [dataclasses.asdict(row) for row in lending.line_statements(line_id, limit)]


@router.get("/credit-lines/{line_id}/statements/{statement_date}", dependencies=_READ_LINE)
def get_statement(line_id: RequestId, statement_date: Day, lending: Lending) -> dict[str, Any]:
    return dataclasses.asdict(lending.line_statement(line_id, statement_date))


@router.post("/credit-lines/{line_id}/repayments")
def repay_line(
    line_id: RequestId, body: RepaymentRequest, access: LineHolder, lending: Lending
) -> dict[str, Any]:
    """Repay the line from the holder's wallet: fees, interest, then principal, oldest first."""
    _holder_only(access, lending, line_id)
    return dataclasses.asdict(lending.repay_line(line_id, body.payment_id, body.amount))


@router.post("/credit-lines/{line_id}/statements/{statement_date}/instalment-quotes")
def quote_instalments(
    line_id: RequestId,
    statement_date: Day,
    body: InstalmentQuoteRequest,
    access: LineHolder,
    lending: Lending,
) -> dict[str, Any]:
    """What turning the bill into instalments would cost, with the all-in APR (writes nothing)."""
    _holder_only(access, lending, line_id)
    return _quote(lending.quote_statement_instalments(line_id, statement_date, body.months))


@router.post("/credit-lines/{line_id}/statements/{statement_date}/instalments", status_code=201)
def convert_statement(
    line_id: RequestId,
    statement_date: Day,
    body: InstalmentRequest,
    access: LineHolder,
    lending: Lending,
) -> dict[str, Any]:
    """Accept the quote: the bill's principal becomes monthly instalments (price checked
    against the cap in force by `loan.price`)."""
    _holder_only(access, lending, line_id)
    plan = lending.convert_statement(line_id, statement_date, body.plan_id, body.months)
    document = dataclasses.asdict(plan)
    document.pop("digest")
    if document["decision_id"] is not None:
        document["decision_id"] = str(document["decision_id"])
    return document


@router.post("/statement-runs/{day}", dependencies=_OPERATE)
def issue_statements(day: Day, lending: Lending) -> dict[str, Any]:
    """Issue every credit-line statement due on a day (idempotent per line and date)."""
    return dataclasses.asdict(lending.issue_statements(day))


@router.post("/credit-lines/{line_id}/freeze", dependencies=_OPERATE)
def freeze_line(line_id: RequestId, lending: Lending) -> dict[str, Any]:
    """Freeze a line (the operator): no draws; still billed, repaid and refunded."""
    return _line(lending.freeze_line(line_id))


@router.post("/credit-lines/{line_id}/unfreeze", dependencies=_OPERATE)
def unfreeze_line(line_id: RequestId, lending: Lending) -> dict[str, Any]:
    """Lift a freeze (the operator); refused while the line is past due or the holder's
    credit-bureau-reporting consent is withdrawn (L5)."""
    return _line(lending.unfreeze_line(line_id))


@router.post("/credit-lines/{line_id}/closure")
def close_line(line_id: RequestId, access: LineHolder, lending: Lending) -> dict[str, Any]:
    """Close a repaid line (its holder); refused while anything is owed."""
    _holder_only(access, lending, line_id)
    return _line(lending.close_line(line_id))


@router.get("/credit-lines/{line_id}/transactions", dependencies=_READ_LINE)
def list_line_transactions(
    line_id: RequestId,
    lending: Lending,
    after: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=TRANSACTIONS_PAGE_MAX)] = 50,
) -> dict[str, Any]:
    """The line's transactions in the order they were written (draws, repayments, refunds,
    charges, conversions), one page at a time; `next` is the cursor of the next page."""
    page, cursor = lending.line_transactions(line_id, after, limit)
    return {"transactions": [dataclasses.asdict(entry) for entry in page], "next": cursor}


@router.post("/credit-line-classifications/{day}", dependencies=_OPERATE)
def classify_lines(day: Day, lending: Lending) -> dict[str, Any]:
    """Days past due, class and stage of every line on a day; past-due lines are frozen and
    a line in a worse class gets a notice (set-based; a second run adds no notice)."""
    return dataclasses.asdict(lending.classify_lines(day))


class LineWriteOffRequest(_Strict):
    write_off_id: RequestId
    on: Day
    reason: Annotated[str, StringConstraints(min_length=1, max_length=WRITE_OFF_REASON_MAX)]


@router.post("/credit-lines/{line_id}/write-off", dependencies=_OPERATE)
def write_off_line(
    line_id: RequestId, body: LineWriteOffRequest, lending: Lending
) -> dict[str, Any]:
    """Write a line off (loss class, or past the days-past-due threshold): each funder's part
    to its credit losses; the holder gets a notice. Idempotent by `write_off_id`."""
    return dataclasses.asdict(
        lending.write_off_line(line_id, body.write_off_id, body.on, body.reason)
    )


@router.post("/credit-lines/{line_id}/recoveries", dependencies=_OPERATE)
def record_line_recovery(
    line_id: RequestId, body: RecoveryRequest, lending: Lending
) -> dict[str, Any]:
    """Book cash recovered on a written-off line from the holder's wallet, as each funder's
    recovery income, split so that a line recovered in full returns to each funder what it
    wrote off. Idempotent by `recovery_id`."""
    return dataclasses.asdict(
        lending.record_line_recovery(line_id, body.recovery_id, body.amount, body.on)
    )
