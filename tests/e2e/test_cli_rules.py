"""`tianping rules`, driven as a user would (Typer's CliRunner; SQLite in tmp_path for explain).

Every query command answers as a Rich table or, with --json, one JSON document; every failure
is one `error:` line on stderr with exit code 2 (bad input), 1 (a failed check) or 3 (not found).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tianping.bootstrap import build_services
from tianping.cli.main import app
from tianping.config import load_settings
from tianping.rules.rulebook import RULEBOOKS_DIR, load_rulebook
from tianping.rules.service import RulesService

Invoke = Callable[..., Result]
EU_SCENARIOS = RULEBOOKS_DIR / "eu" / "scenarios"


# No TIANPING_* settings from outside, and an empty working directory (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def invoke(data_dir: Path) -> Invoke:
    """Run `tianping --data-dir <tmp> rules ARGS...` in-process."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(data_dir), "rules", *args])

    return run


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_error_line(result: Result, exit_code: int) -> str:
    """The failure is exactly one `error:` line on stderr with the exit code, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_list_shows_the_rules_of_the_chosen_rulebook(invoke: Invoke) -> None:
    """`rules list` prints every rule with point and citation; --point filters; --json agrees."""
    result = invoke("list", "--rulebook", "eu")
    assert result.exit_code == 0, result.output
    assert "eu.payments.tra_exemption" in result.stdout
    assert "RTS (EU) 2018/389 Art. 11" in result.stdout
    document = as_json(invoke("list", "--rulebook", "eu", "--point", "loan.originate", "--json"))
    assert document["rulebook"] == "eu"
    assert len(document["rulebook_hash"]) == 64
    assert [rule["id"] for rule in document["rules"]] == [
        "eu.data.automated_decision_basis",
        "eu.data.automated_decision_special_categories",
        "eu.lending.automated_assessment_review",
    ]
    assert {rule["point"] for rule in document["rules"]} == {"loan.originate"}


def test_the_rulebook_comes_from_configuration(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --rulebook, TIANPING_RULEBOOK and TIANPING_RULEBOOK_OVERLAYS choose; the default
    is cn."""
    assert as_json(invoke("list", "--json"))["rulebook"] == "cn"
    monkeypatch.setenv("TIANPING_RULEBOOK", "eu")
    monkeypatch.setenv("TIANPING_RULEBOOK_OVERLAYS", "attempts-3")
    document = as_json(invoke("list", "--json"))
    assert document["rulebook"] == "eu+attempts-3"
    assert document["rulebook_hash"] == load_rulebook("eu", ("attempts-3",)).content_hash
    # --overlay replaces the configured overlays.
    assert as_json(invoke("list", "--overlay", "contactless-100", "--json"))["rulebook"] == (
        "eu+contactless-100"
    )


def test_show_gives_citation_history_references_and_source(invoke: Invoke) -> None:
    """`rules show` prints the rule's prose, each parameter's dated values and its source."""
    result = invoke("show", "eu.payments.contactless_exemption", "--rulebook", "eu")
    assert result.exit_code == 0, result.output
    for expected in (
        "RTS (EU) 2018/389 Art. 11",
        "payments.contactless_single_max (EUR, confidence H)",
        "2019-09-14",
        "50.00 EUR",
        "https://www.eba.europa.eu/single-rule-book-qa/qna/view/publicId/2018_4225",
        "def contactless_exemption(ctx: RuleContext)",
    ):
        assert expected in result.stdout, expected
    overlaid = as_json(
        invoke(
            "show",
            "eu.payments.contactless_exemption",
            "--rulebook",
            "eu+contactless-100",
            "--json",
        )
    )
    single = next(
        p for p in overlaid["parameters"] if p["name"] == "payments.contactless_single_max"
    )
    assert single["history"] == [
        {"from": "2019-09-14", "value": 5000, "display": "50.00 EUR"},
        {"from": "2027-01-01", "value": 10000, "display": "100.00 EUR"},
    ]
    assert single["reference"]["article"] == "Art. 11(a)"
    assert single["confidence"] == "H"
    assert overlaid["description"].startswith("A provider may skip strong customer")


def test_unknown_names_are_one_error_line(invoke: Invoke) -> None:
    """Unknown rules and points exit 3; unknown overlays and bad labels exit 2."""
    assert "no rule has id 'eu.nope'" in one_error_line(
        invoke("show", "eu.nope", "--rulebook", "eu"), 3
    )
    assert "enforcement point" in one_error_line(
        invoke("list", "--rulebook", "eu", "--point", "pay.nope"), 3
    )
    assert "no such overlay" in one_error_line(invoke("list", "--rulebook", "eu+nope"), 2)
    assert "no such rulebook" in one_error_line(invoke("list", "--rulebook", "xx"), 2)
    assert "a label is NAME" in one_error_line(invoke("diff", "eu", "eu++x"), 2)


def test_check_runs_a_scenario_file_and_passes(invoke: Invoke) -> None:
    """A shipped scenario file runs against its own rulebook and every scenario passes."""
    path = EU_SCENARIOS / "psd2_contactless.yaml"
    result = invoke("check", str(path))
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout
    assert "0 failed" in result.stdout
    document = as_json(invoke("check", str(path), "--json"))
    assert document["rulebook"] == "eu"
    assert document["failed"] == 0
    assert document["passed"] == len(document["scenarios"]) >= 10
    assert all(item["passed"] for item in document["scenarios"])


def test_check_reports_each_failure_and_exits_1(invoke: Invoke, tmp_path: Path) -> None:
    """A scenario whose expectation is wrong is printed as FAIL with the difference, and the
    command exits 1 after printing every result."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        """
- name: a right expectation
  date: 2026-03-01
  point: payment.authorize
  facts: {auth_factors: "2", failed_attempts: "5"}
  expect: {outcome: deny, rules: [eu.payments.failed_attempts_block]}
- name: a wrong expectation
  date: 2026-03-01
  point: payment.authorize
  facts: {auth_factors: "2", failed_attempts: "4"}
  expect: {outcome: deny, rules: [eu.payments.failed_attempts_block]}
- name: a missing fact
  date: 2026-03-01
  point: payment.authorize
  facts: {auth_factors: "2"}
  expect: {outcome: allow}
""",
        "utf-8",
    )
    result = invoke("check", str(path), "--rulebook", "eu")
    assert "2 of 3 scenario(s)" in one_error_line(result, 1)
    assert result.stdout.count("FAIL") == 2
    assert "outcome allow, expected deny" in result.stdout
    assert "MissingFact" in result.stdout
    document = json.loads(invoke("check", str(path), "--rulebook", "eu", "--json").stdout)
    assert [item["passed"] for item in document["scenarios"]] == [True, False, False]
    assert document["scenarios"][1]["problems"] == [
        "outcome allow, expected deny",
        "expected findings missing from eu.payments.failed_attempts_block",
    ]


def test_check_refuses_a_bad_or_missing_file(invoke: Invoke, tmp_path: Path) -> None:
    """A scenario file that does not parse, or does not exist, is one error line with exit 2."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "- {name: a, date: 2026-02-30, point: payment.authorize, facts: {},\n"
        "   expect: {outcome: allow}}\n",
        "utf-8",
    )
    assert "[0] a.date" in one_error_line(invoke("check", str(path), "--rulebook", "eu"), 2)
    assert "no such file" in one_error_line(invoke("check", str(tmp_path / "none.yaml")), 2)


def test_diff_shows_exactly_what_an_overlay_changes(invoke: Invoke) -> None:
    """`rules diff BASE OTHER` and `--overlay` list each changed parameter and date."""
    result = invoke("diff", "eu", "eu+contactless-100")
    assert result.exit_code == 0, result.output
    assert "payments.contactless_single_max" in result.stdout
    assert "100.00 EUR" in result.stdout
    document = as_json(invoke("diff", "--rulebook", "eu", "--overlay", "attempts-3", "--json"))
    assert document["base"] == "eu"
    assert document["other"] == "eu+attempts-3"
    assert document["changes"] == [
        {
            "parameter": "payments.sca_failed_attempts_max",
            "date": "2027-01-01",
            "before": 5,
            "after": 3,
            "before_display": "5",
            "after_display": "3",
        }
    ]
    same = as_json(invoke("diff", "eu", "--overlay", "attempts-3", "--json"))
    assert same["changes"] == document["changes"]
    assert "name the overlay" in one_error_line(invoke("diff", "--rulebook", "eu"), 2)


def test_diff_of_the_cn_interest_cap_overlay(invoke: Invoke) -> None:
    """The issue's example, `rules diff cn cn+interest-cap-15-4`, lists at least one change."""
    document = as_json(invoke("diff", "cn", "cn+interest-cap-15-4", "--json"))
    assert document["changes"], document
    assert document["base_hash"] != document["other_hash"]


def test_reference_is_generated_in_markdown_and_html(invoke: Invoke, tmp_path: Path) -> None:
    """The reference page lists every rule with citation, point and parameter history."""
    markdown = invoke("reference", "--rulebook", "eu")
    assert markdown.exit_code == 0, markdown.output
    rulebook = load_rulebook("eu")
    assert rulebook.content_hash in markdown.stdout
    for spec in rulebook.rules:
        assert f"### {spec.id}" in markdown.stdout
        assert spec.citation in markdown.stdout
    assert "| 2019-09-14 | 150.00 EUR |" in markdown.stdout
    assert "Confidence: M (medium)" in markdown.stdout
    output = tmp_path / "eu.html"
    result = invoke("reference", "--rulebook", "eu", "--format", "html", "--output", str(output))
    assert result.exit_code == 0, result.output
    page = output.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert all(f'id="{spec.id}"' in page for spec in rulebook.rules)
    assert "--format is md or html" in one_error_line(invoke("reference", "--format", "pdf"), 2)


def test_explain_reads_a_stored_decision(invoke: Invoke, data_dir: Path) -> None:
    """`rules explain` prints a decision recorded by the service, with each rule's citation."""
    assert CliRunner().invoke(app, ["--data-dir", str(data_dir), "db", "init"]).exit_code == 0
    services = build_services(load_settings(data_dir=data_dir), pool_size=1)
    try:
        rules = RulesService(services.ledger, load_rulebook("eu"))
        decision = rules.decide(
            "payment.authorize",
            {"auth_factors": 1, "failed_attempts": 5},
            date(2026, 3, 1),
            {"payment_id": "p-9", "amount": 4500},
        )
    finally:
        services.close()
    result = invoke("explain", str(decision.decision_id), "--rulebook", "eu")
    assert result.exit_code == 0, result.output
    for expected in (
        f"decision {decision.decision_id}: deny",
        "eu.payments.failed_attempts_block",
        "RTS (EU) 2018/389 Art. 4(3)(d)",
        "已冻结",
        "payments.sca_failed_attempts_max",
        "the configured rulebook",
    ):
        assert expected in result.stdout, expected
    document = as_json(invoke("explain", str(decision.decision_id), "--rulebook", "eu", "--json"))
    assert document["outcome"] == "deny"
    assert document["seq"] == decision.seq
    assert document["command"] == {"payment_id": "p-9", "amount": 4500}
    assert [rule["rule_id"] for rule in document["rules"]] == list(decision.evaluated)
    assert "no decision has id 77" in one_error_line(invoke("explain", "77", "--rulebook", "eu"), 3)
    one_error_line(invoke("explain", "abc"), 2)


def test_explain_refuses_an_uninitialised_database(invoke: Invoke) -> None:
    """Explaining needs the database; without one the command says how to make it."""
    assert "tianping db init" in one_error_line(invoke("explain", "5", "--rulebook", "eu"), 1)
