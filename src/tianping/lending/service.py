"""Lending use cases on the ledger: applications and decisions, acceptance and disbursement,
repayment, and the daily accrual.

Every use case runs in one ledger unit of work: the loan sub-ledger's rows, the rule decisions
and the general ledger's transfers commit together or not at all.

An application is decided in this order: the person's live consent decides which data sources
the score may use (application data always; the platform's payment history and the credit
bureau only with a live credit-assessment consent, D1-D3, C1); the scorecard gives the score,
the probability of default and the top adverse reasons from the governed reason library; the
rules engine decides `loan.originate` (balance caps L1/L2, student ban L11, income required
L10, co-lending share L1/L3) and `loan.price` (the all-in APR as an IRR on the actual schedule
within the cap for the lender type, L7-L9, L12; no up-front deduction, L10). A declined
application carries its reasons and the human-review path of the identity context (D4, G5).

Disbursement pays the borrower's wallet; each funder's share (the partner bank's up to 70%,
the platform's at least 30%) is booked in its own loan receivable, and the cash behind the
wallet credit enters the client-money reserve from the funder (the bank through the clearing
house, the platform from its own account), so safeguarding stays whole. Repayment runs the
other way, allocated by the product's waterfall.

Funders' positions. Of every balance of a co-lent loan (principal, interest, penalty interest)
the bank holds `colending.bank_position(balance)` (the balance times its share, rounded down)
and the platform the rest, always: every flow that moves a balance (disbursement, each day's
accrual, each repayment bucket, write-off, recovery) gives the bank the change of its position
and the platform the rest (`loan_book.funder_parts`). So a funder's receivable never drifts from
its position, a balance paid to zero leaves each funder holding zero, and `portfolio` checks
every funder's receivables against the sum of its positions in the sub-ledger to the unit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from tianping.identity import party_service
from tianping.ledger.model import NewTransfer, TransferFlags
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger, LedgerWrite
from tianping.lending import chart
from tianping.lending.bureau import (
    BureauQuery,
    ConsentTokenIssuer,
    CreditBureau,
    SubjectUnknown,
)
from tianping.lending.chart import PLATFORM, LendingAccount, LendingCode
from tianping.lending.colending import CoLendingInputInvalid, concentration
from tianping.lending.line_service import CreditLines
from tianping.lending.line_store import LineStore
from tianping.lending.loan_book import (
    FALLBACK_PD_12_MONTH,
    LGD_DEFAULT,
    ChargeOffGroup,
    PenaltySurcharge,
    charge_offs,
    check_write_off_reason,
    class_change_notice,
    daily_penalty,
    ecl,
    funder_parts,
    write_off_notice,
)
from tianping.lending.loan_book import (
    stage_pd as pd_for_stage,
)
from tianping.lending.losses import (
    LOAN,
    Held,
    Receivable,
    bank_of,
    check_recovered,
    check_recovery_amount,
    check_same_request,
    check_write_off_allowed,
    check_write_off_date,
    plan_write_off,
    recovery_document,
    recovery_fields,
    recovery_parts,
    recovery_request,
    recovery_transfers,
    write_off_document,
    write_off_fields,
    write_off_request,
    write_off_transfers,
)
from tianping.lending.model import (
    Application,
    ApplicationOutcome,
    LendingRefusal,
    PartnerBankFigures,
    PayoffQuote,
    RecoveryOutcome,
    RepaymentOutcome,
    WriteOffOutcome,
)
from tianping.lending.movements import WalletMovements
from tianping.lending.pricing import (
    CostDisclosure,
    CostItem,
    build_cost_disclosure,
    schedule_cash_flows,
)
from tianping.lending.provisioning import (
    CREDIT_IMPAIRED_DPD_THRESHOLD,
    SICR_DPD_THRESHOLD,
    pooled_ecl,
)
from tianping.lending.schedules import RepaymentMethod, Schedule, build_schedule
from tianping.lending.servicing import (
    DEFAULT_WATERFALL,
    PENALTY_UPLIFT_DEFAULT,
    RETAIL_THRESHOLDS,
    Bucket,
    LoanBalances,
    TierThresholds,
    apply_payment,
    recover,
    write_off,
)
from tianping.lending.sme import (
    SME_PRODUCT,
    SME_RECEIPTS_MULTIPLE,
    SME_SERVICE,
    SME_SOURCES,
    SME_TERM_MONTHS_MAX,
    SME_WINDOW_MONTHS,
    AcquiringData,
    receipts_cap,
    sme_features,
)
from tianping.lending.store import (
    ACCRUAL_DENOMINATOR,
    AccrualGroup,
    LendingStore,
    LoanRow,
    new_loan,
)
from tianping.lending.sweep import check_sweep_bps
from tianping.lending.sweep_service import TakingsSweeps
from tianping.lending.sweep_store import SweepStore
from tianping.payments import chart as payments_chart
from tianping.payments.model import PaymentError, local_date
from tianping.rules.model import Outcome
from tianping.rules.service import RulesService

__all__ = [
    "ACCRUAL_DAYS_MAX",
    "NOTICES_PAGE_MAX",
    "WRITE_OFF_DPD_DEFAULT",
    "AccrualReport",
    "Application",
    "ApplicationOutcome",
    "CreditScorer",
    "LendingRefusal",
    "LendingService",
    "PartnerBankFigures",
    "PayoffQuote",
    "RecoveryOutcome",
    "RepaymentOutcome",
    "WriteOffOutcome",
]

# Sources a score may use without consent (what the applicant gave for this application) and
# those that need a live credit-assessment consent.
APPLICATION_SOURCES: Final = frozenset({"application"})
CONSENTED_SOURCES: Final = frozenset({"platform_payments", "bureau"})
# Pricing: a base rate plus a premium that grows with the probability of default, in basis
# points a year; the rules engine then checks the all-in APR against the cap in force.
BASE_RATE_BPS: Final = 720
RISK_PREMIUM_BPS_PER_PD_PERCENT: Final = 60
RATE_BPS_MAX: Final = 2_400
REASONS_SHOWN: Final = 4


_log = logging.getLogger(__name__)

# The all-in annualised cost shown in the disclosure: four decimals (0.0812 is 8.12 %).
_APR_SHOWN: Final = Decimal("0.0001")

# A catch-up accrues at most this many missed days in one call (a year and a leap day).
ACCRUAL_DAYS_MAX: Final = 366
# A loan may be written off once its class is loss, or once it is this many days past due (the
# first day of the doubtful class under the retail thresholds); configurable per service.
WRITE_OFF_DPD_DEFAULT: Final = 181
# Notices returned in one page.
NOTICES_PAGE_MAX: Final = 200
# The platform as the bank's co-lending partner, in the concentration report.
PLATFORM_PARTNER_ID: Final = "tianping"


@dataclass(frozen=True, slots=True)
class AccrualReport:
    day: str
    loans: int
    interest: int
    groups: tuple[AccrualGroup, ...]
    replayed: bool = False
    # The penalty surcharge accrued on overdue principal (not reported on a replay).
    penalty: int = 0


class CreditScorer(Protocol):
    """What the lending service needs of a credit model (a `ScorecardBundle` is one)."""

    def score(self, features: Mapping[str, object], allowed_sources: Iterable[str]) -> Any: ...


class ConsentLookup(Protocol):
    """Whether a person's live consents let a service run (the identity context's privacy
    service is one). Credit lines pass `uow=` too when the lookup takes it, to read the
    consent inside a draw's or a statement run's own transaction."""

    def service_available(self, party_id: str, service: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class BureauAccess:
    """How the lender reaches the licensed bureau: with a consent token the platform signs for
    this lender and purpose, never by reading the platform's data directly (C3, C4). Every
    query, allowed or refused, is in the bureau's log, which the person can read."""

    bureau: CreditBureau
    issuer: ConsentTokenIssuer
    lender_id: str
    clock_s: Callable[[], int]
    # Bureau fields the scorecard reads, by the bureau's name for them.
    fields: Mapping[str, str] = field(
        default_factory=lambda: {
            "bureau_delinquencies": "delinquencies_24m",
            "bureau_inquiries_6m": "inquiries_6m",
        }
    )

    def features(self, application: Application) -> dict[str, object]:
        now = self.clock_s()
        token = self.issuer.issue(
            token_id=f"tok-{application.application_id}",
            subject=application.party_id,
            lender_id=self.lender_id,
            purpose="credit_assessment",
            consent_reference=f"credit-consent:{application.party_id}",
            issued_at=now,
            expires_at=now + 3_600,
        )
        query = BureauQuery(
            f"q-{application.application_id}",
            self.lender_id,
            application.party_id,
            "credit_assessment",
            token,
        )
        try:
            response = self.bureau.query(query, now)
        except SubjectUnknown:
            # No file at the bureau: a thin file, which the scorecard reads as missing values.
            return {}
        return {
            ours: response.fields[theirs]
            for ours, theirs in self.fields.items()
            if theirs in response.fields
        }


class CardRails(Protocol):
    """What lending asks of the payments context's bank rails: a withdrawal from a person's
    wallet to a bank card bound in their own name (P4), through the clearing house."""

    def request_rail(
        self,
        request_id: str,
        direction: str,
        party_id: str,
        card_fingerprint: str,
        amount: int,
        currency: str = "CNY",
    ) -> Any: ...


def _loan_row(store: LendingStore, loan_id: str) -> LoanRow:
    """The loan's sub-ledger row, or the refusal every use case gives for an unknown id."""
    found = store.loan(loan_id)
    if found is None:
        raise LendingRefusal("loan_not_found", "no loan has this id")
    return found


def _loan_and_done(
    store: LendingStore, loan_id: str, event_id: str, request: Mapping[str, Any], what: str
) -> tuple[LoanRow, dict[str, Any] | None]:
    """The loan and the event an operator's request (`what`: a write-off, a recovery) already
    wrote under `event_id`, if any. The same id with other fields than `request` is refused
    `<what>_exists_with_different_fields`: replaying it would answer another request."""
    loan = _loan_row(store, loan_id)
    done = store.event(loan_id, event_id)
    if done is not None:
        check_same_request(what, request, done)
    return loan, done


def _balances(loan: LoanRow) -> LoanBalances:
    """A loan's balances by bucket: what a repayment pays and a write-off removes, and once
    written off what remains written off."""
    return LoanBalances(
        fees=loan.fees_due,
        penalty_interest=loan.penalty_due,
        interest=loan.accrued_interest,
        principal=loan.outstanding_principal,
    )


def _repayment_method(application: Application) -> RepaymentMethod:
    """The schedule the applicant chose: a loan's 等额本息 or 等额本金; a credit line has none
    (its bills are statements), so only the default is accepted for it."""
    try:
        method = RepaymentMethod(application.repayment_method)
    except ValueError:
        raise LendingRefusal(
            "repayment_method_invalid", "the method is equal_instalment or equal_principal"
        ) from None
    if application.product == "credit_line" and method is not RepaymentMethod.EQUAL_INSTALMENT:
        raise LendingRefusal("repayment_method_invalid", "a credit line has no repayment method")
    return method


def _charge_off_sections(
    loans: Sequence[ChargeOffGroup], lines: Sequence[ChargeOffGroup]
) -> dict[str, dict[str, Any]]:
    """The charge-offs of loans, of credit lines and of both, each in total and by funder."""
    return {
        "loans": charge_offs(loans, PLATFORM),
        "credit_lines": charge_offs(lines, PLATFORM),
        "total": charge_offs([*loans, *lines], PLATFORM),
    }


class LendingService(CreditLines, TakingsSweeps, WalletMovements):
    """Lending over one ledger, under one rules service; the credit-line use cases come from
    `CreditLines` (line_service.py), the daily sweep of SME loans from `TakingsSweeps`
    (sweep_service.py), the movements of customers' money for the AML reports from
    `WalletMovements` (movements.py)."""

    def __init__(
        self,
        ledger: Ledger,
        clock: Callable[[], int] | None = None,
        *,
        rules: RulesService | None = None,
        scorer: CreditScorer | None = None,
        consent: ConsentLookup | None = None,
        lender_type: str = "microlender",
        score_cutoff: int = 0,
        pd_cutoff_ppm: int = 150_000,
        profile: Callable[[str], Mapping[str, object]] | None = None,
        bureau: BureauAccess | None = None,
        sme_scorer: CreditScorer | None = None,
        acquiring: AcquiringData | None = None,
        penalty_uplift: Decimal = PENALTY_UPLIFT_DEFAULT,
        write_off_dpd_threshold: int = WRITE_OFF_DPD_DEFAULT,
        partner_banks: Mapping[str, PartnerBankFigures] | None = None,
        lgd: Decimal = LGD_DEFAULT,
        card_rails: CardRails | None = None,
    ) -> None:
        self.ledger = ledger
        # The payments context's bank rails: a loan paid on to the borrower's own card.
        self.card_rails = card_rails
        self.clock: Callable[[], int] = clock if clock is not None else ledger.clock
        self.rules = rules
        self.scorer = scorer
        self.consent = consent
        self.lender_type = lender_type
        self.score_cutoff = score_cutoff
        self.pd_cutoff_ppm = pd_cutoff_ppm
        # The platform's data about a person (their payments), read only with consent.
        self.profile = profile
        # The licensed credit bureau, queried with a consent token for this lender (C3, C4).
        self.bureau = bureau
        # SME loans: the card trained on acquiring cash flows, and the merchant's acquiring
        # (its cash-flow profile with consent, its settlement account's free balance).
        self.sme_scorer = sme_scorer
        self.acquiring = acquiring
        # Overdue principal bears the contract rate raised by this uplift (PBoC 2003).
        self.penalty_surcharge = PenaltySurcharge.for_uplift(penalty_uplift)
        if type(write_off_dpd_threshold) is not int or write_off_dpd_threshold < 1:
            raise ValueError("the write-off threshold is a positive number of days")
        self.write_off_dpd_threshold = write_off_dpd_threshold
        # Each partner bank's registered capital and loan book, for the L3 limits.
        self.partner_banks = dict(partner_banks or {})
        self.lgd = lgd

    def _write(self) -> AbstractContextManager[tuple[LedgerWrite, LendingStore]]:
        return LendingStore.writing(self.ledger)

    def _now(self, uow: LedgerWrite) -> int:
        return max(self.clock(), uow.head.last_timestamp + 1)

    @staticmethod
    def ensure_accounts(uow: LedgerWrite, currency: str, funders: Sequence[str]) -> None:
        """Every lending account of each funder in `currency` (idempotent)."""
        accounts = [
            chart.new_account(kind, funder, currency)
            for funder in funders
            for kind in LendingAccount
        ]
        for account, result in zip(accounts, uow.create_accounts(accounts), strict=True):
            if result not in (CreateAccountResult.ok, CreateAccountResult.exists):
                raise LendingRefusal(
                    "ledger_refused", f"account {account.id} could not be created: {result.name}"
                )

    # -- the daily accrual ------------------------------------------------------------------

    def accrue(self, day: date) -> AccrualReport:
        """Accrue one day's interest on every active loan not yet accrued for `day`, and the
        penalty surcharge on its overdue principal (`loan_book`).

        Set-based: one aggregate and one UPDATE over the whole book, then one ledger transfer
        per currency and funder (debit interest receivable, credit interest income; penalty
        interest in a transfer of its own code). The bank's part of a group's interest is the
        sum over its loans of the change of the bank's position in each loan's accrued interest
        (and likewise for penalty interest), computed by the same aggregate; the platform's is
        the rest. So the general ledger moves exactly what the sub-ledger accrued, and each
        funder's receivable stays its position in the book. Running the same day again accrues
        nothing more (each loan remembers the last day it accrued for).
        """
        label = day.isoformat()
        with self._write() as (uow, store):
            done = store.accrual_run(label)
            if done is not None:
                return AccrualReport(label, done[0], done[1], (), replayed=True)
            # The batch for a day accrues the day before it; the penalty surcharge runs on the
            # principal of instalments due before that day (the due date itself is the last
            # day to pay), in the same two statements as the interest.
            covered = (day - timedelta(days=1)).isoformat()
            surcharge = (
                covered,
                self.penalty_surcharge.numerator,
                self.penalty_surcharge.denominator,
            )
            groups = store.accrual_groups(label, surcharge)
            accrued = store.apply_accrual(label, surcharge)
            loans = sum(group.loans for group in groups)
            if accrued != loans:  # pragma: no cover - both statements see one snapshot
                raise LendingRefusal("accrual_inconsistent", "the book changed during the accrual")
            penalties = [
                replace(group, interest=group.penalty, bank_interest=group.bank_penalty)
                for group in groups
            ]
            transfers = self._accrual_transfers(uow, label, groups) + self._accrual_transfers(
                uow, label, penalties, "penalty", LendingCode.PENALTY_ACCRUAL
            )
            if transfers:
                for result in uow.create_transfers(transfers):
                    if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                        raise LendingRefusal("ledger_refused", f"accrual refused: {result.name}")
            total = sum(group.interest for group in groups)
            penalty = sum(group.penalty for group in groups)
            store.insert_accrual_run(label, loans, total, self._now(uow))
        _log.info("accrued %s: %d loans, %d + %d minor units", label, loans, total, penalty)
        return AccrualReport(label, loans, total, tuple(groups), penalty=penalty)

    def accrue_through(self, day: date, since: date) -> list[AccrualReport]:
        """Accrue every day after `since` up to `day`, in order (a missed batch catches up)."""
        days = (day - since).days
        if not 0 <= days <= ACCRUAL_DAYS_MAX:
            raise LendingRefusal("accrual_range_invalid", f"catch up 0 to {ACCRUAL_DAYS_MAX} days")
        return [self.accrue(since + timedelta(days=offset)) for offset in range(1, days + 1)]

    def _accrual_transfers(
        self,
        uow: LedgerWrite,
        label: str,
        groups: Sequence[AccrualGroup],
        purpose: str = "accrual",
        code: LendingCode = LendingCode.ACCRUAL,
    ) -> list[NewTransfer]:
        per_funder: dict[tuple[str, str], int] = {}
        for group in groups:
            # The bank's part is the change of its positions (`AccrualGroup`); a group the
            # platform funds alone has none, and all of it is the platform's.
            bank_part = group.bank_interest if group.bank_share_bps else 0
            platform_part = group.interest - bank_part
            for funder, amount in ((group.partner_bank_id, bank_part), (PLATFORM, platform_part)):
                if amount:
                    key = (group.currency, funder)
                    per_funder[key] = per_funder.get(key, 0) + amount
        transfers = []
        for (currency, funder), amount in sorted(per_funder.items()):
            self.ensure_accounts(uow, currency, [funder])
            transfers.append(
                NewTransfer(
                    chart.transfer_id(purpose, f"{label}/{currency}/{funder}"),
                    chart.account_id(LendingAccount.INTEREST_RECEIVABLE, funder, currency),
                    chart.account_id(LendingAccount.INTEREST_INCOME, funder, currency),
                    amount,
                    currency,
                    int(code),
                    flags=TransferFlags.LINKED,
                )
            )
        if transfers:
            transfers[-1].flags &= ~TransferFlags.LINKED
        return transfers

    # -- applications -----------------------------------------------------------------------

    def _allowed_sources(self, party_id: str) -> frozenset[str]:
        if self.consent is None:
            return APPLICATION_SOURCES
        check = self.consent.service_available(party_id, "credit_line")
        return APPLICATION_SOURCES | (CONSENTED_SOURCES if check.available else frozenset())

    def apply(self, application: Application) -> ApplicationOutcome:
        """Decide an application (idempotent by its id): score with reasons, rules, pricing."""
        sme = application.product == SME_PRODUCT
        rules, scorer = self.rules, self.sme_scorer if sme else self.scorer
        if rules is None or scorer is None:
            raise LendingRefusal("lending_unavailable", "no credit model or rulebook configured")
        if type(application.amount) is not int or not 0 < application.amount <= 10**10:
            raise LendingRefusal("amount_invalid", "an amount is 1 to 10^10 minor units")
        if type(application.term_months) is not int or not 1 <= application.term_months <= 60:
            raise LendingRefusal("term_invalid", "a term is 1 to 60 months")
        method = _repayment_method(application)
        terms: dict[str, Any] = {
            "party": application.party_id,
            "amount": application.amount,
            "term": application.term_months,
            "income": application.annual_income,
            "product": application.product,
        }
        if method is not RepaymentMethod.EQUAL_INSTALMENT:
            # Only when chosen, so the digests of applications stored before the choice existed
            # (all equal instalments) still match their replays.
            terms["method"] = method.value
        digest = hashlib.sha256(json.dumps(terms, sort_keys=True).encode()).digest()
        if sme:
            return self._apply_sme(application, digest, rules, scorer)
        # A business is never scored as a consumer: consumer products are a person's.
        self._require_applicant_kind(
            application.party_id,
            "person",
            "applicant_not_person",
            "a merchant applies only for an SME loan",
        )
        sources = self._allowed_sources(application.party_id)
        features = dict(application.features or {})
        if self.profile is not None and "platform_payments" in sources:
            for name, value in self.profile(application.party_id).items():
                features.setdefault(name, value)
        if self.bureau is not None and "bureau" in sources:
            for name, value in self.bureau.features(application).items():
                features.setdefault(name, value)
        features.setdefault("annual_income", application.annual_income)
        features.setdefault("requested_amount", application.amount)
        scored = scorer.score(features, sources)
        return self._decide(application, digest, scored, {}, rules)

    def _require_applicant_kind(self, party_id: str, kind: str, code: str, message: str) -> None:
        """Refuse an applicant of the wrong kind (identity's record decides, not the caller)."""
        if str(party_service.get_party(self.ledger, party_id).kind) != kind:
            raise LendingRefusal(code, message)

    def _decide(
        self,
        application: Application,
        digest: bytes,
        scored: Any,
        product_facts: Mapping[str, Any],
        rules: RulesService,
    ) -> ApplicationOutcome:
        """Record the decision on a scored application (idempotent by its id): the rules in
        force (`loan.originate` with the product's facts over a person's consumer defaults),
        the price within the caps (`loan.price`), the credit cut-offs and the reasons."""
        with self._write() as (uow, store):
            stored = store.application(application.application_id)
            if stored is not None:
                if stored[1] != digest:
                    raise LendingRefusal("request_conflict", "the application id is taken")
                return replace(self._disclosed(store, stored), replayed=True)
            now = self._now(uow)
            on = local_date(now)
            outstanding = store.outstanding_of(application.party_id, application.currency)
            bank_share = 7_000 if application.partner_bank_id else 0
            facts: dict[str, Any] = {
                "lender_type": self.lender_type,
                "party_type": "person",
                "amount": application.amount,
                "currency": application.currency,
                "outstanding_balance": outstanding,
                "household_outstanding_balance": outstanding,
                "annual_income_3y_avg": application.annual_income,
                "loan_purpose": "consumer",
                "co_lending": bank_share > 0,
                "is_student": application.is_student,
                "has_income": application.has_income,
                **product_facts,
            }
            if bank_share:
                facts["partner_share"] = Decimal(10_000 - bank_share) / 10_000
            command = {"application_id": application.application_id, "amount": application.amount}
            origination = rules.decide(
                "loan.originate",
                facts,
                on,
                command,
                uow=uow,
                decision_key=f"loan-originate:{application.application_id}",
            )
            pd_ppm = min(1_000_000, max(0, round(scored.pd * 1_000_000)))
            rate_bps = min(
                RATE_BPS_MAX, BASE_RATE_BPS + RISK_PREMIUM_BPS_PER_PD_PERCENT * pd_ppm // 10_000
            )
            schedule = build_schedule(
                application.amount,
                Decimal(rate_bps) / 10_000,
                application.term_months,
                on,
                method=RepaymentMethod(application.repayment_method),
            )
            # The cost table (L13) solves the all-in APR (L9) once, for pricing and disclosure.
            costs = self._cost_table(schedule, rate_bps, application.partner_bank_id)
            apr = costs.annualised_all_in_cost
            pricing = rules.decide(
                "loan.price",
                {
                    "lender_type": self.lender_type,
                    "apr": apr,
                    "apr_disclosed": True,
                    "apr_most_prominent": True,
                    "upfront_deduction": False,
                },
                on,
                command,
                uow=uow,
                decision_key=f"loan-price:{application.application_id}",
            )
            reasons = tuple(
                {"reason_id": r.reason_id, "text_en": r.text_en, "text_zh": r.text_zh}
                for r in scored.reasons[:REASONS_SHOWN]
            )
            rule_ids = origination.rule_ids + pricing.rule_ids
            credit_ok = scored.score_points >= self.score_cutoff and pd_ppm < self.pd_cutoff_ppm
            approved = (
                credit_ok
                and origination.outcome <= Outcome.report
                and pricing.outcome <= Outcome.report
            )
            outcome = ApplicationOutcome(
                application_id=application.application_id,
                party_id=application.party_id,
                outcome="approved" if approved else "declined",
                score=int(scored.score_points),
                pd_ppm=pd_ppm,
                reasons=reasons if not approved or not credit_ok else (),
                model_version=str(scored.model_version),
                rule_ids=rule_ids,
                decision_id=origination.decision_id,
                rate_bps=rate_bps if approved else None,
                apr_bps=int((apr * 10_000).to_integral_value()) if approved else None,
                sources=tuple(sorted(scored.used_sources)),
                review_path=(
                    None
                    if approved
                    else f"/v1/identity/parties/{application.party_id}/review-requests"
                ),
                repayment_method=application.repayment_method,
            )
            if not approved and credit_ok and not reasons:
                outcome = replace(outcome, reasons=())
            store.insert_application(outcome, application, digest, now)
        if approved:
            outcome = replace(
                outcome,
                cost_disclosure=self._cost_document(costs, rate_bps, application.partner_bank_id),
            )
        return outcome

    def _apply_sme(
        self,
        application: Application,
        digest: bytes,
        rules: RulesService,
        scorer: CreditScorer,
    ) -> ApplicationOutcome:
        """Decide a merchant's working-capital application on its own acquiring cash flows
        (see `tianping.lending.sme`): only a merchant applies, only with its live
        credit-assessment consent, for at most the cap its receipts support."""
        with LendingStore.reading(self.ledger) as store:
            stored = store.application(application.application_id)
        if stored is not None:
            # A replay answers what was decided, whatever the receipts say today.
            if stored[1] != digest:
                raise LendingRefusal("request_conflict", "the application id is taken")
            return replace(stored[0], replayed=True)
        if application.term_months > SME_TERM_MONTHS_MAX:
            raise LendingRefusal(
                "term_invalid", f"an SME loan is 1 to {SME_TERM_MONTHS_MAX} months"
            )
        self._require_applicant_kind(
            application.party_id,
            "merchant",
            "applicant_not_merchant",
            "only a merchant applies for an SME loan",
        )
        if self.acquiring is None:
            raise LendingRefusal("lending_unavailable", "SME lending is not configured")
        if (
            self.consent is None
            or not self.consent.service_available(application.party_id, SME_SERVICE).available
        ):
            raise LendingRefusal(
                "sme_consent_required",
                "an SME loan reads the merchant's acquiring cash flows only with its live "
                f"credit-assessment consent (service {SME_SERVICE})",
            )
        profile = self.acquiring.merchant_cash_flow_profile(
            application.party_id,
            local_date(self.clock()),
            SME_WINDOW_MONTHS,
            application.currency,
        )
        cap = receipts_cap(profile)
        if application.amount > cap:
            raise LendingRefusal(
                "amount_above_receipts_cap",
                f"an SME loan is at most {cap} minor units: {SME_RECEIPTS_MULTIPLE} times the "
                f"mean monthly receipts of the last {SME_WINDOW_MONTHS} months",
            )
        # The platform's figures override anything a caller passed under the same names.
        features = {
            **dict(application.features or {}),
            **sme_features(
                profile, application.amount, application.term_months, application.annual_income
            ),
        }
        scored = scorer.score(features, SME_SOURCES)
        return self._decide(
            application,
            digest,
            scored,
            {"party_type": "entity", "loan_purpose": "business"},
            rules,
        )

    def application(self, application_id: str) -> ApplicationOutcome:
        with LendingStore.reading(self.ledger) as store:
            stored = store.application(application_id)
            if stored is None:
                raise LendingRefusal("application_not_found", "no application has this id")
            return self._disclosed(store, stored)

    # -- acceptance and disbursement ---------------------------------------------------------

    def accept(self, application_id: str, loan_id: str, sweep_bps: int = 0) -> LoanRow:
        """Take up an approved offer: the loan is booked and its principal paid to the wallet.

        An SME loan may be taken up with a sweep: `sweep_bps` of each day's takings repays it
        before settlement (`sweep_repayments`); other products take none (`sweep_invalid`)."""
        check_sweep_bps(sweep_bps)
        with self._write() as (uow, store):
            existing = store.loan(loan_id)
            if existing is not None:
                agreed = SweepStore(uow.connection, uow.store.backend).sweep_bps(loan_id)
                if existing.application_id != application_id or agreed != sweep_bps:
                    raise LendingRefusal("request_conflict", "the loan id is taken")
                return existing
            found = store.application(application_id)
            if found is None:
                raise LendingRefusal("application_not_found", "no application has this id")
            outcome, _, amount, term, currency, partner = found
            product = store.application_product(application_id)
            if product == "credit_line":
                raise LendingRefusal(
                    "application_is_credit_line", "a credit-line offer is opened as a line"
                )
            if outcome.outcome != "approved" or outcome.rate_bps is None:
                raise LendingRefusal("application_not_approved", "only an approved offer is taken")
            if store.loan_for_application(application_id) is not None:
                raise LendingRefusal("offer_taken", "the offer was already taken")
            if sweep_bps and product != SME_PRODUCT:
                raise LendingRefusal(
                    "sweep_invalid", "only an SME loan is repaid from a sweep of takings"
                )
            now = self._now(uow)
            on = local_date(now)
            funder = partner or PLATFORM
            bank_share = 7_000 if partner else 0
            self.ensure_accounts(uow, currency, sorted({funder, PLATFORM}))
            wallet = self._disbursement_account(outcome.party_id, currency, product)
            shares = self._shares(0, amount, bank_share, funder)
            events = []
            for index, (share_funder, share) in enumerate(shares):
                source = (
                    payments_chart.operating_account(currency)
                    if share_funder == PLATFORM
                    else payments_chart.clearing_account(share_funder, currency)
                )
                if share_funder != PLATFORM:
                    self._create_payment_clearing(uow, share_funder, currency)
                events += [
                    NewTransfer(
                        chart.transfer_id("disburse", f"{loan_id}/{index}"),
                        chart.account_id(LendingAccount.LOAN_RECEIVABLE, share_funder, currency),
                        wallet,
                        share,
                        currency,
                        int(LendingCode.DISBURSEMENT),
                        flags=TransferFlags.LINKED,
                    ),
                    NewTransfer(
                        chart.transfer_id("disburse-cash", f"{loan_id}/{index}"),
                        payments_chart.reserve_account(currency),
                        source,
                        share,
                        currency,
                        int(LendingCode.DISBURSEMENT_FUNDING),
                        flags=TransferFlags.LINKED,
                    ),
                ]
            events[-1].flags &= ~TransferFlags.LINKED
            self._expect_ok(uow.create_transfers(events), "disbursement")
            schedule = build_schedule(
                amount,
                Decimal(outcome.rate_bps) / 10_000,
                term,
                on,
                method=RepaymentMethod(outcome.repayment_method),
            )
            loan = new_loan(
                loan_id=loan_id,
                application_id=application_id,
                party_id=outcome.party_id,
                currency=currency,
                partner_bank_id=funder,
                bank_share_bps=bank_share,
                rate_bps=outcome.rate_bps,
                principal=amount,
                disbursed_on=on.isoformat(),
                at=now,
                next_due_on=schedule.instalments[0].due_date.isoformat(),
                product=product,
            )
            store.insert_loans([loan])
            if sweep_bps:
                SweepStore(uow.connection, uow.store.backend).set_sweep_bps(loan_id, sweep_bps)
            store.insert_instalments(
                loan_id,
                [
                    (i.number, i.due_date.isoformat(), i.principal, i.interest)
                    for i in schedule.instalments
                ],
            )
            store.insert_event(loan_id, "disbursement", "disbursement", now, {"amount": amount})
        return loan

    def _disbursement_account(self, party_id: str, currency: str, product: str) -> int:
        """Where a loan's principal is paid: the merchant's settlement account (its payable)
        for an SME loan, the borrower's wallet otherwise."""
        if product == SME_PRODUCT:
            account = payments_chart.merchant_account(party_id, currency)
            if self.ledger.lookup_account(account) is None:
                raise LendingRefusal(
                    "merchant_not_found", "the merchant has no settlement account to pay into"
                )
            return account
        wallet = payments_chart.wallet_account(party_id, currency)
        if self.ledger.lookup_account(wallet) is None:
            raise LendingRefusal("wallet_not_found", "the borrower has no wallet to pay into")
        return wallet

    def _repayment_account(self, uow: LedgerWrite, loan: LoanRow, debited: int) -> int:
        """Where a repayment comes from: the borrower's wallet, or for an SME loan the
        merchant's settlement account, of which it may take only what the next settlement
        does not pay out (so no settlement ever fails for a repayment)."""
        if loan.product != SME_PRODUCT:
            return payments_chart.wallet_account(loan.party_id, loan.currency)
        if self.acquiring is None:
            raise LendingRefusal("lending_unavailable", "SME lending is not configured")
        free = self.acquiring.merchant_free_balance(loan.party_id, loan.currency, uow)
        if debited > free:
            raise LendingRefusal(
                "insufficient_funds", "the settlement account's free balance cannot pay this"
            )
        return payments_chart.merchant_account(loan.party_id, loan.currency)

    @staticmethod
    def _shares(before: int, after: int, bank_share: int, funder: str) -> list[tuple[str, int]]:
        """Each funder's part of a flow moving a balance of a loan from `before` to `after`,
        the bank first (`loan_book.funder_parts`); parts of zero are left out."""
        parts = funder_parts(before, after, bank_share, funder, PLATFORM)
        ordered = sorted(parts.items(), key=lambda item: item[0] == PLATFORM)
        return [(name, part) for name, part in ordered if part]

    @staticmethod
    def _create_payment_clearing(uow: LedgerWrite, bank: str, currency: str) -> None:
        account = payments_chart.new_account(
            payments_chart.AccountCode.CLEARING,
            payments_chart.clearing_account(bank, currency),
            currency,
        )
        uow.create_accounts([account])

    @staticmethod
    def _expect_ok(results: Sequence[CreateTransferResult], what: str) -> None:
        # In a linked chain the failing event is not the first; the others say only that the
        # chain failed. The root cause decides the answer.
        if CreateTransferResult.exceeds_credits in results:
            raise LendingRefusal("insufficient_funds", f"the wallet cannot pay the {what}")
        for result in results:
            if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                raise LendingRefusal("ledger_refused", f"the {what} was refused: {result.name}")

    def disburse_to_card(self, loan_id: str, card_fingerprint: str) -> dict[str, Any]:
        """Pay a consumer loan's principal on from the wallet it was disbursed into to the
        borrower's own bound bank card (P4), through the clearing house: disbursement "to the
        bank card" is the wallet credit followed at once by this withdrawal, so the loan is
        booked once however the rail ends. The withdrawal is held at once; the clearing house's
        callback posts it, and a decline or a timeout voids it and the money stays in the
        wallet, where the borrower sees it. Idempotent per loan (the rail request's id is
        derived from the loan's), so retrying an acceptance never pays twice."""
        loan = self.loan(loan_id)
        if loan.product == SME_PRODUCT:
            raise LendingRefusal(
                "disbursement_target_invalid",
                "an SME loan is paid into the settlement account; a merchant payout moves it on",
            )
        if self.card_rails is None:
            raise LendingRefusal("lending_unavailable", "no bank rails are configured")
        request_id = "loan-to-card-" + hashlib.sha256(loan_id.encode()).hexdigest()[:32]
        try:
            rail = self.card_rails.request_rail(
                request_id,
                "withdrawal",
                loan.party_id,
                card_fingerprint,
                loan.principal,
                loan.currency,
            )
        except PaymentError as refused:
            raise LendingRefusal(refused.code, str(refused)) from None
        return {
            "loan_id": loan_id,
            "request_id": rail.request_id,
            "amount": rail.amount,
            "currency": rail.currency,
            "state": rail.state,
        }

    def loan(self, loan_id: str) -> LoanRow:
        with LendingStore.reading(self.ledger) as store:
            found = _loan_row(store, loan_id)
        return found

    def schedule(self, loan_id: str) -> dict[str, Any]:
        """The loan's repayment schedule (its method, and each instalment's due date, principal
        and interest as priced at disbursement, with what has been paid of each)."""
        with LendingStore.reading(self.ledger) as store:
            loan = _loan_row(store, loan_id)
            found = store.application(loan.application_id)
            instalments = store.instalments(loan_id)
        method = found[0].repayment_method if found is not None else "equal_instalment"
        return {
            "loan_id": loan_id,
            "currency": loan.currency,
            "repayment_method": method,
            "instalments": instalments,
        }

    # -- repayment ---------------------------------------------------------------------------

    def repay(self, loan_id: str, payment_id: str, amount: int) -> RepaymentOutcome:
        """Repay from the borrower's wallet: fees, penalty interest, interest, then principal
        (the default waterfall), each bucket split between the funders by the change of their
        positions in it, so a payoff takes each funder's receivable to exactly zero. Paying more
        than is owed pays what is owed and reports the rest as overpayment, which stays in the
        wallet. The loan is first accrued up to today, so paying today's payoff quote
        (`quote_payoff`) closes it. Idempotent by `payment_id`."""
        if type(amount) is not int or amount <= 0:
            raise LendingRefusal("amount_invalid", "a repayment is a positive amount")
        with self._write() as (uow, store):
            loan = _loan_row(store, loan_id)
            done = store.event(loan_id, f"repayment/{payment_id}")
            if done is not None:
                return RepaymentOutcome(
                    loan_id,
                    payment_id,
                    done["allocation"],
                    done["overpayment"],
                    loan.status,
                    replayed=True,
                )
            if loan.status != "active":
                raise LendingRefusal("loan_not_active", "the loan is not active")
            now = self._now(uow)
            loan = self._accrue_to_date(uow, store, loan, payment_id, local_date(now))
            balances = _balances(loan)
            after, allocation, overpayment = apply_payment(balances, amount, DEFAULT_WATERFALL)
            wallet = self._repayment_account(uow, loan, amount - overpayment)
            events: list[NewTransfer] = []
            for bucket, kind, code in (
                (Bucket.PRINCIPAL, LendingAccount.LOAN_RECEIVABLE, LendingCode.REPAYMENT_PRINCIPAL),
                (
                    Bucket.INTEREST,
                    LendingAccount.INTEREST_RECEIVABLE,
                    LendingCode.REPAYMENT_INTEREST,
                ),
                (
                    Bucket.PENALTY_INTEREST,
                    LendingAccount.INTEREST_RECEIVABLE,
                    LendingCode.REPAYMENT_PENALTY,
                ),
            ):
                paid = allocation[bucket]
                if not paid:
                    continue
                owed = balances.amount(bucket)
                for funder, share in self._shares(
                    owed, owed - paid, loan.bank_share_bps, loan.partner_bank_id
                ):
                    key = f"{loan_id}/{payment_id}/{bucket.value}/{funder}"
                    sink = (
                        payments_chart.operating_account(loan.currency)
                        if funder == PLATFORM
                        else payments_chart.clearing_account(funder, loan.currency)
                    )
                    events += [
                        NewTransfer(
                            chart.transfer_id("repay", key),
                            wallet,
                            chart.account_id(kind, funder, loan.currency),
                            share,
                            loan.currency,
                            int(code),
                            flags=TransferFlags.LINKED,
                        ),
                        NewTransfer(
                            chart.transfer_id("repay-cash", key),
                            sink,
                            payments_chart.reserve_account(loan.currency),
                            share,
                            loan.currency,
                            int(LendingCode.REPAYMENT_FUNDING),
                            flags=TransferFlags.LINKED,
                        ),
                    ]
            if events:
                events[-1].flags &= ~TransferFlags.LINKED
                self._expect_ok(uow.create_transfers(events), "repayment")
            status = "repaid" if after.total == 0 else "active"
            store.record_instalment_payments(
                loan_id, allocation[Bucket.PRINCIPAL], allocation[Bucket.INTEREST]
            )
            store.update_balances(
                replace(
                    loan,
                    outstanding_principal=after.principal,
                    accrued_interest=after.interest,
                    fees_due=after.fees,
                    penalty_due=after.penalty_interest,
                    status=status,
                    # The oldest instalment still open: the daily penalty accrual looks only at
                    # loans whose next due date has passed.
                    next_due_on=None if status == "repaid" else store.next_unpaid_due(loan_id),
                ),
                now,
            )
            shown = {bucket.value: paid for bucket, paid in allocation.items()}
            store.insert_event(
                loan_id,
                f"repayment/{payment_id}",
                "repayment",
                now,
                {"allocation": shown, "overpayment": overpayment},
            )
        return RepaymentOutcome(loan_id, payment_id, shown, overpayment, status)

    # -- loan-book quality --------------------------------------------------------------------

    def classify(self, day: date, thresholds: TierThresholds = RETAIL_THRESHOLDS) -> int:
        """Days past due, the five-tier class and the expected-loss stage of every active loan
        on `day`, set-based (four statements for the whole book); returns how many loans.

        A loan moving into a worse class gets an adverse-change notice for its borrower, with the
        reasons and the path to a human review (D4, G5, G7); a second run on the same day adds
        none."""
        label = day.isoformat()
        limits = (
            thresholds.special_mention_from,
            thresholds.substandard_from,
            thresholds.doubtful_from,
            thresholds.loss_from,
        )
        with self._write() as (uow, store):
            store.refresh_days_past_due(label)
            worse = store.worsening(*limits)
            count = store.apply_classes(*limits, SICR_DPD_THRESHOLD, CREDIT_IMPAIRED_DPD_THRESHOLD)
            now = self._now(uow)
            store.insert_notices(
                [
                    (
                        loan_id,
                        f"notice/class/{label}/{to_tier}",
                        now,
                        class_change_notice(party_id, loan_id, label, from_tier, to_tier, dpd),
                    )
                    for loan_id, party_id, from_tier, to_tier, dpd in worse
                ]
            )
        if worse:
            _log.info("classified %s: %d loans worsened", label, len(worse))
        return count

    def portfolio(
        self,
        currency: str = "CNY",
        stage_pd: Mapping[int, Decimal] | None = None,
        lgd: Decimal | None = None,
        *,
        since: date | None = None,
        until: date | None = None,
    ) -> dict[str, Any]:
        """The active book by five-tier class and stage, with the expected-loss provision of
        each stage, and the sub-ledger against the general ledger; and the credit losses to
        date (`credit_losses`, see `_credit_losses`), also over the window from `since`
        through `until` when either is given.

        PDs come from each loan's own decision: the scorecard's PD (`pd_ppm` on its
        application) is read as a 12-month PD and turned into the PD of the horizon the loan's
        stage needs (`loan_book.stage_pd`: twelve months in stage 1, the remaining instalments
        in stage 2, one in stage 3). LGD is one figure for the unsecured book (45 % by default,
        `loan_book.LGD_DEFAULT`). EAD is everything the borrower owes on the day: principal,
        accrued interest, penalty interest and fees (an instalment loan has no undrawn
        commitment, so no conversion factor). The book is grouped in SQL by stage, class,
        decision PD and remaining instalments, and PD x LGD x EAD is rounded once per group.
        With `stage_pd`, one PD per stage is applied instead (the former collective method).

        `ledger_agrees` checks the receivable accounts against the sub-ledger in total and, in
        `ledger_by_funder`, each funder's: a bank's receivables must hold exactly the sum of
        its positions (`colending.bank_position`) in each active loan's balances, the
        platform's the rest.
        """
        loss_given_default = self.lgd if lgd is None else lgd
        with self.ledger.read(snapshot=True) as ledger_store:
            store = LendingStore(ledger_store.connection, ledger_store.backend)
            groups = store.provision_groups(currency)
            principal_owed, interest_owed = store.owed_totals(currency)
            totals = ledger_store.posted_totals_by_code(
                currency,
                (int(LendingAccount.LOAN_RECEIVABLE), int(LendingAccount.INTEREST_RECEIVABLE)),
            )
            positions = self._funder_positions(
                store.positions_by_funder(currency), store.funders(currency)
            )
            accounts = ledger_store.fetch_accounts(
                [
                    chart.account_id(kind, funder, currency)
                    for funder in positions
                    for kind in (LendingAccount.LOAN_RECEIVABLE, LendingAccount.INTEREST_RECEIVABLE)
                ]
            )
        by_tier: dict[str, dict[str, int]] = {}
        by_stage: dict[int, dict[str, int]] = {}
        for stage, tier, pd_ppm, remaining, loans, exposure in groups:
            tier_totals = by_tier.setdefault(tier, {"loans": 0, "exposure": 0})
            tier_totals["loans"] += loans
            tier_totals["exposure"] += exposure
            stage_totals = by_stage.setdefault(stage, {"loans": 0, "exposure": 0, "ecl": 0})
            stage_totals["loans"] += loans
            stage_totals["exposure"] += exposure
            if stage_pd is None:
                pd_12 = FALLBACK_PD_12_MONTH if pd_ppm is None else Decimal(pd_ppm) / 1_000_000
                stage_totals["ecl"] += ecl(
                    exposure, pd_for_stage(stage, pd_12, remaining), loss_given_default
                )
        if stage_pd is not None:
            for stage, stage_totals in by_stage.items():
                stage_totals["ecl"], _ = pooled_ecl(
                    [stage_totals["exposure"]], stage_pd[stage], loss_given_default
                )
        receivable = totals.get(int(LendingAccount.LOAN_RECEIVABLE), (0, 0))
        interest = totals.get(int(LendingAccount.INTEREST_RECEIVABLE), (0, 0))
        by_funder: dict[str, dict[str, int]] = {}
        for funder, (principal_held, interest_held) in sorted(positions.items()):
            held = {}
            for kind in (LendingAccount.LOAN_RECEIVABLE, LendingAccount.INTEREST_RECEIVABLE):
                account = accounts.get(chart.account_id(kind, funder, currency))
                held[kind] = (
                    0 if account is None else account.debits_posted - account.credits_posted
                )
            by_funder[funder] = {
                "loan_receivable": held[LendingAccount.LOAN_RECEIVABLE],
                "interest_receivable": held[LendingAccount.INTEREST_RECEIVABLE],
                "sub_ledger_principal": principal_held,
                "sub_ledger_interest": interest_held,
            }
        funders_agree = all(
            figures["loan_receivable"] == figures["sub_ledger_principal"]
            and figures["interest_receivable"] == figures["sub_ledger_interest"]
            for figures in by_funder.values()
        )
        ledger = {
            "loan_receivable": receivable[0] - receivable[1],
            "interest_receivable": interest[0] - interest[1],
            "sub_ledger_principal": principal_owed,
            "sub_ledger_interest": interest_owed,
        }
        return {
            "currency": currency,
            "pd_basis": "collective" if stage_pd is not None else "decision_pd",
            "lgd": str(loss_given_default),
            "by_tier": by_tier,
            "by_stage": {str(stage): totals for stage, totals in sorted(by_stage.items())},
            "ecl_total": sum(totals["ecl"] for totals in by_stage.values()),
            "ledger": ledger,
            "ledger_by_funder": by_funder,
            "ledger_agrees": ledger["loan_receivable"] == principal_owed
            and ledger["interest_receivable"] == interest_owed
            and funders_agree,
            "credit_lines": self._line_portfolio(currency, loss_given_default),
            "credit_losses": self._credit_losses(currency, since, until),
        }

    def _credit_losses(
        self, currency: str, since: date | None, until: date | None
    ) -> dict[str, Any]:
        """What has been written off and recovered to date, of loans and of credit lines apart
        and together, in total and by funder: gross amounts, the net charge-off (written off
        less recovered) and the recovery rate (`loan_book.charge_offs`), summed in SQL from
        the loans' write-off and recovery events and the lines' transactions.

        The ledger check reads the same snapshot: each funder's credit losses (4201, a debit
        balance) must hold exactly what the sub-ledger says it wrote off of loans and lines,
        and its recoveries (4202, a credit balance) what it recovered; and so must the totals
        over every account of the two codes, which would also show a balance under a funder
        the sub-ledger does not know. Nothing else posts to either account, so any difference
        is a fault, reported in `ledger_agrees` and never netted away.

        With `since` or `until` (inclusive), `window` gives the same figures for the write-offs
        and recoveries dated in it (a write-off's date, a recovery's date); it has no ledger
        check, the ledger's balances being cumulative. A rate over a window may exceed one
        (recoveries of older losses)."""
        if since is not None and until is not None and since > until:
            raise LendingRefusal("window_invalid", "the window ends before it starts")
        bounds = tuple(None if day is None else day.isoformat() for day in (since, until))
        with self.ledger.read(snapshot=True) as ledger_store:
            loans = LendingStore(ledger_store.connection, ledger_store.backend)
            lines = LineStore(ledger_store.connection, ledger_store.backend)
            loan_groups = loans.charge_off_groups(currency)
            line_groups = lines.charge_off_groups(currency)
            windowed = (
                None
                if since is None and until is None
                else (
                    loans.charge_off_groups(currency, *bounds),
                    lines.charge_off_groups(currency, *bounds),
                )
            )
            funders = sorted(
                {PLATFORM, *loans.funders(currency)}
                | {group.funder for group in (*loan_groups, *line_groups)}
            )
            kinds = (LendingAccount.CREDIT_LOSSES, LendingAccount.RECOVERIES)
            totals = ledger_store.posted_totals_by_code(currency, [int(kind) for kind in kinds])
            accounts = ledger_store.fetch_accounts(
                [chart.account_id(kind, funder, currency) for funder in funders for kind in kinds]
            )
        report = _charge_off_sections(loan_groups, line_groups)
        by_funder: dict[str, dict[str, int]] = {}
        for funder in funders:
            losses = accounts.get(chart.account_id(LendingAccount.CREDIT_LOSSES, funder, currency))
            income = accounts.get(chart.account_id(LendingAccount.RECOVERIES, funder, currency))
            figures = report["total"]["by_funder"].get(funder, {})
            by_funder[funder] = {
                "credit_losses": 0
                if losses is None
                else losses.debits_posted - losses.credits_posted,
                "recoveries": 0 if income is None else income.credits_posted - income.debits_posted,
                "sub_ledger_written_off": figures.get("written_off", 0),
                "sub_ledger_recovered": figures.get("recovered", 0),
            }
        losses_posted = totals.get(int(LendingAccount.CREDIT_LOSSES), (0, 0))
        recoveries_posted = totals.get(int(LendingAccount.RECOVERIES), (0, 0))
        ledger = {
            "credit_losses": losses_posted[0] - losses_posted[1],
            "recoveries": recoveries_posted[1] - recoveries_posted[0],
            "sub_ledger_written_off": report["total"]["written_off"],
            "sub_ledger_recovered": report["total"]["recovered"],
        }
        return {
            **report,
            "ledger": ledger,
            "ledger_by_funder": by_funder,
            "ledger_agrees": all(
                figures["credit_losses"] == figures["sub_ledger_written_off"]
                and figures["recoveries"] == figures["sub_ledger_recovered"]
                for figures in (ledger, *by_funder.values())
            ),
            "window": None
            if windowed is None
            else {"since": bounds[0], "until": bounds[1], **_charge_off_sections(*windowed)},
        }

    @staticmethod
    def _funder_positions(
        rows: Sequence[tuple[str, int, int, int, int]], funders: Iterable[str]
    ) -> dict[str, tuple[int, int]]:
        """(principal, interest and penalty interest) each funder holds of the active book by
        the invariant: a bank its positions (`LendingStore.positions_by_funder`), the platform
        the rest of every loan. A funder without an active loan holds nothing."""
        held: dict[str, tuple[int, int]] = {funder: (0, 0) for funder in funders}
        held.setdefault(PLATFORM, (0, 0))
        for bank, principal, bank_principal, interest, bank_interest in rows:
            platform = held[PLATFORM]
            held[PLATFORM] = (
                platform[0] + principal - bank_principal,
                platform[1] + interest - bank_interest,
            )
            own = held.get(bank, (0, 0))
            held[bank] = (own[0] + bank_principal, own[1] + bank_interest)
        return held

    # -- early repayment ------------------------------------------------------------------

    def _pending_accrual(
        self, store: LendingStore, loan: LoanRow, on: date
    ) -> tuple[int, int, int]:
        """(interest, the new sub-fen remainder, penalty surcharge) the daily batch would add to
        `loan` for the days from its last accrual up to `on`: the same integers, so a payoff
        between two batches settles exactly what the batches would have accrued."""
        last = date.fromisoformat(loan.last_accrual_on)
        days = (on - last).days
        if days <= 0:
            return 0, loan.accrual_remainder, 0
        if days > ACCRUAL_DAYS_MAX:
            raise LendingRefusal("payoff_date_invalid", "a payoff is quoted at most a year ahead")
        # The batch for day D accrues the day before D: interest on the outstanding principal,
        # with the remainder carried, which over n days is one division.
        interest, remainder = divmod(
            loan.outstanding_principal * loan.rate_bps * days + loan.accrual_remainder,
            ACCRUAL_DENOMINATOR,
        )
        penalty = 0
        if loan.next_due_on is not None and loan.next_due_on < (on - timedelta(days=1)).isoformat():
            unpaid = store.unpaid_principal_by_due(loan.loan_id)
            for offset in range(days):
                covered = (last + timedelta(days=offset)).isoformat()
                overdue = sum(amount for due_on, amount in unpaid if due_on < covered)
                penalty += daily_penalty(overdue, loan.rate_bps, self.penalty_surcharge)
        return interest, remainder, penalty

    def quote_payoff(self, loan_id: str, on: date) -> PayoffQuote:
        """What settles the loan on `on`: principal, interest accrued to that day (the days not
        yet accrued by the batch counted as the batch will count them), penalty interest and
        fees. The product charges no prepayment fee (most Chinese consumer lenders waive it;
        `schedules.early_payoff` defaults to none as well), so `prepayment_fee` is zero.

        The quote is computed from the loan sub-ledger rather than from the contractual
        schedule (`schedules.early_payoff`), because the sub-ledger knows what the borrower
        really paid and when: the two agree for a borrower who paid exactly on schedule, and
        only the sub-ledger is right for one who paid early, late or in odd amounts.
        """
        with LendingStore.reading(self.ledger) as store:
            loan = _loan_row(store, loan_id)
            if loan.status != "active":
                raise LendingRefusal("loan_not_active", "the loan is not active")
            if on < date.fromisoformat(loan.disbursed_on):
                raise LendingRefusal("payoff_date_invalid", "a payoff is quoted after disbursement")
            interest, _, penalty = self._pending_accrual(store, loan, on)
        owed_interest = loan.accrued_interest + interest
        owed_penalty = loan.penalty_due + penalty
        return PayoffQuote(
            loan_id=loan_id,
            on=on.isoformat(),
            principal=loan.outstanding_principal,
            interest=owed_interest,
            penalty_interest=owed_penalty,
            fees=loan.fees_due,
            prepayment_fee=0,
            total=loan.outstanding_principal + owed_interest + owed_penalty + loan.fees_due,
        )

    def _accrue_to_date(
        self,
        uow: LedgerWrite,
        store: LendingStore,
        loan: LoanRow,
        payment_id: str,
        today: date,
    ) -> LoanRow:
        """Before a repayment, accrue this loan up to today as the batch would (interest, and
        penalty interest if overdue), so the payment meets every day's interest: a borrower
        paying the day's payoff quote closes the loan, and one paying less never has the
        principal paid ahead of interest already earned. The batch later skips the days done
        here (the loan remembers its last accrual)."""
        interest, remainder, penalty = self._pending_accrual(store, loan, today)
        if interest == 0 and penalty == 0:
            return loan
        transfers: list[NewTransfer] = []
        for purpose, code, held, accrued in (
            ("accrual-to-date", LendingCode.ACCRUAL, loan.accrued_interest, interest),
            ("penalty-to-date", LendingCode.PENALTY_ACCRUAL, loan.penalty_due, penalty),
        ):
            parts = funder_parts(
                held, held + accrued, loan.bank_share_bps, loan.partner_bank_id, PLATFORM
            )
            for funder, part in sorted(parts.items()):
                if part:
                    transfers.append(
                        NewTransfer(
                            chart.transfer_id(purpose, f"{loan.loan_id}/{payment_id}/{funder}"),
                            chart.account_id(
                                LendingAccount.INTEREST_RECEIVABLE, funder, loan.currency
                            ),
                            chart.account_id(LendingAccount.INTEREST_INCOME, funder, loan.currency),
                            part,
                            loan.currency,
                            int(code),
                        )
                    )
        self._expect_ok(uow.create_transfers(transfers), "accrual to date")
        store.accrue_loan(loan.loan_id, interest, remainder, penalty, today.isoformat())
        return replace(
            loan,
            accrued_interest=loan.accrued_interest + interest,
            accrual_remainder=remainder,
            penalty_due=loan.penalty_due + penalty,
            last_accrual_on=today.isoformat(),
        )

    # -- the cost disclosure (L13) ---------------------------------------------------------

    @staticmethod
    def _payee(partner_bank_id: str | None) -> str:
        if partner_bank_id:
            return "the platform (30%) and the partner bank (70%)"
        return "the platform"

    def _cost_table(
        self, schedule: Schedule, rate_bps: int, partner_bank_id: str | None
    ) -> CostDisclosure:
        """The comprehensive financing-cost table of an offer: each cost item with its payee and
        standard, their total, and the all-in annualised rate (an IRR, L9), which
        `build_cost_disclosure` checks covers every item. The product charges interest only:
        no fees, nothing deducted up front, no prepayment fee."""
        percent = Decimal(rate_bps) / 100
        items = [
            CostItem(
                name="interest",
                payee=self._payee(partner_bank_id),
                standard=(
                    f"{percent}% a year on the outstanding principal, "
                    f"{len(schedule.instalments)} monthly instalments"
                ),
                amount=schedule.total_interest,
            )
        ]
        return build_cost_disclosure(
            schedule_cash_flows(schedule), items, Decimal(rate_bps) / 10_000
        )

    def _cost_document(
        self, disclosure: CostDisclosure, rate_bps: int, partner_bank_id: str | None
    ) -> dict[str, Any]:
        """The cost table as the offer shows it. Penalty interest arises only if a payment is
        late, so it is not part of the cost under normal performance (L13); it is disclosed
        as a contingent charge beside the table."""
        payee = self._payee(partner_bank_id)
        percent = Decimal(rate_bps) / 100
        surcharge = self.penalty_surcharge
        overdue_percent = percent * (surcharge.denominator + surcharge.numerator)
        overdue_percent /= surcharge.denominator
        return {
            "principal": disclosure.principal,
            "net_disbursed": disclosure.net_disbursed,
            "items": [dataclasses.asdict(item) for item in disclosure.items],
            "total_cost": disclosure.total_cost,
            "nominal_annual_rate": str(disclosure.nominal_annual_rate),
            "annualised_all_in_cost": str(disclosure.annualised_all_in_cost.quantize(_APR_SHOWN)),
            "apr_bps": int((disclosure.annualised_all_in_cost * 10_000).to_integral_value()),
            "deducts_upfront": disclosure.deducts_upfront,
            "prepayment_fee": 0,
            "contingent_charges": [
                {
                    "name": "penalty interest",
                    "payee": payee,
                    "standard": (
                        f"overdue principal bears {overdue_percent.normalize()}% a year "
                        "(the contract rate plus the surcharge) from the day after its due date"
                    ),
                }
            ],
        }

    def _disclosed(
        self,
        store: LendingStore,
        stored: tuple[ApplicationOutcome, bytes, int, int, str, str | None],
    ) -> ApplicationOutcome:
        """A stored outcome with its cost disclosure, rebuilt from the offer's terms and the day
        it was decided (the schedule, and so the table, depend on nothing else)."""
        outcome, _, amount, term, _, partner = stored
        decided_at = store.application_decided_at(outcome.application_id)
        if outcome.outcome != "approved" or outcome.rate_bps is None or decided_at is None:
            return outcome
        schedule = build_schedule(
            amount,
            Decimal(outcome.rate_bps) / 10_000,
            term,
            local_date(decided_at),
            method=RepaymentMethod(outcome.repayment_method),
        )
        costs = self._cost_table(schedule, outcome.rate_bps, partner)
        return replace(
            outcome, cost_disclosure=self._cost_document(costs, outcome.rate_bps, partner)
        )

    # -- write-off and recovery ------------------------------------------------------------

    def write_off(self, loan_id: str, write_off_id: str, on: date, reason: str) -> WriteOffOutcome:
        """Write a loan off (the operator): allowed once its class is loss or it is at least
        `write_off_dpd_threshold` days past due, else refused `write_off_not_allowed`.

        Each funder's position in the principal (from loan receivable) and in the interest and
        penalty interest (from interest receivable) goes to its credit losses: the bank's
        `colending.bank_position` of each balance, the platform's the rest, which is exactly
        what each holds of the loan, so the parts add up to the loan's balances and no
        receivable is asked for more than it holds (`losses.plan_write_off`). No allowance is
        booked on the ledger yet (the provision is reported by `portfolio`), so the allowance
        used is zero and the whole balance is an impairment loss. The loan keeps its balances
        as what remains written off (the debt is still owed, and recoveries are counted
        against it); its status becomes written_off, an event records the write-off and the
        borrower gets a notice with the review path. Idempotent by `write_off_id`.
        """
        check_write_off_reason(reason)
        event_id = f"write-off/{write_off_id}"
        request = write_off_request(on, reason)
        with self._write() as (uow, store):
            loan, done = _loan_and_done(store, loan_id, event_id, request, "write_off")
            if done is not None:
                return self._write_off_outcome(loan_id, write_off_id, done, replayed=True)
            if loan.status != "active":
                raise LendingRefusal("loan_not_active", "the loan is not active")
            check_write_off_allowed(
                "loan", loan.tier, loan.days_past_due, self.write_off_dpd_threshold
            )
            check_write_off_date(on, loan.disbursed_on, "disbursement")
            balances = _balances(loan)
            amounts = write_off(balances, allowance_held=0)
            # The fees are not on the ledger: the product charges none, so `fees_due` is zero
            # and has no receivable to write off; the document still lists the bucket.
            principal, interest, penalty = (
                Held.by_share(balances.amount(bucket), loan.bank_share_bps)
                for bucket in (Bucket.PRINCIPAL, Bucket.INTEREST, Bucket.PENALTY_INTEREST)
            )
            plan = plan_write_off(
                LOAN,
                bank_of(loan.partner_bank_id, loan.bank_share_bps),
                (
                    Receivable("principal", LendingAccount.LOAN_RECEIVABLE, (principal,)),
                    Receivable("interest", LendingAccount.INTEREST_RECEIVABLE, (interest, penalty)),
                ),
            )
            self.ensure_accounts(uow, loan.currency, sorted(plan.by_funder))
            transfers = write_off_transfers(LOAN, plan, f"{loan_id}/{write_off_id}", loan.currency)
            if transfers:
                self._expect_ok(uow.create_transfers(transfers), "write-off")
            now = self._now(uow)
            store.update_balances(replace(loan, status="written_off"), now)
            record = write_off_document(
                request,
                {bucket.value: balances.amount(bucket) for bucket in Bucket},
                plan.by_funder,
                charged=amounts,
            )
            store.insert_event(loan_id, event_id, "write_off", now, record)
            store.insert_notices(
                [
                    (
                        loan_id,
                        f"notice/write-off/{write_off_id}",
                        now,
                        write_off_notice(
                            loan.party_id,
                            loan_id,
                            on.isoformat(),
                            loan.days_past_due,
                            amounts.total_written_off,
                        ),
                    )
                ]
            )
        _log.info("loan written off: %d minor units", amounts.total_written_off)
        return self._write_off_outcome(loan_id, write_off_id, record)

    @staticmethod
    def _write_off_outcome(
        loan_id: str, write_off_id: str, record: Mapping[str, Any], replayed: bool = False
    ) -> WriteOffOutcome:
        return WriteOffOutcome(
            loan_id=loan_id,
            write_off_id=write_off_id,
            **write_off_fields(record),
            allowance_used=record["allowance_used"],
            loss_expense=record["loss_expense"],
            replayed=replayed,
        )

    def record_recovery(
        self, loan_id: str, recovery_id: str, amount: int, on: date
    ) -> RecoveryOutcome:
        """Book cash recovered on a written-off loan (the operator): collected from the
        borrower's wallet, where a borrower's payments arrive, and allocated to what remains
        written off by the waterfall. Each funder's part is the change of its position
        (`colending.bank_position` for the bank, the rest for the platform) in each balance
        that remains written off (`losses.recovery_parts`), so the parts add up to the
        recovery and a loan recovered in full returns to each funder exactly what it wrote
        off. It is recovery income in its recoveries account, and the cash behind it leaves
        the client-money reserve for the funder's own account (the platform's operating
        account, the bank's clearing account), as a repayment's does, so safeguarding stays
        whole. More than remains written off stays in the wallet as overpayment. Idempotent by
        `recovery_id`."""
        check_recovery_amount(amount)
        event_id = f"recovery/{recovery_id}"
        request = recovery_request(on, amount)
        with self._write() as (uow, store):
            loan, done = _loan_and_done(store, loan_id, event_id, request, "recovery")
            if done is not None:
                return self._recovery_outcome(loan_id, recovery_id, done, replayed=True)
            if loan.status != "written_off":
                raise LendingRefusal("loan_not_written_off", "only a written-off loan recovers")
            remaining = _balances(loan)
            recovered = recover(remaining, amount, DEFAULT_WATERFALL)
            check_recovered(recovered.recovery_income)
            # Collected where a repayment would be (an SME loan: the settlement account's
            # free balance, so no settlement fails for it).
            wallet = self._repayment_account(uow, loan, recovered.recovery_income)
            left = recovered.remaining_written_off
            bank = bank_of(loan.partner_bank_id, loan.bank_share_bps)
            parts = recovery_parts(
                bank,
                [Held.by_share(remaining.amount(bucket), loan.bank_share_bps) for bucket in Bucket],
                [left.amount(bucket) for bucket in Bucket],
            )
            self.ensure_accounts(uow, loan.currency, sorted(parts))
            if bank is not None and parts[bank]:
                self._create_payment_clearing(uow, bank, loan.currency)
            transfers = recovery_transfers(
                LOAN, parts, wallet, f"{loan_id}/{recovery_id}", loan.currency
            )
            self._expect_ok(uow.create_transfers(transfers), "recovery")
            now = self._now(uow)
            store.update_balances(
                replace(
                    loan,
                    outstanding_principal=left.principal,
                    accrued_interest=left.interest,
                    penalty_due=left.penalty_interest,
                    fees_due=left.fees,
                ),
                now,
            )
            record = recovery_document(
                request,
                {bucket.value: paid for bucket, paid in recovered.allocation.items()},
                recovered.overpayment,
                left.total,
                parts,
            )
            store.insert_event(loan_id, event_id, "recovery", now, record)
        return self._recovery_outcome(loan_id, recovery_id, record)

    @staticmethod
    def _recovery_outcome(
        loan_id: str, recovery_id: str, record: Mapping[str, Any], replayed: bool = False
    ) -> RecoveryOutcome:
        return RecoveryOutcome(
            loan_id=loan_id, recovery_id=recovery_id, **recovery_fields(record), replayed=replayed
        )

    # -- notices and concentration ----------------------------------------------------------

    def notices(self, party_id: str, limit: int = NOTICES_PAGE_MAX) -> list[dict[str, Any]]:
        """A borrower's adverse-change notices (a worse class, a write-off) about its loans and
        its credit lines in one list, oldest first: each source gives its oldest `limit`, and
        the merge keeps the oldest `limit` of both."""
        if type(limit) is not int or not 1 <= limit <= NOTICES_PAGE_MAX:
            raise LendingRefusal("invalid_request", f"a page is 1 to {NOTICES_PAGE_MAX} notices")
        with LendingStore.reading(self.ledger) as store:
            rows = store.notices_of(party_id, limit)
        loans = [
            {"notice_id": event_id, "loan_id": loan_id, "at": at, **notice}
            for loan_id, event_id, at, notice in rows
        ]
        merged = sorted(
            loans + self._line_notices(party_id, limit),
            key=lambda notice: (notice["at"], notice["notice_id"]),
        )
        return merged[:limit]

    def concentration_report(self, bank_id: str) -> dict[str, Any]:
        """A partner bank's co-lending balance with the platform against the L3 limits: at most
        25 % of its net tier-1 capital with one partner, at most 50 % of its total loans with
        all partners (`colending.concentration`). The balance is the bank's loan receivable on
        the ledger (its share of the principal outstanding); its capital, total loans and
        balances with other platforms are the figures it registered with the platform."""
        figures = self.partner_banks.get(bank_id)
        if figures is None:
            raise LendingRefusal("partner_not_registered", "the bank has no registered figures")
        account = self.ledger.lookup_account(
            chart.account_id(LendingAccount.LOAN_RECEIVABLE, bank_id, figures.currency)
        )
        balance = 0 if account is None else account.debits_posted - account.credits_posted
        balances = {**figures.other_partner_balances, PLATFORM_PARTNER_ID: balance}
        try:
            report = concentration(
                balances,
                figures.tier1_capital,
                figures.total_loans,
                currency=figures.currency,
            )
        except CoLendingInputInvalid as error:
            raise LendingRefusal("partner_figures_inconsistent", error.message) from None
        return {
            "bank_id": bank_id,
            "currency": report.currency,
            "co_lent_balance": balance,
            "all_partners_balance": report.total_balance_minor,
            "tier1_capital": figures.tier1_capital,
            "total_loans": figures.total_loans,
            "single_partner_limit": report.single_partner_limit_minor,
            "all_partners_limit": report.all_partners_limit_minor,
            "single_partner_headroom": report.single_partner_limit_minor - balance,
            "all_partners_headroom": report.all_partners_limit_minor - report.total_balance_minor,
            "compliant": report.compliant,
            "breaches": [
                {
                    "kind": breach.kind,
                    "partner_id": breach.partner_id,
                    "balance": breach.balance_minor,
                    "limit": breach.limit_minor,
                    "excess": breach.excess_minor,
                }
                for breach in report.breaches
            ],
        }
