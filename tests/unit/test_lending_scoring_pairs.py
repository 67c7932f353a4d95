"""Interaction characteristics (pairs of features binned jointly): the decision-time table,
its artefact form, consent, and what a schema may declare as a pair. Trained pairs are covered
by test_lending_scoring_training.py, whose synthetic card holds one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tianping.lending.scoring.errors import (
    ConsentInsufficient,
    FeatureValueInvalid,
    ModelArtefactInvalid,
    ProhibitedField,
    SchemaInvalid,
)
from tianping.lending.scoring.reasons import load_default_library
from tianping.lending.scoring.schema import DatasetSchema, Derivation, DerivationOp
from tianping.lending.scoring.scorecard import (
    MISSING_BIN,
    OTHER_BIN,
    AxisRange,
    FeatureCard,
    PairAxis,
    PairBin,
    PairCard,
    Scaling,
    ScorecardBundle,
    ScorecardModel,
    card_from_mapping,
)

LATE = ("1", "2")
ON_TIME = ("-1", "0")


def late_by_limit(*, points: tuple[int, ...] = (10, 4, -6, -25)) -> PairCard:
    """Last month's status (categorical) by the credit limit (numerical, cut at 50,000):
    being late on a low limit costs far more than the two apart."""
    on_time, late = AxisRange(categories=ON_TIME), AxisRange(categories=LATE)
    low, high = AxisRange(upper=50_000.0), AxisRange(lower=50_000.0)
    return PairCard(
        name="status_x_limit",
        x=PairAxis("status", "categorical"),
        y=PairAxis("limit", "numerical"),
        sources=frozenset({"payments", "account"}),
        reason_id="R-DELINQ-RECENT",
        missing_points=-3,
        bins=(
            PairBin(on_time, high, points[0]),
            PairBin(on_time, low, points[1]),
            PairBin(late, high, points[2]),
            PairBin(late, low, points[3]),
        ),
    )


def model_with_pair() -> ScorecardModel:
    return ScorecardModel.build(
        name="pairs",
        features=[
            FeatureCard(
                "limit",
                "numerical",
                frozenset({"account"}),
                "R-LIMIT-LOW",
                0,
                edges=(20_000.0,),
                bin_points=(-5, 5),
            ),
            late_by_limit(),
        ],
        base_points=500,
        scaling=Scaling(),
        library=load_default_library(),
    )


def test_each_value_pair_falls_in_exactly_one_rectangle() -> None:
    pair = late_by_limit()
    assert pair.points_of({"status": 0, "limit": 80_000}) == 10
    assert pair.points_of({"status": "-1", "limit": 49_999.99}) == 4
    # Bins are [lower, upper), as optbinning cuts them: the bound itself belongs above.
    assert pair.points_of({"status": 2, "limit": 50_000}) == -6
    assert pair.points_of({"status": 1.0, "limit": "1000"}) == -25
    assert pair.bin_of({"status": 1, "limit": 10}) == 3


def test_missing_and_unseen_values_earn_their_own_points() -> None:
    pair = late_by_limit()
    assert pair.bin_of({"status": None, "limit": 10}) == MISSING_BIN
    assert pair.points_of({"status": "1", "limit": float("nan")}) == -3
    assert pair.points_of({"limit": 10}) == -3
    assert pair.bin_of({"status": "9", "limit": 10}) == OTHER_BIN
    assert pair.points_of({"status": "9", "limit": 10}) == 0
    assert (pair.max_points, pair.min_points) == (10, -25)
    with pytest.raises(FeatureValueInvalid):
        pair.points_of({"status": "1", "limit": "a lot"})


def test_a_pair_axis_may_be_a_derived_feature() -> None:
    utilisation = Derivation(DerivationOp.RATIO, ("balance", "limit"))
    pair = PairCard(
        name="utilisation_x_status",
        x=PairAxis("utilisation", "numerical", utilisation),
        y=PairAxis("status", "categorical"),
        sources=frozenset({"payments"}),
        reason_id="R-UTIL-HIGH",
        missing_points=0,
        bins=(
            PairBin(AxisRange(upper=0.5), AxisRange(categories=("0", "1")), 7),
            PairBin(AxisRange(lower=0.5), AxisRange(categories=("0", "1")), -7),
        ),
    )
    assert pair.points_of({"balance": 900, "limit": 1000, "status": 1}) == -7
    assert pair.points_of({"balance": 100, "limit": 1000, "status": 0}) == 7
    assert pair.points_of({"balance": 100, "limit": 0, "status": 0}) == 0  # ratio missing
    assert set(pair.input_names) == {"utilisation", "balance", "limit", "status"}


def test_bins_that_overlap_or_leave_a_gap_are_refused() -> None:
    pair = late_by_limit()
    overlapping = (*pair.bins, PairBin(AxisRange(categories=LATE), AxisRange(), 1))
    gap = pair.bins[:3]
    for bins in (overlapping, gap):
        with pytest.raises(ModelArtefactInvalid):
            PairCard(
                name=pair.name,
                x=pair.x,
                y=pair.y,
                sources=pair.sources,
                reason_id=pair.reason_id,
                missing_points=0,
                bins=bins,
            )


def test_score_is_base_plus_points_with_a_pair_and_its_reason_is_governed() -> None:
    model = model_with_pair()
    decision = model.score({"status": 2, "limit": 10_000}, ["payments", "account"])
    assert [item.feature for item in decision.points] == ["limit", "status_x_limit"]
    assert decision.score_points == 500 - 5 - 25
    assert decision.score_points == decision.base_points + sum(p.points for p in decision.points)
    top = decision.reasons[0]
    assert (top.feature, top.reason_id, top.shortfall) == ("status_x_limit", "R-DELINQ-RECENT", 35)
    statement = load_default_library().get("R-DELINQ-RECENT")
    assert (top.text_en, top.text_zh) == (statement.text_en, statement.text_zh)
    assert top.library_version == load_default_library().version


def test_a_pair_needs_consent_to_both_sources() -> None:
    model = model_with_pair()
    assert model.required_sources == frozenset({"payments", "account"})
    with pytest.raises(ConsentInsufficient):
        model.score({"status": 0, "limit": 80_000}, ["account"])
    fallback = ScorecardModel.build(
        name="fallback:account",
        features=[model.features[0]],
        base_points=500,
        scaling=Scaling(),
        library=load_default_library(),
    )
    bundle = ScorecardBundle(model, [fallback])
    # Payments are not consented: the status is never read, even when it is malformed.
    decision = bundle.score({"status": object(), "limit": 80_000}, ["account"])
    assert decision.fallback_used
    assert [item.feature for item in decision.points] == ["limit"]


def test_artefact_keeps_the_pair_table_and_reloads_identically(tmp_path: Path) -> None:
    model = model_with_pair()
    path = model.save(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    stored = data["features"][1]
    assert stored["kind"] == "pair"
    assert stored["x"] == {"feature": "status", "kind": "categorical"}
    assert stored["bins"][3] == {
        "x": {"in": ["1", "2"]},
        "y": {"from": None, "below": 50_000.0},
        "points": -25,
    }
    again = ScorecardModel.load(path)
    assert again.version == model.version
    assert again.features[1] == model.features[1]
    for status in (None, -1, 0, 1, 2, "7"):
        for limit in (None, 0, 20_000, 49_999.5, 50_000, 10**7):
            row = {"status": status, "limit": limit}
            assert again.score(row, ["payments", "account"]) == model.score(
                row, ["payments", "account"]
            )
    stored["bins"][3]["points"] = -24
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelArtefactInvalid):
        ScorecardModel.load(path)


def test_card_from_mapping_reads_both_kinds() -> None:
    pair = late_by_limit()
    assert card_from_mapping(pair.to_mapping()) == pair
    single = model_with_pair().features[0]
    assert card_from_mapping(single.to_mapping()) == single


# ---------------------------------------------------------------------------- schemas
BASE: dict[str, Any] = {
    "name": "pairs",
    "target": {"column": "bad", "positive": ["1"]},
    "features": [
        {
            "name": "status",
            "type": "categorical",
            "source": "payments",
            "reason": "R-DELINQ-RECENT",
        },
        {"name": "limit", "type": "numerical", "source": "account", "reason": "R-LIMIT-LOW"},
        {"name": "balance", "type": "numerical", "source": "payments", "reason": "R-BALANCE-HIGH"},
    ],
    "protected": [{"name": "age_band", "column": "age", "age_bands": [25, 35]}],
    "excluded": {"marital_status": "prohibited basis, not used"},
    "fallbacks": [["account"]],
}


def with_pairs(*pairs: dict[str, Any]) -> dict[str, Any]:
    return {**BASE, "interactions": list(pairs)}


def pair(x: str, y: str, name: str = "p") -> dict[str, Any]:
    return {"name": name, "of": [x, y], "reason": "R-DELINQ-RECENT"}


def test_schema_declares_pairs_and_their_sources() -> None:
    schema = DatasetSchema.from_mapping(with_pairs(pair("status", "limit")))
    (declared,) = schema.interactions
    assert declared.members == ("status", "limit")
    assert schema.pair_sources(declared) == frozenset({"payments", "account"})
    assert "R-DELINQ-RECENT" in schema.reason_ids
    again = DatasetSchema.from_mapping(schema.to_mapping())
    assert again == schema
    assert again.content_hash() == schema.content_hash()


def test_a_schema_without_pairs_hashes_as_before() -> None:
    """No `interactions` key is written for a schema without pairs, so its hash, and the
    version of every model trained on it, is what it was before pairs existed."""
    schema = DatasetSchema.from_mapping(BASE)
    assert "interactions" not in schema.to_mapping()
    assert schema.content_hash() == DatasetSchema.from_mapping(with_pairs()).content_hash()


@pytest.mark.parametrize(
    "members",
    [("status", "religion"), ("blood_type", "limit"), ("status", "medical_history")],
)
def test_a_pair_with_a_prohibited_field_is_refused(members: tuple[str, str]) -> None:
    with pytest.raises(ProhibitedField):
        DatasetSchema.from_mapping(with_pairs(pair(*members)))


def test_a_pair_named_after_a_prohibited_category_is_refused() -> None:
    with pytest.raises(ProhibitedField):
        DatasetSchema.from_mapping(with_pairs(pair("status", "limit", name="ethnic_mix")))


@pytest.mark.parametrize(
    "members",
    [
        ("status", "age"),  # a protected attribute
        ("marital_status", "limit"),  # an excluded column
        ("status", "income"),  # not a declared feature
        ("status", "status"),  # one feature twice
    ],
)
def test_a_pair_must_join_two_declared_usable_features(members: tuple[str, str]) -> None:
    with pytest.raises(SchemaInvalid):
        DatasetSchema.from_mapping(with_pairs(pair(*members)))


def test_pairs_are_unique_by_name_and_by_members() -> None:
    with pytest.raises(SchemaInvalid):
        DatasetSchema.from_mapping(with_pairs(pair("status", "limit", name="limit")))
    with pytest.raises(SchemaInvalid):
        DatasetSchema.from_mapping(
            with_pairs(pair("status", "limit", "a"), pair("limit", "status", "b"))
        )
    with pytest.raises(SchemaInvalid):
        DatasetSchema.from_mapping(
            with_pairs({"name": "p", "of": ["status"], "reason": "R-DELINQ-RECENT"})
        )
