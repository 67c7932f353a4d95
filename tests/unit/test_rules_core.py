"""The rules engine core, on small rulebooks written to tmp_path: load-time validation that names
the file and the key, overlays, diff, content hashes, dates in force, outcome combination, and
the conventions shared by scenarios, stored decisions and configuration."""

from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tianping.rules.checks import load_checked_rulebook
from tianping.rules.config import RulesSettings, parse_label, rules_settings
from tianping.rules.documents import UnencodableValue, canonical_json, json_value
from tianping.rules.errors import MissingFact, RulebookError, UnknownPoint, UnknownRule
from tianping.rules.model import Outcome
from tianping.rules.parameters import REPEALED
from tianping.rules.rulebook import Overlay, diff, load_rulebook
from tianping.rules.scenarios import (
    FactError,
    ScenarioRunner,
    convert_fact,
    convert_facts,
    load_scenarios,
)

PARAMETERS = """
payments.cap:
  description: The most one payment may move.
  unit: CNY
  reference: {instrument: "Test Measures", article: "Art. 1"}
  confidence: H
  values:
    2020-01-01: "1000.00"
    2024-01-01: "2000.00"
payments.report_threshold:
  description: Payments from this amount are reported.
  unit: CNY
  reference: {instrument: "Test Measures", url: "https://example.org/art2"}
  confidence: M
  values:
    2020-01-01: "500.00"
payments.warning_ratio:
  description: Payments above this share of the cap need the payer's confirmation.
  unit: ratio
  reference: {instrument: "Test Measures", article: "Art. 3"}
  confidence: L
  values:
    2020-01-01: "0.80"
payments.min_factors:
  description: Payments need at least this many authentication factors.
  unit: count
  reference: {instrument: "Test Measures", article: "Art. 4"}
  confidence: U
  values:
    2022-06-01: "2"
    2025-01-01: repealed
"""

RULES = '''
from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext, RuleSet

rules = RuleSet()


@rules.rule(id="t.payments.cap", title="Cap", area="payments", point="payment.authorize",
            citation="Test Measures Art. 1", parameters=("payments.cap",), facts=("amount",))
def cap(ctx: RuleContext) -> Finding | None:
    """Deny a payment over the cap."""
    if ctx.fact("amount") > ctx.param("payments.cap"):
        return ctx.deny("over the cap", "超过上限")
    return None


@rules.rule(id="t.payments.report", title="Report", area="payments", point="payment.authorize",
            citation="Test Measures Art. 2", parameters=("payments.report_threshold",),
            facts=("amount",))
def report(ctx: RuleContext) -> Finding | None:
    """Report a payment from the threshold."""
    if ctx.fact("amount") >= ctx.param("payments.report_threshold"):
        return ctx.report("reportable", "需报告")
    return None


@rules.rule(id="t.payments.warning", title="Warning", area="payments", point="payment.authorize",
            citation="Test Measures Art. 3",
            parameters=("payments.warning_ratio", "payments.cap"), facts=("amount",))
def warning(ctx: RuleContext) -> Finding | None:
    """Ask the payer to confirm a payment close to the cap."""
    if ctx.fact("amount") > ctx.param("payments.warning_ratio") * ctx.param("payments.cap"):
        return ctx.confirm("close to the cap", "接近上限")
    return None


@rules.rule(id="t.payments.factors", title="Factors", area="payments",
            point="payment.authorize", citation="Test Measures Art. 4",
            parameters=("payments.min_factors",), facts=("auth_factors",))
def factors(ctx: RuleContext) -> Finding | None:
    """Step up a payment with too few factors."""
    if ctx.fact_or("auth_factors", 2) < ctx.param("payments.min_factors"):
        return ctx.step_up("authenticate more", "请加强认证")
    return None
'''

OVERLAY_HALF = """
name: half-cap
description: Halve the cap from 2025.
changes:
  payments.cap:
    2025-01-01: "500.00"
"""

OVERLAY_LOW_REPORT = """
name: low-report
description: Report from 100 from 2026.
changes:
  payments.report_threshold:
    2026-01-01: "100.00"
  payments.cap:
    2026-01-01: "800.00"
"""


def write_rulebook(
    root: Path,
    parameters: str = PARAMETERS,
    rules: str = RULES,
    overlays: dict[str, str] | None = None,
    name: str = "tb",
) -> Path:
    """A rulebook directory under `root` with the given files; returns the directory."""
    directory = root / name
    (directory / "parameters").mkdir(parents=True)
    (directory / "overlays").mkdir()
    (directory / "parameters" / "params.yaml").write_text(textwrap.dedent(parameters), "utf-8")
    (directory / "rules.py").write_text(rules, "utf-8")
    for overlay_name, text in (overlays or {}).items():
        (directory / "overlays" / f"{overlay_name}.yaml").write_text(text, "utf-8")
    return directory


def broken_parameters(old: str, new: str) -> str:
    assert old in PARAMETERS, old
    return PARAMETERS.replace(old, new, 1)


def load_error(directory: Path) -> RulebookError:
    with pytest.raises(RulebookError) as caught:
        load_checked_rulebook(directory)
    return caught.value


# -- bad rulebooks fail at load, naming the file and the key ---------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        pytest.param(
            '  reference: {instrument: "Test Measures", article: "Art. 1"}\n',
            "",
            "payments.cap.reference",
            "is required",
            id="missing-reference",
        ),
        pytest.param(
            '  reference: {instrument: "Test Measures", article: "Art. 1"}\n',
            '  reference: {instrument: "Test Measures"}\n',
            "payments.cap.reference",
            "gives an article or a URL",
            id="reference-without-article-or-url",
        ),
        pytest.param(
            "  confidence: M\n",
            "",
            "payments.report_threshold.confidence",
            "is required",
            id="missing-confidence",
        ),
        pytest.param(
            "  confidence: L\n",
            "  confidence: X\n",
            "payments.warning_ratio.confidence",
            "one of",
            id="unknown-confidence",
        ),
        pytest.param(
            "  unit: CNY\n",
            "  unit: yuan\n",
            "payments.cap.unit",
            "unknown unit 'yuan'",
            id="wrong-unit",
        ),
        pytest.param(
            '    2024-01-01: "2000.00"',
            '    2024-13-01: "2000.00"',
            "payments.cap.values",
            "not an ISO date",
            id="bad-date",
        ),
        pytest.param(
            '    2024-01-01: "2000.00"',
            '    20200101: "2000.00"',
            "payments.cap.values",
            "two values start on the same date",
            id="duplicate-date-two-spellings",
        ),
        pytest.param(
            '    2024-01-01: "2000.00"',
            '    2024-01-01: "two thousand"',
            "payments.cap.values.2024-01-01",
            "not an amount in CNY",
            id="money-not-a-number",
        ),
        pytest.param(
            '    2024-01-01: "2000.00"',
            '    2024-01-01: "2000.001"',
            "payments.cap.values.2024-01-01",
            "not an amount in CNY",
            id="money-too-precise",
        ),
        pytest.param(
            '    2022-06-01: "2"',
            '    2022-06-01: "2.5"',
            "payments.min_factors.values.2022-06-01",
            "not a whole number",
            id="count-not-whole",
        ),
        pytest.param(
            '    2020-01-01: "0.80"',
            '    2020-01-01: "-0.1"',
            "payments.warning_ratio.values.2020-01-01",
            "non-negative",
            id="negative-ratio",
        ),
    ],
)
def test_a_bad_parameter_file_fails_at_load_naming_file_and_key(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    """Each kind of bad parameter stops the load with the file, the key and the problem."""
    error = load_error(write_rulebook(tmp_path, broken_parameters(old, new)))
    assert error.source.endswith("parameters/params.yaml")
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"{error.source}: {key}: ")


def test_a_date_written_twice_fails_at_load_naming_file_line_and_key(tmp_path: Path) -> None:
    """A series naming one date twice is refused (YAML itself would keep only the last value)."""
    parameters = broken_parameters('    2024-01-01: "2000.00"', '    2020-01-01: "2000.00"')
    directory = write_rulebook(tmp_path, parameters)
    # The loader itself refuses it (YAML alone would keep the second value silently).
    with pytest.raises(RulebookError):
        load_rulebook(directory)
    error = load_error(directory)
    assert error.source.endswith("parameters/params.yaml:9")
    assert error.key == "2020-01-01"
    assert "written twice" in error.problem


def test_a_rule_declaring_an_unknown_parameter_fails_at_load(tmp_path: Path) -> None:
    """A rule that declares a parameter the rulebook lacks stops the load, naming both."""
    rules = RULES.replace('parameters=("payments.cap",)', 'parameters=("payments.kap",)')
    error = load_error(write_rulebook(tmp_path, rules=rules))
    assert error.source == "rule t.payments.cap"
    assert error.key == "payments.kap"
    assert "does not have" in error.problem


def test_a_rule_reading_an_undeclared_parameter_fails_at_checked_load(tmp_path: Path) -> None:
    """A literal read of an undeclared parameter is found at load, naming rules.py and the key;
    the core alone would raise only when a command reaches the read."""
    rules = RULES.replace(
        'parameters=("payments.warning_ratio", "payments.cap")', 'parameters=("payments.cap",)'
    )
    directory = write_rulebook(tmp_path, rules=rules)
    error = load_error(directory)
    assert error.source.startswith(str(directory / "rules.py") + ":")
    assert error.key == "payments.warning_ratio"
    assert "t.payments.warning" in error.problem
    unchecked = load_rulebook(directory)
    with pytest.raises(RulebookError, match="read by the rule but not declared"):
        unchecked.evaluate("payment.authorize", {"amount": 100}, date(2024, 6, 1))


def test_an_overlay_changing_an_unknown_parameter_fails_naming_file_and_key(
    tmp_path: Path,
) -> None:
    """An overlay naming a parameter the rulebook does not have is refused when applied."""
    overlay = OVERLAY_HALF.replace("payments.cap:", "payments.kap:")
    directory = write_rulebook(tmp_path, overlays={"half-cap": overlay})
    with pytest.raises(RulebookError) as caught:
        load_checked_rulebook(directory, ("half-cap",))
    assert caught.value.source.endswith("overlays/half-cap.yaml")
    assert caught.value.key == "payments.kap"


def test_an_unknown_overlay_name_lists_the_known_ones(tmp_path: Path) -> None:
    """Asking for an overlay that does not exist names the ones that do."""
    directory = write_rulebook(tmp_path, overlays={"half-cap": OVERLAY_HALF})
    with pytest.raises(RulebookError, match=r"no such overlay \(known: half-cap\)"):
        load_rulebook(directory, ("third",))


# -- overlays and diff ---------------------------------------------------------------------------


def test_overlays_compose_in_order_and_never_modify_the_base(tmp_path: Path) -> None:
    """Two overlays apply in sequence, each from its own date, and the base stays as loaded."""
    directory = write_rulebook(
        tmp_path, overlays={"half-cap": OVERLAY_HALF, "low-report": OVERLAY_LOW_REPORT}
    )
    base = load_rulebook(directory)
    base_values = {name: p.values for name, p in base.parameters.items()}
    base_hash = base.content_hash
    both = base.with_overlay(base.overlay_named("half-cap")).with_overlay(
        base.overlay_named("low-report")
    )
    assert both.label == "tb+half-cap+low-report"
    cap = both.parameters["payments.cap"]
    assert cap.starts == (date(2020, 1, 1), date(2024, 1, 1), date(2025, 1, 1), date(2026, 1, 1))
    assert cap.values == (100000, 200000, 50000, 80000)
    assert both.parameters["payments.report_threshold"].value_on(date(2026, 1, 1)) == 10000
    assert both.parameters["payments.report_threshold"].value_on(date(2025, 12, 31)) == 50000
    # The base is untouched: same values, same hash, same decisions.
    assert {name: p.values for name, p in base.parameters.items()} == base_values
    assert base.content_hash == base_hash
    assert base.evaluate("payment.authorize", {"amount": 150000}, date(2026, 6, 1)).allowed
    assert not both.evaluate("payment.authorize", {"amount": 150000}, date(2026, 6, 1)).allowed
    # Loading with overlay names gives the same rulebook content as applying them by hand.
    assert load_rulebook(directory, ("half-cap", "low-report")).content_hash == both.content_hash


def test_an_overlay_from_a_date_keeps_the_earlier_history(tmp_path: Path) -> None:
    """An overlay replaces a series only from its first date; earlier values remain."""
    overlay = OVERLAY_HALF.replace("2025-01-01", "2022-01-01")
    base = load_rulebook(write_rulebook(tmp_path, overlays={"half-cap": overlay}))
    changed = base.with_overlay(base.overlay_named("half-cap")).parameters["payments.cap"]
    # The 2024 value of the base falls after the overlay's date, so it is replaced too.
    assert changed.starts == (date(2020, 1, 1), date(2022, 1, 1))
    assert changed.values == (100000, 50000)


def test_diff_lists_exactly_the_changed_dated_values(tmp_path: Path) -> None:
    """`diff` names each parameter and date whose value differs, with both values, and nothing
    else."""
    directory = write_rulebook(
        tmp_path, overlays={"half-cap": OVERLAY_HALF, "low-report": OVERLAY_LOW_REPORT}
    )
    base = load_rulebook(directory)
    other = load_rulebook(directory, ("half-cap", "low-report"))
    changes = [(c.name, c.start, c.before, c.after) for c in diff(base, other)]
    assert changes == [
        ("payments.cap", date(2025, 1, 1), 200000, 50000),
        ("payments.cap", date(2026, 1, 1), 200000, 80000),
        ("payments.report_threshold", date(2026, 1, 1), 50000, 10000),
    ]
    assert diff(base, base) == []
    assert diff(base, load_rulebook(directory)) == []


def test_an_overlay_that_restates_base_values_changes_nothing(tmp_path: Path) -> None:
    """An overlay whose values equal the base's yields an empty diff."""
    overlay = Overlay("same", "", {"payments.cap": {"2024-01-01": "2000.00"}})
    base = load_rulebook(write_rulebook(tmp_path))
    assert diff(base, base.with_overlay(overlay)) == []


# -- content hash ---------------------------------------------------------------------------


def test_the_content_hash_follows_values_and_rule_source_only(tmp_path: Path) -> None:
    """The hash changes with a parameter value or a rule's source, and not with a description,
    a reference, a confidence, or a second load of the same files."""
    original = load_rulebook(write_rulebook(tmp_path / "a")).content_hash
    assert load_rulebook(write_rulebook(tmp_path / "b")).content_hash == original
    assert len(original) == 64
    value_changed = broken_parameters('"1000.00"', '"1000.01"')
    assert load_rulebook(write_rulebook(tmp_path / "c", value_changed)).content_hash != original
    source_changed = RULES.replace('"over the cap"', '"above the cap"')
    assert load_rulebook(write_rulebook(tmp_path / "d", rules=source_changed)).content_hash != (
        original
    )
    prose_changed = broken_parameters(
        "The most one payment may move.", "The largest single payment."
    )
    prose_changed = prose_changed.replace("confidence: H", "confidence: M", 1)
    prose_changed = prose_changed.replace('article: "Art. 1"', 'article: "Article 1"', 1)
    assert load_rulebook(write_rulebook(tmp_path / "e", prose_changed)).content_hash == original


# -- dates in force and outcomes ------------------------------------------------------------


def test_a_parameter_not_yet_in_force_keeps_its_rule_silent(tmp_path: Path) -> None:
    """Before a parameter's first date, and from a `repealed` date, its rule says nothing."""
    rulebook = load_rulebook(write_rulebook(tmp_path))
    facts = {"amount": 1, "auth_factors": 1}
    assert rulebook.evaluate("payment.authorize", facts, date(2022, 5, 31)).rule_ids == ()
    on_the_day = rulebook.evaluate("payment.authorize", facts, date(2022, 6, 1))
    assert on_the_day.rule_ids == ("t.payments.factors",)
    assert on_the_day.outcome is Outcome.step_up
    assert rulebook.evaluate("payment.authorize", facts, date(2024, 12, 31)).rule_ids == (
        "t.payments.factors",
    )
    assert rulebook.evaluate("payment.authorize", facts, date(2025, 1, 1)).rule_ids == ()
    assert rulebook.values_on(date(2025, 1, 1))["payments.min_factors"] is REPEALED
    # Before any parameter is in force, every rule is silent however large the amount.
    silent = rulebook.evaluate("payment.authorize", {"amount": 10**9}, date(2019, 12, 31))
    assert silent.outcome is Outcome.allow
    assert silent.findings == ()
    assert len(silent.evaluated) == 4


@pytest.mark.parametrize(
    ("amount", "auth_factors", "outcome", "rule_ids"),
    [
        pytest.param(10000, 2, Outcome.allow, set(), id="allow"),
        pytest.param(60000, 2, Outcome.report, {"t.payments.report"}, id="report"),
        pytest.param(
            180000, 2, Outcome.confirm, {"t.payments.report", "t.payments.warning"}, id="confirm"
        ),
        pytest.param(
            180000,
            1,
            Outcome.step_up,
            {"t.payments.report", "t.payments.warning", "t.payments.factors"},
            id="step_up",
        ),
        pytest.param(
            250000,
            1,
            Outcome.deny,
            {"t.payments.cap", "t.payments.report", "t.payments.warning", "t.payments.factors"},
            id="deny",
        ),
    ],
)
def test_the_strongest_outcome_wins_and_reports_are_kept(
    tmp_path: Path, amount: int, auth_factors: int, outcome: Outcome, rule_ids: set[str]
) -> None:
    """deny beats step_up beats confirm beats report beats allow; every finding is kept."""
    rulebook = load_rulebook(write_rulebook(tmp_path))
    decision = rulebook.evaluate(
        "payment.authorize", {"amount": amount, "auth_factors": auth_factors}, date(2024, 6, 1)
    )
    assert decision.outcome is outcome
    assert set(decision.rule_ids) == rule_ids
    assert decision.allowed == (outcome <= Outcome.report)
    if outcome is not Outcome.allow:
        # The reporting duty survives whatever stronger outcome wins.
        assert any(f.outcome is Outcome.report for f in decision.findings)
    assert list(Outcome) == sorted(Outcome)
    assert [o.name for o in sorted(Outcome)] == ["allow", "report", "confirm", "step_up", "deny"]


def test_findings_carry_the_parameter_values_they_read(tmp_path: Path) -> None:
    """A finding records exactly the parameters its rule read, with the dated values used."""
    rulebook = load_rulebook(write_rulebook(tmp_path))
    decision = rulebook.evaluate("payment.authorize", {"amount": 250000}, date(2021, 1, 1))
    cap = next(f for f in decision.findings if f.rule_id == "t.payments.cap")
    assert cap.parameters == {"payments.cap": 100000}
    assert decision.parameters_used["payments.warning_ratio"] == Decimal("0.80")


def test_lookups_name_what_is_unknown(tmp_path: Path) -> None:
    """Unknown rules, points and facts raise the rules context's own errors."""
    rulebook = load_rulebook(write_rulebook(tmp_path))
    with pytest.raises(UnknownRule, match=r"t\.nope"):
        rulebook.rule("t.nope")
    with pytest.raises(UnknownPoint, match=r"payment\.nope"):
        rulebook.evaluate("payment.nope", {}, date(2024, 1, 1))
    with pytest.raises(MissingFact, match="'amount'"):
        rulebook.evaluate("payment.authorize", {}, date(2024, 1, 1))


# -- facts, scenarios, JSON and configuration -------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ({"CNY": "600.01"}, 60001),
        ({"EUR": "0.05"}, 5),
        ({"JPY": "1000"}, 1000),
        ({"ratio": "0.95"}, Decimal("0.95")),
        ({"text": "123"}, "123"),
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("I", "I"),
        ("4.5", "4.5"),
        (True, True),
        (12, 12),
        (["a", "2"], ("a", 2)),
    ],
)
def test_facts_are_converted_by_the_written_conventions(written: Any, value: Any) -> None:
    """Each written form becomes the value rules read, with its exact type."""
    converted = convert_fact(written, "facts.x")
    assert converted == value
    assert type(converted) is type(value)


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (1.5, "never a float"),
        ({"CNY": "1.001"}, "not an amount in CNY"),
        ({"ratio": "abc"}, "not a decimal ratio"),
        ({"ratio": "NaN"}, "finite"),
        ({"XYZ": "1"}, "unknown tag"),
        ({"CNY": "1", "EUR": "1"}, "exactly one key"),
        ({"CNY": 1}, "written as a string"),
        (None, "a fact is a string"),
    ],
)
def test_badly_written_facts_are_refused_without_echoing_them(written: Any, problem: str) -> None:
    """A fact in no known form is refused with its name and the problem, never its value."""
    with pytest.raises(FactError, match=problem) as caught:
        convert_fact(written, "facts.amount")
    assert caught.value.message.startswith("facts.amount: ")
    assert "abc" not in caught.value.message
    assert "1.001" not in caught.value.message


def test_scenario_files_run_with_their_overlays(tmp_path: Path) -> None:
    """A scenario file's facts, dates and overlays run through the runner with the expected
    results, and a wrong expectation is reported, not raised."""
    directory = write_rulebook(tmp_path, overlays={"half-cap": OVERLAY_HALF})
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(
        textwrap.dedent(
            """
            - name: under the cap
              date: 2025-06-01
              point: payment.authorize
              facts: {amount: {CNY: "400.00"}}
              expect: {outcome: allow, rules: []}
            - name: over the halved cap
              date: 2025-06-01
              point: payment.authorize
              overlays: [half-cap]
              facts: {amount: {CNY: "500.01"}}
              expect: {outcome: deny, rules: [t.payments.cap, t.payments.report,
                                              t.payments.warning]}
            - name: a wrong expectation
              date: 2025-06-01
              point: payment.authorize
              facts: {amount: {CNY: "400.00"}}
              expect: {outcome: deny, rules: [t.payments.cap]}
            - name: a missing fact
              date: 2025-06-01
              point: payment.authorize
              facts: {}
              expect: {outcome: allow}
            """
        ),
        "utf-8",
    )
    runner = ScenarioRunner(load_rulebook(directory))
    results = [runner.run(scenario) for scenario in load_scenarios(scenarios)]
    assert [result.passed for result in results] == [True, True, False, False]
    assert results[2].problems == [
        "outcome allow, expected deny",
        "expected findings missing from t.payments.cap",
    ]
    assert results[3].error.startswith("MissingFact: ")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            "- {name: a, date: 2025-02-30, point: payment.authorize, facts: {}, expect: "
            "{outcome: allow}}",
            "[0] a.date",
            "not an ISO date",
        ),
        (
            "- {name: a, date: 2025-02-01, point: pay, facts: {}, expect: {outcome: allow}}",
            "[0] a.point",
            "unknown enforcement point",
        ),
        (
            "- {name: a, date: 2025-02-01, point: payment.authorize, facts: {}, expect: "
            "{outcome: maybe}}",
            "[0] a.expect.outcome",
            "one of allow",
        ),
        (
            "- {name: a, date: 2025-02-01, point: payment.authorize, facts: {x: {ratio: y}}, "
            "expect: {outcome: allow}}",
            "[0] a.facts",
            "not a decimal ratio",
        ),
        (
            "- {name: a, point: payment.authorize, facts: {}, expect: {outcome: allow}}",
            "[0] a.date",
            "is required",
        ),
        (
            "- {name: a, date: 2025-02-01, point: payment.authorize, facts: {}, expect: "
            "{outcome: allow}, extra: 1}",
            "[0] a",
            "unknown key(s): extra",
        ),
    ],
)
def test_a_bad_scenario_file_names_the_file_the_scenario_and_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    """Scenario files are validated like rulebooks: file, scenario and key in the message."""
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n", "utf-8")
    with pytest.raises(RulebookError) as caught:
        load_scenarios(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_json_values_are_exact_and_floats_are_refused() -> None:
    """Decimals become strings, ints and bools stay themselves, dates become ISO, floats fail."""
    document = {
        "ratio": Decimal("0.0013"),
        "amount": 5000,
        "flag": True,
        "on": date(2019, 9, 14),
        "outcome": Outcome.step_up,
        "items": (1, "a"),
        "none": None,
    }
    assert json_value(document) == {
        "ratio": "0.0013",
        "amount": 5000,
        "flag": True,
        "on": "2019-09-14",
        "outcome": "step_up",
        "items": [1, "a"],
        "none": None,
    }
    assert canonical_json({"b": 1, "a": "中"}) == '{"a":"中","b":1}'
    with pytest.raises(UnencodableValue, match="float"):
        json_value({"amount": 12.5})
    with pytest.raises(UnencodableValue, match="finite"):
        json_value(Decimal("Infinity"))


def test_the_rulebook_is_chosen_by_configuration() -> None:
    """TIANPING_RULEBOOK and TIANPING_RULEBOOK_OVERLAYS choose the rulebook, with defaults."""
    assert rules_settings({}) == RulesSettings("cn", ())
    assert rules_settings({"TIANPING_RULEBOOK": " eu "}) == RulesSettings("eu", ())
    chosen = rules_settings({"TIANPING_RULEBOOK": "cn", "TIANPING_RULEBOOK_OVERLAYS": "a, b"})
    assert chosen == RulesSettings("cn", ("a", "b"))
    assert chosen.label == "cn+a+b"
    with pytest.raises(RulebookError, match="stray comma"):
        rules_settings({"TIANPING_RULEBOOK_OVERLAYS": "a,,b"})
    assert parse_label("cn+interest-cap-15-4") == ("cn", ("interest-cap-15-4",))
    assert parse_label("eu") == ("eu", ())
    with pytest.raises(RulebookError, match="a label is NAME"):
        parse_label("cn++x")


def test_facts_mappings_are_bounded() -> None:
    """A facts mapping with too many entries or a bad name is refused."""
    with pytest.raises(FactError, match="at most 200 facts"):
        convert_facts({f"f{i}": "1" for i in range(201)})
    with pytest.raises(FactError, match="a fact name is 1 to 64"):
        convert_facts({"": "1"})
    assert convert_facts({"amount": {"EUR": "1.00"}}) == {"amount": 100}
