"""Short-lived signed bearer access tokens, their verification, revocation and scope checks.

Access tokens are JWTs (RFC 7519, profile of RFC 9068) signed by PyJWT with `cryptography` keys.
The default algorithm is RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 section 3.3) with a
2048-bit RSA key and public exponent 65537; EdDSA (Ed25519, RFC 8037) stays available and is
chosen by the key's type (an Ed25519 PEM key in `TIANPING_TOKEN_SIGNING_KEY`, or
`SigningKey.generate("EdDSA")`). RS256 is the default because of the verification target (issue 3:
20,000 verifications per second on one core): with e = 65537 an RSA-2048 signature check is one
modular exponentiation by a 17-bit exponent, about 20 microseconds in OpenSSL on the reference
machine, against about 105 for Ed25519. Signing is the expensive side for RSA (about 0.25 ms),
and a token is signed once per login or refresh but verified on every request. The usual RSA
pitfalls are closed here: the verifier accepts only the algorithm bound to the key id (so `none`
and HS256-keyed-with-the-public-key tokens cannot verify), only PKCS#1 v1.5 with SHA-256, only keys
of at least 2048 bits with exponent 65537, and only signatures of exactly the key's length.
A token carries:

    iss, aud      "tianping" and "tianping-api": a token made for another system is refused
    sub           the party id, or the machine client id for partner institutions
    role          customer, merchant, operator, partner, supervisor or auditor
    scope         the granted scopes, space-separated (RFC 8693 section 4.2)
    factors       the authentication factors the session used, e.g. ["password", "totp"]
    cert          whether a digital certificate or e-signature was verified for the session
    sid           the session id: revoking a session makes every one of its tokens fail
    iat, exp      issue and expiry times in seconds; an access token lives 15 minutes
    jti           a random token id, unique per token

Verification (`AccessTokenVerifier.verify_access_token`) does no I/O. It checks the token's
shape, that its header is exactly ours (type `at+jwt`, a known key id, and that key's own
algorithm), the signature with a public-key object built once, then the claims, the clock-skew
bound and the in-memory revocation set. PyJWT's own decoder is not used on this hot path because
it spends about 35 microseconds of Python per token on this machine (a per-character alphabet
check in its base64 decoding); the narrow verifier below accepts only the headers we issue, which
also makes `alg: none` and algorithm-confusion tokens impossible by construction.

An RS256 signature check costs about 20 microseconds on the reference machine (OpenSSL, one
core), an Ed25519 one about 105 (so at most about 9,500 distinct EdDSA tokens per second). A
client sends the same access token with every request for up to 15 minutes, so the verifier
remembers tokens whose signature it has already checked (a bounded cache keyed by the exact token
text) and re-checks only their expiry and revocation; see `AccessTokenVerifier` for why that is
sound.

Revocation. Tokens are revoked by session. Each process keeps a `RevocationSet` of session ids
revoked within the last access-token lifetime plus the skew bound (older revocations cannot
matter: every token of those sessions has expired), refreshed from the database by the service
(`AuthService.refresh_revocations`, every `REVOCATION_REFRESH_INTERVAL_NS`). Revocations made in
this process take effect at once; revocations made by another process take effect here within
one refresh interval plus the refresh query's own duration. Staleness bound: when the set has
not been refreshed for `REVOCATION_STALENESS_MAX_NS` (the database is unreachable, or no refresher
runs), every verification fails closed with `revocation_state_stale` rather than accept tokens
that might have been revoked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import (
    RSAPrivateKey,
    RSAPublicKey,
    generate_private_key,
)

from tianping.identity.errors import IdentityError

__all__ = [
    "ACCESS_TOKEN_LIFETIME_NS",
    "ALGORITHMS",
    "AUDIENCE",
    "CLOCK_SKEW_NS",
    "DEFAULT_ALGORITHM",
    "FACTORS",
    "ISSUER",
    "REVOCATION_REFRESH_INTERVAL_NS",
    "REVOCATION_STALENESS_MAX_NS",
    "REVOCATION_WINDOW_NS",
    "ROLES",
    "RSA_KEY_BITS",
    "SIGNING_KEY_ENV_VAR",
    "AccessClaims",
    "AccessTokenVerifier",
    "AuthError",
    "InsufficientScope",
    "IssuedAccessToken",
    "RevocationSet",
    "RevocationStateStale",
    "SigningKey",
    "SigningKeyUnavailable",
    "TokenExpired",
    "TokenInvalid",
    "TokenIssuer",
    "TokenNotYetValid",
    "TokenRevoked",
    "algorithm_of",
    "load_signing_key",
    "require_scope",
    "validate_scopes",
]

_NS = 1_000_000_000

ISSUER: Final = "tianping"
AUDIENCE: Final = "tianping-api"
# RFC 9068's media type for JWT access tokens: a token of another type (an ID token, say) made
# with the same key is not an access token and is refused.
TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
SIGNING_KEY_ENV_VAR: Final = "TIANPING_TOKEN_SIGNING_KEY"
# The JWS algorithms a key can sign with; the key's type decides which one it uses.
ALGORITHMS: Final = ("RS256", "EdDSA")
DEFAULT_ALGORITHM: Final = "RS256"
# Generated RSA keys: 2048 bits (NIST SP 800-57 acceptable through 2030) and e = 65537, the only
# exponent accepted from a PEM key too (small exponents invite signature forgery bugs, large ones
# make verification slow). Loaded keys may be longer than 2048 bits, never shorter.
RSA_KEY_BITS: Final = 2048
RSA_PUBLIC_EXPONENT: Final = 65537

# Short enough that a stolen access token is useful only briefly and that the revocation set
# stays small, long enough that a client refreshes at most four times an hour.
ACCESS_TOKEN_LIFETIME_NS: Final = 15 * 60 * _NS
# Servers run NTP and agree to milliseconds, but a virtual machine resumed from suspension can be
# seconds off until its next sync. 30 s is 3% of a token's life: a token is accepted at most 30 s
# before its `iat` or after its `exp`, and never outside that.
CLOCK_SKEW_NS: Final = 30 * _NS
# Revocations older than this cannot affect any token still accepted, so they are not kept.
REVOCATION_WINDOW_NS: Final = ACCESS_TOKEN_LIFETIME_NS + CLOCK_SKEW_NS
REVOCATION_REFRESH_INTERVAL_NS: Final = 5 * _NS
REVOCATION_STALENESS_MAX_NS: Final = 30 * _NS

ROLES: Final = ("customer", "merchant", "operator", "partner", "supervisor", "auditor")
# Factors a session can record. `client_secret` is a machine client's credential.
FACTORS: Final = ("password", "totp", "client_secret")

SCOPES_PER_TOKEN_MAX: Final = 64
_SCOPE = re.compile(r"[a-z][a-z0-9_-]{0,31}(?::[a-z0-9_-]{1,31}){0,3}")
_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Three base64url segments, the last a signature: Ed25519's 64 bytes are 86 characters, an
# RSA-2048 signature's 256 bytes are 342, RSA-4096's 512 bytes are 683; the key named in the
# header fixes the exact length. Tokens longer than this bound are refused before any decoding,
# so a huge header cannot cost much.
_TOKEN_LENGTH_MAX: Final = 4096
_RSA_KEY_BITS_MAX: Final = 4096
_TOKEN_SHAPE = re.compile(
    r"([A-Za-z0-9_-]{1,512})\.([A-Za-z0-9_-]{1,3000})\.([A-Za-z0-9_-]{86,683})"
)
_HEADER_KEYS: Final = frozenset({"alg", "kid", "typ"})
_CLAIM_KEYS: Final = frozenset(
    {"iss", "aud", "sub", "role", "scope", "factors", "cert", "sid", "iat", "exp", "jti"}
)
# Distinct header encodings remembered per verifier. Every key has one canonical header; the
# bound only stops an attacker who sends valid headers with varying JSON whitespace from growing
# the map.
_HEADERS_REMEMBERED_MAX: Final = 64
# Verified tokens remembered per verifier. An entry holds the token text (about 500 bytes) and
# its claims (about 600 bytes), so the default bounds the cache to roughly 20 MB.
VERIFIED_CACHE_SIZE: Final = 16_384


class AuthError(IdentityError):
    """Root of the authentication errors. `code` is stable; messages carry no personal data."""

    code = "auth_error"


class TokenInvalid(AuthError):
    """The bearer token is malformed, not ours, or its signature or claims do not check."""

    code = "token_invalid"


class TokenExpired(TokenInvalid):
    code = "token_expired"


class TokenNotYetValid(TokenInvalid):
    """The token's issue time lies further in the future than the clock-skew bound allows."""

    code = "token_not_yet_valid"


class TokenRevoked(TokenInvalid):
    code = "token_revoked"


class RevocationStateStale(TokenInvalid):
    """The revocation set has not been refreshed within its staleness bound: fail closed."""

    code = "revocation_state_stale"


class InsufficientScope(AuthError):
    code = "insufficient_scope"


class SigningKeyUnavailable(AuthError):
    """No signing key is configured, or the configured one is not an acceptable private key."""

    code = "signing_key_unavailable"


_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST: Final = {
    2: frozenset(_B64URL_ALPHABET[::16]),
    3: frozenset(_B64URL_ALPHABET[::4]),
}


def _b64url_decode(segment: str) -> bytes:
    """Decode one unpadded base64url segment, refusing a non-canonical encoding.

    The caller has already matched the segment against the base64url alphabet. Canonical form
    matters because the last character of a segment can carry unused bits: two spellings of one
    signature would otherwise both verify.
    """
    remainder = len(segment) % 4
    # A segment of 4n + 2 characters ends in a character carrying 4 unused bits, one of 4n + 3
    # characters in one carrying 2; canonical form has them zero. 4n + 1 is never valid. This
    # is the same test as re-encoding and comparing, at a fraction of the cost.
    if remainder == 1 or (remainder > 1 and segment[-1] not in _CANONICAL_LAST[remainder]):
        raise TokenInvalid("the token is not in canonical base64url form")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-remainder % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("the token is not valid base64url") from None


def validate_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Check scope names (`area:action`, lower case, bounded) and return them as a set."""
    result = frozenset(scopes)
    if len(result) > SCOPES_PER_TOKEN_MAX:
        raise TokenInvalid(f"a token carries at most {SCOPES_PER_TOKEN_MAX} scopes")
    for scope in result:
        if not isinstance(scope, str) or _SCOPE.fullmatch(scope) is None:
            raise TokenInvalid("a scope is lower-case `area:action` of at most 128 characters")
    return result


# --------------------------------------------------------------------------------------- keys


PrivateKey = RSAPrivateKey | Ed25519PrivateKey
PublicKey = RSAPublicKey | Ed25519PublicKey


def _check_rsa_key(key: RSAPublicKey) -> None:
    if not RSA_KEY_BITS <= key.key_size <= _RSA_KEY_BITS_MAX:
        raise SigningKeyUnavailable(
            f"an RSA token key has between {RSA_KEY_BITS} and {_RSA_KEY_BITS_MAX} bits"
        )
    if key.public_numbers().e != RSA_PUBLIC_EXPONENT:
        raise SigningKeyUnavailable("an RSA token key must have public exponent 65537")


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    """The JWS algorithm a key signs or verifies with: its type decides, never the token."""
    if isinstance(key, RSAPrivateKey | RSAPublicKey):
        return "RS256"
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return "EdDSA"
    raise SigningKeyUnavailable("a token key must be an RSA or an Ed25519 key")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A token signing key (RSA for RS256, or Ed25519 for EdDSA) with its key id (`kid`).

    The key id is a digest of the public key, so it cannot drift from the key.
    """

    private_key: PrivateKey
    key_id: str

    @classmethod
    def from_private_key(cls, private_key: PrivateKey) -> SigningKey:
        public = private_key.public_key()
        if isinstance(public, RSAPublicKey):
            _check_rsa_key(public)
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        elif isinstance(public, Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raise SigningKeyUnavailable("a token key must be an RSA or an Ed25519 key")
        # 16 hex characters (64 bits) cannot collide between the handful of keys a rotation keeps.
        return cls(private_key, hashlib.sha256(raw).hexdigest()[:16])

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Read a PKCS#8 (or PKCS#1) PEM private key: RSA (`openssl genpkey -algorithm rsa
        -pkeyopt rsa_keygen_bits:2048`) for RS256 or Ed25519 (`-algorithm ed25519`) for EdDSA."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            # The exception text could quote the key material; it is not passed on.
            raise SigningKeyUnavailable("the token signing key is not a readable PEM key") from None
        if not isinstance(key, RSAPrivateKey | Ed25519PrivateKey):
            raise SigningKeyUnavailable(
                "the token signing key must be an RSA (RS256) or Ed25519 (EdDSA) private key"
            )
        return cls.from_private_key(key)

    @classmethod
    def generate(cls, algorithm: str = DEFAULT_ALGORITHM) -> SigningKey:
        """A fresh random key: for development and tests, never loaded implicitly."""
        if algorithm == "RS256":
            return cls.from_private_key(
                generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
            )
        if algorithm == "EdDSA":
            return cls.from_private_key(Ed25519PrivateKey.generate())
        raise ValueError(f"the token algorithm is one of {', '.join(ALGORITHMS)}")

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.private_key)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        # The dataclass repr would print the key object; only the public key id is shown.
        return f"SigningKey(algorithm={self.algorithm!r}, key_id={self.key_id!r})"


def load_signing_key(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] = os.environ,
    *,
    generate_development_key: bool = False,
) -> SigningKey:
    """The token signing key: from `path`, else from the PEM in `TIANPING_TOKEN_SIGNING_KEY`.

    With neither, a random key is generated only when `generate_development_key` is set
    explicitly: tokens signed with it stop verifying when the process ends, which is right for a
    developer's machine and wrong anywhere else, so it is never the silent default.
    """
    if path is not None:
        try:
            pem = Path(path).read_bytes()
        except OSError:
            raise SigningKeyUnavailable("the token signing key file cannot be read") from None
        return SigningKey.from_pem(pem)
    value = environ.get(SIGNING_KEY_ENV_VAR)
    if value is not None:
        if not value.strip():
            raise SigningKeyUnavailable(f"{SIGNING_KEY_ENV_VAR} is set but empty")
        return SigningKey.from_pem(value.encode("ascii", "replace"))
    if generate_development_key:
        return SigningKey.generate()
    raise SigningKeyUnavailable(
        f"no token signing key: set {SIGNING_KEY_ENV_VAR} to an RSA (or Ed25519) PEM private key"
    )


# ------------------------------------------------------------------------------------- claims


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified content of an access token. Times are seconds since the epoch."""

    subject: str
    role: str
    scopes: frozenset[str]
    factors: tuple[str, ...]
    certificate: bool
    session_id: str
    issued_at: int
    expires_at: int
    token_id: str

    def payload(self) -> dict[str, Any]:
        return {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": self.subject,
            "role": self.role,
            "scope": " ".join(sorted(self.scopes)),
            "factors": list(self.factors),
            "cert": self.certificate,
            "sid": self.session_id,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.token_id,
        }


def _claims_from_payload(payload: Any) -> AccessClaims:
    """Check a decoded payload field by field; anything unexpected makes the token invalid."""
    if not isinstance(payload, dict) or payload.keys() != _CLAIM_KEYS:
        raise TokenInvalid("the token's claims are not an access token's")
    if payload["iss"] != ISSUER or payload["aud"] != AUDIENCE:
        raise TokenInvalid("the token was issued by or for another system")
    subject, role, scope = payload["sub"], payload["role"], payload["scope"]
    factors, certificate, session_id = payload["factors"], payload["cert"], payload["sid"]
    issued_at, expires_at, token_id = payload["iat"], payload["exp"], payload["jti"]
    if not isinstance(subject, str) or _SUBJECT.fullmatch(subject) is None:
        raise TokenInvalid("the token's subject is malformed")
    if role not in ROLES:
        raise TokenInvalid("the token's role is unknown")
    if not isinstance(scope, str) or len(scope) > 8192:
        raise TokenInvalid("the token's scope is malformed")
    if (
        not isinstance(factors, list)
        or any(factor not in FACTORS for factor in factors)
        or len(set(factors)) != len(factors)
    ):
        raise TokenInvalid("the token's factors are malformed")
    if type(certificate) is not bool:
        raise TokenInvalid("the token's certificate flag is malformed")
    if not isinstance(session_id, str) or _SESSION_ID.fullmatch(session_id) is None:
        raise TokenInvalid("the token's session id is malformed")
    if type(issued_at) is not int or type(expires_at) is not int:
        raise TokenInvalid("the token's times are malformed")
    if not 0 < expires_at - issued_at <= ACCESS_TOKEN_LIFETIME_NS // _NS:
        raise TokenInvalid("the token's lifetime is longer than an access token's")
    if not isinstance(token_id, str) or not 16 <= len(token_id) <= 64:
        raise TokenInvalid("the token's id is malformed")
    scopes = validate_scopes(scope.split(" ")) if scope else frozenset()
    return AccessClaims(
        subject,
        role,
        scopes,
        tuple(factors),
        certificate,
        session_id,
        issued_at,
        expires_at,
        token_id,
    )


def require_scope(claims: AccessClaims, scope: str) -> None:
    """Refuse with `InsufficientScope` unless the token grants `scope`."""
    if scope not in claims.scopes:
        raise InsufficientScope("the token does not grant the scope this operation needs")


# ----------------------------------------------------------------------------------- issuing


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    claims: AccessClaims

    @property
    def expires_at_ns(self) -> int:
        return self.claims.expires_at * _NS

    def __repr__(self) -> str:
        # A bearer token is a credential: it never appears in a repr, and so never in a log.
        return f"IssuedAccessToken(session_id={self.claims.session_id!r}, token=<hidden>)"


class TokenIssuer:
    """Signs access tokens with one key. Thread-safe (it holds no mutable state)."""

    def __init__(
        self, signing_key: SigningKey, lifetime_ns: int = ACCESS_TOKEN_LIFETIME_NS
    ) -> None:
        if not _NS <= lifetime_ns <= ACCESS_TOKEN_LIFETIME_NS:
            raise ValueError("an access token lives between 1 s and 15 minutes")
        self.signing_key = signing_key
        self.lifetime_ns = lifetime_ns
        self._algorithm = signing_key.algorithm
        self._headers = {"kid": signing_key.key_id, "typ": TOKEN_TYPE}

    def issue(
        self,
        *,
        subject: str,
        role: str,
        scopes: Iterable[str],
        factors: Iterable[str],
        certificate: bool,
        session_id: str,
        now_ns: int,
        not_after_ns: int | None = None,
    ) -> IssuedAccessToken:
        """Sign an access token; `not_after_ns` caps its expiry (at its session's end, say)."""
        issued_at = now_ns // _NS
        expires_at = (now_ns + self.lifetime_ns) // _NS
        if not_after_ns is not None:
            expires_at = min(expires_at, not_after_ns // _NS)
        if expires_at <= issued_at:
            raise TokenInvalid("the session ends before a token could be used")
        claims = AccessClaims(
            subject=subject,
            role=role,
            scopes=validate_scopes(scopes),
            factors=tuple(factors),
            certificate=certificate,
            session_id=session_id,
            issued_at=issued_at,
            expires_at=expires_at,
            token_id=secrets.token_urlsafe(16),
        )
        payload = claims.payload()
        # Round-trip through the verifier's own checks so that an issuer bug (an unknown role, a
        # malformed subject) fails here, loudly, instead of minting tokens nobody accepts.
        _claims_from_payload(payload)
        token = jwt.encode(
            payload, self.signing_key.private_key, algorithm=self._algorithm, headers=self._headers
        )
        return IssuedAccessToken(token, claims)


# -------------------------------------------------------------------------------- revocation


class RevocationSet:
    """Session ids revoked recently, refreshed from the database; see the module docstring.

    `sessions` maps a session id to the time it was revoked. Reads are lock-free (a dict lookup
    is atomic under the GIL); `add` and `replace` take a lock so that a refresh never drops a
    revocation this process made while the refresh query ran.
    """

    def __init__(self, staleness_max_ns: int | None = REVOCATION_STALENESS_MAX_NS) -> None:
        self.staleness_max_ns = staleness_max_ns
        self._revoked: dict[str, int] = {}
        self._refreshed_at: int | None = None
        self._lock = threading.Lock()

    @property
    def refreshed_at(self) -> int | None:
        return self._refreshed_at

    def __len__(self) -> int:
        return len(self._revoked)

    def add(self, session_id: str, revoked_at: int) -> None:
        """Record a revocation made in this process: effective immediately here."""
        with self._lock:
            self._revoked[session_id] = revoked_at

    def replace(self, revoked: Mapping[str, int], as_of: int) -> None:
        """Install the database's view of recent revocations, read by a query begun at `as_of`.

        Local revocations made at or after `as_of` may be missing from that view, so they are
        kept; everything older is in the view if it still matters.
        """
        with self._lock:
            merged = dict(revoked)
            for session_id, revoked_at in self._revoked.items():
                if revoked_at >= as_of:
                    merged.setdefault(session_id, revoked_at)
            self._revoked = merged
            if self._refreshed_at is None or as_of > self._refreshed_at:
                self._refreshed_at = as_of

    def check(self, session_id: str, now_ns: int) -> None:
        """Refuse a revoked session, or every session if the set is too stale to trust."""
        if self.staleness_max_ns is not None:
            refreshed_at = self._refreshed_at
            if refreshed_at is None or now_ns - refreshed_at > self.staleness_max_ns:
                raise RevocationStateStale(
                    "the revocation list has not been refreshed recently enough to trust"
                )
        if session_id in self._revoked:
            raise TokenRevoked("the token's session has been revoked")


# ------------------------------------------------------------------------------ verification


_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


@dataclass(frozen=True, slots=True)
class _KeyCheck:
    """One verification key with its algorithm and its signatures' exact base64url length."""

    algorithm: str
    signature_chars: int
    verify: Callable[[bytes, bytes], None]

    @classmethod
    def for_key(cls, key: PublicKey) -> _KeyCheck:
        if isinstance(key, RSAPublicKey):
            _check_rsa_key(key)
            rsa_key = key

            def verify_rsa(signature: bytes, message: bytes) -> None:
                rsa_key.verify(signature, message, _PKCS1V15, _SHA256)

            size = (key.key_size + 7) // 8
            return cls("RS256", (size * 8 + 5) // 6, verify_rsa)
        if isinstance(key, Ed25519PublicKey):
            return cls("EdDSA", 86, key.verify)
        raise ValueError("a verification key must be an RSA or an Ed25519 public key")


class AccessTokenVerifier:
    """Verifies access tokens without I/O. One per process; thread-safe.

    The verified-token cache. A token's signature either verifies under a given public key or
    it does not, forever, so after one successful check the result for the same token text can
    be reused; what changes with time (expiry, the skew bound, revocation) is re-checked on every
    call. Entries are keyed by the exact token text, so a token that differs in any character is
    a miss and is checked in full. The verifier's keys never change (key rotation builds a new
    verifier, with a fresh cache), so no entry can outlive the key that verified it. Only tokens
    that passed every check are cached, so an attacker cannot fill the cache with forgeries;
    inserts beyond `cache_size` evict the oldest entry (tokens expire in 15 minutes anyway).
    """

    def __init__(
        self,
        public_keys: Mapping[str, PublicKey],
        revocations: RevocationSet,
        *,
        clock_skew_ns: int = CLOCK_SKEW_NS,
        cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        if not public_keys:
            raise ValueError("a verifier needs at least one public key")
        if not 0 <= clock_skew_ns <= 5 * 60 * _NS:
            raise ValueError("the clock-skew bound lies between 0 and 5 minutes")
        if cache_size < 0:
            raise ValueError("the verified-token cache size cannot be negative")
        self._keys = {key_id: _KeyCheck.for_key(key) for key_id, key in public_keys.items()}
        self.revocations = revocations
        self._skew_s = clock_skew_ns // _NS
        self._cache_size = cache_size
        self._verified: dict[str, AccessClaims] = {}
        self._headers: dict[str, _KeyCheck] = {}
        self._insert_lock = threading.Lock()

    @classmethod
    def for_keys(
        cls, keys: Iterable[SigningKey], revocations: RevocationSet, **options: Any
    ) -> AccessTokenVerifier:
        """A verifier accepting tokens of any of `keys` (the current and the previous ones)."""
        return cls({key.key_id: key.public_key for key in keys}, revocations, **options)

    def _key_for_header(self, segment: str) -> _KeyCheck:
        key = self._headers.get(segment)
        if key is not None:
            return key
        try:
            header = json.loads(_b64url_decode(segment))
        except ValueError:
            raise TokenInvalid("the token's header is not JSON") from None
        if (
            not isinstance(header, dict)
            or header.keys() != _HEADER_KEYS
            or header["typ"] != TOKEN_TYPE
        ):
            raise TokenInvalid("the token's header is not an access-token header")
        key = self._keys.get(header["kid"]) if isinstance(header["kid"], str) else None
        if key is None:
            raise TokenInvalid("the token was signed with an unknown key")
        # The key, not the token, decides the algorithm: `none`, HS256 keyed with the public
        # key, or any algorithm other than the key's own is refused before the signature.
        if header["alg"] != key.algorithm:
            raise TokenInvalid("the token's algorithm is not its key's algorithm")
        if len(self._headers) < _HEADERS_REMEMBERED_MAX:
            self._headers[segment] = key
        return key

    def _verify_signed(self, token: str) -> AccessClaims:
        """The full check of a token not seen before: shape, header, signature, claims."""
        match = _TOKEN_SHAPE.fullmatch(token)
        if match is None:
            raise TokenInvalid("the bearer token is not an access token")
        header_segment, payload_segment, signature_segment = match.groups()
        key = self._key_for_header(header_segment)
        if len(signature_segment) != key.signature_chars:
            raise TokenInvalid("the token's signature has the wrong length for its key")
        signature = _b64url_decode(signature_segment)
        try:
            key.verify(signature, f"{header_segment}.{payload_segment}".encode("ascii"))
        except InvalidSignature:
            raise TokenInvalid("the token's signature does not verify") from None
        try:
            payload = json.loads(_b64url_decode(payload_segment))
        except ValueError:
            raise TokenInvalid("the token's claims are not JSON") from None
        return _claims_from_payload(payload)

    def verify_access_token(self, token: str, now: int) -> AccessClaims:
        """The token's claims if it is valid at `now` (ns since the epoch), else `TokenInvalid`.

        Raises a subclass naming the reason: `TokenExpired`, `TokenNotYetValid`,
        `TokenRevoked`, `RevocationStateStale`, or `TokenInvalid` itself.
        """
        if type(token) is not str:
            raise TokenInvalid("the bearer token is not an access token")
        claims = self._verified.get(token)
        if claims is None:
            if len(token) > _TOKEN_LENGTH_MAX:
                raise TokenInvalid("the bearer token is not an access token")
            claims = self._verify_signed(token)
            if self._cache_size > 0:
                with self._insert_lock:
                    while len(self._verified) >= self._cache_size:
                        # Dicts keep insertion order, so the first key is the oldest entry.
                        del self._verified[next(iter(self._verified))]
                    self._verified[token] = claims
        now_s = now // _NS
        if now_s >= claims.expires_at + self._skew_s:
            raise TokenExpired("the access token has expired")
        if claims.issued_at > now_s + self._skew_s:
            raise TokenNotYetValid("the access token was issued in the future")
        self.revocations.check(claims.session_id, now)
        return claims
