"""What each /subscribe panel button does to the settings, without Telegram."""

from __future__ import annotations

import pytest

from bot.digests.schedule import Cadence
from bot.handlers.digests import _changed
from bot.usecases.digests import DigestSettings

WEEKLY_MONDAY = DigestSettings(
    cadence=Cadence(frequency="weekly", hour=8, timezone="Europe/Paris", weekday=0),
    service_ids=(1,),
)
DAILY = DigestSettings(
    cadence=Cadence(frequency="daily", hour=8, timezone="Europe/Paris"), service_ids=(1,)
)


@pytest.mark.parametrize(
    ("settings", "kind", "value", "cadence", "what"),
    [
        (
            WEEKLY_MONDAY,
            "f",
            "daily",
            Cadence(frequency="daily", hour=8, timezone="Europe/Paris"),
            "frequency",
        ),
        (DAILY, "f", "weekly", WEEKLY_MONDAY.cadence, "frequency"),
        (
            DAILY,
            "w",
            "4",
            Cadence(frequency="weekly", hour=8, timezone="Europe/Paris", weekday=4),
            "weekday",
        ),
        (
            WEEKLY_MONDAY,
            "h",
            "18",
            Cadence(frequency="weekly", hour=18, timezone="Europe/Paris", weekday=0),
            "hour",
        ),
        (
            DAILY,
            "z",
            "America/Montreal",
            Cadence(frequency="daily", hour=8, timezone="America/Montreal"),
            "timezone",
        ),
    ],
)
def test_a_button_changes_one_setting_and_keeps_the_others(
    settings: DigestSettings, kind: str, value: str, cadence: Cadence, what: str
) -> None:
    assert _changed(settings, kind, value, [1]) == (
        DigestSettings(cadence=cadence, service_ids=(1,)),
        what,
    )


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("f", "monthly"),
        ("w", "7"),
        ("w", "²"),
        ("h", "24"),
        ("h", "x"),
        ("z", "Mars/Olympus"),
        ("s", "9"),
        ("q", "1"),
    ],
)
def test_a_button_that_makes_no_sense_changes_nothing(kind: str, value: str) -> None:
    assert _changed(WEEKLY_MONDAY, kind, value, [1, 2]) == (None, kind)


def test_a_service_button_toggles_the_service() -> None:
    changed, what = _changed(WEEKLY_MONDAY, "s", "2", [1, 2])
    assert what == "services"
    assert changed is not None and changed.cadence == WEEKLY_MONDAY.cadence
