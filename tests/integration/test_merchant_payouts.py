"""Merchant payouts and the SME sweep on both backends: an SME loan's proceeds reach the
merchant's own bank account through the clearing house, never more than the free balance; a
declined payout frees the money again; a sweep repays the loan from a share of a day's takings
before settlement, which pays out the rest; replays move nothing twice; reconciliation and
safeguarding stay whole throughout."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.identity import party_service
from tianping.ledger.service import Ledger
from tianping.lending.model import Application, LendingRefusal
from tianping.lending.service import LendingService
from tianping.payments import chart
from tianping.payments.chart import TransferCode
from tianping.payments.clearing_sim import ScriptedScenario, SimulatorBehaviour
from tianping.payments.model import PaymentError, local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_S = 86_400
ACCOUNT = "6217 0000 1234 5678 901"
OTHER_ACCOUNT = "6217000098765432109"


class Consent:
    def __init__(self) -> None:
        self.available = True

    def service_available(self, party_id: str, service: str) -> Any:
        return self


def _world(ledger: Ledger, clock: ManualClock, behaviour: SimulatorBehaviour | None) -> Any:
    """A noodle shop taking 600 a month in January to March (2027); April has begun."""
    world = make_world(ledger, clock, behaviour)
    for name in ("alice", "bob"):
        world.person(name)
        world.fund(name, 5_000_00)
    world.merchant("noodles")
    world.merchant("teahouse")
    for month in range(3):
        answer = world.pay(f"m{month}", "alice", "noodles", 600_00, auth_factors=2)
        assert answer.status == "completed"
        clock.advance(31 * DAY_S)
    assert local_date(clock()).month == 4
    return world


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    return _world(ledger, clock, None)  # type: ignore[no-any-return]


def _lending(world: PaymentsWorld) -> LendingService:
    return LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        consent=Consent(),
        sme_scorer=FixedScorer(),
        acquiring=world.service,
    )


def _sme_loan(
    world: PaymentsWorld, lending: LendingService, loan_id: str, amount: int, sweep_bps: int = 0
) -> str:
    application = Application(
        application_id=f"app-{loan_id}",
        party_id=world.merchants["noodles"],
        amount=amount,
        term_months=6,
        annual_income=7_200_00 * 12,
        product="sme",
    )
    assert lending.apply(application).outcome == "approved"
    lending.accept(application.application_id, loan_id, sweep_bps)
    return loan_id


def _register_account(world: PaymentsWorld, merchant: str, number: str = ACCOUNT) -> str:
    merchant_id = world.merchants[merchant]
    registration = party_service.get_party(world.ledger, merchant_id).registration_number
    assert registration is not None
    account = world.key.bank_account(number)
    world.service.register_payout_account(
        merchant_id, account.fingerprint, account.last_four, registration
    )
    return account.fingerprint


def _decide(world: PaymentsWorld) -> None:
    world.clock.advance(30)
    world.service.process_callbacks()


def _books_whole(world: PaymentsWorld, business_date: str) -> None:
    assert world.service.safeguarding_check().in_balance
    report = world.service.reconcile(business_date)
    assert report.breaks == (), report.breaks


def test_the_payout_account_is_held_by_the_registered_business(world: PaymentsWorld) -> None:
    service, merchant = world.service, world.merchants["noodles"]
    account = world.key.bank_account(ACCOUNT)
    other = party_service.get_party(world.ledger, world.merchants["teahouse"])
    with pytest.raises(PaymentError) as mismatch:
        service.register_payout_account(
            merchant, account.fingerprint, account.last_four, str(other.registration_number)
        )
    assert mismatch.value.code == "payout_account_holder_mismatch"
    with pytest.raises(PaymentError) as missing:
        service.payout_account(merchant)
    assert missing.value.code == "payout_account_not_registered"
    fingerprint = _register_account(world, "noodles")
    assert _register_account(world, "noodles") == fingerprint  # a replay
    registered = service.payout_account(merchant)
    assert (registered.fingerprint, registered.last_four) == (fingerprint, "8901")
    assert ACCOUNT.replace(" ", "") not in repr(registered)
    with pytest.raises(PaymentError) as second:
        _register_account(world, "noodles", OTHER_ACCOUNT)
    assert second.value.code == "payout_account_exists"
    with pytest.raises(PaymentError) as taken:
        _register_account(world, "teahouse")
    assert taken.value.code == "payout_account_taken"
    with pytest.raises(PaymentError) as person:
        service.register_payout_account(
            world.people["alice"], account.fingerprint, account.last_four, "x" * 18
        )
    assert person.value.code == "merchant_not_found"


def test_loan_proceeds_are_paid_out_never_beyond_the_free_balance(world: PaymentsWorld) -> None:
    service, merchant = world.service, world.merchants["noodles"]
    lending = _lending(world)
    _sme_loan(world, lending, "loan-1", 600_00)
    assert service.merchant_free_balance(merchant) == 600_00
    with pytest.raises(PaymentError) as no_account:
        service.request_merchant_payout("po-0", merchant, 100_00)
    assert no_account.value.code == "payout_account_not_registered"
    _register_account(world, "noodles")
    # Today's takings belong to the next settlement, not to a payout.
    assert world.pay("today", "bob", "noodles", 250_00, auth_factors=2).status == "completed"
    assert service.merchant_free_balance(merchant) == 600_00
    with pytest.raises(PaymentError) as too_much:
        service.request_merchant_payout("po-big", merchant, 600_01)
    assert too_much.value.code == "payout_exceeds_free_balance"

    held = service.request_merchant_payout("po-1", merchant, 400_00)
    assert (held.direction, held.state, held.amount) == ("merchant_payout", "submitted", 400_00)
    assert service.request_merchant_payout("po-1", merchant, 400_00) == held  # a replay
    with pytest.raises(PaymentError) as conflict:
        service.request_merchant_payout("po-1", merchant, 300_00)
    assert conflict.value.code == "request_conflict"
    # The hold is on the payable at once: nothing else may take the same money.
    assert service.merchant_free_balance(merchant) == 200_00
    with pytest.raises(LendingRefusal) as repayment:
        lending.repay("loan-1", "rp-1", 300_00)
    assert repayment.value.code == "insufficient_funds"
    _decide(world)
    paid = service.merchant_payout(merchant, "po-1")
    assert paid.state == "succeeded"
    (settled,) = world.ledger.lookup_transfers([chart.transfer_id("rail-settle", "po-1")])
    assert (settled.code, settled.amount) == (int(TransferCode.MERCHANT_PAYOUT_SETTLED), 400_00)

    rest = service.request_merchant_payout("po-2", merchant)  # all that is free
    assert rest.amount == 200_00
    _decide(world)
    assert service.merchant_payout(merchant, "po-2").state == "succeeded"
    assert service.merchant_free_balance(merchant) == 0
    with pytest.raises(PaymentError) as nothing:
        service.request_merchant_payout("po-3", merchant)
    assert nothing.value.code == "payout_exceeds_free_balance"
    # Another merchant's payout, or a customer's withdrawal, is not this merchant's payout.
    with pytest.raises(PaymentError) as foreign:
        service.merchant_payout(world.merchants["teahouse"], "po-1")
    assert foreign.value.code == "payout_not_found"
    # The day's takings still settle in full.
    (settlement,) = service.settle_merchants(paid.business_date).settlements
    assert settlement.gross == 250_00 and settlement.net == 250_00 - settlement.fee
    # What the payable holds now is the earlier months' takings, which no settlement ran for.
    payable = world.ledger.get_account(chart.merchant_account(merchant, "CNY"))
    assert payable.credits_posted - payable.debits_posted == 3 * 600_00
    _books_whole(world, paid.business_date)


def test_a_declined_payout_frees_the_money(ledger: Ledger, clock: ManualClock) -> None:
    behaviour = SimulatorBehaviour(
        script={"po-no": ScriptedScenario("decline"), "po-slow": ScriptedScenario("timeout")}
    )
    world: PaymentsWorld = _world(ledger, clock, behaviour)
    service, merchant = world.service, world.merchants["noodles"]
    _sme_loan(world, _lending(world), "loan-d", 500_00)
    _register_account(world, "noodles")
    declined = service.request_merchant_payout("po-no", merchant, 500_00)
    assert service.merchant_free_balance(merchant) == 0
    _decide(world)
    assert service.merchant_payout(merchant, "po-no").state == "declined"
    assert service.merchant_free_balance(merchant) == 500_00
    # A payout the clearing house never answers is voided when its hold times out.
    service.request_merchant_payout("po-slow", merchant, 200_00)
    assert service.merchant_free_balance(merchant) == 300_00
    clock.advance(service.rail_timeout_s + 1)
    service.process_callbacks()
    assert service.merchant_payout(merchant, "po-slow").state == "timed_out"
    assert service.merchant_free_balance(merchant) == 500_00
    service.request_merchant_payout("po-yes", merchant)
    _decide(world)
    assert service.merchant_payout(merchant, "po-yes").state == "succeeded"
    _books_whole(world, declined.business_date)


def _takings_day(world: PaymentsWorld, amounts: tuple[int, ...]) -> str:
    """Payments to the noodle shop now; returns their business date."""
    dates = set()
    for index, amount in enumerate(amounts):
        answer = world.pay(f"day-{world.clock()}-{index}", "bob", "noodles", amount, auth_factors=2)
        assert answer.status == "completed"
        dates.add(answer.business_date)
    (day,) = dates
    return str(day)


def test_the_sweep_repays_from_the_days_takings_and_settlement_pays_the_rest(
    world: PaymentsWorld,
) -> None:
    service, merchant = world.service, world.merchants["noodles"]
    lending = _lending(world)
    with pytest.raises(LendingRefusal) as bad:
        _sme_loan(world, lending, "loan-x", 600_00, sweep_bps=5_001)
    assert bad.value.code == "sweep_invalid"
    _sme_loan(world, lending, "loan-s", 600_00, sweep_bps=1_000)
    assert lending.loan_sweep_bps("loan-s") == 1_000
    with pytest.raises(LendingRefusal) as other_terms:
        lending.accept("app-loan-s", "loan-s", 2_000)
    assert other_terms.value.code == "request_conflict"
    day = _takings_day(world, (300_00, 200_05))
    world.clock.advance(DAY_S)
    owed_before = lending.quote_payoff("loan-s", local_date(world.clock())).total

    report = lending.sweep_repayments(date.fromisoformat(day))
    assert (report.loans, report.swept, report.refused) == (1, 1, 0)
    (line,) = report.lines
    # 10 % of 500.05, rounded down to the fen.
    assert (line.takings, line.amount, line.status) == (500_05, 50_00, "swept")
    assert lending.quote_payoff("loan-s", local_date(world.clock())).total == owed_before - 50_00
    # The proceeds are still free; the swept share came out of the day's takings.
    assert service.merchant_free_balance(merchant) == 600_00
    again = lending.sweep_repayments(date.fromisoformat(day))
    assert (again.swept, again.amount, again.lines[0].replayed) == (1, 50_00, True)
    assert lending.quote_payoff("loan-s", local_date(world.clock())).total == owed_before - 50_00

    (settlement,) = service.settle_merchants(day).settlements
    fee = (500_05 * 60 + 5_000) // 10_000
    assert (settlement.gross, settlement.fee, settlement.net) == (500_05, fee, 450_05 - fee)
    assert settlement.gross - settlement.refunds - settlement.fee - settlement.net == 50_00
    assert service.settle_merchants(day).settlements == (settlement,)
    payable = world.ledger.get_account(chart.merchant_account(merchant, "CNY"))
    assert payable.credits_posted - payable.debits_posted == 3 * 600_00 + 600_00
    # Once settled, a day has nothing left to sweep.
    late = lending.sweep_repayments(date.fromisoformat(day))
    assert late.lines[0].replayed and late.amount == 50_00
    _books_whole(world, day)


def test_the_sweep_takes_no_more_than_is_owed(world: PaymentsWorld) -> None:
    service = world.service
    lending = _lending(world)
    _sme_loan(world, lending, "loan-m", 300_00, sweep_bps=5_000)
    today = local_date(world.clock())
    owed = lending.quote_payoff("loan-m", today).total
    # Most of the loan is repaid from its own proceeds; 40.00 (and the day's interest) remain.
    lending.repay("loan-m", "rp-most", owed - 40_00)
    day = _takings_day(world, (400_00,))
    remaining = lending.quote_payoff("loan-m", local_date(world.clock())).total
    assert 40_00 <= remaining < 200_00
    report = lending.sweep_repayments(date.fromisoformat(day))
    assert report.amount == remaining
    assert lending.loan("loan-m").status == "repaid"
    (settlement,) = service.settle_merchants(day).settlements
    assert settlement.net == 400_00 - settlement.fee - remaining
    # A repaid loan is no longer swept.
    assert lending.sweep_repayments(date.fromisoformat(day)).loans == 0
    _books_whole(world, day)


def test_a_crashed_sweep_resumes_with_its_release(world: PaymentsWorld) -> None:
    service, merchant = world.service, world.merchants["noodles"]
    lending = _lending(world)
    _sme_loan(world, lending, "loan-c", 300_00, sweep_bps=2_000)
    day = _takings_day(world, (100_00,))
    # A run released 15.00 of the day's takings, then stopped before repaying.
    release = service.release_takings(f"sweep:loan-c:{day}", merchant, day, 15_00)
    assert service.merchant_free_balance(merchant) == 300_00 + 15_00
    report = lending.sweep_repayments(date.fromisoformat(day))
    assert (report.swept, report.amount) == (1, release.amount)
    (settlement,) = service.settle_merchants(day).settlements
    assert settlement.net == 100_00 - settlement.fee - 15_00
    _books_whole(world, day)


def test_a_release_whose_repayment_fails_goes_back_to_settlement(world: PaymentsWorld) -> None:
    service, merchant = world.service, world.merchants["noodles"]
    lending = _lending(world)
    _sme_loan(world, lending, "loan-r", 300_00, sweep_bps=2_000)
    _register_account(world, "noodles")
    day = _takings_day(world, (100_00,))
    release_id = f"sweep:loan-r:{day}"
    release = service.release_takings(release_id, merchant, day, 20_00)
    assert service.release_takings(release_id, merchant, day, 20_00) == release
    with pytest.raises(PaymentError) as conflict:
        service.release_takings(release_id, merchant, day, 19_00)
    assert conflict.value.code == "request_conflict"
    with pytest.raises(PaymentError) as beyond:
        service.release_takings("other-release", merchant, day, 80_00)
    assert beyond.value.code == "release_exceeds_takings"
    # Between the release and the repayment the merchant paid out everything free, the
    # released share with it: the repayment is refused and the share cannot go back.
    service.request_merchant_payout("po-all", merchant)
    _decide(world)
    report = lending.sweep_repayments(date.fromisoformat(day))
    (line,) = report.lines
    assert (line.status, line.code, report.refused) == ("refused", "insufficient_funds", 1)
    assert service.takings_release(release_id) == release
    (settlement,) = service.settle_merchants(day).settlements
    assert settlement.net == 100_00 - settlement.fee - 20_00
    with pytest.raises(PaymentError) as settled:
        service.release_takings("late-release", merchant, day, 1_00)
    assert settled.value.code == "takings_already_settled"
    # Another day: a release whose money is still there goes back to its settlement.
    world.clock.advance(DAY_S)
    next_day = _takings_day(world, (100_00,))
    service.release_takings("manual", merchant, next_day, 20_00)
    assert service.merchant_free_balance(merchant) == 20_00
    assert service.restore_takings("manual").state == "restored"
    assert service.merchant_free_balance(merchant) == 0
    (full,) = service.settle_merchants(next_day).settlements
    assert full.net == 100_00 - full.fee
    _books_whole(world, day)
    _books_whole(world, next_day)


def test_concurrent_payouts_never_overdraw_the_free_balance(world: PaymentsWorld) -> None:
    service, merchant = world.service, world.merchants["noodles"]
    _sme_loan(world, _lending(world), "loan-p", 600_00)
    _register_account(world, "noodles")

    def payout(index: int) -> str:
        try:
            return service.request_merchant_payout(f"po-race-{index}", merchant, 250_00).state
        except PaymentError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = sorted(pool.map(payout, range(4)))
    # The free balance covers two of them; the other two are refused, whatever the interleaving.
    assert answers == ["payout_exceeds_free_balance"] * 2 + ["submitted"] * 2
    assert service.merchant_free_balance(merchant) == 100_00
    _decide(world)
    assert service.merchant_free_balance(merchant) == 100_00
    assert service.safeguarding_check().in_balance


# A rail request as 0006 to 0012 store it, written with sqlite3's placeholders.
_INSERT_RAIL = (
    "INSERT INTO rail_requests (request_id, direction, party_id, bank_id, card_token, amount, "
    "currency, state, hold_transfer_id, timeout_at, business_date, digest, created_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _insert_rail(ledger: Ledger, request_id: str, direction: str) -> None:
    row = (request_id, direction, "p" * 30, "bank-1", "t" * 64, 5, "CNY", "succeeded",
           b"h" * 16, 1, "2027-01-15", b"d" * 32, 1, 2)  # fmt: skip
    with ledger.write() as uow:
        sql = _INSERT_RAIL if uow.store.backend == "sqlite" else _INSERT_RAIL.replace("?", "%s")
        uow.connection.execute(sql, row)


def test_the_migration_keeps_existing_rail_requests(database_url: str) -> None:
    """0015 widens `rail_requests.direction` (SQLite rebuilds the table): rows written before it
    survive, and the new kind is accepted after it, an unknown one still refused."""
    upgrade(database_url, "0012_credit_lines")
    ledger = Ledger(ConnectionPool(database_url, size=2))
    _insert_rail(ledger, "old-1", "withdrawal")
    ledger.pool.close()
    upgrade(database_url)
    ledger = Ledger(ConnectionPool(database_url, size=2))
    try:
        with ledger.read() as store:
            kept = store.connection.execute(
                "SELECT direction, amount, state FROM rail_requests WHERE request_id = 'old-1'"
            ).fetchone()
        assert tuple(kept) == ("withdrawal", 5, "succeeded")
        _insert_rail(ledger, "new-1", "merchant_payout")
        with pytest.raises(Exception, match=r"(?i)check"):
            _insert_rail(ledger, "new-2", "refund")
    finally:
        ledger.pool.close()
