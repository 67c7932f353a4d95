"""Pure authentication parts: Argon2id hashing, RFC 6238 TOTP, sealed secrets, access tokens,
revocation and the rate limiter. No database is involved."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tianping.identity.auth_service import RateLimiter
from tianping.identity.passwords import (
    PARAMETERS,
    Argon2Parameters,
    PasswordHasher,
    PasswordRejected,
    normalise_password,
)
from tianping.identity.tokens import (
    ACCESS_TOKEN_LIFETIME_NS,
    AUDIENCE,
    CLOCK_SKEW_NS,
    ISSUER,
    SIGNING_KEY_ENV_VAR,
    AccessClaims,
    AccessTokenVerifier,
    InsufficientScope,
    RevocationSet,
    RevocationStateStale,
    SigningKey,
    SigningKeyUnavailable,
    TokenExpired,
    TokenInvalid,
    TokenIssuer,
    TokenNotYetValid,
    TokenRevoked,
    load_signing_key,
    require_scope,
)
from tianping.identity.totp import (
    DIGITS,
    SECRETS_KEY_ENV_VAR,
    SECRETS_KEY_PREVIOUS_ENV_VAR,
    STEP_SECONDS,
    SecretBox,
    SecretsKeyUnavailable,
    SecretUnreadable,
    code_at,
    current_step,
    match_step,
    new_secret,
    provisioning_uri,
)

NS = 1_000_000_000
NOW = 1_800_000_000 * NS
PASSWORD = "correct horse battery staple"
# Argon2's smallest memory setting keeps these tests fast; one test uses the real parameters.
CHEAP = Argon2Parameters(memory_kib=64, time_cost=1, parallelism=1)

# --------------------------------------------------------------------------------- passwords


def test_real_parameters_are_owasp_argon2id_and_recorded_in_the_hash() -> None:
    """The default hasher makes Argon2id hashes with m=19 MiB, t=2, p=1 that verify."""
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PARAMETERS.as_dict()["memory_kib"] == 19456
    assert hasher.verify(stored, PASSWORD).ok
    assert not hasher.verify(stored, PASSWORD + "!").ok


def test_hash_and_verify_round_trip_with_salt() -> None:
    """The same password hashes differently each time (salted) and only it verifies."""
    hasher = PasswordHasher(CHEAP)
    first, second = hasher.hash(PASSWORD), hasher.hash(PASSWORD)
    assert first != second
    assert hasher.verify(first, PASSWORD) == hasher.verify(second, PASSWORD)
    assert hasher.verify(first, PASSWORD).ok
    assert not hasher.verify(first, "correct horse battery stapl3").ok


def test_rehash_is_requested_when_parameters_change() -> None:
    """A hash made with other parameters verifies but asks for a rehash; a current one does not."""
    old = PasswordHasher(CHEAP).hash(PASSWORD)
    current = PasswordHasher(Argon2Parameters(memory_kib=128, time_cost=1, parallelism=1))
    check = current.verify(old, PASSWORD)
    assert check.ok and check.needs_rehash
    fresh = current.hash(PASSWORD)
    assert current.verify(fresh, PASSWORD) == current.verify(fresh, PASSWORD)
    assert not current.verify(fresh, PASSWORD).needs_rehash
    assert not current.verify(old, "wrong password entirely").needs_rehash


def test_unknown_account_runs_one_argon2_verification_with_current_parameters() -> None:
    """verify(None, ...) fails after a real Argon2 check of a dummy hash with the same cost."""
    hasher = PasswordHasher(CHEAP)
    calls: list[str] = []
    inner = hasher._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return inner.verify(stored, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    hasher._hasher = Counting()  # type: ignore[assignment]
    assert hasher.verify(None, PASSWORD).ok is False
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$v=19$m=64,t=1,p=1$")
    # A password the policy would refuse still costs a full verification.
    assert hasher.verify(hasher.hash(PASSWORD), "short").ok is False
    assert len(calls) == 2


def test_unknown_account_costs_about_as_much_as_a_wrong_password() -> None:
    """With the real parameters, the dummy check takes the same order of time as a real one."""
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    hasher.warm_up()

    # Interleaved samples, so a burst of load on the machine slows both sides alike.
    samples: dict[str | None, list[float]] = {stored: [], None: []}
    for _ in range(7):
        for target in (stored, None):
            start = time.perf_counter()
            hasher.verify(target, "a wrong password here")
            samples[target].append(time.perf_counter() - start)
    known, unknown = sorted(samples[stored])[3], sorted(samples[None])[3]
    assert 1 / 3 < unknown / known < 3


@pytest.mark.parametrize(
    ("password", "accepted"),
    [("a" * 11, False), ("a" * 12, True), ("a" * 128, True), ("a" * 129, False)],
)
def test_password_length_policy_12_to_128(password: str, accepted: bool) -> None:
    """Passwords of 12 to 128 characters are accepted, shorter and longer ones refused."""
    hasher = PasswordHasher(CHEAP)
    if accepted:
        assert hasher.verify(hasher.hash(password), password).ok
    else:
        with pytest.raises(PasswordRejected) as refused:
            hasher.hash(password)
        assert refused.value.code == "password_rejected"
        assert password not in str(refused.value)


def test_passwords_are_nfkc_normalised() -> None:
    """A full-width password verifies as its ASCII twin (NFKC), as NIST SP 800-63B asks."""
    hasher = PasswordHasher(CHEAP)
    # "password12345" in full-width forms (U+FF50 ... U+FF15), written as escapes for ruff.
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "password12345")
    stored = hasher.hash(full_width)
    assert full_width != "password12345"
    assert normalise_password(full_width) == "password12345"
    assert hasher.verify(stored, "password12345").ok
    with pytest.raises(PasswordRejected):
        normalise_password("twelve chars\x00")


# -------------------------------------------------------------------------------------- TOTP

# RFC 6238 Appendix B: seeds (ASCII) per algorithm and the 8-digit codes at each time.
RFC_SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC_VECTORS = [
    (59, "sha1", "94287082"),
    (59, "sha256", "46119246"),
    (59, "sha512", "90693936"),
    (1111111109, "sha1", "07081804"),
    (1111111109, "sha256", "68084774"),
    (1111111109, "sha512", "25091201"),
    (1111111111, "sha1", "14050471"),
    (1111111111, "sha256", "67062674"),
    (1111111111, "sha512", "99943326"),
    (1234567890, "sha1", "89005924"),
    (1234567890, "sha256", "91819424"),
    (1234567890, "sha512", "93441116"),
    (2000000000, "sha1", "69279037"),
    (2000000000, "sha256", "90698825"),
    (2000000000, "sha512", "38618901"),
    (20000000000, "sha1", "65353130"),
    (20000000000, "sha256", "77737706"),
    (20000000000, "sha512", "47863826"),
]
RFC_SHA1_SECRET = base64.b32encode(RFC_SEEDS["sha1"]).decode()


@pytest.mark.parametrize(("unix_time", "algorithm", "expected"), RFC_VECTORS)
def test_rfc6238_test_vectors(unix_time: int, algorithm: str, expected: str) -> None:
    """Every RFC 6238 Appendix B vector is reproduced at its time."""
    secret = base64.b32encode(RFC_SEEDS[algorithm]).decode()
    assert code_at(secret, unix_time, digits=8, algorithm=algorithm) == expected


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [(t, code[-DIGITS:]) for t, algorithm, code in RFC_VECTORS if algorithm == "sha1"],
)
def test_production_codes_match_the_sha1_vectors_at_their_times(
    unix_time: int, expected: str
) -> None:
    """Our 6-digit SHA-1 codes are the vectors' last six digits and are accepted at that time."""
    assert code_at(RFC_SHA1_SECRET, unix_time) == expected
    step = match_step(RFC_SHA1_SECRET, expected, unix_time * NS, None)
    assert step == unix_time // STEP_SECONDS


def test_window_is_one_step_either_side() -> None:
    """A code is accepted one step early or late, and refused two steps away."""
    step = current_step(NOW) + 7
    code = code_at(RFC_SHA1_SECRET, step * STEP_SECONDS)
    start_of = lambda s: s * STEP_SECONDS * NS  # noqa: E731 - a tiny local helper
    assert match_step(RFC_SHA1_SECRET, code, start_of(step), None) == step
    # Last nanosecond of the step after, first nanosecond of the step before: accepted.
    assert match_step(RFC_SHA1_SECRET, code, start_of(step + 2) - 1, None) == step
    assert match_step(RFC_SHA1_SECRET, code, start_of(step - 1), None) == step
    # Two steps away on either side: refused.
    assert match_step(RFC_SHA1_SECRET, code, start_of(step + 2), None) is None
    assert match_step(RFC_SHA1_SECRET, code, start_of(step - 1) - 1, None) is None


def test_a_used_code_is_refused_within_its_window() -> None:
    """Once a step's code was accepted, it and earlier steps' codes are refused (RFC 6238 5.2)."""
    step = current_step(NOW)
    code = code_at(RFC_SHA1_SECRET, step * STEP_SECONDS)
    assert match_step(RFC_SHA1_SECRET, code, NOW, None) == step
    assert match_step(RFC_SHA1_SECRET, code, NOW, step) is None
    assert match_step(RFC_SHA1_SECRET, code, NOW + STEP_SECONDS * NS, step) is None
    earlier = code_at(RFC_SHA1_SECRET, (step - 1) * STEP_SECONDS)
    assert match_step(RFC_SHA1_SECRET, earlier, NOW, step) is None
    later = code_at(RFC_SHA1_SECRET, (step + 1) * STEP_SECONDS)
    assert match_step(RFC_SHA1_SECRET, later, NOW, step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", " 12345"])
def test_malformed_codes_never_match(code: str) -> None:
    """Codes that are not six ASCII digits are refused without comparison."""
    assert match_step(RFC_SHA1_SECRET, code, NOW, None) is None


def test_new_secrets_are_160_random_bits_and_provisioning_uri_is_complete() -> None:
    """Secrets are 20 random bytes in base32, and the URI carries the secret and the issuer."""
    first, second = new_secret(), new_secret()
    assert first != second
    assert len(base64.b32decode(first)) == 20
    uri = provisioning_uri(first, "pty_01jd3k9x7q8r2m4n6p0s1t3v5w")
    parsed = urllib.parse.urlparse(uri)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert query["secret"] == [first]
    assert query["issuer"] == ["Tianping"]
    with pytest.raises(ValueError):
        code_at("not base32!", 59)


# ------------------------------------------------------------------------------- secret box


def test_secret_box_round_trip_bound_to_its_context() -> None:
    """A sealed secret opens only under its key and its context, and tampering is detected."""
    box = SecretBox(b"k" * 32)
    sealed = box.seal(b"totp\x00pty_a", b"JBSWY3DPEHPK3PXP")
    assert b"JBSWY3DPEHPK3PXP" not in sealed
    assert box.open(b"totp\x00pty_a", sealed) == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUnreadable):
        box.open(b"totp\x00pty_b", sealed)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(SecretUnreadable):
        box.open(b"totp\x00pty_a", bytes(tampered))
    with pytest.raises(SecretUnreadable):
        SecretBox(b"x" * 32).open(b"totp\x00pty_a", sealed)


def test_secret_box_rotation_keeps_old_values_readable() -> None:
    """After rotation the previous key still opens and indexes old values, flagged for reseal."""
    old_key, new_key = b"o" * 32, b"n" * 32
    sealed = SecretBox(old_key).seal(b"c", b"secret")
    rotated = SecretBox(new_key, [old_key])
    assert rotated.open(b"c", sealed) == b"secret"
    assert rotated.needs_reseal(sealed)
    assert not rotated.needs_reseal(rotated.seal(b"c", b"secret"))
    old_digest = SecretBox(old_key).index_digests(b"i", "name")[0]
    digests = rotated.index_digests(b"i", "name")
    assert digests[1] == old_digest and digests[0] != old_digest


def test_secrets_key_from_environment_never_quotes_the_key() -> None:
    """The key is read as base64 or hex; a missing or bad one is refused without echoing it."""
    key = bytes(range(32))
    box = SecretBox.from_environment({SECRETS_KEY_ENV_VAR: base64.b64encode(key).decode()})
    hex_box = SecretBox.from_environment({SECRETS_KEY_ENV_VAR: key.hex()})
    assert hex_box.open(b"c", box.seal(b"c", b"v")) == b"v"
    with pytest.raises(SecretsKeyUnavailable):
        SecretBox.from_environment({})
    with pytest.raises(SecretsKeyUnavailable) as refused:
        SecretBox.from_environment({SECRETS_KEY_ENV_VAR: "c2hvcnQta2V5LXZhbHVl"})
    assert "c2hvcnQta2V5LXZhbHVl" not in str(refused.value)
    assert refused.value.code == "secrets_key_unavailable"
    with_previous = SecretBox.from_environment(
        {SECRETS_KEY_ENV_VAR: key.hex(), SECRETS_KEY_PREVIOUS_ENV_VAR: (b"p" * 32).hex()}
    )
    assert len(with_previous.index_digests(b"i", "v")) == 2
    generated = SecretBox.from_environment({}, generate_development_key=True)
    assert generated.open(b"c", generated.seal(b"c", b"v")) == b"v"


# ------------------------------------------------------------------------------------ tokens


def _verifier(
    key: SigningKey, revocations: RevocationSet | None = None, **options: Any
) -> AccessTokenVerifier:
    if revocations is None:
        revocations = RevocationSet()
        revocations.replace({}, NOW)
    return AccessTokenVerifier.for_keys([key], revocations, **options)


def _issue(key: SigningKey, now: int = NOW, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "subject": "pty_01jd3k9x7q8r2m4n6p0s1t3v5w",
        "role": "customer",
        "scopes": ["ledger:read", "payments:write"],
        "factors": ["password", "totp"],
        "certificate": True,
        "session_id": "ses_abcdefghijklmnopqrstuvwx",
        "now_ns": now,
    }
    fields.update(overrides)
    return TokenIssuer(key).issue(**fields).token


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    segment = _segments(token)[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


ALGORITHMS = pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])


def test_default_algorithm_is_rs256_with_a_2048_bit_key() -> None:
    """RS256 (RSA-2048, e = 65537) is the default; EdDSA is chosen by the key's type."""
    key = SigningKey.generate()
    assert key.algorithm == "RS256"
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    assert key.private_key.key_size == 2048
    assert key.private_key.public_key().public_numbers().e == 65537
    assert SigningKey.generate("EdDSA").algorithm == "EdDSA"
    with pytest.raises(ValueError, match="algorithm"):
        SigningKey.generate("HS256")


@ALGORITHMS
def test_token_round_trip_carries_every_claim(algorithm: str) -> None:
    """An issued token verifies to the claims it was issued with, including auth strength."""
    key = SigningKey.generate(algorithm)
    issued = TokenIssuer(key).issue(
        subject="pty_01jd3k9x7q8r2m4n6p0s1t3v5w",
        role="merchant",
        scopes=["ledger:read"],
        factors=["password", "totp"],
        certificate=True,
        session_id="ses_abcdefghijklmnopqrstuvwx",
        now_ns=NOW,
    )
    claims = _verifier(key).verify_access_token(issued.token, NOW)
    assert claims == issued.claims
    assert claims.subject == "pty_01jd3k9x7q8r2m4n6p0s1t3v5w"
    assert claims.role == "merchant"
    assert claims.scopes == frozenset({"ledger:read"})
    assert claims.factors == ("password", "totp")
    assert claims.certificate is True
    assert claims.expires_at - claims.issued_at == ACCESS_TOKEN_LIFETIME_NS // NS
    assert len(claims.token_id) >= 16
    assert issued.token not in repr(issued)
    header = json.loads(base64.urlsafe_b64decode(_segments(issued.token)[0] + "=="))
    assert header == {"alg": algorithm, "kid": key.key_id, "typ": "at+jwt"}


@ALGORITHMS
def test_tokens_interoperate_with_pyjwt(algorithm: str) -> None:
    """PyJWT's standard decoder accepts our tokens with the issuer, audience and public key."""
    key = SigningKey.generate(algorithm)
    token = _issue(key)
    decoded = jwt.decode(
        token,
        key.public_key,
        algorithms=[algorithm],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded["sid"] == "ses_abcdefghijklmnopqrstuvwx"


def test_expired_token_refused_after_skew_bound() -> None:
    """A token is accepted until exp + 30 s skew and refused from then on."""
    key = SigningKey.generate()
    token = _issue(key)
    verifier = _verifier(key, RevocationSet(staleness_max_ns=None))
    expires = NOW + ACCESS_TOKEN_LIFETIME_NS
    verifier.verify_access_token(token, expires + CLOCK_SKEW_NS - 1)
    with pytest.raises(TokenExpired) as refused:
        verifier.verify_access_token(token, expires + CLOCK_SKEW_NS)
    assert refused.value.code == "token_expired"


def test_clock_skew_bound_for_tokens_from_the_future() -> None:
    """A token issued up to 30 s in the verifier's future passes; one further ahead does not."""
    key = SigningKey.generate()
    token = _issue(key, now=NOW + CLOCK_SKEW_NS)
    verifier = _verifier(key)
    assert verifier.verify_access_token(token, NOW).issued_at == NOW // NS + 30
    ahead = _issue(key, now=NOW + CLOCK_SKEW_NS + NS)
    with pytest.raises(TokenNotYetValid):
        verifier.verify_access_token(ahead, NOW)


@ALGORITHMS
def test_token_signed_with_another_key_is_refused(algorithm: str) -> None:
    """Another key's token is refused, also when it claims our key id."""
    ours, theirs = SigningKey.generate(algorithm), SigningKey.generate(algorithm)
    verifier = _verifier(ours)
    with pytest.raises(TokenInvalid, match="unknown key"):
        verifier.verify_access_token(_issue(theirs), NOW)
    forged = jwt.encode(
        _payload(_issue(ours)),
        theirs.private_key,
        algorithm=algorithm,
        headers={"kid": ours.key_id, "typ": "at+jwt"},
    )
    with pytest.raises(TokenInvalid, match="signature"):
        verifier.verify_access_token(forged, NOW)


@ALGORITHMS
def test_tampered_claims_are_refused(algorithm: str) -> None:
    """Changing any claim (role, scope, strength) without re-signing breaks the signature."""
    key = SigningKey.generate(algorithm)
    token = _issue(key, role="customer", factors=["password"])
    header, _, signature = _segments(token)
    for change in (
        {"role": "operator"},
        {"scope": "ledger:write"},
        {"factors": ["password", "totp"]},
    ):
        payload = _payload(token) | change
        tampered = (
            f"{header}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}.{signature}"
        )
        with pytest.raises(TokenInvalid, match="signature"):
            _verifier(key).verify_access_token(tampered, NOW)


@ALGORITHMS
def test_none_and_symmetric_algorithms_are_refused(algorithm: str) -> None:
    """`alg: none` and an HS256 token keyed with our public key (algorithm confusion) fail."""
    key = SigningKey.generate(algorithm)
    payload = _payload(_issue(key))
    unsigned = jwt.encode(payload, None, algorithm="none", headers={"kid": key.key_id})
    verifier = _verifier(key)
    tokens = [unsigned, unsigned + "A" * 86, unsigned + "A" * 342]
    # HS256 keyed with every encoding of our public key an attacker could pick, signed by hand
    # (PyJWT itself refuses PEM keys as HMAC secrets).
    for encoding, public_format in (
        (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    ):
        secret = key.public_key.public_bytes(encoding, public_format)
        for alg in ("HS256", "none", "RS256" if algorithm == "EdDSA" else "EdDSA"):
            header = _b64(json.dumps({"alg": alg, "kid": key.key_id, "typ": "at+jwt"}).encode())
            body = _b64(json.dumps(payload).encode())
            mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
            tokens.append(f"{header}.{body}.{_b64(mac)}")
            tokens.append(f"{header}.{body}.{_segments(_issue(key))[2]}")
    for token in tokens:
        with pytest.raises(TokenInvalid):
            verifier.verify_access_token(token, NOW)


def test_rsa_keys_must_be_2048_bits_and_exponent_65537() -> None:
    """Short RSA keys and unusual public exponents are refused, for signing and verifying."""
    for bits, exponent in ((1024, 65537), (2048, 3)):
        weak = rsa.generate_private_key(public_exponent=exponent, key_size=bits)
        pem = weak.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(SigningKeyUnavailable):
            SigningKey.from_pem(pem)
        revocations = RevocationSet()
        with pytest.raises(SigningKeyUnavailable):
            AccessTokenVerifier({"weak": weak.public_key()}, revocations)


def test_signature_length_must_match_the_key() -> None:
    """An RS256 token whose signature is not exactly the key's length is refused unverified."""
    key = SigningKey.generate()
    token = _issue(key)
    header, body, signature = _segments(token)
    assert len(signature) == 342
    verifier = _verifier(key)
    for wrong in (signature[:86], signature + "AAAA", signature[:-4]):
        with pytest.raises(TokenInvalid):
            verifier.verify_access_token(f"{header}.{body}.{wrong}", NOW)
    verifier.verify_access_token(token, NOW)


@ALGORITHMS
def test_header_and_claims_must_be_exactly_an_access_tokens(algorithm: str) -> None:
    """Extra header fields, extra claims and another audience are refused even when signed."""
    key = SigningKey.generate(algorithm)
    payload = _payload(_issue(key))
    verifier = _verifier(key)
    variants = [
        (payload, {"kid": key.key_id, "typ": "at+jwt", "jku": "https://evil.example/keys"}),
        (payload | {"admin": True}, {"kid": key.key_id, "typ": "at+jwt"}),
        (payload | {"aud": "another-api"}, {"kid": key.key_id, "typ": "at+jwt"}),
        (payload, {"kid": key.key_id, "typ": "JWT"}),
        (payload | {"exp": payload["iat"] + 86_400}, {"kid": key.key_id, "typ": "at+jwt"}),
    ]
    for claims, headers in variants:
        token = jwt.encode(claims, key.private_key, algorithm=algorithm, headers=headers)
        with pytest.raises(TokenInvalid):
            verifier.verify_access_token(token, NOW)


@ALGORITHMS
def test_non_canonical_signature_encoding_is_refused(algorithm: str) -> None:
    """Two spellings of one signature cannot both verify: unused trailing bits must be zero."""
    key = SigningKey.generate(algorithm)
    token = _issue(key)
    verifier = _verifier(key, cache_size=0)
    verifier.verify_access_token(token, NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    sibling = token[:-1] + alphabet[last ^ 1]  # flips one of the 4 unused bits
    with pytest.raises(TokenInvalid, match="canonical"):
        verifier.verify_access_token(sibling, NOW)
    for junk in ("", "a.b", "x" * 5000, token + ".extra"):
        with pytest.raises(TokenInvalid):
            verifier.verify_access_token(junk, NOW)


def test_revocation_applies_to_cached_tokens_and_stale_sets_fail_closed() -> None:
    """A verified (cached) token is refused once its session is revoked or the set goes stale."""
    key = SigningKey.generate()
    revocations = RevocationSet()
    verifier = _verifier(key, revocations)
    token = _issue(key)
    with pytest.raises(RevocationStateStale):
        verifier.verify_access_token(token, NOW)  # never refreshed
    revocations.replace({}, NOW)
    claims = verifier.verify_access_token(token, NOW)
    revocations.add(claims.session_id, NOW + NS)
    with pytest.raises(TokenRevoked) as refused:
        verifier.verify_access_token(token, NOW + NS)
    assert refused.value.code == "token_revoked"
    other = _issue(key, session_id="ses_otherotherotherotherothe")
    verifier.verify_access_token(other, NOW + 30 * NS)
    with pytest.raises(RevocationStateStale):
        verifier.verify_access_token(other, NOW + 30 * NS + 1)


def test_refresh_keeps_local_revocations_newer_than_the_query() -> None:
    """A refresh that started before a local revocation does not drop that revocation."""
    revocations = RevocationSet()
    revocations.replace({"ses_old": NOW - NS}, NOW)
    revocations.add("ses_new", NOW + 2 * NS)
    revocations.replace({}, NOW + NS)
    revocations.check("ses_old", NOW + NS)
    with pytest.raises(TokenRevoked):
        revocations.check("ses_new", NOW + NS)
    revocations.replace({}, NOW + 3 * NS)
    revocations.check("ses_new", NOW + 3 * NS)


def test_require_scope() -> None:
    """require_scope passes for a granted scope and refuses any other with a stable code."""
    key = SigningKey.generate()
    claims: AccessClaims = _verifier(key).verify_access_token(_issue(key), NOW)
    require_scope(claims, "ledger:read")
    with pytest.raises(InsufficientScope) as refused:
        require_scope(claims, "ledger:write")
    assert refused.value.code == "insufficient_scope"


def test_signing_key_loading(tmp_path: Any) -> None:
    """Keys load from a file or the environment, are never generated unasked, RSA or Ed25519."""
    key = SigningKey.generate()
    eddsa = SigningKey.generate("EdDSA")
    loaded = load_signing_key(environ={SIGNING_KEY_ENV_VAR: eddsa.to_pem().decode()})
    assert (loaded.algorithm, loaded.key_id) == ("EdDSA", eddsa.key_id)
    path = tmp_path / "signing.pem"
    path.write_bytes(key.to_pem())
    assert load_signing_key(path).key_id == key.key_id
    from_env = load_signing_key(environ={SIGNING_KEY_ENV_VAR: key.to_pem().decode()})
    assert from_env.key_id == key.key_id
    with pytest.raises(SigningKeyUnavailable):
        load_signing_key(environ={})
    assert load_signing_key(environ={}, generate_development_key=True).key_id != key.key_id
    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SigningKeyUnavailable, match="RSA"):
        SigningKey.from_pem(p256)
    with pytest.raises(SigningKeyUnavailable) as refused:
        load_signing_key(environ={SIGNING_KEY_ENV_VAR: "-----BEGIN PRIVATE KEY-----\nAAAA"})
    assert "AAAA" not in str(refused.value)
    assert "PRIVATE" not in repr(key)
    with pytest.raises(SigningKeyUnavailable):
        load_signing_key(tmp_path / "missing.pem")


def test_rotation_verifier_accepts_current_and_previous_keys() -> None:
    """A verifier built with the previous key too accepts tokens of both, and only of those.

    The previous key is Ed25519 and the current RSA: a rotation can change the algorithm."""
    previous, current = SigningKey.generate("EdDSA"), SigningKey.generate()
    revocations = RevocationSet()
    revocations.replace({}, NOW)
    verifier = AccessTokenVerifier.for_keys([current, previous], revocations)
    verifier.verify_access_token(_issue(previous), NOW)
    verifier.verify_access_token(_issue(current), NOW)
    with pytest.raises(TokenInvalid):
        verifier.verify_access_token(_issue(SigningKey.generate()), NOW)


def test_issuer_refuses_bad_claims() -> None:
    """The issuer will not sign an unknown role, factor or malformed scope."""
    key = SigningKey.generate()
    for override in ({"role": "root"}, {"factors": ["sms"]}, {"scopes": ["Ledger Read"]}):
        with pytest.raises(TokenInvalid):
            _issue(key, **override)


# ------------------------------------------------------------------------------ rate limiter


def test_rate_limiter_token_bucket() -> None:
    """A bucket allows its capacity in a burst, then one attempt per refill interval."""
    limiter = RateLimiter(capacity=3, refill_interval_ns=10 * NS)
    assert [limiter.try_acquire("k", NOW) for _ in range(3)] == [0, 0, 0]
    assert limiter.try_acquire("k", NOW) == 10 * NS
    assert limiter.try_acquire("k", NOW + 4 * NS) == 6 * NS
    assert limiter.try_acquire("k", NOW + 10 * NS) == 0
    assert limiter.try_acquire("k", NOW + 10 * NS) > 0
    assert limiter.try_acquire("other", NOW) == 0
    # A long pause refills to the capacity, never beyond it.
    later = NOW + 10_000 * NS
    assert [limiter.try_acquire("k", later) for _ in range(4)][-1] > 0


def test_rate_limiter_memory_is_bounded() -> None:
    """No more than max_keys buckets are kept; the least recently used is dropped first."""
    limiter = RateLimiter(capacity=1, refill_interval_ns=60 * NS, max_keys=100)
    assert limiter.try_acquire("hot", NOW) == 0
    for index in range(1000):
        limiter.try_acquire(f"key-{index}", NOW)
        assert len(limiter) <= 100
    assert len(limiter) == 100
    recent = RateLimiter(capacity=1, refill_interval_ns=60 * NS, max_keys=2)
    recent.try_acquire("a", NOW)
    recent.try_acquire("b", NOW)
    assert recent.try_acquire("a", NOW) > 0  # touches "a", so "b" is the oldest
    recent.try_acquire("c", NOW)
    assert recent.try_acquire("a", NOW) > 0
    assert recent.try_acquire("b", NOW) == 0  # "b" was dropped and starts full
