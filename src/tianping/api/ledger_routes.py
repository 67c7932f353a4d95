"""The ledger's HTTP routes, under /v1/ledger, and the health probe.

Each handler translates JSON to the ledger's own types, calls one use case of
`tianping.ledger.service.Ledger` and renders the outcome; it decides nothing itself. Refusals
travel as the ledger's exceptions and become problem documents in `problems.py`.

Handlers are plain `def` functions on purpose: the ledger is synchronous (it blocks on the
database), so FastAPI runs each call in its thread pool instead of on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Annotated, Any, Final, cast

from fastapi import APIRouter, Depends, Query, Request

from tianping.api.problems import ApiProblem
from tianping.api.schemas import (
    ID_TEXT_LENGTH_MAX,
    AccountList,
    AccountOut,
    AccountStateChange,
    BalanceAt,
    BalanceOut,
    BalancePage,
    ChainBreakOut,
    ChainReportOut,
    CheckReport,
    CreateAccountsRequest,
    CreateResults,
    CreateTransfersRequest,
    EventResult,
    Health,
    LedgerIdPath,
    LookupRequest,
    PageCursor,
    ProblemDetails,
    ResultRegistry,
    StatementOut,
    StatementTotals,
    TransferList,
    TransferOut,
    TransferPage,
    iso_utc,
)
from tianping.api.security import FILTERED_BY_HANDLER, Access, OwnershipRule, require
from tianping.bootstrap import Services
from tianping.ledger.audit import verify_chain
from tianping.ledger.ids import parse_id
from tianping.ledger.limits import IDS_PER_LOOKUP_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from tianping.ledger.results import describe_registry
from tianping.ledger.service import TIMESTAMP_MAX

__all__ = ["get_services", "health_router", "router"]

logger = logging.getLogger(__name__)

# The problem+json response every route may give, for the OpenAPI document.
_PROBLEM_RESPONSE: Final[dict[str, Any]] = {
    "model": ProblemDetails,
    "content": {"application/problem+json": {}},
    "description": "A problem (RFC 9457), identified by its `code`.",
}

router = APIRouter(
    prefix="/v1/ledger",
    tags=["ledger"],
    responses={"4XX": _PROBLEM_RESPONSE, "5XX": _PROBLEM_RESPONSE},
)
health_router = APIRouter(tags=["health"], responses={"5XX": _PROBLEM_RESPONSE})


def get_services(request: Request) -> Services:
    """The process's services, put on the app by `create_app`."""
    return cast(Services, request.app.state.services)


async def _services_dependency(request: Request) -> Services:
    """`get_services` as a route dependency. A coroutine, because FastAPI runs a plain function
    dependency on a worker thread, and a hop to a thread and back for reading one attribute
    costs more than everything else the dependency does."""
    return get_services(request)


def _account_owners(request: Request) -> tuple[str, ...]:
    account_id = parse_id(str(request.path_params["account_id"]))
    account = get_services(request).ledger.lookup_account(account_id)
    if account is None:
        raise ApiProblem("account_not_found", f"no account has id {account_id}")
    return (account.owner,)


def _transfer_owners(request: Request) -> tuple[str, ...]:
    transfer_id = parse_id(str(request.path_params["transfer_id"]))
    ledger = get_services(request).ledger
    transfers = ledger.lookup_transfers([transfer_id])
    if not transfers:
        raise ApiProblem("transfer_not_found", f"no transfer has id {transfer_id}")
    sides = ledger.lookup_accounts([transfers[0].debit_account_id, transfers[0].credit_account_id])
    return tuple(account.owner for account in sides)


# Who owns what on the ledger: an account is its `owner`'s; a transfer belongs to the owners of
# both its accounts (payer and payee each see it). Someone else's account or transfer answers
# exactly as a missing one does, so its existence is not disclosed either.
ACCOUNT_IN_PATH: Final = OwnershipRule(
    "ledger account in path", _account_owners, "account_not_found"
)
TRANSFER_IN_PATH: Final = OwnershipRule(
    "ledger transfer in path", _transfer_owners, "transfer_not_found"
)

_READ_OWN_ACCOUNT: Final = [
    Depends(require("ledger:read", own="ledger:read:own", owner=ACCOUNT_IN_PATH))
]
_READ_OWN_TRANSFER: Final = [
    Depends(require("ledger:read", own="ledger:read:own", owner=TRANSFER_IN_PATH))
]
# List lookups admit owners too and keep only what the caller owns (see `_account_list`).
ReadFiltered = Annotated[
    Access, Depends(require("ledger:read", own="ledger:read:own", owner=FILTERED_BY_HANDLER))
]
_WRITE: Final = [Depends(require("ledger:write"))]
_AUDIT: Final = [Depends(require("ledger:audit"))]

# A comma-separated lookup list of the largest allowed size.
_ID_LIST_TEXT_LENGTH_MAX: Final = IDS_PER_LOOKUP_MAX * (ID_TEXT_LENGTH_MAX + 1) - 1


ServicesDependency = Annotated[Services, Depends(_services_dependency)]
TimestampMin = Annotated[
    int, Query(ge=0, le=TIMESTAMP_MAX, description="Inclusive lower bound, ns; 0 = unbounded.")
]
TimestampMax = Annotated[
    int, Query(ge=0, le=TIMESTAMP_MAX, description="Inclusive upper bound, ns; 0 = unbounded.")
]
PageLimit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="Page size.")]
IdList = Annotated[
    str,
    Query(
        min_length=1,
        max_length=_ID_LIST_TEXT_LENGTH_MAX,
        description=f"Comma-separated ids, at most {IDS_PER_LOOKUP_MAX}.",
    ),
]


def _parse_id_list(text: str) -> list[int]:
    return [parse_id(part.strip()) for part in text.split(",")]


def _results(ids: Sequence[int], codes: Sequence[IntEnum]) -> CreateResults:
    return CreateResults(
        results=[
            EventResult(index=index, id=str(ids[index]), result=code.name, code=int(code))
            for index, code in enumerate(codes)
        ]
    )


def _next_page(
    timestamps: Sequence[int],
    limit: int,
    newest_first: bool,
    timestamp_min: int,
    timestamp_max: int,
) -> PageCursor | None:
    """The bounds of the next page, or None when this page was not full (so it was the last).

    A full page may happen to be the last one; the next request then returns an empty page.
    """
    if len(timestamps) < limit:
        return None
    last = timestamps[-1]
    if newest_first:
        # Zero means "unbounded" to the ledger, so a bound that would reach zero is the end.
        if last - 1 < max(timestamp_min, 1):
            return None
        return PageCursor(timestamp_min=timestamp_min, timestamp_max=last - 1)
    if last >= TIMESTAMP_MAX:
        return None
    return PageCursor(timestamp_min=last + 1, timestamp_max=timestamp_max)


# -- writes --------------------------------------------------------------------------------


@router.post("/accounts", dependencies=_WRITE)
def create_accounts(batch: CreateAccountsRequest, services: ServicesDependency) -> CreateResults:
    """Create a batch of accounts. Every account gets a result, in the order sent.

    A replay of an account already created answers `exists`; the same id with different fields
    answers `exists_with_different_fields`.
    """
    events = [account.to_event() for account in batch.accounts]
    codes = services.ledger.create_accounts(events)
    return _results([event.id for event in events], codes)


@router.post("/transfers", dependencies=_WRITE)
def create_transfers(batch: CreateTransfersRequest, services: ServicesDependency) -> CreateResults:
    """Create a batch of transfers. Every transfer gets a result, in the order sent.

    The answer comes after the batch is durably committed. A client that got no answer retries
    with the same ids: a transfer that was committed answers `exists`.
    """
    events = [transfer.to_event() for transfer in batch.transfers]
    if len(events) == 1:
        # Single transfers are the common case from interactive clients. The group committer
        # lets concurrent ones share one durable commit instead of each waiting for the disk.
        codes = services.committer.create_transfers(events)
    else:
        codes = services.ledger.create_transfers(events)
    return _results([event.id for event in events], codes)


@router.post("/accounts/{account_id}/close", dependencies=_WRITE)
def close_account(account_id: LedgerIdPath, services: ServicesDependency) -> AccountStateChange:
    """Close an account to new transfers (voids of its pending transfers still pass)."""
    code = services.ledger.close_account(account_id)
    return AccountStateChange(id=str(account_id), result=code.name, code=int(code))


@router.post("/accounts/{account_id}/reopen", dependencies=_WRITE)
def reopen_account(account_id: LedgerIdPath, services: ServicesDependency) -> AccountStateChange:
    """Reopen a closed account."""
    code = services.ledger.reopen_account(account_id)
    return AccountStateChange(id=str(account_id), result=code.name, code=int(code))


# -- accounts ------------------------------------------------------------------------------


@router.get("/accounts")
def lookup_accounts(ids: IdList, services: ServicesDependency, access: ReadFiltered) -> AccountList:
    """Look up accounts by id, in the order asked; unknown ids (and, for an owner, other
    parties' accounts) are left out."""
    return _account_list(services, access, _parse_id_list(ids))


@router.post("/accounts/lookup")
def lookup_accounts_by_body(
    body: LookupRequest, services: ServicesDependency, access: ReadFiltered
) -> AccountList:
    """Look up accounts by id, like `GET /accounts?ids=`, for lists too long for a URL."""
    return _account_list(services, access, body.ids)


def _account_list(services: Services, access: Access, ids: list[int]) -> AccountList:
    accounts = services.ledger.lookup_accounts(ids)
    return AccountList(
        accounts=[AccountOut.of(account) for account in accounts if access.owns(account.owner)]
    )


@router.get("/accounts/{account_id}", dependencies=_READ_OWN_ACCOUNT)
def get_account(account_id: LedgerIdPath, services: ServicesDependency) -> AccountOut:
    """One account with its current balances."""
    # The ledger's single-account read path: a balance read is a wallet's most frequent query.
    account = services.ledger.lookup_account(account_id)
    if account is None:
        raise ApiProblem("account_not_found", f"no account has id {account_id}")
    return AccountOut.of(account)


@router.get("/accounts/{account_id}/transfers", dependencies=_READ_OWN_ACCOUNT)
def get_account_transfers(
    account_id: LedgerIdPath,
    services: ServicesDependency,
    timestamp_min: TimestampMin = 0,
    timestamp_max: TimestampMax = 0,
    limit: PageLimit = PAGE_SIZE_DEFAULT,
    newest_first: bool = False,
    debits: bool = True,
    credits: bool = True,
) -> TransferPage:
    """An account's transfers in ledger-time order, one page at a time.

    `debits` and `credits` choose the transfers where the account is on that side. To read on,
    send the bounds in `next` with the other parameters unchanged.
    """
    transfers = services.ledger.get_account_transfers(
        account_id, timestamp_min, timestamp_max, limit, newest_first, debits, credits
    )
    return TransferPage(
        transfers=[TransferOut.of(transfer) for transfer in transfers],
        next=_next_page(
            [transfer.timestamp for transfer in transfers],
            limit,
            newest_first,
            timestamp_min,
            timestamp_max,
        ),
    )


@router.get("/accounts/{account_id}/balances", dependencies=_READ_OWN_ACCOUNT)
def get_account_balances(
    account_id: LedgerIdPath,
    services: ServicesDependency,
    timestamp_min: TimestampMin = 0,
    timestamp_max: TimestampMax = 0,
    limit: PageLimit = PAGE_SIZE_DEFAULT,
    newest_first: bool = False,
) -> BalancePage:
    """The balance history of an account created with the `history` flag."""
    balances = services.ledger.get_account_balances(
        account_id, timestamp_min, timestamp_max, limit, newest_first
    )
    currency = services.ledger.get_account(account_id).currency
    return BalancePage(
        account_id=str(account_id),
        currency=currency,
        balances=[BalanceOut.of(balance, currency) for balance in balances],
        next=_next_page(
            [balance.timestamp for balance in balances],
            limit,
            newest_first,
            timestamp_min,
            timestamp_max,
        ),
    )


@router.get("/accounts/{account_id}/balance", dependencies=_READ_OWN_ACCOUNT)
def get_account_balance_at(
    account_id: LedgerIdPath,
    services: ServicesDependency,
    at: Annotated[int, Query(ge=1, le=TIMESTAMP_MAX, description="Ledger time, ns.")],
) -> BalanceAt:
    """The balances of a `history` account as they stood at ledger time `at`."""
    balance = services.ledger.balance_at(account_id, at)
    currency = services.ledger.get_account(account_id).currency
    return BalanceAt(
        account_id=str(account_id),
        currency=currency,
        at=at,
        at_iso=iso_utc(at),
        balance=BalanceOut.of(balance, currency),
    )


@router.get("/accounts/{account_id}/statement", dependencies=_READ_OWN_ACCOUNT)
def get_account_statement(
    account_id: LedgerIdPath,
    services: ServicesDependency,
    timestamp_min: TimestampMin = 0,
    timestamp_max: TimestampMax = 0,
    limit: PageLimit = PAGE_SIZE_MAX,
) -> StatementOut:
    """Posted activity over a period with opening and closing totals; works for every account."""
    statement = services.ledger.statement(account_id, timestamp_min, timestamp_max, limit)
    currency = statement.account.currency
    return StatementOut(
        account=AccountOut.of(statement.account),
        timestamp_min=statement.timestamp_min,
        timestamp_max=statement.timestamp_max,
        opening=StatementTotals.of(statement.opening_debits, statement.opening_credits, currency),
        entries=[TransferOut.of(entry) for entry in statement.entries],
        closing=StatementTotals.of(statement.closing_debits, statement.closing_credits, currency),
        complete=statement.complete,
        next=(
            None
            if statement.next_timestamp is None
            else PageCursor(
                timestamp_min=statement.next_timestamp, timestamp_max=statement.timestamp_max
            )
        ),
    )


# -- transfers -----------------------------------------------------------------------------


@router.get("/transfers")
def lookup_transfers(
    ids: IdList, services: ServicesDependency, access: ReadFiltered
) -> TransferList:
    """Look up transfers by id, in the order asked; unknown ids (and, for an owner, transfers
    touching none of its accounts) are left out."""
    return _transfer_list(services, access, _parse_id_list(ids))


@router.post("/transfers/lookup")
def lookup_transfers_by_body(
    body: LookupRequest, services: ServicesDependency, access: ReadFiltered
) -> TransferList:
    """Look up transfers by id, like `GET /transfers?ids=`, for lists too long for a URL."""
    return _transfer_list(services, access, body.ids)


def _transfer_list(services: Services, access: Access, ids: list[int]) -> TransferList:
    transfers = services.ledger.lookup_transfers(ids)
    if not access.unrestricted:
        account_ids = {t.debit_account_id for t in transfers} | {
            t.credit_account_id for t in transfers
        }
        ordered = sorted(account_ids)
        # A page of transfers touches up to twice as many accounts as one lookup may ask for.
        owned = {
            account.id
            for start in range(0, len(ordered), IDS_PER_LOOKUP_MAX)
            for account in services.ledger.lookup_accounts(
                ordered[start : start + IDS_PER_LOOKUP_MAX]
            )
            if access.owns(account.owner)
        }
        transfers = [
            t for t in transfers if t.debit_account_id in owned or t.credit_account_id in owned
        ]
    return TransferList(transfers=[TransferOut.of(transfer) for transfer in transfers])


@router.get("/transfers/{transfer_id}", dependencies=_READ_OWN_TRANSFER)
def get_transfer(transfer_id: LedgerIdPath, services: ServicesDependency) -> TransferOut:
    """One transfer."""
    transfers = services.ledger.lookup_transfers([transfer_id])
    if not transfers:
        raise ApiProblem("transfer_not_found", f"no transfer has id {transfer_id}")
    return TransferOut.of(transfers[0])


# -- verification and reference ------------------------------------------------------------


@router.get("/check", dependencies=_AUDIT)
def check_ledger(services: ServicesDependency) -> CheckReport:
    """Check double entry and the agreement of balances with the journal."""
    findings = services.ledger.check()
    return CheckReport(ok=not findings, findings=findings)


@router.get("/audit/verify", dependencies=_AUDIT)
def verify_audit_chain(services: ServicesDependency) -> ChainReportOut:
    """Recompute the hash chain from the stored rows and compare it link by link."""
    with services.ledger.read(snapshot=True) as store:
        report = verify_chain(store)
    first_break = report.first_break
    return ChainReportOut(
        ok=report.ok,
        records=report.records,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        first_break=(
            None
            if first_break is None
            else ChainBreakOut(seq=first_break.seq, reason=first_break.reason)
        ),
    )


def _with_text_keys(value: object) -> object:
    # The registry maps code numbers to names; JSON object keys are text.
    if isinstance(value, Mapping):
        return {str(key): _with_text_keys(item) for key, item in value.items()}
    return value


# The result-code registry is reference material, the same for every reader: owners may read it.
@router.get(
    "/result-codes",
    dependencies=[
        Depends(require("ledger:read", own="ledger:read:own", owner=FILTERED_BY_HANDLER))
    ],
)
def get_result_codes() -> ResultRegistry:
    """Every result code (number and name) and the order in which the ledger checks them."""
    return ResultRegistry.model_validate(_with_text_keys(describe_registry()))


# -- health --------------------------------------------------------------------------------


@health_router.get("/health")
def health(services: ServicesDependency) -> Health:
    """Whether the service can reach its database. Needs no credentials."""
    try:
        with services.ledger.read() as store:
            store.read_head()
    except Exception as error:
        # A failing probe is reported, not raised: an unreachable database is a condition of
        # the environment, and the orchestrator polling us needs a plain 503 to act on.
        logger.warning("health check failed: %s", type(error).__name__, exc_info=error)
        raise ApiProblem("service_unavailable", "the database cannot be reached") from None
    return Health(status="ok")
