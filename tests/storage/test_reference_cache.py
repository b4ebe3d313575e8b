"""The catalogue and the areas are read once per process and dropped when they change."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from storage.db import Database
from storage.models import Category
from storage.repositories._reference import TTL_SECONDS, ReferenceCache
from tests.support.sql import statements

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[2.0, 48.0], [2.1, 48.0], [2.1, 48.1], [2.0, 48.1], [2.0, 48.0]]],
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def seed(database: Database) -> int:
    async with database.uow() as uow:
        service = await uow.repos.catalog.upsert_service(code="roads", names={"en": "Roads"})
        await uow.repos.catalog.upsert_category(
            code="pothole", service_id=service, names={"en": "Pothole"}, target_days=5, radius_m=50
        )
    return service


async def test_the_catalogue_is_read_once_for_many_transactions(database: Database) -> None:
    await seed(database)
    async with database.uow() as uow:
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]
    with statements(database) as seen:
        for _ in range(3):
            async with database.uow() as uow:
                assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]
                category = await uow.repos.catalog.category_by_code("pothole")
                assert category is not None and category.target_days == 5
                assert [s.code for s in await uow.repos.catalog.services()] == ["roads"]
                assert await uow.repos.catalog.service_by_code("roads") is not None
    assert [s for s in seen if s.startswith("SELECT")] == []


async def test_an_edit_committed_in_this_process_shows_at_once(database: Database) -> None:
    service = await seed(database)
    async with database.uow() as uow:
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]
    async with database.uow() as uow:
        category = await uow.repos.catalog.category_by_code("pothole")
        assert category is not None
        await uow.repos.config.save_category(category.id, {"target_days": 9})
        await uow.repos.config.save_category(
            None,
            {
                "code": "litter",
                "service_id": service,
                "names": {"en": "Litter"},
                "active": True,
                "position": 1,
            },
        )
        # The transaction that edits reads its own edit.
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole", "litter"]
    async with database.uow() as uow:
        category = await uow.repos.catalog.category_by_code("pothole")
        assert category is not None and category.target_days == 9
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole", "litter"]


async def test_an_edit_rolled_back_is_not_kept(database: Database) -> None:
    await seed(database)
    try:
        async with database.uow() as uow:
            await uow.repos.catalog.upsert_category(
                code="litter", service_id=1, names={"en": "Litter"}, target_days=3, radius_m=50
            )
            assert len(await uow.repos.catalog.categories()) == 2
            raise RuntimeError("abandoned")
    except RuntimeError:
        pass
    async with database.uow() as uow:
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]


async def test_an_edit_by_another_process_shows_after_the_ttl(database: Database) -> None:
    clock = FakeClock()
    database.reference_cache.clock = clock
    await seed(database)
    async with database.uow() as uow:
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]
    # Another instance deactivates the category: this process is not told.
    async with database.uow() as uow:
        await uow.session.execute(update(Category).values(active=False))
    clock.now += TTL_SECONDS - 1
    async with database.uow() as uow:
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]
    clock.now += 2
    async with database.uow() as uow:
        assert await uow.repos.catalog.categories() == []


def test_a_copy_read_while_an_edit_commits_is_not_kept() -> None:
    cache = ReferenceCache(clock=FakeClock())
    started = cache.generation
    cache.invalidate({"catalog"})  # an edit commits while the copy is being read
    cache.put("catalog", ["stale"], generation=started)
    assert cache.get("catalog") is None
    cache.put("catalog", ["fresh"], generation=cache.generation)
    assert cache.get("catalog") == ["fresh"]


async def test_areas_are_kept_until_an_import_commits(database: Database) -> None:
    async with database.uow() as uow:
        assert await uow.repos.areas.boxes_holding(48.05, 2.05) == []
    async with database.uow() as uow:
        await uow.repos.areas.upsert(
            code="centre",
            names={"en": "Centre"},
            geometry=SQUARE,
            box=(48.0, 2.0, 48.1, 2.1),
            position=0,
            active=True,
            now=NOW,
        )
    with statements(database) as seen:
        for _ in range(2):
            async with database.uow() as uow:
                assert [a.code for a in await uow.repos.areas.boxes_holding(48.05, 2.05)] == [
                    "centre"
                ]
                assert await uow.repos.areas.boxes_holding(47.0, 2.05) == []
    assert len([s for s in seen if s.startswith("SELECT")]) == 1
    async with database.uow() as uow:
        assert await uow.repos.areas.deactivate_except([], now=NOW) == ["centre"]
    async with database.uow() as uow:
        assert await uow.repos.areas.boxes_holding(48.05, 2.05) == []


async def test_what_a_reader_reads_is_not_kept(database: Database) -> None:
    # A reader's snapshot may be older than the last edit: it must not refill the copy.
    await seed(database)
    async with database.reader() as uow:
        assert [c.code for c in await uow.repos.catalog.categories()] == ["pothole"]
    assert database.reference_cache.get("catalog") is None
    async with database.uow() as uow:
        await uow.repos.catalog.categories()
    assert database.reference_cache.get("catalog") is not None
