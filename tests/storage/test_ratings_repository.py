"""Ratings: stored as given, read back, exported and detached on erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from storage.db import Database, UnitOfWork
from storage.models import Rating, Service
from storage.repositories.ratings import RatingRecord, RatingRepository

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def make_citizen(uow: UnitOfWork, telegram_id: int) -> int:
    citizen, _ = await uow.repos.citizens.ensure(
        telegram_id=telegram_id, language="en", first_name="A", username=None, now=NOW
    )
    return citizen.id


async def make_service(uow: UnitOfWork, code: str) -> int:
    result = await uow.session.execute(
        insert(Service)
        .values(code=code, names={"en": code}, active=True, position=0)
        .returning(Service.id)
    )
    return int(result.scalar_one())


def full_rating(citizen_id: int | None, service_id: int, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "citizen_id": citizen_id,
        "service_id": service_id,
        "report_id": None,
        "overall": 4,
        "timeliness": 3,
        "knowledge": 5,
        "courtesy": 5,
        "fairness": 4,
        "outcome": 2,
        "effort": 6,
        "nps": 9,
        "comment": "Quick & kind <b>staff</b>",
        "language": "fr",
        "now": NOW,
    }
    values.update(changes)
    return values


def only_overall(citizen_id: int | None, service_id: int, now: datetime) -> dict[str, Any]:
    return full_rating(
        citizen_id,
        service_id,
        overall=1,
        timeliness=None,
        knowledge=None,
        courtesy=None,
        fairness=None,
        outcome=None,
        effort=None,
        nps=None,
        comment=None,
        language="en",
        now=now,
    )


async def test_ratings_round_trip_newest_first(database: Database) -> None:
    async with database.uow() as uow:
        repo = RatingRepository(uow.session)
        citizen, other = await make_citizen(uow, 1), await make_citizen(uow, 2)
        lights = await make_service(uow, "lights")
        first = await repo.add(**full_rating(citizen, lights))
        second = await repo.add(**only_overall(citizen, lights, NOW + timedelta(days=1)))
        await repo.add(**full_rating(other, lights))
        anonymous = await repo.add(**full_rating(None, lights))
    assert len({first, second, anonymous}) == 3
    async with database.uow() as uow:
        found = await RatingRepository(uow.session).for_citizen(citizen)
    assert [item.id for item in found] == [second, first]
    assert found[1] == RatingRecord(
        id=first,
        citizen_id=citizen,
        service_id=lights,
        report_id=None,
        overall=4,
        timeliness=3,
        knowledge=5,
        courtesy=5,
        fairness=4,
        outcome=2,
        effort=6,
        nps=9,
        comment="Quick & kind <b>staff</b>",
        language="fr",
        created_at=NOW,
    )
    assert found[0].overall == 1 and found[0].nps is None and found[0].comment is None


async def test_export_lists_the_citizens_ratings_as_json(database: Database) -> None:
    async with database.uow() as uow:
        repo = RatingRepository(uow.session)
        citizen, other = await make_citizen(uow, 1), await make_citizen(uow, 2)
        lights, parks = await make_service(uow, "lights"), await make_service(uow, "parks")
        first = await repo.add(**full_rating(citizen, lights))
        second = await repo.add(**only_overall(citizen, parks, NOW + timedelta(hours=1)))
        await repo.add(**full_rating(other, lights))
        exported = await repo.export_for_citizen(citizen)
    assert json.loads(json.dumps(exported)) == exported
    assert exported == [
        {
            "kind": "rating",
            "id": first,
            "service": "lights",
            "report_id": None,
            "overall": 4,
            "timeliness": 3,
            "knowledge": 5,
            "courtesy": 5,
            "fairness": 4,
            "outcome": 2,
            "effort": 6,
            "nps": 9,
            "comment": "Quick & kind <b>staff</b>",
            "language": "fr",
            "created_at": NOW.isoformat(),
        },
        {
            "kind": "rating",
            "id": second,
            "service": "parks",
            "report_id": None,
            "overall": 1,
            "timeliness": None,
            "knowledge": None,
            "courtesy": None,
            "fairness": None,
            "outcome": None,
            "effort": None,
            "nps": None,
            "comment": None,
            "language": "en",
            "created_at": (NOW + timedelta(hours=1)).isoformat(),
        },
    ]


async def test_anonymising_keeps_ratings_and_comments_without_the_citizen(
    database: Database,
) -> None:
    async with database.uow() as uow:
        repo = RatingRepository(uow.session)
        citizen, other = await make_citizen(uow, 1), await make_citizen(uow, 2)
        lights = await make_service(uow, "lights")
        kept = await repo.add(**full_rating(citizen, lights))
        await repo.add(**only_overall(citizen, lights, NOW))
        await repo.add(**full_rating(other, lights))
    async with database.uow() as uow:
        assert await RatingRepository(uow.session).anonymise_citizen(citizen) == 2
    async with database.uow() as uow:
        repo = RatingRepository(uow.session)
        assert await repo.for_citizen(citizen) == []
        assert await repo.export_for_citizen(citizen) == []
        assert len(await repo.for_citizen(other)) == 1
        assert await repo.anonymise_citizen(citizen) == 0
        row = (
            await uow.session.execute(
                select(Rating.citizen_id, Rating.comment).where(Rating.id == kept)
            )
        ).one()
    assert (row.citizen_id, row.comment) == (None, "Quick & kind <b>staff</b>")
