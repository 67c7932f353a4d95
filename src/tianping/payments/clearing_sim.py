"""A simulated clearing house that misbehaves like a real one, deterministically.

`SimulatedClearingHouse` implements `tianping.payments.clearing.ClearingHouse` for tests, demos
and benchmarks. Each accepted request gets a scenario, either forced (by request id in
`SimulatorBehaviour.script`, or by amount in `amount_script`) or drawn with the configured
probabilities:

* ``normal``: one "succeeded" callback after a latency drawn from `latency_buckets`; settled.
* ``decline``: one "declined" callback with a decline code; not settled.
* ``fail``: one "failed" callback (a technical failure after acceptance); not settled.
* ``unavailable``: `submit` refuses with "bank_unavailable"; nothing else happens. A retry of the
  same request id is drawn afresh (with the attempt number in the seed), so it may succeed.
* ``timeout``: accepted, but the clearing house never processes it: no callback, not settled.
* ``lost_callback``: settled, but the callback is never delivered; only the settlement file
  shows it (reconciliation's `missing_in_ledger` once the service has voided its hold).
* ``late``: settled, but its callback arrives `late_delay_seconds` after the normal latency,
  i.e. after the service's timeout if that delay is longer than the timeout.
* ``duplicate``: settled, and the same "succeeded" notice is delivered 2 or 3 times.
* ``out_of_order``: settled; the final notice (sequence 2) arrives before the interim
  "processing" notice (sequence 1).
* ``conflicting``: settled; the "succeeded" notice (sequence 1) is followed by a "failed" notice
  (sequence 2) that contradicts it. The settlement file is the truth: it lists the item.

Determinism: every random draw comes from a `random.Random` seeded with the seed, the request id
and the purpose of the draw, so what happens to one request does not depend on the order or the
number of other requests. The clock (`clock()`, unix seconds) is injected; `poll_callbacks` uses
the `now` it is given.

Business dates: an item is settled when its outcome is decided (the normal latency after
acceptance, whether or not its callback is delayed or lost) and belongs to the business date of
that instant under the 23:00 China-time cut-off (`clearing.business_date_of`). Each settled item
is charged a fee of `fee_basis_points` of its amount, rounded half up, at least
`fee_minimum_minor`.

Bounded state: at most `outstanding_max` requests may have callbacks still to deliver (beyond
it `submit` refuses with "capacity_exceeded"); requests and settlement records of business
dates older than `retention_days` before the newest one are forgotten, and at most
`retained_requests_max` requests are remembered in all.

Probabilities are integers in parts per million: the money paths of this package hold no binary
floating point at all (a test enforces it), and integers make the draws exact.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final, Literal, get_args

from tianping.payments.clearing import (
    DECLINE_CODES,
    POLL_LIMIT_MAX,
    RAIL_TIMEOUT_SECONDS_MAX,
    InvalidRailInput,
    RailCallback,
    RailOutcome,
    RailRequest,
    RailSubmission,
    SettlementFile,
    SettlementRecord,
    business_date_of,
)

__all__ = [
    "PARTS_PER_MILLION",
    "SIMULATOR_CAPACITY_MAX",
    "ClearingSimulatorError",
    "ScenarioKind",
    "ScriptedScenario",
    "SimulatedClearingHouse",
    "SimulatorBehaviour",
]

PARTS_PER_MILLION: Final = 1_000_000

# No simulator holds more than this many requests, whatever its behaviour says: a bound on the
# memory of a long benchmark run.
SIMULATOR_CAPACITY_MAX: Final = 10_000_000

# A latency table has at most this many buckets; a distribution needs far fewer.
LATENCY_BUCKETS_MAX: Final = 64

ScenarioKind = Literal[
    "normal",
    "decline",
    "fail",
    "unavailable",
    "timeout",
    "lost_callback",
    "late",
    "duplicate",
    "out_of_order",
    "conflicting",
]
_SCENARIO_KINDS: Final = frozenset(get_args(ScenarioKind))
# Scenarios whose item the clearing house settles (and lists in the settlement file).
_SETTLED_KINDS: Final = frozenset(
    {"normal", "lost_callback", "late", "duplicate", "out_of_order", "conflicting"}
)


class ClearingSimulatorError(InvalidRailInput):
    """The simulator was configured or called with a value it cannot use."""

    code = "clearing_simulator_invalid"


@dataclass(frozen=True, slots=True)
class ScriptedScenario:
    """A scenario forced for one request; `decline_code` is used by "decline"."""

    kind: ScenarioKind
    decline_code: str = "do_not_honour"

    def __post_init__(self) -> None:
        if self.kind not in _SCENARIO_KINDS:
            raise ClearingSimulatorError("kind", f"must be one of {sorted(_SCENARIO_KINDS)}")
        if self.decline_code not in DECLINE_CODES:
            raise ClearingSimulatorError("decline_code", "must be one of DECLINE_CODES")


def _require_ppm(value: object, name: str) -> int:
    if type(value) is not int or not 0 <= value <= PARTS_PER_MILLION:
        raise ClearingSimulatorError(name, f"must be an int from 0 to {PARTS_PER_MILLION}")
    return value


def _require_count(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ClearingSimulatorError(name, f"must be an int from {low} to {high}")
    return value


@dataclass(frozen=True, slots=True)
class SimulatorBehaviour:
    """How often each misbehaviour happens, and the simulator's other settings.

    The `*_ppm` probabilities are drawn in this order for each request and the first hit wins:
    unavailable (per submit attempt), timeout, lost_callback, decline, fail, late, duplicate,
    out_of_order, conflicting; otherwise normal. The defaults are a well-behaved rail.
    `latency_buckets` is a table of (seconds, weight) pairs: a normal callback's latency is one
    of the seconds, chosen with probability weight / sum of weights.
    """

    unavailable_ppm: int = 0
    timeout_ppm: int = 0
    lost_callback_ppm: int = 0
    decline_ppm: int = 0
    fail_ppm: int = 0
    late_ppm: int = 0
    duplicate_ppm: int = 0
    out_of_order_ppm: int = 0
    conflicting_ppm: int = 0
    decline_codes: tuple[str, ...] = ("insufficient_funds", "do_not_honour")
    latency_buckets: tuple[tuple[int, int], ...] = ((1, 60), (3, 30), (10, 9), (30, 1))
    late_delay_seconds: int = 3600
    currencies: frozenset[str] = frozenset({"CNY"})
    fee_basis_points: int = 10
    fee_minimum_minor: int = 1
    clearing_house_id: str = "sim-netsunion"
    outstanding_max: int = 10_000
    retained_requests_max: int = 1_000_000
    retention_days: int = 7
    script: Mapping[str, ScriptedScenario] = field(default_factory=dict)
    amount_script: Mapping[int, ScriptedScenario] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "unavailable_ppm",
            "timeout_ppm",
            "lost_callback_ppm",
            "decline_ppm",
            "fail_ppm",
            "late_ppm",
            "duplicate_ppm",
            "out_of_order_ppm",
            "conflicting_ppm",
        ):
            _require_ppm(getattr(self, name), name)
        if not self.decline_codes or any(code not in DECLINE_CODES for code in self.decline_codes):
            raise ClearingSimulatorError("decline_codes", "must be a non-empty tuple of codes")
        if not 1 <= len(self.latency_buckets) <= LATENCY_BUCKETS_MAX:
            raise ClearingSimulatorError("latency_buckets", "must hold 1 to 64 buckets")
        for seconds, weight in self.latency_buckets:
            _require_count(seconds, "latency_buckets", 0, RAIL_TIMEOUT_SECONDS_MAX)
            _require_count(weight, "latency_buckets", 1, PARTS_PER_MILLION)
        _require_count(self.late_delay_seconds, "late_delay_seconds", 1, RAIL_TIMEOUT_SECONDS_MAX)
        _require_count(self.fee_basis_points, "fee_basis_points", 0, 10_000)
        _require_count(self.fee_minimum_minor, "fee_minimum_minor", 0, 10**9)
        _require_count(self.outstanding_max, "outstanding_max", 1, SIMULATOR_CAPACITY_MAX)
        _require_count(
            self.retained_requests_max, "retained_requests_max", 1, SIMULATOR_CAPACITY_MAX
        )
        _require_count(self.retention_days, "retention_days", 1, 366)
        if len(self.script) + len(self.amount_script) > SIMULATOR_CAPACITY_MAX:
            raise ClearingSimulatorError("script", "is too large")
        for scenario in (*self.script.values(), *self.amount_script.values()):
            if not isinstance(scenario, ScriptedScenario):
                raise ClearingSimulatorError("script", "values must be ScriptedScenario")

    def fee_for(self, amount_minor: int) -> int:
        """The clearing fee of one settled item, rounded half up, never below the minimum."""
        proportional = (amount_minor * self.fee_basis_points + 5_000) // 10_000
        return max(self.fee_minimum_minor, proportional)


@dataclass(slots=True)
class _SimulatedRequest:
    """What the simulator remembers of one accepted request."""

    request: RailRequest
    clearing_reference: str
    business_date: str
    undelivered: int


class SimulatedClearingHouse:
    """A deterministic in-memory clearing house; see the module docstring for its scenarios."""

    def __init__(
        self, clock: Callable[[], int], seed: int, behaviour: SimulatorBehaviour | None = None
    ) -> None:
        if type(seed) is not int:
            raise ClearingSimulatorError("seed", "must be an int")
        self._clock = clock
        self._seed = seed
        self._behaviour = behaviour if behaviour is not None else SimulatorBehaviour()
        self._requests: dict[str, _SimulatedRequest] = {}
        self._attempts: dict[str, int] = {}
        # Deliveries as a heap of (deliver_at, order, callback): `order` keeps equal times in
        # the order they were scheduled, so polling is deterministic.
        self._deliveries: list[tuple[int, int, RailCallback]] = []
        self._delivery_order = 0
        self._callback_counter = 0
        self._outstanding = 0
        self._settled: dict[str, list[SettlementRecord]] = {}
        self._newest_business_date: str | None = None

    @property
    def behaviour(self) -> SimulatorBehaviour:
        """The behaviour the simulator was built with."""
        return self._behaviour

    @property
    def outstanding(self) -> int:
        """Accepted requests with at least one callback still to deliver."""
        return self._outstanding

    # ------------------------------------------------------------------ randomness

    def _rng(self, request_id: str, purpose: str) -> random.Random:
        """A generator for one purpose of one request, independent of every other request.

        `random.Random` is fine here: the simulator needs reproducible test data, not secrets.
        """
        return random.Random(f"{self._seed}:{request_id}:{purpose}")  # noqa: S311

    def _hits(self, rng: random.Random, ppm: int) -> bool:
        return rng.randrange(PARTS_PER_MILLION) < ppm

    def _draw_scenario(self, request: RailRequest) -> ScriptedScenario:
        behaviour = self._behaviour
        forced = behaviour.script.get(request.request_id)
        if forced is None:
            forced = behaviour.amount_script.get(request.amount_minor)
        if forced is not None:
            return forced
        rng = self._rng(request.request_id, "scenario")
        decline_code = rng.choice(behaviour.decline_codes)
        for kind, ppm in (
            ("timeout", behaviour.timeout_ppm),
            ("lost_callback", behaviour.lost_callback_ppm),
            ("decline", behaviour.decline_ppm),
            ("fail", behaviour.fail_ppm),
            ("late", behaviour.late_ppm),
            ("duplicate", behaviour.duplicate_ppm),
            ("out_of_order", behaviour.out_of_order_ppm),
            ("conflicting", behaviour.conflicting_ppm),
        ):
            if self._hits(rng, ppm):
                return ScriptedScenario(kind, decline_code)  # type: ignore[arg-type]
        return ScriptedScenario("normal", decline_code)

    def _latency(self, request_id: str) -> int:
        buckets = self._behaviour.latency_buckets
        rng = self._rng(request_id, "latency")
        seconds = [bucket[0] for bucket in buckets]
        weights = [bucket[1] for bucket in buckets]
        return rng.choices(seconds, weights=weights)[0]

    # ------------------------------------------------------------------ the protocol

    def submit(self, request: RailRequest) -> RailSubmission:
        """Accept or refuse one request; idempotent by request id (see `ClearingHouse`)."""
        if not isinstance(request, RailRequest):
            raise ClearingSimulatorError("request", "must be a RailRequest")
        known = self._requests.get(request.request_id)
        if known is not None:
            if known.request != request:
                return RailSubmission(False, None, "request_id_conflict")
            return RailSubmission(True, known.clearing_reference, None)
        if request.currency not in self._behaviour.currencies:
            return RailSubmission(False, None, "currency_not_supported")

        scenario = self._draw_scenario(request)
        attempt = self._attempts.get(request.request_id, 0) + 1
        unavailable = scenario.kind == "unavailable" or self._hits(
            self._rng(request.request_id, f"unavailable:{attempt}"),
            self._behaviour.unavailable_ppm,
        )
        if unavailable:
            # Attempts are remembered only for unavailability, and only while they matter.
            if len(self._attempts) < self._behaviour.outstanding_max:
                self._attempts[request.request_id] = attempt
            return RailSubmission(False, None, "bank_unavailable")

        now = self._clock()
        self._forget_old_dates()
        if (
            self._outstanding >= self._behaviour.outstanding_max
            or len(self._requests) >= self._behaviour.retained_requests_max
        ):
            return RailSubmission(False, None, "capacity_exceeded")
        self._attempts.pop(request.request_id, None)

        clearing_reference = self._reference_for(request.request_id)
        decided_at = now + self._latency(request.request_id)
        business_date = business_date_of(decided_at)
        remembered = _SimulatedRequest(request, clearing_reference, business_date, 0)
        self._requests[request.request_id] = remembered
        self._schedule(remembered, scenario, decided_at)
        if scenario.kind in _SETTLED_KINDS:
            self._settle(remembered)
        if self._newest_business_date is None or business_date > self._newest_business_date:
            self._newest_business_date = business_date
        return RailSubmission(True, clearing_reference, None)

    def poll_callbacks(self, now: int, limit: int) -> list[RailCallback]:
        """Take the callbacks due by `now`, earliest first, at most `limit` of them."""
        if type(now) is not int or now < 0:
            raise ClearingSimulatorError("now", "must be a non-negative int")
        _require_count(limit, "limit", 1, POLL_LIMIT_MAX)
        delivered: list[RailCallback] = []
        while self._deliveries and len(delivered) < limit and self._deliveries[0][0] <= now:
            _, _, callback = heapq.heappop(self._deliveries)
            delivered.append(callback)
            remembered = self._requests.get(callback.request_id)
            if remembered is not None:
                remembered.undelivered -= 1
                if remembered.undelivered == 0:
                    self._outstanding -= 1
        return delivered

    def settlement_file(self, business_date: str) -> SettlementFile:
        """The settled items of a business date, ordered by clearing reference."""
        records = tuple(
            sorted(
                self._settled.get(business_date, ()), key=lambda record: record.clearing_reference
            )
        )
        return SettlementFile(
            business_date=business_date,
            clearing_house_id=self._behaviour.clearing_house_id,
            records=records,
        )

    # ------------------------------------------------------------------ internals

    def _reference_for(self, request_id: str) -> str:
        digest = hashlib.sha256(f"{self._seed}:{request_id}".encode()).hexdigest()
        return f"clr_{digest[:24]}"

    def _callback(
        self,
        remembered: _SimulatedRequest,
        sequence: int,
        outcome: RailOutcome,
        sent_at: int,
        decline_code: str | None = None,
    ) -> RailCallback:
        self._callback_counter += 1
        return RailCallback(
            callback_id=f"cb_{self._callback_counter:012d}",
            request_id=remembered.request.request_id,
            clearing_reference=remembered.clearing_reference,
            sequence=sequence,
            outcome=outcome,
            decline_code=decline_code,
            settled_amount_minor=remembered.request.amount_minor if outcome == "succeeded" else 0,
            business_date=remembered.business_date,
            sent_at=sent_at,
        )

    def _deliver(self, remembered: _SimulatedRequest, at: int, callback: RailCallback) -> None:
        self._delivery_order += 1
        heapq.heappush(self._deliveries, (at, self._delivery_order, callback))
        if remembered.undelivered == 0:
            self._outstanding += 1
        remembered.undelivered += 1

    def _schedule(
        self, remembered: _SimulatedRequest, scenario: ScriptedScenario, decided_at: int
    ) -> None:
        """Queue the callbacks the scenario delivers, each at its delivery time."""
        kind = scenario.kind
        request_id = remembered.request.request_id
        if kind in ("timeout", "lost_callback"):
            return
        if kind == "decline":
            callback = self._callback(
                remembered, 1, "declined", decided_at, decline_code=scenario.decline_code
            )
            self._deliver(remembered, decided_at, callback)
        elif kind == "fail":
            self._deliver(
                remembered, decided_at, self._callback(remembered, 1, "failed", decided_at)
            )
        elif kind == "late":
            delivered_at = decided_at + self._behaviour.late_delay_seconds
            callback = self._callback(remembered, 1, "succeeded", delivered_at)
            self._deliver(remembered, delivered_at, callback)
        elif kind == "duplicate":
            copies = self._rng(request_id, "copies").randint(2, 3)
            for copy_index in range(copies):
                at = decided_at + copy_index
                self._deliver(remembered, at, self._callback(remembered, 1, "succeeded", at))
        elif kind == "out_of_order":
            final = self._callback(remembered, 2, "succeeded", decided_at)
            self._deliver(remembered, decided_at, final)
            interim = self._callback(remembered, 1, "processing", max(0, decided_at - 1))
            self._deliver(remembered, decided_at + 1, interim)
        elif kind == "conflicting":
            first = self._callback(remembered, 1, "succeeded", decided_at)
            self._deliver(remembered, decided_at, first)
            contradiction = self._callback(remembered, 2, "failed", decided_at + 1)
            self._deliver(remembered, decided_at + 1, contradiction)
        else:
            callback = self._callback(remembered, 1, "succeeded", decided_at)
            self._deliver(remembered, decided_at, callback)

    def _settle(self, remembered: _SimulatedRequest) -> None:
        request = remembered.request
        record = SettlementRecord(
            clearing_reference=remembered.clearing_reference,
            request_id=request.request_id,
            direction=request.direction,
            partner_bank_id=request.partner_bank_id,
            amount_minor=request.amount_minor,
            currency=request.currency,
            fee_minor=self._behaviour.fee_for(request.amount_minor),
            business_date=remembered.business_date,
        )
        self._settled.setdefault(remembered.business_date, []).append(record)

    def _forget_old_dates(self) -> None:
        """Drop requests and settlement records older than the retention window."""
        if self._newest_business_date is None:
            return
        newest = date.fromisoformat(self._newest_business_date)
        oldest_kept = (newest - timedelta(days=self._behaviour.retention_days)).isoformat()
        expired_dates = [day for day in self._settled if day < oldest_kept]
        for day in expired_dates:
            del self._settled[day]
        if len(self._requests) < self._behaviour.retained_requests_max and not expired_dates:
            return
        expired_requests = [
            request_id
            for request_id, remembered in self._requests.items()
            if remembered.business_date < oldest_kept and remembered.undelivered == 0
        ]
        for request_id in expired_requests:
            del self._requests[request_id]
