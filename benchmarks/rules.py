"""Rules engine latency: one payment through every `payment.authorize` rule, and rulebook loads.

Evaluation. One realistic payment (a Class II account paying a merchant by dynamic QR code from
its balance, two factors without a certificate, an A-rated institution, today's, this year's and
this QR grade's counters, AML fields) is evaluated against every `payment.authorize` rule of the
rulebook, each call timed on its own with `perf_counter_ns`, after a warm-up. The same-run
baseline is the engine's own overhead: the same call on an empty rulebook (no rules, no
parameters), timed in alternating blocks with the real one so both see the same machine noise.
Targets (issue 4): median <= 50 us, p99 <= 200 us.

Loading. Each load runs in a fresh interpreter, so nothing is cached (no imported rules module,
no lru caches): the child imports the engine, then times `load_rulebook(name, (overlay,))` and,
separately, the checked load the CLI and API use (`tianping.rules.checks`, which also re-reads
the YAML for duplicate keys and parses each rule's source). Target: a load with an overlay
< 100 ms, median of --loads fresh loads.

Prints one JSON line on stdout; progress goes to stderr.

    python benchmarks/rules.py                      # cn with its first overlay
    python benchmarks/rules.py --rulebook eu --overlay contactless-100
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from typing import Any

from tianping.rules.rulebook import Rulebook, load_rulebook

ON = date(2026, 3, 2)
BLOCK = 1_000

CN_PAYMENT: dict[str, Any] = {
    "amount": 12_800,  # CNY 128.00, in fen
    "currency": "CNY",
    "account_class": "II",
    "spent_since_opening": 4_125_050,
    "spent_this_year": 3_812_000,
    "spent_today": 120_000,
    "own_name_bank_transfer": False,
    "auth_factors": 2,
    "has_certificate": False,
    "institution_rating": "A",
    "realname_ratio": Decimal("0.97"),
    "channel": "qr",
    "qr_grade": "B",
    "qr_spent_today": 30_000,
    "payer_blocklisted": False,
    "payee_blocklisted": False,
    "bank_account_holder_matches": True,
    "cash": False,
    "cross_border": False,
    "party_type": "person",
    "daily_total_same_direction": 120_000,
    "funding_source": "balance",
    "preselected": False,
    "cdd_completed": True,
    "prepaid_card_sale": False,
}
EU_PAYMENT: dict[str, Any] = {
    "amount": 4_500,  # EUR 45.00, in cents
    "currency": "EUR",
    "auth_factors": 1,
    "failed_attempts": 0,
    "sca_exemption": "tra",
    "channel": "remote",
    "payment_type": "card",
    "fraud_rate": Decimal("0.0005"),
    "tra_low_risk": True,
    "sca_cumulative_since_last": 2_000,
    "sca_consecutive_since_last": 1,
}
PAYMENTS = {"cn": CN_PAYMENT, "eu": EU_PAYMENT}

_LOAD_CHILD = """
import json, sys, time
started = time.perf_counter_ns()
from tianping.rules.rulebook import load_rulebook
from tianping.rules.checks import load_checked_rulebook
imported = time.perf_counter_ns()
name, overlays, checked = sys.argv[1], tuple(sys.argv[2].split(",")) if sys.argv[2] else (), \
    sys.argv[3] == "1"
before = time.perf_counter_ns()
rulebook = (load_checked_rulebook if checked else load_rulebook)(name, overlays)
loaded = time.perf_counter_ns()
digest = rulebook.content_hash
hashed = time.perf_counter_ns()
print(json.dumps({"import_ns": imported - started, "load_ns": loaded - before,
                  "hash_ns": hashed - loaded, "rules": len(rulebook.rules),
                  "label": rulebook.label}))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: list[int], fraction: float) -> int:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary_us(samples: list[int]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples) / 1000, 2),
        "p99": round(percentile(samples, 0.99) / 1000, 2),
        "max": round(max(samples) / 1000, 1),
    }


def time_evaluations(
    rulebook: Rulebook, empty: Rulebook, facts: dict[str, Any], evaluations: int, warmup: int
) -> tuple[list[int], list[int]]:
    """Per-call nanoseconds for the rulebook and the empty baseline, in alternating blocks."""
    clock = time.perf_counter_ns
    for _ in range(warmup):
        rulebook.evaluate("payment.authorize", facts, ON)
        empty.evaluate("payment.authorize", facts, ON)
    real: list[int] = []
    baseline: list[int] = []
    while len(real) < evaluations:
        for target, samples in ((rulebook, real), (empty, baseline)):
            evaluate = target.evaluate
            for _ in range(BLOCK):
                started = clock()
                evaluate("payment.authorize", facts, ON)
                samples.append(clock() - started)
    return real, baseline


def time_loads(
    name: str, overlays: tuple[str, ...], loads: int, checked: bool
) -> list[dict[str, Any]]:
    runs = []
    for _ in range(loads):
        completed = subprocess.run(
            [sys.executable, "-c", _LOAD_CHILD, name, ",".join(overlays), "1" if checked else "0"],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(completed.stdout))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rulebook", default="cn")
    parser.add_argument("--overlay", default=None, help="default: the rulebook's first overlay")
    parser.add_argument("--evaluations", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing")
    arguments = parser.parse_args()

    base = load_rulebook(arguments.rulebook)
    overlay = arguments.overlay
    if overlay is None and base.directory is not None:
        names = sorted(path.stem for path in (base.directory / "overlays").glob("*.yaml"))
        overlay = names[0] if names else None
    overlays = (overlay,) if overlay else ()
    rulebook = load_rulebook(arguments.rulebook, overlays)
    facts = PAYMENTS.get(arguments.rulebook, CN_PAYMENT)
    decision = rulebook.evaluate("payment.authorize", facts, ON)
    log(
        f"{rulebook.label}: {len(decision.evaluated)} payment.authorize rules, outcome "
        f"{decision.outcome.name}, findings {list(decision.rule_ids)}"
    )
    empty = Rulebook("empty", {}, (), "")

    if arguments.no_gc:
        gc.disable()
    log(f"timing {arguments.evaluations} evaluations (and as many of the empty rulebook)")
    real, baseline = time_evaluations(
        rulebook, empty, facts, arguments.evaluations, arguments.warmup
    )
    gc.enable()

    log(f"timing {arguments.loads} fresh loads of {rulebook.label}, plain and checked")
    plain = time_loads(arguments.rulebook, overlays, arguments.loads, checked=False)
    checked = time_loads(arguments.rulebook, overlays, arguments.loads, checked=True)
    load_ms = [run["load_ns"] / 1e6 for run in plain]
    checked_ms = [run["load_ns"] / 1e6 for run in checked]

    evaluate = summary_us(real)
    overhead = summary_us(baseline)
    result = {
        "benchmark": "rules",
        "rulebook": rulebook.label,
        "point": "payment.authorize",
        "rules_evaluated": len(decision.evaluated),
        "outcome": decision.outcome.name,
        "evaluations": len(real),
        "gc": "off" if arguments.no_gc else "on",
        "evaluate_us": evaluate,
        "empty_rulebook_us": overhead,
        "rules_share_of_median_us": round(evaluate["median"] - overhead["median"], 2),
        "load_with_overlay_ms": {
            "median": round(statistics.median(load_ms), 1),
            "runs": [round(value, 1) for value in load_ms],
        },
        "checked_load_with_overlay_ms": {
            "median": round(statistics.median(checked_ms), 1),
            "runs": [round(value, 1) for value in checked_ms],
        },
        "engine_import_ms": round(statistics.median(run["import_ns"] for run in plain) / 1e6, 1),
        "content_hash_ms": round(statistics.median(run["hash_ns"] for run in plain) / 1e6, 2),
        "targets": {"evaluate_median_us": 50, "evaluate_p99_us": 200, "load_ms": 100},
        "met": {
            "evaluate_median": evaluate["median"] <= 50,
            "evaluate_p99": evaluate["p99"] <= 200,
            "load": statistics.median(load_ms) < 100,
        },
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
