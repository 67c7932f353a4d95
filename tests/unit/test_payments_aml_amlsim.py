"""The AMLSim reader on tiny hand-written files: header checks, unit mapping and scoring."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tianping.payments.aml.amlsim import (
    EPOCH_AT,
    Confusion,
    confusion,
    flagged_accounts,
    is_held_out,
    load_scenario,
    split_labels,
)
from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.patterns import Alert

NODES = "nodeid,isFraud,init_balance,fraudStep\n0,0,184.44,-1\n1,1,175.80,12\n2,1,10.00,3\n"
TRANSACTIONS = "sourceNodeId,targetNodeId,value,time\n0,1,147.8,1\n1,2,3.005,2\n2,0,0.00,3\n"


def scenario_directory(
    tmp_path: Path, nodes: str = NODES, transactions: str = TRANSACTIONS
) -> Path:
    directory = tmp_path / "20K_tiny"
    directory.mkdir()
    (directory / "nodes.csv").write_text(nodes, encoding="utf-8")
    (directory / "transactions.csv").write_text(transactions, encoding="utf-8")
    return directory


def test_load_maps_rows_to_cny_person_transfers(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_directory(tmp_path))
    assert scenario.name == "20K_tiny"
    assert scenario.labels == {"a0": False, "a1": True, "a2": True}
    first, second = scenario.transactions
    assert (first.customer_id, first.counterparty_id, first.direction) == ("a0", "a1", "out")
    assert (first.amount_minor, first.currency, first.channel) == (14_780, "CNY", "transfer")
    assert first.customer_kind == "person"
    assert first.at == EPOCH_AT
    assert first.business_date == date(2024, 1, 1)
    assert second.business_date == date(2024, 1, 2)
    # 3.005 rounds half-even to 3.00; the zero-value row is skipped, and both are counted.
    assert second.amount_minor == 300
    assert (scenario.rounded_values, scenario.skipped_zero_values) == (1, 1)


def test_a_file_in_another_schema_is_refused(tmp_path: Path) -> None:
    newer = "account_id,is_sar\n0,0\n"
    with pytest.raises(AmlError) as raised:
        load_scenario(scenario_directory(tmp_path, nodes=newer))
    assert raised.value.code == "invalid_dataset"


def test_a_malformed_row_is_refused(tmp_path: Path) -> None:
    broken = "sourceNodeId,targetNodeId,value,time\n0,1,abc,1\n"
    with pytest.raises(AmlError) as raised:
        load_scenario(scenario_directory(tmp_path, transactions=broken))
    assert raised.value.code == "invalid_dataset"


def test_flagged_accounts_takes_subjects_or_every_member() -> None:
    alerts = [
        Alert("fan_in", ("hub", "p", "q"), ("t1",), 500, "r"),
        Alert("cycle", ("a", "b"), ("t2", "t3"), 900, "r"),
    ]
    assert flagged_accounts(alerts) == {"hub", "a", "b"}
    assert flagged_accounts(alerts, members=True) == {"hub", "p", "q", "a", "b"}


def test_confusion_counts() -> None:
    labels = {"a": True, "b": True, "c": False, "d": False}
    assert confusion({"a", "c"}, labels) == Confusion(1, 1, 1, 1)
    assert confusion(set(), labels) == Confusion(0, 0, 2, 2)


def test_the_split_is_stable_and_about_half() -> None:
    accounts = [f"a{index}" for index in range(2_000)]
    held_out = [account for account in accounts if is_held_out(account)]
    assert 900 <= len(held_out) <= 1_100
    assert held_out == [account for account in accounts if is_held_out(account)]  # stable


def test_split_labels_partitions_the_labels() -> None:
    labels = {f"a{index}": index % 7 == 0 for index in range(500)}
    fit = split_labels(labels, held_out=False)
    held = split_labels(labels, held_out=True)
    assert fit.keys() & held.keys() == set()
    assert {**fit, **held} == labels
    assert all(is_held_out(account) for account in held)
    assert not any(is_held_out(account) for account in fit)
