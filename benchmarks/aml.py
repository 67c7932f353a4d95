"""AML pattern detectors on the IBM AMLSim sample scenarios: account-level quality and runtime.

For each of the three 20,000-account scenarios (20K_cycle200, 20K_fanin200,
20K_fanin200cycle200; MANIFEST.md section 12) the script loads nodes.csv and transactions.csv
through `tianping.payments.aml.amlsim`, builds one `TransferGraph`, runs every detector of the
default `DetectorSuite`, and flags each alert's subjects (`Alert.subject_ids`: the fan,
pass-through account, or every account of a cycle). It reports precision, recall and F1 of the
flagged accounts against `nodes.isFraud`, per detector and for the union of all detectors, with
the time each step took. `union_with_counterparties` also flags every counterparty named in an
alert, as the simulator labels every member of a pattern.

Baseline (same run): flag the N accounts with the most distinct counterparties (in and out),
N being the number the union flagged, so the detectors are compared with the simplest
"busy accounts are suspicious" rule at an equal alert budget. The positive rate is also given
(the precision of flagging at random).

The default parameters were tuned on 20K_fanin200cycle200 only (it holds both typologies);
the other two scenarios were generated from the same base population, so they are not
independent held-out sets, only different pattern mixes.

The large-value report is also timed on the combined scenario (its amounts are small, so it
finds nothing: the timing is the point). Structuring is not run: the simulator has no
reporting threshold for anyone to stay under.

Prints one JSON line on stdout; progress goes to stderr.

    python benchmarks/aml.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tianping.payments.aml.amlsim import (
    SCENARIO_NAMES,
    Confusion,
    confusion,
    flagged_accounts,
    load_scenario,
)
from tianping.payments.aml.large_value import LargeValueThresholds, large_value_reports
from tianping.payments.aml.patterns import (
    CycleSearch,
    DetectorSuite,
    TransferGraph,
    detect_cycles,
    detect_fan_in,
    detect_fan_out,
    detect_rapid_in_out,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def metrics(counts: Confusion) -> dict[str, Any]:
    """Precision, recall and F1 (rounded) with the counts they come from."""
    flagged = counts.true_positives + counts.false_positives
    positives = counts.true_positives + counts.false_negatives
    precision = counts.true_positives / flagged if flagged else 0.0
    recall = counts.true_positives / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "flagged": flagged,
        "tp": counts.true_positives,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def degree_baseline(graph: TransferGraph, count: int) -> set[str]:
    """The `count` accounts with the most distinct counterparties (ties by id, for stability)."""
    neighbours: dict[str, set[str]] = defaultdict(set)
    for transfer in graph.transfers:
        neighbours[transfer.source].add(transfer.target)
        neighbours[transfer.target].add(transfer.source)
    ranked = sorted(neighbours, key=lambda account: (-len(neighbours[account]), account))
    return set(ranked[:count])


def run_scenario(directory: Path, suite: DetectorSuite) -> dict[str, Any]:
    started = time.perf_counter()
    scenario = load_scenario(directory)
    loaded = time.perf_counter()
    graph = TransferGraph.from_transactions(scenario.transactions, "CNY")
    built = time.perf_counter()
    log(f"{scenario.name}: {len(scenario.transactions)} transactions loaded")

    detectors: dict[str, Any] = {}
    union: set[str] = set()
    union_members: set[str] = set()
    detect_seconds = 0.0
    runners: dict[str, Callable[[], Any]] = {}
    if suite.rapid_in_out is not None:
        runners["rapid_in_out"] = lambda: detect_rapid_in_out(graph, suite.rapid_in_out)
    if suite.fan_in is not None:
        runners["fan_in"] = lambda: detect_fan_in(graph, suite.fan_in)
    if suite.fan_out is not None:
        runners["fan_out"] = lambda: detect_fan_out(graph, suite.fan_out)
    if suite.cycle is not None:
        runners["cycle"] = lambda: detect_cycles(graph, suite.cycle)
    for kind, runner in runners.items():
        tick = time.perf_counter()
        result = runner()
        extra: dict[str, Any] = {}
        if isinstance(result, CycleSearch):
            alerts = list(result.alerts)
            extra = {
                "edges_explored": result.edges_explored,
                "starts_truncated": result.starts_truncated,
                "budget_exhausted": result.budget_exhausted,
            }
        else:
            alerts = result
        seconds = time.perf_counter() - tick
        detect_seconds += seconds
        flagged = flagged_accounts(alerts)
        union |= flagged
        union_members |= flagged_accounts(alerts, members=True)
        detectors[kind] = {
            "alerts": len(alerts),
            **metrics(confusion(flagged, scenario.labels)),
            "seconds": round(seconds, 3),
            **extra,
        }
        log(f"  {kind}: {detectors[kind]}")
    baseline = degree_baseline(graph, len(union))
    positives = sum(scenario.labels.values())
    return {
        "transactions": len(scenario.transactions),
        "accounts": len(scenario.labels),
        "positives": positives,
        "positive_rate": round(positives / len(scenario.labels), 4),
        "rounded_values": scenario.rounded_values,
        "skipped_zero_values": scenario.skipped_zero_values,
        "detectors": detectors,
        "union": metrics(confusion(union, scenario.labels)),
        "union_with_counterparties": metrics(confusion(union_members, scenario.labels)),
        "baseline_top_degree": metrics(confusion(baseline, scenario.labels)),
        "load_seconds": round(loaded - started, 3),
        "graph_seconds": round(built - loaded, 3),
        "detect_seconds": round(detect_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPOSITORY_ROOT / ".." / "shared" / "data",
        help="directory holding amlsim_ibm/ (default ../shared/data from the repository root)",
    )
    arguments = parser.parse_args()
    root = arguments.data_dir / "amlsim_ibm"
    suite = DetectorSuite()
    started = time.perf_counter()
    scenarios = {name: run_scenario(root / name, suite) for name in SCENARIO_NAMES}

    combined = load_scenario(root / SCENARIO_NAMES[-1])
    tick = time.perf_counter()
    reports = large_value_reports(combined.transactions, LargeValueThresholds.cn_2017())
    lvtr_seconds = time.perf_counter() - tick

    print(
        json.dumps(
            {
                "benchmark": "aml",
                "tuned_on": "20K_fanin200cycle200",
                "parameters": {
                    "rapid_in_out": repr(suite.rapid_in_out),
                    "fan_in": repr(suite.fan_in),
                    "fan_out": repr(suite.fan_out),
                    "cycle": repr(suite.cycle),
                },
                "scenarios": scenarios,
                "large_value_reports": {
                    "scenario": SCENARIO_NAMES[-1],
                    "transactions": len(combined.transactions),
                    "reports": len(reports),
                    "seconds": round(lvtr_seconds, 3),
                },
                "total_seconds": round(time.perf_counter() - started, 3),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
