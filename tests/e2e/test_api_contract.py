"""The API's contract, checked without a database: error codes, route scopes, schemas, OpenAPI.

These tests read the app's declarations rather than send requests, so they catch a route added
without a scope, an error code without a status (or with two), or an unbounded request field
the moment it is written.
"""

from __future__ import annotations

import ast
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from tianping import __version__
from tianping.api import problems
from tianping.api.app import create_app
from tianping.api.problems import PROBLEM_MEDIA_TYPE, PROBLEMS, ApiProblem
from tianping.api.schemas import ID_TEXT_PATTERN, CreateAccountsRequest, CreateTransfersRequest
from tianping.api.security import (
    PUBLIC_PATHS,
    SCOPES,
    DevelopmentAuthenticator,
    route_declarations,
)
from tianping.ledger.errors import LedgerError

API_SOURCE = Path(problems.__file__).parent
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


@pytest.fixture(scope="module")
def app() -> Any:
    # No services: the app builds them only at startup, which these tests never reach.
    return create_app(authenticator=DevelopmentAuthenticator())


# -- the problem table -------------------------------------------------------------------------


def _problem_table_keys() -> list[str]:
    """The keys of the PROBLEMS literal as written, duplicates included (a dict would hide them)."""
    tree = ast.parse((API_SOURCE / "problems.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "PROBLEMS"
            and isinstance(node.value, ast.Dict)
        ):
            return [
                key.value
                for key in node.value.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            ]
    raise AssertionError("PROBLEMS is no longer a dict literal in problems.py")


def test_each_problem_code_is_listed_once_with_one_error_status() -> None:
    keys = _problem_table_keys()
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert duplicates == [], f"codes listed twice (the later status silently wins): {duplicates}"
    assert sorted(keys) == sorted(PROBLEMS)
    for code, kind in PROBLEMS.items():
        assert SNAKE_CASE.fullmatch(code), code
        assert type(kind.status) is int and 400 <= kind.status <= 599, (code, kind)
        assert HTTPStatus(kind.status)  # a status HTTP defines
        assert kind.title and kind.title[0].isupper(), code


def test_every_ledger_error_has_a_problem_code() -> None:
    def subclasses(cls: type[LedgerError]) -> list[type[LedgerError]]:
        found = []
        for subclass in cls.__subclasses__():
            found.append(subclass)
            found.extend(subclasses(subclass))
        return found

    unmapped = [error.__name__ for error in subclasses(LedgerError) if error.code not in PROBLEMS]
    assert unmapped == []
    assert PROBLEMS["batch_too_large"].status == 413
    assert PROBLEMS["account_not_found"].status == 404
    assert PROBLEMS["history_not_enabled"].status == 409
    assert PROBLEMS["invalid_query"].status == 400


def _codes_raised_in_api_source() -> set[str]:
    """Every string literal passed as the code to `ApiProblem` or `problem_response`."""
    raised: set[str] = set()
    for path in API_SOURCE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            first = node.args[0]
            if name in {"ApiProblem", "problem_response"} and isinstance(first, ast.Constant):
                raised.add(first.value)
    return raised


def test_every_code_the_api_sends_is_in_the_table() -> None:
    raised = _codes_raised_in_api_source()
    assert {
        "unauthenticated",
        "forbidden",
        "transfer_not_found",
        "internal_error",
        "payload_too_large",
        "service_unavailable",
        "id_invalid",
        "amount_invalid",
    } <= raised
    assert raised - set(PROBLEMS) == set()
    for status, code in problems._STARLETTE_STATUS_CODES.items():
        assert PROBLEMS[code].status == status, code
    with pytest.raises(ValueError, match="not a problem code"):
        ApiProblem("no_such_code", "detail")


def test_validation_faults_are_classified_by_their_cause() -> None:
    from tianping.ledger.ids import InvalidId
    from tianping.ledger.money import InvalidAmount

    def fault(location: tuple[Any, ...], cause: Exception | None = None) -> dict[str, Any]:
        return {"loc": location, "ctx": {"error": cause}} if cause else {"loc": location}

    classify = problems._validation_code
    assert (
        classify(
            [fault(("body", "id"), InvalidId("x")), fault(("path", "account_id"), InvalidId("y"))]
        )
        == "id_invalid"
    )
    assert classify([fault(("body", "amount"), InvalidAmount("x"))]) == "amount_invalid"
    assert classify([fault(("query", "limit")), fault(("query", "timestamp_min"))]) == (
        "invalid_query"
    )
    assert (
        classify(
            [fault(("body", "id"), InvalidId("x")), fault(("body", "amount"), InvalidAmount("x"))]
        )
        == "invalid_request"
    )
    assert classify([fault(("query", "limit")), fault(("body",))]) == "invalid_request"
    assert classify([]) == "invalid_request"


# -- routes and scopes -------------------------------------------------------------------------


READ_ONLY_POSTS = frozenset(
    {
        "/v1/ledger/accounts/lookup",
        "/v1/ledger/transfers/lookup",
        "/v1/rules/check",
    }
)


def test_every_route_declares_exactly_one_scope_unless_public(app: Any) -> None:
    declarations = route_declarations(app)
    assert declarations, "the app serves no routes"
    served_public = set()
    for route in declarations:
        if route.path in PUBLIC_PATHS:
            assert route.scopes == (), f"{route.path} is public but declares {route.scopes}"
            served_public.add(route.path)
            continue
        assert route.path.startswith("/v1/"), route.path
        assert len(route.scopes) == 1, f"{sorted(route.methods)} {route.path}: {route.scopes}"
        scope = route.scopes[0]
        assert scope in SCOPES
        # A POST that only reads (a lookup whose ids do not fit in a URL, an evaluation that
        # stores nothing) is listed here on purpose. A read scope never admits a write and a
        # write scope never guards a mere read; scopes named for a party rather than an
        # action (`privacy:self`, `privacy:admin`) cover both, as their descriptions say.
        writes = bool(route.methods - {"GET", "HEAD"}) and route.path not in READ_ONLY_POSTS
        if writes:
            assert not scope.endswith(":read"), (route.path, scope)
        else:
            assert not scope.endswith(":write"), (route.path, scope)
    assert {"/health", "/docs", "/openapi.json"} <= served_public


def test_audit_routes_need_the_audit_scope(app: Any) -> None:
    scopes = {route.path: route.scopes for route in route_declarations(app)}
    assert scopes["/v1/ledger/audit/verify"] == ("ledger:audit",)
    assert scopes["/v1/ledger/check"] == ("ledger:audit",)


# -- request schemas ---------------------------------------------------------------------------


def _unbounded(schema: Any, definitions: dict[str, Any], where: str) -> list[str]:
    """Every string, array, object or integer in a JSON schema that has no upper bound."""
    if isinstance(schema, list):
        return [
            fault
            for index, item in enumerate(schema)
            for fault in _unbounded(item, definitions, f"{where}[{index}]")
        ]
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _unbounded(definitions[name], definitions, name)
    faults = []
    kind = schema.get("type")
    if kind == "string" and not {"maxLength", "enum", "pattern", "const"} & set(schema):
        faults.append(f"{where}: string without maxLength")
    if kind == "array" and "maxItems" not in schema:
        faults.append(f"{where}: array without maxItems")
    open_object = isinstance(schema.get("additionalProperties"), dict)
    if kind == "object" and open_object and "maxProperties" not in schema:
        faults.append(f"{where}: object without maxProperties")
    branches = schema.get("anyOf", [])
    is_id = any(
        branch.get("pattern") == ID_TEXT_PATTERN for branch in branches if isinstance(branch, dict)
    )
    if kind == "integer" and "maximum" not in schema:
        faults.append(f"{where}: integer without maximum")
    for key in ("properties", "items", "additionalProperties", "anyOf"):
        value = schema.get(key)
        if key == "anyOf" and is_id:
            # An id's integer form is bounded by `parse_id`, which the schema cannot say
            # exactly (JSON Schema tools turn 2**128 into a float).
            value = [branch for branch in branches if branch.get("type") != "integer"]
        if key == "properties" and isinstance(value, dict):
            faults.extend(
                fault
                for name, item in value.items()
                for fault in _unbounded(item, definitions, f"{where}.{name}")
            )
        elif value is not None:
            faults.extend(_unbounded(value, definitions, f"{where}.{key}"))
    return faults


@pytest.mark.parametrize("model", [CreateAccountsRequest, CreateTransfersRequest])
def test_every_request_field_is_bounded(model: Any) -> None:
    schema = model.model_json_schema()
    assert _unbounded(schema, schema.get("$defs", {}), model.__name__) == []


def test_the_bound_check_can_fail() -> None:
    schema = {
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
            "c": {"type": "object", "additionalProperties": {"type": "boolean"}},
        }
    }
    assert _unbounded(schema, {}, "M") == [
        "M.a: string without maxLength",
        "M.b.items: integer without maximum",
        "M.c: object without maxProperties",
    ]


# -- the OpenAPI document ----------------------------------------------------------------------


def test_openapi_describes_the_api_as_it_behaves(app: Any) -> None:
    document = app.openapi()
    assert document["info"]["title"] == "Tianping Ledger API"
    assert document["info"]["version"] == __version__
    assert "problem+json" in document["info"]["description"]
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ProblemDetails" in schemas
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) >= 16
    for path, method, operation in operations:
        assert "422" not in operation["responses"], (path, method)
        for status_range in ("4XX", "5XX"):
            if status_range in operation["responses"]:
                content = operation["responses"][status_range]["content"]
                assert list(content) == [PROBLEM_MEDIA_TYPE], (path, method)
        if path.startswith("/v1/") and path not in PUBLIC_PATHS:
            assert operation.get("security") == [{"HTTPBearer": []}], (path, method)
            assert "4XX" in operation["responses"], (path, method)
