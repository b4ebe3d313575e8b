"""Digests break down by area: reports by the area of their pin, respondents by the
area of the report they rated (small cells hidden like every other breakdown)."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from bot.digests.compute import build_digest, format_digest
from bot.i18n import Translator
from storage.db import Database
from storage.models import Area, Rating, Report
from storage.repositories.digests import DigestRepository
from tests.digests.seed import END, START, seed_world

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


async def test_reports_and_respondents_by_area(database: Database) -> None:
    async with database.uow() as uow:
        world = await seed_world(uow)
        centre = (
            await uow.session.execute(
                insert(Area)
                .values(
                    code="centre",
                    names={"en": "Town centre", "fr": "Centre-ville"},
                    geometry=SQUARE,
                    min_latitude=0,
                    min_longitude=0,
                    max_latitude=1,
                    max_longitude=1,
                    updated_at=START,
                )
                .returning(Area.id)
            )
        ).scalar_one()
        # Every roads report lies in the centre; the lights reports have no area.
        await uow.session.execute(
            update(Report).where(Report.service_id == world.roads).values(area_id=centre)
        )
        # Every rating of the period is about a roads report.
        roads_report = await uow.session.scalar(
            select(Report.id).where(Report.service_id == world.roads).limit(1)
        )
        await uow.session.execute(update(Rating).values(report_id=roads_report))
        figures = await DigestRepository(uow.session).report_figures(None, START, END)
        respondents = await DigestRepository(uow.session).respondents(
            None, START, END, dimensions=("area",)
        )
        digest = await build_digest(uow, service_ids=None, start=START, end=END)
    assert figures.total.by_area == {"centre": 4}  # the 3 lights reports are not placed
    assert figures.services[world.roads].by_area == {"centre": 4}
    assert figures.services[world.lights].by_area == {}
    (by_area,) = respondents.total
    assert [(cell.value, cell.people, cell.hidden) for cell in by_area.cells] == [
        ("centre", 9, False)
    ]
    text = format_digest(digest, "en", Translator.load("en"))
    assert "By area: Town centre 4" in text
    assert "area: Town centre" in text
    french = format_digest(digest, "fr", Translator.load("en"))
    assert "Par quartier : Centre-ville 4" in french
