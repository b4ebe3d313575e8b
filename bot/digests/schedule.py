"""When a subscribed digest is due, and which period it covers, in the manager's zone.

Times are computed on local calendar days with :mod:`zoneinfo`, then turned into
UTC, so a digest "every Monday at 08:00 Europe/Paris" stays at 08:00 across DST
changes. An hour that does not exist on a spring-forward day is read with the
offset before the change (02:30 becomes 03:30); an hour that happens twice on a
fall-back day is taken the first time (``fold=0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.repositories.digests import Period

DAILY: Final = "daily"
WEEKLY: Final = "weekly"
FREQUENCIES: Final = (DAILY, WEEKLY)
# Guard against a loop that never finds the next due time (it always does within 8).
_SEARCH_DAYS: Final = 9
# A digest that fell due this many times while no worker ran is sent once, for the latest.
_CATCH_UP_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Cadence:
    """How often a digest comes: ``weekday`` (0 = Monday) only for weekly ones."""

    frequency: str
    hour: int
    timezone: str
    weekday: int | None = None

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"unknown frequency {self.frequency!r}")
        if not 0 <= self.hour <= 23:
            raise ValueError("hour must be 0-23")
        if self.frequency == WEEKLY and (self.weekday is None or not 0 <= self.weekday <= 6):
            raise ValueError("a weekly digest needs a weekday 0-6")
        zone_of(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        """The manager's time zone."""
        return zone_of(self.timezone)

    @property
    def days(self) -> int:
        """How many days one digest covers."""
        return 1 if self.frequency == DAILY else 7


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ``ValueError`` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this system knows."""
    try:
        zone_of(name)
    except ValueError:
        return False
    return True


def local_moment(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """``hour``:00 on the local ``day`` in ``zone``, as a UTC datetime."""
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def next_due(cadence: Cadence, after: datetime) -> datetime:
    """The first delivery moment strictly after ``after`` (UTC)."""
    zone = cadence.zone
    first_day = after.astimezone(zone).date() - timedelta(days=1)
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if cadence.frequency == WEEKLY and day.weekday() != cadence.weekday:
            continue
        moment = local_moment(day, cadence.hour, zone)
        if moment > after:
            return moment
    raise AssertionError("no delivery moment found within a week")


def latest_due(cadence: Cadence, due: datetime, now: datetime) -> datetime:
    """The last delivery moment at or before ``now``, starting from a ``due`` one.

    A bot that was down sends one digest for the latest period, not a backlog.
    """
    for _ in range(_CATCH_UP_LIMIT):
        following = next_due(cadence, due)
        if following > now:
            return due
        due = following
    return due


def period_before(cadence: Cadence, due: datetime) -> Period:
    """The whole local days the digest delivered at ``due`` covers, up to that day."""
    zone = cadence.zone
    day = due.astimezone(zone).date()
    return (
        local_moment(day - timedelta(days=cadence.days), 0, zone),
        local_moment(day, 0, zone),
    )
