"""The money lending moves into and out of customers' wallets, for the AML reports.

Lending implements the payments context's port `WalletMovementSource`: the large-value reports
(regulation.md A1, A2) cover every movement of a customer's money on a local business day, and
these are lending's own records of such movements, read set-based in one statement over the
indexes of migration 0020 (the event kind and its time):

* a loan paid out (`loans` and its `disbursement` event): money in for the borrower, into the
  wallet (an SME loan: into the merchant's settlement account), from the lender;
* a repayment of a loan (a `repayment` event; paying the payoff quote early is one), from the
  wallet or, for an SME loan, the settlement account: money out, what the waterfall allocated
  (an overpayment stays where it was and is not counted); a repayment by the daily sweep of
  takings (payment id `sweep:<day>` on an SME loan) is its own flow, `sweep`;
* a recovery on a written-off loan (a `recovery` event): money out, what it recovered;
* a repayment of a credit line and an operator's recovery on a written-off one (line
  transactions `repayment` and `recovery/...`): money out, what was applied.

Left out on purpose: a purchase on a credit line (`draw`) is a merchant payment, which the
payments context reports, and moves none of the holder's money; a refund of such a purchase
(`refund`, or `recovery` under a refund's id on a written-off line) is a payments refund,
reported there; a loan paid on to the borrower's card is reported here as money in once, and
the withdrawal to the card is a rail request the payments context reports as a withdrawal.
Interest, fees, write-offs and conversions move no money of the customer's.

Every value is a bound parameter; only placeholders are formatted into SQL, which is why S608
is silenced.
"""

# ruff: noqa: S608
from __future__ import annotations

import json
from typing import Any, Final

from tianping.db.statements import Statements
from tianping.ledger.service import Ledger
from tianping.lending.sme import SME_PRODUCT
from tianping.payments.store import MovementRow

__all__ = ["LendingMovementStore", "WalletMovements"]

# An SME loan's customer is an entity (a merchant), and its repayments by the sweep have
# payment ids that start with this prefix (`TakingsSweeps`: one repayment `sweep:<day>` per
# loan and day).
_SWEEP_PAYMENT: Final = "sweep:"
# A line's recovery by the operator; a refund booked as a recovery is under `refund/...`.
_LINE_RECOVERY_IDS: Final = "recovery/%"


class LendingMovementStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    def wallet_movements(self, start_ns: int, end_ns: int, limit: int) -> list[MovementRow]:
        """The movements of customers' money executed from `start_ns` up to, not including,
        `end_ns`, at most `limit`, in no particular order (see the module docstring)."""
        p = self.p
        rows = self._execute(
            "SELECT e.kind, l.loan_id, e.event_id, l.party_id, l.product, l.partner_bank_id, "
            "l.currency, e.amounts, CAST(NULL AS BIGINT), e.at "
            "FROM loan_events e JOIN loans l ON l.loan_id = e.loan_id "
            "WHERE e.kind IN ('disbursement', 'repayment', 'recovery') "
            f"AND e.at >= {p} AND e.at < {p} "
            "UNION ALL "
            "SELECT 'line_' || t.kind, c.line_id, t.txn_id, c.party_id, 'credit_line', "
            "c.partner_bank_id, c.currency, CAST(NULL AS TEXT), t.amount, t.at "
            "FROM credit_line_transactions t JOIN credit_lines c ON c.line_id = t.line_id "
            f"WHERE t.kind = 'repayment' AND t.at >= {p} AND t.at < {p} AND t.amount > 0 "
            "UNION ALL "
            "SELECT 'line_' || t.kind, c.line_id, t.txn_id, c.party_id, 'credit_line', "
            "c.partner_bank_id, c.currency, CAST(NULL AS TEXT), t.amount, t.at "
            "FROM credit_line_transactions t JOIN credit_lines c ON c.line_id = t.line_id "
            f"WHERE t.kind = 'recovery' AND t.txn_id LIKE {p} AND t.at >= {p} AND t.at < {p} "
            f"AND t.amount > 0 LIMIT {p}",
            (start_ns, end_ns, start_ns, end_ns, _LINE_RECOVERY_IDS, start_ns, end_ns, limit),
        ).fetchall()
        movements = []
        for (
            kind,
            record_id,
            event_id,
            party,
            product,
            funder,
            currency,
            amounts,
            amount,
            at,
        ) in rows:
            flow, movement_id, moved = _movement(
                str(kind), str(record_id), str(event_id), str(product), amounts, amount
            )
            if moved > 0:
                movements.append(
                    MovementRow(
                        flow,
                        movement_id,
                        str(party),
                        str(funder),
                        "entity" if product == SME_PRODUCT else "person",
                        moved,
                        str(currency),
                        int(at),
                    )
                )
        return movements


def _movement(
    kind: str,
    record_id: str,
    event_id: str,
    product: str,
    amounts: Any,
    amount: Any,
) -> tuple[str, str, int]:
    """A row's AML flow, the id of its record (the loan or line and the client's id of the
    movement) and the amount that moved, from lending's own record of it: a line transaction's
    amount column (`amount`), a loan event's document (`amounts`; the other is NULL)."""
    # A line transaction's id and a loan event's id are `<kind>/<client id>`.
    _, _, client_id = event_id.partition("/")
    if kind.startswith("line_"):
        return kind, f"{record_id}/{client_id}", int(amount)
    document = json.loads(amounts)
    if kind == "disbursement":
        return "loan_disbursement", record_id, int(document["amount"])
    if kind == "recovery":
        return "loan_recovery", f"{record_id}/{client_id}", int(document["recovered"])
    # A repayment takes what its waterfall allocated; the overpayment stays in the wallet.
    moved = sum(int(part) for part in document["allocation"].values())
    if product == SME_PRODUCT and client_id.startswith(_SWEEP_PAYMENT):
        # The sweep's id names the loan and the day, as its release in payments does.
        return "sweep", f"{record_id}:{client_id.removeprefix(_SWEEP_PAYMENT)}", moved
    return "loan_repayment", f"{record_id}/{client_id}", moved


class WalletMovements:
    """The payments port `WalletMovementSource`; mixed into `LendingService`."""

    ledger: Ledger

    def wallet_movements(self, start_ns: int, end_ns: int, limit: int) -> list[MovementRow]:
        """The money lending moved into and out of customers' wallets from `start_ns` up to,
        not including, `end_ns`, at most `limit` movements (the caller refuses a day that
        reaches its bound rather than cutting it short)."""
        with LendingMovementStore.reading(self.ledger) as store:
            return store.wallet_movements(start_ns, end_ns, limit)
