"""The SME working-capital card and its synthetic population: deterministic by seed, trained
on the acquiring features a decision reads, quoting governed reasons in both languages, scoring
identically after a save and a reload; the cap by receipts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tianping.lending.scoring.errors import ConsentInsufficient, ProhibitedField
from tianping.lending.scoring.reasons import load_default_library
from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.scorecard import ScorecardBundle
from tianping.lending.sme import (
    SME_RECEIPTS_MULTIPLE,
    SME_SOURCES,
    receipts_cap,
    sme_features,
)
from tianping.lending.synthetic_sme import SME_SCHEMA, sme_applicants, sme_scorecard
from tianping.payments.cash_flow import MonthlyAcquiring, derive_profile


def test_the_population_is_deterministic_by_seed() -> None:
    assert sme_applicants(3, 200) == sme_applicants(3, 200)
    assert sme_applicants(3, 200) != sme_applicants(4, 200)
    rate = sum(row["defaulted"] for row in sme_applicants(0)) / 6_000
    assert 0.03 < rate < 0.25  # both classes well represented


def test_the_schema_reads_only_the_application_and_the_consented_acquiring() -> None:
    schema = DatasetSchema.load(SME_SCHEMA)
    assert schema.sources == SME_SOURCES
    assert schema.fallback_sources == ()  # without consent the service refuses instead
    library = load_default_library()
    library.check_mapping(spec.reason_id for spec in schema.features)
    for spec in schema.features:
        if spec.source == "acquiring_cash_flows" and spec.reason_id.startswith("R-SME-"):
            statement = library.get(spec.reason_id)
            assert statement.text_en and statement.text_zh


def test_the_card_trains_the_same_twice_and_scores_the_same_after_reload(tmp_path: Path) -> None:
    bundle = sme_scorecard()
    assert sme_scorecard.__wrapped__(0).version == bundle.version  # type: ignore[attr-defined]
    loaded = ScorecardBundle.load(bundle.save(tmp_path / "sme"))
    assert loaded.version == bundle.version
    for row in sme_applicants(11, 50):
        features = {name: value for name, value in row.items() if name != "defaulted"}
        first = bundle.score(features, SME_SOURCES)
        again = loaded.score(features, SME_SOURCES)
        assert (first.score_points, first.pd, first.reasons) == (
            again.score_points,
            again.pd,
            again.reasons,
        )


def test_a_weaker_cash_flow_scores_lower_with_governed_reasons() -> None:
    bundle = sme_scorecard()
    months = ("2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03")
    steady = [MonthlyAcquiring(m, 80_000_00, 0, 800, 0, 26) for m in months]
    falling = [
        MonthlyAcquiring(m, gross, gross // 5, 50, 40, 6)
        for m, gross in zip(
            months, (90_000_00, 60_000_00, 40_000_00, 20_000_00, 9_000_00, 3_000_00), strict=True
        )
    ]
    as_of = date(2026, 4, 2)
    strong = derive_profile("m", "CNY", as_of, 6, steady, 600, "2021-01")
    weak = derive_profile("m", "CNY", as_of, 6, falling, 20, "2025-10")
    good = bundle.score(sme_features(strong, 60_000_00, 6, 1_000_000_00), SME_SOURCES)
    poor = bundle.score(sme_features(weak, 60_000_00, 6, 1_000_000_00), SME_SOURCES)
    assert poor.score_points < good.score_points
    assert poor.pd > good.pd
    assert poor.reasons and all(r.reason_id.startswith("R-") for r in poor.reasons)
    assert {r.reason_id for r in poor.reasons} & {
        "R-SME-RECEIPTS-FALLING",
        "R-SME-AMOUNT-TO-RECEIPTS",
        "R-SME-RECEIPTS-VOLATILE",
        "R-SME-ACTIVE-DAYS-LOW",
        "R-SME-CUSTOMERS-FEW",
    }


def test_the_card_needs_the_consented_source_and_refuses_prohibited_fields() -> None:
    bundle = sme_scorecard()
    with pytest.raises(ConsentInsufficient):
        bundle.score({"requested_amount": 1}, {"application"})
    with pytest.raises(ProhibitedField):
        bundle.score({"requested_amount": 1, "religion": "x"}, SME_SOURCES)


def test_the_cap_is_a_multiple_of_mean_monthly_receipts() -> None:
    rows = [MonthlyAcquiring("2026-03", 10_001, 0, 1, 0, 1)]
    profile = derive_profile("m", "CNY", date(2026, 4, 1), 1, rows, 1, "2026-03")
    assert receipts_cap(profile) == SME_RECEIPTS_MULTIPLE * 10_001 == 30_003
    nothing = derive_profile("m", "CNY", date(2026, 4, 1), 1, [], 0, None)
    assert receipts_cap(nothing) == 0
