"""Authentication on SQLite and PostgreSQL: logins with and without TOTP, lockout, unknown
accounts, refresh rotation and reuse detection, revocation across processes, step-up, devices,
machine clients, and what is (not) stored.

Every test uses the `ledger` fixture, which migrates a fresh database on each backend and checks
the ledger's invariants and audit chain when the test ends. Argon2 runs with its smallest memory
setting here except where a test says otherwise, to keep the suite fast; the parameters
themselves are tested in tests/unit/test_identity_passwords_totp_tokens.py.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from ledger_support import ManualClock
from tianping.identity.auth_service import (
    AuthPolicy,
    AuthService,
    AuthSession,
    ClientExists,
    CredentialLocked,
    CredentialNotFound,
    DeviceConflict,
    InvalidClient,
    InvalidCredentials,
    LoginNameTaken,
    RateLimited,
    RateLimiter,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RevocationRefresher,
    SessionInvalid,
    TotpCodeInvalid,
)
from tianping.identity.auth_store import AuthStore
from tianping.identity.errors import InvalidInput
from tianping.identity.ids import new_party_id
from tianping.identity.passwords import (
    PARAMETERS,
    Argon2Parameters,
    PasswordHasher,
    PasswordRejected,
)
from tianping.identity.tokens import (
    AccessTokenVerifier,
    RevocationSet,
    RevocationStateStale,
    SigningKey,
    SigningKeyUnavailable,
    TokenExpired,
    TokenRevoked,
)
from tianping.identity.totp import SecretBox, SecretsKeyUnavailable, code_at
from tianping.ledger.service import Ledger

NS = 1_000_000_000
MINUTE = 60 * NS
PASSWORD = "correct horse battery staple"
WRONG = "incorrect horse battery staple"
LOGIN_NAME = "+86 138 0013 8000"
CHEAP = Argon2Parameters(memory_kib=64, time_cost=1, parallelism=1)
PARTY_ID = re.compile(r"pty_[0-7][0-9a-hjkmnp-tv-z]{25}")


class CountingHasher(PasswordHasher):
    """A hasher that counts Argon2 verifications, to compare the work of two login paths."""

    def __init__(self, parameters: Argon2Parameters = CHEAP) -> None:
        super().__init__(parameters)
        self.verifications = 0

    def verify(self, stored_hash: str | None, password: str) -> Any:
        self.verifications += 1
        return super().verify(stored_hash, password)


@pytest.fixture
def keys() -> tuple[SigningKey, SecretBox]:
    return SigningKey.generate(), SecretBox(os.urandom(32))


def make_service(
    ledger: Ledger,
    clock: ManualClock,
    keys: tuple[SigningKey, SecretBox],
    **options: Any,
) -> AuthService:
    signing_key, box = keys
    options.setdefault("hasher", CountingHasher())
    service = AuthService(ledger, signing_key=signing_key, secret_box=box, clock=clock, **options)
    service.refresh_revocations()
    return service


@pytest.fixture
def auth(ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]) -> AuthService:
    return make_service(ledger, clock, keys)


def new_party(clock: ManualClock) -> str:
    party_id = new_party_id(clock(), os.urandom(10))
    assert PARTY_ID.fullmatch(party_id)
    return party_id


def enrolled_secret(auth: AuthService, party_id: str, clock: ManualClock) -> str:
    """Enrol and confirm TOTP for a party; returns the secret an authenticator app would hold."""
    uri = auth.enroll_totp(party_id)
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    auth.confirm_totp(party_id, code_at(secret, clock() // NS))
    # The confirming code's step is used up; the next login needs the next step's code.
    clock.advance(30)
    return secret


def wrong_code(good: str) -> str:
    """A six-digit code that is not `good` (nor, by construction, any code near it in time)."""
    return f"{(int(good) + 1) % 1_000_000:06d}"


def events(auth: AuthService, subject: str | None = None) -> list[tuple[str, str | None]]:
    with auth.ledger.read() as store:
        rows = AuthStore(store.connection, auth.ledger.backend).events(subject)
    return [(row[1], row[4]) for row in reversed(rows)]


# --------------------------------------------------------------------------------- logins


def test_login_with_password_only_records_one_factor(
    ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """A password login with the real Argon2id parameters opens a one-factor session."""
    auth = make_service(ledger, clock, keys, hasher=PasswordHasher(PARAMETERS))
    party = new_party(clock)
    auth.set_password(party, PASSWORD, role="operator")
    session = auth.login(party, PASSWORD)
    assert session.factors == ("password",)
    assert session.strength == 1
    assert session.role == "operator"
    assert session.refresh_token is not None
    assert session.access_expires_at == clock() + 15 * MINUTE
    claims = auth.verify_access_token(session.access_token)
    assert claims.subject == party
    assert claims.session_id == session.session_id
    assert claims.factors == ("password",)
    assert "ledger:write" in claims.scopes
    assert events(auth, party)[-1] == ("login_succeeded", None)
    assert PASSWORD not in repr(session) and session.access_token not in repr(session)


def test_login_with_totp_records_two_factors_and_login_name_works(
    auth: AuthService, clock: ManualClock
) -> None:
    """Password plus a current TOTP code, by login name, opens a two-factor session."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD, login_name=LOGIN_NAME)
    secret = enrolled_secret(auth, party, clock)
    # The login name is matched after NFKC and case folding, so spacing of the digits matters
    # but width does not.
    session = auth.login(
        "＋86 138 0013 8000",  # noqa: RUF001 - a full-width plus, as a phone keyboard may send
        PASSWORD,
        totp_code=code_at(secret, clock() // NS),
        certificate=True,
    )
    assert session.subject == party
    assert session.factors == ("password", "totp")
    assert session.certificate is True
    assert session.strength == 3
    claims = auth.verify_access_token(session.access_token)
    assert claims.factors == ("password", "totp") and claims.certificate is True
    with auth.ledger.read() as store:
        row = AuthStore(store.connection, auth.ledger.backend).session(session.session_id)
    assert row is not None and row.factors == "password,totp" and row.certificate is True


def test_totp_code_cannot_be_replayed(auth: AuthService, clock: ManualClock) -> None:
    """A code used for one login is refused for a second within its window."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    secret = enrolled_secret(auth, party, clock)
    code = code_at(secret, clock() // NS)
    auth.login(party, PASSWORD, totp_code=code)
    clock.advance(10)
    with pytest.raises(InvalidCredentials):
        auth.login(party, PASSWORD, totp_code=code)
    clock.advance(30)
    assert auth.login(party, PASSWORD, totp_code=code_at(secret, clock() // NS)).strength == 2


def test_wrong_totp_or_unenrolled_totp_is_invalid_credentials(
    auth: AuthService, clock: ManualClock
) -> None:
    """A wrong code, or a code for a party without TOTP, is the same refusal as a bad password."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    with pytest.raises(InvalidCredentials):
        auth.login(party, PASSWORD, totp_code="123456")
    secret = enrolled_secret(auth, party, clock)
    with pytest.raises(InvalidCredentials) as refused:
        auth.login(party, PASSWORD, totp_code=wrong_code(code_at(secret, clock() // NS)))
    assert refused.value.code == "invalid_credentials"


def test_wrong_password_is_refused_and_counted(auth: AuthService, clock: ManualClock) -> None:
    """A wrong password is `invalid_credentials` and leaves a failure event, no session."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    with pytest.raises(InvalidCredentials) as refused:
        auth.login(party, WRONG)
    assert refused.value.code == "invalid_credentials"
    assert events(auth, party)[-1] == ("login_failed", "invalid_credentials")
    assert WRONG not in str(refused.value) and party not in str(refused.value)


# -------------------------------------------------------------------------------- lockout


def test_five_failures_lock_the_credential_for_15_minutes(
    auth: AuthService, clock: ManualClock
) -> None:
    """After five failures even the right password is refused until 15 minutes have passed."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.login(party, WRONG)
        clock.advance(1)
    locked_at = clock()
    with pytest.raises(CredentialLocked) as refused:
        auth.login(party, PASSWORD)
    assert refused.value.code == "credential_locked"
    assert refused.value.retry_at_ns == locked_at - NS + 15 * MINUTE
    clock.advance(nanoseconds=15 * MINUTE - 2 * NS)
    with pytest.raises(CredentialLocked):
        auth.login(party, PASSWORD)  # one second before the lock ends
    clock.advance(1)
    assert auth.login(party, PASSWORD).factors == ("password",)
    kinds = [kind for kind, _ in events(auth, party)]
    assert kinds.count("credential_locked") == 1 and kinds.count("login_locked") == 2


def test_success_resets_the_failure_count(auth: AuthService, clock: ManualClock) -> None:
    """Four failures, a success, four failures: never locked, the count is per run."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(InvalidCredentials):
                auth.login(party, WRONG)
            clock.advance(6)  # one attempt per rate-limiter refill
        auth.login(party, PASSWORD)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            auth.login(party, WRONG)
        clock.advance(6)
    with pytest.raises(InvalidCredentials):
        auth.login(party, WRONG)  # the fifth in a row: locks
    with pytest.raises(CredentialLocked):
        auth.login(party, PASSWORD)


def test_failures_by_party_id_and_login_name_count_against_one_credential(
    auth: AuthService, clock: ManualClock
) -> None:
    """Alternating identifiers does not buy extra guesses: both name the same credential."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD, login_name=LOGIN_NAME)
    for index in range(5):
        with pytest.raises(InvalidCredentials):
            auth.login(party if index % 2 else LOGIN_NAME, WRONG)
    with pytest.raises(CredentialLocked):
        auth.login(LOGIN_NAME, PASSWORD)


def test_unknown_account_gets_the_same_answers_and_the_same_work(
    auth: AuthService, clock: ManualClock
) -> None:
    """An unknown account costs one Argon2 check like a wrong password and answers alike."""
    hasher = auth.hasher
    assert isinstance(hasher, CountingHasher)
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    answers: dict[str, list[str]] = {"known": [], "unknown": []}
    work: dict[str, list[int]] = {"known": [], "unknown": []}
    identifiers = {"known": party, "unknown": new_party(clock)}
    for label, identifier in identifiers.items():
        for _ in range(6):
            before = hasher.verifications
            with pytest.raises((InvalidCredentials, CredentialLocked)) as refused:
                auth.login(identifier, WRONG)
            answers[label].append(refused.value.code)
            work[label].append(hasher.verifications - before)
    assert (
        answers["known"]
        == answers["unknown"]
        == ["invalid_credentials"] * 5 + ["credential_locked"]
    )
    assert work["known"] == work["unknown"] == [1] * 6
    for name in ("nobody@example.com", "x", "y" * 600):
        before = hasher.verifications
        with pytest.raises(InvalidCredentials):
            auth.login(name, WRONG)
        assert hasher.verifications - before == 1


# ----------------------------------------------------------------- refresh and revocation


def test_refresh_rotates_and_reuse_revokes_the_family(
    auth: AuthService, clock: ManualClock
) -> None:
    """A refresh token works once; presenting it again revokes the session and all its tokens."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    first = auth.login(party, PASSWORD)
    assert first.refresh_token is not None
    clock.advance(60)
    auth.refresh_revocations()  # as the refresher thread does every 5 s
    second = auth.refresh(first.refresh_token)
    assert second.session_id == first.session_id
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.access_token != first.access_token
    assert auth.verify_access_token(second.access_token).session_id == first.session_id
    # The first refresh token comes back: a thief or a replay. The family dies.
    with pytest.raises(RefreshTokenReused) as refused:
        auth.refresh(first.refresh_token)
    assert refused.value.code == "refresh_token_reused"
    assert second.refresh_token is not None
    with pytest.raises(RefreshTokenInvalid):
        auth.refresh(second.refresh_token)
    for token in (first.access_token, second.access_token):
        with pytest.raises(TokenRevoked):
            auth.verify_access_token(token)
    kinds = [kind for kind, _ in events(auth, party)]
    assert kinds[-2:] == ["refreshed", "refresh_reused"]


def test_refresh_token_expires_after_an_hour_of_inactivity(
    auth: AuthService, clock: ManualClock
) -> None:
    """An unused refresh token expires after an hour; garbage tokens are invalid too."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    session = auth.login(party, PASSWORD)
    assert session.refresh_token is not None
    clock.advance(3600)
    with pytest.raises(RefreshTokenInvalid):
        auth.refresh(session.refresh_token)
    for junk in ("", "tprt_short", "tprt_" + "A" * 43, session.access_token):
        with pytest.raises(RefreshTokenInvalid):
            auth.refresh(junk)


def test_revocation_reaches_another_process_after_its_refresh(
    ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """A revoked session's token fails here at once, and elsewhere once that set refreshes."""
    here = make_service(ledger, clock, keys)
    there = make_service(ledger, clock, keys)  # another process: its own revocation set
    party = new_party(clock)
    here.set_password(party, PASSWORD)
    session = here.login(party, PASSWORD)
    assert there.verify_access_token(session.access_token).subject == party
    assert here.revoke_session(session.session_id) is True
    assert here.revoke_session(session.session_id) is False  # idempotent
    with pytest.raises(TokenRevoked):
        here.verify_access_token(session.access_token)
    # Until its next refresh, the other process still accepts the (cached) token...
    assert there.verify_access_token(session.access_token).subject == party
    clock.advance(5)
    assert there.refresh_revocations() == 1
    with pytest.raises(TokenRevoked):
        there.verify_access_token(session.access_token)
    # ...and a process that stops refreshing fails closed after 30 seconds.
    other = here.login(party, PASSWORD)
    clock.advance(31)
    with pytest.raises(RevocationStateStale):
        there.verify_access_token(other.access_token)
    with pytest.raises(RefreshTokenInvalid):
        assert session.refresh_token is not None
        here.refresh(session.refresh_token)


def test_access_token_expires_after_15_minutes(auth: AuthService, clock: ManualClock) -> None:
    """The access token stops verifying 15 minutes (plus the skew bound) after issue."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    session = auth.login(party, PASSWORD)
    clock.advance(15 * 60 + 30)
    auth.refresh_revocations()
    with pytest.raises(TokenExpired):
        auth.verify_access_token(session.access_token)


# --------------------------------------------------------------------------------- step-up


def test_step_up_raises_the_session_strength(auth: AuthService, clock: ManualClock) -> None:
    """A password session steps up with a TOTP code; later tokens carry both factors."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    secret = enrolled_secret(auth, party, clock)
    session = auth.login(party, PASSWORD)
    assert session.factors == ("password",)
    with pytest.raises(InvalidCredentials):
        auth.step_up(session.session_id, wrong_code(code_at(secret, clock() // NS)))
    raised = auth.step_up(session.session_id, code_at(secret, clock() // NS))
    assert raised.factors == ("password", "totp") and raised.refresh_token is None
    assert auth.verify_access_token(raised.access_token).factors == ("password", "totp")
    assert session.refresh_token is not None
    clock.advance(60)
    auth.refresh_revocations()
    assert auth.refresh(session.refresh_token).factors == ("password", "totp")
    with pytest.raises(SessionInvalid):
        auth.step_up("ses_" + "x" * 24, code_at(secret, clock() // NS))


# ------------------------------------------------------------------------- devices, setup


def test_devices_register_idempotently_and_are_recorded_on_sessions(
    auth: AuthService, clock: ManualClock
) -> None:
    """A device registers once per id, conflicts are refused, and logins record a known device."""
    party, other = new_party(clock), new_party(clock)
    auth.set_password(party, PASSWORD)
    auth.set_password(other, PASSWORD)
    device = auth.register_device(party, "device-0001", "Li's phone")
    again = auth.register_device(party, "device-0001", "Li's phone")
    assert again.registered_at == device.registered_at
    with pytest.raises(DeviceConflict):
        auth.register_device(party, "device-0001", "another label")
    with pytest.raises(DeviceConflict):
        auth.register_device(other, "device-0001", "Li's phone")
    with pytest.raises(InvalidInput):
        auth.register_device(party, "short", "label")
    with pytest.raises(CredentialNotFound):
        auth.register_device(new_party(clock), "device-0002", "label")
    assert auth.login(party, PASSWORD, device_id="device-0001").device_id == "device-0001"
    assert auth.login(party, PASSWORD, device_id="unknown-device").device_id is None
    assert auth.login(other, PASSWORD, device_id="device-0001").device_id is None


def test_set_password_policy_and_login_names(auth: AuthService, clock: ManualClock) -> None:
    """Short passwords and taken login names are refused; a role is kept when not given."""
    party, other = new_party(clock), new_party(clock)
    with pytest.raises(PasswordRejected):
        auth.set_password(party, "too short")
    auth.set_password(party, PASSWORD, role="merchant", login_name=LOGIN_NAME)
    with pytest.raises(LoginNameTaken):
        auth.set_password(other, PASSWORD, login_name=LOGIN_NAME.upper())
    with pytest.raises(InvalidInput):
        auth.set_password(other, PASSWORD, login_name=new_party(clock))
    with pytest.raises(InvalidInput):
        auth.set_password("pty_not-a-party", PASSWORD)
    auth.set_password(party, "a brand new passphrase")
    session = auth.login(LOGIN_NAME, "a brand new passphrase")
    assert session.role == "merchant"
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(auth.enroll_totp(party)).query)
    with pytest.raises(TotpCodeInvalid):
        auth.confirm_totp(party, wrong_code(code_at(secret["secret"][0], clock() // NS)))


def test_password_is_rehashed_on_login_when_parameters_change(
    ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """A hash made with old parameters is replaced by one with the new at the next login."""
    old = make_service(ledger, clock, keys, hasher=PasswordHasher(CHEAP))
    party = new_party(clock)
    old.set_password(party, PASSWORD)
    newer = Argon2Parameters(memory_kib=256, time_cost=1, parallelism=1)
    new = make_service(ledger, clock, keys, hasher=PasswordHasher(newer))
    with ledger.read() as store:
        before = AuthStore(store.connection, ledger.backend).credential(party)
    assert before is not None and "m=64," in before.password_hash
    with pytest.raises(InvalidCredentials):
        new.login(party, WRONG)  # a failed login never rewrites the hash
    new.login(party, PASSWORD)
    with ledger.read() as store:
        after = AuthStore(store.connection, ledger.backend).credential(party)
    assert after is not None and "m=256," in after.password_hash
    assert new.login(party, PASSWORD).factors == ("password",)


def test_rate_limiter_refuses_before_any_work(
    ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """Past the bucket, attempts are refused as rate_limited without Argon2 work or rows."""
    auth = make_service(ledger, clock, keys, identifier_limiter=RateLimiter(2, 10 * NS))
    hasher = auth.hasher
    assert isinstance(hasher, CountingHasher)
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    auth.login(party, PASSWORD)
    auth.login(party, PASSWORD)
    before = (hasher.verifications, len(events(auth)))
    with pytest.raises(RateLimited) as refused:
        auth.login(party, PASSWORD)
    assert refused.value.code == "rate_limited" and refused.value.retry_after_ns == 10 * NS
    assert (hasher.verifications, len(events(auth))) == before
    clock.advance(10)
    auth.login(party, PASSWORD)


# ------------------------------------------------------------------------- machine clients


def test_machine_client_credentials(auth: AuthService, clock: ManualClock) -> None:
    """A partner's client gets its secret once and trades it for a scoped, revocable token."""
    partner = new_party(clock)
    client = auth.create_machine_client("icbc-loans", partner, ["loans:read", "loans:write"])
    assert client.client_secret.startswith("tpcs_")
    assert client.client_secret not in repr(client)
    session = auth.client_credentials_token("icbc-loans", client.client_secret)
    assert session.refresh_token is None
    claims = auth.verify_access_token(session.access_token)
    assert claims.subject == "icbc-loans" and claims.role == "partner"
    assert claims.scopes == frozenset({"loans:read", "loans:write"})
    assert claims.factors == ("client_secret",)
    with pytest.raises(InvalidClient) as refused:
        auth.client_credentials_token("icbc-loans", "tpcs_" + "A" * 43)
    assert refused.value.code == "invalid_client"
    with pytest.raises(InvalidClient):
        auth.client_credentials_token("no-such-client", client.client_secret)
    with pytest.raises(ClientExists):
        auth.create_machine_client("icbc-loans", partner, ["loans:read"])
    rotated = auth.rotate_client_secret("icbc-loans")
    with pytest.raises(InvalidClient):
        auth.client_credentials_token("icbc-loans", client.client_secret)
    fresh = auth.client_credentials_token("icbc-loans", rotated)
    assert auth.revoke_session(fresh.session_id)
    with pytest.raises(TokenRevoked):
        auth.verify_access_token(fresh.access_token)
    clock.advance(15 * 60 + 30)
    auth.refresh_revocations()
    with pytest.raises(TokenExpired):
        auth.verify_access_token(session.access_token)


# ------------------------------------------------------------------------------- storage


def _all_stored_text(ledger: Ledger) -> bytes:
    """Every value of every auth table, as bytes, for scanning."""
    tables = (
        "auth_credentials",
        "auth_totp",
        "auth_devices",
        "auth_sessions",
        "auth_refresh_tokens",
        "auth_lockouts",
        "auth_machine_clients",
        "auth_events",
    )
    chunks: list[bytes] = []
    with ledger.read() as store:
        for table in tables:
            for row in store.connection.execute(f"SELECT * FROM {table}").fetchall():  # noqa: S608
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
    return b"\x1f".join(chunks)


def test_no_secret_or_personal_data_is_stored_or_logged(
    auth: AuthService, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Passwords, codes, secrets, tokens, login names and device labels appear in no row or log."""
    caplog.set_level(logging.DEBUG)
    party = new_party(clock)
    auth.set_password(party, PASSWORD, login_name=LOGIN_NAME)
    secret = enrolled_secret(auth, party, clock)
    auth.register_device(party, "device-0001", "Zhang Wei's phone")
    session = auth.login(LOGIN_NAME, PASSWORD, totp_code=code_at(secret, clock() // NS))
    with pytest.raises(InvalidCredentials):
        auth.login(LOGIN_NAME, WRONG)
    assert session.refresh_token is not None
    refreshed = auth.refresh(session.refresh_token)
    client = auth.create_machine_client("bank-one", new_party(clock), ["loans:read"])
    stored = _all_stored_text(auth.ledger)
    secrets_used = [
        PASSWORD,
        WRONG,
        LOGIN_NAME,
        LOGIN_NAME.replace(" ", ""),
        secret,
        "Zhang Wei",
        session.refresh_token,
        refreshed.refresh_token or "",
        session.access_token,
        client.client_secret,
    ]
    for value in secrets_used:
        assert value.encode() not in stored
        assert value not in caplog.text
    assert party.encode() in stored  # the pseudonymous id is what is recorded


def test_auth_events_are_append_only(auth: AuthService, clock: ManualClock) -> None:
    """The database itself refuses to edit or delete authentication events."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    errors = (sqlite3.DatabaseError, psycopg.Error)
    for statement in ("UPDATE auth_events SET code = 'x'", "DELETE FROM auth_events"):
        with pytest.raises(errors), auth.ledger.write() as uow:
            uow.connection.execute(statement)
    assert events(auth, party) == [("password_set", None)]


def test_lockout_rows_are_pruned_after_the_failure_memory(
    ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """Failures are forgotten after a day, and their rows can then be pruned."""
    auth = make_service(ledger, clock, keys, policy=AuthPolicy(failure_memory_ns=60 * MINUTE))
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            auth.login(party, WRONG)
    with pytest.raises(InvalidCredentials):
        auth.login("someone-unknown", WRONG)
    assert auth.prune_lockouts() == 0
    clock.advance(61 * 60)
    with pytest.raises(InvalidCredentials):
        auth.login(party, WRONG)  # counts as the first again: the old four are forgotten
    assert auth.login(party, PASSWORD).strength == 1
    assert auth.prune_lockouts() == 1  # the unknown identifier's row


def test_verifier_can_be_built_from_the_public_key_alone(
    auth: AuthService, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """Another service holding only the public key verifies the tokens (no signing key needed)."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    session: AuthSession = auth.login(party, PASSWORD)
    revocations = RevocationSet()
    revocations.replace({}, clock())
    signing_key, _ = keys
    verifier = AccessTokenVerifier({signing_key.key_id: signing_key.public_key}, revocations)
    assert verifier.verify_access_token(session.access_token, clock()).subject == party


def test_parallel_guesses_get_no_more_than_five_tries(
    auth: AuthService, clock: ManualClock
) -> None:
    """Ten simultaneous wrong logins: five are judged, the rest meet the lock."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    barrier = threading.Barrier(10)

    def attempt() -> str:
        barrier.wait()
        try:
            auth.login(party, WRONG)
        except (InvalidCredentials, CredentialLocked) as refused:
            return refused.code
        return "logged_in"

    with ThreadPoolExecutor(10) as pool:
        codes = sorted(pool.map(lambda _: attempt(), range(10)))
    assert codes == ["credential_locked"] * 5 + ["invalid_credentials"] * 5
    clock.advance(6)  # past the rate limiter's burst of ten
    with pytest.raises(CredentialLocked):
        auth.login(party, PASSWORD)


def test_one_totp_code_in_two_parallel_logins_is_accepted_once(
    auth: AuthService, clock: ManualClock
) -> None:
    """Two logins racing with the same code: exactly one succeeds, the other is a replay."""
    party = new_party(clock)
    auth.set_password(party, PASSWORD)
    secret = enrolled_secret(auth, party, clock)
    code = code_at(secret, clock() // NS)
    barrier = threading.Barrier(2)

    def attempt() -> str:
        barrier.wait()
        try:
            return "+".join(auth.login(party, PASSWORD, totp_code=code).factors)
        except InvalidCredentials as refused:
            return refused.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: attempt(), range(2)))
    assert outcomes == ["invalid_credentials", "password+totp"]


def test_revocation_refresher_thread_picks_up_other_processes_revocations(
    ledger: Ledger, clock: ManualClock, keys: tuple[SigningKey, SecretBox]
) -> None:
    """The refresher keeps a process's revocation set current without any request."""
    here = make_service(ledger, clock, keys)
    there = make_service(ledger, clock, keys)
    party = new_party(clock)
    here.set_password(party, PASSWORD)
    session = here.login(party, PASSWORD)
    refresher = RevocationRefresher(there, interval_ns=10_000_000)
    refresher.start()
    try:
        assert there.verify_access_token(session.access_token).subject == party
        here.revoke_session(session.session_id)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                there.verify_access_token(session.access_token)
            except TokenRevoked:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the refresher did not pick up the revocation within 5 s")
    finally:
        refresher.stop()


def test_service_from_environment_needs_both_keys_unless_developing(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Keys come from the environment; without them the service refuses unless asked to develop."""
    signing_key = SigningKey.generate()
    environ = {
        "TIANPING_TOKEN_SIGNING_KEY": signing_key.to_pem().decode(),
        "TIANPING_SECRETS_KEY": os.urandom(32).hex(),
    }
    auth = AuthService.from_environment(ledger, environ, clock=clock)
    assert auth.issuer.signing_key.key_id == signing_key.key_id
    with pytest.raises(SigningKeyUnavailable):
        AuthService.from_environment(ledger, {"TIANPING_SECRETS_KEY": os.urandom(32).hex()})
    with pytest.raises(SecretsKeyUnavailable):
        AuthService.from_environment(
            ledger, {"TIANPING_TOKEN_SIGNING_KEY": environ["TIANPING_TOKEN_SIGNING_KEY"]}
        )
    developing = AuthService.from_environment(ledger, {}, development_keys=True, clock=clock)
    developing.refresh_revocations()
    party = new_party(clock)
    developing.set_password(party, PASSWORD)
    session = developing.login(party, PASSWORD)
    assert developing.verify_access_token(session.access_token).subject == party
