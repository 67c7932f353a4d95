"""Merchant payouts, and the takings a loan sweep releases; mixed into `PaymentsService`.

A merchant's payable (its settlement account on the ledger) holds two kinds of money: takings,
which the next settlement pays out (T+1, net of the discount), and money that is free: an SME
loan's proceeds, or takings a sweep released for a repayment and that repayment did not take.
Settlement pays out takings only, so free money leaves in one of two ways: a loan repayment, or
a payout to the merchant's own bank account.

* **Bank account.** A merchant registers one bank account for payouts (identity keeps no bank
  account for businesses: its card bindings are persons' own cards, P4). Only a keyed
  fingerprint and the last four digits are kept. The same-name rule P4 applied to a business:
  the account must be held by the registered business itself, which the bank reports as the
  holder's unified social credit code; it must be the merchant's registration number in the
  identity context (`payout_account_holder_mismatch` otherwise). An account serves one merchant.
* **Payout.** A rail request of direction `merchant_payout`: the free balance (all of it, or a
  part) is held on the payable at once, checked against the free balance in the same unit of
  work (writers are serialised, so a concurrent settlement, repayment or payout cannot take the
  same money twice), and the clearing house's callback posts or voids it as it does a
  withdrawal's; a declined, failed or timed-out payout leaves the money free again. Towards the
  clearing house and in reconciliation a payout is a withdrawal: money leaving the reserve for
  a bank account, idempotent by its request id on every hop.
* **Released takings.** A sweep (lending's `sweep_repayments`) repays an SME loan from a share
  of a day's takings before that day's settlement. It first releases that share here: from then
  on settlement pays out the day's takings less the released part, and the free balance counts
  the part as free, so the repayment (which may take only free money) can take it. A repayment
  that does not happen gives the part back (`restore_takings`) while it is still there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from tianping.identity import party_service
from tianping.ledger.model import NewTransfer, TransferFlags
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger, LedgerWrite
from tianping.payments import chart
from tianping.payments.chart import AccountCode, TransferCode
from tianping.payments.clearing import business_date_of, require_identifier
from tianping.payments.model import (
    AMOUNT_MAX,
    PaymentError,
    check_amount,
    check_id,
    local_date,
    settlement_split,
)
from tianping.payments.payout_store import MerchantBankAccount, PayoutStore, TakingsRelease
from tianping.payments.store import MerchantRow, PaymentsStore, RailRow

__all__ = [
    "PAYOUT_DIRECTION",
    "RELEASE_ID_LENGTH_MAX",
    "TAKINGS_QUERY_MERCHANTS_MAX",
    "MerchantPayouts",
]

PAYOUT_DIRECTION: Final = "merchant_payout"
# A release id names a loan and a day (`sweep:<loan id>:<date>`), so it is longer than a
# payment id: 64 characters of loan id and 17 of the rest fit.
RELEASE_ID_LENGTH_MAX: Final = 96
# Merchants whose day's takings one query reads (a sweep asks for a batch of loans at once).
TAKINGS_QUERY_MERCHANTS_MAX: Final = 1_000
_NS: Final = 1_000_000_000
_RELEASE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,95}")
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{64}")
_LAST_FOUR: Final = re.compile(r"[0-9]{4}")
_PAYOUT_ACCOUNT_RECORD: Final = "payments.payout_account"


def _digest(document: dict[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()


def _check_business_date(value: object) -> str:
    try:
        if isinstance(value, str) and date.fromisoformat(value).isoformat() == value:
            return value
    except ValueError:
        pass
    raise PaymentError("payment_input_invalid", "a business date is YYYY-MM-DD")


def _bank_of(fingerprint: str) -> str:
    # The pseudonymous partner bank behind an account, keyed as a bound card's is
    # (`service._issuer_of`): a short stable prefix of the fingerprint names its clearing account.
    return "bank-" + fingerprint[:8]


class MerchantPayouts:
    """Payouts and takings releases; mixed into `PaymentsService`, whose attributes they use."""

    ledger: Ledger
    clock: Callable[[], int]
    rail_timeout_s: int

    if TYPE_CHECKING:

        def _write(
            self, uow: LedgerWrite | None = None
        ) -> AbstractContextManager[tuple[LedgerWrite, PaymentsStore]]: ...

        def _read(self) -> AbstractContextManager[PaymentsStore]: ...

        def _now(self, uow: LedgerWrite) -> int: ...

        def _submit_rail(self, row: RailRow) -> RailRow: ...

    @staticmethod
    def _payouts(uow: LedgerWrite) -> PayoutStore:
        """The payout tables' statements in `uow`'s transaction."""
        return PayoutStore(uow.connection, uow.store.backend)

    @staticmethod
    def _registered_merchant(store: PaymentsStore, merchant_id: str, currency: str) -> MerchantRow:
        merchant = store.merchant(merchant_id)
        if merchant is None:
            raise PaymentError("merchant_not_found", "no merchant is registered with this id")
        if merchant.currency != currency:
            raise PaymentError("currency_invalid", "the merchant settles in another currency")
        return merchant

    # -- the merchant's bank account --------------------------------------------------------

    def register_payout_account(
        self,
        merchant_id: str,
        account_fingerprint: str,
        account_last_four: str,
        holder_registration_number: str,
    ) -> MerchantBankAccount:
        """Register the bank account the merchant's payouts go to, if the bank reports its
        holder as the registered business itself (P4 for a business, see the module docstring).

        Registering the same account again answers the registration; another account is
        `payout_account_exists` (one account per merchant), an account already registered by
        another merchant `payout_account_taken`."""
        if not isinstance(account_fingerprint, str) or not _FINGERPRINT.fullmatch(
            account_fingerprint
        ):
            raise PaymentError(
                "payment_input_invalid", "an account fingerprint is 64 lower-case hex characters"
            )
        if not isinstance(account_last_four, str) or not _LAST_FOUR.fullmatch(account_last_four):
            raise PaymentError("payment_input_invalid", "the last four digits are four digits")
        if not isinstance(holder_registration_number, str):
            raise PaymentError("payment_input_invalid", "the holder's registration number is text")
        with self._write() as (uow, store):
            payouts = self._payouts(uow)
            existing = payouts.bank_account(merchant_id)
            if existing is not None:
                if (existing.fingerprint, existing.last_four) != (
                    account_fingerprint,
                    account_last_four,
                ):
                    raise PaymentError(
                        "payout_account_exists", "the merchant has another payout account"
                    )
                return existing
            merchant = store.merchant(merchant_id)
            if merchant is None:
                raise PaymentError("merchant_not_found", "no merchant is registered with this id")
            party = party_service.get_party(self.ledger, merchant_id, uow=uow)
            if party.registration_number != holder_registration_number:
                raise PaymentError(
                    "payout_account_holder_mismatch",
                    "the account is not held by the registered business itself",
                )
            on = local_date(self._now(uow))
            if party_service.blocklist_status(
                self.ledger, merchant_id, on, uow=uow
            ).payment_services_suspended:
                raise PaymentError(
                    "payment_services_suspended", "the party's payment services are suspended"
                )
            if payouts.merchant_of_bank_account(account_fingerprint) is not None:
                raise PaymentError(
                    "payout_account_taken", "the account is another merchant's payout account"
                )
            account = MerchantBankAccount(
                merchant_id,
                account_fingerprint,
                account_last_four,
                _bank_of(account_fingerprint),
                self._now(uow),
            )
            payouts.insert_bank_account(account)
            # Where a merchant's money may go is audited: the chain records that the account
            # was registered (pseudonymous facts only; the fingerprint stays in the row).
            uow.append_record(
                _PAYOUT_ACCOUNT_RECORD,
                json.dumps(
                    {"event": "payout_account_registered", "merchant_id": merchant_id},
                    sort_keys=True,
                ).encode(),
            )
            return account

    def payout_account(self, merchant_id: str) -> MerchantBankAccount:
        with PayoutStore.reading(self.ledger) as payouts:
            account = payouts.bank_account(merchant_id)
        if account is None:
            raise PaymentError(
                "payout_account_not_registered", "the merchant has registered no payout account"
            )
        return account

    # -- the free balance -------------------------------------------------------------------

    def merchant_free_balance(
        self, merchant_id: str, currency: str = "CNY", uow: LedgerWrite | None = None
    ) -> int:
        """What the merchant's payable holds beyond what its coming settlements pay out (loan
        proceeds, takings a sweep released): what may be debited without making a settlement
        fail. Read in `uow` when given, so a caller debiting the account sees the balance it
        debits."""
        account_id = chart.merchant_account(merchant_id, currency)
        with self._write(uow) as (write, store):
            if store.merchant(merchant_id) is None:
                raise PaymentError("merchant_not_found", "no merchant is registered with this id")
            due = self._payouts(write).settlement_due(merchant_id, currency)
            account = write.store.fetch_accounts([account_id]).get(account_id)
        if account is None:
            raise PaymentError("merchant_not_found", "no merchant is registered with this id")
        available = account.credits_posted - account.debits_posted - account.debits_pending
        return max(0, available - due)

    # -- payouts ----------------------------------------------------------------------------

    def request_merchant_payout(
        self,
        request_id: str,
        merchant_id: str,
        amount: int | None = None,
        currency: str = "CNY",
    ) -> RailRow:
        """Pay out the merchant's free balance (`amount`, or all of it) to its registered bank
        account through the clearing house; idempotent by `request_id` (a rail request id).

        The money is held on the payable at once; the callback posts or voids it. More than the
        free balance at this moment is `payout_exceeds_free_balance`."""
        check_id("request_id", request_id)
        # Checked before the hold is written: the clearing house refuses a `/` in its ids.
        require_identifier(request_id, "request_id")
        check_amount(1 if amount is None else amount, currency)
        digest = _digest(
            {
                "direction": PAYOUT_DIRECTION,
                "party": merchant_id,
                "amount": "all" if amount is None else amount,
                "currency": currency,
            }
        )
        with self._write() as (uow, store):
            existing = store.rail_request(request_id)
            if existing is not None:
                if existing.digest != digest:
                    raise PaymentError(
                        "request_conflict", "the request id was used for another request"
                    )
                return existing
            merchant = self._registered_merchant(store, merchant_id, currency)
            account = self._payouts(uow).bank_account(merchant_id)
            if account is None:
                raise PaymentError(
                    "payout_account_not_registered",
                    "the merchant has registered no payout account",
                )
            on = local_date(self._now(uow))
            if party_service.blocklist_status(
                self.ledger, merchant_id, on, uow=uow
            ).payment_services_suspended:
                raise PaymentError(
                    "payment_services_suspended", "the party's payment services are suspended"
                )
            free = self.merchant_free_balance(merchant_id, currency, uow)
            wanted = min(free, AMOUNT_MAX) if amount is None else amount
            if not 0 < wanted <= free:
                raise PaymentError(
                    "payout_exceeds_free_balance",
                    f"the settlement account's free balance is {free} minor units",
                )
            clearing_id = chart.clearing_account(account.bank_id, currency)
            (opened,) = uow.create_accounts(
                [chart.new_account(AccountCode.CLEARING, clearing_id, currency)]
            )
            if opened not in (CreateAccountResult.ok, CreateAccountResult.exists):
                raise PaymentError("ledger_refused", f"the clearing account: {opened.name}")
            hold_id = chart.transfer_id("rail-hold", request_id)
            (result,) = uow.create_transfers(
                [
                    NewTransfer(
                        hold_id,
                        merchant.ledger_account_id,
                        clearing_id,
                        wanted,
                        currency,
                        int(TransferCode.MERCHANT_PAYOUT),
                        flags=TransferFlags.PENDING,
                        timeout=self.rail_timeout_s,
                    )
                ]
            )
            if result is CreateTransferResult.exceeds_credits:
                raise PaymentError(
                    "payout_exceeds_free_balance", "the settlement account does not hold it"
                )
            if result is not CreateTransferResult.ok:
                raise PaymentError("ledger_refused", f"the hold was refused: {result.name}")
            now = self._now(uow)
            row = RailRow(
                request_id=request_id,
                direction=PAYOUT_DIRECTION,
                party_id=merchant_id,
                bank_id=account.bank_id,
                card_token=account.fingerprint,
                amount=wanted,
                currency=currency,
                state="submitted",
                clearing_reference=None,
                hold_transfer_id=hold_id,
                timeout_at=now // _NS + self.rail_timeout_s,
                outcome_code=None,
                business_date=business_date_of(now // _NS),
                digest=digest,
                created_at=now,
                updated_at=now,
            )
            store.insert_rail_request(row)
        return self._submit_rail(row)

    def merchant_payout(self, merchant_id: str, request_id: str) -> RailRow:
        """One of the merchant's payouts; another party's request answers as a missing one."""
        with self._read() as store:
            row = store.rail_request(request_id)
        if row is None or row.direction != PAYOUT_DIRECTION or row.party_id != merchant_id:
            raise PaymentError("payout_not_found", "the merchant has no payout of this id")
        return row

    # -- takings released by a loan sweep ---------------------------------------------------

    def merchant_day_takings(
        self, business_date: str, merchant_ids: Sequence[str], currency: str = "CNY"
    ) -> dict[str, int]:
        """Each merchant's takings of `business_date` that no settlement has paid out yet
        (completed payments less refunds), in one query; merchants without any are left out."""
        _check_business_date(business_date)
        ids = sorted(set(merchant_ids))
        if len(ids) > TAKINGS_QUERY_MERCHANTS_MAX:
            raise PaymentError(
                "payment_input_invalid",
                f"at most {TAKINGS_QUERY_MERCHANTS_MAX} merchants in one query",
            )
        with PayoutStore.reading(self.ledger) as payouts:
            return payouts.day_takings(ids, currency, business_date)

    def takings_release(self, release_id: str) -> TakingsRelease | None:
        with PayoutStore.reading(self.ledger, snapshot=False) as payouts:
            return payouts.release(release_id)

    def release_takings(
        self,
        release_id: str,
        merchant_id: str,
        business_date: str,
        amount: int,
        currency: str = "CNY",
    ) -> TakingsRelease:
        """Release `amount` of the merchant's takings of `business_date` from that day's
        settlement, so a loan repayment may take it; idempotent by `release_id`.

        Never more, with the day's earlier releases, than the day's takings less their
        discount (`release_exceeds_takings`); never after the day was settled
        (`takings_already_settled`)."""
        if not isinstance(release_id, str) or not _RELEASE_ID.fullmatch(release_id):
            raise PaymentError(
                "payment_input_invalid",
                f"a release id is 1 to {RELEASE_ID_LENGTH_MAX} letters, digits and . _ : / -",
            )
        _check_business_date(business_date)
        check_amount(amount, currency)
        with self._write() as (uow, store):
            payouts = self._payouts(uow)
            existing = payouts.release(release_id)
            if existing is not None:
                if (
                    existing.merchant_id,
                    existing.business_date,
                    existing.currency,
                    existing.amount,
                ) != (merchant_id, business_date, currency, amount):
                    raise PaymentError(
                        "request_conflict", "the release id was used for another release"
                    )
                return existing
            merchant = self._registered_merchant(store, merchant_id, currency)
            if store.settlement(merchant_id, business_date, currency) is not None:
                raise PaymentError(
                    "takings_already_settled", "the day's takings were already settled"
                )
            kept = payouts.day_takings([merchant_id], currency, business_date).get(merchant_id, 0)
            # Settlement still charges the discount on all of the day's takings.
            fee, _ = settlement_split(kept, merchant.discount_bps)
            released = payouts.released(merchant_id, currency, business_date)
            if released + amount > kept - fee:
                raise PaymentError(
                    "release_exceeds_takings",
                    "the day's takings less their discount cannot cover the release",
                )
            now = self._now(uow)
            release = TakingsRelease(
                release_id, merchant_id, business_date, currency, amount, "released", now, now
            )
            payouts.insert_release(release)
            return release

    def restore_takings(self, release_id: str) -> TakingsRelease:
        """Give a release back to its day's settlement (its repayment did not happen), if the
        day is not settled yet and the money is still free; otherwise it stays released (and
        free: settlement no longer pays it out). Answers the release as it now stands."""
        with self._write() as (uow, store):
            payouts = self._payouts(uow)
            release = payouts.release(release_id)
            if release is None:
                raise PaymentError("takings_release_not_found", "no release has this id")
            if release.state != "released" or (
                store.settlement(release.merchant_id, release.business_date, release.currency)
                is not None
            ):
                return release
            free = self.merchant_free_balance(release.merchant_id, release.currency, uow)
            if free < release.amount:
                return release
            now = self._now(uow)
            payouts.set_release_state(release_id, "restored", now)
            return TakingsRelease(
                release.release_id,
                release.merchant_id,
                release.business_date,
                release.currency,
                release.amount,
                "restored",
                release.created_at,
                now,
            )
