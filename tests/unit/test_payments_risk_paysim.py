"""PaySim rows to payment contexts and features, on a tiny CSV written by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tianping.payments.risk.errors import TrainingDataInvalid
from tianping.payments.risk.features import FEATURE_NAMES
from tianping.payments.risk.paysim import (
    BALANCE_FEATURE_NAMES,
    PAYSIM_RELATIVE_PATH,
    TYPE_FEATURE_NAMES,
    build_dataset,
    read_rows,
)

HEADER = (
    "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,"
    "newbalanceDest,isFraud,isFlaggedFraud"
)
ROWS = [
    "2,TRANSFER,181.0,C1,181.0,0.0,C9,0.0,0.0,1.0,0.0",
    "1,PAYMENT,10.50,C1,1000.0,989.5,M5,0.0,0.0,0.0,0.0",
    "1,CASH_IN,20.25,C2,5.0,25.25,C1,0.0,0.0,0.0,0.0",
    "2,CASH_OUT,181.0,C3,0.0,0.0,C9,50.0,231.0,0.0,0.0",
]


def write_sample(root: Path, rows: list[str]) -> Path:
    path = root / PAYSIM_RELATIVE_PATH
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return root


def test_rows_are_read_with_exact_minor_units(tmp_path: Path) -> None:
    rows = read_rows(write_sample(tmp_path, ROWS))
    assert [row.amount_minor for row in rows] == [18_100, 1_050, 2_025, 18_100]
    assert [row.is_fraud for row in rows] == [True, False, False, False]
    assert rows[1].new_balance_orig == 98_950


def test_too_many_decimals_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataInvalid):
        read_rows(write_sample(tmp_path, ["1,PAYMENT,1.005,C1,0,0,M1,0,0,0,0"]))


def test_the_stream_is_time_ordered_with_stable_devices_and_first_seen_age(
    tmp_path: Path,
) -> None:
    dataset = build_dataset(read_rows(write_sample(tmp_path, ROWS)))
    assert dataset.feature_names == FEATURE_NAMES + TYPE_FEATURE_NAMES + BALANCE_FEATURE_NAMES
    assert all(len(row) == len(dataset.feature_names) for row in dataset.rows)
    assert dataset.steps == [1, 1, 2, 2]
    assert dataset.labels == [0, 0, 1, 0]
    payment, cash_in, fraud, _ = dataset.contexts
    # Two rows in step 1 are spread over its hour, in file order.
    assert cash_in.at - payment.at == 1_800
    assert (payment.payment_kind, cash_in.payment_kind, fraud.payment_kind) == (
        "merchant",
        "top_up",
        "p2p",
    )
    assert fraud.device_id == payment.device_id != cash_in.device_id
    # C1 first appeared as payer of the step-1 payment: its age is measured from there.
    assert fraud.payer_account_opened_at == payment.at
    index = dict(zip(dataset.feature_names, range(len(dataset.feature_names)), strict=True))
    fraud_row = dataset.rows[2]
    assert fraud_row[index["new_device"]] == 0.0
    assert fraud_row[index["payer_history_count"]] == 1.0
    assert fraud_row[index["paysim_type_transfer"]] == 1.0
    assert fraud_row[index["paysim_orig_emptied"]] == 1.0
    assert fraud_row[index["paysim_dest_balances_zero"]] == 1.0
    # The CASH_OUT books correctly at the destination: 5,000 + 18,100 = 23,100, no error.
    assert dataset.rows[3][index["paysim_dest_balance_error_log"]] == 0.0


def test_balance_and_type_features_can_be_left_out(tmp_path: Path) -> None:
    rows = read_rows(write_sample(tmp_path, ROWS))
    without_balance = build_dataset(rows, balances=False)
    online_only = build_dataset(rows, paysim_types=False)
    assert without_balance.feature_names == FEATURE_NAMES + TYPE_FEATURE_NAMES
    assert online_only.feature_names == FEATURE_NAMES
    assert [len(row) for row in online_only.rows] == [len(FEATURE_NAMES)] * 4
    assert [row[: len(FEATURE_NAMES)] for row in without_balance.rows] == online_only.rows
