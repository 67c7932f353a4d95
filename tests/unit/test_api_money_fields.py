"""Every money field of every request body takes a JSON integer of minor units and nothing else.

A float that happens to be whole (`107.0`) or a numeric string (`"107"`) is refused, not
converted: a client that sends either carries floats or text in its money path, which the
platform never does. The test walks the request models of every API module, so a money field
added later without the strict type fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import tianping.api
from tianping.api.app import create_app
from tianping.api.security import DevelopmentAuthenticator

# Every module of the API package, so that one added later is walked too.
MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"tianping.api.{module.name}")
    for module in pkgutil.iter_modules(tianping.api.__path__)
)
# The names money fields of request bodies go by.
MONEY_FIELDS = frozenset({"amount", "annual_income"})


def _references(node: Any) -> Iterator[str]:
    """The names of the component schemas a part of the OpenAPI document refers to."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str):
            yield reference.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _request_models() -> set[str]:
    """The schemas of request bodies, and every schema nested in them, by name."""
    document = create_app(authenticator=DevelopmentAuthenticator()).openapi()
    components = document["components"]["schemas"]
    pending = [
        name
        for path in document["paths"].values()
        for operation in path.values()
        for name in _references(operation.get("requestBody", {}))
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_references(components.get(name, {})))
    return seen


def _money_fields() -> list[tuple[type[BaseModel], str]]:
    requests = _request_models()
    found = []
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and value.__name__ in requests
            ):
                found.extend((value, name) for name in value.model_fields if name in MONEY_FIELDS)
    return found


def test_the_walk_finds_the_money_fields() -> None:
    # The ledger's transfer, payments' orders, payments, refunds, rails, payouts and card
    # checkouts, lending's applications, repayments and recoveries at least.
    assert len(_money_fields()) >= 10


@pytest.mark.parametrize(
    ("model", "field"),
    _money_fields(),
    ids=lambda value: value.__name__ if isinstance(value, type) else value,
)
@pytest.mark.parametrize("sent", [107.0, "107", True])
def test_a_money_field_refuses_what_is_not_an_integer(
    model: type[BaseModel], field: str, sent: object
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({field: sent})
    assert any(error["loc"][:1] == (field,) for error in refused.value.errors()), (
        f"{model.__name__}.{field} took {sent!r}"
    )


@pytest.mark.parametrize(
    ("model", "field"),
    _money_fields(),
    ids=lambda value: value.__name__ if isinstance(value, type) else value,
)
def test_a_money_field_takes_an_integer(model: type[BaseModel], field: str) -> None:
    try:
        model.model_validate({field: 107})
    except ValidationError as refused:
        assert not any(error["loc"][:1] == (field,) for error in refused.errors())
