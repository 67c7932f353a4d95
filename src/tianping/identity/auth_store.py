"""SQL for authentication on SQLite and PostgreSQL: the only module that knows the auth tables.

Statements are written once with `?` placeholders and translated to `%s` for psycopg; they
contain no other question marks. Every value travels as a bound parameter. The store works on
a connection the caller already holds inside a transaction (`uow.connection` of a ledger write,
or the connection of `ledger.read()`), so authentication rows commit atomically with whatever
else that transaction does.

Serialisation. Writes run under the ledger's write lock (`Ledger.write()` takes it first), so
read-then-update sequences here (a lockout counter, a refresh-token rotation) cannot interleave
with another writer's on either backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tianping.db.statements import QmarkStatements

__all__ = [
    "AuthStore",
    "ClientRow",
    "CredentialRow",
    "DeviceRow",
    "LockoutRow",
    "RefreshTokenRow",
    "SessionRow",
    "TotpRow",
]


@dataclass(frozen=True, slots=True)
class CredentialRow:
    party_id: str
    role: str
    password_hash: str

    def __repr__(self) -> str:
        return f"CredentialRow(party_id={self.party_id!r}, role={self.role!r})"


@dataclass(frozen=True, slots=True)
class TotpRow:
    party_id: str
    secret_sealed: bytes
    confirmed_at: int | None
    last_used_step: int | None

    def __repr__(self) -> str:
        return f"TotpRow(party_id={self.party_id!r}, confirmed={self.confirmed_at is not None})"


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    party_id: str
    label_sealed: bytes
    registered_at: int
    last_seen_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class LockoutRow:
    failed_count: int
    last_failed_at: int
    locked_until: int


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    subject: str
    subject_kind: str
    role: str
    scopes: str
    factors: str
    certificate: bool
    device_id: str | None
    created_at: int
    expires_at: int
    strength_raised_at: int | None
    revoked_at: int | None
    revoked_reason: str | None


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    session_id: str
    issued_at: int
    expires_at: int
    rotated_at: int | None


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    partner_party_id: str
    scopes: str
    secret_hash: bytes
    disabled_at: int | None


_SESSION_COLUMNS = (
    "session_id, subject, subject_kind, role, scopes, factors, certificate, device_id, "
    "created_at, expires_at, strength_raised_at, revoked_at, revoked_reason"
)
# The only text formatted into SQL in this module: the constant column list above.
_INSERT_SESSION = (
    f"INSERT INTO auth_sessions ({_SESSION_COLUMNS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_SESSION = f"SELECT {_SESSION_COLUMNS} FROM auth_sessions WHERE session_id = ?"  # noqa: S608


def _bytes(value: Any) -> bytes:
    # psycopg may hand back a memoryview for BYTEA; SQLite gives bytes.
    return bytes(value)


class AuthStore(QmarkStatements):
    """Authentication statements over one open connection."""

    def _one(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self._execute(sql, parameters).fetchone()

    # -- credentials ------------------------------------------------------------------------

    def credential(self, party_id: str) -> CredentialRow | None:
        row = self._one(
            "SELECT party_id, role, password_hash FROM auth_credentials WHERE party_id = ?",
            (party_id,),
        )
        return CredentialRow(row[0], row[1], row[2]) if row else None

    def credential_by_login_name(self, digests: Sequence[bytes]) -> CredentialRow | None:
        """The credential whose login-name digest is any of `digests` (one per secrets key)."""
        for digest in digests:
            row = self._one(
                "SELECT party_id, role, password_hash FROM auth_credentials "
                "WHERE login_name_digest = ?",
                (digest,),
            )
            if row:
                return CredentialRow(row[0], row[1], row[2])
        return None

    def put_credential(
        self,
        party_id: str,
        role: str,
        password_hash: str,
        login_name_digest: bytes | None,
        now: int,
    ) -> None:
        """Create or replace a party's credential. A None digest keeps the current login name."""
        updated = self._execute(
            "UPDATE auth_credentials SET role = ?, password_hash = ?, "
            "login_name_digest = COALESCE(?, login_name_digest), updated_at = ? "
            "WHERE party_id = ?",
            (role, password_hash, login_name_digest, now, party_id),
        ).rowcount
        if not updated:
            self._execute(
                "INSERT INTO auth_credentials (party_id, role, login_name_digest, "
                "password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (party_id, role, login_name_digest, password_hash, now, now),
            )

    def update_password_hash(self, party_id: str, password_hash: str, now: int) -> None:
        self._execute(
            "UPDATE auth_credentials SET password_hash = ?, updated_at = ? WHERE party_id = ?",
            (password_hash, now, party_id),
        )

    # -- TOTP -------------------------------------------------------------------------------

    def totp(self, party_id: str) -> TotpRow | None:
        row = self._one(
            "SELECT party_id, secret_sealed, confirmed_at, last_used_step FROM auth_totp "
            "WHERE party_id = ?",
            (party_id,),
        )
        return TotpRow(row[0], _bytes(row[1]), row[2], row[3]) if row else None

    def put_totp(self, party_id: str, secret_sealed: bytes, now: int) -> None:
        """Store a new, unconfirmed secret, replacing any earlier one."""
        updated = self._execute(
            "UPDATE auth_totp SET secret_sealed = ?, enrolled_at = ?, confirmed_at = NULL, "
            "last_used_step = NULL WHERE party_id = ?",
            (secret_sealed, now, party_id),
        ).rowcount
        if not updated:
            self._execute(
                "INSERT INTO auth_totp (party_id, secret_sealed, enrolled_at) VALUES (?, ?, ?)",
                (party_id, secret_sealed, now),
            )

    def use_totp_step(self, party_id: str, step: int, confirm_at: int | None = None) -> bool:
        """Record `step` as used, only if it is later than the last one; False if it is not.

        The condition is in the statement, so a code raced by two requests is accepted once.
        """
        return bool(
            self._execute(
                "UPDATE auth_totp SET last_used_step = ?, "
                "confirmed_at = COALESCE(confirmed_at, ?) "
                "WHERE party_id = ? AND (last_used_step IS NULL OR last_used_step < ?)",
                (step, confirm_at, party_id, step),
            ).rowcount
        )

    # -- devices ----------------------------------------------------------------------------

    def device(self, device_id: str) -> DeviceRow | None:
        row = self._one(
            "SELECT device_id, party_id, label_sealed, registered_at, last_seen_at, revoked_at "
            "FROM auth_devices WHERE device_id = ?",
            (device_id,),
        )
        if not row:
            return None
        return DeviceRow(row[0], row[1], _bytes(row[2]), row[3], row[4], row[5])

    def count_devices(self, party_id: str) -> int:
        row = self._one("SELECT COUNT(*) FROM auth_devices WHERE party_id = ?", (party_id,))
        return int(row[0])

    def insert_device(self, device_id: str, party_id: str, label_sealed: bytes, now: int) -> None:
        self._execute(
            "INSERT INTO auth_devices (device_id, party_id, label_sealed, registered_at) "
            "VALUES (?, ?, ?, ?)",
            (device_id, party_id, label_sealed, now),
        )

    def touch_device(self, device_id: str, now: int) -> None:
        self._execute(
            "UPDATE auth_devices SET last_seen_at = ? WHERE device_id = ?", (now, device_id)
        )

    # -- lockouts ---------------------------------------------------------------------------

    def lockout(self, subject_key: bytes) -> LockoutRow | None:
        row = self._one(
            "SELECT failed_count, last_failed_at, locked_until FROM auth_lockouts "
            "WHERE subject_key = ?",
            (subject_key,),
        )
        return LockoutRow(row[0], row[1], row[2]) if row else None

    def put_lockout(self, subject_key: bytes, state: LockoutRow) -> None:
        updated = self._execute(
            "UPDATE auth_lockouts SET failed_count = ?, last_failed_at = ?, locked_until = ? "
            "WHERE subject_key = ?",
            (state.failed_count, state.last_failed_at, state.locked_until, subject_key),
        ).rowcount
        if not updated:
            self._execute(
                "INSERT INTO auth_lockouts (subject_key, failed_count, last_failed_at, "
                "locked_until) VALUES (?, ?, ?, ?)",
                (subject_key, state.failed_count, state.last_failed_at, state.locked_until),
            )

    def clear_lockout(self, subject_key: bytes) -> None:
        self._execute("DELETE FROM auth_lockouts WHERE subject_key = ?", (subject_key,))

    def prune_lockouts(self, failed_before: int, now: int) -> int:
        """Delete lockout rows whose failures are forgotten and whose lock has ended."""
        return int(
            self._execute(
                "DELETE FROM auth_lockouts WHERE last_failed_at < ? AND locked_until <= ?",
                (failed_before, now),
            ).rowcount
        )

    # -- sessions ---------------------------------------------------------------------------

    def insert_session(self, session: SessionRow) -> None:
        self._execute(
            _INSERT_SESSION,
            (
                session.session_id,
                session.subject,
                session.subject_kind,
                session.role,
                session.scopes,
                session.factors,
                int(session.certificate),
                session.device_id,
                session.created_at,
                session.expires_at,
                session.strength_raised_at,
                session.revoked_at,
                session.revoked_reason,
            ),
        )

    def session(self, session_id: str) -> SessionRow | None:
        row = self._one(_SELECT_SESSION, (session_id,))
        if not row:
            return None
        return SessionRow(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            bool(row[6]),
            row[7],
            row[8],
            row[9],
            row[10],
            row[11],
            row[12],
        )

    def raise_session_strength(self, session_id: str, factors: str, now: int) -> None:
        self._execute(
            "UPDATE auth_sessions SET factors = ?, strength_raised_at = ? WHERE session_id = ?",
            (factors, now, session_id),
        )

    def revoke_session(self, session_id: str, now: int, reason: str) -> bool:
        """Revoke a session; False when it does not exist or was already revoked."""
        return bool(
            self._execute(
                "UPDATE auth_sessions SET revoked_at = ?, revoked_reason = ? "
                "WHERE session_id = ? AND revoked_at IS NULL",
                (now, reason, session_id),
            ).rowcount
        )

    def revoked_since(self, since: int) -> dict[str, int]:
        """Sessions revoked at or after `since`, with when (served by a partial index)."""
        rows = self._execute(
            "SELECT session_id, revoked_at FROM auth_sessions "
            "WHERE revoked_at IS NOT NULL AND revoked_at >= ?",
            (since,),
        ).fetchall()
        return {row[0]: row[1] for row in rows}

    # -- refresh tokens ---------------------------------------------------------------------

    def insert_refresh_token(
        self, token_hash: bytes, session_id: str, issued_at: int, expires_at: int
    ) -> None:
        self._execute(
            "INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (token_hash, session_id, issued_at, expires_at),
        )

    def refresh_token(self, token_hash: bytes) -> RefreshTokenRow | None:
        row = self._one(
            "SELECT session_id, issued_at, expires_at, rotated_at FROM auth_refresh_tokens "
            "WHERE token_hash = ?",
            (token_hash,),
        )
        return RefreshTokenRow(row[0], row[1], row[2], row[3]) if row else None

    def rotate_refresh_token(self, token_hash: bytes, now: int) -> bool:
        """Mark a refresh token used; False if it already was (the caller then has a reuse)."""
        return bool(
            self._execute(
                "UPDATE auth_refresh_tokens SET rotated_at = ? "
                "WHERE token_hash = ? AND rotated_at IS NULL",
                (now, token_hash),
            ).rowcount
        )

    # -- machine clients --------------------------------------------------------------------

    def client(self, client_id: str) -> ClientRow | None:
        row = self._one(
            "SELECT client_id, partner_party_id, scopes, secret_hash, disabled_at "
            "FROM auth_machine_clients WHERE client_id = ?",
            (client_id,),
        )
        return ClientRow(row[0], row[1], row[2], _bytes(row[3]), row[4]) if row else None

    def insert_client(
        self, client_id: str, partner_party_id: str, scopes: str, secret_hash: bytes, now: int
    ) -> None:
        self._execute(
            "INSERT INTO auth_machine_clients (client_id, partner_party_id, scopes, "
            "secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (client_id, partner_party_id, scopes, secret_hash, now),
        )

    def replace_client_secret(self, client_id: str, secret_hash: bytes, now: int) -> bool:
        return bool(
            self._execute(
                "UPDATE auth_machine_clients SET secret_hash = ?, secret_rotated_at = ? "
                "WHERE client_id = ?",
                (secret_hash, now, client_id),
            ).rowcount
        )

    # -- events -----------------------------------------------------------------------------

    def insert_event(
        self,
        timestamp: int,
        kind: str,
        subject: str | None,
        session_id: str | None = None,
        code: str | None = None,
    ) -> None:
        self._execute(
            "INSERT INTO auth_events (timestamp, kind, subject, session_id, code) "
            "VALUES (?, ?, ?, ?, ?)",
            (timestamp, kind, subject, session_id, code),
        )

    def events(self, subject: str | None = None, limit: int = 100) -> list[tuple[Any, ...]]:
        """Recent events (kind, subject, session id, code), newest first; for audits and tests."""
        limit = max(1, min(limit, 1000))
        if subject is None:
            rows = self._execute(
                "SELECT timestamp, kind, subject, session_id, code FROM auth_events "
                "ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        else:
            rows = self._execute(
                "SELECT timestamp, kind, subject, session_id, code FROM auth_events "
                "WHERE subject = ? ORDER BY seq DESC LIMIT ?",
                (subject, limit),
            ).fetchall()
        return [tuple(row) for row in rows]
