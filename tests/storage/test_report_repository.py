"""Creating a report: its reference, follower and history, in as few statements as can be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

from storage.db import Database, UnitOfWork
from storage.models import Report
from storage.records import ReportRecord
from tests.support.sql import statements

NOW = datetime(2026, 3, 1, 13, 0, tzinfo=ZoneInfo("Europe/Paris"))


async def seed(database: Database) -> tuple[int, int, int]:
    """A citizen, a service and a category: their ids."""
    async with database.uow() as uow:
        citizen, _ = await uow.repos.citizens.ensure(
            telegram_id=42, language="en", first_name="A", username=None, now=NOW
        )
        service = await uow.repos.catalog.upsert_service(code="roads", names={"en": "Roads"})
        category = await uow.repos.catalog.upsert_category(
            code="pothole", service_id=service, names={"en": "Pothole"}, target_days=5, radius_m=50
        )
    return citizen.id, service, category


async def create(
    uow: UnitOfWork,
    citizen: int | None,
    service: int,
    category: int,
    *,
    at: tuple[float, float] = (48.85, 2.35),
) -> ReportRecord:
    return await uow.repos.reports.create(
        citizen_id=citizen,
        category_id=category,
        service_id=service,
        description="A deep pothole",
        latitude=at[0],
        longitude=at[1],
        address=None,
        anonymous=False,
        language="en",
        now=NOW,
        due_at=NOW + timedelta(days=5),
        category_code="pothole",
        category_names={"en": "Pothole"},
    )


async def test_a_new_report_is_what_reading_it_back_gives(database: Database) -> None:
    citizen, service, category = await seed(database)
    async with database.uow() as uow:
        first = await create(uow, citizen, service, category)
        second = await create(uow, None, service, category)
    async with database.uow() as uow:
        assert await uow.repos.reports.by_id(first.id) == first
        assert await uow.repos.reports.by_id(second.id) == second
        assert await uow.repos.reports.by_reference(f"r-{first.id:06d}") == first
        assert await uow.repos.reports.follower_ids(first.id) == [citizen]
        assert await uow.repos.reports.follower_ids(second.id) == []
        history = await uow.repos.reports.history(first.id)
    assert first.reference == f"R-{first.id:06d}" and second.id == first.id + 1
    assert first.created_at == NOW and first.created_at.tzinfo == UTC
    assert [(e.kind, e.actor, e.to_status, e.at) for e in history] == [
        ("created", "citizen", "open", NOW)
    ]


async def test_a_report_is_created_in_one_statement_on_postgresql_three_on_sqlite(
    database: Database,
) -> None:
    citizen, service, category = await seed(database)
    async with database.uow() as uow:
        with statements(database) as seen:
            await create(uow, citizen, service, category)
    assert len(seen) == (3 if database.is_sqlite else 1)


async def test_nearby_open_reports_are_those_of_the_category_in_the_radius_nearest_first(
    database: Database,
) -> None:
    citizen, service, category = await seed(database)  # the category's radius: 50 m
    async with database.uow() as uow:
        other = await uow.repos.catalog.upsert_category(
            code="graffiti",
            service_id=service,
            names={"en": "Graffiti"},
            target_days=5,
            radius_m=50,
        )
        # About 22 m and 33 m north, 110 m north, and 22 m north but closed.
        far = await create(uow, citizen, service, category, at=(48.8503, 2.35))
        near = await create(uow, citizen, service, category, at=(48.8502, 2.35))
        await create(uow, citizen, service, category, at=(48.851, 2.35))
        closed = await create(uow, citizen, service, category, at=(48.8502, 2.35002))
        await uow.repos.reports.set_status(closed.id, "rejected", actor="staff", note=None, now=NOW)
        await create(uow, citizen, service, other, at=(48.8502, 2.35))
    async with database.uow() as uow:
        found = await uow.repos.reports.nearby_open(
            category_id=category, latitude=48.85, longitude=2.35, radius_m=50
        )
        if not database.is_sqlite:
            # A read alone in its unit of work sends no BEGIN (and no COMMIT).
            assert not uow.session.begun_on_server  # type: ignore[attr-defined]
        assert [(report, round(distance)) for report, distance in found] == [
            (await uow.repos.reports.by_id(near.id), 22),
            (await uow.repos.reports.by_id(far.id), 33),
        ]
    assert isinstance(found[0][0].latitude, float) and found[0][0].latitude == 48.8502


async def test_references_past_a_million_keep_every_digit(database: Database) -> None:
    citizen, service, category = await seed(database)
    async with database.uow() as uow:
        if database.is_sqlite:
            await uow.session.execute(
                insert(Report).values(
                    id=1_234_566,
                    category_id=category,
                    service_id=service,
                    description="old",
                    language="en",
                    created_at=NOW,
                    updated_at=NOW,
                    due_at=NOW,
                )
            )
        else:
            await uow.session.execute(
                text("SELECT setval(pg_get_serial_sequence('reports', 'id'), 1234566)")
            )
        report = await create(uow, citizen, service, category)
    assert (report.id, report.reference) == (1_234_567, "R-1234567")


async def test_the_update_citizen_is_read_once_per_transaction(database: Database) -> None:
    citizen, _, _ = await seed(database)
    async with database.uow() as uow:
        found, _ = await uow.repos.citizens.ensure(
            telegram_id=42, language="en", first_name="A", username=None, now=NOW
        )
        with statements(database) as seen:
            assert await uow.repos.citizens.by_id(citizen) == found
        assert seen == []
        await uow.repos.citizens.set_language(citizen, "fr")
        again = await uow.repos.citizens.by_id(citizen)
        assert again is not None and again.language == "fr"
