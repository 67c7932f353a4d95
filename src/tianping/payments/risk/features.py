"""Online risk features for one payment, computed from bounded per-payer, -payee and -device state.

A payment is described by a `PaymentContext`. A `FeatureState` holds what has been seen so far
and turns a context into a `FeatureVector` (floats in the fixed `FEATURE_NAMES` order, plus the
exact integer amount for the rules) without changing anything; the caller records the payment
afterwards with `observe`, once the decision is known, and so chooses whether declined payments
count towards velocity and history.

State is bounded everywhere, because it lives in the payment process and must not grow with the
number of customers or with a burst of traffic:

* At most `limits.keys_per_kind` payers, payees and devices each (100,000 by default). When a
  map is full the least recently *observed* key is evicted, so a returning customer who was
  evicted looks new (new payee/new device flags set, empty history): the safe direction.
* Each key keeps its last `EVENTS_PER_KEY_MAX` (64) payments, time-ordered. Velocity counts and
  sums over 1 min / 1 h / 24 h are exact while a key has at most 64 payments in the window and
  read "at least 64" above that, which is beyond every velocity cap the rules use.
* Each payer remembers its last 64 payees and 8 devices (LRU); each device its last 16 payers.
* The payer's amount history is three exact integers (count, sum, sum of squares), so it never
  grows. Worst case, every key full: about 5 KB per key, so about 1.5 GB with three full maps
  at the default cap; typical keys hold a few events. Lower `keys_per_kind` to bound it further.

Money stays an integer number of minor units in the state and in the context; it becomes a float
only in the feature vector handed to the model. The module is pure standard library, and time is
always the payment's own `at` (unix seconds), never the wall clock.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from tianping.payments.risk.errors import (
    CurrencyNotTracked,
    InvalidPaymentContext,
    RiskConfigurationInvalid,
)

__all__ = [
    "EVENTS_PER_KEY_MAX",
    "FEATURE_INDEX",
    "FEATURE_NAMES",
    "KEYS_PER_KIND_MAX",
    "PAYMENT_KINDS",
    "WINDOW_SECONDS",
    "AmountStats",
    "FeatureState",
    "FeatureStateLimits",
    "FeatureVector",
    "PaymentContext",
    "replay_features",
]

# The sliding windows of the velocity features: one minute, one hour, one day.
WINDOW_SECONDS: Final = (60, 3_600, 86_400)

# Payments remembered per payer, payee and device. See the module docstring for what it bounds.
EVENTS_PER_KEY_MAX: Final = 64
# Payers, payees and devices tracked, each (least recently observed evicted first).
KEYS_PER_KIND_MAX: Final = 100_000
KNOWN_PAYEES_PER_PAYER_MAX: Final = 64
KNOWN_DEVICES_PER_PAYER_MAX: Final = 8
PAYERS_PER_DEVICE_MAX: Final = 16

# Identifiers longer than this are refused: they are opaque ids, and a bound keeps hostile input
# from inflating the state.
ID_LENGTH_MAX: Final = 128
# One payment above 10^15 minor units (ten trillion yuan) is not a payment but a bug.
AMOUNT_MINOR_MAX: Final = 10**15

# "Recent" for password and device changes, and "young" for accounts: one day.
RECENT_SECONDS: Final = 86_400
# Durations in hours are capped so that "never" and "long ago" look alike to the model, and an
# absent timestamp (no password change on record) reads as the cap.
RECENCY_CAP_HOURS: Final = 720.0
ACCOUNT_AGE_CAP_HOURS: Final = 24.0 * 365
# Local hours counted as night (00:00 to 05:59), when account takeovers are over-represented.
NIGHT_HOURS_END: Final = 6
# The payer's amount spread is floored at this fraction of its mean (and at one minor unit), so
# a payer whose past payments were all equal does not turn every different amount into z = inf.
STD_FLOOR_FRACTION: Final = 0.1

PAYMENT_KINDS: Final = ("p2p", "merchant", "withdrawal", "top_up")

_CURRENCY_PATTERN: Final = re.compile(r"[A-Z]{3}")

FEATURE_NAMES: Final[tuple[str, ...]] = (
    "amount_log",
    "payer_count_1m",
    "payer_count_1h",
    "payer_count_24h",
    "payer_amount_log_1h",
    "payer_amount_log_24h",
    "payee_count_1m",
    "payee_count_1h",
    "payee_count_24h",
    "payee_amount_log_24h",
    "device_count_1m",
    "device_count_1h",
    "device_count_24h",
    "device_payer_count",
    "payer_history_count",
    "amount_zscore",
    "amount_to_mean_log_ratio",
    "new_payee",
    "new_device",
    "hours_since_last_payment",
    "local_hour",
    "is_night",
    "account_age_hours",
    "new_account",
    "hours_since_password_change",
    "password_changed_24h",
    "hours_since_device_change",
    "device_changed_24h",
    "kind_p2p",
    "kind_merchant",
    "kind_withdrawal",
    "kind_top_up",
)
FEATURE_INDEX: Final[Mapping[str, int]] = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _check_id(value: object, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > ID_LENGTH_MAX:
        raise InvalidPaymentContext(
            f"{what} must be a non-empty string of at most {ID_LENGTH_MAX} characters"
        )


def _check_time(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidPaymentContext(f"{what} must be integer unix seconds")


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """What the risk check knows about one payment at the moment it is requested.

    `at` and the other instants are unix seconds. `last_password_change_at` and
    `last_device_change_at` are None when there is no change on record.
    """

    payer_id: str
    payee_id: str
    device_id: str
    amount_minor: int
    currency: str
    at: int
    payer_account_opened_at: int
    last_password_change_at: int | None
    last_device_change_at: int | None
    payment_kind: str

    def __post_init__(self) -> None:
        _check_id(self.payer_id, "payer_id")
        _check_id(self.payee_id, "payee_id")
        _check_id(self.device_id, "device_id")
        amount = self.amount_minor
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise InvalidPaymentContext("amount_minor must be an integer number of minor units")
        if not 0 < amount <= AMOUNT_MINOR_MAX:
            raise InvalidPaymentContext(f"amount_minor must be in 1..{AMOUNT_MINOR_MAX}")
        if not isinstance(self.currency, str) or not _CURRENCY_PATTERN.fullmatch(self.currency):
            raise InvalidPaymentContext("currency must be a three-letter ISO 4217 code")
        _check_time(self.at, "at")
        _check_time(self.payer_account_opened_at, "payer_account_opened_at")
        if self.last_password_change_at is not None:
            _check_time(self.last_password_change_at, "last_password_change_at")
        if self.last_device_change_at is not None:
            _check_time(self.last_device_change_at, "last_device_change_at")
        if self.payment_kind not in PAYMENT_KINDS:
            raise InvalidPaymentContext(f"payment_kind must be one of {', '.join(PAYMENT_KINDS)}")


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """The model's input for one payment, plus the exact amount the rules compare with limits.

    `values` follows `FEATURE_NAMES`. The amount travels as an integer beside the floats so that
    money limits in the rules are checked exactly, not through a logarithm.
    """

    values: tuple[float, ...]
    amount_minor: int
    currency: str

    def __getitem__(self, name: str) -> float:
        return self.values[FEATURE_INDEX[name]]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))


@dataclass(slots=True)
class AmountStats:
    """Count, mean and variance of a payer's past amounts, kept as exact integer moments.

    Welford's update exists to avoid cancellation when the moments are floats. Python integers
    are exact, so the plain sum and sum of squares of integer minor units have no cancellation at
    all, never drift, and keep money out of floating point until a statistic is read.
    """

    count: int = 0
    total: int = 0
    total_of_squares: int = 0

    def add(self, amount_minor: int) -> None:
        self.count += 1
        self.total += amount_minor
        self.total_of_squares += amount_minor * amount_minor

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def variance(self) -> float:
        """Population variance; the integer numerator n*sum(x^2) - (sum x)^2 is exact."""
        if not self.count:
            return 0.0
        return (self.count * self.total_of_squares - self.total * self.total) / (
            self.count * self.count
        )


class _EventLog:
    """The last `capacity` (time, amount) pairs of one key, kept sorted by time.

    Two parallel lists rather than a deque, so window boundaries are found by bisection and a
    window's sum is one slice `sum` in C: both keep a feature computation in microseconds.
    """

    __slots__ = ("amounts", "capacity", "times")

    def __init__(self, capacity: int) -> None:
        self.times: list[int] = []
        self.amounts: list[int] = []
        self.capacity = capacity

    def record(self, at: int, amount_minor: int) -> None:
        times = self.times
        if not times or at >= times[-1]:
            times.append(at)
            self.amounts.append(amount_minor)
        else:
            # A late arrival (clock skew between front ends) is placed where it belongs.
            position = bisect_right(times, at)
            insort(times, at)
            self.amounts.insert(position, amount_minor)
        if len(times) > self.capacity:
            del times[0]
            del self.amounts[0]

    def last_before(self, now: int) -> int | None:
        end = bisect_right(self.times, now)
        return self.times[end - 1] if end else None

    def windows(self, now: int) -> tuple[int, int, int, int, int]:
        """The event counts of the windows of `WINDOW_SECONDS` ending at `now` (each window is
        (now - seconds, now]), then the amount sums of the hour and the day.

        One search for the end and nested searches for the starts, because scoring reads all
        three windows of each payer, payee and device: nine windows per payment.
        """
        times = self.times
        minute, hour, day = WINDOW_SECONDS
        end = bisect_right(times, now)
        day_start = bisect_right(times, now - day, 0, end)
        hour_start = bisect_right(times, now - hour, day_start, end)
        minute_start = bisect_right(times, now - minute, hour_start, end)
        amounts = self.amounts
        hour_sum = sum(amounts[hour_start:end])
        day_sum = hour_sum + sum(amounts[day_start:hour_start])
        return end - minute_start, end - hour_start, end - day_start, hour_sum, day_sum


@dataclass(slots=True)
class _PayerState:
    events: _EventLog
    amounts: AmountStats = field(default_factory=AmountStats)
    known_payees: OrderedDict[str, None] = field(default_factory=OrderedDict)
    known_devices: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class _DeviceState:
    events: _EventLog
    payers: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(frozen=True, slots=True)
class FeatureStateLimits:
    """The caps of a `FeatureState`; the defaults are the module constants."""

    keys_per_kind: int = KEYS_PER_KIND_MAX
    events_per_key: int = EVENTS_PER_KEY_MAX
    payees_per_payer: int = KNOWN_PAYEES_PER_PAYER_MAX
    devices_per_payer: int = KNOWN_DEVICES_PER_PAYER_MAX
    payers_per_device: int = PAYERS_PER_DEVICE_MAX

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1:
                raise RiskConfigurationInvalid(f"{name} must be at least 1")


def _remember(known: OrderedDict[str, None], key: str, capacity: int) -> None:
    """Mark `key` as most recently seen in an LRU set, evicting the oldest beyond `capacity`."""
    if key in known:
        known.move_to_end(key)
    else:
        known[key] = None
        if len(known) > capacity:
            known.popitem(last=False)


def _hours_since(now: int, then: int | None) -> float:
    if then is None:
        return RECENCY_CAP_HOURS
    return min(max(now - then, 0) / 3_600, RECENCY_CAP_HOURS)


class FeatureState:
    """Bounded online state for one currency; see the module docstring for the bounds.

    Not thread-safe: one state per worker, or a lock around `features` + `observe`.
    """

    def __init__(
        self,
        currency: str,
        *,
        utc_offset_seconds: int = 0,
        limits: FeatureStateLimits | None = None,
    ) -> None:
        if not _CURRENCY_PATTERN.fullmatch(currency):
            raise InvalidPaymentContext("currency must be a three-letter ISO 4217 code")
        self.currency = currency
        # Time of day is the customer's local hour: pass +8 h (28,800 s) for China.
        self.utc_offset_seconds = utc_offset_seconds
        self.limits = limits or FeatureStateLimits()
        self._payers: OrderedDict[str, _PayerState] = OrderedDict()
        self._payees: OrderedDict[str, _EventLog] = OrderedDict()
        self._devices: OrderedDict[str, _DeviceState] = OrderedDict()

    def tracked_counts(self) -> tuple[int, int, int]:
        """How many payers, payees and devices are currently held (each at most the cap)."""
        return len(self._payers), len(self._payees), len(self._devices)

    def _check_currency(self, ctx: PaymentContext) -> None:
        if ctx.currency != self.currency:
            raise CurrencyNotTracked("the payment's currency is not this feature state's")

    def features(self, ctx: PaymentContext) -> FeatureVector:
        """The feature vector of `ctx` given everything observed so far; changes nothing.

        Lookups use `dict.get`, never `move_to_end`, so scoring a payment does not even refresh
        the LRU order: only `observe` does.
        """
        self._check_currency(ctx)
        now = ctx.at
        amount = ctx.amount_minor

        payer = self._payers.get(ctx.payer_id)
        if payer is None:
            payer_counts = (0, 0, 0)
            payer_sum_1h = payer_sum_24h = 0
            history_count = 0
            zscore = log_ratio = 0.0
            new_payee = new_device = 1.0
            since_last = RECENCY_CAP_HOURS
        else:
            events = payer.events
            count_1m, count_1h, count_24h, payer_sum_1h, payer_sum_24h = events.windows(now)
            payer_counts = (count_1m, count_1h, count_24h)
            stats = payer.amounts
            history_count = stats.count
            if history_count:
                mean = stats.mean
                spread = max(math.sqrt(stats.variance), STD_FLOOR_FRACTION * mean, 1.0)
                zscore = (amount - mean) / spread
                log_ratio = math.log((amount + 1) / (mean + 1))
            else:
                zscore = log_ratio = 0.0
            new_payee = 0.0 if ctx.payee_id in payer.known_payees else 1.0
            new_device = 0.0 if ctx.device_id in payer.known_devices else 1.0
            since_last = _hours_since(now, events.last_before(now))

        payee = self._payees.get(ctx.payee_id)
        if payee is None:
            payee_counts = (0, 0, 0)
            payee_sum_24h = 0
        else:
            payee_1m, payee_1h, payee_24h, _, payee_sum_24h = payee.windows(now)
            payee_counts = (payee_1m, payee_1h, payee_24h)

        device = self._devices.get(ctx.device_id)
        if device is None:
            device_counts = (0, 0, 0)
            device_payers = 0
        else:
            device_counts = device.events.windows(now)[:3]
            device_payers = len(device.payers)

        local_hour = ((now + self.utc_offset_seconds) % 86_400) // 3_600
        age_seconds = max(now - ctx.payer_account_opened_at, 0)
        password_hours = _hours_since(now, ctx.last_password_change_at)
        device_change_hours = _hours_since(now, ctx.last_device_change_at)
        recent_hours = RECENT_SECONDS / 3_600
        kind = ctx.payment_kind

        values = (
            math.log1p(amount),
            float(payer_counts[0]),
            float(payer_counts[1]),
            float(payer_counts[2]),
            math.log1p(payer_sum_1h),
            math.log1p(payer_sum_24h),
            float(payee_counts[0]),
            float(payee_counts[1]),
            float(payee_counts[2]),
            math.log1p(payee_sum_24h),
            float(device_counts[0]),
            float(device_counts[1]),
            float(device_counts[2]),
            float(device_payers),
            float(history_count),
            zscore,
            log_ratio,
            new_payee,
            new_device,
            since_last,
            float(local_hour),
            1.0 if local_hour < NIGHT_HOURS_END else 0.0,
            min(age_seconds / 3_600, ACCOUNT_AGE_CAP_HOURS),
            1.0 if age_seconds < RECENT_SECONDS else 0.0,
            password_hours,
            1.0 if password_hours < recent_hours else 0.0,
            device_change_hours,
            1.0 if device_change_hours < recent_hours else 0.0,
            1.0 if kind == "p2p" else 0.0,
            1.0 if kind == "merchant" else 0.0,
            1.0 if kind == "withdrawal" else 0.0,
            1.0 if kind == "top_up" else 0.0,
        )
        return FeatureVector(values=values, amount_minor=amount, currency=ctx.currency)

    def observe(self, ctx: PaymentContext) -> None:
        """Record `ctx` as a payment that happened, refreshing LRU order and evicting if full."""
        self._check_currency(ctx)
        limits = self.limits
        cap = limits.keys_per_kind

        payer = self._payers.get(ctx.payer_id)
        if payer is None:
            payer = _PayerState(events=_EventLog(limits.events_per_key))
            self._payers[ctx.payer_id] = payer
            if len(self._payers) > cap:
                self._payers.popitem(last=False)
        else:
            self._payers.move_to_end(ctx.payer_id)
        payer.events.record(ctx.at, ctx.amount_minor)
        payer.amounts.add(ctx.amount_minor)
        _remember(payer.known_payees, ctx.payee_id, limits.payees_per_payer)
        _remember(payer.known_devices, ctx.device_id, limits.devices_per_payer)

        payee = self._payees.get(ctx.payee_id)
        if payee is None:
            payee = _EventLog(limits.events_per_key)
            self._payees[ctx.payee_id] = payee
            if len(self._payees) > cap:
                self._payees.popitem(last=False)
        else:
            self._payees.move_to_end(ctx.payee_id)
        payee.record(ctx.at, ctx.amount_minor)

        device = self._devices.get(ctx.device_id)
        if device is None:
            device = _DeviceState(events=_EventLog(limits.events_per_key))
            self._devices[ctx.device_id] = device
            if len(self._devices) > cap:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(ctx.device_id)
        device.events.record(ctx.at, ctx.amount_minor)
        _remember(device.payers, ctx.payer_id, limits.payers_per_device)


def replay_features(state: FeatureState, contexts: Iterable[PaymentContext]) -> list[FeatureVector]:
    """Feature vectors of a time-ordered stream, each computed before its payment is observed.

    This is how training data is built: exactly what the online path would have seen, with every
    payment (whatever its label) recorded afterwards, as a live system records executed payments.
    """
    vectors = []
    for ctx in contexts:
        vectors.append(state.features(ctx))
        state.observe(ctx)
    return vectors
