"""The composition root: builds the services of one process from its settings.

The API, the CLI and the tests all start here, so each of them gets the same wiring: one
connection pool per database, one `Ledger`, and one group committer for single-request writes.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tianping.config import Settings, load_secrets_file, load_settings
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.identity.auth_service import DEFAULT_ROLE_SCOPES, AuthService, RevocationRefresher
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV, FingerprintKey
from tianping.identity.privacy_service import PrivacyService
from tianping.identity.tokens import SIGNING_KEY_ENV_VAR, load_signing_key
from tianping.identity.totp import SECRETS_KEY_ENV_VAR, SecretBox
from tianping.identity.vault import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, Vault, load_master_key
from tianping.ledger.group_commit import GroupCommitter
from tianping.ledger.service import Ledger, LedgerWrite
from tianping.ledger.sweeper import ExpirySweeper
from tianping.lending.runtime import TrainedOnFirstUse, build_lending
from tianping.lending.service import LendingService
from tianping.payments.funding import CreditDraw, CreditRefund
from tianping.payments.service import PaymentsService
from tianping.rules.config import cached_rulebook

if TYPE_CHECKING:
    from tianping.lending.scoring.scorecard import ScorecardBundle
    from tianping.payments.cash_flow import MerchantCashFlowProfile
    from tianping.payments.payout_store import TakingsRelease
    from tianping.payments.runtime import PaymentBatcher
    from tianping.payments.store import MovementRow, RailRow

# The environment keys the identity context needs; it is built only when all of them are set.
IDENTITY_KEY_ENV_VARS = (SIGNING_KEY_ENV_VAR, SECRETS_KEY_ENV_VAR, CARD_FINGERPRINT_KEY_ENV)


@dataclass(frozen=True, slots=True)
class IdentityServices:
    """The identity context's services: authentication, the keyed card/request digests, and
    consent with the personal-data vault (None when no master key is configured)."""

    auth: AuthService
    fingerprint_key: FingerprintKey
    privacy: PrivacyService | None = None


def build_identity(
    ledger: Ledger,
    environ: Mapping[str, str],
    *,
    clock: Callable[[], int] | None = None,
    role_scopes: Mapping[str, frozenset[str]] = DEFAULT_ROLE_SCOPES,
) -> IdentityServices | None:
    """The identity services from the environment's keys, or None when any key is unset.

    Identity is optional: a ledger-only deployment (the demo, most tests) sets none of the keys
    and its identity routes answer `service_unavailable`. A key that is set but invalid is an
    error, never a silent "not configured".
    """
    if not all(environ.get(name) for name in IDENTITY_KEY_ENV_VARS):
        return None
    auth = AuthService(
        ledger,
        signing_key=load_signing_key(environ=environ),
        secret_box=SecretBox.from_environment(environ),
        clock=clock,
        role_scopes=role_scopes,
    )
    privacy = None
    fingerprint_key = FingerprintKey.from_env(environ)
    # The vault's master key is the one key that can live in a file; either source enables it.
    if environ.get(MASTER_KEY_ENV) or environ.get(MASTER_KEY_FILE_ENV):
        privacy = PrivacyService(
            ledger, Vault(load_master_key(environ=environ)), clock, index_key=fingerprint_key
        )
    return IdentityServices(auth=auth, fingerprint_key=fingerprint_key, privacy=privacy)


class _LendingOnFirstUse:
    """The payments ports that lending answers, credit lines (`CreditLineFunding`) and its
    movements of customers' money for the AML reports (`WalletMovementSource`). This process's
    lending service is looked up only when a payer pays on credit or a report asks: most
    payments never need lending built (and building it trains nothing: its scorers are trained
    by the first application)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def fund_payment(self, uow: LedgerWrite, draw: CreditDraw) -> int:
        return self._services.lending.fund_payment(uow, draw)

    def refund_payment(self, uow: LedgerWrite, refund: CreditRefund) -> int:
        return self._services.lending.refund_payment(uow, refund)

    def wallet_movements(self, start_ns: int, end_ns: int, limit: int) -> list[MovementRow]:
        return self._services.lending.wallet_movements(start_ns, end_ns, limit)


def _platform_scorecard() -> ScorecardBundle:
    # Imported here, not at the top: training pulls in scikit-learn, optbinning and LightGBM
    # (about 3 s of imports), which no command that does not lend should wait for.
    from tianping.lending.synthetic import platform_scorecard

    return platform_scorecard()


def _sme_scorecard() -> ScorecardBundle:
    from tianping.lending.synthetic_sme import sme_scorecard

    return sme_scorecard()


class _PaymentsOnFirstUse:
    """What lending asks of payments (a merchant's acquiring, and the bank rails that pay a
    loan on to the borrower's own card), from the payments service built on first use, so
    lending can be built before payments is."""

    def __init__(self, payments: Callable[[], PaymentsService]) -> None:
        self._payments = payments

    def request_rail(
        self,
        request_id: str,
        direction: str,
        party_id: str,
        card_fingerprint: str,
        amount: int,
        currency: str = "CNY",
    ) -> RailRow:
        return self._payments().request_rail(
            request_id, direction, party_id, card_fingerprint, amount, currency
        )

    def merchant_cash_flow_profile(
        self, merchant_id: str, as_of: dt.date, months: int, currency: str = "CNY"
    ) -> MerchantCashFlowProfile:
        return self._payments().merchant_cash_flow_profile(merchant_id, as_of, months, currency)

    def merchant_free_balance(
        self, merchant_id: str, currency: str = "CNY", uow: LedgerWrite | None = None
    ) -> int:
        return self._payments().merchant_free_balance(merchant_id, currency, uow)

    def merchant_day_takings(
        self, business_date: str, merchant_ids: Sequence[str], currency: str = "CNY"
    ) -> dict[str, int]:
        return self._payments().merchant_day_takings(business_date, merchant_ids, currency)

    def takings_release(self, release_id: str) -> TakingsRelease | None:
        return self._payments().takings_release(release_id)

    def release_takings(
        self,
        release_id: str,
        merchant_id: str,
        business_date: str,
        amount: int,
        currency: str = "CNY",
    ) -> TakingsRelease:
        return self._payments().release_takings(
            release_id, merchant_id, business_date, amount, currency
        )

    def restore_takings(self, release_id: str) -> TakingsRelease:
        return self._payments().restore_takings(release_id)


@dataclass(slots=True)
class Services:
    """Everything a request handler or command needs, built once per process."""

    settings: Settings
    pool: ConnectionPool
    ledger: Ledger
    identity: IdentityServices | None = None
    _committer: GroupCommitter | None = field(default=None)
    _committer_lock: threading.Lock = field(default_factory=threading.Lock)
    _sweeper: ExpirySweeper | None = field(default=None)
    _payments: PaymentsService | None = field(default=None)
    _payment_batcher: PaymentBatcher | None = field(default=None)
    _payments_lock: threading.Lock = field(default_factory=threading.Lock)
    _lending: LendingService | None = field(default=None)
    _revocation_refresher: RevocationRefresher | None = field(default=None)

    def start_background_work(self) -> None:
        """Start what a long-running server needs: the group committer, the expiry sweep and,
        with identity configured, the refresh of revoked sessions that token checks rely on."""
        _ = self.committer
        if self._sweeper is None:
            self._sweeper = ExpirySweeper(self.ledger).start()
        if self.identity is not None and self._revocation_refresher is None:
            refresher = RevocationRefresher(self.identity.auth)
            refresher.start()
            self._revocation_refresher = refresher

    @property
    def committer(self) -> GroupCommitter:
        """The group committer, started on first use (a CLI command rarely needs one).

        Request threads may ask for it at the same moment; the lock makes sure exactly one is
        started, since a second one's writer thread would never be stopped.
        """
        committer = self._committer
        if committer is None:
            with self._committer_lock:
                if self._committer is None:
                    self._committer = GroupCommitter(self.ledger)
                committer = self._committer
        return committer

    @property
    def payments(self) -> PaymentsService:
        """The payments service, built on first use: it trains (or loads) the risk model and
        loads the configured rulebook, which a ledger-only command never needs."""
        # Imported on first use for the same reason as the scorecard below: the risk model
        # needs LightGBM and NumPy, which ledger and identity commands should not load.
        from tianping.payments.runtime import build_payments

        with self._payments_lock:
            if self._payments is None:
                rulebook = cached_rulebook(
                    self.settings.rulebook, tuple(self.settings.rulebook_overlays)
                )
                identity = self.identity
                self._payments = build_payments(
                    self.ledger,
                    rulebook,
                    clock=self.ledger.clock,
                    secret_box=None if identity is None else identity.auth.secret_box,
                    privacy=None if identity is None else identity.privacy,
                )
                lending = _LendingOnFirstUse(self)
                self._payments.credit_line = lending
                self._payments.wallet_movements = lending
                freeze_long_lived_heap()
            return self._payments

    @property
    def lending(self) -> LendingService:
        """The lending service, built on first use with the configured rulebook, the identity
        context's consents, and the platform's credit scorecard."""
        with self._payments_lock:
            if self._lending is None:
                rulebook = cached_rulebook(
                    self.settings.rulebook, tuple(self.settings.rulebook_overlays)
                )
                identity = self.identity
                payments_on_first_use = _PaymentsOnFirstUse(lambda: self.payments)
                self._lending = build_lending(
                    self.ledger,
                    rulebook,
                    consent=None if identity is None else identity.privacy,
                    # Trained by the first application (a few seconds each), not by every
                    # process that reads a loan or runs a batch.
                    scorer=TrainedOnFirstUse(_platform_scorecard),
                    # Looked up per application, so payments is built only when needed.
                    profile=lambda party_id: self.payments.payer_profile(party_id),
                    sme_scorer=TrainedOnFirstUse(_sme_scorecard),
                    acquiring=payments_on_first_use,
                    card_rails=payments_on_first_use,
                )
            return self._lending

    def install_lending(self, service: LendingService) -> None:
        """Use `service` as this process's lending service (tests, embedders); before first use."""
        with self._payments_lock:
            if self._lending is not None:
                raise RuntimeError("the lending service is already in use")
            self._lending = service

    def install_payments(self, service: PaymentsService) -> None:
        """Use `service` as this process's payments service: for tests and embedders that bring
        their own collaborators (a clearing-house adapter, a risk engine). Before first use."""
        with self._payments_lock:
            if self._payments is not None:
                raise RuntimeError("the payments service is already in use")
            lending = _LendingOnFirstUse(self)
            if service.credit_line is None:
                service.credit_line = lending
            if service.wallet_movements is None:
                service.wallet_movements = lending
            self._payments = service

    @property
    def payment_batcher(self) -> PaymentBatcher:
        """Single payments from request threads share transactions through this batcher."""
        from tianping.payments.runtime import PaymentBatcher

        service = self.payments
        with self._payments_lock:
            if self._payment_batcher is None:
                self._payment_batcher = PaymentBatcher(service)
            return self._payment_batcher

    @property
    def built_payment_batcher(self) -> PaymentBatcher | None:
        """The payment batcher if it has been built, else None; never builds it.

        For callers on an event loop, which must not build it there: building trains the
        risk model, which would stall every other request of the loop meanwhile.
        """
        return self._payment_batcher

    def close(self) -> None:
        with self._payments_lock:
            batcher, self._payment_batcher = self._payment_batcher, None
        if batcher is not None:
            batcher.close()
        if self._revocation_refresher is not None:
            self._revocation_refresher.stop()
            self._revocation_refresher = None
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.close()
        self.pool.close()


def merged_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over the settings' secrets file: the file fills in what the
    environment leaves unset."""
    from_file = {} if settings.secrets_file is None else load_secrets_file(settings.secrets_file)
    return {**from_file, **(os.environ if environ is None else environ)}


# Allocations (net of frees) between collections of the youngest generation in a serving
# process; see `freeze_long_lived_heap`.
YOUNG_GENERATION_THRESHOLD = 10_000


def freeze_long_lived_heap() -> None:
    """Exempt every object alive now from the garbage collector's scans (`gc.freeze`).

    Called once what a process builds to keep (the services, the payments service with its
    risk model and rulebook) has been built. A full collection walks every tracked object: in a
    serving process that was about 180 ms, during which no request is answered, and full
    collections come every so often under steady load; it was most of the HTTP p99 latency.
    Frozen objects are never freed, which is what these objects were going to be anyway.

    It also lets the youngest generation grow to `YOUNG_GENERATION_THRESHOLD` allocations
    before a collection (CPython's default is 700): a payment allocates thousands of short-lived
    objects, almost all freed by reference counting, so the default collected the young
    generation several times per request for nothing.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


def build_services(
    settings: Settings | None = None,
    *,
    migrate: bool = False,
    clock: Callable[[], int] = time.time_ns,
    pool_size: int = 8,
    environ: Mapping[str, str] | None = None,
    role_scopes: Mapping[str, frozenset[str]] = DEFAULT_ROLE_SCOPES,
) -> Services:
    """Wire the services for `settings` (loaded from file and environment when omitted).

    With `migrate`, the database schema is brought up to date first; for SQLite the data
    directory is created if needed. The identity services are built when `environ` (the
    process environment when omitted) holds every key in `IDENTITY_KEY_ENV_VARS`; their tokens
    carry the scopes `role_scopes` gives each role.
    """
    settings = settings or load_settings()
    if settings.database_url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade(settings.database_url)
    pool = ConnectionPool(
        settings.database_url,
        size=pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_writer_lock=settings.sqlite_writer_lock,
    )
    ledger = Ledger(pool, clock=clock)
    try:
        if environ is None:
            environ = merged_secrets(settings)
        identity = build_identity(ledger, environ, clock=clock, role_scopes=role_scopes)
    except BaseException:
        pool.close()
        raise
    return Services(settings=settings, pool=pool, ledger=ledger, identity=identity)
