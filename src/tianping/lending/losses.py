"""Write-off and recovery, pure: what a loan's (`LendingService.write_off`,
`record_recovery`) and a credit line's (`CreditLines.write_off_line`, `record_line_recovery`, a
refund on a written-off line) have in common, so that both products book their credit losses
one way.

* **Positions.** Of each balance written off the partner bank holds a position (`Held`), the
  platform the rest. A loan's bank holds a fixed share of every balance (`Held.by_share`, the
  floor of `colending.bank_position`); a line's parts come from largest-remainder splits of each
  draw and charge, so no formula gives them and the bank's position is the part the line
  recorded (`Held.recorded`, the `whole=` of `colending.position_change`). Everything else
  follows from the position, the same for both.
* **Write-off.** Each funder's whole position in each receivable goes to its credit losses
  (4201): `plan_write_off` gives the parts and the stored `by_funder`, `write_off_transfers`
  the ledger's transfers.
* **Recovery.** Cash recovered pays what remains written off (each product's waterfall, in
  `servicing.recover` and `credit_lines.recover_line`); each funder's part is the change of its
  position in each balance paid (`recovery_parts`), so a full recovery gives each funder back
  exactly what it wrote off and none ever more. `recovery_transfers` books each part as the
  funder's recovery income (4202) with the cash leaving the client-money reserve for the
  funder's own account, as a repayment's does.
* **Requests, refusals and documents.** The fields an operator's request is replayed by
  (`write_off_request`, `recovery_request`: a repeated id with other fields is refused), the
  refusals both products give in the same words, and the stored documents (a loan's event, a
  line's transaction) and the outcome fields read back from them.

What the products do differently on purpose is a parameter, never a copy: the positions above,
and `Product` (the ledger's transfer names and codes, the order the funders are booked in, and
which funders a write-off's document names), kept as each product has always booked them so
that transfer ids, the journal and stored documents do not change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tianping.ledger.model import NewTransfer, TransferFlags
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount, LendingCode
from tianping.lending.colending import BASIS_POINTS, bank_position, position_change
from tianping.lending.model import LendingRefusal
from tianping.lending.servicing import WriteOffAmounts
from tianping.payments import chart as payments_chart

__all__ = [
    "LINE",
    "LOAN",
    "RECOVERY_MAX",
    "Held",
    "Leg",
    "Product",
    "Receivable",
    "WriteOffPlan",
    "bank_of",
    "check_recovered",
    "check_recovery_amount",
    "check_same_request",
    "check_write_off_allowed",
    "check_write_off_date",
    "funder_cash",
    "funder_split",
    "linked",
    "other_fields",
    "plan_write_off",
    "recovery_document",
    "recovery_fields",
    "recovery_parts",
    "recovery_request",
    "recovery_transfers",
    "write_off_document",
    "write_off_fields",
    "write_off_request",
    "write_off_transfers",
]

# The largest recovery an operator may book at once, in minor units.
RECOVERY_MAX: Final = 10**10


# --------------------------------------------------------------------------- what differs


@dataclass(frozen=True, slots=True)
class Product:
    """How one product books its write-offs and recoveries: the purposes its transfer ids are
    derived from and the transfer codes, each product's own so that the ledger tells them
    apart, and two orders kept as each product has always had them."""

    write_off: str
    write_off_code: LendingCode
    recovery: str
    recovery_cash: str
    recovery_code: LendingCode
    recovery_cash_code: LendingCode
    # The order the funders' transfers are booked in: a loan's by funder id, a line's the bank
    # first. The order places each transfer in the ledger's journal (and so in its hash
    # chain), so each product keeps its own.
    funders_by_id: bool
    # Whether a write-off's `by_funder` names a funder whose parts are all zero: a loan's
    # names every funder of the loan, a line's only the funders that lost something. Stored
    # documents keep the shape they have always had.
    names_every_funder: bool


LOAN: Final = Product(
    write_off="write-off",
    write_off_code=LendingCode.WRITE_OFF,
    recovery="recovery",
    recovery_cash="recovery-cash",
    recovery_code=LendingCode.RECOVERY,
    recovery_cash_code=LendingCode.RECOVERY_FUNDING,
    funders_by_id=True,
    names_every_funder=True,
)
LINE: Final = Product(
    write_off="line-write-off",
    write_off_code=LendingCode.LINE_WRITE_OFF,
    recovery="line-recovery",
    recovery_cash="line-recovery-cash",
    recovery_code=LendingCode.LINE_RECOVERY,
    recovery_cash_code=LendingCode.LINE_RECOVERY_FUNDING,
    funders_by_id=False,
    names_every_funder=False,
)


# --------------------------------------------------------------------------- positions


@dataclass(frozen=True, slots=True)
class Held:
    """One balance of a loan or a line and the partner bank's position in it: `share / whole`
    of the balance, rounded down (`colending.bank_position`); the platform holds the rest."""

    balance: int
    share: int
    whole: int = BASIS_POINTS

    @classmethod
    def by_share(cls, balance: int, bank_share_bps: int) -> Held:
        """A loan's balance: the bank holds its share in basis points of every balance, so its
        position follows the balance."""
        return cls(balance, bank_share_bps)

    @classmethod
    def recorded(cls, balance: int, bank: int) -> Held:
        """A line's balance, of which the line records the bank's part: it comes from
        largest-remainder splits of each draw and charge, so no share gives it. The position
        is that part as a fraction of the balance, which is exactly the part, and a flow takes
        the same fraction of it as of the balance. A balance of zero holds nothing (the
        denominator of one only keeps the fraction defined)."""
        return cls(balance, bank, max(balance, 1))

    @property
    def position(self) -> int:
        """What the bank holds of the balance."""
        return bank_position(self.balance, self.share, whole=self.whole)

    def bank_change(self, after: int) -> int:
        """The bank's part of a flow moving the balance to `after`: the change of its
        position (`colending.position_change`); the platform's part is the rest of the flow."""
        return position_change(self.balance, after, self.share, whole=self.whole).bank


def bank_of(partner_bank_id: str, bank_share_bps: int) -> str | None:
    """The partner bank co-funding a loan or line, or None when the platform funds it alone
    (no partner, or no share for it)."""
    if partner_bank_id == PLATFORM or not bank_share_bps:
        return None
    return partner_bank_id


def funder_split(bank: str | None, bank_part: int, total: int) -> dict[str, int]:
    """`total` by funder, the bank first: its part and the platform's rest; everything the
    platform's when it funds alone. Parts of zero are kept: a document names every funder."""
    if bank is None:
        return {PLATFORM: total}
    return {bank: bank_part, PLATFORM: total - bank_part}


def _booking_order(product: Product, funders: Mapping[str, int]) -> list[str]:
    return sorted(funders) if product.funders_by_id else list(funders)


# --------------------------------------------------------------------------- write-off


@dataclass(frozen=True, slots=True)
class Receivable:
    """A receivable account a write-off empties, under its name in the stored document, with
    the balances it holds of the loan or line."""

    name: str
    account: LendingAccount
    balances: tuple[Held, ...]


@dataclass(frozen=True, slots=True)
class Leg:
    """One funder's part of one receivable written off."""

    receivable: str
    account: LendingAccount
    funder: str
    amount: int


@dataclass(frozen=True, slots=True)
class WriteOffPlan:
    """Each funder's part of each receivable (`legs`, in booking order, zeros included) and
    the stored document's `by_funder` (funder -> receivable name -> part)."""

    legs: tuple[Leg, ...]
    by_funder: dict[str, dict[str, int]]


def plan_write_off(
    product: Product, bank: str | None, receivables: Sequence[Receivable]
) -> WriteOffPlan:
    """Each funder's whole position in each receivable goes to its credit losses: exactly what
    the receivable holds of the loan or line, so the receivables end at zero, the parts add up
    to the balances and no receivable is asked for more than it holds."""
    legs: list[Leg] = []
    by_funder: dict[str, dict[str, int]] = {}
    names = [receivable.name for receivable in receivables]
    for receivable in receivables:
        parts = funder_split(
            bank,
            sum(held.position for held in receivable.balances),
            sum(held.balance for held in receivable.balances),
        )
        for funder in _booking_order(product, parts):
            part = parts[funder]
            legs.append(Leg(receivable.name, receivable.account, funder, part))
            if part or product.names_every_funder:
                by_funder.setdefault(funder, dict.fromkeys(names, 0))[receivable.name] = part
    return WriteOffPlan(tuple(legs), by_funder)


def linked(transfers: list[NewTransfer]) -> list[NewTransfer]:
    """`transfers` as one linked chain (all or none posts): each linked to the next but the
    last."""
    for transfer in transfers:
        transfer.flags |= TransferFlags.LINKED
    if transfers:
        transfers[-1].flags &= ~TransferFlags.LINKED
    return transfers


def write_off_transfers(
    product: Product, plan: WriteOffPlan, key: str, currency: str
) -> list[NewTransfer]:
    """The linked transfers of a write-off: each funder's part of each receivable from the
    receivable to its credit losses (debit 4201), ids derived from `key` (`<loan or line
    id>/<write-off id>`), the receivable's name and the funder. Parts of zero book nothing."""
    return linked(
        [
            NewTransfer(
                chart.transfer_id(product.write_off, f"{key}/{leg.receivable}/{leg.funder}"),
                chart.account_id(LendingAccount.CREDIT_LOSSES, leg.funder, currency),
                chart.account_id(leg.account, leg.funder, currency),
                leg.amount,
                currency,
                int(product.write_off_code),
            )
            for leg in plan.legs
            if leg.amount
        ]
    )


# --------------------------------------------------------------------------- recovery


def recovery_parts(
    bank: str | None, before: Sequence[Held], after: Sequence[int]
) -> dict[str, int]:
    """Each funder's part of a recovery that takes each balance in `before` (what remains
    written off, by bucket) to the one at the same place in `after`: the bank recovers the
    change of its position in each balance, the platform the rest. So the parts add up to the
    recovery, neither is negative, and recoveries that pay everything give each funder back
    exactly what it wrote off, whatever their instalments."""
    bank_part = sum(held.bank_change(left) for held, left in zip(before, after, strict=True))
    recovered = sum(held.balance - left for held, left in zip(before, after, strict=True))
    return funder_split(bank, bank_part, recovered)


def funder_cash(funder: str, currency: str) -> int:
    """Where a funder's money comes from and goes to: the bank's clearing account, or the
    platform's own operating account."""
    if funder == PLATFORM:
        return payments_chart.operating_account(currency)
    return payments_chart.clearing_account(funder, currency)


def recovery_transfers(
    product: Product, parts: Mapping[str, int], source: int, key: str, currency: str
) -> list[NewTransfer]:
    """The linked transfers of a recovery collected from `source` (the borrower's wallet, an
    SME loan's settlement account, a merchant refunding a purchase on a written-off line):
    each funder's part is recovery income in its recoveries account (4202), since the
    write-off emptied its receivables, and the cash behind it leaves the client-money reserve
    for the funder's own account (`funder_cash`), as a repayment's does, so safeguarding stays
    whole. Ids derive from `key` and the funder; parts of zero book nothing."""
    transfers: list[NewTransfer] = []
    for funder in _booking_order(product, parts):
        if not parts[funder]:
            continue
        funder_key = f"{key}/{funder}"
        transfers += [
            NewTransfer(
                chart.transfer_id(product.recovery, funder_key),
                source,
                chart.account_id(LendingAccount.RECOVERIES, funder, currency),
                parts[funder],
                currency,
                int(product.recovery_code),
            ),
            NewTransfer(
                chart.transfer_id(product.recovery_cash, funder_key),
                funder_cash(funder, currency),
                payments_chart.reserve_account(currency),
                parts[funder],
                currency,
                int(product.recovery_cash_code),
            ),
        ]
    return linked(transfers)


# --------------------------------------------------------------------------- requests, refusals


def write_off_request(on: dt.date, reason: str) -> dict[str, Any]:
    """The fields a write-off is replayed by: the same id with other fields is another request."""
    return {"on": on.isoformat(), "reason": reason}


def recovery_request(on: dt.date, amount: int) -> dict[str, Any]:
    """The fields a recovery is replayed by."""
    return {"on": on.isoformat(), "amount": amount}


def other_fields(what: str) -> LendingRefusal:
    """The refusal of a known `what` (`write_off`, `recovery`) id with other fields: replaying
    it would answer another request."""
    return LendingRefusal(
        f"{what}_exists_with_different_fields",
        f"the {what.replace('_', '-')} id was used with other fields",
    )


def check_same_request(what: str, request: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
    """Refuse (`other_fields`) unless the stored document has every field of `request`."""
    if any(stored[name] != value for name, value in request.items()):
        raise other_fields(what)


def check_write_off_allowed(what: str, tier: str, days_past_due: int, threshold: int) -> None:
    """A loan or line (`what`) is written off in the loss class or from `threshold` days past
    due, else `write_off_not_allowed`."""
    if tier != "loss" and days_past_due < threshold:
        raise LendingRefusal(
            "write_off_not_allowed",
            f"a {what} is written off in the loss class or after {threshold} days past due",
        )


def check_write_off_date(on: dt.date, start: str, event: str) -> None:
    """A write-off is dated on or after the loan's disbursement or the line's opening
    (`event`, on the ISO date `start`), else `write_off_date_invalid`."""
    if on < dt.date.fromisoformat(start):
        raise LendingRefusal("write_off_date_invalid", f"a write-off follows {event}")


def check_recovery_amount(amount: object) -> None:
    """A recovery is a whole number of minor units from 1 to `RECOVERY_MAX`."""
    if type(amount) is not int or not 0 < amount <= RECOVERY_MAX:
        raise LendingRefusal("amount_invalid", "a recovery is 1 to 10^10 minor units")


def check_recovered(recovered: int) -> None:
    """A recovery must pay something of what remains written off."""
    if not recovered:
        raise LendingRefusal("nothing_to_recover", "nothing remains written off")


# --------------------------------------------------------------------------- documents


def write_off_document(
    request: Mapping[str, Any],
    written_off: Mapping[str, int],
    by_funder: Mapping[str, Mapping[str, int]],
    charged: WriteOffAmounts | None = None,
) -> dict[str, Any]:
    """The stored document of a write-off: the request's fields, what was written off by
    bucket and in total, and each funder's parts. A loan's also says how the loss was charged
    (`charged`: the allowance used and the loss expense, `servicing.write_off`); a line's
    documents have never carried them, so a line passes None."""
    record: dict[str, Any] = {
        **request,
        "written_off": dict(written_off),
        "total": sum(written_off.values()),
    }
    if charged is not None:
        record["allowance_used"] = charged.allowance_used
        record["loss_expense"] = charged.additional_loss_expense
    record["by_funder"] = {funder: dict(parts) for funder, parts in by_funder.items()}
    return record


def write_off_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a write-off's stored document gives its outcome besides the ids and a loan's
    charge, with the document's dicts copied so that the outcome shares none of them."""
    return {
        "on": record["on"],
        "reason": record["reason"],
        "written_off": dict(record["written_off"]),
        "total": record["total"],
        "by_funder": {funder: dict(parts) for funder, parts in record["by_funder"].items()},
    }


def recovery_document(
    request: Mapping[str, Any],
    allocation: Mapping[str, int],
    overpayment: int,
    still_written_off: int,
    by_funder: Mapping[str, int],
) -> dict[str, Any]:
    """The stored document of a recovery: the request's fields, what it paid of each bucket
    and in all, the cash beyond what remained written off, what still remains, and each
    funder's part."""
    return {
        **request,
        "allocation": dict(allocation),
        "recovered": sum(allocation.values()),
        "overpayment": overpayment,
        "still_written_off": still_written_off,
        "by_funder": dict(by_funder),
    }


def recovery_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a recovery's stored document (a loan's event, a line's transaction) gives its
    outcome besides the ids, with the document's dicts copied so that the outcome shares none
    of them."""
    return {
        "on": record["on"],
        "amount": record["amount"],
        "allocation": dict(record["allocation"]),
        "recovered": record["recovered"],
        "overpayment": record["overpayment"],
        "still_written_off": record["still_written_off"],
        "by_funder": dict(record["by_funder"]),
    }
