"""Credit-line use cases on the ledger: open a line, draw on it at checkout, take a merchant's
refund back onto it, issue statements, repay, turn a bill into instalments, freeze, unfreeze
and close it, classify overdue lines (frozen while past due, with notices), write a line off
and book recoveries on it. `LendingService` inherits them (`CreditLines`).

Every use case runs in one ledger unit of work; a draw runs in the *payment's* unit of work
(through the payments port `CreditLineFunding`), so the draw and the merchant payment commit
together or not at all.

Money on the ledger, per funder (the partner bank's share, up to 70 %, and the platform's, at
least 30 %, as for loans; L1, L3):

* a draw pays the merchant from the funder's line receivable (debit line receivable, credit
  the merchant payable), and the cash behind the merchant's takings enters the client-money
  reserve from the funder (the bank through the clearing house, the platform from its own
  account), so safeguarding stays whole and the payer's wallet is never touched;
* interest and instalment fees charged on a statement: debit line charges receivable, credit
  interest income or fee income;
* a repayment from the wallet credits the receivables (fees and interest first, then
  principal) and the cash leaves the reserve to each funder;
* cash recovered on a written-off line (from the wallet, or a merchant's refund of a purchase
  on it) is each funder's recovery income, and the cash leaves the reserve to each funder.

Each bucket's repayment is split between the funders pro rata to what each is owed in it, so a
funder is never repaid more than it is owed whatever the rounding of earlier charges.

L5: a line is opened only for a person with a live consent to credit-bureau reporting (the
identity context's `credit_line` service check); L6: the line is a funding source only when the
payer chose it explicitly (the payments context and the rules engine see to that).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from tianping.ledger.model import NewTransfer
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger, LedgerWrite
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount, LendingCode
from tianping.lending.credit_lines import (
    DUE_DAY_OFFSET,
    LINE_THRESHOLDS,
    MIN_PAYMENT_FLOOR,
    MIN_PAYMENT_RATIO,
    BillDue,
    Bucket,
    InstalmentQuote,
    LineOwed,
    LineRecoveryAmounts,
    WrittenOff,
    allocate_refund,
    convertible_principal,
    first_statement_date,
    line_standing,
    line_terms,
    next_statement_date,
    posting_date,
    quote_instalments,
    recover_line,
    split_charge,
    split_repayment,
)
from tianping.lending.line_store import (
    LineRow,
    LineStore,
    LineTransaction,
    PlanRow,
    StatementRow,
    TransactionEntry,
)
from tianping.lending.loan_book import (
    FALLBACK_PD_12_MONTH,
    check_write_off_reason,
    ecl,
    line_class_change_notice,
    line_frozen_notice,
    line_write_off_notice,
    stage_pd,
    tier_rank,
)
from tianping.lending.losses import (
    LINE,
    Held,
    Receivable,
    bank_of,
    check_recovered,
    check_recovery_amount,
    check_write_off_allowed,
    check_write_off_date,
    funder_cash,
    funder_split,
    linked,
    other_fields,
    plan_write_off,
    recovery_document,
    recovery_fields,
    recovery_request,
    recovery_transfers,
    write_off_document,
    write_off_fields,
    write_off_request,
    write_off_transfers,
)
from tianping.lending.model import LendingRefusal
from tianping.lending.schedules import (
    CREDIT_LINE_ENTRIES_MAX,
    DatedAmount,
    LendingError,
    PreviousStatement,
    statement,
)
from tianping.lending.store import LendingStore
from tianping.payments import chart as payments_chart
from tianping.payments.funding import CreditDraw, CreditFundingRefused, CreditRefund
from tianping.payments.model import local_date
from tianping.rules.model import Outcome

if TYPE_CHECKING:
    from tianping.rules.service import RulesService

__all__ = [
    "CLASSIFY_BATCH_MAX",
    "LINE_STATUSES",
    "LINE_WRITE_OFF_DPD",
    "STATEMENTS_PAGE_MAX",
    "STATEMENT_BATCH_MAX",
    "TRANSACTIONS_PAGE_MAX",
    "CreditLines",
    "LineRecovery",
    "LineRepayment",
    "LineWriteOff",
    "StatementRun",
]

_log = logging.getLogger(__name__)

LINE_STATUSES: Final = ("active", "frozen", "closed", "written_off")
# Lines classified in one unit of work; a day's run takes as many as needed.
CLASSIFY_BATCH_MAX: Final = 500
# The bills of a line the classification looks at: a year of them. A line with a year of
# unpaid minimums is past the loss threshold whichever of them is counted from.
BILLS_LOOKED_AT: Final = 13
# A line is written off in the loss class or from this many days past due (the card rules'
# loss threshold, `credit_lines.LINE_THRESHOLDS`).
LINE_WRITE_OFF_DPD: Final = 181
TRANSACTIONS_PAGE_MAX: Final = 200
# The lines one person may have held in a currency that a refund looks through for its draw.
LINES_PER_PERSON_MAX: Final = 50
# The revolving line's behavioural life for lifetime (stage 2) ECL: a revolving facility has no
# contractual maturity, so IFRS 9 5.5.20 asks for the period the lender is exposed in
# practice; twelve months is the conservative figure used until the platform has its own data.
LINE_LIFE_MONTHS: Final = 12
# The share of an active line's undrawn limit expected to be drawn before a default (a credit
# conversion factor): 10 %, Basel III's figure for unconditionally cancellable retail
# commitments (CRE20.94), until the platform measures its own drawdowns before default.
UNDRAWN_CONVERSION_BPS: Final = 1_000
# Lines whose statements are issued in one unit of work; a day's run takes as many as needed.
STATEMENT_BATCH_MAX: Final = 500
# A line that missed statements catches up at most this many in one run (a year).
STATEMENTS_CATCH_UP_MAX: Final = 12
STATEMENTS_PAGE_MAX: Final = 120
# What a checkout may charge a line at once: the payments context's own bound applies too.
_CREDIT_LINE_SERVICE: Final = "credit_line"
_BUREAU_REPORTING: Final = "credit_bureau_reporting"


@dataclass(frozen=True, slots=True)
class LineRepayment:
    line_id: str
    payment_id: str
    allocation: dict[str, int]
    overpayment: int
    available: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class StatementRun:
    day: str
    issued: int
    frozen_for_consent: int = 0


@dataclass(frozen=True, slots=True)
class LineClassification:
    day: str
    lines: int
    past_due: int
    worsened: int


@dataclass(frozen=True, slots=True)
class LineWriteOff:
    line_id: str
    write_off_id: str
    on: str
    reason: str
    written_off: dict[str, int]
    total: int
    by_funder: dict[str, dict[str, int]]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class LineRecovery:
    line_id: str
    recovery_id: str
    on: str
    amount: int
    allocation: dict[str, int]
    recovered: int
    overpayment: int
    still_written_off: int
    by_funder: dict[str, int]
    replayed: bool = False


def _digest(document: dict[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()


def _refuse_ledger(results: Sequence[CreateTransferResult], what: str) -> None:
    # In a linked chain only the failing event says why; the others say the chain failed.
    if CreateTransferResult.exceeds_credits in results:
        raise LendingRefusal("insufficient_funds", f"the wallet cannot pay the {what}")
    for result in results:
        if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
            raise LendingRefusal("ledger_refused", f"the {what} was refused: {result.name}")


def _refuse_refund(results: Sequence[CreateTransferResult]) -> None:
    # The merchant pays a refund from its unsettled takings; the payments context maps these
    # codes to the refund's answer.
    if CreateTransferResult.exceeds_credits in results:
        raise CreditFundingRefused(
            "merchant_funds_insufficient",
            "the merchant's unsettled takings do not cover the refund",
        )
    if any(r is not CreateTransferResult.ok for r in results):
        raise CreditFundingRefused("ledger_refused", "the ledger refused the refund")


class CreditLines:
    """The credit-line use cases; mixed into `LendingService`, whose attributes they use."""

    ledger: Ledger
    clock: Callable[[], int]
    rules: RulesService | None
    consent: Any
    lender_type: str

    # -- plumbing ---------------------------------------------------------------------------

    def _line_now(self, uow: LedgerWrite) -> int:
        return max(self.clock(), uow.head.last_timestamp + 1)

    @staticmethod
    def _line_accounts(uow: LedgerWrite, line: LineRow) -> None:
        """The lending accounts of the line's funders and the bank's clearing account."""
        funders = sorted({line.partner_bank_id, PLATFORM})
        accounts = [
            chart.new_account(kind, funder, line.currency)
            for funder in funders
            for kind in LendingAccount
        ]
        for account, result in zip(accounts, uow.create_accounts(accounts), strict=True):
            if result not in (CreateAccountResult.ok, CreateAccountResult.exists):
                raise LendingRefusal(
                    "ledger_refused", f"account {account.id} could not be created: {result.name}"
                )
        if line.partner_bank_id != PLATFORM:
            uow.create_accounts(
                [
                    payments_chart.new_account(
                        payments_chart.AccountCode.CLEARING,
                        payments_chart.clearing_account(line.partner_bank_id, line.currency),
                        line.currency,
                    )
                ]
            )

    @staticmethod
    def _by_funder(line: LineRow, bank: int, total: int) -> list[tuple[str, int]]:
        parts = [(line.partner_bank_id, bank), (PLATFORM, total - bank)]
        return [(funder, part) for funder, part in parts if part]

    def _charge(
        self,
        uow: LedgerWrite,
        line: LineRow,
        key: str,
        amount: int,
        bucket: Bucket,
    ) -> tuple[LineRow, int]:
        """Charge interest or a fee to the line (sub-ledger and ledger); the new row and the
        bank's part."""
        bank, _ = split_charge(amount, line.bank_share_bps)
        income, code = (
            (LendingAccount.FEE_INCOME, LendingCode.LINE_FEE)
            if bucket is Bucket.FEES
            else (LendingAccount.INTEREST_INCOME, LendingCode.LINE_INTEREST)
        )
        events = [
            NewTransfer(
                chart.transfer_id(f"line-{bucket.value}", f"{line.line_id}/{key}/{funder}"),
                chart.account_id(LendingAccount.LINE_CHARGES_RECEIVABLE, funder, line.currency),
                chart.account_id(income, funder, line.currency),
                part,
                line.currency,
                int(code),
            )
            for funder, part in self._by_funder(line, bank, amount)
        ]
        _refuse_ledger(uow.create_transfers(linked(events)), "charge")
        if bucket is Bucket.FEES:
            line = replace(line, fees=line.fees + amount, bank_fees=line.bank_fees + bank)
        else:
            line = replace(
                line, interest=line.interest + amount, bank_interest=line.bank_interest + bank
            )
        return line, bank

    # -- opening a line ---------------------------------------------------------------------

    def _check_reporting_consent(self, party_id: str) -> None:
        """L5: a credit line needs the person's live consent to credit-bureau reporting."""
        if not self._reporting_consent_live(party_id):
            raise LendingRefusal(
                "credit_reporting_consent_required",
                "a credit line needs a live consent to credit-bureau reporting (L5)",
            )

    def open_line(self, application_id: str, line_id: str, statement_day: int) -> LineRow:
        """Take up an approved `credit_line` offer: the line is opened with the approved amount
        as its limit and the approved rate as its revolving rate (idempotent by `line_id`)."""
        # Checked before the unit of work: the consent lives in the identity context, read
        # through its own service, and a refusal writes nothing.
        with LineStore.reading(self.ledger) as reader:
            existing = reader.line(line_id)
            taken = reader.line_for_application(application_id)
        with LendingStore.reading(self.ledger) as lending:
            known = lending.application(application_id) is not None
            product = lending.application_product(application_id)
        if existing is not None:
            if (existing.application_id, existing.statement_day) != (
                application_id,
                statement_day,
            ):
                raise LendingRefusal("request_conflict", "the line id is taken")
            return existing
        if not known:
            raise LendingRefusal("application_not_found", "no application has this id")
        if product != "credit_line":
            raise LendingRefusal("application_not_credit_line", "the offer is not a credit line")
        if taken is not None:
            raise LendingRefusal("offer_taken", "the offer was already taken")
        try:
            line_terms(1, statement_day, 0)
        except LendingError as error:
            raise LendingRefusal("statement_day_invalid", str(error)) from None
        outcome, amount, currency, partner = self._approved_offer(application_id)
        self._check_reporting_consent(outcome.party_id)
        with LineStore.writing(self.ledger) as (uow, store):
            again = store.line(line_id)
            if again is not None:
                return again
            if store.line_for_application(application_id) is not None:
                raise LendingRefusal("offer_taken", "the offer was already taken")
            if store.open_line_of(outcome.party_id, currency) is not None:
                raise LendingRefusal(
                    "credit_line_exists", "the person already has a credit line in this currency"
                )
            now = self._line_now(uow)
            opened_on = local_date(now)
            _, first = first_statement_date(opened_on, statement_day)
            line = LineRow(
                line_id=line_id,
                application_id=application_id,
                party_id=outcome.party_id,
                currency=currency,
                partner_bank_id=partner or PLATFORM,
                bank_share_bps=7_000 if partner else 0,
                credit_limit=amount,
                rate_bps=outcome.rate_bps,
                statement_day=statement_day,
                due_day_offset=DUE_DAY_OFFSET,
                min_payment_bps=int(MIN_PAYMENT_RATIO * 10_000),
                min_payment_floor=MIN_PAYMENT_FLOOR,
                status="active",
                fees=0,
                interest=0,
                principal=0,
                instalment_principal=0,
                bank_fees=0,
                bank_interest=0,
                bank_principal=0,
                bank_instalment_principal=0,
                opened_on=opened_on.isoformat(),
                next_statement_on=first.isoformat(),
                created_at=now,
                updated_at=now,
            )
            self._line_accounts(uow, line)
            store.insert_line(line)
        _log.info("credit line opened (limit %d %s)", amount, currency)
        return line

    def _approved_offer(self, application_id: str) -> tuple[Any, int, str, str | None]:
        """(outcome, approved amount, currency, partner bank) of an approved application."""
        with LendingStore.reading(self.ledger) as store:
            found = store.application(application_id)
        if found is None:
            raise LendingRefusal("application_not_found", "no application has this id")
        outcome, _, amount, _, currency, partner = found
        if outcome.outcome != "approved" or outcome.rate_bps is None:
            raise LendingRefusal("application_not_approved", "only an approved offer is taken")
        return outcome, amount, currency, partner

    def line(self, line_id: str) -> LineRow:
        with LineStore.reading(self.ledger) as store:
            found = store.line(line_id)
        if found is None:
            raise LendingRefusal("credit_line_not_found", "no credit line has this id")
        return found

    def set_line_status(self, line_id: str, status: str) -> LineRow:
        """Freeze (`frozen`), unfreeze (`active`) or close (`closed`) a line; see
        `freeze_line`, `unfreeze_line` and `close_line`."""
        actions: dict[str, Callable[[str], LineRow]] = {
            "frozen": self.freeze_line,
            "active": self.unfreeze_line,
            "closed": self.close_line,
        }
        action = actions.get(status)
        if action is None:
            raise LendingRefusal("line_status_invalid", "a line is frozen, active or closed")
        return action(line_id)

    def _changeable(self, store: LineStore, line_id: str) -> LineRow:
        line = store.line(line_id)
        if line is None:
            raise LendingRefusal("credit_line_not_found", "no credit line has this id")
        if line.status in ("closed", "written_off"):
            raise LendingRefusal("credit_line_not_active", f"the line is {line.status}")
        return line

    def freeze_line(self, line_id: str) -> LineRow:
        """The operator freezes a line: it takes no draws; it is still billed and repaid, and
        refunds still reach it. Freezing a frozen line changes nothing (whatever froze it)."""
        with LineStore.writing(self.ledger) as (uow, store):
            line = self._changeable(store, line_id)
            if line.status == "frozen":
                return line
            line = replace(
                line, status="frozen", frozen_reason="operator", updated_at=self._line_now(uow)
            )
            store.update_line(line)
            self._notify_frozen(store, line)
        return line

    def unfreeze_line(self, line_id: str) -> LineRow:
        """The operator lifts a freeze. Refused while the line is past due
        (`credit_line_past_due`: the classification run thaws it once the minimums are paid)
        and while the holder's credit-bureau-reporting consent is withdrawn
        (`credit_reporting_consent_required`, L5)."""
        with LineStore.writing(self.ledger) as (uow, store):
            line = self._changeable(store, line_id)
            if line.status == "active":
                return line
            if line.days_past_due > 0:
                raise LendingRefusal(
                    "credit_line_past_due", "a past-due line stays frozen until it is current"
                )
            if not self._reporting_consent_live(line.party_id, uow):
                raise LendingRefusal(
                    "credit_reporting_consent_required",
                    "the line needs a live consent to credit-bureau reporting (L5)",
                )
            line = replace(
                line, status="active", frozen_reason=None, updated_at=self._line_now(uow)
            )
            store.update_line(line)
        return line

    def close_line(self, line_id: str) -> LineRow:
        """Close a repaid line (its holder's choice; a closed line stays closed). Refused with
        `credit_line_not_repaid` while anything, unbilled instalments included, is owed."""
        with LineStore.writing(self.ledger) as (uow, store):
            line = store.line(line_id)
            if line is None:
                raise LendingRefusal("credit_line_not_found", "no credit line has this id")
            if line.status == "closed":
                return line
            if line.status == "written_off":
                raise LendingRefusal("credit_line_not_active", "the line is written off")
            if line.owed:
                raise LendingRefusal("credit_line_not_repaid", "a line closes once repaid")
            line = replace(
                line, status="closed", frozen_reason=None, updated_at=self._line_now(uow)
            )
            store.update_line(line)
        return line

    def _reporting_consent_live(self, party_id: str, uow: LedgerWrite | None = None) -> bool:
        """Whether the person's consent to credit-bureau reporting is live now (L5), read
        through the identity context's service, in `uow` when given so that a draw and a
        statement run see the consent as it is in their own transaction."""
        if self.consent is None:
            return False
        # A lookup that cannot read inside a unit of work (the `ConsentLookup` protocol does
        # not require it) is asked without one.
        if uow is None:
            check = self.consent.service_available(party_id, _CREDIT_LINE_SERVICE)
        else:
            check = self.consent.service_available(party_id, _CREDIT_LINE_SERVICE, uow=uow)
        missing = {str(getattr(purpose, "value", purpose)) for purpose in check.missing}
        return _BUREAU_REPORTING not in missing

    # -- drawing at checkout (the payments port) ---------------------------------------------

    def fund_payment(self, uow: LedgerWrite, draw: CreditDraw) -> int:
        """Pay the merchant on the payer's credit line, in the payment's unit of work.

        Refusals (`credit_line_not_found`, `credit_line_not_active`,
        `credit_reporting_consent_required` once the L5 consent is withdrawn,
        `credit_limit_exceeded`) are raised before anything is written. Returns the id of the
        first transfer that credits the merchant (the payment's transfer).
        """
        store = LineStore(uow.connection, uow.store.backend)
        line = store.open_line_of(draw.payer_id, draw.currency)
        if line is None:
            raise CreditFundingRefused("credit_line_not_found", "the payer has no credit line")
        txn_id = f"draw/{draw.payment_id}"
        funders = self._by_funder(line, *self._draw_split(line, draw.amount))
        first_id = chart.transfer_id(
            "line-draw", f"{line.line_id}/{draw.payment_id}/{funders[0][0]}"
        )
        if store.transaction(line.line_id, txn_id) is not None:
            return first_id
        if line.status != "active":
            raise CreditFundingRefused("credit_line_not_active", "the credit line is not active")
        # L5, checked live at every draw: once the holder withdraws the consent to credit-bureau
        # reporting, the line lends no more, at once (the next statement run freezes it).
        if not self._reporting_consent_live(line.party_id, uow):
            raise CreditFundingRefused(
                "credit_reporting_consent_required",
                "the line needs a live consent to credit-bureau reporting (L5)",
            )
        if draw.amount > line.available:
            raise CreditFundingRefused(
                "credit_limit_exceeded", "the amount is more than the line has available"
            )
        self._line_accounts(uow, line)
        events: list[NewTransfer] = []
        for funder, part in funders:
            key = f"{line.line_id}/{draw.payment_id}/{funder}"
            events += [
                NewTransfer(
                    chart.transfer_id("line-draw", key),
                    chart.account_id(LendingAccount.LINE_RECEIVABLE, funder, line.currency),
                    draw.merchant_account,
                    part,
                    line.currency,
                    int(LendingCode.LINE_DRAW),
                ),
                NewTransfer(
                    chart.transfer_id("line-draw-cash", key),
                    payments_chart.reserve_account(line.currency),
                    funder_cash(funder, line.currency),
                    part,
                    line.currency,
                    int(LendingCode.LINE_DRAW_FUNDING),
                ),
            ]
        results = uow.create_transfers(linked(events))
        if any(r not in (CreateTransferResult.ok, CreateTransferResult.exists) for r in results):
            raise CreditFundingRefused("credit_line_refused", "the ledger refused the draw")
        bank, _ = self._draw_split(line, draw.amount)
        store.insert_transaction(
            line.line_id,
            txn_id,
            "draw",
            draw.amount,
            self._posted(draw.on, line).isoformat(),
            draw.at,
            digest=_digest({"payment": draw.payment_id, "amount": draw.amount}),
            reference=draw.payment_id,
            details={"bank": bank},
        )
        store.update_line(
            replace(
                line,
                principal=line.principal + draw.amount,
                bank_principal=line.bank_principal + bank,
                updated_at=draw.at,
            )
        )
        return first_id

    # -- refunds of purchases on the line (the payments port) ---------------------------------

    @staticmethod
    def _line_of_draw(
        store: LineStore, payer_id: str, currency: str, payment_id: str
    ) -> tuple[LineRow, LineTransaction]:
        """(line, draw transaction) of a payment drawn on one of the payer's lines."""
        for line in store.lines_of_party(payer_id, currency, LINES_PER_PERSON_MAX):
            drawn = store.transaction(line.line_id, f"draw/{payment_id}")
            if drawn is not None:
                return line, drawn
        raise CreditFundingRefused("credit_line_not_found", "the payment was not drawn on a line")

    def refund_payment(self, uow: LedgerWrite, refund: CreditRefund) -> int:
        """A merchant's refund of a purchase made on the line, in the refund's unit of work.

        The merchant's account is debited; the line is credited up to what its holder owes on
        it (fees, interest, then principal, each funder's receivable pro rata to what it is
        owed, the cash behind it leaving the reserve for the funder), which restores the
        available limit and shows on the next statement as a credit; anything beyond what is
        owed is paid into the holder's wallet (`credit_lines.allocate_refund` says why). The
        refunds of one payment never total more than its draw. On a written-off line the refund
        is a recovery (`_refund_as_recovery`). Idempotent by the refund id (the payments context
        also replays a known refund before calling). Refusals: `credit_line_not_found` (not a
        draw on a line), `refund_exceeds_payment`, `merchant_funds_insufficient`.
        """
        store = LineStore(uow.connection, uow.store.backend)
        line, drawn = self._line_of_draw(store, refund.payer_id, refund.currency, refund.payment_id)
        txn_id = f"refund/{refund.refund_id}"
        digest = _digest({"payment": refund.payment_id, "amount": refund.amount})
        done = store.transaction(line.line_id, txn_id)
        if done is not None:
            if done.digest != digest:
                raise CreditFundingRefused(
                    "request_conflict", "the refund id was used for another refund"
                )
            return int(done.details["transfer"])
        if store.refunded_of(line.line_id, refund.payment_id) + refund.amount > drawn.amount:
            raise CreditFundingRefused(
                "refund_exceeds_payment", "refunds would total more than the purchase"
            )
        if line.status == "written_off":
            return self._refund_as_recovery(uow, store, line, refund, txn_id, digest)
        allocation = allocate_refund(
            refund.amount, LineOwed(line.fees, line.interest, line.principal)
        )
        self._line_accounts(uow, line)
        key = f"{line.line_id}/{refund.refund_id}"
        events, settled = self._settle(
            line,
            allocation.to_line,
            refund.merchant_account,
            key,
            ("line-refund", "line-refund-cash"),
            (LendingCode.LINE_REFUND, LendingCode.LINE_REFUND, LendingCode.LINE_REFUND_FUNDING),
        )
        return self._book_refund(
            uow,
            store,
            (line, settled),
            refund,
            (txn_id, digest),
            events,
            kind="refund",
            credited=allocation.credited_to_line,
            posted_on=self._posted(refund.on, line),
            to_wallet=allocation.to_wallet,
            details={"allocation": {b.value: part for b, part in allocation.to_line.items()}},
        )

    def _book_refund(
        self,
        uow: LedgerWrite,
        store: LineStore,
        lines: tuple[LineRow, LineRow],
        refund: CreditRefund,
        stored_as: tuple[str, bytes],
        events: list[NewTransfer],
        *,
        kind: str,
        credited: int,
        posted_on: dt.date,
        to_wallet: int,
        details: dict[str, Any],
    ) -> int:
        """Write a refund: `events` (what it credits to the line), the transfer of what it
        leaves over (`to_wallet`) into the holder's wallet, the line transaction (`kind`, the
        amount `credited` to the line, under the id and digest `stored_as`) and the line as it
        is after (`lines`: before, after). The id of the first transfer, the refund's."""
        line, after = lines
        if to_wallet:
            events.append(
                NewTransfer(
                    chart.transfer_id("line-refund-wallet", f"{line.line_id}/{refund.refund_id}"),
                    refund.merchant_account,
                    payments_chart.wallet_account(line.party_id, line.currency),
                    to_wallet,
                    line.currency,
                    int(LendingCode.LINE_REFUND_TO_WALLET),
                )
            )
        _refuse_refund(uow.create_transfers(linked(events)))
        first_id = events[0].id
        txn_id, digest = stored_as
        store.insert_transaction(
            line.line_id,
            txn_id,
            kind,
            credited,
            posted_on.isoformat(),
            refund.at,
            digest=digest,
            reference=refund.payment_id,
            details={
                "refund_id": refund.refund_id,
                "refunded": refund.amount,
                "to_wallet": to_wallet,
                "transfer": str(first_id),
                **details,
            },
        )
        store.update_line(replace(after, updated_at=refund.at))
        return first_id

    def _refund_as_recovery(
        self,
        uow: LedgerWrite,
        store: LineStore,
        line: LineRow,
        refund: CreditRefund,
        txn_id: str,
        digest: bytes,
    ) -> int:
        """A merchant's refund of a purchase on a written-off line. The refund belongs to the
        line first, as on any line (`allocate_refund`), but the line's receivables are gone:
        what it pays of what remains written off is therefore a recovery, applied and split
        between the funders exactly as the operator's (`recover_line`), and only the rest goes
        to the holder's wallet, as a refund beyond what is owed does on a live line. It is a
        `recovery` transaction (a `refund` one when nothing remained written off) under the
        refund's id, so the refunds of the payment are still counted against its draw."""
        amounts = recover_line(self._written_off(line), refund.amount)
        self._line_accounts(uow, line)
        events, by_funder = self._recovery_events(
            line, amounts, refund.merchant_account, f"{line.line_id}/refund/{refund.refund_id}"
        )
        return self._book_refund(
            uow,
            store,
            (line, self._recovered(line, amounts.remaining, refund.at)),
            refund,
            (txn_id, digest),
            events,
            kind="recovery" if amounts.recovered else "refund",
            credited=amounts.recovered,
            posted_on=refund.on,
            to_wallet=amounts.overpayment,
            details={"allocation": amounts.allocation, "by_funder": by_funder},
        )

    @staticmethod
    def _posted(today: dt.date, line: LineRow) -> dt.date:
        return posting_date(
            today, dt.date.fromisoformat(line.next_statement_on), line.statement_day
        )

    @staticmethod
    def _draw_split(line: LineRow, amount: int) -> tuple[int, int]:
        bank, _ = split_charge(amount, line.bank_share_bps)
        return bank, amount

    # -- repayment --------------------------------------------------------------------------

    def _settle(
        self,
        line: LineRow,
        paid: dict[Bucket, int],
        source: int,
        key: str,
        purposes: tuple[str, str],
        codes: tuple[LendingCode, LendingCode, LendingCode],
    ) -> tuple[list[NewTransfer], LineRow]:
        """The transfers that pay `paid` (by bucket) of the line from `source` (the wallet for
        a repayment, the merchant's account for a refund), and the line after them.

        Each bucket is split between the funders pro rata to what each is owed in it
        (`split_repayment`), so no funder's receivable is ever overpaid; the cash behind each
        funder's part leaves the client-money reserve for the funder's own account, so
        safeguarding stays whole. `purposes` name the receivable and the cash transfers;
        `codes` are the principal, charges and cash transfer codes."""
        purpose, cash_purpose = purposes
        principal_code, charges_code, cash_code = codes
        bank_owed = {
            Bucket.FEES: line.bank_fees,
            Bucket.INTEREST: line.bank_interest,
            Bucket.PRINCIPAL: line.bank_principal,
        }
        owed = LineOwed(line.fees, line.interest, line.principal)
        banks: dict[Bucket, int] = {}
        events: list[NewTransfer] = []
        for bucket, part in paid.items():
            if not part:
                continue
            bank, _ = split_repayment(part, bank_owed[bucket], owed.of(bucket) - bank_owed[bucket])
            banks[bucket] = bank
            receivable, code = (
                (LendingAccount.LINE_RECEIVABLE, principal_code)
                if bucket is Bucket.PRINCIPAL
                else (LendingAccount.LINE_CHARGES_RECEIVABLE, charges_code)
            )
            for funder, share in self._by_funder(line, bank, part):
                funder_key = f"{key}/{bucket.value}/{funder}"
                events += [
                    NewTransfer(
                        chart.transfer_id(purpose, funder_key),
                        source,
                        chart.account_id(receivable, funder, line.currency),
                        share,
                        line.currency,
                        int(code),
                    ),
                    NewTransfer(
                        chart.transfer_id(cash_purpose, funder_key),
                        funder_cash(funder, line.currency),
                        payments_chart.reserve_account(line.currency),
                        share,
                        line.currency,
                        int(cash_code),
                    ),
                ]
        line = replace(
            line,
            fees=line.fees - paid.get(Bucket.FEES, 0),
            interest=line.interest - paid.get(Bucket.INTEREST, 0),
            principal=line.principal - paid.get(Bucket.PRINCIPAL, 0),
            bank_fees=line.bank_fees - banks.get(Bucket.FEES, 0),
            bank_interest=line.bank_interest - banks.get(Bucket.INTEREST, 0),
            bank_principal=line.bank_principal - banks.get(Bucket.PRINCIPAL, 0),
        )
        return events, line

    def repay_line(self, line_id: str, payment_id: str, amount: int) -> LineRepayment:
        """Repay the line from the holder's wallet: fees, then interest, then principal (oldest
        first); what is paid restores the available limit; more than is owed stays in the
        wallet and is reported as overpayment. Idempotent by `payment_id`."""
        if type(amount) is not int or not 0 < amount <= 10**12:
            raise LendingRefusal("amount_invalid", "a repayment is 1 to 10^12 minor units")
        digest = _digest({"amount": amount})
        txn_id = f"repayment/{payment_id}"
        with LineStore.writing(self.ledger) as (uow, store):
            line = store.line(line_id)
            if line is None:
                raise LendingRefusal("credit_line_not_found", "no credit line has this id")
            done = store.transaction(line_id, txn_id)
            if done is not None:
                if done.digest != digest:
                    raise LendingRefusal("request_conflict", "the payment id was used before")
                return LineRepayment(
                    line_id,
                    payment_id,
                    done.details["allocation"],
                    done.details["overpayment"],
                    line.available,
                    replayed=True,
                )
            if line.status == "written_off":
                raise LendingRefusal(
                    "credit_line_written_off", "a written-off line is not repaid here"
                )
            owed = LineOwed(line.fees, line.interest, line.principal)
            paid, overpayment = owed.pay(amount)
            now = self._line_now(uow)
            wallet = payments_chart.wallet_account(line.party_id, line.currency)
            self._line_accounts(uow, line)
            events, line = self._settle(
                line,
                paid,
                wallet,
                f"{line_id}/{payment_id}",
                ("line-repay", "line-repay-cash"),
                (
                    LendingCode.LINE_REPAYMENT_PRINCIPAL,
                    LendingCode.LINE_REPAYMENT_CHARGES,
                    LendingCode.LINE_REPAYMENT_FUNDING,
                ),
            )
            if events:
                _refuse_ledger(uow.create_transfers(linked(events)), "repayment")
            allocation = {bucket.value: part for bucket, part in paid.items()}
            line = replace(line, updated_at=now)
            store.insert_transaction(
                line_id,
                txn_id,
                "repayment",
                amount - overpayment,
                self._posted(local_date(now), line).isoformat(),
                now,
                digest=digest,
                reference=payment_id,
                details={"allocation": allocation, "overpayment": overpayment},
            )
            store.update_line(line)
        return LineRepayment(line_id, payment_id, allocation, overpayment, line.available)

    # -- statements -------------------------------------------------------------------------

    def issue_statements(self, day: dt.date) -> StatementRun:
        """Issue every statement due on or before `day` (a line's statement day is `day`, or a
        missed one), in bounded batches of `STATEMENT_BATCH_MAX` lines per unit of work.
        Idempotent: an issued statement moves its line's next statement date on, so running
        the same day again issues nothing."""
        label = day.isoformat()
        issued = frozen = 0
        while True:
            with LineStore.writing(self.ledger) as (uow, store):
                lines = store.due_lines(label, STATEMENT_BATCH_MAX)
                for line in lines:
                    line, was_frozen = self._freeze_without_consent(uow, store, line)
                    frozen += was_frozen
                    issued += self._issue_due(uow, store, line, day)
            if len(lines) < STATEMENT_BATCH_MAX:
                break
        _log.info("statements for %s: %d issued, %d frozen for consent", label, issued, frozen)
        return StatementRun(label, issued, frozen)

    def _freeze_without_consent(
        self, uow: LedgerWrite, store: LineStore, line: LineRow
    ) -> tuple[LineRow, bool]:
        """L5 at the statement run: an active line whose holder has withdrawn the consent to
        credit-bureau reporting is frozen (draws were refused from the moment of withdrawal;
        repayments and refunds still reach it, and it is still billed). Only the operator
        unfreezes it, once the consent is live again."""
        if line.status != "active" or self._reporting_consent_live(line.party_id, uow):
            return line, False
        line = replace(
            line, status="frozen", frozen_reason="consent_withdrawn", updated_at=self._line_now(uow)
        )
        store.update_line(line)
        self._notify_frozen(store, line)
        return line, True

    @staticmethod
    def _notify_frozen(store: LineStore, line: LineRow) -> None:
        """A freeze is an adverse change of the holder's credit (D4, G5, G7): the holder gets a
        notice saying why and where to ask for a human review. One per freeze: the notice id
        carries the time the line was frozen."""
        day = local_date(line.updated_at).isoformat()
        notice = line_frozen_notice(line.party_id, line.line_id, day, str(line.frozen_reason))
        store.insert_notices(
            [
                (
                    line.line_id,
                    f"notice/frozen/{line.frozen_reason}/{line.updated_at}",
                    line.party_id,
                    line.updated_at,
                    notice,
                )
            ]
        )

    def _issue_due(self, uow: LedgerWrite, store: LineStore, line: LineRow, day: dt.date) -> int:
        issued = 0
        while dt.date.fromisoformat(line.next_statement_on) <= day:
            if issued == STATEMENTS_CATCH_UP_MAX:
                break
            line = self._issue_one(uow, store, line)
            issued += 1
        return issued

    def _issue_one(self, uow: LedgerWrite, store: LineStore, line: LineRow) -> LineRow:
        statement_on = dt.date.fromisoformat(line.next_statement_on)
        label = statement_on.isoformat()
        now = self._line_now(uow)
        (latest,) = store.statements(line.line_id, 1) or (None,)
        if latest is None:
            cycle_start, _ = first_statement_date(
                dt.date.fromisoformat(line.opened_on), line.statement_day
            )
            previous = PreviousStatement(cycle_start, cycle_start, 0)
            entries_after = cycle_start
        else:
            cycle_start = dt.date.fromisoformat(latest.statement_date)
            previous = PreviousStatement(
                cycle_start, dt.date.fromisoformat(latest.due_date), latest.new_balance
            )
            # The previous cycle's purchases too: they bear back interest if its grace is lost.
            entries_after = dt.date.fromisoformat(latest.cycle_start)
        line, fees = self._bill_instalments(uow, store, line, label, now)
        entries = store.entries_between(
            line.line_id, entries_after.isoformat(), label, CREDIT_LINE_ENTRIES_MAX
        )
        purchases = [
            DatedAmount(dt.date.fromisoformat(on), amount)
            for kind, amount, on in entries
            if kind in ("draw", "instalment_billed", "fee") and amount > 0
        ]
        payments = [
            DatedAmount(dt.date.fromisoformat(on), amount)
            for kind, amount, on in entries
            if kind in ("repayment", "instalment_conversion", "refund") and amount > 0
        ]
        cut = statement(
            purchases,
            previous,
            payments,
            line_terms(line.credit_limit, line.statement_day, line.rate_bps),
            statement_on,
        )
        if cut.interest_charged:
            line, bank = self._charge(uow, line, label, cut.interest_charged, Bucket.INTEREST)
            store.insert_transaction(
                line.line_id,
                f"interest/{label}",
                "interest",
                cut.interest_charged,
                label,
                now,
                digest=_digest({"interest": cut.interest_charged}),
                reference=label,
                details={"bank": bank},
            )
        store.insert_statement(
            StatementRow(
                line_id=line.line_id,
                statement_date=label,
                cycle_start=cycle_start.isoformat(),
                due_date=cut.due_date.isoformat(),
                previous_balance=previous.balance,
                purchases=cut.purchases,
                payments=cut.payments,
                interest_charged=cut.interest_charged,
                fees_charged=fees,
                new_balance=cut.new_balance,
                minimum_payment=cut.minimum_payment,
                grace_kept=cut.grace_kept,
                over_limit=cut.over_limit,
                issued_at=now,
            )
        )
        line = replace(
            line,
            next_statement_on=next_statement_date(statement_on, line.statement_day).isoformat(),
            updated_at=now,
        )
        store.update_line(line)
        return line

    def _bill_instalments(
        self, uow: LedgerWrite, store: LineStore, line: LineRow, label: str, now: int
    ) -> tuple[LineRow, int]:
        """Bill the next instalment of each plan on this statement: its principal moves from
        the unbilled instalment principal into the revolving balance, its fee is charged."""
        fees = 0
        for plan in store.plans_to_bill(line.line_id):
            instalment = plan.instalments[plan.instalments_billed]
            principal, fee = int(instalment["principal"]), int(instalment["fee"])
            number = plan.instalments_billed + 1
            bank, _ = split_repayment(
                principal,
                line.bank_instalment_principal,
                line.instalment_principal - line.bank_instalment_principal,
            )
            line = replace(
                line,
                instalment_principal=line.instalment_principal - principal,
                bank_instalment_principal=line.bank_instalment_principal - bank,
                principal=line.principal + principal,
                bank_principal=line.bank_principal + bank,
            )
            store.insert_transaction(
                line.line_id,
                f"plan/{plan.plan_id}/{number}",
                "instalment_billed",
                principal,
                label,
                now,
                digest=_digest({"plan": plan.plan_id, "number": number}),
                reference=plan.plan_id,
                details={"number": number, "bank": bank},
            )
            if fee:
                line, fee_bank = self._charge(
                    uow, line, f"{plan.plan_id}/{number}", fee, Bucket.FEES
                )
                store.insert_transaction(
                    line.line_id,
                    f"plan/{plan.plan_id}/{number}/fee",
                    "fee",
                    fee,
                    label,
                    now,
                    digest=_digest({"plan": plan.plan_id, "number": number, "fee": fee}),
                    reference=plan.plan_id,
                    details={"number": number, "bank": fee_bank},
                )
                fees += fee
            store.set_plan_billed(plan.plan_id, number)
        return line, fees

    def line_statements(self, line_id: str, limit: int = STATEMENTS_PAGE_MAX) -> list[StatementRow]:
        if type(limit) is not int or not 1 <= limit <= STATEMENTS_PAGE_MAX:
            raise LendingRefusal("page_size_invalid", f"a page holds 1 to {STATEMENTS_PAGE_MAX}")
        with LineStore.reading(self.ledger) as store:
            if store.line(line_id) is None:
                raise LendingRefusal("credit_line_not_found", "no credit line has this id")
            return store.statements(line_id, limit)

    def line_statement(self, line_id: str, statement_date: dt.date) -> StatementRow:
        with LineStore.reading(self.ledger) as store:
            found = store.statement(line_id, statement_date.isoformat())
        if found is None:
            raise LendingRefusal("line_statement_not_found", "the line has no such statement")
        return found

    # -- bills into instalments -------------------------------------------------------------

    def _convertible(
        self, store: LineStore, line_id: str, statement_date: dt.date, today: dt.date
    ) -> tuple[LineRow, StatementRow, int]:
        line = store.line(line_id)
        if line is None:
            raise LendingRefusal("credit_line_not_found", "no credit line has this id")
        found = store.statement(line_id, statement_date.isoformat())
        if found is None:
            raise LendingRefusal("line_statement_not_found", "the line has no such statement")
        (latest,) = store.statements(line_id, 1)
        if latest.statement_date != found.statement_date:
            raise LendingRefusal("statement_not_convertible", "only the latest bill converts")
        if today > dt.date.fromisoformat(found.due_date):
            raise LendingRefusal("statement_past_due", "the bill is past its due date")
        if line.status in ("closed", "written_off"):
            raise LendingRefusal("credit_line_not_active", f"the credit line is {line.status}")
        # What is still owed of the bill, in principal: interest and fees on it stay due
        # (`credit_lines.convertible_principal` says why).
        amount = convertible_principal(
            found.new_balance - store.paid_after(line_id, found.statement_date),
            line.charges,
            line.principal,
        )
        if amount <= 0:
            raise LendingRefusal("statement_not_convertible", "nothing of the bill is owed")
        return line, found, amount

    def quote_statement_instalments(
        self, line_id: str, statement_date: dt.date, months: int
    ) -> InstalmentQuote:
        """The quote shown before a bill is turned into instalments: each instalment, the fee
        and the all-in APR (L9, L13). Writes nothing."""
        today = local_date(self.clock())
        with LineStore.reading(self.ledger) as store:
            line, _, amount = self._convertible(store, line_id, statement_date, today)
        return self._quote(line, amount, months, today)

    @staticmethod
    def _quote(line: LineRow, amount: int, months: int, today: dt.date) -> InstalmentQuote:
        try:
            return quote_instalments(
                amount,
                months,
                today,
                dt.date.fromisoformat(line.next_statement_on),
                line.statement_day,
            )
        except LendingError as error:
            raise LendingRefusal("months_invalid", str(error)) from None

    def convert_statement(
        self, line_id: str, statement_date: dt.date, plan_id: str, months: int
    ) -> PlanRow:
        """Turn what is owed of a bill's principal into `months` monthly instalments, billed on
        the next statements, after `loan.price` has checked the quoted APR against the cap in
        force. Idempotent by `plan_id`; a bill converts once."""
        if self.rules is None:
            raise LendingRefusal("lending_unavailable", "no rulebook configured")
        digest = _digest(
            {"line": line_id, "statement": statement_date.isoformat(), "months": months}
        )
        with LineStore.writing(self.ledger) as (uow, store):
            existing = store.plan(plan_id)
            if existing is not None:
                if existing.digest != digest:
                    raise LendingRefusal("request_conflict", "the plan id is taken")
                return existing
            now = self._line_now(uow)
            today = local_date(now)
            line, found, amount = self._convertible(store, line_id, statement_date, today)
            if store.plan_for_statement(line_id, found.statement_date) is not None:
                raise LendingRefusal("statement_not_convertible", "the bill was converted before")
            quote = self._quote(line, amount, months, today)
            pricing = self.rules.decide(
                "loan.price",
                {
                    "lender_type": self.lender_type,
                    "apr": quote.apr,
                    "apr_disclosed": True,
                    "apr_most_prominent": True,
                    "upfront_deduction": False,
                },
                today,
                {"plan_id": plan_id, "line_id": line_id, "amount": amount, "months": months},
                uow=uow,
                decision_key=f"line-plan-price:{plan_id}",
            )
            if pricing.outcome > Outcome.report:
                raise LendingRefusal(
                    "instalment_price_refused", "the instalment price is above the cap in force"
                )
            bank, _ = split_repayment(
                amount, line.bank_principal, line.principal - line.bank_principal
            )
            plan = PlanRow(
                plan_id=plan_id,
                line_id=line_id,
                statement_date=found.statement_date,
                amount=amount,
                months=months,
                total_fee=quote.total_fee,
                apr_bps=quote.apr_bps,
                decision_id=pricing.decision_id,
                instalments=tuple(
                    {
                        "number": i.number,
                        "bill_on": i.bill_on.isoformat(),
                        "due_on": i.due_on.isoformat(),
                        "principal": i.principal,
                        "fee": i.fee,
                    }
                    for i in quote.instalments
                ),
                instalments_billed=0,
                digest=digest,
                created_at=now,
            )
            store.insert_plan(plan)
            store.insert_transaction(
                line_id,
                f"conversion/{plan_id}",
                "instalment_conversion",
                amount,
                self._posted(today, line).isoformat(),
                now,
                digest=digest,
                reference=plan_id,
                details={"months": months, "bank": bank},
            )
            store.update_line(
                replace(
                    line,
                    principal=line.principal - amount,
                    bank_principal=line.bank_principal - bank,
                    instalment_principal=line.instalment_principal + amount,
                    bank_instalment_principal=line.bank_instalment_principal + bank,
                    updated_at=now,
                )
            )
        return plan

    # -- reading a line's transactions --------------------------------------------------------

    def line_transactions(
        self, line_id: str, after: str | None = None, limit: int = TRANSACTIONS_PAGE_MAX
    ) -> tuple[list[TransactionEntry], str | None]:
        """One page of the line's transactions in the order they were written, and the cursor
        of the next page (None on the last). The cursor is opaque to callers: `time.txn_id`
        of the last entry read."""
        if type(limit) is not int or not 1 <= limit <= TRANSACTIONS_PAGE_MAX:
            raise LendingRefusal("page_size_invalid", f"a page holds 1 to {TRANSACTIONS_PAGE_MAX}")
        position: tuple[int, str] | None = None
        if after is not None:
            at, _, txn_id = after.partition(".")
            if not at.isdigit() or not txn_id or len(after) > 128:
                raise LendingRefusal("cursor_invalid", "the page cursor is not one this API gave")
            position = (int(at), txn_id)
        with LineStore.reading(self.ledger) as store:
            if store.line(line_id) is None:
                raise LendingRefusal("credit_line_not_found", "no credit line has this id")
            page = store.transactions_page(line_id, position, limit + 1)
        more = len(page) > limit
        page = page[:limit]
        cursor = f"{page[-1].at}.{page[-1].txn_id}" if more else None
        return page, cursor

    # -- overdue lines ------------------------------------------------------------------------

    def classify_lines(self, day: dt.date) -> LineClassification:
        """Days past due, five-tier class and stage of every active and frozen line on `day`.

        A line is past due from the due date of its oldest minimum payment not paid
        (`credit_lines.oldest_unpaid_due`). Set-based per page of `CLASSIFY_BATCH_MAX` lines:
        one statement reads the page's lines, one the bills of all of them with what was
        credited after each; the pure rules decide; only changed lines are written.

        While past due a line is frozen (`frozen_reason` `past_due`); once current again, a
        line this run froze is thawed (a freeze by the operator or for consent stays). A line
        moving into a worse class gets an adverse-change notice (reasons, review path), read
        with the loans' notices; a second run on the same day adds none.

        Penalty interest: none. The line's price is its revolving rate, and a missed minimum
        already costs the grace period, so the whole balance bears that rate from each draw.
        A surcharge on top would be a charge the line's offer and cost table never disclosed
        (L9, L13), so the product charges none and the notice does not mention one.
        """
        label = day.isoformat()
        after = ""
        lines = past_due = worsened = 0
        while True:
            with LineStore.writing(self.ledger) as (uow, store):
                page = store.lines_to_classify(after, CLASSIFY_BATCH_MAX)
                if not page:
                    break
                bills: dict[str, list[BillDue]] = {}
                for bill in store.bills_past_due_date(
                    page[0].line_id, page[-1].line_id, label, BILLS_LOOKED_AT
                ):
                    bills.setdefault(bill.line_id, []).append(
                        BillDue(
                            dt.date.fromisoformat(bill.due_date),
                            bill.minimum_payment,
                            bill.credited_after,
                        )
                    )
                now = self._line_now(uow)
                notices = []
                for line in page:
                    standing = line_standing(bills.get(line.line_id, []), day, LINE_THRESHOLDS)
                    changed = replace(
                        line,
                        days_past_due=standing.days_past_due,
                        tier=standing.tier,
                        stage=standing.stage,
                    )
                    if standing.days_past_due and changed.status == "active":
                        changed = replace(changed, status="frozen", frozen_reason="past_due")
                    elif not standing.days_past_due and changed.frozen_reason == "past_due":
                        changed = replace(changed, status="active", frozen_reason=None)
                    if tier_rank(standing.tier) > tier_rank(line.tier):
                        worsened += 1
                        notices.append(
                            (
                                line.line_id,
                                f"notice/class/{label}/{standing.tier}",
                                line.party_id,
                                now,
                                line_class_change_notice(
                                    line.party_id,
                                    line.line_id,
                                    label,
                                    line.tier,
                                    standing.tier,
                                    standing.days_past_due,
                                ),
                            )
                        )
                    if changed != line:
                        store.update_line(replace(changed, updated_at=now))
                    past_due += standing.days_past_due > 0
                store.insert_notices(notices)
                lines += len(page)
                after = page[-1].line_id
            if len(page) < CLASSIFY_BATCH_MAX:
                break
        _log.info(
            "lines classified %s: %d, %d past due, %d worse", label, lines, past_due, worsened
        )
        return LineClassification(label, lines, past_due, worsened)

    @staticmethod
    def _line_and_done(
        store: LineStore, line_id: str, txn_id: str, digest: bytes, what: str
    ) -> tuple[LineRow, LineTransaction | None]:
        """The line (`credit_line_not_found` without one) and the transaction an operator's
        request already wrote under `txn_id`, if any. The same id with other fields is refused
        `<what>_exists_with_different_fields`: replaying it would answer another request."""
        line = store.line(line_id)
        if line is None:
            raise LendingRefusal("credit_line_not_found", "no credit line has this id")
        done = store.transaction(line_id, txn_id)
        if done is not None and done.digest != digest:
            raise other_fields(what)
        return line, done

    def write_off_line(
        self, line_id: str, write_off_id: str, on: dt.date, reason: str
    ) -> LineWriteOff:
        """Write a line off (the operator): allowed in the loss class or from
        `LINE_WRITE_OFF_DPD` days past due, else `write_off_not_allowed`.

        As for a loan: each funder's part of the principal (revolving and converted, from its
        line receivable) and of the charges (from its line charges receivable) goes to its
        credit losses; no allowance is booked yet, so all of it is impairment loss. The line
        keeps the bank's part of every bucket, so each funder's part is exactly what its
        receivable holds for the line. The line keeps its balances as what remains written off
        (the debt is still owed), its status becomes `written_off` (no draws, no statements,
        no interest), a `write_off` transaction records it and the holder gets a notice with
        the review path. Idempotent by `write_off_id`.
        """
        check_write_off_reason(reason)
        txn_id = f"write-off/{write_off_id}"
        request = write_off_request(on, reason)
        digest = _digest(request)
        with LineStore.writing(self.ledger) as (uow, store):
            line, done = self._line_and_done(store, line_id, txn_id, digest, "write_off")
            if done is not None:
                return self._line_write_off(line_id, write_off_id, done.details, replayed=True)
            if line.status not in ("active", "frozen"):
                raise LendingRefusal("credit_line_not_active", f"the line is {line.status}")
            check_write_off_allowed("line", line.tier, line.days_past_due, LINE_WRITE_OFF_DPD)
            check_write_off_date(on, line.opened_on, "opening")
            # The bank's part of each receivable is what the line recorded of its buckets
            # (largest-remainder splits of each draw and charge), not a share of the balance.
            principal = Held.recorded(
                line.principal + line.instalment_principal,
                line.bank_principal + line.bank_instalment_principal,
            )
            charges = Held.recorded(line.fees + line.interest, line.bank_fees + line.bank_interest)
            plan = plan_write_off(
                LINE,
                bank_of(line.partner_bank_id, line.bank_share_bps),
                (
                    Receivable("principal", LendingAccount.LINE_RECEIVABLE, (principal,)),
                    Receivable("charges", LendingAccount.LINE_CHARGES_RECEIVABLE, (charges,)),
                ),
            )
            self._line_accounts(uow, line)
            events = write_off_transfers(LINE, plan, f"{line_id}/{write_off_id}", line.currency)
            if events:
                _refuse_ledger(uow.create_transfers(events), "write-off")
            now = self._line_now(uow)
            record = write_off_document(
                request,
                {
                    "fees": line.fees,
                    "interest": line.interest,
                    "principal": line.principal,
                    "instalment_principal": line.instalment_principal,
                },
                plan.by_funder,
            )
            store.insert_transaction(
                line_id,
                txn_id,
                "write_off",
                line.owed,
                on.isoformat(),
                now,
                digest=digest,
                reference=write_off_id,
                details=record,
            )
            store.update_line(replace(line, status="written_off", updated_at=now))
            store.insert_notices(
                [
                    (
                        line_id,
                        f"notice/write-off/{write_off_id}",
                        line.party_id,
                        now,
                        line_write_off_notice(
                            line.party_id, line_id, on.isoformat(), line.days_past_due, line.owed
                        ),
                    )
                ]
            )
        _log.info("credit line written off: %d minor units", line.owed)
        return self._line_write_off(line_id, write_off_id, record)

    @staticmethod
    def _line_write_off(
        line_id: str, write_off_id: str, record: dict[str, Any], replayed: bool = False
    ) -> LineWriteOff:
        return LineWriteOff(
            line_id=line_id,
            write_off_id=write_off_id,
            **write_off_fields(record),
            replayed=replayed,
        )

    # -- recoveries on written-off lines ------------------------------------------------------

    @staticmethod
    def _written_off(line: LineRow) -> WrittenOff:
        return WrittenOff(
            fees=line.fees,
            interest=line.interest,
            principal=line.principal,
            instalment_principal=line.instalment_principal,
            bank_fees=line.bank_fees,
            bank_interest=line.bank_interest,
            bank_principal=line.bank_principal,
            bank_instalment_principal=line.bank_instalment_principal,
        )

    @staticmethod
    def _recovered(line: LineRow, remaining: WrittenOff, now: int) -> LineRow:
        """The line once a recovery leaves `remaining` written off (the bank's part of each
        bucket with it, so the next recovery splits from where this one left off)."""
        return replace(
            line,
            fees=remaining.fees,
            interest=remaining.interest,
            principal=remaining.principal,
            instalment_principal=remaining.instalment_principal,
            bank_fees=remaining.bank_fees,
            bank_interest=remaining.bank_interest,
            bank_principal=remaining.bank_principal,
            bank_instalment_principal=remaining.bank_instalment_principal,
            updated_at=now,
        )

    @staticmethod
    def _recovery_events(
        line: LineRow, amounts: LineRecoveryAmounts, source: int, key: str
    ) -> tuple[list[NewTransfer], dict[str, int]]:
        """The transfers that book `amounts` recovered from `source` (the holder's wallet, or
        the merchant's account for a refund), and each funder's part: the bank's is the change
        of its recorded part of each bucket (`recover_line`), the platform's the rest. Each part
        is recovery income in the funder's recoveries account (4202), as for a loan, with the
        cash leaving the client-money reserve for the funder (`losses.recovery_transfers`)."""
        by_funder = funder_split(
            bank_of(line.partner_bank_id, line.bank_share_bps),
            amounts.bank_total,
            amounts.recovered,
        )
        return recovery_transfers(LINE, by_funder, source, key, line.currency), by_funder

    def record_line_recovery(
        self, line_id: str, recovery_id: str, amount: int, on: dt.date
    ) -> LineRecovery:
        """Book cash recovered on a written-off line (the operator), collected from the
        holder's wallet, where a holder's payments arrive, as `record_recovery` does for a loan.

        The cash pays what remains written off by the loans' waterfall (fees, interest, then
        principal, the revolving part before the converted one) and each bucket's payment is
        split by the change of each funder's position in it (`credit_lines.recover_line`), so
        the parts add up to the recovery and a line recovered in full returns to each funder
        exactly what it wrote off. Each part is recovery income in the funder's recoveries
        account, with the cash leaving the client-money reserve for the funder. More than
        remains written off stays in the wallet (`overpayment`). The line stays written off,
        with what remains; the recovery is a `recovery` transaction on it.

        Refusals: `amount_invalid`, `credit_line_not_found`, `line_not_written_off`,
        `nothing_to_recover`, `insufficient_funds` (the wallet), and
        `recovery_exists_with_different_fields` for a known id with another amount or date.
        Idempotent by `recovery_id`.
        """
        check_recovery_amount(amount)
        txn_id = f"recovery/{recovery_id}"
        request = recovery_request(on, amount)
        digest = _digest(request)
        with LineStore.writing(self.ledger) as (uow, store):
            line, done = self._line_and_done(store, line_id, txn_id, digest, "recovery")
            if done is not None:
                return self._line_recovery(line_id, recovery_id, done.details, replayed=True)
            if line.status != "written_off":
                raise LendingRefusal(
                    "line_not_written_off", "only a written-off line takes recoveries"
                )
            amounts = recover_line(self._written_off(line), amount)
            check_recovered(amounts.recovered)
            self._line_accounts(uow, line)
            events, by_funder = self._recovery_events(
                line,
                amounts,
                payments_chart.wallet_account(line.party_id, line.currency),
                f"{line_id}/recovery/{recovery_id}",
            )
            _refuse_ledger(uow.create_transfers(events), "recovery")
            now = self._line_now(uow)
            record = recovery_document(
                request,
                amounts.allocation,
                amounts.overpayment,
                amounts.remaining.total,
                by_funder,
            )
            store.insert_transaction(
                line_id,
                txn_id,
                "recovery",
                amounts.recovered,
                on.isoformat(),
                now,
                digest=digest,
                reference=recovery_id,
                details=record,
            )
            store.update_line(self._recovered(line, amounts.remaining, now))
        _log.info("credit line recovery: %d minor units", amounts.recovered)
        return self._line_recovery(line_id, recovery_id, record)

    @staticmethod
    def _line_recovery(
        line_id: str, recovery_id: str, record: Mapping[str, Any], replayed: bool = False
    ) -> LineRecovery:
        return LineRecovery(
            line_id=line_id, recovery_id=recovery_id, **recovery_fields(record), replayed=replayed
        )

    # -- notices and the portfolio (read by LendingService) ------------------------------------

    def _line_notices(self, party_id: str, limit: int) -> list[dict[str, Any]]:
        with LineStore.reading(self.ledger) as store:
            rows = store.notices_of(party_id, limit)
        return [
            {"notice_id": notice_id, "line_id": line_id, "at": at, **notice}
            for line_id, notice_id, at, notice in rows
        ]

    def _line_portfolio(self, currency: str, lgd: Decimal) -> dict[str, Any]:
        """The lines carried on the books by class and stage, with ECL from each line's
        decision PD (its `credit_line` application's `pd_ppm`, read as a 12-month PD): stage 1
        over twelve months, stage 2 over the line's behavioural life (`LINE_LIFE_MONTHS`, a
        revolving line having no maturity), stage 3 one. EAD is everything owed plus the part
        of an active line's undrawn limit expected to be drawn before default
        (`UNDRAWN_CONVERSION_BPS`): IFRS 9 provides for loan commitments too, and for revolving
        consumer credit over the behavioural life rather than the notice period (B5.5.39).
        Also the sub-ledger against the line receivables."""
        with self.ledger.read(snapshot=True) as ledger_store:
            store = LineStore(ledger_store.connection, ledger_store.backend)
            groups = store.provision_groups(currency)
            principal_owed, charges_owed = store.owed_totals(currency)
            totals = ledger_store.posted_totals_by_code(
                currency,
                (int(LendingAccount.LINE_RECEIVABLE), int(LendingAccount.LINE_CHARGES_RECEIVABLE)),
            )
        by_tier: dict[str, dict[str, int]] = {}
        by_stage: dict[int, dict[str, int]] = {}
        for stage, tier, pd_ppm, count, exposure, undrawn in groups:
            tier_totals = by_tier.setdefault(tier, {"lines": 0, "exposure": 0})
            tier_totals["lines"] += count
            tier_totals["exposure"] += exposure
            stage_totals = by_stage.setdefault(
                stage, {"lines": 0, "exposure": 0, "undrawn": 0, "ecl": 0}
            )
            stage_totals["lines"] += count
            stage_totals["exposure"] += exposure
            stage_totals["undrawn"] += undrawn
            pd_12 = FALLBACK_PD_12_MONTH if pd_ppm is None else Decimal(pd_ppm) / 1_000_000
            # The undrawn part's expected drawdown, rounded down (a whole fen is drawn or not).
            ead = exposure + undrawn * UNDRAWN_CONVERSION_BPS // 10_000
            stage_totals["ecl"] += ecl(ead, stage_pd(stage, pd_12, LINE_LIFE_MONTHS), lgd)
        receivable = totals.get(int(LendingAccount.LINE_RECEIVABLE), (0, 0))
        charges = totals.get(int(LendingAccount.LINE_CHARGES_RECEIVABLE), (0, 0))
        ledger = {
            "line_receivable": receivable[0] - receivable[1],
            "line_charges_receivable": charges[0] - charges[1],
            "sub_ledger_principal": principal_owed,
            "sub_ledger_charges": charges_owed,
        }
        return {
            "by_tier": by_tier,
            "by_stage": {str(stage): totals for stage, totals in sorted(by_stage.items())},
            "ecl_total": sum(totals["ecl"] for totals in by_stage.values()),
            "ledger": ledger,
            "ledger_agrees": ledger["line_receivable"] == principal_owed
            and ledger["line_charges_receivable"] == charges_owed,
        }
