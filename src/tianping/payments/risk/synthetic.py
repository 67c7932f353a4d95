"""A small, seeded, PaySim-like payment stream with labelled fraud, and a default model from it.

The demo and the tests need a working model without the PaySim file. This generator makes one
currency's worth of customers who pay regular payees from their own one or two devices at their
usual amounts and hours, with the ordinary noise of real use (a new phone, a new payee, a
password reset, an unusual amount), and three fraud patterns mixed in:

* account takeover: a fresh device, a password changed hours before, new payees, amounts far
  above the victim's usual, often at night, several in quick succession;
* new-account cash-out: an account opened hours earlier withdraws large amounts;
* card testing: a burst of small merchant payments from one device within minutes.

The patterns are deliberately learnable but overlap with the noise, so a model trained on them
is useful without being perfect. Everything is drawn from one `random.Random(seed)`, so a seed
always gives the same stream. It is not a substitute for real data: its numbers say nothing about
real fraud rates.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from tianping.payments.risk.errors import RiskConfigurationInvalid
from tianping.payments.risk.features import (
    FEATURE_NAMES,
    FeatureState,
    PaymentContext,
    replay_features,
)
from tianping.payments.risk.model import RiskModel, train_risk_model

__all__ = ["LabelledPayment", "generate_payments", "train_default_model"]

# 2025-01-01T00:00:00Z: any fixed instant works; a fixed one keeps the stream reproducible.
STREAM_START: Final = 1_735_689_600
DAY: Final = 86_400
# The generator's size limit, so a typo cannot ask for a stream that exhausts memory.
CUSTOMERS_MAX: Final = 100_000


@dataclass(frozen=True, slots=True)
class LabelledPayment:
    context: PaymentContext
    is_fraud: bool


@dataclass(slots=True)
class _Customer:
    ident: str
    opened_at: int
    devices: list[str]
    payees: list[str]
    median_minor: int
    active_hour: int
    password_changed_at: int | None
    device_changed_at: int | None


def _amount(rng: random.Random, median_minor: int, spread: float) -> int:
    return max(100, int(median_minor * math.exp(rng.gauss(0.0, spread))))


def generate_payments(
    seed: int,
    *,
    customers: int = 400,
    days: int = 7,
    fraud_share: float = 0.03,
    currency: str = "CNY",
) -> list[LabelledPayment]:
    """A time-ordered stream of about `customers * days * 2.5` payments, `fraud_share` of them
    (approximately) fraudulent."""
    if not 0 < customers <= CUSTOMERS_MAX or days < 1 or not 0.0 <= fraud_share < 0.5:
        raise RiskConfigurationInvalid("customers, days or fraud_share out of range")
    # Reproducible simulation, not security: a seeded Mersenne Twister is what is wanted here.
    rng = random.Random(seed)  # noqa: S311
    merchants = [f"m{i}" for i in range(max(20, customers // 10))]
    people: list[_Customer] = []
    for index in range(customers):
        ident = f"c{index}"
        people.append(
            _Customer(
                ident=ident,
                opened_at=STREAM_START - rng.randint(2 * DAY, 900 * DAY),
                devices=[f"d{index}"] + ([f"d{index}b"] if rng.random() < 0.3 else []),
                payees=[*rng.sample(merchants, 3), f"c{rng.randrange(customers)}"],
                median_minor=int(math.exp(rng.uniform(math.log(2_000), math.log(60_000)))),
                active_hour=rng.randint(7, 22),
                password_changed_at=(
                    STREAM_START - rng.randint(DAY, 400 * DAY) if rng.random() < 0.5 else None
                ),
                device_changed_at=None,
            )
        )
    events: list[LabelledPayment] = []

    def emit(
        person: _Customer, at: int, device: str, payee: str, amount: int, kind: str, fraud: bool
    ) -> None:
        events.append(
            LabelledPayment(
                PaymentContext(
                    payer_id=person.ident,
                    payee_id=payee,
                    device_id=device,
                    amount_minor=amount,
                    currency=currency,
                    at=at,
                    payer_account_opened_at=person.opened_at,
                    last_password_change_at=person.password_changed_at,
                    last_device_change_at=person.device_changed_at,
                    payment_kind=kind,
                ),
                fraud,
            )
        )

    end = STREAM_START + days * DAY
    legit_target = int(customers * days * 2.5)
    for _ in range(legit_target):
        person = rng.choice(people)
        day = rng.randrange(days)
        hour = min(23, max(0, int(rng.gauss(person.active_hour, 3))))
        at = STREAM_START + day * DAY + hour * 3_600 + rng.randrange(3_600)
        device = rng.choice(person.devices)
        if rng.random() < 0.02:  # an honest new phone
            device = f"d{person.ident}-new{rng.randrange(10**6)}"
            person.device_changed_at = at - rng.randint(60, 3 * DAY)
        if rng.random() < 0.01:  # an honest password reset
            person.password_changed_at = at - rng.randint(60, 2 * DAY)
        payee = rng.choice(person.payees)
        if rng.random() < 0.1:
            payee = rng.choice(merchants) if rng.random() < 0.5 else f"c{rng.randrange(customers)}"
        spread = 1.5 if rng.random() < 0.05 else 0.4
        kind = "merchant" if payee.startswith("m") else rng.choice(("p2p", "p2p", "withdrawal"))
        emit(person, at, device, payee, _amount(rng, person.median_minor, spread), kind, False)

    fraud_target = int(legit_target * fraud_share / (1 - fraud_share))
    while fraud_target > 0:
        pattern = rng.random()
        at = STREAM_START + rng.randrange(days * DAY - 3_600)
        if pattern < 0.5:  # account takeover
            victim = rng.choice(people)
            device = f"x{rng.randrange(10**9)}"
            if rng.random() < 0.7:
                victim.password_changed_at = at - rng.randint(600, 12 * 3_600)
            if rng.random() < 0.5:
                at = at - (at % DAY) + rng.randrange(5 * 3_600)
            for burst in range(rng.randint(1, 4)):
                mule = f"mule{rng.randrange(customers)}"
                amount = _amount(rng, victim.median_minor * rng.randint(3, 20), 0.3)
                emit(victim, at + burst * rng.randint(20, 400), device, mule, amount, "p2p", True)
                fraud_target -= 1
        elif pattern < 0.8:  # new-account cash-out
            ident = f"n{rng.randrange(10**9)}"
            person = _Customer(
                ident,
                at - rng.randint(600, 20 * 3_600),
                [f"d{ident}"],
                [],
                rng.randint(50_000, 400_000),
                3,
                None,
                None,
            )
            for burst in range(rng.randint(1, 3)):
                amount = _amount(rng, person.median_minor, 0.3)
                emit(
                    person,
                    at + burst * rng.randint(60, 1_800),
                    person.devices[0],
                    f"bank{rng.randrange(5)}",
                    amount,
                    "withdrawal",
                    True,
                )
                fraud_target -= 1
        else:  # card testing
            victim = rng.choice(people)
            device = f"x{rng.randrange(10**9)}"
            for burst in range(rng.randint(4, 10)):
                emit(
                    victim,
                    at + burst * rng.randint(3, 20),
                    device,
                    rng.choice(merchants),
                    rng.randint(100, 1_500),
                    "merchant",
                    True,
                )
                fraud_target -= 1
    events = [event for event in events if event.context.at < end]
    events.sort(key=lambda event: event.context.at)
    return events


def train_default_model(seed: int = 0, *, customers: int = 400, days: int = 7) -> RiskModel:
    """A small model trained on a synthetic stream, for demos and tests (a second or two).

    The first 70% of the stream (by time) trains the trees, the rest chooses the thresholds.
    """
    stream = generate_payments(seed, customers=customers, days=days)
    currency = stream[0].context.currency
    vectors = replay_features(FeatureState(currency), (event.context for event in stream))
    rows = [vector.values for vector in vectors]
    labels = [int(event.is_fraud) for event in stream]
    cut = int(len(rows) * 0.7)
    return train_risk_model(
        rows[:cut],
        labels[:cut],
        {"num_iterations": 60},
        feature_names=FEATURE_NAMES,
        x_valid=rows[cut:],
        y_valid=labels[cut:],
        description={
            "data": "synthetic payment stream (tianping.payments.risk.synthetic)",
            "seed": seed,
            "customers": customers,
            "days": days,
            "split": "time-ordered: first 70% train, last 30% thresholds",
        },
    )
