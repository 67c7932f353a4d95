"""Suspicious-pattern detectors over a stream of transfers seen as a time-stamped graph.

Each detector looks for one typology that AML guidance names again and again and returns
`Alert` records for an operator to review; none of them decides that anything is suspicious
(regulation.md A3 leaves that to the institution's own analysis). The typologies are:

* structuring: several transfers, each just under a reporting threshold, within a short
  window, that together exceed it (splitting to stay below the large-value report);
* rapid in-and-out: money received and mostly sent on again within a short window (a
  pass-through or "mule" account);
* fan-in and fan-out: many distinct counterparties paying into, or paid from, one account
  within a window (collection and dispersal stages of layering); a merchant, paid by many
  by nature, is judged against its own normal and the signature of a collection run through
  its code instead;
* cycles: money returning to where it started through 2 to k hops within a window, each hop
  passing on roughly what the previous one carried.

Every parameter is named, has a default and a hard limit, and is checked on construction. The
detectors are hand-written with the standard library because the package must stay pure and
the algorithms are small (sorting, sliding windows, a bounded depth-first search); a graph
library would add a dependency without removing much code, and none bounds its cycle search by
time windows and explored-edge budgets as is needed here.

Scores are integers from 0 to 1000 (per mille), never floats, because this package is a money
path and floats are banned from it; each detector documents how it computes its score.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import DEFAULT_UTC_OFFSET_MINUTES, AmlTransaction

__all__ = [
    "ALERTS_PER_DETECTOR_MAX",
    "CYCLE_GROWTH_PERMILLE_LIMIT",
    "CYCLE_HOPS_LIMIT",
    "FAN_IN_DEFAULTS",
    "GRAPH_TRANSFERS_MAX",
    "MERCHANT_FAN_IN_DEFAULTS",
    "SCORE_MAX",
    "WINDOW_SECONDS_MAX",
    "Alert",
    "AlertKind",
    "CycleParameters",
    "CycleSearch",
    "DetectorSuite",
    "FanParameters",
    "MerchantFanInParameters",
    "RapidInOutParameters",
    "StructuringParameters",
    "Transfer",
    "TransferGraph",
    "detect_cycles",
    "detect_fan_in",
    "detect_fan_out",
    "detect_rapid_in_out",
    "detect_structuring",
    "triage_order",
]

AlertKind = Literal["structuring", "rapid_in_out", "fan_in", "fan_out", "cycle"]

SCORE_MAX: Final = 1000
# A graph holds at most this many transfers; 120,000 (one AMLSim scenario) take about a second
# to build, so this bound keeps a call within a minute and a few hundred megabytes.
GRAPH_TRANSFERS_MAX: Final = 2_000_000
# A detector stops adding alerts at this count, so a mis-set parameter floods no queue.
ALERTS_PER_DETECTOR_MAX: Final = 100_000
# No window is longer than 90 days: patterns spread wider than a quarter are not "rapid", and
# long windows make the sliding-window and cycle searches quadratic in practice.
WINDOW_SECONDS_MAX: Final = 90 * 86_400
# Cycles of more than ten hops are not searched: the search grows exponentially with depth.
CYCLE_HOPS_LIMIT: Final = 10
# Counterparty-count thresholds above this are certainly a unit mistake.
COUNTERPARTIES_LIMIT: Final = 10_000
# A merchant's baseline looks back at most this many windows (a year of days): older trade
# says little about today's, and the bound keeps the per-window median cheap.
MERCHANT_HISTORY_WINDOWS_LIMIT: Final = 366
PERMILLE: Final = 1000
# A cycle hop may carry at most this many times (per mille) the previous hop's amount: a
# bound above 100 times is certainly a unit mistake.
CYCLE_GROWTH_PERMILLE_LIMIT: Final = 100_000
# A fan's amount spread above 100 times is no similarity check at all.
FAN_SPREAD_PERMILLE_LIMIT: Final = 100_000
# With an amount spread, the fan search examines each amount band of an account separately;
# it stops examining an account's bands after this many transfers (keeping the widest fan found
# so far), so a hub with hundreds of thousands of payers stays linear in practice.
FAN_BAND_TRANSFERS_PER_ACCOUNT_MAX: Final = 1_000_000
# The explored-edge budgets of the cycle search may not exceed these.
CYCLE_EDGES_PER_START_LIMIT: Final = 1_000_000
CYCLE_EDGES_TOTAL_LIMIT: Final = 100_000_000
# An alert lists at most this many transaction ids (its strongest window rarely needs more).
ALERT_TRANSACTIONS_MAX: Final = 1_000


@dataclass(frozen=True, slots=True)
class Alert:
    """A pattern worth an operator's look: which accounts and transactions, how strong, why.

    `account_ids[0]` is the account the alert is about (the structuring, pass-through or fan
    account); the others are its counterparties in the pattern. In a cycle every account is
    equally involved and they are listed in the order the money moved. `score` runs from 0 to
    1000; `reason` is a sentence with counts and ratios, never names.
    """

    @property
    def subject_ids(self) -> tuple[str, ...]:
        """The accounts the alert is about: all of a cycle, the focal account otherwise.

        Counterparties of a fan or a pass-through account are often innocent payers or
        payees, so case work and account-level scoring start from the subjects.
        """
        return self.account_ids if self.kind == "cycle" else self.account_ids[:1]

    kind: AlertKind
    account_ids: tuple[str, ...]
    transaction_ids: tuple[str, ...]
    score: int
    reason: str


class Transfer(NamedTuple):
    """One directed movement of money between two accounts (a graph edge).

    A named tuple rather than a dataclass because detectors sort and scan hundreds of
    thousands of them, and tuples are the cheapest records Python has.
    """

    at: int
    amount_minor: int
    source: str
    target: str
    transaction_id: str


def _check_int(value: object, name: str, low: int, high: int) -> None:
    """Refuse a parameter that is not an int within [low, high]."""
    if type(value) is not int or not low <= value <= high:
        raise AmlError("invalid_detector_parameter", f"{name} must be an int from {low} to {high}")


@dataclass(frozen=True, slots=True)
class TransferGraph:
    """Transfers in one currency, indexed by account in time order, shared by all detectors.

    Built once with `from_transactions`; each `AmlTransaction` becomes the edge
    customer -> counterparty ("out") or counterparty -> customer ("in"). When both parties'
    views of a transfer are present they carry the same transaction id and the edge is kept
    once. Transactions in other currencies are left out (and counted), because adding amounts
    across currencies needs a rate.

    `merchants` names the acquiring accounts: accounts that receive card or QR payments for
    goods and services, whose many distinct payers are their business, not a pattern. Fan-in
    judges them against their own normal (`MerchantFanInParameters`). The caller knows which
    accounts these are (a payment row says whether its payee is a merchant); a graph built
    without them treats every account alike, as before merchants were known.
    """

    currency: str
    transfers: tuple[Transfer, ...]
    outgoing: dict[str, list[Transfer]] = field(repr=False)
    incoming: dict[str, list[Transfer]] = field(repr=False)
    other_currency_count: int = 0
    merchants: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_transactions(
        cls,
        transactions: Iterable[AmlTransaction],
        currency: str,
        *,
        merchants: Iterable[str] = (),
    ) -> TransferGraph:
        """Index the transactions in `currency` by source and by target account, by time;
        `merchants` are the acquiring accounts among them."""
        seen: set[str] = set()
        transfers: list[Transfer] = []
        other_currency = 0
        for transaction in transactions:
            if transaction.currency != currency:
                other_currency += 1
                continue
            if transaction.transaction_id in seen:
                continue
            seen.add(transaction.transaction_id)
            if len(transfers) >= GRAPH_TRANSFERS_MAX:
                raise AmlError(
                    "too_many_transactions", f"a graph holds at most {GRAPH_TRANSFERS_MAX}"
                )
            if transaction.direction == "out":
                source, target = transaction.customer_id, transaction.counterparty_id
            else:
                source, target = transaction.counterparty_id, transaction.customer_id
            transfers.append(
                Transfer(
                    transaction.at,
                    transaction.amount_minor,
                    source,
                    target,
                    transaction.transaction_id,
                )
            )
        return cls.from_transfers(transfers, currency, other_currency, merchants=merchants)

    @classmethod
    def from_transfers(
        cls,
        transfers: Iterable[Transfer],
        currency: str,
        other_currency_count: int = 0,
        *,
        merchants: Iterable[str] = (),
    ) -> TransferGraph:
        """Index ready-made transfers (for callers that already hold edges)."""
        ordered = sorted(transfers, key=lambda transfer: (transfer.at, transfer.transaction_id))
        if len(ordered) > GRAPH_TRANSFERS_MAX:
            raise AmlError("too_many_transactions", f"a graph holds at most {GRAPH_TRANSFERS_MAX}")
        outgoing: dict[str, list[Transfer]] = {}
        incoming: dict[str, list[Transfer]] = {}
        for transfer in ordered:
            outgoing.setdefault(transfer.source, []).append(transfer)
            incoming.setdefault(transfer.target, []).append(transfer)
        return cls(
            currency, tuple(ordered), outgoing, incoming, other_currency_count, frozenset(merchants)
        )

    def accounts(self) -> set[str]:
        """Every account that sends or receives at least one transfer."""
        return set(self.outgoing) | set(self.incoming)


def _capped_ids(transfers: Iterable[Transfer]) -> tuple[str, ...]:
    """Transaction ids of an alert, in time order, at most `ALERT_TRANSACTIONS_MAX`."""
    ids: list[str] = []
    for transfer in transfers:
        if len(ids) == ALERT_TRANSACTIONS_MAX:
            break
        ids.append(transfer.transaction_id)
    return tuple(ids)


def _accounts(first: str, others: Iterable[str]) -> tuple[str, ...]:
    """The focal account first, then the other accounts sorted, each once."""
    rest = sorted(set(others) - {first})
    return (first, *rest)


# -- structuring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StructuringParameters:
    """Transfers "just under" `threshold_minor` means at least `near_threshold_permille` of it
    and strictly below it. An alert needs `min_transactions` of them within `window_seconds`,
    on one side of one account, whose sum reaches the threshold.

    The default threshold is the A1 cash threshold of 50,000 CNY; pass the threshold of the
    category being watched (the rules engine holds the dated values).
    """

    threshold_minor: int = 5_000_000
    near_threshold_permille: int = 900
    window_seconds: int = 86_400
    min_transactions: int = 2

    def __post_init__(self) -> None:
        _check_int(self.threshold_minor, "threshold_minor", 1, 10**15)
        _check_int(self.near_threshold_permille, "near_threshold_permille", 500, 999)
        _check_int(self.window_seconds, "window_seconds", 1, WINDOW_SECONDS_MAX)
        _check_int(self.min_transactions, "min_transactions", 2, 1_000)


def detect_structuring(
    graph: TransferGraph, parameters: StructuringParameters | None = None
) -> list[Alert]:
    """Alerts for runs of just-under-threshold transfers that together reach the threshold.

    Both sides are examined: an account sending split amounts, and one receiving them. Each
    maximal run of overlapping qualifying windows on one side of one account is one alert.
    Score: 500 for the minimum count, plus 100 per extra transfer, at most 1000.
    """
    parameters = parameters or StructuringParameters()
    threshold = parameters.threshold_minor
    # Integer arithmetic: amount * 1000 >= threshold * permille avoids any fraction.
    floor_scaled = threshold * parameters.near_threshold_permille
    alerts: list[Alert] = []
    for side, index in (("sent", graph.outgoing), ("received", graph.incoming)):
        for account in sorted(index):
            near = [
                transfer
                for transfer in index[account]
                if transfer.amount_minor < threshold
                and transfer.amount_minor * PERMILLE >= floor_scaled
            ]
            if len(near) < parameters.min_transactions:
                continue
            for run in _qualifying_runs(near, parameters):
                if len(alerts) >= ALERTS_PER_DETECTOR_MAX:
                    raise AmlError("too_many_alerts", "structuring alert limit reached")
                total = sum(transfer.amount_minor for transfer in run)
                counterparties = (
                    (transfer.target if side == "sent" else transfer.source) for transfer in run
                )
                extra = len(run) - parameters.min_transactions
                alerts.append(
                    Alert(
                        kind="structuring",
                        account_ids=_accounts(account, counterparties),
                        transaction_ids=_capped_ids(run),
                        score=min(SCORE_MAX, 500 + 100 * extra),
                        reason=(
                            f"{len(run)} transfers {side}, each "
                            f"{parameters.near_threshold_permille}-999 per mille of the "
                            f"threshold, within {parameters.window_seconds} s windows, total "
                            f"{total * PERMILLE // threshold} per mille of it"
                        ),
                    )
                )
    return alerts


def _qualifying_runs(
    near: Sequence[Transfer], parameters: StructuringParameters
) -> list[list[Transfer]]:
    """Merge every qualifying sliding window over `near` (time-ordered) into maximal runs."""
    runs: list[list[Transfer]] = []
    left = 0
    window_sum = 0
    run_start = run_end = -1
    for right, transfer in enumerate(near):
        window_sum += transfer.amount_minor
        while transfer.at - near[left].at > parameters.window_seconds:
            window_sum -= near[left].amount_minor
            left += 1
        qualifies = (
            right - left + 1 >= parameters.min_transactions
            and window_sum >= parameters.threshold_minor
        )
        if not qualifies:
            continue
        if run_end >= left:
            run_end = right
        else:
            if run_start >= 0:
                runs.append(list(near[run_start : run_end + 1]))
            run_start, run_end = left, right
    if run_start >= 0:
        runs.append(list(near[run_start : run_end + 1]))
    return runs


# -- rapid in-and-out -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RapidInOutParameters:
    """Money "passes through" an account when, in a window of `window_seconds` that opens at an
    inflow, the account sends out between `pass_through_permille` and `max_outflow_permille` of
    what it received in that window, having received at least `min_inflow_minor` from at least
    `min_inflows` transfers. The upper bound separates pass-through from an account that simply
    spends an existing balance.

    The defaults (one day, 500 to 1100 per mille) were chosen on the fit half of the AMLSim
    evaluation (benchmarks/aml_calibrate.py, best F0.5 with the outflow at most 1100 per mille:
    money passed on does not grow beyond a small tolerance, the rule the cycle bounds follow).
    """

    window_seconds: int = 86_400
    pass_through_permille: int = 500
    max_outflow_permille: int = 1_100
    min_inflow_minor: int = 1
    min_inflows: int = 2

    def __post_init__(self) -> None:
        _check_int(self.window_seconds, "window_seconds", 1, WINDOW_SECONDS_MAX)
        _check_int(self.pass_through_permille, "pass_through_permille", 1, PERMILLE)
        _check_int(self.max_outflow_permille, "max_outflow_permille", PERMILLE, 100 * PERMILLE)
        _check_int(self.min_inflow_minor, "min_inflow_minor", 1, 10**15)
        _check_int(self.min_inflows, "min_inflows", 1, 1_000)


def detect_rapid_in_out(
    graph: TransferGraph, parameters: RapidInOutParameters | None = None
) -> list[Alert]:
    """One alert per pass-through account, for its strongest window.

    Score: how closely outflow matches inflow, 1000 * min(in, out) / max(in, out).
    """
    parameters = parameters or RapidInOutParameters()
    window = parameters.window_seconds
    alerts: list[Alert] = []
    for account in sorted(graph.incoming):
        outflows = graph.outgoing.get(account)
        if not outflows:
            continue
        inflows = graph.incoming[account]
        inflow_times = [transfer.at for transfer in inflows]
        outflow_times = [transfer.at for transfer in outflows]
        inflow_sums = _prefix_sums(inflows)
        outflow_sums = _prefix_sums(outflows)
        best: tuple[int, int, int, int, int] | None = None
        for start, opening in enumerate(inflows):
            close = opening.at + window
            end = bisect.bisect_right(inflow_times, close)
            if end - start < parameters.min_inflows:
                continue
            received = inflow_sums[end] - inflow_sums[start]
            if received < parameters.min_inflow_minor:
                continue
            first_out = bisect.bisect_left(outflow_times, opening.at)
            last_out = bisect.bisect_right(outflow_times, close)
            sent = outflow_sums[last_out] - outflow_sums[first_out]
            if not (
                sent * PERMILLE >= received * parameters.pass_through_permille
                and sent * PERMILLE <= received * parameters.max_outflow_permille
            ):
                continue
            score = SCORE_MAX * min(sent, received) // max(sent, received)
            if best is None or score > best[0]:
                best = (score, start, end, first_out, last_out)
        if best is None:
            continue
        if len(alerts) >= ALERTS_PER_DETECTOR_MAX:
            raise AmlError("too_many_alerts", "rapid in-and-out alert limit reached")
        score, start, end, first_out, last_out = best
        window_in = inflows[start:end]
        window_out = outflows[first_out:last_out]
        received = inflow_sums[end] - inflow_sums[start]
        sent = outflow_sums[last_out] - outflow_sums[first_out]
        members = sorted(
            [*window_in, *window_out], key=lambda transfer: (transfer.at, transfer.transaction_id)
        )
        alerts.append(
            Alert(
                kind="rapid_in_out",
                account_ids=_accounts(
                    account,
                    [t.source for t in window_in] + [t.target for t in window_out],
                ),
                transaction_ids=_capped_ids(members),
                score=score,
                reason=(
                    f"received in {len(window_in)} transfers and sent {sent * PERMILLE // received}"
                    f" per mille of it on in {len(window_out)} transfers within {window} s"
                ),
            )
        )
    return alerts


def _prefix_sums(transfers: Sequence[Transfer]) -> list[int]:
    """Running totals with a leading zero, so any window's sum is one subtraction."""
    sums = [0]
    for transfer in transfers:
        sums.append(sums[-1] + transfer.amount_minor)
    return sums


# -- fan-in and fan-out ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FanParameters:
    """A fan needs at least `min_counterparties` distinct counterparties on one side of one
    account within `window_seconds`, their transfers' amounts within `max_amount_spread_permille`
    of each other (the largest at most that many per mille of the smallest; 0 switches the check
    off).

    The amount check is meant to separate the collection or dispersal stage of layering, where
    many accounts move similar sums in a short time, from ordinary busy accounts (a shop, a
    person splitting bills), whose counterparties pay whatever they owe. It is off by default:
    on the AMLSim fit half it helped only at low counterparty counts, and the best setting with
    it (F0.5 0.236) scored below the best without it (0.240; benchmarks/RESULTS.md,
    2026-11-27). The defaults here (7 days, 4 counterparties) are fan-out's; fan-in's default
    in `DetectorSuite` asks for 6, which scored best for fan-in on the same fit half.
    """

    window_seconds: int = 7 * 86_400
    min_counterparties: int = 4
    max_amount_spread_permille: int = 0

    def __post_init__(self) -> None:
        _check_int(self.window_seconds, "window_seconds", 1, WINDOW_SECONDS_MAX)
        _check_int(self.min_counterparties, "min_counterparties", 2, COUNTERPARTIES_LIMIT)
        if self.max_amount_spread_permille != 0:
            _check_int(
                self.max_amount_spread_permille,
                "max_amount_spread_permille (or 0 for no check)",
                PERMILLE,
                FAN_SPREAD_PERMILLE_LIMIT,
            )


@dataclass(frozen=True, slots=True)
class MerchantFanInParameters:
    """Fan-in for merchant (acquiring) accounts, which have many distinct payers by nature.

    A merchant alerts on either of two rules, each checked against what acquiring explains:

    * surge: in one window (`window_seconds`, aligned to local midnight at
      `utc_offset_minutes`, so one-day windows are calendar days), its distinct payers exceed
      `surge_permille` of the median of its distinct payers per window over the earlier
      windows of the graph (at most `max_history_windows` of them, windows without payments
      counting as 0), and number at least `min_payers`. A window with fewer than
      `min_history_windows` earlier windows in the graph has no baseline and is not judged by
      this rule: a merchant's normal cannot be told from a few hours of its business.
    * new-payer burst: at least `burst_min_payers` distinct payers, each first seen in the
      graph at most `burst_window_seconds` before its payment, each paying from
      `burst_near_threshold_permille` per mille of `burst_threshold_minor` up to just under
      it, all within `burst_window_seconds`. This is the collection stage run through a
      merchant's code: many fresh accounts each paying the most a limit lets through. The
      band is narrow, so the amounts are near-identical by construction.

    Defaults and why:

    * one-day windows, local time UTC+8 (the business day the scan reads): a merchant's trade
      runs in a daily rhythm, and shorter windows measure the hour of day, not the merchant.
    * `surge_permille` 3000: a steady merchant's daily count of distinct payers varies like a
      count of independent arrivals plus a weekly cycle (a restaurant's weekend may double its
      weekday); three times the median is beyond both for any merchant above the floor, while
      a collection stage that brings a week's payers in one day clears it.
    * `min_payers` 12: twice the distinct payers at which a person's fan-in alerts
      (`FAN_IN_DEFAULTS`); a small shop going from 2 payers to 7 is a market day, not a
      pattern. The baseline may be 0 (a merchant idle until now): then the floor decides.
    * `min_history_windows` 3 and `max_history_windows` 28: a median of three windows already
      ignores one odd day; four weeks of days cover the weekly cycle four times and keep the
      baseline about the merchant's present business.
    * `burst_threshold_minor` 50,000 (500.00 CNY): the daily cap on a customer's static-QR
      (grade D) payments, `payments.qr_daily_cap_grade_d_static` in the rulebook (PBoC Yinfa
      [2017] No. 296), the limit a collection through a merchant's printed code runs into; pass
      another threshold if another limit is the one being skirted.
    * `burst_near_threshold_permille` 950: amounts from 95 % of the threshold to just under it
      (475.00 to 499.99 CNY), within 5.3 % of each other.
    * `burst_window_seconds` one day (the cap is daily), and `burst_min_payers` 6: the count
      at which a person's fan-in alerts, applied only to the payments that carry the
      signature, so a merchant is held to the person's standard on exactly the traffic
      acquiring does not explain.

    These are reasoned starting points, not calibrated ones: AMLSim has no merchants.
    """

    window_seconds: int = 86_400
    utc_offset_minutes: int = DEFAULT_UTC_OFFSET_MINUTES
    surge_permille: int = 3_000
    min_payers: int = 12
    min_history_windows: int = 3
    max_history_windows: int = 28
    burst_threshold_minor: int = 50_000
    burst_near_threshold_permille: int = 950
    burst_window_seconds: int = 86_400
    burst_min_payers: int = 6

    def __post_init__(self) -> None:
        # Windows shorter than an hour would make the baseline a measure of minutes of noise.
        _check_int(self.window_seconds, "window_seconds", 3_600, WINDOW_SECONDS_MAX)
        _check_int(self.utc_offset_minutes, "utc_offset_minutes", -12 * 60, 14 * 60)
        # Below one and a half times the median, ordinary day-to-day variation would alert;
        # above a hundred times, the baseline no longer matters and only the floor decides.
        _check_int(self.surge_permille, "surge_permille", 1_500, 100 * PERMILLE)
        _check_int(self.min_payers, "min_payers", 2, COUNTERPARTIES_LIMIT)
        _check_int(
            self.max_history_windows, "max_history_windows", 1, MERCHANT_HISTORY_WINDOWS_LIMIT
        )
        _check_int(self.min_history_windows, "min_history_windows", 1, self.max_history_windows)
        _check_int(self.burst_threshold_minor, "burst_threshold_minor", 1, 10**15)
        _check_int(self.burst_near_threshold_permille, "burst_near_threshold_permille", 500, 999)
        _check_int(self.burst_window_seconds, "burst_window_seconds", 1, WINDOW_SECONDS_MAX)
        _check_int(self.burst_min_payers, "burst_min_payers", 2, COUNTERPARTIES_LIMIT)


MERCHANT_FAN_IN_DEFAULTS: Final = MerchantFanInParameters()


def detect_fan_in(
    graph: TransferGraph,
    parameters: FanParameters | None = None,
    merchant_parameters: MerchantFanInParameters | None = MERCHANT_FAN_IN_DEFAULTS,
) -> list[Alert]:
    """One alert per account paid by many distinct sources within a window (its best window).

    Score: 1000 * distinct / (2 * min_counterparties), at most 1000, so twice the minimum
    scores full marks.

    The graph's merchants are judged by `merchant_parameters` instead (see
    `MerchantFanInParameters`; their alerts keep the kind "fan_in" and their reason starts
    with "merchant (acquiring) account"); `None` judges them like every other account. A graph
    without merchants gets exactly the alerts it got before merchants were known. Alerts come
    in the order of their accounts.
    """
    parameters = parameters or FanParameters()
    if merchant_parameters is None or not graph.merchants:
        return _detect_fan(graph.incoming, "fan_in", parameters)
    alerts = _detect_fan(graph.incoming, "fan_in", parameters, skip=graph.merchants)
    alerts.extend(_detect_merchant_fan_in(graph, merchant_parameters))
    if len(alerts) > ALERTS_PER_DETECTOR_MAX:
        raise AmlError("too_many_alerts", "fan_in alert limit reached")
    alerts.sort(key=lambda alert: alert.account_ids[0])
    return alerts


def detect_fan_out(graph: TransferGraph, parameters: FanParameters | None = None) -> list[Alert]:
    """One alert per account paying many distinct targets within a window (its best window).

    Score as for `detect_fan_in`.
    """
    return _detect_fan(graph.outgoing, "fan_out", parameters or FanParameters())


def _detect_fan(
    index: dict[str, list[Transfer]],
    kind: Literal["fan_in", "fan_out"],
    parameters: FanParameters,
    skip: frozenset[str] = frozenset(),
) -> list[Alert]:
    """Each account's widest window of distinct counterparties, within each amount band when
    the amounts must be similar; one alert per account whose widest window is wide enough.
    Accounts in `skip` are judged elsewhere."""
    alerts: list[Alert] = []
    for account in sorted(index):
        if account in skip:
            continue
        transfers = index[account]
        if len(transfers) < parameters.min_counterparties:
            continue
        if parameters.max_amount_spread_permille:
            members = _widest_similar_fan(transfers, kind, parameters)
        else:
            members = _widest_fan(transfers, kind, parameters.window_seconds)
        counterparties = [t.source if kind == "fan_in" else t.target for t in members]
        distinct = len(set(counterparties))
        if distinct < parameters.min_counterparties:
            continue
        if len(alerts) >= ALERTS_PER_DETECTOR_MAX:
            raise AmlError("too_many_alerts", f"{kind} alert limit reached")
        spread = (
            f", amounts within {parameters.max_amount_spread_permille} per mille of each other"
            if parameters.max_amount_spread_permille
            else ""
        )
        alerts.append(
            Alert(
                kind=kind,
                account_ids=_accounts(account, counterparties),
                transaction_ids=_capped_ids(members),
                score=min(SCORE_MAX, SCORE_MAX * distinct // (2 * parameters.min_counterparties)),
                reason=(
                    f"{distinct} distinct {'sources' if kind == 'fan_in' else 'targets'}"
                    f" in {len(members)} transfers within {parameters.window_seconds} s{spread}"
                ),
            )
        )
    return alerts


def _widest_fan(
    transfers: Sequence[Transfer], kind: Literal["fan_in", "fan_out"], window_seconds: int
) -> Sequence[Transfer]:
    """The time window (of time-ordered `transfers`) with the most distinct counterparties.

    A sliding window with a counter of counterparties; the first widest window wins.
    """
    counts: Counter[str] = Counter()
    left = 0
    best_distinct, best_left, best_right = 0, 0, -1
    for right, transfer in enumerate(transfers):
        counts[transfer.source if kind == "fan_in" else transfer.target] += 1
        while transfer.at - transfers[left].at > window_seconds:
            leaving = transfers[left].source if kind == "fan_in" else transfers[left].target
            counts[leaving] -= 1
            if counts[leaving] == 0:
                del counts[leaving]
            left += 1
        if len(counts) > best_distinct:
            best_distinct, best_left, best_right = len(counts), left, right
    return transfers[best_left : best_right + 1]


def _widest_similar_fan(
    transfers: Sequence[Transfer], kind: Literal["fan_in", "fan_out"], parameters: FanParameters
) -> Sequence[Transfer]:
    """The widest fan among transfers whose amounts lie within the spread of each other.

    The transfers are sorted by amount; every maximal band [smallest, smallest * spread] is
    searched with `_widest_fan` (a band contained in the previous one is skipped), until the
    account's examined-transfer budget runs out.
    """
    by_amount = sorted(transfers, key=lambda transfer: (transfer.amount_minor, transfer.at))
    spread = parameters.max_amount_spread_permille
    best: Sequence[Transfer] = ()
    best_distinct = 0
    examined = 0
    right = 0
    previous_right = -1
    for left, smallest in enumerate(by_amount):
        right = max(right, left)
        while (
            right + 1 < len(by_amount)
            and by_amount[right + 1].amount_minor * PERMILLE <= smallest.amount_minor * spread
        ):
            right += 1
        if right == previous_right or right - left + 1 < parameters.min_counterparties:
            continue
        previous_right = right
        band = sorted(
            by_amount[left : right + 1],
            key=lambda transfer: (transfer.at, transfer.transaction_id),
        )
        examined += len(band)
        members = _widest_fan(band, kind, parameters.window_seconds)
        distinct = len({t.source if kind == "fan_in" else t.target for t in members})
        if distinct > best_distinct:
            best, best_distinct = members, distinct
        if examined >= FAN_BAND_TRANSFERS_PER_ACCOUNT_MAX:
            break
    return best


# Every merchant alert's reason starts with this, so an operator sees at once that the account
# was judged as a merchant and by which rule.
_MERCHANT: Final = "merchant (acquiring) account"


def _detect_merchant_fan_in(
    graph: TransferGraph, parameters: MerchantFanInParameters
) -> list[Alert]:
    """One alert per merchant for its strongest surge or new-payer burst, if any.

    Score: 1000 * distinct / (2 * the count it had to reach), at most 1000, as for fans: for a
    burst the count is `burst_min_payers`; for a surge it is the larger of `min_payers` and
    `surge_permille` of the baseline. When both rules fire the higher score wins, a burst on a
    tie (it is the more specific finding).
    """
    merchants = sorted(account for account in graph.merchants if account in graph.incoming)
    if not merchants:
        return []
    first_seen: dict[str, int] = {}
    for transfer in graph.transfers:
        first_seen.setdefault(transfer.source, transfer.at)
        first_seen.setdefault(transfer.target, transfer.at)
    offset = parameters.utc_offset_minutes * 60
    first_window = (graph.transfers[0].at + offset) // parameters.window_seconds
    alerts: list[Alert] = []
    for merchant in merchants:
        transfers = graph.incoming[merchant]
        found = [
            alert
            for alert in (
                _merchant_burst(merchant, transfers, first_seen, parameters),
                _merchant_surge(merchant, transfers, first_window, parameters),
            )
            if alert is not None
        ]
        if found:
            alerts.append(max(found, key=lambda alert: alert.score))
    return alerts


def _merchant_burst(
    merchant: str,
    transfers: Sequence[Transfer],
    first_seen: dict[str, int],
    parameters: MerchantFanInParameters,
) -> Alert | None:
    """The widest window of new payers paying just under the burst threshold, if wide enough."""
    threshold = parameters.burst_threshold_minor
    floor_scaled = threshold * parameters.burst_near_threshold_permille
    window = parameters.burst_window_seconds
    signed = [
        transfer
        for transfer in transfers
        if transfer.amount_minor < threshold
        and transfer.amount_minor * PERMILLE >= floor_scaled
        and transfer.at - first_seen[transfer.source] <= window
    ]
    if len(signed) < parameters.burst_min_payers:
        return None
    members = _widest_fan(signed, "fan_in", window)
    payers = [transfer.source for transfer in members]
    distinct = len(set(payers))
    if distinct < parameters.burst_min_payers:
        return None
    return Alert(
        kind="fan_in",
        account_ids=_accounts(merchant, payers),
        transaction_ids=_capped_ids(members),
        score=min(SCORE_MAX, SCORE_MAX * distinct // (2 * parameters.burst_min_payers)),
        reason=(
            f"{_MERCHANT}: {distinct} distinct sources first seen within {window} s, each paying"
            f" {parameters.burst_near_threshold_permille}-999 per mille of a {threshold}"
            f" threshold, in {len(members)} transfers within {window} s"
        ),
    )


def _merchant_surge(
    merchant: str,
    transfers: Sequence[Transfer],
    first_window: int,
    parameters: MerchantFanInParameters,
) -> Alert | None:
    """The window whose distinct payers most exceed the merchant's trailing median, if any."""
    offset = parameters.utc_offset_minutes * 60
    by_window: dict[int, list[Transfer]] = {}
    for transfer in transfers:
        by_window.setdefault((transfer.at + offset) // parameters.window_seconds, []).append(
            transfer
        )
    payers = {window: len({t.source for t in members}) for window, members in by_window.items()}
    best: tuple[int, int, int, int] | None = None  # score, window, twice the median, history
    for window in sorted(by_window):
        distinct = payers[window]
        history_start = max(first_window, window - parameters.max_history_windows)
        history = sorted(payers.get(earlier, 0) for earlier in range(history_start, window))
        if distinct < parameters.min_payers or len(history) < parameters.min_history_windows:
            continue
        # Twice the median, so an even count's median (half-way between two) stays an int.
        middle = len(history) // 2
        median2 = history[middle] * 2 if len(history) % 2 else history[middle - 1] + history[middle]
        if distinct * 2 * PERMILLE <= median2 * parameters.surge_permille:
            continue
        # The count the window had to reach, times 2000 (the median's 2 and the per mille).
        bar = max(parameters.min_payers * 2 * PERMILLE, median2 * parameters.surge_permille)
        score = min(SCORE_MAX, SCORE_MAX * distinct * PERMILLE // bar)
        if best is None or score > best[0]:
            best = (score, window, median2, len(history))
    if best is None:
        return None
    score, window, median2, history_windows = best
    members = by_window[window]
    sources = [transfer.source for transfer in members]
    distinct = payers[window]
    median = f"{median2 // 2}.5" if median2 % 2 else f"{median2 // 2}"
    ratio = (
        f", {distinct * 2 * PERMILLE // median2} per mille of its median of {median}"
        if median2
        else ", its median being 0"
    )
    return Alert(
        kind="fan_in",
        account_ids=_accounts(merchant, sources),
        transaction_ids=_capped_ids(members),
        score=score,
        reason=(
            f"{_MERCHANT}: {distinct} distinct sources in {len(members)} transfers in one"
            f" {parameters.window_seconds} s window{ratio} over {history_windows} earlier"
            f" windows (alerts above {parameters.surge_permille} per mille of it and at"
            f" {parameters.min_payers} sources or more)"
        ),
    )


# -- cycles ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CycleParameters:
    """Bounds of the cycle search.

    A cycle is a simple, time-respecting path of `min_hops` to `max_hops` transfers that
    starts and ends at the same account, where each transfer happens no earlier than the one
    before it and all happen within `window_seconds` of the first.

    Each hop's amount is bounded from both sides relative to the previous hop's: at least
    `min_retention_permille` of it and at most `max_growth_permille` of it (0 switches either
    check off). A laundering cycle passes on roughly what it received, a little less after the
    cuts of each intermediary, and money does not grow along the chain beyond rounding or a fee
    refund; without both bounds every chain of unrelated payments that happens to close in a
    dense payment graph is a "cycle" (a 30-yuan payment followed by a 3,000-yuan one). The
    bounds also prune the search hard.

    The defaults were chosen on the fit half of the AMLSim evaluation (benchmarks/aml.py and
    benchmarks/aml_calibrate.py, best F0.5 among searches bounded on both sides): 60 days, 2 to
    4 hops, each hop 800 to 1050 per mille of the one before.

    The search is a depth-first search from every transfer. It is exponential in the worst
    case, so it is bounded twice: `max_edges_per_start` edges examined from one starting
    transfer, and `max_edges_total` over the whole call. When a bound is hit the search of that
    start (or the whole search) stops and `CycleSearch` says so; cycles already found stand.
    """

    window_seconds: int = 60 * 86_400
    min_hops: int = 2
    max_hops: int = 4
    min_retention_permille: int = 800
    max_growth_permille: int = 1_050
    max_edges_per_start: int = 5_000
    max_edges_total: int = 20_000_000

    def __post_init__(self) -> None:
        _check_int(self.window_seconds, "window_seconds", 0, WINDOW_SECONDS_MAX)
        _check_int(self.min_hops, "min_hops", 2, CYCLE_HOPS_LIMIT)
        _check_int(self.max_hops, "max_hops", self.min_hops, CYCLE_HOPS_LIMIT)
        _check_int(self.min_retention_permille, "min_retention_permille", 0, PERMILLE)
        if self.max_growth_permille != 0:
            # The upper bound may not sit below the lower one (no amount could pass both).
            _check_int(
                self.max_growth_permille,
                "max_growth_permille (or 0 for no bound)",
                max(1, self.min_retention_permille),
                CYCLE_GROWTH_PERMILLE_LIMIT,
            )
        _check_int(self.max_edges_per_start, "max_edges_per_start", 1, CYCLE_EDGES_PER_START_LIMIT)
        _check_int(self.max_edges_total, "max_edges_total", 1, CYCLE_EDGES_TOTAL_LIMIT)


@dataclass(frozen=True, slots=True)
class CycleSearch:
    """The cycles found and how much of the search the bounds cut off."""

    alerts: tuple[Alert, ...]
    edges_explored: int
    starts_truncated: int
    budget_exhausted: bool


def detect_cycles(graph: TransferGraph, parameters: CycleParameters | None = None) -> CycleSearch:
    """Every time-respecting cycle within the bounds, each reported once.

    Starting transfers are taken origin by origin (accounts in sorted order, each account's
    transfers in time order). For each origin a bounded backward breadth-first search first
    finds how many hops each nearby account is from the origin, ignoring time; the depth-first
    search then never enters an account that cannot get back within the hops left. That
    pruning is exact (it only removes paths that cannot close), so it changes speed, not
    results, except through the explored-edge budgets.

    A cycle found again from another starting transfer, or along the same transfers, is
    recognised by its set of transaction ids and reported once. Score: 1000 * the smaller of
    (amount on the last hop, amount on the first) / the larger, so a cycle that brings back
    exactly what it sent scores 1000 and one that brings back much less, or much more, scores
    low: "more came back" is not "more suspicious", it is more likely unrelated payments.
    """
    parameters = parameters or CycleParameters()
    search = _CycleSearcher(graph, parameters)
    for origin in sorted(graph.outgoing):
        if origin not in graph.incoming:
            continue
        search.search_from(origin)
        if len(search.alerts) > ALERTS_PER_DETECTOR_MAX:
            raise AmlError("too_many_alerts", "cycle alert limit reached")
        if search.budget_exhausted:
            break
    return CycleSearch(
        tuple(search.alerts),
        search.explored_total,
        search.starts_truncated,
        search.budget_exhausted,
    )


# The backward search that measures distances to an origin stops growing past this many
# accounts; beyond it, accounts of unknown distance are simply not pruned. This keeps the cost
# per origin bounded when the origin's neighbourhood contains a hub with thousands of payers.
_DISTANCE_SEARCH_ACCOUNTS_MAX: Final = 256


class _CycleSearcher:
    """The state of one cycle search: indexes, budgets, found cycles.

    A class rather than nested closures so the recursive step reads its state from attributes
    and the budgets are plainly shared across starts.
    """

    def __init__(self, graph: TransferGraph, parameters: CycleParameters) -> None:
        self.graph = graph
        self.parameters = parameters
        self.out_times = {
            account: [t.at for t in transfers] for account, transfers in graph.outgoing.items()
        }
        # Transfers between each ordered pair of accounts, in time order. On the last permitted
        # hop only a transfer back to the origin can close a cycle, so the search looks those
        # up directly instead of scanning every outgoing transfer of the node.
        self.between: dict[tuple[str, str], list[Transfer]] = {}
        for transfer in graph.transfers:
            self.between.setdefault((transfer.source, transfer.target), []).append(transfer)
        self.between_times = {
            pair: [t.at for t in transfers] for pair, transfers in self.between.items()
        }
        # The distinct accounts paying each account, for the backward distance search (a hub
        # receives thousands of transfers from far fewer payers).
        self.payers: dict[str, tuple[str, ...]] = {
            account: tuple(dict.fromkeys(t.source for t in transfers))
            for account, transfers in graph.incoming.items()
        }
        self.found: set[frozenset[str]] = set()
        self.alerts: list[Alert] = []
        self.explored_total = 0
        self.starts_truncated = 0
        self.budget_exhausted = False
        # Per-origin and per-start state, reset by `search_from` and `_search_start`.
        self.origin = ""
        self.distance: dict[str, int] = {}
        self.distance_complete_to = 0
        self.deadline = 0
        self.path: list[Transfer] = []
        self.on_path: set[str] = set()
        self.explored = 0
        self.truncated = False

    def _measure_distances(self) -> None:
        """Backward breadth-first search: hops from each nearby account to the origin."""
        limit = self.parameters.max_hops - 1
        distance = {self.origin: 0}
        frontier = [self.origin]
        complete_to = 0
        payers = self.payers
        for depth in range(1, limit + 1):
            next_frontier: list[str] = []
            overflow = False
            for account in frontier:
                for payer in payers.get(account, ()):
                    if payer not in distance:
                        distance[payer] = depth
                        next_frontier.append(payer)
                if len(distance) > _DISTANCE_SEARCH_ACCOUNTS_MAX:
                    # This level is incomplete, so its distances may not be used for pruning.
                    overflow = True
                    break
            if overflow:
                break
            complete_to = depth
            frontier = next_frontier
            if not frontier:
                complete_to = limit
                break
        self.distance = distance
        self.distance_complete_to = complete_to

    def _can_return(self, account: str, hops_left: int) -> bool:
        """Whether `account` may reach the origin in at most `hops_left` transfers."""
        known = self.distance.get(account)
        if known is not None and known <= self.distance_complete_to:
            return known <= hops_left
        # Not found within the completed depths: it is farther than that, or unknown.
        return hops_left > self.distance_complete_to

    def search_from(self, origin: str) -> None:
        """Search every starting transfer sent by `origin`."""
        self.origin = origin
        self._measure_distances()
        max_hops = self.parameters.max_hops
        for first in self.graph.outgoing[origin]:
            if first.target == origin or not self._can_return(first.target, max_hops - 1):
                continue
            self._search_start(first)
            if self.explored_total >= self.parameters.max_edges_total:
                self.budget_exhausted = True
                return

    def _search_start(self, first: Transfer) -> None:
        self.deadline = first.at + self.parameters.window_seconds
        self.path = [first]
        self.on_path = {self.origin, first.target}
        self.explored = 0
        self.truncated = False
        self._extend(first.target, first.at, first.amount_minor)
        self.explored_total += min(self.explored, self.parameters.max_edges_per_start)
        if self.truncated:
            self.starts_truncated += 1

    def _extend(self, node: str, earliest: int, previous_amount: int) -> None:
        """Depth-first over `node`'s transfers in [earliest, deadline]."""
        parameters = self.parameters
        hops = len(self.path) + 1
        if hops == parameters.max_hops:
            transfers = self.between.get((node, self.origin))
            times = self.between_times.get((node, self.origin), [])
        else:
            transfers = self.graph.outgoing.get(node)
            times = self.out_times.get(node, [])
        if not transfers:
            return
        retention = parameters.min_retention_permille
        growth = parameters.max_growth_permille
        position = bisect.bisect_left(times, earliest)
        while position < len(transfers):
            transfer = transfers[position]
            position += 1
            if transfer.at > self.deadline:
                return
            self.explored += 1
            if self.explored > parameters.max_edges_per_start:
                self.truncated = True
                return
            if retention and transfer.amount_minor * PERMILLE < previous_amount * retention:
                continue
            if growth and transfer.amount_minor * PERMILLE > previous_amount * growth:
                continue
            target = transfer.target
            if target == self.origin:
                if hops >= parameters.min_hops:
                    _record_cycle([*self.path, transfer], self.found, self.alerts)
                continue
            if target in self.on_path or not self._can_return(target, parameters.max_hops - hops):
                continue
            self.path.append(transfer)
            self.on_path.add(target)
            self._extend(target, transfer.at, transfer.amount_minor)
            self.on_path.discard(target)
            self.path.pop()
            if self.truncated:
                return


def _record_cycle(cycle: list[Transfer], found: set[frozenset[str]], alerts: list[Alert]) -> None:
    """Add an alert for a cycle unless the same transfers were already reported."""
    key = frozenset(transfer.transaction_id for transfer in cycle)
    if key in found:
        return
    found.add(key)
    first, last = cycle[0], cycle[-1]
    returned = last.amount_minor * PERMILLE // first.amount_minor
    closeness = (
        SCORE_MAX
        * min(first.amount_minor, last.amount_minor)
        // max(first.amount_minor, last.amount_minor)
    )
    alerts.append(
        Alert(
            kind="cycle",
            account_ids=tuple(transfer.source for transfer in cycle),
            transaction_ids=tuple(transfer.transaction_id for transfer in cycle),
            score=closeness,
            reason=(
                f"money returned to its origin in {len(cycle)} hops over {last.at - first.at} s,"
                f" {returned} per mille of the first amount"
            ),
        )
    )


# -- running the detectors together ---------------------------------------------------------


# Fan-in's default: 6 distinct payers in 7 days scored the best F0.5 on the AMLSim fit half
# (fan-out's best stayed at 4 targets, the `FanParameters` default).
FAN_IN_DEFAULTS: Final = FanParameters(min_counterparties=6)


@dataclass(frozen=True, slots=True)
class DetectorSuite:
    """One parameter set per detector; `None` switches a detector off.

    Structuring is off by default because it needs the threshold of the category being
    watched, which only the caller (through the rules engine) knows. The other defaults were
    chosen on the fit half of the AMLSim evaluation (benchmarks/aml_calibrate.py) and reported
    on its held-out half (benchmarks/RESULTS.md).

    `merchant_fan_in` is how fan-in judges the graph's merchants (`detect_fan_in`); `None`
    there judges them like every other account, and fan-in off (`fan_in=None`) judges no one.
    """

    structuring: StructuringParameters | None = None
    rapid_in_out: RapidInOutParameters | None = field(default_factory=RapidInOutParameters)
    fan_in: FanParameters | None = field(default=FAN_IN_DEFAULTS)
    merchant_fan_in: MerchantFanInParameters | None = field(default=MERCHANT_FAN_IN_DEFAULTS)
    fan_out: FanParameters | None = field(default_factory=FanParameters)
    cycle: CycleParameters | None = field(default_factory=CycleParameters)

    def run(self, graph: TransferGraph) -> dict[AlertKind, list[Alert]]:
        """The alerts of every enabled detector, keyed by alert kind."""
        results: dict[AlertKind, list[Alert]] = {}
        if self.structuring is not None:
            results["structuring"] = detect_structuring(graph, self.structuring)
        if self.rapid_in_out is not None:
            results["rapid_in_out"] = detect_rapid_in_out(graph, self.rapid_in_out)
        if self.fan_in is not None:
            results["fan_in"] = detect_fan_in(graph, self.fan_in, self.merchant_fan_in)
        if self.fan_out is not None:
            results["fan_out"] = detect_fan_out(graph, self.fan_out)
        if self.cycle is not None:
            results["cycle"] = list(detect_cycles(graph, self.cycle).alerts)
        return results


def triage_order(alerts: Iterable[Alert]) -> list[Alert]:
    """Alerts in the order a capped queue should take them: the strongest of each kind first,
    the kinds taking turns.

    Scores are comparable within a detector, not across detectors (a fan of twice the minimum
    scores 1000 whatever the population; a cycle scores by how much came back), so a plain sort
    by score would let one noisy detector fill the queue. Taking turns (kinds in the order of
    `AlertKind`, each kind's alerts by descending score, ties by transaction ids) keeps every
    detector's strongest alerts in front. The order is fully determined by the alerts.
    """
    by_kind: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_kind.setdefault(alert.kind, []).append(alert)
    kinds = [kind for kind in _KIND_ORDER if kind in by_kind]
    ranked: list[tuple[int, int, Alert]] = []
    for kind_position, kind in enumerate(kinds):
        ordered = sorted(by_kind[kind], key=lambda alert: (-alert.score, alert.transaction_ids))
        ranked.extend((rank, kind_position, alert) for rank, alert in enumerate(ordered))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [alert for _, _, alert in ranked]


_KIND_ORDER: Final[tuple[AlertKind, ...]] = (
    "cycle",
    "structuring",
    "rapid_in_out",
    "fan_in",
    "fan_out",
)
