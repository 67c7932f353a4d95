"""Risk model artefact, thresholds, rules and the scorer, on tiny synthetic models."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tianping.payments.risk.errors import FeatureVectorMismatch, ModelArtefactInvalid
from tianping.payments.risk.features import FEATURE_NAMES, FeatureState, PaymentContext
from tianping.payments.risk.model import (
    LogisticBaseline,
    RiskModel,
    RiskScorer,
    average_precision,
    recall_at_fpr,
    threshold_for_fpr,
    train_risk_model,
)
from tianping.payments.risk.rules import RuleLimits, evaluate_rules, most_severe
from tianping.payments.risk.synthetic import generate_payments, train_default_model

T0 = 1_750_000_000


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return train_default_model(3, customers=120, days=3)


def ctx(
    at: int = T0,
    *,
    payer: str = "alice",
    payee: str = "shop",
    device: str = "phone",
    amount: int = 10_000,
    opened_at: int = T0 - 400 * 86_400,
    password_at: int | None = None,
) -> PaymentContext:
    return PaymentContext(
        payer, payee, device, amount, "CNY", at, opened_at, password_at, None, "p2p"
    )


def rules_only(model: RiskModel) -> RiskScorer:
    """A scorer whose model never acts (thresholds above every possible score)."""
    return RiskScorer(replace(model, challenge_threshold=1.0, deny_threshold=1.0))


def test_save_and_load_round_trip_keeps_scores_and_version(
    model: RiskModel, tmp_path: Path
) -> None:
    path = tmp_path / "risk.txt"
    sidecar = model.save(path)
    loaded = RiskModel.load(path)
    assert loaded.version == model.version
    rows = np.random.default_rng(1).normal(size=(50, len(FEATURE_NAMES))) * 3
    assert np.array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert [loaded.score_one(r).score for r in rows] == [model.score_one(r).score for r in rows]
    document = json.loads(sidecar.read_text(encoding="utf-8"))
    assert document["version"] == model.version
    assert document["feature_names"] == list(FEATURE_NAMES)
    assert document["challenge_threshold"] == model.challenge_threshold
    assert document["description"]["thresholds_chosen_on"] == "validation"


def test_a_tampered_artefact_is_refused(model: RiskModel, tmp_path: Path) -> None:
    path = tmp_path / "risk.txt"
    model.save(path)
    sidecar = path.with_suffix(".json")
    document = json.loads(sidecar.read_text(encoding="utf-8"))
    document["deny_threshold"] = 0.99
    sidecar.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ModelArtefactInvalid) as caught:
        RiskModel.load(path)
    assert caught.value.code == "model_artefact_invalid"


def test_training_is_deterministic_and_the_version_covers_thresholds(model: RiskModel) -> None:
    again = train_default_model(3, customers=120, days=3)
    assert again.version == model.version
    assert replace(model, deny_threshold=0.999).version != model.version


def test_fast_scores_equal_lightgbm_and_attributions_add_up(model: RiskModel) -> None:
    rows = np.random.default_rng(2).normal(size=(20, len(FEATURE_NAMES))) * 3
    raw = model.booster.predict(rows, raw_score=True)
    for row, expected in zip(rows, raw, strict=True):
        scored = model.score_one(row)
        assert scored.score == pytest.approx(1 / (1 + math.exp(-expected)), abs=1e-12)
        assert model.explain(scored).sum() + model.base_value == pytest.approx(expected, abs=1e-6)


def test_threshold_for_fpr_flags_at_most_the_allowed_share() -> None:
    negatives = np.arange(1_000) / 1_000
    threshold = threshold_for_fpr(negatives, 0.01)
    assert int((negatives >= threshold).sum()) == 10
    assert threshold_for_fpr(np.full(100, 0.5), 0.01) > 0.5  # ties are not flagged
    labels = np.array([0] * 100 + [1] * 4)
    scores = np.concatenate([np.linspace(0, 0.5, 100), [0.9, 0.8, 0.1, 0.05]])
    assert recall_at_fpr(labels, scores, 0.01) == 0.5


def test_thresholds_map_scores_to_actions(model: RiskModel) -> None:
    fixed = replace(model, challenge_threshold=0.2, deny_threshold=0.8)
    assert [fixed.action_for(s) for s in (0.0, 0.19999, 0.2, 0.5, 0.8, 1.0)] == [
        "allow",
        "allow",
        "challenge",
        "challenge",
        "deny",
        "deny",
    ]


def test_the_decision_carries_the_model_version_and_score(model: RiskModel) -> None:
    scorer = RiskScorer(model)
    state = FeatureState("CNY")
    decision = scorer.assess(state, ctx())
    assert decision.model_version == model.version
    values = state.features(ctx()).values
    assert decision.score == pytest.approx(float(model.predict_proba([values])[0]), abs=1e-12)
    assert decision.action in ("allow", "challenge", "deny")


def test_model_reasons_name_the_top_contributing_features(model: RiskModel) -> None:
    always = RiskScorer(replace(model, challenge_threshold=0.0, deny_threshold=1.0))
    decision = always.score(FeatureState("CNY").features(ctx()))
    assert decision.action == "challenge"
    assert 1 <= len(decision.reasons) <= 3
    assert all(reason.removeprefix("model:") in FEATURE_NAMES for reason in decision.reasons)


def test_an_allowed_payment_carries_no_reasons(model: RiskModel) -> None:
    decision = rules_only(model).score(FeatureState("CNY").features(ctx(amount=100)))
    assert (decision.action, decision.reasons) == ("allow", ())


def test_velocity_rule_denies_the_payment_over_the_cap(model: RiskModel) -> None:
    scorer, state = rules_only(model), FeatureState("CNY")
    for second in range(5):
        assert scorer.assess(state, ctx(T0 + second, amount=100)).action == "allow"
        state.observe(ctx(T0 + second, amount=100))
    sixth = scorer.assess(state, ctx(T0 + 5, amount=100))
    assert (sixth.action, sixth.reasons) == ("deny", ("velocity_exceeded",))


def test_new_device_with_a_large_amount_is_challenged(model: RiskModel) -> None:
    scorer, state = rules_only(model), FeatureState("CNY")
    for day in range(3):
        state.observe(ctx(T0 + day * 86_400, amount=20_000))
    usual = scorer.assess(state, ctx(T0 + 4 * 86_400, amount=80_000))
    assert usual.action == "allow"  # large, but from the known phone
    stranger = scorer.assess(state, ctx(T0 + 4 * 86_400, amount=80_000, device="unknown"))
    assert (stranger.action, stranger.reasons) == ("challenge", ("new_device_large_amount",))


def test_password_change_then_new_payee_with_a_large_amount_is_challenged(
    model: RiskModel,
) -> None:
    scorer, state = rules_only(model), FeatureState("CNY")
    for day in range(3):
        state.observe(ctx(T0 + day * 86_400, amount=20_000))
    at = T0 + 4 * 86_400
    decision = scorer.assess(state, ctx(at, amount=90_000, payee="mule", password_at=at - 600))
    assert decision.reasons == ("password_change_new_payee_large_amount",)
    known_payee = scorer.assess(state, ctx(at, amount=90_000, password_at=at - 600))
    assert known_payee.action == "allow"


def test_young_account_with_a_large_amount_is_challenged(model: RiskModel) -> None:
    scorer = rules_only(model)
    young = ctx(amount=300_000, opened_at=T0 - 3_600)
    features = FeatureState("CNY").features(young)
    reasons = [hit.reason for hit in evaluate_rules(features, RuleLimits())]
    assert "new_account_large_amount" in reasons
    assert scorer.score(features).action == "challenge"
    small = FeatureState("CNY").features(ctx(amount=1_000, opened_at=T0 - 3_600))
    assert evaluate_rules(small, RuleLimits()) == ()


def test_most_severe_action_wins() -> None:
    assert most_severe(("allow", "deny", "challenge")) == "deny"
    assert most_severe(()) == "allow"


def test_the_scorer_refuses_a_model_with_other_features() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] > 1).astype(int)
    small = train_risk_model(x, y, {"num_iterations": 5}, feature_names=("a", "b", "c"))
    assert small.description["thresholds_chosen_on"] == "training"
    with pytest.raises(FeatureVectorMismatch):
        RiskScorer(small)


def test_the_model_beats_chance_and_the_baseline_is_comparable() -> None:
    stream = generate_payments(11, customers=120, days=3)
    state = FeatureState("CNY")
    rows = []
    for event in stream:
        rows.append(state.features(event.context).values)
        state.observe(event.context)
    labels = np.array([int(event.is_fraud) for event in stream])
    cut = int(len(rows) * 0.7)
    x = np.asarray(rows)
    tree = train_risk_model(x[:cut], labels[:cut], {"num_iterations": 30})
    baseline = LogisticBaseline().fit(x[:cut], labels[:cut])
    prevalence = labels[cut:].mean()
    assert average_precision(labels[cut:], tree.predict_proba(x[cut:])) > 3 * prevalence
    assert average_precision(labels[cut:], baseline.predict_proba(x[cut:])) > 3 * prevalence


def test_the_synthetic_stream_is_reproducible() -> None:
    first = generate_payments(5, customers=50, days=2)
    assert first == generate_payments(5, customers=50, days=2)
    assert first != generate_payments(6, customers=50, days=2)
    share = sum(event.is_fraud for event in first) / len(first)
    assert 0.01 < share < 0.06
    assert [e.context.at for e in first] == sorted(e.context.at for e in first)


def test_scoring_many_rows_at_once_equals_scoring_each() -> None:
    """The batch path (one native call) gives exactly the single-row scores and reasons."""
    from tianping.payments.risk.features import FeatureState
    from tianping.payments.risk.model import RiskScorer
    from tianping.payments.risk.synthetic import generate_payments, train_default_model

    model = train_default_model(0, customers=60, days=3)
    scorer = RiskScorer(model)
    state = FeatureState("CNY")
    vectors = []
    for event in generate_payments(1, customers=30, days=1)[:200]:
        vectors.append(state.features(event.context))
        state.observe(event.context)
    assert scorer.score_many(vectors) == [scorer.score(vector) for vector in vectors]
    assert scorer.score_many([]) == []
