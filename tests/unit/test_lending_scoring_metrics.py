"""Metrics against hand-computed values, fairness ratios on a tiny table, reason library."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tianping.lending.scoring.errors import ReasonLibraryInvalid
from tianping.lending.scoring.fairness import fairness_report
from tianping.lending.scoring.metrics import auc as area_under_curve
from tianping.lending.scoring.metrics import (
    brier,
    calibration_table,
    evaluate,
    gini,
    ks_statistic,
    psi,
)
from tianping.lending.scoring.reasons import ReasonLibrary, load_default_library


def test_auc_matches_sklearn_and_gini_is_twice_auc_minus_one() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = labels * 0.3 + rng.random(200)
    assert area_under_curve(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert gini(labels, scores) == pytest.approx(2 * roc_auc_score(labels, scores) - 1)


def test_ks_by_hand() -> None:
    # Bads score 0.9, 0.8, 0.3; goods 0.7, 0.2, 0.1. At threshold 0.8 the cumulative shares
    # are bads 2/3, goods 0: KS = 2/3, the largest gap at any threshold.
    labels = [1, 1, 1, 0, 0, 0]
    scores = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1]
    assert ks_statistic(labels, scores) == pytest.approx(2 / 3)
    assert ks_statistic([1, 0], [0.9, 0.1]) == pytest.approx(1.0)


def test_brier_by_hand() -> None:
    assert brier([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)


def test_psi_known_example() -> None:
    # Expected split into two halves at the median 0.5; actual puts 80% below it.
    expected = [0.0, 0.25, 0.75, 1.0]
    actual = [0.1] * 8 + [0.9] * 2
    by_hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(expected, actual, bins=2) == pytest.approx(by_hand)
    assert psi(expected, expected, bins=2) == pytest.approx(0.0)


def test_calibration_table_by_decile() -> None:
    probabilities = np.linspace(0.05, 0.95, 100)
    labels = (np.arange(100) % 10 == 0).astype(int)
    table = calibration_table(labels, probabilities)
    assert [row.count for row in table] == [10] * 10
    assert table[0].mean_predicted == pytest.approx(probabilities[:10].mean())
    assert all(row.observed_rate == pytest.approx(0.1) for row in table)
    assert len(evaluate(labels, probabilities).calibration) == 10


def test_fairness_ratios_on_a_tiny_table() -> None:
    groups = ["a"] * 4 + ["b"] * 4
    scores = [700, 650, 620, 500, 700, 560, 540, 500]
    defaulted = [False, False, True, False, False, False, True, True]
    report = fairness_report(
        attribute="sex",
        model_version="v1",
        groups=groups,
        scores=scores,
        defaulted=defaulted,
        cutoff=600,
        min_group_size=1,
    )
    rates = {rate.group: rate for rate in report.groups}
    assert rates["a"].approval_rate == pytest.approx(3 / 4)
    assert rates["b"].approval_rate == pytest.approx(1 / 4)
    # Repayers approved: a 2 of 3, b 1 of 2.
    assert rates["a"].true_positive_rate == pytest.approx(2 / 3)
    assert rates["b"].true_positive_rate == pytest.approx(1 / 2)
    assert report.approval_rate_ratio == pytest.approx(1 / 3)
    assert report.equal_opportunity_difference == pytest.approx(2 / 3 - 1 / 2)
    assert report.alert
    relaxed = fairness_report(
        attribute="sex",
        model_version="v1",
        groups=groups,
        scores=scores,
        defaulted=defaulted,
        cutoff=400,
        min_group_size=1,
    )
    assert relaxed.approval_rate_ratio == pytest.approx(1.0)
    assert not relaxed.alert


def test_small_groups_do_not_raise_alerts() -> None:
    report = fairness_report(
        attribute="age",
        model_version="v1",
        groups=["x", "y"],
        scores=[700, 500],
        defaulted=[False, False],
        cutoff=600,
    )
    assert report.approval_rate_ratio is None
    assert not report.alert


def test_reason_library_is_versioned_and_bilingual() -> None:
    library = load_default_library()
    assert library.version
    statement = library.get("R-UTIL-HIGH")
    assert statement.text_en and statement.text_zh
    with pytest.raises(ReasonLibraryInvalid):
        library.check_mapping(["R-NOT-THERE"])
    with pytest.raises(ReasonLibraryInvalid):
        ReasonLibrary.from_mapping(
            {"version": "1", "reasons": [{"id": "bad id", "en": "a", "zh": "b"}]}
        )
