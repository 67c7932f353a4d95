"""Lending: the daily interest accrual over a large loan book, and one application decision.

Set-up (not timed): a fresh SQLite database (`synchronous=FULL`) with `--loans` active loans
inserted in bulk into the loan sub-ledger (principal 1,000.00 to 50,000.00 CNY, rates 7.2% to
24%, a third co-lent 70/30 with one of five partner banks), as origination would leave them;
originating a million loans one by one is not what is measured here.

Timed, `--runs` times on consecutive days: `LendingService.accrue(day)`, i.e. the aggregate per
currency and funding split, one UPDATE of every active loan (exact integer interest with the
sub-fen remainder carried), one ledger transfer per currency and funder, the run's record, one
durable commit. Same-run baseline: the cheapest statement that touches every loan row
(`UPDATE loans SET updated_at = updated_at + 1 WHERE status = 'active'`) in its own commit.

Decisions (`--decisions N`, default 1,000): on a second fresh SQLite database, 200 applicants
onboarded through identity with wallets and a live credit-assessment consent in the vault, a
simulated bureau holding a report for each, then N applications decided one at a time by
`LendingService.apply`: the consent check, the person's payment profile, a bureau query under a
signed consent token, the platform scorecard with its reasons, `loan.originate` and `loan.price`
(the schedule and its APR solved as an IRR), two stored rule decisions with their chain records
and the application row, in one durable commit each. Same-run baseline: the scorecard alone
(`ScorecardBundle.score`) on the same features.

Targets (issue 6): the daily accrual for 1,000,000 loans within 60 seconds on SQLite; one
application decision at most 20 ms at p99 in-process. Prints one JSON line on stdout; progress
goes to stderr.

    python benchmarks/lending.py --loans 1000000 --runs 3 --decisions 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger.audit import verify_chain
from tianping.ledger.service import Ledger
from tianping.lending.chart import PLATFORM
from tianping.lending.service import LendingService
from tianping.lending.store import LendingStore, new_loan

TARGET_S = 60.0
DECISION_P99_TARGET_MS = 20.0
START = date(2026, 1, 1)
CHUNK = 50_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(ledger: Ledger, count: int, rng: random.Random) -> None:
    banks = [f"bank-{index}" for index in range(5)]
    for start in range(0, count, CHUNK):
        loans = []
        for index in range(start, min(count, start + CHUNK)):
            principal = rng.randint(1_000_00, 50_000_00)
            colent = index % 3 == 0
            loans.append(
                new_loan(
                    loan_id=f"L{index:09d}",
                    application_id=f"A{index:09d}",
                    party_id=f"pty_{index:026d}",
                    currency="CNY",
                    partner_bank_id=banks[index % 5] if colent else PLATFORM,
                    bank_share_bps=7_000 if colent else 0,
                    rate_bps=rng.randint(720, 2_400),
                    principal=principal,
                    disbursed_on=START.isoformat(),
                    at=1,
                )
            )
        with LendingStore.writing(ledger) as (_, store):
            store.insert_loans(loans)
        log(f"  {min(count, start + CHUNK)} loans")


def decision_latency(scratch: Path, count: int) -> dict[str, float]:
    """p50 and p99 (ms) of `LendingService.apply`, and of the scorecard alone."""

    import secrets as crypto

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import payments as in_process

    from tianping.identity.privacy_service import PrivacyService
    from tianping.identity.vault import MasterKey, Vault
    from tianping.lending.bureau import BureauReport, ConsentTokenIssuer
    from tianping.lending.bureau_sim import SimulatedBureau
    from tianping.lending.model import Application
    from tianping.lending.service import BureauAccess
    from tianping.lending.synthetic import platform_scorecard
    from tianping.rules.config import cached_rulebook
    from tianping.rules.service import RulesService

    clock = in_process.BenchClock()
    clock.offset = -30 * in_process.DAY_NS
    ledger, payments, people = in_process.setup(
        f"sqlite:///{scratch / 'decisions.db'}", 200, clock, age_days=0
    )
    clock.offset = 0
    privacy = PrivacyService(ledger, Vault(MasterKey.generate()))
    privacy.publish_consent_text(
        "credit",
        1,
        ["credit_assessment"],
        ["income", "name", "id_number"],
        "en",
        "I separately agree that Tianping assesses my credit with my payments and bureau file.",
    )
    key = crypto.token_bytes(32)
    bureau = SimulatedBureau(lambda: time.time_ns() // 10**9, key)
    rng = random.Random(11)
    for index, person in enumerate(people):
        privacy.grant_consent(person, "credit", 1, f"grant-{index}")
        bureau.report(
            BureauReport(
                report_id=f"rep-{index}",
                reporter_id="bank-1",
                subject=person,
                reported_at=time.time_ns() // 10**9 - 60,
                data={"delinquencies_24m": rng.randint(0, 3), "inquiries_6m": rng.randint(0, 8)},
                consent_reference=f"grant-{index}",
            )
        )
    scorer = platform_scorecard()
    service = LendingService(
        ledger,
        rules=RulesService(ledger, cached_rulebook("cn")),
        scorer=scorer,
        consent=privacy,
        profile=payments.payer_profile,
        bureau=BureauAccess(
            bureau, ConsentTokenIssuer(key), "tianping-lender", lambda: time.time_ns() // 10**9
        ),
    )
    applications = [
        Application(
            application_id=f"bench-app-{index}",
            party_id=people[index % len(people)],
            amount=rng.choice((2_000_00, 5_000_00, 10_000_00)),
            term_months=rng.choice((3, 6, 12)),
            annual_income=rng.randint(40_000_00, 300_000_00),
        )
        for index in range(count)
    ]
    service.apply(applications[0])  # warm-up: imports, caches
    timings = []
    for application in applications[1:]:
        started = time.perf_counter()
        service.apply(application)
        timings.append((time.perf_counter() - started) * 1000)
    features = {
        "annual_income": 100_000_00,
        "requested_amount": 5_000_00,
        "payments_90d_count": 10,
        "wallet_age_days": 30,
        "bureau_delinquencies": 1,
        "bureau_inquiries_6m": 2,
    }
    sources = {"application", "platform_payments", "bureau"}
    alone = []
    for _ in range(count):
        started = time.perf_counter()
        scorer.score(features, sources)
        alone.append((time.perf_counter() - started) * 1000)
    quantiles = statistics.quantiles(timings, n=100)
    baseline = statistics.quantiles(alone, n=100)

    return {
        "decisions": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(quantiles[98], 2),
        "scorecard_alone_p50_ms": round(statistics.median(alone), 3),
        "scorecard_alone_p99_ms": round(baseline[98], 3),
    }


def touch_every_row(ledger: Ledger) -> float:
    started = time.perf_counter()
    with ledger.write() as uow:
        uow.connection.execute(
            "UPDATE loans SET updated_at = updated_at + 1 WHERE status = 'active'"
        )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--decisions", type=int, default=1_000)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tianping-lending-bench-"))
    url = f"sqlite:///{scratch / 'bench.db'}"
    try:
        upgrade(url)
        ledger = Ledger(ConnectionPool(url, size=2))
        log(f"seeding {args.loans} loans")
        seed(ledger, args.loans, random.Random(args.seed))
        service = LendingService(ledger)
        rounds = []
        for run in range(args.runs):
            day = START + timedelta(days=run + 1)
            floor_s = touch_every_row(ledger)
            started = time.perf_counter()
            report = service.accrue(day)
            accrual_s = time.perf_counter() - started
            rounds.append(
                {
                    "day": day.isoformat(),
                    "accrual_s": round(accrual_s, 2),
                    "touch_every_row_s": round(floor_s, 2),
                    "loans": report.loans,
                    "interest_minor": report.interest,
                }
            )
            log(f"  {rounds[-1]}")
        findings = ledger.check()
        with ledger.read(snapshot=True) as store:
            chain = verify_chain(store)
        decisions = decision_latency(scratch, args.decisions) if args.decisions > 0 else {}
        if decisions:
            log(f"  decisions {decisions}")
        median = statistics.median(r["accrual_s"] for r in rounds)
        floor = statistics.median(r["touch_every_row_s"] for r in rounds)
        print(
            json.dumps(
                {
                    "benchmark": "lending",
                    "backend": "sqlite",
                    "loans": args.loans,
                    "runs": args.runs,
                    "accrual_s_median": median,
                    "touch_every_row_s_median": floor,
                    "ratio_to_floor": round(median / floor, 2) if floor else None,
                    "rounds": rounds,
                    "target_s": TARGET_S,
                    "decision_latency": decisions,
                    "met": {
                        "accrual": median <= TARGET_S,
                        "decision_p99": bool(decisions)
                        and decisions["p99_ms"] <= DECISION_P99_TARGET_MS,
                    },
                    "ledger_check_findings": len(findings),
                    "audit_chain_ok": chain.ok,
                    "python": platform.python_version(),
                }
            )
        )
        return 0 if not findings and chain.ok else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
