"""Verification: the ledger's invariants (`tianping ledger check`) and the hash chain
(`tianping audit verify`).

Both functions return every finding rather than stopping at the first, because an auditor wants
the whole list; `verify_chain` also names the first broken link, which is where an investigation
starts. Both read one consistent snapshot of the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tianping.ledger import journal
from tianping.ledger.adapters.store import LedgerStore

_FINDINGS_MAX = 100
_RECORDS_PER_PAGE = 500

# Other contexts whose chain records are not stored inline register how to rebuild their
# canonical body here (kind -> function of (store, record) -> body bytes).
BodySource = Callable[[LedgerStore, journal.ChainRecord], bytes]
BODY_SOURCES: dict[str, BodySource] = {}


def check_invariants(store: LedgerStore) -> list[str]:
    """Every way in which the stored ledger breaks double entry or disagrees with its journal."""
    findings: list[str] = []
    for (
        currency,
        debits_pending,
        credits_pending,
        debits_posted,
        credits_posted,
    ) in store.balance_totals():
        if debits_pending != credits_pending:
            findings.append(
                f"{currency}: pending debits {debits_pending} differ from pending "
                f"credits {credits_pending}"
            )
        if debits_posted != credits_posted:
            findings.append(
                f"{currency}: posted debits {debits_posted} differ from posted "
                f"credits {credits_posted}"
            )
    for account_id, stored_d, journal_d, stored_c, journal_c in store.posted_mismatches(
        _FINDINGS_MAX
    ):
        findings.append(
            f"account {account_id}: posted balances (debits {stored_d}, credits "
            f"{stored_c}) differ from its transfers (debits {journal_d}, credits "
            f"{journal_c})"
        )
    for account_id, stored_d, open_d, stored_c, open_c in store.pending_mismatches(_FINDINGS_MAX):
        findings.append(
            f"account {account_id}: pending balances (debits {stored_d}, credits "
            f"{stored_c}) differ from its open holds (debits {open_d}, credits "
            f"{open_c})"
        )
    unknown = store.transfers_with_unknown_accounts()
    if unknown:
        findings.append(f"{unknown} transfer(s) name an account that does not exist")
    for account_id in store.closed_flags_without_events()[:_FINDINGS_MAX]:
        findings.append(
            f"account {account_id}: its closed flag disagrees with its last "
            "journaled close/reopen event"
        )
    wrong = store.wrong_expiries()
    if wrong:
        findings.append(
            f"{wrong} open hold(s) have an expiry other than their timestamp plus their timeout"
        )
    lost, doubled = store.open_pending_inconsistencies()
    if lost:
        findings.append(f"{lost} pending transfer(s) are neither open nor resolved")
    if doubled:
        findings.append(f"{doubled} pending transfer(s) are both open and resolved")
    head = store.read_head()
    latest = store.latest_journal_timestamp()
    if latest > head.last_timestamp:
        findings.append(
            f"journal rows exist at ledger time {latest}, after the head's {head.last_timestamp}"
        )
    return findings


@dataclass(slots=True)
class ChainReport:
    """The outcome of `verify_chain`."""

    records: int = 0
    head_seq: int = 0
    head_hash: str = ""
    breaks: list[journal.ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> journal.ChainBreak | None:
        return self.breaks[0] if self.breaks else None


def verify_chain(store: LedgerStore, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Recompute the whole chain from the stored rows and compare it link by link."""
    report = ChainReport()
    previous_hash = journal.GENESIS_HASH
    expected_seq = 1
    expected_first = 1
    seq_after = 0
    while True:
        records = store.chain_records(seq_after, _RECORDS_PER_PAGE)
        if not records:
            break
        # One range query per table per page of records, rather than per record, keeps
        # verification a linear scan however small the batches were.
        rows = store.journal_rows(records[0].first_timestamp, records[-1].last_timestamp)
        lines = journal.ordered_lines(
            rows["accounts"],
            rows["account_events"],
            rows["transfers"],
            rows["resolutions"],
            rows["snapshots"],
        )
        position = 0
        for record in records:
            start = position
            while position < len(lines) and lines[position][0] <= record.last_timestamp:
                position += 1
            _verify_record(
                record,
                [line for _, line in lines[start:position]],
                store,
                previous_hash,
                expected_seq,
                expected_first,
                report,
            )
            previous_hash = record.hash
            expected_seq = record.seq + 1
            expected_first = record.last_timestamp + 1
            report.records += 1
            report.head_seq = record.seq
        seq_after = records[-1].seq
        if progress is not None:
            progress(report.records)
        if len(report.breaks) >= _FINDINGS_MAX:
            return report
    report.head_hash = previous_hash.hex()
    latest = store.latest_journal_timestamp()
    if latest > expected_first - 1:
        report.breaks.append(
            journal.ChainBreak(
                report.head_seq + 1,
                f"journal rows at ledger time {latest} are not covered by any chain record",
            )
        )
    return report


def _verify_record(
    record: journal.ChainRecord,
    lines: list[str],
    store: LedgerStore,
    previous_hash: bytes,
    expected_seq: int,
    expected_first: int,
    report: ChainReport,
) -> None:
    seq = record.seq

    def broken(reason: str) -> None:
        report.breaks.append(journal.ChainBreak(seq, reason))

    if seq != expected_seq:
        broken(f"sequence gap: expected record {expected_seq}, found {seq}")
    if record.previous_hash != previous_hash:
        broken("previous_hash does not match the hash of the record before it")
    if record.first_timestamp != expected_first:
        broken(f"range starts at {record.first_timestamp}, expected {expected_first}")
    if record.kind == journal.LEDGER_BATCH_KIND:
        digest = journal.body_hash(lines)
    else:
        if lines:
            broken(f"ledger rows lie inside the range of a {record.kind!r} record")
        source = BODY_SOURCES.get(record.kind)
        if source is not None:
            body = source(store, record)
        elif record.body is not None:
            body = record.body
        else:
            body = b""
            broken(f"record of kind {record.kind!r} has no stored body and no body source")
        digest = journal.inline_body_hash(body)
    if digest != record.body_hash:
        broken("body hash does not match the rows it covers (a row was changed, added or removed)")
    recomputed = journal.link_hash(
        previous_hash,
        seq,
        record.kind,
        record.first_timestamp,
        record.last_timestamp,
        record.body_hash,
    )
    if recomputed != record.hash:
        broken("record hash does not match its contents")
