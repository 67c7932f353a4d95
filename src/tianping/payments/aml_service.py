"""Anti-money-laundering over the movements the platform executed: reports, alerts, cases.

* Large-value transaction reports (A1, A2): every movement of money executed on a local
  business day (UTC+8): completed payments, seen from both sides (the payer's outflow, the
  payee's inflow); refunds, from both sides (the merchant's outflow, the payer's inflow);
  posted bank top-ups and withdrawals, from the person's side (the partner bank is the
  counterparty); merchant payouts, by settlement or of the free balance, from the merchant's
  side; and, with the lending context attached (`PaymentsService.wallet_movements`), the money
  lending moves into and out of customers' wallets: loans paid in, repayments (early payoffs
  among them), recoveries and SME sweeps taken out. Each is measured against the thresholds in
  force that day, read from the rulebook's
  dated parameters (`aml.lvtr_*`), so a threshold change is a rulebook change, not a code
  change. Every transaction id starts with its flow, and the exports name each one's flow.
* Suspicious patterns (A3): the detectors of `aml.patterns` (structuring, rapid in-and-out,
  fan-in, fan-out, cycles) over a window of days of payments (rapid in-and-out also sees the
  persons' withdrawals); each alert opens a case unless a case for the same alert is already
  open. The payees of merchant payments are marked as merchants in the graph, so fan-in
  judges them against their own trailing normal and the acquiring-typical new-payer burst
  (`MerchantFanInParameters`), not by a count of payers every shop exceeds. One scan opens
  at most `CASES_PER_SCAN_MAX` cases, each detector's highest-scoring alerts first (the
  detectors taking turns), and reports how many alerts it left without a case, so a bad day
  (or a mis-set detector) cannot flood the operators' queue.
* The case queue: open, assign, annotate, close with a disposition. Each action is an event in
  `aml_case_events` and a record in the audit chain, in the same transaction.

Tipping-off is forbidden (A3): nothing here is ever shown to the customer; the routes are the
operator's and the supervisor's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final

from tianping.ledger.service import LedgerWrite
from tianping.payments.aml.cases import Case, CaseEvent, annotate, assign, close, open_case
from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import (
    A1_CITATION,
    CATEGORIES,
    CN_RULEBOOK_PARAMETERS,
    ID_LENGTH_MAX,
    TRANSACTIONS_PER_CALL_MAX,
    AmlTransaction,
    CustomerKind,
    Direction,
    LargeValueReport,
    LargeValueThresholds,
    large_value_reports,
)
from tianping.payments.aml.patterns import (
    Alert,
    DetectorSuite,
    TransferGraph,
    detect_rapid_in_out,
    triage_order,
)
from tianping.payments.model import PaymentError, local_day_start
from tianping.payments.service import NS, PaymentsService
from tianping.payments.store import CaseRow, MovementRow, PaymentsStore
from tianping.rules.parameters import REPEALED

__all__ = ["AML_CASE_RECORD", "CASES_PER_SCAN_MAX", "AmlService", "ScanReport"]

AML_CASE_RECORD: Final = "payments.aml_case"
# A movement is seen from at most two sides (a payment's payer and payee), so a day's
# transactions fit one call of `large_value_reports`.
MOVEMENTS_PER_DAY_MAX: Final = TRANSACTIONS_PER_CALL_MAX // 2
SCAN_DAYS_MAX: Final = 31
CASES_PER_PAGE_MAX: Final = 1_000
# One scan opens at most this many cases: about what a small compliance team can triage in a
# day. The alerts beyond it are counted in the report (and found again by the next scan while
# their payments are within its days), never silently dropped.
CASES_PER_SCAN_MAX: Final = 100
DAY_NS: Final = 86_400 * NS
# The flows, as they start transaction ids and name them in the exports.
_PAYMENT: Final = "payment"
_REFUND: Final = "refund"
_TOPUP: Final = "topup"
_WITHDRAWAL: Final = "withdrawal"
_PAYOUT: Final = "payout"
# A movement with one customer side (a rail request by its direction, or a settlement): its
# flow, the start of its transaction id, the customer's kind and the direction from them.
_ONE_SIDED: Final[dict[str, tuple[str, str, CustomerKind, Direction]]] = {
    "top_up": (_TOPUP, f"{_TOPUP}:", "person", "in"),
    "withdrawal": (_WITHDRAWAL, f"{_WITHDRAWAL}:", "person", "out"),
    "merchant_payout": (_PAYOUT, f"{_PAYOUT}:rail:", "entity", "out"),
    "settlement": (_PAYOUT, f"{_PAYOUT}:", "entity", "out"),
}
# The flows of the lending context's movements (`WalletMovementSource`) and the direction of
# each from the customer: a loan paid into a wallet (or an SME loan into the merchant's
# settlement account) is money in; a repayment, an early payoff (a repayment of the payoff
# quote), a recovery on a written-off loan or line and a sweep of a merchant's takings are
# money out. A purchase on a credit line is not here: it is a payment already, and the draw
# moves none of the holder's own money. A loan paid on to the borrower's card is here once,
# as money in; the withdrawal to the card is a rail request, reported as a withdrawal.
_LENDING: Final[dict[str, Direction]] = {
    "loan_disbursement": "in",
    "loan_repayment": "out",
    "loan_recovery": "out",
    "sweep": "out",
    "line_repayment": "out",
    "line_recovery": "out",
}


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
    """A stable id per alert, so scanning the same days again opens no second case.

    A payment's transactions were named `<payment id>:<side>` before every flow had its prefix;
    the key drops the `payment:` prefix, so an alert made of payments keeps the case id it had
    then and a scan of days scanned before finds its case instead of opening a second one.
    """
    transactions = sorted(
        transaction_id.removeprefix(f"{_PAYMENT}:") for transaction_id in alert.transaction_ids
    )
    key = json.dumps([alert.kind, sorted(alert.account_ids), transactions])
    return f"aml:{alert.kind}:{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _side(
    row: MovementRow,
    transaction_id: str,
    flow: str,
    customer: tuple[str, CustomerKind],
    counterparty: str,
    direction: Direction,
) -> AmlTransaction:
    return AmlTransaction(
        transaction_id,
        row.at // NS,
        customer[0],
        customer[1],
        counterparty,
        direction,
        row.amount,
        row.currency,
        "transfer",
        False,
        flow=flow,
    )


def _sides(row: MovementRow) -> tuple[AmlTransaction, ...]:
    """A movement seen from each customer's side: both parties of a payment or a refund, the
    customer alone of a bank rail or a settlement (the bank side is a pseudonymous counterparty,
    the partner bank's id, never a card or account number).

    Each transaction id starts with its flow (`payment:`, `refund:`, `topup:`, `withdrawal:`,
    `payout:`) and names the record it comes from, so a filing clerk can trace it; a payout is
    `payout:stl:...` for a settlement (its id) and `payout:rail:<request id>` for a payout of the
    free balance, as the two come from different records. All are transfers within China: the
    platform holds no cross-border or cash flow. A top-up or a withdrawal moves money between
    a person's wallet and their own bound card (P4), a domestic transfer by a natural person; a
    merchant's payout and its refunds are transfers by an entity.
    """
    identifier = row.movement_id
    if row.flow in _LENDING:
        return (_lending_side(row),)
    if row.flow in (_PAYMENT, _REFUND):
        # A refund moves money back from the payment's payee (a merchant: only merchant payments
        # are refunded) to its payer.
        payee_kind: CustomerKind = "entity" if row.kind == "merchant" else "person"
        payer: tuple[str, CustomerKind] = (row.party_id, "person")
        payee: tuple[str, CustomerKind] = (row.other_id, payee_kind)
        sender, receiver = (payer, payee) if row.flow == _PAYMENT else (payee, payer)
        return (
            _side(row, f"{row.flow}:{identifier}:out", row.flow, sender, receiver[0], "out"),
            _side(row, f"{row.flow}:{identifier}:in", row.flow, receiver, sender[0], "in"),
        )
    flow, prefix, kind, direction = _ONE_SIDED[row.flow]
    customer = (row.party_id, kind)
    return (_side(row, prefix + identifier, flow, customer, row.other_id, direction),)


def _lending_side(row: MovementRow) -> AmlTransaction:
    """A lending movement from its customer's side: the transaction id is the flow with `-`
    for `_` (`loan-disbursement:`, `loan-repayment:`, `sweep:`, `line-repayment:`, ...) and the
    record's id, and the counterparty is the lender (a partner bank's id, or the platform's).

    Two client-chosen ids of up to 64 characters each can make that longer than an AML id may
    be; such an id keeps its flow and gets a digest of the record's id instead, still stable,
    so a re-run reports the same transaction under the same id."""
    flow = row.flow
    transaction_id = f"{flow.replace('_', '-')}:{row.movement_id}"
    if len(transaction_id) > ID_LENGTH_MAX:
        digest = hashlib.sha256(row.movement_id.encode()).hexdigest()
        transaction_id = f"{flow.replace('_', '-')}:sha256-{digest}"
    if row.kind not in ("person", "entity"):
        raise AmlError("invalid_transaction", "a lending movement's customer kind is unknown")
    customer_kind: CustomerKind = "entity" if row.kind == "entity" else "person"
    return _side(
        row, transaction_id, flow, (row.party_id, customer_kind), row.other_id, _LENDING[flow]
    )


def _rapid_in_out(
    payments: list[AmlTransaction], withdrawals: list[AmlTransaction], detectors: DetectorSuite
) -> list[Alert]:
    """Rapid in-and-out over the payments and the persons' withdrawals to their own cards.

    Pass-through weighs what a wallet receives against what leaves it within a day, and a
    withdrawal is money leaving it: a wallet that takes payments from several people and
    withdraws them to a card within the day is the classic cash-out, which a graph of payments
    alone misses (it sees the inflows only). So this one detector sees the withdrawals. It does
    not see top-ups: a wallet topped up in the morning and spent during the day would read as
    a pass-through, as every ordinary wallet does. On the demo's week (1,588 payments, 50
    top-ups, 15 withdrawals) top-ups and withdrawals took this detector from 19 alerts to 48,
    39 of them new or changed and 27 of those one morning top-up against the day's ordinary
    payments, no withdrawal in them; withdrawals alone gave 18 (17 unchanged, one changed to
    include its withdrawal, one gone because with its withdrawal the wallet sent out more than
    it received, which the detector reads as spending a balance). So a round trip from one own
    card to another through the wallet is not judged here; it needs a detector of its own
    (top-ups against withdrawals, spending left out). Merchant payouts are left out (a
    merchant's takings leaving for its bank are its business) and so are refunds (the reverse
    of a payment already in the graph).

    The other detectors keep the payments graph: a partner bank, the counterparty of many
    customers' withdrawals, would be a fan-in by construction. Here a bank only receives, and an
    account without outflows is never a pass-through, so no bank is judged.
    """
    assert detectors.rapid_in_out is not None
    graph = TransferGraph.from_transactions([*payments, *withdrawals], "CNY")
    return detect_rapid_in_out(graph, detectors.rapid_in_out)


class AmlService:
    """AML reports and the case queue over the payments of one `PaymentsService`."""

    def __init__(self, payments: PaymentsService, detectors: DetectorSuite | None = None) -> None:
        self.payments = payments
        self.detectors = detectors or DetectorSuite()

    def _thresholds(self, on: date) -> LargeValueThresholds:
        """The thresholds in force on `on`: a currency has them when every one of its
        parameters is in force that day. Before a parameter's first date the rulebook gives
        `REPEALED`, not an amount; a day's transactions in a currency without thresholds are
        then refused (`threshold_missing`) by `large_value_reports`, never left unreported."""
        values = self.payments.rules.rulebook.values_on(on)
        return LargeValueThresholds(
            {
                currency: {category: int(values[names[category]]) for category in CATEGORIES}
                for currency, names in CN_RULEBOOK_PARAMETERS.items()
                if all(
                    values.get(names[category], REPEALED) is not REPEALED for category in CATEGORIES
                )
            },
            A1_CITATION,
        )

    def _movements(self, business_day: str, *, other_contexts: bool = True) -> list[MovementRow]:
        """Every movement of money the platform executed on the local business day, the
        payments context's and (unless `other_contexts` is false) those of the attached source
        (lending's), refused (never cut short) beyond `MOVEMENTS_PER_DAY_MAX` together: a cut
        day would under-report a cumulative total. The source is asked only for what the bound
        leaves, plus one to tell a full day from an overfull one."""
        # Business days are local days in China Standard Time, as payments' own dates are.
        start_ns = local_day_start(date.fromisoformat(business_day))
        with PaymentsStore.reading(self.payments.ledger) as store:
            rows = store.executed_movements(
                business_day, start_ns, start_ns + DAY_NS, MOVEMENTS_PER_DAY_MAX + 1
            )
        source = self.payments.wallet_movements
        if other_contexts and source is not None and len(rows) <= MOVEMENTS_PER_DAY_MAX:
            rows += source.wallet_movements(
                start_ns, start_ns + DAY_NS, MOVEMENTS_PER_DAY_MAX + 1 - len(rows)
            )
        if len(rows) > MOVEMENTS_PER_DAY_MAX:
            raise AmlError(
                "too_many_transactions",
                f"a business day holds more than {MOVEMENTS_PER_DAY_MAX} movements",
            )
        return rows

    def _transactions(self, business_day: str) -> list[AmlTransaction]:
        """The day's movements, each seen from every customer's side it has (`_sides`)."""
        return [side for row in self._movements(business_day) for side in _sides(row)]

    def large_value_reports(self, business_day: str) -> list[LargeValueReport]:
        """The day's large-value transaction reports under the thresholds then in force."""
        on = date.fromisoformat(business_day)
        return large_value_reports(self._transactions(business_day), self._thresholds(on))

    def scan(self, last_day: str, days: int = 7, actor: str = "aml-scan") -> ScanReport:
        """Run the pattern detectors over `days` business days ending `last_day`; open a case
        for every alert that has none yet, at most `CASES_PER_SCAN_MAX`, highest score first.

        The detectors see the day's payments; rapid in-and-out also sees the persons'
        withdrawals (see `_rapid_in_out` for why those and nothing else). Alerts are taken in
        `triage_order`: each detector's highest-scoring alerts first, the
        detectors taking turns (scores are comparable within a detector, not across), so the
        cap leaves out each detector's weakest alerts and no single detector fills the queue.
        """
        if type(days) is not int or not 1 <= days <= SCAN_DAYS_MAX:
            raise PaymentError("payment_input_invalid", f"a scan covers 1 to {SCAN_DAYS_MAX} days")
        end = date.fromisoformat(last_day)
        first = end - timedelta(days=days - 1)
        transactions: list[AmlTransaction] = []
        withdrawals: list[AmlTransaction] = []
        merchants: set[str] = set()
        for offset in range(days):
            # The detectors see payments and withdrawals only: other contexts' movements are
            # not read for them.
            day = (first + timedelta(days=offset)).isoformat()
            for row in self._movements(day, other_contexts=False):
                if row.flow == "payment":
                    payer_side, payee_side = _sides(row)
                    transactions.append(payer_side)
                    if payee_side.customer_kind == "entity":
                        # The payee of a merchant payment is an acquiring account, whose
                        # fan-in is judged against its own normal.
                        merchants.add(payee_side.customer_id)
                elif row.flow == "withdrawal":
                    withdrawals.extend(_sides(row))
        graph = TransferGraph.from_transactions(transactions, "CNY", merchants=merchants)
        found = replace(self.detectors, rapid_in_out=None).run(graph)
        if self.detectors.rapid_in_out is not None:
            found["rapid_in_out"] = _rapid_in_out(transactions, withdrawals, self.detectors)
        alerts = [
            (alert, _case_id(alert))
            for alert in triage_order(alert for alerts in found.values() for alert in alerts)
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
