"""Properties of the scorecard over any applicant: the score is exactly the base points plus
the characteristics' points (single features and a pair binned jointly), and PD falls as the
score rises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.lending.scoring.reasons import load_default_library
from tianping.lending.scoring.schema import Derivation, DerivationOp
from tianping.lending.scoring.scorecard import (
    AxisRange,
    FeatureCard,
    PairAxis,
    PairBin,
    PairCard,
    Scaling,
    ScorecardModel,
)

LIBRARY = load_default_library()
MODEL = ScorecardModel.build(
    name="property",
    features=[
        FeatureCard(
            "utilisation",
            "numerical",
            frozenset({"bureau"}),
            "R-UTIL-HIGH",
            -7,
            edges=(0.2, 0.5, 0.9),
            bin_points=(30, 12, -5, -40),
        ),
        FeatureCard(
            "income",
            "numerical",
            frozenset({"application"}),
            "R-INCOME-LOW",
            0,
            edges=(20_000.0, 60_000.0),
            bin_points=(-20, 3, 25),
        ),
        FeatureCard(
            "housing",
            "categorical",
            frozenset({"application"}),
            "R-HOUSING",
            -3,
            category_points={"own": 15, "rent": -11},
            other_points=0,
        ),
        FeatureCard(
            "dti",
            "numerical",
            frozenset({"application"}),
            "R-INSTALMENT-BURDEN",
            1,
            edges=(0.3,),
            bin_points=(9, -14),
            derived=Derivation(DerivationOp.RATIO, ("debt", "income")),
        ),
        PairCard(
            name="housing_x_utilisation",
            x=PairAxis("housing", "categorical"),
            y=PairAxis("utilisation", "numerical"),
            sources=frozenset({"application", "bureau"}),
            reason_id="R-BALANCE-HIGH",
            missing_points=-2,
            bins=(
                PairBin(AxisRange(categories=("own",)), AxisRange(), 8),
                PairBin(AxisRange(categories=("rent",)), AxisRange(upper=0.7), 1),
                PairBin(AxisRange(categories=("rent",)), AxisRange(lower=0.7), -19),
            ),
        ),
    ],
    base_points=512,
    scaling=Scaling(600, 50.0, 20),
    library=LIBRARY,
)
SOURCES = ("bureau", "application")

numbers = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
    st.integers(min_value=-(10**9), max_value=10**9),
)
applicants = st.fixed_dictionaries(
    {
        "utilisation": numbers,
        "income": numbers,
        "debt": numbers,
        "housing": st.one_of(st.none(), st.sampled_from(["own", "rent", "boat", ""])),
    }
)


@given(applicants)
@settings(max_examples=300, deadline=None)
def test_score_is_base_plus_points(applicant: dict[str, object]) -> None:
    decision = MODEL.score(applicant, SOURCES)
    assert decision.score_points == MODEL.base_points + sum(p.points for p in decision.points)
    assert [p.feature for p in decision.points] == [card.name for card in MODEL.features]
    assert decision.pd == MODEL.scaling.pd_from_score(decision.score_points)
    assert all(reason.shortfall > 0 for reason in decision.reasons)
    shortfalls = sorted((p.max_points - p.points for p in decision.points), reverse=True)
    assert [r.shortfall for r in decision.reasons] == shortfalls[: len(decision.reasons)]


@given(st.integers(min_value=-2000, max_value=3000), st.integers(min_value=1, max_value=400))
def test_pd_is_monotone_decreasing_in_score(score: int, step: int) -> None:
    scaling = MODEL.scaling
    assert 0.0 <= scaling.pd_from_score(score + step) <= scaling.pd_from_score(score) <= 1.0
    if 0 <= score <= 1100:  # beyond this range PD is within float rounding of 0 or 1
        assert scaling.pd_from_score(score + step) < scaling.pd_from_score(score)
