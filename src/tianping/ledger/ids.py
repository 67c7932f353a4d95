"""Client-chosen 128-bit identifiers and their storage encoding.

Ids follow TigerBeetle: the client generates and persists the id before it submits the event, so a
retry after a lost reply carries the same id and is recognised as a replay. Ids are unsigned 128-bit
integers. On both backends they are stored as 16-byte big-endian byte strings, because neither
SQLite nor PostgreSQL has an unsigned 128-bit integer column and big-endian bytes sort in numeric
order, which keeps range scans meaningful.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from tianping.ledger.limits import ID_MAX, ID_MIN

_ID_TEXT_LENGTH_MAX = 39  # len(str(2**128 - 1))


class InvalidId(ValueError):
    """Raised at an edge (HTTP, CLI) when a supplied id is not an integer in [ID_MIN, ID_MAX]."""


def is_valid_id(value: int) -> bool:
    """Tell whether `value` may be used as an account or transfer id."""
    return type(value) is int and ID_MIN <= value <= ID_MAX


def parse_id(value: int | str) -> int:
    """Read an id given as an int or a string of decimal digits, refusing anything else."""
    if isinstance(value, bool):
        raise InvalidId("an id must be an integer, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        too_long = len(value) > _ID_TEXT_LENGTH_MAX
        if not value or too_long or not value.isascii() or not value.isdigit():
            raise InvalidId(f"an id must be a decimal integer of 1 to {_ID_TEXT_LENGTH_MAX} digits")
        number = int(value)
    else:
        raise InvalidId(f"an id must be an integer or a decimal string, not {type(value).__name__}")
    if not ID_MIN <= number <= ID_MAX:
        raise InvalidId(f"an id must lie between {ID_MIN} and {ID_MAX}")
    return number


def id_to_bytes(value: int) -> bytes:
    """Encode an id for storage (16 bytes, big-endian)."""
    return value.to_bytes(16, "big")


def id_from_bytes(value: bytes) -> int:
    """Decode a stored id."""
    return int.from_bytes(value, "big")


def derive_id(namespace: str, key: str) -> int:
    """Derive a stable ledger id from another context's own idempotency key.

    A payment with client id "pay-123" always maps to the same transfer id, so retrying the
    payment replays the same ledger event instead of creating a second one. SHA-256 truncated to
    128 bits makes an accidental collision as unlikely as a collision of random 128-bit ids; were
    one ever to happen, the ledger answers `exists_with_different_fields` rather than merging.
    """
    digest = hashlib.sha256(f"{namespace}\x00{key}".encode()).digest()
    number = int.from_bytes(digest[:16], "big")
    return min(max(number, ID_MIN), ID_MAX)


class _EntropyBlocks:
    """The random low bits of time-ordered ids, read from the operating system a block at a time.

    `os.urandom` costs a system call, and a payment makes two ids on its hot path, where one
    call each measured a few per cent of the payment's time; a 4 KiB block serves 409 ids.
    These bits only keep ids apart (they are not secrets: nothing is authorised by knowing an
    id), so handing out a block in pieces loses nothing. A child process starts with no block
    of its own: a block inherited across `fork` would give parent and child the same ids.
    """

    BLOCK_BYTES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            start = self._offset
            if start + count > len(self._block):
                self._block = os.urandom(max(self.BLOCK_BYTES, count))
                start = 0
            self._offset = start + count
            return self._block[start : start + count]

    def forget(self) -> None:
        """Drop the block and the lock (another thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._block = b""
        self._offset = 0


_ENTROPY = _EntropyBlocks()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ENTROPY.forget)


def time_ordered_id(now_ns: int | None = None, entropy: bytes | None = None) -> int:
    """Make a new id whose high bits are the time in milliseconds, like a ULID.

    Time-ordered ids keep index inserts near the right-hand edge of the B-tree. `entropy` is for
    deterministic tests; normally 80 bits come from the operating system's random source.
    """
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    random_bits = int.from_bytes(entropy if entropy is not None else _ENTROPY.take(10), "big")
    number = ((millis & (2**48 - 1)) << 80) | (random_bits & (2**80 - 1))
    return min(max(number, ID_MIN), ID_MAX)
