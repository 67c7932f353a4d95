"""Anti-money-laundering over the payments the platform executed: reports, alerts, cases.

* Large-value transaction reports (A1, A2): every completed payment of a business day seen from
  both sides (the payer's outflow, the payee's inflow), measured against the thresholds in
  force that day, read from the rulebook's dated parameters (`aml.lvtr_*`), so a threshold
  change is a rulebook change, not a code change.
* Suspicious patterns (A3): the detectors of `aml.patterns` (structuring, rapid in-and-out,
  fan-in, fan-out, cycles) over a window of days; each alert opens a case unless a case for the
  same alert is already open. The payees of merchant payments are marked as merchants in the
  graph, so fan-in judges them against their own trailing normal and the acquiring-typical
  new-payer burst (`MerchantFanInParameters`), not by a count of payers every shop exceeds.
  One scan opens at most `CASES_PER_SCAN_MAX` cases, each detector's highest-scoring alerts
  first (the detectors taking turns), and reports how many alerts it left without a case, so a
  bad day (or a mis-set detector) cannot flood the operators' queue.
* The case queue: open, assign, annotate, close with a disposition. Each action is an event in
  `aml_case_events` and a record in the audit chain, in the same transaction.

Tipping-off is forbidden (A3): nothing here is ever shown to the customer; the routes are the
operator's and the supervisor's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from tianping.ledger.service import LedgerWrite
from tianping.payments.aml.cases import Case, CaseEvent, annotate, assign, close, open_case
from tianping.payments.aml.large_value import (
    A1_CITATION,
    CATEGORIES,
    CN_RULEBOOK_PARAMETERS,
    AmlTransaction,
    LargeValueReport,
    LargeValueThresholds,
    large_value_reports,
)
from tianping.payments.aml.patterns import Alert, DetectorSuite, TransferGraph, triage_order
from tianping.payments.model import PaymentError
from tianping.payments.service import NS, PaymentsService
from tianping.payments.store import CaseRow, PaymentsStore

__all__ = ["AML_CASE_RECORD", "CASES_PER_SCAN_MAX", "AmlService", "ScanReport"]

AML_CASE_RECORD: Final = "payments.aml_case"
PAYMENTS_PER_DAY_MAX: Final = 2_000_000
SCAN_DAYS_MAX: Final = 31
CASES_PER_PAGE_MAX: Final = 1_000
# One scan opens at most this many cases: about what a small compliance team can triage in a
# day. The alerts beyond it are counted in the report (and found again by the next scan while
# their payments are within its days), never silently dropped.
CASES_PER_SCAN_MAX: Final = 100


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan saw and did.

    `alerts` counts every alert of the detectors; `cases_opened` lists the new cases;
    `alerts_not_opened` counts the alerts that had no case yet but were left without one
    because the scan reached `CASES_PER_SCAN_MAX` (alerts whose case already exists are in
    neither).
    """

    first_day: str
    last_day: str
    transfers: int
    alerts: int
    cases_opened: tuple[str, ...]
    alerts_not_opened: int


def _case_id(alert: Alert) -> str:
    """A stable id per alert, so scanning the same days again opens no second case."""
    key = json.dumps([alert.kind, sorted(alert.account_ids), sorted(alert.transaction_ids)])
    return f"aml:{alert.kind}:{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class AmlService:
    """AML reports and the case queue over the payments of one `PaymentsService`."""

    def __init__(self, payments: PaymentsService, detectors: DetectorSuite | None = None) -> None:
        self.payments = payments
        self.detectors = detectors or DetectorSuite()

    def _thresholds(self, on: date) -> LargeValueThresholds:
        values = self.payments.rules.rulebook.values_on(on)
        return LargeValueThresholds(
            {
                currency: {category: int(values[names[category]]) for category in CATEGORIES}
                for currency, names in CN_RULEBOOK_PARAMETERS.items()
                if all(names[category] in values for category in CATEGORIES)
            },
            A1_CITATION,
        )

    def _transactions(self, business_day: str) -> list[AmlTransaction]:
        with PaymentsStore.reading(self.payments.ledger) as store:
            rows = store.completed_payments(business_day, PAYMENTS_PER_DAY_MAX)
        transactions = []
        for payment_id, payer, payee, amount, currency, created_at, kind in rows:
            at = created_at // NS
            payee_kind = "entity" if kind == "merchant" else "person"
            for customer, kind_of, counterparty, direction in (
                (payer, "person", payee, "out"),
                (payee, payee_kind, payer, "in"),
            ):
                transactions.append(
                    AmlTransaction(
                        f"{payment_id}:{direction}",
                        at,
                        customer,
                        kind_of,  # type: ignore[arg-type]
                        counterparty,
                        direction,  # type: ignore[arg-type]
                        amount,
                        currency,
                        "transfer",
                        False,
                    )
                )
        return transactions

    def large_value_reports(self, business_day: str) -> list[LargeValueReport]:
        """The day's large-value transaction reports under the thresholds then in force."""
        on = date.fromisoformat(business_day)
        return large_value_reports(self._transactions(business_day), self._thresholds(on))

    def scan(self, last_day: str, days: int = 7, actor: str = "aml-scan") -> ScanReport:
        """Run the pattern detectors over `days` business days ending `last_day`; open a case
        for every alert that has none yet, at most `CASES_PER_SCAN_MAX`, highest score first.

        Alerts are taken in `triage_order`: each detector's highest-scoring alerts first, the
        detectors taking turns (scores are comparable within a detector, not across), so the
        cap leaves out each detector's weakest alerts and no single detector fills the queue.
        """
        if type(days) is not int or not 1 <= days <= SCAN_DAYS_MAX:
            raise PaymentError("payment_input_invalid", f"a scan covers 1 to {SCAN_DAYS_MAX} days")
        end = date.fromisoformat(last_day)
        first = end - timedelta(days=days - 1)
        transactions: list[AmlTransaction] = []
        merchants: set[str] = set()
        for offset in range(days):
            for transaction in self._transactions((first + timedelta(days=offset)).isoformat()):
                if transaction.direction == "out":
                    transactions.append(transaction)
                elif transaction.customer_kind == "entity":
                    # `_transactions` makes the payee of a merchant payment an entity: an
                    # acquiring account, whose fan-in is judged against its own normal.
                    merchants.add(transaction.customer_id)
        graph = TransferGraph.from_transactions(transactions, "CNY", merchants=merchants)
        alerts = [
            (alert, _case_id(alert))
            for alert in triage_order(
                alert for found in self.detectors.run(graph).values() for alert in found
            )
        ]
        opened: list[str] = []
        not_opened = 0
        with PaymentsStore.writing(self.payments.ledger) as (uow, store):
            now = self.payments.ledger_time(uow)
            for alert, case_id in alerts:
                if store.case(case_id) is not None:
                    continue
                if len(opened) >= CASES_PER_SCAN_MAX:
                    not_opened += 1
                    continue
                case, event = open_case(case_id, (case_id,), now // NS, actor)
                store.insert_case(
                    CaseRow(
                        case.case_id,
                        alert.kind,
                        case.status,
                        None,
                        None,
                        {
                            "kind": alert.kind,
                            "accounts": list(alert.account_ids),
                            "transactions": list(alert.transaction_ids),
                            "score": alert.score,
                            "reason": alert.reason,
                        },
                        now,
                        now,
                    )
                )
                self._record(uow, store, event)
                opened.append(case_id)
        return ScanReport(
            first.isoformat(),
            end.isoformat(),
            len(transactions),
            len(alerts),
            tuple(opened),
            not_opened,
        )

    def _record(self, uow: LedgerWrite, store: PaymentsStore, event: CaseEvent) -> None:
        details = json.dumps(dict(event.details), sort_keys=True)
        body = json.dumps(
            {
                "case_id": event.case_id,
                "actor": event.actor,
                "at": event.at,
                "action": event.action,
                "details": dict(event.details),
            },
            sort_keys=True,
        ).encode()
        record = uow.append_record(AML_CASE_RECORD, body)
        store.insert_case_event(
            event.case_id, record.seq, event.at, event.actor, event.action, details
        )

    def cases(self, status: str | None = None, limit: int = 100) -> list[CaseRow]:
        if status not in (None, "open", "assigned", "closed"):
            raise PaymentError("payment_input_invalid", "status is open, assigned or closed")
        with PaymentsStore.reading(self.payments.ledger) as store:
            return store.cases(status, max(1, min(limit, CASES_PER_PAGE_MAX)))

    def case_events(self, case_id: str) -> list[tuple[int, int, str, str, str]]:
        with PaymentsStore.reading(self.payments.ledger) as store:
            return store.case_events(case_id, 10_000)

    def act(self, case_id: str, action: str, actor: str, value: str | None = None) -> CaseRow:
        """Assign (value: assignee), annotate (value: note) or close (value: disposition)."""
        with PaymentsStore.writing(self.payments.ledger) as (uow, store):
            row = store.case(case_id)
            if row is None:
                raise PaymentError("aml_case_not_found", "no AML case has this id")
            case = Case(
                row.case_id,
                row.opened_at // NS,
                (row.case_id,),
                row.status,  # type: ignore[arg-type]
                row.assignee,
                (),
                row.disposition,  # type: ignore[arg-type]
            )
            at = self.payments._now(uow) // NS
            if action == "assign":
                case, event = assign(case, value or "", actor, at)
            elif action == "annotate":
                case, event = annotate(case, value or "", actor, at)
            elif action == "close":
                case, event = close(case, value, actor, at)
            else:
                raise PaymentError("payment_input_invalid", "action is assign, annotate or close")
            store.update_case(case.case_id, case.status, case.assignee, case.disposition, at * NS)
            self._record(uow, store, event)
            return CaseRow(
                case.case_id,
                row.kind,
                case.status,
                case.assignee,
                case.disposition,
                row.alert,
                row.opened_at,
                at * NS,
            )
