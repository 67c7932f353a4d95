"""A small world for fuzzing the HTTP API past its front door.

`seed_world` builds, through the API (and the service calls the other API tests use where no
route exists), one or more of each thing the routes take by id: ledger accounts and transfers
in every state; people with wallets, cards and money; a merchant with a month of takings, QR
orders, a payout account and an SME loan; payments completed, refunded and awaiting a second
factor; bank-rail requests and a card checkout; an AML case; loan applications approved and
taken up, one still open; loans and credit lines that defaulted more than a year ago, one of
each written off; a credit line billed today and one that owes nothing; consents, personal
data, a subject request waiting for its answer; and sessions for the routes that need a party's
own. It answers with the world's pools: named lists of the ids (or of groups of fields that
belong together) from which `tests/e2e/test_api_fuzz.py` draws the fields of its requests;
`BY_NAME` and `BY_OPERATION` below say which field draws from which pool.

The clock: the world starts on the module's clock, lends to the people who will default, moves
on 400 days (their loans and lines are then a year past due), gives the merchant a month of
takings, moves on a month, and does everything else on that day, "today". The sessions and the
codes a person's app would show are made last, and the clock stands still from then on, so
they stay current while the fuzzer runs.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

import pyotp
import schemathesis
from hypothesis import strategies as st

from identity_api_support import OPERATOR_TOKEN, PASSWORD, IdentityApi
from payments_api_support import NS, PAYMENTS, Customer, ok, onboard
from payments_support import registration_number
from tianping.identity import party_service
from tianping.identity.consent import SERVICE_NEEDS
from tianping.lending.credit_lines import INSTALMENT_MONTHLY_FEE_RATES
from tianping.payments.model import local_date
from tianping.payments.payment_codes import PaymentCodeCredential, PaymentCodeIssuer
from tianping.rules.config import configured_rulebook
from tianping.rules.rulebook import read_yaml
from tianping.rules.scenarios import scenario_files

LEDGER: Final = "/v1/ledger"
LENDING: Final = "/v1/lending"
IDENTITY: Final = "/v1/identity"
OPERATOR: Final = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
DAY_S: Final = 86_400
# Long enough for every instalment and bill of the loans and lines lent at the start to be
# more than a year past due: the loss class, which a write-off needs.
DEFAULT_DAYS: Final = 400
# The seeded ledger accounts and transfers take ids from here; new ones drawn for requests
# (`FRESH`) lie above them.
LEDGER_IDS_FROM: Final = 7_700_000

# A pool is a list of values, tuples when several fields must agree (a statement date with its
# line). Fields that name something new draw from `FRESH` instead.
Pools = dict[str, list[Any]]


class _Omitted:
    """A pool value that removes its field from the request (an optional field left out)."""

    def __repr__(self) -> str:
        return "omitted"


_OMIT: Final = _Omitted()


MERCHANT_PASSWORD: Final = "merchant password long enough"
SHOP_REGISTRATION: Final = "91330100716105852"
KIOSK_REGISTRATION: Final = "91440300715267261"
PAYOUT_ACCOUNT_NUMBER: Final = "6217-0000-1234-5678-901"
CARD_NUMBERS: Final = ("6222020200112233445", "6222020200199887766")
# The request ids the services accept (`check_reference`, `check_id`, the clearing house's
# identifiers): a generated text seldom is one, and a request refused for its id never
# reaches the rest of its handler.
REFERENCE_PATTERN: Final = r"[a-z0-9][a-z0-9.-]{0,15}"

BUREAU_TEXT: Final[dict[str, Any]] = {
    "text_id": "fuzz-bureau",
    "version": 1,
    "purposes": ["credit_bureau_reporting"],
    "fields": ["name", "id_number"],
    "language": "en",
    "body": "Tianping reports my credit line to the credit reference centre every month.",
}
SME_TEXT: Final[dict[str, Any]] = {
    "text_id": "fuzz-sme",
    "version": 1,
    "purposes": ["credit_assessment"],
    "fields": ["income"],
    "language": "en",
    "body": "Tianping may assess my business's credit from its own card and QR takings.",
}
MARKETING_TEXT: Final[dict[str, Any]] = {
    "text_id": "fuzz-marketing",
    "version": 1,
    "purposes": ["marketing_personalisation"],
    "fields": ["name", "email"],
    "language": "en",
    "body": "Tianping may suggest offers to me from what I buy.",
}


def _call(api: IdentityApi, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    """The operator's request, which must answer `status`; its JSON body."""
    return ok(api.client.request(method, path, json=body, headers=OPERATOR), status)


def _advance(api: IdentityApi, seconds: int) -> None:
    """Move the clock on, and the server's view of revoked sessions with it."""
    api.clock.advance(seconds)
    identity = api.services.identity
    assert identity is not None
    identity.auth.refresh_revocations()


def _today(api: IdentityApi) -> dt.date:
    return local_date(api.clock())


def _callbacks(api: IdentityApi) -> None:
    _advance(api, 60)
    _call(api, "POST", f"{PAYMENTS}/clearing/callbacks")


def _fund(api: IdentityApi, who: Customer, amount: int) -> str:
    """A top-up from the person's bound card, posted by the clearing house's callback."""
    request_id = f"fund-{who.party_id[-6:]}"
    body = {
        "request_id": request_id,
        "direction": "top_up",
        "card_fingerprint": who.card,
        "amount": amount,
    }
    _call(api, "POST", f"{PAYMENTS}/rails?party_id={who.party_id}", body, 202)
    _callbacks(api)
    return request_id


def _pay(
    api: IdentityApi, payer: str, payee: str, payment_id: str, amount: int, **extra: Any
) -> Any:
    body = {"payment_id": payment_id, "payer_id": payer, "payee_id": payee, "amount": amount}
    return _call(api, "POST", PAYMENTS, body | extra)


def _merchant(api: IdentityApi, name: str, first_17: str) -> str:
    """A merchant party of identity, registered with payments (and a password to log in)."""
    merchant = party_service.register_merchant(
        api.services.ledger,
        f"reg-{name}",
        registration_number=registration_number(first_17),
        clock=api.clock,
    )
    identity = api.services.identity
    assert identity is not None
    identity.auth.set_password(merchant, MERCHANT_PASSWORD, role="merchant")
    body = {"category_code": "5812", "discount_bps": 60}
    _call(api, "POST", f"{PAYMENTS}/merchants/{merchant}", body, 201)
    return merchant


def _apply(api: IdentityApi, application_id: str, party_id: str, **extra: Any) -> Any:
    """An approved application (of 5,000.00 over six months unless `extra` says otherwise)."""
    body = {
        "application_id": application_id,
        "amount": 5_000_00,
        "term_months": 6,
        "annual_income": 100_000_00,
        "applicant_id": party_id,
    }
    offer = _call(api, "POST", f"{LENDING}/applications", body | extra)
    assert offer["outcome"] == "approved", offer
    return offer


def _accept(api: IdentityApi, application_id: str, loan_id: str, **extra: Any) -> Any:
    path = f"{LENDING}/applications/{application_id}/acceptance"
    return _call(api, "POST", path, {"loan_id": loan_id} | extra, 201)


def _open_line(api: IdentityApi, name: str, party_id: str) -> str:
    """A credit line of 5,000.00 for a holder who consented to credit-bureau reporting, billed
    on today's day of the month."""
    application_id, line_id = f"app-line-{name}", f"line-{name}"
    _apply(api, application_id, party_id, product="credit_line", term_months=12)
    body = {"line_id": line_id, "statement_day": min(_today(api).day, 28)}
    _call(api, "POST", f"{LENDING}/applications/{application_id}/credit-line", body, 201)
    return line_id


def _draw(api: IdentityApi, party_id: str, merchant: str, payment_id: str) -> None:
    """A merchant payment of 800.00 on the payer's credit line."""
    extra = {"kind": "merchant", "funding_source": "credit_line"}
    paid = _pay(api, party_id, merchant, payment_id, 800_00, **extra)
    assert paid["status"] == "completed", paid


def _bill_today(api: IdentityApi, *line_ids: str) -> str:
    """Issue today's statements, which must bill the lines `line_ids` (opened today, with today's
    day of the month as their statement day); answers today."""
    today = _today(api).isoformat()
    _call(api, "POST", f"{LENDING}/statement-runs/{today}")
    for line_id in line_ids:
        _call(api, "GET", f"{LENDING}/credit-lines/{line_id}/statements/{today}")
    return today


def _grant(api: IdentityApi, party_id: str, text: Mapping[str, Any]) -> None:
    body = {"request_id": f"grant-{text['text_id']}-{party_id[-6:]}"}
    body |= {"text_id": text["text_id"], "version": text["version"]}
    _call(api, "POST", f"{IDENTITY}/parties/{party_id}/consents", body, 201)


def seed_world(api: IdentityApi, bank: str) -> Pools:
    """Seed the world on `api`, whose payments and lending are installed with `bank` as a
    registered partner bank, and answer its pools."""
    pools: Pools = {
        "banks": [bank],
        "institutions": [bank],
        "currencies": ["CNY"],
        "amounts": [1, 1_00, 10_00],
        "loan_amounts": [1_000_00, 5_000_00],
        "instalment_months": sorted(INSTALMENT_MONTHLY_FEE_RATES),
        "omitted": [_OMIT],
        "passwords": [PASSWORD],
    }
    _seed_ledger(api, pools)
    people = _seed_people(api, bank, pools)
    kiosk = _seed_defaults(api, people, pools)
    shop = _seed_merchant(api, people, pools)
    _seed_payments(api, people, shop, kiosk, pools)
    _seed_lending(api, people, bank, shop, pools)
    _seed_identity(api, people, pools)
    _seed_rules(pools)
    _seed_sessions(api, people, pools)
    # The lending runs' day is today: a later one would find carol's bill unpaid and freeze
    # her line, an earlier one would find nothing to do.
    pools["days"] = [_today(api).isoformat()]
    pools["verification_times"] = [api.clock() - NS]
    return pools


# -- ledger --------------------------------------------------------------------------------


def _seed_ledger(api: IdentityApi, pools: Pools) -> None:
    """Accounts with and without balance history and a closed one; transfers posted, pending,
    voided, posted from pending and reversed."""
    base = LEDGER_IDS_FROM
    history, plain, other, closed = (base + n for n in range(4))
    accounts = [
        {"id": history, "currency": "CNY", "code": 1, "flags": ["history"], "owner": "fuzz"},
        {"id": plain, "currency": "CNY", "code": 1},
        {"id": other, "currency": "CNY", "code": 2, "flags": ["history"]},
        {"id": closed, "currency": "CNY", "code": 1},
    ]
    created = _call(api, "POST", f"{LEDGER}/accounts", {"accounts": accounts})
    assert {result["result"] for result in created["results"]} == {"ok"}, created
    posted, pending, voided, held, post, reversal, void = (base + 100 + n for n in range(7))
    transfers: list[dict[str, Any]] = [
        {"id": posted, "debit_account_id": history, "credit_account_id": other, "amount": 50_00},
        {"id": pending, "debit_account_id": plain, "credit_account_id": history, "amount": 20_00}
        | {"flags": ["pending"], "timeout": 3_600},
        {"id": voided, "debit_account_id": plain, "credit_account_id": other, "amount": 5_00}
        | {"flags": ["pending"]},
        {"id": held, "debit_account_id": other, "credit_account_id": plain, "amount": 7_00}
        | {"flags": ["pending"]},
        {"id": post, "pending_id": held, "flags": ["post_pending"]},
        {"id": reversal, "reverses_id": posted, "amount": 10_00},
        {"id": void, "pending_id": voided, "flags": ["void_pending"]},
    ]
    for transfer in transfers:
        # A transfer that resolves or reverses another takes its currency from that one.
        defaults = {} if {"pending_id", "reverses_id"} & set(transfer) else {"currency": "CNY"}
        event = {"code": 1} | defaults | transfer
        result = _call(api, "POST", f"{LEDGER}/transfers", {"transfers": [event]})
        assert result["results"][0]["result"] == "ok", (transfer, result)
    _call(api, "POST", f"{LEDGER}/accounts/{closed}/close")
    accounts_ids = [str(n) for n in (history, plain, other, closed)]
    transfer_ids = [str(n) for n in (posted, pending, voided, held, post, reversal)]
    pools["ledger_accounts"] = accounts_ids
    pools["history_accounts"] = [str(history), str(other)]
    pools["closable_accounts"] = [str(plain), str(closed)]
    pools["account_codes"] = [1, 2]
    pools["ledger_transfers"] = transfer_ids
    pools["pending_transfers"] = [str(pending)]
    pools["posted_transfers"] = [str(posted), str(post)]
    pools["ledger_id_lists"] = [",".join(accounts_ids), str(history)]
    pools["transfer_id_lists"] = [",".join(transfer_ids), str(posted)]
    pools["ledger_id_arrays"] = [accounts_ids, [str(history)]]
    pools["transfer_id_arrays"] = [transfer_ids, [str(posted)]]


# -- people, and the loans and lines that default ------------------------------------------


def _seed_people(api: IdentityApi, bank: str, pools: Pools) -> dict[str, Customer]:
    """Customers with wallets and cards, most of them funded."""
    names = ("alice", "bob", "carol", "dave", "lena", "erin")
    people = {name: onboard(api, name, bank) for name in names}
    funded = ("alice", "carol", "dave", "lena")
    pools["rails"] = [_fund(api, people[name], 20_000_00) for name in funded]
    pools["customers"] = [people[name].party_id for name in names]
    pools["funded"] = [people[name].party_id for name in funded]
    pools["payers"] = [
        (people["alice"].party_id, "balance"),
        (people["dave"].party_id, "balance"),
        (people["carol"].party_id, "credit_line"),
    ]
    pools["applicants"] = [people[name].party_id for name in names]
    pools["own_cards"] = [(who.party_id, who.card) for who in people.values()]
    return people


def _seed_defaults(api: IdentityApi, people: dict[str, Customer], pools: Pools) -> str:
    """Loans and credit lines lent now and never repaid; DEFAULT_DAYS later they are in the
    loss class: one loan and one line are written off, one of each is left for the fuzzer.
    Answers the merchant the lines were drawn at."""
    dave, lena = people["dave"].party_id, people["lena"].party_id
    kiosk = _merchant(api, "kiosk", KIOSK_REGISTRATION)
    _call(api, "POST", f"{IDENTITY}/consent-texts", BUREAU_TEXT, 201)
    for name in ("bob", "carol", "dave", "erin", "lena"):
        _grant(api, people[name].party_id, BUREAU_TEXT)
    for loan_id in ("loan-lena", "loan-lena-2"):
        _apply(api, f"app-{loan_id}", lena)
        _accept(api, f"app-{loan_id}", loan_id)
    for name, party_id in (("dave", dave), ("lena", lena)):
        _open_line(api, name, party_id)
        _draw(api, party_id, kiosk, f"draw-{name}")
    _bill_today(api, "line-dave", "line-lena")
    _advance(api, DEFAULT_DAYS * DAY_S)
    today = _today(api).isoformat()
    _call(api, "POST", f"{LENDING}/classifications/{today}")
    _call(api, "POST", f"{LENDING}/credit-line-classifications/{today}")
    for path in ("loans/loan-lena-2", "credit-lines/line-lena"):
        assert _call(api, "GET", f"{LENDING}/{path}")["tier"] == "loss", path
    body = {"write_off_id": "wo-loan-lena", "on": today, "reason": "uncollectable"}
    _call(api, "POST", f"{LENDING}/loans/loan-lena/write-off", body)
    body = {"write_off_id": "wo-line-dave", "on": today, "reason": "uncollectable"}
    _call(api, "POST", f"{LENDING}/credit-lines/line-dave/write-off", body)
    pools["loss_loans"] = [("loan-lena-2", today)]
    pools["loss_lines"] = [("line-lena", today)]
    pools["written_off_loans"] = [("loan-lena", today)]
    pools["written_off_lines"] = [("line-dave", today)]
    pools["loans"] = ["loan-lena", "loan-lena-2"]
    pools["lines"] = ["line-dave", "line-lena"]
    pools["applications"] = ["app-loan-lena", "app-loan-lena-2", "app-line-dave", "app-line-lena"]
    return kiosk


# -- the merchant and payments ---------------------------------------------------------------


def _seed_merchant(api: IdentityApi, people: dict[str, Customer], pools: Pools) -> str:
    """A merchant with a month of takings, then a month on: its SME loan (with a sweep) is
    judged on them, and its proceeds are the free balance a payout pays out."""
    shop = _merchant(api, "shop", SHOP_REGISTRATION)
    for index, amount in enumerate((250_00, 350_00)):
        payer = people["alice"].party_id
        paid = _pay(api, payer, shop, f"takings-{index}", amount, kind="merchant")
        assert paid["status"] == "completed", paid
    _advance(api, 31 * DAY_S)
    pools["business_days"] = [paid["business_date"], _today(api).isoformat()]

    _call(api, "POST", f"{IDENTITY}/consent-texts", SME_TEXT, 201)
    _grant(api, shop, SME_TEXT)
    _apply(api, "app-sme", shop, amount=1_200_00, annual_income=8_000_00, product="sme")
    _accept(api, "app-sme", "loan-sme", sweep_bps=1_000)

    registration = registration_number(SHOP_REGISTRATION)
    account = {"account_number": PAYOUT_ACCOUNT_NUMBER, "holder_registration_number": registration}
    _call(api, "PUT", f"{PAYMENTS}/merchants/{shop}/payout-account", account)
    payout = {"request_id": "payout-1", "amount": 100_00}
    _call(api, "POST", f"{PAYMENTS}/merchants/{shop}/payouts", payout, 202)
    pools["payouts"] = [(shop, "payout-1")]
    pools["registrations"] = [(shop, registration)]
    pools["payout_account_numbers"] = [PAYOUT_ACCOUNT_NUMBER]
    pools["loans"] += ["loan-sme"]
    pools["applications"] += ["app-sme"]
    pools["applicants"] += [shop]
    return shop


def _seed_payments(
    api: IdentityApi, people: dict[str, Customer], shop: str, kiosk: str, pools: Pools
) -> None:
    """Payments completed, refunded in part and in full, and awaiting a second factor; a card
    checkout; QR codes; a withdrawal the clearing house has not answered; an AML case."""
    alice, bob = people["alice"].party_id, people["bob"].party_id
    # A merchant of identity that payments has not registered yet.
    pools["merchant_parties"] = [
        party_service.register_merchant(
            api.services.ledger,
            "reg-stall",
            registration_number=registration_number("91110000633713385"),
            clock=api.clock,
        ),
        shop,
    ]
    pools["merchants"] = [shop, kiosk]

    completed = [
        _pay(api, alice, bob, "pay-p2p", 10_00),
        _pay(api, alice, shop, "pay-shop", 88_00, kind="merchant"),
        _pay(api, alice, shop, "pay-refunded", 20_00, kind="merchant"),
    ]
    assert {outcome["status"] for outcome in completed} == {"completed"}, completed
    refund = {"refund_id": "refund-part", "amount": 8_00}
    _call(api, "POST", f"{PAYMENTS}/pay-shop/refunds", refund, 201)
    refund = {"refund_id": "refund-all", "amount": 20_00}
    _call(api, "POST", f"{PAYMENTS}/pay-refunded/refunds", refund, 201)
    waiting = []
    for index in range(2):
        stopped = _pay(api, alice, bob, f"pay-step-up-{index}", 1_500_00, payer_auth_factors=1)
        assert stopped["status"] == "step_up_required", stopped
        waiting.append(stopped["payment_id"])
    pools["payments"] = ["pay-p2p", "pay-shop", "pay-refunded", *waiting]
    pools["merchant_payments"] = ["pay-shop", "pay-refunded"]
    pools["step_up_payments"] = waiting
    pools["decisions"] = [str(outcome["decision_id"]) for outcome in completed]

    checkout = {
        "payment_id": "checkout-1",
        "merchant_id": shop,
        "amount": 42_00,
        "card_fingerprint": people["alice"].card,
        "payer_id": alice,
    }
    _call(api, "POST", f"{PAYMENTS}/card-checkouts", checkout, 202)
    pools["card_checkouts"] = ["checkout-1"]

    # The merchant's static code (the payer types the amount) and dynamic orders.
    static = _call(api, "GET", f"{PAYMENTS}/merchants/{shop}/qr?merchant_name=Fuzz%20Shop")
    codes = [(static["payload"], 5_00)]
    for index in range(3):
        order = {"reference": f"order-{index}", "amount": 12_00, "merchant_name": "Fuzz Shop"}
        made = _call(api, "POST", f"{PAYMENTS}/merchants/{shop}/orders", order, 201)
        codes.append((made["payload"], made["amount"]))
    pools["qr_codes"] = codes

    # Bob's phone, for the payee lookup (by phone or by id, never both).
    phone = "13812345678"
    change = {"request_id": "bob-phone", "changes": {"phone": phone}}
    _call(api, "PATCH", f"{IDENTITY}/parties/{bob}/personal-data", change)
    pools["payee_lookups"] = [(phone, _OMIT), (_OMIT, bob)]
    pools["payees"] = [
        (bob, "p2p", "Person bob"),
        (people["erin"].party_id, "p2p", None),
        (shop, "merchant", None),
    ]

    withdrawal = {
        "request_id": "withdraw-alice",
        "direction": "withdrawal",
        "card_fingerprint": people["alice"].card,
        "amount": 50_00,
    }
    _call(api, "POST", f"{PAYMENTS}/rails?party_id={alice}", withdrawal, 202)
    pools["rails"] += ["withdraw-alice"]

    # A fan-out (alice pays five people in a day) opens an AML case.
    for name in ("bob", "carol", "dave", "lena", "erin"):
        paid = _pay(api, alice, people[name].party_id, f"fan-{name}", 10_00)
        assert paid["status"] == "completed", paid
    scan = _call(api, "POST", f"{PAYMENTS}/aml/scans/{paid['business_date']}?days=1")
    assert scan["cases_opened"], scan
    pools["aml_cases"] = list(scan["cases_opened"])
    pools["aml_values"] = ["officer-1", "no_action", "false_positive", "reported_str"]


# -- lending ---------------------------------------------------------------------------------


def _seed_lending(
    api: IdentityApi, people: dict[str, Customer], bank: str, shop: str, pools: Pools
) -> None:
    """A loan co-funded by the partner bank and an approved offer not yet taken up; carol's and
    alice's credit lines billed today; erin's, which owes nothing; bob's offer of a line."""
    dave = people["dave"].party_id
    _apply(api, "app-dave", dave, partner_bank_id=bank)
    _accept(api, "app-dave", "loan-dave")
    _apply(api, "app-dave-open", dave)
    pools["open_applications"] = [("app-dave-open", people["dave"].card)]
    # Carol's bill is the one the fuzzer repays, alice's the one it turns into instalments.
    _grant(api, people["alice"].party_id, BUREAU_TEXT)
    for name in ("carol", "alice"):
        _open_line(api, name, people[name].party_id)
        _draw(api, people[name].party_id, shop, f"draw-{name}")
    today = _bill_today(api, "line-carol", "line-alice")
    _open_line(api, "erin", people["erin"].party_id)
    _apply(api, "app-line-bob", people["bob"].party_id, product="credit_line", term_months=12)
    pools["open_line_applications"] = ["app-line-bob"]
    pools["loans"] += ["loan-dave"]
    pools["lines"] += ["line-carol", "line-erin"]
    pools["repaid_lines"] = ["line-erin"]
    pools["statements"] = [("line-alice", today)]
    pools["applications"] += [
        "app-dave",
        "app-dave-open",
        "app-line-carol",
        "app-line-bob",
    ]


# -- identity, sessions and rules ------------------------------------------------------------


def _seed_identity(api: IdentityApi, people: dict[str, Customer], pools: Pools) -> None:
    """Consent texts and consents; people to erase, to list and to give a password, so that the
    people whose money and loans the other routes move keep theirs; a payment account without
    a wallet; a request for an explanation waiting for its answer."""
    _call(api, "POST", f"{IDENTITY}/consent-texts", MARKETING_TEXT, 201)
    texts = (BUREAU_TEXT, SME_TEXT, MARKETING_TEXT)
    pools["consent_texts"] = [(text["text_id"], text["version"]) for text in texts]
    pools["purpose_lists"] = [list(text["purposes"]) for text in texts]
    pools["field_lists"] = [list(text["fields"]) for text in texts]
    # Marketing consents, granted to be withdrawn (the bureau consents keep the lines going).
    granted = [people[name].party_id for name in ("bob", "erin")]
    for party_id in granted:
        _grant(api, party_id, MARKETING_TEXT)
    pools["withdrawable"] = [(party_id, MARKETING_TEXT["text_id"]) for party_id in granted]
    pools["services"] = sorted(SERVICE_NEEDS)
    pools["card_holders"] = [(who.party_id, f"Person {name}") for name, who in people.items()]
    pools["card_numbers"] = list(CARD_NUMBERS)
    # Fields that leave the names alone: a card is bound in its holder's own name.
    pools["personal_data"] = [{"email": "fuzz@example.cn"}, {"address": "1 Fuzz Road"}]
    pools["personal_data_changes"] = [{"phone": "13900000000"}, {"email": None}]
    pools["read_fields"] = [["name"], ["name", "phone"]]
    pools["purposes"] = ["payment_service", "identity_verification", "marketing_personalisation"]
    pools["guardians"] = [people["alice"].party_id]

    def person(name: str) -> str:
        party_id = api.register(f"reg-{name}")
        body = {"request_id": f"pd-{name}", "fields": {"name": f"Person {name}"}}
        _call(api, "PUT", f"{IDENTITY}/parties/{party_id}/personal-data", body)
        return party_id

    pools["erasable"] = [person(f"erase-{index}") for index in range(2)]
    pools["listable"] = [person(f"listed-{index}") for index in range(2)]
    pools["password_holders"] = [person("pat")]
    walt = person("walt")
    check = {
        "verification_id": "v-walt",
        "channel": "id_document_name_check",
        "source": "fuzz",
        "verified_at": api.clock() - NS,
    }
    _call(api, "POST", f"{IDENTITY}/parties/{walt}/verifications", check)
    body = {"request_id": "acct-walt", "institution_id": pools["institutions"][0]}
    account = _call(api, "POST", f"{IDENTITY}/parties/{walt}/payment-accounts", body, 201)
    pools["unwalleted_accounts"] = [(walt, account["account_id"])]
    pools["people"] = [
        *pools["customers"],
        *pools["erasable"],
        *pools["listable"],
        *pools["password_holders"],
        walt,
    ]

    dave = people["dave"].party_id
    asked = {"request_id": "explain-1", "decision_reference": "app-dave"}
    _call(api, "POST", f"{IDENTITY}/parties/{dave}/explanation-requests", asked, 201)
    pools["subject_requests"] = ["explain-1"]
    pools["decision_references"] = ["app-dave", "app-loan-lena", "loan-lena"]


def _seed_rules(pools: Pools) -> None:
    """The configured rulebook's rules, points and overlays, and its scenarios' facts."""
    rulebook = configured_rulebook()
    assert rulebook.directory is not None
    pools["rules"] = [spec.id for spec in rulebook.rules]
    pools["points"] = sorted({spec.point for spec in rulebook.rules})
    overlays = sorted((rulebook.directory / "overlays").glob("*.yaml"))
    pools["overlays"] = [[path.stem] for path in overlays]
    pools["rule_checks"] = [
        (raw["point"], raw["date"], raw["facts"], raw.get("overlays", []))
        for path in scenario_files(rulebook.directory)
        for raw in read_yaml(path)
    ]


def _seed_sessions(api: IdentityApi, people: dict[str, Customer], pools: Pools) -> None:
    """Sessions of people who log in, refresh, log out, enrol and confirm TOTP and step up,
    with the codes their apps would show, and a customer's payment codes. Made last: the clock
    stands still from here on, so the codes and tokens stay current while the fuzzer runs."""

    def session(party_id: str) -> dict[str, Any]:
        response = api.login(party_id)
        assert response.status_code == 200, response.text
        opened: dict[str, Any] = response.json()
        return opened

    stella, tess, uma, lou, lin = (
        api.customer(f"reg-{name}") for name in ("stella", "tess", "uma", "lou", "lin")
    )
    # Stella's TOTP is active; tess's enrolment waits for its first code.
    apps: dict[str, pyotp.TOTP] = {}
    for party_id in (stella, tess):
        token = session(party_id)["access_token"]
        uri = ok(api.as_party(token, "POST", "/totp/enrol"))["provisioning_uri"]
        app = pyotp.parse_uri(uri)
        assert isinstance(app, pyotp.TOTP)
        apps[party_id] = app
    code = {"code": apps[stella].at(api.clock() // NS)}
    ok(api.as_party(session(stella)["access_token"], "POST", "/totp/confirm", code), 204)
    # A code is used once: the step-up's comes from the next step.
    _advance(api, 31)
    now_s = api.clock() // NS

    def headers(party_id: str, count: int) -> list[str]:
        """The Authorization headers of `count` sessions of the party."""
        return [f"Bearer {session(party_id)['access_token']}" for _ in range(count)]

    pools["login_identifiers"] = [lin]
    pools["refresh_tokens"] = [session(lin)["refresh_token"] for _ in range(3)]
    pools["logout_sessions"] = headers(lou, 3)
    pools["step_up_sessions"] = headers(stella, 2)
    pools["step_up_codes"] = [apps[stella].at(now_s)]
    pools["enrol_sessions"] = headers(uma, 2)
    pools["confirm_sessions"] = headers(tess, 2)
    pools["confirm_codes"] = [apps[tess].at(now_s)]
    pools["people"] += [stella, tess, uma, lou, lin]

    # Alice's payment code, as her app shows it a step either side of now.
    alice = people["alice"].party_id
    enrolment = _call(api, "POST", f"{PAYMENTS}/parties/{alice}/payment-code", None, 201)
    secret = base64.b64decode(enrolment["secret"])
    issuer = PaymentCodeIssuer(PaymentCodeCredential(enrolment["slot"], secret))
    step = enrolment["step_seconds"]
    pools["payment_codes"] = [issuer.code_at(now_s + skew * step) for skew in (-1, 0, 1)]
    # Others enrol theirs (alice's would stop working).
    pools["payment_code_holders"] = [people[name].party_id for name in ("bob", "carol")]


# -- where generated requests name the world's things ----------------------------------------


@dataclass(frozen=True)
class Draw:
    """Fields of a request that name one thing of the world, drawn together from `pool`.

    A field is `<part>.<name>`, the part being `path`, `query`, `body` or `headers`; `[]` after
    a body field reaches every item of a list (`body.transfers[].debit_account_id`). With one
    field a pool holds values, with several it holds tuples, one value per field.
    """

    pool: str
    fields: tuple[str, ...]


def draw(pool: str, *fields: str) -> Draw:
    return Draw(pool, fields)


# A field of this name names this kind of thing wherever it appears (and is sent): the pool it
# is drawn from unless the operation says otherwise below.
BY_NAME: Final = {
    "path.party_id": "people",
    "path.payment_id": "payments",
    "path.account_id": "ledger_accounts",
    "path.transfer_id": "ledger_transfers",
    "path.loan_id": "loans",
    "path.line_id": "lines",
    "path.application_id": "applications",
    "path.case_id": "aml_cases",
    "path.decision_id": "decisions",
    "path.rule_id": "rules",
    "path.bank_id": "banks",
    "path.business_date": "business_days",
    "path.day": "days",
    "path.service": "services",
    "query.currency": "currencies",
    "query.point": "points",
    "query.overlay": "overlays",
    "query.on": "days",
    "query.since": "days",
    "query.until": "days",
    "body.payer_id": "funded",
    "body.merchant_id": "merchants",
    "body.institution_id": "institutions",
    "body.partner_bank_id": "banks",
    "body.applicant_id": "applicants",
    "body.guardian_party_id": "guardians",
    "body.decision_reference": "decision_references",
    "body.amount": "amounts",
    "body.currency": "currencies",
    "body.password": "passwords",
    "body.verified_at": "verification_times",
    # Fields that name something new: ids the services accept.
    **{
        f"body.{name}": "references"
        for name in (
            "request_id",
            "verification_id",
            "binding_id",
            "payment_id",
            "refund_id",
            "application_id",
            "loan_id",
            "line_id",
            "plan_id",
            "write_off_id",
            "recovery_id",
            "text_id",
        )
    },
}

# What an operation's fields name where the name alone does not say (a request id is a rail
# request here and a payout there), and the fields that must agree with each other.
BY_OPERATION: Final[dict[str, tuple[Draw, ...]]] = {
    # payments
    "POST /v1/payments": (
        draw("payers", "body.payer_id", "body.funding_source"),
        draw("payees", "body.payee_id", "body.kind", "body.payee_name"),
    ),
    "POST /v1/payments/parties/{party_id}/wallet": (
        draw("unwalleted_accounts", "path.party_id", "body.payment_account_id"),
    ),
    "GET /v1/payments/parties/{party_id}/wallet": (draw("customers", "path.party_id"),),
    "POST /v1/payments/merchants/{party_id}": (draw("merchant_parties", "path.party_id"),),
    "GET /v1/payments/merchants/{party_id}/qr": (draw("merchants", "path.party_id"),),
    "POST /v1/payments/merchants/{party_id}/orders": (draw("merchants", "path.party_id"),),
    "PUT /v1/payments/merchants/{party_id}/payout-account": (
        draw("registrations", "path.party_id", "body.holder_registration_number"),
        draw("payout_account_numbers", "body.account_number"),
    ),
    "GET /v1/payments/merchants/{party_id}/payout-account": (draw("merchants", "path.party_id"),),
    "GET /v1/payments/merchants/{party_id}/free-balance": (draw("merchants", "path.party_id"),),
    "POST /v1/payments/merchants/{party_id}/payouts": (draw("merchants", "path.party_id"),),
    "GET /v1/payments/merchants/{party_id}/payouts/{request_id}": (
        draw("payouts", "path.party_id", "path.request_id"),
    ),
    "POST /v1/payments/card-checkouts": (
        draw("own_cards", "body.payer_id", "body.card_fingerprint"),
    ),
    "GET /v1/payments/card-checkouts/{payment_id}": (draw("card_checkouts", "path.payment_id"),),
    "POST /v1/payments/parties/{party_id}/payment-code": (
        draw("payment_code_holders", "path.party_id"),
    ),
    "POST /v1/payments/payment-code": (
        draw("payment_codes", "body.code"),
        draw("merchants", "body.merchant_id"),
    ),
    "POST /v1/payments/payees": (draw("payee_lookups", "body.phone", "body.party_id"),),
    "POST /v1/payments/qr": (
        draw("qr_codes", "body.payload", "body.amount"),
        draw("funded", "body.payer_id"),
    ),
    "POST /v1/payments/{payment_id}/resume": (draw("step_up_payments", "path.payment_id"),),
    "POST /v1/payments/{payment_id}/refunds": (draw("merchant_payments", "path.payment_id"),),
    "POST /v1/payments/rails": (draw("own_cards", "query.party_id", "body.card_fingerprint"),),
    "GET /v1/payments/rails/{request_id}": (draw("rails", "path.request_id"),),
    "POST /v1/payments/aml/cases/{case_id}/{action}": (draw("aml_values", "body.value"),),
    # ledger
    "POST /v1/ledger/accounts": (
        draw("new_account_ids", "body.accounts[].id"),
        draw("account_codes", "body.accounts[].code"),
        draw("currencies", "body.accounts[].currency"),
    ),
    "GET /v1/ledger/accounts": (draw("ledger_id_lists", "query.ids"),),
    "POST /v1/ledger/accounts/lookup": (draw("ledger_id_arrays", "body.ids"),),
    "POST /v1/ledger/transfers": (
        draw("new_transfer_ids", "body.transfers[].id"),
        draw("ledger_accounts", "body.transfers[].debit_account_id"),
        draw("ledger_accounts", "body.transfers[].credit_account_id"),
        draw("pending_transfers", "body.transfers[].pending_id"),
        draw("posted_transfers", "body.transfers[].reverses_id"),
        draw("currencies", "body.transfers[].currency"),
        draw("amounts", "body.transfers[].amount"),
    ),
    "GET /v1/ledger/transfers": (draw("transfer_id_lists", "query.ids"),),
    "POST /v1/ledger/transfers/lookup": (draw("transfer_id_arrays", "body.ids"),),
    "POST /v1/ledger/accounts/{account_id}/close": (draw("closable_accounts", "path.account_id"),),
    "POST /v1/ledger/accounts/{account_id}/reopen": (draw("closable_accounts", "path.account_id"),),
    "GET /v1/ledger/accounts/{account_id}/balances": (draw("history_accounts", "path.account_id"),),
    "GET /v1/ledger/accounts/{account_id}/balance": (draw("history_accounts", "path.account_id"),),
    # rules
    "POST /v1/rules/check": (
        draw("rule_checks", "body.point", "body.date", "body.facts", "body.overlays"),
    ),
    # identity
    "PUT /v1/identity/parties/{party_id}/password": (draw("password_holders", "path.party_id"),),
    "POST /v1/identity/parties/{party_id}/blocklist": (draw("listable", "path.party_id"),),
    "POST /v1/identity/login": (
        draw("login_identifiers", "body.identifier"),
        draw("passwords", "body.password"),
        draw("omitted", "body.totp_code"),
    ),
    "POST /v1/identity/refresh": (draw("refresh_tokens", "body.refresh_token"),),
    "POST /v1/identity/logout": (draw("logout_sessions", "headers.Authorization"),),
    "POST /v1/identity/step-up": (
        draw("step_up_sessions", "headers.Authorization"),
        draw("step_up_codes", "body.totp_code"),
    ),
    "POST /v1/identity/totp/enrol": (draw("enrol_sessions", "headers.Authorization"),),
    "POST /v1/identity/totp/confirm": (
        draw("confirm_sessions", "headers.Authorization"),
        draw("confirm_codes", "body.code"),
    ),
    "POST /v1/identity/consent-texts": (
        draw("purpose_lists", "body.purposes"),
        draw("field_lists", "body.fields"),
        draw("omitted", "body.recipient"),
    ),
    "GET /v1/identity/consent-texts/{text_id}/versions/{version}": (
        draw("consent_texts", "path.text_id", "path.version"),
    ),
    "POST /v1/identity/parties/{party_id}/consents": (
        draw("consent_texts", "body.text_id", "body.version"),
    ),
    "POST /v1/identity/parties/{party_id}/consents/{text_id}/withdrawal": (
        draw("withdrawable", "path.party_id", "path.text_id"),
    ),
    "PUT /v1/identity/parties/{party_id}/personal-data": (draw("personal_data", "body.fields"),),
    "PATCH /v1/identity/parties/{party_id}/personal-data": (
        draw("personal_data_changes", "body.changes"),
    ),
    "POST /v1/identity/parties/{party_id}/personal-data/read": (
        draw("read_fields", "body.fields"),
        draw("purposes", "body.purpose"),
        draw("omitted", "body.recipient"),
    ),
    "POST /v1/identity/parties/{party_id}/case-access": (draw("read_fields", "body.fields"),),
    "POST /v1/identity/parties/{party_id}/erasure": (draw("erasable", "path.party_id"),),
    "POST /v1/identity/subject-requests/{request_id}/answer": (
        draw("subject_requests", "path.request_id"),
    ),
    "POST /v1/identity/parties/{party_id}/payment-accounts": (
        draw("omitted", "body.guardian_consent_reference"),
    ),
    "POST /v1/identity/parties/{party_id}/cards": (
        draw("card_holders", "path.party_id", "body.holder_name"),
        draw("card_numbers", "body.card_number"),
    ),
    # lending
    "POST /v1/lending/applications": (
        draw("loan_amounts", "body.amount"),
        draw("applicants", "body.applicant_id"),
    ),
    "POST /v1/lending/applications/{application_id}/acceptance": (
        draw("open_applications", "path.application_id", "body.card_fingerprint"),
    ),
    "POST /v1/lending/loans/{loan_id}/write-off": (draw("loss_loans", "path.loan_id", "body.on"),),
    "POST /v1/lending/loans/{loan_id}/recoveries": (
        draw("written_off_loans", "path.loan_id", "body.on"),
    ),
    "POST /v1/lending/applications/{application_id}/credit-line": (
        draw("open_line_applications", "path.application_id"),
    ),
    "GET /v1/lending/credit-lines/{line_id}/statements/{statement_date}": (
        draw("statements", "path.line_id", "path.statement_date"),
    ),
    "POST /v1/lending/credit-lines/{line_id}/statements/{statement_date}/instalment-quotes": (
        draw("statements", "path.line_id", "path.statement_date"),
        draw("instalment_months", "body.months"),
    ),
    "POST /v1/lending/credit-lines/{line_id}/statements/{statement_date}/instalments": (
        draw("statements", "path.line_id", "path.statement_date"),
        draw("instalment_months", "body.months"),
    ),
    "POST /v1/lending/credit-lines/{line_id}/closure": (draw("repaid_lines", "path.line_id"),),
    "GET /v1/lending/credit-lines/{line_id}/transactions": (draw("omitted", "query.after"),),
    "POST /v1/lending/credit-lines/{line_id}/write-off": (
        draw("loss_lines", "path.line_id", "body.on"),
    ),
    "POST /v1/lending/credit-lines/{line_id}/recoveries": (
        draw("written_off_lines", "path.line_id", "body.on"),
    ),
}


# Pools of things that do not exist yet, for the fields that name something new.
FRESH: Final[dict[str, st.SearchStrategy[Any]]] = {
    "references": st.from_regex(REFERENCE_PATTERN, fullmatch=True),
    "new_account_ids": st.integers(LEDGER_IDS_FROM + 1_000, LEDGER_IDS_FROM + 9_999),
    "new_transfer_ids": st.integers(LEDGER_IDS_FROM + 10_000, LEDGER_IDS_FROM + 99_999),
}


def draws_for(label: str, sent: set[str]) -> tuple[Draw, ...]:
    """The draws of the operation `label` whose request sends the fields `sent`: its own, and
    by name those of the fields it sends that its own do not cover."""
    own = BY_OPERATION.get(label, ())
    covered = {field for item in own for field in item.fields}
    by_name = tuple(
        Draw(pool, (field,))
        for field, pool in BY_NAME.items()
        if field in sent and field not in covered
    )
    return own + by_name


# One draw in this many keeps the value the generator made; the others take the world's.
_GENERATED_ONE_IN: Final = 4


class _Generated:
    """What a draw answers when the generated value stays."""


_GENERATED: Final = _Generated()


def _seeded_or_generated(pools: Pools, name: str) -> st.SearchStrategy[Any]:
    """Mostly a value of the pool `name` (of the world's, or a fresh one), sometimes
    `_GENERATED`."""
    seeded = FRESH.get(name)
    if seeded is None:
        pool = pools.get(name)
        if not pool:
            return st.just(_GENERATED)
        seeded = st.sampled_from(pool)
    return st.integers(1, _GENERATED_ONE_IN).flatmap(
        lambda n: st.just(_GENERATED) if n == _GENERATED_ONE_IN else seeded
    )


def drawn_from_world(
    pools: Pools, case: schemathesis.Case, authorization: str
) -> st.SearchStrategy[schemathesis.Case]:
    """`case`, its fields that name things drawn mostly from `pools` (the operation's draws,
    `draws_for`), and sent with `authorization` unless a draw names a party's session."""
    body = case.body if isinstance(case.body, dict) else {}
    sent = {f"path.{name}" for name in case.path_parameters}
    sent |= {f"query.{name}" for name in case.query or {}} | {f"body.{name}" for name in body}
    draws = draws_for(case.operation.label, sent)
    chosen = st.tuples(*(_seeded_or_generated(pools, item.pool) for item in draws))
    return chosen.map(lambda values: _with_values(case, draws, values, authorization))


def _with_values(
    case: schemathesis.Case,
    draws: tuple[Draw, ...],
    values: tuple[Any, ...],
    authorization: str,
) -> schemathesis.Case:
    parts: dict[str, Any] = {
        "path": dict(case.path_parameters),
        "query": dict(case.query or {}),
        "body": copy.deepcopy(case.body),
        "headers": {"Authorization": authorization},
    }
    for item, value in zip(draws, values, strict=True):
        if value is _GENERATED:
            continue
        per_field = value if len(item.fields) > 1 else (value,)
        for field, field_value in zip(item.fields, per_field, strict=True):
            _place(parts, field, field_value)
    case.path_parameters = parts["path"]
    case.query = parts["query"]
    case.body = parts["body"]
    case.headers.update(parts["headers"])
    return case


def _place(parts: dict[str, Any], field: str, value: Any) -> None:
    """Put `value` in the request's `field` (an omitted value removes the field)."""
    part, _, name = field.partition(".")
    container = parts[part]
    if not isinstance(container, MutableMapping):
        return  # a body that is not an object has no fields to name anything
    if "[]." in name:
        items, _, name = name.partition("[].")
        targets = [item for item in container.get(items) or () if isinstance(item, MutableMapping)]
    else:
        targets = [container]
    for target in targets:
        if value is _OMIT:
            target.pop(name, None)
        else:
            target[name] = copy.deepcopy(value)
