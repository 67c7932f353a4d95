"""Migrations of the payments table: 0016 stores SQLite's `payments` as a rowid table (rows,
refunds and rules survive); 0018 limits the payee index to merchant payments; 0019 indexes
posted rail requests, refunds and settlements by time."""

from __future__ import annotations

import pytest

from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger.service import Ledger

PAYER = "pty_" + "a" * 26
PAYEE = "pty_" + "b" * 26
_INSERT_PAYMENT = (
    "INSERT INTO payments (payment_id, kind, channel, payer_id, payee_id, amount, currency, "
    "status, decline_code, reasons, digest, decision_id, risk_action, risk_score_ppm, "
    "model_version, transfer_id, order_reference, business_date, refunded, settlement_id, "
    "created_at, updated_at) VALUES (?, 'p2p', 'balance', ?, ?, ?, 'CNY', 'completed', NULL, "
    "'[]', ?, NULL, 'allow', 12, 'v1', ?, NULL, '2026-11-27', 0, NULL, ?, ?)"
)


def _run(ledger: Ledger, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement in a write transaction of its own; the rows it returns."""
    with ledger.write() as uow:
        connection = uow.store.connection
        if ledger.pool.backend == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = connection.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
    return [tuple(row) for row in rows]


def _pay(ledger: Ledger, payment_id: str, amount: int, at: int) -> None:
    _run(ledger, _INSERT_PAYMENT, (payment_id, PAYER, PAYEE, amount, bytes(32), bytes(16), at, at))


def test_payments_and_their_refunds_survive_the_migration(database_url: str) -> None:
    upgrade(database_url, "0015_repayment_method")
    ledger = Ledger(ConnectionPool(database_url, size=2))
    try:
        _pay(ledger, "pay-2", 700, 2)
        _pay(ledger, "pay-1", 500, 1)
        _run(
            ledger,
            "INSERT INTO payment_refunds (refund_id, payment_id, amount, transfer_id, created_at)"
            " VALUES ('ref-1', 'pay-1', 200, ?, 3)",
            (bytes(16),),
        )
    finally:
        ledger.pool.close()
    upgrade(database_url)
    ledger = Ledger(ConnectionPool(database_url, size=2))
    try:
        kept = _run(ledger, "SELECT payment_id, amount, created_at FROM payments ORDER BY 1")
        assert kept == [("pay-1", 500, 1), ("pay-2", 700, 2)]
        joined = _run(
            ledger,
            "SELECT r.refund_id, p.amount FROM payment_refunds r "
            "JOIN payments p ON p.payment_id = r.payment_id",
        )
        assert joined == [("ref-1", 500)]
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            _pay(ledger, "pay-1", 900, 4)
        # The reference still holds: a refund of a payment that does not exist is refused.
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            _run(
                ledger,
                "INSERT INTO payment_refunds (refund_id, payment_id, amount, transfer_id, "
                "created_at) VALUES ('ref-2', 'no-such-payment', 1, ?, 5)",
                (bytes(16),),
            )
        if ledger.pool.backend == "sqlite":
            (definition,) = _run(
                ledger, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'payments'"
            )[0]
            assert "WITHOUT ROWID" not in str(definition).upper()
            indexes = {
                row[0]
                for row in _run(
                    ledger, "SELECT name FROM sqlite_master WHERE tbl_name = 'payments'"
                )
            }
            assert {
                "payments_by_payer",
                "merchant_payments_by_payee_date",
                "payments_by_date",
            } <= indexes
            assert "payments_by_payee_date" not in indexes
            assert _run(ledger, "PRAGMA foreign_key_check") == []
    finally:
        ledger.pool.close()


_MERCHANT_QUERY = (
    "SELECT payment_id FROM payments WHERE payee_id = ? AND business_date = ? "
    "AND status = 'completed' AND kind = 'merchant' ORDER BY payment_id"
)


def test_merchant_queries_use_the_partial_payee_index(database_url: str) -> None:
    upgrade(database_url)
    ledger = Ledger(ConnectionPool(database_url, size=2))
    try:
        _pay(ledger, "pay-p2p", 300, 1)  # a P2P payment to the same payee
        _run(
            ledger,
            _INSERT_PAYMENT.replace("'p2p'", "'merchant'"),
            ("pay-shop", PAYER, PAYEE, 400, bytes(32), bytes(16), 2, 2),
        )
        rows = _run(ledger, _MERCHANT_QUERY, (PAYEE, "2026-11-27"))
        assert rows == [("pay-shop",)]
        if ledger.pool.backend == "sqlite":
            plan = " ".join(
                str(row[-1])
                for row in _run(
                    ledger, "EXPLAIN QUERY PLAN " + _MERCHANT_QUERY, (PAYEE, "2026-11-27")
                )
            )
            assert "merchant_payments_by_payee_date" in plan
            definition = _run(
                ledger,
                "SELECT sql FROM sqlite_master WHERE name = 'merchant_payments_by_payee_date'",
            )
        else:
            definition = _run(
                ledger,
                "SELECT indexdef FROM pg_indexes "
                "WHERE indexname = 'merchant_payments_by_payee_date'",
            )
        assert "kind = 'merchant'" in str(definition[0][0]).replace("::text", "")
    finally:
        ledger.pool.close()


def test_posted_rail_requests_refunds_and_settlements_are_indexed_by_time(
    database_url: str,
) -> None:
    upgrade(database_url)
    ledger = Ledger(ConnectionPool(database_url, size=2))
    try:
        if ledger.pool.backend == "sqlite":
            sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN (?, ?, ?)"
        else:
            sql = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN (?, ?, ?)"
        names = ("rail_requests_posted", "payment_refunds_by_time", "merchant_settlements_by_time")
        definitions = {str(row[0]): str(row[1]) for row in _run(ledger, sql, names)}
        assert set(definitions) == set(names)
        # Only succeeded (posted, final) requests are in the rail index.
        assert "state = 'succeeded'" in definitions["rail_requests_posted"].replace("::text", "")
    finally:
        ledger.pool.close()
