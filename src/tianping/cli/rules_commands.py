"""`tianping rules`: list, show, explain, check, diff and document the rulebooks.

    tianping rules list [--point P] [--rulebook NAME] [--overlay NAME ...] [--json]
    tianping rules show RULE_ID [--rulebook NAME] [--overlay NAME ...] [--json]
    tianping rules explain DECISION_ID [--json]
    tianping rules check SCENARIO_FILE [--rulebook NAME] [--overlay NAME ...] [--json]
    tianping rules diff BASE [OTHER] [--rulebook NAME] [--overlay NAME ...] [--json]
    tianping rules reference [--format md|html] [--output FILE] [--rulebook NAME] [--overlay ...]

Without `--rulebook`, commands use the configured rulebook (`TIANPING_RULEBOOK`, default `cn`)
with its configured overlays (`TIANPING_RULEBOOK_OVERLAYS`); `--overlay` replaces the configured
overlays. A rulebook may also be written as a label, `cn+interest-cap-15-4`. Only `explain`
touches the database: every other command reads the rulebook files alone.

Errors follow the CLI's table: an unknown rule, enforcement point or decision exits 3; a bad
rulebook, overlay, scenario file or fact exits 2; a scenario that fails its expectation makes
`check` exit 1 after printing every result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tianping.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    cell,
    console,
    emit_json,
    parse_id_option,
    state_of,
)
from tianping.rules.config import cached_rulebook, parse_label, rules_settings
from tianping.rules.documents import (
    diff_document,
    json_value,
    parameter_document,
    rule_document,
    rule_prose,
    rule_summary,
)
from tianping.rules.errors import RulesError, UnknownPoint, UnknownRule
from tianping.rules.model import Outcome
from tianping.rules.reference import reference_html, reference_markdown
from tianping.rules.rulebook import Rulebook, diff, rule_source
from tianping.rules.scenarios import (
    Scenario,
    ScenarioResult,
    ScenarioRunner,
    load_scenarios,
    rulebook_of_scenario_file,
)
from tianping.rules.service import DecisionNotFound, RulesService

app = typer.Typer(
    help="Rulebooks: list, show and explain rules and decisions; check, diff, document.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]
RulebookOption = Annotated[
    str | None,
    typer.Option(
        "--rulebook",
        metavar="NAME",
        help="Rulebook name, directory or label (default: $TIANPING_RULEBOOK, else cn).",
    ),
]
OverlayOption = Annotated[
    list[str] | None,
    typer.Option(
        "--overlay",
        metavar="NAME",
        help="Overlay to apply, in order; repeat for several "
        "(default: $TIANPING_RULEBOOK_OVERLAYS).",
    ),
]

_NOT_FOUND_ERRORS = (UnknownRule, UnknownPoint, DecisionNotFound)
_OUTCOME_STYLES = {
    Outcome.allow: "green",
    Outcome.report: "cyan",
    Outcome.confirm: "yellow",
    Outcome.step_up: "magenta",
    Outcome.deny: "bold red",
}


@contextmanager
def _rules_errors() -> Iterator[None]:
    """Turn the rules context's errors into the CLI's one-line errors and exit codes."""
    try:
        yield
    except RulesError as error:
        code = EXIT_NOT_FOUND if isinstance(error, _NOT_FOUND_ERRORS) else EXIT_USAGE
        raise CliError(error.message, code) from None


def _choose(rulebook: str | None, overlays: list[str] | None) -> tuple[str, tuple[str, ...]]:
    """The rulebook name and overlays the options choose (see the module docstring)."""
    settings = rules_settings()
    if rulebook is None:
        name, configured = settings.rulebook, settings.rulebook_overlays
    else:
        name, configured = parse_label(rulebook)
    if overlays:
        return name, (*(configured if rulebook is not None else ()), *overlays)
    return name, configured


def _load(rulebook: str | None, overlays: list[str] | None) -> Rulebook:
    name, chosen = _choose(rulebook, overlays)
    return cached_rulebook(name, chosen)


def _outcome_cell(outcome: Outcome | None) -> Any:
    if outcome is None:
        return cell("silent", "dim")
    return cell(outcome.name, _OUTCOME_STYLES[outcome])


# -- list and show -------------------------------------------------------------------------------


@app.command("list")
def list_rules(
    point: Annotated[
        str | None,
        typer.Option("--point", metavar="POINT", help="Only the rules at this enforcement point."),
    ] = None,
    rulebook: RulebookOption = None,
    overlay: OverlayOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the rules of a rulebook, with their enforcement points and citations."""
    with _rules_errors():
        loaded = _load(rulebook, overlay)
        specs = loaded.rules_at(point) if point else loaded.rules
    if as_json:
        emit_json(
            {
                "rulebook": loaded.label,
                "rulebook_hash": loaded.content_hash,
                "rules": [rule_summary(spec) for spec in specs],
            }
        )
        return
    table = Table(title=f"Rulebook {loaded.label} ({len(specs)} rules)")
    for column in ("rule", "point", "area", "title", "citation"):
        table.add_column(column)
    for spec in specs:
        table.add_row(
            cell(spec.id, "bold"),
            cell(spec.point),
            cell(spec.area),
            cell(spec.title),
            cell(spec.citation),
        )
    out = console()
    out.print(table)
    out.print(cell(f"content hash {loaded.content_hash}", "dim"))


@app.command("show")
def show_rule(
    rule_id: Annotated[str, typer.Argument(metavar="RULE_ID", help="The rule's id.")],
    rulebook: RulebookOption = None,
    overlay: OverlayOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one rule: its citation, prose, parameters with their dated history, and source."""
    with _rules_errors():
        loaded = _load(rulebook, overlay)
        spec = loaded.rule(rule_id)
    if as_json:
        emit_json(rule_document(loaded, spec))
        return
    out = console()
    out.print(cell(f"{spec.id}: {spec.title}", "bold"))
    out.print(cell(f"area {spec.area} · point {spec.point} · rulebook {loaded.label}"))
    out.print(cell(f"citation: {spec.citation}"))
    out.print(cell(f"facts read: {', '.join(spec.facts) or 'none'}"))
    if spec.description:
        out.print()
        out.print(cell(rule_prose(spec)))
    for name in sorted(spec.parameters):
        document = parameter_document(loaded.parameters[name])
        reference = document["reference"]
        cited = (reference["instrument"], reference["article"], reference["url"])
        out.print()
        out.print(cell(f"{name} ({document['unit']}, confidence {document['confidence']})", "bold"))
        out.print(cell(document["description"]))
        out.print(cell(f"reference: {', '.join(part for part in cited if part)}"))
        table = Table()
        table.add_column("from")
        table.add_column("value")
        for entry in document["history"]:
            table.add_row(cell(entry["from"]), cell(entry["display"]))
        out.print(table)
    source = rule_source(spec)
    if source:
        out.print()
        out.print(cell("source:", "bold"))
        out.print(cell(source.rstrip()))


# -- explain ------------------------------------------------------------------------------------


@app.command("explain")
def explain_decision(
    ctx: typer.Context,
    decision_id: Annotated[
        int,
        typer.Argument(
            parser=parse_id_option,
            metavar="DECISION_ID",
            help="The decision's id.",
            show_default=False,
        ),
    ],
    rulebook: RulebookOption = None,
    overlay: OverlayOption = None,
    as_json: JsonOption = False,
) -> None:
    """Explain a stored decision: its outcome, every rule asked, the parameters and command."""
    services = state_of(ctx).services()
    with _rules_errors():
        explanation = RulesService(services.ledger, _load(rulebook, overlay)).explain(decision_id)
    if as_json:
        emit_json(explanation.document())
        return
    decision = explanation.decision
    out = console()
    out.print(
        cell(f"decision {decision.decision_id}: ", "bold"),
        _outcome_cell(decision.outcome),
        sep="",
    )
    out.print(cell(f"{decision.point} on {decision.on.isoformat()}, chain record {decision.seq}"))
    version = "the configured rulebook" if explanation.same_rulebook else "another version"
    out.print(cell(f"rulebook {decision.rulebook} {decision.rulebook_hash} ({version})"))
    table = Table(title="Rules asked")
    for column in ("rule", "outcome", "title", "citation", "message"):
        table.add_column(column)
    for note in explanation.rules:
        message = f"{note.message_en}\n{note.message_zh}" if note.message_en else ""
        table.add_row(
            cell(note.rule_id, "bold"),
            _outcome_cell(note.outcome),
            cell(note.title),
            cell(note.citation),
            cell(message),
        )
    out.print(table)
    if decision.parameters:
        parameters = Table(title="Parameters used")
        parameters.add_column("parameter")
        parameters.add_column("value")
        for name, value in sorted(decision.parameters.items()):
            parameters.add_row(cell(name), cell(json_value(value)))
        out.print(parameters)
    out.print(cell(f"facts: {dict(decision.facts)}"))
    out.print(cell(f"command: {dict(decision.command)}"))


# -- check --------------------------------------------------------------------------------------


def _run_guarded(runner: ScenarioRunner, scenario: Scenario) -> ScenarioResult:
    """Run one scenario; a rule that raises anything but a rules error is reported as a failed
    scenario naming the exception, so one broken rule does not hide the other results."""
    try:
        return runner.run(scenario)
    except Exception as error:
        return ScenarioResult(scenario, error=f"{type(error).__name__}: {error}")


def _result_document(result: ScenarioResult) -> dict[str, Any]:
    scenario = result.scenario
    decision = result.decision
    return {
        "name": scenario.name,
        "date": scenario.on.isoformat(),
        "point": scenario.point,
        "overlays": list(scenario.overlays),
        "passed": result.passed,
        "expected_outcome": scenario.expected_outcome.name,
        "expected_rules": sorted(scenario.expected_rules),
        "outcome": decision.outcome.name if decision else None,
        "rules": sorted(decision.rule_ids) if decision else [],
        "problems": result.problems,
        "error": result.error or None,
    }


@app.command("check")
def check_scenarios(
    scenario_file: Annotated[
        Path, typer.Argument(metavar="SCENARIO_FILE", help="A YAML file of scenarios.")
    ],
    rulebook: RulebookOption = None,
    overlay: OverlayOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a scenario file and print pass or fail per scenario (exit 1 on any failure).

    Without --rulebook, a file inside a rulebook's scenarios/ directory runs against that
    rulebook, and any other file against the configured one.
    """
    if not scenario_file.is_file():
        raise CliError(f"{scenario_file}: no such file")
    with _rules_errors():
        home = rulebook_of_scenario_file(scenario_file)
        if rulebook is None and home is not None:
            loaded = cached_rulebook(str(home), tuple(overlay or ()))
        else:
            loaded = _load(rulebook, overlay)
        scenarios = load_scenarios(scenario_file)
    runner = ScenarioRunner(loaded)
    results = [_run_guarded(runner, scenario) for scenario in scenarios]
    failed = [result for result in results if not result.passed]
    if as_json:
        emit_json(
            {
                "file": str(scenario_file),
                "rulebook": loaded.label,
                "rulebook_hash": loaded.content_hash,
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "scenarios": [_result_document(result) for result in results],
            }
        )
    else:
        table = Table(title=f"{scenario_file.name} against {loaded.label}")
        for column in ("result", "scenario", "date", "expected", "got"):
            table.add_column(column)
        for result in results:
            scenario = result.scenario
            got = result.decision.outcome.name if result.decision else "error"
            detail = "; ".join(result.problems) or result.error
            name = f"{scenario.name}\n  {detail}" if detail else scenario.name
            table.add_row(
                cell("pass", "green") if result.passed else cell("FAIL", "bold red"),
                cell(name),
                cell(scenario.on.isoformat()),
                cell(scenario.expected_outcome.name),
                cell(got),
            )
        out = console()
        out.print(table)
        out.print(cell(f"{len(results) - len(failed)} passed, {len(failed)} failed"))
    if failed:
        raise CliError(
            f"{len(failed)} of {len(results)} scenario(s) in {scenario_file} failed", EXIT_FAILED
        )


# -- diff ---------------------------------------------------------------------------------------


@app.command("diff")
def diff_rulebooks(
    base: Annotated[
        str | None,
        typer.Argument(metavar="BASE", help="Base rulebook label, such as cn."),
    ] = None,
    other: Annotated[
        str | None,
        typer.Argument(metavar="OTHER", help="Label to compare, such as cn+interest-cap-15-4."),
    ] = None,
    rulebook: RulebookOption = None,
    overlay: OverlayOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every dated parameter value that differs between a base and an overlaid rulebook.

    `rules diff cn cn+interest-cap-15-4` compares two labels; `rules diff cn --overlay X` or
    `rules diff --rulebook cn --overlay X` compares a rulebook with itself under overlays.
    """
    with _rules_errors():
        if base is not None and other is not None:
            if overlay or rulebook:
                raise CliError("give two labels, or one rulebook and --overlay, not both")
            before, after = (
                cached_rulebook(*parse_label(base)),
                cached_rulebook(*parse_label(other)),
            )
        else:
            if not overlay:
                raise CliError("name the overlay to compare: rules diff BASE OTHER, or --overlay")
            name, base_overlays = parse_label(base or rulebook or rules_settings().rulebook)
            before = cached_rulebook(name, base_overlays)
            after = cached_rulebook(name, (*base_overlays, *overlay))
    changes = diff(before, after)
    document = diff_document(before, after, changes)
    if as_json:
        emit_json(document)
        return
    table = Table(title=f"{before.label} -> {after.label} ({len(changes)} change(s))")
    for column in ("parameter", "from", "before", "after"):
        table.add_column(column)
    for change in document["changes"]:
        table.add_row(
            cell(change["parameter"], "bold"),
            cell(change["date"]),
            cell(change["before_display"]),
            cell(change["after_display"], "yellow"),
        )
    console().print(table)


# -- reference ----------------------------------------------------------------------------------


@app.command("reference")
def reference(
    output_format: Annotated[
        str,
        typer.Option("--format", metavar="md|html", help="Markdown (md, default) or HTML."),
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option("--output", metavar="FILE", help="Write to FILE instead of stdout."),
    ] = None,
    rulebook: RulebookOption = None,
    overlay: OverlayOption = None,
) -> None:
    """Generate the reference page: every rule with its citation, enforcement point and
    parameters, each with its dated history, reference and confidence."""
    if output_format not in ("md", "html"):
        raise CliError(f"--format is md or html, not {output_format!r}")
    with _rules_errors():
        loaded = _load(rulebook, overlay)
    page = reference_markdown(loaded) if output_format == "md" else reference_html(loaded)
    if output is None:
        typer.echo(page, nl=False)
        return
    output.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {output} ({loaded.label}, {len(loaded.rules)} rules)", err=True)
