"""The risk engine's sliding windows agree with counting the events one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tianping.payments.risk.features import WINDOW_SECONDS, _EventLog

events = st.lists(
    st.tuples(st.integers(0, 200_000), st.integers(1, 10_000)), min_size=0, max_size=60
)


@given(events, st.integers(0, 250_000), st.integers(1, 80))
def test_windows_match_a_count_by_hand(
    recorded: list[tuple[int, int]], now: int, capacity: int
) -> None:
    log = _EventLog(capacity)
    for at, amount in recorded:
        log.record(at, amount)
    kept = list(zip(log.times, log.amounts, strict=True))
    assert log.times == sorted(log.times)
    assert len(kept) == min(len(recorded), capacity)

    def inside(seconds: int) -> list[int]:
        return [amount for at, amount in kept if now - seconds < at <= now]

    minute, hour, day = WINDOW_SECONDS
    assert log.windows(now) == (
        len(inside(minute)),
        len(inside(hour)),
        len(inside(day)),
        sum(inside(hour)),
        sum(inside(day)),
    )
