"""PostgreSQL: the ordinary units of work keep their connections between them.

A connection given back waits for the next unit of work instead of going back to
SQLAlchemy's pool, so an answer that sends no BEGIN takes and returns it without a
hop into SQLAlchemy's greenlets. It must never be kept where someone else waits for
it, nor used stale, nor outlive the database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy.ext.asyncio.session as async_session_module
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError

from storage.db import Database
from storage.models import InboxUpdate

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEADLINE = 10.0


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's connection pool")
    return database_url


def counting_checkouts(database: Database) -> list[int]:
    seen: list[int] = []
    event.listen(database.engine.sync_engine, "checkout", lambda *_: seen.append(1))
    return seen


async def backend_pid(database: Database) -> int:
    async with database.uow() as uow:
        return int((await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_one_connection_serves_unit_after_unit_without_the_pool(
    postgres_url: str,
) -> None:
    database = Database(postgres_url, ping_after_idle=3600.0)
    try:
        seen = counting_checkouts(database)
        first = await backend_pid(database)
        for _ in range(5):
            assert await backend_pid(database) == first
        assert len(seen) == 1
    finally:
        await database.dispose()


async def test_an_answer_without_begin_makes_no_greenlet_hop(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(postgres_url, ping_after_idle=3600.0)
    hops: list[Any] = []
    real = async_session_module.greenlet_spawn

    async def counted(function: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(function)
        return await real(function, *args, **kwargs)

    try:
        await backend_pid(database)  # the connection is kept from now on
        monkeypatch.setattr(async_session_module, "greenlet_spawn", counted)
        async with database.uow() as uow:
            # An update that changes nothing else: the inbox is read, then marked, each
            # statement on its own, so nothing begins on the server.
            assert await uow.repos.inbox.open(1, NOW, new=True, reading=7)
            assert await uow.repos.inbox.settle()
        assert hops == []
        # A transaction that began on the server still commits the ordinary way.
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
        assert hops
        async with database.uow() as uow:
            assert await uow.session.scalar(select(InboxUpdate.update_id)) == 1
    finally:
        await database.dispose()


async def test_a_kept_connection_dropped_while_idle_is_replaced(postgres_url: str) -> None:
    database = Database(postgres_url, ping_after_idle=0.0)
    try:
        pid = await backend_pid(database)
        async with database.uow(urgent=True) as uow:
            await uow.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # Idle "long enough" (0 s): it fails its ping and another connection serves.
        assert await backend_pid(database) != pid
    finally:
        await database.dispose()


async def test_a_kept_connection_used_a_moment_ago_is_not_pinged(postgres_url: str) -> None:
    database = Database(postgres_url, ping_after_idle=3600.0)
    pings: list[int] = []
    dialect = database.engine.sync_engine.dialect
    real = dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return real(dbapi_connection)

    dialect.do_ping = do_ping  # type: ignore[method-assign]
    try:
        for _ in range(4):
            await backend_pid(database)
        assert pings == []
    finally:
        await database.dispose()


async def test_beyond_the_limit_a_connection_is_handed_over(postgres_url: str) -> None:
    # Four connections, three of them for the units of work. Three hold theirs; a
    # fourth waits, and the second finishes only after the fourth has run: the
    # first's connection must go straight to the fourth, not back to the pool.
    database = Database(postgres_url, pool_size=4, ping_after_idle=3600.0)
    seen = counting_checkouts(database)
    fourth_waits, fourth_ran = asyncio.Event(), asyncio.Event()
    all_held = asyncio.Barrier(4)

    async def holding(until: asyncio.Event) -> None:
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
            await all_held.wait()
            await until.wait()

    async def fourth() -> None:
        await all_held.wait()
        fourth_waits.set()  # from its first await on, it waits for a connection
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
        fourth_ran.set()

    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(
                holding(fourth_waits), holding(fourth_ran), holding(fourth_ran), fourth()
            )
            assert len(seen) == 3
            # The fourth connection of the pool stays for the engine's other users,
            # while the three wait here for the next units of work.
            async with database.engine.connect() as other:
                await other.execute(text("SELECT 1"))
    finally:
        await database.dispose()


async def test_a_lost_connection_makes_room_for_a_waiting_unit_of_work(
    postgres_url: str,
) -> None:
    # One connection for the units of work. The second waits for it; the first loses
    # it (its server process is ended): the second connects anew in its place.
    database = Database(postgres_url, pool_size=2, ping_after_idle=3600.0)
    first_holds = asyncio.Event()

    async def first() -> None:
        async with database.uow() as uow:
            pid = await uow.session.scalar(text("SELECT pg_backend_pid()"))
            first_holds.set()
            async with database.uow(urgent=True) as other:
                await other.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await uow.session.execute(text("SELECT 1"))

    async def second() -> int:
        await first_holds.wait()
        return await backend_pid(database)

    try:
        async with asyncio.timeout(DEADLINE):
            lost, pid = await asyncio.gather(first(), second(), return_exceptions=True)
        assert isinstance(lost, DBAPIError) and lost.connection_invalidated
        assert isinstance(pid, int)
    finally:
        await database.dispose()


async def test_dispose_gives_every_kept_connection_back(postgres_url: str) -> None:
    database = Database(postgres_url)
    returned: list[int] = []
    event.listen(database.engine.sync_engine, "checkin", lambda *_: returned.append(1))

    async def hold(entered: asyncio.Barrier) -> None:
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
            await entered.wait()

    entered = asyncio.Barrier(3)
    await asyncio.gather(hold(entered), hold(entered), hold(entered))
    assert returned == []  # kept for the next units of work
    await database.dispose()
    assert len(returned) == 3
    # A unit of work that ends after the dispose gives its connection to the pool.
    async with database.uow() as uow:
        await uow.session.execute(text("SELECT 1"))
    assert len(returned) == 4
    await database.dispose()
