"""Scorecard training on small synthetic data: monotone bins, exact points, reasons, consent
fallbacks, prohibited fields and artefact reload. The synthetic card holds an interaction
(utilisation x housing, binned jointly), so every check here covers a pair as well."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from tianping.lending.scoring.errors import (
    ConsentInsufficient,
    ModelArtefactInvalid,
    ProhibitedField,
    ScoringError,
    TrainingDataInvalid,
)
from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.scorecard import MAX_ADVERSE_REASONS, PairCard, ScorecardBundle
from tianping.lending.scoring.training import TrainedModels, prepare_frame, score_frame, train

SCHEMA = {
    "name": "synthetic",
    "target": {"column": "bad", "positive": ["1"]},
    "features": [
        {"name": "utilisation", "type": "numerical", "source": "bureau", "reason": "R-UTIL-HIGH"},
        {"name": "income", "type": "numerical", "source": "application", "reason": "R-INCOME-LOW"},
        {
            "name": "late_payments",
            "type": "numerical",
            "source": "bureau",
            "reason": "R-DELINQ-HISTORY",
        },
        {"name": "housing", "type": "categorical", "source": "application", "reason": "R-HOUSING"},
        {
            "name": "savings",
            "type": "numerical",
            "source": "bank_statement",
            "reason": "R-SAVINGS-LOW",
        },
    ],
    "protected": [{"name": "sex", "column": "sex", "groups": {"m": "male", "f": "female"}}],
    "fallbacks": [["application", "bureau"], ["application"]],
    # A pair across two sources: usable by the primary card and the application+bureau
    # fallback, never by the application-only one.
    "interactions": [
        {
            "name": "utilisation_x_housing",
            "of": ["utilisation", "housing"],
            "reason": "R-BALANCE-HIGH",
        }
    ],
}
PAIR = "utilisation_x_housing"


def synthetic_rows(count: int, seed: int) -> list[dict[str, object]]:
    """Default risk rises with utilisation and late payments, falls with income and savings;
    renters default more, and renters with high utilisation far more than the two effects
    added (the interaction the pair should find). Sex is drawn independently of risk."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        utilisation = float(rng.uniform(0, 1.2))
        income = float(rng.lognormal(10, 0.5))
        late = int(rng.poisson(0.7))
        housing = str(rng.choice(["own", "rent", "mortgage"]))
        savings = float(rng.exponential(5000))
        logit = (
            -2.2
            + 2.5 * utilisation
            - 0.8 * (math.log(income) - 10)
            + 0.7 * late
            + (0.6 if housing == "rent" else 0.0)
            + (1.5 if housing == "rent" and utilisation > 0.8 else 0.0)
            - 0.00008 * savings
        )
        bad = int(rng.random() < 1 / (1 + math.exp(-logit)))
        rows.append(
            {
                "utilisation": utilisation,
                "income": income,
                "late_payments": late,
                "housing": housing,
                "savings": savings if rng.random() > 0.05 else None,
                "sex": str(rng.choice(["m", "f"])),
                "bad": bad,
            }
        )
    return rows


@lru_cache(maxsize=1)
def trained() -> TrainedModels:
    return train(DatasetSchema.from_mapping(SCHEMA), synthetic_rows(3000, seed=1), seed=7)


ALL_SOURCES = ("application", "bureau", "bank_statement")


def test_training_learns_the_monotone_relation() -> None:
    card = {feature.name: feature for feature in trained().scorecard.features}
    utilisation = card["utilisation"].bin_points
    income = card["income"].bin_points
    assert len(utilisation) >= 3
    # Higher utilisation earns fewer points, higher income more, bin after bin.
    assert list(utilisation) == sorted(utilisation, reverse=True)
    assert list(income) == sorted(income)
    assert utilisation[0] > utilisation[-1]
    assert card["housing"].category_points["rent"] < card["housing"].category_points["own"]


def test_the_card_holds_the_pair_as_one_characteristic() -> None:
    """The pair survives the information-value cut and the sign rule, so the other tests in
    this file exercise it; its bins tile the two features' values."""
    card = {feature.name: feature for feature in trained().scorecard.features}
    pair = card[PAIR]
    assert isinstance(pair, PairCard)
    assert pair.sources == frozenset({"bureau", "application"})
    assert len(pair.bins) >= 2
    assert pair.max_points > pair.min_points
    # Renting at high utilisation earns the pair's fewest points among the seen values.
    risky = pair.points_of({"utilisation": 1.1, "housing": "rent"})
    assert risky == min(item.points for item in pair.bins)
    assert risky < pair.points_of({"utilisation": 0.1, "housing": "own"})
    assert trained().pairs[0].name == PAIR


def test_points_sum_exactly_to_the_score() -> None:
    model = trained().scorecard
    assert any(isinstance(card, PairCard) for card in model.features)
    for row in synthetic_rows(50, seed=2):
        decision = model.score(row, ALL_SOURCES)
        assert decision.score_points == decision.base_points + sum(
            item.points for item in decision.points
        )
        assert isinstance(decision.score_points, int)
        assert decision.pd == pytest.approx(model.scaling.pd_from_score(decision.score_points))


def test_pdo_scaling_doubles_the_odds_every_pdo_points() -> None:
    scaling = trained().scorecard.scaling

    def odds(score: int) -> float:
        pd = scaling.pd_from_score(score)
        return (1 - pd) / pd

    assert odds(scaling.base_score) == pytest.approx(scaling.base_odds)
    assert odds(scaling.base_score + scaling.pdo) == pytest.approx(2 * scaling.base_odds)


def test_adverse_reasons_are_the_largest_shortfalls() -> None:
    model = trained().scorecard
    row = {
        "utilisation": 1.1,
        "income": 9000.0,
        "late_payments": 4,
        "housing": "rent",
        "savings": 10.0,
    }
    decision = model.score(row, ALL_SOURCES)
    shortfalls = sorted((item.max_points - item.points for item in decision.points), reverse=True)
    reported = [reason.shortfall for reason in decision.reasons]
    assert 0 < len(reported) <= MAX_ADVERSE_REASONS
    assert reported == shortfalls[: len(reported)]
    assert decision.reasons[0].reason_id.startswith("R-")
    assert decision.reasons[0].text_zh and decision.reasons[0].text_en
    # The best possible applicant has no adverse reason at all.
    best = {card.name: None for card in model.features}
    assert all(reason.shortfall > 0 for reason in model.score(best, ALL_SOURCES).reasons)


def test_reload_scores_identically_with_the_same_version(tmp_path: Path) -> None:
    bundle = trained().scorecards
    bundle.save(tmp_path)
    again = ScorecardBundle.load(tmp_path)
    assert again.version == bundle.version
    assert again.primary.version == bundle.primary.version
    for row in synthetic_rows(30, seed=3):
        assert again.score(row, ALL_SOURCES) == bundle.score(row, ALL_SOURCES)
        assert again.score(row, ["application"]) == bundle.score(row, ["application"])
    challenger = trained().challenger
    assert challenger is not None
    challenger.save(tmp_path / "challenger")
    reloaded = type(challenger).load(tmp_path / "challenger")
    frame = prepare_frame(DatasetSchema.from_mapping(SCHEMA), synthetic_rows(20, seed=4))
    assert reloaded.version == challenger.version
    assert np.array_equal(reloaded.predict_pd(frame), challenger.predict_pd(frame))


def test_tampered_artefact_is_refused(tmp_path: Path) -> None:
    path = trained().scorecard.save(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["base_points"] += 1
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelArtefactInvalid):
        type(trained().scorecard).load(path)


def test_version_records_scaling_training_hash_and_metrics() -> None:
    metadata = trained().scorecard.metadata
    assert len(metadata["training_data_hash"]) == 64
    assert 0.5 < metadata["training_metrics"]["auc"] <= 1.0
    assert trained().scorecard.to_mapping()["scaling"] == {
        "base_score": 600,
        "base_odds": 50.0,
        "pdo": 20,
    }


def test_missing_consent_source_falls_back() -> None:
    bundle = trained().scorecards
    row = synthetic_rows(1, seed=5)[0]
    full = bundle.score(row, ALL_SOURCES)
    assert not full.fallback_used
    assert "bank_statement" in full.used_sources
    partial = bundle.score(row, ["application", "bureau"])
    assert partial.fallback_used
    assert set(partial.used_sources) <= {"application", "bureau"}
    assert partial.model_version != full.model_version
    only_application = bundle.score(row, ["application"])
    assert only_application.used_sources == ("application",)


def test_fallbacks_keep_the_pair_only_where_both_its_sources_are_consented() -> None:
    bundle = trained().scorecards
    holds = {model.name: PAIR in {card.name for card in model.features} for model in bundle.models}
    assert holds == {
        "primary": True,
        "fallback:application+bureau": True,
        "fallback:application": False,
    }
    row = synthetic_rows(1, seed=5)[0]
    assert PAIR in {item.feature for item in bundle.score(row, ALL_SOURCES).points}
    assert PAIR not in {item.feature for item in bundle.score(row, ["application"]).points}


def test_fallback_never_reads_unconsented_values() -> None:
    bundle = trained().scorecards
    row = synthetic_rows(1, seed=6)[0]
    poisoned = {**row, "savings": "not a number", "utilisation": object()}
    # Bureau and bank-statement values are not consented, so the malformed values are not read.
    decision = bundle.score(poisoned, ["application"])
    assert decision.fallback_used


def test_no_usable_scorecard_refuses_with_consent_insufficient() -> None:
    with pytest.raises(ConsentInsufficient) as raised:
        trained().scorecards.score(synthetic_rows(1, seed=7)[0], ["bureau"])
    assert raised.value.code == "consent_insufficient"
    with pytest.raises(ConsentInsufficient):
        trained().scorecard.score(synthetic_rows(1, seed=7)[0], ["application"])


@pytest.mark.parametrize(
    "field",
    [
        "religion",
        "blood_type",
        "GeneticMarker",
        "fingerprint_hash",
        "medical_history",
        "ethnicity",
        "disease_code",
    ],
)
def test_prohibited_field_is_refused_at_scoring(field: str) -> None:
    row = {**synthetic_rows(1, seed=8)[0], field: "x"}
    with pytest.raises(ProhibitedField) as raised:
        trained().scorecards.score(row, ALL_SOURCES)
    assert raised.value.code == "prohibited_field"


def test_prohibited_field_is_refused_in_schema_and_training_data() -> None:
    bad_schema = {
        **SCHEMA,
        "features": [
            *SCHEMA["features"],
            {
                "name": "blood_type",
                "type": "categorical",
                "source": "application",
                "reason": "R-HOUSING",
            },
        ],
    }
    with pytest.raises(ProhibitedField):
        DatasetSchema.from_mapping(bad_schema)
    declared = {
        **SCHEMA,
        "features": [
            *SCHEMA["features"],
            {
                "name": "note",
                "type": "categorical",
                "source": "application",
                "reason": "R-HOUSING",
                "category": "religion",
            },
        ],
    }
    with pytest.raises(ProhibitedField):
        DatasetSchema.from_mapping(declared)
    rows = [{**row, "religion": "x"} for row in synthetic_rows(100, seed=9)]
    with pytest.raises(ProhibitedField):
        train(DatasetSchema.from_mapping(SCHEMA), rows, seed=1, with_challenger=False)


def test_harmless_names_are_not_mistaken_for_prohibited_ones() -> None:
    row = {**synthetic_rows(1, seed=10)[0], "DAYS_REGISTRATION": 3, "blood_pressure_free": 1}
    assert trained().scorecards.score(row, ALL_SOURCES).score_points > 0


def test_protected_attribute_cannot_be_a_model_input() -> None:
    clash = {**SCHEMA, "protected": [{"name": "sex", "column": "housing"}]}
    with pytest.raises(ScoringError) as raised:
        DatasetSchema.from_mapping(clash)
    assert raised.value.code == "schema_invalid"
    assert "sex" not in trained().scorecard.metadata.get("coefficients", {})


def test_one_class_training_data_is_refused() -> None:
    rows = [{**row, "bad": 0} for row in synthetic_rows(100, seed=11)]
    with pytest.raises(TrainingDataInvalid):
        train(DatasetSchema.from_mapping(SCHEMA), rows, seed=1, with_challenger=False)


def test_batch_scoring_matches_single_decisions() -> None:
    schema = DatasetSchema.from_mapping(SCHEMA)
    rows = synthetic_rows(25, seed=12)
    scores, pds = score_frame(trained().scorecard, prepare_frame(schema, rows))
    for row, score, pd in zip(rows, scores, pds, strict=True):
        decision = trained().scorecard.score(row, ALL_SOURCES)
        assert decision.score_points == int(score)
        assert decision.pd == pytest.approx(float(pd))


def test_shipped_schemas_load_and_map_to_governed_reasons() -> None:
    from tianping.lending.scoring.datasets import DATASETS
    from tianping.lending.scoring.reasons import load_default_library
    from tianping.lending.scoring.schema import SCHEMA_DIR

    library = load_default_library()
    for spec in DATASETS.values():
        schema = DatasetSchema.load(SCHEMA_DIR / spec.schema_file)
        library.check_mapping(schema.reason_ids)
        assert schema.protected or schema.name == "lendingclub_modeldata"


def test_derived_features_compute_the_same_in_training_and_decisions() -> None:
    schema = DatasetSchema.from_mapping(
        {
            "name": "derived",
            "target": {"column": "bad", "positive": ["1"]},
            "features": [
                {
                    "name": "m1",
                    "type": "categorical",
                    "source": "bureau",
                    "reason": "R-DELINQ-RECENT",
                },
                {
                    "name": "m2",
                    "type": "numerical",
                    "source": "bureau",
                    "reason": "R-DELINQ-HISTORY",
                },
                {
                    "name": "late",
                    "type": "numerical",
                    "source": "bureau",
                    "reason": "R-DELINQ-HISTORY",
                    "derive": {"op": "count_positive", "of": ["m1", "m2"]},
                },
                {
                    "name": "worst",
                    "type": "numerical",
                    "source": "bureau",
                    "reason": "R-DELINQ-HISTORY",
                    "derive": {"op": "max", "of": ["m1", "m2"]},
                },
                {
                    "name": "share",
                    "type": "numerical",
                    "source": "bureau",
                    "reason": "R-DELINQ-HISTORY",
                    "derive": {"op": "ratio", "of": ["m1", "m2"]},
                },
            ],
        }
    )
    rows = [
        {"m1": 2, "m2": -1, "bad": 1},
        {"m1": None, "m2": 0, "bad": 0},
        {"m1": 3, "m2": 0, "bad": 0},
    ]
    frame = prepare_frame(schema, rows)
    assert frame["late"].tolist() == [1.0, 0.0, 1.0]
    assert frame["worst"].tolist() == [2.0, 0.0, 3.0]
    assert frame["share"].tolist()[0] == -2.0
    assert math.isnan(frame["share"].tolist()[1]) and math.isnan(frame["share"].tolist()[2])
    derivation = schema.feature("late").derived
    assert derivation is not None
    assert derivation.compute([None, None]) is None
    assert schema.required_sources(schema.feature("late")) == frozenset({"bureau"})


def test_a_ratio_that_overflows_counts_as_missing() -> None:
    """A near-zero denominator overflows the quotient; the derived feature is then missing,
    and the applicant is scored (the reproduction Hypothesis found)."""
    from tianping.lending.scoring.schema import Derivation, DerivationOp

    ratio = Derivation(DerivationOp.RATIO, ("debt", "income"))
    assert ratio.compute([2.0, 1.1125369292536007e-308]) is None
    assert ratio.compute([2.0, 4.0]) == 0.5


def test_shipped_schemas_never_read_protected_or_excluded_columns() -> None:
    """No model input, no input of a derived feature and no member of a pair is a protected
    attribute or a column the schema excludes (sex, marital status, age, foreign_worker, ...)."""
    from tianping.lending.scoring.datasets import DATASETS
    from tianping.lending.scoring.schema import SCHEMA_DIR

    for spec in DATASETS.values():
        schema = DatasetSchema.load(SCHEMA_DIR / spec.schema_file)
        read = {
            name
            for feature in schema.features
            for name in (feature.derived.inputs if feature.derived else (feature.name,))
        }
        read.update(member for pair in schema.interactions for member in pair.members)
        forbidden = set(schema.excluded) | {attribute.column for attribute in schema.protected}
        assert not read & forbidden, spec.name


def test_german_amount_per_month_is_the_amount_over_the_term() -> None:
    from tianping.lending.scoring.schema import SCHEMA_DIR

    schema = DatasetSchema.load(SCHEMA_DIR / "german_credit.yaml")
    feature = schema.feature("amount_per_month")
    assert feature.derived is not None
    assert feature.derived.inputs == ("credit_amount", "duration_in_month")
    assert feature.reason_id == "R-TERM-LONG-FOR-AMOUNT"
    assert feature.derived.compute([1200.0, 24.0]) == 50.0


def test_taiwan_pairs_join_repayment_statuses_and_the_limit() -> None:
    from tianping.lending.scoring.reasons import load_default_library
    from tianping.lending.scoring.schema import SCHEMA_DIR

    schema = DatasetSchema.load(SCHEMA_DIR / "taiwan.yaml")
    assert schema.version == "2"
    assert [pair.members for pair in schema.interactions] == [
        ("PAY_0", "PAY_2"),
        ("PAY_0", "PAY_3"),
        ("PAY_2", "PAY_3"),
        ("PAY_0", "LIMIT_BAL"),
    ]
    limit_pair = schema.interactions[-1]
    assert schema.pair_sources(limit_pair) == frozenset({"platform_payments", "platform_account"})
    # The fallback for people who share only their application and account data drops it.
    assert not schema.pair_sources(limit_pair) <= schema.fallback_sources[0]
    library = load_default_library()
    assert library.get(limit_pair.reason_id).text_zh
    assert {pair.reason_id for pair in schema.interactions} == {
        "R-REPAYMENT-PATTERN",
        "R-DELINQ-FOR-LIMIT",
    }
