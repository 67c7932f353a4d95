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
`--compare-with FILE` also trains the scorecard of a second schema on every fold and reports
the paired change of scorecard AUC (this schema minus the other, fold by fold): its mean, its
standard error (sample sd of the fold changes / sqrt(folds)) and how many folds went up.
`--no-challenger` skips the challenger, which never sees a schema's pairs, when only the
scorecard is being compared.

Prints one JSON line per dataset on stdout (mean, sample standard deviation and the per-fold
AUCs of scorecard and challenger); progress goes to stderr.

    python benchmarks/lending_scoring_cv.py [--data-dir DIR] [--datasets NAME ...]
        [--schema FILE] [--compare-with FILE] [--no-challenger] [--folds 5] [--repeats 5]
        [--cv-seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
from sklearn.model_selection import RepeatedStratifiedKFold  # type: ignore[import-untyped]

from tianping.lending.scoring.datasets import DATASETS, load_dataset, split
from tianping.lending.scoring.metrics import evaluate
from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.training import prepare_frame, score_frame, target_vector, train

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
# The same training seed as the test benchmark, so a fold trains what the benchmark trains.
TRAINING_SEED = 7
IntArray = npt.NDArray[np.int64]


def summary(values: list[float]) -> dict[str, object]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4),
        "folds": [round(value, 4) for value in values],
    }


def paired(changes: list[float]) -> dict[str, object]:
    # One more decimal than the AUCs: a change of a few ten-thousandths is judged against a
    # standard error of the same size.
    return {
        "mean": round(statistics.fmean(changes), 5),
        "se": round(statistics.stdev(changes) / math.sqrt(len(changes)), 5),
        "folds_up": sum(1 for change in changes if change > 0),
        "folds": len(changes),
    }


def scorecard_auc_on(
    schema: DatasetSchema, fit: pd.DataFrame, held: pd.DataFrame, held_target: IntArray
) -> float:
    models = train(schema, fit, seed=TRAINING_SEED, with_challenger=False)
    _, pds = score_frame(models.scorecard, prepare_frame(schema, held))
    return float(evaluate(held_target, pds).auc)


def cross_validate(
    name: str,
    data_dir: Path,
    schema_file: Path | None,
    folds: int,
    repeats: int,
    cv_seed: int,
    *,
    compare_file: Path | None = None,
    with_challenger: bool = True,
) -> dict[str, object]:
    schema, frame = load_dataset(name, data_dir)
    if schema_file is not None:
        schema = DatasetSchema.load(schema_file.resolve())
    other = DatasetSchema.load(compare_file.resolve()) if compare_file is not None else None
    training_part, _ = split(schema, frame)  # the test part is dropped here, never read
    target = target_vector(schema, training_part)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=cv_seed)
    scorecard_auc: list[float] = []
    challenger_auc: list[float] = []
    other_auc: list[float] = []
    started = time.perf_counter()
    for number, (fit_rows, held_rows) in enumerate(
        splitter.split(np.zeros(len(target)), target), start=1
    ):
        fit = training_part.iloc[fit_rows].reset_index(drop=True)
        held = training_part.iloc[held_rows].reset_index(drop=True)
        models = train(schema, fit, seed=TRAINING_SEED, with_challenger=with_challenger)
        held_frame = prepare_frame(schema, held)
        _, pds = score_frame(models.scorecard, held_frame)
        scorecard_auc.append(evaluate(target[held_rows], pds).auc)
        if models.challenger is not None:
            challenger_pds = models.challenger.predict_pd(held_frame)
            challenger_auc.append(evaluate(target[held_rows], challenger_pds).auc)
        if other is not None:
            other_auc.append(scorecard_auc_on(other, fit, held, target[held_rows]))
        print(f"{name}: fold {number}/{folds * repeats}", file=sys.stderr, flush=True)
    result: dict[str, object] = {
        "dataset": name,
        "schema_hash": schema.content_hash()[:16],
        "rows_training_part": len(training_part),
        "cv": {"folds": folds, "repeats": repeats, "seed": cv_seed},
        "scorecard_auc": summary(scorecard_auc),
    }
    if challenger_auc:
        gaps = [c - s for s, c in zip(scorecard_auc, challenger_auc, strict=True)]
        result["challenger_auc"] = summary(challenger_auc)
        result["gap_challenger_minus_scorecard"] = round(statistics.fmean(gaps), 4)
    if other is not None:
        result["compared_with"] = {
            "schema_hash": other.content_hash()[:16],
            "scorecard_auc": summary(other_auc),
            "scorecard_auc_change": paired(
                [s - o for s, o in zip(scorecard_auc, other_auc, strict=True)]
            ),
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--schema", type=Path, default=None)
    parser.add_argument("--compare-with", type=Path, default=None)
    parser.add_argument("--no-challenger", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cv-seed", type=int, default=1)
    args = parser.parse_args()
    if (args.schema is not None or args.compare_with is not None) and len(args.datasets) != 1:
        parser.error("--schema and --compare-with apply to exactly one dataset")
    for name in args.datasets:
        result = cross_validate(
            name,
            args.data_dir,
            args.schema,
            args.folds,
            args.repeats,
            args.cv_seed,
            compare_file=args.compare_with,
            with_challenger=not args.no_challenger,
        )
        print(json.dumps(result, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
