"""build_digest pairs every figure with the previous period; format_digest renders it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from bot.digests.compute import (
    MAX_MESSAGE_LENGTH,
    Change,
    Digest,
    ServiceDigest,
    build_digest,
    build_series,
    format_digest,
    previous_period,
    telegram_length,
    trailing_periods,
)
from bot.i18n import Translator
from storage.db import Database
from storage.repositories.digests import ServiceInfo
from tests.digests.seed import END, PREVIOUS_START, START, World, seed_world


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("en")


@pytest.fixture
async def digest(database: Database) -> AsyncIterator[tuple[Digest, World]]:
    async with database.uow() as uow:
        world = await seed_world(uow)
    async with database.uow() as uow:
        yield await build_digest(uow, service_ids=None, start=START, end=END), world


def test_periods_of_the_same_length() -> None:
    assert previous_period(START, END) == (PREVIOUS_START, START)
    periods = trailing_periods(START, END, 3)
    assert periods[-1] == (START, END)
    assert periods[0] == (datetime(2026, 2, 15, tzinfo=UTC), PREVIOUS_START)


def test_a_change_needs_both_values() -> None:
    assert Change(3, 1).delta == 2
    assert Change(None, 1).delta is None
    assert Change(0.5, None).delta is None


async def test_the_digest_pairs_each_figure_with_the_previous_period(
    digest: tuple[Digest, World],
) -> None:
    result, world = digest
    assert (result.previous_start, result.previous_end) == (PREVIOUS_START, START)
    assert [s.service.code for s in result.services if s.service] == ["lights", "roads", "parks"]
    total = result.total
    assert total.service is None
    changes = total.report_changes
    assert (changes.new.current, changes.new.previous, changes.new.delta) == (7, 5, 2)
    assert (changes.fixed.delta, changes.reopened.delta, changes.backlog.delta) == (4, 1, 1)
    assert changes.overdue.delta == 2
    assert changes.median_days_to_fix.delta == pytest.approx(1.0)
    assert changes.fixed_rate.delta == pytest.approx(5 / 7 - 1 / 5)
    assert changes.reopened_rate.delta == pytest.approx(0.4 - 1.0)
    rated = total.satisfaction_changes
    assert rated.csat.delta == pytest.approx(7 / 11 - 0.5)
    assert rated.mean_overall.delta == pytest.approx(38 / 11 - 3.0)
    assert rated.nps.delta == pytest.approx(100 / 9)
    assert rated.timeliness.delta == pytest.approx(29 / 9 - 10 / 3)
    assert rated.effort.delta == pytest.approx(26 / 9 - 3.0)
    assert rated.ratings.delta == 7
    lights = next(s for s in result.services if s.service and s.service.id == world.lights)
    assert lights.satisfaction_changes.csat.delta == pytest.approx(-0.5)
    assert lights.satisfaction_changes.nps.delta == pytest.approx(100 / 6 - 50)
    # No fix in the previous period: nothing to compare with.
    assert lights.report_changes.median_days_to_fix.delta is None
    assert lights.comments == ("Rude staff", "Too slow <b>really</b>", "Great job")
    volunteering = result.volunteering_changes
    assert (volunteering.signups.current, volunteering.signups.previous) == (8, 3)
    assert volunteering.attendance_rate.delta == pytest.approx(-0.25)
    assert volunteering.fill_rate.delta == pytest.approx(5 / 6 - 2 / 3)
    assert result.category_names["broken_light"]["en"] == "Broken light"


async def test_a_digest_for_some_services(database: Database) -> None:
    async with database.uow() as uow:
        world = await seed_world(uow)
        result = await build_digest(uow, service_ids=[world.roads], start=START, end=END)
        series = await build_series(
            uow, service_ids=[world.roads], periods=trailing_periods(START, END, 2)
        )
    assert [s.service.code for s in result.services if s.service] == ["roads"]
    assert result.total.reports.new == 4
    assert result.total.satisfaction.csat == pytest.approx(0.8)
    assert [(p.received, p.fixed) for p in series] == [(3, 1), (4, 1)]


class _TagChecker(HTMLParser):
    """Fails on tags Telegram does not know or that are not closed in order."""

    ALLOWED = frozenset({"b", "i", "u", "s", "a", "code", "pre", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.ALLOWED, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text += data


def parsed(message: str) -> str:
    checker = _TagChecker()
    checker.feed(message)
    checker.close()
    assert checker.stack == []
    # Babel puts thin and no-break spaces in dates and numbers; compare words.
    return re.sub(r"[\u2009\u202f\xa0]", " ", checker.text)


async def test_the_english_text_states_the_figures(
    digest: tuple[Digest, World], translator: Translator
) -> None:
    result, _ = digest
    message = format_digest(result, "en", translator)
    text = parsed(message)
    assert text.startswith("📊 Digest: Mar 1 – 7, 2026")
    assert "New reports: 7 (▲ 2)" in text
    assert "Fixed: 5 (▲ 4) · 71% of new reports" in text
    assert "Median time to fix: 4.0 days (▲ 1.0)" in text
    assert "Open at the end: 8 (▲ 1) — 0–7 days: 3 · 8–30: 3 · 31–90: 1 · over 90: 1" in text
    assert "11 ratings: 64% satisfied (▲ 14 pts) · mean 3.5/5 (▲ 0.5)" in text
    assert "Net promoter score: +11 (▲ 11)" in text
    assert "Who responds, by language: English 5 · French (fewer than 5, hidden)" in text
    assert "By category: Broken light 3 · Litter 2 · Pothole 2" in text
    assert "Sign-ups: 8 (▲ 5) from 6 volunteers" in text
    assert "Attendance: 75% (▼ 25 pts) (3 of 4 recorded)" in text
    # A comment's markup is shown as text, never interpreted.
    assert "Too slow &lt;b&gt;really&lt;/b&gt;" in message
    assert "Parks\n😴 Nothing this period or the one before, and nothing open." in text
    assert "Roads\n📥 New reports: 4 (▲ 1)" in text


async def test_the_french_text_uses_french_numbers_and_words(
    digest: tuple[Digest, World], translator: Translator
) -> None:
    result, _ = digest
    text = parsed(format_digest(result, "fr", translator))
    assert text.startswith("📊 Synthèse : 1–7 mars 2026")
    assert "Délai médian de résolution : 4,0 jours (▲ 1,0)" in text
    assert "11 avis : 64 % satisfaits (▲ 14 pts) · moyenne 3,5/5 (▲ 0,5)" in text
    assert "Lampe en panne 3" in text
    assert "Éclairage" in text and "Tous vos services" in text
    assert "français (moins de 5, masqué)" in text


async def test_one_service_is_not_repeated_as_a_total(
    database: Database, translator: Translator
) -> None:
    async with database.uow() as uow:
        world = await seed_world(uow)
        result = await build_digest(uow, service_ids=[world.lights], start=START, end=END)
    text = parsed(format_digest(result, "en", translator))
    assert "All your services" not in text
    assert text.count("New reports:") == 1


def _many_services(result: Digest, count: int) -> Digest:
    template = result.services[0]
    services = tuple(
        dataclasses.replace(
            template,
            service=ServiceInfo(id=1000 + n, code=f"s{n}", names={"en": f"Service number {n}"}),
        )
        for n in range(count)
    )
    return dataclasses.replace(result, services=services)


async def test_a_long_digest_fits_one_telegram_message(
    digest: tuple[Digest, World], translator: Translator
) -> None:
    result, _ = digest
    message = format_digest(_many_services(result, 40), "en", translator)
    assert telegram_length(message) <= MAX_MESSAGE_LENGTH
    text = parsed(message)
    left_out = re.search(r"… and (\d+) more services", text)
    assert left_out is not None
    shown = text.count("Service number")
    assert shown + int(left_out.group(1)) == 40 and shown > 0


async def test_long_comments_are_shortened(
    digest: tuple[Digest, World], translator: Translator
) -> None:
    result, _ = digest
    total: ServiceDigest = dataclasses.replace(result.total, comments=("<&>" * 2000,))
    message = format_digest(dataclasses.replace(result, total=total), "en", translator)
    assert telegram_length(message) <= MAX_MESSAGE_LENGTH
    assert "…" in parsed(message)
