"""Cross-validation of the credit-scoring configuration on the training part only.

The protocol for choosing anything in the scoring pipeline (features, binning, regression,
challenger settings): split each dataset with the benchmark's fixed stratified 70/30 split
(`datasets.split`, `SPLIT_SEED`), discard the 30% test part unread, and run repeated stratified
k-fold cross-validation (5 folds x 5 repeats by default) on the 70% training part. Each fold
trains exactly what `benchmarks/lending_scoring.py` trains (`train(...)`, scorecard bundle and
challenger) and scores the held-out fold through the decision-time code path. The test figures
of `lending_scoring.py` are run once, after the choice is frozen.

`--schema FILE` replaces the shipped schema of a single dataset, so that an older or a
candidate configuration can be compared on the same folds (for example the previous German
schema, `git show <commit>:src/tianping/lending/scoring/schemas/german_credit.yaml`).

Prints one JSON line per dataset on stdout (mean, sample standard deviation and the per-fold
AUCs of scorecard and challenger); progress goes to stderr.

    python benchmarks/lending_scoring_cv.py [--data-dir DIR] [--datasets NAME ...]
        [--schema FILE] [--folds 5] [--repeats 5] [--cv-seed 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold  # type: ignore[import-untyped]

from tianping.lending.scoring.datasets import DATASETS, load_dataset, split
from tianping.lending.scoring.metrics import evaluate
from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.training import prepare_frame, score_frame, target_vector, train

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
# The same training seed as the test benchmark, so a fold trains what the benchmark trains.
TRAINING_SEED = 7


def summary(values: list[float]) -> dict[str, object]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4),
        "folds": [round(value, 4) for value in values],
    }


def cross_validate(
    name: str, data_dir: Path, schema_file: Path | None, folds: int, repeats: int, cv_seed: int
) -> dict[str, object]:
    schema, frame = load_dataset(name, data_dir)
    if schema_file is not None:
        schema = DatasetSchema.load(schema_file.resolve())
    training_part, _ = split(schema, frame)  # the test part is dropped here, never read
    target = target_vector(schema, training_part)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=cv_seed)
    scorecard_auc: list[float] = []
    challenger_auc: list[float] = []
    started = time.perf_counter()
    for number, (fit_rows, held_rows) in enumerate(
        splitter.split(np.zeros(len(target)), target), start=1
    ):
        fit = training_part.iloc[fit_rows].reset_index(drop=True)
        held = training_part.iloc[held_rows].reset_index(drop=True)
        models = train(schema, fit, seed=TRAINING_SEED)
        held_frame = prepare_frame(schema, held)
        _, pds = score_frame(models.scorecard, held_frame)
        scorecard_auc.append(evaluate(target[held_rows], pds).auc)
        assert models.challenger is not None
        challenger_pds = models.challenger.predict_pd(held_frame)
        challenger_auc.append(evaluate(target[held_rows], challenger_pds).auc)
        print(f"{name}: fold {number}/{folds * repeats}", file=sys.stderr, flush=True)
    gaps = [c - s for s, c in zip(scorecard_auc, challenger_auc, strict=True)]
    return {
        "dataset": name,
        "schema_hash": schema.content_hash()[:16],
        "rows_training_part": len(training_part),
        "cv": {"folds": folds, "repeats": repeats, "seed": cv_seed},
        "scorecard_auc": summary(scorecard_auc),
        "challenger_auc": summary(challenger_auc),
        "gap_challenger_minus_scorecard": round(statistics.fmean(gaps), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--schema", type=Path, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cv-seed", type=int, default=1)
    args = parser.parse_args()
    if args.schema is not None and len(args.datasets) != 1:
        parser.error("--schema replaces the schema of exactly one dataset")
    for name in args.datasets:
        result = cross_validate(
            name, args.data_dir, args.schema, args.folds, args.repeats, args.cv_seed
        )
        print(json.dumps(result, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
