"""PostgreSQL: the ordinary units of work keep their connections between them.

A connection given back waits for the next unit of work instead of going back to
SQLAlchemy's pool, so an answer that sends no BEGIN takes and returns it without a
hop into SQLAlchemy's greenlets. It must never be kept where someone else waits for
it, nor used stale, nor outlive the database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy.ext.asyncio.session as async_session_module
from sqlalchemy import event, select, text

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


async def test_none_is_kept_while_a_unit_of_work_waits_for_the_pool(postgres_url: str) -> None:
    # Two connections: one may be kept. Two units of work hold both; a third waits for
    # the pool, and the second finishes only after the third has run. The first's
    # connection must go to the pool, where the third waits, not wait here.
    database = Database(postgres_url, pool_size=2)
    third_waits, third_ran = asyncio.Event(), asyncio.Event()
    both_held = asyncio.Barrier(3)
    kept: Any = database._kept
    engine, asked = kept._engine, []

    def connect() -> Any:
        asked.append(1)
        if len(asked) == 3:
            third_waits.set()  # it waits for the pool from its next await on
        return engine.connect()

    kept._engine = SimpleNamespace(connect=connect)

    async def first() -> None:
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
            await both_held.wait()
            await third_waits.wait()

    async def second() -> None:
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
            await both_held.wait()
            await third_ran.wait()

    async def third() -> None:
        await both_held.wait()
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
        third_ran.set()

    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(first(), second(), third())
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
