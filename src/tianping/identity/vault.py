"""The personal-data vault's cryptography: per-person data keys, field encryption, key wrapping.

Envelope encryption with crypto-shredding:

* Every person has a data key: 256 random bits from the operating system. Each personal field is
  encrypted with AES-256-GCM under that key, with a fresh random 96-bit nonce per write and
  associated data binding the ciphertext to its place: the format label, the party id, the scope
  (`live`, or `aml_retention` for what the AML law requires to be kept after erasure), the
  field's name and the data key's version. A ciphertext moved to another person's row, another
  field or another key version therefore fails authentication instead of decrypting as someone
  else's data.
* Data keys are wrapped (encrypted) with AES-256-GCM under a master key, with the party id,
  scope, key version and master-key id as associated data, so a wrapped key cannot be swapped
  onto another person either. AES-GCM rather than AES-KW (RFC 3394) for that reason: AES-KW has
  no associated data. Random nonces are safe here because one master key wraps at most one key
  per person and version, far below the 2**32 invocations NIST SP 800-38D allows per key.
* The master key is 32 bytes loaded from a file (path given, or `TIANPING_MASTER_KEY_FILE`) or
  from `TIANPING_MASTER_KEY` (base64). It is never written to the database: the database holds
  only wrapped keys and the master key's id, a 64-bit HMAC tag of the key that identifies it
  without revealing it.
* Erasure deletes the person's wrapped data key (and, for hygiene, their ciphertexts). Any copy
  of their ciphertexts that holds no wrapped key (a replica of the field rows, an export, a log)
  is unreadable at once. A full copy of the database taken before the erasure still holds the
  wrapped key, under the master key of that time; it becomes unreadable when that master key is
  retired: `Vault.rewrap` moves every live data key to a new master key without touching any
  ciphertext, after which the old master key is destroyed. Erasure receipts name the master key
  whose retirement completes the erasure in backups.

Random nonces: GCM fails catastrophically if a nonce repeats under one key. Each write draws 96
fresh bits from `os.urandom`; a person's data key encrypts a few dozen values over its life, so
the chance of a repeat is negligible (far below 2**-64), and rotating a person's data key
re-encrypts everything under a new key anyway.

Nothing here logs, and no error message contains a key, a plaintext or a ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tianping.identity.consent import PrivacyError

__all__ = [
    "DATA_KEY_BYTES",
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "NONCE_BYTES",
    "DataKey",
    "DecryptionFailed",
    "MasterKey",
    "MasterKeyInvalid",
    "MasterKeyUnavailable",
    "Scope",
    "Sealed",
    "Vault",
    "VaultError",
    "WrappedKey",
    "load_master_key",
    "seal",
    "unseal",
]

MASTER_KEY_ENV = "TIANPING_MASTER_KEY"
MASTER_KEY_FILE_ENV = "TIANPING_MASTER_KEY_FILE"
DATA_KEY_BYTES = 32
MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
# A plaintext is at most a few hundred characters (see consent.FIELD_VALUE_LENGTH_MAX) or a
# data-subject statement; 64 KiB bounds what one call encrypts.
PLAINTEXT_BYTES_MAX = 65_536

_FIELD_LABEL = b"tianping/vault/field/v1"
_WRAP_LABEL = b"tianping/vault/wrap/v1"
_KEY_ID_LABEL = b"tianping/vault/master-key-id/v1"
_FINGERPRINT_LABEL = b"tianping/vault/fingerprint/v1"
_SEPARATOR = b"\x1f"


class VaultError(PrivacyError):
    code = "vault_error"


class MasterKeyInvalid(VaultError):
    """The master key is missing, malformed or stored where others can read it."""

    code = "master_key_invalid"


class MasterKeyUnavailable(VaultError):
    """A data key was wrapped under a master key this vault does not hold (retired, or
    another installation's)."""

    code = "master_key_unavailable"


class DecryptionFailed(VaultError):
    """A ciphertext or wrapped key failed authentication: tampered, moved, or the wrong key."""

    code = "vault_decryption_failed"


class Scope(StrEnum):
    LIVE = "live"
    AML_RETENTION = "aml_retention"


def _no_pickling(self: object) -> NoReturn:
    raise TypeError("key material is never pickled")


class MasterKey:
    """A 256-bit key-wrapping key. Its `repr` shows only its id, never the key."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != MASTER_KEY_BYTES:
            raise MasterKeyInvalid(f"a master key is exactly {MASTER_KEY_BYTES} bytes")
        self.key_id = hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_base64(cls, text: str | bytes) -> MasterKey:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyInvalid("a master key is given as base64") from None
        return cls(key)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    __reduce__ = _no_pickling


class DataKey:
    """One person's 256-bit data key at one version. Its `repr` shows only the version."""

    __slots__ = ("_aead", "_key", "version")

    def __init__(self, key: bytes, version: int) -> None:
        if len(key) != DATA_KEY_BYTES:
            raise VaultError(f"a data key is exactly {DATA_KEY_BYTES} bytes")
        if type(version) is not int or version < 1:
            raise VaultError("a data key version is a positive integer")
        self._key = key
        self._aead = AESGCM(key)
        self.version = version

    @classmethod
    def generate(cls, version: int = 1) -> DataKey:
        return cls(AESGCM.generate_key(bit_length=256), version)

    def fingerprint(self, data: bytes) -> bytes:
        """An HMAC-SHA256 tag of `data` under this key (for request digests of personal data).

        A plain hash of a phone number can be reversed by hashing every phone number; a tag
        under the person's key cannot, and it becomes meaningless once the key is destroyed.
        """
        return hmac.new(self._key, _FINGERPRINT_LABEL + _SEPARATOR + data, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"DataKey(version={self.version})"

    __reduce__ = _no_pickling


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as stored: encrypted under the master key `master_key_id`."""

    party_id: str
    scope: Scope
    key_version: int
    master_key_id: str
    nonce: bytes
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted value as stored: the data-key version, the nonce and the ciphertext (with
    GCM's 16-byte tag at its end)."""

    key_version: int
    nonce: bytes
    ciphertext: bytes


def _field_aad(party_id: str, scope: Scope, name: str, version: int) -> bytes:
    return _SEPARATOR.join(
        (_FIELD_LABEL, party_id.encode(), scope.value.encode(), name.encode(), b"%d" % version)
    )


def _wrap_aad(party_id: str, scope: Scope, version: int, master_key_id: str) -> bytes:
    return _SEPARATOR.join(
        (
            _WRAP_LABEL,
            party_id.encode(),
            scope.value.encode(),
            b"%d" % version,
            master_key_id.encode(),
        )
    )


def _check_name(text: str, what: str) -> None:
    # The associated data joins its parts with a unit separator; a part containing one could
    # make two different places produce the same associated data.
    if not text or "\x1f" in text or len(text) > 256:
        raise VaultError(f"a {what} is 1 to 256 characters without control characters")


def seal(data_key: DataKey, party_id: str, scope: Scope, name: str, plaintext: str) -> Sealed:
    """Encrypt one value of `party_id`'s field `name` under their data key, with a fresh nonce."""
    _check_name(party_id, "party id")
    _check_name(name, "field name")
    data = plaintext.encode()
    if len(data) > PLAINTEXT_BYTES_MAX:
        raise VaultError(f"a value is at most {PLAINTEXT_BYTES_MAX} bytes")
    nonce = os.urandom(NONCE_BYTES)
    aad = _field_aad(party_id, scope, name, data_key.version)
    return Sealed(data_key.version, nonce, data_key._aead.encrypt(nonce, data, aad))


def unseal(data_key: DataKey, party_id: str, scope: Scope, name: str, sealed: Sealed) -> str:
    """Decrypt a value sealed by `seal` for the same person, scope and field, or fail."""
    if sealed.key_version != data_key.version or len(sealed.nonce) != NONCE_BYTES:
        raise DecryptionFailed("the value was sealed under another data-key version")
    aad = _field_aad(party_id, scope, name, sealed.key_version)
    try:
        data = data_key._aead.decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag:
        raise DecryptionFailed(
            "a stored value failed authentication (altered, moved, or under another key)"
        ) from None
    return data.decode()


class Vault:
    """Wraps and unwraps data keys: new keys under `current`, old ones under any key held.

    Hold the previous master key in `retired` only while `rewrap` moves the data keys off it;
    afterwards construct the vault with the new key alone and destroy the old one.
    """

    __slots__ = ("_keys", "current")

    def __init__(self, current: MasterKey, retired: Iterable[MasterKey] = ()) -> None:
        self.current = current
        keys: dict[str, MasterKey] = {key.key_id: key for key in retired}
        keys[current.key_id] = current
        self._keys: Mapping[str, MasterKey] = keys

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def __repr__(self) -> str:
        return f"Vault(current={self.current.key_id!r}, held={sorted(self._keys)!r})"

    __reduce__ = _no_pickling

    def wrap(self, party_id: str, scope: Scope, data_key: DataKey) -> WrappedKey:
        _check_name(party_id, "party id")
        master = self.current
        nonce = os.urandom(NONCE_BYTES)
        aad = _wrap_aad(party_id, scope, data_key.version, master.key_id)
        wrapped = master._aead.encrypt(nonce, data_key._key, aad)
        return WrappedKey(party_id, scope, data_key.version, master.key_id, nonce, wrapped)

    def new_data_key(
        self, party_id: str, scope: Scope, version: int = 1
    ) -> tuple[DataKey, WrappedKey]:
        """A fresh data key and its wrapped form, ready to store."""
        data_key = DataKey.generate(version)
        return data_key, self.wrap(party_id, scope, data_key)

    def unwrap(self, wrapped: WrappedKey) -> DataKey:
        master = self._keys.get(wrapped.master_key_id)
        if master is None:
            raise MasterKeyUnavailable(
                f"the data key was wrapped under master key {wrapped.master_key_id}, which this "
                "vault does not hold"
            )
        aad = _wrap_aad(wrapped.party_id, wrapped.scope, wrapped.key_version, master.key_id)
        try:
            key = master._aead.decrypt(wrapped.nonce, wrapped.wrapped, aad)
        except InvalidTag:
            raise DecryptionFailed(
                "a wrapped data key failed authentication (altered, moved, or another key)"
            ) from None
        return DataKey(key, wrapped.key_version)

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        """The same data key wrapped under the current master key; ciphertexts stay as they are."""
        if wrapped.master_key_id == self.current.key_id:
            return wrapped
        return self.wrap(wrapped.party_id, wrapped.scope, self.unwrap(wrapped))


def _read_key_file(path: Path) -> MasterKey:
    try:
        info = path.stat()
    except OSError:
        raise MasterKeyInvalid(f"the master key file {path} cannot be read") from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyInvalid(
            f"the master key file {path} is accessible to other users; make it mode 0600"
        )
    try:
        content = path.read_bytes()
    except OSError:
        raise MasterKeyInvalid(f"the master key file {path} cannot be read") from None
    if len(content) == MASTER_KEY_BYTES:
        return MasterKey(content)
    return MasterKey.from_base64(content)


def load_master_key(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> MasterKey:
    """The master key from `path`, else from the file named by `TIANPING_MASTER_KEY_FILE`, else
    from `TIANPING_MASTER_KEY` (base64 of 32 bytes).

    A key file holds the 32 raw bytes or their base64 text and must not be readable by group or
    others. Keep it outside the database's directory and out of its backups: a backup that holds
    both the key and the wrapped data keys protects nothing.
    """
    env = os.environ if environ is None else environ
    if path is not None:
        return _read_key_file(Path(path))
    file_name = env.get(MASTER_KEY_FILE_ENV, "").strip()
    if file_name:
        return _read_key_file(Path(file_name))
    text = env.get(MASTER_KEY_ENV, "").strip()
    if not text:
        raise MasterKeyInvalid(
            f"no master key: set {MASTER_KEY_FILE_ENV} to a key file or {MASTER_KEY_ENV} to "
            "the key in base64"
        )
    return MasterKey.from_base64(text)
