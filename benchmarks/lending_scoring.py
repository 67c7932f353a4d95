"""Credit scoring on four public datasets: points scorecard against a LightGBM challenger.

For each of German credit, Taiwan credit-card default, the Home Credit sample and the
LendingClub subset (read from `--data-dir`, default `../shared/data` relative to the repo):

* split: stratified 70/30 on the default flag with a fixed seed (`datasets.SPLIT_SEED`); none
  of the four has a usable time column. All parameters are fixed in the code; nothing is tuned
  on the test part;
* train the scorecard bundle (primary + consent fallbacks) and the challenger on the 70%;
* report test AUC, KS, Gini and Brier for both, the AUC gap (challenger - scorecard), the
  scorecard's decile calibration, test AUC of each fallback card, PSI of the scorecard score
  from training to test, and fairness by protected group at a cut-off approving 70% of the
  training applicants (approval-rate ratio, equal-opportunity difference, alert at ratio < 0.8
  or difference > 0.1), and the training seconds.

Taiwan also gets the scorecard-only training time (`train(..., with_challenger=False)`, whole
call: preparation, binning, regression, fallbacks, training metrics) and the single-applicant
decision latency of the scorecard bundle: `ScorecardBundle.score(row, sources)` on raw CSV
rows (dicts of the applicant's values, all sources consented, reasons included), each call
timed with `perf_counter_ns`, 5,000 test applicants after 500 warm-up calls; p50 and p99.

Prints one JSON line on stdout; progress goes to stderr.

    python benchmarks/lending_scoring.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tianping.lending.scoring.datasets import DATASETS, SPLIT_SEED, TEST_SHARE, load_dataset, split
from tianping.lending.scoring.fairness import fairness_report
from tianping.lending.scoring.metrics import evaluate, psi
from tianping.lending.scoring.scorecard import ScorecardBundle
from tianping.lending.scoring.training import (
    prepare_frame,
    score_frame,
    target_vector,
    train,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
TRAINING_SEED = 7
APPROVAL_SHARE = 0.7
LATENCY_APPLICANTS = 5_000
LATENCY_WARMUP = 500


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def evaluate_dataset(name: str, data_dir: Path) -> tuple[dict[str, Any], Any]:
    schema, frame = load_dataset(name, data_dir)
    train_rows, test_rows = split(schema, frame)
    log(f"{name}: {len(train_rows)} train / {len(test_rows)} test rows, training ...")
    started = time.perf_counter()
    models = train(schema, train_rows, seed=TRAINING_SEED)
    seconds = time.perf_counter() - started
    x_train, x_test = prepare_frame(schema, train_rows), prepare_frame(schema, test_rows)
    y_test = target_vector(schema, test_rows)
    train_scores, _ = score_frame(models.scorecard, x_train)
    test_scores, test_pd = score_frame(models.scorecard, x_test)
    scorecard = evaluate(y_test, test_pd)
    assert models.challenger is not None
    challenger = evaluate(y_test, models.challenger.predict_pd(x_test))
    fallbacks = {}
    for card in models.fallbacks:
        _, pds = score_frame(card, x_test)
        fallbacks[card.name] = {
            "auc": round(evaluate(y_test, pds).auc, 4),
            "features": len(card.features),
        }
    cutoff = float(np.quantile(train_scores, 1.0 - APPROVAL_SHARE))
    fairness = []
    for attribute in schema.protected:
        report = fairness_report(
            attribute=attribute.name,
            model_version=models.scorecard.version,
            groups=[attribute.group_of(value) for value in test_rows[attribute.column]],
            scores=[float(score) for score in test_scores],
            defaulted=[bool(flag) for flag in y_test],
            cutoff=cutoff,
        )
        fairness.append(report.summary())
    result = {
        "rows_train": len(train_rows),
        "rows_test": len(test_rows),
        "test_default_rate": round(float(y_test.mean()), 4),
        "scorecard": scorecard.summary() | {"features": len(models.scorecard.features)},
        "challenger": challenger.summary() | {"features": len(models.challenger.feature_names)},
        "auc_gap_challenger_minus_scorecard": round(challenger.auc - scorecard.auc, 4),
        "scorecard_calibration": [
            [round(row.mean_predicted, 4), round(row.observed_rate, 4)]
            for row in scorecard.calibration
        ],
        "fallbacks": fallbacks,
        "psi_score_train_to_test": round(psi(train_scores, test_scores), 4),
        "approval_cutoff_score": cutoff,
        "fairness": fairness,
        "dropped_features": models.dropped,
        "scorecard_version": models.scorecard.version[:16],
        "bundle_version": models.scorecards.version[:16],
        "challenger_version": models.challenger.version[:16],
        "challenger_rounds": models.challenger.metadata["rounds"],
        "train_seconds_total": round(seconds, 2),
        "train_seconds_scorecards": round(models.seconds["scorecard"], 2),
        "train_seconds_challenger": round(models.seconds["challenger"], 2),
    }
    log(
        f"{name}: scorecard AUC {scorecard.auc:.4f}, challenger AUC {challenger.auc:.4f}, "
        f"{seconds:.1f} s"
    )
    return result, (schema, train_rows, test_rows, models.scorecards)


def latency(
    bundle: ScorecardBundle, rows: list[dict[str, object]], sources: set[str]
) -> dict[str, float]:
    for row in rows[:LATENCY_WARMUP]:
        bundle.score(row, sources)
    samples = []
    for row in rows[:LATENCY_APPLICANTS]:
        started = time.perf_counter_ns()
        bundle.score(row, sources)
        samples.append((time.perf_counter_ns() - started) / 1000.0)
    return {
        "p50_us": round(statistics.median(samples), 1),
        "p99_us": round(percentile(samples, 0.99), 1),
        "max_us": round(max(samples), 1),
        "n": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    taiwan = None
    for name in DATASETS:
        results[name], context = evaluate_dataset(name, args.data_dir)
        if name == "taiwan_default_credit_card":
            taiwan = context
    assert taiwan is not None
    schema, train_rows, test_rows, bundle = taiwan
    log("taiwan: scorecard-only training time ...")
    started = time.perf_counter()
    scorecard_only = train(schema, train_rows, seed=TRAINING_SEED, with_challenger=False)
    scorecard_seconds = time.perf_counter() - started
    assert scorecard_only.scorecard.version == bundle.primary.version
    log("taiwan: single-applicant latency ...")
    raw_rows = test_rows.to_dict("records")
    all_sources = set(schema.sources)
    fallback_sources = set(schema.fallback_sources[0])
    output = {
        "benchmark": "lending_scoring",
        "python": platform.python_version(),
        "split": {"kind": "stratified", "test_share": TEST_SHARE, "seed": SPLIT_SEED},
        "training_seed": TRAINING_SEED,
        "datasets": results,
        "taiwan_scorecard_training_seconds": round(scorecard_seconds, 2),
        "taiwan_scorecard_training_target_seconds": 60,
        "scoring_latency_scorecard": latency(bundle, raw_rows, all_sources),
        "scoring_latency_fallback": latency(bundle, raw_rows, fallback_sources),
        "targets": {
            "taiwan_auc_min": 0.78,
            "german_auc_min": 0.78,
            "max_auc_gap": 0.02,
        },
    }
    print(json.dumps(output, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
