"""The daily sweep of SME loans: a share of each day's takings repays the loan before that day's
settlement. `LendingService` inherits it (`TakingsSweeps`).

The day's jobs, in order (the demo and an operator's scheduler alike), for business date D,
once the clearing house has closed D (23:00 China time):

1. `PaymentsService.process_callbacks()`: the rails of D are decided or timed out;
2. `LendingService.sweep_repayments(D)`: each sweeping loan is repaid from its share of D's
   takings (this module);
3. `PaymentsService.settle_merchants(D)`: every merchant is paid D's takings less the discount
   and less what step 2 took;
4. `PaymentsService.reconcile(D)` and `safeguarding_check()`;
5. `LendingService.accrue(today)` and `classify(today)` (a repayment accrues its own loan to
   the day first, so steps 2 and 5 may come in either order).

Run after step 3, the sweep finds nothing left to sweep for D (settled takings are not swept).

Per loan the sweep is a bounded batch of three calls, each its own unit of work, made safe to
repeat by their ids (the release `sweep:<loan id>:<D>` and the repayment `sweep:<D>`):

1. payments releases min(share of D's takings, everything owed today) from D's settlement
   (`AcquiringData.release_takings`), which makes it part of the settlement account's free
   balance;
2. `repay` takes it through the ordinary repayment path (waterfall, funder split, the ledger's
   transfers), which may take only free money;
3. if the repayment is refused, the release is given back to D's settlement
   (`restore_takings`), as long as the money is still there.

A run repeated after a crash finds the repayment made (and reports it) or the release made (and
repays it); a release given back is not tried again that day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from tianping.ledger.service import Ledger
from tianping.lending.model import LendingRefusal, PayoffQuote, RepaymentOutcome
from tianping.lending.sme import AcquiringData
from tianping.lending.store import LendingStore
from tianping.lending.sweep import (
    SWEEP_BATCH_MAX,
    SWEEP_REPORT_LINES_MAX,
    SweepLine,
    SweepReport,
    sweep_share,
)
from tianping.lending.sweep_store import SweepingLoan, SweepStore
from tianping.payments.model import PaymentError, local_date

__all__ = ["TakingsSweeps"]


class TakingsSweeps:
    """The sweep use cases; mixed into `LendingService`, whose attributes they use."""

    ledger: Ledger
    clock: Callable[[], int]
    acquiring: AcquiringData | None

    if TYPE_CHECKING:

        def repay(self, loan_id: str, payment_id: str, amount: int) -> RepaymentOutcome: ...

        def quote_payoff(self, loan_id: str, on: date) -> PayoffQuote: ...

    def loan_sweep_bps(self, loan_id: str) -> int:
        """The loan's agreed sweep in basis points of each day's takings (0: none)."""
        with SweepStore.reading(self.ledger, snapshot=False) as store:
            found = store.sweep_bps(loan_id)
        if found is None:
            raise LendingRefusal("loan_not_found", "no loan has this id")
        return found

    def sweep_repayments(self, business_date: date) -> SweepReport:
        """Repay every active SME loan with a sweep from its share of `business_date`'s
        takings, before that day's settlement (see the module docstring); repeating a day
        repays nothing twice."""
        if self.acquiring is None:
            raise LendingRefusal("lending_unavailable", "SME lending is not configured")
        acquiring = self.acquiring
        day = business_date.isoformat()
        lines: list[SweepLine] = []
        looked = swept = refused = amount = 0
        after = ""
        while True:
            with SweepStore.reading(self.ledger) as store:
                batch = store.sweeping_loans(after, day, SWEEP_BATCH_MAX)
            takings: dict[tuple[str, str], int] = {}
            for currency in sorted({loan.currency for loan in batch}):
                merchants = [loan.merchant_id for loan in batch if loan.currency == currency]
                for merchant, kept in acquiring.merchant_day_takings(
                    day, merchants, currency
                ).items():
                    takings[(merchant, currency)] = kept
            for loan in batch:
                line = self._sweep_loan(
                    acquiring, loan, day, takings.get((loan.merchant_id, loan.currency), 0)
                )
                looked += 1
                swept += line.status == "swept"
                refused += line.status == "refused"
                amount += line.amount
                if line.status != "nothing_due" and len(lines) < SWEEP_REPORT_LINES_MAX:
                    lines.append(line)
            if len(batch) < SWEEP_BATCH_MAX:
                break
            after = batch[-1].loan_id
        truncated = swept + refused > len(lines)
        return SweepReport(day, looked, swept, amount, refused, tuple(lines), truncated)

    def _sweep_loan(
        self, acquiring: AcquiringData, loan: SweepingLoan, day: str, takings: int
    ) -> SweepLine:
        payment_id = f"sweep:{day}"
        release_id = f"sweep:{loan.loan_id}:{day}"

        def line(status: str, paid: int = 0, code: str | None = None) -> SweepLine:
            return SweepLine(
                loan.loan_id, loan.merchant_id, loan.currency, takings, paid, status, code
            )

        with LendingStore.reading(self.ledger, snapshot=False) as store:
            done = store.event(loan.loan_id, f"repayment/{payment_id}")
        if done is not None:
            paid = sum(int(part) for part in done["allocation"].values())
            return SweepLine(
                loan.loan_id,
                loan.merchant_id,
                loan.currency,
                takings,
                paid,
                "swept",
                None,
                replayed=True,
            )
        release = acquiring.takings_release(release_id)
        if release is None:
            share = sweep_share(takings, loan.sweep_bps)
            if share == 0:
                return line("nothing_due")
            try:
                owed = self.quote_payoff(loan.loan_id, local_date(self.clock())).total
                wanted = min(share, owed)
                if wanted == 0:
                    return line("nothing_due")
                release = acquiring.release_takings(
                    release_id, loan.merchant_id, day, wanted, loan.currency
                )
            except (LendingRefusal, PaymentError) as exc:
                return line("refused", code=exc.code)
        elif release.state != "released":
            return line("refused", code="sweep_release_restored")
        try:
            outcome = self.repay(loan.loan_id, payment_id, release.amount)
        except LendingRefusal as exc:
            acquiring.restore_takings(release_id)
            return line("refused", code=exc.code)
        # Paying more than is owed pays what is owed (the day may have turned since the quote);
        # the rest stays in the settlement account as free money.
        return line("swept", release.amount - outcome.overpayment)
