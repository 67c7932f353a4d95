"""End-to-end tests of the ledger's HTTP API, on SQLite and on PostgreSQL.

Each test drives the API through FastAPI's TestClient, as a client would, over services built by
the composition root on a fresh database. When a test ends, the `api` fixture checks the ledger's
invariants and verifies the audit chain, so every test also proves that whatever the API accepted
or refused left double entry and the chain intact. Tests of refusals additionally check that the
ledger's head did not move: a refused request writes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ledger_support import ManualClock
from tianping.api.app import create_app
from tianping.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, REQUEST_BODY_BYTES_MAX
from tianping.api.security import (
    API_TOKEN_ENV_VAR,
    PUBLIC_PATHS,
    DevelopmentAuthenticator,
    Principal,
    route_declarations,
)
from tianping.bootstrap import Services, build_services
from tianping.config import load_settings
from tianping.ledger.audit import verify_chain
from tianping.ledger.limits import (
    AMOUNT_MINOR_MAX,
    IDS_PER_LOOKUP_MAX,
    METADATA_BYTES_MAX,
    METADATA_KEYS_MAX,
    TRANSFERS_PER_BATCH_MAX,
)

with warnings.catch_warnings():
    # Starlette 1.x asks for the `httpx2` package in its TestClient and warns when it finds the
    # `httpx` the project depends on. The warning concerns the test transport only, and the
    # suite turns warnings into errors, so it is silenced for this one import.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "t" * 40
LEDGER = "/v1/ledger"


# -- fixtures and helpers --------------------------------------------------------------------


@dataclass
class Api:
    """A client on an app over `services`, with the clock the ledger runs on."""

    client: TestClient
    services: Services
    clock: ManualClock

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.post(LEDGER + path, json=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(LEDGER + path, **kwargs)


@pytest.fixture
def services(database_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Services]:
    """Services on a fresh, migrated database; the ledger is checked when the test ends."""
    settings = load_settings(database_url=database_url, data_dir=tmp_path)
    built = build_services(settings, migrate=True, clock=clock)
    try:
        yield built
        findings = built.ledger.check()
        with built.ledger.read(snapshot=True) as store:
            chain = verify_chain(store)
    finally:
        built.close()
    assert findings == [], f"ledger invariants broken at the end of the test: {findings}"
    assert chain.ok, f"audit chain broken at the end of the test: {chain.breaks}"


@pytest.fixture
def api(services: Services, clock: ManualClock) -> Iterator[Api]:
    """The API in development mode (every request is the operator)."""
    app = create_app(services, authenticator=DevelopmentAuthenticator())
    with TestClient(app) as client:
        yield Api(client, services, clock)


def account(
    account_id: int | str,
    currency: str = "CNY",
    code: int = 1,
    flags: tuple[str, ...] = (),
    owner: str = "",
) -> dict[str, Any]:
    return {
        "id": str(account_id),
        "currency": currency,
        "code": code,
        "flags": list(flags),
        "owner": owner,
    }


def transfer(
    transfer_id: int | str,
    debit: int | None,
    credit: int | None,
    amount: int,
    currency: str = "CNY",
    code: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(transfer_id),
        "amount": amount,
        "currency": currency,
        "code": code,
        **fields,
    }
    if debit is not None:
        body["debit_account_id"] = str(debit)
    if credit is not None:
        body["credit_account_id"] = str(credit)
    return body


def create_accounts(api: Api, *accounts: dict[str, Any]) -> list[str]:
    response = api.post("/accounts", {"accounts": list(accounts)})
    assert response.status_code == 200, response.text
    return [result["result"] for result in response.json()["results"]]


def create_transfers(api: Api, *transfers: dict[str, Any]) -> list[str]:
    response = api.post("/transfers", {"transfers": list(transfers)})
    assert response.status_code == 200, response.text
    return [result["result"] for result in response.json()["results"]]


def get_account(api: Api, account_id: int) -> dict[str, Any]:
    response = api.get(f"/accounts/{account_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_transfer(api: Api, transfer_id: int) -> dict[str, Any]:
    response = api.get(f"/transfers/{transfer_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def balances(api: Api, account_id: int) -> tuple[int, int, int, int]:
    """(debits_pending, debits_posted, credits_pending, credits_posted) of an account."""
    body = get_account(api, account_id)
    return (
        body["debits_pending"],
        body["debits_posted"],
        body["credits_pending"],
        body["credits_posted"],
    )


def ledger_head(api: Api) -> tuple[int, int]:
    """The chain head's sequence number and ledger time: they move with every write."""
    with api.services.ledger.read() as store:
        head = store.read_head()
    return head.seq, head.last_timestamp


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == PROBLEM_TYPE_BASE + code
    assert body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == response.request.url.path
    return body


def two_accounts(api: Api, *flags: str) -> None:
    assert create_accounts(api, account(1, flags=flags), account(2)) == ["ok", "ok"]


# -- creating accounts and transfers -----------------------------------------------------------


def test_create_accounts_and_a_transfer(api: Api) -> None:
    response = api.post(
        "/accounts",
        {
            "accounts": [
                account(1, owner="party-7"),
                {"id": 2, "currency": "CNY", "code": 1},  # an id as a JSON integer is accepted too
            ]
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"index": 0, "id": "1", "result": "ok", "code": 0},
            {"index": 1, "id": "2", "result": "ok", "code": 0},
        ]
    }

    response = api.post(
        "/transfers",
        {
            "transfers": [
                transfer(10, 1, 2, 1234, metadata={"order": "A-1", "lines": 3, "gift": False}),
            ]
        },
    )
    assert response.json() == {"results": [{"index": 0, "id": "10", "result": "ok", "code": 0}]}

    debit = get_account(api, 1)
    assert debit["id"] == "1"
    assert debit["owner"] == "party-7"
    assert debit["flags"] == [] and debit["closed"] is False
    assert (debit["debits_posted"], debit["credits_posted"]) == (1234, 0)
    assert debit["balances_display"]["debits_posted"] == "12.34"
    assert debit["timestamp_iso"].endswith("Z")

    booked = get_transfer(api, 10)
    assert booked["debit_account_id"] == "1" and booked["credit_account_id"] == "2"
    assert (booked["amount"], booked["amount_display"], booked["currency"]) == (
        1234,
        "12.34",
        "CNY",
    )
    assert booked["metadata"] == {"order": "A-1", "lines": 3, "gift": False}
    assert booked["pending_id"] is None and booked["reverses_id"] is None
    assert isinstance(booked["timestamp"], int)
    assert booked["timestamp_iso"].startswith("2027-01-15T")  # ManualClock's start


def test_every_event_of_a_batch_gets_its_result(api: Api) -> None:
    two_accounts(api)
    response = api.post(
        "/transfers",
        {
            "transfers": [
                transfer(10, 1, 2, 100),
                transfer(11, 1, 2, 0),  # zero on a plain transfer
                transfer(12, 1, 99, 100),  # unknown credit account
                transfer(13, 1, 2, 100, currency="XYZ"),
            ]
        },
    )
    assert response.json()["results"] == [
        {"index": 0, "id": "10", "result": "ok", "code": 0},
        {"index": 1, "id": "11", "result": "amount_must_be_positive", "code": 12},
        {"index": 2, "id": "12", "result": "credit_account_not_found", "code": 21},
        {"index": 3, "id": "13", "result": "currency_invalid", "code": 15},
    ]
    assert balances(api, 1) == (0, 100, 0, 0)


def test_a_replay_answers_exists_and_a_changed_replay_is_refused(api: Api) -> None:
    two_accounts(api)
    assert create_accounts(api, account(1), account(2)) == ["exists", "exists"]
    assert create_accounts(api, account(1, code=2)) == ["exists_with_different_fields"]

    metadata = {"b": 2, "a": "x"}
    assert create_transfers(api, transfer(10, 1, 2, 500, metadata=metadata)) == ["ok"]
    # The same object with its keys in another order is the same metadata: still a replay.
    reordered = {"a": "x", "b": 2}
    assert create_transfers(api, transfer(10, 1, 2, 500, metadata=reordered)) == ["exists"]
    assert create_transfers(api, transfer(10, 1, 2, 501, metadata=metadata)) == [
        "exists_with_different_fields"
    ]
    assert create_transfers(api, transfer(10, 1, 2, 500)) == ["exists_with_different_fields"]
    assert balances(api, 1) == (0, 500, 0, 0)


def test_two_phase_post_part_of_a_hold_and_void_another(api: Api) -> None:
    two_accounts(api)
    assert create_transfers(api, transfer(10, 1, 2, 1000, flags=["pending"])) == ["ok"]
    assert balances(api, 1) == (1000, 0, 0, 0)
    assert balances(api, 2) == (0, 0, 1000, 0)

    # A post may leave out everything the hold already says, and post less than it holds.
    post = {"id": "11", "pending_id": "10", "amount": 600, "flags": ["post_pending"]}
    assert create_transfers(api, post) == ["ok"]
    assert balances(api, 1) == (0, 600, 0, 0)
    assert balances(api, 2) == (0, 0, 0, 600)
    assert get_transfer(api, 11)["pending_id"] == "10"

    assert create_transfers(api, transfer(20, 1, 2, 300, flags=["pending"])) == ["ok"]
    assert create_transfers(api, {"id": "21", "pending_id": "20", "flags": ["void_pending"]}) == [
        "ok"
    ]
    assert balances(api, 1) == (0, 600, 0, 0)
    again = {"id": "22", "pending_id": "10", "flags": ["post_pending"]}
    assert create_transfers(api, again) == ["pending_transfer_already_posted"]


def test_a_hold_expires_when_its_timeout_passes(api: Api) -> None:
    two_accounts(api)
    assert create_transfers(
        api,
        transfer(10, 1, 2, 700, flags=["pending"], timeout=1),
        transfer(20, 1, 2, 300, flags=["pending"], timeout=5),
    ) == ["ok", "ok"]
    assert balances(api, 1) == (1000, 0, 0, 0)

    # Expiry happens at the start of the next transfer write, whatever that write is.
    api.clock.advance(seconds=2)
    assert create_transfers(api, transfer(30, 2, 1, 1)) == ["ok"]
    assert balances(api, 1) == (300, 0, 0, 1)
    post = {"id": "11", "pending_id": "10", "flags": ["post_pending"]}
    assert create_transfers(api, post) == ["pending_transfer_expired"]

    # Or the operator's sweep voids it.
    api.clock.advance(seconds=10)
    assert api.services.ledger.expire_pending() == 1
    assert balances(api, 1) == (0, 0, 0, 1)
    assert create_transfers(api, {"id": "21", "pending_id": "20", "flags": ["post_pending"]}) == [
        "pending_transfer_expired"
    ]


def test_a_linked_chain_is_all_or_nothing(api: Api) -> None:
    two_accounts(api)
    head = ledger_head(api)
    assert create_transfers(
        api, transfer(10, 1, 2, 100, flags=["linked"]), transfer(11, 1, 99, 100)
    ) == ["linked_event_failed", "credit_account_not_found"]
    assert ledger_head(api) == head
    assert_problem(api.get("/transfers/10"), 404, "transfer_not_found")
    assert balances(api, 1) == (0, 0, 0, 0)

    # A chain left open at the end of the request is not committed either.
    assert create_transfers(api, transfer(12, 1, 2, 100, flags=["linked"])) == [
        "linked_event_chain_open"
    ]
    assert create_transfers(
        api, transfer(13, 1, 2, 100, flags=["linked"]), transfer(14, 2, 1, 40)
    ) == ["ok", "ok"]
    assert balances(api, 1) == (0, 100, 0, 40)


def test_a_reversal_moves_money_back_up_to_the_original_amount(api: Api) -> None:
    two_accounts(api)
    assert create_transfers(api, transfer(10, 1, 2, 1000)) == ["ok"]
    reversal = {"id": "11", "reverses_id": "10", "amount": 400}
    assert create_transfers(api, reversal) == ["ok"]
    booked = get_transfer(api, 11)
    assert (booked["debit_account_id"], booked["credit_account_id"]) == ("2", "1")
    assert booked["reverses_id"] == "10"
    assert balances(api, 1) == (0, 1000, 0, 400)
    assert create_transfers(api, {"id": "12", "reverses_id": "10", "amount": 700}) == [
        "reversal_exceeds_original"
    ]


def test_a_balancing_transfer_moves_at_most_what_the_limit_allows(api: Api) -> None:
    two_accounts(api, "debits_must_not_exceed_credits")
    assert create_transfers(api, transfer(10, 2, 1, 500)) == ["ok"]
    assert create_transfers(api, transfer(11, 1, 2, 1000)) == ["exceeds_credits"]
    assert create_transfers(api, transfer(12, 1, 2, 1000, flags=["balancing_debit"])) == ["ok"]
    assert get_transfer(api, 12)["amount"] == 500
    assert balances(api, 1) == (0, 500, 0, 500)


def test_currencies_must_match(api: Api) -> None:
    assert create_accounts(api, account(1), account(2), account(3, currency="USD")) == [
        "ok",
        "ok",
        "ok",
    ]
    assert create_transfers(api, transfer(10, 1, 3, 100)) == [
        "accounts_must_have_the_same_currency"
    ]
    assert create_transfers(api, transfer(11, 1, 2, 100, currency="USD")) == [
        "transfer_currency_must_match_accounts"
    ]
    assert balances(api, 1) == (0, 0, 0, 0)


def test_a_closed_account_takes_no_transfers_until_reopened(api: Api) -> None:
    two_accounts(api)
    response = api.post("/accounts/1/close")
    assert response.json() == {"id": "1", "result": "ok", "code": 0}
    assert get_account(api, 1)["closed"] is True
    assert "closed" in get_account(api, 1)["flags"]
    assert create_transfers(api, transfer(10, 1, 2, 100)) == ["debit_account_closed"]
    assert api.post("/accounts/1/close").json()["result"] == "already_closed"
    assert api.post("/accounts/1/reopen").json()["result"] == "ok"
    assert api.post("/accounts/1/reopen").json()["result"] == "not_closed"
    assert api.post("/accounts/99/close").json()["result"] == "account_not_found"
    assert create_transfers(api, transfer(10, 1, 2, 100)) == ["ok"]


# -- queries -----------------------------------------------------------------------------------


def test_lookups_answer_in_the_order_asked_and_leave_out_unknown_ids(api: Api) -> None:
    assert create_accounts(api, account(1), account(2), account(3)) == ["ok"] * 3
    assert create_transfers(api, transfer(10, 1, 2, 5), transfer(11, 2, 3, 6)) == ["ok", "ok"]

    found = api.get("/accounts", params={"ids": "3,99,1"}).json()["accounts"]
    assert [item["id"] for item in found] == ["3", "1"]
    found = api.get("/transfers", params={"ids": "11, 10 ,12"}).json()["transfers"]
    assert [item["id"] for item in found] == ["11", "10"]

    assert_problem(api.get("/accounts/99"), 404, "account_not_found")
    assert_problem(api.get("/transfers/99"), 404, "transfer_not_found")
    assert_problem(api.get("/accounts", params={"ids": "1,abc"}), 400, "id_invalid")
    assert_problem(api.get("/accounts", params={"ids": ""}), 400, "invalid_query")
    too_many = ",".join(str(number) for number in range(1, IDS_PER_LOOKUP_MAX + 2))
    assert_problem(api.get("/accounts", params={"ids": too_many}), 400, "invalid_query")


def test_lookups_by_body_take_lists_too_long_for_a_url(api: Api) -> None:
    """POST lookups answer like the GET ones and accept the full lookup limit in the body."""
    assert create_accounts(api, account(1), account(2)) == ["ok"] * 2
    assert create_transfers(api, transfer(10, 1, 2, 5)) == ["ok"]

    many = [str(number) for number in range(3, IDS_PER_LOOKUP_MAX + 1)] + ["2", "1"]
    found = api.post("/accounts/lookup", {"ids": many}).json()["accounts"]
    assert [item["id"] for item in found] == ["2", "1"]
    found = api.post("/transfers/lookup", {"ids": ["10", 99]}).json()["transfers"]
    assert [item["id"] for item in found] == ["10"]

    assert_problem(api.post("/accounts/lookup", {"ids": ["abc"]}), 400, "id_invalid")
    assert_problem(api.post("/accounts/lookup", {"ids": []}), 422, "invalid_request")
    over = [str(number) for number in range(1, IDS_PER_LOOKUP_MAX + 2)]
    assert_problem(api.post("/accounts/lookup", {"ids": over}), 422, "invalid_request")


def test_account_transfers_come_in_pages(api: Api) -> None:
    two_accounts(api)
    sent = [transfer(100 + n, 1 if n % 3 else 2, 2 if n % 3 else 1, n + 1) for n in range(7)]
    assert create_transfers(api, *sent) == ["ok"] * 7

    def pages(**params: Any) -> list[list[str]]:
        collected: list[list[str]] = []
        query: dict[str, Any] = dict(params)
        while True:
            body = api.get("/accounts/1/transfers", params=query).json()
            collected.append([item["id"] for item in body["transfers"]])
            if body["next"] is None:
                return collected
            query.update(body["next"])

    assert pages(limit=3) == [["100", "101", "102"], ["103", "104", "105"], ["106"]]
    assert pages(limit=3, newest_first="true") == [
        ["106", "105", "104"],
        ["103", "102", "101"],
        ["100"],
    ]
    assert pages(limit=7) == [["100", "101", "102", "103", "104", "105", "106"], []]
    # Account 1 is credited by transfers 100, 103 and 106 and debited by the others.
    assert pages(limit=10, debits="false") == [["100", "103", "106"]]
    assert pages(limit=10, credits="false") == [["101", "102", "104", "105"]]

    first = get_transfer(api, 101)["timestamp"]
    window = api.get(
        "/accounts/1/transfers", params={"timestamp_min": first, "timestamp_max": first + 1}
    ).json()
    assert [item["id"] for item in window["transfers"]] == ["101", "102"]
    assert_problem(api.get("/accounts/99/transfers"), 404, "account_not_found")


def test_balance_history_and_balance_at_a_time(api: Api) -> None:
    two_accounts(api, "history")
    created = get_account(api, 1)["timestamp"]
    assert create_transfers(api, transfer(10, 1, 2, 100)) == ["ok"]
    assert create_transfers(api, transfer(11, 1, 2, 200, flags=["pending"])) == ["ok"]
    assert create_transfers(api, {"id": "12", "pending_id": "11", "flags": ["post_pending"]}) == [
        "ok"
    ]
    times = [get_transfer(api, number)["timestamp"] for number in (10, 11, 12)]

    body = api.get("/accounts/1/balances").json()
    assert body["account_id"] == "1" and body["currency"] == "CNY" and body["next"] is None
    assert [
        (item["timestamp"], item["debits_pending"], item["debits_posted"])
        for item in body["balances"]
    ] == [(times[0], 0, 100), (times[1], 200, 100), (times[2], 0, 300)]
    assert body["balances"][2]["balances_display"]["debits_posted"] == "3.00"
    page = api.get("/accounts/1/balances", params={"limit": 2}).json()
    assert len(page["balances"]) == 2 and page["next"]["timestamp_min"] == times[1] + 1

    def at(moment: int) -> tuple[int, int]:
        response = api.get("/accounts/1/balance", params={"at": moment})
        assert response.status_code == 200, response.text
        balance = response.json()["balance"]
        return balance["debits_pending"], balance["debits_posted"]

    assert at(created - 1) == (0, 0)
    assert at(times[0]) == (0, 100)
    assert at(times[1]) == (200, 100)
    assert at(times[2]) == (0, 300)

    assert_problem(api.get("/accounts/2/balances"), 409, "history_not_enabled")
    assert_problem(
        api.get("/accounts/2/balance", params={"at": times[0]}), 409, "history_not_enabled"
    )
    assert_problem(api.get("/accounts/1/balance"), 400, "invalid_query")
    assert_problem(api.get("/accounts/1/balance", params={"at": 0}), 400, "invalid_query")


def test_statement_of_a_period(api: Api) -> None:
    two_accounts(api)
    assert create_transfers(api, transfer(10, 1, 2, 100)) == ["ok"]
    assert (
        create_transfers(
            api,
            transfer(11, 2, 1, 30),
            transfer(12, 1, 2, 50),
            transfer(13, 1, 2, 999, flags=["pending"]),
        )
        == ["ok"] * 3
    )
    assert create_transfers(api, transfer(14, 1, 2, 7)) == ["ok"]
    start = get_transfer(api, 11)["timestamp"]
    end = get_transfer(api, 13)["timestamp"]

    body = api.get(
        "/accounts/1/statement", params={"timestamp_min": start, "timestamp_max": end}
    ).json()
    assert body["account"]["id"] == "1"
    assert (body["opening"]["debits"], body["opening"]["credits"]) == (100, 0)
    assert body["opening"]["debits_display"] == "1.00"
    # The pending transfer moved no posted balance, so it is not an entry.
    assert [entry["id"] for entry in body["entries"]] == ["11", "12"]
    assert (body["closing"]["debits"], body["closing"]["credits"]) == (150, 30)
    assert body["complete"] is True and body["next"] is None

    cut = api.get(
        "/accounts/1/statement", params={"timestamp_min": start, "timestamp_max": end, "limit": 1}
    ).json()
    assert [entry["id"] for entry in cut["entries"]] == ["11"]
    assert cut["complete"] is False
    assert cut["next"] == {
        "timestamp_min": get_transfer(api, 12)["timestamp"],
        "timestamp_max": end,
    }
    assert_problem(
        api.get("/accounts/1/statement", params={"timestamp_min": end, "timestamp_max": start}),
        400,
        "invalid_query",
    )


def test_check_verify_and_result_codes(api: Api) -> None:
    two_accounts(api)
    assert create_transfers(api, transfer(10, 1, 2, 100)) == ["ok"]
    assert api.get("/check").json() == {"ok": True, "findings": []}
    chain = api.get("/audit/verify").json()
    assert chain["ok"] is True and chain["first_break"] is None
    assert chain["records"] == chain["head_seq"] == ledger_head(api)[0]
    assert len(chain["head_hash"]) == 64

    registry = api.get("/result-codes").json()
    assert registry["create_transfer"]["19"] == "exists"
    assert registry["create_account"]["0"] == "ok"
    assert registry["create_transfer_precedence"][0] == "linked_event_chain_open"


def test_health(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# -- refusals: every one a problem, none a partial write ---------------------------------------

_GOOD_TRANSFER: dict[str, Any] = transfer(10, 1, 2, 100)


def _with(**changes: Any) -> dict[str, Any]:
    return {"transfers": [_GOOD_TRANSFER, {**_GOOD_TRANSFER, "id": "11", **changes}]}


BAD_TRANSFER_BODIES: list[tuple[str, Any, int, str]] = [
    ("negative amount", _with(amount=-1), 422, "amount_invalid"),
    ("amount over the maximum", _with(amount=AMOUNT_MINOR_MAX + 1), 422, "amount_invalid"),
    ("amount as a string", _with(amount="100"), 422, "amount_invalid"),
    ("amount as a fraction", _with(amount=1.5), 422, "amount_invalid"),
    ("amount as a boolean", _with(amount=True), 422, "amount_invalid"),
    ("id of letters", _with(id="abc"), 400, "id_invalid"),
    ("negative id", _with(id="-1"), 400, "id_invalid"),
    ("zero id", _with(id="0"), 400, "id_invalid"),
    ("zero id as an integer", _with(id=0), 400, "id_invalid"),
    ("id of 2**128", _with(id=2**128), 400, "id_invalid"),
    ("id of 2**128 as text", _with(id=str(2**128)), 400, "id_invalid"),
    ("id of 2**128 - 1 (reserved)", _with(id=2**128 - 1), 400, "id_invalid"),
    ("id of 60 digits", _with(id="9" * 60), 400, "id_invalid"),
    ("id as a boolean", _with(id=True), 400, "id_invalid"),
    ("id as a float", _with(id=10.0), 400, "id_invalid"),
    ("malformed account id", _with(debit_account_id="1e3"), 400, "id_invalid"),
    ("malformed pending id", _with(pending_id=[1]), 400, "id_invalid"),
    ("unknown flag name", _with(flags=["pending", "urgent"]), 422, "invalid_request"),
    ("flags as a string", _with(flags="pending"), 422, "invalid_request"),
    ("code as a string", _with(code="1"), 422, "invalid_request"),
    ("code out of range", _with(code=65536), 422, "invalid_request"),
    ("timeout too long", _with(timeout=10**9), 422, "invalid_request"),
    ("currency too long", _with(currency="YUAN"), 422, "invalid_request"),
    ("unknown field", _with(memo="hello"), 422, "invalid_request"),
    ("nested metadata", _with(metadata={"a": {"b": 1}}), 422, "invalid_request"),
    ("metadata with a float", _with(metadata={"a": 0.5}), 422, "invalid_request"),
    (
        "metadata of too many keys",
        _with(metadata={f"k{n}": n for n in range(METADATA_KEYS_MAX + 1)}),
        422,
        "invalid_request",
    ),
    ("two kinds of fault", _with(id="abc", amount=-1), 422, "invalid_request"),
    ("transfers not a list", {"transfers": {"id": "10"}}, 422, "invalid_request"),
    ("empty batch", {"transfers": []}, 422, "invalid_request"),
    ("no transfers member", {"accounts": []}, 422, "invalid_request"),
    ("body not an object", [1, 2], 422, "invalid_request"),
    ("null body", None, 422, "invalid_request"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_TRANSFER_BODIES],
)
def test_a_malformed_transfer_batch_is_refused_whole(
    api: Api, body: Any, status: int, code: str
) -> None:
    two_accounts(api)
    head = ledger_head(api)
    problem = assert_problem(api.post("/transfers", body), status, code)
    if "errors" in problem:
        assert problem["errors"] and all(
            set(error) == {"location", "message", "type"} for error in problem["errors"]
        )
    assert ledger_head(api) == head
    assert_problem(api.get("/transfers/10"), 404, "transfer_not_found")


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        pytest.param(b"", {"content-type": "application/json"}, 422, "invalid_request", id="empty"),
        pytest.param(
            b'{"transfers": [',
            {"content-type": "application/json"},
            422,
            "invalid_request",
            id="invalid JSON",
        ),
        pytest.param(
            b'{"transfers": []}',
            {"content-type": "text/plain"},
            422,
            "invalid_request",
            id="not JSON content",
        ),
        pytest.param(
            b'{"transfers": [{"id": "10", "metadata": {"note": "\\ud800"}}]}',
            {"content-type": "application/json"},
            422,
            "invalid_request",
            id="lone surrogate in metadata",
        ),
        pytest.param(
            b'{"transfers": [{"id": ' + b"1" * 5000 + b"}]}",
            {"content-type": "application/json"},
            400,
            "malformed_request",
            id="integer of 5000 digits",
        ),
    ],
)
def test_an_unreadable_body_is_refused(
    api: Api, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    head = ledger_head(api)
    assert_problem(
        api.client.post(LEDGER + "/transfers", content=content, headers=headers), status, code
    )
    assert ledger_head(api) == head


def test_validation_errors_do_not_echo_the_values_sent(api: Api) -> None:
    secret = "Zhang San, 13800138000"
    body = {
        "transfers": [
            {**_GOOD_TRANSFER, "amount": secret, "metadata": {secret: {"nested": secret}}}
        ]
    }
    response = api.post("/transfers", body)
    assert_problem(response, 422, "invalid_request")
    assert "Zhang" not in response.text and "13800138000" not in response.text
    locations = [error["location"] for error in response.json()["errors"]]
    assert ["body", "transfers", 0, "amount"] in locations
    assert ["body", "transfers", 0, "metadata", "*"] in locations


def test_per_event_refusals_write_nothing(api: Api) -> None:
    two_accounts(api)
    head = ledger_head(api)
    oversized = {"note": "x" * METADATA_BYTES_MAX}
    assert create_transfers(
        api,
        transfer(10, 1, 2, 0),
        transfer(11, 1, 99, 100),
        transfer(12, 99, 2, 100),
        transfer(13, 1, 2, 100, metadata=oversized),
        transfer(14, 1, 1, 100),
        transfer(15, 1, 2, 100, flags=["pending", "post_pending"]),
    ) == [
        "amount_must_be_positive",
        "credit_account_not_found",
        "debit_account_not_found",
        "metadata_invalid",
        "accounts_must_be_different",
        "flags_are_mutually_exclusive",
    ]
    assert ledger_head(api) == head


BAD_ACCOUNT_BODIES: list[tuple[str, Any, int, str]] = [
    ("id of letters", {"accounts": [account("abc")]}, 400, "id_invalid"),
    ("id of 2**128", {"accounts": [{**account(1), "id": 2**128}]}, 400, "id_invalid"),
    ("code zero", {"accounts": [account(1, code=0)]}, 422, "invalid_request"),
    ("unknown flag", {"accounts": [account(1, flags=("savings",))]}, 422, "invalid_request"),
    ("owner too long", {"accounts": [account(1, owner="p" * 65)]}, 422, "invalid_request"),
    ("missing currency", {"accounts": [{"id": "1", "code": 1}]}, 422, "invalid_request"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"), [pytest.param(*case[1:], id=case[0]) for case in BAD_ACCOUNT_BODIES]
)
def test_a_malformed_account_batch_is_refused_whole(
    api: Api, body: Any, status: int, code: str
) -> None:
    body["accounts"].insert(0, account(5))
    head = ledger_head(api)
    assert_problem(api.post("/accounts", body), status, code)
    assert ledger_head(api) == head
    assert_problem(api.get("/accounts/5"), 404, "account_not_found")


@pytest.mark.parametrize("bad_id", ["abc", "-1", "0", str(2**128), "1" * 40, "%20", "1.0"])
def test_a_malformed_id_in_the_path_is_refused(api: Api, bad_id: str) -> None:
    two_accounts(api)
    head = ledger_head(api)
    for method, path in [
        ("GET", f"/accounts/{bad_id}"),
        ("GET", f"/transfers/{bad_id}"),
        ("GET", f"/accounts/{bad_id}/transfers"),
        ("POST", f"/accounts/{bad_id}/close"),
    ]:
        assert_problem(api.client.request(method, LEDGER + path), 400, "id_invalid")
    assert ledger_head(api) == head


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"timestamp_min": -1},
        {"timestamp_max": 2**63},
        {"newest_first": "perhaps"},
    ],
)
def test_a_query_out_of_range_is_refused(api: Api, params: dict[str, Any]) -> None:
    two_accounts(api)
    assert_problem(api.get("/accounts/1/transfers", params=params), 400, "invalid_query")


def test_an_oversized_batch_is_refused_before_anything_is_written(api: Api) -> None:
    two_accounts(api)
    head = ledger_head(api)
    batch = [transfer(10 + n, 1, 2, 1) for n in range(TRANSFERS_PER_BATCH_MAX + 1)]
    problem = assert_problem(api.post("/transfers", {"transfers": batch}), 413, "batch_too_large")
    assert str(TRANSFERS_PER_BATCH_MAX) in problem["detail"]
    accounts = [account(10 + n) for n in range(TRANSFERS_PER_BATCH_MAX + 1)]
    assert_problem(api.post("/accounts", {"accounts": accounts}), 413, "batch_too_large")
    assert ledger_head(api) == head
    assert api.get("/transfers", params={"ids": "10,11,8199"}).json() == {"transfers": []}


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(api: Api) -> None:
    head = ledger_head(api)
    body = b'{"transfers": [' + b" " * REQUEST_BODY_BYTES_MAX + b"]}"
    declared = api.client.post(
        LEDGER + "/transfers", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(declared, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        # A body sent in chunks, without a Content-Length, is counted as it arrives.
        for _ in range(3):
            yield b" " * (REQUEST_BODY_BYTES_MAX // 2)

    streamed = api.client.post(
        LEDGER + "/transfers", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "payload_too_large")
    assert ledger_head(api) == head


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(api.client.get("/v2/anything"), 404, "not_found")
    response = api.client.delete(LEDGER + "/accounts/1")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_an_unexpected_error_is_a_generic_500_and_the_body_is_not_logged(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the database driver exploded")

    monkeypatch.setattr(api.services.ledger, "create_accounts", broken)
    marker = "owner-1234567890"
    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        response = client.post(LEDGER + "/accounts", json={"accounts": [account(1, owner=marker)]})
    problem = assert_problem(response, 500, "internal_error")
    assert "exploded" not in response.text
    assert "exploded" not in problem["detail"]
    logged = [record for record in caplog.records if record.name == "tianping.api.problems"]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert marker not in caplog.text


# -- group commit --------------------------------------------------------------------------


def test_single_transfers_go_through_the_group_committer(api: Api) -> None:
    two_accounts(api)
    committer = api.services.committer
    before = committer.requests
    assert create_transfers(api, transfer(10, 1, 2, 5)) == ["ok"]
    assert committer.requests == before + 1
    assert create_transfers(api, transfer(11, 1, 2, 5), transfer(12, 1, 2, 5)) == ["ok", "ok"]
    assert committer.requests == before + 1


def test_concurrent_single_transfers_are_each_committed_exactly_once(api: Api) -> None:
    two_accounts(api)
    count = 50
    start = threading.Barrier(count)

    def send(number: int) -> tuple[int, str]:
        start.wait()
        response = api.post(
            "/transfers", {"transfers": [transfer(1000 + number, 1, 2, number + 1)]}
        )
        return response.status_code, response.json()["results"][0]["result"]

    with ThreadPoolExecutor(max_workers=count) as pool:
        outcomes = list(pool.map(send, range(count)))
    assert outcomes == [(200, "ok")] * count
    total = sum(range(1, count + 1))
    assert balances(api, 1) == (0, total, 0, 0)

    ids = ",".join(str(1000 + number) for number in range(count))
    found = api.get("/transfers", params={"ids": ids}).json()["transfers"]
    assert sorted(int(item["id"]) for item in found) == list(range(1000, 1000 + count))
    statement = api.get("/accounts/1/statement").json()
    assert len(statement["entries"]) == count

    # Retried all at once, every transfer is recognised and nothing moves twice.
    start.reset()
    with ThreadPoolExecutor(max_workers=count) as pool:
        outcomes = list(pool.map(send, range(count)))
    assert outcomes == [(200, "exists")] * count
    assert balances(api, 1) == (0, total, 0, 0)


# -- authentication and authorisation ---------------------------------------------------------


@pytest.fixture
def token_client(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client on an app that requires TOKEN, configured the way an operator does it."""
    monkeypatch.setenv(API_TOKEN_ENV_VAR, TOKEN)
    with TestClient(create_app(services)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_configured_token_is_required(token_client: TestClient) -> None:
    path = LEDGER + "/result-codes"
    for headers in [
        {},
        bearer("t" * 39),
        bearer(TOKEN + "x"),
        bearer(""),
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ]:
        response = token_client.get(path, headers=headers)
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert token_client.get(path, headers=bearer(TOKEN)).status_code == 200
    body = {"accounts": [account(1)]}
    assert_problem(token_client.post(LEDGER + "/accounts", json=body), 401, "unauthenticated")
    response = token_client.post(LEDGER + "/accounts", json=body, headers=bearer(TOKEN))
    assert response.json()["results"][0]["result"] == "ok"
    assert token_client.get("/health").status_code == 200
    assert token_client.get("/openapi.json").status_code == 200
    assert token_client.get("/docs").status_code == 200


def test_every_api_route_refuses_a_request_without_credentials(token_client: TestClient) -> None:
    checked = 0
    for route in route_declarations(token_client.app):
        if route.path in PUBLIC_PATHS:
            continue
        path = route.path.replace("{account_id}", "1").replace("{transfer_id}", "1")
        for method in route.methods:
            response = token_client.request(method, path, params={"ids": "1", "at": 1})
            assert_problem(response, 401, "unauthenticated")
            checked += 1
    assert checked >= 15  # every route of the ledger API, at the time of writing


class ReaderAuthenticator:
    """A stand-in for the identity context: a principal that may only read."""

    development_mode = False

    def authenticate(self, bearer_token: str | None) -> Principal | None:
        return Principal(subject="auditor-7", role="reader", scopes=frozenset({"ledger:read"}))


def test_a_principal_without_the_scope_is_forbidden(services: Services) -> None:
    with TestClient(create_app(services, authenticator=ReaderAuthenticator())) as client:
        assert client.get(LEDGER + "/result-codes").status_code == 200
        response = client.post(LEDGER + "/accounts", json={"accounts": [account(1)]})
        assert_problem(response, 403, "forbidden")
        assert_problem(client.get(LEDGER + "/audit/verify"), 403, "forbidden")
        assert client.get(LEDGER + "/accounts", params={"ids": "1"}).json() == {"accounts": []}


def test_development_mode_warns_once_at_startup(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(API_TOKEN_ENV_VAR, raising=False)
    caplog.set_level(logging.WARNING, logger="tianping.api")
    with TestClient(create_app(services)) as client:
        assert client.get(LEDGER + "/result-codes").status_code == 200
        assert client.get(LEDGER + "/check").status_code == 200
    warnings_logged = [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING and "authentication is OFF" in record.getMessage()
    ]
    assert len(warnings_logged) == 1


def test_a_blank_or_short_token_is_a_configuration_error(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in ["", "   ", "short", " " + TOKEN]:
        monkeypatch.setenv(API_TOKEN_ENV_VAR, value)
        with pytest.raises(ValueError, match="at least 32 characters"):
            create_app(services)


def test_a_token_configured_app_does_not_log_the_development_warning(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(API_TOKEN_ENV_VAR, TOKEN)
    caplog.set_level(logging.DEBUG, logger="tianping.api")
    with TestClient(create_app(services)) as client:
        assert client.get("/health").status_code == 200
    assert "authentication is OFF" not in caplog.text
    assert TOKEN not in caplog.text


def test_metadata_round_trips_as_an_object(api: Api) -> None:
    two_accounts(api)
    metadata = {"invoice": "INV-9", "count": -3, "paid": True, "unicode": "\u5929\u5e73"}
    assert create_transfers(api, transfer(10, 1, 2, 1, metadata=metadata)) == ["ok"]
    assert get_transfer(api, 10)["metadata"] == metadata
    with api.services.ledger.read() as store:
        stored = store.fetch_transfers([10])[10].metadata
    assert stored == json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
