"""Unit and property tests for the canonical journal encoding and the hash chain."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.ledger import journal
from tianping.ledger.adapters.store import transfer_to_row
from tianping.ledger.engine import LedgerView, plan_transfers
from tianping.ledger.model import (
    Account,
    AccountFlags,
    NewTransfer,
    Resolution,
    Transfer,
    TransferFlags,
)

DIGEST = bytes(range(32))


def _transfer(
    transfer_id: int = 10, metadata: str | None = None, timestamp: int = 1_000, **fields: int
) -> Transfer:
    values: dict[str, Any] = {
        "debit_account_id": 1,
        "credit_account_id": 2,
        "amount": 5,
        "currency": "USD",
        "code": 7,
        "flags": 0,
        "pending_id": 0,
        "reverses_id": 0,
        "timeout": 0,
    }
    values.update(fields)
    return Transfer(id=transfer_id, metadata=metadata, timestamp=timestamp, **values)


def _encode(transfers: list[Transfer]) -> str:
    return "".join(journal.transfer_row_line(transfer_to_row(t)) for t in transfers)


def _decode(text: str) -> list[tuple[Any, ...]]:
    """Parse a run of transfer lines back into stored rows: a decoder exists iff encoding is 1:1."""
    rows: list[tuple[Any, ...]] = []
    position = 0
    while position < len(text):
        fields: list[str] = []
        for _ in range(12):  # "T" and the 11 fields before metadata, each ended by "|"
            end = text.index("|", position)
            fields.append(text[position:end])
            position = end + 1
        assert fields[0] == "T"
        if text[position] == "-":
            metadata = None
            position += 1
        else:
            colon = text.index(":", position)
            length = int(text[position:colon])
            metadata = text[colon + 1 : colon + 1 + length]
            position = colon + 1 + length
        assert text[position] == "\n"
        position += 1

        def ident(value: str) -> bytes | None:
            return None if value == "-" else bytes.fromhex(value)

        rows.append(
            (
                int(fields[1]),
                bytes.fromhex(fields[2]),
                bytes.fromhex(fields[3]),
                bytes.fromhex(fields[4]),
                int(fields[5]),
                fields[6],
                int(fields[7]),
                int(fields[8]),
                ident(fields[9]),
                ident(fields[10]),
                int(fields[11]),
                metadata,
            )
        )
    return rows


TRICKY_METADATA = [
    None,
    "-",
    "0:",
    '{"a":"b|c"}',
    '{"a":"b"}|',
    '{"note":"line one\\nline two"}',  # a newline escaped as JSON escapes it
    "raw\nnewline",
    "\n",
    "|",
    "||\n|",
    '{"name":"\u5929\u5e73","emoji":"\U0001f600"}',
    "e\u0301",  # a combining accent: not normalised, so distinct from the next one
    "\u00e9",
    "5:abcde",
    json.dumps({"k": "x\ny|z"}, separators=(",", ":")),
]


def test_metadata_values_encode_to_distinct_lines() -> None:
    """Transfers differing only in tricky metadata (pipes, newlines, unicode) never encode alike."""
    lines = [_encode([_transfer(metadata=metadata)]) for metadata in TRICKY_METADATA]
    assert len(set(lines)) == len(TRICKY_METADATA)
    digests = {journal.body_hash([line]) for line in lines}
    assert len(digests) == len(TRICKY_METADATA)


def test_metadata_cannot_forge_a_following_row() -> None:
    """A metadata value that embeds a whole second transfer line does not encode like two rows."""
    first = _transfer(10, metadata="x")
    second = _transfer(11, metadata="y", timestamp=1_001)
    two_rows = _encode([first, second])
    # Metadata chosen so that a naive encoding (no length prefix) would produce `two_rows`.
    forged_metadata = "x\n" + journal.transfer_row_line(transfer_to_row(second))[:-1]
    forged = _encode([_transfer(10, metadata=forged_metadata)])
    naive_prefix = two_rows.split("1:x\n")[0]
    assert forged.startswith(naive_prefix)  # the two really do share everything up to metadata
    assert forged != two_rows
    assert _decode(forged) == [transfer_to_row(_transfer(10, metadata=forged_metadata))]
    assert _decode(two_rows) == [transfer_to_row(first), transfer_to_row(second)]


def test_json_escaped_newline_differs_from_raw_newline() -> None:
    """Metadata with an escaped newline (as compact JSON writes it) and with a raw one differ."""
    escaped = json.dumps({"a": "b\nc"}, separators=(",", ":"))
    assert "\n" not in escaped
    raw = escaped.replace("\\n", "\n")
    assert _encode([_transfer(metadata=escaped)]) != _encode([_transfer(metadata=raw)])


_metadata = st.none() | st.text(
    alphabet=st.sampled_from('|\n:-0123456789aé\u5929\U0001f600\\"{}'), max_size=30
)


@given(
    st.lists(
        st.tuples(st.integers(1, 2**128 - 2), _metadata, st.integers(0, 3)), min_size=1, max_size=5
    )
)
def test_transfer_lines_decode_back_to_their_rows(specs: list[tuple[int, str | None, int]]) -> None:
    """Any run of transfer lines parses back to exactly its rows, so the encoding is injective."""
    transfers = [
        _transfer(
            transfer_id,
            metadata=metadata,
            timestamp=1_000 + index,
            pending_id=transfer_id if kind == 1 else 0,
            reverses_id=transfer_id if kind == 2 else 0,
            flags=kind,
        )
        for index, (transfer_id, metadata, kind) in enumerate(specs)
    ]
    rows = [transfer_to_row(transfer) for transfer in transfers]
    assert _decode(_encode(transfers)) == rows


BASE_LINK: dict[str, Any] = {
    "previous": bytes(32),
    "seq": 7,
    "kind": "ledger.batch",
    "first_timestamp": 100,
    "last_timestamp": 105,
    "body_digest": DIGEST,
}
LINK_CHANGES: list[tuple[str, Any]] = [
    ("previous", b"\x01" + bytes(31)),
    ("seq", 8),
    ("kind", "ledger.batcH"),
    ("kind", "ledger.batch|100"),
    ("first_timestamp", 101),
    ("last_timestamp", 106),
    ("body_digest", bytes(reversed(DIGEST))),
]


@pytest.mark.parametrize(
    ("field", "value"),
    LINK_CHANGES,
    ids=[f"{field}={value!r}"[:40] for field, value in LINK_CHANGES],
)
def test_link_hash_changes_when_any_input_changes(field: str, value: Any) -> None:
    """Changing any one input of `link_hash` changes the hash."""
    changed = {**BASE_LINK, field: value}
    assert journal.link_hash(**changed) != journal.link_hash(**BASE_LINK)


def test_link_hash_header_fields_do_not_run_into_each_other() -> None:
    """Moving digits across the `|` separators of the header gives different hashes."""
    digest = DIGEST
    variants = {
        journal.link_hash(bytes(32), 1, "k", 23, 45, digest),
        journal.link_hash(bytes(32), 12, "k", 3, 45, digest),
        journal.link_hash(bytes(32), 1, "k", 234, 5, digest),
        journal.link_hash(bytes(32), 1, "k|23", 45, 45, digest),
        journal.link_hash(bytes(32), 1, "k|2", 3, 45, digest),
    }
    assert len(variants) == 5


def test_next_record_links_to_the_head() -> None:
    """`next_record` takes the next sequence number and chains its hash to the head's."""
    head = journal.ChainHead(last_timestamp=100, seq=4, hash=b"\x07" * 32)
    record = journal.next_record(head, "ledger.batch", 101, 103, DIGEST)
    assert (record.seq, record.first_timestamp, record.last_timestamp) == (5, 101, 103)
    assert record.previous_hash == head.hash
    assert record.body_hash == DIGEST
    assert record.hash == journal.link_hash(head.hash, 5, "ledger.batch", 101, 103, DIGEST)


@pytest.mark.parametrize(
    ("first", "last"),
    [(100, 103), (102, 103), (50, 60), (101, 100)],
    ids=["overlaps-head", "gap-after-head", "before-head", "empty-range"],
)
def test_next_record_refuses_non_contiguous_ranges(first: int, last: int) -> None:
    """A record must start right after the head and cover at least one timestamp."""
    head = journal.ChainHead(last_timestamp=100, seq=4, hash=b"\x07" * 32)
    with pytest.raises(AssertionError):
        journal.next_record(head, "ledger.batch", first, last, DIGEST)


def test_single_timestamp_record_is_allowed() -> None:
    """A record covering exactly one timestamp (first == last) is contiguous and accepted."""
    head = journal.ChainHead(last_timestamp=100, seq=0, hash=journal.GENESIS_HASH)
    record = journal.next_record(head, "ledger.batch", 101, 101, DIGEST)
    assert record.seq == 1
    assert record.previous_hash == journal.GENESIS_HASH


def test_chain_change_propagates_to_every_later_record() -> None:
    """Changing one record's body changes its hash and the hash of every record after it."""

    def build(digests: list[bytes]) -> list[journal.ChainRecord]:
        head = journal.ChainHead(0, 0, journal.GENESIS_HASH)
        records = []
        for index, digest in enumerate(digests):
            record = journal.next_record(head, "ledger.batch", index * 2 + 1, index * 2 + 2, digest)
            records.append(record)
            head = journal.ChainHead(record.last_timestamp, record.seq, record.hash)
        return records

    digests = [bytes([n]) * 32 for n in range(4)]
    original = build(digests)
    tampered = build([digests[0], b"\xff" * 32, digests[2], digests[3]])
    assert original[0].hash == tampered[0].hash
    assert all(a.hash != b.hash for a, b in zip(original[1:], tampered[1:], strict=True))
    for earlier, later in itertools.pairwise(original):
        assert later.previous_hash == earlier.hash


def _id(value: int) -> bytes:
    return value.to_bytes(16, "big")


def test_plan_lines_order_a_post_before_its_resolution() -> None:
    """Rows sharing a timestamp come transfer, resolution, snapshot, whatever the input order."""
    post = _transfer(20, timestamp=10, flags=TransferFlags.POST_PENDING, pending_id=19)
    later = _transfer(21, timestamp=11)
    resolutions = [(_id(19), Resolution.POSTED, 10), (_id(18), Resolution.EXPIRED, 9)]
    snapshots = [(_id(2), 10, 0, 0, 0, 5), (_id(1), 10, 0, 5, 0, 0)]
    lines = journal.transfer_plan_lines(
        [transfer_to_row(later), transfer_to_row(post)], resolutions, snapshots
    )
    assert lines == [
        journal.resolution_line(_id(18), Resolution.EXPIRED, 9),
        journal.transfer_row_line(transfer_to_row(post)),
        journal.resolution_line(_id(19), Resolution.POSTED, 10),
        journal.snapshot_line(snapshots[1]),
        journal.snapshot_line(snapshots[0]),
        journal.transfer_row_line(transfer_to_row(later)),
    ]


def test_plan_lines_without_resolutions_keep_transfer_order() -> None:
    """Transfers alone (the fast path) are encoded in the order the engine created them."""
    transfers = [_transfer(30 + n, timestamp=100 + n) for n in range(3)]
    rows = [transfer_to_row(transfer) for transfer in transfers]
    assert journal.transfer_plan_lines(rows, [], []) == [
        journal.transfer_row_line(row) for row in rows
    ]


def test_plan_lines_of_a_real_engine_plan() -> None:
    """An engine plan with an expiry and a post is encoded expiry, post, then post's resolution."""
    accounts = {
        1: Account(1, "USD", 1, 0, "", 1, debits_pending=8),
        2: Account(2, "USD", 1, AccountFlags.HISTORY, "", 1, credits_pending=8),
    }
    due = Transfer(30, 1, 2, 5, "USD", 1, TransferFlags.PENDING, 0, 0, 1, None, 1_000)
    held = Transfer(31, 1, 2, 3, "USD", 1, TransferFlags.PENDING, 0, 0, 0, None, 1_001)
    view = LedgerView(accounts=accounts, transfers={30: due, 31: held})
    plan = plan_transfers(
        [NewTransfer(32, pending_id=31, flags=TransferFlags.POST_PENDING)],
        view,
        5_000_000_000,
        expiring=[due],
    )
    assert plan.results == [0]
    # Converted to stored rows exactly as `LedgerWrite._write_transfer_plan` does.
    rows = [transfer_to_row(transfer) for transfer in plan.transfers]
    resolutions = [
        (_id(pending_id), kind, timestamp) for pending_id, kind, timestamp in plan.resolutions
    ]
    snapshots = [(_id(s[0]), *s[1:]) for s in plan.snapshots]
    lines = journal.transfer_plan_lines(rows, resolutions, snapshots)
    assert [line[0] for line in lines] == ["R", "B", "T", "R", "B"]
    assert lines[0].endswith("|expired\n") and lines[3].endswith("|posted\n")
    assert lines[1].startswith("B|5000000000|") and lines[4].startswith("B|5000000001|")
    assert plan.transfers[0].timestamp == 5_000_000_001
