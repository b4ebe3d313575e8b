""" "You said, we did": a closed period's figures turned into a message to participants."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.digests.compute import build_digest
from bot.i18n import Translator
from bot.usecases.broadcasts import last_month, you_said_text
from storage.db import Database
from tests.digests.seed import END, START, seed_world


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("en")


def test_last_month_is_the_whole_calendar_month_in_the_administrations_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    start, end = last_month(datetime(2026, 4, 10, 12, tzinfo=UTC), paris)
    assert start == datetime(2026, 3, 1, tzinfo=paris).astimezone(UTC)
    assert end == datetime(2026, 4, 1, tzinfo=paris).astimezone(UTC)
    # Just after midnight on the 1st in Paris (still the 31st in UTC): March is over.
    start, end = last_month(datetime(2026, 3, 31, 22, 30, tzinfo=UTC), paris)
    assert start.astimezone(paris).month == 3 and end.astimezone(paris).month == 4


async def test_the_message_states_the_services_figures(
    database: Database, translator: Translator
) -> None:
    async with database.uow() as uow:
        world = await seed_world(uow)
        digest = await build_digest(uow, service_ids=[world.roads], start=START, end=END)
        quiet = await build_digest(
            uow,
            service_ids=[world.roads],
            start=datetime(2025, 1, 1, tzinfo=UTC),
            end=datetime(2025, 2, 1, tzinfo=UTC),
        )
    [roads] = [s for s in digest.services if s.service]
    english = you_said_text(
        translator, "en", service="Roads & paths", month="March 2026", section=roads
    )
    french = you_said_text(translator, "fr", service="Voirie", month="mars 2026", section=roads)
    assert english is not None and french is not None
    assert "Roads &amp; paths, March 2026" in english
    assert "4 problem(s)" in english and "80% satisfied" in english
    assert f"We fixed {roads.reports.fixed}" in english
    assert "80\xa0% de satisfaits" in french or "80 % de satisfaits" in french
    [nothing] = [s for s in quiet.services if s.service]
    assert (
        you_said_text(translator, "en", service="Roads", month="January 2025", section=nothing)
        is None
    )
