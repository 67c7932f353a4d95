"""The rules' HTTP routes, under /v1/rules: the configured rulebook, read-only.

Operators and supervisors (scope `rules:read`) can list and show the rules, explain a stored
decision, see what an overlay would change, read the generated reference page, and check facts
against the rulebook without storing anything (an analyst's what-if; `POST` only because the
facts travel as a body). Nothing here writes: decisions are recorded by the product code that
enforces them, through `tianping.rules.service.RulesService`.

The rulebook is the one configured for the process (`TIANPING_RULEBOOK` and
`TIANPING_RULEBOOK_OVERLAYS`, see `tianping.rules.config`), loaded once and shared: a request
never names rulebook files. Errors of the rules context become problem documents here, by their
`code`: an unknown rule, point, decision or overlay is a 404, a missing or malformed fact a 422,
and a configured rulebook that does not load a 500 (`rulebook_invalid`), since its files are the
server's, not the client's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from tianping.api.ledger_routes import ServicesDependency
from tianping.api.problems import PROBLEMS, ApiProblem
from tianping.api.schemas import LedgerIdPath, ProblemDetails
from tianping.api.security import require
from tianping.rules.config import cached_rulebook, configured_rulebook
from tianping.rules.documents import (
    decision_document,
    diff_document,
    rule_document,
    rule_summary,
)
from tianping.rules.errors import RulesError
from tianping.rules.reference import reference_html, reference_markdown
from tianping.rules.rulebook import Rulebook, diff
from tianping.rules.scenarios import FACT_NAME_LENGTH_MAX, FACTS_MAX, convert_facts
from tianping.rules.service import RulesService

__all__ = ["router"]

logger = logging.getLogger(__name__)

_PROBLEM_RESPONSE: Final[dict[str, Any]] = {
    "model": ProblemDetails,
    "content": {"application/problem+json": {}},
    "description": "A problem (RFC 9457), identified by its `code`.",
}

router = APIRouter(
    prefix="/v1/rules",
    tags=["rules"],
    responses={"4XX": _PROBLEM_RESPONSE, "5XX": _PROBLEM_RESPONSE},
)

_READ: Final = [Depends(require("rules:read"))]

OVERLAYS_PER_REQUEST_MAX = 8
NAME_LENGTH_MAX = 80
FACT_TEXT_LENGTH_MAX = 256
FACT_LIST_LENGTH_MAX = 64
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_LENGTH_MAX)]
FactName = Annotated[str, StringConstraints(min_length=1, max_length=FACT_NAME_LENGTH_MAX)]
FactText = Annotated[str, StringConstraints(max_length=FACT_TEXT_LENGTH_MAX)]
FactInteger = Annotated[StrictInt, Field(ge=_INT64_MIN, le=_INT64_MAX)]
# {"EUR": "50.00"}, {"ratio": "0.95"} or {"text": "123"}: one tag and its text.
TaggedFact = Annotated[dict[Name, FactText], Field(min_length=1, max_length=1)]
FactList = Annotated[list[FactText], Field(max_length=FACT_LIST_LENGTH_MAX)]
FactValue = StrictBool | FactInteger | FactText | TaggedFact | FactList


class CheckRequest(BaseModel):
    """Facts to evaluate at an enforcement point on a date, as a scenario file writes them.

    Money is `{"EUR": "50.00"}` (or integer minor units), ratios `{"ratio": "0.0013"}`,
    booleans and integers as JSON or as text; a JSON float is refused. `overlays` are applied
    to the configured rulebook first, for a what-if.
    """

    model_config = ConfigDict(extra="forbid")

    point: Name
    date: dt.date
    facts: Annotated[dict[FactName, FactValue], Field(max_length=FACTS_MAX)]
    overlays: Annotated[list[Name], Field(max_length=OVERLAYS_PER_REQUEST_MAX)] = []


@contextmanager
def _rules_problems() -> Iterator[None]:
    """Raise the rules context's errors as problems with the same code."""
    try:
        yield
    except RulesError as error:
        if error.code not in PROBLEMS:
            # A rules error without a mapping is a programming error here, not the client's.
            logger.error("rules error code %r has no problem mapping", error.code, exc_info=error)
            raise
        raise ApiProblem(error.code, error.message) from None


def _rulebook() -> Rulebook:
    with _rules_problems():
        return configured_rulebook()


def _with_overlays(base: Rulebook, overlays: list[str]) -> Rulebook:
    """The configured rulebook under the requested overlays; an unknown overlay is a 404."""
    known = (
        {path.stem for path in (base.directory / "overlays").glob("*.yaml")}
        if base.directory is not None
        else set()
    )
    if any(name not in known for name in overlays):
        raise ApiProblem(
            "overlay_not_found",
            f"rulebook {base.name} has no overlay of a name requested (known: "
            f"{', '.join(sorted(known)) or 'none'})",
        )
    if not overlays:
        return base
    # Loaded through the per-process cache, so repeated what-ifs cost one load each; the names
    # are checked against the rulebook's own files above, which bounds the cache's keys.
    with _rules_problems():
        return cached_rulebook(str(base.directory), (*base.overlays, *overlays))


@router.get("", dependencies=_READ)
def list_rules(
    point: Annotated[
        str | None, Query(max_length=NAME_LENGTH_MAX, description="Only this enforcement point.")
    ] = None,
) -> dict[str, Any]:
    """The rules of the configured rulebook, with their points, citations and parameters."""
    rulebook = _rulebook()
    with _rules_problems():
        specs = rulebook.rules_at(point) if point else rulebook.rules
    return {
        "rulebook": rulebook.label,
        "rulebook_hash": rulebook.content_hash,
        "rules": [rule_summary(spec) for spec in specs],
    }


@router.get("/diff", dependencies=_READ)
def diff_overlay(
    overlay: Annotated[
        list[Name],
        Query(
            min_length=1,
            max_length=OVERLAYS_PER_REQUEST_MAX,
            description="Overlay to apply; repeat for several, applied in order.",
        ),
    ],
) -> dict[str, Any]:
    """Every dated parameter value the overlays change in the configured rulebook."""
    base = _rulebook()
    other = _with_overlays(base, overlay)
    return diff_document(base, other, diff(base, other))


@router.get(
    "/reference",
    dependencies=_READ,
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}}},
)
def reference(
    output_format: Annotated[
        Literal["md", "html"], Query(alias="format", description="Markdown (md) or HTML.")
    ] = "md",
) -> Response:
    """The generated reference page: every rule with its citation, point and parameters."""
    rulebook = _rulebook()
    if output_format == "html":
        return Response(reference_html(rulebook), media_type="text/html; charset=utf-8")
    return Response(reference_markdown(rulebook), media_type="text/markdown; charset=utf-8")


@router.post("/check", dependencies=_READ)
def check(request: CheckRequest) -> dict[str, Any]:
    """Evaluate facts at an enforcement point on a date, without storing anything."""
    rulebook = _with_overlays(_rulebook(), request.overlays)
    with _rules_problems():
        facts = convert_facts(request.facts)
        try:
            decision = rulebook.evaluate(request.point, facts, request.date)
        except (TypeError, ValueError, ArithmeticError) as error:
            # A rule compared or added a fact of the wrong type (text where it counts money):
            # the client's facts do not fit the rules, which is their error to fix.
            logger.info("facts of the wrong type for %s: %r", request.point, error)
            raise ApiProblem(
                "fact_invalid",
                f"a fact has a type the rules at {request.point} cannot use "
                f"({type(error).__name__}); see GET /v1/rules?point={request.point} for the "
                "facts each rule reads",
            ) from None
    return decision_document(decision)


@router.get("/decisions/{decision_id}", dependencies=_READ)
def explain_decision(decision_id: LedgerIdPath, services: ServicesDependency) -> dict[str, Any]:
    """A stored decision with every rule asked, its citation and what it said."""
    service = RulesService(services.ledger, _rulebook())
    with _rules_problems():
        return service.explain(decision_id).document()


@router.get("/{rule_id}", dependencies=_READ)
def show_rule(
    rule_id: Annotated[str, Path(max_length=NAME_LENGTH_MAX, description="The rule's id.")],
) -> dict[str, Any]:
    """One rule with its prose, parameters (dated history, references) and source."""
    rulebook = _rulebook()
    with _rules_problems():
        spec = rulebook.rule(rule_id)
    return rule_document(rulebook, spec)
