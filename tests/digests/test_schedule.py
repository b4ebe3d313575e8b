"""Delivery moments and periods in the manager's zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.digests.schedule import DAILY, WEEKLY, Cadence, latest_due, next_due, period_before

PARIS = "Europe/Paris"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_daily_at_eight_in_paris_is_seven_utc_in_winter_and_six_in_summer() -> None:
    cadence = Cadence(frequency=DAILY, hour=8, timezone=PARIS)
    assert next_due(cadence, utc(2026, 1, 5, 6, 59)) == utc(2026, 1, 5, 7)
    assert next_due(cadence, utc(2026, 1, 5, 7)) == utc(2026, 1, 6, 7)
    assert next_due(cadence, utc(2026, 7, 1, 5)) == utc(2026, 7, 1, 6)


def test_the_local_hour_holds_across_the_spring_and_autumn_changes() -> None:
    cadence = Cadence(frequency=DAILY, hour=8, timezone=PARIS)
    # Clocks go forward on 29 March 2026 and back on 25 October 2026.
    assert next_due(cadence, utc(2026, 3, 28, 7)) == utc(2026, 3, 29, 6)
    assert next_due(cadence, utc(2026, 10, 24, 6)) == utc(2026, 10, 25, 7)


def test_an_hour_skipped_by_dst_is_delivered_once_just_after() -> None:
    cadence = Cadence(frequency=DAILY, hour=2, timezone=PARIS)
    due = next_due(cadence, utc(2026, 3, 28, 12))
    assert due == utc(2026, 3, 29, 1)  # 03:00 local: 02:00 never happened
    assert next_due(cadence, due) == utc(2026, 3, 30, 0)


def test_an_hour_repeated_by_dst_is_delivered_once() -> None:
    cadence = Cadence(frequency=DAILY, hour=2, timezone=PARIS)
    due = next_due(cadence, utc(2026, 10, 24, 12))
    assert due == utc(2026, 10, 25, 0)  # the first 02:00 (still summer time)
    assert next_due(cadence, due) == utc(2026, 10, 26, 1)


def test_weekly_comes_on_its_weekday_in_the_managers_zone() -> None:
    # Monday 08:00 in Auckland is Sunday 19:00 UTC (NZDT, +13).
    cadence = Cadence(frequency=WEEKLY, weekday=0, hour=8, timezone="Pacific/Auckland")
    due = next_due(cadence, utc(2026, 1, 5, 9))  # Monday in UTC, Monday night in Auckland
    assert due == utc(2026, 1, 11, 19)
    assert due.astimezone(cadence.zone).weekday() == 0
    assert next_due(cadence, due) == utc(2026, 1, 18, 19)


def test_a_digest_covers_whole_local_days_before_its_day() -> None:
    weekly = Cadence(frequency=WEEKLY, weekday=0, hour=8, timezone=PARIS)
    assert period_before(weekly, utc(2026, 1, 12, 7)) == (utc(2026, 1, 4, 23), utc(2026, 1, 11, 23))
    daily = Cadence(frequency=DAILY, hour=8, timezone=PARIS)
    # The day the clocks go forward has 23 hours.
    start, end = period_before(daily, utc(2026, 3, 30, 6))
    assert (start, end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))


def test_after_a_long_stop_only_the_latest_digest_is_due() -> None:
    cadence = Cadence(frequency=DAILY, hour=8, timezone=PARIS)
    assert latest_due(cadence, utc(2026, 1, 5, 7), utc(2026, 1, 9, 12)) == utc(2026, 1, 9, 7)
    assert latest_due(cadence, utc(2026, 1, 5, 7), utc(2026, 1, 5, 7)) == utc(2026, 1, 5, 7)


@pytest.mark.parametrize(
    "values",
    [
        {"frequency": "hourly", "hour": 8, "timezone": PARIS},
        {"frequency": DAILY, "hour": 24, "timezone": PARIS},
        {"frequency": WEEKLY, "hour": 8, "timezone": PARIS},
        {"frequency": DAILY, "hour": 8, "timezone": "Mars/Olympus"},
    ],
)
def test_impossible_cadences_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"frequency|hour|weekday|time zone"):
        Cadence(**values)  # type: ignore[arg-type]
