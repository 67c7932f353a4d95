"""An in-memory credit bureau for tests, demos and benchmarks, deterministic and bounded.

`SimulatedBureau` implements `tianping.lending.bureau.CreditBureau`:

* `report` runs `validate_report` (a bureau refuses prohibited and personal fields on receipt,
  whatever the sender checked), is idempotent on `report_id` (a resend is acknowledged as a
  duplicate, a different report under a used id is `bureau_report_conflict`), and keeps, per
  person and reporting institution, the reports in order of `reported_at`;
* `query` verifies the consent token (`ConsentTokenVerifier`), then answers from each
  institution's latest report made at or before `now`: integer fields are summed across
  institutions, because each institution reports its own relationship with the person (its
  balances, its credit lines, the payments it saw); a text field takes the value of the most
  recent report carrying it (ties broken by reporter id). `source_count` is the number of
  institutions aggregated and `as_of` the time of the newest report used;
* every query is logged, answered or refused, with lender, purpose, token, outcome and time, in
  the subject's log; `query_log` returns it newest first, which is what a person sees when they
  ask who looked at their credit data (C2, PIPL Art. 45).

Bounded state (every cap is a named constant below): at most `SUBJECTS_MAX` people with
reports, `SOURCES_PER_SUBJECT_MAX` institutions per person and `REPORT_HISTORY_PER_SOURCE_MAX`
reports per institution and person (the oldest by `reported_at` is dropped); at most
`REPORT_IDS_REMEMBERED_MAX` report ids are remembered for idempotency (the oldest forgotten
first); each log holds the subject's latest `QUERY_LOG_PER_SUBJECT_MAX` entries and at most
`LOGGED_SUBJECTS_MAX` subjects have a log (the least recently written is dropped, so queries
for made-up subjects cannot grow memory without bound). The clock (`clock()`, unix seconds) is
injected and stamps acknowledgements; queries use the `now` they are given. There is no
randomness, so the same calls always give the same results.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, get_args

from tianping.lending.bureau import (
    QUERY_LOG_LIMIT_MAX,
    BureauCapacityReached,
    BureauError,
    BureauInputInvalid,
    BureauQuery,
    BureauReport,
    BureauResponse,
    ConsentTokenVerifier,
    FieldValue,
    QueryLogEntry,
    QueryOutcome,
    ReportAck,
    ReportConflict,
    SubjectUnknown,
    validate_report,
)

__all__ = [
    "LOGGED_SUBJECTS_MAX",
    "QUERY_LOG_PER_SUBJECT_MAX",
    "REPORT_HISTORY_PER_SOURCE_MAX",
    "REPORT_IDS_REMEMBERED_MAX",
    "SOURCES_PER_SUBJECT_MAX",
    "SUBJECTS_MAX",
    "SimulatedBureau",
]

# People the simulator holds reports on; a benchmark population fits well within it.
SUBJECTS_MAX: Final = 200_000

# Reporting institutions per person: a person rarely has more than a handful of lenders and
# payment providers; 32 is generous and bounds the work of aggregating one answer.
SOURCES_PER_SUBJECT_MAX: Final = 32

# Reports kept per person and institution: two years of monthly reporting.
REPORT_HISTORY_PER_SOURCE_MAX: Final = 24

# Report ids remembered for idempotency; a resend older than this many reports is stored again
# as new, which a simulator can accept (a real bureau keeps them for its retention period).
REPORT_IDS_REMEMBERED_MAX: Final = 1_000_000

# Log entries kept per person, and people with a log.
QUERY_LOG_PER_SUBJECT_MAX: Final = 1_000
LOGGED_SUBJECTS_MAX: Final = 200_000


# Refusal codes as log outcomes; `get_args` keeps the table in step with the Literal.
_OUTCOME_BY_CODE: Final[Mapping[str, QueryOutcome]] = {
    outcome: outcome for outcome in get_args(QueryOutcome)
}


@dataclass(slots=True)
class _SubjectReports:
    """One person's reports, per reporting institution, each list sorted by `reported_at`."""

    by_source: dict[str, list[BureauReport]] = field(default_factory=dict)


def _order_key(report: BureauReport) -> tuple[int, str]:
    return (report.reported_at, report.report_id)


class SimulatedBureau:
    """A deterministic in-memory `CreditBureau`; see the module docstring."""

    def __init__(self, clock: Callable[[], int], key: bytes) -> None:
        self._clock = clock
        self._verifier = ConsentTokenVerifier(key)
        self._subjects: dict[str, _SubjectReports] = {}
        self._report_fingerprints: OrderedDict[str, str] = OrderedDict()
        self._logs: OrderedDict[str, deque[QueryLogEntry]] = OrderedDict()
        self._sequence = 0

    def __repr__(self) -> str:
        return f"SimulatedBureau(subjects={len(self._subjects)}, key=<hidden>)"

    # ----------------------------------------------------------------------- reporting

    def report(self, report: BureauReport) -> ReportAck:
        """Validate and store a report; see the module docstring for idempotency and caps."""
        validate_report(report)
        accepted_at = self._clock()
        fingerprint = report.fingerprint()
        known = self._report_fingerprints.get(report.report_id)
        if known is not None:
            if known != fingerprint:
                raise ReportConflict("the report id was already used for a different report")
            return ReportAck(report.report_id, report.subject, accepted_at, duplicate=True)
        reports = self._subjects.get(report.subject)
        if reports is None:
            if len(self._subjects) >= SUBJECTS_MAX:
                raise BureauCapacityReached(f"the bureau holds at most {SUBJECTS_MAX} people")
            reports = _SubjectReports()
        history = reports.by_source.get(report.reporter_id)
        if history is None:
            if len(reports.by_source) >= SOURCES_PER_SUBJECT_MAX:
                raise BureauCapacityReached(
                    f"a person has reports from at most {SOURCES_PER_SUBJECT_MAX} institutions"
                )
            history = []
        # Insert in order of (reported_at, report_id), so a late-arriving older report lands in
        # the history without displacing the latest one, and equal times order deterministically.
        key = (report.reported_at, report.report_id)
        position = len(history)
        while position > 0 and _order_key(history[position - 1]) > key:
            position -= 1
        history.insert(position, report)
        if len(history) > REPORT_HISTORY_PER_SOURCE_MAX:
            del history[0]
        reports.by_source[report.reporter_id] = history
        self._subjects[report.subject] = reports
        self._report_fingerprints[report.report_id] = fingerprint
        if len(self._report_fingerprints) > REPORT_IDS_REMEMBERED_MAX:
            self._report_fingerprints.popitem(last=False)
        return ReportAck(report.report_id, report.subject, accepted_at, duplicate=False)

    # ----------------------------------------------------------------------- querying

    def query(self, query: BureauQuery, now: int) -> BureauResponse:
        """Verify the token and answer, logging the query whatever its outcome."""
        try:
            self._verifier.check(query, now)
            response = self._answer(query, now)
        except BureauInputInvalid:
            # A malformed `now` is the caller's bug, not a lender's query: nothing to log.
            raise
        except BureauError as refusal:
            self._log(query, _OUTCOME_BY_CODE[refusal.code], now)
            raise
        self._log(query, "answered", now)
        return response

    def _answer(self, query: BureauQuery, now: int) -> BureauResponse:
        reports = self._subjects.get(query.subject)
        latest: list[BureauReport] = []
        if reports is not None:
            for history in reports.by_source.values():
                visible = [report for report in history if report.reported_at <= now]
                if visible:
                    latest.append(visible[-1])
        if not latest:
            raise SubjectUnknown("the bureau holds no report on this person")
        integer_fields: dict[str, int] = {}
        text_fields: dict[str, tuple[int, str, str]] = {}
        for report in latest:
            for name, value in report.data.items():
                if isinstance(value, int):
                    integer_fields[name] = integer_fields.get(name, 0) + value
                else:
                    candidate = (report.reported_at, report.reporter_id, value)
                    current = text_fields.get(name)
                    if current is None or candidate[:2] > current[:2]:
                        text_fields[name] = candidate
        fields: dict[str, FieldValue] = dict(integer_fields)
        for name, (_, _, text) in text_fields.items():
            # A field reported as a number by one institution and as text by another is a
            # reporting error; the number wins so that sums stay meaningful.
            fields.setdefault(name, text)
        return BureauResponse(
            query_id=query.query_id,
            subject=query.subject,
            as_of=max(report.reported_at for report in latest),
            fields=MappingProxyType(dict(sorted(fields.items()))),
            source_count=len(latest),
        )

    # ----------------------------------------------------------------------- the log

    def _log(self, query: BureauQuery, outcome: QueryOutcome, now: int) -> None:
        self._sequence += 1
        entry = QueryLogEntry(
            sequence=self._sequence,
            query_id=query.query_id,
            subject=query.subject,
            lender_id=query.lender_id,
            purpose=query.purpose,
            token_id=query.token.token_id,
            outcome=outcome,
            at=now,
        )
        log = self._logs.get(query.subject)
        if log is None:
            log = deque(maxlen=QUERY_LOG_PER_SUBJECT_MAX)
            self._logs[query.subject] = log
            if len(self._logs) > LOGGED_SUBJECTS_MAX:
                self._logs.popitem(last=False)
        else:
            self._logs.move_to_end(query.subject)
        log.append(entry)

    def query_log(self, subject: str, limit: int) -> list[QueryLogEntry]:
        """The subject's logged queries, newest first, at most `limit` of them."""
        if type(limit) is not int or not 1 <= limit <= QUERY_LOG_LIMIT_MAX:
            raise BureauInputInvalid("limit", f"must be an int from 1 to {QUERY_LOG_LIMIT_MAX}")
        log = self._logs.get(subject)
        if log is None:
            return []
        newest_first = reversed(log)
        return [entry for _, entry in zip(range(limit), newest_first, strict=False)]
