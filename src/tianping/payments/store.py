"""SQL for the payments tables (migration 0006), on both backends.

The only module that knows these tables. It runs on the connection of a ledger unit of work or
read, so a payment's row, its counters, its rule decision and its ledger transfer commit in one
transaction. The backends differ only in placeholders (`?` against `%s`) and in how byte strings
come back (PostgreSQL may hand back `memoryview`), which `bytes()` smooths. Every value is a
bound parameter; the only text formatted into SQL is the placeholder and the fixed column lists
below, which is why S608 (SQL built from strings) is silenced for the module.
"""

# ruff: noqa: S608
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tianping.db.statements import Statements
from tianping.ledger.ids import id_from_bytes, id_to_bytes
from tianping.payments.cash_flow import MonthlyAcquiring
from tianping.payments.chart import SETTLEMENT_CLEARING_ID
from tianping.payments.model import PaymentOutcome

__all__ = [
    "CaseRow",
    "MerchantRow",
    "MovementRow",
    "OrderRow",
    "PaymentsStore",
    "RailRow",
    "SettlementRow",
    "WalletRow",
]

_PAYMENT_COLUMNS = (
    "payment_id, kind, channel, payer_id, payee_id, amount, currency, status, decline_code, "
    "reasons, digest, decision_id, risk_action, risk_score_ppm, model_version, transfer_id, "
    "order_reference, business_date, refunded, settlement_id, created_at, updated_at"
)
_RAIL_COLUMNS = (
    "request_id, direction, party_id, bank_id, card_token, amount, currency, state, "
    "clearing_reference, hold_transfer_id, timeout_at, outcome_code, business_date, digest, "
    "created_at, updated_at"
)
_CASE_COLUMNS = "case_id, kind, status, assignee, disposition, alert, opened_at, updated_at"


@dataclass(frozen=True, slots=True)
class WalletRow:
    party_id: str
    currency: str
    ledger_account_id: int
    account_class: str
    payment_account_id: str
    opened_at: int


@dataclass(frozen=True, slots=True)
class MerchantRow:
    merchant_id: str
    category_code: str
    discount_bps: int
    currency: str
    ledger_account_id: int
    registered_at: int


@dataclass(frozen=True, slots=True)
class OrderRow:
    merchant_id: str
    reference: str
    amount: int
    currency: str
    expires_at: int
    payment_id: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class RailRow:
    request_id: str
    direction: str
    party_id: str
    bank_id: str
    card_token: str
    amount: int
    currency: str
    state: str
    clearing_reference: str | None
    hold_transfer_id: int
    timeout_at: int
    outcome_code: str | None
    business_date: str
    digest: bytes
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class SettlementRow:
    settlement_id: str
    merchant_id: str
    business_date: str
    currency: str
    payments: int
    gross: int
    refunds: int
    fee: int
    net: int
    transfer_id: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class MovementRow:
    """One movement of money the platform executed, as `executed_movements` reads it.

    `flow` is `payment`, `refund`, `settlement` or a rail direction (`top_up`, `withdrawal`,
    `merchant_payout`). `party_id` and `other_id` are, for a payment and for a refund of one,
    the payment's payer and payee (a refund moves money back from the payee); for a rail
    request, its party and the partner bank's pseudonymous id; for a settlement, the merchant
    and the settlement's clearing side. `kind` is the payment's kind (`p2p`, `merchant`),
    `rail` for a rail request and `merchant` for a settlement. `at` is when it was executed
    (ns since the epoch). Another context's movements (`movement_source.WalletMovementSource`,
    such as lending's) come in the same shape, with the customer's kind (`person`, `entity`)
    as `kind`.
    """

    flow: str
    movement_id: str
    party_id: str
    other_id: str
    kind: str
    amount: int
    currency: str
    at: int


@dataclass(frozen=True, slots=True)
class CaseRow:
    case_id: str
    kind: str
    status: str
    assignee: str | None
    disposition: str | None
    alert: dict[str, Any]
    opened_at: int
    updated_at: int


def _id_or_none(value: Any) -> int | None:
    return None if value is None else id_from_bytes(bytes(value))


def _bytes_or_none(value: int | None) -> bytes | None:
    return None if value is None else id_to_bytes(value)


class PaymentsStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    # -- wallets and merchants --------------------------------------------------------------

    def wallet(self, party_id: str, currency: str) -> WalletRow | None:
        row = self._execute(
            "SELECT party_id, currency, ledger_account_id, account_class, payment_account_id, "
            f"opened_at FROM payment_wallets WHERE party_id = {self.p} AND currency = {self.p}",
            (party_id, currency),
        ).fetchone()
        if row is None:
            return None
        return WalletRow(row[0], row[1], id_from_bytes(bytes(row[2])), row[3], row[4], row[5])

    def insert_wallet(self, wallet: WalletRow) -> None:
        self._execute(
            "INSERT INTO payment_wallets (party_id, currency, ledger_account_id, account_class, "
            f"payment_account_id, opened_at) VALUES ({self._values(6)})",
            (
                wallet.party_id,
                wallet.currency,
                id_to_bytes(wallet.ledger_account_id),
                wallet.account_class,
                wallet.payment_account_id,
                wallet.opened_at,
            ),
        )

    def set_wallet_class(self, party_id: str, currency: str, account_class: str) -> None:
        self._execute(
            f"UPDATE payment_wallets SET account_class = {self.p} "
            f"WHERE party_id = {self.p} AND currency = {self.p}",
            (account_class, party_id, currency),
        )

    def wallets_of(self, party_ids: Sequence[str], currency: str) -> dict[str, WalletRow]:
        """The wallets of many parties in one statement (those that have one)."""
        if not party_ids:
            return {}
        rows = self._execute(
            "SELECT party_id, currency, ledger_account_id, account_class, payment_account_id, "
            f"opened_at FROM payment_wallets WHERE currency = {self.p} "
            f"AND party_id IN ({self._values(len(party_ids))})",
            (currency, *party_ids),
        ).fetchall()
        return {
            r[0]: WalletRow(r[0], r[1], id_from_bytes(bytes(r[2])), r[3], r[4], r[5]) for r in rows
        }

    def wallets(self, currency: str, limit: int) -> list[WalletRow]:
        rows = self._execute(
            "SELECT party_id, currency, ledger_account_id, account_class, payment_account_id, "
            f"opened_at FROM payment_wallets WHERE currency = {self.p} ORDER BY party_id "
            f"LIMIT {self.p}",
            (currency, limit),
        ).fetchall()
        return [WalletRow(r[0], r[1], id_from_bytes(bytes(r[2])), r[3], r[4], r[5]) for r in rows]

    def merchant(self, merchant_id: str) -> MerchantRow | None:
        row = self._execute(
            "SELECT merchant_id, category_code, discount_bps, currency, ledger_account_id, "
            f"registered_at FROM payment_merchants WHERE merchant_id = {self.p}",
            (merchant_id,),
        ).fetchone()
        if row is None:
            return None
        return MerchantRow(row[0], row[1], row[2], row[3], id_from_bytes(bytes(row[4])), row[5])

    def insert_merchant(self, merchant: MerchantRow) -> None:
        self._execute(
            "INSERT INTO payment_merchants (merchant_id, category_code, discount_bps, currency, "
            f"ledger_account_id, registered_at) VALUES ({self._values(6)})",
            (
                merchant.merchant_id,
                merchant.category_code,
                merchant.discount_bps,
                merchant.currency,
                id_to_bytes(merchant.ledger_account_id),
                merchant.registered_at,
            ),
        )

    def merchants(self, limit: int) -> list[MerchantRow]:
        rows = self._execute(
            "SELECT merchant_id, category_code, discount_bps, currency, ledger_account_id, "
            f"registered_at FROM payment_merchants ORDER BY merchant_id LIMIT {self.p}",
            (limit,),
        ).fetchall()
        return [MerchantRow(r[0], r[1], r[2], r[3], id_from_bytes(bytes(r[4])), r[5]) for r in rows]

    # -- payments ---------------------------------------------------------------------------

    @staticmethod
    def _payment(row: Sequence[Any]) -> tuple[PaymentOutcome, bytes, str | None]:
        outcome = PaymentOutcome(
            payment_id=row[0],
            kind=row[1],
            channel=row[2],
            payer_id=row[3],
            payee_id=row[4],
            amount=row[5],
            currency=row[6],
            status=row[7],
            decline_code=row[8],
            reasons=tuple(json.loads(row[9])),
            decision_id=_id_or_none(row[11]),
            risk_action=row[12],
            risk_score_ppm=row[13],
            model_version=row[14],
            transfer_id=_id_or_none(row[15]),
            business_date=row[17],
            refunded=row[18],
            created_at=row[20],
        )
        return outcome, bytes(row[10]), row[16]

    def payment(self, payment_id: str) -> tuple[PaymentOutcome, bytes, str | None] | None:
        row = self._execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE payment_id = {self.p}", (payment_id,)
        ).fetchone()
        return None if row is None else self._payment(row)

    def payments(self, payment_ids: Sequence[str]) -> dict[str, tuple[PaymentOutcome, bytes]]:
        if not payment_ids:
            return {}
        rows = self._execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments "
            f"WHERE payment_id IN ({self._values(len(payment_ids))})",
            tuple(payment_ids),
        ).fetchall()
        found = {}
        for row in rows:
            outcome, digest, _ = self._payment(row)
            found[outcome.payment_id] = (outcome, digest)
        return found

    def upsert_payments(
        self,
        outcomes: Iterable[tuple[PaymentOutcome, bytes, str | None]],
        at: int,
        insert: bool,
    ) -> None:
        """Insert new payment rows, or (insert=False) update a resumed payment's outcome."""
        rows = [
            (
                outcome.payment_id,
                outcome.kind,
                outcome.channel,
                outcome.payer_id,
                outcome.payee_id,
                outcome.amount,
                outcome.currency,
                outcome.status,
                outcome.decline_code,
                json.dumps(list(outcome.reasons)) if outcome.reasons else "[]",
                digest,
                _bytes_or_none(outcome.decision_id),
                outcome.risk_action,
                outcome.risk_score_ppm,
                outcome.model_version,
                _bytes_or_none(outcome.transfer_id),
                order_reference,
                outcome.business_date,
                outcome.refunded,
                None,
                outcome.created_at,
                at,
            )
            for outcome, digest, order_reference in outcomes
        ]
        if not rows:
            return
        if insert:
            self._executemany(
                f"INSERT INTO payments ({_PAYMENT_COLUMNS}) VALUES ({self._values(22)})", rows
            )
            return
        # A resumed payment takes the business date and time of the attempt that decided it:
        # its money moves then, and settlement, AML reports and the day's counters go by that
        # day (a step-up answered after midnight belongs to the new day; the first attempt
        # stays on record in its own rule decision).
        for row in rows:
            self._execute(
                f"UPDATE payments SET status = {self.p}, decline_code = {self.p}, "
                f"reasons = {self.p}, decision_id = {self.p}, risk_action = {self.p}, "
                f"risk_score_ppm = {self.p}, model_version = {self.p}, transfer_id = {self.p}, "
                f"business_date = {self.p}, created_at = {self.p}, updated_at = {self.p} "
                f"WHERE payment_id = {self.p}",
                (*row[7:10], *row[11:16], row[17], row[20], at, row[0]),
            )

    def set_refunded(self, payment_id: str, refunded: int, at: int) -> None:
        self._execute(
            f"UPDATE payments SET refunded = {self.p}, updated_at = {self.p} "
            f"WHERE payment_id = {self.p}",
            (refunded, at, payment_id),
        )

    def unsettled_merchant_payments(
        self, merchant_id: str, business_date: str, limit: int
    ) -> list[tuple[str, int, int, str]]:
        """(payment_id, amount, refunded, currency) of a merchant's completed payments of a day
        that no settlement has paid out yet."""
        rows = self._execute(
            "SELECT payment_id, amount, refunded, currency FROM payments "
            f"WHERE payee_id = {self.p} AND business_date = {self.p} AND status = 'completed' "
            f"AND kind = 'merchant' AND settlement_id IS NULL ORDER BY payment_id LIMIT {self.p}",
            (merchant_id, business_date, limit),
        ).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def mark_settled(self, payment_ids: Sequence[str], settlement_id: str, at: int) -> None:
        self._executemany(
            f"UPDATE payments SET settlement_id = {self.p}, updated_at = {self.p} "
            f"WHERE payment_id = {self.p}",
            [(settlement_id, at, payment_id) for payment_id in payment_ids],
        )

    def day_summary(self, business_date: str) -> list[tuple[str, str, str, str | None, int, int]]:
        """(kind, channel, status, decline_code, count, amount) of a day's payments."""
        rows = self._execute(
            "SELECT kind, channel, status, decline_code, COUNT(*), COALESCE(SUM(amount), 0) "
            f"FROM payments WHERE business_date = {self.p} "
            "GROUP BY kind, channel, status, decline_code ORDER BY kind, channel, status",
            (business_date,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]

    def payer_activity(self, party_id: str, since_ns: int) -> int:
        """How many completed payments the party made since `since_ns`."""
        row = self._execute(
            "SELECT COUNT(*) FROM payments WHERE payer_id = "
            f"{self.p} AND status = 'completed' AND created_at >= {self.p}",
            (party_id, since_ns),
        ).fetchone()
        return int(row[0])

    def merchant_monthly_acquiring(
        self, merchant_id: str, currency: str, first_day: str, end_day: str, months: int
    ) -> list[MonthlyAcquiring]:
        """A merchant's acquiring per calendar month from `first_day` up to, not including,
        `end_day` (ISO dates): completed takings, their refunds, completed and declined
        attempts and trading days. One set-based statement over the payee index; at most
        `months` rows."""
        rows = self._execute(
            "SELECT substr(business_date, 1, 7) AS month, "
            "COALESCE(SUM(CASE WHEN status = 'completed' THEN amount ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN status = 'completed' THEN refunded ELSE 0 END), 0), "
            "COUNT(CASE WHEN status = 'completed' THEN 1 END), "
            "COUNT(CASE WHEN status = 'declined' THEN 1 END), "
            "COUNT(DISTINCT CASE WHEN status = 'completed' THEN business_date END) "
            f"FROM payments WHERE payee_id = {self.p} AND kind = 'merchant' "
            f"AND currency = {self.p} AND business_date >= {self.p} AND business_date < {self.p} "
            f"GROUP BY substr(business_date, 1, 7) ORDER BY month LIMIT {self.p}",
            (merchant_id, currency, first_day, end_day, months),
        ).fetchall()
        return [
            MonthlyAcquiring(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
            for r in rows
        ]

    def merchant_acquiring_reach(
        self, merchant_id: str, currency: str, first_day: str, end_day: str
    ) -> tuple[int, str | None]:
        """(distinct payers of completed payments in the window, the business date of the
        merchant's first completed payment ever, before `end_day`)."""
        row = self._execute(
            "SELECT (SELECT COUNT(DISTINCT payer_id) FROM payments "
            f"WHERE payee_id = {self.p} AND kind = 'merchant' AND currency = {self.p} "
            f"AND status = 'completed' AND business_date >= {self.p} "
            f"AND business_date < {self.p}), "
            "(SELECT MIN(business_date) FROM payments "
            f"WHERE payee_id = {self.p} AND kind = 'merchant' AND currency = {self.p} "
            f"AND status = 'completed' AND business_date < {self.p})",
            (merchant_id, currency, first_day, end_day, merchant_id, currency, end_day),
        ).fetchone()
        return int(row[0]), row[1]

    def merchant_unsettled_takings(self, merchant_id: str, currency: str) -> int:
        """What the merchant's completed, not yet settled payments keep after refunds: the part
        of its payable balance the next settlement pays out."""
        row = self._execute(
            "SELECT COALESCE(SUM(amount - refunded), 0) FROM payments "
            f"WHERE payee_id = {self.p} AND kind = 'merchant' AND currency = {self.p} "
            "AND status = 'completed' AND settlement_id IS NULL",
            (merchant_id, currency),
        ).fetchone()
        return int(row[0])

    def executed_movements(
        self, business_date: str, start_ns: int, end_ns: int, limit: int
    ) -> list[MovementRow]:
        """Every movement of money executed on a local business day, in no particular order:
        its completed payments (by their business date), and the refunds, posted rail requests
        and merchant settlements executed from `start_ns` up to, not including, `end_ns` (the
        day's local midnights). At most `limit` rows.

        One statement; each part reads its own index (`payments_by_date`, and those of
        migration 0019). A rail request is posted when its state is `succeeded`, which is final,
        so its `updated_at` is the moment it was posted. A settlement of nothing net (all fee,
        or all released to a loan sweep) moved no money to the merchant and is left out.
        """
        p = self.p
        rows = self._execute(
            "SELECT 'payment', payment_id, payer_id, payee_id, kind, amount, currency, "
            f"created_at FROM payments WHERE business_date = {p} AND status = 'completed' "
            "UNION ALL "
            "SELECT 'refund', r.refund_id, o.payer_id, o.payee_id, o.kind, r.amount, o.currency, "
            "r.created_at FROM payment_refunds r JOIN payments o ON o.payment_id = r.payment_id "
            f"WHERE r.created_at >= {p} AND r.created_at < {p} "
            "UNION ALL "
            "SELECT direction, request_id, party_id, bank_id, 'rail', amount, currency, "
            f"updated_at FROM rail_requests WHERE state = 'succeeded' AND updated_at >= {p} "
            f"AND updated_at < {p} "
            "UNION ALL "
            f"SELECT 'settlement', settlement_id, merchant_id, {p}, 'merchant', net, currency, "
            f"created_at FROM merchant_settlements WHERE created_at >= {p} AND created_at < {p} "
            f"AND net > 0 LIMIT {p}",
            (
                business_date,
                start_ns,
                end_ns,
                start_ns,
                end_ns,
                SETTLEMENT_CLEARING_ID,
                start_ns,
                end_ns,
                limit,
            ),
        ).fetchall()
        return [MovementRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], int(r[7])) for r in rows]

    # -- refunds ----------------------------------------------------------------------------

    def refund(self, refund_id: str) -> tuple[str, int, int, int] | None:
        """(payment_id, amount, transfer_id, created_at) of a refund."""
        row = self._execute(
            "SELECT payment_id, amount, transfer_id, created_at FROM payment_refunds "
            f"WHERE refund_id = {self.p}",
            (refund_id,),
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], id_from_bytes(bytes(row[2])), row[3]

    def insert_refund(
        self, refund_id: str, payment_id: str, amount: int, transfer_id: int, at: int
    ) -> None:
        self._execute(
            "INSERT INTO payment_refunds (refund_id, payment_id, amount, transfer_id, created_at) "
            f"VALUES ({self._values(5)})",
            (refund_id, payment_id, amount, id_to_bytes(transfer_id), at),
        )

    # -- counters ---------------------------------------------------------------------------

    def counters(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
        """The stored amounts of (party_id, counter, period) keys; absent keys are zero. One
        statement for all of them."""
        if not keys:
            return {}
        parties = sorted({key[0] for key in keys})
        periods = sorted({key[2] for key in keys})
        rows = self._execute(
            "SELECT party_id, counter, period, amount FROM payment_counters "
            f"WHERE party_id IN ({self._values(len(parties))}) "
            f"AND period IN ({self._values(len(periods))})",
            (*parties, *periods),
        ).fetchall()
        found = {(row[0], row[1], row[2]): int(row[3]) for row in rows}
        return {key: found.get(key, 0) for key in keys}

    def write_counters(self, values: dict[tuple[str, str, str], int]) -> None:
        if not values:
            return
        self._executemany(
            "INSERT INTO payment_counters (party_id, counter, period, amount) "
            f"VALUES ({self._values(4)}) ON CONFLICT (party_id, counter, period) "
            "DO UPDATE SET amount = excluded.amount",
            [(*key, amount) for key, amount in values.items()],
        )

    # -- orders (dynamic QR codes) ----------------------------------------------------------

    def order(self, merchant_id: str, reference: str) -> OrderRow | None:
        row = self._execute(
            "SELECT merchant_id, reference, amount, currency, expires_at, payment_id, created_at "
            f"FROM payment_orders WHERE merchant_id = {self.p} AND reference = {self.p}",
            (merchant_id, reference),
        ).fetchone()
        return None if row is None else OrderRow(*row)

    def insert_order(self, order: OrderRow) -> None:
        self._execute(
            "INSERT INTO payment_orders (merchant_id, reference, amount, currency, expires_at, "
            f"payment_id, created_at) VALUES ({self._values(7)})",
            (
                order.merchant_id,
                order.reference,
                order.amount,
                order.currency,
                order.expires_at,
                order.payment_id,
                order.created_at,
            ),
        )

    def mark_order_paid(self, merchant_id: str, reference: str, payment_id: str) -> None:
        self._execute(
            f"UPDATE payment_orders SET payment_id = {self.p} "
            f"WHERE merchant_id = {self.p} AND reference = {self.p}",
            (payment_id, merchant_id, reference),
        )

    # -- bank rails -------------------------------------------------------------------------

    @staticmethod
    def _rail(row: Sequence[Any]) -> RailRow:
        return RailRow(
            request_id=row[0],
            direction=row[1],
            party_id=row[2],
            bank_id=row[3],
            card_token=row[4],
            amount=int(row[5]),
            currency=row[6],
            state=row[7],
            clearing_reference=row[8],
            hold_transfer_id=id_from_bytes(bytes(row[9])),
            timeout_at=row[10],
            outcome_code=row[11],
            business_date=row[12],
            digest=bytes(row[13]),
            created_at=row[14],
            updated_at=row[15],
        )

    def rail_request(self, request_id: str) -> RailRow | None:
        row = self._execute(
            f"SELECT {_RAIL_COLUMNS} FROM rail_requests WHERE request_id = {self.p}",
            (request_id,),
        ).fetchone()
        return None if row is None else self._rail(row)

    def insert_rail_request(self, rail: RailRow) -> None:
        self._execute(
            f"INSERT INTO rail_requests ({_RAIL_COLUMNS}) VALUES ({self._values(16)})",
            (
                rail.request_id,
                rail.direction,
                rail.party_id,
                rail.bank_id,
                rail.card_token,
                rail.amount,
                rail.currency,
                rail.state,
                rail.clearing_reference,
                id_to_bytes(rail.hold_transfer_id),
                rail.timeout_at,
                rail.outcome_code,
                rail.business_date,
                rail.digest,
                rail.created_at,
                rail.updated_at,
            ),
        )

    def update_rail(
        self,
        request_id: str,
        state: str,
        clearing_reference: str | None,
        outcome_code: str | None,
        at: int,
    ) -> None:
        self._execute(
            f"UPDATE rail_requests SET state = {self.p}, "
            f"clearing_reference = COALESCE({self.p}, clearing_reference), "
            f"outcome_code = {self.p}, updated_at = {self.p} WHERE request_id = {self.p}",
            (state, clearing_reference, outcome_code, at, request_id),
        )

    def set_rail_reference(self, request_id: str, clearing_reference: str) -> None:
        """Record the clearing house's reference of a request it accepted, unless a callback
        has already recorded it; state, outcome and time stay as they are, because that
        callback may have posted or voided the request in the meantime."""
        self._execute(
            f"UPDATE rail_requests SET clearing_reference = {self.p} "
            f"WHERE request_id = {self.p} AND clearing_reference IS NULL",
            (clearing_reference, request_id),
        )

    def due_rail_requests(self, now_s: int, limit: int) -> list[RailRow]:
        rows = self._execute(
            f"SELECT {_RAIL_COLUMNS} FROM rail_requests WHERE state = 'submitted' "
            f"AND timeout_at <= {self.p} ORDER BY timeout_at LIMIT {self.p}",
            (now_s, limit),
        ).fetchall()
        return [self._rail(row) for row in rows]

    def rail_requests_on(self, business_date: str, limit: int) -> list[RailRow]:
        rows = self._execute(
            f"SELECT {_RAIL_COLUMNS} FROM rail_requests WHERE business_date = {self.p} "
            f"ORDER BY request_id LIMIT {self.p}",
            (business_date, limit),
        ).fetchall()
        return [self._rail(row) for row in rows]

    def callback(self, request_id: str, sequence: int) -> str | None:
        """The outcome of an already received callback, or None."""
        row = self._execute(
            f"SELECT outcome FROM rail_callbacks WHERE request_id = {self.p} "
            f"AND sequence = {self.p}",
            (request_id, sequence),
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_callback(
        self,
        request_id: str,
        sequence: int,
        callback_id: str,
        outcome: str,
        disposition: str,
        at: int,
    ) -> None:
        self._execute(
            "INSERT INTO rail_callbacks (request_id, sequence, callback_id, outcome, "
            f"disposition, received_at) VALUES ({self._values(6)})",
            (request_id, sequence, callback_id, outcome, disposition, at),
        )

    # -- settlements and safeguarding -------------------------------------------------------

    def settlement(
        self, merchant_id: str, business_date: str, currency: str
    ) -> SettlementRow | None:
        row = self._execute(
            "SELECT settlement_id, merchant_id, business_date, currency, payments, gross, "
            "refunds, fee, net, transfer_id, created_at FROM merchant_settlements "
            f"WHERE merchant_id = {self.p} AND business_date = {self.p} AND currency = {self.p}",
            (merchant_id, business_date, currency),
        ).fetchone()
        if row is None:
            return None
        return SettlementRow(
            settlement_id=row[0],
            merchant_id=row[1],
            business_date=row[2],
            currency=row[3],
            payments=int(row[4]),
            gross=int(row[5]),
            refunds=int(row[6]),
            fee=int(row[7]),
            net=int(row[8]),
            transfer_id=_id_or_none(row[9]),
            created_at=int(row[10]),
        )

    def insert_settlement(self, settlement: SettlementRow) -> None:
        self._execute(
            "INSERT INTO merchant_settlements (settlement_id, merchant_id, business_date, "
            "currency, payments, gross, refunds, fee, net, transfer_id, created_at) "
            f"VALUES ({self._values(11)})",
            (
                settlement.settlement_id,
                settlement.merchant_id,
                settlement.business_date,
                settlement.currency,
                settlement.payments,
                settlement.gross,
                settlement.refunds,
                settlement.fee,
                settlement.net,
                _bytes_or_none(settlement.transfer_id),
                settlement.created_at,
            ),
        )

    def insert_safeguarding_check(
        self,
        check_id: str,
        at: int,
        currency: str,
        reserve: int,
        liabilities: int,
        chain_seq: int,
    ) -> None:
        self._execute(
            "INSERT INTO safeguarding_checks (check_id, at, currency, reserve, "
            "client_liabilities, difference, in_balance, chain_seq) "
            f"VALUES ({self._values(8)})",
            (
                check_id,
                at,
                currency,
                reserve,
                liabilities,
                reserve - liabilities,
                reserve == liabilities,
                chain_seq,
            ),
        )

    def last_good_check(self, currency: str) -> tuple[str, int, int] | None:
        """(check_id, at, chain_seq) of the latest check that balanced."""
        row = self._execute(
            "SELECT check_id, at, chain_seq FROM safeguarding_checks "
            f"WHERE currency = {self.p} AND in_balance ORDER BY at DESC LIMIT 1",
            (currency,),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]), int(row[2]))

    # -- card checkouts ---------------------------------------------------------------------

    def card_checkout(self, payment_id: str) -> tuple[str, str, str, int, str, str, bytes] | None:
        """(request id, payer, merchant, amount, currency, state, digest) of a card checkout."""
        row = self._execute(
            "SELECT request_id, payer_id, merchant_id, amount, currency, state, digest "
            f"FROM card_checkouts WHERE payment_id = {self.p}",
            (payment_id,),
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], int(row[3]), row[4], row[5], bytes(row[6])

    def card_checkout_of_request(self, request_id: str) -> str | None:
        row = self._execute(
            f"SELECT payment_id FROM card_checkouts WHERE request_id = {self.p}", (request_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_card_checkout(
        self,
        payment_id: str,
        request_id: str,
        payer_id: str,
        merchant_id: str,
        amount: int,
        currency: str,
        digest: bytes,
        at: int,
    ) -> None:
        self._execute(
            "INSERT INTO card_checkouts (payment_id, request_id, payer_id, merchant_id, amount, "
            f"currency, state, digest, created_at, updated_at) VALUES ({self._values(10)})",
            (
                payment_id,
                request_id,
                payer_id,
                merchant_id,
                amount,
                currency,
                "pending",
                digest,
                at,
                at,
            ),
        )

    def set_card_checkout_state(self, payment_id: str, state: str, at: int) -> None:
        self._execute(
            f"UPDATE card_checkouts SET state = {self.p}, updated_at = {self.p} "
            f"WHERE payment_id = {self.p}",
            (state, at, payment_id),
        )

    # -- payment codes ----------------------------------------------------------------------

    def code_slot(self, slot: int) -> tuple[str, bytes, int] | None:
        """(party_id, sealed secret, last accepted step) of an issued slot."""
        row = self._execute(
            f"SELECT party_id, secret, last_step FROM payment_code_slots WHERE slot = {self.p}",
            (slot,),
        ).fetchone()
        return None if row is None else (row[0], bytes(row[1]), int(row[2]))

    def code_slot_of(self, party_id: str) -> int | None:
        row = self._execute(
            f"SELECT slot FROM payment_code_slots WHERE party_id = {self.p}", (party_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def replace_code_slot(self, slot: int, party_id: str, sealed: bytes, at: int) -> None:
        self._execute(f"DELETE FROM payment_code_slots WHERE party_id = {self.p}", (party_id,))
        self._execute(
            "INSERT INTO payment_code_slots (slot, party_id, secret, last_step, issued_at) "
            f"VALUES ({self._values(5)})",
            (slot, party_id, sealed, 0, at),
        )

    def accept_code_step(self, slot: int, step: int) -> bool:
        """Record `step` as used for `slot` unless it (or a later one) already was."""
        cursor = self._execute(
            f"UPDATE payment_code_slots SET last_step = {self.p} "
            f"WHERE slot = {self.p} AND last_step < {self.p}",
            (step, slot, step),
        )
        return int(cursor.rowcount) == 1

    # -- AML cases --------------------------------------------------------------------------

    @staticmethod
    def _case(row: Sequence[Any]) -> CaseRow:
        return CaseRow(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])

    def case(self, case_id: str) -> CaseRow | None:
        row = self._execute(
            f"SELECT {_CASE_COLUMNS} FROM aml_cases WHERE case_id = {self.p}", (case_id,)
        ).fetchone()
        return None if row is None else self._case(row)

    def cases(self, status: str | None, limit: int) -> list[CaseRow]:
        if status is None:
            rows = self._execute(
                f"SELECT {_CASE_COLUMNS} FROM aml_cases ORDER BY opened_at LIMIT {self.p}",
                (limit,),
            ).fetchall()
        else:
            rows = self._execute(
                f"SELECT {_CASE_COLUMNS} FROM aml_cases WHERE status = {self.p} "
                f"ORDER BY opened_at LIMIT {self.p}",
                (status, limit),
            ).fetchall()
        return [self._case(row) for row in rows]

    def insert_case(self, case: CaseRow) -> None:
        self._execute(
            f"INSERT INTO aml_cases ({_CASE_COLUMNS}) VALUES ({self._values(8)})",
            (
                case.case_id,
                case.kind,
                case.status,
                case.assignee,
                case.disposition,
                json.dumps(case.alert, sort_keys=True),
                case.opened_at,
                case.updated_at,
            ),
        )

    def update_case(
        self, case_id: str, status: str, assignee: str | None, disposition: str | None, at: int
    ) -> None:
        self._execute(
            f"UPDATE aml_cases SET status = {self.p}, assignee = {self.p}, "
            f"disposition = {self.p}, updated_at = {self.p} WHERE case_id = {self.p}",
            (status, assignee, disposition, at, case_id),
        )

    def insert_case_event(
        self, case_id: str, seq: int, at: int, actor: str, action: str, details: str
    ) -> None:
        self._execute(
            "INSERT INTO aml_case_events (case_id, seq, at, actor, action, details) "
            f"VALUES ({self._values(6)})",
            (case_id, seq, at, actor, action, details),
        )

    def case_events(self, case_id: str, limit: int) -> list[tuple[int, int, str, str, str]]:
        rows = self._execute(
            "SELECT seq, at, actor, action, details FROM aml_case_events "
            f"WHERE case_id = {self.p} ORDER BY seq LIMIT {self.p}",
            (case_id, limit),
        ).fetchall()
        return [(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]
