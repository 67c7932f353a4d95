"""End-to-end tests of the rules API (/v1/rules), on SQLite and on PostgreSQL.

Each test drives the API through FastAPI's TestClient over services built by the composition
root on a fresh database, with the `eu` rulebook configured through the environment as an
operator would configure it. Nothing under /v1/rules writes: the tests check that the chain's
head did not move, and the services fixture verifies the chain when each test ends.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ledger_support import ManualClock
from tianping.api.app import create_app
from tianping.api.problems import PROBLEM_MEDIA_TYPE
from tianping.api.security import DevelopmentAuthenticator, Principal, route_declarations
from tianping.bootstrap import Services, build_services
from tianping.config import load_settings
from tianping.ledger.audit import verify_chain
from tianping.rules.rulebook import RULEBOOKS_DIR, load_rulebook
from tianping.rules.service import RulesService

with warnings.catch_warnings():
    # As in test_api_ledger.py: Starlette's TestClient warns about the httpx package it finds.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

RULES = "/v1/rules"
BLOCKED = {"auth_factors": 2, "failed_attempts": 5}


@dataclass
class Api:
    client: TestClient
    services: Services

    def get(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.client.get(RULES + path, **kwargs)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.client.post(RULES + path, json=body)

    def head_seq(self) -> int:
        with self.services.ledger.read() as store:
            return store.read_head().seq


@pytest.fixture(autouse=True)
def eu_rulebook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process enforces the `eu` rulebook, chosen by configuration."""
    monkeypatch.setenv("TIANPING_RULEBOOK", "eu")
    monkeypatch.delenv("TIANPING_RULEBOOK_OVERLAYS", raising=False)


@pytest.fixture
def services(database_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Services]:
    """Services on a fresh, migrated database; the chain is verified when the test ends."""
    built = build_services(
        load_settings(database_url=database_url, data_dir=tmp_path), migrate=True, clock=clock
    )
    try:
        yield built
        with built.ledger.read(snapshot=True) as store:
            chain = verify_chain(store)
    finally:
        built.close()
    assert chain.ok, chain.breaks


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    app = create_app(services, authenticator=DevelopmentAuthenticator())
    with TestClient(app) as client:
        yield Api(client, services)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem document with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    document: dict[str, Any] = response.json()
    assert document["code"] == code
    return document


def test_every_rules_route_needs_the_rules_read_scope(api: Api) -> None:
    """Each /v1/rules route declares exactly the `rules:read` scope."""
    declared = [
        route for route in route_declarations(api.client.app) if route.path.startswith(RULES)
    ]
    assert {route.path for route in declared} == {
        RULES,
        f"{RULES}/diff",
        f"{RULES}/reference",
        f"{RULES}/check",
        f"{RULES}/decisions/{{decision_id}}",
        f"{RULES}/{{rule_id}}",
    }
    assert all(route.scopes == ("rules:read",) for route in declared)


def test_list_and_show_the_configured_rulebook(api: Api) -> None:
    """GET /v1/rules lists the configured rulebook's rules; GET /v1/rules/{id} shows one."""
    listing = api.get()
    assert listing.status_code == 200
    assert listing.json()["rulebook"] == "eu"
    assert listing.json()["rulebook_hash"] == load_rulebook("eu").content_hash
    assert len(listing.json()["rules"]) == 8
    at_loan = api.get(params={"point": "loan.originate"}).json()["rules"]
    assert {rule["point"] for rule in at_loan} == {"loan.originate"}
    assert len(at_loan) == 3
    problem(api.get(params={"point": "pay.nope"}), 404, "enforcement_point_not_found")
    shown = api.get("/eu.payments.tra_exemption").json()
    assert shown["citation"] == "RTS (EU) 2018/389 Art. 18 and Annex"
    rates = {p["name"]: p for p in shown["parameters"]}
    assert rates["payments.tra_card_fraud_rate_band_1"]["history"] == [
        {"from": "2019-09-14", "value": "0.0013", "display": "0.0013"}
    ]
    assert "def tra_exemption" in shown["source"]
    problem(api.get("/eu.nope"), 404, "rule_not_found")


def test_check_evaluates_facts_without_storing_anything(api: Api) -> None:
    """POST /v1/rules/check answers the decision for the facts, and writes nothing."""
    head = api.head_seq()
    body = {
        "point": "payment.authorize",
        "date": "2026-03-01",
        "facts": {
            "auth_factors": 1,
            "failed_attempts": 0,
            "sca_exemption": "contactless",
            "channel": "contactless",
            "amount": {"EUR": "50.01"},
            "sca_cumulative_since_last": {"EUR": "0.00"},
        },
    }
    stepped_up = api.post("/check", body)
    assert stepped_up.status_code == 200, stepped_up.text
    document = stepped_up.json()
    assert document["outcome"] == "step_up"
    assert document["allowed"] is False
    assert document["rule_ids"] == ["eu.payments.contactless_exemption"]
    assert document["parameters"]["payments.contactless_single_max"] == 5000
    assert "EUR 50.01" in document["findings"][0]["message_en"]
    assert document["findings"][0]["message_zh"]
    # The same payment under the what-if overlay, on a date the overlay covers, is exempt.
    body_overlaid = {**body, "date": "2027-01-01", "overlays": ["contactless-100"]}
    overlaid = api.post("/check", body_overlaid).json()
    assert (overlaid["outcome"], overlaid["rulebook"]) == ("allow", "eu+contactless-100")
    # Text forms of the scenario files are accepted too.
    as_text = {**body, "facts": {**body["facts"], "auth_factors": "2", "failed_attempts": "0"}}
    assert api.post("/check", as_text).json()["outcome"] == "allow"
    assert api.head_seq() == head


@pytest.mark.parametrize(
    ("facts", "status", "code"),
    [
        pytest.param(
            {"auth_factors": 1.0, "failed_attempts": 0}, 422, "invalid_request", id="float"
        ),
        pytest.param({"auth_factors": 1}, 422, "fact_missing", id="missing"),
        pytest.param(
            {"auth_factors": 1, "failed_attempts": 0, "amount": {"ratio": "x"}},
            422,
            "fact_invalid",
            id="bad-tag-value",
        ),
        pytest.param({"auth_factors": "x", "failed_attempts": 0}, 422, "fact_invalid", id="type"),
        pytest.param({f"f{i}": 1 for i in range(201)}, 422, "invalid_request", id="too-many-facts"),
    ],
)
def test_check_refuses_facts_that_do_not_fit(
    api: Api, facts: dict[str, Any], status: int, code: str
) -> None:
    """Floats, missing facts, bad tags and wrongly typed facts are problems, not 500s."""
    body = {"point": "payment.authorize", "date": "2026-03-01", "facts": facts}
    document = problem(api.post("/check", body), status, code)
    assert "x" not in document["detail"].split("'")


def test_check_refuses_unknown_points_and_overlays(api: Api) -> None:
    """An unknown enforcement point or overlay in a check is a 404."""
    body = {"point": "pay.nope", "date": "2026-03-01", "facts": {}}
    problem(api.post("/check", body), 404, "enforcement_point_not_found")
    body = {"point": "payment.authorize", "date": "2026-03-01", "facts": {}, "overlays": ["x"]}
    assert "attempts-3" in problem(api.post("/check", body), 404, "overlay_not_found")["detail"]


def test_diff_lists_what_overlays_change(api: Api) -> None:
    """GET /v1/rules/diff?overlay=... lists each changed parameter and date, in order given."""
    one = api.get("/diff", params={"overlay": "attempts-3"}).json()
    assert (one["base"], one["other"]) == ("eu", "eu+attempts-3")
    assert [(c["parameter"], c["date"], c["before"], c["after"]) for c in one["changes"]] == [
        ("payments.sca_failed_attempts_max", "2027-01-01", 5, 3)
    ]
    both = api.get("/diff", params=[("overlay", "attempts-3"), ("overlay", "contactless-100")])
    assert len(both.json()["changes"]) == 3
    problem(api.get("/diff", params={"overlay": "nope"}), 404, "overlay_not_found")
    problem(api.get("/diff"), 400, "invalid_query")


def test_reference_page_in_markdown_and_html(api: Api) -> None:
    """GET /v1/rules/reference serves the generated page as Markdown, or HTML on request."""
    markdown = api.get("/reference")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "# Rulebook `eu`" in markdown.text
    assert "### eu.lending.automated_assessment_review" in markdown.text
    page = api.get("/reference", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="eu.payments.sca_required"' in page.text
    problem(api.get("/reference", params={"format": "pdf"}), 400, "invalid_query")


def test_explain_a_stored_decision(api: Api) -> None:
    """GET /v1/rules/decisions/{id} explains a recorded decision with each rule's citation."""
    rules = RulesService(api.services.ledger, load_rulebook("eu"))
    decision = rules.decide("payment.authorize", BLOCKED, date(2026, 3, 1), {"payment": "p-1"})
    response = api.get(f"/decisions/{decision.decision_id}")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["decision_id"] == str(decision.decision_id)
    assert document["outcome"] == "deny"
    assert document["same_rulebook"] is True
    assert document["seq"] == decision.seq
    block = next(
        r for r in document["rules"] if r["rule_id"] == "eu.payments.failed_attempts_block"
    )
    assert block["citation"] == "RTS (EU) 2018/389 Art. 4(3)(d)"
    assert block["outcome"] == "deny"
    problem(api.get("/decisions/987654321"), 404, "decision_not_found")
    problem(api.get("/decisions/not-an-id"), 400, "id_invalid")


class NoRulesAuthenticator:
    """A principal that may read the ledger but not the rules."""

    development_mode = False

    def authenticate(self, bearer_token: str | None) -> Principal | None:
        return Principal(subject="clerk", role="reader", scopes=frozenset({"ledger:read"}))


def test_a_principal_without_rules_read_is_forbidden(services: Services) -> None:
    """Without the `rules:read` scope every rules route answers 403."""
    app = create_app(services, authenticator=NoRulesAuthenticator())
    with TestClient(app) as client:
        problem(client.get(RULES), 403, "forbidden")
        problem(
            client.post(f"{RULES}/check", json={"point": "x", "date": "2026-01-01", "facts": {}}),
            403,
            "forbidden",
        )


def test_a_configured_rulebook_that_does_not_load_is_a_server_error(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A broken rulebook in the server's configuration answers 500 rulebook_invalid."""
    broken = tmp_path / "broken"
    (broken / "parameters").mkdir(parents=True)
    (broken / "parameters" / "p.yaml").write_text(
        "x.y: {description: d, unit: parsecs, reference: {instrument: i, article: a}, "
        "confidence: H, values: {2020-01-01: '1'}}\n",
        "utf-8",
    )
    (broken / "rules.py").write_text((RULEBOOKS_DIR / "eu" / "rules.py").read_text("utf-8"))
    monkeypatch.setenv("TIANPING_RULEBOOK", str(broken))
    document = problem(api.get(), 500, "rulebook_invalid")
    assert "x.y.unit" in document["detail"]
