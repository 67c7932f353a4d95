"""Time-based one-time passwords (RFC 6238) and the sealing of authentication secrets at rest.

TOTP. Codes are RFC 6238 with the parameters every authenticator app supports: HMAC-SHA1, a
30-second step, 6 digits, computed by pyotp. A code is accepted for the current step and one
step either side (±30 s), which absorbs a phone clock that is a little off and a code typed just
as it changed; wider windows only help guessing. RFC 6238 section 5.2 requires that a code
accepted once is not accepted again: the caller stores the last step it accepted for the party,
and `match_step` accepts only later steps, so a code cannot be replayed within its window (nor
can an earlier code be used after a later one). Secrets are 20 random bytes from `secrets` (160
bits, the HMAC-SHA1 key length RFC 4226 section 4 recommends), written in base32.

Sealing. A TOTP secret is a credential (a verifier can compute every future code from it), so it
is encrypted at rest: AES-256-GCM under a key from `TIANPING_SECRETS_KEY` (32 bytes, base64 or
hex), with associated data naming what the ciphertext is and whose it is, so a sealed secret
copied into another party's row does not open. The same key, through HKDF with another label,
keys the HMAC that indexes login names, so a login name (often a phone number) is never stored
in clear. Sealed values start with a version byte and the key's id; `TIANPING_SECRETS_KEY_PREVIOUS`
(comma-separated) lists retired keys that can still open and index old values while they are
re-sealed. This is a deliberately small helper for authentication secrets; personal data lives
in the personal-data vault, which has its own keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Final

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tianping.identity.tokens import AuthError

__all__ = [
    "DIGITS",
    "ISSUER_NAME",
    "SECRETS_KEY_ENV_VAR",
    "SECRETS_KEY_PREVIOUS_ENV_VAR",
    "SECRET_BYTES",
    "STEP_SECONDS",
    "WINDOW_STEPS",
    "SecretBox",
    "SecretUnreadable",
    "SecretsKeyUnavailable",
    "code_at",
    "current_step",
    "match_step",
    "new_secret",
    "provisioning_uri",
]

_NS = 1_000_000_000
STEP_SECONDS: Final = 30
DIGITS: Final = 6
WINDOW_STEPS: Final = 1
SECRET_BYTES: Final = 20
ISSUER_NAME: Final = "Tianping"
_SECRET_TEXT = re.compile(r"[A-Z2-7]{16,128}={0,6}")
_ALGORITHMS: Final = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}

SECRETS_KEY_ENV_VAR: Final = "TIANPING_SECRETS_KEY"
SECRETS_KEY_PREVIOUS_ENV_VAR: Final = "TIANPING_SECRETS_KEY_PREVIOUS"
_SEAL_VERSION: Final = 1
_KEY_ID_LENGTH: Final = 8
_NONCE_LENGTH: Final = 12
SEALED_LENGTH_MAX: Final = 1024
_PREVIOUS_KEYS_MAX: Final = 8


class SecretsKeyUnavailable(AuthError):
    """`TIANPING_SECRETS_KEY` is missing or malformed. The message never quotes the key."""

    code = "secrets_key_unavailable"


class SecretUnreadable(AuthError):
    """A sealed secret does not open: another key, another owner, or tampered with."""

    code = "secret_unreadable"


# ------------------------------------------------------------------------------------- TOTP


def new_secret() -> str:
    """A fresh TOTP secret: 160 random bits in base32 (32 characters, no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _checked_secret(secret: str) -> str:
    if not isinstance(secret, str) or _SECRET_TEXT.fullmatch(secret) is None:
        raise ValueError("a TOTP secret is 16 to 128 base32 characters")
    return secret


def code_at(
    secret: str,
    unix_seconds: int,
    *,
    digits: int = DIGITS,
    algorithm: str = "sha1",
    step_seconds: int = STEP_SECONDS,
) -> str:
    """The code for `unix_seconds`. Production uses the defaults; the others serve RFC vectors."""
    totp = pyotp.TOTP(
        _checked_secret(secret),
        digits=digits,
        digest=_ALGORITHMS[algorithm],
        interval=step_seconds,
    )
    return totp.at(unix_seconds)


def current_step(now_ns: int) -> int:
    """The RFC 6238 time step `T` at `now_ns`: whole 30-second steps since the epoch."""
    return now_ns // _NS // STEP_SECONDS


def match_step(secret: str, code: str, now_ns: int, last_used_step: int | None) -> int | None:
    """The time step whose code `code` is, within ±1 step of now and after `last_used_step`.

    Returns None when it matches none. Every candidate step is computed and compared in
    constant time, so the time taken does not say which step (if any) matched.
    """
    if not isinstance(code, str) or len(code) != DIGITS or not code.isascii():
        return None
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(_checked_secret(secret), digits=DIGITS, interval=STEP_SECONDS)
    now_step = current_step(now_ns)
    floor = -1 if last_used_step is None else last_used_step
    matched: int | None = None
    for step in range(now_step - WINDOW_STEPS, now_step + WINDOW_STEPS + 1):
        candidate = totp.at(step * STEP_SECONDS)
        equal = hmac.compare_digest(candidate.encode("ascii"), code.encode("ascii"))
        if equal and step > floor and matched is None:
            matched = step
    return matched


def provisioning_uri(secret: str, account_name: str, issuer: str = ISSUER_NAME) -> str:
    """The `otpauth://` URI an authenticator app scans as a QR code (Key Uri Format)."""
    if not 1 <= len(account_name) <= 64 or not account_name.isprintable():
        raise ValueError("an account name for the authenticator app is 1 to 64 characters")
    return pyotp.TOTP(
        _checked_secret(secret), digits=DIGITS, interval=STEP_SECONDS
    ).provisioning_uri(name=account_name, issuer_name=issuer)


# ------------------------------------------------------------------------------------ sealing


def _parse_key(text: str) -> bytes:
    text = text.strip()
    key: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        key = bytes.fromhex(text)
    else:
        try:
            key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise SecretsKeyUnavailable(
            f"{SECRETS_KEY_ENV_VAR} must be 32 bytes written as base64 or 64 hex characters"
        )
    return key


def _derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(key)


class _Key:
    __slots__ = ("aead", "index_key", "key_id")

    def __init__(self, key: bytes) -> None:
        self.key_id = hashlib.sha256(b"tianping.auth.key-id\x00" + key).digest()[:_KEY_ID_LENGTH]
        self.aead = AESGCM(_derive(key, b"tianping.auth.seal.v1"))
        self.index_key = _derive(key, b"tianping.auth.index.v1")


class SecretBox:
    """AES-256-GCM sealing of small secrets and keyed digests for indexes; see the docstring."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        if len(key) != 32 or any(len(old) != 32 for old in previous):
            raise SecretsKeyUnavailable("a secrets key is exactly 32 bytes")
        if len(previous) > _PREVIOUS_KEYS_MAX:
            raise SecretsKeyUnavailable(f"at most {_PREVIOUS_KEYS_MAX} previous secrets keys")
        self._primary = _Key(key)
        self._keys = [self._primary, *(_Key(old) for old in previous)]
        self._by_id = {entry.key_id: entry for entry in reversed(self._keys)}

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] = os.environ, *, generate_development_key: bool = False
    ) -> SecretBox:
        """The box for `TIANPING_SECRETS_KEY` (and retired keys); a random key only on request.

        A generated key lives only in this process: secrets sealed under it cannot be opened
        after a restart, which is acceptable on a developer's machine and nowhere else.
        """
        value = environ.get(SECRETS_KEY_ENV_VAR)
        if value is None:
            if generate_development_key:
                return cls(secrets.token_bytes(32))
            raise SecretsKeyUnavailable(
                f"no secrets key: set {SECRETS_KEY_ENV_VAR} to 32 random bytes in base64"
            )
        previous_text = environ.get(SECRETS_KEY_PREVIOUS_ENV_VAR, "")
        previous = [_parse_key(part) for part in previous_text.split(",") if part.strip()]
        return cls(_parse_key(value), previous)

    def seal(self, context: bytes, plaintext: bytes) -> bytes:
        """Encrypt `plaintext` bound to `context` (what it is and whose it is)."""
        nonce = secrets.token_bytes(_NONCE_LENGTH)
        header = bytes([_SEAL_VERSION]) + self._primary.key_id
        return header + nonce + self._primary.aead.encrypt(nonce, plaintext, header + context)

    def open(self, context: bytes, sealed: bytes) -> bytes:
        """Decrypt a value sealed for `context`; `SecretUnreadable` if it does not open."""
        sealed = bytes(sealed)
        header_length = 1 + _KEY_ID_LENGTH
        if (
            len(sealed) < header_length + _NONCE_LENGTH + 16
            or len(sealed) > SEALED_LENGTH_MAX
            or sealed[0] != _SEAL_VERSION
        ):
            raise SecretUnreadable("a sealed secret is malformed")
        entry = self._by_id.get(sealed[1:header_length])
        if entry is None:
            raise SecretUnreadable("a sealed secret was sealed under a key no longer configured")
        nonce = sealed[header_length : header_length + _NONCE_LENGTH]
        try:
            return entry.aead.decrypt(
                nonce, sealed[header_length + _NONCE_LENGTH :], sealed[:header_length] + context
            )
        except InvalidTag:
            raise SecretUnreadable("a sealed secret does not open under its key") from None

    def needs_reseal(self, sealed: bytes) -> bool:
        """Whether a sealed value was made under a retired key and should be sealed again."""
        return bytes(sealed[1 : 1 + _KEY_ID_LENGTH]) != self._primary.key_id

    def index_digests(self, context: bytes, value: str) -> list[bytes]:
        """Keyed digests of `value` under every configured key, the current key's first.

        Store the first; look up with all of them, so values indexed under a retired key are
        still found until they are indexed again.
        """
        message = context + b"\x00" + value.encode("utf-8")
        return [hmac.new(entry.index_key, message, hashlib.sha256).digest() for entry in self._keys]
