"""Password policy and Argon2id hashing, with rehash on login and a dummy hash for unknown accounts.

Parameters (OWASP Password Storage Cheat Sheet, "Argon2id"; RFC 9106). OWASP's guidance is
Argon2id with one of five equivalent configurations, from m=47104 KiB (46 MiB), t=1 to m=7168
KiB (7 MiB), t=5, all with p=1; the one it names first in prose is m=19 MiB, t=2, p=1. Tianping
uses exactly that: memory 19456 KiB, 2 passes, 1 lane, a 16-byte salt and a 32-byte tag (RFC
9106's recommended salt and tag lengths). Why this point and not more:

* Online guessing is bounded elsewhere (five failures lock a credential for 15 minutes, and the
  endpoints are rate-limited), so the hash cost only matters against offline guessing after a
  database theft. There, the 12-character minimum length costs an attacker far more than
  doubling the Argon2 work would (each extra character multiplies the search space by tens;
  doubling m or t multiplies it by two).
* Memory is paid per concurrent login: a burst of 100 logins holds 1.9 GiB at 19 MiB, 4.6 GiB at
  46 MiB. The five OWASP configurations cost an attacker about the same; this one is the
  cheapest for the server on the reference machine (about 22 ms per hash against 51 ms for
  46 MiB, t=1, because the server's cost is dominated by filling memory).
* One lane: a login runs on one core, and more lanes only help when cores sit idle, which a
  loaded server's do not.

Each hash string records its own parameters, so raising them is a change of `PARAMETERS`:
`verify` reports `needs_rehash` for hashes made with other parameters, and the service stores a
new hash the next time that person logs in successfully. `benchmarks/identity.py` measures the
cost of one hash; revisit these numbers when OWASP's guidance or the hardware changes.

Unknown accounts. `verify(None, password)` checks the password against a dummy hash made with
the same parameters and always fails, so a login for an account that does not exist costs the
same Argon2 work as a wrong password for one that does, and its timing does not tell them apart.

Policy. A password is 12 to 128 characters after Unicode NFKC normalisation (NIST SP 800-63B:
normalise so that one password typed on two keyboards is one password, allow long passphrases,
no composition rules). The upper bound keeps one login's hashing input bounded. Checking a
password against the party's own identifiers or a breach list is out of scope here.
"""

from __future__ import annotations

import secrets
import threading
import unicodedata
from dataclasses import dataclass
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tianping.identity.tokens import AuthError

__all__ = [
    "PARAMETERS",
    "PASSWORD_LENGTH_MAX",
    "PASSWORD_LENGTH_MIN",
    "Argon2Parameters",
    "PasswordCheck",
    "PasswordHasher",
    "PasswordRejected",
    "normalise_password",
]

PASSWORD_LENGTH_MIN: Final = 12
PASSWORD_LENGTH_MAX: Final = 128
# Stored hash strings are about 100 characters; anything much longer is not one of ours.
HASH_LENGTH_MAX: Final = 512


class PasswordRejected(AuthError):
    """The new password does not meet the policy. The message never repeats the password."""

    code = "password_rejected"


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost parameters: memory in KiB, passes, lanes, salt and tag lengths in bytes."""

    memory_kib: int
    time_cost: int
    parallelism: int
    salt_length: int = 16
    hash_length: int = 32

    def as_dict(self) -> dict[str, int | str]:
        return {
            "algorithm": "argon2id",
            "memory_kib": self.memory_kib,
            "time_cost": self.time_cost,
            "parallelism": self.parallelism,
            "salt_length": self.salt_length,
            "hash_length": self.hash_length,
        }


# OWASP's first-named Argon2id configuration; see the module docstring for the reasons.
PARAMETERS: Final = Argon2Parameters(memory_kib=19 * 1024, time_cost=2, parallelism=1)


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of checking a password: whether it matched, and whether to store a new hash."""

    ok: bool
    needs_rehash: bool = False


def normalise_password(password: str) -> str:
    """The password as hashed: NFKC-normalised, then checked against the length policy."""
    if not isinstance(password, str):
        raise PasswordRejected("a password is text")
    # Bound the work before normalising: NFKC can expand a character into several, but never
    # without limit, and a megabyte of input should not be normalised at all.
    if len(password) > PASSWORD_LENGTH_MAX * 4:
        raise PasswordRejected(f"a password has at most {PASSWORD_LENGTH_MAX} characters")
    normalised = unicodedata.normalize("NFKC", password)
    if len(normalised) < PASSWORD_LENGTH_MIN:
        raise PasswordRejected(f"a password has at least {PASSWORD_LENGTH_MIN} characters")
    if len(normalised) > PASSWORD_LENGTH_MAX:
        raise PasswordRejected(f"a password has at most {PASSWORD_LENGTH_MAX} characters")
    if "\x00" in normalised:
        raise PasswordRejected("a password cannot contain a NUL character")
    return normalised


class PasswordHasher:
    """Argon2id hashing and verification with one set of parameters. Thread-safe."""

    def __init__(self, parameters: Argon2Parameters = PARAMETERS) -> None:
        self.parameters = parameters
        self._hasher = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_length,
            salt_len=parameters.salt_length,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        """Hash a new password after checking it against the policy (`PasswordRejected`)."""
        return self._hasher.hash(normalise_password(password))

    def _dummy(self) -> str:
        # Made lazily (one hash, ~20 ms) so that importing the module costs nothing, with the
        # current parameters so that it costs exactly what a real verification does.
        if self._dummy_hash is None:
            with self._dummy_lock:
                if self._dummy_hash is None:
                    self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))
        return self._dummy_hash

    def warm_up(self) -> None:
        """Make the dummy hash now, so the first unknown-account login is not slower."""
        self._dummy()

    def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Check `password` against `stored_hash`, or against the dummy hash when it is None.

        Never raises for a wrong or unusable password: a password the policy would refuse
        today (an old, shorter one) still gets a full Argon2 verification and simply fails, so
        no refusal returns faster than a real check.
        """
        try:
            candidate = normalise_password(password)
        except PasswordRejected:
            candidate = None
        target = stored_hash
        if target is None or len(target) > HASH_LENGTH_MAX or candidate is None:
            target = self._dummy()
        try:
            self._hasher.verify(target, candidate if candidate is not None else "\x00")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(False)
        if target is not stored_hash or candidate is None:
            return PasswordCheck(False)
        return PasswordCheck(True, self._hasher.check_needs_rehash(target))
