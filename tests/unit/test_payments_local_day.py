"""Business days are local days in China Standard Time: `local_day_start` is the inverse of
`local_date` at the day's first instant."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tianping.payments.model import local_date, local_day_start

NS = 1_000_000_000


def test_a_day_starts_at_midnight_china_time() -> None:
    # 2026-11-28 00:00 in Beijing is 2026-11-27 16:00 UTC.
    assert local_day_start(date(2026, 11, 28)) == 1_795_795_200 * NS


@given(st.dates(date(1970, 1, 2), date(2262, 4, 10)))
def test_the_start_is_the_first_instant_of_its_local_day(day: date) -> None:
    start = local_day_start(day)
    assert local_date(start) == day
    assert local_date(start - 1) == day - timedelta(days=1)
