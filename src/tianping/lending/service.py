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
other way, allocated by the product's waterfall and split between funders pro rata.
"""

from __future__ import annotations

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
from tianping.ledger.money import allocate
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
from tianping.lending.line_service import CreditLines
from tianping.lending.model import (
    Application,
    ApplicationOutcome,
    LendingRefusal,
    RepaymentOutcome,
)
from tianping.lending.pricing import apr_irr, schedule_cash_flows
from tianping.lending.provisioning import (
    CREDIT_IMPAIRED_DPD_THRESHOLD,
    SICR_DPD_THRESHOLD,
    pooled_ecl,
)
from tianping.lending.schedules import build_schedule
from tianping.lending.servicing import (
    DEFAULT_WATERFALL,
    RETAIL_THRESHOLDS,
    Bucket,
    LoanBalances,
    TierThresholds,
    apply_payment,
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
from tianping.lending.store import AccrualGroup, LendingStore, LoanRow, new_loan
from tianping.payments import chart as payments_chart
from tianping.payments.model import local_date
from tianping.rules.model import Outcome
from tianping.rules.service import RulesService

__all__ = [
    "ACCRUAL_DAYS_MAX",
    "AccrualReport",
    "Application",
    "ApplicationOutcome",
    "CreditScorer",
    "LendingRefusal",
    "LendingService",
    "RepaymentOutcome",
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

# A catch-up accrues at most this many missed days in one call (a year and a leap day).
ACCRUAL_DAYS_MAX: Final = 366


@dataclass(frozen=True, slots=True)
class AccrualReport:
    day: str
    loans: int
    interest: int
    groups: tuple[AccrualGroup, ...]
    replayed: bool = False


class CreditScorer(Protocol):
    """What the lending service needs of a credit model (a `ScorecardBundle` is one)."""

    def score(self, features: Mapping[str, object], allowed_sources: Iterable[str]) -> Any: ...


class ConsentLookup(Protocol):
    """Whether a person's live consents let a service run (the identity context's privacy
    service is one)."""

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


class LendingService(CreditLines):
    """Lending over one ledger, under one rules service; the credit-line use cases come from
    `CreditLines` (line_service.py)."""

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
    ) -> None:
        self.ledger = ledger
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
        """Accrue one day's interest on every active loan not yet accrued for `day`.

        Set-based: one aggregate and one UPDATE over the whole book, then one ledger transfer
        per currency and funder (debit interest receivable, credit interest income), the
        group's interest split between the partner bank and the platform by the loans' funding
        shares, largest remainder, so the general ledger moves exactly what the sub-ledger
        accrued. Running the same day again accrues nothing more (each loan remembers the last
        day it accrued for).
        """
        label = day.isoformat()
        with self._write() as (uow, store):
            done = store.accrual_run(label)
            if done is not None:
                return AccrualReport(label, done[0], done[1], (), replayed=True)
            groups = store.accrual_groups(label)
            accrued = store.apply_accrual(label)
            loans = sum(group.loans for group in groups)
            if accrued != loans:  # pragma: no cover - both statements see one snapshot
                raise LendingRefusal("accrual_inconsistent", "the book changed during the accrual")
            transfers = self._accrual_transfers(uow, label, groups)
            if transfers:
                for result in uow.create_transfers(transfers):
                    if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                        raise LendingRefusal("ledger_refused", f"accrual refused: {result.name}")
            total = sum(group.interest for group in groups)
            store.insert_accrual_run(label, loans, total, self._now(uow))
        _log.info("accrued %s: %d loans, %d minor units", label, loans, total)
        return AccrualReport(label, loans, total, tuple(groups))

    def accrue_through(self, day: date, since: date) -> list[AccrualReport]:
        """Accrue every day after `since` up to `day`, in order (a missed batch catches up)."""
        days = (day - since).days
        if not 0 <= days <= ACCRUAL_DAYS_MAX:
            raise LendingRefusal("accrual_range_invalid", f"catch up 0 to {ACCRUAL_DAYS_MAX} days")
        return [self.accrue(since + timedelta(days=offset)) for offset in range(1, days + 1)]

    def _accrual_transfers(
        self, uow: LedgerWrite, label: str, groups: Sequence[AccrualGroup]
    ) -> list[NewTransfer]:
        per_funder: dict[tuple[str, str], int] = {}
        for group in groups:
            bank_part, platform_part = allocate(
                group.interest, [group.bank_share_bps, 10_000 - group.bank_share_bps]
            )
            for funder, amount in ((group.partner_bank_id, bank_part), (PLATFORM, platform_part)):
                if amount:
                    key = (group.currency, funder)
                    per_funder[key] = per_funder.get(key, 0) + amount
        transfers = []
        for (currency, funder), amount in sorted(per_funder.items()):
            self.ensure_accounts(uow, currency, [funder])
            transfers.append(
                NewTransfer(
                    chart.transfer_id("accrual", f"{label}/{currency}/{funder}"),
                    chart.account_id(LendingAccount.INTEREST_RECEIVABLE, funder, currency),
                    chart.account_id(LendingAccount.INTEREST_INCOME, funder, currency),
                    amount,
                    currency,
                    int(LendingCode.ACCRUAL),
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
        digest = hashlib.sha256(
            json.dumps(
                {
                    "party": application.party_id,
                    "amount": application.amount,
                    "term": application.term_months,
                    "income": application.annual_income,
                    "product": application.product,
                },
                sort_keys=True,
            ).encode()
        ).digest()
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
                return replace(stored[0], replayed=True)
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
                application.amount, Decimal(rate_bps) / 10_000, application.term_months, on
            )
            apr = apr_irr(schedule_cash_flows(schedule))
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
            )
            if not approved and credit_ok and not reasons:
                outcome = replace(outcome, reasons=())
            store.insert_application(outcome, application, digest, now)
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
        return stored[0]

    # -- acceptance and disbursement ---------------------------------------------------------

    def accept(self, application_id: str, loan_id: str) -> LoanRow:
        """Take up an approved offer: the loan is booked and its principal paid to the wallet."""
        with self._write() as (uow, store):
            existing = store.loan(loan_id)
            if existing is not None:
                if existing.application_id != application_id:
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
            now = self._now(uow)
            on = local_date(now)
            funder = partner or PLATFORM
            bank_share = 7_000 if partner else 0
            self.ensure_accounts(uow, currency, sorted({funder, PLATFORM}))
            wallet = self._disbursement_account(outcome.party_id, currency, product)
            shares = self._shares(amount, bank_share, funder)
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
            schedule = build_schedule(amount, Decimal(outcome.rate_bps) / 10_000, term, on)
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
    def _shares(amount: int, bank_share: int, funder: str) -> list[tuple[str, int]]:
        if not bank_share:
            return [(PLATFORM, amount)]
        bank, platform = allocate(amount, [bank_share, 10_000 - bank_share])
        return [(funder, bank), (PLATFORM, platform)]

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

    def loan(self, loan_id: str) -> LoanRow:
        with LendingStore.reading(self.ledger) as store:
            found = store.loan(loan_id)
        if found is None:
            raise LendingRefusal("loan_not_found", "no loan has this id")
        return found

    # -- repayment ---------------------------------------------------------------------------

    def repay(self, loan_id: str, payment_id: str, amount: int) -> RepaymentOutcome:
        """Repay from the borrower's wallet: fees, penalty interest, interest, then principal
        (the default waterfall), each split between the funders by their shares. Paying more
        than is owed pays what is owed and reports the rest as overpayment, which stays in the
        wallet. Idempotent by `payment_id`."""
        if type(amount) is not int or amount <= 0:
            raise LendingRefusal("amount_invalid", "a repayment is a positive amount")
        with self._write() as (uow, store):
            loan = store.loan(loan_id)
            if loan is None:
                raise LendingRefusal("loan_not_found", "no loan has this id")
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
            balances = LoanBalances(
                fees=loan.fees_due,
                penalty_interest=loan.penalty_due,
                interest=loan.accrued_interest,
                principal=loan.outstanding_principal,
            )
            after, allocation, overpayment = apply_payment(balances, amount, DEFAULT_WATERFALL)
            now = self._now(uow)
            wallet = self._repayment_account(uow, loan, amount - overpayment)
            events: list[NewTransfer] = []
            for bucket, kind, code in (
                (Bucket.PRINCIPAL, LendingAccount.LOAN_RECEIVABLE, LendingCode.REPAYMENT_PRINCIPAL),
                (
                    Bucket.INTEREST,
                    LendingAccount.INTEREST_RECEIVABLE,
                    LendingCode.REPAYMENT_INTEREST,
                ),
            ):
                paid = allocation[bucket]
                if not paid:
                    continue
                for funder, share in self._shares(paid, loan.bank_share_bps, loan.partner_bank_id):
                    if not share:
                        continue
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
            status = "repaid" if after.principal == 0 and after.interest == 0 else "active"
            store.update_balances(
                replace(
                    loan,
                    outstanding_principal=after.principal,
                    accrued_interest=after.interest,
                    fees_due=after.fees,
                    penalty_due=after.penalty_interest,
                    status=status,
                ),
                now,
            )
            store.record_instalment_payments(
                loan_id, allocation[Bucket.PRINCIPAL], allocation[Bucket.INTEREST]
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
        on `day`, set-based (three statements for the whole book); returns how many loans."""
        with self._write() as (_, store):
            return store.classify_book(
                day.isoformat(),
                thresholds.special_mention_from,
                thresholds.substandard_from,
                thresholds.doubtful_from,
                thresholds.loss_from,
                SICR_DPD_THRESHOLD,
                CREDIT_IMPAIRED_DPD_THRESHOLD,
            )

    def portfolio(
        self,
        currency: str = "CNY",
        stage_pd: Mapping[int, Decimal] | None = None,
        lgd: Decimal = Decimal("0.45"),
    ) -> dict[str, Any]:
        """The active book by five-tier class and stage, with the expected-loss provision of
        each stage (collective: one PD per stage, one LGD; PD x LGD x EAD rounded once per pool).
        The default PDs are placeholders for a calibrated term structure."""
        pds = dict(stage_pd or {1: Decimal("0.02"), 2: Decimal("0.15"), 3: Decimal(1)})
        with LendingStore.reading(self.ledger) as store:
            rows = store.book_by_class(currency)
        by_tier: dict[str, dict[str, int]] = {}
        by_stage: dict[int, dict[str, int]] = {}
        for tier, stage, loans, exposure in rows:
            tier_totals = by_tier.setdefault(tier, {"loans": 0, "exposure": 0})
            tier_totals["loans"] += loans
            tier_totals["exposure"] += exposure
            stage_totals = by_stage.setdefault(stage, {"loans": 0, "exposure": 0})
            stage_totals["loans"] += loans
            stage_totals["exposure"] += exposure
        for stage, totals in by_stage.items():
            ecl, _ = pooled_ecl([totals["exposure"]], pds[stage], lgd)
            totals["ecl"] = ecl
        return {
            "currency": currency,
            "by_tier": by_tier,
            "by_stage": {str(stage): totals for stage, totals in sorted(by_stage.items())},
            "ecl_total": sum(totals["ecl"] for totals in by_stage.values()),
        }
