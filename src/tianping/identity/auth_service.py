"""Authentication use cases: passwords, TOTP, devices, sessions, tokens, lockouts, machine clients.

`AuthService` runs over the `Ledger` (its connection pool and unit of work) and an injected clock
in nanoseconds. Writes run inside `ledger.write()`; simple writes accept the caller's `uow` so
another context can commit them with its own rows.

Logins in three phases. Argon2id takes about 20 ms and must not run while the ledger's write lock
is held (every ledger writer would wait), so `login` (1) reads the credential, its second factor
and its lockout state, (2) verifies the password and the TOTP code outside any transaction, then
(3) records the outcome in a short write transaction. Phase 3 re-reads the lockout state under
the lock and decides there: an attempt that was verified while another attempt locked the
credential is refused as locked, a TOTP step is consumed only if it is still unused, so parallel
attempts cannot get more than the allowed number of guesses or use a code twice.

Lockout (G1; PSD2 RTS Art. 4(3)(b)). Five consecutive failed attempts on one credential lock it
for 15 minutes; while it is locked every attempt is refused with `credential_locked`, the right
password included, and attempts during the lock do not extend it. A success resets the count.
Failures are forgotten 24 hours after the last one (the RTS counts failures "within a given
period"), which also lets `prune_lockouts` keep the table small. A wrong TOTP code is a failed
attempt like a wrong password, during login and during step-up.

Unknown accounts. A login for an identifier that matches no credential takes the same steps as a
wrong password: the same queries, one Argon2id verification (of a dummy hash), a failure counted
against a lockout row keyed by the identifier, and the same refusal, `invalid_credentials`, then
`credential_locked` after five. Its timing and its answers therefore do not reveal whether the
account exists. (A wrong TOTP code also answers `invalid_credentials`, so an attacker cannot
learn that the password was right.)

Rate limiting. Before any database work, `login`, `step_up` and `client_credentials_token` take a
token from an in-memory bucket keyed by the identifier (and by the caller's network address when
the edge passes one); see `RateLimiter`. The lockout is the hard per-credential bound; the rate
limiter bounds how fast anyone can make the service do Argon2 work or write lockout rows.

Sessions and tokens. A session records its subject, role, scopes and authentication strength
(the factors used and whether a certificate or e-signature was verified by the edge), and lives
at most 12 hours. Each login returns a 15-minute access token and a refresh token valid for an
hour of inactivity. A refresh token is used once: `refresh` rotates it, and presenting a rotated
one again (a stolen copy, or a client bug) revokes the whole session, so the thief's and the
owner's tokens all stop working and the owner logs in again. Revocation is by session; see
`tianping.identity.tokens` for how quickly a revocation reaches every process.

Nothing here logs or raises with a password, a code, a token, a secret or a login name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from tianping.identity.auth_store import AuthStore, LockoutRow, SessionRow
from tianping.identity.errors import InvalidInput, LimitReached
from tianping.identity.ids import is_party_id
from tianping.identity.passwords import PasswordHasher
from tianping.identity.tokens import (
    ACCESS_TOKEN_LIFETIME_NS,
    REVOCATION_REFRESH_INTERVAL_NS,
    REVOCATION_STALENESS_MAX_NS,
    REVOCATION_WINDOW_NS,
    ROLES,
    AccessClaims,
    AccessTokenVerifier,
    AuthError,
    RevocationSet,
    SigningKey,
    TokenIssuer,
    load_signing_key,
    validate_scopes,
)
from tianping.identity.totp import (
    SecretBox,
    SecretUnreadable,
    match_step,
    new_secret,
    provisioning_uri,
)
from tianping.ledger.service import Ledger, LedgerWrite

__all__ = [
    "DEFAULT_ROLE_SCOPES",
    "AuthPolicy",
    "AuthService",
    "AuthSession",
    "ClientExists",
    "CredentialLocked",
    "CredentialNotFound",
    "DeviceConflict",
    "DeviceInfo",
    "InvalidClient",
    "InvalidCredentials",
    "LoginNameTaken",
    "MachineClientCredentials",
    "RateLimited",
    "RateLimiter",
    "RefreshTokenInvalid",
    "RefreshTokenReused",
    "RevocationRefresher",
    "SessionInvalid",
    "TotpCodeInvalid",
    "TotpNotEnrolled",
]

_log = logging.getLogger(__name__)

Clock = Callable[[], int]

_NS: Final = 1_000_000_000
_MINUTE: Final = 60 * _NS
_HOUR: Final = 60 * _MINUTE

SESSION_ID_PREFIX: Final = "ses_"
REFRESH_TOKEN_PREFIX: Final = "tprt_"  # noqa: S105 - a prefix that makes leaked tokens greppable
CLIENT_SECRET_PREFIX: Final = "tpcs_"  # noqa: S105 - likewise
_REFRESH_TOKEN = re.compile(r"tprt_[A-Za-z0-9_-]{43}")
_CLIENT_SECRET = re.compile(r"tpcs_[A-Za-z0-9_-]{43}")
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{2,63}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SESSION_ID = re.compile(r"ses_[A-Za-z0-9_-]{24}")
LOGIN_NAME_LENGTH_MIN: Final = 3
LOGIN_NAME_LENGTH_MAX: Final = 128
DEVICE_LABEL_LENGTH_MAX: Final = 64
# Work on an identifier is bounded before it is normalised or hashed.
_IDENTIFIER_LENGTH_MAX: Final = 4 * LOGIN_NAME_LENGTH_MAX

# Scopes each role's sessions receive until the authorisation work (issue 3, section 4) supplies
# the real mapping through `AuthService(role_scopes=...)`. Customer, merchant and partner
# sessions get no existing API scope here on purpose: the current routes do not yet check
# ownership, and a customer holding `ledger:read` would read every account.
DEFAULT_ROLE_SCOPES: Final[Mapping[str, frozenset[str]]] = {
    "customer": frozenset(),
    "merchant": frozenset(),
    "partner": frozenset(),
    "operator": frozenset({"ledger:read", "ledger:write", "ledger:audit", "rules:read"}),
    "supervisor": frozenset({"rules:read"}),
    "auditor": frozenset({"ledger:read", "ledger:audit", "rules:read"}),
}


# ------------------------------------------------------------------------------------- errors


class InvalidCredentials(AuthError):
    """Wrong password, wrong or replayed code, or no such account: deliberately one answer."""

    code = "invalid_credentials"


class CredentialLocked(AuthError):
    """Too many consecutive failures: the credential is locked until `retry_after_ns`."""

    code = "credential_locked"

    def __init__(self, message: str, retry_at_ns: int) -> None:
        super().__init__(message)
        self.retry_at_ns = retry_at_ns


class RateLimited(AuthError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_ns: int) -> None:
        super().__init__(message)
        self.retry_after_ns = retry_after_ns


class SessionInvalid(AuthError):
    """The session does not exist, has expired or has been revoked."""

    code = "session_invalid"


class TotpNotEnrolled(AuthError):
    code = "totp_not_enrolled"


class TotpCodeInvalid(AuthError):
    """The code confirming a TOTP enrolment is wrong or already used."""

    code = "totp_code_invalid"


class RefreshTokenInvalid(AuthError):
    """Unknown, expired, or of a session that has ended."""

    code = "refresh_token_invalid"


class RefreshTokenReused(AuthError):
    """A rotated refresh token came back: its whole session has been revoked."""

    code = "refresh_token_reused"


class InvalidClient(AuthError):
    """Unknown machine client, wrong secret or disabled client (OAuth 2.0 `invalid_client`)."""

    code = "invalid_client"


class ClientExists(AuthError):
    code = "client_exists"


class CredentialNotFound(AuthError):
    """The party has no password credential yet (set one before adding factors or devices)."""

    code = "credential_not_found"


class LoginNameTaken(AuthError):
    code = "login_name_taken"


class DeviceConflict(AuthError):
    """The device id is registered already, to another party or with another label."""

    code = "device_conflict"


# ------------------------------------------------------------------------------- rate limiter


class RateLimiter:
    """Token buckets per key, in memory, with a bound on the number of keys.

    Each key has a bucket of `capacity` tokens that refills by one every `refill_interval_ns`;
    an attempt takes one token or is refused with the time until the next one. State is kept in
    integers (a bucket's level in nanoseconds of refill), so there is no rounding drift.

    Memory. At most `max_keys` buckets are kept, in least-recently-used order. A bucket that
    has refilled completely is the same as no bucket, so dropping it loses nothing; when more
    than `max_keys` keys have been active within one full refill period, the least recently used
    bucket is dropped anyway and that key starts again with a full bucket. That is the price of a
    hard memory bound: each bucket costs about 200 bytes, so the default 100,000 keys cost about
    20 MB. The per-credential lockout, which lives in the database, is the bound that never
    forgets. Keys are hashed before they are stored, so the limiter holds no identifiers.
    """

    def __init__(
        self,
        capacity: int = 10,
        refill_interval_ns: int = 6 * _NS,
        max_keys: int = 100_000,
    ) -> None:
        if capacity < 1 or refill_interval_ns < 1 or max_keys < 1:
            raise ValueError("capacity, refill interval and key bound must be positive")
        self.capacity = capacity
        self.refill_interval_ns = refill_interval_ns
        self.max_keys = max_keys
        self._full = capacity * refill_interval_ns
        self._buckets: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def try_acquire(self, key: str, now: int) -> int:
        """Take a token for `key`: 0 when allowed, else nanoseconds until a token is due."""
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
        with self._lock:
            state = self._buckets.get(digest)
            if state is None:
                level = self._full
                while len(self._buckets) >= self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                previous_level, previous_time = state
                level = min(self._full, previous_level + max(0, now - previous_time))
                self._buckets.move_to_end(digest)
            if level >= self.refill_interval_ns:
                self._buckets[digest] = (level - self.refill_interval_ns, now)
                return 0
            self._buckets[digest] = (level, now)
            return self.refill_interval_ns - level


# -------------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Authentication parameters. The defaults are Tianping's policy; tests may shorten them."""

    # G1 (PSD2 RTS Art. 4(3)(b)): at most five failed attempts before a block.
    failed_attempts_max: int = 5
    lockout_ns: int = 15 * _MINUTE
    failure_memory_ns: int = 24 * _HOUR
    # A session ends 12 hours after login whatever happens; a refresh token unused for an hour
    # ends it earlier. Payment apps keep people logged in for a working day, not for weeks.
    session_lifetime_ns: int = 12 * _HOUR
    refresh_token_lifetime_ns: int = 1 * _HOUR
    devices_per_party_max: int = 32


@dataclass(frozen=True, slots=True)
class AuthSession:
    """A session with its authentication strength and the tokens just issued for it."""

    session_id: str
    subject: str
    role: str
    scopes: frozenset[str]
    factors: tuple[str, ...]
    certificate: bool
    device_id: str | None
    expires_at: int
    access_token: str = field(repr=False)
    access_expires_at: int
    refresh_token: str | None = field(repr=False)
    refresh_expires_at: int | None

    @property
    def strength(self) -> int:
        """How many independent factors the session used (a certificate counts as one)."""
        return len(self.factors) + (1 if self.certificate else 0)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_id: str
    party_id: str
    label: str = field(repr=False)
    registered_at: int


@dataclass(frozen=True, slots=True)
class MachineClientCredentials:
    """A new client's id and secret. The secret is shown once and stored only as a digest."""

    client_id: str
    partner_party_id: str
    scopes: frozenset[str]
    client_secret: str = field(repr=False)


def _digest(token: str) -> bytes:
    # Refresh tokens and client secrets are 256-bit random values: nobody can guess one, so a
    # fast digest protects them at rest as well as a slow password hash would.
    return hashlib.sha256(token.encode("ascii")).digest()


def _join(values: Iterable[str]) -> str:
    return " ".join(sorted(values))


def _factors_text(factors: Iterable[str]) -> str:
    return ",".join(factors)


def _normalise_login_name(name: str) -> str | None:
    """The canonical form of a login name, or None when it cannot be one."""
    if not isinstance(name, str) or len(name) > _IDENTIFIER_LENGTH_MAX:
        return None
    text = unicodedata.normalize("NFKC", name).strip().casefold()
    if not LOGIN_NAME_LENGTH_MIN <= len(text) <= LOGIN_NAME_LENGTH_MAX or not text.isprintable():
        return None
    return text


# ------------------------------------------------------------------------------------ service


class AuthService:
    """Authentication use cases over the ledger's unit of work. One per process; thread-safe."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        signing_key: SigningKey,
        secret_box: SecretBox,
        previous_signing_keys: Iterable[SigningKey] = (),
        hasher: PasswordHasher | None = None,
        clock: Clock | None = None,
        policy: AuthPolicy | None = None,
        role_scopes: Mapping[str, frozenset[str]] = DEFAULT_ROLE_SCOPES,
        identifier_limiter: RateLimiter | None = None,
        address_limiter: RateLimiter | None = None,
        revocation_staleness_max_ns: int | None = REVOCATION_STALENESS_MAX_NS,
    ) -> None:
        missing = set(ROLES) - set(role_scopes)
        if missing:
            raise ValueError(f"role_scopes lacks roles {sorted(missing)}")
        self.ledger = ledger
        self.clock: Clock = clock if clock is not None else ledger.clock
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self.policy = policy if policy is not None else AuthPolicy()
        self.role_scopes = {role: validate_scopes(role_scopes[role]) for role in ROLES}
        self.secret_box = secret_box
        self.issuer = TokenIssuer(signing_key)
        self.revocations = RevocationSet(revocation_staleness_max_ns)
        self.verifier = AccessTokenVerifier.for_keys(
            [signing_key, *previous_signing_keys], self.revocations
        )
        # Ten attempts in a burst, then one every six seconds, per identifier: plenty for a
        # person, and a guesser gets 600 tries an hour at most before the lockout stops them.
        self.identifier_limiter = (
            identifier_limiter if identifier_limiter is not None else RateLimiter(10, 6 * _NS)
        )
        # Per network address: generous, because many people can share one address (a campus, a
        # carrier's NAT), but it still bounds the Argon2 work one source can cause.
        self.address_limiter = (
            address_limiter if address_limiter is not None else RateLimiter(60, _NS)
        )

    @classmethod
    def from_environment(
        cls,
        ledger: Ledger,
        environ: Mapping[str, str] = os.environ,
        *,
        development_keys: bool = False,
        clock: Clock | None = None,
    ) -> AuthService:
        """A service with the signing key and secrets key the environment names.

        `development_keys` generates missing keys in memory (see `load_signing_key` and
        `SecretBox.from_environment` for why that is never the default).
        """
        return cls(
            ledger,
            signing_key=load_signing_key(
                environ=environ, generate_development_key=development_keys
            ),
            secret_box=SecretBox.from_environment(
                environ, generate_development_key=development_keys
            ),
            clock=clock,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _party_key(self, party_id: str) -> bytes:
        return self.secret_box.index_digests(b"tianping.auth.lockout", "party:" + party_id)[0]

    def _login_name_digests(self, normalised: str) -> list[bytes]:
        return self.secret_box.index_digests(b"tianping.auth.login-name", normalised)

    def _rate_check(self, key: str, address: str | None, now: int) -> None:
        wait = self.identifier_limiter.try_acquire(key, now)
        if not wait and address is not None:
            wait = self.address_limiter.try_acquire("address:" + address[:256], now)
        if wait:
            raise RateLimited("too many authentication attempts; retry later", wait)

    def _locked_until(self, state: LockoutRow | None, now: int) -> int | None:
        if state is not None and state.locked_until > now:
            return state.locked_until
        return None

    def _record_failure(
        self, store: AuthStore, subject_key: bytes, subject: str | None, now: int
    ) -> None:
        """Count one failed attempt under the write lock; lock the credential at the limit."""
        state = store.lockout(subject_key)
        count = 0
        if state is not None and now - state.last_failed_at < self.policy.failure_memory_ns:
            count = state.failed_count
        if state is not None and 0 < state.locked_until <= now:
            # A lock that has run out starts a fresh count.
            count = 0
        count += 1
        locked_until = 0
        if count >= self.policy.failed_attempts_max:
            locked_until = now + self.policy.lockout_ns
            store.insert_event(now, "credential_locked", subject)
            count = 0
        store.put_lockout(subject_key, LockoutRow(count, now, locked_until))

    def _seal_context(self, kind: bytes, party_id: str, extra: str = "") -> bytes:
        return b"tianping.auth." + kind + b"\x00" + f"{party_id}\x00{extra}".encode()

    def _open_session(
        self,
        store: AuthStore,
        *,
        subject: str,
        subject_kind: str,
        role: str,
        scopes: frozenset[str],
        factors: tuple[str, ...],
        certificate: bool,
        device_id: str | None,
        now: int,
        lifetime_ns: int,
        with_refresh: bool,
    ) -> tuple[SessionRow, str | None, int | None]:
        session = SessionRow(
            session_id=SESSION_ID_PREFIX + secrets.token_urlsafe(18),
            subject=subject,
            subject_kind=subject_kind,
            role=role,
            scopes=_join(scopes),
            factors=_factors_text(factors),
            certificate=certificate,
            device_id=device_id,
            created_at=now,
            expires_at=now + lifetime_ns,
            strength_raised_at=None,
            revoked_at=None,
            revoked_reason=None,
        )
        store.insert_session(session)
        if not with_refresh:
            return session, None, None
        refresh_token, refresh_expires_at = self._new_refresh_token(store, session, now)
        return session, refresh_token, refresh_expires_at

    def _new_refresh_token(
        self, store: AuthStore, session: SessionRow, now: int
    ) -> tuple[str, int]:
        token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = min(now + self.policy.refresh_token_lifetime_ns, session.expires_at)
        store.insert_refresh_token(_digest(token), session.session_id, now, expires_at)
        return token, expires_at

    def _session_tokens(
        self,
        session: SessionRow,
        now: int,
        refresh_token: str | None,
        refresh_expires_at: int | None,
    ) -> AuthSession:
        granted = frozenset(session.scopes.split())
        factors = tuple(session.factors.split(","))
        access = self.issuer.issue(
            subject=session.subject,
            role=session.role,
            scopes=granted,
            factors=factors,
            certificate=session.certificate,
            session_id=session.session_id,
            now_ns=now,
            not_after_ns=session.expires_at,
        )
        return AuthSession(
            session_id=session.session_id,
            subject=session.subject,
            role=session.role,
            scopes=granted,
            factors=factors,
            certificate=session.certificate,
            device_id=session.device_id,
            expires_at=session.expires_at,
            access_token=access.token,
            access_expires_at=access.expires_at_ns,
            refresh_token=refresh_token,
            refresh_expires_at=refresh_expires_at,
        )

    def _active_session(self, store: AuthStore, session_id: str, now: int) -> SessionRow:
        session = (
            store.session(session_id)
            if isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id)
            else None
        )
        if session is None or session.revoked_at is not None or session.expires_at <= now:
            raise SessionInvalid("the session does not exist, has expired or has been revoked")
        return session

    def _require_credential(self, store: AuthStore, party_id: str) -> None:
        if store.credential(party_id) is None:
            raise CredentialNotFound("the party has no password credential")

    # -- credentials ------------------------------------------------------------------------

    def set_password(
        self,
        party_id: str,
        password: str,
        *,
        role: str | None = None,
        login_name: str | None = None,
        uow: LedgerWrite | None = None,
    ) -> None:
        """Create or change a party's password (12 to 128 characters), role and login name.

        `role` defaults to the current one, or `customer` for a new credential. The login
        name, if given, is stored only as a keyed digest; it must not look like a party id.
        """
        if not is_party_id(party_id):
            raise InvalidInput("party_id", "a party id is 'pty_' and 26 base32 characters")
        if role is not None and role not in ROLES:
            raise InvalidInput("role", f"the role is one of {', '.join(ROLES)}")
        digest: bytes | None = None
        if login_name is not None:
            normalised = _normalise_login_name(login_name)
            if normalised is None or is_party_id(normalised):
                raise InvalidInput(
                    "login_name",
                    f"a login name is {LOGIN_NAME_LENGTH_MIN} to {LOGIN_NAME_LENGTH_MAX} "
                    "printable characters and not a party id",
                )
            digests = self._login_name_digests(normalised)
            digest = digests[0]
        # Hashing first: ~20 ms of Argon2 must not run under the ledger's write lock.
        password_hash = self.hasher.hash(password)
        now = self.clock()
        with AuthStore.writing(self.ledger, uow) as (_, store):
            if login_name is not None:
                owner = store.credential_by_login_name(digests)
                if owner is not None and owner.party_id != party_id:
                    raise LoginNameTaken("the login name belongs to another party")
            current = store.credential(party_id)
            chosen_role = role or (current.role if current is not None else "customer")
            store.put_credential(party_id, chosen_role, password_hash, digest, now)
            store.insert_event(now, "password_set", party_id)

    # -- TOTP -------------------------------------------------------------------------------

    def enroll_totp(
        self, party_id: str, account_name: str | None = None, *, uow: LedgerWrite | None = None
    ) -> str:
        """Start (or restart) TOTP enrolment; returns the provisioning URI, shown once.

        The secret becomes usable once `confirm_totp` receives a code from the app, which
        proves the app holds it. Re-enrolling replaces the previous secret.
        """
        secret = new_secret()
        uri = provisioning_uri(secret, account_name or party_id)
        now = self.clock()
        with AuthStore.writing(self.ledger, uow) as (_, store):
            self._require_credential(store, party_id)
            sealed = self.secret_box.seal(
                self._seal_context(b"totp", party_id), secret.encode("ascii")
            )
            store.put_totp(party_id, sealed, now)
            store.insert_event(now, "totp_enrolled", party_id)
        return uri

    def _totp_secret(self, party_id: str, sealed: bytes) -> str:
        return self.secret_box.open(self._seal_context(b"totp", party_id), sealed).decode("ascii")

    def confirm_totp(self, party_id: str, code: str) -> None:
        """Activate an enrolment with a current code from the app (`TotpCodeInvalid` if not)."""
        now = self.clock()
        self._rate_check("totp:" + party_id, None, now)
        with AuthStore.writing(self.ledger) as (_, store):
            row = store.totp(party_id) if is_party_id(party_id) else None
            if row is None:
                raise TotpNotEnrolled("the party has no TOTP enrolment")
            step = match_step(
                self._totp_secret(party_id, row.secret_sealed), code, now, row.last_used_step
            )
            if step is None or not store.use_totp_step(party_id, step, confirm_at=now):
                raise TotpCodeInvalid("the code is not the app's current code")
            store.insert_event(now, "totp_confirmed", party_id)

    # -- devices ----------------------------------------------------------------------------

    def register_device(
        self, party_id: str, device_id: str, label: str, *, uow: LedgerWrite | None = None
    ) -> DeviceInfo:
        """Register a device for a party, idempotently by its client-chosen `device_id`."""
        if not isinstance(device_id, str) or _DEVICE_ID.fullmatch(device_id) is None:
            raise InvalidInput("device_id", "a device id is 8 to 64 of A-Z a-z 0-9 _ -")
        if (
            not isinstance(label, str)
            or not 1 <= len(label) <= DEVICE_LABEL_LENGTH_MAX
            or not label.isprintable()
        ):
            raise InvalidInput("label", "a device label is 1 to 64 printable characters")
        now = self.clock()
        with AuthStore.writing(self.ledger, uow) as (_, store):
            self._require_credential(store, party_id)
            context = self._seal_context(b"device-label", party_id, device_id)
            existing = store.device(device_id)
            if existing is not None:
                same = existing.party_id == party_id and self._label_matches(
                    context, existing.label_sealed, label
                )
                if not same:
                    raise DeviceConflict("the device id is registered with other details")
                return DeviceInfo(device_id, party_id, label, existing.registered_at)
            if store.count_devices(party_id) >= self.policy.devices_per_party_max:
                raise LimitReached(
                    f"a party registers at most {self.policy.devices_per_party_max} devices"
                )
            store.insert_device(
                device_id, party_id, self.secret_box.seal(context, label.encode("utf-8")), now
            )
            store.insert_event(now, "device_registered", party_id)
        return DeviceInfo(device_id, party_id, label, now)

    def _label_matches(self, context: bytes, sealed: bytes, label: str) -> bool:
        try:
            return self.secret_box.open(context, sealed) == label.encode("utf-8")
        except SecretUnreadable:
            return False

    # -- login ------------------------------------------------------------------------------

    def login(
        self,
        party_id_or_login_name: str,
        password: str,
        totp_code: str | None = None,
        device_id: str | None = None,
        *,
        certificate: bool = False,
        client_address: str | None = None,
    ) -> AuthSession:
        """Authenticate and open a session, or refuse with a stable code.

        Refusals: `InvalidCredentials` (wrong password or code, or no such account),
        `CredentialLocked`, `RateLimited`. `certificate` says the edge verified a digital
        certificate or e-signature of this party; it is recorded in the session's strength.
        A `device_id` registered to the party is recorded on the session.
        """
        now = self.clock()
        identifier = party_id_or_login_name if isinstance(party_id_or_login_name, str) else ""
        by_party = is_party_id(identifier)
        normalised = identifier if by_party else _normalise_login_name(identifier)
        # Anything that cannot be an identifier is an unknown account, handled the same way.
        lookup_text = normalised if normalised is not None else identifier[:_IDENTIFIER_LENGTH_MAX]
        self._rate_check("login:" + lookup_text, client_address, now)

        # Phase 1: read.
        with AuthStore.reading(self.ledger, snapshot=False) as store:
            if by_party:
                credential = store.credential(identifier)
            elif normalised is not None:
                credential = store.credential_by_login_name(self._login_name_digests(normalised))
            else:
                credential = None
            if credential is not None:
                party_id: str | None = credential.party_id
                subject_key = self._party_key(credential.party_id)
            else:
                party_id = None
                subject_key = self.secret_box.index_digests(
                    b"tianping.auth.lockout", "name:" + lookup_text
                )[0]
            lockout = store.lockout(subject_key)
            totp = store.totp(party_id) if party_id is not None and totp_code is not None else None
            device = (
                store.device(device_id)
                if party_id is not None and isinstance(device_id, str) and len(device_id) <= 64
                else None
            )

        # Phase 2: verify, outside any transaction.
        locked = self._locked_until(lockout, now) is not None
        usable_hash = credential.password_hash if credential is not None and not locked else None
        check = self.hasher.verify(usable_hash, password)
        totp_step: int | None = None
        if totp_code is not None and totp is not None and totp.confirmed_at is not None:
            totp_step = match_step(
                self._totp_secret(totp.party_id, totp.secret_sealed),
                totp_code,
                now,
                totp.last_used_step,
            )
        verified = check.ok and (totp_code is None or totp_step is not None)
        new_hash = self.hasher.hash(password) if verified and check.needs_rehash else None
        known_device = (
            device.device_id
            if device is not None and device.party_id == party_id and device.revoked_at is None
            else None
        )

        # Phase 3: decide and record under the write lock.
        refusal: AuthError | None = None
        result: tuple[SessionRow, str | None, int | None] | None = None
        with AuthStore.writing(self.ledger) as (_, store):
            locked_until = self._locked_until(store.lockout(subject_key), now)
            if locked_until is not None:
                store.insert_event(now, "login_locked", party_id, code=CredentialLocked.code)
                refusal = CredentialLocked("the credential is locked; retry later", locked_until)
            elif not verified or party_id is None or credential is None:
                self._record_failure(store, subject_key, party_id, now)
                store.insert_event(now, "login_failed", party_id, code=InvalidCredentials.code)
                refusal = InvalidCredentials("the credentials are not valid")
            elif totp_step is not None and not store.use_totp_step(party_id, totp_step):
                # Another request consumed this code between our read and now: a replay.
                self._record_failure(store, subject_key, party_id, now)
                store.insert_event(now, "login_failed", party_id, code=InvalidCredentials.code)
                refusal = InvalidCredentials("the credentials are not valid")
            else:
                store.clear_lockout(subject_key)
                if new_hash is not None:
                    store.update_password_hash(party_id, new_hash, now)
                if known_device is not None:
                    store.touch_device(known_device, now)
                factors = ("password", "totp") if totp_step is not None else ("password",)
                result = self._open_session(
                    store,
                    subject=party_id,
                    subject_kind="party",
                    role=credential.role,
                    scopes=self.role_scopes[credential.role],
                    factors=factors,
                    certificate=bool(certificate),
                    device_id=known_device,
                    now=now,
                    lifetime_ns=self.policy.session_lifetime_ns,
                    with_refresh=True,
                )
                store.insert_event(now, "login_succeeded", party_id, result[0].session_id)
        if refusal is not None:
            raise refusal
        assert result is not None  # noqa: S101 - every branch above sets one of the two
        session, refresh_token, refresh_expires_at = result
        return self._session_tokens(session, now, refresh_token, refresh_expires_at)

    # -- step-up ----------------------------------------------------------------------------

    def step_up(self, session_id: str, totp_code: str) -> AuthSession:
        """Raise a session's strength with a TOTP code; returns a new access token for it.

        A wrong code is a failed attempt against the party's credential, like a wrong password.
        The session keeps its refresh token (`refresh_token` in the result is None); later
        access tokens of the session carry the raised strength.
        """
        now = self.clock()
        self._rate_check("step-up:" + str(session_id)[:64], None, now)
        with AuthStore.reading(self.ledger, snapshot=False) as store:
            session = self._active_session(store, session_id, now)
            if session.subject_kind != "party":
                raise SessionInvalid("only a person's or organisation's session can step up")
            totp = store.totp(session.subject)
            subject_key = self._party_key(session.subject)
            lockout = store.lockout(subject_key)
        if totp is None or totp.confirmed_at is None:
            raise TotpNotEnrolled("the party has no confirmed TOTP enrolment")
        step = None
        if self._locked_until(lockout, now) is None:
            step = match_step(
                self._totp_secret(totp.party_id, totp.secret_sealed),
                totp_code,
                now,
                totp.last_used_step,
            )
        refusal: AuthError | None = None
        with AuthStore.writing(self.ledger) as (_, store):
            session = self._active_session(store, session_id, now)
            locked_until = self._locked_until(store.lockout(subject_key), now)
            if locked_until is not None:
                refusal = CredentialLocked("the credential is locked; retry later", locked_until)
            elif step is None or not store.use_totp_step(session.subject, step):
                self._record_failure(store, subject_key, session.subject, now)
                store.insert_event(
                    now, "step_up_failed", session.subject, session_id, InvalidCredentials.code
                )
                refusal = InvalidCredentials("the credentials are not valid")
            else:
                factors = tuple(session.factors.split(","))
                if "totp" not in factors:
                    factors = (*factors, "totp")
                store.raise_session_strength(session_id, _factors_text(factors), now)
                store.insert_event(now, "step_up", session.subject, session_id)
                session = store.session(session_id) or session
        if refusal is not None:
            raise refusal
        return self._session_tokens(session, now, None, None)

    # -- refresh and revocation -------------------------------------------------------------

    def refresh(self, refresh_token: str) -> AuthSession:
        """Rotate a refresh token: a new access token and a new refresh token for the session.

        A refresh token already rotated revokes the whole session (`RefreshTokenReused`).
        """
        if not isinstance(refresh_token, str) or _REFRESH_TOKEN.fullmatch(refresh_token) is None:
            raise RefreshTokenInvalid("the refresh token is not valid")
        token_hash = _digest(refresh_token)
        now = self.clock()
        refusal: AuthError | None = None
        revoked: str | None = None
        result: tuple[SessionRow, str, int] | None = None
        with AuthStore.writing(self.ledger) as (_, store):
            row = store.refresh_token(token_hash)
            session = store.session(row.session_id) if row is not None else None
            if row is None or session is None:
                refusal = RefreshTokenInvalid("the refresh token is not valid")
            elif row.rotated_at is not None:
                if store.revoke_session(session.session_id, now, "refresh_token_reused"):
                    revoked = session.session_id
                store.insert_event(
                    now,
                    "refresh_reused",
                    session.subject,
                    session.session_id,
                    RefreshTokenReused.code,
                )
                refusal = RefreshTokenReused("the refresh token was already used; session ended")
            elif (
                row.expires_at <= now
                or session.revoked_at is not None
                or session.expires_at <= now
                or not store.rotate_refresh_token(token_hash, now)
            ):
                refusal = RefreshTokenInvalid("the refresh token is not valid")
            else:
                new_token, expires_at = self._new_refresh_token(store, session, now)
                store.insert_event(now, "refreshed", session.subject, session.session_id)
                result = (session, new_token, expires_at)
        if revoked is not None:
            self.revocations.add(revoked, now)
        if refusal is not None:
            raise refusal
        assert result is not None  # noqa: S101 - every branch above sets one of the two
        session, new_token, expires_at = result
        return self._session_tokens(session, now, new_token, expires_at)

    def revoke_session(
        self, session_id: str, reason: str = "revoked", *, uow: LedgerWrite | None = None
    ) -> bool:
        """Revoke a session and so all its tokens; False if unknown or already revoked.

        The revocation is effective at once in this process and in others after their next
        revocation refresh.
        """
        if not isinstance(session_id, str) or _SESSION_ID.fullmatch(session_id) is None:
            return False
        if not re.fullmatch(r"[a-z_]{1,64}", reason):
            raise InvalidInput("reason", "a revocation reason is 1 to 64 of a-z and _")
        now = self.clock()
        with AuthStore.writing(self.ledger, uow) as (_, store):
            session = store.session(session_id)
            done = store.revoke_session(session_id, now, reason)
            if done and session is not None:
                store.insert_event(now, "session_revoked", session.subject, session_id, reason)
        if done:
            self.revocations.add(session_id, now)
        return done

    def refresh_revocations(self) -> int:
        """Reload recent revocations from the database; returns how many are in force."""
        as_of = self.clock()
        with AuthStore.reading(self.ledger, snapshot=False) as store:
            revoked = store.revoked_since(as_of - REVOCATION_WINDOW_NS)
        self.revocations.replace(revoked, as_of)
        return len(self.revocations)

    def verify_access_token(self, token: str) -> AccessClaims:
        """Verify a bearer token at the service clock's now (see `AccessTokenVerifier`)."""
        return self.verifier.verify_access_token(token, self.clock())

    def prune_lockouts(self) -> int:
        """Delete lockout rows that no longer matter (failures forgotten, locks over)."""
        now = self.clock()
        with AuthStore.writing(self.ledger) as (_, store):
            return store.prune_lockouts(now - self.policy.failure_memory_ns, now)

    # -- machine clients --------------------------------------------------------------------

    def create_machine_client(
        self,
        client_id: str,
        partner_party_id: str,
        scopes: Iterable[str],
        *,
        uow: LedgerWrite | None = None,
    ) -> MachineClientCredentials:
        """Register a partner institution's client; its secret is returned here and never again.

        A client id already in use is refused (`ClientExists`): the secret of the first call
        cannot be shown again, so a caller who lost it rotates it with `rotate_client_secret`.
        """
        if not isinstance(client_id, str) or _CLIENT_ID.fullmatch(client_id) is None:
            raise InvalidInput("client_id", "a client id is 3 to 64 of a-z 0-9 _ . -")
        if not is_party_id(partner_party_id):
            raise InvalidInput("partner_party_id", "a party id is 'pty_' and 26 characters")
        granted = validate_scopes(scopes)
        secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with AuthStore.writing(self.ledger, uow) as (_, store):
            if store.client(client_id) is not None:
                raise ClientExists("the client id is already registered")
            store.insert_client(client_id, partner_party_id, _join(granted), _digest(secret), now)
            store.insert_event(now, "client_created", client_id)
        return MachineClientCredentials(client_id, partner_party_id, granted, secret)

    def rotate_client_secret(self, client_id: str) -> str:
        """Give a machine client a new secret (returned once); the old one stops working."""
        secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with AuthStore.writing(self.ledger) as (_, store):
            if not isinstance(client_id, str) or not store.replace_client_secret(
                client_id, _digest(secret), now
            ):
                raise InvalidClient("no such machine client")
            store.insert_event(now, "client_secret_rotated", client_id)
        return secret

    def client_credentials_token(
        self, client_id: str, client_secret: str, *, client_address: str | None = None
    ) -> AuthSession:
        """OAuth 2.0 client-credentials grant: an access token (no refresh token) for a client.

        Each grant opens a short session of the token's lifetime, so revoking it works like
        any other session. Unknown client, wrong secret and disabled client are all
        `InvalidClient`.
        """
        now = self.clock()
        valid_id = isinstance(client_id, str) and _CLIENT_ID.fullmatch(client_id) is not None
        self._rate_check("client:" + (client_id if valid_id else "?"), client_address, now)
        client = None
        if valid_id:
            with AuthStore.reading(self.ledger, snapshot=False) as store:
                client = store.client(client_id)
        presented = (
            _digest(client_secret)
            if isinstance(client_secret, str) and _CLIENT_SECRET.fullmatch(client_secret)
            else b"\x00" * 32
        )
        expected = client.secret_hash if client is not None else secrets.token_bytes(32)
        # Compared in constant time even for an unknown client, against a random digest.
        matches = hmac.compare_digest(presented, expected)
        refusal: AuthError | None = None
        session: SessionRow | None = None
        with AuthStore.writing(self.ledger) as (_, store):
            if client is None or not matches or client.disabled_at is not None:
                store.insert_event(
                    now, "client_refused", client.client_id if client else None, None, "invalid"
                )
                refusal = InvalidClient("the client credentials are not valid")
            else:
                session, _, _ = self._open_session(
                    store,
                    subject=client.client_id,
                    subject_kind="client",
                    role="partner",
                    # The client's own scopes, not the partner role's defaults.
                    scopes=frozenset(client.scopes.split()),
                    factors=("client_secret",),
                    certificate=False,
                    device_id=None,
                    now=now,
                    lifetime_ns=ACCESS_TOKEN_LIFETIME_NS,
                    with_refresh=False,
                )
                store.insert_event(now, "client_token", client.client_id, session.session_id)
        if refusal is not None:
            raise refusal
        assert session is not None and client is not None  # noqa: S101
        return self._session_tokens(session, now, None, None)


class RevocationRefresher:
    """A daemon thread that refreshes the service's revocation set every few seconds.

    The API starts one per process. A failed refresh is logged (by exception type only: driver
    messages can quote SQL parameters) and retried at the next tick; if failures last longer
    than the staleness bound, token verification fails closed (see `RevocationSet`).
    """

    def __init__(
        self, service: AuthService, interval_ns: int = REVOCATION_REFRESH_INTERVAL_NS
    ) -> None:
        self.service = service
        self.interval_s = interval_ns / _NS
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="tianping-revocation-refresher", daemon=True
        )

    def start(self) -> None:
        self.service.refresh_revocations()
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.service.refresh_revocations()
            except Exception as exc:  # a refresher must survive a database blip
                _log.warning("revocation refresh failed (%s); retrying", type(exc).__name__)
