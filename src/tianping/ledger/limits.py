"""Every bound the ledger enforces, in one place, with the unit last in the name.

A limit exists so that no input, however hostile, can make the ledger do unbounded work or store
unbounded data. Changing a number here is a product decision: the HTTP schema, the CLI and the
engine all read these constants, so they never disagree.
"""

from __future__ import annotations

# TigerBeetle's default request size: one batch fills one 1 MiB message there. We keep the same
# number so that clients written against its semantics batch the same way here.
TRANSFERS_PER_BATCH_MAX = 8189
ACCOUNTS_PER_BATCH_MAX = 8189
IDS_PER_LOOKUP_MAX = 8189

# Ids are unsigned 128-bit integers chosen by the client; zero and the all-ones value are reserved
# (zero means "not set" in optional id fields, all-ones is kept as a sentinel for range scans).
ID_MIN = 1
ID_MAX = 2**128 - 2

# One transfer moves at most 10^15 minor units (ten trillion yuan, or about 40 billion US dollars
# expressed in a zero-exponent currency such as VND). The bound keeps every balance far inside a
# signed 64-bit column even after billions of transfers to one account are summed per field.
AMOUNT_MINOR_MAX = 10**15

# Balances are stored in signed 64-bit columns on both backends; a transfer that would push any
# balance field past this value is refused with an `overflows_*` result instead of wrapping.
BALANCE_MINOR_MAX = 2**63 - 1

# Account and transfer codes are application-defined types (TigerBeetle's u16 `code`).
CODE_MIN = 1
CODE_MAX = 65535

# A pending transfer may wait at most 400 days: long enough for any card-authorisation or
# escrow hold we know of, short enough that forgotten holds cannot pile up for ever.
TIMEOUT_SECONDS_MAX = 400 * 24 * 3600

# Free-form metadata is a compact JSON object. It is for references a person needs to read,
# not for documents: those belong in the owning context's own tables.
METADATA_BYTES_MAX = 1024
METADATA_KEYS_MAX = 16

# Owner references are pseudonymous party ids issued by the identity context.
OWNER_REFERENCE_LENGTH_MAX = 64

# Query pages.
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
